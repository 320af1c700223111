//! Every call of the one job API, against the mock, checked against the
//! server's own record (its queue, history, stored uploads and counters).
#![allow(clippy::unwrap_used)]

mod common;

use common::{client, mock, until};
use std::time::{Duration, Instant};

use comfywire_host::event::{NodePhase, Phase};
use comfywire_host::{
    ErrorCode, HostClient, HostEventKind, HostFile, JobOptions, PlainContext, Settings, UploadSpec,
    block_on,
};
use comfywire_mock::MockServer;
use serde_json::{Value, json};

/// The server's own queue, read over HTTP without the client under test.
fn server_queue(rt: &tokio::runtime::Runtime, server: &MockServer) -> Value {
    let url = format!("{}/queue", server.url());
    rt.block_on(async move {
        let body = http_get(&url).await;
        serde_json::from_slice(&body).unwrap()
    })
}

async fn http_get(url: &str) -> Vec<u8> {
    // A plain HTTP/1.0 GET over a TCP socket: the oracle shares no code
    // with the client.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rest = url.strip_prefix("http://").unwrap();
    let (host, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    raw.split_off(split + 4)
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| item[1].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn submit_options_run_and_the_records_agree_with_the_server() {
    let (rt, server) = mock(0.0);
    let host = client(&server);
    let jobs = host.jobs();
    // A prompt id of the caller's, extra data and the front of the queue
    // reach the server as given.
    let submission = block_on(jobs.submit(
        server.sample_workflow(),
        JobOptions {
            prompt_id: Some("my-own-id".into()),
            extra_data: Some(json!({"note": "from the host test"})),
            front: true,
            ..JobOptions::default()
        },
    ))
    .unwrap();
    assert_eq!(submission.prompt_id, "my-own-id");
    assert!(submission.skipped.is_none());
    let outcome = block_on(jobs.wait("my-own-id", &JobOptions::default())).unwrap();
    assert_eq!(outcome.status, Phase::Succeeded);
    let entry = block_on(jobs.server_history("my-own-id")).unwrap().unwrap();
    assert_eq!(
        entry["prompt"][3]["note"], "from the host test",
        "extra_data as the server stored it: {}",
        entry["prompt"]
    );
    // The outputs the client reports are the server's.
    assert_eq!(outcome.outputs, entry["outputs"]);
    assert!(outcome.nodes.iter().all(|n| n.phase != NodePhase::Running));
    assert_eq!(outcome.progress, 1.0);
    // The execution record and the ring.
    let record = block_on(jobs.execution("my-own-id")).unwrap().unwrap();
    assert_eq!(record.status, Phase::Succeeded);
    assert_eq!(block_on(jobs.execution("nobody")).unwrap(), None);
    let ring = block_on(jobs.history()).unwrap();
    assert_eq!(ring.len(), 1);
    assert_eq!(ring[0].prompt_id, "my-own-id");
    assert_eq!(server.stats().prompts_submitted, 1);
    // `run` with options: the deadlines of the options apply.
    let ran = block_on(jobs.run(
        server.sample_workflow(),
        JobOptions {
            timeout: Some(Duration::from_secs(30)),
            stall_timeout: Some(Duration::from_secs(30)),
            queue_timeout: Some(Duration::from_secs(30)),
            ..JobOptions::default()
        },
    ))
    .unwrap();
    assert_eq!(ran.status, Phase::Succeeded);
    assert_eq!(server.stats().prompts_finished, 2);
    // `extra_data` that is not an object is refused before anything leaves.
    let refused = block_on(jobs.submit(
        server.sample_workflow(),
        JobOptions {
            extra_data: Some(json!([1])),
            ..JobOptions::default()
        },
    ))
    .unwrap_err();
    assert_eq!(refused.code, ErrorCode::InvalidArgument);
    assert_eq!(server.stats().prompts_submitted, 2);
    let stats = block_on(jobs.system_stats()).unwrap();
    assert!(stats["system"].is_object(), "{stats}");
    assert!(ids(&server_queue(&rt, &server)["queue_running"]).is_empty());
    host.close();
    assert_eq!(host.status().state, "closed");
}

#[test]
fn deadlines_and_the_wait_timeout_have_their_own_codes() {
    let (_rt, server) = mock(1.0);
    let host = client(&server);
    let jobs = host.jobs();
    let workflow = server.workflow("long_run").unwrap();
    // A total deadline far shorter than the run.
    let err = block_on(jobs.run(
        workflow.clone(),
        JobOptions {
            timeout: Some(Duration::from_millis(300)),
            ..JobOptions::default()
        },
    ))
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Deadline);
    assert_eq!(err.detail.unwrap()["deadline"], "total");
    // A wait that gives up: `Timeout`, and the prompt goes on.
    let s = block_on(jobs.submit(workflow, JobOptions::default())).unwrap();
    let err = block_on(jobs.wait(
        &s.prompt_id,
        &JobOptions {
            timeout: Some(Duration::from_millis(200)),
            ..JobOptions::default()
        },
    ))
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    let record = block_on(jobs.execution(&s.prompt_id)).unwrap().unwrap();
    assert!(!record.is_terminal());
    host.close();
}

#[test]
fn queue_delete_clear_and_interrupt_act_on_the_servers_queue() {
    let (rt, server) = mock(1.0);
    let host = client(&server);
    let jobs = host.jobs();
    let workflow = server.workflow("long_run").unwrap();
    let submitted: Vec<String> = (0..4)
        .map(|_| {
            block_on(jobs.submit(workflow.clone(), JobOptions::default()))
                .unwrap()
                .prompt_id
        })
        .collect();
    until("the first to run", || {
        ids(&server_queue(&rt, &server)["queue_running"]) == [submitted[0].clone()]
    });
    let queue = block_on(jobs.queue()).unwrap();
    let truth = server_queue(&rt, &server);
    assert_eq!(queue.running_ids(), ids(&truth["queue_running"]));
    assert_eq!(queue.pending_ids(), submitted[1..]);
    assert!(
        queue
            .pending
            .iter()
            .all(|i| i.client_id.as_deref() == Some(&*host.client_id())),
        "{queue:?}"
    );
    // Interrupt touches only the running prompt.
    assert!(!block_on(jobs.interrupt(&submitted[1])).unwrap());
    block_on(jobs.delete(std::slice::from_ref(&submitted[1]))).unwrap();
    // Deleting nothing asks the server nothing.
    block_on(jobs.delete(&[])).unwrap();
    assert_eq!(
        ids(&server_queue(&rt, &server)["queue_pending"]),
        submitted[2..]
    );
    assert!(block_on(jobs.interrupt(&submitted[0])).unwrap());
    let interrupted = block_on(jobs.outcome(&submitted[0], &JobOptions::default())).unwrap();
    assert_eq!(interrupted.status, Phase::Interrupted);
    assert_eq!(server.stats().interrupts, 1);
    block_on(jobs.clear_queue()).unwrap();
    let truth = server_queue(&rt, &server);
    assert!(ids(&truth["queue_pending"]).len() <= 1, "{truth}");
    // Whatever still runs is interrupted; then nothing is left.
    for id in ids(&truth["queue_running"]) {
        block_on(jobs.interrupt(&id)).unwrap();
    }
    until("an empty queue", || {
        let q = server_queue(&rt, &server);
        ids(&q["queue_running"]).is_empty() && ids(&q["queue_pending"]).is_empty()
    });
    host.close();
}

#[test]
fn uploads_views_and_downloads_match_the_servers_files() {
    let (_rt, server) = mock(0.0);
    let host = client(&server);
    let jobs = host.jobs();
    let data: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let stored = block_on(jobs.upload(
        "input.png",
        &data,
        UploadSpec {
            subfolder: Some("tests".into()),
            kind: None,
            overwrite: true,
        },
    ))
    .unwrap();
    assert_eq!(stored.kind, "input");
    assert_eq!(stored.subfolder, "tests");
    // The server gives back exactly what it stored.
    assert_eq!(block_on(jobs.view(&stored)).unwrap().as_ref(), &data[..]);
    assert_eq!(
        block_on(jobs.upload("", &data, UploadSpec::default()))
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    let missing = HostFile {
        filename: "nope.png".into(),
        subfolder: String::new(),
        kind: "output".into(),
    };
    assert_eq!(
        block_on(jobs.view(&missing)).unwrap_err().code,
        ErrorCode::Http
    );
    // Outputs: the files of the run, downloaded, equal `/view` of each.
    let outcome = block_on(jobs.run(server.sample_workflow(), JobOptions::default())).unwrap();
    let files = block_on(jobs.output_files(&outcome.prompt_id)).unwrap();
    assert!(!files.is_empty());
    assert_eq!(files, outcome.files());
    let dir = std::env::temp_dir().join(format!("comfywire-host-dl-{}", std::process::id()));
    let paths = block_on(jobs.download_outputs(&outcome.prompt_id, &dir)).unwrap();
    assert_eq!(paths.len(), files.len());
    for (path, file) in paths.iter().zip(&files) {
        let on_disk = std::fs::read(path).unwrap();
        assert_eq!(on_disk, block_on(jobs.view(file)).unwrap().as_ref());
        assert!(on_disk.starts_with(b"\x89PNG"), "{path}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(
        block_on(jobs.download_outputs("nobody", &dir))
            .unwrap_err()
            .code,
        ErrorCode::InvalidArgument
    );
    host.close();
}

#[test]
fn lifecycle_hints_pull_queue_streams_and_close() {
    let (_rt, server) = mock(0.0);
    let host = client(&server);
    let jobs = host.jobs();
    // A pause closes the socket (the server sees it go) and a resume
    // opens a new one.
    jobs.pause().unwrap();
    until("paused", || host.status().state == "paused");
    until("the socket closed", || server.stats().open_sockets == 0);
    jobs.resume().unwrap();
    block_on(jobs.wait_connected(Duration::from_secs(5))).unwrap();
    jobs.network_changed().unwrap();
    jobs.retry_now().unwrap();
    block_on(jobs.wait_connected(Duration::from_secs(5))).unwrap();
    until("a second socket accepted", || {
        server.stats().connections_accepted >= 2
    });
    // A stream of one prompt's lifecycle, and the shared pull queue.
    let mut stream = host
        .events(Some(&["execution_started".into(), "finished".into()]), None)
        .unwrap();
    assert!(host.events(Some(&["nope".into()]), None).is_err());
    // The pull queue starts with the first call.
    while host.next_event(Duration::ZERO).unwrap().is_some() {}
    let outcome = block_on(jobs.run(server.sample_workflow(), JobOptions::default())).unwrap();
    let mut kinds = Vec::new();
    block_on(async {
        while kinds.len() < 2 {
            let event = stream.recv().await.unwrap();
            assert_eq!(event.prompt_id(), Some(outcome.prompt_id.as_str()));
            kinds.push(event.kind().name());
        }
        Ok(())
    })
    .unwrap();
    assert_eq!(kinds, ["execution_started", "finished"]);
    let mut pulled = Vec::new();
    while let Some(event) = host.next_event(Duration::from_millis(100)).unwrap() {
        pulled.push(event);
    }
    let finished = pulled
        .iter()
        .find(|e| e.kind() == HostEventKind::Client(comfywire_host::event::EventKind::Finished))
        .unwrap();
    let flat = finished.flat();
    assert_eq!(flat.outcome.unwrap().status, Phase::Succeeded);
    // The JSON every front end prints (the CLI's schema).
    let line = finished.to_json();
    assert_eq!(line["event"], "finished");
    assert_eq!(line["outcome"], "succeeded");
    assert_eq!(line["prompt_id"], outcome.prompt_id.as_str());
    assert!(host.stats().frames > 0);
    host.close();
    host.close();
    assert_eq!(
        block_on(jobs.queue()).unwrap_err().code,
        ErrorCode::Closed,
        "closed means closed"
    );
    assert_eq!(
        host.subscribe(None, None, std::sync::Arc::new(Nothing))
            .unwrap_err()
            .code,
        ErrorCode::Closed
    );
}

struct Nothing;

impl comfywire_host::EventCallback for Nothing {
    fn on_event(&self, _: &comfywire_host::HostEvent) -> Result<(), String> {
        Ok(())
    }
}

#[test]
fn attach_and_the_journal_follow_prompts_this_client_did_not_submit() {
    let (rt, server) = mock(1.0);
    let history = |id: &str| -> Value {
        let url = format!("{}/history/{id}", server.url());
        let body = rt.block_on(async move { http_get(&url).await });
        serde_json::from_slice::<Value>(&body).unwrap()[id].clone()
    };
    // Another client (another client id) submits; this one attaches and
    // waits: the outcome is the server's.
    let other = client(&server);
    let host = client(&server);
    assert_ne!(other.client_id(), host.client_id());
    let theirs = block_on(
        other
            .jobs()
            .submit(server.sample_workflow(), JobOptions::default()),
    )
    .unwrap();
    block_on(host.jobs().attach(&theirs.prompt_id)).unwrap();
    let options = JobOptions {
        timeout: Some(Duration::from_secs(30)),
        ..JobOptions::default()
    };
    let outcome = block_on(host.jobs().wait(&theirs.prompt_id, &options)).unwrap();
    assert_eq!(outcome.status, Phase::Succeeded);
    assert_eq!(outcome.outputs, history(&theirs.prompt_id)["outputs"]);
    let empty = block_on(host.jobs().attach("")).unwrap_err();
    assert_eq!(empty.code, ErrorCode::InvalidArgument);
    assert!(host.resumed().is_empty(), "no journal, nothing resumed");

    // The journal: a client closed while its prompt waits in the queue;
    // the next one with the same settings resumes it under the same id.
    let journal = std::env::temp_dir()
        .join(format!("comfywire-host-journal-{}", theirs.prompt_id))
        .join("journal.jsonl");
    let settings = Settings {
        url: Some(server.url()),
        journal: Some(journal.to_string_lossy().into_owned()),
        ..Settings::default()
    };
    let first = HostClient::new(&settings).unwrap();
    let taken = HostClient::new(&settings).unwrap_err();
    assert_eq!(taken.code, ErrorCode::Config, "{taken:?}");
    block_on(first.jobs().wait_connected(Duration::from_secs(5))).unwrap();
    let mine = block_on(
        first
            .jobs()
            .submit(server.sample_workflow(), JobOptions::default()),
    )
    .unwrap();
    let first_id = first.client_id();
    first.close();
    drop(first);
    let second = HostClient::new(&settings).unwrap();
    assert_eq!(second.client_id(), first_id);
    assert_eq!(second.resumed(), vec![mine.prompt_id.clone()]);
    let outcome = block_on(second.jobs().wait(&mine.prompt_id, &options)).unwrap();
    assert_eq!(outcome.status, Phase::Succeeded);
    assert_eq!(outcome.outputs, history(&mine.prompt_id)["outputs"]);
    drop(second);
    let third = HostClient::new(&settings).unwrap();
    assert!(third.resumed().is_empty());
}

#[test]
fn outputs_a_record_could_not_keep_are_read_from_the_servers_history() {
    let (_rt, server) = mock(0.0);
    let mut config = Settings {
        url: Some(server.url()),
        ..Settings::default()
    }
    .to_config()
    .unwrap();
    // A budget smaller than any output: every output is delivered as an
    // event but not kept in the record.
    config.session.max_record_output_bytes = 16;
    let host = HostClient::from_config(config, std::sync::Arc::new(PlainContext)).unwrap();
    let jobs = host.jobs();
    block_on(jobs.wait_connected(Duration::from_secs(5))).unwrap();
    let outcome = block_on(jobs.run(server.sample_workflow(), JobOptions::default())).unwrap();
    assert!(outcome.outputs_omitted > 0, "{outcome:?}");
    assert!(outcome.files().is_empty());
    // The files come from the server's own history entry.
    let entry = server.history_entry(&outcome.prompt_id).unwrap();
    let expected = HostFile::in_outputs(&entry["outputs"]);
    assert!(!expected.is_empty());
    assert_eq!(
        block_on(jobs.output_files(&outcome.prompt_id)).unwrap(),
        expected
    );
    host.close();
}

#[test]
fn an_unread_pull_stream_overflows_visibly_and_the_next_pull_goes_on() {
    let (rt, server) = mock(0.0);
    let mut config = Settings {
        url: Some(server.url()),
        ..Settings::default()
    }
    .to_config()
    .unwrap();
    config.subscriber_max_bytes = 16 << 10;
    let host = HostClient::from_config(config, std::sync::Arc::new(PlainContext)).unwrap();
    block_on(host.jobs().wait_connected(Duration::from_secs(5))).unwrap();
    // The pull stream exists from the first pull; then nobody reads while
    // a firehose of prompts (lifecycle events are never dropped one by one)
    // passes its 16 KiB bound.
    while host.next_event(Duration::ZERO).unwrap().is_some() {}
    let base = host.stats().frames;
    let id = host.client_id();
    let sent = rt
        .block_on(async { server.firehose(&id, 20_000, "long_run").await })
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while host.stats().frames < base + sent {
        assert!(
            Instant::now() < deadline,
            "the client never read the firehose"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut read = 0;
    let error = loop {
        match host.next_event(Duration::from_millis(100)) {
            Ok(Some(_)) => read += 1,
            Ok(None) => panic!("the stream ended quietly after {read} events"),
            Err(e) => break e,
        }
        assert!(read < 100_000, "no overflow");
    };
    assert_eq!(error.code, ErrorCode::Overflow, "{error:?}");
    let detail = error.detail.unwrap();
    assert_eq!(detail["limit"], 16 << 10);
    assert!(detail["held"].as_u64().unwrap() > 16 << 10, "{detail}");
    // Not closed: the next pull starts afresh and sees what comes now.
    assert!(!host.is_closed());
    assert!(host.next_event(Duration::ZERO).is_ok());
    let outcome = block_on(
        host.jobs()
            .run(server.sample_workflow(), JobOptions::default()),
    )
    .unwrap();
    let mut finished = false;
    while let Some(event) = host.next_event(Duration::from_millis(200)).unwrap() {
        if event.flat().kind == HostEventKind::Client(comfywire_host::event::EventKind::Finished)
            && event.flat().prompt_id.as_deref() == Some(&outcome.prompt_id)
        {
            finished = true;
            break;
        }
    }
    assert!(
        finished,
        "the fresh stream did not deliver the new run's end"
    );
    host.close();
}

#[test]
fn an_answer_past_its_limit_is_its_own_code_naming_the_limit() {
    let (_rt, server) = mock(0.0);
    let host = client(&server);
    server.set_hostile_http(comfywire_mock::HostileHttp {
        system_stats: Some(comfywire_mock::HostileBody::fast(64 << 20)),
        ..comfywire_mock::HostileHttp::default()
    });
    let error = block_on(host.jobs().system_stats()).unwrap_err();
    assert_eq!(error.code, ErrorCode::TooLarge, "{error:?}");
    let detail = error.detail.unwrap();
    assert_eq!(detail["setting"], "max_json_mib");
    assert_eq!(detail["limit"], 16 << 20);
    host.close();
}
