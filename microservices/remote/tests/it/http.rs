//! The internal HTTP/JSON transport end to end: real axum servers on loopback, the real
//! users service on a fresh database, and fakes where only the port's contract matters.
//!
//! The point of every test: a remote call fails in exactly the words an in-process call
//! would, and a dead or silent dependency becomes 503 `dependency_unavailable` in bounded time.

use archlab_auth::{AuthApi, Session};
use archlab_kernel::http::edge;
use archlab_kernel::{Error, ErrorKind, Faults, Money, Result};
use archlab_notifications::{Delivery, NotificationEvent, NotificationsApi};
use archlab_remote::http::{
    HttpAuthClient, HttpNotificationsClient, HttpUsersClient, auth_routes, notifications_routes, users_routes,
};
use archlab_remote::service_credential::SERVICE_CREDENTIAL_HEADER;
use archlab_remote::{ClientConfig, ServiceCredentials, Transport};
use archlab_users::{DisplayName, NewProfile, UserStatus, UsersApi, UsersService};
use async_trait::async_trait;
use axum::Router;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Serve `router` behind the lab's edge on a fresh loopback port; its base URL.
async fn serve(router: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
    let addr = listener.local_addr().expect("bound address");
    tokio::spawn(async move { axum::serve(listener, edge(router)).await.expect("serve") });
    format!("http://{addr}")
}

fn config() -> ClientConfig {
    ClientConfig {
        transport: Transport::Http,
        internal_timeout_ms: 3000,
        internal_concurrency: 16,
        ..ClientConfig::default()
    }
}

const SECRET: &[u8] = b"http-test-secret";

/// The process the clients call from.
fn caller() -> ServiceCredentials {
    ServiceCredentials::new("payments-service", SECRET)
}

/// The process serving routes, as the clients name it.
fn host(name: &'static str) -> ServiceCredentials {
    ServiceCredentials::new(name, SECRET)
}

/// A users-service's internal routes over a fresh, migrated database, and its fault points.
async fn users_server() -> (String, Faults) {
    let pool = archlab_testkit::fresh_pool("http").await;
    archlab_users::migrate(&pool).await.expect("migrate users");
    let faults = Faults::default();
    let service: Arc<dyn UsersApi> = Arc::new(UsersService::new(pool, faults.clone()));
    (serve(users_routes(service, &host("users-service"))).await, faults)
}

fn new_profile(user_id: Uuid, email: &str, name: &str) -> NewProfile {
    NewProfile {
        user_id,
        email: archlab_kernel::Email::parse(email).expect("valid email"),
        name: DisplayName::parse(name).expect("valid name"),
    }
}

#[tokio::test]
async fn users_round_trip_create_get_delete() {
    let (url, _) = users_server().await;
    let users = HttpUsersClient::new(&url, &config(), &caller()).expect("client");
    let id = Uuid::new_v4();

    let created = users.create_profile(new_profile(id, " Ada@Example.com ", "  Ada Lovelace ")).await.expect("create");
    assert_eq!(created.user_id, id);
    assert_eq!(created.email, "ada@example.com");
    assert_eq!(created.name, "Ada Lovelace");
    assert_eq!(created.status, UserStatus::Active);
    assert!(created.preferences.email_receipts && !created.preferences.marketing_emails);

    let again = users.create_profile(new_profile(id, "ada@example.com", "Ada Lovelace")).await.expect("repeat create");
    assert_eq!(again, created, "a repeated create is a no-op answering the same profile");
    assert_eq!(users.get_profile(id).await.expect("get"), created);

    users.delete_profile(id).await.expect("delete");
    assert_eq!(users.get_profile(id).await, Err(Error::not_found("user")));
    users.delete_profile(id).await.expect("deleting a missing profile is a no-op");
}

#[tokio::test]
async fn users_unknown_profile_is_the_exact_not_found() {
    let (url, _) = users_server().await;
    let users = HttpUsersClient::new(&url, &config(), &caller()).expect("client");
    let err = users.get_profile(Uuid::new_v4()).await.expect_err("no such profile");
    assert_eq!(
        (err.kind, err.code.as_ref(), err.message.as_str()),
        (ErrorKind::NotFound, "not_found", "user not found")
    );
}

