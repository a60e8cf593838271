/*!
Turns each row into a verdict: a `Job` ready to send, or the reasons it is
invalid, or a pointer to the earlier row it duplicates.

The validator is built once from the header (a missing required column is an
error before any row is looked at) and then judges rows one at a time, so
`validate` streams. It owns the content key that resume and duplicate
detection use: the normalized telephone plus what would be sent, never the
row's position, so an edited or re-sorted list still matches.

Here: what a verdict is (`Verdict`, `Job`, `Message`, `Problem`) and judging one row
on its own. `columns` reads the header (which column plays which role, or the
`HeaderError`); `settle` gives the verdict that depends on the rows before
(duplicates) and the opt-out lists (`suppress`), and judges rows on a second thread;
`phone` normalizes numbers, `template` renders message templates, `key` makes the
content key, `settings` holds what the validator is told.
*/

mod columns;
pub(crate) mod key;
pub(crate) mod phone;
pub(crate) mod settings;
mod settle;
pub(crate) mod suppress;
pub(crate) mod template;

use std::path::PathBuf;
use std::sync::Arc;

use crate::i18n::{self, Lang, Localized};
use crate::input::Record;
use crate::input::header;
use crate::tr;
pub use columns::HeaderError;
use columns::{
    Kind, Positions, TemplateColumns, Vars, columns_summary, find_role, header_list, message_kind,
    used_columns,
};
pub use settings::ListSettings;
pub(crate) use settings::{Columns, HsmSettings, check_connector_id};

pub(crate) use key::content_key;

use crate::validate::settle::{Judged, Settle};
use crate::validate::suppress::Suppression;
use crate::validate::template::MessageTemplate;

/// WhatsApp caps a text body at this many characters.
pub(crate) const MAX_MESSAGE_CHARS: usize = 4096;

/// What a job asks the API to deliver: the one value the dispatcher carries, whatever
/// the kind; `api` turns it into the right call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A free-form text (`api=send_message_official`).
    Free { text: String },
    /// An approved HSM template (`api=send_template_official`), which opens the
    /// conversation. Every field is sent as is; an absent one is an empty string.
    Template {
        name: String,
        /// The template's variables, in order, joined with `;`.
        vars: String,
        customer_id: String,
        /// A public https URL of the media for templates with a media header.
        url_attach: String,
    },
}

impl Message {
    /// The message as it would be sent, for a dry run's results: the text, or the
    /// template's name and variables.
    pub(crate) fn as_sent(&self) -> String {
        match self {
            Message::Free { text } => text.clone(),
            Message::Template { name, vars, .. } => format!("template {name}, vars {vars:?}"),
        }
    }
}

/// Optional column that names the template per row (overrides `--hsm`).
pub(crate) const TEMPLATE_NAME_COLUMN: &str = "template_name";
/// Optional column with the template's variables already joined with `;`.
pub(crate) const TEMPLATE_VARS_COLUMN: &str = "template_vars";
/// Optional columns passed through to the template API.
pub(crate) const CUSTOMER_ID_COLUMN: &str = "customer_id";
pub(crate) const URL_ATTACH_COLUMN: &str = "url_attach";
/// Separates the variables in `template_vars`.
const VAR_SEPARATOR: char = ';';

/// A row that passed validation: everything the API call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub(crate) row: u64,
    /// The row number the spreadsheet shows (`Record::shown`), for people.
    pub(crate) shown: u64,
    /// Digits only, with the country code.
    pub(crate) telephone: String,
    pub(crate) connector_id: String,
    pub(crate) message: Message,
    /// Identifies this delivery across runs (see `content_key`).
    pub(crate) key: String,
    /// The key versions before "the same message" had one meaning gave this row, when
    /// it differs from `key` (see `key::legacy_key`): resume looks it up too.
    pub(crate) legacy_key: Option<String>,
}

/// One thing wrong with a row. The reason is shown in the current language and
/// recorded in English in the results (which programs read).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub(crate) column: String,
    pub(crate) reason: Localized,
}

