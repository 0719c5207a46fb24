//! Files → one merged, validated [`Desired`].
//!
//! Per file, in parallel (rayon): read (size and UTF-8 limits), then first try the fast
//! path ([`super::fast`]: events straight into a typed [`Declaration`], for files with no
//! problem); otherwise parse the YAML events into a `serde_json::Value`
//! ([`super::yaml`]), check it against the JSON Schema ([`super::schema`]) for precise
//! diagnostics, deserialize what is usable into a typed [`Declaration`], and drop the
//! tree.
//! Then, in file order: merge the declarations (an object declared twice is an error),
//! flatten nested teams into paths, lower-case logins, run the rules
//! ([`super::rules`]) and fill default usernames (`model::usernames`).
//!
//! [`load`] reads as those steps: [`expand`] the paths into files, [`parse_and_merge`]
//! (parsing on the rayon pool through [`super::parallel::ordered_map`] while this thread
//! merges in file order), [`check_rules`], then [`resolve`] the problems' positions.
//!
//! With a parse cache ([`super::cache`], [`LoadOptions::cache_dir`]), a file whose text
//! has an entry is taken from it instead of being parsed, and a file that comes out of
//! the per-file stage without any problem is stored; the merge, the rules and
//! [`resolve`] (which re-reads files from disk) do not depend on where a file came from.
//!
//! Nothing on this path keeps a span per node: each object remembers only its file and
//! JSON pointer ([`Origin`]). Problems are collected as [`Pending`]s and positioned at the
//! end, re-reading only the files that have problems ([`resolve`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rayon::prelude::*;
use serde_json::Value;

use crate::model::rules::{RuleCode, shape_violation};
use crate::model::shape::Shape;
use crate::model::usernames;
use crate::model::{Declaration, Desired, Kind, ObjectId, Org, Origin, Policy, Team, TeamDecl};

use super::cache::{self, Cache};
use super::diagnostic::{self, Diagnostic, Severity};
use super::rules::{self, At, Finding, Rel};
use super::schema::{self, Anchor};
use super::yaml::{self, Target};
use super::{Diagnostics, LoadOptions, Loaded, MAX_FILE_BYTES};

/// Where a pending diagnostic points, before its line:column is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Place {
    /// Already known (parse errors).
    Pos(yaml::Pos),
    /// A JSON pointer in the file.
    Pointer(String, Anchor),
    /// An element of the list at a pointer, by its text.
    Item(String, String),
}

/// A diagnostic waiting for its position.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub severity: Severity,
    pub rule: RuleCode,
    pub file: PathBuf,
    pub place: Place,
    pub message: String,
    pub help: String,
    pub object: Option<ObjectId>,
    /// The other place of a two-place problem; `{other}` in the message names it. The
    /// problem is reported at the later of the two.
    pub related: Option<(PathBuf, Place, Option<ObjectId>)>,
    /// Raised by the schema (or the parser), not by a rule: rule findings that repeat a
    /// schema problem at the same place are dropped.
    pub from_schema: bool,
}

/// What one file produced.
struct FileResult {
    file: PathBuf,
    decl: Option<Declaration>,
    /// Pointers of the objects that write `protect: false` explicitly.
    unprotect: Vec<String>,
    sections: BTreeSet<Kind>,
    pending: Vec<Pending>,
}

fn file_problem(
    file: &Path,
    rule: RuleCode,
    pos: yaml::Pos,
    message: String,
    help: &str,
) -> Pending {
    Pending {
        severity: Severity::Error,
        rule,
        file: file.to_owned(),
        place: Place::Pos(pos),
        message,
        help: help.to_owned(),
        object: None,
        related: None,
        from_schema: true,
    }
}

/// The files `load` reads for `paths`, in its order (what cannot be listed is left out:
/// `load` reports it).
pub(crate) fn files(paths: &[PathBuf]) -> Vec<PathBuf> {
    expand(paths, &mut Vec::new())
}

