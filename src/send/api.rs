/*!
The Wolkvox client: builds each request, sends it, and classifies what came
back into an `Answer` the dispatcher can act on without knowing HTTP.

Classification follows the API's response-code table: the body's `code` (an
integer or a string of digits) and `msg` decide, since one HTTP status (403)
covers several cases. The one question that matters most is "could this
message have been delivered?". Only answers that prove the message was not
taken are `Transient` (safe to retry): a connection that failed before the
request was written, HTTP 429, HTTP 503, Wolkvox's "simultaneous requests"
refusal and an unrecognised 403 (maintenance). Everything that may hide a
delivery is `Unknown` and never sent again without the user asking: a
timeout, a connection lost after the request was written, a 2xx without a
readable code, any other 5xx (500, 502, 504: a script or a gateway may have
handed the message on before failing) and any answer whose body says 2xx
while its HTTP status does not. A redirect means the configured URL is wrong:
the run stops (`Redirected`). Answers are untrusted: bodies are read up to
64 KiB and anything unexpected becomes a short excerpt.
*/

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};
use serde::Deserialize;

use crate::send::token::Token;
use crate::tr;
use crate::validate::{Job, Message};

/// Bodies longer than this are cut: a real answer is a few hundred bytes.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// How much of an unexpected body goes into the results file.
const EXCERPT_CHARS: usize = 200;

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

/// What would fix a refusal that sending again cannot, judged from its `msg`.
pub(crate) fn fix_for(msg: &str) -> Option<String> {
    let upper = msg.to_uppercase();
    if upper.contains("24") && (upper.contains("WINDOW") || upper.contains("HOUR")) {
        Some(tr!("fix-24-hour-window"))
    } else if upper.contains("PARAMETERS ARE REQUIRED") {
        Some(tr!("fix-parameter-missing"))
    } else if upper.contains("CONNECTOR") {
        Some(tr!("fix-connector"))
    } else {
        None
    }
}

/// The first characters of an untrusted text, on one line.
pub(crate) fn excerpt(text: &str) -> String {
    let one_line: String = crate::text::excerpt(text, EXCERPT_CHARS)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.trim().to_owned()
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

/// `Retry-After`: whole seconds or an HTTP date (RFC 9110). A value that is neither
/// (negative, fractional, garbage) is not honoured, and said at WARN, with the usual
/// backoff in its place.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let raw = headers.get(RETRY_AFTER)?;
    let parsed = raw
        .to_str()
        .ok()
        .and_then(|v| parse_retry_after(v, jiff::Timestamp::now()));
    if parsed.is_none() {
        tracing::warn!(
            "{}",
            tr!(
                "api-bad-retry-after",
                value = format!("{:?}", excerpt(&String::from_utf8_lossy(raw.as_bytes())))
            )
        );
    }
    parsed
}

/// Reads a `Retry-After` value at `now`: seconds, or a date (a past date is 0 s).
pub(crate) fn parse_retry_after(value: &str, now: jiff::Timestamp) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = jiff::fmt::rfc2822::DateTimeParser::new()
        .parse_timestamp(value)
        .ok()?;
    Some(Duration::try_from(now.duration_until(at)).unwrap_or(Duration::ZERO))
}

/// The API name (`api=` value) for a message kind.
pub(crate) fn api_name(message: &Message) -> &'static str {
    match message {
        Message::Free { .. } => "send_message_official",
        Message::Template { .. } => "send_template_official",
    }
}

