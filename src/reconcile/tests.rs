/*!
Unit tests of reconciling: the query schedule, phones as the report lists them, and
settling `unknown` rows from evidence.
*/

use super::*;

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[test]
fn a_forty_day_span_is_split_into_windows_of_31_days_at_most() {
    let start = ts("2026-10-01T00:00:00Z");
    let end = ts("2026-11-10T00:00:00Z");
    let w = windows(start, end);
    assert_eq!(w.len(), 2);
    assert_eq!(w[0], (start, ts("2026-11-01T00:00:00Z")));
    assert_eq!(w[1], (ts("2026-11-01T00:00:00Z"), end));
    assert_eq!(windows(start, ts("2026-10-02T00:00:00Z")).len(), 1);
    // The span: two days before the attempts, two days past now.
    let now = ts("2026-11-30T12:00:00Z");
    assert_eq!(
        span(
            &[ts("2026-11-29T10:00:00Z"), ts("2026-11-30T11:00:00Z")],
            now
        ),
        Some((ts("2026-11-27T10:00:00Z"), ts("2026-12-02T12:00:00Z")))
    );
    assert_eq!(
        report_date(
            ts("2026-11-30T15:04:05Z"),
            &TimeZone::get("America/Bogota").unwrap()
        ),
        "20261130100405"
    );
}

#[test]
fn calls_keep_five_minutes_apart_per_token_and_after_the_last_recorded_one() {
    let now = ts("2026-11-30T12:00:00Z");
    let at = |m: i64| now.checked_add(SignedDuration::from_mins(m)).unwrap();
    // One token, three windows: now, +5, +10.
    assert_eq!(
        schedule(3, 1, None, now),
        vec![(0, at(0)), (0, at(5)), (0, at(10))]
    );
    // Two tokens: two calls at once, then each 5 minutes later.
    assert_eq!(
        schedule(3, 2, None, now),
        vec![(0, at(0)), (1, at(0)), (0, at(5))]
    );
    // A call 2 minutes ago (an earlier reconcile): wait 3 more minutes.
    assert_eq!(schedule(1, 2, Some(at(-2)), now), vec![(0, at(3))]);
    // Long ago: no wait.
    assert_eq!(schedule(1, 1, Some(at(-60)), now), vec![(0, at(0))]);
}

const PHONE: &str = "573001234567";

fn key(telephone: &str, text: &str) -> String {
    content_key(telephone, &Message::Free { text: text.into() })
}

fn attempt(key: String, from: &str, until: &str) -> Attempt {
    Attempt {
        key,
        from: ts(from),
        until: ts(until),
        answered: true,
    }
}

fn listing(records: &[(&str, &str, &str)]) -> Answer {
    let items: Vec<serde_json::Value> = records
        .iter()
        .map(|(t, m, d)| serde_json::json!({"telephone": t, "message": m, "date": d}))
        .collect();
    answer::parse(200, serde_json::to_vec(&items).unwrap().as_slice()).unwrap()
}

fn evidence(records: &[(&str, &str, &str)], asked: &str) -> Evidence {
    let mut e = Evidence::default();
    let phones = Phones::new(
        [PHONE, "573001234568", "573001234569", "573001234570"].map(String::from),
        None,
    );
    e.add(listing(records), ts(asked), &phones);
    e
}

/// A sent row "Hola Luis" to ...68 at 10:00 UTC, its record dated by `date`.
fn own(date: &str) -> ((&'static str, &'static str, String), Attempt) {
    (
        ("+57 300 123 4568", "Hola Luis", date.to_owned()),
        attempt(
            key("573001234568", "Hola Luis"),
            "2026-11-30T09:59:00Z",
            "2026-11-30T10:00:00Z",
        ),
    )
}

/// A second sent row, "Hola Marta" to ...70 at 10:00 UTC: with `own`, two rows that
/// show the report's offset.
fn own_too(date: &str) -> ((&'static str, &'static str, String), Attempt) {
    (
        ("573001234570", "Hola Marta", date.to_owned()),
        attempt(
            key("573001234570", "Hola Marta"),
            "2026-11-30T09:59:00Z",
            "2026-11-30T10:00:00Z",
        ),
    )
}

fn settle(
    records: &[(&str, &str, &str)],
    unknown: &[Attempt],
    sent: &[Attempt],
    zone_offset: i64,
) -> Vec<Settlement> {
    let e = evidence(records, "2026-11-30T12:00:00Z");
    settle_all(
        unknown,
        sent,
        false,
        &e,
        SignedDuration::from_mins(30),
        zone_offset,
    )
}

