//! `comfywire wait ID`: follow a prompt submitted anywhere to its end, and
//! `comfywire resume`: finish what a killed `run` left in the journal.
//! Both print outcomes as `run` does and exit with its codes.

use std::time::Duration;

use comfywire_client::{Client, Deadlines};

use crate::args::seconds;
use crate::args::{ResumeArgs, WaitArgs};
use crate::connect_config;
use crate::exit::Failure;
use crate::output::{self, NodeNames};
use crate::progress::{Mode, Progress};
use crate::run::{self, Done, Failed};

/// Waits for `prompt_id` (attaching it: it may be another client's) with
/// progress on stderr, then downloads its files into `out`.
async fn follow(
    client: &Client,
    prompt_id: &str,
    timeout: Option<Duration>,
    out: Option<&std::path::Path>,
    json: bool,
) -> Result<Done, Failed> {
    let with_id = |f: Failure| (f, Some(prompt_id.to_owned()));
    let mut events = client.events();
    let names = NodeNames::default();
    let mut progress = Progress::new(Mode::detect(json), names.clone(), prompt_id, None);
    progress.connection_from(&client.status());
    // Deadlines bound the wait only; the prompt is not ours to stop.
    let deadlines = Deadlines {
        total: timeout,
        ..Deadlines::default()
    };
    let wait = client.wait_record(prompt_id, deadlines);
    tokio::pin!(wait);
    let waited = loop {
        tokio::select! {
            record = &mut wait => break record,
            Some(event) = events.recv() => progress.handle(&event),
        }
    };
    while let Some(event) = events.try_recv() {
        progress.handle(&event);
    }
    progress.finish();
    let record = waited.map_err(|e| with_id(Failure::from(e)))?;
    if let Some(failure) = run::outcome_failure(&record, &names) {
        return Err(with_id(failure));
    }
    let files = match out {
        Some(dir) => run::download(client, &record, dir).await.map_err(with_id)?,
        None => Vec::new(),
    };
    Ok(Done {
        record,
        files,
        previews: progress.previews(),
    })
}

/// Prints one outcome (a summary, or the `result` line with `--json`).
fn report(outcome: &Result<Done, Failed>, json: bool, downloaded: bool) {
    if json {
        output::emit(&run::result_json(outcome));
        return;
    }
    match outcome {
        Ok(done) => run::print_summary(done, &NodeNames::default(), downloaded),
        Err((failure, Some(id))) => println!("✘ prompt {} {}", output::short(id), failure.message),
        Err((failure, None)) => println!("✘ {}", failure.message),
    }
}

/// `comfywire wait ID`.
pub async fn wait(args: WaitArgs) -> Result<(), Failure> {
    if args.id.trim().is_empty() {
        return Err(Failure::usage("wait needs a prompt id"));
    }
    let timeout = seconds(args.timeout, "--timeout")?;
    let client =
        connect_config::connect_or_poll(connect_config::client_config(&args.server)?).await?;
    let outcome = follow(&client, &args.id, timeout, args.out.as_deref(), args.json).await;
    client.close().await;
    report(&outcome, args.json, args.out.is_some());
    outcome.map(|_| ()).map_err(|(failure, _)| failure)
}

/// `comfywire resume`: every unfinished prompt of the journal, in
/// submission order; the exit code is the first failure's (0 when all
/// succeeded or there was nothing to resume).
pub async fn resume(args: ResumeArgs) -> Result<(), Failure> {
    let timeout = seconds(args.timeout, "--timeout")?;
    let config = connect_config::journaled_config(&args.server, args.journal.clone(), false)?;
    let Some(path) = config.journal.clone() else {
        return Err(Failure::usage(
            "the settings turn the journal off (`journal` is \"\"); name one with --journal",
        ));
    };
    let client = connect_config::connect_journaled(config, true).await?;
    let resumed = client.resumed();
    if resumed.is_empty() {
        eprintln!("nothing to resume in {}", path.display());
    }
    let mut first_failure: Option<Failure> = None;
    for prompt_id in &resumed {
        let outcome = follow(&client, prompt_id, timeout, None, args.json).await;
        report(&outcome, args.json, false);
        if let Err((failure, _)) = outcome {
            first_failure.get_or_insert(failure);
        }
    }
    client.close().await;
    match first_failure {
        None => Ok(()),
        Some(failure) if resumed.len() == 1 => Err(failure),
        Some(failure) => Err(Failure::new(
            failure.code,
            format!(
                "not every resumed prompt succeeded (first: {})",
                failure.message
            ),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_must_be_a_number_of_seconds() {
        assert!(seconds(Some(-1.0), "--timeout").is_err());
        assert_eq!(
            seconds(Some(1.5), "--timeout").ok().flatten(),
            Some(Duration::from_millis(1500))
        );
    }
}
