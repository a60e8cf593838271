//! Odd answers, odd inputs and odd settings (issue 11): never retry what may have been
//! delivered, never send garbled text, never echo a secret. Each test drives the real
//! binary against the fake Wolkvox endpoint on 127.0.0.1; the fake's request log is the
//! witness of what was sent.

use crate::common;

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
        c.arg("--config").arg(&config).arg("--allow-repeat");
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

// ---------------------------------------------------------------------------------------
// Settings.

/// Asserts a refusal before anything exists: exit 2, no request, no results or journal.
fn assert_refused_cleanly(out: &Run, input: &Path, fake: &FakeWolkvox, needle: &str) {
    out.expect_code(2);
    assert!(
        out.stderr.contains(needle),
        "the error does not say {needle:?}: {}",
        out.stderr
    );
    assert_eq!(fake.count(), 0, "a request went out");
    let results = default_results_path(input);
    assert!(!results.exists(), "{} was created", results.display());
    assert!(!journal_path(&results).exists(), "a journal was created");
}

#[test]
fn rates_below_one_a_day_are_refused_before_any_file_exists() {
    let dir = temp_dir();
    let (input, _) = three_rows(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    for rate in ["1e-20", "0.00001", "inf", "NaN"] {
        let mut c = send_cmd(&input, &fake, TOKEN);
        c.arg("--config")
            .arg(write_connector_config(dir.path(), "1", ""))
            .args(["--rate", rate]);
        assert_refused_cleanly(&run(c), &input, &fake, "--rate");
    }
    let config = write_connector_config(dir.path(), "1", "[limits]\nrequests_per_second = 1e-30\n");
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(fake.base_url())
        .arg("--no-quota-check")
        .arg("--config")
        .arg(&config)
        .env("WOLKVOX_TOKEN", TOKEN);
    assert_refused_cleanly(&run(c), &input, &fake, "limits.requests_per_second");
    // One a day is the floor, and it is accepted (a dry run shows the estimate).
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--dry-run")
        .args(["--rate", "0.0000116"])
        .arg("--config")
        .arg(write_connector_config(dir.path(), "1", ""));
    run(c).expect_code(0);
}

#[test]
fn a_password_in_the_base_url_is_refused_and_never_repeated() {
    let dir = temp_dir();
    let (input, _) = three_rows(dir.path());
    let summary = dir.path().join("summary.json");
    for url in [
        "http://user:hunter2pw@127.0.0.1:9/",
        "ftp://user:hunter2pw@127.0.0.1/",
        "user:hunter2pw@127.0.0.1",
        "http://hunter2pw@127.0.0.1/",
    ] {
        let mut c = cmd();
        c.arg("send")
            .arg(&input)
            .args(["--base-url", url])
            .arg("--summary-json")
            .arg(&summary)
            .arg("--config")
            .arg(write_connector_config(dir.path(), "1", ""))
            .env("WOLKVOX_TOKEN", TOKEN);
        let out = run(c);
        out.expect_code(2);
        assert!(out.stderr.contains("--base-url"), "{url}: {}", out.stderr);
        assert!(
            !out.stderr.contains("hunter2pw") && !out.stdout.contains("hunter2pw"),
            "{url}: {}",
            out.stderr
        );
        let json = std::fs::read_to_string(&summary).unwrap_or_default();
        assert!(!json.contains("hunter2pw"), "{url}: {json}");
    }
    // The same in the config file, named by its key.
    let config = write_connector_config(
        dir.path(),
        "1",
        "base_url = \"https://admin:hunter2pw@wv0042.wolkvox.com\"\n",
    );
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--config")
        .arg(&config)
        .env("WOLKVOX_TOKEN", TOKEN);
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("api.base_url"), "{}", out.stderr);
    assert!(!out.stderr.contains("hunter2pw"), "{}", out.stderr);
}

