//! What a run showed: the timeline read against the fault window (time to detect, time to
//! recover, blast radius), each probe of the hypothesis checked, and the result written as
//! Markdown and JSON.

use super::counters::{self, CounterSecond};
use super::experiment::{Probe, RunPlan, Window};
use crate::audit;
use crate::load::scenario::Step;
use crate::load::timeline::{Recording, Second, Window as Figures};
use crate::model::LoadReport;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// One action as it was done.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Done {
    /// When it was planned, in seconds into the run (`None` for the rollback).
    pub planned_s: Option<f64>,
    /// When it was done.
    pub at_s: f64,
    /// What was done, or why it could not be.
    pub what: String,
    /// Whether it worked.
    pub ok: bool,
}

/// The audit at the end of the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditOutcome {
    /// Whether the last audit found nothing.
    pub clean: bool,
    /// Seconds from the end of the load to the first clean audit, or to the last one.
    pub after_s: f64,
    /// How many times the audit ran.
    pub attempts: u32,
    /// The last audit's report.
    pub report: audit::Report,
}

/// One probe of the hypothesis, checked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    /// What the probe asks.
    pub probe: String,
    /// What was measured.
    pub measured: String,
    /// Whether it held.
    pub held: bool,
}

/// Everything one run of one experiment against one build found: the JSON written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    /// The experiment's name (its file name without `.toml`).
    pub experiment: String,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// `monolith`, `micro-grpc` or `micro-http`.
    pub build: String,
    /// `sync` or `async`.
    pub mode: String,
    /// Whether this was the short mode.
    pub short: bool,
    /// When the run began (RFC 3339).
    pub started_at: String,
    /// The load's length, in seconds.
    pub duration_s: f64,
    /// From the first fault to its removal, in seconds into the run.
    pub fault_window_s: Option<(f64, f64)>,
    /// The method's actions as done.
    pub method: Vec<Done>,
    /// The rollback's actions as done.
    pub rollback: Vec<Done>,
    /// One load report per stream.
    pub streams: Vec<LoadReport>,
    /// Every second of the run, all streams together.
    pub timeline: Vec<Second>,
    /// Every second of the run as the build counted it: internal calls, retries, the
    /// breaker, calls reaching each fault point (`chaos::counters`).
    #[serde(default)]
    pub counters: Vec<CounterSecond>,
    /// From the fault to the start of the first second with an error.
    pub time_to_detect_s: Option<f64>,
    /// From the fault's removal to the start of the first second after the last error (0 when
    /// nothing failed; `None` when errors went on to the end).
    pub time_to_recover_s: Option<f64>,
    /// Per step, the requests and errors from the fault to the recovery (or the end).
    pub blast_radius: BTreeMap<String, Figures>,
    /// Processes the supervisor restarted, and how often.
    pub restarts: BTreeMap<String, u32>,
    /// The consistency audit.
    pub audit: Option<AuditOutcome>,
    /// The hypothesis, probe by probe.
    pub hypothesis: Vec<Checked>,
    /// Whether every probe held.
    pub held: bool,
}

/// The timeline's reading against the fault window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Reading {
    /// See [`RunResult::time_to_detect_s`].
    pub time_to_detect_s: Option<f64>,
    /// See [`RunResult::time_to_recover_s`].
    pub time_to_recover_s: Option<f64>,
    /// See [`RunResult::blast_radius`].
    pub blast_radius: BTreeMap<String, Figures>,
}

/// Seconds left out at the start of the run when the p99 before the fault is the baseline of
/// a relative bound: the first second carries the cold start (first connections, caches).
pub const BASELINE_SKIP_S: f64 = 1.0;

/// Read `seconds` (and the raw `recording`) against `fault` (`(start, end)` in seconds).
pub fn read(recording: &Recording, seconds: &[Second], fault: Option<(f64, f64)>) -> Reading {
    let Some((start, end)) = fault else { return Reading::default() };
    let first = start.floor() as usize;
    let detect = seconds.iter().skip(first).find(|s| s.errors > 0).map(|s| (f64::from(s.second) - start).max(0.0));
    let last_fail = seconds.iter().skip(first).rev().find(|s| s.errors > 0).map(|s| s.second as usize);
    let (recover, until) = match last_fail {
        None => (Some(0.0), seconds.len()),
        Some(last) => {
            let clean = seconds.iter().skip(last + 1).find(|s| s.requests > 0);
            (clean.map(|s| (f64::from(s.second) - end).max(0.0)), last + 1)
        }
    };
    let blast_radius = Step::ALL
        .iter()
        .map(|step| (step.name().to_owned(), recording.window(first..until, Some(*step))))
        .filter(|(_, w)| w.requests > 0)
        .collect();
    Reading { time_to_detect_s: detect, time_to_recover_s: recover, blast_radius }
}

