//! gRPC servers exposing the ports, and the builder that hosts them with a health service.
//!
//! Each server is a thin adapter: decode and validate the request, call the port, encode the
//! answer, turn an error into a status with [`to_status`]. Spans belong to the services
//! behind the ports (`users.get_profile`, …), which name them the same way in both builds.
//!
//! Each hosted port sits behind the host's [`ServiceCredentials::require_layer`]: a call
//! without a valid service credential for this process and this RPC is answered
//! `Unauthenticated` (carrying the `unauthorized` error) before it is decoded. The health
//! service stays open, for probes that hold no secret.

use super::convert;
use crate::errors::to_status;
use crate::service_credential::{RequireLayer, ServiceCredentials};
use archlab_auth::AuthApi;
use archlab_notifications::NotificationsApi;
use archlab_proto::auth::v1::{self as auth_pb, auth_server};
use archlab_proto::notifications::v1::{self as notifications_pb, notifications_server};
use archlab_proto::users::v1::{self as users_pb, users_server};
use archlab_users::UsersApi;
use std::future::Future;
use std::sync::Arc;
use tonic::service::Routes;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic::{Request, Response, Status};
use tonic_health::ServingStatus;
use tonic_health::server::{HealthReporter, HealthService};
use tower::Layer;

type Guard = RequireLayer<http::Response<tonic::body::Body>>;

/// Hosts any subset of the three ports, plus `grpc.health.v1.Health` reporting each SERVING.
/// Each port sits behind the guard of the credentials it was hosted as.
pub struct GrpcServer {
    guard: Guard,
    auth: Option<(Guard, Arc<dyn AuthApi>)>,
    users: Option<(Guard, Arc<dyn UsersApi>)>,
    notifications: Option<(Guard, Arc<dyn NotificationsApi>)>,
}

/// A refused call as the gRPC answer a client reads back as the same `Error`.
fn refuse(error: archlab_kernel::Error) -> http::Response<tonic::body::Body> {
    to_status(error).into_http()
}

impl GrpcServer {
    /// A server of the process `host` (whose service credentials every call to a hosted port
    /// must carry), hosting nothing but the health service yet.
    pub fn new(host: &ServiceCredentials) -> Self {
        Self { guard: host.require_layer(refuse), auth: None, users: None, notifications: None }
    }

    /// Host the ports added from here on as the process `host` instead: callers sign each
    /// call for the service they think they call, so a process standing in for several
    /// services (the hybrid's core) hosts each port as the service it stands in for.
    pub fn hosting_as(mut self, host: &ServiceCredentials) -> Self {
        self.guard = host.require_layer(refuse);
        self
    }

    /// Host `archlab.auth.v1.Auth` over `api`.
    pub fn auth(mut self, api: Arc<dyn AuthApi>) -> Self {
        self.auth = Some((self.guard.clone(), api));
        self
    }

    /// Host `archlab.users.v1.Users` over `api`.
    pub fn users(mut self, api: Arc<dyn UsersApi>) -> Self {
        self.users = Some((self.guard.clone(), api));
        self
    }

    /// Host `archlab.notifications.v1.Notifications` over `api`.
    pub fn notifications(mut self, api: Arc<dyn NotificationsApi>) -> Self {
        self.notifications = Some((self.guard.clone(), api));
        self
    }

    /// The hosted services and the health service, which reports each hosted one SERVING for
    /// as long as the server runs.
    async fn into_routes(self) -> Routes {
        let health = HealthReporter::new();
        let mut routes = Routes::builder();
        if let Some((guard, api)) = self.auth {
            health.set_service_status(auth_server::SERVICE_NAME, ServingStatus::Serving).await;
            routes.add_service(guard.layer(auth_server::AuthServer::new(AuthGrpc(api))));
        }
        if let Some((guard, api)) = self.users {
            health.set_service_status(users_server::SERVICE_NAME, ServingStatus::Serving).await;
            routes.add_service(guard.layer(users_server::UsersServer::new(UsersGrpc(api))));
        }
        if let Some((guard, api)) = self.notifications {
            health.set_service_status(notifications_server::SERVICE_NAME, ServingStatus::Serving).await;
            routes.add_service(guard.layer(notifications_server::NotificationsServer::new(NotificationsGrpc(api))));
        }
        routes.add_service(tonic_health::pb::health_server::HealthServer::new(HealthService::from_health_reporter(
            health,
        )));
        routes.routes()
    }

