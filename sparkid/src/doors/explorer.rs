//! `/explorer/`: the chain browser. Server-rendered HTML (maud templates, which escape every
//! value they insert; no script at all), or the page's data as JSON when the request's `Accept`
//! asks for `application/json`. The data comes from [`sparkid_resolver::explorer`]; this door
//! reads the path and query, and renders.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use serde::Serialize;
use serde_json::{json, Value};
use sparkid_node::follow::Follower;
use sparkid_registrar::namespace::{BindingRecord, NamespaceRecord};
use sparkid_registrar::Kind;
use sparkid_resolver::explorer::{
    kind_label, BlockList, BlockPage, BlockSummary, DidPage, Explorer, ExplorerError,
    IdentifierPage, NamespaceList, NamespacePage, SearchResult, SubchainPage, Subject, Target,
    TxList, TxPage, TxSummary, MAX_INPUT_BYTES, PAGE_SIZE,
};

use crate::doors::routes::{get, Routes};

/// The most items one page lists (`?limit=`).
const MAX_LIMIT: usize = 100;

/// What the browser reads.
#[derive(Clone)]
struct Browser {
    explorer: Explorer,
    follower: Option<Arc<Follower>>,
}

/// The routes, over the read service and, on a follower, its sync state.
pub fn router(explorer: Explorer, follower: Option<Arc<Follower>>) -> Routes {
    Routes::new()
        .route("/explorer", get(home))
        .route("/explorer/", get(home))
        .route("/explorer/blocks", get(blocks))
        .route("/explorer/transactions", get(transactions))
        .route("/explorer/block/{id}", get(block))
        .route("/explorer/tx/{hash}", get(transaction))
        .route("/explorer/did/{did}", get(did))
        .route("/explorer/namespaces/{kind}", get(namespaces))
        .route("/explorer/namespace/{kind}/{*namespace}", get(namespace))
        .route("/explorer/id/{kind}/{*identifier}", get(identifier))
        .route("/explorer/subchain/{ac}", get(subchain))
        .route("/explorer/search", get(search))
        .with_state(Browser { explorer, follower })
}

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

/// A client's mistake or a missing page, in the format asked for.
struct Refusal {
    status: StatusCode,
    detail: String,
}

impl From<ExplorerError> for Refusal {
    fn from(e: ExplorerError) -> Refusal {
        let status = match &e {
            ExplorerError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ExplorerError::NotFound(_) => StatusCode::NOT_FOUND,
            ExplorerError::Ledger(err) => {
                tracing::error!(error = %err, "the chain browser could not read the ledger");
                StatusCode::INTERNAL_SERVER_ERROR
            }
        };
        Refusal {
            status,
            detail: e.to_string(),
        }
    }
}

fn bad(detail: impl Into<String>) -> Refusal {
    Refusal {
        status: StatusCode::BAD_REQUEST,
        detail: detail.into(),
    }
}

/// Whether the client asked for JSON.
fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/json"))
}

