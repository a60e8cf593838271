/*!
How the PostgreSQL ledger reaches its server (`[ledger] url`): the url checked (never
a password in it), the password found as libpq finds it (`PGPASSWORD`, the password
file), TLS with the API's trust (`sslmode=require`), the session's limits, and the
person's words for the client's errors. The store itself is `postgres`.
*/

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use postgres::config::SslMode;
use postgres::{Client, Config};

use super::LedgerError;
use crate::tr;

/// A session idle this long inside a transaction (its run frozen mid-claim) is ended
/// by the server, releasing the claim lock for the other hosts.
const IDLE_IN_CLAIM: Duration = Duration::from_secs(60);

/// How long to wait for the server to answer a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The url without anything secret, for messages: `postgres://user@host:port/db`.
fn shown(config: &Config) -> String {
    use postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        #[cfg(unix)]
        Some(Host::Unix(p)) => p.display().to_string(),
        None => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .map(|p| format!(":{p}"))
        .unwrap_or_default();
    let user = config
        .get_user()
        .map(|u| format!("{u}@"))
        .unwrap_or_default();
    let db = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{host}{port}/{db}")
}

/// Checks `[ledger] url` without connecting: a PostgreSQL url, without a password.
/// The reason, for the config's error naming the key, never repeats the url.
pub(crate) fn check_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
        return Err(tr!("ledger-url-not-postgres"));
    }
    let config =
        Config::from_str(url).map_err(|e| tr!("ledger-url-invalid", error = e.to_string()))?;
    if config.get_password().is_some() {
        return Err(tr!("ledger-url-password"));
    }
    Ok(())
}

/// The person's words for what went wrong, from the client's error.
pub(super) fn problem(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return match code {
            "28P01" | "28000" => tr!("ledger-pg-auth", error = db.message().to_owned()),
            "3D000" => tr!("ledger-pg-no-database", error = db.message().to_owned()),
            "42501" => tr!("ledger-pg-privilege", error = db.message().to_owned()),
            "55P03" => tr!(
                "ledger-problem-locked",
                seconds = super::BUSY_TIMEOUT.as_secs()
            ),
            _ => tr!("ledger-problem-other", error = db.message().to_owned()),
        };
    }
    // The client's own words are terse ("error connecting to server"): the causes say
    // what happened ("Connection refused", a certificate not trusted).
    let mut text = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    // The same words as the API's for a certificate this machine does not trust.
    if text.contains("invalid peer certificate") {
        return tr!("ledger-pg-certificate", error = text);
    }
    tr!("ledger-pg-unreachable", error = text)
}

/// `f` on this thread, or on a scoped one when this thread is inside a tokio runtime
/// (where the sync client would panic).
pub(super) fn off_runtime<R: Send>(f: impl FnOnce() -> R + Send) -> Option<R> {
    if tokio::runtime::Handle::try_current().is_ok() {
        std::thread::scope(|s| s.spawn(f).join().ok())
    } else {
        Some(f())
    }
}

/// How to reach the server: the parsed url, its password, and TLS.
#[derive(Clone)]
pub(crate) struct Target {
    config: Config,
    shown: String,
    tls: Option<tokio_postgres_rustls::MakeRustlsConnect>,
    /// A password file ignored because others may read it (said when a login fails).
    pgpass_ignored: Option<std::path::PathBuf>,
}

