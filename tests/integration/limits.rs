//! Speed and limits through the real binary against the fake endpoint: the pre-flight
//! quota check (`token_info`), `--partial`, tokens retired when their quota runs out,
//! `--summary-json`, and the `--rate` guarantee. Timing is checked from the fake's
//! request timestamps, never by how long a test took.

use crate::common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const A: &str = "tok-a";
const B: &str = "tok-b";

/// `n` rows with distinct realistic numbers.
fn list(dir: &Path, n: usize) -> std::path::PathBuf {
    let phones = colombian_mobiles(n);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola 👋")).collect();
    write_csv(dir, "list.csv", &contacts_csv(&rows, "1"))
}

fn token_info_calls(fake: &FakeWolkvox) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.api == API_TOKEN_INFO)
        .count()
}

fn count(results: &[HashMap<String, String>], status: &str) -> usize {
    results.iter().filter(|r| r["status"] == status).count()
}

/// Requests with this token answered TOKEN LIMIT EXCEEDED.
fn refused_for_quota(fake: &FakeWolkvox, token: &str) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.token.as_deref() == Some(token) && r.status == 403)
        .count()
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

// ---------------------------------------------------------------------------------------
// The pre-flight quota check.

#[test]
fn a_list_larger_than_todays_quota_is_refused_before_any_message() {
    let dir = temp_dir();
    let input = list(dir.path(), 10);
    // 5 calls a day: the check uses 1, and leaves one more aside: 3 fit.
    let fake = FakeWolkvox::start(Behavior::ok().quota(A, 5));
    let out = run(send_cmd_checking_quota(&input, &fake, A));
    out.expect_code(2);
    assert!(fake.send_requests().is_empty(), "nothing may be sent");
    assert_eq!(token_info_calls(&fake), 1);
    assert!(
        out.stderr.contains("allows 3 more requests on 1 token")
            && out.stderr.contains("10 rows")
            && out.stderr.contains("--partial"),
        "{}",
        out.stderr
    );
    // Nothing is left in the way of running the same command again.
    let results = default_results_path(&input);
    assert!(!results.exists() && !journal_path(&results).exists());
}

#[test]
fn partial_sends_what_fits_and_records_the_rest_not_sent() {
    let dir = temp_dir();
    let input = list(dir.path(), 10);
    let fake = FakeWolkvox::start(Behavior::ok().quota(A, 5));
    let mut c = send_cmd_checking_quota(&input, &fake, A);
    c.arg("--partial");
    let out = run(c);
    out.expect_code(3);
    let sends = fake.send_requests();
    assert_eq!(sends.len(), 3);
    let results = read_results(&default_results_path(&input));
    let statuses = statuses_by_row(&results);
    for n in 1..=3 {
        assert_eq!(statuses[&n], "sent", "row {n}");
    }
    for n in 4..=10 {
        assert_eq!(statuses[&n], "not_sent", "row {n}");
        assert!(
            row(&results, n)["msg"].contains("quota"),
            "{:?}",
            row(&results, n)
        );
    }
    assert!(
        out.stdout.contains("renews tomorrow") && out.stdout.contains("--resume"),
        "{}",
        out.stdout
    );
    // No request was answered TOKEN LIMIT EXCEEDED: the cut was made before sending.
    assert_eq!(refused_for_quota(&fake, A), 0);
}

#[test]
fn quotas_add_up_over_tokens_and_every_token_is_asked_once() {
    let dir = temp_dir();
    let input = list(dir.path(), 10);
    // 3 + 7 = 10 fit.
    let fake = FakeWolkvox::start(Behavior::ok().quota(A, 5).quota(B, 9));
    let out = run(send_cmd_checking_quota(&input, &fake, &format!("{A},{B}")));
    out.expect_code(0);
    // The split between the tokens is not planned (rows go to whichever is free), so a
    // token may still run out mid-run: its row then goes to the other.
    assert_eq!(fake.delivered_telephones().len(), 10);
    assert_eq!(token_info_calls(&fake), 2);
    let asked: Vec<Option<String>> = fake
        .requests()
        .iter()
        .filter(|r| r.api == API_TOKEN_INFO)
        .map(|r| r.token.clone())
        .collect();
    assert!(asked.contains(&Some(A.into())) && asked.contains(&Some(B.into())));
}

