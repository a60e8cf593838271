/*!
One of the tool's own texts as the journal records it: a catalogue message's id and
its arguments (`Said`), so a reader in any language is shown it from the catalogue
rather than from the English the results file keeps. An argument is a value (the
server's words, a path, a time: shown as it is, Wolkvox's fixed vocabulary and a
weekday in the reader's language), a number, or another of the tool's texts (shown
the same way, nested).

`said!("msg-gave-up", msg = ..., attempts = 3)` builds one; its `english()` is what
the results file records, exactly what `tr_en!` gave for the same message.
*/

use std::collections::BTreeMap;

use fluent_bundle::FluentValue;
use serde::{Deserialize, Serialize};

use super::{Lang, current, message_checked};

/// A catalogue message with its arguments: one of the tool's own texts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Said {
    pub(crate) id: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) args: BTreeMap<String, Arg>,
}

/// An argument of a `Said`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Arg {
    /// Words that are not the tool's (the server's `msg`, a path, a time): as they are.
    Text(String),
    Number(u64),
    /// English whose maker is not known (a text of an earlier version, or one the tool
    /// made without an id): read back from the English, as `i18n::shown` does.
    Recorded(String),
    /// Another of the tool's texts, inside this one.
    Said(Box<Said>),
}

impl Said {
    /// The message `id` with `args`.
    pub(crate) fn new(id: &str, args: Vec<(&str, Arg)>) -> Said {
        Said {
            id: id.to_owned(),
            args: args
                .into_iter()
                .map(|(name, arg)| (name.to_owned(), arg))
                .collect(),
        }
    }

    /// In English, as the results file records it.
    pub(crate) fn english(&self) -> String {
        self.text_in(Lang::En).unwrap_or_else(|| self.id.clone())
    }

    /// Whether `recorded` is this text in English, as the results file records it (less
    /// any leading blank). A message the catalogue does not have, or arguments that do
    /// not fill it (a damaged or foreign journal), read as nothing.
    pub(crate) fn reads(&self, recorded: &str) -> bool {
        self.text_in(Lang::En)
            .is_some_and(|text| text.trim_start() == recorded)
    }

    /// In the language printed now (English where the catalogue cannot say it).
    pub(crate) fn shown(&self) -> String {
        self.text_in(current()).unwrap_or_else(|| self.english())
    }

    fn text_in(&self, lang: Lang) -> Option<String> {
        let mut args: Vec<(&str, FluentValue<'static>)> = Vec::with_capacity(self.args.len());
        for (name, arg) in &self.args {
            let value = match arg {
                Arg::Text(text) | Arg::Recorded(text) if lang == Lang::En => {
                    FluentValue::from(text.clone())
                }
                Arg::Text(text) => FluentValue::from(super::recorded::value_shown(text)),
                Arg::Recorded(text) => FluentValue::from(super::recorded::shown(text)),
                Arg::Number(n) => FluentValue::from(*n),
                Arg::Said(inner) => FluentValue::from(inner.text_in(lang)?),
            };
            args.push((name.as_str(), value));
        }
        message_checked(lang, &self.id, &args)
    }
}

/// A value given to `said!`.
pub(crate) trait ToSaid {
    fn to_said(&self) -> Arg;
}

macro_rules! number_said {
    ($($t:ty),*) => {$(
        impl ToSaid for $t {
            fn to_said(&self) -> Arg {
                Arg::Number(u64::from(*self))
            }
        }
    )*};
}
number_said!(u8, u16, u32, u64);

impl ToSaid for usize {
    fn to_said(&self) -> Arg {
        Arg::Number(u64::try_from(*self).unwrap_or(u64::MAX))
    }
}
impl ToSaid for str {
    fn to_said(&self) -> Arg {
        Arg::Text(self.to_owned())
    }
}
impl ToSaid for String {
    fn to_said(&self) -> Arg {
        Arg::Text(self.clone())
    }
}
impl ToSaid for std::path::Display<'_> {
    fn to_said(&self) -> Arg {
        Arg::Text(self.to_string())
    }
}
impl ToSaid for Said {
    fn to_said(&self) -> Arg {
        Arg::Said(Box::new(self.clone()))
    }
}
impl ToSaid for Arg {
    fn to_said(&self) -> Arg {
        self.clone()
    }
}
impl<T: ToSaid + ?Sized> ToSaid for &T {
    fn to_said(&self) -> Arg {
        (**self).to_said()
    }
}

/// `said!("id")` or `said!("id", name = value, ...)`: the message as a `Said`.
#[macro_export]
#[doc(hidden)]
macro_rules! said {
    ($id:literal) => {
        $crate::i18n::Said::new($id, Vec::new())
    };
    ($id:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::Said::new(
            $id,
            vec![$((stringify!($name), $crate::i18n::ToSaid::to_said(&$value))),+],
        )
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::with_lang;

    #[test]
    fn a_said_text_is_the_english_tr_en_gives_and_spanish_from_its_id() {
        let inner = crate::said!("msg-answer-timeout");
        let said = crate::said!("msg-gave-up", msg = inner, attempts = 3u32);
        assert_eq!(
            said.english(),
            crate::tr_en!(
                "msg-gave-up",
                msg = crate::tr_en!("msg-answer-timeout"),
                attempts = 3
            )
        );
        let es = with_lang(Lang::Es, || said.shown());
        assert_eq!(
            es,
            with_lang(Lang::Es, || crate::tr!(
                "msg-gave-up",
                msg = crate::tr!("msg-answer-timeout"),
                attempts = 3
            ))
        );
        // Read back as the journal writes it.
        let json = serde_json::to_string(&said).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<Said>(&json).ok(),
            Some(said),
            "{json}"
        );
    }

    #[test]
    fn a_value_is_the_servers_words_even_when_they_read_like_the_tools() {
        let said = crate::said!("msg-gave-up", msg = "response is not JSON", attempts = 2u32);
        let es = with_lang(Lang::Es, || said.shown());
        assert!(es.starts_with("response is not JSON"), "{es}");
        // Wolkvox's fixed vocabulary is still shown in the reader's language.
        let said = crate::said!("msg-gave-up", msg = "TOKEN LIMIT EXCEEDED", attempts = 2u32);
        let es = with_lang(Lang::Es, || said.shown());
        assert!(
            es.starts_with(&with_lang(Lang::Es, || crate::tr!(
                "msg-wolkvox-token-limit"
            ))),
            "{es}"
        );
    }

    #[test]
    fn a_message_the_catalogue_lacks_or_cannot_fill_reads_as_nothing() {
        // As a damaged or hand-made journal could name them: no panic, no match.
        let unknown = Said::new("msg-no-such-message", Vec::new());
        assert!(!unknown.reads("msg-no-such-message"));
        assert!(!unknown.reads(""));
        let unfilled = Said::new("msg-gave-up", Vec::new());
        assert!(!unfilled.reads("(gave up after 3 attempts)"));
        let extra = Said::new("msg-answer-timeout", vec![("x", Arg::Number(1))]);
        assert!(extra.reads("timeout"), "an extra argument is harmless");
    }
}
