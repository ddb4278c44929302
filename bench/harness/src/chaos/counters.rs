//! The build's own counts, second by second through a run: the internal calls its remote
//! clients made, what their resilience policies did (retries, refused retries, the breaker),
//! from every process's `GET /metrics`; and the calls that reached each fault point and those
//! its fault failed, from every admin endpoint's `GET /admin/faults`.
//!
//! These are what the load generator cannot see: how many attempts a dependency received for
//! the requests sent, so a retry storm (and a budget or breaker that stops one) shows in
//! numbers counted by the callers and the callee themselves.
//!
//! Every process is read once a second, all at once. A counter that goes down was restarted
//! with its process: its new value is what it counted since. A process that does not answer
//! (killed, restarting) is skipped for that second, and its counts are picked up later.

use archlab_kernel::metrics;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::time::Instant;

/// Longest wait for one process's counts; a slower process is skipped for that second.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// The key of the internal calls made (`archlab_calls_total{kind="internal_rpc"}`).
pub const CALLS: &str = "internal_rpc";
/// The key of the retries sent (`archlab_resilience_total{event="retry"}`).
pub const RETRIES: &str = "retry";

/// The key of the calls that reached fault point `point`.
pub fn reached(point: &str) -> String {
    format!("{point} reached")
}

/// The key of the calls fault point `point` failed.
pub fn failed(point: &str) -> String {
    format!("{point} failed")
}

/// What the build counted in one second of the run, summed over its processes; only the
/// counts that moved are kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterSecond {
    /// Seconds from the start of the load.
    pub second: u32,
    /// Count by key: `internal_rpc`, `retry`, `retry_budget_exhausted`, `breaker_opened`,
    /// `breaker_rejected`, … and `<point> reached` / `<point> failed`.
    pub counts: BTreeMap<String, u64>,
}

/// One reading of every process: cumulative counts by `(process, key)`.
pub type Sample = BTreeMap<(String, String), u64>;

/// Where to read one process.
#[derive(Debug, Clone)]
pub struct Source {
    /// Its binary name.
    pub name: String,
    /// Its HTTP base URL (`/metrics`).
    pub http_url: String,
    /// Its fault admin endpoint, if it has one.
    pub admin_url: Option<String>,
}

/// Read every source once a second from `start` for `seconds` seconds: `seconds + 1`
/// samples, the first at `start`.
pub async fn record(sources: &[Source], start: Instant, seconds: u32) -> Vec<Sample> {
    let client = match reqwest::Client::builder().no_proxy().timeout(READ_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::warn!("no client to read the counters: {error}");
            return Vec::new();
        }
    };
    let mut samples = Vec::new();
    for k in 0..=seconds {
        tokio::time::sleep_until(start + Duration::from_secs(u64::from(k))).await;
        let reads = sources.iter().map(|s| read(&client, s));
        let mut sample = Sample::new();
        for (source, counts) in sources.iter().zip(futures::future::join_all(reads).await) {
            for (key, value) in counts {
                sample.insert((source.name.clone(), key), value);
            }
        }
        samples.push(sample);
    }
    samples
}

/// One process's cumulative counts; empty when it does not answer.
async fn read(client: &reqwest::Client, source: &Source) -> Vec<(String, u64)> {
    let mut counts = Vec::new();
    let url = format!("{}/metrics", source.http_url.trim_end_matches('/'));
    if let Some(text) = text_of(client.get(&url).send().await).await {
        counts.extend(metrics::parse(&text));
        counts.extend(metrics::parse_resilience(&text));
    }
    if let Some(admin) = &source.admin_url {
        let url = format!("{}/admin/faults", admin.trim_end_matches('/'));
        if let Some(text) = text_of(client.get(&url).send().await).await {
            counts.extend(fault_counts(&text));
        }
    }
    counts
}

async fn text_of(answer: reqwest::Result<reqwest::Response>) -> Option<String> {
    let response = answer.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.text().await.ok()
}

