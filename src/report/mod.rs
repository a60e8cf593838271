/*!
What the user sees: the progress bar, the log lines on stderr, and the summary
at the end of every run.

The progress bar exists only on a terminal (indicatif hides itself when stderr
is not one, as under cron) and not with `--quiet`. Log lines go through the
bar's `suspend` so they never tear it. The summary always goes to stdout.
*/

pub(crate) mod analysis;
pub(crate) mod workbook;

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::i18n::Localized;
use crate::outcome::Status;
use crate::progress::Progress;
use crate::tr;
use crate::validate::{Job, Message};

/// Log lines go to stderr around the progress bar, with untrusted text escaped.
#[derive(Clone)]
struct BarWriter {
    progress: Progress,
    /// The formatter adds colours: keep its own SGR sequences.
    colour: bool,
}

struct BarLine(Progress, Vec<u8>, bool);

impl Write for BarLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.1.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for BarLine {
    fn drop(&mut self) {
        let line = std::mem::take(&mut self.1);
        let text = String::from_utf8_lossy(&line);
        let safe = crate::text::for_terminal(&text, self.2);
        self.0.suspend(|| {
            let _ = std::io::stderr().lock().write_all(safe.as_bytes());
        });
    }
}

impl<'a> MakeWriter<'a> for BarWriter {
    type Writer = BarLine;
    fn make_writer(&'a self) -> Self::Writer {
        BarLine(self.progress.clone(), Vec::with_capacity(256), self.colour)
    }
}

/// Installs the log subscriber: `RUST_LOG` sets the level (default info, warn with
/// `--quiet`). Calling it twice (tests calling `run` in-process) keeps the first.
pub(crate) fn init_logging(json: bool, quiet: bool, progress: &Progress) {
    // The TLS libraries log every refused certificate at ERROR; the run says it once,
    // with what to do (see `wolkvox::SettingProblem`).
    let default = if quiet {
        "warn,rustls=off,rustls_platform_verifier=off"
    } else {
        "info,rustls=off,rustls_platform_verifier=off"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let colour = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let writer = BarWriter {
        progress: progress.clone(),
        colour,
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(colour)
        .with_target(false);
    // A log file (cron) needs the full time and the level on every line; a terminal,
    // a conversation, a short local time and the level only when it is not INFO.
    let terminal = std::io::stderr().is_terminal();
    let _ = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.event_format(TextLine { terminal }).try_init()
    };
}

/// Text log lines: the message alone, without the fields JSON lines carry (`list=…`,
/// `rows=…`: English keys, and the message already says them), the level in the
/// current language (`AVISO` for `WARN`). In a file: the RFC 3339 time and every
/// level; at a terminal: `08:16:30` in the machine's zone, and no `INFO`.
struct TextLine {
    terminal: bool,
}

/// Collects an event's message, leaving its other fields out.
#[derive(Default)]
struct MessageOnly(String);

impl tracing::field::Visit for MessageOnly {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0.push_str(value);
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.push_str(&format!("{value:?}"));
        }
    }
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for TextLine
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut writer: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        let now = jiff::Timestamp::now();
        if self.terminal {
            let local = now.to_zoned_datetime(jiff::tz::TimeZone::system());
            write!(writer, "{} ", local.strftime("%H:%M:%S"))?;
        } else {
            write!(writer, "{now} ")?;
        }
        let level = *event.metadata().level();
        let (word, colour) = match level {
            tracing::Level::ERROR => (tr!("log-level-error"), "31"),
            tracing::Level::WARN => (tr!("log-level-warn"), "33"),
            tracing::Level::INFO => (tr!("log-level-info"), "32"),
            tracing::Level::DEBUG => (tr!("log-level-debug"), "34"),
            tracing::Level::TRACE => (tr!("log-level-trace"), "35"),
        };
        if self.terminal && level == tracing::Level::INFO {
            // The level of an ordinary line is noise in a conversation.
        } else if writer.has_ansi_escapes() {
            write!(writer, "\u{1b}[{colour}m{word:>5}\u{1b}[0m ")?;
        } else {
            write!(writer, "{word:>5} ")?;
        }
        let mut message = MessageOnly::default();
        event.record(&mut message);
        writeln!(writer, "{}", message.0)
    }
}

