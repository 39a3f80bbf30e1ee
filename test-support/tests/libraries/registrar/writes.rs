//! No rollback by replay and consent for aliases (issue 12, items 11 and 12), as rules of the
//! state machine, driven through a real ledger.

use serde_json::json;
use sparkid_test_support::*;

use sparkid_ledger::{verify_chain, TxOutcome, TxRejection};
use sparkid_registrar::namespace::{
    alias_key, AliasRecord, Kind, MAX_ALIASES_PER_DID, MAX_LINKS_PER_DID,
};
use sparkid_registrar::{BidStateMachine, Operation, OperationError, SubmitError, Submitter};

fn update(id: &Identity, service: &str, previous: Option<u64>) -> Operation {
    let mut document = id.standard_document();
    document["service"] = json!([{"id": format!("{}#svc", id.did), "type": "LinkedDomains",
                                  "serviceEndpoint": service}]);
    Operation::Update {
        document,
        previous_version_id: previous,
    }
}

fn service_of(chain: &DevChain, id: &Identity) -> serde_json::Value {
    chain.record(&id.bid).document["service"][0]["serviceEndpoint"].clone()
}

fn created(id: &Identity, chain: &mut DevChain) {
    assert_included(&chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create {
            document: id.standard_document(),
        },
    ));
}

#[test]
fn an_update_held_back_cannot_roll_the_document_back() {
    let id = Identity::new(2);
    let mut chain = DevChain::new();
    created(&id, &mut chain);
    // A is signed against version 1 and held back; B, also against version 1, commits.
    let held = chain.tx(
        &id.kid(1),
        id.key(1),
        &update(&id, "https://a.example", Some(1)),
    );
    assert_included(&chain.submit(
        &id.kid(1),
        id.key(1),
        update(&id, "https://b.example", Some(1)),
    ));
    assert_eq!(chain.record(&id.bid).version_id, 2);
    let refused = refusal(&chain.propose(vec![held]).pop().unwrap());
    assert_eq!(
        refused,
        OperationError::VersionConflict {
            op: "update",
            did: id.did.clone(),
            named: 1,
            current: 2
        }
    );
    assert!(
        refused.to_string().contains("previousVersionId"),
        "{refused}"
    );
    assert_eq!(service_of(&chain, &id), "https://b.example");
    assert_eq!(chain.record(&id.bid).version_id, 2);

    // A held deactivate and a held recover are refused the same way.
    let deactivate = Operation::Deactivate {
        id: id.did.clone(),
        previous_version_id: Some(1),
    };
    let refused = refusal(&chain.submit(&id.kid(2), id.key(2), deactivate));
    assert!(matches!(
        refused,
        OperationError::VersionConflict {
            op: "deactivate",
            ..
        }
    ));
    let recover = Operation::Recover {
        document: id.standard_document(),
        previous_version_id: Some(1),
    };
    let refused = refusal(&chain.submit(&id.kid(2), id.key(2), recover));
    assert!(matches!(
        refused,
        OperationError::VersionConflict { op: "recover", .. }
    ));
    assert!(!chain.record(&id.bid).deactivated);
    verify_chain(&chain.ledger, &chain.machine).unwrap();
}

#[test]
fn a_committed_update_replayed_is_refused() {
    let id = Identity::new(2);
    let mut chain = DevChain::new();
    created(&id, &mut chain);
    let first = chain.tx(
        &id.kid(1),
        id.key(1),
        &update(&id, "https://b.example", Some(1)),
    );
    assert_included(&chain.propose(vec![first.clone()]).pop().unwrap());
    assert_included(&chain.submit(
        &id.kid(1),
        id.key(1),
        update(&id, "https://c.example", Some(2)),
    ));
    // The very same transaction: its hash is indexed.
    let outcome = chain.propose(vec![first.clone()]).pop().unwrap();
    assert!(
        matches!(
            outcome,
            TxOutcome::Rejected {
                reason: TxRejection::Duplicate(_),
                ..
            }
        ),
        "{outcome:?}"
    );
    // The same operation signed again (a new nonce, so a new hash): the version refuses it.
    let again = chain.tx(
        &id.kid(1),
        id.key(1),
        &update(&id, "https://b.example", Some(1)),
    );
    assert!(matches!(
        refusal(&chain.propose(vec![again]).pop().unwrap()),
        OperationError::VersionConflict {
            named: 1,
            current: 3,
            ..
        }
    ));
    assert_eq!(service_of(&chain, &id), "https://c.example");
}

