/*!
Reading a spreadsheet: the sheet, its header and its rows. The workbook is opened
through calamine and the sheet is loaded whole (calamine has no streaming reader),
after an `.xlsx` sheet with more rows than `limits.max_rows` is refused while
streaming its cells; the header is the row given, else the first of the first rows
with the telephone column; each row's cells are shown as the spreadsheet shows them
(`cells`), with its error and date cells.

Which sheet of a workbook is read: the one named by `--sheet` (hidden or not; the
exact name, else the same name in another case), else the sheet the workbook opens
on (its active tab, from `xl/workbook.xml` of an .xlsx/.xlsm) when it is a visible
worksheet, else the first visible worksheet. A hidden or very hidden sheet is never
read unless named: people hide the sheets they do not mean to send.
*/

use std::fs::File;
use std::io::Read;
use std::path::Path;

use calamine::{Data, Reader as _, Sheet, SheetType, SheetVisible};

use super::{
    HEADER_SEARCH_ROWS, InputError, ReadOptions, Record, Rows, Source, cells, rows_above_header,
};
use crate::tr;

/// The most of `xl/workbook.xml` read to find the active tab (its `bookViews` come
/// before the sheets' list, near the start).
const WORKBOOK_XML_LIMIT: u64 = 4 * 1024 * 1024;

/// The sheet to read without `--sheet`: its index in `sheets`, or `None` when no
/// worksheet is visible.
pub(crate) fn default_sheet(path: &Path, sheets: &[Sheet]) -> Option<usize> {
    let readable = |i: usize| {
        sheets
            .get(i)
            .is_some_and(|s| s.visible == SheetVisible::Visible && s.typ == SheetType::WorkSheet)
    };
    active_tab(path)
        .filter(|&i| readable(i))
        .or_else(|| (0..sheets.len()).find(|&i| readable(i)))
}

/// The other visible worksheets, by name, besides `chosen`.
pub(crate) fn other_visible(sheets: &[Sheet], chosen: &str) -> Vec<String> {
    sheets
        .iter()
        .filter(|s| {
            s.visible == SheetVisible::Visible && s.typ == SheetType::WorkSheet && s.name != chosen
        })
        .map(|s| s.name.clone())
        .collect()
}

/// The active tab of an .xlsx/.xlsm workbook (`<workbookView activeTab="N">`, 0 when
/// absent), or `None` when it cannot be read (another format, or a damaged file:
/// calamine says what is wrong with it).
fn active_tab(path: &Path) -> Option<usize> {
    let extension = path.extension()?.to_str()?.to_ascii_lowercase();
    if extension != "xlsx" && extension != "xlsm" {
        return None;
    }
    let file = std::fs::File::open(path).ok()?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(file)).ok()?;
    let entry = zip.by_name("xl/workbook.xml").ok()?;
    let mut xml = String::new();
    entry
        .take(WORKBOOK_XML_LIMIT)
        .read_to_string(&mut xml)
        .ok()?;
    Some(active_tab_in(&xml))
}

/// The `activeTab` of the first `workbookView` element in a workbook's XML (0 when absent).
fn active_tab_in(xml: &str) -> usize {
    let Some(start) = xml
        .find("<workbookView")
        .or_else(|| xml.find(":workbookView"))
    else {
        return 0;
    };
    let rest = &xml[start..];
    let element = &rest[..rest.find('>').unwrap_or(rest.len())];
    element
        .split_whitespace()
        .find_map(|attribute| attribute.strip_prefix("activeTab="))
        .map(|value| value.trim_matches(|c| c == '"' || c == '\'' || c == '/'))
        .and_then(|value| value.parse().ok())
        .unwrap_or(0)
}

/// A sheet being read.
pub(super) struct SheetRows {
    /// The sheet's name, for the log.
    pub(super) name: String,
    range: calamine::Range<Data>,
    display: cells::CellDisplay,
    /// Index in `range` of the next row to read.
    next: usize,
    /// Sheet row number (1-based) of the range's first row.
    first_line: u64,
}

