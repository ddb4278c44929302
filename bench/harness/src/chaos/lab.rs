//! One build running for an experiment, and the hands that break it: fault points through
//! each process's loopback admin endpoint, extsim's knobs, SIGKILL through the supervisor.
//!
//! Started as `archlab compare` starts a build (`compare::isolated_env`: free loopback ports,
//! fresh databases and broker names), with two differences an experiment needs: every process
//! that reaches fault points gets an admin endpoint, and the supervisor restarts a process
//! that dies ([`Restart::OnFailure`]), since a crash and its recovery are what is measured.

use super::experiment::{Action, Experiment, Host, Link, LinkTarget};
use crate::audit::read::{Databases, Overrides};
use crate::compare::{Build, isolated_env};
use crate::supervisor::{self, GRACE, Restart, Supervisor};
use crate::topology::{NotificationMode, Topology};
use anyhow::{Context, bail};
use archlab_extsim::{Client as Extsim, SimConfigPatch};
use archlab_testkit::TcpProxy;
use nix::sys::signal::Signal;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

/// How long a build may take to become ready (first start migrates fresh databases).
const READY_WITHIN: Duration = Duration::from_secs(60);
/// One admin call's budget.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A build running for an experiment.
pub struct Lab {
    /// Which build.
    pub build: Build,
    /// Its processes and environment.
    pub topology: Topology,
    /// The children, under [`Restart::OnFailure`].
    pub children: Supervisor,
    /// The fault admin endpoint of each process that has one, by binary name.
    admin: BTreeMap<&'static str, String>,
    /// The database server, and the maintenance database for dropping the run's databases.
    database_url: String,
    /// The build's databases, as the audit reads them.
    pub databases: Databases,
    /// The fault proxies in front of the links the experiment acts on (a service's link has
    /// one per listener, HTTP and gRPC).
    proxies: BTreeMap<Link, Vec<TcpProxy>>,
    http: reqwest::Client,
}

/// Start the fault proxies of `link` and point the processes that use it at them (in
/// `topology`: everyone's environment, or one process's); `env` is the run's environment,
/// where the services' real addresses are.
async fn proxy_link(
    link: Link,
    topology: &mut Topology,
    database_url: &str,
    env: &[(String, String)],
) -> anyhow::Result<Vec<TcpProxy>> {
    let lookup = crate::topology::lookup_over(env);
    match link.target() {
        LinkTarget::Broker => {
            let url = lookup("AMQP_URL").unwrap_or_else(|| DEFAULT_AMQP_URL.to_owned());
            let proxy = TcpProxy::start(upstream_of(&url)?).await.context("starting a fault proxy")?;
            topology.env.push(("AMQP_URL".to_owned(), through(&url, proxy.addr())?));
            Ok(vec![proxy])
        }
        LinkTarget::Database(domain) => {
            let proxy = TcpProxy::start(upstream_of(database_url)?).await.context("starting a fault proxy")?;
            let host = domain.process(topology.kind, topology.extract);
            let process = topology.processes.iter_mut().find(|p| p.name == host);
            let process = process.with_context(|| format!("{host} is not in the topology"))?;
            process.env.push(("DATABASE_URL".to_owned(), through(database_url, proxy.addr())?));
            Ok(vec![proxy])
        }
        LinkTarget::Service(domain) => {
            let host = domain.process(topology.kind, topology.extract);
            let spec = archlab_kernel::processes::ALL
                .into_iter()
                .find(|s| s.name == host)
                .with_context(|| format!("{host} is not a known process"))?;
            let mut proxies = Vec::new();
            for listener in std::iter::once(spec.http).chain(spec.grpc) {
                let addr = lookup(listener.addr_var).unwrap_or_else(|| listener.default_addr.to_owned());
                let upstream: std::net::SocketAddr =
                    addr.parse().with_context(|| format!("{}={addr} is not an address", listener.addr_var))?;
                let proxy = TcpProxy::start(upstream).await.context("starting a fault proxy")?;
                // The service listens where it did; its callers find it through the proxy.
                topology.env.push((listener.url_var.to_owned(), format!("http://{}", proxy.addr())));
                proxies.push(proxy);
            }
            Ok(proxies)
        }
    }
}

