//! Forwarding one public request to the service that owns it.
//!
//! This is the hop the monolith does not have: authenticate at the edge, then re-send the
//! request over the network. What crosses is deliberately narrow: the method, the path the
//! route table builds (the matched row's pattern and its parsed ids, never the client's
//! spelling; no query, as no route takes one), the (already size-limited) body and the
//! end-to-end headers go in; status, end-to-end headers and body come back unchanged.
//! Hop-by-hop headers stay on their own hop, and the identity header is the gateway's alone
//! to write.
//!
//! Why the path is rebuilt: forwarding the client's path once let
//! `/api/users/..\..\internal\users\profiles\<id>` match `/api/users/{id}` here and then,
//! rewritten by the `url` crate, reach users-service's internal route. The edge refuses such
//! paths, `HttpUpstream::request` refuses them again, and the path sent is built from the
//! table, so the three would all have to fail at once.

use crate::table::{Access, Route, Service};
use archlab_auth::{AuthApi, SessionAuthenticator};
use archlab_kernel::http::Authenticator;
use archlab_kernel::{Error, ErrorKind, Result, codes};
use archlab_remote::http::HttpUpstream;
use archlab_remote::identity::{IDENTITY_HEADER, IdentitySigner};
use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, header};
use std::sync::Arc;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus those the
/// gateway sets itself.
const NOT_FORWARDED: [HeaderName; 12] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    header::HOST,
    header::CONTENT_LENGTH,
    header::EXPECT,
];

/// Sends public requests on to their services.
pub(crate) struct Forwarder {
    /// One per [`Service`], indexed by [`Service::index`].
    upstreams: Vec<HttpUpstream>,
    authn: SessionAuthenticator,
    signer: IdentitySigner,
    /// Check bearer tokens and sign identities (off: pass through, `Config::pass_through`).
    verifies: bool,
}

impl Forwarder {
    /// `upstreams` must hold one upstream per service, in [`Service::ALL`] order.
    pub(crate) fn new(upstreams: Vec<HttpUpstream>, auth: Arc<dyn AuthApi>, signer: IdentitySigner) -> Self {
        assert_eq!(upstreams.len(), Service::ALL.len(), "one upstream per service");
        Self { upstreams, authn: SessionAuthenticator(auth), signer, verifies: true }
    }

    /// Forward without checking tokens or signing identities: the upstreams authenticate.
    pub(crate) fn passing_through(mut self) -> Self {
        self.verifies = false;
        self
    }

    /// Authenticate if `route` asks for it, forward, and answer with the service's answer.
    pub(crate) async fn forward(&self, route: &'static Route, request: Request) -> Response {
        self.try_forward(route, request).await.unwrap_or_else(IntoResponse::into_response)
    }

    async fn try_forward(&self, route: &'static Route, request: Request) -> Result<Response> {
        let (mut parts, body) = request.into_parts();
        // In the monolith's order: the caller, then the path id, then the body.
        let caller = match route.access {
            Access::Bearer if self.verifies => Some(self.authn.authenticate(&parts).await?),
            _ => None,
        };
        let path = upstream_path(route, &mut parts).await?;
        let mut headers = end_to_end(std::mem::take(&mut parts.headers));
        headers.remove(IDENTITY_HEADER);
        let method = parts.method.clone();
        // `Bytes` honours the edge's `DefaultBodyLimit`, so an oversized body stops here.
        let body = Bytes::from_request(Request::from_parts(parts, body), &()).await.map_err(|rejection| {
            if rejection.status() == http::StatusCode::PAYLOAD_TOO_LARGE {
                Error::payload_too_large()
            } else {
                Error::new(ErrorKind::BadRequest, codes::UNREADABLE_BODY, "the request body could not be read")
            }
        })?;

        let upstream = &self.upstreams[route.service.index()];
        let mut outgoing = upstream.request(method, &path)?;
        if let Some(caller) = caller {
            // Signed for the method and path the service will receive, and no other.
            let identity = self.signer.sign(caller.user_id, outgoing.method(), outgoing.url().path());
            headers.insert(IDENTITY_HEADER, identity);
        }
        *outgoing.headers_mut() = headers;
        *outgoing.body_mut() = Some(body.into());
        let answer = upstream.fetch(outgoing).await?;

        let mut response = Response::new(Body::from(answer.body));
        *response.status_mut() = answer.status;
        *response.headers_mut() = end_to_end(answer.headers);
        response.headers_mut().remove(IDENTITY_HEADER);
        Ok(response)
    }
}

/// The path `route` sends upstream, from the parameters the router matched.
async fn upstream_path(route: &Route, parts: &mut http::request::Parts) -> Result<String> {
    let params = if route.has_params() {
        // A value that cannot be decoded is no UUID either: `upstream_path` answers for it.
        Path::<Vec<(String, String)>>::from_request_parts(parts, &()).await.map_or_else(|_| Vec::new(), |p| p.0)
    } else {
        Vec::new()
    };
    route.upstream_path(&params)
}

/// `headers` without the hop-by-hop ones, including any the `Connection` header names.
fn end_to_end(mut headers: HeaderMap) -> HeaderMap {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named.iter().chain(NOT_FORWARDED.iter()) {
        headers.remove(name);
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(header::CONNECTION, HeaderValue::from_static("keep-alive, X-Private"));
        h.insert("x-private", HeaderValue::from_static("1"));
        h.insert(header::TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        h.insert(header::HOST, HeaderValue::from_static("gateway"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        h.insert("idempotency-key", HeaderValue::from_static("k"));
        let kept = end_to_end(h);
        let mut names: Vec<&str> = kept.keys().map(HeaderName::as_str).collect();
        names.sort_unstable();
        assert_eq!(names, ["authorization", "idempotency-key"]);
    }
}
