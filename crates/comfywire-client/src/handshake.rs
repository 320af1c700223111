//! The WebSocket upgrade: tungstenite writes the request and parses the
//! answer; the checks RFC 6455 §4.1 asks of a client are made here.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tungstenite::handshake::client::{Request, Response, generate_request};
use tungstenite::handshake::derive_accept_key;
use tungstenite::handshake::machine::TryParse;

use crate::socket::OpenError;

/// The most bytes of response headers read before giving up on a server.
const RESPONSE_HEAD_BYTES: usize = 64 << 10;

/// Sends the upgrade `request` on `stream` and reads the answer into
/// `buf`; returns how many of the bytes read were the answer's head (the
/// rest, `buf[head..end]`, are the server's first frames) and how many
/// were read in all.
pub(crate) async fn upgrade<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    request: Request,
    buf: &mut [u8],
) -> Result<(usize, usize), OpenError> {
    let (bytes, key) =
        generate_request(request).map_err(|e| OpenError::Handshake(e.to_string()))?;
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    let limit = buf.len().min(RESPONSE_HEAD_BYTES);
    let mut end = 0;
    loop {
        if end == limit {
            return Err(OpenError::Handshake(format!(
                "the server's answer has over {limit} bytes of headers"
            )));
        }
        let n = stream.read(&mut buf[end..limit]).await?;
        if n == 0 {
            return Err(OpenError::Handshake(
                "the server closed the connection during the upgrade".into(),
            ));
        }
        end += n;
        let parsed =
            Response::try_parse(&buf[..end]).map_err(|e| OpenError::Handshake(e.to_string()))?;
        if let Some((head, response)) = parsed {
            verify(&response, &key)?;
            return Ok((head, end));
        }
    }
}

/// The answer must be a switch to WebSocket that proves it read our key.
fn verify(response: &Response, key: &str) -> Result<(), OpenError> {
    let status = response.status();
    if status.as_u16() != 101 {
        return Err(OpenError::Refused {
            status: status.as_u16(),
            reason: status.canonical_reason().unwrap_or_default().to_owned(),
        });
    }
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let refuse = |what: &str| Err(OpenError::Handshake(format!("the upgrade answer {what}")));
    if !header("Upgrade").eq_ignore_ascii_case("websocket") {
        return refuse("does not say `Upgrade: websocket`");
    }
    if !header("Connection")
        .split(',')
        .any(|token| token.trim().eq_ignore_ascii_case("upgrade"))
    {
        return refuse("does not say `Connection: upgrade`");
    }
    if header("Sec-WebSocket-Accept") != derive_accept_key(key.as_bytes()) {
        return refuse("does not carry the accept key of our request's key");
    }
    // We offered no extension and no subprotocol: one chosen anyway would
    // change the framing or the messages under us.
    if !header("Sec-WebSocket-Extensions").is_empty() {
        return refuse("names an extension we did not offer");
    }
    if !header("Sec-WebSocket-Protocol").is_empty() {
        return refuse("names a subprotocol we did not offer");
    }
    Ok(())
}
