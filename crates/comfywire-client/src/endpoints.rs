//! URLs of one server, derived once from the base URL, and fresh ids.

use reqwest::Url;

use crate::error::Error;

/// The HTTP base and the WebSocket URL of a server.
#[derive(Clone)]
pub struct Endpoints {
    base: Url,
    query_token: Option<String>,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoints")
            .field("base", &redact(self.base.as_str()))
            .field(
                "query_token",
                &self.query_token.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl Endpoints {
    /// From `http(s)://host:port[/prefix]` (a `ws(s)://` URL is accepted too).
    pub fn new(url: &str, query_token: Option<String>) -> Result<Endpoints, Error> {
        // Error messages name the URL without its secrets.
        let shown = || redact(url);
        let mut base =
            Url::parse(url).map_err(|e| Error::Config(format!("url `{}`: {e}", shown())))?;
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
            .map_err(|_| Error::Config(format!("url `{}` cannot be http(s)", shown())))?;
        if base.host_str().is_none() {
            return Err(Error::Config(format!("url `{}` has no host", shown())));
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

/// Whether a query parameter carries a secret: `token` and any name
/// containing it (`access_token`), `password`, `secret`, and names ending in
/// `key` (`api_key`, `apikey`), in any case.
fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("token")
        || name.contains("password")
        || name.contains("secret")
        || name.ends_with("key")
}

/// The URL with its secrets masked, for logs, errors and `Debug`: the user
/// info (`user:password@`) and the value of every secret query parameter
/// (see [`without_credentials`] for the list) become `<redacted>`;
/// everything else stays as given. Text that is not a URL is masked the
/// same way as far as it looks like one.
pub fn redact(url: &str) -> String {
    const MASK: &str = "<redacted>";
    let authority_start = url.find("://").map_or(0, |i| i + 3);
    let (head, rest) = url.split_at(authority_start);
    let mut out = String::with_capacity(url.len());
    out.push_str(head);
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let rest = match rest[..authority_end].rfind('@') {
        Some(at) if authority_start > 0 => {
            out.push_str(MASK);
            &rest[at..]
        }
        _ => rest,
    };
    let (before_fragment, fragment) = rest.split_at(rest.find('#').unwrap_or(rest.len()));
    match before_fragment.split_once('?') {
        Some((path, query)) => {
            out.push_str(path);
            out.push('?');
            let pairs: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((name, _)) if is_secret_param(name) => format!("{name}={MASK}"),
                    _ => pair.to_owned(),
                })
                .collect();
            out.push_str(&pairs.join("&"));
        }
        None => out.push_str(before_fragment),
    }
    out.push_str(fragment);
    out
}

/// The URL without credentials: no user or password and no secret query
/// parameter (`token`, the socket's query token, and any name containing
/// `token`, `password` or `secret` or ending in `key`); everything else as
/// given. For
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
            .filter(|(name, _)| !is_secret_param(name))
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
    fn redacts_user_info_and_secret_parameters() {
        assert_eq!(
            redact("https://alice:pw@example.org:8443/comfy/?api_key=k&x=1#frag"),
            "https://<redacted>@example.org:8443/comfy/?api_key=<redacted>&x=1#frag"
        );
        assert_eq!(
            redact("ws://u@h/ws?clientId=c&Access_Token=t&password=p&secret=s"),
            "ws://<redacted>@h/ws?clientId=c&Access_Token=<redacted>&password=<redacted>&secret=<redacted>"
        );
        // An `@` in the path is not user info.
        assert_eq!(redact("http://h/a@b?x=1"), "http://h/a@b?x=1");
        assert_eq!(redact("http://127.0.0.1:8188/"), "http://127.0.0.1:8188/");
        // What a client keeps as its base URL: Debug and errors use redact.
        let e = Endpoints::new("http://alice:pw-SECRET@h:1/", Some("qt-SECRET".into()))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(redact(e.base()), "http://<redacted>@h:1/");
        let shown = format!("{e:?}");
        assert!(!shown.contains("SECRET"), "{shown}");
        let Err(error) = Endpoints::new("ftp://alice:pw-SECRET@h/", None) else {
            panic!("ftp accepted");
        };
        assert!(!error.to_string().contains("SECRET"), "{error}");
        let Err(error) = Endpoints::new("http://alice:pw-SECRET@:1/x", None) else {
            panic!("no host accepted");
        };
        assert!(!error.to_string().contains("SECRET"), "{error}");
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
            without_credentials("wss://h/ws?clientId=a&api_key=k&access_token=t"),
            "wss://h/ws?clientId=a"
        );
        assert_eq!(
            without_credentials("not a url://u:p@h/x?token=s"),
            "not a url://h/x?token=<redacted>"
        );
    }
}
