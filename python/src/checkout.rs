//! `sessiondir._native.Checkout`: a session held for exclusive use.
//!
//! Owns the Rust [`sessiondir::Checkout`] (the lock and the record) until it is checked in,
//! released or deleted. While an operation runs with the GIL released, the guard is taken out of
//! its slot, so that the slot's mutex is never held across a GIL release (a thread waiting for
//! the mutex with the GIL held would otherwise deadlock the one waiting for the GIL); a second
//! thread using the same check-out meanwhile gets `RuntimeError`. Dropping the object (garbage
//! collection, interpreter exit) releases the lock without writing, as dropping the Rust guard
//! does.

use std::path::PathBuf;
use std::sync::Mutex;

use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sessiondir::{Dict, Expiry};

use crate::convert;
use crate::errors::{self, not_a_record};
use crate::reports::SessionInfo;
use crate::store::expiry_at;

type Guard = sessiondir::Checkout<Dict>;

/// What the slot holds.
enum Slot {
    Held(Box<Guard>),
    /// Taken out by an operation in progress on another thread.
    Busy,
    /// Checked in, released or deleted.
    Done(&'static str),
}

/// A checked-out session. See the `sessiondir.Checkout` wrapper for the documented API.
#[pyclass(module = "sessiondir._native", frozen)]
pub struct Checkout {
    /// The session file (for messages).
    path: Mutex<PathBuf>,
    id: Mutex<String>,
    slot: Mutex<Slot>,
}

impl Checkout {
    pub(crate) fn new(_py: Python<'_>, guard: Guard, path: PathBuf) -> PyResult<Self> {
        Ok(Checkout {
            id: Mutex::new(guard.id().as_str().to_owned()),
            path: Mutex::new(path),
            slot: Mutex::new(Slot::Held(Box::new(guard))),
        })
    }

    fn id_string(&self) -> String {
        self.id.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Takes the guard out of its slot (leaving `Busy`).
    fn take(&self) -> PyResult<Box<Guard>> {
        let mut slot = self
            .slot
            .lock()
            .map_err(|_| PyRuntimeError::new_err("check-out poisoned"))?;
        match std::mem::replace(&mut *slot, Slot::Busy) {
            Slot::Held(g) => Ok(g),
            Slot::Busy => Err(PyRuntimeError::new_err(format!(
                "check-out of session {} is in use by another thread",
                self.id_string()
            ))),
            Slot::Done(how) => {
                *slot = Slot::Done(how);
                Err(PyValueError::new_err(format!(
                    "check-out of session {} is over (it was {how})",
                    self.id_string()
                )))
            }
        }
    }

    fn put(&self, new: Slot) {
        if let Ok(mut slot) = self.slot.lock() {
            *slot = new;
        }
    }

    /// Runs `f` on the guard with the GIL released and puts the guard back.
    fn with_guard<R: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&mut Guard) -> R + Send,
    ) -> PyResult<R> {
        let mut guard = self.take()?;
        let (guard, r) = py.allow_threads(move || {
            let r = f(&mut guard);
            (guard, r)
        });
        self.put(Slot::Held(guard));
        Ok(r)
    }

    /// Runs `f` on the guard without releasing the GIL (no I/O) and puts it back.
    fn peek<R>(&self, f: impl FnOnce(&mut Guard) -> R) -> PyResult<R> {
        let mut guard = self.take()?;
        let r = f(&mut guard);
        self.put(Slot::Held(guard));
        Ok(r)
    }
}

#[pymethods]
impl Checkout {
    /// The session id (a new one after `cycle_id`).
    #[getter]
    fn id(&self) -> String {
        self.id_string()
    }

    /// Whether the session is still held.
    #[getter]
    fn held(&self) -> bool {
        self.slot
            .lock()
            .is_ok_and(|s| matches!(*s, Slot::Held(_) | Slot::Busy))
    }

    /// The data as checked out (a new dict on every call).
    fn data<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let converted = self.peek(|g| convert::dict_to_py(py, g.data()))??;
        converted.map_err(|what| {
            let path = self.path.lock().map(|p| p.clone()).unwrap_or_default();
            not_a_record(py, &self.id_string(), &path, what)
        })
    }

    /// The header as of check-out or the last save.
    fn info(&self) -> PyResult<SessionInfo> {
        self.peek(|g| SessionInfo::from(g.info()))
    }

    /// Changes the expiry rule (a Unix timestamp, or `None` for never) for the next write.
    #[pyo3(signature = (expires_at))]
    fn set_expiry(&self, expires_at: Option<f64>) -> PyResult<()> {
        let expiry = expires_at
            .map(expiry_at)
            .transpose()?
            .unwrap_or(Expiry::Never);
        self.peek(|g| g.set_expiry(expiry))
    }

    /// Gives the session a sliding idle lifetime of `seconds` for the next write.
    fn set_idle_expiry(&self, seconds: f64) -> PyResult<()> {
        let ttl = crate::store::seconds("seconds", seconds)?;
        self.peek(|g| g.set_expiry(Expiry::Idle(ttl)))
    }

    /// Writes `data` atomically and keeps the session checked out.
    fn save(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let dict = convert::dict_from_py(data)?;
        self.with_guard(py, move |g| {
            *g.data_mut() = dict;
            g.save()
        })?
        .map_err(|e| errors::to_py(py, &e))
    }

    /// Writes `data` atomically and releases the session. On failure the session stays
    /// checked out (release it, or retry).
    fn check_in(&self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let dict = convert::dict_from_py(data)?;
        let mut guard = self.take()?;
        *guard.data_mut() = dict;
        match py.allow_threads(move || guard.check_in()) {
            Ok(()) => {
                self.put(Slot::Done("checked in"));
                Ok(())
            }
            Err(failed) => {
                let (error, guard) = failed.into_parts();
                self.put(Slot::Held(Box::new(guard)));
                Err(errors::to_py(py, &error))
            }
        }
    }

    /// Releases the session without writing. Does nothing if it is already over.
    fn release(&self, py: Python<'_>) -> PyResult<()> {
        let taken = {
            let mut slot = self
                .slot
                .lock()
                .map_err(|_| PyRuntimeError::new_err("check-out poisoned"))?;
            match std::mem::replace(&mut *slot, Slot::Done("released")) {
                Slot::Held(g) => Some(g),
                other => {
                    *slot = other;
                    None
                }
            }
        };
        if let Some(guard) = taken {
            py.allow_threads(move || guard.release());
        }
        Ok(())
    }

    /// Deletes the session (and ends the check-out).
    fn delete(&self, py: Python<'_>) -> PyResult<()> {
        let guard = self.take()?;
        let result = py.allow_threads(move || guard.delete());
        self.put(Slot::Done("deleted"));
        result.map_err(|e| errors::to_py(py, &e))
    }

    /// Moves the session, as last written, to a new id and keeps it checked out; returns the
    /// new id.
    fn cycle_id(&self, py: Python<'_>) -> PyResult<String> {
        let result = self.with_guard(py, |g| {
            let r = g.cycle_id();
            (r, g.id().as_str().to_owned())
        })?;
        let (result, now) = result;
        if let Ok(mut id) = self.id.lock() {
            *id = now.clone();
        }
        result.map_err(|e| errors::to_py(py, &e))?;
        Ok(now)
    }

    fn __repr__(&self) -> String {
        let state = match self.slot.lock().as_deref() {
            Ok(Slot::Held(_)) | Ok(Slot::Busy) => "held",
            Ok(Slot::Done(how)) => how,
            Err(_) => "poisoned",
        };
        format!("<sessiondir.Checkout {} {state}>", self.id_string())
    }
}
