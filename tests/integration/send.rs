//! Integration tests of `wolkvox-dispatch send` and `validate`, driving the real binary
//! against the fake Wolkvox endpoint on 127.0.0.1. Every `send` here passes `--base-url`
//! to the fake, so no test can reach a real Wolkvox server.

use crate::common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "tok-good-1";
const OTHER_TOKEN: &str = "tok-good-2";

/// A list mixing valid and invalid rows. Returns the CSV and, per row (1-based), the
/// normalized telephone for valid rows or `None` for invalid ones, plus the message.
fn mixed_list() -> (String, Vec<(Option<&'static str>, &'static str)>) {
    let rows: Vec<(&str, &str, Option<&str>)> = vec![
        // 1: plain digits with country code (Colombia)
        ("573001234567", "Hola Ana", Some("573001234567")),
        // 2: letters
        ("57300ABC4567", "Hola Luis", None),
        // 3: +, spaces (Ecuador)
        ("+593 99 123 4567", "Hola Marta", Some("593991234567")),
        // 4: blank message
        ("573001234568", "", None),
        // 5: +, parentheses, dashes (Mexico)
        ("+52 (55) 1234-5678", "Hola Pedro", Some("525512345678")),
        // 6: Excel scientific notation
        ("5.73E+11", "Hola Excel", None),
        // 7: leading 00 and dots (Spain)
        ("0034 612.345.678", "Hola Carmen", Some("34612345678")),
        // 8: too few digits
        ("5730012", "Hola Corto", None),
        // 9: too many digits
        ("57300123456789012", "Hola Largo", None),
        // 10: message of spaces only
        ("573001234569", "   ", None),
    ];
    let csv = contacts_csv(
        &rows.iter().map(|(t, m, _)| (*t, *m)).collect::<Vec<_>>(),
        "1",
    );
    (csv, rows.into_iter().map(|(_, m, n)| (n, m)).collect())
}

/// Every telephone recorded `sent` in the results is exactly what the fake delivered,
/// and the fake delivered no telephone twice.
fn assert_sent_matches_delivered(results: &[HashMap<String, String>], fake: &FakeWolkvox) {
    let mut sent: Vec<String> = results
        .iter()
        .filter(|r| r["status"] == "sent")
        .map(|r| r["telephone"].clone())
        .collect();
    let mut delivered = fake.delivered_telephones();
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(
        unique.len(),
        delivered.len(),
        "a telephone was delivered more than once: {delivered:?}"
    );
    sent.sort();
    delivered.sort();
    assert_eq!(
        sent, delivered,
        "rows recorded `sent` differ from what the endpoint delivered"
    );
}

/// Rows are numbered 1..=n, once each, in order.
fn assert_rows_sorted_and_complete(results: &[HashMap<String, String>], n: usize) {
    let rows: Vec<String> = results.iter().map(|r| r["row"].clone()).collect();
    let expected: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
    assert_eq!(
        rows, expected,
        "results must have one line per data row, sorted by row"
    );
}

/// A run that stopped before any success: no row is `sent`, and every row the fake never
/// saw is `not_sent`.
fn assert_nothing_sent_rest_not_sent(results: &[HashMap<String, String>], sends: &[Received]) {
    let requested: HashSet<String> = sends.iter().filter_map(|r| r.telephone.clone()).collect();
    for line in results {
        assert_ne!(line["status"], "sent");
        if !requested.contains(&line["telephone"]) {
            assert_eq!(line["status"], "not_sent", "{line:?}");
        }
    }
}

/// A config with a fast back-off: `[api]` lines, then `[retry]` lines.
macro_rules! fast_retry {
    ($api:literal, $retry:literal) => {
        concat!(
            "[api]\nconnector_id = \"1\"\n",
            $api,
            "\n[retry]\nbase_delay = \"10ms\"\nmax_delay = \"50ms\"\n",
            $retry
        )
    };
}

fn retry_fast_config(dir: &Path, extra: &str) -> std::path::PathBuf {
    write_config(dir, &format!("{}{extra}", fast_retry!("", "")))
}

// ---------------------------------------------------------------------------------------
// Mixed lists, message fidelity, results file.

#[test]
fn mixed_list_sends_exactly_the_valid_rows_once() {
    let dir = temp_dir();
    let (csv, expected) = mixed_list();
    let input = write_csv(dir.path(), "contacts.csv", &csv);
    let fake = FakeWolkvox::start(Behavior::ok());

    let out = run(send_cmd(&input, &fake, TOKEN));
    out.expect_code(4);

    let results = read_results(&default_results_path(&input));
    assert_rows_sorted_and_complete(&results, expected.len());
    for (i, (normalized, _)) in expected.iter().enumerate() {
        let line = row(&results, i as u64 + 1);
        match normalized {
            Some(tel) => {
                assert_eq!(line["status"], "sent", "row {}: {line:?}", i + 1);
                assert_eq!(&line["telephone"], tel, "row {}", i + 1);
            }
            None => assert_eq!(line["status"], "invalid", "row {}: {line:?}", i + 1),
        }
    }

    // The endpoint got exactly the valid rows, each once, with the right content.
    let sends = fake.send_requests();
    let mut got: Vec<String> = sends.iter().filter_map(|r| r.telephone.clone()).collect();
    got.sort();
    let mut want: Vec<String> = expected
        .iter()
        .filter_map(|(t, _)| t.map(str::to_owned))
        .collect();
    want.sort();
    assert_eq!(got, want);
    for r in &sends {
        assert_eq!(r.token.as_deref(), Some(TOKEN));
        assert_eq!(r.api, API_SEND_MESSAGE);
        assert_eq!(r.path, WHATSAPP_PATH);
        assert_eq!(r.method, "POST");
        assert_eq!(
            r.body["connector_id"],
            json!("1"),
            "connector_id goes as a string"
        );
        assert!(r.body["telephone"].is_string(), "telephone as a string");
        let tel = r.telephone.as_deref().unwrap();
        let (_, msg) = expected
            .iter()
            .find(|(t, _)| *t == Some(tel))
            .expect("a valid row");
        assert_eq!(r.message(), Some(*msg));
    }
    assert_sent_matches_delivered(&results, &fake);
    fake.assert_no_overlap_violation();
}

