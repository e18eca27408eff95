//! A real `redis-server` of the test's own, on loopback (feature `redis`).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use sessiondir::redis::{RedisBuilder, RedisStore};

use super::child::ChildGuard;

/// A `redis-server` of this test's own, on a free loopback port, without persistence; killed
/// and reaped on drop. `redis-server` must be on `PATH` (`.ci/run` installs it): a missing
/// server fails the test rather than skipping it.
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
