/*!
Reads a contact list into rows: a header and, for each data row, its fields as
text with its row number (1 = the first row after the header) and the line it
starts on, so every later message can say where a problem is.

Two kinds of file are read, chosen by the file name's extension:

- spreadsheets (`.xlsx`, `.xlsm`, `.xlsb`, `.xls`, `.ods`), through calamine:
  the sheet named by `--sheet`, else the one the workbook opens on when it is
  visible, else the first visible one (`sheets`); never a hidden sheet unless
  named. Cells come out as the spreadsheet shows them (`cells`): the cell's
  number format applied, a phone stored as `573001234567.0` as `573001234567`
  (never `5.73E+11`), at most 15 significant digits; an error cell is recorded
  in `Record::errors`. The sheet is loaded whole (calamine has no streaming
  reader); `line` is the sheet's row number.
- anything else, as delimited text: the delimiter (`,` `;` tab `|`) is guessed
  from the header line unless given, and the encoding is UTF-8 (with or
  without BOM), UTF-16 with a BOM (Excel's "Unicode text"), or Windows-1252
  (what Excel's "CSV" export writes on a Spanish-locale Windows), decided on
  the whole file unless `[input] encoding` says: a file is read as
  Windows-1252 only when it holds no valid multi-byte UTF-8 at all, and a
  file that mixes both is refused, naming the first row and column whose
  bytes are not UTF-8 (the whole list is read before anything is sent, so
  nothing goes out garbled). A record (a line, with the line breaks inside its
  quoted fields) longer than `MAX_RECORD_BYTES` is cut as it streams past, in
  constant memory: its row comes out marked `too_long` (the validator makes it
  invalid), or, for the header, the file is refused. Fields are decoded one
  at a time from csv's byte records, so text files are streamed and `validate`
  of a very large file runs in constant memory.

A file that cannot be read as a table at all is an `InputError` (the run sends
nothing); a row that is merely wrong is the validator's business.

Here: what is read (`Record`, `Rows`, `ReadOptions`, `InputError`) and opening a
file. Text files are read in `text`, with `capped` (the cap on a record) and
`decode` (the encoding); spreadsheets in `sheets` (which sheet, its header, its
rows) and `cells` (a cell as shown); `header` matches column names.
*/

mod capped;
pub(crate) mod cells;
mod decode;
pub(crate) mod header;
pub(crate) mod sheets;
mod text;

use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::tr;
pub(crate) use text::from_reader_with;

/// Extensions read as spreadsheets; everything else is delimited text.
const SPREADSHEET_EXTENSIONS: [&str; 5] = ["xlsx", "xlsm", "xlsb", "xls", "ods"];

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("{}", tr!("input-open", path = .path, error = .source))]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", tr!("input-empty", path = .path))]
    Empty { path: PathBuf },
    #[error("{}", tr!("input-no-rows", path = .path))]
    NoRows { path: PathBuf },
    #[error("{}", tr!("input-parse", path = .path, line = *.line, message = .message))]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{}", tr!("input-no-header-row", path = .path, row = *.row, last = *.last))]
    NoHeaderRow { path: PathBuf, row: u64, last: u64 },
    #[error("{}", tr!("input-too-many-rows", path = .path, max_rows = *.max_rows))]
    TooManyRows { path: PathBuf, max_rows: u64 },
    #[error("{path}: {message}")]
    Header { path: PathBuf, message: String },
    #[error("{}", tr!("input-spreadsheet", path = .path, message = .message))]
    Spreadsheet { path: PathBuf, message: String },
    #[error("{}", tr!(
        "input-no-such-sheet",
        path = .path,
        wanted = format!("{:?}", .wanted),
        sheets = .sheets
    ))]
    NoSuchSheet {
        path: PathBuf,
        wanted: String,
        sheets: String,
    },
}

/// The text encoding of a delimited file (`[input] encoding`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Encoding {
    /// UTF-8 if the first 64 KiB are valid UTF-8, else Windows-1252. A byte
    /// order mark always wins.
    #[default]
    Auto,
    Utf8,
    Windows1252,
}

