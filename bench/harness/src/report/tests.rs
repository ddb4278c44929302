//! Tests of the report renderers on synthetic reports built here.

use super::*;
use crate::model::{
    BenchFigure, BuildResult, CompareReport, Cost, Goal, LoadReport, Offered, Percentiles, Placement, RunMeta,
    Saturation, Step,
};
use std::collections::BTreeMap;

/// Percentiles around a p50 of `p50_ms`, with a p99 of `p99_ms`.
fn percentiles(p50_ms: f64, p99_ms: f64) -> Percentiles {
    let us = |ms: f64| (ms * 1000.0) as u64;
    Percentiles {
        count: 1000,
        mean_us: p50_ms * 1100.0,
        p50_us: us(p50_ms),
        p90_us: us((p50_ms + p99_ms) / 2.0),
        p99_us: us(p99_ms),
        p999_us: us(p99_ms * 1.5),
        max_us: us(p99_ms * 2.0),
    }
}

fn load(scenario: &str, target: &str, rate: f64, achieved: f64, p50_ms: f64, p99_ms: f64) -> LoadReport {
    let requests = (achieved * 10.0) as u64;
    LoadReport {
        sent_total: 0,
        scenario: scenario.to_string(),
        target: target.to_string(),
        offered: Offered::Open { rate_per_s: rate },
        connections: 32,
        warmup_s: 2.0,
        duration_s: 10.0,
        requests,
        ok: requests,
        errors: BTreeMap::new(),
        unsent: 0,
        throughput_per_s: achieved,
        latency: percentiles(p50_ms, p99_ms),
        service_time: percentiles(p50_ms * 0.9, p99_ms * 0.6),
        by_step: BTreeMap::from([(scenario.to_string(), percentiles(p50_ms, p99_ms))]),
    }
}

/// A build that saturates at `sat` req/s, with `p50_ms`/`p99_ms` at the common rate and
/// `cpu_app` CPU-seconds per 1k requests.
fn build(name: &str, sat: f64, p50_ms: f64, p99_ms: f64, cpu_app: f64) -> BuildResult {
    let target = "http://127.0.0.1:8080";
    let steps = [0.25, 0.5, 1.0, 1.5]
        .iter()
        .map(|f| {
            let rate = sat * f;
            let over = *f > 1.0;
            let mut report = load(
                "browse",
                target,
                rate,
                if over { sat * 1.1 } else { rate },
                p50_ms * f,
                p99_ms * f * if over { 20.0 } else { 1.0 },
            );
            if over {
                report.errors.insert("503".to_string(), 7);
                report.ok -= 7;
                report.unsent = 40;
            }
            Step { rate_per_s: rate, report, within_objective: !over }
        })
        .collect();
    BuildResult {
        name: name.to_string(),
        mode: "async".to_string(),
        max_throughput: Vec::new(),
        steps,
        saturation: Some(Saturation {
            rate_per_s: sat,
            throughput_per_s: sat,
            p99_us: (p99_ms * 1000.0) as u64,
            error_rate: 0.0,
        }),
        at_common_rate: ["browse", "login", "purchase"]
            .iter()
            .map(|s| load(s, target, 100.0, 100.0, p50_ms, p99_ms))
            .collect(),
        headline_runs: Vec::new(),
        headline_cpu_s_per_1k: Vec::new(),
        headline_floods: Vec::new(),
        headline_latency: None,
        user_runs: vec![LoadReport {
            offered: Offered::Closed { users: 50, think_time_ms: 1000 },
            ..load("mixed", target, 0.0, 48.0, p50_ms, p99_ms)
        }],
        users_at_objective: Some(50),
        cost: Cost {
            processes: if name == "monolith" { 1 } else { 5 },
            binaries: BTreeMap::from([(name.to_string(), 12_000_000)]),
            binaries_total_bytes: 12_000_000,
            rss_idle_bytes: 30_000_000,
            rss_load_bytes: 60_000_000,
            cpu_s_per_1k_app: cpu_app,
            cpu_s_per_1k_postgres: 0.2,
            cpu_s_per_1k_rabbitmq: 0.0,
            db_connections_idle: 2,
            db_connections_load: 10,
            network_calls_per_request: BTreeMap::from([("database".to_string(), 3.0)]),
            startup_ms: 400,
            deploy_config_lines: 20,
            deploy_config_files: vec!["deploy/compose/monolith.yml".to_string()],
        },
    }
}

