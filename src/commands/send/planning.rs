/*!
The plan of a `send` run: every verdict decided (`crate::plan::Planner`), the rows
to send claimed in the send ledger in one transaction before the first request,
and the decisions recorded. A list already sent (rule 3) or a ledger that fails is
refused before anything is recorded.
*/

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use crate::Error;
use crate::config::SendSettings;
use crate::journal::{self, Prior, Recorder};
use crate::ledger;
use crate::outcome::Status;
use crate::plan;
use crate::tr;
use crate::validate::{Job, Verdict};

use super::LedgerRun;

/// Rows to send, after recording those that need no request.
pub(super) struct Plan {
    pub(super) jobs: Vec<Job>,
    /// Rows an earlier run already finished.
    pub(super) skipped: u64,
    /// Of those, rows an earlier run sent: not part of this run's rate.
    pub(super) sent_before: u64,
    /// Rows held by rule 1 (a changed text): counted in `skipped` too.
    pub(super) changed: u64,
}

/// Decides every verdict (`plan::Planner`), claims in the ledger the rows to send
/// (one transaction, on disk before the first request: see `crate::ledger`), then
/// records the decisions and returns the jobs left to send. A list already sent
/// (rule 3) or a ledger that fails is refused before anything is recorded.
pub(super) fn plan(
    verdicts: Vec<Verdict>,
    prior: &Prior,
    settings: &SendSettings,
    recorder: &Recorder,
    mut ledger: Option<&mut LedgerRun>,
) -> Result<Plan, Error> {
    let flags = plan::Flags {
        dry_run: settings.dry_run,
        resume: settings.resume,
        retry_failed: settings.retry_failed,
        retry_unknown: settings.retry_unknown,
        resend_changed: settings.resend_changed,
        allow_repeat: settings.allow_repeat,
    };
    let now = ledger::now();
    let planning = Instant::now();
    let seen = match (ledger.as_deref_mut(), &settings.ledger) {
        (Some(run), Some(ls)) => {
            let claims = !settings.dry_run;
            if claims {
                // Held until the claims are committed: no other run checks in between.
                run.store.begin()?;
            }
            let seen = ledger_seen(run, ls, prior, &verdicts, now, claims);
            if seen.is_err() {
                run.store.rollback();
            }
            Some(seen?)
        }
        _ => None,
    };
    let view = seen.as_ref().map(|seen| plan::LedgerView {
        seen,
        cap: settings.ledger.as_ref().and_then(|l| l.cap),
        now,
        tz: &settings.timezone,
    });
    let mut planner = plan::Planner::new(&verdicts, prior, view, flags);
    let decisions: Vec<plan::Decision> = verdicts.into_iter().map(|v| planner.decide(v)).collect();
    let held = planner.repeats();
    let changed = planner.changed();
    // Rule 3 is for a first run of a list: a resumed campaign's rows that went out
    // elsewhere since are held, one by one.
    if let Some(e) = planner
        .already_sent_error(&settings.timezone)
        .filter(|_| !settings.resume)
    {
        if let Some(run) = ledger.as_deref_mut() {
            run.store.rollback();
        }
        return Err(e.into());
    }
    if let Some(run) = ledger.filter(|_| !settings.dry_run) {
        let entries: Vec<ledger::Entry> = decisions
            .iter()
            .filter_map(|d| d.job.as_ref())
            .map(|job| ledger::entry_for(job, &run.campaign, now))
            .collect();
        let claimed = run.store.claim(&entries).and_then(|()| run.store.commit());
        if claimed.is_err() {
            run.store.rollback();
        }
        claimed?;
        run.claimed = true;
        tracing::debug!(
            claimed = entries.len(),
            ms = planning.elapsed().as_secs_f64() * 1000.0,
            "ledger: checked and claimed"
        );
    }
    let mut out = Plan {
        jobs: Vec::new(),
        skipped: 0,
        sent_before: 0,
        changed,
    };
    if changed > 0 {
        tracing::warn!("{}", tr!("send-held-changed", rows = changed));
    }
    for mut decision in decisions {
        // A dry run's file holds no outcome of the real run: rows a resume would skip
        // are counted (`skipped`), not copied.
        if settings.dry_run
            && decision.carried.is_some()
            && decision
                .record
                .as_ref()
                .is_some_and(|(o, _)| o.status != Status::Held)
        {
            decision.record = None;
        }
        if let Some(warning) = decision.warning {
            tracing::warn!("{warning}");
        }
        if let Some(status) = decision.carried {
            out.skipped += 1;
            out.sent_before += u64::from(status == Status::Sent);
        }
        if let (Some(job), Some(earlier)) = (&decision.job, decision.earlier) {
            recorder.remember_earlier(&job.key, earlier);
        }
        if let Some((outcome, key)) = decision.record {
            recorder.record(outcome, key.as_deref())?;
        }
        out.jobs.extend(decision.job);
    }
    if out.skipped > 0 {
        tracing::info!("{}", tr!("send-skipped", rows = out.skipped));
    }
    if held > 0 {
        tracing::warn!("{}", tr!("send-held", rows = held));
    }
    Ok(out)
}

