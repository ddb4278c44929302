//! Toxiproxy's HTTP control API over [`TcpProxy`]s, on loopback only.
//!
//! Same paths and JSON as Toxiproxy 2, so its clients and `curl` recipes work:
//! `GET/POST /proxies`, `GET/POST/DELETE /proxies/{proxy}`,
//! `GET/POST /proxies/{proxy}/toxics`, `GET/POST/DELETE /proxies/{proxy}/toxics/{toxic}`,
//! `POST /reset` (every proxy enabled, every toxic removed). Errors are Toxiproxy's
//! `{"error": message, "status": code}`. Proxies may listen on loopback addresses only, and
//! their `listen` and `upstream` cannot be changed after creation.

use super::{TcpProxy, Toxic, ToxicError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The proxies an API serves, by name.
#[derive(Clone, Default)]
pub struct Proxies(Arc<Mutex<BTreeMap<String, Arc<TcpProxy>>>>);

impl Proxies {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<TcpProxy>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Serve `proxy` under `name` (replacing any proxy of that name).
    pub fn insert(&self, name: &str, proxy: TcpProxy) -> Arc<TcpProxy> {
        let proxy = Arc::new(proxy);
        self.map().insert(name.to_owned(), proxy.clone());
        proxy
    }

    /// The proxy named `name`, e.g. one a client created over HTTP.
    pub fn get(&self, name: &str) -> Option<Arc<TcpProxy>> {
        self.map().get(name).cloned()
    }
}

/// The control API serving on a loopback port for the life of this value.
pub struct ControlApi {
    addr: SocketAddr,
    proxies: Proxies,
    stop: CancellationToken,
}

impl ControlApi {
    /// Serve on `127.0.0.1:port` (0 for any free port; Toxiproxy's is 8474).
    pub async fn start(port: u16) -> std::io::Result<ControlApi> {
        let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        let addr = listener.local_addr()?;
        let proxies = Proxies::default();
        let stop = CancellationToken::new();
        let shutdown = stop.clone();
        let app = router(proxies.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).with_graceful_shutdown(shutdown.cancelled_owned()).await;
        });
        Ok(ControlApi { addr, proxies, stop })
    }

    /// Where it listens, e.g. `127.0.0.1:8474`.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The proxies it serves.
    pub fn proxies(&self) -> &Proxies {
        &self.proxies
    }
}

impl Drop for ControlApi {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The API's routes over `proxies`.
pub fn router(proxies: Proxies) -> Router {
    Router::new()
        .route("/proxies", get(list_proxies).post(create_proxy))
        .route("/proxies/{proxy}", get(get_proxy).post(update_proxy).delete(delete_proxy))
        .route("/proxies/{proxy}/toxics", get(list_toxics).post(create_toxic))
        .route("/proxies/{proxy}/toxics/{toxic}", get(get_toxic).post(update_toxic).delete(delete_toxic))
        .route("/reset", post(reset))
        .with_state(proxies)
}

/// Toxiproxy's error shape.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1, "status": self.0.as_u16() }))).into_response()
    }
}

impl From<ToxicError> for ApiError {
    fn from(error: ToxicError) -> ApiError {
        let status = match error {
            ToxicError::Exists(_) => StatusCode::CONFLICT,
            ToxicError::NotFound(_) => StatusCode::NOT_FOUND,
            ToxicError::Invalid(_) => StatusCode::BAD_REQUEST,
        };
        ApiError(status, error.to_string())
    }
}

type ApiResult = Result<Response, ApiError>;

fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, message.into())
}

fn parse<T: for<'de> Deserialize<'de>>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(format!("bad request body: {e}")))
}

fn find(proxies: &Proxies, name: &str) -> Result<Arc<TcpProxy>, ApiError> {
    proxies.get(name).ok_or_else(|| ApiError(StatusCode::NOT_FOUND, format!("proxy not found: {name}")))
}

fn proxy_json(name: &str, proxy: &TcpProxy) -> Value {
    json!({
        "name": name,
        "listen": proxy.addr().to_string(),
        "upstream": proxy.upstream().to_string(),
        "enabled": proxy.enabled(),
        "toxics": proxy.toxics(),
    })
}

fn ok(status: StatusCode, body: Value) -> ApiResult {
    Ok((status, axum::Json(body)).into_response())
}

async fn list_proxies(State(proxies): State<Proxies>) -> ApiResult {
    let all: serde_json::Map<String, Value> =
        proxies.map().iter().map(|(name, p)| (name.clone(), proxy_json(name, p))).collect();
    ok(StatusCode::OK, Value::Object(all))
}

#[derive(Deserialize)]
struct NewProxy {
    name: String,
    #[serde(default = "loopback_any")]
    listen: String,
    upstream: String,
    #[serde(default = "enabled")]
    enabled: bool,
}

fn loopback_any() -> String {
    "127.0.0.1:0".to_owned()
}

fn enabled() -> bool {
    true
}

