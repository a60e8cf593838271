//! Campaign hygiene through the real binary against the fake endpoint: opt-out lists,
//! contact hours (in real time zones, with windows computed from the current time), and
//! the `report` command.
//!
//! Windows that must close during a run are written with seconds (`HH:MM:SS`) in a time
//! zone chosen so that the window cannot cross local midnight; the tests assert what was
//! sent and recorded, never how long anything took.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;
use serde_json::Value;

/// Seconds since local midnight, now, in `tz`.
fn local_seconds(tz: &str) -> i64 {
    let now = jiff::Timestamp::now().in_tz(tz).expect("known time zone");
    let t = now.time();
    i64::from(t.hour()) * 3600 + i64::from(t.minute()) * 60 + i64::from(t.second())
}

/// Bogota (UTC-5) or Tokyo (UTC+9): local times 14 h apart, so one of them is at
/// least `margin` seconds away from midnight on both sides.
fn zone_away_from_midnight(margin: i64) -> &'static str {
    ["America/Bogota", "Asia/Tokyo"]
        .into_iter()
        .find(|tz| {
            let s = local_seconds(tz);
            s >= margin && s <= 86_400 - margin
        })
        .expect("one of two zones 14 h apart is away from midnight")
}

fn hms(seconds: i64) -> String {
    let s = seconds.clamp(0, 86_400);
    format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
}

/// `mon-sun A-B` for every day, local seconds `from..to` relative to now in `tz`.
fn every_day(tz: &str, from: i64, to: i64) -> String {
    let now = local_seconds(tz);
    format!("mon-sun {}-{}", hms(now + from), hms(now + to))
}

/// A window open in `tz` from 30 min ago to 30 min ahead, split at midnight if needed.
fn open_around_now(tz: &str) -> String {
    let now = local_seconds(tz);
    let (start, end) = (now - 1800, now + 1800);
    let mut entries = vec![format!(
        "mon-sun {}-{}",
        hms(start.max(0)),
        hms(end.min(86_400))
    )];
    if start < 0 {
        entries.push(format!("mon-sun {}-24:00", hms(86_400 + start)));
    }
    if end > 86_400 {
        entries.push(format!("mon-sun 00:00-{}", hms(end - 86_400)));
    }
    entries.join(", ")
}

fn config(dir: &Path, campaign: &str) -> PathBuf {
    write_config(
        dir,
        &format!("[api]\nconnector_id = \"1\"\n[campaign]\n{campaign}"),
    )
}

fn statuses(results: &Path) -> HashMap<u64, String> {
    statuses_by_row(&read_results(results))
}

fn count(statuses: &HashMap<u64, String>, status: &str) -> usize {
    statuses.values().filter(|s| s.as_str() == status).count()
}

fn report_json(results: &Path) -> Value {
    let mut c = cmd();
    c.arg("report").arg(results).arg("--format").arg("json");
    let out = run(c);
    out.expect_code(0);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

#[test]
fn suppressed_contacts_are_never_sent_even_across_resume() {
    let dir = temp_dir();
    let phones = colombian_mobiles(6);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    // Written differently from the list: normalization must make them match.
    let optout = write_csv(
        dir.path(),
        "optout.txt",
        "# asked not to be contacted\n+57 300 123 0001\n0057-300-123-0003\nnot-a-number\n",
    );
    let failing = phones[4].clone();
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.telephone.as_deref() == Some(failing.as_str())).then(Reply::parameters_required)
    }));
    let results = default_results_path(&input);
    let suppressed = ["573001230001", "573001230003"];

    let mut first = send_cmd(&input, &fake, "tok");
    first.arg("--suppress").arg(&optout);
    let out = run(first);
    out.expect_code(1); // the failed row, not the suppressed ones
    assert!(
        out.stderr.contains("optout.txt, line 4"),
        "a bad entry is a warning naming file and line: {}",
        out.stderr
    );
    let st = statuses(&results);
    assert_eq!(st[&2], "suppressed");
    assert_eq!(st[&4], "suppressed");
    assert_eq!(st[&5], "failed");
    assert_eq!(count(&st, "sent"), 3);
    let line = row(&read_results(&results), 2).clone();
    assert!(line["msg"].contains("optout.txt"), "{line:?}");
    assert_eq!(line["attempts"], "0");

    // Resume with --retry-failed, without the list: the journal keeps them suppressed.
    let mut again = send_cmd(&input, &fake, "tok");
    again
        .arg("--resume")
        .arg("--retry-failed")
        .arg("--retry-unknown");
    run(again).expect_code(1);
    // And with the list again.
    let mut third = send_cmd(&input, &fake, "tok");
    third
        .arg("--resume")
        .arg("--retry-failed")
        .arg("--suppress")
        .arg(&optout);
    run(third).expect_code(1);

    for phone in suppressed {
        assert!(fake.requests_for(phone).is_empty(), "{phone} was contacted");
    }
    assert_eq!(
        fake.requests_for(&phones[4]).len(),
        3,
        "the failed row is retried"
    );
    assert_eq!(fake.delivered().len(), 3, "each other row exactly once");
    let st = statuses(&results);
    assert_eq!(count(&st, "suppressed"), 2);
}

