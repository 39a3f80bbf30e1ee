//! `spec/openapi.yaml` against the daemon it describes, on a real dev daemon:
//!
//! - every operation in the spec is served: its path reaches the server route of the same shape
//!   (axum's own path matching decides), and that route answers its method;
//! - every route the server lists (`GET /1.0/routes`, recorded by the calls that mount the
//!   handlers, see `resolver/src/routes.rs`) and each of its methods is in the spec;
//! - the listing is the router: each listed route, asked with a method it does not list, answers
//!   405 with exactly its methods in `Allow`, and a path outside the table is 404;
//! - bad input that axum's extractors refuse (a path that is not UTF-8, a repeated query
//!   parameter) is answered in each door's documented format, not as axum's plain text.
//!
//! Operations marked `x-sparkid-served-by: validators` (the consensus API) are served only by a
//! validator of several: a dev node must not list them, and a validator of a two-validator
//! chain must list them like the rest.
//!
//! The responses themselves (status codes, media types, bodies) are checked against the spec by
//! schemathesis: `scripts/schemathesis`.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::{client, start_in_process};
use serde_json::{json, Value};
use sparkid_bid::PrivateKey;

const SPEC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../spec/openapi.yaml");
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// One operation of the spec.
#[derive(Debug)]
struct Operation {
    path: String,
    method: String,
    validators_only: bool,
}

fn spec() -> Value {
    let text = std::fs::read_to_string(SPEC).expect("read spec/openapi.yaml");
    serde_norway::from_str(&text).expect("spec/openapi.yaml is YAML")
}

fn operations(spec: &Value) -> Vec<Operation> {
    let paths = spec["paths"].as_object().expect("paths");
    let mut out = Vec::new();
    for (path, item) in paths {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                out.push(Operation {
                    path: path.clone(),
                    method: method.to_uppercase(),
                    validators_only: op.get("x-sparkid-served-by")
                        == Some(&Value::from("validators")),
                });
            }
        }
    }
    out
}

/// The server's table: path template to methods.
fn served(base: &str) -> BTreeMap<String, BTreeSet<String>> {
    let r = client()
        .get(format!("{base}/1.0/routes"))
        .send()
        .expect("GET /1.0/routes");
    assert_eq!(r.status().as_u16(), 200);
    let table: Vec<Value> = r.json().expect("the route table is JSON");
    let mut out = BTreeMap::new();
    for route in table {
        let path = route["path"].as_str().expect("path").to_string();
        let methods = route["methods"]
            .as_array()
            .expect("methods")
            .iter()
            .map(|m| m.as_str().expect("method").to_string())
            .collect::<BTreeSet<_>>();
        assert!(
            out.insert(path.clone(), methods).is_none(),
            "{path} is listed twice"
        );
    }
    out
}

/// A path's segments, every parameter (`{x}`, `{*x}`) as `{}`; whether the last is a catch-all.
fn shape(path: &str) -> (Vec<String>, bool) {
    let segments: Vec<&str> = path.split('/').collect();
    let catch_all = segments.last().is_some_and(|s| s.starts_with("{*"));
    let normal = segments
        .iter()
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                "{}".to_string()
            } else {
                s.to_string()
            }
        })
        .collect();
    (normal, catch_all)
}

/// Whether the spec path `spec` has the shape of the server route `route`: the same segments,
/// where a trailing catch-all stands for one or more segments.
fn same_shape(spec: &str, route: &str) -> bool {
    let (s, _) = shape(spec);
    let (r, catch_all) = shape(route);
    if catch_all {
        s.len() >= r.len() && s[..r.len() - 1] == r[..r.len() - 1]
    } else {
        s == r
    }
}

