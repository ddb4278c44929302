//! What bounds abuse of signup and login, the same code in both builds.
//!
//! Three limits, each where its fact is known (the numbers are in docs/api.md, "Limits"):
//!
//! - [`AddressLimit`]: signup and login requests per client address. Only the public edge
//!   knows the client's address, so the monolith's router and the gateway apply it (in the
//!   microservices build auth-service sees the gateway's address, not the client's).
//! - [`AccountLimit`]: signup and login attempts per e-mail address, checked inside
//!   [`AuthService`](crate::AuthService) before any password is hashed, so both builds run
//!   the very same check wherever the auth domain runs.
//! - [`HashGate`]: how many argon2id hashes (19 MiB each) run at once, each in its slot's
//!   own reused buffer. A flood queues for a bounded time, then is shed with 503, instead of
//!   holding one hash's memory per request.
//!
//! The rate limits are `governor`'s keyed GCRA limiters: a burst of N, then one more every
//! period / N. A refused request says how long to wait (`Retry-After`).

use crate::codes;
use crate::hashing::Memory;
use archlab_kernel::config::AbuseArgs;
use archlab_kernel::{Error, ErrorKind, Result};
use axum::Router;
use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How long a request shed by a full [`HashGate`] is told to wait before retrying.
pub const HASH_RETRY_AFTER: Duration = Duration::from_secs(1);

/// One keyed rate limit: `burst` at once per key, then one more every `period / burst`.
///
/// Keys whose bucket is full again are forgotten now and then, so memory follows the keys
/// active within one period, not every key ever seen.
struct Keyed<K: Hash + Eq + Clone> {
    limiter: DefaultKeyedRateLimiter<K>,
    checks: AtomicU64,
}

/// Forget refilled keys once every this many checks.
const HOUSEKEEPING_EVERY: u64 = 4096;

impl<K: Hash + Eq + Clone> Keyed<K> {
    /// `None` when `burst` is 0: the limit is off.
    fn new(burst: u32, period: Duration) -> Option<Self> {
        let burst = NonZeroU32::new(burst)?;
        let quota = Quota::with_period(period / burst.get()).expect("a non-zero period").allow_burst(burst);
        Some(Self { limiter: DefaultKeyedRateLimiter::keyed(quota), checks: AtomicU64::new(0) })
    }

    /// Take one cell of `key`'s bucket, or say how long until there is one.
    fn check(&self, key: &K) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % HOUSEKEEPING_EVERY == HOUSEKEEPING_EVERY - 1 {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter.check_key(key).map_err(|not_until| not_until.wait_time_from(self.limiter.clock().now()))
    }
}

/// Signup and login attempts per account (the normalised e-mail address).
///
/// Every attempt counts, right or wrong: once an account's budget is spent even the right
/// password is refused until it refills, or a brute force would learn when it found it.
/// Unknown addresses are limited exactly like known ones, so a 429 reveals nothing.
#[derive(Clone)]
pub struct AccountLimit(Option<Arc<Keyed<String>>>);

impl AccountLimit {
    /// `per_hour` attempts per account per hour; `0` switches the limit off.
    pub fn per_hour(per_hour: u32) -> Self {
        Self(Keyed::new(per_hour, Duration::from_secs(3600)).map(Arc::new))
    }

    /// Count one attempt for `account`; 429 `rate_limited` when its budget is spent.
    pub fn check(&self, account: &str) -> Result<()> {
        let Some(limit) = &self.0 else { return Ok(()) };
        limit.check(&account.to_owned()).map_err(|wait| {
            Error::too_many_requests(codes::RATE_LIMITED, "too many sign-in attempts for this account", wait)
        })
    }
}

/// Signup and login requests per client address, as an axum layer for a public edge.
#[derive(Clone)]
pub struct AddressLimit(Option<Arc<Keyed<IpAddr>>>);

impl AddressLimit {
    /// `per_minute` requests per address per minute; `0` switches the limit off.
    pub fn per_minute(per_minute: u32) -> Self {
        Self(Keyed::new(per_minute, Duration::from_secs(60)).map(Arc::new))
    }

    /// The limit `AUTH_LIMIT_PER_ADDRESS_PER_MINUTE` asks for.
    pub fn from_args(args: &AbuseArgs) -> Self {
        Self::per_minute(args.auth_limit_per_address_per_minute)
    }

    /// Count one request from `client`; 429 `rate_limited` when its budget is spent.
    pub fn check(&self, client: IpAddr) -> Result<()> {
        let Some(limit) = &self.0 else { return Ok(()) };
        limit.check(&address_key(client)).map_err(|wait| {
            Error::too_many_requests(codes::RATE_LIMITED, "too many sign-in requests from this address", wait)
        })
    }

