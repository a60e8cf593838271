//! Real spreadsheets in: the samples (a Windows-1252 `;` export from Spanish Excel,
//! an .xlsx with numeric phone cells, a message template) through `validate`,
//! `send --dry-run` and `send` against the fake Wolkvox endpoint.
//!
//! The two generated samples are written by `generate_samples` (ignored; run it with
//! `cargo test --test integration spreadsheets::generate_samples -- --ignored` after changing the
//! data below), and `the_excel_csv_sample_is_what_the_generator_writes` keeps the
//! committed CSV in step with it.

use crate::common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::*;

/// `samples/contacts-excel-es.csv`: name, phone as typed, message; Windows-1252, `;`, CRLF.
const EXCEL_ES: &[(&str, &str, &str)] = &[
    (
        "Señora Núñez",
        "300 123 4567",
        "Buenos días, señora Núñez. Le recordamos su cita del martes a las 10:00; por favor llegue 15 minutos antes.",
    ),
    (
        "José Rodríguez",
        "+57 301 777 2040",
        "Hola José: su pedido “Mesa de roble” ya está en camino. Llegará mañana.",
    ),
    (
        "María Ángeles Gómez",
        "310.482.7391",
        "Señora María Ángeles: tenemos información nueva sobre su crédito. ¿Podemos llamarla hoy?",
    ),
    (
        "Andrés Muñoz",
        "3157024418",
        "Andrés: su factura de octubre está lista. Puede pagarla en línea o en cualquier sucursal.",
    ),
    (
        "Lucía Ospina",
        "0057 318 290 6654",
        "Lucía: su póliza vence el 30 de noviembre. ¿Desea renovarla? Responda SÍ o NO.",
    ),
    (
        "Oficina Chapinero",
        "601 234 5678",
        "Recordatorio: el pago de la oficina vence el viernes.",
    ),
    (
        "Camilo Restrepo",
        "5,73E+11",
        "Camilo: su certificado de afiliación ya está disponible.",
    ),
    (
        "Señora Núñez",
        "(300) 123-4567",
        "Buenos días, señora Núñez. Le recordamos su cita del martes a las 10:00; por favor llegue 15 minutos antes.",
    ),
    (
        "Tomás Londoño",
        "320 845 11",
        "Tomás: le confirmamos el cambio de dirección de entrega.",
    ),
    (
        "Verónica Cárdenas",
        "+593 99 123 4567",
        "Verónica: recibimos su solicitud. Un asesor la llamará en el transcurso del día.",
    ),
];

/// A cell of the .xlsx sample.
#[derive(Clone, Copy)]
enum Cell {
    Text(&'static str),
    Number(f64),
}

use Cell::{Number, Text};

/// `samples/contacts.xlsx`, sheet "Contactos": phones and connector ids as numeric cells.
const XLSX_CONTACTS: &[[Cell; 4]] = &[
    [
        Text("Nombre"),
        Text("Teléfono"),
        Text("Mensaje"),
        Text("connector_id"),
    ],
    [
        Text("Señora Núñez"),
        Number(573001234567.0),
        Text("Buenos días, señora Núñez. Su cita es el martes a las 10:00."),
        Number(1.0),
    ],
    [
        Text("José Rodríguez"),
        Number(573017772040.0),
        Text("Hola José: su pedido 4821 ya está en camino 🚚"),
        Number(1.0),
    ],
    [
        Text("Begoña Iturbe"),
        Number(34612345678.0),
        Text("Hola Begoña,\nsu paquete “Mesa de roble” salió hoy de Bogotá."),
        Number(2.0),
    ],
    [
        Text("Ángel Hernández"),
        Number(525541238790.0),
        Text("Ángel: su saldo pendiente es de $1.250 MXN. Responda PAGAR para recibir el enlace."),
        Number(1.0),
    ],
    [
        Text("Raúl Peña"),
        Text("+593 98 765 4321"),
        Text("Raúl: su cita médica quedó reprogramada para el jueves a las 8:30 a. m."),
        Number(1.0),
    ],
    [
        Text("Inés Castaño"),
        Number(3001234567.0),
        Text("Inés: confirmamos la reserva para dos personas el sábado a las 21:00."),
        Number(1.0),
    ],
    [
        Text("Oficina Chapinero"),
        Number(576012345678.0),
        Text("Recordatorio: el pago de la oficina vence el viernes."),
        Number(1.0),
    ],
];

/// Second sheet of the .xlsx sample, for `--sheet`.
const XLSX_PENDIENTES: &[[Cell; 2]] = &[
    [Text("Celular"), Text("Mensaje")],
    [
        Number(573136042281.0),
        Text("Sofía: el técnico visitará su domicilio mañana entre las 9:00 y las 12:00."),
    ],
];

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("samples")
        .join(name)
}

