/*!
`wolkvox-dispatch report RESULTS`: reads a results file and its journal (never
locking either) and prints `report::analysis`'s report, as text or JSON.
*/

use std::io::Write;

use crate::cli::{ReportArgs, ReportFormat};
use crate::input;
use crate::journal;
use crate::outcome::Status;
use crate::report::analysis::{Report, build, render};
use crate::{Error, Exit};
use crate::{i18n, tr};

/// Runs the command: prints the report on stdout. Exit 0 whatever the run's outcome
/// (the report itself worked); 2 if the file cannot be read.
pub(crate) fn run(args: &ReportArgs) -> Result<Exit, Error> {
    crate::report::init_logging(false, false, &crate::progress::Progress::hidden());
    let mut outcomes = journal::read(&args.results)?;
    // Whose words each row's texts are, for people (results of earlier versions: none).
    let told = journal::told_index(&args.results);
    outcomes.iter_mut().for_each(|o| told.attach(o));
    let journal = journal::journal_view(&args.results).unwrap_or_default();
    // The list, found once, and checked with the results against the outputs before
    // anything is written.
    let list = if args.xlsx.is_some() || args.rows_to_fix.is_some() {
        let found = super::workbook::find_list(&args.results, journal.last_run.as_ref())?;
        check_outputs(args, &found.0, journal.last_run.as_ref())?;
        Some(found)
    } else {
        None
    };
    // The JSON is for programs: its texts are English in every language.
    let mut report = match args.format {
        ReportFormat::Text => build(&args.results, outcomes, &journal),
        ReportFormat::Json => {
            i18n::with_lang(i18n::Lang::En, || build(&args.results, outcomes, &journal))
        }
    };
    let workbook = super::workbook::path_for(&args.results);
    report.workbook = workbook.is_file().then_some(workbook);
    let text = match args.format {
        ReportFormat::Text => render(&spreadsheet_rows(report.clone(), args, &journal)),
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
            json.push('\n');
            json
        }
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    if let (Some(path), Some((list, read))) = (&args.xlsx, &list) {
        write_workbook(path, list, read, args, &report)?;
        let _ = writeln!(out, "{}", tr!("send-workbook", path = path.display()));
    }
    if let (Some(path), Some((list, read))) = (&args.rows_to_fix, &list) {
        let n = super::workbook::write_rows_to_fix(path, list, read, &args.results)?;
        let _ = writeln!(
            out,
            "{}",
            tr!("report-rows-to-fix", rows = n, path = path.display())
        );
    }
    Ok(Exit::Success)
}

/// The report with its rows named as the list's spreadsheet shows them, when the list
/// is found and can be read; otherwise as the results file names them, and a warning
/// says so.
fn spreadsheet_rows(
    mut report: Report,
    args: &ReportArgs,
    journal: &journal::JournalView,
) -> Report {
    let wanted = report.named_rows();
    if wanted.is_empty() {
        return report;
    }
    let Some(shown) = super::workbook::sheet_rows(&args.results, journal.last_run.as_ref(), wanted)
    else {
        tracing::warn!(
            "{}",
            tr!("report-rows-as-recorded", results = args.results.display())
        );
        return report;
    };
    report.show_rows(|row| shown.get(&row).copied().unwrap_or(row));
    report
}

/// Refuses `--xlsx` or `--rows-to-fix` onto the results, their journal, the list (as
/// found, and as the run recorded it) or each other.
fn check_outputs(
    args: &ReportArgs,
    list: &std::path::Path,
    run: Option<&journal::RunInfo>,
) -> Result<(), Error> {
    let journal_file = journal::journal_path(&args.results);
    let mut inputs = vec![
        (args.results.as_path(), "file-role-results"),
        (journal_file.as_path(), "file-role-journal"),
        (list, "file-role-list"),
    ];
    if let Some(run) = run {
        inputs.push((run.input_absolute.as_path(), "file-role-list"));
    }
    let mut outputs = Vec::new();
    if let Some(path) = &args.xlsx {
        outputs.push((path.as_path(), "file-role-xlsx"));
    }
    if let Some(path) = &args.rows_to_fix {
        outputs.push((path.as_path(), "file-role-rows-to-fix"));
    }
    Ok(super::outputs::check(&outputs, &inputs)?)
}

/// The workbook of these results.
fn write_workbook(
    path: &std::path::Path,
    list: &std::path::Path,
    read: &input::ReadOptions,
    args: &ReportArgs,
    report: &Report,
) -> Result<(), Error> {
    let counts = report
        .counts
        .iter()
        .filter_map(|(name, n)| {
            Status::ALL
                .iter()
                .find(|s| s.as_str() == *name)
                .map(|s| (*s, *n))
        })
        .collect();
    let mut extra = Vec::new();
    extra.extend(
        report
            .campaign
            .clone()
            .map(|c| (crate::tr!("workbook-campaign"), c)),
    );
    let tz = jiff::tz::TimeZone::system();
    extra.extend(report.first_finished_at.as_deref().map(|t| {
        (
            crate::tr!("workbook-first-answer"),
            i18n::when_recorded(t, &tz),
        )
    }));
    extra.extend(report.last_finished_at.as_deref().map(|t| {
        (
            crate::tr!("workbook-last-answer"),
            i18n::when_recorded(t, &tz),
        )
    }));
    extra.extend(
        report
            .next
            .as_ref()
            .map(|n| (crate::tr!("workbook-to-continue"), n.command.clone())),
    );
    let summary = super::workbook::summary_lines(list, &args.results, &counts, &extra);
    super::workbook::write(
        path,
        list,
        read,
        &args.results,
        &jiff::tz::TimeZone::system(),
        summary,
    )
}
