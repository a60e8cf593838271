//! Never send a message twice, never lose a row: retries, interruptions and resume,
//! driving the real binary against the fake Wolkvox endpoint on 127.0.0.1.
//!
//! The fake's request log is the witness: a telephone that reaches it twice was sent
//! twice. Runs that must be interrupted are spawned with `std::process::Command` and
//! stopped with `kill -INT` or SIGKILL (`Child::kill`) at a moment chosen from the
//! endpoint's own request count. Random moments print their seed so a failure can be
//! replayed with `RESILIENCE_SEED`.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

const TOKEN: &str = "tok-res-1";
const OTHER_TOKEN: &str = "tok-res-2";

/// `n` rows `telephone,message,connector_id` with distinct Colombian mobiles.
fn list(dir: &Path, n: usize) -> (PathBuf, Vec<String>) {
    let tels = colombian_mobiles(n);
    let rows: Vec<(&str, &str)> = tels
        .iter()
        .map(|t| (t.as_str(), "Hola, ¿cómo estás?"))
        .collect();
    let input = write_csv(dir, "contacts.csv", &contacts_csv(&rows, "1"));
    (input, tels)
}

/// A config with fast retries (10 ms base delay) plus any extra `[retry]` keys.
fn fast_retry_config(dir: &Path, extra: &str) -> PathBuf {
    write_config(
        dir,
        &format!(
            "[api]\nconnector_id = \"1\"\n\n[retry]\nbase_delay = \"10ms\"\nmax_delay = \"40ms\"\n{extra}"
        ),
    )
}

fn send(input: &Path, fake: &FakeWolkvox, tokens: &str, args: &[&str]) -> Run {
    let mut c = send_cmd(input, fake, tokens);
    c.args(args);
    run(c)
}

/// Status of each telephone in the results file (panics if a row appears twice).
fn status_by_telephone(results: &Path) -> HashMap<String, String> {
    let lines = read_results(results);
    statuses_by_row(&lines);
    lines
        .into_iter()
        .map(|l| (l["telephone"].clone(), l["status"].clone()))
        .collect()
}

/// Every telephone the endpoint received at most once, whatever the answer.
fn assert_no_telephone_twice(fake: &FakeWolkvox) {
    let mut seen = HashMap::<String, usize>::new();
    for r in fake.send_requests() {
        if let Some(t) = r.telephone {
            *seen.entry(t).or_default() += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "telephones sent more than once: {twice:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Spawned runs, signals.

// ---------------------------------------------------------------------------------------
// Retries.

#[test]
fn bursts_of_5xx_and_429_end_sent_within_the_attempt_budget() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 30);
    let config = fast_retry_config(dir.path(), "max_attempts = 3\n");
    let fake = FakeWolkvox::start(Behavior::ok().latency(2).hook(|req| {
        let n = req.index;
        match req.attempt {
            // Every first attempt fails: a burst of every kind of "certainly not delivered".
            0 => Some(match n % 4 {
                0 => Reply::simultaneous_limit(),
                1 => Reply::raw(503, "text/html", "<html>Service unavailable</html>"),
                2 => Reply::api_error(503, "SERVICE UNAVAILABLE", "maintenance"),
                _ => Reply::too_many_requests(0),
            }),
            // Some second attempts too.
            1 if n % 3 == 0 => Some(Reply::api_error(503, "SERVICE UNAVAILABLE", "still")),
            _ => None,
        }
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(0);

    let results = read_results(&default_results_path(&input));
    assert_eq!(results.len(), 30);
    for line in &results {
        assert_eq!(line["status"], "sent", "{line:?}");
        let requests = fake.requests_for(&line["telephone"]).len();
        assert!((2..=3).contains(&requests), "{line:?}: {requests} requests");
        assert_eq!(line["attempts"], requests.to_string(), "{line:?}");
    }
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, tels, "each row delivered exactly once");
    fake.assert_no_overlap_violation();
}

#[test]
fn a_row_that_keeps_failing_is_failed_with_the_last_answer_and_only_retry_failed_resends_it() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 3);
    let config = fast_retry_config(dir.path(), "max_attempts = 3\n");
    let stubborn = tels[1].clone();
    let hook_tel = stubborn.clone();
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.telephone.as_deref() == Some(hook_tel.as_str()))
            .then(|| Reply::api_error(503, "SERVICE UNAVAILABLE", "backend overloaded"))
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(1);
    let results = read_results(&default_results_path(&input));
    let line = row(&results, 2);
    assert_eq!(line["status"], "failed", "{line:?}");
    assert_eq!(line["attempts"], "3");
    assert_eq!(line["http_status"], "503");
    assert_eq!(line["code"], "503");
    assert_eq!(line["error"], "SERVICE UNAVAILABLE");
    assert!(
        line["msg"].contains("backend overloaded") && line["msg"].contains("3 attempts"),
        "{line:?}"
    );
    assert_eq!(fake.requests_for(&stubborn).len(), 3);

    // A plain resume leaves the failed row alone; --retry-failed sends it (and only it).
    let again = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &again, TOKEN);
    c.arg("--config").arg(&config).arg("--resume");
    run(c).expect_code(1);
    assert_eq!(again.count(), 0);
    let mut c = send_cmd(&input, &again, TOKEN);
    c.arg("--config")
        .arg(&config)
        .args(["--resume", "--retry-failed"]);
    run(c).expect_code(0);
    assert_eq!(again.delivered_telephones(), [stubborn]);
    let statuses = status_by_telephone(&default_results_path(&input));
    assert!(statuses.values().all(|s| s == "sent"), "{statuses:?}");
}