impl Encoding {
    /// Parses the config value: "auto", "utf-8", "windows-1252" (a few spellings of each).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(Self::Auto),
            "utf-8" | "utf8" => Some(Self::Utf8),
            // WHATWG decodes latin1 / iso-8859-1 as windows-1252 too: it is a superset.
            "windows-1252" | "cp1252" | "latin1" | "latin-1" | "iso-8859-1" => {
                Some(Self::Windows1252)
            }
            _ => None,
        }
    }
}

/// Parses a delimiter as written in `--delimiter` or `[input] delimiter`.
pub(crate) fn parse_delimiter(text: &str) -> Option<u8> {
    match text {
        "," => Some(b','),
        ";" => Some(b';'),
        "|" => Some(b'|'),
        "tab" | "\t" | "\\t" => Some(b'\t'),
        _ => None,
    }
}

/// How to read the input, from flags and `[input]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadOptions {
    /// Spreadsheets: the sheet to read (default: the first).
    pub(crate) sheet: Option<String>,
    /// Text files: the encoding.
    pub(crate) encoding: Encoding,
    /// Text files: the delimiter, or `None` to detect it from the header line.
    pub(crate) delimiter: Option<u8>,
    /// Spreadsheets: the conventions numbers, dates and times are shown in.
    pub(crate) locale: cells::NumberLocale,
    /// The header's row as the spreadsheet shows it (`--header-row`, `columns.header_row`);
    /// `None`: the first of the first `HEADER_SEARCH_ROWS` rows with the telephone column.
    pub(crate) header_row: Option<u64>,
    /// The telephone column's name (`columns.telephone`; `None`: "telephone" and its aliases).
    pub(crate) telephone: Option<String>,
    /// `.xlsx`/`.xlsm` sheets: refused as soon as they have more data rows than this,
    /// before the whole sheet is loaded (`limits.max_rows`).
    pub(crate) max_rows: Option<u64>,
}

/// How many rows with something in them are looked at for the header.
const HEADER_SEARCH_ROWS: u64 = 20;

impl ReadOptions {
    /// Whether a row holds the telephone column, so it can be the header.
    fn is_header(&self, cells: &[String]) -> bool {
        let name = self.telephone.as_deref().unwrap_or("telephone");
        !matches!(
            header::find(cells, name, "telephone", header::TELEPHONE_ALIASES),
            header::Found::None
        )
    }
}

/// Says that `rows` rows with something in them above the header (row `row`) are ignored.
fn rows_above_header(path: &Path, row: u64, rows: u64) {
    if rows > 0 {
        tracing::warn!(
            "{}",
            tr!(
                "input-rows-above-header",
                path = path.display(),
                row = row,
                rows = rows
            )
        );
    }
}

/// One data row as read.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// 1-based data row number (the header is not a row).
    pub row: u64,
    /// Line of the file (sheet row, for spreadsheets) the row starts on (1-based), for messages.
    pub(crate) line: u64,
    /// The row number a spreadsheet shows for this row: the sheet row, or for a text
    /// file the row Excel shows (its first record, after a `sep=` hint line, is row 1;
    /// each record is one row, whatever line breaks its quoted fields hold; an empty
    /// line, which the CSV reader skips, is not counted). What a person reads; `row`
    /// is what the results file records.
    pub(crate) shown: u64,
    pub fields: Vec<String>,
    /// The row was longer than `MAX_RECORD_BYTES` and was cut while reading: its fields
    /// are incomplete and it must not be sent.
    pub(crate) too_long: bool,
    /// The cells that show an error (`#DIV/0!`; in a text file, a field that is
    /// exactly such an error), by column (0-based), with the error as shown; their
    /// field holds the error text too.
    pub(crate) errors: Vec<(usize, String)>,
    /// The spreadsheet cells that hold a date, a time or both, by column (0-based):
    /// their Excel serial value and the format code they are shown in. Their field
    /// holds the text as shown; the workbook of results copies them as real dates.
    pub(crate) dates: Vec<(usize, f64, String)>,
}

