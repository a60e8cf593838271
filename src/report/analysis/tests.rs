/*!
Unit tests of the report: what `build` computes from a results file and its journal, and
what `render` shows of it.
*/

use super::*;

/// When the rows of most tests finished.
const T: &str = "2026-03-02T15:00:00Z";

/// A contact list `<stem>.csv` in `dir`, and the path of its results file named `results`.
fn list_and_results(dir: &Path, stem: &str, results: &str) -> (PathBuf, PathBuf) {
    let input = dir.join(format!("{stem}.csv"));
    std::fs::write(&input, "telephone,message\n").unwrap();
    (input, dir.join(results))
}

fn o(row: u64, status: Status, code: &str, msg: &str, at: &str) -> Outcome {
    Outcome {
        row,
        telephone: format!("5730012345{row:02}"),
        status,
        http_status: None,
        code: code.into(),
        error: String::new(),
        msg: msg.into(),
        attempts: u32::from(!matches!(
            status,
            Status::NotSent | Status::Suppressed | Status::Invalid
        )),
        elapsed_ms: 5,
        finished_at: at.into(),
        told: Default::default(),
    }
}

#[test]
fn failures_are_grouped_by_code_and_msg_most_common_first() {
    let lines = vec![
        o(1, Status::Sent, "201", "ok", T),
        o(2, Status::Failed, "400", "SOME PARAMETERS ARE REQUIRED", T),
        o(3, Status::Failed, "403", "CLOSED", T),
        o(4, Status::Failed, "400", "SOME PARAMETERS ARE REQUIRED", T),
        o(5, Status::Unknown, "", "timed out", T),
        o(6, Status::Failed, "400", "OTHER", T),
        o(7, Status::Sent, "201", "ok", "2026-03-02T15:00:04Z"),
        o(
            8,
            Status::NotSent,
            "",
            "not sent: outside the contact hours",
            T,
        ),
        o(
            9,
            Status::Suppressed,
            "",
            "on the opt-out list o.txt: never sent",
            T,
        ),
        o(10, Status::Failed, "403", "CLOSED", T),
        o(11, Status::Failed, "400", "SOME PARAMETERS ARE REQUIRED", T),
    ];
    let r = build(
        Path::new("/nowhere/list.results.csv"),
        lines,
        &journal::JournalView::default(),
    );
    let keys: Vec<(&str, &str, u64)> = r
        .failures
        .iter()
        .map(|g| (g.code.as_str(), g.msg.as_str(), g.count))
        .collect();
    assert_eq!(
        keys,
        [
            ("400", "SOME PARAMETERS ARE REQUIRED", 3),
            ("403", "CLOSED", 2),
            ("", "timed out", 1),
            ("400", "OTHER", 1),
        ]
    );
    assert_eq!(r.failures[0].rows, [2, 4, 11]);
    assert_eq!(r.counts["sent"], 2);
    assert_eq!(r.counts["dry_run"], 0);
    assert_eq!(r.not_sent[0].count, 1);
    assert_eq!(r.suppressed[0].rows, [9]);
    assert_eq!(r.first_finished_at.as_deref(), Some(T));
    assert_eq!(r.last_finished_at.as_deref(), Some("2026-03-02T15:00:04Z"));
    assert_eq!(r.messages_per_second, Some(0.5));
    let next = r.next.as_ref().unwrap();
    assert_eq!(
        next.command,
        "wolkvox-dispatch send INPUT --results /nowhere/list.results.csv --resume --retry-failed --retry-unknown"
    );
    assert!(!next.input_found);
    let text = render(&r);
    assert!(
        text.contains("3  code 400  SOME PARAMETERS ARE REQUIRED  [failed; rows 2, 4, 11]"),
        "{text}"
    );
    assert!(text.contains("Replace INPUT"), "{text}");
}

#[test]
fn the_latest_line_of_a_row_wins_and_the_input_is_found_beside_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let (input, results) = list_and_results(dir.path(), "list", "list.results.csv");
    let r = build(
        &results,
        vec![
            o(1, Status::NotSent, "", "not sent: interrupted", T),
            o(2, Status::Sent, "201", "ok", T),
            o(1, Status::Sent, "201", "ok", T),
            o(3, Status::Failed, "400", "x", T),
        ],
        &journal::JournalView::default(),
    );
    assert_eq!(r.rows, 3);
    assert_eq!((r.counts["sent"], r.counts["not_sent"]), (2, 0));
    assert_eq!(r.messages_per_second, None);
    let next = r.next.unwrap();
    assert!(next.input_found);
    assert_eq!(
        next.command,
        format!(
            "wolkvox-dispatch send {} --results {} --resume --retry-failed",
            input.display(),
            results.display()
        )
    );
    assert_eq!(next.sends, "sends again the 1 failed rows");
}

