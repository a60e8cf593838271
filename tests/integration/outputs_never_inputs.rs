//! No output overwrites an input or a state file of the run (issue 26, case 6):
//! `report --xlsx`/`--rows-to-fix` onto the list, the results or the journal, and
//! `send --summary-json` onto the journal, are refused with exit 2 before anything is
//! written, naming both files; every file is left byte for byte as it was.

use crate::common;

use std::path::{Path, PathBuf};

use common::*;

/// A finished run of 3 rows, all sent.
fn finished_run(dir: &Path) -> (PathBuf, PathBuf, FakeWolkvox) {
    let phones = colombian_mobiles(3);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir, "list.csv", &contacts_csv(&rows, "1"));
    let fake = FakeWolkvox::start(Behavior::ok());
    run(send_cmd(&input, &fake, "tok")).expect_code(0);
    let results = default_results_path(&input);
    (input, results, fake)
}

fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn report_outputs_onto_the_list_the_results_or_the_journal_are_refused() {
    let dir = temp_dir();
    let (input, results, _fake) = finished_run(dir.path());
    let journal = journal_path(&results);
    let linked = dir.path().join("linked.csv");
    std::fs::hard_link(&input, &linked).unwrap();
    let cases: Vec<(&str, PathBuf, &str)> = vec![
        ("--xlsx", input.clone(), "the list"),
        ("--rows-to-fix", input.clone(), "the list"),
        ("--xlsx", journal.clone(), "the results' journal"),
        ("--xlsx", results.clone(), "the results file"),
        (
            "--rows-to-fix",
            dir.path().join(".").join("list.csv"),
            "the list",
        ),
        ("--xlsx", linked.clone(), "the list"),
    ];
    for (flag, target, role) in cases {
        let before = snapshot(dir.path());
        let mut c = cmd();
        c.arg("report").arg(&results).arg(flag).arg(&target);
        let out = run(c);
        out.expect_code(2);
        assert!(
            out.stderr.contains(&target.display().to_string())
                && out.stderr.contains(role)
                && out.stderr.contains("choose another file name"),
            "{flag} {}: {}",
            target.display(),
            out.stderr
        );
        assert!(
            out.stdout.is_empty(),
            "nothing printed first: {}",
            out.stdout
        );
        assert_eq!(snapshot(dir.path()), before, "{flag} {}", target.display());
    }
    // Both outputs to one file.
    let same = dir.path().join("same.xlsx");
    let mut c = cmd();
    c.arg("report")
        .arg(&results)
        .arg("--xlsx")
        .arg(&same)
        .arg("--rows-to-fix")
        .arg(&same);
    run(c).expect_code(2);
    assert!(!same.exists());
    // In Spanish too.
    let mut c = cmd();
    c.env("LANG", "es_CO.UTF-8")
        .arg("report")
        .arg(&results)
        .arg("--xlsx")
        .arg(&input);
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("elija otro nombre de archivo") && out.stderr.contains("la lista"),
        "{}",
        out.stderr
    );
    // Elsewhere, it works.
    let mut c = cmd();
    c.arg("report")
        .arg(&results)
        .arg("--xlsx")
        .arg(dir.path().join("copia.xlsx"));
    run(c).expect_code(0);
}

