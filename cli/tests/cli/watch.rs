//! `sessiondir watch`: the events of a create, a check-in and a delete, in order, as JSON.

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use sessiondir::{Dict, SessionId};

use crate::common::{ChildGuard, Env, command};

/// The longest the whole test may take.
const OVERALL: Duration = Duration::from_secs(30);
/// How long to wait for an event after a change, once the watcher is known to be running.
const EVENT: Duration = Duration::from_secs(10);
/// How long to wait for the first event after each probe.
const PROBE: Duration = Duration::from_millis(300);

struct Watcher {
    child: ChildGuard,
    lines: Receiver<String>,
}

fn start_watch(env: &Env, args: &[&str]) -> Watcher {
    let mut cmd = command();
    cmd.arg("watch")
        .arg("--dir")
        .arg(&env.dir)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = ChildGuard(cmd.spawn().expect("spawn watch"));
    let stdout = child.0.stdout.take().expect("piped stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Watcher { child, lines }
}

fn stderr_of(w: &mut Watcher) -> String {
    use std::io::Read;
    let _ = w.child.0.kill();
    let _ = w.child.0.wait();
    let mut s = String::new();
    if let Some(mut e) = w.child.0.stderr.take() {
        let _ = e.read_to_string(&mut s);
    }
    s
}

fn parse(line: &str) -> Json {
    serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}"))
}

fn next_event(w: &mut Watcher, what: &str) -> Json {
    match w.lines.recv_timeout(EVENT) {
        Ok(line) => parse(&line),
        Err(e) => {
            let stderr = stderr_of(w);
            panic!("no watch event for {what} within {EVENT:?} ({e:?}); stderr: {stderr}")
        }
    }
}

/// One attempt: `Some(events)` of the session the watcher saw being created, or `None` if the
/// probing was ambiguous (an older probe's creation was reported) and must be redone.
fn attempt(env: &Env, deadline: Instant) -> Option<(SessionId, Vec<Json>)> {
    let mut w = start_watch(env, &["--count", "3", "--json"]);
    // The watcher is ready once it reports a change: create sessions until it reports one.
    let mut last_probe;
    let first = loop {
        assert!(
            Instant::now() < deadline,
            "watch never reported a creation; stderr: {}",
            stderr_of(&mut w)
        );
        last_probe = env.session(0);
        match w.lines.recv_timeout(PROBE) {
            Ok(line) => break parse(&line),
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => {
                panic!("watch exited early; stderr: {}", stderr_of(&mut w))
            }
        }
    };
    assert_eq!(first["event"], "created", "{first}");
    if first["id"] != last_probe.as_str() {
        // A slow event from an earlier probe: later probes may still be reported. Start over.
        return None;
    }
    let id = last_probe;
    let mut events = vec![first];

    let mut c = env.store.checkout::<Dict>(&id).unwrap();
    c.data_mut().increment("counter", 1).unwrap();
    c.check_in().unwrap();
    // Wait for the check-in's event before deleting: the watcher reads the header of a file
    // that appeared, and a deletion racing ahead of it would hide the check-in.
    events.push(next_event(&mut w, "the check-in"));
    assert!(env.store.delete(&id).unwrap());
    events.push(next_event(&mut w, "the deletion"));

    let status = w.child.wait_timeout(EVENT);
    let Some(status) = status else {
        panic!("watch --count 3 did not exit after 3 events")
    };
    assert!(status.success(), "watch exited with {status}");
    // Nothing after the third event.
    assert_eq!(
        w.lines.recv_timeout(Duration::from_secs(2)).ok(),
        None,
        "extra output after --count 3"
    );
    Some((id, events))
}

#[test]
fn watch_reports_create_check_in_and_delete() {
    let env = Env::new();
    let deadline = Instant::now() + OVERALL;
    let (id, events) = loop {
        if let Some(r) = attempt(&env, deadline) {
            break r;
        }
        assert!(Instant::now() < deadline, "watch probing never settled");
    };
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["created", "checked-in", "deleted"], "{events:?}");
    for e in &events {
        assert_eq!(e["id"], id.as_str(), "{e}");
        assert!(e["seen_ms"].as_u64().is_some_and(|ms| ms > 0), "{e}");
    }
    assert_eq!(events[0]["generation"], 1);
    assert_eq!(events[1]["generation"], 2);
    assert_eq!(events[2]["generation"], Json::Null);
}

#[test]
fn watch_count_zero_exits_at_once() {
    let env = Env::new();
    let out = env.run("watch", &["--count", "0", "--json"]);
    out.ok();
    assert_eq!(out.stdout, "");
}
