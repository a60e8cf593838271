/*!
`wolkvox-dispatch validate LIST`: every row's verdict, the first rows as they
would be sent, and whether the list fits the contact hours. Sends nothing.
*/

use std::io::Write;

use super::list::*;
use crate::cli::ValidateArgs;
use crate::commands::preflight;
use crate::config::{self};
use crate::progress::Progress;
use crate::report::{self};
use crate::send::templates::Uses;
use crate::tr;
use crate::validate::Verdict;
use crate::{Error, Exit};

pub(crate) fn run(args: &ValidateArgs) -> Result<Exit, Error> {
    crate::validate::phone::preload();
    report::init_logging(false, false, &Progress::hidden());
    let settings = config::validate_settings(args)?;
    let list = &settings.list;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut invalid, mut duplicate, mut suppressed) = (0u64, 0u64, 0u64);
    let mut previews = Vec::new();
    let mut uses = Uses::default();
    let opened = open_list(list)?;
    say(&mut out, opened.validator.columns_summary());
    let mut hint = CountryHint::new(list, &opened.validator);
    // The lines of the first rows wait until they show whether the list needs a
    // default country, so that this hint, if any, comes first.
    let mut held: Option<Vec<u8>> = Some(Vec::new());
    let read = judge_rows(list, opened, |verdict| {
        let early = hint.see(&verdict);
        if let Some(line) = &early {
            say(&mut out, line);
        }
        if held.is_some() && (early.is_some() || hint.seen() >= CountryHint::EARLY) {
            let _ = out.write_all(&held.take().unwrap_or_default());
        }
        let mut out: &mut dyn Write = match held.as_mut() {
            Some(buffer) => buffer,
            None => &mut out,
        };
        match verdict {
            Verdict::Valid(job) => {
                uses.add(&job);
                if previews.len() < args.preview {
                    previews.push(job);
                }
            }
            Verdict::Invalid {
                shown: row,
                problems,
                ..
            } => {
                invalid += 1;
                for p in problems {
                    say(
                        &mut out,
                        &tr!(
                            "validate-problem",
                            row = row,
                            column = format!("{:?}", p.column),
                            reason = p.reason
                        ),
                    );
                }
            }
            Verdict::Duplicate {
                shown: row,
                of_shown: of_row,
                ..
            } => {
                duplicate += 1;
                let _ = writeln!(
                    out,
                    "{}",
                    tr!("validate-duplicate", row = row, of_row = of_row)
                );
            }
            Verdict::Suppressed {
                shown: row,
                telephone,
                list,
                ..
            } => {
                suppressed += 1;
                say(
                    &mut out,
                    &tr!(
                        "validate-suppressed",
                        row = row,
                        telephone = telephone,
                        list = list.display()
                    ),
                );
            }
        }
    })?;
    if let Some(rows) = held.take() {
        if let Some(line) = hint.at_end() {
            say(&mut out, &line);
        }
        let _ = out.write_all(&rows);
    }
    let rows = read.rows;
    let check = preflight::if_possible(&settings.check, &uses)?;
    if let Some(line) = preflight::describe(&check, &uses) {
        say(&mut out, &line);
    }
    let previews: Vec<String> = previews
        .iter()
        .map(|job| report::preview(job, preflight::filled_text(&check, job).as_deref()))
        .collect();
    print_previews(&mut out, &previews);
    if let Some(line) = hint.at_end() {
        say(&mut out, &line);
    }
    let valid = rows - invalid - duplicate - suppressed;
    let _ = writeln!(
        out,
        "{}",
        tr!(
            "validate-totals",
            invalid = invalid,
            rows = rows,
            duplicate = duplicate,
            suppressed = suppressed,
            valid = valid,
            list = read.named.as_str()
        )
    );
    if let Some(s) = &read.suppression {
        let _ = writeln!(out, "{}", suppression_line(s));
    }
    print_estimates(&mut out, &settings, valid);
    let _ = out.flush();
    // Suppressed rows are the user's intent, not a problem with the list.
    Ok(if invalid + duplicate == 0 {
        Exit::Success
    } else {
        Exit::SomeRowsNotSent
    })
}

/// When sending the valid rows would finish, and whether they fit the contact hours.
fn print_estimates(out: &mut impl Write, settings: &config::ValidateSettings, valid: u64) {
    let pace = Pace {
        window: settings.window.as_ref(),
        timezone: &settings.timezone,
        jobs: valid as usize,
        rate: settings.rate,
        tokens: token_count_for_estimates(),
    };
    if let Some(line) = pace.finish_line() {
        say(out, &tr!("validate-estimate", line = line));
    }
    if let Some(line) = pace.hours_line() {
        let _ = writeln!(
            out,
            "{}",
            tr!(
                "validate-contact-hours",
                line = line,
                rate = pace.rate,
                tokens = pace.tokens
            )
        );
    }
}
