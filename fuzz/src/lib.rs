//! The invariants the fuzz targets check, beyond "no panic": each target feeds its input here.

use base64::Engine;
use hanzo_s3_operator::admission::{self, DefaultsConfig};
use hanzo_s3_operator::manifest::source_map::{Segment, segments};
use hanzo_s3_operator::webhook::review::{self, NoCluster, Webhook};
use serde_json::Value;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime")
    })
}

/// Whether the object has the parent of `field` (a violation's path): a violation may name a
/// missing field, never one under a missing parent.
fn parent_exists(object: &Value, field: &str) -> bool {
    let mut path = segments(field);
    path.pop();
    let mut at = object;
    for segment in &path {
        let next = match (segment, at) {
            (Segment::Key(k), Value::Object(m)) => m.get(k),
            (Segment::Index(i), Value::Array(a)) => a.get(*i),
            // Map keys written `[key]` (labels): the key of a map.
            (Segment::Index(i), Value::Object(m)) => m.get(&i.to_string()),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return false,
        }
    }
    true
}

/// The object as the mutating webhook's patch leaves it (the object itself when it does not parse),
/// judged in the request's namespace when it names none, as the webhook judges it.
fn defaulted(object: &Value, namespace: &Value, config: &DefaultsConfig) -> Value {
    let mut patched = object.clone();
    if let Ok(mut tenant) = admission::parse_tenant(object) {
        if tenant
            .metadata
            .namespace
            .as_deref()
            .unwrap_or("")
            .is_empty()
        {
            tenant.metadata.namespace = namespace.as_str().map(str::to_owned);
        }
        if let Ok((patch, _)) = admission::patch::defaulting_patch(object, &tenant, config) {
            json_patch::patch(&mut patched, &patch).expect("the defaulting patch applies");
        }
    }
    patched
}

