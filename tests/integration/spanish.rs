//! The interface in Spanish (issue 16): with `LANG=es_CO.UTF-8` every line written for
//! a person is Spanish, and what a program reads (the results file, `--summary-json`,
//! `report --format json`, exit codes) is byte for byte what English gives.
//!
//! "Still English" is judged against the English catalogue: a line is English when it
//! holds a phrase of an English message (two words or more, outside its placeables)
//! that the Spanish catalogue does not also use, or starts with a one-word English
//! label (`rows`, `elapsed`...), or is one of clap's own English words.

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use common::*;

const TOKEN: &str = "tok-es";
const SPANISH: &[(&str, &str)] = &[("LANG", "es_CO.UTF-8")];

/// Each message's text: placeables (`{ $x }`, `{" "}`) cut out, lines joined.
fn catalogue(path: &str) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .expect("read the catalogue");
    let mut out: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with(' ') {
            if let Some((_, value)) = out.last_mut() {
                value.push('\n');
                value.push_str(line.trim());
            }
        } else if let Some((id, value)) = line.split_once('=') {
            out.push((id.trim().to_owned(), value.trim().to_owned()));
        }
    }
    out.into_iter()
        .map(|(id, value)| {
            let mut pieces = Vec::new();
            let mut rest = value.as_str();
            while let Some(open) = rest.find('{') {
                pieces.push(rest[..open].to_owned());
                let close = rest[open..].find('}').map_or(rest.len(), |c| open + c + 1);
                rest = &rest[close..];
            }
            pieces.push(rest.to_owned());
            let pieces = pieces
                .iter()
                .flat_map(|p| p.split('\n'))
                .map(|p| p.trim().to_owned())
                .filter(|p| !p.is_empty())
                .collect();
            (id, pieces)
        })
        .collect()
}

/// What marks a line as English.
struct EnglishMarks {
    phrases: BTreeSet<String>,
    labels: BTreeSet<String>,
}

impl EnglishMarks {
    fn load() -> Self {
        let spanish_text: String = catalogue("i18n/es.ftl")
            .into_iter()
            .flat_map(|(_, pieces)| pieces)
            .collect::<Vec<_>>()
            .join("\n");
        let mut phrases = BTreeSet::new();
        let mut labels = BTreeSet::new();
        for (_, pieces) in catalogue("i18n/en.ftl") {
            for piece in pieces {
                // Phrases also in Spanish (flag names, config keys, URLs) prove nothing.
                if spanish_text.contains(&piece) {
                    continue;
                }
                let words = piece
                    .split_whitespace()
                    .filter(|w| w.chars().any(char::is_alphabetic))
                    .count();
                if words >= 2 && piece.len() >= 8 {
                    phrases.insert(piece);
                } else if words == 1 && piece.chars().all(|c| c.is_ascii_lowercase() || c == ' ') {
                    labels.insert(piece);
                }
            }
        }
        // clap's and tracing's own English.
        for phrase in [
            "Usage:",
            "Options:",
            "Commands:",
            "Arguments:",
            "Print help",
            "Print version",
            "[default:",
            "[possible values:",
            "For more information",
            "WARN ",
        ] {
            phrases.insert(phrase.to_owned());
        }
        assert!(phrases.len() > 300, "the English catalogue was read");
        Self { phrases, labels }
    }

    /// The English bits of `line`, if any.
    fn english_in(&self, line: &str) -> Vec<String> {
        let mut found: Vec<String> = self
            .phrases
            .iter()
            .filter(|p| line.contains(p.as_str()))
            .cloned()
            .collect();
        let first = line.split_whitespace().next().unwrap_or_default();
        if self.labels.contains(first) {
            found.push(first.to_owned());
        }
        found
    }