/// The longest record (header or row) a text file may have: a message is at most 4096
/// characters (16 KiB of UTF-8), and no other column has reason to be large.
pub(crate) const MAX_RECORD_BYTES: usize = 256 * 1024;

/// A readable table: its header, then its rows on iteration.
pub struct Rows {
    path: PathBuf,
    header: Vec<String>,
    source: Source,
    row: u64,
    failed: bool,
}

/// Where the rows come from.
enum Source {
    /// Boxed: the CSV reader and its adapter are large, and a `Rows` is moved around.
    Text(Box<text::TextRows>),
    Sheet(Box<sheets::SheetRows>),
}

impl std::fmt::Debug for Rows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rows")
            .field("path", &self.path)
            .field("header", &self.header)
            .field("row", &self.row)
            .finish()
    }
}

/// Opens a contact list with default options and reads its header.
pub(crate) fn open(path: &Path) -> Result<Rows, InputError> {
    open_with(path, &ReadOptions::default())
}

/// Opens a contact list and reads its header: a spreadsheet by its extension,
/// otherwise delimited text.
pub fn open_with(path: &Path, options: &ReadOptions) -> Result<Rows, InputError> {
    if is_spreadsheet(path) {
        return sheets::open_sheet(path, options);
    }
    if let Some(sheet) = &options.sheet {
        tracing::warn!(
            "{}",
            tr!(
                "input-sheet-ignored",
                path = path.display(),
                sheet = format!("{sheet:?}")
            )
        );
    }
    let file = File::open(path).map_err(|source| InputError::Open {
        path: path.to_owned(),
        source,
    })?;
    from_reader_with(
        path,
        Box::new(BufReader::with_capacity(64 * 1024, file)),
        options,
    )
}

/// Whether `path` is read as a spreadsheet (by its extension, any case).
pub(crate) fn is_spreadsheet(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
        SPREADSHEET_EXTENSIONS
            .iter()
            .any(|s| s.eq_ignore_ascii_case(e))
    })
}

impl Rows {
    /// The rows of `source` under `header`, its names without surrounding spaces; a
    /// header of blanks is an empty file.
    fn new(path: &Path, header: Vec<String>, source: Source) -> Result<Rows, InputError> {
        let header: Vec<String> = header.into_iter().map(|h| h.trim().to_owned()).collect();
        if header.iter().all(String::is_empty) {
            return Err(InputError::Empty {
                path: path.to_owned(),
            });
        }
        Ok(Rows {
            path: path.to_owned(),
            header,
            source,
            row: 0,
            failed: false,
        })
    }

    pub fn header(&self) -> &[String] {
        &self.header
    }

    /// The file read, for people: its path, and for a spreadsheet the sheet read
    /// (`list.xlsx, sheet "Contactos"`).
    pub(crate) fn named(&self) -> String {
        match &self.source {
            Source::Text(_) => self.path.display().to_string(),
            Source::Sheet(sheet) => tr!(
                "input-file-and-sheet",
                path = self.path.display(),
                sheet = format!("{:?}", sheet.name)
            ),
        }
    }

    /// How the file is being read, for the log: delimiter and encoding, or the sheet.
    pub(crate) fn format(&self) -> String {
        match &self.source {
            Source::Text(t) => t.format(),
            Source::Sheet(sheet) => tr!("input-format-sheet", sheet = format!("{:?}", sheet.name)),
        }
    }

    /// How a text file is written: its delimiter, and whether it is Windows-1252 (known
    /// for sure once every row was read). `None` for spreadsheets.
    pub(crate) fn text_format(&self) -> Option<(u8, bool)> {
        match &self.source {
            Source::Text(t) => Some(t.text_format()),
            Source::Sheet(_) => None,
        }
    }
}

impl Iterator for Rows {
    type Item = Result<Record, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let next = match &mut self.source {
            Source::Sheet(sheet) => sheet.next_record(&mut self.row).map(Ok),
            Source::Text(text) => text.next_record(&self.path, &mut self.row),
        };
        // An error ends the rows.
        self.failed = matches!(next, Some(Err(_)));
        next
    }
}

#[cfg(test)]
mod tests;
