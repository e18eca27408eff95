//! Plain result objects: a session's header ([`SessionInfo`]) and the reports of garbage
//! collection ([`GcReport`]) and tidying ([`TidyReport`]). Times are Unix timestamps in seconds
//! (floats), durations are seconds; a path a pass refused is a `(path, reason)` tuple of two
//! strings.

use std::time::{SystemTime, UNIX_EPOCH};

use pyo3::prelude::*;

/// The paths a pass refused (`sessiondir::Refused`), as `(path, reason)` tuples.
fn refused(refused: Vec<sessiondir::Refused>) -> Vec<(String, String)> {
    refused
        .into_iter()
        .map(|r| (r.path.display().to_string(), r.reason.to_owned()))
        .collect()
}

/// `refused` as Python writes a list of tuples of strings.
fn refused_repr(refused: &[(String, String)]) -> String {
    let items: Vec<String> = refused
        .iter()
        .map(|(path, reason)| format!("({path:?}, {reason:?})"))
        .collect();
    format!("[{}]", items.join(", "))
}

fn timestamp(t: SystemTime) -> f64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

/// A session's metadata, from its header.
#[pyclass(module = "sessiondir._native", frozen, get_all)]
pub struct SessionInfo {
    /// The session id.
    pub id: String,
    /// When it was created (Unix seconds).
    pub created: f64,
    /// When it was last written (Unix seconds).
    pub modified: f64,
    /// When it expires (Unix seconds), or `None` for never.
    pub expires: Option<f64>,
    /// Its sliding idle lifetime in seconds, if it has one.
    pub idle_ttl: Option<f64>,
    /// How many times it was written (1 after create).
    pub generation: u64,
    /// Whether it has expired.
    pub expired: bool,
}

impl From<sessiondir::SessionInfo> for SessionInfo {
    fn from(i: sessiondir::SessionInfo) -> Self {
        SessionInfo {
            id: i.id.as_str().to_owned(),
            created: timestamp(i.created),
            modified: timestamp(i.modified),
            expires: i.expires.map(timestamp),
            idle_ttl: i.idle_ttl.map(|d| d.as_secs_f64()),
            generation: i.generation,
            expired: i.is_expired(),
        }
    }
}

#[pymethods]
impl SessionInfo {
    fn __repr__(&self) -> String {
        format!(
            "SessionInfo(id={:?}, generation={}, expires={}, expired={})",
            self.id,
            self.generation,
            self.expires
                .map_or_else(|| "None".to_owned(), |e| e.to_string()),
            if self.expired { "True" } else { "False" }
        )
    }
}

/// What a garbage-collection pass (`delete_expired`, `delete_idle`) did.
#[pyclass(module = "sessiondir._native", frozen, get_all)]
pub struct GcReport {
    /// Sessions looked at.
    pub scanned: u64,
    /// Sessions deleted.
    pub deleted: u64,
    /// Condemned sessions left alone because someone held them.
    pub skipped_busy: u64,
    /// Damaged session files found (left in place).
    pub damaged: u64,
    /// Paths the pass would not go through, as `(path, reason)`: a shard directory replaced
    /// by a symlink (or opened to other users) since the store was opened. Nothing beneath
    /// them was looked at or deleted; an operator must look.
    pub refused: Vec<(String, String)>,
    /// Expired (or damaged) forwarding records of logins (`cycle_id`) removed.
    pub forwards_removed: u64,
    /// Bytes of session files deleted.
    pub bytes_freed: u64,
    /// How long the pass took, in seconds.
    pub elapsed: f64,
}

impl From<sessiondir::GcReport> for GcReport {
    fn from(r: sessiondir::GcReport) -> Self {
        GcReport {
            scanned: r.scanned,
            deleted: r.deleted,
            skipped_busy: r.skipped_busy,
            damaged: r.damaged,
            refused: refused(r.refused),
            forwards_removed: r.forwards_removed,
            bytes_freed: r.bytes_freed,
            elapsed: r.elapsed.as_secs_f64(),
        }
    }
}

#[pymethods]
impl GcReport {
    fn __repr__(&self) -> String {
        format!(
            "GcReport(scanned={}, deleted={}, skipped_busy={}, damaged={}, refused={}, forwards_removed={}, bytes_freed={})",
            self.scanned,
            self.deleted,
            self.skipped_busy,
            self.damaged,
            refused_repr(&self.refused),
            self.forwards_removed,
            self.bytes_freed
        )
    }
}

/// What a tidy pass (`tidy`, `close`) removed.
#[pyclass(module = "sessiondir._native", frozen, get_all)]
pub struct TidyReport {
    /// Temporary files of dead writers removed.
    pub temp_files_removed: u64,
    /// Lock files without a session file removed.
    pub orphan_locks_removed: u64,
    /// Spare files (the inodes check-ins swap in) without a session file removed.
    pub orphan_spares_removed: u64,
    /// Candidates skipped because their session was held.
    pub skipped_busy: u64,
    /// Bytes of temporary files removed.
    pub bytes_freed: u64,
    /// Entries that could not be judged or removed.
    pub failed: u64,
    /// Paths the pass refused to go through or remove, as `(path, reason)`: a shard directory
    /// replaced by a symlink since open, a symlink or directory planted where a lock,
    /// temporary or spare file belongs. Never followed nor removed; an operator must look.
    pub refused: Vec<(String, String)>,
}

impl From<sessiondir::TidyReport> for TidyReport {
    fn from(r: sessiondir::TidyReport) -> Self {
        TidyReport {
            temp_files_removed: r.temp_files_removed,
            orphan_locks_removed: r.orphan_locks_removed,
            orphan_spares_removed: r.orphan_spares_removed,
            skipped_busy: r.skipped_busy,
            bytes_freed: r.bytes_freed,
            failed: r.failed,
            refused: refused(r.refused),
        }
    }
}

#[pymethods]
impl TidyReport {
    fn __repr__(&self) -> String {
        format!(
            "TidyReport(temp_files_removed={}, orphan_locks_removed={}, orphan_spares_removed={}, skipped_busy={}, failed={}, refused={})",
            self.temp_files_removed,
            self.orphan_locks_removed,
            self.orphan_spares_removed,
            self.skipped_busy,
            self.failed,
            refused_repr(&self.refused)
        )
    }
}
