//! The end of a torture run: with every worker gone, replay the journals and check the store.
//!
//! * **Nothing acknowledged is lost.** For each pool session and worker slot, the counter on
//!   disk is at least the number of increments acknowledged to that slot, and exceeds it by at
//!   most the increments in flight when one of the slot's incarnations was killed. Owned
//!   sessions hold exactly their last acknowledged value (unless the killed worker's last,
//!   unacknowledged op touched them); deleted ones stay deleted.
//! * **Nothing is corrupt**: every session decodes (a check-out reads and verifies the file).
//! * **Nothing is still locked**: every session can be checked out at once (`try_checkout`).
//! * **Nothing is left over**: after one tidy pass, no temporary file remains, and every spare
//!   file (`.<id>.spare`, the inode a check-in overwrites and swaps in) belongs to a session.
//!   Spares whose header is ahead of their live session's (a writer killed between filling the
//!   spare and swapping it in) are counted: the checks above prove none of them became live.
//! * **The store still works**: reopened, it creates, checks out, checks in, loads and deletes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use serde::Serialize;

use sessiondir::{Dict, Error, Expiry, SessionId, Store};

use super::journal::{self, Event, Op};
use super::{Incarnation, slot_key};
use crate::Failure;

/// What the verifier found; `problems` is empty exactly when the run passed.
#[derive(Debug, Default, Serialize)]
pub struct Findings {
    pub sessions_checked: u64,
    pub ops_acknowledged: u64,
    pub ops_by_kind: BTreeMap<&'static str, u64>,
    pub in_flight_at_kill: u64,
    pub in_flight_by_kind: BTreeMap<&'static str, u64>,
    pub pool_increments_acknowledged: u64,
    pub pool_increments_landed: u64,
    pub temp_files_before_tidy: u64,
    pub temp_files_removed_by_tidy: u64,
    pub temp_files_removed_by_workers_tidy: u64,
    pub lock_files_removed_by_workers_tidy: u64,
    pub leftover_temp_files: u64,
    /// Spare files at the end, after tidy.
    pub spares: u64,
    /// Spares holding a version ahead of their session's: written by a writer killed before
    /// its swap, never live.
    pub spares_ahead_of_live: u64,
    /// Spares without a session after tidy (a problem).
    pub orphan_spares: u64,
    pub still_locked: u64,
    pub corrupt: u64,
    pub lost_updates: u64,
    pub phantom_updates: u64,
    pub resurrected: u64,
    pub orphans: u64,
    pub orphans_allowed: u64,
    pub unexpected_errors: u64,
    pub reopen_ok: bool,
    pub problems: Vec<String>,
    /// Sessions already counted as corrupt or still locked (not also as lost).
    #[serde(skip)]
    unreadable: HashSet<String>,
}

impl Findings {
    fn problem(&mut self, p: String) {
        // The first few tell the story; the counters carry the rest.
        if self.problems.len() < 20 {
            self.problems.push(p);
        }
    }
}

/// Where an owned session stands after replaying its owner's journal.
struct Owned {
    brief: bool,
    v: i64,
    /// False when the owner was killed during an op on it: it may be in either state.
    certain: bool,
}

