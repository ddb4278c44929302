//! The experiment file: a TOML document saying what to run, what to break and when, and what
//! must hold (a steady-state hypothesis, a method, a rollback, as Chaos Toolkit has them).
//!
//! Everything is checked before anything starts: an unknown field, action, probe, process or
//! fault point, a rate or share out of range, a time outside the run, each is refused with a
//! message that names what is known. docs/chaos.md describes every field.

use crate::compare::Build;
use crate::load::Scenario;
use crate::topology::{Kind, Module, NotificationMode};
use anyhow::{Context, bail};
use archlab_extsim::BehaviourPatch;
use archlab_kernel::faults::{self, Fault};
use archlab_testkit::proxy::Toxic;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest offered rate a stream accepts: experiments are about faults, not saturation.
pub const MAX_RATE: f64 = 5_000.0;
/// Longest run an experiment may ask for.
pub const MAX_DURATION_S: f64 = 3_600.0;
/// Highest latency extsim accepts (its own bound).
pub const MAX_EXTSIM_LATENCY_MS: u64 = 60_000;

/// One experiment, as its file says.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Experiment {
    /// One line: what breaks.
    pub title: String,
    /// What it shows and why, for the report.
    #[serde(default)]
    pub description: String,
    /// The builds it runs against when none is named on the command line.
    pub builds: Vec<BuildName>,
    /// `NOTIFICATION_MODE` of the build.
    #[serde(default = "default_mode")]
    pub mode: ModeName,
    /// Extra environment of every process of the build (upper-case names).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// How many payments-service processes the microservices run (`archlab up micro
    /// --replicas payments=N`); the monolith refuses more than one.
    #[serde(default = "one_process")]
    pub payments_replicas: u8,
    /// Whether the supervisor starts a killed process again (`archlab up --restart
    /// on-failure`, the default) or leaves it down (`off`), so that what keeps the build
    /// serving is the rest of it alone.
    #[serde(default = "restarts")]
    pub restart_killed: bool,
    /// The traffic during the experiment.
    pub load: Load,
    /// What must hold; each probe is checked after the run.
    #[serde(default)]
    pub steady_state: Vec<Probe>,
    /// What is done to the build, and when.
    #[serde(default)]
    pub method: Vec<Timed>,
    /// Undone at the end, whatever happened before.
    #[serde(default)]
    pub rollback: Vec<Action>,
}

fn restarts() -> bool {
    true
}

fn one_process() -> u8 {
    1
}

fn default_mode() -> ModeName {
    ModeName::Async
}

/// A build as the file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BuildName {
    Monolith,
    MicroGrpc,
    MicroHttp,
}

impl BuildName {
    /// The harness's build.
    pub fn build(self) -> Build {
        match self {
            Self::Monolith => Build::Monolith,
            Self::MicroGrpc => Build::MicroGrpc,
            Self::MicroHttp => Build::MicroHttp,
        }
    }
}

/// A notification mode as the file names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ModeName {
    Sync,
    Async,
}

impl ModeName {
    /// The builds' own mode.
    pub fn mode(self) -> NotificationMode {
        match self {
            Self::Sync => NotificationMode::Sync,
            Self::Async => NotificationMode::Async,
        }
    }
}

/// The traffic: one or more open-loop streams side by side.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Load {
    /// Length of the run, in seconds.
    pub duration_s: f64,
    /// Per request; a client that waits no longer hangs up on the request.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Users signed up before the run.
    #[serde(default = "default_seed_users")]
    pub seed_users: u32,
    /// The streams, each its own open loop.
    pub streams: Vec<Stream>,
    /// The short mode (`--short`, what the tests run): a shorter run, every action's time
    /// scaled by the same ratio, and the rates scaled by `rate_scale`.
    pub short: Short,
}

fn default_timeout_ms() -> u64 {
    5_000
}

fn default_seed_users() -> u32 {
    8
}

/// One open-loop stream of requests.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stream {
    /// `archlab load`'s scenario.
    pub scenario: Scenario,
    /// Requests per second.
    pub rate: f64,
    /// Connections held (default: enough for the rate).
    #[serde(default)]
    pub connections: Option<u32>,
}

