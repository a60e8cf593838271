/*!
Turns each row into a verdict: a `Job` ready to send, or the reasons it is
invalid, or a pointer to the earlier row it duplicates.

The validator is built once from the header (a missing required column is an
error before any row is looked at) and then judges rows one at a time, so
`validate` streams. It owns the content key that resume and duplicate
detection use: the normalized telephone plus what would be sent, never the
row's position, so an edited or re-sorted list still matches.
*/

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::config::ListSettings;
use crate::header::{self, Found};
use crate::input::Record;
use crate::phone;
use crate::suppress::Suppression;
use crate::template::{MessageTemplate, TemplateError};

/// WhatsApp caps a text body at this many characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// What a job asks the API to deliver. New kinds (HSM templates) are new variants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A free-form text (`api=send_message_official`).
    Free { text: String },
}

/// A row that passed validation: everything the API call needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub row: u64,
    /// Digits only, with the country code.
    pub telephone: String,
    pub connector_id: String,
    pub message: Message,
    /// Identifies this delivery across runs (see `content_key`).
    pub key: String,
}

/// One thing wrong with a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub column: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Valid(Job),
    Invalid {
        row: u64,
        /// The telephone normalized if it was valid, else as written.
        telephone: String,
        problems: Vec<Problem>,
    },
    Duplicate {
        row: u64,
        telephone: String,
        /// The earlier row with the same telephone and message.
        of_row: u64,
    },
    /// A valid row whose number is on an opt-out list: never sent, not even on resume.
    Suppressed {
        row: u64,
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
}

/// The columns' positions in the header.
#[derive(Debug, Clone)]
struct Positions {
    telephone: usize,
    /// `None` when a template makes each message.
    message: Option<usize>,
    connector_id: Option<usize>,
    width: usize,
}

/// What the first copy of a content key was, and how many copies followed.
#[derive(Debug, Clone, Copy)]
struct Seen {
    first_row: u64,
    copies: u64,
}

/// Judges rows of one file.
#[derive(Debug)]
pub struct Validator {
    positions: Positions,
    /// How problems name the telephone, message and connector columns.
    labels: crate::config::Columns,
    default_connector: Option<String>,
    default_country: Option<phonenumber::country::Id>,
    template: Option<MessageTemplate>,
    allow_duplicates: bool,
    /// Each content key's first row (16-byte digests: duplicate detection is
    /// the one thing that grows with the list).
    seen: HashMap<[u8; 16], Seen>,
    summary: String,
    /// Numbers that must not be contacted.
    suppression: Option<Arc<Suppression>>,
}

