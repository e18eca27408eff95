//! The Redis backend's own promises: leases with fencing numbers checked by the server,
//! across real processes (one of them frozen with SIGSTOP past its lease), prompt wake-up on
//! release, expiry by the server's own TTLs, and typed errors for damaged values and an
//! unreachable server.

use std::io::Write;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use redis::Commands;
use sessiondir::redis::RedisStore;
use sessiondir::{AcquiredBy, Backend, Dict, Error, Expiry, SessionId};

use crate::common::{RedisServer, n_of, redis_available, wait_until};
use crate::support::child::{ChildGuard, report_channel, rerun_this_binary};

const ROLE_VAR: &str = "SESSIONDIR_REDIS_CHILD";
const MARK: &str = "@@redis-child@@ ";

// ---------------------------------------------------------------------------------------------
// Fencing within one process.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_holder_past_its_lease_cannot_check_in_and_its_write_never_lands() {
    if !redis_available() {
        return;
    }
    let server = RedisServer::start();
    let store = server
        .builder()
        .lease(Duration::from_millis(200))
        .open()
        .expect("open");
    let id = store.create(&Dict::new()).expect("create");

    let mut stale = store.checkout::<Dict>(&id).expect("first check-out");
    let stale_fence = stale.fence();
    stale.data_mut().insert("n", 999);
    wait_until(Duration::from_secs(5), "the first lease to run out", || {
        !store.is_checked_out(&id).expect("is_checked_out")
    });

    let mut next = store.checkout::<Dict>(&id).expect("second check-out");
    assert!(next.fence() > stale_fence, "fencing numbers grow");
    next.data_mut().insert("n", 1);
    let next_fence = next.fence();

    // While the second holder holds it, the stale one is refused and changes nothing.
    let refused = stale.save().expect_err("stale save must be refused");
    assert!(
        matches!(refused, Error::Conflict { held, found: Some(found), .. }
            if held == stale_fence && found == next_fence),
        "{refused:?}"
    );
    next.check_in().expect("second holder checks in");
    assert_eq!(n_of(&store, &id), 1);

    // After the second holder released, still refused: nobody's lease is the stale one.
    let error = stale
        .check_in()
        .expect_err("stale check-in must be refused");
    assert!(
        matches!(error.error(), Error::Conflict { found: None, .. }),
        "{:?}",
        error.error()
    );
    let stale = error.into_checkout();
    assert!(
        stale.delete().is_err(),
        "a stale holder cannot delete either"
    );
    assert_eq!(n_of(&store, &id), 1, "the stale write never landed");
    assert!(
        store.try_checkout::<Dict>(&id).is_ok(),
        "nobody holds it now"
    );
}

#[test]
fn extending_a_live_lease_keeps_the_session_and_a_lost_one_is_a_conflict() {
    if !redis_available() {
        return;
    }
    let server = RedisServer::start();
    let store = server
        .builder()
        .lease(Duration::from_millis(300))
        .open()
        .expect("open");
    let id = store.create(&Dict::new()).expect("create");
    let mut held = store.checkout::<Dict>(&id).expect("check out");
    let mut raw = server.raw();
    let lock_key = format!("{}:lock", store.session_key(&id));
    held.extend_lease().expect("extend");
    let pttl: i64 = raw.pttl(&lock_key).expect("pttl");
    assert!(pttl > 200, "extended to the full lease: {pttl} ms left");
    held.data_mut().insert("n", 5);
    held.save().expect("save keeps the lease");
    assert!(store.is_checked_out(&id).expect("held"));
    // Pull the lease from under the holder (as its expiry would).
    let _: i64 = raw.del(&lock_key).expect("del");
    assert!(matches!(
        held.extend_lease(),
        Err(Error::Conflict { found: None, .. })
    ));
    drop(held);
    assert_eq!(n_of(&store, &id), 5);
}

