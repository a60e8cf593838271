//! `reconcile`: settling `unknown` rows with Wolkvox's report of sent messages (`cdr_3`),
//! through the real binary against the fake endpoint, which records what it delivered
//! and answers the report for a date range.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

fn statuses(results: &Path) -> HashMap<u64, String> {
    statuses_by_row(&read_results(results))
}

fn count(statuses: &HashMap<u64, String>, status: &str) -> usize {
    statuses.values().filter(|s| s.as_str() == status).count()
}

fn list(dir: &Path, n: usize) -> (PathBuf, Vec<String>) {
    let phones = colombian_mobiles(n);
    let rows: Vec<(&str, &str)> = phones
        .iter()
        .map(|p| (p.as_str(), "Hola, su pedido está listo"))
        .collect();
    (
        write_csv(dir, "list.csv", &contacts_csv(&rows, "1")),
        phones,
    )
}

/// `reconcile RESULTS --base-url <fake>` with a UTC config and `WOLKVOX_TOKEN=token`.
fn utc_reconcile_cmd(results: &Path, fake: &FakeWolkvox, token: &str) -> assert_cmd::Command {
    let config = write_config(
        results.parent().unwrap(),
        "[api]\nconnector_id = \"1\"\n[campaign]\ntimezone = \"UTC\"\n",
    );
    reconcile_cmd(results, &config, fake, token)
}

/// `utc_reconcile_cmd` with `tok` and `args`, run.
fn reconcile(results: &Path, fake: &FakeWolkvox, args: &[&str]) -> Run {
    let mut c = utc_reconcile_cmd(results, fake, "tok");
    c.args(args);
    run(c)
}

fn index_of(telephone: Option<&str>) -> Option<usize> {
    telephone?.get(8..)?.parse().ok()
}

fn cdr_calls(fake: &FakeWolkvox) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.api == API_CDR_3)
        .count()
}

/// A run killed with requests in doubt, and which rows they were.
struct Killed {
    fake: FakeWolkvox,
    results: PathBuf,
    phones: Vec<String>,
    /// The row whose connection dropped before any delivery (recorded `unknown`).
    dropped: u64,
    /// The rows delivered but unanswered when the run was killed (intents, no outcome).
    hung: [u64; 2],
}

/// The third request's connection drops before any delivery; the fifth and sixth are
/// delivered and never answered, which holds both of the token's workers; then the run
/// is killed. By arrival, not by row: which rows those are depends on how the workers
/// took them (each takes its next row while its request is in flight).
fn killed_run(dir: &Path, fake_nesting: u8) -> Killed {
    let (input, phones) = list(dir, 10);
    let fake =
        FakeWolkvox::start(
            Behavior::ok()
                .cdr_nesting(fake_nesting)
                .hook(|req| match req.index {
                    2 => Some(Reply::DropConnection),
                    4 | 5 => Some(Reply::DeliverThenHang(Duration::from_secs(30))),
                    _ => None,
                }),
        );
    let spawned = spawn_send(&input, &fake, "tok", &[]);
    assert!(
        fake.wait_for_requests(6, Duration::from_secs(20)),
        "{:?}",
        fake.requests().len()
    );
    // Both of the token's slots now hold a delivered message whose answer never comes.
    std::thread::sleep(Duration::from_millis(300));
    spawned.kill_9();
    let requests = fake.requests();
    let row_of = |i: usize| {
        let index = index_of(requests[i].telephone.as_deref()).expect("a send request");
        index as u64 + 1
    };
    Killed {
        dropped: row_of(2),
        hung: [row_of(4), row_of(5)],
        fake,
        results: default_results_path(&input),
        phones,
    }
}

