//! A saved plan bound to what it was made against: the live system (endpoint and
//! account), the principal the token acts as (on [`Plan::principal`]), roster's version
//! and a digest of the declaration's files. `apply --plan` runs a plan only against the
//! same endpoint, account and principal ([`mismatches`]); given the declaration's paths
//! too, only when those files are still the ones the plan was made from.
//!
//! Pure: the command gives the endpoint's name, what it observed and the digest.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::model::{Kind, KindDigest, Observed, Principal};

use super::Plan;

/// What a plan was made against (`target` in the saved plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Target {
    /// The live API's base URL, or `embedded:<database>` for the embedded default (whose
    /// loopback port changes from run to run).
    pub endpoint: String,
    /// The account (work team) of the live system.
    pub account: String,
    /// The roster version that made the plan.
    pub roster_version: String,
    /// `sha256:` of the declaration's files: each path as given and its bytes, in the
    /// order they were read. Recorded in a saved plan (`plan --out`), not computed for a
    /// plan that is only shown (it reads every file again).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declaration: Option<String>,
    /// Where the live system's change feed stood when the plan read it, and the digest
    /// of what it read: `apply --plan` asks the feed what changed since, and a plan
    /// nothing changed for is current in one request. Absent when the live system has no
    /// feed for this token (a manager's, `--no-cache`): the stale check reads in full.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live: Option<LiveMark>,
}

/// The live state a plan was made from, as the change feed knows it ([`Target::live`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LiveMark {
    /// The feed's cursor at which the plan's read was whole.
    pub cursor: String,
    /// Per kind, the objects read and the sum of their versions.
    pub digest: BTreeMap<Kind, KindDigest>,
}

impl Target {
    pub fn new(endpoint: &str, observed: &Observed, declaration: Option<String>) -> Target {
        Target {
            endpoint: normalize(endpoint),
            account: observed.account.name.clone(),
            roster_version: env!("CARGO_PKG_VERSION").to_string(),
            declaration,
            live: observed.cursor.as_ref().map(|cursor| LiveMark {
                cursor: cursor.clone(),
                digest: observed.digest(),
            }),
        }
    }
}

/// Whether the change feed shows the live system as the plan saw it: nothing committed
/// since the plan's cursor (`changed` keys: none) and the same digest. A plan without
/// a [`LiveMark`] is never current by this test (the full read decides).
pub fn unchanged(plan: &Plan, changed: usize, digest: &BTreeMap<Kind, KindDigest>) -> bool {
    let Some(mark) = plan.target.as_ref().and_then(|t| t.live.as_ref()) else {
        return false;
    };
    changed == 0 && crate::model::digest_mismatch(&mark.digest, digest).is_none()
}

fn normalize(endpoint: &str) -> String {
    endpoint.trim().trim_end_matches('/').to_string()
}