impl Target {
    /// From `[ledger] url` (checked by `check_url`), the password found as libpq finds it.
    pub(crate) fn new(url: &str) -> Result<Target, LedgerError> {
        let mut config = Config::from_str(url).map_err(|e| LedgerError::Failed {
            path: "[ledger] url".into(),
            problem: tr!("ledger-url-invalid", error = e.to_string()),
        })?;
        if config.get_user().is_none() {
            let user = std::env::var("PGUSER")
                .or_else(|_| std::env::var("USER"))
                .unwrap_or_else(|_| "postgres".to_owned());
            config.user(&user);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // A connection whose server vanished is noticed within about a minute even
        // while nothing is asked (keepalives), and a query waits no longer than that.
        config.keepalives_idle(Duration::from_secs(30));
        config.tcp_user_timeout(Duration::from_secs(60));
        config.application_name("wolkvox-dispatch");
        // The server's notices are not for people. A run waits for another's claim at
        // most as long as for a SQLite file's lock; and a run that stops answering in the
        // middle of its claim (a laptop suspended, a process frozen) does not hold every
        // other host's claims for long: the server ends its transaction.
        config.options(&format!(
            "-c client_min_messages=warning -c lock_timeout={} \
             -c idle_in_transaction_session_timeout={}",
            super::BUSY_TIMEOUT.as_millis(),
            IDLE_IN_CLAIM.as_millis()
        ));
        let shown = shown(&config);
        if config.get_password().is_some() {
            return Err(LedgerError::Failed {
                path: shown.into(),
                problem: tr!("ledger-url-password"),
            });
        }
        let (password, pgpass_ignored) = password_for(&config);
        if let Some(password) = password {
            config.password(password);
        }
        let tls = if config.get_ssl_mode() == SslMode::Require {
            Some(tls_connector().map_err(|e| LedgerError::Failed {
                path: shown.clone().into(),
                problem: tr!("ledger-pg-unreachable", error = e.to_string()),
            })?)
        } else {
            config.ssl_mode(SslMode::Disable);
            None
        };
        Ok(Target {
            config,
            shown,
            tls,
            pgpass_ignored,
        })
    }

    /// A target whose password is given (tests: the environment is the process's).
    #[cfg(test)]
    pub(crate) fn with_password(url: &str, password: &str) -> Result<Target, LedgerError> {
        let mut target = Target::new(url)?;
        target.config.password(password);
        Ok(target)
    }

    /// The url without anything secret.
    pub(crate) fn shown(&self) -> &str {
        &self.shown
    }

    pub(super) fn fail(&self, e: &postgres::Error) -> LedgerError {
        let open_file = self
            .pgpass_ignored
            .as_ref()
            .map(|f| format!(" ({})", tr!("ledger-pgpass-open", path = f.display())))
            .unwrap_or_default();
        // The server asked for a password and none was found (the client says so as a
        // configuration error, before any login).
        let no_password = e.as_db_error().is_none()
            && std::error::Error::source(e).is_some_and(|c| c.to_string() == "password missing");
        LedgerError::Failed {
            path: self.shown.clone().into(),
            problem: if no_password {
                tr!("ledger-pg-no-password", hint = open_file)
            } else if e
                .as_db_error()
                .is_some_and(|d| d.code().code().starts_with("28"))
            {
                format!("{}{open_file}", problem(e))
            } else {
                problem(e)
            },
        }
    }

    pub(super) fn connect(&self) -> Result<Client, LedgerError> {
        let connected = off_runtime(|| match &self.tls {
            Some(tls) => self.config.connect(tls.clone()),
            None => self.config.connect(postgres::NoTls),
        });
        match connected {
            Some(Ok(client)) => Ok(client),
            Some(Err(e)) => Err(self.fail(&e)),
            None => Err(self.lost()),
        }
    }

    pub(super) fn lost(&self) -> LedgerError {
        LedgerError::Failed {
            path: self.shown.clone().into(),
            problem: tr!(
                "ledger-pg-unreachable",
                error = "client thread ended".to_owned()
            ),
        }
    }
}

/// The same trust as the API client: rustls with ring, the platform's verifier (the
/// system's roots; `SSL_CERT_FILE` / `SSL_CERT_DIR` where set).
fn tls_connector() -> Result<tokio_postgres_rustls::MakeRustlsConnect, rustls::Error> {
    use rustls_platform_verifier::BuilderVerifierExt;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_platform_verifier()?
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// The password for `config`: `PGPASSWORD`, else the first matching line of the
/// password file (`PGPASSFILE`, else `~/.pgpass`), as libpq reads it. A password file
/// others can read is ignored (libpq does the same), with a warning.
fn password_for(config: &Config) -> (Option<String>, Option<std::path::PathBuf>) {
    if let Ok(password) = std::env::var("PGPASSWORD") {
        return (Some(password), None);
    }
    let file = std::env::var_os("PGPASSFILE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".pgpass")));
    let Some(file) = file else {
        return (None, None);
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let Ok(meta) = std::fs::metadata(&file) else {
            return (None, None);
        };
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!("{}", tr!("ledger-pgpass-open", path = file.display()));
            return (None, Some(file));
        }
    }
    let Ok(text) = std::fs::read_to_string(&file) else {
        return (None, None);
    };
    use postgres::config::Host;
    let host = match config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        _ => "localhost".to_owned(),
    };
    let port = config
        .get_ports()
        .first()
        .copied()
        .unwrap_or(5432)
        .to_string();
    let db = config.get_dbname().unwrap_or_default();
    let user = config.get_user().unwrap_or_default();
    (pgpass_lookup(&text, &[&host, &port, db, user]), None)
}

/// The password of the first line of a `.pgpass` text whose four fields match (`*`
/// matches anything; `\:` and `\\` are a colon and a backslash).
pub(crate) fn pgpass_lookup(text: &str, wanted: &[&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields = Vec::new();
        let mut field = String::new();
        let mut chars = line.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => field.extend(chars.next()),
                ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
                c => field.push(c),
            }
        }
        fields.push(field);
        if fields.len() != 5 {
            continue;
        }
        if fields[..4]
            .iter()
            .zip(wanted)
            .all(|(f, w)| f == "*" || f == w)
        {
            return fields.pop();
        }
    }
    None
}

/// This machine's name, for campaigns (`host:/path`).
pub(super) fn host_name() -> String {
    #[cfg(unix)]
    {
        let mut buf = [0u8; 256];
        // SAFETY: the buffer is valid for its length; gethostname writes at most that.
        let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
        if rc == 0 {
            let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
            if let Ok(name) = std::str::from_utf8(&buf[..end])
                && !name.is_empty()
            {
                return name.to_owned();
            }
        }
    }
    std::env::var("COMPUTERNAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "localhost".to_owned())
}
