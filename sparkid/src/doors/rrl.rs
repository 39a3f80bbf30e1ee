//! Response-rate limiting (RRL) for the UDP doors (DNS and Handle), after BIND's and Knot's.
//!
//! A UDP source address can be spoofed: an attacker sends small queries "from" a victim and the
//! server's answers flood the victim (reflection). RRL bounds what any one source prefix (IPv4
//! /24, IPv6 /56, the prefixes BIND and Knot use) receives: each prefix has a token bucket of
//! `rate` answers per second (burst: one second's worth). Past it, answers are dropped, except
//! every `slip`-th, which goes out "slipped": truncated and empty (DNS TC=1, Handle truncated
//! flag), no larger than the query. A real client behind the prefix then retries over TCP, where
//! no spoofing is possible and this limit does not apply; a spoofed victim gets a trickle of
//! tiny packets.
//!
//! The table has a fixed number of slots (`table_size`), chosen by a keyed hash of the prefix,
//! so memory is bounded whatever the number of sources, and each decision is O(1). A slot whose
//! bucket has refilled is taken over by the next prefix hashed to it; a busy slot is shared by
//! colliding prefixes, which can only limit them sooner, never later.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Instant;

/// The default answers per second per source prefix. A resolver farm behind one /24 rarely
/// sends an authoritative server more; one that does gets TC answers and goes on over TCP.
pub const DEFAULT_RATE: u32 = 200;
/// The default slip: every 2nd limited answer goes out truncated (BIND's default).
pub const DEFAULT_SLIP: u32 = 2;
/// The default number of slots (about 32 bytes each: 2 MiB).
pub const DEFAULT_TABLE_SIZE: usize = 65_536;

/// The limiter's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RrlConfig {
    /// Answers per second per source prefix; 0 turns limiting off.
    pub rate: u32,
    /// Every `slip`-th limited answer is sent truncated, the others dropped; 0 drops them all,
    /// 1 truncates them all.
    pub slip: u32,
    /// Slots in the table (at least 1).
    pub table_size: usize,
}

impl Default for RrlConfig {
    fn default() -> RrlConfig {
        RrlConfig {
            rate: DEFAULT_RATE,
            slip: DEFAULT_SLIP,
            table_size: DEFAULT_TABLE_SIZE,
        }
    }
}

/// What to do with one answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Answer,
    /// Send it truncated and empty instead (the client retries over TCP).
    Slip,
    /// Send nothing.
    Drop,
}

impl Verdict {
    /// The `action` label of the RRL counter, for the verdicts that limit.
    pub fn label(self) -> Option<&'static str> {
        match self {
            Verdict::Answer => None,
            Verdict::Slip => Some("slip"),
            Verdict::Drop => Some("drop"),
        }
    }
}

/// One slot: the prefix it belongs to and its bucket, as GCRA keeps it (the "theoretical
/// arrival time" of the next answer, in nanoseconds since the limiter started).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    prefix: u128,
    tat: u64,
    limited: u32,
}

/// A response-rate limiter for one door.
#[derive(Debug)]
pub struct ResponseRateLimiter {
    config: RrlConfig,
    /// Nanoseconds between two answers at the rate.
    interval: u64,
    /// How far ahead of now a bucket may run: the burst, less one answer.
    tolerance: u64,
    start: Instant,
    hasher: RandomState,
    slots: Box<[Mutex<Slot>]>,
}

/// The source prefix of `ip` as a key: IPv4 /24 or IPv6 /56, tagged by family (an IPv4-mapped
/// IPv6 address counts as IPv4).
pub fn prefix(ip: IpAddr) -> u128 {
    match ip.to_canonical() {
        IpAddr::V4(v4) => (4u128 << 120) | u128::from(u32::from(v4) & 0xffff_ff00),
        IpAddr::V6(v6) => (6u128 << 120) | (u128::from(v6) >> 72),
    }
}

impl ResponseRateLimiter {
    /// A limiter with `config`, or none when its rate is 0 (off).
    pub fn new(config: RrlConfig) -> Option<ResponseRateLimiter> {
        if config.rate == 0 {
            return None;
        }
        let interval = 1_000_000_000 / u64::from(config.rate);
        let table_size = config.table_size.max(1);
        Some(ResponseRateLimiter {
            config: RrlConfig {
                table_size,
                ..config
            },
            interval,
            tolerance: interval.saturating_mul(u64::from(config.rate) - 1),
            start: Instant::now(),
            hasher: RandomState::new(),
            slots: (0..table_size)
                .map(|_| Mutex::new(Slot::default()))
                .collect(),
        })
    }

    /// The settings in force.
    pub fn config(&self) -> RrlConfig {
        self.config
    }

    /// Whether an answer to `ip` may go out now, and counts it when it does.
    pub fn check(&self, ip: IpAddr) -> Verdict {
        let now = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.check_at(prefix(ip), now)
    }

