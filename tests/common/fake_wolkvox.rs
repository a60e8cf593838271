//! A fake Wolkvox WhatsApp endpoint for integration tests and benches.
//!
//! Self-contained on purpose: it uses only `std`, `tokio`, `axum` and `serde_json`, so a
//! bench can pull it in with
//! `#[path = "../tests/common/fake_wolkvox.rs"] mod fake_wolkvox;`.
//!
//! The server runs on `127.0.0.1:0` in a background std thread with its own multi-thread
//! tokio runtime, so blocking `#[test]` functions (which run the binary through
//! `assert_cmd`) can use it as well as async tests. It answers like the public Wolkvox
//! API (see `shared/wolkvox-api.md`):
//!
//! - `POST /api/v2/whatsapp.php?api=send_message_official` (connector_id, telephone, message)
//! - `POST /api/v2/whatsapp.php?api=send_template_official` (connector_id, telephone,
//!   template_name, template_vars, customer_id, url_attach)
//! - `GET  /api/v2/information.php?api=token_info`
//!
//! It counts requests in flight per token (more than the limit, 2 by default, is recorded as
//! a violation and answered with the real API's 403), logs every request in arrival order,
//! and lets a test script failures through a hook ([`Behavior::hook`]).
#![allow(dead_code)]

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::{Shutdown, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::connect_info::Connected;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::serve::{IncomingStream, Listener};
use serde_json::{Value, json};

/// Path of the WhatsApp APIs.
pub const WHATSAPP_PATH: &str = "/api/v2/whatsapp.php";
/// Path of the token information API.
pub const INFORMATION_PATH: &str = "/api/v2/information.php";
/// `api=` value of the free-form message API.
pub const API_SEND_MESSAGE: &str = "send_message_official";
/// `api=` value of the HSM template API.
pub const API_SEND_TEMPLATE: &str = "send_template_official";
/// `api=` value of the token information API.
pub const API_TOKEN_INFO: &str = "token_info";
/// `GET reports_manager.php?api=cdr_3&date_ini=..&date_end=..`: the messages delivered
/// in that span (dates `YYYYmmddHHiiss`, UTC), shaped as `Behavior::cdr_nesting` says.
pub const REPORTS_PATH: &str = "/api/v2/reports_manager.php";
pub const API_CDR_3: &str = "cdr_3";
/// `GET whatsapp.php?api=list_templates&connector_id=..`: answered only when the
/// behaviour has templates (otherwise "the API does not exist", as for any unknown api).
pub const API_LIST_TEMPLATES: &str = "list_templates";

pub const MSG_SENT: &str = "Message has been sent successfully";
pub const MSG_ENTER_TOKEN: &str = "PLEASE ENTER THE WOLKVOX-TOKEN";
pub const MSG_VALIDATE_TOKEN: &str = "PLEASE VALIDATE TOKEN";
pub const MSG_TOKEN_LIMIT: &str = "TOKEN LIMIT EXCEEDED";
pub const MSG_SIMULTANEOUS: &str = "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS PER TOKEN (2)";
pub const MSG_API_NOT_EXIST: &str = "THE API YOU WANT TO CONSULT DOES NOT EXIST";
pub const MSG_PARAMETERS_REQUIRED: &str = "SOME PARAMETERS ARE REQUIRED";

/// Daily limit reported by `token_info` for a token without a configured quota.
pub const DEFAULT_TOKEN_LIMIT: u64 = 1000;

/// A scripted-failure hook: `None` means "behave normally".
pub type Hook = Arc<dyn Fn(&RequestInfo) -> Option<Reply> + Send + Sync>;

/// What the hook sees of a request.
#[derive(Debug, Clone)]
pub struct RequestInfo {
    /// 0-based index of the request among all requests the fake received.
    pub index: usize,
    /// 0-based index of this request among the requests for the same `telephone`
    /// (0 for requests without a telephone).
    pub attempt: usize,
    /// The `wolkvox-token` header, if any.
    pub token: Option<String>,
    /// The `api=` query value ("" when absent).
    pub api: String,
    pub method: String,
    pub path: String,
    /// `telephone` from the body (a JSON number is turned into its digits).
    pub telephone: Option<String>,
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
}

/// A scripted answer.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A JSON answer with the given HTTP status.
    Json { status: u16, body: Value },
    /// Any bytes with any content type (HTML error pages, garbage, huge bodies).
    Raw {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// A JSON answer with extra headers (e.g. 429 with `Retry-After`). `Value::Null` as the
    /// body sends an empty body.
    WithHeaders {
        status: u16,
        headers: Vec<(String, String)>,
        body: Value,
    },
    /// Read the whole request, then close the connection without writing any response.
    DropConnection,
    /// Sleep this long, then answer normally (meant to outlast the client's timeout).
    Hang(Duration),
    /// Deliver the message at once (it shows in `cdr_3`), but answer only after this
    /// long: an answer lost to a kill or a timeout.
    DeliverThenHang(Duration),
    /// Deliver the message at once (it shows in `cdr_3`), then close the connection
    /// without an answer: a delivery whose answer was lost on the way back.
    DeliverThenDrop,
}

impl Reply {
    pub fn json(status: u16, body: Value) -> Self {
        Reply::Json { status, body }
    }

    /// `{"code": status, "error": error, "msg": msg}` with the same HTTP status.
    pub fn api_error(status: u16, error: &str, msg: &str) -> Self {
        Reply::Json {
            status,
            body: json!({"code": status, "error": error, "msg": msg}),
        }
    }

    /// The documented success answer: 201 `{"code":201,"error":null,"msg":"Message has been sent successfully"}`.
    pub fn sent() -> Self {
        Reply::Json {
            status: 201,
            body: json!({"code": 201, "error": null, "msg": MSG_SENT}),
        }
    }

    /// Success with `code` as a string, as some Wolkvox APIs do.
    pub fn sent_code_as_string() -> Self {
        Reply::Json {
            status: 201,
            body: json!({"code": "201", "error": null, "msg": MSG_SENT}),
        }
    }

    pub fn validate_token() -> Self {
        Reply::api_error(403, "FORBIDDEN", MSG_VALIDATE_TOKEN)
    }

    pub fn token_limit_exceeded() -> Self {
        Reply::api_error(403, "FORBIDDEN", MSG_TOKEN_LIMIT)
    }

    pub fn simultaneous_limit() -> Self {
        Reply::api_error(403, "FORBIDDEN", MSG_SIMULTANEOUS)
    }

    pub fn api_does_not_exist() -> Self {
        Reply::api_error(400, "BAD REQUEST", MSG_API_NOT_EXIST)
    }

    pub fn parameters_required() -> Self {
        Reply::api_error(400, "BAD REQUEST", MSG_PARAMETERS_REQUIRED)
    }

    /// HTTP 429 with `Retry-After: secs` and a small JSON body.
    pub fn too_many_requests(retry_after_secs: u64) -> Self {
        Reply::WithHeaders {
            status: 429,
            headers: vec![("Retry-After".to_owned(), retry_after_secs.to_string())],
            body: json!({"code": 429, "error": "TOO MANY REQUESTS", "msg": "SLOW DOWN"}),
        }
    }

    /// A non-JSON body, e.g. a proxy's HTML error page.
    pub fn raw(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        Reply::Raw {
            status,
            content_type: content_type.to_owned(),
            body: body.into(),
        }
    }
}

/// How the fake behaves. Build with [`Behavior::ok`] and the builder methods.
#[derive(Clone)]
pub struct Behavior {
    /// Sleep before answering each request.
    pub latency: Duration,
    /// Extra random sleep in `0..=jitter` added to `latency`.
    pub jitter: Duration,
    /// When `Some`, only these tokens are accepted (others get 403 PLEASE VALIDATE TOKEN).
    pub valid_tokens: Option<HashSet<String>>,
    /// Per-token number of calls allowed before 403 TOKEN LIMIT EXCEEDED.
    pub quotas: HashMap<String, u64>,
    /// More requests than this in flight on one token is a violation (the real API: 2).
    pub max_in_flight_per_token: usize,
    /// Scripted answers; consulted after the concurrency check and the latency sleep.
    pub hook: Option<Hook>,
    /// Templates per connector id, as Meta describes them, for `list_templates`. With
    /// none at all, that API "does not exist" (as an account without it would say).
    pub templates: HashMap<String, Vec<Value>>,
    /// How `cdr_3` nests its records: 0 `{"data": [..]}`, 1 `{"data": {"records": [..]}}`,
    /// 2 a bare array.
    pub cdr_nesting: u8,
    /// How long after delivery a message shows up in `cdr_3`.
    pub cdr_delay: Duration,
    /// Close a kept-alive connection once it has been idle this long (no request being
    /// handled), as front servers do (nginx `keepalive_timeout`, Apache `KeepAliveTimeout`).
    pub idle_close: Option<Duration>,
    /// Announce `Keep-Alive: timeout=N` (seconds) on every answer, as Apache does.
    pub keep_alive_header: Option<u64>,
    /// A gateway in front of the API: an answer that takes longer than this is answered
    /// 504 (an HTML page) at this moment, while the backend goes on with the request (its
    /// in-flight count, delivery and log entry follow the backend, not the 504).
    pub gateway_timeout: Option<Duration>,
    /// A server-wide limit on sends (requests started in any 1 s window, every token
    /// together): the requests over it are answered 429 without `Retry-After`, as nginx's
    /// `limit_req` does, and never reach the backend (not delivered).
    pub server_rate: Option<usize>,
    /// The time zone of `cdr_3`'s dates, both those it is asked for and those it lists
    /// (Wolkvox does not document it): UTC unless set.
    pub cdr_zone: jiff::tz::TimeZone,
    /// Changes `cdr_3`'s answer before it is sent (see [`cdr`] for ready-made ones: an
    /// error body, pagination, the 60,000 cap, altered texts and phones, records of an
    /// earlier campaign).
    pub cdr_transform: Option<cdr::Transform>,
}

impl Default for Behavior {
    fn default() -> Self {
        Behavior::ok()
    }
}

impl std::fmt::Debug for Behavior {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behavior")
            .field("latency", &self.latency)
            .field("jitter", &self.jitter)
            .field("valid_tokens", &self.valid_tokens)
            .field("quotas", &self.quotas)
            .field("max_in_flight_per_token", &self.max_in_flight_per_token)
            .field("hook", &self.hook.as_ref().map(|_| "<fn>"))
            .field("templates", &self.templates)
            .field("cdr_nesting", &self.cdr_nesting)
            .field("cdr_delay", &self.cdr_delay)
            .field("idle_close", &self.idle_close)
            .field("keep_alive_header", &self.keep_alive_header)
            .field("gateway_timeout", &self.gateway_timeout)
            .field("server_rate", &self.server_rate)
            .field("cdr_zone", &self.cdr_zone.iana_name())
            .field(
                "cdr_transform",
                &self.cdr_transform.as_ref().map(|_| "<fn>"),
            )
            .finish()
    }
}

