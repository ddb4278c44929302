//! Which CPUs the load generator and the system under test may run on.
//!
//! On a small machine the load generator and the build compete for the same cores, and a
//! build with more processes (the microservices) loses more of that fight. Pinning them apart
//! makes the comparison about the architecture rather than the scheduler. Three presets
//! ([`Preset`]), named in [`model::Placement::name`](crate::model::Placement):
//! - `split`: the load generator on CPU 0, the build (and extsim) on every other CPU. CPU 0
//!   gets the generator because it also takes most interrupts on a typical machine, which the
//!   generator's timing tolerates better than the servers' latency; on a 1-CPU machine there
//!   is nothing to split and `split` is refused.
//! - `shared`: no pinning, everything where the scheduler puts it.
//! - `custom`: lists given with `--load-cpus` and `--app-cpus`.
//!
//! The build's own PostgreSQL backends (the server processes serving its connections) are
//! part of the system under test, so `split` and `custom` move them to the build's CPUs too
//! ([`BackendPinner`]). Left where the scheduler put them, they landed sometimes beside the
//! generator and sometimes beside the build, and stayed there for the life of the pool: in
//! three otherwise identical runs the monolith's maximum throughput read 3,204, 2,194 and
//! 2,430 req/s, stable within each run. The postmaster, PostgreSQL's background workers and
//! RabbitMQ are shared with everything else on the machine and are not moved; where they
//! may run is read from their processes and reported.
//!
//! Pinning: [`pin_self`] sets the affinity of every thread of this process (threads created
//! later inherit it); children are started through `taskset -c <cpus>`, which sets the
//! affinity and then execs the binary, so the pid is the binary's and every thread it starts
//! inherits the list (see [`Supervisor::start_pinned`](crate::supervisor::Supervisor::start_pinned)).

use crate::cost;
use crate::model::Placement;
use anyhow::{Context, bail};
use nix::sched::{CpuSet, sched_setaffinity};
use nix::unistd::Pid;
use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

/// A set of CPUs, as `taskset -c` and `Cpus_allowed_list` spell it (`0`, `0-1`, `0,2-3`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cpus(BTreeSet<usize>);

impl Cpus {
    /// Parse `list` (`0`, `0-1`, `0,2-3`) without checking the machine.
    pub fn parse(list: &str) -> anyhow::Result<Self> {
        let mut cpus = BTreeSet::new();
        for part in list.split(',').map(str::trim) {
            if part.is_empty() {
                bail!("empty entry in CPU list {list:?}");
            }
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (number(a, list)?, number(b, list)?),
                None => (number(part, list)?, number(part, list)?),
            };
            if first > last {
                bail!("range {part:?} in CPU list {list:?} runs backwards");
            }
            if last >= CpuSet::count() {
                bail!("CPU {last} in {list:?} is beyond the {} CPUs an affinity mask holds", CpuSet::count());
            }
            cpus.extend(first..=last);
        }
        Ok(Self(cpus))
    }

    /// Parse `list` and refuse CPUs this process may not use (absent or offline ones).
    pub fn parse_available(list: &str) -> anyhow::Result<Self> {
        let cpus = Self::parse(list)?;
        let available = available()?;
        let missing: Vec<usize> = cpus.0.difference(&available.0).copied().collect();
        if !missing.is_empty() {
            bail!(
                "CPU list {list:?} names CPU {} which this machine does not offer (available: {available})",
                missing.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            );
        }
        Ok(cpus)
    }

    /// The CPUs, lowest first.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().copied()
    }

    /// As an affinity mask.
    pub fn to_cpu_set(&self) -> anyhow::Result<CpuSet> {
        let mut set = CpuSet::new();
        for cpu in self.iter() {
            set.set(cpu).with_context(|| format!("CPU {cpu} does not fit an affinity mask"))?;
        }
        Ok(set)
    }
}

fn number(text: &str, list: &str) -> anyhow::Result<usize> {
    text.trim().parse().with_context(|| format!("{text:?} in CPU list {list:?} is not a CPU number"))
}