/// The query, with only `allowed` parameters, each at most [`MAX_INPUT_BYTES`].
fn params(query: Params, allowed: &[&str]) -> Result<HashMap<String, String>, Refusal> {
    let Query(query) = query.map_err(|e| bad(e.body_text()))?;
    if let Some(unknown) = query.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(bad(if allowed.is_empty() {
            format!("unknown parameter {unknown:?}: this page takes none")
        } else {
            format!(
                "unknown parameter {unknown:?}: this page takes {}",
                allowed.join(", ")
            )
        }));
    }
    if let Some((name, _)) = query.iter().find(|(_, v)| v.len() > MAX_INPUT_BYTES) {
        return Err(bad(format!(
            "parameter {name} is longer than {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok(query)
}

fn limit(query: &HashMap<String, String>) -> Result<usize, Refusal> {
    match query.get("limit") {
        None => Ok(PAGE_SIZE),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(bad(format!(
                "limit {text:?}: a number from 1 to {MAX_LIMIT}"
            ))),
        },
    }
}

fn number<T: std::str::FromStr>(
    query: &HashMap<String, String>,
    name: &str,
) -> Result<Option<T>, Refusal> {
    query
        .get(name)
        .map(|text| {
            text.parse::<T>()
                .map_err(|_| bad(format!("{name} {text:?} is not a cursor this page gave")))
        })
        .transpose()
}

fn path<T>(extracted: Result<Path<T>, PathRejection>) -> Result<T, Refusal> {
    let Path(value) = extracted.map_err(|e| bad(e.body_text()))?;
    Ok(value)
}

fn too_long(value: &str) -> Result<(), Refusal> {
    if value.len() > MAX_INPUT_BYTES {
        return Err(bad(format!(
            "a path parameter is at most {MAX_INPUT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Gathers a page off the async threads (the ledger reads block).
async fn gather<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ExplorerError> + Send + 'static,
) -> Result<T, Refusal> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(Refusal::from),
        Err(e) => {
            tracing::error!(error = %e, "a chain browser page failed");
            Err(Refusal {
                status: StatusCode::INTERNAL_SERVER_ERROR,
                detail: "the page could not be gathered".into(),
            })
        }
    }
}

/// The page as JSON or HTML; a refusal as problem JSON or an error page.
fn respond<T: Serialize>(
    headers: &HeaderMap,
    result: Result<T, Refusal>,
    title: impl FnOnce(&T) -> String,
    body: impl FnOnce(&T) -> Markup,
) -> Response {
    let json = wants_json(headers);
    match result {
        Ok(page) if json => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&page).unwrap_or_default(),
        )
            .into_response(),
        Ok(page) => html_response(StatusCode::OK, &title(&page), body(&page)),
        Err(refusal) => refuse(json, refusal),
    }
}

fn refuse(json: bool, refusal: Refusal) -> Response {
    let Refusal { status, detail } = refusal;
    let reason = status.canonical_reason().unwrap_or("Error");
    if json {
        return (
            status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            json!({"type": "about:blank", "title": reason, "status": status.as_u16(), "detail": detail})
                .to_string(),
        )
            .into_response();
    }
    html_response(
        status,
        reason,
        html! {
            h1 { (status.as_u16()) " " (reason) }
            p.problem { (detail) }
            p { a href="/explorer/" { "Back to the chain browser" } }
        },
    )
}

fn html_response(status: StatusCode, title: &str, body: Markup) -> Response {
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                // No favicon request (and no 404 for it in the console).
                link rel="icon" href="data:,";
                title { (title) " · sparkid chain browser" }
                style { (PreEscaped(CSS)) }
            }
            body {
                header {
                    a.brand href="/explorer/" { "sparkid" }
                    nav {
                        a href="/explorer/blocks" { "Blocks" }
                        a href="/explorer/transactions" { "Transactions" }
                        a href="/explorer/namespaces/vaa" { "Namespaces" }
                    }
                    form.search action="/explorer/search" method="get" role="search" {
                        input type="search" name="q" aria-label="Search"
                            placeholder="DID, BID, tx hash, height, handle, VAA, DNS name…"
                            maxlength=(MAX_INPUT_BYTES) required;
                        button type="submit" { "Search" }
                    }
                }
                main { (body) }
            }
        }
    };
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        page.into_string(),
    )
        .into_response()
}

/// Percent-encodes one path segment or query value (everything but RFC 3986 unreserved).
fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn chain_query(chain: Option<&str>) -> String {
    chain.map_or_else(String::new, |c| format!("?chain={}", enc(c)))
}

fn block_url(chain: Option<&str>, height: u64) -> String {
    format!("/explorer/block/{height}{}", chain_query(chain))
}

fn tx_url(chain: Option<&str>, hash: &str) -> String {
    format!("/explorer/tx/{}{}", enc(hash), chain_query(chain))
}

fn did_url(did: &str) -> String {
    format!("/explorer/did/{}", enc(did))
}

fn namespace_url(kind: Kind, namespace: &str) -> String {
    format!("/explorer/namespace/{kind}/{}", enc(namespace))
}

fn identifier_url(kind: Kind, identifier: &str) -> String {
    format!("/explorer/id/{kind}/{}", enc(identifier))
}

fn subchain_url(ac: &str) -> String {
    format!("/explorer/subchain/{}", enc(ac))
}

fn subject_url(subject: &Subject) -> String {
    match subject {
        Subject::Did { did } => did_url(did),
        Subject::Namespace { kind, namespace } => namespace_url(*kind, namespace),
        Subject::Identifier { kind, identifier } => identifier_url(*kind, identifier),
        Subject::Subchain { ac } => subchain_url(ac),
    }
}

fn target_url(target: &Target) -> String {
    match target {
        Target::Block { height } => block_url(None, *height),
        Target::Tx { hash } => tx_url(None, hash),
        Target::Subject(subject) => subject_url(subject),
    }
}

