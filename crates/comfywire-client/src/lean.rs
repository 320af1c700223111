//! Reading the answers the driver polls (`/history/{id}`, `/queue`)
//! without building their whole JSON tree: a tree costs 10 to 40 times
//! the text, and nearly all of these answers is the submitted graphs and
//! UI workflows, which reconciliation never looks at. Those parts are
//! skipped as they are read; the results are the same as
//! [`HistoryEntry::from_response`] and [`QueueSnapshot::from_json`] give
//! on the whole tree (the tests check it).

use std::fmt;

use comfywire_proto::{HistoryEntry, QueueItem, QueueSnapshot};
use serde::de::{DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

fn read<'de, S: DeserializeSeed<'de>>(body: &'de [u8], seed: S) -> Result<S::Value, String> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = seed
        .deserialize(&mut de)
        .map_err(|e| format!("body is not JSON ({e})"))?;
    de.end().map_err(|e| format!("body is not JSON ({e})"))?;
    Ok(value)
}

/// `GET /history/{prompt_id}`: `Ok(None)` for `{}`, like
/// [`HistoryEntry::from_response`].
pub(crate) fn history_entry(prompt_id: &str, body: &[u8]) -> Result<Option<HistoryEntry>, String> {
    if body.is_empty() {
        return Err("history answer is not an object".into());
    }
    match read(body, EntryOf(prompt_id))? {
        None => Err("history answer is not an object".into()),
        Some(None) => Ok(None),
        Some(Some(entry)) => HistoryEntry::from_json(&entry).map(Some),
    }
}

/// The keys of a JSON object (`GET /object_info`: the node classes),
/// without building the values (every class's input specs).
pub(crate) fn object_keys(body: &[u8]) -> Result<std::collections::BTreeSet<String>, String> {
    read(body, Keys)?.ok_or_else(|| "answer is not an object".into())
}

/// `GET /queue`, like [`QueueSnapshot::from_json`].
pub(crate) fn queue_snapshot(body: &[u8]) -> Result<QueueSnapshot, String> {
    if body.is_empty() {
        return Err("queue answer is not an object".into());
    }
    let Some((running, pending)) = read(body, Queue)? else {
        return Err("queue answer is not an object".into());
    };
    let running = running?;
    let mut pending = pending?;
    pending.sort_by(|a, b| {
        a.number
            .total_cmp(&b.number)
            .then_with(|| a.prompt_id.cmp(&b.prompt_id))
    });
    Ok(QueueSnapshot { running, pending })
}

/// Implements the visitor methods of every JSON type that is not the one
/// a visitor wants: scalars give `$default`, arrays and objects are read
/// through and give it too.
macro_rules! otherwise {
    ($default:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($default)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($default)
        }
    };
}

macro_rules! skip_seq {
    ($default:expr) => {
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

macro_rules! skip_map {
    ($default:expr) => {
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
            Ok($default)
        }
    };
}

/// The top level of a history answer: `None` when it is not an object,
/// else the reduced entry under the prompt id, if any.
struct EntryOf<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for EntryOf<'_> {
    type Value = Option<Option<Value>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for EntryOf<'_> {
    type Value = Option<Option<Value>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a history answer")
    }
    otherwise!(None);
    skip_seq!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == self.0 {
                // A repeated key: the last one wins, as in a parsed map.
                found = Some(map.next_value_seed(Entry)?);
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Some(found))
    }
}

/// One history entry, keeping only what [`HistoryEntry::from_json`]
/// reads: the queue number and client id out of `prompt`, `outputs` and
/// `status`.
struct Entry;

impl<'de> DeserializeSeed<'de> for Entry {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Entry {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a history entry")
    }
    otherwise!(Value::Null);
    skip_seq!(Value::Null);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "prompt" => {
                    let kept = map.next_value_seed(First)?;
                    out.insert(key, kept);
                }
                "outputs" | "status" => {
                    let value = map.next_value::<Value>()?;
                    out.insert(key, value);
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(out))
    }
}

/// Of a history `prompt` array, the number (`Null` when it is not one)
/// and the extra data's `client_id`; the submitted graph is skipped.
struct First;

