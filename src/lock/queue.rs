//! The in-process queue: threads of one process take turns per session in memory, so only one
//! of them at a time touches the session's file lock.
//!
//! Without it, N threads of one process waiting for a session would each hold an open lock
//! file, each retry `flock`, and each be woken by every release event. With it, the other
//! threads sleep on a condition variable and the holder wakes the next one directly when it
//! releases — no file-system round trip between threads of one process.
//!
//! This is a performance layer, not the exclusion mechanism: the file lock alone already
//! excludes every other open file description, so two stores opened separately in one process
//! are still mutually exclusive.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::id::SessionId;

struct Slot {
    held: bool,
    waiters: usize,
    turn: Arc<Condvar>,
    /// The last holder deleted the session (or moved it to a new id): the next taker is told.
    gone: bool,
}

/// Per-store table of sessions held by a thread of this process.
#[derive(Default)]
pub(crate) struct ThreadQueue {
    slots: Mutex<HashMap<SessionId, Slot>>,
}

/// Outcome of queueing for a session's local turn.
pub(crate) enum Turn {
    /// The turn is ours; `waited` says whether another thread of this process held it first,
    /// `gone` whether that thread deleted the session (or moved it to a new id) meanwhile.
    Taken { waited: bool, gone: bool },
    /// Another thread holds it and the caller did not want to wait (or the deadline passed).
    Refused,
}

impl ThreadQueue {
    fn table(&self) -> MutexGuard<'_, HashMap<SessionId, Slot>> {
        // The table stays consistent even if a holder panicked: every update is one statement.
        self.slots.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes `id`'s turn, waiting until `deadline` (`None`: do not wait at all).
    pub fn take(&self, id: &SessionId, deadline: Option<Instant>) -> Turn {
        let mut table = self.table();
        let turn = match table.entry(*id) {
            Entry::Vacant(v) => {
                v.insert(Slot {
                    held: true,
                    waiters: 0,
                    turn: Arc::new(Condvar::new()),
                    gone: false,
                });
                return Turn::Taken {
                    waited: false,
                    gone: false,
                };
            }
            Entry::Occupied(mut o) => {
                let slot = o.get_mut();
                if !slot.held {
                    slot.held = true;
                    let gone = std::mem::take(&mut slot.gone);
                    return Turn::Taken {
                        waited: false,
                        gone,
                    };
                }
                let Some(_) = deadline else {
                    return Turn::Refused;
                };
                slot.waiters += 1;
                Arc::clone(&slot.turn)
            }
        };
        let deadline = deadline.unwrap_or_else(Instant::now);
        loop {
            let now = Instant::now();
            let remaining = deadline.saturating_duration_since(now);
            let Some(slot) = table.get_mut(id) else {
                // Unreachable (a slot with waiters is never removed), but harmless: take it.
                table.insert(
                    *id,
                    Slot {
                        held: true,
                        waiters: 0,
                        turn,
                        gone: false,
                    },
                );
                return Turn::Taken {
                    waited: true,
                    gone: false,
                };
            };
            if !slot.held {
                slot.held = true;
                slot.waiters -= 1;
                let gone = std::mem::take(&mut slot.gone);
                return Turn::Taken { waited: true, gone };
            }
            if remaining.is_zero() {
                slot.waiters -= 1;
                return Turn::Refused;
            }
            table = turn
                .wait_timeout(table, remaining)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// Gives `id`'s turn back and wakes one waiting thread; `gone`: the session was deleted
    /// (or moved to a new id) by the holder, which the next taker will be told.
    pub fn give_back(&self, id: &SessionId, gone: bool) {
        let mut table = self.table();
        if let Entry::Occupied(mut o) = table.entry(*id) {
            if o.get().waiters == 0 {
                o.remove();
            } else {
                let slot = o.get_mut();
                slot.held = false;
                slot.gone = gone;
                slot.turn.notify_one();
            }
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.table().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn second_taker_waits_then_gets_the_turn() {
        let locks = Arc::new(ThreadQueue::default());
        let id = SessionId::generate().unwrap();
        assert!(matches!(
            locks.take(&id, None),
            Turn::Taken { waited: false, .. }
        ));
        assert!(matches!(locks.take(&id, None), Turn::Refused));
        let l2 = Arc::clone(&locks);
        let t = std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            matches!(
                l2.take(&id, Some(deadline)),
                Turn::Taken {
                    waited: true,
                    gone: true
                }
            )
        });
        // Wait until the thread is queued, then hand over.
        let start = Instant::now();
        while locks.table().get(&id).map(|s| s.waiters) != Some(1) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "waiter never queued"
            );
            std::thread::yield_now();
        }
        locks.give_back(&id, true);
        assert!(
            t.join().unwrap(),
            "the waiter is told the holder deleted the session"
        );
        locks.give_back(&id, false);
        assert_eq!(locks.len(), 0, "released slots are removed");
    }

    #[test]
    fn deadline_is_honoured() {
        let locks = ThreadQueue::default();
        let id = SessionId::generate().unwrap();
        let _ = locks.take(&id, None);
        let deadline = Instant::now() + Duration::from_millis(20);
        assert!(matches!(locks.take(&id, Some(deadline)), Turn::Refused));
        assert!(Instant::now() >= deadline);
        locks.give_back(&id, false);
        assert_eq!(locks.len(), 0);
    }
}
