//! Issue 29: what a workbook shows is what is read. The sheet the workbook opens on
//! (never a hidden one unless named), cells as their number format shows them, error
//! cells refused, and every row number the one the spreadsheet shows. The workbooks are
//! written here with rust_xlsxwriter, with the formats people use in Colombia and Spain.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};

/// `validate INPUT --preview 20` with a connector in the config (plus `config_extra`).
fn validate_with(input: &Path, extra: &[&str], config_extra: &str) -> Run {
    let dir = input.parent().expect("a directory");
    let config = write_named_config(
        dir,
        "wolkvox-test.toml",
        &format!("[api]\nconnector_id = \"1\"\n{config_extra}"),
    );
    run({
        let mut c = cmd();
        c.arg("validate")
            .arg(input)
            .args(extra)
            .arg("--config")
            .arg(config);
        c.args(["--preview", "20"]);
        c
    })
}

fn validate(input: &Path, extra: &[&str]) -> Run {
    validate_with(input, extra, "")
}

fn has(out: &str, part: &str) {
    assert!(out.contains(part), "expected {part:?} in:\n{out}");
}

/// A hidden first sheet of internal notes, the visible `Contactos` the workbook opens
/// on, and another visible sheet with data.
fn hidden_first_sheet(dir: &Path) -> PathBuf {
    let path = dir.join("campana.xlsx");
    let mut book = Workbook::new();
    let notes = book.add_worksheet();
    notes.set_name("Notas").expect("name");
    notes.write_string(0, 0, "telephone").expect("cell");
    notes.write_string(0, 1, "message").expect("cell");
    notes.write_number(1, 0, 573009999999.0).expect("cell");
    notes
        .write_string(1, 1, "PRUEBA INTERNA - NO ENVIAR")
        .expect("cell");
    notes.set_hidden(true);
    let contacts = book.add_worksheet();
    contacts.set_name("Contactos").expect("name");
    contacts.write_string(0, 0, "telephone").expect("cell");
    contacts.write_string(0, 1, "message").expect("cell");
    contacts.write_number(1, 0, 573001234567.0).expect("cell");
    contacts
        .write_string(1, 1, "Hola Ana, su cita es mañana")
        .expect("cell");
    contacts.set_active(true);
    let other = book.add_worksheet();
    other.set_name("Resumen").expect("name");
    other.write_string(0, 0, "total").expect("cell");
    let secret = book.add_worksheet();
    secret.set_name("Oculta").expect("name");
    secret.write_string(0, 0, "x").expect("cell");
    secret.set_very_hidden(true);
    book.save(&path).expect("save");
    path
}

#[test]
fn the_sheet_the_workbook_opens_on_is_read_never_a_hidden_one() {
    let dir = temp_dir();
    let input = hidden_first_sheet(dir.path());
    let r = validate(&input, &[]);
    r.expect_code(0);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(!all.contains("PRUEBA INTERNA"), "{all}");
    assert!(!all.contains("573009999999"), "{all}");
    has(&r.stdout, "Hola Ana, su cita es mañana");
    // The sheet read is named with the file, and the other visible sheet with data once.
    has(&r.stdout, "campana.xlsx, sheet \"Contactos\"");
    assert_eq!(all.matches("\"Resumen\"").count(), 1, "{all}");
    assert!(!all.contains("Oculta"), "{all}");

    // Named, a hidden sheet is read.
    let r = validate(&input, &["--sheet", "Notas"]);
    r.expect_code(0);
    has(&r.stdout, "PRUEBA INTERNA");
    has(&r.stdout, "campana.xlsx, sheet \"Notas\"");
}

