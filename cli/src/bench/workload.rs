//! One benchmark worker's loop, for the store and for the two bare-syscall floors: the
//! card's design (a temporary file renamed over) and the in-place write (PHP's design).
//!
//! Each op: pick a session (hot / spread / zipf), check it out, read the counter, add one,
//! optionally busy-wait `hold_us` (simulated request work), check it in. The worker records
//! the wait for the lock and the whole op in histograms, and the number of ops done at every
//! 5 ms tick (for fairness), and reports them as one JSON line.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use rand_distr::{Distribution, Zipf};
use serde::{Deserialize, Serialize};

use sessiondir::{Backend, Dict, SessionId};

/// How sessions are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
pub enum Mode {
    /// Everyone on session 0: maximal contention.
    Hot,
    /// Uniform over all sessions.
    Spread,
    /// Zipf (s = 1) over all sessions: a few popular sessions, a long tail.
    Zipf,
}

/// What one worker measured.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct WorkerResult {
    pub ops: u64,
    pub errors: u64,
    /// (value in µs, count) pairs of the lock-wait histogram.
    pub wait_us: Vec<(u64, u64)>,
    /// (value in µs, count) pairs of the whole-op histogram.
    pub op_us: Vec<(u64, u64)>,
    /// Ops completed at the end of each 5 ms tick since the start.
    pub progress: Vec<u64>,
    pub immediate: u64,
    pub local_queue: u64,
    pub event: u64,
    pub poll: u64,
    pub first_error: Option<String>,
}

pub const TICK: Duration = Duration::from_millis(5);

/// The parameters every worker shares.
pub struct Plan {
    pub ops: u64,
    pub mode: Mode,
    pub hold: Duration,
    pub seed: u64,
}

/// Picks session indices for one worker.
pub struct Picker {
    mode: Mode,
    n: usize,
    rng: SmallRng,
    zipf: Option<Zipf<f64>>,
}

impl Picker {
    pub fn new(mode: Mode, n: usize, seed: u64) -> Self {
        let zipf = (mode == Mode::Zipf)
            .then(|| Zipf::new(n as f64, 1.0).ok())
            .flatten();
        Picker {
            mode,
            n: n.max(1),
            rng: SmallRng::seed_from_u64(seed),
            zipf,
        }
    }

    pub fn next(&mut self) -> usize {
        match (self.mode, &self.zipf) {
            (Mode::Hot, _) => 0,
            (Mode::Zipf, Some(z)) => (z.sample(&mut self.rng) as usize).saturating_sub(1) % self.n,
            _ => rand::Rng::random_range(&mut self.rng, 0..self.n),
        }
    }
}