/// Expands the given paths into files: a file as is, a directory into every `*.yaml` and
/// `*.yml` below it (hidden entries skipped) in sorted order. Repeated files count once.
fn expand(paths: &[PathBuf], pending: &mut Vec<Pending>) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Err(e) => pending.push(file_problem(
                p,
                RuleCode::Unreadable,
                (1, 1),
                format!("cannot read `{}`: {}", p.display(), io_reason(&e)),
                "check the path; give files or directories of *.yaml declarations",
            )),
            Ok(m) if m.is_dir() => {
                let mut found = Vec::new();
                if let Err(e) = walk(p, &mut found) {
                    pending.push(file_problem(
                        p,
                        RuleCode::Unreadable,
                        (1, 1),
                        format!("cannot list directory `{}`: {}", p.display(), io_reason(&e)),
                        "check the directory's permissions",
                    ));
                }
                found.sort();
                if found.is_empty() {
                    pending.push(file_problem(
                        p,
                        RuleCode::Unreadable,
                        (1, 1),
                        format!("directory `{}` holds no *.yaml or *.yml file", p.display()),
                        "point roster at the directory that holds the declarations",
                    ));
                }
                files.extend(found);
            }
            Ok(_) => files.push(p.clone()),
        }
    }
    let mut seen = BTreeSet::new();
    files.retain(|f| seen.insert(f.clone()));
    files
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string().to_lowercase(),
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        let meta = std::fs::metadata(&path)?;
        if meta.is_dir() {
            walk(&path, out)?;
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Line and column (1-based, in characters) of a byte offset.
fn pos_of_byte(bytes: &[u8], offset: usize) -> yaml::Pos {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    let col = String::from_utf8_lossy(&before[line_start..])
        .chars()
        .count()
        + 1;
    (line, col)
}

/// Reads one file's text, within the limits.
pub(crate) fn read_text(file: &Path) -> Result<String, Box<Pending>> {
    let unreadable = |e: std::io::Error| {
        Box::new(file_problem(
            file,
            RuleCode::Unreadable,
            (1, 1),
            format!("cannot read `{}`: {}", file.display(), io_reason(&e)),
            "check the path and its permissions",
        ))
    };
    let meta = std::fs::metadata(file).map_err(unreadable)?;
    if meta.len() > MAX_FILE_BYTES as u64 {
        return Err(Box::new(file_problem(
            file,
            RuleCode::InputLimit,
            (1, 1),
            format!(
                "the file is {} MiB, over the {} MiB limit",
                meta.len() >> 20,
                MAX_FILE_BYTES >> 20
            ),
            "split the declaration into several files in one directory",
        )));
    }
    let bytes = std::fs::read(file).map_err(unreadable)?;
    match String::from_utf8(bytes) {
        Ok(mut s) => {
            if s.starts_with('\u{feff}') {
                s.drain(..3);
            }
            Ok(s)
        }
        Err(e) => {
            let at = e.utf8_error().valid_up_to();
            Err(Box::new(file_problem(
                file,
                RuleCode::InputLimit,
                pos_of_byte(e.as_bytes(), at),
                "the file is not UTF-8 text".into(),
                "save the file as UTF-8",
            )))
        }
    }
}

/// One file through the per-file stage, or out of the parse cache when its text has an
/// entry there; a file that comes out without any diagnostic is stored for next time.
fn load_file(file: &Path, cache: Option<&Cache>) -> FileResult {
    let text = match read_text(file) {
        Ok(t) => t,
        Err(p) => {
            return FileResult {
                file: file.to_owned(),
                decl: None,
                unprotect: Vec::new(),
                sections: BTreeSet::new(),
                pending: vec![*p],
            };
        }
    };
    let Some(cache) = cache else {
        return parse_file(file, text);
    };
    let key = cache::key(&text);
    if let Some(e) = cache.get(&key) {
        return FileResult {
            file: file.to_owned(),
            decl: Some(e.decl),
            unprotect: e.unprotect,
            sections: e.sections,
            pending: Vec::new(),
        };
    }
    let r = parse_file(file, text);
    if let (Some(decl), true) = (&r.decl, r.pending.is_empty()) {
        cache.put(&key, decl, &r.unprotect, &r.sections);
    }
    r
}

/// Which way files are typed: both (the fast path, and the tree for a file it declines),
/// or, for the tests that compare the two (`tests/e2e/differential.rs`), one only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LoadPath {
    Both,
    /// Every file through the tree and the JSON Schema.
    Tree,
    /// The fast path only: a file it declines is an error.
    Fast,
}

/// `ROSTER_LOAD_PATH` (`tree` or `fast`; a hidden setting for tests, see README), read
/// once.
fn load_path() -> LoadPath {
    static P: std::sync::OnceLock<LoadPath> = std::sync::OnceLock::new();
    *P.get_or_init(|| match std::env::var("ROSTER_LOAD_PATH").as_deref() {
        Ok("tree") => LoadPath::Tree,
        Ok("fast") => LoadPath::Fast,
        _ => LoadPath::Both,
    })
}

