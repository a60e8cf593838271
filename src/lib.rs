/*!
wolkvox-dispatch: send a contact list as WhatsApp messages through the Wolkvox
API, safely and as fast as the API allows.

One folder (or file) per stage, data flowing one way:

- `input` reads a list (CSV or spreadsheet) into rows, and matches header names;
- `validate` turns each row into a verdict (phone numbers, templates, opt-out
  lists are its parts) and owns the list settings;
- `plan` decides, from the verdicts and what earlier runs recorded, what this
  run sends and what it carries over (the resume decision table);
- `send` checks HSM templates against the account, then dispatches the rows
  through the Wolkvox client, per token, within the quota and the contact hours;
- `journal` records every outcome (the results file and the journal beside it)
  and reads earlier runs back;
- `report` shows the summary, the logs and the progress, analyses a results file
  afterwards and writes the Excel workbook;
- `ledger` remembers every message that may have gone out, across runs and
  results files (claimed before a run's first request, settled from its journal);
- `reconcile` turns Wolkvox's own report of sent messages into evidence that
  settles `unknown` rows.

`commands` wires the stages per subcommand; `config` turns flags and the config
file into each stage's settings; `cli` declares the flags; `i18n` (the language
of every line written for a person), `text`, `progress` and `atomic` (replacing a file whole) are leaves shared by all,
as are the vocabularies several stages speak: `outcome` (a row's status and outcome) and
`wolkvox` (what Wolkvox's answers mean: their classification, what fixes a refusal,
where the list in an answer is).
`tests/integration/layout.rs` checks that the stages depend on each other without a cycle.
`run` maps what happened to an `Exit` code that scripts rely on.
*/

mod atomic;
pub mod cli;
mod commands;
pub mod config;
pub mod i18n;
pub mod input;
mod journal;
mod ledger;
mod outcome;
mod plan;
mod progress;
mod reconcile;
mod report;
mod send;
pub mod text;
pub mod validate;
mod wolkvox;

use crate::send::{api, quota};
use crate::validate::suppress;

use crate::cli::{Cli, Command};

/// Exit codes: a contract with scripts and cron jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every row was sent (dry run, validate: every row is valid).
    Success = 0,
    /// The run finished, but some rows were failed, unknown or not sent (for `validate`
    /// and `reconcile`: some rows are invalid, or still unknown).
    SomeRowsNotSent = 1,
    /// Nothing was sent: a usage, configuration or input error.
    NothingSent = 2,
    /// The run stopped early; `--resume` continues it.
    Stopped = 3,
    /// `send` went to the end and every valid row was sent (or, for a dry run, would
    /// be), but the list had `invalid` or `duplicate` rows: fix the list, nothing is
    /// urgent.
    ListProblems = 4,
}

impl Exit {
    pub fn code(self) -> u8 {
        self as u8
    }
}

/// Errors that stop a command before anything is sent (exit 2).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error(transparent)]
    Input(#[from] input::InputError),
    /// Boxed: header errors carry several names and would make every `Result` large.
    #[error(transparent)]
    Header(Box<validate::HeaderError>),
    #[error(transparent)]
    Results(#[from] journal::ResultsError),
    #[error(transparent)]
    Token(#[from] send::token::TokenError),
    #[error(transparent)]
    Client(#[from] api::ClientError),
    #[error(transparent)]
    Quota(#[from] quota::QuotaError),
    #[error(transparent)]
    Suppress(#[from] suppress::SuppressError),
    #[error(transparent)]
    Templates(#[from] send::templates::TemplateCheckError),
    #[error(transparent)]
    Report(#[from] reconcile::ReportError),
    #[error(transparent)]
    Workbook(#[from] report::workbook::WorkbookError),
    #[error(transparent)]
    List(#[from] commands::workbook::ListError),
    #[error(transparent)]
    Init(#[from] commands::init::InitError),
    #[error(transparent)]
    Output(#[from] commands::outputs::OutputError),
    #[error(transparent)]
    Ledger(#[from] ledger::LedgerError),
    #[error(transparent)]
    History(#[from] commands::history::HistoryError),
    #[error("{}", tr!("error-runtime", error = .0))]
    Runtime(std::io::Error),
    #[error("{}", tr!(
        "error-other-campaign",
        results = .results,
        differences = .differences,
        command = .command
    ))]
    OtherCampaign {
        results: std::path::PathBuf,
        differences: String,
        command: String,
    },
}

impl From<validate::HeaderError> for Error {
    fn from(e: validate::HeaderError) -> Self {
        Error::Header(Box::new(e))
    }
}

impl Error {
    pub fn exit(&self) -> Exit {
        Exit::NothingSent
    }
}

/// The line `main` prints for an error: JSON when the command logs JSON (so a cron
/// log stays one JSON object a line), text otherwise.
pub fn error_line(err: &Error, cli: &Cli) -> String {
    let json = matches!(&cli.command, Command::Send(a) if a.log_format == cli::LogFormat::Json);
    if json {
        serde_json::json!({
            "timestamp": jiff::Timestamp::now().to_string(),
            "level": "ERROR",
            "message": err.to_string(),
            "exit_code": err.exit().code(),
        })
        .to_string()
    } else {
        format!("error: {}", text::for_terminal(&err.to_string(), false))
    }
}

/// Runs one command, in the language chosen by `--lang`, the config file or the locale.
pub fn run(cli: &Cli) -> Result<Exit, Error> {
    ignore_file_size_signal();
    let config = match &cli.command {
        Command::Validate(args) => args.input.config.as_deref(),
        Command::Send(args) => args.input.config.as_deref(),
        Command::Reconcile(args) => args.config.as_deref(),
        Command::History(args) => args.config.as_deref(),
        Command::Ledger(args) => args.config.as_deref(),
        Command::Report(_) | Command::Init(_) => None,
    };
    // With `--log-format json` every line is JSON for a program to read: its texts
    // stay English, like every other JSON the tool writes.
    let json = matches!(&cli.command, Command::Send(a) if a.log_format == cli::LogFormat::Json);
    i18n::set(if json {
        i18n::Lang::En
    } else {
        i18n::Lang::choose(cli.lang, config.and_then(i18n::config_lang))
    });
    match &cli.command {
        Command::Validate(args) => commands::validate::run(args),
        Command::Send(args) => commands::send::run(args),
        Command::Report(args) => commands::report::run(args),
        Command::Reconcile(args) => commands::reconcile::run(args),
        Command::History(args) => commands::history::run(args),
        Command::Ledger(args) => commands::ledger::run(args),
        Command::Init(args) => commands::init::run(args),
    }
}

/// A file-size limit (`ulimit -f`) must behave like a full disk: a write past it fails
/// (EFBIG), which the run handles (exit 3, a summary, a resumable state), instead of
/// SIGXFSZ killing the process mid-write.
fn ignore_file_size_signal() {
    #[cfg(unix)]
    // SAFETY: setting a signal's disposition to SIG_IGN at start-up, before any thread
    // of ours exists, installs no handler and touches no memory of the program.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
}