/// The short mode's changes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Short {
    /// Length of the short run, in seconds.
    pub duration_s: f64,
    /// Every stream's rate times this (default 1).
    #[serde(default = "one")]
    pub rate_scale: f64,
}

fn one() -> f64 {
    1.0
}

/// A part of the run, relative to the fault: see [`super::verdict::seconds_of`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Window {
    /// From the start to half a second before the first fault
    /// ([`super::verdict::BEFORE_GUARD_S`]).
    Before,
    /// From the first fault to the last action that removes one (or to the end).
    During,
    /// From the removal of the fault (plus the probe's `skip_s`) to the end.
    After,
    /// The whole run.
    Whole,
}

/// One check of the steady-state hypothesis. `builds` limits it to some builds: where the
/// builds' designs promise different things, each gets its own probe.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "probe", rename_all = "snake_case", deny_unknown_fields)]
pub enum Probe {
    /// The share of requests that failed in `window` (of `step` only, if given) is within
    /// `[min, max]`: `max` for what must keep working, `min` for a failure that must show.
    ErrorRate {
        window: Window,
        #[serde(default)]
        step: Option<String>,
        #[serde(default)]
        min: Option<f64>,
        #[serde(default)]
        max: Option<f64>,
        #[serde(default)]
        skip_s: f64,
        #[serde(default)]
        builds: Option<Vec<BuildName>>,
    },
    /// The median latency in `window` (of `step` only, if given) is within `[min_ms, max_ms]`:
    /// for an effect on every request, such as a delay each query waits, which one stalled
    /// second on a busy machine cannot fake or hide the way it moves a short window's p99.
    P50 {
        window: Window,
        #[serde(default)]
        step: Option<String>,
        #[serde(default)]
        min_ms: Option<f64>,
        #[serde(default)]
        max_ms: Option<f64>,
        #[serde(default)]
        skip_s: f64,
        #[serde(default)]
        builds: Option<Vec<BuildName>>,
    },
    /// The p99 latency in `window` (of `step` only, if given) is within `[min_ms, max_ms]`,
    /// and within `[min_times_before, max_times_before]` times the p99 of the same requests
    /// before the fault (its first second left out: a cold start): a bound relative to the
    /// build's own undisturbed latency, for effects whose absolute size depends on the machine.
    P99 {
        window: Window,
        #[serde(default)]
        step: Option<String>,
        #[serde(default)]
        min_ms: Option<f64>,
        #[serde(default)]
        max_ms: Option<f64>,
        #[serde(default)]
        min_times_before: Option<f64>,
        #[serde(default)]
        max_times_before: Option<f64>,
        #[serde(default)]
        skip_s: f64,
        #[serde(default)]
        builds: Option<Vec<BuildName>>,
    },
    /// The retries the build's remote clients sent in `window` (summed over its processes,
    /// `archlab_resilience_total{event="retry"}`) are at most `max_per_call` × the internal
    /// calls they made plus `max_per_s` per second of the window (a retry budget's shape), and
    /// at least `min_per_call` × those calls (a storm that must show).
    Retries {
        window: Window,
        #[serde(default)]
        max_per_call: Option<f64>,
        #[serde(default)]
        max_per_s: f64,
        #[serde(default)]
        min_per_call: Option<f64>,
        #[serde(default)]
        skip_s: f64,
        #[serde(default)]
        builds: Option<Vec<BuildName>>,
    },
    /// The calls that reached fault point `point` in `window` (as its process counts them),
    /// per request the load sent in that window (of `step` only, if given), are within
    /// `[min_per_request, max_per_request]`: how much of the load, retries included, the
    /// dependency behind the point received.
    Reached {
        point: String,
        window: Window,
        #[serde(default)]
        step: Option<String>,
        #[serde(default)]
        min_per_request: Option<f64>,
        #[serde(default)]
        max_per_request: Option<f64>,
        #[serde(default)]
        skip_s: f64,
        #[serde(default)]
        builds: Option<Vec<BuildName>>,
    },
    /// After the fault is removed, a second without errors comes within `within_s`.
    Recovers {
        within_s: f64,
        #[serde(default)]
        builds: Option<Vec<BuildName>>,
    },
    /// The consistency audit (`archlab audit`) is clean within `within_s` of the load's end.
    AuditClean {
        within_s: f64,
        #[serde(default)]
        builds: Option<Vec<BuildName>>,
    },
}

