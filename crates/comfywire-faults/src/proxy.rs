//! A loopback TCP proxy that misbehaves at the byte level: slow links,
//! stalls, and cuts after a given number of bytes (so a WebSocket frame or
//! an HTTP answer is cut in the middle, which the mock's own faults, always
//! whole-frame, cannot do).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How server-to-client bytes are paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pace {
    /// Bytes written per chunk (0 = whole reads).
    pub chunk: usize,
    /// Pause before each chunk.
    pub delay: Duration,
}

impl Pace {
    /// No pacing.
    pub const FAST: Pace = Pace {
        chunk: 0,
        delay: Duration::ZERO,
    };
}

struct Control {
    pace: Mutex<Pace>,
    stall_until: Mutex<Option<Instant>>,
    // (generation, bytes): connections opened before `generation` die
    // after `bytes` more server-to-client bytes.
    cut: watch::Sender<(u64, u64)>,
    // Connections opened before this generation are half-open: they stay
    // open, the server's bytes are read and never delivered.
    deaf: AtomicU64,
    // Until then, new connections are closed at once (the server is down).
    refuse_until: Mutex<Option<Instant>>,
}

/// A running proxy in front of `upstream`.
pub struct FaultProxy {
    addr: SocketAddr,
    control: Arc<Control>,
    accept: JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on `127.0.0.1:0` and forwards to `upstream`.
    pub async fn start(upstream: SocketAddr) -> std::io::Result<FaultProxy> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let (cut, _) = watch::channel((0, 0));
        let control = Arc::new(Control {
            pace: Mutex::new(Pace::FAST),
            stall_until: Mutex::new(None),
            cut,
            deaf: AtomicU64::new(0),
            refuse_until: Mutex::new(None),
        });
        let accept = tokio::spawn(accept_loop(listener, upstream, control.clone()));
        Ok(FaultProxy {
            addr,
            control,
            accept,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Paces server-to-client bytes from now on.
    pub fn set_pace(&self, pace: Pace) {
        *self.control.pace.lock() = pace;
    }

    /// Holds server-to-client bytes for `millis` (connections stay open).
    pub fn stall(&self, millis: u64) {
        *self.control.stall_until.lock() = Some(Instant::now() + Duration::from_millis(millis));
    }

    /// Makes every open connection half-open, as after a network change:
    /// it stays open, the server's writes succeed, and the client gets
    /// nothing more on it. Later connections work.
    pub fn half_open(&self) {
        self.control.deaf.fetch_add(1, Ordering::SeqCst);
    }

    /// An outage of `millis`: open connections are cut and new ones closed
    /// at once, for HTTP and WebSocket alike, while the server behind keeps
    /// its state (its queue goes on), as a machine that drops off the
    /// network and comes back.
    pub fn outage(&self, millis: u64) {
        *self.control.refuse_until.lock() = Some(Instant::now() + Duration::from_millis(millis));
        self.cut_after(0);
    }

    /// Cuts every open connection after `bytes` more server-to-client
    /// bytes (0 = now). Later connections are not affected.
    pub fn cut_after(&self, bytes: u64) {
        self.control.cut.send_modify(|(generation, b)| {
            *generation += 1;
            *b = bytes;
        });
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        // Open connections end with their generation's cut.
        self.cut_after(0);
    }
}

async fn accept_loop(listener: TcpListener, upstream: SocketAddr, control: Arc<Control>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        if control
            .refuse_until
            .lock()
            .is_some_and(|until| Instant::now() < until)
        {
            drop(client);
            continue;
        }
        let control = control.clone();
        tokio::spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let born = control.cut.borrow().0;
            let heard = control.deaf.load(Ordering::SeqCst);
            let (dead_tx, dead_rx) = watch::channel(false);
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            let up = tokio::spawn(pump(
                cr,
                sw,
                None,
                control.cut.subscribe(),
                born,
                dead_tx.clone(),
                dead_rx.clone(),
            ));
            pump(
                sr,
                cw,
                Some((control.clone(), heard)),
                control.cut.subscribe(),
                born,
                dead_tx,
                dead_rx,
            )
            .await;
            let _ = up.await;
        });
    }
}

/// Copies one direction until EOF, error, a cut, or the other direction
/// dying. `control` is set for the server-to-client direction only.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    control: Option<(Arc<Control>, u64)>,
    mut cut: watch::Receiver<(u64, u64)>,
    born: u64,
    dead_tx: watch::Sender<bool>,
    mut dead: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut budget: Option<u64> = None;
    'outer: loop {
        tokio::select! {
            read = from.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                let mut data = &buf[..n];
                let mut last = false;
                if let Some(left) = budget.as_mut() {
                    if (data.len() as u64) >= *left {
                        data = &data[..*left as usize];
                        last = true;
                    } else {
                        *left -= data.len() as u64;
                    }
                }
                if let Some((control, heard)) = &control {
                    if control.deaf.load(Ordering::SeqCst) > *heard {
                        continue; // half-open: read, never delivered
                    }
                    let stall = *control.stall_until.lock();
                    if let Some(until) = stall {
                        tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
                    }
                    let pace = *control.pace.lock();
                    let chunk = if pace.chunk == 0 { data.len().max(1) } else { pace.chunk };
                    for part in data.chunks(chunk) {
                        if !pace.delay.is_zero() {
                            tokio::time::sleep(pace.delay).await;
                        }
                        if to.write_all(part).await.is_err() {
                            break 'outer;
                        }
                    }
                } else if to.write_all(data).await.is_err() {
                    break;
                }
                if last {
                    break;
                }
            }
            changed = cut.changed() => {
                if changed.is_err() {
                    break;
                }
                let (generation, bytes) = *cut.borrow_and_update();
                if generation > born {
                    if bytes == 0 {
                        break;
                    }
                    if control.is_some() {
                        budget = Some(bytes);
                    }
                }
            }
            _ = dead.changed() => break,
        }
    }
    let _ = dead_tx.send(true);
}
