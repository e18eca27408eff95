//! Worker processes: this very test binary, re-run with `SESSIONDIR_WEB_CHILD=worker`, serves
//! the test app (see `app`) from the store at `SD_DIR` on a port of the OS's choosing, and
//! reports the port on stdout (`@@web-child@@ PORT 40123`).
//!
//! A worker exits when its stdin reaches end of file (its parent is gone) and after
//! [`MAX_LIFETIME`] whatever happens. The parent side, [`Worker`], kills (SIGKILL) and reaps
//! its process on drop (a `ChildGuard`), so no worker outlives a test, even a failing one.

use std::io::{BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc::Receiver;
use std::thread::JoinHandle;
use std::time::Duration;

use sessiondir::Store;

use crate::app;
use crate::support::child::{self, ChildGuard};

const ROLE_VAR: &str = "SESSIONDIR_WEB_CHILD";
const MARK: &str = "@@web-child@@ ";
const MAX_LIFETIME: Duration = Duration::from_secs(120);

#[test]
#[ignore = "entry point for worker processes, run by the tests themselves"]
fn entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    assert_eq!(role, "worker", "unknown child role");
    child::exit_after(MAX_LIFETIME, "worker");
    // No commands: stdin only tells, by its end of file, that the parent is gone.
    let _ = child::stdin_commands();
    let dir = std::env::var("SD_DIR").expect("SD_DIR is set");
    let timeout_ms: u64 = std::env::var("SD_LOCK_TIMEOUT_MS")
        .expect("SD_LOCK_TIMEOUT_MS is set")
        .parse()
        .expect("SD_LOCK_TIMEOUT_MS is a number");
    let store = Store::builder(&dir)
        .lock_timeout(Duration::from_millis(timeout_ms))
        .open()
        .expect("worker opens the store");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("build a Tokio runtime");
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let port = listener.local_addr().expect("local address").port();
        println!("{MARK}PORT {port}");
        axum::serve(listener, app::app(store)).await.expect("serve");
    });
}

/// A worker process serving the test app, killed and reaped on drop.
pub struct Worker {
    pub port: u16,
    child: ChildGuard,
    output: Option<JoinHandle<String>>,
}

impl Worker {
    /// Starts a worker on the store at `dir` and waits (bounded) for its port.
    pub fn start(dir: &Path, lock_timeout: Duration) -> Worker {
        let mut child = child::rerun_this_binary("child::entry")
            .env(ROLE_VAR, "worker")
            .env("SD_DIR", dir)
            .env("SD_LOCK_TIMEOUT_MS", lock_timeout.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn a worker process");
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        let ports = child::report_channel(stdout, MARK);
        let output = std::thread::spawn(move || {
            let mut text = String::new();
            let _ = BufReader::new(stderr).read_to_string(&mut text);
            text
        });
        let mut worker = Worker {
            port: 0,
            child: ChildGuard(child),
            output: Some(output),
        };
        worker.port = worker.wait_for_port(&ports);
        worker
    }

    fn wait_for_port(&mut self, reports: &Receiver<String>) -> u16 {
        match reports.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line
                .strip_prefix("PORT ")
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("worker reported {line:?}, not a port")),
            Err(e) => {
                let _ = self.child.0.kill();
                let _ = self.child.0.wait();
                let stderr = self
                    .output
                    .take()
                    .map(|h| h.join().unwrap_or_default())
                    .unwrap_or_default();
                panic!("worker did not report its port: {e}\nstderr:\n{stderr}");
            }
        }
    }
}
