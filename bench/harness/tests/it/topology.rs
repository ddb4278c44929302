//! The topology tables: which processes, in which order, polled where, told what.

use archlab_harness::logs;
use archlab_harness::topology::Module;
use archlab_harness::{Kind, NotificationMode, Options, Topology, Transport};
use std::collections::HashMap;
use std::time::Duration;

/// A topology built against exactly `vars` as its environment.
fn topology(kind: Kind, options: Options, vars: &[(&str, &str)]) -> Topology {
    let env: HashMap<String, String> = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    Topology::new(kind, options, |key| env.get(key).cloned())
}

fn ready_urls(topology: &Topology) -> Vec<(&str, &str)> {
    topology.processes.iter().map(|p| (p.name, p.ready_url.as_str())).collect()
}

fn child_env<'a>(topology: &'a Topology, key: &str) -> Option<&'a str> {
    topology.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn monolith_defaults_match_the_binaries_defaults() {
    let t = topology(Kind::Monolith, Options::default(), &[]);
    assert_eq!(
        ready_urls(&t),
        [("extsim", "http://127.0.0.1:8090/health"), ("monolith", "http://127.0.0.1:8080/ready")]
    );
    assert_eq!(t.public_url, "http://127.0.0.1:8080");
    assert_eq!(child_env(&t, "EXTSIM_URL"), Some("http://127.0.0.1:8090"));
    assert_eq!(t.mode, NotificationMode::Async);
    assert_eq!(t.transport, None);
}

#[test]
fn env_overrides_move_the_readiness_urls() {
    let t = topology(
        Kind::Monolith,
        Options::default(),
        &[("EXTSIM_ADDR", "127.0.0.1:41001"), ("MONOLITH_ADDR", "127.0.0.1:41002")],
    );
    assert_eq!(
        ready_urls(&t),
        [("extsim", "http://127.0.0.1:41001/health"), ("monolith", "http://127.0.0.1:41002/ready")]
    );
    assert_eq!(child_env(&t, "EXTSIM_URL"), Some("http://127.0.0.1:41001"));

    let t = topology(
        Kind::Micro,
        Options::default(),
        &[
            ("USERS_HTTP_ADDR", "127.0.0.1:42002"),
            ("USERS_GRPC_ADDR", "127.0.0.1:43002"),
            ("GATEWAY_ADDR", "0.0.0.0:42000"),
        ],
    );
    let users = t.processes.iter().find(|p| p.name == "users-service").expect("users-service is in micro");
    assert_eq!(users.ready_url, "http://127.0.0.1:42002/ready");
    assert_eq!(users.grpc_addr.as_deref(), Some("127.0.0.1:43002"));
    assert_eq!(t.processes.last().map(|p| p.ready_url.as_str()), Some("http://0.0.0.0:42000/ready"));
    assert_eq!(t.public_url, "http://0.0.0.0:42000");
}

#[test]
fn an_empty_variable_counts_as_unset() {
    let t = topology(Kind::Monolith, Options::default(), &[("MONOLITH_ADDR", ""), ("EXTSIM_URL", "")]);
    assert_eq!(t.processes[1].ready_url, "http://127.0.0.1:8080/ready");
    assert_eq!(child_env(&t, "EXTSIM_URL"), Some("http://127.0.0.1:8090"));
}

#[test]
fn micro_starts_extsim_first_and_the_gateway_last() {
    let t = topology(Kind::Micro, Options::default(), &[]);
    assert_eq!(
        t.names(),
        ["extsim", "auth-service", "users-service", "notifications-service", "payments-service", "gateway"]
    );
    assert_eq!(
        ready_urls(&t)[1..],
        [
            ("auth-service", "http://127.0.0.1:8001/ready"),
            ("users-service", "http://127.0.0.1:8002/ready"),
            ("notifications-service", "http://127.0.0.1:8004/ready"),
            ("payments-service", "http://127.0.0.1:8003/ready"),
            ("gateway", "http://127.0.0.1:8000/ready"),
        ]
    );
    let grpc: Vec<_> = t.processes.iter().filter_map(|p| p.grpc_addr.as_deref()).collect();
    assert_eq!(grpc, ["127.0.0.1:9001", "127.0.0.1:9002", "127.0.0.1:9004", "127.0.0.1:9003"]);
    assert_eq!(t.transport, Some(Transport::Grpc));
}

#[test]
fn no_extsim_drops_the_process_but_keeps_its_url_for_the_children() {
    let options = Options { extsim: false, ..Options::default() };
    let t = topology(Kind::Micro, options, &[("EXTSIM_ADDR", "127.0.0.1:41090")]);
    assert_eq!(t.names().first(), Some(&"auth-service"));
    assert!(!t.names().contains(&"extsim"));
    assert_eq!(child_env(&t, "EXTSIM_URL"), Some("http://127.0.0.1:41090"));
}