/// Everything the end-of-run summary shows.
#[derive(Debug, Clone)]
pub(crate) struct Summary<'a> {
    pub(crate) title: Localized,
    pub(crate) counts: &'a HashMap<Status, u64>,
    pub(crate) elapsed: Duration,
    /// Rows skipped because an earlier run already finished them.
    pub(crate) skipped: u64,
    /// Of the `sent` rows, those an earlier run sent (resume): left out of the rate.
    pub(crate) sent_before: u64,
    /// Rows held for a changed text (rule 1 of `crate::plan`; they keep their `sent`
    /// line): `--resume --resend-changed` sends them.
    pub(crate) held_changed: u64,
    pub(crate) results: &'a Path,
    /// The Excel workbook written beside the results, if one was.
    pub(crate) workbook: Option<&'a Path>,
    /// For dry runs: how long sending would take at the configured limits.
    pub(crate) estimate: Option<Localized>,
    /// Why the run stopped early, and how to resume.
    pub(crate) stopped: Option<Localized>,
    /// Whether the run fits in the contact hours (dry runs with `campaign.hours`).
    pub(crate) hours: Option<Localized>,
    /// A resumed run: what this run itself sent and failed (the counts are the campaign's).
    pub(crate) this_run: Option<(u64, u64)>,
    /// A run that went to the end with rows not delivered: what to run next. For
    /// people only (the JSON has the counts and the exit code).
    pub(crate) next: Option<String>,
}

impl<'a> Summary<'a> {
    /// A summary with only its title, counts and results file; set the rest with `..`.
    pub(crate) fn new(
        title: Localized,
        counts: &'a HashMap<Status, u64>,
        results: &'a Path,
    ) -> Self {
        Self {
            title,
            counts,
            elapsed: Duration::ZERO,
            skipped: 0,
            sent_before: 0,
            held_changed: 0,
            results,
            workbook: None,
            estimate: None,
            stopped: None,
            hours: None,
            this_run: None,
            next: None,
        }
    }

    /// Messages this run sent per second of its elapsed time.
    pub(crate) fn messages_per_second(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        let sent = self
            .counts
            .get(&Status::Sent)
            .copied()
            .unwrap_or(0)
            .saturating_sub(self.sent_before);
        if secs > 0.0 { sent as f64 / secs } else { 0.0 }
    }

    pub(crate) fn render(&self) -> String {
        let statuses: Vec<(String, u64)> = Status::ALL
            .iter()
            .map(|&status| (status, self.counts.get(&status).copied().unwrap_or(0)))
            .filter(|&(status, n)| n > 0 || status == Status::Sent && self.estimate.is_none())
            .map(|(status, n)| (status.word(), n))
            .collect();
        let labels = [
            tr!("summary-rows"),
            tr!("summary-skipped"),
            tr!("summary-held-changed"),
            tr!("summary-this-run"),
            tr!("summary-elapsed"),
            tr!("summary-estimate"),
            tr!("summary-hours"),
            tr!("summary-results"),
        ];
        let [
            rows,
            skipped,
            held_changed,
            this_run,
            elapsed,
            estimate,
            hours,
            results,
        ] = &labels;
        // Eleven columns fit the English labels; longer ones (Spanish) widen it.
        let width = statuses
            .iter()
            .map(|(word, _)| word)
            .chain(&labels)
            .map(|l| l.chars().count() + 1)
            .max()
            .unwrap_or(0)
            .max(11);
        let mut out = String::new();
        out.push_str(&self.title.here);
        out.push('\n');
        let total: u64 = self.counts.values().sum();
        out.push_str(&format!("  {rows:<width$}{total:>8}\n"));
        for (word, n) in &statuses {
            out.push_str(&format!("  {word:<width$}{n:>8}\n"));
        }
        if self.skipped > 0 {
            out.push_str(&format!(
                "  {skipped:<width$}{:>8}  {}\n",
                self.skipped,
                tr!("summary-skipped-why")
            ));
        }
        if self.held_changed > 0 {
            out.push_str(&format!(
                "  {held_changed:<width$}{:>8}  {}\n",
                self.held_changed,
                tr!("summary-held-changed-why")
            ));
        }
        if let Some((sent, failed)) = self.this_run {
            out.push_str(&format!(
                "  {this_run:<width$}{}\n",
                tr!("summary-this-run-counts", sent = sent, failed = failed)
            ));
        }
        let secs = crate::i18n::decimal(self.elapsed.as_secs_f64(), 1);
        if self.estimate.is_none() {
            let rate = crate::i18n::decimal(self.messages_per_second(), 1);
            out.push_str(&format!(
                "  {elapsed:<width$}{secs:>8} s  {}\n",
                tr!("summary-rate", rate = rate)
            ));
        } else {
            out.push_str(&format!("  {elapsed:<width$}{secs:>8} s\n"));
        }
        if let Some(text) = &self.estimate {
            out.push_str(&format!("  {estimate:<width$}{text}\n"));
        }
        if let Some(text) = &self.hours {
            out.push_str(&format!("  {hours:<width$}{text}\n"));
        }
        // People are pointed at the workbook; the CSV is named as the file for programs.
        match self.workbook {
            Some(path) => {
                out.push_str(&format!(
                    "  {}\n  {}\n",
                    tr!("summary-workbook", path = path.display()),
                    tr!("summary-for-programs", path = self.results.display())
                ));
            }
            None => {
                out.push_str(&format!("  {results:<width$}{}\n", self.results.display()));
            }
        }
        if let Some(stopped) = &self.stopped {
            out.push_str(&format!("{}\n", tr!("summary-stopped", why = stopped)));
        }
        if let Some(next) = &self.next {
            out.push_str(next);
            out.push('\n');
        }
        out
    }
}

