//! Purchases left in doubt end settled (docs/architecture.md, "Payments left in doubt"): the
//! same checks as `microservices/system-tests/tests/it/in_doubt.rs` runs through the gateway,
//! here with the reconciler of the monolith, in both notification modes.

use crate::common;

use archlab_conformance::in_doubt;
use common::{Options, spawn_with};

async fn monolith(sync_mode: bool) -> common::TestApp {
    spawn_with(Options { sync_mode, quick_reconcile: true, ..Default::default() }).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_cut_off_mid_flight_end_succeeded_with_one_charge_or_failed_with_none() {
    let app = monolith(false).await;
    in_doubt::purchases_cut_off_mid_flight_all_settle(&app, &app.handle.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purchases_cut_off_mid_flight_settle_in_sync_mode_too() {
    let app = monolith(true).await;
    in_doubt::purchases_cut_off_mid_flight_all_settle(&app, &app.handle.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_charge_reply_is_a_502_then_reconciled_into_one_charge_and_one_receipt() {
    let app = monolith(false).await;
    in_doubt::a_lost_reply_is_a_502_and_the_reconciler_completes_the_payment(&app, &app.handle.pool).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_charge_reply_is_reconciled_in_sync_mode_with_the_receipt_delivered() {
    let app = monolith(true).await;
    in_doubt::a_lost_reply_is_a_502_and_the_reconciler_completes_the_payment(&app, &app.handle.pool).await;
}
