//! `comfywire._native.Jobs`: the host's job API ([`Jobs`]), call for call;
//! each blocks (`wait::block`) or, with `aio=True`, answers an awaitable.
//! Only types are mapped here (`convert`); no job rule lives here.

use std::future::ready;
use std::path::PathBuf;

use comfywire_host::{HostFile, JobOptions, Jobs, UploadSpec};
use pyo3::prelude::*;

use crate::convert::{Json, Seconds};

/// The job API of one client (`Client.jobs()`).
#[pyclass(module = "comfywire._native", name = "Jobs", frozen)]
pub(crate) struct NativeJobs(pub(crate) Jobs);

crate::wait::aio_methods! {
    NativeJobs {}
    /// Waits until the socket is open, up to `timeout` seconds.
    fn wait_connected(timeout: Seconds) => |jobs| jobs.wait_connected(timeout.0);
    /// Submits a workflow; answers `(prompt_id, number, skipped)`.
    fn submit(workflow: Json) => |jobs| jobs.submit(workflow.0, JobOptions::default());
    /// Submits and waits with these deadlines in seconds (`None`: the
    /// client's); the outcome dict of a success, else the error. Cancelled
    /// or out of time, the run removes its prompt unless `detach` (the
    /// host's rule).
    fn run(
        workflow: Json,
        timeout: Option<Seconds> = None,
        stall_timeout: Option<Seconds> = None,
        queue_timeout: Option<Seconds> = None,
        detach: bool = false
    ) => |jobs| jobs.run(workflow.0, JobOptions {
        timeout: Seconds::of(timeout),
        stall_timeout: Seconds::of(stall_timeout),
        queue_timeout: Seconds::of(queue_timeout),
        detach,
        ..JobOptions::default()
    });
    /// Removes a prompt from the server: `"deleted"` (it was pending),
    /// `"interrupted"` (it was running) or `"not_active"`.
    fn cancel(prompt_id: String) => |jobs| async move {
        jobs.cancel(&prompt_id).await.map(|done| done.name().to_owned())
    };
    /// Waits up to `timeout` seconds for a prompt's success (the outcome
    /// dict), else the error (`WaitTimeout`: the prompt goes on).
    fn wait(prompt_id: String, timeout: Option<Seconds> = None) => |jobs| jobs
        .wait(&prompt_id, &JobOptions { timeout: Seconds::of(timeout), ..JobOptions::default() });
    /// The outcome dict (any phase, with `progress`) of a prompt, or `None`.
    fn execution(prompt_id: String) => |jobs| jobs.execution(&prompt_id);
    /// The events of one prompt from its submission on (its record's
    /// replay, then live) as an `EventStream` that ends after its
    /// `Finished`.
    fn job_events(prompt_id: String) => |jobs| ready(jobs.job_stream(&prompt_id));
    /// Finished executions kept in memory, oldest first, as outcome dicts.
    fn history() => |jobs| jobs.history();
    /// Interrupts the prompt if it is this client's running one.
    fn interrupt(prompt_id: String) => |jobs| jobs.interrupt(&prompt_id);
    /// The server's queue: `(running_ids, pending_ids)`.
    fn queue() => |jobs| jobs.queue();
    /// Deletes pending prompts.
    fn delete(prompt_ids: Vec<String>) => |jobs| jobs.delete(&prompt_ids);
    /// Deletes every pending prompt.
    fn clear_queue() => |jobs| jobs.clear_queue();
    /// The server's history entry of a prompt (a dict) or `None`.
    fn server_history(prompt_id: String) => |jobs| jobs.server_history(&prompt_id);
    /// `GET /system_stats` as a dict.
    fn system_stats() => |jobs| jobs.system_stats();
    /// The bytes of a file from `/view`.
    fn view(filename: String, subfolder: String, kind: String)
        => |jobs| jobs.view(&HostFile { filename, subfolder, kind });
    /// Downloads every output file of a prompt into `dir`; answers the paths.
    fn download_outputs(prompt_id: String, dir: PathBuf)
        => |jobs| jobs.download_outputs(&prompt_id, &dir);
    /// Uploads a file; answers `(filename, subfolder, type)` as stored.
    fn upload(
        filename: String,
        data: Vec<u8>,
        subfolder: Option<String> = None,
        kind: Option<String> = None,
        overwrite: bool = false
    ) => |jobs| jobs.upload(&filename, &data, UploadSpec { subfolder, kind, overwrite });
    /// Skips the backoff wait.
    fn retry_now() => |jobs| ready(jobs.retry_now());
    /// Disconnects and stops retrying (app in the background).
    fn pause() => |jobs| ready(jobs.pause());
    /// Reconnects now (app back).
    fn resume() => |jobs| ready(jobs.resume());
    /// The network changed: check or reconnect now.
    fn network_changed() => |jobs| ready(jobs.network_changed());
}
