use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = wolkvox_dispatch::cli::parse();
    match wolkvox_dispatch::run(cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            eprintln!(
                "error: {}",
                wolkvox_dispatch::text::for_terminal(&err.to_string(), false)
            );
            ExitCode::from(err.exit().code())
        }
    }
}
