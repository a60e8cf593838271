/*!
How fast a token sends and how long a row waits before its next attempt.

Every token gets a `governor` limiter of one request per `RATE_MARGIN / rate`
seconds, no burst (`limiter`); each 429 halves the token's pace on top of that
(`SlowDown`) and every answer that gets through wins a twentieth of the rate back.
Between attempts a row waits `backoff`: exponential, capped and jittered, or the
server's `Retry-After` (capped at `MAX_RETRY_AFTER`).
*/

use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use crate::tr;

/// The longest a `Retry-After` is honoured before giving up waiting.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);

/// How rows are retried, and when the service counts as down.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RetryPolicy {
    /// Attempts per row, the first included.
    pub(crate) max_attempts: u32,
    pub(crate) base_delay: Duration,
    pub(crate) max_delay: Duration,
    /// Consecutive service-level failures on every token that stop the run.
    pub(crate) max_consecutive_failures: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_consecutive_failures: 20,
        }
    }
}

/// A token's pace below its rate after 429s: halved on each 429 (down to `MIN_SLOW_RATE`),
/// won back by a twentieth of the rate on each answer that got through.
#[derive(Debug)]
pub(super) struct SlowDown {
    /// The configured rate (requests per second).
    rate: f64,
    /// The share of `rate` in use now (1 when not slowed down).
    factor: f64,
    /// When the latest request was let go at the slower pace.
    last: Option<Instant>,
}

/// The slowest a token is taken down to by 429s.
const MIN_SLOW_RATE: f64 = 0.1;
/// The share of the rate an answer that got through wins back.
const WIN_BACK: f64 = 0.05;

impl SlowDown {
    pub(super) fn new(rate: f64) -> Self {
        Self {
            rate,
            factor: 1.0,
            last: None,
        }
    }

    /// A 429: half the pace. Returns the new rate.
    pub(super) fn halve(&mut self) -> f64 {
        let floor = (MIN_SLOW_RATE / self.rate).min(1.0);
        self.factor = (self.factor / 2.0).max(floor);
        self.rate * self.factor
    }

    /// An answer that got through: a little of the pace back.
    pub(super) fn win_back(&mut self) {
        self.factor = (self.factor + WIN_BACK).min(1.0);
    }

    /// When the next request may leave at the slower pace (`None`: at once, not slowed
    /// down), that moment reserved for it.
    pub(super) fn reserve(&mut self, now: Instant) -> Option<Instant> {
        if self.factor >= 1.0 {
            return None;
        }
        let gap = Duration::from_secs_f64(RATE_MARGIN / (self.rate * self.factor));
        let at = self.last.map_or(now, |last| (last + gap).max(now));
        self.last = Some(at);
        Some(at)
    }
}

/// How much wider than `1 / rate` requests are spaced.
///
/// `--rate N` promises that no one-second window sees more than N requests. Evenly
/// spaced at exactly 1/N s, request N+1 would leave exactly 1 s after the first, and a
/// closed window [t, t + 1 s] (or a request that reaches the server a little later than
/// the next one, say because it opened the connection) would count N+1. Spaced 1% wider,
/// any N+1 requests span at least 1.01 s: a 10 ms margin whatever the rate, for 1% of
/// throughput (a 100-row run at --rate 5 takes 20.0 s instead of 19.8 s).
const RATE_MARGIN: f64 = 1.01;

/// One request per period, no burst; `None` when the rate is too high to express.
fn quota(rate: f64) -> Option<Quota> {
    let period = Duration::from_secs_f64(RATE_MARGIN / rate);
    Quota::with_period(period).map(|q| q.allow_burst(std::num::NonZeroU32::MIN))
}

pub(super) fn limiter(rate: f64) -> Option<DefaultDirectRateLimiter> {
    quota(rate).map(RateLimiter::direct)
}

