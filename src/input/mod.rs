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
*/

pub(crate) mod cells;
pub(crate) mod header;
pub(crate) mod sheets;

use std::borrow::Cow;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use calamine::{Data, Reader as _};

use crate::tr;

/// How much of a text file is looked at to guess its encoding and delimiter.
const SNIFF_BYTES: usize = 64 * 1024;

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

enum Source {
    /// Boxed: the CSV reader and its adapter are large, and a `Rows` is moved around.
    Text(Box<TextRows>),
    Sheet(Box<SheetRows>),
}

struct TextRows {
    reader: csv::Reader<CappedRecords>,
    delimiter: u8,
    record: csv::ByteRecord,
    decoding: Decoding,
    /// Records the adapter cut, in order, shared with it.
    cuts: Arc<Mutex<VecDeque<Cut>>>,
    /// Line breaks the adapter dropped before the current record, to give true lines.
    lost_lines: i64,
    /// Records read, blank ones included, not counting the first: a spreadsheet shows
    /// the first record as row 1 (it hides Excel's `sep=` hint line) and each record
    /// as one row, whatever line breaks its fields hold.
    records: u64,
    /// Records read while looking for the header, to be read again as rows.
    replay: VecDeque<csv::ByteRecord>,
}

/// A record `CappedRecords` cut: the line it starts on as the CSV reader sees it, and
/// how many line breaks it dropped from it.
#[derive(Debug, Clone, Copy)]
struct Cut {
    start: u64,
    lost: i64,
}

/// The error `CappedRecords` reads as when the header itself is over the cap.
#[derive(Debug)]
struct HeaderTooLong;

impl std::fmt::Display for HeaderTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&tr!("input-header-too-long", kib = MAX_RECORD_BYTES / 1024))
    }
}

impl std::error::Error for HeaderTooLong {}

/// Where the CSV state machine of `CappedRecords` is (RFC 4180, as `csv` reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: an escaped quote (`""`) or the closing one.
    QuoteInQuoted,
}

/// Passes a delimited text through unchanged, except that a record longer than `cap`
/// bytes is cut: the rest of it is dropped as it streams past (never held in memory),
/// closed with a quote if it was inside a quoted field, and ended with one line break.
/// Each cut is reported through `cuts`.
struct CappedRecords {
    inner: Box<dyn Read>,
    cap: usize,
    delimiter: u8,
    state: Quoting,
    /// Bytes of the current record so far.
    length: usize,
    /// Dropping the rest of the current record.
    skipping: bool,
    /// The reader was inside a quoted field when the cut began.
    cut_quoted: bool,
    /// Line breaks dropped from the current record.
    dropped_lines: i64,
    /// The line the CSV reader is on (1-based), counting what it was given.
    line: u64,
    record_start: u64,
    cuts: Arc<Mutex<VecDeque<Cut>>>,
    buf: Vec<u8>,
    pos: usize,
    filled: usize,
    /// Bytes made up to end a cut record, handed out before any other.
    pending: VecDeque<u8>,
    /// Copy runs of plain bytes at once (off only in tests, as the reference).
    bulk: bool,
}

impl CappedRecords {
    fn new(
        inner: Box<dyn Read>,
        cap: usize,
        delimiter: u8,
        cuts: Arc<Mutex<VecDeque<Cut>>>,
    ) -> Self {
        Self {
            inner,
            cap,
            delimiter,
            state: Quoting::FieldStart,
            length: 0,
            skipping: false,
            cut_quoted: false,
            dropped_lines: 0,
            line: 1,
            record_start: 1,
            cuts,
            buf: vec![0; 64 * 1024],
            pos: 0,
            filled: 0,
            pending: VecDeque::new(),
            bulk: true,
        }
    }

    /// The state after `b`, and whether `b` ends the record.
    fn next_state(&self, b: u8) -> (Quoting, bool) {
        let end = b == b'\n' || b == b'\r';
        match self.state {
            Quoting::Quoted if b == b'"' => (Quoting::QuoteInQuoted, false),
            Quoting::Quoted => (Quoting::Quoted, false),
            Quoting::QuoteInQuoted if b == b'"' => (Quoting::Quoted, false),
            Quoting::FieldStart if b == b'"' => (Quoting::Quoted, false),
            _ if end => (Quoting::FieldStart, true),
            _ if b == self.delimiter => (Quoting::FieldStart, false),
            _ => (Quoting::Unquoted, false),
        }
    }

    /// Ends a cut record: close an open quote, end the line, report the cut.
    fn end_cut(&mut self) {
        if self.cut_quoted {
            self.pending.push_back(b'"');
        }
        self.pending.push_back(b'\n');
        self.cuts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push_back(Cut {
                start: self.record_start,
                // The line break handed out stands for one of those dropped.
                lost: self.dropped_lines - 1,
            });
        self.skipping = false;
        self.dropped_lines = 0;
        self.line += 1;
        self.record_start = self.line;
        self.length = 0;
        self.state = Quoting::FieldStart;
    }
}

impl Read for CappedRecords {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let mut written = 0;
        while written < out.len() {
            if let Some(b) = self.pending.pop_front() {
                out[written] = b;
                written += 1;
                continue;
            }
            if self.pos == self.filled {
                if written > 0 {
                    break;
                }
                let n = self.inner.read(&mut self.buf)?;
                if n == 0 {
                    if self.skipping {
                        self.end_cut();
                        continue;
                    }
                    break;
                }
                (self.pos, self.filled) = (0, n);
            }
            // Inside a field most bytes change nothing but the record's length: copy
            // them in one go up to the next byte that matters (or the cap).
            if self.bulk && !self.skipping {
                let room = (out.len() - written)
                    .min(self.filled - self.pos)
                    .min(self.cap.saturating_sub(self.length));
                let chunk = &self.buf[self.pos..self.pos + room];
                let run = match self.state {
                    // A line break inside quotes is counted below, one by one.
                    Quoting::Quoted => memchr::memchr2(b'"', b'\n', chunk),
                    Quoting::Unquoted => memchr::memchr3(self.delimiter, b'\n', b'\r', chunk),
                    _ => Some(0),
                }
                .unwrap_or(chunk.len());
                if run > 0 {
                    out[written..written + run].copy_from_slice(&chunk[..run]);
                    written += run;
                    self.pos += run;
                    self.length += run;
                    continue;
                }
            }
            let b = self.buf[self.pos];
            self.pos += 1;
            let before = self.state;
            let (state, ends) = self.next_state(b);
            self.state = state;
            if self.skipping {
                if b == b'\n' {
                    self.dropped_lines += 1;
                }
                if ends {
                    self.end_cut();
                }
                continue;
            }
            if b == b'\n' {
                self.line += 1;
            }
            if ends {
                self.length = 0;
                self.record_start = self.line;
            } else {
                self.length += 1;
                if self.length > self.cap && self.record_start == 1 {
                    // The first record is the header: refuse now, without reading the
                    // rest of a line that may be gigabytes long.
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        HeaderTooLong,
                    ));
                }
                if self.length > self.cap {
                    // A quote just seen inside a quoted field closes it, with the line break.
                    self.cut_quoted = before == Quoting::Quoted;
                    self.skipping = true;
                    continue;
                }
            }
            out[written] = b;
            written += 1;
        }
        Ok(written)
    }
}

