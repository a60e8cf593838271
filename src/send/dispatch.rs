/*!
Sends jobs: tokens, their limiters, the worker pool, retries and stopping.

Each token gets `max_in_flight` workers (at most 2, the API's limit), so a
token can never carry more requests at once, retries included: a worker keeps
its row through every attempt. Every attempt first waits on the token's
`governor` limiter, so the quota counts retries too. Rows come from one shared
queue, so several tokens share the list and a row refused because of its
token goes back to the front for the others.

A row is retried only when the answer proves it was not delivered (see
`api::Answer::Transient`); a request that may have been delivered is recorded
`unknown` and never sent again here.

The limit of 2 requests per token holds at the server, not only in this
process: a request that outlives `api.timeout` is recorded `unknown` at once,
but its worker keeps the token's slot, still listening for the answer, until
the server answers or the API's own limit of 60 s since the request started
has passed (then it is abandoned). A late answer is recorded as the row's
outcome (`sent` or `failed`), which only ever replaces that `unknown`. A
gateway's 502 or 504 is held the same way (the gateway gave up, the API may
still be working): the worker keeps the slot until 60 s after the request
left. When no row is left to send, nothing is waited for. A refusal for load
(403 "simultaneous requests", 429; see `api::Throttle`) waits for a slot or a
slower pace without spending the row's attempts, for up to `BUSY_PATIENCE`;
each 429 also halves its token's pace (`SlowDown`), and every answer that gets
through wins a twentieth of the rate back. The run stops early on a signal, when no
token is left, when the API does not exist at the configured URL, or when
every token has failed too many times in a row (the service is down), or when
the contact hours close; rows not attempted are then recorded `not_sent`.

Contact hours are checked before every attempt (not only every row), so a
retry never goes out after the window closed. Requests already in flight when
it closes finish normally. With `--wait-for-window` a worker keeps its row and
sleeps until the window opens (waking every minute to re-read the clock, and
at once on Ctrl-C) instead of stopping the run.
*/

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::journal::{Outcome, Recorder, Status, now};
use crate::progress::{Progress, Tally};
use crate::send::api::{
    Answer, Client, Reply, SettingProblem, Throttle, TokenProblem, from_gateway, throttle,
};
use crate::send::token::Token;
use crate::send::window::{Gate, GateState, show};
use crate::validate::Job;
use crate::{tr, tr_en};

/// The longest a `Retry-After` is honoured before giving up waiting.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(600);
/// The API's own limit for one call: after this long the server has given up on a
/// request, so a timed-out request's slot is free again.
pub(crate) const API_CALL_LIMIT: Duration = Duration::from_secs(60);
/// How long a row refused for load ("simultaneous requests", 429) waits for a slot or a
/// slower pace without spending its attempts: a slot held by any request frees within
/// the API's own limit.
const BUSY_PATIENCE: Duration = API_CALL_LIMIT;
/// While waiting for the contact window, the clock is read again at least this often
/// (a suspended laptop or a corrected clock must not make the wait overshoot).
const MAX_WINDOW_NAP: Duration = Duration::from_secs(60);

/// Why a run stopped before every row was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Every token was refused (invalid, missing) or spent today's quota.
    NoTokens { quota_spent: bool },
    /// The API answered that the endpoint does not exist: a configuration error.
    ApiNotFound { msg: String },
    /// The server answered with an HTTP redirect: the base URL or server id is wrong.
    Redirected { status: Option<u16>, msg: String },
    /// Every token failed this many times in a row.
    ServiceDown { failures: u32 },
    /// The results file or journal could not be written: sending on would lose outcomes.
    RecordFailed { message: String },
    /// Outside the contact hours (`campaign.hours`): at the start, or the window closed
    /// mid-run. `next_open` is `None` if it does not open again in the searched range.
    WindowClosed {
        next_open: Option<jiff::ZonedDateTime>,
    },
    /// A failure the same for every request (an untrusted certificate, a proxy that
    /// refuses, an unknown host): a setting to fix. `origin` is where requests go.
    Setting {
        problem: SettingProblem,
        origin: String,
        detail: String,
    },
    /// `max_failures` rows in a row were refused with the same answer: the campaign as a
    /// whole is wrong (connector, template, closed windows), not a few numbers.
    SameRefusal {
        rows: u32,
        code: String,
        error: String,
        msg: String,
    },
}

