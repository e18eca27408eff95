//! One torture worker process (the hidden `torture-worker` command): random operations on the
//! shared pool sessions and on sessions of its own, each one journaled before it starts and
//! after the store acknowledged it, until its parent closes its stdin (or kills it).

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use clap::Args;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use sessiondir::{Dict, Error, Expiry, GcPolicy, SessionId, Store, Value};

use super::journal::{Journal, Op};
use super::{POOL_IDS, slot_key};
use crate::{Failure, durability};

/// Sessions a worker owns at most; beyond this it deletes before it creates.
const MAX_OWNED: usize = 12;
/// `gc` passes delete sessions idle this long (none of ours: it exercises the scan).
const GC_IDLE: Duration = Duration::from_secs(3600);

#[derive(Args)]
pub struct WorkerArgs {
    #[arg(long)]
    root: PathBuf,
    #[arg(long)]
    slot: usize,
    #[arg(long)]
    incarnation: u64,
    #[arg(long)]
    seed: u64,
    #[arg(long)]
    payload: usize,
    #[arg(long)]
    fsync: u8,
}

/// A session this worker created (nobody else checks it in).
struct Owned {
    id: SessionId,
    /// `brief` sessions have a sliding expiry of a few hundred milliseconds, so that other
    /// workers' gc passes delete them under this worker's feet.
    brief: bool,
}

struct Worker {
    store: Store,
    pool: Vec<SessionId>,
    journal: Journal,
    rng: SmallRng,
    key: String,
    owner: String,
    payload: usize,
    /// Per pool session, the last value of this slot's counter the store acknowledged to
    /// this incarnation; a lock-free read must never see less.
    acked: HashMap<usize, i64>,
    owned: Vec<Owned>,
}

/// Runs one worker until stdin closes.
pub fn run(a: &WorkerArgs) -> Result<(), Failure> {
    let store_dir = a.root.join(super::STORE_DIR);
    let store = Store::builder(&store_dir)
        .create_if_missing(false)
        .durability(durability(a.fsync))
        .lock_timeout(super::LOCK_TIMEOUT)
        .open()?;
    let pool = std::fs::read_to_string(a.root.join(POOL_IDS))?
        .lines()
        .map(SessionId::parse)
        .collect::<Result<Vec<_>, Error>>()?;
    let journal_path = super::journal_path(&a.root, a.slot, a.incarnation);
    let journal = Journal::create(&journal_path)?;
    let mut w = Worker {
        store,
        pool,
        journal,
        rng: SmallRng::seed_from_u64(a.seed ^ (a.slot as u64) << 32 ^ a.incarnation),
        key: slot_key(a.slot),
        owner: format!("{}.{}", a.slot, a.incarnation),
        payload: a.payload,
        acked: HashMap::new(),
        owned: Vec::new(),
    };
    let stop = watch_stdin();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "ready")?;
        out.flush()?;
    }
    while !stop.load(Ordering::Relaxed) {
        w.step()?;
    }
    Ok(())
}

/// A flag set when the parent closes our stdin (or says anything on it).
fn watch_stdin() -> Arc<AtomicBool> {
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = std::io::stdin().lock().read_line(&mut line);
        flag.store(true, Ordering::Relaxed);
    });
    stop
}

impl Worker {
    /// One random operation. `Err` only when the journal cannot be written (the run is void).
    fn step(&mut self) -> Result<(), Failure> {
        let roll = self.rng.random_range(0..100);
        if self.owned.is_empty() && (40..95).contains(&roll) {
            return self.create();
        }
        match roll {
            0..30 => self.pool_increment(),
            30..34 => self.pool_abandon(),
            34..40 => self.pool_read(),
            40..50 if self.owned.len() < MAX_OWNED => self.create(),
            40..50 => self.delete(),
            50..70 => self.increment(),
            70..77 => self.cycle(),
            77..83 => self.delete(),
            83..89 => self.touch(),
            89..95 => self.abandon(),
            95..98 => self.gc(),
            _ => self.tidy(),
        }
    }

    fn pool_target(&mut self) -> (usize, String) {
        let i = self.rng.random_range(0..self.pool.len());
        (i, format!("p{i}"))
    }

