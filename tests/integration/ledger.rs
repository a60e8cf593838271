//! The send ledger (issue 27): nobody gets the same message twice, whatever people do
//! with the file. Every test's ledger is its own (`XDG_STATE_HOME`, see
//! `common::test_state_home`), shared by the runs of that test.

use crate::common;

use std::path::Path;
use std::time::Duration;

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::*;

const TOKEN: &str = "tok-ledger-1";

fn rows_of<'a>(tels: &'a [String], text: &'a str) -> Vec<(&'a str, &'a str)> {
    tels.iter().map(|t| (t.as_str(), text)).collect()
}

/// The results' status of every row, in row order.
fn statuses(results: &Path) -> Vec<String> {
    let mut rows = read_results(results);
    rows.sort_by_key(|r| r["row"].parse::<u64>().unwrap_or(0));
    rows.into_iter().map(|r| r["status"].clone()).collect()
}

fn count(statuses: &[String], status: &str) -> usize {
    statuses.iter().filter(|s| *s == status).count()
}

/// The "Result" column of the workbook's rows sheet.
fn workbook_results(path: &Path) -> Vec<String> {
    let mut book: Xlsx<_> =
        open_workbook(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let range = book.worksheet_range("Rows").expect("rows sheet");
    let header: Vec<String> = range
        .rows()
        .next()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .unwrap_or_default();
    let col = header.iter().position(|h| h == "Result").expect("Result");
    range
        .rows()
        .skip(1)
        .map(|r| match &r[col] {
            Data::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

/// A list re-saved by a spreadsheet (its formula re-rendered every text: "9:00 AM" is
/// now "9:00 a. m."), with one phone fixed and one row deleted, resumed: the one new
/// contact is sent, nobody twice, and every row that went out still says `sent`.
#[test]
fn a_resaved_list_resumed_sends_the_new_contact_and_nobody_twice() {
    let dir = temp_dir();
    let tels = colombian_mobiles(41);
    let first: Vec<String> = tels[..40].to_vec();
    let input = write_csv(
        dir.path(),
        "citas.csv",
        &contacts_csv(&rows_of(&first, "Su cita es mañana a las 9:00 AM"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);
    assert_eq!(fake.delivered().len(), 40);

    // Re-saved: row 3 deleted, row 10's phone fixed (a new contact), every text
    // re-rendered.
    let mut resaved: Vec<String> = first.clone();
    resaved.remove(2);
    resaved[8] = tels[40].clone();
    write_csv(
        dir.path(),
        "citas.csv",
        &contacts_csv(
            &rows_of(&resaved, "Su cita es mañana a las 9:00 a. m."),
            "1",
        ),
    );
    let again = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &again, TOKEN);
    c.arg("--resume");
    let out = run(c);
    assert_eq!(
        again.delivered_telephones(),
        [tels[40].clone()],
        "only the new contact: {}",
        out.stderr
    );
    let results = default_results_path(&input);
    let st = statuses(&results);
    assert_eq!(st.len(), 39);
    assert_eq!(count(&st, "sent"), 39, "{st:?}");
    let held = read_results(&results)
        .into_iter()
        .find(|r| r["telephone"] == resaved[0])
        .expect("row 1");
    assert!(
        held["msg"].contains("held") && held["msg"].contains("--resend-changed"),
        "{held:?}"
    );

    // `report` counts what went out, also to the two numbers no longer in the list
    // (row 3 deleted, row 10's old phone): from the journal.
    let mut r = cmd();
    r.arg("report").arg(&results).args(["--format", "json"]);
    let out = run(r);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["counts"]["sent"], 39, "{}", out.stdout);
    assert_eq!(json["went_out_to_rows_gone"], 2, "{}", out.stdout);
    let mut r = cmd();
    r.arg("report").arg(&results);
    let out = run(r);
    assert!(
        out.stdout.contains("2 more messages went out"),
        "{}",
        out.stdout
    );

    // And --resend-changed sends the new text on purpose.
    let third = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &third, TOKEN);
    c.args(["--resume", "--resend-changed"]);
    run(c).expect_code(0);
    assert_eq!(third.delivered().len(), 38);
}

/// The nightly cron line run the next day on yesterday's unchanged file: nothing is
/// sent, exit 2, saying when and where the list went out and how to send it on purpose.
#[test]
fn yesterdays_file_sends_nothing_and_exits_2() {
    let dir = temp_dir();
    let tels = colombian_mobiles(30);
    let input = write_csv(
        dir.path(),
        "today.csv",
        &contacts_csv(&rows_of(&tels, "Recuerde su pago de hoy"), "1"),
    );
    let day1 = dir.path().join("2026-12-03.results.csv");
    let day2 = dir.path().join("2026-12-04.results.csv");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--results").arg(&day1);
    run(c).expect_code(0);
    assert_eq!(fake.delivered().len(), 30);

    let next = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &next, TOKEN);
    c.arg("--results").arg(&day2);
    let out = run(c);
    out.expect_code(2);
    assert_eq!(next.count(), 0, "nothing sent");
    assert!(out.stderr.contains("already sent"), "{}", out.stderr);
    assert!(out.stderr.contains("--allow-repeat"), "{}", out.stderr);
    assert!(
        out.stderr.contains("2026-12-03.results.csv"),
        "{}",
        out.stderr
    );
    assert!(!day2.exists(), "a refused run leaves no results");

    // Shown in advance by validate and by a dry run.
    let mut v = cmd();
    v.arg("validate").arg(&input);
    let out = run(v);
    out.expect_code(2);
    assert!(out.stderr.contains("already sent"), "{}", out.stderr);
    let mut d = cmd();
    d.arg("send").arg(&input).arg("--dry-run");
    run(d).expect_code(2);

    // On purpose: sent again.
    let mut c = send_cmd(&input, &next, TOKEN);
    c.arg("--results").arg(&day2).arg("--allow-repeat");
    run(c).expect_code(0);
    assert_eq!(next.delivered().len(), 30);
}

/// A few repeated rows in a new list are held, and the rest are sent.
#[test]
fn the_same_message_within_the_window_is_held_naming_date_and_results() {
    let dir = temp_dir();
    let tels = colombian_mobiles(10);
    let a = write_csv(
        dir.path(),
        "a.csv",
        &contacts_csv(&rows_of(&tels[..3], "Promo de diciembre"), "1"),
    );
    let b = write_csv(
        dir.path(),
        "b.csv",
        &contacts_csv(&rows_of(&tels, "Promo de diciembre"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&a, &fake, TOKEN)).expect_code(0);
    // A dry run shows the held rows in advance.
    let mut d = cmd();
    d.arg("send").arg(&b).arg("--dry-run");
    run(d).expect_code(4);
    let dry = statuses(&default_dry_run_path(&b));
    assert_eq!(count(&dry, "held"), 3, "{dry:?}");
    assert_eq!(count(&dry, "dry_run"), 7, "{dry:?}");

    let out = run(send_cmd(&b, &fake, TOKEN));
    out.expect_code(4);
    assert_eq!(fake.delivered().len(), 3 + 7, "{}", out.stderr);
    let results = read_results(&default_results_path(&b));
    let held: Vec<_> = results.iter().filter(|r| r["status"] == "held").collect();
    assert_eq!(held.len(), 3);
    assert!(
        held[0]["msg"].contains("a.results.csv") && held[0]["msg"].contains("--allow-repeat"),
        "{:?}",
        held[0]
    );
    // `validate` tells the same before anything is sent.
    let c = write_csv(
        dir.path(),
        "c.csv",
        &contacts_csv(&rows_of(&tels[..4], "Promo de diciembre"), "1"),
    );
    let mut v = cmd();
    v.arg("validate").arg(&c);
    let out = run(v);
    assert!(out.stdout.contains("held"), "{}", out.stdout);
    // --no-ledger: today's behaviour, sent again.
    let mut c2 = send_cmd(&c, &fake, TOKEN);
    c2.arg("--no-ledger");
    run(c2).expect_code(0);
    assert_eq!(fake.delivered().len(), 14);
}

/// After a full send, a resume refused by the quota check and a resume of the list
/// with blank messages: results, workbook and report still show the sent rows `sent`.
#[test]
fn after_a_refused_and_an_emptied_resume_the_sent_rows_stay_sent() {
    let dir = temp_dir();
    let tels = colombian_mobiles(12);
    let input = write_csv(
        dir.path(),
        "citas.csv",
        &contacts_csv(&rows_of(&tels, "Cita a las 9:00 AM"), "1"),
    );
    let results = default_results_path(&input);
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);

    // Re-rendered texts sent on purpose, but today's quota is spent: refused.
    write_csv(
        dir.path(),
        "citas.csv",
        &contacts_csv(&rows_of(&tels, "Cita a las 9:00 a. m."), "1"),
    );
    let spent = FakeWolkvox::start(Behavior::ok().quota(TOKEN, 0));
    let mut c = send_cmd_checking_quota(&input, &spent, TOKEN);
    c.args(["--resume", "--resend-changed"]);
    run(c).expect_code(2);
    assert_eq!(spent.send_requests().len(), 0);
    assert_eq!(count(&statuses(&results), "sent"), 12, "after the refusal");

    // A spreadsheet that dropped its cached formula values: blank messages.
    write_csv(
        dir.path(),
        "citas.csv",
        &contacts_csv(&rows_of(&tels, ""), "1"),
    );
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--resume");
    run(c);
    let st = statuses(&results);
    assert_eq!(count(&st, "sent"), 12, "after the emptied resume: {st:?}");
    let line = read_results(&results).remove(0);
    assert!(line["msg"].contains("now"), "{line:?}");
    assert!(
        workbook_results(&dir.path().join("citas.results.xlsx"))
            .iter()
            .all(|r| r == "Sent"),
        "the workbook"
    );
    let mut r = cmd();
    r.arg("report").arg(&results).args(["--format", "json"]);
    let out = run(r);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json["counts"]["sent"], 12, "{}", out.stdout);
    assert_eq!(fake.delivered().len(), 12, "nobody twice");
}

/// Stop 24's finding: a resume whose phone settings changed made a sent row invalid
/// and erased it from the results.
#[test]
fn a_resume_that_makes_a_sent_row_invalid_keeps_it_sent() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "l.csv",
        "telephone,message,connector_id\n300 123 4567,hola uno,1\n+57 300 765 4321,hola dos,1\n",
    );
    let co = write_named_config(dir.path(), "a.toml", "[phone]\ndefault_country = \"CO\"\n");
    let none = write_named_config(dir.path(), "b.toml", "");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&co);
    run(c).expect_code(0);
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&none).arg("--resume");
    run(c);
    let results = read_results(&default_results_path(&input));
    assert_eq!(statuses_by_row(&results)[&1], "sent", "{results:?}");
    assert!(row(&results, 1)["msg"].contains("telephone"), "{results:?}");
    assert_eq!(fake.delivered().len(), 2);
}

