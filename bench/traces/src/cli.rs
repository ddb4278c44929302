//! `archlab traces serve|show|compare|export`: the command line over the rest of the crate.
//! The harness mounts [`TracesArgs`] as its `traces` subcommand and calls [`run`].

use crate::receiver::{DEFAULT_KEEP, Receiver};
use crate::render::{html, svg};
use crate::source::{Selector, Source, group, read_file};
use crate::waterfall::{Waterfall, render_compare_text};
use anyhow::{Context, bail};
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

/// The standard OTLP/gRPC port on loopback, where `serve` listens and `archlab up` looks.
pub const DEFAULT_OTLP_ADDR: &str = "127.0.0.1:4317";
/// Where `serve` puts its page (Jaeger's UI is 16686; one more, so both can run).
pub const DEFAULT_HTTP_ADDR: &str = "127.0.0.1:16687";
/// The service name the monolith's spans carry; `compare --latest-route` tells the builds apart by it.
pub const MONOLITH_SERVICE: &str = "monolith";

const DEFAULT_FROM: &str = "http://127.0.0.1:16687";

/// Arguments of `archlab traces`.
#[derive(Debug, clap::Args)]
pub struct TracesArgs {
    /// What to do with traces.
    #[command(subcommand)]
    pub command: TracesCommand,
}

/// `archlab traces` subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum TracesCommand {
    /// Receive spans over OTLP/gRPC, keep them, and serve a page of recent traces.
    Serve(ServeArgs),
    /// One trace's waterfall in the terminal, and optionally as SVG or HTML.
    Show(ShowArgs),
    /// The monolith's and the microservices' waterfalls on one time axis, with the time between processes.
    Compare(CompareArgs),
    /// Traces as the JSON Jaeger's UI opens ("JSON File"), on stdout.
    Export(ExportArgs),
}

/// Where to read spans: a running `serve`, or its file.
#[derive(Debug, Clone, clap::Args)]
pub struct FromArgs {
    /// The page of a running `archlab traces serve` (loopback only).
    #[arg(long, value_name = "URL", default_value = DEFAULT_FROM, env = "ARCHLAB_TRACES_URL")]
    pub from: String,
    /// Read a JSON-lines span file (`serve --file`) instead.
    #[arg(long, value_name = "FILE", conflicts_with = "from")]
    pub file: Option<PathBuf>,
}

/// Arguments of `archlab traces serve`.
#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// OTLP/gRPC listen address.
    #[arg(long, default_value = DEFAULT_OTLP_ADDR)]
    pub addr: SocketAddr,
    /// Address of the trace page.
    #[arg(long, default_value = DEFAULT_HTTP_ADDR)]
    pub http: SocketAddr,
    /// Spans kept in memory; past it the oldest traces are dropped (and counted).
    #[arg(long, default_value_t = DEFAULT_KEEP)]
    pub keep: usize,
    /// Also append every span to this file, one JSON line each.
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Load these span files (JSON lines) into memory first, e.g. an earlier run's `--file`.
    #[arg(long, value_name = "FILE")]
    pub load: Vec<PathBuf>,
    /// Listen on non-loopback addresses too (the page and the receiver have no authentication).
    #[arg(long)]
    pub allow_remote: bool,
}

/// Arguments of `archlab traces show`.
#[derive(Debug, clap::Args)]
pub struct ShowArgs {
    /// A trace id, or `latest`.
    #[arg(default_value = "latest")]
    pub trace: String,
    /// With `latest`: the newest trace whose root span is this request (`POST /api/payments`).
    #[arg(long)]
    pub route: Option<String>,
    #[command(flatten)]
    pub from: FromArgs,
    /// Also write the waterfall as SVG here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Also write it as a self-contained HTML page here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Width of the terminal bars, in characters.
    #[arg(long, default_value_t = 48)]
    pub width: usize,
}

/// Arguments of `archlab traces compare`.
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The monolith's trace id (or give `--latest-route`).
    #[arg(required_unless_present = "latest_route", requires = "micro")]
    pub monolith: Option<String>,
    /// The microservices' trace id.
    pub micro: Option<String>,
    /// Compare the newest trace of this request from each build (the monolith's is the one
    /// with a `monolith` span; the micro one has none).
    #[arg(long, value_name = "ROUTE", conflicts_with = "monolith")]
    pub latest_route: Option<String>,
    /// Where the monolith's trace is (and the micro one's, unless `--micro-from`/`--micro-file`).
    #[command(flatten)]
    pub from: FromArgs,
    /// A separate `serve` page for the microservices' trace.
    #[arg(long, value_name = "URL")]
    pub micro_from: Option<String>,
    /// A separate span file for the microservices' trace.
    #[arg(long, value_name = "FILE", conflicts_with = "micro_from")]
    pub micro_file: Option<PathBuf>,
    /// Also write both waterfalls side by side as SVG here.
    #[arg(long, value_name = "FILE")]
    pub svg: Option<PathBuf>,
    /// Also write them as a self-contained HTML page here.
    #[arg(long, value_name = "FILE")]
    pub html: Option<PathBuf>,
    /// Width of the terminal bars, in characters.
    #[arg(long, default_value_t = 48)]
    pub width: usize,
}

