//! A real `redis-server` of the test's own, on loopback (feature `redis`), and what happens
//! on a machine without one: [`redis_available`].

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use sessiondir::redis::{RedisBuilder, RedisStore};

use super::child::ChildGuard;

/// What a machine without `redis-server` reads, once per test binary.
const MISSING: &str = "redis-server not found on PATH: this binary's Redis tests are SKIPPED \
(each returns at once and shows as ok). To run them, install it (Debian/Ubuntu: apt-get install \
redis-server; Fedora: dnf install redis; Arch: pacman -S redis; Alpine: apk add redis) or run \
scripts/test, which installs it. With CI set, a missing redis-server fails instead.";

/// Whether the Redis tests can run here, i.e. whether `redis-server` starts from `PATH`. Every
/// Redis test begins with `if !redis_available() { return; }`.
///
/// Without it, the first test to ask writes [`MISSING`] once to the binary's real stderr
/// (past libtest's capture, so it shows in a passing run) and the tests return at once: one
/// clear message instead of one panic per test. Under CI (`CI` set and not `false` or `0`, as
/// CI services set it) a missing server panics instead: CI must never pass by skipping.
pub fn redis_available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    let available = *AVAILABLE.get_or_init(|| {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found && !in_ci() {
            let _ = writeln!(std::io::stderr().lock(), "\n{MISSING}\n");
        }
        found
    });
    assert!(
        available || !in_ci(),
        "redis-server not found on PATH, and CI is set: CI runs every Redis test (install the \
         package redis-server; scripts/test does)"
    );
    available
}

/// Whether this is a CI run (`CI=true`, as GitHub Actions, GitLab and others set it).
fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// A `redis-server` of this test's own, on a free loopback port, without persistence; killed
/// and reaped on drop. Callers check [`redis_available`] first.
pub struct RedisServer {
    _server: ChildGuard,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl RedisServer {
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir for redis-server");
        // Ask the kernel for a free port, then hand it to the server; retry if someone else
        // took it in between.
        for _ in 0..20 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut child = Command::new("redis-server")
                .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
                .args([
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--protected-mode",
                    "yes",
                ])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::inherit())
                .spawn()
                .expect("start redis-server (is it installed? .ci/run installs it)");
            let stdout = child.stdout.take().expect("piped stdout");
            // Killed and reaped on drop from here on, a failed start included.
            let child = ChildGuard(child);
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    if line.contains("Ready to accept connections") {
                        let _ = tx.send(true);
                    } else if line.contains("Address already in use") {
                        let _ = tx.send(false);
                    }
                }
            });
            if let Ok(true) = rx.recv_timeout(Duration::from_secs(10)) {
                return RedisServer {
                    _server: child,
                    port,
                    _dir: dir,
                };
            }
        }
        panic!("could not start redis-server on a free port");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// A builder for a store on this server, with a prefix of the test's own.
    pub fn builder(&self) -> RedisBuilder {
        RedisStore::builder(&self.url()).prefix("test:")
    }

    pub fn store(&self) -> RedisStore {
        self.builder().open().expect("open redis store")
    }

    /// A raw client connection, to look at (or damage) what the store wrote.
    pub fn raw(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection())
            .expect("raw redis connection")
    }
}