fn subject_text(subject: &Subject) -> String {
    match subject {
        Subject::Did { did } => did.clone(),
        Subject::Namespace { kind, namespace } => {
            format!("{} namespace {namespace}", kind_label(*kind))
        }
        Subject::Identifier { kind, identifier } => format!("{} {identifier}", kind_label(*kind)),
        Subject::Subchain { ac } => format!("sub-chain {ac}"),
    }
}

fn short(hash: &str) -> String {
    if hash.len() > 16 {
        format!("{}…", &hash[..16])
    } else {
        hash.to_string()
    }
}

fn block_table(blocks: &[BlockSummary]) -> Markup {
    html! {
        div.scroll { table.blocks {
            thead { tr { th { "Height" } th { "Hash" } th { "Time" } th { "Txs" } } }
            tbody {
                @for b in blocks {
                    tr {
                        td { a href=(block_url(None, b.height)) { (b.height) } }
                        td.hash { (short(&b.hash)) }
                        td { (b.time) }
                        td { (b.tx_count) }
                    }
                }
            }
        } }
    }
}

fn tx_table(chain: Option<&str>, txs: &[TxSummary]) -> Markup {
    html! {
        div.scroll { table.txs {
            thead { tr { th { "Hash" } th { "Block" } th { "Operation" } th { "About" } } }
            tbody {
                @for t in txs {
                    tr {
                        td.hash { a href=(tx_url(chain, &t.hash)) { (short(&t.hash)) } }
                        td { a href=(block_url(chain, t.height)) { (t.height) } "." (t.index) }
                        td { span.op { (t.operation) } }
                        td {
                            @for (i, s) in t.subjects.iter().enumerate() {
                                @if i > 0 { ", " }
                                a href=(subject_url(s)) { (subject_text(s)) }
                            }
                        }
                    }
                }
            }
        } }
    }
}

fn pretty(value: &Value) -> String {
    serde_json::to_string_pretty(value).unwrap_or_default()
}

async fn home(State(b): State<Browser>, headers: HeaderMap, query: Params) -> Response {
    let result = match params(query, &[]) {
        Ok(_) => {
            let sync = b.follower.as_ref().map(|f| f.health().1);
            let explorer = b.explorer.clone();
            gather(move || explorer.home(sync)).await
        }
        Err(r) => Err(r),
    };
    respond(
        &headers,
        result,
        |_| "Home".into(),
        |h| {
            html! {
                h1 { "Chain " code { (h.chain_id) } }
                dl.facts {
                    dt { "Head" } dd id="head-height" { a href=(block_url(None, h.height)) { (h.height) } }
                    dt { "Head time" } dd { (h.time) }
                    dt { "Head hash" } dd.hash { (h.hash) }
                    dt { "DIDs" } dd id="count-dids" { (h.counts.dids) }
                    dt { "Namespaces" } dd id="count-namespaces" { (h.counts.namespaces) }
                    dt { "Bindings" } dd id="count-bindings" { (h.counts.bindings) }
                    @if let Some(sync) = &h.sync {
                        dt { "Sync" }
                        dd id="sync" {
                            (sync["state"].as_str().unwrap_or("unknown"))
                            " — height " (sync["height"]) " of peer's " (sync["peerHeight"])
                            " (lag " (sync["lag"]) ")"
                        }
                    }
                }
                section {
                    h2 { "Namespaces by kind" }
                    ul.kinds {
                        @for k in &h.kinds {
                            li { a href=(format!("/explorer/namespaces/{k}")) { (kind_label(*k)) } }
                        }
                    }
                    @if !h.hosted_subchains.is_empty() {
                        p { "Hosted sub-chains: "
                            @for ac in &h.hosted_subchains {
                                a href=(subchain_url(ac)) { (ac) } " "
                            }
                        }
                    }
                }
                section id="recent-blocks" {
                    h2 { "Recent blocks" }
                    (block_table(&h.recent_blocks))
                    p { a href="/explorer/blocks" { "All blocks →" } }
                }
                section id="recent-transactions" {
                    h2 { "Recent transactions" }
                    (tx_table(None, &h.recent_transactions))
                    p { a href="/explorer/transactions" { "All transactions →" } }
                }
            }
        },
    )
}

