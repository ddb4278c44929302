//! The gateway against fake upstreams that echo what they received, and a fake `AuthApi`.
//!
//! Everything runs on loopback port 0: the gateway as `App::with_auth` makes it, four small
//! axum servers standing in for the services. The fakes count their calls, so "the gateway
//! answered this itself" is checked, not assumed.

use archlab_auth::{AuthApi, Session};
use archlab_conformance::raw::{SPELLINGS, documented_routes, send_raw};
use archlab_gateway::{Access, App, Config, ROUTES, Service};
use archlab_kernel::Server;
use archlab_kernel::config::AbuseArgs;
use archlab_kernel::http::{Authenticator, Caller};
use archlab_kernel::{Error, Result};
use archlab_remote::identity::{IDENTITY_HEADER, IdentityArgs, IdentitySigner, SignedIdentityAuthenticator};
use archlab_remote::{ClientConfig, Switch, Transport, Upstreams};
use async_trait::async_trait;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use tokio::net::TcpListener;
use uuid::Uuid;

const SECRET: &str = "gateway-test-secret";
const GOOD_TOKEN: &str = "good-token";
const AUTH_DOWN_TOKEN: &str = "auth-down-token";

// ---------------------------------------------------------------------------------------------
// fakes

/// One fake service: echoes every request as JSON, counts them, and has a switchable `/health`.
#[derive(Clone)]
struct Fake {
    name: &'static str,
    calls: Arc<AtomicUsize>,
    healthy: Arc<AtomicBool>,
}

impl Fake {
    fn new(name: &'static str) -> Self {
        Self { name, calls: Arc::default(), healthy: Arc::new(AtomicBool::new(true)) }
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    fn router(&self) -> Router {
        Router::new().route("/health", axum::routing::get(health)).fallback(echo).with_state(self.clone())
    }

    /// Serve on `listener`; the fake's base URL.
    fn serve_on(&self, listener: TcpListener) -> String {
        let url = format!("http://{}", listener.local_addr().expect("bound"));
        let router = self.router();
        tokio::spawn(async move { axum::serve(listener, router).await.expect("fake upstream") });
        url
    }

    async fn serve(&self) -> String {
        self.serve_on(TcpListener::bind("127.0.0.1:0").await.expect("bind"))
    }
}

async fn health(State(fake): State<Fake>) -> StatusCode {
    if fake.healthy.load(Ordering::SeqCst) { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }
}

/// A test asks a fake to misbehave with this header (the gateway forwards it, as any
/// end-to-end header): `hang` never answers, `teapot` answers 418 in plain text.
const BEHAVE: &str = "x-fake-behave";

async fn echo(State(fake): State<Fake>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    fake.calls.fetch_add(1, Ordering::SeqCst);
    let behave = headers.get(BEHAVE).and_then(|v| v.to_str().ok()).unwrap_or_default();
    if behave == "hang" {
        std::future::pending::<()>().await;
    }
    if behave == "teapot" {
        return (
            StatusCode::IM_A_TEAPOT,
            [("content-type", "text/plain; charset=utf-8"), ("x-upstream-extra", "yes")],
            "short and stout",
        )
            .into_response();
    }
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, value) in &headers {
        seen.entry(name.as_str().to_owned()).or_default().push(String::from_utf8_lossy(value.as_bytes()).into_owned());
    }
    axum::Json(json!({
        "service": fake.name,
        "method": method.as_str(),
        "path": uri.path(),
        "query": uri.query(),
        "headers": seen,
        "body_len": body.len(),
        "body": String::from_utf8_lossy(&body),
    }))
    .into_response()
}

/// Vouches for one token, is "down" for another, refuses the rest; counts its calls.
struct FakeAuth {
    user_id: Uuid,
    calls: AtomicUsize,
}

