//! The HTTP side: ComfyUI's routes (with and without `/api`), the WebSocket
//! upgrade on `/ws`, and the `/mock/*` control routes.

use crate::fault::{self, CutAt, Fault};
use crate::ids;
use crate::ledger::{LedgerEntry, ReplyFate, RunEnd};
use crate::multipart;
use crate::pyjson;
use crate::state::{Job, Shared};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderValue, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY,
    UPGRADE,
};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Every answer's body: whole, or cut on purpose ([`Fault::CutPromptReply`]).
pub(crate) type Body = UnsyncBoxBody<Bytes, std::io::Error>;

type Reply = Response<Body>;

/// The connection of a request is closed without any answer
/// ([`CutAt::Headers`]); hyper drops it when the service fails.
#[derive(Debug)]
pub(crate) struct CutConnection;

impl std::fmt::Display for CutConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection cut by the mock (CutPromptReply)")
    }
}

impl std::error::Error for CutConnection {}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Reply {
    let mut response = Response::new(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(CONTENT_TYPE, value);
    }
    response
}

fn json_reply(status: StatusCode, value: &Value) -> Reply {
    reply(
        status,
        "application/json; charset=utf-8",
        pyjson::to_string(value),
    )
}

fn empty_ok() -> Reply {
    reply(StatusCode::OK, "text/plain", Bytes::new())
}

fn not_found() -> Reply {
    json_reply(StatusCode::NOT_FOUND, &json!({"error": "not found"}))
}

/// `key=value` pairs of a query string, percent-decoded.
fn query(req: &Request<Incoming>) -> HashMap<String, String> {
    req.uri()
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok());
                match hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Routes one request; `Err` closes its connection without an answer.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    req: Request<Incoming>,
) -> Result<Reply, CutConnection> {
    let method = req.method().clone();
    let full_path = req.uri().path().to_owned();
    if let Some(control) = full_path.strip_prefix("/mock/") {
        let control = control.to_owned();
        let params = query(&req);
        let body = body_json(req).await;
        return Ok(mock_route(&shared, &method, &control, &params, body).await);
    }
    let path = full_path
        .strip_prefix("/api")
        .filter(|p| p.starts_with('/'))
        .unwrap_or(&full_path)
        .to_owned();
    if path == "/ws" && method == Method::GET {
        return Ok(upgrade(shared, req));
    }
    let params = query(&req);
    if method == Method::GET {
        return Ok(get_route(&shared, &path, &params));
    }
    if method != Method::POST {
        return Ok(not_found());
    }
    if path == "/upload/image" {
        return Ok(upload(&shared, req).await);
    }
    let body = body_json(req).await;
    Ok(match path.as_str() {
        "/prompt" => return submit(&shared, body).deliver().await,
        "/queue" => edit_queue(&shared, body.unwrap_or(Value::Null)),
        "/history" => edit_history(&shared, body.unwrap_or(Value::Null)),
        "/interrupt" => interrupt(&shared, body.unwrap_or(Value::Null)),
        _ => not_found(),
    })
}

async fn body_bytes(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

/// The body as JSON; an empty body reads as `{}`, a malformed one as `None`.
async fn body_json(req: Request<Incoming>) -> Option<Value> {
    let bytes = body_bytes(req).await;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Some(Value::Object(Map::new()));
    }
    serde_json::from_slice(&bytes).ok()
}

fn upgrade(shared: Arc<Shared>, mut req: Request<Incoming>) -> Reply {
    let key = req.headers().get(SEC_WEBSOCKET_KEY).cloned();
    let wants_ws = req
        .headers()
        .get(UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let Some(key) = key.filter(|_| wants_ws) else {
        return reply(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "Expected a WebSocket upgrade",
        );
    };
    {
        let mut inner = shared.lock();
        if let Some((status, until)) = inner.block_websockets {
            if until.is_none_or(|at| std::time::Instant::now() < at) {
                inner.stats.connects_refused += 1;
                let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN);
                let text = format!(
                    "{} {}",
                    status.as_str(),
                    status.canonical_reason().unwrap_or_default()
                );
                return reply(status, "text/plain", text);
            }
            inner.block_websockets = None;
        }
        if inner.refuse_connects > 0 {
            inner.refuse_connects -= 1;
            inner.stats.connects_refused += 1;
            return reply(
                StatusCode::SERVICE_UNAVAILABLE,
                "text/plain",
                "503 Service Unavailable",
            );
        }
    }
    let client_id = query(&req)
        .remove("clientId")
        .filter(|c| !c.is_empty())
        .unwrap_or_else(ids::new_sid);
    let on_upgrade = hyper::upgrade::on(&mut req);
    let task_shared = shared.clone();
    let task = tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        // The server sends single frames of any size; so may the mock.
        let config = WebSocketConfig::default()
            .max_message_size(None)
            .max_frame_size(None);
        let ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(config))
                .await;
        crate::ws::serve(task_shared, ws, client_id).await;
    });
    shared.track(task);
    let mut response = reply(StatusCode::SWITCHING_PROTOCOLS, "text/plain", Bytes::new());
    response.headers_mut().remove(CONTENT_TYPE);
    let headers = response.headers_mut();
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    }
    response
}

