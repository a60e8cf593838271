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

use crate::outcome::{Outcome, Status};

/// The widest a column is made, in characters.
const MAX_WIDTH: usize = 60;
/// The widest the summary sheet's value column gets, in characters.
const SUMMARY_WIDTH: usize = 80;

#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    #[error("{}", crate::tr!("workbook-write", path = .path, message = .message))]
    Write {
        path: std::path::PathBuf,
        message: String,
    },
}

/// One row of the list as read: its data row number (the results file's `row`), the
/// row number the spreadsheet shows for it, and its cells.
#[derive(Debug, Clone)]
pub(crate) struct SourceRow {
    pub(crate) row: u64,
    pub(crate) shown: u64,
    pub(crate) fields: Vec<String>,
    /// The date and time cells of a spreadsheet, by column: serial value and format
    /// code (`input::Record::dates`).
    pub(crate) dates: Vec<(usize, f64, String)>,
}

/// The row numbers a spreadsheet shows for the data rows read so far, in little
/// memory: they differ from the data rows by an offset (the header and the rows above
/// it) that changes only past a blank row, so only the changes are kept.
#[derive(Debug, Default)]
struct RowNumbers {
    /// (first data row, offset) of each stretch, in order.
    stretches: Vec<(u64, u64)>,
}

impl RowNumbers {
    fn push(&mut self, row: u64, shown: u64) {
        let offset = shown.saturating_sub(row);
        if self.stretches.last().is_none_or(|&(_, o)| o != offset) {
            self.stretches.push((row, offset));
        }
    }

    /// The row number shown for data row `row` (a row read already), if any row was.
    fn shown(&self, row: u64) -> Option<u64> {
        let i = self.stretches.partition_point(|&(first, _)| first <= row);
        let (_, offset) = self.stretches.get(i.checked_sub(1)?)?;
        Some(row + offset)
    }
}

