/*!
Reading one `cdr_3` answer, and what it can and cannot prove.

An answer is refused (`ReportError::Refused`: nothing is changed) when its HTTP
status is not 2xx or its body's `code`, when present, is not 2xx: Wolkvox answers
some errors with HTTP 200 and `{"code":"403","msg":"TOKEN LIMIT EXCEEDED"}`.

An answer that reads is evidence of what it lists; it proves an absence only when
it is complete, and these make it doubtful (`Doubt`): a sign of more pages than
this one (`pages` above 1, a `total` above its items, a link to a next page), as
many items as Wolkvox's cap of 60,000 (counted on the answer's items, readable or
not), and any item the tool cannot read (no telephone, no text, no readable date).

A record's text is kept as listed and, when it differs, with HTML entities decoded
(`&amp;` is `&`): both are looked up. Its date is kept as the civil time it shows
(`Listed::local`), since the report's time zone is not documented; a date with an
offset is an instant.
*/

use jiff::civil::DateTime;
use serde_json::Value;

use super::ReportError;

/// An answer with this many items may have been cut: absence in it proves nothing.
pub(crate) const MAX_RECORDS: usize = 60_000;

/// Why a readable answer cannot prove an absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Doubt {
    /// It says there are more pages than this one, which the tool does not ask for.
    Paginated,
    /// It has as many items as Wolkvox's cap.
    Cut,
    /// Some item has no readable telephone, text or date.
    UnreadableRecord,
}

/// One message the report lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) telephone: String,
    /// The text as listed, and decoded from HTML entities when that differs.
    pub(crate) texts: Vec<String>,
    /// The date as listed (shown to the user).
    pub(crate) date: String,
    pub(crate) when: When,
}

/// When a record was made, as far as its date says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum When {
    /// A civil time in the report's (undocumented) time zone.
    Local(DateTime),
    /// A date with an offset: an instant.
    Instant(jiff::Timestamp),
}

/// A readable answer: its records, its item count and its doubts.
#[derive(Debug, Default)]
pub(crate) struct Answer {
    pub(crate) records: Vec<Record>,
    pub(crate) doubts: Vec<Doubt>,
}

/// Reads a `cdr_3` answer: the records are the first array of objects with a
/// `telephone` and a `message`, wherever it is; an answer with none is an empty report
/// only when it says so plainly (an empty array, or no data at all).
pub(crate) fn parse(status: u16, body: &[u8]) -> Result<Answer, ReportError> {
    let value: Value = serde_json::from_slice(body).map_err(|_| ReportError::Unreadable {
        why: crate::tr!(
            "answer-not-json",
            status = status,
            excerpt = crate::wolkvox::excerpt(&String::from_utf8_lossy(body))
        ),
    })?;
    let msg = value
        .get("msg")
        .map(|m| match m {
            Value::String(s) => crate::wolkvox::excerpt(s),
            Value::Null => String::new(),
            other => crate::wolkvox::excerpt(&other.to_string()),
        })
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        return Err(ReportError::Refused { status, msg });
    }
    // The body's own code, when it has one, must say 2xx too.
    if let Some(code) = value.get("code").filter(|c| !c.is_null()) {
        match code_number(code) {
            Some(c) if (200..300).contains(&c) => {}
            Some(c) => {
                return Err(ReportError::RefusedInBody {
                    code: c.to_string(),
                    msg,
                });
            }
            None => {
                return Err(ReportError::Unreadable {
                    why: crate::tr!(
                        "reconcile-code-unreadable",
                        code = crate::wolkvox::excerpt(&code.to_string())
                    ),
                });
            }
        }
    }
    let mut answer = Answer::default();
    let items = match find_records(&value) {
        Some(items) => items.as_slice(),
        None => {
            // An empty report: an empty array where the records would be, or no data.
            let data = value.get("data");
            if !(data.is_none_or(Value::is_null) || has_empty_array(&value)) {
                return Err(ReportError::Unreadable {
                    why: crate::tr!("reconcile-no-messages"),
                });
            }
            &[]
        }
    };
    for item in items {
        match record(item) {
            Some(r) => answer.records.push(r),
            None => answer.doubts.push(Doubt::UnreadableRecord),
        }
    }
    if items.len() >= MAX_RECORDS {
        answer.doubts.push(Doubt::Cut);
    }
    if more_pages(&value, items.len()) {
        answer.doubts.push(Doubt::Paginated);
    }
    answer.doubts.sort();
    answer.doubts.dedup();
    Ok(answer)
}