impl fmt::Display for Cpus {
    /// The shortest list spelling: `0-3,6`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let mut iter = self.iter().peekable();
        while let Some(first) = iter.next() {
            let mut last = first;
            while iter.peek() == Some(&(last + 1)) {
                last = iter.next().unwrap_or(last);
            }
            parts.push(if first == last { first.to_string() } else { format!("{first}-{last}") });
        }
        f.write_str(&parts.join(","))
    }
}

/// The CPUs this process may run on now (`Cpus_allowed_list` of /proc/self/status).
pub fn available() -> anyhow::Result<Cpus> {
    Cpus::parse(&cpus_allowed(std::process::id())?)
}

/// `Cpus_allowed_list` of `pid`, e.g. `0-1`.
pub fn cpus_allowed(pid: u32) -> anyhow::Result<String> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .map(|list| list.trim().to_owned())
        .with_context(|| format!("no Cpus_allowed_list in {path}"))
}

/// Clock ticks the kernel counted for some CPUs (`/proc/stat`): time spent running anything
/// (user, nice, system, irq, softirq) and time the hypervisor gave the virtual CPU to
/// someone else while it had work (steal).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// Now, summed over `cpus` (every CPU for `None`).
    pub fn read(cpus: Option<&Cpus>) -> anyhow::Result<Self> {
        Self::parse(&std::fs::read_to_string("/proc/stat").context("reading /proc/stat")?, cpus)
    }

    /// From the text of `/proc/stat`. Fails when a CPU of `cpus` has no line.
    pub fn parse(stat: &str, cpus: Option<&Cpus>) -> anyhow::Result<Self> {
        let mut times = Self::default();
        let mut seen = BTreeSet::new();
        for line in stat.lines() {
            let mut fields = line.split_whitespace();
            let Some(cpu) = fields.next().and_then(|f| f.strip_prefix("cpu")).and_then(|id| id.parse::<usize>().ok())
            else {
                continue;
            };
            if cpus.is_some_and(|c| !c.0.contains(&cpu)) {
                continue;
            }
            let ticks: Vec<u64> =
                fields.map(|f| f.parse().with_context(|| format!("/proc/stat: {line}"))).collect::<Result<_, _>>()?;
            // user nice system idle iowait irq softirq steal ...
            let [user, nice, system, _idle, _iowait, irq, softirq, steal, ..] = ticks[..] else {
                bail!("/proc/stat: too few fields in {line}");
            };
            times.busy += user + nice + system + irq + softirq;
            times.steal += steal;
            seen.insert(cpu);
        }
        if let Some(missing) = cpus.and_then(|c| c.iter().find(|cpu| !seen.contains(cpu))) {
            bail!("/proc/stat has no line for CPU {missing}");
        }
        Ok(times)
    }

    /// Of the time these CPUs had work since `before`, the share the hypervisor took;
    /// `None` when they had none.
    pub fn steal_share_since(self, before: Self) -> Option<f64> {
        let busy = self.busy.saturating_sub(before.busy);
        let steal = self.steal.saturating_sub(before.steal);
        let wanted = busy + steal;
        (wanted > 0).then(|| steal as f64 / wanted as f64)
    }
}

/// Pin every thread of this process to `cpus`; threads started afterwards inherit it.
pub fn pin_self(cpus: &Cpus) -> anyhow::Result<()> {
    let set = cpus.to_cpu_set()?;
    let tasks = std::fs::read_dir("/proc/self/task").context("listing /proc/self/task")?;
    for task in tasks {
        let task = task.context("reading /proc/self/task")?;
        let Some(tid) = task.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else { continue };
        match sched_setaffinity(Pid::from_raw(tid), &set) {
            Ok(()) => {}
            // The thread ended between listing and pinning: nothing to pin.
            Err(nix::errno::Errno::ESRCH) => {}
            Err(error) => return Err(error).with_context(|| format!("pinning thread {tid} to CPUs {cpus}")),
        }
    }
    Ok(())
}