/// Two `send` processes at once, on two lists sharing 100 phones with one text: each
/// shared phone gets it once.
#[test]
fn two_runs_at_once_sharing_phones_send_each_once() {
    let dir = temp_dir();
    let tels = colombian_mobiles(400);
    let text = "Aviso importante";
    // Each list: 100 shared phones (a minority, so neither is refused as already
    // sent) and 150 of its own.
    let mut a: Vec<String> = tels[..100].to_vec();
    a.extend_from_slice(&tels[100..250]);
    let mut b: Vec<String> = tels[..100].to_vec();
    b.extend_from_slice(&tels[250..400]);
    b.reverse();
    let la = write_csv(dir.path(), "a.csv", &contacts_csv(&rows_of(&a, text), "1"));
    let lb = write_csv(dir.path(), "b.csv", &contacts_csv(&rows_of(&b, text), "1"));
    let fake = FakeWolkvox::start(Behavior::ok().latency(5));
    let ra = spawn_send(&la, &fake, TOKEN, &[]);
    let rb = spawn_send(&lb, &fake, "tok-ledger-2", &[]);
    let (_, oa) = ra.wait(Duration::from_secs(120));
    let (_, ob) = rb.wait(Duration::from_secs(120));
    let mut per_phone = std::collections::HashMap::<String, usize>::new();
    for t in fake.delivered_telephones() {
        *per_phone.entry(t).or_default() += 1;
    }
    for t in &tels[..100] {
        assert_eq!(
            per_phone.get(t).copied().unwrap_or(0),
            1,
            "{t}\n--- a ---\n{}\n--- b ---\n{}",
            oa.stderr,
            ob.stderr
        );
    }
    assert_eq!(per_phone.len(), 400, "every phone once");
    assert!(per_phone.values().all(|&n| n == 1));
    let held = count(&statuses(&default_results_path(&la)), "held")
        + count(&statuses(&default_results_path(&lb)), "held");
    assert_eq!(
        held, 100,
        "the shared phones are held by one of the two runs"
    );
}

