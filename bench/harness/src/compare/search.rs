//! The saturation search: which offered rate to try next, and which one was the last that met
//! the objective. Pure functions over what the steps so far gave, so they are tested on
//! synthetic data without a server.
//!
//! The search climbs geometrically (`start`, `start·factor`, …) until a step misses the
//! objective, then bisects (geometric mean) between the last good and the first bad rate a
//! fixed number of times. With `factor` 1.6 and three bisections the answer is within about
//! 6 % of the true limit, at a cost of a handful of steps.
//!
//! With `confirm_misses`, a rate that missed is run once more before the search believes it:
//! on a shared machine one transient stall (a checkpoint, a neighbour) can push a single
//! step's p99 past the objective at a rate the build holds, and without a second look that
//! one step ends the climb. A rate's verdict is its last run.

use crate::model::{LoadReport, Saturation, Step};

/// How the offered rate is stepped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Search {
    /// First rate tried, requests per second.
    pub start: f64,
    /// Growth between steps while the objective holds (> 1).
    pub factor: f64,
    /// Bisections between the last good and the first bad rate.
    pub refinements: usize,
    /// Hard bound on steps, whatever happens.
    pub max_steps: usize,
    /// Never offer more than this (the generator's own limit).
    pub max_rate: f64,
    /// Run a rate that missed once more before taking the miss as the build's limit.
    pub confirm_misses: bool,
}

/// What the objective asks of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Objective {
    /// p99 latency (from intended send time) at most this, in microseconds.
    pub p99_us: u64,
    /// Errors (and requests never sent) below this share.
    pub error_budget: f64,
}

impl Objective {
    /// Whether one open-loop step met the objective: p99 under the bound, errors under the
    /// budget, and the generator actually delivered the load (a run that could not send what
    /// it was asked to has not shown that the server holds that rate).
    pub fn holds(&self, report: &LoadReport) -> bool {
        let due = report.requests + report.unsent;
        let unsent_share = if due == 0 { 1.0 } else { report.unsent as f64 / due as f64 };
        report.requests > 0
            && report.latency.p99_us <= self.p99_us
            && report.error_rate() < self.error_budget
            && unsent_share < self.error_budget
    }

    /// Whether a closed-loop run met it: latency and errors only (users wait by design).
    pub fn holds_closed(&self, report: &LoadReport) -> bool {
        report.requests > 0 && report.latency.p99_us <= self.p99_us && report.error_rate() < self.error_budget
    }
}

impl Search {
    /// The next rate to try after `steps` (rate, met the objective), in the order they ran;
    /// `None` when the search is over.
    pub fn next(&self, steps: &[(f64, bool)]) -> Option<f64> {
        if steps.len() >= self.max_steps {
            return None;
        }
        let Some(&(last, last_ok)) = steps.last() else {
            return Some(self.start.min(self.max_rate));
        };
        if self.confirm_misses && !last_ok && steps.iter().filter(|(rate, _)| *rate == last).count() == 1 {
            return Some(last);
        }
        let verdicts = last_verdicts(steps);
        let steps = verdicts.as_slice();
        let good = steps.iter().filter(|(_, ok)| *ok).map(|(rate, _)| *rate).fold(None, max_opt);
        let first_bad = steps.iter().position(|(_, ok)| !ok);
        let Some(first_bad) = first_bad else {
            // Still climbing.
            return (last < self.max_rate).then(|| (last * self.factor).min(self.max_rate));
        };
        let bad = steps
            .iter()
            .filter(|(rate, ok)| !ok && good.is_none_or(|good| *rate > good))
            .map(|(rate, _)| *rate)
            .fold(None, min_opt)?;
        let after_failure = steps.len() - first_bad - 1;
        match good {
            // Even the first rate was too much: step down, as far as the refinements allow.
            None => (after_failure < self.refinements).then(|| bad / self.factor),
            Some(good) => (after_failure < self.refinements).then(|| (good * bad).sqrt()),
        }
    }
}

/// Each rate once, in the order first tried, with the verdict of its last run.
fn last_verdicts(steps: &[(f64, bool)]) -> Vec<(f64, bool)> {
    let mut verdicts: Vec<(f64, bool)> = Vec::new();
    for &(rate, ok) in steps {
        match verdicts.iter_mut().find(|(r, _)| *r == rate) {
            Some(verdict) => verdict.1 = ok,
            None => verdicts.push((rate, ok)),
        }
    }
    verdicts
}