impl Behavior {
    /// Every request with a token and the required fields is answered 201, without delay.
    pub fn ok() -> Self {
        Behavior {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            valid_tokens: None,
            quotas: HashMap::new(),
            max_in_flight_per_token: 2,
            hook: None,
            templates: HashMap::new(),
            cdr_nesting: 0,
            cdr_delay: Duration::ZERO,
            idle_close: None,
            keep_alive_header: None,
            gateway_timeout: None,
            server_rate: None,
            cdr_zone: jiff::tz::TimeZone::UTC,
            cdr_transform: None,
        }
    }

    /// `cdr_3`'s dates are in this zone (an IANA name such as "America/Bogota").
    pub fn cdr_zone(mut self, zone: &str) -> Self {
        self.cdr_zone = jiff::tz::TimeZone::get(zone).expect("a known time zone");
        self
    }

    /// `cdr_3`'s answer goes through `f` (see [`cdr`]).
    pub fn cdr_transform<F>(mut self, f: F) -> Self
    where
        F: Fn(Value) -> Value + Send + Sync + 'static,
    {
        self.cdr_transform = Some(Arc::new(f));
        self
    }

    /// Close connections idle for `idle` (see the field).
    pub fn close_idle_after(mut self, idle: Duration) -> Self {
        self.idle_close = Some(idle);
        self
    }

    /// Send `Keep-Alive: timeout=secs` on every answer.
    pub fn announce_keep_alive(mut self, secs: u64) -> Self {
        self.keep_alive_header = Some(secs);
        self
    }

    /// Put a gateway that gives up after `timeout` in front (see the field).
    pub fn gateway_timeout(mut self, timeout: Duration) -> Self {
        self.gateway_timeout = Some(timeout);
        self
    }

