//! The fast path: YAML events straight into a typed [`Declaration`], without a tree.
//!
//! Building a `serde_json::Value` per file, validating it and deserializing it costs
//! several times the parse itself (allocation dominates). Files are valid far more often
//! than not, so each file is first tried here: a serde `Deserializer` over saphyr events
//! with the same YAML 1.2 core-schema resolution, followed by typed checks for what the
//! JSON Schema checks beyond the types (e-mail format, patterns, ranges, unique list
//! items). It is a conservative filter: on anything unusual (aliases, anchors, tags,
//! duplicate keys, unknown fields, a wrong type, any failed check) it gives up and the
//! loader takes the slow path (tree → JSON Schema → diagnostics), which alone reports
//! problems. A file accepted here is therefore one the schema accepts.

use std::collections::BTreeSet;
use std::fmt;

use saphyr_parser::{Event, Parser, ScalarStyle, StrInput};
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};
use serde_json::Value;

use crate::model::shape::Shape::{Email, Key, Language, TeamName, Username};
use crate::model::{Declaration, Kind, SecretRef, TeamDecl};

use super::yaml::resolve_plain;

/// Gives up; the reason does not matter (the slow path explains).
#[derive(Debug)]
struct GiveUp;

impl fmt::Display for GiveUp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not on the fast path")
    }
}
impl std::error::Error for GiveUp {}
impl de::Error for GiveUp {
    fn custom<T: fmt::Display>(_: T) -> Self {
        GiveUp
    }
}

type R<T> = Result<T, GiveUp>;

struct De<'a> {
    parser: Parser<'a, StrInput<'a>>,
    peeked: Option<Event<'a>>,
    root_seen: bool,
    sections: BTreeSet<Kind>,
}

impl<'a> De<'a> {
    fn pull(&mut self) -> R<Event<'a>> {
        match self.parser.next_event() {
            Some(Ok((ev, _))) => match &ev {
                Event::Alias(_) => Err(GiveUp),
                Event::Scalar(_, _, anchor, tag) if *anchor != 0 || tag.is_some() => Err(GiveUp),
                Event::SequenceStart(anchor, tag) | Event::MappingStart(anchor, tag)
                    if *anchor != 0 || tag.is_some() =>
                {
                    Err(GiveUp)
                }
                _ => Ok(ev),
            },
            _ => Err(GiveUp),
        }
    }
    fn next(&mut self) -> R<Event<'a>> {
        match self.peeked.take() {
            Some(e) => Ok(e),
            None => self.pull(),
        }
    }
    fn peek(&mut self) -> R<&Event<'a>> {
        if self.peeked.is_none() {
            self.peeked = Some(self.pull()?);
        }
        self.peeked.as_ref().ok_or(GiveUp)
    }
}

