//! `roster export`: writes the live state as declaration files, one per kind, in the
//! layout of `examples/acme` (`portals.yaml`, `teams.yaml` with nested sub-teams,
//! `administrators.yaml`, `managers.yaml`, `representatives.yaml`, `campaigns.yaml`,
//! `contact_groups.yaml`), `account.yaml` (the account's name and password policy), plus `roster.schema.json` that each file names for editors.
//!
//! Data comes from any [`Provider`]'s [`Observed`] (the connection is `ops::connect`'s,
//! from [`Options`]); the files go to `--out`. `roster plan` on
//! the result shows no change (the round trip is tested end to end).
//!
//! Passwords are never exported: the live system holds only hashes, and a declaration
//! names where a password comes from (`password: {env: VAR}`), which the live system does
//! not know. An exported manager or representative has no `password` key; since a
//! password is only set on create or when its `rotation` changes, leaving it out changes
//! nothing on the live system.

pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::model::{Kind, Observed, Team, TeamDecl};
use crate::provider::Provider;

use super::Exit;

/// The file each kind goes to.
pub fn file_name(kind: Kind) -> String {
    format!("{}.yaml", kind.section())
}

/// Name of the JSON Schema written beside the files.
pub const SCHEMA_FILE: &str = "roster.schema.json";

const HEADER: &str = "# Exported by `roster export` from the live system.\n\
# Passwords are not exported: add `password: {env: VAR}` (or `{file: PATH}`) to manage one.\n";

fn to_object<T: Serialize>(v: &T) -> Map<String, Value> {
    match serde_json::to_value(v).expect("model types serialize") {
        Value::Object(m) => m,
        _ => unreachable!("model objects serialize as maps"),
    }
}

/// Drops what a declaration does not carry (passwords) and empty sets, which are the
/// defaults anyway.
fn tidy(mut m: Map<String, Value>) -> Value {
    m.remove("password");
    m.remove("previously");
    m.retain(|_, v| match v {
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        Value::Null => false,
        _ => true,
    });
    Value::Object(m)
}

/// Ancestors of live teams that are not themselves in the read (a manager token sees its
/// teams but not their parents), in path order.
pub fn missing_parents(teams: &BTreeMap<String, Team>) -> Vec<String> {
    let mut missing = std::collections::BTreeSet::new();
    for t in teams.values() {
        let mut path = t.path.as_str();
        while let Some((parent, _)) = path.rsplit_once('/') {
            if !teams.contains_key(parent) {
                missing.insert(parent.to_string());
            }
            path = parent;
        }
    }
    missing.into_iter().collect()
}

