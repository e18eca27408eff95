//! `sessiondir bench`: what lock contention costs, on this disk.
//!
//! W workers — processes by default (this binary re-run as `bench-worker`), or threads sharing
//! one `Store` with `--threads` — share one session directory. Each op checks a session out,
//! increments its counter, optionally busy-waits `--hold-us`, and checks it in. With
//! `--baseline` the same workload also runs on two bare-syscall floors, in alternating rounds, so
//! the store's cost is reported as ratios measured side by side: the card's design (open the
//! lock file, `flock`, read, write a temporary file, rename, unlock) and the in-place write
//! (open the data file, `flock`, read, `pwrite`, `ftruncate`, unlock: PHP's design, not
//! crash-atomic, the physical floor of a locked read-modify-write). Every run is verified: the
//! counters must add up to the ops done exactly, no session may be corrupt, and no temporary
//! file may be left.

mod report;
mod worker;
mod workload;

use worker::WorkerProcess;
pub use worker::worker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use clap::Args;

use sessiondir::Backend as _;
use sessiondir::redis::RedisStore;
use sessiondir::{Dict, SessionId, Store, Value};

use super::{Failure, durability, require_empty};
use report::{Run, Summary};
use workload::{Mode, Plan, WorkerResult};

const IDS_FILE: &str = ".bench-ids";
const REDIS_IDS_FILE: &str = ".bench-ids-redis";
const FLOOR_DIR: &str = ".bench-floor";
const IN_PLACE_DIR: &str = ".bench-floor-in-place";

#[derive(Args)]
pub struct BenchArgs {
    /// Session directory to use; must be empty or missing (default: a fresh temporary
    /// directory, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// The same `--dir` through a second mount of a shared file system (another host's view):
    /// odd-numbered workers use it, even-numbered ones `--dir`.
    #[arg(long, requires = "dir")]
    other_mount: Option<PathBuf>,
    /// Allow a `--dir` on a network or FUSE file system (check it with `doctor` first; the
    /// store runs fenced there).
    #[arg(long)]
    allow_network_fs: bool,
    /// Number of workers.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Ops per worker (per round).
    #[arg(long, default_value_t = 2000)]
    ops: u64,
    /// Number of sessions (`hot` uses only the first).
    #[arg(long, default_value_t = 100)]
    sessions: usize,
    /// How ops pick their session.
    #[arg(long, value_enum, default_value_t = Mode::Hot)]
    mode: Mode,
    /// Busy-wait this many microseconds while holding the session (simulated request work).
    #[arg(long, default_value_t = 0)]
    hold_us: u64,
    /// Payload bytes per session, besides the counter.
    #[arg(long, default_value_t = 1024)]
    payload: usize,
    /// 1: the strongest durability (fdatasync the file, fsync the directory); 0: none.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    fsync: u8,
    /// Workers are threads of this process sharing one store, instead of processes.
    #[arg(long)]
    threads: bool,
    /// Check in by renaming a new file each time (`StoreBuilder::reuse_inodes(false)`) instead
    /// of swapping the session's spare in: to see what the swap saves on this disk.
    #[arg(long)]
    rename_check_ins: bool,
    /// Also run the two bare-syscall floors (temporary file + rename; in-place write),
    /// alternating with the store, and print the ratios.
    #[arg(long)]
    baseline: bool,
    /// Rounds per worker count (default: 3 with --baseline, else 1); medians are reported.
    #[arg(long)]
    rounds: Option<usize>,
    /// Sweep these worker counts instead of --workers, e.g. 1,2,4,8,16.
    #[arg(long, value_delimiter = ',', value_parser = parse_ladder_step)]
    ladder: Vec<usize>,
    /// With --ladder: write an SVG chart of throughput and p99 against workers.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Print one JSON line per worker count instead of the report.
    #[arg(long)]
    json: bool,
    /// Which store to measure: the session directory, Redis/Valkey, or both side by side
    /// (alternating rounds).
    #[arg(long, value_enum, default_value_t = BackendChoice::Dir)]
    backend: BackendChoice,
    /// The Redis or Valkey server for `--backend redis|both` (its sessions get a key prefix
    /// of their own and are deleted afterwards).
    #[arg(long, default_value = "redis://127.0.0.1:6379/0")]
    redis_url: String,
}

/// `--backend`: which store a bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// The session directory.
    Dir,
    /// A Redis or Valkey server (`--redis-url`).
    Redis,
    /// Both, in alternating rounds.
    Both,
}

/// Which implementation a run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    /// The session directory store.
    Store = 0,
    /// The bare-syscall floor of the card's design: temporary file, rename over.
    Floor = 1,
    /// The Redis store.
    Redis = 2,
    /// The bare-syscall in-place floor: `pwrite` into the locked data file (not crash-atomic).
    InPlace = 3,
}

