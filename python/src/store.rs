//! `sessiondir._native.Store`: a handle on one session directory.
//!
//! Every method that touches the disk or may wait for a lock releases the GIL
//! (`Python::allow_threads`) for exactly that part; converting data to and from Python objects
//! happens with the GIL held, before and after.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use sessiondir::{Dict, Durability, Expiry, SessionId};

use crate::checkout::Checkout;
use crate::convert;
use crate::errors::{self, not_a_record};
use crate::reports::{GcReport, SessionInfo, TidyReport};

/// A session directory. See the `sessiondir.Store` wrapper for the documented API.
#[pyclass(module = "sessiondir._native", frozen)]
pub struct Store {
    dir: PathBuf,
    settings: Settings,
    /// `None` once closed.
    inner: Mutex<Option<sessiondir::Store>>,
    /// Handles of the same directory with another lock timeout, for `checkout(timeout=...)`,
    /// by timeout in microseconds (opened once each).
    by_timeout: Mutex<HashMap<u128, sessiondir::Store>>,
}

#[derive(Clone)]
struct Settings {
    idle_expiry: Option<Duration>,
    lock_timeout: Duration,
    durability: Durability,
    max_session_size: Option<u64>,
    allow_network_fs: bool,
    create_if_missing: bool,
}

impl Settings {
    fn open(
        &self,
        dir: &PathBuf,
        lock_timeout: Duration,
    ) -> Result<sessiondir::Store, sessiondir::Error> {
        let mut b = sessiondir::Store::builder(dir)
            .lock_timeout(lock_timeout)
            .durability(self.durability)
            .allow_network_fs(self.allow_network_fs)
            .create_if_missing(self.create_if_missing);
        if let Some(ttl) = self.idle_expiry {
            b = b.idle_expiry(ttl);
        }
        if let Some(max) = self.max_session_size {
            b = b.max_session_size(max);
        }
        b.open()
    }
}

/// Seconds (non-negative, finite) → `Duration`.
pub(crate) fn seconds(what: &str, s: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(s).map_err(|_| {
        PyValueError::new_err(format!(
            "{what} must be a finite number of seconds >= 0, not {s}"
        ))
    })
}

/// A Unix timestamp (seconds, may be negative: long ago) → `Expiry::At`.
pub(crate) fn expiry_at(timestamp: f64) -> PyResult<Expiry> {
    if !timestamp.is_finite() {
        return Err(PyValueError::new_err(format!(
            "expiry time must be finite, not {timestamp}"
        )));
    }
    let at = if timestamp >= 0.0 {
        SystemTime::UNIX_EPOCH.checked_add(Duration::from_secs_f64(timestamp))
    } else {
        Some(SystemTime::UNIX_EPOCH)
    };
    Ok(at.map_or(Expiry::Never, Expiry::At))
}

/// A session id from Python: must be a `str`, then parsed (a malformed one is `InvalidId`).
pub(crate) fn parse_id(py: Python<'_>, id: &str) -> PyResult<SessionId> {
    SessionId::parse(id).map_err(|e| errors::to_py(py, &e))
}

impl Store {
    /// The open handle (a clone: an `Arc`), or `ValueError` once closed.
    fn handle(&self) -> PyResult<sessiondir::Store> {
        self.inner
            .lock()
            .map_err(|_| PyValueError::new_err("store handle poisoned"))?
            .clone()
            .ok_or_else(|| PyValueError::new_err(format!("store {} is closed", self.dir.display())))
    }

    fn handle_with_timeout(
        &self,
        py: Python<'_>,
        timeout: Duration,
    ) -> PyResult<sessiondir::Store> {
        let base = self.handle()?;
        if timeout == self.settings.lock_timeout {
            return Ok(base);
        }
        let key = timeout.as_micros();
        if let Some(store) = self
            .by_timeout
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(store);
        }
        let settings = self.settings.clone();
        let dir = self.dir.clone();
        let store = py
            .allow_threads(move || settings.open(&dir, timeout))
            .map_err(|e| errors::to_py(py, &e))?;
        if let Ok(mut m) = self.by_timeout.lock() {
            m.insert(key, store.clone());
        }
        Ok(store)
    }
}