/// The JSON body for a job; every value is a string, as the API documents.
pub(crate) fn request_body(job: &Job) -> serde_json::Value {
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
pub enum ClientError {
    #[error("{}", tr!("api-client", error = .0))]
    Build(String),
    #[error(transparent)]
    Proxy(#[from] crate::send::proxy::ProxyError),
}

/// How long a kept-alive connection may sit idle and still carry a request, unless the
/// config says otherwise (`api.idle_timeout`): well under the 1 s and more after which
/// front servers close idle connections, so a request is never written onto a
/// connection the server is closing at that moment.
pub(crate) const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_millis(500);

/// One HTTP client for the whole run, so connections are kept alive.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    http: Arc<RwLock<reqwest::Client>>,
    origin: String,
    timeout: Duration,
    connections: usize,
    /// The idle time after which a connection is not used again, in milliseconds:
    /// `api.idle_timeout`, or less when a server announces `Keep-Alive: timeout=N`.
    idle_ms: Arc<AtomicU64>,
}

impl Client {
    /// A client that drops connections idle for `DEFAULT_IDLE_TIMEOUT`.
    pub(crate) fn new(
        origin: &str,
        timeout: Duration,
        connections_per_host: usize,
    ) -> Result<Self, ClientError> {
        Self::with_idle_timeout(origin, timeout, connections_per_host, DEFAULT_IDLE_TIMEOUT)
    }

    /// A client that never writes a request on a connection idle longer than `idle`.
    pub(crate) fn with_idle_timeout(
        origin: &str,
        timeout: Duration,
        connections_per_host: usize,
        idle: Duration,
    ) -> Result<Self, ClientError> {
        // rustls needs a process-wide crypto provider; a second install is harmless.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = build_http(timeout, connections_per_host, idle)?;
        Ok(Self {
            http: Arc::new(RwLock::new(http)),
            origin: origin.trim_end_matches('/').to_owned(),
            timeout,
            connections: connections_per_host,
            idle_ms: Arc::new(AtomicU64::new(
                u64::try_from(idle.as_millis()).unwrap_or(u64::MAX),
            )),
        })
    }

    /// The reqwest client of the moment (cheap: an `Arc` inside).
    fn http(&self) -> reqwest::Client {
        self.http
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Honours a server's `Keep-Alive: timeout=N`: when half of it is less than the idle
    /// time in use, later requests go through a client that drops connections idle that
    /// long (requests in flight finish on the old one). Half, because the server counts
    /// from when it wrote its answer, and a request takes a while to reach it.
    fn heed_keep_alive(&self, headers: &HeaderMap) {
        let Some(secs) = headers
            .get("keep-alive")
            .and_then(|v| v.to_str().ok())
            .and_then(keep_alive_timeout)
        else {
            return;
        };
        let wanted = secs.saturating_mul(1000) / 2;
        let current = self.idle_ms.load(Ordering::Acquire);
        if wanted >= current
            || self
                .idle_ms
                .compare_exchange(current, wanted, Ordering::AcqRel, Ordering::Acquire)
                .is_err()
        {
            return;
        }
        match build_http(
            self.timeout,
            self.connections,
            Duration::from_millis(wanted),
        ) {
            Ok(http) => {
                tracing::debug!(
                    keep_alive = secs,
                    "the server keeps idle connections {secs} s: connections idle {wanted} ms are not used again"
                );
                *self.http.write().unwrap_or_else(PoisonError::into_inner) = http;
            }
            Err(e) => tracing::debug!("keep-alive: {e}"),
        }
    }

    /// The origin requests go to (`https://wv0042.wolkvox.com`).
    pub(crate) fn origin(&self) -> &str {
        &self.origin
    }

    /// How long a send may take before its row is recorded `unknown`.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    pub(crate) fn url_for(&self, api: &str) -> String {
        format!("{}/api/v2/whatsapp.php?api={api}", self.origin)
    }

    /// The URL of the token information API.
    pub(crate) fn token_info_url(&self) -> String {
        format!("{}/api/v2/information.php?api=token_info", self.origin)
    }

    /// Asks Wolkvox how much of today's quota `token` has left. Never fails: a call
    /// that gets no usable answer is `TokenInfo::Unknown`, with why.
    pub(crate) async fn token_info(&self, token: &Token) -> TokenInfo {
        match self
            .preflight_get(self.token_info_url(), token, MAX_BODY_BYTES)
            .await
        {
            Ok((status, body)) => parse_token_info(status, &body),
            Err(GetFailed {
                why,
                setting: Some(problem),
            }) => TokenInfo::Setting(problem, why),
            Err(GetFailed { why, .. }) => TokenInfo::Unknown(why),
        }
    }

    /// The URL of the template list of `connector` (an id checked as `[A-Za-z0-9_-]`).
    pub(crate) fn list_templates_url(&self, connector: &str) -> String {
        format!(
            "{}/api/v2/whatsapp.php?api=list_templates&connector_id={connector}",
            self.origin
        )
    }

    /// Asks Wolkvox for the templates of `connector`: the HTTP status and body, or why
    /// there is none.
    pub(crate) async fn list_templates(
        &self,
        token: &Token,
        connector: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        self.preflight_get(self.list_templates_url(connector), token, MAX_LISTING_BYTES)
            .await
            .map_err(|f| f.why)
    }

    /// Asks Wolkvox's report of outbound messages (`cdr_3`) for `date_ini..date_end`
    /// (`YYYYmmddHHiiss`, the operation's local time): the HTTP status and body.
    pub(crate) async fn cdr_3(
        &self,
        token: &Token,
        date_ini: &str,
        date_end: &str,
    ) -> Result<(u16, Vec<u8>), String> {
        let url = format!(
            "{}/api/v2/reports_manager.php?api=cdr_3&date_ini={date_ini}&date_end={date_end}",
            self.origin
        );
        self.get(url, token, MAX_REPORT_BYTES, self.timeout)
            .await
            .map_err(|f| f.why)
    }

    /// A GET made before sending (`token_info`, `list_templates`): the status and the
    /// body (at most `limit` bytes), or why there is none.
    async fn preflight_get(
        &self,
        url: String,
        token: &Token,
        limit: usize,
    ) -> Result<(u16, Vec<u8>), GetFailed> {
        // A pre-flight check should not hold a campaign for the full request timeout.
        self.get(url, token, limit, self.timeout.min(PREFLIGHT_TIMEOUT))
            .await
    }

    /// A GET with the token: the status and the body (at most `limit` bytes), or why
    /// there is none.
    async fn get(
        &self,
        url: String,
        token: &Token,
        limit: usize,
        timeout: std::time::Duration,
    ) -> Result<(u16, Vec<u8>), GetFailed> {
        let header = token_header(token).ok_or_else(|| GetFailed {
            why: tr!("api-token-not-a-header"),
            setting: None,
        })?;
        let request = self
            .http()
            .get(url)
            .header("wolkvox-token", header)
            .timeout(timeout);
        let mut response = request.send().await.map_err(|e| {
            let setting = setting_problem(&e);
            let chain = error_chain(&e);
            GetFailed {
                why: excerpt(
                    if setting.is_some() {
                        setting_detail(&chain)
                    } else {
                        chain
                    }
                    .as_str(),
                ),
                setting,
            }
        })?;
        let status = response.status().as_u16();
        self.heed_keep_alive(response.headers());
        let mut body = Vec::new();
        read_capped(&mut response, &mut body, limit)
            .await
            .map_err(|e| GetFailed {
                why: excerpt(&error_chain(&e)),
                setting: None,
            })?;
        Ok((status, body))
    }

    /// Sends one job with one token and classifies the answer. Never fails: every
    /// problem is an `Answer`.
    pub(crate) async fn send(&self, token: &Token, job: &Job) -> Answer {
        let header = match token_header(token) {
            Some(h) => h,
            None => {
                // Checked when tokens are read; kept as an answer rather than a panic.
                return Answer::TokenRejected(
                    TokenProblem::Invalid,
                    Reply {
                        error: crate::tr_en!("msg-answer-token-header"),
                        ..Reply::default()
                    },
                );
            }
        };
        let request = self
            .http()
            .post(self.url_for(api_name(&job.message)))
            .header("wolkvox-token", header)
            .header(CONTENT_TYPE, "application/json")
            .body(request_body(job).to_string());
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return transport_error(&e),
        };
        let status = response.status().as_u16();
        self.heed_keep_alive(response.headers());
        let after = retry_after(response.headers());
        let location = response.headers().get(reqwest::header::LOCATION).map(|l| {
            excerpt(&crate::text::redact_url(&String::from_utf8_lossy(
                l.as_bytes(),
            )))
        });
        let mut body = Vec::new();
        match read_capped(&mut response, &mut body, MAX_BODY_BYTES).await {
            Ok(()) => {}
            Err(e) if (200..300).contains(&status) => {
                // Accepted or not, we cannot tell: the message may be delivered.
                return Answer::Unknown(Reply {
                    http_status: Some(status),
                    code: None,
                    error: crate::tr_en!("msg-answer-connection-lost"),
                    msg: excerpt(&error_chain(&e)),
                });
            }
            // An error status was already received: judge by it.
            Err(_) => {}
        }
        match classify(status, &body, after) {
            Answer::Redirected(mut reply) => {
                reply.msg = match location {
                    Some(to) => format!("redirected to {to}"),
                    None => "redirected (no Location given)".into(),
                };
                Answer::Redirected(reply)
            }
            other => other,
        }
    }
}

