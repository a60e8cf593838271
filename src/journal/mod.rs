/*!
The results file and the journal beside it: what happened to every row, and
what is needed to resume safely.

- `<results>` is the user's record: one CSV line per data row, appended and
  flushed as each outcome is known, then rewritten sorted by row (atomically)
  when the run ends.
- `<results>.journal` is the tool's memory, one event a line: a `run` at the
  start of every real run (what the campaign is: message kind, template,
  variables, connector, the list, its row count and the command line), an
  `intent` before a request leaves (synced), a `leaving` when the request of an
  intent written ahead leaves (see `AheadIntents`), a `done` with the full
  outcome after. It is keyed by content (telephone + message), so `--resume`
  matches rows even in an edited or re-sorted list, and a row with an intent
  but no outcome (the process was killed mid-request) is `unknown`, never
  unsent. The
  journal is also what is locked, so two runs can never share a results file.

Each journal line is `<checksum> <json>`, the checksum being the first 64 bits
of the SHA-256 of the JSON, in hex. A line whose checksum does not match is
damage, never a guess; only the last line may be torn (a crash mid-write, or
a tail the file system zero-filled after a power cut), and is then cut off.
Since a torn tail can hide what was attempted, `--resume` also reads the
results file: every row it records as `sent`, `unknown` or `failed` must be
known to the journal (by its telephone); if one is not, the journal is
damaged (emptied, cut short, zero-filled, or another list's) and the resume
is refused before anything is sent. Lines without a checksum, written by
earlier versions, are still read.

Statuses only move forward: a row that had an outcome (`unknown`, `failed`)
and is planned for a retry is remembered, and if this run ends without
attempting it (refused, stopped, out of quota) the earlier outcome is what
is recorded again, never `not_sent`.

Every text cell written to the CSV is neutralized against spreadsheet formula
injection (a leading `=`, `+`, `-`, `@`, tab or CR gets a `'`).
Its parts: `run` (what a run is, compared on resume), `events` (the journal's
lines), `prior` (reading a journal back: for resume, the ledger, `reconcile` and
`report`), `recorder` (writing both files during a run), `results` (the results
file's format, read and rewritten), `naming` (where the files are) and `commit`
(intents that share one sync).
*/

mod commit;
mod events;
pub(crate) mod naming;
mod prior;
mod recorder;
mod results;
mod run;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use crate::atomic::tmp_path;
use crate::outcome::Status;
pub(crate) use naming::journal_path;
pub(crate) use prior::{JournalView, Prior, Unsettled, journal_view, told_index};
pub(crate) use recorder::{Recorder, RecorderOptions};
pub(crate) use results::{neutralize, read, read_each};
pub(crate) use run::{RunInfo, boot_id};

use crate::tr;

#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    #[error("{}", tr!("results-already-exists", path = .path))]
    AlreadyExists { path: PathBuf },
    #[error("{}", tr!("results-not-a-dry-run", path = .path))]
    NotADryRun { path: PathBuf },
    #[error("{}", tr!("results-locked", path = .path))]
    Locked { path: PathBuf },
    #[error("{}", tr!("results-no-journal", results = .results, journal = .journal))]
    NoJournal { results: PathBuf, journal: PathBuf },
    #[error("{}", tr!("results-bad-journal", path = .path, line = *.line, message = .message))]
    BadJournal {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{}", tr!("results-read", path = .path, message = .message))]
    Read { path: PathBuf, message: String },
    #[error("{}", tr!(
        "results-disagree",
        journal = .journal,
        results = .results,
        row = *.row,
        telephone = .telephone,
        status = .status.as_str()
    ))]
    Disagree {
        journal: PathBuf,
        results: PathBuf,
        row: u64,
        telephone: String,
        status: Status,
    },
    #[error("{}", tr!("results-other-list", path = .path, list = .list, suggestion = .suggestion))]
    OtherList {
        path: PathBuf,
        list: PathBuf,
        suggestion: PathBuf,
    },
    #[error("{}", tr!("results-symlink", path = .path))]
    Symlink { path: PathBuf },
    #[error("{}", tr!("results-is-the-input", path = .path))]
    IsTheInput { path: PathBuf },
    #[error("{}", tr!("results-write", path = .path, error = .source))]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn write_error(path: &Path) -> impl Fn(std::io::Error) -> ResultsError + '_ {
    move |source| ResultsError::Write {
        path: path.to_owned(),
        source,
    }
}

/// The command that continues a run from its command line `args` (without the program
/// name): every flag carries over, with `--resume` and `--results`, and without
/// `--retry-failed` / `--retry-unknown`: rows a run retried and that came back `failed`
/// or `unknown` again are not re-sent unless asked again.
pub(crate) fn resume_command(
    args: impl IntoIterator<Item = std::ffi::OsString>,
    results: &Path,
) -> String {
    let mut words = vec!["wolkvox-dispatch".to_owned()];
    let (mut resume, mut has_results, mut skip_value) = (false, false, false);
    for arg in args {
        let text = arg.to_string_lossy().into_owned();
        if std::mem::take(&mut skip_value) {
            continue;
        }
        match text.as_str() {
            "--retry-failed" | "--retry-unknown" => continue,
            // A pilot's limit is not the rest's.
            "--limit" => {
                skip_value = true;
                continue;
            }
            t if t.starts_with("--limit=") => continue,
            "--resume" => resume = true,
            t if t == "--results" || t.starts_with("--results=") => has_results = true,
            _ => {}
        }
        words.push(crate::text::quote_text(&text));
    }
    if !has_results {
        words.push("--results".into());
        words.push(crate::text::quote(results));
    }
    if !resume {
        words.push("--resume".into());
    }
    words.join(" ")
}

/// Refuses a results path that would write through a symbolic link (the results file,
/// its journal or the temporary file of the final rewrite), or onto the input list.
/// Checked before any file is created.
pub(crate) fn check_target(results: &Path, input: &Path) -> Result<(), ResultsError> {
    let tmp = tmp_path(results);
    for path in [results, &journal_path(results), &tmp] {
        if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(ResultsError::Symlink {
                path: path.to_owned(),
            });
        }
    }
    let same = match (std::fs::canonicalize(input), std::fs::canonicalize(results)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if same {
        return Err(ResultsError::IsTheInput {
            path: results.to_owned(),
        });
    }
    Ok(())
}