    /// `router` with `POST /api/auth/signup` and `POST /api/auth/login` limited per client
    /// address. Applied as a route layer, so it sees only requests that matched one of
    /// `router`'s routes, whatever spelling reached it. The client's address is the TCP
    /// peer: serve with `into_make_service_with_connect_info::<SocketAddr>()`; without it
    /// (a router driven in-process) nothing is limited. With the limit off the router is
    /// returned as it is: a layer that would only pass every request on still costs each one
    /// a boxed future.
    pub fn apply(&self, router: Router) -> Router {
        if self.0.is_none() {
            return router;
        }
        router.route_layer(axum::middleware::from_fn_with_state(self.clone(), limit_by_address))
    }
}

/// The routes [`AddressLimit`] counts.
fn is_limited(request: &Request) -> bool {
    let path = request.extensions().get::<MatchedPath>().map(MatchedPath::as_str);
    request.method() == http::Method::POST
        && matches!(path, Some(p) if p == crate::http::SIGNUP_PATH || p == crate::http::LOGIN_PATH)
}

async fn limit_by_address(State(limit): State<AddressLimit>, request: Request, next: Next) -> Response {
    if is_limited(&request) {
        match request.extensions().get::<ConnectInfo<SocketAddr>>() {
            Some(ConnectInfo(peer)) => {
                if let Err(refused) = limit.check(peer.ip()) {
                    tracing::debug!(client = %peer.ip(), "sign-in request refused by the per-address limit");
                    return refused.into_response();
                }
            }
            None => {
                static ONCE: std::sync::Once = std::sync::Once::new();
                ONCE.call_once(|| tracing::warn!("no client address on this server: the per-address limit is off"));
            }
        }
    }
    next.run(request).await
}

/// The key an address is counted under: IPv4 as is (also when it arrives IPv4-mapped), IPv6
/// by its /64, the block one subscriber usually holds whole.
fn address_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

/// A cap on concurrent password hashes, with a bounded wait for a slot.
///
/// Each argon2id hash or verification needs 19 MiB for tens of milliseconds on a blocking
/// thread; without a cap a flood holds as many as there are requests in flight. The slot is
/// held by the blocking work itself, so a client that hangs up mid-hash frees nothing early.
/// Each slot's working memory is allocated once and reused (see `hashing`), so hashing
/// memory stays at most slots × 19 MiB however many hashes run over time.
#[derive(Clone)]
pub struct HashGate {
    slots: Option<Arc<Semaphore>>,
    /// Working memory not in use: at most one buffer per slot (without a cap, one per hash
    /// that ever ran at the same time as others).
    buffers: Arc<Mutex<Vec<Memory>>>,
    capacity: u32,
    wait: Duration,
    waiting: Arc<AtomicUsize>,
    admitted: Arc<AtomicU64>,
}

/// All of a [`HashGate`]'s slots, held: see [`HashGate::occupy`].
pub struct Occupied {
    _slots: Option<OwnedSemaphorePermit>,
}

impl HashGate {
    /// At most `capacity` hashes at once, each caller waiting at most `wait` for a slot;
    /// `capacity` 0 means no cap.
    pub fn new(capacity: u32, wait: Duration) -> Self {
        let slots = (capacity > 0).then(|| Arc::new(Semaphore::new(capacity as usize)));
        Self { slots, buffers: Arc::default(), capacity, wait, waiting: Arc::default(), admitted: Arc::default() }
    }

    /// The cap `PASSWORD_HASH_CONCURRENCY` and `PASSWORD_HASH_WAIT_MS` ask for.
    pub fn from_args(args: &AbuseArgs) -> Self {
        Self::new(args.password_hash_concurrency, args.password_hash_wait())
    }

