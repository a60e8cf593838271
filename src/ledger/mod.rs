/*!
The send ledger: every message that may have gone out, kept across runs and
results files, so nobody gets the same message twice whatever happens to the
list (re-saved, re-exported, run again by cron on yesterday's file).

One entry per campaign (results file) and message (`validate::key`'s content key,
without the `#n` that `--allow-duplicates` adds): the normalized telephone, the
kind, a short excerpt of the text, the connector, when, the outcome and the list.

Invariants:
- A row a run may send is *claimed* (outcome `pending`) in one transaction,
  committed with `synchronous=FULL`, before the run's first request: no other run
  can look before the claim is on disk, a kill -9 or a power cut included. The
  check and the claim are one `BEGIN IMMEDIATE` transaction, so two runs at once
  cannot both find a message unsent (no read-then-write race).
- When a run ends (or a resume opens), its `pending` entries are settled from
  its journal: the outcome it recorded, `unknown` for a request in flight at a
  kill, or removed when the request never left. An entry a killed run left
  `pending` counts as "may have gone out" until then.
- Any failure to open, lock, read or write the ledger is an error before anything
  is sent (`LedgerError`), naming `--no-ledger` and what it gives up.

`Store` is the boundary the rest of the tool uses: `sqlite::Sqlite` (a file, one
machine) or `postgres::Postgres` (`[ledger] url`: one database for a team's hosts),
the same rules behind both. A run also watches a server store while it sends
(`Watch`): a server that stops answering stops the run (exit 3, resumable); every
message it sends was claimed before its first request.
*/

mod pg_connect;
pub(crate) mod postgres;
mod sqlite;
mod watch;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub(crate) use postgres::Postgres;
pub(crate) use sqlite::Sqlite;
pub(crate) use watch::Watch;

use crate::tr;

/// What became of a message, as the ledger knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Claimed by a run that may send it (or was killed while it could).
    Pending,
    Sent,
    Unknown,
    Failed,
}

impl Mark {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mark::Pending => "pending",
            Mark::Sent => "sent",
            Mark::Unknown => "unknown",
            Mark::Failed => "failed",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Mark> {
        Some(match text {
            "pending" => Mark::Pending,
            "sent" => Mark::Sent,
            "unknown" => Mark::Unknown,
            "failed" => Mark::Failed,
            _ => return None,
        })
    }
}

/// One message in the ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The content key (see `validate::key::content_key`).
    pub(crate) key: String,
    pub(crate) telephone: String,
    /// `free` or `template`.
    pub(crate) kind: String,
    /// The first characters of the text (or the template's name and variables).
    pub(crate) excerpt: String,
    pub(crate) connector: String,
    /// Unix seconds: when it was claimed, or settled.
    pub(crate) at: i64,
    pub(crate) mark: Mark,
    /// The results file of the campaign (absolute).
    pub(crate) campaign: String,
    /// The list it was read from.
    pub(crate) list: String,
    pub(crate) row: u64,
}

/// What the ledger knows that matters to one plan (see `plan`).
#[derive(Debug, Default)]
pub(crate) struct Seen {
    /// By content key: the latest entry of another campaign within the repeat window
    /// that may have gone out.
    pub(crate) by_key: HashMap<String, Entry>,
    /// By telephone: entries within the frequency cap's period that may have gone out,
    /// any campaign (filled only when `max_per_phone` is set).
    pub(crate) by_phone: HashMap<String, Vec<Entry>>,
    /// This campaign's own entries, by content key (for the text of a changed message).
    pub(crate) own: HashMap<String, Entry>,
}

/// `[ledger] max_per_phone`: at most `count` messages to one telephone per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cap {
    pub(crate) count: u32,
    pub(crate) per: Duration,
}

