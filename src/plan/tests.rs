/*!
Unit tests of the plan: the resume decision table line by line, and the send
ledger's rules (`Planner`).
*/

use super::*;

fn job(row: u64, key: &str) -> Job {
    Job::for_test(row, key)
}

/// A journal that recorded these outcomes: (key, row, telephone, status, msg).
fn prior_of(done: &[(&str, u64, &str, Status, &str)]) -> Prior {
    let mut prior = Prior::default();
    for &(key, row, telephone, status, msg) in done {
        prior
            .done
            .insert(key.into(), Outcome::local(row, telephone, status, msg));
    }
    prior
}

fn prior_with(status: Status) -> Prior {
    prior_of(&[("k", 9, "573001234569", status, "earlier")])
}

const PLAIN: Flags = Flags {
    dry_run: false,
    resume: false,
    retry_failed: false,
    retry_unknown: false,
    resend_changed: false,
    allow_repeat: false,
};
const RETRY_FAILED: Flags = Flags {
    retry_failed: true,
    ..PLAIN
};
const RETRY_UNKNOWN: Flags = Flags {
    retry_unknown: true,
    ..PLAIN
};

/// The table in the module doc, line by line: (earlier, flags) -> sent again?
#[test]
fn the_resume_decision_table() {
    use Status::*;
    let cases = [
        (Some(Sent), [false, false, false]),
        (Some(Suppressed), [false, false, false]),
        (Some(Failed), [false, true, false]),
        (Some(Unknown), [false, false, true]),
        (Some(NotSent), [true, true, true]),
        (None, [true, true, true]),
    ];
    for (earlier, sends) in cases {
        for (flags, send) in [PLAIN, RETRY_FAILED, RETRY_UNKNOWN].into_iter().zip(sends) {
            let prior = earlier.map(prior_with).unwrap_or_default();
            let d = decide(Verdict::Valid(job(1, "k")), &prior, flags);
            assert_eq!(d.job.is_some(), send, "{earlier:?} {flags:?}");
            if send {
                assert!(d.record.is_none() && d.carried.is_none());
                // A retried failed/unknown row keeps its earlier outcome in reserve.
                let reserve = matches!(earlier, Some(Failed | Unknown));
                assert_eq!(d.earlier.is_some(), reserve, "{earlier:?} {flags:?}");
            } else {
                let (o, key) = d.record.expect("carried rows are recorded");
                assert_eq!(Some(o.status), earlier, "{flags:?}");
                assert_eq!(o.row, 1, "carried under this run's row number");
                assert_eq!(key, None, "carried outcomes are not journaled again");
                assert_eq!(d.carried, earlier);
            }
        }
    }
}

#[test]
fn a_journal_of_an_earlier_version_is_found_by_the_legacy_key() {
    // Journals written before "the same message" had one meaning recorded a text
    // with a trailing space under the key of its raw bytes.
    let legacy = || Job {
        legacy_key: Some("old".into()),
        ..job(1, "new")
    };
    let prior = prior_of(&[("old", 9, "573001234569", Status::Sent, "earlier")]);
    let d = decide(Verdict::Valid(legacy()), &prior, PLAIN);
    assert!(d.job.is_none(), "sent under the old key: not again");
    assert_eq!(d.carried, Some(Status::Sent));
    let mut prior = Prior::default();
    prior.interrupted.insert("old".into(), 4);
    let d = decide(Verdict::Valid(legacy()), &prior, PLAIN);
    assert_eq!(d.carried, Some(Status::Unknown));
}

#[test]
fn a_request_in_flight_at_a_kill_is_unknown_unless_retried() {
    let mut prior = Prior::default();
    prior.interrupted.insert("k".into(), 4);
    let d = decide(Verdict::Valid(job(1, "k")), &prior, PLAIN);
    let (o, key) = d.record.unwrap();
    assert_eq!((o.status, key.as_deref()), (Status::Unknown, Some("k")));
    assert!(o.msg.contains("then row 4") && o.msg.contains("--retry-unknown"));
    let d = decide(Verdict::Valid(job(1, "k")), &prior, RETRY_UNKNOWN);
    assert!(d.job.is_some() && d.record.is_none());
    assert_eq!(d.earlier.map(|o| o.status), Some(Status::Unknown));
}

