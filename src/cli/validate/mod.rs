//! `validate`: judges Tenant manifests offline with the webhook's own rules and messages.

use std::collections::HashMap;
use std::io::Write;

use clap::Args;

use super::EXIT_UNREADABLE;

mod formats;
mod report;

use crate::admission::{self, DefaultsConfig, Verdict};
use crate::api::tenant::Tenant;
use crate::manifest::{self, Document};
pub use report::{Report, Summary, TenantResult, ViolationOut};

/// Check Tenant manifests offline, exactly as the validating webhook would.
///
/// Reads multi-document YAML or JSON (a `kind: List` is expanded); documents that are not
/// minio.min.io/v2 Tenants are skipped and counted. Exit code 0 when every Tenant is valid, 1 when
/// any has a violation, 2 when some input cannot be read or parsed.
#[derive(Args, Debug)]
#[command(after_help = "Examples:\n  \
    hanzo-s3-operator validate examples/\n  \
    kustomize build overlays/prod | hanzo-s3-operator validate -\n  \
    hanzo-s3-operator validate --old <(kubectl get tenant t -o yaml) tenant.yaml\n  \
    hanzo-s3-operator validate -o json tenants/ | jq '.summary'\n  \
    hanzo-s3-operator validate -o github manifests/                # annotations in GitHub Actions\n  \
    hanzo-s3-operator validate -o junit manifests/ > report.xml    # test report for CI\n  \
    hanzo-s3-operator validate -o sarif manifests/ > tenants.sarif # code scanning")]
pub struct ValidateArgs {
    /// Files, directories (searched for .yaml, .yml, .json) or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// The Tenants as they are now (e.g. the live objects): each Tenant in PATH with the same
    /// namespace and name is judged as an UPDATE of it (pool removal, immutable sizes, ...).
    #[arg(long, value_name = "FILE")]
    pub old: Option<String>,
    /// Output format: text, json, github (workflow command annotations), junit (XML, one test case
    /// per Tenant) or sarif (2.1.0, for code scanning).
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: Format,
    /// Namespace assumed for Tenants without metadata.namespace (it is part of the defaults).
    #[arg(long, default_value = "default", value_name = "NAMESPACE")]
    pub namespace: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    Github,
    Junit,
    Sarif,
}

/// Judges one document that is a Tenant, with `old` when the update rules apply.
pub fn judge_document(
    doc: &Document,
    old: Option<&Tenant>,
    namespace: &str,
    config: &DefaultsConfig,
) -> TenantResult {
    let meta = |key: &str| {
        doc.value
            .pointer(&format!("/metadata/{key}"))
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_owned()
    };
    let name = meta("name");
    let namespace = Some(meta("namespace"))
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| namespace.to_owned());
    // The size limits first, as the webhook checks them before it parses.
    let over = admission::limits::check_value(&doc.value);
    let verdict = match admission::parse_tenant(&doc.value) {
        _ if !over.is_empty() => Verdict {
            violations: over,
            warnings: Vec::new(),
        },
        Ok(mut tenant) => {
            tenant.metadata.namespace = Some(namespace.clone());
            admission::review(old, &tenant, config)
        }
        Err(violation) => Verdict {
            violations: vec![violation],
            warnings: Vec::new(),
        },
    };
    TenantResult {
        origin: doc.origin.clone(),
        message: verdict.message(&name),
        valid: verdict.allowed(),
        violations: verdict
            .violations
            .into_iter()
            .map(|v| {
                let position = doc.position(&v.field);
                ViolationOut {
                    message: v.message(),
                    line: position.map(|p| p.line),
                    column: position.map(|p| p.column),
                    violation: v,
                }
            })
            .collect(),
        warnings: verdict.warnings,
        namespace,
        name,
    }
}

/// Reads every path and judges every Tenant in them.
pub fn validate_paths(args: &ValidateArgs, config: &DefaultsConfig) -> Report {
    let mut report = Report::default();
    let mut olds: HashMap<(String, String), Tenant> = HashMap::new();
    if let Some(old_path) = &args.old {
        for read in manifest::read_path(old_path) {
            if let Some(e) = read.error {
                report.errors.push(e.to_string());
                report.summary.unreadable += 1;
            }
            for doc in read.documents.iter().filter(|d| d.is_tenant()) {
                match admission::parse_tenant(&doc.value) {
                    Ok(t) => {
                        let ns = t
                            .metadata
                            .namespace
                            .clone()
                            .unwrap_or_else(|| args.namespace.clone());
                        olds.insert((ns, t.name().to_owned()), t);
                    }
                    Err(v) => {
                        report.errors.push(format!("{} (--old): {}", doc.origin, v));
                        report.summary.unreadable += 1;
                    }
                }
            }
        }
    }
    for path in &args.paths {
        for read in manifest::read_path(path) {
            for doc in &read.documents {
                if !doc.is_tenant() {
                    report.summary.skipped += 1;
                    continue;
                }
                let ns = doc
                    .value
                    .pointer("/metadata/namespace")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or(&args.namespace)
                    .to_owned();
                let name = doc
                    .value
                    .pointer("/metadata/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_owned();
                let result = judge_document(doc, olds.get(&(ns, name)), &args.namespace, config);
                report.summary.tenants += 1;
                if result.valid {
                    report.summary.valid += 1;
                } else {
                    report.summary.invalid += 1;
                }
                report.results.push(result);
            }
            if let Some(e) = read.error {
                report.errors.push(e.to_string());
                report.summary.unreadable += 1;
            }
        }
    }
    report
}

pub fn run(args: &ValidateArgs) -> u8 {
    let report = validate_paths(args, &DefaultsConfig::from_env());
    let json = |value: serde_json::Result<String>| match value {
        Ok(s) => Some(s + "\n"),
        Err(e) => {
            eprintln!("error: cannot render the report: {e}");
            None
        }
    };
    let rendered = match args.output {
        Format::Text => Some(formats::render_text(&report)),
        Format::Json => json(serde_json::to_string_pretty(&report)),
        Format::Github => Some(formats::render_github(&report)),
        Format::Junit => Some(formats::render_junit(&report)),
        Format::Sarif => json(serde_json::to_string_pretty(&formats::render_sarif(
            &report,
        ))),
    };
    let Some(rendered) = rendered else {
        return EXIT_UNREADABLE;
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(rendered.as_bytes());
    report.exit_code()
}
