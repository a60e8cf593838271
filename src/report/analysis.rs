/*!
`wolkvox-dispatch report RESULTS`: what happened in a run, and what to run next,
from its results file alone.

It reads any results file this tool wrote, also one a running `send` is still
appending to (without locking it: `journal::read` ignores a torn last line,
and a row that appears twice, as during a resumed run, counts once with its
latest line). It prints counts per status, the failures (`failed` and
`unknown`) grouped by the server's `code` and `msg` most common first, why
rows were not sent, the first and last answer with the rate between them, and
the exact command that sends what is left. `--format json` gives the same as
one JSON object for scripts.

Here the report is computed (`build`, a `Report` of plain data); `render` turns it
into lines for people; the unit tests are in `analysis/tests.rs`.
*/

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::journal;
use crate::outcome::{Outcome, Status, Told};
use crate::text::quote;
use crate::tr;

mod render;

pub(crate) use render::render;

/// Rows listed per group; the rest are counted.
const ROWS_PER_GROUP: usize = 10;
/// Stands for the contact list when it cannot be found beside the results file.
const INPUT_PLACEHOLDER: &str = "INPUT";

/// Rows that share an outcome's `code` and `msg` (or, for rows not sent, its `msg`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Group {
    pub(crate) code: String,
    pub(crate) msg: String,
    /// The `error` of the group's first row (Wolkvox's `error`, or the tool's reason).
    pub(crate) error: String,
    /// Whose words the first row's `error` and `msg` are (from the journal): for people.
    #[serde(skip)]
    pub(crate) told: Told,
    pub(crate) count: u64,
    /// How many of them are `failed` and how many `unknown` (failure groups only).
    pub(crate) failed: u64,
    pub(crate) unknown: u64,
    /// The first few row numbers, to look them up.
    pub(crate) rows: Vec<u64>,
}

/// What to run next.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Next {
    pub(crate) command: String,
    /// What the command would send.
    pub(crate) sends: String,
    /// False when the contact list was not found and the command holds `INPUT`.
    pub(crate) input_found: bool,
}

/// Everything `report` shows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Report {
    pub(crate) results: PathBuf,
    /// The Excel workbook beside the results, if there is one: for people, not in JSON.
    #[serde(skip)]
    pub(crate) workbook: Option<PathBuf>,
    pub(crate) rows: u64,
    /// Every status, zero included, so scripts can rely on the keys.
    pub(crate) counts: BTreeMap<&'static str, u64>,
    pub(crate) failures: Vec<Group>,
    pub(crate) not_sent: Vec<Group>,
    pub(crate) suppressed: Vec<Group>,
    /// First and last `finished_at` of rows that were sent to Wolkvox (attempts > 0).
    pub(crate) first_finished_at: Option<String>,
    pub(crate) last_finished_at: Option<String>,
    /// `sent` / (last - first), when they differ.
    pub(crate) messages_per_second: Option<f64>,
    /// `None` when nothing is left to send, or while a run is still in progress.
    pub(crate) next: Option<Next>,
    /// Data rows of the list when the last run started (from the journal; `None` for
    /// results of earlier versions).
    pub(crate) total: Option<u64>,
    /// Rows of the list with no line in the results: never attempted (a run still in
    /// progress, or one that exited at a second Ctrl-C).
    pub(crate) never_attempted: u64,
    /// A `send` is writing these results right now.
    pub(crate) in_progress: bool,
    /// What the campaign sends, in words (from the journal).
    pub(crate) campaign: Option<String>,
    /// Failed rows that sending again cannot fix, by what would fix them.
    pub(crate) cannot_retry: Vec<Fix>,
    /// With `unknown` rows: the command that settles them with Wolkvox's report.
    pub(crate) reconcile: Option<String>,
    /// Messages the journal records `sent` or `unknown` beyond those the rows of the
    /// results show (rows deleted from the list, a phone changed, an earlier text
    /// before `--resend-changed`): they went out in this campaign all the same.
    pub(crate) went_out_to_rows_gone: u64,
    /// When every `failed` row is one a retry cannot fix (so `next` does not retry
    /// them): the command that sends them once the cause is fixed. For people only.
    #[serde(skip)]
    pub(crate) after_fix: Option<String>,
}

