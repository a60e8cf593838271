/*!
Telephone numbers: from what people type in a spreadsheet to the digits the
Wolkvox API wants (country code, then the national number, no `+`).

Validation is libphonenumber's (the `rlibphonenumber` port), not a regex: a number
must be valid for its country and of a kind that can receive WhatsApp
messages. Accepted kinds: mobile, "fixed line or mobile" (countries such as
Mexico or the USA where the two cannot be told apart), VoIP and personal
numbers (both can carry a WhatsApp account). Refused, with the reason: fixed
lines, toll-free, premium-rate, shared-cost, pagers, short codes and other
service numbers, and anything libphonenumber does not recognise.

A number is read as international when it starts with `+` or `00`. Otherwise,
with `[phone] default_country`, it is first read as a national number of that
country (`300 123 4567` with "CO" is `573001234567`) and, failing that, as
digits that already carry a country code (`573001234567`); without a default
country only the latter. Each number is parsed once (twice at most for a
national number with a default country): parsing is most of `validate`'s time.
*/

use crate::tr;
use rlibphonenumber::{PHONE_NUMBER_UTIL, PhoneNumber, PhoneNumberFormat, PhoneNumberType as Type};

/// A country as libphonenumber knows it (`phone.default_country`).
pub(crate) use rlibphonenumber::enums::Region as Country;

/// E.164 numbers have at most 15 digits.
const MAX_DIGITS: usize = 15;
/// A cell longer than this is not looked at digit by digit: far more than any
/// written-out number (15 digits and some punctuation).
const MAX_CELL_BYTES: usize = 64;
/// Fewer digits than this cannot be a subscriber number anywhere.
const MIN_DIGITS: usize = 5;

/// Loads the metadata on a thread of its own (about 10 ms), so that reading the
/// list and the config overlaps it.
pub(crate) fn preload() {
    // Without a thread the first number loads it instead: nothing is lost.
    let _ = std::thread::Builder::new()
        .name("phone-metadata".into())
        .spawn(|| {
            // A first number compiles the patterns every number needs (about 10 ms).
            let _ = parse_checked(None, "+57 300 123 4567");
        });
}

/// Parses an ISO 3166 country code such as "CO" (any case).
pub(crate) fn parse_country(code: &str) -> Option<Country> {
    let code = code.trim();
    // `Country` has a value for every two letters; only those with metadata parse numbers.
    if code.len() != 2 || !code.bytes().all(|b| b.is_ascii_alphabetic()) {
        return None;
    }
    let country = Country::from_code(code).ok()?;
    PHONE_NUMBER_UTIL.get_country_code_for_region(country)?;
    Some(country)
}