struct SheetRows {
    /// The sheet's name, for the log.
    name: String,
    range: calamine::Range<Data>,
    display: cells::CellDisplay,
    /// Index in `range` of the next row to read.
    next: usize,
    /// Sheet row number (1-based) of the range's first row.
    first_line: u64,
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
        return open_sheet(path, options);
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

/// Reads delimited text from any byte stream; `path` only names it in messages.
pub(crate) fn from_reader_with(
    path: &Path,
    source: Box<dyn Read>,
    options: &ReadOptions,
) -> Result<Rows, InputError> {
    let io_error = |source| InputError::Open {
        path: path.to_owned(),
        source,
    };
    let (mut prefix, mut source) = peek(source, SNIFF_BYTES).map_err(io_error)?;
    let bom = Bom::of(&prefix);
    if matches!(bom, Some(Bom::Utf16)) {
        // Excel's "Unicode text" export: transcode the whole stream to UTF-8.
        let utf8 = encoding_rs_io::DecodeReaderBytesBuilder::new()
            .bom_sniffing(true)
            .strip_bom(true)
            .build(source);
        (prefix, source) = peek(Box::new(utf8), SNIFF_BYTES).map_err(io_error)?;
    }
    let decoding = decoding(bom, options.encoding);
    let delimiter = options
        .delimiter
        .unwrap_or_else(|| detect_delimiter(&prefix));
    tracing::debug!(
        "{}: delimited text, delimiter {:?}, encoding {}",
        path.display(),
        char::from(delimiter),
        decoding.name()
    );

    let cuts = Arc::new(Mutex::new(VecDeque::new()));
    let capped = CappedRecords::new(source, MAX_RECORD_BYTES, delimiter, Arc::clone(&cuts));
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(capped);
    let mut record = csv::ByteRecord::new();
    read_header_record(&mut reader, &mut record, path)?;
    let mut text = TextRows {
        records: 0,
        replay: VecDeque::new(),
        reader,
        delimiter,
        record,
        decoding,
        cuts,
        lost_lines: 0,
    };
    text.find_header(path, options)?;
    let line = text.record.position().map(|p| p.line()).unwrap_or(1);
    if text.take_cut(line).1 {
        return Err(InputError::Parse {
            path: path.to_owned(),
            line,
            message: tr!("input-header-too-long", kib = MAX_RECORD_BYTES / 1024),
        });
    }
    let header = text
        .decode_record(0, line)
        .map_err(|failure| failure.into_error(path))?;
    let header = trimmed_header(path, header)?;
    Ok(Rows {
        path: path.to_owned(),
        header,
        source: Source::Text(Box::new(text)),
        row: 0,
        failed: false,
    })
}

/// How the file will be decoded, before any of it is: a BOM or the config decides,
/// or nothing does yet.
fn decoding(bom: Option<Bom>, encoding: Encoding) -> Decoding {
    match (bom, encoding) {
        (Some(_), _) => Decoding::Utf8 {
            chosen: Chosen::Bom,
            first_utf8: None,
        },
        (None, Encoding::Utf8) => Decoding::Utf8 {
            chosen: Chosen::Config,
            first_utf8: None,
        },
        (None, Encoding::Windows1252) => Decoding::Windows1252 { first_legacy: None },
        // Decided field by field over the whole file, never from a prefix.
        (None, Encoding::Auto) => Decoding::Undecided,
    }
}

/// Reads the header record into `record`, past Excel's `sep=;` hint line when present.
fn read_header_record<R: Read>(
    reader: &mut csv::Reader<R>,
    record: &mut csv::ByteRecord,
    path: &Path,
) -> Result<(), InputError> {
    let parse_error = |e: csv::Error| InputError::Parse {
        path: path.to_owned(),
        line: e.position().map(|p| p.line()).unwrap_or(1),
        message: describe_csv_error(&e),
    };
    let empty = || InputError::Empty {
        path: path.to_owned(),
    };
    if !reader.read_byte_record(record).map_err(parse_error)? {
        return Err(empty());
    }
    // Excel's `sep=;` hint line, when present, comes before the header.
    if record.len() <= 2
        && record.get(0).is_some_and(|f| f.starts_with(b"sep="))
        && record.iter().skip(1).all(<[u8]>::is_empty)
        && !reader.read_byte_record(record).map_err(parse_error)?
    {
        return Err(empty());
    }
    Ok(())
}

fn trimmed_header(path: &Path, header: Vec<String>) -> Result<Vec<String>, InputError> {
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_owned()).collect();
    if header.iter().all(String::is_empty) {
        return Err(InputError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(header)
}

/// Reads up to `n` bytes, and returns them with a reader that yields them again
/// before the rest of the stream.
fn peek(mut source: Box<dyn Read>, n: usize) -> std::io::Result<(Vec<u8>, Box<dyn Read>)> {
    let mut prefix = Vec::with_capacity(n.min(SNIFF_BYTES));
    (&mut source).take(n as u64).read_to_end(&mut prefix)?;
    let replay = std::io::Cursor::new(prefix.clone()).chain(source);
    Ok((prefix, Box::new(replay)))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Bom {
    Utf8,
    Utf16,
}

impl Bom {
    fn of(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            Some(Self::Utf8)
        } else if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
            Some(Self::Utf16)
        } else {
            None
        }
    }
}

/// Why a text file is read as UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chosen {
    Bom,
    Config,
    Detected,
}

