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
so tests can substitute one without touching the real clock (`gate`). The
unit tests are in `window/tests.rs`.
*/

use std::collections::BTreeSet;
use std::time::Duration;

use crate::tr;
use jiff::civil::{Date, Weekday};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

mod gate;

pub(crate) use gate::{Gate, GateState, SystemClock};

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

#[cfg(test)]
mod tests;