/// A cell's line breaks as a spreadsheet's (`\n`): a carriage return would be written as
/// `_x000D_`, which Excel and LibreOffice show as those characters.
fn line_breaks(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.contains('\r') {
        std::borrow::Cow::Owned(cell.replace("\r\n", "\n").replace('\r', "\n"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

/// A duplicate's recorded reason (`same telephone and message as row N`, N the results
/// file's row) with the row number the spreadsheet shows for N, in the reader's language.
fn duplicate_reason(msg: &str, numbers: &RowNumbers) -> Option<String> {
    let pattern = crate::tr_en!("msg-duplicate", row = 0);
    let prefix = pattern.strip_suffix('0')?;
    let of_row: u64 = msg.strip_prefix(prefix)?.parse().ok()?;
    Some(crate::tr!("msg-duplicate", row = numbers.shown(of_row)?))
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
    pub(crate) summary: Vec<(String, SummaryValue)>,
}

/// A value on the summary sheet: counts are numbers, so Excel can add them up.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SummaryValue {
    Text(String),
    Count(u64),
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

/// A workbook of one sheet named `name`: `header`, in the rows sheet's header style,
/// then `rows`, every cell as text, each column as wide as its text (up to the rows
/// sheet's limit), the header frozen and filtered.
pub(crate) fn write_table<'a>(
    path: &Path,
    name: &str,
    header: &'a [String],
    rows: impl Iterator<Item = &'a [String]>,
) -> Result<(), WorkbookError> {
    let error = |message: String| WorkbookError::Write {
        path: path.to_owned(),
        message,
    };
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    table_sheet(sheet, name, header, rows).map_err(|e| error(e.to_string()))?;
    save(path, &mut workbook)
}

fn table_sheet<'a>(
    sheet: &mut Worksheet,
    name: &str,
    header: &'a [String],
    rows: impl Iterator<Item = &'a [String]>,
) -> Result<(), rust_xlsxwriter::XlsxError> {
    sheet.set_name(name)?;
    let bold = header_format();
    let mut widths: Vec<usize> = header.iter().map(|n| n.chars().count()).collect();
    for (c, cell) in header.iter().enumerate() {
        sheet.write_string_with_format(0, col_num(c), cell, &bold)?;
    }
    let mut last_row = 0;
    for (i, cells) in rows.enumerate() {
        let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
        last_row = r;
        for (c, cell) in cells.iter().enumerate() {
            sheet.write_string(r, col_num(c), line_breaks(cell).as_ref())?;
            if widths.len() <= c {
                widths.resize(c + 1, 0);
            }
            widen(&mut widths, c, cell);
        }
    }
    for (col, width) in widths.iter().enumerate() {
        sheet.set_column_width(col_num(col), (*width).clamp(6, MAX_WIDTH) as f64 + 2.0)?;
    }
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, last_row, col_num(widths.len().saturating_sub(1)))?;
    Ok(())
}

/// The header row's style, on every sheet of a table.
fn header_format() -> Format {
    Format::new()
        .set_bold()
        .set_background_color(Color::RGB(0xD9E1F2))
        .set_border_bottom(FormatBorder::Thin)
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

/// A row's outcome in words, in the reader's language: the Reason column, also in
/// `report --rows-to-fix`.
pub(crate) fn reason(o: &Outcome) -> String {
    reason_with(o, None)
}

/// `reason`, with "same as row N" in the sheet's row numbers when they are known.
fn reason_with(o: &Outcome, numbers: Option<&RowNumbers>) -> String {
    // A dry run records the message in `msg` (escaped onto one line, for the CSV); the
    // workbook shows the message in its own column, and a row that would go needs no
    // reason.
    if o.status == Status::DryRun {
        return String::new();
    }
    let shown = [(&o.error, o.error_shown()), (&o.msg, o.msg_shown())];
    let mut reason = shown
        .iter()
        .filter(|(p, _)| !p.is_empty())
        .map(|(p, shown)| {
            numbers
                .and_then(|n| duplicate_reason(p, n))
                .unwrap_or_else(|| shown.clone())
        })
        .collect::<Vec<_>>()
        .join(": ");
    // A refusal that sending again cannot change: say what would.
    if o.status == Status::Failed
        && let Some(fix) = crate::wolkvox::fix_for(&o.msg)
    {
        reason.push_str(&crate::tr!("workbook-what-to-do", fix = fix));
    }
    reason
}

fn rows_sheet(
    sheet: &mut Worksheet,
    c: &Contents<'_>,
    rows: impl Iterator<Item = Result<SourceRow, String>>,
) -> Result<(), SheetError> {
    sheet.set_name(crate::tr!("workbook-sheet-rows"))?;
    let bold = header_format();
    let time = Format::new().set_num_format("yyyy-mm-dd hh:mm:ss");
    let date_formats = DATE_FORMATS.map(|f| Format::new().set_num_format(f));
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
    let mut numbers = RowNumbers::default();
    // The date formats a list's cells use, made once each (a sheet uses few).
    let mut cell_formats: HashMap<String, Format> = HashMap::new();
    for (i, source) in rows.enumerate() {
        let source = source.map_err(SheetError::Row)?;
        numbers.push(source.row, source.shown);
        let r = u32::try_from(i + 1).unwrap_or(u32::MAX);
        last_row = r;
        for (col, cell) in source.fields.iter().take(c.header.len()).enumerate() {
            if let Some((_, value, code)) = source.dates.iter().find(|d| d.0 == col) {
                let format = cell_formats
                    .entry(code.clone())
                    .or_insert_with(|| Format::new().set_num_format(code));
                sheet.write_number_with_format(r, col_num(col), *value, format)?;
                widen(&mut widths, col, cell);
                continue;
            }
            match c.spreadsheet.then(|| date_cell(cell)).flatten() {
                Some((at, format)) => {
                    sheet.write_datetime_with_format(r, col_num(col), &at, &date_formats[format])?
                }
                None => sheet.write_string(r, col_num(col), line_breaks(cell).as_ref())?,
            };
            widen(&mut widths, col, cell);
        }
        if c.spreadsheet {
            sheet.write_number(r, col_num(c.header.len()), source.shown as f64)?;
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
        let reason = reason_with(o, Some(&numbers));
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
    lines: &[(String, SummaryValue)],
) -> Result<(), rust_xlsxwriter::XlsxError> {
    sheet.set_name(crate::tr!("workbook-sheet-summary"))?;
    let bold = Format::new()
        .set_bold()
        .set_align(rust_xlsxwriter::FormatAlign::Top);
    // Long values (paths, the command that continues the run) wrap within their
    // column instead of running off the printed page.
    let wrapped = Format::new()
        .set_text_wrap()
        .set_align(rust_xlsxwriter::FormatAlign::Left)
        .set_align(rust_xlsxwriter::FormatAlign::Top);
    let count = Format::new()
        .set_num_format("#,##0")
        .set_align(rust_xlsxwriter::FormatAlign::Left)
        .set_align(rust_xlsxwriter::FormatAlign::Top);
    let mut widths = (8, 20);
    for (i, (label, value)) in lines.iter().enumerate() {
        let r = u32::try_from(i).unwrap_or(u32::MAX);
        sheet.write_string_with_format(r, 0, label, &bold)?;
        match value {
            SummaryValue::Text(text) => {
                sheet.write_string_with_format(r, 1, text, &wrapped)?;
                let chars = text.chars().count();
                widths.1 = widths.1.max(chars);
                // A wrapped value gets the height of its lines (spreadsheets do not
                // all grow a row for it when the file opens).
                let lines = chars.div_ceil(SUMMARY_WIDTH).max(1);
                if lines > 1 {
                    sheet.set_row_height(r, 15.0 * lines as f64)?;
                }
            }
            SummaryValue::Count(n) => {
                sheet.write_number_with_format(r, 1, *n as f64, &count)?;
            }
        }
        widths.0 = widths.0.max(label.chars().count());
    }
    sheet.set_column_width(0, widths.0.min(MAX_WIDTH) as f64 + 2.0)?;
    // Values longer than that wrap (a long path, the command that continues the run),
    // so the printed page keeps a readable size.
    sheet.set_column_width(1, widths.1.min(SUMMARY_WIDTH) as f64 + 2.0)?;
    // Printed: labels and values on one page wide, as many pages down as needed.
    sheet.set_portrait().set_print_fit_to_pages(1, 0);
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

/// The number formats of [`date_cell`]'s kinds of cell.
const DATE_FORMATS: [&str; 5] = [
    "yyyy-mm-dd",
    "yyyy-mm-dd hh:mm",
    "yyyy-mm-dd hh:mm:ss",
    "hh:mm",
    "hh:mm:ss",
];

/// A spreadsheet list's date, date-time or time cell, as the list reading writes it
/// (`2025-03-14`, `2025-03-14 10:30`, `10:30`, seconds when not zero): the Excel
/// date-time and the index of its format in [`DATE_FORMATS`], so the workbook's copy
/// of the list keeps it a real date that sorts and filters as one. Anything else
/// (phones, ids, a text that only looks like a date) is `None` and stays text.
fn date_cell(text: &str) -> Option<(ExcelDateTime, usize)> {
    let digits = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit());
    let number = |s: &str| s.parse::<u16>().ok();
    let time = |t: &str| -> Option<(u16, u8, f64, bool)> {
        let parts: Vec<&str> = t.split(':').collect();
        let (h, m, s) = match parts.as_slice() {
            [h, m] => (*h, *m, None),
            [h, m, s] => (*h, *m, Some(*s)),
            _ => return None,
        };
        if !(digits(h, 1) || digits(h, 2)) || !digits(m, 2) || s.is_some_and(|s| !digits(s, 2)) {
            return None;
        }
        let (h, m) = (number(h)?, u8::try_from(number(m)?).ok()?);
        let sec = s.map_or(Some(0.0), |s| s.parse::<f64>().ok())?;
        (h < 24 && m < 60 && sec < 60.0).then_some((h, m, sec, s.is_some()))
    };
    let date = |d: &str| -> Option<ExcelDateTime> {
        let mut it = d.split('-');
        let (y, mo, da) = (it.next()?, it.next()?, it.next()?);
        if it.next().is_some() || !digits(y, 4) || !digits(mo, 2) || !digits(da, 2) {
            return None;
        }
        ExcelDateTime::from_ymd(
            number(y)?,
            u8::try_from(number(mo)?).ok()?,
            u8::try_from(number(da)?).ok()?,
        )
        .ok()
    };
    match text.split_once(' ') {
        Some((d, t)) => {
            let (h, m, s, seconds) = time(t)?;
            let at = date(d)?.and_hms(h, m, s).ok()?;
            Some((at, if seconds { 2 } else { 1 }))
        }
        None if text.contains('-') => Some((date(text)?, 0)),
        None => {
            let (h, m, s, seconds) = time(text)?;
            let at = ExcelDateTime::from_hms(h, m, s).ok()?;
            Some((at, if seconds { 4 } else { 3 }))
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_dates_and_times_become_date_cells() {
        let kind = |t: &str| date_cell(t).map(|(_, f)| DATE_FORMATS[f]);
        assert_eq!(kind("2025-03-14"), Some("yyyy-mm-dd"));
        assert_eq!(kind("2025-03-14 10:30"), Some("yyyy-mm-dd hh:mm"));
        assert_eq!(kind("2025-03-14 10:30:05"), Some("yyyy-mm-dd hh:mm:ss"));
        assert_eq!(kind("9:05"), Some("hh:mm"));
        assert_eq!(kind("36:00:00"), None, "a duration past a day stays text");
        for text in [
            "573001230001",
            "+57 300 123 4567",
            "300-123-4567",
            "2025-13-01",
            "2025-02-30",
            "24:00",
            "10:3",
            "Hola 10:30",
            "2025-03-14T10:30",
            "",
            "1-2",
        ] {
            assert_eq!(kind(text), None, "{text:?}");
        }
    }

    #[test]
    fn row_numbers_keep_only_where_the_offset_changes() {
        let mut numbers = RowNumbers::default();
        assert_eq!(numbers.shown(1), None);
        // Header on row 1; a blank sheet row 4; a second blank run of two rows.
        for (row, shown) in [(1, 2), (2, 3), (3, 5), (4, 6), (5, 9)] {
            numbers.push(row, shown);
        }
        assert_eq!(numbers.stretches.len(), 3);
        let shown: Vec<Option<u64>> = (1..=5).map(|r| numbers.shown(r)).collect();
        assert_eq!(shown, [Some(2), Some(3), Some(5), Some(6), Some(9)]);
        assert_eq!(numbers.shown(0), None);
    }

    #[test]
    fn carriage_returns_become_line_breaks() {
        assert_eq!(line_breaks("a\r\nb\rc\nd"), "a\nb\nc\nd");
        assert!(matches!(line_breaks("a\nb"), std::borrow::Cow::Borrowed(_)));
    }
}