#[test]
fn send_outputs_onto_an_input_or_the_journal_are_refused_and_write_nothing() {
    let dir = temp_dir();
    let (input, results, fake) = finished_run(dir.path());
    let journal = journal_path(&results);
    let before = snapshot(dir.path());
    // The journal a resume needs, as --summary-json.
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--resume").arg("--summary-json").arg(&journal);
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("--summary-json") && out.stderr.contains("the results' journal"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(dir.path()), before);
    // A resume still works: the journal is intact.
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--resume");
    run(c).expect_code(0);

    // The list as --summary-json, and a results workbook that would be the list.
    let dir = temp_dir();
    let phones = colombian_mobiles(2);
    let rows: Vec<(&str, &str)> = phones.iter().map(|p| (p.as_str(), "Hola")).collect();
    let input = write_csv(dir.path(), "lista.csv", &contacts_csv(&rows, "1"));
    let before = snapshot(dir.path());
    let mut c = send_cmd(&input, &fake, "tok");
    c.arg("--summary-json").arg(&input);
    run(c).expect_code(2);
    assert_eq!(snapshot(dir.path()), before);
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "telephone").unwrap();
    sheet.write_string(0, 1, "message").unwrap();
    sheet.write_string(0, 2, "connector_id").unwrap();
    sheet.write_string(1, 0, &phones[0]).unwrap();
    sheet.write_string(1, 1, "Hola").unwrap();
    sheet.write_string(1, 2, "1").unwrap();
    let xlsx = dir.path().join("clientes.xlsx");
    book.save(&xlsx).unwrap();
    let before = snapshot(dir.path());
    let mut c = send_cmd(&xlsx, &fake, "tok");
    c.arg("--results").arg(dir.path().join("clientes.csv"));
    let out = run(c);
    out.expect_code(2);
    assert!(
        out.stderr.contains("the results' workbook") && out.stderr.contains("the list"),
        "{}",
        out.stderr
    );
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn reconcile_never_rewrites_a_list_that_has_the_workbooks_name() {
    // `send clientes.xlsx --results clientes.csv --no-xlsx`: the results' workbook
    // would be `clientes.xlsx`, the list itself, which reconcile rewrote.
    let dir = temp_dir();
    let phones = colombian_mobiles(3);
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    for (c, h) in ["telephone", "message", "connector_id"].iter().enumerate() {
        sheet.write_string(0, c as u16, *h).unwrap();
    }
    for (i, t) in phones.iter().enumerate() {
        let r = i as u32 + 1;
        sheet.write_string(r, 0, t).unwrap();
        sheet.write_string(r, 1, "Hola").unwrap();
        sheet.write_string(r, 2, "1").unwrap();
    }
    let list = dir.path().join("clientes.xlsx");
    book.save(&list).unwrap();
    let lost = phones[1].clone();
    let fake = FakeWolkvox::start(Behavior::ok().hook(move |req| {
        (req.telephone.as_deref() == Some(lost.as_str())).then_some(Reply::DropConnection)
    }));
    let results = dir.path().join("clientes.csv");
    let mut c = send_cmd(&list, &fake, "tok");
    c.arg("--results").arg(&results).arg("--no-xlsx");
    run(c).expect_code(1);
    let before = std::fs::read(&list).unwrap();
    let config = write_config(dir.path(), "[api]\nconnector_id = \"1\"\n");
    let mut c = reconcile_cmd(&results, &config, &fake, "tok");
    c.args(["--settle-after", "0s"]);
    let out = run(c);
    out.expect_code(0);
    assert!(
        std::fs::read(&list).unwrap() == before,
        "the list was rewritten"
    );
    assert!(
        out.stderr.contains("clientes.xlsx") && out.stderr.contains("the list"),
        "{}",
        out.stderr
    );
}

#[test]
fn outputs_never_replace_a_ledger_a_config_another_journal_or_a_config_opt_out_list() {
    let dir = temp_dir();
    let (input, results, fake) = finished_run(dir.path());
    // Another campaign's journal, a config file, a send ledger (what the run used).
    let other = temp_dir();
    let other_journal = journal_path(&other.path().join("otra.results.csv"));
    std::fs::write(&other_journal, "wolkvox-dispatch journal\n").unwrap();
    let config = write_config(dir.path(), "[api]\nconnector_id = \"1\"\n");
    let ledger = test_ledger();
    assert!(
        ledger.exists(),
        "the run used a ledger at {}",
        ledger.display()
    );
    for (flag, target) in [
        ("--xlsx", &other_journal),
        ("--rows-to-fix", &other_journal),
        ("--xlsx", &config),
        ("--rows-to-fix", &ledger),
    ] {
        let before = std::fs::read(target).unwrap();
        let mut c = cmd();
        c.arg("report").arg(&results).arg(flag).arg(target);
        let out = run(c);
        out.expect_code(2);
        assert_eq!(
            std::fs::read(target).unwrap(),
            before,
            "{flag} {}",
            target.display()
        );
    }
    // send --summary-json onto the ledger, and onto an opt-out list named in the config.
    let optout = write_csv(dir.path(), "bajas.csv", "telephone\n573001239999\n");
    let with_optout = write_config(
        dir.path(),
        "[api]\nconnector_id = \"1\"\n[campaign]\nsuppress = [\"bajas.csv\"]\n",
    );
    for target in [&ledger, &optout] {
        let before = std::fs::read(target).unwrap();
        let mut c = send_cmd(&input, &fake, "tok");
        c.arg("--resume")
            .arg("--config")
            .arg(&with_optout)
            .arg("--summary-json")
            .arg(target);
        run(c).expect_code(2);
        assert_eq!(
            std::fs::read(target).unwrap(),
            before,
            "{}",
            target.display()
        );
    }
}

#[test]
fn a_run_that_fails_early_never_writes_its_summary_over_an_input() {
    let dir = temp_dir();
    let input = write_csv(
        dir.path(),
        "list.csv",
        &contacts_csv(&[("573001230000", "Hola")], "1"),
    );
    let template = dir.path().join("bad.j2");
    std::fs::write(&template, "Hola {{ nope }}").unwrap();
    let before = std::fs::read(&input).unwrap();
    let mut c = cmd();
    c.arg("send")
        .arg(&input)
        .arg("--dry-run")
        .arg("--template")
        .arg(&template)
        .arg("--summary-json")
        .arg(&input);
    let out = run(c);
    out.expect_code(2);
    assert_eq!(
        std::fs::read(&input).unwrap(),
        before,
        "the list survives: {}",
        out.stderr
    );
}
