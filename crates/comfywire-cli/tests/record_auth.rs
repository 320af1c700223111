//! `comfywire record` connects through the client's one config path: behind
//! a proxy that demands a bearer token it gets in with the token of the
//! settings file (and the query token of `COMFYWIRE_QUERY_TOKEN`), is
//! turned away without it, and the trace it writes holds no credential.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use comfywire_client::{Client, ClientConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BEARER: &str = "bearer-secret-7f3a";
const QUERY_TOKEN: &str = "query-secret-9c1e";

/// A reverse proxy in front of the mock (which has no auth of its own):
/// a connection whose first request lacks `Authorization: Bearer BEARER`
/// gets a 401; the others are piped through. Later requests on a kept-alive
/// connection are not checked again.
struct AuthProxy {
    url: String,
    /// Request lines of the connections let through.
    admitted: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicU64>,
}

fn auth_proxy(mock: &common::Mock) -> AuthProxy {
    let listener = mock.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upstream = mock.server.addr();
    let admitted = Arc::new(Mutex::new(Vec::new()));
    let refused = Arc::new(AtomicU64::new(0));
    let (log, count) = (admitted.clone(), refused.clone());
    mock.rt.spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            tokio::spawn(pipe(inbound, upstream, log.clone(), count.clone()));
        }
    });
    AuthProxy {
        url,
        admitted,
        refused,
    }
}

async fn pipe(
    mut inbound: TcpStream,
    upstream: std::net::SocketAddr,
    admitted: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicU64>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match inbound.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let authorized = text.lines().any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("authorization") && value.trim() == format!("Bearer {BEARER}")
        })
    });
    if !authorized {
        refused.fetch_add(1, Ordering::Relaxed);
        let _ = inbound
            .write_all(
                b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .await;
        return;
    }
    admitted
        .lock()
        .unwrap()
        .push(text.lines().next().unwrap_or_default().to_owned());
    let Ok(mut outbound) = TcpStream::connect(upstream).await else {
        return;
    };
    if outbound.write_all(&head).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
    }
}

#[test]
fn record_goes_through_the_configured_auth_and_writes_no_credentials() {
    let mock = common::Mock::start(5.0);
    let proxy = auth_proxy(&mock);
    let dir = common::temp_dir("record-auth");
    common::write_json(&dir, "config.json", &json!({ "token": BEARER }));
    let trace = dir.join("session.jsonl");
    // The submitter goes straight to the mock; the recorder's socket, the
    // newer one of this client id, gets the prompt's frames.
    let submitter = mock
        .rt
        .block_on(Client::connect(ClientConfig {
            client_id: Some("rec-auth".into()),
            ..ClientConfig::new(mock.url())
        }))
        .unwrap();
    mock.rt
        .block_on(submitter.wait_connected(Duration::from_secs(10)))
        .unwrap();
    let mut cmd = common::comfywire(&dir);
    cmd.env("COMFYWIRE_QUERY_TOKEN", QUERY_TOKEN)
        .args(["record", "--url", &proxy.url, "--client-id", "rec-auth"])
        .arg(&trace);
    let mut child = cmd.spawn().unwrap();
    let mut err = common::Lines::of(child.stderr.take().unwrap());
    let line = err.until("recording", Duration::from_secs(10));
    assert!(!line.contains(QUERY_TOKEN), "{line}");
    common::eventually(Duration::from_secs(10), "the recorder's socket", || {
        mock.server.stats().connections_accepted >= 2
    });
    let submitted = mock
        .rt
        .block_on(submitter.submit(&mock.server.sample_workflow()))
        .unwrap();
    common::eventually(Duration::from_secs(20), "the prompt's end", || {
        mock.rt
            .block_on(submitter.server_history(&submitted.prompt_id))
            .unwrap()
            .is_some()
    });
    common::sigint(&child);
    let code = common::wait(&mut child, Duration::from_secs(20));
    assert_eq!(code, 0, "{:#?}", err.rest(Duration::from_secs(1)));
    mock.rt.block_on(submitter.close());

    // The socket upgrade went through the proxy with both credentials.
    let admitted = proxy.admitted.lock().unwrap().clone();
    let upgrade = format!("GET /ws?clientId=rec-auth&token={QUERY_TOKEN} ");
    assert!(
        admitted.iter().any(|l| l.starts_with(&upgrade)),
        "{admitted:#?}"
    );
    assert_eq!(proxy.refused.load(Ordering::Relaxed), 0);

    let text = std::fs::read_to_string(&trace).unwrap();
    for secret in [BEARER, QUERY_TOKEN, "token="] {
        assert!(!text.contains(secret), "the trace holds {secret:?}");
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let meta = &lines[0]["meta"];
    assert_eq!(meta["server"]["url"], format!("{}/", proxy.url));
    assert_eq!(meta["client_id"], "rec-auth");
    assert_eq!(meta["prompt_ids"][0], submitted.prompt_id.as_str());
    assert_eq!(meta["feature_flags_sent"], true);
    assert_eq!(lines[1]["kind"], "ws_open");
    assert_eq!(lines[1]["path"], "/ws?clientId=rec-auth");
    // The history request went through the proxy too.
    let history = lines
        .iter()
        .find(|l| l["kind"] == "http")
        .expect("a history request");
    assert_eq!(history["status"], 200);
    assert_eq!(
        history["response"][submitted.prompt_id.as_str()]["status"]["status_str"],
        "success"
    );
    assert_eq!(lines.last().unwrap()["kind"], "ws_close");
    assert_eq!(lines.last().unwrap()["by"], "client");
}

#[test]
fn record_without_the_token_is_refused() {
    let mock = common::Mock::start(5.0);
    let proxy = auth_proxy(&mock);
    let dir = common::temp_dir("record-noauth");
    let trace = dir.join("session.jsonl");
    let mut cmd = common::comfywire(&dir);
    cmd.env_remove("COMFYWIRE_TOKEN")
        .args(["record", "--url", &proxy.url, "--duration", "5"])
        .arg(&trace);
    let done = common::run(cmd, Duration::from_secs(30));
    assert_eq!(done.code, 3, "{}", done.stderr);
    assert!(done.stderr.contains("cannot connect"), "{}", done.stderr);
    assert!(proxy.refused.load(Ordering::Relaxed) >= 1);
    assert!(!trace.exists());
}

#[test]
fn credentials_in_the_url_stay_out_of_the_meta() {
    let mock = common::Mock::start(5.0);
    let dir = common::temp_dir("record-userinfo");
    let trace = dir.join("session.jsonl");
    let url = mock.url().replace("http://", "http://alice:pw-secret-42@");
    let mut cmd = common::comfywire(&dir);
    cmd.args(["record", "--url", &url, "--duration", "0.5"])
        .arg(&trace);
    let done = common::run(cmd, Duration::from_secs(20));
    assert_eq!(done.code, 0, "{}", done.stderr);
    assert!(!done.stderr.contains("pw-secret-42"), "{}", done.stderr);
    let text = std::fs::read_to_string(&trace).unwrap();
    assert!(!text.contains("alice") && !text.contains("pw-secret-42"));
    let meta: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(meta["meta"]["server"]["url"], format!("{}/", mock.url()));
}
