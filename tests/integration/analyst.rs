//! For the analyst who runs it (issue 30): exit codes that tell a cron job whether the
//! list or the API needs attention, `init`, hints for the usual first mistakes, and
//! output that points people at the workbook.

use crate::common;

use common::*;
use serde_json::Value;

/// Three valid rows and two the list itself spoils: a bad phone and a repeated one.
fn list_with_problems(dir: &std::path::Path) -> std::path::PathBuf {
    write_csv(
        dir,
        "lista.csv",
        "telephone,message,connector_id\n\
         573001230001,Hola,1\n\
         12,Hola,1\n\
         573001230002,Hola,1\n\
         573001230001,Hola,1\n\
         573001230003,Hola,1\n",
    )
}

#[test]
fn every_valid_row_sent_but_list_problems_exits_4_and_says_so_in_summary_json() {
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let summary = dir.path().join("summary.json");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--summary-json").arg(&summary);
    run(c).expect_code(4);
    let json: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(json["exit_code"], 4);
    assert_eq!(json["counts"]["sent"], 3);
}

#[test]
fn a_dry_run_of_a_list_with_problems_exits_4_too() {
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let mut c = cmd();
    c.arg("send").arg(&input).arg("--dry-run");
    run(c).expect_code(4);
}

#[test]
fn a_row_the_api_refused_still_exits_1_whatever_the_list() {
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.telephone.as_deref() == Some("573001230002")).then(Reply::parameters_required)
    }));
    run(send_cmd(&input, &fake, "tok")).expect_code(1);
}

#[test]
fn only_suppressed_rows_left_out_still_exits_0() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "lista.csv",
        "telephone,message,connector_id\n573001230001,Hola,1\n573001230002,Hola,1\n",
    );
    let optout = write_csv(dir.path(), "bajas.csv", "telephone\n573001230002\n");
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--suppress").arg(&optout);
    run(c).expect_code(0);
}

// ---------------------------------------------------------------------------------------
// init

fn init_cmd(dir: &std::path::Path) -> assert_cmd::Command {
    let mut c = cmd();
    c.current_dir(dir).arg("init");
    c
}

/// A list as a Colombian analyst has it: local numbers, no connector_id column.
fn local_list(dir: &std::path::Path) -> std::path::PathBuf {
    write_csv(
        dir,
        "lista.csv",
        "telefono,mensaje\n300 123 0001,Hola\n(300) 123-0002,Hola\n",
    )
}

#[test]
fn init_with_flags_writes_a_spanish_config_that_validate_uses_as_is() {
    let dir = temp_dir();
    let mut c = init_cmd(dir.path());
    c.env("LANG", "es_CO.UTF-8").args([
        "--server",
        "0042",
        "--connector-id",
        "7",
        "--country",
        "co",
    ]);
    let out = run(c);
    out.expect_code(0);
    assert!(out.stdout.contains("wolkvox.toml"), "{}", out.stdout);
    let text = std::fs::read_to_string(dir.path().join("wolkvox.toml")).unwrap();
    for expected in [
        "server = \"0042\"",
        "connector_id = \"7\"",
        "default_country = \"CO\"",
        "lang = \"es\"",
        "# Su servidor de Wolkvox",
        "wolkvox Manager",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    let list = local_list(dir.path());
    let mut v = cmd();
    v.arg("validate")
        .arg(&list)
        .arg("--config")
        .arg(dir.path().join("wolkvox.toml"));
    run(v).expect_code(0);
}

#[test]
fn init_reads_answers_piped_on_stdin_and_takes_a_pasted_address() {
    let dir = temp_dir();
    let mut c = init_cmd(dir.path());
    c.arg("campana.toml")
        .write_stdin("https://wv0100.wolkvox.com/\n12\nmx\n");
    let out = run(c);
    out.expect_code(0);
    assert!(out.stderr.contains("wolkvox Manager"), "{}", out.stderr);
    let text = std::fs::read_to_string(dir.path().join("campana.toml")).unwrap();
    assert!(text.contains("server = \"0100\""), "{text}");
    assert!(text.contains("connector_id = \"12\""), "{text}");
    assert!(text.contains("default_country = \"MX\""), "{text}");
    assert!(text.contains("lang = \"en\""), "{text}");
}

#[test]
fn init_leaves_unanswered_keys_commented_and_the_file_still_loads() {
    let dir = temp_dir();
    let mut c = init_cmd(dir.path());
    c.write_stdin("");
    let out = run(c);
    out.expect_code(0);
    assert!(out.stdout.contains("api.server"), "{}", out.stdout);
    let config = dir.path().join("wolkvox.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(text.contains("# server = \"0042\""), "{text}");
    let list = write_csv(
        dir.path(),
        "l.csv",
        "telephone,message,connector_id\n573001230001,Hola,1\n",
    );
    let mut v = cmd();
    v.arg("validate").arg(&list).arg("--config").arg(&config);
    run(v).expect_code(0);
}

#[test]
fn init_never_overwrites_a_config_and_asks_nothing_then() {
    let dir = temp_dir();
    let config = write_config(dir.path(), "[api]\nserver = \"9\"\n");
    let mut c = init_cmd(dir.path());
    c.env("LANG", "es_CO.UTF-8")
        .arg(config.file_name().unwrap())
        .args(["--server", "0042"])
        .write_stdin("1\nCO\n");
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("ya existe"), "{}", out.stderr);
    assert!(!out.stderr.contains("conector"), "{}", out.stderr);
    assert_eq!(
        std::fs::read_to_string(&config).unwrap(),
        "[api]\nserver = \"9\"\n"
    );
}

#[test]
fn init_refuses_a_wrong_answer_naming_the_flag_and_writes_nothing() {
    let dir = temp_dir();
    let mut c = init_cmd(dir.path());
    c.write_stdin("0042\n1\nColombia\n");
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("--country"), "{}", out.stderr);
    assert!(!dir.path().join("wolkvox.toml").exists());
    let mut c = init_cmd(dir.path());
    c.args(["--server", "wv0042.evil.example/x"]);
    let out = run(c);
    out.expect_code(2);
    assert!(out.stderr.contains("--server"), "{}", out.stderr);
    assert!(!dir.path().join("wolkvox.toml").exists());
}

