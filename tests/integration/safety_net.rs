//! A safety net for campaigns, through the real binary against the fake endpoint: a run
//! that every row refuses stops early, HSM templates are checked against the account
//! before the first send, pilot batches (`--limit`), test sends (`--test-to`) and the
//! preview of the exact text.

use crate::common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use serde_json::json;

fn statuses(results: &Path) -> HashMap<u64, String> {
    statuses_by_row(&read_results(results))
}

fn count(statuses: &HashMap<u64, String>, status: &str) -> usize {
    statuses.values().filter(|s| s.as_str() == status).count()
}

fn list_of(dir: &Path, n: usize) -> std::path::PathBuf {
    let phones = colombian_mobiles(n);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    write_csv(dir, "list.csv", &contacts_csv(&rows, "1"))
}

fn connector_not_found() -> Reply {
    Reply::api_error(400, "BAD REQUEST", "connector not found")
}

#[test]
fn a_run_that_every_row_refuses_stops_after_max_failures() {
    let dir = temp_dir();
    let input = list_of(dir.path(), 300);
    let fake = FakeWolkvox::start(
        Behavior::ok().hook(|req| req.telephone.is_some().then(connector_not_found)),
    );
    let out = run(send_cmd(&input, &fake, "tok"));
    out.expect_code(3);
    let st = statuses(&default_results_path(&input));
    assert_eq!(st.len(), 300, "every row is recorded");
    let failed = count(&st, "failed");
    // The 20th refusal stops the run; the other worker's request may still be in flight.
    assert!((20..=21).contains(&failed), "failed {failed}");
    assert_eq!(count(&st, "not_sent"), 300 - failed);
    assert_eq!(
        fake.send_requests().len(),
        failed,
        "no request after the stop"
    );
    let said = format!("{}{}", out.stdout, out.stderr);
    assert!(
        said.contains("20 rows in a row were refused with the same answer (400 BAD REQUEST connector not found)"),
        "{said}"
    );
    assert!(
        said.contains("check the connector"),
        "names the usual fix: {said}"
    );
    assert!(said.contains("--resume"), "says how to continue: {said}");
}

#[test]
fn max_failures_counts_only_the_same_answer_in_a_row_and_zero_turns_it_off() {
    let dir = temp_dir();
    let input = list_of(dir.path(), 12);
    // Refusals alternate between two answers, and every fourth row is sent: no run of
    // three identical refusals ever forms.
    let fake = FakeWolkvox::start(Behavior::ok().max_in_flight_per_token(1).hook(|req| {
        let n: u64 = req.telephone.as_deref()?.get(8..)?.parse().ok()?;
        match n % 4 {
            0 => None,
            1 | 3 => Some(connector_not_found()),
            _ => Some(Reply::parameters_required()),
        }
    }));
    let mut c = send_cmd(&input, &fake, "tok");
    c.args(["--max-failures", "3"]);
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[limits]\nmax_in_flight_per_token = 1\n",
    );
    c.arg("--config").arg(&config);
    run(c).expect_code(1);
    assert_eq!(
        count(&statuses(&default_results_path(&input)), "not_sent"),
        0
    );

    // Every row refused alike, but the check is off.
    let dir = temp_dir();
    let input = list_of(dir.path(), 30);
    let fake = FakeWolkvox::start(
        Behavior::ok().hook(|req| req.telephone.is_some().then(connector_not_found)),
    );
    let mut c = send_cmd(&input, &fake, "tok");
    c.args(["--max-failures", "0", "--allow-repeat"]);
    run(c).expect_code(1);
    assert_eq!(
        count(&statuses(&default_results_path(&input)), "failed"),
        30
    );

    // From the config file.
    let dir = temp_dir();
    let input = list_of(dir.path(), 30);
    let fake = FakeWolkvox::start(
        Behavior::ok().hook(|req| req.telephone.is_some().then(connector_not_found)),
    );
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[campaign]\nmax_failures = 5\n",
    );
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config").arg(&config).arg("--allow-repeat");
    run(c).expect_code(3);
    let failed = count(&statuses(&default_results_path(&input)), "failed");
    assert!((5..=6).contains(&failed), "failed {failed}");
}

