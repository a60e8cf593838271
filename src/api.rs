/*!
The Wolkvox client: builds each request, sends it, and classifies what came
back into an `Answer` the dispatcher can act on without knowing HTTP.

Classification follows the API's response-code table: the body's `code` (an
integer or a string of digits) and `msg` decide, since one HTTP status (403)
covers several cases. The one question that matters most is "could this
message have been delivered?": only answers that certainly did not deliver
are `Transient` (safe to retry); a timeout or a connection lost after the
request was written is `Unknown`. Answers are untrusted: bodies are read up
to 64 KiB and anything unexpected becomes a short excerpt.
*/

use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::Deserialize;

use crate::config::Token;
use crate::validate::{Job, Message};

/// Bodies longer than this are cut: a real answer is a few hundred bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of an unexpected body goes into the results file.
const EXCERPT_CHARS: usize = 200;

/// What the server said, as recorded in the results file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reply {
    pub http_status: Option<u16>,
    pub code: Option<String>,
    pub error: String,
    pub msg: String,
}

/// Why a token can no longer be used in this run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    /// 401: the request carried no token.
    Missing,
    /// 403 PLEASE VALIDATE TOKEN: invalid, expired or malformed.
    Invalid,
    /// 403 TOKEN LIMIT EXCEEDED: today's quota is spent; it renews tomorrow.
    QuotaSpent,
}

/// What one attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Wolkvox accepted the message (HTTP 2xx and body code 2xx).
    Accepted(Reply),
    /// The API refused this message: final, not retried.
    Refused(Reply),
    /// The token cannot be used; the message was not sent and may go through another token.
    TokenRejected(TokenProblem, Reply),
    /// The URL or `api=` is wrong: no request can succeed; stop the run.
    ApiNotFound(Reply),
    /// Certainly not delivered and worth retrying later (busy, maintenance, 429, 5xx, connect error).
    Transient {
        reply: Reply,
        retry_after: Option<Duration>,
    },
    /// May have been delivered: timeout, or connection lost after the request was written.
    Unknown(Reply),
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

/// The first characters of an untrusted text, on one line.
pub fn excerpt(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out.trim().to_owned()
}