    /// Serve on `listener` (bound by the caller, port 0 in tests) until `shutdown` completes,
    /// then finish the calls in flight.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), tonic::transport::Error> {
        let routes = self.into_routes().await;
        // Each call runs in a server span continuing the caller's `traceparent` metadata, and
        // under the deadline its `grpc-timeout` carries (which tonic enforces as well).
        Server::builder()
            .trace_fn(archlab_kernel::trace::grpc_server_span)
            .layer(crate::deadline::BudgetLayer)
            .add_routes(routes)
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown)
            .await
    }
}

/// `AuthApi` behind `archlab.auth.v1.Auth`.
struct AuthGrpc(Arc<dyn AuthApi>);

#[tonic::async_trait]
impl auth_server::Auth for AuthGrpc {
    async fn verify_session(
        &self,
        request: Request<auth_pb::VerifySessionRequest>,
    ) -> Result<Response<auth_pb::Session>, Status> {
        let session = self.0.verify_session(&request.into_inner().token).await.map_err(to_status)?;
        Ok(Response::new(convert::session_to_pb(&session)))
    }
}

/// `UsersApi` behind `archlab.users.v1.Users`.
struct UsersGrpc(Arc<dyn UsersApi>);

#[tonic::async_trait]
impl users_server::Users for UsersGrpc {
    async fn create_profile(
        &self,
        request: Request<users_pb::CreateProfileRequest>,
    ) -> Result<Response<users_pb::Profile>, Status> {
        let new = convert::new_profile_from_pb(request.into_inner()).map_err(to_status)?;
        let profile = self.0.create_profile(new).await.map_err(to_status)?;
        Ok(Response::new(convert::profile_to_pb(&profile)))
    }

    async fn get_profile(
        &self,
        request: Request<users_pb::GetProfileRequest>,
    ) -> Result<Response<users_pb::Profile>, Status> {
        let user_id = convert::uuid("user_id", &request.into_inner().user_id).map_err(to_status)?;
        let profile = self.0.get_profile(user_id).await.map_err(to_status)?;
        Ok(Response::new(convert::profile_to_pb(&profile)))
    }

    async fn delete_profile(
        &self,
        request: Request<users_pb::DeleteProfileRequest>,
    ) -> Result<Response<users_pb::DeleteProfileResponse>, Status> {
        let user_id = convert::uuid("user_id", &request.into_inner().user_id).map_err(to_status)?;
        self.0.delete_profile(user_id).await.map_err(to_status)?;
        Ok(Response::new(users_pb::DeleteProfileResponse {}))
    }
}

/// `NotificationsApi` behind `archlab.notifications.v1.Notifications`.
struct NotificationsGrpc(Arc<dyn NotificationsApi>);

#[tonic::async_trait]
impl notifications_server::Notifications for NotificationsGrpc {
    async fn deliver(
        &self,
        request: Request<notifications_pb::DeliverRequest>,
    ) -> Result<Response<notifications_pb::Delivery>, Status> {
        let event = request.into_inner().event.ok_or_else(|| archlab_kernel::Error::validation("event is missing"));
        let event = event.and_then(convert::event_from_pb).map_err(to_status)?;
        let delivery = self.0.deliver(event).await.map_err(to_status)?;
        Ok(Response::new(convert::delivery_to_pb(&delivery)))
    }
}
