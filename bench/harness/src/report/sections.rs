//! The report's contents, section by section, as [`Block`]s: header, headline tables and
//! ratios, plots, then every figure behind them.

use super::Ratios;
use super::doc::{Block, table};
use super::format::{self, MISSING, ms, num, opt_num, pct, rate, tick, times};
use super::plots::{Plot, at_common};
use crate::model::{BuildResult, CompareReport, Cost, LoadReport, Offered, Percentiles};
use std::collections::BTreeMap;

/// The page title.
pub fn title(report: &CompareReport) -> String {
    let names: Vec<&str> = all_builds(report).iter().map(|b| b.name.as_str()).collect();
    if names.is_empty() {
        "archlab comparison (no builds measured)".to_string()
    } else {
        format!("archlab comparison: {}", names.join(" vs "))
    }
}

/// The builds, then the baseline if present.
fn all_builds(report: &CompareReport) -> Vec<&BuildResult> {
    report.builds.iter().chain(report.baseline.iter()).collect()
}

fn or_missing(s: &str) -> String {
    if s.trim().is_empty() { MISSING.to_string() } else { s.to_string() }
}

/// Every section, in reading order.
pub fn blocks(report: &CompareReport, plots: &[Plot]) -> Vec<Block> {
    let mut out = vec![Block::Heading(1, title(report))];
    out.extend(header(report));
    out.push(Block::Heading(2, "Headline".to_string()));
    out.extend(headline(report));
    out.push(Block::Heading(2, "Plots".to_string()));
    out.extend(plots.iter().map(|p| Block::Plot {
        file: p.file.to_string(),
        title: p.title.clone(),
        svg: p.svg.clone(),
    }));
    out.extend(goals(report));
    out.extend(steps(report));
    out.extend(common_rate(report));
    out.extend(user_runs(report));
    out.extend(coordinated_omission(report));
    out.extend(cost(report));
    out.extend(benches(report));
    out
}

fn header(report: &CompareReport) -> Vec<Block> {
    let m = &report.meta;
    let p = &m.placement;
    let memory = if m.memory_bytes == 0 {
        MISSING.to_string()
    } else {
        format!("{:.1} GiB", m.memory_bytes as f64 / (1u64 << 30) as f64)
    };
    let cores = if m.cores == 0 { MISSING.to_string() } else { m.cores.to_string() };
    let names: Vec<&str> = all_builds(report).iter().map(|b| b.name.as_str()).collect();
    let modes: Vec<String> =
        all_builds(report).iter().map(|b| format!("{} ({})", b.name, or_missing(&b.mode))).collect();
    let mut items = vec![
        format!(
            "Compared: {} — notification mode: {}",
            if names.is_empty() { "no builds".to_string() } else { names.join(", ") },
            if modes.is_empty() { MISSING.to_string() } else { modes.join(", ") }
        ),
        format!("Git revision: {}", or_missing(&m.git_revision)),
        format!("Started: {}", or_missing(&m.started_at)),
        format!(
            "Machine: {}, kernel {}, {}, {} cores, {} memory",
            or_missing(&m.hostname),
            or_missing(&m.kernel),
            or_missing(&m.cpu_model),
            cores,
            memory
        ),
        format!("Build profile: {}; run profile: {}", or_missing(&m.profile), or_missing(&m.profile_name)),
        format!(
            "CPU placement: {} — load generator on CPUs {}, application on CPUs {}, its PostgreSQL backends on {} (the postmaster on {}), RabbitMQ on {}",
            or_missing(&p.name),
            or_missing(&p.load_cpus),
            or_missing(&p.app_cpus),
            or_missing(&p.postgres_backend_cpus),
            or_missing(&p.postgres_cpus),
            or_missing(&p.rabbitmq_cpus)
        ),
        format!(
            "Hypervisor steal during the headline rounds (of the time the CPUs had work, the share given to other guests): {}",
            m.headline_steal.map_or_else(|| "not recorded".to_string(), |s| steal(&s))
        ),
        format!(
            "Objective: p99 ≤ {} ms and errors < {} of requests; saturation scenario: {}; common rate: {} req/s; think time (closed loop): {} ms",
            format::ms_f(report.objective_p99_ms),
            pct(report.error_budget),
            or_missing(&report.saturation_scenario),
            rate(report.common_rate_per_s),
            report.think_time_ms
        ),
    ];
    if m.settings.is_empty() {
        items.push("Settings that differ from the defaults: none recorded".to_string());
    } else {
        items.push(format!(
            "Settings that differ from the defaults: {}",
            m.settings.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
        ));
    }
    vec![Block::List(items), Block::Para("To run it again:".to_string()), Block::Code(or_missing(&m.command))]
}

