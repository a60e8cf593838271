//! What a newcomer following README.es.md ran into: `report` after a run whose rows were
//! refused, held or unknown must never say that nothing is left to send, and it must
//! say what to do; the summary of a run that ends with failed rows names a next step.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

const SPANISH: &[(&str, &str)] = &[("LANG", "es_CO.UTF-8")];

fn list_of(dir: &Path, n: usize, text: &str) -> PathBuf {
    let phones = colombian_mobiles(n);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), text)).collect();
    write_csv(dir, "list.csv", &contacts_csv(&rows, "1"))
}

fn report(results: &Path, env: &[(&str, &str)]) -> Run {
    let mut c = cmd();
    c.arg("report").arg(results);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = run(c);
    out.expect_code(0);
    out
}

/// Neither language says "nothing left to send".
fn assert_not_nothing_left(out: &Run) {
    for said in ["nothing left to send", "no queda nada por enviar"] {
        assert!(!out.stdout.contains(said), "{}", out.stdout);
    }
}

/// 5 rows refused with "connector not found": the report says they were not delivered,
/// names the fix and the command that sends them once it is fixed.
#[test]
fn a_report_of_refused_rows_says_they_were_not_delivered_and_what_to_do() {
    let dir = temp_dir();
    let input = list_of(dir.path(), 5, "Hola");
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        req.telephone
            .is_some()
            .then(|| Reply::api_error(400, "BAD REQUEST", "Connector not found"))
    }));
    run(send_cmd(&input, &fake, "tok")).expect_code(1);
    let results = default_results_path(&input);

    let en = report(&results, &[]);
    assert_not_nothing_left(&en);
    assert!(
        en.stdout.contains("5 rows were not delivered"),
        "{}",
        en.stdout
    );
    assert!(en.stdout.contains("check the connector"), "{}", en.stdout);
    let next = en
        .stdout
        .lines()
        .find(|l| l.contains("--retry-failed"))
        .unwrap_or_else(|| panic!("no retry command: {}", en.stdout));
    assert!(next.contains("--resume"), "{next}");

    let es = report(&results, SPANISH);
    assert_not_nothing_left(&es);
    assert!(
        es.stdout.contains("5 filas no se entregaron"),
        "{}",
        es.stdout
    );
    assert!(es.stdout.contains("revise el conector"), "{}", es.stdout);
    assert!(
        es.stdout.contains("--resume") && es.stdout.contains("--retry-failed"),
        "{}",
        es.stdout
    );
}

/// Rows whose request got no answer: the report names reconcile and the retry.
#[test]
fn a_report_of_unknown_rows_names_reconcile_and_the_retry() {
    let dir = temp_dir();
    let input = list_of(dir.path(), 3, "Hola");
    let lost = FakeWolkvox::start(Behavior::ok().hook(|_| Some(Reply::DropConnection)));
    run(send_cmd(&input, &lost, "tok")).expect_code(1);
    let results = default_results_path(&input);
    for env in [&[][..], SPANISH] {
        let out = report(&results, env);
        assert_not_nothing_left(&out);
        assert!(out.stdout.contains("reconcile"), "{}", out.stdout);
        assert!(out.stdout.contains("--retry-unknown"), "{}", out.stdout);
    }
}

/// Rows held by the send ledger were not sent: the report says so and names
/// --allow-repeat, rather than "every row is sent, suppressed, invalid or duplicate".
#[test]
fn a_report_of_held_rows_says_they_were_not_sent() {
    let dir = temp_dir();
    let tels = colombian_mobiles(4);
    let rows: Vec<(&str, &str)> = tels.iter().map(|t| (t.as_str(), "Promo")).collect();
    let a = write_csv(dir.path(), "a.csv", &contacts_csv(&rows[..2], "1"));
    let b = write_csv(dir.path(), "b.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&a, &fake, "tok")).expect_code(0);
    run(send_cmd(&b, &fake, "tok")).expect_code(4);
    let results = default_results_path(&b);

    let en = report(&results, &[]);
    assert_not_nothing_left(&en);
    assert!(en.stdout.contains("2 rows held"), "{}", en.stdout);
    assert!(en.stdout.contains("--allow-repeat"), "{}", en.stdout);
    let es = report(&results, SPANISH);
    assert_not_nothing_left(&es);
    assert!(es.stdout.contains("2 filas retenidas"), "{}", es.stdout);
    assert!(es.stdout.contains("--allow-repeat"), "{}", es.stdout);
}

/// A send that ends with refused rows (exit 1) names the next step, as the --limit and
/// Ctrl-C summaries do: the report, and the command that retries once fixed.
#[test]
fn a_send_that_ends_with_failed_rows_names_the_next_step() {
    for (env, next, retry) in [
        (&[][..], "Next: ", "Once the cause is fixed"),
        (SPANISH, "Siguiente paso: ", "Una vez corregida la causa"),
    ] {
        let dir = temp_dir();
        let input = list_of(dir.path(), 3, "Hola");
        let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
            req.telephone
                .is_some()
                .then(|| Reply::api_error(400, "BAD REQUEST", "Connector not found"))
        }));
        let mut c = send_cmd(&input, &fake, "tok");
        for (k, v) in env {
            c.env(k, v);
        }
        let out = run(c);
        out.expect_code(1);
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(next))
            .unwrap_or_else(|| panic!("no next step: {}", out.stdout));
        assert!(line.contains("wolkvox-dispatch report"), "{line}");
        assert!(line.contains("list.results.csv"), "{line}");
        let retry = out
            .stdout
            .lines()
            .find(|l| l.starts_with(retry))
            .unwrap_or_else(|| panic!("no retry: {}", out.stdout));
        assert!(
            retry.contains("--resume") && retry.contains("--retry-failed"),
            "{retry}"
        );
    }
}

