//! Targeting: `--target KIND/KEY` and `--exclude KIND/KEY` (repeatable, with globs) cut a
//! plan down to part of its changes.
//!
//! Owns the pattern ([`Pattern`]: a kind and a glob over keys, parsed once at the command
//! line), the [`Filter`] of both lists, and the selection. The full plan is made first
//! and ordered (`order.rs` fills `depends_on`); then [`choose`] keeps the changes that a
//! `--target` names (every change when there is none) and no `--exclude` names, and
//! everything they depend on, transitively: the create of the team a targeted
//! representative moves into, the portal it is assigned to, the rename it follows. A
//! change pulled in that way is listed in [`Partial::pulled_in`]; a dependency that an
//! `--exclude` names is not pulled in, and the plan is refused (`target-dependency`),
//! naming it. `make` runs the selection on the drafts and then the count-based safety
//! checks (removal threshold, seats) on what is selected, so a partial plan is judged by
//! what it writes; refusals about left-out objects only are dropped.
//!
//! Pure: no I/O. Removals are changes like any other: the same filters apply to them.
//!
//! Globs are `globset`'s (`*` matches any characters, `/` included, so `team/Europe/*`
//! names every team under Europe; `?`, `[abc]`, `{a,b}` too); logins (representatives,
//! managers, administrators) match ignoring case, as roster compares them everywhere.

use std::fmt;
use std::str::FromStr;

use globset::{GlobBuilder, GlobMatcher};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Action, Change, Refusal};
use crate::model::rules::RuleCode;
use crate::model::{Kind, ObjectId};

/// One `KIND/KEY` pattern: a kind and a glob over that kind's keys.
#[derive(Debug, Clone)]
pub struct Pattern {
    pub kind: Kind,
    /// The glob as given (after `KIND/`).
    pub key: String,
    glob: GlobMatcher,
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind && self.key == other.key
    }
}

impl Eq for Pattern {}

impl Pattern {
    /// Whether the pattern names this object.
    pub fn matches(&self, id: &ObjectId) -> bool {
        id.kind == self.kind && self.glob.is_match(&id.key)
    }
}

impl fmt::Display for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.key)
    }
}

fn kinds_list() -> String {
    Kind::ALL
        .iter()
        .map(|k| k.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Pattern {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let Some((kind, key)) = s.split_once('/') else {
            return Err(format!(
                "`{s}` is not KIND/KEY (e.g. `representative/*@acme.example`, \
                 `team/Europe/*`); KIND is one of {}",
                kinds_list()
            ));
        };
        let Some(kind) = Kind::from_name(kind) else {
            return Err(format!(
                "unknown kind `{kind}` in `{s}`: use one of {}",
                kinds_list()
            ));
        };
        if key.is_empty() {
            return Err(format!(
                "`{s}` names no key: write `{kind}/KEY`, or `{kind}/*` for every {kind}"
            ));
        }
        let logins = matches!(
            kind,
            Kind::Representative | Kind::Manager | Kind::Administrator
        );
        let glob = GlobBuilder::new(key)
            .literal_separator(false)
            .case_insensitive(logins)
            .build()
            .map_err(|e| format!("`{s}` is not a valid glob: {}", e.kind()))?
            .compile_matcher();
        Ok(Pattern {
            kind,
            key: key.to_string(),
            glob,
        })
    }
}

/// The `--target` and `--exclude` patterns of one run. Empty: the whole plan.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    pub targets: Vec<Pattern>,
    pub excludes: Vec<Pattern>,
}

impl Filter {
    pub fn is_empty(&self) -> bool {
        self.targets.is_empty() && self.excludes.is_empty()
    }

    fn targeted(&self, id: &ObjectId) -> bool {
        self.targets.is_empty() || self.targets.iter().any(|p| p.matches(id))
    }

    fn excluded_by(&self, id: &ObjectId) -> Option<&Pattern> {
        self.excludes.iter().find(|p| p.matches(id))
    }
}