/// The reqwest client: no redirects, at most `connections` idle connections kept, none
/// used again after `idle`.
fn build_http(
    timeout: Duration,
    connections: usize,
    idle: Duration,
) -> Result<reqwest::Client, ClientError> {
    // The client would ignore a proxy variable it cannot read and connect directly.
    crate::send::proxy::check_env()?;
    // No client-wide timeout: the dispatcher times sends itself, so that a request it
    // stops waiting for keeps its token's slot until the server is done with it (see
    // `dispatch`). `token_info` sets its own.
    reqwest::Client::builder()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(connections.max(2))
        .pool_idle_timeout(idle)
        .tcp_nodelay(true)
        .user_agent(concat!("wolkvox-dispatch/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ClientError::Build(e.to_string()))
}

/// The `timeout=N` (whole seconds) of a `Keep-Alive` header.
pub(crate) fn keep_alive_timeout(value: &str) -> Option<u64> {
    value.split(',').find_map(|part| {
        let (name, n) = part.split_once('=')?;
        (name.trim().eq_ignore_ascii_case("timeout"))
            .then(|| n.trim().trim_matches('"').parse().ok())?
    })
}

/// The `wolkvox-token` header, marked sensitive so it is never logged.
fn token_header(token: &Token) -> Option<HeaderValue> {
    // Checked when tokens are read; `None` is kept as an answer rather than a panic.
    let mut header = HeaderValue::from_str(token.expose()).ok()?;
    header.set_sensitive(true);
    Some(header)
}

/// Reads the body into `body`, at most `limit` bytes of it.
async fn read_capped(
    response: &mut reqwest::Response,
    body: &mut Vec<u8>,
    limit: usize,
) -> Result<(), reqwest::Error> {
    while let Some(chunk) = response.chunk().await? {
        let room = limit - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() >= limit {
            break;
        }
    }
    Ok(())
}

/// The longest a pre-flight call (`token_info`, `list_templates`) may take.
const PREFLIGHT_TIMEOUT: Duration = Duration::from_secs(15);
/// A connector's template list can be long (every component's text): 4 MiB is far
/// beyond any real one and still bounded.
const MAX_LISTING_BYTES: usize = 4 * 1024 * 1024;
/// Wolkvox caps a report at 60,000 records and 256 MB an answer.
const MAX_REPORT_BYTES: usize = 256 * 1024 * 1024;

/// Today's quota of one token, as `token_info` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenQuota {
    /// Calls allowed a day (licences x 1000).
    pub(crate) limit: u64,
    /// Calls made today.
    pub(crate) used_today: u64,
}

impl TokenQuota {
    /// Calls left today. The `token_info` call itself costs one; whether the reported
    /// use already counts it is not documented, so it is taken off again: at worst one
    /// call of the day is left unused.
    pub(crate) fn remaining(&self) -> u64 {
        self.limit.saturating_sub(self.used_today).saturating_sub(1)
    }
}

/// What `token_info` said about a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenInfo {
    Quota(TokenQuota),
    /// The token cannot be used today: invalid, missing, or its quota already spent.
    Rejected(TokenProblem, Reply),
    /// No usable answer (the call failed, or the fields are not in it): why.
    Unknown(String),
    /// The call failed in a way no request can get past (see `SettingProblem`): why.
    Setting(SettingProblem, String),
}

