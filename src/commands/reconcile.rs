/*!
`wolkvox-dispatch reconcile RESULTS`: settles the `unknown` rows of a run with
Wolkvox's report of the messages it sent (see `reconcile`). It holds the results'
lock like a run, asks the report for the run's span (every query before any
change, so an error changes nothing), then records each settled row through the
journal as any outcome is, and rewrites the results file (`apply`: the one place
settled rows are applied).

The journal dates each attempt: a row's first intent came after its run started
(`Prior::first_attempt_run`), and its last attempt ended by its outcome's
`finished_at` (or, cut off by a kill, by the journal's last write).
*/

use std::collections::HashMap;
use std::io::Write;
use std::time::Duration;

use jiff::Timestamp;

use crate::cli::ReconcileArgs;
use crate::config::{self, ReconcileSettings};
use crate::journal::{self, Recorder, Unsettled};
use crate::outcome::{self, Outcome, Status};
use crate::progress::Progress;
use crate::reconcile::{self as evidence, Attempt, Evidence, Phones, REPORT_API, Settlement};
use crate::report;
use crate::send::{api, token};
use crate::tr;
use crate::{Error, Exit};

pub(crate) fn run(args: &ReconcileArgs) -> Result<Exit, Error> {
    report::init_logging(false, false, &Progress::hidden());
    let settings = config::reconcile_settings(args)?;
    let tokens = token::tokens_from_env()?;
    let (recorder, prior) = Recorder::open(&journal::RecorderOptions {
        results: settings.results.clone(),
        dry_run: false,
        resume: true,
    })?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let rows = prior.unsettled();
    if rows.is_empty() {
        let _ = writeln!(
            out,
            "{}",
            tr!("reconcile-nothing", results = settings.results.display())
        );
        return Ok(Exit::Success);
    }
    // A journal of an earlier version does not say whether its rows were templates,
    // whose keys the report cannot match: then nothing may be declared absent.
    let template = prior.last_run.as_ref().is_none_or(|r| r.kind == "hsm");
    let journal_time = std::fs::metadata(journal::journal_path(&settings.results))
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| Timestamp::try_from(t).ok());
    let attempts: Vec<Attempt> = rows
        .iter()
        .map(|r| unknown_attempt(r, &prior, journal_time))
        .collect();
    let sent = own_sent(&prior, &attempts);

    let evidence = if template {
        // Nothing to match a template against: no call is spent.
        Evidence::default()
    } else {
        let last = prior
            .last_query
            .get(REPORT_API)
            .and_then(|t| t.parse().ok());
        // The campaign's numbers, as validated (an invalid row's is as typed).
        let attempted = [
            Status::Sent,
            Status::Unknown,
            Status::Failed,
            Status::NotSent,
        ];
        let phones = Phones::new(
            rows.iter().map(|r| r.telephone.clone()).chain(
                prior
                    .done
                    .values()
                    .filter(|o| attempted.contains(&o.status))
                    .map(|o| o.telephone.clone()),
            ),
            settings.default_country,
        );
        let from: Vec<Timestamp> = attempts.iter().map(|a| a.from).collect();
        gather(&settings, &tokens, &recorder, &from, last, &phones)?
    };
    let zone_offset = i64::from(settings.timezone.to_offset(Timestamp::now()).seconds());
    let settlements = evidence::settle_all(
        &attempts,
        &sent,
        template,
        &evidence,
        settings.settle_after,
        zone_offset,
    );

    // Rows named as the list's spreadsheet shows them, like every other command; when
    // the list cannot be read, as the results file numbers them.
    let shown = super::workbook::sheet_rows(
        &settings.results,
        prior.last_run.as_ref(),
        rows.iter().map(|r| r.row).collect(),
    )
    .unwrap_or_default();
    let (changes, [sent, not_sent, left]) =
        decide_all(&rows, &settlements, &evidence, &settings, &shown, &mut out);
    let _ = writeln!(
        out,
        "{}",
        tr!(
            "reconcile-totals",
            rows = rows.len(),
            sent = sent,
            not_sent = not_sent,
            left = left
        )
    );
    if settings.dry_run {
        let _ = writeln!(out, "{}", tr!("reconcile-dry-run"));
    } else {
        let counts = apply(recorder, &settings, changes)?;
        rewrite_workbook(&settings, prior.last_run.as_ref(), &counts);
        if not_sent > 0
            && let Some(run) = &prior.last_run
        {
            let command = journal::resume_command(
                run.args.iter().map(std::ffi::OsString::from),
                &settings.results,
            );
            let _ = writeln!(
                out,
                "{}\n  {}",
                tr!("report-next", command = command),
                tr!("reconcile-next-sends", rows = not_sent)
            );
        }
    }
    let _ = out.flush();
    Ok(if left == 0 {
        Exit::Success
    } else {
        Exit::SomeRowsNotSent
    })
}