/// The headline's latency percentiles of one build (p50, p90 and p99 are read): over every request of its headline runs
/// (`BuildResult::headline_latency`); in reports from before that was kept, the medians over
/// the runs, or the saturation scenario's one common-rate run from before there were several.
pub(crate) fn headline_latency(report: &CompareReport, b: &BuildResult) -> Option<Percentiles> {
    if let Some(pooled) = &b.headline_latency {
        return Some(*pooled);
    }
    if b.headline_runs.is_empty() {
        return at_common(b, &report.saturation_scenario).map(|r| r.latency);
    }
    let median = |f: fn(&LoadReport) -> u64| {
        let mut v: Vec<u64> = b.headline_runs.iter().map(f).collect();
        v.sort_unstable();
        let n = v.len();
        if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2 }
    };
    Some(Percentiles {
        p50_us: median(|r| r.latency.p50_us),
        p90_us: median(|r| r.latency.p90_us),
        p99_us: median(|r| r.latency.p99_us),
        ..Percentiles::default()
    })
}

/// The median throughput of one build's headline floods: the most it answered, measured
/// taking turns with the other builds. `None` without floods.
pub(crate) fn flooded(b: &BuildResult) -> Option<f64> {
    median(b.headline_floods.iter().map(|r| r.throughput_per_s).collect())
}

/// The median of `v` (the mean of the middle two for an even count); `None` when empty.
fn median(mut v: Vec<f64>) -> Option<f64> {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(v[n / 2]),
        _ => Some((v[n / 2 - 1] + v[n / 2]) / 2.0),
    }
}

fn cost_measured(c: &Cost) -> bool {
    *c != Cost::default()
}

fn cpu_total(c: &Cost) -> Option<f64> {
    let t = c.cpu_s_per_1k_app + c.cpu_s_per_1k_postgres + c.cpu_s_per_1k_rabbitmq;
    format::finite(t).filter(|t| *t > 0.0)
}

fn net_calls(c: &Cost) -> String {
    if c.network_calls_per_request.is_empty() {
        return MISSING.to_string();
    }
    let sum: f64 = c.network_calls_per_request.values().filter(|v| v.is_finite()).sum();
    let kinds: Vec<String> = c.network_calls_per_request.iter().map(|(k, v)| format!("{k} {}", num(*v, 2))).collect();
    format!("{} ({})", num(sum, 2), kinds.join(", "))
}

/// The headline: performance and cost, one row per build, then the micro/monolith ratios.
pub fn headline(report: &CompareReport) -> Vec<Block> {
    let builds = all_builds(report);
    if builds.is_empty() {
        return vec![Block::Para("No builds were measured.".to_string())];
    }
    let perf = builds
        .iter()
        .map(|b| {
            let (sat_rate, sat_tp, sat_p99) = match (&b.saturation, b.steps.is_empty()) {
                (Some(s), _) => (rate(s.rate_per_s), rate(s.throughput_per_s), ms(s.p99_us)),
                (None, true) => (MISSING.to_string(), MISSING.to_string(), MISSING.to_string()),
                (None, false) => ("none met the objective".to_string(), MISSING.to_string(), MISSING.to_string()),
            };
            let c = headline_latency(report, b);
            vec![
                b.name.clone(),
                or_missing(&b.mode),
                sat_rate,
                sat_tp,
                sat_p99,
                c.map_or_else(|| MISSING.to_string(), |c| ms(c.p50_us)),
                c.map_or_else(|| MISSING.to_string(), |c| ms(c.p99_us)),
                flooded(b).map_or_else(|| MISSING.to_string(), rate),
                b.users_at_objective.map_or_else(|| MISSING.to_string(), |u| u.to_string()),
            ]
        })
        .collect();
    let cost_rows = builds
        .iter()
        .map(|b| {
            let c = &b.cost;
            if !cost_measured(c) {
                let mut row = vec![b.name.clone()];
                row.extend(std::iter::repeat_n("not measured".to_string(), 10));
                return row;
            }
            vec![
                b.name.clone(),
                format!(
                    "{} / {} / {}",
                    num(c.cpu_s_per_1k_app, 3),
                    num(c.cpu_s_per_1k_postgres, 3),
                    num(c.cpu_s_per_1k_rabbitmq, 3)
                ),
                opt_num(cpu_total(c), 3),
                format!("{} / {}", format::mb(c.rss_idle_bytes), format::mb(c.rss_load_bytes)),
                c.processes.to_string(),
                format!("{} / {}", c.db_connections_idle, c.db_connections_load),
                net_calls(c),
                if c.startup_ms == 0 { MISSING.to_string() } else { c.startup_ms.to_string() },
                c.binaries.len().to_string(),
                format::mb(c.binaries_total_bytes),
                c.deploy_config_lines.to_string(),
            ]
        })
        .collect();
    let mut out = vec![
        Block::Para(format!(
            "Performance: open loop, {} scenario; saturation is the highest offered rate whose p99 stayed ≤ {} ms with errors < {}.",
            or_missing(&report.saturation_scenario),
            format::ms_f(report.objective_p99_ms),
            pct(report.error_budget)
        )),
        table(
            &[
                "build",
                "mode",
                "saturation rate (req/s)",
                "throughput there (req/s)",
                "p99 there (ms)",
                &format!("p50 at {} req/s (ms)", rate(report.common_rate_per_s)),
                &format!("p99 at {} req/s (ms)", rate(report.common_rate_per_s)),
                "flooded: most answered (req/s)",
                "users held at objective",
            ],
            perf,
        ),
        Block::Para("Cost under load (CPU-seconds per 1,000 requests: app / PostgreSQL / RabbitMQ).".to_string()),
        table(
            &[
                "build",
                "CPU-s/1k app / pg / rmq",
                "CPU-s/1k total",
                "RSS idle / load",
                "processes",
                "DB connections idle / load",
                "network calls per request (by kind)",
                "start-up (ms)",
                "binaries",
                "binaries total",
                "deploy config lines",
            ],
            cost_rows,
        ),
    ];
    let ratios = headline_ratios(report);
    if ratios.is_empty() {
        out.push(Block::Para(
            "Ratios micro / monolith: not available (needs a build named monolith and at least one other build)."
                .to_string(),
        ));
    } else {
        out.push(Block::Para(
            "Ratios micro / monolith (above 1.00× the microservices build has more of it). Where the run had \
             headline rounds, every ratio is the median of the round-by-round ratios, measured with every \
             build up at once and taking turns: throughput is the most each build answered when flooded \
             (the saturation scenario offered far above capacity), p50, p90 and CPU come from the runs at \
             the common rate, and p99 is the ratio of each build's p99 over every request of those runs. In a \
             report without rounds, throughput is the ratio of the saturation points' \
             throughputs:"
                .to_string(),
        ));
        out.push(table(
            &[
                "build",
                "throughput",
                "p50 at common rate",
                "p90 at common rate",
                "p99 at common rate",
                "CPU-s per 1k requests",
            ],
            ratios
                .iter()
                .map(|r| {
                    let mut row = vec![r.build.clone()];
                    row.extend(r.named().iter().map(|(_, v)| times(*v)));
                    row
                })
                .collect(),
        ));
    }
    out
}

