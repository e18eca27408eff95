//! Typed entries of a [`Dict`] as JSON: the one record format that the web adapters
//! (`tower-sessions`, `actix-session`, the axum layer with `Dict`) and the Python binding all
//! read and write (design §10).
//!
//! A record is a `Dict`; each entry is the JSON value of its key:
//!
//! * [`Value::Text`] holds the value **as JSON text** (`"\"ada\""` for the string `ada`, `36`
//!   for the number): what every writer of typed data writes ([`Dict::insert_as`], tower's
//!   values, actix's texts byte for byte, Python's values).
//! * Every other variant stands for itself: `Null`, `Bool`, `Int`, `Float` as the JSON
//!   null, boolean or number, `List`/`Map` as an array/object (nested `Text` there is a JSON
//!   string), `Bytes` as an array of numbers. This is what `Dict`'s own setters write
//!   ([`Dict::insert`] of a number, [`Dict::increment`]), so a session an axum handler changed
//!   with them is still a record every adapter reads.
//!
//! The one native value that cannot be told from JSON text is a top-level `Text`: the string
//! `ada` inserted with [`Dict::insert`] reads, as JSON, as the invalid text `ada`. Data shared
//! with the other adapters is therefore written with [`Dict::insert_as`] and read with
//! [`Dict::get_as`].

#[cfg(any(feature = "tower-sessions", feature = "actix-session"))]
use std::borrow::Cow;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Dict, Value};

/// An entry that is not the JSON of the type asked for, or a value that has no JSON form.
#[derive(Debug, thiserror::Error)]
#[error("session key {key:?}: {source}")]
pub struct EntryError {
    /// The key.
    pub key: String,
    /// serde_json's account of it.
    #[source]
    pub source: serde_json::Error,
}

impl Dict {
    /// The entry under `key` as a `T`, read from its JSON (module docs: a
    /// [`Value::Text`] entry is JSON text, any other entry its own JSON value). `Ok(None)`: no
    /// such key.
    ///
    /// ```
    /// use sessiondir::Dict;
    /// #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    /// struct User { name: String, age: u32 }
    ///
    /// let mut d = Dict::new();
    /// d.insert_as("user", &User { name: "ada".into(), age: 36 })?;
    /// d.increment("visits", 1)?; // a native entry: also read as JSON
    /// assert_eq!(d.get_as::<User>("user")?, Some(User { name: "ada".into(), age: 36 }));
    /// assert_eq!(d.get_as::<u64>("visits")?, Some(1));
    /// assert_eq!(d.get_as::<u64>("missing")?, None);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn get_as<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, EntryError> {
        let Some(value) = self.get(key) else {
            return Ok(None);
        };
        let error = |source| EntryError {
            key: key.to_owned(),
            source,
        };
        match value {
            Value::Text(text) => serde_json::from_str(text).map(Some).map_err(error),
            native => serde_json::from_value(to_json(native).map_err(error)?)
                .map(Some)
                .map_err(error),
        }
    }

    /// Sets `key` to `value` as JSON text, the form every adapter reads (module docs);
    /// returns the previous entry. An error (a map with non-string keys, say) leaves the
    /// dictionary unchanged.
    pub fn insert_as<T: Serialize + ?Sized>(
        &mut self,
        key: impl Into<String>,
        value: &T,
    ) -> Result<Option<Value>, EntryError> {
        let key = key.into();
        match serde_json::to_string(value) {
            Ok(text) => Ok(self.insert(key, Value::Text(text))),
            Err(source) => Err(EntryError { key, source }),
        }
    }
}

/// The JSON text of one entry (module docs): a `Text` entry as it is, any other rendered.
#[cfg(any(feature = "tower-sessions", feature = "actix-session"))]
pub(crate) fn entry_json(value: &Value) -> Result<Cow<'_, str>, serde_json::Error> {
    match value {
        Value::Text(text) => Ok(Cow::Borrowed(text)),
        native => Ok(Cow::Owned(to_json(native)?.to_string())),
    }
}

/// A native value as the JSON value it stands for (nested text is a JSON string).
fn to_json(value: &Value) -> Result<serde_json::Value, serde_json::Error> {
    use serde::ser::Error as _;
    Ok(match value {
        Value::Null => serde_json::Value::Null,
        Value::Bool(b) => serde_json::Value::Bool(*b),
        Value::Int(n) => serde_json::Value::from(*n),
        Value::Float(x) => serde_json::Number::from_f64(*x)
            .map(serde_json::Value::Number)
            .ok_or_else(|| serde_json::Error::custom(format!("{x} has no JSON form")))?,
        Value::Text(text) => serde_json::Value::String(text.clone()),
        Value::Bytes(bytes) => bytes.iter().map(|b| serde_json::Value::from(*b)).collect(),
        Value::List(items) => {
            serde_json::Value::Array(items.iter().map(to_json).collect::<Result<_, _>>()?)
        }
        Value::Map(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), to_json(v)?)))
                .collect::<Result<_, serde_json::Error>>()?,
        ),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn native_entries_read_as_their_json() {
        let mut d = Dict::new();
        d.insert("n", 3i64);
        d.insert("b", true);
        d.insert("x", 1.5f64);
        d.insert("l", Value::List(vec![Value::Text("a".into()), Value::Null]));
        d.insert(
            "m",
            Value::Map(BTreeMap::from([("k".to_owned(), Value::Int(1))])),
        );
        assert_eq!(d.get_as::<i64>("n").unwrap(), Some(3));
        assert_eq!(d.get_as::<bool>("b").unwrap(), Some(true));
        assert_eq!(d.get_as::<f64>("x").unwrap(), Some(1.5));
        assert_eq!(
            d.get_as::<Vec<Option<String>>>("l").unwrap(),
            Some(vec![Some("a".to_owned()), None])
        );
        assert_eq!(
            d.get_as::<serde_json::Value>("m").unwrap(),
            Some(serde_json::json!({"k": 1}))
        );
    }

    #[test]
    fn typed_entries_are_json_text_and_errors_name_the_key() {
        let mut d = Dict::new();
        d.insert_as("name", "ada").unwrap();
        assert_eq!(d.get_str("name"), Some("\"ada\""));
        assert_eq!(d.get_as::<String>("name").unwrap().as_deref(), Some("ada"));
        let err = d.get_as::<u32>("name").unwrap_err();
        assert!(
            err.to_string().starts_with("session key \"name\": "),
            "{err}"
        );
        let err = d
            .insert_as("map", &BTreeMap::from([((1, 2), 3)]))
            .unwrap_err();
        assert_eq!(err.key, "map");
        assert!(d.get("map").is_none());
        d.insert("inf", f64::INFINITY);
        assert!(d.get_as::<f64>("inf").is_err());
    }
}
