//! Purchases left in doubt end settled (docs/architecture.md, "Payments left in doubt"),
//! through the gateway, with payments-service's reconciler: the same checks as
//! `monolith/tests/it/in_doubt.rs`.

use archlab_conformance::in_doubt;
use archlab_kernel::NotificationMode;
use archlab_system_tests::{Options, Stack};

async fn stack(mode: NotificationMode) -> Stack {
    Stack::start(Options { mode, quick_reconcile: true, ..Options::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_cut_off_mid_flight_end_succeeded_with_one_charge_or_failed_with_none() {
    let stack = stack(NotificationMode::Async).await;
    in_doubt::purchases_cut_off_mid_flight_all_settle(&stack, &stack.payments_db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_charge_reply_is_a_502_then_reconciled_into_one_charge_and_one_receipt() {
    let stack = stack(NotificationMode::Async).await;
    in_doubt::a_lost_reply_is_a_502_and_the_reconciler_completes_the_payment(&stack, &stack.payments_db).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_charge_reply_is_reconciled_in_sync_mode_with_the_receipt_delivered() {
    let stack = stack(NotificationMode::Sync).await;
    in_doubt::a_lost_reply_is_a_502_and_the_reconciler_completes_the_payment(&stack, &stack.payments_db).await;
}
