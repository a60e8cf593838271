/*!
What one answer of Wolkvox's to a send means. Classification follows the API's
response-code table: the body's `code` (an integer or a string of digits) and `msg`
decide, since one HTTP status (403) covers several cases. The one question that
matters most is "could this message have been delivered?": only answers that prove
the message was not taken are `Transient` (HTTP 429, HTTP 503, Wolkvox's
"simultaneous requests" refusal and an unrecognised 403, maintenance); a 2xx without
a readable code, any other 5xx and an answer whose body says 2xx while its HTTP
status does not are `Unknown`. Pure: every row of the table is unit-tested here; the
client (`send::api`) adds what the transport says (a timeout, a lost connection).

What the tool itself says of an answer (not JSON, no usable code, a timeout...) is an
`AnswerError`, one catalogue message each: recorded in English in the results file's
`error`, shown in the reader's language, and what decisions look at. No decision
compares the tool's own words; the server's words (`msg`) are Wolkvox's vocabulary and
are read as such.
*/

use std::time::Duration;

use serde::Deserialize;

use super::excerpt;
use crate::i18n::Said;
use crate::{said, tr};

/// What the server said, as recorded in the results file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) http_status: Option<u16>,
    pub(crate) code: Option<String>,
    /// The results file's `error`: the server's own `error`, or what the tool says of
    /// the answer (`problem`, in English).
    pub(crate) error: String,
    pub(crate) msg: String,
    /// What the tool found wrong with the answer (or with getting one), when it is the
    /// tool that says it rather than the server: what decisions look at, never `error`.
    pub(crate) problem: Option<AnswerError>,
    /// `msg` when the tool wrote it (a redirect's `Location`, a timeout), by message id.
    pub(crate) msg_said: Option<Said>,
}

impl Reply {
    /// The `error` in the language printed now: the tool's words from the catalogue,
    /// the server's as it said them.
    pub(crate) fn error_shown(&self) -> String {
        self.problem
            .as_ref()
            .map_or_else(|| self.error.clone(), AnswerError::text)
    }

    /// Sets `msg` to the tool's text `said` (in English, as the results file keeps it).
    pub(crate) fn say(&mut self, said: Said) {
        self.msg = said.english();
        self.msg_said = Some(said);
    }

    /// Records `problem` as the reply's `error` (in English, as the results file keeps it).
    pub(crate) fn set_problem(&mut self, problem: AnswerError) {
        self.error = problem.recorded();
        self.problem = Some(problem);
    }
}

impl From<AnswerError> for Reply {
    /// A reply that is only the tool's word: no answer came (or none that could be read).
    fn from(problem: AnswerError) -> Reply {
        let mut reply = Reply::default();
        reply.set_problem(problem);
        reply
    }
}

/// What the tool says of an answer when the server's own words do not say it: each kind
/// is one message of the catalogues, recorded in English in the results file's `error`
/// and shown to a person in their language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum AnswerError {
    /// The body is not JSON (a gateway's page, an empty body).
    NotJson,
    /// A redirect (3xx) whose body says nothing of its own.
    Redirect { status: u16 },
    /// An error status whose body says the message was taken (`code` 2xx).
    SaysTaken { status: u16, code: String },
    /// A 2xx without a code that says what happened.
    NoCode,
    /// A 5xx other than 503 whose body says nothing of its own.
    ServerError { status: u16 },
    /// The token is not a valid HTTP header value (checked when tokens are read).
    TokenHeader,
    /// The connection broke while a 2xx answer was being read.
    LostWhileReading,
    /// No connection could be made: nothing was written.
    ConnectFailed,
    /// No answer within the timeout.
    Timeout,
    /// The connection broke after the request may have been written.
    ConnectionLost,
}

