/*!
Opt-out (suppression) lists: numbers that must never be sent anything.

A list is given with `--suppress FILE` (repeatable) or `[campaign] suppress`.
It may be a table (CSV or a spreadsheet, read by `input`) whose
telephone column is found by name (the configured `columns.telephone`, or
telephone, phone, teléfono, celular, móvil...) or else is the first column; or
a plain list, one number per line, where blank lines and lines starting with
`#` are ignored. Every number goes through the same normalization as contact
rows (`phone::normalize`, with the same `phone.default_country`), so
`+57 300 123 4567` on the list matches `573001234567` in the contacts.

A list that cannot be read stops the run before anything is sent. A single
entry that is not a number is a warning naming the file and line, and the
rest of the list still applies: a typo in an opt-out list must not block a
campaign, but it must be visible. A list none of whose entries is a number is
refused (wrong file or wrong column).
*/

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::validate::phone::Country;

use crate::input::{self, header};
use crate::tr;

/// Bad entries reported one by one per file; the rest are counted.
const MAX_WARNINGS_PER_FILE: usize = 20;

#[derive(Debug, thiserror::Error)]
pub enum SuppressError {
    #[error("{}", tr!("suppress-read", path = .path, error = .source))]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}", tr!("suppress-input", error = .0.to_string()))]
    Input(#[from] input::InputError),
    #[error("{}", tr!(
        "suppress-no-numbers",
        path = .path,
        entries = *.entries,
        line = *.line,
        reason = .reason
    ))]
    NoNumbers {
        path: PathBuf,
        entries: usize,
        line: u64,
        reason: String,
    },
}

/// An entry of a list that is not a telephone number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub(crate) path: PathBuf,
    pub(crate) line: u64,
    pub(crate) reason: String,
}

/// Every opted-out number, normalized, with the list it came from.
#[derive(Debug, Default)]
pub(crate) struct Suppression {
    /// Normalized number -> index in `lists` of the first list naming it.
    numbers: HashMap<String, usize>,
    lists: Vec<PathBuf>,
    /// Entries that were not numbers, over every list.
    skipped: usize,
}

/// The one place list entries are normalized: exactly as contact rows are.
fn normalize(raw: &str, default_country: Option<Country>) -> Result<String, String> {
    crate::validate::phone::normalize(raw, default_country)
}

/// A header naming the telephone column: the contact list's configured name or one of
/// the telephone aliases, compared as identifiers (no case, accents or spacing).
fn is_telephone_name(name: &str, configured: &str) -> bool {
    let name = header::identifier(name);
    !name.is_empty()
        && (name == header::identifier(configured)
            || header::TELEPHONE_ALIASES.contains(&name.as_str()))
}

impl Suppression {
    /// Reads every list. `telephone_column` is the contact list's configured column name,
    /// also looked for in tabular opt-out lists; numbers without country code are read
    /// as numbers of `default_country` (`phone.default_country`), as contact rows are.
    pub(crate) fn load(
        paths: &[PathBuf],
        telephone_column: &str,
        default_country: Option<Country>,
    ) -> Result<Self, SuppressError> {
        let mut out = Suppression::default();
        for path in paths {
            let index = out.lists.len();
            out.lists.push(path.clone());
            let entries = read_entries(path, telephone_column, default_country)?;
            let total = entries.len();
            let mut skipped = Vec::new();
            let mut numbers = 0usize;
            for (line, raw) in entries {
                match normalize(&raw, default_country) {
                    Ok(n) => {
                        numbers += 1;
                        out.numbers.entry(n).or_insert(index);
                    }
                    Err(reason) => skipped.push(Skipped {
                        path: path.clone(),
                        line,
                        reason,
                    }),
                }
            }
            if numbers == 0
                && let Some(first) = skipped.first()
            {
                return Err(SuppressError::NoNumbers {
                    path: path.clone(),
                    entries: total,
                    line: first.line,
                    reason: first.reason.clone(),
                });
            }
            for s in skipped.iter().take(MAX_WARNINGS_PER_FILE) {
                tracing::warn!(
                    "{}",
                    tr!(
                        "suppress-entry-ignored",
                        path = s.path.display(),
                        line = s.line,
                        reason = s.reason
                    )
                );
            }
            if skipped.len() > MAX_WARNINGS_PER_FILE {
                tracing::warn!(
                    "{}",
                    tr!(
                        "suppress-more-ignored",
                        path = path.display(),
                        count = skipped.len() - MAX_WARNINGS_PER_FILE
                    )
                );
            }
            out.skipped += skipped.len();
            tracing::debug!(
                "opt-out list {}: {numbers} numbers, {} entries ignored",
                path.display(),
                skipped.len()
            );
        }
        Ok(out)
    }