impl StopReason {
    /// What the `not_sent` rows say in their `msg`: English, like every `msg` of the
    /// results file (programs read it), whatever the language of the interface.
    pub(crate) fn not_sent_msg(&self) -> String {
        match self {
            StopReason::Interrupted => tr_en!("msg-interrupted"),
            StopReason::NoTokens { quota_spent: true } => tr_en!("msg-quota-spent"),
            StopReason::NoTokens { quota_spent: false } => tr_en!("msg-tokens-refused"),
            StopReason::ApiNotFound { .. } => tr_en!("msg-api-not-found"),
            StopReason::Redirected { .. } => tr_en!("msg-redirected"),
            StopReason::ServiceDown { .. } => tr_en!("msg-service-down"),
            StopReason::RecordFailed { .. } => tr_en!("msg-record-failed"),
            StopReason::WindowClosed {
                next_open: Some(at),
            } => tr_en!("msg-window-closed", opens = show(at)),
            StopReason::WindowClosed { next_open: None } => tr_en!("msg-window-never"),
            StopReason::SameRefusal { rows, .. } => tr_en!("msg-same-refusal", rows = *rows),
            StopReason::Setting { problem, .. } => problem.not_sent_msg(),
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Interrupted => f.write_str(&tr!("stop-interrupted")),
            StopReason::NoTokens { quota_spent: true } => f.write_str(&tr!("stop-quota-spent")),
            StopReason::NoTokens { quota_spent: false } => f.write_str(&tr!("stop-tokens-refused")),
            StopReason::ApiNotFound { msg } => {
                f.write_str(&tr!("stop-api-not-found", msg = format!("{msg:?}")))
            }
            StopReason::Redirected { status, msg } => f.write_str(&tr!(
                "stop-redirected",
                status = status.map(|s| s.to_string()).unwrap_or_default(),
                msg = msg
            )),
            StopReason::ServiceDown { failures } => {
                f.write_str(&tr!("stop-service-down", failures = *failures))
            }
            StopReason::RecordFailed { message } => {
                f.write_str(&tr!("stop-record-failed", message = message))
            }
            StopReason::WindowClosed {
                next_open: Some(at),
            } => f.write_str(&tr!("stop-window-closed", opens = show(at))),
            StopReason::WindowClosed { next_open: None } => f.write_str(&tr!("stop-window-never")),
            StopReason::Setting {
                problem,
                origin,
                detail,
            } => f.write_str(&problem.describe(origin, detail)),
            StopReason::SameRefusal {
                rows,
                code,
                error,
                msg,
            } => {
                let answer = [code.as_str(), error.as_str(), msg.as_str()]
                    .iter()
                    .filter(|part| !part.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                f.write_str(&tr!(
                    "stop-same-refusal",
                    rows = *rows,
                    answer = answer,
                    fix = crate::send::api::fix_for(msg)
                        .unwrap_or_else(|| tr!("stop-same-refusal-fix"))
                ))
            }
        }
    }
}

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

/// How the pool behaves.
#[derive(Debug, Clone)]
pub(crate) struct PoolSettings {
    /// Requests per second per token.
    pub(crate) rate: f64,
    /// Requests in flight per token (1 or 2).
    pub(crate) max_in_flight: usize,
    pub(crate) retry: RetryPolicy,
    /// Contact hours to keep to; `None` sends at any hour.
    pub(crate) hours: Option<Arc<Hours>>,
    /// Rows in a row refused with the same answer that stop the run; 0 never stops.
    pub(crate) max_failures: u32,
}

/// Contact hours as the pool uses them.
#[derive(Debug)]
pub(crate) struct Hours {
    pub(crate) gate: Gate,
    /// Wait for the window to open instead of stopping the run.
    pub(crate) wait: bool,
}

/// A token's pace below its rate after 429s: halved on each 429 (down to `MIN_SLOW_RATE`),
/// won back by a twentieth of the rate on each answer that got through.
#[derive(Debug)]
struct SlowDown {
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
    fn new(rate: f64) -> Self {
        Self {
            rate,
            factor: 1.0,
            last: None,
        }
    }