    fn pool_increment(&mut self) -> Result<(), Failure> {
        let (i, target) = self.pool_target();
        self.journal.begin(Op::PoolIncrement, &target)?;
        match increment(&self.store, &self.pool[i], &self.key) {
            Ok(Ok(v)) => {
                self.acked.insert(i, v);
                self.journal
                    .ack(Op::PoolIncrement, &target, &v.to_string())?;
            }
            Ok(Err(m)) => self.journal.unexpected(Op::PoolIncrement, &target, &m)?,
            Err(e) => self
                .journal
                .unexpected(Op::PoolIncrement, &target, &e.to_string())?,
        }
        Ok(())
    }

    fn pool_abandon(&mut self) -> Result<(), Failure> {
        let (i, target) = self.pool_target();
        self.journal.begin(Op::PoolAbandon, &target)?;
        match self.store.checkout::<Dict>(&self.pool[i]) {
            Ok(mut co) => {
                // Changed but never checked in: the change must not land.
                let _ = co.data_mut().increment(&self.key, 1000);
                drop(co);
                self.journal.ack(Op::PoolAbandon, &target, "-")?;
            }
            Err(e) => self
                .journal
                .unexpected(Op::PoolAbandon, &target, &e.to_string())?,
        }
        Ok(())
    }

    fn pool_read(&mut self) -> Result<(), Failure> {
        let (i, target) = self.pool_target();
        self.journal.begin(Op::PoolRead, &target)?;
        match self.store.load::<Dict>(&self.pool[i]) {
            Ok(Some(d)) => {
                let seen = d.get_i64(&self.key).unwrap_or(0);
                let acked = self.acked.get(&i).copied().unwrap_or(0);
                if seen < acked {
                    let m = format!("lock-free read saw {seen}, below acknowledged {acked}");
                    self.journal.unexpected(Op::PoolRead, &target, &m)?;
                } else {
                    self.journal.ack(Op::PoolRead, &target, &seen.to_string())?;
                }
            }
            Ok(None) => self
                .journal
                .unexpected(Op::PoolRead, &target, "pool session missing")?,
            Err(e) => self
                .journal
                .unexpected(Op::PoolRead, &target, &e.to_string())?,
        }
        Ok(())
    }

    fn create(&mut self) -> Result<(), Failure> {
        let brief = self.rng.random_bool(0.3);
        let expiry = if brief {
            Expiry::Idle(Duration::from_millis(self.rng.random_range(20..300)))
        } else {
            Expiry::Never
        };
        let mut data = Dict::new();
        data.insert("owner", self.owner.as_str());
        data.insert("v", 0i64);
        data.insert("pad", Value::Bytes(vec![0x5a_u8; self.payload]));
        self.journal.begin(Op::Create, "-")?;
        match self.store.create_with_expiry(&data, expiry) {
            Ok(id) => {
                let class = if brief { "brief" } else { "keep" };
                self.journal
                    .ack(Op::Create, "-", &format!("{} {class}", id.as_str()))?;
                self.owned.push(Owned { id, brief });
            }
            Err(e) => self.journal.unexpected(Op::Create, "-", &e.to_string())?,
        }
        Ok(())
    }

    /// Picks an owned session (the caller made sure there is one).
    fn pick(&mut self) -> Option<usize> {
        if self.owned.is_empty() {
            return None;
        }
        Some(self.rng.random_range(0..self.owned.len()))
    }

    /// Records the outcome of an operation on owned session `k`: a `brief` session that is
    /// gone (expired, or collected by another worker's gc) is expected and forgotten.
    fn settle(&mut self, k: usize, op: Op, result: Result<String, Error>) -> Result<(), Failure> {
        let target = self.owned[k].id.as_str().to_string();
        match result {
            Ok(detail) => self.journal.ack(op, &target, &detail)?,
            Err(e) if self.owned[k].brief && e.is_gone() => {
                self.journal.ack(Op::Gone, &target, "-")?;
                self.owned.swap_remove(k);
            }
            Err(e) => self.journal.unexpected(op, &target, &e.to_string())?,
        }
        Ok(())
    }

    fn increment(&mut self) -> Result<(), Failure> {
        let Some(k) = self.pick() else { return Ok(()) };
        let id = self.owned[k].id;
        self.journal.begin(Op::Increment, id.as_str())?;
        match increment(&self.store, &id, "v") {
            Ok(Ok(v)) => self.settle(k, Op::Increment, Ok(v.to_string())),
            Ok(Err(m)) => Ok(self.journal.unexpected(Op::Increment, id.as_str(), &m)?),
            Err(e) => self.settle(k, Op::Increment, Err(e)),
        }
    }

