//! Shared helpers: a store in a temporary directory, exact snapshots of its directory tree and
//! bounded waits (built on the shared test support, `tests/support/`), and the `Adapter` trait
//! that lets the conformance tests drive both framework adapters in neutral terms.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use actix_session::storage::{SessionKey, SessionStore as _};
use sessiondir::actix::ActixStore;
use sessiondir::tower::TowerStore;
use sessiondir::{SessionId, Store};
use tower_sessions_core::SessionStore as _;
use tower_sessions_core::session::{Id, Record};

use crate::support::store::TestStore;
use crate::support::tree::{named_files, tree_snapshot};
use crate::support::wait::wait_until_async;

/// A session's data in neutral terms: what tower-sessions keeps, and what actix-session keeps
/// once its JSON texts are parsed.
pub type Data = HashMap<String, serde_json::Value>;

/// A store in its own temporary directory, at the default fan-out (256) and with a lock
/// timeout of 20 s.
pub struct Fixture {
    // Kept for its `Drop`: the directory lives as long as the fixture.
    _tmp: tempfile::TempDir,
    pub store: Store,
}

impl Fixture {
    pub fn new() -> Self {
        let TestStore { store, tmp, .. } =
            TestStore::with(|b| b.fan_out(256).lock_timeout(Duration::from_secs(20)));
        Fixture { _tmp: tmp, store }
    }

    /// Every file and directory under the store, with each file's bytes: equal snapshots mean
    /// nothing was created, removed or written.
    pub fn tree(&self) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
        tree_snapshot(self.store.dir())
            .into_iter()
            .filter(|(rel, _)| !rel.as_os_str().is_empty())
            .map(|(rel, state)| (rel, (state.kind != "dir").then_some(state.content)))
            .collect()
    }

    /// Session files on disk (temporary files excluded), expired or not.
    pub fn session_files(&self) -> usize {
        named_files(&self.store.dir().join("sessions")).len()
    }

    /// Lock files on disk.
    pub fn lock_files(&self) -> usize {
        named_files(&self.store.dir().join("locks")).len()
    }
}

/// Polls `condition` every 10 ms until it holds; panics naming `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: Duration, condition: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    wait_until_async(what, limit, condition, || {
        tokio::time::sleep(Duration::from_millis(10))
    })
    .await
}

