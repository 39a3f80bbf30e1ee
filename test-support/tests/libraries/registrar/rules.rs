//! The did:bid operation rules, driven through a real ledger: every transaction is signed,
//! verified and proposed in a block, and refusals are read from the ledger's outcomes.

use serde_json::{json, Value};
use sparkid_bid::document::DID_CONTEXT;
use sparkid_bid::{AcCode, Bid, DocumentError, PrivateKey};
use sparkid_ledger::{verify_chain, TxOutcome, TxRejection};
use sparkid_registrar::operation::format_time;
use sparkid_registrar::{did_key, BidStateMachine, Operation, OperationError};

use sparkid_test_support::*;

/// A chain holding `id` created with its standard document.
fn created(id: &Identity) -> DevChain {
    let mut chain = DevChain::new();
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create {
            document: id.standard_document(),
        },
    );
    assert_included(&outcome);
    chain
}

#[test]
fn create_signed_by_the_deriving_authentication_key_succeeds() {
    let id = Identity::new(2);
    let mut chain = DevChain::new();
    let document = id.standard_document();
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create {
            document: document.clone(),
        },
    );
    assert!(
        matches!(
            outcome,
            TxOutcome::Included {
                height: 1,
                index: 0,
                ..
            }
        ),
        "{outcome:?}"
    );

    let record = chain.record(&id.bid);
    assert_eq!(record.version_id, 1);
    assert!(!record.deactivated);
    assert_eq!(record.height, 1);
    assert_eq!(record.operation, "create");
    assert_eq!(record.created, format_time(chain.time));
    assert_eq!(record.updated, record.created);
    assert_eq!(record.document, document);
    let doc = record.bid_document().unwrap();
    assert_eq!(doc.id, id.did);
    assert_eq!(doc.authentication, [id.kid(1)]);
    assert_eq!(doc.recovery(), [id.kid(2)]);
}

#[test]
fn create_drops_times_and_proof_from_the_stored_document() {
    let id = Identity::new(2);
    let mut chain = DevChain::new();
    let mut document = id.standard_document();
    document["created"] = json!("2001-01-01T00:00:00Z");
    document["updated"] = json!("2001-01-01T00:00:00Z");
    document["proof"] = json!({"creator": id.kid(1), "signatureValue": "x"});
    assert_included(&chain.submit(&id.kid(1), id.key(1), Operation::Create { document }));
    let record = chain.record(&id.bid);
    assert_eq!(record.document, id.standard_document());
    assert_eq!(
        record.native_document()["created"],
        json!(format_time(chain.time))
    );
}

#[test]
fn create_of_a_did_derived_from_another_key_is_not_self_certifying() {
    let alice = Identity::new(2);
    let mallory = PrivateKey::generate();
    let mut chain = DevChain::new();
    // Mallory claims Alice's DID, listing her own key as its authentication key.
    let mut document = alice.standard_document();
    document["publicKey"][0]["publicKeyHex"] = json!(mallory.public_key().to_encoded());
    let outcome = chain.submit(&alice.kid(1), &mallory, Operation::Create { document });
    let mallory_did = Bid::derive(&mallory.public_key(), None)
        .unwrap()
        .to_string();
    assert_eq!(
        refusal(&outcome),
        OperationError::NotSelfCertifying {
            did: alice.did.clone(),
            derived: mallory_did
        }
    );
    assert_eq!(chain.raw(&alice.bid), None);
}

#[test]
fn create_by_the_deriving_key_outside_authentication_is_refused() {
    // key-1 derives the DID but only key-2 authenticates.
    let id = Identity::new(2);
    let mut chain = DevChain::new();
    let document = id.document(&[1, 2], &[2], &[2]);
    let outcome = chain.submit(&id.kid(1), id.key(1), Operation::Create { document });
    assert_eq!(
        refusal(&outcome),
        OperationError::NotAuthenticationKey {
            op: "create",
            signer: id.kid(1)
        }
    );
}