/// A `code` as a number, given as one or as a string of digits.
fn code_number(code: &Value) -> Option<i64> {
    match code {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
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
    crate::wolkvox::find_array(value, &|items| {
        items
            .iter()
            .any(|v| v.get("telephone").is_some() && v.get("message").is_some())
    })
}

/// Whether the answer says it is one page of more, in the answer's object or in its
/// `data` object: `pages`/`total_pages`/`last_page` above 1, a `total` (or the like)
/// above `items`, or a link to a next page.
fn more_pages(value: &Value, items: usize) -> bool {
    let mut objects = vec![value];
    if let Some(data) = value.get("data").filter(|d| d.is_object()) {
        objects.push(data);
    }
    let number = |v: &Value| code_number(v).or_else(|| v.as_f64().map(|f| f as i64));
    objects.into_iter().any(|o| {
        let pages = ["pages", "total_pages", "last_page", "page_count"]
            .iter()
            .filter_map(|k| o.get(*k).and_then(number))
            .any(|n| n > 1);
        let total = [
            "total",
            "total_records",
            "records_total",
            "recordsTotal",
            "count",
        ]
        .iter()
        .filter_map(|k| o.get(*k).and_then(number))
        .any(|n| usize::try_from(n).is_ok_and(|n| n > items));
        let next = ["next", "next_page", "next_page_url"]
            .iter()
            .filter_map(|k| o.get(*k))
            .any(|v| match v {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.trim().is_empty(),
                _ => true,
            });
        pages || total || next
    })
}

fn record(item: &Value) -> Option<Record> {
    let text = |key: &str| match item.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let telephone = text("telephone").filter(|t| t.chars().any(|c| c.is_ascii_digit()))?;
    let message = text("message")?;
    let date = text("date")?;
    let when = parse_date(&date)?;
    let mut texts = vec![message];
    let decoded = decode_entities(&texts[0]);
    if decoded != texts[0] {
        texts.push(decoded);
    }
    Some(Record {
        telephone,
        texts,
        date,
        when,
    })
}

/// A report date: an instant when it carries an offset, else a civil time in one of
/// the usual forms (`2026-11-30 10:00:05`, with `T` or `/`, or `20261130100005`).
pub(crate) fn parse_date(text: &str) -> Option<When> {
    let t = text.trim();
    if let Ok(ts) = t.parse::<jiff::Timestamp>() {
        return Some(When::Instant(ts));
    }
    if let Ok(dt) = t.replace('/', "-").parse::<DateTime>() {
        return Some(When::Local(dt));
    }
    for format in ["%Y%m%d%H%M%S", "%Y-%m-%d %H:%M", "%d/%m/%Y %H:%M:%S"] {
        if let Ok(dt) = DateTime::strptime(format, t) {
            return Some(When::Local(dt));
        }
    }
    None
}

/// `text` with HTML character references decoded: the named ones a report may use
/// (`&amp;`, `&lt;`, `&gt;`, `&quot;`, `&apos;`, `&nbsp;`) and numeric ones. Anything
/// else is kept as written.
pub(crate) fn decode_entities(text: &str) -> String {
    if !text.contains('&') {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let end = rest[1..].find(';').map(|j| j + 1).filter(|&j| j <= 10);
        let decoded = end.and_then(|j| entity(&rest[1..j]).map(|c| (c, j)));
        match decoded {
            Some((c, j)) => {
                out.push(c);
                rest = &rest[j + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

fn entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some('\u{a0}'),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix(['x', 'X']) {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_found_in_any_nesting_and_empty_reports_are_empty() {
        let record = serde_json::json!({"telephone": "573001234567", "message": "Hola", "date": "2026-11-30 10:00:00", "channel": "WhatsApp"});
        for answer in [
            serde_json::json!({"code": 200, "data": [record.clone()]}),
            serde_json::json!({"code": "200", "data": {"records": [record.clone()]}}),
            serde_json::json!([record.clone()]),
        ] {
            let a = parse(200, answer.to_string().as_bytes()).unwrap();
            assert_eq!(a.records.len(), 1, "{answer}");
            assert_eq!(a.records[0].texts, ["Hola"]);
            assert!(a.doubts.is_empty());
        }
        for empty in [
            &br#"{"code":200,"data":[]}"#[..],
            br#"{"code":200,"data":{"records":[]}}"#,
            br#"{"code":200,"msg":"no records"}"#,
        ] {
            let a = parse(200, empty).unwrap();
            assert!(a.records.is_empty() && a.doubts.is_empty());
        }
        assert!(matches!(
            parse(200, br#"{"code":200,"data":{"rows":"x"}}"#),
            Err(ReportError::Unreadable { .. })
        ));
        assert!(matches!(
            parse(200, b"<html>"),
            Err(ReportError::Unreadable { .. })
        ));
    }

    #[test]
    fn errors_in_a_200_answer_are_refusals() {
        assert!(matches!(
            parse(403, br#"{"code":403,"msg":"TOKEN LIMIT EXCEEDED"}"#),
            Err(ReportError::Refused { status: 403, .. })
        ));
        for (body, code) in [
            (&br#"{"code":"403","msg":"TOKEN LIMIT EXCEEDED"}"#[..], 403),
            (br#"{"code":400,"msg":"BAD REQUEST","data":[]}"#, 400),
            (br#"{"code":500,"error":"x","msg":null}"#, 500),
        ] {
            match parse(200, body) {
                Err(ReportError::RefusedInBody { code: c, .. }) => assert_eq!(c, code.to_string()),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            parse(200, br#"{"code":"ok?","data":[]}"#),
            Err(ReportError::Unreadable { .. })
        ));
    }

    #[test]
    fn pages_caps_and_unreadable_records_are_doubts() {
        let paged = parse(200, br#"{"data":[],"total":85000,"page":1,"pages":2}"#).unwrap();
        assert_eq!(paged.doubts, [Doubt::Paginated]);
        let total = parse(
            200,
            br#"{"code":200,"data":{"records":[{"telephone":"57300","message":"a","date":"2026-01-01 00:00:00"}],"total":"2"}}"#,
        )
        .unwrap();
        assert_eq!(total.doubts, [Doubt::Paginated]);
        let one_page = parse(
            200,
            br#"{"code":200,"data":[],"total":0,"page":1,"pages":1}"#,
        )
        .unwrap();
        assert!(one_page.doubts.is_empty());
        let null = parse(
            200,
            br#"[{"telephone":"57300","message":null,"date":"2026-01-01 00:00:00"},{"telephone":"57300","message":"a","date":"2026-01-01 00:00:00"}]"#,
        )
        .unwrap();
        assert_eq!(null.records.len(), 1);
        assert_eq!(null.doubts, [Doubt::UnreadableRecord]);
        let no_date = parse(
            200,
            br#"[{"telephone":"57300","message":"a","date":"ayer"}]"#,
        )
        .unwrap();
        assert_eq!(no_date.doubts, [Doubt::UnreadableRecord]);
        let mut items = Vec::new();
        for i in 0..MAX_RECORDS {
            items.push(serde_json::json!({"telephone": format!("57{i}"), "message": "x", "date": "2026-01-01 00:00:00"}));
        }
        let cut = parse(200, serde_json::to_vec(&items).unwrap().as_slice()).unwrap();
        assert_eq!(cut.doubts, [Doubt::Cut]);
    }

    #[test]
    fn dates_and_entities() {
        let local = |s: &str| match parse_date(s) {
            Some(When::Local(dt)) => dt.to_string(),
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(local("2026-11-30 10:00:05"), "2026-11-30T10:00:05");
        assert_eq!(local("2026-11-30T10:00:05"), "2026-11-30T10:00:05");
        assert_eq!(local("2026/11/30 10:00:05"), "2026-11-30T10:00:05");
        assert_eq!(local("20261130100005"), "2026-11-30T10:00:05");
        assert!(matches!(
            parse_date("2026-11-30T15:00:05Z"),
            Some(When::Instant(_))
        ));
        assert_eq!(parse_date("mañana"), None);
        assert_eq!(
            decode_entities(
                "Pago &amp; saldo: &lt;pendiente&gt; &#241;&#xF1; &quot;x&quot; & y &bogus;"
            ),
            "Pago & saldo: <pendiente> ññ \"x\" & y &bogus;"
        );
    }
}