pub fn verify(
    root: &Path,
    store_dir: &Path,
    pool: &[SessionId],
    incarnations: &[Incarnation],
) -> Result<Findings, Failure> {
    let mut f = Findings {
        temp_files_before_tidy: count_temp_files(store_dir)?,
        ..Findings::default()
    };
    let store = Store::builder(store_dir).create_if_missing(false).open()?;
    let data = check_out_everything(&store, &mut f);
    let tidy = store.tidy()?;
    f.temp_files_removed_by_tidy = tidy.temp_files_removed;
    f.leftover_temp_files = count_temp_files(store_dir)?;
    if f.leftover_temp_files > 0 {
        f.problem(format!(
            "{} temporary files left after tidy",
            f.leftover_temp_files
        ));
    }

    count_spares(&store, store_dir, &mut f)?;

    let mut r = Replay::default();
    for inc in incarnations {
        let path = super::journal_path(root, inc.slot, inc.number);
        let events = journal::read(&path).map_err(Failure::Verification)?;
        r.incarnation(&mut f, inc, &events);
    }
    check_pool(&mut f, &r, pool, &data);
    check_owned(&mut f, &r, &data);
    let pool_ids: HashSet<&str> = pool.iter().map(SessionId::as_str).collect();
    f.orphans = data
        .keys()
        .filter(|id| !pool_ids.contains(id.as_str()) && !r.owned.contains_key(*id))
        .count() as u64;
    if f.orphans > f.orphans_allowed {
        f.problem(format!(
            "{} sessions nobody acknowledged, but only {} creates or cycles were in flight at a kill",
            f.orphans, f.orphans_allowed
        ));
    }
    if f.unexpected_errors > 0 {
        f.problem(format!(
            "{} operations failed unexpectedly (see the journals)",
            f.unexpected_errors
        ));
    }
    f.reopen_ok = match reopen_and_use(store_dir) {
        Ok(()) => true,
        Err(e) => {
            f.problem(format!("the store does not work after the run: {e}"));
            false
        }
    };
    store.close()?;
    Ok(f)
}

/// Checks out every session with `try_checkout`: none may be held or damaged. Returns the
/// data of every live session, by id.
fn check_out_everything(store: &Store, f: &mut Findings) -> HashMap<String, Dict> {
    let mut data = HashMap::new();
    for id in store.ids() {
        let id = match id {
            Ok(id) => id,
            Err(e) => {
                f.corrupt += 1;
                f.problem(format!("unreadable entry: {e}"));
                continue;
            }
        };
        f.sessions_checked += 1;
        match store.try_checkout::<Dict>(&id) {
            Ok(co) => {
                data.insert(id.as_str().to_string(), co.into_data());
            }
            // Brief sessions expire; that is what they are for.
            Err(e) if e.is_gone() => {}
            Err(e @ Error::Busy { .. }) => {
                f.unreadable.insert(id.as_str().to_string());
                f.still_locked += 1;
                f.problem(format!("still locked with every worker gone: {e}"));
            }
            Err(e) => {
                f.unreadable.insert(id.as_str().to_string());
                f.corrupt += 1;
                f.problem(format!("cannot check out {}: {e}", id.as_str()));
            }
        }
    }
    data
}

/// Per pool session and worker slot: what the journals say about that slot's counter.
#[derive(Default)]
struct SlotCounter {
    /// Increments acknowledged.
    acked: u64,
    /// Increments begun but never acknowledged because their worker was killed.
    in_flight: u64,
    /// The largest value acknowledged.
    max_value: i64,
}

/// The journals replayed, incarnation after incarnation.
#[derive(Default)]
struct Replay {
    pool: HashMap<(usize, usize), SlotCounter>,
    owned: HashMap<String, Owned>,
    deleted: HashSet<String>,
}

impl Replay {
    fn incarnation(&mut self, f: &mut Findings, inc: &Incarnation, events: &[Event]) {
        let mut pending: Option<(Op, &str)> = None;
        for event in events {
            match event {
                Event::Begin { op, target } => pending = Some((*op, target)),
                Event::Unexpected {
                    op,
                    target,
                    message,
                } => {
                    f.unexpected_errors += 1;
                    f.problem(format!(
                        "worker {}.{}: {} {target}: {message}",
                        inc.slot,
                        inc.number,
                        op.name()
                    ));
                    pending = None;
                }
                Event::Ack { op, target, detail } => {
                    pending = None;
                    f.ops_acknowledged += 1;
                    *f.ops_by_kind.entry(op.name()).or_default() += 1;
                    self.apply(f, inc.slot, *op, target, detail);
                }
            }
        }
        let Some((op, target)) = pending else {
            return;
        };
        f.in_flight_at_kill += 1;
        *f.in_flight_by_kind.entry(op.name()).or_default() += 1;
        if !inc.killed {
            f.problem(format!(
                "worker {}.{} stopped normally with {} {target} unacknowledged",
                inc.slot,
                inc.number,
                op.name()
            ));
        }
        // The op may or may not have happened: its session may be in either state.
        if let Some(o) = self.owned.get_mut(target) {
            o.certain = false;
        }
        match op {
            Op::Create | Op::Cycle => f.orphans_allowed += 1,
            Op::PoolIncrement => {
                if let Some(i) = pool_index(target) {
                    self.pool.entry((i, inc.slot)).or_default().in_flight += 1;
                }
            }
            _ => {}
        }
    }