fn fixture() -> CompareReport {
    CompareReport {
        meta: RunMeta {
            git_revision: "abc123".to_string(),
            started_at: "2026-01-01T00:00:00Z".to_string(),
            hostname: "lab".to_string(),
            kernel: "6.1.0".to_string(),
            cpu_model: "Test CPU".to_string(),
            cores: 2,
            memory_bytes: 8 << 30,
            profile: "release".to_string(),
            profile_name: "quick".to_string(),
            placement: Placement {
                name: "split".to_string(),
                load_cpus: "1".to_string(),
                app_cpus: "0".to_string(),
                postgres_cpus: "0-1".to_string(),
                rabbitmq_cpus: "0-1".to_string(),
                postgres_backend_cpus: "0".to_string(),
            },
            command: "archlab compare --profile quick".to_string(),
            settings: BTreeMap::from([("ABUSE_LIMITS".to_string(), "off".to_string())]),
            headline_steal: None,
        },
        objective_p99_ms: 50.0,
        error_budget: 0.01,
        saturation_scenario: "browse".to_string(),
        common_rate_per_s: 100.0,
        think_time_ms: 1000,
        builds: vec![
            build("monolith", 1000.0, 2.0, 10.0, 0.5),
            build("micro-grpc", 500.0, 5.0, 30.0, 1.5),
            build("micro-http", 400.0, 6.0, 40.0, 2.0),
        ],
        baseline: Some(build("baseline", 2000.0, 1.0, 4.0, 0.25)),
        goals: vec![
            Goal {
                name: "throughput".into(), target: "≥ 0.90× baseline".into(), measured: "0.50×".into(), met: false
            },
            Goal { name: "startup".into(), target: "≤ 2 s".into(), measured: "0.4 s".into(), met: true },
        ],
        benches: vec![
            BenchFigure { id: "hop/in_process".into(), mean_ns: 50.0, lower_ns: 48.0, upper_ns: 52.0 },
            BenchFigure { id: "hop/grpc".into(), mean_ns: 50_000.0, lower_ns: 49_000.0, upper_ns: 51_000.0 },
            BenchFigure { id: "serialize".into(), mean_ns: 2_500_000.0, lower_ns: 2_400_000.0, upper_ns: 2_600_000.0 },
        ],
    }
}

fn empty() -> CompareReport {
    CompareReport {
        meta: RunMeta::default(),
        objective_p99_ms: 0.0,
        error_budget: 0.0,
        saturation_scenario: String::new(),
        common_rate_per_s: 0.0,
        think_time_ms: 0,
        builds: Vec::new(),
        baseline: None,
        goals: Vec::new(),
        benches: Vec::new(),
    }
}

/// A fresh directory under the system's temporary directory, removed on drop.
struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("archlab-report-test-{:016x}", rand::random::<u64>())))
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn assert_no_nan(name: &str, text: &str) {
    assert!(!text.contains("NaN"), "{name} contains NaN");
    assert!(!text.contains("inf"), "{name} contains inf");
}

#[test]
fn headline_ratios_divide_micro_by_monolith() {
    let ratios = headline_ratios(&fixture());
    assert_eq!(ratios.iter().map(|r| r.build.as_str()).collect::<Vec<_>>(), ["micro-grpc", "micro-http"]);
    let grpc = &ratios[0];
    assert_eq!(grpc.throughput, Some(0.5));
    assert_eq!(grpc.p50_at_common_rate, Some(2.5));
    assert_eq!(grpc.p99_at_common_rate, Some(3.0));
    // p90s (the fixture's, halfway between p50 and p99): 17.5 ms over 6 ms.
    let p90 = grpc.p90_at_common_rate.unwrap_or(f64::NAN);
    assert!((p90 - 17.5 / 6.0).abs() < 1e-9, "p90 ratio {p90}");
    // (1.5 + 0.2) / (0.5 + 0.2): app, PostgreSQL and RabbitMQ together.
    let cpu = grpc.cpu_s_per_1k.unwrap_or(f64::NAN);
    assert!((cpu - 1.7 / 0.7).abs() < 1e-9, "cpu ratio {cpu}");
    assert_eq!(ratios[1].throughput, Some(0.4));
}

