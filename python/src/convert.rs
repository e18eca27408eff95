//! Session data between Python and the stored record: a `Dict` of key → `Value::Text(JSON)`.
//!
//! This is the record format of the tower-sessions and actix-session adapters
//! (`src/web/json_record.rs` of the library), so a session written from Python is shown by
//! `sessiondir show` and read by a Rust process, and the other way round. The conversion is done
//! here, in Rust, rather than with Python's `json` module, because `json.dumps` silently turns
//! `{1: "a"}` into `{"1": "a"}` and writes `NaN`, which is not JSON: both are refused here with
//! an error that names the key. What round-trips exactly is listed in docs/design.md
//! ("Python binding").

use std::fmt::Write as _;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyMapping, PyString, PyTuple};
use sessiondir::{Dict, Value};

/// Deepest nesting of lists and dicts accepted inside one value (serde_json reads back up to
/// 128; the margin leaves room for the enclosing record).
pub(crate) const MAX_DEPTH: usize = 100;

/// A Python mapping with `str` keys → the stored record.
pub(crate) fn dict_from_py(data: &Bound<'_, PyAny>) -> PyResult<Dict> {
    let items = if let Ok(dict) = data.downcast::<PyDict>() {
        dict.items()
    } else if let Ok(mapping) = data.downcast::<PyMapping>() {
        mapping.items()?
    } else {
        return Err(PyTypeError::new_err(format!(
            "session data must be a dict (or another mapping) with str keys, not {}",
            type_name(data)
        )));
    };
    let mut dict = Dict::new();
    for item in items.iter() {
        let (key, value): (Bound<'_, PyAny>, Bound<'_, PyAny>) = item.extract()?;
        let key = str_key(&key, "")?;
        let mut text = String::new();
        write_json(&value, &mut text, &format!("{key:?}"), 0)?;
        dict.insert(key, Value::Text(text));
    }
    Ok(dict)
}

/// The stored record → a Python `dict`. Errors name the key: `Err((key, what))`.
pub(crate) fn dict_to_py<'py>(
    py: Python<'py>,
    dict: &Dict,
) -> PyResult<Result<Bound<'py, PyDict>, String>> {
    let out = PyDict::new(py);
    for (key, value) in dict.iter() {
        let Value::Text(text) = value else {
            return Ok(Err(format!(
                "entry {key:?} is a sessiondir {}, not JSON text",
                value.type_name()
            )));
        };
        let parsed: serde_json::Value = match serde_json::from_str(text) {
            Ok(v) => v,
            Err(e) => return Ok(Err(format!("entry {key:?} is not valid JSON: {e}"))),
        };
        out.set_item(key, json_to_py(py, &parsed)?)?;
    }
    Ok(Ok(out))
}

/// A dict key, which must be a `str`; `path` is where the dict sits, for the message.
fn str_key(key: &Bound<'_, PyAny>, path: &str) -> PyResult<String> {
    match key.downcast::<PyString>() {
        Ok(s) => Ok(s.to_cow()?.into_owned()),
        Err(_) => Err(PyTypeError::new_err(format!(
            "session data keys must be str: {} key {} in {}",
            type_name(key),
            key.repr()
                .map_or_else(|_| "?".to_owned(), |r| r.to_string()),
            if path.is_empty() { "the session" } else { path }
        ))),
    }
}

/// Writes `value` as JSON text; `path` names it in errors (`'cart'[2]['price']`).
fn write_json(
    value: &Bound<'_, PyAny>,
    out: &mut String,
    path: &str,
    depth: usize,
) -> PyResult<()> {
    if depth > MAX_DEPTH {
        return Err(PyValueError::new_err(format!(
            "session value {path} is nested deeper than {MAX_DEPTH} lists and dicts (or contains itself)"
        )));
    }
    if value.is_none() {
        out.push_str("null");
    } else if let Ok(b) = value.downcast::<PyBool>() {
        out.push_str(if b.is_true() { "true" } else { "false" });
    } else if let Ok(i) = value.downcast::<PyInt>() {
        if let Ok(n) = i.extract::<i64>() {
            let _ = write!(out, "{n}");
        } else {
            // Beyond 64 bits: Python's own decimal rendering of the exact int (an int
            // subclass such as an IntEnum is converted to a plain int first).
            let exact = value.py().get_type::<PyInt>().call1((value,))?;
            out.push_str(&exact.str()?.to_cow()?);
        }
    } else if let Ok(f) = value.downcast::<PyFloat>() {
        let f = f.value();
        match serde_json::Number::from_f64(f) {
            Some(n) => {
                let text = n.to_string();
                out.push_str(&text);
                // An integral float keeps a fraction so that it reads back as a float.
                if !text.contains(['.', 'e', 'E']) {
                    out.push_str(".0");
                }
            }
            None => {
                return Err(PyValueError::new_err(format!(
                    "session value {path} is {f}, which JSON cannot hold"
                )));
            }
        }
    } else if let Ok(s) = value.downcast::<PyString>() {
        let s = s.to_cow()?;
        out.push_str(&serde_json::Value::from(&*s).to_string());
    } else if let Ok(list) = value.downcast::<PyList>() {
        write_items(list.iter(), out, path, depth)?;
    } else if let Ok(tuple) = value.downcast::<PyTuple>() {
        write_items(tuple.iter(), out, path, depth)?;
    } else if let Ok(dict) = value.downcast::<PyDict>() {
        out.push('{');
        for (n, (k, v)) in dict.iter().enumerate() {
            let key = str_key(&k, path)?;
            if n > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::Value::from(key.as_str()).to_string());
            out.push(':');
            write_json(&v, out, &format!("{path}[{key:?}]"), depth + 1)?;
        }
        out.push('}');
    } else {
        return Err(PyTypeError::new_err(format!(
            "session value {path} is of type {}, which is not JSON-compatible \
             (use str, int, float, bool, None, list, tuple or dict with str keys)",
            type_name(value)
        )));
    }
    Ok(())
}

fn write_items<'py>(
    items: impl Iterator<Item = Bound<'py, PyAny>>,
    out: &mut String,
    path: &str,
    depth: usize,
) -> PyResult<()> {
    out.push('[');
    for (n, item) in items.enumerate() {
        if n > 0 {
            out.push(',');
        }
        write_json(&item, out, &format!("{path}[{n}]"), depth + 1)?;
    }
    out.push(']');
    Ok(())
}

/// A parsed JSON value → Python.
fn json_to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    use serde_json::Value as J;
    Ok(match value {
        J::Null => py.None().into_bound(py),
        J::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        J::Number(n) => {
            // arbitrary_precision: the number's exact text, as written.
            let text = n.as_str();
            if text.contains(['.', 'e', 'E']) {
                let f: f64 = text
                    .parse()
                    .map_err(|_| PyValueError::new_err(format!("bad JSON number {text}")))?;
                PyFloat::new(py, f).into_any()
            } else if let Ok(i) = text.parse::<i64>() {
                i.into_pyobject(py)?.into_any()
            } else {
                py.get_type::<PyInt>().call1((text,))?
            }
        }
        J::String(s) => PyString::new(py, s).into_any(),
        J::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        J::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value
        .get_type()
        .name()
        .map_or_else(|_| "object".to_owned(), |n| n.to_string())
}
