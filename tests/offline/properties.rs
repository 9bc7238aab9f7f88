//! Properties over arbitrary input: no JSON makes parsing, defaulting, validation or patching panic;
//! defaulting is idempotent; the patch always applies and yields the defaulted Tenant.

use hanzo_s3_operator::admission::patch::{defaulting_patch, defaulting_patch_of_typed};
use hanzo_s3_operator::admission::{DefaultsConfig, defaulted, parse_tenant, review};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Values of every JSON type, small, with strings that look like names, quantities and junk.
fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        (-3i64..70).prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "",
            "ss-0",
            "Pool_A",
            "1Gi",
            "0",
            "-1",
            "ten",
            "Parallel",
            "parallel",
            "ReadWriteOnce",
            "a.b.c",
            "*.x.y",
            "ftp://x",
            "S3_ARGS",
            "/export",
            "../x",
        ])
        .prop_map(|s| json!(s)),
        "[a-z0-9-]{0,70}".prop_map(Value::String),
    ]
}

fn json_value() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn name_like() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec!["", "ss-0", "p1", "Pool_A", "a.b", "-x", "minio", "data0"]).prop_map(|s| json!(s)),
        2 => "[a-z0-9-]{0,70}".prop_map(Value::String),
        1 => scalar(),
    ]
}

fn quantity_like() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => prop::sample::select(vec!["1Gi", "0", "-1Gi", "10Ti", "ten", "1e3", "500m", ""]).prop_map(|s| json!(s)),
        2 => (-2i64..5).prop_map(|n| json!(n)),
        1 => scalar(),
    ]
}

fn pool() -> impl Strategy<Value = Value> {
    (
        prop::option::of(name_like()),
        prop::option::of(-2i32..20),
        prop::option::of(-2i32..20),
        prop::option::weighted(0.9, quantity_like()),
        prop::option::weighted(0.3, (quantity_like(), quantity_like())),
    )
        .prop_map(|(name, servers, vps, storage, resources)| {
            let mut p = json!({});
            if let Some(n) = name { p["name"] = n; }
            if let Some(s) = servers { p["servers"] = json!(s); }
            if let Some(v) = vps { p["volumesPerServer"] = json!(v); }
            if let Some(q) = storage {
                p["volumeClaimTemplate"] = json!({"spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": q}}}});
            }
            if let Some((req, lim)) = resources {
                p["resources"] = json!({"requests": {"memory": req}, "limits": {"memory": lim}});
            }
            p
        })
}

/// One optional spec field with a value of its own type most of the time, junk sometimes.
fn spec_field() -> impl Strategy<Value = (&'static str, Value)> {
    let string_field = prop::sample::select(vec![
        "image",
        "podManagementPolicy",
        "imagePullPolicy",
        "mountPath",
        "subPath",
        "serviceAccountName",
    ]);
    prop_oneof![
        4 => (string_field, name_like()),
        1 => any::<bool>().prop_map(|b| ("requestAutoCert", json!(b))),
        1 => name_like().prop_map(|n| ("configuration", json!({"name": n}))),
        1 => prop::collection::vec((name_like(), name_like()), 0..3)
            .prop_map(|v| ("env", json!(v.into_iter().map(|(n, val)| json!({"name": n, "value": val})).collect::<Vec<_>>()))),
        1 => prop::collection::vec(name_like(), 0..3)
            .prop_map(|d| ("features", json!({"domains": {"minio": d}}))),
        1 => (name_like(), prop::option::of(-1i32..4))
            .prop_map(|(n, r)| ("kes", json!({"kesSecret": {"name": n}, "replicas": r}))),
        1 => prop::collection::vec(name_like(), 0..3)
            .prop_map(|b| ("buckets", json!(b.into_iter().map(|n| json!({"name": n})).collect::<Vec<_>>()))),
        1 => prop::collection::vec(name_like(), 0..2)
            .prop_map(|d| ("certConfig", json!({"dnsNames": d}))),
        1 => json_value().prop_map(|j| ("sideCars", j)),
    ]
}

