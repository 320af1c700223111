//! `comfywire run`: submit a workflow, follow it, download its outputs, and
//! turn the outcome into an exit code. `demo` runs through here too.

use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use comfywire_client::{
    Client, ClientConfig, Deadlines, Error, ExecutionRecord, FileRef, Outcome, SubmitOptions,
    new_uuid,
};
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use crate::args::{RunArgs, seconds};
use crate::connect_config;
use crate::exit::{self, Failure};
use crate::output::{self, NodeNames};
use crate::progress::{Mode, Progress};

/// What to run and how.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The API-format workflow.
    pub workflow: Value,
    /// Deadlines of the wait.
    pub deadlines: Deadlines,
    /// Download output files here.
    pub out: Option<PathBuf>,
    /// Save previews here.
    pub previews: Option<PathBuf>,
    /// JSON lines instead of progress.
    pub json: bool,
    /// Fail when the config's journal is held by another process (else go
    /// on without it).
    pub journal_required: bool,
}

/// What a successful run leaves behind.
#[derive(Debug)]
pub struct Done {
    /// The finished record.
    pub record: Arc<ExecutionRecord>,
    /// Files written into `out`.
    pub files: Vec<PathBuf>,
    /// Previews seen.
    pub previews: usize,
}

/// `comfywire run`.
pub async fn command(args: RunArgs) -> Result<(), Failure> {
    if connect_config::uses_pool(&args.servers)? {
        return crate::batch::run_on_pool(args).await;
    }
    let journal_required = args.journal.is_some();
    let mut config = connect_config::journaled_config(
        &args.servers.single(),
        args.journal.clone(),
        args.no_journal,
    )?;
    let text = std::fs::read_to_string(&args.workflow)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.workflow.display())))?;
    let mut workflow = parse_workflow(&text)
        .map_err(|e| Failure::usage(format!("{}: {e}", args.workflow.display())))?;
    for assignment in &args.set {
        apply_set(&mut workflow, assignment).map_err(Failure::usage)?;
    }
    let deadlines = Deadlines {
        queue: seconds(args.queue_timeout, "--queue-timeout")?.or(config.deadlines.queue),
        stall: seconds(args.stall_timeout, "--stall-timeout")?.or(config.deadlines.stall),
        total: seconds(args.timeout, "--timeout")?.or(config.deadlines.total),
    };
    config.deadlines = deadlines;
    let plan = Plan {
        workflow,
        deadlines,
        out: args.out,
        previews: None,
        json: args.json,
        journal_required,
    };
    let done = execute(config, &plan).await?;
    if !plan.json {
        print_summary(
            &done,
            &NodeNames::from_workflow(&plan.workflow),
            plan.out.is_some(),
        );
    }
    Ok(())
}

/// Reads a workflow file: an API-format node map, or `{"prompt": {...}}`
/// as sent to `POST /prompt` (and saved by some tools).
pub fn parse_workflow(text: &str) -> Result<Value, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let graph = match value.get("prompt") {
        Some(inner) if inner.is_object() => inner.clone(),
        _ => value,
    };
    let Some(nodes) = graph.as_object() else {
        return Err("a workflow is a JSON object of nodes (API format)".into());
    };
    if nodes.get("nodes").is_some_and(Value::is_array) && nodes.get("links").is_some() {
        return Err(
            "this is a UI-format workflow; export it with \"Save (API Format)\" instead".into(),
        );
    }
    if let Some((id, _)) = nodes.iter().find(|(_, n)| n.get("class_type").is_none()) {
        return Err(format!(
            "node {id} has no class_type (not an API-format workflow?)"
        ));
    }
    Ok(graph)
}

/// Applies `NODE.INPUT=VALUE`; VALUE is JSON when it parses, else a string.
pub fn apply_set(workflow: &mut Value, assignment: &str) -> Result<(), String> {
    let (target, raw) = assignment
        .split_once('=')
        .ok_or_else(|| format!("--set {assignment}: expected NODE.INPUT=VALUE"))?;
    let (node, input) = target
        .split_once('.')
        .filter(|(n, i)| !n.is_empty() && !i.is_empty())
        .ok_or_else(|| format!("--set {assignment}: expected NODE.INPUT=VALUE"))?;
    let value = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()));
    let inputs = workflow
        .get_mut(node)
        .ok_or_else(|| format!("--set {assignment}: the workflow has no node {node}"))?
        .as_object_mut()
        .ok_or_else(|| format!("--set {assignment}: node {node} is not an object"))?
        .entry("inputs")
        .or_insert_with(|| json!({}));
    let inputs = inputs
        .as_object_mut()
        .ok_or_else(|| format!("--set {assignment}: inputs of node {node} are not an object"))?;
    inputs.insert(input.to_owned(), value);
    Ok(())
}

