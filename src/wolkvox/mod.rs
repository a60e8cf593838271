/*!
Wolkvox's vocabulary, as every stage that reads its answers needs it: what an answer
to a send means (`answer`: the response-code table, read from the body's `code` and
`msg`), what `token_info` says of a token (`token_info`), what would fix a refusal that
sending again cannot (`fix_for`), where the list in an answer is (`find_array`: the
templates of `list_templates`, the records of a report), and how an untrusted text is
cut down to a short excerpt for the results file (`excerpt`).

`send` classifies its answers here, `report` and the workbook say what fixes a refusal
and `reconcile` reads the reports' records, so none of them needs the others: reading
results does not depend on the sender.

A leaf: pure functions of what Wolkvox said, with no HTTP and no files; it uses only
`i18n` (the words of a fix) and `text`.
*/

mod answer;
pub(crate) mod token_info;

pub(crate) use answer::{
    Answer, AnswerError, Reply, SettingProblem, Throttle, TokenProblem, classify, from_gateway,
    throttle,
};
pub(crate) use token_info::{TokenInfo, parse_token_info};

use crate::tr;

/// A send's answer body as Wolkvox writes it, for the unit tests of the parts.
#[cfg(test)]
fn test_body(code: &str, error: &str, msg: &str) -> Vec<u8> {
    format!(r#"{{"code":{code},"error":{error},"msg":"{msg}"}}"#).into_bytes()
}

/// How much of an unexpected body goes into the results file.
const EXCERPT_CHARS: usize = 200;

/// What would fix a refusal that sending again cannot, judged from its `msg`.
pub(crate) fn fix_for(msg: &str) -> Option<String> {
    let upper = msg.to_uppercase();
    if upper.contains("24") && (upper.contains("WINDOW") || upper.contains("HOUR")) {
        Some(tr!("fix-24-hour-window"))
    } else if upper.contains("PARAMETERS ARE REQUIRED") {
        Some(tr!("fix-parameter-missing"))
    } else if upper.contains("CONNECTOR") {
        Some(tr!("fix-connector"))
    } else {
        None
    }
}

/// The first characters of an untrusted text, on one line.
pub(crate) fn excerpt(text: &str) -> String {
    let one_line: String = crate::text::excerpt(text, EXCERPT_CHARS)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    one_line.trim().to_owned()
}

/// The first array at any depth (an array before what it holds) that `accept`s: the
/// answers' lists (templates, report records) are looked up wherever they are, since
/// Wolkvox does not document their nesting.
pub(crate) fn find_array<'a>(
    value: &'a serde_json::Value,
    accept: &impl Fn(&[serde_json::Value]) -> bool,
) -> Option<&'a Vec<serde_json::Value>> {
    use serde_json::Value;
    match value {
        Value::Array(items) if accept(items) => Some(items),
        Value::Array(items) => items.iter().find_map(|v| find_array(v, accept)),
        Value::Object(map) => map.values().find_map(|v| find_array(v, accept)),
        _ => None,
    }
}

/// The first `key` at any depth whose value is a whole number (or a string of digits).
fn find_count(value: &serde_json::Value, key: &str) -> Option<u64> {
    use serde_json::Value;
    let count = |v: &Value| match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e15)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match value {
        Value::Object(map) => map
            .get(key)
            .and_then(count)
            .or_else(|| map.values().find_map(|v| find_count(v, key))),
        Value::Array(items) => items.iter().find_map(|v| find_count(v, key)),
        _ => None,
    }
}
