//! The integration tests, one binary: each module drives the real binary against the
//! fake Wolkvox endpoint of `common` (on 127.0.0.1). One binary instead of one per file:
//! each test binary links the whole crate and its dependencies, and on CI's 2 cores
//! that linking was most of the build. Run one file's tests with its module name:
//! `cargo test --test integration spanish::`.

#[path = "../common/mod.rs"]
mod common;

mod analyst;
mod campaign;
mod docs;
mod fake_wolkvox_selftest;
mod hostile_input;
mod hsm;
mod journal_compat;
mod layout;
mod ledger;
mod ledger_pg;
mod limited_retry;
mod limits;
mod networks;
mod newcomer;
mod odd_answers;
mod outputs_never_inputs;
mod reconcile;
mod reconcile_evidence;
mod resilience;
mod results_for_people;
mod resume_airtight;
mod resume_property;
mod safety_net;
mod same_message;
mod send;
mod spanish;
mod spreadsheets;
mod workbooks_as_shown;