#[test]
fn a_body_level_refusal_is_one_request_and_failed() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 3);
    let config = fast_retry_config(dir.path(), "max_attempts = 5\n");
    let refused = tels[0].clone();
    let hook_tel = refused.clone();
    // An undocumented refusal of this message (the 24-hour window is closed): final.
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.telephone.as_deref() == Some(hook_tel.as_str())).then(|| {
            Reply::json(
                400,
                json!({"code": 470, "error": "BAD REQUEST", "msg": "=HYPERLINK(\"x\") conversation window closed"}),
            )
        })
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(1);
    assert_eq!(
        fake.requests_for(&refused).len(),
        1,
        "a refusal is not retried"
    );
    let results = read_results(&default_results_path(&input));
    let line = row(&results, 1);
    assert_eq!(line["status"], "failed", "{line:?}");
    assert_eq!(line["attempts"], "1");
    assert_eq!(line["http_status"], "400");
    assert_eq!(line["code"], "470");
    // The server's text is kept, neutralized for spreadsheets.
    assert!(line["msg"].starts_with("'=HYPERLINK"), "{line:?}");
    assert_eq!(row(&results, 2)["status"], "sent");
}

#[test]
fn a_token_rejected_between_retries_hands_the_row_over_or_stops_the_run() {
    // Two tokens: the first is busy, then refused; its row goes through the second.
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 6);
    let config = fast_retry_config(dir.path(), "max_attempts = 3\n");
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.token.as_deref() == Some(TOKEN)).then(|| {
            if req.attempt == 0 {
                Reply::simultaneous_limit()
            } else {
                Reply::validate_token()
            }
        })
    }));
    let mut c = send_cmd(&input, &fake, &format!("{TOKEN},{OTHER_TOKEN}"));
    c.arg("--config").arg(&config);
    run(c).expect_code(0);
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, tels);
    assert!(
        fake.delivered()
            .iter()
            .all(|r| r.token.as_deref() == Some(OTHER_TOKEN))
    );
    fake.assert_no_overlap_violation();

    // One token: the run stops after a couple of requests; nothing is lost or sent.
    let dir = temp_dir();
    let (input, _) = list(dir.path(), 6);
    let config = fast_retry_config(dir.path(), "max_attempts = 3\n");
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        Some(if req.attempt == 0 {
            Reply::simultaneous_limit()
        } else {
            Reply::validate_token()
        })
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config).arg("--allow-repeat");
    let out = run(c);
    out.expect_code(3);
    assert!(fake.count() <= 4, "{} requests", fake.count());
    let results = read_results(&default_results_path(&input));
    assert_eq!(results.len(), 6);
    assert!(
        results.iter().all(|l| l["status"] == "not_sent"),
        "{results:?}"
    );
    assert!(
        out.stdout
            .contains("To continue, run: wolkvox-dispatch send")
            && out.stdout.contains("--resume")
            && out.stdout.contains(&fake.base_url()),
        "the resume command, with --base-url:\n{}",
        out.stdout
    );
}

