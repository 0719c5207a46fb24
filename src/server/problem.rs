//! RFC 9457 problem details: every error the server answers, with a stable `code`.
//!
//! Handlers and the store return [`Problem`]; it renders as `application/problem+json`.
//! Codes are listed in docs/api.md and never change meaning; rule violations from
//! `model::rules` become `validation` problems whose `errors` carry the rule code and a
//! JSON pointer into the request body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::rules::{RuleCode, Violation};

/// One field-level error inside a `validation` problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// JSON pointer into the request body (`/features/1`), empty for the whole body.
    pub pointer: String,
    /// A rule code (`feature-requires`, `unresolved-reference`, …) or `schema`.
    pub code: String,
    pub detail: String,
}

/// An error answer. `status` and `code` always agree with the table in docs/api.md.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub pointer: Option<String>,
    pub errors: Vec<FieldError>,
    /// Seconds, for 429/503.
    pub retry_after: Option<u64>,
    /// `lease-held`: the current holder (`holder`, `purpose`, `acquired_at`,
    /// `expires_at`), an extension member of the problem.
    pub lease: Option<Value>,
}

impl Problem {
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            code,
            title: title_of(code),
            detail: detail.into(),
            pointer: None,
            errors: vec![],
            retry_after: None,
            lease: None,
        }
    }

    pub fn with_pointer(mut self, pointer: impl Into<String>) -> Problem {
        self.pointer = Some(pointer.into());
        self
    }

    /// Puts `prefix` before the pointers (a problem of one part of a larger body).
    pub fn prefix_pointers(&mut self, prefix: &str) {
        if let Some(p) = &mut self.pointer {
            *p = format!("{prefix}{p}");
        }
        for e in &mut self.errors {
            e.pointer = format!("{prefix}{}", e.pointer);
        }
    }

    pub fn bad_request(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
    }
    pub fn invalid_json(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::BAD_REQUEST, "invalid-json", detail)
    }
    pub fn unauthorized(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
    }
    pub fn forbidden(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", detail)
    }
    /// Rule 6: a manager token asking for more than the manager holds.
    pub fn escalation(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::FORBIDDEN, "escalation", detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::NOT_FOUND, "not-found", detail)
    }
    pub fn conflict(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "conflict", detail)
    }
    pub fn already_exists(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::CONFLICT, "already-exists", detail)
    }
    pub fn precondition_failed(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "precondition-failed",
            detail,
        )
    }
    pub fn precondition_required(detail: impl Into<String>) -> Problem {
        Problem::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition-required",
            detail,
        )
    }
    pub fn rate_limited(retry_after: u64) -> Problem {
        let mut p = Problem::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            format!("too many requests for this token; retry after {retry_after} s"),
        );
        p.retry_after = Some(retry_after);
        p
    }
    pub fn unavailable(detail: impl Into<String>, retry_after: u64) -> Problem {
        let mut p = Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail);
        p.retry_after = Some(retry_after);
        p
    }
    pub fn internal(detail: impl Into<String>) -> Problem {
        Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail)
    }

    /// A 422 `validation` problem from rule violations (pointers relative to the body).
    pub fn validation(violations: Vec<Violation>) -> Problem {
        let detail = violations
            .iter()
            .map(|v| {
                if v.help.is_empty() {
                    v.message.clone()
                } else {
                    format!("{} ({})", v.message, v.help)
                }
            })
            .collect::<Vec<_>>()
            .join("; ");
        let mut p = Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "validation", detail);
        p.pointer = violations.first().map(|v| v.pointer.clone());
        p.errors = violations
            .into_iter()
            .map(|v| FieldError {
                pointer: v.pointer,
                code: v.rule.as_str().to_string(),
                detail: if v.help.is_empty() {
                    v.message
                } else {
                    format!("{}; {}", v.message, v.help)
                },
            })
            .collect();
        p
    }

    /// A 422 `validation` problem for one field.
    pub fn invalid_field(rule: RuleCode, pointer: &str, message: impl Into<String>) -> Problem {
        Problem::validation(vec![Violation::new(rule, pointer, message, "")])
    }

    /// The JSON body (also what a batch result carries).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert(
            "type".into(),
            Value::String(format!("https://roster.dev/problems/{}", self.code)),
        );
        m.insert("title".into(), Value::String(self.title.into()));
        m.insert("status".into(), Value::from(self.status.as_u16()));
        m.insert("detail".into(), Value::String(self.detail.clone()));
        m.insert("code".into(), Value::String(self.code.into()));
        if let Some(p) = &self.pointer {
            m.insert("pointer".into(), Value::String(p.clone()));
        }
        if let Some(l) = &self.lease {
            m.insert("lease".into(), l.clone());
        }
        if !self.errors.is_empty() {
            m.insert(
                "errors".into(),
                serde_json::to_value(&self.errors).unwrap_or(Value::Null),
            );
        }
        Value::Object(m)
    }
}

