//! The layout rules of the workspace (issue 11), checked in CI.
//!
//! 1. Only the daemon crate (`sparkid`) depends on the doors' frameworks: `axum`, `clap`,
//!    `hickory-server`, `tracing-subscriber`. The libraries are services that take a value and
//!    return a value; a framework in one of them is a door that leaked out of the daemon.
//! 2. No circle of imports among the files of a crate: dependencies point one way, so that each
//!    file can be read, tested and moved with what it imports, and without what imports it.
//! 3. Each library's `lib.rs` opens with a paragraph saying what the crate is for and what it
//!    must not know, so that a newcomer can tell where a change belongs.
//! 4. The test-support crate (`sparkid-test-support`: the dev ledger the tests share, and the
//!    libraries' integration tests) is for tests only: unpublished, and no product package (one
//!    that can be published) depends on it but as a dev-dependency, so that no product build
//!    links a test's shortcuts. The fuzz targets (`sparkid-fuzz`, unpublished) may.
//!
//! The import graph comes from plain string scanning, with no parser: [`tokens`] drops comments
//! (doc comments and their links too) and literals; [`scan`] reads module declarations and the
//! paths that start with `crate::`, `self::`, `super::` or a child module's name; [`Graph::resolve`]
//! maps each path to the file of the deepest module it names, following re-exports (`pub use`,
//! globs included) to the file that defines the name.
//!
//! `SPARKID_WORKSPACE` overrides the workspace root (default: this crate's parent directory).

use serde_json::Value;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};

const DAEMON: &str = "sparkid";
const DAEMON_ONLY: [&str; 4] = ["axum", "clap", "hickory-server", "tracing-subscriber"];
const TEST_SUPPORT: &str = "sparkid-test-support";
/// A library's opening paragraph says what the crate must not know with one of these.
const MUST_NOT_WORDS: [&str; 5] = ["know", "knows", "no i/o", "does not", "must not"];

fn workspace_root() -> PathBuf {
    std::env::var_os("SPARKID_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
}

fn metadata() -> Value {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .current_dir(workspace_root())
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .expect("run cargo metadata");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "cargo metadata: {err}");
    serde_json::from_slice(&out.stdout).expect("cargo metadata's JSON")
}

fn text(v: &Value) -> &str {
    v.as_str().unwrap_or("?")
}