#[async_trait]
impl AuthApi for FakeAuth {
    async fn verify_session(&self, token: &str) -> Result<Session> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match token {
            GOOD_TOKEN => {
                Ok(Session { user_id: self.user_id, expires_at: chrono::Utc::now() + chrono::Duration::hours(1) })
            }
            AUTH_DOWN_TOKEN => Err(Error::unavailable("auth-service", "cannot connect")),
            _ => Err(Error::unauthorized("unknown or expired session")),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// the gateway under test

struct Running {
    url: String,
    auth: Arc<FakeAuth>,
    fakes: HashMap<Service, Fake>,
    http: reqwest::Client,
}

/// Where each service is: a fake we serve, or a URL we choose (e.g. a dead port).
enum At {
    Fake,
    Url(String),
}

fn config(urls: &HashMap<Service, String>, upstream_timeout_ms: u64) -> Config {
    Config {
        addr: "127.0.0.1:0".parse().expect("addr"),
        upstreams: Upstreams {
            auth_http_url: urls[&Service::Auth].clone(),
            users_http_url: urls[&Service::Users].clone(),
            payments_http_url: urls[&Service::Payments].clone(),
            notifications_http_url: urls[&Service::Notifications].clone(),
            // The fake `AuthApi` stands in for these; nothing listens there.
            auth_grpc_url: "http://127.0.0.1:9".into(),
            users_grpc_url: "http://127.0.0.1:9".into(),
            notifications_grpc_url: "http://127.0.0.1:9".into(),
        },
        upstream_timeout_ms,
        client: ClientConfig {
            transport: Transport::Http,
            internal_timeout_ms: 2000,
            internal_concurrency: 64,
            ..ClientConfig::default()
        },
        identity: IdentityArgs { internal_secret: SECRET.into() },
        limits: AbuseArgs::default(),
        pass_through: Switch::Off,
    }
}

async fn spawn_with(placement: impl Fn(Service) -> At, upstream_timeout_ms: u64) -> Running {
    spawn_tweaked(placement, upstream_timeout_ms, |_| {}).await
}

async fn spawn_tweaked(
    placement: impl Fn(Service) -> At,
    upstream_timeout_ms: u64,
    tweak: impl FnOnce(&mut Config),
) -> Running {
    let mut fakes = HashMap::new();
    let mut urls = HashMap::new();
    for service in Service::ALL {
        let url = match placement(service) {
            At::Fake => {
                let fake = Fake::new(service.name());
                let url = fake.serve().await;
                fakes.insert(service, fake);
                url
            }
            At::Url(url) => url,
        };
        urls.insert(service, url);
    }
    let auth = Arc::new(FakeAuth { user_id: Uuid::new_v4(), calls: AtomicUsize::new(0) });
    let mut config = config(&urls, upstream_timeout_ms);
    tweak(&mut config);
    let gateway = App::with_auth(config, auth.clone()).await.expect("build gateway");
    let url = gateway.addrs().http_url();
    tokio::spawn(gateway.run_until_stopped(std::future::pending()));
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    Running { url, auth, fakes, http }
}

async fn spawn() -> Running {
    spawn_with(|_| At::Fake, 5000).await
}

/// A loopback address nobody listens on (bound, then released).
fn dead_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

impl Running {
    fn req(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.http.request(method, format!("{}{path}", self.url))
    }

    fn authed(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.req(method, path).bearer_auth(GOOD_TOKEN)
    }

    fn calls(&self, service: Service) -> usize {
        self.fakes[&service].calls()
    }

    fn total_calls(&self) -> usize {
        self.fakes.values().map(Fake::calls).sum()
    }
}

async fn json_of(res: reqwest::Response, status: u16) -> Value {
    let got = res.status();
    let text = res.text().await.expect("body");
    assert_eq!(got.as_u16(), status, "{text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

async fn expect_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    let body = json_of(res, status).await;
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "only `error`: {body}");
    body
}

/// The headers an echo says the upstream received.
fn echoed_headers(echo: &Value) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, values) in echo["headers"].as_object().expect("headers object") {
        for v in values.as_array().expect("values") {
            headers.append(
                http::HeaderName::from_bytes(name.as_bytes()).expect("name"),
                v.as_str().expect("text").parse().expect("value"),
            );
        }
    }
    headers
}

/// The request an echo says the upstream received: method, path and headers.
fn echoed_request(echo: &Value) -> http::request::Parts {
    let method = echo["method"].as_str().expect("method");
    let path = echo["path"].as_str().expect("path");
    let mut request = http::Request::builder().method(method).uri(path).body(()).expect("request").into_parts().0;
    request.headers = echoed_headers(echo);
    request
}

/// A concrete path for a route pattern.
fn concrete(path: &str) -> String {
    path.replace("{id}", &Uuid::new_v4().to_string())
}