pub(super) fn open_sheet(path: &Path, options: &ReadOptions) -> Result<Rows, InputError> {
    let (wanted, locale) = (options.sheet.as_deref(), options.locale);
    let max_rows = options.max_rows;
    let spreadsheet_error = |e: calamine::Error| match e {
        calamine::Error::Io(source) => InputError::Open {
            path: path.to_owned(),
            source,
        },
        other => InputError::Spreadsheet {
            path: path.to_owned(),
            message: other.to_string(),
        },
    };
    if let Err(source) = File::open(path) {
        return Err(InputError::Open {
            path: path.to_owned(),
            source,
        });
    }
    let mut workbook = calamine::open_workbook_auto(path).map_err(spreadsheet_error)?;
    let metadata = workbook.sheets_metadata().to_vec();
    let names: Vec<String> = metadata.iter().map(|s| s.name.clone()).collect();
    let name = match wanted {
        None => default_sheet(path, &metadata)
            .and_then(|i| names.get(i).cloned())
            .ok_or_else(|| InputError::Empty {
                path: path.to_owned(),
            })?,
        Some(w) => names
            .iter()
            .find(|n| n.as_str() == w)
            .or_else(|| {
                names
                    .iter()
                    .find(|n| n.trim().to_lowercase() == w.trim().to_lowercase())
            })
            .cloned()
            .ok_or_else(|| InputError::NoSuchSheet {
                path: path.to_owned(),
                wanted: w.to_owned(),
                sheets: names
                    .iter()
                    .map(|n| format!("{n:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            })?,
    };
    if let (Some(max_rows), calamine::Sheets::Xlsx(xlsx)) = (max_rows, &mut workbook) {
        refuse_past(xlsx, &name, max_rows, path)?;
    }
    let range = workbook.worksheet_range(&name).map_err(spreadsheet_error)?;
    let styles = match &mut workbook {
        // Number formats: only .xlsx/.xlsm styles are read by calamine.
        calamine::Sheets::Xlsx(xlsx) => xlsx.worksheet_style(&name).ok(),
        _ => None,
    };
    if wanted.is_none() {
        let others: Vec<String> = other_visible(&metadata, &name)
            .into_iter()
            .filter(|other| {
                workbook
                    .worksheet_range(other)
                    .is_ok_and(|r| r.used_cells().next().is_some())
            })
            .collect();
        if !others.is_empty() {
            tracing::warn!(
                "{}",
                tr!(
                    "input-other-sheets",
                    path = path.display(),
                    sheet = format!("{name:?}"),
                    others = others
                        .iter()
                        .map(|n| format!("{n:?}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            );
        }
    }
    let first_line = range.start().map(|(r, _)| u64::from(r) + 1).unwrap_or(1);
    let mut sheet = SheetRows {
        name,
        range,
        display: cells::CellDisplay::new(styles, locale),
        next: 0,
        first_line,
    };
    let header = sheet_header(path, &mut sheet, options)?;
    Rows::new(path, header, Source::Sheet(Box::new(sheet)))
}

/// The header of a sheet (see `ReadOptions::header_row`), leaving `sheet` at the row
/// after it; says how many rows with something in them were above it.
fn sheet_header(
    path: &Path,
    sheet: &mut SheetRows,
    options: &ReadOptions,
) -> Result<Vec<String>, InputError> {
    let empty = || InputError::Empty {
        path: path.to_owned(),
    };
    let (mut above, mut last) = (0, 0);
    // The first row with something in it: the header when none has the telephone column.
    let mut first: Option<(usize, Vec<String>)> = None;
    loop {
        let Some((line, cells, _, _)) = sheet.next_row() else {
            return match (options.header_row, first) {
                (Some(row), _) => Err(InputError::NoHeaderRow {
                    path: path.to_owned(),
                    row,
                    last,
                }),
                (None, Some((next, cells))) => {
                    sheet.next = next;
                    Ok(cells)
                }
                (None, None) => Err(empty()),
            };
        };
        let blank = cells.iter().all(String::is_empty);
        if !blank {
            last = line;
        }
        match options.header_row {
            Some(row) if line == row => {
                rows_above_header(path, row, above);
                return Ok(cells);
            }
            Some(row) if line > row => return Err(empty()),
            Some(_) => {}
            None if blank => continue,
            None if options.is_header(&cells) => {
                rows_above_header(path, line, above);
                return Ok(cells);
            }
            None => {
                if first.is_none() {
                    first = Some((sheet.next, cells));
                }
                if above + 1 >= HEADER_SEARCH_ROWS {
                    // No row has the telephone column: the first is the header, and
                    // the validator says which column is missing.
                    let (next, cells) = first.take().ok_or_else(empty)?;
                    sheet.next = next;
                    return Ok(cells);
                }
            }
        }
        above += u64::from(!blank);
    }
}

/// A sheet row: its line, its cells as shown, its error cells (column, error) and its
/// date cells (column, serial value, format code).
type SheetRow = (
    u64,
    Vec<String>,
    Vec<(usize, String)>,
    Vec<(usize, f64, String)>,
);

/// Reads an `.xlsx` sheet cell by cell and refuses it as soon as more than `max_rows`
/// rows with content follow its first one (the header): a sheet of millions of rows is
/// not loaded whole to be refused. A sheet this cannot read is left to the full read,
/// which says why.
fn refuse_past<RS: std::io::Read + std::io::Seek>(
    xlsx: &mut calamine::Xlsx<RS>,
    name: &str,
    max_rows: u64,
    path: &Path,
) -> Result<(), InputError> {
    let Ok(mut cells) = xlsx.worksheet_cells_reader(name) else {
        return Ok(());
    };
    let mut rows = std::collections::HashSet::new();
    while let Ok(Some(cell)) = cells.next_cell() {
        let empty = match cell.get_value() {
            calamine::DataRef::Empty => true,
            calamine::DataRef::String(s) => s.is_empty(),
            calamine::DataRef::SharedString(s) => s.is_empty(),
            _ => false,
        };
        if !empty && rows.insert(cell.get_position().0) && rows.len() as u64 > max_rows + 1 {
            return Err(InputError::TooManyRows {
                path: path.to_owned(),
                max_rows,
            });
        }
    }
    Ok(())
}

impl SheetRows {
    /// The next data row, numbered after `row` (which it counts); empty rows are not rows.
    pub(super) fn next_record(&mut self, row: &mut u64) -> Option<Record> {
        loop {
            let (line, fields, errors, dates) = self.next_row()?;
            if fields.iter().all(String::is_empty) {
                continue;
            }
            *row += 1;
            return Some(Record {
                row: *row,
                line,
                shown: line,
                fields,
                too_long: false,
                errors,
                dates,
            });
        }
    }

    /// The next row's sheet line, its cells as shown, and its error cells.
    fn next_row(&mut self) -> Option<SheetRow> {
        let cells = self.range.rows().nth(self.next)?;
        let line = self.first_line + self.next as u64;
        let (row0, col0) = self.range.start().unwrap_or((0, 0));
        let row = row0.saturating_add(u32::try_from(self.next).unwrap_or(u32::MAX));
        self.next += 1;
        let mut errors = Vec::new();
        let mut dates = Vec::new();
        let mut fields = Vec::with_capacity(cells.len());
        for (i, cell) in cells.iter().enumerate() {
            let col = col0.saturating_add(u32::try_from(i).unwrap_or(u32::MAX));
            if let Some((value, code)) = self.display.date_at(cell, (row, col)) {
                dates.push((i, value, code));
            }
            match self.display.show(cell, (row, col)) {
                cells::Shown::Text(text) => fields.push(text),
                cells::Shown::Error(error) => {
                    fields.push(error.clone());
                    errors.push((i, error));
                }
            }
        }
        Some((line, fields, errors, dates))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_active_tab_is_read_from_the_workbook_view() {
        let xml = r#"<workbook><bookViews><workbookView xWindow="0" activeTab="2"/></bookViews>"#;
        assert_eq!(active_tab_in(xml), 2);
        assert_eq!(active_tab_in("<workbook><bookViews><workbookView/>"), 0);
        assert_eq!(active_tab_in("<workbook>"), 0);
        assert_eq!(active_tab_in(r#"<x:workbookView activeTab='1'>"#), 1);
        assert_eq!(active_tab_in(r#"<workbookView activeTab="junk">"#), 0);
    }
}