/// The per-file stage: a file's text → its typed, normalized declaration and the
/// problems found in it.
fn parse_file(file: &Path, text: String) -> FileResult {
    let mut r = FileResult {
        file: file.to_owned(),
        decl: None,
        unprotect: Vec::new(),
        sections: BTreeSet::new(),
        pending: Vec::new(),
    };
    // The fast path types the file straight from the parser's events, which cannot tell an
    // explicit `protect: false` (lifting a live protection) from an omitted one: files
    // that mention `protect` take the path through the tree.
    let path = load_path();
    let fast = if text.contains("protect") || path == LoadPath::Tree {
        None
    } else {
        super::fast::declaration(&text)
    };
    if fast.is_none() && path == LoadPath::Fast {
        r.pending.push(file_problem(
            file,
            RuleCode::Schema,
            (1, 1),
            "the fast path declines this file (ROSTER_LOAD_PATH=fast)".into(),
            "unset ROSTER_LOAD_PATH, a setting for tests",
        ));
        return r;
    }
    if let Some((mut decl, sections)) = fast {
        normalize(&mut decl);
        r.decl = Some(decl);
        r.sections = sections;
        return r;
    }
    let value = match yaml::parse(&text) {
        Err(p) => {
            let related = p.first.as_ref().map(|ptr| {
                (
                    file.to_owned(),
                    Place::Pointer(ptr.clone(), Anchor::Key),
                    None,
                )
            });
            let message = if related.is_some() {
                format!("{} (the first is at {{other}})", p.message)
            } else {
                p.message
            };
            r.pending.push(Pending {
                related,
                ..file_problem(file, p.rule, p.pos, message, &p.help)
            });
            return r;
        }
        Ok(None) => {
            r.pending.push(file_problem(
                file,
                RuleCode::EmptyFile,
                (1, 1),
                "the file declares nothing (it is empty or holds only comments)".into(),
                "add sections such as `representatives:`, or delete the file",
            ));
            return r;
        }
        Ok(Some(v)) => v,
    };
    drop(text);
    let Value::Object(map) = &value else {
        r.pending.push(Pending {
            place: Place::Pointer(String::new(), Anchor::Value),
            ..file_problem(
                file,
                RuleCode::Schema,
                (1, 1),
                "a declaration file must be a mapping of sections".into(),
                "start with a section such as `representatives:` or `teams:`",
            )
        });
        return r;
    };
    r.sections = map.keys().filter_map(|k| Kind::from_name(k)).collect();
    let problems = schema::check(&value);
    let had_problems = !problems.is_empty();
    let mut value = value;
    if had_problems {
        repair(&mut value, &problems);
    }
    for p in problems {
        r.pending.push(Pending {
            severity: Severity::Error,
            rule: p.rule,
            file: file.to_owned(),
            place: Place::Pointer(p.pointer, p.anchor),
            message: p.message,
            help: p.help,
            object: None,
            related: None,
            from_schema: true,
        });
    }
    explicit_unprotect(&value, &mut r.unprotect);
    match serde_json::from_value::<Declaration>(value) {
        Ok(mut d) => {
            normalize(&mut d);
            r.decl = Some(d);
        }
        Err(_) if had_problems => {}
        Err(e) => r.pending.push(Pending {
            place: Place::Pointer(String::new(), Anchor::Value),
            ..file_problem(
                file,
                RuleCode::Schema,
                (1, 1),
                // serde's text may quote values (a password): keep only its category.
                format!(
                    "the file does not match the declaration format ({:?} error)",
                    e.classify()
                ),
                "compare the file with `roster schema`",
            )
        }),
    }
    r
}

/// The pointers (`/representatives/3`, `/teams/0/teams/1`) of the objects that write
/// `protect: false` explicitly: the model's `protect: bool` cannot tell that from an
/// omitted `protect`, and only the explicit form lifts a live protection.
fn explicit_unprotect(value: &Value, out: &mut Vec<String>) {
    fn walk(items: Option<&Value>, base: String, teams: bool, out: &mut Vec<String>) {
        let Some(Value::Array(items)) = items else {
            return;
        };
        for (i, item) in items.iter().enumerate() {
            let pointer = format!("{base}/{i}");
            if item.get("protect") == Some(&Value::Bool(false)) {
                out.push(pointer.clone());
            }
            if teams {
                walk(item.get("teams"), format!("{pointer}/teams"), true, out);
            }
        }
    }
    for kind in Kind::ALL {
        let section = kind.section();
        walk(
            value.get(section),
            format!("/{section}"),
            kind == Kind::Team,
            out,
        );
    }
}

/// Removes what the schema rejected, where that is safe, so the rest of the file still
/// takes part in the cross-object rules (all problems in one run): unknown keys, values
/// of the wrong type or out of their enumeration (from mappings, and from lists of
/// scalars). Lists of objects are never shortened, so object pointers stay valid; when
/// the repaired file still does not deserialize, its objects are left out.
fn repair(value: &mut Value, problems: &[schema::SchemaProblem]) {
    let mut pointers: Vec<&str> = problems
        .iter()
        .filter(|p| p.removable)
        .map(|p| p.pointer.as_str())
        .filter(|p| !p.is_empty())
        .collect();
    // Deepest and highest index first, so removals do not shift pending ones.
    pointers.sort_by(|a, b| b.cmp(a));
    pointers.dedup();
    for p in pointers {
        let Some((parent, last)) = p.rsplit_once('/') else {
            continue;
        };
        let last = last.replace("~1", "/").replace("~0", "~");
        match value.pointer_mut(parent) {
            Some(Value::Object(m)) => {
                m.shift_remove(&last);
            }
            Some(Value::Array(items)) => {
                if let Ok(i) = last.parse::<usize>() {
                    if i < items.len() && !items[i].is_object() {
                        items.remove(i);
                    }
                }
            }
            _ => {}
        }
    }
}

