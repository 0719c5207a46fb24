//! The account's password policy (seed 001: "the account's password policy still
//! applies"): what every password stored must meet. One check, [`PasswordPolicy::check`],
//! asked by `plan` (each password it would send, against the effective policy) and by
//! the server (each password it stores). Its breaks name the rule, never the value.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn default_min_length() -> u32 {
    PasswordPolicy::DEFAULT_MIN_LENGTH
}
fn yes() -> bool {
    true
}

/// The password policy of the account. Declared under `account.password_policy`, a
/// field left out takes its default: at least 12 characters, a lower-case letter, an
/// upper-case letter and a digit, no symbol required, and never the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordPolicy {
    /// The fewest characters a password has (default 12).
    #[serde(default = "default_min_length")]
    #[schemars(range(min = 1, max = 128))]
    pub min_length: u32,
    /// A lower-case letter is required (default true).
    #[serde(default = "yes")]
    pub require_lowercase: bool,
    /// An upper-case letter is required (default true).
    #[serde(default = "yes")]
    pub require_uppercase: bool,
    /// A digit is required (default true).
    #[serde(default = "yes")]
    pub require_digit: bool,
    /// A symbol (neither letter, digit nor space) is required (default false).
    #[serde(default)]
    pub require_symbol: bool,
    /// The password may not contain the login, nor its local part (before `@`) when
    /// that has 3 characters or more, ignoring case (default true).
    #[serde(default = "yes")]
    pub forbid_login: bool,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        PasswordPolicy {
            min_length: Self::DEFAULT_MIN_LENGTH,
            require_lowercase: true,
            require_uppercase: true,
            require_digit: true,
            require_symbol: false,
            forbid_login: true,
        }
    }
}

/// One rule of the policy a password breaks. Its text names the rule, never the value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyBreak {
    /// Fewer characters than `min_length` (the policy's minimum).
    TooShort {
        min_length: u32,
    },
    NoLowercase,
    NoUppercase,
    NoDigit,
    NoSymbol,
    /// It contains the login (or its local part).
    ContainsLogin,
}

impl PolicyBreak {
    /// The policy field the break is about (`min_length`, `require_digit`, …).
    pub fn rule(self) -> &'static str {
        match self {
            PolicyBreak::TooShort { .. } => "min_length",
            PolicyBreak::NoLowercase => "require_lowercase",
            PolicyBreak::NoUppercase => "require_uppercase",
            PolicyBreak::NoDigit => "require_digit",
            PolicyBreak::NoSymbol => "require_symbol",
            PolicyBreak::ContainsLogin => "forbid_login",
        }
    }
}

impl fmt::Display for PolicyBreak {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyBreak::TooShort { min_length } => {
                write!(f, "it has fewer than {min_length} characters")
            }
            PolicyBreak::NoLowercase => f.write_str("it has no lower-case letter"),
            PolicyBreak::NoUppercase => f.write_str("it has no upper-case letter"),
            PolicyBreak::NoDigit => f.write_str("it has no digit"),
            PolicyBreak::NoSymbol => f.write_str("it has no symbol"),
            PolicyBreak::ContainsLogin => f.write_str("it contains the login"),
        }
    }
}

/// The breaks as one sentence: `it has no digit (require_digit); it contains the login
/// (forbid_login)`. Never the value.
pub fn describe(breaks: &[PolicyBreak]) -> String {
    breaks
        .iter()
        .map(|b| format!("{b} ({})", b.rule()))
        .collect::<Vec<_>>()
        .join("; ")
}

impl PasswordPolicy {
    pub const DEFAULT_MIN_LENGTH: u32 = 12;
    /// What `min_length` may be (the schema's range says the same).
    pub const MIN_LENGTHS: std::ops::RangeInclusive<u32> = 1..=128;

    /// Why this policy cannot be the account's (`min_length` out of range), if it cannot:
    /// asked by the loader and by `PATCH /v1/account`.
    pub fn problem(&self) -> Option<String> {
        (!Self::MIN_LENGTHS.contains(&self.min_length)).then(|| {
            format!(
                "`min_length` is between {} and {}",
                Self::MIN_LENGTHS.start(),
                Self::MIN_LENGTHS.end()
            )
        })
    }

    /// No restriction beyond a non-empty password: the policy of an account that never
    /// declared one (a new live account, a live system that reports none), so that
    /// declaring a policy is what turns it on.
    pub const fn unrestricted() -> Self {
        PasswordPolicy {
            min_length: 1,
            require_lowercase: false,
            require_uppercase: false,
            require_digit: false,
            require_symbol: false,
            forbid_login: false,
        }
    }

