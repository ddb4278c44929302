//! How one service proves to another that a call comes from inside: a signed, short-lived
//! credential on every internal call, over both transports.
//!
//! This file exists because of the network. In the monolith `UsersApi::delete_profile` is a
//! function call nothing outside the process can make. Here it is a route on a port — the
//! internal HTTP routes share each service's public port, and the gRPC servers listen on
//! another — and without this check anything that reaches a port could read or delete any
//! profile, have email sent to any address, or use the session check as a token oracle.
//!
//! # The scheme
//!
//! Every internal call, HTTP or gRPC, carries
//!
//! ```text
//! x-archlab-service-credential: <caller>.<callee>.<issued_unix_ms>.<hex HMAC-SHA256(K_svc, "<caller>.<callee>.<issued_unix_ms>.<METHOD> <path>")>
//! K_svc = HMAC-SHA256(INTERNAL_SECRET, "service-credential")
//! ```
//!
//! `caller` and `callee` are process names (`archlab_kernel::processes`, each service's
//! `Server::NAME`). `METHOD` and `path` are the HTTP request's: for the internal HTTP routes
//! e.g. `DELETE /internal/users/profiles/<id>`, for gRPC always `POST` and the full RPC method
//! name, e.g. `POST /archlab.users.v1.Users/DeleteProfile` — gRPC is HTTP/2, so one rule
//! covers both transports.
//!
//! The caller signs in one place: [`SignLayer`], the innermost layer of the tower stack every
//! client call goes through (`ClientConfig::layers` and below it the signature; see
//! microservices/remote/src/transport.rs). The callee verifies in one place: [`RequireLayer`],
//! around the internal HTTP routes (microservices/remote/src/http/server.rs) and around each
//! hosted gRPC service (microservices/remote/src/grpc/server.rs; `grpc.health.v1` stays open
//! for probes). It refuses, before the handler runs or the body is read, a credential that
//! is missing, doubled, malformed, signed with another key, made for another callee or
//! another method and path, issued more than [`MAX_AGE_MS`] ago or more than the identity's
//! clock-skew allowance in the future — with 401 `unauthorized`: the JSON error body over
//! HTTP, and over gRPC a `Status` that `errors::from_status` turns back into the same
//! `Error`.
//!
//! # Why it holds, and where it stops
//!
//! - `K_svc` is derived from `INTERNAL_SECRET` for this purpose alone; the gateway's identity
//!   header uses another derived key (`K_id`, microservices/remote/src/identity.rs), so an
//!   identity can never pass as a service credential nor the reverse, and the secret itself
//!   never signs anything.
//! - Binding the callee and the method and path means a credential seen on one call opens
//!   nothing else: not another service, not another route, not another RPC. The short expiry
//!   bounds how long it opens even that.
//! - Every process holds the one secret, so the caller's name is asserted, not proven: it is
//!   for logs and for binding, and any holder of the secret can sign as anyone. A credential
//!   captured on the wire can be replayed on the same route, with another body, within 10 s
//!   (for gRPC, whose ids travel in the body, that means another id). Closing those would take
//!   per-service keys and a body digest or a nonce cache; the lab stops here.
//!
//! # Why not mutual TLS
//!
//! mTLS would authenticate the peer's *connection* with per-service certificates, and encrypt
//! it. It needs a certificate authority, issuance and rotation for every process, and a
//! connection authenticated once says nothing about which route each request on it may call.
//! This lab runs on loopback by default and measures what a hop costs, and TLS handshakes and
//! encryption would change that measurement for both transports. A credential per request
//! works the same over HTTP/1.1 and gRPC, is one tower layer on each side, and binds each call
//! to its route. A deployment across a network it does not trust still wants TLS for
//! confidentiality (bodies carry emails and bearer tokens): the credential is not encryption.

use crate::identity::{HmacSha256, MAX_SKEW_MS, derived_key, now_unix_ms, received_path, request_mac};
use archlab_kernel::{Error, Result};
use futures::future::{Either, Ready, ready};
use hmac::Mac;
use http::{HeaderMap, HeaderValue, Method};
use std::task::{Context, Poll};
use tower::{Layer, Service};

/// The header (gRPC: the metadata key) that carries a service credential.
pub const SERVICE_CREDENTIAL_HEADER: &str = "x-archlab-service-credential";

/// How long a service credential stays valid after it was issued, in milliseconds.
pub const MAX_AGE_MS: i64 = 10_000;

/// What the service-credential key is derived for:
/// `K_svc = HMAC-SHA256(INTERNAL_SECRET, "service-credential")`.
pub const SERVICE_KEY_PURPOSE: &str = "service-credential";

/// One process's side of the scheme: its name and the key, to sign the calls it makes and to
/// verify the calls it receives.
#[derive(Clone)]
pub struct ServiceCredentials {
    name: &'static str,
    key: HmacSha256,
}

