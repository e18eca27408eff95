//! [`SessionLayer`] and its [`SessionService`]: reads the session cookie, gives the request its
//! slot, and after the handler checks the session in (2xx, 3xx; written only if it changed)
//! or releases it (anything else), then sets or removes the cookie.

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::axum::response::{IntoResponse, Response};
use http::header::SET_COOKIE;
use http::{HeaderValue, Request, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Backend, Dict, Error, SessionId, Store};

use super::SessionData;
use super::cookie::{self, CookieConfig, Presented, SameSite, max_age};
use super::slot::{Entry, Slot, blocking};

/// The layer's settings, shared by every request.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub cookie: CookieConfig,
    pub retry_after: Duration,
}

/// A tower [`Layer`] that gives the routes it wraps sessions of type `T` from `store`, through
/// the [`SessionMut`](super::SessionMut) and [`SessionRef`](super::SessionRef) extractors.
///
/// ```no_run
/// # use sessiondir::{Dict, Store};
/// # use sessiondir::axum::{SameSite, SessionLayer};
/// # let store = Store::open("/var/lib/myapp/sessions")?;
/// let layer = SessionLayer::<Dict>::new(store)
///     .cookie_name("myapp_sid") // default "sid"
///     .secure(true)             // the default: the cookie only travels over HTTPS
///     .same_site(SameSite::Lax) // the default
///     .retry_after(std::time::Duration::from_secs(2)); // on 503, default 1 s
/// # Ok::<(), sessiondir::Error>(())
/// ```
///
/// Use one layer per cookie: two layers reading the same cookie would check the same session
/// out twice in one request, and the second would wait for the first until the lock timeout.
pub struct SessionLayer<T = Dict, B: Backend = Store> {
    store: B,
    settings: Arc<Settings>,
    _data: PhantomData<fn() -> T>,
}

impl<T: SessionData, B: Backend> SessionLayer<T, B> {
    /// A layer over `store` with the default cookie: `sid`, `HttpOnly`, `SameSite=Lax`,
    /// `Secure`, `Path=/`, no `Domain` (the host that set it only).
    pub fn new(store: B) -> Self {
        SessionLayer {
            store,
            settings: Arc::new(Settings {
                cookie: CookieConfig::default(),
                retry_after: Duration::from_secs(1),
            }),
            _data: PhantomData,
        }
    }

    fn settings(&mut self) -> &mut Settings {
        Arc::make_mut(&mut self.settings)
    }

    /// The cookie's name. Default `sid`.
    ///
    /// # Panics
    ///
    /// If `name` is not an HTTP token (empty, or containing spaces, separators or control
    /// characters): a programming error, found when the application starts.
    pub fn cookie_name(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        cookie::check_name(&name);
        self.settings().cookie.name = name;
        self
    }

    /// Whether the cookie carries `Secure` (sent over HTTPS only). Default `true`: the id is a
    /// credential, and forgetting to turn this on in production would leak it over plain HTTP,
    /// while forgetting to turn it off in development shows at once (the browser does not keep
    /// the session). Turn it off only to serve over plain HTTP.
    pub fn secure(mut self, secure: bool) -> Self {
        self.settings().cookie.secure = secure;
        self
    }

    /// The cookie's `SameSite` attribute. Default [`SameSite::Lax`].
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.settings().cookie.same_site = same_site;
        self
    }

    /// The cookie's `Path`. Default `/`.
    ///
    /// # Panics
    ///
    /// If `path` is empty or holds a `;`, a space or a control character.
    pub fn cookie_path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        cookie::check_attribute("path", &path);
        self.settings().cookie.path = path;
        self
    }

    /// The cookie's `Domain`, to share it with subdomains. Default none: the cookie goes back
    /// to the host that set it only, which is safer.
    ///
    /// # Panics
    ///
    /// If `domain` is empty or holds a `;`, a space or a control character.
    pub fn cookie_domain(mut self, domain: impl Into<String>) -> Self {
        let domain = domain.into();
        cookie::check_attribute("domain", &domain);
        self.settings().cookie.domain = Some(domain);
        self
    }

    /// The `Retry-After` of the 503 answered when a session stayed checked out by other
    /// requests for the whole lock timeout. Default 1 s (sent in whole seconds, at least 1).
    pub fn retry_after(mut self, after: Duration) -> Self {
        self.settings().retry_after = after;
        self
    }

    /// The store the sessions live in.
    pub fn store(&self) -> &B {
        &self.store
    }
}

impl<T, B: Backend> Clone for SessionLayer<T, B> {
    fn clone(&self) -> Self {
        SessionLayer {
            store: self.store.clone(),
            settings: Arc::clone(&self.settings),
            _data: PhantomData,
        }
    }
}

impl<T, B: Backend + fmt::Debug> fmt::Debug for SessionLayer<T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("store", &self.store)
            .field("cookie", &self.settings.cookie)
            .finish_non_exhaustive()
    }
}

impl<S, T, B: Backend> Layer<S> for SessionLayer<T, B> {
    type Service = SessionService<S, T, B>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            store: self.store.clone(),
            settings: Arc::clone(&self.settings),
            _data: PhantomData,
        }
    }
}

/// The [`Service`] made by [`SessionLayer`]: runs each request with a session slot and settles
/// the session when the response is ready.
pub struct SessionService<S, T = Dict, B: Backend = Store> {
    inner: S,
    store: B,
    settings: Arc<Settings>,
    _data: PhantomData<fn() -> T>,
}

