/*!
Contact hours: when a campaign may send, in the recipients' time zone.

`[campaign] hours = "mon-fri 07:00-19:00, sat 08:00-15:00"` is read against
`timezone` (an IANA name, resolved with jiff's bundled tz database, so it works
where /usr/share/zoneinfo is missing) and `holidays` (dates with no sending).
Times are local wall-clock times; `HH:MM:SS` is accepted for a precise end,
and `24:00` ends a range at midnight. Ranges that cross midnight
(`22:00-02:00`) are refused: write them as two entries, one per day. On a day
when the clocks change, a boundary that falls in the skipped hour is taken as
jiff's "compatible" instant (the time after the gap); one in a repeated hour
as its first occurrence.

Every question is asked with an explicit `now`, so the logic is pure and
tested with fixed instants; the dispatcher reads the time through a `Clock`
so tests can substitute one without touching the real clock.
*/

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use crate::tr;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

const DAY_SECONDS: u32 = 86_400;
const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
/// How far ahead the next opening is looked for when there are no holidays.
const BASE_SEARCH_DAYS: usize = 8;
/// Never look further than this (ten years), whatever the holidays.
const MAX_SEARCH_DAYS: usize = 3700;

/// Open ranges for each day of the week, Monday first, in seconds since local midnight.
/// Each day's ranges are sorted and merged; a range is `[start, end)` with `end <= 86400`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Week {
    days: [Vec<(u32, u32)>; 7],
}

impl Week {
    /// Parses an hours spec such as `"mon-fri 07:00-19:00, sat 08:00-15:00"`.
    /// The error says what is wrong with which entry, without the key (the caller names it).
    pub(crate) fn parse(spec: &str) -> Result<Self, String> {
        if spec.trim().is_empty() {
            return Err(tr!("hours-empty"));
        }
        let mut week = Week::default();
        for entry in spec.split(',') {
            let entry = entry.trim();
            if entry.is_empty() {
                return Err(tr!("hours-empty-entry", spec = format!("{spec:?}")));
            }
            let mut tokens = entry.split_whitespace();
            let days = tokens.next().unwrap_or_default();
            let ranges: Vec<&str> = tokens.collect();
            if ranges.is_empty() {
                return Err(tr!("hours-needs-days", entry = format!("{entry:?}")));
            }
            let (first, last) = parse_days(days, entry)?;
            for range in ranges {
                let (start, end) = parse_range(range, entry)?;
                for day in &mut week.days[first..=last] {
                    day.push((start, end));
                }
            }
        }
        for day in &mut week.days {
            *day = merge(std::mem::take(day));
        }
        Ok(week)
    }

    /// Open every hour of every day (used when only holidays are configured).
    pub(crate) fn always() -> Self {
        Self {
            days: std::array::from_fn(|_| vec![(0, DAY_SECONDS)]),
        }
    }

    fn ranges(&self, weekday: Weekday) -> &[(u32, u32)] {
        let i = usize::try_from(weekday.to_monday_zero_offset()).unwrap_or(0);
        self.days.get(i).map(Vec::as_slice).unwrap_or(&[])
    }

    fn is_empty(&self) -> bool {
        self.days.iter().all(Vec::is_empty)
    }
}

/// `mon` or `mon-fri` -> (first, last) day indexes, Monday = 0.
fn parse_days(text: &str, entry: &str) -> Result<(usize, usize), String> {
    let day = |name: &str| {
        let lower = name.to_ascii_lowercase();
        DAY_NAMES.iter().position(|d| *d == lower).ok_or_else(|| {
            tr!(
                "hours-not-a-day",
                entry = format!("{entry:?}"),
                name = format!("{name:?}"),
                days = DAY_NAMES.join(", ")
            )
        })
    };
    match text.split_once('-') {
        None => day(text).map(|d| (d, d)),
        Some((a, b)) => {
            let (first, last) = (day(a)?, day(b)?);
            if first > last {
                return Err(tr!(
                    "hours-backwards",
                    entry = format!("{entry:?}"),
                    text = format!("{text:?}")
                ));
            }
            Ok((first, last))
        }
    }
}

/// `07:00-19:00` -> seconds since midnight, `[start, end)`.
fn parse_range(text: &str, entry: &str) -> Result<(u32, u32), String> {
    let Some((a, b)) = text.split_once('-') else {
        return Err(tr!(
            "hours-not-a-range",
            entry = format!("{entry:?}"),
            text = format!("{text:?}")
        ));
    };
    let start = parse_time(a, entry)?;
    let end = parse_time(b, entry)?;
    if start == DAY_SECONDS {
        return Err(tr!("hours-starts-at-24", entry = format!("{entry:?}")));
    }
    if end < start {
        return Err(tr!(
            "hours-crosses-midnight",
            entry = format!("{entry:?}"),
            text = format!("{text:?}")
        ));
    }
    if end == start {
        return Err(tr!(
            "hours-empty-range",
            entry = format!("{entry:?}"),
            text = format!("{text:?}")
        ));
    }
    Ok((start, end))
}