impl<'de> de::Deserializer<'de> for &mut De<'_> {
    type Error = GiveUp;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.next()? {
            // Most scalars are plain text: skip the core-schema resolution (which copies
            // the text into a `Value`) when no null, boolean or number can start so.
            Event::Scalar(text, ScalarStyle::Plain, ..) if !maybe_not_text(&text) => {
                visitor.visit_str(&text)
            }
            Event::Scalar(text, ScalarStyle::Plain, ..) => match resolve_plain(&text) {
                Value::Null => visitor.visit_unit(),
                Value::Bool(b) => visitor.visit_bool(b),
                Value::Number(n) => {
                    if let Some(u) = n.as_u64() {
                        visitor.visit_u64(u)
                    } else if let Some(i) = n.as_i64() {
                        visitor.visit_i64(i)
                    } else {
                        visitor.visit_f64(n.as_f64().ok_or(GiveUp)?)
                    }
                }
                _ => visitor.visit_str(&text),
            },
            Event::Scalar(text, ..) => visitor.visit_str(&text),
            Event::SequenceStart(..) => visitor.visit_seq(Seq {
                de: self,
                seen: Vec::new(),
            }),
            Event::MappingStart(..) => {
                let top = !self.root_seen;
                self.root_seen = true;
                visitor.visit_map(Map {
                    de: self,
                    top,
                    keys: None,
                })
            }
            _ => Err(GiveUp),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        if let Event::Scalar(text, ScalarStyle::Plain, ..) = self.peek()? {
            if is_null(text) {
                self.next()?;
                return visitor.visit_none();
            }
        }
        visitor.visit_some(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> R<V::Value> {
        match self.next()? {
            Event::Scalar(text, ..) => visitor.visit_enum(
                IntoDeserializer::<GiveUp>::into_deserializer(text.into_owned()),
            ),
            _ => Err(GiveUp),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> R<V::Value> {
        match self.next()? {
            // Free-form maps (`shared_with`) must refuse repeated keys themselves.
            Event::MappingStart(..) => visitor.visit_map(Map {
                de: self,
                top: false,
                keys: Some(Vec::new()),
            }),
            _ => Err(GiveUp),
        }
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct newtype_struct seq tuple
        tuple_struct struct identifier ignored_any
    }
}

/// Whether a plain scalar may resolve to something other than a string under the YAML 1.2
/// core schema ([`resolve_plain`]): nulls (``, `~`, `null`), booleans (`true`, `false`),
/// and numbers, which all start with a digit, a sign or a dot (`.inf`, `.nan`).
fn maybe_not_text(s: &str) -> bool {
    match s.as_bytes().first() {
        None => true,
        Some(c) => matches!(
            c,
            b'~' | b'n' | b'N' | b't' | b'T' | b'f' | b'F' | b'.' | b'+' | b'-' | b'0'..=b'9'
        ),
    }
}

/// Whether a plain scalar is a core-schema null (as [`resolve_plain`] decides).
fn is_null(s: &str) -> bool {
    matches!(s, "" | "~" | "null" | "Null" | "NULL")
}

struct Seq<'s, 'a> {
    de: &'s mut De<'a>,
    /// Hashes of the scalar items so far: the schema's `uniqueItems` (every scalar list
    /// of a declaration is a set).
    seen: Vec<u64>,
}

impl<'de> SeqAccess<'de> for Seq<'_, '_> {
    type Error = GiveUp;
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> R<Option<T::Value>> {
        match self.de.peek()? {
            Event::SequenceEnd => {
                self.de.next()?;
                Ok(None)
            }
            Event::Scalar(text, ..) => {
                // Hashes, not copies: a collision only sends the file to the slow path.
                let h = hash(text);
                if self.seen.contains(&h) {
                    return Err(GiveUp);
                }
                self.seen.push(h);
                seed.deserialize(&mut *self.de).map(Some)
            }
            _ => seed.deserialize(&mut *self.de).map(Some),
        }
    }
}

/// FNV-1a: short list items hash several times faster than with SipHash, and nothing
/// here needs resistance to chosen collisions (one only costs the slow path).
fn hash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

struct Map<'s, 'a> {
    de: &'s mut De<'a>,
    top: bool,
    keys: Option<Vec<String>>,
}

impl<'de> MapAccess<'de> for Map<'_, '_> {
    type Error = GiveUp;
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> R<Option<K::Value>> {
        match self.de.peek()? {
            Event::MappingEnd => {
                self.de.next()?;
                Ok(None)
            }
            Event::Scalar(text, ..) => {
                let kind = if self.top {
                    Kind::from_name(text)
                } else {
                    None
                };
                if let Some(keys) = &mut self.keys {
                    if keys.iter().any(|k| k == text.as_ref()) {
                        return Err(GiveUp);
                    }
                    keys.push(text.to_string());
                }
                if let Some(k) = kind {
                    self.de.sections.insert(k);
                }
                seed.deserialize(&mut *self.de).map(Some)
            }
            _ => Err(GiveUp),
        }
    }
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> R<V::Value> {
        seed.deserialize(&mut *self.de)
    }
}

/// A typed declaration and the sections the file names, or `None` when the file needs
/// the slow path (problems, or YAML features the fast path does not handle).
pub(crate) fn declaration(src: &str) -> Option<(Declaration, BTreeSet<Kind>)> {
    let mut de = De {
        parser: Parser::new_from_str(src),
        peeked: None,
        root_seen: false,
        sections: BTreeSet::new(),
    };
    if !matches!(de.next().ok()?, Event::StreamStart) {
        return None;
    }
    if !matches!(de.next().ok()?, Event::DocumentStart(_)) {
        return None;
    }
    if !matches!(de.peek().ok()?, Event::MappingStart(..)) {
        return None;
    }
    let decl = Declaration::deserialize(&mut de).ok()?;
    // One document only.
    loop {
        match de.next().ok()? {
            Event::DocumentEnd => {}
            Event::StreamEnd => break,
            _ => return None,
        }
    }
    checks(&decl).then_some((decl, de.sections))
}

fn secret_ok(s: &Option<Box<SecretRef>>) -> bool {
    s.as_ref().is_none_or(|s| s.value.is_none())
}

fn teams_ok(teams: &[TeamDecl]) -> bool {
    teams
        .iter()
        .all(|t| TeamName.holds(&t.name) && t.max_active_logins != Some(0) && teams_ok(&t.teams))
}

/// What the JSON Schema checks beyond what the types enforce: the field shapes are
/// `model::shape`'s, the very patterns and lengths the schema holds.
fn checks(d: &Declaration) -> bool {
    use crate::model::catalog::{MULTISESSION_MAX, MULTISESSION_MIN};
    d.version.is_none_or(|v| v == 1)
        && d.policy
            .as_ref()
            .is_none_or(|p| p.removal_threshold.percent <= 100)
        && d.account.as_ref().is_none_or(|a| {
            a.name
                .as_deref()
                .is_none_or(|n| !crate::model::is_blank_account_name(n))
                && a.password_policy.is_none_or(|p| p.problem().is_none())
        })
        && teams_ok(&d.teams)
        && d.portals.iter().all(|p| Key.holds(&p.name))
        && (d.administrators.iter()).all(|a| {
            Key.holds(&a.login)
                && Email.holds(&a.email)
                && Language.holds(&a.language)
                && secret_ok(&a.password)
        })
        && d.managers.iter().all(|m| {
            Email.holds(&m.login) && Email.holds(&m.email) && secret_ok(&m.password)
        })
        && d.representatives.iter().all(|r| {
            Key.holds(&r.login)
                && Email.holds(&r.email)
                && Language.holds(&r.language)
                && r.username.as_deref().is_none_or(|u| Username.holds(u))
                && (MULTISESSION_MIN..=MULTISESSION_MAX).contains(&r.multisession)
                && secret_ok(&r.password)
                && !r.features.contains(&crate::model::Feature::Multisession)
        })
        && d.portals.iter().all(|p| {
            p.features
                .iter()
                .all(|f| crate::model::catalog::is_portal_feature(*f))
        })
        && d.managers.iter().all(|m| {
            m.grantable
                .iter()
                .all(|f| crate::model::catalog::is_grantable(*f))
        })
        // Answered by the live system, never declared (the schema has no such field).
        && d.campaigns.iter().all(|c| c.hidden_members.is_none())
        && d.contact_groups.iter().all(|g| g.hidden_members.is_none())
        && d.campaigns.iter().all(|c| Key.holds(&c.name))
        && d.contact_groups.iter().all(|g| Key.holds(&g.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "version: 1\nportals:\n  - name: web\n    features: [multisession]\nrepresentatives:\n  - login: a@x.example\n    email: a@x.example\n    first_name: A\n    last_name: 'No'\n    language: pt-BR\n    multisession: 2\n    features: [reports]\n";

    #[test]
    fn the_text_shortcut_agrees_with_the_core_schema() {
        for s in [
            "",
            "~",
            "null",
            "NULL",
            "true",
            "False",
            "12",
            "-3",
            "+4",
            "0x1f",
            "0o7",
            "1.5",
            ".5",
            ".inf",
            "-.Inf",
            ".nan",
            "1e3",
            "Nathan",
            "tom",
            "alice",
            "web",
            "pt-BR",
            "a@x.example",
            "Zoë",
            "é",
            "x1",
        ] {
            if !maybe_not_text(s) {
                assert!(
                    resolve_plain(s).is_string(),
                    "{s:?} must resolve to a string"
                );
            }
            assert_eq!(is_null(s), resolve_plain(s).is_null(), "{s:?}");
        }
        assert!(!maybe_not_text("alice"));
        assert!(maybe_not_text("12"));
    }

    #[test]
    fn a_valid_file_takes_the_fast_path_with_the_same_result() {
        let (d, sections) = declaration(GOOD).expect("fast path");
        let slow: Declaration =
            serde_json::from_value(super::super::yaml::parse(GOOD).unwrap().unwrap()).unwrap();
        assert_eq!(d, slow);
        assert_eq!(sections, [Kind::Portal, Kind::Representative].into());
    }

    #[test]
    fn anything_the_schema_would_reject_falls_back() {
        let bad = [
            GOOD.replace("version: 1", "version: 2"),
            GOOD.replace("language: pt-BR", "language: portuguese"),
            GOOD.replace("email: a@x.example", "email: nope"),
            GOOD.replace("features: [reports]", "features: [reports, reports]"),
            GOOD.replace("multisession: 2", "multisession: 11"),
            GOOD.replace("first_name: A", "first_name: A\n    first_name: B"),
            GOOD.replace("first_name: A", "first_name: 12"),
            GOOD.replace("first_name: A", "frist_name: A"),
            GOOD.replace("features: [multisession]", "features: &f [multisession]"),
            format!("{GOOD}---\nportals: []\n"),
            "contact_groups:\n  - name: g\n    shared_with: {a@x.example: view, a@x.example: manage}\n".into(),
            "managers:\n  - login: m@x.example\n    email: m@x.example\n    name: M\n    password: {env: A, value: hunter2}\n".into(),
            "managers:\n  - login: m@x.example\n    email: m@x.example\n    name: M\n    password: hunter2\n".into(),
            String::new(),
            "# only a comment\n".into(),
            "- a\n".into(),
        ];
        for b in &bad {
            assert!(declaration(b).is_none(), "accepted:\n{b}");
        }
        // And the core schema: `no` is text, `~` is null.
        let ok = "portals:\n  - name: no\n    previously: ~\n";
        let (d, _) = declaration(ok).expect("fast");
        assert_eq!(d.portals[0].name, "no");
        assert_eq!(d.portals[0].previously, None);
    }
}
