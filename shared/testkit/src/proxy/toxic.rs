//! Toxics: what the proxy does to the bytes of one direction of a connection.
//!
//! The types serialise to Toxiproxy's JSON (`{"name", "type", "stream", "toxicity",
//! "attributes"}`), so a Toxiproxy client can send them through [`super::api`]. The
//! [`pump`] applies the toxics in force to one direction, re-reading them for every chunk,
//! so a toxic added or removed at run time acts on connections already open.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The direction a toxic acts on, named as Toxiproxy names it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    /// Client to upstream: what the client sends.
    Upstream,
    /// Upstream to client: the answers (Toxiproxy's default).
    #[default]
    Downstream,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Upstream => "upstream",
            Stream::Downstream => "downstream",
        }
    }
}

/// Toxiproxy's toxic types with their attributes (times in milliseconds unless said).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "attributes", rename_all = "snake_case")]
pub enum ToxicKind {
    /// Delay every chunk by `latency` ± a uniform random `jitter`.
    Latency {
        /// Milliseconds added to every chunk.
        latency: u64,
        /// Milliseconds of random variation either side of `latency`.
        #[serde(default)]
        jitter: u64,
    },
    /// Pass at most `rate` KB (1000 bytes) per second.
    Bandwidth {
        /// KB per second; at least 1.
        rate: u64,
    },
    /// Cut every chunk into slices of about `average_size` bytes, `delay` microseconds apart.
    Slicer {
        /// Mean slice size in bytes; at least 1.
        average_size: u64,
        /// Bytes of random variation either side; less than `average_size`.
        #[serde(default)]
        size_variation: u64,
        /// Microseconds between slices.
        #[serde(default)]
        delay: u64,
    },
    /// Pass nothing (bytes are dropped) and close the connection after `timeout`; with 0,
    /// hold it open and silent until the toxic is removed.
    Timeout {
        /// Milliseconds before the connection is closed; 0 for never.
        timeout: u64,
    },
    /// On the next data, wait `timeout` and reset the connection (TCP RST, not FIN).
    ResetPeer {
        /// Milliseconds between the data and the reset.
        #[serde(default)]
        timeout: u64,
    },
    /// Close the connection once `bytes` bytes have passed in this direction.
    LimitData {
        /// Bytes let through before the close.
        bytes: u64,
    },
}

impl ToxicKind {
    /// Toxiproxy's name of the type (`latency`, `reset_peer`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            ToxicKind::Latency { .. } => "latency",
            ToxicKind::Bandwidth { .. } => "bandwidth",
            ToxicKind::Slicer { .. } => "slicer",
            ToxicKind::Timeout { .. } => "timeout",
            ToxicKind::ResetPeer { .. } => "reset_peer",
            ToxicKind::LimitData { .. } => "limit_data",
        }
    }
}

/// One toxic on a proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Toxic {
    /// Unique on its proxy; empty means Toxiproxy's default, `<type>_<stream>`.
    #[serde(default)]
    pub name: String,
    /// The type and its attributes.
    #[serde(flatten)]
    pub kind: ToxicKind,
    /// The direction it acts on.
    #[serde(default)]
    pub stream: Stream,
    /// Probability, from 0 to 1, that it acts on a given connection (drawn once per
    /// connection).
    #[serde(default = "always")]
    pub toxicity: f32,
}

fn always() -> f32 {
    1.0
}

impl Toxic {
    /// A toxic acting on every connection in `stream`, under its default name.
    pub fn new(kind: ToxicKind, stream: Stream) -> Toxic {
        let mut toxic = Toxic { name: String::new(), kind, stream, toxicity: 1.0 };
        toxic.name = toxic.default_name();
        toxic
    }

    /// The same toxic under another name.
    pub fn named(mut self, name: &str) -> Toxic {
        self.name = name.to_owned();
        self
    }

    fn default_name(&self) -> String {
        format!("{}_{}", self.kind.type_name(), self.stream.as_str())
    }

    /// Fill in the default name and check the attributes.
    pub fn validated(mut self) -> Result<Toxic, ToxicError> {
        if self.name.is_empty() {
            self.name = self.default_name();
        }
        let invalid =
            |why: &str| Err(ToxicError::Invalid(format!("{} toxic {}: {why}", self.kind.type_name(), self.name)));
        if !(0.0..=1.0).contains(&self.toxicity) {
            return invalid("toxicity must be between 0 and 1");
        }
        match self.kind {
            ToxicKind::Bandwidth { rate: 0 } => return invalid("rate must be at least 1"),
            ToxicKind::Slicer { average_size: 0, .. } => return invalid("average_size must be at least 1"),
            ToxicKind::Slicer { average_size, size_variation, .. } if size_variation >= average_size => {
                return invalid("size_variation must be less than average_size");
            }
            _ => {}
        }
        Ok(self)
    }
}

