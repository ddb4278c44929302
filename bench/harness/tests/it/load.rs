//! `archlab load` against the calibration servers: the counts add up, the rate is held, and
//! a server stall shows in the corrected latency but not in the service time.

use archlab_harness::calibrate::{StallSpec, start_servers};
use archlab_harness::load::{self, Plan, Scenario, Seeded};
use archlab_harness::model::Offered;
use std::time::Duration;

fn user() -> Seeded {
    Seeded::new(vec![("load-test@example.com".into(), "token".into())])
}

fn plan(target: String, rate: f64, connections: u32, duration: Duration) -> Plan {
    Plan {
        target,
        scenario: Scenario::Profile,
        offered: Offered::Open { rate_per_s: rate },
        connections,
        warmup: Duration::from_millis(200),
        duration,
        max_requests: 100_000,
        timeout: Duration::from_secs(5),
        progress: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_loop_holds_its_rate_and_its_counts_add_up() -> anyhow::Result<()> {
    let servers = start_servers(StallSpec::default(), None)?;
    let report =
        load::run(&plan(format!("http://{}", servers.hello), 500.0, 4, Duration::from_secs(1)), &user()).await?;
    assert_eq!(report.requests, report.ok + report.errors.values().sum::<u64>(), "{report:?}");
    assert_eq!(report.ok, report.requests, "hello answers 200 to all: {:?}", report.errors);
    assert!((report.throughput_per_s - 500.0).abs() < 100.0, "throughput {}", report.throughput_per_s);
    assert!(report.unsent < 25, "unsent {}", report.unsent);
    assert_eq!(report.latency.count, report.requests);
    assert_eq!(report.by_step["users.me"].count, report.requests);
    // Warm-up excluded: 1 s at 500/s, not 1.2 s.
    assert!(report.requests <= 510, "{}", report.requests);
    // The total counts the warm-up's ~100 too (0.2 s at 500/s), and nothing twice.
    assert!(
        report.sent_total >= report.requests + 50 && report.sent_total <= 620,
        "sent {} with {} in the window",
        report.sent_total,
        report.requests
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stall_shows_in_latency_not_in_service_time() -> anyhow::Result<()> {
    // Stalled from 0.5 s to 1.5 s after start, inside the window (0.2 s to 2.2 s).
    let spec = StallSpec { every: Duration::from_millis(1500), length: Duration::from_secs(1) };
    let servers = start_servers(spec, None)?;
    let report =
        load::run(&plan(format!("http://{}", servers.stall), 200.0, 4, Duration::from_secs(2)), &user()).await?;
    assert_eq!(report.requests, report.ok, "{:?}", report.errors);
    assert!(report.latency.max_us >= 900_000, "corrected max {} µs", report.latency.max_us);
    // Requests queued behind the stall waited for it too, not only the first per connection.
    assert!(report.latency.p90_us >= 300_000, "corrected p90 {} µs", report.latency.p90_us);
    assert!(report.service_time.p50_us < 50_000, "service p50 {} µs", report.service_time.p50_us);
    Ok(())
}

#[tokio::test]
async fn non_loopback_targets_are_refused() {
    let report = load::run(&plan("http://192.0.2.1:80".into(), 10.0, 1, Duration::from_secs(1)), &user()).await;
    assert!(report.is_err());
}
