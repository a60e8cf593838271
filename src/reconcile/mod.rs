/*!
Settling `unknown` rows with Wolkvox's own record of outbound messages: report
"3. SMS – detail" (`cdr_3`), which lists each message sent in a date range with
its telephone and exact text.

A row is matched by content, as the journal keys rows: the report's telephone
(in `+`, national or full form, read against the campaign's own numbers) and its
text (as listed, or with HTML entities decoded) give the same key
(`validate::content_key`, "the same message") as the row's. A national number
that two of the campaign's numbers share settles neither.

Presence: a record counts only if it is dated at or after the attempt (the start
of the run of the row's first intent, less `ALLOWANCE` for clocks), and one record
confirms at most one attempt; the campaign's own `sent` rows take theirs first.
The report's time zone is not documented: its dates are read as civil times and
placed on the machine's clock by the offset the campaign's own `sent` rows show
(record date minus answer time, two or more agreeing); else by the campaign's zone,
and a matching record dated before the attempt by less than any two zones differ
leaves the row undecided rather than absent.

Absence is proof only when the report demonstrably covers the attempt: the query
reaches two days past now (past the attempt in any zone), every answer is a
complete report (`answer::Doubt`), it lists this campaign's own `sent` rows of
the period (none listed, or some missing: it proves nothing), and it was asked
`--settle-after` past the attempt. Otherwise the row stays `unknown`, with why.
Templates are not matched (the report's text of a template send is not
documented), so HSM rows stay `unknown`.

Wolkvox's rules are kept: at most 31 days a query (a longer span is split), and
at most one call every 5 minutes (per token; the journal remembers the last
call across runs). The pure parts here (span, windows, schedule, parsing,
matching) take the time as an argument, so they are tested without waiting (in
`reconcile/tests.rs`).
*/

pub(crate) mod answer;

use std::collections::{HashMap, HashSet};

use jiff::{SignedDuration, Timestamp, tz::TimeZone};

pub(crate) use answer::{Answer, Doubt};

use crate::validate::{Message, content_key, phone};

/// The report's API name.
pub(crate) const REPORT_API: &str = "cdr_3";
/// Wolkvox asks for at most one report call every 5 minutes.
pub(crate) const MIN_GAP: SignedDuration = SignedDuration::from_mins(5);
/// The longest span one query may cover.
const MAX_SPAN: SignedDuration = SignedDuration::from_hours(31 * 24);
/// How far the span is widened on each side: the report's time zone is not
/// documented, and civil times of two zones differ by at most 26 hours.
const MARGIN: SignedDuration = SignedDuration::from_hours(48);
/// How far a record may be dated before an attempt and still be its: the clocks of
/// this machine and of Wolkvox may differ a little.
const ALLOWANCE: SignedDuration = SignedDuration::from_mins(5);
/// Civil times of two zones differ by at most 26 hours (UTC-12 to UTC+14), plus the
/// allowance: a record this much before an attempt may be its, in another zone.
const ZONE_BAND: SignedDuration = SignedDuration::from_hours(27);

/// Why a report answer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}", crate::tr!("reconcile-refused", status = *.status, msg = .msg))]
    Refused { status: u16, msg: String },
    #[error("{}", crate::tr!("reconcile-refused-in-body", code = .code.as_str(), msg = .msg))]
    RefusedInBody { code: String, msg: String },
    #[error("{}", crate::tr!("reconcile-unreadable", why = .why))]
    Unreadable { why: String },
}

/// The span to ask for: from two days before the earliest attempt to two days after
/// `now`, so that it covers every attempt and everything up to now whatever the
/// report's time zone (a report cannot list what has not happened yet).
pub(crate) fn span(attempts: &[Timestamp], now: Timestamp) -> Option<(Timestamp, Timestamp)> {
    let first = attempts.iter().min()?.checked_sub(MARGIN).ok()?;
    let last = now.checked_add(MARGIN).ok()?;
    Some((first.min(now), last))
}

/// `start..end` cut into windows of at most 31 days.
pub(crate) fn windows(start: Timestamp, end: Timestamp) -> Vec<(Timestamp, Timestamp)> {
    let mut out = Vec::new();
    let mut from = start;
    while from < end {
        let to = from.checked_add(MAX_SPAN).map_or(end, |t| t.min(end));
        out.push((from, to));
        from = to;
    }
    if out.is_empty() {
        out.push((start, end));
    }
    out
}