/// Connects, runs the plan and closes the client; with `--json` the last
/// line on stdout is the `result` object.
pub async fn execute(config: ClientConfig, plan: &Plan) -> Result<Done, Failure> {
    let names = NodeNames::from_workflow(&plan.workflow);
    let outcome = match connect_config::connect_journaled(config, plan.journal_required).await {
        Ok(client) => {
            let outcome = follow(&client, plan, &names).await;
            client.close().await;
            outcome
        }
        Err(failure) => Err((failure, None)),
    };
    if plan.json {
        output::emit(&result_json(&outcome));
    }
    outcome.map_err(|(failure, _)| failure)
}

/// The `result` object `--json` ends with.
pub fn result_json(outcome: &Result<Done, Failed>) -> Value {
    let mut result = serde_json::Map::new();
    result.insert("event".into(), json!("result"));
    match &outcome {
        Ok(done) => {
            result.insert("prompt_id".into(), json!(done.record.prompt_id));
            result.insert("outcome".into(), json!("succeeded"));
            result.insert("exit_code".into(), json!(exit::OK));
            result.insert("message".into(), Value::Null);
            let files: Vec<String> = done.files.iter().map(|p| p.display().to_string()).collect();
            result.insert("files".into(), json!(files));
        }
        Err((failure, prompt_id)) => {
            result.insert("prompt_id".into(), json!(prompt_id));
            result.insert("outcome".into(), json!(failure.outcome));
            result.insert("exit_code".into(), json!(failure.code));
            result.insert("message".into(), json!(failure.message));
            result.insert("files".into(), json!([]));
        }
    }
    Value::Object(result)
}

/// A failure and the prompt it is about.
pub type Failed = (Failure, Option<String>);

async fn follow(client: &Client, plan: &Plan, names: &NodeNames) -> Result<Done, Failed> {
    let mode = Mode::detect(plan.json);
    // The id is chosen here so the subscription can exist before the prompt.
    let prompt_id = new_uuid();
    let with_id = |f: Failure| (f, Some(prompt_id.clone()));
    let mut events = client.events();
    let options = SubmitOptions {
        prompt_id: Some(prompt_id.clone()),
        ..SubmitOptions::default()
    };
    let submission = client
        .submit_with(&plan.workflow, options)
        .await
        .map_err(|e| with_id(Failure::from(e)))?;
    let mut progress = Progress::new(mode, names.clone(), &prompt_id, plan.previews.clone());
    progress.connection_from(&client.status());
    if let Some(partial) = &submission.partial {
        let nodes: Vec<String> = partial
            .node_errors
            .iter()
            .map(|e| {
                let class = e.class_type.as_deref().unwrap_or("?");
                match e.details.trim() {
                    "" => format!("node {} ({class}): {}", e.node_id, e.message),
                    details => format!("node {} ({class}): {}: {details}", e.node_id, e.message),
                }
            })
            .collect();
        progress.note(&format!(
            "warning: outputs of {} node(s) were skipped (their branch failed validation; the rest runs): {}",
            nodes.len(),
            nodes.join("; ")
        ));
    }
    let wait = client.wait_record(&prompt_id, plan.deadlines);
    tokio::pin!(wait);
    let mut ctrl_c = Box::pin(tokio::signal::ctrl_c());
    let mut interrupting = false;
    let waited = loop {
        tokio::select! {
            record = &mut wait => break record,
            Some(event) = events.recv() => progress.handle(&event),
            _ = &mut ctrl_c => {
                if interrupting {
                    // A second Ctrl-C: stop waiting for the server's answer.
                    progress.finish();
                    return Err(with_id(Failure::new(exit::INTERRUPTED, format!(
                        "interrupted: gave up waiting for prompt {prompt_id} to stop"
                    ))));
                }
                interrupting = true;
                ctrl_c = Box::pin(tokio::signal::ctrl_c());
                progress.note("interrupting (Ctrl-C again to stop waiting)...");
                if let Some(failure) = interrupt(client, &prompt_id).await {
                    progress.finish();
                    return Err(with_id(failure));
                }
            }
        }
    };
    // Events still queued (the last outputs) belong before the summary.
    while let Some(event) = events.try_recv() {
        progress.handle(&event);
    }
    progress.finish();
    let record = waited.map_err(|e| with_id(Failure::from(e)))?;
    if let Some(failure) = outcome_failure(&record, names) {
        return Err(with_id(failure));
    }
    let files = match &plan.out {
        Some(dir) => download(client, &record, dir).await.map_err(with_id)?,
        None => Vec::new(),
    };
    Ok(Done {
        record,
        files,
        previews: progress.previews(),
    })
}