#[test]
fn message_text_reaches_the_api_byte_for_byte() {
    let messages: Vec<(&str, &str)> = vec![
        (
            "573001234567",
            "Hola José, ¿cómo estás? Ñandú, pingüino, acción.",
        ),
        ("593991234567", "Línea 1\nLínea 2\n\nLínea 4 — fin"),
        (
            "525512345678",
            "Dijo \"hola\", y se fue; 50% off, $10 & <b>negrita</b> 'comillas'",
        ),
        ("34612345678", "🎉 Fiesta 👍🏽 👨‍👩‍👧 ✅ 日本語 … ¡listo!"),
        (
            "573001234568",
            "Tab\there, backslash \\ and {braces} [brackets]",
        ),
    ];
    let dir = temp_dir();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&messages, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());

    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);

    let by_tel: HashMap<String, Received> = fake
        .send_requests()
        .into_iter()
        .map(|r| (r.telephone.clone().unwrap(), r))
        .collect();
    assert_eq!(by_tel.len(), messages.len());
    for (tel, msg) in &messages {
        let r = &by_tel[*tel];
        assert_eq!(r.message(), Some(*msg), "message for {tel} changed");
        // And the raw body is valid JSON carrying the same bytes.
        let raw: Value = serde_json::from_slice(&r.raw_body).expect("JSON body");
        assert_eq!(raw["message"].as_str().unwrap().as_bytes(), msg.as_bytes());
    }
}

#[test]
fn crlf_files_and_utf8_bom_do_not_leak_into_the_request() {
    let dir = temp_dir();
    let csv = "\u{feff}Telephone,MESSAGE,Connector_ID\r\n573001234567,Hola Ana,1\r\n+593 99 123 4567,\"Dos\r\nlíneas\",1\r\n34612345678,Último,1\r\n";
    let input = write_csv(dir.path(), "lista.csv", csv);
    let fake = FakeWolkvox::start(Behavior::ok());

    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);

    let by_tel: HashMap<String, String> = fake
        .send_requests()
        .into_iter()
        .map(|r| {
            (
                r.telephone.clone().unwrap(),
                r.message().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(by_tel["573001234567"], "Hola Ana");
    assert_eq!(by_tel["34612345678"], "Último");
    assert!(
        by_tel["593991234567"].starts_with("Dos") && by_tel["593991234567"].ends_with("líneas"),
        "{:?}",
        by_tel["593991234567"]
    );
    assert_eq!(by_tel.len(), 3);
    let results = read_results(&default_results_path(&input));
    assert_eq!(results.len(), 3);
}

#[test]
fn results_file_has_the_exact_columns_and_well_formed_fields() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(
            &[
                ("573001234567", "Hola Ana"),
                ("+593 99 123 4567", "Hola Marta"),
            ],
            "1",
        ),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(0);

    let path = default_results_path(&input);
    assert_eq!(
        path.file_name().unwrap(),
        "contacts.results.csv",
        "default results name"
    );
    let raw = fs::read_to_string(&path).unwrap();
    assert_eq!(
        raw.lines().next().unwrap().trim_end_matches('\r'),
        "row,telephone,status,http_status,code,error,msg,attempts,elapsed_ms,finished_at"
    );
    assert_eq!(read_header(&path), RESULTS_HEADER);
    let results = read_results(&path);
    assert_rows_sorted_and_complete(&results, 2);
    for line in &results {
        assert_eq!(line["status"], "sent");
        assert_eq!(line["http_status"], "201");
        assert_eq!(line["code"], "201");
        assert_eq!(line["error"], "", "error null -> empty");
        assert_eq!(line["msg"], MSG_SENT);
        assert_eq!(line["attempts"], "1");
        line["elapsed_ms"]
            .parse::<u64>()
            .unwrap_or_else(|_| panic!("elapsed_ms not an integer: {line:?}"));
        let finished = &line["finished_at"];
        let ts: jiff::Timestamp = finished
            .parse()
            .unwrap_or_else(|e| panic!("finished_at {finished:?} is not RFC 3339: {e}"));
        assert!(
            finished.ends_with('Z') || finished.ends_with("+00:00"),
            "finished_at {finished:?} is not UTC"
        );
        let age = jiff::Timestamp::now().duration_since(ts);
        assert!(
            age.as_secs() < 600,
            "finished_at {finished:?} is not about now"
        );
    }
    assert_eq!(row(&results, 2)["telephone"], "593991234567");
}

#[test]
fn results_flag_overrides_the_default_path() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola")], "1"),
    );
    let out_dir = dir.path().join("out");
    fs::create_dir(&out_dir).unwrap();
    let results = out_dir.join("mine.csv");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--results").arg(&results);
    run(c).expect_code(0);
    assert!(results.exists());
    assert!(!default_results_path(&input).exists());
    assert_eq!(read_results(&results)[0]["status"], "sent");
}