#[test]
fn new_submissions_must_name_the_version_they_replace_but_old_blocks_still_replay() {
    let id = Identity::new(2);
    let mut chain = DevChain::new();
    created(&id, &mut chain);
    // A block certified before the rule (no previousVersionId) still executes, so chains
    // written then re-execute to the same roots.
    assert_included(&chain.submit(
        &id.kid(1),
        id.key(1),
        update(&id, "https://old.example", None),
    ));
    verify_chain(&chain.ledger, &chain.machine).unwrap();

    // A new submission without it is refused before it reaches a block.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let fresh = DevChain::new();
    let submitter = Submitter::start(
        fresh.ledger.clone(),
        BidStateMachine::default(),
        Box::new(fresh.certifier()),
    );
    let submit = |op: &Operation| {
        let tx = fresh.tx(&id.kid(1), id.key(1), op);
        runtime.block_on(submitter.submit(tx))
    };
    submit(&Operation::Create {
        document: id.standard_document(),
    })
    .unwrap();
    match submit(&update(&id, "https://new.example", None)) {
        Err(
            e @ SubmitError::Rejected(TxRejection::Operation(
                OperationError::MissingPreviousVersion { op: "update" },
            )),
        ) => assert_eq!(e.http_status(), 400),
        other => panic!("expected MissingPreviousVersion, got {other:?}"),
    }
    let deactivate = Operation::Deactivate {
        id: id.did.clone(),
        previous_version_id: None,
    };
    assert!(matches!(
        submit(&deactivate),
        Err(SubmitError::Rejected(TxRejection::Operation(
            OperationError::MissingPreviousVersion { op: "deactivate" }
        )))
    ));
    assert_eq!(fresh.ledger.height(), 1);
    submit(&update(&id, "https://new.example", Some(1))).unwrap();
    match submit(&update(&id, "https://newer.example", Some(1))) {
        Err(
            e @ SubmitError::Rejected(TxRejection::Operation(OperationError::VersionConflict {
                ..
            })),
        ) => assert_eq!(e.http_status(), 409),
        other => panic!("expected VersionConflict, got {other:?}"),
    }
}

/// A chain whose authority delegated `example.com` (DNS) and `VAA77` (VAA) to `owner`.
fn namespaces(authority: &Identity, owner: &Identity, others: &[&Identity]) -> DevChain {
    let mut chain = DevChain::with(BidStateMachine::default(), Some(authority.did.clone()));
    for id in [authority, owner].into_iter().chain(others.iter().copied()) {
        created(id, &mut chain);
    }
    for (kind, namespace) in [(Kind::Dns, "example.com"), (Kind::Vaa, "VAA77")] {
        assert_included(&chain.submit(
            &authority.kid(1),
            authority.key(1),
            Operation::Delegate {
                kind,
                namespace: namespace.into(),
                owner: owner.did.clone(),
                chain: None,
                endpoints: vec![],
            },
        ));
    }
    chain
}

fn bind(kind: Kind, identifier: &str, did: &Identity) -> Operation {
    Operation::Bind {
        kind,
        identifier: identifier.into(),
        did: did.did.clone(),
    }
}

fn link(kind: Kind, identifier: &str, did: &Identity) -> Operation {
    Operation::Link {
        did: did.did.clone(),
        kind,
        identifier: identifier.into(),
    }
}

fn aliases(chain: &DevChain, id: &Identity) -> AliasRecord {
    serde_json::from_str(&chain.ledger.get(&alias_key(&id.did)).unwrap().unwrap()).unwrap()
}

