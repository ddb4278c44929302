//! A thin HTTP client for the public API, built for tests: every call returns a [`Resp`] that
//! remembers what was asked, so a failed assertion says which request answered what.
//!
//! The helpers send exactly the bytes and headers a case asks for (`request`, `send`), so the
//! cases can also speak the malformed HTTP a real client might send.

use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::Target;

pub use reqwest::Method;

/// The password every [`Api::new_user`] account gets; valid under the API's rules.
pub const PASSWORD: &str = "correct horse battery staple";

/// A generous upper bound for one request, so a hung deployment fails a case instead of
/// hanging the whole run. Not a sleep: nothing waits for it unless the server does not answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A fresh e-mail address, unique across concurrent tests and runs (uuid-based).
pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

/// A fresh `Idempotency-Key` value (uuid-based).
pub fn unique_key() -> String {
    format!("key-{}", Uuid::new_v4())
}

/// The JSON body of a purchase.
pub fn purchase_body(amount_cents: i64, currency: &str) -> Value {
    json!({ "amount_cents": amount_cents, "currency": currency })
}

/// An account created by [`Api::new_user`].
#[derive(Debug, Clone)]
pub struct User {
    /// The `user_id` signup answered.
    pub user_id: String,
    /// The bearer token signup answered.
    pub token: String,
    /// The e-mail address as stored (lower case, trimmed).
    pub email: String,
    /// The password the account was created with.
    pub password: String,
    /// The display name the account was created with.
    pub name: String,
}

/// One answer from the deployment, with the request that produced it (for messages).
#[derive(Debug, Clone)]
pub struct Resp {
    /// `METHOD path`, e.g. `POST /api/auth/signup`.
    pub what: String,
    /// The HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, if any.
    pub content_type: Option<String>,
    /// The `Retry-After` header, if any, as sent.
    pub retry_after: Option<String>,
    /// The raw body.
    pub body: Vec<u8>,
}

impl Resp {
    /// The body as (lossy) text, for messages.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Panics unless the status is `expected`.
    #[track_caller]
    pub fn assert_status(&self, expected: u16, context: &str) -> &Self {
        assert_eq!(
            self.status,
            expected,
            "{context}: {} answered {} (expected {expected}); body: {}",
            self.what,
            self.status,
            self.text()
        );
        self
    }

    /// The body parsed as JSON; panics unless it is JSON with a JSON content type.
    #[track_caller]
    pub fn json(&self, context: &str) -> Value {
        let ct = self.content_type.as_deref().unwrap_or("<none>");
        assert!(
            ct.to_ascii_lowercase().starts_with("application/json"),
            "{context}: {} ({}) answered Content-Type {ct}, expected application/json; body: {}",
            self.what,
            self.status,
            self.text()
        );
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{context}: {} ({}) answered a body that is not JSON ({e}): {}", self.what, self.status, self.text())
        })
    }

    /// Panics unless the status is `status`; returns the JSON body.
    #[track_caller]
    pub fn expect_json(&self, status: u16, context: &str) -> Value {
        self.assert_status(status, context);
        self.json(context)
    }

    /// Panics unless the answer is `status` with error `code` and a `Retry-After` of whole
    /// seconds, at least 1 (what every refusal by a limit answers); returns the seconds.
    #[track_caller]
    pub fn expect_retry_later(&self, status: u16, code: &str, context: &str) -> u64 {
        self.expect_error(status, code, context);
        let header = self.retry_after.as_deref();
        let secs = header.and_then(|v| v.parse::<u64>().ok());
        assert!(
            secs.is_some_and(|s| s >= 1),
            "{context}: {} ({status}) must say when to retry in whole seconds (Retry-After), got {header:?}",
            self.what
        );
        secs.unwrap_or_default()
    }

    /// Panics unless the answer is `status` with the error body
    /// `{"error": {"code": code, "message": <non-empty string>}}` and nothing else.
    #[track_caller]
    pub fn expect_error(&self, status: u16, code: &str, context: &str) {
        let body = self.expect_json(status, context);
        let what = &self.what;
        let obj = body.as_object().unwrap_or_else(|| panic!("{context}: {what}: error body is not an object: {body}"));
        assert_eq!(
            keys(obj),
            vec!["error"],
            "{context}: {what}: error body must be exactly {{\"error\": {{...}}}}, got {body}"
        );
        let err = body["error"]
            .as_object()
            .unwrap_or_else(|| panic!("{context}: {what}: \"error\" is not an object: {body}"));
        assert_eq!(
            keys(err),
            vec!["code", "message"],
            "{context}: {what}: \"error\" must hold exactly code and message, got {body}"
        );
        assert_eq!(
            body["error"]["code"].as_str(),
            Some(code),
            "{context}: {what} ({status}): wrong error code in {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(!message.trim().is_empty(), "{context}: {what}: error message must be a non-empty string, got {body}");
    }
}

