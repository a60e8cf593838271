/*!
The language a person reads: which one (the `--lang` flag, then `[ui] lang` in the
config file, then the locale: `LC_ALL`, `LC_MESSAGES`, `LANG`; any `es*` is Spanish),
and every line written for a person, looked up by id in the Fluent catalogues
`i18n/en.ftl` and `i18n/es.ftl` (built into the binary).

What a program reads is never translated: results columns and statuses, JSON keys
and values, exit codes, config keys and flag names. What the results file records in
words (a row's `msg` and `error`) is written in English; the journal also records the
tool's own texts as a message id with its arguments (`said!`, a `Said`), so `report`
and the workbook show them in the reader's language from the catalogue, and the
server's words as it said them (`value_shown`: only Wolkvox's fixed vocabulary is
translated). Results of earlier versions, rows without a journal entry and texts still
made without an id (an invalid row's reasons, a stopped run's `not sent: ...`) are
read back by `shown` (in `recorded`), matching the English against the patterns it was
made from. Numbers with decimals are formatted here (`decimal`), so Spanish gets a
decimal comma.

A leaf: every stage may use it, it uses none of them.
*/

use std::borrow::Cow;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU8, Ordering};

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};

pub(crate) mod clap_help;
mod recorded;
mod said;
mod when;
pub(crate) use recorded::{shown, value_shown};
pub(crate) use said::{Arg, Said, ToSaid};
pub(crate) use when::{when, when_recorded, zone_note};

/// The catalogues, as shipped.
pub(crate) const ENGLISH: &str = include_str!("../../i18n/en.ftl");
pub(crate) const SPANISH: &str = include_str!("../../i18n/es.ftl");

/// A language of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    #[default]
    En,
    Es,
}

impl Lang {
    /// A locale name as in `LANG` (`es_CO.UTF-8`, `es`, `en_US`, `C`): Spanish for
    /// any `es*`, English for anything else that is set.
    pub fn from_locale(locale: &str) -> Lang {
        if locale.to_ascii_lowercase().starts_with("es") {
            Lang::Es
        } else {
            Lang::En
        }
    }

    /// The locale's language as POSIX reads it: the first of `LC_ALL`,
    /// `LC_MESSAGES`, `LANG` that is set and not empty.
    pub fn from_env() -> Lang {
        ["LC_ALL", "LC_MESSAGES", "LANG"]
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .find(|value| !value.is_empty())
            .map_or(Lang::En, |value| Lang::from_locale(&value))
    }

    /// The flag wins, then the config file, then the locale.
    pub fn choose(flag: Option<Lang>, config: Option<Lang>) -> Lang {
        flag.or(config).unwrap_or_else(Lang::from_env)
    }
}

/// `[ui] lang` of the config file at `path`, read before anything else so that help
/// and the first errors are already in that language. A file that cannot be read or
/// parsed gives `None` here; loading it properly later says what is wrong.
pub fn config_lang(path: &std::path::Path) -> Option<Lang> {
    let text = std::fs::read_to_string(path).ok()?;
    let table: toml::Table = toml::from_str(&text).ok()?;
    let lang = table.get("ui")?.get("lang")?.as_str()?;
    match lang {
        "es" => Some(Lang::Es),
        "en" => Some(Lang::En),
        _ => None,
    }
}

static CURRENT: AtomicU8 = AtomicU8::new(0);

/// Sets the language of everything printed from now on.
pub fn set(lang: Lang) {
    CURRENT.store(lang as u8, Ordering::Relaxed);
}

thread_local! {
    /// `with_lang`'s language on this thread, over the process's.
    static OVERRIDE: std::cell::Cell<Option<Lang>> = const { std::cell::Cell::new(None) };
}

/// The language printed now.
pub fn current() -> Lang {
    OVERRIDE
        .with(|o| o.get())
        .unwrap_or_else(|| match CURRENT.load(Ordering::Relaxed) {
            1 => Lang::Es,
            _ => Lang::En,
        })
}