fn get_route(shared: &Shared, path: &str, params: &HashMap<String, String>) -> Reply {
    match path {
        "/prompt" => {
            let remaining = shared.lock().queue_remaining();
            json_reply(
                StatusCode::OK,
                &json!({"exec_info": {"queue_remaining": remaining}}),
            )
        }
        "/queue" => {
            let inner = shared.lock();
            let running: Vec<Value> = inner.running.iter().map(|r| r.job.queue_item()).collect();
            let pending: Vec<Value> = inner.queue.iter().map(Job::queue_item).collect();
            json_reply(
                StatusCode::OK,
                &json!({"queue_running": running, "queue_pending": pending}),
            )
        }
        "/history" => history_page(shared, params),
        "/view" => view(shared, params),
        "/system_stats" => json_reply(StatusCode::OK, &system_stats()),
        "/object_info" => json_reply(StatusCode::OK, &object_info(shared)),
        "/features" => json_reply(StatusCode::OK, &crate::ws::server_features()),
        _ => match path.strip_prefix("/history/") {
            Some(id) => {
                let mut inner = shared.lock();
                if inner.history_unreadable.contains(id) {
                    inner.stats.history_unreadable_answers += 1;
                    return reply(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "text/plain",
                        "500 Internal Server Error",
                    );
                }
                let mut map = Map::new();
                if let Some(entry) = inner.history.get(id) {
                    map.insert(id.to_owned(), entry.clone());
                }
                json_reply(StatusCode::OK, &Value::Object(map))
            }
            None => not_found(),
        },
    }
}

/// Every node class the recorded graphs use, minus the hidden ones, in
/// `/object_info`'s shape (the mock has no real input specs to give).
fn object_info(shared: &Shared) -> Value {
    let hidden = shared.lock().hidden_node_classes.clone();
    let mut classes = Map::new();
    for class in shared.library.node_classes() {
        if hidden.contains(&class) {
            continue;
        }
        classes.insert(
            class.clone(),
            json!({"name": class, "display_name": class, "category": "mock",
                   "input": {"required": {}}, "output": [], "output_node": false}),
        );
    }
    Value::Object(classes)
}

/// The first node of `graph` whose class is hidden on this server, as
/// ComfyUI refuses a graph naming a class it does not have.
fn missing_class(shared: &Shared, graph: &Value) -> Option<Value> {
    let inner = shared.lock();
    let (node, class) = graph.as_object()?.iter().find_map(|(id, node)| {
        let class = node.get("class_type")?.as_str()?;
        inner
            .hidden_node_classes
            .contains(class)
            .then(|| (id.clone(), class.to_owned()))
    })?;
    let message = format!("Cannot execute because node {class} does not exist.");
    Some(json!({
        "error": {"type": "invalid_prompt", "message": message,
                  "details": format!("Node ID '#{node}'"), "extra_info": {}},
        "node_errors": {},
    }))
}

fn history_page(shared: &Shared, params: &HashMap<String, String>) -> Reply {
    let inner = shared.lock();
    let total = inner.history.len();
    let max_items = params
        .get("max_items")
        .and_then(|v| v.parse::<usize>().ok());
    let offset = params.get("offset").and_then(|v| v.parse::<i64>().ok());
    let start = match (offset, max_items) {
        (Some(o), _) if o >= 0 => usize::try_from(o).unwrap_or(usize::MAX).min(total),
        (_, Some(n)) => total.saturating_sub(n),
        _ => 0,
    };
    let count = max_items.unwrap_or(total);
    let page: Map<String, Value> = inner
        .history
        .iter()
        .skip(start)
        .take(count)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json_reply(StatusCode::OK, &Value::Object(page))
}

