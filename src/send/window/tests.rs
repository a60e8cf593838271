/*!
Unit tests of the contact hours: parsing `hours`, the window at fixed instants (clock
changes, holidays), and the `Gate` on a clock of the test's own.
*/

use std::sync::{Arc, Mutex};

use super::gate::Clock;
use super::*;

fn ts(text: &str) -> Timestamp {
    text.parse().expect("timestamp")
}

fn window(hours: &str, tz: &str, holidays: &[&str]) -> ContactWindow {
    ContactWindow::new(
        Week::parse(hours).expect("hours"),
        parse_timezone(tz).expect("tz"),
        holidays
            .iter()
            .map(|h| parse_holiday(h).expect("date"))
            .collect(),
    )
    .expect("window")
}

fn local(z: Option<ZonedDateTime>) -> String {
    z.map(|z| z.strftime("%a %F %T %:z").to_string())
        .unwrap_or_else(|| "none".into())
}

/// When `w` next opens after the UTC time `at`, in local time.
fn opens(w: &ContactWindow, at: &str) -> String {
    local(w.next_open(ts(at)))
}

/// When `w`, open at the UTC time `at`, closes, in local time.
fn closes(w: &ContactWindow, at: &str) -> String {
    local(w.closes_at(ts(at)))
}

#[test]
fn hours_parse_into_merged_ranges_per_day() {
    let w =
        Week::parse("mon-fri 07:00-12:00 13:00-19:00, sat 08:00-15:00, MON 11:00-13:30").unwrap();
    assert_eq!(w.days[0], [(7 * 3600, 19 * 3600)]);
    assert_eq!(w.days[1], [(7 * 3600, 12 * 3600), (13 * 3600, 19 * 3600)]);
    assert_eq!(w.days[5], [(8 * 3600, 15 * 3600)]);
    assert!(w.days[6].is_empty());
    let w = Week::parse("sun 7:00-24:00, sat 23:59:30-24:00").unwrap();
    assert_eq!(w.days[6], [(7 * 3600, DAY_SECONDS)]);
    assert_eq!(w.days[5], [(DAY_SECONDS - 30, DAY_SECONDS)]);
}

#[test]
fn bad_hours_say_what_is_wrong() {
    for (spec, needle) in [
        ("", "is empty"),
        ("mon-fri", "needs days and hours"),
        ("mon-fry 07:00-19:00", "\"fry\" is not a day"),
        ("fri-mon 07:00-19:00", "goes backwards"),
        ("mon 22:00-02:00", "crosses midnight"),
        ("mon 07:00-07:00", "is empty"),
        ("mon 7-19", "not a time"),
        ("mon 07:60-19:00", "not a time"),
        ("mon 07:00-24:01", "not a time"),
        ("mon 24:00-24:00", "cannot start at 24:00"),
        ("mon 07:00-19:00,, tue 07:00-19:00", "empty entry"),
        ("mon 07:00 - 19:00", "not a time range"),
        ("mon 07:0-19:00", "not a time"),
        ("mon 07:00:5-19:00", "not a time"),
    ] {
        let err = Week::parse(spec).expect_err(spec);
        assert!(err.contains(needle), "{spec:?}: {err}");
    }
}

#[test]
fn time_zones_and_holidays_are_checked() {
    assert!(parse_timezone("America/Bogota").is_ok());
    assert!(parse_timezone("UTC").is_ok());
    let err = parse_timezone("America/Bogotá").unwrap_err();
    assert!(err.contains("IANA"), "{err}");
    assert!(parse_timezone("-05:00").is_err());
    assert!(parse_holiday("2026-12-08").is_ok());
    assert!(
        parse_holiday("08/12/2026")
            .unwrap_err()
            .contains("YYYY-MM-DD")
    );
    assert!(parse_holiday("2026-02-30").is_err());
}

#[test]
fn a_zone_without_dst_opens_and_closes_on_local_time() {
    // Bogota is UTC-5 all year. 2026-03-02 is a Monday.
    let w = window(
        "mon-fri 07:00-19:00, sat 08:00-15:00",
        "America/Bogota",
        &[],
    );
    assert!(!w.is_open(ts("2026-03-02T11:59:59Z"))); // 06:59:59 local
    assert!(w.is_open(ts("2026-03-02T12:00:00Z"))); // 07:00
    assert!(w.is_open(ts("2026-03-02T23:59:59Z"))); // 18:59:59
    assert!(!w.is_open(ts("2026-03-03T00:00:00Z"))); // 19:00: the end is excluded
    let cases = [
        (
            closes(&w, "2026-03-02T15:00:00Z"),
            "Mon 2026-03-02 19:00:00 -05:00",
        ),
        (closes(&w, "2026-03-03T01:00:00Z"), "none"),
        (
            opens(&w, "2026-03-03T01:00:00Z"),
            "Tue 2026-03-03 07:00:00 -05:00",
        ),
        // Friday evening -> Saturday 08:00; Saturday 15:00 -> Monday 07:00.
        (
            opens(&w, "2026-03-07T00:30:00Z"),
            "Sat 2026-03-07 08:00:00 -05:00",
        ),
        (
            opens(&w, "2026-03-07T20:00:00Z"),
            "Mon 2026-03-09 07:00:00 -05:00",
        ),
    ];
    for (got, want) in cases {
        assert_eq!(got, want);
    }
    // Open now: next_open is now.
    let now = ts("2026-03-02T15:00:00Z");
    assert_eq!(w.next_open(now).map(|z| z.timestamp()), Some(now));
}