#[test]
fn opted_out_numbers_are_never_sent_but_keep_what_was_delivered() {
    let verdict = || Verdict::Suppressed {
        row: 2,
        shown: 3,
        telephone: "573001234562".into(),
        key: "k".into(),
        list: "optout.txt".into(),
    };
    let d = decide(verdict(), &Prior::default(), RETRY_FAILED);
    let (o, key) = d.record.unwrap();
    assert_eq!((o.status, key.as_deref()), (Status::Suppressed, Some("k")));
    assert!(d.job.is_none());
    let d = decide(verdict(), &prior_with(Status::Sent), PLAIN);
    assert_eq!(d.record.unwrap().0.status, Status::Sent);
    assert!(d.warning.unwrap().contains("opt-out list"));
    let mut prior = Prior::default();
    prior.interrupted.insert("k".into(), 7);
    let d = decide(verdict(), &prior, RETRY_UNKNOWN);
    assert_eq!(d.record.unwrap().0.status, Status::Unknown);
    assert!(d.job.is_none());
}

#[test]
fn invalid_duplicate_and_dry_run_rows() {
    let d = decide(
        Verdict::Invalid {
            row: 3,
            shown: 4,
            telephone: "x".into(),
            problems: vec![Problem {
                column: "telephone".into(),
                reason: "is empty".into(),
            }],
        },
        &Prior::default(),
        PLAIN,
    );
    assert_eq!(d.record.unwrap().0.msg, "telephone: is empty");
    let d = decide(
        Verdict::Duplicate {
            row: 4,
            shown: 5,
            telephone: "573001234564".into(),
            of_row: 1,
            of_shown: 2,
        },
        &Prior::default(),
        PLAIN,
    );
    assert_eq!(d.record.unwrap().0.status, Status::Duplicate);
    let d = decide(
        Verdict::Valid(job(5, "k")),
        &prior_with(Status::Sent),
        Flags {
            dry_run: true,
            ..PLAIN
        },
    );
    assert_eq!(d.record.unwrap().0.status, Status::DryRun);
    assert!(d.job.is_some());
}

// ---- The ledger's rules (`Planner`) ----

fn job_to(row: u64, key: &str, telephone: &str) -> Job {
    Job {
        telephone: telephone.into(),
        ..job(row, key)
    }
}

fn entry(key: &str, telephone: &str, at: i64) -> Entry {
    Entry {
        key: key.into(),
        telephone: telephone.into(),
        kind: "free".into(),
        excerpt: "hola".into(),
        connector: "1".into(),
        at,
        mark: ledger::Mark::Sent,
        campaign: "/other.results.csv".into(),
        list: "/other.csv".into(),
        row: 7,
    }
}

static UTC: jiff::tz::TimeZone = jiff::tz::TimeZone::UTC;

fn view(seen: &Seen, cap: Option<Cap>) -> Option<LedgerView<'_>> {
    Some(LedgerView {
        seen,
        cap,
        now: 1_000_000,
        tz: &UTC,
    })
}

/// Decides every verdict with one planner.
fn plan_all(
    verdicts: Vec<Verdict>,
    prior: &Prior,
    seen: &Seen,
    cap: Option<Cap>,
    flags: Flags,
) -> (Vec<Decision>, Option<(u64, u64)>) {
    let mut planner = Planner::new(&verdicts, prior, view(seen, cap), flags);
    let decisions = verdicts.into_iter().map(|v| planner.decide(v)).collect();
    let refused = planner.already_sent().map(|(h, v, _)| (h, v));
    (decisions, refused)
}

fn status_of(d: &Decision) -> Option<Status> {
    d.record.as_ref().map(|(o, _)| o.status)
}

/// Rule 1's case: row 1's message was sent to its number, and its text is now another.
fn a_changed_text() -> (Prior, Seen, impl Fn() -> Vec<Verdict>) {
    let prior = prior_of(&[(
        "old",
        1,
        "573001234561",
        Status::Sent,
        "Message has been sent",
    )]);
    let changed = || vec![Verdict::Valid(job_to(1, "new", "573001234561"))];
    (prior, Seen::default(), changed)
}

#[test]
fn rule_1_a_changed_text_keeps_what_was_sent_unless_resend_changed() {
    let (prior, seen, changed) = a_changed_text();
    let (d, _) = plan_all(changed(), &prior, &seen, None, PLAIN);
    assert!(d[0].job.is_none(), "not sent");
    assert_eq!(status_of(&d[0]), Some(Status::Sent), "keeps sent");
    assert_eq!(d[0].carried, Some(Status::Sent));
    let msg = &d[0].record.as_ref().unwrap().0.msg;
    assert!(
        msg.contains("held") && msg.contains("--resend-changed"),
        "{msg}"
    );
    let flags = Flags {
        resend_changed: true,
        ..PLAIN
    };
    let (d, _) = plan_all(changed(), &prior, &seen, None, flags);
    assert!(d[0].job.is_some(), "sent on purpose");
    assert_eq!(d[0].earlier.as_ref().map(|o| o.status), Some(Status::Sent));
    // A second text for the same number, the first unchanged: a new message.
    let both = vec![
        Verdict::Valid(job_to(1, "old", "573001234561")),
        Verdict::Valid(job_to(2, "second", "573001234561")),
    ];
    let (d, _) = plan_all(both, &prior, &seen, None, PLAIN);
    assert_eq!(d[0].carried, Some(Status::Sent));
    assert!(d[1].job.is_some(), "row 2 was never sent: it is");
}

