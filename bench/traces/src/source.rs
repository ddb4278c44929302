//! Where `show`, `compare` and `export` read spans from: a running `archlab traces serve`
//! (its HTTP API, loopback only) or a JSON-lines file the receiver appended to; and how a
//! trace is picked from them (an id, or the latest one, optionally of one route).

use crate::span::SpanRecord;
use anyhow::{Context, bail};
use std::collections::HashMap;
use std::io::BufRead;
use std::path::PathBuf;

/// Where spans come from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A running `archlab traces serve`, by the base URL of its page.
    Http(String),
    /// A JSON-lines file of [`SpanRecord`]s.
    File(PathBuf),
}

/// Which trace to pick.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Selector {
    /// A trace id; `None` (or `latest`) means the newest trace that passes the filters.
    pub id: Option<String>,
    /// The root span's name (or `METHOD route`) must equal or contain this.
    pub route: Option<String>,
    /// Some span must come from this service (e.g. `monolith`).
    pub with_service: Option<String>,
    /// No span may come from this service.
    pub without_service: Option<String>,
}

impl Selector {
    /// `latest` or a trace id, with an optional route filter.
    pub fn parse(trace: &str, route: Option<String>) -> Self {
        let id = (trace != "latest").then(|| trace.to_ascii_lowercase());
        Self { id, route, ..Self::default() }
    }

    /// Whether `trace` (the spans of one trace) is the one asked for.
    pub fn matches(&self, trace: &[SpanRecord]) -> bool {
        let Some(first) = trace.first() else { return false };
        if let Some(id) = &self.id {
            return first.trace_id == *id;
        }
        if let Some(service) = &self.with_service
            && !trace.iter().any(|s| s.service_name == *service)
        {
            return false;
        }
        if let Some(service) = &self.without_service
            && trace.iter().any(|s| s.service_name == *service)
        {
            return false;
        }
        match &self.route {
            Some(route) => {
                root(trace).is_some_and(|r| route_of(r).contains(route.as_str()) || r.name.contains(route.as_str()))
            }
            None => true,
        }
    }
}

/// The trace's root: the earliest span without a parent, else its earliest span.
pub fn root(trace: &[SpanRecord]) -> Option<&SpanRecord> {
    trace
        .iter()
        .filter(|s| s.is_root())
        .min_by_key(|s| s.start_unix_nanos)
        .or_else(|| trace.iter().min_by_key(|s| s.start_unix_nanos))
}

/// `METHOD route` from the HTTP semantic-convention attributes, else the span name.
fn route_of(span: &SpanRecord) -> String {
    let method = span.attributes.get("http.request.method").or_else(|| span.attributes.get("http.method"));
    match (method, span.attributes.get("http.route")) {
        (Some(method), Some(route)) => format!("{method} {route}"),
        _ => span.name.clone(),
    }
}

/// Group spans by trace, newest trace (latest first start) first.
pub fn group(spans: Vec<SpanRecord>) -> Vec<Vec<SpanRecord>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut traces: Vec<Vec<SpanRecord>> = Vec::new();
    for span in spans {
        match index.get(&span.trace_id) {
            Some(i) => traces[*i].push(span),
            None => {
                index.insert(span.trace_id.clone(), traces.len());
                traces.push(vec![span]);
            }
        }
    }
    let start = |t: &Vec<SpanRecord>| t.iter().map(|s| s.start_unix_nanos).min().unwrap_or(0);
    traces.sort_by_key(|t| std::cmp::Reverse(start(t)));
    traces
}

/// The newest trace `selector` picks from `spans`.
pub fn select(spans: Vec<SpanRecord>, selector: &Selector) -> Option<Vec<SpanRecord>> {
    group(spans).into_iter().find(|t| selector.matches(t))
}

/// Refuse anything but a loopback `http://` URL: traces stay on this machine.
pub fn check_loopback_url(url: &str) -> anyhow::Result<()> {
    let parsed = reqwest::Url::parse(url).with_context(|| format!("{url} is not a URL"))?;
    let host = parsed.host_str().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
    let loopback = host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if parsed.scheme() != "http" || !loopback {
        bail!("{url}: only http:// on a loopback address (127.0.0.0/8, ::1, localhost) is read");
    }
    Ok(())
}

impl Source {
    /// `--file` when given, else the serve page at `from`.
    pub fn new(from: String, file: Option<PathBuf>) -> anyhow::Result<Self> {
        match file {
            Some(file) => Ok(Self::File(file)),
            None => {
                check_loopback_url(&from)?;
                Ok(Self::Http(from.trim_end_matches('/').to_owned()))
            }
        }
    }

    /// Every span the source holds.
    pub async fn all(&self) -> anyhow::Result<Vec<SpanRecord>> {
        match self {
            Self::File(path) => read_file(path),
            Self::Http(base) => get_json(&format!("{base}/api/spans"), &[]).await,
        }
    }