    /// Fails with every English line of `text`.
    fn assert_spanish(&self, what: &str, text: &str) {
        let english: Vec<String> = text
            .lines()
            .filter_map(|line| {
                let bits = self.english_in(line);
                (!bits.is_empty()).then(|| format!("{line}\n    (English: {bits:?})"))
            })
            .collect();
        assert!(
            english.is_empty(),
            "{what}: lines still in English:\n{}\n--- all of it ---\n{text}",
            english.join("\n")
        );
        assert!(!text.trim().is_empty(), "{what}: printed nothing");
    }
}

/// A list with valid rows and one invalid row of each usual kind.
fn list(dir: &Path, valid: usize) -> std::path::PathBuf {
    let mut csv = String::from("telephone,message,connector_id\n");
    for i in 0..valid {
        csv.push_str(&format!(
            "+57 300 {:03} {:04},Hola {i}: su cita es mañana a las 9:00,conn-1\n",
            i / 10_000,
            i % 10_000
        ));
    }
    csv.push_str("5.73E+11,Hola,conn-1\n");
    csv.push_str("+57 311 PQR 7788,Hola,conn-1\n");
    csv.push_str("+57 300 12,Hola,conn-1\n");
    csv.push_str("+57 601 234 5678,Hola,conn-1\n");
    csv.push_str("+57 300 555 0000,,conn-1\n");
    csv.push_str("+57 300 555 0001,Hola,\n");
    write_csv(dir, "contactos.csv", &csv)
}

fn spanish_cmd() -> assert_cmd::Command {
    let mut c = cmd();
    c.envs(SPANISH.iter().copied());
    c
}

#[test]
fn validate_and_a_dry_run_print_only_spanish() {
    let marks = EnglishMarks::load();
    let dir = temp_dir();
    let input = list(dir.path(), 5);

    let mut c = spanish_cmd();
    c.arg("validate").arg(&input);
    let out = run(c);
    out.expect_code(1);
    marks.assert_spanish("validate", &format!("{}{}", out.stdout, out.stderr));
    assert!(out.stdout.contains("notación científica"), "{}", out.stdout);
    assert!(out.stdout.contains("es un número fijo"), "{}", out.stdout);
    assert!(
        out.stdout.contains("11 filas: 6 no válidas"),
        "{}",
        out.stdout
    );

    let mut c = spanish_cmd();
    c.arg("send").arg(&input).arg("--dry-run");
    let out = run(c);
    out.expect_code(4);
    marks.assert_spanish("send --dry-run", &format!("{}{}", out.stdout, out.stderr));
    assert!(
        out.stdout.contains("simulación: no se envió nada"),
        "{}",
        out.stdout
    );
    // A decimal comma: "duración  0,0 s", "al menos 0,5 s".
    assert!(
        out.stdout
            .lines()
            .any(|l| l.contains("duración") && l.contains(",")),
        "{}",
        out.stdout
    );

    // The workbook is for people: its sheets, headers, results and reasons in Spanish.
    {
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> =
            calamine::open_workbook(dir.path().join("contactos.dry-run.xlsx")).expect("workbook");
        assert_eq!(book.sheet_names(), ["Filas", "Resumen"]);
        let rows = book.worksheet_range("Filas").expect("sheet");
        let cells: Vec<Vec<String>> = rows
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect())
            .collect();
        assert_eq!(
            cells[0][3..],
            ["Resultado", "Motivo", "Código", "Intentos", "Hora"]
        );
        let scientific = cells
            .iter()
            .find(|r| r[0] == "5.73E+11")
            .expect("the row in scientific notation");
        assert_eq!(scientific[3], "No válido: no enviado");
        assert!(
            scientific[4].contains("notación científica"),
            "{scientific:?}"
        );
        let fixed = cells
            .iter()
            .find(|r| r[0] == "+57 601 234 5678")
            .expect("the fixed line");
        assert!(fixed[4].contains("es un número fijo de CO"), "{fixed:?}");
        let text: Vec<String> = cells.iter().map(|r| r[3..].join(" | ")).collect();
        marks.assert_spanish("the workbook", &text.join("\n"));
    }

    // With --log-format json every line is for a program: English, as in any locale.
    let mut c = spanish_cmd();
    c.arg("send")
        .arg(&input)
        .args(["--dry-run", "--log-format", "json"]);
    let out = run(c);
    out.expect_code(4);
    let english_log = out.stderr.lines().all(|line| {
        let line: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        line["message"].as_str().is_some()
    }) && out.stderr.contains("dry run of");
    assert!(english_log, "{}", out.stderr);
    let summary: serde_json::Value =
        serde_json::from_str(out.stdout.lines().last().unwrap_or_default()).expect("JSON");
    assert_eq!(
        summary["summary"], "dry run: nothing was sent",
        "{}",
        out.stdout
    );

    // The README's first command, on the shipped samples.
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples");
    let sample = dir.path().join("contacts.csv");
    std::fs::copy(samples.join("contacts.csv"), &sample).expect("copy the sample");
    let mut c = spanish_cmd();
    c.arg("send").arg(&sample).arg("--dry-run");
    let out = run(c);
    out.expect_code(4);
    marks.assert_spanish(
        "README's first command",
        &format!("{}{}", out.stdout, out.stderr),
    );
}

