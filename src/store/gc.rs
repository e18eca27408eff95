//! Garbage collection: deleting expired and idle sessions, never a checked-out or live one.
//!
//! Each candidate is judged twice. First from its header, read without a lock (cheap, and most
//! sessions stop here). Then, only for candidates, under a *non-blocking* lock attempt: a
//! session somebody holds is skipped (it is in use, so not idle, and its holder may be about
//! to extend it), and a session we lock is judged again from a fresh header read, because a
//! check-in or touch may have landed between the two reads. Only then are its session file and
//! lock file removed. Damaged files are counted and left in place.

use std::time::{Duration, Instant};

use super::handle::Store;
use super::locked::Locked;
use super::walk::Walk;
use crate::backend::{GcReport, Refused};
use crate::error::Error;
use crate::format::{self, HEADER_LEN, Header};
use crate::lock::Wait;

/// How often (in sessions scanned) [`Store::gc_with_progress`] reports.
const PROGRESS_EVERY: u64 = 1024;

/// Which sessions [`Store::gc`] deletes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GcPolicy {
    /// Delete sessions whose expiry time has passed.
    pub expired: bool,
    /// Delete sessions not checked in or touched for longer than this.
    pub idle_longer_than: Option<Duration>,
}

impl GcPolicy {
    fn condemns(&self, h: &Header, now_ms: u64) -> bool {
        let expired = self.expired && h.is_expired(now_ms);
        let idle = self
            .idle_longer_than
            .is_some_and(|d| now_ms.saturating_sub(h.modified_ms) > format::duration_ms(d));
        expired || idle
    }
}

impl GcReport {
    /// Counts a session that could not be judged or removed: refused (with its path) if the
    /// error is an unsafe path, damaged otherwise.
    fn count(&mut self, e: Error) {
        if Refused::record(&mut self.refused, e).is_err() {
            self.damaged += 1;
        }
    }
}

impl Store {
    /// Deletes every expired session that nobody holds (Django's `clear_expired`).
    pub fn delete_expired(&self) -> Result<GcReport, Error> {
        self.gc(GcPolicy {
            expired: true,
            idle_longer_than: None,
        })
    }

    /// Deletes every session not checked in or touched for longer than `idle` that nobody holds
    /// (the seeds' `delete_old_sessions(minutes)`).
    pub fn delete_idle(&self, idle: Duration) -> Result<GcReport, Error> {
        self.gc(GcPolicy {
            expired: false,
            idle_longer_than: Some(idle),
        })
    }

    /// One garbage-collection pass with `policy`, streaming over the store; then, whatever the
    /// policy, the forwarding records of [`cycle_id`](Self::cycle_id) that have expired (or
    /// are damaged) are removed ([`GcReport::forwards_removed`]).
    pub fn gc(&self, policy: GcPolicy) -> Result<GcReport, Error> {
        self.gc_with_progress(policy, |_| {})
    }

    /// Like [`gc`](Self::gc), calling `progress` with the running totals every 1,024 sessions
    /// scanned (for progress displays).
    pub fn gc_with_progress(
        &self,
        policy: GcPolicy,
        mut progress: impl FnMut(&GcReport),
    ) -> Result<GcReport, Error> {
        let start = Instant::now();
        let mut report = GcReport::default();
        // The last shard checked and whether its directories are still safe (see below).
        let mut checked: Option<(u32, bool)> = None;
        let mut walk = Walk::new(&self.shared.layout);
        while let Some(id) = walk.next_id() {
            // One unreadable directory entry must not stop the pass; a directory that is a
            // symlink now is not followed, and said.
            let id = match id {
                Ok(id) => id,
                Err(e) => {
                    report.count(e);
                    continue;
                }
            };
            report.scanned += 1;
            if report.scanned % PROGRESS_EVERY == 0 {
                report.elapsed = start.elapsed();
                progress(&report);
            }
            let now = format::now_ms();
            // A hint: judged again from a fresh header under the lock below.
            match walk.header_hint(&id) {
                Ok(Some(h)) if policy.condemns(&h, now) => {}
                Ok(_) => continue,
                Err(_) => {
                    report.damaged += 1;
                    continue;
                }
            }
            // Locking and removing go through the lock directory, which the walk did not
            // visit: replaced by a symlink since open, it would lead the removal outside the
            // store. Checked once per shard (the walk yields a shard's sessions together).
            let shard = self.shared.layout.shard_of(&id);
            let safe = match checked {
                Some((s, safe)) if s == shard => safe,
                _ => {
                    let layout = &self.shared.layout;
                    let safe = match layout.recheck_shard(shard, &self.shared.config) {
                        Ok(()) => true,
                        Err(e) => {
                            report.count(e);
                            false
                        }
                    };
                    checked = Some((shard, safe));
                    safe
                }
            };
            if !safe {
                continue; // its shard is refused (counted once, above)
            }
            let locked = match Locked::acquire(self, &id, Wait::No) {
                Ok(locked) => locked,
                Err(Error::Busy { .. }) => {
                    report.skipped_busy += 1;
                    continue;
                }
                Err(e) if e.is_gone() => continue,
                // A lock file that is a symlink is refused; anything else counts as damaged.
                Err(e) => {
                    report.count(e);
                    continue;
                }
            };
            // Judge again under the lock: a check-in or touch may have just revived it.
            let fresh = match format::read_header_held(&locked.data_path) {
                Ok(Some(h))
                    if policy.condemns(
                        &format::with_activity(&h, &locked.data_path),
                        format::now_ms(),
                    ) =>
                {
                    h
                }
                Ok(_) => continue,
                Err(_) => {
                    report.damaged += 1;
                    continue;
                }
            };
            match locked.remove() {
                Ok(true) => {
                    report.deleted += 1;
                    report.bytes_freed += HEADER_LEN as u64 + u64::from(fresh.payload_len);
                }
                Ok(false) => {}
                Err(_) => report.damaged += 1,
            }
        }
        // Forwarding records are no sessions (the walk does not yield them): one more listing
        // of each shard, whatever the policy, removes those past their minute.
        self.prune_forwards(&mut report);
        report.elapsed = start.elapsed();
        Ok(report)
    }
}
