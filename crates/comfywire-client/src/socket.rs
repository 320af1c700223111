//! The WebSocket the driver reads: TCP with Nagle off, TLS when the URL
//! says `wss`, the upgrade (`handshake.rs`), then the server's frames
//! decoded in place from one large read buffer by the protocol core's
//! decoder, and the client's few frames (texts, pings, pongs, the close)
//! masked and written whole.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use comfywire_proto::websocket::{Decoded, Decoder, FrameError, Opcode, Received};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tungstenite::handshake::client::Request;

/// What secures a `wss` socket: a rustls configuration.
#[cfg(feature = "tls")]
pub(crate) type Connector = std::sync::Arc<rustls::ClientConfig>;
/// What secures a `wss` socket: nothing in a build without TLS (then
/// `wss` URLs are refused).
#[cfg(not(feature = "tls"))]
pub(crate) type Connector = std::convert::Infallible;

/// How many bytes the client reads from the socket at once when the
/// server has that much waiting.
///
/// A client that has fallen behind a fast server finds megabytes queued in
/// the kernel; taking them in reads of this size rather than 128 KiB is
/// what lets the `Client` keep up (ARCHITECTURE.md, the client's read path).
/// The buffer grows past this only to hold one frame larger than it (up to
/// the message size limit), and shrinks back once that frame is read.
pub const READ_BUFFER_BYTES: usize = 2 << 20;

/// How long a frame may wait for the server to take it. The client sends
/// little (a few texts, pings and pongs), so a socket whose buffers are
/// full for this long has a server that does not read.
pub(crate) const SEND_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Why a socket could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The URL names no host, or a scheme other than `ws` and `wss`.
    #[error("{0}")]
    Url(String),
    /// Dialling, TLS or the upgrade's bytes failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The server answered the upgrade with an HTTP status instead.
    #[error("the server answered the upgrade with HTTP {status} {reason}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Its canonical reason phrase.
        reason: String,
    },
    /// The upgrade's answer broke RFC 6455.
    #[error("{0}")]
    Handshake(String),
}

/// Why reading the socket stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReadError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// The socket ended without a close frame.
    #[error("the socket ended without a close frame")]
    Ended,
    /// A frame broke RFC 6455 or the size limit.
    #[error("{0}")]
    Frame(#[from] FrameError),
}

/// The byte stream under the WebSocket.
enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open WebSocket.
pub(crate) struct Socket {
    stream: Stream,
    /// Bytes read and not yet decoded are `buf[start..end]`.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// What the frame at `start` needs in all, once a decode found it cut
    /// short; 0 when the bytes there have not been looked at.
    needed: usize,
    decoder: Decoder,
    /// The pong owed for the server's latest ping (one answer for a burst).
    pong: Option<Vec<u8>>,
    /// The frame being written.
    out: Vec<u8>,
}

/// Connects to `request`'s host and performs the upgrade; frames larger
/// than `limit` fail the socket.
pub(crate) async fn open(
    request: Request,
    limit: usize,
    connector: Option<Connector>,
) -> Result<Socket, OpenError> {
    let uri = request.uri();
    let secure = match uri.scheme_str() {
        Some("wss") => true,
        Some("ws") => false,
        other => {
            return Err(OpenError::Url(format!(
                "the URL scheme {other:?} is not ws or wss"
            )));
        }
    };
    let host = uri
        .host()
        .ok_or_else(|| OpenError::Url("the URL names no host".into()))?
        // An IPv6 literal keeps its brackets in the URI, not in the address.
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let port = uri.port_u16().unwrap_or(if secure { 443 } else { 80 });
    let tcp = TcpStream::connect((host.as_str(), port)).await?;
    // Commands are small and must leave at once.
    tcp.set_nodelay(true)?;
    let mut stream = if secure {
        secure_stream(tcp, host, connector).await?
    } else {
        Stream::Plain(tcp)
    };
    let mut buf = vec![0; READ_BUFFER_BYTES];
    let (start, end) = crate::handshake::upgrade(&mut stream, request, &mut buf).await?;
    Ok(Socket {
        stream,
        buf,
        start,
        end,
        needed: 0,
        decoder: Decoder::new(limit),
        pong: None,
        out: Vec::new(),
    })
}

