//! "The plan predicts the apply": a seeded random walk of valid edits of a declaration.
//! After each edit that `roster validate` accepts, `roster plan` must plan cleanly (exit 0
//! or 2), `roster apply --auto-approve` must be accepted by the live system whole (exit 0:
//! no 4xx on any write), and the plan right after must be empty (exit 0).
//!
//! Three walks, each against its own `roster serve` on loopback: acme as an administrator,
//! acme as a manager (isabelle.roy, editing only what lies in her teams, with the whole
//! acme declaration and the campaigns and contact groups as she sees them), and a small
//! generated organization as an administrator. Bounded in steps and in wall-clock time
//! (a walk stops early after [`WALK_CAP`], still asserting what it walked). The seed is
//! fixed unless `ROSTER_WALK_SEED` is set; a failure prints it with the walk, the step,
//! the edit and the command's output.
//!
//! The declaration is a `roster::model` value, written with the writer `roster export`
//! uses (`roster::ops::export::yaml`), one file. An edit that makes it invalid is
//! skipped and counted.
//!
//! Known limit the generator avoids: as a manager, taking the last member it sees out of
//! a campaign or contact group that also has members outside its teams makes the object
//! invisible to its token (`model::rights::shown`), and the plan then proposes to create
//! the declared, now empty, object again; the apply would get `409 already-exists`.
//!
//! No edit removes more than one object, so the removal threshold
//! (acme: more than 10 objects) never applies and no command needs `--force`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use roster::model::catalog::{FEATURE_REQUIRES, GRANTABLE_FEATURES, representative_features};
use roster::model::{
    Administrator, Campaign, ContactGroup, Declaration, Feature, Org, Permission, Policy,
    Representative, SignIn, Status, Team, TeamDecl, TeamRight,
};
use serde_json::Value;

use crate::support::cli::{Harness, Run};

const HARNESS: Harness = Harness::plain("2000");

/// Longest one walk runs before it stops early.
const WALK_CAP: Duration = Duration::from_secs(60);

/// Attempts at drawing an applicable edit before a step counts as skipped.
const DRAWS: usize = 30;

module_server!();

impl Server {
    /// `roster ARGS` acting with `token`, in the server's directory.
    fn roster_with(&self, token: &str, args: &[&str]) -> Run {
        let mut cmd = self.base_command(args, self.dir.path());
        cmd.env("ROSTER_TOKEN", token);
        self.finish(cmd, &args.join(" "))
    }

    /// A token for the manager `login`, made with `roster token create`.
    fn manager_token(&self, login: &str) -> String {
        let db = self.database();
        let run = self.roster_with(
            &self.token,
            &["token", "create", "--manager", login, "--database", &db],
        );
        assert_eq!(run.code, 0, "{run}");
        run.stdout.trim().to_string()
    }

    /// Every item of a collection, read with `token`.
    fn list_as(&self, token: &str, collection: &str) -> Vec<Value> {
        let (status, v) = self.http_as(
            token,
            "GET",
            &format!("/v1/{collection}?limit=1000"),
            None,
            None,
        );
        assert_eq!(status, 200, "GET /v1/{collection}: {v}");
        v["items"].as_array().cloned().unwrap_or_default()
    }
}

/// The seed of every walk: `ROSTER_WALK_SEED`, or a fixed one.
fn seed() -> u64 {
    std::env::var("ROSTER_WALK_SEED")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(20_260_301)
}

/// What a manager token may touch, as the generator models rule 6.
#[derive(Debug, Clone)]
struct Reach {
    login: String,
    teams: BTreeSet<String>,
    rights: BTreeSet<TeamRight>,
    grantable: BTreeSet<Feature>,
}

impl Reach {
    fn team(&self, path: &str) -> bool {
        self.teams
            .iter()
            .any(|t| path == t || path.starts_with(&format!("{t}/")))
    }
    fn strictly_below(&self, path: &str) -> bool {
        self.teams
            .iter()
            .any(|t| path.starts_with(&format!("{t}/")))
    }
    fn can(&self, right: TeamRight) -> bool {
        self.rights.contains(&right)
    }
}

/// An object dropped from the declaration, to be declared again later.
#[derive(Debug, Clone)]
enum Dropped {
    Rep(Box<Representative>),
    Admin(Administrator),
    Campaign(Campaign),
    Group(ContactGroup),
}

