/*!
The `Recorder`: opens (and locks) a run's results file and journal, writes each event
and outcome as it arrives, and ends the run with the sorted rewrite. Statuses only move
forward (see `remember_earlier`).
*/

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::events::{Event, checksum};
use super::prior::Prior;
use super::results::{COLUMNS, count_finals, csv_error, finals, read, rewrite, write_row};
use super::run::RunInfo;
use super::{ResultsError, commit, journal_path, write_error};
use crate::outcome::{Outcome, Status};
use crate::validate::Job;

/// How the recorder should open its files.
#[derive(Debug, Clone)]
pub(crate) struct RecorderOptions {
    pub(crate) results: PathBuf,
    pub(crate) dry_run: bool,
    pub(crate) resume: bool,
}

struct Inner {
    results: csv::Writer<File>,
    journal: Option<File>,
    /// The final line of each row of this run, for the sorted rewrite at the end.
    outcomes: Vec<Outcome>,
    /// Earlier outcomes of rows this run may retry, by key (see `remember_earlier`).
    earlier: HashMap<String, Outcome>,
    /// Outcomes received that could not be written (counted, not in the results file).
    unwritten: Vec<Outcome>,
}

/// Writes outcomes as they arrive. Shared by every worker; each line is written whole
/// under one lock, so an abrupt exit never leaves half a line.
pub(crate) struct Recorder {
    path: PathBuf,
    journal_path: PathBuf,
    /// Held for the whole run: the OS lock is what keeps a second run out. For a real
    /// run it is a second handle on the journal.
    _lock_file: File,
    inner: Mutex<Inner>,
    /// This run created the results file (not a resume): `discard` may remove it.
    created: bool,
    /// Numbers and syncs intents, so that concurrent intents share one sync (real runs
    /// only).
    pub(super) commit: Option<commit::GroupCommit>,
}

fn ends_with_newline(file: &mut File, len: u64) -> std::io::Result<bool> {
    use std::io::{Read, SeekFrom};
    file.seek(SeekFrom::Start(len.saturating_sub(1)))?;
    let mut last = [0u8];
    file.read_exact(&mut last)?;
    Ok(last[0] == b'\n')
}

