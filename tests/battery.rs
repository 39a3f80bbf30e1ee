//! One resolution battery: one set of identifiers — a live DID, a DID whose document was
//! replaced, a deactivated DID, a DID never registered, VAA codes and Handles bound to them, and
//! codes and Handles bound to nothing — resolved through every door of one daemon that answers
//! them: the DID Resolution HTTP binding, the BID protocol, Handle native (UDP) and Handle REST,
//! DNS (`dig`, the service zone) and the VAA route. Each door's answer is reduced to what every
//! door can say (which DID, whether it is live, deactivated or unknown, and its version where
//! the door carries one), and all doors must agree with each other and with the case.
//!
//! Each door is read with a client written from its own wire format here, not with the
//! daemon's encoders.
//!
//! A second battery binds an OID, an Ecode and a GS1 key (and a V0 Ecode through its GS1 key)
//! and checks both ways: identifier → DID over HTTP (`/1.0/oid`, `/1.0/ecode`, the GS1 307), DNS
//! (the service-zone names, literals from spec/dns.md) and Handle (`urn.oid/…`, `ecode/…`,
//! `gs1/…`, native and REST); DID → identifiers as `alsoKnownAs`, DNS `aka=` and Handle
//! `ALIAS` values, which must be the same list.

mod common;

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::{cli, free_udp_tcp_port, get, start_in_process};
use serde_json::{json, Value};

const SERVICE_ZONE: &str = "battery.test";

/// What a door says about an identifier, reduced to what every door can say.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Answer {
    /// A live DID, with its version when the door carries it.
    Live { did: String, version: Option<u64> },
    /// A deactivated DID.
    Deactivated { did: String },
    /// Nothing is registered under the identifier.
    Unknown,
}

impl Answer {
    /// The same answer without the version: for doors that carry none.
    fn unversioned(&self) -> Answer {
        match self {
            Answer::Live { did, .. } => Answer::Live {
                did: did.clone(),
                version: None,
            },
            other => other.clone(),
        }
    }
}

// ---- each door's client ---------------------------------------------------------------------

/// The DID Resolution HTTP binding: `GET /1.0/identifiers/{did}`.
fn http_binding(base: &str, did: &str) -> Answer {
    let (status, _, text) = get(&format!("{base}/1.0/identifiers/{did}"));
    let body: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{did}: {e}: {text}"));
    match status {
        200 => Answer::Live {
            did: body["didDocument"]["id"].as_str().unwrap().to_string(),
            version: body["didDocumentMetadata"]["versionId"]
                .as_str()
                .map(|v| v.parse().unwrap()),
        },
        410 => {
            assert_eq!(body["didDocumentMetadata"]["deactivated"], true, "{body}");
            Answer::Deactivated {
                did: did.to_string(),
            }
        }
        404 => {
            assert_eq!(
                body["didResolutionMetadata"]["error"]["type"],
                "https://www.w3.org/ns/did#NOT_FOUND",
                "{body}"
            );
            Answer::Unknown
        }
        other => panic!("HTTP binding, {did}: {other} {body}"),
    }
}

/// The BID protocol: `GET /{bid}`, HTTP 200 with `errorCode` in the envelope.
fn bid_protocol(base: &str, did: &str) -> Answer {
    let (status, _, text) = get(&format!("{base}/{did}"));
    assert_eq!(status, 200, "BID protocol, {did}: {text}");
    let envelope: Value = serde_json::from_str(&text).unwrap();
    let message = envelope["message"].as_str().unwrap_or_default();
    match envelope["errorCode"].as_i64() {
        Some(0) => Answer::Live {
            did: envelope["data"]["didDocument"]["id"]
                .as_str()
                .unwrap()
                .to_string(),
            version: None,
        },
        Some(6) if message.contains("deactivated") => Answer::Deactivated {
            did: did.to_string(),
        },
        Some(6) => Answer::Unknown,
        _ => panic!("BID protocol, {did}: {envelope}"),
    }
}