/// The default RabbitMQ URL of the builds (`AMQP_URL`).
const DEFAULT_AMQP_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// The loopback address `url` (PostgreSQL's or RabbitMQ's) connects to.
fn upstream_of(url: &str) -> anyhow::Result<std::net::SocketAddr> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    let host = parsed.host_str().with_context(|| format!("{url} names no host"))?;
    let port = parsed.port().or(match parsed.scheme() {
        "postgres" | "postgresql" => Some(5432),
        "amqp" => Some(5672),
        _ => None,
    });
    let port = port.with_context(|| format!("{url} names no port"))?;
    let upstream = std::net::ToSocketAddrs::to_socket_addrs(&(host, port))
        .with_context(|| format!("resolving {host}:{port}"))?
        .next()
        .with_context(|| format!("{host}:{port} resolves to nothing"))?;
    if !upstream.ip().is_loopback() {
        bail!("{url} is not on a loopback address: the lab's faults stay on this machine");
    }
    Ok(upstream)
}

/// `url` with its host and port replaced by `addr` (a fault proxy's).
fn through(url: &str, addr: std::net::SocketAddr) -> anyhow::Result<String> {
    let mut parsed = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    parsed.set_host(Some(&addr.ip().to_string())).map_err(|e| anyhow::anyhow!("{e}"))?;
    parsed.set_port(Some(addr.port())).map_err(|()| anyhow::anyhow!("{url} cannot take a port"))?;
    Ok(parsed.to_string())
}