/// The headline ratios of one report: micro/mono throughput, p50, p90 and p99 at the
/// common rate, CPU-seconds per 1k requests — one entry per microservices build.
pub fn headline_ratios(report: &CompareReport) -> Vec<Ratios> {
    let Some(mono) = report.builds.iter().find(|b| b.name == "monolith") else {
        return Vec::new();
    };
    let mono_common = headline_latency(report, mono);
    report
        .builds
        .iter()
        .filter(|b| b.name != "monolith")
        .map(|b| {
            if let Some(paired) = paired_ratios(b, mono) {
                return paired;
            }
            let c = headline_latency(report, b);
            let lat = |f: fn(Percentiles) -> u64| match (c, mono_common) {
                (Some(m), Some(o)) => format::ratio(f(m) as f64, f(o) as f64),
                _ => None,
            };
            Ratios {
                build: b.name.clone(),
                throughput: saturation_ratio(b, mono),
                p50_at_common_rate: lat(|c| c.p50_us),
                p90_at_common_rate: lat(|c| c.p90_us),
                p99_at_common_rate: lat(|c| c.p99_us),
                cpu_s_per_1k: match (cpu_total(&b.cost), cpu_total(&mono.cost)) {
                    (Some(m), Some(o)) => format::ratio(m, o),
                    _ => None,
                },
            }
        })
        .collect()
}

/// Micro/monolith throughput at the saturation points.
fn saturation_ratio(b: &BuildResult, mono: &BuildResult) -> Option<f64> {
    match (b.saturation, mono.saturation) {
        (Some(m), Some(o)) => format::ratio(m.throughput_per_s, o.throughput_per_s),
        // Nothing met the objective: the micro build held zero.
        (None, Some(_)) if !b.steps.is_empty() => Some(0.0),
        _ => None,
    }
}

/// The ratios from the headline rounds, when `b` and `mono` have the same number of them:
/// throughput (from the floods), p50, p90 and CPU, each the median of the round-by-round ratios,
/// so that what moved both builds within a round cancels; p99 the ratio of the two builds'
/// p99 over all their rounds' requests (a round's p99 says whether the machine stalled in
/// those seconds; the pooled one how often it stalls, which both builds' turns share).
/// Throughput falls back to the saturation points in a report from before there were
/// floods, p99 to the median of the round-by-round ratios in one from before the pooled
/// latency was kept. `None` for reports from before there were rounds.
fn paired_ratios(b: &BuildResult, mono: &BuildResult) -> Option<Ratios> {
    let rounds = RoundRatios::of(b, mono)?;
    // A round without a ratio (a zero figure): no median of the rest.
    let median = |v: &[f64]| if v.len() == rounds.rounds { median(v.to_vec()) } else { None };
    Some(Ratios {
        build: b.name.clone(),
        throughput: if rounds.throughput.is_empty() { saturation_ratio(b, mono) } else { median(&rounds.throughput) },
        p50_at_common_rate: median(&rounds.p50),
        p90_at_common_rate: median(&rounds.p90),
        p99_at_common_rate: match (&b.headline_latency, &mono.headline_latency) {
            (Some(m), Some(o)) => format::ratio(m.p99_us as f64, o.p99_us as f64),
            _ => median(&rounds.p99),
        },
        cpu_s_per_1k: median(&rounds.cpu),
    })
}

