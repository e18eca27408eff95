//! `sessiondir torture`: worker processes hammer one store while a chaos loop SIGKILLs them;
//! then nothing acknowledged may be lost, nothing corrupt, nothing locked, nothing left over.
//!
//! The run directory holds the store (`store/`), one journal per worker incarnation
//! (`journal/<slot>.<n>`, see [`journal`]) and the ids of the shared pool sessions. W workers
//! (this binary re-run as `torture-worker`) do random operations (see [`worker`]): increments of
//! their own counter in a few shared *pool* sessions (maximal contention), abandoned
//! check-outs, lock-free reads that must see every acknowledged increment, and create / check-in
//! / cycle id / touch / delete / abandon on sessions they own, some of which expire within
//! milliseconds, plus gc and tidy passes over everything. Every few milliseconds the chaos loop
//! SIGKILLs a random worker, at whatever point it is (waiting for a lock, holding one, between
//! writing a temporary file and renaming it) and starts a new incarnation in its slot. When
//! the time is up the workers are told to stop, and [`verify`] replays the journals against
//! the store.

mod chaos;
mod journal;
mod verify;
pub mod worker;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, ValueEnum};
use serde::Serialize;

use sessiondir::{Dict, Expiry, SessionId, Store, Value};

use super::{Failure, durability, require_empty};
pub use worker::WorkerArgs;

/// The store, inside the run directory.
const STORE_DIR: &str = "store";
/// The journals, inside the run directory.
const JOURNAL_DIR: &str = "journal";
/// The pool sessions' ids, one per line, inside the run directory.
const POOL_IDS: &str = "pool-ids";
/// Workers give up on a lock after this long: far beyond any legitimate wait here, so a lock
/// timeout means a lock was left behind (and is reported as an unexpected error).
const LOCK_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a worker may take to start, or to stop once told to.
const WORKER_DEADLINE: Duration = Duration::from_secs(30);

#[derive(Args)]
pub struct TortureArgs {
    /// Run directory (must be empty or missing); default: a fresh temporary directory, removed
    /// afterwards unless the run fails.
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Worker processes.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// How long the workers run, in seconds.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Shortest pause between two kills, in milliseconds.
    #[arg(long, default_value_t = 5)]
    kill_min_ms: u64,
    /// Longest pause between two kills, in milliseconds.
    #[arg(long, default_value_t = 60)]
    kill_max_ms: u64,
    /// Shared pool sessions every worker increments.
    #[arg(long, default_value_t = 3)]
    pool: usize,
    /// Payload bytes in every session (bigger files take longer to write, so more kills land
    /// inside a check-in).
    #[arg(long, default_value_t = 16384)]
    payload: usize,
    /// 1: the strongest durability (fdatasync the file, fsync the directory); 0: none.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    fsync: u8,
    /// Seed for the workers' and the chaos loop's choices (default: random).
    #[arg(long)]
    seed: Option<u64>,
    /// Print one JSON object instead of the report.
    #[arg(long)]
    json: bool,
    /// Damage the store after the workers stop and before verifying (to prove the verifier
    /// catches it; for tests).
    #[arg(long, value_enum, hide = true)]
    tamper: Option<Tamper>,
}

/// Damage done on purpose before verification; each must fail the run.
#[derive(Clone, Copy, ValueEnum)]
enum Tamper {
    /// Undo one acknowledged increment of pool session 0.
    Lost,
    /// Overwrite pool session 0's file with garbage.
    Corrupt,
    /// Hold pool session 0's lock during verification, with a temporary file beside it.
    Locked,
}

/// One worker process's life in a slot.
pub struct Incarnation {
    slot: usize,
    number: u64,
    /// Killed by the chaos loop (rather than told to stop).
    killed: bool,
}

/// The whole run, as reported.
#[derive(Serialize)]
struct Report {
    ok: bool,
    workers: usize,
    seconds: f64,
    seed: u64,
    kills: u64,
    incarnations: u64,
    worker_failures: u64,
    #[serde(flatten)]
    findings: verify::Findings,
}

fn journal_path(root: &Path, slot: usize, number: u64) -> PathBuf {
    root.join(JOURNAL_DIR).join(format!("{slot}.{number}"))
}

/// The key of a slot's counter in the pool sessions.
fn slot_key(slot: usize) -> String {
    format!("w{slot}")
}

/// The `torture` command.
pub fn run(a: &TortureArgs) -> Result<(), Failure> {
    if a.workers == 0 || a.pool == 0 {
        return Err(Failure::Usage(
            "--workers and --pool must be at least 1".into(),
        ));
    }
    if a.kill_min_ms > a.kill_max_ms {
        return Err(Failure::Usage(format!(
            "--kill-min-ms {} is above --kill-max-ms {}",
            a.kill_min_ms, a.kill_max_ms
        )));
    }
    let seconds = Duration::try_from_secs_f64(a.seconds)
        .map_err(|_| Failure::Usage(format!("--seconds {} is not a duration", a.seconds)))?;
    let mut temp = None;
    let root = match &a.dir {
        Some(dir) => {
            require_empty(
                dir,
                "torture creates its store and journals in an empty directory",
            )?;
            dir.clone()
        }
        None => temp.insert(tempfile::tempdir()?).path().to_path_buf(),
    };
    let seed = a.seed.unwrap_or_else(rand::random);
    let pool = prepare(&root, a)?;
    let (kills, incarnations, worker_failures) = chaos::run(&root, a, seed, seconds)?;
    let store_dir = root.join(STORE_DIR);
    let _held = match a.tamper {
        Some(t) => tamper(t, &store_dir, &pool)?,
        None => None,
    };
    let findings = verify::verify(&root, &store_dir, &pool, &incarnations)?;
    let report = Report {
        ok: findings.problems.is_empty() && worker_failures == 0,
        workers: a.workers,
        seconds: a.seconds,
        seed,
        kills,
        incarnations: incarnations.len() as u64,
        worker_failures,
        findings,
    };
    print(&report, a.json)?;
    if report.ok {
        return Ok(());
    }
    // Keep the evidence.
    if let Some(t) = temp {
        let kept = t.keep();
        eprintln!("sessiondir: the run directory is kept: {}", kept.display());
    }
    Err(Failure::Verification(format!(
        "torture run failed verification (seed {seed}): {}",
        report
            .findings
            .problems
            .first()
            .map_or("worker failures", String::as_str)
    )))
}