/// `dig @127.0.0.1 -p <port> +norec <name> TXT`: the status and the TXT strings.
fn dig_txt(port: u16, name: &str) -> (String, Vec<String>, String) {
    let text = common::dig(port, &[name, "TXT"]);
    let status = common::dig_status(&text).to_string();
    let txt = text
        .lines()
        .filter(|l| !l.starts_with(';'))
        // `<name> <ttl> IN TXT "<data>"`, its columns aligned with tabs or spaces.
        .filter_map(|l| {
            let mut fields = l.split_whitespace();
            fields.position(|f| f == "TXT")?;
            Some(fields.collect::<Vec<_>>().join(" "))
        })
        .map(|data| data.trim_matches('"').to_string())
        .collect();
    (status, txt, text)
}

/// DNS: the TXT records of a name in the service zone (`did=`, `deactivated=true`).
fn dns(port: u16, name: &str) -> Answer {
    let (status, txt, text) = dig_txt(port, name);
    match status.as_str() {
        "NXDOMAIN" => Answer::Unknown,
        "NOERROR" => {
            let did = txt
                .iter()
                .find_map(|t| t.strip_prefix("did="))
                .unwrap_or_else(|| panic!("DNS, {name}: no did= in {text}"))
                .to_string();
            if txt.iter().any(|t| t == "deactivated=true") {
                Answer::Deactivated { did }
            } else {
                Answer::Live { did, version: None }
            }
        }
        other => panic!("DNS, {name}: {other} {txt:?}"),
    }
}

/// One Handle resolution request over UDP (version 2.10, opcode 1, no credential), from the
/// layout in `shared/reference/handle-dns.md`; returns the response code and the values
/// (index, type, data).
fn handle_udp(addr: SocketAddr, handle: &str) -> (u32, Vec<(u32, String, String)>) {
    // A type filter (DID, DID_METADATA), so that the answer fits a datagram.
    handle_udp_filtered(addr, handle, &["DID", "DID_METADATA"])
}

/// [`handle_udp`] with the given type filter.
fn handle_udp_filtered(
    addr: SocketAddr,
    handle: &str,
    types: &[&str],
) -> (u32, Vec<(u32, String, String)>) {
    let mut body = Vec::new();
    body.extend_from_slice(&(handle.len() as u32).to_be_bytes());
    body.extend_from_slice(handle.as_bytes());
    // No index filter; the type filter.
    body.extend_from_slice(&0u32.to_be_bytes());
    body.extend_from_slice(&(types.len() as u32).to_be_bytes());
    for kind in types {
        body.extend_from_slice(&(kind.len() as u32).to_be_bytes());
        body.extend_from_slice(kind.as_bytes());
    }
    let mut m = vec![2, 10, 0, 0];
    m.extend_from_slice(&0u32.to_be_bytes()); // session
    m.extend_from_slice(&77u32.to_be_bytes()); // request id
    m.extend_from_slice(&0u32.to_be_bytes()); // sequence
    m.extend_from_slice(&((24 + body.len() + 4) as u32).to_be_bytes());
    m.extend_from_slice(&1u32.to_be_bytes()); // OC_RESOLUTION
    m.extend_from_slice(&0u32.to_be_bytes());
    m.extend_from_slice(&0x1900_0000u32.to_be_bytes()); // RECU, CACR, PUBL
    m.extend_from_slice(&[0xff, 0xff, 0, 0]);
    m.extend_from_slice(&1_700_000_000u32.to_be_bytes());
    m.extend_from_slice(&(body.len() as u32).to_be_bytes());
    m.extend_from_slice(&body);
    m.extend_from_slice(&0u32.to_be_bytes());
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket.send_to(&m, addr).unwrap();
    let mut packet = vec![0u8; 65_536];
    let (n, _) = socket.recv_from(&mut packet).expect("a Handle answer");
    packet.truncate(n);
    let u32_at = |b: &[u8], at: usize| u32::from_be_bytes(b[at..at + 4].try_into().unwrap());
    assert_eq!(packet[2] & 0x20, 0, "{handle}: truncated over UDP");
    let code = u32_at(&packet, 24);
    if code != 1 {
        return (code, Vec::new());
    }
    let body = &packet[44..44 + u32_at(&packet, 40) as usize];
    let mut at = 0;
    let array = |at: &mut usize| {
        let len = u32_at(body, *at) as usize;
        let out = String::from_utf8(body[*at + 4..*at + 4 + len].to_vec()).unwrap();
        *at += 4 + len;
        out
    };
    array(&mut at); // the handle
    let count = u32_at(body, at);
    at += 4;
    let mut values = Vec::new();
    for _ in 0..count {
        let index = u32_at(body, at);
        at += 14; // index, timestamp, TTL type, TTL, permissions
        let kind = array(&mut at);
        let data = array(&mut at);
        let references = u32_at(body, at);
        at += 4;
        for _ in 0..references {
            array(&mut at);
            at += 4;
        }
        values.push((index, kind, data));
    }
    (code, values)
}

