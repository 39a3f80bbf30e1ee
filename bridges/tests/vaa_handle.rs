//! The VAA and Handle bridges over an in-memory record source holding ledger records as the
//! registrar writes them.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{json, Value};
use sparkid_bid::{Bid, PrivateKey};
use sparkid_bridges::handle::site::{protocol, SiteInfo};
use sparkid_bridges::handle::{wire::response_code, HandleBridge, INDEX_SITE};
use sparkid_bridges::vaa::{VaaBridge, VaaOutcome};
use sparkid_bridges::{BridgeError, Bridges, RecordSource};
use sparkid_registrar::namespace::{alias_key, binding_key, namespace_key, Kind};
use sparkid_registrar::{did_key, DidRecord};

#[derive(Default)]
struct Source(HashMap<String, String>);

impl RecordSource for Source {
    fn record(&self, key: &str) -> Result<Option<Arc<str>>, BridgeError> {
        Ok(self.0.get(key).map(|v| Arc::from(v.as_str())))
    }
}

impl Source {
    fn put(&mut self, key: String, value: Value) {
        self.0.insert(key, value.to_string());
    }

    fn did(&mut self, deactivated: bool) -> String {
        let key = PrivateKey::generate();
        let document = sparkid_registrar::api::new_document(
            &key.public_key(),
            Some(json!({"service": [{"id": "#s", "type": "LinkedDomains", "serviceEndpoint": "https://s.example"}]})),
        )
        .unwrap();
        let did = document["id"].as_str().unwrap().to_string();
        let record = DidRecord {
            document,
            created: "2026-01-01T00:00:00Z".into(),
            updated: "2026-01-02T00:00:00Z".into(),
            version_id: if deactivated { 2 } else { 1 },
            deactivated,
            height: 3,
            operation: "create".into(),
        };
        let bid: Bid = did.parse().unwrap();
        self.put(did_key(&bid), serde_json::to_value(record).unwrap());
        did
    }

    fn namespace(
        &mut self,
        kind: Kind,
        ns: &str,
        owner: &str,
        chain: Option<&str>,
        endpoints: &[&str],
    ) {
        self.put(
            namespace_key(kind, ns),
            json!({"kind": kind, "namespace": ns, "owner": owner, "chain": chain, "endpoints": endpoints,
                   "created": "2026-01-01T00:00:00Z", "updated": "2026-01-01T00:00:00Z", "versionId": 1, "height": 2}),
        );
    }

    fn bind(&mut self, kind: Kind, id: &str, did: Option<&str>, ns: &str) {
        self.put(
            binding_key(kind, id),
            json!({"kind": kind, "identifier": id, "did": did, "namespace": ns,
                   "created": "2026-01-01T00:00:00Z", "updated": "2026-01-03T00:00:00Z", "versionId": 1, "height": 4}),
        );
    }
}

#[test]
fn vaa_lookups_follow_the_longest_prefix_and_its_chain() {
    let mut s = Source::default();
    let owner = s.did(false);
    let item = s.did(false);
    s.namespace(Kind::Vaa, "VAA12", &owner, None, &[]);
    s.namespace(Kind::Vaa, "VAA1234", &owner, Some("abcd"), &[]);
    s.namespace(Kind::Ac, "abcd", &owner, None, &["https://abcd.example"]);
    s.bind(Kind::Vaa, "VAA129", Some(&item), "VAA12");
    s.bind(Kind::Vaa, "VAA12GONE", None, "VAA12");

    match VaaBridge.lookup(&s, "VAA129", None).unwrap() {
        VaaOutcome::Bound(r) => {
            assert_eq!(
                (r.company_prefix.as_str(), r.chain.as_str(), r.did.as_str()),
                ("VAA12", "main", item.as_str())
            );
            assert_eq!(r.updated, "2026-01-03T00:00:00Z");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        VaaBridge.lookup(&s, "VAA12GONE", None).unwrap(),
        VaaOutcome::NotBound { .. }
    ));
    assert!(matches!(
        VaaBridge.lookup(&s, "VAA1", None).unwrap(),
        VaaOutcome::NoPrefix { .. }
    ));
    match VaaBridge.lookup(&s, "VAA1234X", None).unwrap() {
        VaaOutcome::Elsewhere {
            chain,
            endpoints,
            company_prefix,
            ..
        } => {
            assert_eq!(
                (chain.as_str(), company_prefix.as_str()),
                ("abcd", "VAA1234")
            );
            assert_eq!(endpoints, ["https://abcd.example"]);
        }
        other => panic!("{other:?}"),
    }
    // On the sub-chain abcd itself, VAA1234's items are local; a main-chain prefix is elsewhere.
    assert!(matches!(
        VaaBridge.lookup(&s, "VAA1234X", Some("abcd")).unwrap(),
        VaaOutcome::NotBound { .. }
    ));
    assert!(matches!(
        VaaBridge.lookup(&s, "VAA129", Some("abcd")).unwrap(),
        VaaOutcome::Elsewhere { ref chain, .. } if chain == "main"
    ));
    assert!(matches!(
        VaaBridge.lookup(&s, "vaa129", None),
        Err(BridgeError::Invalid { .. })
    ));
}

