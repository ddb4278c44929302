//! Which processes make up each build, in which order they start, where each one answers
//! `/ready`, and what the harness adds to their environment.
//!
//! Pure data: everything is computed from the options and an environment lookup function, so
//! the tests can pass a fake environment. This is where the two builds' operational shapes
//! sit side by side: two processes for the monolith, six for the microservices.

use std::fmt;

/// Which build to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The modular monolith: `extsim` + `monolith`.
    Monolith,
    /// The microservices: `extsim`, four services, then the `gateway`.
    Micro,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Monolith => "monolith",
            Self::Micro => "micro",
        })
    }
}

/// Notification delivery (`NOTIFICATION_MODE`), spelled as the binaries spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// The request waits for the notification.
    Sync,
    /// Outbox + worker (monolith) or broker (micro); the notification arrives later.
    Async,
}

impl Mode {
    /// The value the binaries parse.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sync => "sync",
            Self::Async => "async",
        }
    }
}

/// How the services call each other (`INTERNAL_TRANSPORT`), micro only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    /// tonic over HTTP/2.
    Grpc,
    /// JSON over HTTP.
    Http,
}

impl Transport {
    /// The value the binaries parse.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Grpc => "grpc",
            Self::Http => "http",
        }
    }
}

/// The choices `archlab up` leaves to its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `NOTIFICATION_MODE` for the children; `None` leaves the environment as it is.
    pub mode: Option<Mode>,
    /// `INTERNAL_TRANSPORT` for the children (micro only); `None` leaves it as it is.
    pub transport: Option<Transport>,
    /// Start an `extsim`; false when one is already running.
    pub extsim: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self { mode: None, transport: None, extsim: true }
    }
}

/// One child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// Binary file name in the bin dir; also the prefix of its log lines.
    pub name: &'static str,
    /// Polled until it answers 200.
    pub ready_url: String,
    /// Base URL of its HTTP listener.
    pub http_url: String,
    /// Its gRPC listener (`host:port`), for the services that have one.
    pub grpc_addr: Option<String>,
}

/// A whole build: its processes in start order and what they are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// Which build this is.
    pub kind: Kind,
    /// Children in start order; they are stopped all at once.
    pub processes: Vec<Process>,
    /// Variables set on every child on top of the inherited environment.
    pub env: Vec<(String, String)>,
    /// Where clients of the public API go (monolith or gateway).
    pub public_url: String,
    /// The extsim URL the children use (`EXTSIM_URL`).
    pub extsim_url: String,
    /// Notification mode the children will run with.
    pub mode: Mode,
    /// Internal transport the services will use; `None` for the monolith.
    pub transport: Option<Transport>,
}

/// Default listen addresses: the same defaults the binaries have (and `.env.sample` lists).
pub const DEFAULT_ADDRS: &[(&str, &str)] = &[
    ("EXTSIM_ADDR", "127.0.0.1:8090"),
    ("MONOLITH_ADDR", "127.0.0.1:8080"),
    ("GATEWAY_ADDR", "127.0.0.1:8000"),
    ("AUTH_HTTP_ADDR", "127.0.0.1:8001"),
    ("USERS_HTTP_ADDR", "127.0.0.1:8002"),
    ("PAYMENTS_HTTP_ADDR", "127.0.0.1:8003"),
    ("NOTIFICATIONS_HTTP_ADDR", "127.0.0.1:8004"),
    ("AUTH_GRPC_ADDR", "127.0.0.1:9001"),
    ("USERS_GRPC_ADDR", "127.0.0.1:9002"),
    ("PAYMENTS_GRPC_ADDR", "127.0.0.1:9003"),
    ("NOTIFICATIONS_GRPC_ADDR", "127.0.0.1:9004"),
];

/// The four services in start order, with the prefix of their `*_HTTP_ADDR`/`*_GRPC_ADDR`.
const SERVICES: &[(&str, &str)] = &[
    ("auth-service", "AUTH"),
    ("users-service", "USERS"),
    ("notifications-service", "NOTIFICATIONS"),
    ("payments-service", "PAYMENTS"),
];

impl Topology {
    /// The topology as this process's environment describes it.
    pub fn from_env(kind: Kind, options: Options) -> Self {
        Self::new(kind, options, |key| std::env::var(key).ok())
    }

