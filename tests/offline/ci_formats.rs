//! `validate` for CI: every violation carries file, line and column (YAML and JSON, multi-document
//! streams, Lists, stdin), and each CI format is checked by a third party's code: GitHub's
//! @actions/core writes the very same workflow commands, junitparser reads the JUnit XML, and the
//! SARIF validates against the SARIF 2.1.0 schema. tests/tools/fetch-ci-format-checkers.sh fetches
//! them (npm, PyPI, Maven Central) into a cache on first use.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::{Value, json};

const BROKEN: &str = "apiVersion: v1
kind: Secret
metadata: {name: s}
---
apiVersion: minio.min.io/v2
kind: Tenant
metadata:
  name: broken
  namespace: storage
spec:
  configuration: {name: x}
  podManagementPolicy: parallel
  pools:
    - name: p0
      servers: 2
      volumesPerServer: 1
      volumeClaimTemplate:
        spec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}
";

fn validate(args: &[&str], stdin: Option<&str>, dir: &Path) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hanzo-s3-operator"));
    cmd.arg("validate").args(args).current_dir(dir);
    let out = if let Some(input) = stdin {
        use std::io::Write;
        let mut child = cmd
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    } else {
        cmd.output().unwrap()
    };
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
    )
}

fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("broken.yaml"), BROKEN).unwrap();
    dir
}

#[test]
fn every_violation_names_file_line_and_column_of_its_field() {
    let dir = workdir();
    let (code, text) = validate(&["broken.yaml"], None, dir.path());
    assert_eq!(code, 1);
    assert!(text.contains("  - broken.yaml:16:7: spec.pools[0].volumesPerServer: Invalid value: 1: a pool with 2 servers needs at least 4 volumes in total"), "{text}");
    assert!(
        text.contains(
            "  - broken.yaml:12:3: spec.podManagementPolicy: Unsupported value: \"parallel\""
        ),
        "{text}"
    );

    // The same from stdin, and in JSON output as numbers.
    let (_, text) = validate(&["-"], Some(BROKEN), dir.path());
    assert!(
        text.contains("  - <stdin>:16:7: spec.pools[0].volumesPerServer"),
        "{text}"
    );
    let (_, json) = validate(&["-o", "json", "broken.yaml"], None, dir.path());
    let report: Value = serde_json::from_str(&json).unwrap();
    let v = &report["results"][0]["violations"][0];
    assert_eq!(
        (
            v["field"].as_str(),
            v["line"].as_u64(),
            v["column"].as_u64()
        ),
        (Some("spec.pools[0].volumesPerServer"), Some(16), Some(7))
    );
}

#[test]
fn json_input_and_list_items_are_located_too() {
    let dir = workdir();
    let tenant = json!({"apiVersion": "minio.min.io/v2", "kind": "Tenant", "metadata": {"name": "j"},
        "spec": {"configuration": {"name": "x"}, "pools": [{"name": "p0", "servers": 2, "volumesPerServer": 1,
        "volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}}]}});
    std::fs::write(
        dir.path().join("t.json"),
        serde_json::to_string_pretty(&tenant).unwrap(),
    )
    .unwrap();
    let (_, text) = validate(&["t.json"], None, dir.path());
    // serde_json's pretty printer puts "volumesPerServer" on line 19, indented 8.
    let line = serde_json::to_string_pretty(&tenant)
        .unwrap()
        .lines()
        .position(|l| l.contains("volumesPerServer"))
        .unwrap()
        + 1;
    assert!(
        text.contains(&format!(
            "  - t.json:{line}:9: spec.pools[0].volumesPerServer"
        )),
        "{text}"
    );

    let list = format!(
        "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: ConfigMap\n  metadata: {{name: c}}\n- {}\n",
        tenant
    );
    std::fs::write(dir.path().join("list.yaml"), list).unwrap();
    let (_, text) = validate(&["list.yaml"], None, dir.path());
    // The second item is one flow-style line (7); its volumesPerServer key is on it.
    assert!(text.contains("  - list.yaml:7:"), "{text}");
    assert!(
        text.contains("spec.pools[0].volumesPerServer: Invalid value: 1"),
        "{text}"
    );
}

#[test]
fn a_missing_field_points_at_its_nearest_written_parent() {
    let dir = workdir();
    let yaml = "apiVersion: minio.min.io/v2\nkind: Tenant\nmetadata: {name: m}\nspec:\n  configuration: {name: x}\n  pools:\n    - name: p0\n      servers: 4\n      volumesPerServer: 1\n";
    std::fs::write(dir.path().join("m.yaml"), yaml).unwrap();
    let (_, text) = validate(&["m.yaml"], None, dir.path());
    // volumeClaimTemplate is missing: the pool that lacks it is where `name: p0` starts.
    assert!(
        text.contains("  - m.yaml:7:7: spec.pools[0].volumeClaimTemplate: Required value"),
        "{text}"
    );
}

fn checkers() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Command::new("bash")
            .arg(
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/tools/fetch-ci-format-checkers.sh"),
            )
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "tests/tools/fetch-ci-format-checkers.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        PathBuf::from(
            String::from_utf8(out.stdout)
                .unwrap()
                .lines()
                .last()
                .unwrap(),
        )
    })
}

#[test]
fn github_annotations_are_what_actions_core_writes() {
    let dir = workdir();
    let (code, ours) = validate(&["-o", "github", "broken.yaml"], None, dir.path());
    assert_eq!(code, 1);
    let annotations: Vec<&str> = ours.lines().filter(|l| l.starts_with("::")).collect();
    assert_eq!(annotations.len(), 2, "{ours}");
    // The same annotations issued by GitHub's own toolkit, from the JSON report's facts.
    let (_, json) = validate(&["-o", "json", "broken.yaml"], None, dir.path());
    let report: Value = serde_json::from_str(&json).unwrap();
    let result = &report["results"][0];
    let calls: Vec<Value> = result["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| json!({"message": v["message"], "title": format!("Tenant {}/{}", result["namespace"].as_str().unwrap(), result["name"].as_str().unwrap()),
            "file": result["source"], "startLine": v["line"], "startColumn": v["column"]}))
        .collect();
    // @actions/core is an ES module: imported by its path.
    let module = checkers().join("node/node_modules/@actions/core/lib/core.js");
    let script = format!(
        "import('file://{}').then(core => {{ for (const c of {}) core.error(c.message, {{title: c.title, file: c.file, startLine: c.startLine, startColumn: c.startColumn}}); }});",
        module.display(),
        serde_json::to_string(&calls).unwrap()
    );
    let out = Command::new("node")
        .args(["-e", &script])
        .output()
        .expect("node runs @actions/core");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs = String::from_utf8(out.stdout).unwrap();
    assert_eq!(annotations, theirs.lines().collect::<Vec<_>>());
    // Escaping of what GitHub treats specially (% , : and newlines), checked the same way.
    assert!(
        annotations[1].contains("::spec.podManagementPolicy: Unsupported value"),
        "messages keep their colons"
    );
}

