/*!
One module per subcommand, each wiring the stages for it: `validate` (list →
verdicts), `send` (list → verdicts → plan → dispatcher → outcomes →
journal/results → summary; `test_send` for `--test-to`) and `report` (results and
journal → report). `list` is the reading both `validate` and `send` start with;
`preflight` the HSM template check all three run; `outputs` refuses an output
that would overwrite an input or a state file of the run. `init` writes a first config
file; `history` shows, seeds and prunes the send ledger (`crate::ledger`);
`ledger migrate` brings a team's PostgreSQL ledger up to date.
*/

pub(crate) mod history;
pub(crate) mod init;
pub(crate) mod ledger;
pub(crate) mod list;
pub(crate) mod outputs;
pub(crate) mod preflight;
pub(crate) mod reconcile;
pub(crate) mod report;
pub(crate) mod send;
pub(crate) mod test_send;
pub(crate) mod validate;
pub(crate) mod workbook;