#[test]
fn an_existing_extsim_url_is_left_alone() {
    let t = topology(Kind::Monolith, Options::default(), &[("EXTSIM_URL", "http://sim.example:9999")]);
    assert_eq!(child_env(&t, "EXTSIM_URL"), None);
    assert_eq!(t.extsim_url, "http://sim.example:9999");
}

#[test]
fn mode_and_transport_reach_the_children_only_when_chosen() {
    let t = topology(Kind::Micro, Options::default(), &[("NOTIFICATION_MODE", "sync"), ("INTERNAL_TRANSPORT", "http")]);
    assert_eq!(child_env(&t, "NOTIFICATION_MODE"), None, "inherited, not re-set");
    assert_eq!(child_env(&t, "INTERNAL_TRANSPORT"), None, "inherited, not re-set");
    assert_eq!((t.mode, t.transport), (NotificationMode::Sync, Some(Transport::Http)), "what the children will parse");

    let chosen = Options { mode: Some(NotificationMode::Sync), transport: Some(Transport::Http), ..Options::default() };
    let t = topology(Kind::Micro, chosen, &[]);
    assert_eq!(child_env(&t, "NOTIFICATION_MODE"), Some("sync"));
    assert_eq!(child_env(&t, "INTERNAL_TRANSPORT"), Some("http"));

    let t = topology(Kind::Monolith, chosen, &[]);
    assert_eq!(child_env(&t, "NOTIFICATION_MODE"), Some("sync"));
    assert_eq!(child_env(&t, "INTERNAL_TRANSPORT"), None, "the monolith has no internal transport");
    assert_eq!(t.transport, None);
}

#[test]
fn the_summary_names_every_address_and_the_delivery_mode() {
    let t = topology(Kind::Micro, Options::default(), &[("AUTH_GRPC_ADDR", "127.0.0.1:49001")]);
    let summary = t.summary(Duration::from_millis(1500));
    assert!(summary.starts_with("archlab: micro ready in 1.5 s\n"), "{summary}");
    for needle in [
        "http://127.0.0.1:8000",
        "http://127.0.0.1:8090",
        "http://127.0.0.1:8001  grpc 127.0.0.1:49001",
        "http://127.0.0.1:8004  grpc 127.0.0.1:9004",
        "async: outbox + RabbitMQ",
        "internal transport      grpc",
    ] {
        assert!(summary.contains(needle), "{needle:?} missing from:\n{summary}");
    }

    let summary = topology(Kind::Monolith, Options::default(), &[]).summary(Duration::ZERO);
    assert!(summary.contains("async: outbox + in-process worker"), "{summary}");
    assert!(!summary.contains("internal transport"), "{summary}");
    assert!(summary.contains("fault admin endpoints   none"), "{summary}");
}

#[test]
fn the_summary_names_each_fault_admin_endpoint_its_environment_places() {
    let t = topology(Kind::Micro, Options::default(), &[("PAYMENTS_ADMIN_ADDR", "127.0.0.1:49104")]);
    let summary = t.summary(Duration::ZERO);
    assert!(summary.contains("fault admin             payments-service  http://127.0.0.1:49104"), "{summary}");
    assert_eq!(summary.matches("fault admin").count(), 1, "only the one placed:\n{summary}");
    assert!(!summary.contains("fault admin endpoints   none"), "{summary}");
    // The monolith has no such variable for the services: theirs are not printed for it.
    let t = topology(Kind::Monolith, Options::default(), &[("PAYMENTS_ADMIN_ADDR", "127.0.0.1:49104")]);
    assert!(!t.summary(Duration::ZERO).contains("49104"));
}

#[test]
fn prefixes_pad_names_to_one_column() {
    assert_eq!(logs::prefix("extsim", 0, 8, false), "extsim   | ");
    assert_eq!(logs::prefix("monolith", 1, 8, false), "monolith | ");
    let colored = logs::prefix("extsim", 0, 8, true);
    assert!(
        colored.starts_with("\x1b[") && colored.contains("extsim   |") && colored.ends_with("\x1b[0m "),
        "{colored:?}"
    );
    assert_ne!(colored, logs::prefix("extsim", 1, 8, true), "neighbours get different colours");
}