/// `7:00`, `07:00`, `07:00:30` or `24:00` -> seconds since midnight.
fn parse_time(text: &str, entry: &str) -> Result<u32, String> {
    let bad = || {
        tr!(
            "hours-not-a-time",
            entry = format!("{entry:?}"),
            text = format!("{text:?}")
        )
    };
    let parts: Vec<&str> = text.split(':').collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad());
    }
    let number = |s: &str, max_len: usize| -> Result<u32, String> {
        if s.is_empty() || s.len() > max_len || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse().map_err(|_| bad())
    };
    let hour = number(parts.first().copied().unwrap_or_default(), 2)?;
    let minute = number(parts.get(1).copied().unwrap_or_default(), 2)?;
    let second = match parts.get(2) {
        Some(s) => number(s, 2)?,
        None => 0,
    };
    if parts.get(1).is_some_and(|m| m.len() != 2) || parts.get(2).is_some_and(|s| s.len() != 2) {
        return Err(bad());
    }
    if minute > 59 || second > 59 || hour > 24 || (hour == 24 && (minute, second) != (0, 0)) {
        return Err(bad());
    }
    Ok(hour * 3600 + minute * 60 + second)
}

/// Sorts ranges and joins those that overlap or touch.
fn merge(mut ranges: Vec<(u32, u32)>) -> Vec<(u32, u32)> {
    ranges.sort_unstable();
    let mut out: Vec<(u32, u32)> = Vec::with_capacity(ranges.len());
    for (start, end) in ranges {
        match out.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => out.push((start, end)),
        }
    }
    out
}

/// An IANA time zone name -> the zone, or why not.
pub(crate) fn parse_timezone(name: &str) -> Result<TimeZone, String> {
    let name = name.trim();
    if name.is_empty() {
        return Err(tr!("timezone-empty"));
    }
    TimeZone::get(name).map_err(|_| tr!("timezone-unknown", name = format!("{name:?}")))
}

/// `2026-12-08` -> the date, or why not.
pub(crate) fn parse_holiday(text: &str) -> Result<Date, String> {
    text.trim()
        .parse::<Date>()
        .map_err(|_| tr!("holiday-not-a-date", text = format!("{text:?}")))
}

/// When contact is allowed: weekly hours in a time zone, minus holidays.
#[derive(Debug, Clone)]
pub(crate) struct ContactWindow {
    week: Week,
    tz: TimeZone,
    holidays: BTreeSet<Date>,
}

impl ContactWindow {
    /// Fails only when the week has no open hour at all.
    pub(crate) fn new(week: Week, tz: TimeZone, holidays: BTreeSet<Date>) -> Result<Self, String> {
        if week.is_empty() {
            return Err(tr!("hours-no-day"));
        }
        Ok(Self { week, tz, holidays })
    }

    /// A local wall-clock time on `day` as an instant (`86400` is the next midnight).
    fn instant(&self, day: Date, second: u32) -> Option<Timestamp> {
        let (day, second) = if second >= DAY_SECONDS {
            (day.tomorrow().ok()?, 0)
        } else {
            (day, second)
        };
        let hms = |n: u32| i8::try_from(n).ok();
        let dt = day.at(
            hms(second / 3600)?,
            hms(second / 60 % 60)?,
            hms(second % 60)?,
            0,
        );
        self.tz.to_timestamp(dt).ok()
    }

    /// The days searched from `now`: from the day before its local date, long enough to
    /// see past every holiday.
    fn search_days(&self, now: Timestamp) -> impl Iterator<Item = Date> + use<> {
        let today = self.tz.to_datetime(now).date();
        let start = today.yesterday().unwrap_or(today);
        let days = BASE_SEARCH_DAYS
            .saturating_add(self.holidays.len().saturating_mul(7))
            .min(MAX_SEARCH_DAYS);
        std::iter::successors(Some(start), |d| d.tomorrow().ok()).take(days)
    }

    /// The end of the searched range: an open period reaching it has no end in sight.
    fn horizon(&self, now: Timestamp) -> Option<Timestamp> {
        self.instant(self.search_days(now).last()?, DAY_SECONDS)
    }

