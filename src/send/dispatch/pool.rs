/*!
The pool's shared state: the queue of rows, each token's limiter, pace, retirement
and run of failures, why the run stops, the run of identical refusals that stops it
(`max_failures`), and the wait for the contact window.

A reason is set before the stop is cancelled (`Shared::stop_with`), so a cancellation
without one came from outside: Ctrl-C or SIGTERM. Every outcome goes through
`Shared::record`, which counts it for the progress bar and for the refusals, and wakes
idle workers.
*/

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::DefaultDirectRateLimiter;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::pace::{RetryPolicy, SlowDown};
use super::{Hours, StopReason};
use crate::journal::Recorder;
use crate::outcome::{Outcome, Status};
use crate::progress::{Progress, Tally};
use crate::send::api::Client;
use crate::send::token::Token;
use crate::send::window::{GateState, show};
use crate::tr;
use crate::validate::Job;
use crate::wolkvox::TokenProblem;

/// While waiting for the contact window, the clock is read again at least this often
/// (a suspended laptop or a corrected clock must not make the wait overshoot).
const MAX_WINDOW_NAP: Duration = Duration::from_secs(60);

pub(super) struct TokenState {
    pub(super) token: Token,
    /// `None` when the rate is too high to express (no pacing needed).
    pub(super) limiter: Option<DefaultDirectRateLimiter>,
    /// Slower than the limiter after 429s.
    pub(super) slow: Mutex<SlowDown>,
    pub(super) retired: Mutex<Option<TokenProblem>>,
    /// Consecutive attempts that failed for service reasons (not row-specific refusals).
    pub(super) failures: AtomicU32,
}

impl TokenState {
    pub(super) fn retired(&self) -> Option<TokenProblem> {
        *self.retired.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn slow(&self) -> std::sync::MutexGuard<'_, SlowDown> {
        self.slow.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

pub(super) struct Shared {
    pub(super) queue: Mutex<VecDeque<Job>>,
    /// Workers in the pool: tokens x requests in flight per token.
    pub(super) workers: usize,
    /// Workers that have taken their first row: until all have, a row taken ahead
    /// would be one an idle worker could send at once.
    pub(super) started: AtomicUsize,
    pub(super) tokens: Vec<TokenState>,
    pub(super) client: Client,
    pub(super) recorder: Arc<Recorder>,
    pub(super) retry: RetryPolicy,
    pub(super) progress: Progress,
    /// Cancelled when the run must stop starting requests.
    pub(super) stop: CancellationToken,
    pub(super) reason: Mutex<Option<StopReason>>,
    /// Rows without a final outcome yet (queued or in flight).
    pub(super) unfinished: AtomicUsize,
    /// Wakes idle workers when a row is requeued or finished.
    pub(super) changed: Notify,
    pub(super) hours: Option<Arc<Hours>>,
    /// The opening being waited for, so it is announced once, not once per worker.
    pub(super) waiting_for: Mutex<Option<jiff::Timestamp>>,
    pub(super) max_failures: u32,
    /// The latest outcomes' run of `failed` rows with one answer.
    pub(super) refusals: Mutex<Refusals>,
}

/// Consecutive `failed` outcomes (in the order they arrive) with the same `code` and
/// `msg`. A `sent` row ends the run of refusals; other statuses leave it alone.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    answer: Option<(String, String)>,
    rows: u32,
}

impl Refusals {
    /// Counts `outcome`; returns the run's length when it is one more refusal.
    fn count(&mut self, outcome: &Outcome) -> Option<u32> {
        match outcome.status {
            Status::Sent => {
                *self = Refusals::default();
                None
            }
            Status::Failed => {
                let answer = (outcome.code.clone(), outcome.msg.clone());
                if self.answer.as_ref() == Some(&answer) {
                    self.rows = self.rows.saturating_add(1);
                } else {
                    *self = Refusals {
                        answer: Some(answer),
                        rows: 1,
                    };
                }
                Some(self.rows)
            }
            _ => None,
        }
    }
}

impl Shared {
    pub(super) fn stop_with(&self, reason: StopReason) {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            // A setting to fix is said once, by the summary (also with `--quiet`).
            if !matches!(reason, StopReason::Setting { .. }) {
                tracing::warn!("{}", tr!("dispatch-stopping", reason = reason.to_string()));
            }
            *slot = Some(reason);
        }
        self.stop.cancel();
    }

    /// The results file or journal could not be written: the run stops.
    pub(super) fn record_failed(&self, e: &dyn std::fmt::Display) {
        self.stop_with(StopReason::RecordFailed {
            message: e.to_string(),
        });
    }