/// A ledger that cannot be used stops the run before anything is sent, saying how to
/// go on without it and what that gives up; nothing is left behind.
#[test]
fn a_damaged_or_unwritable_ledger_stops_the_run_before_anything_is_sent() {
    let dir = temp_dir();
    let tels = colombian_mobiles(3);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "Hola"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let ledger = dir.path().join("ledger.sqlite3");
    std::fs::write(&ledger, vec![0x42; 16_384]).unwrap();
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--ledger").arg(&ledger);
    let out = run(c);
    out.expect_code(2);
    assert_eq!(fake.count(), 0);
    assert!(out.stderr.contains("--no-ledger"), "{}", out.stderr);
    assert!(out.stderr.contains("damaged"), "{}", out.stderr);
    assert!(!default_results_path(&input).exists());
    // A folder where it cannot be created.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, "x").unwrap();
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--ledger").arg(blocker.join("ledger.sqlite3"));
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("--no-ledger"), "{}", out.stderr);
    assert_eq!(fake.count(), 0);
    // Spanish too.
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--ledger").arg(&ledger).env("LANG", "es_CO.UTF-8");
    let out = run(c);
    assert!(out.stderr.contains("registro de envíos"), "{}", out.stderr);
    // The way out works.
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--no-ledger");
    run(c).expect_code(0);
    assert_eq!(fake.delivered().len(), 3);
}