    /// The open intervals, as instants, from the day before `now`'s local date on, in order.
    fn intervals(&self, now: Timestamp) -> impl Iterator<Item = (Timestamp, Timestamp)> + '_ {
        self.search_days(now)
            .filter(|day| !self.holidays.contains(day))
            .flat_map(move |day| {
                self.week
                    .ranges(day.weekday())
                    .iter()
                    .filter_map(move |&(s, e)| Some((self.instant(day, s)?, self.instant(day, e)?)))
            })
            .filter(|(s, e)| s < e)
    }

    /// True when sending is allowed at `now`.
    pub(crate) fn is_open(&self, now: Timestamp) -> bool {
        self.intervals(now)
            .find(|&(_, end)| end > now)
            .is_some_and(|(start, _)| start <= now)
    }

    /// The first instant at or after `now` when sending is allowed (`now` itself if open).
    /// `None` if the window does not open in the searched range (holidays cover it all).
    pub(crate) fn next_open(&self, now: Timestamp) -> Option<ZonedDateTime> {
        self.intervals(now)
            .find(|&(_, end)| end > now)
            .map(|(start, _)| start.max(now).to_zoned_datetime(self.tz.clone()))
    }

    /// When the window open at `now` closes (ranges that touch, across midnight too, count
    /// as one). `None` if it is closed at `now`, or open without end in the searched range.
    pub(crate) fn closes_at(&self, now: Timestamp) -> Option<ZonedDateTime> {
        let mut intervals = self.intervals(now).skip_while(|&(_, end)| end <= now);
        let (start, mut end) = intervals.next()?;
        if start > now {
            return None;
        }
        loop {
            match intervals.next() {
                Some((s, e)) if s <= end => end = end.max(e),
                Some(_) => break,
                None if self.horizon(now).is_none_or(|h| end >= h) => return None,
                None => break,
            }
        }
        Some(end.to_zoned_datetime(self.tz.clone()))
    }

    /// When sending for `needed`, started at `now`, would end if it went on in each window
    /// as it opens (as `--wait-for-window` does). `None` if the windows never give that
    /// much time in the searched range.
    pub(crate) fn finish(&self, now: Timestamp, needed: Duration) -> Option<ZonedDateTime> {
        let mut left = jiff::SignedDuration::try_from(needed).ok()?;
        let mut at = now;
        // Each pass uses up one window; a year of daily windows is far beyond any list.
        for _ in 0..400 {
            let opens = self.next_open(at)?.timestamp();
            let Some(closes) = self.closes_at(opens) else {
                return opens
                    .checked_add(left)
                    .ok()
                    .map(|t| t.to_zoned_datetime(self.tz.clone()));
            };
            let room = opens.duration_until(closes.timestamp());
            if left <= room {
                return opens
                    .checked_add(left)
                    .ok()
                    .map(|t| t.to_zoned_datetime(self.tz.clone()));
            }
            left -= room;
            at = closes.timestamp();
        }
        None
    }

    /// Whether sending for `needed` fits in the window open now, or in the next one.
    pub(crate) fn fit(&self, now: Timestamp, needed: Duration) -> Fit {
        let open_now = self.is_open(now);
        let opens = if open_now { None } else { self.next_open(now) };
        let from = opens.as_ref().map(ZonedDateTime::timestamp).unwrap_or(now);
        let closes = if open_now || opens.is_some() {
            self.closes_at(from)
        } else {
            None
        };
        let available = closes
            .as_ref()
            .map(|c| Duration::try_from(from.duration_until(c.timestamp())).unwrap_or_default());
        Fit {
            never_opens: !open_now && opens.is_none(),
            opens,
            closes,
            available,
            needed,
        }
    }
}

/// How a run of a given length sits in the contact window (see `ContactWindow::fit`).
#[derive(Debug, Clone)]
pub(crate) struct Fit {
    /// Closed now and no opening found (holidays cover the whole search).
    pub(crate) never_opens: bool,
    /// When the window opens, if it is closed now.
    pub(crate) opens: Option<ZonedDateTime>,
    /// When the considered window closes; `None` if it does not close.
    pub(crate) closes: Option<ZonedDateTime>,
    /// Length of the considered window from now (or from its opening); `None` = no end.
    pub(crate) available: Option<Duration>,
    pub(crate) needed: Duration,
}

impl Fit {
    pub(crate) fn fits(&self) -> bool {
        !self.never_opens && self.available.is_none_or(|a| self.needed <= a)
    }

