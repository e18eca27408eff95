//! End to end: real worker processes serving one session directory on different ports, real
//! HTTP from several client threads, one session cookie. With the check-out extractor the
//! total is exact; with the read-then-write pattern of lock-free stores it is not.

use std::collections::BTreeSet;
use std::time::Duration;

use sessiondir::SessionId;

use crate::child::Worker;
use crate::common::{Client, Reply, TestStore};

const WORKERS: usize = 4;
const REQUESTS: usize = 400;
const CLIENT_THREADS: usize = 8;

/// Starts the workers on the store's directory.
fn start_workers(t: &TestStore) -> Vec<Worker> {
    (0..WORKERS)
        .map(|_| Worker::start(&t.dir, Duration::from_secs(20)))
        .collect()
}

/// A session with `counter = 0`, created through worker 0; returns its id.
fn start_session(workers: &[Worker]) -> SessionId {
    let reply = Client::new(workers[0].port).get("/start", None);
    assert_eq!(reply.status, 200, "{reply:?}");
    reply.new_id()
}

/// `REQUESTS` GETs of `path` with the one session cookie, from `CLIENT_THREADS` threads, each
/// thread going round all the workers. Returns every reply.
fn fire(workers: &[Worker], path: &str, id: &SessionId) -> Vec<Reply> {
    let ports: Vec<u16> = workers.iter().map(|w| w.port).collect();
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..CLIENT_THREADS)
            .map(|t| {
                let ports = &ports;
                scope.spawn(move || {
                    let clients: Vec<Client> = ports.iter().map(|&p| Client::new(p)).collect();
                    (t..REQUESTS)
                        .step_by(CLIENT_THREADS)
                        .enumerate()
                        .map(|(k, _)| clients[(t + k) % clients.len()].get_as(path, id))
                        .collect::<Vec<Reply>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("client thread"))
            .collect()
    })
}

#[test]
fn checked_out_counter_is_exact_across_worker_processes() {
    let t = TestStore::new();
    let workers = start_workers(&t);
    let id = start_session(&workers);

    let replies = fire(&workers, "/count", &id);

    assert_eq!(replies.len(), REQUESTS);
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
        // The id does not change and the session does not expire: no cookie to send.
        assert!(r.cookies.is_empty(), "{r:?}");
    }
    // Every increment saw its predecessor's check-in: the values are 1..=N, each once.
    let mut values: Vec<i64> = replies
        .iter()
        .map(|r| r.body.parse().expect("a counter value"))
        .collect();
    values.sort_unstable();
    let expected: Vec<i64> = (1..=REQUESTS as i64).collect();
    assert_eq!(values, expected);
    assert_eq!(t.counter(&id), Some(REQUESTS as i64));
    let peek = Client::new(workers[WORKERS - 1].port).get_as("/peek", &id);
    assert_eq!(peek.body, REQUESTS.to_string());
    assert_eq!(t.session_files().len(), 1, "one session, no other file");
    assert_eq!(t.generation(&id), 1 + REQUESTS as u64);
}

/// The bug this module exists to fix, shown on the same workload: reading lock-free and
/// checking out only to write loses updates. Reliable: with eight requests in flight, each
/// holding its read for `WORK` before writing, reads of one version overlap all the time.
#[test]
fn read_then_write_without_the_checkout_loses_updates() {
    let t = TestStore::new();
    let workers = start_workers(&t);
    let id = start_session(&workers);

    let replies = fire(&workers, "/lww", &id);

    assert_eq!(replies.len(), REQUESTS);
    for r in &replies {
        assert_eq!(r.status, 200, "{r:?}");
    }
    let distinct: BTreeSet<i64> = replies
        .iter()
        .map(|r| r.body.parse().expect("a counter value"))
        .collect();
    let total = t.counter(&id).expect("the session exists");
    assert!(
        total < REQUESTS as i64,
        "expected lost updates, got the exact total {total}"
    );
    assert!(
        distinct.len() < REQUESTS,
        "some requests must have written the same value"
    );
    // Every write did land (one check-in per request): they overwrote each other.
    assert_eq!(t.generation(&id), 1 + REQUESTS as u64);
}
