//! The resilience policies of the remote clients, end to end: the crate's real clients and
//! servers on loopback, over both transports, against a tiny upstream that fails, recovers
//! or hangs on demand and counts the calls that reach it.
//!
//! What each test pins down: retries happen for idempotent calls and never for the others;
//! they stay within the retry budget; the breaker opens (calls stop reaching the upstream),
//! half-opens and closes once the upstream recovers; a bulkhead wait beyond its bound is
//! refused; the callee receives a deadline smaller than the caller's timeout, and a call
//! whose budget is spent is never sent. Every refusal is `Unavailable` naming the dependency.

use archlab_kernel::http::edge;
use archlab_kernel::metrics::{self, Counter};
use archlab_kernel::{Error, ErrorKind, Result};
use archlab_remote::grpc::{GrpcServer, GrpcUsersClient};
use archlab_remote::http::{HttpUpstream, HttpUsersClient, users_routes};
use archlab_remote::{ClientConfig, ServiceCredentials, Switch, Transport, deadline};
use archlab_users::{NewProfile, Preferences, Profile, UserStatus, UsersApi};
use async_trait::async_trait;
use axum::Router;
use axum::routing::post;
use http::{Method, StatusCode};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use uuid::Uuid;

const SECRET: &[u8] = b"resilience-test-secret";
const USERS: &str = "users-service";

/// The process the clients call from.
fn caller() -> ServiceCredentials {
    ServiceCredentials::new("payments-service", SECRET)
}

/// An upstream that answers, fails or hangs on demand, and counts what reaches it.
#[derive(Default)]
struct Upstream {
    /// Calls that reached the upstream.
    calls: AtomicUsize,
    /// Answer `Unavailable` while set.
    failing: AtomicBool,
    /// Answer `Unavailable` to this many calls first.
    fail_first: AtomicUsize,
    /// Hold every call until `release` is notified.
    hang: AtomicBool,
    release: Notify,
    /// The deadline each call arrived with (`None`: none).
    budgets: Mutex<Vec<Option<Duration>>>,
}

impl Upstream {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

/// [`Upstream`] as the users port (only `get_profile` is exercised).
struct FakeUsers(Arc<Upstream>);

#[async_trait]
impl UsersApi for FakeUsers {
    async fn create_profile(&self, _new: NewProfile) -> Result<Profile> {
        Err(Error::internal("not used by these tests"))
    }

    async fn get_profile(&self, user_id: Uuid) -> Result<Profile> {
        let up = &self.0;
        up.calls.fetch_add(1, Ordering::SeqCst);
        up.budgets.lock().expect("budgets").push(deadline::remaining());
        if up.hang.load(Ordering::SeqCst) {
            up.release.notified().await;
        }
        let first = up.fail_first.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if first || up.failing.load(Ordering::SeqCst) {
            return Err(Error::unavailable("users-db", "down"));
        }
        Ok(Profile {
            user_id,
            email: "a@example.com".into(),
            name: "A".into(),
            status: UserStatus::Active,
            preferences: Preferences { email_receipts: true, marketing_emails: false },
            created_at: chrono::Utc::now(),
        })
    }

