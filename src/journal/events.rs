/*!
The journal's lines: one `Event` each, written as `<checksum> <json>` (see the module
doc of `journal`), and what the `leaving` events tell of intents written ahead.
*/

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::RunInfo;
use crate::outcome::Outcome;
use crate::tr;

/// Intents written ahead (while the worker's previous request was in flight) whose
/// request has not been seen leaving. Before an ahead row's request leaves, a `leaving`
/// event is written, not synced: within the boot that wrote it the journal holds it
/// (a killed process loses no written line), so an ahead intent without it, read in
/// the same boot, is a request that never left, and the row is simply not attempted.
/// Read after a reboot, the `leaving` line may have been lost to the power cut: the row
/// stays `unknown`, as any intent without an outcome.
#[derive(Debug, Default)]
pub(super) struct AheadIntents {
    /// The boot of the run being read.
    run_boot: Option<String>,
    /// Key -> the boot of the run that wrote its ahead intent.
    pending: HashMap<String, Option<String>>,
}

impl AheadIntents {
    pub(super) fn event(&mut self, event: &Event) {
        match event {
            Event::Run(info) => self.run_boot.clone_from(&info.boot_id),
            Event::Intent {
                key, ahead: true, ..
            } => {
                self.pending.insert(key.clone(), self.run_boot.clone());
            }
            Event::Intent { key, .. } | Event::Leaving { key } | Event::Done { key, .. } => {
                self.pending.remove(key);
            }
            Event::Query { .. } => {}
        }
    }

    /// Keys whose ahead intent certainly never became a request, read in boot `now`.
    pub(super) fn never_left(self, now: Option<&str>) -> impl Iterator<Item = String> {
        self.pending
            .into_iter()
            .filter(move |(_, boot)| now.is_some() && boot.as_deref() == now)
            .map(|(key, _)| key)
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub(super) enum Event {
    Run(Box<RunInfo>),
    Intent {
        key: String,
        row: u64,
        /// Absent in journals of earlier versions.
        #[serde(default)]
        telephone: Option<String>,
        /// Written while the worker's previous request was in flight (see `AheadIntents`).
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        ahead: bool,
    },
    /// The request of a row whose intent was written ahead is about to leave.
    Leaving {
        key: String,
    },
    Done {
        key: String,
        outcome: Outcome,
    },
    /// A call to one of Wolkvox's report APIs (`reconcile`), which Wolkvox asks to be
    /// made at most every 5 minutes: when, to keep to that across runs.
    Query {
        api: String,
        at: String,
    },
}

/// The checksum of a journal line's JSON: the first 64 bits of its SHA-256, in hex.
pub(super) fn checksum(json: &[u8]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(json);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Why a journal line cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum LineDamage {
    /// Neither JSON (a line of an earlier version) nor `<checksum> <json>`.
    NoChecksum,
    /// The checksum is not the JSON's: the line was changed or torn.
    ChecksumMismatch,
    /// The checksum holds, the JSON is not an event (the parser's words).
    NotAnEvent(String),
}

impl LineDamage {
    /// In the language printed now.
    pub(super) fn text(&self) -> String {
        match self {
            LineDamage::NoChecksum => tr!("journal-line-no-checksum"),
            LineDamage::ChecksumMismatch => tr!("journal-line-checksum-mismatch"),
            LineDamage::NotAnEvent(why) => tr!("journal-line-not-an-event", why = why),
        }
    }
}

/// One journal line's event, checking its checksum (lines of earlier versions have none).
pub(super) fn parse_line(line: &[u8]) -> Result<Event, LineDamage> {
    let json = if line.first() == Some(&b'{') {
        line
    } else {
        let (sum, json) = line
            .iter()
            .position(|&b| b == b' ')
            .map(|i| (&line[..i], &line[i + 1..]))
            .ok_or(LineDamage::NoChecksum)?;
        if sum != checksum(json).as_bytes() {
            return Err(LineDamage::ChecksumMismatch);
        }
        json
    };
    serde_json::from_slice(json).map_err(|e| LineDamage::NotAnEvent(e.to_string()))
}
