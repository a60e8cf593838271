/*!
A spreadsheet cell as the spreadsheet shows it: the cell's number format applied
to its value (decimals, thousands separators, percent, currency, dates and times
in the cell's own format), in the conventions of `[input] locale` (Colombian by
default: `1.250.000,50`, `9:00 a. m.`), since a workbook does not record the
conventions of the machine that shows it.

Number formats are read from .xlsx/.xlsm workbooks (calamine's cell styles) and
applied with ssfmt. Where there is no format (the General format, text `@`, or a
.xls/.xlsb/.ods workbook, whose styles calamine does not read) a number is shown
as Excel shows it in a wide enough cell: at most 15 significant digits, never in
scientific notation (a phone stored as `573001234567.0` is `573001234567`, and a
formula's `0.30000000000000004` is `0.3`). Built-in date formats 14 and 22 are
the locale's short date, as Excel shows them.

An error cell (`#DIV/0!`, `#N/A`, `#REF!`...) is a `Shown::Error`, and so is a field
of a text file that is exactly such an error (`exported_errors`: how a spreadsheet
exports one): the validator refuses a row that uses it.
*/

use std::collections::HashMap;
use std::rc::Rc;

use calamine::{Data, StyleRange};

/// The conventions numbers, dates and times are shown in (`[input] locale`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum NumberLocale {
    /// Colombia: `1.234,5`, `14/03/2025`, `9:00 a. m.`.
    #[default]
    EsCo,
    /// Spain: as Colombia.
    EsEs,
    /// Mexico: `1,234.5`, `14/03/2025`, `9:00 a. m.`.
    EsMx,
    /// United States: `1,234.5`, `3/14/2025`, `9:00 AM`.
    EnUs,
}

impl NumberLocale {
    /// Parses `[input] locale`: `es-CO`, `es-ES`, `es-MX`, `en-US` (any case, `_` or `-`).
    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "es-co" | "es" => Some(Self::EsCo),
            "es-es" => Some(Self::EsEs),
            "es-mx" => Some(Self::EsMx),
            "en-us" | "en" => Some(Self::EnUs),
            _ => None,
        }
    }

    fn spanish(self) -> bool {
        !matches!(self, Self::EnUs)
    }

    fn ssfmt(self) -> ssfmt::Locale {
        let mut locale = ssfmt::Locale::en_us();
        let (decimal, thousands) = match self {
            Self::EsCo | Self::EsEs => (',', '.'),
            Self::EsMx | Self::EnUs => ('.', ','),
        };
        locale.decimal_separator = decimal;
        locale.thousands_separator = thousands;
        if self.spanish() {
            locale.am_string = "a. m.";
            locale.pm_string = "p. m.";
            locale.month_names_short = [
                "ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sept", "oct", "nov", "dic",
            ];
            locale.month_names_full = [
                "enero",
                "febrero",
                "marzo",
                "abril",
                "mayo",
                "junio",
                "julio",
                "agosto",
                "septiembre",
                "octubre",
                "noviembre",
                "diciembre",
            ];
            locale.day_names_short = ["dom", "lun", "mar", "mié", "jue", "vie", "sáb"];
            locale.day_names_full = [
                "domingo",
                "lunes",
                "martes",
                "miércoles",
                "jueves",
                "viernes",
                "sábado",
            ];
        }
        locale
    }

    /// The short date Excel shows for built-in format 14 in this locale.
    fn short_date(self) -> &'static str {
        match self {
            Self::EnUs => "m/d/yyyy",
            _ => "dd/mm/yyyy",
        }
    }
}

/// A cell as shown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Shown {
    Text(String),
    /// An error value, as the spreadsheet shows it (`#DIV/0!`).
    Error(String),
}

/// Shows the cells of one sheet.
pub(crate) struct CellDisplay {
    styles: Option<StyleRange>,
    locale: NumberLocale,
    options: ssfmt::FormatOptions,
    /// Parsed format codes (a sheet uses few), `None` for General and codes ssfmt refuses.
    parsed: HashMap<String, Option<Rc<ssfmt::NumberFormat>>>,
}

