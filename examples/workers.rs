//! Several worker processes share one session through one session directory.
//!
//! ```text
//! cargo run --release -p sessiondir-cli --features workers --bin workers -- [--workers 4] [--ops 500] [--dir DIR]
//! ```
//!
//! The parent creates a session holding a counter, starts `--workers` copies of itself as
//! worker processes, and each worker checks the session out, increments the counter and checks
//! it in, `--ops` times. Then the parent prints the total, which must be exactly
//! workers × ops (exit status 1 if it is not), and how the workers' check-outs got their locks.
//! Without `--dir`, a fresh temporary directory is used and removed afterwards.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use sessiondir::{Dict, SessionId, Store};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("worker") => worker(&args[1..]),
        _ => parent(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("workers: {e}");
            ExitCode::from(2)
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn flag(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn number(args: &[String], name: &str, default: u64) -> Result<u64> {
    match flag(args, name) {
        None => Ok(default),
        Some(v) => v
            .parse()
            .map_err(|_| format!("{name} expects a whole number, got {v:?}").into()),
    }
}

fn parent(args: &[String]) -> Result<ExitCode> {
    let workers = number(args, "--workers", 4)?;
    let ops = number(args, "--ops", 500)?;
    let tmp;
    let dir: PathBuf = match flag(args, "--dir") {
        Some(d) => PathBuf::from(d),
        None => {
            tmp = tempfile::tempdir()?;
            tmp.path().join("sessions")
        }
    };
    let store = Store::open(&dir)?;
    let id = store.create(&Dict::new())?;
    println!(
        "session {id} in {}: {workers} worker processes x {ops} check-outs",
        store.dir().display()
    );

    let exe = std::env::current_exe()?;
    let start = Instant::now();
    let children = (0..workers)
        .map(|_| {
            Command::new(&exe)
                .args(["worker", &dir.display().to_string(), id.as_str()])
                .arg(ops.to_string())
                .stdout(Stdio::piped())
                .spawn()
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    let mut failed = 0;
    for child in children {
        let out = child.wait_with_output()?;
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            failed += 1;
        }
    }
    let elapsed = start.elapsed();

    let total = store
        .load::<Dict>(&id)?
        .and_then(|d| d.get_i64("counter"))
        .unwrap_or(0);
    let expected = workers * ops;
    println!(
        "total {total}, expected {expected} ({:.0} check-outs/s over {:.2?})",
        expected as f64 / elapsed.as_secs_f64(),
        elapsed
    );
    let tidy = store.close()?;
    if failed == 0 && u64::try_from(total).ok() == Some(expected) {
        println!(
            "exact: no update lost; {} leftover temporary files",
            tidy.temp_files_removed
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("MISMATCH: {failed} workers failed, {expected} expected, {total} counted");
        Ok(ExitCode::from(1))
    }
}

fn worker(args: &[String]) -> Result<ExitCode> {
    let [dir, id, ops] = args else {
        return Err("usage: workers worker DIR ID OPS".into());
    };
    let store = Store::open(Path::new(dir))?;
    let id = SessionId::parse(id)?;
    let ops: u64 = ops.parse()?;
    for _ in 0..ops {
        let mut session = store.checkout::<Dict>(&id)?;
        session.data_mut().increment("counter", 1)?;
        session.check_in()?;
    }
    let s = store.lock_stats();
    println!(
        "worker {:>7}: {ops} check-ins; locks taken at once {}, after a release event {}, at a poll {}",
        std::process::id(),
        s.immediate,
        s.event,
        s.poll
    );
    Ok(ExitCode::SUCCESS)
}