/// The sorted key names of a JSON object, for shape assertions.
pub fn keys(obj: &serde_json::Map<String, Value>) -> Vec<&str> {
    let mut k: Vec<&str> = obj.keys().map(String::as_str).collect();
    k.sort_unstable();
    k
}

/// A reqwest client bound to one deployment's public API and its extsim.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base: String,
    extsim: String,
}

impl Api {
    /// A client for `t`'s public API and extsim.
    pub fn new<T: Target>(t: &T) -> Self {
        Self::with_client(t, reqwest::Client::builder())
    }

    /// A client whose connections leave from `local` (e.g. `127.0.0.2`: another client
    /// address on loopback, for the per-address limit).
    pub fn from_address<T: Target>(t: &T, local: std::net::IpAddr) -> Self {
        Self::with_client(t, reqwest::Client::builder().local_address(local))
    }

    fn with_client<T: Target>(t: &T, builder: reqwest::ClientBuilder) -> Self {
        let client = builder
            // The deployment is reached directly: a proxy from the environment could answer
            // in its own words and hide what the deployment said.
            .no_proxy()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("build reqwest client");
        Self {
            client,
            base: t.base_url().trim_end_matches('/').to_owned(),
            extsim: t.extsim_url().trim_end_matches('/').to_owned(),
        }
    }