/// Rewrites the `workbookView` of `path` so that the workbook opens on tab `tab`:
/// Excel and rust_xlsxwriter never save a hidden active tab, but other programs do.
fn set_active_tab(path: &Path, tab: usize) {
    use std::io::{Read, Write};
    let bytes = std::fs::read(path).expect("read workbook");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for i in 0..zip.len() {
        let mut entry = zip.by_index(i).expect("entry");
        let name = entry.name().expect("entry name").to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).expect("entry data");
        if name == "xl/workbook.xml" {
            let xml = String::from_utf8(data).expect("utf-8");
            let xml = xml.replace(
                "<workbookView ",
                &format!("<workbookView activeTab=\"{tab}\" "),
            );
            data = xml.into_bytes();
        }
        out.start_file(name, zip::write::SimpleFileOptions::default())
            .expect("start entry");
        out.write_all(&data).expect("write entry");
    }
    let written = out.finish().expect("finish zip").into_inner();
    std::fs::write(path, written).expect("write workbook");
}

#[test]
fn a_hidden_active_tab_falls_back_to_the_first_visible_sheet() {
    let dir = temp_dir();
    let path = dir.path().join("hidden-active.xlsx");
    let mut book = Workbook::new();
    for (name, text, hidden) in [
        ("Oculta", "oculta", true),
        ("Hoja1", "visible primera", false),
        ("Oculta2", "oculta2", true),
    ] {
        let sheet = book.add_worksheet();
        sheet.set_name(name).expect("name");
        sheet.write_string(0, 0, "telephone").expect("cell");
        sheet.write_string(0, 1, "message").expect("cell");
        sheet.write_number(1, 0, 573001234567.0).expect("cell");
        sheet.write_string(1, 1, text).expect("cell");
        sheet.set_hidden(hidden);
    }
    book.worksheet_from_index(1)
        .expect("sheet")
        .set_active(true);
    book.save(&path).expect("save");
    set_active_tab(&path, 2);
    let r = validate(&path, &[]);
    r.expect_code(0);
    has(&r.stdout, "visible primera");
    assert!(!r.stdout.contains("oculta"), "{}", r.stdout);
}

/// The displayed-values workbook: (format, value, what Excel shows in English).
fn formatted_workbook(dir: &Path) -> PathBuf {
    let path = dir.join("formatos.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Contactos").expect("name");
    for (c, name) in [
        "telephone",
        "saldo",
        "fecha",
        "hora",
        "descuento",
        "message",
        "notas",
    ]
    .iter()
    .enumerate()
    {
        sheet.write_string(0, c as u16, *name).expect("header");
    }
    let money = Format::new().set_num_format("\"$\" #,##0");
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let time = Format::new().set_num_format("h:mm AM/PM");
    let percent = Format::new().set_num_format("0%");
    let two = Format::new().set_num_format("#,##0.00");
    // Row 2: formats; the message is made from the other columns by a template.
    sheet.write_number(1, 0, 573001234567.0).expect("cell");
    sheet
        .write_number_with_format(1, 1, 1250000.0, &money)
        .expect("cell");
    sheet
        .write_datetime_with_format(
            1,
            2,
            ExcelDateTime::from_ymd(2025, 3, 14).expect("date"),
            &date,
        )
        .expect("cell");
    sheet
        .write_datetime_with_format(1, 3, ExcelDateTime::from_hms(9, 0, 0).expect("time"), &time)
        .expect("cell");
    sheet
        .write_number_with_format(1, 4, 0.15, &percent)
        .expect("cell");
    sheet.write_string(1, 5, "x").expect("cell");
    // Row 3: formulas whose results are binary floating-point artefacts.
    sheet.write_number(2, 0, 573017772040.0).expect("cell");
    sheet
        .write_formula(
            2,
            1,
            Formula::new("=0.1+0.2").set_result("0.30000000000000004"),
        )
        .expect("cell");
    sheet
        .write_formula(
            2,
            2,
            Formula::new("=1.1*3").set_result("3.3000000000000003"),
        )
        .expect("cell");
    sheet
        .write_number_with_format(2, 3, 1234.5, &two)
        .expect("cell");
    sheet.write_string(2, 4, "-").expect("cell");
    sheet.write_string(2, 5, "x").expect("cell");
    // Row 4: an error cell in a column the template uses.
    sheet.write_number(3, 0, 573157024418.0).expect("cell");
    sheet
        .write_formula(3, 1, Formula::new("=1/0").set_result("#DIV/0!"))
        .expect("cell");
    sheet.write_string(3, 5, "x").expect("cell");
    // Row 5: an error cell in a column nothing uses: the row stays valid.
    sheet.write_number(4, 0, 573182906654.0).expect("cell");
    sheet.write_number(4, 1, 5.0).expect("cell");
    for (c, text) in [(2, "a"), (3, "b"), (4, "c")] {
        sheet.write_string(4, c, text).expect("cell");
    }
    sheet
        .write_formula(4, 6, Formula::new("=NA()").set_result("#N/A"))
        .expect("cell");
    sheet.write_string(4, 5, "x").expect("cell");
    book.save(&path).expect("save");
    path
}

