//! Errors of the live API client: RFC 9457 problems parsed into [`Problem`], transport
//! failures, and answers that are not what docs/api.md promises.
//!
//! Messages are lower case and name what failed; the executor prefixes them with the
//! object (`update representative/jdoe@acme.example: precondition-failed (412): …`).

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One entry of a problem's `errors` list (a `validation` problem).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemItem {
    #[serde(default)]
    pub pointer: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub detail: String,
}

/// An `application/problem+json` answer (or a non-2xx answer turned into one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// HTTP status of the answer.
    #[serde(default)]
    pub status: u16,
    /// The stable problem code (`precondition-failed`, `validation`, …).
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// JSON pointer of the offending field in the request body, when the server names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pointer: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemItem>,
    /// `Retry-After` of a 429/503 (sent as seconds or as an HTTP date).
    #[serde(skip)]
    pub retry_after: Option<Duration>,
    /// `lease-held`: who holds the apply lease (an extension member).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<serde_json::Value>,
    /// The `X-Request-Id` the client sent (so a failure can be found in the server's
    /// log lines); named at the end of the message.
    #[serde(skip)]
    pub request_id: Option<String>,
}

impl Problem {
    /// Parses a problem body; an unparsable or empty body becomes a problem whose code is
    /// derived from the status and whose detail is the (shortened) body text.
    pub fn from_body(status: u16, body: &[u8]) -> Problem {
        let mut p = serde_json::from_slice::<Problem>(body).unwrap_or_else(|_| {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            Problem {
                status,
                code: String::new(),
                title: String::new(),
                detail: (!text.is_empty()).then(|| shorten(text, 200)),
                pointer: None,
                errors: Vec::new(),
                retry_after: None,
                lease: None,
                request_id: None,
            }
        });
        if p.status == 0 {
            p.status = status;
        }
        if p.code.is_empty() {
            p.code = code_for_status(status).to_string();
        }
        p
    }
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// The code docs/api.md gives each status, for answers without a problem body.
fn code_for_status(status: u16) -> &'static str {
    match status {
        400 => "bad-request",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "not-found",
        409 => "conflict",
        412 => "precondition-failed",
        413 => "payload-too-large",
        428 => "precondition-required",
        429 => "rate-limited",
        503 => "unavailable",
        s if s >= 500 => "server-error",
        _ => "http-error",
    }
}

/// Lower-cases the first letter (server texts may start with a capital).
fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.status)?;
        let text = self
            .detail
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or(self.title.as_str());
        if !text.is_empty() {
            write!(f, ": {}", lower_first(text.trim_end_matches('.')))?;
        }
        if let Some(p) = self.pointer.as_deref().filter(|p| !p.is_empty()) {
            write!(f, " (at {p})")?;
        }
        for e in &self.errors {
            write!(f, "; {}", e.code)?;
            if !e.pointer.is_empty() {
                write!(f, " at {}", e.pointer)?;
            }
            if !e.detail.is_empty() {
                write!(f, ": {}", lower_first(e.detail.trim_end_matches('.')))?;
            }
        }
        match self.status {
            401 => f.write_str(
                "; check the token (--token-file or ROSTER_TOKEN) for this endpoint",
            )?,
            412 => f.write_str(
                "; the object changed on the live system since the plan was made: run `roster plan` again",
            )?,
            _ => {}
        }
        if let Some(id) = &self.request_id {
            write!(f, " (request id {id})")?;
        }
        Ok(())
    }
}

/// What can go wrong talking to the live API.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The server answered with an error (after any retries).
    #[error("{0}")]
    Problem(Box<Problem>),
    /// The request could not be sent or its answer not received (after any retries).
    #[error("cannot reach the live api at {url}: {message}")]
    Transport { url: String, message: String },
    /// A 2xx answer whose body is not what the API contract says.
    #[error("unexpected answer from the live api at {url}: {detail}")]
    Unexpected { url: String, detail: String },
    /// The endpoint URL or token cannot be used.
    #[error("{0}")]
    Setup(String),
}

impl ProviderError {
    /// The HTTP status, when the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ProviderError::Problem(p) => Some(p.status),
            _ => None,
        }
    }

    /// The problem code, when the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ProviderError::Problem(p) => Some(p.code.as_str()),
            _ => None,
        }
    }

    /// Whether trying the same request again may succeed: 429, 502–504, and failures to
    /// connect or to receive the answer. Never a 412 or any other 4xx.
    pub fn is_transient(&self) -> bool {
        match self {
            ProviderError::Problem(p) => matches!(p.status, 429 | 502 | 503 | 504),
            ProviderError::Transport { .. } => true,
            ProviderError::Unexpected { .. } | ProviderError::Setup(_) => false,
        }
    }

    /// The server's `Retry-After`, if it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ProviderError::Problem(p) => p.retry_after,
            _ => None,
        }
    }
}

/// Formats a reqwest error with its causes, without the request URL's query (no secret is
/// ever in a URL, but the chain is what tells a connection refusal from a timeout).
pub(crate) fn describe_reqwest(err: &reqwest::Error) -> String {
    let mut msg = if err.is_timeout() {
        "the request timed out".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "the request failed".to_string()
    };
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        msg.push_str(": ");
        msg.push_str(&lower_first(&s.to_string()));
        source = s.source();
    }
    if err.is_connect() {
        msg.push_str("; check --endpoint / ROSTER_ENDPOINT and that the live system is running");
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_body_is_parsed_and_printed_lower_case() {
        let body = br#"{"type":"https://roster.dev/problems/precondition-failed","title":"Precondition failed","status":412,"detail":"Version 3 does not match 4.","code":"precondition-failed"}"#;
        let p = Problem::from_body(412, body);
        assert_eq!(p.code, "precondition-failed");
        let shown = p.to_string();
        assert!(
            shown.starts_with("precondition-failed (412): version 3 does not match 4"),
            "{shown}"
        );
        assert!(shown.contains("run `roster plan` again"), "{shown}");
    }

    #[test]
    fn validation_errors_are_listed_with_pointers() {
        let body = br#"{"status":422,"code":"validation","title":"Invalid","errors":[{"pointer":"/features/1","code":"feature-requires","detail":"Reports needs admin_center_access"}]}"#;
        let shown = Problem::from_body(422, body).to_string();
        assert!(
            shown.contains("feature-requires at /features/1: reports needs admin_center_access"),
            "{shown}"
        );
    }

    #[test]
    fn a_body_that_is_not_a_problem_keeps_the_status_code() {
        let p = Problem::from_body(503, b"upstream down");
        assert_eq!(p.code, "unavailable");
        assert_eq!(p.detail.as_deref(), Some("upstream down"));
        assert!(ProviderError::Problem(Box::new(p)).is_transient());
    }

    #[test]
    fn precondition_failed_and_other_client_errors_are_not_transient() {
        for status in [400, 401, 403, 404, 409, 412, 422, 428] {
            let e = ProviderError::Problem(Box::new(Problem::from_body(status, b"")));
            assert!(!e.is_transient(), "{status} must not be retried");
        }
        for status in [429, 502, 503, 504] {
            let e = ProviderError::Problem(Box::new(Problem::from_body(status, b"")));
            assert!(e.is_transient(), "{status} must be retried");
        }
    }
}