#[test]
fn headline_latency_is_the_median_of_the_headline_runs() {
    let mut r = fixture();
    let target = r.builds[1].at_common_rate[0].target.clone();
    // micro-grpc's three runs: one stalled (p99 80 ms); the medians are p50 5 ms, p99 35 ms.
    r.builds[1].headline_runs = [(5.0, 30.0), (4.0, 80.0), (6.0, 35.0)]
        .iter()
        .map(|&(p50, p99)| load("browse", &target, 100.0, 100.0, p50, p99))
        .collect();
    let grpc = &headline_ratios(&r)[0];
    // The monolith has no headline runs: its one common-rate run (p50 2 ms, p99 10 ms).
    assert_eq!(grpc.p50_at_common_rate, Some(2.5), "median p50 5 ms over the monolith's 2 ms");
    assert_eq!(grpc.p99_at_common_rate, Some(3.5), "median p99 35 ms, not the stalled run's 80");
}

#[test]
fn headline_ratios_from_rounds_are_medians_of_round_by_round_ratios() {
    let mut r = fixture();
    let target = r.builds[0].at_common_rate[0].target.clone();
    let runs = |p50s: [f64; 3]| -> Vec<LoadReport> {
        p50s.iter().map(|&p50| load("browse", &target, 300.0, 300.0, p50, p50 * 4.0)).collect()
    };
    // The machine slowed down in round 2 for both builds; in round 3 only micro-grpc was slow.
    r.builds[0].headline_runs = runs([2.0, 4.0, 3.0]);
    r.builds[0].headline_cpu_s_per_1k = vec![1.0, 2.0, 1.5];
    r.builds[1].headline_runs = runs([3.0, 6.0, 6.0]);
    r.builds[1].headline_cpu_s_per_1k = vec![2.0, 4.0, 3.0];
    let grpc = &headline_ratios(&r)[0];
    // Round by round 1.5, 1.5, 2.0: the median is 1.5. The medians' ratio would be 6 / 3 = 2.
    assert_eq!(grpc.p50_at_common_rate, Some(1.5));
    assert_eq!(grpc.p90_at_common_rate, Some(1.5));
    assert_eq!(grpc.p99_at_common_rate, Some(1.5));
    assert_eq!(grpc.cpu_s_per_1k, Some(2.0));
    assert_eq!(grpc.throughput, Some(0.5), "no floods: the saturation points' ratio");
    // micro-http has no rounds: its ratios come from the common-rate run and the cost table.
    let http = &headline_ratios(&r)[1];
    assert_eq!(http.p50_at_common_rate, Some(6.0 / 3.0), "its 6 ms over the monolith's median 3 ms");
    // With floods, throughput too is the median of the round-by-round ratios: the monolith
    // answered 1000, 500, 800 req/s; micro-grpc 600, 300, 200 (0.6, 0.6, 0.25).
    let floods = |rates: [f64; 3]| -> Vec<LoadReport> {
        rates.iter().map(|&tp| load("browse", &target, 100_000.0, tp, 20.0, 60.0)).collect()
    };
    r.builds[0].headline_floods = floods([1000.0, 500.0, 800.0]);
    r.builds[1].headline_floods = floods([600.0, 300.0, 200.0]);
    let grpc = &headline_ratios(&r)[0];
    assert_eq!(grpc.throughput, Some(0.6), "the medians' ratio would be 300 / 800");
    // The table shows each build's median flood, the figures the ratio comes from.
    let md = headline_markdown(&r);
    assert!(md.contains("| 300 | 50 |"), "micro-grpc's median flood 300 req/s:\n{md}");
    // A flood missing on one side: the saturation points again, never a half-paired median.
    r.builds[1].headline_floods.pop();
    assert_eq!(headline_ratios(&r)[0].throughput, Some(0.5));
    // A round missing on one side: no pairing, the medians' ratio.
    r.builds[1].headline_runs.pop();
    r.builds[1].headline_cpu_s_per_1k.pop();
    assert_eq!(headline_ratios(&r)[0].p50_at_common_rate, Some(4.5 / 3.0));
}

