//! `validate`: judges Tenant manifests offline with the webhook's own rules and messages.

use std::collections::HashMap;
use std::io::Write;

use clap::Args;
use serde::Serialize;

use super::{EXIT_OK, EXIT_UNREADABLE, EXIT_VIOLATIONS, Output};
use crate::admission::{self, DefaultsConfig, Verdict, Violation};
use crate::api::tenant::Tenant;
use crate::manifest::{self, Document, Origin};

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
    hanzo-s3-operator validate -o json tenants/ | jq '.summary'")]
pub struct ValidateArgs {
    /// Files, directories (searched for .yaml, .yml, .json) or `-` for standard input.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<String>,
    /// The Tenants as they are now (e.g. the live objects): each Tenant in PATH with the same
    /// namespace and name is judged as an UPDATE of it (pool removal, immutable sizes, ...).
    #[arg(long, value_name = "FILE")]
    pub old: Option<String>,
    /// Output format.
    #[arg(short, long, value_enum, default_value = "text")]
    pub output: Output,
    /// Namespace assumed for Tenants without metadata.namespace (it is part of the defaults).
    #[arg(long, default_value = "default", value_name = "NAMESPACE")]
    pub namespace: String,
}

/// The judgement of one Tenant document.
#[derive(Debug, Serialize)]
pub struct TenantResult {
    #[serde(flatten)]
    pub origin: Origin,
    pub namespace: String,
    pub name: String,
    pub valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub violations: Vec<ViolationOut>,
    pub warnings: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct ViolationOut {
    #[serde(flatten)]
    pub violation: Violation,
    pub message: String,
}

#[derive(Debug, Default, Serialize)]
pub struct Summary {
    pub tenants: usize,
    pub valid: usize,
    pub invalid: usize,
    pub skipped: usize,
    pub unreadable: usize,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub results: Vec<TenantResult>,
    pub errors: Vec<String>,
    pub summary: Summary,
}

impl Report {
    pub fn exit_code(&self) -> u8 {
        if self.summary.unreadable > 0 {
            EXIT_UNREADABLE
        } else if self.summary.invalid > 0 {
            EXIT_VIOLATIONS
        } else {
            EXIT_OK
        }
    }
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
            .map(|v| ViolationOut {
                message: v.message(),
                violation: v,
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

pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.results {
        let state = if r.valid {
            "valid".to_owned()
        } else {
            format!("{} violation(s)", r.violations.len())
        };
        out.push_str(&format!(
            "{}: Tenant {}/{}: {state}\n",
            r.origin, r.namespace, r.name
        ));
        for v in &r.violations {
            out.push_str(&format!("  - {}\n", v.message));
        }
        for w in &r.warnings {
            out.push_str(&format!("  warning: {w}\n"));
        }
    }
    for e in &report.errors {
        out.push_str(&format!("error: {e}\n"));
    }
    let s = &report.summary;
    out.push_str(&format!(
        "{} tenant(s): {} valid, {} invalid; {} other document(s) skipped; {} unreadable input(s)\n",
        s.tenants, s.valid, s.invalid, s.skipped, s.unreadable
    ));
    out
}

pub fn run(args: &ValidateArgs) -> u8 {
    let report = validate_paths(args, &DefaultsConfig::from_env());
    let rendered = match args.output {
        Output::Text => render_text(&report),
        Output::Json => match serde_json::to_string_pretty(&report) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("error: cannot render the report: {e}");
                return EXIT_UNREADABLE;
            }
        },
    };
    // A closed pipe (`| head`) is not an error worth a panic.
    let _ = std::io::stdout().write_all(rendered.as_bytes());
    report.exit_code()
}