impl AnswerError {
    /// The catalogue message that says it, with its arguments (what the journal records).
    pub(crate) fn said(&self) -> Said {
        match self {
            AnswerError::NotJson => said!("msg-answer-not-json"),
            AnswerError::Redirect { status } => said!("msg-answer-redirect", status = *status),
            AnswerError::SaysTaken { status, code } => {
                said!("msg-answer-says-taken", status = *status, code = code)
            }
            AnswerError::NoCode => said!("msg-answer-no-code"),
            AnswerError::ServerError { status } => {
                said!("msg-answer-server-error", status = *status)
            }
            AnswerError::TokenHeader => said!("msg-answer-token-header"),
            AnswerError::LostWhileReading => said!("msg-answer-connection-lost"),
            AnswerError::ConnectFailed => said!("msg-answer-connect-failed"),
            AnswerError::Timeout => said!("msg-answer-timeout"),
            AnswerError::ConnectionLost => said!("msg-answer-dropped"),
        }
    }

    /// In the language printed now.
    pub(crate) fn text(&self) -> String {
        self.said().shown()
    }

    /// In English, as the results file records it (programs read it).
    pub(crate) fn recorded(&self) -> String {
        self.said().english()
    }
}

/// Why a token can no longer be used in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenProblem {
    /// 401: the request carried no token.
    Missing,
    /// 403 PLEASE VALIDATE TOKEN: invalid, expired or malformed.
    Invalid,
    /// 403 TOKEN LIMIT EXCEEDED: today's quota is spent; it renews tomorrow.
    QuotaSpent,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Wolkvox accepted the message (HTTP 2xx and body code 2xx).
    Accepted(Reply),
    /// The API refused this message: final, not retried.
    Refused(Reply),
    /// The token cannot be used; the message was not sent and may go through another token.
    TokenRejected(TokenProblem, Reply),
    /// The URL or `api=` is wrong: no request can succeed; stop the run.
    ApiNotFound(Reply),
    /// An HTTP redirect (3xx): the base URL or server id is wrong; stop the run. The
    /// reply's `msg` names the `Location`.
    Redirected(Reply),
    /// Certainly not delivered and worth retrying later (busy, maintenance, 429, 503,
    /// connect error).
    Transient {
        reply: Reply,
        retry_after: Option<Duration>,
    },
    /// May have been delivered: a 5xx other than 503, a 5xx whose body says 2xx, a 2xx
    /// without a readable code, or connection lost after the request was written.
    Unknown(Reply),
    /// Certainly not delivered, and no request can get through until a setting is fixed
    /// (a certificate this machine does not trust, a proxy that refuses): stop the run.
    Setting(SettingProblem, Reply),
}

/// A failure that is the same for every request: a setting to fix, not an outage. The
/// request certainly did not reach Wolkvox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SettingProblem {
    /// The server's certificate is not trusted here (a company's TLS inspection, say).
    Certificate,
    /// The certificate is for another name than the host asked for.
    CertificateName,
    /// The proxy wants other credentials (407).
    ProxyAuth,
    /// The proxy refused the tunnel without saying why the client can read (tinyproxy
    /// answers 401 to wrong credentials; an ACL answers 403).
    ProxyRefused,
    /// The proxy cannot be reached.
    ProxyUnreachable,
    /// The host name does not resolve.
    UnknownHost,
}

impl SettingProblem {
    /// What is wrong and what fixes it, for `origin` (the URL requests go to).
    pub(crate) fn describe(self, origin: &str, detail: &str) -> String {
        let origin = crate::text::redact_url(origin);
        match self {
            SettingProblem::Certificate => tr!("setting-certificate", detail = detail),
            SettingProblem::CertificateName => {
                tr!("setting-certificate-name", origin = origin, detail = detail)
            }
            SettingProblem::ProxyAuth => tr!("setting-proxy-auth"),
            SettingProblem::ProxyRefused => tr!("setting-proxy-refused", origin = origin),
            SettingProblem::ProxyUnreachable => tr!("setting-proxy-unreachable", detail = detail),
            SettingProblem::UnknownHost => {
                tr!("setting-unknown-host", origin = origin, detail = detail)
            }
        }
    }

    /// The row's `msg` (English, like every `msg` of the results file).
    pub(crate) fn not_sent_msg(self) -> crate::i18n::Said {
        match self {
            SettingProblem::Certificate => crate::said!("msg-setting-certificate"),
            SettingProblem::CertificateName => crate::said!("msg-setting-certificate-name"),
            SettingProblem::ProxyAuth => crate::said!("msg-setting-proxy-auth"),
            SettingProblem::ProxyRefused => crate::said!("msg-setting-proxy-refused"),
            SettingProblem::ProxyUnreachable => crate::said!("msg-setting-proxy-unreachable"),
            SettingProblem::UnknownHost => crate::said!("msg-setting-unknown-host"),
        }
    }
}

