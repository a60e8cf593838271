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
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::config::ListSettings;
use crate::input::Record;

/// WhatsApp caps a text body at this many characters.
pub const MAX_MESSAGE_CHARS: usize = 4096;
/// E.164 numbers have at most 15 digits; the shortest real ones with country code have 8.
const MIN_DIGITS: usize = 8;
const MAX_DIGITS: usize = 15;

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
}

impl Verdict {
    pub fn row(&self) -> u64 {
        match self {
            Verdict::Valid(job) => job.row,
            Verdict::Invalid { row, .. } | Verdict::Duplicate { row, .. } => *row,
        }
    }
}

/// The columns' positions in the header.
#[derive(Debug, Clone)]
struct Positions {
    telephone: usize,
    message: usize,
    connector_id: Option<usize>,
    width: usize,
}

/// Judges rows of one file.
#[derive(Debug)]
pub struct Validator {
    positions: Positions,
    names: crate::config::Columns,
    default_connector: Option<String>,
    /// First row of each content key, to mark later copies `duplicate`.
    seen: HashMap<String, u64>,
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
        "{path}: column `{column}` appears twice in the header (columns {first} and {second}); keep one"
    )]
    Repeated {
        path: PathBuf,
        column: String,
        first: usize,
        second: usize,
    },
    #[error(
        "{path}: no connector_id: add a `{column}` column or set api.connector_id in the config"
    )]
    NoConnector { path: PathBuf, column: String },
}

/// Position of `name` in `header`, ignoring case and surrounding spaces.
fn find(header: &[String], name: &str, path: &Path) -> Result<Option<usize>, HeaderError> {
    let mut found = None;
    let want = name.trim().to_lowercase();
    for (i, h) in header.iter().enumerate() {
        let h = h.trim();
        // Lower-casing allocates; a header of a million columns should not pay for it.
        let same = if h.is_ascii() {
            h.eq_ignore_ascii_case(&want)
        } else {
            h.to_lowercase() == want
        };
        if same {
            if let Some(first) = found {
                return Err(HeaderError::Repeated {
                    path: path.to_owned(),
                    column: name.to_owned(),
                    first: first + 1,
                    second: i + 1,
                });
            }
            found = Some(i);
        }
    }
    Ok(found)
}

impl Validator {
    pub fn new(header: &[String], settings: &ListSettings) -> Result<Self, HeaderError> {
        let path = settings.input.as_path();
        let names = settings.columns.clone();
        let required = |name: &str, key: &'static str| -> Result<usize, HeaderError> {
            find(header, name, path)?.ok_or_else(|| HeaderError::Missing {
                path: path.to_owned(),
                column: name.to_owned(),
                header: header_list(header),
                key,
            })
        };
        let telephone = required(&names.telephone, "columns.telephone")?;
        let message = required(&names.message, "columns.message")?;
        let connector_id = find(header, &names.connector_id, path)?;
        if connector_id.is_none() && settings.connector_id.is_none() {
            return Err(HeaderError::NoConnector {
                path: path.to_owned(),
                column: names.connector_id.clone(),
            });
        }
        Ok(Self {
            positions: Positions {
                telephone,
                message,
                connector_id,
                width: header.len(),
            },
            names,
            default_connector: settings.connector_id.clone(),
            seen: HashMap::new(),
        })
    }

    /// Judges one row. Later rows with the same content as an earlier valid row are duplicates.
    pub fn check(&mut self, record: &Record) -> Verdict {
        let p = &self.positions;
        let field = |i: usize| record.fields.get(i).map(String::as_str).unwrap_or("");
        let raw_phone = field(p.telephone);
        let mut problems = Vec::new();

        if record.fields.len() != p.width {
            problems.push(Problem {
                column: "(row)".into(),
                reason: format!(
                    "has {} fields but the header has {}: is there an unquoted comma in a message? put such fields in double quotes",
                    record.fields.len(),
                    p.width
                ),
            });
        }

        let telephone = match normalize_telephone(raw_phone) {
            Ok(t) => Some(t),
            Err(reason) => {
                problems.push(Problem {
                    column: self.names.telephone.clone(),
                    reason,
                });
                None
            }
        };

        let text = field(p.message);
        if let Err(reason) = check_message(text) {
            problems.push(Problem {
                column: self.names.message.clone(),
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
                column: self.names.connector_id.clone(),
                reason: "is empty and api.connector_id is not set in the config".into(),
            });
        }

        match (telephone, connector) {
            (Some(telephone), Some(connector_id)) if problems.is_empty() => {
                let message = Message::Free {
                    text: text.to_owned(),
                };
                let key = content_key(&telephone, &message);
                if let Some(&of_row) = self.seen.get(&key) {
                    return Verdict::Duplicate {
                        row: record.row,
                        telephone,
                        of_row,
                    };
                }
                self.seen.insert(key.clone(), record.row);
                Verdict::Valid(Job {
                    row: record.row,
                    telephone,
                    connector_id,
                    message,
                    key,
                })
            }
            (telephone, _) => Verdict::Invalid {
                row: record.row,
                // The normalized number when it was fine, so the row can be found by it.
                telephone: telephone.unwrap_or_else(|| excerpt(raw_phone)),
                problems,
            },
        }
    }
}

/// A telephone cell longer than this is not looked at digit by digit.
const MAX_TELEPHONE_BYTES: usize = 64;

/// Cells echoed in messages and in the results are cut to this many characters: a
/// hostile file must not turn one cell into megabytes of output.
const SHOWN_CHARS: usize = 40;
/// Header names listed in a message.
const SHOWN_COLUMNS: usize = 20;