/// The declaration being walked.
#[derive(Debug, Clone)]
struct World {
    org: Org,
    policy: Policy,
    dropped: Vec<Dropped>,
    /// Members a manager token does not see, per campaign or group name (0 or absent:
    /// it sees them all, and may delete it).
    hidden: BTreeMap<String, u32>,
    /// Counter for fresh names.
    fresh: usize,
}

impl World {
    /// A loaded declaration, with user names only where a file writes them and no
    /// passwords (the walk sets none).
    fn load(dir: &Path) -> World {
        let loaded = roster::config::load(&[dir.to_path_buf()])
            .unwrap_or_else(|e| panic!("{} loads: {e}", dir.display()));
        let desired = loaded.desired;
        let mut org = desired.org;
        for r in org.representatives.values_mut() {
            if !desired.declared_usernames.contains(&r.login) {
                r.username = None;
            }
            r.password = None;
        }
        for m in org.managers.values_mut() {
            m.password = None;
        }
        World {
            org,
            policy: desired.policy,
            dropped: Vec::new(),
            hidden: BTreeMap::new(),
            fresh: 0,
        }
    }

    fn next_name(&mut self) -> usize {
        self.fresh += 1;
        self.fresh
    }

    fn declaration(&self) -> Declaration {
        Declaration {
            version: Some(1),
            policy: Some(self.policy.clone()),
            account: None,
            portals: self.org.portals.values().cloned().collect(),
            teams: nest(&self.org.teams, None),
            administrators: self.org.administrators.values().cloned().collect(),
            managers: self.org.managers.values().cloned().collect(),
            representatives: self.org.representatives.values().cloned().collect(),
            campaigns: self.org.campaigns.values().cloned().collect(),
            contact_groups: self.org.contact_groups.values().cloned().collect(),
            contact_group_shares: Vec::new(),
        }
    }

    /// Writes the declaration as `dir/org.yaml`.
    fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let Value::Object(map) = serde_json::to_value(self.declaration()).unwrap() else {
            unreachable!("a declaration serializes as a map")
        };
        let text = format!(
            "# yaml-language-server: $schema=roster.schema.json\n{}",
            roster::ops::export::yaml::document(&map)
        );
        std::fs::write(dir.join("org.yaml"), text).unwrap();
    }

    /// Once a step is applied its renames are done: `previously:` goes.
    fn settle(&mut self) {
        let o = &mut self.org;
        o.portals.values_mut().for_each(|x| x.previously = None);
        o.teams.values_mut().for_each(|x| x.previously = None);
        o.administrators
            .values_mut()
            .for_each(|x| x.previously = None);
        o.managers.values_mut().for_each(|x| x.previously = None);
        o.representatives
            .values_mut()
            .for_each(|x| x.previously = None);
        o.campaigns.values_mut().for_each(|x| x.previously = None);
        o.contact_groups
            .values_mut()
            .for_each(|x| x.previously = None);
    }

    /// Logins a representative may not take or change: those of managers and
    /// administrators (declared or dropped), which rule 2 ties to it.
    fn staff(&self) -> BTreeSet<String> {
        let mut s: BTreeSet<String> = self.org.managers.keys().cloned().collect();
        s.extend(self.org.administrators.keys().cloned());
        for d in &self.dropped {
            if let Dropped::Admin(a) = d {
                s.insert(a.login.clone());
            }
        }
        s
    }

    /// Representatives the role may touch.
    fn reps(&self, reach: Option<&Reach>) -> Vec<String> {
        self.org
            .representatives
            .values()
            .filter(|r| reach.is_none_or(|s| r.team.as_deref().is_some_and(|t| s.team(t))))
            .map(|r| r.login.clone())
            .collect()
    }

    /// Teams the role may touch (a manager: its teams and below).
    fn teams(&self, reach: Option<&Reach>) -> Vec<String> {
        self.org
            .teams
            .keys()
            .filter(|t| reach.is_none_or(|s| s.team(t)))
            .cloned()
            .collect()
    }

    /// Every reference to a representative's login follows its rename.
    fn rename_rep_refs(&mut self, old: &str, new: &str) {
        for t in self.org.teams.values_mut() {
            if t.leader.as_deref() == Some(old) {
                t.leader = Some(new.to_string());
            }
        }
        for c in self.org.campaigns.values_mut() {
            if c.representatives.remove(old) {
                c.representatives.insert(new.to_string());
            }
        }
        for g in self.org.contact_groups.values_mut() {
            if let Some(p) = g.shared_with.remove(old) {
                g.shared_with.insert(new.to_string(), p);
            }
        }
    }

    /// Every reference to a representative goes (it is dropped).
    fn drop_rep_refs(&mut self, login: &str) {
        for t in self.org.teams.values_mut() {
            if t.leader.as_deref() == Some(login) {
                t.leader = None;
            }
        }
        for c in self.org.campaigns.values_mut() {
            c.representatives.remove(login);
        }
        for g in self.org.contact_groups.values_mut() {
            g.shared_with.remove(login);
        }
    }

    /// Leaders who are no longer in their team's subtree are unset.
    fn fix_leaders(&mut self) {
        let reps = &self.org.representatives;
        for t in self.org.teams.values_mut() {
            if let Some(l) = &t.leader {
                let inside = reps
                    .get(l)
                    .and_then(|r| r.team.as_deref())
                    .is_some_and(|rt| rt == t.path || rt.starts_with(&format!("{}/", t.path)));
                if !inside {
                    t.leader = None;
                }
            }
        }
    }
}