#[test]
fn headline_p99_is_taken_over_every_rounds_requests_when_they_were_pooled() {
    let mut r = fixture();
    let target = r.builds[0].at_common_rate[0].target.clone();
    let runs = |p99s: [f64; 3]| -> Vec<LoadReport> {
        p99s.iter().map(|&p99| load("browse", &target, 300.0, 300.0, 1.0, p99)).collect()
    };
    // One stalled round each, in different rounds: round by round 0.25, 4.0, 1.0.
    r.builds[0].headline_runs = runs([40.0, 5.0, 5.0]);
    r.builds[1].headline_runs = runs([10.0, 20.0, 5.0]);
    for b in &mut r.builds[..2] {
        b.headline_cpu_s_per_1k = vec![1.0; 3];
    }
    assert_eq!(headline_ratios(&r)[0].p99_at_common_rate, Some(1.0), "without pooling: the round-by-round median");
    let pooled = |p50_us, p99_us| Percentiles { count: 4500, p50_us, p99_us, ..Percentiles::default() };
    r.builds[0].headline_latency = Some(pooled(1_000, 8_000));
    r.builds[1].headline_latency = Some(pooled(2_000, 12_000));
    let grpc = &headline_ratios(&r)[0];
    assert_eq!(grpc.p99_at_common_rate, Some(1.5), "12 ms over 8 ms, every request of the rounds");
    assert_eq!(grpc.p50_at_common_rate, Some(1.0), "p50 stays the median of the round-by-round ratios");
    // p90s halfway between p50 and p99: round by round 5.5 / 20.5, 10.5 / 3, 3 / 3.
    assert_eq!(grpc.p90_at_common_rate, Some(1.0), "p90 too: the pooled figures hold no p90 here");
    let md = headline_markdown(&r);
    assert!(md.contains("| 12.0 |") || md.contains("| 12 |"), "micro-grpc's pooled p99 in the table:\n{md}");
    // Pooled on one side only: the round-by-round median again.
    r.builds[1].headline_latency = None;
    assert_eq!(headline_ratios(&r)[0].p99_at_common_rate, Some(1.0));
}

#[test]
fn headline_ratios_are_missing_not_invented() {
    let mut r = fixture();
    r.builds[0].at_common_rate.clear();
    r.builds[0].cost = Cost::default();
    r.builds[1].saturation = None;
    r.builds[1].steps.clear();
    let ratios = headline_ratios(&r);
    assert_eq!(ratios[0].throughput, None);
    assert_eq!(ratios[0].p50_at_common_rate, None);
    assert_eq!(ratios[0].cpu_s_per_1k, None);
    // Stepped but never within the objective: it held nothing.
    r.builds[2].saturation = None;
    assert_eq!(headline_ratios(&r)[1].throughput, Some(0.0));
    r.builds.remove(0);
    assert!(headline_ratios(&r).is_empty(), "no monolith, no ratios");
}

#[test]
fn headline_markdown_has_a_row_per_build_and_the_ratios() {
    let md = headline_markdown(&fixture());
    for name in ["monolith", "micro-grpc", "micro-http", "baseline"] {
        assert!(md.contains(&format!("| {name} | async | ")), "no performance row for {name}:\n{md}");
    }
    assert!(md.contains("| micro-grpc | 0.50× | 2.50× | 2.92× | 3.00× | 2.43× |"), "{md}");
    assert!(
        md.contains("| monolith | async | 1000 | 1000 | 10.0 | 2.00 | 10.0 | — | 50 |"),
        "no floods: flooded is —\n{md}"
    );
}

#[test]
fn reproducibility_flags_a_run_off_by_15_percent() {
    let runs = vec![fixture(), fixture(), fixture()];
    let md = reproducibility_markdown(&runs, 0.10);
    assert!(md.contains("Verdict: yes"), "{md}");

    let mut off = fixture();
    // micro-grpc's throughput ratio 0.5 → 0.575.
    if let Some(s) = off.builds[1].saturation.as_mut() {
        s.throughput_per_s *= 1.15;
    }
    let md = reproducibility_markdown(&[fixture(), fixture(), off], 0.10);
    assert!(md.contains("Verdict: no"), "{md}");
    // (0.575 - 0.5) / 0.525
    assert!(md.contains("| spread (max−min)/mean | 14.29 % | 0 % |"), "{md}");
    assert!(md.contains("| spread at most 10.00 % | no | yes |"), "{md}");
    assert!(md.contains("| 0.57× |") || md.contains("| 0.58× |"), "{md}");
}

