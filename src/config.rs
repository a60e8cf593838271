/*!
Turns the raw flags and the optional TOML file into each command's checked
settings: `ValidateSettings` and `SendSettings`, whose list part
(`validate::ListSettings`) both share.

Precedence is flags, then the config file, then built-in defaults. Every value
is checked here, once, so the rest of the program never re-checks: a config
error names the file and the key (`limits.max_in_flight_per_token`) or the
flag (`--rate`) to fix. Tokens are not settings: `send::token` reads them from
`WOLKVOX_TOKEN`.
*/

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::cli::{InputArgs, LogFormat, SendArgs, ValidateArgs};
use crate::input::{Encoding, ReadOptions};
use crate::send::dispatch::RetryPolicy;
use crate::send::window::{ContactWindow, Week};
use crate::tr;
use crate::validate::template::TemplateSource;
use crate::validate::{Columns, HsmSettings, ListSettings, check_connector_id};

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

// ---------------------------------------------------------------------------
// The file, as written by the user.

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FileConfig {
    #[serde(default)]
    pub(crate) api: ApiSection,
    #[serde(default)]
    pub(crate) limits: LimitsSection,
    #[serde(default)]
    pub(crate) columns: ColumnsSection,
    #[serde(default)]
    pub(crate) retry: RetrySection,
    #[serde(default)]
    pub(crate) campaign: CampaignSection,
    #[serde(default)]
    pub(crate) hsm: HsmSection,
    #[serde(default)]
    pub(crate) input: InputSection,
    #[serde(default)]
    pub(crate) phone: PhoneSection,
    #[serde(default)]
    pub(crate) message: MessageSection,
    #[serde(default)]
    pub(crate) results: ResultsSection,
    #[serde(default)]
    pub(crate) report: ReportSection,
    #[serde(default)]
    pub(crate) ledger: LedgerSection,
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "read early by `i18n::config_lang`; here so the file is checked"
    )]
    pub(crate) ui: UiSection,
}

/// `[ui]`: how the tool speaks to a person.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(
    dead_code,
    reason = "read early by `i18n::config_lang`; here so the file is checked"
)]
pub(crate) struct UiSection {
    /// "es" or "en" (default: the locale); `--lang` wins.
    pub(crate) lang: Option<crate::i18n::Lang>,
}

/// `[report]`: how a run reports as it goes.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportSection {
    /// Without a terminal: how often a progress line is logged ("60s"; "0s": never).
    pub(crate) progress_interval: Option<String>,
}

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

/// `[results]`: what is written beside the results CSV.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ResultsSection {
    /// The Excel workbook `<results stem>.xlsx` (default: written).
    pub(crate) xlsx: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InputSection {
    pub(crate) encoding: Option<String>,
    pub(crate) delimiter: Option<String>,
    pub(crate) sheet: Option<String>,
    pub(crate) allow_duplicates: Option<bool>,
    /// The conventions a spreadsheet's numbers and dates are shown in (issue 29).
    pub(crate) locale: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PhoneSection {
    pub(crate) default_country: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct MessageSection {
    pub(crate) template: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ApiSection {
    pub(crate) server: Option<String>,
    pub(crate) base_url: Option<String>,
    pub(crate) connector_id: Option<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) idle_timeout: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LimitsSection {
    pub(crate) requests_per_second: Option<f64>,
    pub(crate) max_in_flight_per_token: Option<usize>,
    pub(crate) max_rows: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ColumnsSection {
    pub(crate) telephone: Option<String>,
    pub(crate) message: Option<String>,
    pub(crate) connector_id: Option<String>,
    /// The header's row in the spreadsheet (1 = the first row); default: found (issue 29).
    pub(crate) header_row: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetrySection {
    pub(crate) max_attempts: Option<u32>,
    pub(crate) base_delay: Option<String>,
    pub(crate) max_delay: Option<String>,
    pub(crate) max_consecutive_failures: Option<u32>,
}

/// Campaign hygiene: opt-out lists and contact hours.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CampaignSection {
    /// Opt-out lists, relative to the config file's directory.
    pub(crate) suppress: Option<Vec<PathBuf>>,
    pub(crate) hours: Option<String>,
    pub(crate) timezone: Option<String>,
    pub(crate) holidays: Option<Vec<String>>,
    pub(crate) max_failures: Option<u32>,
}

/// `[hsm]`: send an approved template instead of a free message.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct HsmSection {
    pub(crate) template_name: Option<String>,
    /// Column names, in the template's variable order (a TOML array of strings).
    pub(crate) vars: Option<Vec<String>>,
}

impl FileConfig {
    pub(crate) fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.to_owned(),
            message: toml_message(e.to_string().trim_end()),
        })
    }
}

/// The toml crate's error in the current language: its first line (where) and its
/// last (what) for the usual mistakes; the excerpt of the file between them as is.
/// English keeps the crate's text.
fn toml_message(text: &str) -> String {
    if crate::i18n::current() == crate::i18n::Lang::En {
        return text.to_owned();
    }
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    if let Some(first) = lines.first_mut()
        && let Some((line, column)) = first
            .strip_prefix("TOML parse error at line ")
            .and_then(|rest| rest.split_once(", column "))
    {
        *first = tr!("config-toml-at", line = line, column = column);
    }
    if lines.len() > 1
        && let Some(last) = lines.last_mut()
    {
        let quoted = |s: &str| s.replace(" or ", &tr!("config-toml-or"));
        let translated = if let Some(rest) = last.strip_prefix("unknown field ") {
            rest.split_once(", expected ").map(|(field, expected)| {
                tr!(
                    "config-toml-unknown-key",
                    key = field,
                    expected = quoted(expected.trim_start_matches("one of "))
                )
            })
        } else if let Some(rest) = last.strip_prefix("unknown variant ") {
            rest.split_once(", expected ").map(|(value, expected)| {
                tr!(
                    "config-toml-unknown-value",
                    value = value,
                    expected = quoted(expected.trim_start_matches("one of "))
                )
            })
        } else if let Some(rest) = last.strip_prefix("invalid type: ") {
            rest.split_once(", expected ").map(|(found, expected)| {
                tr!(
                    "config-toml-invalid-type",
                    found = found,
                    expected = expected
                )
            })
        } else if let Some(key) = last.strip_prefix("missing field ") {
            Some(tr!("config-toml-missing-key", key = key))
        } else {
            Some(toml_syntax(last))
        };
        if let Some(translated) = translated {
            *last = translated;
        }
    }
    lines.join("\n")
}