#[test]
fn a_service_that_is_down_stops_the_run_and_says_how_to_resume() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 20);
    // More attempts per row than failures in a row: no row uses up its attempts first.
    let config = fast_retry_config(
        dir.path(),
        "max_attempts = 9\nmax_consecutive_failures = 4\n",
    );
    let down = FakeWolkvox::start(
        Behavior::ok().hook(|_| Some(Reply::api_error(503, "SERVICE UNAVAILABLE", "down"))),
    );
    let mut c = send_cmd(&input, &down, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(3);
    assert!(out.stdout.contains("service looks down"), "{}", out.stdout);
    assert!(out.stdout.contains("To continue, run:"), "{}", out.stdout);
    assert!(down.delivered().is_empty());
    assert!(down.count() <= 6, "{} requests", down.count());
    let statuses = status_by_telephone(&default_results_path(&input));
    assert!(statuses.values().all(|s| s == "not_sent"), "{statuses:?}");

    // Every row was certainly not delivered, so the resume sends each once.
    let up = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &up, TOKEN);
    c.arg("--config").arg(&config).arg("--resume");
    run(c).expect_code(0);
    let mut delivered = up.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, tels);
}

// ---------------------------------------------------------------------------------------
// Unknown outcomes.

#[test]
fn dropped_connections_are_unknown_and_only_retry_unknown_sends_them_again() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 6);
    let config = fast_retry_config(dir.path(), "max_attempts = 3\n");
    let dropped: HashSet<String> = [tels[1].clone(), tels[4].clone()].into();
    let hook_dropped = dropped.clone();
    // The same endpoint for every run: its log sees every request ever made.
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.attempt == 0 && hook_dropped.contains(req.telephone.as_deref().unwrap_or("")))
            .then_some(Reply::DropConnection)
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(1);
    let results = default_results_path(&input);
    for (tel, status) in status_by_telephone(&results) {
        let want = if dropped.contains(&tel) {
            "unknown"
        } else {
            "sent"
        };
        assert_eq!(status, want, "{tel}");
    }
    assert_no_telephone_twice(&fake);

    // --resume: nothing to send (the unknown rows may have been delivered).
    let before = fake.count();
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config).arg("--resume");
    let out = run(c);
    out.expect_code(1);
    assert_eq!(fake.count(), before, "--resume sent again: {}", out.stderr);
    assert!(
        out.stdout.contains("skipped") && out.stdout.contains("already done"),
        "{}",
        out.stdout
    );

    // --resume --retry-unknown: exactly the unknown rows, once more.
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config")
        .arg(&config)
        .args(["--resume", "--retry-unknown"]);
    run(c).expect_code(0);
    let again: HashSet<String> = fake.send_requests()[before..]
        .iter()
        .filter_map(|r| r.telephone.clone())
        .collect();
    assert_eq!(again, dropped);
    assert_eq!(fake.count(), before + dropped.len());
    assert!(status_by_telephone(&results).values().all(|s| s == "sent"));

    // --retry-unknown with nothing unknown left: nothing sent, all is well.
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config")
        .arg(&config)
        .args(["--resume", "--retry-unknown"]);
    let out = run(c);
    out.expect_code(0);
    assert_eq!(fake.count(), before + dropped.len());
    assert!(out.stdout.contains("skipped"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------
// Interruptions.

#[test]
fn sigint_stops_with_exit_3_and_every_row_recorded_then_resume_completes() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 60);
    let fake = FakeWolkvox::start(Behavior::ok().latency(30));
    let spawned = spawn_send(&input, &fake, TOKEN, &[]);
    assert!(
        fake.wait_for_requests(8, Duration::from_secs(20)),
        "never started"
    );
    spawned.signal("INT");
    let (_, out) = spawned.wait(Duration::from_secs(20));
    out.expect_code(3);
    assert!(
        out.stdout.contains("interrupted") && out.stdout.contains("To continue, run:"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("refused"), "{}", out.stdout);

    let results = default_results_path(&input);
    let lines = read_results(&results);
    assert_eq!(lines.len(), 60, "no row may be missing");
    let requested: HashSet<String> = fake
        .send_requests()
        .iter()
        .filter_map(|r| r.telephone.clone())
        .collect();
    for line in &lines {
        // Requests in flight were allowed to finish: nothing is left unknown.
        let want = if requested.contains(&line["telephone"]) {
            "sent"
        } else {
            "not_sent"
        };
        assert_eq!(line["status"], want, "{line:?}");
        if want == "not_sent" {
            assert!(line["msg"].contains("interrupted"), "{line:?}");
        }
    }
    assert!(requested.len() < 60, "the run was not interrupted");

    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--resume");
    let out = run(c);
    out.expect_code(0);
    assert!(out.stdout.contains("skipped"), "{}", out.stdout);
    assert_no_telephone_twice(&fake);
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, tels);
    assert!(status_by_telephone(&results).values().all(|s| s == "sent"));
}