#[test]
fn summary_goes_to_stdout_with_counts_and_results_path() {
    let dir = temp_dir();
    let (csv, _) = mixed_list();
    let input = write_csv(dir.path(), "contacts.csv", &csv);
    let fake = FakeWolkvox::start(Behavior::ok());
    let out = run(send_cmd(&input, &fake, TOKEN));
    out.expect_code(4);
    assert!(
        out.stdout.contains("contacts.results.csv"),
        "summary names the results file:\n{}",
        out.stdout
    );
    assert!(out.stdout.contains("sent"), "{}", out.stdout);
    assert!(out.stdout.contains("invalid"), "{}", out.stdout);
    assert!(out.stdout.contains('4'), "4 sent:\n{}", out.stdout);
    assert!(out.stdout.contains('6'), "6 invalid:\n{}", out.stdout);
}

#[test]
fn message_length_limit_is_4096_characters() {
    let dir = temp_dir();
    let ok = "a".repeat(4096);
    let too_long = "a".repeat(4097);
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", &ok), ("593991234567", &too_long)], "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(4);
    let results = read_results(&default_results_path(&input));
    assert_eq!(row(&results, 1)["status"], "sent");
    assert_eq!(row(&results, 2)["status"], "invalid");
    assert_eq!(fake.delivered_telephones(), vec!["573001234567".to_owned()]);
    assert_eq!(fake.send_requests()[0].message().map(str::len), Some(4096));
}

#[test]
fn duplicate_rows_are_sent_once() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(
            &[
                ("573001234567", "Hola Ana"),
                ("593991234567", "Hola Marta"),
                ("573001234567", "Hola Ana"),
                ("+57 300-123-4567", "Hola Ana"),
                ("573001234567", "Otro mensaje"),
            ],
            "1",
        ),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, TOKEN)).expect_code(4);
    let results = read_results(&default_results_path(&input));
    let st = statuses_by_row(&results);
    assert_eq!(st[&1], "sent");
    assert_eq!(st[&2], "sent");
    assert_eq!(st[&3], "duplicate");
    assert_eq!(st[&4], "duplicate");
    assert_eq!(
        st[&5], "sent",
        "same person, different message: not a duplicate"
    );
    let ana: Vec<Option<String>> = fake
        .requests_for("573001234567")
        .iter()
        .map(|r| r.message().map(str::to_owned))
        .collect();
    assert_eq!(ana.len(), 2);
    assert!(ana.contains(&Some("Hola Ana".into())));
    assert!(ana.contains(&Some("Otro mensaje".into())));
}

#[test]
fn columns_and_connector_id_come_from_the_config() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "clientes.csv",
        "nombre,Celular,Texto\nAna,573001234567,Hola Ana\nMarta,+593 99 123 4567,Hola Marta\n",
    );
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"7\"\n\n[columns]\ntelephone = \"celular\"\nmessage = \"texto\"\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(0);
    let sends = fake.send_requests();
    assert_eq!(sends.len(), 2);
    for r in &sends {
        assert_eq!(r.connector_id().as_deref(), Some("7"));
    }
    let mut tels: Vec<String> = sends.iter().filter_map(|r| r.telephone.clone()).collect();
    tels.sort();
    assert_eq!(tels, ["573001234567", "593991234567"]);
    assert!(default_results_path(&input).exists());
}

// ---------------------------------------------------------------------------------------
// Dry run and validate.

#[test]
fn dry_run_sends_nothing_and_needs_no_token() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(
            &[
                ("573001234567", "Hola Ana"),
                ("+593 99 123 4567", "Hola Marta"),
                ("34612345678", "Hola Carmen"),
            ],
            "1",
        ),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    for attempt in 0..2 {
        // No WOLKVOX_TOKEN at all (cmd() removes it); a second run overwrites the file.
        let mut c = cmd();
        c.arg("send")
            .arg(&input)
            .arg("--dry-run")
            .arg("--base-url")
            .arg(fake.base_url());
        run(c).expect_code(0);
        let dry = default_dry_run_path(&input);
        assert_eq!(dry.file_name().unwrap(), "contacts.dry-run.csv");
        let results = read_results(&dry);
        assert_rows_sorted_and_complete(&results, 3);
        assert!(
            results.iter().all(|r| r["status"] == "dry_run"),
            "run {attempt}: {results:?}"
        );
        assert_eq!(read_header(&dry), RESULTS_HEADER);
    }
    assert_eq!(fake.count(), 0, "a dry run must not make any request");
    assert!(!default_results_path(&input).exists());
}

#[test]
fn dry_run_marks_invalid_rows_and_exits_4() {
    let dir = temp_dir();
    let (csv, expected) = mixed_list();
    let input = write_csv(dir.path(), "contacts.csv", &csv);
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--dry-run")
        .arg("--base-url")
        .arg(fake.base_url());
    run(c).expect_code(4);
    let results = read_results(&default_dry_run_path(&input));
    assert_rows_sorted_and_complete(&results, expected.len());
    for (i, (normalized, _)) in expected.iter().enumerate() {
        let want = if normalized.is_some() {
            "dry_run"
        } else {
            "invalid"
        };
        assert_eq!(row(&results, i as u64 + 1)["status"], want, "row {}", i + 1);
    }
    assert_eq!(fake.count(), 0);
}

#[test]
fn validate_lists_each_problem_and_a_count() {
    let dir = temp_dir();
    let (csv, _) = mixed_list();
    let input = write_csv(dir.path(), "contacts.csv", &csv);
    let mut c = cmd();
    c.arg("validate").arg(&input);
    let out = run(c);
    out.expect_code(1);
    // Rows as a spreadsheet numbers them: the header is row 1.
    for (n, column) in [
        (3, "telephone"),
        (5, "message"),
        (7, "telephone"),
        (9, "telephone"),
        (10, "telephone"),
        (11, "message"),
    ] {
        let prefix = format!("row {n}, column \"{column}\": ");
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&prefix) && l.len() > prefix.len()),
            "no line starting {prefix:?} with a reason in:\n{}",
            out.stdout
        );
    }
    for n in [2, 4, 6, 8] {
        assert!(
            !out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("row {n},"))),
            "valid row {n} reported:\n{}",
            out.stdout
        );
    }
    assert!(
        out.stdout.contains("6 of 10 rows invalid"),
        "count line:\n{}",
        out.stdout
    );
    // Nothing written beside the input.
    assert!(!default_results_path(&input).exists());
    assert!(!default_dry_run_path(&input).exists());
}

