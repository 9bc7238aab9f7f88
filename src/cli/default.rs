//! `default`: shows what the mutating webhook does to a Tenant.

use std::io::Write;

use clap::{Args, ValueEnum};

use super::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATIONS};
use crate::admission::{self, DefaultsConfig, patch::defaulting_patch};
use crate::manifest;
use crate::manifest::source_map::Position;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Yaml,
    Json,
}

/// Print Tenants as the mutating webhook would store them, or the JSONPatch it would send.
///
/// The output is the input with the webhook's patch applied: fields you wrote stay as you wrote
/// them and other documents pass through unchanged. Nothing is printed unless every document
/// could be read.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    hanzo-s3-operator default examples/tenant-minimal.yaml\n  \
    hanzo-s3-operator default --patch examples/tenant-minimal.yaml\n  \
    TENANT_S3_IMAGE=registry.local/s3:tag hanzo-s3-operator default tenant.yaml -o json")]
pub struct DefaultArgs {
    /// A file, or `-` for standard input.
    #[arg(value_name = "FILE")]
    pub file: String,
    /// Print the JSONPatch (RFC 6902) the mutating webhook would answer, one per Tenant.
    #[arg(long)]
    pub patch: bool,
    /// Output format of the defaulted documents.
    #[arg(short, long, value_enum, default_value = "yaml")]
    pub output: Format,
    /// Namespace assumed for Tenants without metadata.namespace (it is part of the defaults).
    #[arg(long, default_value = "default", value_name = "NAMESPACE")]
    pub namespace: String,
}

#[derive(Debug, thiserror::Error)]
enum DefaultError {
    #[error("{0}")]
    Manifest(#[from] manifest::ManifestError),
    #[error("{}", located(origin, position, message))]
    Tenant {
        origin: manifest::Origin,
        /// Of the offending field, when the error is about one.
        position: Option<Position>,
        message: String,
        invalid: bool,
    },
    #[error("cannot render output: {0}")]
    Render(String),
}

/// `tenant.yaml:14:7: document 2: message` when the field's place is known, else
/// `tenant.yaml: document 2 (line 7): message`.
fn located(origin: &manifest::Origin, position: &Option<Position>, message: &str) -> String {
    match position {
        Some(p) => format!(
            "{}:{}:{}: document {}: {message}",
            origin.source, p.line, p.column, origin.document
        ),
        None => format!("{origin}: {message}"),
    }
}

fn render(args: &DefaultArgs, config: &DefaultsConfig) -> Result<String, DefaultError> {
    let mut reads = manifest::read_path(&args.file);
    let mut documents = Vec::new();
    for read in reads.drain(..) {
        if let Some(e) = read.error {
            return Err(e.into());
        }
        documents.extend(read.documents);
    }
    let mut out = String::new();
    for doc in documents {
        let mut value = doc.value.clone();
        if manifest::is_tenant(&value) {
            let violation = |v: &admission::Violation| DefaultError::Tenant {
                origin: doc.origin.clone(),
                position: doc.position(&v.field),
                message: v.message(),
                invalid: true,
            };
            if let Some(over) = admission::limits::check_value(&value).first() {
                return Err(violation(over));
            }
            let mut tenant = admission::parse_tenant(&value).map_err(|v| violation(&v))?;
            if tenant.namespace().is_empty() {
                tenant.metadata.namespace = Some(args.namespace.clone());
            }
            let (patch, _) =
                defaulting_patch(&value, &tenant, config).map_err(|e| DefaultError::Tenant {
                    origin: doc.origin.clone(),
                    position: None,
                    message: e.to_string(),
                    invalid: false,
                })?;
            if args.patch {
                let text = serde_json::to_string_pretty(&patch)
                    .map_err(|e| DefaultError::Render(e.to_string()))?;
                out.push_str(&text);
                out.push('\n');
                continue;
            }
            json_patch::patch(&mut value, &patch).map_err(|e| DefaultError::Tenant {
                origin: doc.origin.clone(),
                position: None,
                message: format!("the defaulting patch does not apply: {e}"),
                invalid: false,
            })?;
        } else if args.patch {
            continue;
        }
        match args.output {
            Format::Yaml => {
                out.push_str("---\n");
                out.push_str(
                    &serde_yaml_ng::to_string(&value)
                        .map_err(|e| DefaultError::Render(e.to_string()))?,
                );
            }
            Format::Json => {
                out.push_str(
                    &serde_json::to_string_pretty(&value)
                        .map_err(|e| DefaultError::Render(e.to_string()))?,
                );
                out.push('\n');
            }
        }
    }
    Ok(out)
}

pub fn run(args: &DefaultArgs) -> u8 {
    match render(args, &DefaultsConfig::from_env()) {
        Ok(text) => {
            let _ = std::io::stdout().write_all(text.as_bytes());
            EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            match e {
                DefaultError::Tenant { invalid: true, .. } => EXIT_VIOLATIONS,
                _ => EXIT_UNREADABLE,
            }
        }
    }
}
