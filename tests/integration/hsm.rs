//! HSM templates (issue 6) end to end: the real binary against the fake endpoint.
//! A template run goes through the same pipeline as a free one; these tests check what
//! differs (the API, the body, the checks on variables, the results path) and that
//! resume and the two steps of a campaign behave.

use crate::common;

use std::collections::HashSet;
use std::path::Path;

use common::*;
use serde_json::json;

const TEMPLATE: &str = "cita_recordatorio";

/// `nombre,telephone,fecha,hora` rows for these telephones.
fn hsm_list(telephones: &[String]) -> String {
    let mut s = String::from("nombre,telephone,fecha,hora\n");
    for (i, tel) in telephones.iter().enumerate() {
        s.push_str(&format!("Persona {i},{tel},martes,{}:00\n", 8 + i % 10));
    }
    s
}

/// `send INPUT --config CONFIG --hsm cita_recordatorio --hsm-vars nombre,fecha,hora` to the fake.
fn hsm_send(input: &Path, config: &Path, fake: &FakeWolkvox, tokens: &str) -> assert_cmd::Command {
    let mut c = send_cmd(input, fake, tokens);
    c.arg("--config")
        .arg(config)
        .args(["--hsm", TEMPLATE, "--hsm-vars", "nombre,fecha,hora"]);
    c
}

#[test]
fn template_requests_carry_every_field_to_send_template_official() {
    let fake = FakeWolkvox::start(Behavior::ok());
    let dir = temp_dir();
    let input = write_csv(
        &dir,
        "citas.csv",
        "Nombre,telephone,fecha,hora,customer_id,url_attach,template_name\n\
         Ana María Núñez,+57 300 123 4567,martes,10:00,CL-1,https://cdn.example.com/sede.jpg,\n\
         José,573014567890,miércoles 15,8:30,,,recordatorio_v2\n",
    );
    let config = write_connector_config(&dir, "7", "");
    let c = hsm_send(&input, &config, &fake, "tok");
    run(c).expect_code(0);

    let requests = fake.send_requests();
    assert_eq!(requests.len(), 2, "{requests:?}");
    let mut bodies: Vec<_> = requests
        .iter()
        .map(|r| {
            assert_eq!(r.api, API_SEND_TEMPLATE);
            assert_eq!(r.token.as_deref(), Some("tok"));
            r.body.clone()
        })
        .collect();
    bodies.sort_by_key(|b| b["telephone"].as_str().map(str::to_owned));
    assert_eq!(
        bodies,
        [
            json!({
                "connector_id": "7",
                "telephone": "573001234567",
                "template_name": TEMPLATE,
                "template_vars": "Ana María Núñez;martes;10:00",
                "customer_id": "CL-1",
                "url_attach": "https://cdn.example.com/sede.jpg",
            }),
            json!({
                "connector_id": "7",
                "telephone": "573014567890",
                "template_name": "recordatorio_v2",
                "template_vars": "José;miércoles 15;8:30",
                "customer_id": "",
                "url_attach": "",
            }),
        ]
    );

    // A template run has its own default results file.
    let results = dir.path().join("citas.hsm.results.csv");
    let statuses = statuses_by_row(&read_results(&results));
    assert_eq!(statuses[&1], "sent");
    assert_eq!(statuses[&2], "sent");
    assert!(!default_results_path(&input).exists());
    fake.assert_no_overlap_violation();
}

