//! `comfywire batch`: many prompts over a pool of servers (`--url` once per
//! server, or the settings' `servers`), one live line per server, every
//! outcome, the outputs. `run` with a pool is a batch of one.

use std::collections::HashMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use comfywire_client::Event;
use comfywire_client::proto::Phase;
use comfywire_pool::{Pool, PoolError, PoolEvent, PoolOutcome};
use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::args::{BatchArgs, RunArgs, seconds};
use crate::connect_config;
use crate::exit::{self, Failure};
use crate::output::{self, NodeNames};
use crate::run;

/// `comfywire batch`.
pub async fn command(args: BatchArgs) -> Result<(), Failure> {
    if args.repeat == 0 {
        return Err(Failure::usage("--repeat 0: nothing to run"));
    }
    let mut workflows = Vec::new();
    for path in &args.workflows {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        let mut workflow = run::parse_workflow(&text)
            .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?;
        for assignment in &args.set {
            run::apply_set(&mut workflow, assignment).map_err(Failure::usage)?;
        }
        workflows.push((path.clone(), workflow));
    }
    let timeout = seconds(args.timeout, "--timeout")?;
    seconds(args.grace, "--grace")?;
    let config = connect_config::pool_config(&args.servers, args.grace)?;
    let pool = Pool::start(config).map_err(|e| Failure::usage(e.to_string()))?;
    let servers = pool.stats().len();
    if pool.wait_healthy(1, Duration::from_secs(10)).await == 0 {
        pool.close().await;
        return Err(Failure::new(
            exit::CONNECTION,
            format!("none of the {servers} server(s) could be reached"),
        ));
    }
    // Servers still connecting get a moment, so the first prompts spread.
    pool.wait_healthy(servers, Duration::from_secs(2)).await;
    let names = NodeNames::from_workflow(&workflows[0].1);
    let display = tokio::spawn(show(pool.clone(), pool.events(), args.json, names.clone()));
    let result = submit_and_wait(&pool, &workflows, args.repeat, timeout).await;
    display.abort();
    let outcome = match result {
        Ok(outcomes) => report(&pool, &outcomes, &args, &names).await,
        Err(failure) => Err(failure),
    };
    pool.close().await;
    outcome
}

/// `comfywire run` over a pool: a batch of one prompt. A queue or stall
/// deadline and a journal belong to one server's client, so they are
/// refused rather than ignored.
pub async fn run_on_pool(args: RunArgs) -> Result<(), Failure> {
    let refused = [
        (args.queue_timeout.is_some(), "--queue-timeout"),
        (args.stall_timeout.is_some(), "--stall-timeout"),
        (args.journal.is_some(), "--journal"),
    ];
    if let Some((_, flag)) = refused.iter().find(|(given, _)| *given) {
        return Err(Failure::usage(format!(
            "{flag} applies to one server; a run over a pool takes --timeout"
        )));
    }
    command(BatchArgs {
        workflows: vec![args.workflow],
        repeat: 1,
        set: args.set,
        servers: args.servers,
        out: args.out,
        timeout: args.timeout,
        grace: args.grace,
        json: args.json,
    })
    .await
}

async fn submit_and_wait(
    pool: &Pool,
    workflows: &[(PathBuf, Value)],
    repeat: u32,
    timeout: Option<Duration>,
) -> Result<Vec<(PathBuf, Arc<PoolOutcome>)>, Failure> {
    let mut ids = Vec::new();
    for _ in 0..repeat {
        for (path, workflow) in workflows {
            let id = pool
                .submit(workflow)
                .await
                .map_err(|e| pool_failure(path, e))?;
            ids.push((path.clone(), id));
        }
    }
    let mut outcomes = Vec::with_capacity(ids.len());
    for (path, id) in ids {
        let outcome = pool
            .wait(&id, timeout)
            .await
            .map_err(|e| pool_failure(&path, e))?;
        outcomes.push((path, outcome));
    }
    Ok(outcomes)
}

fn pool_failure(path: &std::path::Path, error: PoolError) -> Failure {
    let code = match &error {
        PoolError::Client { error, .. } => u8::try_from(error.code()).unwrap_or(exit::FAILURE),
        PoolError::NoServer(_) => exit::CONNECTION,
        PoolError::Timeout(_) => exit::DEADLINE,
        PoolError::MissingNodeClasses { .. } => exit::VALIDATION,
        _ => exit::FAILURE,
    };
    Failure::new(code, format!("{}: {error}", path.display()))
}