/// Digits with the country code, or why the number cannot be used.
pub(crate) fn normalize(raw: &str, default_country: Option<Country>) -> Result<String, String> {
    let t = raw.trim();
    if t.is_empty() {
        return Err(tr!("phone-empty"));
    }
    // The cell as quoted in messages: a hostile cell must not flood them. Made only
    // for a refusal: most numbers are valid.
    let shown = || format!("{:?}", crate::validate::excerpt(t));
    if t.len() > MAX_CELL_BYTES {
        return Err(tr!(
            "phone-too-long",
            shown = shown(),
            chars = t.chars().count()
        ));
    }
    if looks_scientific(t) {
        return Err(tr!("phone-scientific", shown = shown()));
    }
    if two_numbers(t) {
        return Err(tr!("phone-two-numbers", shown = shown()));
    }
    // `tel:` links, as pasted from web pages.
    let t = match t.get(..4) {
        Some(scheme) if scheme.eq_ignore_ascii_case("tel:") => t[4..].trim_start(),
        _ => t,
    };
    let mut plus = false;
    let mut digits = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '0'..='9' => digits.push(c),
            '\u{ff10}'..='\u{ff19}' => {
                // Full-width digits, as typed on Asian keyboards and some phones.
                digits.push(char::from(b'0' + (u32::from(c) - 0xff10) as u8));
            }
            // `+`, `++` or `(+57)` before the first digit.
            '+' | '\u{ff0b}' if digits.is_empty() => plus = true,
            '(' | ')' | '[' | ']' | '\u{ff08}' | '\u{ff09}' | '.' | '/' => {}
            c if is_dash(c) || c.is_whitespace() || is_invisible(c) => {}
            _ => {
                return Err(tr!("phone-bad-characters", shown = shown()));
            }
        }
    }
    let international = plus || digits.starts_with("00");
    if !plus && let Some(d) = digits.strip_prefix("00") {
        digits = d.to_owned();
    }
    if digits.len() < MIN_DIGITS {
        return Err(tr!("phone-too-few", shown = shown(), digits = digits.len()));
    }
    if digits.len() > MAX_DIGITS {
        return Err(tr!(
            "phone-too-many",
            shown = shown(),
            digits = digits.len(),
            max = MAX_DIGITS
        ));
    }

    if let Some(hint) = old_mexican_form(&digits, international, default_country, &shown) {
        // libphonenumber refuses these too; say which digits to drop.
        if parse_checked(default_country, &digits).is_err() {
            return Err(hint);
        }
    }
    let as_international = || parse_checked(None, &format!("+{digits}"));
    let result = match default_country {
        _ if international => as_international(),
        Some(country) => match parse_checked(Some(country), &digits) {
            Ok(n) => Ok(n),
            // Digits that already carry a country code, e.g. 573001234567.
            Err(national) => as_international().map_err(|_| national),
        },
        None => as_international(),
    };
    // Digits without `+` or `00` read as carrying a country code: say how to
    // give national numbers instead.
    // The same refusal, with the hint when the number could be a national one; one
    // message each, so `report` can show a recorded reason in the reader's language.
    let hint = !international && default_country.is_none();
    let refusal = |id: &str, args: &[(&str, &str)]| {
        let id = if hint {
            format!("{id}-hint")
        } else {
            id.to_owned()
        };
        let args: Vec<_> = args
            .iter()
            .map(|(name, value)| (*name, crate::i18n::ToArg::to_arg(*value)))
            .collect();
        crate::i18n::message(&id, &args)
    };
    match result {
        Ok(number) => Ok(digits_of(&number)),
        Err(Refusal::Unparsable) => Err(match default_country {
            Some(c) if !international => tr!(
                "phone-not-national-nor-international",
                shown = shown(),
                country = c.to_string()
            ),
            None if !international => tr!("phone-not-international", shown = shown()),
            _ => tr!("phone-invalid", shown = shown()),
        }),
        Err(Refusal::Invalid { country }) => Err(match country {
            Some(c) => refusal("phone-invalid-in", &[("shown", &shown()), ("country", &c)]),
            None => refusal("phone-invalid-unknown-country", &[("shown", &shown())]),
        }),
        Err(Refusal::Kind { kind, country }) => Err(match country {
            Some(c) => refusal(
                "phone-kind-in",
                &[
                    ("shown", &shown()),
                    ("kind", &kind_name(kind)),
                    ("country", &c),
                ],
            ),
            None => refusal(
                "phone-kind",
                &[("shown", &shown()), ("kind", &kind_name(kind))],
            ),
        }),
    }
}

/// Why a number was not accepted.
#[derive(Debug)]
enum Refusal {
    /// The text is not a number libphonenumber can read.
    Unparsable,
    /// Read, but not a number of its country.
    Invalid { country: Option<String> },
    /// Valid, but of a kind that cannot receive WhatsApp messages.
    Kind { kind: Type, country: Option<String> },
}

fn parse_checked(country: Option<Country>, text: &str) -> Result<PhoneNumber, Refusal> {
    let number = PHONE_NUMBER_UTIL
        .parse(text, country)
        .map_err(|_| Refusal::Unparsable)?;
    // The type is Unknown exactly when the number is not valid; asking once does both.
    let kind = number.get_type();
    // The country is looked up again only to explain a refusal: for shared
    // country codes (+1) finding it costs a pattern match per region.
    let country = || {
        number
            .get_region_code()
            .filter(|c| *c != Country::World)
            .map(|c| c.to_string())
    };
    match kind {
        Type::Mobile | Type::FixedLineOrMobile | Type::VoIP | Type::PersonalNumber => Ok(number),
        Type::Unknown => Err(Refusal::Invalid { country: country() }),
        other => Err(Refusal::Kind {
            kind: other,
            country: country(),
        }),
    }
}

fn kind_name(kind: Type) -> String {
    match kind {
        Type::FixedLine => tr!("phone-kind-fixed-line"),
        Type::TollFree => tr!("phone-kind-toll-free"),
        Type::PremiumRate => tr!("phone-kind-premium-rate"),
        Type::SharedCost => tr!("phone-kind-shared-cost"),
        Type::Pager => tr!("phone-kind-pager"),
        Type::UAN => tr!("phone-kind-uan"),
        Type::VoiceMail => tr!("phone-kind-voicemail"),
        _ => tr!("phone-kind-service"),
    }
}