/// Lower-cases every login and login reference (logins ignore case), per file and in
/// parallel, before the sequential merge.
fn normalize(d: &mut Declaration) {
    /// Lower-cases in place, allocating only when the text has something to lower.
    fn lower(s: &mut String) {
        if !s.is_ascii() {
            *s = s.to_lowercase();
        } else if s.bytes().any(|b| b.is_ascii_uppercase()) {
            s.make_ascii_lowercase();
        }
    }
    fn teams(ts: &mut [TeamDecl]) {
        for t in ts {
            if let Some(l) = &mut t.leader {
                lower(l);
            }
            teams(&mut t.teams);
        }
    }
    teams(&mut d.teams);
    for a in &mut d.administrators {
        lower(&mut a.login);
        a.previously.iter_mut().for_each(lower);
    }
    for m in &mut d.managers {
        lower(&mut m.login);
        m.previously.iter_mut().for_each(lower);
    }
    for r in &mut d.representatives {
        lower(&mut r.login);
        r.previously.iter_mut().for_each(lower);
    }
    for c in &mut d.campaigns {
        c.representatives = std::mem::take(&mut c.representatives)
            .into_iter()
            .map(|l| l.to_lowercase())
            .collect();
    }
}

/// The merged declaration being built, in file order.
struct Merge {
    org: Org,
    policy: Option<(Policy, PathBuf)>,
    account: Option<crate::model::AccountDecl>,
    sections: BTreeSet<Kind>,
    origins: BTreeMap<ObjectId, Origin>,
    pending: Vec<Pending>,
    /// `contact_group_shares` of every file, logins lower-cased, one per login, each
    /// with its file and index (where an unknown login is reported).
    share_all: Vec<(crate::model::ContactGroupShare, PathBuf, usize)>,
    /// The representatives of every file in file order, built into `org`'s map once
    /// at the end: the map then has full nodes (see `model::full_map`), and is never the
    /// half-empty map that inserting 100,000 of them in order would leave.
    representatives: Vec<(String, crate::model::Representative)>,
}

impl Merge {
    /// Declares the objects of a flat section in order (`/{section}/{i}`, keyed by the
    /// kind's key field); returns those not declared before, with their keys.
    fn declare_each<T>(
        &mut self,
        file: &Path,
        kind: Kind,
        items: Vec<T>,
        key: impl Fn(&T) -> &String,
    ) -> Vec<(String, T)> {
        let mut kept = Vec::with_capacity(items.len());
        for (i, item) in items.into_iter().enumerate() {
            let id = ObjectId::new(kind, key(&item));
            let pointer = format!("/{}/{i}", kind.section());
            if self.declare(id, file, pointer, kind.key_field()) {
                kept.push((key(&item).clone(), item));
            }
        }
        kept
    }

    /// Records an object's origin; a second declaration of the same id is an error.
    fn declare(&mut self, id: ObjectId, file: &Path, pointer: String, key_field: &str) -> bool {
        let first = match self.origins.entry(id) {
            std::collections::btree_map::Entry::Vacant(v) => {
                v.insert(Origin {
                    file: file.to_owned(),
                    pointer,
                });
                return true;
            }
            std::collections::btree_map::Entry::Occupied(o) => o,
        };
        let id = first.key().clone();
        let first = first.get();
        {
            let what = id.kind.name();
            self.pending.push(Pending {
                severity: Severity::Error,
                rule: RuleCode::Duplicate,
                file: file.to_owned(),
                place: Place::Pointer(format!("{pointer}/{key_field}"), Anchor::Value),
                message: format!(
                    "{what} `{}` is declared twice (the other is at {{other}})",
                    id.key
                ),
                help: format!(
                    "keep one declaration of this {what} (logins and names are unique per kind, \
                     ignoring case for logins)"
                ),
                object: Some(id.clone()),
                related: Some((
                    first.file.clone(),
                    Place::Pointer(format!("{}/{key_field}", first.pointer), Anchor::Value),
                    Some(id.clone()),
                )),
                from_schema: false,
            });
        }
        false
    }

    fn problem(
        &mut self,
        file: &Path,
        pointer: String,
        rule: RuleCode,
        message: String,
        help: &str,
    ) {
        self.pending.push(Pending {
            place: Place::Pointer(pointer, Anchor::Value),
            from_schema: false,
            ..file_problem(file, rule, (1, 1), message, help)
        });
    }