/// Failed rows whose refusal a retry cannot change, and what would.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Fix {
    pub(crate) count: u64,
    pub(crate) rows: Vec<u64>,
    pub(crate) fix: String,
}

/// Builds the report from the lines of a results file (later lines for a row win) and
/// what its journal says of the run.
pub(crate) fn build(
    results: &Path,
    outcomes: Vec<Outcome>,
    journal: &journal::JournalView,
) -> Report {
    let mut latest: BTreeMap<u64, Outcome> = BTreeMap::new();
    for o in outcomes {
        latest.insert(o.row, o);
    }
    add_in_flight(&mut latest, journal);
    let mut counts: BTreeMap<&'static str, u64> =
        Status::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    for o in latest.values() {
        *counts.entry(o.status.as_str()).or_default() += 1;
    }
    let count = |s: Status| counts.get(s.as_str()).copied().unwrap_or(0);

    let failures = groups(
        latest
            .values()
            .filter(|o| matches!(o.status, Status::Failed | Status::Unknown)),
        true,
    );
    let not_sent = groups(
        latest.values().filter(|o| o.status == Status::NotSent),
        false,
    );
    let suppressed = groups(
        latest.values().filter(|o| o.status == Status::Suppressed),
        false,
    );

    let (first, last, messages_per_second) = answer_times(latest.values(), count(Status::Sent));
    let total = journal.last_run.as_ref().map(|r| r.rows);
    let never_attempted = total
        .map(|t| (1..=t).filter(|row| !latest.contains_key(row)).count() as u64)
        .unwrap_or(0);
    let cannot_retry = cannot_retry(latest.values());
    let unfixable: u64 = cannot_retry.iter().map(|f| f.count).sum();
    let next = if journal.in_progress {
        None
    } else {
        next_step(
            results,
            &counts,
            journal.last_run.as_ref(),
            never_attempted,
            unfixable,
        )
    };

    let after_fix = (unfixable > 0 && count(Status::Failed) == unfixable && !journal.in_progress)
        .then(|| {
            let input = input_text(results, journal.last_run.as_ref()).0;
            format!(
                "{} --retry-failed",
                resume_base(results, journal.last_run.as_ref(), &input)
            )
        });
    let went_out_to_rows_gone = rows_gone(&latest, journal);
    Report {
        went_out_to_rows_gone,
        after_fix,
        results: results.to_owned(),
        workbook: None,
        rows: latest.len() as u64,
        next,
        total,
        never_attempted,
        in_progress: journal.in_progress,
        campaign: journal
            .last_run
            .as_ref()
            .map(journal::RunInfo::describe_kind),
        cannot_retry,
        reconcile: (count(Status::Unknown) > 0 && !journal.in_progress)
            .then(|| reconcile_command(results, journal.last_run.as_ref())),
        counts,
        failures,
        not_sent,
        suppressed,
        first_finished_at: first.map(|t| t.to_string()),
        last_finished_at: last.map(|t| t.to_string()),
        messages_per_second,
    }
}

/// Messages the journal records as gone out (`sent`, `unknown`) beyond those the results
/// show for the same telephone.
fn rows_gone(latest: &BTreeMap<u64, Outcome>, journal: &journal::JournalView) -> u64 {
    let mut shown: HashMap<&str, u64> = HashMap::new();
    for o in latest.values() {
        if matches!(o.status, Status::Sent | Status::Unknown) {
            *shown.entry(o.telephone.as_str()).or_default() += 1;
        }
    }
    let mut gone = 0;
    for telephone in &journal.went_out {
        match shown.get_mut(telephone.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => gone += 1,
        }
    }
    gone
}