fn max_opt(acc: Option<f64>, x: f64) -> Option<f64> {
    Some(acc.map_or(x, |a| a.max(x)))
}

fn min_opt(acc: Option<f64>, x: f64) -> Option<f64> {
    Some(acc.map_or(x, |a| a.min(x)))
}

/// The highest offered rate that met the objective, with what it gave.
pub fn saturation(steps: &[Step]) -> Option<Saturation> {
    steps.iter().filter(|s| s.within_objective).max_by(|a, b| a.rate_per_s.total_cmp(&b.rate_per_s)).map(|s| {
        Saturation {
            rate_per_s: s.rate_per_s,
            throughput_per_s: s.report.throughput_per_s,
            p99_us: s.report.latency.p99_us,
            error_rate: s.report.error_rate(),
        }
    })
}

/// Users a build should hold at the objective by Little's law: the throughput it sustained,
/// times how long one user's cycle lasts (think time plus a typical answer).
pub fn users_estimate(saturation: &Saturation, p50_us: u64, think_time_ms: u64) -> u32 {
    let cycle_s = think_time_ms as f64 / 1000.0 + p50_us as f64 / 1e6;
    (saturation.throughput_per_s * cycle_s).floor().clamp(1.0, u32::MAX as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEARCH: Search =
        Search { start: 100.0, factor: 2.0, refinements: 2, max_steps: 20, max_rate: 1e6, confirm_misses: false };

    /// Run the search against a synthetic server that holds any rate up to `capacity`.
    fn run(search: Search, capacity: f64) -> Vec<(f64, bool)> {
        let mut steps = Vec::new();
        while let Some(rate) = search.next(&steps) {
            steps.push((rate, rate <= capacity));
            assert!(steps.len() <= search.max_steps, "the search must stop by itself");
        }
        steps
    }

    fn best(steps: &[(f64, bool)]) -> Option<f64> {
        steps.iter().filter(|s| s.1).map(|s| s.0).fold(None, max_opt)
    }

    #[test]
    fn climbs_then_bisects_towards_the_capacity() {
        let steps = run(SEARCH, 1000.0);
        let rates: Vec<f64> = steps.iter().map(|s| s.0).collect();
        // 100, 200, 400, 800 hold; 1600 fails; then sqrt(800·1600) ≈ 1131 fails, sqrt(800·1131) ≈ 951 holds.
        assert_eq!(&rates[..5], &[100.0, 200.0, 400.0, 800.0, 1600.0]);
        assert_eq!(steps.len(), 7, "two bisections after the first failure: {rates:?}");
        let found = best(&steps).expect("some rate held");
        assert!((900.0..=1000.0).contains(&found), "found {found}, capacity 1000");
    }

    #[test]
    fn answers_within_the_stated_resolution_for_many_capacities() {
        let search = Search { factor: 1.6, ..SEARCH };
        for capacity in [150.0, 333.0, 1000.0, 4321.0, 9999.0] {
            let found = best(&run(search, capacity)).expect("the start rate holds");
            assert!(
                found <= capacity && found >= capacity / 1.6f64.powf(0.25) - 1e-9,
                "capacity {capacity}: found {found}"
            );
        }
    }

    #[test]
    fn a_single_transient_miss_is_run_again_and_the_climb_goes_on() {
        let search = Search { confirm_misses: true, ..SEARCH };
        // Capacity 1000, but the first run at 200 hits a stall.
        let mut steps: Vec<(f64, bool)> = Vec::new();
        while let Some(rate) = search.next(&steps) {
            let stalled = rate == 200.0 && !steps.iter().any(|(r, _)| *r == 200.0);
            steps.push((rate, rate <= 1000.0 && !stalled));
        }
        assert_eq!(&steps[..3], &[(100.0, true), (200.0, false), (200.0, true)], "{steps:?}");
        assert_eq!(steps[3], (400.0, true), "the climb went on: {steps:?}");
        // 1600 and its bisection 1131 miss twice each; the second bisection, 951, holds.
        let answer = best(&steps).expect("some rate held");
        assert!((answer - (800.0f64 * (800.0f64 * 1600.0).sqrt()).sqrt()).abs() < 1e-6, "{answer} {steps:?}");
        // Without the second look the stall would have been the limit.
        let unconfirmed: Vec<(f64, bool)> = vec![(100.0, true), (200.0, false)];
        assert_eq!(SEARCH.next(&unconfirmed), Some((100.0f64 * 200.0).sqrt()));
    }

    #[test]
    fn a_miss_that_repeats_is_the_limit() {
        let search = Search { confirm_misses: true, ..SEARCH };
        let steps = run(search, 1000.0);
        // 100..800 hold, 1600 misses twice, then the bisections, each miss confirmed.
        assert_eq!(&steps[..5], &[(100.0, true), (200.0, true), (400.0, true), (800.0, true), (1600.0, false)]);
        assert_eq!(steps[5], (1600.0, false), "{steps:?}");
        let misses: Vec<f64> = steps.iter().filter(|(_, ok)| !ok).map(|(r, _)| *r).collect();
        for rate in &misses {
            assert_eq!(misses.iter().filter(|r| *r == rate).count(), 2, "every miss confirmed: {steps:?}");
        }
        let answer = best(&steps).expect("some rate held");
        assert!(answer <= 1000.0 && answer >= 1000.0 / 2f64.sqrt().sqrt(), "{answer} {steps:?}");
    }

    #[test]
    fn steps_down_when_even_the_first_rate_fails() {
        let steps = run(SEARCH, 30.0);
        assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), vec![100.0, 50.0, 25.0]);
        assert_eq!(best(&steps), Some(25.0));
    }

    #[test]
    fn never_exceeds_max_steps_or_max_rate() {
        let search = Search { max_steps: 5, max_rate: 1000.0, ..SEARCH };
        let steps = run(search, f64::INFINITY);
        assert!(steps.len() <= 5);
        assert!(steps.iter().all(|s| s.0 <= 1000.0));
        assert_eq!(steps.last().map(|s| s.0), Some(1000.0), "climbs up to the cap, then stops");
    }

    fn report(p99_us: u64, requests: u64, ok: u64, unsent: u64) -> LoadReport {
        LoadReport {
            sent_total: 0,
            scenario: "browse".into(),
            target: "http://127.0.0.1:1".into(),
            offered: crate::model::Offered::Open { rate_per_s: 100.0 },
            connections: 1,
            warmup_s: 0.0,
            duration_s: 1.0,
            requests,
            ok,
            errors: Default::default(),
            unsent,
            throughput_per_s: requests as f64,
            latency: crate::model::Percentiles { p99_us, ..Default::default() },
            service_time: Default::default(),
            by_step: Default::default(),
        }
    }

    #[test]
    fn the_objective_needs_latency_errors_and_delivered_load() {
        let objective = Objective { p99_us: 50_000, error_budget: 0.01 };
        assert!(objective.holds(&report(49_000, 1000, 1000, 0)));
        assert!(!objective.holds(&report(51_000, 1000, 1000, 0)), "p99 over the bound");
        assert!(!objective.holds(&report(1_000, 1000, 980, 0)), "2 % errors");
        assert!(!objective.holds(&report(1_000, 1000, 1000, 100)), "the load was not delivered");
        assert!(!objective.holds(&report(0, 0, 0, 0)), "nothing measured proves nothing");
        assert!(objective.holds_closed(&report(1_000, 10, 10, 0)));
    }

    #[test]
    fn saturation_is_the_highest_rate_that_held() {
        let step = |rate: f64, ok: bool| Step { rate_per_s: rate, report: report(1, 10, 10, 0), within_objective: ok };
        let steps = [step(100.0, true), step(200.0, true), step(400.0, false), step(283.0, true), step(336.0, false)];
        assert_eq!(saturation(&steps).map(|s| s.rate_per_s), Some(283.0));
        assert_eq!(saturation(&[step(100.0, false)]), None);
    }

    #[test]
    fn users_follow_littles_law() {
        let sat = Saturation { rate_per_s: 1000.0, throughput_per_s: 1000.0, p99_us: 0, error_rate: 0.0 };
        // 1 s think + 2 ms answer: each user makes ~0.998 requests per second.
        assert_eq!(users_estimate(&sat, 2_000, 1000), 1002);
        assert_eq!(users_estimate(&Saturation { throughput_per_s: 0.0, ..sat }, 0, 1000), 1);
    }
}