/// A placement preset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Preset {
    /// Load generator on CPU 0, the build on the others.
    Split,
    /// No pinning.
    Shared,
    /// `--load-cpus` and `--app-cpus` as given.
    Custom,
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Split => "split",
            Self::Shared => "shared",
            Self::Custom => "custom",
        })
    }
}

/// Where the generator and the build go: `None` means not pinned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The preset this came from.
    pub preset: Preset,
    /// CPUs of the load generator (this process).
    pub load: Option<Cpus>,
    /// CPUs of the build's processes and extsim.
    pub app: Option<Cpus>,
}

impl Plan {
    /// The plan for `preset` on this machine. `custom` needs both lists; the others refuse
    /// lists (a list given with `split` would silently be ignored otherwise).
    pub fn new(preset: Preset, load_cpus: Option<&str>, app_cpus: Option<&str>) -> anyhow::Result<Self> {
        Self::with_available(preset, load_cpus, app_cpus, &available()?)
    }

    fn with_available(
        preset: Preset,
        load_cpus: Option<&str>,
        app_cpus: Option<&str>,
        available: &Cpus,
    ) -> anyhow::Result<Self> {
        if preset != Preset::Custom && (load_cpus.is_some() || app_cpus.is_some()) {
            bail!("--load-cpus and --app-cpus go with the `custom` placement, not `{preset}`");
        }
        let check = |list: &str| -> anyhow::Result<Cpus> {
            let cpus = Cpus::parse(list)?;
            if let Some(cpu) = cpus.iter().find(|cpu| !available.0.contains(cpu)) {
                bail!("CPU {cpu} in {list:?} is not one this machine offers (available: {available})");
            }
            Ok(cpus)
        };
        match preset {
            Preset::Shared => Ok(Self { preset, load: None, app: None }),
            Preset::Split => {
                let mut cpus = available.iter();
                let Some(first) = cpus.next() else { bail!("no CPU available") };
                let rest: BTreeSet<usize> = cpus.collect();
                if rest.is_empty() {
                    bail!("`split` needs two CPUs; this process may use only CPU {first}: use `shared`");
                }
                Ok(Self { preset, load: Some(Cpus([first].into())), app: Some(Cpus(rest)) })
            }
            Preset::Custom => {
                let (Some(load), Some(app)) = (load_cpus, app_cpus) else {
                    bail!("the `custom` placement needs both --load-cpus and --app-cpus");
                };
                Ok(Self { preset, load: Some(check(load)?), app: Some(check(app)?) })
            }
        }
    }

    /// The app list as `taskset -c` takes it, for [`Supervisor::start_pinned`](crate::supervisor::Supervisor::start_pinned).
    pub fn app_list(&self) -> Option<String> {
        self.app.as_ref().map(Cpus::to_string)
    }
}

/// Where each party actually may run, read back from the processes: this process (the
/// generator), one of the build's processes (`app_pid`), the postmaster, one of the build's
/// PostgreSQL backends (`backend_pid`) and RabbitMQ's VM.
/// A party that cannot be found reads `"-"`.
pub fn observe(preset: Preset, app_pid: Option<u32>, backend_pid: Option<u32>) -> Placement {
    let read = |pid: Option<u32>| pid.and_then(|pid| cpus_allowed(pid).ok()).unwrap_or_else(|| "-".to_owned());
    let beam = cost::rabbitmq_pids()
        .into_iter()
        .find(|pid| std::fs::read_to_string(format!("/proc/{pid}/comm")).is_ok_and(|c| c.trim_end() == "beam.smp"));
    Placement {
        name: preset.to_string(),
        load_cpus: read(Some(std::process::id())),
        app_cpus: read(app_pid),
        postgres_cpus: read(cost::postgres_server_pids().first().copied()),
        postgres_backend_cpus: read(backend_pid),
        rabbitmq_cpus: read(beam),
    }
}

/// Keeps the PostgreSQL backends connected to a build's databases on that build's CPUs for
/// as long as it lives: one pass when started, then one every [`BackendPinner::PERIOD`] for
/// the connections a pool opens later. Each backend is pinned once; a backend that has ended
/// is skipped. Dropping it stops the passes (the backends end with their connections).
pub struct BackendPinner {
    task: tokio::task::JoinHandle<()>,
}

