/*!
Reads a contact list into rows: a header and, for each data row, its fields as
text with its row number (1 = the first row after the header) and the line it
starts on, so every later message can say where a problem is.

Rows are streamed, never all held here: `validate` of a very large file runs in
constant memory. A file that cannot be read as a table at all is an
`InputError` (the run sends nothing); a row that is merely wrong is the
validator's business.
*/

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is empty: expected a header row (e.g. telephone,message) followed by the contacts"
    )]
    Empty { path: PathBuf },
    #[error("{path}: has a header but no data rows: nothing to send")]
    NoRows { path: PathBuf },
    #[error("{path}, line {line}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error(
        "{path}: more than {max_rows} data rows: split the list, or raise the limit with --max-rows or limits.max_rows"
    )]
    TooManyRows { path: PathBuf, max_rows: u64 },
    #[error("{path}: {message}")]
    Header { path: PathBuf, message: String },
}

/// One data row as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// 1-based data row number (the header is not a row).
    pub row: u64,
    /// Line of the file the row starts on (1-based), for messages.
    pub line: u64,
    pub fields: Vec<String>,
}

/// A readable table: its header, then its rows on iteration.
pub struct Rows {
    path: PathBuf,
    header: Vec<String>,
    reader: csv::Reader<Box<dyn Read>>,
    record: csv::ByteRecord,
    row: u64,
    failed: bool,
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

/// Opens a contact list and reads its header.
pub fn open(path: &Path) -> Result<Rows, InputError> {
    let file = File::open(path).map_err(|source| InputError::Open {
        path: path.to_owned(),
        source,
    })?;
    from_reader(path, Box::new(BufReader::with_capacity(64 * 1024, file)))
}

/// Reads a table from any byte stream; `path` only names it in messages.
pub fn from_reader(path: &Path, source: Box<dyn Read>) -> Result<Rows, InputError> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(source);
    let mut record = csv::ByteRecord::new();
    let parse_error = |e: csv::Error| InputError::Parse {
        path: path.to_owned(),
        line: e.position().map(|p| p.line()).unwrap_or(1),
        message: describe_csv_error(&e),
    };
    if !reader.read_byte_record(&mut record).map_err(parse_error)? {
        return Err(InputError::Empty {
            path: path.to_owned(),
        });
    }
    let header = decode_fields(&record).map_err(|field| InputError::Parse {
        path: path.to_owned(),
        line: 1,
        message: format!(
            "header column {} is not valid UTF-8: save the file as UTF-8 (Excel: \"CSV UTF-8\")",
            field + 1
        ),
    })?;
    let header: Vec<String> = header.into_iter().map(|h| h.trim().to_owned()).collect();
    if header.iter().all(String::is_empty) {
        return Err(InputError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(Rows {
        path: path.to_owned(),
        header,
        reader,
        record,
        row: 0,
        failed: false,
    })
}

impl Rows {
    pub fn header(&self) -> &[String] {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Rows read so far.
    pub fn rows_read(&self) -> u64 {
        self.row
    }
}

impl Iterator for Rows {
    type Item = Result<Record, InputError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        loop {
            match self.reader.read_byte_record(&mut self.record) {
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
            // Blank lines (a single empty field) are not rows.
            if self.record.len() == 1 && self.record.get(0).is_some_and(|f| f.is_empty()) {
                continue;
            }
            self.row += 1;
            let line = self.record.position().map(|p| p.line()).unwrap_or(0);
            return Some(match decode_fields(&self.record) {
                Ok(fields) => Ok(Record {
                    row: self.row,
                    line,
                    fields,
                }),
                Err(field) => {
                    self.failed = true;
                    Err(InputError::Parse {
                        path: self.path.clone(),
                        line,
                        message: format!(
                            "row {}, column {}: not valid UTF-8: save the file as UTF-8 (Excel: \"CSV UTF-8\")",
                            self.row,
                            field + 1
                        ),
                    })
                }
            });
        }
    }
}

/// Fields as UTF-8 text, or the index of the first field that is not.
fn decode_fields(record: &csv::ByteRecord) -> Result<Vec<String>, usize> {
    record
        .iter()
        .enumerate()
        .map(|(i, f)| std::str::from_utf8(f).map(str::to_owned).map_err(|_| i))
        .collect()
}

fn describe_csv_error(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Io(io) => format!("read error: {io}"),
        csv::ErrorKind::Utf8 { .. } => {
            "not valid UTF-8: save the file as UTF-8 (Excel: \"CSV UTF-8\")".into()
        }
        _ => format!("not a readable CSV table ({e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Read = (Vec<String>, Vec<Result<Record, InputError>>);

    fn rows(text: &[u8]) -> Result<Read, InputError> {
        let r = from_reader(
            Path::new("t.csv"),
            Box::new(std::io::Cursor::new(text.to_vec())),
        )?;
        let header = r.header().to_vec();
        Ok((header, r.collect()))
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
    fn empty_and_blank_files_are_errors() {
        assert!(matches!(rows(b""), Err(InputError::Empty { .. })));
        assert!(matches!(rows(b"\n\n"), Err(InputError::Empty { .. })));
        assert!(matches!(rows(b" , \n"), Err(InputError::Empty { .. })));
    }

    #[test]
    fn invalid_utf8_names_the_row_and_stops() {
        let (_, rows) = rows(b"telephone,message\n1,ok\n2,se\xF1ora\n3,later\n").unwrap();
        assert_eq!(rows.len(), 2);
        let err = rows[1].as_ref().unwrap_err().to_string();
        assert!(err.contains("row 2") && err.contains("UTF-8"), "{err}");
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
}
