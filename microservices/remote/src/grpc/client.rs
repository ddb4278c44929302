//! The ports as gRPC clients: what a service holds as `Arc<dyn UsersApi>` (etc.) when the
//! implementation lives in another process.
//!
//! The channel connects lazily, so a service may start before its dependencies, and every
//! call goes through the layers of `crate::transport` (deadline, bulkhead, retry, circuit
//! breaker) and, innermost, the calling process's service credential for this callee and
//! RPC (see `crate::service_credential`). Failures come back as the shared `Error`: the
//! service's own error unchanged, or `Unavailable` naming the dependency when the call did
//! not get an answer (refused, timed out, broken connection, or not sent: breaker open,
//! bulkhead full, the caller's deadline spent).

use super::convert;
use crate::ClientConfig;
use crate::deadline::{DeadlineError, Spelling};
use crate::errors::from_status;
use crate::resilience::Refusal;
use crate::service_credential::ServiceCredentials;
use archlab_auth::{AuthApi, Session};
use archlab_kernel::{Error, ErrorKind, Result, processes};
use archlab_notifications::{Delivery, NotificationEvent, NotificationsApi};
use archlab_proto::auth::v1::{self as auth_pb, auth_client::AuthClient};
use archlab_proto::notifications::v1::{self as notifications_pb, notifications_client::NotificationsClient};
use archlab_proto::users::v1::{self as users_pb, users_client::UsersClient};
use archlab_users::{NewProfile, Profile, UsersApi};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use tonic::Status;
use tonic::body::Body;
use tonic::transport::Endpoint;
use tower::filter::AsyncFilterLayer;
use tower::util::BoxCloneSyncService;
use tower::{BoxError, Layer, ServiceBuilder, ServiceExt};
use uuid::Uuid;

/// Dependency name of the auth service in errors and logs.
pub const AUTH_SERVICE: &str = processes::AUTH_SERVICE.name;
/// Dependency name of the users service in errors and logs.
pub const USERS_SERVICE: &str = processes::USERS_SERVICE.name;
/// Dependency name of the notifications service in errors and logs.
pub const NOTIFICATIONS_SERVICE: &str = processes::NOTIFICATIONS_SERVICE.name;

/// A lazily connected channel inside the configured tower stack, its type erased so that
/// adding a layer to `crate::transport` changes nothing here. Its error is a `Status`
/// (keeping the layer's error as its source) rather than a boxed error: with a boxed error
/// the generated clients' futures cannot be proven `Send` inside `async_trait` methods.
type Stack = BoxCloneSyncService<http::Request<Body>, http::Response<Body>, Status>;

/// What every client shares: the stack, and how to word its failures.
#[derive(Clone)]
struct Link {
    dependency: &'static str,
}

impl Link {
    fn open(
        url: &str,
        config: &ClientConfig,
        from: &ServiceCredentials,
        dependency: &'static str,
    ) -> Result<(Self, Stack)> {
        let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| {
            Error::new(
                ErrorKind::Internal,
                crate::errors::codes::INVALID_URL,
                format!("{dependency}: invalid gRPC url {url:?}: {e}"),
            )
        })?;
        let channel = endpoint.connect_timeout(config.timeout()).connect_lazy();
        // Signed innermost, after any queueing or retry above, so the credential is fresh.
        let wire = ServiceBuilder::new()
            .map_request(unbuffer as fn(http::Request<Bytes>) -> http::Request<Body>)
            .layer(from.sign_layer(dependency))
            .service(channel);
        let attempts = config.attempts(dependency, Spelling::Grpc, wire);
        // A unary call's body is one small message: read in full, it can be sent again.
        let buffered = AsyncFilterLayer::new(buffer).layer(attempts);
        let stack = config
            .calls(buffered)
            .map_err(Status::from_error as fn(BoxError) -> Status)
            // Outermost, so the metadata names the caller's span before any layer runs.
            .map_request(inject_trace_context as fn(http::Request<Body>) -> http::Request<Body>);
        let stack = BoxCloneSyncService::new(stack);
        Ok((Self { dependency }, stack))
    }

    /// The error for a failed call: a refusal or timeout of our own stack, or whatever
    /// `from_status` reads.
    fn error(&self, status: Status) -> Error {
        let mut source = std::error::Error::source(&status);
        while let Some(e) = source {
            if let Some(refusal) = Refusal::find(e) {
                tracing::warn!(dependency = self.dependency, %refusal, "remote call refused");
                return Error::unavailable(self.dependency, refusal);
            }
            if let Some(deadline) = e.downcast_ref::<DeadlineError>() {
                tracing::warn!(dependency = self.dependency, %deadline, "remote call out of time");
                return Error::unavailable(self.dependency, deadline);
            }
            source = e.source();
        }
        from_status(&status, self.dependency)
    }

    /// An answer that does not decode is a contract mismatch between two of our services.
    fn malformed(&self, e: Error) -> Error {
        Error::internal(format_args!("{} sent a malformed answer: {}", self.dependency, e.message))
    }
}

/// The call with its body read in full (see [`Link::open`]).
async fn buffer(request: http::Request<Body>) -> Result<http::Request<Bytes>, Status> {
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await?.to_bytes();
    Ok(http::Request::from_parts(parts, bytes))
}

/// One attempt of a buffered call, as the channel sends it.
fn unbuffer(request: http::Request<Bytes>) -> http::Request<Body> {
    request.map(|bytes| Body::new(Full::new(bytes)))
}

