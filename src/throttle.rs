//! Fair shares under pressure: a per-organisation call rate (so that one employer's runaway
//! script cannot starve the others, or fish through the registry at machine speed), and a
//! sampler that keeps a flood of like refusals from becoming a flood of audit entries (a load
//! balancer's TCP probes fail the TLS handshake every few seconds, forever).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Like refusals (one organisation over its rate, one address failing its handshakes or over
/// its connection limit) get one audit entry per this interval, which counts the ones folded
/// into it.
pub const REFUSALS_FOLDED_FOR: Duration = Duration::from_secs(60);

/// Keys tracked at most; past it, idle keys are forgotten first.
const MAX_KEYS: usize = 100_000;

/// A token bucket per key: `rate` tokens a second, holding at most `burst`.
pub struct RateLimiter {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

struct Bucket {
    tokens: f64,
    updated: Instant,
}

impl RateLimiter {
    pub fn new(rate_per_second: u32, burst: u32) -> Self {
        Self {
            rate: f64::from(rate_per_second.max(1)),
            burst: f64::from(burst.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Takes one token from `key`'s bucket, or says how long until one is there.
    pub fn admit(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_KEYS && !buckets.contains_key(key) {
            // A bucket that has refilled holds nothing worth keeping.
            let full_after = Duration::from_secs_f64(self.burst / self.rate);
            buckets.retain(|_, b| now.saturating_duration_since(b.updated) < full_after);
        }
        let bucket = buckets.entry(key.to_string()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// Lets the first of a key's events in each window through to the audit log and counts the
/// rest, which the next entry let through reports; nothing is hidden, only folded.
pub struct AuditSampler {
    window: Duration,
    keys: Mutex<HashMap<String, Sampled>>,
}

struct Sampled {
    written: Instant,
    folded: u64,
}

impl AuditSampler {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            keys: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(folded)` when this event is to be written, with the number of events of the key
    /// folded since its last entry; `None` when it is folded into the next.
    pub fn sample(&self, key: &str, now: Instant) -> Option<u64> {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() >= MAX_KEYS && !keys.contains_key(key) {
            let window = self.window;
            keys.retain(|_, s| now.saturating_duration_since(s.written) < window);
            if keys.len() >= MAX_KEYS {
                // Still full of live keys: a flood from everywhere. Fold it under one key.
                return self.fold(&mut keys, "*", now);
            }
        }
        self.fold(&mut keys, key, now)
    }

    fn fold(&self, keys: &mut HashMap<String, Sampled>, key: &str, now: Instant) -> Option<u64> {
        match keys.get_mut(key) {
            Some(s) if now.saturating_duration_since(s.written) < self.window => {
                s.folded += 1;
                None
            }
            Some(s) => {
                let folded = s.folded;
                *s = Sampled {
                    written: now,
                    folded: 0,
                };
                Some(folded)
            }
            None => {
                keys.insert(
                    key.to_string(),
                    Sampled {
                        written: now,
                        folded: 0,
                    },
                );
                Some(0)
            }
        }
    }
}

/// Connections open at once per remote address, so that one address cannot take the places
/// the others need under the global limit.
pub struct AddressSlots {
    limit: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection's place under its address's limit, given back when dropped.
pub struct AddressSlot {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl AddressSlots {
    pub fn new(limit: usize) -> Self {
        Self {
            limit,
            open: Arc::default(),
        }
    }

    /// A place for one more connection from `ip`, or `None` when it already has `limit`.
    pub fn take(&self, ip: IpAddr) -> Option<AddressSlot> {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = open.entry(ip).or_insert(0);
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            ip,
            open: Arc::clone(&self.open),
        })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self
            .open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = open.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_its_rate() {
        let limiter = RateLimiter::new(10, 3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.admit("a", t0).is_ok());
        }
        let wait = limiter.admit("a", t0).expect_err("the burst is spent");
        assert!(wait <= Duration::from_millis(100) && wait > Duration::ZERO);
        assert!(
            limiter.admit("b", t0).is_ok(),
            "another key has its own bucket"
        );
        assert!(limiter.admit("a", t0 + Duration::from_millis(100)).is_ok());
        assert!(limiter.admit("a", t0 + Duration::from_millis(100)).is_err());
        // A long pause refills only up to the burst.
        let later = t0 + Duration::from_secs(60);
        assert_eq!(
            (0..10)
                .filter(|_| limiter.admit("a", later).is_ok())
                .count(),
            3
        );
    }

    #[test]
    fn the_sampler_writes_one_entry_per_window_and_reports_the_folded() {
        let sampler = AuditSampler::new(Duration::from_secs(60));
        let t0 = Instant::now();
        assert_eq!(sampler.sample("10.0.0.1", t0), Some(0));
        for s in 1..=5 {
            assert_eq!(
                sampler.sample("10.0.0.1", t0 + Duration::from_secs(s)),
                None
            );
        }
        assert_eq!(sampler.sample("10.0.0.2", t0), Some(0));
        assert_eq!(
            sampler.sample("10.0.0.1", t0 + Duration::from_secs(61)),
            Some(5)
        );
        assert_eq!(
            sampler.sample("10.0.0.1", t0 + Duration::from_secs(62)),
            None
        );
    }

    #[test]
    fn an_address_holds_at_most_its_limit_until_it_lets_go() {
        let slots = AddressSlots::new(2);
        let (a, b): (IpAddr, IpAddr) = ("10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap());
        let first = slots.take(a).expect("first");
        let _second = slots.take(a).expect("second");
        assert!(slots.take(a).is_none(), "the third from one address waits");
        assert!(
            slots.take(b).is_some(),
            "another address has its own places"
        );
        drop(first);
        assert!(
            slots.take(a).is_some(),
            "a closed connection gives its place back"
        );
    }

    #[test]
    fn a_flood_from_everywhere_is_folded_under_one_key() {
        let sampler = AuditSampler::new(Duration::from_secs(60));
        let t0 = Instant::now();
        for i in 0..MAX_KEYS {
            assert_eq!(sampler.sample(&i.to_string(), t0), Some(0));
        }
        assert_eq!(
            sampler.sample("new", t0),
            Some(0),
            "the first overflow is written"
        );
        assert_eq!(sampler.sample("newer", t0), None, "the rest are folded");
    }
}
