//! `comfywire_pool`: one client over many ComfyUI servers, each call a
//! mapping onto the host's `HostPool` (dispatch, failover and the one
//! outcome per submission live in `comfywire-pool`). Outcomes are
//! `comfywire_outcome`s with their server (comfywire_outcome_server(),
//! comfywire_outcome_pool_json()).

use std::ffi::c_char;
use std::time::Duration;

use comfywire_host::{
    HostError, HostPool, HostPoolOutcome, block_on, parse_json, pool_outcome_result,
};

use crate::call::{Object, start, with, with_out, with_text};
use crate::outcome::Outcome;
use crate::panic::{ffi_free, ffi_status};
use crate::status::Status;
use crate::strings::{into_c, out_arg, ref_arg, str_arg};

/// A pool of ComfyUI servers: each submission goes to the healthy server
/// with the least work that has every node class it uses, and moves to
/// another when its server is lost before it started. Create it with
/// comfywire_pool_new(); free it with comfywire_pool_free(). Thread-safe
/// like a client.
pub struct Pool {
    host: HostPool,
}

impl Drop for Pool {
    fn drop(&mut self) {
        // Blocks until closed (in the background on a runtime thread,
        // which C never owns).
        self.host.close_blocking();
    }
}

/// A time limit in milliseconds, 0 for none.
fn limit(timeout_ms: u32) -> Option<Duration> {
    (timeout_ms > 0).then(|| Duration::from_millis(u64::from(timeout_ms)))
}

impl Object for Pool {
    const NAME: &'static str = "pool";
}

/// Sets `*out` to the outcome `wait` answers, and answers its status:
/// COMFYWIRE_OK when it succeeded, else the code of how it ended.
unsafe fn outcome_out(
    pool: *const Pool,
    out: *mut *mut Outcome,
    wait: impl FnOnce(&HostPool) -> Result<HostPoolOutcome, HostError>,
) -> Status {
    ffi_status(|| {
        // SAFETY: forwarded from this function's contract.
        let (out, pool) = unsafe {
            let out = out_arg(out, std::ptr::null_mut(), "out_outcome")?;
            (out, ref_arg(pool, "pool")?)
        };
        let outcome = wait(&pool.host)?;
        *out = Outcome::from_pool(&outcome);
        pool_outcome_result(outcome).map(drop)
    })
}

/// Creates a pool from a JSON settings string with `servers` (the settings
/// file's format): `{"servers": [{"url": "http://gpu1:8188", "label":
/// "gpu1", "weight": 2}, {"url": "http://gpu2:8188", "token": "..."}],
/// "pool_grace_s": 10, "pool_resubmit_running": false}`. Each server's
/// client settings are its entry's over the rest of the JSON (credentials
/// stay with the server that names them); `COMFYWIRE_*` environment
/// variables fill what the JSON leaves out. Sets `*out_pool`; the clients
/// connect in the background (comfywire_pool_wait_healthy() waits for
/// them). COMFYWIRE_CONFIG when there are no servers, a server has no URL
/// or a bad weight, or two share a label.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_new(
    settings_json: *const c_char,
    out_pool: *mut *mut Pool,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        start(out_pool, "out_pool", || {
            let json = str_arg(settings_json, "settings_json")?;
            Ok(Pool {
                host: HostPool::from_settings_json(json, None)?,
            })
        })
    }
}

/// Blocks until at least `count` servers take work, at most `timeout_ms`;
/// sets `*out_healthy` to how many do (fewer than `count` when the time
/// ran out, which is not an error).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_wait_healthy(
    pool: *const Pool,
    count: usize,
    timeout_ms: u32,
    out_healthy: *mut usize,
) -> Status {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    // SAFETY: the general contract.
    unsafe {
        with_out(pool, out_healthy, 0, "out_healthy", |p| {
            block_on(p.host.wait_healthy(count, timeout)).map(Some)
        })
    }
}

/// Submits a workflow (API-format JSON) to the server with the least work
/// that can run it and sets `*out_prompt_id` (its id on every server it
/// goes to). COMFYWIRE_VALIDATION when no server has every node class it
/// uses (the detail JSON's `missing` names them) or the server refused it;
/// COMFYWIRE_REQUEST when no server is reachable.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_submit(
    pool: *const Pool,
    workflow_json: *const c_char,
    out_prompt_id: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with_text(pool, out_prompt_id, |p| {
            let workflow = str_arg(workflow_json, "workflow_json")?;
            block_on(p.host.submit(parse_json(workflow, "workflow")?))
        })
    }
}