/// Each run's steal stands beside its ratios, and a run from before steal was recorded
/// reads "—" there without failing the verdict.
#[test]
fn reproducibility_shows_each_runs_steal_beside_its_ratios() -> anyhow::Result<()> {
    let markdown =
        |r: &CompareReport| -> anyhow::Result<String> { Ok(doc::markdown(&sections::blocks(r, &plots::all(r)?))) };
    let mut stolen = fixture();
    stolen.meta.headline_steal = Some(crate::model::Steal { app_cpus: 0.125, load_cpus: 0.5 });
    let md = reproducibility_markdown(&[fixture(), stolen.clone()], 0.10);
    assert!(md.contains("| hypervisor steal in the headline rounds (application CPUs / generator's) |"), "{md}");
    assert!(md.contains("| 12.50 % / 50.00 % |"), "{md}");
    let first_run = md.lines().find(|l| l.starts_with("| 1 (")).unwrap_or_default();
    assert!(first_run.ends_with("| — |"), "{md}");
    assert!(md.contains("Verdict: yes"), "steal is not a ratio and is not judged\n{md}");
    let report = markdown(&stolen)?;
    assert!(
        report
            .contains("share given to other guests): 12.50 % on the application CPUs, 50.00 % on the load generator's"),
        "{report}"
    );
    assert!(markdown(&fixture())?.contains("share given to other guests): not recorded"));
    Ok(())
}

#[test]
fn reproducibility_reads_the_round_to_round_scatter_and_the_rounds_it_calls_for() {
    let mut r = fixture();
    let target = r.builds[0].at_common_rate[0].target.clone();
    let runs = |p50s: [f64; 4]| -> Vec<LoadReport> {
        p50s.iter().map(|&p50| load("browse", &target, 300.0, 300.0, p50, 10.0)).collect()
    };
    // micro-grpc's p50 is twice the monolith's in two rounds and four times in the other two:
    // log ratios ln 2 and ln 4, each ln 2 / 2 from their mean, so over 4 rounds a standard
    // deviation of sqrt(4 × (ln 2 / 2)² / 3) = 0.400; with three runs,
    // (1.693 × 0.400 / 0.10)² = 45.9 rounds.
    r.builds[0].headline_runs = runs([1.0, 1.0, 1.0, 1.0]);
    r.builds[1].headline_runs = runs([2.0, 4.0, 2.0, 4.0]);
    for b in &mut r.builds[..2] {
        b.headline_cpu_s_per_1k = vec![1.0; 4];
    }
    let md = reproducibility_markdown(&[r.clone(), r.clone(), r.clone()], 0.10);
    let row = |start: &str| md.lines().find(|l| l.starts_with(start)).unwrap_or_default().to_owned();
    let cells = |line: String| line.split(" | ").map(str::to_owned).collect::<Vec<_>>();
    let head = cells(row("| run |"));
    let p50 = head.iter().position(|c| c == "micro-grpc: p50 at common rate").unwrap_or(usize::MAX);
    let cpu = head.iter().position(|c| c == "micro-grpc: CPU-s per 1k requests").unwrap_or(usize::MAX);
    let scatter = cells(row("| round-to-round scatter"));
    let rounds = cells(row("| rounds per run for an expected spread ≤ 10.00 %"));
    assert_eq!(scatter.get(p50).map(String::as_str), Some("0.400"), "{md}");
    assert_eq!(rounds.get(p50).map(String::as_str), Some("46"), "{md}");
    // CPU was the same ratio in every round: no scatter, one round is enough.
    assert_eq!(scatter.get(cpu).map(String::as_str), Some("0.000"), "{md}");
    assert_eq!(rounds.get(cpu).map(String::as_str), Some("1"), "{md}");
    // micro-http has no rounds here: nothing to read.
    let http = head.iter().position(|c| c == "micro-http: p50 at common rate").unwrap_or(usize::MAX);
    assert_eq!(scatter.get(http).map(String::as_str), Some("—"), "{md}");
    assert!(md.contains("The runs here had 4 rounds each."), "{md}");
    // Without rounds anywhere there is nothing to read and the rows are left out.
    let md = reproducibility_markdown(&[fixture(), fixture(), fixture()], 0.10);
    assert!(!md.contains("round-to-round scatter"), "{md}");
}