/// Decides every row from the evidence, saying each decision on `out`. Returns the
/// outcomes to record (with their keys) and the counts sent, not sent, still unknown.
fn decide_all(
    rows: &[Unsettled],
    settlements: &[Settlement],
    evidence: &Evidence,
    settings: &ReconcileSettings,
    shown: &std::collections::HashMap<u64, u64>,
    out: &mut impl Write,
) -> (Vec<(Outcome, String)>, [u64; 3]) {
    let now = Timestamp::now();
    let mut changes = Vec::new();
    let (mut sent, mut not_sent, mut left) = (0u64, 0u64, 0u64);
    for (row, settlement) in rows.iter().zip(settlements) {
        let line = match settlement {
            Settlement::Sent { date } => {
                sent += 1;
                tr!("reconcile-row-sent", date = date)
            }
            Settlement::NotSent => {
                not_sent += 1;
                tr!("reconcile-row-not-sent")
            }
            Settlement::TooRecent { until } => {
                left += 1;
                tr!(
                    "reconcile-row-too-recent",
                    after = crate::send::window::show(
                        &until.to_zoned_datetime(settings.timezone.clone())
                    )
                )
            }
            Settlement::Undecided(why) => {
                left += 1;
                tr!("reconcile-row-undecided", why = why.text())
            }
        };
        crate::commands::list::say(
            out,
            &tr!(
                "reconcile-row",
                row = shown.get(&row.row).copied().unwrap_or(row.row),
                telephone = row.telephone,
                line = line
            ),
        );
        // The row's `msg` is English, like the whole results file.
        let outcome = crate::i18n::with_lang(crate::i18n::Lang::En, || {
            settled_outcome(row, settlement, evidence, now, settings)
        });
        if let Some(outcome) = outcome {
            changes.push((outcome, row.key.clone()));
        }
    }
    (changes, [sent, not_sent, left])
}

/// A row's attempt as the journal dates it (see the module doc). Without a run
/// recorded before its intent, its last attempt's start (or two days before its end)
/// stands for the first.
fn unknown_attempt(row: &Unsettled, prior: &journal::Prior, journal: Option<Timestamp>) -> Attempt {
    let until = row
        .finished_at
        .as_deref()
        .and_then(|t| t.parse().ok())
        .or(journal)
        .unwrap_or_else(Timestamp::now);
    let started = row.outcome.as_ref().and_then(|o| {
        let elapsed = jiff::SignedDuration::from_millis(i64::try_from(o.elapsed_ms).ok()?);
        until.checked_sub(elapsed).ok()
    });
    Attempt {
        key: row.key.clone(),
        from: first_run(prior, &row.key)
            .or(started)
            .or_else(|| until.checked_sub(jiff::SignedDuration::from_hours(48)).ok())
            .unwrap_or(until),
        until,
        answered: false,
    }
}

fn first_run(prior: &journal::Prior, key: &str) -> Option<Timestamp> {
    prior.first_attempt_run.get(key)?.parse().ok()
}

/// The campaign's own `sent` rows of the period: attempted since the first of the
/// `unknown` ones.
fn own_sent(prior: &journal::Prior, unknown: &[Attempt]) -> Vec<Attempt> {
    let Some(start) = unknown.iter().map(|a| a.from).min() else {
        return Vec::new();
    };
    prior
        .done
        .iter()
        .filter(|(_, o)| o.status == Status::Sent)
        .filter_map(|(key, o)| {
            let until: Timestamp = o.finished_at.parse().ok()?;
            let elapsed = jiff::SignedDuration::from_millis(i64::try_from(o.elapsed_ms).ok()?);
            let from = first_run(prior, key)
                .or_else(|| until.checked_sub(elapsed).ok())
                .unwrap_or(until);
            (until >= start).then(|| Attempt {
                key: key.clone(),
                from,
                until,
                answered: o.http_status.is_some_and(|s| (200..300).contains(&s)),
            })
        })
        .collect()
}