fn method_of(route: &archlab_gateway::Route) -> Method {
    Method::from_bytes(route.method.as_bytes()).expect("method")
}

// ---------------------------------------------------------------------------------------------
// routing and identity

#[tokio::test]
async fn public_routes_forward_without_identity() {
    let gw = spawn().await;
    let body = r#"{"email":"ada@example.com","password":"correct horse","name":"Ada"}"#;
    for path in ["/api/auth/signup", "/api/auth/login"] {
        let forged = IdentitySigner::new(SECRET.as_bytes()).sign(Uuid::new_v4(), &Method::POST, path);
        let res = gw
            .req(Method::POST, path)
            .header("content-type", "application/json")
            .header(IDENTITY_HEADER, forged)
            .body(body)
            .send()
            .await
            .expect("send");
        let echo = json_of(res, 200).await;
        assert_eq!(echo["service"], "auth-service");
        assert_eq!(echo["method"], "POST");
        assert_eq!(echo["path"], path);
        assert_eq!(echo["body"], body, "the body arrives byte for byte");
        let headers = echoed_headers(&echo);
        assert_eq!(headers["content-type"], "application/json");
        assert!(!headers.contains_key(IDENTITY_HEADER), "no identity on public routes, forged or not: {echo}");
        assert!(!headers.contains_key("authorization"), "{echo}");
    }
    assert_eq!(gw.calls(Service::Auth), 2);
    assert_eq!(gw.auth.calls.load(Ordering::SeqCst), 0, "public routes need no session check");
}

#[tokio::test]
async fn protected_routes_without_a_usable_token_are_401_and_never_forwarded() {
    let gw = spawn().await;
    let protected: Vec<_> = ROUTES.iter().filter(|r| r.access == Access::Bearer).collect();
    assert_eq!(protected.len(), 8, "every route but signup and login");
    for route in protected {
        let path = concrete(route.path);
        let method = method_of(route);
        let without = gw.req(method.clone(), &path).send().await.expect("send");
        expect_error(without, 401, "unauthorized").await;
        for auth in ["Bearer not-a-session", "Basic Z3Vlc3Q6Z3Vlc3Q=", "Bearer "] {
            let res = gw.req(method.clone(), &path).header("authorization", auth).send().await.expect("send");
            expect_error(res, 401, "unauthorized").await;
        }
    }
    assert_eq!(gw.total_calls(), 0, "no upstream saw an unauthenticated request");
}

#[tokio::test]
async fn a_good_token_forwards_a_valid_identity_and_the_authorization() {
    let gw = spawn().await;
    let authn = SignedIdentityAuthenticator::new(SECRET.as_bytes());
    for route in ROUTES.iter().filter(|r| r.access == Access::Bearer) {
        let path = concrete(route.path);
        let echo = json_of(gw.authed(method_of(route), &path).send().await.expect("send"), 200).await;
        assert_eq!(echo["service"], route.service.name(), "{} {path} goes to its owner", route.method);
        assert_eq!(echo["method"], route.method);
        assert_eq!(echo["path"], path);
        let headers = echoed_headers(&echo);
        assert_eq!(headers["authorization"], format!("Bearer {GOOD_TOKEN}"), "payments re-checks the session");
        let received = echoed_request(&echo);
        let caller = authn.authenticate(&received).await.expect("the upstream can verify the identity");
        assert_eq!(caller, Caller { user_id: gw.auth.user_id });
        // Signed for this method and path only: replayed on another route it opens nothing.
        let mut elsewhere = received;
        elsewhere.uri = "/api/users/me".parse().expect("uri");
        elsewhere.method = if elsewhere.method == Method::PATCH { Method::GET } else { Method::PATCH };
        authn.authenticate(&elsewhere).await.expect_err("the identity is bound to its route");
    }
    assert_eq!(gw.auth.calls.load(Ordering::SeqCst), 8, "one session check per request");
}

