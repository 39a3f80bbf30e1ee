//! Namespace rules, driven through a real ledger: the authority delegates, only a namespace's
//! owner binds under it, every refusal names its rule and changes nothing, and the reverse
//! index follows every bind, rebind and unbind.

use sparkid_ledger::verify_chain;
use sparkid_registrar::namespace::{
    alias_key, binding_key, namespace_key, AliasRecord, BindingRecord, HandleEndpoint, Kind,
    NameError, NamespaceRecord,
};
use sparkid_registrar::{BidStateMachine, Operation, OperationError};
use sparkid_test_support::*;

/// A chain whose authority is `authority`, holding live DIDs for the authority and `others`.
fn chain_with(authority: &Identity, others: &[&Identity]) -> DevChain {
    let mut chain = DevChain::with(BidStateMachine::default(), Some(authority.did.clone()));
    for id in std::iter::once(authority).chain(others.iter().copied()) {
        assert_included(&chain.submit(
            &id.kid(1),
            id.key(1),
            Operation::Create {
                document: id.standard_document(),
            },
        ));
    }
    chain
}

fn delegate(kind: Kind, namespace: &str, owner: &Identity) -> Operation {
    Operation::Delegate {
        kind,
        namespace: namespace.into(),
        owner: owner.did.clone(),
        chain: None,
        endpoints: vec![],
    }
}

fn bind(kind: Kind, identifier: &str, did: &Identity) -> Operation {
    Operation::Bind {
        kind,
        identifier: identifier.into(),
        did: did.did.clone(),
    }
}

fn get<T: serde::de::DeserializeOwned>(chain: &DevChain, key: &str) -> Option<T> {
    chain
        .ledger
        .get(key)
        .unwrap()
        .map(|t| serde_json::from_str(&t).unwrap())
}

#[test]
fn the_authority_delegates_and_the_owner_binds_under_the_longest_prefix() {
    let authority = Identity::new(2);
    let owner = Identity::new(2);
    let sub_owner = Identity::new(2);
    let device = Identity::new(2);
    let mut chain = chain_with(&authority, &[&owner, &sub_owner, &device]);
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        delegate(Kind::Vaa, "VAA12", &owner),
    ));
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        delegate(Kind::Vaa, "VAA1234", &sub_owner),
    ));
    let ns: NamespaceRecord = get(&chain, &namespace_key(Kind::Vaa, "VAA1234")).unwrap();
    assert_eq!(ns.owner, sub_owner.did);
    assert_eq!(ns.version_id, 1);

    // VAA1234XYZ falls under VAA1234 (the longest), so VAA12's owner may not bind it ...
    let refused = refusal(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Vaa, "VAA1234XYZ", &device),
    ));
    assert!(
        matches!(&refused, OperationError::NotNamespaceOwner { namespace, .. } if namespace == "VAA1234"),
        "{refused}"
    );
    assert!(chain
        .ledger
        .get(&binding_key(Kind::Vaa, "VAA1234XYZ"))
        .unwrap()
        .is_none());
    // ... but VAA1234's owner may, and VAA12's owner binds VAA129 under VAA12.
    assert_included(&chain.submit(
        &sub_owner.kid(1),
        sub_owner.key(1),
        bind(Kind::Vaa, "VAA1234XYZ", &device),
    ));
    assert_included(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Vaa, "VAA129", &device),
    ));
    let binding: BindingRecord = get(&chain, &binding_key(Kind::Vaa, "VAA1234XYZ")).unwrap();
    assert_eq!(binding.did.as_deref(), Some(device.did.as_str()));
    assert_eq!(binding.namespace, "VAA1234");
    let aliases: AliasRecord = get(&chain, &alias_key(&device.did)).unwrap();
    assert_eq!(aliases.uris(), ["vaa:VAA1234XYZ", "vaa:VAA129"]);
}

