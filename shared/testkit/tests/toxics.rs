//! Each toxic of the fault proxy acting on real traffic: an echo server behind the proxy,
//! PostgreSQL behind it for `down`, latency and reset_peer, and Toxiproxy's HTTP API.
//! Times are asserted as lower bounds only.

use archlab_testkit::TcpProxy;
use archlab_testkit::proxy::api::ControlApi;
use archlab_testkit::proxy::{Stream, Toxic, ToxicKind};
use serde_json::{Value, json};
use sqlx::Connection;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PATIENCE: Duration = Duration::from_secs(10);

/// An upstream that echoes every byte back.
async fn echo_server() -> SocketAddr {
    archlab_testkit::proxy::echo_server().await.unwrap()
}

async fn echo_proxy() -> TcpProxy {
    TcpProxy::start(echo_server().await).await.unwrap()
}

/// `len` bytes that differ from their neighbours, so a lost or reordered byte shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Send `bytes` and read as many back, concurrently (so large payloads cannot deadlock).
async fn roundtrip(stream: &mut TcpStream, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let (mut read, mut write) = stream.split();
    let mut back = vec![0; bytes.len()];
    let (written, read) =
        tokio::time::timeout(PATIENCE, async { tokio::join!(write.write_all(bytes), read.read_exact(&mut back)) })
            .await
            .expect("echo within the patience");
    written?;
    read?;
    Ok(back)
}

/// Everything the proxy delivers until it closes, or the error that ended it.
async fn read_until_closed(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut all = Vec::new();
    tokio::time::timeout(PATIENCE, stream.read_to_end(&mut all)).await.expect("closed within the patience")?;
    Ok(all)
}

fn toxic(kind: ToxicKind, stream: Stream) -> Toxic {
    Toxic::new(kind, stream)
}

#[tokio::test]
async fn latency_delays_every_round_trip_on_open_and_new_connections() {
    let proxy = echo_proxy().await;
    let mut open = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut open, b"before").await.unwrap(), b"before");

    proxy.add_toxic(toxic(ToxicKind::Latency { latency: 300, jitter: 0 }, Stream::Downstream)).unwrap();
    let started = Instant::now();
    assert_eq!(roundtrip(&mut open, b"during").await.unwrap(), b"during");
    assert!(started.elapsed() >= Duration::from_millis(300), "open connection not delayed: {:?}", started.elapsed());

    // Jitter varies the delay within latency ± jitter; upstream and downstream add up.
    proxy.add_toxic(toxic(ToxicKind::Latency { latency: 200, jitter: 100 }, Stream::Upstream)).unwrap();
    let mut new = TcpStream::connect(proxy.addr()).await.unwrap();
    let started = Instant::now();
    assert_eq!(roundtrip(&mut new, b"jitter").await.unwrap(), b"jitter");
    assert!(started.elapsed() >= Duration::from_millis(400), "both latencies not added: {:?}", started.elapsed());

    proxy.remove_toxic("latency_downstream").unwrap();
    proxy.remove_toxic("latency_upstream").unwrap();
    assert!(proxy.toxics().is_empty());
    assert_eq!(roundtrip(&mut open, b"after").await.unwrap(), b"after");
}

#[tokio::test]
async fn timeout_stops_data_and_closes_after_the_timeout() {
    let proxy = echo_proxy().await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut client, b"flows").await.unwrap(), b"flows");

    let started = Instant::now();
    proxy.add_toxic(toxic(ToxicKind::Timeout { timeout: 300 }, Stream::Upstream)).unwrap();
    client.write_all(b"lost").await.unwrap();
    // Without the toxic "lost" would come straight back; with it nothing does, then EOF.
    let got = read_until_closed(&mut client).await.unwrap();
    assert_eq!(got, b"", "data passed a timeout toxic");
    assert!(started.elapsed() >= Duration::from_millis(300), "closed before the timeout: {:?}", started.elapsed());
}

#[tokio::test]
async fn reset_peer_resets_the_connection() {
    let proxy = echo_proxy().await;
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut client, b"ok").await.unwrap(), b"ok");

    proxy.add_toxic(toxic(ToxicKind::ResetPeer { timeout: 100 }, Stream::Downstream)).unwrap();
    let started = Instant::now();
    client.write_all(b"boom").await.unwrap();
    let error = read_until_closed(&mut client).await.expect_err("a reset, not a clean close");
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
    assert!(started.elapsed() >= Duration::from_millis(100), "reset before its timeout: {:?}", started.elapsed());
}

#[tokio::test]
async fn limit_data_closes_after_the_limit() {
    let proxy = echo_proxy().await;
    proxy.add_toxic(toxic(ToxicKind::LimitData { bytes: 10 }, Stream::Downstream)).unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let sent = pattern(30);
    client.write_all(&sent).await.unwrap();
    let got = read_until_closed(&mut client).await.unwrap();
    assert_eq!(got, sent[..10], "not exactly the first 10 bytes before the close");
}

