//! What real servers between the tool and Wolkvox do (issue 28): front servers that
//! close idle connections, gateways that give up while the API goes on, server-wide
//! limits answering 429, TLS with a certificate the machine does not trust, proxies.
//! Each is played by the fake on 127.0.0.1.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const TOKEN: &str = "tok-net-1";
const OTHER_TOKEN: &str = "tok-net-2";

/// `n` rows with distinct Colombian mobiles.
fn list(dir: &Path, n: usize) -> (PathBuf, Vec<String>) {
    let tels = colombian_mobiles(n);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir, "contacts.csv", &contacts_csv(&rows, "1"));
    (input, tels)
}

/// How many rows ended with each status.
fn status_counts(results: &Path) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for line in read_results(results) {
        *counts.entry(line["status"].clone()).or_default() += 1;
    }
    counts
}

/// Every telephone reached the server exactly once and was delivered.
fn assert_each_delivered_once(fake: &FakeWolkvox, tels: &[String]) {
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    let mut want = tels.to_vec();
    want.sort();
    assert_eq!(delivered, want, "each telephone delivered exactly once");
}

// ---------------------------------------------------------------------------------------
// Idle connections.

/// Runs of 12 rows with one token at each of several paces around 1 s, side by side,
/// each against its own fake: every row must end `sent`, delivered once.
fn paced_runs_all_sent(behavior: impl Fn() -> Behavior, config_extra: &str) {
    let rates = ["0.995", "1.0", "1.003", "1.006", "1.01"];
    let runs: Vec<_> = rates
        .iter()
        .map(|rate| {
            let (rate, behavior, extra) = (rate.to_string(), behavior(), config_extra.to_owned());
            std::thread::spawn(move || {
                let fake = FakeWolkvox::start(behavior);
                let dir = temp_dir();
                let (input, tels) = list(dir.path(), 12);
                let config = write_connector_config(dir.path(), "1", &extra);
                let mut c = send_cmd_at_rate(&input, &fake, TOKEN, &rate);
                c.arg("--config").arg(&config).arg("--no-quota-check");
                let out = run(c);
                let counts = status_counts(&default_results_path(&input));
                let mut delivered = fake.delivered_telephones();
                delivered.sort();
                let mut want = tels;
                want.sort();
                (rate, out, counts, delivered == want)
            })
        })
        .collect();
    for handle in runs {
        let (rate, out, counts, once) = handle.join().expect("run thread");
        assert_eq!(
            counts.get("sent").copied().unwrap_or(0),
            12,
            "--rate {rate}: {counts:?}\n{}",
            out.stderr
        );
        assert!(once, "--rate {rate}: every telephone delivered once");
        out.expect_code(0);
    }
}

/// A server that closes connections idle for 1 s (nginx `keepalive_timeout 1s`), paced so
/// that requests leave about 1 s apart on one connection: a request written as the server
/// closes the connection would be lost with it (`unknown`).
#[test]
fn a_server_closing_idle_connections_never_turns_rows_unknown() {
    paced_runs_all_sent(
        || Behavior::ok().close_idle_after(Duration::from_secs(1)),
        "",
    );
}

/// A server that announces `Keep-Alive: timeout=1` (as Apache does) and closes idle
/// connections after 1 s is heeded even when `api.idle_timeout` allows more.
#[test]
fn a_servers_keep_alive_timeout_is_heeded_when_shorter_than_the_config() {
    paced_runs_all_sent(
        || {
            Behavior::ok()
                .close_idle_after(Duration::from_secs(1))
                .announce_keep_alive(1)
        },
        "idle_timeout = \"30s\"\n",
    );
}

// ---------------------------------------------------------------------------------------
// Gateways.

