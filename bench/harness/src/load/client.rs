//! One persistent HTTP/1.1 keep-alive connection, driven with hyper's client connection API
//! directly (no pool, no middleware), reopened after any failure.

use super::recorder::Outcome;
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::net::TcpStream;

/// A connection to the target, opened lazily.
pub struct Conn {
    addr: SocketAddr,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Conn {
    /// A connection to `addr`, not yet open.
    pub fn new(addr: SocketAddr) -> Self {
        Self { addr, sender: None }
    }

    /// Open the connection if it is not open; false if that failed.
    pub async fn open(&mut self) -> bool {
        if self.sender.as_ref().is_some_and(|s| !s.is_closed()) {
            return true;
        }
        self.sender = None;
        let Ok(stream) = TcpStream::connect(self.addr).await else { return false };
        // Small requests on a keep-alive connection: never wait for Nagle.
        if stream.set_nodelay(true).is_err() {
            return false;
        }
        let Ok((sender, connection)) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await else {
            return false;
        };
        tokio::spawn(async move {
            // Its end (or failure) shows up on the sender; nothing to report here.
            let _ = connection.await;
        });
        self.sender = Some(sender);
        true
    }

    /// Send one request and read its whole answer, within `timeout` (opening the connection
    /// counts towards it). Any failure closes the connection; the next call reopens it.
    pub async fn send(&mut self, request: Request<Full<Bytes>>, timeout: Duration) -> Outcome {
        let exchange = async {
            if !self.open().await {
                return Outcome::Connect;
            }
            let Some(sender) = self.sender.as_mut() else { return Outcome::Connect };
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
        let outcome = tokio::time::timeout(timeout, exchange).await.unwrap_or(Outcome::Timeout);
        if !matches!(outcome, Outcome::Status(_)) {
            // A half-read answer leaves the connection unusable.
            self.sender = None;
        }
        outcome
    }
}
