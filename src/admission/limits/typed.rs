//! The size limits of [`super`], enforced inside the typed parse: one pass over the object's text
//! builds the Tenant, and every value the Tenant types skip (unknown fields) is walked by the same
//! walk the separate check uses, so nothing in the object goes unchecked.
//!
//! The pass wraps serde_json's deserializer: every map entry and list item the typed parse reads
//! goes through [`Walk`], with the path kept as it goes, and the pass stops at the first limit
//! crossed, so an oversized object is never built. It answers only "within the limits, and this is
//! the Tenant": on anything else the caller runs the separate walk and the path-tracking parse,
//! whose messages the webhook has always sent (a hostile object pays for two passes, a real one
//! for one).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};

use super::{MAX_DEPTH, MAX_ENTRIES, MAX_POOLS, MAX_TOTAL_ENTRIES, Node, Segment, Walk};

/// `T` from `json` when the text is within every limit and parses; `None` otherwise (and then
/// nothing bigger than the limits allow was built).
pub(crate) fn parse<'de, T: Deserialize<'de>>(json: &'de str) -> Option<T> {
    let mut walk = Walk::new();
    let mut de = serde_json::Deserializer::from_str(json);
    let value = T::deserialize(Checked {
        de: &mut de,
        walk: &mut walk,
        depth: 0,
    })
    .ok()?;
    de.end().ok()?;
    walk.violations.is_empty().then_some(value)
}

/// Stops the pass once the walk has found anything: the caller's second look names it.
fn within<E: de::Error>(walk: &Walk) -> Result<(), E> {
    if walk.violations.is_empty() {
        Ok(())
    } else {
        Err(E::custom("over the size limits"))
    }
}

/// A value at the current path, at `depth` (as [`Node`] counts it).
struct Checked<'w, 'de, D> {
    de: D,
    walk: &'w mut Walk<'de>,
    depth: usize,
}

impl<'w, 'de, D: Deserializer<'de>> Checked<'w, 'de, D> {
    /// `list_asked`: the typed parse asked for a list here (a `Vec`), so its own type says a list
    /// fits (the types and the schema are one: the CRD is generated from them).
    fn enter<V>(self, visitor: V, list_asked: bool) -> Result<(D, Wrap<'w, 'de, V>), D::Error> {
        if self.depth > MAX_DEPTH {
            // Node reports it with the field; the second look does.
            return Err(de::Error::custom("nested too deep"));
        }
        Ok((
            self.de,
            Wrap {
                visitor,
                walk: self.walk,
                depth: self.depth,
                list_asked,
            },
        ))
    }
}