#[test]
fn validate_all_valid_exits_0() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(
            &[("573001234567", "Hola"), ("0052 55 1234 5678", "Hola")],
            "1",
        ),
    );
    let mut c = cmd();
    c.arg("validate").arg(&input);
    let out = run(c);
    out.expect_code(0);
    // No problem line; the preview lines ("row 2 -> ...") show the rows as sent.
    assert!(
        !out.stdout
            .lines()
            .any(|l| l.starts_with("row ") && !l.contains(" -> ")),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("row 3 -> 525512345678:"),
        "{}",
        out.stdout
    );
}

#[test]
fn validate_missing_column_exits_2() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        // Not `phone`: that is an accepted alias of the telephone column.
        "fono,message,connector_id\n573001234567,Hola,1\n",
    );
    let mut c = cmd();
    c.arg("validate").arg(&input);
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("telephone"),
        "names the missing column:\n{}",
        out.stderr
    );
}

// ---------------------------------------------------------------------------------------
// Tokens.

#[test]
fn a_single_refused_token_stops_the_run_with_exit_3() {
    let dir = temp_dir();
    let tels = colombian_mobiles(6);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok().valid_tokens(["the-only-good-token"]));

    run(send_cmd(&input, &fake, "tok-refused")).expect_code(3);

    assert!(
        fake.count() <= 3,
        "only a couple of requests before retiring the token, got {}",
        fake.count()
    );
    assert!(fake.delivered_telephones().is_empty());
    let results = read_results(&default_results_path(&input));
    assert_rows_sorted_and_complete(&results, 6);
    for line in &results {
        assert_eq!(line["status"], "not_sent", "{line:?}");
    }
}

#[test]
fn one_bad_token_of_two_all_rows_go_through_the_good_one() {
    let dir = temp_dir();
    let tels = colombian_mobiles(20);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok().valid_tokens([TOKEN]).latency(2));

    run(send_cmd(&input, &fake, &format!("tok-bad,{TOKEN}"))).expect_code(0);

    let results = read_results(&default_results_path(&input));
    assert_rows_sorted_and_complete(&results, 20);
    assert!(results.iter().all(|r| r["status"] == "sent"), "{results:?}");
    assert_sent_matches_delivered(&results, &fake);
    assert!(
        fake.delivered()
            .iter()
            .all(|r| r.token.as_deref() == Some(TOKEN)),
        "deliveries only through the good token"
    );
    let bad = fake
        .requests()
        .iter()
        .filter(|r| r.token.as_deref() == Some("tok-bad"))
        .count();
    assert!(
        bad <= 3,
        "the bad token was retired quickly, used {bad} times"
    );
    fake.assert_no_overlap_violation();
}

#[test]
fn an_exhausted_token_hands_its_rows_to_the_other() {
    let dir = temp_dir();
    let tels = colombian_mobiles(20);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok().quota(TOKEN, 3).latency(2));

    run(send_cmd(&input, &fake, &format!("{TOKEN},{OTHER_TOKEN}"))).expect_code(0);

    let results = read_results(&default_results_path(&input));
    assert!(results.iter().all(|r| r["status"] == "sent"), "{results:?}");
    assert_sent_matches_delivered(&results, &fake);
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, tels);
    let limited = fake
        .delivered()
        .iter()
        .filter(|r| r.token.as_deref() == Some(TOKEN))
        .count();
    assert!(limited <= 3);
    fake.assert_no_overlap_violation();
}

#[test]
fn send_without_a_token_exits_2_and_sends_nothing() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola")], "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(fake.base_url());
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("WOLKVOX_TOKEN"),
        "says where the token comes from:\n{}",
        out.stderr
    );
    assert_eq!(fake.count(), 0);
}

#[test]
fn there_is_no_token_flag() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola")], "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(fake.base_url())
        .arg("--token")
        .arg(TOKEN);
    run(c).expect_code(2);
    assert_eq!(fake.count(), 0);
}

#[test]
fn tokens_never_appear_in_output_or_files() {
    let secret_bad = "wvtok-SECRET-bad-8f3a1c";
    let secret_good = "wvtok-SECRET-good-77d2e0";
    let dir = temp_dir();
    let (csv, _) = mixed_list();
    let input = write_csv(dir.path(), "contacts.csv", &csv);
    let fake = FakeWolkvox::start(Behavior::ok().valid_tokens([secret_good]));
    let mut c = send_cmd(&input, &fake, &format!("{secret_bad},{secret_good}"));
    c.env("RUST_LOG", "trace");
    let out = run(c);
    out.expect_code(4);
    for secret in [secret_bad, secret_good] {
        assert!(!out.stdout.contains(secret), "token on stdout");
        assert!(!out.stderr.contains(secret), "token on stderr");
        for entry in fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                let bytes = fs::read(&path).unwrap();
                assert!(
                    !String::from_utf8_lossy(&bytes).contains(secret),
                    "token written to {}",
                    path.display()
                );
            }
        }
    }
    // The good token really was used.
    assert!(!fake.delivered_telephones().is_empty());
}

// ---------------------------------------------------------------------------------------
// Refusals before sending: nothing sent, exit 2, no results file.