#[test]
fn a_waiter_is_woken_by_the_release_event_not_by_a_poll() {
    if !redis_available() {
        return;
    }
    let server = RedisServer::start();
    // A poll delay far longer than the hold: a wake-up within it must come from the release.
    let store = server
        .builder()
        .poll_delay(Duration::from_secs(5))
        .open()
        .expect("open");
    let id = store.create(&Dict::new()).expect("create");
    let held = store.checkout::<Dict>(&id).expect("check out");
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let store = store.clone();
        std::thread::spawn(move || {
            let _ = tx.send(());
            let got = store.checkout::<Dict>(&id).expect("waiter checks out");
            (got.acquisition().by, got.acquisition().waited)
        })
    };
    rx.recv().expect("waiter started");
    // Let the waiter get through its first attempts and subscribe (a wait, not an assertion).
    wait_until(Duration::from_secs(5), "the waiter to subscribe", || {
        let subscribers: Vec<(String, i64)> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(format!("{}:released", store.session_key(&id)))
            .query(&mut server.raw())
            .expect("pubsub numsub");
        subscribers.first().is_some_and(|(_, n)| *n == 1)
    });
    // Let its back-off grow (1 ms doubling): after a second it pauses hundreds of milliseconds
    // between attempts, so a release that lands inside one of its sub-millisecond attempts
    // (which would rightly count as a poll) becomes very unlikely. Setup, not the assertion.
    std::thread::sleep(Duration::from_secs(1));
    let released = Instant::now();
    drop(held);
    let (by, _) = waiter.join().expect("waiter");
    let latency = released.elapsed();
    assert_eq!(by, AcquiredBy::Event, "after {latency:?}");
    assert!(
        latency < Duration::from_millis(400),
        "woken promptly by the release ({latency:?})"
    );
}

#[test]
fn expiry_is_the_servers_own_ttl() {
    if !redis_available() {
        return;
    }
    let server = RedisServer::start();
    let store = server.store();
    let mut raw = server.raw();
    let sliding = store
        .create_with_expiry(&Dict::new(), Expiry::Idle(Duration::from_secs(60)))
        .expect("create");
    let key = store.session_key(&sliding);
    let pttl: i64 = raw.pttl(&key).expect("pttl");
    assert!((50_000..=60_000).contains(&pttl), "sliding TTL set: {pttl}");
    let forever = store.create(&Dict::new()).expect("create");
    let pttl: i64 = raw.pttl(store.session_key(&forever)).expect("pttl");
    assert_eq!(pttl, -1, "no expiry, no TTL");

    let brief = store
        .create_with_expiry(&Dict::new(), Expiry::Idle(Duration::from_millis(150)))
        .expect("create");
    wait_until(
        Duration::from_secs(5),
        "the server to expire the key",
        || {
            let exists: i64 = raw.exists(store.session_key(&brief)).expect("exists");
            exists == 0
        },
    );
    assert!(store.load::<Dict>(&brief).expect("load").is_none());
    assert!(store.checkout::<Dict>(&brief).expect_err("gone").is_gone());
}