    fn apply(&mut self, f: &mut Findings, slot: usize, op: Op, target: &str, detail: &str) {
        match op {
            Op::PoolIncrement => {
                f.pool_increments_acknowledged += 1;
                let (Some(i), Ok(value)) = (pool_index(target), detail.parse::<i64>()) else {
                    f.problem(format!("unreadable pool acknowledgement {target} {detail}"));
                    return;
                };
                let c = self.pool.entry((i, slot)).or_default();
                // One slot's incarnations run one after another and only that slot changes
                // its counter, so every acknowledged value must be larger than the last.
                if value <= c.max_value {
                    f.lost_updates += 1;
                    f.problem(format!(
                        "pool {i} slot {slot}: acknowledged {value} after {}",
                        c.max_value
                    ));
                }
                c.acked += 1;
                c.max_value = c.max_value.max(value);
            }
            Op::Create => {
                let mut parts = detail.split(' ');
                let id = parts.next().unwrap_or_default().to_string();
                let brief = parts.next() == Some("brief");
                let owned = Owned {
                    brief,
                    v: 0,
                    certain: true,
                };
                self.owned.insert(id, owned);
            }
            Op::Increment => {
                if let (Some(o), Ok(v)) = (self.owned.get_mut(target), detail.parse()) {
                    o.v = v;
                }
            }
            Op::Cycle => {
                if let Some(o) = self.owned.remove(target) {
                    self.owned.insert(detail.to_string(), o);
                }
            }
            Op::Delete => {
                self.owned.remove(target);
                self.deleted.insert(target.to_string());
            }
            Op::Gone => {
                self.owned.remove(target);
            }
            Op::Tidy => {
                let mut n = detail.split(' ').map(|n| n.parse::<u64>().unwrap_or(0));
                f.temp_files_removed_by_workers_tidy += n.next().unwrap_or(0);
                f.lock_files_removed_by_workers_tidy += n.next().unwrap_or(0);
            }
            _ => {}
        }
    }
}

/// Every slot's counter in every pool session: at least what was acknowledged, at most that
/// plus the increments in flight at kills.
fn check_pool(f: &mut Findings, r: &Replay, pool: &[SessionId], data: &HashMap<String, Dict>) {
    for (i, id) in pool.iter().enumerate() {
        let Some(d) = data.get(id.as_str()) else {
            if f.unreadable.contains(id.as_str()) {
                continue;
            }
            f.lost_updates += 1;
            f.problem(format!("pool session {i} ({}) is gone", id.as_str()));
            continue;
        };
        // A counter no journal knows of was never acknowledged nor in flight.
        for (key, value) in d.iter() {
            let slot = key.strip_prefix('w').and_then(|n| n.parse::<usize>().ok());
            let n = value.as_i64().unwrap_or(0);
            if let Some(slot) = slot
                && n != 0
                && !r.pool.contains_key(&(i, slot))
            {
                f.phantom_updates += n.unsigned_abs();
                f.problem(format!(
                    "pool {i} slot {slot}: {n} on disk, none acknowledged"
                ));
            }
        }
        for ((_, slot), c) in r.pool.iter().filter(|((p, _), _)| *p == i) {
            let on_disk = d.get_i64(&slot_key(*slot)).unwrap_or(0);
            let landed = u64::try_from(on_disk).unwrap_or(0);
            f.pool_increments_landed += landed;
            if landed < c.acked || on_disk < c.max_value {
                f.lost_updates += c.acked.saturating_sub(landed).max(1);
                f.problem(format!(
                    "pool {i} slot {slot}: {on_disk} on disk, {} increments acknowledged (last {})",
                    c.acked, c.max_value
                ));
            } else if landed > c.acked + c.in_flight {
                f.phantom_updates += landed - c.acked - c.in_flight;
                f.problem(format!(
                    "pool {i} slot {slot}: {on_disk} on disk, but {} acknowledged and {} in flight",
                    c.acked, c.in_flight
                ));
            }
        }
    }
}

