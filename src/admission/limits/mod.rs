//! Size limits, checked on the object as it arrives, before it is parsed into a typed Tenant.
//!
//! A Tenant is small: a handful of pools, a few dozen list entries. Parsing, defaulting and diffing
//! cost memory in proportion to what the object holds, and one Tenant of 10,000 pools took 176 MiB
//! to judge. So the webhook checks these limits as it parses (the typed parse goes through the
//! walk, [`typed`], and stops at the first limit crossed), and refuses an object over them with
//! every offending field named (the walk alone, once more, for the message); nothing bigger is
//! ever built. The limits are far above any real tenant (and documented in docs/operations.md):
//!
//! | what | at most |
//! |---|---|
//! | `spec.pools` | [`MAX_POOLS`] |
//! | entries of any other list or map (env, tolerations, labels, ...) | [`MAX_ENTRIES`] |
//! | list entries and map entries in the whole object | [`MAX_TOTAL_ENTRIES`] |
//! | nesting depth | [`MAX_DEPTH`] |
//! | `servers` of a pool (pods of one StatefulSet) | [`MAX_SERVERS`] |
//! | `volumesPerServer` of a pool (claims per pod) | [`MAX_VOLUMES_PER_SERVER`] |
//!
//! It also refuses a list where the schema has an object ([`shape`]): a typed parse would take it
//! for an empty one.
//!
//! The same walk refuses a key written twice in one object: JSON readers disagree on which copy
//! counts (the apiserver's decoder keeps the last, a typed parse may see the first), so judging
//! such an object could approve what the cluster would not store. The apiserver never sends one;
//! a direct caller learns which key to write once.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::shape::{self, Step};
use super::violation::{Reason, Violation, push_index, push_key};

mod typed;
pub(crate) use typed::parse as parse_within;

pub const MAX_POOLS: usize = 128;
pub const MAX_ENTRIES: usize = 1_000;
pub const MAX_TOTAL_ENTRIES: usize = 10_000;
pub const MAX_DEPTH: usize = 64;
pub const MAX_SERVERS: i64 = 1_000;
pub const MAX_VOLUMES_PER_SERVER: i64 = 256;
/// Reported violations stop here (the rest are counted in one more line).
const MAX_REPORTED: usize = 20;

/// Keys are borrowed from the input where it allows (no escapes): a Tenant has hundreds of keys,
/// and copying each was a tenth of the walk's time.
#[derive(Clone, Debug)]
enum Segment<'de> {
    Key(Cow<'de, str>),
    Index(usize),
}

struct Walk<'de> {
    path: Vec<Segment<'de>>,
    /// The keys of every map being walked, innermost last: each map owns the tail from where it
    /// started, so one buffer serves the whole walk.
    keys: Vec<Cow<'de, str>>,
    total: usize,
    violations: Vec<Violation>,
    suppressed: usize,
}