/// A gateway that gives up after 1 s (nginx `proxy_read_timeout 1s`) in front of an API
/// that takes 3 s on the first two rows: the gateway's 504 does not free the token's slot
/// while the API is still working, so the API never sees more than 2 requests of a token,
/// and no row fails on "simultaneous requests".
#[test]
fn a_gateways_504_keeps_the_tokens_slot_while_the_api_works_on() {
    let fake = FakeWolkvox::start(
        Behavior::ok()
            .latency(150)
            .gateway_timeout(Duration::from_secs(1))
            .hook(|r| {
                (r.index < 2 && r.attempt == 0).then_some(Reply::Hang(Duration::from_secs(3)))
            }),
    );
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 40);
    let config = write_connector_config(dir.path(), "1", "");
    let mut c = send_cmd_at_rate(&input, &fake, &format!("{TOKEN},{OTHER_TOKEN}"), "10");
    c.arg("--config").arg(&config).arg("--no-quota-check");
    let out = run(c);
    fake.assert_no_overlap_violation();
    let counts = status_counts(&default_results_path(&input));
    assert_eq!(counts.get("failed"), None, "{counts:?}\n{}", out.stderr);
    assert_eq!(
        counts.get("unknown"),
        Some(&2),
        "{counts:?}\n{}",
        out.stderr
    );
    assert_eq!(counts.get("sent"), Some(&38), "{counts:?}\n{}", out.stderr);
    // The two 504s were delivered by the API after the gateway gave up: once each.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while fake.delivered().len() < tels.len() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_each_delivered_once(&fake, &tels);
    assert!(!out.stderr.contains("SIMULTANEOUS"), "{}", out.stderr);
}

/// "EXCEEDS THE LIMIT OF SIMULTANEOUS REQUESTS" (another program using the token, or a
/// slot the tool could not see taken) waits for a slot instead of spending the row's
/// attempts: four such refusals in a row, then the row goes out.
#[test]
fn simultaneous_requests_refusals_wait_for_a_slot_without_spending_attempts() {
    let tels = colombian_mobiles(3);
    let busy = tels[1].clone();
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |r| {
        (r.telephone.as_deref() == Some(busy.as_str()) && r.attempt < 4)
            .then(Reply::simultaneous_limit)
    }));
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 3);
    let config = write_connector_config(
        dir.path(),
        "1",
        "[retry]\nbase_delay = \"10ms\"\nmax_delay = \"40ms\"\n",
    );
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(0);
    let results = read_results(&default_results_path(&input));
    assert!(results.iter().all(|l| l["status"] == "sent"), "{results:?}");
    assert_eq!(row(&results, 2)["attempts"], "5", "{results:?}");
    assert_each_delivered_once(&fake, &tels);
}

// ---------------------------------------------------------------------------------------
// Settings, not outages: certificates, proxies, hosts.

/// `send` with the CA-related variables of the machine removed (tests set their own).
fn send_tls(input: &Path, fake: &FakeWolkvox, args: &[&str]) -> assert_cmd::Command {
    let mut c = send_cmd_at_rate(input, fake, TOKEN, "1000");
    c.args(args)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    for proxy in [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        c.env_remove(proxy);
    }
    c
}

/// Every row `not_sent` (none `failed` or `unknown`): they certainly did not go out.
fn assert_all_not_sent(input: &Path, rows: usize, stderr: &str) {
    let counts = status_counts(&default_results_path(input));
    assert_eq!(counts.get("not_sent"), Some(&rows), "{counts:?}\n{stderr}");
}

/// A certificate the machine does not trust (a company's TLS inspection, say) stops the
/// run at the first request (the quota check, or the first row without it), every row
/// `not_sent`, with one message that says how to trust the CA, also with `--quiet`; once
/// the CA is trusted (`SSL_CERT_FILE`), a plain `--resume` sends every row once.
#[test]
fn an_untrusted_certificate_stops_the_run_and_resume_sends_every_row_once_trusted() {
    let ca = TestCa::new();
    for (what, args) in [
        ("quota check", vec!["--quiet"]),
        ("first row", vec!["--no-quota-check"]),
    ] {
        let fake = FakeWolkvox::start_tls(Behavior::ok(), &ca.server(&["127.0.0.1"]));
        let dir = temp_dir();
        let (input, tels) = list(dir.path(), 6);
        let config = write_connector_config(dir.path(), "1", "");
        // The same list in each case: the second is not a repeat of the first.
        let mut c = send_tls(&input, &fake, &args);
        c.arg("--config").arg(&config).arg("--allow-repeat");
        let out = run(c);
        assert_ne!(out.code, 0, "{what}: {}", out.stderr);
        assert_all_not_sent(&input, tels.len(), &out.stderr);
        assert!(
            fake.send_requests().is_empty(),
            "{what}: nothing reached the server"
        );
        let all = format!("{}{}", out.stdout, out.stderr);
        if std::env::var_os("SHOW_OUTPUT").is_some() {
            eprintln!("=== {what}\n{all}");
        }
        assert!(all.contains("certificate"), "{what}: {all}");
        assert!(all.contains("SSL_CERT_FILE"), "{what}: {all}");
        assert_eq!(
            all.matches("SSL_CERT_FILE").count(),
            1,
            "{what}: said once: {all}"
        );
        assert!(!all.contains("ERROR"), "{what}: no raw TLS errors: {all}");
        // The handshake was tried about once per token, not once per row and attempt.
        assert!(
            fake.handshakes_failed() <= 4,
            "{what}: {} handshakes",
            fake.handshakes_failed()
        );

        let ca_file = write_bytes(dir.path(), "company-ca.pem", ca.pem.as_bytes());
        let mut c = send_tls(&input, &fake, &args);
        c.arg("--config")
            .arg(&config)
            .arg("--resume")
            .arg("--allow-repeat")
            .env("SSL_CERT_FILE", &ca_file);
        let out = run(c);
        out.expect_code(0);
        let counts = status_counts(&default_results_path(&input));
        assert_eq!(counts.get("sent"), Some(&tels.len()), "{what}: {counts:?}");
        for t in &tels {
            assert_eq!(fake.requests_for(t).len(), 1, "{what}: {t} sent once");
        }
    }
}

