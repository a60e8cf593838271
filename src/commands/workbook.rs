/*!
Files made from a list and its results together: the workbook beside a results
file (see `report::workbook`), and `report --rows-to-fix`. The list is read again
for its own columns and row order, the results file for each row's last outcome.
The workbook is written at the end of `send` (dry runs too) and by `report --xlsx`;
one that cannot be written is a warning: the results CSV is the record.
*/

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Error;
use crate::input::{self, ReadOptions};
use crate::journal;
use crate::outcome::{Outcome, Status};
use crate::report::workbook::{self, Contents, SourceRow, SummaryValue};

/// The row numbers the list's spreadsheet shows for the data rows `wanted` (as the
/// results file numbers them), read from the list the run recorded; `None` when the list
/// cannot be found or read, or lacks one of them (the caller then says the results'
/// numbers are shown).
pub(crate) fn sheet_rows(
    results: &Path,
    run: Option<&journal::RunInfo>,
    mut wanted: std::collections::BTreeSet<u64>,
) -> Option<std::collections::HashMap<u64, u64>> {
    let mut shown = std::collections::HashMap::new();
    if wanted.is_empty() {
        return Some(shown);
    }
    let (list, read) = find_list(results, run).ok()?;
    for record in input::open_with(&list, &read).ok()? {
        let Ok(record) = record else { break };
        if wanted.remove(&record.row) {
            shown.insert(record.row, record.shown);
        }
        if wanted.is_empty() {
            return Some(shown);
        }
    }
    None
}

/// The list a run read (where it read it, or beside the results), and how to read it
/// (the sheet and delimiter of the run's command line).
pub(crate) fn find_list(
    results: &Path,
    run: Option<&journal::RunInfo>,
) -> Result<(PathBuf, ReadOptions), Error> {
    let list = run
        .map(|r| r.input_absolute.clone())
        .filter(|p| p.is_file())
        .or_else(|| journal::naming::input_for(results))
        .ok_or_else(|| ListError::NoList {
            results: results.to_owned(),
        })?;
    // Rows are matched by number: a list edited since the run would show the wrong
    // outcome beside a row. Say so rather than guess.
    let size = std::fs::metadata(&list).map(|m| m.len()).ok();
    if let Some(run) = run.filter(|r| r.input_bytes > 0 && size != Some(r.input_bytes)) {
        tracing::warn!(
            "{}",
            crate::tr!(
                "workbook-list-changed",
                list = list.display(),
                then = run.input_bytes,
                now = size.unwrap_or_default()
            )
        );
    }
    let read = ReadOptions {
        sheet: run.and_then(|r| r.arg_value("--sheet")),
        delimiter: run
            .and_then(|r| r.arg_value("--delimiter"))
            .and_then(|d| input::parse_delimiter(&d)),
        header_row: run
            .and_then(|r| r.arg_value("--header-row"))
            .and_then(|n| n.parse().ok()),
        ..ReadOptions::default()
    };
    Ok((list, read))
}

/// The list of a results file cannot be found.
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error("{}", crate::tr!("workbook-no-list", results = .results))]
    NoList { results: PathBuf },
}

/// `list.results.csv` -> `list.results.xlsx`.
pub(crate) fn path_for(results: &Path) -> PathBuf {
    results.with_extension("xlsx")
}

/// A list read whole, with the last outcome of each of its rows.
struct ListAndResults {
    header: Vec<String>,
    rows: Vec<SourceRow>,
    outcomes: BTreeMap<u64, Outcome>,
    /// For text lists: the delimiter and whether the file is Windows-1252.
    text_format: Option<(u8, bool)>,
}

fn read_both(list: &Path, read: &ReadOptions, results: &Path) -> Result<ListAndResults, Error> {
    let mut rows = input::open_with(list, read)?;
    let header = rows.header().to_vec();
    let mut source = Vec::new();
    for record in rows.by_ref() {
        source.push(source_row(record?));
    }
    let outcomes = last_outcomes(results)?;
    Ok(ListAndResults {
        header,
        rows: source,
        outcomes,
        text_format: rows.text_format(),
    })
}

/// A row of the list as the workbook and `--rows-to-fix` show it.
fn source_row(record: input::Record) -> SourceRow {
    SourceRow {
        row: record.row,
        shown: record.shown,
        fields: record.fields,
        dates: record.dates,
    }
}

/// The last outcome of each row of `results`.
fn last_outcomes(results: &Path) -> Result<BTreeMap<u64, Outcome>, Error> {
    let mut outcomes: BTreeMap<u64, Outcome> = BTreeMap::new();
    // Whose words each row's texts are, for people (results of earlier versions: none).
    let told = journal::told_index(results);
    journal::read_each(results, |mut o| {
        told.attach(&mut o);
        outcomes.insert(o.row, o);
    })?;
    Ok(outcomes)
}