fn assert_refused_before_sending(out: &Run, input: &Path, fake: &FakeWolkvox) {
    out.expect_code(2);
    assert!(
        !out.stderr.trim().is_empty(),
        "a clear message on stderr is expected"
    );
    assert_eq!(fake.count(), 0, "no request may be made");
    let results = default_results_path(input);
    assert!(!results.exists(), "no results file may be created");
    assert!(
        !journal_path(&results).exists(),
        "no journal may be created"
    );
}

#[test]
fn an_existing_results_file_is_refused_without_resume() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola")], "1"),
    );
    let results = default_results_path(&input);
    fs::write(&results, "earlier run, keep me\n").unwrap();
    let fake = FakeWolkvox::start(Behavior::ok());
    let out = run(send_cmd(&input, &fake, TOKEN));
    out.expect_code(2);
    assert_eq!(fake.count(), 0);
    assert_eq!(
        fs::read_to_string(&results).unwrap(),
        "earlier run, keep me\n"
    );
    assert!(
        out.stderr.contains("--resume") || out.stderr.contains("resume"),
        "points at --resume:\n{}",
        out.stderr
    );
}

#[test]
fn too_many_rows_by_flag_sends_nothing() {
    let dir = temp_dir();
    let tels = colombian_mobiles(5);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--max-rows").arg("3");
    let out = run(c);
    assert_refused_before_sending(&out, &input, &fake);
}

#[test]
fn too_many_rows_by_config_sends_nothing() {
    let dir = temp_dir();
    let tels = colombian_mobiles(5);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let config = write_config(dir.path(), "[limits]\nmax_rows = 4\n");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    assert_refused_before_sending(&out, &input, &fake);

    // Exactly at the limit is fine.
    let config = write_config(dir.path(), "[limits]\nmax_rows = 5\n");
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    run(c).expect_code(0);
    assert_eq!(fake.delivered_telephones().len(), 5);
}

#[test]
fn a_missing_required_column_sends_nothing() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        // Not `mensaje`: that is an accepted alias of the message column.
        "telephone,nota,connector_id\n573001234567,Hola,1\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let out = run(send_cmd(&input, &fake, TOKEN));
    assert_refused_before_sending(&out, &input, &fake);
    assert!(out.stderr.contains("message"), "{}", out.stderr);
}

#[test]
fn an_empty_or_missing_input_sends_nothing() {
    let dir = temp_dir();
    let fake = FakeWolkvox::start(Behavior::ok());
    let empty = write_csv(dir.path(), "empty.csv", "");
    let out = run(send_cmd(&empty, &fake, TOKEN));
    assert_refused_before_sending(&out, &empty, &fake);

    let missing = dir.path().join("nope.csv");
    let out = run(send_cmd(&missing, &fake, TOKEN));
    assert_refused_before_sending(&out, &missing, &fake);
}

#[test]
fn an_unknown_config_key_is_named_with_its_file() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola")], "1"),
    );
    let config = write_named_config(dir.path(), "typo.toml", "[api]\nconector_id = \"1\"\n");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    assert_refused_before_sending(&out, &input, &fake);
    assert!(out.stderr.contains("conector_id"), "{}", out.stderr);
    assert!(out.stderr.contains("typo.toml"), "{}", out.stderr);

    // validate reads the same config and refuses it the same way.
    let mut c = cmd();
    c.arg("validate").arg(&input).arg("--config").arg(&config);
    run(c).expect_code(2);
}

#[test]
fn more_than_two_in_flight_per_token_is_refused() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola")], "1"),
    );
    let config = write_config(dir.path(), "[limits]\nmax_in_flight_per_token = 3\n");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    assert_refused_before_sending(&out, &input, &fake);
    assert!(
        out.stderr.contains("max_in_flight_per_token"),
        "{}",
        out.stderr
    );
}

#[test]
fn server_must_be_letters_and_digits() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola")], "1"),
    );
    let config = write_config(dir.path(), "[api]\nserver = \"0042.evil.example/\"\n");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--config").arg(&config);
    let out = run(c);
    assert_refused_before_sending(&out, &input, &fake);
    assert!(out.stderr.contains("server"), "{}", out.stderr);
}

// ---------------------------------------------------------------------------------------
// Answers and what they mean.

/// One kind of answer from the fake to a row, and what that row must come to. Every
/// case runs the real binary on its list and checks the same things: the exit code,
/// every row's status, the named fields of the answered rows, how many requests each
/// named telephone got (a row that may have been delivered is never sent again), and,
/// where the case says so, that the rows recorded `sent` are exactly what the fake
/// delivered, once each.
struct Answered {
    /// The list's telephones, in row order (each row's message is "Hola").
    phones: &'static [&'static str],
    /// The config file (`None`: no `--config`).
    config: Option<&'static str>,
    /// What the fake answers instead of its normal answer (`None`: normal).
    answer: fn(&RequestInfo) -> Option<Reply>,
    exit: i32,
    /// Every row's status, in row order.
    statuses: &'static [&'static str],
    /// Fields of the results: (row, column, value).
    fields: &'static [(u64, &'static str, &'static str)],
    /// Requests the fake received for a telephone: (telephone, count).
    requests: &'static [(&'static str, usize)],
    /// The rows recorded `sent` are exactly what the fake delivered, once each.
    sent_is_delivered: bool,
    /// The run ends within this (a timeout that must have been applied).
    within: Option<Duration>,
}

impl Default for Answered {
    /// No list, no config, the fake's normal answers, and nothing to check beyond them.
    fn default() -> Self {
        Self {
            phones: &[],
            config: None,
            answer: |_| None,
            exit: 0,
            statuses: &[],
            fields: &[],
            requests: &[],
            sent_is_delivered: false,
            within: None,
        }
    }
}