/// An error and its causes, one after the other (what a log line with the chain would show).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(c) = cause {
        text.push_str(" | ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A small record: `{"n": n, "name": "visitor n"}`.
pub fn data(n: i64) -> Data {
    [
        ("n".to_owned(), serde_json::json!(n)),
        ("name".to_owned(), serde_json::json!(format!("visitor {n}"))),
    ]
    .into_iter()
    .collect()
}

/// A record holding every kind of JSON value, including the integer extremes, floats that
/// serde_json reads back exactly by default, and text in several scripts.
pub fn every_json_type() -> Data {
    let value = serde_json::json!({
        "null": null,
        "true": true,
        "false": false,
        "zero": 0,
        "minus one": -1,
        "i64 min": i64::MIN,
        "i64 max": i64::MAX,
        "u64 max": u64::MAX,
        "one and a half": 1.5,
        "a tenth": 0.1,
        "minus a tenth": -0.1,
        "smallest subnormal": 5e-324,
        "largest double": f64::MAX,
        "smallest normal": f64::MIN_POSITIVE,
        "small negative": -2.5e-10,
        "empty text": "",
        "unicode": "h\u{e9}llo, \u{4e16}\u{754c} \u{1f980} \u{0} \u{1f} \"quoted\" \\ / \u{2028}",
        "empty array": [],
        "array": [1, "two", null, [3, [4.25]], {"five": 5}],
        "empty object": {},
        "nested": {"a": {"b": {"c": [true, false, {"d": -7, "e": "\u{1f511}"}]}}},
        "": "the empty key",
        "key with spaces and \u{fc}n\u{ef}c\u{f6}de \u{1f511}": 1
    });
    match value {
        serde_json::Value::Object(map) => map.into_iter().collect(),
        _ => unreachable!("an object literal"),
    }
}

/// One framework adapter, driven in neutral terms. Errors are the framework error's text with
/// its causes.
pub trait Adapter: Clone + Send + Sync + 'static {
    /// What the framework calls the session (tower: `Id`; actix: the key's text).
    type Key: Clone + fmt::Debug + PartialEq + Send + Sync + 'static;

    fn new(store: Store) -> Self;

    /// The sessiondir id a key names (to look at the files).
    fn sessiondir_id(key: &Self::Key) -> SessionId;

    /// A well-formed key that no session has.
    fn unknown_key() -> Self::Key;

    /// A new session with `data`, expiring `ttl` from now.
    fn create(
        &self,
        data: Data,
        ttl: Duration,
    ) -> impl Future<Output = Result<Self::Key, String>> + Send;

    fn load(&self, key: &Self::Key) -> impl Future<Output = Result<Option<Data>, String>> + Send;

    /// What the framework does at the end of a request that changed an existing session
    /// (tower: `save`; actix: `update`); returns the key the session has afterwards.
    fn save(
        &self,
        key: &Self::Key,
        data: Data,
        ttl: Duration,
    ) -> impl Future<Output = Result<Self::Key, String>> + Send;

    fn delete(&self, key: &Self::Key) -> impl Future<Output = Result<(), String>> + Send;

    /// Moves the expiry to `ttl` from now, data unchanged (tower has no such call: its
    /// middleware saves the loaded record with a new expiry date, which is what this does).
    fn update_ttl(
        &self,
        key: &Self::Key,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), String>> + Send;

    /// What the framework does to give a session a new id (tower's `cycle_id`: delete the old
    /// record, create it under a new `Id`; actix's `renew`: delete, then save as new).
    fn cycle(
        &self,
        key: &Self::Key,
        data: Data,
        ttl: Duration,
    ) -> impl Future<Output = Result<Self::Key, String>> + Send;
}

fn expiry_date(ttl: Duration) -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc() + ttl
}

/// The tower-sessions adapter.
#[derive(Clone)]
pub struct Tower(pub TowerStore);

impl Adapter for Tower {
    type Key = Id;

    fn new(store: Store) -> Self {
        Tower(TowerStore::new(store))
    }

    fn sessiondir_id(key: &Id) -> SessionId {
        TowerStore::session_id(key)
    }

    fn unknown_key() -> Id {
        Id::default()
    }

    async fn create(&self, data: Data, ttl: Duration) -> Result<Id, String> {
        let mut record = Record {
            id: Id::default(),
            data,
            expiry_date: expiry_date(ttl),
        };
        self.0.create(&mut record).await.map_err(|e| chain(&e))?;
        Ok(record.id)
    }

    async fn load(&self, key: &Id) -> Result<Option<Data>, String> {
        let record = self.0.load(key).await.map_err(|e| chain(&e))?;
        Ok(record.map(|r| r.data))
    }

    async fn save(&self, key: &Id, data: Data, ttl: Duration) -> Result<Id, String> {
        let record = Record {
            id: *key,
            data,
            expiry_date: expiry_date(ttl),
        };
        self.0.save(&record).await.map_err(|e| chain(&e))?;
        Ok(*key)
    }

    async fn delete(&self, key: &Id) -> Result<(), String> {
        self.0.delete(key).await.map_err(|e| chain(&e))
    }

    async fn update_ttl(&self, key: &Id, ttl: Duration) -> Result<(), String> {
        let Some(mut record) = self.0.load(key).await.map_err(|e| chain(&e))? else {
            return Ok(());
        };
        record.expiry_date = expiry_date(ttl);
        self.0.save(&record).await.map_err(|e| chain(&e))
    }