#[test]
fn rows_are_settled_by_telephone_and_text_once_the_report_covers_them() {
    let ((t, m, d), mine) = own("2026-11-30 10:00:01");
    let records = [
        (t, m, d.as_str()),
        ("3001234567", "Hola &amp;  Ana ", "2026-11-30 10:00:05"),
    ];
    let found = attempt(
        key(PHONE, "Hola & Ana"),
        "2026-11-30T09:59:00Z",
        "2026-11-30T10:00:00Z",
    );
    let absent = attempt(
        key(PHONE, "Hola Luis"),
        "2026-11-30T09:59:00Z",
        "2026-11-30T10:00:00Z",
    );
    let recent = attempt(
        key("573001234569", "Hola"),
        "2026-11-30T11:40:00Z",
        "2026-11-30T11:45:00Z",
    );
    assert_eq!(
        settle(
            &records,
            &[found, absent, recent],
            std::slice::from_ref(&mine),
            0
        ),
        [
            Settlement::Sent {
                date: "2026-11-30 10:00:05".into()
            },
            Settlement::NotSent,
            Settlement::TooRecent {
                until: ts("2026-11-30T12:15:00Z")
            },
        ]
    );
    // Without the campaign's own sent rows listed, an absence proves nothing.
    let absent = attempt(
        key(PHONE, "Hola Luis"),
        "2026-11-30T09:59:00Z",
        "2026-11-30T10:00:00Z",
    );
    assert_eq!(
        settle(&records[1..], std::slice::from_ref(&absent), &[], 0),
        [Settlement::Undecided(Why::NoOwnSent)]
    );
    assert_eq!(
        settle(
            &records[1..],
            std::slice::from_ref(&absent),
            std::slice::from_ref(&mine),
            0
        ),
        [Settlement::Undecided(Why::NoOwnSent)]
    );
    let unlisted = attempt(
        key("573001234569", "Hola Luis"),
        "2026-11-30T09:59:00Z",
        "2026-11-30T10:00:00Z",
    );
    assert_eq!(
        settle(
            &records,
            std::slice::from_ref(&absent),
            &[mine, unlisted],
            0
        ),
        [Settlement::Undecided(Why::OwnSentMissing(1))]
    );
    let e = evidence(&records, "2026-11-30T12:00:00Z");
    assert_eq!(
        settle_all(&[absent], &[], true, &e, SignedDuration::ZERO, 0),
        [Settlement::Undecided(Why::Template)]
    );
}

#[test]
fn a_record_before_the_attempt_confirms_nothing_and_one_record_one_attempt() {
    let ((t, m, d), mine) = own("2026-11-30 10:00:01");
    let ((t2, m2, d2), also) = own_too("2026-11-30 10:00:01");
    // Yesterday's identical message: not this attempt's, once two of the campaign's
    // own rows show the report's dates are this machine's.
    let records = [
        (t, m, d.as_str()),
        (t2, m2, d2.as_str()),
        (PHONE, "Hola", "2026-11-29 10:00:00"),
    ];
    let lost = || {
        attempt(
            key(PHONE, "Hola"),
            "2026-11-30T09:59:00Z",
            "2026-11-30T10:00:00Z",
        )
    };
    assert_eq!(
        settle(&records, &[lost()], &[mine.clone(), also.clone()], 0),
        [Settlement::NotSent]
    );
    // With one row to show it, the report's zone is not known: it may be its.
    assert_eq!(
        settle(
            &[records[0], records[2]],
            &[lost()],
            std::slice::from_ref(&mine),
            0
        ),
        [Settlement::Undecided(Why::Before(
            "2026-11-29 10:00:00".into()
        ))]
    );
    // Two copies (--allow-duplicates), one record: one sent, one not.
    let records = [(t, m, d.as_str()), (PHONE, "Hola", "2026-11-30 10:00:02")];
    let copy = Attempt {
        key: format!("{}#1", key(PHONE, "Hola")),
        ..lost()
    };
    assert_eq!(
        settle(
            &records,
            &[lost(), copy.clone()],
            std::slice::from_ref(&mine),
            0
        ),
        [
            Settlement::Sent {
                date: "2026-11-30 10:00:02".into()
            },
            Settlement::NotSent,
        ]
    );
    // A copy already recorded sent takes the one record.
    let sent_copy = lost();
    assert_eq!(
        settle(&records, &[copy], &[mine, sent_copy], 0),
        [Settlement::NotSent]
    );
}