/// When to make each of `calls` calls with `tokens` tokens, in turn: each token at most
/// once every 5 minutes, and none before 5 minutes after `last` (the last call recorded
/// in the journal, whichever token made it). Pairs of (token index, time).
pub(crate) fn schedule(
    calls: usize,
    tokens: usize,
    last: Option<Timestamp>,
    now: Timestamp,
) -> Vec<(usize, Timestamp)> {
    let tokens = tokens.max(1);
    let earliest = last
        .and_then(|l| l.checked_add(MIN_GAP).ok())
        .map_or(now, |t| t.max(now));
    let mut free = vec![earliest; tokens];
    (0..calls)
        .map(|i| {
            let token = i % tokens;
            let at = free[token];
            free[token] = at.checked_add(MIN_GAP).unwrap_or(at);
            (token, at)
        })
        .collect()
}

/// A report date, as the API takes it: `YYYYmmddHHiiss` in the operation's time zone.
pub(crate) fn report_date(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned_datetime(tz.clone())
        .strftime("%Y%m%d%H%M%S")
        .to_string()
}

/// The campaign's own telephones, to read a report's number in whatever form it
/// lists it: `+57 300...`, `300...` (national) or `57300...`.
#[derive(Debug, Default)]
pub(crate) struct Phones {
    known: HashSet<String>,
    /// The national part of each known number (without a country code of 1 to 3
    /// digits) -> the numbers that have it.
    national: HashMap<String, Vec<String>>,
    country: Option<phone::Country>,
}

/// Fewer digits than this are not taken as a national number.
const MIN_NATIONAL: usize = 7;

impl Phones {
    pub(crate) fn new(
        numbers: impl IntoIterator<Item = String>,
        country: Option<phone::Country>,
    ) -> Self {
        let mut out = Phones {
            country,
            ..Phones::default()
        };
        for n in numbers {
            if out.known.contains(&n) {
                continue;
            }
            for cc in 1..=3 {
                if let Some(national) = n.get(cc..).filter(|s| s.len() >= MIN_NATIONAL) {
                    out.national
                        .entry(national.to_owned())
                        .or_default()
                        .push(n.clone());
                }
            }
            out.known.insert(n);
        }
        out
    }

    /// The campaign's numbers a report's number may be: one when it is plain; all of
    /// those sharing a national number written without its country code; none for a
    /// number not of this campaign.
    fn resolve(&self, raw: &str) -> Vec<String> {
        if let Ok(n) = phone::normalize(raw, self.country)
            && self.known.contains(&n)
        {
            return vec![n];
        }
        let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
        if self.known.contains(&digits) {
            return vec![digits];
        }
        // A national number, perhaps with a trunk 0 (Ecuador's 099...).
        let national = digits.trim_start_matches('0');
        self.national.get(national).cloned().unwrap_or_default()
    }
}

/// A row's attempt as the journal dates it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Attempt {
    /// Its content key (with `#n` for a deliberate copy).
    pub(crate) key: String,
    /// No request for it left before this: the start of the run of its first intent.
    pub(crate) from: Timestamp,
    /// Its last attempt had ended by this.
    pub(crate) until: Timestamp,
    /// For a `sent` row: `until` is when Wolkvox's answer came (not a reconcile's check).
    pub(crate) answered: bool,
}

impl Attempt {
    fn base(&self) -> &str {
        // Copies of a message sent on purpose (--allow-duplicates) carry `#n`.
        self.key.split('#').next().unwrap_or(&self.key)
    }
}

/// A record as placed on a time line.
#[derive(Debug)]
struct Listed {
    /// Its date as a civil time read as if in UTC, in seconds, or its instant.
    seconds: i64,
    absolute: bool,
    date: String,
}

/// What the report says: the messages it lists, by content key, and whether it can
/// prove an absence.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    listed: Vec<Listed>,
    by_key: HashMap<String, Vec<usize>>,
    /// Records whose number may be any of several of the campaign's, by content key.
    ambiguous: HashMap<String, Vec<usize>>,
    /// Why some answer cannot prove an absence.
    pub(crate) doubts: Vec<Doubt>,
    /// When the report was last asked: it covers up to here.
    pub(crate) until: Option<Timestamp>,
}

