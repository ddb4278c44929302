//! Service credentials: the documented recipe, every way a credential can be wrong, and the
//! refusal as each transport answers it — before the port is called.
//!
//! The same matrix against the real services and their databases is in
//! microservices/system-tests/tests/it/internal_auth.rs.

use archlab_kernel::http::edge;
use archlab_kernel::{Error, ErrorKind, Result};
use archlab_notifications::{Delivery, NotificationEvent, NotificationsApi};
use archlab_proto::notifications::v1::{self as notifications_pb, notifications_client::NotificationsClient};
use archlab_remote::errors::from_status;
use archlab_remote::grpc::{GrpcNotificationsClient, GrpcServer};
use archlab_remote::http::{HttpNotificationsClient, notifications_routes};
use archlab_remote::identity::{IDENTITY_KEY_PURPOSE, IdentitySigner};
use archlab_remote::service_credential::{MAX_AGE_MS, SERVICE_CREDENTIAL_HEADER, SERVICE_KEY_PURPOSE};
use archlab_remote::{ClientConfig, ServiceCredentials, Transport};
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use http::{HeaderMap, HeaderValue, Method};
use sha2::Sha256;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use uuid::Uuid;

const SECRET: &[u8] = b"service-credential-test-secret";
const CALLER: &str = "payments-service";
const CALLEE: &str = "notifications-service";
const DELIVER_HTTP: (&str, &str) = ("POST", "/internal/notifications/deliver");
const DELIVER_GRPC: (&str, &str) = ("POST", "/archlab.notifications.v1.Notifications/Deliver");

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A credential built by hand, the way the module docs describe it.
struct Recipe {
    secret: &'static [u8],
    purpose: &'static str,
    caller: &'static str,
    callee: &'static str,
    issued: i64,
    method: &'static str,
    path: &'static str,
}

impl Recipe {
    /// A valid credential for `method path` on [`CALLEE`], issued now.
    fn valid((method, path): (&'static str, &'static str)) -> Self {
        Self {
            secret: SECRET,
            purpose: SERVICE_KEY_PURPOSE,
            caller: CALLER,
            callee: CALLEE,
            issued: now_ms(),
            method,
            path,
        }
    }

    fn value(&self) -> HeaderValue {
        let payload = format!("{}.{}.{}", self.caller, self.callee, self.issued);
        let key = hmac(self.secret, self.purpose);
        let signature = hex::encode(hmac(&key, &format!("{payload}.{} {}", self.method, self.path)));
        HeaderValue::try_from(format!("{payload}.{signature}")).expect("header value")
    }
}

/// Every wrong credential for a call to `target`, named, as the header values to send.
fn wrong_credentials(target: (&'static str, &'static str)) -> Vec<(&'static str, Vec<HeaderValue>)> {
    let valid = || Recipe::valid(target);
    let other_method = if target.0 == "POST" { "GET" } else { "POST" };
    vec![
        ("no credential", vec![]),
        ("garbage", vec![HeaderValue::from_static("not-a-credential")]),
        ("another secret", vec![Recipe { secret: b"another-secret", ..valid() }.value()]),
        (
            "the bare secret as key",
            vec![{
                let payload = format!("{CALLER}.{CALLEE}.{}", now_ms());
                let signature = hex::encode(hmac(SECRET, &format!("{payload}.{} {}", target.0, target.1)));
                HeaderValue::try_from(format!("{payload}.{signature}")).expect("header")
            }],
        ),
        ("the identity key", vec![Recipe { purpose: IDENTITY_KEY_PURPOSE, ..valid() }.value()]),
        ("another callee", vec![Recipe { callee: "users-service", ..valid() }.value()]),
        ("another method", vec![Recipe { method: other_method, ..valid() }.value()]),
        ("another path", vec![Recipe { path: "/internal/users/profiles", ..valid() }.value()]),
        ("expired", vec![Recipe { issued: now_ms() - MAX_AGE_MS - 1_000, ..valid() }.value()]),
        ("from the future", vec![Recipe { issued: now_ms() + 60_000, ..valid() }.value()]),
        ("two credentials", vec![valid().value(), valid().value()]),
        (
            "a tampered caller",
            vec![{
                let value = valid().value();
                let forged = value.to_str().expect("ASCII").replacen(CALLER, "gateway", 1);
                HeaderValue::try_from(forged).expect("header")
            }],
        ),
    ]
}