#[test]
fn suppressed_rows_alone_do_not_fail_a_run_and_show_in_validate_and_dry_run() {
    let dir = temp_dir();
    let phones = colombian_mobiles(3);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    write_csv(
        dir.path(),
        "bajas.csv",
        "Nombre,Teléfono\nAna,\"+57 300 123 0002\"\n",
    );
    let cfg = config(dir.path(), "suppress = [\"bajas.csv\"]\n");

    let mut validate = cmd();
    validate
        .arg("validate")
        .arg(&input)
        .arg("--config")
        .arg(&cfg);
    let out = run(validate);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("row 4: 573001230002 is on the opt-out list"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("0 of 3 rows invalid, 0 duplicate, 1 suppressed, 2 valid"),
        "{}",
        out.stdout
    );

    let mut dry = cmd();
    dry.arg("send")
        .arg(&input)
        .arg("--config")
        .arg(&cfg)
        .arg("--dry-run");
    run(dry).expect_code(0);
    let st = statuses(&default_dry_run_path(&input));
    assert_eq!((st[&3].as_str(), count(&st, "dry_run")), ("suppressed", 2));

    let fake = FakeWolkvox::start(Behavior::ok());
    let mut send = send_cmd(&input, &fake, "tok");
    send.arg("--config").arg(&cfg);
    let out = run(send);
    out.expect_code(0);
    let line = format!("  {:<11}{:>8}\n", "suppressed", 1);
    assert!(out.stdout.contains(&line), "{}", out.stdout);
    assert_eq!(fake.count(), 2);
}

#[test]
fn an_unreadable_opt_out_list_sends_nothing() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "list.csv",
        &contacts_csv(&[("573001230000", "Hola")], "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--suppress").arg(dir.path().join("missing.csv"));
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("missing.csv"), "{}", out.stderr);
    assert_eq!(fake.count(), 0);
    assert!(!default_results_path(&input).exists());
}

