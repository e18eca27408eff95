//! A `SessionMut` whose data did not change skips the rewrite (issue 18, point 2): over HTTP,
//! requests that take the session exclusively and change nothing (or write back the same
//! value) leave its file untouched (same inode, same bytes, generation 1), yet keep a session
//! with a 2 s idle lifetime alive across 0.7 s gaps well past 2 s; a request that changes it
//! writes.

use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use sessiondir::{SessionId, Store};

use crate::app;
use crate::common::{Server, TestStore};

const TTL: Duration = Duration::from_secs(2);
/// The visitor's pace: three requests per lifetime.
const PACE: Duration = Duration::from_millis(700);
/// Six requests: the last lands 4.2 s after the write, past the 2 s the header alone promises.
const REQUESTS: u32 = 6;

/// The session file's inode and bytes.
fn file_of(store: &Store, id: &SessionId) -> (u64, Vec<u8>) {
    let path = store.session_path(id);
    let inode = std::fs::metadata(&path)
        .expect("stat the session file")
        .ino();
    (inode, std::fs::read(&path).expect("read the session file"))
}

/// Whether the session is live, asked the way an admin asks (`exists` records no activity).
fn live(store: &Store, id: &SessionId) -> bool {
    store.exists(id).expect("exists")
}

fn unchanged_requests_keep_it_alive_without_a_write(route: &str) {
    let t = TestStore::with(|b| b.idle_expiry(TTL).lock_timeout(Duration::from_secs(20)));
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = client.get("/start", None).new_id();
    assert_eq!(t.generation(&id), 1);
    let before = file_of(&t.store, &id);

    let start = Instant::now();
    for n in 1..=REQUESTS {
        // Pacing the visitor, not an assertion: each request is judged by its answer.
        std::thread::sleep(PACE);
        let reply = client.get_as(route, &id);
        assert_eq!(
            reply.status,
            200,
            "request {n} to {route}, {:?} after the write: {reply:?}",
            start.elapsed()
        );
        assert!(
            live(&t.store, &id),
            "request {n} to {route} did not keep the session alive ({:?} after the write)",
            start.elapsed()
        );
        assert_eq!(
            t.generation(&id),
            1,
            "request {n} to {route} rewrote a session it did not change"
        );
    }
    assert!(start.elapsed() > TTL, "the visitor outlived the lifetime");
    assert_eq!(
        file_of(&t.store, &id),
        before,
        "the session file was replaced or rewritten"
    );

    // A request that changes the data writes.
    let reply = client.get_as("/count", &id);
    assert_eq!((reply.status, reply.body.as_str()), (200, "1"), "{reply:?}");
    assert_eq!(t.generation(&id), 2);
    assert_eq!(t.counter(&id), Some(1));
}

#[test]
fn a_session_mut_that_changes_nothing_writes_nothing_and_slides() {
    unchanged_requests_keep_it_alive_without_a_write("/noop");
}

#[test]
fn a_session_mut_that_writes_the_same_value_back_writes_nothing_and_slides() {
    unchanged_requests_keep_it_alive_without_a_write("/same");
}
