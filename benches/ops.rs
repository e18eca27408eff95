//! Single-operation costs of the store next to the bare-syscall floor of the same design.
//!
//! ```text
//! cargo bench --bench ops                  # defaults: 1 KiB payload, 9 rounds
//! SESSIONDIR_BENCH_DIR=/path cargo bench --bench ops   # measure another disk
//! SESSIONDIR_BENCH_SESSIONS=1000000 cargo bench --bench ops   # gc over a million sessions
//! SESSIONDIR_BENCH_REDIS=redis://127.0.0.1:6379/0 cargo bench --features redis --bench ops
//!                                          # also Redis reads (keys under a prefix of their own)
//! ```
//!
//! Each pair (store vs floor) runs in alternating rounds in one process on one directory, and
//! the report gives per-operation medians and their ratio (floor time / store time: above 1.0
//! the store is faster). The machines are shared and noisy: compare ratios, not absolute times
//! from different runs.
//!
//! * `load` vs `open+read+close` (`std::fs::read`) of the same session file; and the same for a
//!   session with a sliding (idle) lifetime, whose reads judge its recorded activity.
//! * uncontended `checkout + check_in` vs the floor: open the lock file, `flock`, read the
//!   session file, write a temporary file, rename it over, unlock, close.
//! * `delete_expired` over N sessions (none expired) vs a bare walk with `stat` of each file
//!   (walkdir, `lstat` of each path), and vs the fastest such walk (`fstatat` relative to each
//!   open directory). The first round reads headers from disk if the page cache does not hold
//!   them; the median is of warm rounds.
//! * with `SESSIONDIR_BENCH_REDIS` (feature `redis`): `RedisStore::load` of a session with a
//!   fixed and one with a sliding lifetime vs a bare `HGET` of its frame (one round trip each).

use std::fs::{File, OpenOptions};
use std::hint::black_box;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use sessiondir::{Dict, Store};

const ROUNDS: usize = 9;