/// Flat live teams → the nested declaration form, children in path order. A team whose
/// parent was not read is nested under a bare parent (name only), so that its path, its
/// identity, stays the same; [`missing_parents`] names those parents.
pub fn nest_teams(teams: &BTreeMap<String, Team>) -> Vec<TeamDecl> {
    fn decl(t: &Team) -> TeamDecl {
        TeamDecl {
            name: t.path.rsplit('/').next().unwrap_or(&t.path).to_string(),
            description: t.description.clone(),
            max_active_logins: t.max_active_logins,
            leader: t.leader.clone(),
            active: t.active,
            protect: t.protect,
            previously: None,
            teams: Vec::new(),
        }
    }
    fn children(
        parent: Option<&str>,
        by_parent: &BTreeMap<Option<&str>, Vec<&Team>>,
    ) -> Vec<TeamDecl> {
        by_parent
            .get(&parent)
            .map(|kids| {
                kids.iter()
                    .map(|t| {
                        let mut d = decl(t);
                        d.teams = children(Some(t.path.as_str()), by_parent);
                        d
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    let stubs: BTreeMap<String, Team> = missing_parents(teams)
        .into_iter()
        .map(|path| (path.clone(), Team::new(path)))
        .collect();
    let mut by_parent: BTreeMap<Option<&str>, Vec<&Team>> = BTreeMap::new();
    for t in teams.values().chain(stubs.values()) {
        by_parent.entry(t.parent()).or_default().push(t);
    }
    for kids in by_parent.values_mut() {
        kids.sort_by(|a, b| a.path.cmp(&b.path));
    }
    children(None, &by_parent)
}

fn section(kind: Kind, obs: &Observed) -> Vec<Value> {
    let org = &obs.org;
    match kind {
        Kind::Portal => tidy_each(&org.portals),
        Kind::Team => nest_teams(&org.teams)
            .iter()
            .map(|t| tidy_team(to_object(t)))
            .collect(),
        Kind::Administrator => tidy_each(&org.administrators),
        Kind::Manager => tidy_each(&org.managers),
        Kind::Representative => tidy_each(&org.representatives),
        Kind::Campaign => tidy_each(&org.campaigns),
        Kind::ContactGroup => tidy_each(&org.contact_groups),
        Kind::Account => Vec::new(),
    }
}

/// The objects of a flat section, in key order, each tidied for the YAML.
fn tidy_each<T: Serialize>(objects: &BTreeMap<String, T>) -> Vec<Value> {
    objects.values().map(|x| tidy(to_object(x))).collect()
}

fn tidy_team(mut m: Map<String, Value>) -> Value {
    if let Some(Value::Array(kids)) = m.remove("teams") {
        let kids: Vec<Value> = kids
            .into_iter()
            .map(|k| match k {
                Value::Object(o) => tidy_team(o),
                other => other,
            })
            .collect();
        m.insert("teams".into(), Value::Array(kids));
    }
    tidy(m)
}

/// The files of an export: (file name, contents), in kind order.
pub fn files(obs: &Observed) -> Vec<(String, String)> {
    let mut doc = Map::new();
    doc.insert("version".into(), Value::from(1));
    doc.insert("account".into(), account_section(obs));
    let account = (
        ACCOUNT_FILE.to_string(),
        format!(
            "# yaml-language-server: $schema=./{SCHEMA_FILE}\n{HEADER}\
             # The licensed seats are read-only: the licence sets them.\n{}",
            yaml::document(&doc)
        ),
    );
    std::iter::once(account)
        .chain(Kind::ALL.iter().map(|&kind| {
            let mut doc = Map::new();
            doc.insert("version".into(), Value::from(1));
            doc.insert(kind.section().into(), Value::Array(section(kind, obs)));
            let text = format!(
                "# yaml-language-server: $schema=./{SCHEMA_FILE}\n{HEADER}{}",
                yaml::document(&doc)
            );
            (file_name(kind), text)
        }))
        .collect()
}

/// The file the account's section goes to.
pub const ACCOUNT_FILE: &str = "account.yaml";

/// The `account` section: the live name and password policy (every field written out).
fn account_section(obs: &Observed) -> Value {
    let decl = crate::model::AccountDecl {
        name: Some(obs.account.name.clone()),
        password_policy: Some(obs.account.policy()),
    };
    serde_json::to_value(decl).expect("model types serialize")
}

/// The JSON Schema of declaration files (the same text as `roster schema` and
/// schemas/roster.schema.json).
pub fn schema_json() -> String {
    crate::config::schema::declaration_schema_text()
}

/// Writes `contents` to `path` through a temporary file and a rename, so that an
/// interrupted export never leaves a half-written declaration.
fn write_atomic(path: &Path, contents: &str) -> anyhow::Result<()> {
    let tmp = path.with_extension("tmp~");
    std::fs::write(&tmp, contents).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("cannot move {} into place", path.display()))
}

/// Reads the live state and writes it into `out`. Returns the files written.
pub async fn export_to<P: Provider>(provider: &P, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let obs = provider
        .read()
        .await
        .context("cannot read the live system")?;
    write_files(&obs, out)
}

/// Writes the export of `obs` into `out` (created if missing).
pub fn write_files(obs: &Observed, out: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out)
        .with_context(|| format!("cannot create the export directory {}", out.display()))?;
    let mut written = Vec::new();
    for (name, text) in files(obs) {
        let path = out.join(name);
        write_atomic(&path, &text)?;
        written.push(path);
    }
    let schema = out.join(SCHEMA_FILE);
    write_atomic(&schema, &schema_json())?;
    written.push(schema);
    for parent in missing_parents(&obs.org.teams) {
        anstream::eprintln!(
            "warning: team {parent} was not readable with this token; teams.yaml declares it by name only, as the parent of the teams below it"
        );
    }
    let ours: Vec<String> = std::iter::once(ACCOUNT_FILE.to_string())
        .chain(Kind::ALL.iter().map(|&k| file_name(k)))
        .collect();
    if let Ok(entries) = std::fs::read_dir(out) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if (name.ends_with(".yaml") || name.ends_with(".yml")) && !ours.contains(&name) {
                anstream::eprintln!(
                    "warning: {} was not written by this export but sits beside it; `roster plan {}` reads it too",
                    e.path().display(),
                    out.display()
                );
            }
        }
    }
    Ok(written)
}

/// `roster export`'s options.
#[derive(Debug, Clone)]
pub struct Options {
    pub endpoint: super::connect::Endpoint,
    /// Directory to write into (created if missing).
    pub out: PathBuf,
}

pub fn run(args: Options) -> anyhow::Result<Exit> {
    let rt = super::term::runtime()?;
    rt.block_on(async {
        let conn = super::connect::connect(&args.endpoint).await?;
        let result = export_to(&conn.provider, &args.out).await;
        conn.close().await;
        let written = result?;
        let objects: usize = written.len().saturating_sub(1);
        anstream::eprintln!(
            "exported the live system into {} ({objects} declaration files and {SCHEMA_FILE}); passwords are not exported",
            args.out.display()
        );
        Ok(Exit::Success)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Manager, SecretRef};
    use std::collections::BTreeSet;

    #[test]
    fn teams_are_nested_under_their_parents() {
        let teams: BTreeMap<String, Team> =
            ["Europe", "Europe/Paris", "Europe/Paris/Night", "Asia"]
                .iter()
                .map(|p| (p.to_string(), Team::new(*p)))
                .collect();
        let nested = nest_teams(&teams);
        let names: Vec<&str> = nested.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["Asia", "Europe"]);
        assert_eq!(nested[1].teams[0].name, "Paris");
        assert_eq!(nested[1].teams[0].teams[0].name, "Night");
    }

    #[test]
    fn a_team_whose_parent_was_not_read_keeps_its_path_under_a_bare_parent() {
        let teams: BTreeMap<String, Team> =
            ["Europe/Paris", "Europe/Paris/Night", "Asia/Tokyo/East"]
                .iter()
                .map(|p| (p.to_string(), Team::new(*p)))
                .collect();
        assert_eq!(missing_parents(&teams), ["Asia", "Asia/Tokyo", "Europe"]);
        let nested = nest_teams(&teams);
        let names: Vec<&str> = nested.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["Asia", "Europe"]);
        assert_eq!(nested[1].teams[0].name, "Paris");
        assert_eq!(nested[1].teams[0].teams[0].name, "Night");
        assert_eq!(nested[0].teams[0].teams[0].name, "East");
    }

    #[test]
    fn files_carry_the_schema_line_and_never_a_password() {
        let mut obs = Observed::default();
        obs.org.teams.insert("Europe".into(), Team::new("Europe"));
        obs.org.managers.insert(
            "m@acme.example".into(),
            Manager {
                login: "m@acme.example".into(),
                email: "m@acme.example".into(),
                name: "M".into(),
                password: Some(Box::new(SecretRef {
                    rotation: Some("2026-11".into()),
                    ..SecretRef::default()
                })),
                teams: BTreeSet::from(["Europe".to_string()]),
                team_rights: BTreeSet::new(),
                grantable: BTreeSet::new(),
                protect: false,
                previously: None,
            },
        );
        obs.org.representatives.insert(
            "no".into(),
            crate::model::testing::rep("no", Some("Europe"))
                .with_email("no@acme.example")
                .with_names("Yes", "123")
                .with_username("yno"),
        );
        let files: BTreeMap<String, String> = files(&obs).into_iter().collect();
        assert_eq!(files.len(), 8);
        assert!(
            files["account.yaml"].contains("account:\n  name: ")
                && files["account.yaml"].contains("min_length: 1\n"),
            "{}",
            files["account.yaml"]
        );
        for text in files.values() {
            assert!(text.starts_with("# yaml-language-server: $schema=./roster.schema.json\n"));
        }
        let managers = &files["managers.yaml"];
        assert!(!managers.contains("    password"), "{managers}");
        assert!(!managers.contains("2026-11"), "{managers}");
        assert!(managers.contains("    teams: [Europe]\n"), "{managers}");
        let reps = &files["representatives.yaml"];
        assert!(reps.contains("  - login: \"no\"\n"), "{reps}");
        assert!(reps.contains("    first_name: \"Yes\"\n"), "{reps}");
        assert!(reps.contains("    last_name: \"123\"\n"), "{reps}");
        assert!(files["portals.yaml"].ends_with("version: 1\nportals: []\n"));
    }

    #[test]
    fn the_schema_file_is_the_declaration_schema() {
        let v: Value = serde_json::from_str(&schema_json()).unwrap();
        assert!(v["properties"]["representatives"].is_object());
    }
}