/// Creates the store and the pool sessions; returns the pool's ids.
fn prepare(root: &Path, a: &TortureArgs) -> Result<Vec<SessionId>, Failure> {
    std::fs::create_dir_all(root.join(JOURNAL_DIR))?;
    let store = Store::builder(root.join(STORE_DIR))
        .durability(durability(a.fsync))
        .open()?;
    let mut data = Dict::new();
    data.insert("pad", Value::Bytes(vec![0xa5_u8; a.payload]));
    let mut pool = Vec::with_capacity(a.pool);
    let mut list = String::new();
    for _ in 0..a.pool {
        let id = store.create_with_expiry(&data, Expiry::Never)?;
        list.push_str(id.as_str());
        list.push('\n');
        pool.push(id);
    }
    std::fs::write(root.join(POOL_IDS), list)?;
    store.close()?;
    Ok(pool)
}

/// Damages the store on purpose (see [`Tamper`]); returns a check-out to hold while verifying.
fn tamper(
    how: Tamper,
    store_dir: &Path,
    pool: &[SessionId],
) -> Result<Option<(Store, sessiondir::Checkout<Dict>)>, Failure> {
    let store = Store::builder(store_dir).create_if_missing(false).open()?;
    let id = &pool[0];
    match how {
        Tamper::Lost => {
            let mut co = store.checkout::<Dict>(id)?;
            let key = co
                .data()
                .iter()
                .find(|(k, v)| k.starts_with('w') && v.as_i64().is_some_and(|n| n > 0))
                .map(|(k, _)| k.to_string());
            if let Some(key) = key {
                let _ = co.data_mut().increment(&key, -1);
            }
            co.check_in()
                .map_err(|e| Failure::Store(e.into_parts().0))?;
            Ok(None)
        }
        Tamper::Corrupt => {
            std::fs::write(store.session_path(id), b"not a session file at all")?;
            Ok(None)
        }
        Tamper::Locked => {
            let co = store.checkout::<Dict>(id)?;
            let path = store.session_path(id);
            let name = format!(".{}.tampered.tmp", id.as_str());
            std::fs::write(path.with_file_name(name), b"half a session")?;
            Ok(Some((store, co)))
        }
    }
}

fn print(r: &Report, json: bool) -> Result<(), Failure> {
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::to_string(r)
            .map_err(|e| Failure::Usage(format!("cannot encode the report: {e}")))?;
        writeln!(out, "{line}")?;
        return Ok(());
    }
    let f = &r.findings;
    writeln!(
        out,
        "torture: {} workers for {} s (seed {}): {} kills, {} incarnations, {} worker failures",
        r.workers, r.seconds, r.seed, r.kills, r.incarnations, r.worker_failures
    )?;
    let ops: Vec<String> = f
        .ops_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(
        out,
        "  ops acknowledged: {} ({})",
        f.ops_acknowledged,
        ops.join(", ")
    )?;
    let fl: Vec<String> = f
        .in_flight_by_kind
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    writeln!(
        out,
        "  ops in flight at a kill: {} ({})",
        f.in_flight_at_kill,
        fl.join(", ")
    )?;
    writeln!(
        out,
        "  pool increments: {} acknowledged, {} on disk",
        f.pool_increments_acknowledged, f.pool_increments_landed
    )?;
    writeln!(
        out,
        "  left by killed workers: {} temporary and {} lock files removed by the workers' tidy passes; at the end {} found, {} removed by tidy, {} left",
        f.temp_files_removed_by_workers_tidy,
        f.lock_files_removed_by_workers_tidy,
        f.temp_files_before_tidy,
        f.temp_files_removed_by_tidy,
        f.leftover_temp_files
    )?;
    writeln!(
        out,
        "  spare files: {} at the end, {} ahead of their session (a writer killed between filling and swapping: never live), {} without a session",
        f.spares, f.spares_ahead_of_live, f.orphan_spares
    )?;
    writeln!(
        out,
        "  sessions checked: {}; lost updates {}, phantom updates {}, corrupt {}, still locked {}, resurrected {}, orphans {} (allowed {}), unexpected errors {}, reopen {}",
        f.sessions_checked,
        f.lost_updates,
        f.phantom_updates,
        f.corrupt,
        f.still_locked,
        f.resurrected,
        f.orphans,
        f.orphans_allowed,
        f.unexpected_errors,
        if f.reopen_ok { "ok" } else { "FAILED" }
    )?;
    for p in &f.problems {
        writeln!(out, "  problem: {p}")?;
    }
    writeln!(out, "{}", if r.ok { "ok" } else { "FAILED" })?;
    Ok(())
}
