//! One HTTP upstream: a base URL, a pooled `reqwest::Client`, and the tower stack of
//! `crate::transport` that every call goes through.
//!
//! Both the internal port clients and the gateway's forwarding use it, so the resilience
//! layers (deadline, bulkhead, retry, circuit breaker) reach every HTTP hop of the
//! microservices build, exactly as they reach every gRPC hop. The port clients' upstreams ([`HttpUpstream::signed`]) also
//! sign every request with the calling process's service credential, innermost; the
//! gateway's forwarding to public routes carries the caller's identity instead.

use crate::ClientConfig;
use crate::deadline::{DeadlineError, Spelling};
use crate::resilience::Refusal;
use crate::service_credential::ServiceCredentials;
use archlab_kernel::http::require_canonical_path;
use archlab_kernel::{Error, ErrorBody, ErrorKind, Result};
use axum::body::Bytes;
use http::{HeaderMap, Method, StatusCode};
use std::time::Duration;
use tower::{BoxError, ServiceBuilder, ServiceExt};
use tracing::Instrument;

/// The tower service an [`HttpUpstream`] sends through: reqwest inside the layers of
/// `crate::transport`.
pub type HttpStack = crate::transport::Stack<reqwest::Request, reqwest::Response>;

/// A complete answer from an upstream: status, headers and the whole body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The upstream's status.
    pub status: StatusCode,
    /// The upstream's response headers.
    pub headers: HeaderMap,
    /// The upstream's body, read in full.
    pub body: Bytes,
}

/// A named HTTP dependency and the stack every call to it goes through.
#[derive(Clone)]
pub struct HttpUpstream {
    name: &'static str,
    base: String,
    /// The path part of `base` ("" for a bare host), which every request's path extends.
    base_path: String,
    stack: HttpStack,
    deadline: Duration,
    /// Whether the caller's remaining budget shortens [`Self::deadline`].
    propagate: bool,
}

impl std::fmt::Debug for HttpUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpUpstream").field("name", &self.name).field("base", &self.base).finish_non_exhaustive()
    }
}

impl HttpUpstream {
    /// An upstream called `name` (as errors name it, e.g. "users-service") at `base_url`.
    pub fn new(name: &'static str, base_url: &str, config: &ClientConfig) -> Result<Self> {
        Self::build(name, base_url, config, None)
    }

    /// [`HttpUpstream::new`] for an internal port: every request carries a service credential
    /// from `from` to `name`, for its method and path.
    pub fn signed(
        name: &'static str,
        base_url: &str,
        config: &ClientConfig,
        from: &ServiceCredentials,
    ) -> Result<Self> {
        Self::build(name, base_url, config, Some(from))
    }