/// In front of replicated monoliths: no session check, no identity (a forged one dropped),
/// the bearer token passed on for the upstream to check, every protected route forwarded
/// whatever its token, since the upstream is the one that answers 401.
#[tokio::test]
async fn passing_through_forwards_the_token_unchecked_and_no_identity() {
    let gw = spawn_tweaked(|_| At::Fake, 5000, |c| c.pass_through = Switch::On).await;
    let forged = IdentitySigner::new(SECRET.as_bytes()).sign(Uuid::new_v4(), &Method::GET, "/api/users/me");
    for route in ROUTES.iter().filter(|r| r.access == Access::Bearer) {
        let path = concrete(route.path);
        let sent = gw.http.request(method_of(route), format!("{}{path}", gw.url));
        let sent = sent.header("authorization", "Bearer not-checked-here").header(IDENTITY_HEADER, forged.clone());
        let echo = json_of(sent.send().await.expect("send"), 200).await;
        assert_eq!(echo["service"], route.service.name(), "{} {path}", route.method);
        let headers = echoed_headers(&echo);
        assert_eq!(headers["authorization"], "Bearer not-checked-here");
        assert!(!headers.contains_key(IDENTITY_HEADER), "no identity, forged or not: {echo}");
    }
    assert_eq!(gw.auth.calls.load(Ordering::SeqCst), 0, "no session check");
}

#[tokio::test]
async fn an_incoming_identity_header_is_replaced() {
    let gw = spawn().await;
    // The strongest forgery: a header validly signed for someone else.
    let victim = Uuid::new_v4();
    let forged = IdentitySigner::new(SECRET.as_bytes()).sign(victim, &Method::GET, "/api/users/me");
    let res = gw
        .authed(Method::GET, "/api/users/me")
        .header(IDENTITY_HEADER, forged.clone())
        .header(IDENTITY_HEADER, "garbage")
        .send()
        .await
        .expect("send");
    let echo = json_of(res, 200).await;
    let headers = echoed_headers(&echo);
    let values: Vec<_> = headers.get_all(IDENTITY_HEADER).iter().collect();
    assert_eq!(values.len(), 1, "exactly the gateway's own identity: {echo}");
    assert_ne!(values[0], &forged);
    let caller =
        SignedIdentityAuthenticator::new(SECRET.as_bytes()).authenticate(&echoed_request(&echo)).await.expect("valid");
    assert_eq!(caller.user_id, gw.auth.user_id);
    assert_ne!(caller.user_id, victim);
}

