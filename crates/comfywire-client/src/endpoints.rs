//! URLs of one server, derived once from the base URL, and fresh ids.

use reqwest::Url;

use crate::error::Error;

/// The HTTP base and the WebSocket URL of a server.
#[derive(Debug, Clone)]
pub struct Endpoints {
    base: Url,
    query_token: Option<String>,
}

impl Endpoints {
    /// From `http(s)://host:port[/prefix]` (a `ws(s)://` URL is accepted too).
    pub fn new(url: &str, query_token: Option<String>) -> Result<Endpoints, Error> {
        let mut base = Url::parse(url).map_err(|e| Error::Config(format!("url `{url}`: {e}")))?;
        let scheme = match base.scheme() {
            "http" | "ws" => "http",
            "https" | "wss" => "https",
            other => {
                return Err(Error::Config(format!(
                    "url scheme `{other}` is not http(s)"
                )));
            }
        };
        base.set_scheme(scheme)
            .map_err(|_| Error::Config(format!("url `{url}` cannot be http(s)")))?;
        if base.host_str().is_none() {
            return Err(Error::Config(format!("url `{url}` has no host")));
        }
        base.set_query(None);
        base.set_fragment(None);
        let path = base.path().trim_end_matches('/').to_owned();
        base.set_path(&format!("{path}/"));
        Ok(Endpoints { base, query_token })
    }

    /// `base + path` (path without a leading slash, query allowed).
    pub fn http(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// The socket URL for a client id (none: the server assigns one).
    pub fn websocket(&self, client_id: Option<&str>) -> String {
        let mut url = self.base.clone();
        let _ = url.set_scheme(if self.base.scheme() == "https" {
            "wss"
        } else {
            "ws"
        });
        let path = format!("{}ws", url.path());
        url.set_path(&path);
        {
            let mut query = url.query_pairs_mut();
            if let Some(id) = client_id {
                query.append_pair("clientId", id);
            }
            if let Some(token) = &self.query_token {
                query.append_pair("token", token);
            }
        }
        if url.query() == Some("") {
            url.set_query(None);
        }
        url.to_string()
    }

    /// True for `https` (and so `wss`).
    #[cfg(not(feature = "tls"))]
    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }

    /// The base URL as given (normalised).
    pub fn base(&self) -> &str {
        self.base.as_str()
    }
}

/// The URL with any `token=` value hidden, for logs.
pub fn redact(url: &str) -> String {
    match url.find("token=") {
        Some(i) => {
            let end = url[i..].find('&').map_or(url.len(), |e| i + e);
            format!("{}token=<redacted>{}", &url[..i], &url[end..])
        }
        None => url.to_owned(),
    }
}

/// The URL without credentials: no user or password and no `token` query
/// parameter (the socket's query token); everything else as given. For
/// what is written down or shown, such as a recording's meta. Text that is
/// not a URL loses its user info and token value all the same.
pub fn without_credentials(url: &str) -> String {
    let Ok(mut parsed) = Url::parse(url) else {
        // Not a URL: cut `user:password@` from the authority by hand.
        let clean = match url.split_once("://") {
            Some((scheme, rest)) => {
                let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
                match rest[..authority_end].rfind('@') {
                    Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                    None => url.to_owned(),
                }
            }
            None => url.to_owned(),
        };
        return redact(&clean);
    };
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    if parsed.query().is_some() {
        let kept: Vec<(String, String)> = parsed
            .query_pairs()
            .filter(|(name, _)| name != "token")
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        if kept.is_empty() {
            parsed.set_query(None);
        } else {
            parsed.query_pairs_mut().clear().extend_pairs(kept);
        }
    }
    parsed.into()
}

/// A random version-4 UUID in canonical form (what 2026 servers require of
/// client-chosen prompt ids).
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().hyphenated().to_string()
}

/// A fresh client id: 32 lower-case hex digits, like the server's own
/// (a version-4 UUID without dashes).
pub fn new_client_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derives_socket_urls() {
        let e = Endpoints::new("http://127.0.0.1:8188", None).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.http("/prompt"), "http://127.0.0.1:8188/prompt");
        assert_eq!(
            e.websocket(Some("abc")),
            "ws://127.0.0.1:8188/ws?clientId=abc"
        );
        assert_eq!(e.websocket(None), "ws://127.0.0.1:8188/ws");
        let e = Endpoints::new("https://example.org/comfy/?x=1", Some("t k".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(e.http("history/1"), "https://example.org/comfy/history/1");
        assert_eq!(
            e.websocket(Some("c")),
            "wss://example.org/comfy/ws?clientId=c&token=t+k"
        );
        assert!(Endpoints::new("ftp://x", None).is_err());
        assert!(Endpoints::new("not a url", None).is_err());
    }

    #[test]
    fn ids_have_the_canonical_shapes() {
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(new_uuid(), new_uuid());
        let c = new_client_id();
        assert_eq!(c.len(), 32);
        assert!(c.chars().all(|ch| ch.is_ascii_hexdigit()));
    }

    #[test]
    fn redacts_tokens() {
        assert_eq!(
            redact("ws://h/ws?clientId=a&token=secret&x=1"),
            "ws://h/ws?clientId=a&token=<redacted>&x=1"
        );
        assert_eq!(redact("ws://h/ws?token=s"), "ws://h/ws?token=<redacted>");
    }

    #[test]
    fn removes_credentials() {
        assert_eq!(
            without_credentials("ws://u:p%40ss@h:8188/ws?clientId=a&token=secret&x=1"),
            "ws://h:8188/ws?clientId=a&x=1"
        );
        assert_eq!(
            without_credentials("https://user@example.org/comfy/?token=t"),
            "https://example.org/comfy/"
        );
        assert_eq!(
            without_credentials("http://127.0.0.1:8188"),
            "http://127.0.0.1:8188/"
        );
        assert_eq!(
            without_credentials("not a url://u:p@h/x?token=s"),
            "not a url://h/x?token=<redacted>"
        );
    }
}
