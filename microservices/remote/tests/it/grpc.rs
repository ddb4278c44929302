//! The ports over gRPC, end to end: real tonic servers on `127.0.0.1:0`, the crate's clients,
//! the real users service on a fresh database, and small fakes where a port's behaviour is
//! the point (a fixed answer, a session, a call that never returns).
//!
//! The claim under test: a remote call answers exactly what the in-process call answers, and
//! fails only in one extra way (`Unavailable`, naming the dependency).

use archlab_auth::{AuthApi, Session};
use archlab_kernel::{Email, Error, ErrorKind, Faults, Money, Result};
use archlab_notifications::{Delivery, NotificationEvent, NotificationsApi};
use archlab_proto::notifications::v1::{self as notifications_pb, notification_event::Kind};
use archlab_proto::users::v1 as users_pb;
use archlab_remote::grpc::{GrpcAuthClient, GrpcNotificationsClient, GrpcServer, GrpcUsersClient};
use archlab_remote::service_credential::Sign;
use archlab_remote::{ClientConfig, ServiceCredentials};
use archlab_users::{DisplayName, NewProfile, UserStatus, UsersApi, UsersService};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use uuid::Uuid;

/// A server running on a loopback port until [`Running::stop`].
struct Running {
    url: String,
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl Running {
    /// Bind first, then serve: a client may connect at once (the kernel queues it).
    async fn start(server: GrpcServer) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.serve(listener, async {
            let _ = stopped.await;
        }));
        Self { url, stop, task }
    }

    /// Ask for a graceful shutdown and check the server ended cleanly.
    async fn stop(self) {
        let _ = self.stop.send(());
        let ended = tokio::time::timeout(Duration::from_secs(10), self.task).await;
        ended.expect("server did not stop").expect("server task panicked").expect("server failed");
    }
}

const SECRET: &[u8] = b"grpc-test-secret";

/// The process the clients call from.
fn caller() -> ServiceCredentials {
    ServiceCredentials::new("payments-service", SECRET)
}

/// A server of the process `name`, as the clients name it.
fn server_of(name: &'static str) -> GrpcServer {
    GrpcServer::new(&ServiceCredentials::new(name, SECRET))
}

/// A raw channel to `url` that signs every call to `callee` as [`caller`], for the generated
/// clients (which send what a crate client never would).
async fn signed_channel(url: &str, callee: &'static str) -> Sign<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned()).unwrap().connect().await.unwrap();
    tower::Layer::layer(&caller().sign_layer(callee), channel)
}

async fn users_service() -> (UsersService, Faults) {
    let pool = archlab_testkit::fresh_pool("grpc").await;
    archlab_users::migrate(&pool).await.unwrap();
    let faults = Faults::default();
    (UsersService::new(pool, faults.clone()), faults)
}

fn new_profile(user_id: Uuid, email: &str) -> NewProfile {
    NewProfile { user_id, email: Email::parse(email).unwrap(), name: DisplayName::parse("Ada Lovelace").unwrap() }
}

#[tokio::test]
async fn users_round_trip_against_the_real_service() {
    let (service, _faults) = users_service().await;
    let server = Running::start(server_of("users-service").users(Arc::new(service.clone()))).await;
    let client = GrpcUsersClient::new(&server.url, &ClientConfig::default(), &caller()).unwrap();
    let id = Uuid::new_v4();

    let created = client.create_profile(new_profile(id, "Ada@Example.com")).await.unwrap();
    assert_eq!(created.user_id, id);
    assert_eq!(created.email, "ada@example.com");
    assert_eq!(created.name, "Ada Lovelace");
    assert_eq!(created.status, UserStatus::Active);
    assert!(created.preferences.email_receipts && !created.preferences.marketing_emails);

    // Field for field what the service itself reads, to the microsecond.
    let remote = client.get_profile(id).await.unwrap();
    assert_eq!(remote, created);
    assert_eq!(remote, service.get_profile(id).await.unwrap());

    // Repeating the create is a no-op; another person under the same id is a conflict.
    assert_eq!(client.create_profile(new_profile(id, "ada@example.com")).await.unwrap(), created);
    let conflict = client.create_profile(new_profile(id, "grace@example.com")).await.unwrap_err();
    assert_eq!(conflict.kind, ErrorKind::Conflict);
    assert_eq!(conflict.code, "profile_exists");
    assert_eq!(conflict, service.create_profile(new_profile(id, "grace@example.com")).await.unwrap_err());

    client.delete_profile(id).await.unwrap();
    client.delete_profile(id).await.unwrap(); // deleting again is a no-op
    let gone = client.get_profile(id).await.unwrap_err();
    assert_eq!(gone.kind, ErrorKind::NotFound);
    assert_eq!(gone.code, "not_found");
    assert_eq!(gone, service.get_profile(id).await.unwrap_err(), "the same error as in-process");

    server.stop().await;
}