impl<'de> DeserializeSeed<'de> for First {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for First {
    type Value = Value;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a history `prompt` array")
    }
    otherwise!(Value::Null);
    skip_map!(Value::Null);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let number = match seq.next_element_seed(Pick::Number)? {
            Some(Picked::Number(n)) => n,
            _ => Value::Null,
        };
        // The id, then the graph: skipped unread; the extra data gives
        // its `client_id` only.
        let mut client_id = None;
        if seq.next_element::<IgnoredAny>()?.is_some()
            && seq.next_element::<IgnoredAny>()?.is_some()
        {
            if let Some(Picked::Text(id)) = seq.next_element_seed(Pick::ClientId)? {
                client_id = Some(id);
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(match client_id {
            Some(id) => Value::Array(vec![
                number,
                Value::Null,
                Value::Null,
                serde_json::json!({ "client_id": id }),
            ]),
            None => Value::Array(vec![number]),
        })
    }
}

/// A piece of a queue item, read from whatever JSON is there.
#[derive(Clone, Copy)]
enum Pick {
    Number,
    Text,
    /// `client_id` of an `extra_data` object.
    ClientId,
}

enum Picked {
    Number(Value),
    Text(String),
    Nothing,
}

impl<'de> DeserializeSeed<'de> for Pick {
    type Value = Picked;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Picked, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Pick {
    type Value = Picked;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Picked, E> {
        Ok(Picked::Nothing)
    }
    fn visit_i64<E>(self, v: i64) -> Result<Picked, E> {
        Ok(match self {
            Pick::Number => Picked::Number(v.into()),
            _ => Picked::Nothing,
        })
    }
    fn visit_u64<E>(self, v: u64) -> Result<Picked, E> {
        Ok(match self {
            Pick::Number => Picked::Number(v.into()),
            _ => Picked::Nothing,
        })
    }
    fn visit_f64<E>(self, v: f64) -> Result<Picked, E> {
        Ok(match self {
            Pick::Number => {
                Picked::Number(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
            }
            _ => Picked::Nothing,
        })
    }
    fn visit_str<E>(self, v: &str) -> Result<Picked, E> {
        Ok(match self {
            Pick::Text => Picked::Text(v.to_owned()),
            _ => Picked::Nothing,
        })
    }
    fn visit_unit<E>(self) -> Result<Picked, E> {
        Ok(Picked::Nothing)
    }
    skip_seq!(Picked::Nothing);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Picked, A::Error> {
        let mut found = Picked::Nothing;
        while let Some(key) = map.next_key::<String>()? {
            if matches!(self, Pick::ClientId) && key == "client_id" {
                let value = map.next_value_seed(Pick::Text)?;
                // A repeated key: the last one wins, as in a parsed map.
                found = value;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

type Items = Result<Vec<QueueItem>, String>;

/// The top level of a queue answer: `None` when it is not an object.
struct Queue;

impl<'de> DeserializeSeed<'de> for Queue {
    type Value = Option<(Items, Items)>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Queue {
    type Value = Option<(Items, Items)>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a queue answer")
    }
    otherwise!(None);
    skip_seq!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut running: Items = Ok(Vec::new());
        let mut pending: Items = Ok(Vec::new());
        while let Some(key) = map.next_key::<String>()? {
            let slot = match key.as_str() {
                "queue_running" => &mut running,
                "queue_pending" => &mut pending,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            *slot = map
                .next_value_seed(List)?
                .ok_or_else(|| format!("`{key}` is not a list"));
        }
        Ok(Some((running, pending)))
    }
}

/// A list of queue items; `None` when it is not a list.
struct List;

impl<'de> DeserializeSeed<'de> for List {
    type Value = Option<Vec<QueueItem>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for List {
    type Value = Option<Vec<QueueItem>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of queue items")
    }
    otherwise!(None);
    skip_map!(None);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Item)? {
            items.extend(item);
        }
        Ok(Some(items))
    }
}

/// `[number, prompt_id, graph, extra_data, outputs_to_execute]`; `None`
/// without a string prompt id (the item is skipped, as `from_json` does).
struct Item;

impl<'de> DeserializeSeed<'de> for Item {
    type Value = Option<QueueItem>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Item {
    type Value = Option<QueueItem>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a queue item")
    }
    otherwise!(None);
    skip_map!(None);
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let number = match seq.next_element_seed(Pick::Number)? {
            Some(Picked::Number(n)) => n.as_f64().unwrap_or(0.0),
            _ => 0.0,
        };
        let prompt_id = match seq.next_element_seed(Pick::Text)? {
            Some(Picked::Text(id)) => Some(id),
            _ => None,
        };
        // The graph: skipped unread.
        let mut client_id = None;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            if let Some(Picked::Text(id)) = seq.next_element_seed(Pick::ClientId)? {
                client_id = Some(id);
            }
        }
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(prompt_id.map(|prompt_id| QueueItem {
            number,
            prompt_id,
            client_id,
        }))
    }
}

/// The keys of an object, the values skipped unread.
struct Keys;

impl<'de> DeserializeSeed<'de> for Keys {
    type Value = Option<std::collections::BTreeSet<String>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Keys {
    type Value = Option<std::collections::BTreeSet<String>>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }
    otherwise!(None);
    skip_seq!(None);
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut keys = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            map.next_value::<IgnoredAny>()?;
            keys.insert(key);
        }
        Ok(Some(keys))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn both_history(id: &str, body: &str) {
        let whole = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str::<Value>(body).unwrap()
        };
        assert_eq!(
            history_entry(id, body.as_bytes()),
            HistoryEntry::from_response(id, &whole),
            "{body}"
        );
    }