#[test]
fn rule_1_is_counted_and_a_dry_run_shows_it_held_without_the_real_outcome() {
    let (prior, seen, changed) = a_changed_text();
    let mut planner = Planner::new(&changed(), &prior, view(&seen, None), PLAIN);
    let _ = changed().into_iter().map(|v| planner.decide(v)).count();
    assert_eq!(planner.changed(), 1);
    for resume in [false, true] {
        let flags = Flags {
            dry_run: true,
            resume,
            ..PLAIN
        };
        let mut planner = Planner::new(&changed(), &prior, view(&seen, None), flags);
        let d: Vec<Decision> = changed().into_iter().map(|v| planner.decide(v)).collect();
        assert_eq!(status_of(&d[0]), Some(Status::Held), "resume {resume}");
        assert!(d[0].job.is_none());
        assert_eq!(planner.changed(), 1);
        let msg = &d[0].record.as_ref().unwrap().0.msg;
        assert!(
            msg.contains("\"hola\"") || msg.contains("not known"),
            "{msg}"
        );
    }
}

#[test]
fn the_record_never_forgets_a_row_now_invalid_or_duplicate() {
    let prior = prior_of(&[
        ("k1", 1, "573001234561", Status::Sent, "sent"),
        ("k2", 2, "573001234562", Status::Unknown, "timeout"),
    ]);
    let verdicts = vec![
        // Its phone no longer normalizes: matched by its row.
        Verdict::Invalid {
            row: 1,
            shown: 2,
            telephone: "300 123 4561".into(),
            problems: vec![Problem {
                column: "telephone".into(),
                reason: "no country".into(),
            }],
        },
        // Now blank: invalid with a normalized phone.
        Verdict::Invalid {
            row: 2,
            shown: 3,
            telephone: "573001234562".into(),
            problems: vec![Problem {
                column: "message".into(),
                reason: "is empty".into(),
            }],
        },
    ];
    let (d, _) = plan_all(verdicts, &prior, &Seen::default(), None, PLAIN);
    assert_eq!(status_of(&d[0]), Some(Status::Sent));
    assert_eq!(status_of(&d[1]), Some(Status::Unknown));
    let msg = &d[1].record.as_ref().unwrap().0.msg;
    assert!(msg.starts_with("timeout; now message: is empty"), "{msg}");
}

#[test]
fn rules_2_and_3_the_same_message_elsewhere_is_held_and_most_of_a_list_refused() {
    let mut seen = Seen::default();
    seen.by_key
        .insert("k1".into(), entry("k1", "573001234561", 999_000));
    let verdicts = || {
        vec![
            Verdict::Valid(job_to(1, "k1", "573001234561")),
            Verdict::Valid(job_to(2, "k2", "573001234562")),
            Verdict::Valid(job_to(3, "k3#2", "573001234563")),
        ]
    };
    let (d, refused) = plan_all(verdicts(), &Prior::default(), &seen, None, PLAIN);
    assert_eq!(status_of(&d[0]), Some(Status::Held));
    let msg = &d[0].record.as_ref().unwrap().0.msg;
    assert!(
        msg.contains("/other.results.csv") && msg.contains("--allow-repeat"),
        "{msg}"
    );
    assert!(d[1].job.is_some() && d[2].job.is_some());
    assert_eq!(refused, None, "1 of 3 is not most");
    // The ledger's key has no #n: a later copy is the same message.
    seen.by_key
        .insert("k3".into(), entry("k3", "573001234563", 999_000));
    let (d, refused) = plan_all(verdicts(), &Prior::default(), &seen, None, PLAIN);
    assert_eq!(status_of(&d[2]), Some(Status::Held));
    assert_eq!(refused, Some((2, 3)));
    // On purpose, and in a dry run (held shown in advance).
    let allow = Flags {
        allow_repeat: true,
        ..PLAIN
    };
    let (d, refused) = plan_all(verdicts(), &Prior::default(), &seen, None, allow);
    assert!(d.iter().all(|d| d.job.is_some()) && refused.is_none());
    let dry = Flags {
        dry_run: true,
        ..PLAIN
    };
    let (d, _) = plan_all(verdicts(), &Prior::default(), &seen, None, dry);
    assert_eq!(status_of(&d[0]), Some(Status::Held));
    assert_eq!(status_of(&d[1]), Some(Status::DryRun));
}