async fn create_proxy(State(proxies): State<Proxies>, body: Bytes) -> ApiResult {
    let new: NewProxy = parse(&body)?;
    if new.name.is_empty() {
        return Err(bad_request("proxy name missing"));
    }
    let listen: SocketAddr =
        new.listen.parse().map_err(|_| bad_request(format!("listen must be ip:port, got {}", new.listen)))?;
    if !listen.ip().is_loopback() {
        return Err(bad_request(format!("listen must be a loopback address, got {listen}")));
    }
    let upstream = tokio::net::lookup_host(&new.upstream)
        .await
        .ok()
        .and_then(|mut addrs| addrs.next())
        .ok_or_else(|| bad_request(format!("upstream must be host:port, got {}", new.upstream)))?;
    let exists = || ApiError(StatusCode::CONFLICT, format!("proxy already exists: {}", new.name));
    if proxies.get(&new.name).is_some() {
        return Err(exists());
    }
    let proxy =
        TcpProxy::bind(listen, upstream).await.map_err(|e| bad_request(format!("cannot listen on {listen}: {e}")))?;
    proxy.set_enabled(new.enabled).await;
    let body = proxy_json(&new.name, &proxy);
    // Checked again under the lock: of two creations of one name, the second is refused
    // (and its listener closed as `proxy` drops).
    match proxies.map().entry(new.name.clone()) {
        Entry::Occupied(_) => return Err(exists()),
        Entry::Vacant(slot) => slot.insert(Arc::new(proxy)),
    };
    ok(StatusCode::CREATED, body)
}

async fn get_proxy(State(proxies): State<Proxies>, Path(name): Path<String>) -> ApiResult {
    let proxy = find(&proxies, &name)?;
    ok(StatusCode::OK, proxy_json(&name, &proxy))
}

#[derive(Deserialize)]
struct ProxyUpdate {
    enabled: Option<bool>,
    listen: Option<String>,
    upstream: Option<String>,
}

async fn update_proxy(State(proxies): State<Proxies>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let proxy = find(&proxies, &name)?;
    let update: ProxyUpdate = parse(&body)?;
    if update.listen.is_some_and(|l| l != proxy.addr().to_string())
        || update.upstream.is_some_and(|u| u != proxy.upstream().to_string())
    {
        return Err(bad_request("listen and upstream cannot be changed; delete and create the proxy"));
    }
    if let Some(enabled) = update.enabled {
        proxy.set_enabled(enabled).await;
    }
    ok(StatusCode::OK, proxy_json(&name, &proxy))
}

async fn delete_proxy(State(proxies): State<Proxies>, Path(name): Path<String>) -> ApiResult {
    let proxy = proxies.map().remove(&name);
    match proxy {
        Some(proxy) => {
            // Dropping the last handle stops it; cut first so its connections close now even
            // if a caller still holds one.
            proxy.cut().await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        None => Err(ApiError(StatusCode::NOT_FOUND, format!("proxy not found: {name}"))),
    }
}

async fn list_toxics(State(proxies): State<Proxies>, Path(name): Path<String>) -> ApiResult {
    let proxy = find(&proxies, &name)?;
    ok(StatusCode::OK, json!(proxy.toxics()))
}

async fn create_toxic(State(proxies): State<Proxies>, Path(name): Path<String>, body: Bytes) -> ApiResult {
    let proxy = find(&proxies, &name)?;
    let toxic: Toxic = parse(&body)?;
    let added = proxy.add_toxic(toxic)?;
    ok(StatusCode::OK, json!(added))
}

fn find_toxic(proxy: &TcpProxy, name: &str) -> Result<Toxic, ApiError> {
    proxy.toxics().into_iter().find(|t| t.name == name).ok_or_else(|| ToxicError::NotFound(name.to_owned()).into())
}

async fn get_toxic(State(proxies): State<Proxies>, Path((name, toxic)): Path<(String, String)>) -> ApiResult {
    let proxy = find(&proxies, &name)?;
    ok(StatusCode::OK, json!(find_toxic(&proxy, &toxic)?))
}

/// Toxiproxy's update: the given fields over the toxic's own, `attributes` key by key.
async fn update_toxic(
    State(proxies): State<Proxies>,
    Path((name, toxic)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    let proxy = find(&proxies, &name)?;
    let current = find_toxic(&proxy, &toxic)?;
    let Value::Object(changes) = parse::<Value>(&body)? else {
        return Err(bad_request("bad request body: expected a JSON object"));
    };
    let mut merged = serde_json::to_value(&current).map_err(|e| bad_request(e.to_string()))?;
    for (key, value) in changes {
        match (key.as_str(), value) {
            ("name", _) => {}
            ("attributes", Value::Object(attributes)) => {
                if let Some(Value::Object(own)) = merged.get_mut("attributes") {
                    own.extend(attributes);
                }
            }
            (key, value) => {
                merged[key] = value;
            }
        }
    }
    let updated: Toxic = serde_json::from_value(merged).map_err(|e| bad_request(format!("bad request body: {e}")))?;
    ok(StatusCode::OK, json!(proxy.update_toxic(updated)?))
}

async fn delete_toxic(State(proxies): State<Proxies>, Path((name, toxic)): Path<(String, String)>) -> ApiResult {
    let proxy = find(&proxies, &name)?;
    proxy.remove_toxic(&toxic)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn reset(State(proxies): State<Proxies>) -> ApiResult {
    let all: Vec<Arc<TcpProxy>> = proxies.map().values().cloned().collect();
    for proxy in all {
        proxy.remove_all_toxics();
        proxy.set_enabled(true).await;
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