/// Writes the workbook for `results` from `list`; `summary` is the second sheet. The
/// list's rows go into it as they are read, not held.
pub(crate) fn write(
    path: &Path,
    list: &Path,
    read: &ReadOptions,
    results: &Path,
    timezone: &jiff::tz::TimeZone,
    summary: Vec<(String, SummaryValue)>,
) -> Result<(), Error> {
    let outcomes = last_outcomes(results)?;
    let mut rows = input::open_with(list, read)?;
    let header = rows.header().to_vec();
    // The list line names the sheet read, as every line that names the list does.
    let list_label = crate::tr!("workbook-list");
    let summary = summary
        .into_iter()
        .map(|(label, value)| {
            let value = if label == list_label {
                SummaryValue::Text(rows.named())
            } else {
                value
            };
            (label, value)
        })
        .collect();
    let source = rows.by_ref().map(|record| {
        record
            .map(source_row)
            .map_err(|e| Error::from(e).to_string())
    });
    workbook::write(
        path,
        &Contents {
            header: &header,
            spreadsheet: input::is_spreadsheet(list),
            outcomes: &outcomes,
            timezone,
            summary,
        },
        source,
    )?;
    Ok(())
}

/// Writes the rows of `list` whose last outcome is `invalid`, `failed` or `not_sent`
/// to `path`, with all of the list's columns: as a workbook when `path` ends in `.xlsx`,
/// otherwise as delimited text in the list's own delimiter and encoding, so a person
/// can correct them and send them as a new list. Returns how many rows were written.
pub(crate) fn write_rows_to_fix(
    path: &Path,
    list: &Path,
    read: &ReadOptions,
    results: &Path,
) -> Result<usize, Error> {
    let both = read_both(list, read, results)?;
    // Each row as the list has it, and its reason last (a column the list ignores
    // when it is sent again).
    let width = both.header.len();
    let mut header = both.header.clone();
    header.push(crate::tr!("workbook-column-reason"));
    let to_fix: Vec<Vec<String>> = both
        .rows
        .iter()
        .filter_map(|r| {
            let o = both.outcomes.get(&r.row)?;
            matches!(o.status, Status::Invalid | Status::Failed | Status::NotSent).then(|| {
                let mut fields = r.fields.clone();
                fields.resize(width.max(fields.len()), String::new());
                fields.push(workbook::reason(o));
                fields
            })
        })
        .collect();
    let xlsx = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("xlsx"));
    if xlsx {
        workbook::write_table(
            path,
            &crate::tr!("workbook-sheet-to-fix"),
            &header,
            to_fix.iter().map(Vec::as_slice),
        )?;
        return Ok(to_fix.len());
    }
    let (delimiter, windows_1252) = both.text_format.unwrap_or((b',', false));
    let encode = |text: &str| -> Vec<u8> {
        if windows_1252 {
            encoding_rs::WINDOWS_1252.encode(text).0.into_owned()
        } else {
            text.as_bytes().to_vec()
        }
    };
    crate::atomic::replace(path, |out| {
        let mut w = csv::WriterBuilder::new()
            .delimiter(delimiter)
            .flexible(true)
            .from_writer(out);
        let to_io = |e: csv::Error| std::io::Error::other(e.to_string());
        w.write_record(header.iter().map(|h| encode(h)))
            .map_err(to_io)?;
        for row in &to_fix {
            w.write_record(row.iter().map(|f| encode(f)))
                .map_err(to_io)?;
        }
        w.flush()
    })
    .map_err(|(path, source)| journal::ResultsError::Write { path, source })?;
    Ok(to_fix.len())
}

/// The summary sheet's lines: the files, the campaign, the times and each status's count.
pub(crate) fn summary_lines(
    list: &Path,
    results: &Path,
    counts: &std::collections::HashMap<Status, u64>,
    extra: &[(String, String)],
) -> Vec<(String, SummaryValue)> {
    let text = |label: String, value: String| (label, SummaryValue::Text(value));
    let mut lines = vec![
        text(crate::tr!("workbook-list"), list.display().to_string()),
        text(
            crate::tr!("workbook-results"),
            results.display().to_string(),
        ),
    ];
    lines.extend(extra.iter().cloned().map(|(l, v)| text(l, v)));
    for status in Status::ALL {
        let n = counts.get(&status).copied().unwrap_or(0);
        if n > 0 {
            lines.push((status.label().to_owned(), SummaryValue::Count(n)));
        }
    }
    lines
}