impl BackendPinner {
    /// How often the backends are listed again.
    pub const PERIOD: Duration = Duration::from_millis(250);

    /// Pin the backends of `databases` to `cpus` now, and keep pinning new ones. Fails if
    /// PostgreSQL cannot be asked or a backend cannot be moved (not the same user, and
    /// without `CAP_SYS_NICE`): a run that asked for a placement it cannot have says so.
    pub async fn start(admin_url: &str, databases: Vec<String>, cpus: &Cpus) -> anyhow::Result<Self> {
        let set = cpus.to_cpu_set()?;
        let mut conn = cost::admin(admin_url).await?;
        let mut pinned = BTreeSet::new();
        pin_backends(&mut conn, &databases, &set, &mut pinned).await?;
        let list = cpus.to_string();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Self::PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(error) = pin_backends(&mut conn, &databases, &set, &mut pinned).await {
                    eprintln!("archlab: no longer pinning PostgreSQL backends to CPUs {list}: {error:#}");
                    return;
                }
            }
        });
        Ok(Self { task })
    }
}

impl Drop for BackendPinner {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One pass of [`BackendPinner`]: pin every backend of `databases` not in `pinned`.
async fn pin_backends(
    conn: &mut sqlx::PgConnection,
    databases: &[String],
    set: &CpuSet,
    pinned: &mut BTreeSet<u32>,
) -> anyhow::Result<()> {
    let pids = cost::backends_on(conn, databases).await.context("listing the build's PostgreSQL backends")?;
    // A pid that ended may come back as another process: forget the ones not listed.
    pinned.retain(|pid| pids.contains(pid));
    for pid in pids {
        if pinned.contains(&pid) {
            continue;
        }
        let raw = i32::try_from(pid).with_context(|| format!("backend pid {pid} out of range"))?;
        match sched_setaffinity(Pid::from_raw(raw), set) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(error) => return Err(error).with_context(|| format!("pinning PostgreSQL backend {pid}")),
        }
        pinned.insert(pid);
    }
    Ok(())
}

/// The placement options `archlab compare` and `archlab trace-overhead` share.
#[derive(Debug, Clone, clap::Args)]
pub struct PlacementArgs {
    /// Where the load generator and the builds run: `split` puts the generator on the first
    /// CPU and each build (with extsim) on the others; `shared` pins nothing; `custom` takes
    /// `--load-cpus` and `--app-cpus`. When the build is pinned, so are its PostgreSQL
    /// backends; the postmaster and RabbitMQ are never moved, and the report records where
    /// each was allowed to run.
    #[arg(long, value_enum, default_value_t = Preset::Split)]
    pub placement: Preset,
    /// The generator's CPUs (`custom` only), as `taskset -c` lists them: `0`, `0-1`, `0,2`.
    #[arg(long, value_name = "CPUS")]
    pub load_cpus: Option<String>,
    /// The builds' CPUs (`custom` only).
    #[arg(long, value_name = "CPUS")]
    pub app_cpus: Option<String>,
}