impl System {
    pub fn name(self) -> &'static str {
        match self {
            System::Store => "sessiondir",
            System::Floor => "floor",
            System::Redis => "redis",
            System::InPlace => "in-place",
        }
    }
}

#[derive(Args)]
pub struct WorkerArgs {
    #[arg(long)]
    dir: PathBuf,
    #[arg(long)]
    floor: bool,
    #[arg(long)]
    in_place: bool,
    #[arg(long)]
    rename_check_ins: bool,
    #[arg(long)]
    ops: u64,
    #[arg(long)]
    sessions: usize,
    #[arg(long, value_enum)]
    mode: Mode,
    #[arg(long)]
    hold_us: u64,
    #[arg(long)]
    fsync: u8,
    #[arg(long)]
    seed: u64,
    /// Run on this Redis server (with `--prefix`) instead of the directory.
    #[arg(long)]
    redis_url: Option<String>,
    #[arg(long, default_value = "")]
    prefix: String,
}

/// The Redis side of a bench: its store, sessions and key prefix.
struct RedisSide {
    store: RedisStore,
    ids: Vec<SessionId>,
    url: String,
}

/// Everything a run needs to know.
struct Bench<'a> {
    args: &'a BenchArgs,
    dir: PathBuf,
    store: Store,
    /// `--other-mount`: the same directory through a second mount, and a store opened there.
    other: Option<(PathBuf, Store)>,
    ids: Vec<SessionId>,
    redis: Option<RedisSide>,
    /// Ops acknowledged so far in this invocation, per system (store, floor, redis, in-place):
    /// what the counters must add up to, since they all started at 0.
    acknowledged: std::cell::Cell<[u64; 4]>,
}

pub fn run(a: &BenchArgs) -> Result<(), Failure> {
    if a.workers == 0 || a.sessions == 0 || a.ops == 0 || a.ladder.contains(&0) {
        return Err(Failure::Usage(
            "--workers, --sessions, --ops and --ladder steps must be at least 1".into(),
        ));
    }
    if a.plot.is_some() && a.ladder.is_empty() {
        return Err(Failure::Usage("--plot needs --ladder".into()));
    }
    let tmp;
    let dir = match &a.dir {
        Some(d) => {
            require_empty(d, "bench prepares its own sessions in an empty directory")?;
            d.clone()
        }
        None => {
            tmp = tempfile::tempdir().map_err(Failure::Output)?;
            tmp.path().join("sessions")
        }
    };
    let bench = Bench::prepare(a, dir)?;
    let steps = if a.ladder.is_empty() {
        vec![a.workers]
    } else {
        a.ladder.clone()
    };
    let mut systems = match a.backend {
        BackendChoice::Dir => vec![System::Store],
        BackendChoice::Redis => vec![System::Redis],
        BackendChoice::Both => vec![System::Store, System::Redis],
    };
    if a.baseline {
        systems.extend([System::Floor, System::InPlace]);
    }
    let rounds = a
        .rounds
        .unwrap_or(if systems.len() > 1 { 3 } else { 1 })
        .max(1);
    let mut summaries = Vec::new();
    let mut failed = Vec::new();
    for &workers in &steps {
        let mut runs: Vec<Vec<Run>> = systems.iter().map(|_| Vec::new()).collect();
        for round in 0..rounds {
            // Rotate which system goes first, so none always gets the warm cache.
            for k in 0..systems.len() {
                let i = (k + round) % systems.len();
                runs[i].push(bench.run_once(systems[i], workers, round)?);
            }
        }
        let step: Vec<Summary> = systems
            .iter()
            .zip(&runs)
            .map(|(&system, runs)| Summary::new(system, workers, runs))
            .collect();
        for s in &step {
            if let Some(problem) = s.problem() {
                failed.push(format!(
                    "{} with {workers} workers: {problem}",
                    s.system.name()
                ));
            }
        }
        let mut out = std::io::stdout().lock();
        if a.json {
            report::json_line(&mut out, a, rounds, &step)?;
        } else {
            report::human(&mut out, a, rounds, &step)?;
        }
        out.flush()?;
        summaries.push(step);
    }
    if let Some(path) = &a.plot {
        report::plot(path, a, rounds, &summaries).map_err(|e| {
            Failure::Usage(format!("cannot write the chart {}: {e}", path.display()))
        })?;
        if !a.json {
            println!("chart written to {}", path.display());
        }
    }
    bench.cleanup()?;
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Failure::Verification(format!(
            "verification failed: {}",
            failed.join("; ")
        )))
    }
}

