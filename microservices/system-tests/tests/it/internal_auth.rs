//! Past the gateway: each service's internal HTTP routes and gRPC methods, called directly
//! with raw clients that add no credential of their own, as anything that reaches a port
//! could. Without a valid service credential for that service and that call, every one is
//! refused with 401 `unauthorized` and nothing changes: no profile created, read or deleted,
//! no notification stored, no email sent, and no answer about whether a token is live. With
//! a valid one, the same call works. And the gateway's identity header, captured on one
//! route, opens no other.
//!
//! The scheme is documented in microservices/remote/src/service_credential.rs; the
//! credentials here are built by hand from that description.

use archlab_conformance::{Api, unique_email};
use archlab_kernel::processes::{AUTH_SERVICE, NOTIFICATIONS_SERVICE, PAYMENTS_SERVICE, USERS_SERVICE};
use archlab_kernel::{Error, Money};
use archlab_notifications::NotificationEvent;
use archlab_proto::auth::v1::{self as auth_pb, auth_client::AuthClient};
use archlab_proto::notifications::v1::{self as notifications_pb, notifications_client::NotificationsClient};
use archlab_proto::users::v1::{self as users_pb, users_client::UsersClient};
use archlab_remote::errors::from_status;
use archlab_remote::identity::{IDENTITY_HEADER, IDENTITY_KEY_PURPOSE, IdentitySigner};
use archlab_remote::service_credential::{MAX_AGE_MS, SERVICE_CREDENTIAL_HEADER, SERVICE_KEY_PURPOSE};
use archlab_system_tests::{Options, SECRET, Stack};
use hmac::{Hmac, Mac};
use http::{HeaderValue, Method};
use serde_json::{Value, json};
use sha2::Sha256;
use sqlx::PgPool;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use uuid::Uuid;