#[tokio::test]
async fn users_conflict_arrives_as_profile_exists() {
    let (url, _) = users_server().await;
    let users = HttpUsersClient::new(&url, &config(), &caller()).expect("client");
    let id = Uuid::new_v4();
    users.create_profile(new_profile(id, "first@example.com", "First")).await.expect("create");
    let err = users.create_profile(new_profile(id, "second@example.com", "Second")).await.expect_err("conflict");
    assert_eq!(err, Error::conflict("profile_exists", "a different profile exists for this user id"));
}

#[tokio::test]
async fn users_fault_arrives_as_the_same_unavailable_and_leaves_nothing() {
    let (url, faults) = users_server().await;
    let users = HttpUsersClient::new(&url, &config(), &caller()).expect("client");
    faults.enable(archlab_users::faults::CREATE_PROFILE);
    let id = Uuid::new_v4();
    let err = users.create_profile(new_profile(id, "ada@example.com", "Ada")).await.expect_err("injected fault");
    assert_eq!(err, Error::unavailable(archlab_users::faults::CREATE_PROFILE, "injected fault"));
    assert!(err.is_transient());
    faults.disable(archlab_users::faults::CREATE_PROFILE);
    assert_eq!(users.get_profile(id).await, Err(Error::not_found("user")), "the failed create was rolled back");
}

/// Records every event it is asked to deliver.
#[derive(Default)]
struct RecordingNotifications {
    events: Mutex<Vec<NotificationEvent>>,
    answer: Uuid,
}

#[async_trait]
impl NotificationsApi for RecordingNotifications {
    async fn deliver(&self, event: NotificationEvent) -> Result<Delivery> {
        self.events.lock().expect("lock").push(event);
        Ok(Delivery { notification_id: self.answer, duplicate: true })
    }
}

#[tokio::test]
async fn notifications_receive_the_event_field_for_field() {
    let fake = Arc::new(RecordingNotifications { answer: Uuid::new_v4(), ..Default::default() });
    let url = serve(notifications_routes(fake.clone(), &host("notifications-service"))).await;
    let client = HttpNotificationsClient::new(&url, &config(), &caller()).expect("client");

    let receipt = NotificationEvent::receipt(
        Uuid::new_v4(),
        Uuid::new_v4(),
        Money::parse(12_345, "EUR").expect("money"),
        Some("ada@example.com".into()),
    );
    let welcome =
        NotificationEvent { email_to: None, ..NotificationEvent::welcome(Uuid::new_v4(), "b@example.com", "Bö") };
    for event in [receipt, welcome] {
        let delivery = client.deliver(event.clone()).await.expect("deliver");
        assert_eq!(delivery, Delivery { notification_id: fake.answer, duplicate: true });
        assert_eq!(fake.events.lock().expect("lock").last(), Some(&event));
    }
    assert_eq!(fake.events.lock().expect("lock").len(), 2);
}

/// Knows one token; refuses every other one with a specific message.
struct OneTokenAuth {
    token: &'static str,
    session: Session,
}

#[async_trait]
impl AuthApi for OneTokenAuth {
    async fn verify_session(&self, token: &str) -> Result<Session> {
        if token == self.token { Ok(self.session) } else { Err(Error::unauthorized("session expired or revoked")) }
    }
}

#[tokio::test]
async fn auth_session_and_unauthorized_arrive_intact() {
    let session = Session { user_id: Uuid::new_v4(), expires_at: chrono::Utc::now() + chrono::Duration::hours(1) };
    let url = serve(auth_routes(Arc::new(OneTokenAuth { token: "good", session }), &host("auth-service"))).await;
    let auth = HttpAuthClient::new(&url, &config(), &caller()).expect("client");
    assert_eq!(auth.verify_session("good").await, Ok(session));
    let err = auth.verify_session("bad").await.expect_err("unknown token");
    assert_eq!(err, Error::unauthorized("session expired or revoked"));
    assert_eq!(err.kind, ErrorKind::Unauthorized);
}

#[tokio::test]
async fn server_not_running_is_unavailable_quickly() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let users = HttpUsersClient::new(&format!("http://{addr}"), &config(), &caller()).expect("client");
    let started = Instant::now();
    let err = users.get_profile(Uuid::new_v4()).await.expect_err("nobody listens");
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(err.code, "dependency_unavailable");
    assert!(err.message.starts_with("users-service unavailable"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(1), "refused connections fail fast, took {:?}", started.elapsed());
}