#[cfg(feature = "tls")]
async fn secure_stream(
    tcp: TcpStream,
    host: String,
    connector: Option<Connector>,
) -> Result<Stream, OpenError> {
    // The driver always passes its one configuration (roots and CA file).
    let config = connector.ok_or_else(|| OpenError::Url("no TLS configuration".into()))?;
    let name = rustls::pki_types::ServerName::try_from(host)
        .map_err(|e| OpenError::Url(format!("not a TLS server name: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await?;
    Ok(Stream::Tls(Box::new(tls)))
}

#[cfg(not(feature = "tls"))]
async fn secure_stream(
    _tcp: TcpStream,
    _host: String,
    connector: Option<Connector>,
) -> Result<Stream, OpenError> {
    let _: Option<Connector> = connector;
    Err(OpenError::Url(
        "wss URLs need comfywire-client's `tls` feature".into(),
    ))
}

impl Socket {
    /// The next message already in the buffer, if a whole one is there;
    /// it borrows the buffer until the next read. A ping is answered by
    /// the next [`Socket::answer_ping`]. `None` also follows a fragment that
    /// does not end its message: [`Socket::poll_fill`] is then ready at
    /// once, with the bytes after it.
    pub(crate) fn next(&mut self) -> Option<Result<Received<'_>, FrameError>> {
        if self.end - self.start < self.needed.max(1) {
            return None;
        }
        match self.decoder.decode(&self.buf[self.start..self.end]) {
            Err(error) => Some(Err(error)),
            Ok(Decoded::Incomplete { needed }) => {
                self.needed = needed;
                None
            }
            Ok(Decoded::Frame { consumed, message }) => {
                // The bytes stay where they are until the next read: the
                // message may borrow them meanwhile.
                self.start += consumed;
                self.needed = 0;
                if let Some(Received::Ping(payload)) = &message {
                    self.pong = Some(payload.to_vec());
                }
                message.map(Ok)
            }
        }
    }

    /// Reads more of the socket into the buffer; ready when there is
    /// something new for [`Socket::next`].
    pub(crate) fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ReadError>> {
        if self.end - self.start >= self.needed.max(1) {
            return Poll::Ready(Ok(()));
        }
        self.make_room();
        let mut read = ReadBuf::new(&mut self.buf[self.end..]);
        match Pin::new(&mut self.stream).poll_read(cx, &mut read) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Err(e.into())),
            Poll::Ready(Ok(())) if read.filled().is_empty() => Poll::Ready(Err(ReadError::Ended)),
            Poll::Ready(Ok(())) => {
                self.end += read.filled().len();
                Poll::Ready(Ok(()))
            }
        }
    }

    /// Readies the buffer for a read: the undecoded bytes move to its
    /// front when the room behind them is short, and it grows only to hold
    /// a frame larger than itself (the decoder has checked that frame
    /// against the limit).
    fn make_room(&mut self) {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.start > 0
            && (self.buf.len() - self.end < self.buf.len() / 4
                || self.start + self.needed > self.buf.len())
        {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let wanted = self.needed.max(READ_BUFFER_BYTES);
        if self.buf.len() > wanted && self.start == 0 && self.end <= wanted {
            // Give back what a large frame took.
            self.buf.truncate(wanted);
            self.buf.shrink_to_fit();
        } else if self.needed > self.buf.len() {
            self.buf.resize(self.needed, 0);
        }
    }

    /// Writes one frame; the mask comes from the OS. A server that takes
    /// none of it within [`SEND_TIMEOUT`] fails the socket: the driver
    /// waits on its writes, and a server that pings without reading would
    /// otherwise hold it there once the kernel's buffers are full.
    pub(crate) async fn send(&mut self, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
        let mut mask = [0; 4];
        getrandom::fill(&mut mask).map_err(|e| io::Error::other(e.to_string()))?;
        self.out.clear();
        comfywire_proto::websocket::encode(opcode, payload, mask, &mut self.out);
        let write = async {
            self.stream.write_all(&self.out).await?;
            self.stream.flush().await
        };
        tokio::time::timeout(SEND_TIMEOUT, write)
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the server took nothing sent to it for {SEND_TIMEOUT:?}"),
                )
            })?
    }

    /// Answers the server's latest ping, if it has not been answered.
    pub(crate) async fn answer_ping(&mut self) -> io::Result<()> {
        match self.pong.take() {
            Some(payload) => self.send(Opcode::Pong, &payload).await,
            None => Ok(()),
        }
    }

    /// Sends a close frame (with `code` and `reason` when given) and ends
    /// the stream.
    pub(crate) async fn close(mut self, code: Option<(u16, &str)>) -> io::Result<()> {
        let payload = code
            .map(|(code, reason)| comfywire_proto::websocket::close_payload(code, reason))
            .unwrap_or_default();
        self.send(Opcode::Close, &payload).await?;
        self.stream.shutdown().await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    use tungstenite::handshake::machine::TryParse;
    use tungstenite::handshake::server::Request;

    const LIMIT: usize = 16 << 20;

    /// A tungstenite server on `listener` that sends `messages`, then
    /// closes and returns what the client sent it.
    fn serve(
        listener: TcpListener,
        messages: Vec<Message>,
    ) -> tokio::task::JoinHandle<Vec<Message>> {
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let mut ws = tokio_tungstenite::accept_async(stream).await.unwrap();
            for m in messages {
                ws.feed(m).await.unwrap();
            }
            ws.flush().await.unwrap();
            ws.close(None).await.unwrap();
            let mut got = Vec::new();
            while let Some(Ok(m)) = ws.next().await {
                got.push(m);
            }
            got
        })
    }

    async fn listen() -> (TcpListener, Request) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let request = format!("ws://127.0.0.1:{port}/ws")
            .into_client_request()
            .unwrap();
        (listener, request)
    }

    /// Reads until the server's close, returning every message; pings
    /// are answered as they come.
    async fn read_all(ws: &mut Socket) -> Result<Vec<Message>, ReadError> {
        let mut got = Vec::new();
        loop {
            while let Some(message) = ws.next() {
                let message = match message? {
                    Received::Text(t) => Message::text(std::str::from_utf8(t).unwrap()),
                    Received::Binary(b) => Message::binary(b.to_vec()),
                    Received::Ping(p) => Message::Ping(p.to_vec().into()),
                    Received::Pong(p) => Message::Pong(p.to_vec().into()),
                    Received::Close(_) => return Ok(got),
                };
                let owed = matches!(message, Message::Ping(_));
                got.push(message);
                if owed {
                    ws.answer_ping().await?;
                }
            }
            std::future::poll_fn(|cx| ws.poll_fill(cx)).await?;
        }
    }

    #[tokio::test]
    async fn frames_larger_and_smaller_than_the_buffer_arrive_whole_and_in_order() {
        let (listener, request) = listen().await;
        // Larger than the read buffer, and small ones between: every path
        // through it (compaction, growth, giving the growth back).
        let big: Vec<u8> = (0..(READ_BUFFER_BYTES * 2 + 7)).map(|i| i as u8).collect();
        let mut sent = Vec::new();
        for i in 0..200 {
            sent.push(Message::text(format!(
                "{{\"type\": \"progress\", \"n\": {i}}}"
            )));
            if i % 50 == 0 {
                sent.push(Message::binary(big.clone()));
            }
            if i % 20 == 0 {
                sent.push(Message::binary(vec![i as u8; 40_000]));
            }
        }
        let server = serve(listener, sent.clone());
        let mut ws = open(request, LIMIT, None).await.unwrap();
        assert_eq!(read_all(&mut ws).await.unwrap(), sent);
        // The growth a large frame took is given back.
        std::future::poll_fn(|cx| {
            let _ = ws.poll_fill(cx);
            Poll::Ready(())
        })
        .await;
        assert_eq!(ws.buf.len(), READ_BUFFER_BYTES);
        drop(ws);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_fragmented_message_with_a_ping_inside_is_whole_and_the_ping_answered() {
        let (listener, request) = listen().await;
        let parts = [
            Frame::message(b"{\"type\": ".to_vec(), OpCode::Data(Data::Text), false),
            Frame::ping(b"mid".to_vec()),
            Frame::message(b"\"status\"}".to_vec(), OpCode::Data(Data::Continue), true),
        ];
        let server = serve(listener, parts.into_iter().map(Message::Frame).collect());
        let mut ws = open(request, LIMIT, None).await.unwrap();
        let got = read_all(&mut ws).await.unwrap();
        assert_eq!(
            got,
            vec![
                Message::Ping(b"mid".to_vec().into()),
                Message::text("{\"type\": \"status\"}")
            ]
        );
        ws.close(None).await.unwrap();
        // The server saw the pong it was owed.
        let answered = server.await.unwrap();
        assert!(
            answered.contains(&Message::Pong(b"mid".to_vec().into())),
            "{answered:?}"
        );
    }

    #[tokio::test]
    async fn a_frame_over_the_limit_fails_the_read_with_its_size() {
        let (listener, request) = listen().await;
        let server = serve(listener, vec![Message::binary(vec![0; 5000])]);
        let mut ws = open(request, 4096, None).await.unwrap();
        match read_all(&mut ws).await {
            Err(ReadError::Frame(FrameError::TooLarge {
                size: 5000,
                limit: 4096,
            })) => {}
            other => panic!("{other:?}"),
        }
        drop(ws);
        server.abort();
    }

    /// A server that answers the upgrade with `answer` (written by hand),
    /// then `after` in the same write.
    async fn answering(answer: &'static str, after: &'static [u8]) -> Result<Socket, OpenError> {
        let (listener, request) = listen().await;
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut head = vec![0; 4096];
            let n = stream.read(&mut head).await.unwrap();
            let (_, request) = Request::try_parse(&head[..n]).unwrap().unwrap();
            let key = &request.headers()["sec-websocket-key"];
            let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
            let mut bytes = answer.replace("{accept}", &accept).into_bytes();
            bytes.extend_from_slice(after);
            stream.write_all(&bytes).await.unwrap();
            // Held open until the client is done.
            let _ = stream.read(&mut [0; 64]).await;
        });
        open(request, LIMIT, None).await
    }

    #[tokio::test]
    async fn frames_sent_with_the_upgrade_answer_are_read_not_lost() {
        let mut ws = answering(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n",
            b"\x81\x02hi\x81\x03you\x88\x00",
        )
        .await
        .unwrap();
        let got = read_all(&mut ws).await.unwrap();
        assert_eq!(got, vec![Message::text("hi"), Message::text("you")]);
    }

    #[tokio::test]
    async fn an_upgrade_answer_that_is_not_a_websocket_switch_is_refused() {
        let refused = answering("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n", b"").await;
        assert!(
            matches!(&refused, Err(OpenError::Refused { status: 403, reason }) if reason == "Forbidden"),
            "{:?}",
            refused.err()
        );
        for answer in [
            // Another key's proof.
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n",
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        ] {
            let failed = answering(answer, b"").await;
            assert!(
                matches!(failed, Err(OpenError::Handshake(_))),
                "{answer}: {:?}",
                failed.err()
            );
        }
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
        let mut ws = open(request, LIMIT, None).await.unwrap();
        assert_eq!(
            read_all(&mut ws).await.unwrap(),
            vec![Message::text("hello")]
        );
        drop(ws);
        server.await.unwrap();
    }

    #[tokio::test]
    async fn a_url_of_another_scheme_is_refused_before_dialling() {
        let request = Request::builder()
            .uri("http://127.0.0.1/ws")
            .body(())
            .unwrap();
        let error = open(request, LIMIT, None).await.err().unwrap();
        assert!(matches!(error, OpenError::Url(_)), "{error:?}");
    }
}