    /// Run `work` (a hash or a verification, given its slot's working memory) on a blocking
    /// thread once a slot is free; 503 `overloaded` with `Retry-After` if none frees within
    /// the wait.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Memory) -> T + Send + 'static,
    ) -> Result<T> {
        let permit = match &self.slots {
            None => None,
            Some(slots) => Some(self.acquire(slots.clone()).await?),
        };
        self.admitted.fetch_add(1, Ordering::Relaxed);
        let buffers = self.buffers.clone();
        tokio::task::spawn_blocking(move || {
            // At most one buffer per permit is out, so the pool never holds more than the cap.
            let mut memory = buffers.lock().expect("the buffer pool").pop().unwrap_or_default();
            let done = work(&mut memory);
            buffers.lock().expect("the buffer pool").push(memory);
            drop(permit);
            done
        })
        .await
        .map_err(Error::internal)
    }

    async fn acquire(&self, slots: Arc<Semaphore>) -> Result<OwnedSemaphorePermit> {
        if let Ok(permit) = slots.clone().try_acquire_owned() {
            return Ok(permit);
        }
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let waited = tokio::time::timeout(self.wait, slots.acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        match waited {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(closed)) => Err(Error::internal(closed)),
            Err(_) => {
                tracing::warn!(capacity = self.capacity, "password hashing saturated; request shed");
                Err(Error::new(
                    ErrorKind::Unavailable,
                    codes::OVERLOADED,
                    "too many sign-ins are being checked right now; retry shortly",
                )
                .with_retry_after(HASH_RETRY_AFTER))
            }
        }
    }

    /// Hold every slot until the returned value is dropped, as a flood would: tests and
    /// drills use it to make the gate full without racing real hashes.
    pub async fn occupy(&self) -> Occupied {
        let permit = match &self.slots {
            None => None,
            Some(slots) => Some(slots.clone().acquire_many_owned(self.capacity).await.expect("the gate never closes")),
        };
        Occupied { _slots: permit }
    }

    /// How many callers are queued for a slot now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// How many hashes were let through since start.
    pub fn admitted(&self) -> u64 {
        self.admitted.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn an_account_gets_its_burst_then_429_with_a_wait_and_others_are_untouched() {
        let limit = AccountLimit::per_hour(3);
        for _ in 0..3 {
            limit.check("ada@example.com").expect("within the burst");
        }
        let refused = limit.check("ada@example.com").expect_err("past the burst");
        assert_eq!((refused.kind, refused.code.as_ref()), (ErrorKind::TooManyRequests, codes::RATE_LIMITED));
        let wait = refused.retry_after.expect("a 429 says when to retry");
        assert!(wait > Duration::ZERO && wait <= Duration::from_secs(1200), "one cell refills in 3600/3 s: {wait:?}");
        limit.check("bob@example.com").expect("another account has its own budget");
    }

    #[test]
    fn a_limit_of_zero_is_off() {
        let (account, address) = (AccountLimit::per_hour(0), AddressLimit::per_minute(0));
        for _ in 0..10_000 {
            account.check("ada@example.com").expect("no account limit");
            address.check(IpAddr::V4(Ipv4Addr::LOCALHOST)).expect("no address limit");
        }
    }

    #[test]
    fn addresses_are_counted_by_ipv4_or_ipv6_slash_64() {
        let limit = AddressLimit::per_minute(2);
        let first: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        limit.check(first).unwrap();
        limit.check(same_64).unwrap();
        assert!(limit.check(first).is_err(), "one /64 shares one budget");
        limit.check(other_64).expect("another /64 has its own");

        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        limit.check(v4).unwrap();
        limit.check(mapped).unwrap();
        assert!(limit.check(v4).is_err(), "an IPv4-mapped address is its IPv4 address");
    }

    #[tokio::test]
    async fn a_full_gate_sheds_with_503_and_retry_after_and_admits_once_released() {
        let gate = HashGate::new(1, Duration::ZERO);
        let held = gate.occupy().await;
        let shed = gate.run(|_| 1).await.expect_err("no slot, no wait");
        assert_eq!((shed.kind, shed.code.as_ref()), (ErrorKind::Unavailable, codes::OVERLOADED));
        assert_eq!(shed.retry_after, Some(HASH_RETRY_AFTER));
        assert_eq!(gate.admitted(), 0, "nothing ran");
        drop(held);
        assert_eq!(gate.run(|_| 2).await.expect("a free slot"), 2);
        assert_eq!(gate.admitted(), 1);
    }

    #[tokio::test]
    async fn a_caller_queues_for_a_slot_within_the_wait() {
        let gate = HashGate::new(1, Duration::from_secs(60));
        let held = gate.occupy().await;
        let queued = tokio::spawn({
            let gate = gate.clone();
            async move { gate.run(|_| "hashed").await }
        });
        // Yield (never sleep) until the caller is in the queue, then free the slot.
        let mut turns = 0;
        while gate.waiting() == 0 {
            assert!(turns < 100_000, "the caller never queued");
            turns += 1;
            tokio::task::yield_now().await;
        }
        drop(held);
        assert_eq!(queued.await.unwrap().expect("served once the slot freed"), "hashed");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_never_runs_more_hashes_at_once_than_the_cap() {
        let gate = HashGate::new(2, Duration::from_secs(60));
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let burst = (0..32).map(|_| {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            tokio::spawn(async move {
                gate.run(move |memory| {
                    memory.resize(16, argon2::Block::default());
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    // Some real work, so runs overlap when nothing stops them.
                    let mut x = 0u64;
                    for i in 0..200_000u64 {
                        x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
                    }
                    running.fetch_sub(1, Ordering::SeqCst);
                    x
                })
                .await
            })
        });
        for task in burst.collect::<Vec<_>>() {
            task.await.expect("no caller panicked").expect("every caller is served within the wait");
        }
        assert!(peak.load(Ordering::SeqCst) <= 2, "more hashes at once than the cap: {}", peak.load(Ordering::SeqCst));
        assert_eq!(gate.admitted(), 32);
        let buffers = gate.buffers.lock().unwrap();
        assert!(buffers.len() <= 2, "{} working buffers for a cap of 2", buffers.len());
        assert!(buffers.iter().all(|m| m.len() == 16), "each buffer went to a hash");
    }
}
