/*!
`--help` and clap's usage errors in the current language. The texts of the
commands and flags come from the catalogues (`cli-<command>-about`,
`cli-<command>-<flag>`, or `cli-arg-<flag>` for a flag several commands share), in
English too, so a flag without a catalogue entry fails a test instead of showing
English to a Spanish reader. clap's own words (headings, `--help`, defaults,
possible values, its errors) are replaced only in Spanish; English keeps clap's.
*/

use clap::error::ErrorKind;
use clap::{Arg, ArgAction, Command};

use super::{Lang, current, message_in};
use crate::tr;

/// The message `id`, if the catalogue has it.
fn lookup(id: &str) -> Option<String> {
    super::has_message(id).then(|| message_in(current(), id, &[]))
}

/// Catalogue id of a flag: `dry_run` -> `dry-run`.
pub(crate) fn arg_key(arg: &Arg) -> String {
    arg.get_id().as_str().replace('_', "-")
}

/// The help text of `arg` in command `command`, from the catalogue.
pub(crate) fn arg_help(command: &str, arg: &Arg) -> Option<String> {
    let key = arg_key(arg);
    lookup(&format!("cli-{command}-{key}")).or_else(|| lookup(&format!("cli-arg-{key}")))
}

fn is_builtin(arg: &Arg) -> bool {
    matches!(arg.get_id().as_str(), "help" | "version")
}

/// Fills one command's texts from the catalogue; in Spanish, also clap's own words.
fn localize_command(mut cmd: Command, key: &str) -> Command {
    if let Some(about) = lookup(&format!("cli-{key}-about")) {
        cmd = cmd.about(about).long_about(None);
    }
    let spanish = current() == Lang::Es;
    let ids: Vec<String> = cmd
        .get_arguments()
        .filter(|a| !is_builtin(a))
        .map(|a| a.get_id().to_string())
        .collect();
    for id in ids {
        cmd = cmd.mut_arg(id, |arg| {
            let mut help = arg_help(key, &arg).unwrap_or_default();
            if !spanish {
                return arg.help(help).long_help(None);
            }
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let takes_value = arg.get_action().takes_values();
            if !defaults.is_empty() && takes_value && !arg.is_hide_default_value_set() {
                help.push_str(&tr!("cli-default", value = defaults.join(", ")));
            }
            let possible: Vec<String> = arg
                .get_possible_values()
                .iter()
                .filter(|v| !v.is_hide_set())
                .map(|v| v.get_name().to_owned())
                .collect();
            if !possible.is_empty() && takes_value && !arg.is_hide_possible_values_set() {
                help.push_str(&tr!("cli-possible-values", values = possible.join(", ")));
            }
            let heading = if arg.is_positional() {
                tr!("cli-heading-arguments")
            } else {
                tr!("cli-heading-options")
            };
            let arg = arg.help(help).long_help(None).help_heading(heading);
            if takes_value {
                arg.hide_default_value(true).hide_possible_values(true)
            } else {
                arg
            }
        });
    }
    if spanish {
        cmd = cmd
            .help_template(tr!("cli-help-template"))
            .subcommand_help_heading(tr!("cli-heading-commands"))
            .subcommand_value_name(tr!("cli-command-value-name"))
            .disable_help_flag(true)
            .arg(
                Arg::new("help")
                    .short('h')
                    .long("help")
                    .action(ArgAction::Help)
                    .help(tr!("cli-help-flag"))
                    .help_heading(tr!("cli-heading-options")),
            );
        if cmd.get_version().is_some() {
            cmd = cmd.disable_version_flag(true).arg(
                Arg::new("version")
                    .short('V')
                    .long("version")
                    .action(ArgAction::Version)
                    .help(tr!("cli-version-flag"))
                    .help_heading(tr!("cli-heading-options")),
            );
        }
    }
    cmd
}

/// The whole command line with its texts in the current language.
pub(crate) fn localize(cmd: Command) -> Command {
    let mut cmd = localize_command(cmd, "root");
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        cmd = cmd.mut_subcommand(name.clone(), |sub| localize_command(sub, &name));
    }
    if current() == Lang::Es {
        // clap adds its `help` subcommand when it builds the command: build it last,
        // then say what `help` does in Spanish too.
        cmd.build();
        cmd = cmd.mut_subcommand("help", |help| {
            help.about(tr!("cli-help-command"))
                .help_template(tr!("cli-help-template"))
                .subcommand_help_heading(tr!("cli-heading-commands"))
                .subcommand_value_name(tr!("cli-command-value-name"))
                // Its own list of commands names itself.
                .mut_subcommand("help", |inner| inner.about(tr!("cli-help-command")))
        });
    }
    cmd
}

/// `--help` in Spanish, with clap's `[OPTIONS]` in the usage line translated too;
/// `None` in English (clap prints its own, coloured on a terminal).
pub(crate) fn render_help(help: &clap::Error) -> Option<String> {
    if current() != Lang::Es || help.kind() != ErrorKind::DisplayHelp {
        return None;
    }
    Some(
        help.render()
            .to_string()
            .replace("[OPTIONS]", &tr!("cli-options-placeholder")),
    )
}

/// clap's usage error, in Spanish: the first line and the tips translated, the
/// usage line kept. In English, clap's own text.
pub(crate) fn render_error(err: &clap::Error) -> String {
    let english = err.render().to_string();
    if current() != Lang::Es {
        return english;
    }
    use clap::error::{ContextKind, ContextValue};
    let get = |kind| match err.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let arg = get(ContextKind::InvalidArg);
    let value = get(ContextKind::InvalidValue);
    let first = match err.kind() {
        ErrorKind::UnknownArgument => tr!("cli-error-unknown-argument", arg = arg),
        ErrorKind::InvalidSubcommand => tr!(
            "cli-error-unknown-command",
            command = get(ContextKind::InvalidSubcommand)
        ),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation => {
            tr!("cli-error-invalid-value", value = value, arg = arg)
        }
        ErrorKind::MissingRequiredArgument => tr!("cli-error-missing", arg = arg),
        ErrorKind::ArgumentConflict => tr!(
            "cli-error-conflict",
            arg = arg,
            other = get(ContextKind::PriorArg)
        ),
        ErrorKind::MissingSubcommand => tr!("cli-error-missing-command"),
        _ => tr!("cli-error-other"),
    };
    let mut out = format!("error: {first}\n");
    let valid = get(ContextKind::ValidValue);
    if !valid.is_empty() {
        out.push_str(&format!(
            "  {}\n",
            tr!("cli-error-valid-values", values = valid)
        ));
    }
    let suggested_arg = get(ContextKind::SuggestedArg);
    let suggested_command = get(ContextKind::SuggestedSubcommand);
    if !suggested_arg.is_empty() {
        out.push_str(&format!(
            "  {}\n",
            tr!("cli-error-suggestion", suggestion = suggested_arg)
        ));
    } else if !suggested_command.is_empty() {
        out.push_str(&format!(
            "  {}\n",
            tr!(
                "cli-error-suggestion-command",
                suggestion = suggested_command
            )
        ));
    }
    if let Some(usage) = english.lines().find_map(|l| l.strip_prefix("Usage: ")) {
        let usage = usage.replace("[OPTIONS]", &tr!("cli-options-placeholder"));
        out.push_str(&format!("\n{} {usage}\n", tr!("cli-usage-heading")));
    }
    out.push_str(&format!("\n{}\n", tr!("cli-error-more")));
    out
}