    fn add_teams(&mut self, file: &Path, teams: Vec<TeamDecl>, parent: Option<&str>, base: &str) {
        for (i, t) in teams.into_iter().enumerate() {
            let pointer = format!("{base}/teams/{i}");
            if let Some(v) = shape_violation("name", Shape::TeamName, &t.name) {
                self.problem(
                    file,
                    format!("{pointer}{}", v.pointer),
                    v.rule,
                    format!("team {}", v.message),
                    &v.help,
                );
                continue;
            }
            let path = match parent {
                Some(p) => format!("{p}/{}", t.name),
                None => t.name.clone(),
            };
            if self.declare(
                ObjectId::new(Kind::Team, &path),
                file,
                pointer.clone(),
                "name",
            ) {
                self.org.teams.insert(
                    path.clone(),
                    Team {
                        path: path.clone(),
                        description: t.description,
                        max_active_logins: t.max_active_logins,
                        leader: t.leader,
                        active: t.active,
                        protect: t.protect,
                        previously: t.previously,
                    },
                );
            }
            self.add_teams(file, t.teams, Some(&path), &pointer);
        }
    }

    fn add(&mut self, file: &Path, d: Declaration) {
        if let Some(p) = d.policy {
            match &self.policy {
                Some((_, first)) => self.pending.push(Pending {
                    severity: Severity::Error,
                    rule: RuleCode::Duplicate,
                    file: file.to_owned(),
                    place: Place::Pointer("/policy".into(), Anchor::Key),
                    message: "the `policy` section is declared twice (the other is at {other})"
                        .into(),
                    help: "keep one `policy` section and merge the two".into(),
                    object: None,
                    related: Some((
                        first.clone(),
                        Place::Pointer("/policy".into(), Anchor::Key),
                        None,
                    )),
                    from_schema: false,
                }),
                None => self.policy = Some((p, file.to_owned())),
            }
        }
        if let Some(a) = d.account
            && self.declare(crate::model::account_id(), file, "/account".into(), "name")
        {
            self.account = Some(a);
        }
        let portals = self.declare_each(file, Kind::Portal, d.portals, |x| &x.name);
        self.org.portals.extend(portals);
        self.add_teams(file, d.teams, None, "");
        let administrators =
            self.declare_each(file, Kind::Administrator, d.administrators, |x| &x.login);
        self.org.administrators.extend(administrators);
        let managers = self.declare_each(file, Kind::Manager, d.managers, |x| &x.login);
        self.org.managers.extend(managers);
        let representatives =
            self.declare_each(file, Kind::Representative, d.representatives, |x| &x.login);
        self.representatives.extend(representatives);
        let campaigns = self.declare_each(file, Kind::Campaign, d.campaigns, |x| &x.name);
        self.org.campaigns.extend(campaigns);
        for (i, mut g) in d.contact_groups.into_iter().enumerate() {
            let pointer = format!("/contact_groups/{i}");
            let n = g.shared_with.len();
            g.shared_with = g
                .shared_with
                .into_iter()
                .map(|(l, p)| (l.to_lowercase(), p))
                .collect();
            if g.shared_with.len() != n {
                self.problem(
                    file,
                    format!("{pointer}/shared_with"),
                    RuleCode::Duplicate,
                    "`shared_with` names the same login twice (logins ignore case)".into(),
                    "keep one entry per login",
                );
            }
            let id = ObjectId::new(Kind::ContactGroup, &g.name);
            if self.declare(id, file, pointer, "name") {
                self.org.contact_groups.insert(g.name.clone(), g);
            }
        }
        for (i, mut share) in d.contact_group_shares.into_iter().enumerate() {
            share.login = share.login.to_lowercase();
            if self
                .share_all
                .iter()
                .any(|(s, _, _)| s.login == share.login)
            {
                self.problem(
                    file,
                    format!("/contact_group_shares/{i}/login"),
                    RuleCode::Duplicate,
                    format!(
                        "`contact_group_shares` names `{}` twice (logins ignore case)",
                        share.login
                    ),
                    "keep one entry per login",
                );
            } else {
                self.share_all.push((share, file.to_owned(), i));
            }
        }
    }
}

fn rel_place(base: &str, rel: Rel) -> Place {
    match rel {
        Rel::Pointer(p, a) => Place::Pointer(format!("{base}{p}"), a),
        Rel::Item(p, v) => Place::Item(format!("{base}{p}"), v),
    }
}

/// Turns a rule finding into a pending diagnostic through the origins.
pub(crate) fn finding_to_pending(
    f: Finding,
    origins: &BTreeMap<ObjectId, Origin>,
) -> Option<Pending> {
    let at = |at: At| -> Option<(PathBuf, Place, Option<ObjectId>)> {
        match at {
            At::Object(id, rel) => {
                let o = origins.get(&id)?;
                Some((o.file.clone(), rel_place(&o.pointer, rel), Some(id)))
            }
            At::File(file, rel) => Some((file, rel_place("", rel), None)),
        }
    };
    let (file, place, object) = at(f.at)?;
    Some(Pending {
        severity: f.severity,
        rule: f.rule,
        file,
        place,
        message: f.message,
        help: f.help,
        object,
        related: f.related.and_then(at),
        from_schema: false,
    })
}