#[test]
fn a_damaged_value_is_a_typed_error_naming_the_key_and_other_sessions_are_fine() {
    if !redis_available() {
        return;
    }
    let server = RedisServer::start();
    let store = server.store();
    let good = store.create(&Dict::new()).expect("create");
    let bad = store.create(&Dict::new()).expect("create");
    let key = store.session_key(&bad);
    let _: i64 = server
        .raw()
        .hset(&key, "frame", b"not a session frame".as_slice())
        .expect("damage");
    let error = store.load::<Dict>(&bad).expect_err("damaged");
    assert!(matches!(error, Error::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains(&key), "{error}");
    let error = store.checkout::<Dict>(&bad).expect_err("damaged");
    assert!(matches!(error, Error::Corrupt { .. }), "{error:?}");
    assert!(
        !store
            .is_checked_out(&bad)
            .expect("lease released after the error")
    );
    assert!(store.load::<Dict>(&good).expect("load").is_some());
    assert!(
        store
            .delete(&bad)
            .expect("a damaged session can be deleted")
    );
}

#[test]
fn a_cycle_leaves_a_forwarding_key_that_the_server_expires_with_the_record() {
    if !redis_available() {
        return;
    }
    let server = RedisServer::start();
    let store = server.store();
    let mut raw = server.raw();
    let old = store.create(&Dict::new()).expect("create");
    let new = store.cycle_id(&old).expect("cycle");
    let key = format!("{}:fwd", store.session_key(&old));
    // Set in the cycle's own script, with the record's lifetime as its TTL: no gc needed.
    let pttl: i64 = raw.pttl(&key).expect("pttl");
    assert!((55_000..=60_000).contains(&pttl), "record TTL: {pttl}");
    let bytes: Vec<u8> = raw.get(&key).expect("get");
    assert_eq!(bytes.len(), 64, "the directory store's 64-byte record");
    assert_eq!(&bytes[..4], b"SDFW");
    assert_eq!(&bytes[24..56], new.as_str().as_bytes());
    assert_eq!(store.delete_expired_forwards().expect("nothing to do"), 0);

    // A damaged record is a typed error naming the key, never a panic nor a follow.
    let _: () = raw
        .set(&key, b"SDFW and garbage".as_slice())
        .expect("damage");
    let error = store.forwarded(&old).expect_err("damaged");
    assert!(matches!(error, Error::Corrupt { .. }), "{error:?}");
    assert!(error.to_string().contains(&key), "{error}");

    // Gone with its TTL: the old id forwards nowhere.
    let brief: i64 = raw.pexpire(&key, 50).expect("pexpire");
    assert_eq!(brief, 1);
    wait_until(Duration::from_secs(5), "the server to expire it", || {
        let exists: i64 = raw.exists(&key).expect("exists");
        exists == 0
    });
    assert_eq!(store.forwarded(&old).expect("read"), None);
}

#[test]
fn an_unreachable_server_is_a_typed_error_naming_the_address() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port(); // closed again at once: nobody listens there
    let url = format!("redis://127.0.0.1:{port}/0");
    let error = RedisStore::builder(&url)
        .connect_timeout(Duration::from_millis(500))
        .open()
        .expect_err("nobody listens");
    assert!(matches!(error, Error::Redis { .. }), "{error:?}");
    assert!(error.to_string().contains(&port.to_string()), "{error}");
    let error = RedisStore::open("not a url").expect_err("bad url");
    assert!(error.to_string().contains("not a url"), "{error}");
}

#[test]
fn a_server_that_dies_mid_use_gives_errors_not_hangs() {
    if !redis_available() {
        return;
    }
    let mut server = RedisServer::start();
    let store = server
        .builder()
        .io_timeout(Duration::from_millis(500))
        .connect_timeout(Duration::from_millis(500))
        .open()
        .expect("open");
    let id = store.create(&Dict::new()).expect("create");
    let held = store.checkout::<Dict>(&id).expect("check out");
    drop(std::mem::replace(&mut server, RedisServer::start())); // the old server is killed
    let start = Instant::now();
    assert!(matches!(store.load::<Dict>(&id), Err(Error::Redis { .. })));
    assert!(matches!(held.check_in(), Err(e) if matches!(e.error(), Error::Redis { .. })));
    assert!(start.elapsed() < Duration::from_secs(10));
}

// ---------------------------------------------------------------------------------------------
// Across processes.
// ---------------------------------------------------------------------------------------------

#[test]
#[ignore = "entry point for child processes, run by the tests themselves"]
fn child_entry() {
    let Ok(role) = std::env::var(ROLE_VAR) else {
        return;
    };
    let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} not set"));
    let lease = Duration::from_millis(var("SESSIONDIR_LEASE_MS").parse().expect("lease ms"));
    let store = RedisStore::builder(&var("SESSIONDIR_REDIS_URL"))
        .prefix("test:")
        .lease(lease)
        .open()
        .expect("child opens the store");
    let id = SessionId::parse(&var("SESSIONDIR_ID")).expect("id");
    let say = |line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{MARK}{line}");
        let _ = out.flush();
    };
    match role.as_str() {
        "increment" => {
            let ops: u32 = var("SESSIONDIR_OPS").parse().expect("ops");
            for _ in 0..ops {
                let mut session = store.checkout::<Dict>(&id).expect("child checks out");
                session.data_mut().increment("n", 1).expect("increment");
                session.check_in().expect("child checks in");
            }
            say("done");
        }
        "stalled" => {
            let mut session = store.checkout::<Dict>(&id).expect("child checks out");
            say(&format!("held {}", session.fence()));
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).expect("stdin");
            session.data_mut().insert("n", 999);
            match session.check_in() {
                Ok(()) => say("landed"),
                Err(e) => match e.error() {
                    Error::Conflict { held, found, .. } => {
                        say(&format!("conflict {held} {}", found.unwrap_or(0)));
                    }
                    other => say(&format!("error {other}")),
                },
            }
        }
        other => panic!("unknown role {other}"),
    }
}