/// The `reached` and `failed` counts of the points this process reaches, from its
/// `GET /admin/faults` listing.
pub fn fault_counts(listing: &str) -> Vec<(String, u64)> {
    #[derive(Deserialize)]
    struct Listing {
        points: Vec<Point>,
    }
    #[derive(Deserialize)]
    struct Point {
        name: String,
        here: bool,
        #[serde(default)]
        reached: u64,
        #[serde(default)]
        failed: u64,
    }
    let Ok(listing) = serde_json::from_str::<Listing>(listing) else { return Vec::new() };
    listing
        .points
        .into_iter()
        .filter(|p| p.here)
        .flat_map(|p| [(reached(&p.name), p.reached), (failed(&p.name), p.failed)])
        .collect()
}

/// The per-second counts between consecutive samples, summed over processes. A count lower
/// than the one before was reset by a restart: all of it is new. A count missing from the
/// earlier sample (its process did not answer) counts from the last sample that had it.
pub fn per_second(samples: &[Sample]) -> Vec<CounterSecond> {
    let mut last: Sample = Sample::new();
    let mut seconds = Vec::new();
    for (k, pair) in samples.windows(2).enumerate() {
        for (key, value) in &pair[0] {
            last.insert(key.clone(), *value);
        }
        let mut counts = BTreeMap::new();
        for ((process, key), &value) in &pair[1] {
            let before = last.get(&(process.clone(), key.clone())).copied().unwrap_or(0);
            let delta = if value >= before { value - before } else { value };
            if delta > 0 {
                *counts.entry(key.clone()).or_insert(0) += delta;
            }
        }
        seconds.push(CounterSecond { second: k as u32, counts });
    }
    seconds
}

/// The sum of `key` over `range` of `seconds`.
pub fn sum(seconds: &[CounterSecond], range: std::ops::Range<usize>, key: &str) -> u64 {
    seconds.get(range).unwrap_or_default().iter().filter_map(|s| s.counts.get(key)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(entries: &[(&str, &str, u64)]) -> Sample {
        entries.iter().map(|(p, k, v)| (((*p).to_owned(), (*k).to_owned()), *v)).collect()
    }

    #[test]
    fn seconds_are_differences_summed_over_processes_and_a_restart_counts_from_zero() {
        let samples = [
            sample(&[("gateway", "retry", 0), ("payments", "retry", 5)]),
            sample(&[("gateway", "retry", 10), ("payments", "retry", 7)]),
            // payments restarted: 3 since its start, not -4.
            sample(&[("gateway", "retry", 12), ("payments", "retry", 3)]),
            // gateway did not answer this second...
            sample(&[("payments", "retry", 4)]),
            // ...and its count is picked up from the last sample that had it.
            sample(&[("gateway", "retry", 20), ("payments", "retry", 4)]),
        ];
        let seconds = per_second(&samples);
        let retries: Vec<u64> = seconds.iter().map(|s| s.counts.get("retry").copied().unwrap_or(0)).collect();
        assert_eq!(retries, [12, 5, 1, 8]);
        assert_eq!(sum(&seconds, 1..3, "retry"), 6);
        assert_eq!(sum(&seconds, 2..99, "retry"), 0, "a range past the end sums nothing");
        assert_eq!(sum(&seconds, 0..4, "retry"), 26);
    }

    #[test]
    fn fault_counts_come_from_the_points_this_process_reaches() {
        let listing = r#"{"points":[
            {"name":"users.get_profile","what":"","here":true,"fault":null,"reached":40,"failed":12},
            {"name":"payments.record","what":"","here":false,"fault":null,"reached":0,"failed":0}
        ],"leaked_bytes":0}"#;
        assert_eq!(
            fault_counts(listing),
            [("users.get_profile reached".to_owned(), 40), ("users.get_profile failed".to_owned(), 12)]
        );
        assert!(fault_counts("not json").is_empty());
    }
}
