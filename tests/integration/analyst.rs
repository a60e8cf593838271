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
