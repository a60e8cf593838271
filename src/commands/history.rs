/*!
`wolkvox-dispatch history`: what the send ledger knows.

- `history PHONE` (written any way a list accepts): every message to that number;
- `history [--since 7d]`: every message since then (default the last 7 days);
- `history import RESULTS...`: seeds the ledger from results files' journals, so
  the first run after an upgrade knows earlier campaigns; given a SQLite ledger
  file, it moves that person's history into the configured ledger (a team's
  PostgreSQL database);
- `history forget PHONE`: erases a person (a data protection request).

`--format json|csv` for scripts. Times are local (`campaign.timezone`, else the
machine's) in text, RFC 3339 in JSON and CSV.
*/

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::cli::{HistoryArgs, HistoryFormat};
use crate::config;
use crate::journal::{self, Prior};
use crate::ledger::{self, Entry, Mark};
use crate::outcome::Status;
use crate::{Error, Exit, tr};

/// What `history` was asked that cannot be done.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{}", tr!("history-no-phone"))]
    NoPhone,
    #[error("{}", tr!("history-no-results"))]
    NoResults,
    #[error("{}", tr!("history-bad-phone", phone = .phone, reason = .reason))]
    BadPhone { phone: String, reason: String },
    #[error("{}", tr!("history-bad-since", value = .value, error = .error))]
    BadSince { value: String, error: String },
    #[error("{}", tr!("history-import-unreadable", path = .path.display(), error = .error))]
    Unreadable { path: PathBuf, error: String },
    /// `ledger` without `migrate` (see `commands::ledger`).
    #[error("{}", tr!("ledger-no-subcommand"))]
    NoLedgerAction,
}

pub(crate) fn run(args: &HistoryArgs) -> Result<Exit, Error> {
    let settings = config::history_settings(args)?;
    let phone = |raw: &str| {
        crate::validate::phone::normalize(raw, settings.default_country).map_err(|reason| {
            HistoryError::BadPhone {
                phone: raw.to_owned(),
                reason,
            }
        })
    };
    let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["import", files @ ..] => {
            if files.is_empty() {
                return Err(HistoryError::NoResults.into());
            }
            import(&settings.ledger, files)
        }
        ["forget", rest @ ..] => {
            if rest.is_empty() {
                return Err(HistoryError::NoPhone.into());
            }
            let telephone = phone(&rest.join(" "))?;
            let mut store = ledger::open(&settings.ledger)?;
            let count = store.forget(&telephone)?;
            println!(
                "{}",
                tr!(
                    "history-forgotten",
                    count = count,
                    telephone = telephone,
                    path = settings.ledger.place()
                )
            );
            Ok(Exit::Success)
        }
        _ => {
            let telephone = if words.is_empty() {
                None
            } else {
                Some(phone(&words.join(" "))?)
            };
            let since = match (&args.since, &telephone) {
                (Some(text), _) => {
                    let d =
                        humantime::parse_duration(text).map_err(|e| HistoryError::BadSince {
                            value: text.clone(),
                            error: e.to_string(),
                        })?;
                    ledger::now() - i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2)
                }
                (None, Some(_)) => 0,
                (None, None) => ledger::now() - 7 * 24 * 3600,
            };
            let entries = match ledger::open_existing(&settings.ledger)? {
                Some(mut store) => store.history(telephone.as_deref(), since)?,
                None => Vec::new(),
            };
            show(
                &entries,
                args.format,
                &settings,
                telephone.as_deref(),
                since,
            );
            Ok(Exit::Success)
        }
    }
}