#[test]
fn handles_render_did_records_and_map_codes() {
    let mut s = Source::default();
    let owner = s.did(false);
    let live = s.did(false);
    let gone = s.did(true);
    s.namespace(Kind::Handle, "86.100", &owner, None, &[]);
    s.bind(Kind::Handle, "86.100/live", Some(&live), "86.100");
    s.bind(Kind::Handle, "86.100/gone", Some(&gone), "86.100");
    s.bind(Kind::Handle, "86.100/unbound", None, "86.100");
    s.bind(
        Kind::Handle,
        "86.100/elsewhere",
        Some("did:bid:abcd:ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx"),
        "86.100",
    );
    let b = HandleBridge;
    let none: &[&str] = &[];
    let indexes = |h: &str| {
        let a = b.answer(&s, h.as_bytes(), &[], none, "http://r.example/");
        assert_eq!(a.code, response_code::SUCCESS, "{h}: {:?}", a.message);
        a.values.iter().map(|v| v.index).collect::<Vec<_>>()
    };
    assert_eq!(indexes("86.100/LIVE"), [1, 2, 3, 4, 10]);
    assert_eq!(
        indexes("86.100/gone"),
        [1, 2, 4],
        "no document once deactivated"
    );
    assert_eq!(
        indexes("86.100/elsewhere"),
        [1, 2],
        "another chain's DID: URL and DID only"
    );
    assert_eq!(indexes("0.NA/86.100"), [1, 2, 3]);
    assert_eq!(
        indexes(&format!("bid/{}", &live["did:bid:".len()..])),
        [1, 2, 3, 4, 10]
    );
    let a = b.answer(&s, b"86.100/live", &[1], none, "http://r.example/");
    assert_eq!(
        a.values[0].data,
        format!("http://r.example/1.0/identifiers/{live}").into_bytes()
    );
    assert_eq!(
        a.values[0].timestamp, 1_767_398_400,
        "the binding's last change"
    );
    for (h, code) in [
        ("86.100/unbound", response_code::HANDLE_NOT_FOUND),
        ("86.100/never", response_code::HANDLE_NOT_FOUND),
        ("0.NA/86.101", response_code::HANDLE_NOT_FOUND),
        (
            "bid/ef18F9AVK4SQLZPRrPkrVWwp9kbpdXHx",
            response_code::HANDLE_NOT_FOUND,
        ),
        ("86.101", response_code::HANDLE_NOT_FOUND),
        ("86..100", response_code::INVALID_HANDLE),
    ] {
        assert_eq!(
            b.answer(&s, h.as_bytes(), &[], none, "http://r").code,
            code,
            "{h}"
        );
    }
    assert_eq!(
        b.answer(&s, &[0xff, b'/', b'x'], &[], none, "http://r")
            .code,
        response_code::INVALID_HANDLE
    );
    assert_eq!(
        b.answer(&s, b"86.100/live", &[], &["NOPE"], "http://r")
            .code,
        response_code::VALUES_NOT_FOUND
    );

    // Back: the reverse index, as URIs: only the identifiers the DID's controller confirmed
    // (linked here; VAA130 is bound but not confirmed, so it resolves forward only).
    s.put(
        alias_key(&live),
        json!({"did": live, "aliases": [{"kind": "vaa", "identifier": "VAA129"}, {"kind": "vaa", "identifier": "VAA130"}, {"kind": "handle", "identifier": "86.100/live"}],
               "linked": [{"kind": "vaa", "identifier": "VAA129"}, {"kind": "handle", "identifier": "86.100/live"}],
               "versionId": 2, "height": 4}),
    );
    assert_eq!(
        Bridges::standard().aliases(&s, &live).unwrap(),
        ["vaa:VAA129", "hdl:86.100/live"]
    );
    assert!(Bridges::standard().aliases(&s, &owner).unwrap().is_empty());
}

#[test]
fn prefixes_carry_the_site_of_the_node_serving_them() {
    let mut s = Source::default();
    let owner = s.did(false);
    s.namespace(Kind::Handle, "88.100", &owner, None, &[]);
    s.namespace(
        Kind::Handle,
        "88.200",
        &owner,
        None,
        &["udp://198.51.100.9:2641", "tcp://198.51.100.9:3641"],
    );
    let here = SiteInfo::from_endpoints(&["tcp://192.0.2.1:2641".parse().unwrap()], 1, "this node")
        .unwrap();
    let b = HandleBridge;
    let site_of = |handle: &str| {
        let a = b.answer_with_site(
            &s,
            handle.as_bytes(),
            &[],
            &["HS_SITE"],
            "http://r",
            Some(&here),
        );
        assert_eq!(a.code, response_code::SUCCESS, "{handle}: {:?}", a.message);
        assert_eq!(a.values.len(), 1, "{handle}");
        assert_eq!(a.values[0].index, INDEX_SITE);
        SiteInfo::decode(&a.values[0].data).unwrap()
    };
    // Served here: this node's site, for the bare prefix and its prefix handle alike.
    assert_eq!(site_of("88.100"), here);
    assert_eq!(site_of("0.NA/88.100"), here);
    // Delegated to another node: that node's, TCP first.
    let there = site_of("88.200");
    assert_eq!(
        there.first_address(protocol::TCP),
        Some("198.51.100.9:3641".parse().unwrap())
    );
    assert_eq!(site_of("0.na/88.200"), there);
    // Without a site of its own, a node's prefixes carry none (the others still do).
    let a = b.answer(&s, b"88.100", &[], &["HS_SITE"], "http://r");
    assert_eq!(a.code, response_code::VALUES_NOT_FOUND);
    let a = b.answer(&s, b"88.200", &[], &["HS_SITE"], "http://r");
    assert_eq!(a.code, response_code::SUCCESS);
    // Not delegated, or not a prefix.
    for (h, code) in [
        ("88.300", response_code::HANDLE_NOT_FOUND),
        ("88.100.1", response_code::HANDLE_NOT_FOUND),
        ("88..100", response_code::INVALID_HANDLE),
        ("bid", response_code::INVALID_HANDLE),
    ] {
        let a = b.answer_with_site(&s, h.as_bytes(), &[], &["HS_SITE"], "http://r", Some(&here));
        assert_eq!(a.code, code, "{h}");
    }
}