/// The caller every credential here claims to be.
const CALLER: &str = PAYMENTS_SERVICE.name;

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn hmac(key: &[u8], message: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// One call: which service, and the method and path its credential must be bound to.
#[derive(Clone)]
struct Call {
    callee: &'static str,
    method: Method,
    path: String,
    /// Another path of the same service, for the "made for another call" credential.
    other_path: String,
}

impl Call {
    fn new(callee: &'static str, method: Method, path: impl Into<String>, other_path: impl Into<String>) -> Self {
        Self { callee, method, path: path.into(), other_path: other_path.into() }
    }

    /// A gRPC call: always `POST` to the full method name.
    fn grpc(callee: &'static str, rpc: &str, other_rpc: &str) -> Self {
        Self::new(callee, Method::POST, rpc, other_rpc)
    }

    /// A credential made by the documented recipe, with every part chosen.
    fn credential(
        &self,
        secret: &[u8],
        purpose: &str,
        callee: &str,
        issued: i64,
        method: &Method,
        path: &str,
    ) -> HeaderValue {
        let payload = format!("{CALLER}.{callee}.{issued}");
        let signature = hex::encode(hmac(&hmac(secret, purpose), &format!("{payload}.{method} {path}")));
        HeaderValue::try_from(format!("{payload}.{signature}")).expect("header value")
    }

    /// The one credential that opens this call.
    fn valid(&self) -> HeaderValue {
        self.credential(SECRET.as_bytes(), SERVICE_KEY_PURPOSE, self.callee, now_ms(), &self.method, &self.path)
    }

    /// Every credential that must not open it, named.
    fn wrong(&self) -> Vec<(&'static str, Vec<HeaderValue>)> {
        let (secret, svc, now) = (SECRET.as_bytes(), SERVICE_KEY_PURPOSE, now_ms());
        let other_callee =
            if self.callee == USERS_SERVICE.name { NOTIFICATIONS_SERVICE.name } else { USERS_SERVICE.name };
        let other_method = if self.method == Method::POST { Method::GET } else { Method::POST };
        let made = |secret: &[u8], purpose, callee, issued, method: &Method, path: &str| {
            vec![self.credential(secret, purpose, callee, issued, method, path)]
        };
        vec![
            ("no credential", vec![]),
            ("garbage", vec![HeaderValue::from_static("payments-service.x.1.00")]),
            ("another secret", made(b"not-the-secret", svc, self.callee, now, &self.method, &self.path)),
            ("the identity key", made(secret, IDENTITY_KEY_PURPOSE, self.callee, now, &self.method, &self.path)),
            ("another callee", made(secret, svc, other_callee, now, &self.method, &self.path)),
            ("another method", made(secret, svc, self.callee, now, &other_method, &self.path)),
            ("another path", made(secret, svc, self.callee, now, &self.method, &self.other_path)),
            ("expired", made(secret, svc, self.callee, now - MAX_AGE_MS - 1_000, &self.method, &self.path)),
        ]
    }
}

/// A raw HTTP call to `base` carrying exactly `credentials`: its status and JSON body (null
/// when there is none).
async fn http_call(base: &str, call: &Call, credentials: &[HeaderValue], body: Option<&Value>) -> (u16, Value) {
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let mut request = client.request(call.method.clone(), format!("{base}{}", call.path));
    for value in credentials {
        request = request.header(SERVICE_CREDENTIAL_HEADER, value.clone());
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let res = request.send().await.expect("send");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body");
    if text.is_empty() {
        return (status, Value::Null);
    }
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// A raw HTTP call that must be refused: 401 `unauthorized`, and nothing of the answer's
/// content. Returns the error, to compare with the gRPC refusal.
async fn http_refused(base: &str, call: &Call, what: &str, credentials: &[HeaderValue], body: Option<&Value>) -> Error {
    let (status, json) = http_call(base, call, credentials, body).await;
    assert_eq!(status, 401, "{} {} with {what}: {json}", call.method, call.path);
    assert_eq!(json["error"]["code"], "unauthorized", "{} {} with {what}: {json}", call.method, call.path);
    assert_eq!(json.as_object().map(|o| o.len()), Some(1), "only the error: {json}");
    Error::unauthorized(json["error"]["message"].as_str().expect("a message"))
}

/// A raw channel to `url` whose calls carry exactly `credentials`.
async fn grpc_channel(url: &str, credentials: Vec<HeaderValue>) -> InterceptedService<Channel, impl Interceptor> {
    let channel =
        tonic::transport::Endpoint::from_shared(url.to_owned()).expect("url").connect().await.expect("connect");
    InterceptedService::new(channel, move |mut request: tonic::Request<()>| {
        for value in &credentials {
            let value = value.to_str().expect("ASCII").parse().expect("metadata value");
            request.metadata_mut().append(SERVICE_CREDENTIAL_HEADER, value);
        }
        Ok(request)
    })
}

/// A gRPC answer that must be a refusal: `Unauthenticated`, read back as 401 `unauthorized`.
fn grpc_refused<T: std::fmt::Debug>(
    answer: Result<tonic::Response<T>, tonic::Status>,
    call: &Call,
    what: &str,
) -> Error {
    let status = answer.expect_err(&format!("{} with {what} must be refused", call.path));
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{} with {what}: {status:?}", call.path);
    let error = from_status(&status, call.callee);
    assert_eq!((error.kind, error.code.as_ref()), (archlab_kernel::ErrorKind::Unauthorized, "unauthorized"), "{what}");
    error
}

async fn count(pool: &PgPool, sql: &'static str, id: Uuid) -> i64 {
    sqlx::query_scalar(sql).bind(id).fetch_one(pool).await.expect(sql)
}

fn grpc_url(stack: &Stack, name: &str) -> String {
    stack.addrs(name).grpc_url().expect("a service serves gRPC")
}

fn http_url(stack: &Stack, name: &str) -> String {
    stack.addrs(name).http_url()
}

#[tokio::test]
async fn the_session_check_past_the_gateway_is_no_token_oracle() {
    let stack = Stack::start(Options::default()).await;
    let user = Api::new(&stack).new_user().await;
    let (http, grpc) = (http_url(&stack, AUTH_SERVICE.name), grpc_url(&stack, AUTH_SERVICE.name));
    let on_http =
        Call::new(AUTH_SERVICE.name, Method::POST, "/internal/auth/verify-session", "/internal/users/profiles");
    let on_grpc =
        Call::grpc(AUTH_SERVICE.name, "/archlab.auth.v1.Auth/VerifySession", "/archlab.users.v1.Users/GetProfile");
    let live = json!({ "token": user.token });
    let dead = json!({ "token": "not-a-live-session-token" });

    for ((what, credentials), (_, grpc_credentials)) in on_http.wrong().into_iter().zip(on_grpc.wrong()) {
        // A live token and a dead one get the very same refusal: nothing to learn.
        let with_live = http_refused(&http, &on_http, what, &credentials, Some(&live)).await;
        let with_dead = http_refused(&http, &on_http, what, &credentials, Some(&dead)).await;
        assert_eq!(with_live, with_dead, "HTTP, {what}");

        let mut auth = AuthClient::new(grpc_channel(&grpc, grpc_credentials).await);
        let request = |token: &str| auth_pb::VerifySessionRequest { token: token.to_owned() };
        let grpc_live = grpc_refused(auth.verify_session(request(&user.token)).await, &on_grpc, what);
        let grpc_dead = grpc_refused(auth.verify_session(request("not-a-live-session-token")).await, &on_grpc, what);
        assert_eq!(grpc_live, grpc_dead, "gRPC, {what}");
        assert_eq!(grpc_live, with_live, "{what}: the same refusal over both transports");
    }

    // With a credential the check answers, over both transports.
    let (status, session) = http_call(&http, &on_http, &[on_http.valid()], Some(&live)).await;
    assert_eq!((status, session["user_id"].as_str()), (200, Some(user.user_id.as_str())), "{session}");
    let (status, refused) = http_call(&http, &on_http, &[on_http.valid()], Some(&dead)).await;
    assert_eq!((status, &refused["error"]["code"]), (401, &json!("unauthorized")), "{refused}");
    let mut auth = AuthClient::new(grpc_channel(&grpc, vec![on_grpc.valid()]).await);
    let session = auth.verify_session(auth_pb::VerifySessionRequest { token: user.token.clone() }).await;
    assert_eq!(session.expect("a valid credential").into_inner().user_id, user.user_id);
}

const PROFILES_OF: &str = "SELECT count(*) FROM users.profiles WHERE user_id = $1";

#[tokio::test]
async fn profiles_are_not_created_read_or_deleted_without_a_credential() {
    let stack = Stack::start(Options::default()).await;
    let user = Api::new(&stack).new_user().await;
    let user_id: Uuid = user.user_id.parse().expect("a UUID");
    let stranger = Uuid::new_v4();
    let (http, grpc) = (http_url(&stack, USERS_SERVICE.name), grpc_url(&stack, USERS_SERVICE.name));
    let profile = |id: Uuid| format!("/internal/users/profiles/{id}");
    let rpc = |name: &str| format!("/archlab.users.v1.Users/{name}");
    let create_body = json!({ "user_id": stranger, "email": unique_email(), "name": "Mallory" });
    let create_pb =
        users_pb::CreateProfileRequest { user_id: stranger.to_string(), email: unique_email(), name: "Mallory".into() };

    let http_calls = [
        (Call::new(USERS_SERVICE.name, Method::POST, "/internal/users/profiles", profile(user_id)), Some(&create_body)),
        (Call::new(USERS_SERVICE.name, Method::GET, profile(user_id), profile(stranger)), None),
        (Call::new(USERS_SERVICE.name, Method::DELETE, profile(user_id), profile(stranger)), None),
    ];
    for (call, body) in &http_calls {
        for (what, credentials) in call.wrong() {
            http_refused(&http, call, what, &credentials, *body).await;
        }
    }
    let create = Call::grpc(USERS_SERVICE.name, &rpc("CreateProfile"), &rpc("DeleteProfile"));
    let get = Call::grpc(USERS_SERVICE.name, &rpc("GetProfile"), &rpc("CreateProfile"));
    let delete = Call::grpc(USERS_SERVICE.name, &rpc("DeleteProfile"), &rpc("GetProfile"));
    for (what, credentials) in create.wrong() {
        let mut users = UsersClient::new(grpc_channel(&grpc, credentials).await);
        grpc_refused(users.create_profile(create_pb.clone()).await, &create, what);
    }
    for (what, credentials) in get.wrong() {
        let mut users = UsersClient::new(grpc_channel(&grpc, credentials).await);
        let request = users_pb::GetProfileRequest { user_id: user.user_id.clone() };
        grpc_refused(users.get_profile(request).await, &get, what);
    }
    for (what, credentials) in delete.wrong() {
        let mut users = UsersClient::new(grpc_channel(&grpc, credentials).await);
        let request = users_pb::DeleteProfileRequest { user_id: user.user_id.clone() };
        grpc_refused(users.delete_profile(request).await, &delete, what);
    }
    assert_eq!(count(&stack.users_db, PROFILES_OF, stranger).await, 0, "no profile was created");
    assert_eq!(count(&stack.users_db, PROFILES_OF, user_id).await, 1, "no profile was deleted");

    // The controls: the same calls with a valid credential do what they say.
    let (get_http, delete_http) = (&http_calls[1].0, &http_calls[2].0);
    let (status, read) = http_call(&http, get_http, &[get_http.valid()], None).await;
    assert_eq!((status, read["email"].as_str()), (200, Some(user.email.as_str())), "{read}");
    let mut users = UsersClient::new(grpc_channel(&grpc, vec![create.valid()]).await);
    users.create_profile(create_pb).await.expect("created with a credential");
    assert_eq!(count(&stack.users_db, PROFILES_OF, stranger).await, 1);
    let mut users = UsersClient::new(grpc_channel(&grpc, vec![get.valid()]).await);
    let read = users.get_profile(users_pb::GetProfileRequest { user_id: user.user_id.clone() }).await;
    assert_eq!(read.expect("read with a credential").into_inner().email, user.email);
    let (status, _) = http_call(&http, delete_http, &[delete_http.valid()], None).await;
    assert_eq!(status, 204);
    assert_eq!(count(&stack.users_db, PROFILES_OF, user_id).await, 0, "deleted with a credential");
}

#[tokio::test]
async fn no_notification_is_stored_and_no_email_sent_without_a_credential() {
    let stack = Stack::start(Options::default()).await;
    let (http, grpc) = (http_url(&stack, NOTIFICATIONS_SERVICE.name), grpc_url(&stack, NOTIFICATIONS_SERVICE.name));
    let address = unique_email();
    let user_id = Uuid::new_v4();
    let receipt = |payment_id| {
        NotificationEvent::receipt(
            user_id,
            payment_id,
            Money::parse(4_200, "EUR").expect("money"),
            Some(address.clone()),
        )
    };
    let by_http_body = serde_json::to_value(receipt(Uuid::new_v4())).expect("JSON");
    let grpc_payment = Uuid::new_v4();
    let by_grpc = receipt(grpc_payment);
    let by_grpc_pb = || notifications_pb::DeliverRequest {
        event: Some(notifications_pb::NotificationEvent {
            event_id: by_grpc.event_id.to_string(),
            user_id: user_id.to_string(),
            email_to: Some(address.clone()),
            kind: Some(notifications_pb::notification_event::Kind::Receipt(notifications_pb::Receipt {
                payment_id: grpc_payment.to_string(),
                amount_cents: 4_200,
                currency: "EUR".into(),
            })),
        }),
    };

    let on_http = Call::new(
        NOTIFICATIONS_SERVICE.name,
        Method::POST,
        "/internal/notifications/deliver",
        "/internal/auth/verify-session",
    );
    for (what, credentials) in on_http.wrong() {
        http_refused(&http, &on_http, what, &credentials, Some(&by_http_body)).await;
    }
    let on_grpc = Call::grpc(
        NOTIFICATIONS_SERVICE.name,
        "/archlab.notifications.v1.Notifications/Deliver",
        "/archlab.auth.v1.Auth/VerifySession",
    );
    for (what, credentials) in on_grpc.wrong() {
        let mut notifications = NotificationsClient::new(grpc_channel(&grpc, credentials).await);
        grpc_refused(notifications.deliver(by_grpc_pb()).await, &on_grpc, what);
    }
    let stored = "SELECT count(*) FROM notifications.notifications WHERE user_id = $1";
    assert_eq!(count(&stack.notifications_db, stored, user_id).await, 0, "no notification stored");
    let emailed = stack.extsim.client.emails_to(&address).await.expect("extsim");
    assert!(emailed.is_empty(), "no email sent: {emailed:?}");

    // The controls: with a credential, each transport delivers once.
    let (status, delivery) = http_call(&http, &on_http, &[on_http.valid()], Some(&by_http_body)).await;
    assert_eq!(status, 200, "{delivery}");
    let mut notifications = NotificationsClient::new(grpc_channel(&grpc, vec![on_grpc.valid()]).await);
    notifications.deliver(by_grpc_pb()).await.expect("delivered with a credential");
    assert_eq!(count(&stack.notifications_db, stored, user_id).await, 2);
    assert_eq!(stack.extsim.client.emails_to(&address).await.expect("extsim").len(), 2);
}

#[tokio::test]
async fn an_identity_captured_on_one_route_opens_no_other() {
    let stack = Stack::start(Options::default()).await;
    let user = Api::new(&stack).new_user().await;
    let user_id: Uuid = user.user_id.parse().expect("a UUID");
    // What a header seen in a log of `GET /api/users/me` would be.
    let captured = IdentitySigner::new(SECRET.as_bytes()).sign(user_id, &Method::GET, "/api/users/me");
    let client = reqwest::Client::builder().no_proxy().build().expect("client");
    let send = |method: Method, base: String, path: &str, body: Option<Value>| {
        let mut request = client.request(method, format!("{base}{path}")).header(IDENTITY_HEADER, captured.clone());
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let users = http_url(&stack, USERS_SERVICE.name);

    // The control: on its own route, straight to users-service, it works.
    let res = send(Method::GET, users.clone(), "/api/users/me", None).await.expect("send");
    assert_eq!(res.status(), 200);

    for (method, base, path, body) in [
        (Method::PATCH, users.clone(), "/api/users/me".to_owned(), Some(json!({ "name": "Mallory" }))),
        (Method::GET, users.clone(), format!("/api/users/{user_id}"), None),
        (Method::GET, http_url(&stack, PAYMENTS_SERVICE.name), "/api/payments".to_owned(), None),
        (Method::GET, http_url(&stack, NOTIFICATIONS_SERVICE.name), "/api/notifications".to_owned(), None),
    ] {
        let res = send(method.clone(), base, &path, body).await.expect("send");
        let status = res.status().as_u16();
        let json: Value = res.json().await.expect("a JSON error");
        assert_eq!((status, &json["error"]["code"]), (401, &json!("unauthorized")), "{method} {path}: {json}");
    }
    let name: String = sqlx::query_scalar("SELECT name FROM users.profiles WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&stack.users_db)
        .await
        .expect("the profile");
    assert_eq!(name, user.name, "the refused PATCH changed nothing");
}
