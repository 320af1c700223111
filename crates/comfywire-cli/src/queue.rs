//! `comfywire queue` and `comfywire history`: the server's queue and
//! history over HTTP.

use comfywire_client::{Client, QueueSnapshot};
use serde_json::{Value, json};

use crate::args::{HistoryArgs, QueueAction, QueueArgs};
use crate::connect_config;
use crate::exit::{self, Failure};
use crate::output;

/// `comfywire queue`.
pub async fn command(args: QueueArgs) -> Result<(), Failure> {
    let client = connect_config::start(connect_config::client_config(&args.server)?).await?;
    let result = queue(&client, args).await;
    client.close().await;
    result
}

async fn queue(client: &Client, args: QueueArgs) -> Result<(), Failure> {
    match args.action.unwrap_or(QueueAction::List) {
        QueueAction::List => {
            let snapshot = client.queue().await?;
            if args.json {
                output::emit(&queue_json(&snapshot));
            } else {
                print_queue(&snapshot);
            }
        }
        QueueAction::Delete { ids } => delete(client, &ids, args.json).await?,
        QueueAction::Clear => {
            client.clear_queue().await?;
            report(
                args.json,
                json!({"cleared": true}),
                "cleared the pending queue",
            );
        }
        QueueAction::Interrupt { id } => {
            if client.interrupt(&id).await? {
                report(
                    args.json,
                    json!({"interrupted": id}),
                    &format!("interrupted {id}"),
                );
            } else {
                return Err(Failure::new(
                    exit::FAILURE,
                    format!(
                        "prompt {id} is not running; nothing was interrupted (a pending prompt is removed with `queue delete`)"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// Deletes the given prompts that are pending, and says which were not:
/// the server answers `/queue` delete the same whether or not an id was
/// there, so the queue is read before and after.
async fn delete(client: &Client, ids: &[String], json: bool) -> Result<(), Failure> {
    let before = client.queue().await?;
    let (pending, other): (Vec<&String>, Vec<&String>) =
        ids.iter().partition(|id| before.is_pending(id));
    let running: Vec<&String> = other
        .iter()
        .copied()
        .filter(|id| before.is_running(id))
        .collect();
    let unknown: Vec<&String> = other
        .iter()
        .copied()
        .filter(|id| !before.is_running(id))
        .collect();
    if !pending.is_empty() {
        let pending: Vec<String> = pending.iter().map(|s| (*s).clone()).collect();
        client.delete(&pending).await?;
    }
    let after = client.queue().await?;
    let deleted: Vec<&String> = pending
        .iter()
        .copied()
        .filter(|id| !after.is_pending(id))
        .collect();
    let mut notes = Vec::new();
    if !running.is_empty() {
        notes.push(format!(
            "running, so not deleted (use `queue interrupt`): {}",
            join(&running)
        ));
    }
    if !unknown.is_empty() {
        notes.push(format!("not in the queue: {}", join(&unknown)));
    }
    report(
        json,
        json!({"deleted": deleted, "running": running, "not_found": unknown}),
        &match deleted.len() {
            0 => "deleted nothing".to_owned(),
            n => format!("deleted {n} pending prompt(s): {}", join(&deleted)),
        },
    );
    if !json {
        for note in &notes {
            eprintln!("{note}");
        }
    }
    if deleted.len() < ids.len() {
        return Err(Failure::new(
            exit::FAILURE,
            format!(
                "{} of {} prompt(s) not deleted",
                ids.len() - deleted.len(),
                ids.len()
            ),
        ));
    }
    Ok(())
}

fn join(ids: &[&String]) -> String {
    ids.iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A queue number as the server wrote it: integers without a fraction.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

/// A plain table with a header row, for stdout.
fn table(header: &[&str], rows: impl IntoIterator<Item = Vec<String>>) -> comfy_table::Table {
    let mut table = comfy_table::Table::new();
    table
        .load_style(comfy_table::TableStyle::new())
        .set_header(header.iter().copied());
    for row in rows {
        table.add_row(row);
    }
    table
}

fn report(json: bool, value: Value, text: &str) {
    if json {
        output::emit(&value);
    } else {
        crate::outln!("{text}");
    }
}

fn queue_json(snapshot: &QueueSnapshot) -> Value {
    let items = |list: &[comfywire_client::proto::QueueItem]| -> Vec<Value> {
        list.iter()
            .map(
                |i| json!({"prompt_id": i.prompt_id, "number": number(i.number), "client_id": i.client_id}),
            )
            .collect()
    };
    json!({"running": items(&snapshot.running), "pending": items(&snapshot.pending)})
}

fn print_queue(snapshot: &QueueSnapshot) {
    if snapshot.is_empty() {
        crate::outln!("queue is empty");
        return;
    }
    let rows = [
        ("running", &snapshot.running),
        ("pending", &snapshot.pending),
    ]
    .into_iter()
    .flat_map(|(state, list)| {
        list.iter().map(move |item| {
            vec![
                state.to_owned(),
                number(item.number).to_string(),
                item.prompt_id.clone(),
                item.client_id.clone().unwrap_or_else(|| "-".into()),
            ]
        })
    });
    crate::outln!("{}", table(&["state", "number", "prompt", "client"], rows));
}

/// `comfywire history`.
pub async fn history(args: HistoryArgs) -> Result<(), Failure> {
    let client = connect_config::start(connect_config::client_config(&args.server)?).await?;
    let result = history_of(&client, &args).await;
    client.close().await;
    result
}

async fn history_of(client: &Client, args: &HistoryArgs) -> Result<(), Failure> {
    match &args.id {
        Some(id) => {
            let Some(entry) = client.server_history(id).await? else {
                return Err(Failure::new(
                    exit::FAILURE,
                    format!("the server has no history for {id}"),
                ));
            };
            if args.json {
                output::emit(&entry);
            } else {
                crate::outln!("{}", entry_line(id, &entry));
                for (node, out) in entry
                    .get("outputs")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    crate::outln!("  output of node {node}: {}", output::describe_output(out));
                    for item in out
                        .as_object()
                        .into_iter()
                        .flatten()
                        .flat_map(|(_, v)| v.as_array().into_iter().flatten())
                    {
                        if let Some(name) = item.get("filename").and_then(Value::as_str) {
                            crate::outln!("    {name}");
                        }
                    }
                }
            }
        }
        None => {
            let list = client.server_history_list(args.max).await?;
            if args.json {
                output::emit(&list);
            } else {
                let entries = list.as_object().cloned().unwrap_or_default();
                if entries.is_empty() {
                    crate::outln!("history is empty");
                }
                let rows = entries.iter().map(|(id, entry)| entry_row(id, entry));
                if !entries.is_empty() {
                    crate::outln!(
                        "{}",
                        table(&["prompt", "number", "status", "outputs"], rows)
                    );
                }
            }
        }
    }
    Ok(())
}

fn entry_line(id: &str, entry: &Value) -> String {
    entry_row(id, entry).join("  ")
}

/// A history entry's id, queue number, status and count of output nodes.
fn entry_row(id: &str, entry: &Value) -> Vec<String> {
    let status = entry
        .pointer("/status/status_str")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let number = entry
        .pointer("/prompt/0")
        .and_then(Value::as_f64)
        .map(|n| number(n).to_string())
        .unwrap_or_else(|| "-".into());
    let outputs = entry
        .get("outputs")
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0);
    vec![
        id.to_owned(),
        number,
        status.to_owned(),
        outputs.to_string(),
    ]
}
