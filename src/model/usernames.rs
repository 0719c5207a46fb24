//! User-name rules shared by the loader, the planner and the reference server: the
//! default user name of a representative (ASCII folding, first letter + last name),
//! and numbering to make it unique (`jdoe`, `jdoe2`).
//!
//! Here rather than in `config` because `plan` (keeping live names, naming newcomers)
//! and `server` (naming a representative created without one) must derive exactly the
//! names the loader does, without depending on the YAML loader.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Login, Representative};

/// Appends the ASCII letters and digits of `s`, lower-cased, at most `limit` of them.
fn push_alnum_lower(out: &mut String, s: &str, limit: usize) {
    out.extend(
        s.chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .take(limit),
    );
}

/// The ASCII form of a text (itself when already ASCII: no allocation).
fn ascii_fold(s: &str) -> std::borrow::Cow<'_, str> {
    if s.is_ascii() {
        std::borrow::Cow::Borrowed(s)
    } else {
        std::borrow::Cow::Owned(deunicode::deunicode(s))
    }
}

/// The default user name: the first letter of the first name and the whole last name,
/// ASCII-folded, lower case, letters and digits only; the login's local part when the
/// names have no ASCII form. Not yet made unique (see [`assign_usernames`]).
pub fn default_username(first_name: &str, last_name: &str, login: &str) -> String {
    let last = ascii_fold(last_name);
    let mut base = String::with_capacity(last.len() + 1);
    push_alnum_lower(&mut base, &ascii_fold(first_name), 1);
    let first_len = base.len();
    push_alnum_lower(&mut base, &last, usize::MAX);
    if base.is_empty() || base.len() == first_len {
        let local = login.split('@').next().unwrap_or(login);
        let mut folded = String::new();
        push_alnum_lower(&mut folded, &ascii_fold(local), usize::MAX);
        if !folded.is_empty() {
            return folded;
        }
    }
    if base.is_empty() { "user".into() } else { base }
}

/// The default user name of every representative without a declared one, in login
/// order (`None` for those that declare one). The folding is the costly part and
/// independent per representative: computed in parallel, and before
/// [`assign_usernames`] so that it can overlap the rules (which read the declared names).
pub fn username_bases(reps: &BTreeMap<Login, Representative>) -> Vec<Option<String>> {
    use rayon::prelude::*;
    let all: Vec<&Representative> = reps.values().collect();
    all.par_iter()
        .map(|r| {
            r.username
                .is_none()
                .then(|| default_username(&r.first_name, &r.last_name, &r.login))
        })
        .collect()
}

/// Fills every missing `username`: the default, made unique against every user name,
/// declared or derived, by appending 2, 3, … (`jdoe`, `jdoe2`). Representatives are
/// taken in login order, so the result does not depend on how files are split.
///
/// These are the names a representative gets on a system that does not hold it yet; a
/// plan keeps the live name of one that exists (`plan::make` settles it first).
pub fn assign_usernames(reps: &mut BTreeMap<Login, Representative>) {
    let bases = username_bases(reps);
    assign_usernames_from(reps, bases);
}

/// [`assign_usernames`] with the bases already computed by [`username_bases`] over the
/// same map.
pub fn assign_usernames_from(
    reps: &mut BTreeMap<Login, Representative>,
    bases: Vec<Option<String>>,
) {
    let mut pool = UsernamePool::with_capacity(bases.len());
    for name in reps.values().filter_map(|r| r.username.as_deref()) {
        pool.take(name);
    }
    for (r, base) in reps.values_mut().zip(bases) {
        if let Some(base) = base {
            r.username = Some(pool.claim(base));
        }
    }
}

/// User names in use (compared ignoring case) and, per default name, the next number to
/// try, so that a common name costs O(1) per representative.
#[derive(Debug, Default)]
pub struct UsernamePool {
    taken: HashSet<String>,
    next: HashMap<String, u64>,
}

impl UsernamePool {
    pub fn with_capacity(n: usize) -> Self {
        UsernamePool {
            taken: HashSet::with_capacity(n),
            next: HashMap::new(),
        }
    }

    /// Marks a name as in use.
    pub fn take(&mut self, name: &str) {
        self.taken.insert(name.to_lowercase());
    }

    /// Whether a name is in use (ignoring case).
    pub fn holds(&self, name: &str) -> bool {
        if name.bytes().any(|b| b.is_ascii_uppercase()) || !name.is_ascii() {
            self.taken.contains(&name.to_lowercase())
        } else {
            self.taken.contains(name)
        }
    }

    /// `base` when free, else the first free of `base2`, `base3`, …; marks it in use.
    /// `base` is lower case (as [`default_username`] makes it).
    pub fn claim(&mut self, base: String) -> String {
        let mut n = self.next.get(&base).copied().unwrap_or(1);
        let mut candidate = if n == 1 {
            base.clone()
        } else {
            format!("{base}{n}")
        };
        while self.taken.contains(&candidate) {
            n += 1;
            candidate = format!("{base}{n}");
        }
        self.next.insert(base, n + 1);
        self.taken.insert(candidate.clone());
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_default_fold_and_deduplicate() {
        assert_eq!(default_username("John", "Doe", "x@y"), "jdoe");
        assert_eq!(
            default_username("Élodie", "Ñúñez-García", "x@y"),
            "enunezgarcia"
        );
        assert_eq!(
            default_username("\u{E000}", "\u{E001}", "Zoë.K@acme.example"),
            "zoek"
        );
        let mut a = crate::model::testing::rep("a@x.example", None);
        a.username = Some("jdoe".into());
        let b = crate::model::testing::rep("b@x.example", None);
        let c = crate::model::testing::rep("c@x.example", None);
        let mut reps: std::collections::BTreeMap<_, _> = [a, b, c]
            .into_iter()
            .map(|r| (r.login.clone(), r))
            .collect();
        assign_usernames(&mut reps);
        let names: Vec<_> = reps.values().map(|r| r.username.clone().unwrap()).collect();
        assert_eq!(names, vec!["jdoe", "jdoe2", "jdoe3"]);
    }
}
