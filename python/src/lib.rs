//! `sessiondir._native`: the PyO3 binding of the sessiondir library.
//!
//! A thin layer: every operation is the Rust library's; this crate converts arguments, releases
//! the GIL around I/O and lock waits, and maps errors to the exception classes of
//! `sessiondir/errors.py`. The documented Python API is the `sessiondir` package
//! (`python/sessiondir/__init__.py`), which wraps these classes; `docs/design.md`, "Python
//! binding", says what round-trips.

mod checkout;
mod convert;
mod errors;
mod reports;
mod store;

use pyo3::prelude::*;

/// The native module.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<store::Store>()?;
    m.add_class::<checkout::Checkout>()?;
    m.add_class::<store::IdIter>()?;
    m.add_class::<reports::SessionInfo>()?;
    m.add_class::<reports::GcReport>()?;
    m.add_class::<reports::TidyReport>()?;
    m.add("MAX_DEPTH", convert::MAX_DEPTH)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