/// `history`: what went to a phone, everything since a time (text, JSON, CSV),
/// seeding from results files of an earlier version, and forgetting a person.
#[test]
fn history_lists_imports_and_forgets() {
    let dir = temp_dir();
    let tels = colombian_mobiles(3);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "Hola, su pedido llegó"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    // Sent without the ledger (as by an earlier version): the ledger knows nothing.
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--no-ledger");
    run(c).expect_code(0);
    let mut h = cmd();
    h.args(["history", "+57 300 123 0000"]);
    let out = run(h);
    out.expect_code(0);
    assert!(out.stdout.contains("nothing"), "{}", out.stdout);
    // Imported from the results file and its journal.
    let mut h = cmd();
    h.args(["history", "import"])
        .arg(default_results_path(&input));
    let out = run(h);
    out.expect_code(0);
    assert!(out.stdout.contains("3 messages added"), "{}", out.stdout);
    let mut h = cmd();
    h.args(["history", "+57 300 123 0000"]);
    let out = run(h);
    assert!(
        out.stdout.contains("573001230000") && out.stdout.contains("sent"),
        "{}",
        out.stdout
    );
    // So a new campaign with the same message is refused as already sent.
    let again = write_csv(
        dir.path(),
        "again.csv",
        &contacts_csv(&rows_of(&tels, "Hola, su pedido llegó"), "1"),
    );
    run(send_cmd(&again, &fake, TOKEN)).expect_code(2);
    assert_eq!(fake.delivered().len(), 3);
    let mut h = cmd();
    h.args(["history", "--since", "7d", "--format", "json"]);
    let out = run(h);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(json.as_array().map(Vec::len), Some(3), "{}", out.stdout);
    let mut h = cmd();
    h.args(["history", "--format", "csv"]);
    let out = run(h);
    assert_eq!(out.stdout.lines().count(), 4, "{}", out.stdout);
    let mut h = cmd();
    h.args(["history", "forget", "3001230000", "--lang", "en"])
        .arg("--config")
        .arg(write_config(
            dir.path(),
            "[phone]\ndefault_country = \"CO\"\n",
        ));
    let out = run(h);
    out.expect_code(0);
    assert!(out.stdout.contains("1 messages"), "{}", out.stdout);
    let mut h = cmd();
    h.args(["history", "--format", "csv"]);
    assert_eq!(run(h).stdout.lines().count(), 3);
}

/// `[ledger] max_per_phone`: beyond the cap, held, naming the last message.
#[test]
fn the_frequency_cap_holds_a_third_message_in_a_day() {
    let dir = temp_dir();
    let tel = colombian_mobiles(1).remove(0);
    let config = write_config(dir.path(), "[ledger]\nmax_per_phone = \"2/24h\"\n");
    let fake = FakeWolkvox::start(Behavior::ok());
    for (i, text) in ["uno", "dos", "tres"].iter().enumerate() {
        let list = write_csv(
            dir.path(),
            &format!("l{i}.csv"),
            &contacts_csv(&[(tel.as_str(), text)], "1"),
        );
        let mut c = send_cmd(&list, &fake, TOKEN);
        c.arg("--config").arg(&config);
        let out = run(c);
        if i < 2 {
            out.expect_code(0);
        } else {
            out.expect_code(4);
            let r = read_results(&default_results_path(&list));
            assert_eq!(r[0]["status"], "held");
            assert!(r[0]["msg"].contains("max_per_phone"), "{r:?}");
        }
    }
    assert_eq!(fake.delivered().len(), 2);
}

/// kill -9 between the claim and the sends: the claims hold the list against another
/// campaign (they may have gone out), and the campaign's --resume settles them from its
/// journal: sent, unknown for the requests in flight, released (then sent) for the rest.
#[test]
fn a_run_killed_after_its_claims_holds_them_until_its_resume_settles_them() {
    let dir = temp_dir();
    let tels = colombian_mobiles(20);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "Aviso"), "1"),
    );
    let slow = FakeWolkvox::start(Behavior::ok().latency(400));
    let spawned = spawn_send(&input, &slow, TOKEN, &["--max-failures", "0"]);
    assert!(slow.wait_for_requests(1, Duration::from_secs(30)));
    spawned.kill_9();
    let first = slow.delivered_telephones();

    // Another campaign with the same list: held, nothing sent.
    let other = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &other, TOKEN);
    c.arg("--results").arg(dir.path().join("other.results.csv"));
    run(c).expect_code(2);
    assert_eq!(other.count(), 0);

    // The campaign's resume settles the claims and sends the rest once.
    let mut c = send_cmd(&input, &other, TOKEN);
    c.arg("--resume");
    run(c);
    let mut h = cmd();
    h.args(["history", "--format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&run(h).stdout).expect("json");
    let entries = json.as_array().expect("array");
    assert_eq!(entries.len(), 20, "{json}");
    assert!(
        entries.iter().all(|e| e["outcome"] != "pending"),
        "settled: {json}"
    );
    let again = other.delivered_telephones();
    for t in &again {
        assert!(!first.contains(t), "{t} sent twice");
    }
    // The requests in flight at the kill are `unknown` (never sent again without
    // --retry-unknown); every other row went out once, in the resume.
    let unknown: Vec<&str> = entries
        .iter()
        .filter(|e| e["outcome"] == "unknown")
        .filter_map(|e| e["telephone"].as_str())
        .collect();
    for t in &first {
        assert!(unknown.contains(&t.as_str()), "{t} was in flight: {json}");
    }
    assert_eq!(again.len() + unknown.len(), 20, "{json}");
}

/// A ledger on a full disk (a file-size limit below what it needs): the run stops
/// before anything is sent and leaves no results behind.
#[cfg(target_os = "linux")]
#[test]
fn a_ledger_on_a_full_disk_stops_the_run_before_anything_is_sent() {
    use std::os::unix::process::CommandExt;
    let dir = temp_dir();
    let tels = colombian_mobiles(5);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "Hola"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_wolkvox-dispatch"));
    c.arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(fake.base_url())
        .args(["--rate", "1000", "--no-quota-check"])
        .env("XDG_STATE_HOME", test_state_home())
        .env("WOLKVOX_TOKEN", TOKEN)
        .env("LANG", "C")
        .env_remove("RUST_LOG");
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        c.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 4 * 1024,
                rlim_max: 4 * 1024,
            };
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            if libc::setrlimit(libc::RLIMIT_FSIZE, &limit) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = c.output().expect("run the binary");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--no-ledger"), "{stderr}");
    assert_eq!(fake.count(), 0);
    assert!(!default_results_path(&input).exists());
}