// ---------------------------------------------------------------------------------------
// First mistakes: an unquoted --test-to, a CSV export that spoiled the phones.

#[test]
fn an_unquoted_test_to_number_is_taken_whole() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "lista.csv",
        "telephone,message,connector_id\n573001230001,Hola,1\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    // As the README writes it, unquoted, with the list after it.
    let mut c = cmd();
    c.args(["send", "--base-url"])
        .arg(fake.base_url())
        .args(["--no-quota-check", "--test-to", "+57", "310", "555", "1234"])
        .arg(&input)
        .env("WOLKVOX_TOKEN", "tok");
    run(c).expect_code(0);
    assert_eq!(fake.delivered_telephones(), ["573105551234"]);
}

#[test]
fn phones_in_scientific_notation_say_to_give_the_xlsx_directly() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "lista.csv",
        "telephone,message,connector_id\n5.73001E+11,Hola,1\n573001230001,Hola,1\n",
    );
    for (lang, words) in [("C", "give the .xlsx"), ("es_CO.UTF-8", "dé el .xlsx")] {
        let mut c = cmd();
        c.env("LANG", lang).arg("validate").arg(&input);
        let out = run(c);
        out.expect_code(1);
        assert!(out.stdout.contains(words), "{lang}: {}", out.stdout);
    }
}

// ---------------------------------------------------------------------------------------
// Output for people: the workbook first, the CSV for programs.

#[test]
fn the_summary_and_report_point_people_at_the_workbook_and_its_motivo_column() {
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.env("LANG", "es_CO.UTF-8");
    let out = run(c);
    out.expect_code(4);
    let excel = out
        .stdout
        .lines()
        .find(|l| l.contains("para abrir en Excel"))
        .unwrap_or_else(|| panic!("no Excel line:\n{}", out.stdout));
    assert!(excel.contains("lista.results.xlsx"), "{excel}");
    let programs = out
        .stdout
        .lines()
        .find(|l| l.contains("lista.results.csv"))
        .unwrap_or_else(|| panic!("no CSV line:\n{}", out.stdout));
    assert!(programs.contains("para programas"), "{programs}");

    let mut r = cmd();
    r.env("LANG", "es_CO.UTF-8")
        .arg("report")
        .arg(default_results_path(&input));
    let out = run(r);
    out.expect_code(0);
    assert!(
        out.stdout.contains("para abrir en Excel: ") && out.stdout.contains("lista.results.xlsx"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("columna Motivo del libro de Excel"),
        "{}",
        out.stdout
    );

    // Without a workbook, the summary names only the CSV.
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let mut c = send_cmd(&input, &fake, "tok");
    c.env("LANG", "es_CO.UTF-8").arg("--no-xlsx");
    let out = run(c);
    assert!(!out.stdout.contains("Excel"), "{}", out.stdout);
}

#[test]
fn rows_to_fix_carry_the_motivo_of_each_row() {
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| {
        (req.telephone.as_deref() == Some("573001230003")).then(Reply::parameters_required)
    }));
    run(send_cmd(&input, &fake, "tok")).expect_code(1);
    let fix = dir.path().join("corregir.csv");
    let mut r = cmd();
    r.env("LANG", "es_CO.UTF-8")
        .arg("report")
        .arg(default_results_path(&input))
        .arg("--rows-to-fix")
        .arg(&fix);
    run(r).expect_code(0);
    let text = std::fs::read_to_string(&fix).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "telephone,message,connector_id,Motivo", "{text}");
    assert!(lines[1].starts_with("12,Hola,1,"), "{text}");
    assert!(lines[2].starts_with("573001230003,Hola,1,"), "{text}");
    assert!(lines[2].contains("qué hacer"), "{text}");
    assert_eq!(lines.len(), 3, "{text}");
}