/// The failure a finished record stands for; `None` when it succeeded.
pub fn outcome_failure(record: &Arc<ExecutionRecord>, names: &NodeNames) -> Option<Failure> {
    let prompt_id = &record.prompt_id;
    match &record.outcome {
        Some(Outcome::Succeeded) => None,
        Some(Outcome::Interrupted(_)) => {
            let at = match &record.outcome {
                Some(Outcome::Interrupted(i)) => i
                    .node_id
                    .as_deref()
                    .map(|n| format!(" at node {}", names.label(n)))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            let message = format!("interrupted: prompt {prompt_id} was interrupted{at}");
            Some(Failure::new(exit::INTERRUPTED, message))
        }
        _ => {
            let error = match &record.outcome {
                Some(Outcome::Failed(_)) => Error::ExecutionFailed(record.clone()),
                Some(Outcome::Lost { reason }) => Error::Lost {
                    prompt_id: prompt_id.clone(),
                    reason: reason.clone(),
                },
                _ => Error::Protocol(format!("prompt {prompt_id} ended without an outcome")),
            };
            let mut failure = Failure::from(error);
            if let Some(Outcome::Failed(e)) = &record.outcome {
                failure.message = format!("execution error: {}", output::failure_text(e, names));
            }
            Some(failure)
        }
    }
}

/// Stops our prompt: interrupt it if it runs, delete it if it still waits.
/// `Some` when the command should end now (it never started, or the
/// server could not be asked); `None` to wait for the interrupted record.
async fn interrupt(client: &Client, prompt_id: &str) -> Option<Failure> {
    // Between two looks the prompt may move from pending to running, so
    // look again after deleting it.
    for _ in 0..3 {
        match client.interrupt(prompt_id).await {
            Ok(true) => return None,
            Ok(false) => {}
            Err(e) => return Some(Failure::from(e)),
        }
        if let Err(e) = client.delete(&[prompt_id.to_owned()]).await {
            return Some(Failure::from(e));
        }
        match client.queue().await {
            Ok(queue) if queue.is_running(prompt_id) => continue,
            Ok(_) => {
                return Some(Failure::new(
                    exit::INTERRUPTED,
                    format!(
                        "interrupted: prompt {prompt_id} was removed from the queue before it started"
                    ),
                ));
            }
            Err(e) => return Some(Failure::from(e)),
        }
    }
    Some(Failure::new(
        exit::INTERRUPTED,
        format!("interrupted: could not stop prompt {prompt_id}"),
    ))
}

/// Downloads every output file of `record` into `dir`, in the order of
/// [`comfywire_client::files`]: each under its subfolder
/// (`DIR/SUBFOLDER/NAME`, so outputs of different subfolders never
/// collide), and never over an existing file: a name that is taken gets a
/// number (`NAME-2.png`, `NAME-3.png`, ...). A subfolder or name that would
/// leave `dir` (`..`, an absolute path) is refused.
pub async fn download(
    client: &Client,
    record: &ExecutionRecord,
    dir: &Path,
) -> Result<Vec<PathBuf>, Failure> {
    let mut written = Vec::new();
    for file in comfywire_client::files(record) {
        let relative = local_path(&file.subfolder, &file.filename).map_err(|why| {
            Failure::from(Error::Protocol(format!(
                "output file {:?} in subfolder {:?}: {why}",
                file.filename, file.subfolder
            )))
        })?;
        let bytes = view(client, &file).await?;
        let wanted = dir.join(relative);
        written.push(write_new(&wanted, &bytes).await?);
    }
    Ok(written)
}

/// One output file from `/view`. The terminal message can reach us a
/// moment before `/view` serves the file (seen with the mock), so a 404 is
/// retried briefly.
async fn view(client: &Client, file: &FileRef) -> Result<Vec<u8>, Failure> {
    let mut attempt = 0;
    loop {
        match client.view(file).await {
            Err(Error::Http { status: 404, .. }) if attempt < 10 => {
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            other => return other.map(|b| b.to_vec()).map_err(Failure::from),
        }
    }
}

/// Where an output goes below the output folder: the subfolder's and the
/// name's parts (`/` or `\\` separated), each a plain name. Empty parts
/// and `.` are skipped; `..`, a drive or root, or a NUL are refused.
pub fn local_path(subfolder: &str, filename: &str) -> Result<PathBuf, String> {
    let split = |text: &str, is_name: bool| {
        text.split(['/', '\\'])
            .filter(|p| !p.is_empty() && *p != ".")
            .map(move |p| (p.to_owned(), is_name))
            .collect::<Vec<_>>()
    };
    let mut path = PathBuf::new();
    let mut named = false;
    for (part, is_name) in split(subfolder, false)
        .into_iter()
        .chain(split(filename, true))
    {
        let plain = matches!(
            Path::new(&part).components().collect::<Vec<_>>().as_slice(),
            [Component::Normal(_)]
        );
        if !plain || part.contains('\0') {
            return Err(format!("`{part}` would leave the output folder"));
        }
        named |= is_name;
        path.push(part);
    }
    if named {
        Ok(path)
    } else {
        Err("no file name".into())
    }
}

/// Writes `bytes` to `wanted`, or to the first free `STEM-N.EXT` (N from
/// 2) beside it: an existing file is never replaced. Creates the folder.
async fn write_new(wanted: &Path, bytes: &[u8]) -> Result<PathBuf, Failure> {
    let io =
        |e: std::io::Error, p: &Path| Failure::from(Error::Io(format!("{}: {e}", p.display())));
    let folder = wanted.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(folder)
        .await
        .map_err(|e| io(e, folder))?;
    for n in 1..=10_000u32 {
        let path = if n == 1 {
            wanted.to_path_buf()
        } else {
            numbered(wanted, n)
        };
        let opened = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .await;
        let mut out = match opened {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(e, &path)),
        };
        out.write_all(bytes).await.map_err(|e| io(e, &path))?;
        out.flush().await.map_err(|e| io(e, &path))?;
        return Ok(path);
    }
    Err(Failure::from(Error::Io(format!(
        "{}: this name and 9999 numbered ones exist already",
        wanted.display()
    ))))
}

/// `a/b.png` numbered 3: `a/b-3.png` (`a/b-3` without an extension).
fn numbered(path: &Path, n: u32) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}-{n}.{}", ext.to_string_lossy()),
        None => format!("{stem}-{n}"),
    };
    path.with_file_name(name)
}

