//! `archlab chaos` end to end: every shipped experiment in its short mode against the
//! monolith and the microservices over gRPC, each asserting its hypothesis, and bad input
//! refused before anything starts.
//!
//! The experiment runs need the builds' binaries (`cargo build --workspace --bins`; built
//! here if missing), PostgreSQL and RabbitMQ. They take turns (a lock file): each measures
//! latencies and error shares, which two experiments sharing two cores would distort.

use crate::common;

use archlab_harness::chaos::verdict::RunResult;
use nix::fcntl::{Flock, FlockArg};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The builds every experiment runs against in `make test`.
const BUILDS: [&str; 2] = ["monolith", "micro-grpc"];
/// One experiment against both builds, short mode: start-up, seeding, load, audit, stop.
const RUN_WITHIN: Duration = Duration::from_secs(240);

fn bin_dir() -> PathBuf {
    common::bin_dir(&[
        "extsim",
        "monolith",
        "auth-service",
        "users-service",
        "notifications-service",
        "payments-service",
        "gateway",
    ])
}

/// Held while an experiment runs, so experiments of concurrent test processes take turns.
fn take_turn() -> Flock<std::fs::File> {
    let path = std::env::temp_dir().join("archlab-harness-chaos.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .expect("opening the chaos tests' lock file");
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| e).expect("locking the chaos tests' lock file")
}

/// What one `archlab chaos` invocation did.
struct Ran {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    out: PathBuf,
}

/// `archlab chaos <args>` with its output under a fresh directory.
fn chaos(args: &[&str]) -> Ran {
    let out = common::temp_dir("chaos");
    let mut child = Command::new(common::archlab())
        .arg("chaos")
        .args(args)
        .arg("--out")
        .arg(&out)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting archlab chaos");
    let stdout = common::Collected::read(child.stdout.take().expect("stdout is piped"));
    let stderr = common::Collected::read(child.stderr.take().expect("stderr is piped"));
    let status = common::wait_with_timeout(child, RUN_WITHIN, &format!("archlab chaos {}", args.join(" ")));
    Ran {
        code: status.code(),
        stdout: stdout.wait(Duration::from_secs(10)),
        stderr: stderr.wait(Duration::from_secs(10)),
        out,
    }
}

/// Run the built-in `experiment` in short mode against [`BUILDS`]; its result per build.
fn run_short(experiment: &str) -> Vec<RunResult> {
    run_short_on(experiment, &BUILDS)
}

/// Run the built-in `experiment` in short mode against `builds`; its result per build.
fn run_short_on(experiment: &str, builds: &[&str]) -> Vec<RunResult> {
    let bin_dir = bin_dir();
    let _turn = take_turn();
    let started = Instant::now();
    let names = builds.join(",");
    let ran = chaos(&[experiment, "--short", "--build", &names, "--bin-dir", &bin_dir.to_string_lossy()]);
    let results: Vec<RunResult> = builds
        .iter()
        .filter_map(|build| {
            let path = ran.out.join(format!("{experiment}-{build}.json"));
            let text = std::fs::read_to_string(&path).ok()?;
            Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
        })
        .collect();
    // The verdicts first: the processes' logs after them can run long, and a failure's
    // output is often read from its head.
    let verdicts: Vec<String> = results
        .iter()
        .flat_map(|r| {
            r.hypothesis.iter().map(move |c| {
                format!("  {} {}: {}: {}", if c.held { "ok  " } else { "FAIL" }, r.build, c.probe, c.measured)
            })
        })
        .collect();
    assert_eq!(
        ran.code,
        Some(0),
        "archlab chaos {experiment} failed after {:?}\nverdicts:\n{}\nstdout:\n{}\nstderr:\n{}",
        started.elapsed(),
        verdicts.join("\n"),
        ran.stdout,
        ran.stderr,
    );
    assert_eq!(results.len(), builds.len(), "one result per build in {}", ran.out.display());
    for (result, &build) in results.iter().zip(builds) {
        assert_eq!(result.build, build);
        assert!(result.short, "{build}: the short mode was asked for");
        assert!(result.held, "{build}: exit 0 with a failed hypothesis: {:#?}", result.hypothesis);
        assert!(!result.hypothesis.is_empty(), "{build}: a hypothesis was checked");
        assert!(result.method.iter().all(|d| d.ok), "{build}: an action failed: {:#?}", result.method);
        assert!(ran.out.join(format!("{experiment}-{build}.md")).is_file(), "{build}: the Markdown report");
    }
    let _ = std::fs::remove_dir_all(&ran.out);
    results
}

