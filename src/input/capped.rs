/*!
The cap on a text file's records: `CappedRecords` passes the bytes through to the
CSV reader unchanged, except that a record (a line, with the line breaks inside its
quoted fields) longer than `MAX_RECORD_BYTES` is cut as it streams past, in constant
memory, and reported as a `Cut` so its row comes out marked `too_long` with its true
line. A header over the cap is refused at once (`HeaderTooLong`).
*/

use std::collections::VecDeque;
use std::io::Read;
use std::sync::{Arc, Mutex};

use super::MAX_RECORD_BYTES;
use crate::tr;

/// A record `CappedRecords` cut: the line it starts on as the CSV reader sees it, and
/// how many line breaks it dropped from it.
#[derive(Debug, Clone, Copy)]
pub(super) struct Cut {
    pub(super) start: u64,
    pub(super) lost: i64,
}

/// The error `CappedRecords` reads as when the header itself is over the cap.
#[derive(Debug)]
pub(super) struct HeaderTooLong;

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
pub(super) struct CappedRecords {
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
    pub(super) fn new(
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

#[cfg(test)]
mod tests {
    use super::*;

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
}