    async fn delete_profile(&self, _user_id: Uuid) -> Result<()> {
        Err(Error::internal("not used by these tests"))
    }
}

/// Serve `upstream` as users-service over `transport` on a fresh loopback port, and a
/// client of it configured by `config`.
async fn users(transport: Transport, config: &ClientConfig, upstream: &Arc<Upstream>) -> Arc<dyn UsersApi> {
    let api: Arc<dyn UsersApi> = Arc::new(FakeUsers(upstream.clone()));
    let host = ServiceCredentials::new(USERS, SECRET);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    let config = ClientConfig { transport, ..config.clone() };
    match transport {
        Transport::Grpc => {
            let server = GrpcServer::new(&host).users(api);
            tokio::spawn(server.serve(listener, std::future::pending()));
            Arc::new(GrpcUsersClient::new(&url, &config, &caller()).expect("grpc client"))
        }
        Transport::Http => {
            let router = edge(users_routes(api, &host));
            tokio::spawn(async move { axum::serve(listener, router).await });
            Arc::new(HttpUsersClient::new(&url, &config, &caller()).expect("http client"))
        }
    }
}

const BOTH: [Transport; 2] = [Transport::Grpc, Transport::Http];

/// Only one policy at a time, so each test sees exactly the one it is about.
fn only(retry: Switch, breaker: Switch) -> ClientConfig {
    ClientConfig { retry, breaker, internal_timeout_ms: 3000, ..ClientConfig::default() }
}

/// Poll `condition` every 10 ms until it holds, or fail naming `what` after `within`.
async fn eventually<F: Future<Output = bool>>(what: &str, within: Duration, mut condition: impl FnMut() -> F) {
    let started = Instant::now();
    while !condition().await {
        assert!(started.elapsed() < within, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn grew(counter: &Counter, before: u64) -> bool {
    counter.get() > before
}

// ---- retries

#[tokio::test]
async fn an_idempotent_call_is_retried_until_it_succeeds() {
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        upstream.fail_first.store(2, Ordering::SeqCst);
        let client = users(transport, &only(Switch::On, Switch::Off), &upstream).await;
        let retries = metrics::RETRIES.get();

        let id = Uuid::new_v4();
        let profile = client.get_profile(id).await.unwrap_or_else(|e| panic!("{transport}: {e:?}"));
        assert_eq!(profile.user_id, id);
        assert_eq!(upstream.calls(), 3, "{transport}: two failures, then the answer");
        assert!(metrics::RETRIES.get() >= retries + 2, "{transport}: retries are counted");
    }
}

#[tokio::test]
async fn with_retries_off_a_failure_is_returned_at_once() {
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        upstream.fail_first.store(1, Ordering::SeqCst);
        let client = users(transport, &only(Switch::Off, Switch::Off), &upstream).await;
        let e = client.get_profile(Uuid::new_v4()).await.expect_err("the one failure comes back");
        assert_eq!(e, Error::unavailable("users-db", "down"), "{transport}: the callee's own error, unchanged");
        assert_eq!(upstream.calls(), 1, "{transport}");
    }
}

/// A public-API-like upstream whose every route answers 503, counting each request by path.
async fn always_unavailable() -> (String, Arc<Mutex<Vec<(Method, String)>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let answer = move |method: Method, uri: http::Uri| {
        let log = log.clone();
        async move {
            log.lock().expect("log").push((method, uri.path().to_owned()));
            (StatusCode::SERVICE_UNAVAILABLE, "down")
        }
    };
    let router = Router::new()
        .route("/api/auth/login", post(answer.clone()))
        .route("/api/payments", post(answer.clone()).get(answer));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("bound"));
    tokio::spawn(async move { axum::serve(listener, router).await });
    (url, seen)
}

#[tokio::test]
async fn a_call_that_may_not_be_repeated_is_sent_exactly_once() {
    let (url, seen) = always_unavailable().await;
    let config = ClientConfig { transport: Transport::Http, ..only(Switch::On, Switch::Off) };
    let upstream = HttpUpstream::new("payments-service", &url, &config).expect("upstream");
    let count = |method: Method, path: &str| {
        seen.lock().expect("log").iter().filter(|(m, p)| *m == method && p == path).count()
    };

    let body = serde_json::json!({"email": "a@example.com", "password": "secret"});
    let e = upstream.call(Method::POST, "/api/auth/login", Some(&body)).await.expect_err("503");
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert_eq!(count(Method::POST, "/api/auth/login"), 1, "a login is never sent twice");

    let payment = serde_json::json!({"amount_cents": 100, "currency": "USD"});
    upstream.call(Method::POST, "/api/payments", Some(&payment)).await.expect_err("503");
    assert_eq!(count(Method::POST, "/api/payments"), 1, "a payment without an idempotency key is sent once");

    let mut keyed = upstream.request(Method::POST, "/api/payments").expect("request");
    keyed.headers_mut().insert("idempotency-key", http::HeaderValue::from_static("key-1"));
    *keyed.body_mut() = Some(serde_json::to_vec(&payment).expect("json").into());
    let answer = upstream.fetch(keyed).await.expect("an answer, the last attempt's");
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(count(Method::POST, "/api/payments"), 1 + 3, "a keyed payment is retried (3 attempts)");

    upstream.call(Method::GET, "/api/payments", None::<&()>).await.expect_err("503");
    assert_eq!(count(Method::GET, "/api/payments"), 3, "a read is retried");
}

/// `n` calls at once through `client` to an upstream that fails every one; each must fail.
async fn send_failing(client: &Arc<dyn UsersApi>, n: usize, transport: Transport) {
    let calls = (0..n).map(|_| {
        let client = client.clone();
        async move { client.get_profile(Uuid::new_v4()).await }
    });
    let results = futures::future::join_all(calls).await;
    assert!(results.iter().all(|r| r.is_err()), "{transport}: every call fails");
}

#[tokio::test]
async fn retries_stay_within_the_budget_when_everything_fails() {
    const CALLS: usize = 150;
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        upstream.failing.store(true, Ordering::SeqCst);
        let client = users(transport, &only(Switch::On, Switch::Off), &upstream).await;
        let refused = metrics::RETRIES_REFUSED.get();

        send_failing(&client, CALLS, transport).await;

        // The budget: 20 % of the calls made, plus 10 per second over its 10 s window.
        let retries = upstream.calls() - CALLS;
        let allowed = CALLS / 5 + 10 * 10;
        assert!(retries <= allowed, "{transport}: {retries} retries for {CALLS} calls, budget {allowed}");
        assert!(retries >= CALLS / 5, "{transport}: retries did happen ({retries})");
        assert!(grew(&metrics::RETRIES_REFUSED, refused), "{transport}: the budget refused some retries");
    }
}