/// How long before the fault's start the `before` window ends. Requests are counted in the
/// second they were due, and one due just before the fault can still be queued or in flight
/// when it lands: a crash at 3.0 s failed two requests due in second 2 on a busy machine.
pub const BEFORE_GUARD_S: f64 = 0.5;

/// The seconds of `window` (docs/chaos.md, "Windows"): only seconds wholly inside it count,
/// `skip_s` is left out at its start, and `before` ends [`BEFORE_GUARD_S`] ahead of the fault.
pub fn seconds_of(window: Window, plan: &RunPlan, len: usize, skip_s: f64) -> std::ops::Range<usize> {
    let duration = plan.duration.as_secs_f64();
    let (start, end) = plan.fault_window().unwrap_or((duration, duration));
    let (from, to) = match window {
        Window::Before => (skip_s, (start - BEFORE_GUARD_S).max(0.0)),
        Window::During => (start + skip_s, end),
        Window::After => (end + skip_s, duration),
        Window::Whole => (skip_s, duration),
    };
    let from = (from.ceil() as usize).min(len);
    let to = (to.floor() as usize).min(len).max(from);
    from..to
}

/// "`what` of `step` `window` (seconds a..b) `asks`": a probe on the requests of a window.
fn describe(what: &str, step: &Option<String>, window: Window, range: &std::ops::Range<usize>, asks: &str) -> String {
    format!(
        "{what} of {} {} (seconds {}..{}) {asks}",
        step.as_deref().unwrap_or("every request"),
        window_name(window),
        range.start,
        range.end
    )
}

fn window_name(window: Window) -> &'static str {
    match window {
        Window::Before => "before the fault",
        Window::During => "during the fault",
        Window::After => "after the fault",
        Window::Whole => "over the whole run",
    }
}

fn bounds(min: Option<f64>, max: Option<f64>, unit: &str, scale: f64) -> String {
    match (min, max) {
        (Some(lo), Some(hi)) => format!("within [{}{unit}, {}{unit}]", lo * scale, hi * scale),
        (Some(lo), None) => format!("at least {}{unit}", lo * scale),
        (None, Some(hi)) => format!("at most {}{unit}", hi * scale),
        (None, None) => "anything".to_owned(),
    }
}