/// The Windows-1252 bytes of the Excel sample, as Excel's "CSV (delimitado por comas)" writes them.
fn excel_es_bytes() -> Vec<u8> {
    let field = |s: &str| {
        if s.contains([';', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_owned()
        }
    };
    let mut text = String::from("Nombre;Celular;Mensaje\r\n");
    for (name, phone, message) in EXCEL_ES {
        text.push_str(&format!(
            "{};{};{}\r\n",
            field(name),
            field(phone),
            field(message)
        ));
    }
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1252.encode(&text);
    assert!(
        !unmappable,
        "the sample must be representable in Windows-1252"
    );
    bytes.into_owned()
}

fn write_xlsx(path: &Path) {
    use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook};
    fn put<const N: usize>(sheet: &mut rust_xlsxwriter::Worksheet, rows: &[[Cell; N]]) {
        for (r, cells) in rows.iter().enumerate() {
            for (c, cell) in cells.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match *cell {
                    Text(t) => sheet.write_string(r, c, t).map(|_| ()),
                    Number(n) => sheet.write_number(r, c, n).map(|_| ()),
                }
                .expect("write cell");
            }
        }
    }
    let mut book = Workbook::new();
    // A fixed creation time keeps the file the same from one generation to the next.
    let created = ExcelDateTime::from_ymd(2025, 1, 1).expect("date");
    book.set_properties(&DocProperties::new().set_creation_datetime(&created));
    let sheet = book.add_worksheet();
    sheet.set_name("Contactos").expect("name");
    put(sheet, XLSX_CONTACTS);
    let sheet = book.add_worksheet();
    sheet.set_name("Pendientes").expect("name");
    put(sheet, XLSX_PENDIENTES);
    book.save(path).expect("save xlsx");
}

/// Writes the generated samples into `samples/`.
#[test]
#[ignore = "writes samples/; run by hand after changing the sample data"]
fn generate_samples() {
    std::fs::write(sample("contacts-excel-es.csv"), excel_es_bytes()).expect("write csv");
    write_xlsx(&sample("contacts.xlsx"));
}

#[test]
fn the_excel_csv_sample_is_what_the_generator_writes() {
    let committed = std::fs::read(sample("contacts-excel-es.csv")).expect("sample");
    assert_eq!(committed, excel_es_bytes());
    // It really is Windows-1252 (ñ is the single byte F1), not UTF-8.
    assert!(std::str::from_utf8(&committed).is_err());
    assert!(committed.windows(2).any(|w| w == b"\xF1o"));
}

/// Copies samples into a fresh directory, so results files land there.
fn copy_samples(names: &[&str]) -> (TempDir, Vec<PathBuf>) {
    let dir = temp_dir();
    let paths = names
        .iter()
        .map(|n| {
            let to = dir.path().join(n);
            std::fs::copy(sample(n), &to).expect("copy sample");
            to
        })
        .collect();
    (dir, paths)
}

fn by_row(rows: &[HashMap<String, String>]) -> HashMap<u64, (String, String, String)> {
    rows.iter()
        .map(|r| {
            (
                r["row"].parse().expect("row"),
                (
                    r["status"].clone(),
                    r["telephone"].clone(),
                    r["error"].clone() + &r["msg"],
                ),
            )
        })
        .collect()
}

/// (row, status, telephone) of every results line, sorted by row.
fn verdicts(results: &Path) -> Vec<(u64, String, String)> {
    let mut v: Vec<(u64, String, String)> = by_row(&read_results(results))
        .into_iter()
        .map(|(row, (status, tel, _))| (row, status, tel))
        .collect();
    v.sort();
    v
}

/// Telephone -> message of every request the fake accepted (each telephone once).
fn delivered_messages(fake: &FakeWolkvox) -> HashMap<String, String> {
    let delivered = fake.delivered();
    let messages: HashMap<String, String> = delivered
        .iter()
        .map(|r| {
            (
                r.telephone.clone().expect("telephone"),
                r.message().expect("message").to_owned(),
            )
        })
        .collect();
    assert_eq!(
        messages.len(),
        delivered.len(),
        "a telephone was sent twice"
    );
    messages
}