#[test]
fn no_quota_check_skips_token_info() {
    let dir = temp_dir();
    let input = list(dir.path(), 4);
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, A)).expect_code(0);
    assert_eq!(token_info_calls(&fake), 0);
    assert_eq!(fake.count(), 4);
}

#[test]
fn nothing_to_send_spends_no_call_on_the_check() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "list.csv",
        &contacts_csv(&[("5.73E+11", "Hola"), ("12", "Hola")], "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd_checking_quota(&input, &fake, A)).expect_code(4);
    assert_eq!(fake.count(), 0);
}

#[test]
fn an_unreadable_token_info_is_a_warning_and_the_run_goes_on() {
    let dir = temp_dir();
    let input = list(dir.path(), 4);
    let fake = FakeWolkvox::start(Behavior::ok().hook(|r| {
        (r.api == API_TOKEN_INFO).then(|| {
            Reply::json(
                200,
                json!({"code": 200, "data": {"licences": 3, "quota": "plenty"}}),
            )
        })
    }));
    let out = run(send_cmd_checking_quota(&input, &fake, A));
    out.expect_code(0);
    assert!(
        out.stderr.contains("cannot read today's quota of token #1"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.send_requests().len(), 4);
}

#[test]
fn a_token_refused_by_token_info_is_dropped_and_none_left_sends_nothing() {
    let dir = temp_dir();
    let input = list(dir.path(), 4);
    let fake = FakeWolkvox::start(Behavior::ok().valid_tokens([A]));
    let out = run(send_cmd_checking_quota(
        &input,
        &fake,
        &format!("bad-token,{A}"),
    ));
    out.expect_code(0);
    assert!(
        out.stderr.contains("token #1 refused by token_info"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("bad-token"),
        "the token itself is never shown"
    );
    let sends = fake.send_requests();
    assert_eq!(sends.len(), 4);
    assert!(sends.iter().all(|r| r.token.as_deref() == Some(A)));

    let dir = temp_dir();
    let input = list(dir.path(), 4);
    let mut c = send_cmd_checking_quota(&input, &fake, "bad-token");
    c.arg("--allow-repeat");
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("no token can send today"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.send_requests().len(), 4, "no new send request");
}

// ---------------------------------------------------------------------------------------
// A quota that runs out during the run.

#[test]
fn a_spent_token_is_not_called_again_and_the_others_carry_on() {
    let dir = temp_dir();
    let input = list(dir.path(), 30);
    let fake = FakeWolkvox::start(Behavior::ok().latency(2).quota(A, 4));
    let out = run(send_cmd(&input, &fake, &format!("{A},{B}")));
    out.expect_code(0);
    let delivered = fake.delivered_telephones();
    assert_eq!(delivered.len(), 30);
    // After the first TOKEN LIMIT EXCEEDED, at most the request already in flight on
    // the token's other connection reaches it.
    let refused = refused_for_quota(&fake, A);
    assert!(
        (1..=2).contains(&refused),
        "{refused} refusals for the spent token"
    );
    fake.assert_no_overlap_violation();
}

#[test]
fn when_every_quota_is_spent_the_rest_waits_for_tomorrow() {
    let dir = temp_dir();
    let input = list(dir.path(), 10);
    let fake = FakeWolkvox::start(Behavior::ok().latency(2).quota(A, 5));
    let out = run(send_cmd(&input, &fake, A));
    out.expect_code(3);
    assert!(
        out.stdout.contains("renews tomorrow") && out.stdout.contains("--resume"),
        "{}",
        out.stdout
    );
    let results = read_results(&default_results_path(&input));
    assert_eq!(count(&results, "sent"), 5);
    assert_eq!(count(&results, "not_sent"), 5);
    assert!(
        results
            .iter()
            .filter(|r| r["status"] == "not_sent")
            .all(|r| r["msg"].contains("renews tomorrow")),
        "{results:?}"
    );
    assert!(refused_for_quota(&fake, A) <= 2);
}

// ---------------------------------------------------------------------------------------
// --summary-json.

#[test]
fn the_summary_json_has_every_status_and_the_run_figures() {
    let dir = temp_dir();
    let phones = colombian_mobiles(3);
    let input = write_csv(
        dir.path(),
        "list.csv",
        &contacts_csv(
            &[
                (phones[0].as_str(), "Hola"),
                ("5.73E+11", "Hola"),
                (phones[1].as_str(), "Hola"),
                (phones[1].as_str(), "Hola"),
            ],
            "1",
        ),
    );
    let summary = dir.path().join("summary.json");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, A);
    c.arg("--summary-json").arg(&summary);
    let out = run(c);
    out.expect_code(4);
    let json = read_json(&summary);
    let counts = json["counts"].as_object().expect("counts");
    let expected = [
        ("sent", 2),
        ("failed", 0),
        ("unknown", 0),
        ("invalid", 1),
        ("duplicate", 1),
        ("suppressed", 0),
        ("not_sent", 0),
        ("dry_run", 0),
        ("held", 0),
    ];
    for (status, n) in expected {
        assert_eq!(counts.get(status), Some(&json!(n)), "{status}: {json}");
    }
    assert_eq!(counts.len(), expected.len(), "{json}");
    assert_eq!(json["rows"], 4);
    assert_eq!(json["exit_code"], 4);
    assert_eq!(json["stopped"], Value::Null);
    assert_eq!(json["error"], Value::Null);
    assert_eq!(json["dry_run"], false);
    assert_eq!(
        json["results"].as_str().map(Path::new),
        Some(default_results_path(&input).as_path())
    );
    assert!(json["elapsed_s"].as_f64().is_some_and(|s| s >= 0.0));
    assert!(json["messages_per_second"].as_f64().is_some());
    for key in ["started_at", "finished_at"] {
        let text = json[key].as_str().unwrap_or_default();
        assert!(text.parse::<jiff::Timestamp>().is_ok(), "{key}: {text:?}");
    }
    assert!(!dir.path().join("summary.json.tmp").exists());
}

#[test]
fn the_summary_json_is_written_for_stops_dry_runs_and_errors() {
    let dir = temp_dir();
    let input = list(dir.path(), 6);
    let summary = dir.path().join("s.json");

    // Stopped: every quota spent.
    let fake = FakeWolkvox::start(Behavior::ok().quota(A, 2));
    let mut c = send_cmd(&input, &fake, A);
    c.arg("--summary-json").arg(&summary);
    run(c).expect_code(3);
    let json = read_json(&summary);
    assert_eq!(json["exit_code"], 3);
    assert_eq!(json["counts"]["sent"], 2);
    assert_eq!(json["counts"]["not_sent"], 4);
    assert!(
        json["stopped"]
            .as_str()
            .is_some_and(|s| s.contains("renews tomorrow")),
        "{json}"
    );

    // Dry run.
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--dry-run")
        .arg("--summary-json")
        .arg(&summary);
    run(c).expect_code(0);
    let json = read_json(&summary);
    assert_eq!(json["dry_run"], true);
    assert_eq!(json["counts"]["dry_run"], 6);
    assert_eq!(json["exit_code"], 0);

    // An error before sending: the results of the first run are in the way.
    let mut c = send_cmd(&input, &fake, A);
    c.arg("--summary-json").arg(&summary);
    let out = run(c);
    out.expect_code(2);
    let json = read_json(&summary);
    assert_eq!(json["exit_code"], 2);
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("already exists")),
        "{json}"
    );
    assert_eq!(json["counts"]["sent"], 0);
}

// ---------------------------------------------------------------------------------------
// --rate.

#[test]
fn no_one_second_window_sees_more_requests_than_the_rate() {
    let dir = temp_dir();
    let input = list(dir.path(), 12);
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(fake.base_url())
        .args(["--rate", "5", "--no-quota-check"])
        .env("WOLKVOX_TOKEN", A);
    run(c).expect_code(0);
    let mut starts: Vec<_> = fake.send_requests().iter().map(|r| r.started).collect();
    assert_eq!(starts.len(), 12);
    starts.sort();
    // Every closed window [t, t + 1 s] that starts at a request.
    for (i, start) in starts.iter().enumerate() {
        let in_window = starts[i..]
            .iter()
            .take_while(|&&t| t.duration_since(*start) <= Duration::from_secs(1))
            .count();
        assert!(
            in_window <= 5,
            "{in_window} requests within 1 s from request {i}: {:?}",
            starts
                .iter()
                .map(|t| t.duration_since(starts[0]))
                .collect::<Vec<_>>()
        );
    }
}
