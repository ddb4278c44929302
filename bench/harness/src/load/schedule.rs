//! When each open-loop request is due: a pure function of the rate, the number of
//! connections and the connection's index, so it can be tested without a clock.
//!
//! The offered rate is split evenly over the connections: each one sends every
//! `connections / rate` seconds, and connection `c` starts `c / rate` seconds after the run
//! starts, so together they send one request every `1 / rate` seconds, evenly spread rather
//! than in bursts of `connections`. This is wrk2's model.

use std::time::Duration;

/// One connection's intended send times, as offsets from the start of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    /// Seconds from the start of the run to this connection's first request.
    phase_s: f64,
    /// Seconds between two of this connection's requests.
    interval_s: f64,
}

impl Schedule {
    /// The schedule of connection `connection` (0-based) of `connections`, for `rate`
    /// requests per second over all of them. The caller checks that `rate` is finite and
    /// positive and `connections` at least 1.
    pub fn for_connection(rate: f64, connections: u32, connection: u32) -> Self {
        Self { phase_s: f64::from(connection) / rate, interval_s: f64::from(connections.max(1)) / rate }
    }

    /// Seconds between two requests of this connection.
    pub fn interval(&self) -> Duration {
        Duration::from_secs_f64(self.interval_s)
    }

    /// The intended send time of request `k` (0-based) of this connection, from the start.
    /// Computed from `k` rather than by adding intervals, so it never drifts.
    pub fn due(&self, k: u64) -> Duration {
        Duration::from_secs_f64(self.phase_s + k as f64 * self.interval_s)
    }

    /// How many requests with index `k >= from_k` are due in `[from, to)`: what a run that
    /// stops before sending request `from_k` leaves unsent in that window.
    pub fn count_due(&self, from_k: u64, from: Duration, to: Duration) -> u64 {
        let first_at_or_after = |t: Duration| -> u64 {
            let x = (t.as_secs_f64() - self.phase_s) / self.interval_s;
            if x <= 0.0 {
                return 0;
            }
            // `due` is the authority: step the float estimate onto the exact boundary.
            let mut k = x.ceil() as u64;
            while k > 0 && self.due(k - 1) >= t {
                k -= 1;
            }
            while self.due(k) < t {
                k += 1;
            }
            k
        };
        let lo = first_at_or_after(from).max(from_k);
        let hi = first_at_or_after(to);
        hi.saturating_sub(lo)
    }
}

/// When a request due at `due` actually goes out on a connection that is free from
/// `free_at` on: at once if the connection is already free, otherwise as soon as it is.
/// Its latency is still measured from `due` (the coordinated-omission correction).
pub fn send_at(due: Duration, free_at: Duration) -> Duration {
    due.max(free_at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    #[test]
    fn intended_times_follow_the_per_connection_interval() {
        // 100 req/s over 4 connections: each sends every 40 ms.
        let s = Schedule::for_connection(100.0, 4, 0);
        assert_eq!(s.interval(), ms(40));
        assert_eq!(s.due(0), ms(0));
        assert_eq!(s.due(1), ms(40));
        assert_eq!(s.due(25), ms(1000));
        // No drift after many requests.
        assert_eq!(s.due(250_000).as_millis(), 10_000_000);
    }

    #[test]
    fn phases_spread_connections_evenly_and_rates_add_up() {
        let (rate, conns) = (1000.0, 8);
        let mut all: Vec<Duration> =
            (0..conns).flat_map(|c| (0..50).map(move |k| Schedule::for_connection(rate, conns, c).due(k))).collect();
        all.sort();
        // Together the connections send exactly one request per millisecond, evenly.
        for (i, t) in all.iter().enumerate() {
            assert!((t.as_secs_f64() - i as f64 / rate).abs() < 1e-9, "request {i} at {t:?}");
        }
        assert_eq!(Schedule::for_connection(rate, conns, 3).due(0), ms(3));
    }

    #[test]
    fn count_due_matches_brute_force() {
        let s = Schedule::for_connection(300.0, 7, 5);
        for (from_k, from, to) in [(0, 0, 1000), (10, 100, 900), (0, 500, 500), (1000, 0, 1000), (3, 0, 70)] {
            let brute = (from_k..10_000).filter(|&k| s.due(k) >= ms(from) && s.due(k) < ms(to)).count() as u64;
            assert_eq!(s.count_due(from_k, ms(from), ms(to)), brute, "{from_k} {from} {to}");
        }
    }

    /// One connection at 100 req/s against a server that answers in 1 ms, except that it
    /// holds every request that arrives during [1 s, 1 s + stall) until the stall ends.
    fn replay(stall: Duration) -> Vec<(Duration, Duration, Duration)> {
        let s = Schedule::for_connection(100.0, 1, 0);
        let (stall_from, stall_to) = (ms(1000), ms(1000) + stall);
        let mut free_at = Duration::ZERO;
        (0..300)
            .map(|k| {
                let due = s.due(k);
                let sent = send_at(due, free_at);
                let starts = if sent >= stall_from && sent < stall_to { stall_to } else { sent };
                let done = starts + ms(1);
                free_at = done;
                (due, done - due, done - sent)
            })
            .collect()
    }

    #[test]
    fn a_stall_shows_in_corrected_latency_but_not_in_service_time() {
        let stall = ms(1000);
        let samples = replay(stall);
        let max_latency = samples.iter().map(|s| s.1).max().unwrap_or_default();
        // The request that hit the stall and those queued behind it: latency up to ~S.
        assert!(max_latency >= ms(990) && max_latency <= ms(1002), "{max_latency:?}");
        // Requests queued behind the stall each waited for it: about rate * S / 2 of them
        // waited more than S / 2 (a closed-loop measurement would show one slow request).
        let slow = samples.iter().filter(|s| s.1 > stall / 2).count();
        assert!((50..=60).contains(&slow), "{slow}");
        let slow_service = samples.iter().filter(|s| s.2 > stall / 2).count();
        assert_eq!(slow_service, 1, "only the request that met the stall was slow to serve");
        // Latencies fall as the connection catches up with its schedule after the stall.
        let after: Vec<_> = samples.iter().filter(|s| s.0 >= ms(1010) && s.0 < ms(2000)).map(|s| s.1).collect();
        assert!(after.windows(2).all(|w| w[0] >= w[1]), "{after:?}");
        // Without a stall, latency is the service time.
        assert!(replay(Duration::ZERO).iter().all(|s| s.1 == ms(1)));
    }
}
