//! The DNS door on arbitrary messages (`sparkid::doors::dns::DnsAuthority::respond`, the code
//! the server runs for each datagram or TCP frame, answering from `sparkid_resolver::dns_zone`),
//! over a fresh one-validator ledger (the service zone; every other name goes through the
//! delegated-zone lookups and is refused): no input makes it panic; every answer is a response
//! with the question's id, and a UDP answer is never larger than the request allows (512 bytes
//! without EDNS, else the advertised size, capped at 1232).

#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use sparkid::config::DnsConfig;
use sparkid::doors::dns::{DnsAuthority, UDP_PAYLOAD_CAP};

struct World {
    runtime: tokio::runtime::Runtime,
    door: DnsAuthority,
    _dir: tempfile::TempDir,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = sparkid_bid::PrivateKey::generate();
        let genesis = sparkid_ledger::Genesis {
            chain_id: "sparkid-fuzz".into(),
            time: 1_700_000_000,
            validators: vec![key.public_key().to_encoded()],
            authority: None,
            other: Default::default(),
        };
        let ledger = sparkid_ledger::Ledger::create(dir.path(), genesis, &[&key]).expect("ledger");
        let records = sparkid_resolver::records::Records::new(Arc::new(ledger));
        let config = DnsConfig {
            listen: Some("127.0.0.1:5300".parse().expect("addr")),
            ..DnsConfig::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let door = DnsAuthority::new(&config, "http://127.0.0.1:8080", records).expect("door");
        door.index_chain().expect("index");
        World {
            runtime,
            door,
            _dir: dir,
        }
    })
}

/// The UDP limit a request allows, from its OPT record (hickory-proto's whole-message parser);
/// a message that parser refuses is held to the cap, which always applies.
fn udp_limit(request: &[u8]) -> usize {
    match hickory_proto::op::Message::from_vec(request) {
        Ok(m) => m.edns.as_ref().map_or(512, |e| {
            usize::from(e.max_payload()).clamp(512, usize::from(UDP_PAYLOAD_CAP))
        }),
        Err(_) => usize::from(UDP_PAYLOAD_CAP),
    }
}

fuzz_target!(|data: &[u8]| {
    let w = world();
    for udp in [true, false] {
        let Some(answer) = w.runtime.block_on(w.door.respond(data, udp)) else {
            continue;
        };
        assert!(answer.len() >= 12, "an answer has a header");
        assert_eq!(
            answer[..2],
            data[..2],
            "the answer carries the question's id"
        );
        assert!(answer[2] & 0x80 != 0, "the answer is a response");
        if udp {
            assert!(
                answer.len() <= udp_limit(data),
                "{} > {}",
                answer.len(),
                udp_limit(data)
            );
        }
    }
});