#[test]
fn create_twice_is_refused_across_blocks_and_within_a_block() {
    let id = Identity::new(2);
    let mut chain = created(&id);
    let stored = chain.raw(&id.bid);
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create {
            document: id.standard_document(),
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::AlreadyExists(id.did.clone())
    );
    assert_eq!(chain.raw(&id.bid), stored);

    // Two creates of one DID in the same block: the second sees the first's write.
    let other = Identity::new(2);
    let op = Operation::Create {
        document: other.standard_document(),
    };
    let txs = vec![
        chain.tx(&other.kid(1), other.key(1), &op),
        chain.tx(&other.kid(1), other.key(1), &op),
    ];
    let outcomes = chain.propose(txs);
    assert_included(&outcomes[0]);
    assert_eq!(
        refusal(&outcomes[1]),
        OperationError::AlreadyExists(other.did.clone())
    );
    assert_eq!(chain.record(&other.bid).version_id, 1);
}

#[test]
fn create_with_a_bad_document_names_the_document_rule() {
    let id = Identity::new(2);
    let mut chain = DevChain::new();

    let no_authentication = id.document(&[1, 2], &[], &[2]);
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create {
            document: no_authentication,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::Document(DocumentError::NoAuthentication)
    );

    // authentication names a key the document does not have.
    let dangling = id.document(&[2], &[1], &[2]);
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create { document: dangling },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::Document(DocumentError::DanglingReference {
            relationship: "authentication",
            id: id.kid(1)
        })
    );

    let dangling_recovery = id.document(&[1], &[1], &[2]);
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create {
            document: dangling_recovery,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::Document(DocumentError::DanglingReference {
            relationship: "extension.recovery",
            id: id.kid(2)
        })
    );

    let mut no_context = id.standard_document();
    no_context["@context"] = json!(["https://example.org"]);
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create {
            document: no_context,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::Document(DocumentError::MissingDidContext)
    );

    assert_eq!(chain.raw(&id.bid), None);
    assert_eq!(chain.ledger.height(), 0);
}

#[test]
fn update_by_an_authentication_key_bumps_the_version() {
    let id = Identity::new(3);
    let mut chain = created(&id);
    let created_at = chain.record(&id.bid).created;

    // Adding a key that controls nothing, and a service, is an ordinary update.
    let mut document = id.document(&[1, 2, 3], &[1], &[2]);
    document["service"] = json!([{"id": format!("{}#home", id.did), "type": "DIDResolver", "serviceEndpoint": "https://r.example"}]);
    document["extension"]["ttl"] = json!(600);
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Update {
            document: document.clone(),
            previous_version_id: None,
        },
    );
    assert!(
        matches!(outcome, TxOutcome::Included { height: 2, .. }),
        "{outcome:?}"
    );

    let record = chain.record(&id.bid);
    assert_eq!(record.version_id, 2);
    assert!(!record.deactivated);
    assert_eq!(record.operation, "update");
    assert_eq!(record.height, 2);
    assert_eq!(record.created, created_at);
    assert_eq!(record.updated, format_time(chain.time));
    assert_ne!(record.updated, record.created);
    assert_eq!(record.document, document);
    assert_eq!(record.bid_document().unwrap().ttl(), 600);

    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Update {
            document: id.standard_document(),
            previous_version_id: None,
        },
    );
    assert_included(&outcome);
    assert_eq!(chain.record(&id.bid).version_id, 3);
    let versions: Vec<u64> = chain
        .ledger
        .history(&did_key(&id.bid))
        .unwrap()
        .iter()
        .map(|(h, _)| *h)
        .collect();
    assert_eq!(versions, [1, 2, 3]);
}

