/*!
The command line as the user types it: raw flags, parsed by clap and not yet
checked against each other or the config file. `config` turns these into each
command's checked settings; nothing else reads them, except `report`'s few flags.

There is deliberately no flag for the token: a flag would show in `ps` and in
shell history. Tokens come only from the `WOLKVOX_TOKEN` environment variable.

Each flag's text lives in one place, the catalogues (`i18n/en.ftl`, `i18n/es.ftl`):
`cli-<command>-<flag>`, or `cli-arg-<flag>` for a flag several commands share, and
`cli-<command>-about` for a command (see `i18n::clap_help`). `--help` shows only those,
so the structs below carry no `///` help text; a test fails on a flag without its
catalogue entry, and `tests/integration/docs.rs` on one missing from the guide.
*/

use std::path::PathBuf;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::i18n::{self, Lang};
use crate::outcome::Status;

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

#[derive(Debug, Parser)]
#[command(name = "wolkvox-dispatch", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

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
    Send(SendArgs),
    Validate(ValidateArgs),
    Report(ReportArgs),
    Reconcile(ReconcileArgs),
    History(HistoryArgs),
    Ledger(LedgerArgs),
    Init(InitArgs),
}

#[derive(Debug, Args, Clone, Default)]
pub struct InitArgs {
    #[arg(value_name = "FILE", default_value = "wolkvox.toml")]
    pub file: PathBuf,

    #[arg(long, value_name = "ID")]
    pub server: Option<String>,

    #[arg(long, value_name = "ID")]
    pub connector_id: Option<String>,

    #[arg(long, value_name = "CODE")]
    pub country: Option<String>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ReconcileArgs {
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    #[arg(long)]
    pub dry_run: bool,

    #[arg(long, value_name = "DURATION", default_value = "30m")]
    pub settle_after: String,

    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

// Flags shared by every command that reads a contact list.
#[derive(Debug, Args, Clone, Default)]
pub struct InputArgs {
    #[arg(value_name = "INPUT")]
    pub input: PathBuf,

    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[arg(long, value_name = "N")]
    pub max_rows: Option<u64>,

    #[arg(long, value_name = "NAME")]
    pub sheet: Option<String>,

    #[arg(long, value_name = "N")]
    pub header_row: Option<u64>,

    #[arg(long, value_name = "D")]
    pub delimiter: Option<String>,

    #[arg(long, value_name = "FILE")]
    pub template: Option<PathBuf>,

    #[arg(long)]
    pub allow_duplicates: bool,
    #[arg(long = "suppress", value_name = "FILE")]
    pub suppress: Vec<PathBuf>,
    #[arg(long, value_name = "TEMPLATE_NAME")]
    pub hsm: Option<String>,

    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub hsm_vars: Option<Vec<String>>,
}

#[derive(Debug, Args, Clone, Default)]
pub struct SendArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[arg(long, value_name = "FILE")]
    pub results: Option<PathBuf>,

    #[arg(long)]
    pub dry_run: bool,

    #[arg(long)]
    pub resume: bool,

    #[arg(long, requires = "resume")]
    pub retry_failed: bool,

    #[arg(long, requires = "resume")]
    pub retry_unknown: bool,

    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    #[arg(long, value_name = "N")]
    pub rate: Option<f64>,

    #[arg(long)]
    pub no_quota_check: bool,

    #[arg(long)]
    pub partial: bool,

    #[arg(long, value_name = "FILE")]
    pub summary_json: Option<PathBuf>,

    #[arg(long, short)]
    pub quiet: bool,

    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[arg(long)]
    pub wait_for_window: bool,

    #[arg(long, value_name = "PHONE", conflicts_with_all = ["dry_run", "resume", "limit"])]
    pub test_to: Option<String>,

    #[arg(long, value_name = "N", default_value_t = 3)]
    pub preview: usize,

    #[arg(long, value_name = "N")]
    pub limit: Option<u64>,

    #[arg(long)]
    pub no_xlsx: bool,

    #[arg(long)]
    pub no_template_check: bool,

    #[arg(long, value_name = "N")]
    pub max_failures: Option<u32>,

    #[arg(long, value_name = "PATH", conflicts_with = "no_ledger")]
    pub ledger: Option<PathBuf>,

    #[arg(long)]
    pub no_ledger: bool,

    #[arg(long)]
    pub allow_repeat: bool,

    #[arg(long, requires = "resume")]
    pub resend_changed: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub input: InputArgs,

    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,

    #[arg(long)]
    pub no_template_check: bool,

    #[arg(long, value_name = "N", default_value_t = 3)]
    pub preview: usize,

    #[arg(long, value_name = "PATH", conflicts_with = "no_ledger")]
    pub ledger: Option<PathBuf>,

    #[arg(long)]
    pub no_ledger: bool,
}

#[derive(Debug, Args, Clone, Default)]
pub struct HistoryArgs {
    // `PHONE`, `import RESULTS...` or `forget PHONE`: the first word picks the action.
    #[arg(value_name = "PHONE")]
    pub words: Vec<String>,

    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,

    #[arg(long, value_enum, default_value_t = HistoryFormat::Text)]
    pub format: HistoryFormat,

    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[arg(long, value_name = "PATH")]
    pub ledger: Option<PathBuf>,
}

/// `ledger`: the send ledger's own upkeep.
#[derive(Debug, Args, Clone, Default)]
pub struct LedgerArgs {
    // `migrate`: create or update the ledger's tables in the database.
    #[arg(value_name = "ACTION")]
    pub words: Vec<String>,

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
    #[arg(value_name = "RESULTS")]
    pub results: PathBuf,

    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    pub format: ReportFormat,

    #[arg(long, value_name = "FILE")]
    pub rows_to_fix: Option<PathBuf>,

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

    /// `--help` shows only the catalogue's text (the structs carry none): every flag and
    /// command has its entry (`every_message_is_in_both_catalogues...` checks Spanish).
    #[test]
    fn every_flag_and_command_has_its_text_in_the_catalogue() {
        let root = Cli::command();
        let mut missing = Vec::new();
        let commands = std::iter::once(("root".to_owned(), &root))
            .chain(root.get_subcommands().map(|c| (c.get_name().to_owned(), c)));
        for (name, command) in commands {
            if !crate::i18n::has_message(&format!("cli-{name}-about")) {
                missing.push(format!("cli-{name}-about"));
            }
            for arg in command.get_arguments() {
                if crate::i18n::clap_help::arg_help(&name, arg).is_none() {
                    missing.push(format!("{name} {}", arg.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no catalogue text for {missing:?}");
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
