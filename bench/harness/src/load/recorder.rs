//! What one task saw: HDR histograms of latency and service time (overall and per step),
//! counts and errors. Each task keeps its own, so recording takes no lock; the run merges
//! them at the end.

use super::scenario::Step;
use crate::model::Percentiles;
use anyhow::Context;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::time::Duration;

/// The largest latency recorded exactly, in microseconds (one minute); larger values are
/// recorded as this.
pub const MAX_US: u64 = 60_000_000;
/// Significant figures the histograms keep.
pub const SIGFIG: u8 = 3;

/// How one request ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer with this status.
    Status(u16),
    /// No answer within the request timeout.
    Timeout,
    /// The connection could not be opened.
    Connect,
    /// The connection failed while the request was in flight.
    Io,
}

/// A histogram of microseconds from 1 µs to [`MAX_US`].
pub fn histogram() -> anyhow::Result<Histogram<u64>> {
    Histogram::new_with_bounds(1, MAX_US, SIGFIG).context("creating a histogram")
}

/// One task's figures.
#[derive(Debug, Clone)]
pub struct Recorder {
    /// From the intended send time (open loop) or the actual send (closed loop).
    pub latency: Histogram<u64>,
    /// From the actual send.
    pub service: Histogram<u64>,
    /// Latency per step, indexed like [`Step::ALL`].
    pub steps: Vec<Histogram<u64>>,
    /// Requests completed in the measured window.
    pub requests: u64,
    /// Of those, answered with the expected status.
    pub ok: u64,
    /// The others, by cause.
    pub errors: BTreeMap<String, u64>,
    /// Due in the window, never sent.
    pub unsent: u64,
}

impl Recorder {
    /// An empty recorder.
    pub fn new() -> anyhow::Result<Self> {
        Ok(Self {
            latency: histogram()?,
            service: histogram()?,
            steps: Step::ALL.iter().map(|_| histogram()).collect::<anyhow::Result<_>>()?,
            requests: 0,
            ok: 0,
            errors: BTreeMap::new(),
            unsent: 0,
        })
    }

    /// Record one completed request of the measured window.
    pub fn record(&mut self, step: Step, outcome: Outcome, latency: Duration, service: Duration) {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).clamp(1, MAX_US);
        self.latency.saturating_record(us(latency));
        self.service.saturating_record(us(service));
        if let Some(h) = self.steps.get_mut(step.index()) {
            h.saturating_record(us(latency));
        }
        self.requests += 1;
        match outcome {
            Outcome::Status(s) if s == step.expected_status() => self.ok += 1,
            other => *self.errors.entry(error_key(other)).or_default() += 1,
        }
    }

    /// Add another task's figures to these.
    pub fn merge(&mut self, other: &Recorder) -> anyhow::Result<()> {
        self.latency.add(&other.latency).context("merging latency")?;
        self.service.add(&other.service).context("merging service time")?;
        for (mine, theirs) in self.steps.iter_mut().zip(&other.steps) {
            mine.add(theirs).context("merging a step's latency")?;
        }
        self.requests += other.requests;
        self.ok += other.ok;
        self.unsent += other.unsent;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        Ok(())
    }

    /// Per-step percentiles of the steps that saw requests, keyed by step name.
    pub fn by_step(&self) -> BTreeMap<String, Percentiles> {
        Step::ALL
            .iter()
            .zip(&self.steps)
            .filter(|(_, h)| !h.is_empty())
            .map(|(s, h)| (s.name().to_owned(), percentiles(h)))
            .collect()
    }
}

/// The key of an unsuccessful outcome in `LoadReport::errors`.
pub fn error_key(outcome: Outcome) -> String {
    match outcome {
        Outcome::Status(s) => s.to_string(),
        Outcome::Timeout => "timeout".to_owned(),
        Outcome::Connect => "connect".to_owned(),
        Outcome::Io => "io".to_owned(),
    }
}

/// p50, p90, p99, p99.9, max and mean of a histogram (all zero when it is empty).
pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        mean_us: h.mean(),
        p50_us: h.value_at_quantile(0.50),
        p90_us: h.value_at_quantile(0.90),
        p99_us: h.value_at_quantile(0.99),
        p999_us: h.value_at_quantile(0.999),
        max_us: h.max(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merged_recorders_equal_one_fed_everything() -> anyhow::Result<()> {
        let mut parts = [Recorder::new()?, Recorder::new()?, Recorder::new()?];
        let mut whole = Recorder::new()?;
        // Different ranges per part, so a merge that dropped one would move the percentiles.
        for i in 0..30_000u64 {
            let part = (i % 3) as usize;
            let latency = Duration::from_micros(100 + i * (part as u64 + 1) * 7 % 50_000);
            let service = latency / 2;
            let outcome = if i % 101 == 0 { Outcome::Status(503) } else { Outcome::Status(200) };
            let step = if part == 2 { Step::PaymentsList } else { Step::UsersMe };
            parts[part].record(step, outcome, latency, service);
            whole.record(step, outcome, latency, service);
        }
        parts[1].unsent = 4;
        parts[2].errors.insert("timeout".into(), 2);
        parts[2].requests += 2;
        let mut merged = Recorder::new()?;
        for p in &parts {
            merged.merge(p)?;
        }
        assert_eq!(percentiles(&merged.latency), percentiles(&whole.latency));
        assert_eq!(percentiles(&merged.service), percentiles(&whole.service));
        assert_eq!(merged.by_step(), whole.by_step());
        assert_eq!(merged.requests, 30_002);
        assert_eq!(merged.ok, whole.ok);
        assert_eq!(merged.errors["503"], whole.errors["503"]);
        assert_eq!(merged.errors["timeout"], 2);
        assert_eq!(merged.unsent, 4);
        assert_eq!(merged.ok + merged.errors.values().sum::<u64>(), merged.requests);
        Ok(())
    }

    #[test]
    fn unexpected_statuses_count_as_errors_by_number() -> anyhow::Result<()> {
        let mut r = Recorder::new()?;
        let d = Duration::from_millis(1);
        r.record(Step::PaymentsCreate, Outcome::Status(201), d, d);
        r.record(Step::PaymentsCreate, Outcome::Status(200), d, d);
        r.record(Step::UsersMe, Outcome::Status(429), d, d);
        r.record(Step::UsersMe, Outcome::Io, d, d);
        assert_eq!(r.ok, 1);
        assert_eq!(r.errors, BTreeMap::from([("200".into(), 1), ("429".into(), 1), ("io".into(), 1)]));
        Ok(())
    }

    #[test]
    fn percentiles_use_microseconds_at_three_figures() -> anyhow::Result<()> {
        let mut h = histogram()?;
        for v in 1..=1000u64 {
            h.record(v * 1000)?;
        }
        let p = percentiles(&h);
        assert_eq!(p.count, 1000);
        assert!(p.p50_us.abs_diff(500_000) <= 500, "{}", p.p50_us);
        assert!(p.p99_us.abs_diff(990_000) <= 1000, "{}", p.p99_us);
        assert!(p.max_us.abs_diff(1_000_000) <= 1000);
        assert_eq!(percentiles(&histogram()?), Percentiles::default());
        Ok(())
    }
}
