//! A TCP proxy to break a connection on purpose.
//!
//! Put it between a client and a real server (RabbitMQ, PostgreSQL, another service) and the
//! client's connections can be cut at a chosen moment: every open one closed at once, and
//! new ones refused until [`TcpProxy::restore`]. Tests use it to show that a component
//! notices a lost connection and comes back by itself; chaos experiments use it the same way.
//! It runs in-process, so no root, no `iptables`, no container is needed.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// An in-process TCP proxy on `127.0.0.1:0` in front of one upstream address.
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
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let stop = CancellationToken::new();
        let shared = Arc::new(Shared {
            upstream,
            state: Mutex::new(CutState { cut: false, connections: stop.child_token() }),
            open: watch::Sender::new(0),
        });
        tokio::spawn(accept_loop(listener, shared.clone(), stop.clone()));
        Ok(TcpProxy { addr, shared, stop })
    }

    /// The address clients connect to instead of the upstream.
    pub fn addr(&self) -> SocketAddr {
        self.addr
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

    /// Connections currently relayed.
    pub fn open_connections(&self) -> usize {
        *self.shared.open.borrow()
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
        tokio::select! {
            _ = cut.cancelled() => {}
            _ = copy_bidirectional(&mut client, &mut upstream) => {}
        }
        drop(upstream);
    }
    // Both sockets are closed before the connection stops counting as open.
    drop(client);
    drop(guard);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const PATIENCE: Duration = Duration::from_secs(5);

    /// An upstream that echoes every byte back.
    async fn echo_server() -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut read, mut write) = socket.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        addr
    }

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
        let proxy = TcpProxy::start(echo_server().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        assert_eq!(roundtrip(&mut client, b"hello").await.unwrap(), b"hello");
        assert_eq!(proxy.open_connections(), 1);
        drop(client);
        wait_open(&proxy, 0).await;
    }

    #[tokio::test]
    async fn cut_closes_open_connections() {
        let proxy = TcpProxy::start(echo_server().await).await.unwrap();
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
        let proxy = TcpProxy::start(echo_server().await).await.unwrap();
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
        let proxy = TcpProxy::start(echo_server().await).await.unwrap();
        let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
        roundtrip(&mut client, b"x").await.unwrap();
        drop(proxy);
        assert!(closed_by_peer(&mut client).await, "connection outlived the proxy");
    }
}
