//! The command line: one file per subcommand, each a thin edge over the library.

pub mod backstop;
pub mod completion;
pub mod conformance;
pub mod crd;
pub mod default;
#[cfg(feature = "dev")]
pub mod dev;
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
        Command::Conformance(args) => conformance::run(&args),
        #[cfg(feature = "dev")]
        Command::Dev(args) => dev::run(&args),
        Command::Completion(args) => completion::run(&args),
    }
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