impl Evidence {
    /// Adds an answer asked for at `asked` (with a span reaching past it).
    pub(crate) fn add(&mut self, answer: Answer, asked: Timestamp, phones: &Phones) {
        self.until = Some(self.until.map_or(asked, |u| u.max(asked)));
        self.doubts.extend(answer.doubts);
        self.doubts.sort();
        self.doubts.dedup();
        for r in answer.records {
            let (seconds, absolute) = match r.when {
                answer::When::Local(dt) => (
                    dt.to_zoned_datetime(TimeZone::UTC)
                        .map_or(i64::MIN, |z| z.timestamp().as_second()),
                    false,
                ),
                answer::When::Instant(ts) => (ts.as_second(), true),
            };
            let index = self.listed.len();
            self.listed.push(Listed {
                seconds,
                absolute,
                date: r.date,
            });
            let telephones = phones.resolve(&r.telephone);
            let mut keys: Vec<String> = telephones
                .iter()
                .flat_map(|t| {
                    r.texts
                        .iter()
                        .map(move |text| content_key(t, &Message::Free { text: text.clone() }))
                })
                .collect();
            keys.sort();
            keys.dedup();
            // A national number two of the campaign's numbers share: the record may be
            // either's, so it confirms neither and proves neither absent.
            let target = if telephones.len() > 1 {
                &mut self.ambiguous
            } else {
                &mut self.by_key
            };
            for key in keys {
                target.entry(key).or_default().push(index);
            }
        }
    }
}

/// Why a row stays `unknown`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Why {
    /// An HSM template (or a journal too old to say).
    Template,
    /// An answer that cannot prove an absence.
    Doubt(Doubt),
    /// The report lists none of this campaign's `sent` rows of the period.
    NoOwnSent,
    /// The report does not list this many of this campaign's `sent` rows.
    OwnSentMissing(usize),
    /// The report lists this message only before the attempt (an earlier message, or
    /// a report in another time zone): on this date.
    Before(String),
    /// The report lists this text to a number written without its country code that
    /// is also another of the campaign's numbers: as this.
    AmbiguousPhone(String),
}

impl Why {
    /// In the current language.
    pub(crate) fn text(&self) -> String {
        match self {
            Why::Template => crate::tr!("reconcile-undecided-template"),
            Why::Doubt(Doubt::Cut) => crate::tr!("reconcile-undecided-cut"),
            Why::Doubt(Doubt::Paginated) => crate::tr!("reconcile-undecided-paginated"),
            Why::Doubt(Doubt::UnreadableRecord) => crate::tr!("reconcile-undecided-unreadable"),
            Why::NoOwnSent => crate::tr!("reconcile-undecided-no-own-sent"),
            Why::OwnSentMissing(n) => crate::tr!("reconcile-undecided-own-sent-missing", rows = *n),
            Why::Before(date) => crate::tr!("reconcile-undecided-before", date = date),
            Why::AmbiguousPhone(date) => {
                crate::tr!("reconcile-undecided-ambiguous-phone", date = date)
            }
        }
    }
}

/// What reconciling decides for one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Settlement {
    /// The report lists the message: it was sent (on this date, as the report says).
    Sent { date: String },
    /// Absent from a report that covers well past the attempt: not sent.
    NotSent,
    /// Absent, but the report does not reach `until` yet: decide later.
    TooRecent { until: Timestamp },
    /// Cannot be decided from the report: why.
    Undecided(Why),
}

/// How the report's dates are placed on this machine's clock: instant = date read as
/// UTC minus `offset` seconds. `confirmed` when the campaign's own `sent` rows show it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Placement {
    offset: i64,
    confirmed: bool,
}

/// The offset the campaign's own answered `sent` rows show, each with the one record of
/// its message (its date minus its answer's time), when two or more agree; else
/// `zone_offset` (the campaign's zone's), unconfirmed.
fn placement(
    all: &[&Attempt],
    sent: &[Attempt],
    evidence: &Evidence,
    zone_offset: i64,
) -> Placement {
    let mut per_base: HashMap<&str, usize> = HashMap::new();
    for a in all {
        *per_base.entry(a.base()).or_default() += 1;
    }
    let mut shown: Vec<i64> = sent
        .iter()
        .filter(|s| s.answered && per_base.get(s.base()) == Some(&1))
        .filter_map(|s| match evidence.by_key.get(s.base())?.as_slice() {
            [only] => {
                let l = &evidence.listed[*only];
                (!l.absolute).then(|| l.seconds.saturating_sub(s.until.as_second()))
            }
            _ => None,
        })
        .collect();
    shown.sort_unstable();
    let agree = match (shown.first(), shown.last()) {
        (Some(lo), Some(hi)) => hi - lo <= 2 * ALLOWANCE.as_secs(),
        _ => false,
    };
    // A shown offset beyond what any zone (and a clock allowance) explains is noise.
    let plausible = |o: i64| (o - zone_offset).abs() <= ZONE_BAND.as_secs();
    match shown.get(shown.len() / 2) {
        // One row alone could be matched with another message's record (its own
        // missing): it takes two that agree.
        Some(&median) if shown.len() >= 2 && agree && plausible(median) => Placement {
            offset: median,
            confirmed: true,
        },
        _ => Placement {
            offset: zone_offset,
            confirmed: false,
        },
    }
}

