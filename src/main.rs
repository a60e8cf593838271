use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = wolkvox_dispatch::cli::parse();
    match wolkvox_dispatch::run(&cli) {
        Ok(exit) => ExitCode::from(exit.code()),
        Err(err) => {
            eprintln!("{}", wolkvox_dispatch::error_line(&err, &cli));
            ExitCode::from(err.exit().code())
        }
    }
}
