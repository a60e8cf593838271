/*!
The vocabulary of what happened to a row, shared by every stage after the plan: the
`Status` a row ends with (a contract with scripts: the results file's `status` column)
and the `Outcome` a results line records. `journal` writes and reads them, `send` makes
them, `plan`, `report`, `reconcile` and the ledger read them; none of those need the
others to speak of a row.

An outcome's `error` and `msg` are English in the results file (programs read them);
the journal also records which of them are the tool's own words, by message id and
arguments (`Told`), so a person reads those in their language from the catalogue and
the server's words as the server said them (`error_shown`, `msg_shown`). Outcomes of
earlier versions, and rows whose journal is gone, have no `Told`: their texts are read
back from the English (`i18n::shown`).

A leaf: it uses `i18n` (a status's meaning in words, the tool's texts) and nothing else
of the crate.
*/

use serde::{Deserialize, Serialize};

use crate::i18n::{Arg, Said};
use crate::tr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Sent,
    Failed,
    Unknown,
    Invalid,
    Duplicate,
    /// On an opt-out list: never sent, by this run or any resumed one.
    Suppressed,
    NotSent,
    DryRun,
    /// Not sent because the ledger knows the person already got this message (or,
    /// with `max_per_phone`, enough messages); a flag sends it on purpose.
    Held,
}

impl Status {
    pub(crate) const ALL: [Status; 9] = [
        Status::Sent,
        Status::Failed,
        Status::Unknown,
        Status::Invalid,
        Status::Duplicate,
        Status::Suppressed,
        Status::NotSent,
        Status::DryRun,
        Status::Held,
    ];

    /// What a status means: the one table that `send --help`, `report --help` and the
    /// README's status table say (a unit test holds the README to it).
    pub(crate) fn meaning(self) -> String {
        match self {
            Status::Sent => tr!("status-meaning-sent"),
            Status::Failed => tr!("status-meaning-failed"),
            Status::Unknown => tr!("status-meaning-unknown"),
            Status::Invalid => tr!("status-meaning-invalid"),
            Status::Duplicate => tr!("status-meaning-duplicate"),
            Status::Suppressed => tr!("status-meaning-suppressed"),
            Status::NotSent => tr!("status-meaning-not-sent"),
            Status::DryRun => tr!("status-meaning-dry-run"),
            Status::Held => tr!("status-meaning-held"),
        }
    }

    /// The status in words a person reads in a workbook.
    pub(crate) fn label(self) -> String {
        match self {
            Status::Sent => tr!("status-label-sent"),
            Status::Failed => tr!("status-label-failed"),
            Status::Unknown => tr!("status-label-unknown"),
            Status::Invalid => tr!("status-label-invalid"),
            Status::Duplicate => tr!("status-label-duplicate"),
            Status::Suppressed => tr!("status-label-suppressed"),
            Status::NotSent => tr!("status-label-not-sent"),
            Status::DryRun => tr!("status-label-dry-run"),
            Status::Held => tr!("status-label-held"),
        }
    }

    /// The status as a word in a person's summary: its code in English (what the
    /// results file says), a word in other languages.
    pub(crate) fn word(self) -> String {
        match self {
            Status::Sent => tr!("status-word-sent"),
            Status::Failed => tr!("status-word-failed"),
            Status::Unknown => tr!("status-word-unknown"),
            Status::Invalid => tr!("status-word-invalid"),
            Status::Duplicate => tr!("status-word-duplicate"),
            Status::Suppressed => tr!("status-word-suppressed"),
            Status::NotSent => tr!("status-word-not-sent"),
            Status::DryRun => tr!("status-word-dry-run"),
            Status::Held => tr!("status-word-held"),
        }
    }

    /// The status table for `--help`: one line a status.
    pub(crate) fn help_table() -> String {
        let mut out = format!("{}\n", tr!("status-help-heading"));
        for status in Status::ALL {
            // No alignment: clap wraps long lines without keeping an indent.
            out.push_str(&format!("- {}: {}\n", status.as_str(), status.meaning()));
        }
        out
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Failed => "failed",
            Status::Unknown => "unknown",
            Status::Invalid => "invalid",
            Status::Duplicate => "duplicate",
            Status::Suppressed => "suppressed",
            Status::NotSent => "not_sent",
            Status::DryRun => "dry_run",
            Status::Held => "held",
        }
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row's outcome: a line of the results file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Outcome {
    pub(crate) row: u64,
    pub(crate) telephone: String,
    pub(crate) status: Status,
    pub(crate) http_status: Option<u16>,
    pub(crate) code: String,
    pub(crate) error: String,
    pub(crate) msg: String,
    pub(crate) attempts: u32,
    pub(crate) elapsed_ms: u64,
    pub(crate) finished_at: String,
    /// Whose words `error` and `msg` are (the journal's, not a results column).
    #[serde(default, skip_serializing_if = "Told::is_empty")]
    pub(crate) told: Told,
}

/// Whose words an outcome's `error` and `msg` are: `None` when not known (an earlier
/// version's outcome, or a text the tool made without a message id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Told {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<Source>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) msg: Option<Source>,
}

