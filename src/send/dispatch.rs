/*!
Sends jobs: tokens, their limiters, the worker pool, retries and stopping.

Each token gets `max_in_flight` workers (at most 2, the API's limit), so a
token can never carry more requests at once, retries included: a worker keeps
its row through every attempt. Every attempt first waits on the token's
`governor` limiter, so the quota counts retries too. Rows come from one shared
queue, so several tokens share the list and a row refused because of its
token goes back to the front for the others.

A row is retried only when the answer proves it was not delivered (see
`wolkvox::Answer::Transient`); a request that may have been delivered is recorded
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
(403 "simultaneous requests", 429; see `wolkvox::Throttle`) waits for a slot or a
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

Here: the settings, the workers and a row's way through its attempts (`send_row`).
Beside it: `pool` (the state the workers share), `pace` (limiters, 429 slow-down,
back-off), `slot` (one attempt's request and the slot it holds after a timeout) and
`stop` (why a run stopped).
*/

mod pace;
mod pool;
mod slot;
mod stop;

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::i18n::Said;
use crate::journal::Recorder;
use crate::outcome::{Outcome, Source, Status, Told, now};
use crate::progress::Progress;
use crate::send::api::Client;
use crate::send::token::Token;
use crate::send::window::{Gate, GateState};
use crate::tr;
use crate::validate::Job;
use crate::wolkvox::{Answer, AnswerError, Reply, Throttle, TokenProblem, from_gateway, throttle};
use pace::{SlowDown, backoff, limiter};
use pool::{Refusals, Shared, TokenState, wait_for_window};
use slot::{API_CALL_LIMIT, Sent, hold_slot, keep_slot, timed_send};

pub(crate) use pace::RetryPolicy;
pub(crate) use stop::StopReason;

/// How long a row refused for load ("simultaneous requests", 429) waits for a slot or a
/// slower pace without spending its attempts: a slot held by any request frees within
/// the API's own limit.
const BUSY_PATIENCE: Duration = API_CALL_LIMIT;

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