/// Classifies an HTTP answer. Pure, so every row of the code table is unit-tested.
pub fn classify(status: u16, body: &[u8], retry_after: Option<Duration>) -> Answer {
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
            reply.error = "response is not JSON".into();
            reply.msg = excerpt(&text);
            None
        }
    };
    let http_ok = (200..300).contains(&status);
    // A 2xx whose body says otherwise is judged by the body; an HTTP error by its status.
    let effective = if http_ok {
        match code {
            Some(c) => c,
            None => {
                // Wolkvox said 2xx but not what it did: the message may have been
                // accepted, so it must not be sent again unless the user asks.
                if reply.error.is_empty() {
                    reply.error = "response has no usable code".into();
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
        // "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS" and undocumented 403s (maintenance).
        403 | 429 | 500..=599 => Answer::Transient { reply, retry_after },
        400 if upper.contains("DOES NOT EXIST") => Answer::ApiNotFound(reply),
        404 if !http_ok => Answer::ApiNotFound(reply),
        _ => Answer::Refused(reply),
    }
}

/// `Retry-After` in seconds (the HTTP-date form is rare for APIs and is ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The API name (`api=` value) for a message kind.
pub fn api_name(message: &Message) -> &'static str {
    match message {
        Message::Free { .. } => "send_message_official",
        Message::Template { .. } => "send_template_official",
    }
}

/// The JSON body for a job; every value is a string, as the API documents.
pub fn request_body(job: &Job) -> serde_json::Value {
    match &job.message {
        Message::Free { text } => serde_json::json!({
            "connector_id": job.connector_id,
            "telephone": job.telephone,
            "message": text,
        }),
        Message::Template {
            name,
            vars,
            customer_id,
            url_attach,
        } => serde_json::json!({
            "connector_id": job.connector_id,
            "telephone": job.telephone,
            "template_name": name,
            "template_vars": vars,
            "customer_id": customer_id,
            "url_attach": url_attach,
        }),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the HTTP client: {0}")]
pub struct ClientError(String);

/// One HTTP client for the whole run, so connections are kept alive.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    origin: String,
}

impl Client {
    pub fn new(
        origin: &str,
        timeout: Duration,
        connections_per_host: usize,
    ) -> Result<Self, ClientError> {
        // rustls needs a process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(connections_per_host.max(2))
            .tcp_nodelay(true)
            .user_agent(concat!("wolkvox-dispatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError(e.to_string()))?;
        Ok(Self {
            http,
            origin: origin.trim_end_matches('/').to_owned(),
        })
    }

    pub fn url_for(&self, api: &str) -> String {
        format!("{}/api/v2/whatsapp.php?api={api}", self.origin)
    }

    /// Sends one job with one token and classifies the answer. Never fails: every
    /// problem is an `Answer`.
    pub async fn send(&self, token: &Token, job: &Job) -> Answer {
        let mut header = match HeaderValue::from_str(token.expose()) {
            Ok(h) => h,
            Err(_) => {
                // Checked when tokens are read; kept as an answer rather than a panic.
                return Answer::TokenRejected(
                    TokenProblem::Invalid,
                    Reply {
                        error: "token cannot be sent as an HTTP header".into(),
                        ..Reply::default()
                    },
                );
            }
        };
        header.set_sensitive(true);
        let request = self
            .http
            .post(self.url_for(api_name(&job.message)))
            .header("wolkvox-token", header)
            .header(CONTENT_TYPE, "application/json")
            .body(request_body(job).to_string());
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_error(&e),
        };
        let status = response.status().as_u16();
        let after = retry_after(response.headers());
        let mut body = Vec::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    let room = MAX_BODY_BYTES - body.len();
                    body.extend_from_slice(&chunk[..chunk.len().min(room)]);
                    if body.len() >= MAX_BODY_BYTES {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) if (200..300).contains(&status) => {
                    // Accepted or not, we cannot tell: the message may be delivered.
                    return Answer::Unknown(Reply {
                        http_status: Some(status),
                        code: None,
                        error: "connection lost while reading the answer".into(),
                        msg: excerpt(&error_chain(&e)),
                    });
                }
                // An error status was already received: judge by it.
                Err(_) => break,
            }
        }
        classify(status, &body, after)
    }
}

/// A request that got no complete answer.
fn transport_error(e: &reqwest::Error) -> Answer {
    let reply = |error: &str| Reply {
        http_status: None,
        code: None,
        error: error.to_owned(),
        msg: excerpt(&error_chain(e)),
    };
    if e.is_connect() {
        // The connection was never established: nothing was written.
        Answer::Transient {
            reply: reply("connection failed"),
            retry_after: None,
        }
    } else if e.is_timeout() {
        Answer::Unknown(reply("timeout"))
    } else {
        Answer::Unknown(reply("connection lost"))
    }
}

/// The error and its causes on one line.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert!(matches!(
            classify(502, b"Bad gateway", None),
            Answer::Transient { .. }
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

    #[test]
    fn request_bodies_are_all_strings() {
        let job = Job {
            row: 1,
            telephone: "573001234567".into(),
            connector_id: "1".into(),
            message: Message::Free {
                text: "Hola \"Ana\"\n👋".into(),
            },
            key: String::new(),
        };
        let body = request_body(&job);
        assert_eq!(body["telephone"], "573001234567");
        assert_eq!(body["connector_id"], "1");
        assert_eq!(body["message"], "Hola \"Ana\"\n👋");
        assert_eq!(api_name(&job.message), "send_message_official");
    }

    #[test]
    fn template_bodies_carry_every_template_field_as_strings() {
        let job = Job {
            row: 1,
            telephone: "573001234567".into(),
            connector_id: "7".into(),
            message: Message::Template {
                name: "cita_recordatorio".into(),
                vars: "Ana;martes;10:00".into(),
                customer_id: String::new(),
                url_attach: "https://example.com/a.jpg".into(),
            },
            key: String::new(),
        };
        assert_eq!(
            request_body(&job),
            serde_json::json!({
                "connector_id": "7",
                "telephone": "573001234567",
                "template_name": "cita_recordatorio",
                "template_vars": "Ana;martes;10:00",
                "customer_id": "",
                "url_attach": "https://example.com/a.jpg",
            })
        );
        assert_eq!(api_name(&job.message), "send_template_official");
    }
}