/// The ratios micro / monolith of each headline round, when `b` and `mono` have the same
/// number of rounds; a round whose ratio is undefined (a zero figure) is left out.
struct RoundRatios {
    rounds: usize,
    /// Empty when either build lacks a flood in some round.
    throughput: Vec<f64>,
    p50: Vec<f64>,
    p90: Vec<f64>,
    p99: Vec<f64>,
    cpu: Vec<f64>,
}

impl RoundRatios {
    fn of(b: &BuildResult, mono: &BuildResult) -> Option<Self> {
        let n = b.headline_runs.len();
        if n == 0
            || mono.headline_runs.len() != n
            || b.headline_cpu_s_per_1k.len() != n
            || mono.headline_cpu_s_per_1k.len() != n
        {
            return None;
        }
        let latency = |f: fn(&LoadReport) -> u64| -> Vec<f64> {
            b.headline_runs
                .iter()
                .zip(&mono.headline_runs)
                .filter_map(|(m, o)| format::ratio(f(m) as f64, f(o) as f64))
                .collect()
        };
        let floods = b.headline_floods.len() == n && mono.headline_floods.len() == n;
        Some(Self {
            rounds: n,
            throughput: if floods {
                b.headline_floods
                    .iter()
                    .zip(&mono.headline_floods)
                    .filter_map(|(m, o)| format::ratio(m.throughput_per_s, o.throughput_per_s))
                    .collect()
            } else {
                Vec::new()
            },
            p50: latency(|r| r.latency.p50_us),
            p90: latency(|r| r.latency.p90_us),
            p99: latency(|r| r.latency.p99_us),
            cpu: b
                .headline_cpu_s_per_1k
                .iter()
                .zip(&mono.headline_cpu_s_per_1k)
                .filter_map(|(m, o)| format::ratio(*m, *o))
                .collect(),
        })
    }

    /// The round-by-round ratios behind the headline ratio named `name` (one of
    /// [`Ratios::NAMES`]; nothing for another name).
    fn named(&self, name: &str) -> &[f64] {
        let rounds = [&self.throughput, &self.p50, &self.p90, &self.p99, &self.cpu];
        Ratios::NAMES.iter().zip(rounds).find(|(n, _)| **n == name).map_or(&[], |(_, v)| v.as_slice())
    }
}