    async fn cycle(&self, key: &Id, data: Data, ttl: Duration) -> Result<Id, String> {
        self.0.delete(key).await.map_err(|e| chain(&e))?;
        self.create(data, ttl).await
    }
}

/// The actix-session adapter. Keys are kept as text: `SessionKey` is not `Clone`.
#[derive(Clone)]
pub struct Actix(pub ActixStore);

pub fn session_key(key: &str) -> SessionKey {
    SessionKey::try_from(key.to_owned()).expect("a key under 4064 bytes")
}

pub fn actix_ttl(ttl: Duration) -> actix_web::cookie::time::Duration {
    actix_web::cookie::time::Duration::try_from(ttl).expect("a ttl time can hold")
}

/// actix-session's state for `data`: each value as JSON text.
pub fn to_texts(data: Data) -> HashMap<String, String> {
    data.into_iter()
        .map(|(k, v)| (k, serde_json::to_string(&v).expect("JSON text")))
        .collect()
}

fn from_texts(texts: HashMap<String, String>) -> Result<Data, String> {
    texts
        .into_iter()
        .map(|(k, text)| match serde_json::from_str(&text) {
            Ok(v) => Ok((k, v)),
            Err(e) => Err(format!("entry {k:?} is not JSON: {e}")),
        })
        .collect()
}

impl Adapter for Actix {
    type Key = String;

    fn new(store: Store) -> Self {
        Actix(ActixStore::new(store))
    }

    fn sessiondir_id(key: &String) -> SessionId {
        SessionId::parse(key).expect("actix keys are sessiondir ids")
    }

    fn unknown_key() -> String {
        let mut raw = [0u8; 20];
        getrandom::fill(&mut raw).expect("random bytes");
        SessionId::from_bytes(raw).to_string()
    }

    async fn create(&self, data: Data, ttl: Duration) -> Result<String, String> {
        let key = self
            .0
            .save(to_texts(data), &actix_ttl(ttl))
            .await
            .map_err(|e| chain(&e))?;
        Ok(key.into())
    }

    async fn load(&self, key: &String) -> Result<Option<Data>, String> {
        match self.0.load(&session_key(key)).await {
            Ok(Some(texts)) => from_texts(texts).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(chain(&e)),
        }
    }

    async fn save(&self, key: &String, data: Data, ttl: Duration) -> Result<String, String> {
        let key = self
            .0
            .update(session_key(key), to_texts(data), &actix_ttl(ttl))
            .await
            .map_err(|e| chain(&e))?;
        Ok(key.into())
    }

    async fn delete(&self, key: &String) -> Result<(), String> {
        self.0
            .delete(&session_key(key))
            .await
            .map_err(|e| chain(e.as_ref()))
    }

    async fn update_ttl(&self, key: &String, ttl: Duration) -> Result<(), String> {
        self.0
            .update_ttl(&session_key(key), &actix_ttl(ttl))
            .await
            .map_err(|e| chain(e.as_ref()))
    }

    async fn cycle(&self, key: &String, data: Data, ttl: Duration) -> Result<String, String> {
        self.delete(key).await?;
        self.create(data, ttl).await
    }
}

/// Serves `app` on a free loopback port until the test's runtime ends; its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// A GET's answer: the status, the `Set-Cookie` values, the body.
pub struct Reply {
    pub status: u16,
    pub set_cookies: Vec<String>,
    pub body: String,
}

/// GET `url` over real HTTP (ureq, from a blocking thread), with a `Cookie` header if given.
pub async fn http_get(url: String, cookie: Option<String>) -> Reply {
    tokio::task::spawn_blocking(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut req = agent.get(&url);
        if let Some(cookie) = &cookie {
            req = req.header("Cookie", cookie);
        }
        let mut res = req.call().expect("GET");
        let set_cookies = res
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect();
        Reply {
            status: res.status().as_u16(),
            set_cookies,
            body: res.body_mut().read_to_string().expect("body"),
        }
    })
    .await
    .expect("the request task")
}