/// A Handle's DID and its metadata (`DID` and `DID_METADATA` values) as an answer.
fn handle_answer(door: &str, code: u32, values: &[(String, String)]) -> Answer {
    match code {
        1 => {
            let value = |kind: &str| {
                values
                    .iter()
                    .find(|(k, _)| k == kind)
                    .map(|(_, d)| d.clone())
                    .unwrap_or_else(|| panic!("{door}: no {kind} value in {values:?}"))
            };
            let did = value("DID");
            let metadata: Value = serde_json::from_str(&value("DID_METADATA")).unwrap();
            if metadata["deactivated"] == true {
                Answer::Deactivated { did }
            } else {
                Answer::Live {
                    did,
                    version: metadata["versionId"].as_str().map(|v| v.parse().unwrap()),
                }
            }
        }
        100 => Answer::Unknown,
        other => panic!("{door}: response code {other} {values:?}"),
    }
}

/// Handle native, over UDP.
fn handle_native(addr: SocketAddr, handle: &str) -> Answer {
    let (code, values) = handle_udp(addr, handle);
    let values: Vec<(String, String)> = values.into_iter().map(|(_, k, d)| (k, d)).collect();
    handle_answer(&format!("Handle native, {handle}"), code, &values)
}

/// Handle REST (`/api/handles/{handle}`, Handle.Net's JSON).
fn handle_rest(base: &str, handle: &str) -> Answer {
    let (_, _, text) = get(&format!("{base}/api/handles/{handle}"));
    let body: Value = serde_json::from_str(&text).unwrap();
    let code = body["responseCode"].as_u64().unwrap() as u32;
    let values: Vec<(String, String)> = body["values"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .map(|v| {
                    let data = &v["data"]["value"];
                    let data = data
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| data.to_string());
                    (v["type"].as_str().unwrap().to_string(), data)
                })
                .collect()
        })
        .unwrap_or_default();
    handle_answer(&format!("Handle REST, {handle}"), code, &values)
}

/// The VAA route: the DID a code is bound to (the DID's own state is the other doors').
fn vaa(base: &str, code: &str) -> Option<String> {
    let (status, _, text) = get(&format!("{base}/1.0/vaa/{code}"));
    let body: Value = serde_json::from_str(&text).unwrap();
    match status {
        200 => Some(body["did"].as_str().unwrap().to_string()),
        404 => None,
        other => panic!("VAA, {code}: {other} {body}"),
    }
}

// ---- the battery ----------------------------------------------------------------------------

