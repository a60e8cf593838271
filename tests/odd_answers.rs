//! Odd answers, odd inputs and odd settings (issue 11): never retry what may have been
//! delivered, never send garbled text, never echo a secret. Each test drives the real
//! binary against the fake Wolkvox endpoint on 127.0.0.1; the fake's request log is the
//! witness of what was sent.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::json;

const TOKEN: &str = "tok-odd-1";

/// Three rows with distinct numbers: `(input, telephones)`.
fn three_rows(dir: &Path) -> (PathBuf, Vec<String>) {
    let tels = colombian_mobiles(3);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    (
        write_csv(dir, "contacts.csv", &contacts_csv(&rows, "1")),
        tels,
    )
}

/// A config with fast retries, so a retried answer shows up in milliseconds.
fn fast_retries(dir: &Path, extra: &str) -> PathBuf {
    write_config(
        dir,
        &format!(
            "[api]\nconnector_id = \"1\"\n{extra}\n[retry]\nmax_attempts = 3\nbase_delay = \"10ms\"\nmax_delay = \"40ms\"\n"
        ),
    )
}

// ---------------------------------------------------------------------------------------
// Answers that may mean "delivered".

/// Every 5xx but 503, and any error status whose body says 2xx, is `unknown`: one request,
/// never retried, and `--retry-failed` does not send it again.
#[test]
fn server_errors_that_may_hide_a_delivery_are_unknown_and_sent_once() {
    let cases: [(&str, Reply); 5] = [
        (
            "500 whose body says 201",
            Reply::json(500, json!({"code": 201, "error": null, "msg": MSG_SENT})),
        ),
        (
            "502 whose body says \"202\"",
            Reply::json(502, json!({"code": "202", "error": null, "msg": "ok"})),
        ),
        (
            "504 gateway page",
            Reply::raw(504, "text/html", "<html>Gateway Timeout</html>"),
        ),
        (
            "500 script error",
            Reply::api_error(500, "INTERNAL SERVER ERROR", "try later"),
        ),
        (
            "502 gateway page",
            Reply::raw(502, "text/html", "<html>Bad gateway</html>"),
        ),
    ];
    for (what, reply) in cases {
        let dir = temp_dir();
        let (input, tels) = three_rows(dir.path());
        let config = fast_retries(dir.path(), "");
        let odd = tels[1].clone();
        let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
            (req.telephone.as_deref() == Some(odd.as_str())).then(|| reply.clone())
        }));
        let mut c = send_cmd(&input, &fake, TOKEN);
        c.arg("--config").arg(&config);
        run(c).expect_code(1);
        assert_eq!(
            fake.requests_for(&tels[1]).len(),
            1,
            "{what}: a request that may have been delivered was sent again"
        );
        let results = read_results(&default_results_path(&input));
        let line = row(&results, 2);
        assert_eq!(line["status"], "unknown", "{what}: {line:?}");
        assert_eq!(line["attempts"], "1", "{what}: {line:?}");
        assert!(
            !line["msg"].contains("gave up"),
            "{what}: not a retried failure: {line:?}"
        );
        assert_eq!(row(&results, 1)["status"], "sent");
        assert_eq!(row(&results, 3)["status"], "sent");

        // --retry-failed never touches it; only --retry-unknown would.
        let again = FakeWolkvox::start(Behavior::ok());
        let mut c = send_cmd(&input, &again, TOKEN);
        c.arg("--config")
            .arg(&config)
            .arg("--resume")
            .arg("--retry-failed");
        run(c).expect_code(1);
        assert_eq!(again.send_requests().len(), 0, "{what}");
    }
}

/// 503, 429 and the "simultaneous requests" refusal prove the message was not taken: they
/// are retried, and the row ends `sent` after one delivery.
#[test]
fn only_answers_that_prove_nothing_was_taken_are_retried() {
    let dir = temp_dir();
    let (input, tels) = three_rows(dir.path());
    let config = fast_retries(dir.path(), "");
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.attempt == 0 && req.api == API_SEND_MESSAGE).then(|| match req.index % 3 {
            0 => Reply::raw(503, "text/html", "<html>Service Unavailable</html>"),
            1 => Reply::too_many_requests(0),
            _ => Reply::simultaneous_limit(),
        })
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(0);
    for tel in &tels {
        assert_eq!(fake.requests_for(tel).len(), 2, "{tel}");
    }
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, tels);
}