#[test]
fn a_semicolon_empty_variable_or_plain_http_attachment_is_invalid_and_never_sent() {
    let fake = FakeWolkvox::start(Behavior::ok());
    let dir = temp_dir();
    let input = write_csv(
        &dir,
        "citas.csv",
        "nombre,telephone,fecha,hora,url_attach\n\
         Ana,573001230001,martes,10:00,\n\
         \"Luis; hijo\",573001230002,martes,11:00,\n\
         Eva,573001230003,,12:00,\n\
         Raúl,573001230004,jueves,9:00,http://cdn.example.com/a.jpg\n",
    );
    let config = write_connector_config(&dir, "1", "");
    let c = hsm_send(&input, &config, &fake, "tok");
    run(c).expect_code(4);

    assert_eq!(fake.delivered_telephones(), ["573001230001"]);
    let results = read_results(&dir.path().join("citas.hsm.results.csv"));
    let invalid = row(&results, 2);
    assert_eq!(invalid["status"], "invalid");
    let why = format!("{} {}", invalid["error"], invalid["msg"]);
    assert!(why.contains("nombre"), "{why}");
    assert!(why.contains("shift every variable after it"), "{why}");
    let empty = row(&results, 3);
    assert_eq!(empty["status"], "invalid");
    assert!(
        empty["msg"].contains("fecha") && empty["msg"].contains("empty"),
        "{empty:?}"
    );
    let http = row(&results, 4);
    assert_eq!(http["status"], "invalid");
    assert!(http["msg"].contains("url_attach"), "{http:?}");
}

#[test]
fn a_variable_column_missing_from_the_header_sends_nothing() {
    let fake = FakeWolkvox::start(Behavior::ok());
    let dir = temp_dir();
    let input = write_csv(
        &dir,
        "citas.csv",
        "nombre,telephone,fecha\nAna,573001230001,martes\n",
    );
    let config = write_connector_config(&dir, "1", "");
    let c = hsm_send(&input, &config, &fake, "tok");
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("`hora`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("nombre, telephone, fecha"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("--hsm-vars"), "{}", out.stderr);
    assert_eq!(fake.count(), 0);
    assert!(!dir.path().join("citas.hsm.results.csv").exists());
}

#[test]
fn validate_and_dry_run_show_what_each_row_would_get() {
    let dir = temp_dir();
    let telephones = colombian_mobiles(7);
    let input = write_csv(&dir, "citas.csv", &hsm_list(&telephones));
    let config = write_connector_config(
        &dir,
        "1",
        "[hsm]\ntemplate_name = \"cita_recordatorio\"\nvars = [\"nombre\", \"fecha\", \"hora\"]\n",
    );

    let mut c = cmd();
    c.arg("validate")
        .arg(&input)
        .arg("--config")
        .arg(&config)
        .args(["--preview", "5"]);
    let out = run(c);
    out.expect_code(0);
    let preview: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("row "))
        .collect();
    assert_eq!(preview.len(), 5, "{}", out.stdout);
    assert_eq!(
        preview[0],
        r#"row 2 -> 573001230000: template cita_recordatorio, vars "Persona 0;martes;8:00""#
    );

    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--config")
        .arg(&config)
        .arg("--dry-run");
    let out = run(c);
    out.expect_code(0);
    let summary = out.stdout.find("dry run").expect("summary");
    let first = out
        .stdout
        .find(r#"row 3 -> 573001230001: template cita_recordatorio, vars "Persona 1;martes;9:00""#)
        .expect("preview");
    assert!(first < summary, "{}", out.stdout);
    let dry = read_results(&dir.path().join("citas.hsm.dry-run.csv"));
    assert_eq!(dry.len(), 7);
    assert!(dry.iter().all(|r| r["status"] == "dry_run"));
    assert!(!default_dry_run_path(&input).exists());
}

#[test]
fn resume_after_a_spent_token_sends_only_the_rest_of_a_template_run() {
    let fake = FakeWolkvox::start(Behavior::ok().latency(5).quota("first", 4));
    let dir = temp_dir();
    let telephones = colombian_mobiles(12);
    let input = write_csv(&dir, "citas.csv", &hsm_list(&telephones));
    let config = write_connector_config(&dir, "1", "");

    let c = hsm_send(&input, &config, &fake, "first");
    let out = run(c);
    out.expect_code(3);
    // The printed resume command repeats the template flags.
    assert!(
        out.stdout
            .contains("--hsm cita_recordatorio --hsm-vars nombre,fecha,hora"),
        "{}",
        out.stdout
    );
    let results = dir.path().join("citas.hsm.results.csv");
    let first_run = read_results(&results);
    let sent_first = first_run.iter().filter(|r| r["status"] == "sent").count();
    assert_eq!(sent_first, 4);
    assert!(first_run.iter().any(|r| r["status"] == "not_sent"));

    let mut c = hsm_send(&input, &config, &fake, "second");
    c.arg("--resume");
    run(c).expect_code(0);

    let statuses = statuses_by_row(&read_results(&results));
    assert_eq!(statuses.len(), 12);
    assert!(statuses.values().all(|s| s == "sent"), "{statuses:?}");
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 12);
    assert!(delivered.iter().all(|r| r.api == API_SEND_TEMPLATE));
    let once: HashSet<_> = fake.delivered_telephones().into_iter().collect();
    assert_eq!(once, telephones.iter().cloned().collect::<HashSet<_>>());
    let second: Vec<_> = delivered
        .iter()
        .filter(|r| r.token.as_deref() == Some("second"))
        .collect();
    assert_eq!(second.len(), 12 - sent_first);
    fake.assert_no_overlap_violation();
}