/// Where a field is: `row` is the row a spreadsheet shows, 0 for the header; `column`
/// counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Place {
    row: u64,
    column: usize,
    line: u64,
}

impl Place {
    fn describe(self) -> String {
        if self.row == 0 {
            tr!("input-place-header", column = self.column)
        } else {
            tr!("input-place-row", row = self.row, column = self.column)
        }
    }
}

/// A field that cannot be decoded: where to say it is, and why.
#[derive(Debug)]
struct DecodeFailure {
    place: Place,
    reason: String,
}

/// How fields of a text file are turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Decoding {
    Utf8 {
        chosen: Chosen,
        /// The first field with multi-byte UTF-8, when detected (for messages).
        first_utf8: Option<Place>,
    },
    /// `first_legacy` is the first field that is not UTF-8, when detected; `None` when
    /// the config chose the encoding (and then no field is checked for UTF-8).
    Windows1252 { first_legacy: Option<Place> },
    /// Auto-detection saw only ASCII so far: the first field that is not
    /// ASCII decides (valid UTF-8 means UTF-8, otherwise Windows-1252).
    Undecided,
}

/// True when `bytes` hold at least one valid multi-byte UTF-8 character.
fn has_utf8_multibyte(bytes: &[u8]) -> bool {
    bytes.utf8_chunks().any(|chunk| !chunk.valid().is_ascii())
}

impl Decoding {
    fn name(self) -> String {
        match self {
            Self::Utf8 { .. } => "UTF-8".into(),
            Self::Windows1252 { .. } => "Windows-1252".into(),
            Self::Undecided => tr!("input-encoding-undecided"),
        }
    }

    /// Text of one field at `place`, or why it cannot be decoded.
    fn decode(&mut self, bytes: &[u8], place: Place) -> Result<String, DecodeFailure> {
        if bytes.is_ascii() {
            // ASCII is the same in both encodings.
            return Ok(String::from_utf8_lossy(bytes).into_owned());
        }
        let fail = |at: Place, reason: String| DecodeFailure { place: at, reason };
        match *self {
            Self::Utf8 { chosen, first_utf8 } => match std::str::from_utf8(bytes) {
                Ok(text) => Ok(text.to_owned()),
                Err(_) => Err(fail(place, utf8_failure_hint(chosen, first_utf8))),
            },
            Self::Windows1252 { first_legacy: None } => Ok(windows_1252(bytes)),
            Self::Windows1252 {
                first_legacy: Some(first),
            } => {
                if has_utf8_multibyte(bytes) {
                    return Err(fail(
                        first,
                        tr!("input-not-utf8-while", place = place.describe()),
                    ));
                }
                Ok(windows_1252(bytes))
            }
            Self::Undecided => match std::str::from_utf8(bytes) {
                Ok(text) => {
                    *self = Self::Utf8 {
                        chosen: Chosen::Detected,
                        first_utf8: Some(place),
                    };
                    Ok(text.to_owned())
                }
                Err(_) if has_utf8_multibyte(bytes) => Err(fail(place, tr!("input-part-utf8"))),
                Err(_) => {
                    tracing::info!("{}", tr!("input-reading-windows-1252"));
                    *self = Self::Windows1252 {
                        first_legacy: Some(place),
                    };
                    Ok(windows_1252(bytes))
                }
            },
        }
    }
}

/// What to tell the user when a field of a UTF-8 file cannot be decoded.
fn utf8_failure_hint(chosen: Chosen, first_utf8: Option<Place>) -> String {
    match chosen {
        Chosen::Config => tr!("input-not-utf8-config"),
        Chosen::Bom => tr!("input-not-utf8-bom"),
        Chosen::Detected => tr!(
            "input-not-utf8-while",
            place = first_utf8
                .map(Place::describe)
                .unwrap_or_else(|| tr!("input-an-earlier-field"))
        ),
    }
}

fn windows_1252(bytes: &[u8]) -> String {
    match encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes) {
        (Cow::Borrowed(text), _) => text.to_owned(),
        (Cow::Owned(text), _) => text,
    }
}

/// The delimiter that occurs most often outside quotes on the first line
/// (`,` when none does, or on a tie with `,`).
fn detect_delimiter(prefix: &[u8]) -> u8 {
    const CANDIDATES: [u8; 4] = [b',', b';', b'\t', b'|'];
    let text = prefix.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(prefix);
    let mut lines = text.split(|&b| b == b'\n');
    let mut first = lines.next().unwrap_or_default();
    // Excel's hint line names the delimiter itself.
    if let Some(rest) = first.strip_prefix(b"sep=")
        && let Some(&d) = rest.first()
        && CANDIDATES.contains(&d)
    {
        return d;
    }
    if first.is_empty() {
        first = lines.find(|l| !l.is_empty()).unwrap_or_default();
    }
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &b in first {
        if b == b'"' {
            quoted = !quoted;
        } else if !quoted && let Some(i) = CANDIDATES.iter().position(|&c| c == b) {
            counts[i] += 1;
        }
    }
    let mut best = 0;
    for i in 1..CANDIDATES.len() {
        if counts[i] > counts[best] {
            best = i;
        }
    }
    CANDIDATES[best]
}

impl TextRows {
    /// The current record's fields as text (`row` 0 is the header), or the first that
    /// cannot be decoded.
    fn decode_record(&mut self, row: u64, line: u64) -> Result<Vec<String>, DecodeFailure> {
        let mut fields = Vec::with_capacity(self.record.len());
        for (i, f) in self.record.iter().enumerate() {
            let place = Place {
                row,
                column: i + 1,
                line,
            };
            fields.push(self.decoding.decode(f, place)?);
        }
        Ok(fields)
    }
}