impl Lab {
    /// Start `build` in `mode` as `experiment` shapes it (its environment, the links it puts
    /// fault proxies on, its replicas, its restart policy), on fresh databases named after
    /// `run_id`, and wait until every process is ready.
    pub async fn start(
        build: Build,
        mode: NotificationMode,
        run_id: &str,
        database_url: &str,
        bin_dir: &Path,
        experiment: &Experiment,
    ) -> anyhow::Result<Self> {
        let (extra_env, links) = (&experiment.env, &experiment.links());
        let payments_replicas = experiment.payments_replicas;
        let restart = match experiment.restart_killed {
            true => Restart::OnFailure,
            false => Restart::Off,
        };
        if build.kind() == crate::topology::Kind::Monolith
            && let Some(why) = links.iter().find_map(|l| l.not_in_monolith())
        {
            bail!("{why}");
        }
        let mut env = isolated_env(build, run_id, database_url)?;
        let mut admin = BTreeMap::new();
        for (name, var, addr) in crate::topology::free_admin_addrs().context("finding free loopback ports")? {
            admin.insert(name, format!("http://{addr}"));
            env.push((var.to_owned(), addr));
        }
        env.extend(extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let lookup = crate::topology::lookup_over(&env);
        let options = crate::topology::Options { payments_replicas, ..build.options(mode) };
        let mut topology = Topology::new(build.kind(), options, lookup);
        // Under the topology's own settings, which read these and come after them.
        topology.env.splice(0..0, env.iter().cloned());
        let databases = Databases::resolve(build.kind(), &Overrides::default(), lookup);
        admin.retain(|name, _| topology.processes.iter().any(|p| p.name == *name));
        let mut proxies = BTreeMap::new();
        for &link in links {
            proxies.insert(link, proxy_link(link, &mut topology, database_url, &env).await?);
        }

        let children = Supervisor::start(&topology, bin_dir, false, restart).await?;
        let http = reqwest::Client::builder().no_proxy().timeout(ADMIN_TIMEOUT).build().context("an HTTP client")?;
        let mut lab =
            Lab { build, topology, children, admin, database_url: database_url.to_owned(), databases, proxies, http };
        let processes = lab.topology.processes.clone();
        let ready = tokio::select! {
            ready = supervisor::wait_ready(&processes, READY_WITHIN) => ready,
            exit = lab.children.next_exit() => Err(anyhow::anyhow!("{} exited while starting ({})", exit.name, exit.describe())),
        };
        match ready {
            Ok(()) => Ok(lab),
            Err(error) => {
                lab.stop().await;
                Err(error)
            }
        }
    }

    /// The public API's base URL.
    pub fn public_url(&self) -> &str {
        &self.topology.public_url
    }

    /// The extsim the build calls.
    pub fn extsim(&self) -> Extsim {
        Extsim::new(self.topology.extsim_url.clone())
    }

    /// Do `action`; a short line saying what was done.
    pub async fn act(&self, action: &Action) -> anyhow::Result<String> {
        let kind = self.build.kind();
        match action {
            Action::SetFault { point, fault } => {
                let url = self.admin_of(point)?;
                let answer = self.http.put(format!("{url}/admin/faults/{point}")).json(fault).send().await;
                check(answer, &format!("setting {point}")).await?;
                Ok(format!("set {point} to {}", serde_json::to_string(fault).unwrap_or_default()))
            }
            Action::ClearFault { point } => {
                let url = self.admin_of(point)?;
                check(
                    self.http.delete(format!("{url}/admin/faults/{point}")).send().await,
                    &format!("clearing {point}"),
                )
                .await?;
                Ok(format!("cleared {point}"))
            }
            Action::ClearAllFaults => {
                for (name, url) in &self.admin {
                    // A process down (killed, restarting) has nothing set: its faults died with it.
                    if self.children.pid(name).is_some() {
                        let answer = self.http.delete(format!("{url}/admin/faults")).send().await;
                        if let Err(error) = check(answer, &format!("clearing {name}'s faults")).await {
                            tracing::warn!("{error:#}");
                        }
                    }
                }
                Ok("cleared every fault point".to_owned())
            }
            Action::Extsim { payments, email } => {
                let patch = SimConfigPatch { payments: *payments, email: *email };
                let config = self.extsim().set_config(&patch).await.context("setting extsim's knobs")?;
                Ok(format!("extsim now {}", serde_json::to_string(&config).unwrap_or_default()))
            }
            Action::ExtsimReset => {
                self.extsim().reset().await.context("resetting extsim")?;
                Ok("extsim reset".to_owned())
            }
            Action::Kill { process } => {
                let name = process.process(kind, self.topology.extract);
                let pid = self.children.signal(name, Signal::SIGKILL)?;
                Ok(format!("SIGKILL {name} (pid {pid})"))
            }
            Action::Toxic { link, toxic } => {
                let mut added = None;
                for proxy in self.proxies(*link)? {
                    added = Some(proxy.add_toxic(toxic.clone()).map_err(|e| anyhow::anyhow!("{e}"))?);
                }
                let added = added.with_context(|| format!("{} has no proxy", link.name()))?;
                Ok(format!(
                    "{} toxic {} on {}",
                    added.kind.type_name(),
                    serde_json::to_string(&added.kind).unwrap_or_default(),
                    link.name()
                ))
            }
            Action::RemoveToxics { link } => {
                self.proxies(*link)?.iter().for_each(TcpProxy::remove_all_toxics);
                Ok(format!("removed every toxic from {}", link.name()))
            }
            Action::LinkDown { link } => {
                futures::future::join_all(self.proxies(*link)?.iter().map(TcpProxy::cut)).await;
                Ok(format!("{} down: connections cut, new ones refused", link.name()))
            }
            Action::LinkUp { link } => {
                self.proxies(*link)?.iter().for_each(TcpProxy::restore);
                Ok(format!("{} up again", link.name()))
            }
            Action::Restart { process } => {
                let name = process.process(kind, self.topology.extract);
                let pid = self.children.restart(name)?;
                Ok(format!("restart {name} (SIGTERM to pid {pid}, started again at once)"))
            }
        }
    }

    /// The fault proxies in front of `link`.
    fn proxies(&self, link: Link) -> anyhow::Result<&[TcpProxy]> {
        let proxies =
            self.proxies.get(&link).with_context(|| format!("{} has no fault proxy in this run", link.name()));
        proxies.map(Vec::as_slice)
    }

    /// The admin endpoint of the process that reaches `point` in this build.
    fn admin_of(&self, point: &str) -> anyhow::Result<&str> {
        let host = Host::of_point(point).with_context(|| format!("no domain owns the fault point {point}"))?;
        let name = host.process(self.build.kind(), self.build.extract());
        self.admin.get(name).map(String::as_str).with_context(|| format!("{name} has no admin endpoint"))
    }

    /// How many times each process was restarted so far, those restarted at least once.
    pub fn restarts(&self) -> BTreeMap<String, u32> {
        self.children.restarts().into_iter().filter(|(_, n)| *n > 0).map(|(k, n)| (k.to_owned(), n)).collect()
    }

    /// Where to read each process's counts (`/metrics`, and `/admin/faults` where it has one).
    pub fn counter_sources(&self) -> Vec<super::counters::Source> {
        self.topology
            .processes
            .iter()
            .filter(|p| p.name != archlab_kernel::processes::EXTSIM.name)
            .map(|p| super::counters::Source {
                name: p.name.to_owned(),
                http_url: p.http_url.clone(),
                admin_url: self.admin.get(p.name).cloned(),
            })
            .collect()
    }

    /// The database server URL.
    pub fn database_url(&self) -> &str {
        &self.database_url
    }

    /// Stop every process and drop the run's databases (a failure to drop is only logged:
    /// the result stands, and `make clean-dbs` exists).
    pub async fn stop(mut self) {
        self.children.stop(GRACE, std::future::pending()).await;
        let admin_url = crate::compare::admin_url(&self.database_url);
        let names: Vec<String> = self.databases.names().into_iter().map(str::to_owned).collect();
        if let Err(error) = crate::cost::drop_databases(&admin_url, &names).await {
            tracing::warn!("{error:#}");
        }
    }
}

/// An admin answer that must be a success.
async fn check(answer: reqwest::Result<reqwest::Response>, what: &str) -> anyhow::Result<()> {
    let response = answer.with_context(|| format!("{what}: no answer"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("{what}: {status}: {body}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_sent_through_the_proxy_keeping_everything_but_the_address() -> anyhow::Result<()> {
        let proxy: std::net::SocketAddr = "127.0.0.1:40001".parse()?;
        assert_eq!(upstream_of("postgres://postgres@127.0.0.1")?, "127.0.0.1:5432".parse()?);
        assert_eq!(upstream_of("amqp://guest:guest@127.0.0.1:5673/%2f")?, "127.0.0.1:5673".parse()?);
        assert_eq!(through("amqp://guest:guest@127.0.0.1:5672/%2f", proxy)?, "amqp://guest:guest@127.0.0.1:40001/%2f");
        assert_eq!(through("postgres://postgres@127.0.0.1:5432", proxy)?, "postgres://postgres@127.0.0.1:40001");
        let far = upstream_of("postgres://postgres@192.0.2.1:5432").expect_err("not loopback");
        assert!(far.to_string().contains("loopback"), "{far}");
        Ok(())
    }

    /// The value of `key` in `env`, the last one set winning (as a child sees it).
    fn value<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    #[tokio::test]
    async fn a_service_link_puts_both_listeners_behind_proxies_and_a_database_link_one_process() -> anyhow::Result<()> {
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let env = vec![
            ("USERS_HTTP_ADDR".to_owned(), http.local_addr()?.to_string()),
            ("USERS_GRPC_ADDR".to_owned(), grpc.local_addr()?.to_string()),
        ];
        let kind = crate::topology::Kind::Micro;
        let mut topology = Topology::new(kind, crate::topology::Options::default(), crate::topology::lookup_over(&env));
        let database = "postgres://postgres@127.0.0.1:5432";

        let proxies = proxy_link(Link::UsersService, &mut topology, database, &env).await?;
        assert_eq!(proxies.len(), 2, "one proxy per listener");
        for (proxy, listener, var) in [(&proxies[0], &http, "USERS_HTTP_URL"), (&proxies[1], &grpc, "USERS_GRPC_URL")] {
            assert_eq!(value(&topology.env, var), Some(format!("http://{}", proxy.addr()).as_str()), "{var}");
            let _client = tokio::net::TcpStream::connect(proxy.addr()).await?;
            let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
            assert!(matches!(accepted, Ok(Ok(_))), "{var}: a caller reaches the service through the proxy");
        }
        assert_eq!(value(&topology.env, "USERS_HTTP_ADDR"), None, "the service listens where it did");

        let proxies = proxy_link(Link::UsersDb, &mut topology, database, &env).await?;
        let through = format!("postgres://postgres@{}", proxies[0].addr());
        for process in &topology.processes {
            let url = value(&process.env, "DATABASE_URL");
            if process.name == "users-service" {
                assert_eq!(url, Some(through.as_str()), "users-service reaches its database through the proxy");
            } else {
                assert_eq!(url, None, "{}: its database connection stays direct", process.name);
            }
        }
        Ok(())
    }
}