fn system_stats() -> Value {
    json!({
        "system": {
            "os": "posix",
            "ram_total": 25_769_803_776u64,
            "ram_free": 20_000_000_000u64,
            "comfyui_version": "0.3.64",
            "required_frontend_version": "1.27.10",
            "installed_templates_version": null,
            "required_templates_version": null,
            "python_version": "3.11.7 (comfywire-mock)",
            "pytorch_version": "2.8.0+cpu",
            "embedded_python": false,
            "argv": ["main.py", "--cpu", "--listen", "127.0.0.1", "--port", "8188"]
        },
        "devices": [{
            "name": "cpu",
            "type": "cpu",
            "index": null,
            "vram_total": 25_769_803_776u64,
            "vram_free": 20_000_000_000u64,
            "torch_vram_total": 25_769_803_776u64,
            "torch_vram_free": 20_000_000_000u64
        }]
    })
}

fn view(shared: &Shared, params: &HashMap<String, String>) -> Reply {
    let Some(filename) = params.get("filename").filter(|f| !f.is_empty()) else {
        return reply(StatusCode::BAD_REQUEST, "text/plain", "400: Bad Request");
    };
    let subfolder = params.get("subfolder").cloned().unwrap_or_default();
    let kind = params
        .get("type")
        .cloned()
        .unwrap_or_else(|| "output".to_owned());
    if filename.starts_with('/') || filename.contains("..") {
        return reply(StatusCode::BAD_REQUEST, "text/plain", "400: Bad Request");
    }
    if subfolder.starts_with('/') || subfolder.contains("..") {
        return reply(StatusCode::FORBIDDEN, "text/plain", "403: Forbidden");
    }
    let inner = shared.lock();
    if let Some(bytes) = inner
        .uploads
        .get(&(kind.clone(), subfolder.clone(), filename.clone()))
    {
        return reply(StatusCode::OK, content_type_for(filename), bytes.clone());
    }
    let listed = inner.history.values().any(|entry| {
        entry
            .get("outputs")
            .and_then(Value::as_object)
            .is_some_and(|outputs| {
                outputs
                    .values()
                    .any(|ui| lists_file(ui, filename, &subfolder, &kind))
            })
    });
    let running = inner
        .running_outputs
        .iter()
        .any(|ui| lists_file(ui, filename, &subfolder, &kind));
    if listed || running {
        return reply(StatusCode::OK, "image/png", crate::png::for_name(filename));
    }
    reply(StatusCode::NOT_FOUND, "text/plain", "404: Not Found")
}

fn lists_file(ui: &Value, filename: &str, subfolder: &str, kind: &str) -> bool {
    let Some(ui) = ui.as_object() else {
        return false;
    };
    ui.values()
        .filter_map(Value::as_array)
        .flatten()
        .any(|item| {
            item.get("filename").and_then(Value::as_str) == Some(filename)
                && item
                    .get("subfolder")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    == subfolder
                && item.get("type").and_then(Value::as_str).unwrap_or("output") == kind
        })
}

fn content_type_for(name: &str) -> &'static str {
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".png") {
        "image/png"
    } else if lower.ends_with(".jpg") || lower.ends_with(".jpeg") {
        "image/jpeg"
    } else if lower.ends_with(".webp") {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}

async fn upload(shared: &Shared, req: Request<Incoming>) -> Reply {
    let boundary = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart::boundary);
    let body = body_bytes(req).await;
    let bad = || reply(StatusCode::BAD_REQUEST, "text/plain", "400: Bad Request");
    let Some(parts) = boundary.and_then(|b| multipart::parse(&body, &b)) else {
        return bad();
    };
    let field = |name: &str| {
        parts
            .iter()
            .find(|p| p.name == name && p.filename.is_none())
            .map(|p| String::from_utf8_lossy(&p.body).into_owned())
    };
    let Some(image) = parts
        .iter()
        .find(|p| p.name == "image" && p.filename.is_some())
    else {
        return bad();
    };
    let Some(name) = image.filename.clone().filter(|n| !n.is_empty()) else {
        return bad();
    };
    let kind = field("type")
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "input".to_owned());
    let subfolder = field("subfolder").unwrap_or_default();
    let overwrite = matches!(field("overwrite").as_deref(), Some("true" | "1"));
    if name.contains("..") || name.starts_with('/') || subfolder.contains("..") {
        return bad();
    }
    let mut inner = shared.lock();
    let mut final_name = name.clone();
    if !overwrite {
        let (stem, ext) = match name.rsplit_once('.') {
            Some((stem, ext)) => (stem.to_owned(), format!(".{ext}")),
            None => (name.clone(), String::new()),
        };
        let mut n = 1;
        // Same name and same content is reused; different content is renamed.
        while let Some(existing) =
            inner
                .uploads
                .get(&(kind.clone(), subfolder.clone(), final_name.clone()))
        {
            if existing == &image.body {
                break;
            }
            final_name = format!("{stem} ({n}){ext}");
            n += 1;
        }
    }
    inner.uploads.insert(
        (kind.clone(), subfolder.clone(), final_name.clone()),
        image.body.clone(),
    );
    json_reply(
        StatusCode::OK,
        &json!({"name": final_name, "subfolder": subfolder, "type": kind}),
    )
}

