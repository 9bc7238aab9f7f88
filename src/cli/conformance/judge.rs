//! Judging one answer: which rule it meets or breaks, and of which class.

use base64::Engine;
use serde_json::Value;

use super::Endpoint;
use super::fixtures::Fixture;

/// What a check holds a webhook to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Rule {
    /// What the apiserver relies on for every review it sends: an HTTP 200 AdmissionReview v1
    /// echoing the request's uid, `allowed`, and from a mutating webhook only, a base64 JSONPatch
    /// that applies. Breaking one fails the API request (or, with failurePolicy Ignore, skips
    /// the webhook).
    Contract,
    /// The fixture's expected answer: allowed or denied, the denial's status code, and a patched
    /// object still of its kind. Only judged where the fixture has a golden answer.
    Verdict,
    /// What a robust server does beyond the contract: refuse reviews the apiserver never sends,
    /// bound request bodies, give up a stalled body at `?timeout=`, say why it denies, keep
    /// connections alive, speak HTTP/2 and both TLS 1.2 and 1.3.
    Hardening,
}

impl Rule {
    pub fn label(self) -> &'static str {
        match self {
            Rule::Contract => "contract",
            Rule::Verdict => "verdict",
            Rule::Hardening => "hardening",
        }
    }
}

/// A broken rule and why.
pub struct Broken {
    pub rule: Rule,
    pub why: String,
}

pub fn broken(rule: Rule, why: impl Into<String>) -> Broken {
    Broken {
        rule,
        why: why.into(),
    }
}

/// The rules a check of `fixture` at `endpoint` exercises: a negative only hardening; any other
/// the contract, and its verdict when the fixture has a golden answer.
pub fn rules_of(fixture: &Fixture, endpoint: Endpoint) -> Vec<Rule> {
    if fixture.is_negative() {
        vec![Rule::Hardening]
    } else if fixture.golden(endpoint).is_some() {
        vec![Rule::Contract, Rule::Verdict]
    } else {
        vec![Rule::Contract]
    }
}

/// An in-band refusal: an AdmissionReview answer with `allowed: false` and this status code (how
/// controller-runtime answers what ours refuses with an HTTP status).
pub fn in_band_code(review: &Value) -> Option<i64> {
    let response = &review["response"];
    (response["allowed"] == false)
        .then(|| response["status"]["code"].as_i64())
        .flatten()
}

/// Judges the answer to a review the apiserver never sends. An HTTP 4xx or an in-band denial
/// with code 400 refuses it. A v1beta1 review may also be answered in v1beta1 with its uid echoed:
/// that older protocol is legitimate where the webhook configuration lists it. Judging the object
/// of any other one (allowing it, or denying it on its merits) is the finding.
fn judge_negative(fixture: &Fixture, status: u16, body: &[u8]) -> Result<String, Broken> {
    let review: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let asked = &fixture.parsed;
    let old_protocol = asked["apiVersion"] == "admission.k8s.io/v1beta1";
    if status == 200
        && old_protocol
        && review["apiVersion"] == asked["apiVersion"]
        && review["response"]["uid"] == asked["request"]["uid"]
    {
        return Ok("answered in v1beta1, uid echoed (the older protocol)".into());
    }
    match (status, in_band_code(&review)) {
        (400, _) => Ok("400".into()),
        // Another client error refuses it as well (Kyverno answers 417 to a body that is not JSON).
        (401..=499, _) => Ok(format!("refused with HTTP {status}")),
        (200, Some(400)) => Ok("refused in-band: HTTP 200, allowed=false, status.code 400".into()),
        (200, _) if review["response"].is_object() => Err(broken(
            Rule::Hardening,
            format!(
                "judged it instead of refusing it: HTTP 200, allowed={}, status.code {}, uid {}",
                review["response"]["allowed"],
                review["response"]["status"]["code"],
                review["response"]["uid"]
            ),
        )),
        (status, _) => Err(broken(
            Rule::Hardening,
            format!("expected HTTP 400, got {status}"),
        )),
    }
}

/// Judges one answer to `fixture` at `endpoint`. Contract rules are checked first, then the
/// verdict, then hardening, so the first rule broken is the most serious one.
pub fn judge_answer(
    endpoint: Endpoint,
    fixture: &Fixture,
    status: u16,
    body: &[u8],
) -> Result<String, Broken> {
    if fixture.is_negative() {
        return judge_negative(fixture, status, body);
    }
    let review = judge_envelope(status, body)?;
    let response = &review["response"];
    let (allowed, patch) = judge_response(endpoint, fixture, response)?;
    if let Some(golden) = fixture.golden(endpoint) {
        judge_verdict(golden, response, allowed)?;
    }
    if !allowed {
        judge_denial(response)?;
    }
    Ok(match (patch, allowed) {
        (Some(ops), _) => format!("allowed, {ops} patch op(s) apply"),
        (None, true) => "allowed".into(),
        (None, false) => format!("denied {}", response["status"]["code"]),
    })
}