impl Probe {
    /// Whether this probe applies to `build`.
    pub fn applies_to(&self, build: Build) -> bool {
        let builds = match self {
            Self::ErrorRate { builds, .. }
            | Self::P50 { builds, .. }
            | Self::P99 { builds, .. }
            | Self::Retries { builds, .. }
            | Self::Reached { builds, .. }
            | Self::Recovers { builds, .. }
            | Self::AuditClean { builds, .. } => builds,
        };
        builds.as_ref().is_none_or(|list| list.iter().any(|b| b.build() == build))
    }
}

/// An action at a time: `at_s` seconds into the run.
#[derive(Debug, Clone, Deserialize)]
pub struct Timed {
    /// Seconds from the start of the load.
    pub at_s: f64,
    /// What is done.
    #[serde(flatten)]
    pub action: Action,
}

/// What an action does to the running build.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// Set a fault point (`shared/kernel/src/faults`) in the process that reaches it.
    SetFault { point: String, fault: Fault },
    /// Clear a fault point.
    ClearFault { point: String },
    /// Clear every fault point of every process.
    ClearAllFaults,
    /// Change extsim's knobs (`PUT /admin/config`): the payment provider, the email API.
    Extsim {
        #[serde(default)]
        payments: Option<BehaviourPatch>,
        #[serde(default)]
        email: Option<BehaviourPatch>,
    },
    /// Put extsim's knobs back to instant and never failing.
    ExtsimReset,
    /// SIGKILL the process that hosts `process` (a domain, or `gateway`); the supervisor
    /// starts it again.
    Kill { process: Host },
    /// Restart the process that hosts `process` as a deploy does: SIGTERM (it drains and
    /// exits), then the supervisor starts it again at once.
    Restart { process: Host },
    /// Put a toxic (Toxiproxy's JSON: `type`, `attributes`, and optionally `name`,
    /// `stream`, `toxicity`) on the fault proxy in front of `link`.
    Toxic { link: Link, toxic: Toxic },
    /// Take every toxic off `link`'s proxy.
    RemoveToxics { link: Link },
    /// Cut `link`: every open connection closed, new ones closed as soon as accepted
    /// (Toxiproxy's `enabled = false`).
    LinkDown { link: Link },
    /// Relay `link`'s new connections again.
    LinkUp { link: Link },
}

/// A connection of the build that an experiment puts a fault proxy in front of (the
/// `shared/testkit` proxy, in the harness's process). Only the links an experiment's actions
/// name are proxied; the others are direct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Link {
    /// RabbitMQ, as every process of the microservices reaches it.
    Broker,
    /// PostgreSQL as the process hosting auth reaches it: auth-service's own database, or
    /// the monolith's one database, which every module shares.
    AuthDb,
    /// The same, for the process hosting users.
    UsersDb,
    /// The same, for the process hosting payments.
    PaymentsDb,
    /// The same, for the process hosting notifications.
    NotificationsDb,
    /// auth-service, as every other process calls it (its HTTP and gRPC listeners).
    AuthService,
    /// users-service, the same way.
    UsersService,
    /// payments-service, the same way.
    PaymentsService,
    /// notifications-service, the same way.
    NotificationsService,
}

impl Link {
    /// Every link, in the order files list them.
    pub const ALL: [Link; 9] = [
        Self::Broker,
        Self::AuthDb,
        Self::UsersDb,
        Self::PaymentsDb,
        Self::NotificationsDb,
        Self::AuthService,
        Self::UsersService,
        Self::PaymentsService,
        Self::NotificationsService,
    ];