#[tokio::test]
async fn idempotency_key_and_end_to_end_headers_pass_hop_by_hop_and_the_query_do_not() {
    let gw = spawn().await;
    let res = gw
        .authed(Method::POST, "/api/payments?a=1&b=two%20words")
        .header("content-type", "application/json")
        .header("idempotency-key", "key-123")
        .header("x-request-id", "req-7")
        .header("connection", "x-private")
        .header("x-private", "hop-only")
        .body(r#"{"amount_cents":100,"currency":"USD"}"#)
        .send()
        .await
        .expect("send");
    let echo = json_of(res, 200).await;
    assert_eq!(echo["service"], "payments-service");
    assert_eq!(echo["path"], "/api/payments");
    assert_eq!(echo["query"], Value::Null, "no route takes a query, so none is forwarded: {echo}");
    assert_eq!(echo["body"], r#"{"amount_cents":100,"currency":"USD"}"#);
    let headers = echoed_headers(&echo);
    assert_eq!(headers["idempotency-key"], "key-123");
    assert_eq!(headers["x-request-id"], "req-7");
    assert!(!headers.contains_key("x-private"), "a header named by Connection stays on its hop: {echo}");
    assert_ne!(
        headers.get("host").and_then(|h| h.to_str().ok()),
        gw.url.strip_prefix("http://"),
        "host is the upstream's"
    );
}

#[tokio::test]
async fn the_upstream_answer_comes_back_unchanged() {
    let gw = spawn().await;
    let res = gw.authed(Method::GET, "/api/notifications").header(BEHAVE, "teapot").send().await.expect("send");
    assert_eq!(res.status(), StatusCode::IM_A_TEAPOT);
    assert_eq!(res.headers()["content-type"], "text/plain; charset=utf-8");
    assert_eq!(res.headers()["x-upstream-extra"], "yes");
    assert_eq!(res.text().await.expect("body"), "short and stout");
    assert_eq!(gw.calls(Service::Notifications), 1);
}

// ---------------------------------------------------------------------------------------------
// what the gateway answers itself

#[tokio::test]
async fn unknown_routes_are_404_at_the_gateway() {
    let gw = spawn().await;
    let id = Uuid::new_v4();
    for (method, path) in [
        (Method::GET, "/nope".to_owned()),
        (Method::GET, "/api/nope".to_owned()),
        (Method::GET, "/api/users/me/extra".to_owned()),
        (Method::GET, format!("/api/payments/{id}/refund")),
        (Method::GET, format!("/internal/users/profiles/{id}")),
        (Method::POST, "/internal/auth/verify-session".to_owned()),
        (Method::POST, "/internal/notifications/deliver".to_owned()),
    ] {
        let res = gw.authed(method, &path).send().await.expect("send");
        let body = expect_error(res, 404, "not_found").await;
        assert_eq!(body["error"]["message"], "route not found", "{path}: {body}");
    }
    assert_eq!(gw.total_calls(), 0);
}

#[tokio::test]
async fn wrong_methods_are_405_at_the_gateway() {
    let gw = spawn().await;
    for (method, path) in [
        (Method::DELETE, "/api/auth/signup".to_owned()),
        (Method::GET, "/api/auth/login".to_owned()),
        (Method::DELETE, "/api/users/me".to_owned()),
        (Method::PUT, "/api/payments".to_owned()),
        (Method::DELETE, format!("/api/payments/{}", Uuid::new_v4())),
        (Method::POST, "/api/notifications".to_owned()),
        (Method::POST, "/health".to_owned()),
    ] {
        let res = gw.authed(method, &path).send().await.expect("send");
        expect_error(res, 405, "method_not_allowed").await;
    }
    assert_eq!(gw.total_calls(), 0);
}

#[tokio::test]
async fn bodies_over_64_kib_are_413_at_the_gateway() {
    let gw = spawn().await;
    let limit = archlab_kernel::http::BODY_LIMIT;
    for path in ["/api/auth/signup", "/api/payments"] {
        let res = gw
            .authed(Method::POST, path)
            .header("content-type", "application/json")
            .body(vec![b' '; limit + 1])
            .send()
            .await
            .expect("send");
        expect_error(res, 413, "payload_too_large").await;
    }
    assert_eq!(gw.total_calls(), 0);
    let res = gw
        .req(Method::POST, "/api/auth/signup")
        .header("content-type", "application/json")
        .body(vec![b' '; limit])
        .send()
        .await
        .expect("send");
    let echo = json_of(res, 200).await;
    assert_eq!(echo["body_len"], limit, "exactly 64 KiB is forwarded whole");
}

// ---------------------------------------------------------------------------------------------
// paths: only what the table routes is forwarded

#[tokio::test]
async fn every_route_in_every_non_canonical_spelling_is_400_and_reaches_nothing() {
    let gw = spawn().await;
    let victim = Uuid::new_v4().to_string();
    for route in ROUTES {
        let path = concrete(route.path);
        for spelling in SPELLINGS {
            let target = (spelling.spell)(&path, &victim);
            let resp = send_raw(&gw.url, route.method, target.as_bytes(), Some(GOOD_TOKEN)).await;
            resp.expect_error(400, "invalid_path", &format!("{} of {} {}", spelling.name, route.method, route.path));
        }
    }
    assert_eq!(gw.total_calls(), 0, "no upstream saw a non-canonical path");
    assert_eq!(gw.auth.calls.load(Ordering::SeqCst), 0, "the path is refused before the session check");

    // The control: the same raw client and token, with canonical paths, reach every upstream.
    for route in ROUTES {
        let resp = send_raw(&gw.url, route.method, concrete(route.path).as_bytes(), Some(GOOD_TOKEN)).await;
        resp.expect_json(200, "a canonical path is forwarded");
    }
    assert_eq!(gw.total_calls(), ROUTES.len());
}

#[tokio::test]
async fn raw_control_and_non_ascii_bytes_are_400_and_reach_nothing() {
    let gw = spawn().await;
    for target in [
        &b"/api/users/me\x01"[..],
        b"/api/users/me\x7f",
        b"/api/users/\xc0\xae\xc0\xae/internal",
        b"/api/users/caf\xc3\xa9",
        b"/api/users/me\x00",
    ] {
        let resp = send_raw(&gw.url, "GET", target, Some(GOOD_TOKEN)).await;
        // hyper refuses these while parsing the request line, with a bare 400 (no JSON body:
        // no router runs); were it to pass one on, the edge would answer `invalid_path`.
        assert_eq!(resp.status, 400, "{}: {}", resp.what, resp.text());
    }
    assert_eq!(gw.total_calls(), 0);
    assert_eq!(gw.auth.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn the_upstream_path_is_the_route_with_its_id_re_encoded() {
    let gw = spawn().await;
    let id = Uuid::new_v4();
    for (spelled, owner) in [
        (format!("/api/users/{}", id.to_string().to_uppercase()), "users-service"),
        (format!("/api/users/{}", id.simple()), "users-service"),
        (format!("/api/payments/%7B{id}%7D"), "payments-service"),
        (format!("/api/payments/urn:uuid:{id}?extra=1"), "payments-service"),
    ] {
        let resp = send_raw(&gw.url, "GET", spelled.as_bytes(), Some(GOOD_TOKEN)).await;
        let echo = resp.expect_json(200, "an id in another UUID spelling");
        assert_eq!(echo["service"], owner, "{spelled}: {echo}");
        let pattern = if owner == "users-service" { "/api/users" } else { "/api/payments" };
        assert_eq!(echo["path"], format!("{pattern}/{id}"), "{spelled}: the one hyphenated spelling is sent: {echo}");
        assert_eq!(echo["query"], Value::Null, "{spelled}: {echo}");
    }
}

#[tokio::test]
async fn an_id_that_is_not_a_uuid_is_the_monoliths_422_after_the_token_check() {
    let gw = spawn().await;
    for path in ["/api/users/not-a-uuid", "/api/payments/1234", "/api/users/%7Bnope%7D", "/api/payments/me"] {
        expect_error(gw.req(Method::GET, path).send().await.expect("send"), 401, "unauthorized").await;
        let body =
            expect_error(gw.authed(Method::GET, path).send().await.expect("send"), 422, "validation_failed").await;
        assert_eq!(body["error"]["message"], "id must be a UUID", "{path}: {body}");
    }
    assert_eq!(gw.total_calls(), 0, "an id that is not a UUID is answered at the gateway");
}

// ---------------------------------------------------------------------------------------------
// failures

#[tokio::test]
async fn an_unreachable_upstream_is_503_naming_it() {
    let dead = format!("http://{}", dead_addr());
    let gw = spawn_with(|s| if s == Service::Payments { At::Url(dead.clone()) } else { At::Fake }, 5000).await;
    let res = gw
        .authed(Method::POST, "/api/payments")
        .header("content-type", "application/json")
        .header("idempotency-key", "k")
        .body("{}")
        .send()
        .await
        .expect("send");
    let body = expect_error(res, 503, "dependency_unavailable").await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("payments-service"), "{body}");
    // The others still work.
    json_of(gw.authed(Method::GET, "/api/users/me").send().await.expect("send"), 200).await;
}

#[tokio::test]
async fn a_silent_upstream_is_503_after_the_gateway_timeout() {
    let gw = spawn_with(|_| At::Fake, 300).await;
    let started = std::time::Instant::now();
    let res = gw.authed(Method::GET, "/api/payments").header(BEHAVE, "hang").send().await.expect("send");
    let body = expect_error(res, 503, "dependency_unavailable").await;
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("payments-service") && message.contains("300 ms timeout"), "{body}");
    assert!(started.elapsed() < std::time::Duration::from_secs(3), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn auth_unavailable_is_503_and_nothing_is_forwarded() {
    let gw = spawn().await;
    let res = gw.req(Method::GET, "/api/users/me").bearer_auth(AUTH_DOWN_TOKEN).send().await.expect("send");
    let body = expect_error(res, 503, "dependency_unavailable").await;
    assert!(body["error"]["message"].as_str().unwrap_or_default().contains("auth-service"), "{body}");
    assert_eq!(gw.total_calls(), 0);
}

// ---------------------------------------------------------------------------------------------
// health and readiness

#[tokio::test]
async fn ready_is_503_while_an_upstream_is_down_and_200_once_it_is_up() {
    let addr = dead_addr();
    let gw =
        spawn_with(|s| if s == Service::Notifications { At::Url(format!("http://{addr}")) } else { At::Fake }, 5000)
            .await;

    let health = json_of(gw.req(Method::GET, "/health").send().await.expect("send"), 200).await;
    assert_eq!(health, json!({"status": "ok"}), "liveness does not depend on upstreams");

    let body = json_of(gw.req(Method::GET, "/ready").send().await.expect("send"), 503).await;
    assert_eq!(body["status"], "not_ready", "{body}");
    assert_ne!(body["checks"]["notifications-service"], "ok", "{body}");
    for name in ["auth-service", "users-service", "payments-service"] {
        assert_eq!(body["checks"][name], "ok", "{body}");
    }

    // Now the notifications-service comes up on its address.
    let listener = TcpListener::bind(addr).await.expect("rebind the released port");
    Fake::new("notifications-service").serve_on(listener);
    let body = json_of(gw.req(Method::GET, "/ready").send().await.expect("send"), 200).await;
    assert_eq!(body["status"], "ready", "{body}");
    let checks = body["checks"].as_object().expect("checks");
    assert_eq!(checks.len(), 4, "{body}");
    assert!(checks.values().all(|v| v == "ok"), "{body}");
}

#[tokio::test]
async fn ready_follows_an_upstreams_health_answer() {
    let gw = spawn().await;
    json_of(gw.req(Method::GET, "/ready").send().await.expect("send"), 200).await;
    gw.fakes[&Service::Users].healthy.store(false, Ordering::SeqCst);
    let body = json_of(gw.req(Method::GET, "/ready").send().await.expect("send"), 503).await;
    assert!(body["checks"]["users-service"].as_str().unwrap_or_default().contains("503"), "{body}");
    gw.fakes[&Service::Users].healthy.store(true, Ordering::SeqCst);
    json_of(gw.req(Method::GET, "/ready").send().await.expect("send"), 200).await;
    assert_eq!(gw.total_calls(), 0, "health checks are not forwarded traffic");
}

#[tokio::test]
async fn metrics_counts_the_gateways_calls_to_the_services() {
    let gw = spawn().await;
    let scrape = || async {
        let response = gw.req(Method::GET, "/metrics").send().await.expect("send");
        assert_eq!(response.status(), StatusCode::OK);
        let kind = response.headers()[http::header::CONTENT_TYPE].to_str().expect("ascii").to_owned();
        assert!(kind.starts_with("text/plain"), "{kind}");
        let text = response.text().await.expect("body");
        let counts = archlab_kernel::metrics::parse(&text);
        counts.iter().find(|(kind, _)| kind == "internal_rpc").map(|(_, n)| *n).expect("an internal_rpc series")
    };
    let before = scrape().await;
    // `/ready` asks each of the four services' `/health` through the counted client stack.
    json_of(gw.req(Method::GET, "/ready").send().await.expect("send"), 200).await;
    // Counters are process-wide and other tests run alongside: only a lower bound holds.
    let after = scrape().await;
    assert!(after >= before + 4, "four upstream calls, internal_rpc went {before} -> {after}");
}

// ---------------------------------------------------------------------------------------------
// the table and the contract

#[test]
fn the_route_table_mirrors_docs_api_md() {
    let mut documented: Vec<(String, String, bool)> =
        documented_routes().into_iter().map(|(m, p, bearer)| (m.to_owned(), p.to_owned(), bearer)).collect();
    documented.sort();
    let mut table: Vec<(String, String, bool)> = ROUTES
        .iter()
        .map(|r| (r.method.to_owned(), r.path.to_owned(), r.access == Access::Bearer))
        .chain(
            ["/health", "/ready", "/metrics", "/openapi.json"].map(|path| ("GET".to_owned(), path.to_owned(), false)),
        )
        .collect();
    table.sort();
    assert_eq!(
        table, documented,
        "ROUTES (plus /health, /ready, /metrics and /openapi.json) must be exactly docs/api.md's endpoints"
    );
}

#[tokio::test]
async fn the_gateway_answers_the_openapi_document_itself() {
    let gw = spawn().await;
    let res = gw.req(Method::GET, "/openapi.json").send().await.expect("send");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "application/json");
    archlab_conformance::contract::assert_is_docs_openapi(&res.text().await.expect("body"), "the gateway");
    assert_eq!(gw.total_calls(), 0, "no service is asked for it");
}