/// Downloads the outputs, prints every outcome and the per-server tally,
/// and fails when any prompt did not succeed.
async fn report(
    pool: &Pool,
    outcomes: &[(PathBuf, Arc<PoolOutcome>)],
    args: &BatchArgs,
    names: &NodeNames,
) -> Result<(), Failure> {
    let mut first_failure: Option<Failure> = None;
    for (path, outcome) in outcomes {
        let mut files = Vec::new();
        if let (Some(dir), Some(record), true) = (&args.out, &outcome.record, outcome.succeeded()) {
            if let Some(client) = pool.client(&outcome.server) {
                files = run::download(client, record, dir).await?;
            }
        }
        let failure = match &outcome.record {
            Some(record) => run::outcome_failure(record, names),
            None => Some(Failure::new(
                exit::LOST,
                format!(
                    "lost: {}",
                    outcome.lost_reason.as_deref().unwrap_or("no reason given")
                ),
            )),
        };
        if args.json {
            output::emit(&json!({
                "event": "outcome",
                "workflow": path.display().to_string(),
                "prompt_id": outcome.prompt_id,
                "server": outcome.server,
                "status": outcome.status.name(),
                "servers": outcome.servers,
                "moves": outcome.moves.iter().map(|m| json!({"from": m.from, "to": m.to, "reason": m.reason})).collect::<Vec<_>>(),
                "lost_reason": outcome.lost_reason,
                "files": files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>(),
            }));
        } else {
            let moved = outcome
                .moves
                .iter()
                .map(|m| format!(" (moved from {}: {})", m.from, m.reason))
                .collect::<String>();
            let why = failure
                .as_ref()
                .map(|f| format!(": {}", f.message))
                .unwrap_or_default();
            crate::outln!(
                "{} {} on {}: {}{why}{moved}",
                output::short(&outcome.prompt_id),
                path.display(),
                outcome.server,
                outcome.status.name()
            );
            for file in &files {
                crate::outln!("  -> {}", file.display());
            }
        }
        if first_failure.is_none() {
            first_failure = failure;
        }
    }
    let failed = outcomes
        .iter()
        .filter(|(_, o)| o.status != Phase::Succeeded)
        .count();
    if !args.json {
        for s in pool.stats() {
            crate::outln!(
                "server {}: {} done, {} moved away{}",
                s.label,
                s.done,
                s.failed_over,
                if s.healthy { "" } else { " (unreachable)" }
            );
        }
        crate::outln!(
            "{} of {} succeeded",
            outcomes.len() - failed,
            outcomes.len()
        );
    }
    match first_failure {
        Some(f) if failed > 0 => Err(Failure::new(
            f.code,
            format!(
                "{failed} of {} prompt(s) did not succeed (first: {})",
                outcomes.len(),
                f.message
            ),
        )),
        _ => Ok(()),
    }
}

/// What each server is doing, for the live lines.
#[derive(Default, Clone)]
struct Line {
    running: Option<(String, f64)>,
    done: u64,
    moved_away: u64,
}

/// The live view: `--json` prints every pool event as a JSON line; a
/// terminal gets one line per server, redrawn; otherwise one line per
/// finished or moved prompt.
async fn show(
    pool: Pool,
    mut events: broadcast::Receiver<PoolEvent>,
    json: bool,
    names: NodeNames,
) {
    let tty = !json && std::io::stderr().is_terminal();
    let labels: Vec<String> = pool.stats().into_iter().map(|s| s.label).collect();
    let mut lines: HashMap<String, Line> = HashMap::new();
    let mut drawn = 0;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    loop {
        tokio::select! {
            event = events.recv() => {
                let event = match event {
                    Ok(event) => event,
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if json {
                    emit_json(&event, &names);
                    continue;
                }
                match &event {
                    PoolEvent::Server { server, event: Event::Progress(p) } => {
                        lines.entry(server.clone()).or_default().running =
                            Some((p.prompt_id.to_string(), p.overall));
                    }
                    PoolEvent::Finished(o) => {
                        let line = lines.entry(o.server.clone()).or_default();
                        line.done += 1;
                        line.running = None;
                        if !tty {
                            eprintln!("{} on {}: {}", output::short(&o.prompt_id), o.server, o.status.name());
                        }
                    }
                    PoolEvent::Moved { prompt_id, moved } => {
                        lines.entry(moved.from.clone()).or_default().moved_away += 1;
                        if !tty {
                            eprintln!("{} moved {} -> {}: {}", output::short(prompt_id), moved.from, moved.to, moved.reason);
                        }
                    }
                    _ => {}
                }
            }
            _ = tick.tick(), if tty => {
                drawn = redraw(&pool, &labels, &lines, drawn);
            }
        }
    }
}

fn redraw(pool: &Pool, labels: &[String], lines: &HashMap<String, Line>, drawn: usize) -> usize {
    let stats = pool.stats();
    let mut out = std::io::stderr().lock();
    if drawn > 0 {
        let _ = write!(out, "\x1b[{drawn}A");
    }
    for (label, s) in labels.iter().zip(&stats) {
        let line = lines.get(label).cloned().unwrap_or_default();
        let running = match &line.running {
            Some((id, overall)) => format!("{} {:>3.0}%", output::short(id), overall * 100.0),
            None => "idle".to_owned(),
        };
        let health = if s.healthy { "" } else { "  unreachable" };
        let _ = writeln!(
            out,
            "\x1b[2K{label:<22} {running:<14} queue {:<3} done {:<4} moved away {}{health}",
            s.in_flight, line.done, line.moved_away
        );
    }
    let _ = out.flush();
    labels.len()
}

/// One pool event as a JSON line (`batch --json`, `watch --json` over
/// several servers): a server's event carries `server`.
pub fn emit_json(event: &PoolEvent, names: &NodeNames) {
    let value = match event {
        PoolEvent::Server { server, event } => {
            let mut value = output::event_json(event, names, None);
            if let Some(m) = value.as_object_mut() {
                m.insert("server".into(), json!(server));
            }
            value
        }
        PoolEvent::Moved { prompt_id, moved } => json!({
            "event": "moved", "prompt_id": prompt_id,
            "from": moved.from, "to": moved.to, "reason": moved.reason,
        }),
        PoolEvent::Finished(o) => json!({
            "event": "finished", "prompt_id": o.prompt_id, "server": o.server,
            "status": o.status.name(), "lost_reason": o.lost_reason,
        }),
    };
    output::emit(&value);
}