    /// The link's name, as files spell it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Broker => "broker",
            Self::AuthDb => "auth-db",
            Self::UsersDb => "users-db",
            Self::PaymentsDb => "payments-db",
            Self::NotificationsDb => "notifications-db",
            Self::AuthService => "auth-service",
            Self::UsersService => "users-service",
            Self::PaymentsService => "payments-service",
            Self::NotificationsService => "notifications-service",
        }
    }

    /// What the link is, by kind: the broker, a domain's database, or a domain's service.
    pub fn target(self) -> LinkTarget {
        match self {
            Self::Broker => LinkTarget::Broker,
            Self::AuthDb => LinkTarget::Database(Host::Auth),
            Self::UsersDb => LinkTarget::Database(Host::Users),
            Self::PaymentsDb => LinkTarget::Database(Host::Payments),
            Self::NotificationsDb => LinkTarget::Database(Host::Notifications),
            Self::AuthService => LinkTarget::Service(Host::Auth),
            Self::UsersService => LinkTarget::Service(Host::Users),
            Self::PaymentsService => LinkTarget::Service(Host::Payments),
            Self::NotificationsService => LinkTarget::Service(Host::Notifications),
        }
    }

    /// Why the monolith has no such connection (the broker and the services exist only in
    /// the microservices), or `None` when it has.
    pub fn not_in_monolith(self) -> Option<String> {
        match self.target() {
            LinkTarget::Broker => Some("the monolith has no broker (the broker link)".to_owned()),
            LinkTarget::Service(_) => Some(format!(
                "the monolith calls its modules in-process: there is no connection to put the {} link's proxy in front of",
                self.name()
            )),
            LinkTarget::Database(_) => None,
        }
    }
}

/// See [`Link::target`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkTarget {
    /// RabbitMQ, from every process (`AMQP_URL`).
    Broker,
    /// PostgreSQL, from the process hosting that domain only (its own `DATABASE_URL`).
    Database(Host),
    /// That domain's service, from every process that calls it (its `*_URL`s).
    Service(Host),
}

impl Action {
    /// Whether this action removes a fault (it ends the fault window).
    pub fn removes(&self) -> bool {
        matches!(
            self,
            Self::ClearFault { .. }
                | Self::ClearAllFaults
                | Self::ExtsimReset
                | Self::RemoveToxics { .. }
                | Self::LinkUp { .. }
        )
    }

    /// The link this action acts on, if any.
    pub fn link(&self) -> Option<Link> {
        match self {
            Self::Toxic { link, .. }
            | Self::RemoveToxics { link }
            | Self::LinkDown { link }
            | Self::LinkUp { link } => Some(*link),
            _ => None,
        }
    }
}

/// What a `kill` names: a domain, whose process differs between the builds, or the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Host {
    Auth,
    Users,
    Payments,
    Notifications,
    /// The microservices' gateway; the monolith itself in the monolith.
    Gateway,
    /// The second payments-service process, when the experiment runs two
    /// (`payments_replicas`).
    #[serde(rename = "payments-2")]
    PaymentsReplica,
}

impl Host {
    /// The binary that hosts it in `kind` (with `extract` out of the monolith, for a hybrid).
    pub fn process(self, kind: Kind, extract: Option<Module>) -> &'static str {
        use archlab_kernel::processes as p;
        match (kind, self) {
            (Kind::Monolith, _) => p::MONOLITH.name,
            (Kind::Hybrid, Self::Gateway) => p::GATEWAY.name,
            (Kind::Hybrid, Self::Notifications) if extract == Some(Module::Notifications) => {
                p::NOTIFICATIONS_SERVICE.name
            }
            (Kind::Hybrid, Self::Payments) if extract == Some(Module::Payments) => p::PAYMENTS_SERVICE.name,
            (Kind::Hybrid, _) => p::HYBRID.name,
            (Kind::Micro, Self::Auth) => p::AUTH_SERVICE.name,
            (Kind::Micro, Self::Users) => p::USERS_SERVICE.name,
            (Kind::Micro, Self::Payments) => p::PAYMENTS_SERVICE.name,
            (Kind::Micro, Self::Notifications) => p::NOTIFICATIONS_SERVICE.name,
            (Kind::Micro, Self::Gateway) => p::GATEWAY.name,
            (Kind::Micro, Self::PaymentsReplica) => crate::topology::REPLICA_LABELS[0],
        }
    }

    /// The domain that owns a fault point (`notifications.deliver` → notifications).
    pub fn of_point(point: &str) -> Option<Self> {
        match point.split_once('.')?.0 {
            "auth" => Some(Self::Auth),
            "users" => Some(Self::Users),
            "payments" => Some(Self::Payments),
            "notifications" => Some(Self::Notifications),
            _ => None,
        }
    }
}

