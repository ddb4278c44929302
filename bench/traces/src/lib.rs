//! `archlab-traces`: look at archlab's requests as traces, with or without Jaeger.
//!
//! It receives spans over OTLP/gRPC (the services' exporter points at it), keeps them, and
//! shows one request as a waterfall: in the terminal, as self-contained SVG/HTML, on a small
//! local web page, side by side with the other build's, or as the JSON Jaeger's UI opens.
//! The harness mounts it as `archlab traces serve|show|compare|export`.
//!
//! # Layout
//!
//! Start with [`SpanRecord`] (`span`), the one shape everything reads. [`Receiver`]
//! (`receiver`) is the OTLP/gRPC server over a bounded [`Store`] (`store`); the services'
//! integration tests start one in-process. [`Waterfall`] (`waterfall`) lays a trace out and
//! computes the time between processes; `render` draws it as SVG/HTML, `jaeger` exports it.
//! [`census`] counts how many of a run's traces arrived whole. `source` reads spans back from a running `serve` or a file, `serve` is the local page and
//! its JSON API, and `cli` the subcommands.

mod census;
mod cli;
mod jaeger;
mod receiver;
mod render;
mod serve;
mod source;
mod span;
mod store;
mod waterfall;

pub use census::{Census, census};
pub use cli::{
    CompareArgs, DEFAULT_HTTP_ADDR, DEFAULT_OTLP_ADDR, ExportArgs, FromArgs, MONOLITH_SERVICE, ServeArgs, ShowArgs,
    TracesArgs, TracesCommand, run,
};
pub use jaeger::{Document as JaegerDocument, document as jaeger_document};
pub use receiver::{DEFAULT_KEEP, Receiver};
pub use render::{escape, html, svg};
pub use serve::{TraceSummary, app};
pub use source::{Selector, Source, check_loopback_url, group, read_file, root, select};
pub use span::{SpanRecord, from_request};
pub use store::{Store, StoreStats};
pub use waterfall::{Hop, Row, Waterfall, between_processes, millis, render_compare_text};