/// The audit at the end found nothing.
fn assert_audit_clean(r: &RunResult) {
    let audit = r.audit.as_ref().unwrap_or_else(|| panic!("{}: the audit ran", r.build));
    assert!(audit.clean, "{}: {:#?}", r.build, audit.report.violations);
    assert!(audit.report.read.payments > 0, "{}: the audit read the run's payments", r.build);
}

/// Requests and errors of `step` over the seconds `from..to` of the timeline.
fn step_errors(r: &RunResult, step: &str, from: u32, to: u32) -> (u64, u64) {
    r.timeline
        .iter()
        .filter(|s| s.second >= from && s.second < to)
        .filter_map(|s| s.by_step.get(step))
        .fold((0, 0), |(requests, errors), s| (requests + s.requests, errors + s.errors))
}

/// The whole seconds of the fault window.
fn during(r: &RunResult) -> (u32, u32) {
    let (start, end) = r.fault_window_s.expect("the experiment has a fault");
    (start.ceil() as u32, end.floor() as u32)
}

#[test]
fn notifications_down_in_sync_mode_fails_purchases_honestly_and_loses_nothing() {
    for r in run_short("notifications-down-sync") {
        let (from, to) = during(&r);
        let (requests, errors) = step_errors(&r, "payments.create", from, to);
        if r.build == "monolith" {
            assert!(requests > 0 && errors == requests, "monolith: every purchase fails while notifications are down");
        } else {
            // The gateway's retry of a keyed purchase can land after the fault and succeed.
            assert!(requests > 0 && errors * 10 >= requests * 7, "{}: {errors} of {requests} failed", r.build);
        }
        assert_eq!(step_errors(&r, "users.me", 0, u32::MAX).1, 0, "{}: profile reads never fail", r.build);
        assert!(r.time_to_detect_s.is_some_and(|s| s <= 1.0), "{}: detected in the fault's first second", r.build);
        assert_audit_clean(&r);
    }
}

#[test]
fn notifications_down_in_async_mode_fails_no_purchase() {
    for r in run_short("notifications-down-async") {
        assert_eq!(step_errors(&r, "payments.create", 0, u32::MAX).1, 0, "{}: the outbox absorbs the outage", r.build);
        assert_eq!(r.time_to_detect_s, None, "{}: nothing a user sees failed", r.build);
        assert_audit_clean(&r);
    }
}

#[test]
fn a_slow_provider_slows_purchases_only() {
    for r in run_short("provider-slow") {
        assert!(r.timeline.iter().all(|s| s.errors == 0), "{}: nothing failed", r.build);
        assert_audit_clean(&r);
    }
}

#[test]
fn a_hanging_provider_fails_the_monoliths_purchases_and_makes_the_microservices_wait() {
    for r in run_short("provider-hanging") {
        let (from, to) = during(&r);
        let (requests, errors) = step_errors(&r, "payments.create", from + 1, to);
        assert!(requests > 0, "{}: purchases during the fault", r.build);
        if r.build == "monolith" {
            assert_eq!(errors, requests, "monolith: purchases give up while the provider hangs");
        } else {
            // The gateway's retries turn the hang into waiting: a purchase that failed did so
            // because its client stopped waiting, never with an error from the server.
            let server_errors: Vec<(u32, &String)> = r
                .timeline
                .iter()
                .flat_map(|s| s.errors_by_cause.keys().map(move |cause| (s.second, cause)))
                .filter(|(_, cause)| cause.as_str() != "timeout")
                .collect();
            assert!(server_errors.is_empty(), "{}: errors from the server: {server_errors:?}", r.build);
            let purchase = r.streams.iter().find(|s| s.scenario == "purchase").expect("the purchase stream");
            assert!(purchase.latency.max_us >= 2_000_000, "{}: the hang shows as waiting", r.build);
        }
        assert_audit_clean(&r);
    }
}

#[test]
fn a_lost_reply_fails_the_purchase_and_the_reconciler_charges_it_once() {
    for r in run_short("provider-lost-reply") {
        let (from, to) = during(&r);
        let (requests, errors) = step_errors(&r, "payments.create", from, to);
        if r.build == "monolith" {
            assert!(
                errors > 0 && errors < requests,
                "monolith: some replies are lost, not all: {errors} of {requests}"
            );
        } else {
            // A purchase fails only when the gateway's three attempts all lose their reply.
            assert!(requests > 0 && errors * 5 <= requests * 2, "{}: {errors} of {requests} failed", r.build);
        }
        assert_audit_clean(&r);
    }
}

