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
*/

mod commit;
pub(crate) mod naming;

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

pub(crate) use naming::journal_path;
use naming::tmp_path;

// The vocabulary of outcomes lives in its own leaf; stages that record or read results
// through the journal may keep naming it from here.
pub(crate) use crate::outcome::{Outcome, Status, now};
use crate::tr;
use crate::validate::Job;

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

/// What a run is: recorded at its start, compared on `--resume`, read by `report`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunInfo {
    /// `free`, `rendered` (a `--template` renders each message) or `hsm`.
    pub(crate) kind: String,
    /// The HSM template given by `--hsm` / `hsm.template_name` (else per row).
    #[serde(default)]
    pub(crate) hsm_template: Option<String>,
    /// The columns of the HSM variables, in order.
    #[serde(default)]
    pub(crate) hsm_vars: Vec<String>,
    /// Where the `--template` of rendered messages came from.
    #[serde(default)]
    pub(crate) template: Option<String>,
    /// `api.connector_id`, the connector of rows without their own.
    #[serde(default)]
    pub(crate) connector_id: Option<String>,
    /// The list as given, and as an absolute path (to tell two lists apart).
    pub(crate) input: PathBuf,
    #[serde(default)]
    pub(crate) input_absolute: PathBuf,
    #[serde(default)]
    pub(crate) input_bytes: u64,
    /// SHA-256 of the header's names, in hex: enough to recognise the list.
    #[serde(default)]
    pub(crate) header_digest: String,
    /// Data rows in the list when the run started.
    pub(crate) rows: u64,
    /// The command line of the run, without the program name (never a token: tokens
    /// are never flags).
    #[serde(default)]
    pub(crate) args: Vec<String>,
    #[serde(default)]
    pub(crate) tool_version: String,
    #[serde(default)]
    pub(crate) started_at: String,
    /// The machine's boot (Linux's boot id) when the run started: within the same boot
    /// a journal line written is on disk for the next run even if not synced (see
    /// `AheadIntents`); after a reboot (a power cut) only synced lines are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) boot_id: Option<String>,
}

/// This boot's id, where the system gives one.
pub(crate) fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|id| id.trim().to_owned())
        .filter(|id| !id.is_empty())
}

/// Intents written ahead (while the worker's previous request was in flight) whose
/// request has not been seen leaving. Before an ahead row's request leaves, a `leaving`
/// event is written, not synced: within the boot that wrote it the journal holds it
/// (a killed process loses no written line), so an ahead intent without it, read in
/// the same boot, is a request that never left, and the row is simply not attempted.
/// Read after a reboot, the `leaving` line may have been lost to the power cut: the row
/// stays `unknown`, as any intent without an outcome.
#[derive(Debug, Default)]
struct AheadIntents {
    /// The boot of the run being read.
    run_boot: Option<String>,
    /// Key -> the boot of the run that wrote its ahead intent.
    pending: HashMap<String, Option<String>>,
}

impl AheadIntents {
    fn event(&mut self, event: &Event) {
        match event {
            Event::Run(info) => self.run_boot.clone_from(&info.boot_id),
            Event::Intent {
                key, ahead: true, ..
            } => {
                self.pending.insert(key.clone(), self.run_boot.clone());
            }
            Event::Intent { key, .. } | Event::Leaving { key } | Event::Done { key, .. } => {
                self.pending.remove(key);
            }
            Event::Query { .. } => {}
        }
    }

    /// Keys whose ahead intent certainly never became a request, read in boot `now`.
    fn never_left(self, now: Option<&str>) -> impl Iterator<Item = String> {
        self.pending
            .into_iter()
            .filter(move |(_, boot)| now.is_some() && boot.as_deref() == now)
            .map(|(key, _)| key)
    }
}