    /// One line for `validate` and `--dry-run`: the window, the time needed, the verdict.
    pub(crate) fn describe(&self) -> String {
        let human = crate::text::human_duration;
        if self.never_opens {
            return tr!("window-never-opens");
        }
        // For people: in words, the zone named when it is not the machine's.
        let people = |z: &ZonedDateTime| {
            crate::i18n::when(z.timestamp(), z.time_zone()) + &crate::i18n::zone_note(z.time_zone())
        };
        let when = match (&self.opens, &self.closes) {
            (None, Some(c)) => tr!("window-open-until", until = people(c)),
            (None, None) => tr!("window-open-no-close"),
            (Some(o), Some(c)) if o.date() == c.date() => tr!(
                "window-closed-next",
                opens = people(o),
                until = c
                    .strftime(if c.time().second() == 0 {
                        "%H:%M"
                    } else {
                        "%H:%M:%S"
                    })
                    .to_string()
            ),
            (Some(o), Some(c)) => tr!("window-closed-next", opens = people(o), until = people(c)),
            (Some(o), None) => tr!("window-closed-next-no-close", opens = people(o)),
        };
        let left = match self.available {
            Some(a) => tr!("window-sending-time-left", time = human(a)),
            None => String::new(),
        };
        let verdict = if self.fits() {
            tr!("window-fits")
        } else {
            let share = self
                .available
                .map(|a| a.as_secs_f64() / self.needed.as_secs_f64().max(f64::MIN_POSITIVE))
                .unwrap_or(1.0);
            tr!(
                "window-does-not-fit",
                percent = (share * 100.0).floor() as u64
            )
        };
        tr!(
            "window-describe",
            when = when,
            left = left,
            needed = human(self.needed),
            verdict = verdict
        )
    }
}

/// `Tue 2026-03-03 07:00 -05 (America/Bogota)`; seconds shown only when not zero.
pub(crate) fn show(z: &ZonedDateTime) -> String {
    let format = if z.time().second() == 0 {
        "%Y-%m-%d %H:%M %Z (%Q)"
    } else {
        "%Y-%m-%d %H:%M:%S %Z (%Q)"
    };
    let day = match z.weekday() {
        jiff::civil::Weekday::Monday => tr!("weekday-monday"),
        jiff::civil::Weekday::Tuesday => tr!("weekday-tuesday"),
        jiff::civil::Weekday::Wednesday => tr!("weekday-wednesday"),
        jiff::civil::Weekday::Thursday => tr!("weekday-thursday"),
        jiff::civil::Weekday::Friday => tr!("weekday-friday"),
        jiff::civil::Weekday::Saturday => tr!("weekday-saturday"),
        jiff::civil::Weekday::Sunday => tr!("weekday-sunday"),
    };
    let rest = jiff::fmt::strtime::format(format, z).unwrap_or_else(|_| z.to_string());
    format!("{day} {rest}")
}

/// Where the dispatcher reads the time from; tests substitute their own.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// What the dispatcher may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GateState {
    Open,
    /// Closed; `next_open` is `None` if it does not open in the searched range.
    Closed {
        next_open: Option<ZonedDateTime>,
    },
}

/// A contact window checked before every request. It remembers the open period it last
/// saw, so most checks are two comparisons instead of a time-zone computation.
#[derive(Debug)]
pub(crate) struct Gate {
    window: ContactWindow,
    clock: Arc<dyn Clock>,
    /// `[from, until)`: an instant known to be open and when that open period ends.
    open: Mutex<Option<(Timestamp, Timestamp)>>,
}

/// How long an open period with no end in sight is trusted before checking again.
const RECHECK: Duration = Duration::from_secs(3600);

impl Gate {
    pub(crate) fn new(window: ContactWindow, clock: Arc<dyn Clock>) -> Self {
        Self {
            window,
            clock,
            open: Mutex::new(None),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn check(&self) -> GateState {
        let now = self.clock.now();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((from, until)) = *open
            && from <= now
            && now < until
        {
            return GateState::Open;
        }
        if self.window.is_open(now) {
            let until = self
                .window
                .closes_at(now)
                .map(|z| z.timestamp())
                .or_else(|| now.checked_add(RECHECK).ok())
                .unwrap_or(now);
            *open = Some((now, until));
            GateState::Open
        } else {
            *open = None;
            GateState::Closed {
                next_open: self.window.next_open(now),
            }
        }
    }
}

#[cfg(test)]
mod tests {
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
        let w = Week::parse("mon-fri 07:00-12:00 13:00-19:00, sat 08:00-15:00, MON 11:00-13:30")
            .unwrap();
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
        let finish =
            |at: &str, hours: u64| local(w.finish(ts(at), Duration::from_secs(hours * 3600)));
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
        let z =
            ts("2026-03-03T12:00:00Z").to_zoned_datetime(parse_timezone("America/Bogota").unwrap());
        assert_eq!(show(&z), "Tue 2026-03-03 07:00 -05 (America/Bogota)");
        let z =
            ts("2026-03-03T12:00:05Z").to_zoned_datetime(parse_timezone("America/Bogota").unwrap());
        assert_eq!(show(&z), "Tue 2026-03-03 07:00:05 -05 (America/Bogota)");
    }
}
