//! Several replicas of one HTTP upstream behind one client: tower's power-of-two-choices
//! balancer over the replicas that pass their health check.
//!
//! An upstream URL may list replicas, comma-separated (`http://127.0.0.1:8003,http://127.0.0.1:8103`).
//! Each replica is a service that sends the request to its own address, weighed by the
//! requests it has in flight (`tower::load::PendingRequests`). A health checker asks each
//! replica's `/health` every [`HEALTH_EVERY`] and tells the balancer (`tower::discover`)
//! when one stops answering, so a dead replica leaves the rotation within
//! [`DETECTION`], and comes back when it answers again. Until then, calls that reach it fail
//! like any call to a dead upstream (and the retry layer above retries the idempotent ones).
//! With every replica out, calls wait for one to come back, within their deadline.

use futures::StreamExt;
use std::convert::Infallible;
use std::time::Duration;
use tower::balance::p2c::Balance;
use tower::buffer::Buffer;
use tower::discover::Change;
use tower::load::{CompleteOnResponse, PendingRequests};
use tower::{BoxError, ServiceExt};

/// How often each replica's `/health` is asked.
pub const HEALTH_EVERY: Duration = Duration::from_millis(200);
/// How long a health check may take before it counts as failed.
pub const HEALTH_TIMEOUT: Duration = Duration::from_millis(150);
/// The longest a dead replica stays in rotation: the next check comes within one interval
/// and fails within one timeout; one more interval is slack for a busy machine's timers.
pub const DETECTION: Duration = Duration::from_millis(2 * 200 + 150);

/// Calls waiting for the balancer at once, at most.
const QUEUE: usize = 1024;

type Replica = PendingRequests<tower::util::BoxCloneSyncService<reqwest::Request, reqwest::Response, BoxError>>;

/// The wire of an upstream with several replicas at `bases`: each request goes to the
/// replica the balancer picks, its path and query kept.
pub fn balanced(
    name: &'static str,
    bases: Vec<reqwest::Url>,
    client: reqwest::Client,
) -> Buffer<reqwest::Request, <Balance<Discovered, reqwest::Request> as tower::Service<reqwest::Request>>::Future> {
    let (changes, discovered) = tokio::sync::mpsc::unbounded_channel();
    let replica = {
        let client = client.clone();
        move |base: &reqwest::Url| -> Replica {
            let (client, base) = (client.clone(), base.clone());
            let send = tower::service_fn(move |mut request: reqwest::Request| {
                let url = request.url_mut();
                // The replicas differ only in where they listen.
                let _ = url.set_host(base.host_str());
                let _ = url.set_port(base.port_or_known_default());
                client.execute(request)
            });
            let send = tower::util::BoxCloneSyncService::new(send.map_err(BoxError::from));
            PendingRequests::new(send, CompleteOnResponse::default())
        }
    };
    for (key, base) in bases.iter().enumerate() {
        let _ = changes.send(Ok(Change::Insert(key, replica(base))));
    }
    tokio::spawn(check_health(name, bases, client, changes, replica));
    let discovered = tokio_stream::wrappers::UnboundedReceiverStream::new(discovered);
    Buffer::new(Balance::new(Discovered(discovered)), QUEUE)
}

/// The replicas as the balancer discovers them.
pub struct Discovered(tokio_stream::wrappers::UnboundedReceiverStream<Result<Change<usize, Replica>, Infallible>>);

impl futures::Stream for Discovered {
    type Item = Result<Change<usize, Replica>, Infallible>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_next_unpin(cx)
    }
}

/// Ask every replica's `/health` every [`HEALTH_EVERY`]; take out those that fail, put back
/// those that answer again. Ends when the balancer is gone.
async fn check_health(
    name: &'static str,
    bases: Vec<reqwest::Url>,
    client: reqwest::Client,
    changes: tokio::sync::mpsc::UnboundedSender<Result<Change<usize, Replica>, Infallible>>,
    replica: impl Fn(&reqwest::Url) -> Replica,
) {
    let mut in_rotation = vec![true; bases.len()];
    let mut tick = tokio::time::interval(HEALTH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let checks = bases.iter().map(|base| {
            let url = base.join("health").expect("a base URL takes a path");
            let request = client.get(url).timeout(HEALTH_TIMEOUT).send();
            async move { request.await.is_ok_and(|r| r.status().is_success()) }
        });
        let healthy = futures::future::join_all(checks).await;
        for (key, (up, was)) in healthy.into_iter().zip(in_rotation.iter_mut()).enumerate() {
            let change = match (up, *was) {
                (false, true) => {
                    tracing::warn!(peer = name, replica = %bases[key], "replica failed its health check: out of rotation");
                    Change::Remove(key)
                }
                (true, false) => {
                    tracing::info!(peer = name, replica = %bases[key], "replica healthy again: back in rotation");
                    Change::Insert(key, replica(&bases[key]))
                }
                _ => continue,
            };
            *was = up;
            if changes.send(Ok(change)).is_err() {
                return;
            }
        }
    }
}