/// The human summary of a successful run, on stdout.
pub fn print_summary(done: &Done, names: &NodeNames, downloaded: bool) {
    let record = &done.record;
    println!(
        "✔ prompt {} {}",
        output::short(&record.prompt_id),
        output::outcome_text(record, names)
    );
    let files = comfywire_client::files(record);
    if files.is_empty() && record.outputs.is_empty() {
        println!("  no outputs");
    }
    for (node, out) in &record.outputs {
        println!(
            "  output of {}: {}",
            names.label(node),
            output::describe_output(&out.to_value())
        );
    }
    for (i, file) in files.iter().enumerate() {
        let local = done
            .files
            .get(i)
            .filter(|_| downloaded)
            .map(|p| format!(" -> {}", p.display()))
            .unwrap_or_default();
        let sub = if file.subfolder.is_empty() {
            String::new()
        } else {
            format!("{}/", file.subfolder)
        };
        println!("  file [{}] {sub}{}{local}", file.kind, file.filename);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keep_their_subfolder_inside_the_folder() {
        let ok = |sub: &str, name: &str| local_path(sub, name).map_err(|e| panic!("{e}"));
        assert_eq!(ok("", "a.png"), Ok(PathBuf::from("a.png")));
        assert_eq!(ok("x/y", "a.png"), Ok(PathBuf::from("x/y/a.png")));
        assert_eq!(ok("./x//", "a.png"), Ok(PathBuf::from("x/a.png")));
        assert_eq!(ok("x\\y", "z/a.png"), Ok(PathBuf::from("x/y/z/a.png")));
        for (sub, name) in [
            ("..", "a.png"),
            ("x/../..", "a.png"),
            ("", "../a.png"),
            ("", ".."),
            ("x", ""),
            ("x", "."),
            ("x", "a\0.png"),
        ] {
            assert!(local_path(sub, name).is_err(), "{sub:?} {name:?}");
        }
        // A leading slash does not make it absolute: it stays inside.
        assert_eq!(ok("/etc", "passwd"), Ok(PathBuf::from("etc/passwd")));
    }

    #[test]
    fn numbered_names_keep_the_extension() {
        assert_eq!(
            numbered(Path::new("o/a.png"), 2),
            PathBuf::from("o/a-2.png")
        );
        assert_eq!(numbered(Path::new("o/a"), 3), PathBuf::from("o/a-3"));
        assert_eq!(
            numbered(Path::new("o/a.tar.gz"), 2),
            PathBuf::from("o/a.tar-2.gz")
        );
    }
}
