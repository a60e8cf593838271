/*!
Unit tests of the journal: opening, recording, resuming, the torn-line rules and the
results file's rewrite.
*/

use std::fs::File;

use super::events::{LineDamage, parse_line};
use super::results::COLUMNS;
use super::*;
use crate::outcome::{Outcome, Status};
use crate::validate::Job;

fn job(row: u64, key: &str) -> Job {
    Job::for_test(row, key)
}

fn opts(dir: &Path, dry_run: bool, resume: bool) -> RecorderOptions {
    RecorderOptions {
        results: dir.join("r.csv"),
        dry_run,
        resume,
    }
}

/// Why opening `r.csv` in `dir` (not a dry run) is refused.
fn refused(dir: &tempfile::TempDir, resume: bool) -> ResultsError {
    match open(dir.path(), false, resume) {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    }
}

/// Opens `r.csv` in `dir`.
fn open(dir: &Path, dry_run: bool, resume: bool) -> Result<(Recorder, Prior), ResultsError> {
    Recorder::open(&opts(dir, dry_run, resume))
}

#[test]
fn an_empty_dry_run_file_is_a_killed_dry_run_and_a_refused_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.csv");
    std::fs::write(&results, "").unwrap();
    let (rec, _) = open(dir.path(), true, false).unwrap();
    rec.discard().unwrap();
    assert!(!results.exists() && !journal_path(&results).exists());
}

#[test]
fn neutralizes_formula_cells() {
    assert_eq!(neutralize("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
    for c in ["+1", "-1", "@SUM", "\tx", "\rx"] {
        assert!(neutralize(c).starts_with('\''), "{c:?}");
    }
    assert_eq!(neutralize("573001234567"), "573001234567");
    assert_eq!(neutralize(""), "");
}

#[test]
fn results_are_rewritten_sorted_with_one_line_per_row() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, prior) = open(dir.path(), false, false).unwrap();
    assert!(prior.is_empty());
    rec.intent(&job(2, "k2")).unwrap();
    rec.record(
        Outcome::local(2, "573001234562", Status::Sent, "ok"),
        Some("k2"),
    )
    .unwrap();
    rec.record(Outcome::local(1, "=1+1", Status::Invalid, "bad"), None)
        .unwrap();
    // Lines are on disk before the run ends.
    let early = std::fs::read_to_string(dir.path().join("r.csv")).unwrap();
    assert_eq!(early.lines().count(), 3, "{early}");
    let counts = rec.finish().unwrap();
    assert_eq!(counts[&Status::Sent], 1);
    let rows = read(&dir.path().join("r.csv")).unwrap();
    assert_eq!(rows.iter().map(|o| o.row).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(rows[0].telephone, "'=1+1");
}

#[test]
fn an_existing_run_is_refused_without_resume_and_resumed_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, _) = open(dir.path(), false, false).unwrap();
    rec.intent(&job(1, "k1")).unwrap();
    rec.record(Outcome::local(1, "t", Status::Sent, ""), Some("k1"))
        .unwrap();
    rec.intent(&job(2, "k2")).unwrap();
    // Simulates a crash: k2 has an intent and no outcome.
    drop(rec);
    assert!(matches!(
        refused(&dir, false),
        ResultsError::AlreadyExists { .. }
    ));
    let (_rec, prior) = open(dir.path(), false, true).unwrap();
    assert_eq!(prior.done["k1"].status, Status::Sent);
    assert_eq!(prior.interrupted.get("k2"), Some(&2));
}

#[test]
fn a_row_recorded_unknown_then_cut_off_in_flight_is_unsettled_once() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, _) = open(dir.path(), false, false).unwrap();
    rec.intent(&job(1, "k1")).unwrap();
    rec.record(Outcome::local(1, "t", Status::Unknown, ""), Some("k1"))
        .unwrap();
    // A --retry-unknown run killed with its request in flight.
    rec.intent(&job(1, "k1")).unwrap();
    drop(rec);
    let (_rec, prior) = open(dir.path(), false, true).unwrap();
    let unsettled = prior.unsettled();
    assert_eq!(unsettled.len(), 1, "{unsettled:?}");
    assert_eq!(
        unsettled[0].finished_at, None,
        "its last attempt is unfinished"
    );
    assert_eq!(
        unsettled[0].outcome.as_ref().map(|o| o.status),
        Some(Status::Unknown)
    );
}

