/*!
Reading back what the results file records in words. A row's `msg` and `error` and an
invalid row's reasons are written in English (`tr_en!`), which programs read; `shown`
gives them to a person in the current language by matching them against the English
patterns of the catalogue messages they were made from (`msg-*`, `row-*`, `phone-*`,
`connector-*`), nested messages included. It reads results written by this version and
by earlier ones alike. Texts whose message id the journal recorded (`said`) are
rendered from the catalogue instead, and never come here: the fallback for results of
earlier versions, rows whose journal is gone, and texts the tool still makes without
an id.
*/

use std::sync::LazyLock;

use fluent_bundle::FluentValue;

use super::{ENGLISH, Lang, current, message, message_in};

/// A part of a recorded message's English pattern.
#[derive(Debug)]
pub(super) enum Piece {
    Text(String),
    Var(String),
}

/// The English patterns of what the results file records in English: a row's `msg`
/// (`msg-*`) and an invalid row's reasons (`row-*`, `phone-*`, `connector-*`), to show
/// a recorded text in the current language.
pub(super) static RECORDED: LazyLock<Vec<(String, Vec<Piece>)>> = LazyLock::new(|| {
    ENGLISH
        .lines()
        .filter(|line| {
            ["msg-", "row-", "phone-", "connector-"]
                .iter()
                .any(|prefix| line.starts_with(prefix))
        })
        .filter_map(|line| line.split_once(" = "))
        .map(|(id, value)| (id.to_owned(), pieces(value)))
        .collect()
});

/// `a { $x } b` -> [Text("a "), Var("x"), Text(" b")].
fn pieces(value: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut rest = value;
    while let Some(open) = rest.find("{ $") {
        if open > 0 {
            out.push(Piece::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 3..];
        let close = after.find(" }").unwrap_or(after.len());
        out.push(Piece::Var(after[..close].to_owned()));
        rest = after.get(close + 2..).unwrap_or("");
    }
    if !rest.is_empty() {
        out.push(Piece::Text(rest.to_owned()));
    }
    out
}

/// The values of `pattern`'s variables in `text`, if `text` is that message.
fn captures(pattern: &[Piece], text: &str) -> Option<Vec<(String, String)>> {
    let mut at = 0;
    let mut vars = Vec::new();
    let mut pending: Option<&str> = None;
    // The literal before the pending variable.
    let mut opened: &str = "";
    for (i, piece) in pattern.iter().enumerate() {
        match piece {
            Piece::Text(literal) => {
                let last = i + 1 == pattern.len();
                let found = match pending {
                    // The last literal ends the text, so a nested message may hold it
                    // too (its own `)`), unless the variable holds the literal that
                    // opened it (or, with none, this one): then this is not the
                    // pattern that encloses the rest.
                    Some(_) if last => {
                        let end = text.len().checked_sub(literal.len())?;
                        let fits = end >= at && text.ends_with(literal.as_str());
                        let inside = text.get(at..end).unwrap_or_default();
                        let guard = if opened.is_empty() { literal } else { opened };
                        (fits && !inside.contains(guard)).then_some(end)?
                    }
                    // A variable runs up to the next literal text.
                    Some(_) => text[at..].find(literal.as_str())? + at,
                    None => text[at..].starts_with(literal.as_str()).then_some(at)?,
                };
                if let Some(name) = pending.take() {
                    vars.push((name.to_owned(), text[at..found].to_owned()));
                }
                at = found + literal.len();
                opened = literal;
            }
            Piece::Var(name) => pending = Some(name),
        }
    }
    match pending {
        Some(name) => vars.push((name.to_owned(), text[at..].to_owned())),
        None if at != text.len() => return None,
        None => {}
    }
    Some(vars)
}

/// A `msg` or `error` the results file recorded (English), as shown to a person: in
/// the current language when it is one of the tool's own texts (or an invalid row's
/// `column: reason; column: reason`); Wolkvox's answers and anything unknown as
/// recorded.
pub(crate) fn shown(recorded: &str) -> String {
    if current() == Lang::En || recorded.is_empty() {
        return recorded.to_owned();
    }
    translated(recorded)
        .or_else(|| problems(recorded))
        .or_else(|| weekday(recorded))
        .or_else(|| period(recorded))
        .unwrap_or_else(|| recorded.to_owned())
}

/// A recorded period of the send ledger's cap (`1 day`, `12 hours`, `90 minutes`, a
/// value of `msg-held-cap`) in the current language.
fn period(text: &str) -> Option<String> {
    const UNITS: [&str; 3] = [
        "ledger-period-days",
        "ledger-period-hours",
        "ledger-period-minutes",
    ];
    let (count, _) = text.split_once(' ')?;
    let n: u64 = count.parse().ok()?;
    let args = [("n", FluentValue::from(n))];
    UNITS
        .iter()
        .find(|id| message_in(Lang::En, id, &args) == text)
        .map(|id| message(id, &args))
}

/// A recorded local time, `Wed 2026-12-02 00:00 -05 (America/Bogota)`, with the
/// weekday in the current language.
fn weekday(text: &str) -> Option<String> {
    const DAYS: [&str; 7] = [
        "weekday-monday",
        "weekday-tuesday",
        "weekday-wednesday",
        "weekday-thursday",
        "weekday-friday",
        "weekday-saturday",
        "weekday-sunday",
    ];
    let (day, rest) = text.split_once(' ')?;
    if !rest.starts_with(|c: char| c.is_ascii_digit()) {
        return None;
    }
    DAYS.iter()
        .find(|id| message_in(Lang::En, id, &[]) == day)
        .map(|id| format!("{} {rest}", message(id, &[])))
}

/// `text` in the current language, if it is one of the recorded patterns: the one
/// that matches with the most literal text, so `not sent: { $why }` gives way to a
/// more precise message.
fn translated(text: &str) -> Option<String> {
    let literal = |pattern: &[Piece]| -> usize {
        pattern
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.len(),
                Piece::Var(_) => 0,
            })
            .sum()
    };
    let (id, vars) = RECORDED
        .iter()
        .filter_map(|(id, pattern)| captures(pattern, text).map(|vars| (id, pattern, vars)))
        .max_by_key(|(_, pattern, _)| literal(pattern))
        .map(|(id, _, vars)| (id, vars))?;
    let args: Vec<(&str, FluentValue<'static>)> = vars
        .iter()
        .map(|(name, value)| (name.as_str(), FluentValue::from(shown(value))))
        .collect();
    Some(message(id, &args))
}

