//! HTTPS and WSS through rustls, trusting a custom CA file: a TLS proxy on
//! 127.0.0.1 with a test certificate sits in front of the mock.
#![cfg(feature = "tls")]
#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use comfywire_client::{Client, ConnectionError};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

/// Terminates TLS and forwards every connection to `backend`.
async fn tls_proxy(backend: std::net::SocketAddr) -> std::net::SocketAddr {
    let certs = CertificateDer::pem_file_iter(data("server.pem"))
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(data("server.key")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let Ok(mut plain) = TcpStream::connect(backend).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn runs_over_https_and_wss_with_a_custom_ca() {
    let server = common::mock(20.0).await;
    let proxy = tls_proxy(server.addr()).await;
    let mut config = common::config(&format!("https://127.0.0.1:{}", proxy.port()));
    config.ca_file = Some(data("ca.pem"));
    let client = Client::connect(config).await.unwrap();
    client
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    let result = client.run(&server.sample_workflow()).await.unwrap();
    assert_eq!(result.record.phase.name(), "succeeded");
    let file = client.view(&result.files()[0]).await.unwrap();
    assert!(file.starts_with(b"\x89PNG"));
    client.close().await;
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_typed_connect_error() {
    let server = common::mock(0.0).await;
    let proxy = tls_proxy(server.addr()).await;
    let client = Client::connect(common::config(&format!(
        "https://127.0.0.1:{}",
        proxy.port()
    )))
    .await
    .unwrap();
    assert!(
        client
            .wait_connected(Duration::from_millis(500))
            .await
            .is_err()
    );
    let status = client.status();
    assert!(
        matches!(&status.last_error, Some(ConnectionError::ConnectFailed { message }) if message.to_lowercase().contains("certificate")),
        "{status:?}"
    );
    assert!(matches!(
        client.queue().await,
        Err(comfywire_client::Error::Connect(_))
    ));
    client.close().await;
}