#[test]
fn requests_cut_off_by_a_kill_are_unknown_and_reconcile_is_suggested() {
    let journal = journal::JournalView {
        in_flight: vec![(2, "573001234502".into()), (3, "573001234503".into())],
        ..journal::JournalView::default()
    };
    let lines = vec![
        o(1, Status::Sent, "201", "ok", T),
        // A stale `not_sent` written at a second Ctrl-C.
        o(
            3,
            Status::NotSent,
            "",
            "not sent: the run was interrupted",
            T,
        ),
    ];
    let r = build(Path::new("l.results.csv"), lines.clone(), &journal);
    assert_eq!((r.counts["unknown"], r.counts["not_sent"]), (2, 0));
    assert_eq!(r.first_finished_at.as_deref(), Some(T));
    assert_eq!(
        r.reconcile.as_deref(),
        Some("wolkvox-dispatch reconcile l.results.csv")
    );
    assert!(render(&r).contains("settle them with Wolkvox's report"));
    // While the run is going, they are simply in flight.
    let busy = journal::JournalView {
        in_progress: true,
        ..journal
    };
    let r = build(Path::new("l.results.csv"), lines, &busy);
    assert_eq!(r.counts["unknown"], 0);
    assert_eq!(r.reconcile, None);
}

#[test]
fn nothing_left_means_no_command() {
    let r = build(
        Path::new("r.results.csv"),
        vec![
            o(1, Status::Sent, "201", "ok", T),
            o(2, Status::Suppressed, "", "on the opt-out list", T),
        ],
        &journal::JournalView::default(),
    );
    assert_eq!(r.next, None);
    assert!(render(&r).contains("nothing left to send"));
}

#[test]
fn the_journal_gives_the_total_the_command_and_what_a_retry_cannot_fix() {
    let dir = tempfile::tempdir().unwrap();
    let (input, results) = list_and_results(dir.path(), "citas", "citas.hsm.results.csv");
    let run = journal::RunInfo {
        kind: "hsm".into(),
        hsm_template: Some("cita".into()),
        hsm_vars: vec!["nombre".into()],
        input: input.clone(),
        rows: 5,
        args: [
            "send",
            input.to_str().unwrap(),
            "--hsm",
            "cita",
            "--hsm-vars",
            "nombre",
        ]
        .map(String::from)
        .to_vec(),
        ..journal::RunInfo::default()
    };
    let journal = journal::JournalView {
        last_run: Some(run),
        in_progress: false,
        in_flight: Vec::new(),
        went_out: Vec::new(),
    };
    let lines = vec![
        o(1, Status::Sent, "201", "ok", T),
        o(
            2,
            Status::Failed,
            "400",
            "The 24-hour customer service window is closed",
            T,
        ),
        o(3, Status::Failed, "400", "SOME PARAMETERS ARE REQUIRED", T),
    ];
    let r = build(&results, lines.clone(), &journal);
    assert_eq!((r.total, r.never_attempted), (Some(5), 2));
    assert_eq!(r.cannot_retry.len(), 2);
    let next = r.next.clone().unwrap();
    assert!(next.input_found);
    assert_eq!(
        next.command,
        format!(
            "wolkvox-dispatch send {} --hsm cita --hsm-vars nombre --results {} --resume",
            input.display(),
            results.display()
        ),
        "no --retry-failed for refusals a retry cannot fix"
    );
    let text = render(&r);
    assert!(text.contains("2 never attempted"), "{text}");
    assert!(
        text.contains("send these people the HSM template first"),
        "{text}"
    );
    // While a run holds the journal: in progress, no next step yet.
    let busy = journal::JournalView {
        in_progress: true,
        ..journal
    };
    let r = build(&results, lines, &busy);
    assert!(r.next.is_none());
    let text = render(&r);
    assert!(
        text.contains("in progress") && text.contains("3 of 5"),
        "{text}"
    );
    assert!(!text.contains("nothing left"), "{text}");
}
