//! The architecture, checked from the source text (docs/architecture.md):
//!
//! - the layers of `src/` import only downwards (the table in [`ALLOWED`]): the core
//!   (`model`, `config`, `plan`, `provider`) never imports `cli`, `provider` never imports
//!   `server`, and so on;
//! - no import circle between the files of `src/`;
//! - every path docs/architecture.md names exists.
//!
//! It reads `crate::…` and `super::…` paths in `use` lines and in expressions, with
//! comments and string literals removed. Test code is left out (files named `tests.rs`
//! or `testing.rs`, and everything after a file's `#[cfg(test)]` line: the crate keeps
//! its unit tests last): tests may build fixtures from any layer. A parent module's
//! references to its own children (`mod.rs` declaring, re-exporting or running them)
//! are the module tree itself, not a circle, and are not counted as edges.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of `src/` and the top-level modules it may import.
const ALLOWED: &[(&str, &[&str])] = &[
    ("model", &[]),
    ("config", &["model"]),
    ("generate", &["model", "config"]),
    ("plan", &["model"]),
    ("provider", &["model", "plan"]),
    ("server", &["model"]),
    ("apply", &["model", "plan", "provider"]),
    (
        "ops",
        &[
            "model", "config", "generate", "plan", "provider", "server", "apply",
        ],
    ),
    (
        "cli",
        &[
            "model", "config", "generate", "plan", "provider", "server", "apply", "ops",
        ],
    ),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `src/plan/diff.rs` → `["plan", "diff"]`; `src/plan/mod.rs` → `["plan"]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .skip(1)
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" {
        parts.push(stem.to_string());
    }
    parts
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The source without comments, string and char literals (replaced by spaces), cut
/// at the first `#[cfg(test)]`.
fn code_of(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(i) => &text[..i],
        None => text,
    };
    let b = text.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'/' && b.get(i + 1) == Some(&b'/') {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            let mut depth = 0;
            while i < b.len() {
                if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                    depth += 1;
                    i += 2;
                } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if c == b'r' && matches!(b.get(i + 1), Some(b'"') | Some(b'#')) {
            // raw string r"…" / r#"…"#
            let mut j = i + 1;
            let mut hashes = 0;
            while b.get(j) == Some(&b'#') {
                hashes += 1;
                j += 1;
            }
            if b.get(j) != Some(&b'"') {
                out.push(c as char);
                i += 1;
                continue;
            }
            j += 1;
            loop {
                if j >= b.len() {
                    break;
                }
                if b[j] == b'"' && (0..hashes).all(|k| b.get(j + 1 + k) == Some(&b'#')) {
                    j += 1 + hashes;
                    break;
                }
                j += 1;
            }
            i = j;
            out.push(' ');
        } else if c == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                if b[i] == b'\\' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            out.push(' ');
        } else if c == b'\'' {
            // a char literal ('x', '\n', '\''), not a lifetime ('a)
            let close = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&x| x == b'\'')
                    .map(|p| i + 2 + p)
            } else if b.get(i + 2) == Some(&b'\'') {
                Some(i + 2)
            } else {
                None
            };
            match close {
                Some(j) => {
                    i = j + 1;
                    out.push(' ');
                }
                None => {
                    out.push('\'');
                    i += 1;
                }
            }
        } else {
            out.push(c as char);
            i += 1;
        }
    }
    out
}