/// A TOML syntax mistake (`what, expected X`) in the current language: the usual ones
/// say what to write; any other says where to look. The crate's English is not shown.
fn toml_syntax(text: &str) -> String {
    let what = text.split_once(", expected").map_or(text, |(what, _)| what);
    match what.trim() {
        "string values must be quoted" => tr!("config-toml-quote-text"),
        "unexpected leading zero" => tr!("config-toml-leading-zero"),
        "unclosed table" | "unclosed array" | "unclosed array of tables" => {
            tr!("config-toml-unclosed")
        }
        "invalid basic string" | "invalid literal string" => tr!("config-toml-unclosed-string"),
        _ => tr!("config-toml-syntax"),
    }
}

// ---------------------------------------------------------------------------
// Validated settings.

/// Header names of the columns the validator needs (matched ignoring case).
/// Everything `send` needs, validated.
#[derive(Debug, Clone)]
pub(crate) struct SendSettings {
    pub(crate) list: ListSettings,
    pub(crate) results: PathBuf,
    pub(crate) dry_run: bool,
    pub(crate) resume: bool,
    pub(crate) retry_failed: bool,
    pub(crate) retry_unknown: bool,
    /// The origin requests go to, without a trailing slash. `None` only for dry runs.
    pub(crate) origin: Option<String>,
    pub(crate) timeout: Duration,
    /// `api.idle_timeout`: a kept-alive connection idle longer is not used again.
    pub(crate) idle_timeout: Duration,
    /// Requests per second per token.
    pub(crate) rate: f64,
    pub(crate) max_in_flight: usize,
    pub(crate) retry: RetryPolicy,
    pub(crate) quiet: bool,
    pub(crate) log_format: LogFormat,
    /// Ask each token's remaining daily quota before sending (not with --no-quota-check).
    pub(crate) quota_check: bool,
    /// Send what today's quota allows instead of refusing a list that does not fit.
    pub(crate) partial: bool,
    /// Where to write the end-of-run summary as JSON.
    pub(crate) summary_json: Option<PathBuf>,
    /// Contact hours; `None` sends at any hour.
    pub(crate) window: Option<ContactWindow>,
    /// Outside the contact hours, wait for them instead of stopping.
    pub(crate) wait_for_window: bool,
    /// Rows in a row refused with one answer that stop the run; 0 never stops.
    pub(crate) max_failures: u32,
    /// Check the HSM templates against the account before sending.
    pub(crate) template_check: bool,
    /// Rows this run sends at most (`--limit`): a pilot batch.
    pub(crate) limit: Option<u64>,
    /// Valid rows a dry run shows as they would be sent (`--preview`).
    pub(crate) preview: usize,
    /// Write the workbook beside the results.
    pub(crate) xlsx: bool,
    /// Times in the workbook: `campaign.timezone`, else the machine's.
    pub(crate) timezone: jiff::tz::TimeZone,
    /// Without a terminal: how often a progress line is logged (zero: never).
    pub(crate) progress_interval: Duration,
    /// The send ledger; `None` with `--no-ledger`.
    pub(crate) ledger: Option<crate::ledger::Settings>,
    /// Send rows the ledger holds (`--allow-repeat`).
    pub(crate) allow_repeat: bool,
    /// With `--resume`: send rows whose text changed (`--resend-changed`).
    pub(crate) resend_changed: bool,
}

/// Everything `validate` needs.
#[derive(Debug, Clone)]
pub struct ValidateSettings {
    pub list: ListSettings,
    pub(crate) window: Option<ContactWindow>,
    /// Requests per second per token from the config, for the contact-hours estimate.
    pub(crate) rate: f64,
    pub(crate) check: PreflightCheck,
    /// `campaign.timezone`, else the machine's: the estimate's clock time.
    pub(crate) timezone: jiff::tz::TimeZone,
    /// The send ledger, to show rows that would be held; `None` with `--no-ledger`.
    pub(crate) ledger: Option<crate::ledger::Settings>,
}

/// What the HSM template check needs: where the API is, and whether to run it.
#[derive(Debug, Clone)]
pub(crate) struct PreflightCheck {
    /// `None` when neither a base URL nor a server id is configured.
    pub(crate) origin: Option<String>,
    pub(crate) timeout: Duration,
    /// Not with `--no-template-check`.
    pub(crate) templates: bool,
}

pub(crate) const DEFAULT_RATE: f64 = 10.0;
pub(crate) const DEFAULT_MAX_ROWS: u64 = 10_000;
/// Twenty refusals in a row with one answer are a campaign mistake, not bad luck.
pub(crate) const DEFAULT_MAX_FAILURES: u32 = 20;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// Shorter timeouts would make every row `unknown`.
pub(crate) const MIN_TIMEOUT: Duration = Duration::from_secs(1);

fn load_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    path.map(FileConfig::load)
        .transpose()
        .map(Option::unwrap_or_default)
}

fn key_error(path: Option<&Path>, key: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Key {
        path: path.map(Path::to_owned).unwrap_or_default(),
        key,
        reason: reason.into(),
    }
}