    /// The lowest-level call: any method, path, raw headers and raw body.
    pub async fn send(&self, method: Method, path: &str, headers: &[(&str, &[u8])], body: Option<Vec<u8>>) -> Resp {
        let what = format!("{method} {path}");
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .unwrap_or_else(|e| panic!("{what}: bad header name {name:?}: {e}"));
            let value =
                HeaderValue::from_bytes(value).unwrap_or_else(|e| panic!("{what}: bad header value {value:?}: {e}"));
            req = req.header(name, value);
        }
        if let Some(body) = body {
            req = req.body(body);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("{what}: request failed: {e:?}"));
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let retry_after =
            res.headers().get(reqwest::header::RETRY_AFTER).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let body = res.bytes().await.unwrap_or_else(|e| panic!("{what}: reading the body failed: {e:?}")).to_vec();
        Resp { what, status, content_type, retry_after, body }
    }

    /// A call with an optional bearer token, raw body and content type.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Vec<u8>>,
        content_type: Option<&str>,
    ) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &[u8])> = Vec::new();
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_bytes()));
        }
        if let Some(ct) = content_type {
            headers.push(("content-type", ct.as_bytes()));
        }
        self.send(method, path, &headers, body).await
    }

    /// `GET path` with an optional bearer token.
    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        self.request(Method::GET, path, token, None, None).await
    }

    /// A JSON body sent as `application/json`.
    pub async fn json_call(&self, method: Method, path: &str, token: Option<&str>, body: &Value) -> Resp {
        let bytes = serde_json::to_vec(body).expect("serialize JSON body");
        self.request(method, path, token, Some(bytes), Some("application/json")).await
    }

    /// `POST /api/auth/signup` with any JSON body.
    pub async fn signup_json(&self, body: &Value) -> Resp {
        self.json_call(Method::POST, "/api/auth/signup", None, body).await
    }

    /// `POST /api/auth/signup` `{email, password, name}`.
    pub async fn signup(&self, email: &str, password: &str, name: &str) -> Resp {
        self.signup_json(&json!({ "email": email, "password": password, "name": name })).await
    }

    /// Signs a fresh account up (unique e-mail) and panics unless it answers 201.
    pub async fn new_user(&self) -> User {
        self.new_user_named("Conformance User").await
    }

    /// [`Api::new_user`] with its display name.
    pub async fn new_user_named(&self, name: &str) -> User {
        let email = unique_email();
        let name = name.to_owned();
        let body = self.signup(&email, PASSWORD, &name).await.expect_json(201, "signing a fresh user up");
        let field =
            |k: &str| body[k].as_str().unwrap_or_else(|| panic!("signup answered no string {k:?}: {body}")).to_owned();
        User { user_id: field("user_id"), token: field("token"), email, password: PASSWORD.to_owned(), name }
    }

    /// `POST /api/auth/login` `{email, password}`.
    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.json_call(Method::POST, "/api/auth/login", None, &json!({ "email": email, "password": password })).await
    }

    /// `POST /api/auth/logout` with a bearer token and no body.
    pub async fn logout(&self, token: &str) -> Resp {
        self.request(Method::POST, "/api/auth/logout", Some(token), None, None).await
    }

    /// `GET /api/users/me`.
    pub async fn get_me(&self, token: &str) -> Resp {
        self.get("/api/users/me", Some(token)).await
    }

    /// `PATCH /api/users/me` with a JSON body.
    pub async fn patch_me(&self, token: &str, body: &Value) -> Resp {
        self.json_call(Method::PATCH, "/api/users/me", Some(token), body).await
    }

    /// `POST /api/payments` with an optional token, an optional `Idempotency-Key` and a JSON body.
    pub async fn purchase(&self, token: Option<&str>, key: Option<&str>, body: &Value) -> Resp {
        self.purchase_raw_key(token, key.map(str::as_bytes), body).await
    }

    /// `POST /api/payments` with the `Idempotency-Key` given as raw header bytes.
    pub async fn purchase_raw_key(&self, token: Option<&str>, key: Option<&[u8]>, body: &Value) -> Resp {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers: Vec<(&str, &[u8])> = vec![("content-type", b"application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_bytes()));
        }
        if let Some(key) = key {
            headers.push(("idempotency-key", key));
        }
        let bytes = serde_json::to_vec(body).expect("serialize JSON body");
        self.send(Method::POST, "/api/payments", &headers, Some(bytes)).await
    }

    /// Buys once with a fresh key and panics unless it answers 201; returns the payment.
    pub async fn buy(&self, token: &str, amount_cents: i64, currency: &str) -> Value {
        self.purchase(Some(token), Some(&unique_key()), &purchase_body(amount_cents, currency))
            .await
            .expect_json(201, "a valid purchase")
    }

    /// `GET /api/payments`.
    pub async fn list_payments(&self, token: &str) -> Resp {
        self.get("/api/payments", Some(token)).await
    }

    /// `GET /api/payments/{id}`.
    pub async fn get_payment(&self, token: &str, id: &str) -> Resp {
        self.get(&format!("/api/payments/{id}"), Some(token)).await
    }

    /// `GET /api/notifications`.
    pub async fn notifications(&self, token: &str) -> Resp {
        self.get("/api/notifications", Some(token)).await
    }

    /// The caller's notifications; panics unless the listing answers 200 with the documented
    /// envelope.
    pub async fn notification_list(&self, token: &str) -> Vec<Value> {
        let body = self.notifications(token).await.expect_json(200, "listing notifications");
        list_of(&body, "notifications", "GET /api/notifications")
    }

    /// The caller's payments; panics unless the listing answers 200 with the documented
    /// envelope.
    pub async fn payment_list(&self, token: &str) -> Vec<Value> {
        let body = self.list_payments(token).await.expect_json(200, "listing payments");
        list_of(&body, "payments", "GET /api/payments")
    }

    /// The charges extsim recorded under `idempotency_key`
    /// (`GET {extsim}/v1/charges?idempotency_key=...` → `{"charges": [...]}`).
    pub async fn extsim_charges(&self, idempotency_key: &str) -> Vec<Value> {
        let url = format!("{}/v1/charges", self.extsim);
        let what = format!("GET {url}?idempotency_key={idempotency_key}");
        let url = reqwest::Url::parse_with_params(&url, [("idempotency_key", idempotency_key)])
            .unwrap_or_else(|e| panic!("{what}: bad extsim URL: {e}"));
        let res = self.client.get(url).send().await.unwrap_or_else(|e| panic!("{what}: extsim request failed: {e:?}"));
        let status = res.status();
        let text = res.text().await.unwrap_or_else(|e| panic!("{what}: reading extsim's body failed: {e:?}"));
        assert!(status.is_success(), "{what}: extsim answered {status}: {text}");
        let body: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: extsim answered non-JSON ({e}): {text}"));
        // extsim is not the API under test: only its `charges` array matters here.
        body["charges"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: extsim answered no \"charges\" array: {body}"))
            .clone()
    }
}

/// `body[field]` as an array, asserting the envelope is exactly `{field: [...]}`.
#[track_caller]
fn list_of(body: &Value, field: &str, what: &str) -> Vec<Value> {
    let obj = body.as_object().unwrap_or_else(|| panic!("{what}: body is not an object: {body}"));
    assert_eq!(keys(obj), vec![field], "{what}: body must be exactly {{\"{field}\": [...]}}, got {body}");
    body[field].as_array().unwrap_or_else(|| panic!("{what}: {field:?} is not an array: {body}")).clone()
}