impl Cap {
    /// "2/24h".
    pub(crate) fn parse(text: &str) -> Result<Cap, String> {
        let bad = || tr!("ledger-cap-invalid", value = format!("{text:?}"));
        let (count, per) = text.split_once('/').ok_or_else(bad)?;
        let count: u32 = count.trim().parse().map_err(|_| bad())?;
        let per = humantime::parse_duration(per.trim()).map_err(|_| bad())?;
        if count == 0 || per.is_zero() {
            return Err(bad());
        }
        Ok(Cap { count, per })
    }
}

/// The ledger's settings (`[ledger]`, `--ledger`, `--no-ledger`).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) path: PathBuf,
    /// `[ledger] url`: the ledger is in this PostgreSQL database (checked: no
    /// password), not in `path`.
    pub(crate) url: Option<String>,
    /// The same message within this long is held (`repeat_window`, default 7 days).
    pub(crate) repeat_window: Duration,
    pub(crate) cap: Option<Cap>,
    /// Entries older than this are pruned (`keep`); `None` keeps everything.
    pub(crate) keep: Option<Duration>,
}

pub(crate) const DEFAULT_REPEAT_WINDOW: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a run waits for another holding the ledger's lock.
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_secs(20);

/// The ledger's default place: the user's state folder (`~/.local/state/...` on
/// Linux), else the local data folder (Windows, macOS).
pub(crate) fn default_path() -> Option<PathBuf> {
    let dirs = directories::ProjectDirs::from("", "", "wolkvox-dispatch")?;
    let dir = dirs
        .state_dir()
        .map(Path::to_owned)
        .unwrap_or_else(|| dirs.data_local_dir().to_owned());
    Some(dir.join("ledger.sqlite3"))
}

/// The key the ledger files a job under: its content key, without the `#n` that
/// `--allow-duplicates` adds to later copies.
pub(crate) fn base_key(key: &str) -> &str {
    key.split('#').next().unwrap_or(key)
}

/// An excerpt of a message for the ledger and for messages: on one line, at most 60
/// characters (`text::excerpt`).
pub(crate) fn excerpt(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    crate::text::excerpt(&one_line, 60).into_owned()
}

/// Unix seconds now.
pub(crate) fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// Unix seconds of an RFC 3339 time (a results file's `finished_at`).
pub(crate) fn seconds_of(rfc3339: &str) -> Option<i64> {
    rfc3339
        .parse::<jiff::Timestamp>()
        .ok()
        .map(jiff::Timestamp::as_second)
}

/// A ledger time as a person reads it, in `tz`.
/// Results files for people: the first three, then "and N more".
pub(crate) fn files_named(files: &[String]) -> String {
    const SHOWN: usize = 3;
    let first = files
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if files.len() > SHOWN {
        tr!(
            "ledger-files-more",
            files = first,
            more = files.len() - SHOWN
        )
    } else {
        first
    }
}

/// A period for people ("1 day", "12 hours", "90 minutes"), in the current language.
pub(crate) fn period_words(per: Duration) -> String {
    let secs = per.as_secs();
    if secs >= 86_400 && secs.is_multiple_of(86_400) {
        tr!("ledger-period-days", n = secs / 86_400)
    } else if secs >= 3_600 && secs.is_multiple_of(3_600) {
        tr!("ledger-period-hours", n = secs / 3_600)
    } else if secs >= 60 && secs.is_multiple_of(60) {
        tr!("ledger-period-minutes", n = secs / 60)
    } else {
        crate::text::human_duration(per)
    }
}

pub(crate) fn local_time(at: i64, tz: &jiff::tz::TimeZone) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| {
            t.to_zoned_datetime(tz.clone())
                .strftime("%Y-%m-%d %H:%M %Z")
                .to_string()
        })
        .unwrap_or_else(|_| at.to_string())
}

/// What went wrong with the ledger. Every message ends with the way out.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("{}", tr!("ledger-error", path = .path.display(), problem = .problem))]
    Failed { path: PathBuf, problem: String },
    #[error("{}", tr!("ledger-no-place"))]
    NoPlace,
    #[error("{}", if *.pending {
        tr!("ledger-already-claimed",
            held = .held, valid = .valid, when = .when, results = files_named(.results))
    } else {
        tr!("ledger-already-sent",
            held = .held, valid = .valid, when = .when, results = files_named(.results))
    })]
    ListAlreadySent {
        held: u64,
        valid: u64,
        when: String,
        /// The results files the held rows went out in, latest first.
        results: Vec<String>,
        /// The latest entry is a claim of a run that did not finish: not "sent".
        pending: bool,
    },
}

