//! How the web frameworks' session records live inside sessiondir's format: a [`Dict`] of JSON
//! entries, the one record format of `crate::dict`'s `json` module (shared with the axum layer's
//! `Dict` sessions through [`Dict::get_as`]/[`Dict::insert_as`], and with the Python binding).
//! Shared by the `tower-sessions` and `actix-session` adapters, so that a session written
//! by either is readable by [`Store::load::<Dict>`](crate::Store::load), by `sessiondir show`,
//! by the axum layer, and by the actix adapter (which can name a tower session by its
//! sessiondir id; tower cannot name an actix session, whose id is not the image of any tower
//! `Id`).
//!
//! Both frameworks keep a session as a map from string keys to JSON values (tower-sessions:
//! `HashMap<String, serde_json::Value>`; actix-session: `HashMap<String, String>` of JSON texts).
//! Postcard, sessiondir's payload encoding, is not self-describing and cannot decode a
//! `serde_json::Value`, so a record is stored as
//!
//! ```text
//! Dict { key -> Value::Text(<the value as JSON text>) }
//! ```
//!
//! * tower-sessions: each value is written with `serde_json::to_string` and read back with
//!   `serde_json::from_str`.
//! * actix-session: its values already are JSON texts; they are stored and returned byte for
//!   byte as they are, never parsed.
//!
//! The adapters write every entry as [`Value::Text`]. They read any other entry (a native value
//! an axum handler wrote with [`Dict::increment`] or [`Dict::insert`], say) as the JSON value it
//! stands for: an integer as a number, a list as an array, and so on; one that has no JSON form
//! (a non-finite float) is a decoding error naming the key and the file. The expiry is not part of the data: it is the session
//! header's: [`Expiry::At`](crate::Expiry::At), kept to the millisecond (or never, for a
//! lifetime too long for `SystemTime`), so `sessiondir ls`, `gc` and
//! [`Store::delete_expired`](crate::Store::delete_expired) see it.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
#[cfg(feature = "actix-session")]
use std::time::{Duration, SystemTime};

use crate::dict::{Dict, Value};
#[cfg(feature = "actix-session")]
use crate::settings::Expiry;

/// A record that does not follow the representation above.
#[derive(Debug)]
pub(crate) enum RecordError {
    /// tower-sessions: a value could not be written as JSON text.
    #[cfg(feature = "tower-sessions")]
    Encode {
        /// The session key.
        key: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// A native entry with no JSON form (a non-finite float).
    NotJson {
        /// The session key.
        key: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// tower-sessions: an entry's text is not valid JSON.
    #[cfg(feature = "tower-sessions")]
    InvalidJson {
        /// The session key.
        key: String,
        /// serde_json's error.
        source: serde_json::Error,
    },
}

impl fmt::Display for RecordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "tower-sessions")]
            RecordError::Encode { key, source } => {
                write!(f, "cannot write the value of {key:?} as JSON: {source}")
            }
            RecordError::NotJson { key, source } => write!(
                f,
                "entry {key:?} has no JSON form (not a web framework record): {source}"
            ),
            #[cfg(feature = "tower-sessions")]
            RecordError::InvalidJson { key, source } => {
                write!(f, "entry {key:?} is not valid JSON: {source}")
            }
        }
    }
}

impl std::error::Error for RecordError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            #[cfg(feature = "tower-sessions")]
            RecordError::Encode { source, .. } | RecordError::InvalidJson { source, .. } => {
                Some(source)
            }
            RecordError::NotJson { source, .. } => Some(source),
        }
    }
}

/// tower-sessions data → the stored [`Dict`]: each value as JSON text.
#[cfg(feature = "tower-sessions")]
pub(crate) fn dict_from_values(
    values: &HashMap<String, serde_json::Value>,
) -> Result<Dict, RecordError> {
    values
        .iter()
        .map(|(key, value)| match serde_json::to_string(value) {
            Ok(text) => Ok((key.clone(), Value::Text(text))),
            Err(source) => Err(RecordError::Encode {
                key: key.clone(),
                source,
            }),
        })
        .collect()
}

/// The stored [`Dict`] → tower-sessions data: each entry's JSON text parsed.
#[cfg(feature = "tower-sessions")]
pub(crate) fn values_from_dict(
    dict: &Dict,
) -> Result<HashMap<String, serde_json::Value>, RecordError> {
    dict.iter()
        .map(|(key, value)| {
            let text = json_text(key, value)?;
            match serde_json::from_str(&text) {
                Ok(value) => Ok((key.to_owned(), value)),
                Err(source) => Err(RecordError::InvalidJson {
                    key: key.to_owned(),
                    source,
                }),
            }
        })
        .collect()
}

/// actix-session state (JSON texts) → the stored [`Dict`], the texts unchanged.
#[cfg(feature = "actix-session")]
pub(crate) fn dict_from_texts(texts: HashMap<String, String>) -> Dict {
    texts
        .into_iter()
        .map(|(key, text)| (key, Value::Text(text)))
        .collect()
}

/// The stored [`Dict`] → actix-session state: the JSON texts as they are (not parsed).
#[cfg(feature = "actix-session")]
pub(crate) fn texts_from_dict(dict: &Dict) -> Result<HashMap<String, String>, RecordError> {
    dict.iter()
        .map(|(key, value)| Ok((key.to_owned(), json_text(key, value)?.into_owned())))
        .collect()
}

/// The JSON text of one entry (a native one rendered), or why it has none.
fn json_text<'a>(key: &str, value: &'a Value) -> Result<Cow<'a, str>, RecordError> {
    crate::dict::entry_json(value).map_err(|source| RecordError::NotJson {
        key: key.to_owned(),
        source,
    })
}

/// The expiry rule for a session that ends `ttl` from now; a lifetime too long to represent
/// never ends. (A zero lifetime has already ended: such a session loads as missing.)
#[cfg(feature = "actix-session")]
pub(crate) fn expires_after(ttl: Duration) -> Expiry {
    match SystemTime::now().checked_add(ttl) {
        Some(at) => Expiry::At(at),
        None => Expiry::Never,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "tower-sessions")]
    #[test]
    fn values_are_json_text_and_come_back() {
        let values: HashMap<String, serde_json::Value> = [
            ("n".to_owned(), serde_json::json!(null)),
            ("o".to_owned(), serde_json::json!({"a": [1, "two", false]})),
        ]
        .into_iter()
        .collect();
        let dict = dict_from_values(&values).unwrap();
        assert_eq!(dict.get_str("n"), Some("null"));
        assert_eq!(dict.get_str("o"), Some(r#"{"a":[1,"two",false]}"#));
        assert_eq!(values_from_dict(&dict).unwrap(), values);
    }

    #[test]
    fn a_native_value_reads_as_its_json_and_a_non_finite_float_as_no_record() {
        let mut dict = Dict::new();
        dict.insert("counter", 3i64);
        dict.insert("bad", f64::NAN);
        assert_eq!(
            json_text("counter", dict.get("counter").unwrap()).unwrap(),
            "3"
        );
        let err = json_text("bad", dict.get("bad").unwrap()).unwrap_err();
        assert!(
            err.to_string().contains("\"bad\" has no JSON form"),
            "{err}"
        );
    }
}
