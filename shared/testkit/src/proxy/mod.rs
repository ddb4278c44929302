//! A TCP fault proxy: break, slow down or corrupt the timing of a connection on purpose.
//!
//! Put it between a client and a real server (PostgreSQL, RabbitMQ, Redis, another service)
//! and the client's connections can be cut at a chosen moment, or degraded with Toxiproxy's
//! toxics ([`Toxic`]: latency ± jitter, bandwidth, slicer, timeout, reset_peer, limit_data),
//! added and removed at run time, acting on connections already open. Tests use it to show
//! that a component notices a lost or slow connection and comes back by itself; chaos
//! experiments use it the same way. It runs in-process, so no root, no `iptables`, no
//! container is needed. [`api::ControlApi`] serves Toxiproxy's HTTP API over such proxies,
//! for tools that speak it.
//!
//! Why not the `noxious` crate (a Rust port of Toxiproxy): it builds here and can be driven
//! in-process, but it has no `reset_peer` toxic and no way to add one (its toxic set is a
//! closed enum and it owns the sockets), its core ignores `enabled` (`down` is left to a
//! server crate that is not published), and it pulls a second tokio-util and rand into the
//! build. The toxics below are small enough to own.

pub mod api;
mod toxic;

pub use toxic::{Stream, Toxic, ToxicError, ToxicKind};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use toxic::{End, ToxicList};

/// An in-process TCP proxy on a loopback port in front of one upstream address.
pub struct TcpProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    /// Cancelled on drop: stops the accept loop and, through child tokens, every connection.
    stop: CancellationToken,
}

struct Shared {
    upstream: SocketAddr,
    /// The cut flag and the token of the connections opened since the last cut, behind one
    /// lock so that a connection accepted while `cut()` runs is either refused or cut.
    state: Mutex<CutState>,
    /// Connections currently relayed.
    open: watch::Sender<usize>,
    /// The toxics in force; every connection watches them.
    toxics: watch::Sender<ToxicList>,
}

struct CutState {
    cut: bool,
    connections: CancellationToken,
}

impl Shared {
    fn state(&self) -> std::sync::MutexGuard<'_, CutState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Counts a connection as open for as long as it lives.
struct OpenGuard(Arc<Shared>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.open.send_modify(|n| *n -= 1);
    }
}

impl TcpProxy {
    /// Listen on `127.0.0.1:0` and relay every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        TcpProxy::bind(SocketAddr::from(([127, 0, 0, 1], 0)), upstream).await
    }

    /// Listen on `listen` (port 0 for any free port) and relay every connection to
    /// `upstream`.
    pub async fn bind(listen: SocketAddr, upstream: SocketAddr) -> std::io::Result<TcpProxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(CutState { cut: false, connections: stop.child_token() }),
            open: watch::Sender::new(0),
            toxics: watch::Sender::new(Arc::new(Vec::new())),
        });
        tokio::spawn(accept_loop(listener, shared.clone(), stop.clone()));
        Ok(TcpProxy { addr, shared, stop })
    }

    /// The address clients connect to instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address connections are relayed to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Close every open connection and, until [`restore`](Self::restore), close new ones as
    /// soon as they are accepted. Returns once every relayed connection is closed.
    pub async fn cut(&self) {
        {
            let mut state = self.shared.state();
            state.cut = true;
            state.connections.cancel();
            state.connections = self.stop.child_token();
        }
        let mut open = self.shared.open.subscribe();
        // The sender lives in `self.shared`, so this cannot fail while `self` is borrowed.
        let _ = open.wait_for(|n| *n == 0).await;
    }

    /// Relay new connections again (connections closed by the cut stay closed).
    pub fn restore(&self) {
        self.shared.state().cut = false;
    }

    /// Toxiproxy's `enabled`: `false` is [`cut`](Self::cut) (the `down` of chaos
    /// experiments), `true` is [`restore`](Self::restore).
    pub async fn set_enabled(&self, enabled: bool) {
        if enabled {
            self.restore();
        } else {
            self.cut().await;
        }
    }

    /// Whether new connections are relayed (not cut).
    pub fn enabled(&self) -> bool {
        !self.shared.state().cut
    }

    /// Connections currently relayed.
    pub fn open_connections(&self) -> usize {
        *self.shared.open.borrow()
    }

    /// Put `toxic` in force on every connection, open or new. An empty name becomes
    /// Toxiproxy's default, `<type>_<stream>`; returns the toxic as added.
    pub fn add_toxic(&self, toxic: Toxic) -> Result<Toxic, ToxicError> {
        let toxic = toxic.validated()?;
        let mut result = Ok(toxic.clone());
        self.shared.toxics.send_if_modified(|list| {
            if list.iter().any(|t| t.name == toxic.name) {
                result = Err(ToxicError::Exists(toxic.name.clone()));
                return false;
            }
            Arc::make_mut(list).push(toxic.clone());
            true
        });
        result
    }

    /// Replace the toxic named `toxic.name` (its type may change too).
    pub fn update_toxic(&self, toxic: Toxic) -> Result<Toxic, ToxicError> {
        let toxic = toxic.validated()?;
        let mut result = Ok(toxic.clone());
        self.shared.toxics.send_if_modified(|list| match list.iter().position(|t| t.name == toxic.name) {
            Some(i) => {
                Arc::make_mut(list)[i] = toxic.clone();
                true
            }
            None => {
                result = Err(ToxicError::NotFound(toxic.name.clone()));
                false
            }
        });
        result
    }

    /// Take the toxic named `name` out of force.
    pub fn remove_toxic(&self, name: &str) -> Result<(), ToxicError> {
        let mut result = Ok(());
        self.shared.toxics.send_if_modified(|list| match list.iter().position(|t| t.name == name) {
            Some(i) => {
                Arc::make_mut(list).remove(i);
                true
            }
            None => {
                result = Err(ToxicError::NotFound(name.to_owned()));
                false
            }
        });
        result
    }

    /// Take every toxic out of force.
    pub fn remove_all_toxics(&self) {
        self.shared.toxics.send_if_modified(|list| {
            let had = !list.is_empty();
            *list = Arc::new(Vec::new());
            had
        });
    }

    /// The toxics in force, in the order they were added.
    pub fn toxics(&self) -> Vec<Toxic> {
        self.shared.toxics.borrow().as_ref().clone()
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let client = match accepted {
            Ok((client, _)) => client,
            Err(_) => {
                // Usually too many open files; the listener itself is still good, so pause
                // instead of spinning and try again.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        let token = {
            let state = shared.state();
            if state.cut {
                drop(client);
                continue;
            }
            // Counted before the task starts, so a `cut()` right after waits for it too.
            shared.open.send_modify(|n| *n += 1);
            state.connections.clone()
        };
        tokio::spawn(relay(client, OpenGuard(shared.clone()), token));
    }
}