#[test]
fn a_zone_with_dst_follows_the_local_clock() {
    // New York: EST (-5) until 2026-03-08 02:00, then EDT (-4).
    let w = window("mon-sun 09:00-17:00", "America/New_York", &[]);
    assert!(w.is_open(ts("2026-03-07T14:00:00Z"))); // 09:00 EST
    assert!(!w.is_open(ts("2026-03-09T12:59:00Z"))); // 08:59 EDT
    assert!(w.is_open(ts("2026-03-09T13:00:00Z"))); // 09:00 EDT
    assert_eq!(
        opens(&w, "2026-03-08T03:00:00Z"),
        "Sun 2026-03-08 09:00:00 -04:00"
    );
    // The range that contains the change: 01:00 EST to 03:00 EDT is one real hour.
    let w = window("sun 01:00-03:00", "America/New_York", &[]);
    let open = w.next_open(ts("2026-03-08T00:00:00Z")).unwrap();
    let close = w.closes_at(open.timestamp()).unwrap();
    assert_eq!(
        open.timestamp().duration_until(close.timestamp()),
        jiff::SignedDuration::from_hours(1)
    );
    // Madrid: a boundary inside the skipped hour (02:30 on 2026-03-29) is taken after it.
    let w = window("sun 02:30-05:00", "Europe/Madrid", &[]);
    assert_eq!(
        opens(&w, "2026-03-29T00:00:00Z"),
        "Sun 2026-03-29 03:30:00 +02:00"
    );
    // A repeated hour (2026-10-25, 02:00-03:00 twice in Madrid) opens at its first occurrence.
    let w = window("sun 02:30-04:00", "Europe/Madrid", &[]);
    assert_eq!(
        opens(&w, "2026-10-24T22:00:00Z"),
        "Sun 2026-10-25 02:30:00 +02:00"
    );
}

#[test]
fn a_long_run_finishes_in_a_later_window() {
    let w = window("mon-fri 07:00-19:00", "America/Bogota", &[]);
    // Monday 17:00 local, 5 h of sending: 2 h today, 3 h on Tuesday from 07:00.
    let finish = |at: &str, hours: u64| local(w.finish(ts(at), Duration::from_secs(hours * 3600)));
    assert_eq!(
        finish("2026-03-02T22:00:00Z", 5),
        "Tue 2026-03-03 10:00:00 -05:00"
    );
    assert_eq!(
        finish("2026-03-02T22:00:00Z", 1),
        "Mon 2026-03-02 18:00:00 -05:00"
    );
    // Friday 18:00 local, 2 h: the weekend is skipped.
    assert_eq!(
        finish("2026-03-06T23:00:00Z", 2),
        "Mon 2026-03-09 08:00:00 -05:00"
    );
    // Closed now (Sunday): it starts when the window opens.
    assert_eq!(
        finish("2026-03-08T15:00:00Z", 1),
        "Mon 2026-03-09 08:00:00 -05:00"
    );
}