/// The 400 answer to a body without `prompt`.
fn no_prompt(shared: &Shared) -> Value {
    shared
        .library
        .scenarios
        .iter()
        .find_map(|s| s.no_prompt.clone())
        .unwrap_or_else(|| {
            json!({"error": {"type": "no_prompt", "message": "No prompt provided", "details": "No prompt provided", "extra_info": {}}, "node_errors": {}})
        })
}

/// A recorded 400 with node errors, for [`Fault::ValidationErrorNextPrompt`].
fn recorded_validation_error(shared: &Shared) -> Value {
    let posts = || shared.library.scenarios.iter().flat_map(|s| s.posts.iter());
    posts()
        .find(|p| {
            p.status == 400
                && p.response
                    .get("node_errors")
                    .and_then(Value::as_object)
                    .is_some_and(|m| !m.is_empty())
        })
        .or_else(|| posts().find(|p| p.status == 400))
        .map(|p| p.response.clone())
        .unwrap_or_else(|| no_prompt(shared))
}

/// What `POST /prompt` answers, and how the answer goes out.
struct Answer {
    status: StatusCode,
    body: Value,
    fate: ReplyFate,
    delay_ms: u64,
    cut_at: CutAt,
}

impl Answer {
    fn now(status: StatusCode, body: Value) -> Answer {
        Answer {
            status,
            body,
            fate: ReplyFate::Sent,
            delay_ms: 0,
            cut_at: CutAt::Body,
        }
    }

    /// The whole answer; a JSON string body goes out as plain text.
    fn whole(&self) -> Reply {
        match &self.body {
            Value::String(text) => reply(self.status, "text/plain", text.clone()),
            value => json_reply(self.status, value),
        }
    }

    /// Sends the answer as its fate says.
    async fn deliver(self) -> Result<Reply, CutConnection> {
        match self.fate {
            ReplyFate::Sent => Ok(self.whole()),
            ReplyFate::Delayed => {
                tokio::time::sleep(Duration::from_millis(self.delay_ms)).await;
                Ok(self.whole())
            }
            ReplyFate::Cut => match self.cut_at {
                CutAt::Headers => Err(CutConnection),
                CutAt::Body => Ok(cut_reply(self.status, &self.body)),
            },
        }
    }
}

/// The status line, the headers with the whole body's length, half of the
/// body, then an error that makes hyper close the connection.
fn cut_reply(status: StatusCode, value: &Value) -> Reply {
    let text = Bytes::from(pyjson::to_string(value));
    let length = text.len();
    let half = text.slice(..length / 2);
    let cut = futures_util::stream::iter([Ok(Frame::data(half))]).chain(
        futures_util::stream::once(async {
            // Let the half body reach the socket before the abort.
            tokio::time::sleep(Duration::from_millis(20)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::ConnectionAborted,
                "answer cut by the mock (CutPromptReply)",
            ))
        }),
    );
    let mut response = Response::new(StreamBody::new(cut).boxed_unsync());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// Handles `POST /prompt` and writes its ledger entry.