    /// At most `per_second` sends a second for the whole server (see the field).
    pub fn server_rate(mut self, per_second: usize) -> Self {
        self.server_rate = Some(per_second);
        self
    }

    /// The nesting of `cdr_3`'s answer (0, 1 or 2; see the field).
    pub fn cdr_nesting(mut self, nesting: u8) -> Self {
        self.cdr_nesting = nesting;
        self
    }

    /// Messages show up in `cdr_3` this long after they were delivered.
    pub fn cdr_delay(mut self, delay: Duration) -> Self {
        self.cdr_delay = delay;
        self
    }

    /// `connector`'s templates for `list_templates` (see [`meta_template`]).
    pub fn templates(mut self, connector: &str, templates: Vec<Value>) -> Self {
        self.templates.insert(connector.to_owned(), templates);
        self
    }

    /// Sleep `ms` milliseconds before each answer.
    pub fn latency(mut self, ms: u64) -> Self {
        self.latency = Duration::from_millis(ms);
        self
    }

    pub fn latency_duration(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Add a random `0..=ms` milliseconds to each answer's latency.
    pub fn jitter(mut self, ms: u64) -> Self {
        self.jitter = Duration::from_millis(ms);
        self
    }

    /// Accept only these tokens.
    pub fn valid_tokens<I, S>(mut self, tokens: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.valid_tokens = Some(tokens.into_iter().map(Into::into).collect());
        self
    }

    /// `token` may make `calls` calls; the next ones get 403 TOKEN LIMIT EXCEEDED.
    pub fn quota(mut self, token: impl Into<String>, calls: u64) -> Self {
        self.quotas.insert(token.into(), calls);
        self
    }

    pub fn max_in_flight_per_token(mut self, n: usize) -> Self {
        self.max_in_flight_per_token = n;
        self
    }

    /// Script answers: return `Some(reply)` to override, `None` for the normal behaviour.
    pub fn hook<F>(mut self, f: F) -> Self
    where
        F: Fn(&RequestInfo) -> Option<Reply> + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(f));
        self
    }
}

/// One request as the fake saw it.
#[derive(Debug, Clone)]
pub struct Received {
    /// 0-based arrival order.
    pub index: usize,
    /// When it arrived, by the wall clock (for `cdr_3`).
    pub at: std::time::SystemTime,
    /// 0-based index among the requests for the same telephone.
    pub attempt: usize,
    pub method: String,
    pub path: String,
    /// The client's address (one per connection: shows keep-alive reuse).
    pub peer: SocketAddr,
    pub token: Option<String>,
    /// The `api=` query value ("" when absent).
    pub api: String,
    pub telephone: Option<String>,
    /// The body parsed as JSON (`Value::Null` when it is not JSON).
    pub body: Value,
    pub raw_body: Vec<u8>,
    /// When the handler started (the whole request had been read).
    pub started: Instant,
    /// When the answer was built (or the connection was dropped / the client went away).
    pub ended: Option<Instant>,
    /// HTTP status answered; 0 when no answer was given (dropped, or the client went away).
    pub status: u16,
    /// The fake answered a 2xx success to a send API: HTTP 2xx and, if the body is JSON
    /// with a `code`, that code is 2xx (a non-JSON 2xx body counts as delivered: the
    /// message went out, the client just cannot read the answer).
    pub delivered: bool,
    /// The connection was closed without an answer ([`Reply::DropConnection`]).
    pub dropped: bool,
    /// Requests in flight on this token when this one arrived, itself included.
    pub in_flight_at_entry: usize,
}

impl Received {
    /// `message` from the body, if it is a string.
    pub fn message(&self) -> Option<&str> {
        self.body.get("message").and_then(Value::as_str)
    }

    /// `connector_id` from the body, as text (strings and numbers).
    pub fn connector_id(&self) -> Option<String> {
        self.body.get("connector_id").and_then(value_as_text)
    }

    pub fn is_send(&self) -> bool {
        self.api == API_SEND_MESSAGE || self.api == API_SEND_TEMPLATE
    }
}

/// More requests in flight on one token than allowed.
#[derive(Debug, Clone)]
pub struct Violation {
    pub token: String,
    /// Index of the request that found the token over its limit.
    pub index: usize,
    pub in_flight: usize,
    pub at: Instant,
}

#[derive(Default)]
struct Inner {
    log: Vec<Received>,
    attempts_by_telephone: HashMap<String, usize>,
    in_flight: HashMap<String, usize>,
    max_in_flight: HashMap<String, usize>,
    violations: Vec<Violation>,
    used: HashMap<String, u64>,
    /// Sends let through in the last second (`Behavior::server_rate`).
    recent_sends: std::collections::VecDeque<Instant>,
    /// Sends answered 429 by the server-wide limit.
    rate_limited: usize,
}

struct Shared {
    behavior: Behavior,
    inner: Mutex<Inner>,
    rng: AtomicU64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn random_below(&self, bound: u64) -> u64 {
        if bound == 0 {
            return 0;
        }
        // splitmix64
        let mut z = self
            .rng
            .fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)
            .wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        z % (bound + 1)
    }
}

/// Decrements the token's in-flight count and stamps `ended` when the handler finishes,
/// including when it is cancelled because the client went away.
struct FlightGuard {
    shared: Arc<Shared>,
    index: usize,
    token: Option<String>,
    released: bool,
}

impl FlightGuard {
    /// Take the request out of the in-flight count now (idempotent).
    fn release(&mut self) {
        if std::mem::replace(&mut self.released, true) {
            return;
        }
        let now = Instant::now();
        let mut inner = self.shared.lock();
        if let Some(token) = &self.token
            && let Some(n) = inner.in_flight.get_mut(token)
        {
            *n = n.saturating_sub(1);
        }
        if let Some(entry) = inner.log.get_mut(self.index)
            && entry.ended.is_none()
        {
            entry.ended = Some(now);
        }
    }
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        self.release();
    }
}

// ---------------------------------------------------------------------------------------
// A listener whose connections a handler can cut (for Reply::DropConnection).

struct KillSwitch {
    killed: AtomicBool,
    socket: Mutex<Option<std::net::TcpStream>>,
    /// Requests being handled on this connection, and since when it has had none.
    activity: Mutex<(usize, Instant)>,
}

/// Marks a connection busy while a request is handled on it.
struct Busy(Arc<KillSwitch>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut activity = self.0.activity.lock().unwrap_or_else(|e| e.into_inner());
        activity.0 = activity.0.saturating_sub(1);
        activity.1 = Instant::now();
    }
}

