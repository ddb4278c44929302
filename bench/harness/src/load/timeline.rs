//! Per-second figures of a run, for a chaos experiment: when did errors start, when did they
//! stop, which steps failed. Off unless asked for ([`super::run_timeline`]); `archlab load`'s
//! own outputs never carry it.
//!
//! A request belongs to the second it was due in (open loop) or sent in (closed loop),
//! counted from the start of the measured window: the second a user asked, not the second
//! the answer came, so a stall shows where it began even when its answers arrive late.

use super::recorder::{Outcome, error_key};
use super::scenario::Step;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// What one task saw in one second: raw, merged across tasks, then summarised ([`Second`]).
#[derive(Debug, Clone, Default)]
pub struct Bucket {
    /// Latency of every request, in microseconds, with its step, in arrival order.
    latencies_us: Vec<(u64, Step)>,
    /// Unsuccessful outcomes by cause (`503`, `timeout`, ...).
    errors: BTreeMap<String, u64>,
    /// Requests and errors per step, indexed like [`Step::ALL`].
    steps: [(u64, u64); Step::ALL.len()],
}

impl Bucket {
    fn record(&mut self, step: Step, outcome: Outcome, latency: Duration) {
        self.latencies_us.push((u64::try_from(latency.as_micros()).unwrap_or(u64::MAX), step));
        let failed = !matches!(outcome, Outcome::Status(s) if s == step.expected_status());
        if failed {
            *self.errors.entry(error_key(outcome)).or_default() += 1;
        }
        let entry = &mut self.steps[step.index()];
        entry.0 += 1;
        entry.1 += u64::from(failed);
    }

    fn merge(&mut self, other: &Bucket) {
        self.latencies_us.extend_from_slice(&other.latencies_us);
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            mine.0 += theirs.0;
            mine.1 += theirs.1;
        }
    }
}

/// One task's timeline: a bucket per second of the window.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    buckets: Vec<Bucket>,
}

impl Recording {
    /// Record one request due (or sent) `offset` into the measured window.
    pub fn record(&mut self, offset: Duration, step: Step, outcome: Outcome, latency: Duration) {
        let second =
            usize::try_from(offset.as_secs()).unwrap_or(usize::MAX).min(super::MAX_DURATION.as_secs() as usize);
        if self.buckets.len() <= second {
            self.buckets.resize_with(second + 1, Bucket::default);
        }
        self.buckets[second].record(step, outcome, latency);
    }

    /// Add another task's timeline to this one.
    pub fn merge(&mut self, other: &Recording) {
        if self.buckets.len() < other.buckets.len() {
            self.buckets.resize_with(other.buckets.len(), Bucket::default);
        }
        for (mine, theirs) in self.buckets.iter_mut().zip(&other.buckets) {
            mine.merge(theirs);
        }
    }

    /// The summary of every second, from the first of the window to the last that saw a request.
    pub fn seconds(&self) -> Vec<Second> {
        self.buckets.iter().enumerate().map(|(i, b)| Second::of(i as u32, b)).collect()
    }

    /// The figures of seconds `from..to` together (of `step` only, when given).
    pub fn window(&self, seconds: std::ops::Range<usize>, step: Option<Step>) -> Window {
        let buckets = self.buckets.get(seconds.start.min(self.buckets.len())..seconds.end.min(self.buckets.len()));
        let mut latencies = Vec::new();
        let (mut requests, mut errors) = (0, 0);
        for bucket in buckets.unwrap_or_default() {
            let wanted = |s: &Step| step.is_none_or(|want| want == *s);
            latencies.extend(bucket.latencies_us.iter().filter(|(_, s)| wanted(s)).map(|(us, _)| *us));
            for (s, (r, e)) in Step::ALL.iter().zip(&bucket.steps) {
                if wanted(s) {
                    requests += r;
                    errors += e;
                }
            }
        }
        latencies.sort_unstable();
        Window { requests, errors, p50_us: quantile(&latencies, 0.5), p99_us: quantile(&latencies, 0.99) }
    }
}