/// The start of an untrusted cell, marked with `…` when cut.
fn excerpt(text: &str) -> String {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// The header's names for a message, cut when there are many or they are long.
fn header_list(header: &[String]) -> String {
    let mut list: Vec<String> = header
        .iter()
        .take(SHOWN_COLUMNS)
        .map(|h| excerpt(h))
        .collect();
    if header.len() > SHOWN_COLUMNS {
        list.push(format!("… {} columns in all", header.len()));
    }
    list.join(", ")
}

/// A stable digest of who gets what: the normalized telephone and the message.
/// The connector is left out on purpose: the same text to the same person
/// through another line is still the same message to them.
pub fn content_key(telephone: &str, message: &Message) -> String {
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
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

/// Digits with the country code, or why not.
pub fn normalize_telephone(raw: &str) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err("is empty".into());
    }
    let shown = format!("{:?}", excerpt(t));
    // Far more than any written-out number (15 digits and some punctuation).
    if t.len() > MAX_TELEPHONE_BYTES {
        return Err(format!(
            "{shown} is {} characters long: too long to be a telephone number",
            t.chars().count()
        ));
    }
    if looks_scientific(t) {
        return Err(format!(
            "{shown} is in scientific notation: Excel turned the number into a float and lost digits; format the column as Text in the spreadsheet and export again"
        ));
    }
    let mut rest = t;
    if let Some(r) = rest.strip_prefix('+') {
        rest = r;
    }
    let mut digits = String::with_capacity(rest.len());
    for c in rest.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' | '\u{a0}' => {}
            _ => {
                return Err(format!(
                    "{shown} is not a telephone number: only digits, +, spaces, dashes, dots and parentheses are allowed"
                ));
            }
        }
    }
    if !t.starts_with('+')
        && let Some(d) = digits.strip_prefix("00")
    {
        digits = d.to_owned();
    }
    if digits.len() < MIN_DIGITS {
        return Err(format!(
            "{shown} has {} digits: too few for a number with its country code (e.g. 573001234567)",
            digits.len()
        ));
    }
    if digits.len() > MAX_DIGITS {
        return Err(format!(
            "{shown} has {} digits: more than the {MAX_DIGITS} an international number can have",
            digits.len()
        ));
    }
    if digits.starts_with('0') {
        return Err(format!(
            "{shown} starts with 0 after the country-code position: write it with the country code (e.g. 573001234567)"
        ));
    }
    Ok(digits)
}

/// `5.73E+11`, `5,73E+11`, `5.73e11`: what Excel shows for a long number in a General cell.
fn looks_scientific(t: &str) -> bool {
    let Some(e) = t.find(['e', 'E']) else {
        return false;
    };
    let (mantissa, exponent) = (&t[..e], &t[e + 1..]);
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    !mantissa.is_empty()
        && mantissa
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        && !exponent.is_empty()
        && exponent.chars().all(|c| c.is_ascii_digit())
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
    use crate::config::Columns;

    fn settings(connector: Option<&str>) -> ListSettings {
        ListSettings {
            input: PathBuf::from("list.csv"),
            max_rows: 100,
            columns: Columns::default(),
            connector_id: connector.map(str::to_owned),
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
    fn telephones_are_normalized_to_digits_with_country_code() {
        for (raw, want) in [
            ("+57 300 123 4567", "573001234567"),
            ("0057 300-123-4567", "573001234567"),
            ("(57) 300.123.4567", "573001234567"),
            ("593991234567", "593991234567"),
        ] {
            assert_eq!(normalize_telephone(raw).as_deref(), Ok(want), "{raw}");
        }
    }

    #[test]
    fn bad_telephones_say_why() {
        let sci = normalize_telephone("5.73E+11").unwrap_err();
        assert!(sci.contains("Text"), "{sci}");
        assert!(
            normalize_telephone("57300abc4567")
                .unwrap_err()
                .contains("not a telephone")
        );
        assert!(
            normalize_telephone("12345")
                .unwrap_err()
                .contains("too few")
        );
        assert!(
            normalize_telephone("1234567890123456")
                .unwrap_err()
                .contains("more than")
        );
        assert!(normalize_telephone("  ").unwrap_err().contains("empty"));
    }

    #[test]
    fn huge_cells_are_cut_in_messages_and_results() {
        let huge = "9".repeat(1_000_000);
        let err = normalize_telephone(&huge).unwrap_err();
        assert!(
            err.len() < 200 && err.contains("1000000 characters"),
            "{err}"
        );
        let mut v =
            Validator::new(&header(&["telephone", "message"]), &settings(Some("1"))).unwrap();
        let Verdict::Invalid { telephone, .. } = v.check(&record(1, &[&huge, "Hola"])) else {
            panic!("a million digits is no telephone")
        };
        assert_eq!(telephone, format!("{}…", "9".repeat(SHOWN_CHARS)));
        let names: Vec<String> = (0..10_000).map(|i| format!("c{i}")).collect();
        let err = Validator::new(&names, &settings(Some("1")))
            .unwrap_err()
            .to_string();
        assert!(
            err.len() < 1000 && err.contains("10000 columns in all"),
            "{err}"
        );
    }

    #[test]
    fn header_columns_are_matched_ignoring_case_and_required() {
        let v = Validator::new(
            &header(&["Nombre", " TELEPHONE ", "Message"]),
            &settings(Some("1")),
        );
        assert!(v.is_ok());
        let err = Validator::new(&header(&["phone", "message"]), &settings(Some("1"))).unwrap_err();
        assert!(err.to_string().contains("columns.telephone"), "{err}");
        let err = Validator::new(&header(&["telephone", "message"]), &settings(None)).unwrap_err();
        assert!(err.to_string().contains("api.connector_id"), "{err}");
        let err = Validator::new(
            &header(&["telephone", "Telephone", "message"]),
            &settings(Some("1")),
        )
        .unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
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