impl Told {
    fn is_empty(&self) -> bool {
        self.error.is_none() && self.msg.is_none()
    }
}

/// Who said a text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Source {
    /// The tool: this catalogue message.
    Tool(Box<Said>),
    /// The server (or the HTTP stack): its words, never read as the tool's.
    Server,
}

impl Source {
    /// The tool's text `said`, or the server's when there is none.
    pub(crate) fn of(said: Option<&Said>) -> Source {
        said.map_or(Source::Server, |s| Source::Tool(Box::new(s.clone())))
    }
}

/// `text` (an `error` or a `msg` as recorded) as shown to a person, knowing who said it.
/// The tool's text is shown from its id only when it still reads as recorded (a text
/// changed after its id was noted is read back from the English instead).
pub(crate) fn shown(text: &str, source: Option<&Source>) -> String {
    match source {
        Some(Source::Tool(said)) if said.reads(text) => said.shown().trim_start().to_owned(),
        Some(Source::Server) => crate::i18n::value_shown(text),
        _ => crate::i18n::shown(text),
    }
}

impl Outcome {
    /// An outcome with no server answer (invalid, duplicate, not_sent, dry_run).
    pub(crate) fn local(row: u64, telephone: &str, status: Status, msg: impl Into<String>) -> Self {
        Self {
            row,
            telephone: telephone.to_owned(),
            status,
            http_status: None,
            code: String::new(),
            error: String::new(),
            msg: msg.into(),
            attempts: 0,
            elapsed_ms: 0,
            finished_at: now(),
            told: Told::default(),
        }
    }

    /// A local outcome whose `msg` is the tool's text `said`.
    pub(crate) fn local_said(row: u64, telephone: &str, status: Status, said: Said) -> Self {
        let mut o = Outcome::local(row, telephone, status, String::new());
        o.say(said);
        o
    }

    /// Sets `msg` to the tool's text `said` (in English, as recorded).
    pub(crate) fn say(&mut self, said: Said) {
        self.msg = said.english().trim_start().to_owned();
        self.told.msg = Some(Source::Tool(Box::new(said)));
    }

    /// `msg` as an argument of another of the tool's texts: the tool's own text when it
    /// is known to be one, otherwise the words as they are (read back from the English
    /// when not known whose they are).
    pub(crate) fn msg_arg(&self) -> Arg {
        arg(&self.msg, self.told.msg.as_ref())
    }

    /// `error` as an argument of another of the tool's texts (see `msg_arg`).
    pub(crate) fn error_arg(&self) -> Arg {
        arg(&self.error, self.told.error.as_ref())
    }

    /// `error` in the language printed now (see `Told`).
    pub(crate) fn error_shown(&self) -> String {
        shown(&self.error, self.told.error.as_ref())
    }

    /// `msg` in the language printed now (see `Told`).
    pub(crate) fn msg_shown(&self) -> String {
        shown(&self.msg, self.told.msg.as_ref())
    }
}

/// `text` (an `error` or a `msg` as recorded) as an argument of another of the tool's
/// texts, knowing who said it.
fn arg(text: &str, source: Option<&Source>) -> Arg {
    match source {
        Some(Source::Tool(said)) if said.reads(text) => Arg::Said(said.clone()),
        Some(Source::Server) => Arg::Text(text.to_owned()),
        _ => Arg::Recorded(text.to_owned()),
    }
}

/// Now, RFC 3339 in UTC with milliseconds.
pub(crate) fn now() -> String {
    let ts = jiff::Timestamp::now();
    let ms = ts.as_millisecond();
    jiff::Timestamp::from_millisecond(ms)
        .unwrap_or(ts)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_status_table_is_the_one_in_the_code() {
        let readme = include_str!("../README.md");
        for status in Status::ALL {
            let row = format!("| `{}` | {} |", status.as_str(), status.meaning());
            assert!(
                readme.lines().any(|line| line == row),
                "README.md has no status row {row}"
            );
        }
    }

    /// An outcome's `error` or `msg` inside another of the tool's texts (why a run
    /// stopped, with the last answer): the server's words stay the server's, the tool's
    /// its text, and a text not known to be either (or changed since) is read back.
    #[test]
    fn error_and_msg_as_arguments_keep_whose_words_they_are() {
        let mut o = Outcome::local(1, "573001234561", Status::NotSent, "");
        o.error = "response is not JSON".into();
        o.told.error = Some(Source::Server);
        assert_eq!(o.error_arg(), Arg::Text("response is not JSON".into()));
        o.told.error = Some(Source::Tool(Box::new(crate::said!("msg-answer-timeout"))));
        assert_eq!(o.error_arg(), Arg::Recorded("response is not JSON".into()));
        o.error = "timeout".into();
        assert!(matches!(o.error_arg(), Arg::Said(_)));
        o.told.error = None;
        assert_eq!(o.error_arg(), Arg::Recorded("timeout".into()));
        // msg is independent of error.
        o.msg = "down".into();
        o.told.msg = Some(Source::Server);
        assert_eq!(o.msg_arg(), Arg::Text("down".into()));
    }
}
