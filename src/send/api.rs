/*!
The Wolkvox client: builds each request, sends it, and turns what came back
into an `Answer` the dispatcher can act on without knowing HTTP.

What a server's answer means is `wolkvox::classify` (the response-code table);
this module adds what only the transport knows. Only answers that prove the
message was not taken are `Transient` (safe to retry), among them a connection
that failed before the request was written. Everything that may hide a
delivery is `Unknown` and never sent again without the user asking: a timeout,
a connection lost after the request was written. A redirect means the
configured URL is wrong: the run stops (`Redirected`). Answers are untrusted:
bodies are read up to 64 KiB and anything unexpected becomes a short excerpt.
*/

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderValue, RETRY_AFTER};

use crate::send::token::Token;
use crate::tr;
use crate::validate::{Job, Message};
use crate::wolkvox::{
    Answer, AnswerError, Reply, SettingProblem, TokenInfo, TokenProblem, classify, excerpt,
    parse_token_info,
};

/// Bodies longer than this are cut: a real answer is a few hundred bytes.
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;

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
                    Reply::from(AnswerError::TokenHeader),
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
                    msg: excerpt(&error_chain(&e)),
                    ..Reply::from(AnswerError::LostWhileReading)
                });
            }
            // An error status was already received: judge by it.
            Err(_) => {}
        }
        match classify(status, &body, after) {
            Answer::Redirected(mut reply) => {
                reply.say(match location {
                    Some(to) => crate::said!("msg-answer-redirected-to", location = to),
                    None => crate::said!("msg-answer-redirected-nowhere"),
                });
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

/// A GET that got no answer: why, and the setting to fix if it is one.
#[derive(Debug)]
pub(crate) struct GetFailed {
    why: String,
    setting: Option<SettingProblem>,
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
    let reply = |problem: AnswerError| Reply {
        msg: excerpt(&error_chain(e)),
        ..Reply::from(problem)
    };
    if let Some(problem) = setting_problem(e) {
        let mut reply = reply(AnswerError::ConnectFailed);
        reply.msg = excerpt(&setting_detail(&error_chain(e)));
        return Answer::Setting(problem, reply);
    }
    if e.is_connect() {
        // The connection was never established: nothing was written.
        Answer::Transient {
            reply: reply(AnswerError::ConnectFailed),
            retry_after: None,
        }
    } else if e.is_timeout() {
        Answer::Unknown(reply(AnswerError::Timeout))
    } else {
        Answer::Unknown(reply(AnswerError::ConnectionLost))
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
