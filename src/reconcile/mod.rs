/*!
Settling `unknown` rows with Wolkvox's own record of outbound messages: report
"3. SMS – detail" (`cdr_3`), which lists each message sent in a date range with
its telephone and exact text.

A row is matched by content, as the journal keys rows: the normalized telephone
plus the message text give the same key (`validate::content_key`) as the row's.
Found: the row was sent. Not found in a report that covers well past the row's
attempt (`--settle-after`): it was not, and a plain `--resume` sends it once.
Too recent: left `unknown` until then. Templates are not matched (the report's
text of a template send is not documented), so HSM rows stay `unknown`.

Wolkvox's rules are kept: at most 31 days a query (a longer span is split), and
at most one call every 5 minutes (per token; the journal remembers the last
call across runs). The pure parts here (span, windows, schedule, parsing,
matching) take the time as an argument, so they are tested without waiting.
*/

use std::collections::HashMap;

use jiff::{SignedDuration, Timestamp, tz::TimeZone};
use serde_json::Value;

use crate::journal::Unsettled;
use crate::validate::{Message, content_key, phone};

/// The report's API name.
pub(crate) const REPORT_API: &str = "cdr_3";
/// Wolkvox asks for at most one report call every 5 minutes.
pub(crate) const MIN_GAP: SignedDuration = SignedDuration::from_mins(5);
/// The longest span one query may cover.
const MAX_SPAN: SignedDuration = SignedDuration::from_hours(31 * 24);
/// How far the span is widened on each side: the report's time zone is not documented.
const MARGIN: SignedDuration = SignedDuration::from_hours(24);
/// An answer with this many records may have been cut: absence in it proves nothing.
pub(crate) const MAX_RECORDS: usize = 60_000;

/// Why a report answer cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{}", crate::tr!("reconcile-refused", status = *.status, msg = .msg))]
    Refused { status: u16, msg: String },
    #[error("{}", crate::tr!("reconcile-unreadable", why = .why))]
    Unreadable { why: String },
}

/// One message the report lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) telephone: String,
    pub(crate) message: String,
    pub(crate) date: String,
}

/// Reads a `cdr_3` answer: the records are the first array of objects with a
/// `telephone` and a `message`, wherever it is; an answer with none is an empty report
/// only when it says so plainly (an empty array, or no data at all with a 2xx code).
pub(crate) fn parse(status: u16, body: &[u8]) -> Result<Vec<Record>, ReportError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ReportError::Unreadable {
        why: crate::tr!(
            "answer-not-json",
            status = status,
            excerpt = crate::send::api::excerpt(&String::from_utf8_lossy(body))
        ),
    })?;
    let msg = value
        .get("msg")
        .and_then(Value::as_str)
        .map(crate::send::api::excerpt)
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(ReportError::Refused { status, msg });
    }
    if let Some(items) = find_records(&value) {
        return Ok(items.iter().filter_map(record).collect());
    }
    // An empty report: an empty array where the records would be, or no data at all.
    let data = value.get("data");
    if data.is_none_or(|d| d.is_null()) || has_empty_array(&value) {
        return Ok(Vec::new());
    }
    Err(ReportError::Unreadable {
        why: crate::tr!("reconcile-no-messages"),
    })
}

fn has_empty_array(value: &Value) -> bool {
    match value {
        Value::Array(items) => items.is_empty() || items.iter().any(has_empty_array),
        Value::Object(map) => map.values().any(has_empty_array),
        _ => false,
    }
}

/// The first array, at any depth, holding a message with a `telephone` and a `message`.
fn find_records(value: &Value) -> Option<&Vec<Value>> {
    crate::send::api::find_array(value, &|items| {
        items
            .iter()
            .any(|v| v.get("telephone").is_some() && v.get("message").is_some())
    })
}

