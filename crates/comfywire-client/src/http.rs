//! The one HTTP client of a [`crate::Client`]: auth, headers, timeouts,
//! status handling and debug logging with secrets redacted.

use std::time::Instant;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;

use crate::config::{Auth, ClientConfig};
use crate::endpoints::Endpoints;
use crate::error::Error;

#[derive(Clone)]
pub(crate) struct HttpApi {
    client: reqwest::Client,
    pub(crate) endpoints: Endpoints,
}

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
                    base64(format!("{username}:{password}").as_bytes())
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

fn base64(input: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl HttpApi {
    pub(crate) fn new(config: &ClientConfig, endpoints: Endpoints) -> Result<HttpApi, Error> {
        let builder = reqwest::Client::builder()
            .default_headers(headers(config)?)
            .connect_timeout(config.connect_timeout)
            .timeout(config.request_timeout);
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
        Ok(HttpApi { client, endpoints })
    }

    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<Answer, Error> {
        let url = self.endpoints.http(path);
        let started = Instant::now();
        let mut request = self.client.request(method.clone(), &url);
        if let Some((bytes, content_type)) = body {
            tracing::trace!(target: "comfywire::http", %method, url = %crate::endpoints::redact(&url), body = %shorten(&bytes), "request");
            request = request
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .body(bytes);
        }
        let response = request.send().await.map_err(|e| {
            tracing::debug!(target: "comfywire::http", %method, url = %crate::endpoints::redact(&url), error = %e, "request failed");
            let text = format!("{method} {}: {e}", crate::endpoints::redact(&url));
            // Nothing of the request left: the server certainly did not
            // act on it (what submissions need to know).
            if e.is_connect() {
                Error::Connect(text)
            } else {
                Error::Request(text)
            }
        })?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| {
            Error::Request(format!(
                "{method} {}: reading body: {e}",
                crate::endpoints::redact(&url)
            ))
        })?;
        tracing::debug!(target: "comfywire::http", %method, url = %crate::endpoints::redact(&url), status, bytes = body.len(), elapsed_ms = started.elapsed().as_secs_f64() * 1000.0, "response");
        Ok(Answer { status, body })
    }

    pub(crate) async fn get(&self, path: &str) -> Result<Answer, Error> {
        self.send(reqwest::Method::GET, path, None).await
    }

    pub(crate) async fn get_json(&self, path: &str) -> Result<Value, Error> {
        self.get(path).await?.ok()?.json()
    }

    pub(crate) async fn post_json(&self, path: &str, body: &Value) -> Result<Answer, Error> {
        let bytes = serde_json::to_vec(body).map_err(|e| Error::Protocol(e.to_string()))?;
        self.send(
            reqwest::Method::POST,
            path,
            Some((bytes, "application/json")),
        )
        .await
    }

    pub(crate) async fn post_multipart(
        &self,
        path: &str,
        parts: &[Part<'_>],
    ) -> Result<Answer, Error> {
        let boundary = format!("comfywire-{}", crate::endpoints::new_client_id());
        let mut body = Vec::new();
        for part in parts {
            body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
            match part {
                Part::Field { name, value } => {
                    body.extend_from_slice(
                        format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n")
                            .as_bytes(),
                    );
                    body.extend_from_slice(value.as_bytes());
                }
                Part::File {
                    name,
                    filename,
                    content_type,
                    data,
                } => {
                    let filename = filename.replace(['"', '\r', '\n'], "_");
                    body.extend_from_slice(
                        format!("Content-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n")
                            .as_bytes(),
                    );
                    body.extend_from_slice(data);
                }
            }
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
        let content_type = format!("multipart/form-data; boundary={boundary}");
        self.send(reqwest::Method::POST, path, Some((body, &content_type)))
            .await
    }
}

/// One part of a multipart form.
pub(crate) enum Part<'a> {
    Field {
        name: &'a str,
        value: &'a str,
    },
    File {
        name: &'a str,
        filename: &'a str,
        content_type: &'a str,
        data: &'a [u8],
    },
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(super::base64(b""), "");
        assert_eq!(super::base64(b"f"), "Zg==");
        assert_eq!(super::base64(b"fo"), "Zm8=");
        assert_eq!(super::base64(b"foo"), "Zm9v");
        assert_eq!(super::base64(b"user:pass"), "dXNlcjpwYXNz");
    }
}
