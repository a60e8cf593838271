//! Resume is airtight (issue 10): one campaign identity, statuses only move forward,
//! journal and results agree, `report` is exact. Each test drives the real binary
//! against the fake Wolkvox endpoint on 127.0.0.1; the fakes' request logs are the
//! witness of what was sent, across runs.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;

const TOKEN: &str = "tok-resume-1";

/// `n` rows `telephone,message,connector_id` (plus a `nombre` column) with distinct
/// Colombian mobiles.
fn list(dir: &Path, name: &str, n: usize) -> (PathBuf, Vec<String>) {
    let tels = colombian_mobiles(n);
    let mut text = String::from("telephone,message,connector_id,nombre\n");
    for (i, t) in tels.iter().enumerate() {
        text.push_str(&format!("{t},Hola cliente {i},1,Ana {i}\n"));
    }
    (write_csv(dir, name, &text), tels)
}

fn config(dir: &Path) -> PathBuf {
    write_config(
        dir,
        "[api]\nconnector_id = \"1\"\n[retry]\nbase_delay = \"10ms\"\nmax_delay = \"40ms\"\n",
    )
}

fn send(input: &Path, fake: &FakeWolkvox, args: &[&str]) -> Run {
    let mut c = send_cmd(input, fake, TOKEN);
    c.arg("--config")
        .arg(config(input.parent().unwrap()))
        .args(args);
    run(c)
}

fn status_of(results: &Path, n: u64) -> String {
    row(&read_results(results), n)["status"].clone()
}

// ---------------------------------------------------------------------------------------
// 1. Statuses only move forward.

/// A `--retry-unknown` run refused by the quota check keeps the row `unknown`, so a later
/// plain `--resume` does not send it again.
#[test]
fn an_unknown_row_stays_unknown_when_its_retry_run_is_refused() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), "contacts.csv", 3);
    let results = default_results_path(&input);
    let first = tels[0].clone();
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.telephone.as_deref() == Some(first.as_str())).then_some(Reply::DropConnection)
    }));
    send(&input, &fake, &[]).expect_code(1);
    assert_eq!(status_of(&results, 1), "unknown");

    // The token has no quota left: refused before any message, exit 2.
    let spent = FakeWolkvox::start(Behavior::ok().quota(TOKEN, 1));
    let mut c = send_cmd_checking_quota(&input, &spent, TOKEN);
    c.arg("--config")
        .arg(config(dir.path()))
        .args(["--resume", "--retry-unknown"]);
    let out = run(c);
    out.expect_code(2);
    assert!(spent.send_requests().is_empty());
    assert_eq!(
        status_of(&results, 1),
        "unknown",
        "a refused run demoted the row: {:?}",
        read_results(&results)
    );

    // A plain resume leaves it alone.
    let later = FakeWolkvox::start(Behavior::ok());
    send(&input, &later, &["--resume"]).expect_code(1);
    assert!(
        later.send_requests().is_empty(),
        "sent again: {:?}",
        later.delivered_telephones()
    );
    assert_eq!(status_of(&results, 1), "unknown");
}

/// A `--retry-unknown` run stopped by SIGTERM before it reaches a row leaves that row
/// `unknown`; the resume command it prints then sends nothing twice.
#[test]
fn an_unknown_row_not_reached_by_a_stopped_retry_run_stays_unknown() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), "contacts.csv", 4);
    let results = default_results_path(&input);
    let dropped = [tels[0].clone(), tels[1].clone()];
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        req.telephone
            .as_ref()
            .is_some_and(|t| dropped.contains(t))
            .then_some(Reply::DropConnection)
    }));
    send(&input, &fake, &[]).expect_code(1);
    assert_eq!(status_of(&results, 1), "unknown");
    assert_eq!(status_of(&results, 2), "unknown");

    // One request at a time; row 1 hangs, SIGTERM while it is in flight.
    let one = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[limits]\nmax_in_flight_per_token = 1\n",
    );
    let slow =
        FakeWolkvox::start(Behavior::ok().hook(|_| Some(Reply::Hang(Duration::from_millis(1500)))));
    let config_arg = one.to_string_lossy().into_owned();
    let spawned = spawn_send(
        &input,
        &slow,
        TOKEN,
        &["--config", &config_arg, "--resume", "--retry-unknown"],
    );
    assert!(slow.wait_for_requests(1, Duration::from_secs(20)));
    spawned.signal("TERM");
    let (_, out) = spawned.wait(Duration::from_secs(30));
    out.expect_code(3);
    assert_eq!(slow.send_requests().len(), 1, "only row 1 was attempted");
    assert_eq!(status_of(&results, 1), "sent", "its answer came in");
    assert_eq!(
        status_of(&results, 2),
        "unknown",
        "never attempted in the stopped run: {:?}",
        read_results(&results)
    );

    // The printed command (no --retry-unknown) sends nothing that may be delivered.
    let later = FakeWolkvox::start(Behavior::ok());
    send(&input, &later, &["--resume"]).expect_code(1);
    assert!(later.send_requests().is_empty());
}