/// Loads, merges and checks. See [`super::load_with`].
pub(crate) fn load(paths: &[PathBuf], options: &LoadOptions) -> Result<Loaded, Diagnostics> {
    load_counted(paths, options).0
}

/// [`load`], and how it used the parse cache (`None` without one).
pub(crate) fn load_counted(
    paths: &[PathBuf],
    options: &LoadOptions,
) -> (Result<Loaded, Diagnostics>, Option<cache::CacheStats>) {
    let mut pending = Vec::new();
    let files = expand(paths, &mut pending);
    let started = std::time::Instant::now();
    let cache = options.cache_dir.clone().map(Cache::new);
    let merged = parse_and_merge(&files, pending, cache.as_ref());
    tracing::debug!(elapsed = ?started.elapsed(), files = files.len(), "config: files read and merged");
    if let Some(cache) = &cache {
        cache.trim();
        let s = cache.stats();
        tracing::info!(
            files = files.len(),
            hits = s.hits,
            parsed = s.misses,
            rejected = s.rejected,
            written = s.written,
            evicted = s.evicted,
            "parse cache: {} of {} files from the cache",
            s.hits,
            files.len()
        );
    }
    let (desired, pending) = check_rules(merged, started);
    let diags = resolve(pending);
    let result = if diags.iter().any(Diagnostic::is_error) {
        Err(Diagnostics(diags))
    } else {
        Ok(Loaded {
            desired,
            warnings: diags,
        })
    };
    (result, cache.map(|c| c.stats()))
}

/// The files merged in file order, and what the rules need to know about them.
struct Merged {
    merge: Merge,
    /// Whether every file gave a declaration (the cross-object rules that need the whole
    /// declaration stay quiet otherwise).
    complete: bool,
    /// Per file, the pointers of the objects that write `protect: false`.
    unprotect_at: HashMap<PathBuf, HashSet<String>>,
}

/// Parses every file in parallel and merges the results in file order as they arrive.
fn parse_and_merge(files: &[PathBuf], pending: Vec<Pending>, cache: Option<&Cache>) -> Merged {
    let mut merged = Merged {
        merge: Merge {
            org: Org::default(),
            policy: None,
            account: None,
            sections: BTreeSet::new(),
            origins: BTreeMap::new(),
            pending,
            share_all: Vec::new(),
            representatives: Vec::new(),
        },
        complete: true,
        unprotect_at: HashMap::new(),
    };
    super::parallel::ordered_map(
        files,
        |f| load_file(f, cache),
        |r| {
            if !r.unprotect.is_empty() {
                merged
                    .unprotect_at
                    .entry(r.file.clone())
                    .or_default()
                    .extend(r.unprotect);
            }
            merged.merge.pending.extend(r.pending);
            merged.merge.sections.extend(r.sections);
            match r.decl {
                Some(d) => merged.merge.add(&r.file, d),
                None => merged.complete = false,
            }
        },
    );
    merged
}

/// Runs the rules over the merged declaration and fills default user names; returns the
/// [`Desired`] and every problem still to be positioned.
fn check_rules(merged: Merged, started: std::time::Instant) -> (Desired, Vec<Pending>) {
    let Merged {
        merge:
            Merge {
                mut org,
                policy,
                account,
                sections,
                origins,
                mut pending,
                share_all,
                representatives,
            },
        complete,
        unprotect_at,
    } = merged;
    org.representatives = representatives.into_iter().collect();
    let (policy, policy_file) = match policy {
        Some((p, f)) => (p, Some(f)),
        None => (Policy::default(), None),
    };
    // A share naming an undeclared login is reported at its own entry, once, and not
    // expanded (else every group would report it).
    let (shares, unknown) = rules::share_all_rules(&org, share_all, complete);
    for f in unknown {
        pending.extend(finding_to_pending(f, &origins));
    }
    let shared_with_all = crate::model::share_with_every_group(&mut org.contact_groups, &shares);
    // The default user names only read the names: folded while the rules run.
    let (findings, bases) = rayon::join(
        || rules::check(&org, &policy, policy_file.as_ref(), complete),
        || usernames::username_bases(&org.representatives),
    );
    for f in findings {
        pending.extend(finding_to_pending(f, &origins));
    }
    tracing::debug!(elapsed = ?started.elapsed(), "config: rules checked");
    let declared_usernames = org
        .representatives
        .keys()
        .zip(&bases)
        .filter(|(_, base)| base.is_none())
        .map(|(login, _)| login.clone())
        .collect();
    usernames::assign_usernames_from(&mut org.representatives, bases);
    tracing::debug!(elapsed = ?started.elapsed(), "config: usernames assigned");
    let unprotect = origins
        .iter()
        .filter(|(_, o)| {
            unprotect_at
                .get(&o.file)
                .is_some_and(|set| set.contains(&o.pointer))
        })
        .map(|(id, _)| id.clone())
        .collect();
    let desired = Desired {
        org,
        policy,
        sections,
        origins,
        unprotect,
        declared_usernames,
        account,
        shared_with_all,
    };
    (desired, pending)
}

