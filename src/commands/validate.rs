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
    // The valid rows, kept only to look them up in the send ledger and in the record
    // of the list's real run (rule 1).
    let mut jobs = Vec::new();
    let keep_jobs = settings.ledger.as_ref().is_some_and(|l| l.may_exist())
        || [false, true].iter().any(|&template| {
            crate::journal::journal_path(&crate::journal::naming::default_results(
                &list.input,
                false,
                template,
            ))
            .exists()
        });
    let opened = open_list(list)?;
    say(&mut out, opened.validator.columns_summary());
    let mut hint = CountryHint::new(list, &opened.validator);
    // The lines of the first rows wait until they show whether the list needs a
    // default country, so that this hint, if any, comes first.
    let mut waiting: Option<Vec<u8>> = Some(Vec::new());
    let read = judge_rows(list, opened, |verdict| {
        let early = hint.see(&verdict);
        if let Some(line) = &early {
            say(&mut out, line);
        }
        if waiting.is_some() && (early.is_some() || hint.seen() >= CountryHint::EARLY) {
            let _ = out.write_all(&waiting.take().unwrap_or_default());
        }
        let mut out: &mut dyn Write = match waiting.as_mut() {
            Some(buffer) => buffer,
            None => &mut out,
        };
        match verdict {
            Verdict::Valid(job) => {
                uses.add(&job);
                if keep_jobs {
                    jobs.push(job.clone());
                }
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
    if let Some(rows) = waiting.take() {
        if let Some(line) = hint.at_end() {
            say(&mut out, &line);
        }
        let _ = out.write_all(&rows);
    }
    let rows = read.rows;
    let held = if keep_jobs {
        held_rows(
            &mut out,
            settings.ledger.as_ref(),
            &settings,
            &jobs,
            read.template,
        )?
    } else {
        0
    };
    drop(jobs);
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
    if held > 0 {
        say(&mut out, &tr!("validate-held-totals", rows = held));
    }
    print_estimates(&mut out, &settings, valid - held);
    let _ = out.flush();
    // Suppressed rows are the user's intent, not a problem with the list.
    Ok(if invalid + duplicate + held == 0 {
        Exit::Success
    } else {
        Exit::SomeRowsNotSent
    })
}

/// Prints the rows a `send` of this list would hold (rules 2 and 4 of `crate::plan`,
/// and rule 1 against the list's real results, as a `--resume` would) and returns how
/// many; a list already sent (rule 3) is the same error as `send`'s.
fn held_rows(
    out: &mut impl Write,
    settings: Option<&crate::ledger::Settings>,
    validate: &config::ValidateSettings,
    jobs: &[crate::validate::Job],
    template: bool,
) -> Result<u64, Error> {
    use crate::ledger;
    let list = &validate.list.input;
    let campaign = ledger::Campaign::new(
        &crate::journal::naming::default_results(list, false, template),
        list,
    );
    // What the list's real run recorded; one that cannot be read shows no rule 1.
    let prior = crate::journal::Prior::of_results(&crate::journal::naming::default_results(
        list, false, template,
    ))
    .ok()
    .flatten()
    .unwrap_or_default();
    let store = match settings {
        Some(settings) => ledger::open_existing(settings)?,
        None => None,
    };
    let now = ledger::now();
    // What the real run's journal knows of its own messages (none, if it has none).
    let known = ledger::known_keys(&prior);
    let seen = match (store, settings) {
        (Some(mut store), Some(settings)) => {
            let secs = |d: std::time::Duration| i64::try_from(d.as_secs()).unwrap_or(i64::MAX / 2);
            let keys: Vec<&str> = jobs.iter().map(|j| ledger::base_key(&j.key)).collect();
            let phones: Vec<&str> = jobs.iter().map(|j| j.telephone.as_str()).collect();
            Some(store.seen(
                &campaign.results,
                &known,
                &keys,
                &phones,
                now - secs(settings.repeat_window),
                settings.cap.map(|c| now - secs(c.per)),
            )?)
        }
        _ => None,
    };
    let view = seen.as_ref().map(|seen| crate::plan::LedgerView {
        seen,
        cap: settings.and_then(|s| s.cap),
        now,
        tz: &validate.timezone,
    });
    let flags = crate::plan::Flags {
        dry_run: true,
        ..crate::plan::Flags::default()
    };
    let verdicts: Vec<crate::validate::Verdict> =
        jobs.iter().cloned().map(Verdict::Valid).collect();
    let mut planner = crate::plan::Planner::new(&verdicts, &prior, view, flags);
    drop(verdicts);
    let mut held = 0;
    for job in jobs {
        let why = match planner.changed_text(job) {
            Some(why) => Some(why),
            None => planner.hold(job).map(|hold| hold.text(&validate.timezone)),
        };
        if let Some(why) = why {
            held += 1;
            say(out, &tr!("validate-held", row = job.shown, why = why));
        }
    }
    for _ in 0..jobs.len() {
        planner.count_valid();
    }
    if let Some(e) = planner.already_sent_error(&validate.timezone) {
        let _ = out.flush();
        return Err(e.into());
    }
    Ok(held)
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
