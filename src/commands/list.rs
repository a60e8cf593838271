/*!
Reading a list into verdicts, shared by `validate` and `send`: opt-out lists,
the header check, every row judged before anything is acted on, and the small
texts both commands print about a list (previews, estimates, contact hours).
*/

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use crate::send::window::ContactWindow;
use crate::send::{self};
use crate::text::{self};
use crate::tr;
use crate::validate::suppress::Suppression;
use crate::validate::{ListSettings, Validator, Verdict};
use crate::{Error, input};

/// What reading a list found besides the verdicts.
pub(crate) struct ListRead {
    /// Data rows.
    pub(crate) rows: u64,
    /// The opt-out lists applied, if any were given.
    pub(crate) suppression: Option<Arc<Suppression>>,
    /// Whether the rows are HSM templates (decided from the settings and the header).
    pub(crate) template: bool,
    /// SHA-256 of the header's names, to recognise the list in the journal.
    pub(crate) header_digest: String,
    /// The file read, and for a spreadsheet its sheet, for people.
    pub(crate) named: String,
}

/// One line for a list whose telephones are mostly refused while
/// `phone.default_country` is not set: national numbers read as international ones
/// (3161389815 as a Dutch +31 number). Said once, as soon as the first rows show it
/// (so it comes before the rows' own problems), or at the end for a short list; never
/// for a stray bad number (at least 3 rows, and a fifth of those seen).
pub(crate) struct CountryHint {
    telephone: String,
    unset: bool,
    seen: u64,
    bad: u64,
    said: bool,
}

impl CountryHint {
    /// Rows seen before the hint may be said early.
    pub(crate) const EARLY: u64 = 20;

    /// Rows seen so far.
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    pub(crate) fn new(list: &ListSettings, validator: &Validator) -> CountryHint {
        CountryHint {
            telephone: validator.telephone_label().to_owned(),
            unset: list.default_country.is_none(),
            seen: 0,
            bad: 0,
            said: false,
        }
    }

    fn due(&self) -> bool {
        !self.said && self.unset && self.bad >= 3 && self.bad * 5 >= self.seen
    }

    fn line(&mut self) -> String {
        self.said = true;
        crate::tr!(
            "list-set-default-country",
            rows = self.bad,
            seen = self.seen
        )
    }

    /// Counts `verdict`; the hint, the first time enough rows show it.
    pub(crate) fn see(&mut self, verdict: &Verdict) -> Option<String> {
        self.seen += 1;
        if let Verdict::Invalid { problems, .. } = verdict
            && problems.iter().any(|p| p.column == self.telephone)
        {
            self.bad += 1;
        }
        (self.seen >= Self::EARLY && self.due()).then(|| self.line())
    }

    /// The hint at the end of the list, if it was not said yet and the list shows it.
    pub(crate) fn at_end(&mut self) -> Option<String> {
        self.due().then(|| self.line())
    }
}

/// Reads and judges every row, handing each verdict to `each` as it is made.
/// Fails on an unreadable opt-out list or contact list, a missing column, or more
/// rows than allowed, before any verdict is acted on by a send.
pub(crate) fn read_list(
    list: &ListSettings,
    mut each: impl FnMut(Verdict),
) -> Result<ListRead, Error> {
    let opened = open_list(list)?;
    tracing::info!(
        "{}: {}; {}",
        list.input.display(),
        opened.rows.format(),
        opened.validator.columns_summary()
    );
    let mut hint = CountryHint::new(list, &opened.validator);
    let read = judge_rows(list, opened, |verdict| {
        if let Some(line) = hint.see(&verdict) {
            tracing::warn!("{line}");
        }
        each(verdict)
    })?;
    if let Some(line) = hint.at_end() {
        tracing::warn!("{line}");
    }
    Ok(read)
}

/// A list whose header has been checked, ready to be judged row by row.
pub(crate) struct OpenList {
    pub(crate) rows: input::Rows,
    pub(crate) validator: Validator,
    pub(crate) suppression: Option<Arc<Suppression>>,
    pub(crate) header_digest: String,
}

/// Loads the opt-out lists, opens the contact list and checks its header.
pub(crate) fn open_list(list: &ListSettings) -> Result<OpenList, Error> {
    let suppression = if list.suppress.is_empty() {
        None
    } else {
        Some(Arc::new(Suppression::load(
            &list.suppress,
            &list.columns.telephone,
            list.default_country,
        )?))
    };
    let read = input::ReadOptions {
        max_rows: Some(list.max_rows),
        ..list.read.clone()
    };
    let rows = input::open_with(&list.input, &read)?;
    let header_digest = {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(rows.header().join("\u{1f}").as_bytes());
        digest.iter().map(|b| format!("{b:02x}")).collect()
    };
    let mut validator = Validator::new(rows.header(), list)?;
    if let Some(s) = &suppression {
        validator = validator.with_suppression(Arc::clone(s));
    }
    Ok(OpenList {
        rows,
        validator,
        suppression,
        header_digest,
    })
}