#[test]
fn help_and_usage_errors_are_spanish() {
    let marks = EnglishMarks::load();
    for args in [
        &["--help"][..],
        &["send", "--help"],
        &["validate", "--help"],
        &["report", "--help"],
        &["reconcile", "--help"],
        &["send", "-h"],
        &["help"],
        &["help", "send"],
        &["help", "help"],
    ] {
        let mut c = spanish_cmd();
        c.args(args);
        let out = run(c);
        out.expect_code(0);
        marks.assert_spanish(&format!("{args:?}"), &out.stdout);
    }
    for args in [
        &["send", "l.csv", "--frobnicate"][..],
        &["report", "r.csv", "--format", "xml"],
        &["sned"],
        &["send"],
        &["send", "l.csv", "--retry-failed"],
    ] {
        let mut c = spanish_cmd();
        c.args(args);
        let out = run(c);
        out.expect_code(2);
        marks.assert_spanish(&format!("{args:?}"), &out.stderr);
    }
}

#[test]
fn a_real_send_stopped_by_ctrl_c_and_its_report_are_spanish() {
    let marks = EnglishMarks::load();
    let dir = temp_dir();
    let input = list(dir.path(), 60);
    let fake = FakeWolkvox::start(Behavior::ok().latency(40));
    let spawned = spawn_send_with_env(&input, &fake, TOKEN, &[], SPANISH);
    assert!(
        fake.wait_for_requests(6, Duration::from_secs(20)),
        "never started"
    );
    spawned.signal("INT");
    let (_, out) = spawned.wait(Duration::from_secs(30));
    out.expect_code(3);
    let printed = format!("{}{}", out.stdout, out.stderr);
    marks.assert_spanish("send stopped by Ctrl-C", &printed);
    assert!(out.stdout.contains("ejecución detenida"), "{printed}");
    assert!(out.stdout.contains("Para continuar, ejecute:"), "{printed}");
    assert!(out.stderr.contains("interrumpido"), "{printed}");

    let results = default_results_path(&input);
    let mut c = spanish_cmd();
    c.arg("report").arg(&results);
    let out = run(c);
    out.expect_code(0);
    marks.assert_spanish("report", &format!("{}{}", out.stdout, out.stderr));
    assert!(out.stdout.contains("siguiente paso:"), "{}", out.stdout);
}

