/*!
One attempt's request, and the token slot it keeps while the server may still be
working on it.

`timed_send` waits at most the client's timeout for the answer. A request that
outlives it is not dropped: it keeps its connection in a task of its own, and
`hold_slot` keeps the worker's slot taken until that request ends or the API's own
limit (`API_CALL_LIMIT` since it left) has passed; a late answer that settles the row
replaces its `unknown`. `keep_slot` does the same for a request a gateway gave up on
(502, 504). Neither holds a slot when the run has nothing left to send or is stopping.
*/

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::outcome;
use super::pool::{Shared, TokenState};
use crate::outcome::Status;
use crate::tr;
use crate::validate::Job;
use crate::wolkvox::{Answer, Reply};

/// The API's own limit for one call: after this long the server has given up on a
/// request, so a timed-out request's slot is free again.
pub(super) const API_CALL_LIMIT: Duration = Duration::from_secs(60);

/// What `timed_send` came to: the answer (`unknown` when the request outlived the
/// timeout, with that request still running at the server in `running`).
pub(super) struct Sent {
    pub(super) answer: Answer,
    pub(super) running: Option<tokio::task::JoinHandle<Answer>>,
    /// When the request left.
    pub(super) sent_at: Instant,
}

/// Sends one attempt, waiting at most the client's timeout for the answer. On a timeout
/// the request is not dropped but keeps its connection in a task of its own: the server
/// may still be working on it, and `hold_slot` listens for its end.
pub(super) async fn timed_send(shared: &Shared, ts: &TokenState, job: &Job) -> Sent {
    let sent_at = Instant::now();
    let client = shared.client.clone();
    let (token, sent_job) = (ts.token.clone(), job.clone());
    // Polled here, in the worker, as any request; only one that outlives the timeout
    // is moved, already started, into a task of its own.
    let mut request = Box::pin(async move { client.send(&token, &sent_job).await });
    match tokio::time::timeout(shared.client.timeout(), &mut request).await {
        Ok(answer) => Sent {
            answer,
            running: None,
            sent_at,
        },
        Err(_) => Sent {
            answer: Answer::Unknown({
                let mut reply = Reply::from(crate::wolkvox::AnswerError::Timeout);
                // A row's `msg`: English in the results file, its duration included.
                reply.say(crate::said!(
                    "msg-no-answer-within",
                    timeout = crate::text::human_duration(shared.client.timeout())
                ));
                reply
            }),
            running: Some(tokio::spawn(request)),
            sent_at,
        },
    }
}

/// How a held slot came free.
enum Held<T> {
    /// The request ended.
    Done(T),
    /// `API_CALL_LIMIT` passed since the request left.
    Expired,
    /// No row is left to send, or the run is stopping: nobody needs the slot.
    NotNeeded,
}

/// Keeps the caller's token slot taken until `done` ends, `API_CALL_LIMIT` has passed
/// since `sent_at`, or the slot is not needed any more.
async fn hold<T>(shared: &Shared, sent_at: Instant, done: impl Future<Output = T>) -> Held<T> {
    let until = tokio::time::Instant::from_std(sent_at + API_CALL_LIMIT);
    tokio::pin!(done);
    loop {
        let changed = shared.changed.notified();
        tokio::pin!(changed);
        changed.as_mut().enable();
        if shared.unfinished.load(Ordering::Acquire) == 0 || shared.stop.is_cancelled() {
            return Held::NotNeeded;
        }
        tokio::select! {
            biased;
            out = &mut done => return Held::Done(out),
            () = tokio::time::sleep_until(until) => return Held::Expired,
            () = shared.stop.cancelled() => {}
            () = changed => {}
        }
    }
}

/// Keeps a timed-out request's token slot taken until the server is done with it: its
/// answer arrives, or `API_CALL_LIMIT` has passed since it was sent. Returns early when
/// the run has nothing left to send or is stopping, since no request would use the slot.
/// A late answer that settles the row (accepted or refused) replaces its `unknown`.
pub(super) async fn hold_slot(
    shared: &Shared,
    job: &Job,
    request: &mut tokio::task::JoinHandle<Answer>,
    sent_at: Instant,
    attempts: u32,
    started: Instant,
) {
    let answer = match hold(shared, sent_at, &mut *request).await {
        Held::Done(done) => done.ok(),
        Held::Expired => {
            request.abort();
            let limit = crate::text::human_duration(API_CALL_LIMIT);
            let abandoned = tr!("dispatch-abandoned", row = job.shown, limit = limit);
            tracing::warn!(row = job.shown, "{abandoned}");
            return;
        }
        Held::NotNeeded => {
            request.abort();
            return;
        }
    };
    let (status, reply) = match answer {
        Some(Answer::Accepted(reply)) => (Status::Sent, reply),
        Some(Answer::Refused(reply)) => (Status::Failed, reply),
        // Anything else does not settle whether it was delivered: it stays unknown.
        _ => return,
    };
    let mut o = outcome(job, status, &reply, attempts, started);
    o.say(crate::said!("msg-answered-late", msg = o.msg_arg()));
    let late = tr!(
        "dispatch-late-answer",
        row = job.shown,
        status = status.as_str()
    );
    tracing::info!(row = job.shown, "{late}");
    if let Err(e) = shared.recorder.record(o, Some(&job.key)) {
        shared.record_failed(&e);
    }
}

/// Keeps this worker's token slot taken until `API_CALL_LIMIT` after `sent_at`, for a
/// request a gateway gave up on while the API may still be working on it. Returns early
/// when the run has nothing left to send or is stopping, since no request would use it.
pub(super) async fn keep_slot(shared: &Shared, sent_at: Instant) {
    hold(shared, sent_at, std::future::pending::<()>()).await;
}
