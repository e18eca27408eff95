//! The `sessiondir` command: admin tools and a lock-contention benchmark, as glue over the
//! library's public API. See `sessiondir --help` and the README.
//!
//! Command-line parsing, dispatch, output and exit codes.
//!
//! Raw flags are parsed by clap into one `Command`; each command runs against the public
//! library API and returns a `Failure` on error, which maps to a documented exit code:
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success (also when stdout is closed early, e.g. `sessiondir ls \| head`) |
//! | 1 | the session does not exist (or has expired, or was deleted) |
//! | 2 | usage error, invalid input (a bad id), I/O error, damaged data, not a store, a path gc or tidy refused |
//! | 3 | the session is held by someone else (lock timeout) |
//! | 4 | `bench`/`torture`: verification failed (lost updates, corrupt sessions, leftover files); `doctor`: a check failed |
//! | 5 | `ls`, `stats`, `gc`: done, but damaged session files were found (each named on stderr by `ls` and `stats`, counted by all three) |

mod admin;
mod bench;
mod dir_kind;
mod doctor;
mod output;
mod torture;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use sessiondir::{Durability, Error, SessionId, Store, StoreBuilder};

/// Inspect, clean and benchmark sessiondir session directories.
#[derive(Parser)]
#[command(name = "sessiondir", version, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// List sessions: id, created, modified, expires, size, checked out now.
    Ls(admin::LsArgs),
    /// Show one session's header and, for dictionary sessions, its data.
    Show(admin::ShowArgs),
    /// Delete a session (waits for its holder, like any check-out).
    Rm(admin::RmArgs),
    /// Delete expired and/or idle sessions, skipping checked-out ones.
    Gc(admin::GcArgs),
    /// Remove temporary files, orphaned lock files and orphaned spare files left by crashed writers.
    Tidy(StoreArgs),
    /// Counts, bytes, expired, checked out now, shard balance.
    Stats(StoreArgs),
    /// Stream creations, check-ins and deletions as they happen.
    Watch(admin::WatchArgs),
    /// Probe a directory (and a second mount of the same share) for working locks and fresh
    /// reads after renames: whether a store can run there.
    Doctor(doctor::DoctorArgs),
    /// Measure lock contention: worker processes (or threads) checking sessions out and in.
    Bench(bench::BenchArgs),
    /// One benchmark worker (started by `bench`).
    #[command(hide = true)]
    BenchWorker(bench::WorkerArgs),
    /// Crash and load torture: workers hammer a store while being SIGKILLed; then verify that
    /// nothing acknowledged was lost and nothing is corrupt, locked or left over.
    Torture(torture::TortureArgs),
    /// One torture worker (started by `torture`).
    #[command(hide = true)]
    TortureWorker(torture::WorkerArgs),
}

/// Options every admin command takes.
#[derive(Args, Clone)]
struct StoreArgs {
    /// The session directory.
    #[arg(long)]
    dir: PathBuf,
    /// Print JSON (one object per line) instead of text.
    #[arg(long)]
    json: bool,
    /// Allow a directory on a network or FUSE file system (check it with `doctor` first).
    #[arg(long)]
    allow_network_fs: bool,
}

impl StoreArgs {
    /// The builder of every admin command's store: an existing store only (a missing one is an
    /// error, never silently created) and every shared flag applied, so that a command that
    /// needs more settings adds them here instead of building its own and dropping a flag.
    fn builder(&self) -> StoreBuilder {
        Store::builder(&self.dir)
            .create_if_missing(false)
            .allow_network_fs(self.allow_network_fs)
    }

    /// Opens the store with [`builder`](Self::builder)'s settings.
    fn open(&self) -> Result<Store, Failure> {
        open_existing(&self.dir, self.builder())
    }
}

/// Opens an existing store with `builder`; when there is none at `dir`, the error says which
/// of the usual cases it is (no such path, a file, an empty directory, other files).
fn open_existing(dir: &Path, builder: StoreBuilder) -> Result<Store, Failure> {
    builder.open().map_err(|e| match e {
        Error::Config { .. } => match dir_kind::DirKind::of(dir).no_store(dir) {
            Some(why) => Failure::NoStore(why),
            None => Failure::Store(e),
        },
        e => Failure::Store(e),
    })
}

/// Why a command failed.
#[derive(Debug)]
enum Failure {
    /// From the library.
    Store(Error),
    /// Writing output failed.
    Output(std::io::Error),
    /// Bad flags or arguments.
    Usage(String),
    /// The benchmark ran but its verification failed.
    Verification(String),
    /// There is no store at `--dir`: which of the usual cases it is.
    NoStore(String),
    /// The command did its work, but found this many damaged session files.
    Damaged(u64),
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        Failure::Store(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Output(e)
    }
}

impl Failure {
    fn exit_code(&self) -> u8 {
        match self {
            Failure::Store(e) if e.is_gone() => 1,
            Failure::Store(Error::LockTimeout { .. } | Error::Busy { .. }) => 3,
            Failure::Verification(_) => 4,
            Failure::Damaged(_) => 5,
            _ => 2,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Store(e) => write!(f, "{e}"),
            Failure::Output(e) => write!(f, "cannot write output: {e}"),
            Failure::Usage(m) | Failure::Verification(m) | Failure::NoStore(m) => f.write_str(m),
            Failure::Damaged(n) => write!(
                f,
                "{n} damaged session file(s) found and left in place (`sessiondir ls` names them)"
            ),
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ls(a) => admin::ls(&a),
        Command::Show(a) => admin::show(&a),
        Command::Rm(a) => admin::rm(&a),
        Command::Gc(a) => admin::gc(&a),
        Command::Tidy(a) => admin::tidy(&a),
        Command::Stats(a) => admin::stats(&a),
        Command::Watch(a) => admin::watch(&a),
        Command::Doctor(a) => doctor::run(&a),
        Command::Bench(a) => bench::run(&a),
        Command::BenchWorker(a) => bench::worker(&a),
        Command::Torture(a) => torture::run(&a),
        Command::TortureWorker(a) => torture::worker::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that stopped reading (`| head`) is not an error.
        Err(Failure::Output(e)) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        // The work was done; what was found is a warning, with an exit code of its own.
        Err(failure @ Failure::Damaged(_)) => {
            eprintln!("sessiondir: warning: {failure}");
            ExitCode::from(failure.exit_code())
        }
        Err(failure) => {
            eprintln!("sessiondir: error: {failure}");
            ExitCode::from(failure.exit_code())
        }
    }
}

/// The durability a `--fsync 0|1` flag asks for: 1 is the strongest level.
fn durability(fsync: u8) -> Durability {
    if fsync == 1 {
        Durability::FileAndDirectory
    } else {
        Durability::None
    }
}

/// A `--dir` a command fills itself must be empty or missing.
fn require_empty(dir: &Path, why: &str) -> Result<(), Failure> {
    let empty = std::fs::read_dir(dir).map_or(true, |mut e| e.next().is_none());
    if empty {
        Ok(())
    } else {
        Err(Failure::Usage(format!(
            "--dir {} is not empty; {why}",
            dir.display()
        )))
    }
}

/// Parses a session id from the command line.
fn parse_id(input: &str) -> Result<SessionId, Failure> {
    Ok(SessionId::parse(input)?)
}

/// Parses durations like `30m`, `2h 30m`, `500ms`, `7d`.
fn parse_duration(input: &str) -> Result<Duration, String> {
    humantime::parse_duration(input)
        .map_err(|e| format!("{input:?} is not a duration like 30m, 2h or 500ms ({e})"))
}