/// Every problem `code` the server answers, with its `title`: the one list the titles
/// and the OpenAPI document's `code` enum are taken from.
pub const CODES: &[(&str, &str)] = &[
    ("bad-request", "bad request"),
    ("invalid-json", "the body is not valid json"),
    ("unknown-field", "unknown field"),
    ("validation", "the object breaks a rule"),
    ("unauthorized", "missing or invalid token"),
    ("forbidden", "not allowed for this token"),
    ("escalation", "more rights than the token's manager holds"),
    ("not-found", "not found"),
    ("method-not-allowed", "method not allowed"),
    ("conflict", "conflict with other objects"),
    ("already-exists", "the object already exists"),
    ("team-not-empty", "the team has members or sub-teams"),
    ("statistics-would-be-lost", "deleting would lose statistics"),
    (
        "precondition-failed",
        "the object has changed (version mismatch)",
    ),
    ("precondition-required", "if-match is required"),
    (
        "idempotency-key-reused",
        "idempotency key reused with another body",
    ),
    ("payload-too-large", "request body too large"),
    ("rate-limited", "rate limited"),
    ("unavailable", "temporarily unavailable"),
    (
        "seats-exceeded",
        "more active representatives than licensed seats",
    ),
    (
        "username-taken",
        "the user name is held by another representative",
    ),
    ("lease-held", "another client holds the apply lease"),
    ("lease-expired", "the apply lease expired"),
    (
        "lease-not-held",
        "the write's apply lease is not the current one",
    ),
    (
        "cursor-expired",
        "the change feed no longer reaches back to the cursor",
    ),
    (
        "password-policy",
        "the password breaks the account's password policy",
    ),
    ("internal", "internal error"),
];

fn title_of(code: &str) -> &'static str {
    CODES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("internal error", |(_, t)| t)
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}: {}", self.status.as_u16(), self.code, self.detail)
    }
}

impl std::error::Error for Problem {}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.to_json()).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(s) = self.retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        resp
    }
}

/// Database errors never leak SQL to the client; they are logged and answered as 503
/// (the client retries) — a bad input never reaches this path, since every value is a
/// bound parameter and validated first.
impl From<sqlx::Error> for Problem {
    fn from(e: sqlx::Error) -> Problem {
        tracing::error!("database error: {e}");
        Problem::unavailable("the database is unavailable or busy; retry the request", 1)
    }
}

/// Turns a serde error (with its path) into the right problem: syntax → `invalid-json`,
/// unknown field → `unknown-field`, anything else (wrong type, unknown enum value,
/// missing field) → `validation`.
pub fn from_serde(err: serde_path_to_error::Error<serde_json::Error>) -> Problem {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let pointer = path_to_pointer(&path);
    match inner.classify() {
        serde_json::error::Category::Syntax | serde_json::error::Category::Eof => {
            Problem::invalid_json(format!(
                "the body is not valid json: {inner}; send a json object"
            ))
        }
        serde_json::error::Category::Io => Problem::invalid_json(inner.to_string()),
        serde_json::error::Category::Data => {
            let mut msg = strip_position(&inner.to_string());
            // serde quotes the offending value ("invalid type: string \"…\""): under
            // `password` that value may be the secret itself, so say only what is expected.
            if pointer.split('/').any(|s| s == "password") && !msg.starts_with("unknown field") {
                msg = "`password` must be an object `{\"value\": \"…\", \"rotation\": \"…\"}` \
                       with a string `value` (the value sent is not repeated)"
                    .to_string();
            }
            if let Some(field) = msg
                .strip_prefix("unknown field `")
                .and_then(|r| r.split('`').next())
            {
                // The path already ends at the unknown key.
                let ptr = if pointer.ends_with(&format!("/{}", escape_pointer(field))) {
                    pointer.clone()
                } else {
                    format!("{pointer}/{}", escape_pointer(field))
                };
                let mut p = Problem::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "unknown-field",
                    format!("{msg}; remove it or check its spelling"),
                );
                p.pointer = Some(ptr.clone());
                p.errors = vec![FieldError {
                    pointer: ptr,
                    code: "unknown-key".into(),
                    detail: msg,
                }];
                p
            } else {
                let code = if msg.starts_with("unknown variant") {
                    RuleCode::UnknownValue
                } else {
                    RuleCode::Schema
                };
                // A missing field is reported at the object holding it; point at the field.
                let pointer = match msg
                    .strip_prefix("missing field `")
                    .and_then(|r| r.split('`').next())
                {
                    Some(field) => format!("{pointer}/{}", escape_pointer(field)),
                    None => pointer,
                };
                Problem::invalid_field(code, &pointer, msg)
            }
        }
    }
}

fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// `serde_path_to_error`'s `a.b[1]` → `/a/b/1`; `.` alone (the root) → empty.
fn path_to_pointer(path: &str) -> String {
    if path == "." || path.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    for seg in path.split('.') {
        let mut rest = seg;
        if let Some(i) = rest.find('[') {
            let (name, idx) = rest.split_at(i);
            if !name.is_empty() {
                out.push('/');
                out.push_str(&escape_pointer(name));
            }
            rest = idx;
            for part in rest.split('[').filter(|s| !s.is_empty()) {
                out.push('/');
                out.push_str(part.trim_end_matches(']'));
            }
        } else if !rest.is_empty() && rest != "?" {
            out.push('/');
            out.push_str(&escape_pointer(rest));
        }
    }
    out
}

/// RFC 6901 escaping of one pointer segment.
pub fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Representative;

    fn parse(s: &str) -> Problem {
        let de = &mut serde_json::Deserializer::from_str(s);
        let r: Result<Representative, _> = serde_path_to_error::deserialize(de);
        from_serde(r.unwrap_err())
    }

    #[test]
    fn a_password_of_the_wrong_shape_is_not_echoed() {
        for body in [
            r#"{"login":"a","email":"a@b.c","first_name":"a","last_name":"b","password":"hunter2-x"}"#,
            r#"{"login":"a","email":"a@b.c","first_name":"a","last_name":"b","password":{"value":["hunter2-x"]}}"#,
        ] {
            let p = parse(body);
            assert_eq!(p.code, "validation");
            let all = format!("{} {:?}", p.detail, p.errors);
            assert!(!all.contains("hunter2"), "{all}");
            assert!(p.pointer.as_deref().unwrap().starts_with("/password"));
        }
    }

    #[test]
    fn syntax_error_is_invalid_json() {
        let p = parse("{\"login\": ");
        assert_eq!(p.code, "invalid-json");
        assert_eq!(p.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn unknown_field_names_its_pointer() {
        let p = parse(
            r#"{"login":"a","email":"a@b.c","first_name":"a","last_name":"b","sign_in":{"nope":true}}"#,
        );
        assert_eq!(p.code, "unknown-field");
        assert_eq!(p.pointer.as_deref(), Some("/sign_in/nope"));
    }

    #[test]
    fn unknown_enum_value_is_validation_with_pointer() {
        let p = parse(
            r#"{"login":"a","email":"a@b.c","first_name":"a","last_name":"b","features":["reports","flying"]}"#,
        );
        assert_eq!(p.code, "validation");
        assert_eq!(p.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(p.errors[0].code, "unknown-value");
        assert_eq!(p.pointer.as_deref(), Some("/features/1"));
    }

    #[test]
    fn missing_field_points_at_the_field() {
        let p = parse(r#"{"login":"a","first_name":"a","last_name":"b"}"#);
        assert_eq!(p.pointer.as_deref(), Some("/email"));
    }

    #[test]
    fn problem_json_has_rfc9457_members() {
        let v = Problem::not_found("no such team `x`").to_json();
        assert_eq!(v["status"], 404);
        assert_eq!(v["code"], "not-found");
        assert_eq!(v["type"], "https://roster.dev/problems/not-found");
    }
}
