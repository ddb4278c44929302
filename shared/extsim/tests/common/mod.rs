//! Shared by the API tests: a real simulator on `127.0.0.1:0` and raw HTTP helpers, so
//! status codes and error bodies are checked exactly as a caller sees them.

#![allow(dead_code)] // each test binary uses a different subset

use archlab_extsim::{AppState, Client, spawn_local};
use archlab_kernel::server::Running;
use serde_json::Value;

/// One running simulator, stopped when dropped.
pub struct TestSim {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Raw client, for requests the typed client does not make.
    pub http: reqwest::Client,
    /// The typed client under test.
    pub client: Client,
    /// Stops the simulator when dropped.
    _server: Running<AppState>,
}

/// Starts a fresh in-memory simulator.
pub async fn spawn() -> TestSim {
    let server = spawn_local().await.expect("extsim starts");
    let base = server.addrs.http_url();
    TestSim { client: Client::new(&base), http: reqwest::Client::new(), base, _server: server }
}

/// A status code and the JSON body that came with it (`Value::Null` when there was none).
pub struct Answer {
    pub status: u16,
    pub body: Value,
}

impl Answer {
    async fn from(response: reqwest::Response) -> Answer {
        let status = response.status().as_u16();
        let text = response.text().await.expect("body is readable");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("body is JSON ({e}): {text:?}"))
        };
        Answer { status, body }
    }

    /// Asserts this is an error answer with `status` and `code` in our error shape.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.body["error"]["code"], code, "body: {}", self.body);
        assert!(self.body["error"]["message"].is_string(), "error has a message: {}", self.body);
    }
}

impl TestSim {
    /// `POST path` with a JSON body and, if given, an `Idempotency-Key`.
    pub async fn post(&self, path: &str, key: Option<&str>, body: &Value) -> Answer {
        let mut request = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        Answer::from(request.send().await.expect("request is sent")).await
    }

    /// `POST path` with a raw body, labelled as JSON.
    pub async fn post_raw(&self, path: &str, key: &str, body: &'static str) -> Answer {
        let request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", key)
            .header("Content-Type", "application/json")
            .body(body);
        Answer::from(request.send().await.expect("request is sent")).await
    }

    /// `method path` with an optional JSON body.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Answer {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.json(body);
        }
        Answer::from(request.send().await.expect("request is sent")).await
    }

    /// `POST path` under `key`, for a request that may get no answer at all: the error the
    /// HTTP client met when the connection ended without one.
    pub async fn post_or_hang_up(&self, path: &str, key: &str, body: &Value) -> Result<Answer, reqwest::Error> {
        // Bounded, so a connection left hanging shows as a timeout error instead of a hung test.
        let response = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Idempotency-Key", key)
            .timeout(std::time::Duration::from_secs(10))
            .json(body)
            .send();
        Ok(Answer::from(response.await?).await)
    }

    /// `POST /v1/charges` under `key`.
    pub async fn charge(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/charges", Some(key), body).await
    }

    /// `POST /v1/emails` under `key`.
    pub async fn email(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/emails", Some(key), body).await
    }
}