#[test]
fn the_reports_zone_is_read_from_the_campaigns_own_sent_rows() {
    // The report is in Bogota (UTC-5): dates 5 hours behind this UTC machine's.
    let ((t, m, d), mine) = own("2026-11-30 05:00:01");
    let ((t2, m2, d2), also) = own_too("2026-11-30 05:00:02");
    let records = [
        (t, m, d.as_str()),
        (t2, m2, d2.as_str()),
        (PHONE, "Hola", "2026-11-30 05:00:03"),
        ("573001234569", "Hola", "2026-11-29 05:00:00"),
    ];
    let delivered = attempt(
        key(PHONE, "Hola"),
        "2026-11-30T09:59:00Z",
        "2026-11-30T10:00:00Z",
    );
    let lost = attempt(
        key("573001234569", "Hola"),
        "2026-11-30T09:59:00Z",
        "2026-11-30T10:00:00Z",
    );
    assert_eq!(
        settle(
            &records,
            &[delivered.clone(), lost.clone()],
            &[mine, also],
            0
        ),
        [
            Settlement::Sent {
                date: "2026-11-30 05:00:03".into()
            },
            Settlement::NotSent
        ]
    );
    // Nothing to show the zone: a record up to 27 hours before the attempt may be
    // its, in another zone, so the row stays unknown rather than absent; one 29
    // hours before is not.
    assert_eq!(
        settle(&records[2..], &[delivered, lost], &[], 0),
        [
            Settlement::Undecided(Why::Before("2026-11-30 05:00:03".into())),
            Settlement::Undecided(Why::NoOwnSent),
        ]
    );
}

#[test]
fn doubtful_answers_prove_no_absence_but_still_confirm() {
    let ((t, m, d), mine) = own("2026-11-30 10:00:01");
    let mut e = evidence(
        &[(t, m, d.as_str()), (PHONE, "Hola", "2026-11-30 10:00:03")],
        "2026-11-30T12:00:00Z",
    );
    e.doubts.push(Doubt::Paginated);
    let found = attempt(
        key(PHONE, "Hola"),
        "2026-11-30T09:59:00Z",
        "2026-11-30T10:00:00Z",
    );
    let absent = attempt(
        key(PHONE, "Adiós"),
        "2026-11-30T09:59:00Z",
        "2026-11-30T10:00:00Z",
    );
    assert_eq!(
        settle_all(
            &[found, absent],
            &[mine],
            false,
            &e,
            SignedDuration::ZERO,
            0
        ),
        [
            Settlement::Sent {
                date: "2026-11-30 10:00:03".into()
            },
            Settlement::Undecided(Why::Doubt(Doubt::Paginated))
        ]
    );
}

#[test]
fn a_national_number_two_of_the_campaigns_share_settles_neither() {
    let ((t, m, d), mine) = own("2026-11-30 10:00:01");
    let mut e = Evidence::default();
    let phones = Phones::new(
        ["573001234568", "573001234567", "13001234567"].map(String::from),
        None,
    );
    e.add(
        listing(&[
            (t, m, d.as_str()),
            ("3001234567", "Hola", "2026-11-30 10:00:03"),
        ]),
        ts("2026-11-30T12:00:00Z"),
        &phones,
    );
    let row = |phone: &str| {
        attempt(
            key(phone, "Hola"),
            "2026-11-30T09:59:00Z",
            "2026-11-30T10:00:00Z",
        )
    };
    let why = Settlement::Undecided(Why::AmbiguousPhone("2026-11-30 10:00:03".into()));
    assert_eq!(
        settle_all(
            &[row("573001234567"), row("13001234567")],
            &[mine],
            false,
            &e,
            SignedDuration::ZERO,
            0
        ),
        [why.clone(), why]
    );
}

#[test]
fn report_phones_in_any_form_resolve_to_the_campaigns() {
    let phones = Phones::new(["573001234567", "593991234567"].map(String::from), None);
    for raw in [
        "573001234567",
        "+57 300 123 4567",
        "3001234567",
        "300-123-4567",
    ] {
        assert_eq!(phones.resolve(raw), ["573001234567"], "{raw}");
    }
    assert_eq!(phones.resolve("0991234567"), ["593991234567"]);
    assert!(phones.resolve("12345").is_empty());
    // One national number, two countries: either.
    let shared = Phones::new(["573001234567", "13001234567"].map(String::from), None);
    assert_eq!(shared.resolve("3001234567").len(), 2);
    assert_eq!(shared.resolve("+1 300 123 4567"), ["13001234567"]);
}