/// A change no `--target` names, kept because a selected change depends on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PulledIn {
    pub id: ObjectId,
    pub action: Action,
    /// The selected change that needs it (the first one, in plan order).
    pub needed_by: ObjectId,
}

/// What a plan cut down by `--target`/`--exclude` says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Partial {
    /// The `--target` patterns, as `kind/glob`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
    /// The `--exclude` patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub excludes: Vec<String>,
    /// How many changes of the full plan this plan leaves out.
    pub left_out: usize,
    /// Dependencies kept although no `--target` names them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pulled_in: Vec<PulledIn>,
}

/// Which changes of an ordered plan a filter keeps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Selection {
    /// Per change of the full plan: kept or not.
    pub keep: Vec<bool>,
    /// (dependency, the kept change that needs it), in plan order of the dependency.
    pub pulled_in: Vec<(usize, usize)>,
    /// A kept change depends on one an `--exclude` names.
    pub refusals: Vec<Refusal>,
    /// Patterns (`--target …`, `--exclude …`) that name no change of the full plan.
    pub unmatched: Vec<String>,
}

/// The selection of `changes` (ordered: every `depends_on` index is earlier) by `filter`.
pub(super) fn choose(changes: &[&Change], filter: &Filter) -> Selection {
    let n = changes.len();
    let excluded: Vec<Option<&Pattern>> =
        changes.iter().map(|c| filter.excluded_by(&c.id)).collect();
    let mut keep: Vec<bool> = changes
        .iter()
        .zip(&excluded)
        .map(|(c, x)| x.is_none() && filter.targeted(&c.id))
        .collect();
    let seeded = keep.clone();
    let mut needed_by: Vec<Option<usize>> = vec![None; n];
    let mut refusals = vec![];
    // Dependencies are earlier than their dependents: one pass from the end closes the set.
    for i in (0..n).rev() {
        if !keep[i] {
            continue;
        }
        for &j in &changes[i].depends_on {
            if j >= n || keep[j] {
                continue;
            }
            if let Some(p) = excluded[j] {
                refusals.push(refusal(changes[i], changes[j], p));
                continue;
            }
            keep[j] = true;
            needed_by[j] = Some(i);
        }
    }
    // The first dependent in plan order names the reason (the pass above saw the last).
    for i in 0..n {
        if !keep[i] {
            continue;
        }
        for &j in &changes[i].depends_on {
            if j < n && !seeded[j] && keep[j] && needed_by[j].is_some_and(|k| k > i) {
                needed_by[j] = Some(i);
            }
        }
    }
    let pulled_in = (0..n)
        .filter_map(|j| needed_by[j].map(|i| (j, i)))
        .collect();
    let mut unmatched = vec![];
    for (flag, list) in [
        ("--target", &filter.targets),
        ("--exclude", &filter.excludes),
    ] {
        for p in list {
            if !changes.iter().any(|c| p.matches(&c.id)) {
                unmatched.push(format!("{flag} {p}"));
            }
        }
    }
    refusals.sort_by(|a: &Refusal, b| (&a.id, &a.objects).cmp(&(&b.id, &b.objects)));
    refusals.dedup();
    Selection {
        keep,
        pulled_in,
        refusals,
        unmatched,
    }
}

fn refusal(by: &Change, dep: &Change, pattern: &Pattern) -> Refusal {
    Refusal {
        rule: RuleCode::TargetDependency,
        id: by.id.clone(),
        objects: vec![dep.id.clone()],
        pointer: String::new(),
        message: format!(
            "{} ({}) depends on {} ({}), which `--exclude {pattern}` leaves out; \
             nothing was written",
            by.id,
            by.action.verb(),
            dep.id,
            dep.action.verb()
        ),
        help: format!(
            "drop `--exclude {pattern}` (the plan then includes {} as a dependency), or \
             leave out {} too (`--exclude {}`)",
            dep.id, by.id, by.id
        ),
    }
}