impl TextRows {
    /// Leaves the header in `record` (see `ReadOptions::header_row`), having read the
    /// first record: the rows above it are dropped, or, when no row of the first ones
    /// has the telephone column, the first record is the header and the others are
    /// read again as rows.
    fn find_header(&mut self, path: &Path, options: &ReadOptions) -> Result<(), InputError> {
        let parse_error = |e: csv::Error| InputError::Parse {
            path: path.to_owned(),
            line: e.position().map(|p| p.line()).unwrap_or(0),
            message: describe_csv_error(&e),
        };
        let blank = |r: &csv::ByteRecord| r.iter().all(<[u8]>::is_empty);
        if let Some(row) = options.header_row {
            let mut above = 0;
            while self.records + 1 < row {
                above += u64::from(!blank(&self.record));
                if !self
                    .reader
                    .read_byte_record(&mut self.record)
                    .map_err(parse_error)?
                {
                    return Err(InputError::NoHeaderRow {
                        path: path.to_owned(),
                        row,
                        last: self.records + 1,
                    });
                }
                self.records += 1;
            }
            rows_above_header(path, row, above);
            return Ok(());
        }
        let line = |r: &csv::ByteRecord| r.position().map(|p| p.line()).unwrap_or(0);
        let mut looked = vec![self.record.clone()];
        let mut above = 0;
        loop {
            // `record` is the last record looked at.
            let cells = self
                .decode_record(0, line(&self.record))
                .unwrap_or_default();
            if options.is_header(&cells) {
                looked.pop();
                self.records = looked.len() as u64;
                rows_above_header(path, self.records + 1, above);
                return Ok(());
            }
            above += u64::from(!blank(&self.record));
            let mut next = csv::ByteRecord::new();
            // Rows of only delimiters do not count, but are not looked through forever.
            if above >= HEADER_SEARCH_ROWS
                || looked.len() as u64 >= 50 * HEADER_SEARCH_ROWS
                || !self
                    .reader
                    .read_byte_record(&mut next)
                    .map_err(parse_error)?
            {
                break;
            }
            looked.push(next.clone());
            self.record = next;
        }
        // No row has the telephone column: the first with something in it is the
        // header (the validator says which column is missing), the others are rows.
        let first = looked.iter().position(|r| !blank(r)).unwrap_or(0);
        let mut looked = VecDeque::from(looked);
        self.records = first as u64;
        self.record = looked.drain(..=first).next_back().unwrap_or_default();
        self.replay = looked;
        Ok(())
    }

    /// For a record the CSV reader says starts on line `seen`: its true line in the
    /// file, and whether the adapter cut it.
    fn take_cut(&mut self, seen: u64) -> (u64, bool) {
        let mut cuts = self
            .cuts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Cuts of records before this one (blank lines are not records) only shift lines.
        while let Some(cut) = cuts.front().copied().filter(|c| c.start < seen) {
            self.lost_lines += cut.lost;
            cuts.pop_front();
        }
        let line = u64::try_from(seen as i64 + self.lost_lines).unwrap_or(seen);
        match cuts.front().copied().filter(|c| c.start == seen) {
            Some(cut) => {
                cuts.pop_front();
                self.lost_lines += cut.lost;
                (line, true)
            }
            None => (line, false),
        }
    }
}

impl DecodeFailure {
    fn into_error(self, path: &Path) -> InputError {
        InputError::Parse {
            path: path.to_owned(),
            line: self.place.line,
            message: format!("{}: {}", self.place.describe(), self.reason),
        }
    }
}

// ---------------------------------------------------------------------------
// Spreadsheets.

fn open_sheet(path: &Path, options: &ReadOptions) -> Result<Rows, InputError> {
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
        None => sheets::default_sheet(path, &metadata)
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
        let others: Vec<String> = sheets::other_visible(&metadata, &name)
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
    let header = trimmed_header(path, header)?;
    Ok(Rows {
        path: path.to_owned(),
        header,
        source: Source::Sheet(Box::new(sheet)),
        row: 0,
        failed: false,
    })
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

/// A cell as the text the user sees or typed.
pub(crate) fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => float_text(*f),
        Data::Bool(true) => "TRUE".into(),
        Data::Bool(false) => "FALSE".into(),
        Data::DateTime(dt) => datetime_text(dt),
        Data::DateTimeIso(s) => s
            .strip_suffix("T00:00:00")
            .unwrap_or(s)
            .replacen('T', " ", 1),
        Data::DurationIso(s) => iso_duration_text(s).unwrap_or_else(|| s.clone()),
        Data::Error(e) => e.to_string(),
    }
}

/// A float as decimal digits, never in scientific notation: integral values
/// without a fraction (`573001234567.0` is `573001234567`), others as the
/// shortest text that reads back as the same number.
pub(crate) fn float_text(f: f64) -> String {
    if f == 0.0 {
        // Also turns -0 into 0.
        return "0".into();
    }
    // Rust's `Display` for f64 never uses an exponent and drops `.0`.
    f.to_string()
}

/// An .ods time (`PT09H30M00S`, `PT33H00M00.5S`) as `09:30` (`HH:MM:SS` with seconds),
/// as times of .xlsx cells without a format are shown; `None` for other durations.
fn iso_duration_text(iso: &str) -> Option<String> {
    let rest = iso.strip_prefix("PT")?;
    let (hours, rest) = rest.split_once('H')?;
    let (minutes, rest) = rest.split_once('M')?;
    let seconds = rest.strip_suffix('S')?;
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    let seconds: f64 = seconds.parse().ok()?;
    let seconds = seconds.round() as u64;
    Some(if seconds == 0 {
        format!("{hours:02}:{minutes:02}")
    } else {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    })
}

/// Dates as `YYYY-MM-DD`, times as `HH:MM` (`HH:MM:SS` with seconds), both
/// when the cell has both; durations as `H:MM:SS`.
fn datetime_text(dt: &calamine::ExcelDateTime) -> String {
    let value = dt.as_f64();
    if dt.is_duration() || !value.is_finite() || value < 0.0 {
        let secs = (value * 86_400.0).round();
        if !secs.is_finite() {
            return float_text(value);
        }
        let secs = secs.abs() as u64;
        return format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    }
    // The time of day, rounded to the second: 10:31 is stored as 0.438194...,
    // which calamine turns into 10:30:59.999.
    let secs = ((value.fract() * 86_400.0).round() as u64).min(86_399);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let (y, mo, d, ..) = dt.to_ymd_hms_milli();
    let time = if s == 0 {
        format!("{h:02}:{mi:02}")
    } else {
        format!("{h:02}:{mi:02}:{s:02}")
    };
    let date = format!("{y:04}-{mo:02}-{d:02}");
    if value < 1.0 {
        time
    } else if (h, mi, s) == (0, 0, 0) {
        date
    } else {
        format!("{date} {time}")
    }
}