/// Each run's ratios, their spread and the verdict.
pub fn reproducibility(reports: &[CompareReport], tolerance: f64) -> Vec<Block> {
    let tol = if tolerance.is_finite() && tolerance >= 0.0 { tolerance } else { 0.0 };
    let per_run: Vec<Vec<Ratios>> = reports.iter().map(headline_ratios).collect();
    // Columns: every (build, ratio) seen in any run, in first-seen order.
    let mut columns: Vec<(String, &'static str)> = Vec::new();
    for run in &per_run {
        for r in run {
            for (name, _) in r.named() {
                let key = (r.build.clone(), name);
                if !columns.contains(&key) {
                    columns.push(key);
                }
            }
        }
    }
    let value = |run: &[Ratios], (build, name): &(String, &str)| -> Option<f64> {
        run.iter().find(|r| &r.build == build)?.named().iter().find(|(n, _)| n == name)?.1
    };
    let mut head: Vec<String> = vec!["run".to_string()];
    head.extend(columns.iter().map(|(b, n)| format!("{b}: {n}")));
    let mut rows: Vec<Vec<String>> = reports
        .iter()
        .zip(&per_run)
        .enumerate()
        .map(|(i, (rep, run))| {
            let mut row = vec![format!(
                "{} ({}, {})",
                i + 1,
                or_missing(&rep.meta.git_revision),
                or_missing(&rep.meta.started_at)
            )];
            row.extend(columns.iter().map(|c| times(value(run, c))));
            row
        })
        .collect();
    let mut spread_row = vec!["spread (max−min)/mean".to_string()];
    let mut verdict_row = vec![format!("spread at most {}", pct(tol))];
    let mut all_agree = reports.len() >= 2 && !columns.is_empty();
    for c in &columns {
        let values: Vec<f64> = per_run.iter().filter_map(|run| value(run, c)).collect();
        let spread = spread(&values);
        let ok = values.len() == reports.len() && spread.is_some_and(|s| s <= tol);
        all_agree &= ok;
        spread_row.push(spread.map_or_else(|| MISSING.to_string(), pct));
        verdict_row.push(if values.len() < reports.len() {
            "no (missing in some runs)".to_string()
        } else if ok {
            "yes".to_string()
        } else {
            "no".to_string()
        });
    }
    // The machine's state beside each run's ratios: not a ratio, so neither spread nor judged.
    head.push("hypervisor steal in the headline rounds (application CPUs / generator's)".to_string());
    for (row, rep) in rows.iter_mut().zip(reports) {
        let shares = |s: crate::model::Steal| format!("{} / {}", pct(s.app_cpus), pct(s.load_cpus));
        row.push(rep.meta.headline_steal.map_or_else(|| MISSING.to_string(), shares));
    }
    spread_row.push(String::new());
    verdict_row.push(String::new());
    rows.push(spread_row);
    rows.push(verdict_row);
    let scatter = columns.iter().map(|c| round_scatter(reports, c)).collect::<Vec<_>>();
    // The scatter rows and their paragraph: with rounds to read and a known expected range.
    let expected_range = expected_range_of(reports.len()).filter(|_| scatter.iter().any(Option::is_some));
    if let Some(d) = expected_range {
        let mut sd_row = vec!["round-to-round scatter (standard deviation of the log ratio)".to_string()];
        let mut need_row = vec![format!("rounds per run for an expected spread ≤ {} (independent rounds)", pct(tol))];
        for sd in &scatter {
            sd_row.push(sd.map_or_else(|| MISSING.to_string(), |sd| num(sd, 3)));
            need_row.push(match sd {
                Some(sd) if tol > 0.0 => ((d * sd / tol).powi(2).ceil() as u64).max(1).to_string(),
                _ => MISSING.to_string(),
            });
        }
        sd_row.push(String::new());
        need_row.push(String::new());
        rows.push(sd_row);
        rows.push(need_row);
    }
    let verdict = if reports.len() < 2 {
        format!("Verdict: not enough runs ({} of at least 2).", reports.len())
    } else if columns.is_empty() {
        "Verdict: no ratios to compare (no monolith or no microservices build measured).".to_string()
    } else if all_agree {
        format!("Verdict: yes — every ratio spreads at most {} across {} runs.", pct(tol), reports.len())
    } else {
        format!("Verdict: no — at least one ratio spreads more than {} across {} runs.", pct(tol), reports.len())
    };
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let mut out = vec![Block::Heading(2, "Reproducibility".to_string()), table(&head_refs, rows), Block::Para(verdict)];
    if let Some(d) = expected_range {
        let mut counts: Vec<usize> = reports
            .iter()
            .filter_map(|r| r.builds.iter().find(|b| b.name == "monolith"))
            .map(|mono| mono.headline_runs.len())
            .filter(|n| *n > 0)
            .collect();
        counts.sort_unstable();
        counts.dedup();
        let had = counts.iter().map(ToString::to_string).collect::<Vec<_>>().join(" or ");
        out.push(Block::Para(format!(
            "The last two rows read the rounds themselves. The scatter is how much each ratio moved from one \
             round to the next within a run: the standard deviation of its logarithm, over the runs' rounds \
             together. A run's ratio rests on all its rounds, so if rounds were independent draws of that \
             scatter, {k} runs of n rounds would spread by about {d:.3} × scatter / √n (the expected range of \
             {k} normal draws, in standard errors); the last row is the n that brings this to {tol} (for a mean of \
             the logarithms; the medians the ratios use need about π/2 times as many). The runs \
             here had {had} rounds each. A ratio whose runs spread more than its scatter predicts moved with \
             the machine over many rounds, which more rounds of the same run do not average away.",
            k = reports.len(),
            tol = pct(tol),
        )));
    }
    out
}

/// The expected range of `k` independent draws of a standard normal (`d2` of control
/// charts), for `k` from 2 to 10; `None` outside that.
fn expected_range_of(k: usize) -> Option<f64> {
    const D2: [f64; 9] = [1.128, 1.693, 2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078];
    k.checked_sub(2).and_then(|i| D2.get(i)).copied()
}

/// The round-to-round scatter of the ratio `(build, name)` over every report with rounds:
/// the standard deviation of the logarithm of its round-by-round values, pooled over the
/// reports (each about its own mean). `None` with fewer than two rounds anywhere.
fn round_scatter(reports: &[CompareReport], (build, name): &(String, &str)) -> Option<f64> {
    let (mut squares, mut freedom) = (0.0, 0usize);
    for report in reports {
        let mono = report.builds.iter().find(|b| b.name == "monolith");
        let micro = report.builds.iter().find(|b| &b.name == build);
        let Some(rounds) = mono.zip(micro).and_then(|(o, m)| RoundRatios::of(m, o)) else {
            continue;
        };
        let logs: Vec<f64> = rounds.named(name).iter().filter(|v| **v > 0.0).map(|v| v.ln()).collect();
        if logs.len() < 2 {
            continue;
        }
        let mean = logs.iter().sum::<f64>() / logs.len() as f64;
        squares += logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>();
        freedom += logs.len() - 1;
    }
    (freedom > 0).then(|| (squares / freedom as f64).sqrt()).and_then(format::finite)
}

/// Steal on the builds' CPUs and on the generator's.
fn steal(s: &crate::model::Steal) -> String {
    format!("{} on the application CPUs, {} on the load generator's", pct(s.app_cpus), pct(s.load_cpus))
}

/// (max − min) / mean of `values`, `None` for fewer than one value or a mean that is not
/// positive.
pub fn spread(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let min = values.iter().copied().fold(f64::INFINITY, f64::min);
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    format::ratio(max - min, mean)
}

fn errors(e: &BTreeMap<String, u64>) -> String {
    if e.is_empty() {
        "none".to_string()
    } else {
        e.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join(", ")
    }
}

/// The first number in `s` that stands on its own: digits with an optional decimal point,
/// not glued to a word before it (`p99`) or to letters after it (`1k`).
fn first_number(s: &str) -> Option<f64> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        let (at, c) = chars[i];
        let glued_before = i > 0 && (chars[i - 1].1.is_alphanumeric() || chars[i - 1].1 == '.');
        if !c.is_ascii_digit() || glued_before {
            i += 1;
            continue;
        }
        let mut j = i;
        while j < chars.len() && (chars[j].1.is_ascii_digit() || chars[j].1 == '.') {
            j += 1;
        }
        let end = chars.get(j).map_or(s.len(), |(e, _)| *e);
        let glued_after = chars.get(j).is_some_and(|(_, c)| c.is_ascii_alphabetic());
        if !glued_after && let Some(x) = s[at..end].trim_end_matches('.').parse().ok().and_then(format::finite) {
            return Some(x);
        }
        i = j;
    }
    None
}

