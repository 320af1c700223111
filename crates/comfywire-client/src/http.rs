//! The one HTTP client of a [`crate::Client`]: auth, headers, timeouts,
//! status handling and debug logging with secrets redacted.
//!
//! Every answer is read under the size limit of its endpoint
//! ([`crate::BodyLimits`]): a `Content-Length` over it fails before the
//! body is read, and a body without one is counted chunk by chunk and
//! abandoned as soon as it passes the limit ([`Error::TooLarge`]).
//! Downloads from `/view` are streamed to a file, never held.

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::{Bytes, BytesMut};
use comfywire_proto::{HistoryEntry, QueueSnapshot};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::config::{Auth, BodyLimits, ClientConfig, MAX_DURATION};
use crate::endpoints::Endpoints;
use crate::error::Error;

#[derive(Clone)]
pub(crate) struct HttpApi {
    client: reqwest::Client,
    pub(crate) endpoints: Endpoints,
    limits: BodyLimits,
    /// The longest wait for the next chunk of a download.
    idle_timeout: Duration,
}

/// The limit an answer is read under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Limit {
    History,
    Queue,
    View,
    Download,
    Json,
}

impl Limit {
    /// The limit of a request path (relative, as the callers give it).
    pub(crate) fn of(path: &str) -> Limit {
        let path = path.trim_start_matches('/');
        let path = path.split(['?', '/']).next().unwrap_or_default();
        match path {
            // The node catalogue of a server with many custom nodes runs to
            // tens of MB: it shares history's larger limit.
            "history" | "object_info" => Limit::History,
            "queue" => Limit::Queue,
            "view" => Limit::View,
            _ => Limit::Json,
        }
    }

    fn bytes(self, limits: &BodyLimits) -> u64 {
        match self {
            Limit::History => limits.history,
            Limit::Queue => limits.queue,
            Limit::View => limits.view,
            Limit::Download => limits.download,
            Limit::Json => limits.json,
        }
    }

    /// The settings-file key of the limit.
    fn setting(self) -> &'static str {
        match self {
            Limit::History => "max_history_mib",
            Limit::Queue => "max_queue_mib",
            Limit::View => "max_view_mib",
            Limit::Download => "max_download_mib",
            Limit::Json => "max_json_mib",
        }
    }
}

/// Error bodies of downloads are read this far, for the message.
const ERROR_BODY: u64 = 64 << 10;

/// An HTTP answer: status and body.
pub(crate) struct Answer {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

impl Answer {
    pub(crate) fn json(&self) -> Result<Value, Error> {
        if self.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            Error::Protocol(format!("body is not JSON ({e}): {}", shorten(&self.body)))
        })
    }

    pub(crate) fn ok(self) -> Result<Answer, Error> {
        if (200..300).contains(&self.status) {
            Ok(self)
        } else {
            Err(Error::Http {
                status: self.status,
                body: shorten(&self.body),
            })
        }
    }
}

pub(crate) fn shorten(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text.chars().take(500).collect();
    if out.len() < text.len() {
        out.push('…');
    }
    out
}

/// Extra headers plus auth, shared by HTTP and the socket upgrade.
pub(crate) fn headers(config: &ClientConfig) -> Result<HeaderMap, Error> {
    let mut map = HeaderMap::new();
    for (name, value) in &config.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| Error::Config(format!("header name `{name}`: {e}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|e| Error::Config(format!("header `{name}` value: {e}")))?;
        map.insert(name, value);
    }
    if let Some(auth) = &config.auth {
        let value = match auth {
            Auth::Bearer(token) => format!("Bearer {token}"),
            Auth::Basic { username, password } => {
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD
                        .encode(format!("{username}:{password}"))
                )
            }
        };
        let mut value = HeaderValue::from_str(&value)
            .map_err(|e| Error::Config(format!("authorization: {e}")))?;
        value.set_sensitive(true);
        map.insert(reqwest::header::AUTHORIZATION, value);
    }
    Ok(map)
}