/// Check `probe` against what the run measured.
pub fn check(
    probe: &Probe,
    plan: &RunPlan,
    recording: &Recording,
    counted: &[CounterSecond],
    len: usize,
    reading: &Reading,
    audit: Option<&AuditOutcome>,
) -> Checked {
    let step_of = |name: &Option<String>| name.as_deref().and_then(|n| Step::ALL.into_iter().find(|s| s.name() == n));
    let within =
        |v: f64, min: Option<f64>, max: Option<f64>| min.is_none_or(|lo| v >= lo) && max.is_none_or(|hi| v <= hi);
    match probe {
        Probe::ErrorRate { window, step, min, max, skip_s, .. } => {
            let range = seconds_of(*window, plan, len, *skip_s);
            let figures = recording.window(range.clone(), step_of(step));
            let rate = figures.error_rate();
            Checked {
                probe: describe("error rate", step, *window, &range, &bounds(*min, *max, " %", 100.0)),
                measured: format!("{:.1} % ({} of {})", rate * 100.0, figures.errors, figures.requests),
                // A window without requests shows nothing either way: it does not hold.
                held: figures.requests > 0 && within(rate, *min, *max),
            }
        }
        Probe::P50 { window, step, min_ms, max_ms, skip_s, .. } => {
            let range = seconds_of(*window, plan, len, *skip_s);
            let figures = recording.window(range.clone(), step_of(step));
            let ms = figures.p50_us as f64 / 1000.0;
            Checked {
                probe: describe("p50", step, *window, &range, &bounds(*min_ms, *max_ms, " ms", 1.0)),
                measured: format!("{ms:.1} ms over {} requests", figures.requests),
                held: figures.requests > 0 && within(ms, *min_ms, *max_ms),
            }
        }
        Probe::P99 { window, step, min_ms, max_ms, min_times_before, max_times_before, skip_s, .. } => {
            let range = seconds_of(*window, plan, len, *skip_s);
            let figures = recording.window(range.clone(), step_of(step));
            let ms = figures.p99_us as f64 / 1000.0;
            let mut asks = Vec::new();
            if min_ms.is_some() || max_ms.is_some() {
                asks.push(bounds(*min_ms, *max_ms, " ms", 1.0));
            }
            let relative = min_times_before.is_some() || max_times_before.is_some();
            let before_range = seconds_of(Window::Before, plan, len, BASELINE_SKIP_S);
            let before = recording.window(before_range.clone(), step_of(step));
            let before_ms = before.p99_us as f64 / 1000.0;
            let times = if before_ms > 0.0 { ms / before_ms } else { f64::INFINITY };
            let mut measured = format!("{ms:.1} ms over {} requests", figures.requests);
            if relative {
                asks.push(format!(
                    "{} × the p99 before the fault (seconds {}..{})",
                    bounds(*min_times_before, *max_times_before, "", 1.0),
                    before_range.start,
                    before_range.end
                ));
                let _ = write!(measured, ", {times:.1} × the {before_ms:.1} ms before ({} requests)", before.requests);
            }
            Checked {
                probe: describe("p99", step, *window, &range, &asks.join(" and ")),
                measured,
                held: figures.requests > 0
                    && within(ms, *min_ms, *max_ms)
                    && (!relative || (before.requests > 0 && within(times, *min_times_before, *max_times_before))),
            }
        }
        Probe::Retries { window, max_per_call, max_per_s, min_per_call, skip_s, .. } => {
            let range = seconds_of(*window, plan, len, *skip_s);
            let retries = counters::sum(counted, range.clone(), counters::RETRIES) as f64;
            let calls = counters::sum(counted, range.clone(), counters::CALLS) as f64;
            let secs = range.len() as f64;
            let ceiling = max_per_call.map(|share| share * calls + max_per_s * secs);
            let floor = min_per_call.map(|share| share * calls);
            let mut asks = Vec::new();
            if let Some(share) = max_per_call {
                asks.push(format!("at most {share} × calls + {max_per_s}/s"));
            }
            if let Some(share) = min_per_call {
                asks.push(format!("at least {share} × calls"));
            }
            Checked {
                probe: format!(
                    "retries by the remote clients {} (seconds {}..{}) {}",
                    window_name(*window),
                    range.start,
                    range.end,
                    asks.join(" and ")
                ),
                measured: format!(
                    "{retries:.0} retries for {calls:.0} internal calls over {secs:.0} s{}",
                    ceiling.map_or(String::new(), |c| format!(" (ceiling {c:.0})"))
                ),
                held: !range.is_empty()
                    && ceiling.is_none_or(|c| retries <= c)
                    && floor.is_none_or(|f| calls > 0.0 && retries >= f),
            }
        }
        Probe::Reached { point, window, step, min_per_request, max_per_request, skip_s, .. } => {
            let range = seconds_of(*window, plan, len, *skip_s);
            let reached = counters::sum(counted, range.clone(), &counters::reached(point)) as f64;
            let requests = recording.window(range.clone(), step_of(step)).requests as f64;
            let per_request = if requests > 0.0 { reached / requests } else { 0.0 };
            Checked {
                probe: format!(
                    "calls reaching {point} per request of {} {} (seconds {}..{}) {}",
                    step.as_deref().unwrap_or("the load"),
                    window_name(*window),
                    range.start,
                    range.end,
                    bounds(*min_per_request, *max_per_request, "", 1.0)
                ),
                measured: format!("{per_request:.2} ({reached:.0} calls for {requests:.0} requests)"),
                held: requests > 0.0 && within(per_request, *min_per_request, *max_per_request),
            }
        }
        Probe::Recovers { within_s, .. } => Checked {
            probe: format!("a second without errors within {within_s} s of the fault's removal, none failing after it"),
            measured: match reading.time_to_recover_s {
                Some(s) => format!("recovered {s:.1} s after"),
                None => "errors went on to the end".to_owned(),
            },
            held: reading.time_to_recover_s.is_some_and(|s| s <= *within_s),
        },
        Probe::AuditClean { within_s, .. } => Checked {
            probe: format!("the consistency audit is clean within {within_s} s of the load's end"),
            measured: match audit {
                Some(a) if a.clean => format!("clean {:.1} s after", a.after_s),
                Some(a) => format!(
                    "{} violation(s) {:.1} s after: {}",
                    a.report.violations.len(),
                    a.after_s,
                    violation_counts(&a.report)
                ),
                None => "the audit did not run".to_owned(),
            },
            held: audit.is_some_and(|a| a.clean && a.after_s <= *within_s),
        },
    }
}