/// Runs `f` with the messages in `lang` on this thread: what a program reads (the
/// summary JSON's texts) is English in every language.
pub(crate) fn with_lang<T>(lang: Lang, f: impl FnOnce() -> T) -> T {
    let before = OVERRIDE.with(|o| o.replace(Some(lang)));
    let out = f();
    OVERRIDE.with(|o| o.set(before));
    out
}

/// A text for people in the current language, and in English for the JSON a
/// program reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Localized {
    pub(crate) here: String,
    pub(crate) english: String,
}

impl Localized {
    /// Builds the text twice: in English and in the current language.
    pub(crate) fn new(f: impl Fn() -> String) -> Localized {
        Localized {
            english: with_lang(Lang::En, &f),
            here: f(),
        }
    }
}

impl Localized {
    /// `new` for a text that may not exist: `None` when there is none (the same in
    /// both languages).
    pub(crate) fn maybe(f: impl Fn() -> Option<String>) -> Option<Localized> {
        Some(Localized {
            english: with_lang(Lang::En, &f)?,
            here: f()?,
        })
    }
}

impl From<String> for Localized {
    /// A text that reads the same in every language (or is set in English later).
    fn from(text: String) -> Localized {
        Localized {
            english: text.clone(),
            here: text,
        }
    }
}

impl From<&str> for Localized {
    fn from(text: &str) -> Localized {
        Localized::from(text.to_owned())
    }
}

impl std::ops::Deref for Localized {
    type Target = str;
    fn deref(&self) -> &str {
        &self.here
    }
}

impl std::fmt::Display for Localized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.here)
    }
}

struct Catalogues {
    en: FluentBundle<FluentResource>,
    es: FluentBundle<FluentResource>,
}

fn bundle(text: &'static str, tag: &str) -> FluentBundle<FluentResource> {
    let lang: unic_langid::LanguageIdentifier = tag.parse().expect("a valid language tag");
    let mut bundle = FluentBundle::new_concurrent(vec![lang]);
    // Fluent wraps placeables in Unicode isolation marks by default; a terminal, a log
    // and a CSV cell would show them as garbage.
    bundle.set_use_isolating(false);
    // The catalogues are checked by tests; a syntax error drops only its own entry.
    let resource = FluentResource::try_new(text.to_owned()).unwrap_or_else(|(res, _)| res);
    bundle.add_resource_overriding(resource);
    bundle
}

static CATALOGUES: LazyLock<Catalogues> = LazyLock::new(|| Catalogues {
    en: bundle(ENGLISH, "en"),
    es: bundle(SPANISH, "es"),
});

/// A value for a message's placeable.
pub(crate) trait ToArg {
    fn to_arg(&self) -> FluentValue<'static>;
}

macro_rules! number_args {
    ($($t:ty),*) => {$(
        impl ToArg for $t {
            fn to_arg(&self) -> FluentValue<'static> {
                FluentValue::from(*self)
            }
        }
    )*};
}
number_args!(u8, u16, u32, u64, usize, i32, i64);

impl ToArg for f64 {
    /// Plain decimals; rates and durations with a fixed number of places go through
    /// `decimal` first.
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(localize_point(&self.to_string()).into_owned())
    }
}
impl ToArg for str {
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(self.to_owned())
    }
}
impl ToArg for String {
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(self.clone())
    }
}
impl<T: ToArg + ?Sized> ToArg for &T {
    fn to_arg(&self) -> FluentValue<'static> {
        (**self).to_arg()
    }
}
impl ToArg for Cow<'_, str> {
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(self.to_string())
    }
}
impl ToArg for Localized {
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(self.here.clone())
    }
}
impl ToArg for char {
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(self.to_string())
    }
}
impl ToArg for std::path::Path {
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(self.display().to_string())
    }
}
impl ToArg for std::path::PathBuf {
    fn to_arg(&self) -> FluentValue<'static> {
        self.as_path().to_arg()
    }
}
impl ToArg for std::path::Display<'_> {
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(self.to_string())
    }
}
impl ToArg for std::io::Error {
    fn to_arg(&self) -> FluentValue<'static> {
        FluentValue::from(io_error(self))
    }
}