impl Problem {
    /// A problem found in the current language; `Validator::check` fills in the
    /// English the results record.
    pub(crate) fn new(column: &str, reason: String) -> Problem {
        Problem {
            column: column.to_owned(),
            reason: Localized::from(reason),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(Job),
    Invalid {
        row: u64,
        /// The row number the spreadsheet shows.
        shown: u64,
        /// The telephone normalized if it was valid, else as written.
        telephone: String,
        problems: Vec<Problem>,
    },
    Duplicate {
        row: u64,
        shown: u64,
        telephone: String,
        /// The earlier row with the same telephone and message.
        of_row: u64,
        /// The row number the spreadsheet shows for `of_row`.
        of_shown: u64,
    },
    /// A valid row whose number is on an opt-out list: never sent, not even on resume.
    Suppressed {
        row: u64,
        shown: u64,
        telephone: String,
        /// The content key, so the outcome is journaled and a resumed run keeps it.
        key: String,
        /// The opt-out list that names the number.
        list: PathBuf,
    },
}

impl Verdict {
    pub fn row(&self) -> u64 {
        match self {
            Verdict::Valid(job) => job.row,
            Verdict::Invalid { row, .. }
            | Verdict::Duplicate { row, .. }
            | Verdict::Suppressed { row, .. } => *row,
        }
    }

    /// The row number the spreadsheet shows, for people.
    pub fn shown(&self) -> u64 {
        match self {
            Verdict::Valid(job) => job.shown,
            Verdict::Invalid { shown, .. }
            | Verdict::Duplicate { shown, .. }
            | Verdict::Suppressed { shown, .. } => *shown,
        }
    }
}

/// Judges rows of one file.
#[derive(Debug)]
pub struct Validator {
    positions: Positions,
    /// How problems name the telephone, message and connector columns.
    labels: Columns,
    default_connector: Option<String>,
    default_country: Option<crate::validate::phone::Country>,
    template: Option<MessageTemplate>,
    summary: String,
    /// The columns a row's message and delivery are made from (position, header name):
    /// an error cell in one of them makes the row invalid.
    uses: Vec<(usize, String)>,
    /// What a row's verdict depends on besides the row itself.
    state: Settle,
}

impl Validator {
    pub fn new(header: &[String], settings: &ListSettings) -> Result<Self, HeaderError> {
        let path = settings.input.as_path();
        let names = &settings.columns;
        let missing = |column: &str, key: &'static str| HeaderError::Missing {
            path: path.to_owned(),
            column: column.to_owned(),
            header: header_list(header),
            key,
        };
        let telephone = find_role(
            header,
            &names.telephone,
            "telephone",
            header::TELEPHONE_ALIASES,
            "columns.telephone",
            path,
        )?
        .ok_or_else(|| missing(&names.telephone, "columns.telephone"))?;
        let template = settings
            .template
            .as_ref()
            .map(|t| MessageTemplate::new(t, header, path))
            .transpose()?;
        let kind = message_kind(header, settings, template.is_some())?;
        let connector_id = find_role(
            header,
            &names.connector_id,
            "connector_id",
            header::CONNECTOR_ALIASES,
            "columns.connector_id",
            path,
        )?;
        if connector_id.is_none() && settings.connector_id.is_none() {
            return Err(HeaderError::NoConnector {
                path: path.to_owned(),
                column: names.connector_id.clone(),
            });
        }
        let label = |i: Option<usize>, fallback: &str| {
            i.and_then(|i| header.get(i))
                .cloned()
                .unwrap_or_else(|| fallback.to_owned())
        };
        let labels = Columns {
            telephone: label(Some(telephone), &names.telephone),
            message: match &kind {
                Kind::Free { message } => label(Some(*message), &names.message),
                Kind::Rendered => "message (template)".into(),
                Kind::Template(_) => names.message.clone(),
            },
            connector_id: label(connector_id, &names.connector_id),
        };
        let summary = columns_summary(
            header,
            &labels,
            &kind,
            template.as_ref(),
            connector_id,
            settings,
        );
        let uses = used_columns(header, telephone, connector_id, &kind, template.as_ref());
        Ok(Self {
            uses,
            positions: Positions {
                telephone,
                kind,
                connector_id,
                width: header.len(),
            },
            labels,
            default_connector: settings.connector_id.clone(),
            default_country: settings.default_country,
            template,
            summary,
            state: Settle::new(settings.allow_duplicates),
        })
    }

    /// Marks valid rows whose number is on one of these opt-out lists `suppressed`
    /// (before duplicate detection, so copies of such a row are suppressed too).
    pub(crate) fn with_suppression(mut self, suppression: Arc<Suppression>) -> Self {
        self.state.suppression = Some(suppression);
        self
    }

    /// The telephone column's name, as problems with it name it.
    pub(crate) fn telephone_label(&self) -> &str {
        &self.labels.telephone
    }

    /// Which column is used for what, e.g. `columns: telephone <- "Celular", message <- "Mensaje", ...`.
    pub(crate) fn columns_summary(&self) -> &str {
        &self.summary
    }

    /// Whether this list is sent as HSM templates.
    pub(crate) fn is_template(&self) -> bool {
        matches!(self.positions.kind, Kind::Template(_))
    }

    /// Judges one row. Later rows with the same content as an earlier valid row
    /// are duplicates, unless duplicates are allowed.
    pub fn check(&mut self, record: &Record) -> Verdict {
        let judged = self.judge_row(record);
        self.state.settle(judged)
    }

    /// A row's verdict as far as the row alone decides it.
    fn judge_row(&self, record: &Record) -> Judged {
        let (telephone, connector, message, mut problems) = self.judge(record);
        match (telephone, connector, message) {
            (Some(telephone), Some(connector_id), Some(message)) if problems.is_empty() => {
                Judged::Fine {
                    row: record.row,
                    shown: record.shown,
                    telephone,
                    connector_id,
                    message,
                }
            }
            (telephone, _, _) => {
                if i18n::current() != Lang::En {
                    // The same judgement in English, for the results file.
                    let english = i18n::with_lang(Lang::En, || self.judge(record).3);
                    for (problem, english) in problems.iter_mut().zip(english) {
                        problem.reason.english = english.reason.english;
                    }
                }
                let raw_phone = record.fields.get(self.positions.telephone);
                Judged::Invalid(Verdict::Invalid {
                    row: record.row,
                    shown: record.shown,
                    // The normalized number when it was fine, so the row can be found by it.
                    telephone: telephone
                        .unwrap_or_else(|| excerpt(raw_phone.map(String::as_str).unwrap_or(""))),
                    problems,
                })
            }
        }
    }

    /// A row's telephone, connector and message, and its problems; changes nothing.
    #[allow(clippy::type_complexity, reason = "the parts of one row, used once")]
    fn judge(
        &self,
        record: &Record,
    ) -> (
        Option<String>,
        Option<String>,
        Option<Message>,
        Vec<Problem>,
    ) {
        let p = &self.positions;
        let field = |i: usize| record.fields.get(i).map(String::as_str).unwrap_or("");
        let raw_phone = field(p.telephone);
        let mut problems: Vec<Problem> = shape_problem(record, p.width).into_iter().collect();
        for (column, error) in &record.errors {
            if let Some((_, name)) = self.uses.iter().find(|(c, _)| c == column) {
                problems.push(Problem::new(name, tr!("row-cell-error", error = error)));
            }
        }
        let telephone = match phone::normalize(raw_phone, self.default_country) {
            Ok(t) => Some(t),
            Err(reason) => {
                problems.push(Problem::new(&self.labels.telephone, reason));
                None
            }
        };
        let message = self.message(record, &field, &mut problems);
        let connector = self.connector(&field, &mut problems);
        (telephone, connector, message, problems)
    }

    /// The row's message, or `None` with its problems added.
    fn message<'a>(
        &self,
        record: &Record,
        field: &impl Fn(usize) -> &'a str,
        problems: &mut Vec<Problem>,
    ) -> Option<Message> {
        let check_text = |text: &str, problems: &mut Vec<Problem>| {
            if let Err(reason) = check_message(text) {
                problems.push(Problem::new(&self.labels.message, reason));
            }
        };
        match &self.positions.kind {
            Kind::Free { message } => {
                let text = field(*message);
                check_text(text, problems);
                Some(Message::Free {
                    text: text.to_owned(),
                })
            }
            Kind::Rendered => match self.template.as_ref().map(|t| t.render(&record.fields)) {
                Some(Ok(text)) => {
                    check_text(&text, problems);
                    Some(Message::Free { text })
                }
                Some(Err(found)) => {
                    problems.extend(found);
                    None
                }
                None => None,
            },
            Kind::Template(columns) => template_message(columns, field, problems),
        }
    }