async fn blocks(State(b): State<Browser>, headers: HeaderMap, query: Params) -> Response {
    let result = async {
        let q = params(query, &["before", "limit"])?;
        let (before, limit) = (number::<u64>(&q, "before")?, limit(&q)?);
        let explorer = b.explorer.clone();
        gather(move || explorer.blocks(before, limit)).await
    }
    .await;
    respond(
        &headers,
        result,
        |_| "Blocks".into(),
        |l: &BlockList| {
            html! {
                h1 { "Blocks" }
                (block_table(&l.blocks))
                @if let Some(next) = l.next {
                    p.pager { a rel="next" href=(format!("/explorer/blocks?before={next}")) { "Older blocks →" } }
                }
            }
        },
    )
}

async fn transactions(State(b): State<Browser>, headers: HeaderMap, query: Params) -> Response {
    let result = async {
        let q = params(query, &["before", "limit"])?;
        let before = match q.get("before") {
            None => None,
            Some(text) => Some(
                text.split_once('.')
                    .and_then(|(h, i)| Some((h.parse::<u64>().ok()?, i.parse::<u32>().ok()?)))
                    .ok_or_else(|| {
                        bad(format!(
                            "before {text:?}: a cursor <height>.<index> this page gave"
                        ))
                    })?,
            ),
        };
        let limit = limit(&q)?;
        let explorer = b.explorer.clone();
        gather(move || explorer.transactions(before, limit)).await
    }
    .await;
    respond(
        &headers,
        result,
        |_| "Transactions".into(),
        |l: &TxList| {
            html! {
                h1 { "Transactions" }
                (tx_table(None, &l.transactions))
                @if let Some(next) = &l.next {
                    p.pager { a rel="next" href=(format!("/explorer/transactions?before={}", enc(next))) { "Older transactions →" } }
                }
            }
        },
    )
}

async fn block(
    State(b): State<Browser>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    query: Params,
) -> Response {
    let result = async {
        let id = path(id)?;
        too_long(&id)?;
        let q = params(query, &["chain", "after", "limit"])?;
        let (after, limit) = (number::<u32>(&q, "after")?, limit(&q)?);
        let chain = q.get("chain").cloned();
        let explorer = b.explorer.clone();
        gather(move || explorer.block(chain.as_deref(), &id, after, limit)).await
    }
    .await;
    respond(
        &headers,
        result,
        |p| format!("Block {}", p.height),
        |p: &BlockPage| {
            let chain = p.chain.as_deref();
            html! {
                h1 { "Block " (p.height) @if let Some(c) = chain { " of sub-chain " (c) } }
                p.pager {
                    @if p.height > 0 { a rel="prev" href=(block_url(chain, p.height - 1)) { "← Block " (p.height - 1) } " " }
                    @if p.has_next_block { a rel="next" href=(block_url(chain, p.height + 1)) { "Block " (p.height + 1) " →" } }
                }
                dl.facts {
                    dt { "Chain" } dd { (p.chain_id) }
                    dt { "Hash" } dd.hash id="block-hash" { (p.hash) }
                    dt { "Previous hash" } dd.hash {
                        @if p.height > 0 { a href=(block_url(chain, p.height - 1)) { (p.previous_hash) } } @else { (p.previous_hash) }
                    }
                    dt { "Time" } dd { (p.time) }
                    dt { "Transactions" } dd { (p.tx_count) }
                    dt { "Transaction root" } dd.hash { (p.tx_root) }
                    dt { "State root" } dd.hash { (p.state_root) }
                    dt { "Proposer" } dd.hash { (p.proposer) }
                }
                section id="certificate" {
                    h2 { "Commit certificate" }
                    p class=(if p.certificate.ok { "badge ok" } else { "badge bad" }) { (p.certificate.detail) }
                    div.scroll { table {
                        thead { tr { th { "Signer" } th { "Round" } th { "Validator" } } }
                        tbody { @for s in &p.signers {
                            tr { td.hash { (s.validator) } td { (s.round) } td { @if s.is_validator { "yes" } @else { "no" } } }
                        } }
                    } }
                    p { "Quorum: " (p.quorum) }
                }
                section id="transactions" {
                    h2 { "Transactions" }
                    (tx_table(chain, &p.transactions))
                    @if let Some(next) = p.next {
                        p.pager { a rel="next" href=(format!("/explorer/block/{}?after={next}{}", p.height, chain.map(|c| format!("&chain={}", enc(c))).unwrap_or_default())) { "More transactions →" } }
                    }
                }
            }
        },
    )
}