fn check_answered(case: Answered) {
    let dir = temp_dir();
    let rows: Vec<(&str, &str)> = case.phones.iter().map(|&t| (t, "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok().hook(case.answer));
    let mut c = send_cmd(&input, &fake, TOKEN);
    if let Some(config) = case.config {
        c.arg("--config").arg(write_config(dir.path(), config));
    }
    let started = std::time::Instant::now();
    run(c).expect_code(case.exit);
    if let Some(within) = case.within {
        assert!(
            started.elapsed() < within,
            "the run took {:?}: the timeout was not applied",
            started.elapsed()
        );
    }
    let results = read_results(&default_results_path(&input));
    let statuses: Vec<&str> = (1..=case.phones.len() as u64)
        .map(|n| row(&results, n)["status"].as_str())
        .collect();
    assert_eq!(statuses, case.statuses, "statuses by row: {results:?}");
    for &(n, column, value) in case.fields {
        let line = row(&results, n);
        assert_eq!(line[column], value, "row {n}, column {column}: {line:?}");
    }
    for &(telephone, count) in case.requests {
        assert_eq!(
            fake.requests_for(telephone).len(),
            count,
            "requests for {telephone} (a request that may have been delivered must not be sent again)"
        );
    }
    if case.sent_is_delivered {
        assert_sent_matches_delivered(&results, &fake);
    }
}

/// One test per case, each with its own name and failure message: `cases!(check {
/// name: case; ... })` makes `#[test] fn name() { check(case) }`.
macro_rules! cases {
    ($check:ident { $($(#[$doc:meta])* $name:ident: $case:expr;)+ }) => {
        $(
            $(#[$doc])*
            #[test]
            fn $name() {
                $check($case);
            }
        )+
    };
}

cases!(check_answered {
    body_code_as_a_string_counts_as_sent: Answered {
        phones: &["573001234567", "593991234567"],
        answer: |req| {
            (req.api == API_SEND_MESSAGE).then(|| {
                Reply::json(
                    202,
                    json!({"code": "202", "error": null, "msg": "Message has been sent successfully"}),
                )
            })
        },
        exit: 0,
        statuses: &["sent", "sent"],
        fields: &[
            (1, "http_status", "202"),
            (1, "code", "202"),
            (2, "http_status", "202"),
            (2, "code", "202"),
        ],
        sent_is_delivered: true,
        ..Answered::default()
    };

    http_200_with_body_code_400_is_failed: Answered {
        phones: &["573001234567", "593991234567"],
        answer: |req| {
            (req.telephone.as_deref() == Some("593991234567")).then(|| {
                Reply::json(
                    200,
                    json!({"code": 400, "error": "BAD REQUEST", "msg": MSG_PARAMETERS_REQUIRED}),
                )
            })
        },
        exit: 1,
        statuses: &["sent", "failed"],
        fields: &[
            (2, "http_status", "200"),
            (2, "code", "400"),
            (2, "msg", MSG_PARAMETERS_REQUIRED),
            (2, "error", "BAD REQUEST"),
        ],
        sent_is_delivered: true,
        ..Answered::default()
    };

    a_429_with_retry_after_is_retried_and_sent_once: Answered {
        phones: &["573001234567", "593991234567"],
        config: Some(fast_retry!("", "")),
        answer: |req| {
            (req.telephone.as_deref() == Some("593991234567") && req.attempt == 0)
                .then(|| Reply::too_many_requests(0))
        },
        exit: 0,
        statuses: &["sent", "sent"],
        fields: &[(2, "attempts", "2")],
        requests: &[("593991234567", 2)],
        sent_is_delivered: true,
        ..Answered::default()
    };

    a_simultaneous_requests_refusal_is_retried_and_sent_once: Answered {
        phones: &["573001234567", "593991234567"],
        config: Some(fast_retry!("", "")),
        answer: |req| {
            (req.telephone.as_deref() == Some("573001234567") && req.attempt == 0)
                .then(Reply::simultaneous_limit)
        },
        exit: 0,
        statuses: &["sent", "sent"],
        fields: &[(1, "attempts", "2")],
        requests: &[("573001234567", 2)],
        sent_is_delivered: true,
        ..Answered::default()
    };

    a_dropped_connection_is_unknown_and_never_resent: Answered {
        phones: &["573001234567", "593991234567", "34612345678"],
        config: Some(fast_retry!("", "")),
        answer: |req| {
            (req.telephone.as_deref() == Some("593991234567")).then_some(Reply::DropConnection)
        },
        exit: 1,
        statuses: &["sent", "unknown", "sent"],
        requests: &[("593991234567", 1)],
        ..Answered::default()
    };

    a_timeout_is_unknown_and_never_resent: Answered {
        phones: &["573001234567", "593991234567"],
        config: Some(fast_retry!("timeout = \"1s\"\n", "")),
        answer: |req| {
            (req.telephone.as_deref() == Some("593991234567"))
                .then_some(Reply::Hang(Duration::from_secs(5)))
        },
        exit: 1,
        statuses: &["sent", "unknown"],
        requests: &[("593991234567", 1)],
        within: Some(Duration::from_secs(4)),
        ..Answered::default()
    };

    /// Wolkvox said 2xx: the message may well have gone out, so the row is `unknown`
    /// (never `failed`, which `--resume --retry-failed` would send again).
    an_unreadable_2xx_answer_is_unknown_and_never_resent: Answered {
        phones: &["573001234567", "593991234567", "34612345678"],
        config: Some(fast_retry!("", "")),
        answer: |req| match req.telephone.as_deref() {
            Some("593991234567") => {
                Some(Reply::raw(200, "text/html", "<html><body>OK</body></html>"))
            }
            Some("34612345678") => Some(Reply::raw(
                201,
                "application/json",
                vec![b'<'; 3 * 1024 * 1024],
            )),
            _ => None,
        },
        exit: 1,
        statuses: &["sent", "unknown", "unknown"],
        requests: &[("593991234567", 1), ("34612345678", 1)],
        ..Answered::default()
    };

    /// An undocumented 403 (maintenance): retried, and each try spends an attempt. (A
    /// "simultaneous requests" refusal waits for a slot instead: see
    /// networks::simultaneous_requests_refusals_wait_for_a_slot_without_spending_attempts.)
    retries_stop_at_max_attempts_and_the_row_fails: Answered {
        phones: &["573001234567", "593991234567"],
        config: Some(fast_retry!("", "max_attempts = 3\n")),
        answer: |req| {
            (req.telephone.as_deref() == Some("593991234567"))
                .then(|| Reply::api_error(403, "FORBIDDEN", "SERVER UNDER MAINTENANCE"))
        },
        exit: 1,
        statuses: &["sent", "failed"],
        fields: &[(2, "attempts", "3"), (2, "http_status", "403")],
        requests: &[("593991234567", 3)],
        ..Answered::default()
    };
});

/// An answer that stops the whole run: exit 3 after a few requests, and every row
/// accounted for (none `sent`, every row the fake never saw `not_sent`).
struct Stops {
    /// Rows in the list (Colombian mobiles, each with "Hola").
    rows: usize,
    /// The config file (`None`: no `--config`).
    config: Option<&'static str>,
    /// What the fake answers instead of its normal answer.
    answer: fn(&RequestInfo) -> Option<Reply>,
    /// How many sends may go out before the run stops, and why that many.
    sends: std::ops::RangeInclusive<usize>,
    why: &'static str,
}

fn check_stops(case: Stops) {
    let dir = temp_dir();
    let tels = colombian_mobiles(case.rows);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok().hook(case.answer));
    let mut c = send_cmd(&input, &fake, TOKEN);
    if let Some(config) = case.config {
        c.arg("--config").arg(write_config(dir.path(), config));
    }
    run(c).expect_code(3);
    let sends = fake.send_requests();
    assert!(
        case.sends.contains(&sends.len()),
        "{}, got {} sends",
        case.why,
        sends.len()
    );
    let results = read_results(&default_results_path(&input));
    assert_rows_sorted_and_complete(&results, case.rows);
    assert_nothing_sent_rest_not_sent(&results, &sends);
}

cases!(check_stops {
    api_does_not_exist_stops_the_run_with_exit_3: Stops {
        rows: 10,
        config: None,
        answer: |req| (req.api == API_SEND_MESSAGE).then(Reply::api_does_not_exist),
        sends: 0..=2,
        why: "the run stops at the first answer",
    };

    /// An undocumented 403 (maintenance): transient, never a delivery.
    consecutive_failures_stop_the_run_with_exit_3: Stops {
        rows: 20,
        config: Some(fast_retry!("", "max_attempts = 1\nmax_consecutive_failures = 3\n")),
        answer: |req| {
            (req.api == API_SEND_MESSAGE)
                .then(|| Reply::api_error(403, "FORBIDDEN", "SERVER UNDER MAINTENANCE"))
        },
        sends: 3..=6,
        why: "stops after 3 failures in a row (plus what was in flight)",
    };
});

// ---------------------------------------------------------------------------------------
// Concurrency.

#[test]
fn many_rows_two_tokens_never_more_than_two_in_flight() {
    let dir = temp_dir();
    let tels = colombian_mobiles(300);
    let rows: Vec<(&str, &str)> = tels
        .iter()
        .map(|t| (t.as_str(), "Recordatorio: su cita es mañana a las 10:00."))
        .collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok().latency(5).jitter(3));

    let started = std::time::Instant::now();
    run(send_cmd(&input, &fake, &format!("{TOKEN},{OTHER_TOKEN}"))).expect_code(0);
    let took = started.elapsed();

    fake.assert_no_overlap_violation();
    let max = fake.max_in_flight();
    assert_eq!(max.get(TOKEN), Some(&2), "max in flight per token: {max:?}");
    assert_eq!(
        max.get(OTHER_TOKEN),
        Some(&2),
        "max in flight per token: {max:?}"
    );
    assert!(
        fake.requests()
            .iter()
            .all(|r| r.status != 403 || r.body["msg"] != MSG_SIMULTANEOUS),
        "no request refused for concurrency"
    );

    let results = read_results(&default_results_path(&input));
    assert_rows_sorted_and_complete(&results, 300);
    assert!(results.iter().all(|r| r["status"] == "sent"));
    assert_sent_matches_delivered(&results, &fake);
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, tels);
    // Both tokens carried a fair share.
    let mut per_token: BTreeMap<String, usize> = BTreeMap::new();
    for r in fake.delivered() {
        *per_token.entry(r.token.unwrap()).or_default() += 1;
    }
    assert!(
        per_token.values().all(|&n| n >= 60),
        "load spread: {per_token:?}"
    );
    assert!(took < Duration::from_secs(15), "300 rows took {took:?}");
}

#[test]
fn json_log_format_writes_json_lines_on_stderr() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola"), ("593991234567", "Hola")], "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--log-format").arg("json");
    let out = run(c);
    out.expect_code(0);
    for line in out.stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
    }
}

// ---------------------------------------------------------------------------------------
// Resume.

#[test]
fn resume_sends_only_what_is_left() {
    let dir = temp_dir();
    let tels = colombian_mobiles(8);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let results_path = default_results_path(&input);

    // First run: the only token runs out of quota after 3 calls.
    let first = FakeWolkvox::start(Behavior::ok().quota(TOKEN, 3));
    run(send_cmd(&input, &first, TOKEN)).expect_code(3);
    let results = read_results(&results_path);
    assert_rows_sorted_and_complete(&results, 8);
    assert_sent_matches_delivered(&results, &first);
    let sent_before: HashSet<String> = first.delivered_telephones().into_iter().collect();
    assert!(!sent_before.is_empty() && sent_before.len() <= 3);
    for line in &results {
        let want = if sent_before.contains(&line["telephone"]) {
            "sent"
        } else {
            "not_sent"
        };
        assert_eq!(line["status"], want, "{line:?}");
    }

    // Without --resume the results file is refused.
    let refused = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &refused, TOKEN)).expect_code(2);
    assert_eq!(refused.count(), 0);

    // With --resume only the rest goes out.
    let second = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &second, TOKEN);
    c.arg("--resume");
    run(c).expect_code(0);
    let mut resent: Vec<String> = second.delivered_telephones();
    resent.sort();
    let mut want: Vec<String> = tels
        .iter()
        .filter(|t| !sent_before.contains(*t))
        .cloned()
        .collect();
    want.sort();
    assert_eq!(
        resent, want,
        "resume sends exactly the rows not sent before"
    );
    assert_eq!(second.send_requests().len(), want.len());

    let results = read_results(&results_path);
    assert_rows_sorted_and_complete(&results, 8);
    assert!(results.iter().all(|r| r["status"] == "sent"), "{results:?}");
}

