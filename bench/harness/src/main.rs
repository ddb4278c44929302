//! `archlab`: parse the command line, start telemetry, run the subcommand.

use archlab_harness::Cli;
use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let _telemetry = archlab_telemetry::init("archlab");
    match archlab_harness::run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        // One readable line: this is a CLI's answer, not a crash, so no backtrace.
        Err(error) => {
            eprintln!("archlab: {error:#}");
            ExitCode::FAILURE
        }
    }
}
