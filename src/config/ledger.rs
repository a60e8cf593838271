/*!
The `[ledger]` section and the send ledger's settings, together: the keys
(`path`, `repeat_window`, `max_per_phone`, `keep`), their checks, and how
`--ledger` / `--no-ledger` combine with them. A new ledger key is added here only
(and in both `config.example*.toml`).
*/

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::{ConfigError, duration, key_error};
use crate::tr;

/// `[ledger]`: the send ledger (see `crate::ledger`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LedgerSection {
    /// Where the ledger is (relative to the config file's folder).
    pub(crate) path: Option<PathBuf>,
    /// A PostgreSQL database for the whole team instead ("postgres://user@host/db").
    pub(crate) url: Option<String>,
    /// The same message within this long is held ("7d").
    pub(crate) repeat_window: Option<String>,
    /// "2/24h": at most 2 messages to one number a day. Default: no cap.
    pub(crate) max_per_phone: Option<String>,
    /// Entries older than this are pruned ("90d"). Default: kept.
    pub(crate) keep: Option<String>,
}

/// The ledger's settings: `--no-ledger` turns it off; `--ledger`, then `[ledger] path`
/// (relative to the config file's folder), then the user's state folder.
pub(crate) fn ledger_settings(
    flag: Option<&Path>,
    off: bool,
    section: &LedgerSection,
    path: Option<&Path>,
) -> Result<Option<crate::ledger::Settings>, ConfigError> {
    let repeat_window = duration(
        path,
        "ledger.repeat_window",
        section.repeat_window.as_deref(),
        crate::ledger::DEFAULT_REPEAT_WINDOW,
    )?;
    let cap = section
        .max_per_phone
        .as_deref()
        .map(crate::ledger::Cap::parse)
        .transpose()
        .map_err(|reason| key_error(path, "ledger.max_per_phone", reason))?;
    let keep = match &section.keep {
        Some(text) => Some(duration(path, "ledger.keep", Some(text), Duration::ZERO)?),
        None => None,
    };
    // Pruning inside the repeat window would erase what holds a repeat.
    if let Some(keep) = keep.filter(|k| *k < repeat_window) {
        return Err(key_error(
            path,
            "ledger.keep",
            tr!(
                "ledger-keep-too-short",
                keep = humantime::format_duration(keep).to_string(),
                window = humantime::format_duration(repeat_window).to_string()
            ),
        ));
    }
    if off {
        return Ok(None);
    }
    let from_file = section.path.as_ref().map(|p| {
        match path.and_then(Path::parent).filter(|_| p.is_relative()) {
            Some(dir) => dir.join(p),
            None => p.clone(),
        }
    });
    // `[ledger] url` (no password in it; it wins over `path`), unless --ledger names a file.
    if let Some(url) = &section.url {
        crate::ledger::postgres::check_url(url)
            .map_err(|reason| key_error(path, "ledger.url", reason))?;
    }
    let url = section.url.clone().filter(|_| flag.is_none());
    let ledger = flag
        .map(Path::to_owned)
        .or(from_file)
        .or_else(crate::ledger::default_path)
        .or_else(|| url.as_ref().map(|_| PathBuf::new()))
        .ok_or(ConfigError::NoLedgerPlace)?;
    Ok(Some(crate::ledger::Settings {
        path: ledger,
        url,
        repeat_window,
        cap,
        keep,
    }))
}
