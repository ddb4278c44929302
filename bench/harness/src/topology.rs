//! Which processes make up each build, in which order they start, where each one answers
//! `/ready`, and what the harness adds to their environment.
//!
//! Pure data: everything is computed from the options and an environment lookup function, so
//! the tests can pass a fake environment. This is where the two builds' operational shapes
//! sit side by side: two processes for the monolith, six for the microservices.

use archlab_kernel::processes::{self, ProcessSpec};
use std::fmt;

pub use archlab_kernel::processes::Module;
pub use archlab_kernel::{NotificationMode, Transport};

/// Which build to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// The modular monolith: `extsim` + `monolith`.
    Monolith,
    /// The microservices: `extsim`, four services, then the `gateway`.
    Micro,
    /// The monolith with one module extracted (`--extract`): `extsim`, the extracted
    /// service and the `hybrid` core, then the `gateway` routing to both.
    Hybrid,
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Monolith => "monolith",
            Self::Micro => "micro",
            Self::Hybrid => "hybrid",
        })
    }
}

/// The choices `archlab up` leaves to its user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// `NOTIFICATION_MODE` for the children; `None` leaves the environment as it is.
    pub mode: Option<NotificationMode>,
    /// `INTERNAL_TRANSPORT` for the children (micro only); `None` leaves it as it is.
    pub transport: Option<Transport>,
    /// Start an `extsim`; false when one is already running.
    pub extsim: bool,
    /// The module the hybrid runs as its own service (hybrid only).
    pub extract: Module,
    /// How many payments-service processes (micro only), balanced by the gateway.
    pub payments_replicas: u8,
    /// How many monolith processes; more than one puts the gateway in front, passing every
    /// request through to them balanced (`GATEWAY_PASS_THROUGH`).
    pub monolith_replicas: u8,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            mode: None,
            transport: None,
            extsim: true,
            extract: Module::Notifications,
            payments_replicas: 1,
            monolith_replicas: 1,
        }
    }
}

/// The most payments-service replicas a topology runs.
pub const MAX_REPLICAS: u8 = 3;

/// The label of payments-service's replica `k` (2 or 3): its log prefix and the name
/// `Supervisor::signal` and the chaos actions know it by.
pub const REPLICA_LABELS: [&str; 2] = ["payments-service-2", "payments-service-3"];

/// The same for the monolith's replicas.
pub const MONOLITH_LABELS: [&str; 2] = ["monolith-2", "monolith-3"];

/// The variable placing replica `k`'s `listener` (`PAYMENTS_HTTP_ADDR_2`, ...); unset, the
/// first replica's port plus 100 × (k − 1).
pub fn replica_addr_var(addr_var: &str, k: u8) -> String {
    format!("{addr_var}_{k}")
}

/// One child process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    /// The prefix of its log lines and the name the supervisor knows it by: the binary's,
    /// or a replica's label (`payments-service-2`).
    pub name: &'static str,
    /// Binary file name in the bin dir.
    pub binary: &'static str,
    /// Polled until it answers 200.
    pub ready_url: String,
    /// Base URL of its HTTP listener.
    pub http_url: String,
    /// Its gRPC listener (`host:port`), for the services that have one.
    pub grpc_addr: Option<String>,
    /// Its fault admin endpoint, when its environment places one (loopback only; the
    /// binaries open none unless told).
    pub admin_url: Option<String>,
    /// Environment of this process alone, set after the topology's (a chaos experiment
    /// routes one process's database connection through a fault proxy this way).
    pub env: Vec<(String, String)>,
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
    pub mode: NotificationMode,
    /// Internal transport the services will use; `None` for the monolith.
    pub transport: Option<Transport>,
    /// The module running as its own service, for the hybrid.
    pub extract: Option<Module>,
}

impl Topology {
    /// The topology as this process's environment describes it.
    pub fn from_env(kind: Kind, options: Options) -> Self {
        Self::new(kind, options, |key| std::env::var(key).ok())
    }

