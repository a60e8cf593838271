/*!
How the fields of a text file become text: a byte order mark, the config
(`[input] encoding`) or the file itself decides between UTF-8 and Windows-1252,
field by field over the whole file (`Decoding`), and a field that cannot be read
in the encoding chosen is a `DecodeFailure` naming its row and column (`Place`).
*/

use std::borrow::Cow;
use std::path::Path;

use super::InputError;
use crate::tr;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Bom {
    Utf8,
    Utf16,
}

impl Bom {
    pub(super) fn of(bytes: &[u8]) -> Option<Self> {
        if bytes.starts_with(b"\xEF\xBB\xBF") {
            Some(Self::Utf8)
        } else if bytes.starts_with(b"\xFF\xFE") || bytes.starts_with(b"\xFE\xFF") {
            Some(Self::Utf16)
        } else {
            None
        }
    }
}

/// Why a text file is read as UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Chosen {
    Bom,
    Config,
    Detected,
}

/// Where a field is: `row` is the row a spreadsheet shows, 0 for the header; `column`
/// counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Place {
    pub(super) row: u64,
    pub(super) column: usize,
    pub(super) line: u64,
}

impl Place {
    pub(super) fn describe(self) -> String {
        if self.row == 0 {
            tr!("input-place-header", column = self.column)
        } else {
            tr!("input-place-row", row = self.row, column = self.column)
        }
    }
}

/// A field that cannot be decoded: where to say it is, and why.
#[derive(Debug)]
pub(super) struct DecodeFailure {
    place: Place,
    reason: String,
}

/// How fields of a text file are turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Decoding {
    Utf8 {
        chosen: Chosen,
        /// The first field with multi-byte UTF-8, when detected (for messages).
        first_utf8: Option<Place>,
    },
    /// `first_legacy` is the first field that is not UTF-8, when detected; `None` when
    /// the config chose the encoding (and then no field is checked for UTF-8).
    Windows1252 { first_legacy: Option<Place> },
    /// Auto-detection saw only ASCII so far: the first field that is not
    /// ASCII decides (valid UTF-8 means UTF-8, otherwise Windows-1252).
    Undecided,
}

/// True when `bytes` hold at least one valid multi-byte UTF-8 character.
fn has_utf8_multibyte(bytes: &[u8]) -> bool {
    bytes.utf8_chunks().any(|chunk| !chunk.valid().is_ascii())
}

impl Decoding {
    pub(super) fn name(self) -> String {
        match self {
            Self::Utf8 { .. } => "UTF-8".into(),
            Self::Windows1252 { .. } => "Windows-1252".into(),
            Self::Undecided => tr!("input-encoding-undecided"),
        }
    }

    /// Text of one field at `place`, or why it cannot be decoded.
    pub(super) fn decode(&mut self, bytes: &[u8], place: Place) -> Result<String, DecodeFailure> {
        if bytes.is_ascii() {
            // ASCII is the same in both encodings.
            return Ok(String::from_utf8_lossy(bytes).into_owned());
        }
        let fail = |at: Place, reason: String| DecodeFailure { place: at, reason };
        match *self {
            Self::Utf8 { chosen, first_utf8 } => match std::str::from_utf8(bytes) {
                Ok(text) => Ok(text.to_owned()),
                Err(_) => Err(fail(place, utf8_failure_hint(chosen, first_utf8))),
            },
            Self::Windows1252 { first_legacy: None } => Ok(windows_1252(bytes)),
            Self::Windows1252 {
                first_legacy: Some(first),
            } => {
                if has_utf8_multibyte(bytes) {
                    return Err(fail(
                        first,
                        tr!("input-not-utf8-while", place = place.describe()),
                    ));
                }
                Ok(windows_1252(bytes))
            }
            Self::Undecided => match std::str::from_utf8(bytes) {
                Ok(text) => {
                    *self = Self::Utf8 {
                        chosen: Chosen::Detected,
                        first_utf8: Some(place),
                    };
                    Ok(text.to_owned())
                }
                Err(_) if has_utf8_multibyte(bytes) => Err(fail(place, tr!("input-part-utf8"))),
                Err(_) => {
                    tracing::info!("{}", tr!("input-reading-windows-1252"));
                    *self = Self::Windows1252 {
                        first_legacy: Some(place),
                    };
                    Ok(windows_1252(bytes))
                }
            },
        }
    }
}

/// What to tell the user when a field of a UTF-8 file cannot be decoded.
fn utf8_failure_hint(chosen: Chosen, first_utf8: Option<Place>) -> String {
    match chosen {
        Chosen::Config => tr!("input-not-utf8-config"),
        Chosen::Bom => tr!("input-not-utf8-bom"),
        Chosen::Detected => tr!(
            "input-not-utf8-while",
            place = first_utf8
                .map(Place::describe)
                .unwrap_or_else(|| tr!("input-an-earlier-field"))
        ),
    }
}

fn windows_1252(bytes: &[u8]) -> String {
    match encoding_rs::WINDOWS_1252.decode_without_bom_handling(bytes) {
        (Cow::Borrowed(text), _) => text.to_owned(),
        (Cow::Owned(text), _) => text,
    }
}

impl DecodeFailure {
    pub(super) fn into_error(self, path: &Path) -> InputError {
        InputError::Parse {
            path: path.to_owned(),
            line: self.place.line,
            message: format!("{}: {}", self.place.describe(), self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// Any fields, in any order: either the file is refused, or every field's text
        /// re-encodes to exactly its bytes in the one encoding chosen for the file.
        #[test]
        fn decoding_is_refused_or_exact_in_the_chosen_encoding(
            fields in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::collection::vec(proptest::num::u8::ANY, 0..12),
                    proptest::strategy::Strategy::prop_map("[a-zñé👋 ]{0,8}", String::into_bytes),
                    proptest::collection::vec(0x80u8..=0xff, 1..4),
                ],
                1..12,
            )
        ) {
            use proptest::prelude::*;
            let mut decoding = Decoding::Undecided;
            let mut texts = Vec::new();
            let mut refused = false;
            for (i, f) in fields.iter().enumerate() {
                let place = Place { row: i as u64 + 1, column: 1, line: i as u64 + 2 };
                match decoding.decode(f, place) {
                    Ok(t) => texts.push(t),
                    Err(_) => { refused = true; break; }
                }
            }
            if !refused {
                for (text, bytes) in texts.iter().zip(&fields) {
                    match decoding {
                        Decoding::Windows1252 { .. } => {
                            let (back, _, bad) = encoding_rs::WINDOWS_1252.encode(text);
                            prop_assert!(!bad);
                            prop_assert_eq!(back.as_ref(), bytes.as_slice());
                        }
                        _ => prop_assert_eq!(text.as_bytes(), bytes.as_slice()),
                    }
                }
            }
        }
    }
}