#[derive(Debug, thiserror::Error)]
pub enum HeaderError {
    #[error(
        "{path}: no `{column}` column (the header has: {header}); rename the column or set {key} in the config"
    )]
    Missing {
        path: PathBuf,
        column: String,
        header: String,
        key: &'static str,
    },
    #[error(
        "{path}: two columns can be the {role} column: {first:?} (column {first_index}) and {second:?} (column {second_index}); rename or remove one, or name the one to use with {key} in the config"
    )]
    Ambiguous {
        path: PathBuf,
        role: &'static str,
        key: &'static str,
        first: String,
        first_index: usize,
        second: String,
        second_index: usize,
    },
    #[error(
        "{path}: no connector_id: add a `{column}` column or set api.connector_id in the config"
    )]
    NoConnector { path: PathBuf, column: String },
    #[error(transparent)]
    Template(#[from] TemplateError),
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
            header: header.join(", "),
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
        let message = match template {
            // With a template, a message column is just another column.
            Some(_) => None,
            None => Some(
                find_role(
                    header,
                    &names.message,
                    "message",
                    header::MESSAGE_ALIASES,
                    "columns.message",
                    path,
                )?
                .ok_or_else(|| {
                    missing(
                        &names.message,
                        "columns.message (or use a message template: --template FILE)",
                    )
                })?,
            ),
        };
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
        let labels = crate::config::Columns {
            telephone: label(Some(telephone), &names.telephone),
            message: match &template {
                Some(_) => "message (template)".into(),
                None => label(message, &names.message),
            },
            connector_id: label(connector_id, &names.connector_id),
        };
        let summary = {
            let mut parts = vec![format!("telephone <- {:?}", labels.telephone)];
            parts.push(match &template {
                Some(t) => {
                    let used: Vec<String> = t.columns().map(|c| format!("{c:?}")).collect();
                    format!(
                        "message <- template ({}) using {}",
                        t.origin(),
                        if used.is_empty() {
                            "no column".into()
                        } else {
                            used.join(", ")
                        }
                    )
                }
                None => format!("message <- {:?}", labels.message),
            });
            parts.push(match (connector_id, &settings.connector_id) {
                (Some(_), Some(default)) => format!(
                    "connector_id <- {:?} (empty cells: api.connector_id {default:?})",
                    labels.connector_id
                ),
                (Some(_), None) => format!("connector_id <- {:?}", labels.connector_id),
                (None, default) => format!(
                    "connector_id <- api.connector_id {:?}",
                    default.as_deref().unwrap_or_default()
                ),
            });
            format!("columns: {}", parts.join(", "))
        };
        Ok(Self {
            positions: Positions {
                telephone,
                message,
                connector_id,
                width: header.len(),
            },
            labels,
            default_connector: settings.connector_id.clone(),
            default_country: settings.default_country,
            template,
            allow_duplicates: settings.allow_duplicates,
            seen: HashMap::new(),
            summary,
            suppression: None,
        })
    }

    /// Marks valid rows whose number is on one of these opt-out lists `suppressed`
    /// (before duplicate detection, so copies of such a row are suppressed too).
    pub fn with_suppression(mut self, suppression: Arc<Suppression>) -> Self {
        self.suppression = Some(suppression);
        self
    }

    /// Which column is used for what, e.g. `columns: telephone <- "Celular", message <- "Mensaje", ...`.
    pub fn columns_summary(&self) -> &str {
        &self.summary
    }

    /// Judges one row. Later rows with the same content as an earlier valid row
    /// are duplicates, unless duplicates are allowed.
    pub fn check(&mut self, record: &Record) -> Verdict {
        let p = &self.positions;
        let field = |i: usize| record.fields.get(i).map(String::as_str).unwrap_or("");
        let raw_phone = field(p.telephone);
        let mut problems = Vec::new();

        if record.fields.len() != p.width {
            problems.push(Problem {
                column: "(row)".into(),
                reason: format!(
                    "has {} fields but the header has {}: is there an unquoted delimiter in a message? put such fields in double quotes",
                    record.fields.len(),
                    p.width
                ),
            });
        }

        let telephone = match phone::normalize(raw_phone, self.default_country) {
            Ok(t) => Some(t),
            Err(reason) => {
                problems.push(Problem {
                    column: self.labels.telephone.clone(),
                    reason,
                });
                None
            }
        };

        let text = match (&self.template, p.message) {
            (Some(template), _) => match template.render(&record.fields) {
                Ok(text) => Some(text),
                Err(found) => {
                    problems.extend(found);
                    None
                }
            },
            (None, Some(i)) => Some(field(i).to_owned()),
            (None, None) => None,
        };
        if let Some(text) = &text
            && let Err(reason) = check_message(text)
        {
            problems.push(Problem {
                column: self.labels.message.clone(),
                reason,
            });
        }

        let connector = p
            .connector_id
            .map(|i| field(i).trim())
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .or_else(|| self.default_connector.clone());
        if connector.is_none() {
            problems.push(Problem {
                column: self.labels.connector_id.clone(),
                reason: "is empty and api.connector_id is not set in the config".into(),
            });
        }

        match (telephone, connector, text) {
            (Some(telephone), Some(connector_id), Some(text)) if problems.is_empty() => {
                let message = Message::Free { text };
                let digest = content_digest(&telephone, &message);
                let mut key = hex(&digest);
                if let Some(list) = self
                    .suppression
                    .as_ref()
                    .and_then(|s| s.list_for(&telephone))
                {
                    return Verdict::Suppressed {
                        row: record.row,
                        list: list.to_owned(),
                        telephone,
                        key,
                    };
                }
                match self.seen.entry(digest) {
                    Entry::Occupied(mut first) if self.allow_duplicates => {
                        // Each copy keeps a key of its own, so --resume tells them apart;
                        // the first copy's key is the plain one.
                        first.get_mut().copies += 1;
                        key = format!("{key}#{}", first.get().copies);
                    }
                    Entry::Occupied(first) => {
                        return Verdict::Duplicate {
                            row: record.row,
                            telephone,
                            of_row: first.get().first_row,
                        };
                    }
                    Entry::Vacant(slot) => {
                        slot.insert(Seen {
                            first_row: record.row,
                            copies: 0,
                        });
                    }
                }
                Verdict::Valid(Job {
                    row: record.row,
                    telephone,
                    connector_id,
                    message,
                    key,
                })
            }
            (telephone, _, _) => Verdict::Invalid {
                row: record.row,
                // The normalized number when it was fine, so the row can be found by it.
                telephone: telephone.unwrap_or_else(|| raw_phone.to_owned()),
                problems,
            },
        }
    }
}

/// A stable digest of who gets what: the normalized telephone and the message.
/// The connector is left out on purpose: the same text to the same person
/// through another line is still the same message to them.
pub fn content_key(telephone: &str, message: &Message) -> String {
    hex(&content_digest(telephone, message))
}

fn content_digest(telephone: &str, message: &Message) -> [u8; 16] {
    let mut hash = Sha256::new();
    hash.update(telephone.as_bytes());
    hash.update([0]);
    match message {
        Message::Free { text } => {
            hash.update(b"free\0");
            hash.update(text.as_bytes());
        }
    }
    let digest = hash.finalize();
    let mut short = [0u8; 16];
    short.copy_from_slice(&digest[..16]);
    short
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn check_message(text: &str) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("is blank: there is nothing to send".into());
    }
    let chars = text.chars().count();
    if chars > MAX_MESSAGE_CHARS {
        return Err(format!(
            "has {chars} characters; WhatsApp allows at most {MAX_MESSAGE_CHARS}"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

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
            row,
            line: row + 1,
            fields: fields.iter().map(|s| s.to_string()).collect(),
        }
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
        s.default_country = crate::phone::parse_country("CO");
        let mut v = Validator::new(&h, &s).unwrap();
        let Verdict::Valid(job) = v.check(&record(1, &["300 123 4567", "Hola"])) else {
            panic!("valid with CO")
        };
        assert_eq!(job.telephone, "573001234567");
    }

    #[test]
    fn templates_make_the_message_and_the_message_column_optional() {
        let mut s = settings(Some("1"));
        s.template = Some(crate::template::TemplateSource {
            text: "Hola {{ nombre }}, su cita es el {{ fecha }}.".into(),
            origin: "--template cita.j2".into(),
        });
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
                telephone: "573001234567".into(),
                of_row: 1
            }
        );
    }

    #[test]
    fn numbers_on_an_opt_out_list_are_suppressed_however_written() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("optout.txt");
        std::fs::write(&list, "+57 300 123 4567\n").unwrap();
        let suppression = Suppression::load(std::slice::from_ref(&list), "telephone").unwrap();
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
}