/// A certificate for another name (a proxy that re-signs for the wrong host, a wrong
/// `--base-url`) is a setting too, and the message says so.
#[test]
fn a_certificate_for_another_name_stops_the_run_and_names_the_mismatch() {
    let ca = TestCa::new();
    let fake = FakeWolkvox::start_tls(Behavior::ok(), &ca.server(&["wv0042.wolkvox.example"]));
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 4);
    let config = write_connector_config(dir.path(), "1", "");
    let ca_file = write_bytes(dir.path(), "company-ca.pem", ca.pem.as_bytes());
    let mut c = send_tls(&input, &fake, &["--no-quota-check"]);
    c.arg("--config")
        .arg(&config)
        .env("SSL_CERT_FILE", &ca_file);
    let out = run(c);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert_all_not_sent(&input, tels.len(), &out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("--base-url"), "{all}");
    assert!(all.contains("127.0.0.1"), "names the host: {all}");
}

/// A proxy that refuses the credentials (407) stops the run before any row is used up,
/// says to fix `HTTPS_PROXY` without printing its password; with the right password, a
/// plain `--resume` goes through the proxy and sends every row once.
#[test]
fn a_proxy_refusing_the_credentials_stops_the_run_and_never_shows_the_password() {
    a_proxy_refusing_with(407, "407");
}

/// tinyproxy 1.11 refuses wrong credentials with 401, which the HTTP client reports only
/// as "tunnel error: unsuccessful": a refused tunnel is a setting too.
#[test]
fn a_proxy_refusing_the_tunnel_otherwise_stops_the_run_too() {
    a_proxy_refusing_with(401, "user and password");
}

fn a_proxy_refusing_with(status: u16, said: &str) {
    let ca = TestCa::new();
    let fake = FakeWolkvox::start_tls(Behavior::ok(), &ca.server(&["127.0.0.1"]));
    let proxy = FakeProxy::start_refusing_with("analyst", "s3cret-right", status);
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 5);
    let config = write_connector_config(dir.path(), "1", "");
    let ca_file = write_bytes(dir.path(), "company-ca.pem", ca.pem.as_bytes());
    for (what, args) in [
        ("quota check", vec![]),
        ("first row", vec!["--no-quota-check"]),
    ] {
        let mut c = send_tls(&input, &fake, &args);
        c.arg("--config")
            .arg(&config)
            .env("SSL_CERT_FILE", &ca_file)
            .env("HTTPS_PROXY", proxy.url_with("analyst", "wr0ng-pass"));
        if what == "first row" {
            c.arg("--resume");
        }
        let out = run(c);
        assert_ne!(out.code, 0, "{what}: {}", out.stderr);
        assert_all_not_sent(&input, tels.len(), &out.stderr);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains(said), "{what}: {all}");
        assert!(all.contains("HTTPS_PROXY"), "{what}: {all}");
        assert!(
            !all.contains("wr0ng-pass"),
            "{what}: the password is never shown: {all}"
        );
        assert!(
            proxy.refused() > 0 && proxy.refused() <= 4,
            "{what}: {}",
            proxy.refused()
        );
    }
    assert!(fake.requests().is_empty(), "nothing went past the proxy");
    let mut c = send_tls(&input, &fake, &[]);
    c.arg("--config")
        .arg(&config)
        .arg("--resume")
        .env("SSL_CERT_FILE", &ca_file)
        .env("HTTPS_PROXY", proxy.url_with("analyst", "s3cret-right"));
    let out = run(c);
    out.expect_code(0);
    assert!(proxy.tunnels() > 0, "went through the proxy");
    for t in &tels {
        assert_eq!(fake.requests_for(t).len(), 1, "{t} sent once");
    }
}

