/*!
One module per subcommand, each wiring the stages for it: `validate` (list →
verdicts), `send` (list → verdicts → plan → dispatcher → outcomes →
journal/results → summary) and `report` (results and journal → report). `list`
is the reading both `validate` and `send` start with.
*/

pub(crate) mod list;
pub(crate) mod report;
pub(crate) mod send;
pub(crate) mod validate;
