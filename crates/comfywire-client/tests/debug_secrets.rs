//! A client's `Debug` output never shows the credentials it was built with.
#![allow(clippy::unwrap_used)]

use comfywire_client::{Auth, Client, ClientConfig};

#[tokio::test]
async fn client_debug_hides_url_credentials_and_tokens() {
    // Nothing listens there: the driver's connection attempts fail, which
    // does not matter for what Debug prints.
    let mut config = ClientConfig::new("http://alice:pw-SECRET@127.0.0.1:9/comfy");
    config.query_token = Some("qt-SECRET".into());
    config.auth = Some(Auth::Bearer("tok-SECRET".into()));
    config.headers = vec![("X-Api-Key".into(), "hdr-SECRET".into())];
    let client = Client::start(config).unwrap();
    let shown = format!("{client:?} {:?}", client.config());
    assert!(!shown.contains("SECRET"), "{shown}");
    assert!(shown.contains("127.0.0.1:9"), "{shown}");
    client.close().await;
}

#[tokio::test]
async fn http_errors_name_their_root_cause_and_no_credentials() {
    // A port nothing listens on: the kernel refuses the connection.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut config = ClientConfig::new(format!("http://127.0.0.1:{port}"));
    config.query_token = Some("qt-SECRET".into());
    let client = Client::start(config).unwrap();
    let error = client.queue().await.unwrap_err().to_string();
    assert!(error.to_lowercase().contains("refused"), "{error}");
    assert!(!error.contains("SECRET"), "{error}");
    client.close().await;
}