impl KillSwitch {
    fn new(socket: Option<std::net::TcpStream>) -> Self {
        KillSwitch {
            killed: AtomicBool::new(false),
            socket: Mutex::new(socket),
            activity: Mutex::new((0, Instant::now())),
        }
    }

    fn busy(self: &Arc<Self>) -> Busy {
        self.activity.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        Busy(Arc::clone(self))
    }

    /// Closes the connection once it has been idle for `idle`, as a front server does:
    /// whatever the client may be writing at that moment is lost with it.
    async fn close_when_idle(self: Arc<Self>, idle: Duration) {
        loop {
            let (busy, since) = *self.activity.lock().unwrap_or_else(|e| e.into_inner());
            if self.killed.load(Ordering::SeqCst) {
                return;
            }
            let due = since + idle;
            if busy == 0 && Instant::now() >= due {
                self.kill();
                return;
            }
            let wake = if busy == 0 {
                due
            } else {
                Instant::now() + idle
            };
            precise_sleep(wake).await;
        }
    }

    /// Shut the socket down both ways: the client sees the connection closed with no
    /// answer, and the server side's writes fail, so hyper closes it too.
    fn kill(&self) {
        self.killed.store(true, Ordering::SeqCst);
        let socket = self.socket.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(socket) = socket {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }
}

/// What each connection carries into the handlers (through `ConnectInfo`).
#[derive(Clone)]
struct Conn {
    peer: SocketAddr,
    kill: Arc<KillSwitch>,
}

struct KillableListener {
    inner: tokio::net::TcpListener,
    /// Close connections idle this long (`Behavior::idle_close`).
    idle_close: Option<Duration>,
    /// Serve HTTPS with this certificate ([`FakeWolkvox::start_tls`]).
    tls: Option<tokio_rustls::TlsAcceptor>,
    /// TLS handshakes that failed (a client refusing the certificate).
    handshakes_failed: Arc<std::sync::atomic::AtomicUsize>,
}

impl KillableListener {
    fn wrap(stream: tokio::net::TcpStream) -> io::Result<(tokio::net::TcpStream, Arc<KillSwitch>)> {
        let std_stream = stream.into_std()?;
        let handle = std_stream.try_clone()?;
        let stream = tokio::net::TcpStream::from_std(std_stream)?;
        let _ = stream.set_nodelay(true);
        Ok((stream, Arc::new(KillSwitch::new(Some(handle)))))
    }
}

/// A connection as the handlers' server reads it: plain, or TLS on top.
enum Stream {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl Listener for KillableListener {
    type Io = Stream;
    type Addr = Conn;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.inner.accept().await {
                Ok((stream, peer)) => match Self::wrap(stream) {
                    Ok((stream, kill)) => {
                        let stream = match &self.tls {
                            None => Stream::Plain(stream),
                            // A client that refuses the certificate ends here.
                            Some(acceptor) => match tokio::time::timeout(
                                Duration::from_secs(5),
                                acceptor.accept(stream),
                            )
                            .await
                            {
                                Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                                _ => {
                                    self.handshakes_failed.fetch_add(1, Ordering::SeqCst);
                                    continue;
                                }
                            },
                        };
                        if let Some(idle) = self.idle_close {
                            tokio::spawn(Arc::clone(&kill).close_when_idle(idle));
                        }
                        return (stream, Conn { peer, kill });
                    }
                    Err(_) => continue,
                },
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(Conn {
            peer: self.inner.local_addr()?,
            kill: Arc::new(KillSwitch::new(None)),
        })
    }
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.peer)
    }
}

impl Connected<IncomingStream<'_, KillableListener>> for Conn {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

// ---------------------------------------------------------------------------------------

fn behavior_idle(shared: &Shared) -> Option<Duration> {
    shared.behavior.idle_close
}

/// A running fake endpoint; shuts down when dropped.
pub struct FakeWolkvox {
    addr: SocketAddr,
    /// Serving HTTPS (see [`FakeWolkvox::start_tls`]).
    tls: bool,
    handshakes_failed: Arc<std::sync::atomic::AtomicUsize>,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeWolkvox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeWolkvox")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl FakeWolkvox {
    /// Bind 127.0.0.1 on a free port and serve in a background thread.
    pub fn start(behavior: Behavior) -> FakeWolkvox {
        Self::serve(behavior, None)
    }