/// A refusal because of load, not because of the message: worth waiting for, without
/// spending the row's attempts, while the server keeps working.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttle {
    /// 403 "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN": wait for a slot.
    Simultaneous,
    /// HTTP 429 (a gateway's or a server's rate limit): slow down.
    TooMany,
}

/// Whether a transient refusal is about load (see `Throttle`).
pub(crate) fn throttle(reply: &Reply) -> Option<Throttle> {
    if reply.http_status == Some(429) {
        Some(Throttle::TooMany)
    } else if reply.msg.to_uppercase().contains("SIMULTANEOUS") {
        Some(Throttle::Simultaneous)
    } else {
        None
    }
}

/// A gateway's 502 or 504: the gateway gave up, the API may still be working on the
/// request (and so still holds one of the token's slots).
pub(crate) fn from_gateway(reply: &Reply) -> bool {
    matches!(reply.http_status, Some(502 | 504))
}

#[derive(Debug, Deserialize)]
struct Body {
    #[serde(default)]
    code: Option<Code>,
    #[serde(default)]
    error: Option<serde_json::Value>,
    #[serde(default)]
    msg: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Code {
    Number(i64),
    Text(String),
}

impl Code {
    fn as_number(&self) -> Option<i64> {
        match self {
            Code::Number(n) => Some(*n),
            Code::Text(t) => t.trim().parse().ok(),
        }
    }
    fn text(&self) -> String {
        match self {
            Code::Number(n) => n.to_string(),
            Code::Text(t) => excerpt(t),
        }
    }
}

fn value_text(v: Option<serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => String::new(),
        Some(serde_json::Value::String(s)) => excerpt(&s),
        Some(other) => excerpt(&other.to_string()),
    }
}