fn violation_counts(report: &audit::Report) -> String {
    let counts: Vec<String> =
        report.counts.iter().filter(|(_, n)| **n > 0).map(|(k, n)| format!("{} {n}", k.name())).collect();
    counts.join(", ")
}

/// The result as Markdown: the verdict first, then the numbers behind it.
pub fn markdown(r: &RunResult) -> String {
    let mut out = String::new();
    let verdict = if r.held { "HELD" } else { "FAILED" };
    let _ = writeln!(out, "# {}: {} ({} mode) — hypothesis {verdict}\n", r.title, r.build, r.mode);
    if !r.description.is_empty() {
        let _ = writeln!(out, "{}\n", r.description.trim());
    }
    let _ = writeln!(
        out,
        "Experiment `{}`{}, started {}, load {:.0} s.\n",
        r.experiment,
        if r.short { " (short mode)" } else { "" },
        r.started_at,
        r.duration_s
    );
    let _ = writeln!(out, "## Hypothesis\n\n| probe | measured | held |\n|---|---|---|");
    for c in &r.hypothesis {
        let _ = writeln!(out, "| {} | {} | {} |", c.probe, c.measured, if c.held { "yes" } else { "**no**" });
    }
    let _ = writeln!(out, "\n## Fault and recovery\n");
    match r.fault_window_s {
        Some((a, b)) => {
            let _ = writeln!(out, "- fault window: {a:.1} s to {b:.1} s");
        }
        None => {
            let _ = writeln!(out, "- no fault");
        }
    }
    let opt = |v: Option<f64>, none: &str| v.map_or(none.to_owned(), |s| format!("{s:.1} s"));
    let _ = writeln!(out, "- time to detect: {}", opt(r.time_to_detect_s, "nothing failed"));
    let _ = writeln!(out, "- time to recover: {}", opt(r.time_to_recover_s, "errors to the end"));
    if !r.restarts.is_empty() {
        let restarts: Vec<String> = r.restarts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        let _ = writeln!(out, "- restarted by the supervisor: {}", restarts.join(", "));
    }
    if let Some(a) = &r.audit {
        let what = if a.clean { "clean".to_owned() } else { violation_counts(&a.report) };
        let _ = writeln!(out, "- audit: {what} ({:.1} s after the load, {} attempt(s))", a.after_s, a.attempts);
    }
    let _ = writeln!(out, "\n## Actions\n\n| planned (s) | done (s) | what |\n|---|---|---|");
    for d in r.method.iter().chain(&r.rollback) {
        let planned = d.planned_s.map_or("rollback".to_owned(), |p| format!("{p:.1}"));
        let _ = writeln!(out, "| {planned} | {:.1} | {}{} |", d.at_s, if d.ok { "" } else { "FAILED: " }, d.what);
    }
    let _ = writeln!(
        out,
        "\n## Blast radius (from the fault to the recovery)\n\n| step | requests | errors | p99 (ms) |\n|---|---|---|---|"
    );
    for (step, f) in &r.blast_radius {
        let _ = writeln!(out, "| {step} | {} | {} | {:.1} |", f.requests, f.errors, f.p99_us as f64 / 1000.0);
    }
    counters_markdown(&mut out, r);
    let _ = writeln!(out, "\n## Timeline\n\n| s | requests | errors | causes | p99 (ms) |\n|---|---|---|---|---|");
    for s in &r.timeline {
        let causes: Vec<String> = s.errors_by_cause.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        let mark = match r.fault_window_s {
            Some((a, b)) if f64::from(s.second) + 1.0 > a && f64::from(s.second) < b.max(a + 0.001) => " ⚡",
            _ => "",
        };
        let _ = writeln!(
            out,
            "| {}{mark} | {} | {} | {} | {:.1} |",
            s.second,
            s.requests,
            s.errors,
            causes.join(", "),
            s.p99_us as f64 / 1000.0
        );
    }
    out
}