    /// Like [`FakeWolkvox::start`], over HTTPS with `certificate` (see [`TestCa`]).
    pub fn start_tls(behavior: Behavior, certificate: &ServerCertificate) -> FakeWolkvox {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let config = rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certificate.chain.clone(), certificate.key.clone_key())
            .expect("fake wolkvox: TLS server config");
        Self::serve(
            behavior,
            Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))),
        )
    }

    fn serve(behavior: Behavior, tls: Option<tokio_rustls::TlsAcceptor>) -> FakeWolkvox {
        let serves_tls = tls.is_some();
        let handshakes_failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let failed = Arc::clone(&handshakes_failed);
        let std_listener =
            std::net::TcpListener::bind("127.0.0.1:0").expect("fake wolkvox: bind 127.0.0.1:0");
        std_listener
            .set_nonblocking(true)
            .expect("fake wolkvox: set_nonblocking");
        let addr = std_listener.local_addr().expect("fake wolkvox: local_addr");
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
            ^ u64::from(addr.port());
        let shared = Arc::new(Shared {
            behavior,
            inner: Mutex::new(Inner::default()),
            rng: AtomicU64::new(seed),
        });
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let idle_close = behavior_idle(&shared);
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let thread = std::thread::Builder::new()
            .name(format!("fake-wolkvox-{}", addr.port()))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("fake wolkvox: tokio runtime");
                rt.block_on(async move {
                    let listener = KillableListener {
                        inner: tokio::net::TcpListener::from_std(std_listener)
                            .expect("fake wolkvox: tokio listener"),
                        idle_close,
                        tls,
                        handshakes_failed: failed,
                    };
                    let server =
                        axum::serve(listener, app.into_make_service_with_connect_info::<Conn>());
                    tokio::select! {
                        _ = async move { server.await } => {}
                        _ = rx => {}
                    }
                });
                // Cancels the connection tasks still running (hanging requests included).
                rt.shutdown_timeout(Duration::from_millis(500));
            })
            .expect("fake wolkvox: spawn thread");
        FakeWolkvox {
            addr,
            tls: serves_tls,
            handshakes_failed,
            shared,
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    /// The origin, e.g. `http://127.0.0.1:40123` (what `--base-url` takes); `https://`
    /// when serving TLS.
    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// TLS handshakes that failed (clients that refused the certificate).
    pub fn handshakes_failed(&self) -> usize {
        self.handshakes_failed.load(Ordering::SeqCst)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Full URL of the free-form message API.
    pub fn send_message_url(&self) -> String {
        format!(
            "{}{}?api={}",
            self.base_url(),
            WHATSAPP_PATH,
            API_SEND_MESSAGE
        )
    }

    /// Every request, in arrival order.
    pub fn requests(&self) -> Vec<Received> {
        self.shared.lock().log.clone()
    }

    /// Only the requests to a send API (not `token_info`, not unknown paths).
    pub fn send_requests(&self) -> Vec<Received> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.is_send())
            .cloned()
            .collect()
    }

    /// Requests (any API) whose body carried this telephone.
    pub fn requests_for(&self, telephone: &str) -> Vec<Received> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.telephone.as_deref() == Some(telephone))
            .cloned()
            .collect()
    }

    /// Number of requests received (all APIs).
    pub fn count(&self) -> usize {
        self.shared.lock().log.len()
    }

    /// Requests answered with a 2xx success, in arrival order.
    pub fn delivered(&self) -> Vec<Received> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.delivered)
            .cloned()
            .collect()
    }

    /// Telephones of the requests answered with a 2xx success, in arrival order
    /// (a telephone delivered twice appears twice).
    pub fn delivered_telephones(&self) -> Vec<String> {
        self.shared
            .lock()
            .log
            .iter()
            .filter(|r| r.delivered)
            .filter_map(|r| r.telephone.clone())
            .collect()
    }

    /// The highest number of requests ever in flight at once, per token.
    pub fn max_in_flight(&self) -> HashMap<String, usize> {
        self.shared.lock().max_in_flight.clone()
    }

    pub fn violations(&self) -> Vec<Violation> {
        self.shared.lock().violations.clone()
    }

    /// Sends answered 429 by the server-wide limit (`Behavior::server_rate`).
    pub fn rate_limited(&self) -> usize {
        self.shared.lock().rate_limited
    }

    /// Calls counted against each token's quota so far.
    pub fn token_use(&self) -> HashMap<String, u64> {
        self.shared.lock().used.clone()
    }

    /// Panics, with every violation listed, if a token ever had more requests in flight
    /// than allowed.
    pub fn assert_no_overlap_violation(&self) {
        let inner = self.shared.lock();
        if inner.violations.is_empty() {
            return;
        }
        let limit = self.shared.behavior.max_in_flight_per_token;
        let mut detail = String::new();
        for v in &inner.violations {
            let req = inner.log.get(v.index);
            detail.push_str(&format!(
                "\n  request #{} token {:?}: {} in flight (telephone {:?})",
                v.index,
                v.token,
                v.in_flight,
                req.and_then(|r| r.telephone.clone()),
            ));
        }
        panic!(
            "more than {limit} requests in flight on one token ({} violation(s); max per token {:?}):{detail}",
            inner.violations.len(),
            inner.max_in_flight,
        );
    }

    /// Wait (blocking, polling) until at least `n` requests arrived; false on timeout.
    pub fn wait_for_requests(&self, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if self.count() >= n {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for FakeWolkvox {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The handler.

fn value_as_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn query_param(uri: &Uri, name: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then(|| v.to_owned())
    })
}

fn code_is_2xx(code: &Value) -> bool {
    match code {
        Value::Number(n) => n.as_u64().is_some_and(|c| (200..300).contains(&c)),
        Value::String(s) => s
            .trim()
            .parse::<u64>()
            .is_ok_and(|c| (200..300).contains(&c)),
        _ => false,
    }
}

/// HTTP 2xx and, if the body is JSON carrying a `code`, a 2xx code.
fn is_success(status: u16, body: &[u8]) -> bool {
    if !(200..300).contains(&status) {
        return false;
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(v) => match v.get("code") {
            Some(code) => code_is_2xx(code),
            None => true,
        },
        Err(_) => true,
    }
}

fn error_word(status: u16) -> &'static str {
    match status {
        400 => "BAD REQUEST",
        401 => "UNAUTHORIZED",
        403 => "FORBIDDEN",
        404 => "NOT FOUND",
        _ => "ERROR",
    }
}

fn api_error(status: u16, msg: &str) -> (u16, Value) {
    (
        status,
        json!({"code": status, "error": error_word(status), "msg": msg}),
    )
}

fn field_present(body: &Value, name: &str, allow_empty: bool) -> bool {
    match body.get(name) {
        Some(Value::String(s)) => allow_empty || !s.trim().is_empty(),
        Some(Value::Number(_)) => true,
        _ => false,
    }
}

/// The fake's normal (unscripted) answer.
fn normal_answer(
    shared: &Shared,
    path: &str,
    api: &str,
    uri: &Uri,
    token: Option<&str>,
    body: &Value,
) -> (u16, Value) {
    let Some(token) = token else {
        return api_error(401, MSG_ENTER_TOKEN);
    };
    if let Some(valid) = &shared.behavior.valid_tokens
        && !valid.contains(token)
    {
        return api_error(403, MSG_VALIDATE_TOKEN);
    }
    let lists_templates = api == API_LIST_TEMPLATES && !shared.behavior.templates.is_empty();
    let known = match path {
        WHATSAPP_PATH => api == API_SEND_MESSAGE || api == API_SEND_TEMPLATE || lists_templates,
        INFORMATION_PATH => api == API_TOKEN_INFO,
        REPORTS_PATH => api == API_CDR_3,
        _ => return api_error(404, "NOT FOUND"),
    };
    if !known {
        return api_error(400, MSG_API_NOT_EXIST);
    }
    let quota = shared.behavior.quotas.get(token).copied();
    let (used, all_today) = {
        let mut inner = shared.lock();
        let used = inner.used.get(token).copied().unwrap_or(0);
        if quota.is_some_and(|q| used >= q) {
            return api_error(403, MSG_TOKEN_LIMIT);
        }
        inner.used.insert(token.to_owned(), used + 1);
        (used + 1, inner.used.values().sum::<u64>())
    };
    if api == API_CDR_3 {
        return cdr_3(shared, uri);
    }
    if lists_templates {
        let connector = query_param(uri, "connector_id").unwrap_or_default();
        let templates = shared
            .behavior
            .templates
            .get(&connector)
            .cloned()
            .unwrap_or_default();
        return (
            200,
            json!({"code": 200, "error": null, "msg": "ok", "data": {"meta_templates": templates}}),
        );
    }
    if api == API_TOKEN_INFO {
        let limit = quota.unwrap_or(DEFAULT_TOKEN_LIMIT);
        return (
            200,
            json!({
                "code": 200,
                "error": null,
                "msg": "ok",
                "data": {
                    "token_limit": limit,
                    "token_use_today": used,
                    "all_token_today": all_today,
                    "available_consumption_options": limit.saturating_sub(used),
                }
            }),
        );
    }
    let complete = if api == API_SEND_MESSAGE {
        ["connector_id", "telephone", "message"]
            .iter()
            .all(|f| field_present(body, f, false))
    } else {
        ["connector_id", "telephone", "template_name"]
            .iter()
            .all(|f| field_present(body, f, false))
            && ["template_vars", "customer_id", "url_attach"]
                .iter()
                .all(|f| field_present(body, f, true))
    };
    if !complete {
        return api_error(400, MSG_PARAMETERS_REQUIRED);
    }
    (201, json!({"code": 201, "error": null, "msg": MSG_SENT}))
}