async fn relay(mut client: TcpStream, guard: OpenGuard, cut: CancellationToken) {
    let upstream = tokio::select! {
        _ = cut.cancelled() => None,
        // An unreachable upstream looks to the client like a closed connection, as it would
        // without the proxy.
        upstream = TcpStream::connect(guard.0.upstream) => upstream.ok(),
    };
    if let Some(mut upstream) = upstream {
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        // Ends both directions: on a cut, or when one direction has to take the whole
        // connection down.
        let end = cut.child_token();
        let ended = {
            let (client_read, client_write) = client.split();
            let (upstream_read, upstream_write) = upstream.split();
            let toxics = guard.0.toxics.subscribe();
            let (up, down) = tokio::join!(
                toxic::pump(client_read, upstream_write, Stream::Upstream, toxics.clone(), end.clone()),
                toxic::pump(upstream_read, client_write, Stream::Downstream, toxics, end.clone()),
            );
            up.max(down)
        };
        if ended == End::Reset {
            // Closing with a zero linger sends RST instead of FIN.
            let _ = client.set_zero_linger();
            let _ = upstream.set_zero_linger();
        }
        drop(upstream);
    }
    // Both sockets are closed before the connection stops counting as open.
    drop(client);
    drop(guard);
}

/// A loopback upstream that echoes every byte back, for trying a proxy and its toxics on.
pub async fn echo_server() -> std::io::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut read, mut write) = socket.split();
                let _ = tokio::io::copy(&mut read, &mut write).await;
            });
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PATIENCE: Duration = Duration::from_secs(5);

    async fn roundtrip(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
        stream.write_all(bytes).await?;
        let mut back = vec![0; bytes.len()];
        tokio::time::timeout(PATIENCE, stream.read_exact(&mut back)).await.expect("echo within 5 s")?;
        Ok(back)
    }

    /// Reads until EOF or error; true when the peer closed (never data).
    async fn closed_by_peer(stream: &mut TcpStream) -> bool {
        let mut buf = [0u8; 64];
        match tokio::time::timeout(PATIENCE, stream.read(&mut buf)).await.expect("closed within 5 s") {
            Ok(0) | Err(_) => true,
            Ok(_) => false,
        }
    }

    async fn wait_open(proxy: &TcpProxy, n: usize) {
        let mut open = proxy.shared.open.subscribe();
        tokio::time::timeout(PATIENCE, open.wait_for(|v| *v == n)).await.expect("connection count").unwrap();
    }

    #[tokio::test]
    async fn bytes_flow_through() {
        let proxy = TcpProxy::start(echo_server().await.unwrap()).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut client, b"hello").await.unwrap(), b"hello");
        assert_eq!(proxy.open_connections(), 1);
        drop(client);
        wait_open(&proxy, 0).await;
    }

    #[tokio::test]
    async fn cut_closes_open_connections() {
        let proxy = TcpProxy::start(echo_server().await.unwrap()).await.unwrap();
        let mut a = TcpStream::connect(proxy.addr()).await.unwrap();
        let mut b = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut a, b"a").await.unwrap();
        roundtrip(&mut b, b"b").await.unwrap();
        assert_eq!(proxy.open_connections(), 2);

        proxy.cut().await;

        assert_eq!(proxy.open_connections(), 0);
        assert!(closed_by_peer(&mut a).await, "a still open after the cut");
        assert!(closed_by_peer(&mut b).await, "b still open after the cut");
    }

    #[tokio::test]
    async fn new_connections_fail_during_a_cut_and_work_after_restore() {
        let proxy = TcpProxy::start(echo_server().await.unwrap()).await.unwrap();
        proxy.cut().await;

        let mut during = TcpStream::connect(proxy.addr()).await.unwrap();
        // Whatever is written is never echoed: the proxy closes the connection unrelayed.
        let _ = during.write_all(b"lost").await;
        assert!(closed_by_peer(&mut during).await, "a connection got through the cut");
        assert_eq!(proxy.open_connections(), 0);

        proxy.restore();
        let mut after = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut after, b"back").await.unwrap(), b"back");
        assert_eq!(proxy.open_connections(), 1);
    }

    #[tokio::test]
    async fn drop_stops_the_proxy() {
        let proxy = TcpProxy::start(echo_server().await.unwrap()).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut client, b"x").await.unwrap();
        drop(proxy);
        assert!(closed_by_peer(&mut client).await, "connection outlived the proxy");
    }
}