#[test]
fn rows_failed_before_the_stop_stay_failed_and_retry_failed_sends_them_after_the_fix() {
    let dir = temp_dir();
    let input = list_of(dir.path(), 40);
    let fixed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&fixed);
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.telephone.is_some() && !flag.load(std::sync::atomic::Ordering::SeqCst))
            .then(connector_not_found)
    }));
    let results = default_results_path(&input);
    run(send_cmd(&input, &fake, "tok")).expect_code(3);
    let failed = count(&statuses(&results), "failed");
    fixed.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut again = send_cmd(&input, &fake, "tok");
    again.args(["--resume", "--retry-failed"]);
    run(again).expect_code(0);
    assert_eq!(count(&statuses(&results), "sent"), 40);
    // Each number got at most one refused request and one accepted one.
    let delivered = fake.delivered_telephones();
    assert_eq!(delivered.len(), 40);
    assert_eq!(fake.send_requests().len(), 40 + failed);
}

// ---------------------------------------------------------------------------------------
// The template check.

const TEMPLATE: &str = "cita_recordatorio";

/// `nombre,telephone,fecha,hora` rows for `n` numbers.
fn hsm_list(dir: &Path, n: usize, extra_header: &str, extra: &str) -> std::path::PathBuf {
    let mut s = format!("nombre,telephone,fecha,hora{extra_header}\n");
    for (i, tel) in colombian_mobiles(n).iter().enumerate() {
        s.push_str(&format!("Persona {i},{tel},martes,10:00{extra}\n"));
    }
    write_csv(dir, "citas.csv", &s)
}

/// The account of the tests: connector 1 with an approved three-variable template, a
/// similar one, a pending one and one with an image header.
fn account() -> Behavior {
    Behavior::ok().templates(
        "1",
        vec![
            meta_template(
                TEMPLATE,
                "APPROVED",
                "Hola {{1}}, le recordamos su cita del {{2}} a las {{3}}.",
                None,
            ),
            meta_template(
                "cita_cancelada",
                "APPROVED",
                "Hola {{1}}, su cita fue cancelada.",
                None,
            ),
            meta_template("promo_diciembre", "PENDING", "Ofertas para {{1}}", None),
            meta_template(
                "bienvenida_sede",
                "APPROVED",
                "Bienvenido {{1}} a nuestra sede.",
                Some(json!({"type": "HEADER", "format": "IMAGE"})),
            ),
        ],
    )
}

fn hsm_send(input: &Path, fake: &FakeWolkvox, template: &str, vars: &str) -> assert_cmd::Command {
    let mut c = send_cmd(input, fake, "tok");
    let config = write_config(input.parent().unwrap(), "[api]\nconnector_id = \"1\"\n");
    c.arg("--config")
        .arg(config)
        .args(["--hsm", template, "--hsm-vars", vars]);
    c
}

fn list_templates_calls(fake: &FakeWolkvox) -> usize {
    fake.requests()
        .iter()
        .filter(|r| r.api == API_LIST_TEMPLATES)
        .count()
}

#[test]
fn a_template_typo_is_caught_before_the_first_send_naming_the_closest_names() {
    let dir = temp_dir();
    let input = hsm_list(dir.path(), 5, "", "");
    let fake = FakeWolkvox::start(account());
    let out = run(hsm_send(
        &input,
        &fake,
        "cita_recordatoro",
        "nombre,fecha,hora",
    ));
    out.expect_code(2);
    assert_eq!(fake.send_requests().len(), 0, "nothing is sent");
    assert_eq!(list_templates_calls(&fake), 1);
    assert!(
        out.stderr.contains("template \"cita_recordatoro\" (connector 1, 5 rows): not found among the connector's templates; approved ones: \"cita_recordatorio\", \"cita_cancelada\""),
        "{}",
        out.stderr
    );
    assert!(
        !out.stderr.contains("promo_diciembre"),
        "pending ones are not offered"
    );
    // A new run that was refused leaves nothing behind: the corrected command just works.
    assert!(
        !default_results_path(&input)
            .with_file_name("citas.hsm.results.csv")
            .exists()
    );
    run(hsm_send(&input, &fake, TEMPLATE, "nombre,fecha,hora")).expect_code(0);
    assert_eq!(fake.send_requests().len(), 5);
}

