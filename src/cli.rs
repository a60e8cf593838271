/*!
The command line as the user types it: raw flags, parsed by clap and not yet
checked against each other or the config file. `config` turns these into each
command's checked settings; nothing else reads them, except `report`'s few flags.

There is deliberately no flag for the token: a flag would show in `ps` and in
shell history. Tokens come only from the `WOLKVOX_TOKEN` environment variable.
*/

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::i18n::{self, Lang};
use crate::journal::Status;

/// The command line in the current language, with the status table in `send --help`
/// and `report --help`.
pub fn command() -> clap::Command {
    let statuses = Status::help_table();
    i18n::clap_help::localize(
        Cli::command()
            .mut_subcommand("send", |c| c.after_long_help(statuses.clone()))
            .mut_subcommand("report", |c| c.after_long_help(statuses)),
    )
}

/// Parses the process's arguments; on a mistake, or for `--help`, prints and exits.
/// The language is chosen first (from `--lang`, the config file's `[ui] lang` or the
/// locale), so that help and usage errors are already in it.
pub fn parse() -> Cli {
    let args = join_unquoted_test_to(std::env::args_os().collect());
    i18n::set(early_language(&args));
    let parsed = command()
        .try_get_matches_from(&args)
        .and_then(|m| Cli::from_arg_matches(&m));
    match parsed {
        Ok(cli) => cli,
        Err(e) if e.use_stderr() => {
            eprint!("{}", i18n::clap_help::render_error(&e));
            std::process::exit(e.exit_code());
        }
        Err(e) => match i18n::clap_help::render_help(&e) {
            Some(text) => {
                print!("{text}");
                std::process::exit(0);
            }
            None => e.exit(),
        },
    }
}

/// `--test-to +57 310 555 1234` written without quotes, as a person writes a number:
/// the words after the flag's value that are only digits (and `(`, `)`, `-`, `.`) are
/// the rest of the number, joined back with spaces. A word with anything else (the
/// list's file name, a flag) ends the number.
pub fn join_unquoted_test_to(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    fn phone_like(word: &str, plus: bool) -> bool {
        word.chars().any(|c| c.is_ascii_digit())
            && word.chars().enumerate().all(|(i, c)| {
                c.is_ascii_digit() || "()-.".contains(c) || (plus && i == 0 && c == '+')
            })
    }
    let mut out: Vec<std::ffi::OsString> = Vec::with_capacity(args.len());
    let mut words = args.into_iter().peekable();
    let mut options = true;
    while let Some(word) = words.next() {
        let text = word.to_string_lossy().into_owned();
        if text == "--" {
            options = false;
        }
        let value = match (options, text.as_str()) {
            (true, "--test-to") => {
                out.push(word);
                words.next()
            }
            (true, t) if t.starts_with("--test-to=") => Some(word),
            _ => {
                out.push(word);
                continue;
            }
        };
        let Some(value) = value else { continue };
        let mut joined = value.to_string_lossy().into_owned();
        let number = joined
            .strip_prefix("--test-to=")
            .unwrap_or(&joined)
            .to_owned();
        if phone_like(number.trim(), true) {
            while let Some(next) = words.peek() {
                let next = next.to_string_lossy();
                if !phone_like(&next, false) {
                    break;
                }
                joined.push(' ');
                joined.push_str(&next);
                words.next();
            }
        }
        out.push(joined.into());
    }
    out
}

/// The language before clap has parsed anything: `--lang X` or `--lang=X`, else
/// `[ui] lang` of the file given by `--config`, else the locale. A value clap will
/// refuse is ignored here (clap then says why, in the locale's language).
pub fn early_language(args: &[std::ffi::OsString]) -> Lang {
    let mut flag = None;
    let mut config = None;
    let mut words = args.iter().skip(1).map(|a| a.to_string_lossy());
    while let Some(word) = words.next() {
        if word == "--" {
            break;
        }
        if let Some(value) = word.strip_prefix("--lang=") {
            flag = Lang::from_str(value, true).ok();
        } else if word == "--lang" {
            flag = words.next().and_then(|v| Lang::from_str(&v, true).ok());
        } else if let Some(value) = word.strip_prefix("--config=") {
            config = Some(PathBuf::from(value));
        } else if word == "--config" {
            config = words.next().map(|v| PathBuf::from(v.as_ref()));
        }
    }
    Lang::choose(flag, config.as_deref().and_then(i18n::config_lang))
}