impl RunInfo {
    /// What in `self` (this run) differs from `recorded` in a way that makes it another
    /// campaign. Editing the list (rows added, reordered, messages changed) does not.
    pub(crate) fn differences(&self, recorded: &RunInfo) -> Vec<String> {
        let mut out = Vec::new();
        if self.kind != recorded.kind
            || self.hsm_template != recorded.hsm_template
            || self.hsm_vars != recorded.hsm_vars
            || self.template != recorded.template
        {
            out.push(tr!(
                "campaign-differs-kind",
                recorded = recorded.describe_kind(),
                this = self.describe_kind()
            ));
        }
        if self.connector_id != recorded.connector_id {
            out.push(tr!(
                "campaign-differs-connector",
                recorded = show_option(recorded.connector_id.as_deref()),
                this = show_option(self.connector_id.as_deref())
            ));
        }
        if !recorded.input_absolute.as_os_str().is_empty()
            && self.input_absolute != recorded.input_absolute
        {
            out.push(tr!(
                "campaign-differs-list",
                recorded = recorded.input_absolute.display(),
                this = self.input_absolute.display()
            ));
        }
        out
    }

    /// The kind of message, in words.
    /// The value the run's command line gave `flag` (`--flag V` or `--flag=V`).
    pub(crate) fn arg_value(&self, flag: &str) -> Option<String> {
        let prefix = format!("{flag}=");
        self.args.iter().enumerate().find_map(|(i, a)| {
            a.strip_prefix(&prefix)
                .map(str::to_owned)
                .or_else(|| (a == flag).then(|| self.args.get(i + 1).cloned()).flatten())
        })
    }

    pub(crate) fn describe_kind(&self) -> String {
        match self.kind.as_str() {
            "hsm" => {
                let name = self
                    .hsm_template
                    .as_deref()
                    .map(|n| tr!("campaign-hsm-named", name = format!("{n:?}")))
                    .unwrap_or_else(|| tr!("campaign-hsm-column"));
                if self.hsm_vars.is_empty() {
                    name
                } else {
                    tr!(
                        "campaign-with-variables",
                        name = name,
                        vars = self.hsm_vars.join(",")
                    )
                }
            }
            "rendered" => match self.template.as_deref() {
                Some(template) => tr!("campaign-rendered", template = template),
                None => tr!("campaign-rendered-unnamed"),
            },
            _ => tr!("campaign-free"),
        }
    }
}

