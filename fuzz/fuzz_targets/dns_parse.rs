//! The DNS door on arbitrary messages (`sparkid::doors::dns::DnsAuthority::respond`, the code
//! the server runs for each datagram or TCP frame, answering from `sparkid_resolver::dns_zone`),
//! over a one-validator ledger holding the published DID `did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx`
//! (its service-zone name is `efab242oa72atum62pvkb27xvcymtf7cg5rgpq.did.sparkid.test`, seeded in
//! `fuzz/corpus/dns_parse/`), the zone `example.com` delegated to it, and enough names under that
//! zone bound to it that its TXT answer is larger than any UDP answer (so truncation is reached):
//! no input makes it panic; every answer is a response with the question's id, and a UDP answer
//! is never larger than the request allows (512 bytes without EDNS, else the advertised size,
//! capped at 1232).
//!
//! The answer cache (`sparkid::doors::dns_wire`, what the UDP receive loops answer from): each
//! message is also answered through a [`UdpAnswerer`] kept across inputs, twice (the first may
//! fill the cache, the second comes from it when the message has a cache key). Each of its answers
//! is the fresh answer: the same message once parsed (names compared without case, as DNS does),
//! with the message's own id, flags and question bytes.

#![no_main]

use std::sync::{Mutex, OnceLock};

use libfuzzer_sys::fuzz_target;
use sparkid::config::DnsConfig;
use sparkid::doors::dns::{DnsAuthority, UdpAnswerer, UDP_PAYLOAD_CAP};
use sparkid_registrar::Operation;
use sparkid_test_support::DevChain;

struct World {
    runtime: tokio::runtime::Runtime,
    door: DnsAuthority,
    cached: Mutex<UdpAnswerer>,
    _chain: DevChain,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let key = sparkid_bid::PrivateKey::from_seed([7; 32]);
        // The subject is the chain's authority too: it delegates the zone to itself.
        let subject = sparkid_bid::PrivateKey::from_encoded(SUBJECT_KEY).expect("key");
        let did = sparkid_bid::Bid::derive(&subject.public_key(), None)
            .expect("bid")
            .to_string();
        let mut genesis = sparkid_test_support::genesis("sparkid-fuzz", &[&key]);
        genesis.authority = Some(did.clone());
        let mut chain = DevChain::for_genesis(genesis, vec![key]);
        let mut document =
            sparkid_registrar::api::new_document(&subject.public_key(), None).expect("document");
        // Its controller confirms every name bound below, so each shows as `aka=` in its TXT.
        document["alsoKnownAs"] = (0..ALIASES)
            .map(|i| serde_json::json!({ "type": 103, "id": format!("n{i}.deep.example.com") }))
            .collect();
        let kind = sparkid_registrar::namespace::Kind::Dns;
        let signer = format!("{did}#key-1");
        let signed = |op: Operation| (&subject, signer.clone(), op);
        chain.commit(vec![signed(Operation::Create { document })]);
        chain.commit(vec![signed(Operation::Delegate {
            kind,
            namespace: "example.com".into(),
            owner: did.clone(),
            chain: None,
            endpoints: vec![],
        })]);
        chain.commit(
            (0..ALIASES)
                .map(|i| {
                    signed(Operation::Bind {
                        kind,
                        identifier: format!("n{i}.deep.example.com"),
                        did: did.clone(),
                    })
                })
                .collect(),
        );
        let records = sparkid_resolver::records::Records::new(chain.ledger.clone());
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
        // The world is as described: the subject's TXT answer is truncated over UDP.
        let answer = runtime
            .block_on(door.respond(&txt_query(SUBJECT_NAME), true))
            .expect("an answer");
        assert!(
            answer[2] & 0x02 != 0,
            "the subject's TXT answer fits in UDP"
        );
        World {
            runtime,
            cached: Mutex::new(door.udp_answerer(1 << 20)),
            door,
            _chain: chain,
        }
    })
}

/// The published private key of `did:bid:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx` (the vectors).
const SUBJECT_KEY: &str = "priSPKp8oiiAXGZaXFBMKEAoL2b6J6UDQCw4x39ereXYtyAejM";
/// Its name in the default service zone (spec/dns.md's worked example).
const SUBJECT_NAME: &str = "efab242oa72atum62pvkb27xvcymtf7cg5rgpq.did.sparkid.test";
/// Names bound to it: its TXT answer then holds that many `aka=` strings, over 1232 bytes.
const ALIASES: usize = 45;

/// A TXT query for `name` without EDNS (512 bytes at most over UDP).
fn txt_query(name: &str) -> Vec<u8> {
    let mut q = vec![0x12, 0x34, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 16, 0, 1]);
    q
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
    let fresh = w.runtime.block_on(w.door.respond(data, true));
    let mut cached = w.cached.lock().unwrap_or_else(|p| p.into_inner());
    let source = ([127, 0, 0, 1], 53000).into();
    for _ in 0..2 {
        let answer = cached.answer(data, source).map(<[u8]>::to_vec);
        assert_eq!(answer.is_some(), fresh.is_some(), "answered alike");
        let (Some(answer), Some(fresh)) = (answer, &fresh) else {
            continue;
        };
        assert_eq!(answer[..4], fresh[..4], "id and flags");
        assert_eq!(
            hickory_proto::op::Message::from_vec(&answer).ok(),
            hickory_proto::op::Message::from_vec(fresh).ok(),
            "the same answer"
        );
        if let Ok(request) = hickory_proto::op::Message::from_vec(data) {
            if let (Some(asked), Ok(answered)) = (
                request.queries.first(),
                hickory_proto::op::Message::from_vec(&answer),
            ) {
                if let Some(echoed) = answered.queries.first() {
                    assert_eq!(
                        asked.name().to_string(),
                        echoed.name().to_string(),
                        "the question as spelled"
                    );
                }
            }
        }
    }
    drop(cached);
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