struct Recorder {
    wait: Histogram<u64>,
    op: Histogram<u64>,
    progress: Vec<u64>,
    start: Instant,
    result: WorkerResult,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            wait: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("1 us to 10 min at 3 digits is a valid histogram"),
            op: Histogram::new_with_bounds(1, 600_000_000, 3)
                .expect("1 us to 10 min at 3 digits is a valid histogram"),
            progress: Vec::new(),
            start: Instant::now(),
            result: WorkerResult::default(),
        }
    }

    fn record(&mut self, wait: Duration, op: Duration) {
        self.wait.saturating_record(micros(wait));
        self.op.saturating_record(micros(op));
        self.result.ops += 1;
        let tick = (self.start.elapsed().as_micros() / TICK.as_micros()) as usize;
        while self.progress.len() <= tick {
            self.progress.push(self.result.ops - 1);
        }
        self.progress[tick] = self.result.ops;
    }

    fn error(&mut self, e: impl std::fmt::Display) {
        self.result.errors += 1;
        if self.result.first_error.is_none() {
            self.result.first_error = Some(e.to_string());
        }
    }

    fn finish(mut self) -> WorkerResult {
        let pairs = |h: &Histogram<u64>| {
            h.iter_recorded()
                .map(|v| (v.value_iterated_to(), v.count_at_value()))
                .collect()
        };
        self.result.wait_us = pairs(&self.wait);
        self.result.op_us = pairs(&self.op);
        self.result.progress = self.progress;
        self.result
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn busy_wait(d: Duration) {
    if d.is_zero() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Runs the store workload against `ids`.
pub fn run_store<B: Backend>(store: &B, ids: &[SessionId], plan: &Plan) -> WorkerResult {
    let mut picker = Picker::new(plan.mode, ids.len(), plan.seed);
    let mut rec = Recorder::new();
    let before = store.lock_stats();
    for _ in 0..plan.ops {
        let id = &ids[picker.next()];
        let start = Instant::now();
        let mut session = match store.checkout::<Dict>(id) {
            Ok(s) => s,
            Err(e) => {
                rec.error(e);
                continue;
            }
        };
        let waited = session.acquisition().waited;
        if let Err(e) = session.data_mut().increment("counter", 1) {
            rec.error(e);
            continue;
        }
        busy_wait(plan.hold);
        match session.check_in() {
            Ok(()) => rec.record(waited, start.elapsed()),
            Err(e) => rec.error(e),
        }
    }
    let after = store.lock_stats();
    let mut result = rec.finish();
    result.immediate = after.immediate - before.immediate;
    result.local_queue = after.local_queue - before.local_queue;
    result.event = after.event - before.event;
    result.poll = after.poll - before.poll;
    result
}

/// The floor's files for one session: `<dir>/<n>/lock` and `<dir>/<n>/data` (an 8-byte
/// little-endian counter followed by the payload).
pub fn floor_paths(dir: &Path, n: usize) -> (PathBuf, PathBuf) {
    let d = dir.join(n.to_string());
    (d.join("lock"), d.join("data"))
}

/// Creates `sessions` floor sessions with `payload` bytes each.
pub fn prepare_floor(dir: &Path, sessions: usize, payload: usize) -> std::io::Result<()> {
    for n in 0..sessions {
        let (lock, data) = floor_paths(dir, n);
        if let Some(parent) = lock.parent() {
            std::fs::create_dir_all(parent)?;
        }
        File::create(&lock)?;
        let mut content = vec![0u8; 8 + payload];
        content[8..].fill(b'x');
        std::fs::write(&data, content)?;
    }
    Ok(())
}

/// Reads a floor session's counter.
pub fn floor_counter(dir: &Path, n: usize) -> std::io::Result<u64> {
    let bytes = std::fs::read(floor_paths(dir, n).1)?;
    let head: [u8; 8] = bytes
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| std::io::Error::other("floor session shorter than its counter"))?;
    Ok(u64::from_le_bytes(head))
}

/// Adds one to a floor session's counter, its first 8 bytes.
fn bump_counter(content: &mut [u8]) -> std::io::Result<()> {
    let head: &mut [u8; 8] = content
        .get_mut(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| std::io::Error::other("short floor session"))?;
    *head = (u64::from_le_bytes(*head) + 1).to_le_bytes();
    Ok(())
}

/// Runs the bare-syscall floor: open the lock file, `flock`, read, write a temporary file,
/// rename it over, unlock, close. Nothing else.
// The floor is deliberately bare: it calls the OS lock and rename directly.
#[allow(clippy::disallowed_methods)]
pub fn run_floor(dir: &Path, sessions: usize, plan: &Plan, fsync: bool) -> WorkerResult {
    let mut picker = Picker::new(plan.mode, sessions, plan.seed);
    let mut rec = Recorder::new();
    let temp_name = format!(".data.{}.{}.tmp", std::process::id(), plan.seed);
    for _ in 0..plan.ops {
        let n = picker.next();
        let (lock_path, data_path) = floor_paths(dir, n);
        let temp_path = data_path.with_file_name(&temp_name);
        let start = Instant::now();
        let op = || -> std::io::Result<Duration> {
            let lock = OpenOptions::new().read(true).write(true).open(&lock_path)?;
            lock.lock()?;
            let waited = start.elapsed();
            let mut content = std::fs::read(&data_path)?;
            bump_counter(&mut content)?;
            busy_wait(plan.hold);
            let mut temp = File::create(&temp_path)?;
            temp.write_all(&content)?;
            if fsync {
                temp.sync_data()?;
            }
            drop(temp);
            std::fs::rename(&temp_path, &data_path)?;
            if fsync {
                File::open(data_path.parent().unwrap_or(Path::new(".")))?.sync_all()?;
            }
            lock.unlock()?;
            Ok(waited)
        };
        match op() {
            Ok(waited) => rec.record(waited, start.elapsed()),
            Err(e) => rec.error(e),
        }
    }
    rec.finish()
}

/// Runs the in-place floor, PHP `files` handler's design: open the data file, `flock` it,
/// read, `pwrite` the new content at offset 0, `ftruncate`, unlock, close. Nothing else. Not
/// crash-atomic (a crash mid-write leaves a torn file, a lock-free reader can see a half-written
/// one): it is the physical floor of one locked read-modify-write per op, not a design to copy.
// The floor is deliberately bare: it calls the OS lock directly.
#[allow(clippy::disallowed_methods)]
pub fn run_in_place(dir: &Path, sessions: usize, plan: &Plan, fsync: bool) -> WorkerResult {
    use std::io::Read;
    use std::os::unix::fs::FileExt;
    let mut picker = Picker::new(plan.mode, sessions, plan.seed);
    let mut rec = Recorder::new();
    let mut content = Vec::new();
    for _ in 0..plan.ops {
        let n = picker.next();
        let (_, data_path) = floor_paths(dir, n);
        let start = Instant::now();
        let mut op = || -> std::io::Result<Duration> {
            let mut file = OpenOptions::new().read(true).write(true).open(&data_path)?;
            file.lock()?;
            let waited = start.elapsed();
            content.clear();
            file.read_to_end(&mut content)?;
            bump_counter(&mut content)?;
            busy_wait(plan.hold);
            file.write_all_at(&content, 0)?;
            file.set_len(content.len() as u64)?;
            if fsync {
                file.sync_data()?;
            }
            file.unlock()?;
            Ok(waited)
        };
        match op() {
            Ok(waited) => rec.record(waited, start.elapsed()),
            Err(e) => rec.error(e),
        }
    }
    rec.finish()
}
