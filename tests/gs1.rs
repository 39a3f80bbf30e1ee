//! The GS1-Conformant Resolver door (GS1-Conformant Resolver standard 1.2.0) against a spawned
//! daemon, one test per requirement clients rely on, with data set up through the `sparkid`
//! CLI (`namespace delegate/bind --kind gs1`). The requirement list is `spec/gs1.md` §4; the
//! JSON schemas (description file, linkset) are local copies in `tests/gs1/`, checked by the
//! Python cross-check `tests/gs1_check.py` (jsonschema, python-stdnum, biip).

mod common;

use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use common::{cli, create_did, get_json, namespace, Daemon};
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};

const GTIN: &str = "09506000134352";
const GTIN13: &str = "9506000134352";
const PREFIX: &str = "9506000";

/// A client that does not follow redirects: the 307 is the answer under test.
fn http() -> Client {
    Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// One daemon for the whole file, with:
/// - `9506000` delegated to the brand; `/01/09506000134352` bound to the product DID (services
///   of GS1 link types: a product page, two equal certification links, two instructions in two
///   languages); `/01/…/10/LOT7` bound to the lot DID (its own default link);
/// - `/01/…/21/SER1` (serial without lot) unbound.
struct World {
    daemon: Daemon,
    _dir: tempfile::TempDir,
    product: String,
    lot: String,
    product_key: String,
    brand_key: String,
}

fn world() -> &'static World {
    static WORLD: OnceLock<World> = OnceLock::new();
    WORLD.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let daemon = Daemon::start_with(&data, &["--handle", "off"]);
        let base = daemon.base.clone();
        let authority = data.join("validator.key").to_string_lossy().to_string();
        let (brand_key, brand) = create_did(&base, None);
        let (product_key, product) = create_did(
            &base,
            Some(json!({"service": [
                {"id": "#pip", "type": "gs1:pip", "serviceEndpoint": "https://brand.example/pip/09506000134352",
                 "title": "Product information"},
                {"id": "#cert-a", "type": "gs1:certificationInfo", "serviceEndpoint": "https://cert.example/a",
                 "title": "Certificate A"},
                {"id": "#cert-b", "type": "https://gs1.org/voc/certificationInfo",
                 "serviceEndpoint": "https://cert.example/b", "title": "Certificate B"},
                {"id": "#howto-en", "type": "gs1:instructions", "serviceEndpoint": "https://brand.example/en",
                 "title": "How to", "hreflang": ["en"]},
                {"id": "#howto-fr", "type": "gs1:instructions", "serviceEndpoint": "https://brand.example/fr",
                 "title": "Mode d'emploi", "hreflang": ["fr"]},
                {"id": "#resolver", "type": "DIDResolver", "serviceEndpoint": "https://not-a-gs1-link.example"}
            ]})),
        );
        let (_, lot) = create_did(
            &base,
            Some(json!({"service": [
                {"id": "#default", "type": "gs1:defaultLink", "serviceEndpoint": "https://brand.example/lot7?src=dl",
                 "title": "Lot 7 recall notice"}
            ]})),
        );
        let brand_key = brand_key.to_encoded();
        namespace(
            &base,
            &authority,
            &["delegate", "--kind", "gs1", "--namespace", PREFIX, "--owner", &brand],
        );
        // A GTIN-13 as printed under the barcode: bound as its GTIN-14.
        namespace(
            &base,
            &brand_key,
            &["bind", "--kind", "gs1", "--identifier", &format!("/01/{GTIN13}"), "--did", &product],
        );
        namespace(
            &base,
            &brand_key,
            &[
                "bind",
                "--kind",
                "gs1",
                "--identifier",
                &format!("/01/{GTIN}/10/LOT7"),
                "--did",
                &lot,
            ],
        );
        World {
            daemon,
            _dir: dir,
            product,
            lot,
            product_key: product_key.to_encoded(),
            brand_key,
        }
    })
}

fn base() -> &'static str {
    world().daemon.base.as_str()
}

fn ask(path: &str) -> Response {
    http().get(format!("{}{path}", base())).send().unwrap()
}