/// Country code and national number, digits only.
fn digits_of(number: &PhoneNumber) -> String {
    let e164 = number.format_as(PhoneNumberFormat::E164);
    e164.trim_start_matches('+').to_owned()
}

/// Zero-width characters and direction marks, invisible in a cell but pasted with a
/// number from web pages and WhatsApp.
fn is_invisible(c: char) -> bool {
    matches!(
        c,
        '\u{200b}'..='\u{200f}'
            | '\u{202a}'..='\u{202e}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{feff}'
            | '\u{ad}'
    )
}

/// Dashes and hyphens of every kind (a word processor turns `-` into `–`).
fn is_dash(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe58}' | '\u{fe63}' | '\u{ff0d}'
    )
}

/// Digits in `text`, ASCII or full-width.
fn count_digits(text: &str) -> usize {
    text.chars()
        .filter(|c| c.is_ascii_digit() || ('\u{ff10}'..='\u{ff19}').contains(c))
        .count()
}

/// A cell holding two numbers: parts split by `/ , ; |` or a line break with at least
/// 7 digits each, or more digits than a number can have in words separated by spaces
/// (`3051891679 3121942360`, `... y ...`) that split into two numbers' worth.
fn two_numbers(text: &str) -> bool {
    const NUMBER: std::ops::RangeInclusive<usize> = 7..=MAX_DIGITS;
    let parts = text
        .split(['/', ',', ';', '|', '\n'])
        .filter(|p| count_digits(p) >= *NUMBER.start())
        .count();
    if parts >= 2 {
        return true;
    }
    let total = count_digits(text);
    if total <= MAX_DIGITS {
        return false;
    }
    let mut before = 0;
    text.split_whitespace().any(|word| {
        before += count_digits(word);
        NUMBER.contains(&before) && NUMBER.contains(&(total - before))
    })
}

/// The reason to give for an old Mexican form (`+52 1` before a mobile, `044`/`045`
/// before 10 digits), which no longer reaches anyone since 2019.
fn old_mexican_form(
    digits: &str,
    international: bool,
    default_country: Option<Country>,
    shown: &impl Fn() -> String,
) -> Option<String> {
    let mexico = parse_country("MX");
    if international && digits.len() == 13 && digits.starts_with("521") {
        return Some(tr!("phone-mexico-one", shown = shown()));
    }
    if !international && digits.len() == 11 && digits.starts_with('1') && default_country == mexico
    {
        return Some(tr!("phone-mexico-one", shown = shown()));
    }
    if !international && digits.len() == 13 {
        let prefix = digits.get(..3).filter(|p| *p == "044" || *p == "045")?;
        return Some(tr!("phone-mexico-prefix", shown = shown(), prefix = prefix));
    }
    None
}

