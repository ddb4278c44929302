//! Where each service's dependencies live, and the client for each port on the chosen
//! transport. Services call [`Upstreams::auth`] and friends with their own
//! [`ServiceCredentials`] and get an `Arc<dyn Port>`, the same type the monolith binds
//! in-process, whose every call carries a credential from the caller to that service.

use crate::grpc::{GrpcAuthClient, GrpcNotificationsClient, GrpcUsersClient};
use crate::http::{HttpAuthClient, HttpNotificationsClient, HttpUsersClient};
use crate::service_credential::ServiceCredentials;
use crate::{ClientConfig, Transport};
use archlab_auth::AuthApi;
use archlab_kernel::Result;
use archlab_kernel::processes::{AUTH_SERVICE, Listener, NOTIFICATIONS_SERVICE, PAYMENTS_SERVICE, USERS_SERVICE};
use archlab_notifications::NotificationsApi;
use archlab_users::UsersApi;
use clap::Args;
use std::sync::Arc;

/// Where the services are, for both transports: the one set of upstream flags, read by
/// every service that calls another and by the gateway.
#[derive(Args, Debug, Clone)]
pub struct Upstreams {
    /// auth-service's gRPC endpoint.
    #[arg(long, env = AUTH_GRPC.url_var, default_value = AUTH_GRPC.default_url)]
    pub auth_grpc_url: String,
    /// auth-service's HTTP endpoint.
    #[arg(long, env = AUTH_SERVICE.http.url_var, default_value = AUTH_SERVICE.http.default_url)]
    pub auth_http_url: String,
    /// users-service's gRPC endpoint.
    #[arg(long, env = USERS_GRPC.url_var, default_value = USERS_GRPC.default_url)]
    pub users_grpc_url: String,
    /// users-service's HTTP endpoint.
    #[arg(long, env = USERS_SERVICE.http.url_var, default_value = USERS_SERVICE.http.default_url)]
    pub users_http_url: String,
    /// payments-service's HTTP endpoint (only the gateway calls payments).
    #[arg(long, env = PAYMENTS_SERVICE.http.url_var, default_value = PAYMENTS_SERVICE.http.default_url)]
    pub payments_http_url: String,
    /// notifications-service's gRPC endpoint.
    #[arg(long, env = NOTIFICATIONS_GRPC.url_var, default_value = NOTIFICATIONS_GRPC.default_url)]
    pub notifications_grpc_url: String,
    /// notifications-service's HTTP endpoint.
    #[arg(long, env = NOTIFICATIONS_SERVICE.http.url_var, default_value = NOTIFICATIONS_SERVICE.http.default_url)]
    pub notifications_http_url: String,
}

const AUTH_GRPC: Listener = AUTH_SERVICE.grpc.expect("auth-service serves gRPC");
const USERS_GRPC: Listener = USERS_SERVICE.grpc.expect("users-service serves gRPC");
const NOTIFICATIONS_GRPC: Listener = NOTIFICATIONS_SERVICE.grpc.expect("notifications-service serves gRPC");

impl Upstreams {
    /// `AuthApi` bound to auth-service, called as `from`.
    pub fn auth(&self, config: &ClientConfig, from: &ServiceCredentials) -> Result<Arc<dyn AuthApi>> {
        Ok(match config.transport {
            Transport::Grpc => Arc::new(GrpcAuthClient::new(&self.auth_grpc_url, config, from)?),
            Transport::Http => Arc::new(HttpAuthClient::new(&self.auth_http_url, config, from)?),
        })
    }

    /// `UsersApi` bound to users-service, called as `from`.
    pub fn users(&self, config: &ClientConfig, from: &ServiceCredentials) -> Result<Arc<dyn UsersApi>> {
        Ok(match config.transport {
            Transport::Grpc => Arc::new(GrpcUsersClient::new(&self.users_grpc_url, config, from)?),
            Transport::Http => Arc::new(HttpUsersClient::new(&self.users_http_url, config, from)?),
        })
    }

    /// `NotificationsApi` bound to notifications-service, called as `from`.
    pub fn notifications(&self, config: &ClientConfig, from: &ServiceCredentials) -> Result<Arc<dyn NotificationsApi>> {
        Ok(match config.transport {
            Transport::Grpc => Arc::new(GrpcNotificationsClient::new(&self.notifications_grpc_url, config, from)?),
            Transport::Http => Arc::new(HttpNotificationsClient::new(&self.notifications_http_url, config, from)?),
        })
    }
}