#[test]
fn pending_templates_wrong_variable_counts_and_missing_media_refuse_the_run() {
    let dir = temp_dir();
    let input = hsm_list(dir.path(), 3, "", "");
    let fake = FakeWolkvox::start(account());
    let out = run(hsm_send(&input, &fake, "promo_diciembre", "nombre"));
    out.expect_code(2);
    assert!(
        out.stderr.contains("its status is PENDING, not APPROVED"),
        "{}",
        out.stderr
    );

    let out = run(hsm_send(&input, &fake, TEMPLATE, "nombre,fecha"));
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("it takes 3 variables ({{1}}, {{2}}, {{3}}) but rows 1, 2, 3 give 2"),
        "{}",
        out.stderr
    );

    let dir = temp_dir();
    let input = hsm_list(dir.path(), 3, ",url_attach", ",");
    let out = run(hsm_send(&input, &fake, "bienvenida_sede", "nombre"));
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("IMAGE header, so every row needs a url_attach")
            && out.stderr.contains("rows 1, 2, 3 have none"),
        "{}",
        out.stderr
    );
    assert_eq!(
        fake.send_requests().len(),
        0,
        "nothing was sent by any of them"
    );

    // --no-template-check sends anyway, without asking.
    let before = list_templates_calls(&fake);
    let mut c = hsm_send(&input, &fake, "bienvenida_sede", "nombre");
    c.arg("--no-template-check");
    run(c).expect_code(0);
    assert_eq!(list_templates_calls(&fake), before);
    assert_eq!(fake.send_requests().len(), 3);
}

#[test]
fn a_resumed_run_refused_by_the_check_records_its_rows_not_sent_and_sends_nothing() {
    let dir = temp_dir();
    let input = hsm_list(dir.path(), 4, "", "");
    let fake = FakeWolkvox::start(account().hook(|req| {
        // The first run is interrupted by its quota after two rows.
        (req.index >= 3 && req.telephone.is_some()).then(Reply::token_limit_exceeded)
    }));
    let results = dir.path().join("citas.hsm.results.csv");
    run(hsm_send(&input, &fake, TEMPLATE, "nombre,fecha,hora")).expect_code(3);
    let sent = count(&statuses(&results), "sent");
    assert!(sent >= 1, "{:?}", statuses(&results));
    let requests = fake.send_requests().len();
    // Meanwhile the template was renamed in the account: the resumed run is refused.
    let fake2 = FakeWolkvox::start(Behavior::ok().templates(
        "1",
        vec![meta_template(
            "cita_recordatorio_v2",
            "APPROVED",
            "{{1}} {{2}} {{3}}",
            None,
        )],
    ));
    let mut c = hsm_send(&input, &fake2, TEMPLATE, "nombre,fecha,hora");
    c.arg("--resume");
    run(c).expect_code(2);
    assert_eq!(fake2.send_requests().len(), 0);
    assert_eq!(fake.send_requests().len(), requests);
    let st = statuses(&results);
    assert_eq!(count(&st, "sent"), sent, "sent rows stay sent");
    assert_eq!(st.len(), 4);
}

#[test]
fn an_unreadable_template_list_is_a_warning_and_the_run_sends() {
    let dir = temp_dir();
    let input = hsm_list(dir.path(), 3, "", "");
    let fake = FakeWolkvox::start(account().hook(|req| {
        (req.api == API_LIST_TEMPLATES)
            .then(|| Reply::raw(200, "text/html", "<html>mantenimiento</html>"))
    }));
    let out = run(hsm_send(&input, &fake, TEMPLATE, "nombre,fecha,hora"));
    out.expect_code(0);
    assert!(
        out.stderr
            .contains("cannot check the HSM templates of connector 1")
            && out.stderr.contains("not JSON"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.send_requests().len(), 3);
}

#[test]
fn validate_and_dry_run_check_templates_when_a_token_is_set_and_say_so_when_not() {
    let dir = temp_dir();
    let input = hsm_list(dir.path(), 2, "", "");
    let config = write_config(dir.path(), "[api]\nconnector_id = \"1\"\n");
    let fake = FakeWolkvox::start(account());
    let validate = |token: Option<&str>, template: &str| {
        let mut c = cmd();
        c.arg("validate")
            .arg(&input)
            .arg("--config")
            .arg(&config)
            .args(["--hsm", template, "--hsm-vars", "nombre,fecha,hora"])
            .arg("--base-url")
            .arg(fake.base_url());
        if let Some(t) = token {
            c.env("WOLKVOX_TOKEN", t);
        }
        run(c)
    };
    let out = validate(None, "cita_recordatoro");
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("template check: skipped: WOLKVOX_TOKEN is not set"),
        "{}",
        out.stdout
    );
    let out = validate(Some("tok"), "cita_recordatoro");
    out.expect_code(2);
    assert!(
        out.stderr
            .contains("not found among the connector's templates"),
        "{}",
        out.stderr
    );
    let out = validate(Some("tok"), TEMPLATE);
    out.expect_code(0);
    assert!(
        out.stdout.contains(
            "template check: 1 template on 1 connector checked against the account, 1 confirmed"
        ),
        "{}",
        out.stdout
    );

    // A dry run: the same check, nothing sent either way.
    let mut c = hsm_send(&input, &fake, "cita_recordatoro", "nombre,fecha,hora");
    c.arg("--dry-run");
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("approved ones: \"cita_recordatorio\""),
        "{}",
        out.stderr
    );
    let mut c = hsm_send(&input, &fake, "cita_recordatoro", "nombre,fecha,hora");
    c.arg("--dry-run").env_remove("WOLKVOX_TOKEN");
    let out = run(c);
    out.expect_code(0);
    assert!(
        out.stderr.contains("template check: skipped"),
        "{}",
        out.stderr
    );
    assert_eq!(fake.send_requests().len(), 0);
}

