/*!
The workbook beside the results (`<results stem>.xlsx`), for the people who run
campaigns in Excel: one sheet with every row of the list in the list's order, all
of its own columns first (as text, so telephone numbers stay numbers people can
read, not `5.73001E+11`), then what happened to the row in words, the reason, the
code, the attempts and the time as a real Excel date-time in the campaign's time
zone; a second sheet sums the run up. Rows that need a look (failed, unknown,
invalid, not sent) are coloured. The results CSV stays the machine contract; this
is derived from it and the list, so `report --xlsx` can write it again any time.
*/

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use jiff::tz::TimeZone;
use rust_xlsxwriter::{Color, ExcelDateTime, Format, FormatBorder, Workbook, Worksheet};

use crate::journal::{Outcome, Status};

/// The widest a column is made, in characters.
const MAX_WIDTH: usize = 60;

#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    #[error("{}", crate::tr!("workbook-write", path = .path, message = .message))]
    Write {
        path: std::path::PathBuf,
        message: String,
    },
}

/// One row of the list as read: its data row number, where it starts in the file
/// (the sheet row for spreadsheets) and its cells.
#[derive(Debug, Clone)]
pub(crate) struct SourceRow {
    pub(crate) row: u64,
    pub(crate) line: u64,
    pub(crate) fields: Vec<String>,
}

/// What the workbook shows, besides the list's rows (see `write`).
#[derive(Debug)]
pub(crate) struct Contents<'a> {
    pub(crate) header: &'a [String],
    /// The list is a spreadsheet: show each row's row number in it.
    pub(crate) spreadsheet: bool,
    /// The last outcome of each row, by row number.
    pub(crate) outcomes: &'a BTreeMap<u64, Outcome>,
    /// Times are shown in this zone.
    pub(crate) timezone: &'a TimeZone,
    /// The summary sheet: label and value, a line each.
    pub(crate) summary: Vec<(String, String)>,
}

/// Writes the workbook to `path`, whole or not at all, with `rows` (the list's rows in
/// its order, as they are read) on the first sheet. A row that cannot be read (its
/// error's text) stops it before anything is saved.
pub(crate) fn write(
    path: &Path,
    contents: &Contents<'_>,
    rows: impl Iterator<Item = Result<SourceRow, String>>,
) -> Result<(), WorkbookError> {
    let error = |message: String| WorkbookError::Write {
        path: path.to_owned(),
        message,
    };
    let mut workbook = Workbook::new();
    // The rows sheet goes to a temporary file a row at a time ("constant memory"), so
    // a list of a million rows does not hold a cell per value in memory; beside the
    // workbook rather than in a temporary directory that may be in memory. Where that
    // cannot be, the library's own temporary directory.
    let dir = crate::atomic::directory_of(path).unwrap_or(Path::new("."));
    let _ = workbook.set_tempdir(dir);
    let sheet = workbook
        .add_worksheet_with_constant_memory()
        .map_err(|e| error(e.to_string()))?;
    caught(|| rows_sheet(sheet, contents, rows))
        .and_then(|written| written.map_err(|e| e.to_string()))
        .map_err(error)?;
    summary_sheet(workbook.add_worksheet(), &contents.summary).map_err(|e| error(e.to_string()))?;
    save(path, &mut workbook)
}

/// Why the rows sheet could not be written.
#[derive(Debug, thiserror::Error)]
enum SheetError {
    #[error(transparent)]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    #[error("{0}")]
    Row(String),
}

/// Saves `workbook` to `path`, whole or not at all.
fn save(path: &Path, workbook: &mut Workbook) -> Result<(), WorkbookError> {
    let error = |message: String| WorkbookError::Write {
        path: path.to_owned(),
        message,
    };
    // Level 2 instead of 6: about half the time to save (most of it is deflating the
    // rows' XML) for a file about a tenth larger.
    workbook.set_zip_compression_level(2);
    crate::atomic::replace(path, |out| {
        caught(|| workbook.save_to_writer(out))
            .and_then(|saved| saved.map_err(|e| e.to_string()))
            .map_err(std::io::Error::other)
    })
    .map_err(|(_, e)| error(e.to_string()))
}

