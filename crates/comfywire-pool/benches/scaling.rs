//! How a pool's wall time scales with its servers: 300 short prompts over
//! 1, 2 and 3 mocks that take the same fixed time per prompt (the recorded
//! `success_single` session at 100x: about 15 ms of timed frames), 3
//! interleaved rounds, medians printed. The mocks run in this process and
//! spend their time waiting on timers, not CPU, so they are not the limit.
//!
//! `cargo bench -p comfywire-pool --bench scaling`

use std::time::{Duration, Instant};

use comfywire_mock::{MockConfig, MockServer, TraceSource};
use comfywire_pool::{Pool, PoolConfig, ServerSpec};

const PROMPTS: usize = 300;
const ROUNDS: usize = 3;
const SPEED: f64 = 100.0;

async fn round(servers: usize) -> Duration {
    let mut mocks = Vec::new();
    for _ in 0..servers {
        let config = MockConfig {
            port: 0,
            traces: TraceSource::Embedded,
            speed: SPEED,
            default_scenario: "success_single".into(),
        };
        mocks.push(
            MockServer::start_with(config)
                .await
                .unwrap_or_else(|e| panic!("mock: {e}")),
        );
    }
    let specs = mocks.iter().map(|m| ServerSpec::new(m.url())).collect();
    let pool = Pool::start(PoolConfig::new(specs)).unwrap_or_else(|e| panic!("pool: {e}"));
    assert_eq!(
        pool.wait_healthy(servers, Duration::from_secs(10)).await,
        servers
    );
    let workflow = mocks[0].sample_workflow();
    let started = Instant::now();
    let mut ids = Vec::with_capacity(PROMPTS);
    for _ in 0..PROMPTS {
        ids.push(
            pool.submit(&workflow)
                .await
                .unwrap_or_else(|e| panic!("submit: {e}")),
        );
    }
    for id in &ids {
        let outcome = pool
            .wait(id, Some(Duration::from_secs(600)))
            .await
            .unwrap_or_else(|e| panic!("wait: {e}"));
        assert!(outcome.succeeded(), "{outcome:?}");
    }
    let took = started.elapsed();
    pool.close().await;
    for m in mocks {
        m.shutdown().await;
    }
    took
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut times: [Vec<Duration>; 3] = Default::default();
    for r in 0..ROUNDS {
        for servers in 1..=3 {
            let took = rt.block_on(round(servers));
            println!(
                "round {} servers {servers}: {:.2} s",
                r + 1,
                took.as_secs_f64()
            );
            times[servers - 1].push(took);
        }
    }
    let medians: Vec<Duration> = times.into_iter().map(median).collect();
    println!("| servers | median wall time, {PROMPTS} prompts | speed-up vs 1 |");
    println!("|---:|---:|---:|");
    for (i, m) in medians.iter().enumerate() {
        println!(
            "| {} | {:.2} s | {:.2}x |",
            i + 1,
            m.as_secs_f64(),
            medians[0].as_secs_f64() / m.as_secs_f64()
        );
    }
}
