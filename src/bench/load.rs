//! A closed-loop load generator: a fixed number of callers, each sending its next request as
//! soon as the last one is answered, spread over several connections, for a warm-up and then a
//! measured interval. Latencies go into an HDR histogram (microseconds, 3 significant digits).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use tonic::transport::Channel;

/// How long to run before measuring, and how long to measure.
#[derive(Debug, Clone, Copy)]
pub struct Phases {
    pub warmup: Duration,
    pub measure: Duration,
}

/// One measured run.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    pub concurrency: usize,
    pub channels: usize,
    /// Calls started after the warm-up and answered within the measured interval.
    pub calls: u64,
    pub errors: u64,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// The first failure, to say what went wrong when `errors` is not zero.
    pub first_error: Option<String>,
}

impl Measured {
    pub fn per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.calls as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// Runs `concurrency` callers over `channels` (round robin) for `phases`. `call` gets a
/// connection and the request's number (unique across callers) and says whether the answer
/// was right.
pub async fn closed_loop<F, Fut>(
    channels: &[Channel],
    concurrency: usize,
    phases: Phases,
    call: F,
) -> Measured
where
    F: Fn(Channel, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let call = Arc::new(call);
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let measure_from = start + phases.warmup;
    let end = measure_from + phases.measure;
    let mut callers = Vec::with_capacity(concurrency);
    for caller in 0..concurrency.max(1) {
        let channel = channels[caller % channels.len().max(1)].clone();
        let call = Arc::clone(&call);
        let next = Arc::clone(&next);
        callers.push(tokio::spawn(async move {
            let mut tally = Tally::new();
            loop {
                let sent = Instant::now();
                if sent >= end {
                    break;
                }
                let n = next.fetch_add(1, Ordering::Relaxed);
                let answer = call(channel.clone(), n).await;
                let answered = Instant::now();
                if sent >= measure_from && answered <= end {
                    tally.add(answered - sent, answer);
                }
            }
            tally
        }));
    }
    let mut total = Tally::new();
    for caller in callers {
        if let Ok(tally) = caller.await {
            total.merge(tally);
        }
    }
    Measured {
        concurrency,
        channels: channels.len(),
        calls: total.calls,
        errors: total.errors,
        seconds: phases.measure.as_secs_f64(),
        p50_ms: total.latency.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: total.latency.value_at_quantile(0.99) as f64 / 1000.0,
        first_error: total.first_error,
    }
}

/// Connections for a concurrency: about eight callers per connection, at most eight.
pub fn channels_for(concurrency: usize) -> usize {
    concurrency.div_ceil(8).clamp(1, 8)
}

/// One caller's results.
struct Tally {
    calls: u64,
    errors: u64,
    latency: Histogram<u64>,
    first_error: Option<String>,
}

impl Tally {
    fn new() -> Self {
        Self {
            calls: 0,
            errors: 0,
            latency: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("1 µs to 10 minutes at 3 digits is a valid histogram"),
            first_error: None,
        }
    }

    fn add(&mut self, latency: Duration, answer: Result<(), String>) {
        self.calls += 1;
        let micros = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency.saturating_record(micros.max(1));
        if let Err(e) = answer {
            self.errors += 1;
            self.first_error.get_or_insert(e);
        }
    }

    fn merge(&mut self, other: Tally) {
        self.calls += other.calls;
        self.errors += other.errors;
        let _ = self.latency.add(&other.latency);
        if self.first_error.is_none() {
            self.first_error = other.first_error;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_few_connections_for_many_callers() {
        assert_eq!(channels_for(1), 1);
        assert_eq!(channels_for(16), 2);
        assert_eq!(channels_for(64), 8);
        assert_eq!(channels_for(1000), 8);
    }

    #[test]
    fn tallies_merge() {
        let mut a = Tally::new();
        a.add(Duration::from_micros(100), Ok(()));
        let mut b = Tally::new();
        b.add(Duration::from_micros(300), Err("wrong".into()));
        a.merge(b);
        assert_eq!((a.calls, a.errors), (2, 1));
        assert_eq!(a.first_error.as_deref(), Some("wrong"));
        assert!(a.latency.value_at_quantile(0.99) >= 299);
    }
}