#[test]
fn killing_payments_costs_the_monolith_every_endpoint_and_the_microservices_one() {
    for r in run_short("payments-killed") {
        let host = if r.build == "monolith" { "monolith" } else { "payments-service" };
        assert!(r.restarts.get(host).is_some_and(|n| *n >= 1), "{}: {host} restarted: {:?}", r.build, r.restarts);
        let profile_errors = step_errors(&r, "users.me", 0, u32::MAX).1;
        if r.build == "monolith" {
            assert!(profile_errors > 0, "the monolith's profile reads fail with it");
        } else {
            assert_eq!(profile_errors, 0, "{}: profile reads never notice", r.build);
        }
        assert!(r.time_to_recover_s.is_some(), "{}: recovered", r.build);
        assert_audit_clean(&r);
    }
}

#[test]
fn a_crashing_module_takes_down_the_monolith_and_only_itself_in_the_microservices() {
    for r in run_short("module-crash") {
        let host = if r.build == "monolith" { "monolith" } else { "notifications-service" };
        assert!(r.restarts.get(host).is_some_and(|n| *n >= 1), "{}: {host} crashed and came back", r.build);
        let errors: u64 = r.timeline.iter().map(|s| s.errors).sum();
        if r.build == "monolith" {
            assert!(errors > 0, "the monolith's endpoints fail while it is down");
        } else {
            assert_eq!(errors, 0, "{}: async delivery hides the crash from users", r.build);
        }
        assert_audit_clean(&r);
    }
}

#[test]
fn a_noisy_neighbour_slows_every_monolith_endpoint_and_keeps_profile_reads_served() {
    for r in run_short("noisy-neighbour") {
        assert_eq!(step_errors(&r, "users.me", 0, u32::MAX).1, 0, "{}: profile reads never fail", r.build);
        // The p99 probes (held, checked by run_short) carry the claim; here, that
        // the fault did burn: deliveries kept reaching the point while it was set.
        let (from, to) = during(&r);
        assert!(count(&r, "notifications.deliver reached", from, to) > 0, "{}: deliveries during the fault", r.build);
        assert_audit_clean(&r);
    }
}

/// What the build counted of `key` over the seconds `from..to`.
fn count(r: &RunResult, key: &str, from: u32, to: u32) -> u64 {
    r.counters.iter().filter(|s| s.second >= from && s.second < to).filter_map(|s| s.counts.get(key)).sum()
}

/// Requests of the whole load over the seconds `from..to`.
fn requests(r: &RunResult, from: u32, to: u32) -> u64 {
    r.timeline.iter().filter(|s| s.second >= from && s.second < to).map(|s| s.requests).sum()
}

#[test]
fn a_slow_users_module_slows_every_flow_that_reads_a_profile() {
    for r in run_short("users-slow") {
        assert!(r.timeline.iter().all(|s| s.errors == 0), "{}: nothing failed", r.build);
        let (from, to) = during(&r);
        assert!(count(&r, "users.get_profile reached", from, to) > 0, "{}: profiles were read", r.build);
        assert_audit_clean(&r);
    }
}

#[test]
fn without_a_budget_retries_multiply_the_load_on_a_failing_dependency() {
    for r in run_short("retry-storm") {
        let (from, to) = during(&r);
        let (from, sent) = (from + 1, requests(&r, from + 1, to));
        let reached = count(&r, "users.get_profile reached", from, to);
        let retries = count(&r, "retry", 0, u32::MAX);
        if r.build == "monolith" {
            assert_eq!(retries, 0, "the monolith has no remote client to retry");
            // One call per request: the counters are read on whole seconds of the clock, the
            // requests counted in the second they were due, so a few move across an edge.
            assert!(reached.abs_diff(sent) <= 3 + sent / 20, "one call per request: {reached} for {sent}");
        } else {
            assert!(reached * 10 >= sent * 16, "{}: {reached} calls for {sent} requests", r.build);
            assert!(count(&r, "retry_budget_exhausted", 0, u32::MAX) == 0, "{}: no budget refused a retry", r.build);
        }
    }
}