#[test]
fn resume_needs_the_journal_but_not_a_non_empty_one() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, _) = open(dir.path(), false, false).unwrap();
    rec.record(Outcome::local(1, "t", Status::Invalid, ""), None)
        .unwrap();
    drop(rec);
    // Nothing was attempted: the journal is empty, and resuming is safe.
    let (rec, prior) = open(dir.path(), false, true).unwrap();
    assert!(prior.is_empty());
    drop(rec);
    std::fs::remove_file(journal_path(&dir.path().join("r.csv"))).unwrap();
    assert!(matches!(
        refused(&dir, true),
        ResultsError::NoJournal { .. }
    ));
}

#[test]
fn a_refused_new_run_leaves_nothing_but_a_resumed_one_keeps_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.csv");
    let (rec, _) = open(dir.path(), false, false).unwrap();
    rec.record(Outcome::local(1, "t", Status::Invalid, ""), None)
        .unwrap();
    rec.discard().unwrap();
    assert!(!results.exists() && !journal_path(&results).exists());
    // Nothing is left in the way of the same command without --resume.
    let (rec, _) = open(dir.path(), false, false).unwrap();
    rec.finish().unwrap();
    let (rec, _) = open(dir.path(), false, true).unwrap();
    rec.discard().unwrap();
    assert!(results.exists() && journal_path(&results).exists());
}

#[test]
fn a_refused_open_creates_no_journal_that_a_later_resume_would_trust() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.csv");
    std::fs::write(&results, "row,telephone\n").unwrap();
    let journal = journal_path(&results);
    assert!(matches!(
        refused(&dir, false),
        ResultsError::AlreadyExists { .. }
    ));
    assert!(!journal.exists());
    for _ in 0..2 {
        assert!(matches!(
            refused(&dir, true),
            ResultsError::NoJournal { .. }
        ));
        assert!(!journal.exists());
    }
}

#[test]
fn intents_from_many_threads_share_syncs_and_all_return() {
    let dir = tempfile::tempdir().unwrap();
    let (rec, _) = open(dir.path(), false, false).unwrap();
    std::thread::scope(|s| {
        for t in 0..8u64 {
            let rec = &rec;
            s.spawn(move || {
                for i in 0..25 {
                    rec.intent(&job(t * 100 + i, &format!("k{t}-{i}"))).unwrap();
                }
            });
        }
    });
    let (written, durable, _) = rec.commit.as_ref().unwrap().counts();
    assert_eq!(written, 200);
    assert_eq!(durable, 200, "every intent is covered by a finished sync");
    let journal = std::fs::read_to_string(journal_path(&dir.path().join("r.csv"))).unwrap();
    assert_eq!(journal.lines().count(), 200);
}

#[test]
fn a_second_run_on_the_same_results_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let (first, _) = open(dir.path(), false, false).unwrap();
    first
        .record(Outcome::local(1, "t", Status::Invalid, ""), None)
        .unwrap();
    // With or without --resume, the message says another run holds the file.
    for resume in [true, false] {
        assert!(matches!(refused(&dir, resume), ResultsError::Locked { .. }));
    }
}

/// Rows whose intents were written ahead: one whose request left (`leaving`), one
/// killed before it did, one answered. Read in the boot that wrote them, only the
/// one that left is in doubt; read after a reboot (the run's boot id differs), so
/// is the other, since its `leaving` line may have been lost with the page cache.
#[test]
fn ahead_intents_without_leaving_are_unattempted_in_the_same_boot_only() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for (boot, in_doubt) in [
        (boot_id(), vec!["left"]),
        (Some("another boot".into()), vec!["left", "never left"]),
    ] {
        let dir = tempfile::tempdir().unwrap();
        {
            let (rec, _) = open(dir.path(), false, false).unwrap();
            rec.begin_run(&RunInfo {
                boot_id: boot.clone(),
                ..RunInfo::default()
            })
            .unwrap();
            runtime.block_on(async {
                for (row, key) in [(1, "left"), (2, "never left"), (3, "answered")] {
                    rec.intent_async(&job(row, key), true).await.unwrap();
                }
            });
            rec.leaving(&job(1, "left")).unwrap();
            rec.leaving(&job(3, "answered")).unwrap();
            rec.record(Outcome::local(3, "t", Status::Sent, ""), Some("answered"))
                .unwrap();
            // Dropped without `finish`: as a kill leaves it.
        }
        let (_, prior) = open(dir.path(), false, true).unwrap();
        let mut keys: Vec<&str> = prior.interrupted.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(
            keys,
            in_doubt,
            "run's boot {boot:?}, this boot {:?}",
            boot_id()
        );
        let view = journal_view(&dir.path().join("r.csv")).unwrap();
        assert_eq!(view.in_flight.len(), in_doubt.len(), "{:?}", view.in_flight);
    }
}