#[test]
fn junit_has_one_test_case_per_tenant_as_junitparser_reads_it() {
    let dir = workdir();
    std::fs::write(
        dir.path().join("ok.yaml"),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tenant-minimal.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    std::fs::write(dir.path().join("bad.yaml"), "a: [\n").unwrap();
    let (code, xml) = validate(
        &["-o", "junit", "broken.yaml", "ok.yaml", "bad.yaml"],
        None,
        dir.path(),
    );
    assert_eq!(code, 2, "an unreadable input wins");
    let report = dir.path().join("report.xml");
    std::fs::write(&report, &xml).unwrap();
    let script = "import json, sys
from junitparser import JUnitXml, Failure, Error
xml = JUnitXml.fromfile(sys.argv[1])
cases = [{'name': c.name, 'classname': c.classname, 'result': [type(r).__name__ for r in c.result], 'text': [r.text or '' for r in c.result]} for s in xml for c in s]
print(json.dumps({'tests': xml.tests, 'failures': xml.failures, 'errors': xml.errors, 'cases': cases}))";
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(&report)
        .env("PYTHONPATH", checkers().join("python"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "junitparser: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (
            parsed["tests"].as_u64(),
            parsed["failures"].as_u64(),
            parsed["errors"].as_u64()
        ),
        (Some(3), Some(1), Some(1)),
        "{parsed}"
    );
    let cases = parsed["cases"].as_array().unwrap();
    assert_eq!(cases[0]["name"], "Tenant storage/broken (document 2)");
    assert_eq!(cases[0]["result"], json!(["Failure"]));
    assert!(
        cases[0]["text"][0]
            .as_str()
            .unwrap()
            .contains("broken.yaml:16:7: spec.pools[0].volumesPerServer")
    );
    assert_eq!(cases[1]["name"], "Tenant default/minimal (document 2)");
    assert_eq!(cases[1]["result"], json!([]), "a valid Tenant passes");
    assert_eq!(cases[2]["result"], json!(["Error"]));
}

#[test]
fn sarif_validates_against_the_sarif_2_1_0_schema() {
    let dir = workdir();
    let (code, sarif) = validate(&["-o", "sarif", "broken.yaml"], None, dir.path());
    assert_eq!(code, 1);
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    let mut schema: Value = serde_json::from_str(
        &std::fs::read_to_string(checkers().join("sarif-schema-2.1.0.json")).unwrap(),
    )
    .unwrap();
    // The published schema's one `language` pattern has a lone `]`, a literal in older regex
    // dialects and an error in the strict one the validator checks patterns with: the same
    // pattern with that `]` escaped.
    fn escape_lone_bracket(v: &mut Value) -> usize {
        const PUBLISHED: &str = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$";
        match v {
            Value::String(p) if p == PUBLISHED => {
                *p = "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}\\]?$".to_owned();
                1
            }
            Value::Object(m) => m.values_mut().map(escape_lone_bracket).sum(),
            Value::Array(a) => a.iter_mut().map(escape_lone_bracket).sum(),
            _ => 0,
        }
    }
    assert_eq!(
        escape_lone_bracket(&mut schema),
        2,
        "the two `language` patterns of the schema as published"
    );
    let validator = jsonschema::validator_for(&schema).unwrap();
    let errors: Vec<String> = validator
        .iter_errors(&sarif)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["ruleId"], "FieldValueInvalid");
    assert_eq!(
        results[0]["locations"][0]["physicalLocation"]["region"],
        json!({"startLine": 16, "startColumn": 7})
    );
    assert_eq!(results[1]["ruleId"], "FieldValueNotSupported");
    // Every result's rule is declared.
    let rules: Vec<&str> = sarif["runs"][0]["tool"]["driver"]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(
        results
            .iter()
            .all(|r| rules.contains(&r["ruleId"].as_str().unwrap()))
    );
}