    /// The list that opts this normalized number out, if any.
    pub(crate) fn list_for(&self, telephone: &str) -> Option<&Path> {
        let index = *self.numbers.get(telephone)?;
        self.lists.get(index).map(PathBuf::as_path)
    }

    /// Distinct numbers over every list.
    pub(crate) fn len(&self) -> usize {
        self.numbers.len()
    }

    pub(crate) fn lists(&self) -> &[PathBuf] {
        &self.lists
    }

    /// Entries that were not telephone numbers (each was logged as a warning).
    pub(crate) fn skipped(&self) -> usize {
        self.skipped
    }
}

/// The raw telephone entries of one list, each with its line.
fn read_entries(
    path: &Path,
    telephone_column: &str,
    default_country: Option<Country>,
) -> Result<Vec<(u64, String)>, SuppressError> {
    if input::is_spreadsheet(path) {
        return table_entries(path, telephone_column, default_country);
    }
    let bytes = std::fs::read(path).map_err(|source| SuppressError::Read {
        path: path.to_owned(),
        source,
    })?;
    // Numbers are ASCII: any ASCII-compatible encoding reads the same here.
    let text = String::from_utf8_lossy(&bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let meaningful = |line: &str| {
        let t = line.trim();
        !t.is_empty() && !t.starts_with('#')
    };
    let tabular = text
        .lines()
        .filter(|l| meaningful(l))
        .any(|l| l.contains([',', ';', '\t', '|']));
    if tabular {
        return table_entries(path, telephone_column, default_country);
    }
    let mut entries = Vec::new();
    let mut first = true;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if !meaningful(t) {
            continue;
        }
        // A first line with no digit at all is a header ("telefono"), not an entry.
        let header = first && !t.bytes().any(|b| b.is_ascii_digit());
        first = false;
        if !header {
            // A one-column CSV may quote its cells.
            let cell = t
                .strip_prefix('"')
                .and_then(|c| c.strip_suffix('"'))
                .unwrap_or(t);
            entries.push((i as u64 + 1, cell.trim().to_owned()));
        }
    }
    Ok(entries)
}

