//! The session cookie: its attributes, how the id is read from a request, and the
//! `Set-Cookie` values a response carries.
//!
//! The cookie holds nothing but the session id. What the client sends is untrusted: it becomes
//! a [`SessionId`] only through [`SessionId::parse`], and even a well-formed id is adopted only
//! if a session with that id exists (the extractors check; see the module docs).

use std::time::{Duration, SystemTime};

use ::cookie::Cookie;
use http::header::COOKIE;
use http::{HeaderMap, HeaderValue};

use crate::{SessionId, SessionInfo};

/// The `SameSite` attribute of the session cookie.
///
/// `Lax` (the default) sends the cookie on top-level navigations from other sites (following a
/// link to your site keeps the visitor logged in) but not on cross-site sub-requests and POSTs,
/// which stops most cross-site request forgery. `Strict` never sends it cross-site. `None`
/// sends it everywhere and is accepted by browsers only together with `Secure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// `SameSite=Strict`.
    Strict,
    /// `SameSite=Lax` (the default).
    #[default]
    Lax,
    /// `SameSite=None`: needs [`secure`](super::SessionLayer::secure) to be accepted.
    None,
}

/// The cookie's settings, fixed when the layer is built.
#[derive(Debug, Clone)]
pub(crate) struct CookieConfig {
    pub name: String,
    pub secure: bool,
    pub same_site: SameSite,
    pub path: String,
    pub domain: Option<String>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        CookieConfig {
            name: "sid".to_owned(),
            secure: true,
            same_site: SameSite::Lax,
            path: "/".to_owned(),
            domain: None,
        }
    }
}

/// What the request's cookie said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Presented {
    /// No cookie of that name.
    Absent,
    /// A cookie whose value is not a session id (never looked up, never adopted).
    Invalid,
    /// A well-formed id; whether a session has it is only known once an extractor looks.
    Valid(SessionId),
}

impl CookieConfig {
    /// Finds the session cookie among the request's `Cookie` headers. With several cookies of
    /// the name, the first one decides (browsers send the one with the longest path first).
    pub fn presented(&self, headers: &HeaderMap) -> Presented {
        let first = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(Cookie::split_parse)
            .filter_map(Result::ok)
            .find(|c| c.name() == self.name);
        match first {
            None => Presented::Absent,
            Some(c) => match SessionId::parse(c.value()) {
                Ok(id) => Presented::Valid(id),
                Err(_) => Presented::Invalid,
            },
        }
    }

    /// The `Set-Cookie` value that gives the client session `id`, for `max_age` if the session
    /// expires (else a browser-session cookie).
    pub fn set(&self, id: &SessionId, max_age: Option<Duration>) -> Option<HeaderValue> {
        let mut cookie = self.base(id.as_str());
        if let Some(age) = max_age {
            cookie.set_max_age(::cookie::time::Duration::seconds(whole_seconds(age)));
        }
        HeaderValue::try_from(cookie.to_string()).ok()
    }

    /// The `Set-Cookie` value that makes the client forget its cookie (`Max-Age=0`).
    pub fn removal(&self) -> Option<HeaderValue> {
        let mut cookie = self.base("");
        cookie.make_removal();
        HeaderValue::try_from(cookie.to_string()).ok()
    }

    fn base<'c>(&'c self, value: &'c str) -> Cookie<'c> {
        let mut cookie = Cookie::build((self.name.as_str(), value))
            .path(self.path.as_str())
            .http_only(true)
            .secure(self.secure)
            .same_site(match self.same_site {
                SameSite::Strict => ::cookie::SameSite::Strict,
                SameSite::Lax => ::cookie::SameSite::Lax,
                SameSite::None => ::cookie::SameSite::None,
            })
            .build();
        if let Some(domain) = &self.domain {
            cookie.set_domain(domain.as_str());
        }
        cookie
    }
}

/// How long the cookie should live for a session with this header: its idle lifetime (every
/// check-in moves the expiry to now + that), or the time left until a fixed expiry, or
/// `None` for a session that never expires (a cookie that lasts until the browser closes).
pub(crate) fn max_age(info: &SessionInfo) -> Option<Duration> {
    match (info.idle_ttl, info.expires) {
        (Some(ttl), _) => Some(ttl),
        (None, Some(at)) => Some(at.duration_since(SystemTime::now()).unwrap_or_default()),
        (None, None) => None,
    }
}