/// The build's own counts per second, one column per count that moved during the run.
fn counters_markdown(out: &mut String, r: &RunResult) {
    let mut keys: Vec<&String> = r.counters.iter().flat_map(|s| s.counts.keys()).collect();
    keys.sort_unstable();
    keys.dedup();
    if keys.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\n## What the build counted (per second, all processes)\n\n| s | {} |\n|---|{}",
        keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" | "),
        "---|".repeat(keys.len())
    );
    for s in &r.counters {
        let cells: Vec<String> = keys.iter().map(|k| s.counts.get(*k).copied().unwrap_or(0).to_string()).collect();
        let _ = writeln!(out, "| {} | {} |", s.second, cells.join(" | "));
    }
}

/// Every run in one table, each row linking to its own report: `summary.md`, the chaos
/// section of the lab's results.
pub fn summary(results: &[RunResult], provenance: &str) -> String {
    let mut out = format!("# archlab chaos\n\n{provenance}\n\n");
    if let Some(first) = results.first() {
        let _ = writeln!(
            out,
            "{} run(s){}, the first started {}. Each row links to its report (hypothesis, timeline, \
             what the build counted); the JSON beside it has every figure.\n",
            results.len(),
            if first.short { ", short mode" } else { "" },
            first.started_at
        );
    }
    let _ = writeln!(
        out,
        "| experiment | build | hypothesis | probes held | detect | recover | restarted | audit |\n|---|---|---|---|---|---|---|---|"
    );
    for r in results {
        let held = r.hypothesis.iter().filter(|c| c.held).count();
        let opt = |v: Option<f64>, none: &str| v.map_or(none.to_owned(), |s| format!("{s:.1} s"));
        let restarts: Vec<String> = r.restarts.iter().map(|(k, n)| format!("{k} ×{n}")).collect();
        let audit = match &r.audit {
            Some(a) if a.clean => format!("clean after {:.1} s", a.after_s),
            Some(a) => format!("**{}**", violation_counts(&a.report)),
            None => "not run".to_owned(),
        };
        let _ = writeln!(
            out,
            "| [{}]({}-{}.md) | {} | {} | {held} of {} | {} | {} | {} | {audit} |",
            r.experiment,
            r.experiment,
            r.build,
            r.build,
            if r.held { "held" } else { "**FAILED**" },
            r.hypothesis.len(),
            opt(r.time_to_detect_s, "nothing failed"),
            opt(r.time_to_recover_s, "errors to the end"),
            if restarts.is_empty() { "—".to_owned() } else { restarts.join(", ") },
        );
    }
    out
}