impl std::fmt::Debug for ServiceCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceCredentials").field("name", &self.name).finish_non_exhaustive()
    }
}

/// A process name fit for a credential: the separators of the format never occur in it.
fn is_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

impl ServiceCredentials {
    /// The process `name` (its `Server::NAME`), with the key derived from `secret`
    /// (`INTERNAL_SECRET`).
    ///
    /// # Panics
    /// If `name` is not lower-case letters, digits and `-`, as every process name is.
    pub fn new(name: &'static str, secret: &[u8]) -> Self {
        assert!(is_name(name), "a process name is lower-case letters, digits and '-': {name:?}");
        Self { name, key: derived_key(secret, SERVICE_KEY_PURPOSE) }
    }

    /// This process's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// A credential for a call from this process to `callee`'s `method path`, issued now.
    pub fn sign(&self, callee: &str, method: &Method, path: &str) -> HeaderValue {
        debug_assert!(is_name(callee), "a process name is lower-case letters, digits and '-': {callee:?}");
        let payload = format!("{}.{callee}.{}", self.name, now_unix_ms());
        let signature = hex::encode(request_mac(&self.key, &payload, method, path).finalize().into_bytes());
        HeaderValue::try_from(format!("{payload}.{signature}")).expect("names, digits and hex are a valid header value")
    }

    /// The layer that signs every request a client of this process sends to `callee`.
    ///
    /// # Panics
    /// If `callee` is not a process name (see [`ServiceCredentials::new`]).
    pub fn sign_layer(&self, callee: &'static str) -> SignLayer {
        assert!(is_name(callee), "a process name is lower-case letters, digits and '-': {callee:?}");
        SignLayer { credentials: self.clone(), callee }
    }

    /// The caller named by the one valid credential in `headers` for a call to this process's
    /// `method path`, or 401 `unauthorized`.
    pub fn verify(&self, headers: &HeaderMap, method: &Method, path: &str) -> Result<String> {
        self.verify_at(headers, method, path, now_unix_ms())
    }

    fn verify_at(&self, headers: &HeaderMap, method: &Method, path: &str, now_ms: i64) -> Result<String> {
        let mut values = headers.get_all(SERVICE_CREDENTIAL_HEADER).iter();
        let value = values.next().ok_or_else(|| Error::unauthorized("missing service credential"))?;
        if values.next().is_some() {
            return Err(Error::unauthorized("more than one service credential"));
        }
        let garbled = || Error::unauthorized("malformed service credential");
        let text = value.to_str().map_err(|_| garbled())?;
        // The MAC covers the exact bytes received, so check it before reading anything.
        let (payload, signature) = text.rsplit_once('.').ok_or_else(garbled)?;
        let signature = hex::decode(signature).map_err(|_| garbled())?;
        request_mac(&self.key, payload, method, path)
            .verify_slice(&signature)
            .map_err(|_| Error::unauthorized("invalid service credential (wrong key, or made for another call)"))?;

        let mut fields = payload.split('.');
        let (Some(caller), Some(callee), Some(issued), None) =
            (fields.next(), fields.next(), fields.next(), fields.next())
        else {
            return Err(garbled());
        };
        if !is_name(caller) || !is_name(callee) || issued.is_empty() || !issued.bytes().all(|b| b.is_ascii_digit()) {
            return Err(garbled());
        }
        if callee != self.name {
            return Err(Error::unauthorized(format!("service credential is for {callee}, not {}", self.name)));
        }
        let issued: i64 = issued.parse().map_err(|_| garbled())?;
        let age = now_ms.saturating_sub(issued);
        if age > MAX_AGE_MS {
            return Err(Error::unauthorized("service credential expired"));
        }
        if age < -MAX_SKEW_MS {
            return Err(Error::unauthorized("service credential issued in the future"));
        }
        Ok(caller.to_owned())
    }

    /// The layer that lets through only requests carrying a valid credential for this
    /// process, answering every other one with `refuse(error)` without calling the service.
    pub fn require_layer<R>(&self, refuse: fn(Error) -> R) -> RequireLayer<R> {
        RequireLayer { credentials: self.clone(), refuse }
    }
}

/// A request a [`SignLayer`] can sign: reqwest's (internal HTTP) and `http`'s (gRPC).
pub trait Outgoing {
    /// The request's method.
    fn method(&self) -> &Method;
    /// The request's path, as it goes on the wire.
    fn path(&self) -> &str;
    /// The request's headers, to add the credential to.
    fn headers_mut(&mut self) -> &mut HeaderMap;
}

impl Outgoing for reqwest::Request {
    fn method(&self) -> &Method {
        reqwest::Request::method(self)
    }
    fn path(&self) -> &str {
        self.url().path()
    }
    fn headers_mut(&mut self) -> &mut HeaderMap {
        reqwest::Request::headers_mut(self)
    }
}

