//! Helpers shared by the web tests: the shared test support (`tests/support/`) they use,
//! re-exported, with what they look at in a store; an in-process axum server, a blocking HTTP
//! client (ureq) and a `Set-Cookie` parser.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::atomic::{AtomicUsize, Ordering};

use sessiondir::{Observer, SessionId};

#[cfg(feature = "redis")]
pub use crate::support::redis::RedisServer;
pub use crate::support::store::TestStore;
use crate::support::tree::{all_files, named_files};
pub use crate::support::wait::wait_until;

/// Every request and every wait of these tests ends within this.
pub const HTTP_TIMEOUT: Duration = Duration::from_secs(30);

/// What these tests look at in a store, on top of the shared `TestStore`.
impl TestStore {
    /// The session files in the store (temporary files excluded).
    pub fn session_files(&self) -> Vec<PathBuf> {
        named_files(&self.dir.join("sessions"))
    }

    /// Every file in the store but its marker: sessions, locks, temporary files.
    pub fn all_files(&self) -> Vec<PathBuf> {
        all_files(&self.dir)
            .into_iter()
            .filter(|p| !p.ends_with("sessiondir.store"))
            .collect()
    }

    /// The `counter` of session `id`, read without a lock (`None`: no live session).
    pub fn counter(&self, id: &SessionId) -> Option<i64> {
        let data: Option<sessiondir::Dict> = self.store.load(id).expect("load session");
        data.map(|d| d.get_i64("counter").unwrap_or(0))
    }

    /// The generation (number of writes) of session `id`.
    pub fn generation(&self, id: &SessionId) -> u64 {
        self.store
            .info(id)
            .expect("read header")
            .expect("session exists")
            .generation
    }
}

/// Counts check-outs that found their session held and started to wait (a store's observer).
#[derive(Default)]
pub struct Waits(pub AtomicUsize);

impl Waits {
    pub fn count(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Observer for Waits {
    fn waiting(&self, _id: &SessionId) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// An axum app served in this process on 127.0.0.1 (a port of the OS's choosing), on its own
/// Tokio runtime; shut down on drop.
pub struct Server {
    pub addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Server {
    pub fn start(app: axum::Router) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("build a Tokio runtime");
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        runtime.spawn(async move { axum::serve(listener, app).await });
        Server {
            addr,
            runtime: Some(runtime),
        }
    }

    pub fn client(&self) -> Client {
        Client::new(self.addr.port())
    }

    /// The server's runtime (to spawn tasks beside the app, or wait for one).
    pub fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_timeout(Duration::from_secs(5));
        }
    }
}

/// A blocking HTTP client for one server (its own connection pool).
pub struct Client {
    agent: ureq::Agent,
    base: String,
}

/// What a request got back.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: String,
    pub cookies: Vec<SetCookie>,
    pub retry_after: Option<String>,
}

impl Reply {
    /// The one `Set-Cookie` of the reply (fails the test if there is not exactly one).
    pub fn cookie(&self) -> &SetCookie {
        assert_eq!(self.cookies.len(), 1, "expected one Set-Cookie: {self:?}");
        &self.cookies[0]
    }

    /// The session id the reply's one `Set-Cookie` gives.
    pub fn new_id(&self) -> SessionId {
        let c = self.cookie();
        assert!(
            !c.is_removal(),
            "expected a session cookie, got a removal: {self:?}"
        );
        SessionId::parse(&c.value).expect("the cookie holds a session id")
    }
}

impl Client {
    pub fn new(port: u16) -> Client {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(HTTP_TIMEOUT))
            .build()
            .into();
        Client {
            agent,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    /// GET `path` with `cookie` (a whole `Cookie` header value) if any.
    pub fn try_get(&self, path: &str, cookie: Option<&str>) -> Result<Reply, ureq::Error> {
        let mut request = self.agent.get(format!("{}{path}", self.base));
        if let Some(c) = cookie {
            request = request.header("Cookie", c);
        }
        let mut response = request.call()?;
        let cookies = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| SetCookie::parse(v.to_str().expect("ASCII Set-Cookie")))
            .collect();
        let retry_after = response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().expect("ASCII Retry-After").to_owned());
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string()?;
        Ok(Reply {
            status,
            body,
            cookies,
            retry_after,
        })
    }

    pub fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.try_get(path, cookie)
            .unwrap_or_else(|e| panic!("GET {}{path} failed: {e}", self.base))
    }

    /// GET `path` as the holder of session `id` (cookie `sid`).
    pub fn get_as(&self, path: &str, id: &SessionId) -> Reply {
        self.get(path, Some(&format!("sid={id}")))
    }
}

/// One `Set-Cookie` header, split into its parts.
#[derive(Debug, Clone)]
pub struct SetCookie {
    pub name: String,
    pub value: String,
    /// Attributes as sent (`HttpOnly`, `Max-Age=0`, ...).
    pub attributes: Vec<String>,
}

impl SetCookie {
    pub fn parse(header: &str) -> SetCookie {
        let mut parts = header.split(';').map(str::trim);
        let pair = parts.next().expect("a name=value pair");
        let (name, value) = pair.split_once('=').expect("name=value");
        SetCookie {
            name: name.to_owned(),
            value: value.to_owned(),
            attributes: parts.map(str::to_owned).collect(),
        }
    }

    /// The value of attribute `key` (case-insensitive), or `Some("")` for a flag.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes.iter().find_map(|a| {
            let (k, v) = a.split_once('=').unwrap_or((a, ""));
            k.eq_ignore_ascii_case(key).then_some(v)
        })
    }

    /// Whether this cookie tells the client to forget it.
    pub fn is_removal(&self) -> bool {
        self.attribute("Max-Age") == Some("0")
    }

    /// The attribute names, sorted, for exact comparisons.
    pub fn attribute_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .attributes
            .iter()
            .map(|a| a.split_once('=').map_or(a.as_str(), |(k, _)| k).to_owned())
            .collect();
        names.sort();
        names
    }
}
