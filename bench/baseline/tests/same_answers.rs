//! The baseline answers `GET /api/users/me` exactly as the monolith does, on the monolith's
//! own database: the same JSON for a live token, 401 for a garbage one.

use archlab_kernel::NotificationMode;
use archlab_kernel::config::{AbuseArgs, BehaviourArgs, DatabaseArgs, ExternalArgs, ReconcileArgs, SessionArgs};
use archlab_kernel::server;
use serde_json::{Value, json};

/// `GET {base}/api/users/me` with `token`: status and JSON body.
async fn me(client: &reqwest::Client, base: &str, token: &str) -> (reqwest::StatusCode, Value) {
    let response = client.get(format!("{base}/api/users/me")).bearer_auth(token).send().await.expect("a response");
    let status = response.status();
    (status, response.json().await.expect("a JSON body"))
}

#[tokio::test]
async fn the_baseline_answers_me_like_the_monolith() {
    let extsim = archlab_testkit::extsim().await;
    let db_url = archlab_testkit::database_url().await;
    let database = archlab_testkit::fresh_database_name("baseline");
    let config = archlab_monolith::Config {
        addr: "127.0.0.1:0".parse().expect("an address"),
        admin_addr: None,
        database: database.clone(),
        db: DatabaseArgs { database_url: db_url.clone(), db_max_connections: 5 },
        external: ExternalArgs { extsim_url: extsim.url.clone(), external_timeout_ms: 5_000 },
        sessions: SessionArgs { redis_url: None, session_ttl_secs: 3_600 },
        behaviour: BehaviourArgs {
            notification_mode: NotificationMode::Async,
            outbox_poll_ms: 1_000,
            faults: String::new(),
        },
        limits: AbuseArgs::DEFAULT,
        reconcile: ReconcileArgs::default(),
    };
    let monolith = server::spawn::<archlab_monolith::App>(config).await.expect("build the monolith");
    let mono_url = monolith.addrs.http_url();
    let client = reqwest::Client::new();
    let signed_up: Value = client
        .post(format!("{mono_url}/api/auth/signup"))
        .json(&json!({"email": "base@example.com", "password": "correct horse battery", "name": "Base Line"}))
        .send()
        .await
        .expect("signup answers")
        .json()
        .await
        .expect("signup's body");
    let token = signed_up["token"].as_str().expect("a token").to_owned();

    let baseline = archlab_baseline::Baseline::build(archlab_baseline::Config {
        addr: "127.0.0.1:0".parse().expect("an address"),
        database: database.clone(),
        db: DatabaseArgs { database_url: db_url.clone(), db_max_connections: 5 },
    })
    .await
    .expect("build the baseline");
    let base_url = format!("http://{}", baseline.addr().expect("its address"));
    let stop = stop_signal();
    let served = tokio::spawn(baseline.run_until_stopped(stop.1));

    let (mono_status, mono_body) = me(&client, &mono_url, &token).await;
    let (base_status, base_body) = me(&client, &base_url, &token).await;
    assert_eq!(mono_status, reqwest::StatusCode::OK, "monolith: {mono_body}");
    assert_eq!(mono_body["user_id"], signed_up["user_id"], "the monolith answered someone else");
    assert_eq!(base_status, reqwest::StatusCode::OK, "baseline: {base_body}");
    assert_eq!(base_body, mono_body, "the baseline's JSON differs from the monolith's");

    // Well-shaped but unknown, and garbled: both refused by both.
    let unknown = "f".repeat(64);
    for garbage in [unknown.as_str(), "not-a-token"] {
        let (mono_status, mono_body) = me(&client, &mono_url, garbage).await;
        let (base_status, base_body) = me(&client, &base_url, garbage).await;
        assert_eq!(mono_status, reqwest::StatusCode::UNAUTHORIZED, "monolith, token {garbage:?}");
        assert_eq!(base_status, reqwest::StatusCode::UNAUTHORIZED, "baseline, token {garbage:?}");
        assert_eq!(base_body, mono_body, "the 401 bodies differ for {garbage:?}");
    }

    let _ = stop.0.send(());
    served.await.expect("the baseline's task").expect("the baseline stops cleanly");
    monolith.stop().await.expect("the monolith stops cleanly");
    drop_database(&db_url, &database).await;
}

/// A shutdown future and the sender that completes it.
fn stop_signal() -> (tokio::sync::oneshot::Sender<()>, impl Future<Output = ()> + Send + 'static) {
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

async fn drop_database(db_url: &str, name: &str) {
    let admin = sqlx::PgPool::connect(&format!("{db_url}/postgres")).await.expect("connect to postgres");
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")))
        .execute(&admin)
        .await
        .expect("drop the test database");
}