    #[test]
    fn object_keys_are_the_keys_of_the_whole_tree() {
        for body in [
            r#"{"EmptyImage": {"input": {"required": {"width": ["INT", {"default": 512}]}}}, "SaveImage": {}}"#,
            "{}",
        ] {
            let whole: Value = serde_json::from_str(body).unwrap();
            let keys: std::collections::BTreeSet<String> =
                whole.as_object().unwrap().keys().cloned().collect();
            assert_eq!(object_keys(body.as_bytes()).unwrap(), keys);
        }
        assert!(object_keys(b"[1]").is_err());
        assert!(object_keys(b"{\"a\": ").is_err());
    }

    fn both_queue(body: &str) {
        let whole: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            queue_snapshot(body.as_bytes()),
            QueueSnapshot::from_json(&whole),
            "{body}"
        );
    }

    #[test]
    fn history_answers_read_lean_equal_the_whole_tree() {
        let entry = json!({
            "prompt": [7, "p", {"1": {"inputs": {"text": "x".repeat(1000)}}}, {"client_id": "c"}, ["9"]],
            "outputs": {"9": {"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}},
            "status": {"status_str": "success", "completed": true, "messages": [
                ["execution_start", {"prompt_id": "p"}],
                ["execution_cached", {"nodes": ["1"], "prompt_id": "p"}],
                ["execution_success", {"prompt_id": "p"}]
            ]},
            "meta": {"9": {"node_id": "9"}}
        });
        for body in [
            json!({"p": entry}),
            json!({"other": entry, "p": entry}),
            json!({"other": entry}),
            json!({}),
            json!({"p": 3}),
            json!({"p": [1, 2]}),
            json!({"p": {"prompt": "x", "outputs": {}, "status": {"status_str": "error"}}}),
            json!({"p": {"prompt": [1.5], "outputs": null}}),
            json!({"p": {"prompt": [-1], "outputs": []}}),
            json!({"p": {"prompt": [], "status": {"messages": [["execution_error", {"prompt_id": "p", "exception_type": "E", "exception_message": "m"}]]}}}),
            json!([1, 2]),
            json!("text"),
            json!(null),
        ] {
            both_history("p", &body.to_string());
        }
        both_history("p", "");
        assert!(history_entry("p", b"{\"p\": ").is_err());
        assert!(history_entry("p", b"{} x").is_err());
    }

    #[test]
    fn queue_answers_read_lean_equal_the_whole_tree() {
        let item =
            |n: Value, id: Value, extra: Value| json!([n, id, {"1": {"inputs": {}}}, extra, ["9"]]);
        for body in [
            json!({"queue_running": [], "queue_pending": []}),
            json!({
                "queue_running": [item(json!(3), json!("r"), json!({"client_id": "me"}))],
                "queue_pending": [
                    item(json!(5.0), json!("b"), json!({})),
                    item(json!(5), json!("a"), json!({"client_id": 7})),
                    item(json!("x"), json!("c"), json!({"client_id": "c1", "extra_pnginfo": {"workflow": {}}})),
                    item(json!(1), json!(2), json!(null)),
                    json!(["short"]),
                    json!([4]),
                    json!({"not": "a list"}),
                    json!(9),
                ]
            }),
            json!({"queue_running": {}}),
            json!({"queue_pending": "x"}),
            json!({"other": [1]}),
            json!({}),
        ] {
            both_queue(&body.to_string());
        }
        assert_eq!(
            queue_snapshot(b"[]"),
            Err("queue answer is not an object".into())
        );
        assert!(queue_snapshot(b"").is_err());
        assert!(queue_snapshot(b"{\"queue_running\": [").is_err());
    }
}