#[test]
fn a_run_started_outside_the_window_sends_nothing_and_says_when_it_opens() {
    let dir = temp_dir();
    let tz = zone_away_from_midnight(3 * 3600);
    // Opens in an hour, for an hour.
    let cfg = config(
        dir.path(),
        &format!(
            "hours = \"{}\"\ntimezone = \"{tz}\"\n",
            every_day(tz, 3600, 7200)
        ),
    );
    let phones = colombian_mobiles(4);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config").arg(&cfg);
    let out = run(c);
    out.expect_code(3);
    assert_eq!(fake.count(), 0);
    assert!(
        out.stdout.contains("outside the contact hours"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains(&format!("({tz})")), "{}", out.stdout);
    assert!(out.stdout.contains("--resume"), "{}", out.stdout);
    let lines = read_results(&default_results_path(&input));
    assert!(lines.iter().all(|l| l["status"] == "not_sent"
        && l["msg"].contains("outside the contact hours; the window opens again")));
}

#[test]
fn the_window_is_read_in_its_own_time_zone() {
    // Open around now in Tokyo; 14 h earlier, in Bogota, the same hours are closed.
    let dir = temp_dir();
    let hours = open_around_now("Asia/Tokyo");
    let phones = colombian_mobiles(2);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let fake = FakeWolkvox::start(Behavior::ok());

    let tokyo = write_named_config(
        dir.path(),
        "tokyo.toml",
        &format!(
            "[api]\nconnector_id = \"1\"\n[campaign]\nhours = \"{hours}\"\ntimezone = \"Asia/Tokyo\"\n"
        ),
    );
    let input = write_csv(dir.path(), "tokyo.csv", &contacts_csv(&rows, "1"));
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config").arg(&tokyo);
    run(c).expect_code(0);
    assert_eq!(fake.count(), 2);

    let bogota = write_named_config(
        dir.path(),
        "bogota.toml",
        &format!(
            "[api]\nconnector_id = \"1\"\n[campaign]\nhours = \"{hours}\"\ntimezone = \"America/Bogota\"\n"
        ),
    );
    let input = write_csv(dir.path(), "bogota.csv", &contacts_csv(&rows, "1"));
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config").arg(&bogota).arg("--allow-repeat");
    run(c).expect_code(3);
    assert_eq!(fake.count(), 2, "nothing more was sent");
}

#[test]
fn wait_for_window_sleeps_until_it_opens_then_sends_everything() {
    let dir = temp_dir();
    let tz = zone_away_from_midnight(2 * 3600);
    // Open now for 1 s, closed for 2 s, then open for an hour.
    let hours = format!("{}, {}", every_day(tz, -3600, 1), every_day(tz, 3, 3600));
    let cfg = config(
        dir.path(),
        &format!("hours = \"{hours}\"\ntimezone = \"{tz}\"\n"),
    );
    let phones = colombian_mobiles(10);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd_at_rate(&input, &fake, "tok", "4");
    c.arg("--config").arg(&cfg).arg("--wait-for-window");
    let out = run(c);
    out.expect_code(0);
    assert!(out.stderr.contains("waiting until"), "{}", out.stderr);
    assert_eq!(fake.delivered().len(), 10);
    assert_eq!(count(&statuses(&default_results_path(&input)), "sent"), 10);
}

/// The "done when": an opt-out list and a window that closes mid-run; the run
/// stops at the window's end, nothing reaches suppressed contacts, and `report` says what
/// happened and the command to run next, which then finishes the job.
#[test]
fn a_campaign_stops_at_the_window_end_and_report_says_what_to_run_next() {
    let dir = temp_dir();
    let tz = zone_away_from_midnight(2 * 3600);
    let phones = colombian_mobiles(40);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola 👋")).collect();
    let input = write_csv(dir.path(), "campaign.csv", &contacts_csv(&rows, "1"));
    let suppressed = [&phones[0], &phones[7], &phones[39]];
    write_csv(
        dir.path(),
        "optout.txt",
        &suppressed
            .iter()
            .map(|p| format!("+{p}\n"))
            .collect::<String>(),
    );
    // Closes 3 s from now; at 4 requests/s the 37 rows would need about 9 s.
    let cfg = config(
        dir.path(),
        &format!(
            "suppress = [\"optout.txt\"]\nhours = \"{}\"\ntimezone = \"{tz}\"\n",
            every_day(tz, -3600, 3)
        ),
    );
    let fake = FakeWolkvox::start(Behavior::ok().latency(20));
    let mut c = send_cmd_at_rate(&input, &fake, "tok", "4");
    c.arg("--config").arg(&cfg);
    let out = run(c);
    out.expect_code(3);
    fake.assert_no_overlap_violation();

    let results = default_results_path(&input);
    let st = statuses(&results);
    let (sent, not_sent) = (count(&st, "sent"), count(&st, "not_sent"));
    assert!(sent > 0 && not_sent > 0, "sent {sent}, not_sent {not_sent}");
    assert_eq!(count(&st, "suppressed"), 3);
    assert_eq!(sent + not_sent + 3, 40);
    for phone in suppressed {
        assert!(fake.requests_for(phone).is_empty(), "{phone} was contacted");
    }
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    let mut recorded: Vec<String> = read_results(&results)
        .into_iter()
        .filter(|l| l["status"] == "sent")
        .map(|l| l["telephone"].clone())
        .collect();
    recorded.sort();
    assert_eq!(
        delivered, recorded,
        "sent rows are exactly what the endpoint received"
    );

    // What happened, and what to run next.
    let mut c = cmd();
    c.arg("report").arg(&results);
    let text = run(c);
    text.expect_code(0);
    // The run's own command line, from the journal: its --config (contact hours, the
    // opt-out list) comes along.
    let next = text
        .stdout
        .lines()
        .find(|l| l.starts_with("next: "))
        .unwrap_or_default();
    assert!(
        next.starts_with(&format!("next: wolkvox-dispatch send {} ", input.display()))
            && next.contains(" --config ")
            && next.ends_with(&format!(" --results {} --resume", results.display())),
        "{}",
        text.stdout
    );
    let line = format!("  {:<11}{:>8}\n", "suppressed", 3);
    assert!(text.stdout.contains(&line), "{}", text.stdout);
    assert!(
        text.stdout.contains(&format!(
            "{not_sent:>10}  not sent: outside the contact hours; the window opens again"
        )),
        "{}",
        text.stdout
    );
    let json = report_json(&results);
    assert_eq!(json["counts"]["sent"], sent as u64);
    assert_eq!(json["counts"]["not_sent"], not_sent as u64);
    assert_eq!(json["next"]["input_found"], true);

    // The next window (here: a config without hours) finishes the job with that command.
    let open = write_named_config(
        dir.path(),
        "later.toml",
        "[api]\nconnector_id = \"1\"\n[campaign]\nsuppress = [\"optout.txt\"]\n",
    );
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--results")
        .arg(&results)
        .arg("--resume")
        .arg("--config")
        .arg(&open);
    run(c).expect_code(0);
    assert_eq!(fake.delivered().len(), 37, "every other row exactly once");
    for phone in suppressed {
        assert!(fake.requests_for(phone).is_empty(), "{phone} was contacted");
    }
    let json = report_json(&results);
    assert_eq!(json["counts"]["sent"], 37);
    assert_eq!(json["next"], Value::Null);
}

#[test]
fn report_groups_the_failures_of_a_faulty_run() {
    let dir = temp_dir();
    let phones = colombian_mobiles(12);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    let params: Vec<String> = [1, 5, 9].iter().map(|&i| phones[i].clone()).collect();
    let closed: Vec<String> = [2, 6].iter().map(|&i| phones[i].clone()).collect();
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        let tel = req.telephone.as_deref()?;
        if params.iter().any(|p| p == tel) {
            Some(Reply::parameters_required())
        } else if closed.iter().any(|p| p == tel) {
            // A 200 whose body refuses: an undocumented per-row error.
            Some(Reply::json(
                200,
                serde_json::json!({"code": "470", "error": "CONVERSATION", "msg": "Conversation window closed"}),
            ))
        } else {
            None
        }
    }));
    run(send_cmd(&input, &fake, "tok")).expect_code(1);
    let results = default_results_path(&input);

    let mut c = cmd();
    c.arg("report").arg(&results);
    let out = run(c);
    out.expect_code(0);
    let text = &out.stdout;
    let first = text.find("code 400").expect("group 400");
    let second = text.find("code 470").expect("group 470");
    assert!(first < second, "most common first:\n{text}");
    assert!(
        text.contains(
            "3  code 400  BAD REQUEST: SOME PARAMETERS ARE REQUIRED  [failed; rows 3, 7, 11]"
        ),
        "{text}"
    );
    assert!(
        text.contains("2  code 470  CONVERSATION: Conversation window closed  [failed; rows 4, 8]"),
        "{text}"
    );
    assert!(text.contains("--resume --retry-failed\n"), "{text}");

    // The text names rows as the spreadsheet does; the JSON as the results file does.
    let json = report_json(&results);
    assert_eq!(json["counts"]["sent"], 7);
    assert_eq!(json["counts"]["failed"], 5);
    assert_eq!(json["failures"][0]["code"], "400");
    assert_eq!(json["failures"][0]["count"], 3);
    assert_eq!(json["failures"][1]["msg"], "Conversation window closed");
    assert_eq!(json["failures"][1]["rows"], serde_json::json!([3, 7]));
    assert!(json["messages_per_second"].is_number() || json["messages_per_second"].is_null());

    // A copy cut in the middle of a line, as a running send may leave it: still readable.
    let bytes = std::fs::read(&results).unwrap();
    let torn = write_bytes(dir.path(), "torn.results.csv", &bytes[..bytes.len() - 7]);
    let json = report_json(&torn);
    assert_eq!(json["rows"], 11);
}

#[test]
fn validate_and_dry_run_say_whether_the_run_fits_the_window() {
    let dir = temp_dir();
    let tz = zone_away_from_midnight(2 * 3600);
    // 30 minutes left; 20 rows at 10/s fit, 20 rows at 0.005/s (4000 s) do not.
    let phones = colombian_mobiles(20);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    let hours = every_day(tz, -60, 1800);
    let cfg = config(
        dir.path(),
        &format!("hours = \"{hours}\"\ntimezone = \"{tz}\"\n"),
    );
    let mut c = cmd();
    c.arg("validate").arg(&input).arg("--config").arg(&cfg);
    let out = run(c);
    out.expect_code(0);
    assert!(
        out.stdout.contains("contact hours: open now until"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("the run fits"), "{}", out.stdout);

    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--config")
        .arg(&cfg)
        .arg("--dry-run")
        .arg("--rate")
        .arg("0.005");
    let out = run(c);
    out.expect_code(0);
    assert!(
        out.stdout.contains("the run does NOT fit"),
        "{}",
        out.stdout
    );
}
