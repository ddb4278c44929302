//! What one fault point does when a call reaches it: [`Fault`], one optional setting of each
//! kind, and the bounds every setting is checked against before it is stored.

use super::codes;
use crate::{Error, ErrorKind};
use serde::{Deserialize, Serialize};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Highest `latency_ms + jitter_ms` a point accepts: one minute.
pub const MAX_LATENCY_MS: u64 = 60_000;
/// Highest `cpu_ms` a point accepts per call.
pub const MAX_CPU_MS: u64 = 10_000;
/// Highest `leak_bytes` a point accepts per call: 256 MiB.
pub const MAX_LEAK_BYTES: u64 = 256 * 1024 * 1024;

/// The setting of one point: any combination of the kinds, each absent when not set
/// (the body of `PUT /admin/faults/{point}`, and how `GET /admin/faults` shows a point).
///
/// A call reaching the point meets the kinds in this order, as a sick handler would: it
/// leaks, burns CPU, waits, and then either the process aborts or the call fails (503) or
/// goes on. A point holds one setting of each kind: setting a point replaces all of them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// Retain this many bytes per call, written so they are resident, until the process
    /// ends (0..=256 MiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub leak_bytes: Option<u64>,
    /// Burn this much CPU time per call, on the thread serving it (0..=10000 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ms: Option<u64>,
    /// Hold every call this long before it goes on (ms; with `jitter_ms`, at most 60000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Add a uniformly random 0..=`jitter_ms` to each call's latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u64>,
    /// Abort the process (SIGABRT) at the first call: a crash mid-request.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub abort: bool,
    /// Fail this share of calls (0..=1) with 503 `dependency_unavailable`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fail_share: Option<f64>,
}

impl Fault {
    /// Fail every call: what a name in `ARCHLAB_FAULTS` sets, and the fault points' old
    /// on/off meaning.
    pub fn fail_always() -> Self {
        Self { fail_share: Some(1.0), ..Self::default() }
    }

    /// This setting, or 422 `invalid_fault` saying which value is out of bounds.
    pub fn validated(self) -> Result<Self, Error> {
        let invalid = |message: String| Error::new(ErrorKind::Unprocessable, codes::INVALID_FAULT, message);
        if self == Self::default() {
            return Err(invalid(
                "set at least one of leak_bytes, cpu_ms, latency_ms, jitter_ms, abort, fail_share \
                 (DELETE clears a point)"
                    .into(),
            ));
        }
        if let Some(share) = self.fail_share
            && !(0.0..=1.0).contains(&share)
        {
            return Err(invalid(format!("fail_share must be a number within [0, 1], not {share}")));
        }
        let (latency, jitter) = (self.latency_ms.unwrap_or(0), self.jitter_ms.unwrap_or(0));
        if latency.saturating_add(jitter) > MAX_LATENCY_MS {
            return Err(invalid(format!("latency_ms + jitter_ms must be at most {MAX_LATENCY_MS}")));
        }
        if self.cpu_ms.unwrap_or(0) > MAX_CPU_MS {
            return Err(invalid(format!("cpu_ms must be at most {MAX_CPU_MS}")));
        }
        if self.leak_bytes.unwrap_or(0) > MAX_LEAK_BYTES {
            return Err(invalid(format!("leak_bytes must be at most {MAX_LEAK_BYTES}")));
        }
        Ok(self)
    }

    /// The delay one call waits: `latency_ms` plus its share of jitter.
    pub fn delay(&self) -> Duration {
        let jitter = match self.jitter_ms {
            Some(j) if j > 0 => rand::random_range(0..=j),
            _ => 0,
        };
        Duration::from_millis(self.latency_ms.unwrap_or(0) + jitter)
    }

    /// Whether this call fails, drawn with probability `fail_share`.
    pub fn fails(&self) -> bool {
        match self.fail_share {
            Some(share) if share >= 1.0 => true,
            Some(share) if share > 0.0 => rand::random_bool(share),
            _ => false,
        }
    }

    /// What a call reaching `point` meets, in the order the type's doc gives.
    pub(super) async fn apply(&self, point: &str, leaks: &Leaks) -> Result<(), Error> {
        if let Some(bytes) = self.leak_bytes.filter(|b| *b > 0) {
            leaks.retain(bytes);
        }
        if let Some(ms) = self.cpu_ms.filter(|ms| *ms > 0) {
            burn_cpu(Duration::from_millis(ms));
        }
        let delay = self.delay();
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        if self.abort {
            tracing::error!(fault = point, "injected fault: aborting the process");
            std::process::abort();
        }
        if self.fails() {
            tracing::warn!(fault = point, "injected fault");
            return Err(Error::unavailable(point, "injected fault"));
        }
        Ok(())
    }
}

/// Memory the leak kind keeps, for as long as the process lives.
#[derive(Debug, Default)]
pub(super) struct Leaks {
    kept: Mutex<Vec<Box<[u8]>>>,
    bytes: AtomicU64,
}