impl Walk<'_> {
    fn new() -> Self {
        Walk {
            path: Vec::new(),
            keys: Vec::new(),
            total: 0,
            violations: Vec::new(),
            suppressed: 0,
        }
    }

    fn field(&self) -> String {
        let mut out = String::new();
        for segment in &self.path {
            match segment {
                Segment::Key(k) => push_key(&mut out, k),
                Segment::Index(i) => push_index(&mut out, *i),
            }
        }
        if out.is_empty() {
            "<root>".to_owned()
        } else {
            out
        }
    }

    fn report(&mut self, violation: Violation) {
        if self.violations.len() < MAX_REPORTED {
            self.violations.push(violation);
        } else {
            self.suppressed += 1;
        }
    }

    fn is(&self, path: &[&str]) -> bool {
        self.path.len() == path.len()
            && self
                .path
                .iter()
                .zip(path)
                .all(|(s, p)| matches!(s, Segment::Key(k) if k == p))
    }

    /// `spec.pools[i].<key>`
    fn is_pool_field(&self, key: &str) -> bool {
        matches!(
            self.path.as_slice(),
            [Segment::Key(s), Segment::Key(p), Segment::Index(_), Segment::Key(k)]
                if s == "spec" && p == "pools" && k == key
        )
    }

    fn count_entry(&mut self) {
        self.total += 1;
    }

    fn check_len(&mut self, len: usize, what: &str) {
        let limit = if self.is(&["spec", "pools"]) {
            MAX_POOLS
        } else {
            MAX_ENTRIES
        };
        if len > limit {
            let field = self.field();
            self.report(
                Violation::new(
                    field,
                    Reason::TooMany,
                    format!("must have at most {limit} {what}"),
                )
                .with_value(len),
            );
        }
    }

    /// Reports each key written more than once among `keys[first..]` (the map just walked), once,
    /// and drops those keys.
    fn check_duplicate_keys(&mut self, first: usize) {
        let tail = &mut self.keys[first..];
        tail.sort_unstable();
        let mut duplicated: Vec<Cow<str>> = tail
            .windows(2)
            .filter(|pair| pair[0] == pair[1])
            .map(|pair| pair[0].clone())
            .collect();
        self.keys.truncate(first);
        duplicated.dedup();
        for key in duplicated {
            let mut field = self.field();
            if field == "<root>" {
                field.clear();
            }
            push_key(&mut field, &key);
            self.report(Violation::new(
                field,
                Reason::Duplicate,
                "this key is written more than once in its object; readers disagree on which copy counts (the apiserver keeps the last): write it once",
            ));
        }
    }

    /// A list where the schema has an object would parse as an empty struct (see [`shape`]).
    fn check_list_fits(&mut self) {
        let steps = self.path.iter().map(|segment| match segment {
            Segment::Key(k) => Step::Key(k),
            Segment::Index(_) => Step::Index,
        });
        if shape::object_expected(steps) {
            let field = self.field();
            self.report(
                Violation::new(
                    field,
                    Reason::Invalid,
                    "must be an object of fields, not a list",
                )
                .with_value("array"),
            );
        }
    }

    fn check_number(&mut self, value: i64) {
        for (key, limit, what) in [
            ("servers", MAX_SERVERS, "servers (pods) in a pool"),
            (
                "volumesPerServer",
                MAX_VOLUMES_PER_SERVER,
                "volumes per server",
            ),
        ] {
            if self.is_pool_field(key) && value > limit {
                let field = self.field();
                self.report(
                    Violation::new(
                        field,
                        Reason::Invalid,
                        format!("must be at most {limit} {what}"),
                    )
                    .with_value(value),
                );
            }
        }
    }
}

/// Walks one value at the current path.
struct Node<'a, 'de> {
    walk: &'a mut Walk<'de>,
    depth: usize,
}

/// A map key, borrowed when the input allows.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}

impl<'de> DeserializeSeed<'de> for Node<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.depth > MAX_DEPTH {
            let field = self.walk.field();
            self.walk.report(Violation::new(
                field,
                Reason::Invalid,
                format!("nested deeper than {MAX_DEPTH} levels"),
            ));
            // The apiserver's decoder bounds the depth before us; skipping is bounded by the
            // JSON parser's own recursion limit.
            return deserializer.deserialize_ignored_any(IgnoredAny).map(drop);
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Node<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.walk.check_number(v);
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.walk.check_number(i64::try_from(v).unwrap_or(i64::MAX));
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.walk.check_list_fits();
        let mut len = 0;
        loop {
            self.walk.path.push(Segment::Index(len));
            let more = seq.next_element_seed(Node {
                walk: self.walk,
                depth: self.depth + 1,
            })?;
            self.walk.path.pop();
            if more.is_none() {
                break;
            }
            len += 1;
            self.walk.count_entry();
        }
        self.walk.check_len(len, "items");
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut len = 0;
        let first_key = self.walk.keys.len();
        while let Some(key) = map.next_key_seed(Key)? {
            // A map over the entry limit is refused anyway; its keys need not be kept.
            if len <= MAX_ENTRIES {
                self.walk.keys.push(key.clone());
            }
            self.walk.path.push(Segment::Key(key));
            map.next_value_seed(Node {
                walk: self.walk,
                depth: self.depth + 1,
            })?;
            self.walk.path.pop();
            len += 1;
            self.walk.count_entry();
        }
        // An object's own fields are bounded by its type; maps of the user's (labels,
        // annotations, nodeSelector, ...) are what can grow.
        self.walk.check_len(len, "entries");
        self.walk.check_duplicate_keys(first_key);
        Ok(())
    }
}