#[pymethods]
impl Store {
    #[new]
    // One parameter per Python keyword argument of the constructor.
    #[allow(clippy::too_many_arguments)]
    #[pyo3(signature = (path, *, idle_expiry=None, lock_timeout=30.0, durability="none", max_session_size=None, allow_network_fs=false, create_if_missing=true))]
    fn new(
        py: Python<'_>,
        path: PathBuf,
        idle_expiry: Option<f64>,
        lock_timeout: f64,
        durability: &str,
        max_session_size: Option<u64>,
        allow_network_fs: bool,
        create_if_missing: bool,
    ) -> PyResult<Self> {
        let durability = match durability {
            "none" => Durability::None,
            "file_data" => Durability::FileData,
            "file_and_directory" => Durability::FileAndDirectory,
            other => {
                return Err(PyValueError::new_err(format!(
                    "durability must be 'none', 'file_data' or 'file_and_directory', not {other:?}"
                )));
            }
        };
        let settings = Settings {
            idle_expiry: idle_expiry.map(|s| seconds("idle_expiry", s)).transpose()?,
            lock_timeout: seconds("lock_timeout", lock_timeout)?,
            durability,
            max_session_size,
            allow_network_fs,
            create_if_missing,
        };
        let (s, dir) = (settings.clone(), path.clone());
        let store = py
            .allow_threads(move || s.open(&dir, s.lock_timeout))
            .map_err(|e| errors::to_py(py, &e))?;
        Ok(Store {
            dir: path,
            settings,
            inner: Mutex::new(Some(store)),
            by_timeout: Mutex::new(HashMap::new()),
        })
    }

    /// The store directory.
    #[getter]
    fn path(&self) -> PathBuf {
        self.dir.clone()
    }

    /// The default lock timeout, in seconds.
    #[getter]
    fn lock_timeout(&self) -> f64 {
        self.settings.lock_timeout.as_secs_f64()
    }

    /// Whether `close` was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.lock().map_or(true, |g| g.is_none())
    }

    /// The path of a session's file.
    fn session_path(&self, py: Python<'_>, id: &str) -> PyResult<PathBuf> {
        Ok(self.handle()?.session_path(&parse_id(py, id)?))
    }

    #[pyo3(signature = (data, *, expires_at=None, id=None))]
    fn create(
        &self,
        py: Python<'_>,
        data: &Bound<'_, PyAny>,
        expires_at: Option<f64>,
        id: Option<&str>,
    ) -> PyResult<String> {
        let dict = convert::dict_from_py(data)?;
        let expiry = expires_at.map(expiry_at).transpose()?;
        let id = id.map(|i| parse_id(py, i)).transpose()?;
        let default = self
            .settings
            .idle_expiry
            .map_or(Expiry::Never, Expiry::Idle);
        let store = self.handle()?;
        let made = py.allow_threads(move || match (id, expiry) {
            (Some(id), expiry) => store
                .create_with_id(&id, &dict, expiry.unwrap_or(default))
                .map(|()| id),
            (None, Some(expiry)) => store.create_with_expiry(&dict, expiry),
            (None, None) => store.create(&dict),
        });
        made.map(|id| id.as_str().to_owned())
            .map_err(|e| errors::to_py(py, &e))
    }

    fn load<'py>(&self, py: Python<'py>, id: &str) -> PyResult<Option<Bound<'py, PyDict>>> {
        let sid = parse_id(py, id)?;
        let store = self.handle()?;
        let loaded = py.allow_threads(|| store.load::<Dict>(&sid));
        match loaded.map_err(|e| errors::to_py(py, &e))? {
            None => Ok(None),
            Some(dict) => match convert::dict_to_py(py, &dict)? {
                Ok(d) => Ok(Some(d)),
                Err(what) => Err(not_a_record(py, id, &store.session_path(&sid), what)),
            },
        }
    }

    fn exists(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
        let sid = parse_id(py, id)?;
        let store = self.handle()?;
        py.allow_threads(|| store.exists(&sid))
            .map_err(|e| errors::to_py(py, &e))
    }

    fn info(&self, py: Python<'_>, id: &str) -> PyResult<Option<SessionInfo>> {
        let sid = parse_id(py, id)?;
        let store = self.handle()?;
        let info = py
            .allow_threads(|| store.info(&sid))
            .map_err(|e| errors::to_py(py, &e))?;
        Ok(info.map(SessionInfo::from))
    }

    #[pyo3(signature = (id, *, timeout=None))]
    fn checkout(&self, py: Python<'_>, id: &str, timeout: Option<f64>) -> PyResult<Checkout> {
        let sid = parse_id(py, id)?;
        let timeout = timeout.map(|t| seconds("timeout", t)).transpose()?;
        let (store, wait) = match timeout {
            Some(t) if t.is_zero() => (self.handle()?, false),
            Some(t) => (self.handle_with_timeout(py, t)?, true),
            None => (self.handle()?, true),
        };
        let path = store.session_path(&sid);
        let co = py
            .allow_threads(move || {
                if wait {
                    store.checkout::<Dict>(&sid)
                } else {
                    store.try_checkout::<Dict>(&sid)
                }
            })
            .map_err(|e| errors::to_py(py, &e))?;
        Checkout::new(py, co, path)
    }

    fn delete(&self, py: Python<'_>, id: &str) -> PyResult<bool> {
        let sid = parse_id(py, id)?;
        let store = self.handle()?;
        py.allow_threads(|| store.delete(&sid))
            .map_err(|e| errors::to_py(py, &e))
    }

    fn cycle_id(&self, py: Python<'_>, id: &str) -> PyResult<String> {
        let sid = parse_id(py, id)?;
        let store = self.handle()?;
        py.allow_threads(|| store.cycle_id(&sid))
            .map(|id| id.as_str().to_owned())
            .map_err(|e| errors::to_py(py, &e))
    }

    fn touch(&self, py: Python<'_>, id: &str) -> PyResult<SessionInfo> {
        let sid = parse_id(py, id)?;
        let store = self.handle()?;
        py.allow_threads(|| store.touch(&sid))
            .map(SessionInfo::from)
            .map_err(|e| errors::to_py(py, &e))
    }

    /// `expires_at`: a Unix timestamp, or `None` for never.
    #[pyo3(signature = (id, expires_at))]
    fn set_expiry(
        &self,
        py: Python<'_>,
        id: &str,
        expires_at: Option<f64>,
    ) -> PyResult<SessionInfo> {
        let sid = parse_id(py, id)?;
        let expiry = expires_at
            .map(expiry_at)
            .transpose()?
            .unwrap_or(Expiry::Never);
        let store = self.handle()?;
        py.allow_threads(|| store.set_expiry(&sid, expiry))
            .map(SessionInfo::from)
            .map_err(|e| errors::to_py(py, &e))
    }

    /// All session ids on disk (expired ones included), listed with the GIL released.
    fn ids(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        let store = self.handle()?;
        let listed: Result<Vec<String>, sessiondir::Error> = py.allow_threads(|| {
            store
                .ids()
                .map(|r| r.map(|id| id.as_str().to_owned()))
                .collect()
        });
        listed.map_err(|e| errors::to_py(py, &e))
    }

    /// The same ids as `ids`, streaming (constant memory); each step releases the GIL.
    fn iter_ids(&self) -> PyResult<IdIter> {
        Ok(IdIter {
            ids: Mutex::new(Walking::Ready(self.handle()?.ids())),
        })
    }

    fn delete_expired(&self, py: Python<'_>) -> PyResult<GcReport> {
        let store = self.handle()?;
        py.allow_threads(|| store.delete_expired())
            .map(GcReport::from)
            .map_err(|e| errors::to_py(py, &e))
    }

    fn delete_idle(&self, py: Python<'_>, seconds_idle: f64) -> PyResult<GcReport> {
        let idle = seconds("seconds", seconds_idle)?;
        let store = self.handle()?;
        py.allow_threads(|| store.delete_idle(idle))
            .map(GcReport::from)
            .map_err(|e| errors::to_py(py, &e))
    }

    fn tidy(&self, py: Python<'_>) -> PyResult<TidyReport> {
        let store = self.handle()?;
        py.allow_threads(|| store.tidy())
            .map(TidyReport::from)
            .map_err(|e| errors::to_py(py, &e))
    }

    /// Tidies and closes this handle; a second close does nothing and returns `None`.
    fn close(&self, py: Python<'_>) -> PyResult<Option<TidyReport>> {
        let taken = self
            .inner
            .lock()
            .map_err(|_| PyValueError::new_err("store handle poisoned"))?
            .take();
        if let Ok(mut m) = self.by_timeout.lock() {
            m.clear();
        }
        let Some(store) = taken else {
            return Ok(None);
        };
        py.allow_threads(|| store.close())
            .map(|r| Some(TidyReport::from(r)))
            .map_err(|e| errors::to_py(py, &e))
    }

    fn __repr__(&self) -> String {
        format!("<sessiondir.Store {:?}>", self.dir)
    }

    fn __reduce__(&self) -> PyResult<()> {
        Err(PyTypeError::new_err(
            "a sessiondir.Store cannot be pickled; open one per process",
        ))
    }
}