    fn build(
        name: &'static str,
        base_url: &str,
        config: &ClientConfig,
        from: Option<&ServiceCredentials>,
    ) -> Result<Self> {
        // Several replicas, comma-separated, share one path (`crate::replicas`).
        let parse = |one: &str| -> Result<reqwest::Url> {
            let url = reqwest::Url::parse(one).map_err(|e| bad_config(name, format!("invalid URL {one:?}: {e}")))?;
            if url.scheme() != "http" && url.scheme() != "https" {
                return Err(bad_config(name, format!("URL {one:?} must be http:// or https://")));
            }
            Ok(url)
        };
        let replicas = base_url.split(',').map(|one| parse(one.trim())).collect::<Result<Vec<_>>>()?;
        let base = base_url.split(',').next().unwrap_or_default().trim().trim_end_matches('/').to_owned();
        let url = replicas[0].clone();
        if replicas.iter().any(|r| r.path() != replicas[0].path() || r.scheme() != replicas[0].scheme()) {
            return Err(bad_config(name, format!("the replicas in {base_url:?} differ in more than host and port")));
        }
        let client = reqwest::Client::builder()
            // Internal hops go straight to the service: never through a proxy from the
            // environment, and a redirect is an answer to pass on, not to follow.
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| bad_config(name, format!("cannot build the HTTP client: {e}")))?;
        let send: tower::util::BoxCloneSyncService<reqwest::Request, reqwest::Response, tower::BoxError> =
            match replicas.len() {
                1 => tower::util::BoxCloneSyncService::new(
                    tower::service_fn(move |request: reqwest::Request| client.execute(request))
                        .map_err(tower::BoxError::from),
                ),
                _ => tower::util::BoxCloneSyncService::new(crate::replicas::balanced(name, replicas, client)),
            };
        // Signed innermost, after any queueing or retry above, so the credential is fresh.
        let wire = ServiceBuilder::new().option_layer(from.map(|from| from.sign_layer(name))).service(send);
        let stack = config.calls(config.attempts(name, Spelling::Http, wire));
        let base_path = url.path().trim_end_matches('/').to_owned();
        Ok(Self {
            name,
            base,
            base_path,
            stack,
            deadline: config.timeout(),
            propagate: config.deadline_propagation.is_on(),
        })
    }

    /// The name errors use for this upstream.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The base URL, without a trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// A request for `path` on this upstream: an absolute, canonical path (see
    /// `archlab_kernel::http::require_canonical_path`) without a query, sent exactly as given.
    ///
    /// The gateway builds its paths from its route table, so this is the second line of
    /// defence: `Url` would turn `\` into `/` and resolve `..`, so a path it could rewrite is
    /// refused here (400 `invalid_path`) rather than sent somewhere else.
    pub fn request(&self, method: Method, path: &str) -> Result<reqwest::Request> {
        require_canonical_path(path).inspect_err(|e| {
            tracing::warn!(peer = self.name, reason = %e.message, "refused to send a non-canonical path");
        })?;
        let url = reqwest::Url::parse(&format!("{}{path}", self.base))
            .map_err(|e| Error::internal(format!("{}: bad path {path:?}: {e}", self.name)))?;
        if url.path() != format!("{}{path}", self.base_path) || url.query().is_some() || url.fragment().is_some() {
            return Err(Error::internal(format!("{}: the path {path:?} would be sent as {url}", self.name)));
        }
        Ok(reqwest::Request::new(method, url))
    }

    /// Send `request` through the stack and read the whole answer within the deadline.
    ///
    /// Any status is an [`Answer`]; only not getting one (cannot connect, reset, timeout) is
    /// an error: 503 `dependency_unavailable` naming this upstream.
    pub async fn fetch(&self, request: reqwest::Request) -> Result<Answer> {
        let span = archlab_kernel::trace::http_client_span(self.name, request.method(), request.url().path());
        self.fetch_in_span(request, &span).instrument(span.clone()).await.inspect_err(|e| {
            archlab_kernel::trace::record_error(&span, &e.code);
        })
    }

    async fn fetch_in_span(&self, mut request: reqwest::Request, span: &tracing::Span) -> Result<Answer> {
        archlab_kernel::trace::inject(request.headers_mut());
        // The same deadline the stack's deadline layer computes, for the body as well.
        let (deadline, budget) = crate::deadline::budget_of(self.deadline, self.propagate);
        let response = self.stack.clone().oneshot(request).await.map_err(|e| self.unavailable(&e))?;
        let status = response.status();
        archlab_kernel::trace::record_http_client_status(span, status);
        let headers = response.headers().clone();
        // The tower timeout ends when the headers arrive; the body gets what is left of it.
        let body = tokio::time::timeout_at(deadline, response.bytes())
            .await
            .map_err(|_| self.timed_out(budget))?
            .map_err(|e| self.unavailable(&e.into()))?;
        Ok(Answer { status, headers, body })
    }

    /// Send a JSON call and decode a 2xx answer's body, or return the error the answer carries.
    pub async fn call_json<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl serde::Serialize>,
    ) -> Result<T> {
        let answer = self.call(method, path, body).await?;
        serde_json::from_slice(&answer.body).map_err(|e| {
            Error::internal(format!("{} answered {} with an undecodable body: {e}", self.name, answer.status))
        })
    }

    /// Send a JSON call; a 2xx answer, or the error the answer carries.
    pub async fn call(&self, method: Method, path: &str, body: Option<&impl serde::Serialize>) -> Result<Answer> {
        let mut request = self.request(method, path)?;
        if let Some(body) = body {
            let bytes = serde_json::to_vec(body).map_err(Error::internal)?;
            request
                .headers_mut()
                .insert(http::header::CONTENT_TYPE, http::HeaderValue::from_static("application/json"));
            *request.body_mut() = Some(bytes.into());
        }
        let answer = self.fetch(request).await?;
        if answer.status.is_success() { Ok(answer) } else { Err(self.error_from(&answer)) }
    }

    /// The [`Error`] a non-2xx answer stands for.
    ///
    /// A JSON error body is the callee's own `Error`, rebuilt exactly; a 5xx without one (a
    /// proxy, a crashed process) means the dependency is unavailable; anything else is a bug.
    pub fn error_from(&self, answer: &Answer) -> Error {
        match serde_json::from_slice::<ErrorBody>(&answer.body) {
            Ok(ErrorBody { error }) => {
                let rebuilt = Error::new(ErrorKind::from_status(answer.status), error.code, error.message);
                let retry_after =
                    answer.headers.get(http::header::RETRY_AFTER).and_then(|v| v.to_str().ok()?.parse().ok());
                match retry_after {
                    Some(secs) => rebuilt.with_retry_after(Duration::from_secs(secs)),
                    None => rebuilt,
                }
            }
            Err(_) if answer.status.is_server_error() => {
                tracing::warn!(peer = self.name, status = %answer.status, "upstream answered without an error body");
                Error::unavailable(self.name, format!("answered {}", answer.status))
            }
            Err(_) => Error::internal(format!("{} answered {} without an error body", self.name, answer.status)),
        }
    }

    fn timed_out(&self, budget: Duration) -> Error {
        tracing::warn!(peer = self.name, timeout_ms = budget.as_millis(), "upstream call timed out");
        Error::unavailable(self.name, format!("no answer within the {} ms timeout", budget.as_millis()))
    }

    fn unavailable(&self, e: &BoxError) -> Error {
        if let Some(refusal) = Refusal::find(e.as_ref()) {
            tracing::warn!(peer = self.name, %refusal, "upstream call refused");
            return Error::unavailable(self.name, refusal);
        }
        match e.downcast_ref::<DeadlineError>() {
            Some(DeadlineError::Elapsed(ms)) => return self.timed_out(Duration::from_millis(*ms)),
            Some(spent @ DeadlineError::Spent) => {
                tracing::warn!(peer = self.name, "caller's deadline spent; upstream not called");
                return Error::unavailable(self.name, spent);
            }
            None => {}
        }
        let detail = match e.downcast_ref::<reqwest::Error>() {
            Some(e) if e.is_timeout() => return self.timed_out(self.deadline),
            Some(e) if e.is_connect() => "cannot connect",
            _ => "the connection failed",
        };
        tracing::warn!(peer = self.name, error = %error_chain(e.as_ref()), "upstream call failed");
        Error::unavailable(self.name, detail)
    }
}