fn record(item: &Value) -> Option<Record> {
    let text = |key: &str| match item.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    Some(Record {
        telephone: text("telephone")?,
        message: text("message")?,
        date: text("date").unwrap_or_default(),
    })
}

/// The span to ask for: from a day before the earliest attempt to a day after the
/// latest, never past `now`.
pub(crate) fn span(attempts: &[Timestamp], now: Timestamp) -> Option<(Timestamp, Timestamp)> {
    let first = attempts.iter().min()?.checked_sub(MARGIN).ok()?;
    let last = attempts.iter().max()?.checked_add(MARGIN).ok()?;
    Some((first, last.min(now)))
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

/// The end date to ask for a window ending at `to`: a minute later, since dates are
/// whole seconds and a message of the last second must not be cut off. (The evidence
/// still counts only up to `to`: nothing later is proven absent.)
pub(crate) fn report_end(to: Timestamp, tz: &TimeZone) -> String {
    report_date(
        to.checked_add(SignedDuration::from_mins(1)).unwrap_or(to),
        tz,
    )
}

/// A report date, as the API takes it: `YYYYmmddHHiiss` in the operation's time zone.
pub(crate) fn report_date(t: Timestamp, tz: &TimeZone) -> String {
    t.to_zoned_datetime(tz.clone())
        .strftime("%Y%m%d%H%M%S")
        .to_string()
}

/// What the report says: the content key of every message it lists, with its date.
#[derive(Debug, Default)]
pub(crate) struct Evidence {
    found: HashMap<String, String>,
    /// The report covers up to here.
    pub(crate) until: Option<Timestamp>,
    /// Some answer may have been cut at `MAX_RECORDS`: absence proves nothing.
    pub(crate) cut: bool,
}

impl Evidence {
    /// Adds an answer for a window ending at `until`.
    pub(crate) fn add(
        &mut self,
        records: &[Record],
        until: Timestamp,
        country: Option<crate::validate::phone::Country>,
    ) {
        self.cut |= records.len() >= MAX_RECORDS;
        self.until = Some(self.until.map_or(until, |u| u.max(until)));
        for r in records {
            let telephone = phone::normalize(&r.telephone, country)
                .unwrap_or_else(|_| r.telephone.chars().filter(char::is_ascii_digit).collect());
            // The exact text, and the text as a list cell would give it (trimmed).
            for text in [r.message.as_str(), r.message.trim()] {
                let key = content_key(
                    &telephone,
                    &Message::Free {
                        text: text.to_owned(),
                    },
                );
                self.found.entry(key).or_insert_with(|| r.date.clone());
            }
        }
    }

    fn date_of(&self, key: &str) -> Option<&str> {
        // Copies of a message sent on purpose (--allow-duplicates) carry `#n`.
        let base = key.split('#').next().unwrap_or(key);
        self.found.get(base).map(String::as_str)
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
    /// Why, as a catalogue id (shown in the current language).
    Undecided(&'static str),
}

/// Decides one row from the evidence. `attempted` is when its last attempt ended (or,
/// for a request in flight at a kill, the latest it can have been); `template` rows
/// cannot be matched.
pub(crate) fn settle(
    row: &Unsettled,
    attempted: Timestamp,
    template: bool,
    evidence: &Evidence,
    settle_after: SignedDuration,
) -> Settlement {
    if template {
        return Settlement::Undecided("reconcile-undecided-template");
    }
    if let Some(date) = evidence.date_of(&row.key) {
        return Settlement::Sent {
            date: date.to_owned(),
        };
    }
    if evidence.cut {
        return Settlement::Undecided("reconcile-undecided-cut");
    }
    let needed = attempted.checked_add(settle_after).unwrap_or(attempted);
    match evidence.until {
        Some(until) if until >= needed => Settlement::NotSent,
        _ => Settlement::TooRecent { until: needed },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn records_are_found_in_any_nesting_and_empty_reports_are_empty() {
        let record = serde_json::json!({"telephone": "573001234567", "message": "Hola", "date": "2026-11-30 10:00:00", "channel": "WhatsApp"});
        for answer in [
            serde_json::json!({"code": 200, "data": [record.clone()]}),
            serde_json::json!({"code": 200, "data": {"records": [record.clone()]}}),
            serde_json::json!([record.clone()]),
        ] {
            let records = parse(200, answer.to_string().as_bytes()).unwrap();
            assert_eq!(records.len(), 1, "{answer}");
            assert_eq!(records[0].message, "Hola");
        }
        assert!(parse(200, br#"{"code":200,"data":[]}"#).unwrap().is_empty());
        assert!(
            parse(200, br#"{"code":200,"data":{"records":[]}}"#)
                .unwrap()
                .is_empty()
        );
        assert!(
            parse(200, br#"{"code":200,"msg":"no records"}"#)
                .unwrap()
                .is_empty()
        );
        assert!(matches!(
            parse(200, br#"{"code":200,"data":{"rows":"x"}}"#),
            Err(ReportError::Unreadable { .. })
        ));
        assert!(matches!(
            parse(200, b"<html>"),
            Err(ReportError::Unreadable { .. })
        ));
        assert!(matches!(
            parse(403, br#"{"code":403,"msg":"TOKEN LIMIT EXCEEDED"}"#),
            Err(ReportError::Refused { status: 403, .. })
        ));
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
        // The span: a day on each side of the attempts, never past now.
        let now = ts("2026-11-30T12:00:00Z");
        assert_eq!(
            span(
                &[ts("2026-11-29T10:00:00Z"), ts("2026-11-30T11:00:00Z")],
                now
            ),
            Some((ts("2026-11-28T10:00:00Z"), now))
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

    fn unsettled(telephone: &str, text: &str, suffix: &str) -> Unsettled {
        let key = content_key(telephone, &Message::Free { text: text.into() });
        Unsettled {
            key: format!("{key}{suffix}"),
            row: 1,
            telephone: telephone.into(),
            finished_at: None,
            outcome: None,
        }
    }

    #[test]
    fn rows_are_settled_by_telephone_and_text_once_the_report_covers_them() {
        let mut evidence = Evidence::default();
        let records = vec![Record {
            telephone: "+57 300 123 4567".into(),
            message: "Hola Ana ".into(),
            date: "2026-11-30 10:00:05".into(),
        }];
        let until = ts("2026-11-30T12:00:00Z");
        evidence.add(&records, until, None);
        let attempted = ts("2026-11-30T10:00:00Z");
        let half_hour = SignedDuration::from_mins(30);
        let found = unsettled("573001234567", "Hola Ana", "");
        assert_eq!(
            settle(&found, attempted, false, &evidence, half_hour),
            Settlement::Sent {
                date: "2026-11-30 10:00:05".into()
            }
        );
        // A deliberate copy (#1) of the same message is matched too.
        assert!(matches!(
            settle(
                &unsettled("573001234567", "Hola Ana", "#1"),
                attempted,
                false,
                &evidence,
                half_hour
            ),
            Settlement::Sent { .. }
        ));
        let other = unsettled("573001234567", "Hola Luis", "");
        assert_eq!(
            settle(&other, attempted, false, &evidence, half_hour),
            Settlement::NotSent
        );
        // Attempted 11:45: the report must reach 12:15.
        let recent = ts("2026-11-30T11:45:00Z");
        assert_eq!(
            settle(&other, recent, false, &evidence, half_hour),
            Settlement::TooRecent {
                until: ts("2026-11-30T12:15:00Z")
            }
        );
        assert!(matches!(
            settle(&found, attempted, true, &evidence, half_hour),
            Settlement::Undecided(_)
        ));
        evidence.cut = true;
        assert!(matches!(
            settle(&other, attempted, false, &evidence, half_hour),
            Settlement::Undecided(_)
        ));
    }
}