/// Accepts every call and never answers.
struct SilentAuth;

#[async_trait]
impl AuthApi for SilentAuth {
    async fn verify_session(&self, _: &str) -> Result<Session> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_silent_server_is_unavailable_after_the_timeout() {
    let url = serve(auth_routes(Arc::new(SilentAuth), &host("auth-service"))).await;
    let config = ClientConfig { internal_timeout_ms: 200, ..config() };
    let auth = HttpAuthClient::new(&url, &config, &caller()).expect("client");
    let started = Instant::now();
    let err = auth.verify_session("any").await.expect_err("no answer");
    let took = started.elapsed();
    assert_eq!(err.kind, ErrorKind::Unavailable);
    assert_eq!(err.code, "dependency_unavailable");
    assert!(err.message.starts_with("auth-service unavailable"), "{err}");
    assert!(err.message.contains("200 ms timeout"), "the message names the timeout: {err}");
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "took {took:?}");
}

#[tokio::test]
async fn a_5xx_without_an_error_body_is_unavailable() {
    let router = Router::new().route(
        "/internal/users/profiles/{id}",
        axum::routing::get(|| async { (http::StatusCode::BAD_GATEWAY, "upstream proxy says no") }),
    );
    let users = HttpUsersClient::new(&serve(router).await, &config(), &caller()).expect("client");
    let err = users.get_profile(Uuid::new_v4()).await.expect_err("502 text");
    assert_eq!(err, Error::unavailable("users-service", "answered 502 Bad Gateway"));
}

#[tokio::test]
async fn bad_input_to_internal_routes_is_a_clean_4xx() {
    let (url, _) = users_server().await;
    let client = reqwest::Client::new();
    // Signed, so that what is refused is the input and not the caller.
    let signed = |method: http::Method, path: &str| {
        let credential = caller().sign("users-service", &method, path);
        client.request(method, format!("{url}{path}")).header(SERVICE_CREDENTIAL_HEADER, credential)
    };

    let res = signed(http::Method::POST, "/internal/users/profiles")
        .header("content-type", "application/json")
        .body("{\"user_id\": ")
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.expect("JSON error body");
    assert_eq!(body, serde_json::json!({"error": {"code": "malformed_json", "message": "the body is not valid JSON"}}));

    let res = signed(http::Method::POST, "/internal/users/profiles")
        .header("content-type", "application/json")
        .body(serde_json::json!({"user_id": Uuid::new_v4(), "email": "not-an-email", "name": "Ada"}).to_string())
        .send()
        .await
        .expect("send");
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");

    let res = signed(http::Method::GET, "/internal/users/profiles/not-a-uuid").send().await.expect("send");
    assert_eq!(res.status(), 422);
    let body: serde_json::Value = res.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], "validation_failed", "{body}");
}

#[test]
fn a_bad_base_url_is_refused_at_construction() {
    let err = HttpUsersClient::new("not a url", &config(), &caller()).expect_err("bad URL");
    assert_eq!(err.code, "bad_config");
    assert!(err.message.contains("users-service"), "{err}");
}

/// A list of replicas is refused, naming the URL, when one is not an http(s) URL or the
/// replicas differ in more than host and port (the balancer only swaps host and port).
#[tokio::test]
async fn a_replica_list_that_cannot_be_balanced_is_refused() {
    for (list, says) in [
        ("http://127.0.0.1:1,ftp://127.0.0.1:2", "must be http"),
        ("http://127.0.0.1:1,not a url", "invalid URL"),
        ("http://127.0.0.1:1,http://127.0.0.1:2/prefix", "differ in more than host and port"),
    ] {
        let refused = archlab_remote::http::HttpUpstream::new("payments-service", list, &config()).expect_err(list);
        assert!(refused.message.contains(says), "{list}: {}", refused.message);
    }
    let two =
        archlab_remote::http::HttpUpstream::new("payments-service", "http://127.0.0.1:1,http://127.0.0.1:2", &config());
    assert_eq!(two.expect("two replicas").base_url(), "http://127.0.0.1:1");
}
