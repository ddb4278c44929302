//! The public API conformance suite against the hybrid, once per module that can be
//! extracted: the very suite the monolith and the microservices pass, through the gateway,
//! with three modules in the core and one in its own service.
//!
//! - notifications out, gRPC, async: welcomes and receipts leave the core through its two
//!   outbox relays and RabbitMQ, as from auth-service and payments-service.
//! - payments out, gRPC, async: payments-service calls auth and users back in the core, and
//!   its receipts come back through RabbitMQ to the core's consumer; welcomes stay in-process.
//! - payments out, HTTP, sync: every purchase calls the core's notifications over internal
//!   HTTP before it answers.

use archlab_hybrid::Module;
use archlab_kernel::NotificationMode;
use archlab_remote::Transport;
use archlab_system_tests::Options;
use archlab_system_tests::hybrid::HybridStack;

async fn start(extract: Module, transport: Transport, mode: NotificationMode) -> HybridStack {
    HybridStack::start(extract, Options { transport, mode, ..Options::default() }).await
}

mod notifications_out_grpc_async {
    async fn setup() -> super::HybridStack {
        super::start(super::Module::Notifications, super::Transport::Grpc, super::NotificationMode::Async).await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod payments_out_grpc_async {
    async fn setup() -> super::HybridStack {
        super::start(super::Module::Payments, super::Transport::Grpc, super::NotificationMode::Async).await
    }
    archlab_conformance::conformance_tests!(setup);
}

mod payments_out_http_sync {
    async fn setup() -> super::HybridStack {
        super::start(super::Module::Payments, super::Transport::Http, super::NotificationMode::Sync).await
    }
    archlab_conformance::conformance_tests!(setup);
}

/// Each module's rows are where the topology says: the extracted module's in its service's
/// database and none of its schema in the core's, the others' in the core's. A gateway route
/// left pointing at the core, or a port bound in-process by mistake, puts them elsewhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_module_keeps_its_rows_on_its_own_side() {
    for extract in Module::ALL {
        let stack = start(extract, Transport::Grpc, NotificationMode::Async).await;
        let api = archlab_conformance::Api::new(&stack);
        let buyer = api.new_user().await;
        let key = archlab_conformance::unique_key();
        let body = serde_json::json!({"amount_cents": 1250, "currency": "EUR"});
        let paid = api.purchase(Some(&buyer.token), Some(&key), &body).await.expect_json(201, "purchase");
        let payment_id = paid["payment_id"].as_str().expect("a payment id").to_owned();
        stack.settle().await;

        let count = |pool: &sqlx::PgPool, table: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!("SELECT count(*) FROM {table}")))
                    .fetch_one(&pool)
                    .await
            }
        };
        let schema_exists = |pool: &sqlx::PgPool, schema: &'static str| {
            let pool = pool.clone();
            async move {
                sqlx::query_scalar::<_, bool>("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)")
                    .bind(schema)
                    .fetch_one(&pool)
                    .await
                    .expect("pg_namespace")
            }
        };
        let (out, kept) = match extract {
            Module::Notifications => ("notifications", "payments"),
            Module::Payments => ("payments", "notifications"),
        };
        assert!(!schema_exists(&stack.core_db, out).await, "{extract} out: the core has a {out} schema");
        assert!(schema_exists(&stack.core_db, kept).await, "{extract} out: the core has no {kept} schema");
        assert_eq!(count(stack.payments_db(), "payments.payments").await.expect("payments"), 1, "{extract} out");
        // The welcome and the receipt.
        assert_eq!(
            count(stack.notifications_db(), "notifications.notifications").await.expect("n"),
            2,
            "{extract} out"
        );
        assert_eq!(count(&stack.core_db, "auth.credentials").await.expect("credentials"), 1, "{extract} out");
        assert_eq!(count(&stack.core_db, "users.profiles").await.expect("profiles"), 1, "{extract} out");
        assert_eq!(api.extsim_charges(&payment_id).await.len(), 1, "{extract} out: one charge at the provider");
        stack.stop().await;
    }
}