impl CellDisplay {
    /// `styles`: the sheet's cell styles when the workbook has them (.xlsx).
    pub(crate) fn new(styles: Option<StyleRange>, locale: NumberLocale) -> Self {
        Self {
            styles,
            locale,
            options: ssfmt::FormatOptions {
                date_system: ssfmt::DateSystem::Date1900,
                locale: locale.ssfmt(),
            },
            parsed: HashMap::new(),
        }
    }

    /// The cell at `position` (absolute, 0-based row and column) as shown.
    pub(crate) fn show(&mut self, cell: &Data, position: (u32, u32)) -> Shown {
        let value = match cell {
            Data::Empty => return Shown::Text(String::new()),
            // An .ods keeps a formula's error as its text.
            Data::String(s) if s.starts_with('#') && ERROR_TEXTS.contains(&s.as_str()) => {
                return Shown::Error(s.clone());
            }
            Data::String(s) => return Shown::Text(s.clone()),
            Data::Bool(true) => return Shown::Text("TRUE".into()),
            Data::Bool(false) => return Shown::Text("FALSE".into()),
            Data::Error(e) => return Shown::Error(e.to_string()),
            Data::DateTimeIso(_) | Data::DurationIso(_) => {
                return Shown::Text(cell_text(cell));
            }
            Data::Int(i) => *i as f64,
            Data::Float(f) => *f,
            Data::DateTime(dt) => dt.as_f64(),
        };
        if let Some(format) = self.format_at(position) {
            let text = formatted(&format, value, &self.options, self.locale);
            let text = text.trim();
            // A format that shows nothing useful (or fills the cell with `#`) says
            // nothing a message can carry: the value is shown instead.
            if !text.is_empty() && !text.chars().all(|c| c == '#') {
                return Shown::Text(text.to_owned());
            }
        }
        Shown::Text(match cell {
            Data::DateTime(dt) => cell_text(&Data::DateTime(*dt)),
            _ => general(value, self.locale),
        })
    }

    /// The number format code of the cell at `position` (the locale's for Excel's
    /// built-in short date and date-time), whatever it is.
    fn code_at(&self, position: (u32, u32)) -> Option<&str> {
        let style = self.styles.as_ref()?.get(position)?;
        let number = style.number_format.as_ref()?;
        Some(match number.format_id {
            Some(14) => self.locale.short_date(),
            Some(22) => match self.locale {
                NumberLocale::EnUs => "m/d/yyyy h:mm",
                _ => "dd/mm/yyyy h:mm",
            },
            _ => number.format_code.as_str(),
        })
    }

    /// A date, time or date-time cell as the workbook of results copies it: its Excel
    /// serial value and the format code it is shown in (a plain date-time one when the
    /// cell has none), so the copy stays a real date shown as the list showed it.
    pub(crate) fn date_at(&self, cell: &Data, position: (u32, u32)) -> Option<(f64, String)> {
        let Data::DateTime(dt) = cell else {
            return None;
        };
        let value = dt.as_f64();
        let code = self
            .code_at(position)
            .filter(|c| !c.eq_ignore_ascii_case("general") && *c != "@" && !c.is_empty())
            .map(str::to_owned)
            .unwrap_or_else(|| {
                match (value.fract() == 0.0, value < 1.0) {
                    (true, _) => "yyyy-mm-dd",
                    (false, true) => "hh:mm",
                    (false, false) => "yyyy-mm-dd hh:mm",
                }
                .to_owned()
            });
        value.is_finite().then_some((value, code))
    }

    /// The parsed number format of the cell at `position`, unless it is General.
    fn format_at(&mut self, position: (u32, u32)) -> Option<Rc<ssfmt::NumberFormat>> {
        let code = self.code_at(position)?;
        if let Some(parsed) = self.parsed.get(code) {
            return parsed.clone();
        }
        let code = code.to_owned();
        let code = code.as_str();
        let plain = code.eq_ignore_ascii_case("general") || code == "@" || code.is_empty();
        let parsed = if plain {
            None
        } else {
            std::panic::catch_unwind(|| ssfmt::NumberFormat::parse(code))
                .ok()
                .and_then(Result::ok)
                .map(Rc::new)
        };
        self.parsed.insert(code.to_owned(), parsed.clone());
        parsed
    }
}

