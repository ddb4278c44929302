//! Where each service's dependencies live, and the client for each port on the chosen
//! transport. Services call [`Upstreams::auth`] and friends and get an `Arc<dyn Port>`, the
//! same type the monolith binds in-process.

use crate::grpc::{GrpcAuthClient, GrpcNotificationsClient, GrpcUsersClient};
use crate::http::{HttpAuthClient, HttpNotificationsClient, HttpUsersClient};
use crate::{ClientConfig, Transport};
use archlab_auth::AuthApi;
use archlab_kernel::Result;
use archlab_notifications::NotificationsApi;
use archlab_users::UsersApi;
use clap::Args;
use std::sync::Arc;

/// The internal addresses of the services, for both transports.
#[derive(Args, Debug, Clone)]
pub struct Upstreams {
    /// auth-service's gRPC endpoint.
    #[arg(long, env = "AUTH_GRPC_URL", default_value = "http://127.0.0.1:9001")]
    pub auth_grpc_url: String,
    /// auth-service's HTTP endpoint.
    #[arg(long, env = "AUTH_HTTP_URL", default_value = "http://127.0.0.1:8001")]
    pub auth_http_url: String,
    /// users-service's gRPC endpoint.
    #[arg(long, env = "USERS_GRPC_URL", default_value = "http://127.0.0.1:9002")]
    pub users_grpc_url: String,
    /// users-service's HTTP endpoint.
    #[arg(long, env = "USERS_HTTP_URL", default_value = "http://127.0.0.1:8002")]
    pub users_http_url: String,
    /// notifications-service's gRPC endpoint.
    #[arg(long, env = "NOTIFICATIONS_GRPC_URL", default_value = "http://127.0.0.1:9004")]
    pub notifications_grpc_url: String,
    /// notifications-service's HTTP endpoint.
    #[arg(long, env = "NOTIFICATIONS_HTTP_URL", default_value = "http://127.0.0.1:8004")]
    pub notifications_http_url: String,
}

impl Upstreams {
    /// `AuthApi` bound to auth-service.
    pub fn auth(&self, config: &ClientConfig) -> Result<Arc<dyn AuthApi>> {
        Ok(match config.transport {
            Transport::Grpc => Arc::new(GrpcAuthClient::new(&self.auth_grpc_url, config)?),
            Transport::Http => Arc::new(HttpAuthClient::new(&self.auth_http_url, config)?),
        })
    }

    /// `UsersApi` bound to users-service.
    pub fn users(&self, config: &ClientConfig) -> Result<Arc<dyn UsersApi>> {
        Ok(match config.transport {
            Transport::Grpc => Arc::new(GrpcUsersClient::new(&self.users_grpc_url, config)?),
            Transport::Http => Arc::new(HttpUsersClient::new(&self.users_http_url, config)?),
        })
    }

    /// `NotificationsApi` bound to notifications-service.
    pub fn notifications(&self, config: &ClientConfig) -> Result<Arc<dyn NotificationsApi>> {
        Ok(match config.transport {
            Transport::Grpc => Arc::new(GrpcNotificationsClient::new(&self.notifications_grpc_url, config)?),
            Transport::Http => Arc::new(HttpNotificationsClient::new(&self.notifications_http_url, config)?),
        })
    }
}
