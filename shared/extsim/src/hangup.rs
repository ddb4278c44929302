//! Lost replies: the provider did the work (a charge recorded, an email accepted), and the
//! caller never hears of it, because the connection is dropped instead of answered.
//!
//! This is the in-doubt case a caller cannot tell apart from "the request never arrived",
//! and the reason a payment must be reconciled with the provider rather than assumed
//! failed. A handler marks its answer through [`answer`]; the layer [`drop_marked`] shuts the
//! connection down before the server writes a byte of it. To reach the connection from a
//! request, [`Listener`] keeps a second handle on each accepted socket and hands it to the
//! router as the connection's [`Connection`] info.

use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use tokio::net::{TcpListener, TcpStream};

/// Marks a response whose connection is to be dropped instead.
#[derive(Debug, Clone, Copy)]
struct HangUp;

/// `reply`, or with `lost`, a dropped connection in its place.
pub(crate) fn answer(reply: impl IntoResponse, lost: bool) -> Response {
    let mut response = reply.into_response();
    if lost {
        response.extensions_mut().insert(HangUp);
    }
    response
}

/// One accepted connection, as the router sees it.
#[derive(Debug, Clone)]
pub struct Connection {
    /// The caller's address.
    pub peer: SocketAddr,
    /// A second handle on the socket, to shut it down from a handler's layer; `None` if
    /// the socket could not be duplicated (then replies are never lost on it).
    socket: Option<Arc<std::net::TcpStream>>,
}

impl Connected<IncomingStream<'_, Listener>> for Connection {
    fn connect_info(stream: IncomingStream<'_, Listener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be dropped by the layer [`drop_marked`].
pub struct Listener(pub TcpListener);

impl axum::serve::Listener for Listener {
    type Io = TcpStream;
    type Addr = Connection;

    async fn accept(&mut self) -> (TcpStream, Connection) {
        loop {
            let (stream, peer) = match self.0.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    // As axum's own listener: out of descriptors and the like pass; back off
                    // a little rather than spin on them.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            match with_twin(stream) {
                Ok((stream, socket)) => return (stream, Connection { peer, socket: socket.map(Arc::new) }),
                Err(e) => tracing::warn!(error = %e, %peer, "could not take over an accepted connection"),
            }
        }
    }

    fn local_addr(&self) -> io::Result<Connection> {
        Ok(Connection { peer: self.0.local_addr()?, socket: None })
    }
}

/// The stream, and a duplicate of its socket if the system grants one.
fn with_twin(stream: TcpStream) -> io::Result<(TcpStream, Option<std::net::TcpStream>)> {
    let std = stream.into_std()?;
    let twin = std
        .try_clone()
        .inspect_err(|e| tracing::warn!(error = %e, "no second handle on a connection: its replies are never lost"))
        .ok();
    Ok((TcpStream::from_std(std)?, twin))
}

/// The layer that loses marked replies: it shuts the connection down (both ways) before
/// the response is written, so the caller reads end-of-stream where the answer should be.
pub(crate) async fn drop_marked(request: Request, next: Next) -> Response {
    let connection = request.extensions().get::<ConnectInfo<Connection>>().map(|info| info.0.clone());
    let response = next.run(request).await;
    if response.extensions().get::<HangUp>().is_none() {
        return response;
    }
    match connection.as_ref().and_then(|c| c.socket.as_deref().map(|socket| (c.peer, socket))) {
        Some((peer, socket)) => match socket.shutdown(Shutdown::Both) {
            Ok(()) => tracing::info!(%peer, "reply lost on purpose: connection dropped"),
            Err(e) => tracing::warn!(error = %e, "could not drop the connection: the reply goes out"),
        },
        // Driven in-process (`app().oneshot(..)`): there is no connection to drop.
        None => tracing::warn!("a reply to lose, but no connection to drop: the reply goes out"),
    }
    response
}
