//! Child processes. The parent side: [`ChildGuard`] kills and reaps its child when the test
//! ends, even a failing one; [`rerun_this_binary`] starts this very test binary as a child
//! running only one ignored entry-point test; [`read_reports`] picks the report lines out of
//! a child's stdout. The child side: [`exit_after`] and [`stdin_commands`] make sure no child
//! outlives its parent for long.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Parent side.
// ---------------------------------------------------------------------------------------------

/// A child process that is killed and reaped if the test ends (or panics) while it runs.
pub struct ChildGuard(pub Child);

impl ChildGuard {
    /// Waits for the child to exit, at most `timeout`; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.0.try_wait().expect("poll child") {
                return Some(status);
            }
            if start.elapsed() >= timeout {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A `Command` re-running this very test binary so that it runs only the ignored test `entry`
/// (its path in the binary, as `child::entry`), on one thread, its output not captured. The
/// caller adds the role, the environment and the pipes.
pub fn rerun_this_binary(entry: &str) -> Command {
    let exe = std::env::current_exe().expect("path of the test binary");
    let mut command = Command::new(exe);
    command.args([
        "--exact",
        entry,
        "--ignored",
        "--nocapture",
        "--test-threads",
        "1",
    ]);
    command
}

/// Reads a child's `stdout` line by line on a thread of its own until end of file: of each
/// line holding `mark`, the text after it goes to `report` (libtest may print its own text
/// on the same line, before the mark); every other line goes to `other`.
pub fn read_reports(
    stdout: impl Read + Send + 'static,
    mark: &'static str,
    mut report: impl FnMut(String) + Send + 'static,
    mut other: impl FnMut(String) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            match line.find(mark) {
                Some(at) => report(line[at + mark.len()..].to_owned()),
                None => other(line),
            }
        }
    })
}

/// [`read_reports`] into a channel, other lines dropped.
pub fn report_channel(stdout: impl Read + Send + 'static, mark: &'static str) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    read_reports(
        stdout,
        mark,
        move |line| {
            let _ = tx.send(line);
        },
        drop,
    );
    rx
}

// ---------------------------------------------------------------------------------------------
// Child side.
// ---------------------------------------------------------------------------------------------

/// In a child: exits the process (status 70) after `lifetime`, whatever happens to its parent.
/// `who` names the child in the message.
pub fn exit_after(lifetime: Duration, who: &'static str) {
    std::thread::spawn(move || {
        std::thread::sleep(lifetime);
        eprintln!("{who}: lived longer than {lifetime:?}, exiting");
        std::process::exit(70);
    });
}

/// In a child: reads stdin on a thread of its own, each line (trimmed) a command for the
/// returned receiver, and exits the process (status 0) at end of file or on a read error:
/// the parent closed our stdin, so it is gone (or dropped us) and nobody is listening.
pub fn stdin_commands() -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let _ = tx.send(line.trim().to_owned());
        }
        std::process::exit(0);
    });
    rx
}
