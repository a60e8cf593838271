/*!
Turns each row into a verdict: a `Job` ready to send, or the reasons it is
invalid, or a pointer to the earlier row it duplicates.

The validator is built once from the header (a missing required column is an
error before any row is looked at) and then judges rows one at a time, so
`validate` streams. It owns the content key that resume and duplicate
detection use: the normalized telephone plus what would be sent, never the
row's position, so an edited or re-sorted list still matches.
*/

pub(crate) mod key;
pub(crate) mod phone;
pub(crate) mod settings;
pub(crate) mod suppress;
pub(crate) mod template;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::i18n::{self, Lang, Localized};
use crate::input::Record;
use crate::input::header::{self, Found};
use crate::tr;
pub use settings::ListSettings;
pub(crate) use settings::{Columns, HsmSettings, check_connector_id};

pub(crate) use key::content_key;
use key::{content_digest, hex};

use crate::validate::suppress::Suppression;
use crate::validate::template::{MessageTemplate, TemplateError};

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

#[cfg(test)]
impl Job {
    /// A free message "hola" to a realistic number ending in `row`, with content key `key`.
    pub(crate) fn for_test(row: u64, key: &str) -> Job {
        Job {
            row,
            shown: row + 1,
            telephone: format!("57300123456{row}"),
            connector_id: "1".into(),
            message: Message::Free {
                text: "hola".into(),
            },
            key: key.into(),
            legacy_key: None,
        }
    }
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

/// The columns' positions in the header.
#[derive(Debug, Clone)]
struct Positions {
    telephone: usize,
    kind: Kind,
    connector_id: Option<usize>,
    width: usize,
}

/// Which message kind the list is sent as, with the columns that kind reads.
#[derive(Debug, Clone)]
enum Kind {
    Free {
        message: usize,
    },
    /// Free messages rendered from `Validator::template` (`--template`, `message.template`).
    Rendered,
    Template(TemplateColumns),
}

#[derive(Debug, Clone)]
struct TemplateColumns {
    /// The `template_name` column, if any; its empty cells use `default_name`.
    name: Option<usize>,
    default_name: Option<String>,
    vars: Vars,
    customer_id: Option<usize>,
    url_attach: Option<usize>,
}

/// Where a row's `template_vars` comes from.
#[derive(Debug, Clone)]
enum Vars {
    /// `--hsm-vars`/`hsm.vars`: these columns (name as configured, position), in order.
    Named(Vec<(String, usize)>),
    /// A `template_vars` column, already joined with `;`.
    Joined(usize),
    /// A template without variables.
    None,
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

/// What a verdict depends on besides its own row: the rows before it (duplicates)
/// and the opt-out lists. Kept apart so rows can be judged on another thread while
/// this stays on one, in row order.
#[derive(Debug)]
struct Settle {
    allow_duplicates: bool,
    /// Each content key's first row (or, with `allow_duplicates`, how many copies
    /// followed it): duplicate detection is the one thing that grows with the list.
    seen: SeenSet,
    /// Numbers that must not be contacted.
    suppression: Option<Arc<Suppression>>,
}

/// A row judged on its own (see `Validator::judge_row`), before `Settle` has its say.
#[derive(Debug)]
enum Judged {
    Fine {
        row: u64,
        shown: u64,
        telephone: String,
        connector_id: String,
        message: Message,
    },
    Invalid(Verdict),
}

/// Rows handed to the judging thread at a time.
const BATCH: usize = 256;

impl Settle {
    /// The verdict of a row judged on its own, given the rows before it.
    fn settle(&mut self, judged: Judged) -> Verdict {
        match judged {
            Judged::Fine {
                row,
                shown,
                telephone,
                connector_id,
                message,
            } => self.accept((row, shown), telephone, connector_id, message),
            Judged::Invalid(verdict) => verdict,
        }
    }

    /// A row with no problem: suppressed, a duplicate, or a job to send.
    fn accept(
        &mut self,
        (row, shown): (u64, u64),
        telephone: String,
        connector_id: String,
        message: Message,
    ) -> Verdict {
        let digest = content_digest(&telephone, &message);
        let mut key = hex(&digest);
        let mut legacy_key = key::legacy_key(&telephone, &message);
        if let Some(list) = self
            .suppression
            .as_ref()
            .and_then(|s| s.list_for(&telephone))
        {
            return Verdict::Suppressed {
                row,
                shown,
                list: list.to_owned(),
                telephone,
                key,
            };
        }
        match self.seen.entry(&digest) {
            Entry::Occupied(mut copies) if self.allow_duplicates => {
                // Each copy keeps a key of its own, so --resume tells them apart;
                // the first copy's key is the plain one.
                copies.get_mut().0 = copies.get().0.saturating_add(1);
                key = format!("{key}#{}", copies.get().0);
                legacy_key = legacy_key.map(|k| format!("{k}#{}", copies.get().0));
            }
            Entry::Occupied(first) => {
                let (of_row, of_shown) = *first.get();
                return Verdict::Duplicate {
                    row,
                    shown,
                    telephone,
                    of_row: u64::from(of_row),
                    of_shown: u64::from(of_shown),
                };
            }
            Entry::Vacant(slot) => {
                // Four billion rows is far beyond any list that can be read in a
                // day; past it, a duplicate would name row 4294967295 as the first.
                let first = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
                slot.insert(if self.allow_duplicates {
                    (0, 0)
                } else {
                    (first(row), first(shown))
                });
            }
        }
        Verdict::Valid(Job {
            row,
            shown,
            telephone,
            connector_id,
            message,
            key,
            legacy_key,
        })
    }
}

/// The contents seen so far, in little memory: `validate` of a million-row file keeps
/// one entry per distinct row, and that is most of its memory.
///
/// Each entry is 13 bytes of the content digest (the first picks one of 256 tables, 12
/// are stored; 104 bits, so two different rows colliding is about as likely as 1 in
/// 10^19 even in a million rows) and two `u32`: the first row and the row number the
/// spreadsheet shows for it, or with `allow_duplicates` (which never reports a first
/// row) the number of copies so far and 0. 20 bytes an entry, where a `String` key
/// took about 80 and a full digest with a 64-bit row and count 32. Splitting into 256 tables also means a table that grows
/// (hashbrown doubles by reallocating) copies 1/256 of the entries, never all at once.
#[derive(Debug)]
struct SeenSet {
    tables: Box<[HashMap<[u8; 12], FirstRow>; 256]>,
}

/// A content's first row and the row number the spreadsheet shows for it (or, with
/// `allow_duplicates`, the number of copies so far and 0).
type FirstRow = (u32, u32);

impl SeenSet {
    fn new() -> Self {
        Self {
            tables: Box::new(std::array::from_fn(|_| HashMap::new())),
        }
    }

