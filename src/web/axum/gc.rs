//! [`GcTask`]: expired sessions removed on an interval by a Tokio task of the application, so
//! that no cron job is needed.

use std::fmt;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

use crate::{Backend, Error, GcReport};

/// What one pass of a [`GcTask`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcPass {
    /// The expired sessions' pass ([`Backend::delete_expired`]: held sessions are skipped,
    /// never waited for).
    pub sessions: GcReport,
    /// Expired forwarding records removed (the same as `sessions.forwards_removed`: gc
    /// removes them, see [`GcReport::forwards_removed`]).
    pub forwards_removed: u64,
}

/// A Tokio task that deletes expired sessions (and expired forwarding records) every
/// `interval`, the first time at once, and logs each pass's report through
/// [`tracing`](https://docs.rs/tracing) (target `sessiondir::gc`: `info` when it removed or
/// found damaged something, `debug` otherwise, `warn` when the pass failed). The pass runs on
/// Tokio's blocking pool, never on an executor thread.
///
/// It stops with the application: when this handle is dropped (keep it alive beside
/// `axum::serve`), when [`stop`](Self::stop) is called, or when the runtime shuts down. A
/// pass cut short by stopping leaves nothing half-done: gc deletes one session at a time,
/// each under its lock.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use sessiondir::axum::{GcTask, SessionLayer};
/// use sessiondir::{Dict, Store};
///
/// let store = Store::open("/var/lib/myapp/sessions")?;
/// let _gc = GcTask::spawn(store.clone(), Duration::from_secs(600));
/// let app = axum::Router::new().layer(SessionLayer::<Dict>::new(store));
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// axum::serve(listener, app).await?; // `_gc` lives as long as the server
/// # Ok(())
/// # }
/// ```
///
/// Several worker processes on one store may each run one: gc skips sessions another pass
/// holds, so two passes never delete one session twice (the totals split between them).
pub struct GcTask {
    handle: Option<JoinHandle<()>>,
}

impl GcTask {
    /// Spawns the task on the current Tokio runtime.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime (as `tokio::spawn` does): call it from the application's async
    /// `main`.
    pub fn spawn<B: Backend>(store: B, interval: Duration) -> GcTask {
        GcTask::spawn_with(store, interval, |_| {})
    }

    /// Like [`spawn`](Self::spawn), and also hands each pass's outcome to `on_pass` (for
    /// metrics, say), after logging it.
    ///
    /// # Panics
    ///
    /// Outside a Tokio runtime.
    pub fn spawn_with<B, F>(store: B, interval: Duration, mut on_pass: F) -> GcTask
    where
        B: Backend,
        F: FnMut(&Result<GcPass, Error>) + Send + 'static,
    {
        let handle = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(interval.max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let store = store.clone();
                match tokio::task::spawn_blocking(move || pass(&store)).await {
                    Ok(outcome) => {
                        log(&outcome);
                        on_pass(&outcome);
                    }
                    // The pass panicked, or the runtime is shutting down (then this task ends
                    // at its next await).
                    Err(e) => {
                        tracing::warn!(target: "sessiondir::gc", error = %e, "session gc pass did not finish")
                    }
                }
            }
        });
        GcTask {
            handle: Some(handle),
        }
    }

    /// Stops the task and waits until it has ended (a pass running on the blocking pool
    /// finishes on its own; its outcome is not reported).
    pub async fn stop(mut self) {
        if let Some(handle) = self.handle.take() {
            handle.abort();
            let _ = handle.await;
        }
    }
}

impl Drop for GcTask {
    /// Stops the task (without waiting for it).
    fn drop(&mut self) {
        if let Some(handle) = &self.handle {
            handle.abort();
        }
    }
}

impl fmt::Debug for GcTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GcTask")
            .field(
                "running",
                &self.handle.as_ref().is_some_and(|h| !h.is_finished()),
            )
            .finish()
    }
}

/// One pass: expired sessions, then expired forwarding records (gc removes both).
fn pass<B: Backend>(store: &B) -> Result<GcPass, Error> {
    let sessions = store.delete_expired()?;
    Ok(GcPass {
        forwards_removed: sessions.forwards_removed,
        sessions,
    })
}

fn log(outcome: &Result<GcPass, Error>) {
    match outcome {
        Ok(p) => {
            let r = &p.sessions;
            let elapsed_ms = u64::try_from(r.elapsed.as_millis()).unwrap_or(u64::MAX);
            macro_rules! report {
                ($level:ident) => {
                    tracing::$level!(
                        target: "sessiondir::gc",
                        scanned = r.scanned,
                        deleted = r.deleted,
                        skipped_busy = r.skipped_busy,
                        damaged = r.damaged,
                        bytes_freed = r.bytes_freed,
                        forwards_removed = p.forwards_removed,
                        elapsed_ms,
                        "session gc pass"
                    )
                };
            }
            if r.deleted > 0 || r.damaged > 0 || p.forwards_removed > 0 {
                report!(info);
            } else {
                report!(debug);
            }
        }
        Err(e) => tracing::warn!(target: "sessiondir::gc", error = %e, "session gc pass failed"),
    }
}