#[tokio::test]
async fn a_fault_in_the_service_arrives_as_the_same_error() {
    let (service, faults) = users_service().await;
    let server = Running::start(server_of("users-service").users(Arc::new(service.clone()))).await;
    let client = GrpcUsersClient::new(&server.url, &ClientConfig::default(), &caller()).unwrap();
    faults.enable(archlab_users::faults::CREATE_PROFILE);

    let remote = client.create_profile(new_profile(Uuid::new_v4(), "ada@example.com")).await.unwrap_err();
    let local = service.create_profile(new_profile(Uuid::new_v4(), "ada@example.com")).await.unwrap_err();
    assert_eq!(remote.kind, ErrorKind::Unavailable);
    assert_eq!(remote, local);
    assert_eq!(remote, Error::unavailable(archlab_users::faults::CREATE_PROFILE, "injected fault"));

    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_are_invalid_arguments_not_panics() {
    let (service, _faults) = users_service().await;
    let server = Running::start(server_of("users-service").users(Arc::new(service))).await;
    let mut raw = users_pb::users_client::UsersClient::new(signed_channel(&server.url, "users-service").await);

    let bad_uuid = raw.get_profile(users_pb::GetProfileRequest { user_id: "not-a-uuid".into() }).await.unwrap_err();
    assert_eq!(bad_uuid.code(), tonic::Code::InvalidArgument);
    assert_eq!(bad_uuid.message(), "user_id must be a UUID");
    assert_eq!(bad_uuid.metadata().get("x-archlab-code").unwrap(), "validation_failed");

    let request = users_pb::CreateProfileRequest {
        user_id: Uuid::new_v4().to_string(),
        email: "no-at-sign".into(),
        name: "Ada".into(),
    };
    let bad_email = raw.create_profile(request).await.unwrap_err();
    assert_eq!(bad_email.code(), tonic::Code::InvalidArgument);
    assert_eq!(bad_email.metadata().get("x-archlab-code").unwrap(), "validation_failed");
    assert_eq!(bad_email.metadata().get("x-archlab-kind").unwrap(), "unprocessable");

    server.stop().await;
}

/// Counts calls, keeps what arrived, answers a fixed delivery.
#[derive(Default)]
struct FakeNotifications {
    calls: AtomicUsize,
    received: Mutex<Vec<NotificationEvent>>,
}

const DELIVERY: Delivery = Delivery { notification_id: Uuid::from_u128(0x1234), duplicate: true };

#[async_trait]
impl NotificationsApi for FakeNotifications {
    async fn deliver(&self, event: NotificationEvent) -> Result<Delivery> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.received.lock().unwrap().push(event);
        Ok(DELIVERY)
    }
}

#[tokio::test]
async fn notification_events_arrive_field_for_field() {
    let fake = Arc::new(FakeNotifications::default());
    let server = Running::start(server_of("notifications-service").notifications(fake.clone())).await;
    let client = GrpcNotificationsClient::new(&server.url, &ClientConfig::default(), &caller()).unwrap();

    let (user, payment) = (Uuid::new_v4(), Uuid::new_v4());
    let events = [
        NotificationEvent::welcome(user, "ada@example.com", "Ada Lovelace"),
        NotificationEvent::receipt(user, payment, Money::parse(1999, "EUR").unwrap(), Some("ada@example.com".into())),
        NotificationEvent::receipt(user, payment, Money::parse(Money::MAX_CENTS, "GBP").unwrap(), None),
        NotificationEvent { email_to: None, ..NotificationEvent::welcome(user, "x@example.com", "Ünïcødé ✓") },
    ];
    for event in &events {
        assert_eq!(client.deliver(event.clone()).await.unwrap(), DELIVERY);
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), events.len());
    assert_eq!(*fake.received.lock().unwrap(), events);

    server.stop().await;
}

#[tokio::test]
async fn malformed_events_are_invalid_arguments_and_never_reach_the_port() {
    let fake = Arc::new(FakeNotifications::default());
    let server = Running::start(server_of("notifications-service").notifications(fake.clone())).await;
    let mut raw = notifications_pb::notifications_client::NotificationsClient::new(
        signed_channel(&server.url, "notifications-service").await,
    );
    let good = notifications_pb::NotificationEvent {
        event_id: Uuid::new_v4().to_string(),
        user_id: Uuid::new_v4().to_string(),
        email_to: None,
        kind: Some(Kind::Receipt(notifications_pb::Receipt {
            payment_id: Uuid::new_v4().to_string(),
            amount_cents: 100,
            currency: "USD".into(),
        })),
    };
    let no_kind = notifications_pb::NotificationEvent { kind: None, ..good.clone() };
    let bad_id = notifications_pb::NotificationEvent { event_id: "42".into(), ..good.clone() };
    let negative = notifications_pb::NotificationEvent {
        kind: Some(Kind::Receipt(notifications_pb::Receipt {
            payment_id: Uuid::new_v4().to_string(),
            amount_cents: -100,
            currency: "USD".into(),
        })),
        ..good.clone()
    };
    let bad_currency = notifications_pb::NotificationEvent {
        kind: Some(Kind::Receipt(notifications_pb::Receipt {
            payment_id: Uuid::new_v4().to_string(),
            amount_cents: 100,
            currency: "usd".into(),
        })),
        ..good.clone()
    };
    for event in [None, Some(no_kind), Some(bad_id), Some(negative), Some(bad_currency)] {
        let status = raw.deliver(notifications_pb::DeliverRequest { event }).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::InvalidArgument);
        assert_eq!(status.metadata().get("x-archlab-code").unwrap(), "validation_failed");
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    // The same message, well formed, goes through.
    raw.deliver(notifications_pb::DeliverRequest { event: Some(good) }).await.unwrap();
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);

    server.stop().await;
}