impl<S: Clone, T, B: Backend> Clone for SessionService<S, T, B> {
    fn clone(&self) -> Self {
        SessionService {
            inner: self.inner.clone(),
            store: self.store.clone(),
            settings: Arc::clone(&self.settings),
            _data: PhantomData,
        }
    }
}

impl<S: fmt::Debug, T, B: Backend + fmt::Debug> fmt::Debug for SessionService<S, T, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<S, T, B, Body> Service<Request<Body>> for SessionService<S, T, B>
where
    S: Service<Request<Body>, Response = Response> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: 'static,
    Body: Send + 'static,
    T: SessionData,
    B: Backend,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        let presented = self.settings.cookie.presented(request.headers());
        let slot = Arc::new(Slot::<T, B>::new(
            self.store.clone(),
            Arc::clone(&self.settings),
            presented,
        ));
        request.extensions_mut().insert(Arc::clone(&slot));
        // The service that was polled ready goes into the future; its clone stays for the next
        // request (the usual tower pattern).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move {
            let response = inner.call(request).await?;
            Ok(settle(slot, response).await)
        })
    }
}

/// Attached to the extensions of the 500 response that replaces a handler's response when the
/// session could not be saved, so that an outer middleware can log why. The session was left
/// as last checked in.
#[derive(Debug, Clone)]
pub struct CheckinFailed {
    error: Option<Arc<Error>>,
}

impl CheckinFailed {
    /// The store's error; `None` if the blocking task itself failed (panicked, or the runtime
    /// is shutting down).
    pub fn error(&self) -> Option<&Error> {
        self.error.as_deref()
    }
}

/// The end of a request: checks the session in or lets it go, then tells the client its id.
async fn settle<T: SessionData, B: Backend>(
    slot: Arc<Slot<T, B>>,
    mut response: Response,
) -> Response {
    let (entry, cycled, dead, follows, moved, deleted) = {
        let mut state = slot.state();
        (
            state.parked.take(),
            state.cycled.take(),
            state.presented_dead,
            state.follows,
            state.moved,
            state.deleted,
        )
    };
    let status = response.status();
    let save = status.is_success() || status.is_redirection();
    let presented = match slot.presented {
        Presented::Valid(id) => Some(id),
        _ => None,
    };
    // Whether the client must be told an id: a new one, a moved one, or its own again to
    // slide the cookie's lifetime along with the session's.
    // Never for a session reached through a forwarding record (the request was in flight
    // across a login): only the login's own response tells the new id (see `forward`).
    let tell = |id: SessionId, age: Option<Duration>, saved: bool| {
        (!follows && (Some(id) != presented || (saved && age.is_some()))).then_some((id, age))
    };

    let (cookie, failure) = match entry {
        Some(Entry::CheckedOut(c)) if save => {
            let (id, age) = (*c.id(), max_age(&c.info()));
            // Written only if the data (as encoded), the expiry or the id changed; an
            // unchanged sliding session is kept alive lock-free instead (design §11).
            match blocking(move || c.check_in_if_changed().map_err(Error::from)).await {
                Ok(Ok(_written)) => (tell(id, age, true), None),
                // The failed check-in's guard was dropped inside the task: released, the last
                // checked-in version intact.
                Ok(Err(e)) => (tell(id, age, false), Some(Some(Arc::new(e)))),
                Err(_) => (tell(id, age, false), Some(None)),
            }
        }
        Some(Entry::CheckedOut(c)) => {
            let (id, age) = (*c.id(), max_age(&c.info()));
            drop(c); // released, nothing written
            (tell(id, age, false), None)
        }
        Some(Entry::Fresh(fresh)) if save && fresh.written => {
            let store = slot.store.clone();
            let created = blocking(move || {
                let id = match fresh.expiry {
                    Some(expiry) => store.create_with_expiry(&fresh.data, expiry)?,
                    None => store.create(&fresh.data)?,
                };
                let age = store.info(&id)?.and_then(|info| max_age(&info));
                Ok::<_, Error>((id, age))
            })
            .await;
            match created {
                Ok(Ok((id, age))) => (Some((id, age)), None),
                Ok(Err(e)) => (None, Some(Some(Arc::new(e)))),
                Err(_) => (None, Some(None)),
            }
        }
        // A fresh session nobody wrote, or none taken (or taken and released): nothing to
        // save. A session cycled and then released still lives under its new id.
        Some(Entry::Fresh(_)) | None => (cycled, None),
    };

    if let Some(error) = failure {
        response = (
            StatusCode::INTERNAL_SERVER_ERROR,
            "the session could not be saved\n",
        )
            .into_response();
        response.extensions_mut().insert(CheckinFailed { error });
    }
    let cookies = &slot.settings.cookie;
    let header = match cookie {
        Some((id, age)) => cookies.set(&id, age),
        // An id that is not a live session is never adopted; make the client forget it,
        // unless a login moved it before this request arrived: the client then holds a newer
        // cookie, which a removal would clear too (design §11, the login race).
        None if deleted || (!moved && (slot.presented == Presented::Invalid || dead)) => {
            cookies.removal()
        }
        None => return response,
    };
    match header {
        Some(value) => append_cookie(&mut response, value),
        // Unreachable: the name, path and domain were checked when the layer was built, and an
        // id is 32 characters of [a-z2-7].
        None => response = StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
    response
}

fn append_cookie(response: &mut Response, value: HeaderValue) {
    response.headers_mut().append(SET_COOKIE, value);
}