async fn transaction(
    State(b): State<Browser>,
    headers: HeaderMap,
    hash: Result<Path<String>, PathRejection>,
    query: Params,
) -> Response {
    let result = async {
        let hash = path(hash)?;
        too_long(&hash)?;
        let q = params(query, &["chain"])?;
        let chain = q.get("chain").cloned();
        let explorer = b.explorer.clone();
        gather(move || explorer.transaction(chain.as_deref(), &hash)).await
    }
    .await;
    respond(
        &headers,
        result,
        |t| format!("Transaction {}", short(&t.hash)),
        |t: &TxPage| {
            let chain = t.chain.as_deref();
            html! {
                h1 { "Transaction" }
                dl.facts {
                    dt { "Hash" } dd.hash id="tx-hash" { (t.hash) }
                    dt { "Outcome" } dd id="outcome" { span.badge.ok { (t.outcome) } }
                    dt { "Block" } dd { a id="tx-block" href=(block_url(chain, t.height)) { (t.height) } " (position " (t.index) ")" }
                    dt { "Time" } dd { (t.time) }
                    dt { "Operation" } dd id="operation" { span.op { (t.operation_type) } }
                    dt { "Signer" } dd.hash { (t.signer) }
                    dt { "Public key" } dd.hash { (t.public_key) }
                    dt { "Valid until" } dd { (t.valid_until) }
                    dt { "About" } dd {
                        @for (i, s) in t.subjects.iter().enumerate() {
                            @if i > 0 { ", " }
                            a.subject href=(subject_url(s)) { (subject_text(s)) }
                        }
                    }
                }
                h2 { "Operation as signed" }
                pre { (pretty(&t.operation)) }
            }
        },
    )
}

async fn did(
    State(b): State<Browser>,
    headers: HeaderMap,
    did: Result<Path<String>, PathRejection>,
    query: Params,
) -> Response {
    let result = async {
        let did = path(did)?;
        too_long(&did)?;
        let q = params(query, &["before", "limit"])?;
        let (before, limit) = (number::<u64>(&q, "before")?, limit(&q)?);
        let explorer = b.explorer.clone();
        gather(move || explorer.did(&did, before, limit)).await
    }
    .await;
    respond(
        &headers,
        result,
        |d| d.did.clone(),
        |d: &DidPage| {
            let chain = d.chain.as_deref();
            html! {
                h1.hash { (d.did) }
                p id="verified" class=(if d.verified.ok { "badge ok" } else { "badge bad" }) title=(d.verified.detail) {
                    @if d.verified.ok { "✔ verified" } @else { "✘ not verified" }
                    " against the certified header of block "
                    a href=(block_url(chain, d.verified.height)) { (d.verified.height) }
                }
                p.detail { (d.verified.detail) }
                dl.facts {
                    @if let Some(c) = chain { dt { "Sub-chain" } dd { a href=(subchain_url(c)) { (c) } } }
                    dt { "Version" } dd { (d.version_id) }
                    dt { "Created" } dd { (d.created) }
                    dt { "Updated" } dd { (d.updated) }
                    dt { "Status" } dd id="status" { @if d.deactivated { "deactivated" } @else { "active" } }
                    dt { "Resolve" } dd { a href=(format!("/1.0/identifiers/{}", d.did)) { "DID resolution result" } }
                }
                section id="bound" {
                    h2 { "Bound identifiers" }
                    @if d.bound.is_empty() { p { "None." } } @else {
                        ul { @for a in &d.bound {
                            li {
                                (kind_label(a.kind)) " "
                                a href=(identifier_url(a.kind, &a.identifier)) { (a.identifier) }
                                @if a.confirmed { " " span.badge.ok { "confirmed by the DID" } }
                            }
                        } }
                    }
                }
                section id="history" {
                    h2 { "History" }
                    div.scroll { table {
                        thead { tr { th { "Version" } th { "Operation" } th { "Block" } th { "Updated" } } }
                        tbody { @for v in &d.history {
                            tr {
                                td { (v.version_id) }
                                td { span.op { (v.operation) } @if v.deactivated { " (deactivated)" } }
                                td { a href=(block_url(chain, v.height)) { (v.height) } }
                                td { (v.updated) }
                            }
                        } }
                    } }
                    @if let Some(next) = d.next {
                        p.pager { a rel="next" href=(format!("{}?before={next}", did_url(&d.did))) { "Older versions →" } }
                    }
                }
                section id="document" {
                    h2 { "Current document" }
                    pre { (pretty(&d.document)) }
                }
            }
        },
    )
}

