//! The Redis L2 entry and invalidation-message openers on arbitrary bytes: never a panic;
//! nothing opens without the secret's HMAC; a sealed entry opens back to exactly what was
//! sealed, under its own key only.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sparkid_resolver::cache::{open_entry, open_message, seal_entry};

const SECRET: &[u8] = b"fuzzing-shared-secret";

fuzz_target!(|data: &[u8]| {
    // Arbitrary bytes in Redis: whatever they are, they are not an entry sealed with SECRET
    // (forging an HMAC-SHA256 is not something a fuzzer finds).
    assert!(open_entry(SECRET, "sparkid:ns:k:did/x", data).is_none());
    assert!(open_message(SECRET, "sparkid:ns:invalidations", data).is_none());

    // Round trip: the input split into a value and a stamp.
    let (stamp, value) = data.split_at(data.len().min(8));
    let mut height = [0u8; 8];
    height[..stamp.len()].copy_from_slice(stamp);
    let height = u64::from_le_bytes(height);
    let value = std::str::from_utf8(value).ok();
    let sealed = seal_entry(SECRET, "k", value, height, 1_900_000_000);
    let opened = open_entry(SECRET, "k", &sealed);
    assert_eq!(
        opened,
        Some((value.map(str::to_string), height, 1_900_000_000))
    );
    assert!(open_entry(SECRET, "other", &sealed).is_none());
    assert!(open_entry(b"another secret", "k", &sealed).is_none());
});
