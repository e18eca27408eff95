//! Bounded waits. A condition that never holds fails the test, naming what it waited for,
//! instead of hanging it.

use std::future::Future;
use std::time::{Duration, Instant};

/// Waits until `cond` holds, polling every millisecond, failing the test after `timeout`.
pub fn wait_until(timeout: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The async form: awaits `condition` until it holds, awaiting `pause` between two polls;
/// panics naming `what` after `limit`. Returns how long it waited. (The runtime's sleep is the
/// caller's, so that this file needs no runtime.)
pub async fn wait_until_async<F, Fut, P, PFut>(
    what: &str,
    limit: Duration,
    mut condition: F,
    mut pause: P,
) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
    P: FnMut() -> PFut,
    PFut: Future<Output = ()>,
{
    let start = Instant::now();
    loop {
        if condition().await {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting until {what}"
        );
        pause().await;
    }
}