/// An operating-system error in the current language: the usual kinds are
/// translated (the OS's own text is English), others keep the OS's words.
pub(crate) fn io_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    if current() == Lang::En {
        return e.to_string();
    }
    let known = match e.kind() {
        ErrorKind::NotFound => "io-not-found",
        ErrorKind::PermissionDenied => "io-permission-denied",
        ErrorKind::AlreadyExists => "io-already-exists",
        ErrorKind::StorageFull => "io-storage-full",
        ErrorKind::IsADirectory => "io-is-a-directory",
        ErrorKind::NotADirectory => "io-not-a-directory",
        ErrorKind::ReadOnlyFilesystem => "io-read-only",
        ErrorKind::TimedOut => "io-timed-out",
        ErrorKind::ConnectionRefused => "io-connection-refused",
        _ => return e.to_string(),
    };
    message(known, &[])
}

/// The message `id` in the current language, its placeables filled from `args`.
/// A message missing from the Spanish catalogue falls back to English (tests keep
/// the two complete); one missing from both prints its id.
pub(crate) fn message(id: &str, args: &[(&str, FluentValue<'static>)]) -> String {
    message_in(current(), id, args)
}

/// `message_in` for a message named by data (a journal's): `None` when the catalogue has
/// no message `id` or `args` do not fill it, never a panic.
pub(crate) fn message_checked(
    lang: Lang,
    id: &str,
    args: &[(&str, FluentValue<'static>)],
) -> Option<String> {
    let bundle = match lang {
        Lang::Es => &CATALOGUES.es,
        Lang::En => &CATALOGUES.en,
    };
    let pattern = bundle.get_message(id)?.value()?;
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        fluent_args.set(*name, value.clone());
    }
    let mut errors = Vec::new();
    let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
    errors.is_empty().then(|| text.into_owned())
}

pub(crate) fn message_in(lang: Lang, id: &str, args: &[(&str, FluentValue<'static>)]) -> String {
    let catalogues = &*CATALOGUES;
    let (first, fallback) = match lang {
        Lang::Es => (&catalogues.es, Some(&catalogues.en)),
        Lang::En => (&catalogues.en, None),
    };
    let mut fluent_args = FluentArgs::new();
    for (name, value) in args {
        fluent_args.set(*name, value.clone());
    }
    for bundle in std::iter::once(first).chain(fallback) {
        if let Some(pattern) = bundle.get_message(id).and_then(|m| m.value()) {
            let mut errors = Vec::new();
            let text = bundle.format_pattern(pattern, Some(&fluent_args), &mut errors);
            debug_assert!(errors.is_empty(), "message {id}: {errors:?}");
            return text.into_owned();
        }
    }
    debug_assert!(false, "no message {id} in the catalogues");
    id.to_owned()
}

/// `tr!("id")` or `tr!("id", name = value, ...)`: the message in the current language.
#[macro_export]
#[doc(hidden)]
macro_rules! tr {
    ($id:literal) => {
        $crate::i18n::message($id, &[])
    };
    ($id:literal, $($name:ident = $value:expr),+ $(,)?) => {
        $crate::i18n::message(
            $id,
            &[$((stringify!($name), $crate::i18n::ToArg::to_arg(&$value))),+],
        )
    };
}

/// A decimal point as the current language writes it: a comma in Spanish.
fn localize_point(text: &str) -> Cow<'_, str> {
    match current() {
        Lang::Es => Cow::Owned(text.replace('.', ",")),
        Lang::En => Cow::Borrowed(text),
    }
}

/// `value` with `places` decimals, with the current language's decimal mark.
pub(crate) fn decimal(value: f64, places: usize) -> String {
    localize_point(&format!("{value:.places$}")).into_owned()
}

/// Whether the English catalogue (the complete one) has the message `id`.
pub(crate) fn has_message(id: &str) -> bool {
    CATALOGUES.en.has_message(id)
}

/// `tr_en!("id", ...)`: the message in English, whatever the language: for what the
/// results file records (a row's `msg`), which programs read.
#[macro_export]
#[doc(hidden)]
macro_rules! tr_en {
    ($($arg:tt)*) => {
        $crate::i18n::with_lang($crate::i18n::Lang::En, || $crate::tr!($($arg)*))
    };
}

#[cfg(test)]
mod tests;