#[test]
fn only_the_authority_delegates() {
    let authority = Identity::new(2);
    let intruder = Identity::new(2);
    let mut chain = chain_with(&authority, &[&intruder]);
    let before = chain.ledger.height();
    let refused = refusal(&chain.submit(
        &intruder.kid(1),
        intruder.key(1),
        delegate(Kind::Dns, "example.com", &intruder),
    ));
    assert!(
        matches!(refused, OperationError::NotAuthority { .. }),
        "{refused}"
    );
    // The authority's recovery key is not an authentication key: refused too.
    let refused = refusal(&chain.submit(
        &authority.kid(2),
        authority.key(2),
        delegate(Kind::Dns, "example.com", &intruder),
    ));
    assert!(
        matches!(refused, OperationError::NotAuthority { .. }),
        "{refused}"
    );
    assert_eq!(chain.ledger.height(), before);
    assert!(chain
        .ledger
        .get(&namespace_key(Kind::Dns, "example.com"))
        .unwrap()
        .is_none());
}

#[test]
fn a_chain_without_an_authority_delegates_nothing() {
    let someone = Identity::new(2);
    let mut chain = DevChain::new();
    let refused = refusal(&chain.submit(
        &someone.kid(1),
        someone.key(1),
        delegate(Kind::Dns, "example.com", &someone),
    ));
    assert_eq!(refused, OperationError::NoAuthority);
}

#[test]
fn a_new_authority_signs_with_the_key_its_bid_derives_from() {
    // The authority has no DID record yet: the deriving key speaks for it, another key does not.
    let authority = Identity::new(2);
    let owner = Identity::new(2);
    let mut chain = DevChain::with(BidStateMachine::default(), Some(authority.did.clone()));
    assert_included(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        Operation::Create {
            document: owner.standard_document(),
        },
    ));
    let refused = refusal(&chain.submit(
        &authority.kid(2),
        authority.key(2),
        delegate(Kind::Handle, "86.100", &owner),
    ));
    assert!(matches!(refused, OperationError::NotAuthority { .. }));
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        delegate(Kind::Handle, "86.100", &owner),
    ));
}

#[test]
fn malformed_names_and_unknown_owners_are_refused_with_their_rule() {
    let authority = Identity::new(2);
    let owner = Identity::new(2);
    let stranger = Identity::new(2);
    let mut chain = chain_with(&authority, &[&owner]);
    let cases = [
        (
            delegate(Kind::Vaa, "vaa12", &owner),
            "upper-case A-Z and 0-9",
        ),
        (delegate(Kind::Vaa, "XYZ12", &owner), "issuing agency code"),
        (delegate(Kind::Dns, "exa mple.com", &owner), "DNS name"),
        (delegate(Kind::Handle, "86/100", &owner), "handle prefix"),
        (delegate(Kind::Ac, "toolong", &owner), "AC code"),
        (
            delegate(Kind::Dns, "example.org", &stranger),
            "does not exist",
        ),
        (
            Operation::Delegate {
                kind: Kind::Dns,
                namespace: "example.net".into(),
                owner: owner.did.clone(),
                chain: Some("abcd".into()),
                endpoints: vec![],
            },
            "chain applies to VAA",
        ),
        (
            Operation::Delegate {
                kind: Kind::Ac,
                namespace: "abcd".into(),
                owner: owner.did.clone(),
                chain: None,
                endpoints: vec!["ftp://x".into()],
            },
            "http(s) URL",
        ),
    ];
    for (op, rule) in cases {
        let message = refusal(&chain.submit(&authority.kid(1), authority.key(1), op)).to_string();
        assert!(message.contains(rule), "{message:?} should name {rule:?}");
    }
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        delegate(Kind::Dns, "example.com", &owner),
    ));
    let refused = refusal(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Dns, "pump.example.org", &owner),
    ));
    assert!(
        matches!(refused, OperationError::NoNamespace { .. }),
        "{refused}"
    );
    let refused = refusal(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Dns, "pump.example.com", &stranger),
    ));
    assert!(matches!(refused, OperationError::NotFound(_)), "{refused}");
    let refused =
        refusal(&chain.submit(&owner.kid(1), owner.key(1), bind(Kind::Ac, "abcd", &owner)));
    assert_eq!(refused, OperationError::Name(NameError::NoBindingsUnderAc));
}

