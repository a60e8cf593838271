/*!
The results file: its columns, how a line is written (every cell escaped and neutralized
against formula injection), read back (even while a run appends to it), and rewritten
whole, sorted by row, at the end of a run.
*/

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use super::ResultsError;
use crate::outcome::{Outcome, Status};

/// The results file's columns, in order. Scripts depend on them.
pub(crate) const COLUMNS: [&str; 10] = [
    "row",
    "telephone",
    "status",
    "http_status",
    "code",
    "error",
    "msg",
    "attempts",
    "elapsed_ms",
    "finished_at",
];

/// Neutralizes a cell a spreadsheet would read as a formula (OWASP CSV injection).
pub(crate) fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

pub(super) fn write_row<W: Write>(w: &mut csv::Writer<W>, o: &Outcome) -> csv::Result<()> {
    let http = o.http_status.map(|s| s.to_string()).unwrap_or_default();
    // Untrusted text (an invalid row's cell, a server's words) keeps no raw control
    // character: a results file may be printed with `cat` or `column`.
    // Borrowed unless something had to change: this runs for every outcome.
    let escape = crate::text::escape;
    let (telephone, code) = (escape(&o.telephone), escape(&o.code));
    let (error, msg) = (escape(&o.error), escape(&o.msg));
    w.write_record([
        o.row.to_string().as_str(),
        &neutralize(&telephone),
        o.status.as_str(),
        &http,
        &neutralize(&code),
        &neutralize(&error),
        &neutralize(&msg),
        &o.attempts.to_string(),
        &o.elapsed_ms.to_string(),
        &o.finished_at,
    ])
}

pub(super) fn csv_error(path: &Path) -> impl Fn(csv::Error) -> ResultsError + '_ {
    move |e| match e.into_kind() {
        csv::ErrorKind::Io(source) => ResultsError::Write {
            path: path.to_owned(),
            source,
        },
        other => ResultsError::Write {
            path: path.to_owned(),
            source: std::io::Error::other(format!("{other:?}")),
        },
    }
}

/// Reads a results file written by this tool (for dry-run checks and reports).
///
/// It may be read while a run is still appending to it, without any lock: a last line
/// without its newline, or one that does not parse, is taken as still being written and
/// ignored. Damage anywhere else is an error. Lines are returned as they are in the file
/// (during a resumed run a row can appear twice; the later line is the newer outcome).
pub(crate) fn read(path: &Path) -> Result<Vec<Outcome>, ResultsError> {
    let mut out = Vec::new();
    read_each(path, |o| out.push(o))?;
    Ok(out)
}

/// `read`, an outcome at a time, without the whole file in memory (a million rows'
/// results for a workbook).
pub(crate) fn read_each(path: &Path, mut each: impl FnMut(Outcome)) -> Result<(), ResultsError> {
    use std::io::{Read, Seek};
    let bad = |message: String| ResultsError::Read {
        path: path.to_owned(),
        message,
    };
    let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
    // A torn last line: read only up to the last newline there is now.
    let complete = complete_lines(&mut file).map_err(|e| bad(e.to_string()))?;
    file.rewind().map_err(|e| bad(e.to_string()))?;
    let lines = std::io::BufReader::with_capacity(1 << 16, file.take(complete));
    let mut reader = csv::Reader::from_reader(lines);
    let header = reader.headers().map_err(|e| bad(e.to_string()))?.clone();
    if header.iter().ne(COLUMNS.iter().copied()) {
        return Err(bad(format!(
            "not a wolkvox-dispatch results file (its header is {:?})",
            header.iter().collect::<Vec<_>>().join(",")
        )));
    }
    let mut records = reader.deserialize::<Outcome>().peekable();
    while let Some(record) = records.next() {
        match record {
            Ok(o) => each(o),
            // The last line may be cut inside a quoted field that holds a newline.
            Err(_) if records.peek().is_none() => {}
            Err(e) => return Err(bad(e.to_string())),
        }
    }
    Ok(())
}

/// How many bytes of `file` end with its last newline (0 without one).
fn complete_lines(file: &mut std::fs::File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut chunk = vec![0; 1 << 16];
    while end > 0 {
        let start = end.saturating_sub(chunk.len() as u64);
        let len = usize::try_from(end - start).unwrap_or(chunk.len());
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut chunk[..len])?;
        if let Some(at) = chunk[..len].iter().rposition(|&b| b == b'\n') {
            return Ok(start + at as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// Rewrites the results file `path` with `finals`, whole or not at all.
pub(super) fn rewrite(path: &Path, finals: &[Outcome]) -> Result<(), ResultsError> {
    crate::atomic::replace(path, |out| {
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        let to_io = |e: csv::Error| match e.into_kind() {
            csv::ErrorKind::Io(e) => e,
            other => std::io::Error::other(format!("{other:?}")),
        };
        w.write_record(COLUMNS).map_err(to_io)?;
        for o in finals {
            write_row(&mut w, o).map_err(to_io)?;
        }
        w.flush()
    })
    .map_err(|(path, source)| ResultsError::Write { path, source })
}

/// One outcome per row, sorted by row: the last one recorded for each.
pub(super) fn finals(mut outcomes: Vec<Outcome>) -> Vec<Outcome> {
    // Stable sort keeps recording order within a row, so the last one is final.
    outcomes.sort_by_key(|o| o.row);
    let mut finals: Vec<Outcome> = Vec::with_capacity(outcomes.len());
    for o in outcomes {
        match finals.last_mut() {
            Some(last) if last.row == o.row => *last = o,
            _ => finals.push(o),
        }
    }
    finals
}

pub(super) fn count_finals(finals: &[Outcome]) -> HashMap<Status, u64> {
    let mut counts = HashMap::new();
    for o in finals {
        *counts.entry(o.status).or_default() += 1;
    }
    counts
}
