//! [`WasmSession`]: the core's `Session` behind `#[wasm_bindgen]`.

use bytes::Bytes;
use comfywire_proto::{
    ConnectionError, Frame, HistoryEntry, HttpReply, HttpRequest, QueueSnapshot, Session,
};
use serde::Serialize;
use serde_json::Value;
use wasm_bindgen::prelude::*;

use crate::clock::Clock;
use crate::dto::{CommandDto, EventDto, RecordDto, StatusDto};
use crate::error::CoreError;
use crate::options::SessionOptions;

/// Converts a DTO to a plain JavaScript object (maps as objects, bytes as
/// `Uint8Array`). The DTOs hold only strings, numbers, booleans, JSON and
/// bytes, which always convert; should one ever fail, `undefined` is
/// returned rather than a panic.
fn to_js<T: Serialize>(value: &T) -> JsValue {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    value.serialize(&serializer).unwrap_or(JsValue::UNDEFINED)
}

/// The sans-IO ComfyUI session, driven from JavaScript. Every time argument
/// is a `performance.now()` reading in milliseconds; every time it returns
/// is on the same clock.
#[wasm_bindgen]
pub struct WasmSession {
    session: Session,
    clock: Clock,
}

#[wasm_bindgen]
impl WasmSession {
    /// A session that has not started; `options` is a `SessionOptions`
    /// object (or `undefined` for the defaults). Throws
    /// `ComfywireCoreError` (`invalid_options`) on bad options.
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue, now: f64) -> Result<WasmSession, JsValue> {
        let options = if options.is_undefined() || options.is_null() {
            SessionOptions::default()
        } else {
            // Through JSON text so that unknown keys are refused
            // (`deny_unknown_fields`) and `null` stays distinct from absent.
            let text = js_sys::JSON::stringify(&options)
                .ok()
                .and_then(|t| t.as_string())
                .ok_or_else(|| CoreError::InvalidOptions {
                    message: "the options are not a JSON-compatible object".into(),
                })?;
            SessionOptions::from_json(&text)?
        };
        Ok(WasmSession::with_options(options, now)?)
    }

    // ---- getters ----

    /// The client id in use (given, or adopted from the server's sid).
    #[wasm_bindgen(js_name = clientId)]
    pub fn client_id(&self) -> Option<String> {
        self.session.client_id().map(str::to_owned)
    }

    /// The connection status (`StatusDto`).
    pub fn status(&self) -> JsValue {
        to_js(&self.status_dto())
    }

    /// The record of a prompt, in flight or finished (`RecordDto`), or
    /// `undefined`.
    pub fn execution(&self, prompt_id: &str) -> JsValue {
        match self.session.execution(prompt_id) {
            Some(record) => to_js(&RecordDto::new(record, &self.clock)),
            None => JsValue::UNDEFINED,
        }
    }

    /// The ring of finished executions, oldest first (`RecordDto[]`).
    pub fn history(&self) -> JsValue {
        let records: Vec<RecordDto> = self
            .session
            .history()
            .iter()
            .map(|r| RecordDto::new(r, &self.clock))
            .collect();
        to_js(&records)
    }

    /// Counters: `{frames, badFrames, reconnects, consecutiveFailures,
    /// coalescedProgress, coalescedPreviews}`.
    pub fn stats(&self) -> JsValue {
        let s = self.session.stats();
        to_js(&serde_json::json!({
            "frames": s.frames,
            "badFrames": s.bad_frames,
            "reconnects": s.reconnects,
            "consecutiveFailures": s.consecutive_failures,
            "coalescedProgress": s.emitted.coalesced_progress,
            "coalescedPreviews": s.emitted.coalesced_previews,
        }))
    }

    /// When the last frame arrived (ms), if one has.
    #[wasm_bindgen(js_name = lastFrameAt)]
    pub fn last_frame_at(&self) -> Option<f64> {
        self.session.last_frame_at().map(|t| self.clock.millis(t))
    }

    // ---- mutators ----

    /// Starts connecting.
    pub fn connect(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.connect(now);
    }

    /// Skips the backoff wait.
    #[wasm_bindgen(js_name = retryNow)]
    pub fn retry_now(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.retry_now(now);
    }

    /// Closes the socket and stops retrying until `resume`.
    pub fn pause(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.pause(now);
    }

    /// Reconnects after `pause`.
    pub fn resume(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.resume(now);
    }

    /// The network changed: check a live socket at once, or retry now.
    #[wasm_bindgen(js_name = networkChanged)]
    pub fn network_changed(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.network_changed(now);
    }

    /// Closes for good.
    pub fn close(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.close(now);
    }

    /// Reserves a prompt id before its `POST /prompt`.
    #[wasm_bindgen(js_name = trackPrompt)]
    pub fn track_prompt(&mut self, prompt_id: &str, graph_nodes: Option<u32>, now: f64) {
        let now = self.clock.instant(now);
        self.session
            .track_prompt(prompt_id, graph_nodes.map(|n| n as usize), now);
    }

    /// Reconciles every in-flight prompt of ours over HTTP now.
    pub fn reconcile(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.reconcile(now);
    }

    // ---- inputs ----

    /// The socket opened.
    #[wasm_bindgen(js_name = handleConnected)]
    pub fn handle_connected(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.handle_connected(now);
    }

    /// A connect attempt failed.
    #[wasm_bindgen(js_name = handleConnectFailed)]
    pub fn handle_connect_failed(&mut self, message: String, now: f64) {
        let now = self.clock.instant(now);
        self.session
            .handle_connect_failed(ConnectionError::ConnectFailed { message }, now);
    }

    /// The open socket closed or failed.
    #[wasm_bindgen(js_name = handleDisconnected)]
    pub fn handle_disconnected(&mut self, code: Option<u16>, message: String, now: f64) {
        let now = self.clock.instant(now);
        self.session
            .handle_disconnected(ConnectionError::Lost { code, message }, now);
    }

    /// The liveness check passed (the browser's stand-in for a pong).
    #[wasm_bindgen(js_name = handlePong)]
    pub fn handle_pong(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.handle_pong(now);
    }

    /// A text frame arrived (a JavaScript string is valid UTF-16, so it
    /// arrives as valid UTF-8).
    #[wasm_bindgen(js_name = handleText)]
    pub fn handle_text(&mut self, text: String, now: f64) {
        let now = self.clock.instant(now);
        self.session.handle_text(text, now);
    }

    /// A binary frame arrived.
    #[wasm_bindgen(js_name = handleBinary)]
    pub fn handle_binary(&mut self, data: &[u8], now: f64) {
        let now = self.clock.instant(now);
        self.session
            .handle_frame(Frame::Binary(Bytes::copy_from_slice(data)), now);
    }

    /// `POST /prompt` answered 200. `node_errors` is the JSON text of the
    /// answer's `node_errors` (`"{}"` when absent). Throws
    /// `ComfywireCoreError` (`invalid_json`) when it is not JSON.
    #[wasm_bindgen(js_name = promptAccepted)]
    pub fn prompt_accepted(
        &mut self,
        prompt_id: String,
        number: Option<f64>,
        node_errors: &str,
        now: f64,
    ) -> Result<(), JsValue> {
        let node_errors: Value =
            serde_json::from_str(node_errors).map_err(|e| CoreError::InvalidJson {
                what: "node_errors",
                message: e.to_string(),
            })?;
        let number = number
            .filter(|n| n.is_finite() && *n >= 0.0)
            .map(|n| n as u64);
        let now = self.clock.instant(now);
        self.session.handle_http(
            HttpReply::PromptAccepted {
                prompt_id,
                number,
                node_errors,
            },
            now,
        );
        Ok(())
    }

    /// `POST /prompt` was refused or failed: nothing was queued.
    #[wasm_bindgen(js_name = promptRejected)]
    pub fn prompt_rejected(&mut self, prompt_id: String, now: f64) {
        let now = self.clock.instant(now);
        self.session
            .handle_http(HttpReply::PromptRejected { prompt_id }, now);
    }

    /// The body of `GET /history/{prompt_id}`. A body that is not a
    /// history answer counts as a failed request (retried by the session).
    #[wasm_bindgen(js_name = handleHistory)]
    pub fn handle_history(&mut self, prompt_id: String, body: &str, now: f64) {
        let request = HttpRequest::History {
            prompt_id: prompt_id.clone(),
        };
        let reply = match serde_json::from_str::<Value>(body) {
            Ok(body) => match HistoryEntry::from_response(&prompt_id, &body) {
                Ok(entry) => HttpReply::History { prompt_id, entry },
                Err(error) => HttpReply::Failed { request, error },
            },
            Err(e) => HttpReply::Failed {
                request,
                error: format!("history answer is not JSON: {e}"),
            },
        };
        let now = self.clock.instant(now);
        self.session.handle_http(reply, now);
    }

    /// The body of `GET /queue`. A body that is not a queue answer counts
    /// as a failed request.
    #[wasm_bindgen(js_name = handleQueue)]
    pub fn handle_queue(&mut self, body: &str, now: f64) {
        let reply = match serde_json::from_str::<Value>(body)
            .map_err(|e| format!("queue answer is not JSON: {e}"))
            .and_then(|b| QueueSnapshot::from_json(&b))
        {
            Ok(snapshot) => HttpReply::Queue(snapshot),
            Err(error) => HttpReply::Failed {
                request: HttpRequest::Queue,
                error,
            },
        };
        let now = self.clock.instant(now);
        self.session.handle_http(reply, now);
    }

    /// A request of the session failed (network, status, timeout).
    /// `prompt_id` names the prompt of a `history` request and is
    /// `undefined` for `queue`.
    #[wasm_bindgen(js_name = handleHttpFailed)]
    pub fn handle_http_failed(
        &mut self,
        kind: &str,
        prompt_id: Option<String>,
        error: String,
        now: f64,
    ) -> Result<(), JsValue> {
        let request = match (kind, prompt_id) {
            ("history", Some(prompt_id)) => HttpRequest::History { prompt_id },
            ("queue", None) => HttpRequest::Queue,
            (kind, id) => {
                return Err(CoreError::InvalidRequest {
                    message: format!("kind {kind:?} with prompt id {id:?}"),
                }
                .into());
            }
        };
        let now = self.clock.instant(now);
        self.session
            .handle_http(HttpReply::Failed { request, error }, now);
        Ok(())
    }

    /// Call at (or after) `nextTimeout()`.
    #[wasm_bindgen(js_name = handleTimeout)]
    pub fn handle_timeout(&mut self, now: f64) {
        let now = self.clock.instant(now);
        self.session.handle_timeout(now);
    }

    // ---- outputs ----

    /// Every queued command, in order (`CommandDto[]`).
    #[wasm_bindgen(js_name = drainCommands)]
    pub fn drain_commands(&mut self) -> js_sys::Array {
        let out = js_sys::Array::new();
        while let Some(command) = self.session.poll_command() {
            out.push(&to_js(&CommandDto::from(command)));
        }
        out
    }

    /// Every queued event, in order (`EventDto[]`).
    #[wasm_bindgen(js_name = drainEvents)]
    pub fn drain_events(&mut self) -> js_sys::Array {
        let out = js_sys::Array::new();
        while let Some(event) = self.session.poll_event() {
            if let Some(dto) = EventDto::new(event, &self.clock) {
                out.push(&to_js(&dto));
            }
        }
        out
    }

    /// When `handleTimeout` must be called next (ms), if ever.
    #[wasm_bindgen(js_name = nextTimeout)]
    pub fn next_timeout(&self) -> Option<f64> {
        self.session.poll_timeout().map(|t| self.clock.millis(t.at))
    }

    /// Why the next timeout is wanted (`reconnect`, `heartbeat`,
    /// `heartbeat_timeout`, `backoff_reset`, `poll`, `watchdog`, `probe`,
    /// `attach_poll`, `reconcile`, `flush`), if one is.
    #[wasm_bindgen(js_name = timeoutReason)]
    pub fn timeout_reason(&self) -> Option<String> {
        self.session
            .poll_timeout()
            .map(|t| t.reason.name().to_owned())
    }
}

impl WasmSession {
    /// A session from already-decoded options (for Rust callers and tests).
    pub fn with_options(options: SessionOptions, now: f64) -> Result<WasmSession, CoreError> {
        Ok(WasmSession {
            session: Session::new(options.into_config()?),
            clock: Clock::new(now),
        })
    }

    /// The status as a DTO.
    pub fn status_dto(&self) -> StatusDto {
        StatusDto::new(&self.session.status(), &self.clock)
    }
}