// ---------------------------------------------------------------------------------------
// 2. Journal and results cross-checked.

/// After a complete run, a journal that is emptied, cut short or zero-filled is refused
/// on `--resume` (exit 2) instead of trusted: nothing is sent, and the results file is
/// left as it was.
#[test]
fn a_damaged_journal_is_refused_not_trusted() {
    let dir = temp_dir();
    let (input, _) = list(dir.path(), "contacts.csv", 40);
    let results = default_results_path(&input);
    let journal = journal_path(&results);
    let fake = FakeWolkvox::start(Behavior::ok());
    send(&input, &fake, &[]).expect_code(0);
    let whole = fs::read(&journal).unwrap();
    let before = fs::read(&results).unwrap();
    let half = whole.len() / 2;
    let line_end = whole[..half].iter().rposition(|&b| b == b'\n').unwrap() + 1;
    let mut zeroed = whole.clone();
    zeroed[half..].fill(0);
    let damages: [(&str, Vec<u8>); 4] = [
        ("emptied", Vec::new()),
        ("cut in half", whole[..half].to_vec()),
        ("cut at a line", whole[..line_end].to_vec()),
        ("second half zero-filled", zeroed),
    ];
    for (what, bytes) in damages {
        fs::write(&journal, &bytes).unwrap();
        let again = FakeWolkvox::start(Behavior::ok());
        let out = send(&input, &again, &["--resume"]);
        out.expect_code(2);
        assert!(
            again.send_requests().is_empty(),
            "{what}: {} rows sent again",
            again.send_requests().len()
        );
        assert!(
            out.stderr.contains("journal") && out.stderr.contains("damaged"),
            "{what}: {}",
            out.stderr
        );
        assert_eq!(
            fs::read(&results).unwrap(),
            before,
            "{what}: results changed"
        );
    }
    // The whole journal back: resuming is fine and sends nothing.
    fs::write(&journal, &whole).unwrap();
    let again = FakeWolkvox::start(Behavior::ok());
    send(&input, &again, &["--resume"]).expect_code(0);
    assert!(again.send_requests().is_empty());
}

// ---------------------------------------------------------------------------------------
// 3. One campaign identity.

/// An HSM run resumed without `--hsm` is refused: it would send free messages to people
/// who just got the template. The message names what differs and the matching command.
#[test]
fn a_template_run_resumed_as_free_messages_is_refused() {
    let dir = temp_dir();
    let (input, _) = list(dir.path(), "citas.csv", 6);
    let fake = FakeWolkvox::start(Behavior::ok());
    send(
        &input,
        &fake,
        &["--hsm", "cita_recordatorio", "--hsm-vars", "nombre"],
    )
    .expect_code(0);
    let results = input.with_file_name("citas.hsm.results.csv");
    assert!(results.exists());
    let before = fs::read(&results).unwrap();

    let again = FakeWolkvox::start(Behavior::ok());
    let out = send(
        &input,
        &again,
        &["--results", results.to_str().unwrap(), "--resume"],
    );
    out.expect_code(2);
    assert!(again.send_requests().is_empty(), "free messages were sent");
    assert!(
        out.stderr.contains("cita_recordatorio") && out.stderr.contains("--hsm"),
        "{}",
        out.stderr
    );
    assert_eq!(fs::read(&results).unwrap(), before);

    // Another template name, or other variables: refused too.
    for args in [
        &["--hsm", "otra_plantilla", "--hsm-vars", "nombre"][..],
        &["--hsm", "cita_recordatorio", "--hsm-vars", "nombre,message"][..],
    ] {
        let mut all = vec!["--results", results.to_str().unwrap(), "--resume"];
        all.extend_from_slice(args);
        let out = send(&input, &again, &all);
        out.expect_code(2);
        assert!(again.send_requests().is_empty(), "{args:?}");
    }
}