    /// The trace `selector` picks; an error saying what was looked for when there is none.
    pub async fn trace(&self, selector: &Selector) -> anyhow::Result<Vec<SpanRecord>> {
        let found = match self {
            Self::File(path) => select(read_file(path)?, selector).unwrap_or_default(),
            Self::Http(base) => {
                let id = selector.id.as_deref().unwrap_or("latest");
                let mut query = Vec::new();
                for (key, value) in [
                    ("route", &selector.route),
                    ("with_service", &selector.with_service),
                    ("without_service", &selector.without_service),
                ] {
                    if let Some(value) = value {
                        query.push((key, value.as_str()));
                    }
                }
                get_json(&format!("{base}/api/traces/{id}"), &query).await?
            }
        };
        if found.is_empty() {
            bail!("no trace matches {selector:?} in {self}");
        }
        Ok(found)
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(url) => write!(f, "{url}"),
            Self::File(path) => write!(f, "{}", path.display()),
        }
    }
}

async fn get_json<T: serde::de::DeserializeOwned>(url: &str, query: &[(&str, &str)]) -> anyhow::Result<T> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .build()
        .context("building an HTTP client")?;
    let url = reqwest::Url::parse_with_params(url, query).with_context(|| format!("{url} is not a URL"))?;
    let response = client
        .get(url.clone())
        .send()
        .await
        .with_context(|| format!("asking {url} (is `archlab traces serve` running?)"))?;
    if response.status() == reqwest::StatusCode::NOT_FOUND {
        return serde_json::from_str("[]").context("an empty answer");
    }
    let response = response.error_for_status().with_context(|| format!("asking {url}"))?;
    response.json().await.with_context(|| format!("reading the answer of {url}"))
}

/// Read a JSON-lines span file; lines that do not parse are skipped and counted on stderr.
pub fn read_file(path: &std::path::Path) -> anyhow::Result<Vec<SpanRecord>> {
    let file = std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut spans = Vec::new();
    let mut bad = 0_usize;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(&line) {
            Ok(span) => spans.push(span),
            Err(_) => bad += 1,
        }
    }
    if bad > 0 {
        eprintln!("{}: skipped {bad} lines that are not spans", path.display());
    }
    Ok(spans)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waterfall::tests::span;

    fn trace(id: &str, start: u64, service: &str, name: &str) -> Vec<SpanRecord> {
        let mut root = span("r", None, service, "server", start, start + 10);
        root.trace_id = id.to_owned();
        root.name = name.to_owned();
        vec![root]
    }

    #[test]
    fn latest_with_route_and_service_filters_picks_the_newest_match() {
        let spans: Vec<SpanRecord> = [
            trace("a", 100, "monolith", "POST /api/payments"),
            trace("b", 300, "gateway", "POST /api/payments"),
            trace("c", 400, "gateway", "GET /api/users/me"),
            trace("d", 200, "monolith", "POST /api/payments"),
        ]
        .concat();
        let pick = |selector: Selector| select(spans.clone(), &selector).map(|t| t[0].trace_id.clone());
        assert_eq!(pick(Selector::parse("latest", None)).as_deref(), Some("c"));
        assert_eq!(pick(Selector::parse("latest", Some("/api/payments".into()))).as_deref(), Some("b"));
        let monolith = Selector {
            route: Some("POST /api/payments".into()),
            with_service: Some("monolith".into()),
            ..Selector::default()
        };
        assert_eq!(pick(monolith).as_deref(), Some("d"));
        let micro = Selector { without_service: Some("monolith".into()), ..Selector::default() };
        assert_eq!(pick(micro).as_deref(), Some("c"));
        assert_eq!(pick(Selector::parse("A", None)).as_deref(), Some("a"), "ids are case-insensitive");
        assert_eq!(pick(Selector::parse("zz", None)), None);
    }

    #[test]
    fn the_route_can_come_from_http_attributes() {
        let mut t = trace("a", 1, "gateway", "HTTP POST");
        t[0].attributes.insert("http.request.method".into(), "POST".into());
        t[0].attributes.insert("http.route".into(), "/api/payments".into());
        assert!(Selector::parse("latest", Some("POST /api/payments".into())).matches(&t));
        assert!(!Selector::parse("latest", Some("GET /api/payments".into())).matches(&t));
    }

    #[test]
    fn only_loopback_urls_are_read() {
        for ok in ["http://127.0.0.1:16687", "http://localhost:1", "http://[::1]:2/", "http://127.1.2.3"] {
            assert!(check_loopback_url(ok).is_ok(), "{ok}");
        }
        for refused in ["http://10.0.0.1:16687", "http://example.com", "https://127.0.0.1", "nonsense"] {
            assert!(check_loopback_url(refused).is_err(), "{refused}");
        }
    }
}