/// Flat teams → the nested declaration form.
fn nest(teams: &BTreeMap<String, Team>, parent: Option<&str>) -> Vec<TeamDecl> {
    teams
        .values()
        .filter(|t| t.parent() == parent)
        .map(|t| TeamDecl {
            name: t.path.rsplit('/').next().unwrap_or(&t.path).to_string(),
            description: t.description.clone(),
            max_active_logins: t.max_active_logins,
            leader: t.leader.clone(),
            active: t.active,
            protect: t.protect,
            previously: t.previously.clone(),
            teams: nest(teams, Some(&t.path)),
        })
        .collect()
}

fn pick<'a, T>(rng: &mut StdRng, items: &'a [T]) -> Option<&'a T> {
    if items.is_empty() {
        None
    } else {
        Some(&items[rng.random_range(0..items.len())])
    }
}

/// Turns `f` on or off in `set`, with what rule 1 requires: on brings its requirements,
/// off takes its dependents. `None` when a manager may not make every resulting change.
fn toggle_feature(
    set: &BTreeSet<Feature>,
    f: Feature,
    allowed: Option<&BTreeSet<Feature>>,
) -> Option<BTreeSet<Feature>> {
    let mut out = set.clone();
    if out.contains(&f) {
        let mut gone = vec![f];
        while let Some(g) = gone.pop() {
            out.remove(&g);
            for (dep, req) in FEATURE_REQUIRES {
                if *req == g && out.contains(dep) {
                    gone.push(*dep);
                }
            }
        }
    } else {
        let mut add = vec![f];
        while let Some(g) = add.pop() {
            out.insert(g);
            for (dep, req) in FEATURE_REQUIRES {
                if *dep == g && !out.contains(req) {
                    add.push(*req);
                }
            }
        }
    }
    if let Some(allowed) = allowed
        && out.symmetric_difference(set).any(|g| !allowed.contains(g))
    {
        return None;
    }
    Some(out)
}

const FIRST: &[&str] = &["Anna", "Adam", "Léa", "Jean", "Zoë", "Marie", "Olivia"];
const LAST: &[&str] = &["Nowak", "Dubois", "Smith", "Curie", "Müller", "No"];

