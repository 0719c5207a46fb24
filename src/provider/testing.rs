//! A scripted HTTP server on loopback for unit tests of the provider and the executor:
//! each request is recorded and answered with the next scripted answer, or by a handler.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

/// One recorded request.
#[allow(dead_code)] // fields are read by whichever test needs them
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub if_match: Option<String>,
    pub idempotency_key: Option<String>,
    pub authorization: Option<String>,
    pub request_id: Option<String>,
    pub body: String,
}

/// A dynamic answer: (status, extra headers, body).
pub type Answer = (u16, Vec<(&'static str, String)>, String);
pub type Handler = dyn Fn(&Seen) -> Option<Answer> + Send + Sync;

#[derive(Clone, Default)]
struct State {
    seen: Arc<Mutex<Vec<Seen>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    handler: Option<Arc<Handler>>,
}

pub struct MockServer {
    pub addr: SocketAddr,
    state: State,
    task: tokio::task::JoinHandle<()>,
}

impl MockServer {
    /// Starts a server answering from `script` in order, after asking `handler` (if any).
    pub async fn start(script: Vec<Answer>, handler: Option<Box<Handler>>) -> MockServer {
        let state = State {
            seen: Arc::default(),
            script: Arc::new(Mutex::new(script.into())),
            handler: handler.map(Arc::from),
        };
        let st = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let st = st.clone();
                async move { answer(st, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        MockServer { addr, state, task }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().unwrap().clone()
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(st: State, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let seen = Seen {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        if_match: h("if-match"),
        idempotency_key: h("idempotency-key"),
        authorization: h("authorization"),
        request_id: h("x-request-id"),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    st.seen.lock().unwrap().push(seen.clone());
    let ans = st
        .handler
        .as_ref()
        .and_then(|f| f(&seen))
        .or_else(|| st.script.lock().unwrap().pop_front())
        .unwrap_or((500, vec![], "script exhausted".into()));
    let (status, extra, body) = ans;
    let mut resp = (StatusCode::from_u16(status).unwrap(), body).into_response();
    let content_type = if status >= 400 {
        "application/problem+json"
    } else {
        "application/json"
    };
    resp.headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    for (k, v) in extra {
        resp.headers_mut().insert(k, v.parse().unwrap());
    }
    resp
}

/// A problem body.
pub fn problem(status: u16, code: &str, detail: &str) -> Answer {
    (
        status,
        vec![],
        serde_json::json!({"status": status, "code": code, "title": code, "detail": detail})
            .to_string(),
    )
}