/// An AdmissionReview answer from the real handler: a well-formed response with the request's uid,
/// a patch only from /mutate and only one that applies and leaves nothing more to default, and
/// denials that name fields under parents that exist (but for required fields, which may be missing
/// with their parents).
pub fn review(webhook: Webhook, data: &[u8]) {
    let config = DefaultsConfig::default();
    let answer = runtime().block_on(review::answer(webhook, data, &config, &NoCluster));
    let (response, _outcome) = match answer {
        Ok(answered) => answered,
        // HTTP 400: the input was not a review we can answer. Nothing else to check, but for the
        // one 400 that would mean the handler failed on an object it had admitted to parse.
        Err(review::BadReview(why)) => {
            assert!(
                !why.starts_with("cannot default the object"),
                "a Tenant that parsed could not be defaulted: {why}"
            );
            return;
        }
    };
    assert_eq!(response["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(response["kind"], "AdmissionReview");
    let Ok(request) = serde_json::from_slice::<Value>(data) else {
        // Valid JSON grammar that a JSON tree cannot hold: a lone surrogate escape in a part of
        // the envelope the handler skips (found by fuzzing; Go's decoder accepts it too). In the
        // object it is refused (limits::check_json); here only the answer's shape is checked.
        assert!(
            response["response"]["uid"]
                .as_str()
                .is_some_and(|u| !u.is_empty())
        );
        return;
    };
    let uid = &request["request"]["uid"];
    assert!(
        uid.as_str().is_some_and(|u| !u.is_empty()),
        "answered a review without uid"
    );
    assert_eq!(
        &response["response"]["uid"], uid,
        "the answer echoes the uid"
    );
    let allowed = response["response"]["allowed"]
        .as_bool()
        .expect("allowed is a boolean");
    let object = &request["request"]["object"];
    if let Some(patch) = response["response"].get("patch") {
        assert_eq!(webhook, Webhook::Mutate, "only /mutate patches");
        assert!(allowed);
        assert_eq!(response["response"]["patchType"], "JSONPatch");
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch.as_str().expect("patch is a string"))
            .expect("patch is base64");
        let patch: json_patch::Patch =
            serde_json::from_slice(&bytes).expect("patch is a JSON Patch");
        let mut patched = object.clone();
        json_patch::patch(&mut patched, &patch).expect("the patch applies to the object as sent");
        // Defaulting what the patch produced has nothing left to add.
        if let Ok(tenant) = admission::parse_tenant(&patched) {
            let (again, _) = admission::patch::defaulting_patch(&patched, &tenant, &config)
                .expect("defaulting a defaulted Tenant");
            assert!(
                again.0.is_empty(),
                "defaulting twice patched again: {again:?}"
            );
        }
    }
    if !allowed {
        let status = &response["response"]["status"];
        let code = status["code"].as_u64().expect("a denial has a code");
        assert!(code == 403 || code == 422, "denial code {code}");
        assert!(status["message"].as_str().is_some_and(|m| !m.is_empty()));
        for cause in status["details"]["causes"].as_array().into_iter().flatten() {
            let field = cause["field"].as_str().unwrap_or("");
            // A required field may be missing with its parents (as the apiserver reports
            // `spec.resources[storage]: Required value`); a value judged must be there.
            let required = cause["reason"] == "FieldValueRequired";
            if !required && field != "<root>" && field.starts_with(['s', 'm']) {
                // /validate judges the Tenant as the mutating webhook leaves it (in a cluster it
                // runs first), so a defaulted field such as the certificate's common name may be named.
                assert!(
                    parent_exists(object, field)
                        || parent_exists(
                            &defaulted(object, &request["request"]["namespace"], &config),
                            field
                        ),
                    "a denial names {field} under a parent the object lacks, defaulted or not"
                );
            }
        }
    }
}

/// Any text as a manifest: documents read or an error with a line, and every Tenant judged with
/// its violations located within the text.
pub fn manifest(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let read = hanzo_s3_operator::manifest::parse("fuzz", text);
    // YAML breaks lines at CR LF, LF and a lone CR (which `str::lines` does not; found by fuzzing).
    let lines = text
        .replace("\r\n", "\n")
        .split(['\n', '\r'])
        .count()
        .max(1);
    for doc in read.documents.iter().filter(|d| d.is_tenant()) {
        let over = admission::limits::check_value(&doc.value);
        let violations = if over.is_empty() {
            match admission::parse_tenant(&doc.value) {
                Ok(t) => admission::review(None, &t, &DefaultsConfig::default()).violations,
                Err(v) => vec![v],
            }
        } else {
            over
        };
        for v in violations {
            if let Some(p) = doc.position(&v.field) {
                assert!(
                    p.line >= 1 && p.line <= lines + 1,
                    "line {} of {lines}",
                    p.line
                );
                assert!(p.column >= 1);
            }
        }
    }
}

/// Quantities compare consistently: reflexive, antisymmetric, and zero is neither sign.
pub fn quantity(data: &[u8]) {
    use hanzo_s3_operator::api::quantity::Quantity;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (a, b) = text.split_once('|').unwrap_or((text, "0"));
    let (Ok(qa), Ok(qb)) = (Quantity::parse(a), Quantity::parse(b)) else {
        return;
    };
    assert_eq!(qa.cmp(&qa), std::cmp::Ordering::Equal);
    assert_eq!(qa.cmp(&qb), qb.cmp(&qa).reverse());
    assert!(!(qa.is_positive() && qa.is_negative()));
    assert_eq!(Quantity::parse(a), Ok(qa), "parsing is deterministic");
}

/// For any Tenant that parses: the defaulting patch applies, its result is the defaulted Tenant,
/// judges the same, and defaulting it again patches nothing.
pub fn defaulting(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        one_pass_answers_as_two(text);
    }
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    if !admission::limits::check_value(&value).is_empty() {
        return;
    }
    let Ok(tenant) = admission::parse_tenant(&value) else {
        return;
    };
    let config = DefaultsConfig::default();
    let (patch, defaulted) = admission::patch::defaulting_patch(&value, &tenant, &config)
        .expect("a patch for a Tenant that parses");
    let mut patched = value.clone();
    json_patch::patch(&mut patched, &patch).expect("the patch applies");
    let reparsed = admission::parse_tenant(&patched).expect("the patched object parses");
    assert_eq!(
        serde_json::to_value(&reparsed).expect("serializes"),
        serde_json::to_value(&defaulted).expect("serializes"),
        "the patch yields the defaulted Tenant"
    );
    assert_eq!(
        admission::review(None, &reparsed, &config),
        admission::review(None, &tenant, &config),
        "the patched object is judged as the Tenant is"
    );
    let (again, _) =
        admission::patch::defaulting_patch(&patched, &reparsed, &config).expect("again");
    assert!(
        again.0.is_empty(),
        "defaulting twice patched again: {again:?}"
    );
}

/// The webhook's one-pass parse (limits checked inside the typed parse) answers as the separate
/// walk followed by the typed parse do: the same Tenant, or both refuse.
pub fn one_pass_answers_as_two(text: &str) {
    let two = admission::parse_tenant_two_passes(text);
    match (admission::parse_tenant_checked(text), two) {
        (Ok(one), Ok(two)) => assert_eq!(one, two, "one pass and two disagree on {text:?}"),
        (Err(_), Err(_)) => {}
        (one, two) => panic!("one pass {one:?}, two passes {two:?}, on {text:?}"),
    }
}