/// Positions pending diagnostics: re-reads each concerned file once, finds every pointer,
/// reports two-place problems at the later place, drops rule findings that repeat a
/// schema problem at the same place, and sorts.
pub(crate) fn resolve(pending: Vec<Pending>) -> Vec<Diagnostic> {
    // Targets per file.
    let mut targets: HashMap<PathBuf, Vec<Target>> = HashMap::new();
    let mut add = |file: &Path, place: &Place| {
        let t = match place {
            Place::Pos(_) => return,
            Place::Pointer(p, _) => Target::Pointer(p.clone()),
            Place::Item(p, v) => Target::Item(p.clone(), v.clone()),
        };
        targets.entry(file.to_owned()).or_default().push(t);
    };
    for p in &pending {
        add(&p.file, &p.place);
        if let Some((f, place, _)) = &p.related {
            add(f, place);
        }
    }
    let located: HashMap<PathBuf, yaml::Located> = targets
        .into_par_iter()
        .map(|(file, t)| {
            let found = match read_text(&file) {
                Ok(text) => yaml::locate_many(&text, &t, false),
                Err(_) => yaml::Located::default(),
            };
            (file, found)
        })
        .collect();
    let position = |file: &Path, place: &Place| -> yaml::Pos {
        let (target, anchor) = match place {
            Place::Pos(p) => return *p,
            Place::Pointer(p, a) => (Target::Pointer(p.clone()), *a),
            Place::Item(p, v) => (Target::Item(p.clone(), v.clone()), Anchor::Value),
        };
        located
            .get(file)
            .and_then(|l| l.found.get(&target))
            .map(|np| match anchor {
                Anchor::Key => np.key.unwrap_or(np.value),
                Anchor::Value => np.value,
            })
            .unwrap_or((1, 1))
    };
    let mut diags = Vec::with_capacity(pending.len());
    let mut schema_places: BTreeSet<(PathBuf, yaml::Pos)> = BTreeSet::new();
    let mut rule_diags = Vec::new();
    for p in pending {
        let mut file = p.file;
        let mut pos = position(&file, &p.place);
        let mut object = p.object;
        let mut message = p.message;
        if let Some((rfile, rplace, robject)) = p.related {
            let mut rpos = position(&rfile, &rplace);
            let mut rfile = rfile;
            // Report at the later place, naming the earlier.
            if (&rfile, rpos) > (&file, pos) {
                std::mem::swap(&mut rfile, &mut file);
                std::mem::swap(&mut rpos, &mut pos);
                if robject.is_some() {
                    object = robject;
                }
            }
            message = message.replace(
                "{other}",
                &format!("{}:{}:{}", rfile.display(), rpos.0, rpos.1),
            );
        }
        let d = Diagnostic {
            severity: p.severity,
            rule: p.rule,
            file,
            line: pos.0,
            column: pos.1,
            message,
            help: p.help,
            object,
        };
        if p.from_schema {
            schema_places.insert((d.file.clone(), pos));
            diags.push(d);
        } else {
            rule_diags.push(d);
        }
    }
    // The rules re-check a few things the schema already reports (feature sets, manager
    // logins, ranges): keep the schema's wording when both flag the same place.
    for d in rule_diags {
        let repeats = matches!(
            d.rule,
            RuleCode::FeatureNotAllowed | RuleCode::ManagerLogin | RuleCode::Schema
        ) && schema_places.contains(&(d.file.clone(), (d.line, d.column)));
        if !repeats {
            diags.push(d);
        }
    }
    diagnostic::sort(&mut diags);
    diags
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::config::LoadOptions;
    use crate::generate::{GenerateOptions, generate_to_strings};

    /// One random edit of a file's text: a line deleted, doubled, moved or changed, a
    /// value or a key replaced, a reference broken, an object copied from another file,
    /// or the file back as generated (so that later rounds hit entries written earlier).
    fn edit(rng: &mut StdRng, text: &str, original: &str, other: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        if lines.is_empty() {
            return original.to_owned();
        }
        let i = rng.random_range(0..lines.len());
        match rng.random_range(0..10) {
            0 => {
                lines.remove(i);
            }
            1 => {
                let l = lines[i].clone();
                lines.insert(i, l);
            }
            2 => {
                let l = lines.remove(i);
                let j = rng.random_range(0..=lines.len());
                lines.insert(j, l);
            }
            3 => {
                // A character replaced by one that YAML or the schema may mind.
                let chars: Vec<char> = lines[i].chars().collect();
                if !chars.is_empty() {
                    let at = rng.random_range(0..chars.len());
                    let by = [':', '[', '{', '"', ' ', 'X', '-', '#', '&', '*'];
                    let mut c = chars;
                    c[at] = by[rng.random_range(0..by.len())];
                    lines[i] = c.into_iter().collect();
                }
            }
            4 => {
                // A value changed (still valid most of the time).
                if let Some((k, _)) = lines[i].split_once(": ") {
                    let values = ["fr", "2", "true", "inactive", "Nowhere/Team", "x@y.example"];
                    lines[i] = format!("{k}: {}", values[rng.random_range(0..values.len())]);
                }
            }
            5 => {
                // An unknown key beside a known one.
                if let Some((k, v)) = lines[i].split_once(": ") {
                    lines[i] = format!("{k}x: {v}");
                }
            }
            6 => {
                // A representative copied from another file: duplicates across files.
                let start = other.find("  - login:");
                if let (Some(start), Some(at)) = (
                    start,
                    lines.iter().position(|l| l.starts_with("  - login:")),
                ) {
                    let block: Vec<String> = other[start..]
                        .lines()
                        .enumerate()
                        .take_while(|(n, l)| *n == 0 || l.starts_with("    "))
                        .map(|(_, l)| l.to_owned())
                        .collect();
                    for (n, l) in block.into_iter().enumerate() {
                        lines.insert(at + n, l);
                    }
                }
            }
            7 => lines[i].push_str("  # a comment"),
            _ => return original.to_owned(),
        }
        let mut out = lines.join("\n");
        out.push('\n');
        out
    }

    fn write_all(dir: &Path, files: &[(String, String)]) -> Vec<PathBuf> {
        files
            .iter()
            .map(|(name, text)| {
                let p = dir.join(name);
                std::fs::write(&p, text).unwrap();
                p
            })
            .collect()
    }

    /// Random edits to a generated multi-file declaration: loaded through the parse cache
    /// (shared across rounds, so unchanged and reverted files hit it) and without, the
    /// declaration and every diagnostic (file, line, column, message) are the same.
    #[test]
    fn loading_through_the_cache_gives_what_parsing_gives_under_random_edits() {
        let opts = GenerateOptions {
            representatives: 60,
            teams: 8,
            managers: 4,
            portals: 3,
            seed: 7,
            per_file: 15,
        };
        let original = generate_to_strings(&opts).unwrap();
        assert!(original.len() >= 6, "several files: {}", original.len());
        let dir = tempfile::tempdir().unwrap();
        let decl = dir.path().join("org");
        std::fs::create_dir(&decl).unwrap();
        let cached = LoadOptions {
            cache_dir: Some(dir.path().join("cache")),
        };
        let mut current = original.clone();
        let mut rng = StdRng::seed_from_u64(0x5eed);
        let (mut hits, mut loaded, mut written, mut invalid) = (0, 0, 0, 0);
        for round in 0..200 {
            let f = rng.random_range(0..current.len());
            let other = &original[(f + 1) % original.len()].1;
            // Mostly one edit away from the generated text, sometimes several; every other
            // file goes back as generated every other round, so valid rounds occur too.
            let base = if rng.random_bool(0.6) {
                original[f].1.clone()
            } else {
                current[f].1.clone()
            };
            current[f].1 = edit(&mut rng, &base, &original[f].1, other);
            if rng.random_bool(0.5) {
                for g in (0..current.len()).filter(|g| *g != f) {
                    current[g].1 = original[g].1.clone();
                }
            }
            let paths = write_all(&decl, &current);
            let (with, stats) = super::load_counted(std::slice::from_ref(&decl), &cached);
            let (without, none) =
                super::load_counted(std::slice::from_ref(&decl), &LoadOptions::default());
            assert!(none.is_none());
            let stats = stats.expect("a cache");
            assert_eq!(stats.hits + stats.misses, paths.len(), "round {round}");
            assert_eq!(stats.rejected, 0, "round {round}");
            hits += stats.hits;
            loaded += paths.len();
            written += stats.written;
            invalid += usize::from(without.is_err());
            assert_eq!(
                format!("{with:#?}"),
                format!("{without:#?}"),
                "round {round}: file {} edited",
                current[f].0
            );
        }
        assert!(
            hits * 3 > loaded,
            "unchanged files come from the cache: {hits} of {loaded}"
        );
        eprintln!("hits {hits} of {loaded}, {written} written, {invalid} rounds invalid");
        assert!(
            written > 20,
            "edited files are parsed and stored: {written}"
        );
        assert!(
            (20..180).contains(&invalid),
            "the edits make both valid and invalid declarations: {invalid} invalid"
        );
    }
}
