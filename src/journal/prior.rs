/*!
Reading a journal back: what earlier runs recorded (`Prior`, for `--resume`, the ledger
and `reconcile`), checked against the results file beside it, and the view `report`
takes of it without locking it (`JournalView`).
*/

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek};
use std::path::Path;

use super::events::{AheadIntents, Event, parse_line};
use super::run::{RunInfo, boot_id};
use super::{ResultsError, journal_path, read};
use crate::outcome::{Outcome, Status, Told};
use crate::tr;

/// What earlier runs recorded, by content key.
#[derive(Debug, Default)]
pub(crate) struct Prior {
    /// The last outcome recorded for each key.
    pub(crate) done: HashMap<String, Outcome>,
    /// Keys whose last event is an intent: a request may have left with no answer recorded.
    pub(crate) interrupted: HashMap<String, u64>,
    /// The last run's description (`None` in journals of earlier versions).
    pub(crate) last_run: Option<RunInfo>,
    /// The telephone of each key with an intent (for the cross-check), and rows of
    /// intents without a telephone (earlier versions).
    intent_telephones: HashMap<String, String>,
    intent_rows: std::collections::HashSet<u64>,
    /// When each report API was last called (RFC 3339), by API name.
    pub(crate) last_query: HashMap<String, String>,
    /// When the run of each key's first intent started (RFC 3339): no request for it
    /// left before (what `reconcile` compares report dates with).
    pub(crate) first_attempt_run: HashMap<String, String>,
}

/// A row whose message may or may not have gone out: recorded `unknown`, or with an
/// intent and no outcome (the process was killed mid-request).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unsettled {
    pub(crate) key: String,
    pub(crate) row: u64,
    pub(crate) telephone: String,
    /// When its last attempt ended, if an outcome was recorded.
    pub(crate) finished_at: Option<String>,
    /// The outcome recorded, if any (to keep its attempts and codes).
    pub(crate) outcome: Option<Outcome>,
}

impl Prior {
    /// Reads a journal. A torn last line (the process was killed mid-write) is ignored;
    /// damage anywhere else is an error, since guessing could send a message twice.
    #[cfg(test)]
    pub(crate) fn load(path: &Path, file: &mut File) -> Result<Self, ResultsError> {
        Self::load_to_end(path, file).map(|(prior, ..)| prior)
    }