#[test]
fn a_binding_shows_on_the_dids_side_only_once_its_controller_confirms_it() {
    let (authority, owner, victim) = (Identity::new(2), Identity::new(2), Identity::new(2));
    let mut chain = namespaces(&authority, &owner, &[&victim]);
    assert_included(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Dns, "pump.example.com", &victim),
    ));
    // Bound (the forward record and the reverse index hold it), not confirmed.
    let record = aliases(&chain, &victim);
    assert_eq!(record.uris(), ["dns:pump.example.com"]);
    let document = chain.record(&victim.bid).document;
    assert!(record.confirmed_uris(Some(&document)).is_empty());

    // Only the DID's controller links: not the namespace owner, not a recovery-only key.
    for (signer, key) in [(owner.kid(1), owner.key(1)), (victim.kid(2), victim.key(2))] {
        let refused =
            refusal(&chain.submit(&signer, key, link(Kind::Dns, "pump.example.com", &victim)));
        assert!(
            matches!(refused, OperationError::NotController { .. }),
            "{refused}"
        );
    }
    assert_included(&chain.submit(
        &victim.kid(1),
        victim.key(1),
        link(Kind::Dns, "Pump.Example.COM", &victim),
    ));
    let record = aliases(&chain, &victim);
    assert_eq!(record.confirmed_uris(None), ["dns:pump.example.com"]);
    // Linked twice: refused; unlinked: no longer shown, still bound.
    assert!(matches!(
        refusal(&chain.submit(
            &victim.kid(1),
            victim.key(1),
            link(Kind::Dns, "pump.example.com", &victim)
        )),
        OperationError::AlreadyExists(_)
    ));
    assert_included(&chain.submit(
        &victim.kid(1),
        victim.key(1),
        Operation::Unlink {
            did: victim.did.clone(),
            kind: Kind::Dns,
            identifier: "pump.example.com".into(),
        },
    ));
    let record = aliases(&chain, &victim);
    assert!(record.confirmed_uris(None).is_empty());
    assert_eq!(record.uris(), ["dns:pump.example.com"]);

    // The document listing it confirms it too (type 103, a domain name; or a vaa: URI).
    let mut document = victim.standard_document();
    document["alsoKnownAs"] =
        json!([{"type": 103, "id": "pump.example.com"}, {"type": 102, "id": "vaa:VAA77X"}]);
    assert_included(&chain.submit(
        &victim.kid(1),
        victim.key(1),
        Operation::Update {
            document,
            previous_version_id: Some(1),
        },
    ));
    assert_included(&chain.submit(
        &owner.kid(1),
        owner.key(1),
        bind(Kind::Vaa, "VAA77X", &victim),
    ));
    let document = chain.record(&victim.bid).document;
    assert_eq!(
        aliases(&chain, &victim).confirmed_uris(Some(&document)),
        ["vaa:VAA77X", "dns:pump.example.com"]
    );
    verify_chain(&chain.ledger, &chain.machine).unwrap();
}

#[test]
fn aliases_per_did_are_capped() {
    let (authority, owner, victim) = (Identity::new(2), Identity::new(2), Identity::new(2));
    let mut chain = namespaces(&authority, &owner, &[&victim]);
    let binds: Vec<_> = (0..=MAX_ALIASES_PER_DID)
        .map(|i| {
            chain.tx(
                &owner.kid(1),
                owner.key(1),
                &bind(Kind::Dns, &format!("n{i}.example.com"), &victim),
            )
        })
        .collect();
    let mut outcomes = chain.propose(binds);
    let last = outcomes.pop().unwrap();
    assert!(outcomes
        .iter()
        .all(|o| matches!(o, TxOutcome::Included { .. })));
    assert_eq!(
        refusal(&last),
        OperationError::TooManyAliases {
            did: victim.did.clone(),
            what: "bound identifiers",
            limit: MAX_ALIASES_PER_DID
        }
    );
    assert_eq!(aliases(&chain, &victim).aliases.len(), MAX_ALIASES_PER_DID);

    let links: Vec<_> = (0..=MAX_LINKS_PER_DID)
        .map(|i| {
            chain.tx(
                &victim.kid(1),
                victim.key(1),
                &link(Kind::Vaa, &format!("VAA77L{i}"), &victim),
            )
        })
        .collect();
    let mut outcomes = chain.propose(links);
    let last = refusal(&outcomes.pop().unwrap());
    assert!(
        matches!(
            last,
            OperationError::TooManyAliases {
                what: "linked identifiers",
                ..
            }
        ),
        "{last}"
    );
    assert_eq!(aliases(&chain, &victim).linked.len(), MAX_LINKS_PER_DID);
}