/// Calls `$wrap!` with every `Deserializer` method that hands a visitor on as it is (all but
/// `deserialize_seq` and `deserialize_ignored_any`, which the wrappers below treat apart).
macro_rules! forwarded_methods {
    ($wrap:ident) => {
        $wrap! {
            deserialize_any, deserialize_bool, deserialize_i8, deserialize_i16, deserialize_i32,
            deserialize_i64, deserialize_i128, deserialize_u8, deserialize_u16, deserialize_u32,
            deserialize_u64, deserialize_u128, deserialize_f32, deserialize_f64, deserialize_char,
            deserialize_str, deserialize_string, deserialize_bytes, deserialize_byte_buf,
            deserialize_option, deserialize_unit, deserialize_map, deserialize_identifier,
            deserialize_unit_struct(name: &'static str),
            deserialize_newtype_struct(name: &'static str),
            deserialize_tuple(len: usize),
            deserialize_tuple_struct(name: &'static str, len: usize),
            deserialize_struct(name: &'static str, fields: &'static [&'static str]),
            deserialize_enum(name: &'static str, variants: &'static [&'static str]),
        }
    };
}

macro_rules! checked_methods {
    ($($method:ident $(($($arg:ident: $ty:ty),*))?),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($($arg: $ty,)*)? visitor: V) -> Result<V::Value, D::Error> {
            let (de, visitor) = self.enter(visitor, false)?;
            de.$method($($($arg,)*)? visitor)
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Checked<'_, 'de, D> {
    type Error = D::Error;

    forwarded_methods!(checked_methods);

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        let (de, visitor) = self.enter(visitor, true)?;
        de.deserialize_seq(visitor)
    }

    /// What the Tenant types skip is walked all the same.
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        Node {
            walk: &mut *self.walk,
            depth: self.depth,
        }
        .deserialize(self.de)?;
        within(self.walk)?;
        visitor.visit_unit()
    }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

/// The typed parse's visitor, seeing each value first.
struct Wrap<'w, 'de, V> {
    visitor: V,
    walk: &'w mut Walk<'de>,
    depth: usize,
    list_asked: bool,
}

macro_rules! forward_visits {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            self.visitor.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)
    }

    forward_visits! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i128(i128),
        visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u128(u128), visit_f32(f32),
        visit_f64(f64), visit_char(char), visit_str(&str), visit_borrowed_str(&'de str),
        visit_string(String), visit_bytes(&[u8]), visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        self.walk.check_number(v);
        within(self.walk)?;
        self.visitor.visit_i64(v)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        self.walk.check_number(i64::try_from(v).unwrap_or(i64::MAX));
        within(self.walk)?;
        self.visitor.visit_u64(v)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_unit()
    }

    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_some(Checked {
            de,
            walk: self.walk,
            depth: self.depth,
        })
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_newtype_struct(Checked {
            de,
            walk: self.walk,
            depth: self.depth,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        // A struct reads a list too, as its fields in order: that is what the schema check finds.
        if !self.list_asked {
            self.walk.check_list_fits();
            within(self.walk)?;
        }
        // Its length is checked item by item (Entries::counted).
        let mut len = 0;
        self.visitor.visit_seq(Entries {
            access: seq,
            walk: self.walk,
            depth: self.depth,
            len: &mut len,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let first_key = self.walk.keys.len();
        let mut len = 0;
        let value = self.visitor.visit_map(Entries {
            access: map,
            walk: &mut *self.walk,
            depth: self.depth,
            len: &mut len,
        })?;
        // Its length was checked entry by entry (Entries::counted); its keys only now.
        self.walk.check_duplicate_keys(first_key);
        within(self.walk)?;
        Ok(value)
    }

    /// No Tenant field is an enum; were one added, the second look checks it.
    fn visit_enum<A: de::EnumAccess<'de>>(self, _: A) -> Result<Self::Value, A::Error> {
        Err(de::Error::custom("an enum is checked by the separate walk"))
    }
}

/// The items of a list or the entries of a map, counted as they go: one over its limit stops the
/// pass at the first entry too many.
struct Entries<'a, 'de, A> {
    access: A,
    walk: &'a mut Walk<'de>,
    depth: usize,
    len: &'a mut usize,
}

impl<'de, A> Entries<'_, 'de, A> {
    /// One more entry: over a limit, the pass stops here. Every limit is at least
    /// `MAX_POOLS.min(MAX_ENTRIES)`, so shorter lists and maps need no check at all.
    fn counted<E: de::Error>(&mut self) -> Result<(), E> {
        *self.len += 1;
        self.walk.count_entry();
        if self.walk.total > MAX_TOTAL_ENTRIES {
            return Err(E::custom("too many entries"));
        }
        if *self.len > MAX_POOLS.min(MAX_ENTRIES) {
            self.walk.check_len(*self.len, "entries");
            within(self.walk)?;
        }
        Ok(())
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Entries<'_, 'de, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.walk.path.push(Segment::Index(*self.len));
        let item = self
            .access
            .next_element_seed(CheckedSeed::down(seed, self.walk, self.depth))?;
        self.walk.path.pop();
        if item.is_some() {
            self.counted()?;
        }
        Ok(item)
    }

    fn size_hint(&self) -> Option<usize> {
        self.access.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Entries<'_, 'de, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let mut key = None;
        let value = self.access.next_key_seed(CaptureKey {
            seed,
            key: &mut key,
        })?;
        if value.is_some() {
            let Some(key) = key else {
                return Err(de::Error::custom("a key that is not a string"));
            };
            if *self.len <= MAX_ENTRIES {
                self.walk.keys.push(key.clone());
            }
            self.walk.path.push(Segment::Key(key));
        }
        Ok(value)
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        let value = self
            .access
            .next_value_seed(CheckedSeed::down(seed, self.walk, self.depth))?;
        self.walk.path.pop();
        self.counted()?;
        Ok(value)
    }

    fn size_hint(&self) -> Option<usize> {
        self.access.size_hint()
    }
}

/// A list item or map value, one level down.
struct CheckedSeed<'a, 'de, T> {
    seed: T,
    walk: &'a mut Walk<'de>,
    depth: usize,
}

impl<'a, 'de, T> CheckedSeed<'a, 'de, T> {
    /// The seed of an item or value of a list or map at `depth`.
    fn down(seed: T, walk: &'a mut Walk<'de>, depth: usize) -> Self {
        CheckedSeed {
            seed,
            walk,
            depth: depth + 1,
        }
    }
}

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for CheckedSeed<'_, 'de, T> {
    type Value = T::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<T::Value, D::Error> {
        self.seed.deserialize(Checked {
            de,
            walk: self.walk,
            depth: self.depth,
        })
    }
}

/// A map key, read by whatever the typed parse asks for (a field name, a label's key), and kept
/// for the path and the duplicate check.
struct CaptureKey<'k, 'de, K> {
    seed: K,
    key: &'k mut Option<Cow<'de, str>>,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for CaptureKey<'_, 'de, K> {
    type Value = K::Value;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<K::Value, D::Error> {
        self.seed.deserialize(KeyDeserializer { de, key: self.key })
    }
}

struct KeyDeserializer<'k, 'de, D> {
    de: D,
    key: &'k mut Option<Cow<'de, str>>,
}

macro_rules! key_methods {
    ($($method:ident $(($($arg:ident: $ty:ty),*))?),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, $($($arg: $ty,)*)? visitor: V) -> Result<V::Value, D::Error> {
            self.de.$method($($($arg,)*)? KeyVisitor { visitor, key: self.key })
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for KeyDeserializer<'_, 'de, D> {
    type Error = D::Error;

    forwarded_methods!(key_methods);
    key_methods! { deserialize_seq, deserialize_ignored_any }

    fn is_human_readable(&self) -> bool {
        self.de.is_human_readable()
    }
}

struct KeyVisitor<'k, 'de, V> {
    visitor: V,
    key: &'k mut Option<Cow<'de, str>>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for KeyVisitor<'_, 'de, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        *self.key = Some(Cow::Borrowed(v));
        self.visitor.visit_borrowed_str(v)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        *self.key = Some(Cow::Owned(v.to_owned()));
        self.visitor.visit_str(v)
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        *self.key = Some(Cow::Owned(v.clone()));
        self.visitor.visit_string(v)
    }

    forward_visits! {
        visit_bool(bool), visit_i8(i8), visit_i16(i16), visit_i32(i32), visit_i64(i64),
        visit_i128(i128), visit_u8(u8), visit_u16(u16), visit_u32(u32), visit_u64(u64),
        visit_u128(u128), visit_f32(f32), visit_f64(f64), visit_char(char),
        visit_bytes(&[u8]), visit_borrowed_bytes(&'de [u8]), visit_byte_buf(Vec<u8>),
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_none()
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        self.visitor.visit_unit()
    }

    // JSON keys are strings: what follows is never reached from serde_json, and is forwarded so
    // that a key read another way still reads the same.
    fn visit_some<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_some(de)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        self.visitor.visit_newtype_struct(de)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_seq(seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_map(map)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        self.visitor.visit_enum(data)
    }
}