#[test]
fn cells_are_read_as_their_format_shows_them_and_error_cells_are_invalid() {
    let dir = temp_dir();
    let input = formatted_workbook(dir.path());
    let template = write_csv(
        dir.path(),
        "plantilla.txt",
        "saldo {{ saldo }} fecha {{ fecha }} hora {{ hora }} dto {{ descuento }}",
    );
    let r = validate(
        &input,
        &["--template", template.to_str().expect("utf-8 path")],
    );
    r.expect_code(1);
    let out = &r.stdout;
    // Colombian conventions by default: `.` groups thousands, `,` is the decimal mark.
    has(
        out,
        "saldo $ 1.250.000 fecha 14/03/2025 hora 9:00 a. m. dto 15%",
    );
    has(out, "saldo 0,3 fecha 3,3 hora 1.234,50 dto -");
    assert!(!out.contains("0000000"), "no float artefacts: {out}");
    // The error cell is named, with its sheet row and column.
    has(
        out,
        "row 4, column \"saldo\": the cell shows the error #DIV/0!",
    );
    has(out, "saldo 5 fecha a hora b dto c");
    has(out, "1 of 4 rows invalid");

    // With [input] locale = "en-US", as Excel shows it in English.
    let r = validate_with(
        &input,
        &["--template", template.to_str().expect("utf-8 path")],
        "[input]\nlocale = \"en-US\"\n",
    );
    r.expect_code(1);
    has(
        &r.stdout,
        "saldo $ 1,250,000 fecha 14/03/2025 hora 9:00 AM dto 15%",
    );
    has(&r.stdout, "saldo 0.3 fecha 3.3 hora 1,234.50 dto -");
}

/// The workbook written beside `results`: its rows sheet, as text.
fn workbook_rows(results: &Path) -> Vec<Vec<String>> {
    workbook_sheet(results, 0)
}

