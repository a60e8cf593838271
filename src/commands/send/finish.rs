/*!
The end of a `send` run: its exit code, the next step to suggest, the command that
continues it, the summary (text or JSON, and `--summary-json`), and the workbook
beside the results.
*/

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use crate::Exit;
use crate::cli;
use crate::commands::list::*;
use crate::config::SendSettings;
use crate::journal;
use crate::outcome::{Status, now};
use crate::report::{Summary, SummaryJson};
use crate::text::human_duration;
use crate::tr;

/// Rows held for a changed text (rule 1) keep their `sent` line, but their new text was
/// not sent: like `held`, they make a finished run's exit 4.
pub(super) fn with_changed(exit: Exit, changed: u64) -> Exit {
    match exit {
        Exit::Success if changed > 0 => Exit::ListProblems,
        other => other,
    }
}

/// Exit code of a run that went to the end: rows the API refused or may not have
/// received (act now) come before rows the list itself spoiled (fix the list some day).
/// Suppressed rows count for neither: leaving them out is what was asked for. Rows
/// `held` as messages already sent count with the list's: nothing of the API needs
/// attention.
pub(super) fn finished_exit(counts: &HashMap<Status, u64>) -> Exit {
    let any = |statuses: &[Status]| {
        statuses
            .iter()
            .any(|s| counts.get(s).copied().unwrap_or(0) > 0)
    };
    if any(&[Status::Failed, Status::Unknown, Status::NotSent]) {
        Exit::SomeRowsNotSent
    } else if any(&[Status::Invalid, Status::Duplicate, Status::Held]) {
        Exit::ListProblems
    } else {
        Exit::Success
    }
}

/// After a run that went to the end with rows not delivered (exit 1): the report that
/// says why, and, with `failed` rows, the command that sends them again once the cause
/// is fixed (`unknown` rows may have been delivered: the report says how to check).
pub(super) fn next_step(settings: &SendSettings, counts: &HashMap<Status, u64>) -> String {
    let report = format!(
        "wolkvox-dispatch report {}",
        crate::text::quote(&settings.results)
    );
    let mut text = tr!("summary-next-report", command = report);
    if counts.get(&Status::Failed).copied().unwrap_or(0) > 0 {
        let retry = format!("{} --retry-failed", resume_command(settings));
        text.push('\n');
        text.push_str(&tr!("summary-next-retry", command = retry));
    }
    text
}

/// How long sending would take at the configured limits, and when it would finish.
pub(super) fn estimate(pace: &Pace<'_>, max_in_flight: usize) -> String {
    let finish = pace
        .finish_when()
        .map(|line| format!("; {line}"))
        .unwrap_or_default();
    tr!(
        "send-estimate",
        messages = pace.jobs,
        time = human_duration(sending_time(pace.jobs as u64, pace.rate, pace.tokens)),
        rate = pace.rate,
        tokens = pace.tokens,
        in_flight = max_in_flight,
        finish = finish
    )
}

/// The command that continues this run: the command line it was started with (so every
/// flag, `--base-url` or `--rate` included, carries over), with `--resume` and
/// `--results`, and without `--retry-failed` / `--retry-unknown`: rows this run retried
/// and that came back `failed` or `unknown` again are not re-sent unless asked again.
pub(super) fn resume_command(settings: &SendSettings) -> String {
    journal::resume_command(std::env::args_os().skip(1), &settings.results)
}

/// Prints the summary (with `--log-format json`, as one JSON line, like every other
/// line) and, with `--summary-json`, writes it as JSON too.
pub(super) fn print_summary(
    summary: &Summary<'_>,
    settings: &SendSettings,
    exit: Exit,
    started_at: &str,
) {
    let json = SummaryJson {
        summary,
        exit_code: exit.code(),
        dry_run: settings.dry_run,
        started_at,
        finished_at: &now(),
        error: None,
    };
    let text = if settings.log_format == cli::LogFormat::Json {
        let mut line = json.to_json();
        line["summary"] = summary.title.english.clone().into();
        line["input"] = settings.list.input.display().to_string().into();
        format!("{line}\n")
    } else {
        summary.render()
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if let Some(path) = &settings.summary_json {
        write_summary_json(path, &json);
    }
}

/// The workbook beside the results (unless `--no-xlsx`); one that cannot be written
/// is a warning: the results CSV is the record.
pub(super) fn write_workbook(
    settings: &SendSettings,
    counts: &HashMap<Status, u64>,
    started_at: &str,
    resume: Option<String>,
) -> Option<std::path::PathBuf> {
    if !settings.xlsx {
        return None;
    }
    let path = crate::commands::workbook::path_for(&settings.results);
    let local = |rfc3339: &str| {
        crate::i18n::when_recorded(rfc3339, &settings.timezone)
            + &crate::i18n::zone_note(&settings.timezone)
    };
    let mut extra = vec![
        (tr!("workbook-started"), local(started_at)),
        (tr!("workbook-finished"), local(&now())),
    ];
    if settings.dry_run {
        extra.push((tr!("workbook-dry-run"), tr!("workbook-nothing-sent")));
    }
    extra.extend(resume.map(|command| (tr!("workbook-to-continue"), command)));
    let summary = crate::commands::workbook::summary_lines(
        &settings.list.input,
        &settings.results,
        counts,
        &extra,
    );
    let written = crate::commands::workbook::write(
        &path,
        &settings.list.input,
        &settings.list.read,
        &settings.results,
        &settings.timezone,
        summary,
    );
    match written {
        Ok(()) => {
            // People read it in the summary; a JSON log keeps its line.
            if settings.log_format == cli::LogFormat::Json {
                tracing::info!("{}", tr!("send-workbook", path = path.display()));
            }
            Some(path)
        }
        Err(e) => {
            tracing::warn!("{}", tr!("send-workbook-failed", error = e.to_string()));
            None
        }
    }
}

/// A summary file that cannot be written is a warning: the run itself is done.
pub(super) fn write_summary_json(path: &Path, json: &SummaryJson<'_>) {
    if let Err(e) = json.write(path) {
        tracing::warn!(
            "{}",
            tr!("send-summary-failed", path = path.display(), error = e)
        );
    }
}