impl<'a> Bench<'a> {
    fn prepare(args: &'a BenchArgs, dir: PathBuf) -> Result<Self, Failure> {
        let store = Store::builder(&dir)
            .durability(durability(args.fsync))
            .reuse_inodes(!args.rename_check_ins)
            .allow_network_fs(args.allow_network_fs)
            .open()?;
        let mut data = Dict::new();
        data.insert("counter", 0i64);
        data.insert("payload", Value::Bytes(vec![b'x'; args.payload]));
        let ids = (0..args.sessions)
            .map(|_| store.create(&data))
            .collect::<Result<Vec<_>, _>>()?;
        let list: String = ids.iter().map(|id| format!("{id}\n")).collect();
        std::fs::write(dir.join(IDS_FILE), list)?;
        if args.baseline {
            workload::prepare_floor(&dir.join(FLOOR_DIR), args.sessions, args.payload)?;
            workload::prepare_floor(&dir.join(IN_PLACE_DIR), args.sessions, args.payload)?;
        }
        let redis = if args.backend == BackendChoice::Dir {
            None
        } else {
            // A prefix of this run's own: several benches (or an application) can share the
            // server, and cleanup deletes exactly what this run made.
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos());
            let prefix = format!("sessiondir-bench:{}-{nanos}:", std::process::id());
            let store = RedisStore::builder(&args.redis_url).prefix(prefix).open()?;
            let ids = (0..args.sessions)
                .map(|_| store.create(&data))
                .collect::<Result<Vec<_>, _>>()?;
            let list: String = ids.iter().map(|id| format!("{id}\n")).collect();
            std::fs::write(dir.join(REDIS_IDS_FILE), list)?;
            Some(RedisSide {
                store,
                ids,
                url: args.redis_url.clone(),
            })
        };
        let other = match &args.other_mount {
            Some(path) => {
                let store = Store::builder(path)
                    .create_if_missing(false)
                    .durability(durability(args.fsync))
                    .reuse_inodes(!args.rename_check_ins)
                    .allow_network_fs(args.allow_network_fs)
                    .open()?;
                Some((path.clone(), store))
            }
            None => None,
        };
        Ok(Bench {
            args,
            dir,
            store,
            other,
            ids,
            redis,
            acknowledged: std::cell::Cell::new([0; 4]),
        })
    }

    /// Removes the floor's files, the bench's bookkeeping and its Redis sessions (the
    /// directory store's sessions stay, for inspection, in a `--dir` given by the user).
    fn cleanup(&self) -> Result<(), Failure> {
        let _ = std::fs::remove_dir_all(self.dir.join(FLOOR_DIR));
        let _ = std::fs::remove_dir_all(self.dir.join(IN_PLACE_DIR));
        for file in [IDS_FILE, REDIS_IDS_FILE] {
            #[allow(clippy::disallowed_methods)] // the bench's own bookkeeping, not a session
            let _ = std::fs::remove_file(self.dir.join(file));
        }
        if let Some(redis) = &self.redis {
            for id in &redis.ids {
                redis.store.delete(id)?;
            }
        }
        Ok(())
    }

    /// The directory and store worker `w` uses: odd workers go through `--other-mount`.
    fn mount_of(&self, w: usize) -> (&Path, &Store) {
        match &self.other {
            Some((path, store)) if w % 2 == 1 => (path, store),
            _ => (&self.dir, &self.store),
        }
    }

    fn plan(&self, worker: usize, round: usize) -> Plan {
        Plan {
            ops: self.args.ops,
            mode: self.args.mode,
            hold: Duration::from_micros(self.args.hold_us),
            seed: (round as u64) << 32 | worker as u64,
        }
    }

    /// Sum of all counters, sessions that fail to read, and leftover temporary files.
    fn verify(&self, system: System) -> (u64, u64, u64) {
        let (mut sum, mut corrupt) = (0u64, 0u64);
        match system {
            System::Store => {
                for id in &self.ids {
                    match self.store.load::<Dict>(id) {
                        Ok(Some(d)) => sum += d.get_i64("counter").unwrap_or(0).max(0) as u64,
                        _ => corrupt += 1,
                    }
                }
            }
            System::Floor | System::InPlace => {
                let dir = self.dir.join(if system == System::Floor {
                    FLOOR_DIR
                } else {
                    IN_PLACE_DIR
                });
                for n in 0..self.ids.len() {
                    match workload::floor_counter(&dir, n) {
                        Ok(c) => sum += c,
                        Err(_) => corrupt += 1,
                    }
                }
            }
            System::Redis => {
                if let Some(redis) = &self.redis {
                    for id in &redis.ids {
                        match redis.store.load::<Dict>(id) {
                            Ok(Some(d)) => {
                                sum += d.get_i64("counter").unwrap_or(0).max(0) as u64;
                            }
                            _ => corrupt += 1,
                        }
                    }
                }
            }
        }
        let leftover = walkdir::WalkDir::new(&self.dir)
            .into_iter()
            .filter_map(Result::ok)
            .filter(|e| {
                let name = e.file_name().to_string_lossy();
                e.file_type().is_file() && name.starts_with('.') && name.ends_with(".tmp")
            })
            .count() as u64;
        (sum, corrupt, leftover)
    }

    fn run_once(&self, system: System, workers: usize, round: usize) -> Result<Run, Failure> {
        let (before, _, _) = self.verify(system);
        let bar = super::output::spinner(&format!(
            "{}: {workers} {} x {} ops",
            system.name(),
            if self.args.threads {
                "threads"
            } else {
                "processes"
            },
            self.args.ops
        ));
        let (results, elapsed) = if self.args.threads {
            self.run_threads(system, workers, round)
        } else {
            self.run_processes(system, workers, round)?
        };
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        let (after, corrupt, leftover) = self.verify(system);
        let mut acknowledged = self.acknowledged.get();
        acknowledged[system as usize] += results.iter().map(|r| r.ops).sum::<u64>();
        self.acknowledged.set(acknowledged);
        Ok(Run {
            elapsed,
            counter_delta: after.saturating_sub(before),
            counter_sum: after,
            expected_sum: acknowledged[system as usize],
            corrupt,
            leftover,
            results,
        })
    }

    fn run_threads(
        &self,
        system: System,
        workers: usize,
        round: usize,
    ) -> (Vec<WorkerResult>, Duration) {
        let barrier = Arc::new(Barrier::new(workers + 1));
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|w| {
                    let barrier = Arc::clone(&barrier);
                    let plan = self.plan(w, round);
                    let (dir, store) = self.mount_of(w);
                    let (store, floor_dir) = (store.clone(), dir.join(FLOOR_DIR));
                    let in_place_dir = dir.join(IN_PLACE_DIR);
                    let (ids, fsync) = (&self.ids, self.args.fsync == 1);
                    let redis = self.redis.as_ref();
                    scope.spawn(move || {
                        barrier.wait();
                        match (system, redis) {
                            (System::Store, _) => workload::run_store(&store, ids, &plan),
                            (System::Floor, _) => {
                                workload::run_floor(&floor_dir, ids.len(), &plan, fsync)
                            }
                            (System::InPlace, _) => {
                                workload::run_in_place(&in_place_dir, ids.len(), &plan, fsync)
                            }
                            (System::Redis, Some(r)) => {
                                workload::run_store(&r.store, &r.ids, &plan)
                            }
                            (System::Redis, None) => WorkerResult::default(),
                        }
                    })
                })
                .collect();
            barrier.wait();
            let start = Instant::now();
            let results = handles
                .into_iter()
                .map(|h| h.join().unwrap_or_default())
                .collect();
            (results, start.elapsed())
        })
    }

    fn run_processes(
        &self,
        system: System,
        workers: usize,
        round: usize,
    ) -> Result<(Vec<WorkerResult>, Duration), Failure> {
        let exe = std::env::current_exe()?;
        let mut children = Vec::with_capacity(workers);
        for w in 0..workers {
            let plan = self.plan(w, round);
            let mut cmd = Command::new(&exe);
            cmd.arg("bench-worker")
                .arg("--dir")
                .arg(self.mount_of(w).0)
                .args(["--ops", &plan.ops.to_string()])
                .args(["--sessions", &self.ids.len().to_string()])
                .args(["--hold-us", &self.args.hold_us.to_string()])
                .args(["--fsync", &self.args.fsync.to_string()])
                .args(["--seed", &plan.seed.to_string()])
                .args(["--mode", mode_name(plan.mode)])
                .args(self.args.rename_check_ins.then_some("--rename-check-ins"))
                .stdin(Stdio::piped())
                .stdout(Stdio::piped());
            match (system, &self.redis) {
                (System::Floor, _) => {
                    cmd.arg("--floor");
                }
                (System::InPlace, _) => {
                    cmd.arg("--in-place");
                }
                (System::Redis, Some(r)) => {
                    cmd.arg("--redis-url")
                        .arg(&r.url)
                        .arg("--prefix")
                        .arg(r.store.prefix());
                }
                _ => {}
            }
            children.push(WorkerProcess::spawn(cmd)?);
        }
        for c in &mut children {
            c.expect_line("ready")?;
        }
        let start = Instant::now();
        for c in &mut children {
            c.go()?;
        }
        let mut results = Vec::with_capacity(workers);
        for c in &mut children {
            results.push(c.result()?);
        }
        Ok((results, start.elapsed()))
    }
}

/// One `--ladder` step: a worker count (clap names the flag and the value in its error).
fn parse_ladder_step(input: &str) -> Result<usize, String> {
    match input.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(
            "not a worker count: --ladder takes whole numbers of at least 1, \
                  e.g. --ladder 1,2,4,8,16"
                .to_owned(),
        ),
    }
}

fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Hot => "hot",
        Mode::Spread => "spread",
        Mode::Zipf => "zipf",
    }
}