/// A request the journal saw leave, with no outcome after it: a run stopped mid-request
/// (a kill, a second Ctrl-C). It may have been delivered, whatever the file says.
fn add_in_flight(latest: &mut BTreeMap<u64, Outcome>, journal: &journal::JournalView) {
    if journal.in_progress {
        return;
    }
    for (row, telephone) in &journal.in_flight {
        if latest
            .get(row)
            .is_none_or(|o| matches!(o.status, Status::NotSent))
        {
            let mut o = Outcome::local_said(
                *row,
                telephone,
                Status::Unknown,
                crate::said!("msg-in-flight-journal"),
            );
            o.attempts = 1;
            // Not an answer: left out of the first/last answer times.
            o.finished_at = String::new();
            latest.insert(*row, o);
        }
    }
}

/// The `failed` rows that sending again cannot fix (a known `msg`), grouped by what fixes them.
fn cannot_retry<'a>(outcomes: impl Iterator<Item = &'a Outcome>) -> Vec<Fix> {
    let mut out: Vec<Fix> = Vec::new();
    for o in outcomes.filter(|o| o.status == Status::Failed) {
        let Some(fix) = crate::wolkvox::fix_for(&o.msg) else {
            continue;
        };
        match out.iter_mut().find(|f| f.fix == fix) {
            Some(f) => {
                f.count += 1;
                if f.rows.len() < ROWS_PER_GROUP {
                    f.rows.push(o.row);
                }
            }
            None => out.push(Fix {
                count: 1,
                rows: vec![o.row],
                fix,
            }),
        }
    }
    out
}

/// The first and last answer among rows that were sent a request, and the rate of
/// `sent` rows between them.
fn answer_times<'a>(
    outcomes: impl Iterator<Item = &'a Outcome>,
    sent: u64,
) -> (
    Option<jiff::Timestamp>,
    Option<jiff::Timestamp>,
    Option<f64>,
) {
    let times: Vec<jiff::Timestamp> = outcomes
        .filter(|o| o.attempts > 0)
        .filter_map(|o| o.finished_at.parse().ok())
        .collect();
    let first = times.iter().min().copied();
    let last = times.iter().max().copied();
    let rate = match (first, last) {
        (Some(f), Some(l)) if l > f => Some(sent as f64 / f.duration_until(l).as_secs_f64()),
        _ => None,
    };
    (first, last, rate)
}

/// `reconcile RESULTS`, with the run's `--config` and `--base-url` when it had them.
fn reconcile_command(results: &Path, run: Option<&journal::RunInfo>) -> String {
    let mut words = vec![
        "wolkvox-dispatch".to_owned(),
        "reconcile".to_owned(),
        crate::text::quote(results),
    ];
    for flag in ["--config", "--base-url"] {
        if let Some(v) = run.and_then(|r| r.arg_value(flag)) {
            words.push(flag.to_owned());
            words.push(crate::text::quote_text(&v));
        }
    }
    words.join(" ")
}

/// Groups outcomes by (`code`, `msg`), most common first (ties: by code, then msg).
fn groups<'a>(outcomes: impl Iterator<Item = &'a Outcome>, by_code: bool) -> Vec<Group> {
    let mut map: HashMap<(String, String), Group> = HashMap::new();
    for o in outcomes {
        let code = if by_code {
            o.code.clone()
        } else {
            String::new()
        };
        let group = map
            .entry((code.clone(), o.msg.clone()))
            .or_insert_with(|| Group {
                code,
                msg: o.msg.clone(),
                error: o.error.clone(),
                told: o.told.clone(),
                count: 0,
                failed: 0,
                unknown: 0,
                rows: Vec::new(),
            });
        group.count += 1;
        match o.status {
            Status::Failed => group.failed += 1,
            Status::Unknown => group.unknown += 1,
            _ => {}
        }
        if group.rows.len() < ROWS_PER_GROUP {
            group.rows.push(o.row);
        }
    }
    let mut out: Vec<Group> = map.into_values().collect();
    out.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.code.cmp(&b.code))
            .then_with(|| a.msg.cmp(&b.msg))
    });
    out
}