/// A streaming walk over a store's session ids (`Store.iter_ids`).
#[pyclass(module = "sessiondir._native", frozen)]
pub struct IdIter {
    ids: Mutex<Walking>,
}

/// Where an [`IdIter`] is.
enum Walking {
    Ready(sessiondir::SessionIds),
    /// A step runs with the GIL released (on another thread, if seen).
    Stepping,
    Exhausted,
}

#[pymethods]
impl IdIter {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let mut ids = {
            let mut g = self
                .ids
                .lock()
                .map_err(|_| PyRuntimeError::new_err("id walk poisoned"))?;
            match std::mem::replace(&mut *g, Walking::Stepping) {
                Walking::Ready(ids) => ids,
                Walking::Exhausted => {
                    *g = Walking::Exhausted;
                    return Ok(None);
                }
                Walking::Stepping => {
                    return Err(PyRuntimeError::new_err(
                        "this id walk is being advanced by another thread",
                    ));
                }
            }
        };
        let (ids, next) = py.allow_threads(move || {
            let next = ids.next();
            (ids, next)
        });
        let (state, result) = match next {
            None => (Walking::Exhausted, Ok(None)),
            Some(Ok(id)) => (Walking::Ready(ids), Ok(Some(id.as_str().to_owned()))),
            Some(Err(e)) => (Walking::Ready(ids), Err(errors::to_py(py, &e))),
        };
        if let Ok(mut g) = self.ids.lock() {
            *g = state;
        }
        result
    }
}