#[test]
fn rebind_moves_the_alias_and_unbind_keeps_a_versioned_tombstone() {
    let authority = Identity::new(2);
    let owner = Identity::new(2);
    let first = Identity::new(2);
    let second = Identity::new(2);
    let mut chain = chain_with(&authority, &[&owner, &first, &second]);
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        delegate(Kind::Dns, "Example.COM.", &owner),
    ));
    // Names are case-insensitive: the binding is stored in canonical form.
    assert_included(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Dns, "Pump.example.com", &first),
    ));
    let refused = refusal(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Dns, "pump.example.com", &first),
    ));
    assert!(matches!(refused, OperationError::AlreadyExists(_)));
    assert_included(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Dns, "pump.example.com", &second),
    ));
    let first_aliases: AliasRecord = get(&chain, &alias_key(&first.did)).unwrap();
    assert!(first_aliases.aliases.is_empty());
    let second_aliases: AliasRecord = get(&chain, &alias_key(&second.did)).unwrap();
    assert_eq!(second_aliases.uris(), ["dns:pump.example.com"]);

    // A stranger cannot unbind; the owner can, and the record stays with did: null.
    let refused = refusal(&chain.submit(
        &first.kid(1),
        first.key(1),
        Operation::Unbind {
            kind: Kind::Dns,
            identifier: "pump.example.com".into(),
        },
    ));
    assert!(matches!(refused, OperationError::NotNamespaceOwner { .. }));
    assert_included(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        Operation::Unbind {
            kind: Kind::Dns,
            identifier: "pump.example.com".into(),
        },
    ));
    let binding: BindingRecord = get(&chain, &binding_key(Kind::Dns, "pump.example.com")).unwrap();
    assert_eq!(binding.did, None);
    assert_eq!(binding.version_id, 3);
    let history = chain
        .ledger
        .history(&binding_key(Kind::Dns, "pump.example.com"))
        .unwrap();
    assert_eq!(history.len(), 3);
    let second_aliases: AliasRecord = get(&chain, &alias_key(&second.did)).unwrap();
    assert!(second_aliases.aliases.is_empty());
    let refused = refusal(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        Operation::Unbind {
            kind: Kind::Dns,
            identifier: "pump.example.com".into(),
        },
    ));
    assert!(matches!(refused, OperationError::NotFound(_)));

    // Bindings are provable like DIDs, and the chain re-verifies from genesis.
    let proof = chain
        .ledger
        .prove(&binding_key(Kind::Dns, "pump.example.com"))
        .unwrap();
    proof.verify(chain.ledger.validators()).unwrap();
    verify_chain(&chain.ledger, &chain.machine).unwrap();
}

#[test]
fn an_ac_code_delegation_names_its_resolver_endpoints() {
    let authority = Identity::new(2);
    let operator = Identity::new(2);
    let mut chain = chain_with(&authority, &[&operator]);
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        Operation::Delegate {
            kind: Kind::Ac,
            namespace: "byo1".into(),
            owner: operator.did.clone(),
            chain: None,
            endpoints: vec!["http://127.0.0.1:9000".into()],
        },
    ));
    let ns: NamespaceRecord = get(&chain, &namespace_key(Kind::Ac, "byo1")).unwrap();
    assert_eq!(ns.endpoints, ["http://127.0.0.1:9000"]);
    // A VAA prefix may say its items live on that sub-chain.
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        Operation::Delegate {
            kind: Kind::Vaa,
            namespace: "VAA77".into(),
            owner: operator.did.clone(),
            chain: Some("byo1".into()),
            endpoints: vec![],
        },
    ));
    let ns: NamespaceRecord = get(&chain, &namespace_key(Kind::Vaa, "VAA77")).unwrap();
    assert_eq!(ns.chain.as_deref(), Some("byo1"));
    // Its items are bound on the sub-chain, not here.
    let refused = refusal(&chain.submit(
        &operator.kid(1),
        operator.key(1),
        bind(Kind::Vaa, "VAA771", &operator),
    ));
    assert!(
        matches!(refused, OperationError::ItemsOnAnotherChain { .. }),
        "{refused}"
    );
    // The handle prefixes that read DIDs as handles are not delegated.
    let refused = refusal(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        delegate(Kind::Handle, "bid", &operator),
    ));
    assert!(matches!(
        refused,
        OperationError::Name(NameError::ReservedHandlePrefix(_))
    ));
}