/// The rows of `read_list`, once the header is checked.
pub(crate) fn judge_rows(
    list: &ListSettings,
    opened: OpenList,
    each: impl FnMut(Verdict),
) -> Result<ListRead, Error> {
    let OpenList {
        rows,
        mut validator,
        suppression,
        header_digest,
    } = opened;
    let template = validator.is_template();
    let named = rows.named();
    let mut count = 0;
    let records = rows.map(|record| {
        let record = record?;
        count = record.row;
        if count > list.max_rows {
            return Err(Error::from(input::InputError::TooManyRows {
                path: list.input.clone(),
                max_rows: list.max_rows,
            }));
        }
        Ok(record)
    });
    validator.check_all(records, each)?;
    if count == 0 {
        return Err(input::InputError::NoRows {
            path: list.input.clone(),
        }
        .into());
    }
    Ok(ListRead {
        rows: count,
        suppression,
        template,
        header_digest,
        named,
    })
}

/// Writes a line for a person, with untrusted text in it escaped.
pub(crate) fn say(out: &mut impl Write, line: &str) {
    let _ = writeln!(out, "{}", text::for_terminal(line, false));
}

/// `opt-out lists: 1234 numbers from 2 files[, 3 entries ignored ...]`.
pub(crate) fn suppression_line(s: &Suppression) -> String {
    let mut line = tr!(
        "list-opt-out-lists",
        numbers = s.len(),
        files = s.lists().len()
    );
    if s.skipped() > 0 {
        line.push_str(&tr!("list-opt-out-ignored", entries = s.skipped()));
    }
    line
}

/// Tokens in WOLKVOX_TOKEN, or 1 when none are set (validate and dry runs need none).
pub(crate) fn token_count_for_estimates() -> usize {
    send::token::tokens_from_env()
        .map(|t| t.len())
        .unwrap_or(1)
        .max(1)
}

/// The least time `jobs` requests take at `rate` per token with `tokens` tokens.
pub(crate) fn sending_time(jobs: u64, rate: f64, tokens: usize) -> Duration {
    let per_second = rate * tokens.max(1) as f64;
    Duration::try_from_secs_f64(jobs as f64 / per_second).unwrap_or(Duration::MAX)
}

/// Sending `jobs` rows at `rate` requests per second per token with `tokens` tokens,
/// within the contact hours when there are any: the estimates' lines.
pub(crate) struct Pace<'a> {
    pub(crate) window: Option<&'a ContactWindow>,
    /// Without contact hours, the finish time is shown in this zone
    /// (`campaign.timezone`, else the machine's).
    pub(crate) timezone: &'a jiff::tz::TimeZone,
    pub(crate) jobs: usize,
    pub(crate) rate: f64,
    pub(crate) tokens: usize,
}

impl Pace<'_> {
    fn needed(&self) -> Duration {
        sending_time(self.jobs as u64, self.rate, self.tokens)
    }

    /// Does sending fit in the contact window? `None` without contact hours.
    pub(crate) fn hours_line(&self) -> Option<String> {
        let needed = self.needed();
        self.window
            .map(|w| w.fit(jiff::Timestamp::now(), needed).describe())
    }

    /// When sending would end, as a local clock time: in the contact hours' time zone,
    /// going on in later windows when one is not enough (as `--wait-for-window` does);
    /// otherwise in `timezone`.
    pub(crate) fn finish_line(&self) -> Option<String> {
        let (finish, later) = self.finish()?;
        Some(tr!(
            "list-finish-around",
            rate = self.rate,
            tokens = self.tokens,
            finish = finish,
            later = later
        ))
    }

    /// `finish_line` without the rate and tokens, for a line that states them already.
    pub(crate) fn finish_when(&self) -> Option<String> {
        let (finish, later) = self.finish()?;
        Some(tr!("list-finish-when", finish = finish, later = later))
    }

    /// The finish time in words, and the note that it goes on in later windows (or "").
    fn finish(&self) -> Option<(String, String)> {
        if self.jobs == 0 {
            return None;
        }
        let needed = self.needed();
        let now = jiff::Timestamp::now();
        let (finish, later_windows) = match self.window {
            Some(w) => (w.finish(now, needed)?, !w.fit(now, needed).fits()),
            None => (
                now.checked_add(jiff::SignedDuration::try_from(needed).ok()?)
                    .ok()?
                    .to_zoned_datetime(self.timezone.clone()),
                false,
            ),
        };
        let later = if later_windows {
            tr!("list-finish-later-windows")
        } else {
            String::new()
        };
        Some((
            crate::i18n::when(finish.timestamp(), finish.time_zone())
                + &crate::i18n::zone_note(finish.time_zone()),
            later,
        ))
    }
}

/// The first rows as they would be sent, under a heading.
pub(crate) fn print_previews(out: &mut impl Write, previews: &[String]) {
    if previews.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "{}",
        tr!("list-previews-heading", rows = previews.len())
    );
    for line in previews {
        say(out, line);
    }
}
