/*!
wolkvox-dispatch: send a contact list as WhatsApp messages through the Wolkvox
API, safely and as fast as the API allows.

Data flows one way: `input` reads rows, `validate` turns each into a verdict
(with `suppress` marking opted-out numbers), `dispatch` sends the valid ones
through `api` within the contact hours of `window`, and `results` records
every outcome; `report` shows progress and the summary, and `report_cmd`
summarizes any results file afterwards. `run` wires them together
for each command and maps what happened to an `Exit` code that scripts rely on.
*/

pub mod cli;
mod commands;
pub mod config;
pub mod input;
mod journal;
mod plan;
mod progress;
mod report;
mod send;
pub mod text;
pub mod validate;

use crate::send::{api, quota};
use crate::validate::suppress;

use crate::cli::{Cli, Command};

/// Exit codes: a contract with scripts and cron jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Every row was sent (dry run, validate: every row is valid).
    Success = 0,
    /// The run finished, but some rows were invalid, failed, unknown or duplicate.
    SomeRowsNotSent = 1,
    /// Nothing was sent: a usage, configuration or input error.
    NothingSent = 2,
    /// The run stopped early; `--resume` continues it.
    Stopped = 3,
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
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
    #[error(
        "{results} records another campaign: {differences}. Nothing was sent. To continue the recorded run, run: {command}\nTo send this one instead, give it its own results file with --results"
    )]
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

/// Runs one command.
pub fn run(cli: Cli) -> Result<Exit, Error> {
    match cli.command {
        Command::Validate(args) => commands::validate::run(&args),
        Command::Send(args) => commands::send::run(&args),
        Command::Report(args) => commands::report::run(&args),
    }
}