/// A sub-chain ledger (genesis `acCode`), one validator, with `blocks` blocks of one DID each.
fn sub_chain(ac: &str, blocks: usize) -> DevChain {
    let validator = sparkid_bid::PrivateKey::generate();
    let mut genesis = genesis(&format!("sub-{ac}"), &[&validator]);
    genesis.other.insert("acCode".into(), serde_json::json!(ac));
    let mut chain = DevChain::for_genesis(genesis, vec![validator]);
    for _ in 0..blocks {
        let id = Identity::on(Some(ac.parse().unwrap()), 2);
        let document = id.standard_document();
        assert_included(&chain.submit(&id.kid(1), id.key(1), Operation::Create { document }));
    }
    chain
}

fn anchor_op(sub: &DevChain, with_genesis: bool) -> Operation {
    Operation::Anchor {
        ac: "byo1".into(),
        genesis: with_genesis.then(|| Box::new(sub.ledger.genesis().clone())),
        header: Box::new(sub.ledger.head()),
    }
}

#[test]
fn the_owner_anchors_certified_sub_chain_headers_that_only_move_forward() {
    use sparkid_registrar::anchor::{anchor_key, AnchorRecord};
    let authority = Identity::new(2);
    let operator = Identity::new(2);
    let stranger = Identity::new(2);
    let mut chain = chain_with(&authority, &[&operator, &stranger]);
    let mut sub = sub_chain("byo1", 2);

    // Nothing to anchor under before the AC code is delegated.
    let refused = refusal(&chain.submit(&operator.kid(1), operator.key(1), anchor_op(&sub, true)));
    assert!(
        matches!(refused, OperationError::NoNamespace { .. }),
        "{refused}"
    );
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        Operation::Delegate {
            kind: Kind::Ac,
            namespace: "byo1".into(),
            owner: operator.did.clone(),
            chain: None,
            endpoints: vec!["http://127.0.0.1:9000".into()],
        },
    ));
    // Only the owner anchors; the first anchor carries the genesis.
    let refused = refusal(&chain.submit(&stranger.kid(1), stranger.key(1), anchor_op(&sub, true)));
    assert!(
        matches!(refused, OperationError::NotNamespaceOwner { .. }),
        "{refused}"
    );
    let refused = refusal(&chain.submit(&operator.kid(1), operator.key(1), anchor_op(&sub, false)));
    assert!(
        refused
            .to_string()
            .contains("must carry the sub-chain's genesis"),
        "{refused}"
    );
    assert_included(&chain.submit(&operator.kid(1), operator.key(1), anchor_op(&sub, true)));
    let record: AnchorRecord = get(&chain, &anchor_key("byo1")).unwrap();
    assert_eq!(record.height, 2);
    assert_eq!(record.chain_id, "sub-byo1");
    assert_eq!(record.block_hash, sub.ledger.head().header.hash().to_hex());
    assert_eq!(record.version_id, 1);

    // The same height again, or a header its validators did not certify, is refused.
    let refused = refusal(&chain.submit(&operator.kid(1), operator.key(1), anchor_op(&sub, false)));
    assert!(
        refused
            .to_string()
            .contains("is not above the latest anchor"),
        "{refused}"
    );
    let other = sub_chain("byo1", 3);
    let refused =
        refusal(&chain.submit(&operator.kid(1), operator.key(1), anchor_op(&other, false)));
    assert!(
        refused
            .to_string()
            .contains("not certified by the anchored validators"),
        "{refused}"
    );
    // Another genesis cannot replace the first one.
    let refused =
        refusal(&chain.submit(&operator.kid(1), operator.key(1), anchor_op(&other, true)));
    assert!(refused.to_string().contains("genesis differs"), "{refused}");

    // A later certified header moves the anchor, and the record checks answers against it.
    let id = Identity::on(Some("byo1".parse().unwrap()), 2);
    let document = id.standard_document();
    assert_included(&sub.submit(&id.kid(1), id.key(1), Operation::Create { document }));
    assert_included(&chain.submit(&operator.kid(1), operator.key(1), anchor_op(&sub, false)));
    let record: AnchorRecord = get(&chain, &anchor_key("byo1")).unwrap();
    assert_eq!((record.height, record.version_id), (3, 2));
    assert!(record.check(&sub.ledger.head()).is_ok());
    let older = sub.ledger.block(2).unwrap().unwrap();
    let older = sparkid_ledger::CertifiedHeader {
        header: older.header,
        certificate: older.certificate,
    };
    assert!(record
        .check(&older)
        .unwrap_err()
        .contains("older than the latest anchor"));
    assert!(record
        .check(&other.ledger.head())
        .unwrap_err()
        .contains("not the anchored block"));
    verify_chain(&chain.ledger, &chain.machine).unwrap();
}