#[test]
fn resume_does_not_resend_unknown_rows() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola"), ("593991234567", "Hola")], "1"),
    );
    let first = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.telephone.as_deref() == Some("593991234567")).then_some(Reply::DropConnection)
    }));
    run(send_cmd(&input, &first, TOKEN)).expect_code(1);
    let results = read_results(&default_results_path(&input));
    assert_eq!(row(&results, 2)["status"], "unknown");

    let second = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &second, TOKEN);
    c.arg("--resume");
    run(c).expect_code(1);
    assert!(
        second.send_requests().is_empty(),
        "nothing to send: row 1 was sent, row 2 may have been"
    );
    let results = read_results(&default_results_path(&input));
    assert_rows_sorted_and_complete(&results, 2);
    assert_eq!(row(&results, 1)["status"], "sent");
    assert_eq!(row(&results, 2)["status"], "unknown");
}

// ---------------------------------------------------------------------------------------
// Retries that run out, a service that is down, interruption.

#[test]
fn an_unreachable_endpoint_stops_without_sending() {
    let dir = temp_dir();
    let tels = colombian_mobiles(10);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let config = retry_fast_config(dir.path(), "max_consecutive_failures = 2\n");
    // A port on 127.0.0.1 that nobody listens on any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(format!("http://{closed}"))
        .arg("--rate")
        .arg("1000")
        .arg("--config")
        .arg(&config)
        .env("WOLKVOX_TOKEN", TOKEN);
    let started = std::time::Instant::now();
    run(c).expect_code(3);
    assert!(started.elapsed() < Duration::from_secs(20));
    let results = read_results(&default_results_path(&input));
    assert_rows_sorted_and_complete(&results, 10);
    assert!(results.iter().all(|r| r["status"] != "sent"), "{results:?}");
}