#[test]
fn the_retry_budget_caps_retries_and_the_breaker_sheds_load_until_the_dependency_recovers() {
    for r in run_short("retry-storm-guarded") {
        if r.build == "monolith" {
            continue;
        }
        // The budget's own bound, recomputed from the clients' counts over the whole run.
        let seconds = r.counters.len() as u64;
        let (retries, calls) = (count(&r, "retry", 0, u32::MAX), count(&r, "internal_rpc", 0, u32::MAX));
        assert!(retries > 0, "{}: some failures were retried", r.build);
        assert!(retries * 5 <= calls + 50 * seconds, "{}: {retries} retries for {calls} calls", r.build);
        // The breaker opened during the fault and closed after it.
        let (from, to) = during(&r);
        assert!(count(&r, "breaker_opened", from, to) >= 1, "{}: the breaker opened", r.build);
        assert!(count(&r, "breaker_closed", to, u32::MAX) >= 1, "{}: and closed again", r.build);
        let (sent, reached) = (requests(&r, from + 1, to), count(&r, "users.get_profile reached", from + 1, to));
        assert!(reached * 2 <= sent, "{}: {reached} calls reached the dependency for {sent} requests", r.build);
        let last = r.timeline.last().expect("a timeline");
        assert_eq!(last.errors, 0, "{}: reads succeed again by the end", r.build);
    }
}

#[test]
fn restarting_payments_to_deploy_costs_the_monolith_every_endpoint_and_the_microservices_none() {
    for r in run_short("restart-to-deploy") {
        let host = if r.build == "monolith" { "monolith" } else { "payments-service" };
        assert_eq!(r.restarts.get(host), Some(&1), "{}: {host} restarted once: {:?}", r.build, r.restarts);
        let profile_errors = step_errors(&r, "users.me", 0, u32::MAX).1;
        if r.build == "monolith" {
            assert!(profile_errors > 0, "the monolith's profile reads fail while it restarts");
        } else {
            assert_eq!(profile_errors, 0, "{}: profile reads never notice", r.build);
        }
        assert_audit_clean(&r);
    }
}

#[test]
fn a_slow_payments_database_slows_the_whole_monolith_and_only_purchases_in_the_microservices() {
    for r in run_short("payments-db-slow") {
        assert!(r.timeline.iter().all(|s| s.errors == 0), "{}: nothing failed", r.build);
        assert!(r.method.iter().any(|d| d.what.contains("latency toxic")), "{}: the toxic was set", r.build);
        assert_audit_clean(&r);
    }
}

/// With the killed replica left down, only the balancer taking it out of rotation can keep
/// purchases succeeding: from the second after the detection time, none fails.
#[test]
fn killing_one_of_two_payments_replicas_fails_no_purchase_after_the_detection_time() {
    for r in run_short_on("replica-killed", &["micro-grpc"]) {
        assert!(r.restarts.is_empty(), "the killed replica was left down: {:?}", r.restarts);
        assert!(r.method.iter().any(|d| d.what.contains("SIGKILL payments-service-2")), "{:?}", r.method);
        let (kill, _) = during(&r);
        let detected = kill + archlab_remote::replicas::DETECTION.as_secs_f64().ceil() as u32;
        let (purchases, failed) = step_errors(&r, "payments.create", detected, u32::MAX);
        assert!(purchases > 0, "purchases went on after the kill");
        assert_eq!(failed, 0, "{failed} of {purchases} purchases failed after the detection time");
        assert_audit_clean(&r);
    }
}

#[test]
fn the_broker_down_delays_receipts_and_loses_none() {
    for r in run_short_on("broker-down", &["micro-grpc"]) {
        assert!(r.timeline.iter().all(|s| s.errors == 0), "{}: purchases went on", r.build);
        assert!(r.method.iter().any(|d| d.what.contains("broker down")), "{}: the broker was cut", r.build);
        assert_audit_clean(&r);
    }
}

#[test]
fn clients_hanging_up_mid_purchase_leave_every_purchase_settled() {
    for r in run_short("clients-hang-up-mid-purchase") {
        let (from, to) = during(&r);
        let (requests, errors) = step_errors(&r, "payments.create", from + 1, to);
        assert!(requests > 0 && errors == requests, "{}: the clients hung up on every purchase", r.build);
        let causes: u64 = r
            .timeline
            .iter()
            .filter(|s| s.second > from && s.second < to)
            .filter_map(|s| s.errors_by_cause.get("timeout"))
            .sum();
        assert_eq!(causes, errors, "{}: each failure is the client hanging up", r.build);
        assert_audit_clean(&r);
    }
}