thread_local! {
    /// Set while `caught` runs: its panics are its caller's errors, not printed.
    static CATCHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f`, a panic in it becoming its message. rust_xlsxwriter's constant-memory
/// mode panics when it cannot write or read its temporary file (a full disk): for
/// this tool that is a workbook not written, a warning, not a crash of the run.
fn caught<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static QUIET_HOOK: std::sync::Once = std::sync::Once::new();
    QUIET_HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !CATCHING.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
    let was = CATCHING.with(|c| c.replace(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f));
    CATCHING.with(|c| c.set(was));
    result.map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "the workbook library stopped".to_owned())
    })
}

/// A plain workbook of one sheet: `header`, then `rows`, every cell as text.
pub(crate) fn write_table<'a>(
    path: &Path,
    header: &'a [String],
    rows: impl Iterator<Item = &'a [String]>,
) -> Result<(), WorkbookError> {
    let error = |message: String| WorkbookError::Write {
        path: path.to_owned(),
        message,
    };
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    let all = std::iter::once(header).chain(rows);
    for (r, cells) in all.enumerate() {
        for (c, cell) in cells.iter().enumerate() {
            sheet
                .write_string(u32::try_from(r).unwrap_or(u32::MAX), col_num(c), cell)
                .map_err(|e| error(e.to_string()))?;
        }
    }
    save(path, &mut workbook)
}

/// The added columns, after the list's own.
fn added() -> [String; 5] {
    [
        crate::tr!("workbook-column-result"),
        crate::tr!("workbook-column-reason"),
        crate::tr!("workbook-column-code"),
        crate::tr!("workbook-column-attempts"),
        crate::tr!("workbook-column-time"),
    ]
}

fn rows_sheet(
    sheet: &mut Worksheet,
    c: &Contents<'_>,
    rows: impl Iterator<Item = Result<SourceRow, String>>,
) -> Result<(), SheetError> {
    sheet.set_name(crate::tr!("workbook-sheet-rows"))?;
    let bold = Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xD9E1F2))
        .set_border_bottom(FormatBorder::Thin);
    let time = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let mut names: Vec<String> = c.header.to_vec();
    if c.spreadsheet {
        names.push(crate::tr!("workbook-column-sheet-row"));
    }
    let added = added();
    names.extend(added.iter().cloned());
    let mut widths: Vec<usize> = names.iter().map(|n| n.chars().count()).collect();
    for (col, name) in names.iter().enumerate() {
        sheet.write_string_with_format(0, col_num(col), name, &bold)?;
    }
    let first_added = names.len() - added.len();
    // One format per status, made once: the workbook looks each one up per cell.
    let status_formats: HashMap<Status, Format> = Status::ALL
        .iter()
        .map(|&s| (s, Format::new().set_background_color(colour(s))))
        .collect();
    let mut last_row = 0;
    for (i, source) in rows.enumerate() {
        let source = source.map_err(SheetError::Row)?;
        let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
        last_row = r;
        for (col, cell) in source.fields.iter().take(c.header.len()).enumerate() {
            sheet.write_string(r, col_num(col), cell)?;
            widen(&mut widths, col, cell);
        }
        if c.spreadsheet {
            sheet.write_number(r, col_num(c.header.len()), source.line as f64)?;
        }
        let Some(o) = c.outcomes.get(&source.row) else {
            sheet.write_string(r, col_num(first_added), crate::tr!("workbook-no-result"))?;
            continue;
        };
        let label = &o.status.label();
        match status_formats.get(&o.status) {
            Some(format) => {
                sheet.write_string_with_format(r, col_num(first_added), label, format)?
            }
            None => sheet.write_string(r, col_num(first_added), label)?,
        };
        widen(&mut widths, first_added, label);
        let mut reason = [o.error.as_str(), o.msg.as_str()]
            .iter()
            .filter(|p| !p.is_empty())
            .map(|p| crate::i18n::shown(p))
            .collect::<Vec<_>>()
            .join(": ");
        // A refusal that sending again cannot change: say what would.
        if o.status == Status::Failed
            && let Some(fix) = crate::send::api::fix_for(&o.msg)
        {
            reason.push_str(&crate::tr!("workbook-what-to-do", fix = fix));
        }
        sheet.write_string(r, col_num(first_added + 1), &reason)?;
        widen(&mut widths, first_added + 1, &reason);
        sheet.write_string(r, col_num(first_added + 2), &o.code)?;
        sheet.write_number(r, col_num(first_added + 3), f64::from(o.attempts))?;
        if let Some(at) = excel_time(&o.finished_at, c.timezone) {
            sheet.write_datetime_with_format(r, col_num(first_added + 4), &at, &time)?;
        }
    }
    widths[first_added + 4] = widths[first_added + 4].max(19);
    for (col, width) in widths.iter().enumerate() {
        sheet.set_column_width(col_num(col), (*width).clamp(6, MAX_WIDTH) as f64 + 2.0)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    // Printed (or turned into a PDF): landscape, all columns on one page wide, the
    // header on every page.
    sheet.set_landscape().set_print_fit_to_pages(1, 0);
    sheet.set_repeat_rows(0, 0)?;
    sheet.autofilter(0, 0, last_row, col_num(names.len().saturating_sub(1)))?;
    Ok(())
}

fn summary_sheet(
    sheet: &mut Worksheet,
    lines: &[(String, String)],
) -> Result<(), rust_xlsxwriter::XlsxError> {
    sheet.set_name(crate::tr!("workbook-sheet-summary"))?;
    let bold = Format::new().set_bold();
    let mut widths = (8, 20);
    for (i, (label, value)) in lines.iter().enumerate() {
        let r = u32::try_from(i).unwrap_or(u32::MAX);
        sheet.write_string_with_format(r, 0, label, &bold)?;
        sheet.write_string(r, 1, value)?;
        widths.0 = widths.0.max(label.chars().count());
        widths.1 = widths.1.max(value.chars().count());
    }
    sheet.set_column_width(0, widths.0.min(MAX_WIDTH) as f64 + 2.0)?;
    sheet.set_column_width(1, widths.1.min(2 * MAX_WIDTH) as f64 + 2.0)?;
    Ok(())
}

fn col_num(col: usize) -> u16 {
    u16::try_from(col).unwrap_or(u16::MAX)
}

fn widen(widths: &mut [usize], col: usize, text: &str) {
    if let Some(w) = widths.get_mut(col) {
        *w = (*w).max(text.chars().count().min(MAX_WIDTH));
    }
}

/// Green for sent, red for what failed or cannot be sent, amber for what is unsettled
/// or left for later, grey for the rest.
fn colour(status: Status) -> Color {
    match status {
        Status::Sent | Status::DryRun => Color::RGB(0xC6EFCE),
        Status::Failed | Status::Invalid => Color::RGB(0xFFC7CE),
        Status::Unknown | Status::NotSent => Color::RGB(0xFFEB9C),
        Status::Duplicate | Status::Suppressed | Status::Held => Color::RGB(0xEDEDED),
    }
}

/// An RFC 3339 time as an Excel date-time in `tz` (Excel has no time zones).
fn excel_time(text: &str, tz: &TimeZone) -> Option<ExcelDateTime> {
    let t: jiff::Timestamp = text.parse().ok()?;
    let local = t.to_zoned_datetime(tz.clone());
    ExcelDateTime::from_ymd(
        u16::try_from(local.year()).ok()?,
        u8::try_from(local.month()).ok()?,
        u8::try_from(local.day()).ok()?,
    )
    .ok()?
    .and_hms(
        u16::try_from(local.hour()).ok()?,
        u8::try_from(local.minute()).ok()?,
        u8::try_from(local.second()).ok()?,
    )
    .ok()
}