/// Knows one token.
struct FakeAuth {
    session: Session,
}

#[async_trait]
impl AuthApi for FakeAuth {
    async fn verify_session(&self, token: &str) -> Result<Session> {
        if token == "good-token" { Ok(self.session) } else { Err(Error::unauthorized("invalid or expired session")) }
    }
}

#[tokio::test]
async fn sessions_and_refusals_arrive_unchanged() {
    let expires_at = DateTime::<Utc>::from_timestamp_micros(1_900_000_000_654_321).unwrap();
    let session = Session { user_id: Uuid::new_v4(), expires_at };
    let server = Running::start(server_of("auth-service").auth(Arc::new(FakeAuth { session }))).await;
    let client = GrpcAuthClient::new(&server.url, &ClientConfig::default(), &caller()).unwrap();

    let got = client.verify_session("good-token").await.unwrap();
    assert_eq!(got, session);
    assert_eq!(got.expires_at.timestamp_subsec_micros(), 654_321);

    let refused = client.verify_session("bad-token").await.unwrap_err();
    assert_eq!(refused, Error::unauthorized("invalid or expired session"));
    assert_eq!(refused.kind, ErrorKind::Unauthorized);
    assert_eq!(refused.code, "unauthorized");

    server.stop().await;
}

#[tokio::test]
async fn a_dependency_that_is_not_running_is_unavailable_quickly() {
    // A port that was free a moment ago and has no listener now.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let config = ClientConfig::default();
    let client = GrpcUsersClient::new(&url, &config, &caller()).unwrap(); // lazy: no connection yet

    let started = Instant::now();
    let e = client.get_profile(Uuid::new_v4()).await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e.kind, ErrorKind::Unavailable);
    assert_eq!(e.code, "dependency_unavailable");
    assert!(e.message.starts_with("users-service unavailable"), "{}", e.message);
    assert!(took < Duration::from_millis(config.internal_timeout_ms / 3), "took {took:?}");

    let e = GrpcNotificationsClient::new(&url, &config, &caller())
        .unwrap()
        .deliver(NotificationEvent::welcome(Uuid::new_v4(), "a@example.com", "A"))
        .await
        .unwrap_err();
    assert!(e.message.starts_with("notifications-service unavailable"), "{}", e.message);
}

#[tokio::test]
async fn a_bad_url_is_a_configuration_error() {
    let e = GrpcAuthClient::new("not a url", &ClientConfig::default(), &caller()).err().unwrap();
    assert_eq!(e.code, "invalid_url");
}

/// Never answers.
struct SilentAuth;

#[async_trait]
impl AuthApi for SilentAuth {
    async fn verify_session(&self, _token: &str) -> Result<Session> {
        std::future::pending().await
    }
}

#[tokio::test]
async fn a_dependency_that_never_answers_times_out() {
    let server = Running::start(server_of("auth-service").auth(Arc::new(SilentAuth))).await;
    let config = ClientConfig { internal_timeout_ms: 200, ..ClientConfig::default() };
    let client = GrpcAuthClient::new(&server.url, &config, &caller()).unwrap();

    let started = Instant::now();
    let e = client.verify_session("any").await.unwrap_err();
    let took = started.elapsed();
    assert_eq!(e, Error::unavailable("auth-service", "timed out after 200 ms"));
    assert!(took >= Duration::from_millis(200) && took < Duration::from_secs(2), "took {took:?}");

    server.stop().await;
}

#[tokio::test]
async fn health_reports_each_hosted_service_serving() {
    let fake = Arc::new(FakeNotifications::default());
    let session = Session { user_id: Uuid::nil(), expires_at: Utc::now() };
    let server =
        Running::start(server_of("auth-service").auth(Arc::new(FakeAuth { session })).notifications(fake)).await;
    let channel = tonic::transport::Endpoint::from_shared(server.url.clone()).unwrap().connect().await.unwrap();
    let mut health = HealthClient::new(channel);

    for service in ["", "archlab.auth.v1.Auth", "archlab.notifications.v1.Notifications"] {
        let answer = health.check(HealthCheckRequest { service: service.into() }).await.unwrap().into_inner();
        assert_eq!(answer.status(), ServingStatus::Serving, "{service:?}");
    }
    // Not hosted here, so not reported.
    let missing = health.check(HealthCheckRequest { service: "archlab.users.v1.Users".into() }).await.unwrap_err();
    assert_eq!(missing.code(), tonic::Code::NotFound);

    server.stop().await;
}
