//! Results people can act on: the Excel workbook beside the results, read back with
//! calamine (the list's own columns and order, telephones as text, the outcome in
//! words, real date-times, the summary sheet; for a CSV with accents, an `.xlsx` with a
//! blank row and an HSM run), `report --rows-to-fix`, and logs a cron job can read.

use crate::common;

use std::path::Path;

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::*;

/// Every sheet of a workbook: name, then rows of cells.
fn sheets(path: &Path) -> Vec<(String, Vec<Vec<Data>>)> {
    let mut book: Xlsx<_> =
        open_workbook(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    book.sheet_names()
        .into_iter()
        .map(|name| {
            let range = book.worksheet_range(&name).expect("sheet");
            (name, range.rows().map(<[Data]>::to_vec).collect())
        })
        .collect()
}

fn text(cell: &Data) -> String {
    match cell {
        Data::String(s) => s.clone(),
        Data::Empty => String::new(),
        other => format!("{other:?}"),
    }
}

fn texts(row: &[Data]) -> Vec<String> {
    row.iter().map(text).collect()
}

#[test]
fn a_csv_run_s_workbook_has_every_row_in_order_with_its_own_columns_and_outcome() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "clientes.csv",
        "Nombre,telephone,message,connector_id\n\
         Señora Núñez,+57 300 123 0001,Buenos días,1\n\
         José,12,Hola,1\n\
         Begoña,573001230003,Hola Begoña,1\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.telephone.as_deref() == Some("573001230003")).then(Reply::parameters_required)
    }));
    run(send_cmd(&input, &fake, "tok")).expect_code(1);
    let book = sheets(&dir.path().join("clientes.results.xlsx"));
    assert_eq!(book.len(), 2);
    let (name, rows) = &book[0];
    assert_eq!(name, "Rows");
    assert_eq!(
        texts(&rows[0]),
        [
            "Nombre",
            "telephone",
            "message",
            "connector_id",
            "Result",
            "Reason",
            "Code",
            "Attempts",
            "Time"
        ]
    );
    assert_eq!(rows.len(), 4, "header + every row of the list");
    // The list's own cells, as text, accents and the typed-in number kept.
    assert_eq!(
        texts(&rows[1])[..4],
        ["Señora Núñez", "+57 300 123 0001", "Buenos días", "1"]
    );
    assert_eq!(text(&rows[1][4]), "Sent");
    assert!(
        matches!(rows[1][8], Data::DateTime(_)),
        "a real date-time: {:?}",
        rows[1][8]
    );
    assert_eq!(text(&rows[2][4]), "Invalid: not sent");
    assert!(text(&rows[2][5]).contains("telephone"), "{:?}", rows[2]);
    assert_eq!(text(&rows[3][4]), "Failed: refused");
    assert_eq!(text(&rows[3][6]), "400");
    assert!(text(&rows[3][5]).contains("SOME PARAMETERS ARE REQUIRED"));
    assert_eq!(rows[3][7], Data::Float(1.0));

    let (name, summary) = &book[1];
    assert_eq!(name, "Summary");
    let lines: Vec<Vec<String>> = summary.iter().map(|r| texts(r)).collect();
    assert!(
        lines.contains(&vec!["Sent".to_owned(), "Float(1.0)".to_owned()]),
        "{lines:?}"
    );
    assert!(
        lines.contains(&vec!["Failed: refused".to_owned(), "Float(1.0)".to_owned()]),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l[0] == "List" && l[1].ends_with("clientes.csv"))
    );

    // `report --xlsx` writes the same rows again; --no-xlsx writes none.
    let again = dir.path().join("again.xlsx");
    let mut c = cmd();
    c.arg("report")
        .arg(dir.path().join("clientes.results.csv"))
        .arg("--xlsx")
        .arg(&again);
    run(c).expect_code(0);
    let rebuilt = sheets(&again);
    assert_eq!(rebuilt[0].1, book[0].1);
    // A list edited since the run: rows are matched by number, and the user is told.
    let mut text = std::fs::read_to_string(&input).unwrap();
    text.push_str("Nuevo,573001230009,Hola,1\n");
    std::fs::write(&input, text).unwrap();
    let mut c = cmd();
    c.arg("report")
        .arg(dir.path().join("clientes.results.csv"))
        .arg("--xlsx")
        .arg(&again);
    let out = run(c);
    out.expect_code(0);
    assert!(
        out.stderr.contains("has changed since the run read it"),
        "{}",
        out.stderr
    );
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "l.csv",
        "telephone,message,connector_id\n573001230001,Hola,1\n",
    );
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--no-xlsx");
    run(c).expect_code(0);
    assert!(!dir.path().join("l.results.xlsx").exists());
}