#[test]
fn a_second_ctrl_c_exits_at_once_and_the_rows_in_flight_become_unknown() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 10);
    // Every request hangs far longer than the test waits.
    let fake = FakeWolkvox::start(
        Behavior::ok().hook(|req| (req.index < 2).then_some(Reply::Hang(Duration::from_secs(60)))),
    );
    let spawned = spawn_send(&input, &fake, TOKEN, &[]);
    assert!(
        fake.wait_for_requests(2, Duration::from_secs(20)),
        "never started"
    );
    spawned.signal("INT");
    std::thread::sleep(Duration::from_millis(200));
    spawned.signal("INT");
    let (_, out) = spawned.wait(Duration::from_secs(10));
    out.expect_code(3);
    assert!(
        out.stderr
            .contains("To continue, run: wolkvox-dispatch send"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.count(), 2);
    let in_flight: HashSet<String> = fake
        .requests()
        .iter()
        .filter_map(|r| r.telephone.clone())
        .collect();

    let resumed = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &resumed, TOKEN);
    c.arg("--resume");
    run(c).expect_code(1);
    let statuses = status_by_telephone(&default_results_path(&input));
    assert_eq!(statuses.len(), 10);
    for tel in &tels {
        let want = if in_flight.contains(tel) {
            "unknown"
        } else {
            "sent"
        };
        assert_eq!(statuses[tel], want, "{tel}");
    }
    assert!(
        resumed
            .requests()
            .iter()
            .all(|r| !in_flight.contains(r.telephone.as_deref().unwrap_or("")))
    );
}

#[test]
fn kill_9_at_a_random_moment_then_resume_sends_no_telephone_twice() {
    let mut rng = Rng::new("kill_9_at_a_random_moment");
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), 150);
    let fake = FakeWolkvox::start(Behavior::ok().latency(20));
    let spawned = spawn_send(&input, &fake, TOKEN, &[]);
    let at = rng.between(1, 120);
    assert!(
        fake.wait_for_requests(at, Duration::from_secs(30)),
        "never reached {at}"
    );
    // Anywhere in the cycle of a request, not only as one arrives.
    std::thread::sleep(Duration::from_millis(rng.between(0, 25) as u64));
    spawned.kill_9();
    let first_run = fake.count();

    // The same endpoint and token: its log is the witness across both runs.
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--resume");
    let out = run(c);
    assert!([0, 1].contains(&out.code), "{out:?}");
    assert_no_telephone_twice(&fake);
    fake.assert_no_overlap_violation();

    let statuses = status_by_telephone(&default_results_path(&input));
    assert_eq!(statuses.len(), 150);
    let delivered: HashSet<String> = fake.delivered_telephones().into_iter().collect();
    let mut unknown = 0;
    for tel in &tels {
        match statuses[tel].as_str() {
            "sent" => assert!(delivered.contains(tel), "{tel} sent but never delivered"),
            "unknown" => unknown += 1,
            other => panic!("{tel}: {other}"),
        }
    }
    println!("killed after {at} requests ({first_run} logged); {unknown} rows unknown");
    assert!(
        unknown <= 2,
        "at most the 2 requests in flight are unknown, got {unknown}"
    );
    assert_eq!(out.code, if unknown > 0 { 1 } else { 0 });
}