fn bad_config(name: &str, message: String) -> Error {
    Error::new(ErrorKind::Internal, crate::errors::codes::BAD_CONFIG, format!("{name}: {message}"))
}

/// `e` and its sources, joined, for logs (reqwest hides the useful part in the sources).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Transport;

    fn upstream(base: &str) -> HttpUpstream {
        let config = ClientConfig {
            transport: Transport::Http,
            internal_timeout_ms: 1000,
            internal_concurrency: 1,
            ..ClientConfig::default()
        };
        HttpUpstream::new("users-service", base, &config).expect("valid base")
    }

    #[test]
    fn a_canonical_path_is_sent_exactly_as_given() {
        let id = uuid::Uuid::new_v4();
        for base in ["http://127.0.0.1:8002", "http://127.0.0.1:8002/", "http://127.0.0.1:8002/prefix/"] {
            let request = upstream(base).request(Method::GET, &format!("/api/users/{id}")).expect("canonical");
            let prefix = if base.ends_with("/prefix/") { "/prefix" } else { "" };
            assert_eq!(request.url().path(), format!("{prefix}/api/users/{id}"));
            assert_eq!(request.url().query(), None);
        }
    }

    #[test]
    fn a_path_the_url_crate_would_rewrite_is_refused_before_anything_is_sent() {
        let users = upstream("http://127.0.0.1:8002");
        let id = uuid::Uuid::new_v4();
        for path in [
            format!("/api/users/..\\..\\internal\\users\\profiles\\{id}"),
            format!("/api/users/../../internal/users/profiles/{id}"),
            format!("/api/users/%2e%2e/%2e%2e/internal/users/profiles/{id}"),
            "/api/users/me?extra=1".to_owned(),
            "/api/users/me#fragment".to_owned(),
            "/api//users/me".to_owned(),
            "api/users/me".to_owned(),
            "@evil.example/x".to_owned(),
            String::new(),
        ] {
            let refused = users.request(Method::GET, &path).expect_err(&path);
            assert_eq!(refused.code, archlab_kernel::codes::INVALID_PATH, "{path}: {refused:?}");
        }
    }
}