/// What the ledger knows for the list's valid rows; on `--resume`, first settles what
/// an earlier run of this campaign left `pending` (a kill), from the journal.
pub(super) fn ledger_seen(
    run: &mut LedgerRun,
    settings: &ledger::Settings,
    prior: &Prior,
    verdicts: &[Verdict],
    now: i64,
    claims: bool,
) -> Result<ledger::Seen, Error> {
    let jobs = || {
        verdicts.iter().filter_map(|v| match v {
            Verdict::Valid(job) => Some(job),
            _ => None,
        })
    };
    let known = if claims {
        run.store
            .settle(&run.campaign.results, &ledger::settled_from(prior))?;
        // A ledger deleted, emptied or replaced since: it learns what the journal
        // says went out (or may have), so that another list holds it.
        let texts: HashMap<&str, &Job> = jobs().map(|j| (ledger::base_key(&j.key), j)).collect();
        let seeds = ledger::seeds_from(prior, &run.campaign, |key| texts.get(key).copied());
        run.store.seed(&seeds)?;
        ledger::known_keys(prior)
    } else {
        // A dry run speaks for the real run: what that campaign's journal knows.
        match Prior::of_results(Path::new(&run.campaign.results)) {
            Ok(Some(real)) => ledger::known_keys(&real),
            _ => std::collections::HashSet::new(),
        }
    };
    let keys: Vec<&str> = jobs().map(|j| ledger::base_key(&j.key)).collect();
    let phones: Vec<&str> = jobs().map(|j| j.telephone.as_str()).collect();
    let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
    Ok(run.store.seen(
        &run.campaign.results,
        &known,
        &keys,
        &phones,
        now - secs(settings.repeat_window),
        settings.cap.map(|c| now - secs(c.per)),
    )?)
}

/// "Already sent" said of a results file whose journal names another list (say
/// `contacts.xlsx` beside `contacts.csv`, which share default names): say whose it is.
pub(super) fn another_lists_results(
    e: journal::ResultsError,
    settings: &SendSettings,
) -> journal::ResultsError {
    let journal::ResultsError::AlreadyExists { path } = e else {
        return e;
    };
    let recorded = journal::journal_view(&path).and_then(|v| v.last_run);
    let this = std::fs::canonicalize(&settings.list.input).ok();
    match (recorded, this) {
        (Some(run), Some(this))
            if !run.input_absolute.as_os_str().is_empty() && run.input_absolute != this =>
        {
            journal::ResultsError::OtherList {
                suggestion: journal::naming::own_results(&settings.list.input, &path),
                path,
                list: run.input_absolute,
            }
        }
        _ => journal::ResultsError::AlreadyExists { path },
    }
}