#[tokio::test]
async fn bandwidth_delivers_every_byte_at_the_rate() {
    let proxy = echo_proxy().await;
    // 100 KB/s: 50 000 bytes take half a second.
    proxy.add_toxic(toxic(ToxicKind::Bandwidth { rate: 100 }, Stream::Downstream)).unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let sent = pattern(50_000);
    let started = Instant::now();
    let got = roundtrip(&mut client, &sent).await.unwrap();
    assert!(got == sent, "bytes changed on the way");
    // All but the last tenth of a second's worth (10 000 bytes) waited for the rate.
    assert!(started.elapsed() >= Duration::from_millis(350), "faster than the rate: {:?}", started.elapsed());
}

#[tokio::test]
async fn slicer_delivers_every_byte_in_delayed_slices() {
    let proxy = echo_proxy().await;
    // Slices of 100 bytes, 40 ms apart: 2 000 bytes read at once make 20 slices.
    proxy
        .add_toxic(toxic(ToxicKind::Slicer { average_size: 100, size_variation: 20, delay: 40_000 }, Stream::Upstream))
        .unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    let sent = pattern(2_000);
    let started = Instant::now();
    let got = roundtrip(&mut client, &sent).await.unwrap();
    assert!(got == sent, "bytes changed on the way");
    // Even if the proxy read the 2 000 bytes in a few pieces, at least 5 slice delays passed.
    assert!(started.elapsed() >= Duration::from_millis(200), "not sliced: {:?}", started.elapsed());
}

#[tokio::test]
async fn a_toxic_with_toxicity_zero_never_acts() {
    let proxy = echo_proxy().await;
    let mut never = toxic(ToxicKind::LimitData { bytes: 0 }, Stream::Downstream);
    never.toxicity = 0.0;
    proxy.add_toxic(never).unwrap();
    let mut client = TcpStream::connect(proxy.addr()).await.unwrap();
    assert_eq!(roundtrip(&mut client, b"passes").await.unwrap(), b"passes");
}

#[tokio::test]
async fn bad_toxics_are_refused() {
    let proxy = echo_proxy().await;
    let limit = toxic(ToxicKind::LimitData { bytes: 5 }, Stream::Downstream);
    proxy.add_toxic(limit.clone()).unwrap();
    assert!(proxy.add_toxic(limit).is_err(), "duplicate name accepted");
    assert!(proxy.add_toxic(toxic(ToxicKind::Bandwidth { rate: 0 }, Stream::Upstream)).is_err());
    let slicer = ToxicKind::Slicer { average_size: 10, size_variation: 10, delay: 0 };
    assert!(proxy.add_toxic(toxic(slicer, Stream::Upstream)).is_err());
    assert!(proxy.remove_toxic("nope").is_err());
    assert_eq!(proxy.toxics().len(), 1);
}

/// PostgreSQL's address and options to reach it through `proxy` instead.
async fn postgres() -> (SocketAddr, PgConnectOptions) {
    let options = PgConnectOptions::from_str(&archlab_testkit::database_url().await).unwrap().database("postgres");
    let upstream = tokio::net::lookup_host((options.get_host(), options.get_port())).await.unwrap().next().unwrap();
    (upstream, options)
}

async fn select_one(connection: &mut PgConnection) -> Result<i32, sqlx::Error> {
    sqlx::query_scalar("SELECT 1").fetch_one(connection).await
}

#[tokio::test]
async fn postgres_through_the_proxy_down_latency_and_reset() {
    let (upstream, options) = postgres().await;
    let proxy = TcpProxy::start(upstream).await.unwrap();
    let through = options.host("127.0.0.1").port(proxy.addr().port());
    let mut connection = PgConnection::connect_with(&through).await.expect("connect through the proxy");
    assert_eq!(select_one(&mut connection).await.unwrap(), 1);

    // down: the open connection's next query fails on the connection, and so does a new one.
    proxy.set_enabled(false).await;
    let error = select_one(&mut connection).await.expect_err("query through a down proxy");
    assert!(matches!(error, sqlx::Error::Io(_) | sqlx::Error::Protocol(_)), "not a connection error: {error:?}");
    let error = PgConnection::connect_with(&through).await.expect_err("connect through a down proxy");
    assert!(matches!(error, sqlx::Error::Io(_) | sqlx::Error::Protocol(_)), "not a connection error: {error:?}");

    // back up: a new connection works.
    proxy.set_enabled(true).await;
    let mut connection = PgConnection::connect_with(&through).await.expect("connect after the proxy is up");
    assert_eq!(select_one(&mut connection).await.unwrap(), 1);

    // latency: one query is one round trip, so it takes at least the latency.
    proxy.add_toxic(toxic(ToxicKind::Latency { latency: 250, jitter: 0 }, Stream::Downstream)).unwrap();
    let started = Instant::now();
    assert_eq!(select_one(&mut connection).await.unwrap(), 1);
    assert!(started.elapsed() >= Duration::from_millis(250), "query not delayed: {:?}", started.elapsed());
    proxy.remove_all_toxics();

    // reset_peer: the next query's answer never arrives; the connection is reset.
    proxy.add_toxic(toxic(ToxicKind::ResetPeer { timeout: 0 }, Stream::Downstream)).unwrap();
    let error = select_one(&mut connection).await.expect_err("query through reset_peer");
    match &error {
        sqlx::Error::Io(io) => assert_eq!(io.kind(), std::io::ErrorKind::ConnectionReset, "{io}"),
        other => panic!("not a reset: {other:?}"),
    }
}