async fn namespaces(
    State(b): State<Browser>,
    headers: HeaderMap,
    kind: Result<Path<String>, PathRejection>,
    query: Params,
) -> Response {
    let result = async {
        let kind = path(kind)?;
        too_long(&kind)?;
        let q = params(query, &["after", "limit"])?;
        let (after, limit) = (q.get("after").cloned(), limit(&q)?);
        let explorer = b.explorer.clone();
        gather(move || explorer.namespaces(&kind, after.as_deref(), limit)).await
    }
    .await;
    respond(
        &headers,
        result,
        |l| format!("{} namespaces", kind_label(l.kind)),
        |l: &NamespaceList| {
            html! {
                h1 { (kind_label(l.kind)) " namespaces" }
                p.kinds { @for k in Kind::ALL {
                    @if k == l.kind { strong { (kind_label(k)) } } @else { a href=(format!("/explorer/namespaces/{k}")) { (kind_label(k)) } }
                    " "
                } }
                @if l.namespaces.is_empty() { p { "None delegated." } } @else {
                    (namespace_table(&l.namespaces))
                }
                @if let Some(next) = &l.next {
                    p.pager { a rel="next" href=(format!("/explorer/namespaces/{}?after={}", l.kind, enc(next))) { "More →" } }
                }
            }
        },
    )
}

fn namespace_table(namespaces: &[NamespaceRecord]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Namespace" } th { "Owner" } th { "Block" } } }
            tbody { @for n in namespaces {
                tr {
                    td { @if n.kind == Kind::Ac { a href=(subchain_url(&n.namespace)) { (n.namespace) } } @else { a href=(namespace_url(n.kind, &n.namespace)) { (n.namespace) } } }
                    td.hash { a href=(did_url(&n.owner)) { (n.owner) } }
                    td { a href=(block_url(None, n.height)) { (n.height) } }
                }
            } }
        } }
    }
}

fn binding_table(bindings: &[BindingRecord]) -> Markup {
    html! {
        div.scroll { table {
            thead { tr { th { "Identifier" } th { "DID" } th { "Block" } } }
            tbody { @for r in bindings {
                tr {
                    td { a href=(identifier_url(r.kind, &r.identifier)) { (r.identifier) } }
                    td.hash { @if let Some(did) = &r.did { a href=(did_url(did)) { (did) } } @else { "unbound" } }
                    td { a href=(block_url(None, r.height)) { (r.height) } }
                }
            } }
        } }
    }
}

async fn namespace(
    State(b): State<Browser>,
    headers: HeaderMap,
    params_: Result<Path<(String, String)>, PathRejection>,
    query: Params,
) -> Response {
    let result = async {
        let (kind, namespace) = path(params_)?;
        too_long(&namespace)?;
        let q = params(query, &["after", "limit"])?;
        let (after, limit) = (q.get("after").cloned(), limit(&q)?);
        let explorer = b.explorer.clone();
        gather(move || explorer.namespace(&kind, &namespace, after.as_deref(), limit)).await
    }
    .await;
    respond(
        &headers,
        result,
        |p| {
            format!(
                "{} namespace {}",
                kind_label(p.record.kind),
                p.record.namespace
            )
        },
        |p: &NamespacePage| {
            let r = &p.record;
            html! {
                h1 { (kind_label(r.kind)) " namespace " code { (r.namespace) } }
                dl.facts {
                    dt { "Owner" } dd.hash id="owner" { a href=(did_url(&r.owner)) { (r.owner) } }
                    @if let Some(chain) = &r.chain { dt { "Items live on" } dd { (chain) } }
                    @if !r.endpoints.is_empty() { dt { "Endpoints" } dd { @for e in &r.endpoints { code { (e) } " " } } }
                    dt { "Delegated" } dd { (r.created) }
                    dt { "Updated" } dd { (r.updated) " (version " (r.version_id) ", block " a href=(block_url(None, r.height)) { (r.height) } ")" }
                }
                section id="bindings" {
                    h2 { "Bindings" }
                    @if p.bindings.is_empty() { p { "None on this page." } } @else { (binding_table(&p.bindings)) }
                    @if let Some(next) = &p.next {
                        p.pager { a rel="next" href=(format!("{}?after={}", namespace_url(r.kind, &r.namespace), enc(next))) { "More bindings →" } }
                    }
                }
                section id="history" {
                    h2 { "History" }
                    div.scroll { table {
                        thead { tr { th { "Version" } th { "Owner" } th { "Block" } } }
                        tbody { @for v in &p.history {
                            tr { td { (v.record.version_id) } td.hash { (v.record.owner) } td { a href=(block_url(None, v.height)) { (v.height) } } }
                        } }
                    } }
                }
            }
        },
    )
}

