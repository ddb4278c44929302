//! The one back-off policy: how long to wait before trying again after a failure.
//!
//! Exponential: the first wait, doubled after each further failure, never more than a cap.
//! Every retry loop in both builds uses it, each with its own first wait and cap: the outbox
//! worker ([`outbox::BACKOFF`](crate::outbox::BACKOFF), counted by a row's `attempts`) and
//! the microservices' broker consumer (reconnects and transient delivery failures, counted
//! by [`Retries`]).

use std::time::Duration;

/// Exponential back-off from `first`, doubling per failure, capped at `max`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub first: Duration,
    /// The longest wait, however many failures came before.
    pub max: Duration,
}

impl Backoff {
    /// A policy waiting `first`, then twice as long after each further failure, up to `max`.
    pub const fn new(first: Duration, max: Duration) -> Self {
        Self { first, max }
    }

    /// The wait after `failures` consecutive failures: `first` after one, doubled for each
    /// further one, at most `max`. (Zero failures counts as one.)
    pub fn delay(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(31);
        self.first.saturating_mul(1 << doublings).min(self.max)
    }

    /// A fresh run of waits under this policy.
    pub fn retries(self) -> Retries {
        Retries { policy: self, failures: 0 }
    }
}

/// Consecutive failures under one [`Backoff`], for a loop that keeps its count in memory.
#[derive(Debug, Clone)]
pub struct Retries {
    policy: Backoff,
    /// Failures since the last success.
    failures: u32,
}

impl Retries {
    /// Count one more failure and return how long to wait before the next attempt.
    pub fn next_wait(&mut self) -> Duration {
        self.failures = self.failures.saturating_add(1);
        self.policy.delay(self.failures)
    }

    /// An attempt succeeded: the next failure waits `first` again.
    pub fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn doubles_from_first_up_to_max() {
        let policy = Backoff::new(ms(100), ms(5_000));
        let waits: Vec<Duration> = (1..=8).map(|failures| policy.delay(failures)).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1_600, 3_200, 5_000, 5_000].map(ms));
        assert_eq!(policy.delay(0), ms(100));
        assert_eq!(policy.delay(u32::MAX), ms(5_000), "no overflow however long it fails");
    }

    #[test]
    fn retries_count_failures_until_reset() {
        let mut retries = Backoff::new(ms(100), ms(300)).retries();
        let waits: Vec<Duration> = (0..4).map(|_| retries.next_wait()).collect();
        assert_eq!(waits, [100, 200, 300, 300].map(ms));
        retries.reset();
        assert_eq!(retries.next_wait(), ms(100));
    }
}
