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
/// the kernel. Taking them in reads of this size rather than
/// tungstenite's 128 KiB is what lets the `Client` keep up. The buffer's
/// pages are touched only when a read fills them. The firehose benchmark
/// measured the Client at 1.70M frames/s with 128 KiB reads and 2.6M with
/// reads of 2 MiB (see the README).
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
