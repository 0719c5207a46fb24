//! The JSON Schema of declaration files: generated from the Rust types, compiled once,
//! and its validation errors turned into diagnostics.
//!
//! The schema is `schemars`' rendering of [`crate::model::Declaration`] (draft 2020-12),
//! checked in as `schemas/roster.schema.json` and printed by `roster schema`. Validation
//! uses `jsonschema` (the field shapes are `model::shape`'s patterns and lengths), compiled
//! once per process. Each error becomes a [`SchemaProblem`]: a JSON pointer, whether the key or the
//! value is at fault, a rule code and a message with a "did you mean" where it helps.

use std::sync::OnceLock;

use serde_json::Value;

use crate::model::Declaration;
use crate::model::rules::{self, RuleCode};
use crate::model::shape::Shape;

/// The declaration schema as a JSON value.
pub fn declaration_schema() -> Value {
    let schema = schemars::schema_for!(Declaration);
    serde_json::to_value(&schema).unwrap_or(Value::Null)
}

/// The declaration schema as checked in: pretty JSON with a trailing newline.
pub fn declaration_schema_text() -> String {
    let mut s = serde_json::to_string_pretty(&declaration_schema()).unwrap_or_default();
    s.push('\n');
    s
}

/// The compiled validator, built once per process.
fn validator() -> Result<&'static jsonschema::Validator, String> {
    static V: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    V.get_or_init(|| {
        jsonschema::draft202012::options()
            .should_validate_formats(true)
            .build(&declaration_schema())
            .map_err(|e| format!("the built-in declaration schema does not compile: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn schema_root() -> &'static Value {
    static S: OnceLock<Value> = OnceLock::new();
    S.get_or_init(declaration_schema)
}

/// Whether the diagnostic points at the key of a mapping member or at its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    Key,
    Value,
}

/// One schema violation in one file, not yet positioned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    pub rule: RuleCode,
    pub pointer: String,
    pub anchor: Anchor,
    pub message: String,
    pub help: String,
    /// Whether the loader may drop the value at `pointer` to type the rest of the file
    /// (unknown keys and values, wrong types): the value is unusable anyway.
    pub removable: bool,
}

/// Validates one file's value. Fast path: `is_valid`; errors are collected only when it
/// fails.
pub fn check(value: &Value) -> Vec<SchemaProblem> {
    let v = match validator() {
        Ok(v) => v,
        Err(e) => {
            return vec![SchemaProblem {
                rule: RuleCode::Schema,
                pointer: String::new(),
                anchor: Anchor::Value,
                message: e,
                help: "this is a bug in roster; please report it".into(),
                removable: false,
            }];
        }
    };
    if v.is_valid(value) {
        return vec![];
    }
    let mut out: Vec<SchemaProblem> = Vec::new();
    for err in v.iter_errors(value) {
        for p in map_error(&err) {
            if !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "an integer",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// A short rendering of a scalar for messages (`"reprots"`, `12`); composite values are
/// described by their type only.
fn short(v: &Value) -> String {
    match v {
        Value::String(s) if s.chars().count() <= 60 => format!("`{s}`"),
        Value::String(_) => "this text".into(),
        Value::Number(n) => format!("`{n}`"),
        Value::Bool(b) => format!("`{b}`"),
        other => json_type(other).into(),
    }
}

/// Follows a schema location (`/properties/x/items/$ref/...`) through the root schema,
/// resolving local `$ref`s.
fn schema_at(path: &str) -> Option<&'static Value> {
    let root = schema_root();
    let mut node = root;
    for seg in path.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if seg == "$ref" {
            node = resolve_ref(root, node)?;
            continue;
        }
        node = match node {
            Value::Object(m) => match m.get(&seg) {
                Some(n) => n,
                None => {
                    let target = resolve_ref(root, node)?;
                    target.get(&seg)?
                }
            },
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(node)
}

fn resolve_ref<'a>(root: &'a Value, node: &'a Value) -> Option<&'a Value> {
    let r = node.get("$ref")?.as_str()?;
    root.pointer(r.strip_prefix('#')?)
}

/// Property names a schema object allows.
fn allowed_properties(schema: &Value) -> Vec<String> {
    let root = schema_root();
    let s = resolve_ref(root, schema).unwrap_or(schema);
    s.get("properties")
        .and_then(Value::as_object)
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default()
}

/// Allowed values of an `enum`, or of a `oneOf`/`anyOf` of `const`s.
fn allowed_values(schema: &Value) -> Vec<String> {
    let root = schema_root();
    let s = resolve_ref(root, schema).unwrap_or(schema);
    if let Some(e) = s.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
    }
    let mut out = Vec::new();
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = s.get(key).and_then(Value::as_array) {
            for alt in alts {
                let alt = resolve_ref(root, alt).unwrap_or(alt);
                if let Some(c) = alt.get("const").and_then(Value::as_str) {
                    out.push(c.to_owned());
                } else {
                    out.extend(allowed_values(alt));
                }
            }
        }
    }
    out
}

/// The closest candidate, if close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let w = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(&w, c), c))
        .filter(|(score, _)| *score >= 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn parent_location(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn is_manager_login(pointer: &str) -> bool {
    let segs: Vec<&str> = pointer.split('/').collect();
    segs.len() == 4 && segs[1] == "managers" && segs[3] == "login"
}

/// What the live account reports but no file may declare (`GET /v1/account`).
const ACCOUNT_READ_ONLY: &[&str] = &["seats", "licensed_seats", "operators", "users", "version"];

/// The field shape (`model::shape`) of the string at `pointer`, with the field's name:
/// the fields whose schema holds a shape's pattern and length.
fn shape_at(pointer: &str) -> Option<(&str, Shape)> {
    let mut segs = pointer.split('/').skip(1);
    let section = segs.next()?;
    let field = pointer.rsplit('/').next()?;
    let shape = match (section, field) {
        ("managers", "login") => Shape::Email,
        (_, "login") => Shape::Key,
        (_, "email") => Shape::Email,
        ("teams", "name") => Shape::TeamName,
        ("portals" | "campaigns" | "contact_groups", "name") => Shape::Key,
        (_, "language") => Shape::Language,
        (_, "username") => Shape::Username,
        _ => return None,
    };
    Some((field, shape))
}

fn map_error(err: &jsonschema::ValidationError<'_>) -> Vec<SchemaProblem> {
    use jsonschema::error::{TypeKind, ValidationErrorKind as K};
    let pointer = err.instance_path().as_str().to_owned();
    let schema_path = err.schema_path().as_str();
    let instance = err.instance();
    let in_password = pointer.split('/').any(|s| s == "password");
    let problem = |rule, message: String, help: String| SchemaProblem {
        rule,
        pointer: pointer.clone(),
        anchor: Anchor::Value,
        message,
        help,
        removable: false,
    };
    // `Option<T>` fields are `anyOf: [T, null]`: report what is wrong inside the one
    // alternative whose type matched, not that "no alternative matched".
    if let K::AnyOf { context } | K::OneOfNotValid { context } = err.kind() {
        let matched: Vec<&Vec<jsonschema::ValidationError<'static>>> = context
            .iter()
            .filter(|errs| {
                !errs.iter().all(|e| {
                    matches!(e.kind(), K::Type { .. }) && e.instance_path().as_str() == pointer
                })
            })
            .collect();
        if let [only] = matched.as_slice() {
            if !only.is_empty() {
                return only.iter().flat_map(map_error).collect();
            }
        }
    }
    if pointer == "/version" {
        return vec![problem(
            RuleCode::Version,
            format!("unsupported format version {}", short(instance)),
            "write `version: 1` or leave `version` out".into(),
        )];
    }
    match err.kind() {
        K::AdditionalProperties { unexpected } | K::UnevaluatedProperties { unexpected } => {
            let allowed = schema_at(parent_location(schema_path))
                .map(allowed_properties)
                .unwrap_or_default();
            unexpected
                .iter()
                .map(|key| {
                    if pointer == "/account" && ACCOUNT_READ_ONLY.contains(&key.as_str()) {
                        return SchemaProblem {
                            rule: RuleCode::UnknownKey,
                            pointer: format!("/account/{key}"),
                            anchor: Anchor::Key,
                            message: format!(
                                "the account's `{key}` is read-only: the licence sets the \
                                 seats, and the live system counts operators and users"
                            ),
                            help: "remove this key; `roster plan` shows the seats the plan \
                                   would use against the licensed ones"
                                .into(),
                            removable: true,
                        };
                    }
                    let help = match did_you_mean(key, allowed.iter().map(String::as_str)) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None if allowed.is_empty() => "remove this key".into(),
                        None => format!("allowed keys here: {}", allowed.join(", ")),
                    };
                    SchemaProblem {
                        rule: RuleCode::UnknownKey,
                        pointer: format!("{pointer}/{}", super::yaml::escape_segment(key)),
                        anchor: Anchor::Key,
                        message: format!("unknown key `{key}`"),
                        help,
                        removable: true,
                    }
                })
                .collect()
        }
        K::Enum { options } => {
            let allowed: Vec<String> = options
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| v.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            vec![unknown_value(&pointer, instance, &allowed)]
        }
        _ if in_password => vec![removable(problem(
            RuleCode::Secret,
            "a password must be a reference: `{ env: VARIABLE }` or `{ file: PATH }`, \
             never the password itself"
                .into(),
            "write `password: { env: VARIABLE }` or `password: { file: path/to/file }` and \
             remove the text from the file (and from its Git history)"
                .into(),
        ))],
        K::OneOfNotValid { .. } | K::AnyOf { .. } => {
            let allowed = schema_at(parent_location(schema_path))
                .map(allowed_values)
                .unwrap_or_default();
            if instance.is_string() && !allowed.is_empty() {
                vec![unknown_value(&pointer, instance, &allowed)]
            } else {
                vec![problem(
                    RuleCode::Schema,
                    format!("{} is not a valid value here", short(instance)),
                    "see schemas/roster.schema.json for the expected shape".into(),
                )]
            }
        }
        K::Pattern { .. } | K::MaxLength { .. } | K::MinLength { .. }
            if shape_at(&pointer).is_some() && instance.is_string() =>
        {
            let (field, shape) = shape_at(&pointer).expect("matched above");
            let text = instance.as_str().unwrap_or_default();
            match rules::shape_violation(field, shape, text) {
                Some(v) if is_manager_login(&pointer) => vec![problem(
                    RuleCode::ManagerLogin,
                    format!("manager {}", v.message.replacen('`', "", 2)),
                    format!(
                        "a manager logs in to the Admin Center with an e-mail address: {}",
                        v.help
                    ),
                )],
                Some(v) if shape == Shape::TeamName => {
                    vec![problem(v.rule, format!("team {}", v.message), v.help)]
                }
                Some(v) => vec![problem(v.rule, v.message, v.help)],
                // The validator and the model disagree: a bug, said as such.
                None => vec![problem(
                    RuleCode::Schema,
                    format!("`{field}` does not match the schema"),
                    "this is a bug in roster (the schema and model::shape disagree); please report it"
                        .into(),
                )],
            }
        }
        K::Type { kind } => {
            let expected = match kind {
                TypeKind::Single(t) => t.as_str().to_owned(),
                // `Option<T>` fields accept null too; saying so does not help.
                TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| t.as_str())
                    .filter(|t| *t != "null")
                    .collect::<Vec<_>>()
                    .join(" or "),
            };
            vec![removable(problem(
                RuleCode::Schema,
                format!("expected {expected}, found {}", json_type(instance)),
                match expected.as_str() {
                    "array" => "write a list: `[a, b]` or one `- item` per line".into(),
                    "object" => "write a mapping of `key: value` lines".into(),
                    "string" => "quote the value to make it text".into(),
                    _ => format!("write a value of type {expected}"),
                },
            ))]
        }
        K::Required { property } => vec![problem(
            RuleCode::Schema,
            format!(
                "missing required field `{}`",
                property.as_str().unwrap_or_default()
            ),
            format!("add `{}: ...`", property.as_str().unwrap_or_default()),
        )],
        K::UniqueItems => vec![problem(
            RuleCode::Schema,
            "the list holds the same entry twice".into(),
            "remove the repeated entry".into(),
        )],
        K::Minimum { limit } | K::ExclusiveMinimum { limit } => vec![problem(
            RuleCode::Schema,
            format!("{} is below the minimum {limit}", short(instance)),
            format!("use a value of at least {limit}"),
        )],
        K::Maximum { limit } | K::ExclusiveMaximum { limit } => vec![problem(
            RuleCode::Schema,
            format!("{} is above the maximum {limit}", short(instance)),
            format!("use a value of at most {limit}"),
        )],
        K::Pattern { pattern } => vec![problem(
            RuleCode::Schema,
            format!(
                "{} does not match the expected pattern `{pattern}`",
                short(instance)
            ),
            match pointer.rsplit('/').next() {
                Some("language") => "use an ISO 639-1 code such as `en`, `fr` or `pt-BR`".into(),
                _ => "change the value to match the pattern".into(),
            },
        )],
        _ => vec![problem(
            RuleCode::Schema,
            format!(
                "{} does not match the schema ({})",
                short(instance),
                kind_name(err)
            ),
            "see schemas/roster.schema.json for the expected shape".into(),
        )],
    }
}

fn removable(mut p: SchemaProblem) -> SchemaProblem {
    p.removable = true;
    p
}

fn kind_name(err: &jsonschema::ValidationError<'_>) -> String {
    err.schema_path()
        .as_str()
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

fn unknown_value(pointer: &str, instance: &Value, allowed: &[String]) -> SchemaProblem {
    let help = match instance
        .as_str()
        .and_then(|s| did_you_mean(s, allowed.iter().map(String::as_str)))
    {
        Some(s) => format!("did you mean `{s}`?"),
        None => format!("allowed values: {}", allowed.join(", ")),
    };
    SchemaProblem {
        rule: RuleCode::UnknownValue,
        pointer: pointer.to_owned(),
        anchor: Anchor::Value,
        message: format!("unknown value {}", short(instance)),
        help,
        removable: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn checked_in_schema_matches_the_types() {
        let checked_in = include_str!("../../schemas/roster.schema.json");
        assert_eq!(
            checked_in,
            declaration_schema_text(),
            "schemas/roster.schema.json is stale: run `roster schema > schemas/roster.schema.json`"
        );
    }

    #[test]
    fn valid_document_has_no_problems() {
        let v = json!({"version": 1, "portals": [{"name": "web", "features": ["multisession"]}]});
        assert!(check(&v).is_empty());
    }

    #[test]
    fn declared_seats_are_read_only() {
        let v = json!({"account": {"name": "ACME", "seats": 40,
            "password_policy": {"min_length": 0}}});
        let p = check(&v);
        let seats = p
            .iter()
            .find(|p| p.pointer == "/account/seats")
            .expect("seats");
        assert_eq!(seats.rule, RuleCode::UnknownKey);
        assert!(seats.message.contains("read-only"), "{}", seats.message);
        assert!(
            p.iter()
                .any(|p| p.pointer == "/account/password_policy/min_length"),
            "{p:?}"
        );
    }

    #[test]
    fn unknown_key_suggests_the_nearest() {
        let v = json!({"representatives": [{"login": "a", "email": "a@x.example",
            "first_name": "A", "last_name": "B", "langauge": "en"}]});
        let p = check(&v);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].rule, RuleCode::UnknownKey);
        assert_eq!(p[0].pointer, "/representatives/0/langauge");
        assert_eq!(p[0].anchor, Anchor::Key);
        assert_eq!(p[0].help, "did you mean `language`?");
    }

    #[test]
    fn unknown_right_suggests_the_nearest() {
        let v = json!({"managers": [{"login": "m@x.example", "email": "m@x.example",
            "name": "M", "team_rights": ["sesion_replay"]}]});
        let p = check(&v);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].rule, RuleCode::UnknownValue);
        assert_eq!(p[0].pointer, "/managers/0/team_rights/0");
        assert_eq!(p[0].help, "did you mean `session_replay`?");
    }

    #[test]
    fn policy_value_suggests_the_nearest() {
        let v = json!({"policy": {"representatives": {"on_remove": "delet"}}});
        let p = check(&v);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].rule, RuleCode::UnknownValue);
        assert_eq!(p[0].help, "did you mean `delete`?");
    }

    #[test]
    fn email_format_is_checked() {
        let v = json!({"administrators": [{"login": "a", "email": "not-an-address", "name": "A"}]});
        let p = check(&v);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].rule, RuleCode::Schema);
        let v = json!({"managers": [{"login": "marie", "email": "m@x.example", "name": "M"}]});
        assert_eq!(check(&v)[0].rule, RuleCode::ManagerLogin);
    }

    #[test]
    fn plain_password_is_a_secret_error_without_the_value() {
        let v = json!({"managers": [{"login": "m@x.example", "email": "m@x.example",
            "name": "M", "password": "hunter2"}]});
        let p = check(&v);
        assert_eq!(p.len(), 1, "{p:?}");
        assert_eq!(p[0].rule, RuleCode::Secret);
        assert!(!p[0].message.contains("hunter2") && !p[0].help.contains("hunter2"));
    }

    #[test]
    fn version_and_types() {
        assert_eq!(check(&json!({"version": 2}))[0].rule, RuleCode::Version);
        let p = check(&json!({"portals": {"name": "x"}}));
        assert_eq!(p[0].rule, RuleCode::Schema);
        assert_eq!(p[0].message, "expected array, found a mapping");
    }
}
