//! Helpers shared by the CLI tests: running the real binary with a deadline, temporary stores
//! (the shared test support's, `tests/support/`, with what these tests do with them), JSON
//! parsing.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use serde_json::Value as Json;
use sessiondir::{Dict, Expiry, SessionId};

pub use crate::support::child::ChildGuard;
pub use crate::support::store::TestStore;

/// The longest any single CLI invocation may take before the test fails (and kills it).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// What a finished `sessiondir` run produced.
#[derive(Debug)]
pub struct Out {
    /// `None` if the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// Asserts the exit code, showing the whole output if it differs.
    #[track_caller]
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "unexpected exit code\n--- stdout:\n{}\n--- stderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// Asserts success (exit 0).
    #[track_caller]
    pub fn ok(&self) -> &Self {
        self.expect_code(0)
    }

    /// Non-empty stdout lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().filter(|l| !l.is_empty()).collect()
    }

    /// Every stdout line parsed as one JSON value.
    #[track_caller]
    pub fn json(&self) -> Vec<Json> {
        self.lines()
            .into_iter()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l:?}"))
            })
            .collect()
    }

    /// The single JSON line on stdout.
    #[track_caller]
    pub fn json_one(&self) -> Json {
        let mut v = self.json();
        assert_eq!(v.len(), 1, "expected one JSON line, got {:?}", self.stdout);
        v.remove(0)
    }
}

/// A `Command` for the real binary.
pub fn command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sessiondir"));
    cmd.env_remove("RUST_BACKTRACE").env_remove("RUST_LOG");
    cmd
}

/// Runs `sessiondir <args>` to completion (killing it and failing after [`DEADLINE`]).
pub fn sessiondir<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<OsString> = args.into_iter().map(|a| a.as_ref().to_owned()).collect();
    let mut cmd = command();
    cmd.args(&args);
    run_to_end(cmd)
}

/// Runs `cmd` (the binary, or a wrapper running it) to completion, capturing its output
/// (killing it and failing after [`DEADLINE`]).
pub fn run_to_end(mut cmd: Command) -> Out {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let mut child = ChildGuard(child);
    let mut stdout = child.0.stdout.take().expect("piped stdout");
    let mut stderr = child.0.stderr.take().expect("piped stderr");
    let out_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stdout.read_to_end(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = stderr.read_to_end(&mut s);
        s
    });
    let status = child.wait_timeout(DEADLINE);
    let Some(status) = status else {
        drop(child); // kill and reap, so the readers see end of file
        panic!("{cmd:?} did not finish within {DEADLINE:?}");
    };
    let stdout = out_reader.join().expect("stdout reader");
    let stderr = err_reader.join().expect("stderr reader");
    Out {
        code: status.code(),
        stdout: String::from_utf8(stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(stderr).expect("stderr is UTF-8"),
    }
}

/// A fresh store (fan-out 4) in its own temporary directory, removed on drop: the shared
/// `TestStore`, with what these tests do with it below.
pub type Env = TestStore;

impl TestStore {
    pub fn with_fan_out(fan_out: u32) -> Self {
        Self::with(|b| b.fan_out(fan_out))
    }

    /// Runs `sessiondir <command> --dir <store> <args>`.
    pub fn run(&self, command: &str, args: &[&str]) -> Out {
        let mut all: Vec<OsString> = vec![command.into(), "--dir".into(), self.dir.clone().into()];
        all.extend(args.iter().map(OsString::from));
        sessiondir(all)
    }

    /// A `Dict` session with `counter` = `n`, never expiring.
    pub fn session(&self, n: i64) -> SessionId {
        self.store.create(&counter(n)).expect("create session")
    }

    /// A session whose fixed expiry time is an hour in the past.
    pub fn expired(&self, n: i64) -> SessionId {
        self.store
            .create_with_expiry(&counter(n), Expiry::At(an_hour_ago()))
            .expect("create expired session")
    }

    /// The size on disk of a session's file (header included), from the library.
    pub fn file_len(&self, id: &SessionId) -> u64 {
        self.store
            .info(id)
            .expect("read info")
            .expect("session exists")
            .file_len()
    }

    /// What is left of `ids` on disk (expired or not).
    pub fn on_disk(&self, ids: &[SessionId]) -> Vec<SessionId> {
        ids.iter()
            .copied()
            .filter(|id| self.store.info(id).expect("read info").is_some())
            .collect()
    }
}

pub fn counter(n: i64) -> Dict {
    let mut d = Dict::new();
    d.insert("counter", n);
    d
}

pub fn an_hour_ago() -> SystemTime {
    SystemTime::now() - Duration::from_secs(3600)
}

/// Milliseconds since the Unix epoch, as the CLI prints times in JSON.
pub fn epoch_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .expect("time after 1970")
        .as_millis() as u64
}

/// The RFC 3339 text (to the second) the CLI prints times as.
pub fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// Sorted ids as strings, for comparing sets.
pub fn sorted(ids: &[SessionId]) -> Vec<String> {
    let mut v: Vec<String> = ids.iter().map(|id| id.to_string()).collect();
    v.sort();
    v
}

/// Sorted `"id"` fields of JSON objects.
pub fn json_ids(values: &[Json]) -> Vec<String> {
    let mut v: Vec<String> = values
        .iter()
        .map(|o| o["id"].as_str().expect("an id field").to_string())
        .collect();
    v.sort();
    v
}

/// Whether `path` or anything below it exists.
pub fn exists(path: &Path) -> bool {
    std::fs::symlink_metadata(path).is_ok()
}

/// Waits (sleeping, as setup rather than as an assertion) until sessions written before this
/// call have been idle for longer than `idle`.
pub fn age_past(idle: Duration) {
    std::thread::sleep(idle + Duration::from_millis(300));
}