    /// A 429: half the pace. Returns the new rate.
    fn halve(&mut self) -> f64 {
        let floor = (MIN_SLOW_RATE / self.rate).min(1.0);
        self.factor = (self.factor / 2.0).max(floor);
        self.rate * self.factor
    }

    /// An answer that got through: a little of the pace back.
    fn win_back(&mut self) {
        self.factor = (self.factor + WIN_BACK).min(1.0);
    }

    /// When the next request may leave at the slower pace (`None`: at once, not slowed
    /// down), that moment reserved for it.
    fn reserve(&mut self, now: Instant) -> Option<Instant> {
        if self.factor >= 1.0 {
            return None;
        }
        let gap = Duration::from_secs_f64(RATE_MARGIN / (self.rate * self.factor));
        let at = self.last.map_or(now, |last| (last + gap).max(now));
        self.last = Some(at);
        Some(at)
    }
}

struct TokenState {
    token: Token,
    /// `None` when the rate is too high to express (no pacing needed).
    limiter: Option<DefaultDirectRateLimiter>,
    /// Slower than the limiter after 429s.
    slow: Mutex<SlowDown>,
    retired: Mutex<Option<TokenProblem>>,
    /// Consecutive attempts that failed for service reasons (not row-specific refusals).
    failures: AtomicU32,
}

impl TokenState {
    fn retired(&self) -> Option<TokenProblem> {
        *self.retired.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn slow(&self) -> std::sync::MutexGuard<'_, SlowDown> {
        self.slow.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

struct Shared {
    queue: Mutex<VecDeque<Job>>,
    /// Workers in the pool: tokens x requests in flight per token.
    workers: usize,
    /// Workers that have taken their first row: until all have, a row taken ahead
    /// would be one an idle worker could send at once.
    started: AtomicUsize,
    tokens: Vec<TokenState>,
    client: Client,
    recorder: Arc<Recorder>,
    retry: RetryPolicy,
    progress: Progress,
    /// Cancelled when the run must stop starting requests.
    stop: CancellationToken,
    reason: Mutex<Option<StopReason>>,
    /// Rows without a final outcome yet (queued or in flight).
    unfinished: AtomicUsize,
    /// Wakes idle workers when a row is requeued or finished.
    changed: Notify,
    hours: Option<Arc<Hours>>,
    /// The opening being waited for, so it is announced once, not once per worker.
    waiting_for: Mutex<Option<jiff::Timestamp>>,
    max_failures: u32,
    /// The latest outcomes' run of `failed` rows with one answer.
    refusals: Mutex<Refusals>,
}

/// Consecutive `failed` outcomes (in the order they arrive) with the same `code` and
/// `msg`. A `sent` row ends the run of refusals; other statuses leave it alone.
#[derive(Debug, Default)]
struct Refusals {
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
    fn stop_with(&self, reason: StopReason) {
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

    /// Why the run is stopping. The dispatcher sets a reason before it cancels, so a
    /// cancellation without one came from outside: Ctrl-C or SIGTERM.
    fn reason(&self) -> Option<StopReason> {
        let mut slot = self.reason.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() && self.stop.is_cancelled() {
            *slot = Some(StopReason::Interrupted);
        }
        slot.clone()
    }

    /// Contact hours are set and their window is closed now.
    fn window_closed(&self) -> bool {
        self.hours
            .as_ref()
            .is_some_and(|h| matches!(h.gate.check(), GateState::Closed { .. }))
    }

    fn pop(&self) -> Option<Job> {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop_front()
    }

    fn push_front(&self, job: Job) {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push_front(job);
        self.changed.notify_waiters();
    }

    fn record(&self, outcome: Outcome, key: &str) {
        self.count_refusal(&outcome);
        let tally = match outcome.status {
            Status::Sent => Tally::Sent,
            Status::Failed => Tally::Failed,
            _ => Tally::Other,
        };
        if let Err(e) = self.recorder.record(outcome, Some(key)) {
            self.stop_with(StopReason::RecordFailed {
                message: e.to_string(),
            });
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
    fn stop_if_down(&self) -> bool {
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

/// What a worker does after a row.
enum Flow {
    Next,
    /// The token cannot be used: the row goes back for another token.
    Requeue(Box<Job>),
    Stop,
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

fn limiter(rate: f64) -> Option<DefaultDirectRateLimiter> {
    quota(rate).map(RateLimiter::direct)
}

/// The wait before attempt `attempt + 1`: exponential, capped, with jitter
/// (between half and all of the step) so that workers do not retry in lockstep.
pub(crate) fn backoff(
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

fn outcome(job: &Job, status: Status, reply: &Reply, attempts: u32, started: Instant) -> Outcome {
    Outcome {
        row: job.row,
        telephone: job.telephone.clone(),
        status,
        http_status: reply.http_status,
        code: reply.code.clone().unwrap_or_default(),
        error: reply.error.clone(),
        msg: reply.msg.clone(),
        attempts,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        finished_at: now(),
    }
}

async fn worker(shared: Arc<Shared>, index: usize) {
    let ts = &shared.tokens[index];
    // A row taken while this worker's request was in flight, its intent already on
    // disk (see `prefetch`); given back to the queue whenever the worker leaves.
    let mut next: Option<Job> = None;
    let mut first_taken = false;
    let put_back = |next: &mut Option<Job>| {
        if let Some(job) = next.take() {
            shared.push_front(job);
        }
    };
    loop {
        if shared.stop.is_cancelled() || ts.retired().is_some() {
            put_back(&mut next);
            return;
        }
        let (job, intended) = match next.take() {
            Some(job) => (job, true),
            None => {
                // Registered before looking at the queue, so a requeue in between is not missed.
                let changed = shared.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let Some(job) = shared.pop() else {
                    if shared.unfinished.load(Ordering::Acquire) == 0 {
                        return;
                    }
                    // Rows are still in flight elsewhere and may come back if their token is refused.
                    tokio::select! {
                        () = changed => {}
                        () = shared.stop.cancelled() => return,
                    }
                    continue;
                };
                if !first_taken {
                    first_taken = true;
                    shared.started.fetch_add(1, Ordering::AcqRel);
                }
                (job, false)
            }
        };
        match send_row(&shared, ts, job, intended, &mut next).await {
            Flow::Next => {}
            Flow::Requeue(job) => {
                put_back(&mut next);
                shared.push_front(*job);
                return;
            }
            Flow::Stop => {
                put_back(&mut next);
                return;
            }
        }
    }
}

/// While a request is in flight, takes this worker's next row and makes its intent
/// durable, so that the sync is off the path between an answer and the next request.
/// Only while the queue holds more rows than there are workers: near the end a row
/// held here would wait for this request while another worker sits idle. Any way out
/// but a kill gives the row back to the queue, and so does a request slower than
/// `GIVE_BACK_AFTER` (see `send_and_take_next`). After a kill, the journal tells (by its
/// `leaving` mark, see `journal::AheadIntents`) that its request never left, so it is
/// not `unknown`, except after a reboot, when that mark may be lost: then it is, as
/// any intent without an outcome.
///
/// Not cancel-safe (a row taken and then dropped would be lost): always awaited to
/// the end (see `send_and_take_next`).
async fn prefetch(shared: &Shared, ts: &TokenState, wanted: bool) -> Option<Job> {
    if !wanted || shared.stop.is_cancelled() || ts.retired().is_some() {
        return None;
    }
    if shared.window_closed() || shared.started.load(Ordering::Acquire) < shared.workers {
        return None;
    }
    let job = {
        let mut queue = shared.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() <= shared.workers {
            return None;
        }
        queue.pop_front()
    }?;
    match shared.recorder.intent_async(&job, true).await {
        Ok(()) => Some(job),
        Err(e) => {
            shared.stop_with(StopReason::RecordFailed {
                message: e.to_string(),
            });
            // Recorded `not_sent` with the rest of the queue at the end of the run.
            shared.push_front(job);
            None
        }
    }
}

/// How long a request may take before the row its worker took ahead goes back to the
/// queue: far above the API's usual answer times, so a run at a normal pace never
/// gives rows back, and far below the 60 s a hung request can take.
const GIVE_BACK_AFTER: Duration = Duration::from_secs(1);

/// Sends `job` and, meanwhile, takes this worker's next row (`prefetch`). When the
/// answer takes longer than `GIVE_BACK_AFTER`, that row goes back to the queue for a
/// free worker instead of waiting behind this request (up to the timeout when the
/// server hangs). A row given back keeps its intent written ahead and no `leaving`
/// mark: whoever takes it writes its own intent before its request leaves (see
/// `journal::AheadIntents`).
async fn send_and_take_next(
    shared: &Shared,
    ts: &TokenState,
    job: &Job,
    next: &mut Option<Job>,
) -> Sent {
    // The request and the taking run side by side (`join`, not `select`: a `select`
    // loop polls the request again on every wake-up, which measured slower at
    // thousands of requests a second).
    let answered = Notify::new();
    let (sent, ()) = tokio::join!(
        async {
            let sent = timed_send(shared, ts, job).await;
            // Stores a permit when the other side is not waiting yet.
            answered.notify_one();
            sent
        },
        async {
            if let Some(taken) = prefetch(shared, ts, next.is_none()).await {
                *next = Some(taken);
            }
            if next.is_some() {
                tokio::select! {
                    biased;
                    () = answered.notified() => {}
                    () = tokio::time::sleep(GIVE_BACK_AFTER) => {
                        if let Some(job) = next.take() {
                            shared.push_front(job);
                        }
                    }
                }
            }
        }
    );
    sent
}

/// Takes one row through its attempts with one token. A state machine (wait for the
/// limiter, the contact window, the intent, the attempt, then act on the answer), kept
/// whole because it reads best in one piece.
async fn send_row(
    shared: &Shared,
    ts: &TokenState,
    job: Job,
    ahead: bool,
    next: &mut Option<Job>,
) -> Flow {
    // An intent written ahead (see `prefetch`) needs its `leaving` mark before the
    // first request leaves.
    let (mut intended, mut mark_leaving) = (ahead, ahead);
    let mut started = Instant::now();
    let mut attempts = 0u32;
    // Attempts turned away for load (see `Throttle`), which do not count against
    // `max_attempts`, and when the first of them came.
    let (mut free_attempts, mut busy_since) = (0u32, None::<Instant>);
    let mut last = Reply::default();
    loop {
        if shared.stop.is_cancelled() {
            return stopped(shared, job, &last, attempts, started);
        }
        if let Some(hours) = &shared.hours
            && let GateState::Closed { next_open } = hours.gate.check()
        {
            if !hours.wait {
                shared.stop_with(StopReason::WindowClosed { next_open });
                return stopped(shared, job, &last, attempts, started);
            }
            if !wait_for_window(shared, hours, next_open).await {
                return stopped(shared, job, &last, attempts, started);
            }
            if attempts == 0 {
                started = Instant::now();
            }
            continue;
        }
        if ts.retired().is_some() {
            return Flow::Requeue(Box::new(job));
        }
        // The intent is made durable before the limiter's wait, not after it: its sync
        // then overlaps the wait, and a slow sync cannot bunch requests up at the server
        // (a permit taken, then held back by the sync, then sent right before the next).
        // A kill during the wait leaves the row `unknown`, never sent twice.
        if !intended {
            if let Err(e) = shared.recorder.intent_async(&job, false).await {
                shared.stop_with(StopReason::RecordFailed {
                    message: e.to_string(),
                });
                return stopped(shared, job, &last, attempts, started);
            }
            intended = true;
        }
        if let Some(limiter) = &ts.limiter {
            tokio::select! {
                biased;
                () = shared.stop.cancelled() => {
                    return stopped(shared, job, &last, attempts, started);
                }
                () = limiter.until_ready() => {}
            }
        }
        let slower = ts.slow().reserve(Instant::now());
        if let Some(at) = slower {
            tokio::select! {
                biased;
                () = shared.stop.cancelled() => {
                    return stopped(shared, job, &last, attempts, started);
                }
                () = tokio::time::sleep_until(at.into()) => {}
            }
        }
        // The window may have closed, the run stopped or the token been retired during
        // the wait: check again before the request leaves.
        if shared.window_closed() || shared.stop.is_cancelled() || ts.retired().is_some() {
            continue;
        }
        if std::mem::take(&mut mark_leaving)
            && let Err(e) = shared.recorder.leaving(&job)
        {
            shared.stop_with(StopReason::RecordFailed {
                message: e.to_string(),
            });
            return stopped(shared, job, &last, attempts, started);
        }
        attempts += 1;
        let sent_at = Instant::now();
        let sent = send_and_take_next(shared, ts, &job, next).await;
        let answer = match sent {
            Sent::Answer(answer) => answer,
            Sent::TimedOut {
                reply,
                mut request,
                sent_at,
            } => {
                ts.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    row = job.shown,
                    "{}",
                    tr!(
                        "dispatch-timeout",
                        row = job.shown,
                        timeout = crate::text::human_duration(shared.client.timeout())
                    )
                );
                shared.record(
                    outcome(&job, Status::Unknown, &reply, attempts, started),
                    &job.key,
                );
                hold_slot(shared, &job, &mut request, sent_at, attempts, started).await;
                shared.stop_if_down();
                return Flow::Next;
            }
        };
        match answer {
            Answer::Accepted(ref reply) | Answer::Refused(ref reply) => {
                // The server answered for this row: the service is up.
                ts.failures.store(0, Ordering::Relaxed);
                ts.slow().win_back();
                let status = if matches!(answer, Answer::Accepted(_)) {
                    Status::Sent
                } else {
                    Status::Failed
                };
                shared.record(outcome(&job, status, reply, attempts, started), &job.key);
                return Flow::Next;
            }
            Answer::Unknown(reply) => {
                ts.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    row = job.shown,
                    "{}",
                    tr!(
                        "dispatch-maybe-delivered",
                        row = job.shown,
                        error = reply.error,
                        msg = reply.msg
                    )
                );
                shared.record(
                    outcome(&job, Status::Unknown, &reply, attempts, started),
                    &job.key,
                );
                if from_gateway(&reply) {
                    // The API may still be working on it: its slot stays taken, as for
                    // the tool's own timeout, and the row taken ahead goes to others.
                    if let Some(ahead) = next.take() {
                        shared.push_front(ahead);
                    }
                    keep_slot(shared, sent_at).await;
                }
                shared.stop_if_down();
                return Flow::Next;
            }
            Answer::TokenRejected(problem, reply) => {
                let mut retired = ts.retired.lock().unwrap_or_else(PoisonError::into_inner);
                if retired.is_none() {
                    tracing::warn!(
                        "{}",
                        tr!(
                            "dispatch-token-retired",
                            token = ts.token.to_string(),
                            why = if reply.msg.is_empty() {
                                &reply.error
                            } else {
                                &reply.msg
                            }
                        )
                    );
                    *retired = Some(problem);
                }
                return Flow::Requeue(Box::new(job));
            }
            Answer::ApiNotFound(reply) => {
                shared.stop_with(StopReason::ApiNotFound {
                    msg: reply.msg.clone(),
                });
                return stopped(shared, job, &reply, attempts, started);
            }
            Answer::Setting(problem, reply) => {
                // Certainly not sent, and no other row would get through: stop, `not_sent`.
                shared.stop_with(StopReason::Setting {
                    problem,
                    origin: shared.client.origin().to_owned(),
                    detail: reply.msg,
                });
                return stopped(shared, job, &last, attempts, started);
            }
            Answer::Redirected(reply) => {
                shared.stop_with(StopReason::Redirected {
                    status: reply.http_status,
                    msg: reply.msg.clone(),
                });
                return stopped(shared, job, &reply, attempts, started);
            }
            Answer::Transient { reply, retry_after } => {
                ts.failures.fetch_add(1, Ordering::Relaxed);
                if shared.stop_if_down() {
                    return stopped(shared, job, &reply, attempts, started);
                }
                let throttled = throttle(&reply);
                if throttled == Some(Throttle::TooMany) {
                    let rate = ts.slow().halve();
                    tracing::debug!(
                        "{}",
                        tr!(
                            "dispatch-slowing-down",
                            token = ts.token.to_string(),
                            rate = format!("{rate:.2}")
                        )
                    );
                }
                // A refusal for load costs no attempt while the row has been waiting
                // less than `BUSY_PATIENCE`: a slot frees within the API's own limit.
                if throttled.is_some()
                    && busy_since.get_or_insert_with(Instant::now).elapsed() < BUSY_PATIENCE
                {
                    free_attempts += 1;
                }
                if attempts - free_attempts >= shared.retry.max_attempts {
                    let mut o = outcome(&job, Status::Failed, &reply, attempts, started);
                    o.msg = tr_en!("msg-gave-up", msg = o.msg, attempts = attempts)
                        .trim_start()
                        .to_owned();
                    shared.record(o, &job.key);
                    return Flow::Next;
                }
                let wait = backoff(&shared.retry, attempts, retry_after);
                tracing::debug!(
                    row = job.shown,
                    attempt = attempts,
                    ?wait,
                    "retrying: {} {}",
                    reply.error,
                    reply.msg
                );
                last = reply;
                tokio::select! {
                    biased;
                    () = shared.stop.cancelled() => {
                        return stopped(shared, job, &last, attempts, started);
                    }
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// What `timed_send` came to: the answer, or a request still running at the server.
enum Sent {
    Answer(Answer),
    TimedOut {
        reply: Reply,
        request: tokio::task::JoinHandle<Answer>,
        sent_at: Instant,
    },
}

/// Sends one attempt, waiting at most the client's timeout for the answer. On a timeout
/// the request is not dropped but keeps its connection in a task of its own: the server
/// may still be working on it, and `hold_slot` listens for its end.
async fn timed_send(shared: &Shared, ts: &TokenState, job: &Job) -> Sent {
    let sent_at = Instant::now();
    let client = shared.client.clone();
    let (token, sent_job) = (ts.token.clone(), job.clone());
    // Polled here, in the worker, as any request; only one that outlives the timeout
    // is moved, already started, into a task of its own.
    let mut request = Box::pin(async move { client.send(&token, &sent_job).await });
    match tokio::time::timeout(shared.client.timeout(), &mut request).await {
        Ok(answer) => Sent::Answer(answer),
        Err(_) => Sent::TimedOut {
            reply: Reply {
                // A row's `msg`: English in every language, its duration included
                // (`tr_en!` formats its values in English too).
                msg: tr_en!(
                    "msg-no-answer-within",
                    timeout = crate::text::human_duration(shared.client.timeout())
                ),
                ..Reply::from(crate::send::api::AnswerError::Timeout)
            },
            request: tokio::spawn(request),
            sent_at,
        },
    }
}

/// Keeps a timed-out request's token slot taken until the server is done with it: its
/// answer arrives, or `API_CALL_LIMIT` has passed since it was sent. Returns early when
/// the run has nothing left to send or is stopping, since no request would use the slot.
/// A late answer that settles the row (accepted or refused) replaces its `unknown`.
async fn hold_slot(
    shared: &Shared,
    job: &Job,
    request: &mut tokio::task::JoinHandle<Answer>,
    sent_at: Instant,
    attempts: u32,
    started: Instant,
) {
    let until = tokio::time::Instant::from_std(sent_at + API_CALL_LIMIT);
    let answer = loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if shared.unfinished.load(Ordering::Acquire) == 0 || shared.stop.is_cancelled() {
            request.abort();
            return;
        }
        tokio::select! {
            biased;
            done = &mut *request => break done.ok(),
            () = tokio::time::sleep_until(until) => {
                request.abort();
                tracing::warn!(
                    row = job.shown,
                    "{}",
                    tr!(
                        "dispatch-abandoned",
                        row = job.shown,
                        limit = crate::text::human_duration(API_CALL_LIMIT)
                    )
                );
                return;
            }
            () = shared.stop.cancelled() => {}
            () = changed => {}
        }
    };
    let (status, reply) = match answer {
        Some(Answer::Accepted(reply)) => (Status::Sent, reply),
        Some(Answer::Refused(reply)) => (Status::Failed, reply),
        // Anything else does not settle whether it was delivered: it stays unknown.
        _ => return,
    };
    let mut o = outcome(job, status, &reply, attempts, started);
    o.msg = tr_en!("msg-answered-late", msg = o.msg)
        .trim_start()
        .to_owned();
    tracing::info!(
        row = job.shown,
        "{}",
        tr!(
            "dispatch-late-answer",
            row = job.shown,
            status = status.as_str()
        )
    );
    if let Err(e) = shared.recorder.record(o, Some(&job.key)) {
        shared.stop_with(StopReason::RecordFailed {
            message: e.to_string(),
        });
    }
}

/// Keeps this worker's token slot taken until `API_CALL_LIMIT` after `sent_at`, for a
/// request a gateway gave up on while the API may still be working on it. Returns early
/// when the run has nothing left to send or is stopping, since no request would use it.
async fn keep_slot(shared: &Shared, sent_at: Instant) {
    let until = tokio::time::Instant::from_std(sent_at + API_CALL_LIMIT);
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if shared.unfinished.load(Ordering::Acquire) == 0 || shared.stop.is_cancelled() {
            return;
        }
        tokio::select! {
            biased;
            () = tokio::time::sleep_until(until) => return,
            () = shared.stop.cancelled() => return,
            () = changed => {}
        }
    }
}

/// Sleeps until the contact window opens. False if the run stopped meanwhile (Ctrl-C,
/// another worker's stop, or a window that never opens).
async fn wait_for_window(
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
        tokio::select! {
            biased;
            () = shared.stop.cancelled() => return false,
            () = tokio::time::sleep(nap) => {}
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

/// The run is stopping and this row was certainly not delivered: `not_sent`.
fn stopped(shared: &Shared, job: Job, last: &Reply, attempts: u32, started: Instant) -> Flow {
    let mut o = outcome(&job, Status::NotSent, last, attempts, started);
    // Earlier attempts (if any) were refused in ways that prove no delivery; keep what
    // the server said last, after why the row was not tried again.
    o.msg = match (o.msg.is_empty(), o.error.is_empty()) {
        (true, true) => stop_msg(shared),
        (true, false) => format!("{} (last answer: {})", stop_msg(shared), o.error),
        (false, _) => format!("{} (last answer: {})", stop_msg(shared), o.msg),
    };
    shared.record(o, &job.key);
    Flow::Stop
}

fn stop_msg(shared: &Shared) -> String {
    shared
        .reason()
        .as_ref()
        .map(StopReason::not_sent_msg)
        .unwrap_or_else(|| "not sent".into())
}

/// Sends every job and records every outcome. Returns why the run stopped early, if it did.
pub(crate) async fn run(
    jobs: Vec<Job>,
    tokens: Vec<Token>,
    client: Client,
    pool: &PoolSettings,
    recorder: Arc<Recorder>,
    progress: Progress,
    stop: CancellationToken,
) -> Option<StopReason> {
    let unfinished = AtomicUsize::new(jobs.len());
    let shared = Arc::new(Shared {
        queue: Mutex::new(jobs.into()),
        workers: tokens.len() * pool.max_in_flight,
        started: AtomicUsize::new(0),
        tokens: tokens
            .into_iter()
            .map(|token| TokenState {
                token,
                limiter: limiter(pool.rate),
                slow: Mutex::new(SlowDown::new(pool.rate)),
                retired: Mutex::new(None),
                failures: AtomicU32::new(0),
            })
            .collect(),
        client,
        recorder,
        retry: pool.retry.clone(),
        progress,
        stop,
        reason: Mutex::new(None),
        unfinished,
        changed: Notify::new(),
        hours: pool.hours.clone(),
        waiting_for: Mutex::new(None),
        max_failures: pool.max_failures,
        refusals: Mutex::new(Refusals::default()),
    });
    let mut workers = tokio::task::JoinSet::new();
    for index in 0..shared.tokens.len() {
        for _ in 0..pool.max_in_flight {
            workers.spawn(worker(Arc::clone(&shared), index));
        }
    }
    while let Some(done) = workers.join_next().await {
        if let Err(e) = done {
            // A worker panicked: its row has no outcome; stop rather than guess.
            shared.stop_with(StopReason::RecordFailed {
                message: format!("internal error: {e}"),
            });
        }
    }
    let left: Vec<Job> = shared
        .queue
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .drain(..)
        .collect();
    if !left.is_empty() && shared.reason().is_none() {
        let quota_spent = shared
            .tokens
            .iter()
            .any(|t| t.retired() == Some(TokenProblem::QuotaSpent));
        shared.stop_with(StopReason::NoTokens { quota_spent });
    }
    let msg = stop_msg(&shared);
    for job in left {
        shared.record(
            Outcome::local(job.row, &job.telephone, Status::NotSent, msg.clone()),
            &job.key,
        );
    }
    shared.reason()
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