/// `YYYYmmddHHiiss` in `zone` as a wall-clock time.
fn report_time(text: &str, zone: &jiff::tz::TimeZone) -> Option<std::time::SystemTime> {
    let ts: jiff::Timestamp = jiff::fmt::strtime::parse("%Y%m%d%H%M%S", text)
        .ok()?
        .to_datetime()
        .ok()?
        .to_zoned_datetime(zone.clone())
        .ok()?
        .timestamp();
    let secs = u64::try_from(ts.as_second()).ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(secs))
}

/// The `cdr_3` report: free messages delivered within the span that have had time to
/// show up (`cdr_delay`), dated in `cdr_zone`, through `cdr_transform`.
fn cdr_3(shared: &Shared, uri: &Uri) -> (u16, Value) {
    let zone = &shared.behavior.cdr_zone;
    let span = (
        query_param(uri, "date_ini")
            .as_deref()
            .and_then(|t| report_time(t, zone)),
        query_param(uri, "date_end")
            .as_deref()
            .and_then(|t| report_time(t, zone)),
    );
    let (Some(from), Some(to)) = span else {
        return api_error(400, MSG_PARAMETERS_REQUIRED);
    };
    let now = std::time::SystemTime::now();
    let records: Vec<Value> = shared
        .lock()
        .log
        .iter()
        .filter(|r| r.delivered && r.api == API_SEND_MESSAGE)
        .filter(|r| r.at >= from && r.at <= to && r.at + shared.behavior.cdr_delay <= now)
        .map(|r| {
            json!({
                "date": cdr::date(r.at, zone),
                "telephone": r.telephone,
                "message": r.message(),
                "channel": "WhatsApp (official) 1",
                "destiny": r.telephone,
                "customer_id": "",
                "agent_id": "",
                "agent_name": "",
                "conn_id": r.index,
            })
        })
        .collect();
    let body = match shared.behavior.cdr_nesting {
        0 => json!({"code": 200, "error": null, "msg": "ok", "data": records}),
        1 => json!({"code": 200, "error": null, "msg": "ok", "data": {"records": records}}),
        _ => Value::Array(records),
    };
    match &shared.behavior.cdr_transform {
        Some(f) => (200, f(body)),
        None => (200, body),
    }
}

/// Ready-made changes to `cdr_3`'s answer ([`Behavior::cdr_transform`]), each a way a
/// real report may differ from what the tool asked for.
pub mod cdr {
    use serde_json::{Value, json};

    /// A change to the answer.
    pub type Transform = std::sync::Arc<dyn Fn(Value) -> Value + Send + Sync>;

