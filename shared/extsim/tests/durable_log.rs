//! With a log directory, every accepted charge and email is also one JSON line on disk,
//! and nothing else is: not replays, not simulated failures.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use archlab_extsim::{App, BehaviourPatch, Charge, Client, Config, Email, SimConfigPatch};
use archlab_kernel::Server;
use serde_json::json;
use tokio::sync::oneshot;

/// A directory under the system temp dir, unique to this test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        TempDir(std::env::temp_dir().join(format!("extsim-test-{}", uuid::Uuid::new_v4())))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_lines<T: serde::de::DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect()
}

/// Builds a simulator on port 0 logging into `dir`, serves it until the sender fires.
async fn start(dir: &Path) -> (String, oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let sim =
        App::build(Config { addr: (Ipv4Addr::LOCALHOST, 0).into(), log_dir: Some(dir.to_owned()) }).await.unwrap();
    let base = sim.addrs().http_url();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(sim.run_until_stopped(async {
        let _ = stopped.await;
    }));
    (base, stop, server)
}

#[tokio::test]
async fn accepted_charges_and_emails_are_appended_as_json_lines() {
    let tmp = TempDir::new();
    // A directory that does not exist yet: build creates it.
    let dir = tmp.0.join("logs");
    let (base, stop, server) = start(&dir).await;
    let http = reqwest::Client::new();
    let client = Client::new(&base);
    let post = |path: &str, key: &str, body: serde_json::Value| {
        http.post(format!("{base}{path}")).header("Idempotency-Key", key).json(&body).send()
    };
    let charge = json!({"amount_cents": 100, "currency": "EUR", "reference": "order-1"});
    let email = json!({"to": "ada@example.com", "subject": "Receipt", "body": "Thanks"});

    assert_eq!(post("/v1/charges", "pay-1", charge.clone()).await.unwrap().status(), 201);
    assert_eq!(post("/v1/charges", "pay-1", charge.clone()).await.unwrap().status(), 200);
    client
        .set_config(&SimConfigPatch::default().with_payments(BehaviourPatch::default().with_failure_rate(1.0)))
        .await
        .unwrap();
    assert_eq!(post("/v1/charges", "pay-2", charge.clone()).await.unwrap().status(), 503);
    client.reset().await.unwrap();
    assert_eq!(post("/v1/charges", "pay-3", charge.clone()).await.unwrap().status(), 201);
    assert_eq!(post("/v1/emails", "mail-1", email.clone()).await.unwrap().status(), 202);
    assert_eq!(post("/v1/emails", "mail-1", email).await.unwrap().status(), 200);

    let charges: Vec<Charge> = read_lines(&dir.join("charges.jsonl"));
    assert_eq!(charges, client.charges().await.unwrap());
    let keys: Vec<&str> = charges.iter().map(|c| c.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["pay-1", "pay-3"]);
    let emails: Vec<Email> = read_lines(&dir.join("emails.jsonl"));
    assert_eq!(emails, client.emails().await.unwrap());
    assert_eq!(emails.len(), 1);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn a_restart_appends_to_the_existing_log() {
    let tmp = TempDir::new();
    let charge = json!({"amount_cents": 100, "currency": "EUR"});
    let http = reqwest::Client::new();

    for key in ["run-1", "run-2"] {
        let (base, stop, server) = start(&tmp.0).await;
        let answer =
            http.post(format!("{base}/v1/charges")).header("Idempotency-Key", key).json(&charge).send().await.unwrap();
        assert_eq!(answer.status(), 201);
        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
    }

    let charges: Vec<Charge> = read_lines(&tmp.0.join("charges.jsonl"));
    let keys: Vec<&str> = charges.iter().map(|c| c.idempotency_key.as_str()).collect();
    assert_eq!(keys, ["run-1", "run-2"]);
}