/// Tenant-shaped documents: the right fields with arbitrary values of mostly the right types.
fn tenant_doc() -> impl Strategy<Value = Value> {
    (
        prop::option::of("[a-z][a-z0-9-]{0,60}"),
        prop::collection::vec(pool(), 0..4),
        prop::collection::vec(spec_field(), 0..5),
    )
        .prop_map(|(name, pools, extra)| {
            let mut spec = json!({"pools": pools, "configuration": {"name": "c"}});
            for (k, v) in extra {
                spec[k] = v;
            }
            json!({"apiVersion": "minio.min.io/v2", "kind": "Tenant",
                   "metadata": {"name": name, "namespace": "ns"}, "spec": spec})
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn nothing_panics_on_arbitrary_json(doc in json_value()) {
        if let Ok(t) = parse_tenant(&doc) {
            let _ = review(None, &t, &DefaultsConfig::default());
            let _ = defaulting_patch(&doc, &t, &DefaultsConfig::default());
        }
    }

    /// The webhook's one-pass parse refuses what the separate walk and typed parse refuse, and
    /// builds the same Tenant from the rest: arbitrary JSON, Tenants, and Tenants written with a key
    /// twice or over a limit.
    #[test]
    fn the_one_pass_parse_answers_as_the_two_passes(
        any in json_value(),
        doc in tenant_doc(),
        twice in any::<bool>(),
        servers in prop::sample::select(vec![4, 1_000, 1_001]),
    ) {
        one_pass_answers_as_two(&any.to_string());
        let mut doc = doc;
        if let Some(pool) = doc.pointer_mut("/spec/pools/0") {
            pool["servers"] = json!(servers);
        }
        let text = doc.to_string();
        one_pass_answers_as_two(&text);
        if twice {
            // The same key written twice, in the spec and in an unknown field's object.
            let text = text.replacen("\"spec\":{", "\"spec\":{\"image\":\"a\",\"x\":{\"k\":1,\"k\":2},", 1);
            one_pass_answers_as_two(&text);
        }
    }

    #[test]
    fn defaulting_is_idempotent_and_the_patch_yields_the_defaulted_tenant(doc in tenant_doc()) {
        let config = DefaultsConfig::default();
        if let Ok(t) = parse_tenant(&doc) {
            let once = defaulted(&t, &config);
            prop_assert_eq!(&defaulted(&once, &config), &once);
            let (patch, expected) = defaulting_patch(&doc, &t, &config).unwrap();
            let mut patched = doc.clone();
            json_patch::patch(&mut patched, &patch).unwrap();
            prop_assert_eq!(&parse_tenant(&patched).unwrap(), &expected);
            // The webhook's path (the typed Tenant only, no tree of the object) answers the same
            // patch, and that patch changes only the fields it names.
            let (from_typed, after) = defaulting_patch_of_typed(t.clone(), &config).unwrap();
            prop_assert_eq!(&from_typed, &patch);
            prop_assert_eq!(after, expected);
            let written: Vec<String> = patch.0.iter().map(|op| op.path().to_string()).collect();
            let mut untouched = Vec::new();
            leaves(&doc, String::new(), &mut untouched);
            for pointer in untouched {
                // Under a written field, or an empty object a field was written into.
                let related = |w: &String| {
                    pointer == *w || pointer.starts_with(&format!("{w}/")) || w.starts_with(&format!("{pointer}/"))
                };
                if written.iter().any(related) {
                    continue;
                }
                prop_assert_eq!(patched.pointer(&pointer), doc.pointer(&pointer), "{} changed", pointer);
            }
            // Validation of the old and the new form never panics, with or without `old`.
            let _ = review(Some(&t), &once, &config);
        }
    }
}

fn one_pass_answers_as_two(text: &str) {
    use hanzo_s3_operator::admission::{parse_tenant_checked, parse_tenant_two_passes};
    match (parse_tenant_checked(text), parse_tenant_two_passes(text)) {
        (Ok(one), Ok(two)) => assert_eq!(one, two, "one pass and two disagree on {text}"),
        (Err(_), Err(_)) => {}
        (one, two) => panic!("one pass {one:?}, two passes {two:?}, on {text}"),
    }
}

/// The JSON pointer of every scalar and empty container in `value`.
fn leaves(value: &Value, at: String, out: &mut Vec<String>) {
    let escape = |k: &str| k.replace('~', "~0").replace('/', "~1");
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                leaves(v, format!("{at}/{}", escape(k)), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, v) in items.iter().enumerate() {
                leaves(v, format!("{at}/{i}"), out);
            }
        }
        _ => out.push(at),
    }
}

/// Guards the property above against passing vacuously: enough generated documents must parse.
#[test]
fn most_generated_tenant_documents_parse() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = tenant_doc();
    let total = 400;
    let parsed = (0..total)
        .filter(|_| {
            let doc = strategy.new_tree(&mut runner).unwrap().current();
            parse_tenant(&doc).is_ok()
        })
        .count();
    assert!(
        parsed * 2 >= total,
        "only {parsed} of {total} generated documents parse"
    );
}