/// Why a toxic was not added, changed or removed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ToxicError {
    /// A toxic of that name is already on the proxy.
    #[error("toxic already exists: {0}")]
    Exists(String),
    /// No toxic of that name is on the proxy.
    #[error("toxic not found: {0}")]
    NotFound(String),
    /// An attribute is out of range.
    #[error("invalid toxic: {0}")]
    Invalid(String),
}

/// The toxics of one proxy, in the order they were added.
pub(super) type ToxicList = Arc<Vec<Toxic>>;

/// How one direction of a connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum End {
    /// The sender closed its side; the close was passed on.
    Eof,
    /// The connection is being torn down from elsewhere (the other direction, a cut).
    Cancelled,
    /// A socket error.
    Error,
    /// A toxic closed the connection (`timeout`, `limit_data`).
    Close,
    /// A toxic asked for a reset (`reset_peer`).
    Reset,
}

/// Chunks read ahead of the writer, so latency is added to each chunk from when it arrived,
/// not after the previous one was delayed.
const READ_AHEAD: usize = 16;
const CHUNK: usize = 16 * 1024;

struct Chunk {
    at: Instant,
    data: Vec<u8>,
}

/// Relay `src` to `dst` through the toxics of `stream` until either side closes, a toxic
/// ends the connection or `end` is cancelled. Cancels `end` itself when the whole connection
/// has to go (anything but a clean end of input).
pub(super) async fn pump(
    src: impl AsyncRead + Unpin,
    mut dst: impl AsyncWrite + Unpin,
    stream: Stream,
    toxics: watch::Receiver<ToxicList>,
    end: CancellationToken,
) -> End {
    let (tx, rx) = mpsc::channel(READ_AHEAD);
    let reader = read_loop(src, tx);
    let writer = write_loop(rx, &mut dst, stream, toxics);
    tokio::pin!(reader, writer);
    let mut reading = true;
    let ended = loop {
        tokio::select! {
            _ = end.cancelled() => return End::Cancelled,
            read = &mut reader, if reading => match read {
                // The writer drains what was read, then passes the close on.
                End::Eof => reading = false,
                other => break other,
            },
            written = &mut writer => break written,
        }
    };
    if ended != End::Eof {
        end.cancel();
    }
    ended
}

async fn read_loop(mut src: impl AsyncRead + Unpin, tx: mpsc::Sender<Chunk>) -> End {
    loop {
        let mut data = vec![0; CHUNK];
        match src.read(&mut data).await {
            Ok(0) => return End::Eof,
            Ok(n) => {
                data.truncate(n);
                if tx.send(Chunk { at: Instant::now(), data }).await.is_err() {
                    return End::Cancelled;
                }
            }
            Err(_) => return End::Error,
        }
    }
}

/// What one direction remembers about the toxics across chunks.
#[derive(Default)]
struct DirectionState {
    /// Per toxic name: whether it acts on this connection (drawn against its toxicity).
    acts: HashMap<String, bool>,
    /// Per `limit_data` toxic: bytes passed so far.
    passed: HashMap<String, u64>,
    /// When a `timeout` toxic was first seen in force, while one is.
    timeout_since: Option<Instant>,
}

impl DirectionState {
    /// The toxics acting on this direction of this connection now.
    fn active(&mut self, all: &[Toxic], stream: Stream) -> Vec<Toxic> {
        let present = |name: &String| all.iter().any(|t| &t.name == name);
        self.acts.retain(|name, _| present(name));
        self.passed.retain(|name, _| present(name));
        all.iter()
            .filter(|t| t.stream == stream)
            .filter(|t| {
                *self
                    .acts
                    .entry(t.name.clone())
                    .or_insert_with(|| t.toxicity >= 1.0 || rand::random::<f32>() < t.toxicity)
            })
            .cloned()
            .collect()
    }
}