/// A GET that got no answer: why, and the setting to fix if it is one.
#[derive(Debug)]
pub(crate) struct GetFailed {
    why: String,
    setting: Option<SettingProblem>,
}

/// Reads a `token_info` answer. Pure, so every shape is unit-tested. The nesting of
/// `token_limit` and `token_use_today` is not documented: they are looked up at any
/// depth, as numbers or strings of digits.
pub(crate) fn parse_token_info(status: u16, body: &[u8]) -> TokenInfo {
    match classify(status, body, None) {
        Answer::TokenRejected(problem, reply) => return TokenInfo::Rejected(problem, reply),
        Answer::Setting(problem, reply) => {
            return TokenInfo::Setting(problem, format!("HTTP {status} {}", reply.msg));
        }
        _ => {}
    }
    let parsed: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    if !(200..300).contains(&status) {
        let said = parsed
            .as_ref()
            .and_then(|v| v.get("msg"))
            .map(|m| excerpt(&m.to_string()))
            .unwrap_or_else(|| excerpt(&String::from_utf8_lossy(body)));
        return TokenInfo::Unknown(format!("HTTP {status} {said}").trim().to_owned());
    }
    let Some(value) = parsed else {
        return TokenInfo::Unknown(tr!("api-answer-not-json"));
    };
    match (
        find_count(&value, "token_limit"),
        find_count(&value, "token_use_today"),
    ) {
        (Some(limit), Some(used_today)) => TokenInfo::Quota(TokenQuota { limit, used_today }),
        _ => TokenInfo::Unknown(tr!("api-no-token-limit")),
    }
}