    fn entry(&mut self, digest: &[u8; 16]) -> Entry<'_, [u8; 12], FirstRow> {
        let [shard, rest @ ..] = digest;
        let mut key = [0u8; 12];
        key.copy_from_slice(&rest[..12]);
        self.tables[usize::from(*shard)].entry(key)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error("{}", tr!("header-missing", path = .path, column = .column, header = .header, key = *.key))]
    Missing {
        path: PathBuf,
        column: String,
        header: String,
        key: &'static str,
    },
    #[error("{}", tr!(
        "header-ambiguous",
        path = .path,
        role = *.role,
        first = format!("{:?}", .first),
        first_index = *.first_index,
        second = format!("{:?}", .second),
        second_index = *.second_index,
        key = *.key
    ))]
    Ambiguous {
        path: PathBuf,
        role: &'static str,
        key: &'static str,
        first: String,
        first_index: usize,
        second: String,
        second_index: usize,
    },
    #[error("{}", tr!("header-no-connector", path = .path, column = .column))]
    NoConnector { path: PathBuf, column: String },
    #[error("{}", tr!(
        "header-repeated",
        path = .path,
        column = .column,
        first = *.first,
        second = *.second
    ))]
    Repeated {
        path: PathBuf,
        column: String,
        first: usize,
        second: usize,
    },
    #[error(transparent)]
    Template(#[from] TemplateError),
    #[error("{}", tr!("header-no-message", path = .path, column = .column, header = .header))]
    NoMessage {
        path: PathBuf,
        column: String,
        header: String,
    },
    #[error("{}", tr!(
        "header-missing-var",
        path = .path,
        column = .column,
        index = *.index,
        setting = *.setting,
        header = .header
    ))]
    MissingVar {
        path: PathBuf,
        column: String,
        index: usize,
        setting: &'static str,
        header: String,
    },
    #[error("{}", tr!(
        "header-no-template-name",
        path = .path,
        setting = *.setting,
        column = TEMPLATE_NAME_COLUMN
    ))]
    NoTemplateName {
        path: PathBuf,
        setting: &'static str,
    },
    #[error("{}", tr!("header-template-and-hsm", path = .path))]
    TemplateAndHsm { path: PathBuf },
}

/// Position of `name` in `header`, ignoring case, accents and surrounding spaces.
fn find(header: &[String], name: &str, path: &Path) -> Result<Option<usize>, HeaderError> {
    match header::find(header, name, name, &[]) {
        Found::None => Ok(None),
        Found::At(i) => Ok(Some(i)),
        Found::Twice(first, second) => Err(HeaderError::Repeated {
            path: path.to_owned(),
            column: name.to_owned(),
            first: first + 1,
            second: second + 1,
        }),
    }
}

/// Position of the message column (its configured name or, by default, an alias).
fn find_message(header: &[String], settings: &ListSettings) -> Result<Option<usize>, HeaderError> {
    find_role(
        header,
        &settings.columns.message,
        "message",
        header::MESSAGE_ALIASES,
        "columns.message",
        &settings.input,
    )
}