#[test]
fn after_a_kill_9_reconcile_and_a_plain_resume_send_every_row_exactly_once() {
    let dir = temp_dir();
    let Killed {
        fake,
        results,
        phones,
        dropped,
        hung,
    } = killed_run(dir.path(), 0);
    let delivered_before = fake.delivered_telephones();
    assert_eq!(
        delivered_before.len(),
        5,
        "all but the dropped one: {delivered_before:?}"
    );
    // Each blocked worker had written its next row's intent ahead, and no `leaving`
    // mark for it: read in this boot, those rows never left, so they are not among the
    // unknown rows below (3: the dropped row and the 2 hung ones), and are sent once by
    // the resume.
    let journal = std::fs::read_to_string(journal_path(&results)).unwrap();
    let ahead: Vec<&str> = journal
        .lines()
        .filter(|l| l.contains("\"ahead\":true"))
        .collect();
    let left = journal.matches("\"event\":\"leaving\"").count();
    assert!(
        ahead.len() > left,
        "intents written ahead that never left: {} ahead, {left} left",
        ahead.len()
    );
    // `report` points at reconcile while unknown rows remain, and not after.
    let report = |results: &Path| {
        let mut c = cmd();
        c.arg("report").arg(results);
        run(c).stdout
    };
    let said = report(&results);
    assert!(
        said.contains("settle them with Wolkvox's report of sent messages first:")
            && said.contains(&format!("wolkvox-dispatch reconcile {}", results.display())),
        "{said}"
    );
    let out = reconcile(&results, &fake, &["--settle-after", "0s"]);
    out.expect_code(0);
    assert_eq!(cdr_calls(&fake), 1);
    let st = statuses(&results);
    assert_eq!(
        st[&hung[0]], "sent",
        "delivered, answer lost to the kill: {st:?}"
    );
    assert_eq!(st[&hung[1]], "sent");
    assert_eq!(
        st[&dropped], "not_sent",
        "the dropped request never reached the fake: {st:?}"
    );
    assert_eq!(count(&st, "unknown"), 0);
    assert!(
        out.stdout
            .contains("3 unknown rows: 2 confirmed sent, 1 not sent, 0 still unknown"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("next: wolkvox-dispatch send"),
        "{}",
        out.stdout
    );
    let rows = read_results(&results);
    assert!(
        row(&rows, hung[0])["msg"].contains("confirmed sent by Wolkvox's report (cdr_3)"),
        "{rows:?}"
    );
    assert!(
        row(&rows, dropped)["msg"].contains("absent from Wolkvox's report"),
        "{rows:?}"
    );

    assert!(!report(&results).contains("wolkvox-dispatch reconcile"));
    let input = dir.path().join("list.csv");
    let mut resume = send_cmd(&input, &fake, "tok");
    resume.arg("--resume");
    run(resume).expect_code(0);
    let st = statuses(&results);
    assert_eq!(count(&st, "sent"), 10, "{st:?}");
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, phones, "every row delivered exactly once");
}

#[test]
fn too_recent_rows_stay_unknown_and_the_journal_keeps_the_five_minute_rule() {
    let dir = temp_dir();
    let Killed {
        fake,
        results,
        dropped,
        ..
    } = killed_run(dir.path(), 1);
    // The default 30 minutes: the report cannot yet prove an absence.
    let out = reconcile(&results, &fake, &[]);
    out.expect_code(1);
    let st = statuses(&results);
    assert_eq!(
        count(&st, "sent"),
        3 + 2,
        "confirmed rows move at once: {st:?}"
    );
    assert_eq!(st[&dropped], "unknown");
    assert!(
        out.stdout
            .contains("still unknown: too recent for its absence to count; reconcile again after"),
        "{}",
        out.stdout
    );
    // A second reconcile within 5 minutes would wait: its dry run says so and is cut
    // short by the test's timeout rather than calling early.
    let before = cdr_calls(&fake);
    let mut c = utc_reconcile_cmd(&results, &fake, "tok");
    c.arg("--dry-run").timeout(Duration::from_secs(3));
    let out = run(c);
    assert!(
        out.stderr.contains("waiting until") && out.stderr.contains("at most one every 5 minutes"),
        "{}",
        out.stderr
    );
    assert_eq!(
        cdr_calls(&fake),
        before,
        "no call within 5 minutes of the last"
    );
}