// ---------------------------------------------------------------------------------------
// Pilot batches and test sends.

#[test]
fn a_pilot_batch_then_resume_sends_each_row_once() {
    let dir = temp_dir();
    let input = list_of(dir.path(), 25);
    let fake = FakeWolkvox::start(Behavior::ok());
    let results = default_results_path(&input);
    let mut pilot = send_cmd(&input, &fake, "tok");
    pilot.args(["--limit", "10"]);
    let out = run(pilot);
    out.expect_code(3);
    let st = statuses(&results);
    assert_eq!((count(&st, "sent"), count(&st, "not_sent")), (10, 15));
    assert_eq!(fake.send_requests().len(), 10);
    assert!(
        out.stdout
            .contains("the pilot batch is sent (--limit 10); the other 15 rows"),
        "{}",
        out.stdout
    );
    // The suggested command sends the rest, without the limit.
    let suggested = out
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("To continue, run: "))
        .expect("a resume command")
        .to_owned();
    assert!(!suggested.contains("--limit"), "{suggested}");
    assert!(suggested.contains("--resume"), "{suggested}");
    let mut rest = send_cmd(&input, &fake, "tok");
    rest.arg("--resume");
    run(rest).expect_code(0);
    assert_eq!(count(&statuses(&results), "sent"), 25);
    let mut phones = fake.delivered_telephones();
    phones.sort();
    phones.dedup();
    assert_eq!((phones.len(), fake.send_requests().len()), (25, 25));

    let mut zero = send_cmd(&input, &fake, "tok");
    zero.args(["--limit", "0"]);
    let out = run(zero);
    out.expect_code(2);
    assert!(
        out.stderr.contains("--limit: must be at least 1"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_test_send_goes_to_the_given_phone_once_and_records_nothing() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "list.csv",
        "nombre,telephone,message,connector_id\n\
         Malo,123,Hola,1\n\
         Ana,573001230001,\"Hola Ana, su pedido está listo\",1\n\
         Luis,573001230002,Hola Luis,1\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.args(["--test-to", "+57 310 555 1234"]);
    let out = run(c);
    out.expect_code(0);
    let sent = fake.send_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].telephone.as_deref(), Some("573105551234"));
    assert_eq!(sent[0].message(), Some("Hola Ana, su pedido está listo"));
    assert!(
        out.stdout.contains("test send: row 3's message (to 573001230001 in the list), sent to 573105551234 instead:")
            && out.stdout.contains("    Hola Ana, su pedido está listo")
            && out.stdout.contains("Wolkvox's answer: accepted: HTTP 201, code 201")
            && out.stdout.contains("nothing was recorded"),
        "{}",
        out.stdout
    );
    let results = default_results_path(&input);
    assert!(!results.exists() && !journal_path(&results).exists());
    // The real run afterwards is unaffected: every row, once.
    run(send_cmd(&input, &fake, "tok")).expect_code(4);
    assert_eq!(count(&statuses(&results), "sent"), 2);

    // A refusal is printed, and a bad number is refused before any request.
    let fake = FakeWolkvox::start(
        Behavior::ok().hook(|req| req.telephone.is_some().then(connector_not_found)),
    );
    let mut c = send_cmd(&input, &fake, "tok");
    c.args(["--test-to", "573105551234"]);
    let out = run(c);
    out.expect_code(1);
    assert!(
        out.stdout.contains(
            "Wolkvox's answer: refused: HTTP 400, code 400, BAD REQUEST, connector not found"
        ),
        "{}",
        out.stdout
    );
    let mut c = send_cmd(&input, &fake, "tok");
    c.args(["--test-to", "12"]);
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("--test-to: \"12\""), "{}", out.stderr);
    assert_eq!(fake.send_requests().len(), 1);
}

