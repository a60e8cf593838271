/*!
`wolkvox-dispatch ledger migrate`: creates or updates the tables of the team's send
ledger in PostgreSQL (`[ledger] url`), and says the schema version. A run does the
same on first use; this is for a database administrator who grants a team's users
only reading and writing (not creating tables), or wants the update done before
the day's first run. A SQLite ledger (a file) is brought up to date whenever opened.
*/

use crate::cli::{HistoryArgs, LedgerArgs};
use crate::config;
use crate::ledger;
use crate::{Error, Exit, tr};

pub(crate) fn run(args: &LedgerArgs) -> Result<Exit, Error> {
    let words: Vec<&str> = args.words.iter().map(String::as_str).collect();
    if words.as_slice() != ["migrate"] {
        return Err(super::history::HistoryError::NoLedgerAction.into());
    }
    // The ledger's settings, read as `history` reads them.
    let settings = config::history_settings(&HistoryArgs {
        config: args.config.clone(),
        ..HistoryArgs::default()
    })?
    .ledger;
    match &settings.url {
        Some(url) => {
            let (from, to) = ledger::Postgres::migrate_at(&ledger::postgres::Target::new(url)?)?;
            println!(
                "{}",
                tr!(
                    "ledger-migrated",
                    path = settings.place(),
                    from = from,
                    to = to
                )
            );
        }
        None => {
            ledger::open(&settings)?;
            println!("{}", tr!("ledger-migrate-file", path = settings.place()));
        }
    }
    Ok(Exit::Success)
}
