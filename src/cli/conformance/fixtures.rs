//! The AdmissionReviews `conformance` sends: the Tenant fixtures built in, or a directory of
//! another webhook's own, plus the protocol negatives every webhook must refuse.

use std::path::Path;

use serde_json::Value;

macro_rules! builtin {
    ($name:literal) => {
        (
            $name,
            include_str!(concat!(
                "../../../webhooks/fixtures/",
                $name,
                ".request.json"
            )),
            include_str!(concat!(
                "../../../webhooks/fixtures/",
                $name,
                ".mutate.json"
            )),
            include_str!(concat!(
                "../../../webhooks/fixtures/",
                $name,
                ".validate.json"
            )),
        )
    };
}

const BUILTIN: [(&str, &str, &str, &str); 8] = [
    builtin!("create-valid"),
    builtin!("create-invalid"),
    builtin!("update-removing-a-pool"),
    builtin!("delete"),
    builtin!("dry-run-create"),
    builtin!("malformed"),
    builtin!("wrong-kind"),
    builtin!("no-uid"),
];

/// One request and what each endpoint is expected to answer.
pub struct Fixture {
    pub name: String,
    /// The bytes sent, exactly (a negative need not be JSON).
    pub request: Vec<u8>,
    /// The request parsed, for the uid and the object a patch applies to (Null when malformed).
    pub parsed: Value,
    /// The golden answer of each endpoint: a response AdmissionReview, `{"httpStatus": 400}`, or
    /// none (a fixture of another webhook without a golden: only the contract is judged).
    pub mutate: Option<Value>,
    pub validate: Option<Value>,
}

impl Fixture {
    pub fn golden(&self, endpoint: super::Endpoint) -> Option<&Value> {
        match endpoint {
            super::Endpoint::Mutate => self.mutate.as_ref(),
            super::Endpoint::Validate => self.validate.as_ref(),
        }
    }

    /// A review the apiserver never sends (malformed, wrong kind, no uid): refusing it is
    /// hardening, since no contract rule covers it.
    pub fn is_negative(&self) -> bool {
        [&self.mutate, &self.validate]
            .iter()
            .any(|g| g.as_ref().is_some_and(|g| g.get("httpStatus").is_some()))
    }

    /// Whether the reviewed object is a Tenant (so a patched object must still parse as one).
    pub fn is_tenant(&self) -> bool {
        let kind = &self.parsed["request"]["kind"];
        kind["group"] == "minio.min.io" && kind["kind"] == "Tenant"
    }
}

/// The Tenant fixtures of webhooks/fixtures, compiled in.
pub fn builtin() -> Vec<Fixture> {
    BUILTIN
        .iter()
        .map(|(name, request, mutate, validate)| Fixture {
            name: (*name).to_owned(),
            request: request.as_bytes().to_vec(),
            parsed: serde_json::from_str(request).unwrap_or(Value::Null),
            mutate: serde_json::from_str(mutate).ok(),
            validate: serde_json::from_str(validate).ok(),
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: not JSON: {source}")]
    Json {
        path: String,
        source: serde_json::Error,
    },
    #[error("{path}: not an admission.k8s.io/v1 AdmissionReview with a request.uid")]
    NotAReview { path: String },
    #[error("{dir}: no *.request.json files")]
    Empty { dir: String },
}

/// Reads `DIR/<case>.request.json` (each an AdmissionReview v1 with a uid), with the optional
/// goldens `<case>.mutate.json` and `<case>.validate.json` beside it, and appends the three
/// protocol negatives derived from the first case.
pub fn from_dir(dir: &Path) -> Result<Vec<Fixture>, FixtureError> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|source| FixtureError::Read {
            path: path.display().to_string(),
            source,
        })
    };
    let json = |path: &Path, bytes: &[u8]| {
        serde_json::from_slice::<Value>(bytes).map_err(|source| FixtureError::Json {
            path: path.display().to_string(),
            source,
        })
    };
    let entries = std::fs::read_dir(dir).map_err(|source| FixtureError::Read {
        path: dir.display().to_string(),
        source,
    })?;
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|f| f.strip_suffix(".request.json").map(str::to_owned))
        .collect();
    names.sort();
    let mut fixtures = Vec::new();
    for name in names {
        let path = dir.join(format!("{name}.request.json"));
        let request = read(&path)?;
        let parsed = json(&path, &request)?;
        if parsed["apiVersion"] != "admission.k8s.io/v1"
            || parsed["kind"] != "AdmissionReview"
            || parsed["request"]["uid"].as_str().is_none_or(str::is_empty)
        {
            return Err(FixtureError::NotAReview {
                path: path.display().to_string(),
            });
        }
        let golden = |endpoint: &str| -> Result<Option<Value>, FixtureError> {
            let path = dir.join(format!("{name}.{endpoint}.json"));
            if !path.exists() {
                return Ok(None);
            }
            let bytes = read(&path)?;
            json(&path, &bytes).map(Some)
        };
        fixtures.push(Fixture {
            mutate: golden("mutate")?,
            validate: golden("validate")?,
            name,
            request,
            parsed,
        });
    }
    let first = fixtures.first().ok_or_else(|| FixtureError::Empty {
        dir: dir.display().to_string(),
    })?;
    let negatives = negatives_of(first);
    fixtures.extend(negatives);
    Ok(fixtures)
}