/// Decides every `unknown` row from the evidence, in order. `sent` are the campaign's
/// own `sent` rows of the period (they take their records first and show that the
/// report covers it); `zone_offset` is the campaign's zone's offset from UTC, in
/// seconds; `template` rows cannot be matched.
pub(crate) fn settle_all(
    unknown: &[Attempt],
    sent: &[Attempt],
    template: bool,
    evidence: &Evidence,
    settle_after: SignedDuration,
    zone_offset: i64,
) -> Vec<Settlement> {
    if template {
        return vec![Settlement::Undecided(Why::Template); unknown.len()];
    }
    let all: Vec<&Attempt> = sent.iter().chain(unknown).collect();
    let place = placement(&all, sent, evidence, zone_offset);
    let at = |i: usize| {
        let l = &evidence.listed[i];
        if l.absolute {
            l.seconds
        } else {
            l.seconds.saturating_sub(place.offset)
        }
    };
    let earliest = |a: &Attempt| a.from.as_second().saturating_sub(ALLOWANCE.as_secs());
    let mut used: HashSet<usize> = HashSet::new();
    // Each attempt, latest first, takes the earliest free record dated at or after it:
    // records any attempt may take go last, so as many attempts as possible find one.
    let take = |a: &Attempt, used: &mut HashSet<usize>| -> Option<usize> {
        let records = evidence.by_key.get(a.base())?;
        let found = records
            .iter()
            .copied()
            .filter(|&i| !used.contains(&i) && at(i) >= earliest(a))
            .min_by_key(|&i| (at(i), i))?;
        used.insert(found);
        Some(found)
    };
    let by_latest = |list: &[Attempt]| {
        let mut order: Vec<usize> = (0..list.len()).collect();
        order.sort_by_key(|&i| std::cmp::Reverse((list[i].from, list[i].until)));
        order
    };
    let until = evidence.until;
    let (mut own_found, mut own_missing) = (0usize, 0usize);
    for i in by_latest(sent) {
        let s = &sent[i];
        if take(s, &mut used).is_some() {
            own_found += 1;
        } else if until.is_some_and(|u| s.until.checked_add(settle_after).is_ok_and(|n| n <= u)) {
            own_missing += 1;
        }
    }
    // What the answers themselves lack comes first; what the campaign's own rows show
    // may change as late messages show up, so a too recent row says when to look again.
    let doubt = evidence.doubts.first().map(|d| Why::Doubt(*d));
    let coverage = (own_found == 0)
        .then_some(Why::NoOwnSent)
        .or((own_missing > 0).then_some(Why::OwnSentMissing(own_missing)));
    let mut out = vec![Settlement::NotSent; unknown.len()];
    for i in by_latest(unknown) {
        let u = &unknown[i];
        out[i] = if let Some(r) = take(u, &mut used) {
            Settlement::Sent {
                date: evidence.listed[r].date.clone(),
            }
        } else if let Some(date) = listed_before(u, evidence, &at, place, &used) {
            Settlement::Undecided(Why::Before(date))
        } else if let Some(&r) = evidence.ambiguous.get(u.base()).and_then(|r| r.first()) {
            Settlement::Undecided(Why::AmbiguousPhone(evidence.listed[r].date.clone()))
        } else if let Some(why) = &doubt {
            Settlement::Undecided(why.clone())
        } else {
            let needed = u.until.checked_add(settle_after).unwrap_or(u.until);
            match (until, &coverage) {
                (Some(until), _) if until < needed => Settlement::TooRecent { until: needed },
                (None, _) => Settlement::TooRecent { until: needed },
                (Some(_), Some(why)) => Settlement::Undecided(why.clone()),
                (Some(_), None) => Settlement::NotSent,
            }
        };
    }
    out
}

/// The date of a record of `attempt`'s message dated before it by less than the
/// placement's uncertainty (a report in an unknown zone), if any.
fn listed_before(
    attempt: &Attempt,
    evidence: &Evidence,
    at: &impl Fn(usize) -> i64,
    place: Placement,
    used: &HashSet<usize>,
) -> Option<String> {
    if place.confirmed {
        return None;
    }
    let earliest = attempt.from.as_second().saturating_sub(ALLOWANCE.as_secs());
    let band = earliest.saturating_sub(ZONE_BAND.as_secs());
    evidence
        .by_key
        .get(attempt.base())?
        .iter()
        .filter(|&&i| !used.contains(&i) && !evidence.listed[i].absolute)
        .filter(|&&i| (band..earliest).contains(&at(i)))
        .map(|&i| evidence.listed[i].date.clone())
        .next()
}

#[cfg(test)]
mod tests;
