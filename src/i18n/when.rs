/*!
Moments as a person reads them: `viernes 4 de diciembre, 08:16` in Spanish,
`Friday 4 December, 08:16` in English, in a given time zone, with the year only when
it is not the current one. Files for programs keep RFC 3339 (`2026-12-04T13:16:00Z`);
this is only for screens, the report and the workbook's summary.
*/

use jiff::Timestamp;
use jiff::tz::TimeZone;

use crate::tr;

/// `t` in `tz`, in the current language.
pub(crate) fn when(t: Timestamp, tz: &TimeZone) -> String {
    let z = t.to_zoned_datetime(tz.clone());
    let weekday = match z.weekday() {
        jiff::civil::Weekday::Monday => tr!("when-monday"),
        jiff::civil::Weekday::Tuesday => tr!("when-tuesday"),
        jiff::civil::Weekday::Wednesday => tr!("when-wednesday"),
        jiff::civil::Weekday::Thursday => tr!("when-thursday"),
        jiff::civil::Weekday::Friday => tr!("when-friday"),
        jiff::civil::Weekday::Saturday => tr!("when-saturday"),
        jiff::civil::Weekday::Sunday => tr!("when-sunday"),
    };
    let month = match z.month() {
        1 => tr!("when-january"),
        2 => tr!("when-february"),
        3 => tr!("when-march"),
        4 => tr!("when-april"),
        5 => tr!("when-may"),
        6 => tr!("when-june"),
        7 => tr!("when-july"),
        8 => tr!("when-august"),
        9 => tr!("when-september"),
        10 => tr!("when-october"),
        11 => tr!("when-november"),
        _ => tr!("when-december"),
    };
    let day = z.day().to_string();
    let time = format!("{:02}:{:02}", z.hour(), z.minute());
    let this_year = Timestamp::now().to_zoned_datetime(tz.clone()).year();
    if z.year() == this_year {
        tr!(
            "when-this-year",
            weekday = weekday,
            day = day,
            month = month,
            time = time
        )
    } else {
        tr!(
            "when-other-year",
            weekday = weekday,
            day = day,
            month = month,
            year = z.year().to_string(),
            time = time
        )
    }
}

/// An RFC 3339 time from a file, as [`when`] shows it; as written if it is not one.
pub(crate) fn when_recorded(rfc3339: &str, tz: &TimeZone) -> String {
    rfc3339
        .parse::<Timestamp>()
        .map(|t| when(t, tz))
        .unwrap_or_else(|_| rfc3339.to_owned())
}

/// `" (America/Bogota)"` when `tz` is not the machine's zone (a reader's clock shows
/// the machine's), else nothing.
pub(crate) fn zone_note(tz: &TimeZone) -> String {
    match tz.iana_name() {
        Some(name) if TimeZone::system().iana_name() != Some(name) => format!(" ({name})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::{Lang, with_lang};

    #[test]
    fn a_moment_reads_as_people_say_it_in_each_language() {
        let tz = TimeZone::get("America/Bogota").expect("zone");
        let t: Timestamp = "2020-12-04T13:16:59Z".parse().expect("time");
        assert_eq!(
            with_lang(Lang::Es, || when(t, &tz)),
            "viernes 4 de diciembre de 2020, 08:16"
        );
        assert_eq!(
            with_lang(Lang::En, || when(t, &tz)),
            "Friday 4 December 2020, 08:16"
        );
        let now = Timestamp::now();
        let shown = with_lang(Lang::Es, || when(now, &tz));
        assert!(!shown.contains(&now.to_zoned_datetime(tz.clone()).year().to_string()));
        assert_eq!(when_recorded("not a time", &tz), "not a time");
    }
}