#[test]
fn quiet_still_prints_the_summary() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contacts.csv",
        &contacts_csv(&[("573001234567", "Hola")], "1"),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.arg("--quiet");
    let out = run(c);
    out.expect_code(0);
    assert!(
        out.stdout.contains("contacts.results.csv"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stderr.contains("INFO"),
        "quiet logs only warnings:\n{}",
        out.stderr
    );
}

#[test]
fn sigterm_stops_cleanly_and_resume_finishes_without_duplicates() {
    let dir = temp_dir();
    let tels = colombian_mobiles(40);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "contacts.csv", &contacts_csv(&rows, "1"));
    let results_path = default_results_path(&input);

    let first = FakeWolkvox::start(Behavior::ok().latency(100));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_wolkvox-dispatch"))
        .arg("send")
        .arg(&input)
        .arg("--base-url")
        .arg(first.base_url())
        .arg("--rate")
        .arg("1000")
        .env("XDG_STATE_HOME", test_state_home())
        .env("WOLKVOX_TOKEN", TOKEN)
        .env_remove("RUST_LOG")
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start the binary");
    assert!(
        first.wait_for_requests(6, Duration::from_secs(10)),
        "the run did not start sending"
    );
    let killed = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the binary did not stop after SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = child.wait_with_output().unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "stopped early: exit 3\n--- stdout ---\n{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let results = read_results(&results_path);
    assert_rows_sorted_and_complete(&results, 40);
    assert_sent_matches_delivered(&results, &first);
    for line in &results {
        assert!(
            ["sent", "not_sent", "unknown"].contains(&line["status"].as_str()),
            "{line:?}"
        );
    }
    let done_before: HashSet<String> = results
        .iter()
        .filter(|r| r["status"] != "not_sent")
        .map(|r| r["telephone"].clone())
        .collect();
    assert!(done_before.len() < 40, "the run was not interrupted");

    let second = FakeWolkvox::start(Behavior::ok());
    let unknown_before = results.iter().any(|r| r["status"] == "unknown");
    let mut c = send_cmd(&input, &second, TOKEN);
    c.arg("--resume");
    run(c).expect_code(if unknown_before { 1 } else { 0 });
    let resent: HashSet<String> = second.delivered_telephones().into_iter().collect();
    assert_eq!(second.delivered_telephones().len(), resent.len());
    assert!(
        resent.is_disjoint(&first.delivered_telephones().into_iter().collect()),
        "a row delivered in the first run was sent again"
    );
    let results = read_results(&results_path);
    assert_rows_sorted_and_complete(&results, 40);
    for line in &results {
        if done_before.contains(&line["telephone"]) {
            continue;
        }
        assert_eq!(line["status"], "sent", "{line:?}");
        assert!(resent.contains(&line["telephone"]));
    }
}
