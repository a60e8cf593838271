/*!
Delimited text files, streamed: the stream is peeked to guess the delimiter (and
transcoded first when it is UTF-16), records go through `CappedRecords` to the CSV
reader, the header is found (past Excel's `sep=` line and any rows above it), and
each record's fields are decoded one at a time (`decode`).
*/

use std::collections::VecDeque;
use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::capped::{CappedRecords, Cut, HeaderTooLong};
use super::decode::{Bom, Chosen, DecodeFailure, Decoding, Place};
use super::{
    Encoding, HEADER_SEARCH_ROWS, InputError, MAX_RECORD_BYTES, ReadOptions, Record, Rows, Source,
    cells, rows_above_header,
};
use crate::tr;

/// How much of a text file is looked at to guess its encoding and delimiter.
pub(super) const SNIFF_BYTES: usize = 64 * 1024;

/// A delimited text file being read.
pub(super) struct TextRows {
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
    Rows::new(path, header, Source::Text(Box::new(text)))
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
    let to_error = |e: csv::Error| parse_error(path, &e, 1);
    let empty = || InputError::Empty {
        path: path.to_owned(),
    };
    if !reader.read_byte_record(record).map_err(to_error)? {
        return Err(empty());
    }
    // Excel's `sep=;` hint line, when present, comes before the header.
    if record.len() <= 2
        && record.get(0).is_some_and(|f| f.starts_with(b"sep="))
        && record.iter().skip(1).all(<[u8]>::is_empty)
        && !reader.read_byte_record(record).map_err(to_error)?
    {
        return Err(empty());
    }
    Ok(())
}

/// Reads up to `n` bytes, and returns them with a reader that yields them again
/// before the rest of the stream.
fn peek(mut source: Box<dyn Read>, n: usize) -> std::io::Result<(Vec<u8>, Box<dyn Read>)> {
    let mut prefix = Vec::with_capacity(n.min(SNIFF_BYTES));
    (&mut source).take(n as u64).read_to_end(&mut prefix)?;
    let replay = std::io::Cursor::new(prefix.clone()).chain(source);
    Ok((prefix, Box::new(replay)))
}

/// The delimiter that occurs most often outside quotes on the first line
/// (`,` when none does, or on a tie with `,`).
pub(super) fn detect_delimiter(prefix: &[u8]) -> u8 {
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
        let to_error = |e: csv::Error| parse_error(path, &e, 0);
        let blank = |r: &csv::ByteRecord| r.iter().all(<[u8]>::is_empty);
        if let Some(row) = options.header_row {
            let mut above = 0;
            while self.records + 1 < row {
                above += u64::from(!blank(&self.record));
                if !self
                    .reader
                    .read_byte_record(&mut self.record)
                    .map_err(to_error)?
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
                || !self.reader.read_byte_record(&mut next).map_err(to_error)?
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

impl TextRows {
    /// How the file is being read, for the log: its delimiter and encoding.
    pub(super) fn format(&self) -> String {
        tr!(
            "input-format-text",
            delimiter = format!("{:?}", char::from(self.delimiter)),
            encoding = self.decoding.name()
        )
    }

    /// Its delimiter, and whether it is Windows-1252 (see `Rows::text_format`).
    pub(super) fn text_format(&self) -> (u8, bool) {
        (
            self.delimiter,
            matches!(self.decoding, Decoding::Windows1252 { .. }),
        )
    }

    /// The next data row, numbered after `row` (which it counts), or the error that
    /// ends the file.
    pub(super) fn next_record(
        &mut self,
        path: &Path,
        row: &mut u64,
    ) -> Option<Result<Record, InputError>> {
        loop {
            let read = match self.replay.pop_front() {
                Some(record) => {
                    self.record = record;
                    Ok(true)
                }
                None => self.reader.read_byte_record(&mut self.record),
            };
            match read {
                Ok(false) => return None,
                Err(e) => return Some(Err(parse_error(path, &e, 0))),
                Ok(true) => {}
            }
            self.records += 1;
            // Rows with nothing in them (a blank line, or only delimiters, as a
            // spreadsheet exports its empty rows) are not rows, as in a spreadsheet.
            if self.record.iter().all(<[u8]>::is_empty) {
                continue;
            }
            *row += 1;
            let seen = self.record.position().map(|p| p.line()).unwrap_or(0);
            let (line, too_long) = self.take_cut(seen);
            let shown = 1 + self.records;
            return Some(match self.decode_record(shown, line) {
                Ok(fields) => Ok(Record {
                    row: *row,
                    line,
                    shown,
                    errors: cells::exported_errors(&fields),
                    dates: Vec::new(),
                    fields,
                    too_long,
                }),
                Err(failure) => Err(failure.into_error(path)),
            });
        }
    }
}

/// A CSV reader's error as an `InputError`, at its line (`unknown_line` when it has none).
fn parse_error(path: &Path, e: &csv::Error, unknown_line: u64) -> InputError {
    InputError::Parse {
        path: path.to_owned(),
        line: e.position().map(|p| p.line()).unwrap_or(unknown_line),
        message: describe_csv_error(e),
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