/// What a worker does after a row.
enum Flow {
    Next,
    /// The token cannot be used: the row goes back for another token.
    Requeue(Box<Job>),
    Stop,
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
        told: Told {
            error: Some(Source::of(
                reply.problem.as_ref().map(AnswerError::said).as_ref(),
            )),
            msg: Some(Source::of(reply.msg_said.as_ref())),
        },
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
            shared.record_failed(&e);
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

/// What comes of a row's turn: a wait before its next attempt, or the end of its
/// time with this worker.
enum Step {
    /// Look again from the top: the stop, the contact window, the token.
    Again,
    /// Try again after this wait.
    Retry(Duration),
    /// Recorded: the worker takes its next row.
    Done,
    /// The token cannot be used: the row goes back for another token.
    Requeue,
    /// The run is stopping and this row was certainly not delivered: `not_sent`.
    Stop,
}

/// A row on its way through its attempts with one token.
struct Row {
    job: Job,
    /// Its intent is on disk.
    intended: bool,
    /// An intent written ahead (see `prefetch`) needs its `leaving` mark before the
    /// first request leaves.
    mark_leaving: bool,
    started: Instant,
    attempts: u32,
    /// Attempts turned away for load (see `Throttle`), which do not count against
    /// `max_attempts`, and when the first of them came.
    free_attempts: u32,
    busy_since: Option<Instant>,
    /// The answer the row is recorded with if the run stops before the next one.
    last: Reply,
}

/// Takes one row through its attempts with one token: wait for its turn (`Row::ready`),
/// send, act on the answer (`Row::settle`), until the answer settles it.
async fn send_row(
    shared: &Shared,
    ts: &TokenState,
    job: Job,
    ahead: bool,
    next: &mut Option<Job>,
) -> Flow {
    let mut row = Row {
        job,
        intended: ahead,
        mark_leaving: ahead,
        started: Instant::now(),
        attempts: 0,
        free_attempts: 0,
        busy_since: None,
        last: Reply::default(),
    };
    loop {
        let step = match row.ready(shared, ts).await {
            ControlFlow::Break(step) => step,
            ControlFlow::Continue(()) => {
                row.attempts += 1;
                let sent = send_and_take_next(shared, ts, &row.job, next).await;
                row.settle(shared, ts, sent, next).await
            }
        };
        match step {
            Step::Again => {}
            Step::Retry(wait) => {
                if !shared.unless_stopped(tokio::time::sleep(wait)).await {
                    return row.stopped(shared);
                }
            }
            Step::Done => return Flow::Next,
            Step::Requeue => return Flow::Requeue(Box::new(row.job)),
            Step::Stop => return row.stopped(shared),
        }
    }
}

impl Row {
    /// Waits until the next attempt may leave: the contact window open, the intent on
    /// disk, the token's pace; `Continue` when it may leave now.
    async fn ready(&mut self, shared: &Shared, ts: &TokenState) -> ControlFlow<Step> {
        if shared.stop.is_cancelled() {
            return ControlFlow::Break(Step::Stop);
        }
        if let Some(hours) = &shared.hours
            && let GateState::Closed { next_open } = hours.gate.check()
        {
            if !hours.wait {
                shared.stop_with(StopReason::WindowClosed { next_open });
                return ControlFlow::Break(Step::Stop);
            }
            if !wait_for_window(shared, hours, next_open).await {
                return ControlFlow::Break(Step::Stop);
            }
            if self.attempts == 0 {
                self.started = Instant::now();
            }
            return ControlFlow::Break(Step::Again);
        }
        if ts.retired().is_some() {
            return ControlFlow::Break(Step::Requeue);
        }
        // The intent is made durable before the limiter's wait, not after it: its sync
        // then overlaps the wait, and a slow sync cannot bunch requests up at the server
        // (a permit taken, then held back by the sync, then sent right before the next).
        // A kill during the wait leaves the row `unknown`, never sent twice.
        if !self.intended {
            if let Err(e) = shared.recorder.intent_async(&self.job, false).await {
                shared.record_failed(&e);
                return ControlFlow::Break(Step::Stop);
            }
            self.intended = true;
        }
        if let Some(limiter) = &ts.limiter
            && !shared.unless_stopped(limiter.until_ready()).await
        {
            return ControlFlow::Break(Step::Stop);
        }
        let slower = ts.slow().reserve(Instant::now());
        if let Some(at) = slower
            && !shared
                .unless_stopped(tokio::time::sleep_until(at.into()))
                .await
        {
            return ControlFlow::Break(Step::Stop);
        }
        // The window may have closed, the run stopped or the token been retired during
        // the wait: check again before the request leaves.
        if shared.window_closed() || shared.stop.is_cancelled() || ts.retired().is_some() {
            return ControlFlow::Break(Step::Again);
        }
        if std::mem::take(&mut self.mark_leaving)
            && let Err(e) = shared.recorder.leaving(&self.job)
        {
            shared.record_failed(&e);
            return ControlFlow::Break(Step::Stop);
        }
        ControlFlow::Continue(())
    }

    /// Acts on an attempt's answer: records the row's outcome, or says how long to
    /// wait before the next attempt.
    async fn settle(
        &mut self,
        shared: &Shared,
        ts: &TokenState,
        sent: Sent,
        next: &mut Option<Job>,
    ) -> Step {
        match sent.answer {
            Answer::Accepted(reply) => self.answered(shared, ts, Status::Sent, &reply),
            Answer::Refused(reply) => self.answered(shared, ts, Status::Failed, &reply),
            Answer::Unknown(reply) => {
                self.unknown(shared, ts, reply, sent.running, sent.sent_at, next)
                    .await
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
                Step::Requeue
            }
            Answer::ApiNotFound(reply) => {
                shared.stop_with(StopReason::ApiNotFound {
                    msg: reply.msg.clone(),
                });
                self.last = reply;
                Step::Stop
            }
            Answer::Setting(problem, reply) => {
                // Certainly not sent, and no other row would get through: stop, `not_sent`
                // (with the answer before this one, if any: this one is not the server's).
                shared.stop_with(StopReason::Setting {
                    problem,
                    origin: shared.client.origin().to_owned(),
                    detail: reply.msg,
                });
                Step::Stop
            }
            Answer::Redirected(reply) => {
                shared.stop_with(StopReason::Redirected {
                    status: reply.http_status,
                    msg: reply.msg.clone(),
                });
                self.last = reply;
                Step::Stop
            }
            Answer::Transient { reply, retry_after } => {
                self.transient(shared, ts, reply, retry_after)
            }
        }
    }

