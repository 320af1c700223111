//! The journal across a real crash: a child process (this test binary,
//! run again as `journal_child`) submits prompts with a journal and is
//! killed with SIGKILL while they wait in the mock's queue; a new client
//! with the same journal reuses the client id, resumes every unfinished
//! prompt and gets exactly one terminal event for each, equal to the
//! mock's `/history`, without submitting anything again.
#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use comfywire_client::{Client, Deadlines, Error, Event, Outcome, new_uuid};
use comfywire_mock::Fault;
use serde_json::Value;

const URL_VAR: &str = "COMFYWIRE_JOURNAL_CHILD_URL";
const PATH_VAR: &str = "COMFYWIRE_JOURNAL_CHILD_PATH";
const PROMPTS: usize = 3;

fn temp_journal() -> PathBuf {
    std::env::temp_dir()
        .join(format!("comfywire-journal-test-{}", new_uuid()))
        .join("journal.jsonl")
}

/// The child: does nothing unless the parent set its variables. Submits
/// `PROMPTS` prompts with the journal, prints `child: id …` and
/// `child: submitted …` lines, then waits to be killed (at most a minute).
#[test]
fn journal_child() {
    let (Ok(url), Ok(path)) = (std::env::var(URL_VAR), std::env::var(PATH_VAR)) else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = Client::connect(common::config(&url).journal(path))
            .await
            .unwrap();
        client.wait_connected(Duration::from_secs(5)).await.unwrap();
        println!("child: id {}", client.client_id());
        let workflow: Value =
            serde_json::from_str(&std::env::var("COMFYWIRE_JOURNAL_CHILD_WORKFLOW").unwrap())
                .unwrap();
        for _ in 0..PROMPTS {
            let s = client.submit(&workflow).await.unwrap();
            println!("child: submitted {}", s.prompt_id);
        }
        println!("child: ready");
        tokio::time::sleep(Duration::from_secs(60)).await;
    });
}

/// Runs the child until it says `ready`, then kills it; returns its client
/// id and its prompt ids.
fn run_and_kill_child(url: &str, journal: &Path, workflow: &Value) -> (String, Vec<String>) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "journal_child",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(URL_VAR, url)
        .env(PATH_VAR, journal)
        .env("COMFYWIRE_JOURNAL_CHILD_WORKFLOW", workflow.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut client_id = String::new();
    let mut prompts = Vec::new();
    // Every line comes within the child's own timeouts; EOF means it died.
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // libtest may print `test journal_child ... ` first on the line.
        let Some(at) = line.find("child: ") else {
            continue;
        };
        let line = &line[at..];
        if let Some(id) = line.strip_prefix("child: id ") {
            client_id = id.to_owned();
        } else if let Some(id) = line.strip_prefix("child: submitted ") {
            prompts.push(id.to_owned());
        } else if line == "child: ready" {
            break;
        }
    }
    // SIGKILL: no destructor, no close, no flush of anything.
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(
        prompts.len(),
        PROMPTS,
        "the child did not submit everything"
    );
    (client_id, prompts)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_killed_mid_run_gets_every_terminal_event_after_a_restart() {
    // At recorded speed a prompt takes about 2 s, and they run one after
    // the other: the kill comes while they wait or run.
    let server = common::mock(1.0).await;
    let journal = temp_journal();
    let workflow = server.sample_workflow();
    let (child_id, prompts) = run_and_kill_child(&server.url(), &journal, &workflow);

    let restarted = Client::connect(common::config(&server.url()).journal(&journal))
        .await
        .unwrap();
    let mut events = restarted.events();
    assert_eq!(restarted.client_id(), child_id, "the journal's client id");
    let resumed = restarted.resumed();
    assert!(!resumed.is_empty(), "killed with nothing in flight");
    // In order; any prompt not resumed had ended (and was marked) before.
    assert!(prompts.ends_with(&resumed), "{resumed:?} of {prompts:?}");
    for id in prompts.iter().filter(|p| !resumed.contains(p)) {
        assert!(
            restarted.server_history(id).await.unwrap().is_some(),
            "{id}"
        );
    }
    // A second client cannot take the same journal.
    match Client::connect(common::config(&server.url()).journal(&journal)).await {
        Err(Error::Config(m)) => assert!(m.contains("in use"), "{m}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
    let deadlines = Deadlines {
        total: Some(Duration::from_secs(30)),
        ..Deadlines::default()
    };
    for id in &resumed {
        let record = restarted.wait_record(id, deadlines).await.unwrap();
        assert_eq!(record.outcome, Some(Outcome::Succeeded), "{id}");
        let entry = common::server_history(&restarted, id).await;
        assert_eq!(record.outputs.to_value(), entry["outputs"], "{id}");
    }
    let mut finished = 0;
    let seen = common::collect_until(&mut events, |e| {
        finished += usize::from(e.is_terminal());
        finished == resumed.len()
    })
    .await;
    common::assert_exactly_one_terminal(&seen);
    let ended: Vec<String> = seen
        .iter()
        .filter_map(|e| match e {
            Event::Finished(r) => Some(r.prompt_id.clone()),
            _ => None,
        })
        .collect();
    let mut expected = resumed.clone();
    expected.sort();
    let mut ended_sorted = ended;
    ended_sorted.sort();
    assert_eq!(ended_sorted, expected);
    assert_eq!(
        server.stats().prompts_submitted,
        PROMPTS as u64,
        "nothing submitted twice"
    );
    restarted.close().await;

    // Every prompt is done: the next start resumes nothing, and the file
    // holds only its header.
    let again = Client::connect(common::config(&server.url()).journal(&journal))
        .await
        .unwrap();
    assert!(again.resumed().is_empty());
    assert_eq!(again.client_id(), child_id);
    again.close().await;
    let text = std::fs::read_to_string(&journal).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_records_a_refused_prompt_as_done_and_a_bad_journal_is_a_typed_error() {
    let server = common::mock(0.0).await;
    let journal = temp_journal();
    let client = Client::connect(common::config(&server.url()).journal(&journal))
        .await
        .unwrap();
    client.wait_connected(Duration::from_secs(5)).await.unwrap();
    server.inject(Fault::ValidationErrorNextPrompt);
    let refused = client.submit(&server.sample_workflow()).await;
    assert!(
        matches!(refused, Err(Error::Validation(_))),
        "refused: {refused:?}"
    );
    let done = client.submit(&server.sample_workflow()).await.unwrap();
    client
        .wait(
            &done.prompt_id,
            Deadlines {
                total: Some(Duration::from_secs(30)),
                ..Deadlines::default()
            },
        )
        .await
        .unwrap();
    client.close().await;
    let again = Client::connect(common::config(&server.url()).journal(&journal))
        .await
        .unwrap();
    assert!(again.resumed().is_empty(), "{:?}", again.resumed());
    again.close().await;

    std::fs::write(&journal, "{\"submit\": 7}\n").unwrap();
    match Client::connect(common::config(&server.url()).journal(&journal)).await {
        Err(Error::Config(m)) => assert!(m.contains("line 1"), "{m}"),
        other => panic!("expected a Config error, got {other:?}"),
    }
}