    /// The topology for `kind`, reading addresses through `env` (empty counts as unset, as
    /// it does for the binaries' clap parsers).
    pub fn new(kind: Kind, options: Options, env: impl Fn(&str) -> Option<String>) -> Self {
        let var = |key: &str| env(key).filter(|value| !value.is_empty());
        // Where a listener is: the variable the binary reads, else the binary's default.
        let addr = |l: processes::Listener| var(l.addr_var).unwrap_or_else(|| l.default_addr.to_owned());
        let process = |spec: ProcessSpec, probe: &str| {
            let http_addr = addr(spec.http);
            Process {
                name: spec.name,
                binary: spec.name,
                ready_url: format!("http://{http_addr}/{probe}"),
                http_url: format!("http://{http_addr}"),
                grpc_addr: spec.grpc.map(addr),
                admin_url: spec.admin_addr_var.and_then(&var).map(|a| format!("http://{a}")),
                env: Vec::new(),
            }
        };

        let mut processes = Vec::new();
        if options.extsim {
            processes.push(process(processes::EXTSIM, "health"));
        }
        let mut child_env = Vec::new();
        let front = match kind {
            Kind::Monolith if options.monolith_replicas > 1 => {
                // Behind the gateway, passing every request through to a balanced monolith;
                // the per-address limit moves to the gateway, the only one that sees clients.
                let mut first = process(processes::MONOLITH, "ready");
                first.env.push(("AUTH_LIMIT_PER_ADDRESS_PER_MINUTE".to_owned(), "0".to_owned()));
                processes.push(first);
                let spec = processes::MONOLITH;
                let replicas = replicas_of(spec, MONOLITH_LABELS, &processes, options.monolith_replicas, &var);
                processes.extend(replicas);
                let monoliths = processes.iter().filter(|p| p.binary == spec.name);
                let list = monoliths.map(|p| p.http_url.clone()).collect::<Vec<_>>().join(",");
                for service in processes::SERVICES {
                    child_env.push((service.http.url_var.to_owned(), list.clone()));
                }
                child_env.push(("GATEWAY_PASS_THROUGH".to_owned(), "on".to_owned()));
                process(processes::GATEWAY, "ready")
            }
            Kind::Monolith => process(processes::MONOLITH, "ready"),
            Kind::Micro => {
                processes.extend(processes::SERVICES.map(|spec| process(spec, "ready")));
                let spec = processes::PAYMENTS_SERVICE;
                let replicas = replicas_of(spec, REPLICA_LABELS, &processes, options.payments_replicas, &var);
                if !replicas.is_empty() {
                    let urls =
                        processes.iter().chain(&replicas).filter(|p| p.binary == processes::PAYMENTS_SERVICE.name);
                    let list = urls.map(|p| p.http_url.clone()).collect::<Vec<_>>().join(",");
                    child_env.push((processes::PAYMENTS_SERVICE.http.url_var.to_owned(), list));
                }
                processes.extend(replicas);
                // Last: it is the only door in, so it opens once the rooms behind it exist.
                process(processes::GATEWAY, "ready")
            }
            Kind::Hybrid => {
                let (core, service) =
                    (process(processes::HYBRID, "ready"), process(options.extract.service(), "ready"));
                child_env.extend(core_urls(options.extract, &core));
                child_env.push(("EXTRACT".to_owned(), options.extract.to_string()));
                // Those that others call first, as for the microservices.
                match options.extract {
                    Module::Notifications => processes.extend([service, core]),
                    Module::Payments => processes.extend([core, service]),
                }
                process(processes::GATEWAY, "ready")
            }
        };
        let public_url = front.http_url.clone();
        processes.push(front);

        let extsim = processes::EXTSIM.http;
        let extsim_url = match var(extsim.url_var) {
            Some(url) => url,
            None => {
                let url = format!("http://{}", addr(extsim));
                child_env.push((extsim.url_var.to_owned(), url.clone()));
                url
            }
        };
        if let Some(mode) = options.mode {
            child_env.push(("NOTIFICATION_MODE".to_owned(), mode.to_string()));
        }
        let transport = match kind {
            Kind::Monolith => None,
            Kind::Micro | Kind::Hybrid => {
                if let Some(transport) = options.transport {
                    child_env.push(("INTERNAL_TRANSPORT".to_owned(), transport.to_string()));
                }
                // What the services will parse: ours, else theirs, else their default.
                Some(options.transport.unwrap_or_else(|| parsed(var("INTERNAL_TRANSPORT"))))
            }
        };
        let mode = options.mode.unwrap_or_else(|| parsed(var("NOTIFICATION_MODE")));

        let extract = (kind == Kind::Hybrid).then_some(options.extract);
        Self { kind, processes, env: child_env, public_url, extsim_url, mode, transport, extract }
    }