    /// Every rule `password` breaks for the account `login`, in a fixed order; empty
    /// when it meets the policy. The breaks never carry the value.
    pub fn check(&self, password: &str, login: &str) -> Vec<PolicyBreak> {
        let mut out = Vec::new();
        if (password.chars().count() as u64) < u64::from(self.min_length) {
            out.push(PolicyBreak::TooShort {
                min_length: self.min_length,
            });
        }
        let has = |f: fn(&char) -> bool| password.chars().any(|c| f(&c));
        if self.require_lowercase && !has(|c| c.is_lowercase()) {
            out.push(PolicyBreak::NoLowercase);
        }
        if self.require_uppercase && !has(|c| c.is_uppercase()) {
            out.push(PolicyBreak::NoUppercase);
        }
        if self.require_digit && !has(|c| c.is_ascii_digit()) {
            out.push(PolicyBreak::NoDigit);
        }
        if self.require_symbol && !has(|c| !c.is_alphanumeric() && !c.is_whitespace()) {
            out.push(PolicyBreak::NoSymbol);
        }
        if self.forbid_login && contains_login(password, login) {
            out.push(PolicyBreak::ContainsLogin);
        }
        out
    }
}

fn contains_login(password: &str, login: &str) -> bool {
    let password = password.to_lowercase();
    let login = login.trim().to_lowercase();
    if login.is_empty() {
        return false;
    }
    let local = login.split('@').next().unwrap_or_default();
    password.contains(&login) || (local.chars().count() >= 3 && password.contains(local))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_range_of_min_length_is_min_lengths() {
        let schema = schemars::schema_for!(PasswordPolicy);
        let m = &schema.as_value()["properties"]["min_length"];
        let r = PasswordPolicy::MIN_LENGTHS;
        assert_eq!(
            (m["minimum"].as_u64(), m["maximum"].as_u64()),
            (Some(u64::from(*r.start())), Some(u64::from(*r.end())))
        );
        let p = |min_length| PasswordPolicy {
            min_length,
            ..PasswordPolicy::default()
        };
        assert!(p(0).problem().is_some() && p(129).problem().is_some());
        assert!(p(1).problem().is_none() && p(128).problem().is_none());
    }

    const LOGIN: &str = "jdoe@acme.example";

    #[test]
    fn a_compliant_password_breaks_nothing() {
        assert!(
            PasswordPolicy::default()
                .check("Correct-Horse-9", LOGIN)
                .is_empty()
        );
    }

    #[test]
    fn every_broken_rule_is_listed_in_order() {
        let p = PasswordPolicy {
            require_symbol: true,
            ..PasswordPolicy::default()
        };
        assert_eq!(
            p.check("jdoe", LOGIN),
            vec![
                PolicyBreak::TooShort { min_length: 12 },
                PolicyBreak::NoUppercase,
                PolicyBreak::NoDigit,
                PolicyBreak::NoSymbol,
                PolicyBreak::ContainsLogin,
            ]
        );
        assert_eq!(
            p.check("ALLUPPERCASE1!", LOGIN),
            vec![PolicyBreak::NoLowercase]
        );
    }

    #[test]
    fn the_login_and_its_local_part_are_refused_ignoring_case() {
        let p = PasswordPolicy::default();
        assert_eq!(
            p.check("Xx9-JDoe@Acme.Example", LOGIN),
            vec![PolicyBreak::ContainsLogin]
        );
        assert_eq!(
            p.check("Hello-JDOE-2026", LOGIN),
            vec![PolicyBreak::ContainsLogin]
        );
        // A local part under 3 characters is too common to forbid.
        assert!(p.check("Welcome-ab-2026", "ab@x.example").is_empty());
        let off = PasswordPolicy {
            forbid_login: false,
            ..p
        };
        assert!(off.check("Hello-JDOE-2026", LOGIN).is_empty());
    }

    #[test]
    fn length_counts_characters_not_bytes() {
        let p = PasswordPolicy {
            min_length: 4,
            ..PasswordPolicy::unrestricted()
        };
        assert!(p.check("éééé", LOGIN).is_empty());
        assert_eq!(
            p.check("ééé", LOGIN),
            vec![PolicyBreak::TooShort { min_length: 4 }]
        );
    }

    #[test]
    fn unrestricted_takes_any_non_empty_password() {
        assert!(PasswordPolicy::unrestricted().check("a", LOGIN).is_empty());
        assert!(
            PasswordPolicy::unrestricted()
                .check(LOGIN, LOGIN)
                .is_empty()
        );
    }

    #[test]
    fn messages_never_hold_the_value() {
        let value = "jdoe";
        let breaks = PasswordPolicy::default().check(value, LOGIN);
        let text = describe(&breaks);
        assert!(!text.contains(value), "{text}");
        assert!(text.contains("min_length") && text.contains("forbid_login"));
    }

    #[test]
    fn declared_fields_left_out_take_the_defaults() {
        let p: PasswordPolicy = serde_json::from_str(r#"{"min_length": 16}"#).unwrap();
        assert_eq!(
            p,
            PasswordPolicy {
                min_length: 16,
                ..PasswordPolicy::default()
            }
        );
    }
}