/// The hybrid: the extracted service and the core before the gateway, the module's URLs
/// pointing at the service that has it and every other module's at the core. A kept module
/// left pointing at its (absent) service would make the gateway answer 502 for it.
#[test]
fn the_hybrid_points_every_kept_module_at_the_core() {
    for (extract, service, order) in [
        (Module::Notifications, "notifications-service", ["notifications-service", "hybrid"]),
        (Module::Payments, "payments-service", ["hybrid", "payments-service"]),
    ] {
        let t = topology(
            Kind::Hybrid,
            Options { extract, ..Options::default() },
            &[("HYBRID_HTTP_ADDR", "127.0.0.1:41005")],
        );
        assert_eq!(t.names(), ["extsim", order[0], order[1], "gateway"], "{extract} out");
        assert_eq!(t.public_url, "http://127.0.0.1:8000");
        assert_eq!(t.extract, Some(extract));
        assert_eq!(t.transport, Some(Transport::Grpc));
        assert_eq!(child_env(&t, "EXTRACT"), Some(extract.name()));
        for module in ["AUTH", "USERS", "PAYMENTS", "NOTIFICATIONS"] {
            let http = child_env(&t, &format!("{module}_HTTP_URL"));
            if service.starts_with(&module.to_lowercase()) {
                assert_eq!(http, None, "{extract} out: {module} stays at its service's default");
            } else {
                assert_eq!(http, Some("http://127.0.0.1:41005"), "{extract} out: {module} is in the core");
            }
        }
        let grpc = child_env(&t, "AUTH_GRPC_URL");
        assert_eq!(grpc, Some("http://127.0.0.1:9005"), "{extract} out: the core's gRPC");
        assert!(t.summary(Duration::ZERO).contains(&format!("{extract}: {service}, the rest in hybrid")));
    }
}

/// `--replicas payments=2`: a second payments-service process on its own addresses (the
/// first's ports plus 100 unless placed), with no admin endpoint of the first's, and the
/// gateway given both URLs. A second process on the first's addresses would not start.
#[test]
fn a_second_payments_replica_gets_its_own_addresses_and_the_gateway_both() {
    let options = Options { payments_replicas: 2, ..Options::default() };
    let t = topology(Kind::Micro, options, &[("PAYMENTS_ADMIN_ADDR", "127.0.0.1:41103")]);
    let replica = t.processes.iter().find(|p| p.name == "payments-service-2").expect("the second replica");
    assert_eq!(replica.binary, "payments-service");
    assert_eq!(replica.http_url, "http://127.0.0.1:8103");
    assert_eq!(replica.grpc_addr.as_deref(), Some("127.0.0.1:9103"));
    assert_eq!(replica.admin_url, None);
    let own = |key: &str| replica.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    assert_eq!(own("PAYMENTS_HTTP_ADDR"), Some("127.0.0.1:8103"));
    assert_eq!(own("PAYMENTS_ADMIN_ADDR"), Some(""), "unset, not the first replica's port");
    assert_eq!(child_env(&t, "PAYMENTS_HTTP_URL"), Some("http://127.0.0.1:8003,http://127.0.0.1:8103"));
    assert_eq!(t.binaries().iter().filter(|b| **b == "payments-service").count(), 1);
    assert_eq!(t.names().last(), Some(&"gateway"));

    let placed = topology(Kind::Micro, options, &[("PAYMENTS_HTTP_ADDR_2", "127.0.0.1:45000")]);
    let replica = placed.processes.iter().find(|p| p.name == "payments-service-2").expect("the second replica");
    assert_eq!(replica.http_url, "http://127.0.0.1:45000");
    let single = topology(Kind::Micro, Options::default(), &[]);
    assert_eq!(child_env(&single, "PAYMENTS_HTTP_URL"), None, "one process: the default URL");
}

/// `--replicas monolith=2`: two monoliths on their own addresses behind the gateway, which
/// passes every request through to both and is the public URL; the per-address limit moves
/// to the gateway (the monoliths would see only its address).
#[test]
fn replicated_monoliths_sit_behind_a_pass_through_gateway() {
    let options = Options { monolith_replicas: 2, ..Options::default() };
    let t = topology(Kind::Monolith, options, &[]);
    assert_eq!(t.names(), ["extsim", "monolith", "monolith-2", "gateway"]);
    assert_eq!(t.public_url, "http://127.0.0.1:8000");
    assert_eq!(child_env(&t, "GATEWAY_PASS_THROUGH"), Some("on"));
    for var in ["AUTH_HTTP_URL", "USERS_HTTP_URL", "PAYMENTS_HTTP_URL", "NOTIFICATIONS_HTTP_URL"] {
        assert_eq!(child_env(&t, var), Some("http://127.0.0.1:8080,http://127.0.0.1:8180"), "{var}");
    }
    for monolith in t.processes.iter().filter(|p| p.binary == "monolith") {
        let limit = monolith.env.iter().find(|(k, _)| k == "AUTH_LIMIT_PER_ADDRESS_PER_MINUTE");
        assert_eq!(limit.map(|(_, v)| v.as_str()), Some("0"), "{}", monolith.name);
    }
    let single = topology(Kind::Monolith, Options::default(), &[]);
    assert_eq!(single.names(), ["extsim", "monolith"], "one monolith: no gateway");
}
