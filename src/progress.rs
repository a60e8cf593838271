/*!
Progress: on a terminal, a bar on stderr (not with `--quiet`), drawn from the first
row on, with the rows sent and failed so far; without a terminal (cron), a log line
every `[report] progress_interval` instead. A leaf, so the dispatcher can count
rows and the log writer can clear the bar around a line without either depending
on the report.
*/

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle};

use crate::tr;

/// How often a run without a terminal says how far it is, by default.
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);

/// A progress bar that may be hidden; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    bar: ProgressBar,
    /// Draw the bar (a terminal, not `--quiet`).
    draw: bool,
    /// Without a terminal: log a line this often.
    lines: Option<Duration>,
    counts: Arc<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    sent: AtomicU64,
    failed: AtomicU64,
    /// When the last progress line was logged.
    last_line: Mutex<Option<Instant>>,
}

/// What became of one row, for the counts the bar shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tally {
    Sent,
    Failed,
    Other,
}

impl Progress {
    /// Progress on stderr: a bar if stderr is a terminal, otherwise a log line every
    /// `interval`; nothing with `quiet`.
    pub(crate) fn new(quiet: bool, interval: Duration) -> Self {
        let terminal = std::io::stderr().is_terminal() && !quiet;
        Self {
            // Hidden until `start`: no empty bar while the list is read.
            bar: ProgressBar::hidden(),
            draw: terminal,
            lines: (!terminal && !quiet && !interval.is_zero()).then_some(interval),
            counts: Arc::default(),
        }
    }

    pub(crate) fn hidden() -> Self {
        Self::new(true, Duration::ZERO)
    }

    /// Starts counting `total` rows.
    pub(crate) fn start(&self, total: u64, what: &str) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_style(style(true));
        self.bar.set_message(what.to_owned());
        self.bar.reset_eta();
        *self
            .counts
            .last_line
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Instant::now());
        if self.draw {
            self.bar
                .set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
        }
    }

    /// The run waits (for the contact window): the ETA is hidden until `resume`.
    pub(crate) fn wait(&self, message: String) {
        self.bar.set_style(style(false));
        self.bar.set_message(message);
    }

    /// Sending again after a wait: the ETA starts afresh.
    pub(crate) fn resume(&self, message: &str) {
        self.bar.set_style(style(true));
        self.bar.set_message(message.to_owned());
        self.bar.reset_eta();
    }

    /// One more row has its outcome.
    pub(crate) fn inc(&self, tally: Tally) {
        match tally {
            Tally::Sent => self.counts.sent.fetch_add(1, Ordering::Relaxed),
            Tally::Failed => self.counts.failed.fetch_add(1, Ordering::Relaxed),
            Tally::Other => 0,
        };
        self.bar.inc(1);
        self.bar.set_prefix(self.tally());
        self.maybe_log();
    }

    /// Rows sent and failed by this run so far.
    pub(crate) fn this_run(&self) -> (u64, u64) {
        (
            self.counts.sent.load(Ordering::Relaxed),
            self.counts.failed.load(Ordering::Relaxed),
        )
    }

    fn tally(&self) -> String {
        let (sent, failed) = self.this_run();
        tr!("progress-tally", sent = sent, failed = failed)
    }

    /// Without a terminal: a line when `interval` has passed since the last one.
    fn maybe_log(&self) {
        let Some(interval) = self.lines else {
            return;
        };
        let mut last = self
            .counts
            .last_line
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < interval) {
            return;
        }
        *last = Some(Instant::now());
        drop(last);
        let (done, total) = (self.bar.position(), self.bar.length().unwrap_or(0));
        let eta = if done == 0 || done >= total {
            String::new()
        } else {
            tr!(
                "progress-left",
                time = crate::text::human_duration(self.bar.eta())
            )
        };
        tracing::info!(
            done,
            total,
            sent = self.counts.sent.load(Ordering::Relaxed),
            failed = self.counts.failed.load(Ordering::Relaxed),
            "{}",
            tr!(
                "progress-line",
                done = done,
                total = total,
                tally = self.tally(),
                eta = eta
            )
        );
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Runs `f` with the bar cleared, so a line written to stderr is not torn.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }
}

/// The bar: what it is doing, the rows, sent and failed, the rate with one decimal,
/// and the ETA unless the run is waiting.
fn style(with_eta: bool) -> ProgressStyle {
    let template = if with_eta {
        tr!("progress-bar-eta")
    } else {
        tr!("progress-bar")
    };
    ProgressStyle::with_template(&template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key(
            "rate",
            |state: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", crate::i18n::decimal(state.per_sec(), 1));
            },
        )
        .progress_chars("=> ")
}