// ---------------------------------------------------------------------------

impl Rows {
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
            Source::Text(t) => tr!(
                "input-format-text",
                delimiter = format!("{:?}", char::from(t.delimiter)),
                encoding = t.decoding.name()
            ),
            Source::Sheet(sheet) => tr!("input-format-sheet", sheet = format!("{:?}", sheet.name)),
        }
    }

    /// How a text file is written: its delimiter, and whether it is Windows-1252 (known
    /// for sure once every row was read). `None` for spreadsheets.
    pub(crate) fn text_format(&self) -> Option<(u8, bool)> {
        match &self.source {
            Source::Text(t) => Some((
                t.delimiter,
                matches!(t.decoding, Decoding::Windows1252 { .. }),
            )),
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
        match &mut self.source {
            Source::Sheet(sheet) => loop {
                let (line, fields, errors, dates) = sheet.next_row()?;
                // Empty rows are not rows.
                if fields.iter().all(String::is_empty) {
                    continue;
                }
                self.row += 1;
                return Some(Ok(Record {
                    row: self.row,
                    line,
                    shown: line,
                    fields,
                    too_long: false,
                    errors,
                    dates,
                }));
            },
            Source::Text(text) => loop {
                let read = match text.replay.pop_front() {
                    Some(record) => {
                        text.record = record;
                        Ok(true)
                    }
                    None => text.reader.read_byte_record(&mut text.record),
                };
                match read {
                    Ok(false) => return None,
                    Err(e) => {
                        self.failed = true;
                        return Some(Err(InputError::Parse {
                            path: self.path.clone(),
                            line: e.position().map(|p| p.line()).unwrap_or(0),
                            message: describe_csv_error(&e),
                        }));
                    }
                    Ok(true) => {}
                }
                text.records += 1;
                // Rows with nothing in them (a blank line, or only delimiters, as a
                // spreadsheet exports its empty rows) are not rows, as in a spreadsheet.
                if text.record.iter().all(<[u8]>::is_empty) {
                    continue;
                }
                self.row += 1;
                let seen = text.record.position().map(|p| p.line()).unwrap_or(0);
                let (line, too_long) = text.take_cut(seen);
                let shown = 1 + text.records;
                return Some(match text.decode_record(shown, line) {
                    Ok(fields) => Ok(Record {
                        row: self.row,
                        line,
                        shown,
                        errors: cells::exported_errors(&fields),
                        dates: Vec::new(),
                        fields,
                        too_long,
                    }),
                    Err(failure) => {
                        self.failed = true;
                        Err(failure.into_error(&self.path))
                    }
                });
            },
        }
    }
}