/// Seconds for `Max-Age`, rounded up so that a lifetime under a second does not delete the
/// cookie at once.
fn whole_seconds(d: Duration) -> i64 {
    let up = u64::from(d.subsec_nanos() > 0);
    i64::try_from(d.as_secs().saturating_add(up)).unwrap_or(i64::MAX)
}

/// Panics unless `name` is an RFC 6265 cookie name (an HTTP token).
pub(crate) fn check_name(name: &str) {
    let token = |b: u8| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b);
    assert!(
        !name.is_empty() && name.bytes().all(token),
        "invalid session cookie name {name:?}: expected an HTTP token (no space or separator)"
    );
}

/// Panics unless `value` can be a cookie attribute value (`Path`, `Domain`).
pub(crate) fn check_attribute(what: &str, value: &str) {
    assert!(
        !value.is_empty() && value.bytes().all(|b| b.is_ascii_graphic() && b != b';'),
        "invalid session cookie {what} {value:?}: expected visible ASCII without ';'"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(COOKIE, HeaderValue::from_str(v).expect("header value"));
        }
        map
    }

    const ID: &str = "abcdefghijklmnopqrstuvwxyz234567";

    #[test]
    fn finds_the_session_cookie_among_others() {
        let config = CookieConfig::default();
        let id = SessionId::parse(ID).expect("valid id");
        assert_eq!(config.presented(&headers(&[])), Presented::Absent);
        assert_eq!(
            config.presented(&headers(&["a=1; sidx=2", "b=3"])),
            Presented::Absent
        );
        assert_eq!(
            config.presented(&headers(&[&format!("a=1; sid={ID}; b=2")])),
            Presented::Valid(id)
        );
        // A second Cookie header (HTTP/2 splits them) is searched too.
        assert_eq!(
            config.presented(&headers(&["a=1", &format!("sid={ID}")])),
            Presented::Valid(id)
        );
        // The first cookie of the name decides.
        assert_eq!(
            config.presented(&headers(&[&format!("sid=../../etc; sid={ID}")])),
            Presented::Invalid
        );
        for bad in ["sid=", "sid=ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", "sid=x"] {
            assert_eq!(
                config.presented(&headers(&[bad])),
                Presented::Invalid,
                "{bad}"
            );
        }
    }

    /// The `name=value` pair and the sorted attributes of a `Set-Cookie` value.
    fn split(value: &HeaderValue) -> (String, Vec<String>) {
        let text = value.to_str().expect("ascii");
        let mut parts = text.split("; ").map(str::to_owned);
        let pair = parts.next().expect("name=value");
        let mut attributes: Vec<String> = parts.collect();
        attributes.sort_unstable();
        (pair, attributes)
    }

    #[test]
    fn set_cookie_carries_every_attribute() {
        let id = SessionId::parse(ID).expect("valid id");
        let value = CookieConfig::default().set(&id, None).expect("header");
        assert_eq!(
            split(&value),
            (
                format!("sid={ID}"),
                vec![
                    "HttpOnly".to_owned(),
                    "Path=/".to_owned(),
                    "SameSite=Lax".to_owned(),
                    "Secure".to_owned()
                ]
            )
        );

        let config = CookieConfig {
            name: "app".to_owned(),
            secure: false,
            same_site: SameSite::Strict,
            path: "/app".to_owned(),
            domain: Some("example.com".to_owned()),
        };
        let value = config
            .set(&id, Some(Duration::from_millis(1500)))
            .expect("header");
        assert_eq!(
            split(&value),
            (
                format!("app={ID}"),
                vec![
                    "Domain=example.com".to_owned(),
                    "HttpOnly".to_owned(),
                    "Max-Age=2".to_owned(),
                    "Path=/app".to_owned(),
                    "SameSite=Strict".to_owned(),
                ]
            )
        );
    }

    #[test]
    fn removal_expires_the_cookie() {
        let value = CookieConfig::default().removal().expect("header");
        let text = value.to_str().expect("ascii");
        assert!(text.starts_with("sid=;"), "{text}");
        assert!(text.contains("Max-Age=0"), "{text}");
        assert!(text.contains("HttpOnly"), "{text}");
    }

    #[test]
    #[should_panic(expected = "invalid session cookie name")]
    fn names_must_be_tokens() {
        check_name("my sid");
    }
}