/// The three reviews no apiserver sends, made from a real one: its bytes cut short, its envelope
/// at v1beta1, and its uid emptied.
fn negatives_of(base: &Fixture) -> Vec<Fixture> {
    let refuse = || Some(serde_json::json!({ "httpStatus": 400 }));
    let negative = |name: &str, request: Vec<u8>| Fixture {
        name: format!("{name} (from {})", base.name),
        parsed: serde_json::from_slice(&request).unwrap_or(Value::Null),
        request,
        mutate: refuse(),
        validate: refuse(),
    };
    let mut wrong_kind = base.parsed.clone();
    wrong_kind["apiVersion"] = "admission.k8s.io/v1beta1".into();
    let mut no_uid = base.parsed.clone();
    no_uid["request"]["uid"] = "".into();
    let to_bytes = |v: &Value| serde_json::to_vec(v).unwrap_or_default();
    vec![
        negative("malformed", base.request[..base.request.len() / 2].to_vec()),
        negative("wrong-kind", to_bytes(&wrong_kind)),
        negative("no-uid", to_bytes(&no_uid)),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_fixtures_parse_and_three_are_negatives() {
        let fixtures = builtin();
        assert_eq!(fixtures.len(), 8);
        assert!(
            fixtures
                .iter()
                .all(|f| f.mutate.is_some() && f.validate.is_some())
        );
        let negatives: Vec<&str> = fixtures
            .iter()
            .filter(|f| f.is_negative())
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(negatives, ["malformed", "wrong-kind", "no-uid"]);
        assert!(fixtures[0].is_tenant());
    }

    #[test]
    fn a_directory_gets_its_own_cases_and_derived_negatives() {
        let dir = tempfile::tempdir().unwrap();
        let review = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "ConfigMap"},
                        "operation": "CREATE", "object": {"apiVersion": "v1", "kind": "ConfigMap"}}
        });
        std::fs::write(dir.path().join("cm.request.json"), review.to_string()).unwrap();
        std::fs::write(
            dir.path().join("cm.validate.json"),
            r#"{"response": {"allowed": true}}"#,
        )
        .unwrap();
        let fixtures = from_dir(dir.path()).unwrap();
        let names: Vec<&str> = fixtures.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "cm",
                "malformed (from cm)",
                "wrong-kind (from cm)",
                "no-uid (from cm)"
            ]
        );
        assert!(fixtures[0].mutate.is_none() && fixtures[0].validate.is_some());
        assert!(!fixtures[0].is_tenant());
        assert!(serde_json::from_slice::<Value>(&fixtures[1].request).is_err());
        assert_eq!(fixtures[2].parsed["apiVersion"], "admission.k8s.io/v1beta1");
        assert_eq!(fixtures[3].parsed["request"]["uid"], "");
        assert!(fixtures[1..].iter().all(Fixture::is_negative));
    }

    #[test]
    fn a_bad_directory_is_named_in_the_error() {
        let dir = tempfile::tempdir().unwrap();
        assert!(matches!(
            from_dir(dir.path()),
            Err(FixtureError::Empty { .. })
        ));
        std::fs::write(dir.path().join("x.request.json"), "{").unwrap();
        let err = from_dir(dir.path()).err().unwrap().to_string();
        assert!(err.contains("x.request.json: not JSON"), "{err}");
        std::fs::write(dir.path().join("x.request.json"), r#"{"kind": "Pod"}"#).unwrap();
        let err = from_dir(dir.path()).err().unwrap().to_string();
        assert!(
            err.contains("not an admission.k8s.io/v1 AdmissionReview"),
            "{err}"
        );
    }
}