/// Classifies an HTTP answer. Pure, so every row of the code table is unit-tested.
pub(crate) fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> Answer {
    let parsed: Option<Body> = serde_json::from_slice(body).ok();
    let mut reply = Reply {
        http_status: Some(status),
        ..Reply::default()
    };
    let code = match parsed {
        Some(b) => {
            reply.code = b.code.as_ref().map(Code::text);
            reply.error = value_text(b.error);
            reply.msg = value_text(b.msg);
            b.code.as_ref().and_then(Code::as_number)
        }
        None => {
            let text = String::from_utf8_lossy(body);
            reply.set_problem(AnswerError::NotJson);
            reply.msg = excerpt(&text);
            None
        }
    };
    let http_ok = (200..300).contains(&status);
    if (300..400).contains(&status) {
        if reply.problem == Some(AnswerError::NotJson) {
            reply.set_problem(AnswerError::Redirect { status });
        }
        return Answer::Redirected(reply);
    }
    if !http_ok && code.is_some_and(|c| (200..300).contains(&c)) {
        // The body says it was taken; the status says something failed after that (or
        // before it): either way it may have been delivered.
        let code = reply.code.clone().unwrap_or_default();
        reply.set_problem(AnswerError::SaysTaken { status, code });
        return Answer::Unknown(reply);
    }
    // A 2xx whose body says otherwise is judged by the body; an HTTP error by its status.
    let effective = if http_ok {
        match code {
            Some(c) => c,
            None => {
                // Wolkvox said 2xx but not what it did: the message may have been
                // accepted, so it must not be sent again unless the user asks.
                if reply.error.is_empty() {
                    reply.set_problem(AnswerError::NoCode);
                }
                return Answer::Unknown(reply);
            }
        }
    } else {
        i64::from(status)
    };
    let upper = reply.msg.to_uppercase();
    match effective {
        200..=299 => Answer::Accepted(reply),
        401 => Answer::TokenRejected(TokenProblem::Missing, reply),
        403 if upper.contains("TOKEN LIMIT EXCEEDED") => {
            Answer::TokenRejected(TokenProblem::QuotaSpent, reply)
        }
        403 if upper.contains("VALIDATE TOKEN") => {
            Answer::TokenRejected(TokenProblem::Invalid, reply)
        }
        // "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS" and undocumented 403s (maintenance),
        // "too many requests" and "unavailable": the request was turned away.
        403 | 429 | 503 => Answer::Transient { reply, retry_after },
        // A script or gateway may have handed the message on before failing.
        500..=599 => {
            if reply.error.is_empty() || reply.problem == Some(AnswerError::NotJson) {
                reply.set_problem(AnswerError::ServerError { status });
            }
            Answer::Unknown(reply)
        }
        // Wolkvox never asks for proxy credentials: a proxy on the way does.
        407 => Answer::Setting(SettingProblem::ProxyAuth, reply),
        400 if upper.contains("DOES NOT EXIST") => Answer::ApiNotFound(reply),
        404 if !http_ok => Answer::ApiNotFound(reply),
        _ => Answer::Refused(reply),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wolkvox::{EXCERPT_CHARS, test_body as body};

    #[test]
    fn accepted_with_numeric_or_string_code() {
        let ok = classify(
            201,
            &body("201", "null", "Message has been sent successfully"),
            None,
        );
        let Answer::Accepted(reply) = ok else {
            panic!("{ok:?}")
        };
        assert_eq!(reply.code.as_deref(), Some("201"));
        assert_eq!(reply.error, "");
        assert!(matches!(
            classify(200, &body("\"202\"", "null", "ok"), None),
            Answer::Accepted(_)
        ));
    }

    #[test]
    fn body_code_overrides_a_2xx_status() {
        assert!(matches!(
            classify(200, &body("400", "\"BAD REQUEST\"", "window closed"), None),
            Answer::Refused(_)
        ));
        assert!(matches!(
            classify(
                200,
                &body("403", "\"FORBIDDEN\"", "PLEASE VALIDATE TOKEN"),
                None
            ),
            Answer::TokenRejected(TokenProblem::Invalid, _)
        ));
    }

    #[test]
    fn the_code_table() {
        let cases = [
            (400, "THE API YOU WANT TO CONSULT DOES NOT EXIST", "api"),
            (400, "SOME PARAMETERS ARE REQUIRED", "refused"),
            (401, "PLEASE ENTER THE WOLKVOX-TOKEN", "missing"),
            (403, "TOKEN LIMIT EXCEEDED", "quota"),
            (
                403,
                "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN (2)",
                "transient",
            ),
            (403, "PLEASE VALIDATE TOKEN", "invalid"),
            (403, "", "transient"),
            (429, "slow down", "transient"),
            (503, "", "transient"),
            (500, "INTERNAL SERVER ERROR", "unknown"),
            (502, "", "unknown"),
            (504, "", "unknown"),
            (599, "", "unknown"),
            (301, "", "redirect"),
            (308, "", "redirect"),
            (422, "number not on WhatsApp", "refused"),
        ];
        for (status, msg, want) in cases {
            let got = classify(status, &body(&status.to_string(), "\"X\"", msg), None);
            let kind = match got {
                Answer::ApiNotFound(_) => "api",
                Answer::Refused(_) => "refused",
                Answer::TokenRejected(TokenProblem::Missing, _) => "missing",
                Answer::TokenRejected(TokenProblem::QuotaSpent, _) => "quota",
                Answer::TokenRejected(TokenProblem::Invalid, _) => "invalid",
                Answer::Transient { .. } => "transient",
                Answer::Unknown(_) => "unknown",
                Answer::Redirected(_) => "redirect",
                other => panic!("{status} {msg}: {other:?}"),
            };
            assert_eq!(kind, want, "{status} {msg}");
        }
    }

    #[test]
    fn non_json_bodies_become_short_excerpts() {
        let html = format!("<html>{}</html>", "x".repeat(10_000));
        // A 2xx that cannot be read may still mean "accepted": unknown, never resent.
        let Answer::Unknown(reply) = classify(200, html.as_bytes(), None) else {
            panic!()
        };
        assert_eq!(reply.error, "response is not JSON");
        assert!(reply.msg.chars().count() <= EXCERPT_CHARS + 1);
        // A gateway's page: it may have handed the message on before failing.
        assert!(matches!(
            classify(502, b"Bad gateway", None),
            Answer::Unknown(_)
        ));
        assert!(matches!(
            classify(400, b"<html>bad</html>", None),
            Answer::Refused(_)
        ));
        assert!(matches!(
            classify(201, br#"{"code":"ok"}"#, None),
            Answer::Unknown(_)
        ));
    }

    #[test]
    fn an_error_status_whose_body_says_sent_is_unknown_never_retried() {
        for status in [500, 502, 503, 504, 429, 403, 400] {
            let got = classify(
                status,
                &body("201", "null", "Message has been sent successfully"),
                None,
            );
            let Answer::Unknown(reply) = got else {
                panic!("{status}: {got:?}")
            };
            assert_eq!(reply.code.as_deref(), Some("201"));
            assert!(reply.error.contains("may have been delivered"), "{reply:?}");
        }
        assert!(matches!(
            classify(503, &body("\"202\"", "null", "ok"), None),
            Answer::Unknown(_)
        ));
    }

    #[test]
    fn retry_after_is_kept() {
        let got = classify(429, b"", Some(Duration::from_secs(2)));
        assert_eq!(
            got,
            Answer::Transient {
                reply: Reply {
                    http_status: Some(429),
                    code: None,
                    error: "response is not JSON".into(),
                    msg: String::new(),
                    problem: Some(AnswerError::NotJson),
                    msg_said: None,
                },
                retry_after: Some(Duration::from_secs(2))
            }
        );
    }

    #[test]
    fn the_tool_s_words_are_typed_recorded_in_english_and_shown_in_spanish() {
        use crate::i18n::{Lang, with_lang};
        // The results file's `error` texts, as earlier versions wrote them.
        let kinds = [
            (AnswerError::NotJson, "response is not JSON"),
            (AnswerError::Redirect { status: 301 }, "HTTP 301 redirect"),
            (
                AnswerError::SaysTaken {
                    status: 502,
                    code: "201".into(),
                },
                "HTTP 502 with an answer that says 201: it may have been delivered",
            ),
            (AnswerError::NoCode, "response has no usable code"),
            (
                AnswerError::ServerError { status: 500 },
                "HTTP 500 server error: it may have been delivered",
            ),
            (
                AnswerError::TokenHeader,
                "token cannot be sent as an HTTP header",
            ),
            (
                AnswerError::LostWhileReading,
                "connection lost while reading the answer",
            ),
            (AnswerError::ConnectFailed, "connection failed"),
            (AnswerError::Timeout, "timeout"),
            (AnswerError::ConnectionLost, "connection lost"),
        ];
        for (kind, english) in kinds {
            // Recorded in English whatever the language printed.
            assert_eq!(with_lang(Lang::Es, || kind.recorded()), english);
            assert_eq!(Reply::from(kind.clone()).error, english);
            let spanish = with_lang(Lang::Es, || kind.text());
            assert_ne!(spanish, english, "{kind:?} has no Spanish text");
            let shown = with_lang(Lang::Es, || Reply::from(kind.clone()).error_shown());
            assert_eq!(shown, spanish);
        }
    }

    #[test]
    fn a_server_s_own_error_is_never_taken_for_the_tool_s() {
        // A body whose `error` happens to say what the tool says of unreadable bodies is
        // the server's word, kept as it is: decisions look at the kind, not the text.
        let said = body("500", "\"response is not JSON\"", "boom");
        let Answer::Unknown(reply) = classify(500, &said, None) else {
            panic!()
        };
        assert_eq!(reply.error, "response is not JSON");
        assert_eq!(reply.problem, None);
        // An unreadable one is the tool's, and a 5xx says so.
        let Answer::Unknown(reply) = classify(500, b"<html>", None) else {
            panic!()
        };
        assert_eq!(
            reply.problem,
            Some(AnswerError::ServerError { status: 500 })
        );
        assert_eq!(
            reply.error,
            "HTTP 500 server error: it may have been delivered"
        );
    }
}
