/*!
The contact window as the dispatcher checks it before every request (`Gate`): it
reads the time through a `Clock` (the real one, or a test's) and remembers the open
period it last saw, so most checks are two comparisons instead of a time-zone
computation.
*/

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use jiff::{Timestamp, ZonedDateTime};

use super::ContactWindow;

/// Where the dispatcher reads the time from; tests substitute their own.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// What the dispatcher may do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum GateState {
    Open,
    /// Closed; `next_open` is `None` if it does not open in the searched range.
    Closed {
        next_open: Option<ZonedDateTime>,
    },
}

/// A contact window checked before every request. It remembers the open period it last
/// saw, so most checks are two comparisons instead of a time-zone computation.
#[derive(Debug)]
pub(crate) struct Gate {
    window: ContactWindow,
    clock: Arc<dyn Clock>,
    /// `[from, until)`: an instant known to be open and when that open period ends.
    open: Mutex<Option<(Timestamp, Timestamp)>>,
}

/// How long an open period with no end in sight is trusted before checking again.
const RECHECK: Duration = Duration::from_secs(3600);

impl Gate {
    pub(crate) fn new(window: ContactWindow, clock: Arc<dyn Clock>) -> Self {
        Self {
            window,
            clock,
            open: Mutex::new(None),
        }
    }

    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub(crate) fn check(&self) -> GateState {
        let now = self.clock.now();
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((from, until)) = *open
            && from <= now
            && now < until
        {
            return GateState::Open;
        }
        if self.window.is_open(now) {
            let until = self
                .window
                .closes_at(now)
                .map(|z| z.timestamp())
                .or_else(|| now.checked_add(RECHECK).ok())
                .unwrap_or(now);
            *open = Some((now, until));
            GateState::Open
        } else {
            *open = None;
            GateState::Closed {
                next_open: self.window.next_open(now),
            }
        }
    }
}