async fn write_loop(
    mut rx: mpsc::Receiver<Chunk>,
    dst: &mut (impl AsyncWrite + Unpin),
    stream: Stream,
    mut toxics: watch::Receiver<ToxicList>,
) -> End {
    let mut state = DirectionState::default();
    loop {
        let active = {
            let all = toxics.borrow_and_update().clone();
            state.active(&all, stream)
        };

        let timeout = active.iter().find_map(|t| match t.kind {
            ToxicKind::Timeout { timeout } => Some(timeout),
            _ => None,
        });
        if let Some(timeout) = timeout {
            let since = *state.timeout_since.get_or_insert_with(Instant::now);
            let deadline = since + Duration::from_millis(timeout);
            tokio::select! {
                changed = toxics.changed() => if changed.is_err() { return End::Cancelled },
                _ = tokio::time::sleep_until(deadline), if timeout > 0 => return End::Close,
                // Bytes sent into a timeout are lost, as with Toxiproxy.
                chunk = rx.recv() => if chunk.is_none() { return close_write(dst).await },
            }
            continue;
        }
        state.timeout_since = None;

        let chunk = tokio::select! {
            changed = toxics.changed() => {
                if changed.is_err() {
                    return End::Cancelled;
                }
                continue;
            }
            chunk = rx.recv() => match chunk {
                Some(chunk) => chunk,
                None => return close_write(dst).await,
            },
        };

        if let Some(timeout) = active.iter().find_map(|t| match t.kind {
            ToxicKind::ResetPeer { timeout } => Some(timeout),
            _ => None,
        }) {
            tokio::time::sleep(Duration::from_millis(timeout)).await;
            return End::Reset;
        }

        if let Some(end) = pass_on(chunk, &active, &mut state, dst).await {
            return end;
        }
    }
}

async fn close_write(dst: &mut (impl AsyncWrite + Unpin)) -> End {
    match dst.shutdown().await {
        Ok(()) => End::Eof,
        Err(_) => End::Error,
    }
}

/// Deliver one chunk through latency, limit_data, slicer and bandwidth; `Some` when the
/// connection has to end.
async fn pass_on(
    chunk: Chunk,
    active: &[Toxic],
    state: &mut DirectionState,
    dst: &mut (impl AsyncWrite + Unpin),
) -> Option<End> {
    let Chunk { at, mut data } = chunk;
    let mut delay = Duration::ZERO;
    let mut slicer = None;
    let mut rate: Option<u64> = None;
    let mut close_after = false;
    for toxic in active {
        match toxic.kind {
            ToxicKind::Latency { latency, jitter } => {
                let jitter = jitter as i64;
                let ms = latency as i64 + if jitter > 0 { rand::random_range(-jitter..=jitter) } else { 0 };
                delay += Duration::from_millis(ms.max(0) as u64);
            }
            ToxicKind::LimitData { bytes } => {
                let passed = state.passed.entry(toxic.name.clone()).or_default();
                let left = bytes.saturating_sub(*passed);
                if data.len() as u64 >= left {
                    data.truncate(left as usize);
                    close_after = true;
                }
                *passed += data.len() as u64;
            }
            ToxicKind::Slicer { average_size, size_variation, delay } => {
                slicer = Some((average_size, size_variation, delay))
            }
            ToxicKind::Bandwidth { rate: r } => rate = Some(rate.map_or(r, |old| old.min(r))),
            ToxicKind::Timeout { .. } | ToxicKind::ResetPeer { .. } => {}
        }
    }
    tokio::time::sleep_until(at + delay).await;

    let mut rest = &data[..];
    while !rest.is_empty() {
        let size = match slicer {
            Some((average, variation, _)) => {
                let variation = variation as i64;
                let size = average as i64 + if variation > 0 { rand::random_range(-variation..=variation) } else { 0 };
                (size.max(1) as usize).min(rest.len())
            }
            None => rest.len(),
        };
        let (slice, after) = rest.split_at(size);
        rest = after;
        if write_paced(dst, slice, rate).await.is_err() {
            return Some(End::Error);
        }
        if let Some((_, _, micros)) = slicer
            && !rest.is_empty()
        {
            tokio::time::sleep(Duration::from_micros(micros)).await;
        }
    }
    close_after.then_some(End::Close)
}

/// Write `bytes`, at most `rate` KB/s when given: in pieces of a tenth of a second's worth,
/// each followed by the time it takes at that rate.
async fn write_paced(dst: &mut (impl AsyncWrite + Unpin), bytes: &[u8], rate: Option<u64>) -> std::io::Result<()> {
    let Some(rate) = rate else {
        return dst.write_all(bytes).await;
    };
    for piece in bytes.chunks((rate as usize * 100).max(1)) {
        dst.write_all(piece).await?;
        // rate KB/s is rate bytes per millisecond.
        tokio::time::sleep(Duration::from_micros(piece.len() as u64 * 1000 / rate)).await;
    }
    Ok(())
}