/// One random edit of `w`, or `None` when the one drawn does not apply (nothing to edit,
/// or the role may not make it). Returns what it did.
fn edit(w: &mut World, rng: &mut StdRng, reach: Option<&Reach>) -> Option<String> {
    let can = |r: TeamRight| reach.is_none_or(|s| s.can(r));
    let admin = reach.is_none();
    let staff = w.staff();
    let reps = w.reps(reach);
    let teams = w.teams(reach);
    let grantable = reach.map(|s| &s.grantable);
    match rng.random_range(0..21) {
        // Change a login (`previously:`).
        0 => {
            if !can(TeamRight::EditRepNameLogin) {
                return None;
            }
            let old = pick(rng, &reps)?.clone();
            if staff.contains(&old) {
                return None;
            }
            let n = w.next_name();
            let new = format!("w{n}.{old}");
            let mut r = w.org.representatives.remove(&old)?;
            r.login = new.clone();
            r.previously = Some(old.clone());
            w.org.representatives.insert(new.clone(), r);
            w.rename_rep_refs(&old, &new);
            Some(format!("login {old} → {new}"))
        }
        // Move a representative to another team.
        1 => {
            if !can(TeamRight::ManageRepresentatives) {
                return None;
            }
            let login = pick(rng, &reps)?.clone();
            let to = pick(rng, &teams)?.clone();
            let r = w.org.representatives.get_mut(&login)?;
            if r.team.as_deref() == Some(to.as_str()) {
                return None;
            }
            let from = r.team.replace(to.clone());
            w.fix_leaders();
            Some(format!("move {login}: {from:?} → {to}"))
        }
        // Turn a feature on or off (rule 1 kept).
        2 | 3 => {
            let login = pick(rng, &reps)?.clone();
            let all: Vec<Feature> = representative_features()
                .filter(|f| grantable.is_none_or(|g| g.contains(f)))
                .collect();
            let f = *pick(rng, &all)?;
            let r = w.org.representatives.get_mut(&login)?;
            let before = r.features.clone();
            r.features = toggle_feature(&before, f, grantable)?;
            // The login of a manager or administrator (declared: the loader refuses it;
            // live and undeclared: the plan does, `login-collision`) keeps a representative
            // out of the Admin Center.
            if staff.contains(&login) && r.features.contains(&Feature::AdminCenterAccess) {
                return None;
            }
            Some(format!(
                "features of {login}: {before:?} → {:?}",
                r.features
            ))
        }
        // Enable or disable a portal.
        4 => {
            if !can(TeamRight::ManageRepresentatives) {
                return None;
            }
            let login = pick(rng, &reps)?.clone();
            let portals: Vec<String> = w.org.portals.keys().cloned().collect();
            let p = pick(rng, &portals)?.clone();
            let r = w.org.representatives.get_mut(&login)?;
            let on = !r.portals.remove(&p);
            if on {
                r.portals.insert(p.clone());
            }
            Some(format!(
                "portal {p} of {login}: {}",
                if on { "on" } else { "off" }
            ))
        }
        // Sessions at once.
        5 => {
            if grantable.is_some_and(|g| !g.contains(&Feature::Multisession)) {
                return None;
            }
            let login = pick(rng, &reps)?.clone();
            let n = rng.random_range(1..=4u8);
            let r = w.org.representatives.get_mut(&login)?;
            if r.multisession == n {
                return None;
            }
            r.multisession = n;
            Some(format!("multisession of {login}: {n}"))
        }
        // A sign-in flag.
        6 => {
            if !can(TeamRight::ManageRepresentatives) {
                return None;
            }
            let login = pick(rng, &reps)?.clone();
            let r = w.org.representatives.get_mut(&login)?;
            let s = &mut r.sign_in;
            let which = rng.random_range(0..3);
            let flag = match which {
                0 => &mut s.force_password_change,
                1 => &mut s.self_service_password_reset,
                _ => &mut s.force_email_validation,
            };
            *flag = !*flag;
            Some(format!("sign_in[{which}] of {login}: {}", *flag))
        }
        // Active / inactive.
        7 => {
            if !can(TeamRight::ManageRepresentatives) {
                return None;
            }
            let login = pick(rng, &reps)?.clone();
            let r = w.org.representatives.get_mut(&login)?;
            r.status = match r.status {
                Status::Active => Status::Inactive,
                Status::Inactive => Status::Active,
            };
            Some(format!("status of {login}: {:?}", r.status))
        }
        // User name: set, change, drop the line.
        8 => {
            if !can(TeamRight::EditRepNameLogin) {
                return None;
            }
            let login = pick(rng, &reps)?.clone();
            let n = w.next_name();
            let r = w.org.representatives.get_mut(&login)?;
            let before = r.username.clone();
            r.username = if before.is_some() && rng.random_bool(0.5) {
                None
            } else {
                Some(format!("walker{n}"))
            };
            Some(format!(
                "username of {login}: {before:?} → {:?}",
                r.username
            ))
        }
        // First or last name.
        9 => {
            if !can(TeamRight::EditRepNameLogin) {
                return None;
            }
            let login = pick(rng, &reps)?.clone();
            let first = *pick(rng, FIRST)?;
            let last = *pick(rng, LAST)?;
            let r = w.org.representatives.get_mut(&login)?;
            if rng.random_bool(0.5) {
                r.first_name = first.into();
            } else {
                r.last_name = last.into();
            }
            Some(format!(
                "names of {login}: {} {}",
                r.first_name, r.last_name
            ))
        }
        // A team leader: a member of the team or below, or none.
        10 => {
            if !can(TeamRight::ManageSubteams) {
                return None;
            }
            let path = pick(rng, &teams)?.clone();
            let members: Vec<String> = w
                .org
                .representatives
                .values()
                .filter(|r| {
                    r.team
                        .as_deref()
                        .is_some_and(|t| t == path || t.starts_with(&format!("{path}/")))
                })
                .map(|r| r.login.clone())
                .collect();
            let leader = if rng.random_bool(0.25) {
                None
            } else {
                Some(pick(rng, &members)?.clone())
            };
            let t = w.org.teams.get_mut(&path)?;
            if t.leader == leader {
                return None;
            }
            t.leader = leader.clone();
            Some(format!("leader of {path}: {leader:?}"))
        }
        // Team active / inactive.
        11 => {
            if !can(TeamRight::ManageSubteams) {
                return None;
            }
            let path = pick(rng, &teams)?.clone();
            let t = w.org.teams.get_mut(&path)?;
            t.active = !t.active;
            Some(format!("team {path} active: {}", t.active))
        }
        // A campaign's members: a representative or a team in or out.
        12 => {
            if !can(TeamRight::ManageRepresentatives) {
                return None;
            }
            let names: Vec<String> = w.org.campaigns.keys().cloned().collect();
            let name = pick(rng, &names)?.clone();
            let rep = rng.random_bool(0.6);
            let member = if rep {
                pick(rng, &reps)?.clone()
            } else {
                pick(rng, &teams)?.clone()
            };
            let c = w.org.campaigns.get_mut(&name)?;
            let set = if rep {
                &mut c.representatives
            } else {
                &mut c.teams
            };
            let added = set.insert(member.clone());
            if !added {
                set.remove(&member);
            }
            // A manager does not take the last member it sees out of a campaign that has
            // members out of its sight: the campaign would vanish from its reads, and the
            // plan would then propose to create it again (a known limit of rule 6's read
            // scope, see the module docs).
            if !added
                && w.hidden.get(&name).copied().unwrap_or(0) > 0
                && c.representatives.is_empty()
                && c.teams.is_empty()
            {
                return None;
            }
            Some(format!(
                "campaign {name}: {} {member}",
                if added { "add" } else { "drop" }
            ))
        }
        // A contact group's shares: add, drop, change the permission.
        13 | 14 => {
            if !can(TeamRight::ManageRepresentatives) {
                return None;
            }
            let names: Vec<String> = w.org.contact_groups.keys().cloned().collect();
            let name = pick(rng, &names)?.clone();
            let login = pick(rng, &reps)?.clone();
            let perm = *pick(
                rng,
                &[Permission::View, Permission::Connect, Permission::Manage],
            )?;
            let g = w.org.contact_groups.get_mut(&name)?;
            let before = g.shared_with.get(&login).copied();
            if before.is_some() && rng.random_bool(0.4) {
                g.shared_with.remove(&login);
                // As for campaigns: not the last member a manager sees of a group with
                // hidden ones.
                if g.shared_with.is_empty() && w.hidden.get(&name).copied().unwrap_or(0) > 0 {
                    return None;
                }
            } else if before == Some(perm) {
                return None;
            } else {
                g.shared_with.insert(login.clone(), perm);
            }
            Some(format!(
                "group {name}: {login} {before:?} → {:?}",
                g.shared_with.get(&login)
            ))
        }
        // Drop an object (re-added by a later step).
        15 | 16 => match rng.random_range(0..4) {
            0 => {
                if !can(TeamRight::ManageRepresentatives) {
                    return None;
                }
                let login = pick(rng, &reps)?.clone();
                if staff.contains(&login) {
                    return None;
                }
                let r = w.org.representatives.remove(&login)?;
                w.drop_rep_refs(&login);
                w.dropped.push(Dropped::Rep(Box::new(r)));
                Some(format!("drop representative {login}"))
            }
            1 if admin => {
                let logins: Vec<String> = w.org.administrators.keys().cloned().collect();
                let login = pick(rng, &logins)?.clone();
                let a = w.org.administrators.remove(&login)?;
                w.dropped.push(Dropped::Admin(a));
                Some(format!("drop administrator {login}"))
            }
            2 => {
                let names: Vec<String> = w.org.campaigns.keys().cloned().collect();
                let name = pick(rng, &names)?.clone();
                if !admin && w.hidden.get(&name).copied().unwrap_or(0) > 0 {
                    return None;
                }
                let c = w.org.campaigns.remove(&name)?;
                w.dropped.push(Dropped::Campaign(c));
                Some(format!("drop campaign {name}"))
            }
            3 => {
                let names: Vec<String> = w.org.contact_groups.keys().cloned().collect();
                let name = pick(rng, &names)?.clone();
                if !admin && w.hidden.get(&name).copied().unwrap_or(0) > 0 {
                    return None;
                }
                let g = w.org.contact_groups.remove(&name)?;
                w.dropped.push(Dropped::Group(g));
                Some(format!("drop contact group {name}"))
            }
            _ => None,
        },
        // Declare a dropped object again.
        17 => {
            if w.dropped.is_empty() {
                return None;
            }
            let i = rng.random_range(0..w.dropped.len());
            let back = w.dropped.remove(i);
            let reps: BTreeSet<String> = w.org.representatives.keys().cloned().collect();
            let team_paths: BTreeSet<String> = w.org.teams.keys().cloned().collect();
            match back {
                Dropped::Rep(mut r) => {
                    if w.org.representatives.contains_key(&r.login) {
                        return None;
                    }
                    if !r.team.as_ref().is_some_and(|t| team_paths.contains(t)) {
                        r.team = Some(pick(rng, &teams)?.clone());
                    }
                    r.portals.retain(|p| w.org.portals.contains_key(p));
                    let login = r.login.clone();
                    w.org.representatives.insert(login.clone(), *r);
                    Some(format!("declare representative {login} again"))
                }
                Dropped::Admin(a) => {
                    let login = a.login.clone();
                    w.org.administrators.insert(login.clone(), a);
                    Some(format!("declare administrator {login} again"))
                }
                Dropped::Campaign(mut c) => {
                    c.representatives.retain(|l| reps.contains(l));
                    c.teams.retain(|t| team_paths.contains(t));
                    let name = c.name.clone();
                    w.org.campaigns.insert(name.clone(), c);
                    Some(format!("declare campaign {name} again"))
                }
                Dropped::Group(mut g) => {
                    g.shared_with
                        .retain(|l, _| reps.contains(l) || w.org.managers.contains_key(l));
                    let name = g.name.clone();
                    w.org.contact_groups.insert(name.clone(), g);
                    Some(format!("declare contact group {name} again"))
                }
            }
        }
        // A new representative, sometimes named like an existing one (user names), as an
        // administrator sometimes with the login of a live administrator no file declares.
        18 => {
            if !can(TeamRight::ManageRepresentatives) {
                return None;
            }
            let n = w.next_name();
            let mut login = format!("new{n}@walk.example");
            if admin && rng.random_bool(0.3) {
                let undeclared: Vec<String> = w
                    .dropped
                    .iter()
                    .filter_map(|d| match d {
                        Dropped::Admin(a) => Some(a.login.clone()),
                        _ => None,
                    })
                    .collect();
                if let Some(l) = pick(rng, &undeclared) {
                    login = l.clone();
                }
            }
            if w.org.representatives.contains_key(&login) {
                return None;
            }
            let team = pick(rng, &teams)?.clone();
            let mut features = BTreeSet::new();
            // Not the Admin Center with the login of an administrator (see above).
            if rng.random_bool(0.5) && !staff.contains(&login) {
                let all: Vec<Feature> = representative_features()
                    .filter(|f| grantable.is_none_or(|g| g.contains(f)))
                    .collect();
                let f = *pick(rng, &all)?;
                features = toggle_feature(&features, f, grantable)?;
            }
            let r = Representative {
                login: login.clone(),
                email: login.clone(),
                first_name: pick(rng, FIRST)?.to_string(),
                last_name: pick(rng, LAST)?.to_string(),
                username: None,
                language: "en".into(),
                team: Some(team.clone()),
                status: Status::Active,
                sign_in: SignIn::default(),
                features,
                multisession: 1,
                portals: Default::default(),
                support_management: true,
                remote_management: false,
                password: None,
                protect: false,
                previously: None,
            };
            let what = format!("new representative {login} in {team}: {r:?}");
            w.org.representatives.insert(login, r);
            Some(what)
        }
        // Rename a team without sub-teams (`previously:`).
        19 => {
            if !can(TeamRight::ManageSubteams) {
                return None;
            }
            let leaves: Vec<String> = teams
                .iter()
                .filter(|p| !w.org.teams.keys().any(|k| k.starts_with(&format!("{p}/"))))
                .filter(|p| reach.is_none_or(|s| s.strictly_below(p)))
                .filter(|p| !w.org.teams[*p].protect)
                .cloned()
                .collect();
            let old = pick(rng, &leaves)?.clone();
            let n = w.next_name();
            let new = match old.rsplit_once('/') {
                Some((parent, _)) => format!("{parent}/Walk{n}"),
                None => format!("Walk{n}"),
            };
            let mut t = w.org.teams.remove(&old)?;
            t.path = new.clone();
            t.previously = Some(old.clone());
            w.org.teams.insert(new.clone(), t);
            for r in w.org.representatives.values_mut() {
                if r.team.as_deref() == Some(old.as_str()) {
                    r.team = Some(new.clone());
                }
            }
            for d in &mut w.dropped {
                if let Dropped::Rep(r) = d
                    && r.team.as_deref() == Some(old.as_str())
                {
                    r.team = Some(new.clone());
                }
            }
            for c in w.org.campaigns.values_mut() {
                if c.teams.remove(&old) {
                    c.teams.insert(new.clone());
                }
            }
            for m in w.org.managers.values_mut() {
                if m.teams.remove(&old) {
                    m.teams.insert(new.clone());
                }
            }
            Some(format!("rename team {old} → {new}"))
        }
        // A manager's team rights or grantable features (as an administrator).
        _ => {
            if !admin {
                return None;
            }
            let logins: Vec<String> = w.org.managers.keys().cloned().collect();
            let login = pick(rng, &logins)?.clone();
            let m = w.org.managers.get_mut(&login)?;
            if rng.random_bool(0.5) {
                let right = *pick(rng, TeamRight::ALL)?;
                let on = !m.team_rights.remove(&right);
                if on {
                    m.team_rights.insert(right);
                }
                Some(format!("team right {right} of {login}: {on}"))
            } else {
                let f = *pick(rng, GRANTABLE_FEATURES)?;
                let before = m.grantable.clone();
                m.grantable = toggle_feature(&before, f, None)?;
                Some(format!(
                    "grantable of {login}: {before:?} → {:?}",
                    m.grantable
                ))
            }
        }
    }
}