/// Write the current span's `traceparent` into the call's metadata (HTTP/2 headers).
fn inject_trace_context(mut request: http::Request<Body>) -> http::Request<Body> {
    archlab_kernel::trace::inject(request.headers_mut());
    request
}

/// `AuthApi` implemented by calling `archlab.auth.v1.Auth` on the auth service.
#[derive(Clone)]
pub struct GrpcAuthClient {
    link: Link,
    client: AuthClient<Stack>,
}

impl GrpcAuthClient {
    /// A client for the auth service at `url` (e.g. `http://127.0.0.1:9001`); connects lazily;
    /// every call is signed as `from`.
    pub fn new(url: &str, config: &ClientConfig, from: &ServiceCredentials) -> Result<Self> {
        let (link, stack) = Link::open(url, config, from, AUTH_SERVICE)?;
        Ok(Self { link, client: AuthClient::new(stack) })
    }
}

#[async_trait]
impl AuthApi for GrpcAuthClient {
    #[tracing::instrument(name = "archlab.auth.v1.Auth/VerifySession", skip_all, fields(otel.kind = "client", rpc.system = "grpc", rpc.service = "archlab.auth.v1.Auth", rpc.method = "VerifySession"), err)]
    async fn verify_session(&self, token: &str) -> Result<Session> {
        let request = auth_pb::VerifySessionRequest { token: token.to_owned() };
        let answer = self.client.clone().verify_session(request).await.map_err(|s| self.link.error(s))?;
        convert::session_from_pb(answer.into_inner()).map_err(|e| self.link.malformed(e))
    }
}

/// `UsersApi` implemented by calling `archlab.users.v1.Users` on the users service.
#[derive(Clone)]
pub struct GrpcUsersClient {
    link: Link,
    client: UsersClient<Stack>,
}

impl GrpcUsersClient {
    /// A client for the users service at `url` (e.g. `http://127.0.0.1:9002`); connects lazily;
    /// every call is signed as `from`.
    pub fn new(url: &str, config: &ClientConfig, from: &ServiceCredentials) -> Result<Self> {
        let (link, stack) = Link::open(url, config, from, USERS_SERVICE)?;
        Ok(Self { link, client: UsersClient::new(stack) })
    }
}

#[async_trait]
impl UsersApi for GrpcUsersClient {
    #[tracing::instrument(name = "archlab.users.v1.Users/CreateProfile", skip_all, fields(otel.kind = "client", rpc.system = "grpc", rpc.service = "archlab.users.v1.Users", rpc.method = "CreateProfile"), err)]
    async fn create_profile(&self, new: NewProfile) -> Result<Profile> {
        let request = convert::new_profile_to_pb(&new);
        let answer = self.client.clone().create_profile(request).await.map_err(|s| self.link.error(s))?;
        convert::profile_from_pb(answer.into_inner()).map_err(|e| self.link.malformed(e))
    }

    #[tracing::instrument(name = "archlab.users.v1.Users/GetProfile", skip_all, fields(otel.kind = "client", rpc.system = "grpc", rpc.service = "archlab.users.v1.Users", rpc.method = "GetProfile"), err)]
    async fn get_profile(&self, user_id: Uuid) -> Result<Profile> {
        let request = users_pb::GetProfileRequest { user_id: user_id.to_string() };
        let answer = self.client.clone().get_profile(request).await.map_err(|s| self.link.error(s))?;
        convert::profile_from_pb(answer.into_inner()).map_err(|e| self.link.malformed(e))
    }

    #[tracing::instrument(name = "archlab.users.v1.Users/DeleteProfile", skip_all, fields(otel.kind = "client", rpc.system = "grpc", rpc.service = "archlab.users.v1.Users", rpc.method = "DeleteProfile"), err)]
    async fn delete_profile(&self, user_id: Uuid) -> Result<()> {
        let request = users_pb::DeleteProfileRequest { user_id: user_id.to_string() };
        self.client.clone().delete_profile(request).await.map_err(|s| self.link.error(s))?;
        Ok(())
    }
}

/// `NotificationsApi` implemented by calling `archlab.notifications.v1.Notifications`.
#[derive(Clone)]
pub struct GrpcNotificationsClient {
    link: Link,
    client: NotificationsClient<Stack>,
}

impl GrpcNotificationsClient {
    /// A client for the notifications service at `url` (e.g. `http://127.0.0.1:9004`);
    /// connects lazily; every call is signed as `from`.
    pub fn new(url: &str, config: &ClientConfig, from: &ServiceCredentials) -> Result<Self> {
        let (link, stack) = Link::open(url, config, from, NOTIFICATIONS_SERVICE)?;
        Ok(Self { link, client: NotificationsClient::new(stack) })
    }
}

#[async_trait]
impl NotificationsApi for GrpcNotificationsClient {
    #[tracing::instrument(
        name = "archlab.notifications.v1.Notifications/Deliver",
        skip_all,
        fields(
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = "archlab.notifications.v1.Notifications",
            rpc.method = "Deliver",
            event_id = %event.event_id
        ),
        err
    )]
    async fn deliver(&self, event: NotificationEvent) -> Result<Delivery> {
        let request = notifications_pb::DeliverRequest { event: Some(convert::event_to_pb(&event)) };
        let answer = self.client.clone().deliver(request).await.map_err(|s| self.link.error(s))?;
        convert::delivery_from_pb(answer.into_inner()).map_err(|e| self.link.malformed(e))
    }
}
