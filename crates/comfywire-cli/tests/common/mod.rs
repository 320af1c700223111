//! Shared helpers: a mock server on its own runtime, the binary with an
//! isolated settings file, bounded child processes.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use comfywire_mock::{MockConfig, MockServer, TraceSource};
use serde_json::Value;

/// A mock on a runtime of its own, so the test thread can block on children.
pub struct Mock {
    pub server: MockServer,
    pub rt: tokio::runtime::Runtime,
}

impl Mock {
    pub fn start(speed: f64) -> Mock {
        let config = MockConfig {
            port: 0,
            traces: TraceSource::Embedded,
            speed,
            default_scenario: "success_single".into(),
        };
        let (rt, server) = MockServer::start_on_own_runtime(config, 2).unwrap();
        Mock { server, rt }
    }

    pub fn url(&self) -> String {
        self.server.url()
    }
}

/// A fresh folder under the system temp dir.
pub fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let dir = std::env::temp_dir().join(format!(
        "comfywire-cli-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub fn write_json(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_string_pretty(value).unwrap()).unwrap();
    path
}

/// The binary, with a settings file nobody else uses and none of the
/// caller's `COMFYWIRE_*` variables.
pub fn comfywire(dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_comfywire"));
    cmd.env("COMFYWIRE_CONFIG", dir.join("config.json"))
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for var in comfywire_client::ENV_VARS {
        cmd.env_remove(var);
    }
    cmd
}

pub struct Finished {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub fn drain(mut r: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        let _ = r.read_to_string(&mut s);
        s
    })
}

/// Runs to the end, killing it after `limit`.
pub fn run(mut cmd: Command, limit: Duration) -> Finished {
    let mut child = cmd.spawn().unwrap();
    let out = drain(child.stdout.take().unwrap());
    let err = drain(child.stderr.take().unwrap());
    let code = wait(&mut child, limit);
    Finished {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Waits for the exit code, killing the child after `limit`.
pub fn wait(child: &mut Child, limit: Duration) -> i32 {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().unwrap_or(-1);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("comfywire did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of a child's stream as they come, collected into `seen` as well.
pub struct Lines {
    rx: mpsc::Receiver<String>,
    pub seen: Vec<String>,
}

impl Lines {
    pub fn of(r: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(r).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            rx,
            seen: Vec::new(),
        }
    }

    /// Reads until a line contains `needle`; panics after `limit`.
    pub fn until(&mut self, needle: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line with {needle:?} within {limit:?}; saw {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Everything left, until the stream closes.
    pub fn rest(&mut self, limit: Duration) -> Vec<String> {
        let deadline = Instant::now() + limit;
        while let Ok(line) = self
            .rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            self.seen.push(line);
        }
        self.seen.clone()
    }
}

/// Waits until `condition` holds, checking every 20 ms; panics with
/// `what` after `limit`.
pub fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `kill -INT pid`: what Ctrl-C sends.
pub fn sigint(child: &Child) {
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}