/// Asserts that `out` contains `part`, showing `out` if not.
fn has(out: &str, part: &str) {
    assert!(out.contains(part), "{part:?} not in:\n{out}");
}

fn v(row: u64, status: &str, tel: &str) -> (u64, String, String) {
    (row, status.into(), tel.into())
}

// ---------------------------------------------------------------------------
// The Windows-1252 `;` export.

#[test]
fn validate_reads_the_spanish_excel_export() {
    let r = run({
        let mut c = cmd();
        c.args(["validate", "--config"])
            .arg(sample("excel-es.toml"))
            .arg(sample("contacts-excel-es.csv"));
        c
    });
    r.expect_code(1);
    let out = &r.stdout;
    has(
        out,
        "columns: telephone <- \"Celular\", message <- \"Mensaje\", connector_id <- api.connector_id \"1\"",
    );
    has(
        out,
        "row 7, column \"Celular\": \"601 234 5678\" is a fixed-line number in CO",
    );
    has(
        out,
        "row 8, column \"Celular\": \"5,73E+11\" is in scientific notation",
    );
    has(out, "row 9: duplicate of row 2");
    has(out, "row 10, column \"Celular\": \"320 845 11\"");
    has(
        out,
        "3 of 10 rows invalid, 1 duplicate, 0 suppressed, 6 valid",
    );
}

#[test]
fn the_excel_export_dry_runs_and_sends_as_utf8_with_normalized_numbers() {
    let (_dir, paths) = copy_samples(&["contacts-excel-es.csv"]);
    let input = &paths[0];
    let config = sample("excel-es.toml");
    let expected = vec![
        v(1, "dry_run", "573001234567"),
        v(2, "dry_run", "573017772040"),
        v(3, "dry_run", "573104827391"),
        v(4, "dry_run", "573157024418"),
        v(5, "dry_run", "573182906654"),
        v(6, "invalid", "601 234 5678"),
        v(7, "invalid", "5,73E+11"),
        v(8, "duplicate", "573001234567"),
        v(9, "invalid", "320 845 11"),
        v(10, "dry_run", "593991234567"),
    ];
    let r = run({
        let mut c = cmd();
        c.args(["send", "--dry-run", "--config"])
            .arg(&config)
            .arg(input);
        c
    });
    r.expect_code(4);
    assert_eq!(verdicts(&default_dry_run_path(input)), expected);

    let fake = FakeWolkvox::start(Behavior::ok());
    let r = run({
        let mut c = send_cmd(input, &fake, "tok-a");
        c.arg("--config").arg(&config);
        c
    });
    r.expect_code(4);
    let sent: Vec<_> = expected
        .iter()
        .map(|(row, status, tel)| {
            let status = if status == "dry_run" { "sent" } else { status };
            (*row, status.to_owned(), tel.clone())
        })
        .collect();
    assert_eq!(verdicts(&default_results_path(input)), sent);

    // What the endpoint received: proper UTF-8 text, digits with country code.
    let received = delivered_messages(&fake);
    let want: HashMap<String, String> = [
        ("573001234567", 0),
        ("573017772040", 1),
        ("573104827391", 2),
        ("573157024418", 3),
        ("573182906654", 4),
        ("593991234567", 9),
    ]
    .into_iter()
    .map(|(tel, i)| (tel.to_owned(), EXCEL_ES[i].2.to_owned()))
    .collect();
    assert_eq!(received, want);
    assert!(received["573001234567"].contains("señora Núñez"));
    assert!(received["573017772040"].contains("“Mesa de roble”"));
    assert!(
        fake.delivered()
            .iter()
            .all(|r| r.connector_id().as_deref() == Some("1"))
    );
}

#[test]
fn allow_duplicates_sends_every_copy() {
    let (_dir, paths) = copy_samples(&["contacts-excel-es.csv"]);
    let r = run({
        let mut c = cmd();
        c.args(["send", "--dry-run", "--allow-duplicates", "--config"])
            .arg(sample("excel-es.toml"))
            .arg(&paths[0]);
        c
    });
    r.expect_code(4);
    let verdicts = verdicts(&default_dry_run_path(&paths[0]));
    assert_eq!(verdicts[7], v(8, "dry_run", "573001234567"));
}

