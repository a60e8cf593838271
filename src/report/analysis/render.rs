/*!
The report for people (`render`): the counts, the groups of failures and of rows
not sent, the answer times and the next step, each a block of lines in the
interface's language. It only reads a `Report`: everything it shows was computed
by `analysis::build`, which `--format json` serializes as it is.
*/

use super::{Group, INPUT_PLACEHOLDER, Report, Status};
use crate::tr;

/// The first row numbers of a group of `count` rows: `3, 8, 12, ...`.
fn row_list(rows: &[u64], count: u64) -> String {
    let mut text = rows
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if count > rows.len() as u64 {
        text.push_str(", ...");
    }
    text
}

impl Group {
    /// The first row's `error` in the language printed now (see `outcome::Told`).
    fn error_shown(&self) -> String {
        crate::outcome::shown(&self.error, self.told.error.as_ref())
    }

    /// The group's `msg` in the language printed now.
    fn msg_shown(&self) -> String {
        crate::outcome::shown(&self.msg, self.told.msg.as_ref())
    }
}

/// The report for people.
pub(crate) fn render(r: &Report) -> String {
    let mut out = String::new();
    render_counts(r, &mut out);
    render_groups(r, &mut out);
    render_times(r, &mut out);
    render_next(r, &mut out);
    out
}