/// How far a missed goal fell short, when its target reads `≥ N…` or `≤ N…` and its
/// measurement starts with a number in the same unit: `0.40 (44.44 %) below` or
/// `12.0 (24.00 %) above`. `None` when the words do not say enough to compute it.
pub fn missed_by(target: &str, measured: &str) -> Option<String> {
    let (at, above) = ["≥", ">=", ">", "≤", "<=", "<"]
        .iter()
        .filter_map(|sign| target.find(sign).map(|i| (i + sign.len(), sign.contains('>') || sign.contains('≥'))))
        .min_by_key(|(i, _)| *i)?;
    let required = first_number(&target[at..])?;
    let got = first_number(measured)?;
    let (gap, side) = if above { (required - got, "below") } else { (got - required, "above") };
    if gap <= 0.0 {
        return None;
    }
    let share = format::ratio(gap, required).map_or_else(String::new, |r| format!(" ({})", pct(r)));
    Some(format!("{}{share} {side}", num(gap, 2)))
}

fn goals(report: &CompareReport) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Goals".to_string())];
    if report.goals.is_empty() {
        out.push(Block::Para("No goals were stated for this run.".to_string()));
        return out;
    }
    let met = report.goals.iter().filter(|g| g.met).count();
    let missed: Vec<String> = report
        .goals
        .iter()
        .filter(|g| !g.met)
        .map(|g| format!("{} (required {}, measured {})", g.name, g.target, g.measured))
        .collect();
    out.push(Block::Para(if missed.is_empty() {
        format!("All {} goals met.", report.goals.len())
    } else {
        format!("{met} of {} goals met. Missed: {}.", report.goals.len(), missed.join("; "))
    }));
    out.push(table(
        &["goal", "target", "measured", "met", "missed by"],
        report
            .goals
            .iter()
            .map(|g| {
                vec![
                    g.name.clone(),
                    g.target.clone(),
                    g.measured.clone(),
                    format!("{} {}", tick(g.met), if g.met { "met" } else { "missed" }),
                    if g.met {
                        String::new()
                    } else {
                        missed_by(&g.target, &g.measured).unwrap_or_else(|| MISSING.to_string())
                    },
                ]
            })
            .collect(),
    ));
    out
}

fn steps(report: &CompareReport) -> Vec<Block> {
    let mut out = vec![Block::Heading(
        2,
        format!("Saturation search: every step ({}, open loop)", or_missing(&report.saturation_scenario)),
    )];
    let builds = all_builds(report);
    if builds.is_empty() {
        out.push(Block::Para("not measured".to_string()));
    }
    for b in builds {
        let targets: Vec<&str> = b.steps.iter().map(|s| s.report.target.as_str()).filter(|t| !t.is_empty()).collect();
        let mut targets_unique = targets.clone();
        targets_unique.dedup();
        out.push(Block::Heading(
            3,
            if targets_unique.is_empty() {
                b.name.clone()
            } else {
                format!("{} — {}", b.name, targets_unique.join(", "))
            },
        ));
        if b.steps.is_empty() {
            out.push(Block::Para("not measured".to_string()));
            continue;
        }
        out.push(table(
            &[
                "offered (req/s)",
                "achieved (req/s)",
                "p50 (ms)",
                "p90 (ms)",
                "p99 (ms)",
                "p99.9 (ms)",
                "max (ms)",
                "error rate",
                "errors by cause",
                "unsent",
                "within objective",
            ],
            b.steps
                .iter()
                .map(|s| {
                    let r = &s.report;
                    let l = r.latency;
                    vec![
                        rate(s.rate_per_s),
                        rate(r.throughput_per_s),
                        ms(l.p50_us),
                        ms(l.p90_us),
                        ms(l.p99_us),
                        ms(l.p999_us),
                        ms(l.max_us),
                        pct(r.error_rate()),
                        errors(&r.errors),
                        r.unsent.to_string(),
                        tick(s.within_objective).to_string(),
                    ]
                })
                .collect(),
        ));
    }
    out
}