#[test]
fn a_wrong_delimiter_or_encoding_setting_is_reported() {
    let dir = temp_dir();
    let config = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[phone]\ndefault_country = \"CO\"\n[input]\nencoding = \"utf-8\"\n",
    );
    let r = run({
        let mut c = cmd();
        c.args(["validate", "--config"])
            .arg(&config)
            .arg(sample("contacts-excel-es.csv"));
        c
    });
    r.expect_code(2);
    assert!(r.stderr.contains("input.encoding"), "{}", r.stderr);

    let r = run({
        let mut c = cmd();
        c.args(["validate", "--delimiter", "colon"])
            .arg(sample("contacts-excel-es.csv"));
        c
    });
    r.expect_code(2);
    assert!(r.stderr.contains("--delimiter"), "{}", r.stderr);
}

// ---------------------------------------------------------------------------
// The .xlsx with numeric phone cells.

#[test]
fn validate_reads_numeric_phone_cells_as_digits() {
    let r = run({
        let mut c = cmd();
        c.arg("validate").arg(sample("contacts.xlsx"));
        c
    });
    r.expect_code(1);
    let out = &r.stdout;
    has(
        out,
        "columns: telephone <- \"Teléfono\", message <- \"Mensaje\", connector_id <- \"connector_id\"",
    );
    // The national number stored as a number: its digits, and why it needs a country.
    has(out, "row 7, column \"Teléfono\": \"3001234567\"");
    has(out, "phone.default_country");
    has(
        out,
        "row 8, column \"Teléfono\": \"576012345678\" is a fixed-line number",
    );
    assert!(!out.contains("E+"), "no scientific notation: {out}");
    has(
        out,
        "2 of 7 rows invalid, 0 duplicate, 0 suppressed, 5 valid",
    );
}

#[test]
fn the_xlsx_sample_dry_runs_and_sends() {
    let (_dir, paths) = copy_samples(&["contacts.xlsx"]);
    let input = &paths[0];
    let r = run({
        let mut c = cmd();
        c.args(["send", "--dry-run"]).arg(input);
        c
    });
    r.expect_code(4);
    assert_eq!(
        verdicts(&default_dry_run_path(input)),
        vec![
            v(1, "dry_run", "573001234567"),
            v(2, "dry_run", "573017772040"),
            v(3, "dry_run", "34612345678"),
            v(4, "dry_run", "525541238790"),
            v(5, "dry_run", "593987654321"),
            v(6, "invalid", "3001234567"),
            v(7, "invalid", "576012345678"),
        ]
    );

    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(input, &fake, "tok-a")).expect_code(4);
    let mut received: Vec<(String, String, String)> = fake
        .delivered()
        .iter()
        .map(|r| {
            (
                r.telephone.clone().expect("telephone"),
                r.message().expect("message").to_owned(),
                r.connector_id().expect("connector"),
            )
        })
        .collect();
    received.sort();
    let text = |row: usize| match XLSX_CONTACTS[row][2] {
        Text(t) => t.to_owned(),
        Number(_) => unreachable!(),
    };
    let mut want = vec![
        ("573001234567".to_owned(), text(1), "1".to_owned()),
        ("573017772040".to_owned(), text(2), "1".to_owned()),
        ("34612345678".to_owned(), text(3), "2".to_owned()),
        ("525541238790".to_owned(), text(4), "1".to_owned()),
        ("593987654321".to_owned(), text(5), "1".to_owned()),
    ];
    want.sort();
    assert_eq!(received, want);
}

#[test]
fn another_sheet_is_read_with_sheet() {
    let (_dir, paths) = copy_samples(&["contacts.xlsx"]);
    let dir = paths[0].parent().expect("dir");
    let config = write_connector_config(dir, "3", "");
    let fake = FakeWolkvox::start(Behavior::ok());
    let r = run({
        let mut c = send_cmd(&paths[0], &fake, "tok-a");
        c.args(["--sheet", "Pendientes", "--config"]).arg(&config);
        c
    });
    r.expect_code(0);
    let delivered = fake.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].telephone.as_deref(), Some("573136042281"));
    assert_eq!(delivered[0].connector_id().as_deref(), Some("3"));

    let r = run({
        let mut c = cmd();
        c.args(["validate", "--sheet", "Hoja1"])
            .arg(sample("contacts.xlsx"));
        c
    });
    r.expect_code(2);
    assert!(
        r.stderr.contains("\"Contactos\", \"Pendientes\""),
        "{}",
        r.stderr
    );
}

// ---------------------------------------------------------------------------
// The message template.