#[test]
fn a_test_send_of_a_template_shows_the_account_s_text_filled_in() {
    let dir = temp_dir();
    let input = hsm_list(dir.path(), 2, "", "");
    let fake = FakeWolkvox::start(account());
    let mut c = hsm_send(&input, &fake, TEMPLATE, "nombre,fecha,hora");
    c.args(["--test-to", "573105551234"]);
    let out = run(c);
    out.expect_code(0);
    assert!(
        out.stdout.contains("template cita_recordatorio, vars \"Persona 0;martes;10:00\"\n    Hola Persona 0, le recordamos su cita del martes a las 10:00."),
        "{}",
        out.stdout
    );
    let sent = fake.send_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["template_vars"], "Persona 0;martes;10:00");
    assert_eq!(sent[0].telephone.as_deref(), Some("573105551234"));
}

#[test]
fn previews_show_each_kind_of_message_exactly_and_the_dry_run_records_it() {
    let dir = temp_dir();
    // Free messages: validate shows 3 by default, --preview changes it, 0 turns it off.
    let input = list_of(dir.path(), 5);
    let mut c = cmd();
    c.arg("validate").arg(&input);
    let out = run(c);
    out.expect_code(0);
    assert!(out.stdout.contains("the first 3 valid rows, exactly as they would be sent:\nrow 2 -> 573001230000:\n    Hola\nrow 3"), "{}", out.stdout);
    let mut c = cmd();
    c.arg("validate").arg(&input).args(["--preview", "0"]);
    assert!(!run(c).stdout.contains("exactly as they would be sent"));

    // Rendered from a template file.
    let tpl = write_csv(
        dir.path(),
        "t.j2",
        "Hola {{ nombre }}, su cita es el {{ fecha }}.",
    );
    let hsm = hsm_list(dir.path(), 2, "", "");
    let mut c = cmd();
    c.arg("send")
        .arg(&hsm)
        .arg("--dry-run")
        .arg("--template")
        .arg(&tpl)
        .args(["--preview", "1"]);
    let config = write_config(dir.path(), "[api]\nconnector_id = \"1\"\n");
    c.arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(0);
    assert!(out.stdout.contains("the first valid row, exactly as it would be sent:\nrow 2 -> 573001230000:\n    Hola Persona 0, su cita es el martes.\ndry run"), "{}", out.stdout);
    let rows = read_results(&dir.path().join("citas.dry-run.csv"));
    assert_eq!(
        row(&rows, 2)["msg"],
        "Hola Persona 1, su cita es el martes."
    );

    // HSM, with and without the account's text.
    let fake = FakeWolkvox::start(account());
    let mut c = hsm_send(&hsm, &fake, TEMPLATE, "nombre,fecha,hora");
    c.arg("--dry-run");
    let out = run(c);
    out.expect_code(0);
    assert!(out.stdout.contains("row 3 -> 573001230001: template cita_recordatorio, vars \"Persona 1;martes;10:00\"\n    Hola Persona 1, le recordamos su cita del martes a las 10:00."), "{}", out.stdout);
    let rows = read_results(&dir.path().join("citas.hsm.dry-run.csv"));
    assert_eq!(
        row(&rows, 1)["msg"],
        "template cita_recordatorio, vars \"Persona 0;martes;10:00\""
    );
    let mut c = hsm_send(&hsm, &fake, TEMPLATE, "nombre,fecha,hora");
    c.arg("--dry-run").env_remove("WOLKVOX_TOKEN");
    let out = run(c);
    assert!(out.stdout.contains("row 2 -> 573001230000: template cita_recordatorio, vars \"Persona 0;martes;10:00\"\nrow 3"), "{}", out.stdout);
    assert_eq!(fake.send_requests().len(), 0);
}

#[test]
fn the_estimate_gives_a_clock_time_in_the_campaign_s_time_zone() {
    let dir = temp_dir();
    let input = list_of(dir.path(), 30);
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[campaign]\ntimezone = \"America/Bogota\"\n",
    );
    let mut c = cmd();
    c.arg("validate").arg(&input).arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("estimate: at 10 requests/s per token with 1 token, it would finish around")
            && out.stdout.contains("(America/Bogota)"),
        "{}",
        out.stdout
    );
}