    /// The server answered for this row (accepted or refused): the service is up.
    fn answered(&self, shared: &Shared, ts: &TokenState, status: Status, reply: &Reply) -> Step {
        ts.failures.store(0, Ordering::Relaxed);
        ts.slow().win_back();
        shared.record(self.outcome(status, reply), &self.job.key);
        Step::Done
    }

    /// An answer after which the row may have been delivered: `unknown`, never sent
    /// again. While the server may still be working on the request (the tool's own
    /// timeout, a gateway's 502 or 504), the worker keeps the token's slot.
    async fn unknown(
        &self,
        shared: &Shared,
        ts: &TokenState,
        reply: Reply,
        running: Option<tokio::task::JoinHandle<Answer>>,
        sent_at: Instant,
        next: &mut Option<Job>,
    ) -> Step {
        ts.failures.fetch_add(1, Ordering::Relaxed);
        let (row, timeout) = (self.job.shown, shared.client.timeout());
        let warning = match running {
            Some(_) => tr!(
                "dispatch-timeout",
                row = row,
                timeout = crate::text::human_duration(timeout)
            ),
            None => tr!(
                "dispatch-maybe-delivered",
                row = row,
                error = reply.error,
                msg = reply.msg
            ),
        };
        tracing::warn!(row = row, "{}", warning);
        shared.record(self.outcome(Status::Unknown, &reply), &self.job.key);
        if let Some(mut request) = running {
            // The server may still answer: the slot stays taken until it does.
            let (job, attempts, started) = (&self.job, self.attempts, self.started);
            hold_slot(shared, job, &mut request, sent_at, attempts, started).await;
        } else if from_gateway(&reply) {
            // The API may still be working on it: its slot stays taken, as for
            // the tool's own timeout, and the row taken ahead goes to others.
            if let Some(ahead) = next.take() {
                shared.push_front(ahead);
            }
            keep_slot(shared, sent_at).await;
        }
        shared.stop_if_down();
        Step::Done
    }

    /// An answer that proves the row was not delivered: retried after a wait, unless
    /// its attempts are spent (then `failed`) or the service is down.
    fn transient(
        &mut self,
        shared: &Shared,
        ts: &TokenState,
        reply: Reply,
        retry_after: Option<Duration>,
    ) -> Step {
        ts.failures.fetch_add(1, Ordering::Relaxed);
        if shared.stop_if_down() {
            self.last = reply;
            return Step::Stop;
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
            && self.busy_since.get_or_insert_with(Instant::now).elapsed() < BUSY_PATIENCE
        {
            self.free_attempts += 1;
        }
        if self.attempts - self.free_attempts >= shared.retry.max_attempts {
            let mut o = self.outcome(Status::Failed, &reply);
            o.say(crate::said!(
                "msg-gave-up",
                msg = o.msg_arg(),
                attempts = self.attempts
            ));
            shared.record(o, &self.job.key);
            return Step::Done;
        }
        let wait = backoff(&shared.retry, self.attempts, retry_after);
        tracing::debug!(
            row = self.job.shown,
            attempt = self.attempts,
            ?wait,
            "retrying: {} {}",
            reply.error,
            reply.msg
        );
        self.last = reply;
        Step::Retry(wait)
    }

    fn outcome(&self, status: Status, reply: &Reply) -> Outcome {
        outcome(&self.job, status, reply, self.attempts, self.started)
    }

    /// The run is stopping and this row was certainly not delivered: `not_sent`.
    fn stopped(self, shared: &Shared) -> Flow {
        let mut o = self.outcome(Status::NotSent, &self.last);
        // Earlier attempts (if any) were refused in ways that prove no delivery; keep what
        // the server said last, after why the row was not tried again.
        let why = stop_msg(shared);
        let answer = match (o.msg.is_empty(), o.error.is_empty()) {
            (true, true) => None,
            (true, false) => Some(o.error_arg()),
            (false, _) => Some(o.msg_arg()),
        };
        o.say(match answer {
            None => why,
            Some(answer) => crate::said!("msg-stopped-last-answer", why = why, answer = answer),
        });
        shared.record(o, &self.job.key);
        Flow::Stop
    }
}

fn stop_msg(shared: &Shared) -> Said {
    shared
        .reason()
        .as_ref()
        .map_or_else(|| crate::said!("stop-not-sent"), StopReason::not_sent_msg)
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
            Outcome::local_said(job.row, &job.telephone, Status::NotSent, msg.clone()),
            &job.key,
        );
    }
    shared.reason()
}