/// The service-zone name of a DID, from spec/dns.md's rule: the address's Base58 (BID alphabet)
/// as 22 bytes in lower-case unpadded base32, after the two letters.
fn did_name(did: &str) -> String {
    const BASE58: &[u8] = b"123456789AbCDEFGHJKLMNPQRSTuVWXYZaBcdefghijkmnopqrstUvwxyz";
    const BASE32: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";
    let address = did.strip_prefix("did:bid:").unwrap();
    let (letters, base58) = address.split_at(2);
    let mut n: Vec<u8> = Vec::new();
    for c in base58.bytes() {
        let mut carry = BASE58.iter().position(|&a| a == c).unwrap() as u32;
        for b in n.iter_mut().rev() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            n.insert(0, (carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut raw = vec![0u8; base58.bytes().take_while(|&c| c == b'1').count()];
    raw.extend(n);
    assert_eq!(raw.len(), 22, "{did}");
    let mut label = letters.to_string();
    let (mut acc, mut bits) = (0u32, 0);
    for b in raw {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            label.push(BASE32[((acc >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        label.push(BASE32[((acc << (5 - bits)) & 31) as usize] as char);
    }
    format!("{label}.did.{SERVICE_ZONE}")
}

/// `sparkid did create` through the CLI: the DID and its private key.
fn create(base: &str, document: Option<&std::path::Path>) -> (String, String) {
    let mut args = vec!["did", "create", "--endpoint", base];
    let path;
    if let Some(d) = document {
        path = d.to_string_lossy().to_string();
        args.extend(["--document", &path]);
    }
    let out = cli(&args);
    (
        out["didState"]["did"].as_str().unwrap().to_string(),
        out["generatedKey"]["privateKey"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

#[test]
fn every_door_gives_the_same_answer_for_the_same_identifiers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dns_port = free_udp_tcp_port();
    let handle_port = free_udp_tcp_port();
    let handle_addr: SocketAddr = format!("127.0.0.1:{handle_port}").parse().unwrap();
    // In process: nothing here needs a process of its own.
    let d = start_in_process(
        &data,
        &[
            "--dns",
            &format!("127.0.0.1:{dns_port}"),
            "--service-zone",
            SERVICE_ZONE,
            "--handle",
            &handle_addr.to_string(),
        ],
    );
    let base = d.base.clone();
    let authority = data.join("validator.key").to_string_lossy().to_string();

    // The identifiers: a namespace owner; a live DID; a DID whose document was replaced
    // (version 2); a DID deactivated after its code and Handle were bound; one never registered.
    let (owner, owner_key) = create(&base, None);
    let (live, _) = create(&base, None);
    let template = dir.path().join("template.json");
    std::fs::write(
        &template,
        json!({"service": [{"id": "#files", "type": "LinkedDomains",
                            "serviceEndpoint": "https://files.example"}]})
        .to_string(),
    )
    .unwrap();
    let (replaced, replaced_key) = create(&base, Some(&template));
    let (gone, gone_key) = create(&base, None);
    let unknown = sparkid_bid::Bid::derive(&sparkid_bid::PrivateKey::generate().public_key(), None)
        .unwrap()
        .to_string();
    // Its native document (the BID protocol's), with another service: version 2.
    let (_, _, text) = get(&format!("{base}/{replaced}"));
    let mut document: Value =
        serde_json::from_str::<Value>(&text).unwrap()["data"]["didDocument"].clone();
    let native = document.as_object_mut().unwrap();
    native.remove("created");
    native.remove("updated");
    document["service"].as_array_mut().unwrap().push(
        json!({"id": "#more", "type": "LinkedDomains", "serviceEndpoint": "https://more.example"}),
    );
    let replacement = dir.path().join("replacement.json");
    std::fs::write(&replacement, document.to_string()).unwrap();
    cli(&[
        "did",
        "update",
        "--endpoint",
        &base,
        "--did",
        &replaced,
        "--key",
        &replaced_key,
        "--document",
        replacement.to_str().unwrap(),
    ]);
    for (kind, namespace) in [("vaa", "VAA1234"), ("handle", "86.100")] {
        common::namespace(
            &base,
            &authority,
            &[
                "delegate",
                "--kind",
                kind,
                "--namespace",
                namespace,
                "--owner",
                &owner,
            ],
        );
    }
    let bound = [
        ("VAA1234LIVE01", "86.100/live", &live),
        ("VAA1234REPL02", "86.100/replaced", &replaced),
        ("VAA1234GONE03", "86.100/gone", &gone),
    ];
    for (code, handle, did) in bound {
        for (kind, identifier) in [("vaa", code), ("handle", handle)] {
            common::namespace(
                &base,
                &owner_key,
                &[
                    "bind",
                    "--kind",
                    kind,
                    "--identifier",
                    identifier,
                    "--did",
                    did,
                ],
            );
        }
    }
    cli(&[
        "did",
        "deactivate",
        "--endpoint",
        &base,
        "--did",
        &gone,
        "--key",
        &gone_key,
    ]);

    // The expected answer of each DID.
    let cases = [
        (
            &live,
            Answer::Live {
                did: live.clone(),
                version: Some(1),
            },
        ),
        (
            &replaced,
            Answer::Live {
                did: replaced.clone(),
                version: Some(2),
            },
        ),
        (&gone, Answer::Deactivated { did: gone.clone() }),
        (&unknown, Answer::Unknown),
    ];

    // A DID, through every door that resolves a DID.
    for (did, expected) in &cases {
        let address = did.strip_prefix("did:bid:").unwrap();
        let bid_handle = format!("bid/{address}");
        let answers = [
            ("HTTP binding", http_binding(&base, did)),
            ("Handle native", handle_native(handle_addr, &bid_handle)),
            ("Handle REST", handle_rest(&base, &bid_handle)),
            ("BID protocol", bid_protocol(&base, did).unversioned()),
            ("DNS", dns(dns_port, &did_name(did))),
        ];
        for (door, answer) in &answers {
            let expected = match door {
                &"BID protocol" | &"DNS" => expected.unversioned(),
                _ => expected.clone(),
            };
            assert_eq!(answer, &expected, "{door} on {did}: {answers:?}");
        }
    }

    // A VAA code and a Handle bound to each DID: every door that reads the binding names the same
    // DID, and that DID's answer is the case's.
    let service = sparkid_bridges::dns::ServiceZone::new(SERVICE_ZONE).unwrap();
    for (code, handle, did) in bound {
        let expected = &cases.iter().find(|(d, _)| *d == did).unwrap().1;
        assert_eq!(
            vaa(&base, code).as_deref(),
            Some(did.as_str()),
            "VAA {code}"
        );
        // The service zone's VAA name is the code in lower case under `vaa.` (spec/dns.md).
        let vaa_name = format!("{}.vaa.{SERVICE_ZONE}", code.to_ascii_lowercase());
        assert_eq!(service.vaa_name(code).unwrap(), vaa_name);
        let by_handle = [
            ("Handle native", handle_native(handle_addr, handle)),
            ("Handle REST", handle_rest(&base, handle)),
        ];
        for (door, answer) in &by_handle {
            assert_eq!(answer, expected, "{door} on {handle}: {by_handle:?}");
        }
        let by_dns = [
            ("DNS, the VAA name", dns(dns_port, &vaa_name)),
            (
                "DNS, the Handle name",
                dns(dns_port, &service.handle_name(handle).unwrap()),
            ),
        ];
        for (door, answer) in &by_dns {
            assert_eq!(
                answer,
                &expected.unversioned(),
                "{door} of {code} / {handle}: {by_dns:?}"
            );
        }
    }

    // Identifiers bound to nothing, under the delegated namespaces and outside them: unknown to
    // every door.
    for code in ["VAA1234NONE99", "VAA99NONE"] {
        assert_eq!(vaa(&base, code), None, "VAA {code}");
        let name = format!("{}.vaa.{SERVICE_ZONE}", code.to_ascii_lowercase());
        assert_eq!(dns(dns_port, &name), Answer::Unknown, "DNS {name}");
    }
    for handle in ["86.100/none", "99.999/none"] {
        assert_eq!(
            handle_native(handle_addr, handle),
            Answer::Unknown,
            "{handle}"
        );
        assert_eq!(handle_rest(&base, handle), Answer::Unknown, "{handle}");
        let name = service.handle_name(handle).unwrap();
        assert_eq!(dns(dns_port, &name), Answer::Unknown, "DNS {name}");
    }
}

// ---- OIDs, Ecodes and GS1 keys, both ways ----------------------------------------------------

/// Handle native over UDP with a type filter: the response code and the values of those types.
fn handle_udp_types(
    addr: SocketAddr,
    handle: &str,
    types: &[&str],
) -> (u32, Vec<(String, String)>) {
    let (code, values) = handle_udp_filtered(addr, handle, types);
    (code, values.into_iter().map(|(_, k, d)| (k, d)).collect())
}

/// The forward answer of an identifier of another kind over HTTP: the DID its own door names
/// (`/1.0/oid/…`, `/1.0/ecode/…`, or the GS1 resolver's 307 to the DID's resolution URL), and
/// that DID's state from the DID Resolution binding.
fn http_identifier(base: &str, kind: &str, identifier: &str) -> Answer {
    let did = match kind {
        "gs1" => {
            let client = reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap();
            let r = client.get(format!("{base}{identifier}")).send().unwrap();
            match r.status().as_u16() {
                307 => {
                    let location = r.headers()["location"].to_str().unwrap().to_string();
                    let did = location
                        .split("/1.0/identifiers/")
                        .nth(1)
                        .unwrap_or_else(|| panic!("GS1 {identifier}: 307 to {location}"));
                    did.split('?').next().unwrap().to_string()
                }
                404 => return Answer::Unknown,
                other => panic!("GS1 {identifier}: {other} {}", r.text().unwrap()),
            }
        }
        _ => {
            let (status, _, text) = get(&format!("{base}/1.0/{kind}/{identifier}"));
            let body: Value = serde_json::from_str(&text).unwrap();
            match status {
                200 => body["did"].as_str().unwrap().to_string(),
                404 => return Answer::Unknown,
                other => panic!("{kind} {identifier}: {other} {body}"),
            }
        }
    };
    http_binding(base, &did)
}

/// The DID's side over HTTP: `didDocumentMetadata.alsoKnownAs`, sorted.
fn http_aliases(base: &str, did: &str) -> Vec<String> {
    let (_, _, text) = get(&format!("{base}/1.0/identifiers/{did}"));
    let body: Value = serde_json::from_str(&text).unwrap();
    let mut out: Vec<String> = body["didDocumentMetadata"]["alsoKnownAs"]
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

/// The DID's side over DNS: the `aka=` TXT strings of its service-zone name, sorted.
fn dns_aliases(port: u16, did: &str) -> Vec<String> {
    let (status, txt, text) = dig_txt(port, &did_name(did));
    assert_eq!(status, "NOERROR", "{text}");
    let mut out: Vec<String> = txt
        .iter()
        .filter_map(|t| t.strip_prefix("aka="))
        .map(str::to_string)
        .collect();
    out.sort();
    out
}

/// The DID's side over Handle (native or REST): the `ALIAS` values of `bid/<address>`, sorted.
fn handle_aliases(values: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = values
        .iter()
        .filter(|(k, _)| k == "ALIAS")
        .map(|(_, d)| d.clone())
        .collect();
    out.sort();
    out
}

/// Handle REST values (type, data) of a handle, with its response code.
fn handle_rest_values(base: &str, handle: &str) -> (u32, Vec<(String, String)>) {
    let (_, _, text) = get(&format!("{base}/api/handles/{handle}"));
    let body: Value = serde_json::from_str(&text).unwrap();
    let values = body["values"]
        .as_array()
        .map(|values| {
            values
                .iter()
                .map(|v| {
                    (
                        v["type"].as_str().unwrap().to_string(),
                        v["data"]["value"].as_str().unwrap_or_default().to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    (body["responseCode"].as_u64().unwrap() as u32, values)
}

#[test]
fn every_door_agrees_both_ways_for_oids_ecodes_and_gs1_keys() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let dns_port = free_udp_tcp_port();
    let handle_port = free_udp_tcp_port();
    let handle_addr: SocketAddr = format!("127.0.0.1:{handle_port}").parse().unwrap();
    let d = start_in_process(
        &data,
        &[
            "--dns",
            &format!("127.0.0.1:{dns_port}"),
            "--service-zone",
            SERVICE_ZONE,
            "--handle",
            &handle_addr.to_string(),
        ],
    );
    let base = d.base.clone();
    let authority = data.join("validator.key").to_string_lossy().to_string();
    let (owner, owner_key) = create(&base, None);
    let (live, live_key) = create(&base, None);
    let (gone, gone_key) = create(&base, None);
    for (kind, namespace) in [
        ("gs1", "9506000"),
        ("oid", "1.2.156.3001"),
        ("ecode", "10001"),
    ] {
        common::namespace(
            &base,
            &authority,
            &[
                "delegate",
                "--kind",
                kind,
                "--namespace",
                namespace,
                "--owner",
                &owner,
            ],
        );
    }
    // Each identifier with its literal DNS name and handle, computed by hand from spec/dns.md and
    // spec/handle.md (not by the crate).
    let z = SERVICE_ZONE;
    let live_ids = [
        (
            "oid",
            "1.2.156.3001.1.7",
            format!("7.1.3001.156.2.1.oid.{z}"),
            "urn.oid/1.2.156.3001.1.7",
            "urn:oid:1.2.156.3001.1.7",
        ),
        (
            "ecode",
            "100010000001",
            format!("100010000001.ecode.{z}"),
            "ecode/100010000001",
            "ecode:100010000001",
        ),
        (
            "gs1",
            "/01/09506000134352/10/LOT7",
            format!("x4cx4fx547.10.09506000134352.01.gs1.{z}"),
            "gs1/01/09506000134352/10/LOT7",
            "https://id.gs1.org/01/09506000134352/10/LOT7",
        ),
    ];
    let gone_ids = [
        (
            "oid",
            "1.2.156.3001.1.8",
            format!("8.1.3001.156.2.1.oid.{z}"),
            "urn.oid/1.2.156.3001.1.8",
        ),
        (
            "ecode",
            "100010000002",
            format!("100010000002.ecode.{z}"),
            "ecode/100010000002",
        ),
        (
            "gs1",
            "/01/09506000134352",
            format!("09506000134352.01.gs1.{z}"),
            "gs1/01/09506000134352",
        ),
    ];
    for (kind, identifier, ..) in &live_ids {
        common::namespace(
            &base,
            &owner_key,
            &[
                "bind",
                "--kind",
                kind,
                "--identifier",
                identifier,
                "--did",
                &live,
            ],
        );
        common::link(&base, &live, &live_key, kind, identifier);
    }
    for (kind, identifier, ..) in &gone_ids {
        // Bound by the owner, never confirmed by the DID's controller: forward only.
        common::namespace(
            &base,
            &owner_key,
            &[
                "bind",
                "--kind",
                kind,
                "--identifier",
                identifier,
                "--did",
                &gone,
            ],
        );
    }
    cli(&[
        "did",
        "deactivate",
        "--endpoint",
        &base,
        "--did",
        &gone,
        "--key",
        &gone_key,
    ]);
    let live_answer = Answer::Live {
        did: live.clone(),
        version: Some(1),
    };
    let gone_answer = Answer::Deactivated { did: gone.clone() };

    // Identifier -> DID: HTTP, DNS, Handle native and REST name the same DID in the same state.
    let forward = live_ids
        .iter()
        .map(|(k, i, n, h, _)| (*k, *i, n.clone(), *h, &live_answer))
        .chain(
            gone_ids
                .iter()
                .map(|(k, i, n, h)| (*k, *i, n.clone(), *h, &gone_answer)),
        )
        // A V0 Ecode is its GS1 key (spec/ecode.md): 0 ‖ GTIN-13 9506000134352.
        .chain([(
            "ecode",
            "09506000134352",
            format!("09506000134352.ecode.{z}"),
            "ecode/09506000134352",
            &gone_answer,
        )]);
    for (kind, identifier, name, handle, expected) in forward {
        let answers = [
            ("HTTP", http_identifier(&base, kind, identifier)),
            ("DNS", dns(dns_port, &name)),
            ("Handle native", handle_native(handle_addr, handle)),
            ("Handle REST", handle_rest(&base, handle)),
        ];
        for (door, answer) in &answers {
            let expected = match *door {
                "DNS" => expected.unversioned(),
                _ => (*expected).clone(),
            };
            assert_eq!(
                answer, &expected,
                "{door} on {kind} {identifier}: {answers:?}"
            );
        }
    }

    // Unbound, under the delegations and outside them: unknown to every door.
    let unbound = [
        (
            "oid",
            "1.2.156.3001.1.9",
            format!("9.1.3001.156.2.1.oid.{z}"),
            "urn.oid/1.2.156.3001.1.9",
        ),
        (
            "oid",
            "1.3.6.1.4.1",
            format!("1.4.1.6.3.1.oid.{z}"),
            "urn.oid/1.3.6.1.4.1",
        ),
        (
            "ecode",
            "100010000009",
            format!("100010000009.ecode.{z}"),
            "ecode/100010000009",
        ),
        (
            "gs1",
            "/01/09506000134369",
            format!("09506000134369.01.gs1.{z}"),
            "gs1/01/09506000134369",
        ),
        (
            "ecode",
            "09506000134369",
            format!("09506000134369.ecode.{z}"),
            "ecode/09506000134369",
        ),
    ];
    for (kind, identifier, name, handle) in unbound {
        assert_eq!(
            http_identifier(&base, kind, identifier),
            Answer::Unknown,
            "{identifier}"
        );
        assert_eq!(dns(dns_port, &name), Answer::Unknown, "DNS {name}");
        assert_eq!(
            handle_native(handle_addr, handle),
            Answer::Unknown,
            "{handle}"
        );
        assert_eq!(handle_rest(&base, handle), Answer::Unknown, "{handle}");
    }

    // DID -> identifiers: the confirmed ones, the same in every door; unconfirmed bindings of
    // the deactivated DID show nowhere.
    let mut expected: Vec<String> = live_ids.iter().map(|(.., uri)| uri.to_string()).collect();
    expected.sort();
    for (did, expected) in [(&live, expected), (&gone, Vec::new())] {
        let bid_handle = format!("bid/{}", did.strip_prefix("did:bid:").unwrap());
        let (code, native) = handle_udp_types(handle_addr, &bid_handle, &["ALIAS", "DID"]);
        assert_eq!(code, 1, "{bid_handle}");
        let (code, rest) = handle_rest_values(&base, &bid_handle);
        assert_eq!(code, 1, "{bid_handle}");
        let back = [
            ("HTTP alsoKnownAs", http_aliases(&base, did)),
            ("DNS aka", dns_aliases(dns_port, did)),
            ("Handle native ALIAS", handle_aliases(&native)),
            ("Handle REST ALIAS", handle_aliases(&rest)),
        ];
        for (door, aliases) in &back {
            assert_eq!(aliases, &expected, "{door} of {did}: {back:?}");
        }
    }
}
