//! Retries with exponential backoff and jitter, for errors the caller says are worth it.
//!
//! Delays come from backon's `ExponentialBuilder` and the loop is backon's `Retryable`; this
//! module adds the two rules backon does not know: never exceed `max_delay` (backon's jitter can
//! add up to 100 % on top), and honour Twilio's `Retry-After` (backon's `adjust`).

use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use backon::{Backoff, BackoffBuilder, ExponentialBuilder, Retryable};

use super::error::TwilioError;

/// How often and how patiently one request is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in total, the first included. 1 disables retries.
    pub max_attempts: u32,
    /// Delay before the first retry (before jitter); doubles on each further retry.
    pub base_delay: Duration,
    /// No single wait is longer. A `Retry-After` above this ends the retries instead: the
    /// error (which carries `retry_after()`) goes back to the caller, which can requeue for
    /// that long without holding a worker.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// 4 attempts, 500 ms doubling, at most 30 s per wait: rides out a brief 429 burst or a
    /// Twilio blip within a few seconds (0.5 + 1 + 2 s, each up to twice that with jitter),
    /// while anything longer goes back to the controller's own requeue backoff.
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// The waits before attempts 2..=max_attempts: exponential from `base_delay`, each with
    /// up to +100 % random jitter (so concurrent clients do not retry in lockstep), capped at
    /// `max_delay`.
    pub fn backoff(&self) -> impl Backoff + use<> {
        let max = self.max_delay;
        ExponentialBuilder::new()
            .with_min_delay(self.base_delay.min(max))
            .with_max_delay(max)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1) as usize)
            .with_jitter()
            .build()
            .map(move |d| d.min(max))
    }

    /// The wait before the next attempt: the backoff delay, or longer if Twilio asked for
    /// longer. `None` means stop retrying, because Twilio asked for more than `max_delay`.
    pub fn delay_before_retry(
        &self,
        backoff: Duration,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        match retry_after {
            Some(wait) if wait > self.max_delay => None,
            Some(wait) => Some(backoff.max(wait)),
            None => Some(backoff),
        }
    }

    /// Runs `attempt` (given its 1-based number) until it succeeds, fails with an error for
    /// which `should_retry` is false, or the attempts or the patience run out. The last error
    /// is returned as is.
    pub async fn run<T, F, Fut>(
        &self,
        should_retry: impl Fn(&TwilioError) -> bool,
        mut attempt: F,
    ) -> Result<T, TwilioError>
    where
        F: FnMut(u32) -> Fut,
        Fut: Future<Output = Result<T, TwilioError>>,
    {
        // The number of the attempt under way, for `attempt` and the warning after it fails
        // (atomic only because the future must be `Send`: the closures share it).
        let number = AtomicU32::new(0);
        let next_attempt = || attempt(number.fetch_add(1, Ordering::Relaxed) + 1);
        next_attempt
            .retry(self.backoff())
            .sleep(tokio::time::sleep)
            .when(should_retry)
            .adjust(|err, backoff| {
                backoff.and_then(|backoff| self.delay_before_retry(backoff, err.retry_after()))
            })
            .notify(|err, delay| {
                tracing::warn!(
                    attempt = number.load(Ordering::Relaxed),
                    delay_ms = delay.as_millis() as u64,
                    error = %err,
                    "Twilio request failed, retrying"
                );
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    fn policy(max_attempts: u32, base_ms: u64, max_ms: u64) -> RetryPolicy {
        RetryPolicy {
            max_attempts,
            base_delay: Duration::from_millis(base_ms),
            max_delay: Duration::from_millis(max_ms),
        }
    }

    #[test]
    fn delays_grow_exponentially_with_bounded_jitter() {
        let p = policy(5, 100, 10_000);
        for _ in 0..200 {
            let delays: Vec<_> = p.backoff().collect();
            assert_eq!(delays.len(), 4, "one delay per retry");
            for (i, d) in delays.iter().enumerate() {
                let nominal = Duration::from_millis(100 << i);
                assert!(*d >= nominal && *d < nominal * 2, "retry {i}: {d:?}");
            }
        }
    }

    #[test]
    fn jitter_varies() {
        let p = RetryPolicy::default();
        let firsts: std::collections::HashSet<_> =
            (0..50).map(|_| p.backoff().next().unwrap()).collect();
        assert!(
            firsts.len() > 10,
            "only {} distinct first delays",
            firsts.len()
        );
    }

    #[test]
    fn delays_are_capped() {
        let p = policy(10, 1_000, 5_000);
        let delays: Vec<_> = p.backoff().collect();
        assert_eq!(delays.len(), 9);
        assert!(
            delays.iter().all(|d| *d <= Duration::from_secs(5)),
            "{delays:?}"
        );
        assert_eq!(
            delays[8],
            Duration::from_secs(5),
            "late delays sit at the cap"
        );
    }

    #[test]
    fn retry_after_is_respected_or_ends_retries() {
        let p = policy(4, 500, 30_000);
        let backoff = Duration::from_millis(700);
        assert_eq!(p.delay_before_retry(backoff, None), Some(backoff));
        assert_eq!(
            p.delay_before_retry(backoff, Some(Duration::from_secs(3))),
            Some(Duration::from_secs(3)),
            "waits at least Retry-After"
        );
        assert_eq!(
            p.delay_before_retry(Duration::from_secs(2), Some(Duration::from_secs(1))),
            Some(Duration::from_secs(2)),
            "never less than the backoff"
        );
        assert_eq!(
            p.delay_before_retry(backoff, Some(Duration::from_secs(120))),
            None,
            "a long Retry-After goes back to the caller"
        );
    }

    #[test]
    fn single_attempt_has_no_delays() {
        assert_eq!(RetryPolicy::never().backoff().count(), 0);
        assert_eq!(RetryPolicy::default().backoff().count(), 3);
    }

    fn unavailable(retry_after: Option<Duration>) -> TwilioError {
        TwilioError::from_response(
            503,
            r#"{"code":20503,"message":"Service unavailable"}"#,
            retry_after,
        )
    }

    #[tokio::test(start_paused = true)]
    async fn run_retries_until_success() {
        let calls = AtomicU32::new(0);
        let start = tokio::time::Instant::now();
        let out = policy(4, 100, 1_000)
            .run(TwilioError::is_retryable, |n| {
                calls.fetch_add(1, Ordering::SeqCst);
                async move { if n < 3 { Err(unavailable(None)) } else { Ok(n) } }
            })
            .await;
        assert_eq!(out.unwrap(), 3);
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(600),
            "100 ms + 200 ms, each at most doubled: {waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn run_stops_on_terminal_errors_and_after_max_attempts() {
        let calls = AtomicU32::new(0);
        let err = policy(4, 100, 1_000)
            .run(TwilioError::is_retryable, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async {
                    Err::<(), _>(TwilioError::from_response(
                        400,
                        r#"{"code":63110,"message":"already registered"}"#,
                        None,
                    ))
                }
            })
            .await
            .unwrap_err();
        assert_eq!(err.twilio_code(), Some(63110));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let calls = AtomicU32::new(0);
        let err = policy(3, 100, 1_000)
            .run(TwilioError::is_retryable, |_| {
                calls.fetch_add(1, Ordering::SeqCst);
                async { Err::<(), _>(unavailable(None)) }
            })
            .await
            .unwrap_err();
        assert_eq!(err.http_status(), Some(503));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn run_waits_for_retry_after() {
        let start = tokio::time::Instant::now();
        let out = policy(2, 10, 30_000)
            .run(TwilioError::is_retryable, |n| async move {
                if n == 1 {
                    Err(unavailable(Some(Duration::from_secs(4))))
                } else {
                    Ok(())
                }
            })
            .await;
        assert!(out.is_ok());
        assert!(start.elapsed() >= Duration::from_secs(4));

        // Longer than max_delay: handed back at once, Retry-After intact.
        let start = tokio::time::Instant::now();
        let err = policy(4, 10, 5_000)
            .run(TwilioError::is_retryable, |_| async {
                Err::<(), _>(unavailable(Some(Duration::from_secs(60))))
            })
            .await
            .unwrap_err();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(60)));
    }
}
