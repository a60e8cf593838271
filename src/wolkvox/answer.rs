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
*/

use std::time::Duration;

use serde::Deserialize;

use super::excerpt;
use crate::tr;

/// What the server said, as recorded in the results file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reply {
    pub(crate) http_status: Option<u16>,
    pub(crate) code: Option<String>,
    pub(crate) error: String,
    pub(crate) msg: String,
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
    pub(crate) fn not_sent_msg(self) -> String {
        match self {
            SettingProblem::Certificate => crate::tr_en!("msg-setting-certificate"),
            SettingProblem::CertificateName => crate::tr_en!("msg-setting-certificate-name"),
            SettingProblem::ProxyAuth => crate::tr_en!("msg-setting-proxy-auth"),
            SettingProblem::ProxyRefused => crate::tr_en!("msg-setting-proxy-refused"),
            SettingProblem::ProxyUnreachable => crate::tr_en!("msg-setting-proxy-unreachable"),
            SettingProblem::UnknownHost => crate::tr_en!("msg-setting-unknown-host"),
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

/// The `error` of a row whose request outlived the timeout.
pub(crate) const TIMEOUT_ERROR: &str = "timeout";

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
            reply.error = crate::tr_en!("msg-answer-not-json");
            reply.msg = excerpt(&text);
            None
        }
    };
    let http_ok = (200..300).contains(&status);
    if (300..400).contains(&status) {
        if reply.error == crate::tr_en!("msg-answer-not-json") {
            reply.error = crate::tr_en!("msg-answer-redirect", status = status);
        }
        return Answer::Redirected(reply);
    }
    if !http_ok && code.is_some_and(|c| (200..300).contains(&c)) {
        // The body says it was taken; the status says something failed after that (or
        // before it): either way it may have been delivered.
        reply.error = crate::tr_en!(
            "msg-answer-says-taken",
            status = status,
            code = reply.code.as_deref().unwrap_or_default()
        );
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
                    reply.error = crate::tr_en!("msg-answer-no-code");
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
            if reply.error.is_empty() || reply.error == crate::tr_en!("msg-answer-not-json") {
                reply.error = crate::tr_en!("msg-answer-server-error", status = status);
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
    use crate::wolkvox::EXCERPT_CHARS;
    use std::time::Duration;

    fn body(code: &str, error: &str, msg: &str) -> Vec<u8> {
        format!(r#"{{"code":{code},"error":{error},"msg":"{msg}"}}"#).into_bytes()
    }

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
                    msg: String::new()
                },
                retry_after: Some(Duration::from_secs(2))
            }
        );
    }
}