    /// `load`, plus the length of the journal up to the end of its last whole line, and
    /// whether that line lacks its newline.
    pub(super) fn load_to_end(
        path: &Path,
        file: &mut File,
    ) -> Result<(Self, u64, bool), ResultsError> {
        let read_error = |e: std::io::Error| ResultsError::Read {
            path: path.to_owned(),
            message: e.to_string(),
        };
        file.rewind().map_err(read_error)?;
        let mut prior = Prior::default();
        let mut ahead = AheadIntents::default();
        let mut reader = BufReader::new(&*file);
        let mut buf = Vec::new();
        let (mut number, mut offset, mut whole, mut unterminated) = (0usize, 0u64, 0u64, false);
        // A bad line is forgiven only if it is the last one (torn by a crash mid-write).
        let mut bad: Option<(usize, String)> = None;
        let mut run_started: Option<String> = None;
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf).map_err(read_error)?;
            if n == 0 {
                break;
            }
            number += 1;
            offset += n as u64;
            let terminated = buf.last() == Some(&b'\n');
            let line = buf.strip_suffix(b"\n").unwrap_or(&buf);
            if line.iter().all(u8::is_ascii_whitespace) {
                if terminated {
                    whole = offset;
                }
                continue;
            }
            if let Some((line, message)) = bad.take() {
                return Err(ResultsError::BadJournal {
                    path: path.to_owned(),
                    line,
                    message,
                });
            }
            let event = parse_line(line);
            if let Ok(event) = &event {
                ahead.event(event);
            }
            match event {
                Ok(Event::Run(info)) => {
                    run_started = Some(info.started_at.clone());
                    prior.last_run = Some(*info);
                }
                Ok(Event::Intent {
                    key,
                    row,
                    telephone,
                    ..
                }) => {
                    match telephone {
                        Some(t) => {
                            prior.intent_telephones.insert(key.clone(), t);
                        }
                        None => {
                            prior.intent_rows.insert(row);
                        }
                    }
                    if let Some(started) = &run_started {
                        prior
                            .first_attempt_run
                            .entry(key.clone())
                            .or_insert_with(|| started.clone());
                    }
                    prior.interrupted.insert(key, row);
                }
                Ok(Event::Done { key, outcome }) => {
                    prior.interrupted.remove(&key);
                    prior.done.insert(key, outcome);
                }
                Ok(Event::Query { api, at }) => {
                    prior.last_query.insert(api, at);
                }
                Ok(Event::Leaving { .. }) => {}
                Err(e) => {
                    bad = Some((number, e.text()));
                    continue;
                }
            }
            whole = offset;
            unterminated = !terminated;
        }
        for key in ahead.never_left(boot_id().as_deref()) {
            prior.interrupted.remove(&key);
        }
        Ok((prior, whole, unterminated))
    }

    /// What the journal beside `results` records, read without locking it (`None`
    /// when there is no journal). For the ledger, after a run ends.
    pub(crate) fn of_results(results: &Path) -> Result<Option<Self>, ResultsError> {
        let path = journal_path(results);
        let mut file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(ResultsError::Read {
                    path,
                    message: e.to_string(),
                });
            }
        };
        Self::load_to_end(&path, &mut file).map(|(prior, ..)| Some(prior))
    }

    /// The telephone of the request in flight under `key` (journals of earlier
    /// versions did not record it).
    pub(crate) fn intent_telephone(&self, key: &str) -> Option<&str> {
        self.intent_telephones.get(key).map(String::as_str)
    }

    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.done.is_empty() && self.interrupted.is_empty()
    }

    /// Every row that may or may not have been delivered, by row, each key once: a row
    /// recorded `unknown` whose retry was then cut off in flight is one row, its last
    /// attempt unfinished (no `finished_at`), its recorded outcome kept.
    pub(crate) fn unsettled(&self) -> Vec<Unsettled> {
        let mut out: Vec<Unsettled> = self
            .done
            .iter()
            .filter(|(key, o)| o.status == Status::Unknown && !self.interrupted.contains_key(*key))
            .map(|(key, o)| Unsettled {
                key: key.clone(),
                row: o.row,
                telephone: o.telephone.clone(),
                finished_at: Some(o.finished_at.clone()),
                outcome: Some(o.clone()),
            })
            .collect();
        out.extend(self.interrupted.iter().map(|(key, &row)| {
            Unsettled {
                key: key.clone(),
                row,
                telephone: self.intent_telephones.get(key).cloned().unwrap_or_default(),
                finished_at: None,
                outcome: self
                    .done
                    .get(key)
                    .filter(|o| o.status == Status::Unknown)
                    .cloned(),
            }
        }));
        out.sort_by(|a, b| (a.row, &a.key).cmp(&(b.row, &b.key)));
        out
    }

    /// Refuses a journal that does not know a row the results file records as sent,
    /// unknown or failed (see the module doc).
    pub(super) fn cross_check(&self, journal: &Path, results: &Path) -> Result<(), ResultsError> {
        if !results.exists() {
            return Ok(());
        }
        let lines = match read(results) {
            Ok(lines) => lines,
            Err(e) => {
                // The journal is the authority; a damaged results file hides nothing it knows.
                tracing::warn!(
                    "{}",
                    tr!("results-unreadable-journal-alone", error = e.to_string())
                );
                return Ok(());
            }
        };
        // What the journal says last of each telephone's messages; a request in flight
        // (an intent with no outcome) counts as `unknown`.
        let mut latest: HashMap<&str, Vec<Status>> = HashMap::new();
        for o in self.done.values() {
            latest.entry(&o.telephone).or_default().push(o.status);
        }
        for key in self.interrupted.keys() {
            if let Some(t) = self.intent_telephones.get(key) {
                latest.entry(t).or_default().push(Status::Unknown);
            }
        }
        // The journal is written first, so it may be ahead of the results file, never
        // behind: a row the results record `sent` is `sent` in the journal; one recorded
        // `failed` or `unknown` was at least attempted there.
        let unknown_to_journal = lines.into_iter().find(|o| {
            let known = latest
                .get(o.telephone.as_str())
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            let attempted =
                |s: &Status| matches!(s, Status::Sent | Status::Unknown | Status::Failed);
            let covered = match o.status {
                Status::Sent => known.contains(&Status::Sent),
                Status::Unknown | Status::Failed => known.iter().any(attempted),
                _ => true,
            };
            !covered && !self.intent_rows.contains(&o.row)
        });
        match unknown_to_journal {
            Some(o) => Err(ResultsError::Disagree {
                journal: journal.to_owned(),
                results: results.to_owned(),
                row: o.row,
                telephone: o.telephone,
                status: o.status,
            }),
            None => Ok(()),
        }
    }
}