#[test]
fn the_flag_wins_over_the_config_and_the_config_over_the_locale() {
    let dir = temp_dir();
    let input = list(dir.path(), 2);
    let spanish_config = write_config(dir.path(), "[ui]\nlang = \"es\"\n");

    // LANG is Spanish, --lang en: English.
    let mut c = spanish_cmd();
    c.args(["--lang", "en", "validate"]).arg(&input);
    let out = run(c);
    assert!(out.stdout.contains("rows invalid"), "{}", out.stdout);

    // LANG is English (C), the config says es: Spanish.
    let mut c = cmd();
    c.arg("validate")
        .arg(&input)
        .arg("--config")
        .arg(&spanish_config);
    let out = run(c);
    assert!(out.stdout.contains("filas:"), "{}", out.stdout);
    // ... and --help with that config is Spanish too.
    let mut c = cmd();
    c.args(["send", "--help", "--config"]).arg(&spanish_config);
    let out = run(c);
    assert!(out.stdout.contains("Opciones:"), "{}", out.stdout);

    // LC_ALL wins over LANG, as POSIX has it.
    let mut c = spanish_cmd();
    c.env("LC_ALL", "C").arg("validate").arg(&input);
    let out = run(c);
    assert!(out.stdout.contains("rows invalid"), "{}", out.stdout);

    // A language that is neither is refused by name, before anything is read.
    let bad = write_config(dir.path(), "[ui]\nlang = \"fr\"\n");
    let mut c = cmd();
    c.arg("validate").arg(&input).arg("--config").arg(&bad);
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("ui.lang") || out.stderr.contains("lang"),
        "{}",
        out.stderr
    );
}

/// Results with their time columns blanked: everything else must be equal.
fn results_without_times(path: &Path) -> Vec<Vec<String>> {
    let mut rdr = csv::Reader::from_path(path).expect("open the results");
    let header = rdr.headers().expect("header").clone();
    let timed: Vec<usize> = ["elapsed_ms", "finished_at"]
        .iter()
        .map(|name| header.iter().position(|h| h == *name).expect("column"))
        .collect();
    let mut rows = vec![header.iter().map(str::to_owned).collect()];
    for record in rdr.records() {
        let record = record.expect("a record");
        rows.push(
            record
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    if timed.contains(&i) {
                        String::new()
                    } else {
                        v.to_owned()
                    }
                })
                .collect(),
        );
    }
    rows
}

/// `json` with `keys` set to null: the values that differ from run to run.
fn without(mut json: serde_json::Value, keys: &[&str]) -> serde_json::Value {
    for key in keys {
        json[*key] = serde_json::Value::Null;
    }
    json
}

/// The summary JSON with its times taken out.
fn summary_without_times(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).expect("read the summary");
    let mut json = without(
        serde_json::from_str(&text).expect("JSON"),
        &[
            "elapsed_s",
            "messages_per_second",
            "started_at",
            "finished_at",
        ],
    );
    // The estimate says when the run would end: a clock time.
    if let Some(estimate) = json["estimate"].as_str() {
        let cut = estimate.find("finish around").unwrap_or(estimate.len());
        json["estimate"] = estimate[..cut].into();
    }
    json
}

