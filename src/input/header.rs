/*!
Header names as people write them: `Teléfono`, ` CELULAR `, `Número de celular`.

Two names are the same column when their *identifiers* are equal: accents
stripped (Unicode NFD, combining marks dropped), lowercased, and every run of
other characters than letters and digits turned into one `_` (`Número de
celular` is `numero_de_celular`). The same identifiers name the columns in
message templates (`{{ numero_de_celular }}`).

A role (telephone, message, connector id) left at its default name also
accepts the common aliases below; a name set in `[columns]` is used alone.
*/

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Aliases of the telephone column, as identifiers.
pub(crate) const TELEPHONE_ALIASES: &[&str] = &[
    "telephone",
    "telefono",
    "tel",
    "phone",
    "phone_number",
    "celular",
    "cel",
    "movil",
    "mobile",
    "whatsapp",
    "numero",
    "numero_celular",
    "numero_de_celular",
    "numero_telefono",
    "numero_de_telefono",
    "numero_whatsapp",
    "numero_de_whatsapp",
    "telefono_celular",
    "telefono_movil",
    "number",
    "msisdn",
];

/// Aliases of the message column, as identifiers.
pub(crate) const MESSAGE_ALIASES: &[&str] = &["message", "mensaje", "texto", "text"];

/// Aliases of the connector id column, as identifiers.
pub(crate) const CONNECTOR_ALIASES: &[&str] =
    &["connector_id", "conector_id", "id_conector", "conector"];

/// `name` without accents, lowercased, trimmed; inner spaces kept.
pub(crate) fn fold(name: &str) -> String {
    let name = name.trim();
    // ASCII has no accents to strip: skip the decomposition, which a header of a
    // million columns (or one 100 MB name) would pay for on every lookup.
    if name.is_ascii() {
        return name.to_ascii_lowercase();
    }
    name.nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect()
}

/// `name` as a template variable and matching key: `Número de celular` is
/// `numero_de_celular`. Runs of characters other than ASCII letters and digits
/// become one `_`, none at either end; a leading digit gets a `_` before it
/// (an identifier cannot start with one). Empty for a name with no letter or digit.
pub(crate) fn identifier(name: &str) -> String {
    let folded;
    // ASCII needs no decomposition: lower-case it on the way, without a folded copy.
    let text = if name.is_ascii() {
        name.trim()
    } else {
        folded = fold(name);
        &folded
    };
    let mut out = String::with_capacity(text.len());
    let mut gap = false;
    for c in text.chars().map(|c| c.to_ascii_lowercase()) {
        if c.is_ascii_alphanumeric() {
            if gap && !out.is_empty() {
                out.push('_');
            }
            gap = false;
            out.push(c);
        } else {
            gap = true;
        }
    }
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// Where a role's column is, if anywhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    None,
    At(usize),
    /// Two columns match: their positions (0-based).
    Twice(usize, usize),
}

/// Finds the column named `name`, or, when `name` is the role's `default`,
/// any column named like one of `aliases`.
pub(crate) fn find(header: &[String], name: &str, default: &str, aliases: &[&str]) -> Found {
    let wanted = identifier(name);
    let use_aliases = wanted == identifier(default);
    let mut found = Found::None;
    for (i, h) in header.iter().enumerate() {
        let id = identifier(h);
        let hit = if use_aliases {
            aliases.contains(&id.as_str()) || id == wanted
        } else {
            id == wanted
        };
        if !hit || id.is_empty() {
            continue;
        }
        found = match found {
            Found::None => Found::At(i),
            Found::At(first) => return Found::Twice(first, i),
            twice => twice,
        };
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn names_fold_case_accents_and_spaces() {
        assert_eq!(fold("  Teléfono "), "telefono");
        assert_eq!(fold("MÓVIL"), "movil");
        assert_eq!(fold("Señora Núñez"), "senora nunez");
        assert_eq!(identifier(" Número de  Celular "), "numero_de_celular");
        assert_eq!(identifier("Fecha-cita (día)"), "fecha_cita_dia");
        assert_eq!(identifier("1er nombre"), "_1er_nombre");
        assert_eq!(identifier("connector id"), "connector_id");
        assert_eq!(identifier("--"), "");
    }

    #[test]
    fn defaults_accept_aliases_explicit_names_do_not() {
        let h = header(&["Nombre", " Teléfono ", "MENSAJE"]);
        assert_eq!(
            find(&h, "telephone", "telephone", TELEPHONE_ALIASES),
            Found::At(1)
        );
        assert_eq!(
            find(&h, "message", "message", MESSAGE_ALIASES),
            Found::At(2)
        );
        // An explicit name is used alone (still ignoring case and accents).
        assert_eq!(
            find(&h, "nombre", "telephone", TELEPHONE_ALIASES),
            Found::At(0)
        );
        assert_eq!(
            find(&h, "Celular", "telephone", TELEPHONE_ALIASES),
            Found::None
        );
        assert_eq!(
            find(
                &header(&["celular"]),
                "CELULAR",
                "telephone",
                TELEPHONE_ALIASES
            ),
            Found::At(0)
        );
    }

    #[test]
    fn two_matching_columns_are_reported() {
        let h = header(&["Teléfono", "Celular", "Mensaje"]);
        assert_eq!(
            find(&h, "telephone", "telephone", TELEPHONE_ALIASES),
            Found::Twice(0, 1)
        );
        assert_eq!(
            find(&h, "celular", "telephone", TELEPHONE_ALIASES),
            Found::At(1)
        );
    }
}