fn headers(values: &[HeaderValue]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for value in values {
        headers.append(SERVICE_CREDENTIAL_HEADER, value.clone());
    }
    headers
}

#[test]
fn the_credential_has_the_documented_shape() {
    let signed = ServiceCredentials::new(CALLER, SECRET).sign(CALLEE, &Method::POST, DELIVER_GRPC.1);
    let text = signed.to_str().expect("ASCII");
    let fields: Vec<&str> = text.split('.').collect();
    assert_eq!(fields.len(), 4, "{text}");
    assert_eq!((fields[0], fields[1]), (CALLER, CALLEE));
    let issued: i64 = fields[2].parse().expect("unix ms");
    assert!((now_ms() - issued).abs() < 5_000, "issued now: {issued}");
    assert_eq!(signed, Recipe { issued, ..Recipe::valid(DELIVER_GRPC) }.value(), "exactly the documented recipe");
}

#[test]
fn a_valid_credential_names_its_caller() {
    let callee = ServiceCredentials::new(CALLEE, SECRET);
    let (method, path) = (Method::POST, DELIVER_HTTP.1);
    let signed = ServiceCredentials::new(CALLER, SECRET).sign(CALLEE, &method, path);
    assert_eq!(callee.verify(&headers(&[signed]), &method, path).expect("valid"), CALLER);
    let by_hand = Recipe::valid(DELIVER_HTTP).value();
    assert_eq!(callee.verify(&headers(&[by_hand]), &method, path).expect("valid"), CALLER);
}

#[test]
fn every_wrong_credential_is_refused_as_unauthorized() {
    let callee = ServiceCredentials::new(CALLEE, SECRET);
    let (method, path) = (Method::POST, DELIVER_HTTP.1);
    for (what, values) in wrong_credentials(DELIVER_HTTP) {
        let err = callee.verify(&headers(&values), &method, path).expect_err(what);
        assert_eq!((err.kind, err.code.as_ref()), (ErrorKind::Unauthorized, "unauthorized"), "{what}: {err}");
    }
}

#[test]
fn a_gateway_identity_is_not_a_service_credential() {
    // Both signed over the same route with keys derived from the same secret.
    let identity = IdentitySigner::new(SECRET).sign(Uuid::new_v4(), &Method::POST, DELIVER_HTTP.1);
    let err = ServiceCredentials::new(CALLEE, SECRET)
        .verify(&headers(&[identity]), &Method::POST, DELIVER_HTTP.1)
        .expect_err("an identity is not a credential");
    assert_eq!(err.kind, ErrorKind::Unauthorized);
}

/// Counts the events it is asked to deliver.
#[derive(Default)]
struct CountingNotifications {
    calls: AtomicUsize,
}

#[async_trait]
impl NotificationsApi for CountingNotifications {
    async fn deliver(&self, _event: NotificationEvent) -> Result<Delivery> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Ok(Delivery { notification_id: Uuid::new_v4(), duplicate: false })
    }
}

fn event() -> NotificationEvent {
    NotificationEvent::welcome(Uuid::new_v4(), "ada@example.com", "Ada")
}

fn event_pb() -> notifications_pb::NotificationEvent {
    notifications_pb::NotificationEvent {
        event_id: Uuid::new_v4().to_string(),
        user_id: Uuid::new_v4().to_string(),
        email_to: None,
        kind: Some(notifications_pb::notification_event::Kind::Welcome(notifications_pb::Welcome {
            name: "Ada".into(),
        })),
    }
}

/// notifications-service's internal HTTP routes and gRPC server over one counting fake.
async fn serve_both(fake: Arc<CountingNotifications>) -> (String, String) {
    let host = ServiceCredentials::new(CALLEE, SECRET);
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let http_url = format!("http://{}", http.local_addr().expect("bound"));
    let router = edge(notifications_routes(fake.clone(), &host));
    tokio::spawn(async move { axum::serve(http, router).await.expect("serve HTTP") });
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let grpc_url = format!("http://{}", grpc.local_addr().expect("bound"));
    tokio::spawn(GrpcServer::new(&host).notifications(fake).serve(grpc, std::future::pending()));
    (http_url, grpc_url)
}