/// The errors a spreadsheet shows, as its CSV export writes them.
const ERROR_TEXTS: [&str; 10] = [
    "#DIV/0!",
    "#N/A",
    "#REF!",
    "#VALUE!",
    "#NAME?",
    "#NUM!",
    "#NULL!",
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
];

/// The fields of a text file that are an error exported from a spreadsheet (a field
/// that is exactly `#DIV/0!`, `#N/A`...), by column (0-based), as `Record::errors`.
pub(crate) fn exported_errors(fields: &[String]) -> Vec<(usize, String)> {
    fields
        .iter()
        .enumerate()
        .filter(|(_, f)| f.starts_with('#') && ERROR_TEXTS.contains(&f.trim()))
        .map(|(i, f)| (i, f.trim().to_owned()))
        .collect()
}

/// `value` in `format`, in the conventions of `locale`.
fn formatted(
    format: &ssfmt::NumberFormat,
    value: f64,
    options: &ssfmt::FormatOptions,
    locale: NumberLocale,
) -> String {
    // ssfmt is young: a format code it mishandles must not stop the run; the value
    // is then shown as in the General format (the fuzz tests below found none).
    let shown = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        format.format(value, options)
    }));
    let Ok(text) = shown else {
        return general(value, locale);
    };
    if locale.spanish() {
        // ssfmt writes the locale's AM/PM in capitals; Spanish Excel shows `a. m.`.
        text.replace("A. M.", "a. m.").replace("P. M.", "p. m.")
    } else {
        text
    }
}

/// A number in the General format: at most 15 significant digits (as Excel keeps and
/// shows them), never an exponent, with the locale's decimal mark and no grouping.
pub(crate) fn general(value: f64, locale: NumberLocale) -> String {
    let text = fifteen_digits(value);
    match locale {
        NumberLocale::EsCo | NumberLocale::EsEs => text.replace('.', ","),
        NumberLocale::EsMx | NumberLocale::EnUs => text,
    }
}

/// `value` rounded to 15 significant digits, as the shortest decimal text (no exponent).
pub(crate) fn fifteen_digits(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        // Also turns -0 into 0.
        return if value.is_finite() {
            "0".into()
        } else {
            value.to_string()
        };
    }
    // Integers up to 15 digits are exact already; larger ones are rounded below too.
    let rounded: f64 = format!("{value:.14e}").parse().unwrap_or(value);
    // Rust's `Display` for f64 never uses an exponent and drops `.0`.
    rounded.to_string()
}

/// A cell as the text the user sees or typed.
pub(crate) fn cell_text(cell: &Data) -> String {
    match cell {
        Data::Empty => String::new(),
        Data::String(s) => s.clone(),
        Data::Int(i) => i.to_string(),
        Data::Float(f) => float_text(*f),
        Data::Bool(true) => "TRUE".into(),
        Data::Bool(false) => "FALSE".into(),
        Data::DateTime(dt) => datetime_text(dt),
        Data::DateTimeIso(s) => s
            .strip_suffix("T00:00:00")
            .unwrap_or(s)
            .replacen('T', " ", 1),
        Data::DurationIso(s) => iso_duration_text(s).unwrap_or_else(|| s.clone()),
        Data::Error(e) => e.to_string(),
    }
}

/// A float as decimal digits, never in scientific notation: integral values
/// without a fraction (`573001234567.0` is `573001234567`), others as the
/// shortest text that reads back as the same number.
pub(crate) fn float_text(f: f64) -> String {
    if f == 0.0 {
        // Also turns -0 into 0.
        return "0".into();
    }
    // Rust's `Display` for f64 never uses an exponent and drops `.0`.
    f.to_string()
}

/// An .ods time (`PT09H30M00S`, `PT33H00M00.5S`) as `09:30` (`HH:MM:SS` with seconds),
/// as times of .xlsx cells without a format are shown; `None` for other durations.
fn iso_duration_text(iso: &str) -> Option<String> {
    let rest = iso.strip_prefix("PT")?;
    let (hours, rest) = rest.split_once('H')?;
    let (minutes, rest) = rest.split_once('M')?;
    let seconds = rest.strip_suffix('S')?;
    let hours: u64 = hours.parse().ok()?;
    let minutes: u64 = minutes.parse().ok()?;
    let seconds: f64 = seconds.parse().ok()?;
    let seconds = seconds.round() as u64;
    Some(if seconds == 0 {
        format!("{hours:02}:{minutes:02}")
    } else {
        format!("{hours:02}:{minutes:02}:{seconds:02}")
    })
}