    /// A wall-clock time as `cdr_3` dates it (`YYYY-mm-dd HH:MM:SS`) in `zone`.
    pub fn date(at: std::time::SystemTime, zone: &jiff::tz::TimeZone) -> String {
        jiff::Timestamp::try_from(at)
            .map(|t| {
                t.to_zoned_datetime(zone.clone())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_default()
    }

    /// The records of an answer, wherever the nesting put them.
    pub fn records_mut(body: &mut Value) -> Option<&mut Vec<Value>> {
        match body {
            Value::Array(items) => Some(items),
            Value::Object(map) => match map.get_mut("data")? {
                Value::Array(items) => Some(items),
                Value::Object(data) => data.get_mut("records")?.as_array_mut(),
                _ => None,
            },
            _ => None,
        }
    }

    /// An error in a 200 answer, as some Wolkvox APIs give it: `code` as given (a
    /// number or a string), `msg`, and no records.
    pub fn error_body(code: Value, msg: &str) -> impl Fn(Value) -> Value + Send + Sync + use<> {
        let msg = msg.to_owned();
        move |_| json!({"code": code, "error": "ERROR", "msg": msg})
    }

    /// The first page of a paginated answer: the records as served, and `total` and
    /// `pages` saying there is more (the tool does not ask for the next page).
    pub fn paginated(total: u64, pages: u64) -> impl Fn(Value) -> Value + Send + Sync {
        move |mut body| {
            if let Value::Object(map) = &mut body {
                map.insert("total".into(), total.into());
                map.insert("page".into(), 1.into());
                map.insert("pages".into(), pages.into());
            }
            body
        }
    }

    /// The records, then filler records up to `items` in all (the 60,000 cap), of which
    /// the last `unreadable` have `"message": null`.
    pub fn padded(items: usize, unreadable: usize) -> impl Fn(Value) -> Value + Send + Sync {
        move |mut body| {
            if let Some(records) = records_mut(&mut body) {
                let start = records.len();
                for i in start..items {
                    let message = if items - i <= unreadable {
                        Value::Null
                    } else {
                        Value::String(format!("relleno {i}"))
                    };
                    records.push(json!({
                        "date": "2020-01-01 00:00:00",
                        "telephone": format!("5731{:08}", i),
                        "message": message,
                        "channel": "WhatsApp (official) 1",
                    }));
                }
            }
            body
        }
    }

    /// How a report may show a text or a phone other than as sent.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Alteration {
        /// Surrounding whitespace trimmed.
        Trimmed,
        /// Runs of spaces collapsed to one.
        Collapsed,
        /// CRLF written as LF.
        Lf,
        /// Unicode NFD (decomposed accents).
        Nfd,
        /// `&`, `<`, `>` and `"` as HTML entities.
        HtmlEscaped,
        /// The phone without its country code (57 for Colombia).
        NationalPhone,
        /// The phone with a `+`.
        PlusPhone,
    }

    /// Each text `alter`ed, as a report may show it.
    pub fn altered(alterations: &[Alteration]) -> impl Fn(Value) -> Value + Send + Sync + use<> {
        let alterations = alterations.to_vec();
        move |mut body| {
            if let Some(records) = records_mut(&mut body) {
                for r in records.iter_mut() {
                    for a in &alterations {
                        alter(r, *a);
                    }
                }
            }
            body
        }
    }

    fn alter(record: &mut Value, a: Alteration) {
        use unicode_normalization::UnicodeNormalization;
        let Some(map) = record.as_object_mut() else {
            return;
        };
        let text = map
            .get("message")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let phone = map
            .get("telephone")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let text = match a {
            Alteration::Trimmed => text.trim().to_owned(),
            Alteration::Collapsed => {
                let mut out = String::new();
                for c in text.chars() {
                    if !(c == ' ' && out.ends_with(' ')) {
                        out.push(c);
                    }
                }
                out
            }
            Alteration::Lf => text.replace("\r\n", "\n"),
            Alteration::Nfd => text.nfd().collect(),
            Alteration::HtmlEscaped => text
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;"),
            _ => text,
        };
        let phone = match a {
            Alteration::NationalPhone => phone.strip_prefix("57").unwrap_or(&phone).to_owned(),
            Alteration::PlusPhone => format!("+{phone}"),
            _ => phone,
        };
        map.insert("message".into(), text.into());
        map.insert("telephone".into(), phone.into());
    }

    /// The records, plus `extra` (records of messages sent outside this test's runs,
    /// such as an earlier campaign's).
    pub fn with_extra(extra: Vec<Value>) -> impl Fn(Value) -> Value + Send + Sync {
        move |mut body| {
            if let Some(records) = records_mut(&mut body) {
                records.extend(extra.iter().cloned());
            }
            body
        }
    }

    /// A record of `message` to `telephone` at `at`, dated in `zone`.
    pub fn record(
        telephone: &str,
        message: &str,
        at: std::time::SystemTime,
        zone: &jiff::tz::TimeZone,
    ) -> Value {
        json!({
            "date": date(at, zone),
            "telephone": telephone,
            "message": message,
            "channel": "WhatsApp (official) 1",
        })
    }
}

/// A template as Meta describes it (and `list_templates` lists it): `body` with `{{1}}`
/// or `{{name}}` placeholders, and an optional header component.
pub fn meta_template(name: &str, status: &str, body: &str, header: Option<Value>) -> Value {
    let mut components = vec![json!({"type": "BODY", "text": body})];
    if let Some(h) = header {
        components.insert(0, h);
    }
    json!({
        "name": name,
        "status": status,
        "language": "es",
        "category": "UTILITY",
        "parameter_format": "POSITIONAL",
        "components": components,
    })
}

fn build_response(
    status: u16,
    headers: &[(String, String)],
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(ct) = content_type
        && let Ok(v) = HeaderValue::from_str(ct)
    {
        response
            .headers_mut()
            .insert(axum::http::header::CONTENT_TYPE, v);
    }
    for (name, value) in headers {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            response.headers_mut().append(n, v);
        }
    }
    response
}

fn json_bytes(body: &Value) -> Vec<u8> {
    serde_json::to_vec(body).unwrap_or_default()
}

/// Sleeps until `deadline`, precisely. tokio's timer works in whole milliseconds and
/// rounds up, which made a 10 ms latency about 11.2 ms and skewed every throughput
/// figure measured against the fake. A blocking thread sleeps instead, and spins the
/// last 0.2 ms, since the OS may wake a sleeping thread 50 us or more late.
async fn precise_sleep(deadline: Instant) {
    const SPIN: Duration = Duration::from_micros(200);
    let wait = tokio::task::spawn_blocking(move || {
        let rest = deadline.saturating_duration_since(Instant::now());
        if rest > SPIN {
            std::thread::sleep(rest - SPIN);
        }
        while Instant::now() < deadline {
            std::hint::spin_loop();
        }
    });
    if wait.await.is_err() {
        tokio::time::sleep_until(deadline.into()).await;
    }
}

/// What a front server does before the API sees a request: the connection counts as
/// busy while it is handled (for `idle_close`), a server-wide limit may answer 429, a
/// gateway may give up with a 504, and every answer may announce `Keep-Alive`.
async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<Conn>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw_body: Bytes,
) -> Response {
    let _busy = conn.kill.busy();
    let mut response = front(shared.clone(), conn.clone(), method, uri, headers, raw_body).await;
    if let Some(secs) = shared.behavior.keep_alive_header
        && let Ok(v) = HeaderValue::from_str(&format!("timeout={secs}"))
    {
        response
            .headers_mut()
            .insert(HeaderName::from_static("keep-alive"), v);
    }
    response
}

async fn front(
    shared: Arc<Shared>,
    conn: Conn,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw_body: Bytes,
) -> Response {
    let is_send = matches!(
        query_param(&uri, "api").as_deref(),
        Some(API_SEND_MESSAGE | API_SEND_TEMPLATE)
    );
    if let Some(limit) = shared.behavior.server_rate
        && is_send
    {
        let now = Instant::now();
        let mut inner = shared.lock();
        while inner
            .recent_sends
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            inner.recent_sends.pop_front();
        }
        if inner.recent_sends.len() >= limit {
            inner.rate_limited += 1;
            return build_response(
                429,
                &[],
                Some("text/html"),
                b"<html><body><h1>429 Too Many Requests</h1></body></html>".to_vec(),
            );
        }
        inner.recent_sends.push_back(now);
    }
    let Some(gateway) = shared.behavior.gateway_timeout else {
        return backend(shared, conn, method, uri, headers, raw_body).await;
    };
    let mut work = tokio::spawn(backend(shared, conn, method, uri, headers, raw_body));
    tokio::select! {
        done = &mut work => done.unwrap_or_else(|_| build_response(502, &[], None, Vec::new())),
        () = tokio::time::sleep(gateway) => build_response(
            504,
            &[],
            Some("text/html"),
            b"<html><body><h1>504 Gateway Time-out</h1></body></html>".to_vec(),
        ),
    }
}