/// `partial` for a selection of a plan of `total` changes.
pub(super) fn partial(
    filter: &Filter,
    sel: &Selection,
    changes: &[&Change],
    total: usize,
) -> Partial {
    let kept = sel.keep.iter().filter(|k| **k).count();
    Partial {
        targets: filter.targets.iter().map(ToString::to_string).collect(),
        excludes: filter.excludes.iter().map(ToString::to_string).collect(),
        left_out: total - kept,
        pulled_in: sel
            .pulled_in
            .iter()
            .map(|&(j, i)| PulledIn {
                id: changes[j].id.clone(),
                action: changes[j].action,
                needed_by: changes[i].id.clone(),
            })
            .collect(),
    }
}

/// The new indices of kept changes (`None`: left out).
pub(super) fn renumber(keep: &[bool]) -> Vec<Option<usize>> {
    let mut next = 0;
    keep.iter()
        .map(|&k| {
            k.then(|| {
                next += 1;
                next - 1
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        s.parse().unwrap()
    }

    fn id(kind: Kind, key: &str) -> ObjectId {
        ObjectId::new(kind, key)
    }

    fn change(kind: Kind, key: &str, action: Action, deps: &[usize]) -> Change {
        Change {
            id: id(kind, key),
            action,
            previously: None,
            version: None,
            after: None,
            patch: None,
            fields: vec![],
            set_password: None,
            depends_on: deps.to_vec(),
            reason: String::new(),
        }
    }

    fn filter(targets: &[&str], excludes: &[&str]) -> Filter {
        Filter {
            targets: targets.iter().map(|s| p(s)).collect(),
            excludes: excludes.iter().map(|s| p(s)).collect(),
        }
    }

    #[test]
    fn a_star_matches_any_characters_within_its_kind() {
        let reps = p("representative/*@acme.example");
        assert!(reps.matches(&id(Kind::Representative, "camille@acme.example")));
        assert!(reps.matches(&id(Kind::Representative, "@acme.example")));
        assert!(!reps.matches(&id(Kind::Representative, "camille@acme.example.org")));
        assert!(!reps.matches(&id(Kind::Manager, "camille@acme.example")));

        let europe = p("team/Europe/*");
        assert!(europe.matches(&id(Kind::Team, "Europe/Paris")));
        assert!(europe.matches(&id(Kind::Team, "Europe/Paris/North")));
        assert!(!europe.matches(&id(Kind::Team, "Europe")));
        assert!(!europe.matches(&id(Kind::Team, "Americas/Europe/X")));

        let exact = p("portal/web-support");
        assert!(exact.matches(&id(Kind::Portal, "web-support")));
        assert!(!exact.matches(&id(Kind::Portal, "web-support-2")));
        assert!(p("portal/*").matches(&id(Kind::Portal, "anything")));
        assert!(p("contact_group/key-*").matches(&id(Kind::ContactGroup, "key-accounts")));
    }

    #[test]
    fn logins_match_ignoring_case_and_other_keys_do_not() {
        assert!(
            p("representative/Camille*").matches(&id(Kind::Representative, "camille@x.example"))
        );
        assert!(p("manager/MARIE@*").matches(&id(Kind::Manager, "marie@x.example")));
        assert!(!p("team/europe").matches(&id(Kind::Team, "Europe")));
    }

    #[test]
    fn kinds_are_the_singular_names_and_an_unknown_one_is_refused_with_the_list() {
        assert_eq!(p("contact_group/x").kind, Kind::ContactGroup);
        assert_eq!(p("representatives/x").to_string(), "representative/x");
        let e = "agent/x".parse::<Pattern>().unwrap_err();
        assert!(e.contains("unknown kind `agent`"), "{e}");
        assert!(
            e.contains("representative") && e.contains("contact_group"),
            "{e}"
        );
        let e = "camille".parse::<Pattern>().unwrap_err();
        assert!(e.contains("is not KIND/KEY"), "{e}");
        let e = "team/".parse::<Pattern>().unwrap_err();
        assert!(e.contains("names no key"), "{e}");
        let e = "team/[Europe".parse::<Pattern>().unwrap_err();
        assert!(e.contains("not a valid glob"), "{e}");
    }

    #[test]
    fn a_target_pulls_in_what_it_depends_on_transitively_and_names_it() {
        let changes = [
            change(Kind::Portal, "web", Action::Create, &[]),
            change(Kind::Team, "Europe", Action::Create, &[]),
            change(Kind::Team, "Europe/Paris", Action::Create, &[1]),
            change(Kind::Team, "Asia", Action::Create, &[]),
            change(Kind::Representative, "a@x", Action::Create, &[0, 2]),
            change(Kind::Representative, "b@x", Action::Update, &[]),
        ];
        let refs: Vec<&Change> = changes.iter().collect();
        let f = filter(&["representative/a@x"], &[]);
        let sel = choose(&refs, &f);
        assert_eq!(sel.keep, [true, true, true, false, true, false]);
        assert_eq!(sel.pulled_in, [(0, 4), (1, 2), (2, 4)]);
        assert!(sel.refusals.is_empty() && sel.unmatched.is_empty());
        let part = partial(&f, &sel, &refs, changes.len());
        assert_eq!(part.left_out, 2);
        assert_eq!(part.targets, ["representative/a@x"]);
        assert_eq!(
            part.pulled_in[1],
            PulledIn {
                id: id(Kind::Team, "Europe"),
                action: Action::Create,
                needed_by: id(Kind::Team, "Europe/Paris"),
            }
        );
        assert_eq!(
            renumber(&sel.keep),
            [Some(0), Some(1), Some(2), None, Some(3), None]
        );
    }

    #[test]
    fn an_excluded_dependency_is_refused_naming_it_and_not_pulled_in() {
        let changes = [
            change(Kind::Team, "Europe", Action::Create, &[]),
            change(Kind::Representative, "a@x", Action::Create, &[0]),
            change(Kind::Representative, "b@x", Action::Create, &[0]),
        ];
        let refs: Vec<&Change> = changes.iter().collect();
        let sel = choose(&refs, &filter(&["representative/a@x"], &["team/*"]));
        assert_eq!(sel.keep, [false, true, false]);
        assert!(sel.pulled_in.is_empty());
        assert_eq!(sel.refusals.len(), 1);
        let r = &sel.refusals[0];
        assert_eq!(r.rule, RuleCode::TargetDependency);
        assert_eq!(r.id, id(Kind::Representative, "a@x"));
        assert_eq!(r.objects, [id(Kind::Team, "Europe")]);
        assert!(r.message.contains("`--exclude team/*`"), "{}", r.message);

        // Excluding only: everything else is kept, and a dependent of the excluded
        // change refuses the plan.
        let sel = choose(&refs, &filter(&[], &["team/Europe"]));
        assert_eq!(sel.keep, [false, true, true]);
        assert_eq!(sel.refusals.len(), 2);
    }

    #[test]
    fn an_excluded_removal_is_left_out_and_the_rest_kept() {
        let changes = [
            change(Kind::Representative, "a@x", Action::Update, &[]),
            change(Kind::Representative, "gone@x", Action::Deactivate, &[]),
            change(Kind::Team, "Old", Action::Delete, &[]),
        ];
        let refs: Vec<&Change> = changes.iter().collect();
        let sel = choose(&refs, &filter(&[], &["representative/gone@*"]));
        assert_eq!(sel.keep, [true, false, true]);
        assert!(sel.refusals.is_empty());
    }

    #[test]
    fn a_pattern_that_names_no_change_is_reported() {
        let changes = [change(Kind::Team, "Europe", Action::Create, &[])];
        let refs: Vec<&Change> = changes.iter().collect();
        let sel = choose(&refs, &filter(&["team/Asia*", "team/Eu*"], &["portal/*"]));
        assert_eq!(sel.unmatched, ["--target team/Asia*", "--exclude portal/*"]);
        assert_eq!(sel.keep, [true]);
    }
}