    fn check_at(&self, prefix: u128, now: u64) -> Verdict {
        let index = (self.hasher.hash_one(prefix) % self.slots.len() as u64) as usize;
        let mut slot = self.slots[index].lock().unwrap_or_else(|p| p.into_inner());
        if slot.prefix != prefix && slot.tat <= now {
            // The slot's bucket is full again: nothing is lost by handing it over.
            *slot = Slot {
                prefix,
                tat: now,
                limited: 0,
            };
        }
        let tat = slot.tat.max(now);
        if tat - now <= self.tolerance {
            slot.tat = tat.saturating_add(self.interval);
            return Verdict::Answer;
        }
        slot.limited = slot.limited.wrapping_add(1);
        match self.config.slip {
            0 => Verdict::Drop,
            slip if slot.limited.is_multiple_of(slip) => Verdict::Slip,
            _ => Verdict::Drop,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, slip: u32, table_size: usize) -> ResponseRateLimiter {
        ResponseRateLimiter::new(RrlConfig {
            rate,
            slip,
            table_size,
        })
        .unwrap()
    }

    #[test]
    fn prefixes_are_ipv4_slash_24_and_ipv6_slash_56() {
        let p = |s: &str| prefix(s.parse().unwrap());
        assert_eq!(p("192.0.2.1"), p("192.0.2.254"));
        assert_ne!(p("192.0.2.1"), p("192.0.3.1"));
        assert_eq!(p("2001:db8:0:ff::1"), p("2001:db8:0:ff:ffff::2"));
        assert_ne!(p("2001:db8:0:100::1"), p("2001:db8:0:0::1"));
        assert_eq!(p("::ffff:192.0.2.9"), p("192.0.2.1"));
        assert_ne!(
            p("::c000:201"),
            p("192.0.2.1"),
            "only mapped addresses are IPv4"
        );
    }

    #[test]
    fn a_burst_past_the_rate_is_dropped_and_slipped_then_refills() {
        let rrl = limiter(10, 2, 16);
        let victim = prefix("198.51.100.7".parse().unwrap());
        let verdicts: Vec<Verdict> = (0..30).map(|_| rrl.check_at(victim, 1_000)).collect();
        assert!(verdicts[..10].iter().all(|v| *v == Verdict::Answer));
        let slipped = verdicts.iter().filter(|v| **v == Verdict::Slip).count();
        let dropped = verdicts.iter().filter(|v| **v == Verdict::Drop).count();
        assert_eq!((slipped, dropped), (10, 10));
        // Another prefix has its own bucket (16 slots: a collision would only share it, so
        // look for a prefix in another slot).
        let other = (0..=255u32)
            .map(|i| prefix(IpAddr::from([203, 0, i as u8, 1])))
            .find(|p| rrl.hasher.hash_one(p) % 16 != rrl.hasher.hash_one(victim) % 16)
            .unwrap();
        assert_eq!(rrl.check_at(other, 1_000), Verdict::Answer);
        // One interval later, one more answer; a second later, a whole burst.
        assert_eq!(rrl.check_at(victim, 1_000 + 100_000_000), Verdict::Answer);
        let later = 1_000 + 2_100_000_000;
        assert!((0..10).all(|_| rrl.check_at(victim, later) == Verdict::Answer));
        assert_ne!(rrl.check_at(victim, later), Verdict::Answer);
    }

    #[test]
    fn slip_zero_drops_all_and_slip_one_truncates_all() {
        let victim = prefix("198.51.100.7".parse().unwrap());
        let drop_all = limiter(1, 0, 1);
        assert_eq!(drop_all.check_at(victim, 0), Verdict::Answer);
        assert!((0..5).all(|_| drop_all.check_at(victim, 0) == Verdict::Drop));
        let slip_all = limiter(1, 1, 1);
        assert_eq!(slip_all.check_at(victim, 0), Verdict::Answer);
        assert!((0..5).all(|_| slip_all.check_at(victim, 0) == Verdict::Slip));
    }

    #[test]
    fn a_busy_slot_is_shared_and_an_idle_one_handed_over() {
        // One slot: every prefix collides.
        let rrl = limiter(2, 0, 1);
        let a = prefix("192.0.2.1".parse().unwrap());
        let b = prefix("198.51.100.1".parse().unwrap());
        assert_eq!(rrl.check_at(a, 0), Verdict::Answer);
        assert_eq!(rrl.check_at(a, 0), Verdict::Answer);
        // `b` cannot reset `a`'s spent bucket by colliding with it.
        assert_eq!(rrl.check_at(b, 0), Verdict::Drop);
        assert_eq!(rrl.check_at(a, 0), Verdict::Drop);
        // Once refilled, the slot is `b`'s.
        assert_eq!(rrl.check_at(b, 2_000_000_000), Verdict::Answer);
    }

    #[test]
    fn rate_zero_is_off() {
        assert!(ResponseRateLimiter::new(RrlConfig {
            rate: 0,
            ..RrlConfig::default()
        })
        .is_none());
    }
}