async fn call(client: &reqwest::Client, method: reqwest::Method, url: String, body: Option<Value>) -> (u16, Value) {
    let mut request = client.request(method, url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

#[tokio::test]
async fn toxiproxy_http_api_drives_proxies() {
    use reqwest::Method;
    let api = ControlApi::start(0).await.unwrap();
    let base = format!("http://{}", api.addr());
    let http = reqwest::Client::new();
    let echo = echo_server().await;

    let (status, created) = call(
        &http,
        Method::POST,
        format!("{base}/proxies"),
        Some(json!({"name": "echo", "listen": "127.0.0.1:0", "upstream": echo.to_string()})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["enabled"], true);
    let listen: SocketAddr = created["listen"].as_str().unwrap().parse().unwrap();

    // A toxic in Toxiproxy's JSON acts on traffic.
    let limit = json!({"type": "limit_data", "stream": "downstream", "attributes": {"bytes": 3}});
    let (status, added) = call(&http, Method::POST, format!("{base}/proxies/echo/toxics"), Some(limit.clone())).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["name"], "limit_data_downstream");
    assert_eq!(added["toxicity"], 1.0);
    let mut client = TcpStream::connect(listen).await.unwrap();
    client.write_all(b"abcdef").await.unwrap();
    assert_eq!(read_until_closed(&mut client).await.unwrap(), b"abc");

    // Updating merges attributes; the listing shows the result.
    let (status, updated) = call(
        &http,
        Method::POST,
        format!("{base}/proxies/echo/toxics/limit_data_downstream"),
        Some(json!({"attributes": {"bytes": 4}})),
    )
    .await;
    assert_eq!(status, 200, "{updated}");
    let (_, proxies) = call(&http, Method::GET, format!("{base}/proxies"), None).await;
    assert_eq!(proxies["echo"]["toxics"][0]["attributes"]["bytes"], 4);
    let mut client = TcpStream::connect(listen).await.unwrap();
    client.write_all(b"abcdef").await.unwrap();
    assert_eq!(read_until_closed(&mut client).await.unwrap(), b"abcd");

    // Bad input: clear 4xx in Toxiproxy's error shape.
    let (status, error) = call(&http, Method::POST, format!("{base}/proxies/echo/toxics"), Some(limit)).await;
    assert_eq!((status, error["status"].as_u64()), (409, Some(409)), "{error}");
    let (status, error) = call(
        &http,
        Method::POST,
        format!("{base}/proxies/echo/toxics"),
        Some(json!({"type": "explode", "attributes": {}})),
    )
    .await;
    assert_eq!(status, 400, "{error}");
    assert!(error["error"].as_str().is_some());
    let (status, _) = call(
        &http,
        Method::POST,
        format!("{base}/proxies"),
        Some(json!({"name": "wide", "listen": "0.0.0.0:0", "upstream": echo.to_string()})),
    )
    .await;
    assert_eq!(status, 400, "a proxy listening beyond loopback");
    let (status, _) = call(
        &http,
        Method::POST,
        format!("{base}/proxies"),
        Some(json!({"name": "echo", "upstream": echo.to_string()})),
    )
    .await;
    assert_eq!(status, 409, "a second proxy under a taken name");
    let (status, _) = call(&http, Method::DELETE, format!("{base}/proxies/nope/toxics/x"), None).await;
    assert_eq!(status, 404);

    // Removing the toxic lets everything through again.
    let (status, _) =
        call(&http, Method::DELETE, format!("{base}/proxies/echo/toxics/limit_data_downstream"), None).await;
    assert_eq!(status, 204);
    let mut client = TcpStream::connect(listen).await.unwrap();
    assert_eq!(roundtrip(&mut client, b"abcdef").await.unwrap(), b"abcdef");

    // enabled: false is down; the open connection is closed.
    let (status, down) =
        call(&http, Method::POST, format!("{base}/proxies/echo"), Some(json!({"enabled": false}))).await;
    assert_eq!((status, &down["enabled"]), (200, &json!(false)));
    assert_eq!(read_until_closed(&mut client).await.unwrap_or_default(), b"");

    // reset: enabled again, no toxics.
    api.proxies().get("echo").unwrap().add_toxic(toxic(ToxicKind::Timeout { timeout: 0 }, Stream::Upstream)).unwrap();
    let (status, _) = call(&http, Method::POST, format!("{base}/reset"), None).await;
    assert_eq!(status, 204);
    let (_, echo_proxy) = call(&http, Method::GET, format!("{base}/proxies/echo"), None).await;
    assert_eq!(echo_proxy["enabled"], true);
    assert_eq!(echo_proxy["toxics"], json!([]));
    let mut client = TcpStream::connect(listen).await.unwrap();
    assert_eq!(roundtrip(&mut client, b"again").await.unwrap(), b"again");
}
