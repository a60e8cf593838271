/*!
"The same message": one definition, used by the duplicate check inside a list,
by `--resume` (the journal matches rows by this key), by `reconcile` (a report's
record matches a row by it) and by anything that remembers sends across runs.

Two texts are the same message when they differ only in ways a person cannot see
or a system in between may change on its own:
- surrounding whitespace (leading and trailing spaces and blank lines);
- line endings (CRLF, CR and LF are one line break);
- runs of spaces, tabs and other Unicode spaces inside a line (one space), and
  spaces at the end or start of a line;
- Unicode composition (NFC: `é` as one character or as `e` plus an accent);
- invisible marks pasted from web pages and chats: zero-width spaces, direction marks
  and embeddings, word joiners, byte-order marks and soft hyphens (`is_invisible`). The
  zero-width joiner and non-joiner stay: they change how emoji and some scripts look.

Line breaks themselves, letters, digits and punctuation still count. What is sent
is the text as written: only the identity is normalised.

A text already in this form keeps the key it had before the definition existed
(the digest is of the same bytes), so journals of earlier versions still match;
for the rare row whose text was not, `legacy_key` gives the old key to look up.
*/

use std::borrow::Cow;

use sha2::{Digest, Sha256};
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick};

use super::Message;

/// A space inside a line: any Unicode white space but a line break.
fn is_space(c: char) -> bool {
    c.is_whitespace() && !is_break(c)
}

fn is_break(c: char) -> bool {
    matches!(c, '\n' | '\r')
}

/// A mark that shows nothing and changes nothing a person reads.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{ad}'
            | '\u{61c}'
            | '\u{180e}'
            | '\u{200b}'
            | '\u{200e}'
            | '\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
    )
}

/// `text` in the form that identifies a message (see the module doc). Borrowed when
/// it already is, which is nearly always.
pub(crate) fn same_message_form(text: &str) -> Cow<'_, str> {
    if is_canonical(text) {
        return Cow::Borrowed(text);
    }
    let visible: String = text.chars().filter(|&c| !is_invisible(c)).collect();
    let composed: String = match is_nfc_quick(visible.chars()) {
        IsNormalized::Yes => visible,
        _ => visible.nfc().collect(),
    };
    let mut out = String::with_capacity(composed.len());
    for (i, line) in lines(&composed).enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut words = line.split(is_space).filter(|w| !w.is_empty());
        if let Some(first) = words.next() {
            out.push_str(first);
            for w in words {
                out.push(' ');
                out.push_str(w);
            }
        }
    }
    let trimmed = out.trim_matches(|c: char| c.is_whitespace());
    Cow::Owned(trimmed.to_owned())
}

/// The lines of `text`, whatever its line endings (CRLF counts once).
fn lines(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = Some(text);
    std::iter::from_fn(move || {
        let s = rest?;
        match s.find(is_break) {
            Some(i) => {
                let skip = if s[i..].starts_with("\r\n") { 2 } else { 1 };
                rest = Some(&s[i + skip..]);
                Some(&s[..i])
            }
            None => {
                rest = None;
                Some(s)
            }
        }
    })
}

/// True when `text` is already in the form: the common case, checked without
/// allocating.
fn is_canonical(text: &str) -> bool {
    let mut prev: Option<char> = None;
    for c in text.chars() {
        let ok = match c {
            '\r' => false,
            c if is_invisible(c) => false,
            '\n' => prev.is_some_and(|p| p != ' '),
            ' ' => prev.is_some_and(|p| p != ' ' && p != '\n'),
            c if is_space(c) => false,
            _ => true,
        };
        if !ok {
            return false;
        }
        prev = Some(c);
    }
    if matches!(prev, Some(' ' | '\n')) {
        return false;
    }
    text.is_ascii() || is_nfc_quick(text.chars()) == IsNormalized::Yes
}

/// A stable digest of who gets what: the normalized telephone and the message in
/// its identifying form. The connector is left out on purpose: the same text to the
/// same person through another line is still the same message to them.
pub(crate) fn content_key(telephone: &str, message: &Message) -> String {
    hex(&content_digest(telephone, message))
}

/// The key versions before the one definition gave this row, when it differs from
/// `content_key`: a journal written by them recorded it under that key.
pub(crate) fn legacy_key(telephone: &str, message: &Message) -> Option<String> {
    let changed = match message {
        Message::Free { text } => matches!(same_message_form(text), Cow::Owned(_)),
        Message::Template { vars, .. } => matches!(vars_form(vars), Cow::Owned(_)),
    };
    changed.then(|| hex(&digest_of(telephone, message, false)))
}

/// The bytes behind `content_key`: the first 16 bytes of a SHA-256.
pub(crate) fn content_digest(telephone: &str, message: &Message) -> [u8; 16] {
    digest_of(telephone, message, true)
}

