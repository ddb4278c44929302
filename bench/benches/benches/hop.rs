//! `hop`: what one port call costs, the same call three ways, and the floors under it.
//!
//! The port is `AuthApi::verify_session` over an in-memory [`FakeAuth`] (no database), so
//! every figure is the hop: in process (`Arc<dyn AuthApi>`), through archlab-remote's
//! HTTP/JSON client and axum routes, and through its gRPC client and tonic server — the
//! real adapters, service credentials and client layers included. Each remote variant runs
//! once without a subscriber and once with the one the binaries install (writing to a sink).
//! The floors are a bare tonic echo and a bare axum handler called by reqwest.
//!
//! Every call runs on one current-thread runtime, client and server alike, so the traced
//! variants trace both sides, and every variant runs under the same runtime settings.

use archlab_auth::AuthApi;
use archlab_benches::{FakeAuth, TOKEN, pb, serve_auth_grpc, serve_auth_http, serve_echo, serve_hello, traced};
use archlab_remote::{ClientConfig, ServiceCredentials};
use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// The process the bench's clients sign their calls as.
const CALLER: &str = "payments-service";

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a tokio runtime")
}

/// Time `call` under `name`, with the subscriber installed on this thread when `traced`.
fn bench_port(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    name: &str,
    api: &Arc<dyn AuthApi>,
    with_tracing: bool,
) {
    let expected = FakeAuth::default().session();
    // One call first: connect, and prove the variant answers what the port answers.
    let first = rt.block_on(api.verify_session(TOKEN)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(first, expected, "{name} answered another session");
    let mut run = || {
        c.bench_function(name, |b| {
            b.to_async(rt).iter(|| async { black_box(api.verify_session(black_box(TOKEN)).await.expect("a session")) })
        });
    };
    if with_tracing {
        tracing::dispatcher::with_default(&traced(), run);
    } else {
        run();
    }
}

fn hop(c: &mut Criterion) {
    let rt = runtime();
    let fake: Arc<dyn AuthApi> = Arc::new(FakeAuth::default());
    let config = ClientConfig::default();
    let caller = ServiceCredentials::new(CALLER, archlab_benches::SECRET);
    let (grpc, http): (Arc<dyn AuthApi>, Arc<dyn AuthApi>) = rt.block_on(async {
        let grpc_url = serve_auth_grpc(fake.clone()).await.expect("serve gRPC");
        let http_url = serve_auth_http(fake.clone()).await.expect("serve HTTP");
        let grpc = archlab_remote::grpc::GrpcAuthClient::new(&grpc_url, &config, &caller).expect("gRPC client");
        let http = archlab_remote::http::HttpAuthClient::new(&http_url, &config, &caller).expect("HTTP client");
        (Arc::new(grpc) as Arc<dyn AuthApi>, Arc::new(http) as Arc<dyn AuthApi>)
    });

    let mut group = c.benchmark_group("hop");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).sample_size(50);
    bench_port(&mut group, &rt, "in_process", &fake, false);
    bench_port(&mut group, &rt, "in_process_traced", &fake, true);
    bench_port(&mut group, &rt, "http_json", &http, false);
    bench_port(&mut group, &rt, "http_json_traced", &http, true);
    bench_port(&mut group, &rt, "grpc", &grpc, false);
    bench_port(&mut group, &rt, "grpc_traced", &grpc, true);
    group.finish();
}

fn floor(c: &mut Criterion) {
    let rt = runtime();
    let (echo, hello_url, client) = rt.block_on(async {
        let echo_url = serve_echo().await.expect("serve echo");
        let echo = pb::echo_client::EchoClient::connect(echo_url).await.expect("connect to echo");
        let hello = serve_hello().await.expect("serve hello");
        (echo, format!("{hello}/hello"), reqwest::Client::new())
    });
    let message = pb::EchoMessage { text: TOKEN.to_owned() };
    let answer = rt.block_on(echo.clone().echo(message.clone())).expect("echo answers");
    assert_eq!(answer.into_inner(), message, "echo changed its input");
    let body = rt.block_on(async { client.get(&hello_url).send().await?.text().await }).expect("hello answers");
    assert_eq!(body, "hello");

    let mut group = c.benchmark_group("floor");
    group.warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4)).sample_size(50);
    group.bench_function("tonic_echo", |b| {
        b.to_async(&rt).iter(|| {
            let mut echo = echo.clone();
            let message = message.clone();
            async move { black_box(echo.echo(message).await.expect("echo answers")) }
        })
    });
    group.bench_function("axum_hello", |b| {
        b.to_async(&rt).iter(|| async {
            let response = client.get(&hello_url).send().await.expect("hello answers");
            black_box(response.bytes().await.expect("hello's body"))
        })
    });
    group.finish();
}

criterion_group!(benches, hop, floor);
criterion_main!(benches);
