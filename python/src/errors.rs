//! Rust [`sessiondir::Error`] → Python exception, mapped in one place.
//!
//! The exception classes live in Python (`sessiondir/errors.py`), so that they can inherit from
//! both `sessiondir.Error` and the builtin a Python caller already catches (`LookupError`,
//! `ValueError`, `TimeoutError`, `OSError`). Each variant maps to exactly one class; the message
//! is the Rust error's, which names the session id or the path; the id, path and OS error number
//! are also attributes.

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sessiondir::Error;

/// The Python exception class for `e`, by its name in `sessiondir.errors`.
fn class_name(e: &Error) -> &'static str {
    match e {
        Error::InvalidId { .. } => "InvalidId",
        Error::NotFound { .. } => "NotFound",
        Error::Expired { .. } => "Expired",
        Error::Deleted { .. } => "Deleted",
        Error::AlreadyExists { .. } => "AlreadyExists",
        Error::Busy { .. } => "Busy",
        Error::LockTimeout { .. } => "LockTimeout",
        Error::LockLost { .. } => "LockLost",
        Error::Conflict { .. } => "Conflict",
        Error::Corrupt { .. } | Error::Decode { .. } => "Corrupt",
        Error::UnsupportedVersion { .. } => "UnsupportedVersion",
        Error::TooLarge { .. } => "TooLarge",
        Error::Encode { .. } => "EncodeError",
        Error::UnsafePath { .. } | Error::UnsupportedFileSystem { .. } | Error::Config { .. } => {
            "ConfigError"
        }
        Error::Io { .. } | Error::Random { .. } => "IoError",
        _ => "Error",
    }
}

/// Builds the Python exception for a store error (the GIL must be held).
pub(crate) fn to_py(py: Python<'_>, e: &Error) -> PyErr {
    match build(py, e) {
        Ok(err) => err,
        // `sessiondir.errors` missing or broken: still say what happened.
        Err(import_failure) => {
            let err = PyTypeError::new_err(e.to_string());
            err.set_cause(py, Some(import_failure));
            err
        }
    }
}

fn build(py: Python<'_>, e: &Error) -> PyResult<PyErr> {
    let module = py.import("sessiondir.errors")?;
    let class = module.getattr(class_name(e))?;
    let kwargs = PyDict::new(py);
    if let Some(id) = e.session_id() {
        kwargs.set_item("id", id.as_str())?;
    }
    match e {
        Error::InvalidId { input, .. } => kwargs.set_item("id", input)?,
        Error::AlreadyExists { id } => kwargs.set_item("id", id.as_str())?,
        Error::LockTimeout { waited, .. } => kwargs.set_item("waited", waited.as_secs_f64())?,
        Error::Io { path, source, op } => {
            kwargs.set_item("path", path)?;
            kwargs.set_item("op", *op)?;
            kwargs.set_item("errno", source.raw_os_error())?;
        }
        Error::Random { source } => kwargs.set_item("errno", source.raw_os_error())?,
        Error::LockLost { path, .. }
        | Error::Corrupt { path, .. }
        | Error::Decode { path, .. }
        | Error::UnsupportedVersion { path, .. }
        | Error::TooLarge { path, .. }
        | Error::Encode { path, .. }
        | Error::UnsafePath { path, .. }
        | Error::UnsupportedFileSystem { path, .. }
        | Error::Config { path, .. } => kwargs.set_item("path", path)?,
        _ => {}
    }
    let exc = class.call((e.to_string(),), Some(&kwargs))?;
    Ok(PyErr::from_value(exc))
}

/// A session's data that is not a JSON record (written by Rust with native values, or damaged
/// JSON): `sessiondir.errors.Corrupt`, naming the session and the entry.
pub(crate) fn not_a_record(
    py: Python<'_>,
    id: &str,
    path: &std::path::Path,
    what: String,
) -> PyErr {
    let built = (|| -> PyResult<PyErr> {
        let class = py.import("sessiondir.errors")?.getattr("Corrupt")?;
        let kwargs = PyDict::new(py);
        kwargs.set_item("id", id)?;
        kwargs.set_item("path", path)?;
        let message = format!(
            "session {id} ({}) is not a JSON record: {what}",
            path.display()
        );
        Ok(PyErr::from_value(class.call((message,), Some(&kwargs))?))
    })();
    built.unwrap_or_else(|e| e)
}