impl Experiment {
    /// The links the method and the rollback act on, each once: what the run proxies.
    pub fn links(&self) -> Vec<Link> {
        let mut links: Vec<Link> =
            self.method.iter().map(|t| &t.action).chain(&self.rollback).filter_map(Action::link).collect();
        links.sort_unstable();
        links.dedup();
        links
    }

    /// Parse and check an experiment file's text; `origin` names it in messages.
    pub fn parse(text: &str, origin: &str) -> anyhow::Result<Self> {
        let experiment: Self = toml::from_str(text).with_context(|| format!("{origin} is not a valid experiment"))?;
        experiment.check().with_context(|| format!("{origin} is not a valid experiment"))?;
        Ok(experiment)
    }

    /// Every rule the types alone cannot say.
    fn check(&self) -> anyhow::Result<()> {
        if self.title.trim().is_empty() {
            bail!("the title is empty");
        }
        if self.builds.is_empty() {
            bail!("builds is empty: name at least one of monolith, micro-grpc, micro-http");
        }
        if !(1..=crate::topology::MAX_REPLICAS).contains(&self.payments_replicas) {
            bail!("payments_replicas = {}: give 1 to {}", self.payments_replicas, crate::topology::MAX_REPLICAS);
        }
        let names_replica = self.method.iter().map(|t| &t.action).chain(&self.rollback).any(|a| {
            matches!(
                a,
                Action::Kill { process: Host::PaymentsReplica } | Action::Restart { process: Host::PaymentsReplica }
            )
        });
        if names_replica && self.payments_replicas < 2 {
            bail!(
                "an action names payments-2, and payments_replicas is {}: there is no second process",
                self.payments_replicas
            );
        }
        if self.payments_replicas > 1 && self.builds.contains(&BuildName::Monolith) {
            bail!(
                "payments_replicas > 1 runs against micro-grpc and micro-http only: the monolith has no payments process of its own"
            );
        }
        for key in self.env.keys() {
            if key.is_empty() || !key.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_') {
                bail!("env: {key:?} is not an environment variable name (upper-case letters, digits, _)");
            }
        }
        let load = &self.load;
        for (name, d) in [("load.duration_s", load.duration_s), ("load.short.duration_s", load.short.duration_s)] {
            if !(1.0..=MAX_DURATION_S).contains(&d) {
                bail!("{name} must be between 1 and {MAX_DURATION_S} seconds, not {d}");
            }
        }
        if load.short.duration_s > load.duration_s {
            bail!(
                "load.short.duration_s ({}) is longer than load.duration_s ({})",
                load.short.duration_s,
                load.duration_s
            );
        }
        if !(load.short.rate_scale.is_finite() && load.short.rate_scale > 0.0 && load.short.rate_scale <= 1.0) {
            bail!("load.short.rate_scale must be within (0, 1], not {}", load.short.rate_scale);
        }
        if load.timeout_ms == 0 || load.timeout_ms > 60_000 {
            bail!("load.timeout_ms must be between 1 and 60000, not {}", load.timeout_ms);
        }
        if load.seed_users == 0 || load.seed_users > 1_000 {
            bail!("load.seed_users must be between 1 and 1000, not {}", load.seed_users);
        }
        if load.streams.is_empty() {
            bail!("load.streams is empty: give at least one {{ scenario, rate }}");
        }
        for (i, s) in load.streams.iter().enumerate() {
            if !(s.rate.is_finite() && s.rate > 0.0 && s.rate <= MAX_RATE) {
                bail!("load.streams[{i}].rate must be within (0, {MAX_RATE}] requests per second, not {}", s.rate);
            }
            if s.connections.is_some_and(|c| c == 0 || c > 1_000) {
                bail!("load.streams[{i}].connections must be between 1 and 1000");
            }
        }
        for (i, probe) in self.steady_state.iter().enumerate() {
            check_probe(probe).with_context(|| format!("steady_state[{i}]"))?;
        }
        for (i, timed) in self.method.iter().enumerate() {
            if !(0.0..load.duration_s).contains(&timed.at_s) {
                bail!("method[{i}].at_s must be within [0, load.duration_s = {}), not {}", load.duration_s, timed.at_s);
            }
            check_action(&timed.action).with_context(|| format!("method[{i}]"))?;
        }
        if self.method.windows(2).any(|w| w[1].at_s < w[0].at_s) {
            bail!("the method's actions must be listed in time order (at_s never decreasing)");
        }
        for (i, action) in self.rollback.iter().enumerate() {
            check_action(action).with_context(|| format!("rollback[{i}]"))?;
        }
        if self.builds.contains(&BuildName::Monolith)
            && let Some(why) = self.links().into_iter().find_map(Link::not_in_monolith)
        {
            bail!("builds names monolith, but {why}");
        }
        Ok(())
    }

    /// The run as `short` asks: its length, each action's time and the rates.
    pub fn plan(&self, short: bool) -> RunPlan {
        let load = &self.load;
        let (duration_s, rate_scale) =
            if short { (load.short.duration_s, load.short.rate_scale) } else { (load.duration_s, 1.0) };
        let time_scale = duration_s / load.duration_s;
        let method = self.method.iter().map(|t| (t.at_s * time_scale, t.action.clone())).collect();
        let streams = load
            .streams
            .iter()
            .map(|s| {
                let rate = s.rate * rate_scale;
                // Enough connections that a request waiting a whole timeout does not hold up
                // the schedule by much: the rate times a second, at least 2.
                let connections = s.connections.unwrap_or_else(|| (rate.ceil() as u32).clamp(2, 256));
                (s.scenario, rate, connections)
            })
            .collect();
        RunPlan {
            duration: Duration::from_secs_f64(duration_s),
            timeout: Duration::from_millis(load.timeout_ms),
            seed_users: load.seed_users,
            streams,
            method,
        }
    }
}