/// Position of a role's column: its configured name, or an alias of its default name.
fn find_role(
    header: &[String],
    name: &str,
    role: &'static str,
    aliases: &[&str],
    key: &'static str,
    path: &Path,
) -> Result<Option<usize>, HeaderError> {
    match header::find(header, name, role, aliases) {
        Found::None => Ok(None),
        Found::At(i) => Ok(Some(i)),
        Found::Twice(a, b) => Err(HeaderError::Ambiguous {
            path: path.to_owned(),
            role,
            key,
            first: header.get(a).cloned().unwrap_or_default(),
            first_index: a + 1,
            second: header.get(b).cloned().unwrap_or_default(),
            second_index: b + 1,
        }),
    }
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
            state: Settle {
                allow_duplicates: settings.allow_duplicates,
                seen: SeenSet::new(),
                suppression: None,
            },
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

    /// Judges one row. Later rows with the same content as an earlier valid row
    /// are duplicates, unless duplicates are allowed.
    pub fn check(&mut self, record: &Record) -> Verdict {
        let judged = self.judge_row(record);
        self.state.settle(judged)
    }

    /// Judges every record in order, handing each verdict to `each`, and stops at the
    /// first error (after the verdicts of the rows before it, as one at a time would).
    /// Rows are judged on a second thread, a batch at a time, while the next batch is
    /// read and the one before is settled: 100,000 rows take 0.21 s instead of 0.30.
    pub(crate) fn check_all<E>(
        &mut self,
        records: impl Iterator<Item = Result<Record, E>>,
        mut each: impl FnMut(Verdict),
    ) -> Result<(), E> {
        // The judging thread borrows the rest of `self` while this one settles.
        let mut state = std::mem::replace(
            &mut self.state,
            Settle {
                allow_duplicates: false,
                seen: SeenSet::new(),
                suppression: None,
            },
        );
        let this: &Validator = self;
        // Problems are worded in this thread's language, `with_lang` included.
        let lang = i18n::current();
        let failed = std::thread::scope(|scope| {
            let (to_judge, batches) = std::sync::mpsc::sync_channel::<Vec<Record>>(2);
            let (to_settle, judged) = std::sync::mpsc::sync_channel::<Vec<Judged>>(2);
            let judging = std::thread::Builder::new()
                .name("judge-rows".into())
                .spawn_scoped(scope, move || {
                    i18n::with_lang(lang, || {
                        for batch in batches {
                            let out = batch.iter().map(|r| this.judge_row(r)).collect();
                            if to_settle.send(out).is_err() {
                                break;
                            }
                        }
                    });
                });
            let mut settle = |out: Vec<Judged>| {
                for j in out {
                    each(state.settle(j));
                }
            };
            let Ok(_judging) = judging else {
                // No thread to be had: judge here, one row at a time.
                for record in records {
                    let record = record?;
                    settle(vec![this.judge_row(&record)]);
                }
                return Ok(());
            };
            let (mut batch, mut ahead, mut failed) = (Vec::with_capacity(BATCH), 0, None);
            for record in records {
                match record {
                    Ok(record) => batch.push(record),
                    Err(e) => {
                        failed = Some(e);
                        break;
                    }
                }
                if batch.len() == BATCH {
                    let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                    if to_judge.send(full).is_err() {
                        break;
                    }
                    ahead += 1;
                    if ahead == 2 {
                        // The thread is gone only by a panic, which the scope passes on.
                        let Ok(out) = judged.recv() else { break };
                        settle(out);
                        ahead -= 1;
                    }
                }
            }
            if !batch.is_empty() {
                let _ = to_judge.send(batch);
            }
            drop(to_judge);
            for out in judged {
                settle(out);
            }
            failed.map_or(Ok(()), Err)
        });
        self.state = state;
        failed
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

/// How the list's messages are made: a template file, an HSM template, or a message column.
fn message_kind(
    header: &[String],
    settings: &ListSettings,
    has_template: bool,
) -> Result<Kind, HeaderError> {
    if has_template {
        if settings.hsm.template_name.is_some() || settings.hsm.vars.is_some() {
            return Err(HeaderError::TemplateAndHsm {
                path: settings.input.clone(),
            });
        }
        // A message column, if any, is just another column for the template.
        return Ok(Kind::Rendered);
    }
    Ok(match template_columns(header, settings)? {
        Some(columns) => Kind::Template(columns),
        None => Kind::Free {
            message: find_message(header, settings)?.ok_or_else(|| HeaderError::NoMessage {
                path: settings.input.clone(),
                column: settings.columns.message.clone(),
                header: header_list(header),
            })?,
        },
    })
}

/// Which column is used for what, for the log and `validate`.
fn columns_summary(
    header: &[String],
    labels: &Columns,
    kind: &Kind,
    template: Option<&MessageTemplate>,
    connector_id: Option<usize>,
    settings: &ListSettings,
) -> String {
    let mut parts = vec![format!("telephone <- {:?}", labels.telephone)];
    parts.push(match (&template, &kind) {
        (_, Kind::Template(columns)) => {
            let per_row = columns
                .name
                .and_then(|i| header.get(i))
                .map(|h| tr!("columns-per-row", column = format!("{h:?}")))
                .unwrap_or_default();
            match &columns.default_name {
                Some(name) => tr!(
                    "columns-hsm-named",
                    name = format!("{name:?}"),
                    per_row = per_row
                ),
                None => tr!("columns-hsm", per_row = per_row),
            }
        }
        (Some(t), _) => {
            let used: Vec<String> = t.columns().map(|c| format!("{c:?}")).collect();
            tr!(
                "columns-template",
                origin = t.origin(),
                used = if used.is_empty() {
                    tr!("columns-no-column")
                } else {
                    used.join(", ")
                }
            )
        }
        (None, _) => format!("message <- {:?}", labels.message),
    });
    parts.push(match (connector_id, &settings.connector_id) {
        (Some(_), Some(default)) => tr!(
            "columns-connector-default",
            column = format!("{:?}", labels.connector_id),
            default = format!("{default:?}")
        ),
        (Some(_), None) => format!("connector_id <- {:?}", labels.connector_id),
        (None, default) => format!(
            "connector_id <- api.connector_id {:?}",
            default.as_deref().unwrap_or_default()
        ),
    });
    tr!("columns-summary", parts = parts.join(", "))
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

/// The columns a row uses, with their header names, in header order.
fn used_columns(
    header: &[String],
    telephone: usize,
    connector_id: Option<usize>,
    kind: &Kind,
    template: Option<&MessageTemplate>,
) -> Vec<(usize, String)> {
    let mut used = vec![telephone];
    used.extend(connector_id);
    match kind {
        Kind::Free { message } => used.push(*message),
        Kind::Rendered => used.extend(template.into_iter().flat_map(|t| t.positions())),
        Kind::Template(columns) => {
            used.extend(columns.name);
            used.extend(columns.customer_id);
            used.extend(columns.url_attach);
            match &columns.vars {
                Vars::Named(named) => used.extend(named.iter().map(|(_, i)| *i)),
                Vars::Joined(i) => used.push(*i),
                Vars::None => {}
            }
        }
    }
    used.sort_unstable();
    used.dedup();
    used.into_iter()
        .filter_map(|i| header.get(i).map(|name| (i, name.clone())))
        .collect()
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

impl Validator {
    /// Whether this list is sent as HSM templates.
    pub(crate) fn is_template(&self) -> bool {
        matches!(self.positions.kind, Kind::Template(_))
    }
}

/// The template columns, when the list is sent as templates: a name is configured
/// (`--hsm`, `hsm.template_name`), or the list has a `template_name` column and either
/// no message column or a configured variable list. A list with both a message and a
/// `template_name` column is sent as free messages unless told otherwise, so the two
/// steps of a campaign can use the same list.
fn template_columns(
    header: &[String],
    settings: &ListSettings,
) -> Result<Option<TemplateColumns>, HeaderError> {
    let path = settings.input.as_path();
    let hsm = &settings.hsm;
    let name = find(header, TEMPLATE_NAME_COLUMN, path)?;
    let has_message = find_message(header, settings)?.is_some();
    let template =
        hsm.template_name.is_some() || name.is_some() && (!has_message || hsm.vars.is_some());
    if !template {
        if hsm.vars.is_some() {
            return Err(HeaderError::NoTemplateName {
                path: path.to_owned(),
                setting: hsm.vars_source(),
            });
        }
        if name.is_some() {
            tracing::warn!(
                "{}",
                tr!(
                    "columns-template-name-ignored",
                    path = path.display(),
                    column = TEMPLATE_NAME_COLUMN,
                    message = settings.columns.message
                )
            );
        }
        return Ok(None);
    }
    let vars = match &hsm.vars {
        Some(names) => {
            let mut columns = Vec::with_capacity(names.len());
            for (i, column) in names.iter().enumerate() {
                let Some(at) = find(header, column, path)? else {
                    return Err(HeaderError::MissingVar {
                        path: path.to_owned(),
                        column: column.clone(),
                        index: i + 1,
                        setting: hsm.vars_source(),
                        header: header_list(header),
                    });
                };
                columns.push((column.clone(), at));
            }
            Vars::Named(columns)
        }
        None => match find(header, TEMPLATE_VARS_COLUMN, path)? {
            Some(at) => Vars::Joined(at),
            None => Vars::None,
        },
    };
    Ok(Some(TemplateColumns {
        name,
        default_name: hsm.template_name.clone(),
        vars,
        customer_id: find(header, CUSTOMER_ID_COLUMN, path)?,
        url_attach: find(header, URL_ATTACH_COLUMN, path)?,
    }))
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
/// Header names listed in a message.
const SHOWN_COLUMNS: usize = 20;

/// The start of an untrusted cell, marked with `…` when cut.
pub(crate) fn excerpt(text: &str) -> String {
    crate::text::excerpt(text, SHOWN_CHARS).into_owned()
}

/// The header's names for a message, cut when there are many or they are long.
fn header_list(header: &[String]) -> String {
    let mut list: Vec<String> = header
        .iter()
        .take(SHOWN_COLUMNS)
        .map(|h| excerpt(h))
        .collect();
    if header.len() > SHOWN_COLUMNS {
        list.push(tr!("columns-in-all", count = header.len()));
    }
    list.join(", ")
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
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn settings(connector: Option<&str>) -> ListSettings {
        ListSettings {
            input: PathBuf::from("list.csv"),
            max_rows: 100,
            connector_id: connector.map(str::to_owned),
            ..ListSettings::default()
        }
    }

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    fn record(row: u64, fields: &[&str]) -> Record {
        Record {
            errors: Vec::new(),
            dates: Vec::new(),
            row,
            line: row + 1,
            shown: row + 1,
            fields: fields.iter().map(|s| s.to_string()).collect(),
            too_long: false,
        }
    }

    #[test]
    fn huge_cells_are_cut_in_messages_and_results() {
        let huge = "9".repeat(1_000_000);
        let mut v =
            Validator::new(&header(&["telephone", "message"]), &settings(Some("1"))).unwrap();
        let Verdict::Invalid {
            telephone,
            problems,
            ..
        } = v.check(&record(1, &[&huge, "Hola"]))
        else {
            panic!("a million digits is no telephone")
        };
        assert_eq!(telephone, format!("{}…", "9".repeat(SHOWN_CHARS)));
        assert!(
            problems.iter().all(|p| p.reason.len() < 200),
            "{problems:?}"
        );
        let names: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
        let err = Validator::new(&names, &settings(Some("1")))
            .unwrap_err()
            .to_string();
        assert!(
            err.len() < 1000 && err.contains("10000 columns in all"),
            "{err}"
        );
    }

    /// Judging on a second thread gives the verdicts one at a time would, in order:
    /// duplicates across batches, invalid rows, and an error that stops the rows.
    #[test]
    fn judging_rows_in_batches_gives_the_verdicts_of_one_at_a_time() {
        let rows: Vec<Record> = (1..=3 * BATCH as u64 + 7)
            .map(|row| {
                // Every 7th row repeats an earlier one (often in an earlier batch);
                // every 11th has a bad number.
                let n = if row % 7 == 0 { row / 7 } else { row };
                let phone = if row % 11 == 0 {
                    "123".to_owned()
                } else {
                    format!("57300{n:07}")
                };
                record(row, &[&phone, &format!("hola {n}")])
            })
            .collect();
        let new = || Validator::new(&header(&["telephone", "message"]), &settings(Some("1")));
        // The verdicts one at a time, after checking the batched ones equal them.
        let batched_equals_one_at_a_time = || {
            let mut one = new().unwrap();
            let want: Vec<Verdict> = rows.iter().map(|r| one.check(r)).collect();
            let mut batched = new().unwrap();
            let mut got = Vec::new();
            let ok: Result<(), String> =
                batched.check_all(rows.iter().cloned().map(Ok), |v| got.push(v));
            assert_eq!(ok, Ok(()));
            assert_eq!(got, want);
            (want, batched)
        };
        let (want, mut batched) = batched_equals_one_at_a_time();
        assert!(want.iter().any(|v| matches!(v, Verdict::Duplicate { .. })));
        assert!(want.iter().any(|v| matches!(v, Verdict::Invalid { .. })));
        // The state carries over to rows checked after.
        assert!(matches!(
            batched.check(&rows[0]),
            Verdict::Duplicate { of_row: 1, .. }
        ));

        // An error stops the rows after the verdicts of those before it.
        let stop = 2 * BATCH + 3;
        let mut stopped = new().unwrap();
        let mut got = Vec::new();
        let records = rows.iter().cloned().enumerate().map(|(i, r)| {
            if i == stop {
                Err("broken".to_owned())
            } else {
                Ok(r)
            }
        });
        let err = stopped.check_all(records, |v| got.push(v));
        assert_eq!(err, Err("broken".to_owned()));
        assert_eq!(got, want[..stop]);

        // Problems are worded in the caller's language on the judging thread too.
        crate::i18n::with_lang(Lang::Es, batched_equals_one_at_a_time);
    }

    #[test]
    fn header_columns_are_matched_ignoring_case_accents_and_aliases() {
        let v = Validator::new(
            &header(&["Nombre", " TELEPHONE ", "Message"]),
            &settings(Some("1")),
        );
        assert!(v.is_ok());
        let v = Validator::new(
            &header(&["Nombre", "Teléfono", "MENSAJE"]),
            &settings(Some("1")),
        )
        .unwrap();
        assert_eq!(
            v.columns_summary(),
            "columns: telephone <- \"Teléfono\", message <- \"MENSAJE\", connector_id <- api.connector_id \"1\""
        );
        let err = Validator::new(&header(&["fono", "message"]), &settings(Some("1"))).unwrap_err();
        assert!(err.to_string().contains("columns.telephone"), "{err}");
        let err = Validator::new(&header(&["telephone", "message"]), &settings(None)).unwrap_err();
        assert!(err.to_string().contains("api.connector_id"), "{err}");
        let err = Validator::new(
            &header(&["Teléfono", "Celular", "message"]),
            &settings(Some("1")),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"Teléfono\"")
                && text.contains("\"Celular\"")
                && text.contains("columns.telephone"),
            "{text}"
        );
    }

    #[test]
    fn an_explicit_column_name_turns_aliases_off() {
        let mut s = settings(Some("1"));
        s.columns.telephone = "Celular".into();
        let h = header(&["Teléfono", "celular", "Mensaje"]);
        let v = Validator::new(&h, &s).unwrap();
        assert!(
            v.columns_summary()
                .starts_with("columns: telephone <- \"celular\"")
        );
        s.columns.telephone = "whatsapp".into();
        assert!(matches!(
            Validator::new(&h, &s),
            Err(HeaderError::Missing { .. })
        ));
    }

    #[test]
    fn national_numbers_need_the_default_country() {
        let h = header(&["Celular", "Mensaje"]);
        let mut v = Validator::new(&h, &settings(Some("1"))).unwrap();
        let Verdict::Invalid { problems, .. } = v.check(&record(1, &["300 123 4567", "Hola"]))
        else {
            panic!("a national number without default_country")
        };
        assert_eq!(problems[0].column, "Celular");
        assert!(
            problems[0].reason.contains("phone.default_country"),
            "{problems:?}"
        );

        let mut s = settings(Some("1"));
        s.default_country = crate::validate::phone::parse_country("CO");
        let mut v = Validator::new(&h, &s).unwrap();
        let Verdict::Valid(job) = v.check(&record(1, &["300 123 4567", "Hola"])) else {
            panic!("valid with CO")
        };
        assert_eq!(job.telephone, "573001234567");
    }

    /// Settings with connector "1" and the message template `text` from `--template file`.
    fn with_template(text: &str, file: &str) -> ListSettings {
        ListSettings {
            template: Some(crate::validate::template::TemplateSource {
                text: text.into(),
                origin: format!("--template {file}"),
            }),
            ..settings(Some("1"))
        }
    }

    #[test]
    fn templates_make_the_message_and_the_message_column_optional() {
        let s = with_template("Hola {{ nombre }}, su cita es el {{ fecha }}.", "cita.j2");
        let h = header(&["Nombre", "Celular", "Fecha"]);
        let mut v = Validator::new(&h, &s).unwrap();
        assert_eq!(
            v.columns_summary(),
            "columns: telephone <- \"Celular\", message <- template (--template cita.j2) using \"Fecha\", \"Nombre\", connector_id <- api.connector_id \"1\""
        );
        let Verdict::Valid(job) =
            v.check(&record(1, &["Señora Núñez", "+57 300 123 4567", "martes"]))
        else {
            panic!("valid")
        };
        assert_eq!(
            job.message,
            Message::Free {
                text: "Hola Señora Núñez, su cita es el martes.".into()
            }
        );
        let Verdict::Invalid { problems, .. } =
            v.check(&record(2, &["Ana", "+57 300 123 4568", ""]))
        else {
            panic!("empty used column")
        };
        assert_eq!(problems[0].column, "Fecha");
        let long = "x".repeat(MAX_MESSAGE_CHARS);
        let Verdict::Invalid { problems, .. } =
            v.check(&record(3, &[&long, "+57 300 123 4569", "lunes"]))
        else {
            panic!("too long once rendered")
        };
        assert_eq!(problems[0].column, "message (template)");
        assert!(problems[0].reason.contains("4096"), "{problems:?}");

        let err = Validator::new(&header(&["Nombre", "Celular"]), &s).unwrap_err();
        assert!(matches!(
            err,
            HeaderError::Template(TemplateError::MissingColumn { .. })
        ));
    }

    #[test]
    fn a_message_template_and_an_hsm_template_are_not_combined() {
        let mut s = with_template("Hola {{ nombre }}", "t.j2");
        s.hsm.template_name = Some("cita".into());
        let err = Validator::new(&header(&["nombre", "telephone"]), &s).unwrap_err();
        assert!(matches!(err, HeaderError::TemplateAndHsm { .. }), "{err}");
    }

    #[test]
    fn allowed_duplicates_get_keys_of_their_own() {
        let h = header(&["telephone", "message"]);
        let mut s = settings(Some("1"));
        s.allow_duplicates = true;
        let mut v = Validator::new(&h, &s).unwrap();
        let keys: Vec<String> = (1..=3)
            .map(
                |row| match v.check(&record(row, &["+57 300 123 4567", "Hola"])) {
                    Verdict::Valid(job) => job.key,
                    other => panic!("{other:?}"),
                },
            )
            .collect();
        let plain = content_key(
            "573001234567",
            &Message::Free {
                text: "Hola".into(),
            },
        );
        assert_eq!(
            keys,
            [plain.clone(), format!("{plain}#1"), format!("{plain}#2")]
        );
    }

    #[test]
    fn rows_get_verdicts() {
        let mut v = Validator::new(
            &header(&["telephone", "message", "connector_id"]),
            &settings(None),
        )
        .unwrap();
        let Verdict::Valid(job) = v.check(&record(1, &["+57 300 123 4567", "Hola ñandú 👋", "7"]))
        else {
            panic!("valid row")
        };
        assert_eq!(job.telephone, "573001234567");
        assert_eq!(job.connector_id, "7");
        assert_eq!(
            job.message,
            Message::Free {
                text: "Hola ñandú 👋".into()
            }
        );

        let Verdict::Invalid { problems, .. } = v.check(&record(2, &["5.73E+11", " ", ""])) else {
            panic!("invalid row")
        };
        let columns: Vec<&str> = problems.iter().map(|p| p.column.as_str()).collect();
        assert_eq!(columns, ["telephone", "message", "connector_id"]);

        let long = "a".repeat(MAX_MESSAGE_CHARS + 1);
        assert!(matches!(
            v.check(&record(3, &["573001234567", &long, "1"])),
            Verdict::Invalid { .. }
        ));
        let ragged = v.check(&record(4, &["573001234567", "Hola", "1", "extra"]));
        assert!(matches!(ragged, Verdict::Invalid { .. }));

        assert_eq!(
            v.check(&record(5, &["57 300 123 4567", "Hola ñandú 👋", "9"])),
            Verdict::Duplicate {
                row: 5,
                shown: 6,
                telephone: "573001234567".into(),
                of_row: 1,
                of_shown: 2,
            }
        );
    }

    #[test]
    fn numbers_on_an_opt_out_list_are_suppressed_however_written() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("optout.txt");
        std::fs::write(&list, "+57 300 123 4567\n").unwrap();
        let suppression =
            Suppression::load(std::slice::from_ref(&list), "telephone", None).unwrap();
        let mut v = Validator::new(&header(&["telephone", "message"]), &settings(Some("1")))
            .unwrap()
            .with_suppression(Arc::new(suppression));
        let Verdict::Suppressed {
            row,
            telephone,
            list: named,
            ..
        } = v.check(&record(1, &["573001234567", "Hola"]))
        else {
            panic!("suppressed")
        };
        assert_eq!((row, telephone.as_str(), named), (1, "573001234567", list));
        // A copy of a suppressed row is suppressed too, not a duplicate of it.
        assert!(matches!(
            v.check(&record(2, &["(57) 300-123-4567", "Hola"])),
            Verdict::Suppressed { row: 2, .. }
        ));
        // An invalid row stays invalid; other numbers are untouched.
        assert!(matches!(
            v.check(&record(3, &["573001234567", " "])),
            Verdict::Invalid { .. }
        ));
        assert!(matches!(
            v.check(&record(4, &["573014567890", "Hola"])),
            Verdict::Valid(_)
        ));
    }

    #[test]
    fn connector_falls_back_to_the_config() {
        let mut v =
            Validator::new(&header(&["telephone", "message"]), &settings(Some("3"))).unwrap();
        let Verdict::Valid(job) = v.check(&record(1, &["573001234567", "x"])) else {
            panic!()
        };
        assert_eq!(job.connector_id, "3");
    }

    fn hsm_settings(name: Option<&str>, vars: Option<&[&str]>) -> ListSettings {
        let mut s = settings(Some("1"));
        s.hsm.template_name = name.map(str::to_owned);
        s.hsm.vars = vars.map(|v| v.iter().map(|c| c.to_string()).collect());
        s
    }

    fn template(name: &str, vars: &str, customer_id: &str, url_attach: &str) -> Message {
        Message::Template {
            name: name.into(),
            vars: vars.into(),
            customer_id: customer_id.into(),
            url_attach: url_attach.into(),
        }
    }

    fn problems(verdict: Verdict) -> Vec<Problem> {
        match verdict {
            Verdict::Invalid { problems, .. } => problems,
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn template_rows_join_the_named_columns_and_need_no_message_column() {
        let mut v = Validator::new(
            &header(&[
                "Nombre",
                "telephone",
                "fecha",
                "hora",
                "Customer_ID",
                "url_attach",
            ]),
            &hsm_settings(
                Some("cita_recordatorio"),
                Some(&["nombre", "fecha", "hora"]),
            ),
        )
        .unwrap();
        assert!(v.is_template());
        let Verdict::Valid(job) = v.check(&record(
            1,
            &[" Ana ", "573001234567", "martes", "10:00", "C-1", ""],
        )) else {
            panic!("valid row")
        };
        assert_eq!(
            job.message,
            template("cita_recordatorio", "Ana;martes;10:00", "C-1", "")
        );
        assert_eq!(job.key, content_key("573001234567", &job.message));
        let Verdict::Valid(job) = v.check(&record(
            2,
            &[
                "Raúl",
                "593987654321",
                "jueves",
                "8:30",
                "",
                "https://cdn.example.com/a.jpg",
            ],
        )) else {
            panic!("valid row")
        };
        assert_eq!(
            job.message,
            template(
                "cita_recordatorio",
                "Raúl;jueves;8:30",
                "",
                "https://cdn.example.com/a.jpg"
            )
        );
        assert!(matches!(
            v.check(&record(
                3,
                &["Ana", "+57 300 123 4567", "martes", "10:00", "C-2", ""]
            )),
            Verdict::Duplicate { of_row: 1, .. }
        ));
    }

    #[test]
    fn a_semicolon_or_an_empty_value_makes_a_template_row_invalid() {
        let mut v = Validator::new(
            &header(&["nombre", "telephone", "fecha", "hora", "url_attach"]),
            &hsm_settings(Some("cita"), Some(&["nombre", "fecha", "hora"])),
        )
        .unwrap();
        let p = problems(v.check(&record(1, &["Ana; Luis", "573001234567", "", "10:00", ""])));
        assert_eq!(p.len(), 2, "{p:?}");
        assert_eq!(p[0].column, "nombre");
        assert!(p[0].reason.contains("`;`"), "{}", p[0].reason);
        assert!(
            p[0].reason.contains("shift every variable after it"),
            "{}",
            p[0].reason
        );
        assert!(
            p[0].reason.starts_with("template variable 1 of 3: "),
            "{}",
            p[0].reason
        );
        assert_eq!(p[1].column, "fecha");
        assert!(p[1].reason.contains("is empty"), "{}", p[1].reason);

        let p = problems(v.check(&record(
            2,
            &["Ana", "573001234567", "mar\ntes", "10:00", ""],
        )));
        assert!(p[0].reason.contains("line break"), "{p:?}");

        for bad in [
            "http://cdn.example.com/a.jpg",
            "cdn.example.com/a.jpg",
            "https://",
        ] {
            let p = problems(v.check(&record(3, &["Ana", "573001234567", "lunes", "9:00", bad])));
            assert_eq!(p[0].column, "url_attach", "{bad}");
        }
    }

    #[test]
    fn template_names_come_from_the_column_or_the_flag() {
        let mut v = Validator::new(
            &header(&["telephone", "template_name", "template_vars"]),
            &hsm_settings(Some("bienvenida"), None),
        )
        .unwrap();
        let Verdict::Valid(job) = v.check(&record(1, &["573001234567", "promo_mayo", "Ana;20 %"]))
        else {
            panic!()
        };
        assert_eq!(job.message, template("promo_mayo", "Ana;20 %", "", ""));
        let Verdict::Valid(job) = v.check(&record(2, &["573001234567", " ", ""])) else {
            panic!()
        };
        assert_eq!(job.message, template("bienvenida", "", "", ""));
        let p = problems(v.check(&record(3, &["573001234568", "x", "Ana;;10:00"])));
        assert_eq!(p[0].column, "template_vars");
        assert!(p[0].reason.contains("variable 2: is empty"), "{p:?}");

        // The column alone makes a template list when there is no message column.
        let mut v = Validator::new(
            &header(&["telephone", "template_name"]),
            &hsm_settings(None, None),
        )
        .unwrap();
        assert!(v.is_template());
        let p = problems(v.check(&record(1, &["573001234567", ""])));
        assert_eq!(p[0].column, "template_name");
        assert!(p[0].reason.contains("--hsm"), "{p:?}");
    }

    #[test]
    fn a_list_with_message_and_template_name_columns_is_free_unless_told() {
        let h = header(&["telephone", "message", "template_name", "nombre"]);
        let v = Validator::new(&h, &hsm_settings(None, None)).unwrap();
        assert!(!v.is_template());
        let v = Validator::new(&h, &hsm_settings(None, Some(&["nombre"]))).unwrap();
        assert!(v.is_template());
        let err = Validator::new(
            &header(&["telephone", "message", "nombre"]),
            &hsm_settings(None, Some(&["nombre"])),
        )
        .unwrap_err();
        assert!(matches!(err, HeaderError::NoTemplateName { .. }), "{err}");
        assert!(err.to_string().contains("--hsm TEMPLATE_NAME"), "{err}");
        let err = Validator::new(&header(&["telephone", "nombre"]), &hsm_settings(None, None))
            .unwrap_err();
        assert!(err.to_string().contains("no `message` column"), "{err}");
        assert!(err.to_string().contains("--hsm TEMPLATE_NAME"), "{err}");
    }

    #[test]
    fn a_missing_variable_column_names_it_and_lists_the_header() {
        let err = Validator::new(
            &header(&["nombre", "telephone", "fecha"]),
            &hsm_settings(Some("cita"), Some(&["nombre", "fecha", "hora"])),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("no `hora` column for template variable 3 of hsm.vars"),
            "{text}"
        );
        assert!(text.contains("nombre, telephone, fecha"), "{text}");
    }

    #[test]
    fn template_keys_cover_kind_name_and_vars_only() {
        let phone = "573001234567";
        let a = content_key(phone, &template("cita", "Ana;martes", "", ""));
        assert_eq!(
            a,
            content_key(
                phone,
                &template("cita", "Ana;martes", "C-1", "https://x.co/a")
            )
        );
        assert_ne!(
            a,
            content_key(phone, &template("cita", "Ana;jueves", "", ""))
        );
        assert_ne!(
            a,
            content_key(phone, &template("cita2", "Ana;martes", "", ""))
        );
        assert_ne!(
            content_key(phone, &template("ab", "c", "", "")),
            content_key(phone, &template("a", "bc", "", ""))
        );
        assert_ne!(
            content_key(phone, &template("cita", "", "", "")),
            content_key(
                phone,
                &Message::Free {
                    text: "cita".into()
                }
            )
        );
        assert_ne!(
            a,
            content_key("573001234568", &template("cita", "Ana;martes", "", ""))
        );
        // The kind tag keeps apart a free text that spells out a template's hashed bytes.
        let mut spelled = 4u64.to_le_bytes().to_vec();
        spelled.extend_from_slice(b"citaAna;martes");
        let spelled = String::from_utf8(spelled).unwrap();
        assert_ne!(a, content_key(phone, &Message::Free { text: spelled }));
    }

    #[test]
    fn content_keys_depend_on_telephone_and_text_only() {
        let a = content_key(
            "573001234567",
            &Message::Free {
                text: "hola".into(),
            },
        );
        assert_eq!(
            a,
            content_key(
                "573001234567",
                &Message::Free {
                    text: "hola".into()
                }
            )
        );
        assert_ne!(
            a,
            content_key(
                "573001234568",
                &Message::Free {
                    text: "hola".into()
                }
            )
        );
        assert_ne!(
            a,
            content_key(
                "573001234567",
                &Message::Free {
                    text: "hola!".into()
                }
            )
        );
        assert_eq!(a.len(), 32);
    }

    #[test]
    fn content_keys_keep_their_format_across_versions() {
        // Journals of earlier runs are matched by this key: it must never change.
        let mut hash = Sha256::new();
        hash.update(b"573001234567\0free\0hola");
        let old: String = hash.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let text = "hola".to_owned();
        assert_eq!(content_key("573001234567", &Message::Free { text }), old);
    }

    #[test]
    fn duplicates_are_found_across_many_rows_and_name_the_first() {
        let mut v =
            Validator::new(&header(&["telephone", "message"]), &settings(Some("1"))).unwrap();
        for i in 0..5_000u64 {
            let tel = format!("57300{:07}", i);
            assert!(matches!(
                v.check(&record(i + 1, &[&tel, "hola"])),
                Verdict::Valid(_)
            ));
        }
        assert_eq!(
            v.check(&record(5_001, &["573000001234", "hola"])),
            Verdict::Duplicate {
                row: 5_001,
                shown: 5_002,
                telephone: "573000001234".into(),
                of_row: 1_235,
                of_shown: 1_236,
            }
        );
        // Same number, other text: not a duplicate.
        assert!(matches!(
            v.check(&record(5_002, &["573000001234", "chao"])),
            Verdict::Valid(_)
        ));
    }
}