    /// One HTTP process `name` on `addr`, ready when its `/health` answers, with `env` and
    /// otherwise this topology's settings: a side process such as the baseline, started by
    /// the same supervisor.
    pub fn single(&self, name: &'static str, addr: &str, env: Vec<(String, String)>) -> Self {
        Self {
            processes: vec![Process {
                name,
                binary: name,
                ready_url: format!("http://{addr}/health"),
                http_url: format!("http://{addr}"),
                grpc_addr: None,
                admin_url: None,
                env: Vec::new(),
            }],
            env,
            public_url: format!("http://{addr}"),
            ..self.clone()
        }
    }

    /// Process names in start order.
    pub fn names(&self) -> Vec<&'static str> {
        self.processes.iter().map(|p| p.name).collect()
    }

    /// The binaries the processes run, each once.
    pub fn binaries(&self) -> Vec<&'static str> {
        let mut binaries: Vec<&'static str> = Vec::new();
        for p in &self.processes {
            if !binaries.contains(&p.binary) {
                binaries.push(p.binary);
            }
        }
        binaries
    }

    /// The summary printed once everything is ready: URLs, mode and transport.
    pub fn summary(&self, elapsed: std::time::Duration) -> String {
        let mut out = format!("archlab: {} ready in {:.1} s\n", self.kind, elapsed.as_secs_f64());
        let mut row = |label: &str, value: &str| out.push_str(&format!("  {label:<24}{value}\n"));
        let api_label = match self.processes.iter().any(|p| p.name == processes::GATEWAY.name) {
            true => "public API (gateway)",
            false => "public API",
        };
        row(api_label, &self.public_url);
        let extsim = processes::EXTSIM.name;
        let started = self.processes.iter().any(|p| p.name == extsim);
        row(if started { extsim } else { "extsim (not started)" }, &self.extsim_url);
        for process in self.processes.iter().filter(|p| p.grpc_addr.is_some()) {
            let grpc = process.grpc_addr.as_deref().unwrap_or_default();
            row(process.name, &format!("{}  grpc {grpc}", process.http_url));
        }
        let delivery = match (self.kind, self.mode) {
            (_, NotificationMode::Sync) => "sync: the request waits for it",
            (Kind::Monolith, NotificationMode::Async) => "async: outbox + in-process worker",
            (Kind::Micro, NotificationMode::Async) => "async: outbox + RabbitMQ",
            (Kind::Hybrid, NotificationMode::Async) => match self.extract {
                Some(Module::Payments) => "async: welcomes in-process, receipts through RabbitMQ",
                _ => "async: outbox + RabbitMQ",
            },
        };
        row("notifications", delivery);
        if let Some(module) = self.extract {
            row("extracted", &format!("{module}: {}, the rest in hybrid", module.service().name));
        }
        if let Some(transport) = self.transport {
            row("internal transport", &transport.to_string());
        }
        let admin: Vec<&Process> = self.processes.iter().filter(|p| p.admin_url.is_some()).collect();
        if admin.is_empty() {
            row("fault admin endpoints", "none (`archlab up --admin` opens them; docs/operations.md)");
        }
        for process in admin {
            row("fault admin", &format!("{}  {}", process.name, process.admin_url.as_deref().unwrap_or_default()));
        }
        out.push_str("  Ctrl-C stops everything.\n");
        out
    }
}