#[test]
fn the_same_list_goes_out_as_a_template_then_as_a_free_message() {
    let fake = FakeWolkvox::start(Behavior::ok());
    let dir = temp_dir();
    let telephones = colombian_mobiles(3);
    let mut list = String::from("nombre,telephone,fecha,hora,message,template_name\n");
    for (i, tel) in telephones.iter().enumerate() {
        list.push_str(&format!(
            "Persona {i},{tel},martes,10:00,\"Gracias por responder, Persona {i}. Su cita sigue en pie.\",\n"
        ));
    }
    let input = write_csv(&dir, "campana.csv", &list);
    let config = write_connector_config(&dir, "1", "");

    let c = hsm_send(&input, &config, &fake, "tok");
    run(c).expect_code(0);
    // Without --hsm the list has a message column: the template_name column is ignored.
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(0);
    assert!(out.stderr.contains("template_name"), "{}", out.stderr);

    let template_results = read_results(&dir.path().join("campana.hsm.results.csv"));
    let free_results = read_results(&default_results_path(&input));
    for results in [&template_results, &free_results] {
        assert_eq!(results.len(), 3);
        assert!(results.iter().all(|r| r["status"] == "sent"), "{results:?}");
    }

    let requests = fake.send_requests();
    assert_eq!(requests.len(), 6);
    let (templates, free) = requests.split_at(3);
    for r in templates {
        assert_eq!(r.api, API_SEND_TEMPLATE);
        assert_eq!(r.body["template_name"], TEMPLATE);
        assert_eq!(
            r.body["template_vars"],
            format!("{};martes;10:00", person(&telephones, r))
        );
        assert!(r.body.get("message").is_none(), "{}", r.body);
    }
    for r in free {
        assert_eq!(r.api, API_SEND_MESSAGE);
        assert_eq!(
            r.message(),
            Some(
                format!(
                    "Gracias por responder, {}. Su cita sigue en pie.",
                    person(&telephones, r)
                )
                .as_str()
            )
        );
        assert!(r.body.get("template_name").is_none(), "{}", r.body);
    }
    for tel in &telephones {
        let apis: Vec<String> = fake.requests_for(tel).into_iter().map(|r| r.api).collect();
        assert_eq!(apis, [API_SEND_TEMPLATE, API_SEND_MESSAGE], "{tel}");
    }
}

/// "Persona i" for the request's telephone.
fn person(telephones: &[String], r: &Received) -> String {
    let tel = r.telephone.as_deref().expect("telephone");
    let i = telephones
        .iter()
        .position(|t| t == tel)
        .expect("known telephone");
    format!("Persona {i}")
}