#[test]
fn a_dry_run_changes_nothing_and_an_unreadable_report_changes_nothing() {
    let dir = temp_dir();
    let Killed { fake, results, .. } = killed_run(dir.path(), 2);
    let before = std::fs::read(&results).unwrap();
    let out = reconcile(&results, &fake, &["--settle-after", "0s", "--dry-run"]);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("dry run: the results file was not changed"),
        "{}",
        out.stdout
    );
    assert_eq!(std::fs::read(&results).unwrap(), before);

    // A report that cannot be read stops reconcile before any change.
    let dir = temp_dir();
    let (input, _) = list(dir.path(), 4);
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        if req.api == API_CDR_3 {
            return Some(Reply::raw(200, "text/html", "<html>error</html>"));
        }
        (index_of(req.telephone.as_deref()) == Some(1)).then_some(Reply::DropConnection)
    }));
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--allow-repeat");
    run(c).expect_code(1);
    let results = default_results_path(&input);
    let before = std::fs::read(&results).unwrap();
    let out = reconcile(&results, &fake, &["--settle-after", "0s"]);
    out.expect_code(2);
    assert!(
        out.stderr.contains("cannot read Wolkvox's report")
            && out.stderr.contains("nothing was changed"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&results).unwrap(), before);

    // A refused token: the same (a fresh run, since a call was just made on that one).
    let dir = temp_dir();
    let (input, _) = list(dir.path(), 2);
    let fake = FakeWolkvox::start(Behavior::ok().valid_tokens(["tok", "sender"]).hook(|req| {
        (index_of(req.telephone.as_deref()) == Some(1)).then_some(Reply::DropConnection)
    }));
    let mut c = send_cmd(&input, &fake, "sender");
    c.arg("--allow-repeat");
    run(c).expect_code(1);
    let results = default_results_path(&input);
    let before = std::fs::read(&results).unwrap();
    let c = utc_reconcile_cmd(&results, &fake, "expired");
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("Wolkvox refused the report call (HTTP 403"),
        "{}",
        out.stderr
    );
    assert_eq!(std::fs::read(&results).unwrap(), before);
}

/// A 3-row list whose first row is delivered but its answer lost to the 1 s timeout,
/// sent to a fake whose report lists messages `delay` after delivery.
fn timed_out_run(delay: Duration) -> (tempfile::TempDir, FakeWolkvox, PathBuf) {
    let dir = temp_dir();
    let (input, _) = list(dir.path(), 3);
    let fake = FakeWolkvox::start(Behavior::ok().cdr_delay(delay).hook(|req| {
        (index_of(req.telephone.as_deref()) == Some(0))
            .then_some(Reply::DeliverThenHang(Duration::from_secs(3)))
    }));
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\ntimeout = \"1s\"\n",
    );
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config").arg(&config).arg("--allow-repeat");
    run(c).expect_code(1);
    let results = default_results_path(&input);
    assert_eq!(statuses(&results)[&1], "unknown");
    (dir, fake, results)
}

#[test]
fn a_message_that_shows_up_late_is_found_once_it_is_listed_and_never_declared_absent_early() {
    // Listed 1 s after delivery: by the time reconcile asks, it is there.
    let (_dir, fake, results) = timed_out_run(Duration::from_secs(1));
    let result_in_workbook = |results: &Path| {
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> =
            calamine::open_workbook(results.with_extension("xlsx")).expect("workbook");
        let rows = book.worksheet_range("Rows").expect("sheet");
        rows.get((1, 3)).map(|c| c.to_string()).unwrap_or_default()
    };
    assert_eq!(
        result_in_workbook(&results),
        "Unknown: may have been delivered"
    );
    std::thread::sleep(Duration::from_millis(1500));
    reconcile(&results, &fake, &["--settle-after", "0s"]).expect_code(0);
    assert_eq!(statuses(&results)[&1], "sent");
    // The workbook beside the results follows.
    assert_eq!(result_in_workbook(&results), "Sent");

    // Not listed yet, and the attempt is recent: it stays unknown, never not_sent.
    let (_dir, fake, results) = timed_out_run(Duration::from_secs(600));
    let out = reconcile(&results, &fake, &["--settle-after", "1h"]);
    out.expect_code(1);
    assert_eq!(statuses(&results)[&1], "unknown");
    assert!(
        out.stdout.contains("reconcile again after"),
        "{}",
        out.stdout
    );
}