/// Blocks up to `timeout_ms` (0: no limit) for a submission's one outcome,
/// wherever it ran. COMFYWIRE_OK when it succeeded;
/// COMFYWIRE_EXECUTION_FAILED, COMFYWIRE_INTERRUPTED or COMFYWIRE_LOST when
/// it ended otherwise (the detail JSON has `server`, `servers` and
/// `moves`); COMFYWIRE_TIMEOUT when the time ran out (it goes on; call
/// again). `*out_outcome` is set whenever it ended, successfully or not:
/// comfywire_outcome_server() names the server, comfywire_outcome_pool_json()
/// tells where it went and why.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_wait(
    pool: *const Pool,
    prompt_id: *const c_char,
    timeout_ms: u32,
    out_outcome: *mut *mut Outcome,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        outcome_out(pool, out_outcome, |p| {
            let id = str_arg(prompt_id, "prompt_id")?;
            block_on(p.outcome(id, limit(timeout_ms)))
        })
    }
}

/// Submits a workflow and blocks up to `timeout_ms` (0: no limit) for its
/// one outcome: comfywire_pool_submit() then comfywire_pool_wait().
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_run(
    pool: *const Pool,
    workflow_json: *const c_char,
    timeout_ms: u32,
    out_outcome: *mut *mut Outcome,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        outcome_out(pool, out_outcome, |p| {
            let workflow = str_arg(workflow_json, "workflow_json")?;
            let workflow = parse_json(workflow, "workflow")?;
            block_on(p.run(workflow, limit(timeout_ms)))
        })
    }
}

/// Interrupts a submission on the server that has it now; `*out_sent` is
/// false when it is not running there.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_interrupt(
    pool: *const Pool,
    prompt_id: *const c_char,
    out_sent: *mut bool,
) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with_out(pool, out_sent, false, "out_sent", |p| {
            let id = str_arg(prompt_id, "prompt_id")?;
            block_on(p.host.interrupt(id)).map(Some)
        })
    }
}

/// Figures per server as a JSON array, in configuration order: `[{"label",
/// "healthy", "queue_remaining", "in_flight", "done", "failed_over"}, ...]`.
/// Sets `*out_json` (free it with comfywire_string_free()).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_stats_json(
    pool: *const Pool,
    out_json: *mut *mut c_char,
) -> Status {
    // SAFETY: the general contract.
    unsafe { with_text(pool, out_json, |p| Ok(p.host.stats_json())) }
}

/// The next event of the pool as JSON, waiting up to `timeout_ms`; sets
/// `*out_json` to NULL when none came. Events are queued from the first
/// call on: every server's events with `"server"` added (the CLI's
/// `--json` schema), `{"event": "moved", "prompt_id", "server", "from",
/// "to", "reason"}` when a submission moved, and one `{"event":
/// "finished", "prompt_id", "server", "outcome": {...}}` per submission
/// (its `outcome` is comfywire_outcome_pool_json()'s object).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_next_event_json(
    pool: *const Pool,
    timeout_ms: u32,
    out_json: *mut *mut c_char,
) -> Status {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    // SAFETY: the general contract.
    unsafe {
        with_out(pool, out_json, std::ptr::null_mut(), "out_json", |p| {
            Ok(p.host.next_event(timeout)?.map(|e| into_c(e.to_json())))
        })
    }
}

/// Closes every client of the pool: waits in progress return
/// COMFYWIRE_CLOSED, and so does every later call. Idempotent; blocks
/// until the clients are closed.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_close(pool: *const Pool) -> Status {
    // SAFETY: the general contract.
    unsafe {
        with(pool, |p| {
            let host = p.host.clone();
            block_on(async move {
                host.close().await;
                Ok(())
            })
        })
    }
}

/// Closes the pool (if not closed yet) and frees it. NULL is ignored.
///
/// # Safety
/// `pool` is NULL or a pool not freed yet, which no other thread uses any
/// more.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn comfywire_pool_free(pool: *mut Pool) {
    // SAFETY: it came from `comfywire_pool_new` and is freed once; dropping
    // closes it.
    unsafe { ffi_free(pool) }
}