/// The digest of a declaration: `files` are (path as given, contents), in load order.
pub fn digest<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> String {
    let mut h = Sha256::new();
    for (path, bytes) in files {
        h.update((path.len() as u64).to_le_bytes());
        h.update(path.as_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    }
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

fn principal_name(p: Option<&Principal>) -> String {
    match p {
        Some(Principal::Administrator { login }) => format!("administrator {login}"),
        Some(Principal::Manager { login }) => format!("manager {login}"),
        None => "an unknown principal".to_string(),
    }
}

/// Why `plan` may not run against `endpoint` as `observed` shows it, with the
/// declaration now digesting to `declaration` (when the paths were given): one line
/// per difference, empty when it may.
pub fn mismatches(
    plan: &Plan,
    endpoint: &str,
    observed: &Observed,
    declaration: Option<&str>,
) -> Vec<String> {
    let Some(t) = &plan.target else {
        return vec![
            "the saved plan does not record what it was made against (an older roster made it)"
                .to_string(),
        ];
    };
    let mut out = Vec::new();
    let endpoint = normalize(endpoint);
    if t.endpoint != endpoint {
        out.push(format!(
            "it was made against {}, not {endpoint}",
            t.endpoint
        ));
    }
    if t.account != observed.account.name {
        out.push(format!(
            "it was made for the account `{}`, the live system is the account `{}`",
            t.account, observed.account.name
        ));
    }
    if plan.principal != observed.principal {
        out.push(format!(
            "it was made as {}, the token acts as {}",
            principal_name(plan.principal.as_ref()),
            principal_name(observed.principal.as_ref())
        ));
    }
    if let Some(d) = declaration
        && Some(d) != t.declaration.as_deref()
    {
        out.push("the declaration's files are not the ones the plan was made from".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Account;

    fn observed(account: &str, principal: Option<Principal>) -> Observed {
        Observed {
            account: Account {
                name: account.to_string(),
                seats: 10,
                operators: None,
                users: None,
                password_policy: None,
                version: 1,
            },
            principal,
            ..Observed::default()
        }
    }

    fn admin(login: &str) -> Option<Principal> {
        Some(Principal::Administrator {
            login: String::from(login),
        })
    }

    fn saved(o: &Observed) -> Plan {
        Plan {
            format_version: crate::plan::PLAN_FORMAT_VERSION,
            principal: o.principal.clone(),
            target: Some(Target::new(
                "http://h:1/",
                o,
                Some(digest([("a.yaml", &b"x"[..])])),
            )),
            refusals: vec![],
            changes: vec![],
            summary: Default::default(),
            unmanaged: vec![],
            out_of_scope: vec![],
            warnings: vec![],
            partial: None,
            seats: None,
            group_shares: vec![],
            effects: vec![],
            fingerprint: Default::default(),
            server_checked: false,
        }
    }

    #[test]
    fn the_same_target_matches_and_each_difference_is_named() {
        let o = observed("ACME", admin("root@acme.example"));
        let plan = saved(&o);
        let d = digest([("a.yaml", &b"x"[..])]);
        assert!(mismatches(&plan, "http://h:1", &o, Some(&d)).is_empty());

        let other = mismatches(&plan, "http://h:2", &o, None);
        assert_eq!(other.len(), 1, "{other:?}");
        assert!(other[0].contains("http://h:1") && other[0].contains("http://h:2"));

        let o2 = observed(
            "Other",
            Some(Principal::Manager {
                login: String::from("m@acme.example"),
            }),
        );
        let both = mismatches(&plan, "http://h:1", &o2, None);
        assert_eq!(both.len(), 2, "{both:?}");
        assert!(both[1].contains("administrator root@acme.example"));
        assert!(both[1].contains("manager m@acme.example"));

        let changed = digest([("a.yaml", &b"y"[..])]);
        assert_eq!(mismatches(&plan, "http://h:1", &o, Some(&changed)).len(), 1);
    }

    #[test]
    fn a_plan_is_unchanged_only_with_its_mark_no_change_since_and_the_same_digest() {
        let mut o = observed("ACME", admin("root@acme.example"));
        o.versions
            .insert(crate::model::ObjectId::new(Kind::Portal, "web"), 3);
        let mut plan = saved(&o);
        let digest = o.digest();
        assert!(!unchanged(&plan, 0, &digest), "no cursor was read: no mark");
        o.cursor = Some("e.7".into());
        plan.target = Some(Target::new("http://h:1/", &o, None));
        let mark = plan.target.as_ref().unwrap().live.clone().unwrap();
        assert_eq!(mark.cursor, "e.7");
        assert_eq!(
            mark.digest[&Kind::Portal],
            KindDigest {
                count: 1,
                versions: 3
            }
        );
        assert!(unchanged(&plan, 0, &digest));
        let mut with_zeros = digest.clone();
        with_zeros.insert(Kind::Team, KindDigest::default());
        assert!(unchanged(&plan, 0, &with_zeros), "a kind with none is none");
        assert!(!unchanged(&plan, 1, &digest), "a key changed since");
        let mut moved = digest.clone();
        moved.get_mut(&Kind::Portal).unwrap().versions += 1;
        assert!(!unchanged(&plan, 0, &moved), "a write the feed missed");
    }

    #[test]
    fn a_plan_without_target_is_refused_and_the_digest_sees_paths_and_bytes() {
        let o = observed("ACME", None);
        let mut plan = saved(&o);
        plan.target = None;
        assert_eq!(mismatches(&plan, "http://h:1", &o, None).len(), 1);
        let ab = digest([("a", &b"b"[..])]);
        assert_ne!(ab, digest([("ab", &b""[..])]), "lengths delimit");
        assert_ne!(ab, digest([("a", &b"c"[..])]));
        assert!(ab.starts_with("sha256:") && ab.len() == 7 + 64);
    }
}