    /// The row's connector (its cell, else `api.connector_id`), or `None` with a problem.
    fn connector<'a>(
        &self,
        field: &impl Fn(usize) -> &'a str,
        problems: &mut Vec<Problem>,
    ) -> Option<String> {
        let connector = cell_or(
            self.positions.connector_id,
            field,
            self.default_connector.as_ref(),
        );
        let problem = match &connector {
            None => Some(tr!("row-connector-empty")),
            Some(c) => check_connector_id(c).err(),
        };
        if let Some(reason) = problem {
            problems.push(Problem::new(&self.labels.connector_id, reason));
        }
        connector
    }
}

/// A problem with the row as a whole: cut because too long, or the wrong number of fields.
fn shape_problem(record: &Record, width: usize) -> Option<Problem> {
    let reason = if record.too_long {
        tr!(
            "row-too-long",
            kib = crate::input::MAX_RECORD_BYTES / 1024,
            max = MAX_MESSAGE_CHARS
        )
    } else if record.fields.len() != width {
        tr!(
            "row-field-count",
            fields = record.fields.len(),
            width = width
        )
    } else {
        return None;
    };
    Some(Problem::new("(row)", reason))
}

/// A row's cell when the column exists and the cell is not blank, else the configured default.
fn cell_or<'a>(
    column: Option<usize>,
    field: &impl Fn(usize) -> &'a str,
    default: Option<&String>,
) -> Option<String> {
    column
        .map(|i| field(i).trim())
        .filter(|cell| !cell.is_empty())
        .map(str::to_owned)
        .or_else(|| default.cloned())
}

