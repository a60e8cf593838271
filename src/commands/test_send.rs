/*!
`send LIST --test-to PHONE`: the first valid row's message, exactly as the campaign
would send it (free, rendered or HSM with its variables), sent once to PHONE instead
of the list, with Wolkvox's answer printed. Nothing is recorded: the campaign's
results file and journal are neither created nor touched, so the real run afterwards
is unaffected.
*/

use std::io::Write;

use super::list::*;
use crate::cli::SendArgs;
use crate::commands::preflight;
use crate::config::{self, ConfigError};
use crate::progress::Progress;
use crate::report;
use crate::send::api;
use crate::send::templates::Uses;
use crate::send::token;
use crate::tr;
use crate::validate::{self, Job, Verdict};
use crate::wolkvox::Answer;
use crate::{Error, Exit};

pub(crate) fn run(args: &SendArgs, phone: &str) -> Result<Exit, Error> {
    let settings = config::send_settings(args)?;
    report::init_logging(
        settings.log_format == crate::cli::LogFormat::Json,
        settings.quiet,
        &Progress::hidden(),
    );
    let flag_error = |reason: String| ConfigError::Flag {
        flag: "--test-to",
        reason,
    };
    let to = validate::phone::normalize(phone, settings.list.default_country)
        .map_err(|reason| flag_error(format!("{phone:?} {reason}")))?;
    let tokens = token::tokens_from_env()?;
    let origin = settings.origin.clone().ok_or(ConfigError::NoEndpoint)?;
    // The whole list is read and judged, as for a real run: a bad file is refused here too.
    let mut first: Option<Job> = None;
    let read = read_list(&settings.list, |verdict| {
        if let (None, Verdict::Valid(job)) = (&first, verdict) {
            first = Some(job);
        }
    })?;
    if let Some(list) = read.suppression.as_ref().and_then(|s| s.list_for(&to)) {
        return Err(flag_error(tr!("test-send-opted-out", to = to, list = list.display())).into());
    }
    let mut job = first.ok_or_else(|| flag_error(tr!("test-send-no-valid-row")))?;
    let row_phone = std::mem::replace(&mut job.telephone, to);

    let client = api::Client::new(&origin, settings.timeout, 1)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    let mut uses = Uses::default();
    uses.add(&job);
    let checked =
        preflight::before_sending(&runtime, &client, &tokens, &uses, settings.template_check)?;
    let shown = report::preview(&job, preflight::filled_text(&checked, &job).as_deref());

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    say(
        &mut out,
        &tr!(
            "test-send-heading",
            row = job.shown,
            list_phone = row_phone,
            to = job.telephone
        ),
    );
    say(&mut out, &shown);
    let Some(token) = tokens.first() else {
        return Err(token::TokenError::NoToken.into());
    };
    let answer = runtime
        .block_on(async { tokio::time::timeout(client.timeout(), client.send(token, &job)).await });
    let (verdict, answer, exit) = describe(answer.as_ref().ok());
    say(
        &mut out,
        &tr!("test-send-answer", verdict = verdict, answer = answer),
    );
    let _ = writeln!(out, "{}", tr!("test-send-nothing-recorded"));
    let _ = out.flush();
    Ok(exit)
}

/// What Wolkvox's answer means for the test, the answer in a line, and the exit code.
fn describe(answer: Option<&Answer>) -> (String, String, Exit) {
    let (verdict, reply, exit) = match answer {
        Some(Answer::Accepted(reply)) => (tr!("test-send-accepted"), Some(reply), Exit::Success),
        Some(Answer::Refused(reply)) => {
            (tr!("test-send-refused"), Some(reply), Exit::SomeRowsNotSent)
        }
        Some(Answer::Unknown(reply)) => {
            (tr!("test-send-unclear"), Some(reply), Exit::SomeRowsNotSent)
        }
        Some(
            Answer::TokenRejected(_, reply)
            | Answer::ApiNotFound(reply)
            | Answer::Redirected(reply)
            | Answer::Transient { reply, .. }
            | Answer::Setting(_, reply),
        ) => (
            tr!("test-send-not-taken"),
            Some(reply),
            Exit::SomeRowsNotSent,
        ),
        None => (tr!("test-send-no-answer"), None, Exit::SomeRowsNotSent),
    };
    let answer = reply
        .map(|r| {
            let parts = [
                r.http_status.map(|s| format!("HTTP {s}")),
                r.code.as_ref().map(|c| tr!("report-code", code = c)),
                Some(r.error_shown()).filter(|e| !e.is_empty()),
                Some(crate::i18n::shown(&r.msg)).filter(|m| !m.is_empty()),
            ];
            parts.into_iter().flatten().collect::<Vec<_>>().join(", ")
        })
        .unwrap_or_default();
    (verdict, answer, exit)
}