fn offered(o: &Offered) -> String {
    match o {
        Offered::Open { rate_per_s } => format!("open {} req/s", rate(*rate_per_s)),
        Offered::Closed { users, think_time_ms } => format!("closed {users} users, think {think_time_ms} ms"),
    }
}

fn common_rate(report: &CompareReport) -> Vec<Block> {
    let mut out =
        vec![Block::Heading(2, format!("Each scenario at the common rate ({} req/s)", rate(report.common_rate_per_s)))];
    let mut rows = Vec::new();
    let mut step_rows = Vec::new();
    for b in all_builds(report) {
        for r in &b.at_common_rate {
            let l = r.latency;
            rows.push(vec![
                b.name.clone(),
                r.scenario.clone(),
                offered(&r.offered),
                rate(r.throughput_per_s),
                r.requests.to_string(),
                ms(l.p50_us),
                ms(l.p90_us),
                ms(l.p99_us),
                ms(l.p999_us),
                ms(l.max_us),
                pct(r.error_rate()),
                errors(&r.errors),
                r.unsent.to_string(),
            ]);
            for (step, p) in &r.by_step {
                step_rows.push(vec![
                    b.name.clone(),
                    r.scenario.clone(),
                    step.clone(),
                    p.count.to_string(),
                    ms(p.p50_us),
                    ms(p.p90_us),
                    ms(p.p99_us),
                    ms(p.p999_us),
                    ms(p.max_us),
                ]);
            }
        }
    }
    out.push(table(
        &[
            "build",
            "scenario",
            "offered",
            "achieved (req/s)",
            "requests",
            "p50 (ms)",
            "p90 (ms)",
            "p99 (ms)",
            "p99.9 (ms)",
            "max (ms)",
            "error rate",
            "errors by cause",
            "unsent",
        ],
        rows,
    ));
    out.push(Block::Heading(3, "By step".to_string()));
    if step_rows.is_empty() {
        out.push(Block::Para("not measured".to_string()));
    } else {
        out.push(table(
            &["build", "scenario", "step", "count", "p50 (ms)", "p90 (ms)", "p99 (ms)", "p99.9 (ms)", "max (ms)"],
            step_rows,
        ));
    }
    out
}

fn user_runs(report: &CompareReport) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, format!("Closed-loop users (think time {} ms)", report.think_time_ms))];
    let objective_us = report.objective_p99_ms * 1000.0;
    let mut rows = Vec::new();
    for b in all_builds(report) {
        for r in &b.user_runs {
            let users = match r.offered {
                Offered::Closed { users, .. } => users.to_string(),
                Offered::Open { .. } => r.connections.to_string(),
            };
            let ok = (r.latency.p99_us as f64) <= objective_us && r.error_rate() < report.error_budget;
            rows.push(vec![
                b.name.clone(),
                r.scenario.clone(),
                users,
                rate(r.throughput_per_s),
                ms(r.latency.p50_us),
                ms(r.latency.p99_us),
                pct(r.error_rate()),
                tick(ok).to_string(),
            ]);
        }
    }
    let held: Vec<String> = all_builds(report)
        .iter()
        .map(|b| format!("{} {}", b.name, b.users_at_objective.map_or_else(|| MISSING.to_string(), |u| u.to_string())))
        .collect();
    if rows.is_empty() {
        out.push(Block::Para("not measured".to_string()));
        return out;
    }
    out.push(Block::Para(format!("Most users held at the objective: {}.", held.join(", "))));
    out.push(table(
        &["build", "scenario", "users", "throughput (req/s)", "p50 (ms)", "p99 (ms)", "error rate", "within objective"],
        rows,
    ));
    out
}

fn coordinated_omission(report: &CompareReport) -> Vec<Block> {
    let mut out = vec![
        Block::Heading(2, "Coordinated omission: latency vs service time".to_string()),
        Block::Para(
            "Latency is measured from each request's intended send time, service time from its actual send, as a closed-loop tool would. Where they part, the generator or the server fell behind and a closed-loop measurement would have hidden the wait."
                .to_string(),
        ),
    ];
    let mut rows = Vec::new();
    for b in all_builds(report) {
        for s in &b.steps {
            let r = &s.report;
            rows.push(vec![
                b.name.clone(),
                rate(s.rate_per_s),
                ms(r.latency.p50_us),
                ms(r.service_time.p50_us),
                ms(r.latency.p99_us),
                ms(r.service_time.p99_us),
                times(format::ratio(r.latency.p99_us as f64, r.service_time.p99_us as f64)),
            ]);
        }
    }
    out.push(table(
        &[
            "build",
            "offered (req/s)",
            "latency p50 (ms)",
            "service time p50 (ms)",
            "latency p99 (ms)",
            "service time p99 (ms)",
            "p99 latency / service time",
        ],
        rows,
    ));
    out
}