impl PlacementArgs {
    /// Decide the placement and pin this process (the generator) to its CPUs; after this,
    /// the process sees only those.
    pub fn apply(&self) -> anyhow::Result<Plan> {
        let cpus = Plan::new(self.placement, self.load_cpus.as_deref(), self.app_cpus.as_deref())?;
        if let Some(load) = &cpus.load {
            pin_self(load).context("pinning the load generator")?;
        }
        Ok(cpus)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STAT: &str = "cpu  30 0 10 500 1 0 2 8 0 0
cpu0 10 0 4 300 1 0 1 2 0 0
cpu1 20 0 6 200 0 0 1 6 0 0
intr 12345
";

    #[test]
    fn cpu_times_add_up_only_the_cpus_asked_for_and_steal_is_a_share_of_the_wanted_time() -> anyhow::Result<()> {
        let one = Cpus::parse("1")?;
        assert_eq!(CpuTimes::parse(STAT, Some(&one))?, CpuTimes { busy: 27, steal: 6 });
        // The aggregate `cpu` line is not counted again on top of its CPUs.
        assert_eq!(CpuTimes::parse(STAT, None)?, CpuTimes { busy: 42, steal: 8 });
        let later = CpuTimes { busy: 27 + 30, steal: 6 + 10 };
        let share = later.steal_share_since(CpuTimes { busy: 27, steal: 6 }).context("had work")?;
        assert!((share - 0.25).abs() < 1e-12, "{share}");
        assert_eq!(later.steal_share_since(later), None);
        assert!(CpuTimes::parse(STAT, Some(&Cpus::parse("2")?)).is_err(), "CPU 2 has no line");
        assert!(CpuTimes::parse("cpu0 1 2 3\n", None).is_err(), "too few fields");
        Ok(())
    }

    fn cpus(list: &str) -> Vec<usize> {
        Cpus::parse(list).expect("parses").iter().collect()
    }

    #[test]
    fn lists_parse_as_taskset_spells_them() {
        assert_eq!(cpus("0"), [0]);
        assert_eq!(cpus("0-1"), [0, 1]);
        assert_eq!(cpus("0,1"), [0, 1]);
        assert_eq!(cpus(" 3 , 0-1,1 "), [0, 1, 3]);
        for bad in ["", "a", "1-", "-1", "2-1", "0,,1", "1.5", "99999"] {
            assert!(Cpus::parse(bad).is_err(), "{bad:?} parsed");
        }
        assert_eq!(Cpus::parse("0,1,2,5,7-8").expect("parses").to_string(), "0-2,5,7-8");
    }

    #[test]
    fn cpus_the_machine_lacks_are_refused() {
        let two = Cpus::parse("0-1").expect("parses");
        let err = Plan::with_available(Preset::Custom, Some("0"), Some("2"), &two).expect_err("CPU 2 refused");
        assert!(err.to_string().contains("CPU 2"), "{err}");
        let plan = Plan::with_available(Preset::Custom, Some("0"), Some("1"), &two).expect("fits");
        assert_eq!(plan.app_list().as_deref(), Some("1"));
        // This machine: its own CPU count plus one is never available.
        let beyond = available().expect("available").iter().max().expect("a CPU") + 1;
        assert!(Cpus::parse_available(&beyond.to_string()).is_err());
    }

    #[test]
    fn split_puts_the_generator_on_the_first_cpu_and_the_build_on_the_rest() {
        let four = Cpus::parse("0-3").expect("parses");
        let plan = Plan::with_available(Preset::Split, None, None, &four).expect("split");
        assert_eq!(plan.load.as_ref().map(Cpus::to_string).as_deref(), Some("0"));
        assert_eq!(plan.app_list().as_deref(), Some("1-3"));
        let one = Cpus::parse("0").expect("parses");
        assert!(Plan::with_available(Preset::Split, None, None, &one).is_err());
        assert!(Plan::with_available(Preset::Split, Some("0"), None, &four).is_err());
        assert_eq!(Plan::with_available(Preset::Shared, None, None, &four).expect("shared").app, None);
    }

    #[test]
    fn pinning_this_process_shows_in_cpus_allowed_and_reaches_new_threads() {
        // Affinity is per thread and the other tests share this process: pin, read, restore.
        let before = available().expect("available");
        let first = Cpus([before.iter().next().expect("a CPU")].into());
        pin_self(&first).expect("pin");
        let from_new_thread = std::thread::spawn(|| {
            let tid = nix::unistd::gettid();
            cpus_allowed_of_task(tid.as_raw())
        })
        .join()
        .expect("thread");
        let own = cpus_allowed(std::process::id()).expect("read");
        pin_self(&before).expect("restore");
        assert_eq!(own, first.to_string());
        assert_eq!(from_new_thread, first.to_string());
    }

    fn cpus_allowed_of_task(tid: i32) -> String {
        let status = std::fs::read_to_string(format!("/proc/self/task/{tid}/status")).expect("status");
        status.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).expect("line").trim().to_owned()
    }
}