impl HttpApi {
    pub(crate) fn new(config: &ClientConfig, endpoints: Endpoints) -> Result<HttpApi, Error> {
        // No pooled connections: one may be half-open after a network
        // change, and a call that waits on it learns nothing for its whole
        // timeout (a silence probe, a submission). ComfyUI's calls are few
        // and small, so a connection each costs little.
        let builder = reqwest::Client::builder()
            .default_headers(headers(config)?)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout)
            .pool_max_idle_per_host(0);
        #[cfg(feature = "tls")]
        let builder = builder.use_preconfigured_tls(
            crate::tls::client_config(config.ca_file.as_deref())?
                .as_ref()
                .clone(),
        );
        #[cfg(not(feature = "tls"))]
        if endpoints.is_https() || config.ca_file.is_some() {
            return Err(Error::Config(
                "https needs comfywire-client's `tls` feature".into(),
            ));
        }
        let client = builder
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(HttpApi {
            client,
            endpoints,
            limits: config.body_limits,
            idle_timeout: config.request_timeout,
        })
    }

    fn too_large(&self, what: &str, limit: Limit) -> Error {
        Error::TooLarge {
            what: what.to_owned(),
            limit: limit.bytes(&self.limits),
            setting: limit.setting(),
        }
    }

    /// Reads a body of at most `max` bytes: `Err(None)` when it is longer
    /// (by its `Content-Length`, before reading, or once the count passes
    /// `max`), `Err(Some(e))` when reading fails.
    async fn read_at_most(
        response: &mut reqwest::Response,
        max: u64,
    ) -> Result<Bytes, Option<reqwest::Error>> {
        let declared = response.content_length();
        if declared.is_some_and(|n| n > max) {
            return Err(None);
        }
        // Sized by the declared length when there is one (it fits), never
        // by more than 1 MiB up front otherwise.
        let start = declared.unwrap_or(0).min(max).min(1 << 20);
        let mut body = BytesMut::with_capacity(usize::try_from(start).unwrap_or(0));
        while let Some(chunk) = response.chunk().await.map_err(Some)? {
            if body.len() as u64 + chunk.len() as u64 > max {
                return Err(None);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Body<'_>>,
    ) -> Result<Answer, Error> {
        let url = self.endpoints.http(path);
        let started = Instant::now();
        let mut request = self.client.request(method.clone(), &url);
        match body {
            Some(Body::Bytes(bytes, content_type)) => {
                tracing::trace!(target: "comfywire::http", %method, url = %crate::endpoints::redact(&url), body = %shorten(&bytes), "request");
                request = request
                    .header(reqwest::header::CONTENT_TYPE, content_type)
                    .body(bytes);
            }
            Some(Body::Form(form)) => request = request.multipart(form),
            None => {}
        }
        let response = request.send().await.map_err(|e| {
            let connect = e.is_connect();
            // Without reqwest's copy of the URL (it may carry a token):
            // ours is redacted.
            let cause = with_causes(&e.without_url());
            let url = crate::endpoints::redact(&url);
            tracing::debug!(target: "comfywire::http", %method, %url, error = %cause, "request failed");
            let text = format!("{method} {url}: {cause}");
            // Nothing of the request left: the server certainly did not
            // act on it (what submissions need to know).
            if connect {
                Error::Connect(text)
            } else {
                Error::Request(text)
            }
        })?;
        let status = response.status().as_u16();
        let mut response = response;
        let limit = Limit::of(path);
        let what = format!("{method} {}", crate::endpoints::redact(&url));
        let body = match Self::read_at_most(&mut response, limit.bytes(&self.limits)).await {
            Ok(body) => body,
            Err(Some(e)) => return Err(Error::Request(format!("{what}: reading body: {e}"))),
            Err(None) => {
                tracing::debug!(target: "comfywire::http", %what, status, "answer too large");
                return Err(self.too_large(&what, limit));
            }
        };
        tracing::debug!(target: "comfywire::http", %method, url = %crate::endpoints::redact(&url), status, bytes = body.len(), elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "response");
        Ok(Answer { status, body })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Answer, Error> {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn get_json(&self, path: &str) -> Result<Value, Error> {
        self.get(path).await?.ok()?.json()
    }

    /// `GET /history/{prompt_id}` read without the submitted graph (see
    /// `lean.rs`): `None` when the server has no entry.
    pub(crate) async fn history_entry(
        &self,
        prompt_id: &str,
    ) -> Result<Option<HistoryEntry>, Error> {
        let path = format!("history/{prompt_id}");
        let answer = self.get(&path).await?.ok()?;
        crate::lean::history_entry(prompt_id, &answer.body).map_err(Error::Protocol)
    }

    /// `GET /queue` read without the graphs (see `lean.rs`).
    pub(crate) async fn queue(&self) -> Result<QueueSnapshot, Error> {
        let answer = self.get("queue").await?.ok()?;
        crate::lean::queue_snapshot(&answer.body).map_err(Error::Protocol)
    }

    /// `GET path` streamed into the file `dest` (written as `dest.part`,
    /// renamed when complete, deleted on any failure); returns the bytes
    /// written. The whole download is bounded by
    /// [`BodyLimits::download`], each wait for the next chunk by the
    /// request timeout (not the whole download: a large file may take
    /// longer than that).
    pub(crate) async fn download(&self, path: &str, dest: &Path) -> Result<u64, Error> {
        let url = self.endpoints.http(path);
        let what = format!("GET {}", crate::endpoints::redact(&url));
        let idle = self.idle_timeout;
        let stalled = || Error::Request(format!("{what}: no data for {idle:?}"));
        let request = self.client.get(&url).timeout(MAX_DURATION);
        let mut response = tokio::time::timeout(idle, request.send())
            .await
            .map_err(|_| stalled())?
            .map_err(|e| Error::Request(format!("{what}: {}", with_causes(&e.without_url()))))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let body = tokio::time::timeout(idle, Self::read_at_most(&mut response, ERROR_BODY))
                .await
                .ok()
                .and_then(Result::ok)
                .unwrap_or_default();
            return Err(Error::Http {
                status,
                body: shorten(&body),
            });
        }
        let max = self.limits.download;
        if response.content_length().is_some_and(|n| n > max) {
            return Err(self.too_large(&what, Limit::Download));
        }
        let mut part = dest.as_os_str().to_owned();
        part.push(".part");
        let part = std::path::PathBuf::from(part);
        let io = |e: std::io::Error| Error::Io(format!("{}: {e}", part.display()));
        let mut file = tokio::fs::File::create(&part).await.map_err(io)?;
        let copied = async {
            use tokio::io::AsyncWriteExt;
            let mut written = 0u64;
            loop {
                let chunk = tokio::time::timeout(idle, response.chunk())
                    .await
                    .map_err(|_| stalled())?
                    .map_err(|e| Error::Request(format!("{what}: reading body: {e}")))?;
                let Some(chunk) = chunk else { break };
                written += chunk.len() as u64;
                if written > max {
                    return Err(self.too_large(&what, Limit::Download));
                }
                file.write_all(&chunk).await.map_err(io)?;
            }
            file.flush().await.map_err(io)?;
            Ok(written)
        }
        .await;
        drop(file);
        match copied {
            Ok(written) => {
                tokio::fs::rename(&part, dest)
                    .await
                    .map_err(|e| Error::Io(format!("{}: {e}", dest.display())))?;
                tracing::debug!(target: "comfywire::http", %what, bytes = written, "downloaded");
                Ok(written)
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&part).await;
                Err(e)
            }
        }
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Result<Answer, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Protocol(e.to_string()))?;
        self.send(
            reqwest::Method::POST,
            path,
            Some(Body::Bytes(bytes, "application/json")),
        )
        .await
    }

    pub(crate) async fn post_multipart(
        &self,
        path: &str,
        form: reqwest::multipart::Form,
    ) -> Result<Answer, Error> {
        self.send(reqwest::Method::POST, path, Some(Body::Form(form)))
            .await
    }
}

/// An error with its causes (`error sending request: … : Connection
/// refused`): reqwest's own text names only the outermost step, which
/// says nothing a user can act on.
pub(crate) fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let part = cause.to_string();
        // Layers often repeat their inner error's text.
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = cause.source();
    }
    text
}

/// A request body.
pub(crate) enum Body<'a> {
    /// Bytes of a content type.
    Bytes(Vec<u8>, &'a str),
    /// A multipart form (its content type carries the boundary).
    Form(reqwest::multipart::Form),
}

#[cfg(test)]
mod tests {
    use super::Limit;

    #[test]
    fn each_path_has_its_limit() {
        assert_eq!(Limit::of("history/abc"), Limit::History);
        assert_eq!(Limit::of("history?max_items=3"), Limit::History);
        assert_eq!(Limit::of("/history"), Limit::History);
        assert_eq!(Limit::of("queue"), Limit::Queue);
        assert_eq!(Limit::of("view?filename=a.png&type=output"), Limit::View);
        assert_eq!(Limit::of("system_stats"), Limit::Json);
        assert_eq!(Limit::of("prompt"), Limit::Json);
        assert_eq!(Limit::of("upload/image"), Limit::Json);
        assert_eq!(Limit::of("historyx"), Limit::Json);
    }
}