#[test]
fn a_concurrent_second_run_on_the_same_results_is_refused_and_sends_nothing() {
    let dir = temp_dir();
    let (input, _) = list(dir.path(), 20);
    // Slow enough (about 5 s) that the first run still holds the files on a busy machine.
    let fake = FakeWolkvox::start(Behavior::ok().latency(500));
    let first = spawn_send(&input, &fake, TOKEN, &[]);
    assert!(
        fake.wait_for_requests(1, Duration::from_secs(20)),
        "never started"
    );
    let other = FakeWolkvox::start(Behavior::ok());
    for args in [
        &[][..],
        &["--resume"][..],
        &["--resume", "--retry-unknown"][..],
    ] {
        let out = send(&input, &other, TOKEN, args);
        out.expect_code(2);
        assert!(
            out.stderr.contains("another wolkvox-dispatch run is using"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert_eq!(other.count(), 0);
    let (_, out) = first.wait(Duration::from_secs(30));
    out.expect_code(0);
    assert_no_telephone_twice(&fake);
}

#[test]
fn results_without_their_journal_are_never_resumed_blindly() {
    let dir = temp_dir();
    let (input, _) = list(dir.path(), 4);
    let fake = FakeWolkvox::start(Behavior::ok());
    send(&input, &fake, TOKEN, &[]).expect_code(0);
    let results = default_results_path(&input);
    fs::remove_file(journal_path(&results)).unwrap();
    let before = fake.count();
    // Without --resume: refused, and (the trap) no empty journal is left behind...
    send(&input, &fake, TOKEN, &[]).expect_code(2);
    assert!(!journal_path(&results).exists());
    // ...so --resume is refused too, however many times it is tried.
    for _ in 0..2 {
        let out = send(&input, &fake, TOKEN, &["--resume"]);
        out.expect_code(2);
        assert!(out.stderr.contains("journal"), "{}", out.stderr);
    }
    assert_eq!(fake.count(), before);
}

// ---------------------------------------------------------------------------------------
// The "done when": three interruptions in a row, then a final resume.

#[test]
fn three_interruptions_in_a_row_then_resume_deliver_every_valid_row_at_most_once() {
    let mut rng = Rng::new("three_interruptions");
    let started = Instant::now();
    let dir = temp_dir();
    let total = 1500;
    let tels = colombian_mobiles(total);
    // One row in 50 is invalid (too few digits): never sent, whatever happens.
    let rows: Vec<(String, String)> = tels
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let tel = if i % 50 == 7 {
                t[..6].to_owned()
            } else {
                t.clone()
            };
            (tel, format!("Hola {i}, tu cita es mañana 👋"))
        })
        .collect();
    let refs: Vec<(&str, &str)> = rows.iter().map(|(t, m)| (t.as_str(), m.as_str())).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&refs, "1"));
    let valid: HashSet<&String> = rows
        .iter()
        .map(|(t, _)| t)
        .filter(|t| t.len() == 12)
        .collect();
    let tokens = format!("{TOKEN},{OTHER_TOKEN}");
    let fake = FakeWolkvox::start(Behavior::ok().latency(20));

    let mut phases = Vec::new();
    let mut interrupt = |how: &str, resume: bool| {
        let args: &[&str] = if resume { &["--resume"] } else { &[] };
        let before = fake.count();
        let spawned = spawn_send(&input, &fake, &tokens, args);
        let at = before + rng.between(100, 400);
        assert!(
            fake.wait_for_requests(at, Duration::from_secs(60)),
            "never reached {at}"
        );
        std::thread::sleep(Duration::from_millis(rng.between(0, 25) as u64));
        if how == "kill -9" {
            spawned.kill_9();
        } else {
            spawned.signal("INT");
            let (_, out) = spawned.wait(Duration::from_secs(30));
            out.expect_code(3);
        }
        phases.push(format!("{how} after {} requests", fake.count() - before));
    };
    interrupt("kill -9", false);
    interrupt("Ctrl-C", true);
    interrupt("kill -9", true);
    let before = fake.count();
    let out = send(&input, &fake, &tokens, &["--resume"]);
    assert!([0, 1].contains(&out.code), "{out:?}");
    phases.push(format!("final --resume {} requests", fake.count() - before));

    assert_no_telephone_twice(&fake);
    fake.assert_no_overlap_violation();
    let lines = read_results(&default_results_path(&input));
    assert_eq!(statuses_by_row(&lines).len(), total, "one line per row");
    let delivered: HashSet<String> = fake.delivered_telephones().into_iter().collect();
    let (mut sent, mut unknown) = (0, 0);
    for line in &lines {
        let tel = &line["telephone"];
        match line["status"].as_str() {
            "sent" => {
                assert!(
                    delivered.contains(tel),
                    "{tel} recorded sent, never delivered"
                );
                sent += 1;
            }
            "unknown" => unknown += 1,
            "invalid" => assert!(!valid.contains(tel) && fake.requests_for(tel).is_empty()),
            other => panic!("{line:?}: {other}"),
        }
    }
    assert_eq!(
        sent + unknown,
        valid.len(),
        "every valid row sent or unknown"
    );
    let requested: HashSet<String> = fake
        .send_requests()
        .iter()
        .filter_map(|r| r.telephone.clone())
        .collect();
    let unknown_unrequested = lines
        .iter()
        .filter(|l| l["status"] == "unknown" && !requested.contains(&l["telephone"]))
        .count();
    println!(
        "three interruptions: {total} rows, {} valid; {}; {} requests in all, {} delivered, \
         no telephone twice; {sent} sent, {unknown} unknown (bound: 2 per token per kill -9 = 8), \
         of which {unknown_unrequested} never reached the endpoint; {:.1} s",
        valid.len(),
        phases.join(", "),
        fake.count(),
        delivered.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(unknown <= 2 * 2 * 2, "{unknown} rows unknown");
    assert_eq!(out.code, if unknown > 0 { 1 } else { 0 });
}