#[test]
fn reproducibility_needs_two_runs_and_every_ratio() {
    let md = reproducibility_markdown(&[fixture()], 0.10);
    assert!(md.contains("Verdict: not enough runs"), "{md}");
    let mut partial = fixture();
    partial.builds[1].cost = Cost::default();
    let md = reproducibility_markdown(&[fixture(), partial], 0.10);
    assert!(md.contains("no (missing in some runs)"), "{md}");
    assert!(md.contains("Verdict: no"), "{md}");
    let md = reproducibility_markdown(&[], 0.10);
    assert!(md.contains("Verdict: not enough runs"), "{md}");
}

#[test]
fn write_produces_every_file_with_one_series_per_build() -> anyhow::Result<()> {
    let dir = TempDir::new();
    let written = write(&fixture(), &dir.0.join("nested"))?;
    let names: Vec<String> =
        written.iter().filter_map(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()).collect();
    for f in
        ["report.md", "report.html", "report.json", "latency.svg", "percentiles.svg", "throughput.svg", "scenarios.svg"]
    {
        assert!(names.iter().any(|n| n == f), "{f} not written: {names:?}");
    }
    let builds = ["monolith", "micro-grpc", "micro-http", "baseline"];
    let latency = read(&dir.0.join("nested/latency.svg"));
    for b in builds {
        for p in ["p50", "p99"] {
            assert_eq!(latency.matches(&format!(">\n{b} {p}\n</text>")).count(), 1, "legend of {b} {p} in latency.svg");
        }
    }
    assert!(latency.contains(">\nobjective p99 ≤ 50.0 ms\n</text>"), "objective line missing");
    assert!(latency.contains(">\nsaturation point\n</text>"), "saturation marks missing");
    // One solid p99 line per build, plus the legend's samples.
    assert!(latency.matches("<polyline").count() >= 4, "too few lines in latency.svg");
    for f in ["percentiles.svg", "throughput.svg", "scenarios.svg"] {
        let svg = read(&dir.0.join("nested").join(f));
        for b in builds {
            assert_eq!(svg.matches(&format!(">\n{b}\n</text>")).count(), 1, "legend of {b} in {f}");
        }
        assert_no_nan(f, &svg);
    }
    let json: CompareReport = serde_json::from_str(&read(&dir.0.join("nested/report.json")))?;
    assert_eq!(json, fixture(), "report.json is the input");
    Ok(())
}

#[test]
fn html_is_self_contained() -> anyhow::Result<()> {
    let dir = TempDir::new();
    let report = fixture();
    write(&report, &dir.0)?;
    let html = read(&dir.0.join("report.html"));
    assert!(html.contains("<svg"), "plots are inline");
    assert_eq!(html.matches("<figure>").count(), 4);
    for bad in ["<script", "<link", "<img", "@import", "url("] {
        assert!(!html.contains(bad), "HTML contains {bad}");
    }
    // Only URLs that came from the report itself (the targets) may appear.
    let mut rest = html.clone();
    for b in &report.builds {
        for r in b.steps.iter().map(|s| &s.report).chain(&b.at_common_rate) {
            rest = rest.replace(&r.target, "");
        }
    }
    assert!(html.contains("http://127.0.0.1:8080"), "the target is shown");
    assert!(!rest.contains("http://") && !rest.contains("https://"), "external reference in the HTML");
    Ok(())
}