/// The API itself (behind any front server).
async fn backend(
    shared: Arc<Shared>,
    conn: Conn,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    raw_body: Bytes,
) -> Response {
    let started = Instant::now();
    let api = query_param(&uri, "api").unwrap_or_default();
    let path = uri.path().to_owned();
    let token = headers
        .get("wolkvox-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = serde_json::from_slice(&raw_body).unwrap_or(Value::Null);
    let telephone = body.get("telephone").and_then(value_as_text);
    let limit = shared.behavior.max_in_flight_per_token;

    // Register the request and count it in flight.
    let (index, attempt, in_flight) = {
        let mut inner = shared.lock();
        let index = inner.log.len();
        let attempt = match &telephone {
            Some(t) => {
                let n = inner.attempts_by_telephone.entry(t.clone()).or_insert(0);
                let a = *n;
                *n += 1;
                a
            }
            None => 0,
        };
        let in_flight = match &token {
            Some(t) => {
                let n = inner.in_flight.entry(t.clone()).or_insert(0);
                *n += 1;
                let now = *n;
                let max = inner.max_in_flight.entry(t.clone()).or_insert(0);
                *max = (*max).max(now);
                if now > limit {
                    inner.violations.push(Violation {
                        token: t.clone(),
                        index,
                        in_flight: now,
                        at: started,
                    });
                }
                now
            }
            None => 0,
        };
        inner.log.push(Received {
            index,
            at: std::time::SystemTime::now(),
            attempt,
            method: method.to_string(),
            path: path.clone(),
            peer: conn.peer,
            token: token.clone(),
            api: api.clone(),
            telephone: telephone.clone(),
            body: body.clone(),
            raw_body: raw_body.to_vec(),
            started,
            ended: None,
            status: 0,
            delivered: false,
            dropped: false,
            in_flight_at_entry: in_flight,
        });
        (index, attempt, in_flight)
    };
    let mut guard = FlightGuard {
        shared: Arc::clone(&shared),
        index,
        token: token.clone(),
        released: false,
    };
    let is_send = api == API_SEND_MESSAGE || api == API_SEND_TEMPLATE;
    let finish = |status: u16, delivered: bool, dropped: bool| {
        let mut inner = shared.lock();
        if let Some(entry) = inner.log.get_mut(index) {
            entry.status = status;
            entry.delivered = delivered;
            entry.dropped = dropped;
            entry.ended = Some(Instant::now());
        }
    };

    if token.is_some() && in_flight > limit {
        let (status, body) = api_error(403, MSG_SIMULTANEOUS);
        finish(status, false, false);
        return build_response(status, &[], Some("application/json"), json_bytes(&body));
    }

    let mut sleep = shared.behavior.latency;
    let jitter_ms = shared.behavior.jitter.as_millis() as u64;
    if jitter_ms > 0 {
        sleep += Duration::from_millis(shared.random_below(jitter_ms));
    }
    if !sleep.is_zero() {
        precise_sleep(started + sleep).await;
    }

    let scripted = shared.behavior.hook.as_ref().and_then(|hook| {
        hook(&RequestInfo {
            index,
            attempt,
            token: token.clone(),
            api: api.clone(),
            method: method.to_string(),
            path: path.clone(),
            telephone: telephone.clone(),
            body: body.clone(),
        })
    });

    let normal = |shared: &Shared| {
        let (status, answer) = normal_answer(shared, &path, &api, &uri, token.as_deref(), &body);
        let bytes = json_bytes(&answer);
        (
            status,
            Vec::new(),
            Some("application/json".to_owned()),
            bytes,
        )
    };

    let (status, extra_headers, content_type, bytes) = match scripted {
        None => normal(&shared),
        Some(Reply::Json { status, body }) => (
            status,
            Vec::new(),
            Some("application/json".to_owned()),
            json_bytes(&body),
        ),
        Some(Reply::Raw {
            status,
            content_type,
            body,
        }) => (status, Vec::new(), Some(content_type), body),
        Some(Reply::WithHeaders {
            status,
            headers,
            body,
        }) => {
            if body.is_null() {
                (status, headers, None, Vec::new())
            } else {
                (
                    status,
                    headers,
                    Some("application/json".to_owned()),
                    json_bytes(&body),
                )
            }
        }
        Some(Reply::DropConnection) => {
            // Log and leave the in-flight count first: the client may look at the log, or
            // send its next request, as soon as it sees the connection close.
            finish(0, false, true);
            guard.release();
            conn.kill.kill();
            // Never written: the socket is shut down, hyper fails the write and closes.
            return build_response(500, &[], None, Vec::new());
        }
        Some(Reply::DeliverThenDrop) => {
            finish(0, true, true);
            guard.release();
            conn.kill.kill();
            return build_response(500, &[], None, Vec::new());
        }
        Some(Reply::Hang(d)) => {
            tokio::time::sleep(d).await;
            normal(&shared)
        }
        Some(Reply::DeliverThenHang(d)) => {
            finish(201, true, false);
            tokio::time::sleep(d).await;
            normal(&shared)
        }
    };
    let delivered = is_send && is_success(status, &bytes);
    finish(status, delivered, false);
    build_response(status, &extra_headers, content_type.as_deref(), bytes)
}

// ---------------------------------------------------------------------------------------
// Certificates made for a test.

/// A certificate authority made for one test, as a company's TLS inspection has.
pub struct TestCa {
    /// The CA's certificate in PEM (what `SSL_CERT_FILE` points at to trust it).
    pub pem: String,
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
}

/// A server's certificate chain and key, signed by a [`TestCa`].
pub struct ServerCertificate {
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = rcgen::KeyPair::generate().expect("test CA key");
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "wolkvox-dispatch test CA");
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa {
            pem: cert.pem(),
            issuer: rcgen::Issuer::new(params, key),
        }
    }

    /// A server certificate for these names (DNS names or IP addresses).
    pub fn server(&self, names: &[&str]) -> ServerCertificate {
        let key = rcgen::KeyPair::generate().expect("server key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).expect("server params");
        let cert = params.signed_by(&key, &self.issuer).expect("server cert");
        ServerCertificate {
            chain: vec![cert.der().clone()],
            key: rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        }
    }
}
