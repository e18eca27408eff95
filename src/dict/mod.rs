//! [`Dict`]: a ready-made session type, string keys to typed values (`session["counter"]`).
//!
//! Postcard is not self-describing, so arbitrary serde values cannot be stored untyped; a
//! [`Value`] is a small self-describing enum instead, which is also what lets admin tools show a
//! dictionary session's contents without knowing the application's types.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

mod json;
pub use json::EntryError;
#[cfg(any(feature = "tower-sessions", feature = "actix-session"))]
pub(crate) use json::entry_json;

/// A value in a [`Dict`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Value {
    /// No value.
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    Text(String),
    /// Raw bytes.
    Bytes(#[serde(with = "serde_bytes")] Vec<u8>),
    /// A list of values (nested at most [`MAX_NESTING`] deep).
    List(#[serde(with = "nesting::list")] Vec<Value>),
    /// A nested map (nested at most [`MAX_NESTING`] deep).
    Map(#[serde(with = "nesting::map")] BTreeMap<String, Value>),
}

/// How deeply lists and maps may nest inside a [`Value`]. Deeper data is refused when it is
/// written ([`Error::Encode`](crate::Error::Encode)) and when it is read
/// ([`Error::Decode`](crate::Error::Decode)) instead of overflowing the stack.
pub const MAX_NESTING: usize = 128;

/// The recursive variants of [`Value`] on the wire: nesting bounded by [`MAX_NESTING`], and a
/// list's claimed length reserves nothing, so a damaged or hostile file's length fields cannot
/// make a read allocate more than its bytes describe.
mod nesting {
    use std::cell::Cell;
    use std::collections::BTreeMap;
    use std::fmt;

    use serde::de::{self, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer, ser};

    use super::{MAX_NESTING, Value};

    thread_local! {
        /// Lists and maps entered by the encoding or decoding running on this thread.
        static DEPTH: Cell<usize> = const { Cell::new(0) };
    }

    /// One level of nesting, left when dropped (on errors and unwinding too).
    struct Level;

    impl Level {
        fn enter() -> Option<Level> {
            DEPTH.with(|depth| {
                let d = depth.get();
                (d < MAX_NESTING).then(|| {
                    depth.set(d + 1);
                    Level
                })
            })
        }
    }

    impl Drop for Level {
        fn drop(&mut self) {
            DEPTH.with(|depth| depth.set(depth.get() - 1));
        }
    }

    fn too_deep() -> String {
        format!("lists and maps nested more than {MAX_NESTING} levels deep")
    }

    pub(super) mod list {
        use super::*;

        pub fn serialize<S: Serializer>(items: &[Value], s: S) -> Result<S::Ok, S::Error> {
            let _level = Level::enter().ok_or_else(|| ser::Error::custom(too_deep()))?;
            items.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Value>, D::Error> {
            let _level = Level::enter().ok_or_else(|| de::Error::custom(too_deep()))?;
            d.deserialize_seq(Items)
        }

        struct Items;

        impl<'de> Visitor<'de> for Items {
            type Value = Vec<Value>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of values")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Value>, A::Error> {
                // Grown as elements arrive: the claimed length reserves nothing.
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(items)
            }
        }
    }

    pub(super) mod map {
        use super::*;

        pub fn serialize<S: Serializer>(
            map: &BTreeMap<String, Value>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            let _level = Level::enter().ok_or_else(|| ser::Error::custom(too_deep()))?;
            map.serialize(s)
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<BTreeMap<String, Value>, D::Error> {
            let _level = Level::enter().ok_or_else(|| de::Error::custom(too_deep()))?;
            // A B-tree reserves nothing ahead of its entries.
            BTreeMap::deserialize(d)
        }
    }
}

impl Value {
    /// The variant's name, for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Text(_) => "text",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    /// The integer, if this is one.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The boolean, if this is one.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The float, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The text, if this is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if these are bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }
}

macro_rules! value_from {
    ($($t:ty => $variant:ident via $conv:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$variant($conv(v))
            }
        })*
    };
}

value_from! {
    bool => Bool via std::convert::identity,
    i64 => Int via std::convert::identity,
    i32 => Int via i64::from,
    u32 => Int via i64::from,
    f64 => Float via std::convert::identity,
    String => Text via std::convert::identity,
    &str => Text via String::from,
    Vec<u8> => Bytes via std::convert::identity,
    &[u8] => Bytes via <[u8]>::to_vec,
    Vec<Value> => List via std::convert::identity,
    BTreeMap<String, Value> => Map via std::convert::identity,
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Text(s) => write!(f, "{s:?}"),
            Value::Bytes(b) => write!(f, "<{} bytes>", b.len()),
            Value::List(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(map) => {
                f.write_str("{")?;
                for (i, (k, v)) in map.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k:?}: {v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

/// A key held a value of another type than the operation needs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("session key {key:?} holds a {found}, not an int")]
pub struct WrongType {
    /// The key.
    pub key: String,
    /// The type it holds.
    pub found: &'static str,
}

/// A dictionary session: string keys to [`Value`]s, kept in key order.
///
/// ```
/// use sessiondir::Dict;
/// let mut d = Dict::new();
/// d.insert("user", "ada");
/// assert_eq!(d.increment("counter", 1), Ok(1));
/// assert_eq!(d.get_str("user"), Some("ada"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Dict(BTreeMap<String, Value>);

impl Dict {
    /// An empty dictionary.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value under `key`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.0.get(key)
    }

    /// The integer under `key`, if there is one.
    pub fn get_i64(&self, key: &str) -> Option<i64> {
        self.get(key).and_then(Value::as_i64)
    }

    /// The text under `key`, if there is some.
    pub fn get_str(&self, key: &str) -> Option<&str> {
        self.get(key).and_then(Value::as_str)
    }

    /// The boolean under `key`, if there is one.
    pub fn get_bool(&self, key: &str) -> Option<bool> {
        self.get(key).and_then(Value::as_bool)
    }

    /// Sets `key`, returning the previous value.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) -> Option<Value> {
        self.0.insert(key.into(), value.into())
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        self.0.remove(key)
    }

    /// Adds `by` to the integer under `key` (a missing key counts as 0) and returns the new
    /// value. A key holding something else is left unchanged and reported.
    pub fn increment(&mut self, key: &str, by: i64) -> Result<i64, WrongType> {
        let slot = self.0.entry(key.to_owned()).or_insert(Value::Int(0));
        match slot {
            Value::Int(i) => {
                *i = i.wrapping_add(by);
                Ok(*i)
            }
            other => Err(WrongType {
                key: key.to_owned(),
                found: other.type_name(),
            }),
        }
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Removes every key.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// Entries in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Dict {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Dict(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postcard_round_trip_of_every_variant() {
        let mut d = Dict::new();
        d.insert("n", Value::Null);
        d.insert("b", true);
        d.insert("i", -5i64);
        d.insert("f", 1.5f64);
        d.insert("t", "x");
        d.insert("y", Value::Bytes(vec![0, 255]));
        d.insert("l", vec![Value::Int(1), Value::Text("a".into())]);
        d.insert("m", BTreeMap::from([("k".to_string(), Value::Bool(false))]));
        let bytes = postcard::to_stdvec(&d).unwrap();
        assert_eq!(postcard::from_bytes::<Dict>(&bytes).unwrap(), d);
    }

    #[test]
    fn bytes_convert_into_values() {
        let mut d = Dict::new();
        d.insert("v", vec![1u8, 2, 3]);
        d.insert("s", &b"ab"[..]);
        assert_eq!(d.get("v"), Some(&Value::Bytes(vec![1, 2, 3])));
        assert_eq!(d.get("s"), Some(&Value::Bytes(b"ab".to_vec())));
    }

    #[test]
    fn increment_refuses_non_integers() {
        let mut d = Dict::new();
        d.insert("name", "ada");
        assert_eq!(
            d.increment("name", 1),
            Err(WrongType {
                key: "name".into(),
                found: "text"
            })
        );
        assert_eq!(d.get_str("name"), Some("ada"));
    }

    #[test]
    fn bytes_keep_their_wire_format_length_then_raw_bytes() {
        // serde_bytes only changes how the bytes travel through serde (one slice instead of a
        // sequence of u8s); postcard writes both the same way: the files do not change.
        let mut d = Dict::new();
        d.insert("b", Value::Bytes(vec![1, 2, 3]));
        let bytes = postcard::to_allocvec(&d).expect("encode");
        assert_eq!(bytes, [1, 1, b'b', 5, 3, 1, 2, 3]);
        let as_seq = postcard::to_allocvec(&(1u8, "b", 5u8, vec![1u8, 2, 3])).expect("encode");
        assert_eq!(bytes, as_seq);
        let back: Dict = postcard::from_bytes(&bytes).expect("decode");
        assert_eq!(back, d);
    }

    fn nested_lists(depth: usize) -> Value {
        (0..depth).fold(Value::Null, |inner, _| Value::List(vec![inner]))
    }

    #[test]
    fn nesting_up_to_the_limit_round_trips_and_deeper_is_refused_both_ways() {
        let mut ok = Dict::new();
        ok.insert("v", nested_lists(MAX_NESTING));
        let bytes = postcard::to_allocvec(&ok).expect("encode at the limit");
        let back: Dict = postcard::from_bytes(&bytes).expect("decode at the limit");
        assert_eq!(back, ok);

        let mut deep = Dict::new();
        deep.insert("v", nested_lists(MAX_NESTING + 1));
        assert!(
            postcard::to_allocvec(&deep).is_err(),
            "encoded past the limit"
        );
        // The same bytes with one more level, made by hand: refused on read.
        let mut raw = vec![1, 1, b'v'];
        raw.extend(std::iter::repeat_n([6u8, 1], MAX_NESTING + 1).flatten());
        raw.push(0);
        assert!(
            postcard::from_bytes::<Dict>(&raw).is_err(),
            "decoded past the limit"
        );
        // And the counter is back at zero after errors: the limit case still works.
        let again: Dict = postcard::from_bytes(&bytes).expect("decode at the limit again");
        assert_eq!(again, ok);
    }
}