/// What one run does, in absolute seconds: [`Experiment::plan`].
#[derive(Debug, Clone)]
pub struct RunPlan {
    /// The load's length.
    pub duration: Duration,
    /// Per request.
    pub timeout: Duration,
    /// Users signed up first.
    pub seed_users: u32,
    /// `(scenario, rate, connections)` of each stream.
    pub streams: Vec<(Scenario, f64, u32)>,
    /// `(seconds into the run, action)`, in time order.
    pub method: Vec<(f64, Action)>,
}

impl RunPlan {
    /// The fault window in seconds: from the first action that does not remove a fault to
    /// the first removal after it (the run's end if none). `None` without a fault.
    pub fn fault_window(&self) -> Option<(f64, f64)> {
        let start = self.method.iter().find(|(_, a)| !a.removes())?.0;
        let end = self
            .method
            .iter()
            .filter(|(at, a)| a.removes() && *at >= start)
            .map(|(at, _)| *at)
            .next_back()
            .or_else(|| {
                // A kill (or a restart) is over when it happens; the process coming back is
                // the recovery.
                let only_kills =
                    self.method.iter().all(|(_, a)| matches!(a, Action::Kill { .. } | Action::Restart { .. }));
                only_kills.then_some(start)
            })
            .unwrap_or(self.duration.as_secs_f64());
        Some((start, end))
    }
}

fn check_share(name: &str, value: Option<f64>) -> anyhow::Result<()> {
    if let Some(v) = value
        && !(v.is_finite() && (0.0..=1.0).contains(&v))
    {
        bail!("{name} must be a share within [0, 1], not {v}");
    }
    Ok(())
}

fn check_step(step: &Option<String>) -> anyhow::Result<()> {
    use crate::load::scenario::Step;
    if let Some(step) = step
        && !Step::ALL.iter().any(|s| s.name() == step)
    {
        let known: Vec<&str> = Step::ALL.iter().map(|s| s.name()).collect();
        bail!("unknown step {step:?}; the steps: {}", known.join(", "));
    }
    Ok(())
}

