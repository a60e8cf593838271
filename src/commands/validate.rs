/*!
`wolkvox-dispatch validate LIST`: every row's verdict, the first rows as they
would be sent, and whether the list fits the contact hours. Sends nothing.
*/

use std::io::Write;

use super::list::*;
use crate::cli::ValidateArgs;
use crate::config::{self};
use crate::progress::Progress;
use crate::report::{self};
use crate::validate::Verdict;
use crate::{Error, Exit};

pub(crate) fn run(args: &ValidateArgs) -> Result<Exit, Error> {
    report::init_logging(false, false, &Progress::hidden());
    let settings = config::validate_settings(&args.input)?;
    let list = &settings.list;
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let (mut invalid, mut duplicate, mut suppressed) = (0u64, 0u64, 0u64);
    let mut previews = Vec::new();
    let opened = open_list(list)?;
    say(&mut out, opened.validator.columns_summary());
    let read = judge_rows(list, opened, |verdict| match verdict {
        Verdict::Valid(job) => {
            if previews.len() < report::PREVIEW_ROWS {
                previews.extend(report::template_preview(&job));
            }
        }
        Verdict::Invalid { row, problems, .. } => {
            invalid += 1;
            for p in problems {
                say(
                    &mut out,
                    &format!("row {row}, column {:?}: {}", p.column, p.reason),
                );
            }
        }
        Verdict::Duplicate { row, of_row, .. } => {
            duplicate += 1;
            let _ = writeln!(
                out,
                "row {row}: duplicate of row {of_row} (same telephone and message); it would not be sent"
            );
        }
        Verdict::Suppressed {
            row,
            telephone,
            list,
            ..
        } => {
            suppressed += 1;
            say(
                &mut out,
                &format!(
                    "row {row}: {telephone} is on the opt-out list {}; it would not be sent (suppressed)",
                    list.display()
                ),
            );
        }
    })?;
    let rows = read.rows;
    print_previews(&mut out, &previews);
    let valid = rows - invalid - duplicate - suppressed;
    let _ = writeln!(
        out,
        "{invalid} of {rows} rows invalid, {duplicate} duplicate, {suppressed} suppressed, {valid} valid ({})",
        list.input.display()
    );
    if let Some(s) = &read.suppression {
        let _ = writeln!(out, "{}", suppression_line(s));
    }
    if let Some(window) = &settings.window {
        let tokens = token_count_for_estimates();
        let needed = sending_time(valid, settings.rate, tokens);
        let _ = writeln!(
            out,
            "contact hours: {} (at {} requests/s per token with {tokens} token(s))",
            window.fit(jiff::Timestamp::now(), needed).describe(),
            settings.rate
        );
    }
    let _ = out.flush();
    // Suppressed rows are the user's intent, not a problem with the list.
    Ok(if invalid + duplicate == 0 {
        Exit::Success
    } else {
        Exit::SomeRowsNotSent
    })
}