/// A proxy that cannot be reached (nothing listens at its port) is a setting too.
#[test]
fn a_proxy_that_cannot_be_reached_stops_the_run_with_every_row_not_sent() {
    let ca = TestCa::new();
    let fake = FakeWolkvox::start_tls(Behavior::ok(), &ca.server(&["127.0.0.1"]));
    // A port nothing listens on: bound, then closed.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 5);
    let config = write_connector_config(dir.path(), "1", "");
    let ca_file = write_bytes(dir.path(), "company-ca.pem", ca.pem.as_bytes());
    let mut c = send_tls(&input, &fake, &["--no-quota-check"]);
    c.arg("--config")
        .arg(&config)
        .env("SSL_CERT_FILE", &ca_file)
        .env("https_proxy", format!("http://{closed}"));
    let out = run(c);
    assert_ne!(out.code, 0, "{}", out.stderr);
    assert_all_not_sent(&input, tels.len(), &out.stderr);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("proxy"), "{all}");
    assert!(fake.requests().is_empty());
}

// ---------------------------------------------------------------------------------------
// Server-wide limits.

/// A gateway allowing 5 sends a second for the whole server (nginx `limit_req 5r/s`),
/// answering 429 without `Retry-After`, and 2 tokens at the default 10/s each: the
/// tokens slow down on 429s, every row is sent once and none fails, and the 429s stay
/// fewer than half the rows (without slowing down, about one per row).
#[test]
fn repeated_429s_slow_the_tokens_down_and_every_row_is_sent_once() {
    let fake = FakeWolkvox::start(Behavior::ok().server_rate(5));
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 40);
    let config = write_connector_config(dir.path(), "1", "");
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(fake.base_url())
        .arg("--no-quota-check")
        .arg("--config")
        .arg(&config)
        .env("WOLKVOX_TOKEN", format!("{TOKEN},{OTHER_TOKEN}"));
    let out = run(c);
    out.expect_code(0);
    let counts = status_counts(&default_results_path(&input));
    assert_eq!(counts.get("sent"), Some(&tels.len()), "{counts:?}");
    assert_each_delivered_once(&fake, &tels);
    if std::env::var_os("SHOW_OUTPUT").is_some() {
        eprintln!("429s: {}\n{}", fake.rate_limited(), out.stderr);
    }
    assert!(
        fake.rate_limited() < tels.len() / 2,
        "{} answers 429 for {} rows",
        fake.rate_limited(),
        tels.len()
    );
}

// ---------------------------------------------------------------------------------------
// Proxy variables.

/// A proxy variable the HTTP client cannot read (a space in the password, a broken host,
/// a scheme it does not speak) is an error that names the variable, never its password,
/// and nothing is sent: before, the tool connected directly, around the proxy.
#[test]
fn a_proxy_variable_that_cannot_be_read_is_an_error_naming_it_never_its_password() {
    let fake = FakeWolkvox::start(Behavior::ok());
    for (variable, value) in [
        ("HTTPS_PROXY", "http://analyst:pa ss-w0rd@127.0.0.1:3128"),
        ("http_proxy", "http://analyst:pa ss-w0rd@127.0.0.1:3128"),
        ("ALL_PROXY", "http://analyst:pa ss-w0rd@[127.0.0.1:3128"),
        ("HTTP_PROXY", "ftp://analyst:pa ss-w0rd@127.0.0.1:3128"),
    ] {
        let dir = temp_dir();
        let (input, _) = list(dir.path(), 3);
        let config = write_connector_config(dir.path(), "1", "");
        let mut c = send_tls(&input, &fake, &[]);
        c.arg("--config").arg(&config).env(variable, value);
        let out = run(c);
        out.expect_code(2);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(all.contains(variable), "{variable}: {all}");
        assert!(
            !all.contains("pa ss-w0rd"),
            "{variable}: the password is never shown: {all}"
        );
        assert!(
            !default_results_path(&input).exists(),
            "{variable}: nothing recorded"
        );
    }
    assert_eq!(fake.count(), 0, "nothing went around the proxy");
}
