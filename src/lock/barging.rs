//! Bounded barging: a process that keeps re-taking a contended session steps aside now and
//! then, so waiters in other processes get their turn.
//!
//! Neither `flock` nor the in-process queue hands a released lock to a waiter: they only wake
//! it, and the lock goes to whoever asks first. A process that releases a session and at once
//! checks it out again (the next request of the same user, a batch job, a benchmark loop) asks
//! before a woken waiter has even been scheduled, so it wins nearly every time and can starve
//! the others for as long as it keeps going. Letting it win is cheap — no context switch — and
//! the blocking-`flock` floor does the same; never letting it win (a pause after every
//! contended release) is fair but pays a wake-up per operation.
//!
//! The middle: a process may re-take a session it has just released under contention
//! [`STREAK`] times in a row; before the next one it pauses for [`PAUSE`], during which a woken
//! waiter takes the lock. A waiter therefore waits for at most about `STREAK` operations per
//! other contending process, and throughput keeps most of the barging gain. If nobody took the
//! lock during the pause, the contention is over and the session is forgotten. Uncontended
//! check-outs never pause; the table only holds sessions released under contention in the last
//! [`WINDOW`].

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::id::SessionId;

/// Consecutive re-takes of a contended session allowed before a pause.
pub(crate) const STREAK: u32 = 4;

/// How long the pause lets a woken waiter take the lock.
pub(crate) const PAUSE: Duration = Duration::from_micros(50);

/// A release older than this no longer counts: the waiters have had their chance.
const WINDOW: Duration = Duration::from_millis(2);

/// How a holding ended, as far as barging is concerned.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Holding {
    /// Nobody was seen waiting.
    Quiet,
    /// Taken at once although it had just been released under contention.
    Retaken,
    /// Taken after waiting for another holder.
    Waited,
}

/// What an acquisition should do before trying the lock.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Before {
    /// Go ahead; nothing is known about waiters.
    Go,
    /// Go ahead: a re-take within the allowed streak.
    Retake,
    /// Pause for [`PAUSE`] first.
    Pause,
}

#[derive(Clone, Copy)]
struct Recent {
    released: Instant,
    streak: u32,
}

/// Per-store table of sessions this process released under contention a moment ago.
#[derive(Default)]
pub(crate) struct Barging {
    recent: Mutex<HashMap<SessionId, Recent>>,
}

impl Barging {
    fn table(&self) -> MutexGuard<'_, HashMap<SessionId, Recent>> {
        // Every update is one statement: the table stays consistent even after a panic.
        self.recent.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Called before an acquisition tries the file lock.
    pub fn before(&self, id: &SessionId) -> Before {
        let mut table = self.table();
        let Some(recent) = table.get_mut(id) else {
            return Before::Go;
        };
        if recent.released.elapsed() >= WINDOW {
            table.remove(id);
            return Before::Go;
        }
        if recent.streak >= STREAK {
            recent.streak = 0;
            Before::Pause
        } else {
            recent.streak += 1;
            Before::Retake
        }
    }

    /// Called when a holding ends.
    pub fn after(&self, id: &SessionId, holding: Holding) {
        let mut table = self.table();
        match holding {
            Holding::Quiet => {
                if !table.is_empty() {
                    table.remove(id);
                }
            }
            Holding::Retaken | Holding::Waited => {
                if table.len() >= 1024 {
                    table.retain(|_, r| r.released.elapsed() < WINDOW);
                }
                let streak = match (holding, table.get(id)) {
                    (Holding::Retaken, Some(r)) => r.streak,
                    _ => 0,
                };
                table.insert(
                    *id,
                    Recent {
                        released: Instant::now(),
                        streak,
                    },
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_sessions_never_pause() {
        let c = Barging::default();
        let id = SessionId::generate().unwrap();
        for _ in 0..100 {
            assert_eq!(c.before(&id), Before::Go);
            c.after(&id, Holding::Quiet);
        }
    }

    #[test]
    fn a_streak_of_retakes_ends_in_a_pause_and_a_quiet_pause_forgets() {
        let c = Barging::default();
        let id = SessionId::generate().unwrap();
        assert_eq!(c.before(&id), Before::Go);
        c.after(&id, Holding::Waited);
        for _ in 0..STREAK {
            assert_eq!(c.before(&id), Before::Retake);
            c.after(&id, Holding::Retaken);
        }
        assert_eq!(c.before(&id), Before::Pause);
        // Nobody took it during the pause: the holding is quiet and the session forgotten.
        c.after(&id, Holding::Quiet);
        assert_eq!(c.before(&id), Before::Go);
    }

    #[test]
    fn waiting_again_restarts_the_streak() {
        let c = Barging::default();
        let id = SessionId::generate().unwrap();
        c.after(&id, Holding::Waited);
        assert_eq!(c.before(&id), Before::Retake);
        c.after(&id, Holding::Retaken);
        c.after(&id, Holding::Waited);
        for _ in 0..STREAK {
            assert_eq!(c.before(&id), Before::Retake);
            c.after(&id, Holding::Retaken);
        }
        assert_eq!(c.before(&id), Before::Pause);
    }
}