/// How `--resume` and a run's end tell the ledger what became of the messages it
/// claimed: the outcome of each key, and the keys with a request in flight at a kill.
#[derive(Debug, Default)]
pub(crate) struct Settled {
    pub(crate) outcomes: HashMap<String, (Mark, i64)>,
    pub(crate) in_flight: HashSet<String>,
}

/// A campaign, as the ledger names it.
#[derive(Debug, Clone)]
pub(crate) struct Campaign {
    /// The results file, absolute.
    pub(crate) results: String,
    pub(crate) list: String,
}

impl Campaign {
    /// The campaign of `results`: its folder canonicalized (a symbolic link, macOS's
    /// `/tmp` and `/private/tmp`, `..`: one spelling) and its file name.
    pub(crate) fn new(results: &Path, list: &Path) -> Campaign {
        Campaign {
            results: canonical(results),
            list: canonical(list),
        }
    }
}

/// `path` absolute, its folder canonicalized when it exists (the file itself may not
/// exist yet, and a link in its name is refused elsewhere).
fn canonical(path: &Path) -> String {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_owned());
    let folder = abs
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .and_then(|d| std::fs::canonicalize(d).ok());
    match (folder, abs.file_name()) {
        (Some(folder), Some(name)) => folder.join(name),
        _ => abs,
    }
    .display()
    .to_string()
}

/// The messages a campaign's journal knows (done, or in flight at a kill), by the
/// ledger's key: only those of its own ledger entries are its journal's business
/// (rule 2's exemption). An entry of the campaign the journal does not know (results
/// moved away, a journal restored from an older copy) is a repeat like any other.
pub(crate) fn known_keys(prior: &crate::journal::Prior) -> HashSet<String> {
    use crate::outcome::Status;
    let mut known = HashSet::new();
    for (key, o) in &prior.done {
        if matches!(o.status, Status::Sent | Status::Unknown | Status::Failed) {
            known.insert(base_key(key).to_owned());
        }
    }
    for key in prior.interrupted.keys() {
        known.insert(base_key(key).to_owned());
    }
    known
}

/// The store behind the ledger. Every method is one transaction.
pub(crate) trait Store: Send {
    /// Starts the check-and-claim of one plan: holds the ledger's write lock until
    /// `commit` or `rollback`.
    fn begin(&mut self) -> Result<(), LedgerError>;
    /// Settles `campaign`'s `pending` entries from its journal (see `Settled`).
    fn settle(&mut self, campaign: &str, settled: &Settled) -> Result<(), LedgerError>;
    /// What matters to a plan for these keys and telephones.
    /// `known`: the keys of `campaign` its journal knows (`known_keys`), not held by
    /// its own entries; any other entry, its own included, may hold a key.
    fn seen(
        &mut self,
        campaign: &str,
        known: &HashSet<String>,
        keys: &[&str],
        phones: &[&str],
        since_key: i64,
        since_phone: Option<i64>,
    ) -> Result<Seen, LedgerError>;
    /// Claims (or re-claims, on resume) each entry, `pending`.
    fn claim(&mut self, entries: &[Entry]) -> Result<(), LedgerError>;
    /// Adds settled entries it lacks (a resume's journal, `seeds_from`), keeping any
    /// already there; in the transaction `begin` opened.
    fn seed(&mut self, entries: &[Entry]) -> Result<(), LedgerError>;
    fn commit(&mut self) -> Result<(), LedgerError>;
    fn rollback(&mut self);
    /// Sets the outcome of entries whose outcome is known later (`reconcile`); `None`
    /// removes the entry (it was not sent).
    fn update(
        &mut self,
        campaign: &str,
        marks: &[(String, Option<Mark>)],
    ) -> Result<(), LedgerError>;
    /// Entries of one telephone, or of everyone since a time, newest first.
    fn history(&mut self, telephone: Option<&str>, since: i64) -> Result<Vec<Entry>, LedgerError>;
    /// Adds entries from an earlier campaign, keeping any already there.
    fn import(&mut self, entries: &[Entry]) -> Result<usize, LedgerError>;
    /// Erases a telephone; returns how many entries.
    fn forget(&mut self, telephone: &str) -> Result<usize, LedgerError>;
    /// Erases settled entries older than `before` and `pending` claims older than
    /// `claims_before`; returns how many.
    fn prune(&mut self, before: i64, claims_before: i64) -> Result<usize, LedgerError>;
    /// A way to tell, while a run sends, that the store is still there (a server
    /// store); `None` for a file.
    fn watch(&self) -> Option<Box<dyn FnMut() -> Result<(), LedgerError> + Send>> {
        None
    }
}