fn submit(shared: &Shared, body: Option<Value>) -> Answer {
    let text = |v: &Value, key: &str| v.get(key).and_then(Value::as_str).map(str::to_owned);
    let requested = body
        .as_ref()
        .and_then(|b| text(b, "prompt_id"))
        .filter(|id| !id.is_empty());
    let client_id = body.as_ref().and_then(|b| text(b, "client_id"));
    let refused = |status: StatusCode, answer: Value| {
        shared.lock().ledger.record(LedgerEntry {
            seq: 0,
            requested_prompt_id: requested.clone(),
            prompt_id: None,
            client_id: client_id.clone(),
            enqueued: false,
            number: None,
            status: status.as_u16(),
            reply: ReplyFate::Sent,
            reply_delay_ms: 0,
            runs: 0,
            end: None,
            ended_at_ms: None,
        });
        Answer::now(status, answer)
    };
    let Some(body) = body else {
        // Python's json.loads raising: aiohttp answers a bare 500.
        return refused(
            StatusCode::INTERNAL_SERVER_ERROR,
            Value::String("500 Internal Server Error".into()),
        );
    };
    let Some(graph) = body.get("prompt").filter(|p| !p.is_null()).cloned() else {
        return refused(StatusCode::BAD_REQUEST, no_prompt(shared));
    };
    if let Some(answer) = missing_class(shared, &graph) {
        return refused(StatusCode::BAD_REQUEST, answer);
    }
    if std::mem::take(&mut shared.lock().validation_error_next_prompt) {
        return refused(StatusCode::BAD_REQUEST, recorded_validation_error(shared));
    }
    let library = &shared.library;
    let mut extra_data = body
        .get("extra_data")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let named = extra_data
        .remove("mock_scenario")
        .and_then(|v| v.as_str().map(str::to_owned))
        .and_then(|name| library.get(&name));
    let chosen = match named {
        Some(scenario) => scenario
            .posts
            .iter()
            .find(|p| p.graph == graph)
            .or_else(|| scenario.posts.iter().find(|p| p.status == 200))
            .or_else(|| scenario.posts.first())
            .map(|post| (scenario, post)),
        None => library.find_post(&graph).or_else(|| {
            let scenario = library.get(&shared.default_scenario)?;
            let post = scenario.posts.iter().find(|p| p.status == 200)?;
            Some((scenario, post))
        }),
    };
    let Some((scenario, post)) = chosen else {
        return refused(StatusCode::BAD_REQUEST, no_prompt(shared));
    };
    let Some(index) = post.prompt_index.filter(|_| post.status == 200) else {
        let status = StatusCode::from_u16(post.status).unwrap_or(StatusCode::BAD_REQUEST);
        return refused(status, post.response.clone());
    };
    let node_errors = post
        .response
        .get("node_errors")
        .cloned()
        .unwrap_or_else(|| json!({}));
    if let Some(client) = &client_id {
        extra_data.insert("client_id".into(), client.clone().into());
    }
    let mut inner = shared.lock();
    let prompt_id = match &requested {
        Some(id) if !inner.ignore_client_prompt_id => id.clone(),
        Some(_) => {
            inner.stats.prompt_ids_replaced += 1;
            ids::new_prompt_id()
        }
        None => ids::new_prompt_id(),
    };
    let (scenario_name, prompt_index) = if std::mem::take(&mut inner.fail_next_prompt) {
        ("execution_error".to_owned(), 0)
    } else {
        (scenario.name.clone(), index)
    };
    let outputs_to_execute = library
        .get(&scenario_name)
        .and_then(|s| s.prompts.get(prompt_index))
        .map(|p| p.outputs_to_execute())
        .unwrap_or_else(|| json!([]));
    let number = inner.counter;
    inner.counter += 1;
    if inner.history_unreadable_next > 0 {
        inner.history_unreadable_next -= 1;
        inner.history_unreadable.insert(prompt_id.clone());
    }
    let mut answer = Answer::now(
        StatusCode::OK,
        json!({"prompt_id": prompt_id, "number": number, "node_errors": node_errors}),
    );
    if let Some(at) = inner.cut_next_prompt_reply.take() {
        inner.stats.prompt_replies_cut += 1;
        answer.fate = ReplyFate::Cut;
        answer.cut_at = at;
    } else if let Some(millis) = inner.delay_next_prompt_reply.take() {
        inner.stats.prompt_replies_delayed += 1;
        answer.fate = ReplyFate::Delayed;
        answer.delay_ms = millis;
    }
    let seq = inner.ledger.record(LedgerEntry {
        seq: 0,
        requested_prompt_id: requested,
        prompt_id: Some(prompt_id.clone()),
        client_id: client_id.clone(),
        enqueued: true,
        number: Some(number),
        status: 200,
        reply: answer.fate,
        reply_delay_ms: answer.delay_ms,
        runs: 0,
        end: None,
        ended_at_ms: None,
    });
    inner.queue.push_back(Job {
        seq,
        prompt_id,
        number,
        graph,
        extra_data: Value::Object(extra_data),
        client_id,
        scenario: scenario_name,
        prompt_index,
        outputs_to_execute,
    });
    inner.stats.prompts_submitted += 1;
    inner.broadcast_status();
    drop(inner);
    shared.work.notify_one();
    answer
}