#[tokio::test]
async fn both_transports_refuse_before_the_port_and_the_client_reads_the_same_error() {
    let fake = Arc::new(CountingNotifications::default());
    let (http_url, grpc_url) = serve_both(fake.clone()).await;
    let http = reqwest::Client::builder().no_proxy().build().expect("client");
    let channel =
        tonic::transport::Endpoint::from_shared(grpc_url.clone()).expect("url").connect().await.expect("connect");
    let body = serde_json::to_vec(&event()).expect("JSON");

    for (what, values) in wrong_credentials(DELIVER_HTTP) {
        let mut request = http.post(format!("{http_url}{}", DELIVER_HTTP.1)).header("content-type", "application/json");
        for value in &values {
            request = request.header(SERVICE_CREDENTIAL_HEADER, value.clone());
        }
        let res = request.body(body.clone()).send().await.expect("send");
        assert_eq!(res.status(), 401, "HTTP, {what}");
        let json: serde_json::Value = res.json().await.expect("a JSON error");
        assert_eq!(json["error"]["code"], "unauthorized", "HTTP, {what}: {json}");
        let http_error = Error::unauthorized(json["error"]["message"].as_str().expect("message"));

        // The same mistake over gRPC, for its own path: the same error, read back by `from_status`.
        let (_, grpc_values) = wrong_credentials(DELIVER_GRPC).into_iter().find(|(w, _)| *w == what).expect("same set");
        let mut grpc = NotificationsClient::with_interceptor(channel.clone(), move |mut request: tonic::Request<()>| {
            for value in &grpc_values {
                request
                    .metadata_mut()
                    .append(SERVICE_CREDENTIAL_HEADER, value.to_str().expect("ASCII").parse().expect("metadata"));
            }
            Ok(request)
        });
        // A well-formed event, so that a call let through would reach the port and be counted.
        let status = grpc
            .deliver(notifications_pb::DeliverRequest { event: Some(event_pb()) })
            .await
            .expect_err(&format!("gRPC, {what}: must be refused"));
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "gRPC, {what}: {status:?}");
        let grpc_error = from_status(&status, CALLEE);
        assert_eq!(grpc_error, http_error, "{what}: the same refusal over both transports");
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0, "no refused call reached the port");

    // The control: the crate's clients sign, and get through on both transports.
    let from = ServiceCredentials::new(CALLER, SECRET);
    let config = |transport| ClientConfig { transport, ..ClientConfig::default() };
    HttpNotificationsClient::new(&http_url, &config(Transport::Http), &from)
        .expect("client")
        .deliver(event())
        .await
        .expect("HTTP");
    GrpcNotificationsClient::new(&grpc_url, &config(Transport::Grpc), &from)
        .expect("client")
        .deliver(event())
        .await
        .expect("gRPC");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_client_of_another_process_name_is_refused_as_the_wrong_callee() {
    // A client pointed at the wrong service signs for the service it meant to call.
    let fake = Arc::new(CountingNotifications::default());
    let (http_url, _) = serve_both(fake.clone()).await;
    let host_mismatch = archlab_remote::http::HttpUpstream::signed(
        "users-service",
        &http_url,
        &ClientConfig::default(),
        &ServiceCredentials::new(CALLER, SECRET),
    )
    .expect("upstream");
    let err = host_mismatch
        .call(Method::POST, DELIVER_HTTP.1, Some(&event()))
        .await
        .expect_err("a credential for users-service does not open notifications-service");
    assert_eq!(err, Error::unauthorized(format!("service credential is for users-service, not {CALLEE}")));
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn health_stays_open_while_the_ports_are_guarded() {
    let fake = Arc::new(CountingNotifications::default());
    let (_, grpc_url) = serve_both(fake).await;
    let channel = tonic::transport::Endpoint::from_shared(grpc_url).expect("url").connect().await.expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let answer = health
        .check(tonic_health::pb::HealthCheckRequest { service: "archlab.notifications.v1.Notifications".into() })
        .await
        .expect("a probe needs no credential");
    assert_eq!(answer.into_inner().status(), tonic_health::pb::health_check_response::ServingStatus::Serving);
}