#[test]
fn update_by_a_key_that_does_not_control_the_did_leaves_the_record_untouched() {
    let id = Identity::new(2);
    let mut chain = created(&id);
    let before = chain.raw(&id.bid).unwrap();
    let height = chain.ledger.height();
    let mut hijack = id.standard_document();
    hijack["service"] = json!([{"id": format!("{}#evil", id.did), "type": "DIDResolver", "serviceEndpoint": "https://evil.example"}]);

    // A stranger signing as herself.
    let stranger = Identity::new(1);
    let outcome = chain.submit(
        &stranger.kid(1),
        stranger.key(1),
        Operation::Update {
            document: hijack.clone(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::NotAuthenticationKey {
            op: "update",
            signer: stranger.kid(1)
        }
    );

    // The recovery key is a key of the document, but not an authentication key.
    let outcome = chain.submit(
        &id.kid(2),
        id.key(2),
        Operation::Update {
            document: hijack.clone(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::NotAuthenticationKey {
            op: "update",
            signer: id.kid(2)
        }
    );

    assert_eq!(chain.raw(&id.bid).unwrap(), before);
    assert_eq!(chain.ledger.height(), height);
    assert_eq!(chain.ledger.history(&did_key(&id.bid)).unwrap().len(), 1);
}

#[test]
fn update_of_an_unknown_did_is_not_found() {
    let id = Identity::new(2);
    let mut chain = DevChain::new();
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Update {
            document: id.standard_document(),
            previous_version_id: None,
        },
    );
    assert_eq!(refusal(&outcome), OperationError::NotFound(id.did.clone()));
    let outcome = chain.submit(
        &id.kid(2),
        id.key(2),
        Operation::Deactivate {
            id: id.did.clone(),
            previous_version_id: None,
        },
    );
    assert_eq!(refusal(&outcome), OperationError::NotFound(id.did.clone()));
}

#[test]
fn update_that_changes_authentication_or_recovery_is_control_changed() {
    let id = Identity::new(4);
    let mut chain = created(&id);
    let before = chain.raw(&id.bid).unwrap();
    let update = |document: Value| Operation::Update {
        document,
        previous_version_id: None,
    };

    // A new authentication key.
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        update(id.document(&[1, 2, 3], &[1, 3], &[2])),
    );
    assert_eq!(refusal(&outcome), OperationError::ControlChanged);
    // Authentication moved to another key.
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        update(id.document(&[1, 2, 3], &[3], &[2])),
    );
    assert_eq!(refusal(&outcome), OperationError::ControlChanged);
    // A new recovery key.
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        update(id.document(&[1, 3], &[1], &[3])),
    );
    assert_eq!(refusal(&outcome), OperationError::ControlChanged);
    // Recovery removed.
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        update(id.document(&[1, 2], &[1], &[])),
    );
    assert_eq!(refusal(&outcome), OperationError::ControlChanged);
    // Same reference, other key: the recovery entry's key bytes swapped.
    let mut swapped = id.standard_document();
    swapped["publicKey"][1]["publicKeyHex"] = json!(id.key(4).public_key().to_encoded());
    let outcome = chain.submit(&id.kid(1), id.key(1), update(swapped));
    assert_eq!(refusal(&outcome), OperationError::ControlChanged);
    // Same for the authentication entry.
    let mut swapped = id.standard_document();
    swapped["publicKey"][0]["publicKeyHex"] = json!(id.key(4).public_key().to_encoded());
    let outcome = chain.submit(&id.kid(1), id.key(1), update(swapped));
    assert_eq!(refusal(&outcome), OperationError::ControlChanged);

    assert_eq!(chain.raw(&id.bid).unwrap(), before);
    // Upper-case hex is the same key: not a change of control.
    let mut upper = id.standard_document();
    upper["publicKey"][0]["publicKeyHex"] =
        json!(id.key(1).public_key().to_encoded().to_uppercase());
    assert_included(&chain.submit(&id.kid(1), id.key(1), update(upper)));
    assert_eq!(chain.record(&id.bid).version_id, 2);
}

