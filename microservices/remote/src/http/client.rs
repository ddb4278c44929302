//! The ports implemented over HTTP/JSON: what a service holds as `Arc<dyn Port>` when
//! `INTERNAL_TRANSPORT=http`.

use super::server::VerifySessionRequest;
use super::{AUTH_SERVICE, DELIVER, HttpUpstream, NOTIFICATIONS_SERVICE, PROFILES, USERS_SERVICE, VERIFY_SESSION};
use crate::ClientConfig;
use crate::service_credential::ServiceCredentials;
use archlab_auth::{AuthApi, Session};
use archlab_kernel::{Error, Result};
use archlab_notifications::{Delivery, NotificationEvent, NotificationsApi};
use archlab_users::{NewProfile, Profile, UsersApi};
use async_trait::async_trait;
use http::{Method, StatusCode};
use uuid::Uuid;

/// No body: `Option<&NoBody>::None` for calls without one.
type NoBody = ();

/// `AuthApi` over HTTP to auth-service.
#[derive(Clone, Debug)]
pub struct HttpAuthClient {
    upstream: HttpUpstream,
}

impl HttpAuthClient {
    /// A client of the auth-service at `base_url` (e.g. `http://127.0.0.1:8001`), signing every call as `from`.
    pub fn new(base_url: &str, config: &ClientConfig, from: &ServiceCredentials) -> Result<Self, Error> {
        Ok(Self { upstream: HttpUpstream::signed(AUTH_SERVICE, base_url, config, from)? })
    }
}

#[async_trait]
impl AuthApi for HttpAuthClient {
    async fn verify_session(&self, token: &str) -> Result<Session> {
        let body = VerifySessionRequest { token: token.to_owned() };
        self.upstream.call_json(Method::POST, VERIFY_SESSION, Some(&body)).await
    }
}

/// `UsersApi` over HTTP to users-service.
#[derive(Clone, Debug)]
pub struct HttpUsersClient {
    upstream: HttpUpstream,
}

impl HttpUsersClient {
    /// A client of the users-service at `base_url` (e.g. `http://127.0.0.1:8002`), signing every call as `from`.
    pub fn new(base_url: &str, config: &ClientConfig, from: &ServiceCredentials) -> Result<Self, Error> {
        Ok(Self { upstream: HttpUpstream::signed(USERS_SERVICE, base_url, config, from)? })
    }
}

#[async_trait]
impl UsersApi for HttpUsersClient {
    async fn create_profile(&self, new: NewProfile) -> Result<Profile> {
        self.upstream.call_json(Method::POST, PROFILES, Some(&new)).await
    }

    async fn get_profile(&self, user_id: Uuid) -> Result<Profile> {
        self.upstream.call_json(Method::GET, &format!("{PROFILES}/{user_id}"), None::<&NoBody>).await
    }

    async fn delete_profile(&self, user_id: Uuid) -> Result<()> {
        let answer = self.upstream.call(Method::DELETE, &format!("{PROFILES}/{user_id}"), None::<&NoBody>).await?;
        if answer.status != StatusCode::NO_CONTENT {
            return Err(Error::internal(format!("{USERS_SERVICE} answered a delete with {}", answer.status)));
        }
        Ok(())
    }
}

/// `NotificationsApi` over HTTP to notifications-service.
#[derive(Clone, Debug)]
pub struct HttpNotificationsClient {
    upstream: HttpUpstream,
}

impl HttpNotificationsClient {
    /// A client of the notifications-service at `base_url` (e.g. `http://127.0.0.1:8004`), signing every call as `from`.
    pub fn new(base_url: &str, config: &ClientConfig, from: &ServiceCredentials) -> Result<Self, Error> {
        Ok(Self { upstream: HttpUpstream::signed(NOTIFICATIONS_SERVICE, base_url, config, from)? })
    }
}

#[async_trait]
impl NotificationsApi for HttpNotificationsClient {
    async fn deliver(&self, event: NotificationEvent) -> Result<Delivery> {
        self.upstream.call_json(Method::POST, DELIVER, Some(&event)).await
    }
}
