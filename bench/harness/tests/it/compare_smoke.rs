//! `archlab compare --profile smoke` end to end against both builds and the baseline: the
//! real binaries (built by `make test` before the tests run), real databases and broker,
//! tiny load. It proves the whole path — start, seed, step, meter, report, stop, clean up —
//! and that the figures differ where the builds really differ.

use archlab_harness::model::CompareReport;
use std::process::Command;

fn admin() -> String {
    let base = std::env::var("DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
    format!("{base}/postgres")
}

/// Databases a compare run would leave behind if it did not clean up.
fn compare_databases() -> Vec<String> {
    let out = Command::new("psql")
        .args([&admin(), "-Atc", r"SELECT datname FROM pg_database WHERE datname LIKE '%\_cmp\_%' ORDER BY 1"])
        .output()
        .expect("psql runs");
    assert!(out.status.success(), "psql failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn smoke_compare_measures_both_builds_and_cleans_up() {
    let out = tempdir();
    let before = compare_databases();
    let status = Command::new(env!("CARGO_BIN_EXE_archlab"))
        .args(["compare", "--profile", "smoke", "--builds", "monolith,micro-grpc", "--placement", "shared"])
        .arg("--out")
        .arg(&out)
        .arg("--criterion-dir")
        .arg(out.join("no-criterion-here"))
        .status()
        .expect("archlab runs");
    assert!(status.success(), "archlab compare --profile smoke failed: {status}");

    let json = std::fs::read_to_string(out.join("report.json")).expect("report.json written");
    let report: CompareReport = serde_json::from_str(&json).expect("report.json is a CompareReport");
    let names: Vec<&str> = report.builds.iter().map(|b| b.name.as_str()).collect();
    assert_eq!(names, ["monolith", "micro-grpc"]);

    for build in &report.builds {
        assert!(!build.steps.is_empty(), "{}: no saturation steps", build.name);
        let answered: u64 = build.steps.iter().map(|s| s.report.ok).sum();
        assert!(answered > 0, "{}: no request answered as expected in any step", build.name);
        assert_eq!(build.at_common_rate.len(), 6, "{}: every scenario runs at the common rate", build.name);
        // The headline round: each build ran once more, up together with the other.
        assert_eq!(build.headline_runs.len(), 1, "{}: one headline round in the smoke profile", build.name);
        assert!(build.headline_runs[0].ok > 0, "{}: the headline run answered nothing", build.name);
        assert!(
            build.headline_cpu_s_per_1k.len() == 1 && build.headline_cpu_s_per_1k[0] > 0.0,
            "{}: the headline run's CPU was not metered: {:?}",
            build.name,
            build.headline_cpu_s_per_1k
        );
        assert!(
            build.headline_floods.len() == 1 && build.headline_floods[0].throughput_per_s > 0.0,
            "{}: the headline flood answered nothing: {:?}",
            build.name,
            build.headline_floods.iter().map(|f| f.throughput_per_s).collect::<Vec<_>>()
        );
        for run in &build.at_common_rate {
            assert!(
                run.ok > 0,
                "{}: scenario {} answered nothing as expected: {:?}",
                build.name,
                run.scenario,
                run.errors
            );
        }
        let cost = &build.cost;
        assert!(cost.rss_idle_bytes > 1 << 20, "{}: resident memory not read ({})", build.name, cost.rss_idle_bytes);
        assert!(cost.cpu_s_per_1k_app > 0.0, "{}: no CPU time metered", build.name);
        assert!(cost.db_connections_idle > 0, "{}: no database connection seen", build.name);
        assert!(cost.startup_ms > 0 && cost.binaries_total_bytes > 0);
        let calls = |kind: &str| cost.network_calls_per_request.get(kind).copied().unwrap_or(0.0);
        assert!(
            calls("database") > 0.0,
            "{}: database calls not counted: {:?}",
            build.name,
            cost.network_calls_per_request
        );
    }
    let (mono, micro) = (&report.builds[0].cost, &report.builds[1].cost);
    assert_eq!((mono.processes, micro.processes), (1, 5), "the monolith is one process, the microservices five");
    let rpc =
        |c: &archlab_harness::model::Cost| c.network_calls_per_request.get("internal_rpc").copied().unwrap_or(0.0);
    assert_eq!(rpc(mono), 0.0, "the monolith makes no internal calls");
    assert!(
        rpc(micro) >= 1.0,
        "every browse request crosses the gateway at least once: {:?}",
        micro.network_calls_per_request
    );

    let baseline = report.baseline.as_ref().expect("the baseline ran beside the monolith");
    assert!(baseline.max_throughput.first().is_some_and(|r| r.ok > 0), "the baseline answered nothing");

    // Read from /proc/stat around the rounds: a share, on both sides of the placement.
    let steal = report.meta.headline_steal.expect("steal recorded around the headline rounds");
    assert!(
        (0.0..=1.0).contains(&steal.app_cpus) && (0.0..=1.0).contains(&steal.load_cpus),
        "steal is a share of the CPUs' wanted time: {steal:?}"
    );

    let md = std::fs::read_to_string(out.join("report.md")).expect("report.md written");
    assert!(md.contains("monolith") && md.contains("micro-grpc"));
    assert!(out.join("report.html").is_file());
    // Chaos runs (`_cmp_chaos…`) create and drop databases of the same shape meanwhile, in
    // tests beside this one; any other new one is the comparison's own, left behind.
    let left: Vec<String> =
        compare_databases().into_iter().filter(|d| !before.contains(d) && !d.contains("_cmp_chaos")).collect();
    assert!(left.is_empty(), "compare must drop the databases it created; left: {left:?}");
    let _ = std::fs::remove_dir_all(&out);
}

fn tempdir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("archlab-compare-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("creating a temporary directory");
    dir
}
