//! A machine without `redis-server`: this binary's Redis tests say so once and skip, and under
//! CI they fail. Checked by re-running this binary as a child with a `PATH` that has no
//! `redis-server` (an empty directory), selecting only Redis tests.

use std::io::Read;
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use crate::support::child::ChildGuard;

/// Runs this binary's Redis tests (the Redis half of the conformance suite and the lease tests)
/// with no `redis-server` on `PATH`, `CI` set to `ci` or unset.
fn redis_tests_without_a_server(ci: Option<&str>) -> (ExitStatus, String, String) {
    let empty = tempfile::tempdir().expect("an empty directory for PATH");
    let mut command = Command::new(std::env::current_exe().expect("path of the test binary"));
    command
        .args(["::redis::", "redis_lease::", "--test-threads", "4"])
        .env("PATH", empty.path())
        .env_remove("CI")
        .env_remove("RUST_BACKTRACE");
    if let Some(ci) = ci {
        command.env("CI", ci);
    }
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("re-run the test binary");
    let mut child = ChildGuard(child);
    let read = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = read(
        child
            .0
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = read(
        child
            .0
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let status = child
        .wait_timeout(Duration::from_secs(120))
        .expect("the Redis tests did not finish within 120 s without a server");
    let stdout = stdout.join().expect("stdout reader");
    let stderr = stderr.join().expect("stderr reader");
    (status, stdout, stderr)
}

/// The number in libtest's "test result: ok. N passed" line.
fn passed(stdout: &str) -> usize {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("test result: ok. "))
        .and_then(|rest| rest.split_once(" passed"))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn without_redis_server_the_redis_tests_say_so_once_and_skip() {
    let (status, stdout, stderr) = redis_tests_without_a_server(None);
    assert!(
        status.success(),
        "the Redis tests failed without a server instead of skipping\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"
    );
    assert_eq!(
        stderr.matches("redis-server not found on PATH").count(),
        1,
        "one message for the whole binary\n{stderr}"
    );
    assert!(stderr.contains("SKIPPED"), "{stderr}");
    assert!(stderr.contains("apt-get install redis-server"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Every Redis test of the binary ran (and returned at once).
    assert!(passed(&stdout) >= 25, "{stdout}");
}

#[test]
fn without_redis_server_under_ci_the_redis_tests_fail() {
    let (status, stdout, stderr) = redis_tests_without_a_server(Some("true"));
    assert!(
        !status.success(),
        "CI must not pass by skipping the Redis tests\n--- stdout:\n{stdout}"
    );
    // libtest prints a failed test's panic message with its captured output, on stdout.
    assert!(
        stdout.contains("redis-server not found on PATH, and CI is set"),
        "{stdout}"
    );
    assert!(!stderr.contains("SKIPPED"), "{stderr}");
    assert!(!stdout.contains("test result: ok."), "{stdout}");
}