fn rfc3339(at: i64) -> String {
    jiff::Timestamp::from_second(at)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn show(
    entries: &[Entry],
    format: HistoryFormat,
    settings: &config::HistorySettings,
    telephone: Option<&str>,
    since: i64,
) {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    match format {
        HistoryFormat::Text => {
            if entries.is_empty() {
                let what = match telephone {
                    Some(t) => t.to_owned(),
                    None => tr!(
                        "history-everyone",
                        since = ledger::local_time(since, &settings.timezone)
                    ),
                };
                let _ = writeln!(
                    out,
                    "{}",
                    tr!("history-none", path = settings.ledger.place(), what = what)
                );
            }
            for e in entries {
                let _ = writeln!(
                    out,
                    "{}",
                    tr!(
                        "history-line",
                        when = ledger::local_time(e.at, &settings.timezone),
                        telephone = e.telephone.as_str(),
                        status = e.mark.as_str(),
                        kind = e.kind.as_str(),
                        excerpt = format!("{:?}", e.excerpt),
                        results = e.campaign.as_str(),
                        row = e.row
                    )
                );
            }
        }
        HistoryFormat::Json => {
            let list: Vec<serde_json::Value> = entries
                .iter()
                .map(|e| {
                    serde_json::json!({
                        "at": rfc3339(e.at),
                        "telephone": e.telephone,
                        "outcome": e.mark.as_str(),
                        "kind": e.kind,
                        "excerpt": e.excerpt,
                        "connector_id": e.connector,
                        "results": e.campaign,
                        "list": e.list,
                        "row": e.row,
                        "key": e.key,
                    })
                })
                .collect();
            let _ = writeln!(out, "{}", serde_json::Value::Array(list));
        }
        HistoryFormat::Csv => {
            let mut w = csv::Writer::from_writer(&mut out);
            let _ = w.write_record([
                "at",
                "telephone",
                "outcome",
                "kind",
                "excerpt",
                "connector_id",
                "results",
                "list",
                "row",
                "key",
            ]);
            for e in entries {
                let _ = w.write_record([
                    rfc3339(e.at).as_str(),
                    &e.telephone,
                    e.mark.as_str(),
                    &e.kind,
                    &journal::neutralize(&e.excerpt),
                    &e.connector,
                    &journal::neutralize(&e.campaign),
                    &journal::neutralize(&e.list),
                    &e.row.to_string(),
                    &e.key,
                ]);
            }
            let _ = w.flush();
        }
    }
    let _ = out.flush();
}

/// Seeds the ledger from results files and their journals, and from SQLite ledger
/// files (a person's history moving into the team's database).
fn import(settings: &ledger::Settings, files: &[&str]) -> Result<Exit, Error> {
    let (ledgers, files): (Vec<&str>, Vec<&str>) =
        files.iter().partition(|f| is_sqlite_file(Path::new(f)));
    let mut results_entries = Vec::new();
    for file in &files {
        results_entries.extend(entries_of(Path::new(file))?);
    }
    let mut from_ledgers = Vec::new();
    for file in &ledgers {
        from_ledgers.push((*file, entries_of_ledger(Path::new(file))?));
    }
    let mut store = ledger::open(settings)?;
    for (file, entries) in from_ledgers {
        let added = store.import(&entries)?;
        println!(
            "{}",
            tr!(
                "history-imported-ledger",
                added = added,
                file = file,
                known = entries.len() - added
            )
        );
    }
    if files.is_empty() {
        return Ok(Exit::Success);
    }
    let entries = results_entries;
    let added = store.import(&entries)?;
    println!(
        "{}",
        tr!(
            "history-imported",
            added = added,
            files = files.len(),
            known = entries.len() - added
        )
    );
    Ok(Exit::Success)
}

/// A SQLite database file (its 16-byte header), as a ledger file is.
fn is_sqlite_file(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 16];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .is_ok_and(|()| &head == b"SQLite format 3\0")
}

/// Every entry of a SQLite ledger file; a claim of a run that did not finish (or is
/// still running) comes in as `unknown`: it may have gone out.
fn entries_of_ledger(path: &Path) -> Result<Vec<Entry>, Error> {
    let mut store = ledger::Sqlite::open(path)?;
    let mut entries = ledger::Store::history(&mut store, None, i64::MIN)?;
    for e in &mut entries {
        if e.mark == Mark::Pending {
            e.mark = Mark::Unknown;
        }
    }
    Ok(entries)
}

/// The messages a results file's journal records as attempted.
fn entries_of(results: &Path) -> Result<Vec<Entry>, Error> {
    let unreadable = |error: String| HistoryError::Unreadable {
        path: results.to_owned(),
        error,
    };
    let prior = Prior::of_results(results)
        .map_err(|e| unreadable(e.to_string()))?
        .ok_or_else(|| {
            unreadable(
                journal::journal_path(results)
                    .display()
                    .to_string()
                    .to_owned()
                    + ": not found",
            )
        })?;
    let campaign = ledger::Campaign::new(
        results,
        prior
            .last_run
            .as_ref()
            .map(|r| r.input_absolute.as_path())
            .unwrap_or(Path::new("")),
    );
    let kind = match prior.last_run.as_ref().map(|r| r.kind.as_str()) {
        Some("hsm") => "template",
        Some(_) => "free",
        None => "",
    };
    let connector = prior
        .last_run
        .as_ref()
        .and_then(|r| r.connector_id.clone())
        .unwrap_or_default();
    let entry = |key: &str, telephone: &str, row: u64, at: i64, mark: Mark| Entry {
        key: ledger::base_key(key).to_owned(),
        telephone: telephone.to_owned(),
        kind: kind.to_owned(),
        excerpt: String::new(),
        connector: connector.clone(),
        at,
        mark,
        campaign: campaign.results.clone(),
        list: campaign.list.clone(),
        row,
    };
    let mut out = Vec::new();
    for (key, o) in &prior.done {
        let mark = match o.status {
            Status::Sent => Mark::Sent,
            Status::Unknown => Mark::Unknown,
            Status::Failed => Mark::Failed,
            _ => continue,
        };
        let at = ledger::seconds_of(&o.finished_at).unwrap_or_else(ledger::now);
        out.push(entry(key, &o.telephone, o.row, at, mark));
    }
    // Intents of journals of earlier versions have no telephone: nothing to file them under.
    for u in prior
        .unsettled()
        .into_iter()
        .filter(|u| u.outcome.is_none() && !u.telephone.is_empty())
    {
        let at = std::fs::metadata(journal::journal_path(results))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| jiff::Timestamp::try_from(t).ok())
            .map(jiff::Timestamp::as_second)
            .unwrap_or_else(ledger::now);
        out.push(entry(&u.key, &u.telephone, u.row, at, Mark::Unknown));
    }
    Ok(out)
}