/// The workspace's own packages.
fn members(meta: &Value) -> Vec<&Value> {
    let ids = meta["workspace_members"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let all = meta["packages"].as_array().into_iter().flatten();
    all.filter(|p| ids.contains(&p["id"])).collect()
}

/// The (package, target) pairs of the workspace whose target is of one of `kinds`.
fn targets<'a>(meta: &'a Value, kinds: &[&str]) -> Vec<(&'a Value, &'a Value)> {
    let of_kind = |t: &Value| {
        t["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| kinds.contains(&text(k))))
    };
    let all = members(meta).into_iter().flat_map(|p| {
        p["targets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(move |t| (p, t))
    });
    all.filter(|(_, t)| of_kind(t)).collect()
}

/// Rule 1 on `cargo metadata` output: each dependency on a door's framework outside the daemon.
fn forbidden_deps(meta: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    for p in members(meta).into_iter().filter(|p| p["name"] != DAEMON) {
        for d in p["dependencies"].as_array().into_iter().flatten() {
            if DAEMON_ONLY.contains(&text(&d["name"])) {
                let kind = d["kind"].as_str().unwrap_or("normal");
                bad.push(format!(
                    "package `{}` depends on `{}` ({kind})",
                    text(&p["name"]),
                    text(&d["name"])
                ));
            }
        }
    }
    bad
}

#[test]
fn only_the_daemon_depends_on_door_frameworks() {
    let meta = metadata();
    let daemon = members(&meta)
        .into_iter()
        .find(|p| p["name"] == DAEMON)
        .expect("package `sparkid`");
    let deps = daemon["dependencies"].as_array().expect("its dependencies");
    assert!(
        deps.iter().any(|d| d["name"] == "axum"),
        "`sparkid` without axum: is the rule stale?"
    );
    let bad = forbidden_deps(&meta);
    assert!(
        bad.is_empty(),
        "only `{DAEMON}` may use {DAEMON_ONLY:?}:\n{}",
        bad.join("\n")
    );
}

/// Rule 4 on `cargo metadata` output: each way the test-support crate reaches a product build.
fn test_support_leaks(meta: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    for p in members(meta) {
        if p["name"] == TEST_SUPPORT {
            // `publish = false` reads as an empty list of registries.
            if p["publish"] != serde_json::json!([]) {
                bad.push(format!(
                    "`{TEST_SUPPORT}` is publishable: set `publish = false`"
                ));
            }
            continue;
        }
        // `publish = false` reads as an empty list of registries: no product.
        if p["publish"] == serde_json::json!([]) {
            continue;
        }
        for d in p["dependencies"].as_array().into_iter().flatten() {
            let kind = d["kind"].as_str().unwrap_or("normal");
            if d["name"] == TEST_SUPPORT && kind != "dev" {
                bad.push(format!(
                    "package `{}` depends on `{TEST_SUPPORT}` ({kind}): a dev-dependency only",
                    text(&p["name"])
                ));
            }
        }
    }
    bad
}

#[test]
fn the_test_support_crate_is_for_tests_only() {
    let meta = metadata();
    assert!(
        members(&meta).iter().any(|p| p["name"] == TEST_SUPPORT),
        "no `{TEST_SUPPORT}` in the workspace: is the rule stale?"
    );
    let bad = test_support_leaks(&meta);
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// Rule 2, for every library and binary target (each binary is a crate root of its own).
#[test]
fn no_circle_of_imports_in_any_crate() {
    let (root, meta) = (workspace_root(), metadata());
    let (mut failures, mut files) = (Vec::new(), 0);
    for (p, t) in targets(&meta, &["lib", "rlib", "proc-macro", "bin"]) {
        let name = match t["kind"][0] == "bin" {
            true => format!("{} (bin {})", text(&p["name"]), text(&t["name"])),
            false => text(&p["name"]).to_string(),
        };
        let g = graph(Path::new(text(&t["src_path"])), &|p| {
            std::fs::read_to_string(p).ok()
        });
        files += g.files.len();
        let show = |f: usize| {
            g.files[f]
                .strip_prefix(&root)
                .unwrap_or(&g.files[f])
                .display()
                .to_string()
        };
        failures.extend(g.problems.iter().map(|e| format!("{name}: {e}")));
        for (set, circle) in circles(&g) {
            let names: Vec<String> = circle.iter().map(|&f| show(f)).collect();
            let mut msg = format!("{name}: {}", names.join(" -> "));
            if set.len() + 1 > circle.len() {
                let all: Vec<String> = set.iter().map(|&f| show(f)).collect();
                msg += &format!(
                    "\n    (one circle in a set of {}: {})",
                    set.len(),
                    all.join(", ")
                );
            }
            for w in circle.windows(2) {
                let (line, path) = &g.edges[&(w[0], w[1])];
                msg += &format!("\n    {}:{line} names `{path}`", show(w[0]));
            }
            failures.push(msg);
        }
    }
    assert!(
        files > 10,
        "only {files} source files: is the workspace root right?"
    );
    assert!(
        failures.is_empty(),
        "circles of imports:\n{}",
        failures.join("\n")
    );
}

/// Rule 3: the opening `//!` paragraph of every library says what the crate must not know.
#[test]
fn each_library_says_what_it_must_not_know() {
    let meta = metadata();
    let mut bad = Vec::new();
    for (p, t) in targets(&meta, &["lib"]) {
        let src = std::fs::read_to_string(text(&t["src_path"])).expect("read lib.rs");
        if let Err(e) = check_opening_doc(&src) {
            bad.push(format!("{}: {e}", text(&p["name"])));
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn check_opening_doc(src: &str) -> Result<(), String> {
    let mut lines = src
        .lines()
        .map(str::trim)
        .skip_while(|l| l.is_empty())
        .peekable();
    if !lines.peek().is_some_and(|l| l.starts_with("//!")) {
        return Err("lib.rs does not open with a `//!` paragraph".into());
    }
    // The `//!` lines before the first item (inner attributes and comments may come between).
    let head = lines.take_while(|l| l.is_empty() || l.starts_with("//") || l.starts_with("#!["));
    let doc: Vec<&str> = head.filter_map(|l| l.strip_prefix("//!")).collect();
    let doc = doc
        .join(" ")
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match MUST_NOT_WORDS.iter().any(|w| has_words(&doc, w)) {
        true => Ok(()),
        false => Err(format!(
            "its `//!` paragraph does not say what it must not know {MUST_NOT_WORDS:?}"
        )),
    }
}

/// Whether `words` occurs in `text` with a word boundary on both sides.
fn has_words(text: &str, words: &str) -> bool {
    let edge = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '_');
    let at =
        |i: usize| edge(text[..i].chars().last()) && edge(text[i + words.len()..].chars().next());
    text.match_indices(words).any(|(i, _)| at(i))
}

// ---- the import graph -------------------------------------------------------------------------

/// A crate's files and the imports between them. Modules are paths from the crate root.
#[derive(Default)]
struct Graph {
    files: Vec<PathBuf>,
    /// The file that holds each module (an inline module is held by the file it is written in);
    /// `None`: declared, but its file is missing, which the compiler reports.
    owner: HashMap<Vec<String>, Option<usize>>,
    mentions: Vec<Mention>,
    /// The items each module defines at its top level (`fn`, `struct`, ...).
    defs: HashSet<(Vec<String>, String)>,
    /// The names each module imports, and what they stand for (`None`: another crate's).
    binds: HashMap<Vec<String>, HashMap<String, Option<Vec<String>>>>,
    /// The modules each module glob-imports (`use x::*`).
    globs: HashMap<Vec<String>, Vec<Vec<String>>>,
    /// `from -> to`, with the first line and path that made the edge.
    edges: BTreeMap<(usize, usize), (usize, String)>,
    problems: Vec<String>,
}

/// A path written in a file.
struct Mention {
    file: usize,
    /// The module it is written in (an inline module's, inside its file's).
    module: Vec<String>,
    segs: Vec<String>,
    /// The name a `use` binds, or `*`.
    binds: Option<String>,
    line: usize,
}

/// Loads the module tree from `root` (`lib.rs`, `main.rs` or a `src/bin/*.rs`) and links its files.
fn graph(root: &Path, read: &dyn Fn(&Path) -> Option<String>) -> Graph {
    let mut g = Graph::default();
    let mut queue = VecDeque::from([(vec![(root.to_path_buf(), true)], Vec::new())]);
    while let Some((candidates, module)) = queue.pop_front() {
        let found = candidates
            .into_iter()
            .find_map(|(p, m)| read(&p).map(|s| (p, m, s)));
        let Some((path, mod_rs, src)) = found else {
            g.owner.insert(module, None);
            continue;
        };
        let id = g.files.len();
        g.owner.insert(module.clone(), Some(id));
        // `mod x;` in a crate root or a `mod.rs` is `x.rs` beside it; in `a.rs` it is `a/x.rs`.
        let dir = if mod_rs {
            path.parent().unwrap().to_path_buf()
        } else {
            path.with_extension("")
        };
        g.files.push(path);
        for (child, inline) in scan(&src, id, &module, &mut g) {
            let d = inline
                .iter()
                .fold(dir.clone(), |d, s| d.join(s))
                .join(child.last().unwrap());
            queue.push_back((
                vec![(d.with_extension("rs"), false), (d.join("mod.rs"), true)],
                child,
            ));
        }
    }
    for m in &g.mentions {
        match (m.binds.as_deref(), absolute(&m.segs, &m.module, &g.owner)) {
            (None, _) | (Some("*"), None) => {}
            (Some("*"), Some(t)) => g.globs.entry(m.module.clone()).or_default().push(t),
            (Some(name), t) => {
                let binds = g.binds.entry(m.module.clone()).or_default();
                binds.insert(name.into(), t);
            }
        }
    }
    for m in &g.mentions {
        let to = absolute(&m.segs, &m.module, &g.owner).and_then(|p| g.resolve(p, 0));
        if let Some(to) = to.filter(|&to| to != m.file) {
            g.edges
                .entry((m.file, to))
                .or_insert((m.line, m.segs.join("::")));
        }
    }
    g
}

impl Graph {
    /// The file a crate-absolute path leads to: the holder of its deepest module, unless the next
    /// segment is a name that module imports (a re-export, maybe by a glob), which is followed.
    fn resolve(&self, path: Vec<String>, depth: u8) -> Option<usize> {
        let k = (0..=path.len())
            .rev()
            .find(|&k| self.owner.contains_key(&path[..k]))?;
        let (module, rest) = (&path[..k], &path[k..]);
        let Some(name) = rest.first().filter(|_| depth < 8) else {
            return self.owner[module];
        };
        if let Some(target) = self.binds.get(module).and_then(|b| b.get(name)) {
            return self.resolve([target.clone()?, rest[1..].to_vec()].concat(), depth + 1);
        }
        let has = |m: &[String]| {
            self.defs.contains(&(m.to_vec(), name.clone()))
                || self.binds.get(m).is_some_and(|b| b.contains_key(name))
        };
        if !has(module) {
            if let Some(glob) = self
                .globs
                .get(module)
                .into_iter()
                .flatten()
                .find(|m| has(m))
            {
                return self.resolve([glob, rest].concat(), depth + 1);
            }
        }
        self.owner[module]
    }
}

/// Records the items, module declarations and paths of one file; returns its `mod x;`
/// declarations as (module, the inline modules between the file's module and it).
fn scan(
    src: &str,
    file: usize,
    module: &[String],
    g: &mut Graph,
) -> Vec<(Vec<String>, Vec<String>)> {
    let toks = tokens(src);
    let at = |k: usize| toks.get(k).map_or("", |t| t.0.as_str());
    let (mut decls, mut braces, mut pending, mut i) = (Vec::new(), Vec::new(), None, 0);
    while i < toks.len() {
        // `braces`: each open `{`, with the inline module it opens, if it does.
        let inline: Vec<String> = braces.iter().flatten().cloned().collect();
        let ctx = [module, &inline[..]].concat();
        let prev = if i > 0 { at(i - 1) } else { "" };
        match at(i) {
            "{" => braces.push(pending.take()),
            "}" => drop(braces.pop()),
            "#" if at(i + 1) == "[" && at(i + 2) == "path" => g.problems.push(format!(
                "{}: `#[path]` is not supported",
                g.files[file].display()
            )),
            "fn" | "struct" | "enum" | "union" | "trait" | "type" | "const" | "static"
            | "macro_rules"
                if braces.iter().all(Option::is_some) =>
            {
                let name = if at(i + 1) == "!" {
                    at(i + 2)
                } else {
                    at(i + 1)
                };
                g.defs.insert((ctx, name.to_string()));
            }
            "mod" if is_ident(at(i + 1)) && matches!(at(i + 2), "{" | ";") => {
                let child = [ctx, vec![at(i + 1).to_string()]].concat();
                if at(i + 2) == "{" {
                    pending = Some(at(i + 1).to_string());
                    g.owner.insert(child, Some(file));
                } else {
                    decls.push((child, inline));
                }
                i += 1; // and the name, below
            }
            // A `use` tree, or a path in code (`pub(in crate::a)` is a visibility, not a use).
            t if t == "use"
                || (is_ident(t)
                    && at(i + 1) == "::"
                    && !matches!(prev, "::" | "." | "'")
                    && !(prev == "in" && i >= 2 && at(i - 2) == "(")) =>
            {
                let (is_use, mut out, line) = (t == "use", Vec::new(), toks[i].1);
                let next = tree(&toks, i + is_use as usize, Vec::new(), &mut out);
                for (segs, binds) in out {
                    let (module, binds) = (ctx.clone(), binds.filter(|_| is_use));
                    g.mentions.push(Mention {
                        file,
                        module,
                        segs,
                        binds,
                        line,
                    });
                }
                i = next.max(i + 1);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    decls
}

type Paths = Vec<(Vec<String>, Option<String>)>;

/// Parses a path or a `use` tree (`a::{b::{self, C}, d as e, *}`) at `i` into its full paths,
/// each with the name it binds; returns the index after it.
fn tree(toks: &[(String, usize)], mut i: usize, mut prefix: Vec<String>, out: &mut Paths) -> usize {
    let at = |k: usize| toks.get(k).map_or("", |t| t.0.as_str());
    loop {
        match at(i) {
            "{" => {
                i += 1;
                while !matches!(at(i), "}" | "") {
                    i = tree(toks, i, prefix.clone(), out).max(i + 1);
                    i += (at(i) == ",") as usize;
                }
                return i + 1;
            }
            "*" => {
                out.push((prefix, Some("*".into())));
                return i + 1;
            }
            "::" if prefix.is_empty() => prefix.push("::".into()), // `::name`: another crate
            t if is_ident(t)
                && at(i + 1) == "::"
                && (is_ident(at(i + 2)) || matches!(at(i + 2), "{" | "*")) =>
            {
                prefix.push(t.into());
                i += 1;
            }
            t if is_ident(t) => {
                let mut name = if t == "self" {
                    prefix.last().cloned().unwrap_or_default()
                } else {
                    t.into()
                };
                if t != "self" {
                    prefix.push(t.into());
                }
                if at(i + 1) == "as" {
                    name = at(i + 2).to_string();
                    i += 2;
                }
                out.push((prefix, Some(name).filter(|n| n != "_")));
                return i + 1;
            }
            _ => {
                if !prefix.is_empty() {
                    out.push((prefix, None)); // as in `crate::a::f::<T>()`
                }
                return i;
            }
        }
        i += 1;
    }
}

/// The crate-absolute path that `segs`, written in module `ctx`, names; `None` for a path into
/// another crate (or anything not in this one).
fn absolute(
    segs: &[String],
    ctx: &[String],
    owner: &HashMap<Vec<String>, Option<usize>>,
) -> Option<Vec<String>> {
    let (mut base, mut rest) = (ctx.to_vec(), segs);
    match segs.first()?.as_str() {
        "crate" => (base, rest) = (Vec::new(), &segs[1..]),
        "self" => rest = &segs[1..],
        "super" => {}
        child if owner.contains_key(&[ctx, &[child.to_string()][..]].concat()) => {}
        _ => return None,
    }
    while rest.first().is_some_and(|s| s == "super") {
        base.pop()?;
        rest = &rest[1..];
    }
    Some([base, rest.to_vec()].concat())
}

/// Each strongly connected set of two files or more, with the shortest circle through its first
/// file (`a, b, a`): the circle says where to cut, the set how much is tangled. The graphs are
/// small (tens of files), so a breadth-first search from every file is enough.
fn circles(g: &Graph) -> Vec<(Vec<usize>, Vec<usize>)> {
    let n = g.files.len();
    // `from[s][w]`: the file before `w` on a shortest path from `s` (`from[s][s]`: back to `s`).
    let from: Vec<Vec<Option<usize>>> = (0..n)
        .map(|s| {
            let (mut from, mut queue) = (vec![None; n], VecDeque::from([s]));
            while let Some(v) = queue.pop_front() {
                for (&(_, w), _) in g.edges.range((v, 0)..(v + 1, 0)) {
                    if from[w].is_none() {
                        from[w] = Some(v);
                        queue.push_back(w);
                    }
                }
            }
            from
        })
        .collect();
    let (mut seen, mut out) = (vec![false; n], Vec::new());
    for s in (0..n).filter(|&s| from[s][s].is_some()) {
        if seen[s] {
            continue;
        }
        let set: Vec<usize> = (0..n)
            .filter(|&w| from[s][w].is_some() && from[w][s].is_some())
            .collect();
        set.iter().for_each(|&w| seen[w] = true);
        let (mut circle, mut v) = (vec![s], s);
        while v != s || circle.len() == 1 {
            v = from[s][v].unwrap();
            circle.push(v);
        }
        circle.reverse();
        out.push((set, circle));
    }
    out
}

// ---- lexing -----------------------------------------------------------------------------------

fn is_ident(t: &str) -> bool {
    t.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
}

/// The tokens of `src` with their lines: identifiers (`$crate` as `crate`, `r#x` as `x`), `::`,
/// and single punctuation. Comments and literals are dropped.
fn tokens(src: &str) -> Vec<(String, usize)> {
    let c: Vec<char> = src.chars().collect();
    let word = |ch: char| ch.is_alphanumeric() || ch == '_';
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        if let Some(end) = skip(&c, i).map(|e| e.min(c.len())) {
            line += c[i..end].iter().filter(|&&ch| ch == '\n').count();
            i = end;
            continue;
        }
        let start = i;
        i += 1;
        match c[start] {
            '\n' => line += 1,
            ch if word(ch) => {
                while i < c.len() && word(c[i]) {
                    i += 1;
                }
                match c[start..i] == ['r'] && c.get(i) == Some(&'#') {
                    true => i += 1, // `r#x`
                    false => out.push((c[start..i].iter().collect(), line)),
                }
            }
            ':' if c.get(i) == Some(&':') => {
                out.push(("::".into(), line));
                i += 1;
            }
            '$' if c.get(i).is_some_and(|&ch| word(ch)) => {}
            ch if !ch.is_whitespace() => out.push((ch.to_string(), line)),
            _ => {}
        }
    }
    out
}

/// Where the comment or the string, byte, raw or char literal that starts at `i` ends, if one does.
fn skip(c: &[char], i: usize) -> Option<usize> {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let until = |mut k: usize, end: &dyn Fn(usize) -> bool| {
        while k < c.len() && !end(k) {
            k += 1 + (at(k) == '\\') as usize; // past an escape
        }
        k
    };
    if at(i) == '/' && at(i + 1) == '/' {
        return Some((i..c.len()).find(|&k| at(k) == '\n').unwrap_or(c.len()));
    }
    if at(i) == '/' && at(i + 1) == '*' {
        let (mut k, mut depth) = (i + 2, 1);
        while k < c.len() && depth > 0 {
            match (at(k), at(k + 1)) {
                ('/', '*') => (depth, k) = (depth + 1, k + 2),
                ('*', '/') => (depth, k) = (depth - 1, k + 2),
                _ => k += 1,
            }
        }
        return Some(k);
    }
    if i > 0 && (at(i - 1).is_alphanumeric() || at(i - 1) == '_') {
        return None; // inside an identifier
    }
    let p = i + matches!(at(i), 'b' | 'c') as usize; // after a `b` or `c` prefix
    let q = if at(p) == 'r' {
        (p + 1..).find(|&k| at(k) != '#').unwrap()
    } else {
        p
    };
    match at(q) {
        '"' if at(p) == 'r' => {
            let hashes = q - p - 1;
            let raw = |k: usize| at(k) == '"' && (1..=hashes).all(|h| at(k + h) == '#');
            let mut k = q + 1;
            while k < c.len() && !raw(k) {
                k += 1;
            }
            Some(k + 1 + hashes)
        }
        '"' => Some(until(q + 1, &|k| at(k) == '"') + 1),
        '\'' if p == q => match (at(q + 1), at(q + 2)) {
            ('\\', _) => Some(until(q + 3, &|k| at(k) == '\'') + 1),
            (_, '\'') => Some(q + 3),
            _ => None, // a lifetime or a label
        },
        _ => None,
    }
}

// ---- the checker can fail ---------------------------------------------------------------------

mod checker {
    use super::*;

    /// The graph of a fake crate rooted at `src/lib.rs`, its files given as `"path: source"`.
    fn fake(files: &[&str]) -> Graph {
        let files: HashMap<PathBuf, String> = files
            .iter()
            .map(|f| f.split_once(": ").unwrap())
            .map(|(p, s)| (p.into(), s.into()))
            .collect();
        graph(Path::new("src/lib.rs"), &|p| files.get(p).cloned())
    }

    fn edges(files: &[&str]) -> Vec<String> {
        let g = fake(files);
        let name = |f: usize| g.files[f].display().to_string();
        g.edges
            .keys()
            .map(|&(a, b)| format!("{} -> {}", name(a), name(b)))
            .collect()
    }

    fn circles_of(files: &[&str]) -> Vec<String> {
        let g = fake(files);
        let name = |c: &Vec<usize>| {
            c.iter()
                .map(|&f| g.files[f].display().to_string())
                .collect::<Vec<_>>()
        };
        circles(&g)
            .iter()
            .map(|(_, c)| name(c).join(" -> "))
            .collect()
    }

    const LIB: &str = "src/lib.rs: //! Fake.\nmod a;\nmod b;";

    #[test]
    fn a_circle_is_found_and_a_one_way_import_is_not() {
        let a = "src/a.rs: use crate::b::X;\npub struct Y;";
        let circle = circles_of(&[LIB, a, "src/b.rs: use super::a::Y;\npub struct X;"]);
        assert_eq!(circle, ["src/a.rs -> src/b.rs -> src/a.rs"]);
        let g = fake(&[LIB, a, "src/b.rs: use super::a::Y;"]);
        assert_eq!(g.edges[&(1, 2)], (1, "crate::b::X".to_string()));
        assert_eq!(
            edges(&[LIB, a, "src/b.rs: pub struct X;"]),
            ["src/a.rs -> src/b.rs"]
        );
        assert!(circles_of(&[LIB, a, "src/b.rs: pub struct X;"]).is_empty());
    }

    #[test]
    fn comments_and_literals_make_no_edge() {
        let a = r####"src/a.rs: //! See [`crate::b`].
            /// Unlike [`crate::b::X`]; /* crate::b::X /* nested */ crate::b */
            const S: &str = "crate::b::X \" crate::b"; const R: &str = r#"crate::b " crate::b"#;
            const C: char = '"'; const D: u8 = b'\''; fn f<'a>(x: &'a str) -> &'a str { x }
            const B: &[u8] = br"crate::b"; const E: char = '\u{22}';"####;
        assert!(edges(&[LIB, a, "src/b.rs: "]).is_empty());
        let a = format!("{a}\nfn g(_: crate::b::X) {{}}"); // while code still counts
        assert_eq!(edges(&[LIB, &a, "src/b.rs: "]), ["src/a.rs -> src/b.rs"]);
    }

    #[test]
    fn use_groups_globs_and_relative_paths() {
        let lib = "src/lib.rs: mod a; mod b; mod c; mod d;";
        let (a, b) = (
            "src/a.rs: use crate::{b::{self as bee, X}, c};",
            "src/b.rs: use self::super::d::*;",
        );
        let edges = edges(&[lib, a, b, "src/c.rs: ", "src/d.rs: "]);
        assert_eq!(
            edges,
            [
                "src/a.rs -> src/b.rs",
                "src/a.rs -> src/c.rs",
                "src/b.rs -> src/d.rs"
            ]
        );
    }

    #[test]
    fn an_inline_test_module_is_part_of_its_file() {
        let a = "src/a.rs: pub fn f() { crate::b::g() }\nmod tests { use super::*; use super::super::b; }";
        assert_eq!(
            edges(&[LIB, a, "src/b.rs: pub fn g() {}"]),
            ["src/a.rs -> src/b.rs"]
        );
    }

    #[test]
    fn the_deepest_module_with_a_file_is_the_target() {
        let a = "src/a/mod.rs: pub mod b;\npub mod inline { pub struct Z; }";
        let b = "src/a/b.rs: use crate::c::Y;\npub struct C;";
        let c = "src/c.rs: use crate::a::b::C;\nfn f(_: crate::a::inline::Z) {}";
        let files = ["src/lib.rs: mod a; mod c;", a, b, c];
        assert_eq!(circles_of(&files), ["src/c.rs -> src/a/b.rs -> src/c.rs"]);
        let edges = edges(&files);
        assert_eq!(
            edges,
            [
                "src/c.rs -> src/a/mod.rs",
                "src/c.rs -> src/a/b.rs",
                "src/a/b.rs -> src/c.rs"
            ]
        );
    }

    #[test]
    fn a_re_export_leads_to_the_file_that_defines_it() {
        let lib = "src/lib.rs: mod a; mod b;\npub use a::X;\npub use std::sync::Arc;";
        let b = "src/b.rs: use crate::{X, Arc};\nfn f(_: crate::X) {}";
        assert_eq!(
            edges(&[lib, "src/a.rs: pub struct X;", b]),
            ["src/lib.rs -> src/a.rs", "src/b.rs -> src/a.rs"]
        );
        let (lib, a) = (
            "src/lib.rs: mod a; mod b; mod c;",
            "src/a.rs: pub use crate::b::*;\npub fn own() {}",
        );
        let c = "src/c.rs: use crate::a::{Moved, own, Unknown};";
        let edges = edges(&[lib, a, "src/b.rs: pub struct Moved;", c]);
        assert_eq!(
            edges,
            [
                "src/a.rs -> src/b.rs",
                "src/c.rs -> src/a.rs",
                "src/c.rs -> src/b.rs"
            ]
        );
    }

    #[test]
    fn a_path_into_a_missing_file_is_no_edge_to_its_parent() {
        let a = "src/a.rs: use crate::gone::X; use crate::S;";
        assert_eq!(
            edges(&["src/lib.rs: mod a; mod gone; pub struct S;", a]),
            ["src/a.rs -> src/lib.rs"]
        );
    }

    #[test]
    fn a_child_module_named_in_its_parent_is_an_edge() {
        let h = "src/h.rs: mod wire;\nfn f() { wire::g() }\nfn x(v: Vec<u8>) { v.wire::<u8>() }";
        let circle = circles_of(&[
            "src/lib.rs: mod h;",
            h,
            "src/h/wire.rs: pub fn g() { super::f() }",
        ]);
        assert_eq!(circle, ["src/h.rs -> src/h/wire.rs -> src/h.rs"]);
    }

    #[test]
    fn the_dependency_rule_names_package_and_dependency() {
        let meta = serde_json::json!({
            "workspace_members": ["d", "n"],
            "packages": [
                {"id": "d", "name": "sparkid", "dependencies": [{"name": "axum", "kind": null}]},
                {"id": "n", "name": "sparkid-node", "dependencies": [{"name": "clap", "kind": "dev"}]},
            ]
        });
        assert_eq!(
            forbidden_deps(&meta),
            ["package `sparkid-node` depends on `clap` (dev)"]
        );
    }

    #[test]
    fn the_test_support_rule_refuses_a_normal_dependency_and_a_published_crate() {
        // An unpublished package (the fuzz targets) is no product: its normal dependency passes.
        let meta = serde_json::json!({
            "workspace_members": ["t", "r", "v", "f"],
            "packages": [
                {"id": "t", "name": TEST_SUPPORT, "publish": null, "dependencies": []},
                {"id": "r", "name": "sparkid-resolver",
                 "dependencies": [{"name": TEST_SUPPORT, "kind": "dev"}]},
                {"id": "v", "name": "sparkid-verifier",
                 "dependencies": [{"name": TEST_SUPPORT, "kind": null}]},
                {"id": "f", "name": "sparkid-fuzz", "publish": [],
                 "dependencies": [{"name": TEST_SUPPORT, "kind": null}]},
            ]
        });
        assert_eq!(
            test_support_leaks(&meta),
            [
                "`sparkid-test-support` is publishable: set `publish = false`",
                "package `sparkid-verifier` depends on `sparkid-test-support` (normal): a dev-dependency only",
            ]
        );
    }

    #[test]
    fn the_opening_doc_rule() {
        assert!(check_opening_doc(
            "\n//! Pure.\n//!\n//! It knows no HTTP.\n#![deny(missing_docs)]"
        )
        .is_ok());
        assert!(check_opening_doc("//! Core. This crate does\n//! no I/O.\npub mod a;").is_ok());
        assert!(check_opening_doc("//! Core, and knowledge.\npub mod a;\n//! must not").is_err());
        assert!(check_opening_doc("#![deny(missing_docs)]\n//! It must not know.").is_err());
    }
}