/// An experiment that is refused: nonzero exit, the message on stderr, no process started,
/// nothing written.
fn assert_refused(args: &[&str], says: &[&str]) {
    let started = Instant::now();
    let ran = chaos(args);
    assert_eq!(ran.code, Some(1), "archlab chaos {args:?}: stdout {} stderr {}", ran.stdout, ran.stderr);
    for word in says {
        assert!(ran.stderr.contains(word), "archlab chaos {args:?} does not say {word:?}: {}", ran.stderr);
    }
    assert!(!ran.stdout.contains("started"), "a process was started: {}", ran.stdout);
    let written = std::fs::read_dir(&ran.out).map(|d| d.count()).unwrap_or(0);
    assert_eq!(written, 0, "archlab chaos {args:?} wrote into {}", ran.out.display());
    assert!(started.elapsed() < Duration::from_secs(10), "refused at once, not after starting a build");
    let _ = std::fs::remove_dir_all(&ran.out);
}

/// An experiment file under a fresh directory.
fn file(text: &str) -> PathBuf {
    let path = common::temp_dir("chaos-file").join("bad.toml");
    std::fs::write(&path, text).expect("writing an experiment file");
    path
}

const VALID: &str = include_str!("../../../chaos/experiments/notifications-down-sync.toml");

#[test]
fn an_unknown_experiment_is_refused_listing_the_known_ones() {
    assert_refused(
        &["no-such-experiment", "--bin-dir", "."],
        &["unknown experiment", "payments-killed", "noisy-neighbour"],
    );
}

#[test]
fn an_unknown_action_is_refused_listing_the_known_ones() {
    let path = file(&VALID.replace("action = \"clear_fault\"", "action = \"unplug_everything\""));
    assert_refused(&[&path.to_string_lossy(), "--bin-dir", "."], &["unplug_everything", "set_fault", "kill"]);
}

#[test]
fn out_of_range_rates_and_shares_are_refused() {
    let rate = file(&VALID.replace("rate = 10 }", "rate = -5 }"));
    assert_refused(&[&rate.to_string_lossy(), "--bin-dir", "."], &["rate must be within"]);
    let share = file(&VALID.replace("fault = { fail_share = 1.0 }", "fault = { fail_share = 3.0 }"));
    assert_refused(&[&share.to_string_lossy(), "--bin-dir", "."], &["fail_share must be"]);
    let lost = file(&format!("{VALID}\n[[rollback]]\naction = \"extsim\"\npayments = {{ lost_reply_rate = 1.5 }}\n"));
    assert_refused(&[&lost.to_string_lossy(), "--bin-dir", "."], &["payments.lost_reply_rate"]);
}

#[test]
fn an_unknown_toxic_or_link_or_a_link_the_monolith_lacks_is_refused() {
    let slow = include_str!("../../../chaos/experiments/payments-db-slow.toml");
    let toxic = file(&slow.replace("type = \"latency\"", "type = \"gremlins\""));
    assert_refused(&[&toxic.to_string_lossy(), "--bin-dir", "."], &["gremlins", "latency", "reset_peer"]);
    let link = file(&slow.replace("link = \"payments-db\"", "link = \"mainframe\""));
    assert_refused(&[&link.to_string_lossy(), "--bin-dir", "."], &["mainframe", "broker", "payments-db"]);
    let bandwidth = file(&slow.replace(
        "toxic = { type = \"latency\", attributes = { latency = 50 } }",
        "toxic = { type = \"bandwidth\", attributes = { rate = 0 } }",
    ));
    assert_refused(&[&bandwidth.to_string_lossy(), "--bin-dir", "."], &["rate must be at least 1"]);
    let broker = file(
        &include_str!("../../../chaos/experiments/broker-down.toml")
            .replace("builds = [\"micro-grpc\", \"micro-http\"]", "builds = [\"monolith\", \"micro-grpc\"]"),
    );
    assert_refused(&[&broker.to_string_lossy(), "--bin-dir", "."], &["monolith", "no broker"]);
    let service = file(&slow.replace("link = \"payments-db\"", "link = \"users-service\""));
    assert_refused(&[&service.to_string_lossy(), "--bin-dir", "."], &["monolith", "in-process", "users-service"]);
}

#[test]
fn an_unknown_fault_point_or_setting_is_refused() {
    let point =
        file(&VALID.replace("point = \"notifications.deliver\"\nfault", "point = \"notifications.explode\"\nfault"));
    assert_refused(&[&point.to_string_lossy(), "--bin-dir", "."], &["notifications.explode", "users.create_profile"]);
    let knob = file(&VALID.replace("fault = { fail_share = 1.0 }", "fault = { slow_loris = 1 }"));
    assert_refused(&[&knob.to_string_lossy(), "--bin-dir", "."], &["slow_loris"]);
}
