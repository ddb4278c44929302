//! One build running for an experiment, and the hands that break it: fault points through
//! each process's loopback admin endpoint, extsim's knobs, SIGKILL through the supervisor.
//!
//! Started as `archlab compare` starts a build (`compare::isolated_env`: free loopback ports,
//! fresh databases and broker names), with two differences an experiment needs: every process
//! that reaches fault points gets an admin endpoint, and the supervisor restarts a process
//! that dies ([`Restart::OnFailure`]), since a crash and its recovery are what is measured.

use super::experiment::{Action, Host};
use crate::audit::read::{Databases, Overrides};
use crate::compare::{Build, isolated_env};
use crate::supervisor::{self, GRACE, Restart, Supervisor};
use crate::topology::{NotificationMode, Options, Topology};
use anyhow::{Context, bail};
use archlab_extsim::{Client as Extsim, SimConfigPatch};
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
    http: reqwest::Client,
}

impl Lab {
    /// Start `build` in `mode` with `extra_env`, on fresh databases named after `run_id`, and
    /// wait until every process is ready.
    pub async fn start(
        build: Build,
        mode: NotificationMode,
        run_id: &str,
        database_url: &str,
        bin_dir: &Path,
        extra_env: &BTreeMap<String, String>,
    ) -> anyhow::Result<Self> {
        let mut env = isolated_env(build, run_id, database_url)?;
        let mut admin = BTreeMap::new();
        for (name, var, addr) in crate::topology::free_admin_addrs().context("finding free loopback ports")? {
            admin.insert(name, format!("http://{addr}"));
            env.push((var.to_owned(), addr));
        }
        env.extend(extra_env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let lookup = crate::topology::lookup_over(&env);
        let options = Options { mode: Some(mode), transport: build.transport(), extsim: true };
        let mut topology = Topology::new(build.kind(), options, lookup);
        topology.env.extend(env.iter().cloned());
        let databases = Databases::resolve(build.kind(), &Overrides::default(), lookup);
        admin.retain(|name, _| topology.processes.iter().any(|p| p.name == *name));

        let children = Supervisor::start(&topology, bin_dir, false, Restart::OnFailure).await?;
        let http = reqwest::Client::builder().no_proxy().timeout(ADMIN_TIMEOUT).build().context("an HTTP client")?;
        let mut lab = Lab { build, topology, children, admin, database_url: database_url.to_owned(), databases, http };
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
                let name = process.process(kind);
                let pid = self.children.signal(name, Signal::SIGKILL)?;
                Ok(format!("SIGKILL {name} (pid {pid})"))
            }
        }
    }

    /// The admin endpoint of the process that reaches `point` in this build.
    fn admin_of(&self, point: &str) -> anyhow::Result<&str> {
        let host = Host::of_point(point).with_context(|| format!("no domain owns the fault point {point}"))?;
        let name = host.process(self.build.kind());
        self.admin.get(name).map(String::as_str).with_context(|| format!("{name} has no admin endpoint"))
    }

    /// How many times each process was restarted so far, those restarted at least once.
    pub fn restarts(&self) -> BTreeMap<String, u32> {
        self.children.restarts().into_iter().filter(|(_, n)| *n > 0).map(|(k, n)| (k.to_owned(), n)).collect()
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
