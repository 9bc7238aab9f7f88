//! The size limits, checked on the raw object before it becomes a typed Tenant: every offending
//! field named, the same messages from JSON text (the webhook) and from a parsed document (the
//! CLI), and no real tenant anywhere near them.

use std::path::Path;

use hanzo_s3_operator::admission::limits::{self, MAX_POOLS};
use hanzo_testkit::{PoolBuilder, TenantBuilder};
use serde_json::{Value, json};

fn pool(i: usize) -> Value {
    PoolBuilder::named(format!("p{i}"), 4, 1).build()
}

fn tenant(pools: usize) -> Value {
    TenantBuilder::new("big")
        .configuration("env")
        .pools((0..pools).map(pool))
        .build()
}

/// The messages of both entry points, which must agree.
fn messages(value: &Value) -> Vec<String> {
    let from_value: Vec<String> = limits::check_value(value)
        .iter()
        .map(|v| v.message())
        .collect();
    let from_json: Vec<String> = limits::check_json(&value.to_string())
        .unwrap()
        .iter()
        .map(|v| v.message())
        .collect();
    assert_eq!(
        from_value, from_json,
        "the webhook and the CLI say the same"
    );
    from_value
}

#[test]
fn at_most_128_pools() {
    assert!(messages(&tenant(MAX_POOLS)).is_empty());
    assert_eq!(
        messages(&tenant(MAX_POOLS + 1)),
        ["spec.pools: Too many: 129: must have at most 128 items"]
    );
    assert_eq!(
        messages(&tenant(10_000)),
        [
            "spec.pools: Too many: 10000: must have at most 128 items",
            "<root>: Too many: 110008: a Tenant may hold at most 10000 list and map entries in all (a real one holds a few dozen)"
        ]
    );
}

#[test]
fn any_other_list_or_map_holds_at_most_1000_entries_and_every_one_is_named() {
    let mut t = tenant(2);
    t["metadata"]["labels"] = (0..1001)
        .map(|i| (format!("l{i}"), json!("v")))
        .collect::<serde_json::Map<_, _>>()
        .into();
    t["spec"]["pools"][1]["tolerations"] = json!(
        (0..1500)
            .map(|i| json!({"key": format!("k{i}")}))
            .collect::<Vec<_>>()
    );
    assert_eq!(
        messages(&t),
        [
            "metadata.labels: Too many: 1001: must have at most 1000 entries",
            "spec.pools[1].tolerations: Too many: 1500: must have at most 1000 items",
        ]
    );
}

#[test]
fn servers_and_volumes_of_a_pool_are_bounded() {
    let mut t = tenant(2);
    t["spec"]["pools"][0]["servers"] = json!(1001);
    t["spec"]["pools"][1]["volumesPerServer"] = json!(257);
    assert_eq!(
        messages(&t),
        [
            "spec.pools[0].servers: Invalid value: 1001: must be at most 1000 servers (pods) in a pool",
            "spec.pools[1].volumesPerServer: Invalid value: 257: must be at most 256 volumes per server",
        ]
    );
    t["spec"]["pools"][0]["servers"] = json!(1000);
    t["spec"]["pools"][1]["volumesPerServer"] = json!(256);
    assert!(messages(&t).is_empty());
}

#[test]
fn deep_nesting_is_refused_where_it_starts() {
    let mut deep = json!("leaf");
    for _ in 0..70 {
        deep = json!({"x": deep});
    }
    let mut t = tenant(1);
    t["spec"]["env"] = json!([{"name": "A", "value": "b", "extra": deep}]);
    // spec(1) env(2) [0](3) extra(4), then x at 5, 6, ...: the first value deeper than 64 is named.
    let path = format!("spec.env[0].extra{}", ".x".repeat(61));
    assert_eq!(
        messages(&t),
        [format!(
            "{path}: Invalid value: nested deeper than 64 levels"
        )]
    );
}

#[test]
fn reports_stop_at_twenty_and_count_the_rest() {
    let mut t = tenant(30);
    for i in 0..30 {
        t["spec"]["pools"][i]["servers"] = json!(5000);
    }
    let found = messages(&t);
    assert_eq!(found.len(), 21);
    assert_eq!(
        found[20],
        "<root>: Too many: 10 more field(s) over the size limits"
    );
}

#[test]
fn text_that_is_not_json_or_not_unicode_is_an_error() {
    assert!(limits::check_json("{not json").is_err());
    // A lone surrogate is valid JSON grammar but no Unicode text (found by fuzzing, in a field
    // the typed parse skips).
    let err = limits::check_json(r#"{"spec": {"unknownField": "\ud800x"}}"#).unwrap_err();
    assert!(err.to_string().contains("escape"), "{err}");
}

#[test]
fn no_example_tenant_comes_near_the_limits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seen = 0;
    for dir in ["examples", "tests/fixtures/go-examples"] {
        for entry in std::fs::read_dir(root.join(dir)).unwrap().flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
                continue;
            }
            let read = hanzo_s3_operator::manifest::parse(
                &path.display().to_string(),
                &std::fs::read_to_string(&path).unwrap(),
            );
            for doc in read.documents.iter().filter(|d| d.is_tenant()) {
                assert!(messages(&doc.value).is_empty(), "{}", path.display());
                seen += 1;
            }
        }
    }
    assert!(seen >= 15, "{seen} tenants checked");
}

#[test]
fn keys_written_with_escapes_are_the_same_keys() {
    // Keys are borrowed from the text when they can be; an escaped key must still be recognised.
    let text = tenant(MAX_POOLS + 1)
        .to_string()
        .replacen("\"spec\"", "\"\\u0073pec\"", 1)
        .replacen("\"servers\":4", "\"ser\\u0076ers\":1001", 1);
    let found: Vec<String> = limits::check_json(&text)
        .unwrap()
        .iter()
        .map(|v| v.message())
        .collect();
    assert_eq!(
        found,
        [
            "spec.pools[0].servers: Invalid value: 1001: must be at most 1000 servers (pods) in a pool",
            "spec.pools: Too many: 129: must have at most 128 items",
        ]
    );
}

#[test]
fn a_key_with_dots_on_the_path_is_written_as_a_map_key() {
    // The same path rendering as every other violation: `[key]`, never `.ex.ample`.
    let mut t = tenant(2);
    t["spec"]["example.com/extra"] = (0..1001)
        .map(|i| (format!("k{i}"), json!("v")))
        .collect::<serde_json::Map<_, _>>()
        .into();
    assert_eq!(
        messages(&t),
        ["spec[example.com/extra]: Too many: 1001: must have at most 1000 entries"]
    );
}