async fn identifier(
    State(b): State<Browser>,
    headers: HeaderMap,
    params_: Result<Path<(String, String)>, PathRejection>,
    query: Params,
) -> Response {
    let result = async {
        let (kind, identifier) = path(params_)?;
        too_long(&identifier)?;
        let q = params(query, &["limit"])?;
        let limit = limit(&q)?;
        let explorer = b.explorer.clone();
        gather(move || explorer.identifier(&kind, &identifier, limit)).await
    }
    .await;
    respond(
        &headers,
        result,
        |p| format!("{} {}", kind_label(p.kind), p.identifier),
        |p: &IdentifierPage| {
            html! {
                h1 { (kind_label(p.kind)) " " code { (p.identifier) } }
                dl.facts {
                    @if let Some(uri) = &p.uri { dt { "URI" } dd { code { (uri) } } }
                    dt { "Namespace" } dd id="namespace" {
                        @if let Some(n) = &p.namespace { a href=(namespace_url(n.kind, &n.namespace)) { (n.namespace) } " (owner " a href=(did_url(&n.owner)) { (n.owner) } ")" } @else { "none delegated" }
                    }
                    dt { "Bound to" } dd id="bound-did" {
                        @match p.binding.as_ref().and_then(|b| b.did.as_ref()) {
                            Some(did) => { a href=(did_url(did)) { (did) } }
                            None => { "nothing" }
                        }
                    }
                }
                section id="history" {
                    h2 { "History" }
                    div.scroll { table {
                        thead { tr { th { "Version" } th { "DID" } th { "Block" } } }
                        tbody { @for v in &p.history {
                            tr {
                                td { (v.record.version_id) }
                                td.hash { @if let Some(did) = &v.record.did { a href=(did_url(did)) { (did) } } @else { "unbound" } }
                                td { a href=(block_url(None, v.height)) { (v.height) } }
                            }
                        } }
                    } }
                }
            }
        },
    )
}

async fn subchain(
    State(b): State<Browser>,
    headers: HeaderMap,
    ac: Result<Path<String>, PathRejection>,
    query: Params,
) -> Response {
    let result = async {
        let ac = path(ac)?;
        too_long(&ac)?;
        let q = params(query, &["before", "limit"])?;
        let (before, limit) = (number::<u64>(&q, "before")?, limit(&q)?);
        let explorer = b.explorer.clone();
        gather(move || explorer.subchain(&ac, before, limit)).await
    }
    .await;
    respond(
        &headers,
        result,
        |p| format!("Sub-chain {}", p.ac),
        |p: &SubchainPage| {
            html! {
                h1 { "Sub-chain " code { (p.ac) } }
                section id="delegation" {
                    h2 { "Delegation" }
                    @if let Some(d) = &p.delegation {
                        dl.facts {
                            dt { "Owner" } dd.hash { a href=(did_url(&d.owner)) { (d.owner) } }
                            dt { "Resolver endpoints" } dd id="endpoints" { @if d.endpoints.is_empty() { "none" } @for e in &d.endpoints { code { (e) } " " } }
                            dt { "Delegated" } dd { (d.created) " (block " a href=(block_url(None, d.height)) { (d.height) } ")" }
                        }
                    } @else { p { "Not delegated on this chain." } }
                    @if let Some(h) = p.hosted_height {
                        p id="hosted" { "This daemon hosts it, at height "
                            a href=(block_url(Some(&p.ac), h)) { (h) } "." }
                    }
                }
                section id="anchors" {
                    h2 { "Anchors" }
                    @if p.anchors.is_empty() { p { "None yet." } } @else {
                        div.scroll { table {
                            thead { tr { th { "Sub-chain height" } th { "Block hash" } th { "Anchored" } th { "Main-chain block" } } }
                            tbody { @for a in &p.anchors {
                                tr {
                                    td { (a.height) }
                                    td.hash { (short(&a.block_hash)) }
                                    td { (a.anchored) }
                                    td { a href=(block_url(None, a.main_height)) { (a.main_height) } }
                                }
                            } }
                        } }
                    }
                    @if let Some(next) = p.next {
                        p.pager { a rel="next" href=(format!("{}?before={next}", subchain_url(&p.ac))) { "Older anchors →" } }
                    }
                }
            }
        },
    )
}