/// `5.73E+11`, `5,73E+11`, `5.73e11`: what Excel shows for a long number in a General cell.
fn looks_scientific(t: &str) -> bool {
    let Some((mantissa, exponent)) = t.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix('+').unwrap_or(exponent);
    !mantissa.is_empty()
        && mantissa
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == ',')
        && !exponent.is_empty()
        && exponent.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn co() -> Option<Country> {
        parse_country("co")
    }

    #[test]
    fn national_numbers_use_the_default_country() {
        for raw in [
            "300 123 4567",
            "(300) 123-4567",
            "300.123.4567",
            "3001234567",
        ] {
            assert_eq!(normalize(raw, co()).as_deref(), Ok("573001234567"), "{raw}");
        }
        // Ecuador's national form has a trunk 0.
        assert_eq!(
            normalize("099 123 4567", parse_country("EC")).as_deref(),
            Ok("593991234567")
        );
        assert_eq!(
            normalize("33 1654 2287", parse_country("mx")).as_deref(),
            Ok("523316542287")
        );
    }

    #[test]
    fn international_numbers_with_or_without_the_default_country() {
        for country in [None, co()] {
            for (raw, want) in [
                ("+57 300 123 4567", "573001234567"),
                ("0057 300-123-4567", "573001234567"),
                ("+57 (318) 290 6654", "573182906654"),
                ("573001234567", "573001234567"),
                ("+34 612 345 678", "34612345678"),
                ("0034 655 123 456", "34655123456"),
                ("+52 55 4123 8790", "525541238790"),
                ("+593 99 123 4567", "593991234567"),
                ("593.98.765.4321", "593987654321"),
            ] {
                assert_eq!(
                    normalize(raw, country).as_deref(),
                    Ok(want),
                    "{raw} {country:?}"
                );
            }
        }
    }

    #[test]
    fn numbers_that_cannot_receive_whatsapp_are_refused_with_the_reason() {
        let fixed = normalize("+57 601 234 5678", None).unwrap_err();
        assert!(
            fixed.contains("fixed-line") && fixed.contains("CO"),
            "{fixed}"
        );
        let fixed = normalize("601 234 5678", co()).unwrap_err();
        assert!(fixed.contains("fixed-line"), "{fixed}");
        let fixed = normalize("+34 912 345 678", None).unwrap_err();
        assert!(
            fixed.contains("fixed-line") && fixed.contains("ES"),
            "{fixed}"
        );
        assert!(
            normalize("+1 800 555 0100", None)
                .unwrap_err()
                .contains("toll-free")
        );
        assert!(
            normalize("+34 803 123 456", None)
                .unwrap_err()
                .contains("premium-rate")
        );
        let invalid = normalize("+57 014 567 890", None).unwrap_err();
        assert!(invalid.contains("not a valid number in CO"), "{invalid}");
    }

    #[test]
    fn national_numbers_without_a_default_country_say_what_to_set() {
        let err = normalize("300 123 4567", None).unwrap_err();
        assert!(err.contains("phone.default_country"), "{err}");
        let err = normalize("300 123", co()).unwrap_err();
        assert!(err.contains("CO"), "{err}");
    }

    #[test]
    fn bad_telephones_say_why() {
        let sci = normalize("5.73E+11", co()).unwrap_err();
        assert!(sci.contains("scientific") && sci.contains("Text"), "{sci}");
        assert!(
            normalize("5,73E+11", None)
                .unwrap_err()
                .contains("scientific")
        );
        let letters = normalize("+57 311 PQR 7788", co()).unwrap_err();
        assert!(letters.contains("not a telephone number"), "{letters}");
        assert!(normalize("1234", None).unwrap_err().contains("too few"));
        assert!(
            normalize("1234567890123456", None)
                .unwrap_err()
                .contains("more than")
        );
        assert!(normalize("  ", co()).unwrap_err().contains("empty"));
        assert!(normalize("+", None).unwrap_err().contains("too few"));
    }

    /// Numbers the `phonenumber` crate (used before 2026-12) got wrong, with the verdicts
    /// of Google's libphonenumber (its Python port, `phonenumbers` 9.0.42, and 9.0.33 for
    /// the refusals): over 630,000 generated numbers of 40 countries, `rlibphonenumber`
    /// agreed with it on every one, the old crate differed on 1,305 acceptances.
    #[test]
    fn verdicts_agree_with_google_s_libphonenumber() {
        // Accepted before, with digits that reach no one (a trunk 0 kept after the
        // country code): refused now.
        for raw in [
            "+52 0739 223 9754",
            "+56 0991 642 022",
            "+504 0807 05863",
            "+1 094 279 13107",
            "+351 0927 773 165",
        ] {
            let err = normalize(raw, None).unwrap_err();
            assert!(err.contains("not a valid"), "{raw}: {err}");
        }
        // National numbers that start with their country's own code: refused before.
        for (country, raw, want) in [
            ("GT", "5027 5723", "50250275723"),
            ("SV", "5030 5737", "50350305737"),
            ("IN", "91616 34376", "919161634376"),
            ("CU", "5 399 5492", "5353995492"),
        ] {
            assert_eq!(
                normalize(raw, parse_country(country)).as_deref(),
                Ok(want),
                "{country} {raw}"
            );
        }
    }

    /// Ways of writing a number that people paste from web pages, WhatsApp and phones,
    /// with the verdicts of Google's libphonenumber (its Python port, `phonenumbers`
    /// 9.0.43, `parse` + `is_valid_number`, no default region unless given). One
    /// deliberate difference: a thin space (U+2009) between groups is accepted here,
    /// where libphonenumber refuses it; every Unicode space is a space.
    #[test]
    fn pasted_forms_agree_with_google_s_libphonenumber() {
        for (raw, country, want) in [
            ("(+57) 300 123 4567", None, Some("573001234567")),
            ("(+34) 612 345 678", None, Some("34612345678")),
            ("(+52) 55 4123 8790", None, Some("525541238790")),
            ("(+1) 212 555 0123", None, Some("12125550123")),
            ("+57 300\u{2013}123\u{2013}4567", None, Some("573001234567")),
            ("+57 300\u{2011}123\u{2011}4567", None, Some("573001234567")),
            ("+57\u{200b}300 123 4567", None, Some("573001234567")),
            (
                "\u{202d}+57 300 123 4567\u{202c}",
                None,
                Some("573001234567"),
            ),
            ("\u{200e}+57 300 123 4567", None, Some("573001234567")),
            (
                "\u{ff0b}\u{ff15}\u{ff17}\u{ff13}\u{ff10}\u{ff10}\u{ff11}\u{ff12}\u{ff13}\u{ff14}\u{ff15}\u{ff16}\u{ff17}",
                None,
                Some("573001234567"),
            ),
            ("tel:+573001234567", None, Some("573001234567")),
            ("TEL:+57 300 123 4567", None, Some("573001234567")),
            ("++57 300 123 4567", None, Some("573001234567")),
            ("+57\u{3000}300 123 4567", None, Some("573001234567")),
            ("+57\u{a0}300\u{202f}123 4567", None, Some("573001234567")),
            (
                "+57\u{2009}300\u{2009}123\u{2009}4567",
                None,
                Some("573001234567"),
            ),
            ("(+57) 300 123 4567", co(), Some("573001234567")),
            // Old Mexican forms: libphonenumber refuses them too.
            ("+52 1 55 1234 5678", None, None),
            ("044 55 1234 5678", parse_country("MX"), None),
            ("045 55 1234 5678", parse_country("MX"), None),
            ("1 55 1234 5678", parse_country("MX"), None),
        ] {
            assert_eq!(
                normalize(raw, country).ok().as_deref(),
                want,
                "{raw:?} {country:?}: {:?}",
                normalize(raw, country)
            );
        }
    }

    #[test]
    fn two_numbers_in_one_cell_are_named_as_such() {
        for raw in [
            "3051891679 / 3121942360",
            "3051891679/3121942360",
            "3051891679 - 3121942360",
            "3051891679, 3121942360",
            "3051891679 y 3121942360",
            "+57 305 189 1679; +57 312 194 2360",
            "3051891679 3121942360",
        ] {
            let err = normalize(raw, co()).unwrap_err();
            assert!(err.contains("two numbers in one cell"), "{raw}: {err}");
        }
        // Separators inside one number are not a second number.
        assert_eq!(
            normalize("300/123 4567", co()).as_deref(),
            Ok("573001234567")
        );
    }

    #[test]
    fn old_mexican_forms_say_which_digits_to_drop() {
        let err = normalize("+52 1 55 1234 5678", None).unwrap_err();
        assert!(err.contains("drop the 1 after +52"), "{err}");
        let err = normalize("1 55 1234 5678", parse_country("MX")).unwrap_err();
        assert!(err.contains("drop the 1 after +52"), "{err}");
        for prefix in ["044", "045"] {
            let err =
                normalize(&format!("{prefix} 55 1234 5678"), parse_country("MX")).unwrap_err();
            assert!(err.contains(&format!("drop the {prefix}")), "{err}");
            let err = normalize(&format!("{prefix} 55 1234 5678"), None).unwrap_err();
            assert!(err.contains(&format!("drop the {prefix}")), "{err}");
        }
    }

    #[test]
    fn country_codes_are_checked() {
        assert!(parse_country("CO").is_some());
        assert!(parse_country(" es ").is_some());
        assert!(parse_country("Colombia").is_none());
        assert!(parse_country("XX").is_none());
        assert!(parse_country("ZZ").is_none());
        assert!(parse_country("C1").is_none());
        assert!(parse_country("001").is_none());
        assert!(parse_country("").is_none());
    }

    proptest::proptest! {
        /// Nothing a spreadsheet cell can hold makes the parser panic.
        #[test]
        fn never_panics(
            raw in "(tel:)?[+0-9 ().\\-a-zA-Z/,;|\u{ff10}-\u{ff19}\u{ff0b}\u{200b}\u{202d}\u{2013}\u{3000}]{0,30}",
            national in proptest::bool::ANY,
        ) {
            let _ = normalize(&raw, if national { co() } else { None });
        }
    }
}
