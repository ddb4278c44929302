//! The local page and its JSON API, read back the way `show` and `compare` read them.

use archlab_traces::{
    CompareArgs, FromArgs, Receiver, Selector, ShowArgs, Source, SpanRecord, TracesArgs, TracesCommand, app, run,
};
use std::collections::BTreeMap;
use std::net::SocketAddr;

fn span(
    trace: &str,
    id: &str,
    parent: Option<&str>,
    service: &str,
    kind: &str,
    name: &str,
    (start, end): (u64, u64),
) -> SpanRecord {
    SpanRecord {
        trace_id: trace.to_owned(),
        span_id: id.to_owned(),
        parent_span_id: parent.map(str::to_owned),
        name: name.to_owned(),
        service_name: service.to_owned(),
        kind: kind.to_owned(),
        start_unix_nanos: 1_700_000_000_000_000_000 + start * 1000,
        end_unix_nanos: 1_700_000_000_000_000_000 + end * 1000,
        status_error: false,
        status_message: String::new(),
        attributes: BTreeMap::new(),
        links: Vec::new(),
        scope: String::new(),
    }
}

const MONO: &str = "11111111111111111111111111111111";
const MICRO: &str = "22222222222222222222222222222222";

fn spans() -> Vec<SpanRecord> {
    let mut failed = span(
        MICRO,
        "b000000000000003",
        Some("b000000000000002"),
        "payments-service",
        "server",
        "payments.charge",
        (20, 70),
    );
    failed.status_error = true;
    failed.status_message = "card declined".to_owned();
    vec![
        span(MONO, "a000000000000001", None, "monolith", "server", "POST /api/payments", (0, 100)),
        span(MONO, "a000000000000002", Some("a000000000000001"), "monolith", "internal", "payments.charge", (10, 60)),
        span(MICRO, "b000000000000001", None, "gateway", "server", "POST /api/payments", (200, 400)),
        span(MICRO, "b000000000000002", Some("b000000000000001"), "gateway", "client", "payments/Charge", (210, 390)),
        failed,
    ]
}

/// The page on 127.0.0.1:0 over a receiver holding `spans()`; dropping the sender stops it.
async fn start_page() -> anyhow::Result<(Receiver, SocketAddr, tokio::sync::oneshot::Sender<()>)> {
    let (receiver, _) = Receiver::start().await?;
    receiver.insert(spans());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let router = app(receiver.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = stopped.await;
            })
            .await;
    });
    Ok((receiver, addr, stop))
}

#[tokio::test]
async fn the_page_lists_traces_and_serves_their_waterfalls_and_spans() -> anyhow::Result<()> {
    let (_receiver, addr, _stop) = start_page().await?;
    let base = format!("http://{addr}");
    let list = reqwest::get(format!("{base}/")).await?.text().await?;
    assert!(list.contains(&format!(r#"href="/trace/{MICRO}""#)) && list.contains(&format!(r#"href="/trace/{MONO}""#)));
    assert!(list.find(MICRO) < list.find(MONO), "newest first");
    assert!(list.contains("✗"), "the failed trace is marked");
    assert!(list.contains("5 spans received"), "{list}");

    let page = reqwest::get(format!("{base}/trace/{MICRO}")).await?;
    assert_eq!(page.status(), 200);
    let page = page.text().await?;
    assert!(page.contains("<svg") && page.contains("card declined") && page.contains("payments-service"));
    assert_eq!(reqwest::get(format!("{base}/trace/ffff")).await?.status(), 404);

    let source = Source::new(base.clone(), None)?;
    let latest = source.trace(&Selector::parse("latest", Some("POST /api/payments".into()))).await?;
    assert_eq!(latest.len(), 3);
    assert!(latest.iter().all(|s| s.trace_id == MICRO));
    let monolith =
        Selector { with_service: Some("monolith".into()), route: Some("/api/payments".into()), ..Selector::default() };
    assert!(source.trace(&monolith).await?.iter().all(|s| s.trace_id == MONO));
    let missing = source.trace(&Selector::parse("0123", None)).await;
    assert!(missing.is_err_and(|e| e.to_string().contains("no trace")));
    assert_eq!(source.all().await?.len(), 5);
    Ok(())
}

#[tokio::test]
async fn show_and_compare_write_html_from_a_running_page() -> anyhow::Result<()> {
    let (_receiver, addr, _stop) = start_page().await?;
    let dir = std::env::temp_dir().join(format!("archlab-traces-page-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let from = FromArgs { from: format!("http://{addr}"), file: None };

    let show_html = dir.join("show.html");
    let show = ShowArgs {
        trace: MICRO.to_owned(),
        route: None,
        from: from.clone(),
        svg: None,
        html: Some(show_html.clone()),
        width: 40,
    };
    run(TracesArgs { command: TracesCommand::Show(show) }).await?;
    let written = std::fs::read_to_string(&show_html)?;
    assert!(written.contains(MICRO) && written.contains("payments.charge"));

    let compare_svg = dir.join("compare.svg");
    let compare = CompareArgs {
        monolith: None,
        micro: None,
        latest_route: Some("POST /api/payments".to_owned()),
        from,
        micro_from: None,
        micro_file: None,
        svg: Some(compare_svg.clone()),
        html: None,
        width: 40,
    };
    run(TracesArgs { command: TracesCommand::Compare(compare) }).await?;
    let written = std::fs::read_to_string(&compare_svg)?;
    assert!(written.starts_with("<svg") && written.contains(">monolith<") && written.contains(">microservices<"));
    // The micro trace's gateway→payments hop: client 180 µs, server 50 µs → 130 µs between.
    assert!(written.contains("between processes 0.130ms"), "{written}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
