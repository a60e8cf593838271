//! A journal written by an earlier version is read and resumed as that version resumed
//! it (issue 31: the journal's code was split and the answers' words typed; what is on
//! disk must not care).
//!
//! `tests/data/journal-0.1.0/` holds a list and the results file and journal that
//! wolkvox-dispatch 0.1.0 (d4ae9f8) wrote sending it, killed (`kill -9`) while row 5's
//! request was in flight: row 1 `sent`, row 2 `failed` (400), row 3 `invalid`, row 4
//! `unknown` (a 500 with an HTML page), row 5 with an intent and no outcome. Only the
//! list's absolute path in the `run` line is rewritten (with its checksum) to where the
//! test puts the list, since a resume compares it.

use crate::common;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use common::*;

const TOKEN: &str = "tok-compat-1";
const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/journal-0.1.0");
/// Where the list was when the fixture was written.
const WRITTEN_AT: &str = "/tmp/31a_gen/l.csv";

/// The fixture copied into `dir`: the list's path.
fn install(dir: &Path) -> PathBuf {
    use sha2::Digest;
    for name in ["l.csv", "l.results.csv"] {
        fs::copy(Path::new(FIXTURE).join(name), dir.join(name)).unwrap();
    }
    let list = dir.join("l.csv");
    let journal = fs::read_to_string(Path::new(FIXTURE).join("l.results.csv.journal")).unwrap();
    let mut out = String::new();
    for line in journal.lines() {
        match line.split_once(' ') {
            Some((_, json)) if json.contains(WRITTEN_AT) => {
                let json = json.replace(WRITTEN_AT, &list.display().to_string());
                let digest = sha2::Sha256::digest(json.as_bytes());
                let sum: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
                out.push_str(&format!("{sum} {json}\n"));
            }
            _ => out.push_str(&format!("{line}\n")),
        }
    }
    fs::write(dir.join("l.results.csv.journal"), out).unwrap();
    list
}

fn resume(list: &Path, fake: &FakeWolkvox, args: &[&str]) -> Run {
    let mut c = send_cmd(list, fake, TOKEN);
    c.current_dir(list.parent().unwrap())
        .args(["--no-ledger", "--resume"])
        .args(args);
    run(c)
}

/// The fixture's results lines, by row.
fn written_lines() -> HashMap<String, String> {
    lines_by_row(&Path::new(FIXTURE).join("l.results.csv"))
}

fn lines_by_row(path: &Path) -> HashMap<String, String> {
    fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| (l.split(',').next().unwrap().to_owned(), l.to_owned()))
        .collect()
}

#[test]
fn an_earlier_version_s_journal_resumes_as_it_did_then() {
    let dir = temp_dir();
    let list = install(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    // Nothing is sent again without asking: the row cut off in flight becomes unknown.
    resume(&list, &fake, &[]).expect_code(1);
    assert_eq!(fake.send_requests().len(), 0);
    let results = default_results_path(&list);
    let rows = read_results(&results);
    let statuses = statuses_by_row(&rows);
    let want: HashMap<u64, String> = [
        (1, "sent"),
        (2, "failed"),
        (3, "invalid"),
        (4, "unknown"),
        (5, "unknown"),
    ]
    .into_iter()
    .map(|(r, s)| (r, s.to_owned()))
    .collect();
    assert_eq!(statuses, want);
    assert!(
        row(&rows, 5)["msg"].contains("an earlier run was stopped while sending this message"),
        "{:?}",
        row(&rows, 5)
    );
    // What the earlier run recorded is carried over to the letter.
    let before = written_lines();
    let after = lines_by_row(&results);
    for r in ["1", "2", "4"] {
        assert_eq!(after[r], before[r], "row {r}");
    }
}

#[test]
fn an_earlier_version_s_unknown_rows_are_retried_only_when_asked() {
    let dir = temp_dir();
    let list = install(dir.path());
    let fake = FakeWolkvox::start(Behavior::ok());
    resume(&list, &fake, &["--retry-unknown"]).expect_code(1);
    let mut sent = fake.delivered_telephones();
    sent.sort();
    // Row 4 (unknown) and row 5 (cut off in flight); never row 1 (sent) or 2 (failed).
    assert_eq!(sent, ["573001234563", "573001234564"]);
    let rows = read_results(&default_results_path(&list));
    let statuses = statuses_by_row(&rows);
    assert_eq!(statuses[&1], "sent");
    assert_eq!(statuses[&2], "failed");
    assert_eq!(statuses[&4], "sent");
    assert_eq!(statuses[&5], "sent");
    let before = written_lines();
    let after = lines_by_row(&default_results_path(&list));
    for r in ["1", "2"] {
        assert_eq!(after[r], before[r], "row {r}");
    }
}