/// What a walk did.
#[derive(Debug, Default)]
struct Walked {
    steps: usize,
    skipped: usize,
    applies: usize,
}

/// Walks `steps` random edits of `world` acting with `token` (a manager's when `reach`
/// is given), from a live system that already matches it.
fn walk(
    server: &Server,
    token: &str,
    mut world: World,
    reach: Option<&Reach>,
    steps: usize,
    name: &str,
    seed: u64,
) -> Walked {
    let tmp = tempfile::tempdir().unwrap();
    let decl = tmp.path().join("decl");
    let d = decl.to_str().unwrap().to_string();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut walked = Walked::default();
    let start = Instant::now();
    world.write(&decl);
    let first = server.roster_with(token, &["plan", &d, "--detailed-exitcode"]);
    assert_eq!(
        first.code, 0,
        "walk {name} (ROSTER_WALK_SEED={seed}): the walk starts from a live system that matches:\n{first}"
    );
    for step in 1..=steps {
        if start.elapsed() > WALK_CAP {
            eprintln!("walk {name}: stopped after {WALK_CAP:?}");
            break;
        }
        walked.steps += 1;
        let mut drawn = None;
        for _ in 0..DRAWS {
            let mut next = world.clone();
            if let Some(what) = edit(&mut next, &mut rng, reach) {
                drawn = Some((next, what));
                break;
            }
        }
        let Some((mut next, what)) = drawn else {
            walked.skipped += 1;
            continue;
        };
        eprintln!("walk {name} step {step}: {what}");
        next.write(&decl);
        let fail = |stage: &str, run: &Run| -> ! {
            panic!(
                "walk {name} (ROSTER_WALK_SEED={seed}), step {step}, edit: {what}\n{stage}:\n{run}\n--- declaration ---\n{}",
                std::fs::read_to_string(decl.join("org.yaml")).unwrap_or_default()
            )
        };
        let valid = server.roster_with(token, &["validate", &d]);
        if valid.code != 0 {
            // Not a valid edit (a rule the generator does not model): skipped.
            eprintln!(
                "walk {name} step {step}: skipped, invalid:\n{}",
                valid.stdout
            );
            walked.skipped += 1;
            continue;
        }
        let plan = server.roster_with(token, &["plan", &d, "--detailed-exitcode"]);
        if plan.code != 0 && plan.code != 2 {
            fail("plan must succeed (exit 0 or 2)", &plan);
        }
        let apply = server.roster_with(token, &["apply", &d, "--auto-approve"]);
        if apply.code != 0 {
            fail("apply must be accepted whole (exit 0)", &apply);
        }
        walked.applies += 1;
        next.settle();
        next.write(&decl);
        let again = server.roster_with(token, &["plan", &d, "--detailed-exitcode"]);
        if again.code != 0 {
            fail(
                &format!(
                    "the plan after the apply must be empty (exit 0); the plan applied was:\n{}",
                    plan.stdout
                ),
                &again,
            );
        }
        world = next;
    }
    eprintln!(
        "walk {name} (ROSTER_WALK_SEED={seed}): {} steps walked, {} edits skipped, {} applies made, in {:?}",
        walked.steps,
        walked.skipped,
        walked.applies,
        start.elapsed()
    );
    walked
}

