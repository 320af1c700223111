//! Settings JSON (C's `comfywire_client_new_json`, uniffi's
//! `from_settings_json`) is an explicit argument: it beats `COMFYWIRE_*`,
//! and the environment's token is not sent to a server the JSON names.
//! One test in this binary: it sets the process environment first.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::Duration;

use comfywire_host::HostClient;

/// A listener that hands over the head of the first request it gets.
fn first_request() -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
            head.push(byte[0]);
        }
        let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
    });
    (url, rx)
}

#[test]
fn explicit_json_beats_the_environment_and_keeps_its_token() {
    let (env_url, env_server) = first_request();
    let (app_url, app_server) = first_request();
    // SAFETY: the only test of this binary, before any client (or other
    // thread that reads the environment) exists.
    unsafe {
        std::env::set_var("COMFYWIRE_URL", &env_url);
        std::env::set_var("COMFYWIRE_TOKEN", "env-SECRET");
    }
    let wait = Duration::from_secs(10);

    // The application names its server: it is used, without the token
    // that belongs to COMFYWIRE_URL's server.
    let app = HostClient::from_settings_json(&format!(r#"{{"url": "{app_url}"}}"#)).unwrap();
    let head = app_server.recv_timeout(wait).unwrap();
    assert!(head.starts_with("GET /ws"), "{head}");
    assert!(!head.contains("env-SECRET"), "{head}");
    assert!(
        !head.to_ascii_lowercase().contains("authorization"),
        "{head}"
    );
    app.close();

    // Without a URL in the JSON, the environment's server gets its token.
    let env = HostClient::from_settings_json("{}").unwrap();
    let head = env_server.recv_timeout(wait).unwrap();
    assert!(head.contains("Bearer env-SECRET"), "{head}");
    env.close();
}