#[tokio::test]
async fn without_the_budget_every_failing_call_is_retried_to_the_limit() {
    const CALLS: usize = 150;
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        upstream.failing.store(true, Ordering::SeqCst);
        let config = ClientConfig { retry_budget: Switch::Off, ..only(Switch::On, Switch::Off) };
        let client = users(transport, &config, &upstream).await;

        send_failing(&client, CALLS, transport).await;
        // Two retries per call, far past the 20 % + 10/s the budget would allow: the storm
        // the budget exists to prevent.
        let retries = upstream.calls() - CALLS;
        assert_eq!(retries, CALLS * archlab_remote::retry::MAX_RETRIES as usize, "{transport}");
    }
}

// ---- circuit breaker

#[tokio::test]
async fn the_breaker_opens_on_failures_then_half_opens_and_closes_when_the_upstream_recovers() {
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        upstream.failing.store(true, Ordering::SeqCst);
        let config = ClientConfig { breaker_open_ms: 300, ..only(Switch::Off, Switch::On) };
        let client = users(transport, &config, &upstream).await;
        let (opened, half, closed) =
            (metrics::BREAKER_OPENED.get(), metrics::BREAKER_HALF_OPENED.get(), metrics::BREAKER_CLOSED.get());

        // Fail until the breaker refuses: within one window of calls.
        let mut refused = None;
        for _ in 0..40 {
            let e = client.get_profile(Uuid::new_v4()).await.expect_err("failing upstream");
            assert_eq!(e.kind, ErrorKind::Unavailable, "{transport}: {e:?}");
            if e.message.contains("circuit breaker open") {
                refused = Some(e);
                break;
            }
        }
        let refused = refused.unwrap_or_else(|| panic!("{transport}: the breaker never opened"));
        assert_eq!(refused, Error::unavailable(USERS, "circuit breaker open, not called"));
        assert!(grew(&metrics::BREAKER_OPENED, opened), "{transport}: the opening is counted");
        let reached = upstream.calls();
        assert!(reached <= 20, "{transport}: opened after {reached} calls, more than one window");
        for _ in 0..5 {
            client.get_profile(Uuid::new_v4()).await.expect_err("still open");
        }
        assert_eq!(upstream.calls(), reached, "{transport}: an open breaker sends nothing");

        // The upstream recovers; after the open period, trial calls go through and close it.
        upstream.failing.store(false, Ordering::SeqCst);
        let probe = client.clone();
        eventually("the breaker lets a trial call through", Duration::from_secs(5), || {
            let probe = probe.clone();
            async move { probe.get_profile(Uuid::new_v4()).await.is_ok() }
        })
        .await;
        assert!(grew(&metrics::BREAKER_HALF_OPENED, half), "{transport}: half-open is counted");
        for _ in 0..5 {
            client.get_profile(Uuid::new_v4()).await.unwrap_or_else(|e| panic!("{transport}: closed again: {e:?}"));
        }
        assert!(grew(&metrics::BREAKER_CLOSED, closed), "{transport}: closing is counted");
        assert_eq!(upstream.calls(), reached + 1 + 5, "{transport}: every call reaches the upstream again");
    }
}

// ---- bulkhead