#[test]
fn missed_goals_and_benches_are_shown() -> anyhow::Result<()> {
    let dir = TempDir::new();
    write(&fixture(), &dir.0)?;
    let md = read(&dir.0.join("report.md"));
    assert!(md.contains("1 of 2 goals met. Missed: throughput (required ≥ 0.90× baseline, measured 0.50×)."), "{md}");
    assert!(md.contains("| throughput | ≥ 0.90× baseline | 0.50× | ✗ missed | 0.40 (44.44 %) below |"), "{md}");
    assert!(md.contains("| hop | hop/grpc | 50.00 µs | 49.00 µs – 51.00 µs | 1000.00× |"), "{md}");
    assert!(md.contains("| serialize | serialize | 2.50 ms |"), "{md}");
    assert!(md.contains("ABUSE_LIMITS=off"), "settings shown");
    assert!(md.contains("archlab compare --profile quick"), "command shown");
    // The saturation step above the objective shows its errors and unsent requests.
    assert!(md.contains("| 503: 7 | 40 | ✗ |"), "{md}");
    assert_no_nan("report.md", &md);
    Ok(())
}

#[test]
fn an_empty_report_renders() -> anyhow::Result<()> {
    let dir = TempDir::new();
    let written = write(&empty(), &dir.0)?;
    assert_eq!(written.len(), 7);
    let md = read(&dir.0.join("report.md"));
    assert!(md.contains("No builds were measured."), "{md}");
    assert!(md.contains("not measured"), "{md}");
    for p in &written {
        assert_no_nan(&p.display().to_string(), &read(p));
    }
    let svg = read(&dir.0.join("latency.svg"));
    assert!(svg.contains(">\nnot measured\n</text>"), "{svg}");
    assert!(reproducibility_markdown(&[empty(), empty()], 0.1).contains("Verdict: no ratios"));
    Ok(())
}

#[test]
fn broken_figures_render_as_missing() -> anyhow::Result<()> {
    let mut r = fixture();
    r.objective_p99_ms = f64::NAN;
    r.common_rate_per_s = f64::INFINITY;
    r.builds[0].steps[0].report.throughput_per_s = f64::NAN;
    r.builds[0].steps[1].rate_per_s = f64::NAN;
    r.builds[1].cost.cpu_s_per_1k_app = f64::NAN;
    r.builds[2].saturation = None;
    r.builds[2].at_common_rate.clear();
    r.builds[2].cost = Cost::default();
    r.benches[0].mean_ns = f64::NAN;
    let dir = TempDir::new();
    for p in write(&r, &dir.0)? {
        assert_no_nan(&p.display().to_string(), &read(&p));
    }
    let md = read(&dir.0.join("report.md"));
    assert!(md.contains("| micro-http | async | none met the objective |"), "{md}");
    assert!(md.contains("| micro-http | not measured |"), "{md}");
    Ok(())
}

#[test]
fn missed_by_reads_the_direction_of_the_target() {
    use super::sections::missed_by;
    assert_eq!(missed_by("≥ 0.90× the baseline's throughput", "0.45×").as_deref(), Some("0.45 (50.00 %) below"));
    assert_eq!(missed_by("p99 ≤ 50 ms", "62.5 ms").as_deref(), Some("12.50 (25.00 %) above"));
    // Digits inside words are names, not figures.
    assert_eq!(missed_by("p99 ≤ 50 ms", "p99 62.5 ms at 1k req/s").as_deref(), Some("12.50 (25.00 %) above"));
    assert_eq!(missed_by("p99 <= 50 ms", "40 ms"), None, "not missed by these words");
    assert_eq!(missed_by("fast enough", "62 ms"), None, "no comparison to read");
    assert_eq!(missed_by("≤ 50 ms", "timed out"), None, "no figure measured");
}

/// Renders the fixture where `ARCHLAB_REPORT_SAMPLE_DIR` says, to look at the plots and page:
/// `ARCHLAB_REPORT_SAMPLE_DIR=sample cargo test -p archlab-harness --lib report::tests::sample -- --ignored`.
#[test]
#[ignore = "writes a sample report for a person to look at"]
fn sample() -> anyhow::Result<()> {
    let dir = std::env::var_os("ARCHLAB_REPORT_SAMPLE_DIR").context("set ARCHLAB_REPORT_SAMPLE_DIR")?;
    let written = write(&fixture(), std::path::Path::new(&dir))?;
    assert_eq!(written.len(), 7);
    Ok(())
}
