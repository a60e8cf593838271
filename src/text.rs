/*!
Untrusted text made safe to show: cells of the list, header names, server answers
and file names can hold terminal escape sequences (which retitle or repaint a
terminal), raw control bytes or bidirectional overrides (which make a line read
differently than it is). Everything printed for a person, and every text cell of
the results file, goes through here; control characters become visible escapes
such as `\u{1b}`, so what was there can still be read.
*/

use std::borrow::Cow;
use std::path::Path;
use std::time::Duration;

/// True for characters that must never reach a terminal raw: C0/C1 controls and the
/// Unicode bidirectional controls.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn push_escaped(out: &mut String, c: char) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
    }
}

/// `text` on one line with every unsafe character escaped (newlines and tabs too).
/// Escaping twice changes nothing more: the escapes are printable.
pub(crate) fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_unsafe(c) {
            push_escaped(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// A whole message for a terminal or a log: line breaks are kept, every other unsafe
/// character is escaped. With `colour`, the SGR sequences the log formatter itself adds
/// (`ESC [ digits ; … m`) are kept; any other escape sequence is shown escaped.
pub fn for_terminal(text: &str, colour: bool) -> Cow<'_, str> {
    if !text.chars().any(|c| c != '\n' && is_unsafe(c)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\n' || !is_unsafe(c) {
            out.push(c);
            continue;
        }
        if colour && c == '\u{1b}' {
            let rest = &text[i + 1..];
            if let Some(len) = sgr_len(rest) {
                out.push_str(&text[i..i + 1 + len]);
                for _ in 0..len {
                    chars.next();
                }
                continue;
            }
        }
        push_escaped(&mut out, c);
    }
    Cow::Owned(out)
}

/// The length of `[digits;…m` at the start of `rest`, if that is what it is.
fn sgr_len(rest: &str) -> Option<usize> {
    let body = rest.strip_prefix('[')?;
    let end = body.find(|c: char| !(c.is_ascii_digit() || c == ';'))?;
    (body[end..].starts_with('m')).then_some(end + 2)
}

/// The first `max` characters of an untrusted text, marked with `…` when cut: a hostile
/// file or server must not turn one value into megabytes of output.
pub(crate) fn excerpt(text: &str, max: usize) -> Cow<'_, str> {
    match text.char_indices().nth(max) {
        Some((end, _)) => Cow::Owned(format!("{}…", &text[..end])),
        None => Cow::Borrowed(text),
    }
}

/// "12.5 s", "3 min 20 s", "1 h 5 min".
pub(crate) fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{} s", crate::i18n::decimal(secs, 1))
    } else if secs < 3600.0 {
        format!("{} min {} s", (secs / 60.0) as u64, (secs % 60.0) as u64)
    } else {
        format!(
            "{} h {} min",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64
        )
    }
}

/// A path as a shell word: as is when safe, else single-quoted.
pub(crate) fn quote(path: &Path) -> String {
    quote_text(&path.display().to_string())
}

/// `text` as one shell word.
pub(crate) fn quote_text(text: &str) -> String {
    if text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:=,+@%".contains(c))
    {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `url` with any user name and password replaced by `***`, so that an error or a log
/// line never repeats a credential someone put in a URL.
pub(crate) fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..end].rfind('@') {
        Some(at) => format!("{scheme}***{}", &rest[at..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_on_characters_and_say_so() {
        assert_eq!(excerpt("ñandú", 5), "ñandú");
        assert_eq!(excerpt("ñandú!", 5), "ñandú…");
        assert_eq!(excerpt("", 0), "");
    }

    #[test]
    fn controls_and_bidi_overrides_are_escaped_and_accents_kept() {
        assert_eq!(escape("Teléfono"), "Teléfono");
        assert_eq!(
            escape("\u{1b}]0;PWNED\u{7}nombre"),
            "\\u{1b}]0;PWNED\\u{7}nombre"
        );
        assert_eq!(escape("a\nb\tc\r"), "a\\nb\\tc\\r");
        assert_eq!(escape("x\u{202e}y"), "x\\u{202e}y");
        let once = escape("\u{0}\u{9b}").into_owned();
        assert_eq!(escape(&once), once);
    }

    #[test]
    fn terminal_text_keeps_lines_and_the_formatters_own_colours() {
        let line = "\u{1b}[33mWARN\u{1b}[0m header \u{1b}]0;PWNED\u{7}\nnext";
        assert_eq!(
            for_terminal(line, true),
            "\u{1b}[33mWARN\u{1b}[0m header \\u{1b}]0;PWNED\\u{7}\nnext"
        );
        assert_eq!(
            for_terminal(line, false),
            "\\u{1b}[33mWARN\\u{1b}[0m header \\u{1b}]0;PWNED\\u{7}\nnext"
        );
        assert_eq!(for_terminal("plain\n", true), "plain\n");
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human_duration(Duration::from_millis(12_500)), "12.5 s");
        assert_eq!(human_duration(Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(human_duration(Duration::from_secs(3900)), "1 h 5 min");
    }
}