/// A concrete path for a template: every parameter becomes `p0`, `p1`, ... (no static segment
/// of the API has such a name).
fn instantiate(template: &str) -> String {
    let mut n = 0;
    template
        .split('/')
        .map(|s| {
            if s.starts_with('{') && s.ends_with('}') {
                n += 1;
                format!("p{}", n - 1)
            } else {
                s.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn matcher(table: &BTreeMap<String, BTreeSet<String>>) -> matchit::Router<String> {
    let mut router = matchit::Router::new();
    for path in table.keys() {
        router
            .insert(path.clone(), path.clone())
            .unwrap_or_else(|e| panic!("{path}: {e}"));
    }
    router
}

/// Compares the spec with the table of the daemon at `base`; `validator_of_several` says whether
/// it serves the consensus API. Returns what differs.
fn differences(base: &str, validator_of_several: bool) -> Vec<String> {
    let spec = spec();
    assert!(
        spec["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.")),
        "an OpenAPI 3 document"
    );
    let table = served(base);
    let router = matcher(&table);
    // Spec to server.
    let mut covered: BTreeSet<(String, String)> = BTreeSet::new();
    let mut problems = Vec::new();
    for op in operations(&spec) {
        let concrete = instantiate(&op.path);
        let hit = router.at(&concrete).ok().map(|m| m.value.clone());
        if op.validators_only && !validator_of_several {
            if let Some(route) = hit.filter(|r| same_shape(&op.path, r)) {
                problems.push(format!(
                    "{} {} is marked validators-only, but a dev node serves it as {route}",
                    op.method, op.path
                ));
            }
            continue;
        }
        match hit {
            Some(route) if same_shape(&op.path, &route) => {
                if table[&route].contains(&op.method) {
                    covered.insert((route, op.method.clone()));
                } else {
                    problems.push(format!(
                        "{} {}: the server's {route} answers {:?} only",
                        op.method, op.path, table[&route]
                    ));
                }
            }
            Some(route) => problems.push(format!(
                "{} {}: not served; {concrete} reaches {route} instead",
                op.method, op.path
            )),
            None => problems.push(format!("{} {}: not served", op.method, op.path)),
        }
    }
    // Server to spec.
    for (path, methods) in &table {
        for method in methods {
            if !covered.contains(&(path.clone(), method.clone())) {
                problems.push(format!("{method} {path} is served but not in the spec"));
            }
        }
    }
    problems
}

#[test]
fn the_spec_and_a_dev_node_list_the_same_routes() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_in_process(dir.path(), &[]);
    let problems = differences(&daemon.base, false);
    assert!(
        problems.is_empty(),
        "spec/openapi.yaml and a dev node differ:\n  {}",
        problems.join("\n  ")
    );
}

/// A validator of a two-validator chain (its peer never comes up: the routes are what matters)
/// also serves the consensus API.
#[test]
fn the_spec_and_a_validator_of_several_list_the_same_routes() {
    let dir = tempfile::tempdir().unwrap();
    let keys: Vec<PrivateKey> = (0..2).map(|_| PrivateKey::generate()).collect();
    let key_files: Vec<String> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| {
            let path = dir.path().join(format!("validator-{i}.key"));
            std::fs::write(&path, k.to_encoded()).unwrap();
            path.to_str().unwrap().to_string()
        })
        .collect();
    let genesis = dir.path().join("genesis.json");
    let genesis_json = json!({
        "chainId": "sparkid-openapi-test",
        "time": 1_700_000_000u64,
        "validators": keys.iter().map(|k| k.public_key().to_encoded()).collect::<Vec<_>>(),
    });
    std::fs::write(&genesis, genesis_json.to_string()).unwrap();
    let genesis = genesis.to_str().unwrap();
    let votes: Vec<Value> = key_files
        .iter()
        .map(|k| {
            common::cli(&[
                "ledger",
                "genesis-vote",
                "--genesis",
                genesis,
                "--validator-key",
                k,
            ])
        })
        .collect();
    let votes_path = dir.path().join("votes.json");
    std::fs::write(&votes_path, Value::Array(votes).to_string()).unwrap();
    let data = dir.path().join("node-0");
    common::cli(&[
        "ledger",
        "init",
        "--data",
        data.to_str().unwrap(),
        "--genesis",
        genesis,
        "--votes",
        votes_path.to_str().unwrap(),
    ]);
    let peer = format!("http://127.0.0.1:{}", common::free_port());
    let daemon = start_in_process(
        &data,
        &[
            "--validator-key",
            &key_files[0],
            "--peer",
            &peer,
            "--handle",
            "off",
        ],
    );
    let problems = differences(&daemon.base, true);
    assert!(
        problems.is_empty(),
        "spec/openapi.yaml and a validator of several differ:\n  {}",
        problems.join("\n  ")
    );
}

#[test]
fn the_route_table_is_the_router() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_in_process(dir.path(), &[]);
    let table = served(&daemon.base);
    let http = client();
    for (path, methods) in &table {
        let url = format!("{}{}", daemon.base, instantiate(path));
        // A method no route of the API uses: the router knows the path, not the method.
        let r = http
            .request(reqwest::Method::PUT, &url)
            .send()
            .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
        assert_eq!(r.status().as_u16(), 405, "PUT {url}");
        let allow = r
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .split(',')
            .map(|m| m.trim().to_string())
            .filter(|m| !m.is_empty() && m != "HEAD")
            .collect::<BTreeSet<_>>();
        assert_eq!(&allow, methods, "Allow of {path} against the listing");
    }
    // Nothing is served outside the table: the root matches no route.
    let r = http.get(format!("{}/", daemon.base)).send().unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

/// Regression: axum's extractor rejections used to answer these with `text/plain` bodies,
/// outside every door's format (found while writing the spec).
#[test]
fn bad_paths_and_queries_get_each_doors_own_error_format() {
    let dir = tempfile::tempdir().unwrap();
    let daemon = start_in_process(dir.path(), &[]);
    let base = &daemon.base;
    let http = client();
    let ask = |method: reqwest::Method, path: &str| {
        let r = http
            .request(method, format!("{base}{path}"))
            .body("{}")
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let content_type = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let body: Value = serde_json::from_str(&r.text().unwrap())
            .unwrap_or_else(|e| panic!("{path}: the body is not JSON: {e}"));
        (status, content_type, body)
    };

    // VAA: a code that is not UTF-8 once decoded is an invalid identifier, as a problem object.
    let (status, ct, body) = ask(reqwest::Method::GET, "/1.0/vaa/%FF");
    assert_eq!(status, 400, "{body}");
    assert_eq!(ct, "application/problem+json");
    assert_eq!(body["type"], "urn:sparkid:problem:invalid-identifier");
    assert_eq!(body["status"], 400);

    // Handle REST: the same, as the Handle API's JSON (a protocol error, echoing the handle).
    let (status, ct, body) = ask(reqwest::Method::GET, "/api/handles/86.100/%FF");
    assert_eq!(status, 400, "{body}");
    assert!(ct.starts_with("application/json"), "{ct}");
    assert_eq!(body["handle"], "86.100/%FF");
    // 4 is RC_PROTOCOL_ERROR, the Handle protocol's response code (RFC 3652).
    assert_eq!(body["responseCode"], 4, "{body}");
    assert!(
        body["message"]
            .as_str()
            .is_some_and(|m| m.contains("Invalid UTF-8")),
        "{body}"
    );

    // Registrar: a query string axum cannot read is a `failed` state object.
    for path in [
        "/1.0/create?method=bid&method=bid",
        "/1.0/update?method=bid&method=x",
        "/1.0/deactivate?method=a&method=b",
    ] {
        let (status, ct, body) = ask(reqwest::Method::POST, path);
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(ct, "application/json", "{path}");
        assert_eq!(body["didState"]["state"], "failed", "{path}: {body}");
        assert!(body["jobId"].is_null(), "{path}: {body}");
    }

    // The BID protocol door already answered in its envelope; keep it so.
    let (status, _, body) = ask(reqwest::Method::GET, "/%FF/attributes");
    assert_eq!(status, 200);
    assert_eq!(body["errorCode"], 4, "{body}");
}