/// The contract's envelope: an HTTP 200 whose body is an AdmissionReview v1.
fn judge_envelope(status: u16, body: &[u8]) -> Result<Value, Broken> {
    if status != 200 {
        return Err(broken(
            Rule::Contract,
            format!(
                "expected HTTP 200, got {status}: {}",
                String::from_utf8_lossy(body)
            ),
        ));
    }
    let review: Value = serde_json::from_slice(body)
        .map_err(|e| broken(Rule::Contract, format!("response is not JSON: {e}")))?;
    if review["apiVersion"] != "admission.k8s.io/v1" || review["kind"] != "AdmissionReview" {
        return Err(broken(
            Rule::Contract,
            format!("wrong GVK: {} {}", review["apiVersion"], review["kind"]),
        ));
    }
    Ok(review)
}

/// The contract's response: the request's uid echoed, `allowed`, and a patch only from a
/// mutating webhook (see `check_patch`). Returns `allowed` and the patch's number of operations.
fn judge_response(
    endpoint: Endpoint,
    fixture: &Fixture,
    response: &Value,
) -> Result<(bool, Option<usize>), Broken> {
    let request = &fixture.parsed;
    if response["uid"] != request["request"]["uid"] {
        return Err(broken(
            Rule::Contract,
            format!(
                "uid {} does not echo {}",
                response["uid"], request["request"]["uid"]
            ),
        ));
    }
    let allowed = response["allowed"]
        .as_bool()
        .ok_or_else(|| broken(Rule::Contract, "no allowed"))?;
    let patch = match (endpoint, response.get("patch")) {
        (Endpoint::Validate, Some(_)) => {
            return Err(broken(
                Rule::Contract,
                "the validating webhook returned a patch",
            ));
        }
        (Endpoint::Mutate, Some(patch)) => Some(check_patch(fixture, response, patch)?),
        _ => None,
    };
    Ok((allowed, patch))
}

/// The fixture's golden answer: allowed or denied, and a denial's status code.
fn judge_verdict(golden: &Value, response: &Value, allowed: bool) -> Result<(), Broken> {
    let expected = golden["response"]["allowed"].as_bool();
    if expected.is_some_and(|e| e != allowed) {
        return Err(broken(
            Rule::Verdict,
            format!(
                "allowed={allowed}, expected {}{}",
                golden["response"]["allowed"],
                why_denied(response)
            ),
        ));
    }
    let code = response["status"]["code"].as_i64().unwrap_or(0);
    let expected = golden["response"]["status"]["code"].as_i64();
    if !allowed && expected.is_some_and(|e| e != code) {
        let got = if code == 0 {
            // The apiserver turns a missing (or sub-400) code into 400.
            "denied without a status.code (the apiserver answers 400)".to_owned()
        } else {
            format!("denial status.code {code}")
        };
        return Err(broken(
            Rule::Verdict,
            format!("{got}, expected {}", expected.unwrap_or_default()),
        ));
    }
    Ok(())
}

/// A surprising denial says why, in the server's words (cut short); empty without a message.
fn why_denied(response: &Value) -> String {
    response["status"]["message"]
        .as_str()
        .map(|m| format!(": {}", m.split_whitespace().collect::<Vec<_>>().join(" ")))
        .unwrap_or_default()
        .chars()
        .take(240)
        .collect()
}

/// What the user is told of a denial: a 4xx or 5xx code and a message.
fn judge_denial(response: &Value) -> Result<(), Broken> {
    let code = response["status"]["code"].as_i64().unwrap_or(0);
    // The apiserver turns a missing or sub-400 code into 400 (or 403): the request still
    // fails, but the user is told less than the webhook knew.
    if !(400..600).contains(&code) {
        return Err(broken(
            Rule::Hardening,
            format!("denial status.code {code}, not a 4xx or 5xx"),
        ));
    }
    if response["status"]["message"]
        .as_str()
        .is_none_or(str::is_empty)
    {
        return Err(broken(Rule::Hardening, "a denial without a status.message"));
    }
    Ok(())
}