fn show_option(value: Option<&str>) -> String {
    value
        .map(|v| format!("{v:?}"))
        .unwrap_or_else(|| tr!("campaign-not-set"))
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Event {
    Run(Box<RunInfo>),
    Intent {
        key: String,
        row: u64,
        /// Absent in journals of earlier versions.
        #[serde(default)]
        telephone: Option<String>,
        /// Written while the worker's previous request was in flight (see `AheadIntents`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ahead: bool,
    },
    /// The request of a row whose intent was written ahead is about to leave.
    Leaving {
        key: String,
    },
    Done {
        key: String,
        outcome: Outcome,
    },
    /// A call to one of Wolkvox's report APIs (`reconcile`), which Wolkvox asks to be
    /// made at most every 5 minutes: when, to keep to that across runs.
    Query {
        api: String,
        at: String,
    },
}

/// The checksum of a journal line's JSON: the first 64 bits of its SHA-256, in hex.
fn checksum(json: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(json);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// One journal line's event, checking its checksum (lines of earlier versions have none).
fn parse_line(line: &[u8]) -> Result<Event, String> {
    let json = if line.first() == Some(&b'{') {
        line
    } else {
        let (sum, json) = line
            .iter()
            .position(|&b| b == b' ')
            .map(|i| (&line[..i], &line[i + 1..]))
            .ok_or("no checksum")?;
        if sum != checksum(json).as_bytes() {
            return Err("checksum mismatch".into());
        }
        json
    };
    serde_json::from_slice(json).map_err(|e| e.to_string())
}

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
    fn load_to_end(path: &Path, file: &mut File) -> Result<(Self, u64, bool), ResultsError> {
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
                    bad = Some((number, e));
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
    fn cross_check(&self, journal: &Path, results: &Path) -> Result<(), ResultsError> {
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

/// Neutralizes a cell a spreadsheet would read as a formula (OWASP CSV injection).
pub(crate) fn neutralize(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.as_bytes().first() {
        Some(b'=' | b'+' | b'-' | b'@' | b'\t' | b'\r') => format!("'{cell}").into(),
        _ => cell.into(),
    }
}

fn write_row<W: Write>(w: &mut csv::Writer<W>, o: &Outcome) -> csv::Result<()> {
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

fn csv_error(path: &Path) -> impl Fn(csv::Error) -> ResultsError + '_ {
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
    commit: Option<commit::GroupCommit>,
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
        kept.msg = format!("{} (retried: {})", earlier.msg, outcome.msg)
            .trim_start()
            .to_owned();
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

/// Rewrites the results file `path` with `finals`, whole or not at all.
fn rewrite(path: &Path, finals: &[Outcome]) -> Result<(), ResultsError> {
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
fn finals(mut outcomes: Vec<Outcome>) -> Vec<Outcome> {
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

fn count_finals(finals: &[Outcome]) -> HashMap<Status, u64> {
    let mut counts = HashMap::new();
    for o in finals {
        *counts.entry(o.status).or_default() += 1;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(row: u64, key: &str) -> Job {
        Job::for_test(row, key)
    }

    fn opts(dir: &Path, dry_run: bool, resume: bool) -> RecorderOptions {
        RecorderOptions {
            results: dir.join("r.csv"),
            dry_run,
            resume,
        }
    }

    /// Why opening `r.csv` in `dir` (not a dry run) is refused.
    fn refused(dir: &tempfile::TempDir, resume: bool) -> ResultsError {
        match open(dir.path(), false, resume) {
            Ok(_) => panic!("opened"),
            Err(e) => e,
        }
    }

    /// Opens `r.csv` in `dir`.
    fn open(dir: &Path, dry_run: bool, resume: bool) -> Result<(Recorder, Prior), ResultsError> {
        Recorder::open(&opts(dir, dry_run, resume))
    }

    #[test]
    fn an_empty_dry_run_file_is_a_killed_dry_run_and_a_refused_one_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.csv");
        std::fs::write(&results, "").unwrap();
        let (rec, _) = open(dir.path(), true, false).unwrap();
        rec.discard().unwrap();
        assert!(!results.exists() && !journal_path(&results).exists());
    }

    #[test]
    fn neutralizes_formula_cells() {
        assert_eq!(neutralize("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        for c in ["+1", "-1", "@SUM", "\tx", "\rx"] {
            assert!(neutralize(c).starts_with('\''), "{c:?}");
        }
        assert_eq!(neutralize("573001234567"), "573001234567");
        assert_eq!(neutralize(""), "");
    }

    #[test]
    fn results_are_rewritten_sorted_with_one_line_per_row() {
        let dir = tempfile::tempdir().unwrap();
        let (rec, prior) = open(dir.path(), false, false).unwrap();
        assert!(prior.is_empty());
        rec.intent(&job(2, "k2")).unwrap();
        rec.record(
            Outcome::local(2, "573001234562", Status::Sent, "ok"),
            Some("k2"),
        )
        .unwrap();
        rec.record(Outcome::local(1, "=1+1", Status::Invalid, "bad"), None)
            .unwrap();
        // Lines are on disk before the run ends.
        let early = std::fs::read_to_string(dir.path().join("r.csv")).unwrap();
        assert_eq!(early.lines().count(), 3, "{early}");
        let counts = rec.finish().unwrap();
        assert_eq!(counts[&Status::Sent], 1);
        let rows = read(&dir.path().join("r.csv")).unwrap();
        assert_eq!(rows.iter().map(|o| o.row).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(rows[0].telephone, "'=1+1");
    }

    #[test]
    fn an_existing_run_is_refused_without_resume_and_resumed_with_it() {
        let dir = tempfile::tempdir().unwrap();
        let (rec, _) = open(dir.path(), false, false).unwrap();
        rec.intent(&job(1, "k1")).unwrap();
        rec.record(Outcome::local(1, "t", Status::Sent, ""), Some("k1"))
            .unwrap();
        rec.intent(&job(2, "k2")).unwrap();
        // Simulates a crash: k2 has an intent and no outcome.
        drop(rec);
        assert!(matches!(
            refused(&dir, false),
            ResultsError::AlreadyExists { .. }
        ));
        let (_rec, prior) = open(dir.path(), false, true).unwrap();
        assert_eq!(prior.done["k1"].status, Status::Sent);
        assert_eq!(prior.interrupted.get("k2"), Some(&2));
    }

    #[test]
    fn a_row_recorded_unknown_then_cut_off_in_flight_is_unsettled_once() {
        let dir = tempfile::tempdir().unwrap();
        let (rec, _) = open(dir.path(), false, false).unwrap();
        rec.intent(&job(1, "k1")).unwrap();
        rec.record(Outcome::local(1, "t", Status::Unknown, ""), Some("k1"))
            .unwrap();
        // A --retry-unknown run killed with its request in flight.
        rec.intent(&job(1, "k1")).unwrap();
        drop(rec);
        let (_rec, prior) = open(dir.path(), false, true).unwrap();
        let unsettled = prior.unsettled();
        assert_eq!(unsettled.len(), 1, "{unsettled:?}");
        assert_eq!(
            unsettled[0].finished_at, None,
            "its last attempt is unfinished"
        );
        assert_eq!(
            unsettled[0].outcome.as_ref().map(|o| o.status),
            Some(Status::Unknown)
        );
    }

    #[test]
    fn resume_needs_the_journal_but_not_a_non_empty_one() {
        let dir = tempfile::tempdir().unwrap();
        let (rec, _) = open(dir.path(), false, false).unwrap();
        rec.record(Outcome::local(1, "t", Status::Invalid, ""), None)
            .unwrap();
        drop(rec);
        // Nothing was attempted: the journal is empty, and resuming is safe.
        let (rec, prior) = open(dir.path(), false, true).unwrap();
        assert!(prior.is_empty());
        drop(rec);
        std::fs::remove_file(journal_path(&dir.path().join("r.csv"))).unwrap();
        assert!(matches!(
            refused(&dir, true),
            ResultsError::NoJournal { .. }
        ));
    }

    #[test]
    fn a_refused_new_run_leaves_nothing_but_a_resumed_one_keeps_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.csv");
        let (rec, _) = open(dir.path(), false, false).unwrap();
        rec.record(Outcome::local(1, "t", Status::Invalid, ""), None)
            .unwrap();
        rec.discard().unwrap();
        assert!(!results.exists() && !journal_path(&results).exists());
        // Nothing is left in the way of the same command without --resume.
        let (rec, _) = open(dir.path(), false, false).unwrap();
        rec.finish().unwrap();
        let (rec, _) = open(dir.path(), false, true).unwrap();
        rec.discard().unwrap();
        assert!(results.exists() && journal_path(&results).exists());
    }

    #[test]
    fn a_refused_open_creates_no_journal_that_a_later_resume_would_trust() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("r.csv");
        std::fs::write(&results, "row,telephone\n").unwrap();
        let journal = journal_path(&results);
        assert!(matches!(
            refused(&dir, false),
            ResultsError::AlreadyExists { .. }
        ));
        assert!(!journal.exists());
        for _ in 0..2 {
            assert!(matches!(
                refused(&dir, true),
                ResultsError::NoJournal { .. }
            ));
            assert!(!journal.exists());
        }
    }

    #[test]
    fn intents_from_many_threads_share_syncs_and_all_return() {
        let dir = tempfile::tempdir().unwrap();
        let (rec, _) = open(dir.path(), false, false).unwrap();
        std::thread::scope(|s| {
            for t in 0..8u64 {
                let rec = &rec;
                s.spawn(move || {
                    for i in 0..25 {
                        rec.intent(&job(t * 100 + i, &format!("k{t}-{i}"))).unwrap();
                    }
                });
            }
        });
        let (written, durable, _) = rec.commit.as_ref().unwrap().counts();
        assert_eq!(written, 200);
        assert_eq!(durable, 200, "every intent is covered by a finished sync");
        let journal = std::fs::read_to_string(journal_path(&dir.path().join("r.csv"))).unwrap();
        assert_eq!(journal.lines().count(), 200);
    }

    #[test]
    fn a_second_run_on_the_same_results_is_locked_out() {
        let dir = tempfile::tempdir().unwrap();
        let (first, _) = open(dir.path(), false, false).unwrap();
        first
            .record(Outcome::local(1, "t", Status::Invalid, ""), None)
            .unwrap();
        // With or without --resume, the message says another run holds the file.
        for resume in [true, false] {
            assert!(matches!(refused(&dir, resume), ResultsError::Locked { .. }));
        }
    }

    /// Rows whose intents were written ahead: one whose request left (`leaving`), one
    /// killed before it did, one answered. Read in the boot that wrote them, only the
    /// one that left is in doubt; read after a reboot (the run's boot id differs), so
    /// is the other, since its `leaving` line may have been lost with the page cache.
    #[test]
    fn ahead_intents_without_leaving_are_unattempted_in_the_same_boot_only() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for (boot, in_doubt) in [
            (boot_id(), vec!["left"]),
            (Some("another boot".into()), vec!["left", "never left"]),
        ] {
            let dir = tempfile::tempdir().unwrap();
            {
                let (rec, _) = open(dir.path(), false, false).unwrap();
                rec.begin_run(&RunInfo {
                    boot_id: boot.clone(),
                    ..RunInfo::default()
                })
                .unwrap();
                runtime.block_on(async {
                    for (row, key) in [(1, "left"), (2, "never left"), (3, "answered")] {
                        rec.intent_async(&job(row, key), true).await.unwrap();
                    }
                });
                rec.leaving(&job(1, "left")).unwrap();
                rec.leaving(&job(3, "answered")).unwrap();
                rec.record(Outcome::local(3, "t", Status::Sent, ""), Some("answered"))
                    .unwrap();
                // Dropped without `finish`: as a kill leaves it.
            }
            let (_, prior) = open(dir.path(), false, true).unwrap();
            let mut keys: Vec<&str> = prior.interrupted.keys().map(String::as_str).collect();
            keys.sort_unstable();
            assert_eq!(
                keys,
                in_doubt,
                "run's boot {boot:?}, this boot {:?}",
                boot_id()
            );
            let view = journal_view(&dir.path().join("r.csv")).unwrap();
            assert_eq!(view.in_flight.len(), in_doubt.len(), "{:?}", view.in_flight);
        }
    }

    #[test]
    fn a_torn_last_journal_line_is_ignored_but_damage_elsewhere_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j");
        std::fs::write(
            &path,
            "{\"event\":\"intent\",\"key\":\"a\",\"row\":1}\n{\"event\":\"do",
        )
        .unwrap();
        let mut f = File::open(&path).unwrap();
        let prior = Prior::load(&path, &mut f).unwrap();
        assert_eq!(prior.interrupted.len(), 1);
        std::fs::write(
            &path,
            "garbage\n{\"event\":\"intent\",\"key\":\"a\",\"row\":1}\n",
        )
        .unwrap();
        let mut f = File::open(&path).unwrap();
        assert!(matches!(
            Prior::load(&path, &mut f),
            Err(ResultsError::BadJournal { line: 1, .. })
        ));
    }

    #[test]
    fn a_torn_journal_is_repaired_on_resume_so_the_next_resume_can_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let journal = journal_path(&dir.path().join("r.csv"));
        let whole = "{\"event\":\"intent\",\"key\":\"a\",\"row\":1}";
        for (torn, kept) in [
            (format!("{whole}\n{{\"event\":\"do"), format!("{whole}\n")),
            // Cut just before its newline: the line is whole and is kept.
            (whole.to_owned(), format!("{whole}\n")),
        ] {
            std::fs::write(&journal, &torn).unwrap();
            let (rec, prior) = open(dir.path(), false, true).unwrap();
            assert_eq!(prior.interrupted.get("a"), Some(&1));
            assert_eq!(std::fs::read_to_string(&journal).unwrap(), kept);
            rec.intent(&job(2, "b")).unwrap();
            drop(rec);
            let (_rec, prior) = open(dir.path(), false, true).unwrap();
            assert_eq!(prior.interrupted.len(), 2, "{torn:?}");
            std::fs::remove_file(dir.path().join("r.csv")).unwrap();
        }
    }

    #[test]
    fn a_results_file_being_written_is_read_up_to_its_last_whole_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        let head = COLUMNS.join(",");
        let line = "1,573001234567,sent,201,201,,ok,1,10,2026-03-02T12:00:00.000Z";
        std::fs::write(&path, format!("{head}\n{line}\n2,5730012")).unwrap();
        let rows = read(&path).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, Status::Sent);
        // A cut inside a quoted message that spans lines.
        std::fs::write(
            &path,
            format!("{head}\n{line}\n2,57,failed,400,400,x,\"a\n"),
        )
        .unwrap();
        assert_eq!(read(&path).unwrap().len(), 1);
        // Damage before the last line is not hidden.
        std::fs::write(&path, format!("{head}\n1,x\n{line}\n")).unwrap();
        assert!(read(&path).is_err());
        // A file with only part of its header is not a results file yet.
        std::fs::write(&path, "row,tele").unwrap();
        assert!(read(&path).is_err());
        std::fs::write(
            &path,
            format!("{head}\n3,57,suppressed,,,,on opt-out list,0,0,x\n"),
        )
        .unwrap();
        assert_eq!(read(&path).unwrap()[0].status, Status::Suppressed);
    }

    #[test]
    fn dry_runs_overwrite_dry_runs_but_never_real_results() {
        let dir = tempfile::tempdir().unwrap();
        let o = opts(dir.path(), true, false);
        let (rec, _) = Recorder::open(&o).unwrap();
        rec.record(Outcome::local(1, "t", Status::DryRun, ""), None)
            .unwrap();
        rec.finish().unwrap();
        let (rec, _) = Recorder::open(&o).unwrap();
        rec.finish().unwrap();
        let (rec, _) = open(dir.path(), false, false).unwrap_or_else(|_| {
            std::fs::remove_file(dir.path().join("r.csv")).unwrap();
            open(dir.path(), false, false).unwrap()
        });
        rec.record(Outcome::local(1, "t", Status::Sent, ""), Some("k"))
            .unwrap();
        rec.finish().unwrap();
        assert!(matches!(
            Recorder::open(&o),
            Err(ResultsError::NotADryRun { .. })
        ));
    }

    fn resume_of(args: &[&str]) -> String {
        resume_command(
            args.iter().map(std::ffi::OsString::from),
            Path::new("out/my list.results.csv"),
        )
    }

    #[test]
    fn the_resume_command_keeps_every_flag_but_the_retry_ones() {
        assert_eq!(
            resume_of(&[
                "send",
                "list.csv",
                "--base-url",
                "http://127.0.0.1:9000",
                "--rate",
                "5"
            ]),
            "wolkvox-dispatch send list.csv --base-url http://127.0.0.1:9000 --rate 5 --results 'out/my list.results.csv' --resume"
        );
        assert_eq!(
            resume_of(&[
                "send",
                "it's.csv",
                "--results=r.csv",
                "--resume",
                "--retry-unknown",
                "--retry-failed"
            ]),
            "wolkvox-dispatch send 'it'\\''s.csv' --results=r.csv --resume"
        );
        // A pilot's --limit does not carry over to the rest.
        assert_eq!(
            resume_of(&["send", "l.csv", "--limit", "50", "--rate", "5", "--limit=7"]),
            "wolkvox-dispatch send l.csv --rate 5 --results 'out/my list.results.csv' --resume"
        );
    }
}