#[test]
fn a_spreadsheet_s_workbook_gives_each_row_its_sheet_row_and_a_dry_run_says_would_be_sent() {
    let dir = temp_dir();
    let input = dir.path().join("lista.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (r, row) in [
        ["nombre", "telephone", "message", "connector_id"],
        ["Ana", "573001230001", "Hola Ana", "1"],
        ["", "", "", ""],
        ["Luis", "573001230002", "Hola Luis", "1"],
    ]
    .iter()
    .enumerate()
    {
        for (c, cell) in row.iter().enumerate() {
            if !cell.is_empty() {
                sheet.write_string(r as u32, c as u16, *cell).unwrap();
            }
        }
    }
    book.save(&input).unwrap();
    let mut c = cmd();
    c.arg("send").arg(&input).arg("--dry-run");
    run(c).expect_code(0);
    let (_, rows) = &sheets(&dir.path().join("lista.dry-run.xlsx"))[0];
    assert_eq!(text(&rows[0][4]), "Sheet row");
    let names: Vec<String> = rows.iter().skip(1).map(|r| text(&r[0])).collect();
    assert_eq!(names, ["Ana", "Luis"], "the blank row is not a row");
    assert_eq!(
        (rows[1][4].clone(), rows[2][4].clone()),
        (Data::Float(2.0), Data::Float(4.0))
    );
    assert_eq!(text(&rows[1][5]), "Would be sent (dry run)");
    assert_eq!(
        text(&rows[2][6]),
        "",
        "a row that would be sent needs no reason (its message is in its own column)"
    );
}

#[test]
fn an_hsm_run_s_workbook_shows_the_template_rows() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "citas.csv",
        "nombre,telephone,fecha\nAna,573001230001,martes\nLuis,573001230002,miércoles\n",
    );
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[campaign]\ntimezone = \"America/Bogota\"\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config")
        .arg(&config)
        .args(["--hsm", "cita", "--hsm-vars", "nombre,fecha"]);
    run(c).expect_code(0);
    let (_, rows) = &sheets(&dir.path().join("citas.hsm.results.xlsx"))[0];
    assert_eq!(texts(&rows[0])[..3], ["nombre", "telephone", "fecha"]);
    assert_eq!(text(&rows[2][2]), "miércoles");
    assert!(
        rows.iter().skip(1).all(|r| text(&r[3]) == "Sent"),
        "{rows:?}"
    );
}

#[test]
fn rows_to_fix_come_back_in_the_list_s_own_delimiter_and_encoding_and_validate_reads_them() {
    let dir = temp_dir();
    // A Spanish-locale Excel export: `;`, Windows-1252.
    let text = "Nombre;Teléfono;Mensaje;connector_id\n\
                Señora Núñez;573001230001;Buenos días;1\n\
                José;12;Hola;1\n\
                Begoña;573001230003;Hola Begoña;1\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(text);
    assert!(!unmappable);
    let input = write_bytes(dir.path(), "clientes.csv", &bytes);
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.telephone.as_deref() == Some("573001230003")).then(Reply::parameters_required)
    }));
    run(send_cmd(&input, &fake, "tok")).expect_code(1);
    let fix = dir.path().join("corregir.csv");
    let mut c = cmd();
    c.arg("report")
        .arg(dir.path().join("clientes.results.csv"))
        .arg("--rows-to-fix")
        .arg(&fix);
    let out = run(c);
    out.expect_code(0);
    assert!(out.stdout.contains("rows to fix: 2 rows"), "{}", out.stdout);
    let written = std::fs::read(&fix).unwrap();
    let (expected, _, _) = encoding_rs::WINDOWS_1252.encode(
        "Nombre;Teléfono;Mensaje;connector_id;Reason\n\
         José;12;Hola;1;\"Teléfono: \"\"12\"\" has 2 digits: too few for a telephone number\"\n\
         Begoña;573001230003;Hola Begoña;1;BAD REQUEST: SOME PARAMETERS ARE REQUIRED (what to do: a parameter is missing: check the list's columns and api.connector_id in the config, then send these rows as a new list)\n",
    );
    assert_eq!(
        encoding_rs::WINDOWS_1252.decode(&written).0,
        encoding_rs::WINDOWS_1252.decode(&expected).0
    );
    // Read back as a list: the same two rows, one still invalid.
    let mut c = cmd();
    c.arg("validate").arg(&fix);
    let out = run(c);
    out.expect_code(1);
    assert!(out.stdout.contains("1 of 2 rows invalid"), "{}", out.stdout);
    assert!(
        out.stdout.contains("row 2, column \"Teléfono\""),
        "{}",
        out.stdout
    );

    // As a workbook when asked for one.
    let fix = dir.path().join("corregir.xlsx");
    let mut c = cmd();
    c.arg("report")
        .arg(dir.path().join("clientes.results.csv"))
        .arg("--rows-to-fix")
        .arg(&fix);
    run(c).expect_code(0);
    let (_, rows) = &sheets(&fix)[0];
    assert_eq!(
        texts(&rows[1]),
        [
            "José",
            "12",
            "Hola",
            "1",
            "Teléfono: \"12\" has 2 digits: too few for a telephone number"
        ]
    );
    assert_eq!(rows.len(), 3);
}