    /// Waits for `wait` unless the run stops first; false when it stopped.
    pub(super) async fn unless_stopped(&self, wait: impl Future<Output = ()>) -> bool {
        tokio::select! {
            biased;
            () = self.stop.cancelled() => false,
            () = wait => true,
        }
    }

    /// Why the run is stopping. The dispatcher sets a reason before it cancels, so a
    /// cancellation without one came from outside: Ctrl-C or SIGTERM.
    pub(super) fn reason(&self) -> Option<StopReason> {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() && self.stop.is_cancelled() {
            *slot = Some(StopReason::Interrupted);
        }
        slot.clone()
    }

    /// Contact hours are set and their window is closed now.
    pub(super) fn window_closed(&self) -> bool {
        self.hours
            .as_ref()
            .is_some_and(|h| matches!(h.gate.check(), GateState::Closed { .. }))
    }

    pub(super) fn pop(&self) -> Option<Job> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    pub(super) fn push_front(&self, job: Job) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_front(job);
        self.changed.notify_waiters();
    }

    pub(super) fn record(&self, outcome: Outcome, key: &str) {
        self.count_refusal(&outcome);
        let tally = match outcome.status {
            Status::Sent => Tally::Sent,
            Status::Failed => Tally::Failed,
            _ => Tally::Other,
        };
        if let Err(e) = self.recorder.record(outcome, Some(key)) {
            self.record_failed(&e);
        }
        self.progress.inc(tally);
        self.unfinished.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_waiters();
    }

    /// Stops the run when `max_failures` rows in a row were refused with one answer.
    fn count_refusal(&self, outcome: &Outcome) {
        if self.max_failures == 0 {
            return;
        }
        let rows = self
            .refusals
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .count(outcome);
        if rows.is_some_and(|rows| rows >= self.max_failures) {
            self.stop_with(StopReason::SameRefusal {
                rows: self.max_failures,
                code: outcome.code.clone(),
                error: outcome.error.clone(),
                msg: outcome.msg.clone(),
            });
        }
    }

    /// Tells the user, once per closing, that the run waits for the contact window.
    fn announce_wait(&self, opens: &jiff::ZonedDateTime) {
        let mut waiting = self
            .waiting_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if *waiting != Some(opens.timestamp()) {
            *waiting = Some(opens.timestamp());
            let when = show(opens);
            tracing::info!("{}", tr!("dispatch-waiting-window", when = when));
            self.progress
                .wait(tr!("progress-waiting-window", when = when));
        }
    }

    fn window_reopened(&self) {
        let mut waiting = self
            .waiting_for
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if waiting.take().is_some() {
            tracing::info!("{}", tr!("dispatch-window-open"));
            self.progress.resume(&tr!("progress-sending"));
        }
    }

    /// Stops the run when every token has failed too often in a row; says whether it did.
    pub(super) fn stop_if_down(&self) -> bool {
        let down = self.service_down();
        if down {
            self.stop_with(StopReason::ServiceDown {
                failures: self.retry.max_consecutive_failures,
            });
        }
        down
    }

    /// True when every token still in use has failed `max_consecutive_failures` times in a row.
    fn service_down(&self) -> bool {
        let limit = self.retry.max_consecutive_failures;
        let mut active = self
            .tokens
            .iter()
            .filter(|t| t.retired().is_none())
            .peekable();
        active.peek().is_some() && active.all(|t| t.failures.load(Ordering::Relaxed) >= limit)
    }
}

/// Sleeps until the contact window opens. False if the run stopped meanwhile (Ctrl-C,
/// another worker's stop, or a window that never opens).
pub(super) async fn wait_for_window(
    shared: &Shared,
    hours: &Hours,
    mut next_open: Option<jiff::ZonedDateTime>,
) -> bool {
    loop {
        let Some(opens) = next_open else {
            shared.stop_with(StopReason::WindowClosed { next_open: None });
            return false;
        };
        shared.announce_wait(&opens);
        let until = hours.gate.now().duration_until(opens.timestamp());
        let nap = Duration::try_from(until)
            .unwrap_or_default()
            .clamp(Duration::from_millis(10), MAX_WINDOW_NAP);
        if !shared.unless_stopped(tokio::time::sleep(nap)).await {
            return false;
        }
        match hours.gate.check() {
            GateState::Open => {
                shared.window_reopened();
                return true;
            }
            GateState::Closed { next_open: n } => next_open = n,
        }
    }
}