/// Applies `world` as an administrator (the walk's starting point).
fn apply_world(server: &Server, world: &World, dir: &Path) {
    world.write(dir);
    let run = server.roster_with(
        &server.token,
        &["apply", dir.to_str().unwrap(), "--auto-approve"],
    );
    assert_eq!(run.code, 0, "the starting declaration applies:\n{run}");
}

fn acme() -> World {
    World::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/acme"))
}

/// Every walk must have applied something: a walk that only skipped checks nothing.
fn assert_walked(w: &Walked, name: &str) {
    assert!(w.steps > 0, "walk {name} walked no step");
    assert!(
        w.applies * 2 >= w.steps,
        "walk {name}: too few edits applied ({w:?}); the generator draws mostly invalid edits"
    );
}

#[test]
fn acme_as_an_administrator() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let world = acme();
    apply_world(&server, &world, &tmp.path().join("start"));
    let w = walk(
        &server,
        &server.token,
        world,
        None,
        40,
        "acme-admin",
        seed(),
    );
    assert_walked(&w, "acme-admin");
}

#[test]
fn acme_as_a_manager() {
    const MANAGER: &str = "isabelle.roy@acme.example";
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let mut world = acme();
    // Isabelle (Americas) may also change names and logins, so that the walk covers them.
    world
        .org
        .managers
        .get_mut(MANAGER)
        .unwrap()
        .team_rights
        .insert(TeamRight::EditRepNameLogin);
    apply_world(&server, &world, &tmp.path().join("start"));
    let token = server.manager_token(MANAGER);
    // The campaigns and contact groups as she sees them (only members in her teams), as
    // a manager declares them; those she sees nothing of are not hers to declare.
    world.org.campaigns.clear();
    for c in server.list_as(&token, "campaigns") {
        let mut c: Campaign = serde_json::from_value(strip(c)).unwrap();
        world
            .hidden
            .insert(c.name.clone(), c.hidden_members.unwrap_or(0));
        c.hidden_members = None;
        world.org.campaigns.insert(c.name.clone(), c);
    }
    world.org.contact_groups.clear();
    for g in server.list_as(&token, "contact-groups") {
        let mut g: ContactGroup = serde_json::from_value(strip(g)).unwrap();
        world
            .hidden
            .insert(g.name.clone(), g.hidden_members.unwrap_or(0));
        g.hidden_members = None;
        world.org.contact_groups.insert(g.name.clone(), g);
    }
    let m = &world.org.managers[MANAGER];
    let reach = Reach {
        login: MANAGER.into(),
        teams: m.teams.clone(),
        rights: m.team_rights.clone(),
        grantable: m.grantable.clone(),
    };
    assert!(!reach.login.is_empty());
    let w = walk(
        &server,
        &token,
        world,
        Some(&reach),
        25,
        "acme-manager",
        seed() ^ 1,
    );
    assert_walked(&w, "acme-manager");
}

/// The fields of a live campaign or group that a declaration has.
fn strip(mut v: Value) -> Value {
    if let Value::Object(m) = &mut v {
        m.retain(|k, _| {
            matches!(
                k.as_str(),
                "name" | "active" | "representatives" | "teams" | "shared_with" | "hidden_members"
            )
        });
    }
    v
}

#[test]
fn a_small_generated_organization_as_an_administrator() {
    let server = Server::start(&[]);
    let tmp = tempfile::tempdir().unwrap();
    let generated = tmp.path().join("generated");
    let opts = roster::generate::GenerateOptions {
        representatives: 30,
        teams: 6,
        managers: 3,
        portals: 3,
        seed: 7,
        per_file: 5000,
    };
    roster::generate::generate(&opts, &generated).unwrap();
    let world = World::load(&generated);
    apply_world(&server, &world, &tmp.path().join("start"));
    let w = walk(
        &server,
        &server.token,
        world,
        None,
        20,
        "generated-admin",
        seed() ^ 2,
    );
    assert_walked(&w, "generated-admin");
}