fn describe_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) if io.get_ref().is_some_and(|e| e.is::<HeaderTooLong>()) => {
            io.to_string()
        }
        csv::ErrorKind::Io(io) => tr!("input-read-error", error = io),
        csv::ErrorKind::Utf8 { .. } => tr!("input-not-utf8"),
        _ => tr!("input-not-csv", error = e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = (Vec<String>, Vec<Result<Record, InputError>>);

    fn read_with(text: &[u8], options: &ReadOptions) -> Result<Read, InputError> {
        let r = from_reader_with(
            Path::new("t.csv"),
            Box::new(std::io::Cursor::new(text.to_vec())),
            options,
        )?;
        let header = r.header().to_vec();
        Ok((header, r.collect()))
    }

    fn rows(text: &[u8]) -> Result<Read, InputError> {
        read_with(text, &ReadOptions::default())
    }

    fn fields(read: &Read) -> Vec<Vec<String>> {
        read.1
            .iter()
            .map(|r| r.as_ref().expect("row").fields.clone())
            .collect()
    }

    #[test]
    fn reads_quoted_fields_with_commas_quotes_and_newlines() {
        let (header, rows) = rows(
            b"\xEF\xBB\xBFtelephone, message \n573001234567,\"Hola, \"\"Ana\"\"\nadi\xC3\xB3s\"\n593991234567,x\n\n",
        )
        .unwrap();
        assert_eq!(header, ["telephone", "message"]);
        let rows: Vec<Record> = rows.into_iter().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].fields[1], "Hola, \"Ana\"\nadiós");
        assert_eq!((rows[0].row, rows[0].line), (1, 2));
        assert_eq!((rows[1].row, rows[1].line), (2, 4));
    }

    #[test]
    fn rows_are_numbered_as_a_spreadsheet_shows_them() {
        // The header is row 1 (Excel hides the `sep=` line); a record is one row
        // whatever line breaks its fields hold; a row of only delimiters (how a
        // spreadsheet exports an empty row) is skipped but keeps its row number.
        for end in ["\n", "\r\n"] {
            let text = format!("sep=,{end}a,b{end}1,x{end},{end}2,\"y\nz\"{end}3,w{end}");
            let (_, rows) = rows(text.as_bytes()).unwrap();
            let at: Vec<(u64, u64)> = rows
                .into_iter()
                .map(Result::unwrap)
                .map(|r| (r.row, r.shown))
                .collect();
            assert_eq!(at, [(1, 2), (2, 4), (3, 5)], "ending {end:?}");
        }
    }

    #[test]
    fn ods_times_read_as_clock_times() {
        assert_eq!(iso_duration_text("PT09H00M00S").as_deref(), Some("09:00"));
        assert_eq!(
            iso_duration_text("PT15H30M05.4S").as_deref(),
            Some("15:30:05")
        );
        assert_eq!(iso_duration_text("P1DT1H"), None);
        assert_eq!(iso_duration_text("PT1H2M").as_deref(), None);
        assert_eq!(iso_duration_text("PTxH00M00S"), None);
    }

    #[test]
    fn empty_and_blank_files_are_errors() {
        assert!(matches!(rows(b""), Err(InputError::Empty { .. })));
        assert!(matches!(rows(b"\n\n"), Err(InputError::Empty { .. })));
        assert!(matches!(rows(b" , \n"), Err(InputError::Empty { .. })));
    }

    #[test]
    fn windows_1252_is_detected_and_decoded() {
        // "Teléfono;Mensaje" / "Señora Núñez: información" as Excel writes them on Spanish Windows.
        let read =
            rows(b"Nombre;Tel\xE9fono;Mensaje\r\nSe\xF1ora N\xFA\xF1ez;300 123 4567;informaci\xF3n \x80 5\r\n")
                .unwrap();
        assert_eq!(read.0, ["Nombre", "Teléfono", "Mensaje"]);
        assert_eq!(
            fields(&read),
            [["Señora Núñez", "300 123 4567", "información € 5"]]
        );
    }

    #[test]
    fn utf8_with_and_without_bom_is_kept() {
        for bom in [&b""[..], b"\xEF\xBB\xBF"] {
            let text = [bom, "nombre;teléfono\nSeñora;1\n".as_bytes()].concat();
            let read = rows(&text).unwrap();
            assert_eq!(read.0, ["nombre", "teléfono"]);
            assert_eq!(fields(&read), [["Señora", "1"]]);
        }
    }

    #[test]
    fn utf16_unicode_text_exports_are_transcoded() {
        let mut bytes = vec![0xFF, 0xFE];
        for unit in "Celular\tMensaje\r\n300 123 4567\tSeñora 👋\r\n".encode_utf16() {
            bytes.extend_from_slice(&unit.to_le_bytes());
        }
        let read = rows(&bytes).unwrap();
        assert_eq!(read.0, ["Celular", "Mensaje"]);
        assert_eq!(fields(&read), [["300 123 4567", "Señora 👋"]]);
    }

    #[test]
    fn an_ascii_start_defers_the_encoding_to_the_first_accent() {
        // More ASCII than the sniffed prefix, then a Windows-1252 byte.
        let mut text = b"telephone,message\n".to_vec();
        while text.len() < SNIFF_BYTES + 100 {
            text.extend_from_slice(b"573001234567,hola\n");
        }
        let windows = [&text[..], b"573001234567,se\xF1ora\n"].concat();
        let read = rows(&windows).unwrap();
        assert_eq!(
            read.1.last().unwrap().as_ref().unwrap().fields[1],
            "se\u{f1}ora"
        );
        // The same in UTF-8 stays UTF-8.
        let utf8 = [&text[..], "573001234567,se\u{f1}ora\n".as_bytes()].concat();
        let read = rows(&utf8).unwrap();
        assert_eq!(
            read.1.last().unwrap().as_ref().unwrap().fields[1],
            "se\u{f1}ora"
        );
    }

    #[test]
    fn invalid_utf8_in_a_utf8_file_names_the_row_and_stops() {
        // UTF-8 accents in the sniffed start, a Windows-1252 byte later: the file
        // mixes encodings, which is an error naming the row, not a guess.
        let mut text = b"telephone,message\n1,adi\xC3\xB3s\n".to_vec();
        while text.len() < SNIFF_BYTES + 100 {
            text.extend_from_slice(b"573001234567,hola\n");
        }
        text.extend_from_slice(b"2,se\xF1ora\n3,later\n");
        let (_, rows) = rows_of(&text);
        let n = rows.len();
        let err = rows[n - 1].as_ref().unwrap_err().to_string();
        // Named by the row a spreadsheet shows (the header is row 1).
        assert!(
            err.contains(&format!("row {}", n + 1))
                && err.contains("column 2")
                && err.contains("mixes encodings"),
            "{err}"
        );
        // Declared UTF-8: the same, naming the setting.
        let (_, rows) = read_with(
            b"telephone,message\n2,se\xF1ora\n",
            &ReadOptions {
                encoding: Encoding::Utf8,
                ..ReadOptions::default()
            },
        )
        .unwrap();
        let err = rows[0].as_ref().unwrap_err().to_string();
        assert!(err.contains("input.encoding"), "{err}");
    }

    proptest::proptest! {
        /// Any fields, in any order: either the file is refused, or every field's text
        /// re-encodes to exactly its bytes in the one encoding chosen for the file.
        #[test]
        fn decoding_is_refused_or_exact_in_the_chosen_encoding(
            fields in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::num::u8::ANY, 0..12),
                    proptest::strategy::Strategy::prop_map("[a-zñé👋 ]{0,8}", String::into_bytes),
                    proptest::collection::vec(0x80u8..=0xff, 1..4),
                ],
                1..12,
            )
        ) {
            use proptest::prelude::*;
            let mut decoding = Decoding::Undecided;
            let mut texts = Vec::new();
            let mut refused = false;
            for (i, f) in fields.iter().enumerate() {
                let place = Place { row: i as u64 + 1, column: 1, line: i as u64 + 2 };
                match decoding.decode(f, place) {
                    Ok(t) => texts.push(t),
                    Err(_) => { refused = true; break; }
                }
            }
            if !refused {
                for (text, bytes) in texts.iter().zip(&fields) {
                    match decoding {
                        Decoding::Windows1252 { .. } => {
                            let (back, _, bad) = encoding_rs::WINDOWS_1252.encode(text);
                            prop_assert!(!bad);
                            prop_assert_eq!(back.as_ref(), bytes.as_slice());
                        }
                        _ => prop_assert_eq!(text.as_bytes(), bytes.as_slice()),
                    }
                }
            }
        }
    }

    #[test]
    fn a_file_that_mixes_utf8_and_windows_1252_is_refused_naming_the_legacy_field() {
        for text in [
            &b"telephone,message\n573001234567,hola se\xc3\xb1ora\n573001234568,hola \xe9 mundo\n"
                [..],
            &b"telephone,message\n573001234568,hola \xe9 mundo\n573001234567,hola se\xc3\xb1ora\n"
                [..],
        ] {
            let (_, rows) = rows_of(text);
            let err = rows
                .iter()
                .find_map(|r| r.as_ref().err())
                .map(ToString::to_string)
                .unwrap_or_default();
            let legacy_row = if text.windows(2).position(|w| w == b"\xe9 ")
                < text.windows(2).position(|w| w == b"\xc3\xb1")
            {
                2
            } else {
                3
            };
            assert!(
                err.contains(&format!("row {legacy_row}, column 2"))
                    && err.contains("mixes encodings"),
                "{err}"
            );
        }
        // One field holding both.
        let (_, rows) = rows_of(b"telephone,message\n573001234567,se\xc3\xb1ora \xe9\n");
        assert!(rows[0].is_err());
    }

    /// Reads `text` through `CappedRecords` with a small cap: what comes out, and the
    /// cuts. Reading a byte at a time and in large reads must agree, and copying runs
    /// of bytes at once must give what going byte by byte gives.
    fn capped(text: &[u8], cap: usize) -> (Vec<u8>, Vec<(u64, i64)>) {
        let run = |step: usize, bulk: bool| {
            let cuts = Arc::new(Mutex::new(VecDeque::new()));
            let mut r = CappedRecords::new(
                Box::new(std::io::Cursor::new(text.to_vec())),
                cap,
                b',',
                Arc::clone(&cuts),
            );
            r.bulk = bulk;
            let (mut got, mut chunk) = (Vec::new(), vec![0; step]);
            loop {
                let n = std::io::Read::read(&mut r, &mut chunk).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&chunk[..n]);
            }
            let cuts: Vec<(u64, i64)> = cuts
                .lock()
                .unwrap()
                .iter()
                .map(|c| (c.start, c.lost))
                .collect();
            (got, cuts)
        };
        let one = run(1, false);
        for step in [1, 7, 4096] {
            assert_eq!(run(step, true), one, "step {step}");
        }
        assert_eq!(run(4096, false), one);
        one
    }

    proptest::proptest! {
        /// Any mix of quotes, delimiters and line breaks, cut or not, reads the same
        /// whether plain bytes are copied in runs or one at a time.
        #[test]
        fn runs_of_plain_bytes_read_like_single_bytes(
            text in proptest::collection::vec(
                proptest::sample::select(b"ab,\"\n\r;".to_vec()), 0..120),
            cap in 2usize..40,
        ) {
            // The header must fit, as `open` requires.
            let mut all = b"t,m\n".to_vec();
            all.extend(text);
            capped(&all, cap.max(4));
        }
    }

    #[test]
    fn long_records_are_cut_keeping_quotes_and_lines_consistent() {
        // Short records pass through untouched, quoted newlines included.
        let text = b"a,b\n\"x\ny\",2\r\n3,4";
        assert_eq!(capped(text, 20), (text.to_vec(), vec![]));
        // An unquoted long field: cut at the cap, the line ended.
        let (out, cuts) = capped(b"t,m\n1,aaaaaaaaaaaaaaaa\n2,b\n", 6);
        assert_eq!(out, b"t,m\n1,aaaa\n2,b\n");
        assert_eq!(cuts, [(2, 0)]);
        // A quoted field with line breaks: closed with a quote, the lost lines counted.
        let (out, cuts) = capped(b"t,m\n1,\"aa\n\"\"aa\naaaaaaa\"\n2,b\n", 8);
        assert_eq!(out, b"t,m\n1,\"aa\n\"\"\"\n2,b\n");
        assert_eq!(cuts, [(2, 1)]);
        // At the end of the file without a final line break.
        let (out, cuts) = capped(b"t,m\n1,aaaaaaaaaaaa", 4);
        assert_eq!(out, b"t,m\n1,aa\n");
        assert_eq!(cuts.len(), 1);
    }

    #[test]
    fn a_long_row_is_marked_and_later_rows_keep_their_true_lines() {
        let big = "x".repeat(MAX_RECORD_BYTES + 10);
        let text = format!(
            "telephone,message\n573001234567,\"{}\n{}\"\n573001234568,hola\n",
            big, big
        );
        let (_, read) = rows_of(text.as_bytes());
        let got: Vec<Record> = read.into_iter().map(Result::unwrap).collect();
        assert_eq!(got.len(), 2);
        assert!(got[0].too_long && got[0].line == 2);
        assert!(got[0].fields.iter().map(String::len).sum::<usize>() <= MAX_RECORD_BYTES);
        assert!(!got[1].too_long);
        assert_eq!(got[1].line, 4, "the line of the row after the cut");
        assert_eq!(got[1].fields, ["573001234568", "hola"]);
        // A header that long is refused.
        let err = rows(format!("{big},m\n1,2\n").as_bytes())
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("header line is longer"), "{err}");
    }

    fn rows_of(text: &[u8]) -> Read {
        rows(text).unwrap()
    }

    #[test]
    fn the_configured_encoding_overrides_detection() {
        // Valid UTF-8 ("Ã±" in Windows-1252 terms), read as Windows-1252 on request.
        let read = read_with(
            "a,b\n1,ñ\n".as_bytes(),
            &ReadOptions {
                encoding: Encoding::Windows1252,
                ..ReadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(fields(&read), [["1", "Ã±"]]);
    }

    #[test]
    fn delimiters_are_detected_from_the_header_line() {
        assert_eq!(detect_delimiter(b"a,b,c\n1;2;3;4;5\n"), b',');
        assert_eq!(detect_delimiter(b"Nombre;Tel\xE9fono;Mensaje\r\n"), b';');
        assert_eq!(detect_delimiter(b"a\tb\tc"), b'\t');
        assert_eq!(detect_delimiter(b"a|b|c\n"), b'|');
        assert_eq!(detect_delimiter(b"\"a;b\",c\n"), b',');
        assert_eq!(detect_delimiter(b"\xEF\xBB\xBFa;b"), b';');
        assert_eq!(detect_delimiter(b"telephone\n"), b',');
        assert_eq!(detect_delimiter(b"sep=;\na,b,c\n"), b';');
        let read = rows_of(b"sep=;\nCelular;Mensaje\n1;Hola, Ana\n");
        assert_eq!(read.0, ["Celular", "Mensaje"]);
        assert_eq!(fields(&read), [["1", "Hola, Ana"]]);
        // An explicit delimiter wins.
        let read = read_with(
            b"a;b,c\n1;2,3\n",
            &ReadOptions {
                delimiter: Some(b','),
                ..ReadOptions::default()
            },
        )
        .unwrap();
        assert_eq!(read.0, ["a;b", "c"]);
    }

    #[test]
    fn ragged_rows_are_kept_for_the_validator() {
        let (_, rows) = rows(b"a,b\n1\n1,2,3\n").unwrap();
        let lens: Vec<usize> = rows
            .iter()
            .map(|r| r.as_ref().unwrap().fields.len())
            .collect();
        assert_eq!(lens, [1, 3]);
    }

    #[test]
    fn numeric_cells_print_as_typed() {
        assert_eq!(float_text(573001234567.0), "573001234567");
        assert_eq!(float_text(3001234567.0), "3001234567");
        assert_eq!(float_text(1e20), "100000000000000000000");
        assert_eq!(float_text(12.5), "12.5");
        assert_eq!(float_text(0.1), "0.1");
        assert_eq!(float_text(-0.0), "0");
        assert_eq!(cell_text(&Data::Int(42)), "42");
        assert_eq!(cell_text(&Data::Bool(true)), "TRUE");
        assert_eq!(cell_text(&Data::Empty), "");
        assert_eq!(cell_text(&Data::Error(calamine::CellErrorType::NA)), "#N/A");
        assert_eq!(
            cell_text(&Data::DateTimeIso("2025-03-14T00:00:00".into())),
            "2025-03-14"
        );
    }

    #[test]
    fn dates_and_times_print_as_iso_text() {
        let dt = |v: f64| {
            cell_text(&Data::DateTime(calamine::ExcelDateTime::new(
                v,
                calamine::ExcelDateTimeType::DateTime,
                false,
            )))
        };
        assert_eq!(dt(45730.0), "2025-03-14");
        assert_eq!(dt(45730.4375), "2025-03-14 10:30");
        // 10:31 is not exact in binary: still 10:31, not 10:30:59.
        assert_eq!(dt(10.0 / 24.0 + 31.0 / 1440.0), "10:31");
        assert_eq!(dt(0.5 + 15.0 / 86400.0), "12:00:15");
        let duration =
            calamine::ExcelDateTime::new(1.5, calamine::ExcelDateTimeType::TimeDelta, false);
        assert_eq!(cell_text(&Data::DateTime(duration)), "36:00:00");
    }

    fn write_xlsx(path: &Path, sheets: &[(&str, &[&[Cell]])]) {
        let mut book = rust_xlsxwriter::Workbook::new();
        for (name, rows) in sheets {
            let sheet = book.add_worksheet();
            sheet.set_name(*name).unwrap();
            for (r, cells) in rows.iter().enumerate() {
                for (c, cell) in cells.iter().enumerate() {
                    let (r, c) = (r as u32 + 1, c as u16);
                    match cell {
                        Cell::Text(t) => sheet.write_string(r, c, *t).map(|_| ()),
                        Cell::Number(n) => sheet.write_number(r, c, *n).map(|_| ()),
                        Cell::Blank => Ok(()),
                    }
                    .unwrap();
                }
            }
        }
        book.save(path).unwrap();
    }

    enum Cell {
        Text(&'static str),
        Number(f64),
        Blank,
    }

    #[test]
    fn xlsx_sheets_are_read_with_numbers_as_digits() {
        use Cell::*;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lista.XLSX");
        let first: &[&[Cell]] = &[
            &[Text("Nombre"), Text("Celular"), Text("Mensaje")],
            &[
                Text("Señora Núñez"),
                Number(573001234567.0),
                Text("información"),
            ],
            &[Blank, Blank, Blank],
            &[Text("José"), Number(3001234567.0), Number(12.5)],
        ];
        let second: &[&[Cell]] = &[&[Text("telephone")], &[Number(34612345678.0)]];
        write_xlsx(&path, &[("Contactos", first), ("Otra hoja", second)]);
        assert!(is_spreadsheet(&path));

        let rows = open_with(&path, &ReadOptions::default()).unwrap();
        assert_eq!(rows.header(), ["Nombre", "Celular", "Mensaje"]);
        let records: Vec<Record> = rows.map(Result::unwrap).collect();
        // The blank sheet row is skipped; `line` is the sheet row (the header is on row 2).
        assert_eq!(
            records,
            [
                Record {
                    row: 1,
                    line: 3,
                    shown: 3,
                    fields: vec![
                        "Señora Núñez".into(),
                        "573001234567".into(),
                        "información".into()
                    ],
                    too_long: false,
                    errors: Vec::new(),
                    dates: Vec::new(),
                },
                Record {
                    row: 2,
                    line: 5,
                    shown: 5,
                    // Numbers as shown in Colombia (the default `[input] locale`).
                    fields: vec!["José".into(), "3001234567".into(), "12,5".into()],
                    too_long: false,
                    errors: Vec::new(),
                    dates: Vec::new(),
                },
            ]
        );

        let options = ReadOptions {
            sheet: Some("otra hoja".into()),
            ..ReadOptions::default()
        };
        let rows = open_with(&path, &options).unwrap();
        assert_eq!(rows.header(), ["telephone"]);
        assert_eq!(
            rows.map(Result::unwrap).next().unwrap().fields,
            ["34612345678"]
        );

        let options = ReadOptions {
            sheet: Some("Hoja1".into()),
            ..ReadOptions::default()
        };
        let err = open_with(&path, &options).unwrap_err().to_string();
        assert!(
            err.contains("\"Hoja1\"") && err.contains("\"Contactos\", \"Otra hoja\""),
            "{err}"
        );
    }

    #[test]
    fn a_text_file_with_a_spreadsheet_name_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("lista.xlsx");
        std::fs::write(&path, "telephone,message\n1,2\n").unwrap();
        let err = open(&path).unwrap_err().to_string();
        assert!(err.contains("spreadsheet") && err.contains(".csv"), "{err}");
        let err = open(&dir.path().join("missing.xlsx")).unwrap_err();
        assert!(matches!(err, InputError::Open { .. }), "{err}");
    }
}