/// Every sheet of a workbook, as text.
fn workbook_sheets(path: &Path) -> Vec<(String, Vec<Vec<String>>)> {
    use calamine::Reader;
    let mut book =
        calamine::open_workbook_auto(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let names = book.sheet_names().to_vec();
    names
        .into_iter()
        .map(|name| {
            let range = book.worksheet_range(&name).expect("a sheet");
            let rows = range
                .rows()
                .map(|r| r.iter().map(|c| c.to_string()).collect())
                .collect();
            (name, rows)
        })
        .collect()
}

/// The dry run's workbook of the sample list: rows that would be sent have no reason
/// (the message is in its own column already), and no cell holds a literal `\n`.
#[test]
fn the_dry_run_workbook_gives_no_reason_for_rows_that_would_be_sent() {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/contacts.csv");
    for (env, result, reason) in [
        (&[][..], "Would be sent (dry run)", "Reason"),
        (SPANISH, "Se enviaría (simulación)", "Motivo"),
    ] {
        let dir = temp_dir();
        let input = dir.path().join("contacts.csv");
        std::fs::copy(&sample, &input).expect("copy the sample");
        let mut c = cmd();
        c.arg("send").arg(&input).arg("--dry-run");
        for (k, v) in env {
            c.env(k, v);
        }
        run(c).expect_code(4);
        let sheets = workbook_sheets(&input.with_extension("dry-run.xlsx"));
        for (name, rows) in &sheets {
            for cell in rows.iter().flatten() {
                assert!(!cell.contains("\\n"), "sheet {name}: {cell:?}");
            }
        }
        let rows = &sheets[0].1;
        let col = |title: &str| {
            rows[0]
                .iter()
                .position(|h| h == title)
                .unwrap_or_else(|| panic!("{title}: {:?}", rows[0]))
        };
        let (result_col, reason_col) = (
            col(if env.is_empty() {
                "Result"
            } else {
                "Resultado"
            }),
            col(reason),
        );
        let would: Vec<&Vec<String>> = rows.iter().filter(|r| r[result_col] == result).collect();
        assert!(!would.is_empty(), "{rows:?}");
        for r in would {
            assert_eq!(r[reason_col], "", "{r:?}");
        }
    }
}

/// The text of one part of an `.xlsx` (a zip).
fn xlsx_part(path: &Path, part: &str) -> String {
    use std::io::Read;
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut zip = zip::ZipArchive::new(file).expect("an xlsx is a zip");
    let mut text = String::new();
    zip.by_name(part)
        .unwrap_or_else(|e| panic!("{part}: {e}"))
        .read_to_string(&mut text)
        .expect("utf-8");
    text
}

/// `report --rows-to-fix X.xlsx` names its sheet in the reader's language and gives it
/// the results workbook's header style and column widths.
#[test]
fn rows_to_fix_as_xlsx_are_a_sheet_people_can_read() {
    let dir = temp_dir();
    let phones = colombian_mobiles(2);
    let input = write_csv(
        dir.path(),
        "list.csv",
        &contacts_csv(
            &[
                (phones[0].as_str(), "Hola"),
                ("12", "Hola"),
                (phones[1].as_str(), "Hola"),
            ],
            "1",
        ),
    );
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        req.telephone
            .is_some()
            .then(|| Reply::api_error(400, "BAD REQUEST", "Connector not found"))
    }));
    run(send_cmd(&input, &fake, "tok")).expect_code(1);
    for (env, sheet, reason) in [
        (&[][..], "To fix", "Reason"),
        (SPANISH, "Por corregir", "Motivo"),
    ] {
        let fix = dir.path().join(format!("fix-{}.xlsx", env.len()));
        let mut c = cmd();
        c.arg("report")
            .arg(default_results_path(&input))
            .arg("--rows-to-fix")
            .arg(&fix);
        for (k, v) in env {
            c.env(k, v);
        }
        run(c).expect_code(0);
        let sheets = workbook_sheets(&fix);
        assert_eq!(sheets.len(), 1);
        assert_eq!(sheets[0].0, sheet);
        let rows = &sheets[0].1;
        assert_eq!(rows[0].last().map(String::as_str), Some(reason), "{rows:?}");
        assert_eq!(rows.len(), 4, "header and 3 rows: {rows:?}");
        let xml = xlsx_part(&fix, "xl/worksheets/sheet1.xml");
        assert!(
            xml.contains("<cols>") && xml.contains("customWidth"),
            "widths: {xml}"
        );
        let styles = xlsx_part(&fix, "xl/styles.xml");
        assert!(
            styles.contains("<b/>") && styles.contains("D9E1F2"),
            "header style: {styles}"
        );
    }
}