#[test]
fn results_summary_json_and_report_json_are_the_same_in_both_languages() {
    let mut outputs = Vec::new();
    for lang in ["en_US.UTF-8", "es_CO.UTF-8"] {
        let dir = temp_dir();
        let input = list(dir.path(), 12);
        let fake = FakeWolkvox::start(Behavior::ok());

        // A real run: sent rows, invalid rows with their reasons.
        // Relative paths: the summary names the results file.
        let mut c = send_cmd(Path::new("contactos.csv"), &fake, TOKEN);
        c.env("LANG", lang).current_dir(dir.path()).args([
            "--summary-json",
            "summary.json",
            "--allow-repeat",
        ]);
        run(c).expect_code(4);
        let results = default_results_path(&input);
        // A dry run, whose summary has an estimate.
        let mut c = cmd();
        c.env("LANG", lang).current_dir(dir.path()).args([
            "send",
            "contactos.csv",
            "--dry-run",
            "--summary-json",
            "dry.json",
            "--allow-repeat",
        ]);
        run(c).expect_code(4);
        let mut c = cmd();
        c.env("LANG", lang)
            .current_dir(dir.path())
            .args(["report", "--format", "json"])
            .arg(&results);
        let report = run(c);
        report.expect_code(0);
        let report = without(
            serde_json::from_str(&report.stdout).expect("report JSON"),
            &[
                "first_finished_at",
                "last_finished_at",
                "messages_per_second",
                "results",
            ],
        );
        outputs.push((
            results_without_times(&results),
            results_without_times(&dir.path().join("contactos.dry-run.csv")),
            summary_without_times(&dir.path().join("summary.json")),
            summary_without_times(&dir.path().join("dry.json")),
            report,
        ));
    }
    let (english, spanish) = (&outputs[0], &outputs[1]);
    assert_eq!(english.0, spanish.0, "results of the real run");
    assert_eq!(english.1, spanish.1, "results of the dry run");
    assert_eq!(english.2, spanish.2, "--summary-json of the real run");
    assert_eq!(english.3, spanish.3, "--summary-json of the dry run");
    assert_eq!(english.4, spanish.4, "report --format json");
    // The reasons are really there (in English), not blank in both.
    let invalid: Vec<&Vec<String>> = english.0.iter().filter(|r| r[2] == "invalid").collect();
    assert_eq!(invalid.len(), 6, "{:?}", english.0);
    assert!(
        invalid.iter().any(|r| r[6].contains("scientific notation")),
        "{invalid:?}"
    );
    assert!(
        english.3["estimate"]
            .as_str()
            .is_some_and(|e| e.contains("messages would take"))
    );
}