fn ident_at(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The first path segments after a prefix: `a::…` → [a]; `{a, b::c, self}` → [a, b].
fn first_segments(rest: &str) -> Vec<String> {
    let rest = rest.trim_start();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut depth = 0;
        let mut out = Vec::new();
        let mut at_item = true;
        for (k, ch) in inner.char_indices() {
            match ch {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => at_item = true,
                c if at_item && !c.is_whitespace() => {
                    at_item = false;
                    if depth == 0 {
                        let id = ident_at(&inner[k..]);
                        if !id.is_empty() && id != "self" {
                            out.push(id.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        out
    } else {
        let id = ident_at(rest);
        if id.is_empty() {
            vec![]
        } else {
            vec![id.to_string()]
        }
    }
}

/// Every module path a file's code names: `crate::a::b` → [a, b] (as far as a module
/// file of that name exists), `super::x` resolved from the file's own module.
fn references(module: &[String], code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for (i, _) in code.match_indices("crate::") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue;
        }
        let mut path = Vec::new();
        let mut rest = &code[i + "crate::".len()..];
        loop {
            let id = ident_at(rest);
            if id.is_empty() {
                for seg in first_segments(rest) {
                    let mut p = path.clone();
                    p.push(seg);
                    out.push(p);
                }
                break;
            }
            path.push(id.to_string());
            rest = &rest[id.len()..];
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => {
                    out.push(path);
                    break;
                }
            }
        }
    }
    // `super` is the parent module, for `x.rs` and `x/mod.rs` alike.
    let base: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
    for (i, _) in code.match_indices("super::") {
        if i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_') {
            continue;
        }
        let rest = &code[i + "super::".len()..];
        if rest.starts_with("super::") {
            continue; // counted from the inner `super::`'s own match, one level up
        }
        for seg in first_segments(rest) {
            let mut p = base.clone();
            p.push(seg);
            out.push(p);
        }
    }
    out
}

struct Src {
    /// module path → file (relative to the crate root)
    files: BTreeMap<Vec<String>, PathBuf>,
    /// module path → referenced module paths (resolved to a module that has a file)
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn read_src() -> Src {
    let root = root();
    let mut paths = Vec::new();
    rust_files(&root.join("src"), &mut paths);
    let mut files = BTreeMap::new();
    let mut texts = Vec::new();
    for p in paths {
        let rel = p.strip_prefix(&root).unwrap().to_path_buf();
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        if name == "main.rs" || name == "tests.rs" || name == "testing.rs" {
            continue;
        }
        let module = module_of(&rel);
        texts.push((module.clone(), std::fs::read_to_string(&p).unwrap()));
        files.insert(module, rel);
    }
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for (module, text) in texts {
        let code = code_of(&text);
        let set = edges.entry(module.clone()).or_default();
        for mut r in references(&module, &code) {
            // the longest prefix that is a module with a file of its own
            while !r.is_empty() && !files.contains_key(&r) {
                r.pop();
            }
            if r.is_empty() || r == module {
                continue;
            }
            // a parent naming its own descendants: the module tree, not an import
            if r.len() > module.len() && r[..module.len()] == module[..] {
                continue;
            }
            set.insert(r);
        }
    }
    Src { files, edges }
}

#[test]
fn layers_import_only_downwards() {
    let src = read_src();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut wrong = Vec::new();
    for (module, targets) in &src.edges {
        let Some(top) = module.first() else { continue };
        let Some(may) = allowed.get(top.as_str()) else {
            wrong.push(format!(
                "{}: top-level module `{top}` is not in the layer table of tests/architecture.rs",
                src.files[module].display()
            ));
            continue;
        };
        for t in targets {
            let to = &t[0];
            if to != top && !may.contains(&to.as_str()) {
                wrong.push(format!(
                    "{} imports crate::{} (layer `{top}` may import only {:?})",
                    src.files[module].display(),
                    t.join("::"),
                    may
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "layering broken:\n{}", wrong.join("\n"));
}

#[test]
fn no_import_circle_between_files() {
    let src = read_src();
    // Tarjan's strongly connected components over the file graph.
    let nodes: Vec<&Vec<String>> = src.files.keys().collect();
    let index_of: BTreeMap<&Vec<String>, usize> =
        nodes.iter().enumerate().map(|(i, n)| (*n, i)).collect();
    let adj: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            src.edges
                .get(*n)
                .map(|s| s.iter().filter_map(|t| index_of.get(t).copied()).collect())
                .unwrap_or_default()
        })
        .collect();
    struct T<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        sccs: Vec<Vec<usize>>,
    }
    fn visit(t: &mut T, v: usize) {
        t.index[v] = Some(t.next);
        t.low[v] = t.next;
        t.next += 1;
        t.stack.push(v);
        t.on[v] = true;
        for &w in &t.adj[v].clone() {
            match t.index[w] {
                None => {
                    visit(t, w);
                    t.low[v] = t.low[v].min(t.low[w]);
                }
                Some(iw) if t.on[w] => t.low[v] = t.low[v].min(iw),
                _ => {}
            }
        }
        if Some(t.low[v]) == t.index[v] {
            let mut comp = Vec::new();
            loop {
                let w = t.stack.pop().unwrap();
                t.on[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                t.sccs.push(comp);
            }
        }
    }
    let n = nodes.len();
    let mut t = T {
        adj: &adj,
        index: vec![None; n],
        low: vec![0; n],
        on: vec![false; n],
        stack: vec![],
        next: 0,
        sccs: vec![],
    };
    for v in 0..n {
        if t.index[v].is_none() {
            visit(&mut t, v);
        }
    }
    let circles: Vec<String> = t
        .sccs
        .iter()
        .map(|c| {
            let mut names: Vec<String> = c
                .iter()
                .map(|&i| src.files[nodes[i]].display().to_string())
                .collect();
            names.sort();
            names.join(" ↔ ")
        })
        .collect();
    assert!(
        circles.is_empty(),
        "import circles between files of src/:\n{}",
        circles.join("\n")
    );
}

/// The checker itself: it sees `use` groups, inline paths and `super`, and not what
/// comments or strings say.
#[test]
fn the_checker_reads_use_groups_paths_and_super() {
    let code = code_of(
        "use crate::plan::{diff::Cx, order};\n// use crate::cli::X;\nlet s = \"crate::server\";\n\
         fn f() { crate::config::render(); }\nuse super::{draft::Draft, Action};\n",
    );
    let refs = references(&["plan".into(), "safety".into()], &code);
    let names: BTreeSet<String> = refs.iter().map(|r| r.join("::")).collect();
    for want in [
        "plan::diff",
        "plan::order",
        "config::render",
        "plan::draft",
        "plan::Action",
    ] {
        assert!(names.contains(want), "missing {want} in {names:?}");
    }
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("cli") || n.starts_with("server"))
    );
}

#[test]
fn architecture_doc_names_only_paths_that_exist() {
    let root = root();
    let doc = std::fs::read_to_string(root.join("docs/architecture.md")).unwrap();
    let mut missing = Vec::new();
    let mut seen = 0;
    for (i, chunk) in doc.split('`').enumerate() {
        // odd chunks are inside backticks
        if i % 2 == 0 {
            continue;
        }
        let p = chunk.trim().trim_end_matches('/');
        let rooted = [
            "src/",
            "tests/",
            "docs/",
            "schemas/",
            "examples/",
            ".ci/",
            "benches/",
            "migrations/",
        ]
        .iter()
        .any(|r| p.starts_with(r) || p == r.trim_end_matches('/'));
        let file_like = [".rs", ".md", ".toml", ".json", ".yaml", ".sql"]
            .iter()
            .any(|e| p.ends_with(e))
            && !p.contains(' ')
            && !p.contains('*');
        if !(rooted || file_like) || p.contains(' ') || p.contains('*') || p.contains('<') {
            continue;
        }
        seen += 1;
        if !root.join(p).exists() {
            missing.push(p.to_string());
        }
    }
    assert!(seen > 20, "docs/architecture.md names only {seen} paths");
    assert!(
        missing.is_empty(),
        "docs/architecture.md names paths that do not exist: {missing:?}"
    );
}
