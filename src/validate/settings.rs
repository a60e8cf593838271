/*!
What reading and judging a list needs: the columns to read, the connector of
rows without one, the HSM template and its variables, the opt-out lists. Built
by `config` from flags and the config file; owned here, where it is used.
*/

use std::path::PathBuf;

use crate::input::ReadOptions;
use crate::validate::template::TemplateSource;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Columns {
    pub(crate) telephone: String,
    pub(crate) message: String,
    pub(crate) connector_id: String,
}

impl Default for Columns {
    fn default() -> Self {
        Self {
            telephone: "telephone".into(),
            message: "message".into(),
            connector_id: "connector_id".into(),
        }
    }
}

/// What reading and validating a list needs: shared by `validate` and `send`.
#[derive(Debug, Clone, Default)]
pub struct ListSettings {
    pub(crate) input: PathBuf,
    pub(crate) max_rows: u64,
    pub(crate) columns: Columns,
    /// Used for rows whose connector_id cell is missing or empty.
    pub(crate) connector_id: Option<String>,
    /// Sheet, encoding and delimiter.
    pub read: ReadOptions,
    /// Send repeated telephone + message rows instead of marking them `duplicate`.
    pub(crate) allow_duplicates: bool,
    /// Country of national numbers (no country code), e.g. CO.
    pub(crate) default_country: Option<crate::validate::phone::Country>,
    /// Renders each row's message instead of reading a message column.
    pub(crate) template: Option<TemplateSource>,
    /// Opt-out lists: `--suppress` files, then `campaign.suppress` (resolved against
    /// the config file's directory).
    pub(crate) suppress: Vec<PathBuf>,
    /// HSM template settings; empty for free messages.
    pub(crate) hsm: HsmSettings,
}

/// What `--hsm`/`--hsm-vars` or `[hsm]` asked for. A list is sent as templates when a
/// name is given here, or when it has a `template_name` column and no message column
/// (see `validate::Validator::new`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct HsmSettings {
    /// The template for rows whose `template_name` cell is missing or empty.
    pub(crate) template_name: Option<String>,
    /// Columns whose values, in order, are joined with `;` into `template_vars`.
    pub(crate) vars: Option<Vec<String>>,
    /// Whether the variables came from `--hsm-vars` (else from the file): errors name
    /// the right place.
    pub(crate) vars_from_flag: bool,
}

impl HsmSettings {
    /// How messages name where the variable list was set.
    pub(crate) fn vars_source(&self) -> &'static str {
        if self.vars_from_flag {
            "--hsm-vars"
        } else {
            "hsm.vars"
        }
    }
}

/// The longest connector id accepted: Wolkvox's are short numbers.
pub(crate) const MAX_CONNECTOR_ID_CHARS: usize = 64;

/// A connector id is short and made of letters, digits, `-` or `_`: anything else (a
/// newline, a quote, a space) is a mistake in the list or the config, never an id.
pub(crate) fn check_connector_id(id: &str) -> Result<(), String> {
    if id.chars().count() > MAX_CONNECTOR_ID_CHARS {
        return Err(crate::tr!(
            "connector-too-long",
            max = MAX_CONNECTOR_ID_CHARS
        ));
    }
    if let Some(bad) = id
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(crate::tr!(
            "connector-bad-character",
            id = crate::text::escape(id).to_string(),
            bad = crate::text::escape(&bad.to_string()).to_string()
        ));
    }
    Ok(())
}
