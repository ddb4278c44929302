//! One persistent HTTP/1.1 keep-alive connection, driven with hyper's client connection API
//! directly (no pool, no middleware), reopened after any failure.
//!
//! The connection's I/O future is polled by the same task that sends the request, not by a
//! task of its own: hyper hands each request and answer between the two halves, and with two
//! tasks every request cost two task wake-ups through the scheduler, the generator's largest
//! cost per request next to hyper's own parsing (see docs/load.md, "Calibration").

use super::recorder::Outcome;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{Connection, SendRequest};
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::pin::Pin;
use std::time::Duration;
use tokio::net::TcpStream;

/// The request half and the I/O half of one open connection.
struct Open {
    sender: SendRequest<Full<Bytes>>,
    io: Pin<Box<Connection<TokioIo<TcpStream>, Full<Bytes>>>>,
}

/// A connection to the target, opened lazily.
pub struct Conn {
    addr: SocketAddr,
    open: Option<Open>,
}

impl Conn {
    /// A connection to `addr`, not yet open.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, open: None }
    }

    /// Open the connection if it is not open; false if that failed.
    pub async fn open(&mut self) -> bool {
        if self.open.as_ref().is_some_and(|o| !o.sender.is_closed()) {
            return true;
        }
        self.open = None;
        let Ok(stream) = TcpStream::connect(self.addr).await else { return false };
        // Small requests on a keep-alive connection: never wait for Nagle.
        if stream.set_nodelay(true).is_err() {
            return false;
        }
        let Ok((sender, io)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
            return false;
        };
        self.open = Some(Open { sender, io: Box::pin(io) });
        true
    }

    /// Send one request and read its whole answer, within `timeout` (opening the connection
    /// counts towards it). Any failure closes the connection; the next call reopens it.
    pub async fn send(&mut self, request: Request<Full<Bytes>>, timeout: Duration) -> Outcome {
        let exchange = async {
            if !self.open().await {
                return Outcome::Connect;
            }
            let Some(Open { sender, io }) = self.open.as_mut() else { return Outcome::Connect };
            let request_and_answer = async {
                if sender.ready().await.is_err() {
                    return Outcome::Io;
                }
                let Ok(response) = sender.send_request(request).await else { return Outcome::Io };
                let status = response.status().as_u16();
                match response.into_body().collect().await {
                    Ok(_) => Outcome::Status(status),
                    Err(_) => Outcome::Io,
                }
            };
            // Drive the connection's I/O while waiting; it ends only when the connection
            // does (closed by the server, or failed), which is a failed exchange.
            tokio::select! {
                biased;
                outcome = request_and_answer => outcome,
                _ = io.as_mut() => Outcome::Io,
            }
        };
        let outcome = tokio::time::timeout(timeout, exchange).await.unwrap_or(Outcome::Timeout);
        if !matches!(outcome, Outcome::Status(_)) {
            // A half-read answer leaves the connection unusable.
            self.open = None;
        }
        outcome
    }
}
