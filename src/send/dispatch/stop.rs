/*!
Why a run stopped before every row was attempted (`StopReason`): what the summary
says (`Display`, in the interface's language) and what the rows left `not_sent` say
in their `msg` (English, like every `msg` of the results file).
*/

use crate::i18n::{Lang, Said, with_lang};
use crate::send::window::show;
use crate::wolkvox::SettingProblem;
use crate::{said, tr};

/// Why a run stopped before every row was attempted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Every token was refused (invalid, missing) or spent today's quota.
    NoTokens { quota_spent: bool },
    /// The API answered that the endpoint does not exist: a configuration error.
    ApiNotFound { msg: String },
    /// The server answered with an HTTP redirect: the base URL or server id is wrong.
    Redirected { status: Option<u16>, msg: String },
    /// Every token failed this many times in a row.
    ServiceDown { failures: u32 },
    /// The results file or journal could not be written: sending on would lose outcomes.
    RecordFailed { message: String },
    /// Outside the contact hours (`campaign.hours`): at the start, or the window closed
    /// mid-run. `next_open` is `None` if it does not open again in the searched range.
    WindowClosed {
        next_open: Option<jiff::ZonedDateTime>,
    },
    /// A failure the same for every request (an untrusted certificate, a proxy that
    /// refuses, an unknown host): a setting to fix. `origin` is where requests go.
    Setting {
        problem: SettingProblem,
        origin: String,
        detail: String,
    },
    /// `max_failures` rows in a row were refused with the same answer: the campaign as a
    /// whole is wrong (connector, template, closed windows), not a few numbers.
    SameRefusal {
        rows: u32,
        code: String,
        error: String,
        msg: String,
    },
}

impl StopReason {
    /// What the `not_sent` rows say in their `msg`: recorded in English, like every `msg`
    /// of the results file (programs read it), whatever the language of the interface.
    pub(crate) fn not_sent_msg(&self) -> Said {
        match self {
            StopReason::Interrupted => said!("msg-interrupted"),
            StopReason::NoTokens { quota_spent: true } => said!("msg-quota-spent"),
            StopReason::NoTokens { quota_spent: false } => said!("msg-tokens-refused"),
            StopReason::ApiNotFound { .. } => said!("msg-api-not-found"),
            StopReason::Redirected { .. } => said!("msg-redirected"),
            StopReason::ServiceDown { .. } => said!("msg-service-down"),
            StopReason::RecordFailed { .. } => said!("msg-record-failed"),
            StopReason::WindowClosed {
                next_open: Some(at),
            } => said!(
                "msg-window-closed",
                opens = with_lang(Lang::En, || show(at))
            ),
            StopReason::WindowClosed { next_open: None } => said!("msg-window-never"),
            StopReason::SameRefusal { rows, .. } => said!("msg-same-refusal", rows = *rows),
            StopReason::Setting { problem, .. } => problem.not_sent_msg(),
        }
    }
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::Interrupted => f.write_str(&tr!("stop-interrupted")),
            StopReason::NoTokens { quota_spent: true } => f.write_str(&tr!("stop-quota-spent")),
            StopReason::NoTokens { quota_spent: false } => f.write_str(&tr!("stop-tokens-refused")),
            StopReason::ApiNotFound { msg } => {
                f.write_str(&tr!("stop-api-not-found", msg = format!("{msg:?}")))
            }
            StopReason::Redirected { status, msg } => f.write_str(&tr!(
                "stop-redirected",
                status = status.map(|s| s.to_string()).unwrap_or_default(),
                msg = msg
            )),
            StopReason::ServiceDown { failures } => {
                f.write_str(&tr!("stop-service-down", failures = *failures))
            }
            StopReason::RecordFailed { message } => {
                f.write_str(&tr!("stop-record-failed", message = message))
            }
            StopReason::WindowClosed {
                next_open: Some(at),
            } => f.write_str(&tr!("stop-window-closed", opens = show(at))),
            StopReason::WindowClosed { next_open: None } => f.write_str(&tr!("stop-window-never")),
            StopReason::Setting {
                problem,
                origin,
                detail,
            } => f.write_str(&problem.describe(origin, detail)),
            StopReason::SameRefusal {
                rows,
                code,
                error,
                msg,
            } => {
                let answer = [code.as_str(), error.as_str(), msg.as_str()]
                    .iter()
                    .filter(|part| !part.is_empty())
                    .copied()
                    .collect::<Vec<_>>()
                    .join(" ");
                f.write_str(&tr!(
                    "stop-same-refusal",
                    rows = *rows,
                    answer = answer,
                    fix = crate::wolkvox::fix_for(msg)
                        .unwrap_or_else(|| tr!("stop-same-refusal-fix"))
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Why a run stopped, as the rows it left `not_sent` record it: the English
    /// `tr_en!` gave (the results file is a contract), made in whatever language, and
    /// shown in Spanish from the id.
    #[test]
    fn the_not_sent_msg_is_the_english_of_before_and_spanish_from_its_id() {
        let at = jiff::civil::date(2026, 12, 2)
            .at(8, 0, 0, 0)
            .in_tz("America/Bogota")
            .expect("a zone");
        let reasons = [
            (StopReason::Interrupted, crate::tr_en!("msg-interrupted")),
            (
                StopReason::NoTokens { quota_spent: true },
                crate::tr_en!("msg-quota-spent"),
            ),
            (
                StopReason::ServiceDown { failures: 4 },
                crate::tr_en!("msg-service-down"),
            ),
            (
                StopReason::WindowClosed {
                    next_open: Some(at.clone()),
                },
                crate::tr_en!("msg-window-closed", opens = show(&at)),
            ),
            (
                StopReason::SameRefusal {
                    rows: 3,
                    code: "400".into(),
                    error: "x".into(),
                    msg: "y".into(),
                },
                crate::tr_en!("msg-same-refusal", rows = 3),
            ),
            (
                StopReason::Setting {
                    problem: SettingProblem::UnknownHost,
                    origin: "https://x".into(),
                    detail: String::new(),
                },
                crate::tr_en!("msg-setting-unknown-host"),
            ),
        ];
        for (reason, english) in reasons {
            let said = with_lang(Lang::Es, || reason.not_sent_msg());
            assert_eq!(said.english(), english, "{reason:?}");
            let es = with_lang(Lang::Es, || said.shown());
            assert!(es.starts_with("no enviado: "), "{es}");
            assert!(!es.contains("not sent"), "{es}");
        }
        // The weekday of when the window opens again, in the reader's language.
        let closed = StopReason::WindowClosed {
            next_open: Some(at),
        }
        .not_sent_msg();
        assert!(
            closed.english().contains("again Wed 2026"),
            "{}",
            closed.english()
        );
        let es = with_lang(Lang::Es, || closed.shown());
        assert!(es.contains("miércoles 2026"), "{es}");
    }
}