/// In Spanish, the config file `init` writes and `--config`'s help point at the Spanish
/// example, `config.example.es.toml`; in English, at `config.example.toml`.
#[test]
fn spanish_texts_point_at_the_spanish_config_example() {
    for (env, example) in [
        (&[][..], "config.example.toml"),
        (SPANISH, "config.example.es.toml"),
    ] {
        let dir = temp_dir();
        let mut c = cmd();
        c.current_dir(dir.path()).args([
            "init",
            "--server",
            "0042",
            "--connector-id",
            "7",
            "--country",
            "CO",
        ]);
        for (k, v) in env {
            c.env(k, v);
        }
        run(c).expect_code(0);
        let written =
            std::fs::read_to_string(dir.path().join("wolkvox.toml")).expect("wolkvox.toml");
        assert!(written.contains(example), "{written}");
        let mut h = cmd();
        h.args(["send", "--help"]);
        for (k, v) in env {
            h.env(k, v);
        }
        let help = run(h);
        help.expect_code(0);
        let line = help
            .stdout
            .lines()
            .find(|l| l.contains("config.example"))
            .unwrap_or_else(|| panic!("{}", help.stdout));
        assert!(line.contains(example), "{line}");
    }
}

/// Spanish wording: one duplicate is "1 duplicada"; the dry run's estimate says the rate
/// once; a send says today's quota once; `validate --help` does not say
/// --allow-duplicates sends anything.
#[test]
fn spanish_wording_says_each_thing_once_and_in_the_right_number() {
    let dir = temp_dir();
    let phones = colombian_mobiles(2);
    let input = write_csv(
        dir.path(),
        "list.csv",
        &contacts_csv(
            &[
                (phones[0].as_str(), "Hola"),
                (phones[1].as_str(), "Hola"),
                (phones[0].as_str(), "Hola"),
            ],
            "1",
        ),
    );
    let mut v = cmd();
    v.env("LANG", "es_CO.UTF-8").arg("validate").arg(&input);
    let out = run(v);
    assert!(out.stdout.contains("1 duplicada,"), "{}", out.stdout);
    assert!(!out.stdout.contains("1 duplicadas"), "{}", out.stdout);

    let mut d = cmd();
    d.env("LANG", "es_CO.UTF-8")
        .arg("send")
        .arg(&input)
        .arg("--dry-run");
    let out = run(d);
    out.expect_code(4);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(
        said.matches("solicitudes/s por token con").count(),
        1,
        "{said}"
    );

    let fake = FakeWolkvox::start(Behavior::ok());
    let mut s = send_cmd_checking_quota(&input, &fake, "tok");
    s.env("LANG", "es_CO.UTF-8");
    let out = run(s);
    out.expect_code(4);
    let said = format!("{}{}", out.stdout, out.stderr);
    assert_eq!(said.matches("el cupo de hoy").count(), 1, "{said}");

    let mut h = cmd();
    h.env("LANG", "es_CO.UTF-8").args(["validate", "--help"]);
    let help = run(h).stdout;
    let line = help
        .lines()
        .skip_while(|l| !l.contains("--allow-duplicates"))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!line.contains("Envía"), "{line}");
    assert!(line.contains("duplicate"), "{line}");
}

/// README.es.md's example of `validate samples/contacts.csv` is the real output: every
/// line naming a row (spreadsheet row numbers) is in the README as printed.
#[test]
fn the_readme_validate_example_is_the_real_output() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.es.md")).expect("README.es.md");
    let mut c = cmd();
    c.current_dir(root)
        .env("LANG", "es_CO.UTF-8")
        .args(["validate", "samples/contacts.csv"]);
    let out = run(c);
    out.expect_code(1);
    let named: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("fila ") || l.contains(" filas: "))
        .collect();
    assert!(named.len() >= 5, "{}", out.stdout);
    for line in named {
        assert!(readme.contains(line), "not in README.es.md: {line}");
    }
}
