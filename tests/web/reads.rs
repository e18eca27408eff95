//! The read-only extractor never waits: a page that only reads is answered while another
//! holder (here a thread of the test) keeps the session checked out, and writers queue.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use sessiondir::{Dict, Store};

use crate::app;
use crate::common::{Server, TestStore, Waits, wait_until};

/// Far above how long a read may take: a read that waited for the holder would hit it.
const READ_BOUND: Duration = Duration::from_secs(2);

#[test]
fn reads_complete_while_a_writer_holds_the_session() {
    let waits = Arc::new(Waits::default());
    let observer = Arc::clone(&waits);
    let t = TestStore::with(|b| b.lock_timeout(Duration::from_secs(20)).observer(observer));
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = client.get("/count", None).new_id();

    // The holder opens the store on its own, like another worker process would: the server's
    // check-out then waits on the file lock and tells its observer.
    let holder = Store::open(&t.dir).expect("open the store again");
    let mut held = holder.checkout::<Dict>(&id).expect("hold the session");
    std::thread::scope(|scope| {
        // A writer request: it must wait for the holder.
        let writer = scope.spawn(|| server.client().get_as("/count", &id));
        wait_until(
            Duration::from_secs(10),
            "the writer request to queue for the session",
            || waits.0.load(Ordering::SeqCst) > 0 || writer.is_finished(),
        );

        for _ in 0..5 {
            let start = Instant::now();
            let read = client.get_as("/peek", &id);
            let took = start.elapsed();
            assert_eq!((read.status, read.body.as_str()), (200, "1"), "{read:?}");
            assert!(took < READ_BOUND, "a read waited {took:?} for the holder");
            assert!(read.cookies.is_empty(), "{read:?}");
        }
        assert!(
            !writer.is_finished(),
            "the writer did not wait for the holder"
        );

        // The holder checks in; the waiting writer gets its version, not a stale one.
        held.data_mut().insert("counter", 10i64);
        held.check_in().expect("check in");
        let written = writer.join().expect("writer thread");
        assert_eq!((written.status, written.body.as_str()), (200, "11"));
    });
    assert_eq!(t.counter(&id), Some(11));
}