/// Makes a new file's directory entry durable, so a power cut right after the journal
/// is created cannot make it vanish. Best effort: not every platform can open a directory.
fn sync_parent(path: &Path) {
    #[cfg(unix)]
    if let Some(dir) = crate::atomic::directory_of(path)
        && let Err(e) = File::open(dir).and_then(|d| d.sync_all())
    {
        tracing::debug!("cannot sync {}: {e}", dir.display());
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Takes an exclusive OS lock without waiting.
fn try_lock(file: &File, path: &Path) -> Result<(), ResultsError> {
    match file.try_lock() {
        Ok(()) => Ok(()),
        Err(std::fs::TryLockError::WouldBlock) => Err(ResultsError::Locked {
            path: path.to_owned(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(ResultsError::Write {
            path: path.to_owned(),
            source,
        }),
    }
}

impl Recorder {
    /// Opens (and locks) the results of a run. For a real run it also returns what
    /// earlier runs recorded (empty unless resuming).
    pub(crate) fn open(options: &RecorderOptions) -> Result<(Self, Prior), ResultsError> {
        let path = options.results.clone();
        let journal_path = journal_path(&path);
        if options.dry_run {
            return Self::open_dry_run(path, journal_path).map(|r| (r, Prior::default()));
        }
        // Both checked before the journal is opened, since opening creates it: a refused
        // run must leave nothing behind, or an empty journal beside earlier results would
        // later look like "nothing was attempted" and resend every row.
        let journal_existed = journal_path.exists();
        let results_exist = path.exists();
        // A run in progress holds the journal's lock: say that first, whatever else holds.
        let existing = if journal_existed {
            let file = Self::open_journal(&journal_path)?;
            try_lock(&file, &path)?;
            Some(file)
        } else {
            None
        };
        if !options.resume && results_exist {
            return Err(ResultsError::AlreadyExists { path });
        }
        if options.resume && results_exist && !journal_existed {
            // Deleted: what was attempted can no longer be known.
            return Err(ResultsError::NoJournal {
                results: path,
                journal: journal_path,
            });
        }
        let mut journal = match existing {
            Some(file) => file,
            None => {
                let file = Self::open_journal(&journal_path)?;
                try_lock(&file, &path)?;
                sync_parent(&journal_path);
                file
            }
        };
        let prior = if options.resume {
            // An empty journal is fine: every request is preceded by an intent, so none left.
            let (prior, whole, unterminated) = Prior::load_to_end(&journal_path, &mut journal)?;
            // Before anything is changed: a refused resume leaves both files as they were.
            prior.cross_check(&journal_path, &path)?;
            // A torn last line (a crash mid-write) is cut off, or this run's first event
            // would be glued to it and the journal damaged for the next resume.
            let len = journal
                .metadata()
                .map_err(write_error(&journal_path))?
                .len();
            if whole < len {
                journal.set_len(whole).map_err(write_error(&journal_path))?;
            }
            if unterminated {
                journal
                    .write_all(b"\n")
                    .map_err(write_error(&journal_path))?;
            }
            prior
        } else {
            let journal_len = journal
                .metadata()
                .map_err(write_error(&journal_path))?
                .len();
            if journal_len > 0 {
                return Err(ResultsError::AlreadyExists { path });
            }
            Prior::default()
        };
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(write_error(&path))?;
        let len = file.metadata().map_err(write_error(&path))?.len();
        let new = len == 0;
        if !new && !ends_with_newline(&mut file, len).map_err(write_error(&path))? {
            // Killed mid-line: end that line, so this run's lines start on their own.
            file.write_all(b"\n").map_err(write_error(&path))?;
        }
        let lock = journal.try_clone().map_err(write_error(&journal_path))?;
        let mut recorder = Self::with_files(path, journal_path, lock, file, Some(journal), new)?;
        recorder.created = !options.resume;
        Ok((recorder, prior))
    }

    fn open_journal(path: &Path) -> Result<File, ResultsError> {
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(write_error(path))
    }

    fn open_dry_run(path: PathBuf, journal_path: PathBuf) -> Result<Self, ResultsError> {
        if journal_path.exists() {
            return Err(ResultsError::NotADryRun { path });
        }
        // An empty file is a dry run killed before it wrote its header.
        if std::fs::metadata(&path).is_ok_and(|m| m.len() > 0) {
            let earlier =
                read(&path).map_err(|_| ResultsError::NotADryRun { path: path.clone() })?;
            let real = earlier.iter().any(|o| {
                !matches!(
                    o.status,
                    Status::DryRun
                        | Status::Invalid
                        | Status::Duplicate
                        | Status::Suppressed
                        | Status::Held
                )
            });
            if real {
                return Err(ResultsError::NotADryRun { path });
            }
        }
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(write_error(&path))?;
        try_lock(&file, &path)?;
        file.set_len(0).map_err(write_error(&path))?;
        let lock = file.try_clone().map_err(write_error(&path))?;
        let mut recorder = Self::with_files(path, journal_path, lock, file, None, true)?;
        // Its file is this run's alone (an earlier dry run's was just emptied): a refused
        // dry run removes it rather than record rows `not_sent` in it.
        recorder.created = true;
        Ok(recorder)
    }

    fn with_files(
        path: PathBuf,
        journal_path: PathBuf,
        lock: File,
        file: File,
        journal: Option<File>,
        write_header: bool,
    ) -> Result<Self, ResultsError> {
        let mut results = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        if write_header {
            results.write_record(COLUMNS).map_err(csv_error(&path))?;
            results.flush().map_err(write_error(&path))?;
        }
        let commit = match &journal {
            Some(_) => Some(
                lock.try_clone()
                    .map(commit::GroupCommit::new)
                    .map_err(write_error(&journal_path))?,
            ),
            None => None,
        };
        Ok(Self {
            path,
            journal_path,
            _lock_file: lock,
            inner: Mutex::new(Inner {
                results,
                journal,
                outcomes: Vec::new(),
                earlier: HashMap::new(),
                unwritten: Vec::new(),
            }),
            created: false,
            commit,
        })
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A worker that panicked mid-write cannot leave the data inconsistent in a
        // way that matters more than losing the rest of the run.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn journal_event(&self, inner: &mut Inner, event: &Event) -> Result<(), ResultsError> {
        if let Some(journal) = inner.journal.as_mut() {
            let json = serde_json::to_vec(event).map_err(|e| ResultsError::Write {
                path: self.journal_path.clone(),
                source: std::io::Error::other(e),
            })?;
            let mut line = checksum(&json).into_bytes();
            line.push(b' ');
            line.extend_from_slice(&json);
            line.push(b'\n');
            journal
                .write_all(&line)
                .map_err(write_error(&self.journal_path))?;
        }
        Ok(())
    }

    /// Records a call to a report API (see `Event::Query`), synced.
    pub(crate) fn note_query(&self, api: &str, at: &str) -> Result<(), ResultsError> {
        let mut inner = self.lock();
        self.journal_event(
            &mut inner,
            &Event::Query {
                api: api.to_owned(),
                at: at.to_owned(),
            },
        )?;
        if let Some(journal) = &inner.journal {
            journal
                .sync_data()
                .map_err(write_error(&self.journal_path))?;
        }
        Ok(())
    }

    /// Keeps a row an earlier run recorded, unchanged, in the final rewrite (it is
    /// already in the file and the journal).
    pub(crate) fn carry(&self, outcome: Outcome) {
        self.lock().outcomes.push(outcome);
    }

    /// Records, before the first request for `job` is written, that it may be sent, and
    /// returns once that is on disk: even a power cut then cannot make a request look
    /// unsent. ~0.2 ms, against ~100 ms or more per request to Wolkvox. `done` events are
    /// not synced: losing one makes the row `unknown` on resume, which never sends twice.
    /// For tests, from any thread; the dispatcher uses `intent_async`.
    #[cfg(test)]
    pub(crate) fn intent(&self, job: &Job) -> Result<(), ResultsError> {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .map_err(write_error(&self.journal_path))?
            .block_on(self.intent_async(job, false))
    }

    /// `intent` for the dispatcher: while another worker's sync runs, this one waits
    /// parked, so the runtime's threads go on with other rows and the intents written
    /// meanwhile share the next sync. `ahead`: written while the worker's previous
    /// request is in flight; `leaving` must then be called before the request leaves.
    pub(crate) async fn intent_async(&self, job: &Job, ahead: bool) -> Result<(), ResultsError> {
        match (self.write_intent(job, ahead)?, &self.commit) {
            (Some(number), Some(commit)) => commit
                .wait_async(number, ahead)
                .await
                .map_err(write_error(&self.journal_path)),
            _ => Ok(()),
        }
    }

    /// Writes the intent; its number for the group commit, for a run with a journal.
    fn write_intent(&self, job: &Job, ahead: bool) -> Result<Option<u64>, ResultsError> {
        let mut inner = self.lock();
        self.journal_event(
            &mut inner,
            &Event::Intent {
                key: job.key.clone(),
                row: job.row,
                telephone: Some(job.telephone.clone()),
                ahead,
            },
        )?;
        // Numbered under the journal's lock, so numbers follow the order of the writes.
        Ok(match (&inner.journal, &self.commit) {
            (Some(_), Some(commit)) => Some(commit.written()),
            _ => None,
        })
    }

    /// Marks that the request of a row whose intent was written ahead is about to leave.
    /// Written, not synced (see `AheadIntents`): a few microseconds.
    pub(crate) fn leaving(&self, job: &Job) -> Result<(), ResultsError> {
        let mut inner = self.lock();
        self.journal_event(
            &mut inner,
            &Event::Leaving {
                key: job.key.clone(),
            },
        )
    }

    /// Starts a real run in the journal: what the campaign is (see `RunInfo`). Durable
    /// with the first intent, which is synced.
    pub(crate) fn begin_run(&self, info: &RunInfo) -> Result<(), ResultsError> {
        let mut inner = self.lock();
        self.journal_event(&mut inner, &Event::Run(Box::new(info.clone())))
    }

    /// Remembers the outcome an earlier run recorded for a row this run may retry: if
    /// the row ends this run without being attempted (or only with answers that prove
    /// this attempt was not delivered), that outcome stays, never `not_sent`.
    pub(crate) fn remember_earlier(&self, key: &str, outcome: Outcome) {
        self.lock().earlier.insert(key.to_owned(), outcome);
    }

    /// The status of the earlier outcome remembered for `key` (see `remember_earlier`):
    /// what a row held back from this run keeps.
    pub(crate) fn earlier_status(&self, key: &str) -> Option<Status> {
        self.lock().earlier.get(key).map(|o| o.status)
    }

    /// `outcome`, or the earlier outcome it may not overwrite (see `remember_earlier`).
    fn moving_forward(inner: &Inner, outcome: Outcome, key: Option<&str>) -> Outcome {
        let Some(earlier) = key.and_then(|k| inner.earlier.get(k)) else {
            return outcome;
        };
        let keep = match outcome.status {
            Status::NotSent => true,
            // This run's attempts were turned away, but the first may have been delivered.
            Status::Failed => earlier.status == Status::Unknown,
            _ => false,
        };
        if !keep {
            return outcome;
        }
        let mut kept = earlier.clone();
        kept.row = outcome.row;
        // English, as every `msg` of the results file (`report` shows it translated).
        kept.say(crate::said!(
            "msg-retried",
            earlier = earlier.msg_arg(),
            msg = outcome.msg_arg()
        ));
        kept.attempts = earlier.attempts.saturating_add(outcome.attempts);
        kept
    }

    /// Records a row's outcome: journal first (the tool's memory), then the results line.
    /// `key` is given for rows that were (or could have been) sent.
    pub(crate) fn record(&self, outcome: Outcome, key: Option<&str>) -> Result<(), ResultsError> {
        let mut inner = self.lock();
        let outcome = Self::moving_forward(&inner, outcome, key);
        let journaled = match key {
            Some(key) => self.journal_event(
                &mut inner,
                &Event::Done {
                    key: key.to_owned(),
                    outcome: outcome.clone(),
                },
            ),
            None => Ok(()),
        };
        let written = journaled.and_then(|()| {
            write_row(&mut inner.results, &outcome).map_err(csv_error(&self.path))?;
            inner.results.flush().map_err(write_error(&self.path))
        });
        // Kept even when it could not be written (a full disk): the summary counts it,
        // and the synced intent makes the row `unknown` on resume, never unsent. Kept out
        // of the final results file, which must never be ahead of the journal.
        if written.is_ok() {
            inner.outcomes.push(outcome);
        } else {
            inner.unwritten.push(outcome);
        }
        written
    }

    /// Counts per status of each row's last outcome so far: what `finish` would report,
    /// for when it cannot write the final file.
    pub(crate) fn final_counts(&self) -> HashMap<Status, u64> {
        let inner = self.lock();
        let mut all = inner.outcomes.clone();
        all.extend(inner.unwritten.iter().cloned());
        count_finals(&finals(all))
    }

    /// Blocks every further write; held by a hard exit so no line is cut in half.
    pub(crate) fn freeze(&self) -> MutexGuard<'_, impl Sized> {
        self.lock()
    }

    /// True when this run created the results file (it is not a resumed run).
    pub(crate) fn is_new(&self) -> bool {
        self.created
    }

    /// Removes the results file and journal of a run refused before any request (the
    /// quota check), so the same command can be run again without --resume. Files of an
    /// earlier run are never removed: for a resumed run this does nothing.
    pub(crate) fn discard(self) -> Result<(), ResultsError> {
        if !self.created {
            return Ok(());
        }
        let inner = self
            .inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        drop(inner);
        for path in [&self.path, &self.journal_path] {
            // A dry run has no journal.
            match std::fs::remove_file(path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(write_error(path)(e));
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Ends the run: rewrites the results sorted by row, one line per row (the last
    /// one recorded wins), atomically. Returns the counts per status.
    pub(crate) fn finish(self) -> Result<HashMap<Status, u64>, ResultsError> {
        let inner = self
            .inner
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner);
        let Inner {
            mut results,
            journal,
            mut outcomes,
            ..
        } = inner;
        results.flush().map_err(write_error(&self.path))?;
        if let Some(j) = &journal {
            j.sync_data().map_err(write_error(&self.journal_path))?;
        }
        drop(results);
        let finals = finals(std::mem::take(&mut outcomes));
        let counts = count_finals(&finals);
        let rewritten = rewrite(&self.path, &finals);
        rewritten.map(|()| counts)
    }
}
