//! `archlab-traces`: look at archlab's requests as traces, with or without Jaeger.
//!
//! It receives spans over OTLP/gRPC (the services' exporter points at it), keeps them, and
//! shows one request as a waterfall: in the terminal, as self-contained SVG/HTML, on a small
//! local web page, side by side with the other build's, or as the JSON Jaeger's UI opens.
//!
//! # Layout
//!
//! Start with [`SpanRecord`] (`span`), the one shape everything reads. [`Receiver`]
//! (`receiver`) is the OTLP/gRPC server and its bounded store (`store`); integration tests of
//! the services start one in-process.

mod jaeger;
mod receiver;
mod span;
mod store;
mod waterfall;

pub use jaeger::{Document as JaegerDocument, document as jaeger_document};
pub use receiver::{DEFAULT_KEEP, Receiver};
pub use span::{SpanRecord, from_request};
pub use store::{Store, StoreStats};
pub use waterfall::{Hop, Row, Waterfall, between_processes, millis, render_compare_text};