/// A setting given by a flag or a config key (the flag wins), checked the same way
/// whichever gave it; a refusal names the one that was used.
fn flag_or_key<T, U>(
    flag: (&'static str, Option<T>),
    key: (&'static str, Option<T>),
    path: Option<&Path>,
    check: impl Fn(T) -> Result<U, String>,
) -> Result<Option<U>, ConfigError> {
    match (flag.1, key.1) {
        (Some(value), _) => check(value).map(Some).map_err(|reason| ConfigError::Flag {
            flag: flag.0,
            reason,
        }),
        (None, Some(value)) => check(value)
            .map(Some)
            .map_err(|reason| key_error(path, key.0, reason)),
        (None, None) => Ok(None),
    }
}

/// A text setting that must not be blank.
fn not_blank(value: String) -> Result<String, String> {
    if value.trim().is_empty() {
        Err(tr!("config-not-empty"))
    } else {
        Ok(value)
    }
}

fn non_empty_name(
    path: Option<&Path>,
    key: &'static str,
    value: Option<String>,
    default: String,
) -> Result<String, ConfigError> {
    match value {
        None => Ok(default),
        Some(v) if v.trim().is_empty() => Err(key_error(path, key, tr!("config-not-empty"))),
        Some(v) => Ok(v.trim().to_owned()),
    }
}

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

fn list_settings(
    args: &InputArgs,
    file: &mut FileConfig,
    path: Option<&Path>,
) -> Result<ListSettings, ConfigError> {
    let defaults = Columns::default();
    let columns = Columns {
        telephone: non_empty_name(
            path,
            "columns.telephone",
            file.columns.telephone.take(),
            defaults.telephone,
        )?,
        message: non_empty_name(
            path,
            "columns.message",
            file.columns.message.take(),
            defaults.message,
        )?,
        connector_id: non_empty_name(
            path,
            "columns.connector_id",
            file.columns.connector_id.take(),
            defaults.connector_id,
        )?,
    };
    let max_rows = flag_or_key(
        ("--max-rows", args.max_rows),
        ("limits.max_rows", file.limits.max_rows),
        path,
        |n| {
            if n == 0 {
                Err(tr!("config-at-least-one"))
            } else {
                Ok(n)
            }
        },
    )?
    .unwrap_or(DEFAULT_MAX_ROWS);
    let connector_id = match file.api.connector_id.take() {
        Some(c) if c.trim().is_empty() => {
            return Err(key_error(
                path,
                "api.connector_id",
                tr!("config-connector-empty"),
            ));
        }
        Some(c) => {
            let c = c.trim().to_owned();
            check_connector_id(&c).map_err(|reason| key_error(path, "api.connector_id", reason))?;
            Some(c)
        }
        None => None,
    };
    let base = path.and_then(Path::parent).unwrap_or(Path::new(""));
    let suppress = args
        .suppress
        .iter()
        .cloned()
        .chain(
            file.campaign
                .suppress
                .take()
                .unwrap_or_default()
                .into_iter()
                .map(|p| base.join(p)),
        )
        .collect();
    let hsm = hsm_settings(args, &mut file.hsm, path)?;
    let mut read = read_options(args, &mut file.input, path)?;
    read.header_row = flag_or_key(
        ("--header-row", args.header_row),
        ("columns.header_row", file.columns.header_row.take()),
        path,
        |n| {
            if n == 0 {
                Err(tr!("config-at-least-one"))
            } else {
                Ok(n)
            }
        },
    )?;
    read.telephone = Some(columns.telephone.clone());
    Ok(ListSettings {
        input: args.input.clone(),
        max_rows,
        columns,
        connector_id,
        read,
        allow_duplicates: args.allow_duplicates || file.input.allow_duplicates.unwrap_or(false),
        default_country: default_country(file.phone.default_country.take(), path)?,
        template: template(args, &mut file.message, path)?,
        suppress,
        hsm,
    })
}

/// `--hsm`/`--hsm-vars` over `[hsm]`. Names are trimmed; empty ones are refused.
fn hsm_settings(
    args: &InputArgs,
    file: &mut HsmSection,
    path: Option<&Path>,
) -> Result<HsmSettings, ConfigError> {
    let template_name = flag_or_key(
        ("--hsm", args.hsm.clone()),
        ("hsm.template_name", file.template_name.take()),
        path,
        |name: String| {
            let name = name.trim();
            if name.is_empty() {
                Err(tr!("config-template-name-empty"))
            } else {
                Ok(name.to_owned())
            }
        },
    )?;
    let vars = flag_or_key(
        ("--hsm-vars", args.hsm_vars.clone()),
        ("hsm.vars", file.vars.take()),
        path,
        |names: Vec<String>| match names.iter().position(|n| n.trim().is_empty()) {
            Some(i) => Err(tr!("config-variable-no-column", index = i + 1)),
            None => Ok(names.iter().map(|n| n.trim().to_owned()).collect()),
        },
    )?;
    Ok(HsmSettings {
        template_name,
        vars,
        vars_from_flag: args.hsm_vars.is_some(),
    })
}

/// Sheet, encoding and delimiter: flags, then `[input]`, then detection.
fn read_options(
    args: &InputArgs,
    section: &mut InputSection,
    path: Option<&Path>,
) -> Result<ReadOptions, ConfigError> {
    let delimiter = flag_or_key(
        ("--delimiter", args.delimiter.clone()),
        ("input.delimiter", section.delimiter.take()),
        path,
        |d| {
            crate::input::parse_delimiter(&d).ok_or_else(|| {
                tr!(
                    "config-not-a-delimiter",
                    value = format!("{d:?}"),
                    delimiters = tr!("config-delimiters")
                )
            })
        },
    )?;
    let encoding = match section.encoding.take() {
        None => Encoding::Auto,
        Some(e) => Encoding::parse(&e).ok_or_else(|| {
            key_error(
                path,
                "input.encoding",
                tr!("config-encoding", value = format!("{e:?}")),
            )
        })?,
    };
    let sheet = flag_or_key(
        ("--sheet", args.sheet.clone()),
        ("input.sheet", section.sheet.take()),
        path,
        not_blank,
    )?;
    let locale = match section.locale.take() {
        None => crate::input::cells::NumberLocale::default(),
        Some(l) => crate::input::cells::NumberLocale::parse(&l).ok_or_else(|| {
            key_error(
                path,
                "input.locale",
                tr!("config-locale", value = format!("{l:?}")),
            )
        })?,
    };
    Ok(ReadOptions {
        sheet,
        encoding,
        delimiter,
        locale,
        header_row: None,
        telephone: None,
        // Set from limits.max_rows where the list is opened.
        max_rows: None,
    })
}

/// The message template: `--template FILE`, then `message.template`.
fn template(
    args: &InputArgs,
    section: &mut MessageSection,
    path: Option<&Path>,
) -> Result<Option<TemplateSource>, ConfigError> {
    let source = match (&args.template, section.template.take()) {
        (Some(file), _) => {
            let text =
                std::fs::read_to_string(file).map_err(|source| ConfigError::TemplateFile {
                    path: file.clone(),
                    source,
                })?;
            if text.trim().is_empty() {
                return Err(ConfigError::Flag {
                    flag: "--template",
                    reason: tr!("config-file-empty", file = file.display()),
                });
            }
            TemplateSource {
                text,
                origin: format!("--template {}", file.display()),
            }
        }
        (None, Some(text)) => {
            if text.trim().is_empty() {
                return Err(key_error(path, "message.template", tr!("config-not-empty")));
            }
            TemplateSource {
                text,
                origin: format!(
                    "message.template in {}",
                    path.map(|p| p.display().to_string()).unwrap_or_default()
                ),
            }
        }
        (None, None) => return Ok(None),
    };
    Ok(Some(source))
}

/// `phone.default_country`: a two-letter ISO code.
fn default_country(
    code: Option<String>,
    path: Option<&Path>,
) -> Result<Option<crate::validate::phone::Country>, ConfigError> {
    code.map(|code| {
        crate::validate::phone::parse_country(&code).ok_or_else(|| {
            key_error(
                path,
                "phone.default_country",
                tr!("config-country", value = format!("{code:?}")),
            )
        })
    })
    .transpose()
}

/// `campaign.timezone`, else the machine's: the zone times are shown in.
fn campaign_timezone(
    campaign: &CampaignSection,
    path: Option<&Path>,
) -> Result<jiff::tz::TimeZone, ConfigError> {
    match &campaign.timezone {
        Some(tz) => crate::send::window::parse_timezone(tz)
            .map_err(|reason| key_error(path, "campaign.timezone", reason)),
        None => Ok(jiff::tz::TimeZone::system()),
    }
}

/// Everything `history` needs.
#[derive(Debug, Clone)]
pub(crate) struct HistorySettings {
    pub(crate) ledger: crate::ledger::Settings,
    pub(crate) timezone: jiff::tz::TimeZone,
    pub(crate) default_country: Option<crate::validate::phone::Country>,
}

pub(crate) fn history_settings(
    args: &crate::cli::HistoryArgs,
) -> Result<HistorySettings, ConfigError> {
    let path = args.config.as_deref();
    let file = load_file(path)?;
    let ledger = ledger_settings(args.ledger.as_deref(), false, &file.ledger, path)?
        .ok_or(ConfigError::NoLedgerPlace)?;
    Ok(HistorySettings {
        ledger,
        timezone: campaign_timezone(&file.campaign, path)?,
        default_country: default_country(file.phone.default_country.clone(), path)?,
    })
}

/// Everything `reconcile` needs.
#[derive(Debug, Clone)]
pub(crate) struct ReconcileSettings {
    pub(crate) results: PathBuf,
    pub(crate) origin: String,
    pub(crate) timeout: Duration,
    pub(crate) default_country: Option<crate::validate::phone::Country>,
    /// The operation's time zone, for the report's dates: `campaign.timezone`, else the
    /// machine's.
    pub(crate) timezone: jiff::tz::TimeZone,
    pub(crate) settle_after: jiff::SignedDuration,
    pub(crate) dry_run: bool,
    /// The send ledger, told what is settled (`[ledger] path`, else the default).
    pub(crate) ledger: Option<crate::ledger::Settings>,
}

pub(crate) fn reconcile_settings(
    args: &crate::cli::ReconcileArgs,
) -> Result<ReconcileSettings, ConfigError> {
    let path = args.config.as_deref();
    let file = load_file(path)?;
    let origin =
        origin(args.base_url.as_deref(), &file.api, path)?.ok_or(ConfigError::NoEndpoint)?;
    let timezone = campaign_timezone(&file.campaign, path)?;
    let settle_after = humantime::parse_duration(&args.settle_after)
        .ok()
        .and_then(|d| jiff::SignedDuration::try_from(d).ok())
        .ok_or_else(|| ConfigError::Flag {
            flag: "--settle-after",
            reason: tr!(
                "config-settle-after",
                value = format!("{:?}", args.settle_after)
            ),
        })?;
    Ok(ReconcileSettings {
        results: args.results.clone(),
        origin,
        timeout: api_timeout(file.api.timeout.as_deref(), path)?,
        default_country: default_country(file.phone.default_country.clone(), path)?,
        timezone,
        settle_after,
        dry_run: args.dry_run,
        ledger: match ledger_settings(None, false, &file.ledger, path) {
            // No place for a ledger: there is none to tell.
            Err(ConfigError::NoLedgerPlace) => None,
            other => other?,
        },
    })
}

/// The contact window from `[campaign]`: `None` when neither hours nor holidays are set.
/// A time zone is required with either, so "07:00" is never silently the server's time.
fn contact_window(
    campaign: &CampaignSection,
    path: Option<&Path>,
) -> Result<Option<ContactWindow>, ConfigError> {
    if campaign.hours.is_none() && campaign.holidays.is_none() {
        if campaign.timezone.is_some() {
            crate::send::window::parse_timezone(campaign.timezone.as_deref().unwrap_or_default())
                .map_err(|reason| key_error(path, "campaign.timezone", reason))?;
        }
        return Ok(None);
    }
    let week = match &campaign.hours {
        Some(spec) => {
            Week::parse(spec).map_err(|reason| key_error(path, "campaign.hours", reason))?
        }
        None => Week::always(),
    };
    let Some(tz) = &campaign.timezone else {
        return Err(key_error(
            path,
            "campaign.timezone",
            tr!("config-timezone-required"),
        ));
    };
    let tz = crate::send::window::parse_timezone(tz)
        .map_err(|reason| key_error(path, "campaign.timezone", reason))?;
    let mut holidays = std::collections::BTreeSet::new();
    for (i, text) in campaign.holidays.iter().flatten().enumerate() {
        let date = crate::send::window::parse_holiday(text).map_err(|reason| {
            key_error(
                path,
                "campaign.holidays",
                format!("entry {}: {reason}", i + 1),
            )
        })?;
        holidays.insert(date);
    }
    ContactWindow::new(week, tz, holidays)
        .map(Some)
        .map_err(|reason| key_error(path, "campaign.hours", reason))
}

/// Settings for `validate`.
pub fn validate_settings(command: &ValidateArgs) -> Result<ValidateSettings, ConfigError> {
    let args = &command.input;
    let path = args.config.as_deref();
    let mut file = load_file(path)?;
    let list = list_settings(args, &mut file, path)?;
    let check = PreflightCheck {
        origin: origin(command.base_url.as_deref(), &file.api, path)?,
        timeout: api_timeout(file.api.timeout.as_deref(), path)?,
        templates: !command.no_template_check,
    };
    let window = contact_window(&file.campaign, path)?;
    // Only for the estimate: `send` reports a bad rate; here the default stands in.
    let rate = file
        .limits
        .requests_per_second
        .filter(|r| r.is_finite() && *r >= MIN_RATE)
        .unwrap_or(DEFAULT_RATE);
    Ok(ValidateSettings {
        list,
        window,
        rate,
        check,
        timezone: campaign_timezone(&file.campaign, path)?,
        ledger: ledger_settings(
            command.ledger.as_deref(),
            command.no_ledger,
            &file.ledger,
            path,
        )?,
    })
}

/// The origin the API lives at: `--base-url`, then `api.base_url`, then `api.server`.
/// `api.server` is checked even when a base URL wins, so a bad file never passes silently.
fn origin(
    flag: Option<&str>,
    api: &ApiSection,
    path: Option<&Path>,
) -> Result<Option<String>, ConfigError> {
    let server = match &api.server {
        Some(server) => {
            let server = server.trim();
            check_server_id(server).map_err(|reason| key_error(path, "api.server", reason))?;
            Some(format!("https://wv{server}.wolkvox.com"))
        }
        None => None,
    };
    if let Some(url) = flag {
        return check_base_url(url)
            .map(Some)
            .map_err(|reason| ConfigError::Flag {
                flag: "--base-url",
                reason,
            });
    }
    if let Some(url) = &api.base_url {
        return check_base_url(url)
            .map(Some)
            .map_err(|reason| key_error(path, "api.base_url", reason));
    }
    Ok(server)
}

/// `api.server`: letters and digits only, so it can never change the host.
pub(crate) fn check_server_id(server: &str) -> Result<(), String> {
    if server.is_empty() || !server.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(tr!("config-server-id", value = format!("{server:?}")));
    }
    Ok(())
}

/// The least rate accepted: one request a day. Below that the pacing interval cannot be
/// represented, and no campaign means it.
pub(crate) const MIN_RATE: f64 = 1.0 / 86_400.0;

/// A base URL is an origin (scheme, host, optional port and path prefix), nothing more.
fn check_base_url(url: &str) -> Result<String, String> {
    // First, and without repeating it: every later message quotes the URL.
    if crate::text::redact_url(url) != url {
        return Err(tr!("config-url-credentials"));
    }
    let parsed = reqwest::Url::parse(url.trim()).map_err(|e| {
        tr!(
            "config-url-invalid",
            url = format!("{url:?}"),
            error = e.to_string()
        )
    })?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(tr!("config-url-scheme", url = format!("{url:?}")));
    }
    if parsed.host_str().is_none() {
        return Err(tr!("row-url-no-host", url = format!("{url:?}")));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(tr!("config-url-query", url = format!("{url:?}")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(tr!("config-url-credentials"));
    }
    Ok(parsed.as_str().trim_end_matches('/').to_owned())
}

/// Settings for `send`.
pub(crate) fn send_settings(args: &SendArgs) -> Result<SendSettings, ConfigError> {
    let path = args.input.config.as_deref();
    let mut file = load_file(path)?;
    let list = list_settings(&args.input, &mut file, path)?;

    let window = contact_window(&file.campaign, path)?;
    if args.wait_for_window && window.is_none() {
        return Err(ConfigError::Flag {
            flag: "--wait-for-window",
            reason: tr!("config-no-hours-to-wait"),
        });
    }
    let origin = origin(args.base_url.as_deref(), &file.api, path)?;
    if origin.is_none() && !args.dry_run {
        return Err(ConfigError::NoEndpoint);
    }
    let timeout = api_timeout(file.api.timeout.as_deref(), path)?;
    let rate = rate(args.rate, file.limits.requests_per_second, path)?;
    let max_in_flight = max_in_flight(file.limits.max_in_flight_per_token, path)?;
    let retry = retry_policy(&file.retry, path)?;
    let limit = match args.limit {
        Some(0) => {
            return Err(ConfigError::Flag {
                flag: "--limit",
                reason: tr!("config-limit-zero"),
            });
        }
        limit => limit,
    };
    let max_failures = flag_or_key(
        ("--max-failures", args.max_failures),
        ("campaign.max_failures", file.campaign.max_failures),
        path,
        Ok::<u32, String>,
    )?
    .unwrap_or(DEFAULT_MAX_FAILURES);

    let results = match &args.results {
        Some(p) => p.clone(),
        // A list with a template_name column but no name here is settled from its
        // header, later (see `default_results`).
        None => crate::journal::naming::default_results(
            &list.input,
            args.dry_run,
            list.hsm.template_name.is_some(),
        ),
    };

    Ok(SendSettings {
        list,
        results,
        dry_run: args.dry_run,
        resume: args.resume,
        retry_failed: args.retry_failed,
        retry_unknown: args.retry_unknown,
        origin,
        timeout,
        idle_timeout: duration(
            path,
            "api.idle_timeout",
            file.api.idle_timeout.as_deref(),
            crate::send::api::DEFAULT_IDLE_TIMEOUT,
        )?,
        rate,
        max_in_flight,
        retry,
        quiet: args.quiet,
        log_format: args.log_format,
        quota_check: !args.no_quota_check,
        partial: args.partial,
        summary_json: args.summary_json.clone(),
        window,
        wait_for_window: args.wait_for_window,
        max_failures,
        template_check: !args.no_template_check,
        limit,
        preview: args.preview,
        xlsx: !args.no_xlsx && file.results.xlsx.unwrap_or(true),
        timezone: campaign_timezone(&file.campaign, path)?,
        progress_interval: duration(
            path,
            "report.progress_interval",
            file.report.progress_interval.as_deref(),
            crate::progress::DEFAULT_INTERVAL,
        )?,
        ledger: ledger_settings(args.ledger.as_deref(), args.no_ledger, &file.ledger, path)?,
        allow_repeat: args.allow_repeat,
        resend_changed: args.resend_changed,
    })
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

/// `api.timeout`: at least 1 s.
fn api_timeout(value: Option<&str>, path: Option<&Path>) -> Result<Duration, ConfigError> {
    let timeout = duration(path, "api.timeout", value, DEFAULT_TIMEOUT)?;
    if timeout < MIN_TIMEOUT {
        return Err(key_error(
            path,
            "api.timeout",
            tr!(
                "config-timeout-short",
                value = humantime::format_duration(timeout).to_string()
            ),
        ));
    }
    Ok(timeout)
}

/// `--rate` or `limits.requests_per_second`: requests per second per token.
fn rate(flag: Option<f64>, key: Option<f64>, path: Option<&Path>) -> Result<f64, ConfigError> {
    let rate = flag_or_key(
        ("--rate", flag),
        ("limits.requests_per_second", key),
        path,
        |r: f64| {
            if r.is_finite() && r >= MIN_RATE {
                Ok(r)
            } else {
                Err(tr!(
                    "config-rate",
                    value = r,
                    min = format!("{MIN_RATE:.6}")
                ))
            }
        },
    )?
    .unwrap_or(DEFAULT_RATE);
    Ok(rate)
}

/// `limits.max_in_flight_per_token`: 1 or 2, what the API accepts.
fn max_in_flight(key: Option<usize>, path: Option<&Path>) -> Result<usize, ConfigError> {
    let max_in_flight = match key {
        None => API_MAX_IN_FLIGHT,
        Some(n) if (1..=API_MAX_IN_FLIGHT).contains(&n) => n,
        Some(n) => {
            return Err(key_error(
                path,
                "limits.max_in_flight_per_token",
                tr!("config-in-flight", value = n, max = API_MAX_IN_FLIGHT),
            ));
        }
    };
    Ok(max_in_flight)
}

/// `[retry]`: attempts, back-off and when the service counts as down.
fn retry_policy(section: &RetrySection, path: Option<&Path>) -> Result<RetryPolicy, ConfigError> {
    let defaults = RetryPolicy::default();
    let retry = RetryPolicy {
        max_attempts: match section.max_attempts {
            Some(0) => {
                return Err(key_error(
                    path,
                    "retry.max_attempts",
                    tr!("config-at-least-one"),
                ));
            }
            Some(n) => n,
            None => defaults.max_attempts,
        },
        base_delay: duration(
            path,
            "retry.base_delay",
            section.base_delay.as_deref(),
            defaults.base_delay,
        )?,
        max_delay: duration(
            path,
            "retry.max_delay",
            section.max_delay.as_deref(),
            defaults.max_delay,
        )?,
        max_consecutive_failures: match section.max_consecutive_failures {
            Some(0) => {
                return Err(key_error(
                    path,
                    "retry.max_consecutive_failures",
                    tr!("config-at-least-one"),
                ));
            }
            Some(n) => n,
            None => defaults.max_consecutive_failures,
        },
    };
    if retry.max_delay < retry.base_delay {
        return Err(key_error(path, "retry.max_delay", tr!("config-max-delay")));
    }
    Ok(retry)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn send_args(extra: &[&str]) -> SendArgs {
        use clap::Parser;
        let mut argv = vec!["wolkvox-dispatch", "send", "dir/list.csv"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::parse_from(argv).command {
            crate::cli::Command::Send(a) => a,
            _ => unreachable!(),
        }
    }

    fn config_file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("temp file");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn defaults_apply_without_a_file() {
        let s = send_settings(&send_args(&["--base-url", "http://127.0.0.1:9/"])).unwrap();
        assert_eq!(s.rate, DEFAULT_RATE);
        assert_eq!(s.max_in_flight, 2);
        assert_eq!(s.list.max_rows, 10_000);
        assert_eq!(s.timeout, Duration::from_secs(60));
        assert_eq!(s.origin.as_deref(), Some("http://127.0.0.1:9"));
        assert_eq!(s.results, PathBuf::from("dir/list.results.csv"));
        assert_eq!(s.retry, RetryPolicy::default());
    }

    #[test]
    fn flags_override_the_file_and_the_file_overrides_defaults() {
        let f = config_file(
            "[api]\nserver = \"0042\"\ntimeout = \"5s\"\n[limits]\nrequests_per_second = 3\nmax_rows = 50\n[columns]\ntelephone = \"Celular\"\n",
        );
        let path = f.path().to_str().unwrap();
        let s = send_settings(&send_args(&["--config", path, "--rate", "7"])).unwrap();
        assert_eq!(s.rate, 7.0);
        assert_eq!(s.list.max_rows, 50);
        assert_eq!(s.timeout, Duration::from_secs(5));
        assert_eq!(s.list.columns.telephone, "Celular");
        assert_eq!(s.origin.as_deref(), Some("https://wv0042.wolkvox.com"));
        let s = send_settings(&send_args(&["--config", path, "--max-rows", "9"])).unwrap();
        assert_eq!(s.list.max_rows, 9);
        assert_eq!(s.rate, 3.0);
    }

    #[test]
    fn more_than_two_in_flight_is_refused_naming_key_and_file() {
        let f = config_file("[limits]\nmax_in_flight_per_token = 3\n");
        let path = f.path().to_str().unwrap();
        let err = send_settings(&send_args(&["--config", path, "--dry-run"])).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("limits.max_in_flight_per_token"), "{text}");
        assert!(text.contains(path), "{text}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        let f = config_file("[limits]\nrequest_per_second = 3\n");
        let err = send_settings(&send_args(&[
            "--config",
            f.path().to_str().unwrap(),
            "--dry-run",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("request_per_second"), "{err}");
    }

    #[test]
    fn toml_mistakes_are_explained_in_spanish_too() {
        use crate::i18n::{Lang, with_lang};
        let load = |text: &str| {
            let f = config_file(text);
            with_lang(Lang::Es, || {
                FileConfig::load(f.path()).unwrap_err().to_string()
            })
        };
        let typo = load("[limits]\nrequest_per_second = 3\n");
        assert!(
            typo.contains("error de TOML en la línea 2, columna 1"),
            "{typo}"
        );
        assert!(
            typo.contains("clave desconocida `request_per_second`; las claves posibles son: `requests_per_second`"),
            "{typo}"
        );
        let quoted = load("[limits]\nmax_rows = \"tres\"\n");
        assert!(quoted.contains("tipo de valor equivocado"), "{quoted}");
        let lang = load("[ui]\nlang = \"fr\"\n");
        assert!(
            lang.contains("valor desconocido `fr`; se esperaba `en` o `es`"),
            "{lang}"
        );
        // Anything else keeps the crate's words, with the place in Spanish.
        let broken = load("[limits\n");
        assert!(broken.contains("error de TOML en la línea 1"), "{broken}");
        // English is the crate's own text.
        let f = config_file("[limits]\nrequest_per_second = 3\n");
        let english = FileConfig::load(f.path()).unwrap_err().to_string();
        assert!(
            english.contains("TOML parse error at line 2, column 1"),
            "{english}"
        );
        assert!(
            english.contains("unknown field `request_per_second`"),
            "{english}"
        );
    }

    #[test]
    fn server_ids_cannot_change_the_host() {
        for bad in ["0042.evil.com/", "a b", "x@y", "", "00/42"] {
            let f = config_file(&format!("[api]\nserver = {bad:?}\n"));
            let err =
                send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap_err();
            assert!(err.to_string().contains("api.server"), "{bad}: {err}");
        }
    }

    #[test]
    fn base_urls_are_origins_only() {
        for bad in ["ftp://x", "http://h/?api=x", "not a url", "https://u:p@h"] {
            assert!(
                send_settings(&send_args(&["--base-url", bad])).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn real_runs_need_an_endpoint_dry_runs_do_not() {
        assert!(matches!(
            send_settings(&send_args(&[])),
            Err(ConfigError::NoEndpoint)
        ));
        let s = send_settings(&send_args(&["--dry-run"])).unwrap();
        assert_eq!(s.results, PathBuf::from("dir/list.dry-run.csv"));
    }

    #[test]
    fn bad_rates_and_durations_are_refused() {
        assert!(send_settings(&send_args(&["--dry-run", "--rate", "0"])).is_err());
        assert!(send_settings(&send_args(&["--dry-run", "--rate", "NaN"])).is_err());
        let f = config_file("[api]\ntimeout = \"soon\"\n");
        let err = send_settings(&send_args(&[
            "--config",
            f.path().to_str().unwrap(),
            "--dry-run",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("api.timeout"), "{err}");
    }

    /// config.example.toml with every commented `# key = value` line uncommented.
    fn uncommented_example() -> String {
        include_str!("../config.example.toml")
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    rest
                }
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect()
    }

    #[test]
    fn the_example_config_is_valid_as_is_and_with_every_key_uncommented() {
        let f = config_file(include_str!("../config.example.toml"));
        let s = send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap();
        assert_eq!(s.list.default_country, None);
        assert_eq!(s.list.template, None);
        let f = config_file(&uncommented_example());
        let s = send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap();
        assert_eq!(s.list.columns, Columns::default());
        assert_eq!(
            s.list.default_country,
            crate::validate::phone::parse_country("CO")
        );
        assert_eq!(s.list.read.sheet.as_deref(), Some("Contactos"));
        assert_eq!(s.list.read.delimiter, Some(b','));
        assert!(!s.list.allow_duplicates);
        assert!(s.list.template.is_some());
    }

    #[test]
    fn the_spanish_example_config_has_the_same_keys_and_loads_as_is_and_uncommented() {
        let spanish = include_str!("../config.example.es.toml");
        let keys = |text: &str| -> Vec<String> {
            let mut section = "";
            let mut out = Vec::new();
            for line in text.lines() {
                if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                    section = name;
                }
                let line = line.strip_prefix("# ").unwrap_or(line);
                if let Some((key, _)) = line.split_once(" = ")
                    && !key.is_empty()
                    && key.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                {
                    out.push(format!("{section}.{key}"));
                }
            }
            out
        };
        assert_eq!(keys(spanish), keys(include_str!("../config.example.toml")));
        let f = config_file(spanish);
        send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap();
        let uncommented: String = spanish
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    format!("{rest}\n")
                }
                _ => format!("{l}\n"),
            })
            .collect();
        let f = config_file(&uncommented);
        let s = send_settings(&send_args(&["--config", f.path().to_str().unwrap()])).unwrap();
        assert_eq!(
            s.list.default_country,
            crate::validate::phone::parse_country("CO")
        );
    }

    #[test]
    fn input_phone_and_message_settings_are_checked() {
        let bad = [
            ("[input]\nencoding = \"utf-16\"\n", "input.encoding"),
            ("[input]\ndelimiter = \":\"\n", "input.delimiter"),
            ("[input]\nsheet = \" \"\n", "input.sheet"),
            (
                "[phone]\ndefault_country = \"Colombia\"\n",
                "phone.default_country",
            ),
            ("[message]\ntemplate = \"  \"\n", "message.template"),
        ];
        for (text, key) in bad {
            let f = config_file(text);
            let err = send_settings(&send_args(&[
                "--config",
                f.path().to_str().unwrap(),
                "--dry-run",
            ]))
            .unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        let f = config_file(
            "[input]\ndelimiter = \";\"\nencoding = \"latin1\"\nallow_duplicates = true\n[phone]\ndefault_country = \"mx\"\n",
        );
        let path = f.path().to_str().unwrap();
        let s = send_settings(&send_args(&["--config", path, "--dry-run"])).unwrap();
        assert_eq!(s.list.read.delimiter, Some(b';'));
        assert_eq!(s.list.read.encoding, Encoding::Windows1252);
        assert!(s.list.allow_duplicates);
        assert_eq!(
            s.list.default_country,
            crate::validate::phone::parse_country("MX")
        );
        // Flags win over the file.
        let s = send_settings(&send_args(&[
            "--config",
            path,
            "--dry-run",
            "--delimiter",
            "tab",
        ]))
        .unwrap();
        assert_eq!(s.list.read.delimiter, Some(b'\t'));
        assert!(send_settings(&send_args(&["--dry-run", "--delimiter", "::"])).is_err());
        let err = send_settings(&send_args(&[
            "--dry-run",
            "--template",
            "/nonexistent/t.j2",
        ]))
        .unwrap_err();
        assert!(err.to_string().contains("--template"), "{err}");
    }

    #[test]
    fn campaign_keys_are_read_and_checked_naming_the_key() {
        let f = config_file(
            "[campaign]\nsuppress = [\"optout.csv\", \"/abs/bajas.txt\"]\nhours = \"mon-fri 07:00-19:00\"\ntimezone = \"America/Bogota\"\nholidays = [\"2026-12-08\"]\n",
        );
        let path = f.path().to_str().unwrap();
        let s = send_settings(&send_args(&[
            "--config",
            path,
            "--dry-run",
            "--suppress",
            "x.txt",
        ]))
        .unwrap();
        let dir = f.path().parent().unwrap();
        assert_eq!(
            s.list.suppress,
            [
                PathBuf::from("x.txt"),
                dir.join("optout.csv"),
                PathBuf::from("/abs/bajas.txt")
            ]
        );
        let window = s.window.expect("a window");
        assert!(window.is_open("2026-12-07T15:00:00Z".parse().unwrap()));
        assert!(!window.is_open("2026-12-08T15:00:00Z".parse().unwrap()));

        for (text, key) in [
            (
                "[campaign]\nhours = \"mon-fri 07:00\"\ntimezone = \"UTC\"\n",
                "campaign.hours",
            ),
            (
                "[campaign]\nhours = \"mon-fri 07:00-19:00\"\n",
                "campaign.timezone",
            ),
            (
                "[campaign]\nhours = \"mon 07:00-19:00\"\ntimezone = \"Bogota\"\n",
                "campaign.timezone",
            ),
            (
                "[campaign]\ntimezone = \"Mars/Olympus\"\n",
                "campaign.timezone",
            ),
            (
                "[campaign]\nholidays = [\"8/12/2026\"]\ntimezone = \"UTC\"\n",
                "campaign.holidays",
            ),
            ("[campaign]\nhour = \"mon 07:00-19:00\"\n", "hour"),
        ] {
            let f = config_file(text);
            let p = f.path().to_str().unwrap();
            let err = send_settings(&send_args(&["--config", p, "--dry-run"])).unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
            let err = validate_settings(&ValidateArgs {
                input: InputArgs {
                    input: "l.csv".into(),
                    config: Some(f.path().to_owned()),
                    ..InputArgs::default()
                },
                ..ValidateArgs::default()
            })
            .unwrap_err();
            assert!(err.to_string().contains(key), "{text}: {err}");
        }
        // Holidays alone: every hour of every other day.
        let f = config_file("[campaign]\nholidays = [\"2026-12-08\"]\ntimezone = \"UTC\"\n");
        let s = send_settings(&send_args(&[
            "--config",
            f.path().to_str().unwrap(),
            "--dry-run",
        ]))
        .unwrap();
        let window = s.window.unwrap();
        assert!(window.is_open("2026-12-07T03:00:00Z".parse().unwrap()));
        assert!(!window.is_open("2026-12-08T03:00:00Z".parse().unwrap()));
    }

    #[test]
    fn waiting_for_a_window_needs_one() {
        let err = send_settings(&send_args(&["--dry-run", "--wait-for-window"])).unwrap_err();
        assert!(err.to_string().contains("campaign.hours"), "{err}");
    }

    #[test]
    fn hsm_flags_override_the_file_and_change_the_default_results() {
        let f = config_file(
            "[hsm]\ntemplate_name = \" bienvenida \"\nvars = [\"nombre\", \" ciudad \"]\n",
        );
        let path = f.path().to_str().unwrap();
        let s = send_settings(&send_args(&["--config", path, "--dry-run"])).unwrap();
        assert_eq!(s.list.hsm.template_name.as_deref(), Some("bienvenida"));
        assert_eq!(
            s.list.hsm.vars,
            Some(vec!["nombre".to_owned(), "ciudad".to_owned()])
        );
        assert!(!s.list.hsm.vars_from_flag);
        assert_eq!(s.results, PathBuf::from("dir/list.hsm.dry-run.csv"));

        let s = send_settings(&send_args(&[
            "--config",
            path,
            "--hsm",
            "cita_recordatorio",
            "--hsm-vars",
            "nombre,fecha,hora",
            "--base-url",
            "http://127.0.0.1:9",
        ]))
        .unwrap();
        assert_eq!(
            s.list.hsm.template_name.as_deref(),
            Some("cita_recordatorio")
        );
        assert_eq!(s.list.hsm.vars.as_ref().map(Vec::len), Some(3));
        assert!(s.list.hsm.vars_from_flag);
        assert_eq!(s.results, PathBuf::from("dir/list.hsm.results.csv"));
        assert_eq!(
            crate::journal::naming::default_results(Path::new("l.csv"), false, false),
            PathBuf::from("l.results.csv")
        );
    }

    #[test]
    fn empty_hsm_names_are_refused_naming_the_flag_or_key() {
        let err = send_settings(&send_args(&["--dry-run", "--hsm", " "])).unwrap_err();
        assert!(err.to_string().starts_with("--hsm:"), "{err}");
        let err =
            send_settings(&send_args(&["--dry-run", "--hsm-vars", "nombre,,hora"])).unwrap_err();
        assert!(err.to_string().contains("variable 2"), "{err}");
        let dry_run_with = |text: &str| {
            let f = config_file(text);
            send_settings(&send_args(&[
                "--config",
                f.path().to_str().unwrap(),
                "--dry-run",
            ]))
        };
        for text in [
            "[hsm]\ntemplate_name = \"\"\n",
            "[hsm]\nvars = [\"a\", \"\"]\n",
        ] {
            let err = dry_run_with(text).unwrap_err();
            assert!(err.to_string().contains("key `hsm."), "{err}");
        }
        // vars is a TOML array, not the flag's comma-separated string.
        let err = dry_run_with("[hsm]\nvars = \"nombre,fecha\"\n").unwrap_err();
        assert!(err.to_string().contains("vars"), "{err}");
    }

    #[test]
    fn ledger_settings_flag_key_default_and_off() {
        let dry = |extra: &[&str]| {
            let mut args = vec!["--dry-run"];
            args.extend_from_slice(extra);
            send_settings(&send_args(&args))
        };
        let f = config_file(
            "[ledger]\npath = \"state/l.sqlite3\"\nrepeat_window = \"2d\"\nmax_per_phone = \"3/12h\"\nkeep = \"90d\"\n",
        );
        let config = f.path().to_str().unwrap().to_owned();
        let s = dry(&["--config", &config]).unwrap();
        let l = s.ledger.expect("on by default");
        // Relative to the config file's folder.
        assert_eq!(
            l.path,
            f.path().parent().unwrap().join("state/l.sqlite3"),
            "{l:?}"
        );
        assert_eq!(l.repeat_window, Duration::from_secs(2 * 86_400));
        assert_eq!(
            l.cap,
            Some(crate::ledger::Cap {
                count: 3,
                per: Duration::from_secs(12 * 3600)
            })
        );
        assert_eq!(l.keep, Some(Duration::from_secs(90 * 86_400)));
        let s = dry(&["--config", &config, "--ledger", "/x/y.sqlite3"]).unwrap();
        assert_eq!(s.ledger.unwrap().path, PathBuf::from("/x/y.sqlite3"));
        assert!(
            dry(&["--config", &config, "--no-ledger"])
                .unwrap()
                .ledger
                .is_none()
        );
        let s = dry(&[]).unwrap();
        let l = s.ledger.expect("default place");
        assert!(l.path.ends_with("wolkvox-dispatch/ledger.sqlite3"), "{l:?}");
        assert_eq!(l.repeat_window, crate::ledger::DEFAULT_REPEAT_WINDOW);
        assert_eq!((l.cap, l.keep), (None, None));
        // Mistakes name the key, even with --no-ledger.
        let bad = config_file("[ledger]\nmax_per_phone = \"twice\"\n");
        let err = dry(&["--config", bad.path().to_str().unwrap(), "--no-ledger"]).unwrap_err();
        assert!(err.to_string().contains("ledger.max_per_phone"), "{err}");
        let bad = config_file("[ledger]\nrepeat_window = \"a week\"\n");
        let err = dry(&["--config", bad.path().to_str().unwrap()]).unwrap_err();
        assert!(err.to_string().contains("ledger.repeat_window"), "{err}");
    }
}