/// The list the results came from, quoted for a command line (a placeholder when it is
/// not found), and whether it was found.
fn input_text(results: &Path, run: Option<&journal::RunInfo>) -> (String, bool) {
    let input = match run {
        Some(run) => Some(run.input.clone()).filter(|p| p.is_file()),
        None => journal::naming::input_for(results),
    };
    let found = input.is_some();
    (
        input
            .as_deref()
            .map(quote)
            .unwrap_or_else(|| INPUT_PLACEHOLDER.to_owned()),
        found,
    )
}

/// The command that resumes the run: the recorded command line defines the campaign
/// (template, variables, sheet, config...), so resume with it; else the bare command.
fn resume_base(results: &Path, run: Option<&journal::RunInfo>, input_text: &str) -> String {
    match run.filter(|r| !r.args.is_empty()) {
        Some(run) => {
            crate::journal::resume_command(run.args.iter().map(std::ffi::OsString::from), results)
        }
        None => format!(
            "wolkvox-dispatch send {input_text} --results {} --resume",
            quote(results)
        ),
    }
}

fn next_step(
    results: &Path,
    counts: &BTreeMap<&'static str, u64>,
    run: Option<&journal::RunInfo>,
    never_attempted: u64,
    unfixable: u64,
) -> Option<Next> {
    let count = |s: Status| counts.get(s.as_str()).copied().unwrap_or(0);
    let (input_text, input_found) = input_text(results, run);
    if count(Status::DryRun) > 0 {
        return Some(Next {
            command: format!("wolkvox-dispatch send {input_text}"),
            sends: tr!("report-next-dry-run", rows = count(Status::DryRun)),
            input_found,
        });
    }
    let (not_sent, failed, unknown) = (
        count(Status::NotSent),
        count(Status::Failed).saturating_sub(unfixable),
        count(Status::Unknown),
    );
    if not_sent + failed + unknown + never_attempted == 0 {
        return None;
    }
    let mut command = resume_base(results, run, &input_text);
    let mut parts = Vec::new();
    if never_attempted > 0 {
        parts.push(tr!("report-next-never-attempted", rows = never_attempted));
    }
    if not_sent > 0 {
        parts.push(tr!("report-next-not-sent", rows = not_sent));
    }
    if failed > 0 {
        command.push_str(" --retry-failed");
        parts.push(tr!("report-next-failed", rows = failed));
    }
    if unknown > 0 {
        command.push_str(" --retry-unknown");
        parts.push(tr!("report-next-unknown", rows = unknown));
    }
    Some(Next {
        command,
        sends: tr!(
            "report-next-sends",
            parts = parts.join(&tr!("report-next-and"))
        ),
        input_found,
    })
}

impl Report {
    /// The row numbers the report names (the first few of each group), as the results
    /// file numbers them.
    pub(crate) fn named_rows(&self) -> std::collections::BTreeSet<u64> {
        let groups = self
            .failures
            .iter()
            .chain(&self.not_sent)
            .chain(&self.suppressed);
        groups
            .flat_map(|g| g.rows.iter().copied())
            .chain(
                self.cannot_retry
                    .iter()
                    .flat_map(|f| f.rows.iter().copied()),
            )
            .collect()
    }

    /// Names the rows by `shown` (the spreadsheet's numbers), for people; the JSON
    /// keeps the results file's.
    pub(crate) fn show_rows(&mut self, shown: impl Fn(u64) -> u64) {
        let groups = self
            .failures
            .iter_mut()
            .chain(&mut self.not_sent)
            .chain(&mut self.suppressed);
        for rows in groups
            .map(|g| &mut g.rows)
            .chain(self.cannot_retry.iter_mut().map(|f| &mut f.rows))
        {
            for row in rows.iter_mut() {
                *row = shown(*row);
            }
        }
    }
}

#[cfg(test)]
mod tests;
