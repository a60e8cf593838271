//! After `--resume --retry-unknown --limit 2` (issue 26, case 7), the stop message
//! says the rows beyond the limit keep their `unknown` status (they are not recorded
//! `not_sent`), and prints a command that continues the retry: run as printed, it
//! sends each of them once.

use crate::common;

use common::*;

#[test]
fn a_limited_retry_prints_a_command_that_continues_it() {
    let dir = temp_dir();
    let phones = colombian_mobiles(5);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "list.csv", &contacts_csv(&rows, "1"));
    // Every request lost before reaching the fake: 5 unknown rows.
    let lost = FakeWolkvox::start(Behavior::ok().hook(|_| Some(Reply::DropConnection)));
    run(send_cmd(&input, &lost, "tok")).expect_code(1);
    let results = default_results_path(&input);
    assert!(
        statuses_by_row(&read_results(&results))
            .values()
            .all(|s| s == "unknown")
    );

    let fake = FakeWolkvox::start(Behavior::ok());
    let mut c = send_cmd(&input, &fake, "tok");
    c.args(["--resume", "--retry-unknown", "--limit", "2"]);
    let out = run(c);
    out.expect_code(3);
    assert_eq!(fake.delivered_telephones().len(), 2);
    let st = statuses_by_row(&read_results(&results));
    assert_eq!(st.values().filter(|s| *s == "unknown").count(), 3, "{st:?}");
    assert!(
        !out.stdout.contains("other 3 rows are recorded not_sent"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("3 keep their earlier status"),
        "{}",
        out.stdout
    );
    let line = out
        .stdout
        .lines()
        .find_map(|l| l.split("To continue, run: ").nth(1))
        .unwrap_or_else(|| panic!("{}", out.stdout))
        .to_owned();
    assert!(
        line.contains("--resume") && line.contains("--retry-unknown") && !line.contains("--limit"),
        "{line}"
    );
    // The printed command, run as printed (its base URL is this fake's), sends the 3.
    let words: Vec<&str> = line.split_whitespace().skip(1).collect();
    let mut c = cmd();
    c.args(&words).env("WOLKVOX_TOKEN", "tok");
    run(c).expect_code(0);
    let mut delivered = fake.delivered_telephones();
    delivered.sort();
    assert_eq!(delivered, phones, "each row delivered exactly once");
}

/// `max_rows` stops reading a spreadsheet as soon as it is passed (issue 26, case 7):
/// a workbook whose sheet is damaged after row 7 is refused for its size with
/// `--max-rows 5`, which needs only the first 7 rows (the header and 6 data rows), and
/// not for the damage further on, which a reading of the whole sheet first meets.
#[test]
fn max_rows_stops_reading_a_spreadsheet_as_soon_as_it_is_passed() {
    use std::io::{Read, Write};
    let dir = temp_dir();
    let clean = dir.path().join("clean.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["telephone", "message", "connector_id"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (i, t) in colombian_mobiles(6).iter().enumerate() {
        let r = i as u32 + 1;
        sheet.write_string(r, 0, t).unwrap();
        sheet.write_string(r, 1, "Hola").unwrap();
        sheet.write_string(r, 2, "1").unwrap();
    }
    book.save(&clean).unwrap();
    // The same workbook, its sheet followed by a row whose shared string does not exist.
    let damaged = dir.path().join("lista.xlsx");
    let mut zin = zip::ZipArchive::new(std::fs::File::open(&clean).unwrap()).unwrap();
    let mut zout = zip::ZipWriter::new(std::fs::File::create(&damaged).unwrap());
    for i in 0..zin.len() {
        let mut entry = zin.by_index(i).unwrap();
        let name = entry.name().unwrap().into_owned();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        if name == "xl/worksheets/sheet1.xml" {
            let text = String::from_utf8(bytes).unwrap();
            let bad = r#"<row r="8"><c r="A8" t="s"><v>999999</v></c></row></sheetData>"#;
            bytes = text.replacen("</sheetData>", bad, 1).into_bytes();
        }
        zout.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zout.write_all(&bytes).unwrap();
    }
    zout.finish().unwrap();
    // Read whole (no limit passed), the damage is what stops it.
    let mut c = cmd();
    c.arg("validate").arg(&damaged);
    let whole = run(c);
    whole.expect_code(2);
    assert!(!whole.stderr.contains("more than"), "{}", whole.stderr);
    let mut c = cmd();
    c.arg("validate").arg(&damaged).args(["--max-rows", "5"]);
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("more than 5 data rows"),
        "refused for its size before the damage: {}",
        out.stderr
    );
}