/// A mutating answer's patch: a base64 JSONPatch that applies to the request's object (and, for
/// a Tenant, leaves a Tenant). Returns the number of operations.
fn check_patch(fixture: &Fixture, response: &Value, patch: &Value) -> Result<usize, Broken> {
    if response["patchType"] != "JSONPatch" {
        return Err(broken(
            Rule::Contract,
            format!("patchType {}", response["patchType"]),
        ));
    }
    let raw = base64::engine::general_purpose::STANDARD
        .decode(patch.as_str().unwrap_or_default())
        .map_err(|e| broken(Rule::Contract, format!("patch is not base64: {e}")))?;
    let ops: json_patch::Patch = serde_json::from_slice(&raw)
        .map_err(|e| broken(Rule::Contract, format!("patch is not a JSONPatch: {e}")))?;
    let mut object = fixture.parsed["request"]["object"].clone();
    json_patch::patch(&mut object, &ops)
        .map_err(|e| broken(Rule::Contract, format!("patch does not apply: {e}")))?;
    if fixture.is_tenant() {
        crate::admission::parse_tenant(&object).map_err(|v| {
            broken(
                Rule::Verdict,
                format!("patched object is no Tenant: {}", v.message()),
            )
        })?;
    }
    Ok(ops.0.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::conformance::fixtures;

    fn answer(response: Value) -> Vec<u8> {
        serde_json::json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": response})
            .to_string()
            .into_bytes()
    }

    fn fixture(name: &str) -> fixtures::Fixture {
        fixtures::builtin()
            .into_iter()
            .find(|f| f.name == name)
            .unwrap()
    }

    #[test]
    fn an_empty_uid_breaks_the_contract() {
        let f = fixture("create-valid");
        let err = judge_answer(
            Endpoint::Validate,
            &f,
            200,
            &answer(serde_json::json!({"uid": "", "allowed": true})),
        )
        .err()
        .unwrap();
        assert_eq!(err.rule, Rule::Contract);
        assert!(err.why.contains("does not echo"), "{}", err.why);
    }

    #[test]
    fn a_wrong_verdict_is_a_verdict_failure_not_a_contract_one() {
        let f = fixture("update-removing-a-pool");
        let uid = f.parsed["request"]["uid"].clone();
        let err = judge_answer(
            Endpoint::Validate,
            &f,
            200,
            &answer(serde_json::json!({"uid": uid, "allowed": true})),
        )
        .err()
        .unwrap();
        assert_eq!(err.rule, Rule::Verdict);
    }

    #[test]
    fn negatives_accept_a_400_either_way_and_fail_hardening_otherwise() {
        let f = fixture("malformed");
        assert!(judge_negative(&f, 400, b"").is_ok());
        assert_eq!(
            judge_negative(&f, 417, b"").ok().unwrap(),
            "refused with HTTP 417"
        );
        assert!(judge_negative(&f, 500, b"").is_err());
        let in_band =
            answer(serde_json::json!({"uid": "", "allowed": false, "status": {"code": 400}}));
        assert!(judge_answer(Endpoint::Validate, &f, 200, &in_band).is_ok());
        let judged =
            answer(serde_json::json!({"uid": "", "allowed": false, "status": {"code": 422}}));
        let err = judge_answer(Endpoint::Validate, &f, 200, &judged)
            .err()
            .unwrap();
        assert_eq!(err.rule, Rule::Hardening);
        assert!(err.why.contains("judged it"), "{}", err.why);
        assert_eq!(rules_of(&f, Endpoint::Validate), [Rule::Hardening]);
    }

    #[test]
    fn a_v1beta1_review_may_be_answered_in_v1beta1_but_a_uidless_one_not_judged() {
        let f = fixture("wrong-kind");
        let old = serde_json::json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview",
            "response": {"uid": f.parsed["request"]["uid"], "allowed": true}});
        assert!(judge_negative(&f, 200, old.to_string().as_bytes()).is_ok());
        let f = fixture("no-uid");
        let judged = answer(serde_json::json!({"uid": "", "allowed": true}));
        let err = judge_negative(&f, 200, &judged).err().unwrap();
        assert!(err.why.contains("allowed=true"), "{}", err.why);
    }

    #[test]
    fn a_denial_without_a_message_fails_hardening() {
        let f = fixture("create-invalid");
        let uid = f.parsed["request"]["uid"].clone();
        let err = judge_answer(
            Endpoint::Validate,
            &f,
            200,
            &answer(serde_json::json!({"uid": uid, "allowed": false, "status": {"code": 422}})),
        )
        .err()
        .unwrap();
        assert_eq!(err.rule, Rule::Hardening);
    }
}
