//! The command line: one file per subcommand, each a thin edge over the library.

pub mod backstop;
pub mod completion;
pub mod conformance;
pub mod crd;
pub mod default;
#[cfg(feature = "dev")]
pub mod dev;
pub mod rotate_ca;
pub mod run;
pub mod validate;
pub mod webhook_config;

use clap::{Parser, Subcommand};

/// Exit codes shared by the subcommands.
pub const EXIT_OK: u8 = 0;
pub const EXIT_VIOLATIONS: u8 = 1;
pub const EXIT_UNREADABLE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "hanzo-s3-operator",
    version,
    about = "Admission-first Kubernetes operator for Hanzo S3 tenants (minio.min.io/v2 Tenant)",
    long_about = "Admission-first Kubernetes operator for Hanzo S3 tenants.\n\n\
        The same defaulting and validation code runs in the admission webhooks \
        and offline in these commands, so a Tenant that passes `validate` in CI is admitted by the \
        cluster with the same defaults and the same messages.",
    after_help = "Examples:\n  \
        hanzo-s3-operator validate examples/\n  \
        hanzo-s3-operator validate --old live.yaml tenant.yaml -o json\n  \
        hanzo-s3-operator default tenant.yaml --patch\n  \
        hanzo-s3-operator crd > crds/minio.min.io_tenants.yaml\n  \
        hanzo-s3-operator run --standalone --listen 127.0.0.1:8443 --ca-out /tmp/ca.pem"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    Validate(validate::ValidateArgs),
    Default(default::DefaultArgs),
    Crd(crd::CrdArgs),
    Backstop(backstop::BackstopArgs),
    Run(run::RunArgs),
    WebhookConfig(webhook_config::WebhookConfigArgs),
    RotateCa(rotate_ca::RotateCaArgs),
    Conformance(conformance::ConformanceArgs),
    #[cfg(feature = "dev")]
    Dev(dev::DevArgs),
    Completion(completion::CompletionArgs),
}

/// Runs a parsed command; returns the process exit code.
pub fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate(args) => validate::run(&args),
        Command::Default(args) => default::run(&args),
        Command::Crd(args) => crd::run(&args),
        Command::Backstop(args) => backstop::run(&args),
        Command::Run(args) => run::run(&args),
        Command::WebhookConfig(args) => webhook_config::run(&args),
        Command::RotateCa(args) => rotate_ca::run(&args),
        Command::Conformance(args) => conformance::run(&args),
        #[cfg(feature = "dev")]
        Command::Dev(args) => dev::run(&args),
        Command::Completion(args) => completion::run(&args),
    }
}

/// A duration as written on the command line: a number of seconds with a unit, `300s`, `5m`,
/// `12h`, `90d` (a bare number is seconds).
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 300s, 5m, 12h or 90d"))?;
    let seconds = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => return Err(format!("unknown unit {other:?}: use s, m, h or d")),
    };
    if n == 0 {
        return Err("must be longer than 0".to_owned());
    }
    n.checked_mul(seconds)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Runs an async command on a fresh runtime. Errors (the runtime's own, or the command's) are
/// printed as `error: ...`; the command's become `failure_code`.
fn block_on<T, E: std::fmt::Display>(
    command: impl std::future::Future<Output = Result<T, E>>,
    failure_code: u8,
) -> Result<T, u8> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| {
        eprintln!("error: cannot start the runtime: {e}");
        EXIT_UNREADABLE
    })?;
    runtime.block_on(command).map_err(|e| {
        eprintln!("error: {e}");
        failure_code
    })
}

#[cfg(test)]
mod tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn durations_take_a_unit() {
        assert_eq!(parse_duration("300s"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("300"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90d"), Ok(Duration::from_secs(90 * 86_400)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
    }
}
