/*!
The config file as the user writes it: one struct per `[section]`, every key
optional, unknown keys refused (`deny_unknown_fields`) so a typo is an error that
names it. Nothing here is checked beyond TOML's types: `merge` checks each value.
The `[ledger]` section lives in `ledger`.
*/

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;
use super::ledger::LedgerSection;
use crate::tr;

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
pub(super) fn toml_message(text: &str) -> String {
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
pub(super) fn toml_syntax(text: &str) -> String {
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

pub(super) fn load_file(path: Option<&Path>) -> Result<FileConfig, ConfigError> {
    path.map(FileConfig::load)
        .transpose()
        .map(Option::unwrap_or_default)
}