#[test]
fn hsm_rows_stay_unknown_and_spend_no_report_call() {
    let dir = temp_dir();
    let mut s = String::from("nombre,telephone\n");
    for (i, t) in colombian_mobiles(2).iter().enumerate() {
        s.push_str(&format!("P{i},{t}\n"));
    }
    let input = write_csv(dir.path(), "citas.csv", &s);
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (index_of(req.telephone.as_deref()) == Some(1)).then_some(Reply::DropConnection)
    }));
    let mut c = send_cmd(&input, &fake, "tok");
    let config = write_config(dir.path(), "[api]\nconnector_id = \"1\"\n");
    c.arg("--config")
        .arg(&config)
        .args(["--hsm", "cita", "--hsm-vars", "nombre"]);
    run(c).expect_code(1);
    let results = dir.path().join("citas.hsm.results.csv");
    let out = reconcile(&results, &fake, &["--settle-after", "0s"]);
    out.expect_code(1);
    assert!(
        out.stdout.contains("still unknown: an HSM template"),
        "{}",
        out.stdout
    );
    assert_eq!(cdr_calls(&fake), 0);
    assert_eq!(statuses(&results)[&2], "unknown");
}

#[test]
fn requests_cut_off_and_not_yet_decidable_are_written_unknown_in_the_results() {
    let dir = temp_dir();
    let (input, phones) = list(dir.path(), 6);
    // The third and fourth requests hang (never delivered): both of the token's slots
    // hold one when the run is killed. Which rows they are depends on how the two
    // workers took rows (each takes its next row while its request is in flight), so
    // the test finds them by arrival. Their intents have no outcome, and the results
    // file has no line for them.
    let fake =
        FakeWolkvox::start(Behavior::ok().hook(|req| {
            matches!(req.index, 2 | 3).then_some(Reply::Hang(Duration::from_secs(30)))
        }));
    let spawned = spawn_send(&input, &fake, "tok", &[]);
    assert!(fake.wait_for_requests(4, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(300));
    spawned.kill_9();
    let requests = fake.requests();
    let hung: Vec<u64> = [2, 3]
        .iter()
        .map(|&i| index_of(requests[i].telephone.as_deref()).expect("a send") as u64 + 1)
        .collect();
    let results = default_results_path(&input);
    assert!(hung.iter().all(|row| !statuses(&results).contains_key(row)));
    // Too recent to prove anything (30 minutes by default): written `unknown`, so the
    // file says what the journal knows, and a plain resume does not send them.
    reconcile(&results, &fake, &[]).expect_code(1);
    let st = statuses(&results);
    for row in &hung {
        assert_eq!(
            st.get(row).map(String::as_str),
            Some("unknown"),
            "row {row}: {st:?}"
        );
    }
    // Rows a worker had taken ahead but never sent are not unknown: resume sends them.
    let unknown = st.values().filter(|s| *s == "unknown").count();
    assert_eq!(unknown, 2, "{st:?}");
    let mut resume = send_cmd(&input, &fake, "tok");
    resume.arg("--resume");
    run(resume).expect_code(1);
    // Every row got exactly one request in all: the hung ones were not sent again.
    for (i, phone) in phones.iter().enumerate() {
        let sent = fake
            .requests_for(phone)
            .iter()
            .filter(|r| r.is_send())
            .count();
        assert_eq!(sent, 1, "row {}: {sent} requests", i + 1);
    }
}

#[test]
fn reconcile_names_rows_as_the_spreadsheet_shows_them() {
    // The second contact is on the list's row 3 (the header is row 1), as every other
    // command says; the results file keeps its data row 2.
    let dir = temp_dir();
    let (input, phones) = list(dir.path(), 4);
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (index_of(req.telephone.as_deref()) == Some(1)).then_some(Reply::DropConnection)
    }));
    run(send_cmd(&input, &fake, "tok")).expect_code(1);
    let results = default_results_path(&input);
    assert_eq!(statuses(&results)[&2], "unknown");
    let out = reconcile(&results, &fake, &["--settle-after", "0s"]);
    let line = out
        .stdout
        .lines()
        .find(|l| l.contains(&phones[1]))
        .unwrap_or_else(|| panic!("no line for the row: {}", out.stdout));
    assert!(line.starts_with("row 3 "), "{line}\n{}", out.stdout);
}