fn template_message(name: &str, fecha: &str, hora: &str, sede: &str) -> String {
    format!(
        "Hola {name}, le recordamos su cita del {fecha} a las {hora} en la sede {sede}.\nSi no puede asistir, responda a este mensaje. ¡Gracias!"
    )
}

#[test]
fn the_template_sample_validates_dry_runs_and_sends() {
    let r = run({
        let mut c = cmd();
        c.args(["validate", "--config"])
            .arg(sample("excel-es.toml"))
            .arg("--template")
            .arg(sample("cita.j2"))
            .arg(sample("citas.csv"));
        c
    });
    r.expect_code(1);
    assert!(
        r.stdout.contains("message <- template (--template ")
            && r.stdout
                .contains("using \"Fecha\", \"Hora\", \"Nombre\", \"Sede\""),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("row 4, column \"Fecha\": is empty, and the message template uses it"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("1 of 4 rows invalid"), "{}", r.stdout);

    let (dir, paths) = copy_samples(&["citas.csv", "cita.j2"]);
    let (input, template) = (&paths[0], &paths[1]);
    let config = sample("excel-es.toml");
    let r = run({
        let mut c = cmd();
        c.args(["send", "--dry-run", "--config"])
            .arg(&config)
            .arg("--template")
            .arg(template)
            .arg(input);
        c
    });
    r.expect_code(4);
    assert_eq!(
        verdicts(&default_dry_run_path(input)),
        vec![
            v(1, "dry_run", "573001234567"),
            v(2, "dry_run", "573017772040"),
            v(3, "invalid", "573104827391"),
            v(4, "dry_run", "573157024418"),
        ]
    );

    let fake = FakeWolkvox::start(Behavior::ok());
    let r = run({
        let mut c = send_cmd(input, &fake, "tok-a");
        c.arg("--config")
            .arg(&config)
            .arg("--template")
            .arg(template);
        c
    });
    r.expect_code(4);
    let received = delivered_messages(&fake);
    let want: HashMap<String, String> = [
        (
            "573001234567",
            template_message("Señora Núñez", "martes 14 de octubre", "10:00", "Chapinero"),
        ),
        (
            "573017772040",
            template_message(
                "José Rodríguez",
                "miércoles 15 de octubre",
                "8:30",
                "Usaquén",
            ),
        ),
        (
            "573157024418",
            template_message("Andrés Muñoz", "jueves 16 de octubre", "15:45", "Suba"),
        ),
    ]
    .into_iter()
    .map(|(t, m)| (t.to_owned(), m))
    .collect();
    assert_eq!(received, want);
    drop(dir);
}

#[test]
fn a_template_naming_a_missing_column_sends_nothing() {
    let dir = temp_dir();
    let template = write_bytes(
        dir.path(),
        "t.j2",
        "Hola {{ nombre }} {{ apellido }}".as_bytes(),
    );
    let fake = FakeWolkvox::start(Behavior::ok());
    let input = dir.path().join("citas.csv");
    std::fs::copy(sample("citas.csv"), &input).expect("copy");
    let r = run({
        let mut c = send_cmd(&input, &fake, "tok-a");
        c.arg("--config")
            .arg(sample("excel-es.toml"))
            .arg("--template")
            .arg(&template);
        c
    });
    r.expect_code(2);
    assert!(r.stderr.contains("`apellido`"), "{}", r.stderr);
    assert!(
        r.stderr
            .contains("nombre (\"Nombre\"), celular (\"Celular\"), fecha (\"Fecha\")"),
        "{}",
        r.stderr
    );
    assert_eq!(fake.count(), 0);
    assert!(!default_results_path(&input).exists());
}

#[test]
fn a_template_in_the_config_renders_a_spreadsheet() {
    let (dir, paths) = copy_samples(&["contacts.xlsx"]);
    let config = write_config(
        dir.path(),
        "[message]\ntemplate = \"{{ nombre }}: {{ mensaje }}\"\n[phone]\ndefault_country = \"CO\"\n",
    );
    let r = run({
        let mut c = cmd();
        c.args(["send", "--dry-run", "--config"])
            .arg(&config)
            .arg(&paths[0]);
        c
    });
    r.expect_code(4);
    let verdicts = verdicts(&default_dry_run_path(&paths[0]));
    // With the default country, the national number of row 6 is valid.
    assert_eq!(verdicts[5], v(6, "dry_run", "573001234567"));
    assert_eq!(verdicts[6].1, "invalid");
}