#[tokio::test]
async fn a_call_that_waits_longer_than_the_bulkhead_allows_is_refused_unsent() {
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        upstream.hang.store(true, Ordering::SeqCst);
        let config = ClientConfig { internal_concurrency: 1, bulkhead_wait_ms: 50, ..only(Switch::Off, Switch::Off) };
        let client = users(transport, &config, &upstream).await;
        let rejected = metrics::BULKHEAD_REJECTED.get();

        let holder = client.clone();
        let first = tokio::spawn(async move { holder.get_profile(Uuid::new_v4()).await });
        let up = upstream.clone();
        eventually("the first call holds the only slot", Duration::from_secs(5), || {
            let up = up.clone();
            async move { up.calls() == 1 }
        })
        .await;

        let started = Instant::now();
        let e = client.get_profile(Uuid::new_v4()).await.expect_err("no slot");
        let took = started.elapsed();
        assert_eq!(e, Error::unavailable(USERS, "too many calls in flight, not called"), "{transport}");
        assert!(took >= Duration::from_millis(50) && took < Duration::from_millis(1500), "{transport}: took {took:?}");
        assert_eq!(upstream.calls(), 1, "{transport}: the refused call was not sent");
        assert!(grew(&metrics::BULKHEAD_REJECTED, rejected), "{transport}: the refusal is counted");

        upstream.hang.store(false, Ordering::SeqCst);
        upstream.release.notify_waiters();
        first.await.expect("first call").unwrap_or_else(|e| panic!("{transport}: the first call ends well: {e:?}"));
    }
}

// ---- deadlines

#[tokio::test]
async fn the_callee_receives_a_deadline_smaller_than_the_callers_timeout() {
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        let client = users(transport, &only(Switch::Off, Switch::Off), &upstream).await;

        client.get_profile(Uuid::new_v4()).await.expect("answer");
        // Within a caller's shorter budget, the callee gets what is left of that instead.
        deadline::within(Duration::from_millis(800), client.get_profile(Uuid::new_v4())).await.expect("answer");

        let budgets = upstream.budgets.lock().expect("budgets").clone();
        let own = budgets[0].unwrap_or_else(|| panic!("{transport}: no deadline arrived"));
        assert!(own < Duration::from_millis(3000), "{transport}: {own:?} is not less than the 3000 ms timeout");
        assert!(own > Duration::from_millis(1000), "{transport}: {own:?} lost far too much on loopback");
        let inherited = budgets[1].unwrap_or_else(|| panic!("{transport}: no deadline arrived"));
        assert!(inherited < Duration::from_millis(800), "{transport}: {inherited:?} exceeds the caller's 800 ms");
    }
}

#[tokio::test]
async fn without_propagation_no_deadline_travels() {
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        let config = ClientConfig { deadline_propagation: Switch::Off, ..only(Switch::Off, Switch::Off) };
        let client = users(transport, &config, &upstream).await;
        deadline::within(Duration::from_millis(800), client.get_profile(Uuid::new_v4())).await.expect("answer");
        assert_eq!(upstream.budgets.lock().expect("budgets").as_slice(), [None], "{transport}");
    }
}

#[tokio::test]
async fn a_call_whose_budget_is_spent_fails_fast_without_touching_the_wire() {
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        let client = users(transport, &only(Switch::On, Switch::On), &upstream).await;
        let spent = metrics::DEADLINE_SPENT.get();

        let started = Instant::now();
        let e = deadline::within(Duration::ZERO, client.get_profile(Uuid::new_v4())).await.expect_err("spent");
        assert!(started.elapsed() < Duration::from_millis(500), "{transport}: not fast");
        assert_eq!(e, Error::unavailable(USERS, "the caller's deadline was spent before the call"), "{transport}");
        assert_eq!(upstream.calls(), 0, "{transport}: nothing was sent");
        assert!(grew(&metrics::DEADLINE_SPENT, spent), "{transport}: the refusal is counted");
    }
}

#[tokio::test]
async fn a_hanging_upstream_is_cut_at_the_callers_shorter_budget() {
    for transport in BOTH {
        let upstream = Arc::new(Upstream::default());
        upstream.hang.store(true, Ordering::SeqCst);
        let client = users(transport, &only(Switch::On, Switch::Off), &upstream).await;

        let started = Instant::now();
        let e = deadline::within(Duration::from_millis(300), client.get_profile(Uuid::new_v4())).await;
        let took = started.elapsed();
        let e = e.expect_err("no answer");
        assert_eq!(e.kind, ErrorKind::Unavailable, "{transport}: {e:?}");
        assert!(e.message.starts_with("users-service unavailable"), "{transport}: {}", e.message);
        assert!(took < Duration::from_millis(1500), "{transport}: waited {took:?}, not the caller's 300 ms");
        upstream.hang.store(false, Ordering::SeqCst);
        upstream.release.notify_waiters();
    }
}