#[test]
fn a_retried_row_held_by_the_ledger_keeps_its_earlier_outcome() {
    let prior = prior_of(&[("k1", 1, "573001234561", Status::Failed, "refused")]);
    let mut seen = Seen::default();
    seen.by_key
        .insert("k1".into(), entry("k1", "573001234561", 999_000));
    let (d, _) = plan_all(
        vec![Verdict::Valid(job_to(1, "k1", "573001234561"))],
        &prior,
        &seen,
        None,
        RETRY_FAILED,
    );
    assert!(d[0].job.is_none());
    assert_eq!(status_of(&d[0]), Some(Status::Failed));
}

#[test]
fn rule_4_the_cap_counts_the_ledger_and_this_plan() {
    let cap = Cap {
        count: 2,
        per: std::time::Duration::from_secs(86_400),
    };
    let mut seen = Seen::default();
    seen.by_phone.insert(
        "573001234561".into(),
        vec![entry("other", "573001234561", 990_000)],
    );
    let verdicts = vec![
        Verdict::Valid(job_to(1, "a", "573001234561")),
        Verdict::Valid(job_to(2, "b", "573001234561")),
        Verdict::Valid(job_to(3, "c", "573001234562")),
    ];
    let (d, refused) = plan_all(verdicts, &Prior::default(), &seen, Some(cap), PLAIN);
    assert!(d[0].job.is_some(), "1 earlier + this = 2");
    assert_eq!(status_of(&d[1]), Some(Status::Held));
    assert!(d[2].job.is_some());
    let msg = &d[1].record.as_ref().unwrap().0.msg;
    assert!(msg.contains("max_per_phone"), "{msg}");
    assert_eq!(refused, None, "the cap is not rule 3");
}

/// A held row's reason is the tool's text: recorded in the English the results file
/// always had, shown in Spanish from its id (the cap's period included), and read back
/// from the journal's JSON as it was.
#[test]
fn a_held_rows_reason_is_english_when_recorded_and_spanish_from_its_id() {
    use crate::i18n::{Lang, with_lang};
    let tz = jiff::tz::TimeZone::UTC;
    let last = entry("other", "573001234561", 1_764_000_000);
    let cap = Hold::Cap {
        count: 2,
        cap: Cap {
            count: 2,
            per: std::time::Duration::from_secs(86_400),
        },
        last: last.clone(),
    };
    let repeat = Hold::Repeat(last.clone());
    let claimed = Hold::Repeat(Entry {
        mark: ledger::Mark::Pending,
        ..last
    });
    let when = ledger::local_time(1_764_000_000, &tz);
    // Made in Spanish, recorded in English all the same.
    let said = with_lang(Lang::Es, || cap.said(&tz));
    assert_eq!(
        said.english(),
        crate::tr_en!(
            "msg-held-cap",
            count = 2,
            per = crate::tr_en!("ledger-period-days", n = 1),
            when = when.as_str(),
            results = "/other.results.csv"
        )
    );
    let es = with_lang(Lang::Es, || said.shown());
    assert!(es.contains("en 1 día"), "{es}");
    assert!(!es.contains("day"), "{es}");
    assert_eq!(es, with_lang(Lang::Es, || cap.text(&tz)));
    let english = with_lang(Lang::Es, || repeat.said(&tz)).english();
    assert_eq!(
        english,
        crate::tr_en!(
            "msg-held-repeat",
            when = when.as_str(),
            status = "sent",
            results = "/other.results.csv",
            row = 7
        )
    );
    assert!(english.starts_with("held: the same message"), "{english}");
    assert!(
        claimed.said(&tz).english().contains("was claimed on"),
        "{}",
        claimed.said(&tz).english()
    );
    for hold in [cap, repeat, claimed] {
        let said = hold.said(&tz);
        let json = serde_json::to_string(&said).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<crate::i18n::Said>(&json).ok(),
            Some(said),
            "{json}"
        );
    }
}

/// A cap's period in none of the catalogue's units is a value, the same in every
/// language.
#[test]
fn a_cap_period_of_odd_seconds_is_a_value() {
    use crate::i18n::{Lang, with_lang};
    let arg = with_lang(Lang::Es, || period(std::time::Duration::from_secs(90)));
    assert_eq!(arg, Arg::Text("1 min 30 s".into()));
    let Arg::Said(hours) = period(std::time::Duration::from_secs(7_200)) else {
        panic!("hours are the tool's text");
    };
    assert_eq!(hours.english(), "2 hours");
    assert_eq!(with_lang(Lang::Es, || hours.shown()), "2 horas");
}