/// Several seconds' figures together: [`Recording::window`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Requests due in the window.
    pub requests: u64,
    /// Of those, not answered with the expected status.
    pub errors: u64,
    /// Their median latency, in microseconds (0 without any).
    #[serde(default)]
    pub p50_us: u64,
    /// Their 99th percentile latency, in microseconds (0 without any).
    pub p99_us: u64,
}

impl Window {
    /// The share of requests that failed (0 without any request).
    pub fn error_rate(&self) -> f64 {
        if self.requests == 0 { 0.0 } else { self.errors as f64 / self.requests as f64 }
    }
}

/// One step's figures in one second.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSecond {
    /// Requests of this step due in the second.
    pub requests: u64,
    /// Of those, not answered with the step's expected status.
    pub errors: u64,
}

/// One second of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Second {
    /// Seconds from the start of the measured window.
    pub second: u32,
    /// Requests due in this second (and completed).
    pub requests: u64,
    /// Of those, not answered with the expected status.
    pub errors: u64,
    /// The errors by cause: a status (`503`), `timeout`, `connect` or `io`.
    pub errors_by_cause: BTreeMap<String, u64>,
    /// Per step (`payments.create`, ...), the steps that saw requests.
    pub by_step: BTreeMap<String, StepSecond>,
    /// The 99th percentile latency of the second's requests, in microseconds (0 without any).
    pub p99_us: u64,
}

impl Second {
    fn of(second: u32, bucket: &Bucket) -> Self {
        let mut sorted: Vec<u64> = bucket.latencies_us.iter().map(|(us, _)| *us).collect();
        sorted.sort_unstable();
        let by_step = Step::ALL
            .iter()
            .zip(&bucket.steps)
            .filter(|(_, (requests, _))| *requests > 0)
            .map(|(step, &(requests, errors))| (step.name().to_owned(), StepSecond { requests, errors }))
            .collect();
        Self {
            second,
            requests: sorted.len() as u64,
            errors: bucket.errors.values().sum(),
            errors_by_cause: bucket.errors.clone(),
            by_step,
            p99_us: quantile(&sorted, 0.99),
        }
    }
}

/// The value at quantile `q` of `sorted` (nearest rank; 0 when empty).
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_second_and_merge_across_tasks() {
        let ms = Duration::from_millis;
        let mut a = Recording::default();
        let mut b = Recording::default();
        a.record(ms(100), Step::UsersMe, Outcome::Status(200), ms(2));
        a.record(ms(2500), Step::PaymentsCreate, Outcome::Status(503), ms(40));
        b.record(ms(900), Step::PaymentsCreate, Outcome::Timeout, ms(1000));
        b.record(ms(2999), Step::PaymentsCreate, Outcome::Status(201), ms(10));
        a.merge(&b);
        let seconds = a.seconds();
        assert_eq!(seconds.len(), 3, "second 1 saw nothing and is still listed");
        assert_eq!((seconds[0].requests, seconds[0].errors), (2, 1));
        assert_eq!(seconds[0].errors_by_cause, BTreeMap::from([("timeout".to_owned(), 1)]));
        assert_eq!(seconds[0].p99_us, 1_000_000);
        assert_eq!(seconds[1], Second { second: 1, ..Second::default() });
        assert_eq!(seconds[2].by_step["payments.create"], StepSecond { requests: 2, errors: 1 });
        assert_eq!(seconds[2].errors_by_cause["503"], 1);
        let payments = a.window(0..3, Some(Step::PaymentsCreate));
        assert_eq!((payments.requests, payments.errors, payments.p99_us), (3, 2, 1_000_000));
        assert_eq!(payments.p50_us, 40_000, "the middle of 10, 40 and 1000 ms");
        assert_eq!(a.window(1..2, None), Window::default());
        assert_eq!(a.window(2..99, None).requests, 2, "a range past the end stops at the end");
    }

    #[test]
    fn nearest_rank_quantiles() {
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(quantile(&values, 0.99), 99);
        assert_eq!(quantile(&values, 1.0), 100);
        assert_eq!(quantile(&[7], 0.99), 7);
        assert_eq!(quantile(&[], 0.99), 0);
    }
}