// ---------------------------------------------------------------------------------------
// Times for people.

/// `viernes 4 de diciembre, 08:16` for `t` in Bogota.
fn spanish_bogota(t: jiff::Timestamp) -> String {
    let z = t.in_tz("America/Bogota").expect("zone");
    let days = [
        "lunes",
        "martes",
        "miércoles",
        "jueves",
        "viernes",
        "sábado",
        "domingo",
    ];
    let months = [
        "enero",
        "febrero",
        "marzo",
        "abril",
        "mayo",
        "junio",
        "julio",
        "agosto",
        "septiembre",
        "octubre",
        "noviembre",
        "diciembre",
    ];
    format!(
        "{} {} de {}, {:02}:{:02}",
        days[z.weekday().to_monday_zero_offset() as usize],
        z.day(),
        months[z.month() as usize - 1],
        z.hour(),
        z.minute()
    )
}

#[test]
fn report_shows_answer_times_in_the_reader_s_words_and_zone() {
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    let before = jiff::Timestamp::now();
    run(send_cmd(&input, &fake, "tok")).expect_code(4);
    let after = jiff::Timestamp::now();
    let mut r = cmd();
    r.env("LANG", "es_CO.UTF-8")
        .env("TZ", "America/Bogota")
        .arg("report")
        .arg(default_results_path(&input));
    let out = run(r);
    out.expect_code(0);
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with("primera respuesta"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    let shown = line.trim_start_matches("primera respuesta").trim();
    assert!(
        [spanish_bogota(before), spanish_bogota(after)].contains(&shown.to_owned()),
        "{line}"
    );
    // The results file keeps ISO times for programs.
    let rows = read_results(&default_results_path(&input));
    assert!(rows.iter().any(|r| r["finished_at"].ends_with('Z')));
}

// ---------------------------------------------------------------------------------------
// Log lines.

#[test]
fn spanish_text_log_lines_have_no_english_key_value_tails_and_keep_full_times_in_a_file() {
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.env("LANG", "es_CO.UTF-8");
    let out = run(c);
    out.expect_code(4);
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for line in &lines {
        for tail in ["list=", "results=", "rows=", "rate=", "tokens="] {
            assert!(!line.contains(tail), "{tail} in {line:?}");
        }
        let stamp = line.split(' ').next().unwrap_or_default();
        assert!(
            stamp.parse::<jiff::Timestamp>().is_ok(),
            "a log file keeps the full time: {line:?}"
        );
    }
}

#[test]
fn at_a_terminal_log_lines_have_a_short_local_time_and_no_info_level() {
    // A terminal for stderr: util-linux's `script` runs the command in a pseudo-terminal.
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: no `script` command to give the run a terminal");
        return;
    }
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let bin = assert_cmd::cargo::cargo_bin("wolkvox-dispatch");
    let out = std::process::Command::new("script")
        .arg("-qec")
        .arg(format!(
            "'{}' send '{}' --dry-run --lang es",
            bin.display(),
            input.display()
        ))
        .arg("/dev/null")
        .env("TERM", "dumb")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("run script");
    let text = String::from_utf8_lossy(&out.stdout);
    let logs: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("simulación de"))
        .collect();
    assert_eq!(logs.len(), 1, "{text}");
    let (time, rest) = logs[0].split_once(' ').unwrap_or_default();
    assert!(
        time.len() == 8 && time.as_bytes()[2] == b':' && time.as_bytes()[5] == b':',
        "{text}"
    );
    assert!(rest.starts_with("wolkvox-dispatch"), "{text}");
}

// ---------------------------------------------------------------------------------------
// Wolkvox's answers in the reader's language.