/// Send a contact list as WhatsApp messages through the Wolkvox API.
///
/// Tokens are read from the WOLKVOX_TOKEN environment variable (several
/// tokens separated by commas), never from a flag.
#[derive(Debug, Parser)]
#[command(name = "wolkvox-dispatch", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// The language of the messages: es or en [default: the config file's ui.lang, else the locale: LC_ALL, LC_MESSAGES, LANG].
    #[arg(
        long,
        global = true,
        value_enum,
        value_name = "LANG",
        hide_possible_values = true
    )]
    pub lang: Option<Lang>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Validate a contact list, then send every valid row and record each outcome.
    Send(SendArgs),
    /// Check a contact list without sending anything (no token needed).
    Validate(ValidateArgs),
    /// Summarize a results file (also one still being written): counts, failures, next step.
    Report(ReportArgs),
    /// Settle `unknown` rows with Wolkvox's own report of sent messages (cdr_3): those it lists become `sent`, those absent from it `not_sent` (a plain --resume sends them once).
    Reconcile(ReconcileArgs),
    /// What the send ledger knows: messages to a phone, or since a time; import results files; forget a phone.
    History(HistoryArgs),
    /// The team's send ledger in PostgreSQL ([ledger] url): `ledger migrate` creates or updates its tables.
    Ledger(LedgerArgs),
    /// Write a first, commented config file (wolkvox.toml) in your language, asking for the server, the WhatsApp connector and the country.
    Init(InitArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct InitArgs {
    /// The config file to write; an existing file is never overwritten.
    #[arg(value_name = "FILE", default_value = "wolkvox.toml")]
    pub file: PathBuf,

    /// Your Wolkvox server id: the digits of your address https://wv0042.wolkvox.com (here 0042).
    #[arg(long, value_name = "ID")]
    pub server: Option<String>,

    /// The id of the WhatsApp connector of the line that sends (in wolkvox Manager's connectors).
    #[arg(long, value_name = "ID")]
    pub connector_id: Option<String>,

    /// The country of numbers written without a country code: a two-letter ISO code such as CO, MX, EC.
    #[arg(long, value_name = "CODE")]
    pub country: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ReconcileArgs {
    /// A results file written by `send` (its journal must be beside it).
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    /// Print what would change, without changing the results file.
    #[arg(long)]
    pub dry_run: bool,

    /// A row absent from the report counts as not sent only when the report reaches this long after its attempt (messages may show up late).
    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub settle_after: String,

    /// TOML configuration file: api.server (or api.base_url), campaign.timezone, phone.default_country.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Replace the origin https://wv{server}.wolkvox.com (a proxy or a local test server).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

/// Flags shared by every command that reads a contact list.
#[derive(Debug, Args, Clone, Default)]
pub struct InputArgs {
    /// The contact list: CSV or other delimited text, or a spreadsheet (.xlsx, .xlsm, .xlsb, .xls, .ods).
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    /// TOML configuration file (see config.example.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Refuse lists with more data rows than this [config: limits.max_rows, default 10000].
    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,

    /// Spreadsheets: the sheet to read [config: input.sheet, default: the sheet the workbook opens on, else the first visible one].
    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,

    /// The header's row number, as the spreadsheet shows it; the rows above it are ignored [config: columns.header_row, default: the first of the first 20 rows with the telephone column].
    #[arg(long, value_name = "N")]
    pub header_row: Option<u64>,

    /// Text files: the field delimiter: , ; tab | [config: input.delimiter, default: detected from the header].
    #[arg(long, value_name = "D")]
    pub delimiter: Option<String>,

    /// Render each row's message from this template file (Jinja syntax, columns as variables) [config: message.template].
    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,

    /// Send every copy of a repeated telephone + message, instead of marking later copies `duplicate` [config: input.allow_duplicates].
    #[arg(long)]
    pub allow_duplicates: bool,
    /// Opt-out list: numbers in it are never sent anything (repeatable; adds to campaign.suppress).
    #[arg(long = "suppress", value_name = "FILE")]
    pub suppress: Vec<PathBuf>,
    /// Send the approved HSM template TEMPLATE_NAME (api=send_template_official) instead
    /// of a free message; a `template_name` column overrides it per row [config: hsm.template_name].
    #[arg(long, value_name = "TEMPLATE_NAME")]
    pub hsm: Option<String>,

    /// Columns whose values, in this order, fill the template's variables (joined with `;`),
    /// e.g. nombre,fecha,hora [config: hsm.vars].
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub hsm_vars: Option<Vec<String>>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SendArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Results CSV [default: <INPUT stem>.results.csv beside INPUT].
    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,

    /// Validate and record what would be sent, without sending anything or needing a token.
    #[arg(long)]
    pub dry_run: bool,

    /// Continue an earlier run recorded in the results file: rows already done are skipped.
    #[arg(long)]
    pub resume: bool,

    /// With --resume: send again the rows recorded `failed`.
    #[arg(long, requires = "resume")]
    pub retry_failed: bool,

    /// With --resume: send again the rows recorded `unknown` (they may already have been delivered).
    #[arg(long, requires = "resume")]
    pub retry_unknown: bool,

    /// Replace the origin https://wv{server}.wolkvox.com (a proxy or a local test server).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// At most N requests per second per token [config: limits.requests_per_second, default 10].
    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,

    /// Do not ask Wolkvox (token_info, one call per token) how much of today's quota is left before sending.
    #[arg(long)]
    pub no_quota_check: bool,

    /// When today's quota cannot cover the list: send what fits and record the rest `not_sent` (continue tomorrow with --resume).
    #[arg(long)]
    pub partial: bool,

    /// Also write the end-of-run summary as JSON to FILE (counts per status, elapsed, rate, exit code), for monitoring.
    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    /// No progress bar and only warnings in the log; the summary is still printed.
    #[arg(long, short)]
    pub quiet: bool,

    /// Log line format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Outside the contact hours (campaign.hours), wait for them to open instead of stopping.
    #[arg(long)]
    pub wait_for_window: bool,

    /// Send only the first valid row's message, as the campaign would, to PHONE instead of the list; print Wolkvox's answer and record nothing.
    #[arg(long, value_name = "PHONE", conflicts_with_all = ["dry_run", "resume", "limit"])]
    pub test_to: Option<String>,

    /// With --dry-run: show the first N valid rows exactly as they would be sent (0: none).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub preview: usize,

    /// Send at most N rows in this run (a pilot batch), then stop (exit 3); the rest are recorded `not_sent` and sent by --resume.
    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    /// Do not write the Excel workbook <results stem>.xlsx beside the results [config: results.xlsx = false].
    #[arg(long)]
    pub no_xlsx: bool,

    /// Do not check the HSM templates against the account (list_templates, one call per connector) before sending.
    #[arg(long)]
    pub no_template_check: bool,

    /// Stop the run when N rows in a row are refused with the same answer (a wrong connector, template or closed windows); 0 never stops [config: campaign.max_failures, default 20].
    #[arg(long, value_name = "N")]
    pub max_failures: Option<u32>,

    /// The send ledger (SQLite) [config: ledger.path, default: the user's state folder].
    #[arg(long, value_name = "PATH", conflicts_with = "no_ledger")]
    pub ledger: Option<PathBuf>,

    /// Do not check or record the send ledger.
    #[arg(long)]
    pub no_ledger: bool,

    /// Send rows the ledger holds because the same message already went out.
    #[arg(long)]
    pub allow_repeat: bool,

    /// With --resume: send rows whose text changed since this campaign sent their number a message.
    #[arg(long, requires = "resume")]
    pub resend_changed: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,

    /// Replace the origin https://wv{server}.wolkvox.com for the template check (a proxy or a local test server).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    /// Do not check the HSM templates against the account, even when WOLKVOX_TOKEN is set.
    #[arg(long)]
    pub no_template_check: bool,

    /// Show the first N valid rows exactly as they would be sent (0: none).
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub preview: usize,

    /// The send ledger (SQLite) [config: ledger.path, default: the user's state folder].
    #[arg(long, value_name = "PATH", conflicts_with = "no_ledger")]
    pub ledger: Option<PathBuf>,

    /// Do not check the send ledger.
    #[arg(long)]
    pub no_ledger: bool,
}

/// `history`: what the send ledger knows.
#[derive(Debug, Args, Clone, Default)]
pub struct HistoryArgs {
    /// PHONE; or `import` RESULTS...; or `forget` PHONE.
    #[arg(value_name = "PHONE")]
    pub words: Vec<String>,

    /// Only messages of the last DURATION (e.g. 7d).
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = HistoryFormat::Text)]
    pub format: HistoryFormat,

    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// The send ledger (SQLite).
    #[arg(long, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
}

/// `ledger`: the send ledger's own upkeep.
#[derive(Debug, Args, Clone, Default)]
pub struct LedgerArgs {
    /// `migrate`: create or update the ledger's tables in the database.
    #[arg(value_name = "ACTION")]
    pub words: Vec<String>,

    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum HistoryFormat {
    #[default]
    Text,
    Json,
    Csv,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ReportArgs {
    /// A results file written by `send` (or `send --dry-run`).
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    /// Output format: text for people, json for scripts.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    /// Write the list's rows that are invalid, failed or not_sent to FILE, with all their columns, to correct and send as a new list (.xlsx for a workbook, otherwise the list's own delimiter and encoding).
    #[arg(long, value_name = "FILE")]
    pub rows_to_fix: Option<PathBuf>,

    /// Also write the Excel workbook of these results to FILE (the list must still be where the run read it, or beside the results).
    #[arg(long, value_name = "FILE")]
    pub xlsx: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unquoted_test_to_number_is_joined_and_nothing_else_is() {
        let join = |words: &[&str]| -> Vec<String> {
            join_unquoted_test_to(words.iter().map(Into::into).collect())
                .into_iter()
                .map(|w| w.to_string_lossy().into_owned())
                .collect()
        };
        assert_eq!(
            join(&["w", "send", "--test-to", "+57", "310", "555-1234", "l.csv"]),
            ["w", "send", "--test-to", "+57 310 555-1234", "l.csv"]
        );
        assert_eq!(
            join(&["w", "send", "l.csv", "--test-to=+57", "(310)", "5551234"]),
            ["w", "send", "l.csv", "--test-to=+57 (310) 5551234"]
        );
        for unchanged in [
            &["w", "send", "--test-to", "573105551234", "--limit", "5"][..],
            &["w", "send", "--test-to", "+57 310 555 1234", "l.csv"],
            &["w", "send", "--test-to", "--dry-run", "12"],
            &["w", "send", "--", "--test-to", "57", "310"],
            &["w", "send", "--limit", "5", "6"],
        ] {
            assert_eq!(join(unchanged), unchanged);
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn send_flags_parse() {
        let cli = Cli::try_parse_from([
            "wolkvox-dispatch",
            "send",
            "list.csv",
            "--dry-run",
            "--rate",
            "5",
            "--max-rows",
            "20",
            "--log-format",
            "json",
        ])
        .expect("valid flags");
        let Command::Send(args) = cli.command else {
            panic!("expected send")
        };
        assert!(args.dry_run);
        assert_eq!(args.rate, Some(5.0));
        assert_eq!(args.input.max_rows, Some(20));
        assert_eq!(args.log_format, LogFormat::Json);
    }

    #[test]
    fn suppress_repeats_on_send_and_validate_and_report_takes_a_format() {
        let cli = Cli::try_parse_from([
            "wolkvox-dispatch",
            "send",
            "l.csv",
            "--suppress",
            "a.csv",
            "--suppress",
            "b.txt",
            "--wait-for-window",
        ])
        .expect("valid flags");
        let Command::Send(args) = cli.command else {
            panic!("expected send")
        };
        assert_eq!(
            args.input.suppress,
            [PathBuf::from("a.csv"), PathBuf::from("b.txt")]
        );
        assert!(args.wait_for_window);
        let cli = Cli::try_parse_from(["wolkvox-dispatch", "validate", "l.csv", "--suppress", "a"])
            .expect("valid flags");
        let Command::Validate(args) = cli.command else {
            panic!("expected validate")
        };
        assert_eq!(args.input.suppress.len(), 1);
        let cli = Cli::try_parse_from(["wolkvox-dispatch", "report", "r.csv", "--format", "json"])
            .expect("valid flags");
        let Command::Report(args) = cli.command else {
            panic!("expected report")
        };
        assert_eq!(args.format, ReportFormat::Json);
        assert!(
            Cli::try_parse_from(["wolkvox-dispatch", "report", "r.csv", "--format", "xml"])
                .is_err()
        );
    }

    #[test]
    fn hsm_flags_parse_on_send_and_validate() {
        for command in ["send", "validate"] {
            let cli = Cli::try_parse_from([
                "wolkvox-dispatch",
                command,
                "list.csv",
                "--hsm",
                "cita_recordatorio",
                "--hsm-vars",
                "nombre,fecha,hora",
            ])
            .expect("valid flags");
            let input = match cli.command {
                Command::Send(a) => a.input,
                Command::Validate(a) => a.input,
                Command::Report(_)
                | Command::Reconcile(_)
                | Command::Init(_)
                | Command::Ledger(_)
                | Command::History(_) => {
                    unreachable!("parsed send or validate")
                }
            };
            assert_eq!(input.hsm.as_deref(), Some("cita_recordatorio"));
            assert_eq!(
                input.hsm_vars.as_deref(),
                Some(&["nombre".to_owned(), "fecha".to_owned(), "hora".to_owned()][..])
            );
        }
    }

    #[test]
    fn quota_and_summary_flags_parse() {
        let cli = Cli::try_parse_from([
            "wolkvox-dispatch",
            "send",
            "list.csv",
            "--no-quota-check",
            "--partial",
            "--summary-json",
            "s.json",
        ])
        .expect("valid flags");
        let Command::Send(args) = cli.command else {
            panic!("expected send")
        };
        assert!(args.no_quota_check && args.partial);
        assert_eq!(args.summary_json, Some(PathBuf::from("s.json")));
    }

    #[test]
    fn retry_flags_need_resume() {
        let err = Cli::try_parse_from(["wolkvox-dispatch", "send", "l.csv", "--retry-failed"]);
        assert!(err.is_err());
    }

    #[test]
    fn there_is_no_token_flag() {
        let err = Cli::try_parse_from(["wolkvox-dispatch", "send", "l.csv", "--token", "x"]);
        assert!(err.is_err());
    }
}
