//! How the WebSocket is opened: TCP with Nagle off, reads gathered by a
//! large buffer, TLS when the URL says `wss`, then the upgrade.

use tokio::io::BufReader;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::client::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, error::UrlError};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// What secures a `wss` socket: a rustls configuration, or nothing in a
/// build without TLS (then `wss` URLs are refused).
#[cfg(feature = "tls")]
pub(crate) type Connector = tokio_tungstenite::Connector;
/// What secures a `wss` socket: nothing in a build without TLS.
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = std::convert::Infallible;

/// How many bytes the client reads from the socket at once when the
/// server has that much waiting.
///
/// A client that has fallen behind a fast server finds megabytes queued in
/// the kernel; taking them in reads of this size rather than
/// tungstenite's 128 KiB is what lets the `Client` keep up (the firehose
/// benchmark: 1.73M frames/s with 128 KiB reads, 2.55M with 2 MiB; see
/// ARCHITECTURE.md). One buffer of this size per connection.
pub const READ_BUFFER_BYTES: usize = 2 << 20;

/// tungstenite's own read size: it copies from [`READ_BUFFER_BYTES`]'s
/// buffer, and zero-fills this much before every read, so it stays small.
const FRAME_READ_BYTES: usize = 32 << 10;

/// The socket the driver reads.
pub(crate) type Ws = WebSocketStream<MaybeTlsStream<BufReader<TcpStream>>>;

/// Connects to `request`'s host and performs the upgrade.
pub(crate) async fn open(
    request: Request,
    config: WebSocketConfig,
    connector: Option<Connector>,
) -> Result<(Ws, Response), tungstenite::Error> {
    let uri = request.uri();
    let host = uri
        .host()
        .ok_or(tungstenite::Error::Url(UrlError::NoHostName))?
        // An IPv6 literal keeps its brackets in the URI, not in the address.
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = match (uri.port_u16(), uri.scheme_str()) {
        (Some(port), _) => port,
        (None, Some("wss")) => 443,
        (None, Some("ws")) => 80,
        _ => return Err(tungstenite::Error::Url(UrlError::UnsupportedUrlScheme)),
    };
    let socket = TcpStream::connect((host.as_str(), port)).await?;
    // Commands are small and must leave at once.
    socket.set_nodelay(true)?;
    let socket = BufReader::with_capacity(READ_BUFFER_BYTES, socket);
    let config = Some(config.read_buffer_size(FRAME_READ_BYTES));
    #[cfg(feature = "tls")]
    return tokio_tungstenite::client_async_tls_with_config(request, socket, config, connector)
        .await;
    #[cfg(not(feature = "tls"))]
    {
        let _: Option<Connector> = connector;
        if request.uri().scheme_str() == Some("wss") {
            return Err(tungstenite::Error::Url(UrlError::TlsFeatureNotEnabled));
        }
        let socket = MaybeTlsStream::Plain(socket);
        tokio_tungstenite::client_async_with_config(request, socket, config).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;

    /// A server on `listener` that sends `messages` and closes.
    fn serve(listener: TcpListener, messages: Vec<Message>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            for m in messages {
                ws.feed(m).await.unwrap();
            }
            ws.flush().await.unwrap();
            ws.close(None).await.unwrap();
        })
    }

    fn config() -> WebSocketConfig {
        WebSocketConfig::default()
            .max_message_size(Some(16 << 20))
            .max_frame_size(Some(16 << 20))
    }

    /// Reads until the close, returning every text and binary message.
    async fn read_all(ws: &mut Ws) -> Vec<Message> {
        let mut got = Vec::new();
        while let Some(m) = ws.next().await {
            match m.unwrap() {
                m @ (Message::Text(_) | Message::Binary(_)) => got.push(m),
                Message::Close(_) => break,
                _ => {}
            }
        }
        got
    }

    #[tokio::test]
    async fn frames_larger_and_smaller_than_the_buffers_arrive_whole_and_in_order() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        // Larger than the read buffer, larger than tungstenite's read size,
        // and small ones between: every path through the buffer.
        let big: Vec<u8> = (0..(READ_BUFFER_BYTES * 2 + 7)).map(|i| i as u8).collect();
        let mid: Vec<u8> = (0..(FRAME_READ_BYTES + 3)).map(|i| (i * 7) as u8).collect();
        let mut sent = Vec::new();
        for i in 0..200 {
            sent.push(Message::text(format!(
                "{{\"type\": \"progress\", \"n\": {i}}}"
            )));
            if i % 50 == 0 {
                sent.push(Message::binary(big.clone()));
            }
            if i % 20 == 0 {
                sent.push(Message::binary(mid.clone()));
            }
        }
        let server = serve(listener, sent.clone());
        let request = format!("ws://127.0.0.1:{port}/ws")
            .into_client_request()
            .unwrap();
        let (mut ws, _) = open(request, config(), None).await.unwrap();
        assert_eq!(read_all(&mut ws).await, sent);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn an_ipv6_literal_host_is_dialled_without_its_brackets() {
        // Where the machine has no IPv6 loopback there is nothing to dial.
        let Ok(listener) = TcpListener::bind("[::1]:0").await else {
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let server = serve(listener, vec![Message::text("hello")]);
        let request = format!("ws://[::1]:{port}/ws")
            .into_client_request()
            .unwrap();
        let (mut ws, _) = open(request, config(), None).await.unwrap();
        assert_eq!(read_all(&mut ws).await, vec![Message::text("hello")]);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_url_without_a_port_or_known_scheme_is_refused_before_dialling() {
        let request = Request::builder()
            .uri("http://127.0.0.1/ws")
            .body(())
            .unwrap();
        let error = open(request, config(), None).await.unwrap_err();
        assert!(
            matches!(
                error,
                tungstenite::Error::Url(UrlError::UnsupportedUrlScheme)
            ),
            "{error:?}"
        );
    }
}