impl Settings {
    /// There may be a ledger to read: a database, or a file that is there.
    pub(crate) fn may_exist(&self) -> bool {
        self.url.is_some() || self.path.exists()
    }

    /// Where the ledger is, for people: the file, or the database (no password).
    pub(crate) fn place(&self) -> String {
        match &self.url {
            Some(url) => postgres::Target::new(url)
                .map(|t| t.shown().to_owned())
                .unwrap_or_else(|_| "[ledger] url".to_owned()),
            None => self.path.display().to_string(),
        }
    }
}

/// What `prior` (a campaign's journal) says became of its messages.
pub(crate) fn settled_from(prior: &crate::journal::Prior) -> Settled {
    use crate::outcome::Status;
    let mut settled = Settled::default();
    for (key, o) in &prior.done {
        let mark = match o.status {
            Status::Sent => Mark::Sent,
            Status::Unknown => Mark::Unknown,
            Status::Failed => Mark::Failed,
            _ => continue,
        };
        let at = seconds_of(&o.finished_at).unwrap_or_else(now);
        let rank = |m: Mark| match m {
            Mark::Sent => 3,
            Mark::Unknown | Mark::Pending => 2,
            Mark::Failed => 1,
        };
        let slot = settled
            .outcomes
            .entry(base_key(key).to_owned())
            .or_insert((mark, at));
        if rank(mark) > rank(slot.0) {
            *slot = (mark, at);
        }
    }
    for key in prior.interrupted.keys() {
        settled.in_flight.insert(base_key(key).to_owned());
    }
    settled
}

/// What a campaign's journal says went out (`sent`), or may have (`unknown`, or in
/// flight at a kill), as ledger entries: what a resume gives a ledger that lacks them
/// (deleted, emptied or replaced since). `job` gives the text of a key the list still
/// has.
pub(crate) fn seeds_from<'a>(
    prior: &crate::journal::Prior,
    campaign: &Campaign,
    job: impl Fn(&str) -> Option<&'a crate::validate::Job>,
) -> Vec<Entry> {
    use crate::outcome::Status;
    let at_now = now();
    let entry = |key: &str, telephone: &str, row: u64, mark: Mark, at: i64| {
        let key = base_key(key);
        match job(key) {
            Some(j) => Entry {
                at,
                mark,
                row,
                ..entry_for(j, campaign, at)
            },
            None => Entry {
                key: key.to_owned(),
                telephone: telephone.to_owned(),
                kind: String::new(),
                excerpt: String::new(),
                connector: String::new(),
                at,
                mark,
                campaign: campaign.results.clone(),
                list: campaign.list.clone(),
                row,
            },
        }
    };
    let mut seeds = Vec::new();
    for (key, o) in &prior.done {
        let mark = match o.status {
            Status::Sent => Mark::Sent,
            Status::Unknown => Mark::Unknown,
            _ => continue,
        };
        let at = seconds_of(&o.finished_at).unwrap_or(at_now);
        seeds.push(entry(key, &o.telephone, o.row, mark, at));
    }
    for (key, &row) in &prior.interrupted {
        if let Some(telephone) = prior.intent_telephone(key) {
            seeds.push(entry(key, telephone, row, Mark::Unknown, at_now));
        }
    }
    seeds
}