/// Entries of a table: the telephone-named column, or the first one. A header whose
/// first cell is itself a number means the table has no header.
fn table_entries(
    path: &Path,
    telephone_column: &str,
    default_country: Option<Country>,
) -> Result<Vec<(u64, String)>, SuppressError> {
    let rows = input::open(path)?;
    let header = rows.header().to_vec();
    let named = header
        .iter()
        .position(|h| is_telephone_name(h, telephone_column));
    let column = named.unwrap_or(0);
    let mut entries = Vec::new();
    if named.is_none()
        && let Some(first) = header.first()
        && normalize(first, default_country).is_ok()
    {
        entries.push((1, first.clone()));
    }
    for record in rows {
        let record = record?;
        let Some(cell) = record.fields.get(column).map(|c| c.trim()) else {
            continue;
        };
        if cell.is_empty() || cell.starts_with('#') || is_telephone_name(cell, telephone_column) {
            continue;
        }
        entries.push((record.line, cell.to_owned()));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Suppression {
        fn is_empty(&self) -> bool {
            self.numbers.is_empty()
        }
    }

    /// Every number of `paths`, read as the list's `telephone` column would be.
    fn load(paths: &[PathBuf]) -> Result<Suppression, SuppressError> {
        Suppression::load(paths, "telephone", None)
    }

    fn list(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn plain_lists_match_whatever_the_formatting() {
        let dir = tempfile::tempdir().unwrap();
        let a = list(
            dir.path(),
            "optout.txt",
            "\u{feff}# people who said stop\ntelefono\n+57 300 123 4567\r\n\n0057-301-456-7890\n   # indented comment\n\"573109876543\"\n",
        );
        let s = load(std::slice::from_ref(&a)).unwrap();
        assert_eq!(s.len(), 3);
        assert_eq!(s.list_for("573001234567"), Some(a.as_path()));
        assert_eq!(s.list_for("573014567890"), Some(a.as_path()));
        assert_eq!(s.list_for("573109999999"), None);
        assert_eq!(s.skipped(), 0);
    }

    #[test]
    fn national_numbers_use_the_default_country_as_contact_rows_do() {
        let dir = tempfile::tempdir().unwrap();
        let a = list(dir.path(), "bajas.txt", "300 123 4567\n573014567890\n");
        let s = Suppression::load(
            std::slice::from_ref(&a),
            "telephone",
            crate::validate::phone::parse_country("CO"),
        )
        .unwrap();
        assert_eq!(s.list_for("573001234567"), Some(a.as_path()));
        assert_eq!(s.list_for("573014567890"), Some(a.as_path()));
        assert_eq!(s.skipped(), 0);
        // Without it, the national number is not understood (and reported).
        let s = load(std::slice::from_ref(&a)).unwrap();
        assert_eq!((s.len(), s.skipped()), (1, 1));
    }

    #[test]
    fn tables_use_the_telephone_column_or_the_first() {
        let dir = tempfile::tempdir().unwrap();
        let named = list(
            dir.path(),
            "bajas.csv",
            "Nombre,Teléfono,motivo\nAna,\"+57 300 123 4567\",\"no, gracias\"\nLuis,573014567890,\n",
        );
        let configured = list(dir.path(), "c.csv", "id,Celu\n1,573109998877\n");
        let first = list(
            dir.path(),
            "f.csv",
            "numero_cliente,nombre\n573205556677,Eva\n",
        );
        let headerless = list(dir.path(), "h.csv", "573001112233,Ana\n573004445566,Luis\n");
        let s = Suppression::load(
            &[named.clone(), configured, first, headerless.clone()],
            "celu",
            None,
        )
        .unwrap();
        assert_eq!(s.list_for("573001234567"), Some(named.as_path()));
        assert_eq!(s.list_for("573014567890"), Some(named.as_path()));
        assert!(s.list_for("573109998877").is_some());
        assert!(s.list_for("573205556677").is_some());
        assert_eq!(s.list_for("573001112233"), Some(headerless.as_path()));
        assert_eq!(s.len(), 6);
        assert_eq!(s.lists().len(), 4);
    }

    #[test]
    fn a_bad_entry_is_skipped_and_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let a = list(
            dir.path(),
            "o.txt",
            "573001234567\n57300abc\n5.73E+11\n573014567890\n",
        );
        let s = load(&[a]).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.skipped(), 2);
    }

    #[test]
    fn unreadable_lists_and_lists_without_numbers_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.csv");
        let err = load(&[missing]).unwrap_err();
        assert!(matches!(err, SuppressError::Read { .. }), "{err}");
        assert!(err.to_string().contains("nope.csv"), "{err}");
        let wrong = list(
            dir.path(),
            "w.csv",
            "nombre,ciudad\nAna,Bogotá\nLuis,Cali\n",
        );
        let err = load(&[wrong]).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("w.csv") && text.contains("line 2"), "{text}");
        // An empty list is fine: nobody has opted out yet.
        let empty = list(dir.path(), "e.txt", "# nobody yet\n");
        assert!(load(&[empty]).unwrap().is_empty());
    }

    #[test]
    fn header_names_are_compared_without_case_or_accents() {
        assert!(is_telephone_name(" TELÉFONO ", "telephone"));
        assert!(is_telephone_name("Móvil", "telephone"));
        assert!(is_telephone_name("WhatsApp", "telephone"));
        assert!(is_telephone_name("Numero Cel", "numero cel"));
        assert!(!is_telephone_name("nombre", "telephone"));
        assert!(!is_telephone_name("", ""));
    }
}
