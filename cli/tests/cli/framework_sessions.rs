//! `sessiondir show` on a session written by a web-framework adapter (tower-sessions): the
//! command displays its entries as their JSON texts.

use sessiondir::Store;
use sessiondir::tower::TowerStore;
use time::OffsetDateTime;
use tower_sessions_core::SessionStore as _;
use tower_sessions_core::session::{Id, Record};

use crate::common::command;

/// A tower-sessions record's data: JSON values by key.
fn user_data() -> std::collections::HashMap<String, serde_json::Value> {
    [
        ("user".to_owned(), serde_json::json!("ada")),
        (
            "roles".to_owned(),
            serde_json::json!(["admin", {"since": 1843}]),
        ),
        ("visits".to_owned(), serde_json::json!(3)),
    ]
    .into_iter()
    .collect()
}

/// `sessiondir show --json` displays a framework session's entries as their JSON texts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessiondir_show_displays_a_framework_session() {
    let tmp = tempfile::tempdir().expect("create a temporary directory");
    let sessions = Store::open(tmp.path().join("sessions")).expect("open the store");
    let store = TowerStore::new(sessions.clone());
    let mut record = Record {
        id: Id::default(),
        data: user_data(),
        expiry_date: OffsetDateTime::now_utc() + time::Duration::hours(1),
    };
    store.create(&mut record).await.expect("create");
    let id = TowerStore::session_id(&record.id);
    let out = command()
        .args(["show", id.as_str(), "--json", "--dir"])
        .arg(sessions.dir())
        .output()
        .expect("run sessiondir show");
    assert!(
        out.status.success(),
        "sessiondir show failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON line");
    assert_eq!(shown["id"], serde_json::json!(id.as_str()));
    assert_eq!(shown["data"]["user"], serde_json::json!(r#""ada""#));
    assert_eq!(
        shown["data"]["roles"],
        serde_json::json!(r#"["admin",{"since":1843}]"#)
    );
    assert_eq!(shown["data"]["visits"], serde_json::json!("3"));
}