/// Errors, warnings and stops, in Spanish: a refused quota, a closed contact window
/// (and the report of its rows), a missing column, a config key out of range, an
/// opt-out list with a bad entry, and a test send.
#[test]
fn errors_warnings_and_stops_are_spanish() {
    let marks = EnglishMarks::load();
    let dir = temp_dir();
    let input = list(dir.path(), 10);
    let printed = |out: &Run| format!("{}{}", out.stdout, out.stderr);

    // Today's quota is too small: refused before any message.
    let fake = FakeWolkvox::start(Behavior::ok().quota(TOKEN, 5));
    let mut c = send_cmd_checking_quota(&input, &fake, TOKEN);
    c.envs(SPANISH.iter().copied());
    let out = run(c);
    out.expect_code(2);
    marks.assert_spanish("quota refused", &printed(&out));
    assert!(out.stderr.contains("--partial"), "{}", out.stderr);
    assert!(fake.send_requests().is_empty());

    // Outside the contact hours: today is a holiday.
    let today = jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .date();
    let config = write_config(
        dir.path(),
        &format!(
            "[campaign]\nhours = \"mon-sun 00:00-24:00\"\ntimezone = \"UTC\"\nholidays = [\"{today}\"]\n"
        ),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.envs(SPANISH.iter().copied()).arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(3);
    marks.assert_spanish("closed window", &printed(&out));
    assert!(
        out.stdout.contains("fuera del horario de contacto"),
        "{}",
        out.stdout
    );
    let mut c = spanish_cmd();
    c.arg("report").arg(default_results_path(&input));
    let out = run(c);
    marks.assert_spanish("report of a closed window", &printed(&out));
    assert!(
        out.stdout.contains("la ventana vuelve a abrir"),
        "{}",
        out.stdout
    );
    // The recorded time (English in the results) is shown with a Spanish weekday.
    let english_day = ["Mon ", "Tue ", "Wed ", "Thu ", "Fri ", "Sat ", "Sun "];
    assert!(
        !english_day.iter().any(|d| out.stdout.contains(d)),
        "{}",
        out.stdout
    );

    // A missing column, a key out of range, an opt-out list with a typo.
    let no_phone = write_csv(dir.path(), "sin_telefono.csv", "nombre,mensaje\nAna,Hola\n");
    let mut c = spanish_cmd();
    c.arg("validate").arg(&no_phone);
    let out = run(c);
    out.expect_code(2);
    marks.assert_spanish("missing column", &printed(&out));
    let three = write_named_config(
        dir.path(),
        "tres.toml",
        "[limits]\nmax_in_flight_per_token = 3\n",
    );
    let mut c = spanish_cmd();
    c.args(["send", "--dry-run"])
        .arg(&input)
        .arg("--config")
        .arg(&three);
    let out = run(c);
    out.expect_code(2);
    marks.assert_spanish("config key", &printed(&out));
    assert!(out.stderr.contains("no está permitido"), "{}", out.stderr);
    let optout = write_csv(dir.path(), "bajas.txt", "+57 300 000 0001\nhola\n");
    let mut c = spanish_cmd();
    c.arg("validate").arg(&input).arg("--suppress").arg(&optout);
    let out = run(c);
    marks.assert_spanish("opt-out list", &printed(&out));
    assert!(out.stderr.contains("lista de exclusión"), "{}", out.stderr);

    // A test send.
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.envs(SPANISH.iter().copied())
        .args(["--test-to", "+57 310 555 1234"]);
    let out = run(c);
    out.expect_code(0);
    marks.assert_spanish("--test-to", &printed(&out));
    assert!(
        out.stdout.contains("respuesta de Wolkvox: aceptado"),
        "{}",
        out.stdout
    );
}

/// A server whose own `error` reads exactly like one of the tool's English texts
/// ("response is not JSON") is quoted as it said it, in `report` and in the workbook:
/// only the tool's own words are shown in Spanish (the journal records them by message
/// id); the same text said by the tool, on another row, is Spanish.
#[test]
fn a_servers_words_that_read_like_the_tools_are_kept_in_spanish_output() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "contactos.csv",
        "telephone,message,connector_id\n\
         +57 300 111 2233,Hola,conn-1\n\
         +57 300 444 5566,Hola,conn-1\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        match req.telephone.as_deref() {
            // The server's own words, which happen to be the tool's English.
            Some(t) if t.ends_with("1112233") => Some(Reply::api_error(
                400,
                "response is not JSON",
                "Connector not found",
            )),
            // An answer that is not JSON: the tool says so.
            Some(_) => Some(Reply::raw(400, "text/html", "<html>bad gateway</html>")),
            None => None,
        }
    }));
    let mut c = send_cmd(&input, &fake, TOKEN);
    c.envs(SPANISH.iter().copied());
    run(c).expect_code(1);
    let results = default_results_path(&input);
    let rows = read_results(&results);
    assert_eq!(row(&rows, 1)["error"], "response is not JSON", "{rows:?}");
    assert_eq!(row(&rows, 2)["error"], "response is not JSON", "{rows:?}");

    let mut c = spanish_cmd();
    c.arg("report").arg(&results);
    let out = run(c);
    out.expect_code(0);
    let line = |needle: &str| -> String {
        out.stdout
            .lines()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no line with {needle:?}: {}", out.stdout))
            .to_owned()
    };
    let servers = line("Connector not found");
    assert!(servers.contains("response is not JSON"), "{}", out.stdout);
    assert!(
        !servers.contains("la respuesta no es JSON"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("la respuesta no es JSON"),
        "the tool's own words are Spanish: {}",
        out.stdout
    );

    use calamine::Reader;
    let mut book = calamine::open_workbook_auto(results.with_extension("xlsx")).expect("workbook");
    let name = book.sheet_names().first().cloned().expect("a sheet");
    let sheet = book.worksheet_range(&name).expect("rows sheet");
    let cells: Vec<String> = sheet
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect();
    let first = cells
        .iter()
        .find(|l| l.contains("Connector not found"))
        .unwrap_or_else(|| panic!("no row of the server's refusal: {cells:#?}"));
    assert!(first.contains("response is not JSON"), "{cells:#?}");
    assert!(
        cells.iter().any(|l| l.contains("la respuesta no es JSON")),
        "{cells:#?}"
    );
}