/// The other way round, and another connector: refused. Editing the list stays allowed.
#[test]
fn a_free_run_resumed_with_other_settings_is_refused_but_an_edited_list_is_resumed() {
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), "contacts.csv", 5);
    let fake = FakeWolkvox::start(Behavior::ok());
    send(&input, &fake, &[]).expect_code(0);
    let again = FakeWolkvox::start(Behavior::ok());
    let results = default_results_path(&input);
    let out = send(
        &input,
        &again,
        &[
            "--results",
            results.to_str().unwrap(),
            "--resume",
            "--hsm",
            "cita",
            "--hsm-vars",
            "nombre",
        ],
    );
    out.expect_code(2);
    assert!(again.send_requests().is_empty());

    let other = write_named_config(dir.path(), "other.toml", "[api]\nconnector_id = \"2\"\n");
    // A list without a connector column, so the config's connector is the one used.
    let plain = write_csv(
        dir.path(),
        "plain.csv",
        &format!("telephone,message\n{},Hola\n{},Hola\n", tels[0], tels[1]),
    );
    let mut c = send_cmd(&plain, &again, TOKEN);
    c.arg("--config").arg(config(dir.path()));
    run(c).expect_code(0);
    let sent_before = again.send_requests().len();
    let mut c = send_cmd(&plain, &again, TOKEN);
    c.arg("--config").arg(&other).arg("--resume");
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("connector"), "{}", out.stderr);
    assert_eq!(again.send_requests().len(), sent_before);

    // Rows added and reordered: only the new row goes out.
    let mut text = fs::read_to_string(&input).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut edited = vec![lines[0].to_owned()];
    edited.extend(lines[1..].iter().rev().map(|l| l.to_string()));
    edited.push("573009998877,Nuevo,1,Eva".into());
    text = edited.join("\n") + "\n";
    fs::write(&input, text).unwrap();
    let third = FakeWolkvox::start(Behavior::ok());
    send(&input, &third, &["--resume"]).expect_code(0);
    assert_eq!(third.delivered_telephones(), ["573009998877"]);
}

// ---------------------------------------------------------------------------------------
// 4. `report` is exact.

/// A run in progress is reported as such, with rows done out of the total.
#[test]
fn report_on_a_run_in_progress_says_so_with_the_total() {
    let dir = temp_dir();
    let (input, _) = list(dir.path(), "contacts.csv", 30);
    let results = default_results_path(&input);
    let slow = FakeWolkvox::start(Behavior::ok().latency(300));
    let config_arg = config(dir.path()).to_string_lossy().into_owned();
    let spawned = spawn_send(&input, &slow, TOKEN, &["--config", &config_arg]);
    assert!(slow.wait_for_requests(4, Duration::from_secs(20)));
    let mut c = cmd();
    c.arg("report").arg(&results);
    let out = run(c);
    spawned.signal("INT");
    let _ = spawned.wait(Duration::from_secs(30));
    out.expect_code(0);
    assert!(out.stdout.contains("in progress"), "{}", out.stdout);
    assert!(out.stdout.contains("of 30"), "{}", out.stdout);
    assert!(!out.stdout.contains("nothing left"), "{}", out.stdout);
}