/// The workbook's Rows sheet as text.
fn rows_sheet(path: &std::path::Path) -> Vec<Vec<String>> {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let mut book: Xlsx<_> = open_workbook(path).expect("workbook");
    let name = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&name).expect("sheet");
    range
        .rows()
        .map(|r| {
            r.iter()
                .map(|c| match c {
                    Data::String(s) => s.clone(),
                    Data::Empty => String::new(),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect()
}

#[test]
fn wolkvox_s_usual_answers_read_in_spanish_and_stay_raw_in_the_results() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "lista.csv",
        "telephone,message,connector_id\n\
         573001230001,Hola,1\n573001230002,Hola,1\n573001230003,Hola,1\n",
    );
    let fake = FakeWolkvox::start(Behavior::ok().hook(|req| match req.telephone.as_deref() {
        Some("573001230002") => Some(Reply::parameters_required()),
        Some("573001230003") => Some(Reply::raw(500, "text/html", "<h1>oops</h1>")),
        _ => None,
    }));
    let mut c = send_cmd(&input, &fake, "tok");
    c.env("LANG", "es_CO.UTF-8");
    run(c).expect_code(1);
    let rows = rows_sheet(&dir.path().join("lista.results.xlsx"));
    let motivo = rows[0].iter().position(|h| h == "Motivo").expect("Motivo");
    let reasons: Vec<&str> = rows[1..].iter().map(|r| r[motivo].as_str()).collect();
    assert_eq!(reasons[0], "Wolkvox aceptó el mensaje", "{reasons:?}");
    assert!(
        reasons[1].starts_with("SOLICITUD INCORRECTA: FALTAN PARÁMETROS"),
        "{reasons:?}"
    );
    assert!(
        reasons[2].starts_with("HTTP 500: error del servidor; puede haberse entregado"),
        "{reasons:?}"
    );
    let results = read_results(&default_results_path(&input));
    assert_eq!(
        row(&results, 1)["msg"],
        "Message has been sent successfully"
    );
    assert_eq!(
        row(&results, 3)["error"],
        "HTTP 500 server error: it may have been delivered"
    );
    let mut r = cmd();
    r.env("LANG", "es_CO.UTF-8")
        .arg("report")
        .arg(default_results_path(&input));
    let out = run(r);
    assert!(
        out.stdout
            .contains("SOLICITUD INCORRECTA: FALTAN PARÁMETROS")
            && out.stdout.contains("HTTP 500: error del servidor"),
        "{}",
        out.stdout
    );
}

// ---------------------------------------------------------------------------------------
// One hint for a list of national numbers without phone.default_country.

#[test]
fn many_national_numbers_without_a_default_country_give_one_hint() {
    let dir = temp_dir();
    let mut csv = String::from("telefono,mensaje,connector_id\n");
    for i in 0..10 {
        csv.push_str(&format!("316138{i:04},Hola,1\n"));
    }
    let input = write_csv(dir.path(), "lista.csv", &csv);
    let mut c = cmd();
    c.env("LANG", "es_CO.UTF-8").arg("validate").arg(&input);
    let out = run(c);
    out.expect_code(1);
    let hints: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("[phone] default_country"))
        .collect();
    assert_eq!(hints.len(), 1, "{}", out.stdout);
    assert!(hints[0].contains("10"), "{}", hints[0]);
    // A long list says it before the rows' own problems, once.
    let mut csv = String::from("telefono,mensaje,connector_id\n");
    for i in 0..100 {
        csv.push_str(&format!("316138{i:04},Hola,1\n"));
    }
    let long = write_csv(dir.path(), "larga.csv", &csv);
    let mut c = cmd();
    c.env("LANG", "es_CO.UTF-8").arg("validate").arg(&long);
    let out = run(c);
    let lines: Vec<&str> = out.stdout.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("[phone] default_country"))
        .unwrap_or_else(|| panic!("{}", out.stdout));
    assert_eq!(
        at, 1,
        "the hint comes first, after the columns line:\n{}",
        out.stdout
    );
    assert_eq!(out.stdout.matches("[phone] default_country").count(), 1);
    let mut c = cmd();
    c.env("LANG", "es_CO.UTF-8")
        .args(["send", "--dry-run"])
        .arg(&input);
    let out = run(c);
    out.expect_code(4);
    assert_eq!(
        out.stderr.matches("[phone] default_country").count(),
        1,
        "{}",
        out.stderr
    );
    // With the country set, no hint.
    let config = write_config(dir.path(), "[phone]\ndefault_country = \"CO\"\n");
    let mut c = cmd();
    c.arg("validate").arg(&input).arg("--config").arg(&config);
    let out = run(c);
    out.expect_code(0);
    assert!(!out.stdout.contains("[phone]"), "{}", out.stdout);
}