async fn search(State(b): State<Browser>, headers: HeaderMap, query: Params) -> Response {
    let json = wants_json(&headers);
    let result = async {
        let q = params(query, &["q"])?;
        let text = q
            .get("q")
            .cloned()
            .ok_or_else(|| bad("search needs q, the text to look for"))?;
        let explorer = b.explorer.clone();
        gather(move || explorer.search(&text)).await
    }
    .await;
    let found = match result {
        Ok(found) => found,
        Err(refusal) => return refuse(json, refusal),
    };
    let status = if found.matches.is_empty() {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::OK
    };
    if json {
        let mut body = serde_json::to_value(&found).unwrap_or(Value::Null);
        if let Some(matches) = body["matches"].as_array_mut() {
            for (m, found) in matches.iter_mut().zip(&found.matches) {
                m["url"] = json!(target_url(&found.target));
            }
        }
        return (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
    }
    // One page found: go there.
    if let [only] = found.matches.as_slice() {
        return (
            StatusCode::SEE_OTHER,
            [(header::LOCATION, target_url(&only.target))],
        )
            .into_response();
    }
    html_response(status, "Search", search_page(&found))
}

fn search_page(found: &SearchResult) -> Markup {
    html! {
        h1 { "Search: " code { (found.query) } }
        @if found.matches.is_empty() {
            p id="not-found" { "Nothing on this chain matches." }
        } @else {
            ul id="matches" { @for m in &found.matches { li { a href=(target_url(&m.target)) { (m.label) } } } }
        }
        section id="understood" {
            h2 { "How the input was read" }
            @if found.understood.is_empty() {
                p { "As nothing this chain holds: not a height, a hash, a DID or BID, an AC code, or an identifier of any kind ("
                    @for (i, k) in Kind::ALL.iter().enumerate() { @if i > 0 { ", " } (kind_label(*k)) }
                    ")." }
            } @else {
                ul { @for r in &found.understood {
                    li { "As " (r.as_what) " " code { (r.value) } ": "
                        @if r.found { span.badge.ok { "found" } } @else { span.badge.bad { "not found" } } }
                } }
            }
        }
    }
}

const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:15px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1d2330;background:#f6f7f9}
header{display:flex;flex-wrap:wrap;gap:.5rem 1.25rem;align-items:center;padding:.75rem 1rem;background:#14213d;color:#fff}
header a{color:#fff;text-decoration:none}
.brand{font-weight:700;font-size:1.15rem}
nav{display:flex;gap:1rem}
form.search{display:flex;flex:1 1 18rem;gap:.4rem;min-width:0}
form.search input{flex:1;min-width:0;padding:.4rem .6rem;border:0;border-radius:4px;font:inherit}
form.search button{padding:.4rem .8rem;border:0;border-radius:4px;background:#fca311;color:#14213d;font-weight:600}
main{max-width:72rem;margin:0 auto;padding:1rem}
h1{font-size:1.4rem;overflow-wrap:anywhere}
h1.hash{font-size:1.2rem}
h2{font-size:1.1rem;margin-top:1.5rem}
a{color:#1a56db}
.hash,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.85em;overflow-wrap:anywhere}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.3rem 1rem;background:#fff;padding:.75rem 1rem;border-radius:6px}
dl.facts dt{font-weight:600;color:#4a5568}
dl.facts dd{margin:0;min-width:0}
@media (max-width:600px){dl.facts{grid-template-columns:1fr}dl.facts dd{margin-bottom:.4rem}}
.scroll{overflow-x:auto}
table{border-collapse:collapse;width:100%;background:#fff;border-radius:6px}
th,td{text-align:left;padding:.4rem .6rem;border-bottom:1px solid #e2e8f0;vertical-align:top}
td{overflow-wrap:anywhere}
pre{background:#fff;padding:.75rem;border-radius:6px;overflow-x:auto;font-size:.8rem}
.badge{display:inline-block;padding:.1rem .5rem;border-radius:999px;font-weight:600}
.badge.ok{background:#def7ec;color:#03543f}
.badge.bad{background:#fde8e8;color:#9b1c1c}
.op{font-family:ui-monospace,monospace;background:#edf2f7;padding:0 .3rem;border-radius:3px}
.problem{background:#fde8e8;padding:.75rem;border-radius:6px}
.pager a{font-weight:600}
ul.kinds{display:flex;flex-wrap:wrap;gap:.5rem 1rem;padding:0;list-style:none}
"#;