/// After a second Ctrl-C, rows never recorded are counted and the next step resumes
/// them; for an HSM run, the next step carries `--hsm` and finds the list.
#[test]
fn report_counts_rows_never_attempted_and_its_next_step_defines_the_campaign() {
    let dir = temp_dir();
    let (input, _) = list(dir.path(), "citas.csv", 40);
    let results = input.with_file_name("citas.hsm.results.csv");
    let slow = FakeWolkvox::start(Behavior::ok().latency(300));
    let config_arg = config(dir.path()).to_string_lossy().into_owned();
    let spawned = spawn_send(
        &input,
        &slow,
        TOKEN,
        &[
            "--config",
            &config_arg,
            "--hsm",
            "cita_recordatorio",
            "--hsm-vars",
            "nombre",
        ],
    );
    assert!(slow.wait_for_requests(4, Duration::from_secs(20)));
    spawned.signal("INT");
    std::thread::sleep(Duration::from_millis(50));
    spawned.signal("INT");
    let (_, out) = spawned.wait(Duration::from_secs(30));
    out.expect_code(3);
    let mut c = cmd();
    c.arg("report").arg(&results);
    let out = run(c);
    out.expect_code(0);
    assert!(!out.stdout.contains("nothing left"), "{}", out.stdout);
    assert!(out.stdout.contains("never attempted"), "{}", out.stdout);
    assert!(
        out.stdout.contains("--hsm cita_recordatorio") && out.stdout.contains("--hsm-vars nombre"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(input.to_str().unwrap()) && !out.stdout.contains("INPUT"),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------------------
// A full disk mid-run.

/// Files that can no longer grow mid-run (as on a full disk: the run is started with a
/// small RLIMIT_FSIZE, as `ulimit -f` does, leaving SIGXFSZ as the shell does; the tool
/// ignores that signal, so writes past the limit fail with EFBIG instead of killing it
/// with exit 153, as they did before issue 26) stop the run with exit 3, true
/// counts in the summary and `--summary-json`, no stray temporary file and the resume
/// command; resuming then sends no row twice.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_mid_run_stops_with_exit_3_and_resuming_sends_nothing_twice() {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir();
    let (input, tels) = list(dir.path(), "contacts.csv", 60);
    let results = default_results_path(&input);
    let summary = dir.path().join("summary.json");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wolkvox-dispatch"));
    c.arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(fake.base_url())
        .args(["--rate", "1000", "--no-quota-check", "--config"])
        .arg(config(dir.path()))
        .arg("--summary-json")
        .arg(&summary)
        // The ledger alone is larger than this limit (see `ledger::` for a ledger on a
        // full disk); this test is about the results and the journal.
        .arg("--no-ledger")
        .env("XDG_STATE_HOME", test_state_home())
        .env("WOLKVOX_TOKEN", TOKEN)
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .env_remove("RUST_LOG");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 8 * 1024,
                rlim_max: 8 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().expect("run the binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stdout}\n{stderr}");
    // The workbook cannot be written either: a warning, not a crash (the workbook
    // library panics when its temporary file cannot grow).
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stdout.contains("run stopped"), "{stdout}");
    assert!(stdout.contains("To continue, run:"), "{stdout}");
    let delivered_first = fake.delivered_telephones();
    assert!(
        !delivered_first.is_empty() && delivered_first.len() < 60,
        "the limit should stop the run part-way: {} sent",
        delivered_first.len()
    );
    let sent_line = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("sent"))
        .unwrap_or_default()
        .to_owned();
    assert!(
        sent_line.contains(&delivered_first.len().to_string()),
        "the summary's sent count is not the {} delivered: {stdout}",
        delivered_first.len()
    );
    let json: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 3, "{json}");
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "stray files: {leftovers:?}");

    // Space again: the resume sends each remaining row once, and nothing twice.
    let later = FakeWolkvox::start(Behavior::ok());
    let out = send(&input, &later, &["--resume"]);
    assert!(matches!(out.code, 0 | 1), "{out:?}");
    let mut all: Vec<String> = delivered_first;
    all.extend(later.delivered_telephones());
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "a telephone got the message twice");
    let lines = read_results(&results);
    assert_eq!(statuses_by_row(&lines).len(), 60, "one line per row");
    for line in &lines {
        if line["status"] == "sent" {
            assert!(unique.contains(&line["telephone"]), "{line:?}");
        }
    }
    assert!(unique.len() >= 60 - lines.iter().filter(|l| l["status"] == "unknown").count());
    let _ = tels;
}

// ---------------------------------------------------------------------------------------
// Two lists with the same stem.

/// `contacts.csv` and `contacts.txt` share their default results file: the one that did
/// not write it is told whose it is, with or without `--resume`, and sends nothing.
#[test]
fn two_lists_with_the_same_stem_are_never_confused() {
    let dir = temp_dir();
    let (csv_list, _) = list(dir.path(), "contacts.csv", 3);
    let fake = FakeWolkvox::start(Behavior::ok());
    send(&csv_list, &fake, &[]).expect_code(0);
    let results = default_results_path(&csv_list);
    let before = fs::read(&results).unwrap();
    let other = write_csv(
        dir.path(),
        "contacts.txt",
        "telephone,message,connector_id\n573001239999,Otra lista,1\n",
    );
    let again = FakeWolkvox::start(Behavior::ok());
    for args in [&[][..], &["--resume"][..]] {
        let out = send(&other, &again, args);
        out.expect_code(2);
        assert!(
            out.stderr.contains("another list")
                && out.stderr.contains("contacts.csv")
                && out.stderr.contains("--results"),
            "{args:?}: {}",
            out.stderr
        );
    }
    assert!(again.send_requests().is_empty());
    assert_eq!(fs::read(&results).unwrap(), before);
}
