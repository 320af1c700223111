//! `comfywire demo`: an embedded mock ComfyUI plays a real recorded
//! session and `run` follows it, so the first command of the README needs
//! nothing else on the machine.

use std::path::PathBuf;

use comfywire_client::{ClientConfig, Deadlines, new_client_id};
use comfywire_mock::{MockConfig, MockServer, TraceSource};

use crate::args::DemoArgs;
use crate::exit::Failure;
use crate::output::NodeNames;
use crate::run::{self, Plan};

/// `comfywire demo`.
pub async fn command(args: DemoArgs) -> Result<(), Failure> {
    if !(args.speed >= 0.0 && args.speed.is_finite()) {
        return Err(Failure::usage(format!(
            "--speed {}: not a speed",
            args.speed
        )));
    }
    let server = MockServer::start_with(MockConfig {
        port: 0,
        traces: TraceSource::Embedded,
        speed: args.speed,
        default_scenario: args.scenario.clone(),
    })
    .await
    .map_err(|e| Failure::new(crate::exit::FAILURE, format!("cannot start the mock: {e}")))?;
    let Some(workflow) = server.workflow(&args.scenario) else {
        // No shutdown: nothing connected yet, and the process ends here.
        let known = server.scenarios().join(", ");
        return Err(Failure::usage(format!(
            "no recorded session called `{}` (known: {known})",
            args.scenario
        )));
    };
    let dir = private_temp_dir(DEMO_PREFIX).map_err(|e| {
        Failure::new(
            crate::exit::FAILURE,
            format!("cannot create a folder for the outputs: {e}"),
        )
    })?;
    remove_earlier_demos(&dir);
    let names = NodeNames::from_workflow(&workflow);
    if !args.json {
        eprintln!(
            "comfywire demo: a mock ComfyUI at {} replays the recorded session `{}` at {}x",
            server.url(),
            args.scenario,
            args.speed
        );
        let mut ids: Vec<&String> = workflow
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .collect();
        ids.sort_by_key(|id| id.parse::<u64>().unwrap_or(u64::MAX));
        let chain: Vec<String> = ids.iter().map(|id| names.label(id)).collect();
        eprintln!("workflow: {}", chain.join(" → "));
    }
    let plan = Plan {
        workflow,
        deadlines: Deadlines {
            // The recordings are seconds long; a minute means something broke.
            total: Some(std::time::Duration::from_secs(60)),
            ..Deadlines::default()
        },
        out: Some(dir.join("outputs")),
        previews: Some(dir.join("previews")),
        journal_required: false,
        json: args.json,
    };
    let result = run::execute(ClientConfig::new(server.url()), &plan).await;
    server.shutdown().await;
    let done = result?;
    if !args.json {
        run::print_summary(&done, &names, true);
        if done.previews > 0 {
            crate::outln!(
                "  {} previews -> {}",
                done.previews,
                dir.join("previews").display()
            );
        }
        crate::outln!("next: comfywire run WORKFLOW.json --url http://127.0.0.1:8188 --out DIR");
    }
    Ok(())
}

const DEMO_PREFIX: &str = "comfywire-demo";

/// Removes the folders earlier demos left in the temp folder, so they do
/// not pile up: only this user's own (same owner as `current`, which was
/// just made), only real folders (never a link someone planted), only
/// names this command makes (`comfywire-demo-` and 32 hex digits). Best
/// effort: a folder that cannot be removed stays.
fn remove_earlier_demos(current: &std::path::Path) {
    let Some(base) = current.parent() else {
        return;
    };
    let Ok(mine) = std::fs::symlink_metadata(current) else {
        return;
    };
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let ours = name
            .to_str()
            .and_then(|n| n.strip_prefix(DEMO_PREFIX)?.strip_prefix('-'))
            .is_some_and(|id| id.len() == 32 && id.chars().all(|c| c.is_ascii_hexdigit()));
        if !ours || path == current {
            continue;
        }
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        #[cfg(unix)]
        let same_owner = {
            use std::os::unix::fs::MetadataExt;
            meta.uid() == mine.uid()
        };
        #[cfg(not(unix))]
        let same_owner = {
            let _ = &mine;
            true
        };
        if meta.is_dir() && same_owner {
            let _ = std::fs::remove_dir_all(&path);
        }
    }
}

/// A new folder `PREFIX-<random>` in the system's temp folder that only
/// this user may enter (0700 on Unix). The name is random, not the process
/// id, so another user cannot guess it and plant a folder or link there
/// first; an existing name is never reused.
fn private_temp_dir(prefix: &str) -> std::io::Result<PathBuf> {
    let mut builder = std::fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    let base = std::env::temp_dir();
    loop {
        let dir = base.join(format!("{prefix}-{}", new_client_id()));
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}
