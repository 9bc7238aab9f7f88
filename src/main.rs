use std::process::ExitCode;

use clap::Parser;
use hanzo_s3_operator::cli::{Cli, run};

#[cfg(not(feature = "system-allocator"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Logs go to stderr, so stdout stays clean for the CLI's output. RUST_LOG filters
    // (default info); LOG_FORMAT=json gives one JSON object a line for log collectors.
    let directives = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_owned());
    let mut filter = tracing_subscriber::EnvFilter::try_new(&directives)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // kube-client logs every refused request at ERROR; the operator reports each failure itself,
    // with its context, at WARN (and on the Tenant). Ask for kube_client in RUST_LOG to see them.
    if !directives.contains("kube_client")
        && let Ok(quiet) = "kube_client::client::builder=off".parse()
    {
        filter = filter.add_directive(quiet);
    }
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