/// `--summary-json`: the same summary, as JSON for monitoring, with what a monitor
/// needs besides (the exit code, when the run started and ended, an error).
#[derive(Debug, Clone)]
pub(crate) struct SummaryJson<'a> {
    pub(crate) summary: &'a Summary<'a>,
    pub(crate) exit_code: u8,
    pub(crate) dry_run: bool,
    /// RFC 3339.
    pub(crate) started_at: &'a str,
    pub(crate) finished_at: &'a str,
    /// The error that stopped the command before sending (exit 2).
    pub(crate) error: Option<String>,
}

impl SummaryJson<'_> {
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let s = self.summary;
        let counts: serde_json::Map<String, serde_json::Value> = Status::ALL
            .iter()
            .map(|st| {
                let n = s.counts.get(st).copied().unwrap_or(0);
                (st.as_str().to_owned(), n.into())
            })
            .collect();
        let results = s.results.to_str().filter(|p| !p.is_empty());
        serde_json::json!({
            "counts": counts,
            "rows": s.counts.values().sum::<u64>(),
            "skipped": s.skipped,
            "held_changed": s.held_changed,
            "elapsed_s": (s.elapsed.as_secs_f64() * 1000.0).round() / 1000.0,
            "messages_per_second": (s.messages_per_second() * 100.0).round() / 100.0,
            "results": results,
            "exit_code": self.exit_code,
            "stopped": s.stopped.as_ref().map(|t| &t.english),
            "dry_run": self.dry_run,
            "estimate": s.estimate.as_ref().map(|t| &t.english),
            "hours": s.hours.as_ref().map(|t| &t.english),
            "error": self.error,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "this_run": s.this_run.map(|(sent, failed)| serde_json::json!({"sent": sent, "failed": failed})),
        })
    }

    /// Writes the JSON to `path` atomically (a temporary file beside it, then a rename),
    /// so a monitor never reads half a file.
    pub(crate) fn write(&self, path: &Path) -> std::io::Result<()> {
        let mut text = serde_json::to_vec_pretty(&self.to_json()).map_err(std::io::Error::other)?;
        text.push(b'\n');
        crate::atomic::replace(path, |out| out.write_all(&text)).map_err(|(_, e)| e)
    }
}