/// One line per run, for the terminal.
pub fn one_line(r: &RunResult) -> String {
    let failed: Vec<&str> = r.hypothesis.iter().filter(|c| !c.held).map(|c| c.probe.as_str()).collect();
    let detect = r.time_to_detect_s.map_or("-".to_owned(), |s| format!("{s:.1} s"));
    let recover = r.time_to_recover_s.map_or("never".to_owned(), |s| format!("{s:.1} s"));
    let mut line = format!(
        "{} on {}: {} (detect {detect}, recover {recover})",
        r.experiment,
        r.build,
        if r.held { "hypothesis held" } else { "HYPOTHESIS FAILED" }
    );
    if !failed.is_empty() {
        let _ = write!(line, "; failed: {}", failed.join("; "));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::super::experiment::{Action, Host};
    use super::*;

    fn run(experiment: &str, build: &str, held: bool) -> RunResult {
        RunResult {
            experiment: experiment.to_owned(),
            title: "t".to_owned(),
            description: String::new(),
            build: build.to_owned(),
            mode: "async".to_owned(),
            short: false,
            started_at: "2026-12-02T13:00:00Z".to_owned(),
            duration_s: 40.0,
            fault_window_s: Some((10.0, 30.0)),
            method: Vec::new(),
            rollback: Vec::new(),
            streams: Vec::new(),
            timeline: Vec::new(),
            counters: Vec::new(),
            time_to_detect_s: Some(0.0),
            time_to_recover_s: if held { Some(1.0) } else { None },
            blast_radius: BTreeMap::new(),
            restarts: [("payments-service".to_owned(), 1)].into(),
            audit: None,
            hypothesis: vec![
                Checked { probe: "a".to_owned(), measured: "1".to_owned(), held: true },
                Checked { probe: "b".to_owned(), measured: "2".to_owned(), held },
            ],
            held,
        }
    }

    fn plan(duration_s: f64, fault: (f64, f64)) -> RunPlan {
        RunPlan {
            duration: std::time::Duration::from_secs_f64(duration_s),
            timeout: std::time::Duration::from_secs(2),
            seed_users: 1,
            streams: Vec::new(),
            method: vec![(fault.0, Action::Kill { process: Host::Users }), (fault.1, Action::ClearAllFaults)],
        }
    }

    #[test]
    fn the_window_before_a_fault_ends_half_a_second_ahead_of_it_in_whole_seconds() {
        // A fault at 3.0 s: second 2 holds requests due in the half second before the fault,
        // which may still be in flight when it lands, so `before` is 0..2 (not 0..3).
        let at_three = plan(10.0, (3.0, 8.0));
        assert_eq!(at_three.fault_window(), Some((3.0, 8.0)));
        assert_eq!(seconds_of(Window::Before, &at_three, 10, 0.0), 0..2);
        assert_eq!(seconds_of(Window::Before, &at_three, 10, 1.0), 1..2);
        assert_eq!(seconds_of(Window::During, &at_three, 10, 1.0), 4..8);
        assert_eq!(seconds_of(Window::After, &at_three, 10, 0.0), 8..10);
        assert_eq!(seconds_of(Window::Whole, &at_three, 10, 0.0), 0..10);
        // At 3.6 s the whole of second 2 ends more than half a second ahead: it stays in.
        assert_eq!(seconds_of(Window::Before, &plan(12.0, (3.6, 9.6)), 12, 1.0), 1..3);
        // Never past the seconds recorded, never a reversed range.
        assert_eq!(seconds_of(Window::Before, &plan(10.0, (0.2, 8.0)), 10, 1.0), 1..1);
        assert_eq!(seconds_of(Window::Whole, &at_three, 4, 0.0), 0..4);
    }

    #[test]
    fn the_p50_probe_reads_the_median_so_one_slow_request_moves_it_no_more_than_a_fast_one() {
        use crate::load::recorder::Outcome;
        use crate::load::scenario::Step;
        let at_three = plan(10.0, (3.0, 8.0));
        let mut recording = Recording::default();
        let ms = std::time::Duration::from_millis;
        // Seconds 5 and 6, inside `during` (4..8 after skip_s = 1): six reads waiting 60 ms,
        // one stalled 2 s, and three fast ones; before the fault, fast reads only.
        for (i, latency) in [60, 60, 60, 60, 60, 60, 2000, 3, 3, 3].into_iter().enumerate() {
            recording.record(ms(5000 + 100 * i as u64), Step::UsersMe, Outcome::Status(200), ms(latency));
        }
        recording.record(ms(1500), Step::UsersMe, Outcome::Status(200), ms(2));
        let probe_in = |window, skip_s, min_ms, max_ms| Probe::P50 {
            window,
            step: Some("users.me".to_owned()),
            min_ms,
            max_ms,
            skip_s,
            builds: None,
        };
        let probe = |min_ms, max_ms| probe_in(Window::During, 1.0, min_ms, max_ms);
        let check = |p: &Probe| check(p, &at_three, &recording, &[], 10, &Reading::default(), None);
        let slowed = check(&probe(Some(50.0), None));
        assert!(slowed.held, "{slowed:?}");
        assert_eq!(slowed.probe, "p50 of users.me during the fault (seconds 4..8) at least 50 ms");
        assert_eq!(slowed.measured, "60.0 ms over 10 requests");
        assert!(!check(&probe(None, Some(50.0))).held, "the median read waited 60 ms, over 50");
        // Before the fault there was one fast read: not slowed, so a floor there fails.
        assert!(!check(&probe_in(Window::Before, 0.0, Some(50.0), None)).held);
        // A window without requests holds nothing, whatever the bounds.
        let after = probe_in(Window::After, 0.0, None, Some(1e9));
        assert!(!check(&after).held, "no request after the fault was recorded");
    }

    #[test]
    fn the_summary_has_a_row_per_run_linking_its_report_and_marks_a_failure() {
        let text = summary(
            &[run("payments-killed", "micro-grpc", true), run("retry-storm", "monolith", false)],
            "Revision x.",
        );
        assert!(text.starts_with("# archlab chaos\n\nRevision x.\n\n"), "{text}");
        assert!(text.contains("2 run(s), the first started 2026-12-02T13:00:00Z"), "{text}");
        assert!(
            text.contains(
                "| [payments-killed](payments-killed-micro-grpc.md) | micro-grpc | held | 2 of 2 | 0.0 s | 1.0 s | payments-service ×1 | not run |"
            ),
            "{text}"
        );
        assert!(text.contains("| [retry-storm](retry-storm-monolith.md) | monolith | **FAILED** | 1 of 2 |"), "{text}");
        assert!(text.contains("errors to the end"), "{text}");
    }
}
