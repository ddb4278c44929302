//! The fault points' admin endpoint, on a listener of its own that only binds loopback.
//!
//! ```text
//! GET    /admin/faults           every registered point, whether it is here, its setting
//! GET    /admin/faults/{point}   one point
//! PUT    /admin/faults/{point}   set it (a JSON [`Fault`]), replacing what it had
//! DELETE /admin/faults/{point}   clear it
//! DELETE /admin/faults           clear every point
//! ```
//!
//! Why a separate listener and not routes on the public one restricted to loopback peers:
//! in the microservices build every request a service receives comes from the gateway, on
//! loopback, so a peer check would let any public client through a forwarding proxy reach
//! it. An address is a property of the socket, checked once, when the process starts: a
//! non-loopback `*_ADMIN_ADDR` stops it there ([`loopback_addr`], [`AdminListener::bind`]).

use super::{Fault, Faults, PointState};
use crate::Error;
use crate::http::{Json, edge};
use anyhow::Context;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Router, response::IntoResponse};
use serde::Serialize;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What `GET /admin/faults` answers.
#[derive(Debug, Serialize)]
pub struct Listing {
    /// Every registered point.
    pub points: Vec<PointState>,
    /// Bytes the leak kind has kept in this process so far.
    pub leaked_bytes: u64,
}

/// The admin routes over `faults`, behind the lab's edge (JSON errors, body limit).
pub fn router(faults: Faults) -> Router {
    edge(
        Router::new()
            .route("/admin/faults", get(list).delete(clear_all))
            .route("/admin/faults/{point}", get(show).put(set).delete(clear))
            .with_state(faults),
    )
}

async fn list(State(faults): State<Faults>) -> axum::Json<Listing> {
    axum::Json(Listing { points: faults.states(), leaked_bytes: faults.leaked_bytes() })
}

/// The point named in the path, as `resolve` finds it.
fn point(faults: &Faults, path: Result<Path<String>, PathRejection>) -> Result<&'static str, Error> {
    // A segment that does not decode is no registered name either.
    let name = path.map(|Path(name)| name).unwrap_or_default();
    faults.resolve(&name).map(|p| p.name)
}

fn state_of(faults: &Faults, name: &str) -> PointState {
    faults.states().into_iter().find(|s| s.name == name).expect("a resolved point is registered")
}

async fn show(
    State(faults): State<Faults>,
    path: Result<Path<String>, PathRejection>,
) -> Result<axum::Json<PointState>, Error> {
    let name = point(&faults, path)?;
    Ok(axum::Json(state_of(&faults, name)))
}

async fn set(
    State(faults): State<Faults>,
    path: Result<Path<String>, PathRejection>,
    Json(fault): Json<Fault>,
) -> Result<axum::Json<PointState>, Error> {
    let name = point(&faults, path)?;
    faults.set(name, fault)?;
    Ok(axum::Json(state_of(&faults, name)))
}

async fn clear(State(faults): State<Faults>, path: Result<Path<String>, PathRejection>) -> Result<StatusCode, Error> {
    let name = point(&faults, path)?;
    faults.clear(name)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn clear_all(State(faults): State<Faults>) -> impl IntoResponse {
    faults.clear_all();
    tracing::info!("every fault point cleared");
    StatusCode::NO_CONTENT
}

/// `addr` if its IP is a loopback address (127.0.0.0/8, ::1), else why not: the `clap`
/// value parser of every `*_ADMIN_ADDR`.
pub fn loopback_addr(addr: &str) -> Result<SocketAddr, String> {
    let parsed: SocketAddr = addr.parse().map_err(|e| format!("{addr:?} is not an address (ip:port): {e}"))?;
    match parsed.ip().is_loopback() {
        true => Ok(parsed),
        false => {
            Err(format!("the fault admin endpoint listens on loopback only (127.0.0.1 or ::1), not {}", parsed.ip()))
        }
    }
}

/// The admin endpoint's bound listener.
pub struct AdminListener {
    listener: TcpListener,
    router: Router,
}

impl AdminListener {
    /// Bind `addr`, which must be a loopback address (port 0 allowed).
    pub async fn bind(addr: SocketAddr, faults: &Faults) -> anyhow::Result<Self> {
        loopback_addr(&addr.to_string()).map_err(anyhow::Error::msg)?;
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("binding the fault admin endpoint {addr}"))?;
        Ok(Self { listener, router: router(faults.clone()) })
    }

    /// [`AdminListener::bind`] when an address is configured; none otherwise.
    pub async fn bind_optional(addr: Option<SocketAddr>, faults: &Faults) -> anyhow::Result<Option<Self>> {
        match addr {
            Some(addr) => Self::bind(addr, faults).await.map(Some),
            None => Ok(None),
        }
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().expect("a bound listener has an address")
    }

    /// Serve in a task until `stop` is cancelled; a failure is logged, since losing the admin
    /// endpoint should not take the process's real work down with it.
    pub fn spawn(self, stop: CancellationToken) -> JoinHandle<()> {
        tokio::spawn(async move {
            let addr = self.local_addr();
            tracing::info!(%addr, "fault admin endpoint listening");
            if let Err(e) = axum::serve(self.listener, self.router).with_graceful_shutdown(stop.cancelled_owned()).await
            {
                tracing::error!(%addr, error = %e, "fault admin endpoint stopped");
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_addresses_are_accepted() {
        for ok in ["127.0.0.1:0", "127.0.0.1:8180", "127.1.2.3:9", "[::1]:0"] {
            assert!(loopback_addr(ok).is_ok(), "{ok}");
        }
        for refused in ["0.0.0.0:8180", "[::]:0", "192.168.1.10:8180", "10.0.0.1:1"] {
            let why = loopback_addr(refused).expect_err(refused);
            assert!(why.contains("loopback only"), "{refused}: {why}");
        }
        assert!(loopback_addr("localhost:8180").unwrap_err().contains("not an address"));
    }

    #[tokio::test]
    async fn binding_a_public_address_is_refused() {
        let refused =
            AdminListener::bind("0.0.0.0:0".parse().unwrap(), &Faults::default()).await.err().expect("refused");
        assert!(format!("{refused:#}").contains("loopback only"), "{refused:#}");
        let bound = AdminListener::bind_optional(Some("127.0.0.1:0".parse().unwrap()), &Faults::default()).await;
        assert!(bound.expect("loopback binds").expect("configured").local_addr().ip().is_loopback());
        assert!(AdminListener::bind_optional(None, &Faults::default()).await.unwrap().is_none());
    }
}