impl Leaks {
    /// Keep `bytes` more, every page written so it counts as resident.
    fn retain(&self, bytes: u64) {
        // Not zeroes: a zeroed allocation may be mapped lazily and never become resident.
        let block = vec![0xA5_u8; bytes as usize].into_boxed_slice();
        self.kept.lock().unwrap_or_else(|e| e.into_inner()).push(block);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// How many bytes are kept.
    pub(super) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
}

/// Keep this thread busy until it has used `cpu` of CPU time (its own clock, so a thread
/// that waits for a core still burns the whole amount); wall-clock time where that clock
/// cannot be read. It blocks the runtime's worker on purpose, as a CPU-bound handler does.
fn burn_cpu(cpu: Duration) {
    use nix::time::{ClockId, clock_gettime};
    let thread_clock = || clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).ok().map(Duration::from);
    let wall = Instant::now();
    let start = thread_clock();
    let mut x = 1_u64;
    loop {
        for _ in 0..10_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        let used = match (start, thread_clock()) {
            (Some(start), Some(now)) => now.saturating_sub(start),
            _ => wall.elapsed(),
        };
        if used >= cpu {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(fault: Fault) -> String {
        fault.validated().expect_err(&format!("{fault:?} must be refused")).code.into_owned()
    }

    #[test]
    fn out_of_bounds_settings_are_refused_with_a_code() {
        for share in [1.000_001, -0.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(code(Fault { fail_share: Some(share), ..Fault::default() }), "invalid_fault", "{share}");
        }
        assert_eq!(code(Fault { latency_ms: Some(MAX_LATENCY_MS + 1), ..Fault::default() }), "invalid_fault");
        assert_eq!(
            code(Fault { latency_ms: Some(u64::MAX), jitter_ms: Some(u64::MAX), ..Fault::default() }),
            "invalid_fault"
        );
        assert_eq!(
            code(Fault { latency_ms: Some(MAX_LATENCY_MS), jitter_ms: Some(1), ..Fault::default() }),
            "invalid_fault"
        );
        assert_eq!(code(Fault { cpu_ms: Some(MAX_CPU_MS + 1), ..Fault::default() }), "invalid_fault");
        assert_eq!(code(Fault { leak_bytes: Some(MAX_LEAK_BYTES + 1), ..Fault::default() }), "invalid_fault");
        let empty = Fault::default().validated().expect_err("an empty setting sets nothing");
        assert_eq!(empty.kind, ErrorKind::Unprocessable);
        assert!(empty.message.contains("DELETE"), "{}", empty.message);
    }

    #[test]
    fn settings_at_their_bounds_are_accepted() {
        for fault in [
            Fault { fail_share: Some(0.0), ..Fault::default() },
            Fault { fail_share: Some(1.0), ..Fault::default() },
            Fault { latency_ms: Some(MAX_LATENCY_MS - 10), jitter_ms: Some(10), ..Fault::default() },
            Fault { cpu_ms: Some(MAX_CPU_MS), leak_bytes: Some(MAX_LEAK_BYTES), ..Fault::default() },
            Fault { abort: true, ..Fault::default() },
        ] {
            assert_eq!(fault.validated(), Ok(fault));
        }
    }

    #[test]
    fn shares_of_zero_and_one_are_never_and_always() {
        let never = Fault { fail_share: Some(0.0), ..Fault::default() };
        let always = Fault::fail_always();
        assert!((0..1_000).all(|_| !never.fails() && always.fails()));
        // Half: both outcomes show up in 1,000 draws (each missing has odds of 2^-1000).
        let half = Fault { fail_share: Some(0.5), ..Fault::default() };
        let failed = (0..1_000).filter(|_| half.fails()).count();
        assert!(failed > 0 && failed < 1_000, "{failed} of 1000 failed at a share of 0.5");
    }

    #[test]
    fn jitter_adds_between_zero_and_its_bound() {
        let fault = Fault { latency_ms: Some(100), jitter_ms: Some(50), ..Fault::default() };
        let delays: Vec<Duration> = (0..200).map(|_| fault.delay()).collect();
        assert!(delays.iter().all(|d| (100..=150).contains(&d.as_millis())), "{delays:?}");
        assert!(delays.iter().any(|d| *d != delays[0]), "200 draws of jitter were all {:?}", delays[0]);
        assert_eq!(Fault { latency_ms: Some(7), ..Fault::default() }.delay(), Duration::from_millis(7));
        assert_eq!(Fault::fail_always().delay(), Duration::ZERO);
    }

    #[test]
    fn the_body_is_read_strictly_and_written_back_the_same() {
        let fault: Fault = serde_json::from_str(r#"{"fail_share": 0.25, "latency_ms": 10, "abort": false}"#).unwrap();
        assert_eq!(fault, Fault { fail_share: Some(0.25), latency_ms: Some(10), ..Fault::default() });
        assert_eq!(serde_json::to_value(fault).unwrap(), serde_json::json!({"fail_share": 0.25, "latency_ms": 10}));
        let unknown = serde_json::from_str::<Fault>(r#"{"fail_rate": 1}"#).unwrap_err();
        assert!(unknown.to_string().contains("unknown field"), "{unknown}");
        assert!(serde_json::from_str::<Fault>(r#"{"cpu_ms": -1}"#).is_err(), "a negative duration was read");
    }

    #[test]
    fn cpu_burn_uses_at_least_the_cpu_time_asked_for() {
        use nix::time::{ClockId, clock_gettime};
        let now = || Duration::from(clock_gettime(ClockId::CLOCK_THREAD_CPUTIME_ID).expect("a thread CPU clock"));
        let before = now();
        burn_cpu(Duration::from_millis(50));
        let used = now() - before;
        assert!(used >= Duration::from_millis(50), "burned {used:?} of CPU for 50 ms asked");
    }

    #[test]
    fn leaks_are_kept_and_counted() {
        let leaks = Leaks::default();
        leaks.retain(1024);
        leaks.retain(4096);
        assert_eq!(leaks.bytes(), 5120);
        let kept = leaks.kept.lock().unwrap();
        assert_eq!(kept.iter().map(|b| b.len()).sum::<usize>(), 5120);
        assert!(kept.iter().all(|b| b.iter().all(|byte| *byte == 0xA5)), "the leaked pages were not written");
    }
}