/// Two runs of one list at once under two results names (a cron job that overlaps the
/// previous one): one sends the list, the other finds it claimed and sends nothing.
#[test]
fn the_same_list_twice_at_once_goes_out_once() {
    let dir = temp_dir();
    let tels = colombian_mobiles(60);
    let input = write_csv(
        dir.path(),
        "hoy.csv",
        &contacts_csv(&rows_of(&tels, "Su pedido sale hoy"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok().latency(20));
    let one = dir.path().join("uno.results.csv");
    let two = dir.path().join("dos.results.csv");
    let a = spawn_send(&input, &fake, TOKEN, &["--results", one.to_str().unwrap()]);
    let b = spawn_send(
        &input,
        &fake,
        "tok-ledger-2",
        &["--results", two.to_str().unwrap()],
    );
    let (_, oa) = a.wait(Duration::from_secs(120));
    let (_, ob) = b.wait(Duration::from_secs(120));
    let mut codes = [oa.code, ob.code];
    codes.sort_unstable();
    assert_eq!(codes, [0, 2], "{}\n{}", oa.stderr, ob.stderr);
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    delivered.dedup();
    assert_eq!(delivered.len(), 60);
    assert_eq!(fake.delivered().len(), 60, "each once");
}

/// `reconcile` tells the ledger what it settled: an `unknown` row Wolkvox's report lists
/// becomes `sent`; one it does not list (`not_sent`) leaves the ledger, so it is not held.
#[test]
fn reconcile_settles_the_ledger_too() {
    let dir = temp_dir();
    let tels = colombian_mobiles(3);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "Hola, su pedido está listo"), "1"),
    );
    let (delivered, lost) = (tels[0].clone(), tels[1].clone());
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        let t = req.telephone.as_deref()?;
        if t == delivered {
            Some(Reply::DeliverThenHang(Duration::from_secs(3)))
        } else if t == lost {
            Some(Reply::DropConnection)
        } else {
            None
        }
    }));
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\ntimeout = \"1s\"\n[campaign]\ntimezone = \"UTC\"\n[retry]\nmax_attempts = 1\n",
    );
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(1);
    let outcomes = |dir: &Path| {
        let mut h = cmd();
        h.current_dir(dir).args(["history", "--format", "json"]);
        let json: serde_json::Value = serde_json::from_str(&run(h).stdout).expect("json");
        let mut out: Vec<(String, String)> = json
            .as_array()
            .expect("array")
            .iter()
            .map(|e| {
                (
                    e["telephone"].as_str().unwrap_or_default().to_owned(),
                    e["outcome"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    };
    let before = outcomes(dir.path());
    assert_eq!(
        before,
        [
            (tels[0].clone(), "unknown".to_owned()),
            (tels[1].clone(), "unknown".to_owned()),
            (tels[2].clone(), "sent".to_owned()),
        ]
    );
    let mut r = reconcile_cmd(&default_results_path(&input), &config, &fake, TOKEN);
    r.args(["--settle-after", "0s"]);
    run(r).expect_code(0);
    assert_eq!(
        outcomes(dir.path()),
        [
            (tels[0].clone(), "sent".to_owned()),
            (tels[2].clone(), "sent".to_owned()),
        ]
    );
}

// ledger identity: a campaign is its journal, not a spelling of its results path.

/// `send L.csv`, the results moved away (as the tool advises to start from scratch, and
/// as a cron job that archives its results does), `send L.csv` again: nobody gets the
/// message twice; validate and a dry run say so in advance.
#[test]
fn the_same_results_path_after_the_results_were_moved_away_sends_nothing_twice() {
    let dir = temp_dir();
    let tels = colombian_mobiles(10);
    let input = write_csv(
        dir.path(),
        "L.csv",
        &contacts_csv(&rows_of(&tels, "Hola cliente"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);
    assert_eq!(fake.delivered().len(), 10);
    let old = dir.path().join("old");
    std::fs::create_dir(&old).unwrap();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.starts_with("L.results.") {
            std::fs::rename(&path, old.join(&name)).unwrap();
        }
    }
    // Shown in advance.
    let mut v = cmd();
    v.arg("validate").arg(&input);
    let out = run(v);
    out.expect_code(2);
    assert!(out.stderr.contains("already sent"), "{}", out.stderr);
    let mut d = cmd();
    d.arg("send").arg(&input).arg("--dry-run");
    run(d).expect_code(2);
    // And held.
    let again = FakeWolkvox::start(Behavior::ok());
    let out = run(send_cmd(&input, &again, TOKEN));
    out.expect_code(2);
    assert!(out.stderr.contains("already sent"), "{}", out.stderr);
    assert_eq!(again.count(), 0, "nothing sent twice");
}

/// Another spelling of the results path (a symbolic link to its folder) is the same
/// campaign: the resume of a run killed after its claims sends the rows never
/// attempted, and nobody twice.
#[cfg(unix)]
#[test]
fn a_resume_through_another_spelling_of_the_results_path_is_the_same_campaign() {
    let dir = temp_dir();
    let real = dir.path().join("real");
    std::fs::create_dir(&real).unwrap();
    let alias = dir.path().join("alias");
    std::os::unix::fs::symlink(&real, &alias).unwrap();
    let tels = colombian_mobiles(20);
    let input = write_csv(
        dir.path(),
        "A.csv",
        &contacts_csv(&rows_of(&tels, "Aviso"), "1"),
    );
    let slow = FakeWolkvox::start(Behavior::ok().latency(400));
    let through_alias = alias.join("A.results.csv");
    let spawned = spawn_send(
        &input,
        &slow,
        TOKEN,
        &["--results", through_alias.to_str().unwrap()],
    );
    assert!(slow.wait_for_requests(2, Duration::from_secs(30)));
    spawned.kill_9();
    let first = slow.delivered_telephones();
    let fake = FakeWolkvox::start(Behavior::ok());
    let results = real.join("A.results.csv");
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--results").arg(&results).arg("--resume");
    let out = run(c);
    assert!(!out.stderr.contains("already sent"), "{}", out.stderr);
    let again = fake.delivered_telephones();
    for t in &again {
        assert!(!first.contains(t), "{t} sent twice");
    }
    let st = statuses(&results);
    assert_eq!(count(&st, "held"), 0, "{st:?}");
    assert_eq!(count(&st, "sent") + count(&st, "unknown"), 20, "{st:?}");
}

/// A journal restored from an older copy (cut back to mid-run, the results gone): the
/// resume does not send again what the ledger records as sent by this campaign.
#[test]
fn a_journal_restored_from_an_older_copy_sends_nothing_twice() {
    let dir = temp_dir();
    let tels = colombian_mobiles(10);
    let input = write_csv(
        dir.path(),
        "A.csv",
        &contacts_csv(&rows_of(&tels, "Hola"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);
    assert_eq!(fake.delivered().len(), 10);
    let results = default_results_path(&input);
    let journal = journal_path(&results);
    let text = std::fs::read_to_string(&journal).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let cut = lines.len() / 2;
    std::fs::write(&journal, lines[..cut].join("\n") + "\n").unwrap();
    std::fs::remove_file(&results).unwrap();
    let _ = std::fs::remove_file(dir.path().join("A.results.xlsx"));
    let again = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &again, TOKEN);
    c.arg("--resume");
    run(c);
    assert_eq!(again.count(), 0, "nothing sent twice");
}

/// A ledger deleted between a run and its resume learns the first half from the
/// journal: the same list under another results name sends nobody anything twice.
#[test]
fn a_resume_seeds_a_deleted_ledger_from_the_journal() {
    let dir = temp_dir();
    let tels = colombian_mobiles(10);
    let input = write_csv(
        dir.path(),
        "A.csv",
        &contacts_csv(&rows_of(&tels, "Hola"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.args(["--limit", "5"]);
    run(c);
    assert_eq!(fake.delivered().len(), 5);
    std::fs::remove_dir_all(test_state_home().join("wolkvox-dispatch")).unwrap();
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--resume");
    run(c).expect_code(0);
    assert_eq!(fake.delivered().len(), 10);
    let other = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &other, TOKEN);
    c.arg("--results").arg(dir.path().join("B.results.csv"));
    run(c).expect_code(2);
    assert_eq!(other.count(), 0, "nothing sent twice");
}

/// A ledger file emptied to 0 bytes (truncated) is not taken for a new one.
#[test]
fn an_emptied_ledger_file_stops_the_run() {
    let dir = temp_dir();
    let tels = colombian_mobiles(4);
    let input = write_csv(
        dir.path(),
        "A.csv",
        &contacts_csv(&rows_of(&tels, "Hola"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);
    std::fs::write(test_ledger(), b"").unwrap();
    let other = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &other, TOKEN);
    c.arg("--results").arg(dir.path().join("B.results.csv"));
    let out = run(c);
    out.expect_code(2);
    assert_eq!(other.count(), 0, "nothing sent twice");
    assert!(out.stderr.contains("empty"), "{}", out.stderr);
    assert!(out.stderr.contains("--no-ledger"), "{}", out.stderr);
}

/// `[ledger] keep` shorter than `repeat_window` would erase what holds a repeat (and a
/// running campaign's claims): refused, naming the key.
#[test]
fn a_keep_shorter_than_the_repeat_window_is_refused() {
    let dir = temp_dir();
    let tels = colombian_mobiles(3);
    let input = write_csv(
        dir.path(),
        "A.csv",
        &contacts_csv(&rows_of(&tels, "Hola"), "1"),
    );
    let config = write_config(dir.path(), "[ledger]\nkeep = \"1s\"\n");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(2);
    assert_eq!(fake.count(), 0);
    assert!(out.stderr.contains("keep"), "{}", out.stderr);
    assert!(out.stderr.contains("repeat_window"), "{}", out.stderr);
}

/// A campaign stopped (SIGTERM) whose remaining rows another list then sent: its
/// `--resume` is not refused as "already sent"; those rows are held (exit 4).
#[cfg(unix)]
#[test]
fn the_resume_of_a_stopped_campaign_holds_what_another_list_sent() {
    let dir = temp_dir();
    let tels = colombian_mobiles(20);
    let a = write_csv(
        dir.path(),
        "A.csv",
        &contacts_csv(&rows_of(&tels, "Aviso"), "1"),
    );
    let b = write_csv(
        dir.path(),
        "B.csv",
        &contacts_csv(&rows_of(&tels, "Aviso"), "1"),
    );
    let slow = FakeWolkvox::start(Behavior::ok().latency(300));
    let spawned = spawn_send(&a, &slow, TOKEN, &[]);
    assert!(slow.wait_for_requests(2, Duration::from_secs(30)));
    spawned.signal("TERM");
    let (_, _) = spawned.wait(Duration::from_secs(30));
    let first = slow.delivered_telephones();
    assert!(first.len() < 20, "stopped early");
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&b, &fake, TOKEN));
    assert_eq!(first.len() + fake.delivered().len(), 20, "B sent the rest");
    let again = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&a, &again, TOKEN);
    c.arg("--resume");
    let out = run(c);
    out.expect_code(4);
    assert!(!out.stderr.contains("already sent"), "{}", out.stderr);
    assert_eq!(again.count(), 0, "nothing sent twice");
    let st = statuses(&default_results_path(&a));
    assert_eq!(count(&st, "held"), 20 - first.len(), "{st:?}");
}

// ---- Follow-ups: what the binary showed (rule 1 visible, words, numbers) ----

/// Rule 1 made visible: texts edited after a full send are held on `--resume` with a
/// warning at the start naming how many and `--resend-changed`, a count in the summary
/// and its JSON, exit 4; `validate` and `send --dry-run` (with or without `--resume`,
/// even naming the real results) show it in advance without touching the real results.
#[test]
fn a_changed_text_on_resume_is_warned_counted_and_shown_in_advance() {
    let dir = temp_dir();
    let tels = colombian_mobiles(3);
    let input = write_csv(
        dir.path(),
        "citas.csv",
        &contacts_csv(&rows_of(&tels, "Su cita es a las 9:00 AM"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);
    let results = default_results_path(&input);
    let real_before = std::fs::read(&results).unwrap();
    let rows = [
        (tels[0].as_str(), "Su cita es a las 9:00 a. m."),
        (tels[1].as_str(), "Su cita es a las 9:00 a. m."),
        (tels[2].as_str(), "Su cita es a las 9:00 AM"),
    ];
    write_csv(dir.path(), "citas.csv", &contacts_csv(&rows, "1"));

    // validate: the spreadsheet's row numbers, the flag, not sent.
    let mut v = cmd();
    v.arg("validate").arg(&input);
    let out = run(v);
    out.expect_code(1);
    assert!(
        out.stdout
            .contains("row 2: held: the text of this row changed")
            && out
                .stdout
                .contains("row 3: held: the text of this row changed")
            && !out.stdout.contains("row 4: held")
            && out.stdout.contains("--resend-changed")
            && !out.stdout.contains("Z (text sent"),
        "{}",
        out.stdout
    );

    // A dry run of the list, and of the resume naming the real results.
    for args in [
        vec!["--dry-run"],
        vec![
            "--dry-run",
            "--resume",
            "--results",
            results.to_str().unwrap(),
        ],
    ] {
        let summary = dir.path().join("dry.json");
        let mut d = cmd();
        d.arg("send")
            .arg(&input)
            .args(&args)
            .arg("--summary-json")
            .arg(&summary);
        let out = run(d);
        out.expect_code(4);
        assert!(
            out.stderr.contains("--resend-changed"),
            "{args:?}: {}",
            out.stderr
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
        assert_eq!(json["held_changed"], 2, "{args:?}: {json}");
        let dry = read_results(&default_dry_run_path(&input));
        let changed = dry
            .iter()
            .filter(|r| r["msg"].contains("text of this row changed"))
            .count();
        assert_eq!(changed, 2, "{args:?}: {dry:?}");
        assert_eq!(std::fs::read(&results).unwrap(), real_before, "{args:?}");
    }
    assert_eq!(fake.delivered().len(), 3, "a dry run sends nothing");

    // The resume: warned at the start, counted, exit 4, nothing sent.
    let summary = dir.path().join("summary.json");
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.args(["--resume", "--summary-json"]).arg(&summary);
    let out = run(c);
    out.expect_code(4);
    assert_eq!(fake.delivered().len(), 3, "nothing sent again");
    assert!(
        out.stderr.contains("2 rows are held") && out.stderr.contains("--resend-changed"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("text changed"), "{}", out.stdout);
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["held_changed"], 2, "{json}");

    // In Spanish too.
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.args(["--resume", "--lang", "es"]);
    let out = run(c);
    assert!(
        out.stderr.contains("2 filas") && out.stderr.contains("--resend-changed"),
        "{}",
        out.stderr
    );
}

/// With `--no-ledger` the text sent earlier is not known: said in words, not "?".
#[test]
fn without_the_ledger_a_held_changed_text_says_the_text_is_not_known() {
    let dir = temp_dir();
    let tels = colombian_mobiles(2);
    let input = write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "uno"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--no-ledger");
    run(c).expect_code(0);
    write_csv(
        dir.path(),
        "l.csv",
        &contacts_csv(&rows_of(&tels, "dos"), "1"),
    );
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.args(["--no-ledger", "--resume"]);
    run(c);
    let r = read_results(&default_results_path(&input));
    let msg = &r[0]["msg"];
    assert!(msg.contains("text of this row changed"), "{msg}");
    assert!(!msg.contains("?)") && msg.contains("not known"), "{msg}");
}

/// `validate` on a list already partly sent: the held line uses the spreadsheet's row
/// number (like its preview) and says "held" once.
#[test]
fn validate_numbers_held_rows_like_its_preview_and_says_held_once() {
    let dir = temp_dir();
    let tels = colombian_mobiles(4);
    let a = write_csv(
        dir.path(),
        "a.csv",
        &contacts_csv(&rows_of(&tels[..1], "Promo"), "1"),
    );
    let b = write_csv(
        dir.path(),
        "b.csv",
        &contacts_csv(&rows_of(&tels, "Promo"), "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&a, &fake, TOKEN)).expect_code(0);
    let mut v = cmd();
    v.arg("validate").arg(&b);
    let out = run(v);
    assert!(
        out.stdout.contains("row 2: held: the same message"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("held: held"), "{}", out.stdout);
    assert!(
        out.stdout.contains(&format!("row 2 -> {}", tels[0])),
        "{}",
        out.stdout
    );
}

/// The cap's period reads as words, in both languages.
#[test]
fn the_frequency_cap_names_its_period_in_words() {
    let dir = temp_dir();
    let tel = colombian_mobiles(1).remove(0);
    let config = write_config(dir.path(), "[ledger]\nmax_per_phone = \"1/24h\"\n");
    let fake = FakeWolkvox::start(Behavior::ok());
    for (i, text) in ["uno", "dos"].iter().enumerate() {
        let list = write_csv(
            dir.path(),
            &format!("l{i}.csv"),
            &contacts_csv(&[(tel.as_str(), text)], "1"),
        );
        let mut c = send_cmd(&list, &fake, TOKEN);
        c.arg("--config").arg(&config);
        run(c);
        if i == 1 {
            let r = read_results(&default_results_path(&list));
            assert!(r[0]["msg"].contains("within 1 day "), "{r:?}");
            let mut v = cmd();
            v.arg("validate")
                .arg(&list)
                .args(["--config"])
                .arg(&config)
                .args(["--lang", "es"]);
            let out = run(v);
            assert!(out.stdout.contains("en 1 día"), "{}", out.stdout);
        }
    }
}

/// A list whose rows went out in several results files: the refusal names them.
#[test]
fn a_list_already_sent_in_several_files_names_them() {
    let dir = temp_dir();
    let tels = colombian_mobiles(10);
    let fake = FakeWolkvox::start(Behavior::ok());
    for (i, part) in tels.chunks(2).enumerate() {
        let list = write_csv(
            dir.path(),
            &format!("part{i}.csv"),
            &contacts_csv(&rows_of(part, "Recuerde su pago"), "1"),
        );
        run(send_cmd(&list, &fake, TOKEN)).expect_code(0);
    }
    let all = write_csv(
        dir.path(),
        "all.csv",
        &contacts_csv(&rows_of(&tels, "Recuerde su pago"), "1"),
    );
    let out = run(send_cmd(&all, &fake, TOKEN));
    out.expect_code(2);
    let named = (0..5)
        .filter(|i| out.stderr.contains(&format!("part{i}.results.csv")))
        .count();
    assert_eq!(named, 3, "the first three: {}", out.stderr);
    assert!(out.stderr.contains("and 2 more"), "{}", out.stderr);
}
