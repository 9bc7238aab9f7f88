use std::process::ExitCode;

use clap::Parser;
use hanzo_s3_operator::cli::{Cli, run};

fn main() -> ExitCode {
    ExitCode::from(run(Cli::parse()))
}