fn check_probe(probe: &Probe) -> anyhow::Result<()> {
    let nonneg = |name: &str, v: f64| {
        if v.is_finite() && v >= 0.0 { Ok(()) } else { Err(anyhow::anyhow!("{name} must be at least 0, not {v}")) }
    };
    // Each bound that is given is at least 0.
    let nonneg_given = |bounds: &[(&str, &Option<f64>)]| -> anyhow::Result<()> {
        bounds.iter().filter_map(|(name, v)| v.map(|v| (name, v))).try_for_each(|(name, v)| nonneg(name, v))
    };
    match probe {
        Probe::ErrorRate { step, min, max, skip_s, .. } => {
            check_step(step)?;
            check_share("min", *min)?;
            check_share("max", *max)?;
            nonneg("skip_s", *skip_s)?;
            if min.is_none() && max.is_none() {
                bail!("an error_rate probe needs min, max or both");
            }
        }
        Probe::P50 { step, min_ms, max_ms, skip_s, .. } => {
            check_step(step)?;
            nonneg_given(&[("min_ms", min_ms), ("max_ms", max_ms)])?;
            nonneg("skip_s", *skip_s)?;
            if min_ms.is_none() && max_ms.is_none() {
                bail!("a p50 probe needs min_ms, max_ms or both");
            }
        }
        Probe::P99 { step, min_ms, max_ms, min_times_before, max_times_before, skip_s, .. } => {
            check_step(step)?;
            nonneg_given(&[
                ("min_ms", min_ms),
                ("max_ms", max_ms),
                ("min_times_before", min_times_before),
                ("max_times_before", max_times_before),
            ])?;
            nonneg("skip_s", *skip_s)?;
            if [min_ms, max_ms, min_times_before, max_times_before].iter().all(|v| v.is_none()) {
                bail!("a p99 probe needs min_ms, max_ms, min_times_before or max_times_before");
            }
        }
        Probe::Retries { max_per_call, max_per_s, min_per_call, skip_s, .. } => {
            nonneg_given(&[("max_per_call", max_per_call), ("min_per_call", min_per_call)])?;
            nonneg("max_per_s", *max_per_s)?;
            nonneg("skip_s", *skip_s)?;
            if max_per_call.is_none() && min_per_call.is_none() {
                bail!("a retries probe needs max_per_call, min_per_call or both");
            }
        }
        Probe::Reached { point, step, min_per_request, max_per_request, skip_s, .. } => {
            if faults::points::find(point).is_none() {
                bail!("unknown fault point {point:?}; the points: {}", faults::points::names());
            }
            check_step(step)?;
            nonneg_given(&[("min_per_request", min_per_request), ("max_per_request", max_per_request)])?;
            nonneg("skip_s", *skip_s)?;
            if min_per_request.is_none() && max_per_request.is_none() {
                bail!("a reached probe needs min_per_request, max_per_request or both");
            }
        }
        Probe::Recovers { within_s, .. } | Probe::AuditClean { within_s, .. } => {
            if !(0.0..=600.0).contains(within_s) {
                bail!("within_s must be between 0 and 600, not {within_s}");
            }
        }
    }
    Ok(())
}

fn check_behaviour(section: &str, patch: &Option<BehaviourPatch>) -> anyhow::Result<()> {
    let Some(patch) = patch else { return Ok(()) };
    if patch.latency_ms.is_some_and(|l| l > MAX_EXTSIM_LATENCY_MS) {
        bail!("{section}.latency_ms must be at most {MAX_EXTSIM_LATENCY_MS}");
    }
    check_share(&format!("{section}.failure_rate"), patch.failure_rate)?;
    check_share(&format!("{section}.lost_reply_rate"), patch.lost_reply_rate)?;
    Ok(())
}