#[test]
fn a_torn_last_journal_line_is_ignored_but_damage_elsewhere_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("j");
    std::fs::write(
        &path,
        "{\"event\":\"intent\",\"key\":\"a\",\"row\":1}\n{\"event\":\"do",
    )
    .unwrap();
    let mut f = File::open(&path).unwrap();
    let prior = Prior::load(&path, &mut f).unwrap();
    assert_eq!(prior.interrupted.len(), 1);
    std::fs::write(
        &path,
        "garbage\n{\"event\":\"intent\",\"key\":\"a\",\"row\":1}\n",
    )
    .unwrap();
    let mut f = File::open(&path).unwrap();
    assert!(matches!(
        Prior::load(&path, &mut f),
        Err(ResultsError::BadJournal { line: 1, .. })
    ));
}

#[test]
fn a_damaged_line_is_named_in_the_reader_s_language() {
    use crate::i18n::{Lang, with_lang};
    let line = br#"0123456789abcdef {"event":"leaving","key":"a"}"#;
    assert_eq!(parse_line(line).err(), Some(LineDamage::ChecksumMismatch));
    assert_eq!(parse_line(b"garbage").err(), Some(LineDamage::NoChecksum));
    let damage = LineDamage::ChecksumMismatch;
    assert_eq!(with_lang(Lang::En, || damage.text()), "checksum mismatch");
    assert_eq!(
        with_lang(Lang::Es, || damage.text()),
        "la suma de control no coincide"
    );
}

#[test]
fn a_torn_journal_is_repaired_on_resume_so_the_next_resume_can_read_it() {
    let dir = tempfile::tempdir().unwrap();
    let journal = journal_path(&dir.path().join("r.csv"));
    let whole = "{\"event\":\"intent\",\"key\":\"a\",\"row\":1}";
    for (torn, kept) in [
        (format!("{whole}\n{{\"event\":\"do"), format!("{whole}\n")),
        // Cut just before its newline: the line is whole and is kept.
        (whole.to_owned(), format!("{whole}\n")),
    ] {
        std::fs::write(&journal, &torn).unwrap();
        let (rec, prior) = open(dir.path(), false, true).unwrap();
        assert_eq!(prior.interrupted.get("a"), Some(&1));
        assert_eq!(std::fs::read_to_string(&journal).unwrap(), kept);
        rec.intent(&job(2, "b")).unwrap();
        drop(rec);
        let (_rec, prior) = open(dir.path(), false, true).unwrap();
        assert_eq!(prior.interrupted.len(), 2, "{torn:?}");
        std::fs::remove_file(dir.path().join("r.csv")).unwrap();
    }
}

#[test]
fn a_results_file_being_written_is_read_up_to_its_last_whole_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("r.csv");
    let head = COLUMNS.join(",");
    let line = "1,573001234567,sent,201,201,,ok,1,10,2026-03-02T12:00:00.000Z";
    std::fs::write(&path, format!("{head}\n{line}\n2,5730012")).unwrap();
    let rows = read(&path).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].status, Status::Sent);
    // A cut inside a quoted message that spans lines.
    std::fs::write(
        &path,
        format!("{head}\n{line}\n2,57,failed,400,400,x,\"a\n"),
    )
    .unwrap();
    assert_eq!(read(&path).unwrap().len(), 1);
    // Damage before the last line is not hidden.
    std::fs::write(&path, format!("{head}\n1,x\n{line}\n")).unwrap();
    assert!(read(&path).is_err());
    // A file with only part of its header is not a results file yet.
    std::fs::write(&path, "row,tele").unwrap();
    assert!(read(&path).is_err());
    std::fs::write(
        &path,
        format!("{head}\n3,57,suppressed,,,,on opt-out list,0,0,x\n"),
    )
    .unwrap();
    assert_eq!(read(&path).unwrap()[0].status, Status::Suppressed);
}

