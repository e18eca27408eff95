//! `GcTask`: expired sessions are deleted on an interval by a task of the application (no
//! cron), each pass is logged, and the task ends with the app.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sessiondir::axum::GcTask;
use sessiondir::{Dict, Expiry};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

use crate::app;
use crate::common::{Server, TestStore, wait_until};

#[test]
fn expired_sessions_are_deleted_without_cron_and_the_task_stops_with_the_app() {
    let t = TestStore::with(|b| b.idle_expiry(Duration::from_millis(300)));
    let server = Server::start(app::app(t.store.clone()));
    let client = server.client();
    let id = client.get("/count", None).new_id();
    let kept = t
        .store
        .create_with_expiry(&Dict::new(), Expiry::Never)
        .expect("create");

    // (passes, sessions deleted) as the task reported them.
    let totals = Arc::new(Mutex::new((0u64, 0u64)));
    let seen = Arc::clone(&totals);
    let gc = {
        let _runtime = server.runtime().enter();
        GcTask::spawn_with(t.store.clone(), Duration::from_millis(50), move |pass| {
            let pass = pass.as_ref().expect("a gc pass");
            let mut totals = seen.lock().expect("totals");
            totals.0 += 1;
            totals.1 += pass.sessions.deleted;
        })
    };
    wait_until(
        Duration::from_secs(10),
        "a gc pass to report the expired session deleted",
        || totals.lock().expect("totals").1 > 0,
    );
    assert!(
        t.store.info(&id).expect("read header").is_none(),
        "still on disk"
    );
    let (passes, deleted) = *totals.lock().expect("totals");
    assert!(passes >= 1);
    assert_eq!(deleted, 1, "exactly the expired session");
    assert!(
        t.store.exists(&kept).expect("exists"),
        "a live session was deleted"
    );
    // The old cookie now names nothing: a fresh session.
    let again = client.get_as("/count", &id);
    assert_eq!(again.body, "1");
    assert_ne!(again.new_id(), id);

    server.runtime().block_on(gc.stop());
    // The task, and the hook it owned, are gone: nothing runs after the app stopped.
    assert_eq!(
        Arc::strong_count(&totals),
        1,
        "the task still holds its hook"
    );
}

#[test]
fn each_pass_is_logged_with_its_report() {
    let t = TestStore::new();
    let past = SystemTime::now() - Duration::from_secs(1);
    t.store
        .create_with_expiry(&Dict::new(), Expiry::At(past))
        .expect("create");
    let events = Arc::new(Mutex::new(Vec::new()));
    let capture = Capture(Arc::clone(&events));
    // A current-thread runtime: the task runs on this thread, under this thread's subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(capture, || {
        runtime.block_on(async {
            let gc = GcTask::spawn(t.store.clone(), Duration::from_millis(20));
            let logged = async {
                while !events
                    .lock()
                    .expect("events")
                    .iter()
                    .any(|e: &Logged| e.2.contains_key("deleted"))
                {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            };
            tokio::time::timeout(Duration::from_secs(10), logged)
                .await
                .expect("a gc pass logged within 10 s");
            gc.stop().await;
        });
    });
    let events = events.lock().expect("events");
    let (level, target, fields) = &events[0];
    assert_eq!(
        (*level, target.as_str()),
        (Level::INFO, "sessiondir::gc"),
        "{events:?}"
    );
    assert_eq!(
        fields.get("deleted").map(String::as_str),
        Some("1"),
        "{fields:?}"
    );
    assert_eq!(
        fields.get("scanned").map(String::as_str),
        Some("1"),
        "{fields:?}"
    );
    assert_eq!(
        fields.get("forwards_removed").map(String::as_str),
        Some("0"),
        "{fields:?}"
    );
    assert!(t.session_files().is_empty());
}

/// One event: level, target, fields.
type Logged = (Level, String, BTreeMap<String, String>);

/// A subscriber that records every event.
struct Capture(Arc<Mutex<Vec<Logged>>>);

struct Fields(BTreeMap<String, String>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

impl Subscriber for Capture {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(BTreeMap::new());
        event.record(&mut fields);
        let meta = event.metadata();
        self.0
            .lock()
            .expect("events")
            .push((*meta.level(), meta.target().to_owned(), fields.0));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}