fn check_action(action: &Action) -> anyhow::Result<()> {
    let point_known = |point: &str| {
        if faults::points::find(point).is_none() {
            bail!("unknown fault point {point:?}; the points: {}", faults::points::names());
        }
        Ok(())
    };
    match action {
        Action::SetFault { point, fault } => {
            point_known(point)?;
            fault.validated().map_err(|e| anyhow::anyhow!("fault of {point}: {}", e.message))?;
        }
        Action::ClearFault { point } => point_known(point)?,
        Action::Extsim { payments, email } => {
            if payments.is_none() && email.is_none() {
                bail!("an extsim action needs payments, email or both");
            }
            check_behaviour("payments", payments)?;
            check_behaviour("email", email)?;
        }
        Action::Toxic { link, toxic } => {
            toxic.clone().validated().map_err(|e| anyhow::anyhow!("toxic on {}: {e}", link.name()))?;
        }
        Action::ClearAllFaults
        | Action::ExtsimReset
        | Action::Kill { .. }
        | Action::Restart { .. }
        | Action::RemoveToxics { .. }
        | Action::LinkDown { .. }
        | Action::LinkUp { .. } => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
title = "t"
builds = ["monolith"]
[load]
duration_s = 20
streams = [{ scenario = "purchase", rate = 10 }]
short = { duration_s = 5 }
[[method]]
at_s = 4
action = "set_fault"
point = "notifications.deliver"
fault = { fail_share = 1.0 }
[[method]]
at_s = 12
action = "clear_fault"
point = "notifications.deliver"
"#;

    fn refused(text: &str) -> String {
        format!("{:#}", Experiment::parse(text, "x.toml").expect_err("refused"))
    }

    #[test]
    fn short_mode_scales_the_times_and_the_fault_window() -> anyhow::Result<()> {
        let e = Experiment::parse(MINIMAL, "x.toml")?;
        assert_eq!(e.plan(false).fault_window(), Some((4.0, 12.0)));
        assert_eq!(e.plan(true).fault_window(), Some((1.0, 3.0)));
        assert_eq!(e.plan(true).duration, Duration::from_secs(5));
        Ok(())
    }

    #[test]
    fn unknown_fields_actions_probes_and_points_are_refused_naming_the_known_ones() {
        let unknown_action = MINIMAL.replace("\"clear_fault\"", "\"unplug\"");
        assert!(refused(&unknown_action).contains("set_fault"), "{}", refused(&unknown_action));
        let unknown_point = MINIMAL.replace("point = \"notifications.deliver\"\nfault", "point = \"x.y\"\nfault");
        assert!(refused(&unknown_point).contains("users.create_profile"), "{}", refused(&unknown_point));
        let unknown_field = MINIMAL.replace("title = \"t\"", "title = \"t\"\ncolour = 1");
        assert!(refused(&unknown_field).contains("colour"), "{}", refused(&unknown_field));
        let probe = format!("{MINIMAL}\n[[steady_state]]\nprobe = \"vibes\"\n");
        assert!(refused(&probe).contains("error_rate"), "{}", refused(&probe));
    }

    #[test]
    fn out_of_range_values_are_refused() {
        for (from, to, says) in [
            ("rate = 10", "rate = -1", "rate"),
            ("rate = 10", "rate = 1e9", "rate"),
            ("fail_share = 1.0", "fail_share = 1.5", "fail_share"),
            ("at_s = 12", "at_s = 99", "at_s"),
            ("short = { duration_s = 5 }", "short = { duration_s = 50 }", "short.duration_s"),
        ] {
            let text = MINIMAL.replace(from, to);
            assert!(refused(&text).contains(says), "{to}: {}", refused(&text));
        }
        let extsim = format!("{MINIMAL}\n[[rollback]]\naction = \"extsim\"\npayments = {{ failure_rate = 2.0 }}\n");
        assert!(refused(&extsim).contains("payments.failure_rate"), "{}", refused(&extsim));
    }

    #[test]
    fn a_kill_alone_is_a_fault_that_ends_when_it_happens() -> anyhow::Result<()> {
        let text = MINIMAL
            .replace(
                "action = \"set_fault\"\npoint = \"notifications.deliver\"\nfault = { fail_share = 1.0 }",
                "action = \"kill\"\nprocess = \"payments\"",
            )
            .replace("[[method]]\nat_s = 12\naction = \"clear_fault\"\npoint = \"notifications.deliver\"\n", "");
        let e = Experiment::parse(&text, "x.toml")?;
        assert_eq!(e.plan(false).fault_window(), Some((4.0, 4.0)));
        assert_eq!(Host::Payments.process(Kind::Micro, None), "payments-service");
        assert_eq!(Host::Payments.process(Kind::Monolith, None), "monolith");
        assert_eq!(Host::Payments.process(Kind::Hybrid, Some(Module::Payments)), "payments-service");
        assert_eq!(Host::Payments.process(Kind::Hybrid, Some(Module::Notifications)), "hybrid");
        assert_eq!(Host::Users.process(Kind::Hybrid, Some(Module::Payments)), "hybrid");
        Ok(())
    }
}