/// Dates as `YYYY-MM-DD`, times as `HH:MM` (`HH:MM:SS` with seconds), both
/// when the cell has both; durations as `H:MM:SS`.
fn datetime_text(dt: &calamine::ExcelDateTime) -> String {
    let value = dt.as_f64();
    if dt.is_duration() || !value.is_finite() || value < 0.0 {
        let secs = (value * 86_400.0).round();
        if !secs.is_finite() {
            return float_text(value);
        }
        let secs = secs.abs() as u64;
        return format!("{}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    }
    // The time of day, rounded to the second: 10:31 is stored as 0.438194...,
    // which calamine turns into 10:30:59.999.
    let secs = ((value.fract() * 86_400.0).round() as u64).min(86_399);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let (y, mo, d, ..) = dt.to_ymd_hms_milli();
    let time = if s == 0 {
        format!("{h:02}:{mi:02}")
    } else {
        format!("{h:02}:{mi:02}:{s:02}")
    };
    let date = format!("{y:04}-{mo:02}-{d:02}");
    if value < 1.0 {
        time
    } else if (h, mi, s) == (0, 0, 0) {
        date
    } else {
        format!("{date} {time}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ods_times_read_as_clock_times() {
        assert_eq!(iso_duration_text("PT09H00M00S").as_deref(), Some("09:00"));
        assert_eq!(
            iso_duration_text("PT15H30M05.4S").as_deref(),
            Some("15:30:05")
        );
        assert_eq!(iso_duration_text("P1DT1H"), None);
        assert_eq!(iso_duration_text("PT1H2M").as_deref(), None);
        assert_eq!(iso_duration_text("PTxH00M00S"), None);
    }

    #[test]
    fn numeric_cells_print_as_typed() {
        assert_eq!(float_text(573001234567.0), "573001234567");
        assert_eq!(float_text(3001234567.0), "3001234567");
        assert_eq!(float_text(1e20), "100000000000000000000");
        assert_eq!(float_text(12.5), "12.5");
        assert_eq!(float_text(0.1), "0.1");
        assert_eq!(float_text(-0.0), "0");
        assert_eq!(cell_text(&Data::Int(42)), "42");
        assert_eq!(cell_text(&Data::Bool(true)), "TRUE");
        assert_eq!(cell_text(&Data::Empty), "");
        assert_eq!(cell_text(&Data::Error(calamine::CellErrorType::NA)), "#N/A");
        assert_eq!(
            cell_text(&Data::DateTimeIso("2025-03-14T00:00:00".into())),
            "2025-03-14"
        );
    }

    #[test]
    fn dates_and_times_print_as_iso_text() {
        let dt = |v: f64| {
            cell_text(&Data::DateTime(calamine::ExcelDateTime::new(
                v,
                calamine::ExcelDateTimeType::DateTime,
                false,
            )))
        };
        assert_eq!(dt(45730.0), "2025-03-14");
        assert_eq!(dt(45730.4375), "2025-03-14 10:30");
        // 10:31 is not exact in binary: still 10:31, not 10:30:59.
        assert_eq!(dt(10.0 / 24.0 + 31.0 / 1440.0), "10:31");
        assert_eq!(dt(0.5 + 15.0 / 86400.0), "12:00:15");
        let duration =
            calamine::ExcelDateTime::new(1.5, calamine::ExcelDateTimeType::TimeDelta, false);
        assert_eq!(cell_text(&Data::DateTime(duration)), "36:00:00");
    }

    proptest::proptest! {
        /// No format code a workbook can hold, applied to any value, panics.
        #[test]
        fn any_format_and_value_never_panic(
            code in "[0#?.,;%E+\\-/ :\"@*_\\\\$\\[\\]<>=a-zA-Z0-9]{0,24}",
            value in proptest::num::f64::ANY,
        ) {
            let cell = Data::Float(value);
            let mut display = CellDisplay::new(None, NumberLocale::EsCo);
            let _ = display.show(&cell, (0, 0));
            if let Ok(format) = ssfmt::NumberFormat::parse(&code) {
                let _ = formatted(&format, value, &display.options, NumberLocale::EsCo);
            }
        }
    }

    #[test]
    fn odd_formats_and_extreme_values_never_panic() {
        let codes = [
            "[>=100]0;[<0]0.0;0.00",
            "0;0;0;0;0",
            "[$-F800]dddd, mmmm dd, yyyy",
            "yyyy-mm-dd",
            "[h]:mm:ss",
            "mm:ss.000",
            "# ?/?",
            "# ??????/??????",
            "0E+00",
            "##0.0E+0",
            "@",
            "\"texto\"",
            "[Red][<=-1]0;[Blue][>=1]0;0",
            "0000000000000000000000000000000000000000",
            "#,##0,,",
            "B2yyyy/mm/dd",
            "[$-1010000]d/m/yyyy",
            "[ENG][$-409]mmmm d, yyyy",
        ];
        let values = [
            0.0,
            -0.0,
            -1.0,
            1e-300,
            -1e300,
            1e300,
            f64::MAX,
            f64::MIN,
            2_958_466.0,
            -693_594.0,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let options = ssfmt::FormatOptions {
            date_system: ssfmt::DateSystem::Date1900,
            locale: NumberLocale::EsCo.ssfmt(),
        };
        for code in codes {
            let Ok(format) = ssfmt::NumberFormat::parse(code) else {
                continue;
            };
            for value in values {
                let _ = formatted(&format, value, &options, NumberLocale::EsCo);
            }
        }
        for value in values {
            let _ = general(value, NumberLocale::EsCo);
        }
    }

    #[test]
    fn general_numbers_have_fifteen_significant_digits_and_no_exponent() {
        assert_eq!(fifteen_digits(0.1 + 0.2), "0.3");
        assert_eq!(fifteen_digits(1.1 * 3.0), "3.3");
        assert_eq!(fifteen_digits(573001234567.0), "573001234567");
        assert_eq!(fifteen_digits(-0.0), "0");
        assert_eq!(fifteen_digits(1e20), "100000000000000000000");
        assert_eq!(fifteen_digits(1.0 / 3.0), "0.333333333333333");
        assert_eq!(general(1234.5, NumberLocale::EsCo), "1234,5");
        assert_eq!(general(1234.5, NumberLocale::EnUs), "1234.5");
    }

    #[test]
    fn formats_are_applied_in_the_locale() {
        let show = |code: &str, value: f64, locale: NumberLocale| {
            let format = ssfmt::NumberFormat::parse(code).expect("code");
            let options = ssfmt::FormatOptions {
                date_system: ssfmt::DateSystem::Date1900,
                locale: locale.ssfmt(),
            };
            formatted(&format, value, &options, locale)
        };
        assert_eq!(show("#,##0.00", 1234.5, NumberLocale::EsCo), "1.234,50");
        assert_eq!(show("#,##0.00", 1234.5, NumberLocale::EsMx), "1,234.50");
        assert_eq!(show("0%", 0.15, NumberLocale::EsCo), "15%");
        assert_eq!(
            show("dd/mm/yyyy", 45730.0, NumberLocale::EsCo),
            "14/03/2025"
        );
        assert_eq!(show("h:mm AM/PM", 0.375, NumberLocale::EsCo), "9:00 a. m.");
        assert_eq!(
            show("d \"de\" mmmm \"de\" yyyy", 45730.0, NumberLocale::EsCo),
            "14 de marzo de 2025"
        );
        // Colours, conditions and sections change the text as Excel's do, no more.
        assert_eq!(show("[Red]0.00", 2.5, NumberLocale::EsCo), "2,50");
        assert_eq!(
            show("#,##0;(#,##0)", -1234.0, NumberLocale::EsCo),
            "(1.234)"
        );
        assert_eq!(show("[>=100]0;0.0", 5.0, NumberLocale::EnUs), "5.0");
        assert_eq!(
            show("[$$-240A] #,##0", 1250.0, NumberLocale::EsCo),
            "$ 1.250"
        );
        assert_eq!(
            show("dd/mm/yyyy hh:mm", 45730.5, NumberLocale::EsCo),
            "14/03/2025 12:00"
        );
    }
}
