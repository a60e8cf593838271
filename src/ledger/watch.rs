/*!
The watch on a server ledger while a run sends: a thread that asks the server every
`INTERVAL` whether it is still there, and calls `on_loss` once when it is not (the
run then stops starting requests). Every message was claimed before the first
request, so a lost server never lets one out unclaimed; the watch makes the run stop
rather than send on while nobody can see or settle its claims.
*/

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use super::LedgerError;

/// How often the server is asked.
const INTERVAL: Duration = Duration::from_millis(500);

/// A running watch; `finish` ends it and tells whether the server was lost.
pub(crate) struct Watch {
    done: Arc<AtomicBool>,
    lost: Arc<Mutex<Option<LedgerError>>>,
}

impl Watch {
    /// Starts watching with `probe`; `on_loss` is called once, from the watch's thread.
    pub(crate) fn start(
        mut probe: Box<dyn FnMut() -> Result<(), LedgerError> + Send>,
        on_loss: impl FnOnce() + Send + 'static,
    ) -> Watch {
        let done = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(Mutex::new(None));
        let (d, l) = (Arc::clone(&done), Arc::clone(&lost));
        let _ = std::thread::Builder::new()
            .name("ledger-watch".into())
            .spawn(move || {
                while !d.load(Ordering::Acquire) {
                    if let Err(e) = probe() {
                        if d.load(Ordering::Acquire) {
                            // The run is over: nothing to stop.
                            return;
                        }
                        tracing::warn!("{}", lost_text(&e));
                        *l.lock().unwrap_or_else(PoisonError::into_inner) = Some(e);
                        on_loss();
                        return;
                    }
                    // Short naps: the thread ends soon after `finish`.
                    let mut slept = Duration::ZERO;
                    while slept < INTERVAL && !d.load(Ordering::Acquire) {
                        std::thread::sleep(Duration::from_millis(50));
                        slept += Duration::from_millis(50);
                    }
                }
            })
            .ok();
        Watch { done, lost }
    }

    /// Ends the watch; why the run stopped if the ledger was lost (see `lost_text`).
    /// Not waited for: a look at a server that stopped answering may take up to the
    /// connection's timeout, and the run is over. A loss that stopped the run was
    /// recorded before the run was told.
    pub(crate) fn finish(self) -> Option<String> {
        self.done.store(true, Ordering::Release);
        self.lost
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
            .map(|e| lost_text(&e))
    }
}

/// What a run that lost its ledger says: where, what, and that nothing left unclaimed.
fn lost_text(e: &LedgerError) -> String {
    match e {
        LedgerError::Failed { path, problem } => crate::tr!(
            "ledger-lost-mid-run",
            path = path.display(),
            problem = problem.as_str()
        ),
        other => other.to_string(),
    }
}