/// Arguments of `archlab traces export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Export this trace (repeat for more; `latest` works).
    #[arg(long = "trace", value_name = "ID", required_unless_present = "all")]
    pub traces: Vec<String>,
    /// Export every trace held.
    #[arg(long, conflicts_with = "traces")]
    pub all: bool,
    #[command(flatten)]
    pub from: FromArgs,
}

/// Run an `archlab traces` subcommand to completion.
pub async fn run(args: TracesArgs) -> anyhow::Result<()> {
    match args.command {
        TracesCommand::Serve(args) => serve(args).await,
        TracesCommand::Show(args) => show(args).await,
        TracesCommand::Compare(args) => compare(args).await,
        TracesCommand::Export(args) => export(args).await,
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    if !args.allow_remote {
        for addr in [args.addr, args.http] {
            if !addr.ip().is_loopback() {
                bail!("{addr} is not a loopback address; pass --allow-remote to listen there anyway");
            }
        }
    }
    let mut preload = Vec::new();
    for path in &args.load {
        preload.extend(read_file(path)?);
    }
    let (receiver, otlp) = Receiver::start_on(args.addr, args.keep, args.file.clone()).await?;
    receiver.insert(preload);
    let listener = tokio::net::TcpListener::bind(args.http)
        .await
        .with_context(|| format!("binding the trace page to {}", args.http))?;
    let http = listener.local_addr().context("reading the trace page's address")?;
    println!("archlab traces: OTLP/gRPC receiver on {otlp} (OTEL_EXPORTER_OTLP_ENDPOINT=http://{otlp})");
    println!("archlab traces: recent traces on http://{http}/  (Ctrl-C stops)");
    if let Some(file) = &args.file {
        println!("archlab traces: appending spans to {}", file.display());
    }
    let stop = async {
        let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match terminate.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => {}
        }
    };
    axum::serve(listener, crate::serve::app(receiver.clone()))
        .with_graceful_shutdown(stop)
        .await
        .context("serving the trace page")?;
    receiver.stop();
    let stats = receiver.stats();
    println!("archlab traces: {} spans received, {} dropped to stay within --keep", stats.received, stats.dropped);
    Ok(())
}

fn write_file(path: &PathBuf, contents: &str) -> anyhow::Result<()> {
    std::fs::write(path, contents).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("wrote {}", path.display());
    Ok(())
}

fn source(from: &FromArgs) -> anyhow::Result<Source> {
    Source::new(from.from.clone(), from.file.clone())
}

async fn show(args: ShowArgs) -> anyhow::Result<()> {
    let source = source(&args.from)?;
    let spans = source.trace(&Selector::parse(&args.trace, args.route.clone())).await?;
    let waterfall = Waterfall::build(&spans).context("the trace has no spans")?;
    print!("{}", waterfall.render_text(0, args.width.clamp(10, 400)));
    let title = format!("trace {}", waterfall.trace_id);
    if let Some(path) = &args.svg {
        write_file(path, &svg(&[(title.as_str(), &waterfall)]))?;
    }
    if let Some(path) = &args.html {
        write_file(path, &html(&title, &[("", &waterfall)], None))?;
    }
    Ok(())
}

async fn compare(args: CompareArgs) -> anyhow::Result<()> {
    let left_source = source(&args.from)?;
    let right_source = match (&args.micro_from, &args.micro_file) {
        (None, None) => left_source.clone(),
        (from, file) => Source::new(from.clone().unwrap_or_else(|| DEFAULT_FROM.to_owned()), file.clone())?,
    };
    let (left, right) = match &args.latest_route {
        Some(route) => (
            Selector {
                route: Some(route.clone()),
                with_service: Some(MONOLITH_SERVICE.to_owned()),
                ..Selector::default()
            },
            Selector {
                route: Some(route.clone()),
                without_service: Some(MONOLITH_SERVICE.to_owned()),
                ..Selector::default()
            },
        ),
        None => {
            let (Some(monolith), Some(micro)) = (&args.monolith, &args.micro) else {
                bail!("give two trace ids (monolith, micro) or --latest-route");
            };
            (Selector::parse(monolith, None), Selector::parse(micro, None))
        }
    };
    let left = Waterfall::build(&left_source.trace(&left).await.context("the monolith's trace")?)
        .context("the monolith's trace has no spans")?;
    let right = Waterfall::build(&right_source.trace(&right).await.context("the microservices' trace")?)
        .context("the microservices' trace has no spans")?;
    let labels = ["monolith", "microservices"];
    print!("{}", render_compare_text(&left, &right, labels, args.width.clamp(10, 400)));
    let panels = [(labels[0], &left), (labels[1], &right)];
    if let Some(path) = &args.svg {
        write_file(path, &svg(&panels))?;
    }
    if let Some(path) = &args.html {
        write_file(path, &html("monolith vs microservices", &panels, None))?;
    }
    Ok(())
}

async fn export(args: ExportArgs) -> anyhow::Result<()> {
    let source = source(&args.from)?;
    let traces = if args.all {
        group(source.all().await?)
    } else {
        let mut traces = Vec::new();
        for id in &args.traces {
            traces.push(source.trace(&Selector::parse(id, None)).await?);
        }
        traces
    };
    let mut out = std::io::stdout().lock();
    serde_json::to_writer(&mut out, &crate::jaeger::document(&traces)).context("writing the export")?;
    writeln!(out).context("writing the export")?;
    Ok(())
}