    fn cycle(&mut self) -> Result<(), Failure> {
        let Some(k) = self.pick() else { return Ok(()) };
        let id = self.owned[k].id;
        self.journal.begin(Op::Cycle, id.as_str())?;
        match self.store.cycle_id(&id) {
            Ok(new) => {
                self.journal.ack(Op::Cycle, id.as_str(), new.as_str())?;
                self.owned[k].id = new;
                Ok(())
            }
            Err(e) => self.settle(k, Op::Cycle, Err(e)),
        }
    }

    fn delete(&mut self) -> Result<(), Failure> {
        let Some(k) = self.pick() else { return Ok(()) };
        let id = self.owned[k].id;
        self.journal.begin(Op::Delete, id.as_str())?;
        match self.store.delete(&id) {
            Ok(true) => {
                self.journal.ack(Op::Delete, id.as_str(), "-")?;
                self.owned.swap_remove(k);
                Ok(())
            }
            // Deleting a `brief` session that gc already collected finds nothing.
            Ok(false) if self.owned[k].brief => {
                self.journal.ack(Op::Gone, id.as_str(), "-")?;
                self.owned.swap_remove(k);
                Ok(())
            }
            Ok(false) => {
                self.journal
                    .unexpected(Op::Delete, id.as_str(), "an owned session vanished")?;
                self.owned.swap_remove(k);
                Ok(())
            }
            Err(e) => self.settle(k, Op::Delete, Err(e)),
        }
    }

    fn touch(&mut self) -> Result<(), Failure> {
        let Some(k) = self.pick() else { return Ok(()) };
        let id = self.owned[k].id;
        self.journal.begin(Op::Touch, id.as_str())?;
        let result = self.store.touch(&id).map(|_| "-".to_string());
        self.settle(k, Op::Touch, result)
    }

    fn abandon(&mut self) -> Result<(), Failure> {
        let Some(k) = self.pick() else { return Ok(()) };
        let id = self.owned[k].id;
        self.journal.begin(Op::Abandon, id.as_str())?;
        let result = self.store.checkout::<Dict>(&id).map(|mut co| {
            let _ = co.data_mut().increment("v", 1000);
            "-".to_string()
        });
        self.settle(k, Op::Abandon, result)
    }

    fn gc(&mut self) -> Result<(), Failure> {
        self.journal.begin(Op::Gc, "-")?;
        let policy = GcPolicy {
            expired: true,
            idle_longer_than: Some(GC_IDLE),
        };
        match self.store.gc(policy) {
            Ok(r) if r.damaged == 0 => self.journal.ack(Op::Gc, "-", &r.deleted.to_string())?,
            Ok(r) => {
                let m = format!("gc found {} damaged files", r.damaged);
                self.journal.unexpected(Op::Gc, "-", &m)?;
            }
            Err(e) => self.journal.unexpected(Op::Gc, "-", &e.to_string())?,
        }
        Ok(())
    }

    fn tidy(&mut self) -> Result<(), Failure> {
        self.journal.begin(Op::Tidy, "-")?;
        match self.store.tidy() {
            Ok(r) => {
                let removed = format!("{} {}", r.temp_files_removed, r.orphan_locks_removed);
                self.journal.ack(Op::Tidy, "-", &removed)?;
            }
            Err(e) => self.journal.unexpected(Op::Tidy, "-", &e.to_string())?,
        }
        Ok(())
    }
}

/// Checks `id` out, increments `key`, checks it in. `Ok(Ok(new value))`; `Ok(Err(message))`
/// when `key` holds something that is not a counter (released, nothing written); `Err` when
/// the store failed.
fn increment(store: &Store, id: &SessionId, key: &str) -> Result<Result<i64, String>, Error> {
    let mut co = store.checkout::<Dict>(id)?;
    let v = match co.data_mut().increment(key, 1) {
        Ok(v) => v,
        Err(wrong) => return Ok(Err(format!("{key} is not a counter: {wrong}"))),
    };
    co.check_in().map_err(|e| e.into_parts().0)?;
    Ok(Ok(v))
}