    /// The topology for `kind`, reading addresses through `env` (empty counts as unset, as
    /// it does for the binaries' clap parsers).
    pub fn new(kind: Kind, options: Options, env: impl Fn(&str) -> Option<String>) -> Self {
        let var = |key: &str| env(key).filter(|value| !value.is_empty());
        let addr = |key: &str| {
            var(key).unwrap_or_else(|| {
                let (_, default) = DEFAULT_ADDRS.iter().find(|(k, _)| *k == key).expect("a known address variable");
                (*default).to_owned()
            })
        };
        let http_process = |name, http_addr: String, grpc_addr, probe: &str| Process {
            name,
            ready_url: format!("http://{http_addr}/{probe}"),
            http_url: format!("http://{http_addr}"),
            grpc_addr,
        };

        let extsim_addr = addr("EXTSIM_ADDR");
        let mut processes = Vec::new();
        if options.extsim {
            processes.push(http_process("extsim", extsim_addr.clone(), None, "health"));
        }
        let public_url = match kind {
            Kind::Monolith => {
                let process = http_process("monolith", addr("MONOLITH_ADDR"), None, "ready");
                let url = process.http_url.clone();
                processes.push(process);
                url
            }
            Kind::Micro => {
                for (name, prefix) in SERVICES {
                    let http = addr(&format!("{prefix}_HTTP_ADDR"));
                    let grpc = addr(&format!("{prefix}_GRPC_ADDR"));
                    processes.push(http_process(name, http, Some(grpc), "ready"));
                }
                // Last: it is the only door in, so it opens once the rooms behind it exist.
                let gateway = http_process("gateway", addr("GATEWAY_ADDR"), None, "ready");
                let url = gateway.http_url.clone();
                processes.push(gateway);
                url
            }
        };

        let mut child_env = Vec::new();
        let extsim_url = match var("EXTSIM_URL") {
            Some(url) => url,
            None => {
                let url = format!("http://{extsim_addr}");
                child_env.push(("EXTSIM_URL".to_owned(), url.clone()));
                url
            }
        };
        if let Some(mode) = options.mode {
            child_env.push(("NOTIFICATION_MODE".to_owned(), mode.as_str().to_owned()));
        }
        let transport = match kind {
            Kind::Monolith => None,
            Kind::Micro => {
                if let Some(transport) = options.transport {
                    child_env.push(("INTERNAL_TRANSPORT".to_owned(), transport.as_str().to_owned()));
                }
                // What the services will parse: ours, else theirs, else their default.
                Some(options.transport.unwrap_or(match var("INTERNAL_TRANSPORT").as_deref() {
                    Some("http") => Transport::Http,
                    _ => Transport::Grpc,
                }))
            }
        };
        let mode = options.mode.unwrap_or(match var("NOTIFICATION_MODE").as_deref() {
            Some("sync") => Mode::Sync,
            _ => Mode::Async,
        });

        Self { kind, processes, env: child_env, public_url, extsim_url, mode, transport }
    }

    /// Binary names in start order.
    pub fn names(&self) -> Vec<&'static str> {
        self.processes.iter().map(|p| p.name).collect()
    }

    /// The summary printed once everything is ready: URLs, mode and transport.
    pub fn summary(&self, elapsed: std::time::Duration) -> String {
        let mut out = format!("archlab: {} ready in {:.1} s\n", self.kind, elapsed.as_secs_f64());
        let mut row = |label: &str, value: &str| out.push_str(&format!("  {label:<24}{value}\n"));
        let api_label = match self.kind {
            Kind::Monolith => "public API",
            Kind::Micro => "public API (gateway)",
        };
        row(api_label, &self.public_url);
        let started = self.processes.iter().any(|p| p.name == "extsim");
        row(if started { "extsim" } else { "extsim (not started)" }, &self.extsim_url);
        for process in self.processes.iter().filter(|p| p.grpc_addr.is_some()) {
            let grpc = process.grpc_addr.as_deref().unwrap_or_default();
            row(process.name, &format!("{}  grpc {grpc}", process.http_url));
        }
        let delivery = match (self.kind, self.mode) {
            (_, Mode::Sync) => "sync: the request waits for it",
            (Kind::Monolith, Mode::Async) => "async: outbox + in-process worker",
            (Kind::Micro, Mode::Async) => "async: outbox + RabbitMQ",
        };
        row("notifications", delivery);
        if let Some(transport) = self.transport {
            row("internal transport", transport.as_str());
        }
        out.push_str("  Ctrl-C stops everything.\n");
        out
    }
}
