/*!
`wolkvox-dispatch report RESULTS`: reads a results file and its journal (never
locking either) and prints `report::analysis`'s report, as text or JSON.
*/

use crate::cli::{ReportArgs, ReportFormat};
use crate::journal;
use crate::report::analysis::{build, render};
use crate::{Error, Exit};

/// Runs the command: prints the report on stdout. Exit 0 whatever the run's outcome
/// (the report itself worked); 2 if the file cannot be read.
pub(crate) fn run(args: &ReportArgs) -> Result<Exit, Error> {
    let outcomes = journal::read(&args.results)?;
    let journal = journal::journal_view(&args.results).unwrap_or_default();
    let report = build(&args.results, outcomes, &journal);
    let text = match args.format {
        ReportFormat::Text => render(&report),
        ReportFormat::Json => {
            let mut json = serde_json::to_string_pretty(&report)
                .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()));
            json.push('\n');
            json
        }
    };
    use std::io::Write;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
    Ok(Exit::Success)
}
