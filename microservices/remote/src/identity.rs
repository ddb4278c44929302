//! How the verified caller travels from the gateway to the services: a signed header.
//!
//! This file exists because of the network: in the monolith the session check and the route
//! run in one process, so the route simply trusts the in-process `SessionAuthenticator`. Behind
//! the gateway, the token is checked once at the edge and the services need to know *who*
//! without asking auth-service again on every request.
//!
//! # The scheme
//!
//! After the gateway has verified a bearer token with auth-service, it adds, to the request it
//! forwards as `<METHOD> <path>`,
//!
//! ```text
//! x-archlab-identity: <user_id>.<issued_unix_ms>.<hex HMAC-SHA256(K_id, "<user_id>.<issued_unix_ms>.<METHOD> <path>")>
//! K_id = HMAC-SHA256(INTERNAL_SECRET, "identity")
//! ```
//!
//! ([`IdentitySigner`]) and every service binds the kernel's `Authenticator` to
//! [`SignedIdentityAuthenticator`], which recomputes the MAC over the exact bytes received
//! and the method and path of the request *it* received, compares in constant time, and
//! refuses headers that are missing, garbled, signed with another secret, signed for another
//! method or path, or issued more than 30 s ago. Routes only ever see `Caller`, the same type
//! the monolith gives them.
//!
//! The key is derived from the secret for this one purpose; the service credentials of
//! internal calls (microservices/remote/src/service_credential.rs) use another key derived
//! from the same secret, so a signature made for one can never be accepted as the other.
//!
//! # Why an outside caller cannot forge it
//!
//! - The secret (`INTERNAL_SECRET`) never leaves the deployment: only the gateway and the
//!   services hold it, and it is never sent over the wire (only MACs are).
//! - The gateway strips any incoming `x-archlab-identity` before it forwards, so a client
//!   cannot slip one through the front door.
//! - The services' ports listen on loopback by default (`127.0.0.1:8001`–`8004`), so the only
//!   way in from outside is the gateway; its explicit route table never exposes `/internal/*`
//!   (and the internal routes demand a service credential besides).
//! - Signatures expire after 30 s, so a header leaked from a log or a trace is useless soon
//!   after; it is also bound to one user id, one instant, one method and one path, so it
//!   cannot be re-targeted at another user or replayed on another route (a header captured
//!   from `GET /api/users/me` does not open `PATCH /api/users/me` or `GET /api/payments`).
//!
//! What it does not give: protection against someone already inside the deployment with the
//! secret, or against replay of the same method and path (with another body or query) within
//! the 30 s window. The lab's default secret is for development only: a process that binds a
//! non-loopback address refuses to start with it (or with none) — [`IdentityArgs::check_for`].

use archlab_kernel::http::{Authenticator, Caller};
use archlab_kernel::{Error, Result};
use async_trait::async_trait;
use clap::Args;
use hmac::{Hmac, Mac};
use http::request::Parts;
use http::{HeaderValue, Method};
use sha2::Sha256;
use uuid::Uuid;

/// The header that carries the signed identity from the gateway to the services.
pub const IDENTITY_HEADER: &str = "x-archlab-identity";

/// How long a signed identity stays valid after it was issued, in milliseconds.
pub const MAX_AGE_MS: i64 = 30_000;

/// How far in the future an issue time may lie (clock skew between hosts), in milliseconds.
pub const MAX_SKEW_MS: i64 = 5_000;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// What the identity key is derived for: `K_id = HMAC-SHA256(INTERNAL_SECRET, "identity")`.
pub const IDENTITY_KEY_PURPOSE: &str = "identity";

/// `INTERNAL_SECRET`: the key the gateway signs identities with and the services verify.
#[derive(Args, Clone)]
pub struct IdentityArgs {
    /// Shared by the gateway and every service; never sent over the wire.
    #[arg(long, env = "INTERNAL_SECRET", default_value = DEV_SECRET, hide_env_values = true)]
    pub internal_secret: String,
}

/// The published development secret: fine on loopback, refused anywhere else.
pub const DEV_SECRET: &str = "archlab-dev-secret-change-me";