fn id_list(body: &Value) -> Vec<String> {
    body.get("delete")
        .and_then(Value::as_array)
        .map(|ids| {
            ids.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn wants_clear(body: &Value) -> bool {
    body.get("clear").and_then(Value::as_bool) == Some(true)
}

fn edit_queue(shared: &Shared, body: Value) -> Reply {
    let mut inner = shared.lock();
    if wants_clear(&body) && !inner.queue.is_empty() {
        let gone: Vec<u64> = inner.queue.drain(..).map(|job| job.seq).collect();
        for seq in gone {
            inner.ledger.ended(seq, RunEnd::Deleted);
        }
        inner.broadcast_status();
    }
    for id in id_list(&body) {
        let (gone, kept): (Vec<Job>, Vec<Job>) =
            inner.queue.drain(..).partition(|job| job.prompt_id == id);
        inner.queue = kept.into();
        for job in &gone {
            inner.ledger.ended(job.seq, RunEnd::Deleted);
        }
        if !gone.is_empty() {
            inner.broadcast_status();
        }
    }
    empty_ok()
}

fn edit_history(shared: &Shared, body: Value) -> Reply {
    let mut inner = shared.lock();
    if wants_clear(&body) {
        inner.history.clear();
    }
    for id in id_list(&body) {
        inner.history.shift_remove(&id);
    }
    empty_ok()
}

fn interrupt(shared: &Shared, body: Value) -> Reply {
    let target = body.get("prompt_id").and_then(Value::as_str);
    {
        let mut inner = shared.lock();
        if let Some(running) = inner.running.as_mut() {
            if target.is_none_or(|id| id == running.job.prompt_id) {
                running.interrupt = true;
            }
        }
    }
    shared.wake.notify_waiters();
    empty_ok()
}

async fn mock_route(
    shared: &Arc<Shared>,
    method: &Method,
    path: &str,
    params: &HashMap<String, String>,
    body: Option<Value>,
) -> Reply {
    let bad = |message: String| json_reply(StatusCode::BAD_REQUEST, &json!({"error": message}));
    match (method.as_str(), path) {
        ("GET", "ledger") => {
            let mut ledger = shared.lock().ledger.snapshot();
            if let Some(client) = params.get("client_id") {
                ledger
                    .entries
                    .retain(|e| e.client_id.as_deref() == Some(client.as_str()));
            }
            match serde_json::to_value(ledger) {
                Ok(value) => json_reply(StatusCode::OK, &value),
                Err(e) => bad(e.to_string()),
            }
        }
        ("GET", "stats") => {
            let stats = shared.lock().stats.clone();
            match serde_json::to_value(stats) {
                Ok(value) => json_reply(StatusCode::OK, &value),
                Err(e) => bad(e.to_string()),
            }
        }
        ("POST", "fault") => match serde_json::from_value::<Fault>(body.unwrap_or(Value::Null)) {
            Ok(f) => {
                fault::apply(shared, f);
                empty_ok()
            }
            Err(e) => bad(e.to_string()),
        },
        ("POST", "restart") => {
            shared.restart();
            empty_ok()
        }
        ("POST", "speed") => match body
            .as_ref()
            .and_then(|b| b.get("speed"))
            .and_then(Value::as_f64)
        {
            Some(speed) if speed >= 0.0 => {
                shared.lock().speed = speed;
                shared.wake.notify_waiters();
                empty_ok()
            }
            _ => bad("expected {\"speed\": number >= 0}".to_owned()),
        },
        ("POST", "firehose") => {
            let body = body.unwrap_or(Value::Null);
            let Some(client_id) = body.get("client_id").and_then(Value::as_str) else {
                return bad("expected {\"client_id\", \"frames\", \"scenario\"?}".to_owned());
            };
            let frames = body.get("frames").and_then(Value::as_u64).unwrap_or(0);
            let scenario = body
                .get("scenario")
                .and_then(Value::as_str)
                .unwrap_or("long_run");
            let sent = crate::firehose::start(shared, client_id, frames, scenario)
                .await
                .unwrap_or(0);
            json_reply(StatusCode::OK, &json!({"frames_sent": sent}))
        }
        _ => not_found(),
    }
}