/// Owned sessions hold exactly their last acknowledged value; deleted ones stay deleted.
fn check_owned(f: &mut Findings, r: &Replay, data: &HashMap<String, Dict>) {
    for (id, o) in &r.owned {
        match data.get(id) {
            _ if f.unreadable.contains(id) => {}
            Some(d) if o.certain && d.get_i64("v") != Some(o.v) => {
                f.lost_updates += 1;
                f.problem(format!(
                    "session {id}: v = {:?} on disk, {} acknowledged",
                    d.get_i64("v"),
                    o.v
                ));
            }
            // A brief session may have expired or been collected since.
            None if o.certain && !o.brief => {
                f.lost_updates += 1;
                f.problem(format!("session {id} was acknowledged and is missing"));
            }
            _ => {}
        }
    }
    for id in &r.deleted {
        if data.contains_key(id) {
            f.resurrected += 1;
            f.problem(format!("session {id} was deleted and is back"));
        }
    }
}

fn pool_index(target: &str) -> Option<usize> {
    target.strip_prefix('p').and_then(|n| n.parse().ok())
}

/// Counts the spare files under `store_dir`: how many are ahead of their session (by the
/// generation in their header: bytes 8..16, after the magic `SDIR` and the version), and how
/// many belong to no session.
fn count_spares(store: &Store, store_dir: &Path, f: &mut Findings) -> Result<(), Failure> {
    for entry in walkdir::WalkDir::new(store_dir) {
        let entry = entry.map_err(|e| Failure::Output(e.into()))?;
        let name = entry.file_name().to_string_lossy();
        let Some(id) = name
            .strip_prefix('.')
            .and_then(|n| n.strip_suffix(".spare"))
            .and_then(|n| SessionId::parse(n).ok())
        else {
            continue;
        };
        f.spares += 1;
        let live = match store.info(&id) {
            Ok(Some(live)) => live,
            Ok(None) => {
                f.orphan_spares += 1;
                f.problem(format!(
                    "spare {} has no session after tidy",
                    entry.path().display()
                ));
                continue;
            }
            Err(_) => continue, // a damaged session: counted as corrupt by the checks
        };
        let head = std::fs::read(entry.path()).unwrap_or_default();
        let generation = head
            .get(8..16)
            .filter(|_| head.starts_with(b"SDIR"))
            .and_then(|b| b.try_into().ok())
            .map(u64::from_le_bytes);
        if generation.is_some_and(|g| g > live.generation) {
            f.spares_ahead_of_live += 1;
        }
    }
    Ok(())
}

fn count_temp_files(store_dir: &Path) -> Result<u64, Failure> {
    let mut n = 0;
    for entry in walkdir::WalkDir::new(store_dir) {
        let entry = entry.map_err(|e| Failure::Output(e.into()))?;
        let name = entry.file_name().to_string_lossy();
        if entry.file_type().is_file() && name.starts_with('.') && name.ends_with(".tmp") {
            n += 1;
        }
    }
    Ok(n)
}

fn reopen_and_use(store_dir: &Path) -> Result<(), String> {
    let store = Store::builder(store_dir)
        .create_if_missing(false)
        .open()
        .map_err(|e| e.to_string())?;
    let mut d = Dict::new();
    d.insert("n", 1i64);
    let id = store
        .create_with_expiry(&d, Expiry::Never)
        .map_err(|e| e.to_string())?;
    let mut co = store.try_checkout::<Dict>(&id).map_err(|e| e.to_string())?;
    let _ = co.data_mut().increment("n", 1);
    co.check_in().map_err(|e| e.error().to_string())?;
    let n = store
        .load::<Dict>(&id)
        .map_err(|e| e.to_string())?
        .and_then(|d| d.get_i64("n"));
    if n != Some(2) {
        return Err(format!("wrote 2 and read back {n:?}"));
    }
    if !store.delete(&id).map_err(|e| e.to_string())? {
        return Err("the session just written could not be deleted".into());
    }
    store.close().map_err(|e| e.to_string())?;
    Ok(())
}
