//! Against the mock's hostile mode: every HTTP body and WebSocket message
//! is read under a bound, subscribers that never read stay bounded, bad
//! settings are refused before they reach the driver, a server pouring
//! frames faster than they are read cannot keep the client from closing,
//! and the client keeps working afterwards. Only generous bounds are asserted (the benchmark
//! `benches/hostile.rs` measures).
#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use comfywire_client::proto::ConnectionState;
use comfywire_client::{
    Client, ClientConfig, DEFAULT_MAX_MESSAGE_SIZE, End, Error, Event, EventKind, Settings,
};
use comfywire_mock::{Flood, HostileBody, HostileHttp, MockServer};

const GIB: u64 = 1 << 30;

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        / 1024
}

fn too_large(error: &Error) -> (u64, &'static str) {
    match error {
        Error::TooLarge { limit, setting, .. } => (*limit, setting),
        other => panic!("not a TooLarge error: {other:?}"),
    }
}

/// Sends a flood; the client may see its socket open a moment before the
/// mock has registered it, so an unknown client is retried a while.
async fn flood(server: &MockServer, client: &Client, flood: Flood) -> u64 {
    for _ in 0..250 {
        let sent = server
            .flood(&client.client_id(), flood.clone())
            .await
            .unwrap();
        if sent > 0 {
            return sent;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the mock never knew the client's socket")
}

/// Runs one prompt to its end: the client still works.
async fn still_works(server: &MockServer, client: &Client) {
    let result = tokio::time::timeout(
        Duration::from_secs(30),
        client.run(&server.sample_workflow()),
    )
    .await
    .expect("the run ends")
    .expect("the run succeeds");
    assert_eq!(result.record.phase.name(), "succeeded");
}

#[tokio::test]
async fn http_answers_past_their_limit_end_in_a_typed_error_naming_it() {
    let server = common::mock(0.0).await;
    let client = common::client(&server).await;
    let limits = client.config().body_limits;
    // Several GiB, chunked, as fast as the client reads: abandoned at the
    // limit.
    server.set_hostile_http(HostileHttp {
        history: Some(HostileBody::fast(3 * GIB)),
        queue: Some(HostileBody::endless()),
        system_stats: Some(HostileBody::fast(limits.json + 1)),
        ..HostileHttp::default()
    });
    let e = client.server_history("abc").await.unwrap_err();
    assert_eq!(too_large(&e), (limits.history, "max_history_mib"));
    assert_eq!(e.code(), 6);
    assert!(e.to_string().contains("max_history_mib"), "{e}");
    let e = client.server_history_list(10).await.unwrap_err();
    assert_eq!(too_large(&e), (limits.history, "max_history_mib"));
    // A `/queue` that never ends.
    let e = client.queue().await.unwrap_err();
    assert_eq!(too_large(&e), (limits.queue, "max_queue_mib"));
    let e = client.system_stats().await.unwrap_err();
    assert_eq!(too_large(&e), (limits.json, "max_json_mib"));
    // Declared by `Content-Length`: refused before reading.
    server.set_hostile_http(HostileHttp {
        history: Some(HostileBody::fast(3 * GIB).declared()),
        ..HostileHttp::default()
    });
    let e = client.server_history("abc").await.unwrap_err();
    assert_eq!(too_large(&e), (limits.history, "max_history_mib"));
    server.set_hostile_http(HostileHttp::default());
    still_works(&server, &client).await;
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_slow_endless_body_ends_at_the_request_timeout() {
    let server = common::mock(0.0).await;
    let mut config = common::config(&server.url());
    config.request_timeout = Duration::from_secs(1);
    let client = Client::connect(config).await.unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    server.set_hostile_http(HostileHttp {
        history: Some(HostileBody::slow(3 * GIB, 256 << 10)),
        ..HostileHttp::default()
    });
    let e = client.server_history("abc").await.unwrap_err();
    assert!(matches!(e, Error::Request(_)), "{e:?}");
    server.set_hostile_http(HostileHttp::default());
    still_works(&server, &client).await;
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn reconciliation_against_a_huge_history_fails_typed_and_is_retried() {
    let server = common::mock(5.0).await;
    let client = common::client(&server).await;
    let mut events = client.on(&[EventKind::HttpFailed]);
    server.set_hostile_http(HostileHttp {
        history: Some(HostileBody::fast(3 * GIB)),
        ..HostileHttp::default()
    });
    // A prompt whose stream has a gap is settled from `/history`.
    server.inject(comfywire_mock::Fault::DropSocketsAfterFrames { frames: 30 });
    let submitted = client
        .submit(&server.workflow("long_run").unwrap())
        .await
        .unwrap();
    let failed = tokio::time::timeout(Duration::from_secs(30), events.recv())
        .await
        .expect("a reconciliation request fails")
        .unwrap();
    match failed {
        Event::HttpFailed { error, .. } => {
            assert!(error.contains("max_history_mib"), "{error}")
        }
        other => panic!("{other:?}"),
    }
    server.set_hostile_http(HostileHttp::default());
    let record = client
        .wait(&submitted.prompt_id, Default::default())
        .await
        .unwrap();
    assert_eq!(record.record.phase.name(), "succeeded");
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn view_downloads_stream_to_disk_and_stop_at_their_limit() {
    let server = common::mock(0.0).await;
    let mut config = common::config(&server.url());
    config.body_limits.view = 4 << 20;
    config.body_limits.download = 8 << 20;
    let client = Client::connect(config).await.unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let result = client.run(&server.sample_workflow()).await.unwrap();
    let file = result.files().into_iter().next().unwrap();
    let dir = std::env::temp_dir().join(format!("comfywire-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dest = dir.join("out.png");
    let written = client.download(&file, &dest).await.unwrap();
    let in_memory = client.view(&file).await.unwrap();
    assert_eq!(std::fs::read(&dest).unwrap(), in_memory);
    assert_eq!(written, in_memory.len() as u64);
    for body in [HostileBody::fast(GIB), HostileBody::endless()] {
        server.set_hostile_http(HostileHttp {
            view: Some(body),
            ..HostileHttp::default()
        });
        let e = client.view(&file).await.unwrap_err();
        assert_eq!(too_large(&e), (4 << 20, "max_view_mib"));
        let big = dir.join("big.png");
        let e = client.download(&file, &big).await.unwrap_err();
        assert_eq!(too_large(&e), (8 << 20, "max_download_mib"));
        assert!(!big.exists(), "no partial download is left");
        assert!(!dir.join("big.png.part").exists());
    }
    server.set_hostile_http(HostileHttp::default());
    std::fs::remove_dir_all(&dir).unwrap();
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn the_default_message_limit_takes_a_preview_at_it_and_refuses_one_byte_more() {
    let server = common::mock(0.0).await;
    let config = common::config(&server.url());
    assert_eq!(config.max_message_size, DEFAULT_MAX_MESSAGE_SIZE);
    assert_eq!(DEFAULT_MAX_MESSAGE_SIZE, 16 << 20);
    let client = Client::connect(config).await.unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let mut events = client.on(&[EventKind::Preview, EventKind::BadFrame]);
    let at_limit = Flood::Previews {
        count: 1,
        frame_bytes: DEFAULT_MAX_MESSAGE_SIZE,
    };
    assert_eq!(
        server.flood(&client.client_id(), at_limit).await.unwrap(),
        1
    );
    match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
        Ok(Some(Event::Preview(p))) => assert_eq!(p.image.len(), DEFAULT_MAX_MESSAGE_SIZE - 8),
        other => panic!("no preview at the limit: {other:?}"),
    }
    let over = Flood::Previews {
        count: 1,
        frame_bytes: DEFAULT_MAX_MESSAGE_SIZE + 1,
    };
    flood(&server, &client, over).await;
    match tokio::time::timeout(Duration::from_secs(20), events.recv()).await {
        Ok(Some(Event::BadFrame { error, .. })) => {
            assert!(error.to_string().contains("exceeds the limit"), "{error}")
        }
        other => panic!("no oversize report: {other:?}"),
    }
    // The socket was replaced; the largest real `executed` (a 1,030,550
    // byte frame, 0.8 MB once its `\u` escapes are read) passes as is.
    client
        .wait_connected(Duration::from_secs(10))
        .await
        .unwrap();
    let reconnects = client.stats().reconnects;
    let result = client
        .run(&server.workflow("big_output").unwrap())
        .await
        .unwrap();
    let outputs = serde_json::to_string(result.outputs()).unwrap();
    assert!(outputs.len() > 800_000, "{}", outputs.len());
    assert!(!result.record.had_gap);
    assert_eq!(client.stats().reconnects, reconnects);
    client.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn floods_of_prompt_ids_unknown_types_and_bad_frames_stay_bounded() {
    let server = common::mock(0.0).await;
    let mut config = common::config(&server.url());
    config.subscriber_max_bytes = 1 << 20;
    let client = Client::connect(config).await.unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    let before = rss_mib();
    // Never read: one for everything (the host's pull subscription before
    // anyone pulls), one for the connection-wide kinds only.
    let everything = client.events();
    let noise = client.on(&[
        EventKind::Connection,
        EventKind::Status,
        EventKind::Message,
        EventKind::BadFrame,
        EventKind::HttpFailed,
    ]);
    // Read: it sees events go on.
    let mut reader = client.events();
    let counting = tokio::spawn(async move {
        let mut n = 0u64;
        while reader.recv().await.is_some() {
            n += 1;
        }
        n
    });
    let base = client.stats().frames;
    let mut sent = 0;
    for each in [
        Flood::DistinctPrompts { count: 50_000 },
        Flood::UnknownTypes { count: 50_000 },
        Flood::BadFrames { count: 20_000 },
    ] {
        sent += flood(&server, &client, each).await;
    }
    assert_eq!(sent, 220_000);
    for _ in 0..3000 {
        if client.stats().frames - base >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(client.stats().frames - base >= sent);
    // Lifecycle events of 50,000 foreign prompts are far over 1 MiB: the
    // subscription that never reads ended, visibly, instead of growing.
    assert!(
        matches!(everything.end(), Some(End::Overflow { limit, .. }) if limit == 1 << 20),
        "{:?}",
        everything.end()
    );
    assert!(everything.pending_bytes() <= 2 << 20);
    // Connection-wide events were bounded and counted.
    assert!(noise.end().is_none());
    assert!(noise.pending() <= 16 + 4 + 3 * 64, "{}", noise.pending());
    assert_eq!(noise.dropped(EventKind::Message), 50_000 - 64);
    assert_eq!(noise.dropped(EventKind::BadFrame), 20_000 - 64);
    still_works(&server, &client).await;
    // Generous: the floods are 220,000 frames with an unread subscriber.
    let grown = rss_mib().saturating_sub(before);
    assert!(grown < 512, "RSS grew by {grown} MiB");
    client.close().await;
    assert!(counting.await.unwrap() > 0);
    server.shutdown().await;
}

#[tokio::test]
async fn settings_that_would_overflow_time_are_refused_before_the_driver() {
    for (key, value) in [
        ("ping_interval_s", "1e19"),
        ("backoff_max_s", "1e19"),
        ("timeout_s", "1e19"),
        ("deaf_timeout_s", "1e12"),
        ("progress_interval_ms", "18446744073709551615"),
        ("backoff_jitter", "2"),
        ("disconnected_poll_s", "1e19"),
        ("disconnected_poll_s", "0"),
        ("disconnected_poll_max_s", "0.5"),
    ] {
        let mut settings = Settings::default();
        settings.set(key, value).unwrap();
        let e = settings.to_config().unwrap_err();
        assert!(matches!(e, Error::Config(_)), "{key}: {e:?}");
    }
    // Built by hand, it is refused by `start`, before any task runs.
    let mut config = ClientConfig::new("http://127.0.0.1:9");
    config.session.preview_interval = Duration::MAX;
    let e = Client::connect(config).await.unwrap_err();
    assert!(e.to_string().contains("preview_interval"), "{e}");
    let mut config = ClientConfig::new("http://127.0.0.1:9");
    config.session.ping_interval = Duration::ZERO;
    assert!(matches!(
        Client::connect(config).await,
        Err(Error::Config(_))
    ));
    // The limits are settings too.
    let mut settings = Settings::default();
    settings.set("max_history_mib", "1").unwrap();
    settings.set("max_view_mib", "2").unwrap();
    let config = settings.to_config().unwrap();
    assert_eq!(config.body_limits.history, 1 << 20);
    assert_eq!(config.body_limits.view, 2 << 20);
    assert_eq!(
        config.body_limits.queue,
        ClientConfig::new("x").body_limits.queue
    );
    let mut settings = Settings::default();
    settings.set("max_queue_mib", "0").unwrap();
    assert!(settings.to_config().is_err());
}

/// A listener that performs the upgrade of one socket by hand and hands
/// the stream over, for servers that then write what no WebSocket library
/// would.
async fn upgrade_one() -> (String, tokio::task::JoinHandle<tokio::net::TcpStream>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio_tungstenite::tungstenite::handshake;
    use tokio_tungstenite::tungstenite::handshake::machine::TryParse;
    use tokio_tungstenite::tungstenite::handshake::server::Request;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let upgraded = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let mut byte = [0];
            stream.read_exact(&mut byte).await.unwrap();
            head.push(byte[0]);
        }
        let (_, request) = Request::try_parse(&head).unwrap().unwrap();
        let key = &request.headers()["sec-websocket-key"];
        let accept = handshake::derive_accept_key(key.as_bytes());
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        stream.write_all(answer.as_bytes()).await.unwrap();
        stream
    });
    (url, upgraded)
}

/// After the upgrade, writes `first`, then `repeated` in writes of about
/// 1 MiB as fast as the kernel takes them, never reading: at most `chunks`
/// writes, or until the client goes. Answers the writes made.
async fn pour(
    chunks: usize,
    first: &'static [u8],
    repeated: &'static [u8],
) -> (String, tokio::task::JoinHandle<usize>) {
    use tokio::io::AsyncWriteExt;
    let (url, upgraded) = upgrade_one().await;
    let server = tokio::spawn(async move {
        let mut stream = upgraded.await.unwrap();
        stream.write_all(first).await.unwrap();
        let chunk = repeated.repeat((1 << 20) / repeated.len());
        for written in 0..chunks {
            if stream.write_all(&chunk).await.is_err() {
                return written;
            }
        }
        chunks
    });
    (url, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_pouring_endless_fragments_cannot_keep_the_client_from_closing() {
    // A text frame that does not end its message, then continuations
    // that do not either, each two bytes.
    let (url, server) = pour(16 << 10, &[0x01, 0x00], &[0x00, 0x00]).await;
    let client = Client::connect(ClientConfig::new(&url)).await.unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    // Let the pour get going: the driver is decoding fragments now.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Before reads and fragments counted toward the driver's batch, only
    // tokio's cooperative budget got it back to its controls: about 5 s
    // here in a debug build.
    tokio::time::timeout(Duration::from_secs(2), client.close())
        .await
        .expect("close() returns while the server pours");
    let written = tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the server sees the client go")
        .unwrap();
    // It was still pouring when the client went (16 GiB was the bound).
    assert!(written < 16 << 10, "wrote {written} MiB");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_pings_and_never_reads_costs_the_socket_not_the_client() {
    // Pings of 125 bytes, the most a control frame carries.
    const PING: &[u8] = &{
        let mut ping = [b'p'; 127];
        ping[0] = 0x89;
        ping[1] = 125;
        ping
    };
    let (url, server) = pour(64 << 10, &[], PING).await;
    let mut config = ClientConfig::new(&url);
    // No heartbeat within the test: only the send timeout may end the
    // socket (a driver held in a write would not run its timers anyway).
    config.session.ping_interval = Duration::from_secs(3600);
    let client = Client::connect(config).await.unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    // The client's pongs fill the kernel's buffers; a pong that waits
    // longer than the send timeout fails the socket instead of holding the
    // driver.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while client.status().state == ConnectionState::Connected {
        assert!(std::time::Instant::now() < deadline, "the socket was kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::timeout(Duration::from_secs(2), client.close())
        .await
        .expect("close() returns");
    let written = server.await.unwrap();
    assert!(written < 64 << 10, "wrote {written} MiB");
}