fn main() {
    // `cargo test --benches` passes `--bench`-less args; run a tiny version then.
    let quick = !std::env::args().any(|a| a == "--bench");
    let base = std::env::var_os("SESSIONDIR_BENCH_DIR").map(PathBuf::from);
    let tmp = match &base {
        Some(b) => tempfile::tempdir_in(b),
        None => tempfile::tempdir(),
    }
    .expect("create bench directory");
    let store = Store::builder(tmp.path().join("store"))
        .open()
        .expect("open store");
    let (iters, default_sessions) = if quick { (50, 200) } else { (5_000, 20_000) };
    let gc_sessions: usize = std::env::var("SESSIONDIR_BENCH_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_sessions);

    let mut data = Dict::new();
    data.insert("payload", "x".repeat(1000));
    data.insert("counter", 0i64);
    let id = store.create(&data).expect("create");

    println!("sessiondir single-op bench in {}", tmp.path().display());
    println!(
        "{:<34} {:>12} {:>12} {:>8}",
        "operation", "store", "floor", "ratio"
    );

    let path = store.session_path(&id);
    report(
        "load 1 KiB (vs open+read+close)",
        iters,
        || {
            black_box(store.load::<Dict>(&id).expect("load"));
        },
        || {
            black_box(std::fs::read(&path).expect("read"));
        },
    );

    // A sliding session (idle lifetime 30 min), fresh: a read judges its activity from the
    // `fstat` it makes anyway and records none (design §3.7).
    let sliding = store
        .create_with_expiry(&data, sessiondir::Expiry::Idle(Duration::from_secs(1800)))
        .expect("create");
    let sliding_path = store.session_path(&sliding);
    report(
        "load 1 KiB, sliding (vs read)",
        iters,
        || {
            black_box(store.load::<Dict>(&sliding).expect("load"));
        },
        || {
            black_box(std::fs::read(&sliding_path).expect("read"));
        },
    );

    #[cfg(feature = "redis")]
    if let Ok(url) = std::env::var("SESSIONDIR_BENCH_REDIS") {
        redis_reads(&url, &data, iters);
    }

    let floor_dir = tmp.path().join("floor");
    std::fs::create_dir_all(&floor_dir).expect("floor dir");
    let floor = Floor::new(&floor_dir, &std::fs::read(&path).expect("read"));
    report(
        "checkout+check_in (vs floor)",
        iters,
        || {
            let mut c = store.checkout::<Dict>(&id).expect("checkout");
            c.data_mut().increment("counter", 1).expect("int");
            c.check_in().expect("check in");
        },
        || floor.op(),
    );

    for _ in 0..gc_sessions {
        store.create(&data).expect("create");
    }
    report(
        &format!("load among {gc_sessions} (vs read)"),
        iters,
        || {
            black_box(store.load::<Dict>(&id).expect("load"));
        },
        || {
            black_box(std::fs::read(&path).expect("read"));
        },
    );
    let sessions_dir = store.dir().join("sessions");
    report(
        &format!("gc scan {gc_sessions} (vs walk+stat)"),
        1,
        || {
            black_box(store.delete_expired().expect("gc"));
        },
        || {
            black_box(walk_and_stat(&sessions_dir));
        },
    );
    report(
        &format!("gc scan {gc_sessions} (vs fstatat walk)"),
        1,
        || {
            black_box(store.delete_expired().expect("gc"));
        },
        || {
            black_box(walk_and_stat_at(&sessions_dir));
        },
    );
}

/// Runs `store_op` and `floor_op` `iters` times per round, alternating, and prints medians.
/// `RedisStore::load` vs a bare `HGET` of the same frame, for a fixed and a sliding lifetime.
#[cfg(feature = "redis")]
fn redis_reads(url: &str, data: &Dict, iters: usize) {
    use sessiondir::Backend;
    use sessiondir::redis::RedisStore;
    let prefix = format!("sessiondir-bench-{}:", std::process::id());
    let store = RedisStore::builder(url)
        .prefix(&prefix)
        .open()
        .expect("connect to SESSIONDIR_BENCH_REDIS");
    let mut con = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("connect to SESSIONDIR_BENCH_REDIS");
    let fixed = store
        .create_with_expiry(data, sessiondir::Expiry::Never)
        .expect("create");
    let sliding = store
        .create_with_expiry(data, sessiondir::Expiry::Idle(Duration::from_secs(1800)))
        .expect("create");
    for (name, id) in [
        ("redis load 1 KiB (vs HGET)", fixed),
        ("redis load 1 KiB, sliding (vs HGET)", sliding),
    ] {
        let key = store.session_key(&id);
        report(
            name,
            iters,
            || {
                black_box(store.load::<Dict>(&id).expect("load"));
            },
            || {
                let frame: Vec<u8> = redis::cmd("HGET")
                    .arg(&key)
                    .arg("frame")
                    .query(&mut con)
                    .expect("HGET");
                black_box(frame);
            },
        );
        store.delete(&id).expect("delete");
    }
}

fn report(name: &str, iters: usize, mut store_op: impl FnMut(), mut floor_op: impl FnMut()) {
    let mut store_times = Vec::with_capacity(ROUNDS);
    let mut floor_times = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        // Alternate which goes first, so neither always gets the warm cache.
        let timed = |op: &mut dyn FnMut()| {
            let start = Instant::now();
            for _ in 0..iters {
                op();
            }
            start.elapsed() / iters as u32
        };
        if round % 2 == 0 {
            store_times.push(timed(&mut store_op));
            floor_times.push(timed(&mut floor_op));
        } else {
            floor_times.push(timed(&mut floor_op));
            store_times.push(timed(&mut store_op));
        }
    }
    let (s, f) = (median(store_times), median(floor_times));
    println!(
        "{name:<34} {:>12} {:>12} {:>8.2}",
        fmt(s),
        fmt(f),
        f.as_secs_f64() / s.as_secs_f64()
    );
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn fmt(d: Duration) -> String {
    if d < Duration::from_millis(1) {
        format!("{:.2} us", d.as_secs_f64() * 1e6)
    } else {
        format!("{:.2} ms", d.as_secs_f64() * 1e3)
    }
}

/// The bare-syscall floor of the design: the same work with nothing but the system calls.
struct Floor {
    lock: PathBuf,
    data: PathBuf,
    temp: PathBuf,
}

impl Floor {
    fn new(dir: &Path, content: &[u8]) -> Self {
        let f = Floor {
            lock: dir.join("lock"),
            data: dir.join("data"),
            temp: dir.join(".data.tmp"),
        };
        File::create(&f.lock).expect("lock file");
        std::fs::write(&f.data, content).expect("data file");
        f
    }

    // The floor is deliberately bare: it calls the OS lock and rename directly.
    #[allow(clippy::disallowed_methods)]
    fn op(&self) {
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.lock)
            .expect("open lock");
        lock.lock().expect("flock");
        let mut content = std::fs::read(&self.data).expect("read");
        content[100] = content[100].wrapping_add(1);
        let mut t = File::create(&self.temp).expect("temp");
        t.write_all(&content).expect("write");
        drop(t);
        std::fs::rename(&self.temp, &self.data).expect("rename");
        lock.unlock().expect("unlock");
    }
}

/// The fastest walk with stat we know: each directory opened once, each file `fstatat`ed
/// relative to it (as `find` does), no path resolved twice.
fn walk_and_stat_at(dir: &Path) -> u64 {
    use rustix::fs::{AtFlags, Dir, Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut n = 0;
    for shard in std::fs::read_dir(dir).expect("list") {
        let path = shard.expect("list").path();
        let fd = rustix::fs::openat(rustix::fs::CWD, &path, flags, Mode::empty()).expect("open");
        let mut entries = Dir::new(fd).expect("dir");
        while let Some(entry) = entries.read() {
            let entry = entry.expect("read dir");
            if entry.file_name().to_bytes().starts_with(b".") {
                continue;
            }
            let fd = entries.fd().expect("dir fd");
            let stat = rustix::fs::statat(fd, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW);
            n += stat.expect("stat").st_size as u64;
        }
    }
    n
}

fn walk_and_stat(dir: &Path) -> u64 {
    let mut n = 0;
    for entry in walkdir::WalkDir::new(dir).min_depth(2).max_depth(2) {
        let entry = entry.expect("walk");
        n += entry.metadata().expect("stat").len();
    }
    n
}
