/*!
One module per subcommand, each wiring the stages for it: `validate` (list →
verdicts), `send` (list → verdicts → plan → dispatcher → outcomes →
journal/results → summary; `test_send` for `--test-to`) and `report` (results and
journal → report). `list` is the reading both `validate` and `send` start with;
`preflight` the HSM template check all three run. `history` shows, seeds and
prunes the send ledger (`crate::ledger`).
*/

pub(crate) mod history;
pub(crate) mod list;
pub(crate) mod preflight;
pub(crate) mod reconcile;
pub(crate) mod report;
pub(crate) mod send;
pub(crate) mod test_send;
pub(crate) mod validate;
pub(crate) mod workbook;
