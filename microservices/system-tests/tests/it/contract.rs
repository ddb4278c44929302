//! The machine-readable contract against the microservices build, through its gateway: it
//! serves docs/openapi.json, and schemathesis, fuzzing every operation of it across every
//! hop (gateway → services over gRPC → RabbitMQ), finds no 5xx and no answer the document
//! does not describe (see `shared/conformance/src/contract.rs`).

use archlab_system_tests::{Options, Stack};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_through_the_gateway() {
    // Schemathesis signs up and logs in hundreds of times a minute from one address: the
    // signup and login limits are switched off for it (they have their own tests, limits.rs).
    let stack = Stack::start(Options { limits_off: true, ..Options::default() }).await;
    archlab_conformance::contract::serves_docs_openapi(&stack, "the gateway").await;
    archlab_conformance::contract::schemathesis(&stack).await;
}