impl<B> Outgoing for http::Request<B> {
    fn method(&self) -> &Method {
        http::Request::method(self)
    }
    fn path(&self) -> &str {
        self.uri().path()
    }
    fn headers_mut(&mut self) -> &mut HeaderMap {
        http::Request::headers_mut(self)
    }
}

/// Signs every request for one callee (see [`ServiceCredentials::sign_layer`]).
#[derive(Clone, Debug)]
pub struct SignLayer {
    credentials: ServiceCredentials,
    callee: &'static str,
}

impl<S> Layer<S> for SignLayer {
    type Service = Sign<S>;
    fn layer(&self, inner: S) -> Sign<S> {
        Sign { inner, layer: self.clone() }
    }
}

/// The service [`SignLayer`] makes.
#[derive(Clone, Debug)]
pub struct Sign<S> {
    inner: S,
    layer: SignLayer,
}

impl<S, R: Outgoing> Service<R> for Sign<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: R) -> S::Future {
        let credential = self.layer.credentials.sign(self.layer.callee, request.method(), request.path());
        // Replace, never add: a request carries exactly one credential, this process's.
        request.headers_mut().insert(SERVICE_CREDENTIAL_HEADER, credential);
        self.inner.call(request)
    }
}

/// Refuses calls without a valid credential (see [`ServiceCredentials::require_layer`]).
pub struct RequireLayer<R> {
    credentials: ServiceCredentials,
    refuse: fn(Error) -> R,
}

// By hand: a derive would ask `R: Clone`, and `R` is only a function's result.
impl<R> Clone for RequireLayer<R> {
    fn clone(&self) -> Self {
        Self { credentials: self.credentials.clone(), refuse: self.refuse }
    }
}

impl<S, R> Layer<S> for RequireLayer<R> {
    type Service = Require<S, R>;
    fn layer(&self, inner: S) -> Require<S, R> {
        Require { inner, layer: self.clone() }
    }
}

/// The service [`RequireLayer`] makes.
pub struct Require<S, R> {
    inner: S,
    layer: RequireLayer<R>,
}

impl<S: Clone, R> Clone for Require<S, R> {
    fn clone(&self) -> Self {
        Self { inner: self.inner.clone(), layer: self.layer.clone() }
    }
}

// A guarded gRPC service keeps its name, so it is hosted at the same path.
impl<S: tonic::server::NamedService, R> tonic::server::NamedService for Require<S, R> {
    const NAME: &'static str = S::NAME;
}

impl<S, B, R> Service<http::Request<B>> for Require<S, R>
where
    S: Service<http::Request<B>, Response = R>,
{
    type Response = R;
    type Error = S::Error;
    type Future = Either<Ready<Result<R, S::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let credentials = &self.layer.credentials;
        let path = received_path(request.uri(), request.extensions());
        match credentials.verify(request.headers(), request.method(), path) {
            Ok(caller) => {
                tracing::trace!(caller, callee = credentials.name, "internal call authenticated");
                Either::Right(self.inner.call(request))
            }
            Err(refused) => {
                tracing::warn!(
                    callee = credentials.name,
                    method = %request.method(),
                    path,
                    reason = %refused.message,
                    "internal call refused"
                );
                Either::Left(ready(Ok((self.layer.refuse)(refused))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"k";

    fn headers(value: HeaderValue) -> HeaderMap {
        HeaderMap::from_iter([(http::HeaderName::from_static(SERVICE_CREDENTIAL_HEADER), value)])
    }

    #[test]
    fn the_window_is_ten_seconds_back_and_the_skew_forward() {
        let (payments, users) =
            (ServiceCredentials::new("payments-service", SECRET), ServiceCredentials::new("users-service", SECRET));
        let path = "/archlab.users.v1.Users/GetProfile";
        let value = payments.sign(users.name(), &Method::POST, path);
        let issued: i64 = value.to_str().unwrap().split('.').nth(2).unwrap().parse().unwrap();
        let at = |now| users.verify_at(&headers(value.clone()), &Method::POST, path, now);
        assert_eq!(at(issued + MAX_AGE_MS).unwrap(), "payments-service");
        assert!(at(issued + MAX_AGE_MS + 1).is_err());
        assert_eq!(at(issued - MAX_SKEW_MS).unwrap(), "payments-service");
        assert!(at(issued - MAX_SKEW_MS - 1).is_err());
    }

    #[test]
    fn debug_never_shows_the_key() {
        let credentials = ServiceCredentials::new("gateway", b"hunter2-secret");
        let shown = format!("{credentials:?}");
        assert!(shown.contains("gateway") && !shown.contains("hunter2") && !shown.contains("key"), "{shown}");
    }

    #[test]
    #[should_panic(expected = "process name")]
    fn a_name_with_a_separator_is_refused() {
        ServiceCredentials::new("users.service", SECRET);
    }
}