fn cost(report: &CompareReport) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Cost, side by side".to_string())];
    let builds = all_builds(report);
    if builds.is_empty() {
        out.push(Block::Para("not measured".to_string()));
        return out;
    }
    let mut kinds: Vec<&String> = builds.iter().flat_map(|b| b.cost.network_calls_per_request.keys()).collect();
    kinds.sort();
    kinds.dedup();
    let cell = |b: &BuildResult, f: &dyn Fn(&Cost) -> String| {
        if cost_measured(&b.cost) { f(&b.cost) } else { "not measured".to_string() }
    };
    type Row<'a> = (String, Box<dyn Fn(&Cost) -> String + 'a>);
    let mut metrics: Vec<Row<'_>> = vec![
        ("processes".to_string(), Box::new(|c: &Cost| c.processes.to_string())),
        (
            "binaries".to_string(),
            Box::new(|c: &Cost| {
                if c.binaries.is_empty() {
                    MISSING.to_string()
                } else {
                    c.binaries.iter().map(|(n, s)| format!("{n} {}", format::mb(*s))).collect::<Vec<_>>().join(", ")
                }
            }),
        ),
        ("binaries total".to_string(), Box::new(|c: &Cost| format::mb(c.binaries_total_bytes))),
        ("RSS idle".to_string(), Box::new(|c: &Cost| format::mb(c.rss_idle_bytes))),
        ("RSS under load".to_string(), Box::new(|c: &Cost| format::mb(c.rss_load_bytes))),
        ("CPU-s per 1k requests, app".to_string(), Box::new(|c: &Cost| num(c.cpu_s_per_1k_app, 3))),
        ("CPU-s per 1k requests, PostgreSQL".to_string(), Box::new(|c: &Cost| num(c.cpu_s_per_1k_postgres, 3))),
        ("CPU-s per 1k requests, RabbitMQ".to_string(), Box::new(|c: &Cost| num(c.cpu_s_per_1k_rabbitmq, 3))),
        ("CPU-s per 1k requests, total".to_string(), Box::new(|c: &Cost| opt_num(cpu_total(c), 3))),
        ("DB connections idle".to_string(), Box::new(|c: &Cost| c.db_connections_idle.to_string())),
        ("DB connections under load".to_string(), Box::new(|c: &Cost| c.db_connections_load.to_string())),
        (
            "network calls per request, total".to_string(),
            Box::new(|c: &Cost| {
                if c.network_calls_per_request.is_empty() {
                    MISSING.to_string()
                } else {
                    num(c.network_calls_per_request.values().filter(|v| v.is_finite()).sum(), 2)
                }
            }),
        ),
    ];
    for k in kinds {
        metrics.push((
            format!("network calls per request, {k}"),
            Box::new(move |c: &Cost| {
                c.network_calls_per_request.get(k).map_or_else(|| "0".to_string(), |v| num(*v, 2))
            }),
        ));
    }
    metrics.push((
        "start-up to ready (ms)".to_string(),
        Box::new(|c: &Cost| if c.startup_ms == 0 { MISSING.to_string() } else { c.startup_ms.to_string() }),
    ));
    metrics.push(("deploy config lines".to_string(), Box::new(|c: &Cost| c.deploy_config_lines.to_string())));
    metrics.push((
        "deploy config files".to_string(),
        Box::new(
            |c: &Cost| {
                if c.deploy_config_files.is_empty() { MISSING.to_string() } else { c.deploy_config_files.join(", ") }
            },
        ),
    ));
    let mut head = vec!["metric".to_string()];
    head.extend(builds.iter().map(|b| b.name.clone()));
    let head_refs: Vec<&str> = head.iter().map(String::as_str).collect();
    let rows = metrics
        .iter()
        .map(|(name, f)| {
            let mut row = vec![name.clone()];
            row.extend(builds.iter().map(|b| cell(b, f.as_ref())));
            row
        })
        .collect();
    out.push(table(&head_refs, rows));
    out
}

fn benches(report: &CompareReport) -> Vec<Block> {
    let mut out = vec![Block::Heading(2, "Micro-benchmarks (criterion)".to_string())];
    if report.benches.is_empty() {
        out.push(Block::Para("not measured".to_string()));
        return out;
    }
    out.push(Block::Para(
        "Mean time per iteration with criterion's 95 % confidence interval; the last column compares each entry with the first of its group."
            .to_string(),
    ));
    let group_of = |id: &str| id.split_once('/').map_or(id, |(g, _)| g).to_string();
    let mut groups: Vec<String> = Vec::new();
    for b in &report.benches {
        let g = group_of(&b.id);
        if !groups.contains(&g) {
            groups.push(g);
        }
    }
    let mut rows = Vec::new();
    for g in &groups {
        let members: Vec<_> = report.benches.iter().filter(|b| &group_of(&b.id) == g).collect();
        let first = members.first().map(|b| b.mean_ns);
        for b in &members {
            rows.push(vec![
                g.clone(),
                b.id.clone(),
                format::ns(b.mean_ns),
                format!("{} – {}", format::ns(b.lower_ns), format::ns(b.upper_ns)),
                if members.len() > 1 {
                    times(first.and_then(|f| format::ratio(b.mean_ns, f)))
                } else {
                    MISSING.to_string()
                },
            ]);
        }
    }
    out.push(table(&["group", "id", "mean", "95 % CI", "vs first in group"], rows));
    out
}