/// The first array at any depth (an array before what it holds) that `accept`s: the
/// answers' lists (templates, report records) are looked up wherever they are, since
/// Wolkvox does not document their nesting.
pub(crate) fn find_array<'a>(
    value: &'a serde_json::Value,
    accept: &impl Fn(&[serde_json::Value]) -> bool,
) -> Option<&'a Vec<serde_json::Value>> {
    use serde_json::Value;
    match value {
        Value::Array(items) if accept(items) => Some(items),
        Value::Array(items) => items.iter().find_map(|v| find_array(v, accept)),
        Value::Object(map) => map.values().find_map(|v| find_array(v, accept)),
        _ => None,
    }
}

/// The first `key` at any depth whose value is a whole number (or a string of digits).
fn find_count(value: &serde_json::Value, key: &str) -> Option<u64> {
    use serde_json::Value;
    let count = |v: &Value| match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(count)
            .or_else(|| map.values().find_map(|v| find_count(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_count(v, key)),
        _ => None,
    }
}

/// The setting a failed connection points at, if it is one: the same for every request.
fn setting_problem(e: &reqwest::Error) -> Option<SettingProblem> {
    if !e.is_connect() {
        return None;
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        // An `io::Error` hides what it wraps from `source()`: look inside it too.
        let inner = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .map(|inner| inner as &(dyn std::error::Error + 'static));
        for candidate in [Some(err), inner].into_iter().flatten() {
            if let Some(rustls::Error::InvalidCertificate(why)) =
                candidate.downcast_ref::<rustls::Error>()
            {
                return Some(match why {
                    rustls::CertificateError::NotValidForName
                    | rustls::CertificateError::NotValidForNameContext { .. } => {
                        SettingProblem::CertificateName
                    }
                    _ => SettingProblem::Certificate,
                });
            }
        }
        source = err.source();
    }
    // Boxed errors on the way hide the types (a `Box<dyn Error>` is not what it holds),
    // and the proxy tunnel's and the resolver's errors are not public: read the text.
    let chain = error_chain(e);
    if chain.contains("invalid peer certificate") {
        if chain.contains("not valid for name") || chain.contains("NotValidForName") {
            Some(SettingProblem::CertificateName)
        } else {
            Some(SettingProblem::Certificate)
        }
    } else if chain.contains("proxy authorization required") {
        Some(SettingProblem::ProxyAuth)
    } else if chain.contains("tunnel error: unsuccessful") {
        // Any answer to CONNECT but 200 and 407: the request never left the proxy.
        Some(SettingProblem::ProxyRefused)
    } else if chain.contains("tunnel error: failed to create underlying connection") {
        Some(SettingProblem::ProxyUnreachable)
    } else if chain.contains("dns error")
        && !chain.contains("Temporary failure")
        && !chain.contains("try again")
    {
        Some(SettingProblem::UnknownHost)
    } else {
        None
    }
}

/// The part of an error chain that says what failed ("invalid peer certificate:
/// UnknownIssuer"), without the URL and the layers before it.
fn setting_detail(chain: &str) -> String {
    let chain = chain.trim();
    const CAUSES: [&str; 4] = [
        "invalid peer certificate",
        "tunnel error",
        "dns error",
        "certificate",
    ];
    CAUSES
        .iter()
        .find_map(|cause| chain.find(cause).map(|at| chain[at..].to_owned()))
        .unwrap_or_else(|| chain.to_owned())
}

/// A request that got no complete answer.
fn transport_error(e: &reqwest::Error) -> Answer {
    let reply = |error: &str| Reply {
        http_status: None,
        code: None,
        error: error.to_owned(),
        msg: excerpt(&error_chain(e)),
    };
    if let Some(problem) = setting_problem(e) {
        let mut reply = reply("connection failed");
        reply.msg = excerpt(&setting_detail(&error_chain(e)));
        return Answer::Setting(problem, reply);
    }
    if e.is_connect() {
        // The connection was never established: nothing was written.
        Answer::Transient {
            reply: reply("connection failed"),
            retry_after: None,
        }
    } else if e.is_timeout() {
        Answer::Unknown(reply(TIMEOUT_ERROR))
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
    fn retry_after_reads_seconds_and_http_dates() {
        let now: jiff::Timestamp = "2026-11-30T12:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Mon, 30 Nov 2026 12:00:42 GMT", now),
            Some(Duration::from_secs(42))
        );
        // A date in the past: retry now.
        assert_eq!(
            parse_retry_after("Mon, 30 Nov 2026 11:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(
            parse_retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
        for odd in [
            "-5",
            "1.5",
            "",
            "soon",
            "+3",
            "Mon, 99 Nov 2026 12:00:42 GMT",
        ] {
            assert_eq!(parse_retry_after(odd, now), None, "{odd:?}");
        }
    }

    #[test]
    fn keep_alive_timeouts_are_read() {
        assert_eq!(keep_alive_timeout("timeout=5, max=100"), Some(5));
        assert_eq!(keep_alive_timeout("max=100, Timeout = \"1\""), Some(1));
        assert_eq!(keep_alive_timeout("max=100"), None);
        assert_eq!(keep_alive_timeout("timeout=soon"), None);
        assert_eq!(keep_alive_timeout(""), None);
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
    fn token_info_fields_are_found_wherever_they_are() {
        let quota = |limit, used_today| TokenInfo::Quota(TokenQuota { limit, used_today });
        let shapes: [(&str, TokenInfo); 6] = [
            // As the fake answers: nested under data.
            (
                r#"{"code":200,"error":null,"msg":"ok","data":{"token_limit":1000,"token_use_today":40,"all_token_today":90}}"#,
                quota(1000, 40),
            ),
            // Flat, numbers as strings.
            (
                r#"{"token_limit":"3000","token_use_today":" 7 "}"#,
                quota(3000, 7),
            ),
            // In an array, floats that are whole numbers, a code given as a string.
            (
                r#"{"code":"200","data":[{"token":{"token_limit":2000.0,"token_use_today":0}}]}"#,
                quota(2000, 0),
            ),
            // The fields are missing.
            (
                r#"{"code":200,"data":{"limit":1000}}"#,
                TokenInfo::Unknown(
                    "the answer has no token_limit and token_use_today (as whole numbers)".into(),
                ),
            ),
            // Not JSON.
            (
                "<html>maintenance</html>",
                TokenInfo::Unknown("the answer is not JSON".into()),
            ),
            // Not a number.
            (
                r#"{"token_limit":"many","token_use_today":1}"#,
                TokenInfo::Unknown(
                    "the answer has no token_limit and token_use_today (as whole numbers)".into(),
                ),
            ),
        ];
        for (body, want) in shapes {
            assert_eq!(parse_token_info(200, body.as_bytes()), want, "{body}");
        }
    }

    #[test]
    fn token_info_refusals_and_failures() {
        assert!(matches!(
            parse_token_info(403, &body("403", "\"FORBIDDEN\"", "PLEASE VALIDATE TOKEN")),
            TokenInfo::Rejected(TokenProblem::Invalid, _)
        ));
        assert!(matches!(
            parse_token_info(200, &body("403", "\"FORBIDDEN\"", "TOKEN LIMIT EXCEEDED")),
            TokenInfo::Rejected(TokenProblem::QuotaSpent, _)
        ));
        let TokenInfo::Unknown(why) = parse_token_info(503, b"busy") else {
            panic!()
        };
        assert_eq!(why, "HTTP 503 busy");
    }

    #[test]
    fn remaining_takes_off_the_check_itself() {
        let q = TokenQuota {
            limit: 1000,
            used_today: 40,
        };
        assert_eq!(q.remaining(), 959);
        let spent = TokenQuota {
            limit: 1000,
            used_today: 1000,
        };
        assert_eq!(spent.remaining(), 0);
        let over = TokenQuota {
            limit: 10,
            used_today: 12,
        };
        assert_eq!(over.remaining(), 0);
    }

    #[test]
    fn request_bodies_are_all_strings() {
        let job = Job {
            row: 1,
            shown: 2,
            telephone: "573001234567".into(),
            connector_id: "1".into(),
            message: Message::Free {
                text: "Hola \"Ana\"\n👋".into(),
            },
            key: String::new(),
            legacy_key: None,
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
            shown: 2,
            telephone: "573001234567".into(),
            connector_id: "7".into(),
            message: Message::Template {
                name: "cita_recordatorio".into(),
                vars: "Ana;martes;10:00".into(),
                customer_id: String::new(),
                url_attach: "https://example.com/a.jpg".into(),
            },
            key: String::new(),
            legacy_key: None,
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
