//! The debug log reaches a binding's sink on the log thread, and stops
//! when disabled. (Its own test binary: it installs the process's one
//! `tracing` subscriber.)
#![allow(clippy::unwrap_used)]

mod common;

use common::mock;
use std::sync::mpsc;
use std::time::Duration;

use comfywire_host::log::{Level, disable_debug_log, enable_debug_log};
use comfywire_host::{HostClient, Settings, block_on};

#[test]
fn debug_records_reach_the_sink_until_disabled() {
    let (tx, lines) = mpsc::channel::<(Level, String, String)>();
    let tx = std::sync::Mutex::new(tx);
    enable_debug_log(|| {
        Box::new(move |level, line| {
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            let _ = tx.lock().unwrap().send((level, line.to_owned(), thread));
        })
    })
    .unwrap();
    let (_rt, server) = mock(0.0);
    let settings = Settings {
        url: Some(server.url()),
        token: Some("s3cret-token".into()),
        ..Settings::default()
    };
    let host = HostClient::new(&settings).unwrap();
    block_on(host.jobs().wait_connected(Duration::from_secs(5))).unwrap();
    let (level, line, thread) = lines.recv_timeout(Duration::from_secs(5)).unwrap();
    assert!(level <= Level::DEBUG && !line.is_empty());
    assert_eq!(thread, "comfywire-log", "the sink runs on the log thread");
    let mut seen = vec![line];
    while let Ok((_, line, _)) = lines.recv_timeout(Duration::from_millis(200)) {
        seen.push(line);
    }
    assert!(seen.iter().any(|l| l.contains("connect")), "{seen:?}");
    assert!(!seen.iter().any(|l| l.contains("s3cret-token")), "{seen:?}");
    disable_debug_log();
    block_on(host.jobs().queue()).unwrap();
    host.close();
    assert!(
        lines.recv_timeout(Duration::from_millis(300)).is_err(),
        "a record after disable"
    );
}