impl IdentityArgs {
    /// Refuse a secret that anyone can read in this repository (or none) for a process that
    /// listens on `addrs`: with a non-loopback address it is an error; on loopback only, the
    /// development default is allowed with a warning, so `make run-micro` works as it is.
    pub fn check_for(&self, addrs: &[std::net::SocketAddr]) -> anyhow::Result<()> {
        if self.internal_secret.is_empty() {
            anyhow::bail!("INTERNAL_SECRET is empty: set it to a long random value shared by the gateway and services");
        }
        if self.internal_secret != DEV_SECRET {
            return Ok(());
        }
        if let Some(exposed) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            anyhow::bail!(
                "INTERNAL_SECRET is the published development default and {exposed} is not a loopback address: \
                 anyone could sign identities. Set INTERNAL_SECRET to a long random value shared by the gateway \
                 and every service"
            );
        }
        tracing::warn!("INTERNAL_SECRET is the development default; acceptable on loopback only");
        Ok(())
    }

    /// The service credentials of the process `name` (its `Server::NAME`), keyed by this secret.
    pub fn service_credentials(&self, name: &'static str) -> crate::ServiceCredentials {
        crate::ServiceCredentials::new(name, self.internal_secret.as_bytes())
    }
}

// Configs are printed in logs and panics; the secret must not be.
impl std::fmt::Debug for IdentityArgs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IdentityArgs").field("internal_secret", &"<redacted>").finish()
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length")
}

/// A MAC keyed with `HMAC-SHA256(secret, purpose)`: one key per use of the one secret, so a
/// signature made for one purpose is never valid for another.
pub(crate) fn derived_key(secret: &[u8], purpose: &str) -> HmacSha256 {
    let mut derive = keyed(secret);
    derive.update(purpose.as_bytes());
    keyed(&derive.finalize().into_bytes())
}

pub(crate) fn now_unix_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The path a request was sent to, as the client wrote it: axum keeps it in `OriginalUri`
/// when a router is nested, and it is the URI's path otherwise.
pub(crate) fn received_path<'a>(uri: &'a http::Uri, extensions: &'a http::Extensions) -> &'a str {
    extensions.get::<axum::extract::OriginalUri>().map_or(uri.path(), |original| original.0.path())
}

/// What a MAC binding a header to a request covers: `"<payload>.<METHOD> <path>"`. The
/// identity and the service credential both use it, each under its own key.
pub(crate) fn request_mac(key: &HmacSha256, payload: &str, method: &Method, path: &str) -> HmacSha256 {
    let mut mac = key.clone();
    mac.update(payload.as_bytes());
    mac.update(b".");
    mac.update(method.as_str().as_bytes());
    mac.update(b" ");
    mac.update(path.as_bytes());
    mac
}

/// Signs identities at the gateway.
#[derive(Clone)]
pub struct IdentitySigner {
    mac: HmacSha256,
}

impl IdentitySigner {
    /// A signer with the identity key derived from `secret` (`INTERNAL_SECRET`).
    pub fn new(secret: &[u8]) -> Self {
        Self { mac: derived_key(secret, IDENTITY_KEY_PURPOSE) }
    }

    /// The `x-archlab-identity` value for `user_id`, issued now, valid only on a request
    /// `method path` (the path as the service will receive it, without the query).
    pub fn sign(&self, user_id: Uuid, method: &Method, path: &str) -> HeaderValue {
        let payload = format!("{}.{}", user_id.hyphenated(), now_unix_ms());
        let signature = hex::encode(request_mac(&self.mac, &payload, method, path).finalize().into_bytes());
        HeaderValue::try_from(format!("{payload}.{signature}"))
            .expect("a UUID, digits and hex are a valid header value")
    }
}

impl std::fmt::Debug for IdentitySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IdentitySigner(..)")
    }
}

/// The services' `Authenticator`: trusts a caller only through a valid gateway signature.
#[derive(Clone)]
pub struct SignedIdentityAuthenticator {
    mac: HmacSha256,
}

impl SignedIdentityAuthenticator {
    /// An authenticator verifying with the identity key derived from `secret`.
    pub fn new(secret: &[u8]) -> Self {
        Self { mac: derived_key(secret, IDENTITY_KEY_PURPOSE) }
    }