/// A template's variables, each in its identifying form.
fn vars_form(vars: &str) -> Cow<'_, str> {
    if vars.split(';').all(is_canonical) {
        return Cow::Borrowed(vars);
    }
    let parts: Vec<Cow<'_, str>> = vars.split(';').map(same_message_form).collect();
    Cow::Owned(parts.join(";"))
}

fn digest_of(telephone: &str, message: &Message, normalise: bool) -> [u8; 16] {
    let mut hash = Sha256::new();
    hash.update(telephone.as_bytes());
    hash.update([0]);
    match message {
        Message::Free { text } => {
            hash.update(b"free\0");
            if normalise {
                hash.update(same_message_form(text).as_bytes());
            } else {
                hash.update(text.as_bytes());
            }
        }
        // The kind is part of the key: a template and a free message to the same person
        // are two deliveries. The name's length keeps name and vars apart.
        // customer_id and url_attach do not change what the person is asked.
        Message::Template { name, vars, .. } => {
            hash.update(b"template\0");
            hash.update((name.len() as u64).to_le_bytes());
            hash.update(name.as_bytes());
            if normalise {
                hash.update(vars_form(vars).as_bytes());
            } else {
                hash.update(vars.as_bytes());
            }
        }
    }
    let digest = hash.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn free(text: &str) -> Message {
        Message::Free { text: text.into() }
    }

    #[test]
    fn invisible_differences_are_the_same_message() {
        let base = "Hola Ana,\nsu cita es el martes.";
        for variant in [
            "Hola Ana,\nsu cita es el martes. ",
            " Hola Ana,\nsu cita es el martes.",
            "Hola Ana,\r\nsu cita es el martes.",
            "Hola Ana,\rsu cita es el martes.",
            "Hola  Ana,\nsu cita es el martes.",
            "Hola\tAna, \n su cita es el martes.\n\n",
            "Hola\u{a0}Ana,\nsu cita es el martes.",
            "\u{feff}Hola Ana,\nsu cita es el martes.\u{200b}",
            "\u{200e}Hola Ana,\u{2069}\nsu cita es el\u{ad} martes.",
        ] {
            assert_eq!(
                same_message_form(variant),
                base,
                "{variant:?} is the same message"
            );
        }
        // NFD against NFC: é as e + U+0301.
        assert_eq!(same_message_form("cafe\u{301}"), "café");
    }

    #[test]
    fn visible_differences_stay_different() {
        let a = content_key("573001234567", &free("Hola Ana"));
        for other in [
            "Hola ana",
            "Hola Ana.",
            "Hola\nAna",
            "HolaAna",
            "Hola Ana\n\nFin",
        ] {
            assert_ne!(a, content_key("573001234567", &free(other)), "{other:?}");
        }
        assert_ne!(
            content_key("573001234567", &free("a\nb")),
            content_key("573001234567", &free("a\n\nb"))
        );
    }

    #[test]
    fn text_already_in_form_keeps_its_old_key_and_has_no_legacy_one() {
        for text in ["hola", "Hola Ana,\nsu cita", "ñandú — 15%", "a\n\nb"] {
            let m = free(text);
            assert_eq!(
                content_key("573001234567", &m),
                hex(&digest_of("573001234567", &m, false))
            );
            assert_eq!(legacy_key("573001234567", &m), None, "{text:?}");
            assert!(matches!(same_message_form(text), Cow::Borrowed(_)));
        }
        let m = free("hola ");
        let legacy = legacy_key("573001234567", &m).expect("changed");
        assert_ne!(legacy, content_key("573001234567", &m));
        assert_eq!(
            content_key("573001234567", &m),
            content_key("573001234567", &free("hola"))
        );
    }

    #[test]
    fn template_variables_are_compared_in_form_too() {
        let t = |vars: &str| Message::Template {
            name: "cita".into(),
            vars: vars.into(),
            customer_id: String::new(),
            url_attach: String::new(),
        };
        let phone = "573001234567";
        assert_eq!(
            content_key(phone, &t("Ana;martes")),
            content_key(phone, &t("Ana ; martes "))
        );
        assert_ne!(
            content_key(phone, &t("Ana;martes")),
            content_key(phone, &t("Ana;jueves"))
        );
        assert_eq!(legacy_key(phone, &t("Ana;martes")), None);
    }

    #[test]
    fn the_canonical_check_agrees_with_the_form() {
        for text in [
            "",
            " ",
            "\n",
            "a",
            "a ",
            " a",
            "a  b",
            "a \nb",
            "a\n b",
            "a\r\nb",
            "a\tb",
            "x\u{2003}y",
            "é",
            "e\u{301}",
        ] {
            let form = same_message_form(text);
            assert_eq!(
                same_message_form(&form),
                form,
                "{text:?}: the form is stable"
            );
            assert!(
                is_canonical(&form) || form.is_empty(),
                "{text:?} -> {form:?}"
            );
        }
    }
}
