//! How `validate` reports: text for people, and the formats CI systems read. Every violation
//! carries file, line and column (of its field, or of its nearest parent written in the source);
//! its message is the webhook's, byte for byte.
//!
//! - `github`: GitHub Actions workflow commands (`::error file=...,line=...,col=...::message`),
//!   escaped as @actions/core escapes them; annotations appear on the pull request's files.
//! - `junit`: JUnit XML, one test case per Tenant (failed when it has violations), one error
//!   case per input that cannot be read.
//! - `sarif`: SARIF 2.1.0 for code-scanning UIs, one result per violation and warning, rules
//!   named after the Kubernetes field-error kinds.

use std::fmt::Write as _;

use super::report::{Report, TenantResult};

/// The tenant's title in annotations and test names.
fn title(r: &TenantResult) -> String {
    format!("Tenant {}/{}", r.namespace, r.name)
}

pub fn render_text(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.results {
        let state = if r.valid {
            "valid".to_owned()
        } else {
            format!("{} violation(s)", r.violations.len())
        };
        let _ = writeln!(out, "{}: {}: {state}", r.origin, title(r));
        for v in &r.violations {
            match (v.line, v.column) {
                (Some(line), Some(column)) => {
                    let _ = writeln!(
                        out,
                        "  - {}:{line}:{column}: {}",
                        r.origin.source, v.message
                    );
                }
                _ => {
                    let _ = writeln!(out, "  - {}", v.message);
                }
            }
        }
        for w in &r.warnings {
            let _ = writeln!(out, "  warning: {w}");
        }
    }
    for e in &report.errors {
        let _ = writeln!(out, "error: {e}");
    }
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

fn summary_line(report: &Report) -> String {
    let s = &report.summary;
    format!(
        "{} tenant(s): {} valid, {} invalid; {} other document(s) skipped; {} unreadable input(s)",
        s.tenants, s.valid, s.invalid, s.skipped, s.unreadable
    )
}

/// GitHub's escaping of a command's message (`escapeData` in @actions/core).
fn escape_data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// GitHub's escaping of a command property (`escapeProperty` in @actions/core).
fn escape_property(s: &str) -> String {
    escape_data(s).replace(':', "%3A").replace(',', "%2C")
}

/// One workflow command, properties in @actions/core's order (title, file, line, col).
fn command(
    kind: &str,
    title: &str,
    file: &str,
    line: Option<usize>,
    column: Option<usize>,
    message: &str,
) -> String {
    let mut properties = vec![
        format!("title={}", escape_property(title)),
        format!("file={}", escape_property(file)),
    ];
    if let Some(line) = line {
        properties.push(format!("line={line}"));
    }
    if let Some(column) = column {
        properties.push(format!("col={column}"));
    }
    format!(
        "::{kind} {}::{}\n",
        properties.join(","),
        escape_data(message)
    )
}

pub fn render_github(report: &Report) -> String {
    let mut out = String::new();
    for r in &report.results {
        for v in &r.violations {
            out.push_str(&command(
                "error",
                &title(r),
                &r.origin.source,
                v.line.or(r.origin.line),
                v.column,
                &v.message,
            ));
        }
        for w in &r.warnings {
            out.push_str(&command(
                "warning",
                &title(r),
                &r.origin.source,
                r.origin.line,
                None,
                w,
            ));
        }
    }
    for e in &report.errors {
        out.push_str(&format!("::error title=validate::{}\n", escape_data(e)));
    }
    out.push_str(&summary_line(report));
    out.push('\n');
    out
}

fn xml(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub fn render_junit(report: &Report) -> String {
    let s = &report.summary;
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"hanzo-s3-operator validate\" tests=\"{}\" failures=\"{}\" errors=\"{}\">",
        s.tenants + report.errors.len(),
        s.invalid,
        report.errors.len()
    );
    let _ = writeln!(
        out,
        "  <testsuite name=\"Tenants\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"0\">",
        s.tenants + report.errors.len(),
        s.invalid,
        report.errors.len()
    );
    for r in &report.results {
        let name = format!("{} (document {})", title(r), r.origin.document);
        let line = r
            .origin
            .line
            .map(|l| format!(" line=\"{l}\""))
            .unwrap_or_default();
        let _ = write!(
            out,
            "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\"{line}",
            xml(&r.origin.source),
            xml(&name),
            xml(&r.origin.source)
        );
        if r.valid && r.warnings.is_empty() {
            out.push_str("/>\n");
            continue;
        }
        out.push_str(">\n");
        if !r.valid {
            let body: Vec<String> = r
                .violations
                .iter()
                .map(|v| match (v.line, v.column) {
                    (Some(l), Some(c)) => format!("{}:{l}:{c}: {}", r.origin.source, v.message),
                    _ => v.message.clone(),
                })
                .collect();
            let _ = writeln!(
                out,
                "      <failure type=\"Invalid\" message=\"{}\">{}</failure>",
                xml(r.message.as_deref().unwrap_or("invalid")),
                xml(&body.join("\n"))
            );
        }
        if !r.warnings.is_empty() {
            let _ = writeln!(
                out,
                "      <system-out>{}</system-out>",
                xml(&r
                    .warnings
                    .iter()
                    .map(|w| format!("warning: {w}"))
                    .collect::<Vec<_>>()
                    .join("\n"))
            );
        }
        out.push_str("    </testcase>\n");
    }
    for (i, e) in report.errors.iter().enumerate() {
        let _ = writeln!(
            out,
            "    <testcase classname=\"inputs\" name=\"input {}\">\n      <error type=\"Unreadable\" message=\"{}\"/>\n    </testcase>",
            i + 1,
            xml(e)
        );
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

pub fn render_sarif(report: &Report) -> serde_json::Value {
    use serde_json::json;
    let rule =
        |id: &str, what: &str| json!({"id": id, "name": id, "shortDescription": {"text": what}});
    let mut rule_ids: Vec<&'static str> = Vec::new();
    let mut results = Vec::new();
    let location = |file: &str, line: Option<usize>, column: Option<usize>| {
        let mut region = serde_json::Map::new();
        if let Some(l) = line {
            region.insert("startLine".into(), json!(l));
        }
        if let Some(c) = column {
            region.insert("startColumn".into(), json!(c));
        }
        let mut physical = json!({"artifactLocation": {"uri": file}});
        if !region.is_empty() {
            physical["region"] = serde_json::Value::Object(region);
        }
        json!([{"physicalLocation": physical}])
    };
    for r in &report.results {
        for v in &r.violations {
            let id = v.violation.reason.cause_type();
            if !rule_ids.contains(&id) {
                rule_ids.push(id);
            }
            results.push(json!({
                "ruleId": id,
                "level": "error",
                "message": {"text": format!("{}: {}", title(r), v.message)},
                "locations": location(&r.origin.source, v.line.or(r.origin.line), v.column),
            }));
        }
        for w in &r.warnings {
            if !rule_ids.contains(&"Warning") {
                rule_ids.push("Warning");
            }
            results.push(json!({
                "ruleId": "Warning",
                "level": "warning",
                "message": {"text": format!("{}: {w}", title(r))},
                "locations": location(&r.origin.source, r.origin.line, None),
            }));
        }
    }
    for e in &report.errors {
        if !rule_ids.contains(&"Unreadable") {
            rule_ids.push("Unreadable");
        }
        results.push(json!({"ruleId": "Unreadable", "level": "error", "message": {"text": e}}));
    }
    let rules: Vec<serde_json::Value> = rule_ids
        .iter()
        .map(|id| match *id {
            "Warning" => rule(
                id,
                "The Tenant is admitted, but something about it deserves attention",
            ),
            "Unreadable" => rule(id, "An input could not be read or parsed"),
            other => rule(
                other,
                "The Tenant violates a rule of the validating webhook",
            ),
        })
        .collect();
    json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "hanzo-s3-operator",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/hanzos3/hanzo-s3-operator",
                "rules": rules,
            }},
            "results": results,
        }]
    })
}