/// A timeout shorter than the server's work must not put a third request of one token
/// at the server: the timed-out request keeps its slot until the server answers.
#[test]
fn a_short_timeout_never_puts_more_than_two_requests_of_a_token_at_the_server() {
    let dir = temp_dir();
    let tels = colombian_mobiles(8);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let config = fast_retries(dir.path(), "timeout = \"1s\"\n");
    let slow: Vec<String> = tels[..2].to_vec();
    let fake = FakeWolkvox::start(Behavior::ok().latency(100).hook(move |req| {
        req.telephone
            .as_ref()
            .is_some_and(|t| slow.contains(t))
            .then_some(Reply::Hang(Duration::from_secs(3)))
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    assert!(
        fake.violations().is_empty(),
        "the server saw more than 2 requests of one token: {:?}",
        fake.violations()
    );
    let results = read_results(&default_results_path(&input));
    for line in &results {
        assert!(
            !line["msg"].contains("SIMULTANEOUS"),
            "a row was refused for overlapping requests: {line:?}"
        );
    }
    // The slow rows answered after the timeout: their late answer is their outcome.
    for n in [1, 2] {
        let line = row(&results, n);
        assert_eq!(line["status"], "sent", "{line:?}");
        assert!(line["msg"].contains("after the timeout"), "{line:?}");
    }
    for n in 3..=8 {
        assert_eq!(row(&results, n)["status"], "sent");
    }
    out.expect_code(0);
    for tel in &tels {
        assert_eq!(fake.requests_for(tel).len(), 1, "{tel}");
    }
}

/// `Retry-After` as an HTTP date is honoured.
#[test]
fn retry_after_as_an_http_date_is_honoured() {
    let dir = temp_dir();
    let (input, tels) = three_rows(dir.path());
    let config = fast_retries(dir.path(), "");
    let first = tels[0].clone();
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.telephone.as_deref() == Some(first.as_str()) && req.attempt == 0).then(|| {
            let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(3);
            let date = jiff::fmt::rfc2822::DateTimePrinter::new()
                .timestamp_to_rfc9110_string(&at)
                .unwrap_or_else(|_| at.to_string());
            Reply::WithHeaders {
                status: 429,
                headers: vec![("Retry-After".into(), date)],
                body: json!({"code": 429, "error": "TOO MANY REQUESTS", "msg": "SLOW DOWN"}),
            }
        })
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(0);
    let requests = fake.requests_for(&tels[0]);
    assert_eq!(requests.len(), 2);
    let gap = requests[1].started - requests[0].started;
    // The date has whole seconds: 3 s ahead is at least 2 s of waiting.
    assert!(
        gap >= Duration::from_millis(1900),
        "retried after {gap:?}, not at the date given"
    );
}

/// Odd `Retry-After` values and a capped wait are said at WARN, not silently ignored.
#[test]
fn odd_retry_after_values_are_logged_at_warn() {
    let dir = temp_dir();
    let (input, tels) = three_rows(dir.path());
    let config = fast_retries(dir.path(), "");
    let first = tels[0].clone();
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.telephone.as_deref() == Some(first.as_str()) && req.attempt < 2).then(|| {
            Reply::WithHeaders {
                status: 429,
                headers: vec![(
                    "Retry-After".into(),
                    if req.attempt == 0 { "-5" } else { "1.5" }.into(),
                )],
                body: json!({"code": 429, "error": "TOO MANY REQUESTS", "msg": "SLOW DOWN"}),
            }
        })
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(0);
    for odd in ["\"-5\"", "\"1.5\""] {
        assert!(
            out.stderr.contains(odd) && out.stderr.contains("WARN"),
            "{odd} not reported: {}",
            out.stderr
        );
    }
}

/// A redirect means the base URL or server id is wrong: the run stops at once (exit 3),
/// names the Location (without any password in it) and sends nothing more.
#[test]
fn a_redirect_stops_the_run_naming_the_location() {
    for status in [301u16, 302, 303, 307, 308] {
        let dir = temp_dir();
        let tels = colombian_mobiles(20);
        let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
        let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
        let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
            (req.api == API_SEND_MESSAGE).then(|| Reply::WithHeaders {
                status,
                headers: vec![(
                    "Location".into(),
                    "https://admin:s3cr3t@wv0042.wolkvox.com/new/".into(),
                )],
                body: serde_json::Value::Null,
            })
        }));
        let mut c = send_cmd(&input, &fake, TOKEN);
        c.arg("--config")
            .arg(write_connector_config(dir.path(), "1", ""));
        let out = run(c);
        out.expect_code(3);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains("wv0042.wolkvox.com/new/") && all.contains("base URL"),
            "{status}: {all}"
        );
        assert!(!all.contains("s3cr3t"), "{status}: password echoed: {all}");
        assert!(
            fake.send_requests().len() <= 2,
            "{status}: the run went on: {} requests",
            fake.send_requests().len()
        );
        let results = read_results(&default_results_path(&input));
        assert_eq!(results.len(), 20);
        assert!(
            results
                .iter()
                .all(|l| l["status"] == "not_sent" && !l["msg"].contains("s3cr3t")),
            "{status}: {results:?}"
        );
    }
}