// ---------------------------------------------------------------------------------------
// Logs for cron.

/// The README's cron command (`--log-format json`, no terminal), and the same with
/// `--quiet`: every line on stdout and stderr is a JSON object with a timestamp,
/// the run starts with a line naming the list and the results, progress lines come at
/// `report.progress_interval`, and the summary is one object on stdout.
#[test]
fn the_cron_command_writes_only_json_lines_with_timestamps_progress_and_a_summary() {
    let dir = temp_dir();
    let phones = colombian_mobiles(12);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "hoy.csv", &contacts_csv(&rows, "1"));
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[report]\nprogress_interval = \"10ms\"\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok().latency(20).hook(|req| {
        (req.telephone.as_deref() == Some("573001230004")).then(Reply::parameters_required)
    }));
    for quiet in [true, false] {
        let results = dir.path().join(format!("hoy-{quiet}.results.csv"));
        let mut c = send_cmd(&input, &fake, "tok");
        c.arg("--allow-repeat")
            .arg("--config")
            .arg(&config)
            .arg("--results")
            .arg(&results)
            .args(["--log-format", "json"]);
        if quiet {
            c.arg("--quiet");
        }
        let out = run(c);
        out.expect_code(1);
        let parse = |line: &str| -> serde_json::Value {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
        };
        let stdout: Vec<serde_json::Value> = out.stdout.lines().map(parse).collect();
        assert_eq!(stdout.len(), 1, "{}", out.stdout);
        let summary = &stdout[0];
        assert_eq!(summary["counts"]["sent"], 11);
        assert_eq!(summary["counts"]["failed"], 1);
        assert_eq!(summary["exit_code"], 1);
        assert!(summary["input"].as_str().unwrap().ends_with("hoy.csv"));
        assert!(
            summary["results"]
                .as_str()
                .unwrap()
                .ends_with(".results.csv")
        );
        assert!(summary["elapsed_s"].is_number());
        let stderr: Vec<serde_json::Value> = out.stderr.lines().map(parse).collect();
        assert!(
            stderr.iter().all(|l| l["timestamp"].is_string()),
            "{}",
            out.stderr
        );
        if !quiet {
            let first = stderr
                .iter()
                .find(|l| l["list"].is_string())
                .unwrap_or_else(|| panic!("a start line: {}", out.stderr));
            assert!(
                first["message"].as_str().unwrap().contains("-> "),
                "{first}"
            );
            assert!(first["results"].as_str().unwrap().ends_with(".results.csv"));
            let progress: Vec<_> = stderr.iter().filter(|l| l["done"].is_number()).collect();
            assert!(!progress.is_empty(), "progress lines: {}", out.stderr);
            assert!(progress.iter().all(|l| l["total"] == 12), "{progress:?}");
        }
    }

    // Text logs without a terminal carry a timestamp too; errors in JSON mode are JSON.
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--config").arg(&config).arg("--dry-run");
    let out = run(c);
    let line = out.stderr.lines().next().unwrap_or_default().to_owned();
    assert!(line.starts_with("20") && line.contains('T'), "{line}");
    let mut c = send_cmd(&dir.path().join("missing.csv"), &fake, "tok");
    c.args(["--log-format", "json"]);
    let out = run(c);
    out.expect_code(2);
    let error: serde_json::Value = serde_json::from_str(out.stderr.trim()).expect("a JSON error");
    assert_eq!(error["level"], "ERROR");
    assert_eq!(error["exit_code"], 2);
}
