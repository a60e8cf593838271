/*!
Rows a run leaves for a later `--resume` on purpose: beyond today's quota
(`--partial`, after asking each token's quota) or beyond the pilot batch
(`--limit`). They are recorded `not_sent` (a retried row keeps its earlier outcome).
*/

use crate::Error;
use crate::config::SendSettings;
use crate::i18n;
use crate::journal::Recorder;
use crate::outcome::{Outcome, Status};
use crate::send::{self, api, dispatch, quota};

use super::planning::Plan;
use super::refuse;

/// Asks each token's quota (unless `--no-quota-check`, or nothing is left to send: no
/// call is spent then) and fits the plan to it: the tokens to use, the rows `--partial`
/// left for another day (recorded `not_sent`), and the recorder back. A refusal closes
/// the recorder (see `refuse`) and is the error. A check that meets a setting to fix (an
/// untrusted certificate, a proxy that refuses) is the run's stop reason, last.
#[allow(clippy::type_complexity)]
pub(super) fn fit_quota(
    runtime: &tokio::runtime::Runtime,
    client: &api::Client,
    tokens: Vec<send::token::Token>,
    plan: &mut Plan,
    recorder: Recorder,
    settings: &SendSettings,
) -> Result<
    (
        Vec<send::token::Token>,
        HeldRows,
        Recorder,
        Option<dispatch::StopReason>,
    ),
    Error,
> {
    if !settings.quota_check || plan.jobs.is_empty() {
        return Ok((tokens, HeldRows::default(), recorder, None));
    }
    let answers = runtime.block_on(quota::ask(client, tokens));
    if let Some((problem, detail)) = quota::setting(&answers) {
        let reason = dispatch::StopReason::Setting {
            problem,
            origin: client.origin().to_owned(),
            detail,
        };
        return Ok((Vec::new(), HeldRows::default(), recorder, Some(reason)));
    }
    let fitted = quota::fit(answers).and_then(|fitted| {
        quota::rows_to_send(plan.jobs.len(), &fitted, settings.partial).map(|n| (fitted, n))
    });
    let (fitted, n) = match fitted {
        Ok(ok) => ok,
        Err(e) => {
            // The rows' `msg` is English, like the whole results file.
            let why = i18n::with_lang(i18n::Lang::En, || e.to_string());
            refuse(
                recorder,
                std::mem::take(&mut plan.jobs),
                i18n::Arg::Recorded(why),
            )?;
            return Err(e.into());
        }
    };
    let cut = hold_back(
        &recorder,
        plan,
        Some(n as u64),
        &crate::said!("msg-partial"),
    )?;
    Ok((fitted.tokens, cut, recorder, None))
}

/// Rows held back from a run: how many, and how many of them keep an earlier outcome
/// (rows planned for `--retry-unknown` / `--retry-failed`), not `not_sent`.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct HeldRows {
    pub(super) rows: usize,
    pub(super) unknown: usize,
    pub(super) failed: usize,
}

impl HeldRows {
    pub(super) fn kept(self) -> usize {
        self.unknown + self.failed
    }
}

/// Keeps the first `keep` rows of the plan (all with `None`) and records the others
/// `not_sent` with `msg`, for a later `--resume` (a row retried keeps its earlier
/// outcome: see `Recorder::remember_earlier`). Returns what was held back.
pub(super) fn hold_back(
    recorder: &Recorder,
    plan: &mut Plan,
    keep: Option<u64>,
    msg: &i18n::Said,
) -> Result<HeldRows, Error> {
    let Some(keep) = keep.and_then(|k| usize::try_from(k).ok()) else {
        return Ok(HeldRows::default());
    };
    let rest = plan.jobs.split_off(keep.min(plan.jobs.len()));
    let mut held = HeldRows {
        rows: rest.len(),
        ..HeldRows::default()
    };
    for job in &rest {
        match recorder.earlier_status(&job.key) {
            Some(Status::Unknown) => held.unknown += 1,
            Some(Status::Failed) => held.failed += 1,
            _ => {}
        }
        recorder.record(
            Outcome::local_said(job.row, &job.telephone, Status::NotSent, msg.clone()),
            Some(&job.key),
        )?;
    }
    Ok(held)
}

/// Rows a run left for a later `--resume` on purpose.
#[derive(Debug, Clone, Copy)]
pub(super) struct Held {
    /// Beyond today's quota (`--partial`).
    pub(super) quota: HeldRows,
    /// Beyond the pilot batch (`--limit`).
    pub(super) pilot: HeldRows,
}

impl Held {
    /// The flags that continue a retry some held rows were planned for.
    pub(super) fn retry_flags(self) -> String {
        let mut flags = String::new();
        if self.quota.failed + self.pilot.failed > 0 {
            flags.push_str(" --retry-failed");
        }
        if self.quota.unknown + self.pilot.unknown > 0 {
            flags.push_str(" --retry-unknown");
        }
        flags
    }
}