fn header(r: &Response, name: &str) -> String {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn resolution_url(did: &str) -> String {
    format!("{}/1.0/identifiers/{did}", base())
}

/// Standard: a request without `linkType` is redirected (307) to the default link; the DID's
/// resolution URL is the default link unless a service is one; the linkset is offered in a
/// `Link` header even when redirecting.
#[test]
fn a_plain_request_is_a_307_to_the_default_link() {
    let w = world();
    let r = ask(&format!("/01/{GTIN}"));
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(header(&r, "location"), resolution_url(&w.product));
    let link = header(&r, "link");
    assert!(
        link.contains(&format!("<{}/01/{GTIN}?linkType=linkset>", base()))
            && link.contains("rel=\"linkset\""),
        "{link}"
    );
    // HEAD answers the same.
    let r = http().head(format!("{}/01/{GTIN}", base())).send().unwrap();
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(header(&r, "location"), resolution_url(&w.product));
}

/// Standard: "by default, SHALL pass on all key=value pairs" of the query string.
#[test]
fn the_query_string_is_passed_on() {
    let w = world();
    let r = ask(&format!("/01/{GTIN}?17=261231&foo=bar"));
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(
        header(&r, "location"),
        format!("{}?17=261231&foo=bar", resolution_url(&w.product))
    );
    // A target with its own query gets the pairs appended.
    let r = ask(&format!("/01/{GTIN}/10/LOT7?17=261231"));
    assert_eq!(
        header(&r, "location"),
        "https://brand.example/lot7?src=dl&17=261231"
    );
}

/// GTIN-8/12/13 are GTIN-14 with leading zeros; a trailing slash names the same item.
#[test]
fn gtin_forms_and_a_trailing_slash_name_the_same_item() {
    let w = world();
    for path in [
        format!("/01/{GTIN13}"),
        format!("/01/{GTIN}/"),
        format!("/01/{GTIN13}/"),
    ] {
        let r = ask(&path);
        assert_eq!(r.status().as_u16(), 307, "{path}");
        assert_eq!(header(&r, "location"), resolution_url(&w.product), "{path}");
    }
}

/// Standard: `linkType` selects the link, as a CURIE or a full URI; a type the item lacks
/// falls back to the default link.
#[test]
fn link_type_redirects_to_that_link() {
    let w = world();
    for lt in [
        "gs1:pip",
        "https://gs1.org/voc/pip",
        "https%3A%2F%2Fref.gs1.org%2Fvoc%2Fpip",
    ] {
        let r = ask(&format!("/01/{GTIN}?linkType={lt}"));
        assert_eq!(r.status().as_u16(), 307, "{lt}");
        assert_eq!(
            header(&r, "location"),
            "https://brand.example/pip/09506000134352",
            "{lt}"
        );
    }
    let r = ask(&format!("/01/{GTIN}?linkType=gs1:recipeInfo"));
    assert_eq!(r.status().as_u16(), 307);
    assert_eq!(header(&r, "location"), resolution_url(&w.product));
    // The DID's resolution URL is always a link.
    let r = ask(&format!("/01/{GTIN}/10/LOT7?linkType=describedby"));
    assert_eq!(header(&r, "location"), resolution_url(&w.lot));
}

/// Standard: several links of the requested type with the same attributes give 300 and the
/// linkset; links that differ (here by language) do not.
#[test]
fn several_equal_matches_give_300() {
    let r = ask(&format!("/01/{GTIN}?linkType=gs1:certificationInfo"));
    assert_eq!(r.status().as_u16(), 300);
    assert_eq!(header(&r, "content-type"), "application/linkset+json");
    let body: Value = r.json().unwrap();
    let certs = &body["linkset"][0]["https://gs1.org/voc/certificationInfo"];
    assert_eq!(certs.as_array().map(Vec::len), Some(2), "{body}");
    let r = ask(&format!("/01/{GTIN}?linkType=gs1:instructions"));
    assert_eq!(r.status().as_u16(), 307);
}

/// Standard: `linkType=linkset` (and the older `all`) or `Accept: application/linkset+json`
/// give 200 with the RFC 9264 linkset, `application/linkset+json`, and the JSON-LD context in a
/// `Link` header.
#[test]
fn the_linkset_is_served_with_its_context() {
    let w = world();
    let requests = [
        http().get(format!("{}/01/{GTIN}/10/LOT7?linkType=linkset", base())),
        http().get(format!("{}/01/{GTIN}/10/LOT7?linkType=all", base())),
        http()
            .get(format!("{}/01/{GTIN}/10/LOT7", base()))
            .header("accept", "application/linkset+json"),
    ];
    for request in requests {
        let r = request.send().unwrap();
        assert_eq!(r.status().as_u16(), 200);
        assert_eq!(header(&r, "content-type"), "application/linkset+json");
        let link = header(&r, "link");
        assert!(
            link.contains("<https://ref.gs1.org/standards/resolver/linkset-context>")
                && link.contains("rel=\"http://www.w3.org/ns/json-ld#context\""),
            "{link}"
        );
        let body: Value = r.json().unwrap();
        let sets = body["linkset"].as_array().unwrap();
        // Every bound level up to the primary key, most specific first.
        assert_eq!(sets.len(), 2, "{body}");
        assert_eq!(sets[0]["anchor"], format!("{}/01/{GTIN}/10/LOT7", base()));
        assert_eq!(
            sets[0]["https://gs1.org/voc/defaultLink"][0]["href"],
            "https://brand.example/lot7?src=dl"
        );
        assert_eq!(sets[0]["describedby"][0]["href"], resolution_url(&w.lot));
        assert_eq!(sets[1]["anchor"], format!("{}/01/{GTIN}", base()));
        assert_eq!(
            sets[1]["https://gs1.org/voc/pip"][0]["title"],
            "Product information"
        );
        // Services of other types are not links.
        assert!(!body.to_string().contains("not-a-gs1-link"), "{body}");
        // No `did:` as an href: only http(s).
        for set in sets {
            for (rel, targets) in set.as_object().unwrap() {
                if let Some(targets) = targets.as_array() {
                    for t in targets {
                        let href = t["href"].as_str().unwrap();
                        assert!(href.starts_with("http"), "{rel}: {href}");
                    }
                }
            }
        }
    }
}

/// A binding at a qualifier level wins over its primary key; lookups walk up the qualifier
/// path.
#[test]
fn a_qualifier_binding_wins_and_lookups_walk_up() {
    let w = world();
    let r = ask(&format!("/01/{GTIN}/10/LOT7"));
    assert_eq!(header(&r, "location"), "https://brand.example/lot7?src=dl");
    let r = ask(&format!("/01/{GTIN}/10/LOT7/21/SER1"));
    assert_eq!(header(&r, "location"), "https://brand.example/lot7?src=dl");
    let r = ask(&format!("/01/{GTIN}/10/LOT8"));
    assert_eq!(header(&r, "location"), resolution_url(&w.product));
    let r = ask(&format!("/01/{GTIN}/21/SER1"));
    assert_eq!(header(&r, "location"), resolution_url(&w.product));
    // A type only the key level has is found by walking up from the lot.
    let r = ask(&format!("/01/{GTIN}/10/LOT7?linkType=gs1:pip"));
    assert_eq!(
        header(&r, "location"),
        "https://brand.example/pip/09506000134352"
    );
}

/// An answer is never stale: a new binding shows at once, though the same request was just
/// answered (the door remembers answers only while the ledger's height stays the same).
#[test]
fn a_new_binding_shows_at_once() {
    let w = world();
    let path = format!("/01/{GTIN}/10/LOT9");
    for _ in 0..2 {
        assert_eq!(header(&ask(&path), "location"), resolution_url(&w.product));
    }
    namespace(
        base(),
        &w.brand_key,
        &[
            "bind",
            "--kind",
            "gs1",
            "--identifier",
            &path,
            "--did",
            &w.lot,
        ],
    );
    assert_eq!(
        header(&ask(&path), "location"),
        "https://brand.example/lot7?src=dl"
    );
}

fn problem(r: Response) -> (u16, Value) {
    let status = r.status().as_u16();
    assert_eq!(header(&r, "content-type"), "application/problem+json");
    assert_eq!(header(&r, "access-control-allow-origin"), "*");
    (status, r.json().unwrap())
}

/// Standard: a syntactically invalid request is 400 (never 200), and the error names the
/// broken rule.
#[test]
fn malformed_paths_are_400_naming_the_rule() {
    for (path, rule) in [
        (format!("/01/{GTIN}/foo"), "has no value"),
        ("/01/09506000134353".to_string(), "check digit 3 is wrong"),
        ("/01/0950600013".to_string(), "too short for N14"),
        (
            format!("/01/{GTIN}/21/S/10/L"),
            "must follow one of the orders",
        ),
        (format!("/01/{GTIN}/17/261231"), "does not qualify"),
        (format!("/01/{GTIN}/10/L%ZZ"), "percent escape"),
        ("/00/106141411234567890".to_string(), "check digit"),
        ("/8003/19506000134352".to_string(), "must be 0"),
        (
            format!("/01/{GTIN}?linkType=a&linkType=b"),
            "more than once",
        ),
    ] {
        let (status, body) = problem(ask(&path));
        assert_eq!(status, 400, "{path}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(rule), "{path}: {detail}");
    }
    let (status, _) = problem(ask(&format!("/01/{}", "9".repeat(600))));
    assert_eq!(status, 400);
}

/// Standard: a valid key nothing is known for is 404: no delegated company prefix, or a
/// delegated one with nothing bound, on every primary key.
#[test]
fn unknown_and_unbound_keys_are_404() {
    let (status, body) = problem(ask("/01/04012345123456"));
    assert_eq!(status, 404);
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("no GS1 Company Prefix"));
    let (status, body) = problem(ask("/01/09506000134369"));
    assert_eq!(status, 404);
    assert!(
        body["detail"].as_str().unwrap().contains("9506000"),
        "{body}"
    );
    for path in [
        "/00/106141411234567897",
        "/414/9506000134352",
        "/8006/095060001343520102",
        "/8013/1987654Ad4X4bL5ttr2310c2K",
        "/417/9506000134352",
    ] {
        let (status, _) = problem(ask(path));
        assert_eq!(status, 404, "{path}");
    }
}

/// Standard: CORS headers on answers, and `OPTIONS` with the methods GET, HEAD, OPTIONS.
#[test]
fn cors_and_options_are_supported() {
    let r = ask(&format!("/01/{GTIN}"));
    assert_eq!(header(&r, "access-control-allow-origin"), "*");
    for path in [
        format!("/01/{GTIN}"),
        "/.well-known/gs1resolver".to_string(),
    ] {
        let r = http()
            .request(reqwest::Method::OPTIONS, format!("{}{path}", base()))
            .header("origin", "https://shop.example")
            .header("access-control-request-method", "GET")
            .send()
            .unwrap();
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(header(&r, "access-control-allow-origin"), "*");
        let methods = header(&r, "access-control-allow-methods");
        for m in ["GET", "HEAD", "OPTIONS"] {
            assert!(methods.contains(m), "{path}: {methods}");
        }
    }
}

/// Standard: the resolver description file at `/.well-known/gs1resolver`.
#[test]
fn the_description_file_is_served() {
    let r = ask("/.well-known/gs1resolver");
    assert_eq!(r.status().as_u16(), 200);
    assert!(header(&r, "content-type").starts_with("application/json"));
    let body: Value = r.json().unwrap();
    assert_eq!(body["resolverRoot"], base());
    let keys = body["supportedPrimaryKeys"].as_array().unwrap();
    for key in [
        "00", "01", "253", "255", "401", "402", "414", "8003", "8004", "8006", "8017",
    ] {
        assert!(keys.contains(&json!(key)), "{key}: {body}");
    }
}

/// The root routes do not shadow the daemon's own.
#[test]
fn the_root_routes_shadow_nothing() {
    let w = world();
    let (status, _) = get_json(&format!("{}/healthz", base()));
    assert_eq!(status, 200);
    let (status, doc) = get_json(&resolution_url(&w.product));
    assert_eq!(status, 200, "{doc}");
    // The BID protocol's `/{bid}` still answers a BID.
    let (status, env) = get_json(&format!("{}/{}", base(), w.product));
    assert_eq!(status, 200);
    assert_eq!(env["errorCode"], 0, "{env}");
    let (status, _) = get_json(&format!("{}/1.0/routes", base()));
    assert_eq!(status, 200);
}

/// Both ways: once the DID's controller confirms the binding, the DID lists the key's
/// canonical `https://id.gs1.org/…` URI in `alsoKnownAs`.
#[test]
fn the_did_lists_its_gs1_alias_once_linked() {
    let w = world();
    let aka = |did: &str| {
        let (_, r) = get_json(&resolution_url(did));
        r["didDocumentMetadata"]["alsoKnownAs"].clone()
    };
    let alias = format!("https://id.gs1.org/01/{GTIN}");
    assert!(!aka(&w.product).to_string().contains(&alias));
    // Confirmed in the GTIN-13 form: the same canonical key.
    cli(&[
        "did",
        "link",
        "--endpoint",
        base(),
        "--did",
        &w.product,
        "--key",
        &w.product_key,
        "--kind",
        "gs1",
        "--identifier",
        &format!("/01/{GTIN13}"),
    ]);
    let listed = aka(&w.product);
    assert!(
        listed.as_array().is_some_and(|a| a.contains(&json!(alias))),
        "{listed}"
    );
}

/// The namespace API refuses malformed GS1 names with the rule, through `POST
/// /1.0/namespaces` (the CLI's path).
#[test]
fn the_namespace_api_names_the_broken_gs1_rule() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sparkid"))
        .args([
            "namespace",
            "bind",
            "--endpoint",
            base(),
            "--key",
            &world().product_key,
            "--kind",
            "gs1",
            "--identifier",
            "/01/09506000134353",
            "--did",
            &world().product,
        ])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("check digit 3 is wrong"), "{text}");
}

/// Cross-check with independent GS1 implementations and the standard's JSON schemas:
/// `tests/gs1_check.py` (python-stdnum, biip, jsonschema) asks this daemon.
#[test]
fn python_stdnum_biip_and_the_schemas_agree() {
    let w = world();
    let python = std::env::var("SPARKID_GS1_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/gs1_check.py");
    let out = Command::new(&python)
        .args([script, base(), &format!("/01/{GTIN}")])
        .env(
            "GS1_SCHEMAS",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/gs1"),
        )
        .env("GS1_PRODUCT_DID", &w.product)
        .output()
        .unwrap_or_else(|e| panic!("run {python}: {e} (set SPARKID_GS1_PYTHON, see scripts/test)"));
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