/// The workbook written beside `results`: its sheet `index`, as text.
fn workbook_sheet(results: &Path, index: usize) -> Vec<Vec<String>> {
    use calamine::Reader;
    let mut book = calamine::open_workbook_auto(results.with_extension("xlsx")).expect("workbook");
    let name = book.sheet_names().get(index).cloned().expect("a sheet");
    let range = book.worksheet_range(&name).expect("rows sheet");
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

#[test]
fn every_row_number_people_read_is_the_spreadsheet_row() {
    let dir = temp_dir();
    let path = dir.path().join("filas.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "telephone").expect("cell");
    sheet.write_string(0, 1, "message").expect("cell");
    // Sheet rows 2 and 3, a blank row 4, then 5 (a copy of row 2) and 6 (a bad number).
    for (r, tel, text) in [
        (1, "573001234567", "Hola Ana"),
        (2, "573017772040", "Hola Luis"),
        (4, "573001234567", "Hola Ana"),
        (5, "12", "Hola Eva"),
    ] {
        sheet.write_string(r, 0, tel).expect("cell");
        sheet.write_string(r, 1, text).expect("cell");
    }
    book.save(&path).expect("save");
    let r = validate(&path, &[]);
    r.expect_code(1);
    has(&r.stdout, "row 6, column \"telephone\"");
    has(&r.stdout, "row 5: duplicate of row 2");
    has(&r.stdout, "row 2 -> 573001234567");
    has(&r.stdout, "row 3 -> 573017772040");

    // The results file keeps its data rows; the workbook shows the sheet's.
    let config = write_connector_config(dir.path(), "1", "");
    run({
        let mut c = cmd();
        c.args(["send", "--dry-run"])
            .arg(&path)
            .arg("--config")
            .arg(&config);
        c
    })
    .expect_code(4);
    let results = default_dry_run_path(&path);
    let statuses = statuses_by_row(&read_results(&results));
    assert_eq!(statuses.get(&3).map(String::as_str), Some("duplicate"));
    assert_eq!(statuses.get(&4).map(String::as_str), Some("invalid"));
    let rows = workbook_rows(&results);
    let header = &rows[0];
    let at = |name: &str| header.iter().position(|h| h == name).expect(name);
    let (sheet_row, reason) = (at("Sheet row"), at("Reason"));
    let duplicate = rows
        .iter()
        .find(|r| r[sheet_row] == "5")
        .expect("sheet row 5");
    assert_eq!(duplicate[reason], "same telephone and message as row 2");
    // The summary names the sheet read with the list.
    let summary = workbook_sheet(&results, 1);
    let list = summary
        .iter()
        .find(|r| r[0] == "List")
        .expect("the List line");
    assert!(
        list[1].ends_with("filas.xlsx, sheet \"Sheet1\""),
        "{list:?}"
    );
}

#[test]
fn a_text_files_row_numbers_are_the_rows_excel_shows_and_empty_rows_are_skipped() {
    let dir = temp_dir();
    // Excel hides the `sep=` line and shows a quoted line break inside one row; it
    // exports an empty row as delimiters only (row 3 here), which is no row to send.
    let input = write_csv(
        dir.path(),
        "lista.csv",
        "sep=,\r\ntelephone,message\r\n573001234567,\"línea 1\nlínea 2\"\r\n,\r\n573001234567,\"línea 1\nlínea 2\"\r\nxx,hola\r\n",
    );
    let r = validate(&input, &[]);
    r.expect_code(1);
    has(&r.stdout, "row 4: duplicate of row 2");
    has(&r.stdout, "row 5, column \"telephone\"");
    has(&r.stdout, "1 of 3 rows invalid, 1 duplicate");
    assert!(!r.stdout.contains("row 3"), "{}", r.stdout);
}

#[test]
fn line_breaks_in_cells_are_line_breaks_in_the_workbook() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "saltos.csv",
        "telephone,message\r\n573001234567,\"línea 1\r\nlínea 2\rlínea 3\"\r\n",
    );
    let config = write_connector_config(dir.path(), "1", "");
    run({
        let mut c = cmd();
        c.args(["send", "--dry-run"])
            .arg(&input)
            .arg("--config")
            .arg(&config);
        c
    })
    .expect_code(0);
    let rows = workbook_rows(&default_dry_run_path(&input));
    assert_eq!(rows[1][1], "línea 1\nlínea 2\nlínea 3");
}

#[test]
fn pasted_telephones_are_read_and_two_in_a_cell_are_named() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "pegados.csv",
        "telephone,message\n\
         (+57) 300 123 4567,uno\n\
         \u{202d}+57 301 777\u{2013}2040\u{202c},dos\n\
         tel:+34 612 345 678,tres\n\
         3051891679 / 3121942360,cuatro\n\
         +52 1 55 4123 8790,cinco\n",
    );
    let r = validate_with(&input, &[], "[phone]\ndefault_country = \"CO\"\n");
    r.expect_code(1);
    has(&r.stdout, "row 2 -> 573001234567");
    has(&r.stdout, "row 3 -> 573017772040");
    has(&r.stdout, "row 4 -> 34612345678");
    has(
        &r.stdout,
        "row 5, column \"telephone\": \"3051891679 / 3121942360\" holds two numbers in one cell",
    );
    has(
        &r.stdout,
        "row 6, column \"telephone\": \"+52 1 55 4123 8790\" is an old Mexican mobile form: drop the 1 after +52",
    );
}

