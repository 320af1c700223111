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
        QueueAction::Delete { ids } => {
            client.delete(&ids).await?;
            report(
                args.json,
                json!({"deleted": ids}),
                &format!(
                    "deleted {} pending prompt(s) (running ones are untouched; see `queue interrupt`)",
                    ids.len()
                ),
            );
        }
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

fn report(json: bool, value: Value, text: &str) {
    if json {
        output::emit(&value);
    } else {
        println!("{text}");
    }
}

fn queue_json(snapshot: &QueueSnapshot) -> Value {
    let items = |list: &[comfywire_client::proto::QueueItem]| -> Vec<Value> {
        list.iter()
            .map(
                |i| json!({"prompt_id": i.prompt_id, "number": i.number, "client_id": i.client_id}),
            )
            .collect()
    };
    json!({"running": items(&snapshot.running), "pending": items(&snapshot.pending)})
}

fn print_queue(snapshot: &QueueSnapshot) {
    if snapshot.is_empty() {
        println!("queue is empty");
        return;
    }
    for (state, list) in [
        ("running", &snapshot.running),
        ("pending", &snapshot.pending),
    ] {
        for item in list.iter() {
            println!(
                "{state:<8} #{:<5} {}  client {}",
                item.number,
                item.prompt_id,
                item.client_id.as_deref().unwrap_or("-")
            );
        }
    }
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
                println!("{}", entry_line(id, &entry));
                for (node, out) in entry
                    .get("outputs")
                    .and_then(Value::as_object)
                    .into_iter()
                    .flatten()
                {
                    println!("  output of node {node}: {}", output::describe_output(out));
                    for item in out
                        .as_object()
                        .into_iter()
                        .flatten()
                        .flat_map(|(_, v)| v.as_array().into_iter().flatten())
                    {
                        if let Some(name) = item.get("filename").and_then(Value::as_str) {
                            println!("    {name}");
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
                    println!("history is empty");
                }
                for (id, entry) in &entries {
                    println!("{}", entry_line(id, entry));
                }
            }
        }
    }
    Ok(())
}

fn entry_line(id: &str, entry: &Value) -> String {
    let status = entry
        .pointer("/status/status_str")
        .and_then(Value::as_str)
        .unwrap_or("?");
    let number = entry
        .pointer("/prompt/0")
        .map(|n| format!("#{n}"))
        .unwrap_or_default();
    let outputs = entry
        .get("outputs")
        .and_then(Value::as_object)
        .map(|m| m.len())
        .unwrap_or(0);
    format!("{id}  {number:<6} {status:<8} {outputs} output node(s)")
}
