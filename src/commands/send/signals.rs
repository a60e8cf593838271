/*!
Ctrl-C and SIGTERM during a run: the first stops starting requests and lets those
in flight finish; the second exits at once, after taking the results lock so no line
is left half-written.
*/

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::Exit;
use crate::journal::Recorder;
use crate::tr;

/// First Ctrl-C or SIGTERM: stop starting requests and let those in flight finish.
/// Second: exit at once, after taking the results lock so no line is left half-written.
pub(super) async fn watch_signals(
    stop: CancellationToken,
    recorder: Arc<Recorder>,
    resume: String,
) {
    let mut signals = match Signals::new() {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("{}", tr!("send-no-signals", error = e));
            return;
        }
    };
    signals.next().await;
    tracing::warn!("{}", tr!("send-interrupted"));
    stop.cancel();
    signals.next().await;
    let _frozen = recorder.freeze();
    tracing::error!(
        "{}\n{}",
        tr!(
            "send-interrupted-again",
            results = recorder.path().display()
        ),
        tr!("send-to-continue", command = resume)
    );
    std::process::exit(i32::from(Exit::Stopped.code()));
}

#[cfg(unix)]
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Signals {
    fn new() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    async fn next(&mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn new() -> std::io::Result<Self> {
        Ok(Self)
    }

    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
