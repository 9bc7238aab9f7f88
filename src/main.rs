use std::process::ExitCode;

use clap::Parser;
use hanzo_s3_operator::cli::{Cli, run};

fn main() -> ExitCode {
    // Logs go to stderr, so stdout stays clean for the CLI's output. RUST_LOG filters
    // (default info); LOG_FORMAT=json gives one JSON object a line for log collectors.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
    ExitCode::from(run(Cli::parse()))
}