#[test]
fn holidays_close_whole_days() {
    let w = window("mon-fri 07:00-19:00", "America/Bogota", &["2026-12-08"]);
    // Tuesday 2026-12-08, 10:00 local.
    assert!(!w.is_open(ts("2026-12-08T15:00:00Z")));
    // Tuesday 10:00, and Monday after its window ends at 19:00: both open on Wednesday.
    for at in ["2026-12-08T15:00:00Z", "2026-12-08T01:00:00Z"] {
        assert_eq!(opens(&w, at), "Wed 2026-12-09 07:00:00 -05:00", "{at}");
    }
    // Many holidays in a row: the search extends past them.
    let many: Vec<String> = (1..=31).map(|d| format!("2026-12-{d:02}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let w = window("sat 08:00-09:00", "America/Bogota", &many);
    assert_eq!(
        opens(&w, "2026-11-30T12:00:00Z"),
        "Sat 2027-01-02 08:00:00 -05:00"
    );
}

#[test]
fn ranges_that_touch_close_together_even_across_midnight() {
    let w = window(
        "fri 20:00-24:00, sat 00:00-02:00, sat 02:00-03:00:30",
        "America/Bogota",
        &[],
    );
    // Friday 2026-03-06 22:00 local.
    assert_eq!(
        closes(&w, "2026-03-07T03:00:00Z"),
        "Sat 2026-03-07 03:00:30 -05:00"
    );
    // Open every hour: no closing time ahead.
    let w = ContactWindow::new(
        Week::always(),
        parse_timezone("UTC").unwrap(),
        BTreeSet::new(),
    )
    .unwrap();
    assert!(w.is_open(ts("2026-03-07T03:00:00Z")));
    assert_eq!(closes(&w, "2026-03-07T03:00:00Z"), "none");
}

#[test]
fn the_same_hours_differ_by_time_zone() {
    let now = ts("2026-03-02T01:00:00Z"); // Mon 10:00 in Tokyo, Sun 20:00 in Bogota
    assert!(window("mon-fri 09:00-18:00", "Asia/Tokyo", &[]).is_open(now));
    assert!(!window("mon-fri 09:00-18:00", "America/Bogota", &[]).is_open(now));
}

#[test]
fn fit_compares_needed_time_with_the_window() {
    let w = window("mon-fri 07:00-19:00", "America/Bogota", &[]);
    let noon = ts("2026-03-02T17:00:00Z"); // 12:00 local, 7 h left
    let fit = w.fit(noon, Duration::from_secs(3600));
    assert!(fit.opens.is_none() && !fit.never_opens && fit.fits());
    assert_eq!(fit.available, Some(Duration::from_secs(7 * 3600)));
    assert!(
        fit.describe().contains("the run fits"),
        "{}",
        fit.describe()
    );
    let fit = w.fit(noon, Duration::from_secs(14 * 3600));
    assert!(!fit.fits());
    assert!(fit.describe().contains("about 50%"), "{}", fit.describe());
    // Closed now: the next window counts (12 h on Tuesday).
    let night = ts("2026-03-03T03:00:00Z");
    let fit = w.fit(night, Duration::from_secs(11 * 3600));
    assert!(fit.opens.is_some() && fit.fits());
    let opens = fit.opens.as_ref().expect("opens");
    let shown = crate::i18n::when(opens.timestamp(), opens.time_zone())
        + &crate::i18n::zone_note(opens.time_zone());
    assert!(
        shown.contains("3 March") && shown.contains("07:00"),
        "{shown}"
    );
    assert!(
        fit.describe()
            .contains(&format!("closed now; next opens {shown} until 19:00 (")),
        "{}",
        fit.describe()
    );
}

#[derive(Debug)]
struct FixedClock(Mutex<Timestamp>);

impl Clock for FixedClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap()
    }
}

#[test]
fn the_gate_follows_its_clock_even_backwards() {
    let clock = Arc::new(FixedClock(Mutex::new(ts("2026-03-02T12:30:00Z"))));
    let gate = Gate::new(
        window("mon-fri 07:00-19:00:30", "America/Bogota", &[]),
        clock.clone(),
    );
    assert_eq!(gate.check(), GateState::Open);
    *clock.0.lock().unwrap() = ts("2026-03-03T00:00:29Z");
    assert_eq!(gate.check(), GateState::Open);
    *clock.0.lock().unwrap() = ts("2026-03-03T00:00:30Z");
    let GateState::Closed { next_open } = gate.check() else {
        panic!("closed at 19:00:30")
    };
    assert_eq!(local(next_open), "Tue 2026-03-03 07:00:00 -05:00");
    // A clock set back before the cached open period is checked again, not trusted.
    *clock.0.lock().unwrap() = ts("2026-03-02T12:30:00Z");
    assert_eq!(gate.check(), GateState::Open);
    *clock.0.lock().unwrap() = ts("2026-03-02T11:00:00Z");
    assert!(matches!(gate.check(), GateState::Closed { .. }));
}

#[test]
fn times_are_shown_with_zone_and_seconds_only_when_needed() {
    let z = ts("2026-03-03T12:00:00Z").to_zoned_datetime(parse_timezone("America/Bogota").unwrap());
    assert_eq!(show(&z), "Tue 2026-03-03 07:00 -05 (America/Bogota)");
    let z = ts("2026-03-03T12:00:05Z").to_zoned_datetime(parse_timezone("America/Bogota").unwrap());
    assert_eq!(show(&z), "Tue 2026-03-03 07:00:05 -05 (America/Bogota)");
}