/// A child process of this test binary playing `role` on session `id`; killed and reaped on
/// drop.
struct ChildProc {
    child: ChildGuard,
    lines: mpsc::Receiver<String>,
}

impl ChildProc {
    fn spawn(server: &RedisServer, role: &str, id: &SessionId, env: &[(&str, String)]) -> Self {
        let mut command = rerun_this_binary("redis_lease::child_entry");
        command
            .env(ROLE_VAR, role)
            .env("SESSIONDIR_REDIS_URL", server.url())
            .env("SESSIONDIR_ID", id.to_string())
            .env("SESSIONDIR_LEASE_MS", "30000")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("spawn child");
        let stdout = child.stdout.take().expect("stdout");
        let lines = report_channel(stdout, MARK);
        ChildProc {
            child: ChildGuard(child),
            lines,
        }
    }

    fn next_line(&self, timeout: Duration) -> String {
        self.lines
            .recv_timeout(timeout)
            .expect("a report from the child in time")
    }

    fn signal(&self, signal: i32) {
        let pid = i32::try_from(self.child.0.id()).expect("pid");
        // SAFETY: kill(2) on our own child's pid; no memory is involved.
        assert_eq!(
            unsafe { libc::kill(pid, signal) },
            0,
            "kill({pid}, {signal})"
        );
    }

    fn send(&mut self, line: &str) {
        let stdin = self.child.0.stdin.as_mut().expect("stdin");
        writeln!(stdin, "{line}").expect("write to child");
        stdin.flush().expect("flush");
    }

    fn wait_success(mut self) {
        let status = self.child.0.wait().expect("wait");
        assert!(status.success(), "child failed: {status}");
    }
}

#[test]
fn worker_processes_lose_no_update_on_one_hot_session() {
    const WORKERS: usize = 4;
    const OPS: u32 = 150;
    if !redis_available() {
        return;
    }
    let server = RedisServer::start();
    let store = server.store();
    let id = store.create(&Dict::new()).expect("create");
    let children: Vec<ChildProc> = (0..WORKERS)
        .map(|_| {
            ChildProc::spawn(
                &server,
                "increment",
                &id,
                &[("SESSIONDIR_OPS", OPS.to_string())],
            )
        })
        .collect();
    for child in children {
        assert_eq!(child.next_line(Duration::from_secs(60)), "done");
        child.wait_success();
    }
    assert_eq!(n_of(&store, &id), WORKERS as i64 * i64::from(OPS));
    let info = store.info(&id).expect("info").expect("exists");
    assert_eq!(info.generation, 1 + WORKERS as u64 * u64::from(OPS));
}

#[test]
fn a_holder_frozen_with_sigstop_past_its_lease_is_refused_at_check_in() {
    if !redis_available() {
        return;
    }
    let server = RedisServer::start();
    let store = server.store();
    let id = store.create(&Dict::new()).expect("create");
    let mut frozen = ChildProc::spawn(
        &server,
        "stalled",
        &id,
        &[("SESSIONDIR_LEASE_MS", "300".to_owned())],
    );
    let line = frozen.next_line(Duration::from_secs(30));
    let frozen_fence: u64 = line
        .strip_prefix("held ")
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("unexpected report {line:?}"));
    frozen.signal(libc::SIGSTOP);

    // The frozen process cannot extend anything; its lease runs out on the server.
    let mut session = store
        .checkout::<Dict>(&id)
        .expect("check out after the lease ran out");
    assert!(session.fence() > frozen_fence);
    let our_fence = session.fence();
    session.data_mut().insert("n", 1);
    frozen.signal(libc::SIGCONT);
    frozen.send("go"); // it tries to check in while we hold the session
    let report = frozen.next_line(Duration::from_secs(30));
    assert_eq!(report, format!("conflict {frozen_fence} {our_fence}"));
    session.check_in().expect("the live holder checks in");
    assert_eq!(n_of(&store, &id), 1, "the frozen holder's 999 never landed");
    frozen.wait_success();
}
