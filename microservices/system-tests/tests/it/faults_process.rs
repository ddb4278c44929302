//! The fault kinds only a real process shows, on the real `users-service` binary (build it
//! first: `cargo build --workspace --bins`): abort ends it with SIGABRT, a CPU burn raises
//! its CPU time, a leak its resident memory (the shared cases of
//! `archlab_conformance::faults`, which the monolith passes too). `ARCHLAB_FAULTS`, given
//! to every process of a build alike, sets the points this one reaches, passes over those of
//! other services, and stops the start on a name no service has.
//!
//! The calls come as auth-service's would: `UsersApi::create_profile` over internal HTTP,
//! signed with the shared secret, passing `users.create_profile`.

use archlab_conformance::faults::{self, Admin, FaultyProcess, SIGNUP_POINT};
use archlab_kernel::faults::points;
use archlab_kernel::processes::USERS_SERVICE;
use archlab_kernel::{Email, Error};
use archlab_remote::http::HttpUsersClient;
use archlab_remote::{ClientConfig, ServiceCredentials, Transport};
use archlab_testkit::process::{Child, free_addrs};
use archlab_users::{DisplayName, NewProfile, UsersApi};
use serde_json::json;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;
use uuid::Uuid;

const SECRET: &str = "faults-process-test-secret";
/// A cold start creates and migrates a database.
const START_WITHIN: Duration = Duration::from_secs(60);

/// The real users-service on free ports, with its admin endpoint and a fresh database.
struct UsersService {
    child: Child,
    admin: Admin,
    users: HttpUsersClient,
}

fn env(extra: &[(&'static str, String)], database_url: String) -> Vec<(&'static str, String)> {
    let (database_var, _) = USERS_SERVICE.database.expect("users-service has a database");
    let grpc = USERS_SERVICE.grpc.expect("users-service serves gRPC");
    let [grpc_addr] = free_addrs::<1>();
    let mut env = vec![
        (database_var, archlab_testkit::fresh_database_name("users_proc")),
        ("DATABASE_URL", database_url),
        ("DB_MAX_CONNECTIONS", "5".to_owned()),
        ("INTERNAL_SECRET", SECRET.to_owned()),
        (grpc.addr_var, grpc_addr.to_string()),
        ("ARCHLAB_FAULTS", String::new()),
    ];
    env.extend_from_slice(extra);
    env
}

async fn start(archlab_faults: &str) -> UsersService {
    let [http, admin] = free_addrs::<2>();
    let admin_var = USERS_SERVICE.admin_addr_var.expect("users-service has fault points");
    let extra = [
        (USERS_SERVICE.http.addr_var, http.to_string()),
        (admin_var, admin.to_string()),
        ("ARCHLAB_FAULTS", archlab_faults.to_owned()),
    ];
    let mut child = Child::spawn(USERS_SERVICE.name, &env(&extra, archlab_testkit::database_url().await));
    child.wait_listening(http, START_WITHIN).await;
    child.wait_listening(admin, START_WITHIN).await;
    let config = ClientConfig {
        transport: Transport::Http,
        internal_timeout_ms: 20_000,
        internal_concurrency: 4,
        ..ClientConfig::default()
    };
    let from = ServiceCredentials::new("auth-service", SECRET.as_bytes());
    let users = HttpUsersClient::new(&format!("http://{http}"), &config, &from).expect("a users client");
    UsersService { child, admin: Admin::new(&format!("http://{admin}")), users }
}

impl UsersService {
    async fn create_profile(&self) -> Result<(), Error> {
        let id = Uuid::new_v4();
        let new = NewProfile {
            user_id: id,
            email: Email::parse(&format!("{}@example.com", id.simple())).expect("an email"),
            name: DisplayName::parse("Ada").expect("a name"),
        };
        self.users.create_profile(new).await.map(drop)
    }
}

impl FaultyProcess for UsersService {
    fn admin(&self) -> &Admin {
        &self.admin
    }
    async fn call(&self) -> Result<(), String> {
        self.create_profile().await.map_err(|e| e.to_string())
    }
    fn cpu_time(&self) -> Duration {
        self.child.cpu_time()
    }
    fn rss_bytes(&self) -> u64 {
        self.child.rss_bytes()
    }
    async fn wait_signal(&mut self, within: Duration) -> Option<i32> {
        self.child.wait_exit(within).await.and_then(|status| status.signal())
    }
    fn stderr(&self) -> String {
        self.child.stderr()
    }
}

#[tokio::test]
async fn abort_ends_the_process_with_sigabrt() {
    faults::abort_ends_the_process_with_sigabrt(&mut start("").await).await;
}

#[tokio::test]
async fn a_cpu_burn_raises_the_process_cpu_time() {
    faults::a_cpu_burn_raises_the_process_cpu_time(&start("").await, 300).await;
}

#[tokio::test]
async fn a_leak_raises_the_process_resident_memory() {
    faults::a_leak_raises_the_process_resident_memory(&start("").await).await;
}

#[tokio::test]
async fn archlab_faults_sets_this_services_points_and_passes_over_other_services() {
    let s = start("payments.record, users.create_profile,notifications.deliver").await;
    let failed = s.create_profile().await.expect_err("users.create_profile fails every call from the start");
    assert_eq!(failed, Error::unavailable(SIGNUP_POINT, "injected fault"));
    let listing = s.admin.listing().await;
    let set: Vec<(&str, &serde_json::Value)> = listing["points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| !p["fault"].is_null())
        .map(|p| (p["name"].as_str().unwrap_or_default(), &p["fault"]))
        .collect();
    assert_eq!(set, [(SIGNUP_POINT, &json!({"fail_share": 1.0}))], "{listing}");
}

#[tokio::test]
async fn an_unknown_point_in_archlab_faults_stops_the_start_with_the_known_ones() {
    let [http, admin] = free_addrs::<2>();
    let admin_var = USERS_SERVICE.admin_addr_var.expect("users-service has fault points");
    let extra = [
        (USERS_SERVICE.http.addr_var, http.to_string()),
        (admin_var, admin.to_string()),
        ("ARCHLAB_FAULTS", "users.create_profile,users.delete_profile".to_owned()),
    ];
    let mut child = Child::spawn(USERS_SERVICE.name, &env(&extra, archlab_testkit::database_url().await));
    let status = child.wait_exit(Duration::from_secs(20)).await.expect("a misconfigured users-service exits");
    let stderr = child.stderr();
    assert_eq!(status.code(), Some(2), "a configuration error exits 2; stderr:\n{stderr}");
    assert!(stderr.contains("`users.delete_profile`"), "{stderr}");
    for p in points::ALL {
        assert!(stderr.contains(p.name), "the refusal does not list {}: {stderr}", p.name);
    }
}

#[tokio::test]
async fn a_non_loopback_admin_address_stops_the_start() {
    let [http] = free_addrs::<1>();
    let admin_var = USERS_SERVICE.admin_addr_var.expect("users-service has fault points");
    let extra = [(USERS_SERVICE.http.addr_var, http.to_string()), (admin_var, "0.0.0.0:0".to_owned())];
    let mut child = Child::spawn(USERS_SERVICE.name, &env(&extra, archlab_testkit::database_url().await));
    let status = child.wait_exit(Duration::from_secs(20)).await.expect("users-service refuses to start");
    let stderr = child.stderr();
    assert_eq!(status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("loopback only") && stderr.contains("--admin-addr"), "{stderr}");
}