/// A row's template message, or `None` with its problems added.
fn template_message<'a>(
    columns: &TemplateColumns,
    field: &impl Fn(usize) -> &'a str,
    problems: &mut Vec<Problem>,
) -> Option<Message> {
    let before = problems.len();
    let mut problem = |column: &str, reason: String| problems.push(Problem::new(column, reason));
    let name = cell_or(columns.name, field, columns.default_name.as_ref());
    if name.is_none() {
        problem(TEMPLATE_NAME_COLUMN, tr!("row-template-name-empty"));
    }
    let vars = match &columns.vars {
        Vars::Named(named) => {
            let mut values = Vec::with_capacity(named.len());
            for (i, (column, at)) in named.iter().enumerate() {
                let value = field(*at).trim();
                match check_var(value) {
                    Ok(()) => values.push(value),
                    Err(reason) => problem(
                        column,
                        tr!(
                            "row-template-variable-of",
                            index = i + 1,
                            count = named.len(),
                            reason = reason
                        ),
                    ),
                }
            }
            values.join(&VAR_SEPARATOR.to_string())
        }
        Vars::Joined(at) => {
            let joined = field(*at).trim();
            if !joined.is_empty() {
                for (i, value) in joined.split(VAR_SEPARATOR).enumerate() {
                    // `;` inside a value cannot be told apart here: it is a separator.
                    if let Err(reason) = check_var(value.trim()) {
                        problem(
                            TEMPLATE_VARS_COLUMN,
                            tr!("row-variable", index = i + 1, reason = reason),
                        );
                    }
                }
            }
            joined.to_owned()
        }
        Vars::None => String::new(),
    };
    let customer_id = columns
        .customer_id
        .map(|i| field(i).trim().to_owned())
        .unwrap_or_default();
    let url_attach = columns
        .url_attach
        .map(|i| field(i).trim())
        .unwrap_or_default();
    if !url_attach.is_empty()
        && let Err(reason) = check_https_url(url_attach)
    {
        problem(URL_ATTACH_COLUMN, reason);
    }
    match name {
        Some(name) if problems.len() == before => Some(Message::Template {
            name,
            vars,
            customer_id,
            url_attach: url_attach.to_owned(),
        }),
        _ => None,
    }
}

/// One template variable's value, already trimmed.
fn check_var(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(tr!("row-variable-empty"));
    }
    if value.contains(VAR_SEPARATOR) {
        return Err(tr!("row-variable-separator", value = format!("{value:?}")));
    }
    if value.contains(['\n', '\r', '\t']) {
        return Err(tr!("row-variable-line-break", value = format!("{value:?}")));
    }
    Ok(())
}

/// `url_attach` must be a public https URL: WhatsApp fetches the media from it.
fn check_https_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        tr!(
            "row-url-invalid",
            url = format!("{url:?}"),
            error = e.to_string()
        )
    })?;
    if parsed.scheme() != "https" {
        return Err(tr!("row-url-not-https", url = format!("{url:?}")));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(tr!("row-url-no-host", url = format!("{url:?}")));
    }
    Ok(())
}

/// Cells echoed in messages and in the results are cut to this many characters: a
/// hostile file must not turn one cell into megabytes of output.
const SHOWN_CHARS: usize = 40;

/// The start of an untrusted cell, marked with `…` when cut.
pub(crate) fn excerpt(text: &str) -> String {
    crate::text::excerpt(text, SHOWN_CHARS).into_owned()
}

fn check_message(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err(tr!("row-message-blank"));
    }
    let chars = text.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(tr!(
            "row-message-too-long",
            chars = chars,
            max = MAX_MESSAGE_CHARS
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