#[test]
fn connector_ids_must_be_short_words_and_timeouts_at_least_a_second() {
    let dir = temp_dir();
    let (input, _) = three_rows(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    for (extra, key) in [
        ("timeout = \"1ns\"\n", "api.timeout"),
        ("timeout = \"999ms\"\n", "api.timeout"),
    ] {
        let mut c = send_cmd(&input, &fake, TOKEN);
        c.arg("--config")
            .arg(write_connector_config(dir.path(), "1", extra));
        assert_refused_cleanly(&run(c), &input, &fake, key);
    }
    for id in ["7\\n8", "1 2", "a\\\"b", &"9".repeat(65)] {
        let mut c = send_cmd(&input, &fake, TOKEN);
        c.arg("--config").arg(write_config(
            dir.path(),
            &format!("[api]\nconnector_id = \"{id}\"\n"),
        ));
        assert_refused_cleanly(&run(c), &input, &fake, "api.connector_id");
    }
    // A connector_id cell that is not an id makes its row invalid; the others go out.
    let list = write_csv(
        dir.path(),
        "cells.csv",
        "telephone,message,connector_id\n573001230000,Hola,\"7\n8\"\n573001230001,Hola,conn-1_b\n",
    );
    let out = run(send_cmd(&list, &fake, TOKEN));
    out.expect_code(4);
    let results = read_results(&default_results_path(&list));
    assert_eq!(row(&results, 1)["status"], "invalid");
    assert!(row(&results, 1)["msg"].contains("connector"), "{results:?}");
    assert_eq!(row(&results, 2)["status"], "sent");
    let sent = fake.send_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["connector_id"], "conn-1_b");
}

#[cfg(unix)]
#[test]
fn results_through_a_symlink_or_onto_the_input_are_refused() {
    let dir = temp_dir();
    let (input, _) = three_rows(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    let config = write_connector_config(dir.path(), "1", "");
    // A dangling link: following it would create the target.
    let target = dir.path().join("elsewhere.csv");
    let link = dir.path().join("link.csv");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    for dry in [false, true] {
        let mut c = send_cmd(&input, &fake, TOKEN);
        c.arg("--config").arg(&config).arg("--results").arg(&link);
        if dry {
            c.arg("--dry-run");
        }
        let out = run(c);
        out.expect_code(2);
        assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
        assert!(!target.exists(), "the link was followed");
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink(),
            "the link was replaced"
        );
    }
    // A link planted where the journal goes.
    let results = dir.path().join("r.csv");
    std::os::unix::fs::symlink(&target, journal_path(&results)).unwrap();
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config")
        .arg(&config)
        .arg("--results")
        .arg(&results);
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("symbolic link"), "{}", out.stderr);
    assert!(!target.exists() && !results.exists());
    // The input list itself, by another spelling of its path.
    let before = std::fs::read(&input).unwrap();
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config")
        .arg(&config)
        .arg("--results")
        .arg(dir.path().join(".").join("contacts.csv"));
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("is the input list"), "{}", out.stderr);
    assert_eq!(std::fs::read(&input).unwrap(), before);
    assert_eq!(fake.count(), 0);
}

// ---------------------------------------------------------------------------------------
// Inputs.

/// Escape sequences in a header or a cell reach neither the terminal nor the results raw.
#[test]
fn terminal_escapes_in_the_list_are_printed_escaped() {
    let dir = temp_dir();
    let hostile = write_bytes(
        dir.path(),
        "hostile.csv",
        b"\x1b]0;PWNED\x07nombre,cel\nAna,573001230000\n",
    );
    for sub in ["validate", "send"] {
        let mut c = cmd();
        c.arg(sub).arg(&hostile);
        if sub == "send" {
            c.arg("--dry-run");
        }
        let out = run(c);
        out.expect_code(2);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !all.contains('\x1b') && !all.contains('\x07'),
            "{sub}: {all:?}"
        );
        assert!(
            all.contains("PWNED"),
            "{sub}: the header is still named: {all}"
        );
    }
    // A telephone cell with escapes: an invalid row, escaped everywhere it shows.
    let list = write_bytes(
        dir.path(),
        "cells.csv",
        b"telephone,message,connector_id\n\"\x1b[2J\x1b]0;PWNED\x07573\",Hola,1\n573001230001,Hola,1\n",
    );
    let mut c = cmd();
    c.arg("validate").arg(&list);
    let out = run(c);
    out.expect_code(1);
    assert!(
        !out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'),
        "{out:?}"
    );
    let mut c = cmd();
    c.arg("send").arg(&list).arg("--dry-run");
    let out = run(c);
    assert!(
        !out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'),
        "{out:?}"
    );
    let results = std::fs::read_to_string(default_dry_run_path(&list)).unwrap();
    assert!(
        !results.chars().any(|c| c.is_control() && c != '\n'),
        "{results:?}"
    );
    // Random bytes print no raw control byte either.
    let noise: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let junk = write_bytes(dir.path(), "junk.csv", &noise);
    for sub in ["validate", "send"] {
        let mut c = cmd();
        c.arg(sub).arg(&junk);
        if sub == "send" {
            c.arg("--dry-run");
        }
        let out = run(c);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            !all.chars().any(|c| c.is_control() && c != '\n'),
            "{sub}: {all:?}"
        );
    }
}