    /// The user id a header value vouches for on a request `method path`, or 401 `unauthorized`.
    pub fn verify(&self, value: &HeaderValue, method: &Method, path: &str) -> Result<Uuid> {
        self.verify_at(value, method, path, now_unix_ms())
    }

    fn verify_at(&self, value: &HeaderValue, method: &Method, path: &str, now_ms: i64) -> Result<Uuid> {
        let garbled = || Error::unauthorized("malformed identity header");
        let text = value.to_str().map_err(|_| garbled())?;
        // The MAC covers the exact bytes received, so check it before reading anything.
        let (payload, signature) = text.rsplit_once('.').ok_or_else(garbled)?;
        let signature = hex::decode(signature).map_err(|_| garbled())?;
        request_mac(&self.mac, payload, method, path)
            .verify_slice(&signature)
            .map_err(|_| Error::unauthorized("invalid identity signature (or signed for another route)"))?;

        let (user_id, issued) = payload.split_once('.').ok_or_else(garbled)?;
        let user_id = Uuid::parse_str(user_id).map_err(|_| garbled())?;
        if issued.is_empty() || !issued.bytes().all(|b| b.is_ascii_digit()) {
            return Err(garbled());
        }
        let issued: i64 = issued.parse().map_err(|_| garbled())?;
        let age = now_ms.saturating_sub(issued);
        if age > MAX_AGE_MS {
            return Err(Error::unauthorized("identity header expired"));
        }
        if age < -MAX_SKEW_MS {
            return Err(Error::unauthorized("identity header issued in the future"));
        }
        Ok(user_id)
    }
}

impl std::fmt::Debug for SignedIdentityAuthenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SignedIdentityAuthenticator(..)")
    }
}

#[async_trait]
impl Authenticator for SignedIdentityAuthenticator {
    async fn authenticate(&self, request: &Parts) -> Result<Caller> {
        let mut values = request.headers.get_all(IDENTITY_HEADER).iter();
        let value = values.next().ok_or_else(|| Error::unauthorized("missing identity header"))?;
        // The gateway sends exactly one; two means someone else added one.
        if values.next().is_some() {
            return Err(Error::unauthorized("more than one identity header"));
        }
        let user_id = self.verify(value, &request.method, received_path(&request.uri, &request.extensions))?;
        Ok(Caller { user_id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_thirty_seconds_back_and_five_forward() {
        let signer = IdentitySigner::new(b"k");
        let authn = SignedIdentityAuthenticator::new(b"k");
        let user = Uuid::new_v4();
        let (method, path) = (Method::GET, "/api/users/me");
        let value = signer.sign(user, &method, path);
        let issued: i64 = value.to_str().unwrap().split('.').nth(1).unwrap().parse().unwrap();
        let at = |now| authn.verify_at(&value, &method, path, now);
        assert_eq!(at(issued + MAX_AGE_MS).unwrap(), user);
        assert!(at(issued + MAX_AGE_MS + 1).is_err());
        assert_eq!(at(issued - MAX_SKEW_MS).unwrap(), user);
        assert!(at(issued - MAX_SKEW_MS - 1).is_err());
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let args = IdentityArgs { internal_secret: "hunter2-secret".into() };
        assert!(!format!("{args:?}").contains("hunter2"));
    }

    #[test]
    fn the_development_secret_is_refused_off_loopback() {
        let dev = IdentityArgs { internal_secret: DEV_SECRET.into() };
        let own = IdentityArgs { internal_secret: "a-long-random-value".into() };
        let empty = IdentityArgs { internal_secret: String::new() };
        let loopback = ["127.0.0.1:8001".parse().unwrap(), "[::1]:9001".parse().unwrap()];
        let exposed = ["127.0.0.1:8001".parse().unwrap(), "0.0.0.0:9001".parse().unwrap()];
        assert!(dev.check_for(&loopback).is_ok());
        let refused = dev.check_for(&exposed).unwrap_err().to_string();
        assert!(refused.contains("0.0.0.0:9001") && refused.contains("INTERNAL_SECRET"), "{refused}");
        assert!(own.check_for(&exposed).is_ok());
        assert!(empty.check_for(&loopback).is_err());
    }
}
