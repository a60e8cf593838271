/*!
The progress bar: on stderr, shown only when stderr is a terminal and `--quiet`
is off. A leaf, so the dispatcher can count rows and the log writer can clear
the bar around a line without either depending on the report.
*/

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that may be hidden; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar on stderr, shown only if stderr is a terminal and `quiet` is off.
    pub(crate) fn new(quiet: bool) -> Self {
        let bar = if quiet {
            ProgressBar::hidden()
        } else {
            ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr_with_hz(4))
        };
        Self { bar }
    }

    pub(crate) fn hidden() -> Self {
        Self {
            bar: ProgressBar::hidden(),
        }
    }

    /// Starts counting `total` rows.
    pub(crate) fn start(&self, total: u64, what: &'static str) {
        self.bar.set_length(total);
        self.bar.set_position(0);
        self.bar.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} rows  {per_sec}  ETA {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
        );
        self.bar.set_message(what);
        self.bar.reset_eta();
    }

    /// Replaces the text before the bar (e.g. "waiting for contact hours").
    pub(crate) fn set_message(&self, message: impl Into<std::borrow::Cow<'static, str>>) {
        self.bar.set_message(message);
    }

    pub(crate) fn inc(&self) {
        self.bar.inc(1);
    }

    pub(crate) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    /// Runs `f` with the bar cleared, so a line written to stderr is not torn.
    pub(crate) fn suspend<R>(&self, f: impl FnOnce() -> R) -> R {
        self.bar.suspend(f)
    }
}