#[test]
fn a_title_above_the_header_is_skipped_and_said_so() {
    let dir = temp_dir();
    let path = dir.path().join("titulo.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet
        .merge_range(0, 0, 0, 2, "Campaña diciembre", &Format::new().set_bold())
        .expect("title");
    sheet.write_string(2, 0, "Nombre").expect("cell");
    sheet.write_string(2, 1, "Celular").expect("cell");
    sheet.write_string(2, 2, "Mensaje").expect("cell");
    sheet.write_string(3, 0, "Ana").expect("cell");
    sheet.write_number(3, 1, 573001234567.0).expect("cell");
    sheet.write_string(3, 2, "Hola Ana").expect("cell");
    book.save(&path).expect("save");
    let r = validate(&path, &[]);
    r.expect_code(0);
    has(&r.stdout, "row 4 -> 573001234567");
    has(
        &r.stderr,
        "the header is row 3: the rows above it are ignored",
    );

    // Delimited text, the same; and the header's row given.
    let input = write_csv(
        dir.path(),
        "titulo.csv",
        "Campaña diciembre,,\n,,\nNombre,Celular,Mensaje\nAna,573001234567,Hola Ana\n",
    );
    let r = validate(&input, &[]);
    r.expect_code(0);
    has(&r.stdout, "row 4 -> 573001234567");
    has(
        &r.stderr,
        "the header is row 3: the rows above it are ignored",
    );
    let r = validate(&input, &["--header-row", "3"]);
    r.expect_code(0);
    has(&r.stdout, "row 4 -> 573001234567");
    let r = validate_with(&input, &[], "[columns]\nheader_row = 3\n");
    r.expect_code(0);
    has(&r.stdout, "row 4 -> 573001234567");
    // A header row without the telephone column is refused as before, naming it.
    let r = validate(&input, &["--header-row", "1"]);
    r.expect_code(2);
    has(&r.stderr, "Campaña diciembre");
}

#[test]
fn an_error_exported_to_a_text_file_is_an_error_cell_too() {
    let dir = temp_dir();
    // As LibreOffice and Excel export a sheet with an error cell to CSV.
    let input = write_csv(
        dir.path(),
        "errores.csv",
        "Celular,saldo,notas\n573001234567,#DIV/0!,x\n573017772040,5,#N/A\n",
    );
    let template = write_csv(dir.path(), "t.txt", "su saldo es {{ saldo }}");
    let r = validate(&input, &["--template", template.to_str().expect("utf-8")]);
    r.expect_code(1);
    has(
        &r.stdout,
        "row 2, column \"saldo\": the cell shows the error #DIV/0!",
    );
    has(&r.stdout, "row 3 -> 573017772040");
    assert!(!r.stdout.contains("su saldo es #DIV/0!"), "{}", r.stdout);
}

#[test]
fn the_default_date_format_is_the_locale_s_short_date() {
    let dir = temp_dir();
    let path = dir.path().join("fecha.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "telephone").expect("cell");
    sheet.write_string(0, 1, "message").expect("cell");
    sheet.write_number(1, 0, 573001234567.0).expect("cell");
    // Built-in format 14: what Excel gives a typed date; it shows the system's short date.
    let builtin = Format::new().set_num_format_index(14);
    sheet
        .write_datetime_with_format(
            1,
            1,
            ExcelDateTime::from_ymd(2025, 3, 14).expect("date"),
            &builtin,
        )
        .expect("cell");
    book.save(&path).expect("save");
    has(&validate(&path, &[]).stdout, "\n    14/03/2025\n");
    let r = validate_with(&path, &[], "[input]\nlocale = \"en-US\"\n");
    has(&r.stdout, "\n    3/14/2025\n");
}

#[test]
fn report_names_rows_as_the_spreadsheet_does() {
    let dir = temp_dir();
    let path = dir.path().join("reporte.xlsx");
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "telephone").expect("cell");
    sheet.write_string(0, 1, "message").expect("cell");
    // Sheet rows 2, 3, a blank row 4, then 5: the opted-out number (data row 3).
    for (r, tel) in [
        (1, "573001234567"),
        (2, "573017772040"),
        (4, "573157024418"),
    ] {
        sheet.write_string(r, 0, tel).expect("cell");
        sheet.write_string(r, 1, "Hola").expect("cell");
    }
    book.save(&path).expect("save");
    let optout = write_csv(dir.path(), "bajas.csv", "telephone\n573157024418\n");
    let config = write_connector_config(dir.path(), "1", "");
    run({
        let mut c = cmd();
        c.args(["send", "--dry-run"])
            .arg(&path)
            .arg("--config")
            .arg(&config)
            .arg("--suppress")
            .arg(&optout);
        c
    })
    .expect_code(0);
    let results = default_dry_run_path(&path);
    assert_eq!(
        statuses_by_row(&read_results(&results))
            .get(&3)
            .map(String::as_str),
        Some("suppressed")
    );
    let r = run({
        let mut c = cmd();
        c.arg("report").arg(&results);
        c
    });
    r.expect_code(0);
    has(&r.stdout, "[rows 5]");
}

/// A workbook LibreOffice 7.4 saved (see tests/data/README.md), copied to a temp dir.
fn libreoffice(name: &str) -> (TempDir, PathBuf) {
    let dir = temp_dir();
    let path = dir.path().join(name);
    std::fs::copy(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/data")
            .join(name),
        &path,
    )
    .expect("copy the workbook");
    (dir, path)
}

#[test]
fn workbooks_saved_by_libreoffice_are_read_as_shown() {
    let template_text = "saldo {{ saldo }} | fecha {{ fecha }} | hora {{ hora }} | dto {{ descuento }} | calc {{ calculo }} | miles {{ miles }}";
    // .xlsx: the formats are read.
    let (dir, path) = libreoffice("campana-libreoffice.xlsx");
    let template = write_csv(dir.path(), "t.txt", template_text);
    let r = validate(&path, &["--template", template.to_str().expect("utf-8")]);
    r.expect_code(1);
    has(&r.stdout, "campana-libreoffice.xlsx, sheet \"Contactos\"");
    has(
        &r.stdout,
        "row 3 -> 573001234567:\n    saldo $ 1.250.000 | fecha 14/03/2025 | hora 9:00 a. m. | dto 15% | calc 0,3 | miles 1.234,50\n",
    );
    has(
        &r.stdout,
        "row 4, column \"saldo\": the cell shows the error #DIV/0!",
    );
    assert!(!r.stdout.contains("PRUEBA"), "{}", r.stdout);
    // .ods: the values, as the General format shows them; times as times.
    let (dir, path) = libreoffice("campana-libreoffice.ods");
    let template = write_csv(dir.path(), "t.txt", template_text);
    let r = validate(&path, &["--template", template.to_str().expect("utf-8")]);
    r.expect_code(1);
    has(&r.stdout, "campana-libreoffice.ods, sheet \"Contactos\"");
    has(
        &r.stdout,
        "row 3 -> 573001234567:\n    saldo 1250000 | fecha 2025-03-14 | hora 09:00 | dto 0,15 | calc 0,3 | miles 1234,5\n",
    );
    has(
        &r.stdout,
        "row 4, column \"saldo\": the cell shows the error #DIV/0!",
    );
    assert!(!r.stdout.contains("PRUEBA"), "{}", r.stdout);
}