/// What `report` reads from a results file's journal, without locking it.
#[derive(Debug, Default)]
pub(crate) struct JournalView {
    /// The last run's description (`None` for journals of earlier versions).
    pub(crate) last_run: Option<RunInfo>,
    /// A `send` holds the journal's lock right now.
    pub(crate) in_progress: bool,
    /// Requests with an intent and no outcome yet, as (row, telephone): in flight now,
    /// or cut off by a kill (then `unknown`, whatever the results file says).
    pub(crate) in_flight: Vec<(u64, String)>,
    /// The telephone of every message the journal last recorded `sent` or `unknown`
    /// (one entry a message): what went out in the campaign, whatever rows the list
    /// has now.
    pub(crate) went_out: Vec<String>,
}

/// Reads the journal beside `results`, if there is one. Damaged lines are skipped: a
/// report only describes, it never decides what is sent.
pub(crate) fn journal_view(results: &Path) -> Option<JournalView> {
    let path = journal_path(results);
    let bytes = std::fs::read(&path).ok()?;
    let mut last_run = None;
    let mut in_flight: HashMap<String, (u64, String)> = HashMap::new();
    let mut last: HashMap<String, (Status, String)> = HashMap::new();
    let mut ahead = AheadIntents::default();
    for line in bytes.split(|&b| b == b'\n') {
        let event = parse_line(line);
        if let Ok(event) = &event {
            ahead.event(event);
        }
        match event {
            Ok(Event::Run(info)) => last_run = Some(*info),
            Ok(Event::Intent {
                key,
                row,
                telephone,
                ..
            }) => {
                in_flight.insert(key, (row, telephone.unwrap_or_default()));
            }
            Ok(Event::Done { key, outcome }) => {
                in_flight.remove(&key);
                last.insert(key, (outcome.status, outcome.telephone));
            }
            _ => {}
        }
    }
    for key in ahead.never_left(boot_id().as_deref()) {
        in_flight.remove(&key);
    }
    let went_out = last
        .into_values()
        .filter(|(status, _)| matches!(status, Status::Sent | Status::Unknown))
        .map(|(_, telephone)| telephone)
        .collect();
    let mut in_flight: Vec<(u64, String)> = in_flight.into_values().collect();
    in_flight.sort();
    // A shared lock is refused while a run holds the exclusive one; it is released at
    // once, when `file` is dropped.
    let in_progress = File::open(&path)
        .map(|file| {
            matches!(
                file.try_lock_shared(),
                Err(std::fs::TryLockError::WouldBlock)
            )
        })
        .unwrap_or(false);
    Some(JournalView {
        last_run,
        in_progress,
        in_flight,
        went_out,
    })
}

/// Whose words each row's `error` and `msg` are, as the journal beside a results file
/// records them (`outcome::Told`), for showing a results file to a person: by row, with
/// a fingerprint of the outcome they were recorded with, so a results line is given the
/// words of its own outcome only.
#[derive(Debug, Default)]
pub(crate) struct ToldIndex {
    by_row: HashMap<u64, (u64, Told)>,
}

impl ToldIndex {
    /// Gives `o` (read from the results file) whose words its texts are, when the journal
    /// recorded them with this very outcome; otherwise `o` is left as it is (its texts
    /// are then read back from the English).
    pub(crate) fn attach(&self, o: &mut Outcome) {
        if let Some((print, told)) = self.by_row.get(&o.row)
            && *print == fingerprint(o)
        {
            o.told = told.clone();
        }
    }
}

/// What identifies an outcome's line: a results line and the journal's `done` event
/// written from the same outcome have the same.
fn fingerprint(o: &Outcome) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (
        &o.telephone,
        o.status,
        &o.code,
        &o.error,
        &o.msg,
        &o.finished_at,
    )
        .hash(&mut hasher);
    hasher.finish()
}

/// Reads whose words the outcomes are from the journal beside `results` (empty when
/// there is none, or it records none: an earlier version's). Damaged lines are skipped:
/// this only chooses how a text is shown.
pub(crate) fn told_index(results: &Path) -> ToldIndex {
    let mut index = ToldIndex::default();
    let Ok(file) = File::open(journal_path(results)) else {
        return index;
    };
    for line in BufReader::new(file).split(b'\n') {
        let Ok(line) = line else { break };
        if let Ok(Event::Done { outcome, .. }) = parse_line(&line) {
            let print = fingerprint(&outcome);
            index.by_row.insert(outcome.row, (print, outcome.told));
        }
    }
    index
}
