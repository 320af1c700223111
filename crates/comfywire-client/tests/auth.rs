//! The credentials a client is given reach the server as the standards
//! spell them, checked on the raw request a bare TCP server reads.
#![allow(clippy::unwrap_used)]

use comfywire_client::{Auth, Client, ClientConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers one HTTP request with `{}` and returns its head.
async fn one_request(listener: TcpListener) -> String {
    let (mut stream, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "the request ended early");
        head.extend_from_slice(&buf[..n]);
        assert!(head.len() < 64 << 10, "no end of head");
    }
    stream
        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
        .await
        .unwrap();
    String::from_utf8_lossy(&head).into_owned()
}

async fn header_for(auth: Auth) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = ClientConfig::new(format!("http://{}", listener.local_addr().unwrap()));
    config.auth = Some(auth);
    let client = Client::start(config).unwrap();
    let server = tokio::spawn(one_request(listener));
    // The socket's own connection attempt may come first: it is not HTTP
    // we answer, so the request read is whichever arrives; both carry it.
    let _ = client.system_stats().await;
    let head = server.await.unwrap();
    client.close().await;
    head
}

#[tokio::test]
async fn basic_and_bearer_credentials_are_sent_as_rfc_7617_and_6750_spell_them() {
    // RFC 7617, section 2: Aladdin / open sesame.
    let head = header_for(Auth::Basic {
        username: "Aladdin".into(),
        password: "open sesame".into(),
    })
    .await;
    let line = |head: &str| {
        head.lines()
            .find(|l| l.to_lowercase().starts_with("authorization:"))
            .map(|l| l["authorization:".len()..].trim().to_owned())
    };
    assert_eq!(
        line(&head).as_deref(),
        Some("Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        "{head}"
    );
    let head = header_for(Auth::Bearer("mF_9.B5f-4.1JqM".into())).await;
    assert_eq!(
        line(&head).as_deref(),
        Some("Bearer mF_9.B5f-4.1JqM"),
        "{head}"
    );
}