/// The ledger entry that claims `job` for `campaign`.
pub(crate) fn entry_for(job: &crate::validate::Job, campaign: &Campaign, at: i64) -> Entry {
    use crate::validate::Message;
    let (kind, text) = match &job.message {
        Message::Free { text } => ("free", excerpt(text)),
        Message::Template { .. } => ("template", excerpt(&job.message.as_sent())),
    };
    Entry {
        key: base_key(&job.key).to_owned(),
        telephone: job.telephone.clone(),
        kind: kind.to_owned(),
        excerpt: text,
        connector: job.connector_id.clone(),
        at,
        mark: Mark::Pending,
        campaign: campaign.results.clone(),
        list: campaign.list.clone(),
        row: job.row,
    }
}

/// What `reconcile` settled (`unknown` rows now `sent` or `not_sent`), told to the
/// ledger, if there is one. A failure is a warning: the entries stay `unknown`, which
/// holds them (the safe side), and the results are already written.
pub(crate) fn reconciled(
    settings: Option<&Settings>,
    results: &Path,
    settled: &[(String, crate::outcome::Status)],
) {
    use crate::outcome::Status;
    let Some(settings) = settings else {
        return;
    };
    let marks: Vec<(String, Option<Mark>)> = settled
        .iter()
        .filter_map(|(key, status)| match status {
            Status::Sent => Some((key.clone(), Some(Mark::Sent))),
            Status::NotSent => Some((key.clone(), None)),
            _ => None,
        })
        .collect();
    let campaign = Campaign::new(results, Path::new(""));
    let updated = open_existing(settings).and_then(|store| match store {
        Some(mut store) => store.update(&campaign.results, &marks),
        None => Ok(()),
    });
    if let Err(e) = updated {
        tracing::warn!("{e}");
    }
}

/// Opens the ledger only if it exists (for `validate` and dry runs, which must not
/// create one): `None` when there is none yet.
pub(crate) fn open_existing(settings: &Settings) -> Result<Option<Box<dyn Store>>, LedgerError> {
    if let Some(url) = &settings.url {
        let target = postgres::Target::new(url)?;
        return Ok(Postgres::open_existing(&target)?.map(|s| Box::new(s) as Box<dyn Store>));
    }
    if !settings.path.exists() {
        return Ok(None);
    }
    Ok(Some(Box::new(Sqlite::open(&settings.path)?)))
}

/// A `pending` claim is kept at least this long, whatever `keep` says: a run may still
/// be sending it (a long list, contact hours), and it may be in flight.
pub(crate) const CLAIM_KEEP: Duration = DEFAULT_REPEAT_WINDOW;

/// What `keep` prunes, at `now`: entries older than `keep` and never inside the repeat
/// window (the config refuses a shorter `keep`; this holds whatever calls it), and
/// `pending` claims older than that and than `CLAIM_KEEP`.
pub(crate) fn prune_limits(now: i64, keep: Duration, repeat_window: Duration) -> (i64, i64) {
    let secs = |d: Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
    let kept = keep.max(repeat_window);
    (now - secs(kept), now - secs(kept.max(CLAIM_KEEP)))
}

/// Opens the ledger at `settings.path` (creating it, owner-only) and prunes it.
pub(crate) fn open(settings: &Settings) -> Result<Box<dyn Store>, LedgerError> {
    let mut store: Box<dyn Store> = match &settings.url {
        Some(url) => Box::new(Postgres::open(&postgres::Target::new(url)?)?),
        None => Box::new(Sqlite::open(&settings.path)?),
    };
    if let Some(keep) = settings.keep {
        let (before, claims_before) = prune_limits(now(), keep, settings.repeat_window);
        store.prune(before, claims_before)?;
    }
    Ok(store)
}

#[cfg(test)]
mod tests;