#[test]
fn deactivate_needs_a_recovery_key_and_is_final() {
    let id = Identity::new(2);
    let mut chain = created(&id);
    let deactivate = || Operation::Deactivate {
        id: id.did.clone(),
        previous_version_id: None,
    };

    // key-1 authenticates but does not recover.
    let outcome = chain.submit(&id.kid(1), id.key(1), deactivate());
    assert_eq!(
        refusal(&outcome),
        OperationError::NotRecoveryKey {
            op: "deactivate",
            signer: id.kid(1)
        }
    );
    assert!(!chain.record(&id.bid).deactivated);

    assert_included(&chain.submit(&id.kid(2), id.key(2), deactivate()));
    let record = chain.record(&id.bid);
    assert!(record.deactivated);
    assert_eq!(record.version_id, 2);
    assert_eq!(record.operation, "deactivate");
    assert_eq!(
        record.document,
        json!({"@context": [DID_CONTEXT], "id": id.did})
    );
    let after = chain.raw(&id.bid).unwrap();

    // Nothing moves it afterwards, whoever signs.
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Update {
            document: id.standard_document(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::Deactivated(id.did.clone())
    );
    let outcome = chain.submit(
        &id.kid(2),
        id.key(2),
        Operation::Recover {
            document: id.standard_document(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::Deactivated(id.did.clone())
    );
    let outcome = chain.submit(&id.kid(2), id.key(2), deactivate());
    assert_eq!(
        refusal(&outcome),
        OperationError::Deactivated(id.did.clone())
    );
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Create {
            document: id.standard_document(),
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::AlreadyExists(id.did.clone())
    );
    assert_eq!(chain.raw(&id.bid).unwrap(), after);
}

#[test]
fn recover_by_a_recovery_key_replaces_the_keys() {
    let id = Identity::new(4);
    let mut chain = created(&id);
    // After recovery key-3 authenticates and key-4 recovers; key-1 and key-2 are gone.
    let recovered = id.document(&[3, 4], &[3], &[4]);

    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Recover {
            document: recovered.clone(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::NotRecoveryKey {
            op: "recover",
            signer: id.kid(1)
        }
    );

    assert_included(&chain.submit(
        &id.kid(2),
        id.key(2),
        Operation::Recover {
            document: recovered.clone(),
            previous_version_id: None,
        },
    ));
    let record = chain.record(&id.bid);
    assert_eq!(
        (
            record.version_id,
            record.deactivated,
            record.operation.as_str()
        ),
        (2, false, "recover")
    );
    assert_eq!(record.document, recovered);

    // The new authentication key updates; the old one no longer does.
    let mut document = recovered.clone();
    document["extension"]["ttl"] = json!(60);
    let outcome = chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Update {
            document: document.clone(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::NotAuthenticationKey {
            op: "update",
            signer: id.kid(1)
        }
    );
    assert_included(&chain.submit(
        &id.kid(3),
        id.key(3),
        Operation::Update {
            document,
            previous_version_id: None,
        },
    ));
    assert_eq!(chain.record(&id.bid).version_id, 3);

    // The old recovery key no longer deactivates; the new one does.
    let deactivate = Operation::Deactivate {
        id: id.did.clone(),
        previous_version_id: None,
    };
    let outcome = chain.submit(&id.kid(2), id.key(2), deactivate.clone());
    assert_eq!(
        refusal(&outcome),
        OperationError::NotRecoveryKey {
            op: "deactivate",
            signer: id.kid(2)
        }
    );
    assert_included(&chain.submit(&id.kid(4), id.key(4), deactivate));
    assert!(chain.record(&id.bid).deactivated);
}

#[test]
fn a_sub_chain_did_belongs_to_its_sub_chain() {
    let ac: AcCode = "ab12".parse().unwrap();
    let sub = Identity::on(Some(ac), 2);
    assert!(sub.did.starts_with("did:bid:ab12:ef"), "{}", sub.did);
    let main = Identity::new(2);

    let mut chain = DevChain::new();
    let outcome = chain.submit(
        &sub.kid(1),
        sub.key(1),
        Operation::Create {
            document: sub.standard_document(),
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::WrongChain {
            did: sub.did.clone(),
            expected: "sub-chain ab12".into(),
            this: "the main chain".into()
        }
    );

    // On the sub-chain itself it is the other way round.
    let mut subchain = DevChain::with_machine(BidStateMachine { ac_code: Some(ac) });
    assert_included(&subchain.submit(
        &sub.kid(1),
        sub.key(1),
        Operation::Create {
            document: sub.standard_document(),
        },
    ));
    let outcome = subchain.submit(
        &main.kid(1),
        main.key(1),
        Operation::Create {
            document: main.standard_document(),
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::WrongChain {
            did: main.did.clone(),
            expected: "the main chain".into(),
            this: "sub-chain ab12".into()
        }
    );
    let other_sub = Identity::on(Some("zz99".parse().unwrap()), 2);
    let outcome = subchain.submit(
        &other_sub.kid(1),
        other_sub.key(1),
        Operation::Create {
            document: other_sub.standard_document(),
        },
    );
    assert!(matches!(
        refusal(&outcome),
        OperationError::WrongChain { .. }
    ));
}

#[test]
fn an_ac_code_is_not_created_as_a_did() {
    let key = PrivateKey::generate();
    let did = "did:bid:ab12";
    let kid = format!("{did}#key-1");
    let document = json!({
        "@context": [DID_CONTEXT],
        "id": did,
        "publicKey": [{"id": kid, "type": "Ed25519", "controller": did, "publicKeyHex": key.public_key().to_encoded()}],
        "authentication": [kid],
    });
    let mut chain = DevChain::new();
    let outcome = chain.submit(&kid, &key, Operation::Create { document });
    assert_eq!(refusal(&outcome), OperationError::AcCodeRecord(did.into()));
}

#[test]
fn a_signer_id_whose_listed_key_is_not_the_transaction_key_is_a_mismatch() {
    let id = Identity::new(2);
    let mut chain = created(&id);
    let before = chain.raw(&id.bid).unwrap();
    let stranger = PrivateKey::generate();

    // Claims to be key-1 (an authentication key) but signs with another key.
    let outcome = chain.submit(
        &id.kid(1),
        &stranger,
        Operation::Update {
            document: id.standard_document(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::SignerKeyMismatch(id.kid(1))
    );
    // Claims to be key-2 (the recovery key) but signs with key-1.
    let outcome = chain.submit(
        &id.kid(2),
        id.key(1),
        Operation::Deactivate {
            id: id.did.clone(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::SignerKeyMismatch(id.kid(2))
    );
    let outcome = chain.submit(
        &id.kid(2),
        &stranger,
        Operation::Recover {
            document: id.standard_document(),
            previous_version_id: None,
        },
    );
    assert_eq!(
        refusal(&outcome),
        OperationError::SignerKeyMismatch(id.kid(2))
    );
    assert_eq!(chain.raw(&id.bid).unwrap(), before);

    // At create: signed by the key the DID derives from, which the document lists as key-2,
    // while the signer id names key-1, an authentication key holding another key.
    let other = Identity::new(2);
    let mut document = other.document(&[1, 2], &[1, 2], &[2]);
    document["publicKey"][0]["publicKeyHex"] = json!(other.key(2).public_key().to_encoded());
    document["publicKey"][1]["publicKeyHex"] = json!(other.key(1).public_key().to_encoded());
    let outcome = chain.submit(&other.kid(1), other.key(1), Operation::Create { document });
    assert_eq!(
        refusal(&outcome),
        OperationError::SignerKeyMismatch(other.kid(1))
    );
    assert_eq!(chain.raw(&other.bid), None);
}

#[test]
fn a_replayed_operation_is_refused_by_the_ledger() {
    let id = Identity::new(2);
    let mut chain = created(&id);
    let mut document = id.standard_document();
    document["extension"]["ttl"] = json!(60);
    let update = chain.tx(
        &id.kid(1),
        id.key(1),
        &Operation::Update {
            document,
            previous_version_id: None,
        },
    );
    let replay = update.clone();
    assert_included(&chain.propose(vec![update]).pop().unwrap());
    assert_included(&chain.submit(
        &id.kid(1),
        id.key(1),
        Operation::Update {
            document: id.standard_document(),
            previous_version_id: None,
        },
    ));
    // Replaying the first update would bring ttl 60 back.
    let outcome = chain.propose(vec![replay]).pop().unwrap();
    assert!(
        matches!(
            outcome,
            TxOutcome::Rejected {
                reason: TxRejection::Duplicate(2),
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(chain.record(&id.bid).version_id, 3);
    assert_eq!(chain.record(&id.bid).bid_document().unwrap().ttl(), 86400);
}

#[test]
fn a_malformed_operation_is_refused() {
    let id = Identity::new(1);
    let mut chain = DevChain::new();
    let txs = [
        json!({"type": "burn", "id": id.did}),
        json!({"type": "deactivate"}),
        json!({"type": "deactivate", "id": "did:bid:not-a-bid"}),
    ]
    .map(|operation: Value| chain.tx_value(&id.kid(1), id.key(1), operation));
    let outcomes = chain.propose(txs.into());
    assert!(matches!(
        refusal(&outcomes[0]),
        OperationError::Malformed(_)
    ));
    assert!(matches!(
        refusal(&outcomes[1]),
        OperationError::Malformed(_)
    ));
    assert!(matches!(
        refusal(&outcomes[2]),
        OperationError::Document(DocumentError::InvalidId(_))
    ));
}

#[test]
fn the_chain_verifies_and_replicates_after_every_kind_of_operation() {
    let alice = Identity::new(4);
    let bob = Identity::new(2);
    let mut chain = DevChain::new();

    // Block 1: two creates and one refusal together.
    let txs = vec![
        chain.tx(
            &alice.kid(1),
            alice.key(1),
            &Operation::Create {
                document: alice.standard_document(),
            },
        ),
        chain.tx(
            &bob.kid(1),
            bob.key(1),
            &Operation::Create {
                document: bob.standard_document(),
            },
        ),
        chain.tx(
            &bob.kid(2),
            bob.key(2),
            &Operation::Update {
                document: bob.standard_document(),
                previous_version_id: None,
            },
        ),
    ];
    let outcomes = chain.propose(txs);
    assert_included(&outcomes[0]);
    assert_included(&outcomes[1]);
    assert_eq!(
        refusal(&outcomes[2]),
        OperationError::NotAuthenticationKey {
            op: "update",
            signer: bob.kid(2)
        }
    );

    // Block 2: update, and an update of the same DID reading the first within the block.
    let mut v2 = alice.standard_document();
    v2["extension"]["ttl"] = json!(10);
    let mut v3 = alice.standard_document();
    v3["extension"]["ttl"] = json!(20);
    let txs = vec![
        chain.tx(
            &alice.kid(1),
            alice.key(1),
            &Operation::Update {
                document: v2,
                previous_version_id: None,
            },
        ),
        chain.tx(
            &alice.kid(1),
            alice.key(1),
            &Operation::Update {
                document: v3,
                previous_version_id: None,
            },
        ),
    ];
    chain.propose(txs).iter().for_each(assert_included);
    assert_eq!(chain.record(&alice.bid).version_id, 3);

    // Blocks 3 to 5: recover, update by the new key, deactivate.
    let recovered = alice.document(&[3, 4], &[3], &[4]);
    assert_included(&chain.submit(
        &alice.kid(2),
        alice.key(2),
        Operation::Recover {
            document: recovered.clone(),
            previous_version_id: None,
        },
    ));
    assert_included(&chain.submit(
        &alice.kid(3),
        alice.key(3),
        Operation::Update {
            document: recovered,
            previous_version_id: None,
        },
    ));
    assert_included(&chain.submit(
        &bob.kid(2),
        bob.key(2),
        Operation::Deactivate {
            id: bob.did.clone(),
            previous_version_id: None,
        },
    ));

    let report = verify_chain(&chain.ledger, &chain.machine).unwrap();
    assert_eq!(report.blocks, 6);
    assert_eq!(report.transactions, 7);
    // Genesis and the two DIDs.
    assert_eq!(report.state_keys, 3);
    assert_eq!(report.state_root, chain.ledger.head().header.state_root);

    // A follower re-executing the blocks with the same rules reaches the same head and records.
    let replica = chain.replica();
    for height in 1..=chain.ledger.height() {
        replica.apply_from(&chain, height);
    }
    let follower = &replica.ledger;
    assert_eq!(follower.head(), chain.ledger.head());
    for bid in [&alice.bid, &bob.bid] {
        assert_eq!(follower.get(&did_key(bid)).unwrap(), chain.raw(bid));
    }
    verify_chain(follower, &chain.machine).unwrap();

    // A follower with another chain's rules cannot follow.
    let stranger = chain.replica();
    let stranger = &stranger.ledger;
    let sub_rules = BidStateMachine {
        ac_code: Some("ab12".parse().unwrap()),
    };
    assert!(stranger
        .apply_block(&sub_rules, chain.ledger.block(1).unwrap().unwrap())
        .is_err());
    assert!(verify_chain(&chain.ledger, &sub_rules).is_err());
}