/// One row exactly as it would be sent: the normalized telephone, then the message
/// text, each of its lines indented. For an HSM template: its name, variables and extras,
/// then `filled` (the template's own text with the variables in place) when the
/// template check gave it.
pub(crate) fn preview(job: &Job, filled: Option<&str>) -> String {
    let (mut head, text) = match &job.message {
        Message::Free { text } => (
            tr!("preview-row", row = job.shown, telephone = job.telephone),
            Some(text.as_str()),
        ),
        Message::Template {
            name,
            vars,
            customer_id,
            url_attach,
        } => {
            let mut head = tr!(
                "preview-template",
                row = job.shown,
                telephone = job.telephone,
                name = name,
                vars = format!("{vars:?}")
            );
            if !customer_id.is_empty() {
                head.push_str(&format!(", customer_id {customer_id:?}"));
            }
            if !url_attach.is_empty() {
                head.push_str(&format!(", url_attach {url_attach:?}"));
            }
            (head, filled)
        }
    };
    for line in text.unwrap_or_default().lines() {
        head.push_str(
            "
    ",
        );
        head.push_str(line);
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A summary of `counts` over `secs` seconds, written to `r.csv`, nothing else set.
    fn summary(counts: &HashMap<Status, u64>, secs: u64) -> Summary<'_> {
        Summary {
            elapsed: Duration::from_secs(secs),
            ..Summary::new("run finished".to_owned().into(), counts, Path::new("r.csv"))
        }
    }

    #[test]
    fn summary_shows_counts_elapsed_rate_and_path() {
        let counts = HashMap::from([(Status::Sent, 8), (Status::Invalid, 2)]);
        let text = Summary {
            skipped: 3,
            stopped: Some("interrupted".into()),
            ..summary(&counts, 4)
        }
        .render();
        assert!(text.contains("rows             10"), "{text}");
        assert!(text.contains("sent              8"), "{text}");
        assert!(text.contains("invalid           2"), "{text}");
        assert!(text.contains("(2.0 messages/s)"), "{text}");
        assert!(text.contains("skipped           3"), "{text}");
        assert!(text.contains("results    r.csv"), "{text}");
        assert!(text.contains("stopped early: interrupted"), "{text}");
        assert!(!text.contains("failed"), "{text}");
    }

    #[test]
    fn the_rate_counts_only_what_this_run_sent() {
        let counts = HashMap::from([(Status::Sent, 10)]);
        let summary = Summary {
            skipped: 6,
            sent_before: 6,
            ..summary(&counts, 2)
        };
        assert_eq!(summary.messages_per_second(), 2.0);
    }

    #[test]
    fn summary_json_has_every_status_and_the_same_figures() {
        let counts = HashMap::from([(Status::Sent, 8), (Status::NotSent, 2)]);
        let summary = Summary {
            title: "run stopped".to_owned().into(),
            skipped: 1,
            stopped: Some("interrupted".into()),
            ..summary(&counts, 4)
        };
        let json = SummaryJson {
            summary: &summary,
            exit_code: 3,
            dry_run: false,
            started_at: "2026-01-01T00:00:00Z",
            finished_at: "2026-01-01T00:00:04Z",
            error: None,
        }
        .to_json();
        assert_eq!(json["counts"]["sent"], 8);
        assert_eq!(json["counts"]["not_sent"], 2);
        assert_eq!(json["counts"]["dry_run"], 0);
        assert_eq!(json["counts"].as_object().unwrap().len(), Status::ALL.len());
        assert_eq!(json["rows"], 10);
        assert_eq!(json["elapsed_s"], 4.0);
        assert_eq!(json["messages_per_second"], 2.0);
        assert_eq!(json["exit_code"], 3);
        assert_eq!(json["stopped"], "interrupted");
        assert_eq!(json["results"], "r.csv");
        assert_eq!(json["error"], serde_json::Value::Null);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.json");
        SummaryJson {
            summary: &summary,
            exit_code: 3,
            dry_run: false,
            started_at: "a",
            finished_at: "b",
            error: None,
        }
        .write(&path)
        .unwrap();
        let back: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(back, json_with_times(json, "a", "b"));
    }

    fn json_with_times(mut v: serde_json::Value, start: &str, end: &str) -> serde_json::Value {
        v["started_at"] = start.into();
        v["finished_at"] = end.into();
        v
    }

    #[test]
    fn previews_show_the_telephone_and_the_text_or_the_template() {
        let mut job = Job {
            row: 3,
            shown: 3,
            telephone: "573001234567".into(),
            connector_id: "1".into(),
            message: Message::Template {
                name: "cita_recordatorio".into(),
                vars: "Ana;martes;10:00".into(),
                customer_id: String::new(),
                url_attach: String::new(),
            },
            key: String::new(),
            legacy_key: None,
        };
        assert_eq!(
            preview(&job, None),
            r#"row 3 -> 573001234567: template cita_recordatorio, vars "Ana;martes;10:00""#
        );
        assert_eq!(
            preview(&job, Some("Hola Ana,\nsu cita es el martes")),
            "row 3 -> 573001234567: template cita_recordatorio, vars \"Ana;martes;10:00\"\n    Hola Ana,\n    su cita es el martes"
        );
        job.message = Message::Template {
            name: "promo".into(),
            vars: String::new(),
            customer_id: "C-9".into(),
            url_attach: "https://x.co/a.png".into(),
        };
        assert_eq!(
            preview(&job, None),
            r#"row 3 -> 573001234567: template promo, vars "", customer_id "C-9", url_attach "https://x.co/a.png""#
        );
        job.message = Message::Free {
            text: "hola\nque tal".into(),
        };
        assert_eq!(
            preview(&job, Some("ignored")),
            "row 3 -> 573001234567:\n    hola\n    que tal"
        );
    }
}