/// Asks the report for the whole span, window by window, keeping Wolkvox's pace.
fn gather(
    settings: &ReconcileSettings,
    tokens: &[token::Token],
    recorder: &Recorder,
    attempted: &[Timestamp],
    last: Option<Timestamp>,
    phones: &Phones,
) -> Result<Evidence, Error> {
    let client = api::Client::new(&settings.origin, settings.timeout, 1)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let now = Timestamp::now();
    let Some((start, end)) = evidence::span(attempted, now) else {
        return Ok(Evidence::default());
    };
    let windows = evidence::windows(start, end);
    let plan = evidence::schedule(windows.len(), tokens.len(), last, now);
    let mut found = Evidence::default();
    for ((from, to), (token, at)) in windows.into_iter().zip(plan) {
        let wait = Timestamp::now().duration_until(at);
        if wait.is_positive() {
            tracing::info!(
                "{}",
                tr!(
                    "reconcile-waiting",
                    until =
                        crate::send::window::show(&at.to_zoned_datetime(settings.timezone.clone())),
                    api = REPORT_API
                )
            );
            std::thread::sleep(Duration::try_from(wait).unwrap_or_default());
        }
        let (ini, end) = (
            evidence::report_date(from, &settings.timezone),
            evidence::report_date(to, &settings.timezone),
        );
        tracing::info!(
            "{}",
            tr!("reconcile-asking", api = REPORT_API, from = ini, to = end)
        );
        let Some(token) = tokens.get(token) else {
            break;
        };
        // The report can list nothing later than the moment it is asked for.
        let asked = Timestamp::now();
        let answer = runtime.block_on(client.cdr_3(token, &ini, &end));
        recorder.note_query(REPORT_API, &outcome::now())?;
        let (status, body) = answer.map_err(|why| evidence::ReportError::Unreadable { why })?;
        let answer = evidence::answer::parse(status, &body)?;
        found.add(answer, asked.min(to), phones);
    }
    Ok(found)
}

/// The outcome recorded for a settled row; `None` for one left `unknown`.
fn settled_outcome(
    row: &Unsettled,
    settlement: &Settlement,
    evidence: &Evidence,
    now: Timestamp,
    settings: &ReconcileSettings,
) -> Option<Outcome> {
    let checked = now.to_string();
    let (status, msg) = match settlement {
        Settlement::Sent { date } => (
            Status::Sent,
            crate::said!(
                "msg-confirmed-sent",
                api = REPORT_API,
                date = date,
                checked = checked
            ),
        ),
        Settlement::NotSent => (
            Status::NotSent,
            crate::said!(
                "msg-absent-from-report",
                api = REPORT_API,
                until = evidence
                    .until
                    .map(|u| u.to_zoned_datetime(settings.timezone.clone()).to_string())
                    .unwrap_or_default(),
                checked = checked,
                after = crate::text::human_duration(
                    Duration::try_from(settings.settle_after).unwrap_or_default()
                )
            ),
        ),
        // A request cut off by a kill has no outcome yet, and the results file may say
        // `not_sent` (a second Ctrl-C): record what it is, `unknown`, so the file says so.
        _ if row.outcome.is_none() => (Status::Unknown, crate::said!("msg-in-flight-reconcile")),
        _ => return None,
    };
    let mut outcome = row.outcome.clone().unwrap_or_else(|| {
        let mut o = Outcome::local(row.row, &row.telephone, status, "");
        o.attempts = 1;
        o
    });
    outcome.status = status;
    outcome.say(msg);
    outcome.finished_at = checked;
    Some(outcome)
}

/// The workbook beside the results, if there is one, rewritten from the settled results.
fn rewrite_workbook(
    settings: &ReconcileSettings,
    run: Option<&journal::RunInfo>,
    counts: &HashMap<Status, u64>,
) {
    let path = super::workbook::path_for(&settings.results);
    if !path.exists() {
        return;
    }
    let written = super::workbook::find_list(&settings.results, run).and_then(|(list, read)| {
        // A list that has the workbook's name (`send clientes.xlsx --results
        // clientes.csv --no-xlsx`) is not the workbook: never rewritten.
        let journal_file = journal::journal_path(&settings.results);
        super::outputs::check(
            &[(path.as_path(), "file-role-workbook")],
            &[
                (list.as_path(), "file-role-list"),
                (settings.results.as_path(), "file-role-results"),
                (journal_file.as_path(), "file-role-journal"),
            ],
        )?;
        let summary = super::workbook::summary_lines(
            &list,
            &settings.results,
            counts,
            &[(crate::tr!("workbook-reconciled"), outcome::now())],
        );
        super::workbook::write(
            &path,
            &list,
            &read,
            &settings.results,
            &settings.timezone,
            summary,
        )
    });
    match written {
        Ok(()) => tracing::info!("{}", tr!("reconcile-workbook", path = path.display())),
        Err(e) => tracing::warn!(
            "{}",
            tr!("reconcile-workbook-failed", error = e.to_string())
        ),
    }
}

/// Records the settled rows through the journal and rewrites the results file with
/// every other row as it was. Returns the count of each status, as the file now has.
fn apply(
    recorder: Recorder,
    settings: &ReconcileSettings,
    changes: Vec<(Outcome, String)>,
) -> Result<HashMap<Status, u64>, Error> {
    let existing = journal::read(&settings.results)?;
    for outcome in existing {
        recorder.carry(outcome);
    }
    let settled: Vec<(String, Status)> =
        changes.iter().map(|(o, k)| (k.clone(), o.status)).collect();
    for (outcome, key) in changes {
        recorder.record(outcome, Some(&key))?;
    }
    let counts = recorder.finish()?;
    crate::ledger::reconciled(settings.ledger.as_ref(), &settings.results, &settled);
    Ok(counts)
}