#[test]
fn a_handle_prefix_delegation_names_the_handle_interfaces_of_the_node_serving_it() {
    let authority = Identity::new(2);
    let owner = Identity::new(2);
    let mut chain = chain_with(&authority, &[&owner]);
    let delegate_at = |endpoints: &[&str]| Operation::Delegate {
        kind: Kind::Handle,
        namespace: "88.200".into(),
        owner: owner.did.clone(),
        chain: None,
        endpoints: endpoints.iter().map(|e| e.to_string()).collect(),
    };
    for (bad, rule) in [
        ("tcp://node.example:2641", "IP address"),
        ("ftp://198.51.100.7:21", "tcp|udp|http|https"),
        ("http://198.51.100.7", "IP address"),
        ("tcp://::1", "IP address"),
        ("udp://198.51.100.7:0", "port 0"),
    ] {
        let message =
            refusal(&chain.submit(&authority.kid(1), authority.key(1), delegate_at(&[bad])))
                .to_string();
        assert!(
            message.contains(rule),
            "{bad}: {message:?} should name {rule:?}"
        );
    }
    assert_included(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        delegate_at(&[
            "tcp://198.51.100.7",
            "udp://[2001:db8::7]:3641",
            "http://198.51.100.7:8000",
        ]),
    ));
    let ns: NamespaceRecord = get(&chain, &namespace_key(Kind::Handle, "88.200")).unwrap();
    let parsed: Vec<String> = ns
        .endpoints
        .iter()
        .map(|e| e.parse::<HandleEndpoint>().unwrap().to_string())
        .collect();
    assert_eq!(
        parsed,
        [
            "tcp://198.51.100.7:2641",
            "udp://[2001:db8::7]:3641",
            "http://198.51.100.7:8000"
        ]
    );
    // Endpoints still mean nothing for the other kinds.
    let message = refusal(&chain.submit(
        &authority.kid(1),
        authority.key(1),
        Operation::Delegate {
            kind: Kind::Dns,
            namespace: "example.org".into(),
            owner: owner.did.clone(),
            chain: None,
            endpoints: vec!["tcp://198.51.100.7".into()],
        },
    ))
    .to_string();
    assert!(message.contains("AC-code and Handle-prefix"), "{message}");
}