/// Replicas 2.. of payments-service (whose first process is in `processes`): the same
/// binary and database, each on its own addresses (see [`replica_addr_var`]) and with its own
/// fault admin endpoint or none.
fn replicas_of(
    spec: ProcessSpec,
    labels: [&'static str; 2],
    processes: &[Process],
    count: u8,
    var: &impl Fn(&str) -> Option<String>,
) -> Vec<Process> {
    let Some(first) = processes.iter().find(|p| p.name == spec.name) else { return Vec::new() };
    let shifted = |addr: &str, by: u16| -> String {
        match addr.rsplit_once(':') {
            Some((host, port)) => format!("{host}:{}", port.parse::<u16>().unwrap_or(0).saturating_add(by)),
            None => addr.to_owned(),
        }
    };
    let first_http = first.http_url.trim_start_matches("http://").to_owned();
    let first_grpc = first.grpc_addr.clone().unwrap_or_default();
    (2..=count.min(MAX_REPLICAS))
        .map(|k| {
            let by = 100 * u16::from(k - 1);
            let http = var(&replica_addr_var(spec.http.addr_var, k)).unwrap_or_else(|| shifted(&first_http, by));
            let grpc = spec.grpc.map(|l| {
                let grpc = var(&replica_addr_var(l.addr_var, k)).unwrap_or_else(|| shifted(&first_grpc, by));
                (l.addr_var.to_owned(), grpc)
            });
            let admin_var = spec.admin_addr_var.unwrap_or_default();
            // Its own endpoint, or none (empty counts as unset): never the first's port.
            let admin = var(&replica_addr_var(admin_var, k));
            let mut env = vec![(spec.http.addr_var.to_owned(), http.clone())];
            env.extend(grpc.clone());
            env.push((admin_var.to_owned(), admin.clone().unwrap_or_default()));
            // The first replica's own environment (a monolith's limits) applies to each.
            env.splice(0..0, first.env.iter().cloned());
            Process {
                name: labels[usize::from(k) - 2],
                binary: spec.name,
                ready_url: format!("http://{http}/ready"),
                http_url: format!("http://{http}"),
                grpc_addr: grpc.map(|(_, addr)| addr),
                admin_url: admin.as_ref().map(|a| format!("http://{a}")),
                env,
            }
        })
        .collect()
}

/// Where the gateway and the extracted service find the modules the hybrid core runs: each
/// kept module's URL variables, pointed at the core.
fn core_urls(extract: Module, core: &Process) -> Vec<(String, String)> {
    let kept = processes::SERVICES.into_iter().filter(|spec| spec.name != extract.service().name);
    let grpc = format!("http://{}", core.grpc_addr.as_deref().unwrap_or_default());
    let mut env = Vec::new();
    for spec in kept {
        env.push((spec.http.url_var.to_owned(), core.http_url.clone()));
        if let Some(listener) = spec.grpc {
            env.push((listener.url_var.to_owned(), grpc.clone()));
        }
    }
    env
}

/// An environment lookup for [`Topology::new`]: the last of `env`'s entries for a key, else
/// this process's own variable.
pub fn lookup_over(env: &[(String, String)]) -> impl Fn(&str) -> Option<String> + Copy + '_ {
    |key| env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()).or_else(|| std::env::var(key).ok())
}

/// A free loopback address for the fault admin endpoint of every process that has one, as
/// `(process name, variable, address)`: what `archlab up --admin` and the chaos lab give
/// their children. The ports are free when asked for, not reserved: another program could
/// take one before the child binds it, and the child would then fail at start-up, saying so.
pub fn free_admin_addrs() -> std::io::Result<Vec<(&'static str, &'static str, String)>> {
    let mut out = Vec::new();
    let free = || -> std::io::Result<String> {
        Ok(format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port()))
    };
    for spec in processes::ALL {
        if let Some(var) = spec.admin_addr_var {
            out.push((spec.name, var, free()?));
        }
    }
    for (spec, labels) in [(processes::PAYMENTS_SERVICE, REPLICA_LABELS), (processes::MONOLITH, MONOLITH_LABELS)] {
        let var = spec.admin_addr_var.expect("a replicated process has fault points");
        for (k, label) in (2..).zip(labels) {
            out.push((label, &*String::leak(replica_addr_var(var, k)), free()?));
        }
    }
    Ok(out)
}

/// A knob's value as the binaries will parse it from `value`; their default when it is unset
/// or one they would refuse (they then fail at start-up and say why).
fn parsed<T: std::str::FromStr + Default>(value: Option<String>) -> T {
    value.and_then(|v| v.parse().ok()).unwrap_or_default()
}
