//! The bench's worker side: a worker process as the parent sees it ([`WorkerProcess`]) and the
//! `bench-worker` command that runs in it ([`worker`]).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command};
use std::time::Duration;

use sessiondir::redis::RedisStore;
use sessiondir::{SessionId, Store};

use super::workload::{self, Plan, WorkerResult};
use super::{FLOOR_DIR, Failure, IDS_FILE, IN_PLACE_DIR, REDIS_IDS_FILE, WorkerArgs, durability};

/// A worker process: killed and reaped if dropped before it finished.
pub(super) struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
}

impl WorkerProcess {
    pub(super) fn spawn(mut cmd: Command) -> Result<Self, Failure> {
        let mut child = cmd.spawn()?;
        let stdin = child.stdin.take();
        let stdout = child
            .stdout
            .take()
            .map(BufReader::new)
            .ok_or_else(|| Failure::Usage("worker has no stdout".into()))?;
        Ok(WorkerProcess {
            child,
            stdin,
            stdout,
        })
    }

    pub(super) fn line(&mut self) -> Result<String, Failure> {
        let mut line = String::new();
        self.stdout.read_line(&mut line)?;
        if line.is_empty() {
            return Err(Failure::Usage(
                "a benchmark worker exited early (see its error above)".into(),
            ));
        }
        Ok(line.trim_end().to_string())
    }

    pub(super) fn expect_line(&mut self, want: &str) -> Result<(), Failure> {
        let got = self.line()?;
        if got == want {
            Ok(())
        } else {
            Err(Failure::Usage(format!(
                "benchmark worker said {got:?}, expected {want:?}"
            )))
        }
    }

    pub(super) fn go(&mut self) -> Result<(), Failure> {
        if let Some(mut stdin) = self.stdin.take() {
            stdin.write_all(b"go\n")?;
        }
        Ok(())
    }

    pub(super) fn result(&mut self) -> Result<WorkerResult, Failure> {
        let line = self.line()?;
        let _ = self.child.wait();
        serde_json::from_str(&line)
            .map_err(|e| Failure::Usage(format!("unreadable benchmark worker result: {e}")))
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The hidden `bench-worker` command: one worker process.
pub fn worker(a: &WorkerArgs) -> Result<(), Failure> {
    let plan = Plan {
        ops: a.ops,
        mode: a.mode,
        hold: Duration::from_micros(a.hold_us),
        seed: a.seed,
    };
    // The parent decided whether a shared file system is allowed (`--allow-network-fs`).
    let store = Store::builder(&a.dir)
        .create_if_missing(false)
        .durability(durability(a.fsync))
        .reuse_inodes(!a.rename_check_ins)
        .allow_network_fs(true)
        .open()?;
    let redis = match &a.redis_url {
        Some(url) => Some((
            RedisStore::builder(url).prefix(a.prefix.as_str()).open()?,
            read_ids(&a.dir.join(REDIS_IDS_FILE))?,
        )),
        None => None,
    };
    let ids = read_ids(&a.dir.join(IDS_FILE))?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "ready")?;
    out.flush()?;
    let mut go = String::new();
    std::io::stdin().read_line(&mut go)?;
    let result = match &redis {
        _ if a.floor => {
            workload::run_floor(&a.dir.join(FLOOR_DIR), a.sessions, &plan, a.fsync == 1)
        }
        _ if a.in_place => {
            workload::run_in_place(&a.dir.join(IN_PLACE_DIR), a.sessions, &plan, a.fsync == 1)
        }
        Some((store, ids)) => workload::run_store(store, ids, &plan),
        None => workload::run_store(&store, &ids, &plan),
    };
    let line = serde_json::to_string(&result)
        .map_err(|e| Failure::Usage(format!("cannot encode the worker result: {e}")))?;
    writeln!(out, "{line}")?;
    Ok(())
}

pub(super) fn read_ids(file: &Path) -> Result<Vec<SessionId>, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::Usage(format!(
            "cannot read the bench's session list {}: {e}",
            file.display()
        ))
    })?;
    text.lines()
        .map(|l| SessionId::parse(l).map_err(Failure::from))
        .collect()
}