#[test]
fn dry_runs_overwrite_dry_runs_but_never_real_results() {
    let dir = tempfile::tempdir().unwrap();
    let o = opts(dir.path(), true, false);
    let (rec, _) = Recorder::open(&o).unwrap();
    rec.record(Outcome::local(1, "t", Status::DryRun, ""), None)
        .unwrap();
    rec.finish().unwrap();
    let (rec, _) = Recorder::open(&o).unwrap();
    rec.finish().unwrap();
    let (rec, _) = open(dir.path(), false, false).unwrap_or_else(|_| {
        std::fs::remove_file(dir.path().join("r.csv")).unwrap();
        open(dir.path(), false, false).unwrap()
    });
    rec.record(Outcome::local(1, "t", Status::Sent, ""), Some("k"))
        .unwrap();
    rec.finish().unwrap();
    assert!(matches!(
        Recorder::open(&o),
        Err(ResultsError::NotADryRun { .. })
    ));
}

fn resume_of(args: &[&str]) -> String {
    resume_command(
        args.iter().map(std::ffi::OsString::from),
        Path::new("out/my list.results.csv"),
    )
}

#[test]
fn the_resume_command_keeps_every_flag_but_the_retry_ones() {
    assert_eq!(
        resume_of(&[
            "send",
            "list.csv",
            "--base-url",
            "http://127.0.0.1:9000",
            "--rate",
            "5"
        ]),
        "wolkvox-dispatch send list.csv --base-url http://127.0.0.1:9000 --rate 5 --results 'out/my list.results.csv' --resume"
    );
    assert_eq!(
        resume_of(&[
            "send",
            "it's.csv",
            "--results=r.csv",
            "--resume",
            "--retry-unknown",
            "--retry-failed"
        ]),
        "wolkvox-dispatch send 'it'\\''s.csv' --results=r.csv --resume"
    );
    // A pilot's --limit does not carry over to the rest.
    assert_eq!(
        resume_of(&["send", "l.csv", "--limit", "50", "--rate", "5", "--limit=7"]),
        "wolkvox-dispatch send l.csv --rate 5 --results 'out/my list.results.csv' --resume"
    );
}

#[test]
fn the_journal_says_whose_words_a_results_line_holds_and_only_for_that_line() {
    use crate::outcome::{Source, Told};
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("r.csv");
    let (rec, _) = open(dir.path(), false, false).unwrap();
    // Row 1: the tool's words; row 2: the server's words, which read like the tool's.
    let tool = Outcome::local_said(
        1,
        "573001112233",
        Status::NotSent,
        crate::said!("msg-partial"),
    );
    let mut server = Outcome::local(2, "573004445566", Status::Failed, "Connector not found");
    server.error = "response is not JSON".into();
    server.told = Told {
        error: Some(Source::Server),
        msg: Some(Source::Server),
    };
    rec.record(tool.clone(), Some("k1")).unwrap();
    rec.record(server.clone(), Some("k2")).unwrap();
    rec.finish().unwrap();

    let index = told_index(&results);
    let lines = read(&results).unwrap();
    assert!(
        lines.iter().all(|o| o.told == Told::default()),
        "not a column"
    );
    for (mut o, expected) in lines.into_iter().zip([&tool, &server]) {
        index.attach(&mut o);
        assert_eq!(&o, expected);
    }
    let es = |o: &Outcome| {
        crate::i18n::with_lang(crate::i18n::Lang::Es, || (o.error_shown(), o.msg_shown()))
    };
    assert_eq!(es(&server).0, "response is not JSON");
    assert_ne!(es(&tool).1, tool.msg, "the tool's words are Spanish");

    // A line that is not the one the journal recorded for its row gets nothing.
    let mut other = server.clone();
    other.msg = "another answer".into();
    other.told = Told::default();
    index.attach(&mut other);
    assert_eq!(other.told, Told::default());
    // Without the journal, or with an earlier version's, nothing is known: the English
    // is read back as before.
    std::fs::remove_file(journal_path(&results)).unwrap();
    let mut alone = server.clone();
    alone.told = Told::default();
    told_index(&results).attach(&mut alone);
    assert_eq!(alone.told, Told::default());
    assert_eq!(es(&alone).0, "la respuesta no es JSON", "the old reading");
}