// ---------------------------------------------------------------------------------------
// The workbook's summary sheet.

#[test]
fn the_summary_sheet_holds_counts_as_numbers_and_prints_one_page_wide() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let dir = temp_dir();
    let input = list_with_problems(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.env("LANG", "es_CO.UTF-8").args(["--limit", "1"]);
    run(c).expect_code(3);
    let path = dir.path().join("lista.results.xlsx");
    let mut book: Xlsx<_> = open_workbook(&path).expect("workbook");
    let range = book.worksheet_range("Resumen").expect("Resumen");
    let value = |label: &str| {
        range
            .rows()
            .find(|r| r[0] == Data::String(label.to_owned()))
            .map(|r| r[1].clone())
            .unwrap_or_else(|| panic!("no {label} in {range:?}"))
    };
    assert_eq!(value("Enviado"), Data::Float(1.0));
    assert_eq!(value("No válido: no enviado"), Data::Float(1.0));
    assert!(matches!(value("Para continuar"), Data::String(s) if s.contains("--resume")));
    // Printing: one page wide (fitToPage with fitToWidth 1) and the long cells wrapped.
    let sheet_xml = {
        let file = std::fs::File::open(&path).unwrap();
        let mut zip = zip::ZipArchive::new(file).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet2.xml").unwrap(),
            &mut xml,
        )
        .unwrap();
        xml
    };
    assert!(sheet_xml.contains("fitToPage=\"1\""), "{sheet_xml}");
    assert!(sheet_xml.contains("fitToHeight=\"0\""), "{sheet_xml}");
}

#[test]
fn a_spreadsheet_s_dates_and_times_stay_real_cells_in_the_workbook() {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let dir = temp_dir();
    let input = dir.path().join("citas.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    for (c, name) in ["telephone", "message", "connector_id", "fecha", "hora"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, c as u16, *name).unwrap();
    }
    sheet.write_string(1, 0, "573001230001").unwrap();
    sheet.write_string(1, 1, "Hola").unwrap();
    sheet.write_string(1, 2, "1").unwrap();
    let date = ExcelDateTime::from_ymd(2026, 12, 8).unwrap();
    sheet
        .write_datetime_with_format(1, 3, &date, &Format::new().set_num_format("dd/mm/yyyy"))
        .unwrap();
    let time = ExcelDateTime::from_hms(10, 30, 0).unwrap();
    sheet
        .write_datetime_with_format(1, 4, &time, &Format::new().set_num_format("hh:mm"))
        .unwrap();
    book.save(&input).unwrap();
    let mut c = cmd();
    c.arg("send").arg(&input).arg("--dry-run");
    run(c).expect_code(0);
    let mut out: Xlsx<_> = open_workbook(dir.path().join("citas.dry-run.xlsx")).unwrap();
    let name = out.sheet_names()[0].clone();
    let range = out.worksheet_range(&name).unwrap();
    let row: Vec<Data> = range.rows().nth(1).unwrap().to_vec();
    assert_eq!(
        row[0],
        Data::String("573001230001".into()),
        "phones stay text"
    );
    match (&row[3], &row[4]) {
        (Data::DateTime(d), Data::DateTime(t)) => {
            assert_eq!(d.as_f64(), 46364.0, "2026-12-08");
            assert!((t.as_f64() - 10.5 / 24.0).abs() < 1e-9, "10:30");
        }
        other => panic!("dates as text: {other:?}"),
    }
}

#[test]
fn toml_syntax_mistakes_read_in_spanish() {
    let dir = temp_dir();
    let list = local_list(dir.path());
    for (toml, words) in [
        ("[api]\nserver = 0042\n", "comillas"),
        ("[phone]\ndefault_country = CO\n", "comillas"),
        ("[api\n", "corchete"),
        ("[api]\nserver = \"1\" \"2\"\n", "TOML"),
    ] {
        let config = write_config(dir.path(), toml);
        let mut c = cmd();
        c.env("LANG", "es_CO.UTF-8")
            .arg("validate")
            .arg(&list)
            .arg("--config")
            .arg(&config);
        let out = run(c);
        out.expect_code(2);
        let last = out.stderr.trim_end().lines().last().unwrap_or_default();
        assert!(last.contains(words), "{toml:?}: {}", out.stderr);
        for english in ["expected", "unexpected", "must be", "unclosed", "invalid"] {
            assert!(!last.contains(english), "{toml:?}: {}", out.stderr);
        }
    }
}
