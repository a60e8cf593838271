/*!
Turns the raw flags and the optional TOML file into each command's checked
settings: `ValidateSettings` and `SendSettings`, whose list part
(`validate::ListSettings`) both share, and the dispatcher's `PoolSettings` inside
`SendSettings`.

Precedence is flags, then the config file, then built-in defaults. Every value
is checked here, once, so the rest of the program never re-checks: a config
error names the file and the key (`limits.max_in_flight_per_token`) or the
flag (`--rate`) to fix. Tokens are not settings: `send::token` reads them from
`WOLKVOX_TOKEN`.

The files, by concern:
- `file`: the TOML file as written (`FileConfig`, one struct per section) and its
  parse errors in the current language;
- `ledger`: the `[ledger]` section and the ledger's settings (`--ledger`,
  `--no-ledger`), all of it, so ledger keys change in one place;
- `merge`: one setting at a time, a flag over its key over the default, checked;
- `settings`: what each subcommand gets (`send_settings`, `validate_settings`,
  `reconcile_settings`, `history_settings`);
- `tests`: their unit tests.
*/

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::tr;

mod file;
mod ledger;
mod merge;
mod settings;
#[cfg(test)]
mod tests;

pub(crate) use merge::check_server_id;
pub(crate) use settings::{
    HistorySettings, PreflightCheck, ReconcileSettings, SendSettings, history_settings,
    reconcile_settings, send_settings,
};
pub use settings::{ValidateSettings, validate_settings};

/// The API refuses more than this many simultaneous requests per token.
pub(crate) const API_MAX_IN_FLIGHT: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}", tr!("config-read", path = .path, error = .source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", tr!("config-parse", path = .path, message = .message))]
    Parse { path: PathBuf, message: String },
    #[error("{}", tr!("config-key", path = .path, key = *.key, reason = .reason))]
    Key {
        path: PathBuf,
        key: &'static str,
        reason: String,
    },
    #[error("{flag}: {reason}")]
    Flag { flag: &'static str, reason: String },
    #[error("{}", tr!("config-template-file", path = .path, error = .source))]
    TemplateFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", tr!("config-no-endpoint"))]
    NoEndpoint,
    #[error("{}", tr!("ledger-no-place"))]
    NoLedgerPlace,
}

pub(crate) const DEFAULT_RATE: f64 = 10.0;
pub(crate) const DEFAULT_MAX_ROWS: u64 = 10_000;
/// Twenty refusals in a row with one answer are a campaign mistake, not bad luck.
pub(crate) const DEFAULT_MAX_FAILURES: u32 = 20;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Shorter timeouts would make every row `unknown`.
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_secs(1);
/// The least rate accepted: one request a day. Below that the pacing interval cannot be
/// represented, and no campaign means it.
pub(crate) const MIN_RATE: f64 = 1.0 / 86_400.0;

/// A refused value of config key `key`, naming the file.
fn key_error(path: Option<&Path>, key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        path: path.map(Path::to_owned).unwrap_or_default(),
        key,
        reason: reason.into(),
    }
}

/// A duration key ("30s", "2m"), or `default` when absent.
fn duration(
    path: Option<&Path>,
    key: &'static str,
    value: Option<&str>,
    default: Duration,
) -> Result<Duration, ConfigError> {
    match value {
        None => Ok(default),
        Some(text) => humantime::parse_duration(text).map_err(|e| {
            key_error(
                path,
                key,
                tr!(
                    "config-not-a-duration",
                    text = format!("{text:?}"),
                    error = e.to_string()
                ),
            )
        }),
    }
}
