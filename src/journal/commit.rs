/*!
Group commit of the journal's intents.

An intent must be on disk before its request leaves (see `Recorder::intent`). Each
intent gets a number when written; whoever waits for one and finds no sync running
starts one, inline, covering every intent written before it. Everyone else waits as a
parked task, not a blocked thread: the runtime has as many threads as cores, and with
many tokens, threads blocked behind a sync meant no one was left to write the intents
the next sync could have covered (128 tokens at 50 ms reached 0.43 of the ideal).
The one syncing does it on its own thread, with no hand-off (with one token, a thread
hop per request cost more than it saved), unless it has something else to do on that
thread meanwhile: an intent written ahead is synced on a blocking thread while the
worker writes its current request (see `wait_async`).
*/

use std::fs::File;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

#[derive(Debug, Default)]
struct State {
    /// Number of the last intent written.
    written: u64,
    /// Every intent up to this number is on disk.
    durable: u64,
    running: bool,
    /// A sync failed: nothing written after the last good one can be called durable.
    failed: Option<(std::io::ErrorKind, String)>,
    /// Syncs done, for tests.
    syncs: u64,
}

/// What a waiter does next.
enum Step {
    Done(std::io::Result<()>),
    /// Sync, then publish: every intent up to this number will be covered.
    Sync(u64),
    Wait,
}

/// The numbering and the syncs of one journal.
pub(super) struct GroupCommit {
    inner: Arc<Inner>,
}

struct Inner {
    file: File,
    state: Mutex<State>,
    /// Wakes parked waiters when a sync ends.
    ended: watch::Sender<u64>,
}

impl GroupCommit {
    /// `file` is a handle on the journal.
    pub(super) fn new(file: File) -> Self {
        Self {
            inner: Arc::new(Inner {
                file,
                state: Mutex::new(State::default()),
                ended: watch::Sender::new(0),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.lock()
    }

    /// Counts an intent just written (call it under the journal's lock, so numbers
    /// follow the order of the writes) and returns its number.
    pub(super) fn written(&self) -> u64 {
        let mut state = self.lock();
        state.written += 1;
        state.written
    }

    /// Returns once intent `number` is on disk: syncing if no sync is running, else
    /// parked until the running one ends (it may not cover this intent: then again).
    /// `offload`: sync on a blocking thread, not this one, for a waiter with something
    /// else to do on this thread meanwhile (an intent written ahead, while the worker's
    /// own request is still to be written).
    pub(super) async fn wait_async(&self, number: u64, offload: bool) -> std::io::Result<()> {
        let mut ended = self.inner.ended.subscribe();
        loop {
            // Marked seen before looking, so a sync ending in between still wakes us.
            ended.borrow_and_update();
            let step = Inner::step(&mut self.lock(), number);
            match step {
                Step::Done(result) => return result,
                Step::Sync(covers) if offload => {
                    let inner = Arc::clone(&self.inner);
                    let blocking = tokio::task::spawn_blocking(move || inner.sync(covers));
                    if blocking.await.is_err() {
                        // Not run (the runtime is shutting down) or panicked: sync here.
                        self.inner.sync(covers);
                    }
                }
                Step::Sync(covers) => self.inner.sync(covers),
                Step::Wait => {
                    // The sender lives as long as `self`: `changed` cannot fail here.
                    let _ = ended.changed().await;
                }
            }
        }
    }

    /// Intents written, intents durable, syncs done.
    #[cfg(test)]
    pub(super) fn counts(&self) -> (u64, u64, u64) {
        let state = self.lock();
        (state.written, state.durable, state.syncs)
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn step(state: &mut State, number: u64) -> Step {
        if state.durable >= number {
            return Step::Done(Ok(()));
        }
        if let Some((kind, message)) = &state.failed {
            return Step::Done(Err(std::io::Error::new(*kind, message.clone())));
        }
        if state.running {
            return Step::Wait;
        }
        state.running = true;
        Step::Sync(state.written)
    }

    /// Syncs for every intent up to `covers`, then tells the waiters.
    fn sync(&self, covers: u64) {
        let result = self.file.sync_data();
        let mut state = self.lock();
        state.running = false;
        state.syncs += 1;
        match result {
            Ok(()) => state.durable = state.durable.max(covers),
            Err(e) => state.failed = Some((e.kind(), e.to_string())),
        }
        drop(state);
        self.ended.send_modify(|n| *n += 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn commit() -> (tempfile::TempDir, GroupCommit) {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("j")).unwrap();
        (dir, GroupCommit::new(file))
    }

    #[test]
    fn parked_waiters_share_a_sync_started_by_another() {
        let (_dir, commit) = commit();
        let commit = Arc::new(commit);
        // A sync is running (a blocking writer, say): intents written meanwhile wait
        // parked, and one sync after it covers them all.
        commit.lock().running = true;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..20)
                .map(|_| {
                    let commit = Arc::clone(&commit);
                    tokio::spawn(async move {
                        let n = commit.written();
                        commit.wait_async(n, false).await
                    })
                })
                .collect();
            // Every task has written and parked: none blocked the only thread.
            tokio::task::yield_now().await;
            assert_eq!(commit.counts(), (20, 0, 0));
            // The running sync ends without covering them: the first to wake syncs for all.
            commit.inner.sync(0);
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        });
        assert_eq!(commit.counts(), (20, 20, 2));
    }

    #[test]
    fn async_writers_on_many_threads_are_all_covered_whoever_syncs() {
        let (_dir, commit) = commit();
        let commit = Arc::new(commit);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .unwrap();
        runtime.block_on(async {
            let tasks: Vec<_> = (0..64)
                .map(|t| {
                    let commit = Arc::clone(&commit);
                    tokio::spawn(async move {
                        for i in 0..5 {
                            let n = commit.written();
                            // Some sync on a blocking thread, some inline.
                            commit.wait_async(n, (t + i) % 2 == 0).await?;
                        }
                        std::io::Result::Ok(())
                    })
                })
                .collect();
            for task in tasks {
                task.await.unwrap().unwrap();
            }
        });
        let (written, durable, _) = commit.counts();
        assert_eq!((written, durable), (320, 320));
    }

    #[test]
    fn a_failed_sync_fails_every_waiter() {
        let (_dir, commit) = commit();
        commit.lock().failed = Some((std::io::ErrorKind::Other, "disk on fire".into()));
        let n = commit.written();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let err = runtime.block_on(commit.wait_async(n, false)).unwrap_err();
        assert!(err.to_string().contains("disk on fire"));
    }
}