/// The rows' sheet of the workbook next to `results`, one line a row (cells joined).
fn workbook_lines(results: &Path) -> Vec<String> {
    use calamine::Reader;
    let mut book = calamine::open_workbook_auto(results.with_extension("xlsx")).expect("workbook");
    let name = book.sheet_names().first().cloned().expect("a sheet");
    let sheet = book.worksheet_range(&name).expect("rows sheet");
    sheet
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| c.to_string())
                .collect::<Vec<_>>()
                .join(" | ")
        })
        .collect()
}

/// A run stopped because the service looked down: the rows it left `not_sent` say why
/// and what the server answered last. In Spanish (the workbook of a Spanish run, and
/// `report` in Spanish) both the reason and "last answer" are Spanish, the server's
/// words as it said them; the results file keeps the English.
#[test]
fn rows_a_stopped_run_left_unsent_say_why_in_spanish() {
    let marks = EnglishMarks::load();
    let dir = temp_dir();
    let input = list(dir.path(), 6);
    // More attempts per row than failures in a row: rows are mid-retry when it stops.
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n\n[retry]\nbase_delay = \"10ms\"\nmax_delay = \"40ms\"\n\
         max_attempts = 9\nmax_consecutive_failures = 4\n",
    );
    let down = FakeWolkvox::start(
        Behavior::ok().hook(|_| Some(Reply::api_error(503, "SERVICE UNAVAILABLE", "caído hoy"))),
    );
    let mut c = send_cmd(&input, &down, TOKEN);
    c.envs(SPANISH.iter().copied()).arg("--config").arg(&config);
    run(c).expect_code(3);
    let results = default_results_path(&input);
    let rows = read_results(&results);
    assert!(
        rows.iter()
            .any(|r| r["msg"] == "not sent: the service looked down (last answer: caído hoy)"),
        "the results file keeps the English: {rows:?}"
    );

    let cells = workbook_lines(&results);
    let stopped: Vec<&String> = cells.iter().filter(|l| l.contains("caído hoy")).collect();
    assert!(!stopped.is_empty(), "{cells:#?}");
    for line in &stopped {
        assert!(
            line.contains("no enviado: el servicio parecía caído"),
            "{cells:#?}"
        );
    }
    marks.assert_spanish("workbook of a stopped run", &cells.join("\n"));

    let mut c = spanish_cmd();
    c.arg("report").arg(&results);
    let out = run(c);
    out.expect_code(0);
    marks.assert_spanish(
        "report of a stopped run",
        &format!("{}{}", out.stdout, out.stderr),
    );
}

/// Rows held by the send ledger's frequency cap: in Spanish output the period ("1 day")
/// and the rest of the reason are Spanish; the results file keeps the English.
#[test]
fn rows_held_by_the_cap_say_why_in_spanish() {
    let marks = EnglishMarks::load();
    let dir = temp_dir();
    let tel = colombian_mobiles(1).remove(0);
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[ledger]\nmax_per_phone = \"1/24h\"\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut last = None;
    for (i, text) in ["uno", "dos"].iter().enumerate() {
        let list = write_csv(
            dir.path(),
            &format!("l{i}.csv"),
            &contacts_csv(&[(tel.as_str(), text)], "1"),
        );
        let mut c = send_cmd(&list, &fake, TOKEN);
        c.envs(SPANISH.iter().copied()).arg("--config").arg(&config);
        run(c).expect_code(if i == 0 { 0 } else { 4 });
        last = Some(list);
    }
    let results = default_results_path(&last.expect("two lists"));
    let rows = read_results(&results);
    assert_eq!(rows[0]["status"], "held", "{rows:?}");
    assert!(rows[0]["msg"].contains("within 1 day"), "{rows:?}");

    let cells = workbook_lines(&results);
    assert!(
        cells.iter().any(|l| l.contains("mensajes en 1 día")),
        "{cells:#?}"
    );
    marks.assert_spanish("workbook of held rows", &cells.join("\n"));

    let mut c = spanish_cmd();
    c.arg("report").arg(&results);
    let out = run(c);
    out.expect_code(0);
    marks.assert_spanish(
        "report of held rows",
        &format!("{}{}", out.stdout, out.stderr),
    );
}
