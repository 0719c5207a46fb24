//! `roster access --expect`: assertions over effective permissions that a CI job can
//! run, in a tiny grammar (one expectation per `--expect`):
//!
//! ```text
//! SUBJECT only-within TEAM[,TEAM…]   every holder sits in one of these teams (or below)
//! SUBJECT at-most N                  no more than N people hold it
//! SUBJECT at-least N                 at least N people hold it
//! LOGIN holds SUBJECT                this person holds it
//! LOGIN lacks SUBJECT                this person does not hold it
//! ```
//!
//! SUBJECT is a feature or team-right id (`session_replay` means both the feature and
//! the team right of that name), or `feature:ID` / `right:ID` for one of them. A holder
//! of a feature is a representative holding it in effect (its team is where it sits); of
//! a team right, a manager (its assigned teams are where it sits, all of them must be
//! within). Administrators hold every right account-wide and are not counted.
//!
//! A malformed expectation is a usage error ([`Expectation::parse`]'s message); a
//! well-formed one that fails names who breaks it ([`Outcome`]).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Access, Subject};

/// One parsed `--expect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// As written (whitespace normalised).
    pub text: String,
    pub rule: Rule,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    OnlyWithin(Subject, Vec<String>),
    AtMost(Subject, usize),
    AtLeast(Subject, usize),
    Holds(String, Subject),
    Lacks(String, Subject),
}

const GRAMMAR: &str = "write `SUBJECT only-within TEAM[,TEAM…]`, `SUBJECT at-most N`, \
                       `SUBJECT at-least N`, `LOGIN holds SUBJECT` or `LOGIN lacks SUBJECT`";

impl std::str::FromStr for Expectation {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expectation::parse(s)
    }
}

impl Expectation {
    pub fn parse(s: &str) -> Result<Expectation, String> {
        let words: Vec<&str> = s.split_whitespace().collect();
        let bad = |why: String| format!("expectation `{}`: {why}", words.join(" "));
        let [a, verb, b] = words[..] else {
            return Err(bad(format!(
                "expected three words, found {}; {GRAMMAR}",
                words.len()
            )));
        };
        let subject = |x: &str| Subject::parse(x).map_err(&bad);
        let count = |x: &str| {
            x.parse::<usize>()
                .map_err(|_| bad(format!("`{x}` is not a count (a whole number)")))
        };
        let rule = match verb {
            "only-within" => {
                let teams: Vec<String> = b
                    .split(',')
                    .map(|t| t.trim().trim_end_matches('/').to_string())
                    .collect();
                if teams.iter().any(String::is_empty) {
                    return Err(bad(format!("`{b}` holds an empty team path")));
                }
                Rule::OnlyWithin(subject(a)?, teams)
            }
            "at-most" => Rule::AtMost(subject(a)?, count(b)?),
            "at-least" => Rule::AtLeast(subject(a)?, count(b)?),
            "holds" => Rule::Holds(a.to_lowercase(), subject(b)?),
            "lacks" => Rule::Lacks(a.to_lowercase(), subject(b)?),
            other => return Err(bad(format!("unknown verb `{other}`; {GRAMMAR}"))),
        };
        Ok(Expectation {
            text: words.join(" "),
            rule,
        })
    }

    /// Judges the expectation against `access` (the whole organization, never a
    /// filtered view); `teams` says whether a team path exists.
    pub fn judge(&self, access: &Access, teams: &dyn Fn(&str) -> bool) -> Outcome {
        let mut breakers = Vec::new();
        let mut problem = None;
        match &self.rule {
            Rule::OnlyWithin(what, within) => {
                if let Some(t) = within.iter().find(|t| !teams(t)) {
                    problem = Some(format!("there is no team {t}"));
                }
                for (login, h) in access.holders(*what) {
                    if !h.only_within(within) {
                        breakers.push(Breaker {
                            login: login.to_string(),
                            place: h.place(),
                        });
                    }
                }
                if !breakers.is_empty() {
                    problem = Some(format!(
                        "{} outside {}",
                        held_by(breakers.len()),
                        within.join(", ")
                    ));
                }
            }
            Rule::AtMost(what, n) | Rule::AtLeast(what, n) => {
                let holders = access.holders(*what);
                let over = matches!(self.rule, Rule::AtMost(..)) && holders.len() > *n;
                let under = matches!(self.rule, Rule::AtLeast(..)) && holders.len() < *n;
                if over || under {
                    problem = Some(held_by(holders.len()));
                    if over {
                        breakers = holders
                            .iter()
                            .map(|(l, h)| Breaker {
                                login: l.to_string(),
                                place: h.place(),
                            })
                            .collect();
                    }
                }
            }
            Rule::Holds(login, what) | Rule::Lacks(login, what) => {
                let holds = access.holds(login, *what);
                if !access.knows(login) {
                    problem = Some(format!("there is no representative or manager {login}"));
                } else if matches!(self.rule, Rule::Holds(..)) && !holds {
                    problem = Some(format!("{login} does not hold {what}"));
                } else if matches!(self.rule, Rule::Lacks(..)) && holds {
                    problem = Some(format!("{login} holds {what}"));
                    if let Some(h) = access.holders(*what).get(login.as_str()) {
                        breakers.push(Breaker {
                            login: login.clone(),
                            place: h.place(),
                        });
                    }
                }
            }
        }
        Outcome {
            expect: self.text.clone(),
            ok: problem.is_none(),
            problem,
            breakers,
        }
    }
}

fn held_by(n: usize) -> String {
    match n {
        0 => "nobody holds it".into(),
        1 => "1 person holds it".into(),
        n => format!("{n} people hold it"),
    }
}

/// The result of one expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// The expectation as written.
    pub expect: String,
    pub ok: bool,
    /// Why it fails; absent when it holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// Who breaks it, in login order, with where they hold it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub breakers: Vec<Breaker>,
}

/// Someone who breaks an expectation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Breaker {
    pub login: String,
    /// Their team, or the teams they manage.
    pub place: String,
}