/// An invalid row's reasons, `column: reason; column: reason`, each reason translated;
/// `None` unless every reason is a known one (a reason may itself hold `; `).
fn problems(text: &str) -> Option<String> {
    let (column, rest) = text.split_once(": ")?;
    if column.contains("; ") {
        return None;
    }
    let mut ends: Vec<usize> = rest.match_indices("; ").map(|(at, _)| at).collect();
    ends.push(rest.len());
    // The longest reason first: a reason may end with `; ` and more of its own.
    ends.into_iter().rev().find_map(|end| {
        let reason = translated(&rest[..end])?;
        let tail = match rest.get(end + 2..) {
            Some(tail) if !tail.is_empty() => format!("; {}", problems(tail)?),
            _ => String::new(),
        };
        Some(format!("{column}: {reason}{tail}"))
    })
}

/// Words that are not the tool's own (the server's `error` or `msg`, a value inside one
/// of the tool's texts), as shown to a person: as they are, except Wolkvox's fixed
/// vocabulary (`msg-wolkvox-*`, its documented answers) and a recorded local time's
/// weekday, which are in the current language. Never read as one of the tool's texts,
/// whatever they say.
pub(crate) fn value_shown(text: &str) -> String {
    if current() == Lang::En || text.is_empty() {
        return text.to_owned();
    }
    RECORDED
        .iter()
        .filter(|(id, _)| id.starts_with("msg-wolkvox-"))
        .find(|(_, pattern)| matches!(pattern.as_slice(), [Piece::Text(t)] if t == text))
        .map(|(id, _)| message(id, &[]))
        .or_else(|| weekday(text))
        .unwrap_or_else(|| text.to_owned())
}
