//! The store check: a fenced store through each mount, threads checking one session out and in.

use std::path::Path;
use std::time::Duration;

use super::Check;
use crate::Store;
use crate::error::Error;
use crate::id::SessionId;

/// How long the store check's threads wait for a session before giving up (and stopping).
const STORE_LOCK_TIMEOUT: Duration = Duration::from_secs(10);

/// What the store check's threads did, and what the counter said afterwards.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StoreOutcome {
    attempted: u64,
    checked_in: u64,
    conflicts: u64,
    first_error: Option<String>,
    /// The counter read through each mount.
    counted: Result<(u64, u64), String>,
    /// Waits ended by a release event, by polling.
    woken: (u64, u64),
}

impl StoreOutcome {
    fn check(&self, what: &str) -> Check {
        const NAME: &str = "store";
        let counted = match &self.counted {
            Ok((x, y)) if x == y => *x,
            Ok((x, y)) => {
                return Check::fail(
                    NAME,
                    format!("{what}: the first mount reads {x}, the second {y}"),
                );
            }
            Err(e) => return Check::fail(NAME, format!("{what}: {e}")),
        };
        let failed = self.attempted - self.checked_in.min(self.attempted);
        let mut problems = Vec::new();
        if counted != self.checked_in {
            problems.push(format!(
                "{} check-ins succeeded but the counter says {counted}: {} updates lost",
                self.checked_in,
                self.checked_in.abs_diff(counted)
            ));
        }
        if failed > 0 {
            problems.push(format!(
                "{failed} of {} failed, {} of them refused as conflicts (fencing caught a \
                 second holder or an old version); first: {}",
                self.attempted,
                self.conflicts,
                self.first_error.as_deref().unwrap_or("?")
            ));
        }
        if !problems.is_empty() {
            return Check::fail(NAME, format!("{what}: {}", problems.join("; ")));
        }
        Check::pass(
            NAME,
            format!(
                "{what}: the counter is exactly {counted}; waits ended by a release event {} \
                 times, by polling {} times",
                self.woken.0, self.woken.1
            ),
        )
    }
}

pub(super) fn store_counter(mounts: &[&Path; 2], increments: u64) -> Check {
    const NAME: &str = "store";
    const THREADS: usize = 2;
    let open = |root: &Path, create: bool| {
        Store::builder(root)
            .allow_network_fs(true)
            .create_if_missing(create)
            .lock_timeout(STORE_LOCK_TIMEOUT)
            .open()
    };
    let setup = (|| -> Result<(Store, Store, SessionId), Error> {
        let a = open(&mounts[0].join("store"), true)?;
        let id = a.create(&0u64)?;
        let b = open(&mounts[1].join("store"), false)?;
        Ok((a, b, id))
    })();
    let (a, b, id) = match setup {
        Ok(x) => x,
        Err(e) => return Check::fail(NAME, e.to_string()),
    };
    let results: Vec<(u64, u64, Option<String>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = [&a, &b]
            .into_iter()
            .flat_map(|store| std::iter::repeat_n(store, THREADS))
            .map(|store| {
                scope.spawn(|| {
                    let (mut ok, mut conflicts, mut first_error) = (0u64, 0u64, None);
                    for _ in 0..increments {
                        let outcome = store.checkout::<u64>(&id).and_then(|mut s| {
                            *s.data_mut() += 1;
                            s.check_in().map_err(|e| e.into_parts().0)
                        });
                        match outcome {
                            Ok(()) => ok += 1,
                            Err(e) => {
                                let timed_out = matches!(e, Error::LockTimeout { .. });
                                if matches!(e, Error::Conflict { .. } | Error::LockLost { .. }) {
                                    conflicts += 1;
                                }
                                first_error.get_or_insert_with(|| e.to_string());
                                // A lock that never comes free would cost every attempt the
                                // whole timeout: one is enough to know.
                                if timed_out {
                                    break;
                                }
                            }
                        }
                    }
                    (ok, conflicts, first_error)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or((0, 0, Some("a probe thread panicked".into())))
            })
            .collect()
    });
    let read = |store: &Store| match store.load::<u64>(&id) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err("the session vanished".to_string()),
        Err(e) => Err(e.to_string()),
    };
    let counted = read(&a).and_then(|x| read(&b).map(|y| (x, y)));
    let woken = [a.lock_stats(), b.lock_stats()]
        .iter()
        .fold((0, 0), |(e, p), s| (e + s.event, p + s.poll));
    let outcome = StoreOutcome {
        attempted: increments.saturating_mul((2 * THREADS) as u64),
        checked_in: results.iter().map(|r| r.0).sum(),
        conflicts: results.iter().map(|r| r.1).sum(),
        first_error: results.iter().find_map(|r| r.2.clone()),
        counted,
        woken,
    };
    let fenced = if a.fencing() { "fenced" } else { "not fenced" };
    let _ = a.delete(&id);
    let stores = if mounts[0] == mounts[1] {
        "2 stores"
    } else {
        "one store through each mount"
    };
    outcome.check(&format!(
        "{stores}, {THREADS} threads each, {increments} check-ins per thread of one session \
         ({fenced})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::Verdict;

    #[test]
    fn the_store_check_fails_on_any_loss_error_or_disagreement() {
        let fine = StoreOutcome {
            attempted: 100,
            checked_in: 100,
            conflicts: 0,
            first_error: None,
            counted: Ok((100, 100)),
            woken: (90, 0),
        };
        assert_eq!(fine.check("w").verdict, Verdict::Pass);
        let lost = StoreOutcome {
            counted: Ok((50, 50)),
            ..fine.clone()
        };
        assert!(lost.check("w").detail.contains("50 updates lost"));
        let refused = StoreOutcome {
            checked_in: 60,
            conflicts: 40,
            first_error: Some("conflict".into()),
            counted: Ok((60, 60)),
            ..fine.clone()
        };
        let c = refused.check("w");
        assert!(
            c.detail.contains("40 of 100 failed, 40 of them refused"),
            "{c:?}"
        );
        let disagree = StoreOutcome {
            counted: Ok((100, 99)),
            ..fine.clone()
        };
        let unreadable = StoreOutcome {
            counted: Err("gone".into()),
            ..fine.clone()
        };
        for bad in [lost, refused, disagree, unreadable] {
            assert_eq!(bad.check("w").verdict, Verdict::Fail, "{bad:?}");
        }
    }
}