/// The wait before attempt `attempt + 1`: exponential, capped, with jitter
/// (between half and all of the step) so that workers do not retry in lockstep.
pub(super) fn backoff(
    retry: &RetryPolicy,
    attempt: u32,
    retry_after: Option<Duration>,
) -> Duration {
    if let Some(after) = retry_after {
        if after > MAX_RETRY_AFTER {
            tracing::warn!(
                "{}",
                tr!(
                    "dispatch-retry-after-capped",
                    asked = crate::text::human_duration(after),
                    most = crate::text::human_duration(MAX_RETRY_AFTER)
                )
            );
        }
        return after.min(MAX_RETRY_AFTER);
    }
    let step = retry
        .base_delay
        .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
        .min(retry.max_delay);
    let half = step / 2;
    half + half.mul_f64(fastrand::f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let retry = RetryPolicy {
            max_attempts: 5,
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            max_consecutive_failures: 20,
        };
        for _ in 0..100 {
            let first = backoff(&retry, 1, None);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let second = backoff(&retry, 2, None);
            assert!(second >= Duration::from_millis(100) && second <= Duration::from_millis(200));
            let capped = backoff(&retry, 30, None);
            assert!(capped >= Duration::from_millis(150) && capped <= Duration::from_millis(300));
        }
        assert_eq!(
            backoff(&retry, 1, Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(
            backoff(&retry, 1, Some(Duration::from_secs(86_400))),
            MAX_RETRY_AFTER
        );
    }

    #[test]
    fn a_429_halves_the_pace_and_answers_win_it_back_slowly() {
        let mut slow = SlowDown::new(10.0);
        let t0 = Instant::now();
        assert_eq!(slow.reserve(t0), None, "not slowed down: the limiter alone");
        assert_eq!(slow.halve(), 5.0);
        assert_eq!(slow.halve(), 2.5);
        // At 2.5/s, requests leave 0.404 s apart (with the 1% margin).
        assert_eq!(slow.reserve(t0), Some(t0));
        let second = slow.reserve(t0).unwrap();
        assert_eq!(second - t0, Duration::from_secs_f64(RATE_MARGIN / 2.5));
        for _ in 0..100 {
            slow.halve();
        }
        assert!(
            (slow.rate * slow.factor - MIN_SLOW_RATE).abs() < 1e-9,
            "a floor"
        );
        // From the floor back to the full rate takes twenty answers.
        for _ in 0..19 {
            slow.win_back();
        }
        assert!(slow.factor < 1.0);
        slow.win_back();
        assert_eq!(slow.reserve(t0), None);
    }

    #[test]
    fn limiter_handles_extreme_rates() {
        assert!(limiter(10.0).is_some());
        assert!(limiter(0.5).is_some());
        assert!(limiter(1e12).is_none());
    }

    #[test]
    fn no_one_second_window_sees_more_than_rate_requests() {
        use governor::clock::FakeRelativeClock;
        for rate in [1.0, 5.0, 7.0, 50.0] {
            let clock = FakeRelativeClock::default();
            let limiter = RateLimiter::direct_with_clock(quota(rate).unwrap(), clock.clone());
            // Take every request as early as the limiter allows, in 0.1 ms steps.
            let mut sent = Vec::new();
            let step = Duration::from_micros(100);
            let mut now = Duration::ZERO;
            while now < Duration::from_secs(5) {
                if limiter.check().is_ok() {
                    sent.push(now);
                } else {
                    clock.advance(step);
                    now += step;
                }
            }
            // Every closed window [t, t + 1 s] starting at a request.
            for (i, start) in sent.iter().enumerate() {
                let in_window = sent[i..]
                    .iter()
                    .take_while(|&&t| t <= *start + Duration::from_secs(1))
                    .count();
                assert!(
                    in_window <= rate as usize,
                    "rate {rate}: {in_window} in a window"
                );
            }
            // And it still sends at (nearly) the rate: 1% below it.
            let expected = (5.0 * rate / RATE_MARGIN) as usize;
            assert!(sent.len() >= expected, "rate {rate}: {} sent", sent.len());
        }
    }
}