/// One row UTF-8, one Windows-1252: refused before anything is sent, naming the row and
/// column that is not UTF-8, wherever in the file the two meet.
#[test]
fn a_file_that_mixes_encodings_is_refused_before_anything_is_sent() {
    let dir = temp_dir();
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut far = b"telephone,message,connector_id\n573001234567,hola se\xc3\xb1ora,1\n".to_vec();
    for i in 0..3000 {
        far.extend_from_slice(format!("57300124{i:04},hola,1\n").as_bytes());
    }
    far.extend_from_slice(b"573001234568,hola \xe9 mundo,1\n");
    let cases: [(&str, Vec<u8>, &str); 2] = [
        (
            "near.csv",
            b"telephone,message,connector_id\n573001234567,hola se\xc3\xb1ora,1\n573001234568,hola \xe9 mundo,1\n".to_vec(),
            "row 3, column 2",
        ),
        ("far.csv", far, "row 3003, column 2"),
    ];
    for (name, bytes, place) in cases {
        let input = write_bytes(dir.path(), name, &bytes);
        let mut c = cmd();
        c.arg("validate").arg(&input);
        let out = run(c);
        out.expect_code(2);
        assert!(
            out.stderr.contains(place) && out.stderr.contains("mixes encodings"),
            "{name}: {}",
            out.stderr
        );
        let out = run(send_cmd(&input, &fake, TOKEN));
        out.expect_code(2);
        assert!(out.stderr.contains(place), "{name}: {}", out.stderr);
        assert_eq!(fake.count(), 0, "{name}: something was sent");
        assert!(!default_results_path(&input).exists());
    }
    // A file wholly in Windows-1252 is still read, and sent as the right text.
    let legacy = write_bytes(
        dir.path(),
        "legacy.csv",
        b"telephone,message,connector_id\n573001234567,hola se\xf1ora,1\n",
    );
    run(send_cmd(&legacy, &fake, TOKEN)).expect_code(0);
    assert_eq!(fake.send_requests()[0].body["message"], "hola se\u{f1}ora");
}

/// A huge cell makes its row invalid without being read whole; the rows after it are
/// read and sent, and a huge header refuses the file.
#[test]
fn a_huge_cell_makes_its_row_invalid_and_a_huge_header_refuses_the_file() {
    let dir = temp_dir();
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut text = b"telephone,message,connector_id\n573001234567,\"".to_vec();
    text.extend(std::iter::repeat_n(b'x', 20 * 1024 * 1024));
    text.extend_from_slice(b"\n\"\"more\",1\n573001234568,hola,1\n");
    let input = write_bytes(dir.path(), "huge.csv", &text);
    drop(text);
    let out = run(send_cmd(&input, &fake, TOKEN));
    out.expect_code(4);
    let results = read_results(&default_results_path(&input));
    assert_eq!(results.len(), 2);
    let cut = row(&results, 1);
    assert_eq!(cut["status"], "invalid");
    assert!(cut["msg"].contains("longer than"), "{cut:?}");
    assert_eq!(row(&results, 2)["status"], "sent");
    assert_eq!(fake.delivered_telephones(), ["573001234568"]);

    let mut header = vec![b'h'; 20 * 1024 * 1024];
    header.extend_from_slice(b",telephone\n1,573001234567\n");
    let input = write_bytes(dir.path(), "huge-header.csv", &header);
    let mut c = cmd();
    c.arg("validate").arg(&input);
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("header line is longer"),
        "{}",
        out.stderr
    );
}

/// A request that hangs must not hold back the row its worker took ahead while the
/// other worker runs out of rows: after a second the row is given back and sent by the
/// other worker, not after the hung request (20 s here, under the 60 s timeout).
#[test]
fn a_row_taken_ahead_does_not_wait_behind_a_hung_request() {
    let dir = temp_dir();
    let tels = colombian_mobiles(8);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    // The third request to arrive hangs: by then its worker has taken its next row.
    let fake = FakeWolkvox::start(
        Behavior::ok()
            .latency(20)
            .hook(|req| (req.index == 2).then_some(Reply::Hang(Duration::from_secs(20)))),
    );
    let spawned = spawn_send(&input, &fake, TOKEN, &[]);
    let every_other_row_sent = fake.wait_for_requests(tels.len(), Duration::from_secs(10));
    spawned.kill_9();
    assert!(
        every_other_row_sent,
        "rows waited behind the hung request: {} of {} requests arrived",
        fake.requests().len(),
        tels.len()
    );
    for tel in &tels {
        assert_eq!(fake.requests_for(tel).len(), 1, "{tel}");
    }
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
}