/// The file, the campaign, how far the run got, and the count of each status.
fn render_counts(r: &Report, out: &mut String) {
    let line = |out: &mut String, text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(
        out,
        tr!(
            "report-heading",
            results = r.results.display(),
            rows = r.rows
        ),
    );
    match &r.workbook {
        Some(path) => line(out, tr!("report-workbook", path = path.display())),
        None if r.rows > 0 && !r.in_progress => line(
            out,
            tr!(
                "report-no-workbook",
                results = r.results.display(),
                path = r.results.with_extension("xlsx").display()
            ),
        ),
        None => {}
    }
    if let Some(campaign) = &r.campaign {
        line(out, tr!("report-campaign", campaign = campaign));
    }
    match r.total {
        Some(total) if r.in_progress => line(
            out,
            tr!("report-in-progress-of", rows = r.rows, total = total),
        ),
        Some(total) if r.never_attempted > 0 => line(
            out,
            tr!(
                "report-never-attempted",
                rows = r.rows,
                total = total,
                never = r.never_attempted
            ),
        ),
        None if r.in_progress => line(out, tr!("report-in-progress")),
        _ => {}
    }
    let shown: Vec<(String, u64)> = Status::ALL
        .iter()
        .map(|s| (s.word(), r.counts.get(s.as_str()).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect();
    let width = shown
        .iter()
        .map(|(w, _)| w.chars().count() + 1)
        .max()
        .unwrap_or(0)
        .max(11);
    for (word, n) in shown {
        out.push_str(&format!("  {word:<width$}{n:>8}\n"));
    }
    if r.went_out_to_rows_gone > 0 {
        line(
            out,
            tr!("report-went-out-rows-gone", count = r.went_out_to_rows_gone),
        );
    }
}

/// Failures, rows not sent and suppressed rows, grouped by what was answered.
fn render_groups(r: &Report, out: &mut String) {
    let rows = |g: &Group| row_list(&g.rows, g.count);
    if !r.failures.is_empty() {
        out.push_str(&format!("{}\n", tr!("report-failures")));
        for g in &r.failures {
            let code = if g.code.is_empty() {
                tr!("report-no-code")
            } else {
                tr!("report-code", code = g.code)
            };
            let (error, msg) = (g.error_shown(), g.msg_shown());
            let what = match (error.is_empty(), msg.is_empty()) {
                (false, false) => format!("{error}: {msg}"),
                (true, _) => msg,
                (false, true) => error,
            };
            let kinds = match (g.failed, g.unknown) {
                (_, 0) => Status::Failed.word(),
                (0, _) => Status::Unknown.word(),
                (f, u) => tr!("report-failed-and-unknown", failed = f, unknown = u),
            };
            out.push_str(&format!(
                "  {:>8}  {code}  {what}  [{kinds}; {}]\n",
                g.count,
                tr!("report-rows", rows = rows(g))
            ));
        }
    }
    for (title, list) in [
        (tr!("report-not-sent"), &r.not_sent),
        (tr!("report-suppressed"), &r.suppressed),
    ] {
        if !list.is_empty() {
            out.push_str(&format!("{title}:\n"));
            for g in list {
                out.push_str(&format!(
                    "  {:>8}  {}  [{}]\n",
                    g.count,
                    g.msg_shown(),
                    tr!("report-rows", rows = rows(g))
                ));
            }
        }
    }
    if r.counts.get(Status::Invalid.as_str()).copied().unwrap_or(0) > 0 {
        out.push_str(&format!("{}\n", tr!("report-invalid")));
    }
}

/// When answers came, the rate, and the failures a retry cannot fix.
fn render_times(r: &Report, out: &mut String) {
    match (&r.first_finished_at, &r.last_finished_at) {
        (Some(first), Some(last)) => {
            let labels = [
                tr!("report-first-answer"),
                tr!("report-last-answer"),
                tr!("report-rate"),
            ];
            let width = labels
                .iter()
                .map(|l| l.chars().count() + 2)
                .max()
                .unwrap_or(0)
                .max(14);
            let [first_label, last_label, rate_label] = &labels;
            // For people: in the machine's time zone, in words; the JSON keeps RFC 3339.
            let tz = jiff::tz::TimeZone::system();
            let (first, last) = (
                crate::i18n::when_recorded(first, &tz),
                crate::i18n::when_recorded(last, &tz),
            );
            out.push_str(&format!(
                "{first_label:<width$}{first}\n{last_label:<width$}{last}\n"
            ));
            match r.messages_per_second {
                Some(rate) => out.push_str(&format!(
                    "{rate_label:<width$}{}\n",
                    tr!("report-rate-value", rate = crate::i18n::decimal(rate, 2))
                )),
                None => out.push_str(&format!(
                    "{rate_label:<width$}{}\n",
                    tr!("report-rate-single")
                )),
            }
        }
        // Requests cut off by a kill have no answer time, but they did leave.
        _ if r.counts.get(Status::Unknown.as_str()).copied().unwrap_or(0) > 0 => {
            out.push_str(&format!("{}\n", tr!("report-no-answer")));
        }
        _ => out.push_str(&format!("{}\n", tr!("report-no-request"))),
    }
    if !r.cannot_retry.is_empty() {
        out.push_str(&format!("{}\n", tr!("report-cannot-fix")));
        for f in &r.cannot_retry {
            let rows = row_list(&f.rows, f.count);
            out.push_str(&format!(
                "  {:>8}  {}  [{}]\n",
                f.count,
                f.fix,
                tr!("report-rows", rows = rows)
            ));
        }
    }
}

/// What to run next, if anything is left to send.
fn render_next(r: &Report, out: &mut String) {
    if let Some(command) = &r.reconcile {
        out.push_str(&format!("{}\n  {command}\n", tr!("report-reconcile-first")));
    }
    if !r.in_progress {
        let unfixable: u64 = r.cannot_retry.iter().map(|f| f.count).sum();
        if let Some(command) = &r.after_fix {
            out.push_str(&format!(
                "{}\n  {command}\n",
                tr!("report-not-delivered", rows = unfixable)
            ));
        }
        let held = r.counts.get(Status::Held.as_str()).copied().unwrap_or(0);
        if held > 0 {
            out.push_str(&format!("{}\n", tr!("send-held", rows = held)));
        }
    }
    match &r.next {
        None if r.in_progress => {}
        None if r.rows == 0 => out.push_str(&format!("{}\n", tr!("report-no-rows"))),
        // Rows not delivered or held are said above: "nothing left" would hide them.
        None if r.after_fix.is_some() => {}
        None if r.counts.get(Status::Held.as_str()).copied().unwrap_or(0) > 0 => {}
        None => out.push_str(&format!("{}\n", tr!("report-nothing-left"))),
        Some(next) => {
            out.push_str(&format!("{}\n", tr!("report-next", command = next.command)));
            out.push_str(&format!("  {}.\n", next.sends));
            if !next.input_found {
                out.push_str(&format!(
                    "  {}\n",
                    tr!(
                        "report-replace-placeholder",
                        placeholder = INPUT_PLACEHOLDER
                    )
                ));
            }
            if r.campaign.is_none() {
                out.push_str(&format!("  {}\n", tr!("report-add-options")));
            }
        }
    }
}
