//! Live progress while a run goes: a bar when stdout is a terminal, a plain line every few
//! seconds when it is piped (so logs stay readable).

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::time::Instant;

/// Counters the tasks bump as they go (relaxed: they are only ever displayed).
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests sent, warm-up included.
    pub sent: AtomicU64,
    /// Requests completed, warm-up included.
    pub completed: AtomicU64,
    /// Of those, not successful.
    pub errors: AtomicU64,
}

/// Show progress until `stop` fires; the run lasts `total` from `start`.
pub async fn show(counters: Arc<Counters>, start: Instant, total: Duration, mut stop: oneshot::Receiver<()>) {
    let terminal = std::io::stdout().is_terminal();
    let bar = terminal.then(|| {
        let bar = ProgressBar::new(total.as_millis() as u64);
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {elapsed:>4} / {msg}") {
            bar.set_style(style);
        }
        bar
    });
    let period = if terminal { Duration::from_millis(250) } else { Duration::from_secs(5) };
    let mut tick = tokio::time::interval_at(start + period, period);
    let (mut last_completed, mut last_at) = (0, start);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = tick.tick() => {}
        }
        let now = Instant::now();
        let (sent, completed, errors) =
            (counters.sent.load(Relaxed), counters.completed.load(Relaxed), counters.errors.load(Relaxed));
        let rate = (completed - last_completed) as f64 / now.duration_since(last_at).as_secs_f64().max(1e-9);
        (last_completed, last_at) = (completed, now);
        let elapsed = now.saturating_duration_since(start);
        match &bar {
            Some(bar) => {
                bar.set_position(elapsed.as_millis().min(total.as_millis()) as u64);
                bar.set_message(format!(
                    "{:.0}s  sent {sent}  done {completed}  errors {errors}  {rate:.0} req/s",
                    total.as_secs_f64()
                ));
            }
            None => println!(
                "[{:>6.1}s] sent {sent}  completed {completed}  errors {errors}  {rate:.0} req/s",
                elapsed.as_secs_f64()
            ),
        }
    }
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
}