/// What the walk found: the violations, or an error when the input is not JSON at all (the caller
/// reports that as it reports any parse error).
pub fn check<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Violation>, D::Error> {
    let mut walk = Walk::new();
    Node {
        walk: &mut walk,
        depth: 0,
    }
    .deserialize(deserializer)?;
    if walk.total > MAX_TOTAL_ENTRIES {
        let total = walk.total;
        walk.report(
            Violation::new(
                "<root>",
                Reason::TooMany,
                format!(
                    "a Tenant may hold at most {MAX_TOTAL_ENTRIES} list and map entries in all (a real one holds a few dozen)"
                ),
            )
            .with_value(total),
        );
    }
    // Under a key written twice, a finding may belong to the copy the apiserver would drop: only
    // the duplicated key is named (found by fuzzing); fixing it shows what its copy holds.
    let duplicated: Vec<String> = walk
        .violations
        .iter()
        .filter(|v| v.reason == Reason::Duplicate)
        .map(|v| v.field.clone())
        .collect();
    walk.violations.retain(|v| {
        !duplicated.iter().any(|d| {
            v.field.len() > d.len()
                && v.field.starts_with(d.as_str())
                && v.field[d.len()..].starts_with(['.', '['])
        })
    });
    if walk.suppressed > 0 {
        walk.violations.push(Violation::new(
            "<root>",
            Reason::TooMany,
            format!("{} more field(s) over the size limits", walk.suppressed),
        ));
    }
    Ok(walk.violations)
}

/// [`check`] on JSON text (the webhook's raw object). The walk decodes every string, so it is also
/// where text that is not JSON, or a string that is not Unicode (a lone surrogate escape such as
/// `"\ud800"`, which a typed parse skipping unknown fields never decodes), is found: the caller
/// refuses such a review as malformed.
pub fn check_json(json: &str) -> Result<Vec<Violation>, serde_json::Error> {
    check(&mut serde_json::Deserializer::from_str(json))
}

/// [`check`] on a parsed document (the CLI's YAML or JSON input).
pub fn check_value(value: &serde_json::Value) -> Vec<Violation> {
    check(value).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_written_twice_is_named_once_at_its_path() {
        let json = r#"{"spec": {"pools": [{"name": "a", "resources": {}, "resources": {"limits": {}}, "resources": 1}],
                       "image": "x"}, "kind": "Tenant", "kind": "Tenant"}"#;
        let found: Vec<(String, Reason)> = check_json(json)
            .unwrap()
            .into_iter()
            .map(|v| (v.field, v.reason))
            .collect();
        assert_eq!(
            found,
            [
                ("spec.pools[0].resources".to_owned(), Reason::Duplicate),
                ("kind".to_owned(), Reason::Duplicate),
            ]
        );
    }

    #[test]
    fn findings_under_a_key_written_twice_give_way_to_it() {
        let json =
            r#"{"spec": {"configuration": {"name": "a", "name": "b"}}, "spec": {"image": "x"}}"#;
        let found: Vec<String> = check_json(json)
            .unwrap()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(found, ["spec"]);
    }

    #[test]
    fn a_list_where_the_schema_has_an_object_is_named() {
        let json = r#"{"spec": {"pools": [[], {"resources": [1]}], "configuration": []}, "metadata": {"labels": {"a": []}}}"#;
        let found: Vec<String> = check_json(json)
            .unwrap()
            .into_iter()
            .map(|v| v.message())
            .collect();
        assert_eq!(
            found,
            [
                r#"spec.pools[0]: Invalid value: "array": must be an object of fields, not a list"#,
                r#"spec.pools[1].resources: Invalid value: "array": must be an object of fields, not a list"#,
                r#"spec.configuration: Invalid value: "array": must be an object of fields, not a list"#,
            ]
        );
        assert_eq!(check_json(r#"{"spec": []}"#).unwrap()[0].field, "spec");
    }

    #[test]
    fn the_same_key_in_different_objects_is_no_duplicate() {
        let json = r#"{"a": {"name": 1}, "b": {"name": 2}, "c": [{"name": 3}, {"name": 4}]}"#;
        assert_eq!(check_json(json).unwrap(), []);
    }
}
