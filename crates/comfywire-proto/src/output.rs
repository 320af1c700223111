//! Nodes' UI outputs (`images`, `text`, ...), kept as the JSON text the
//! server sent. Most of an output is only passed on (C and the CLI write
//! it out as JSON, Python and JavaScript convert it once); a
//! `serde_json::Value` tree of it costs 10 to 40 allocations to build,
//! again to copy into the record, and again to free when the record
//! leaves the history ring. The text costs one, shared by the `Output`
//! event and the record; the tree is made when someone asks for it.

use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use crate::hash::FastBuild;

/// One node's UI output, as JSON text (checked to be one JSON value).
/// Cheap to clone: the text is shared.
#[derive(Clone)]
pub struct NodeOutput(Arc<str>);

impl NodeOutput {
    /// The output in `text`; an error when it is not one JSON value.
    pub fn from_json(text: &str) -> Result<NodeOutput, serde_json::Error> {
        let raw: &RawValue = serde_json::from_str(text)?;
        Ok(NodeOutput::from_raw(raw))
    }

    /// The output of a value already parsed.
    pub fn from_value(value: &Value) -> NodeOutput {
        NodeOutput(Arc::from(value.to_string()))
    }

    pub(crate) fn from_raw(raw: &RawValue) -> NodeOutput {
        NodeOutput(Arc::from(raw.get()))
    }

    /// The JSON text, as the server wrote it.
    pub fn json(&self) -> &str {
        &self.0
    }

    /// The output as a JSON tree (built on each call).
    pub fn to_value(&self) -> Value {
        // The text was checked when it was made, so this parse succeeds;
        // `Null` only stands in for a failure that cannot happen.
        serde_json::from_str(&self.0).unwrap_or(Value::Null)
    }

    /// The output read into a type of the caller's (e.g. a struct with the
    /// `images` list).
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_str(&self.0)
    }

    /// True for JSON `null` (a cached output node without an output).
    pub fn is_null(&self) -> bool {
        &*self.0 == "null"
    }

    /// Length of the text in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True for an empty text (never: the text is a JSON value).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Equal when the texts are, or else when they parse to equal values
/// (`/history` and the socket may space the same output differently).
impl PartialEq for NodeOutput {
    fn eq(&self, other: &NodeOutput) -> bool {
        self.0 == other.0 || self.to_value() == other.to_value()
    }
}

impl PartialEq<Value> for NodeOutput {
    fn eq(&self, other: &Value) -> bool {
        self.to_value() == *other
    }
}

impl fmt::Debug for NodeOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for NodeOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Serialised as the JSON value it holds, in any format.
impl Serialize for NodeOutput {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(serializer)
    }
}

/// Reads an optional output as its text, without a tree (serde_json
/// deserializers only: the messages are parsed from text).
pub(crate) fn raw_output<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<NodeOutput>, D::Error> {
    let raw = Option::<Box<RawValue>>::deserialize(deserializer)?;
    Ok(raw.map(|raw| NodeOutput::from_raw(&raw)))
}

/// A record's UI outputs by node id, in the order they came.
#[derive(Clone, Default)]
pub struct Outputs(IndexMap<Arc<str>, NodeOutput, FastBuild>);

impl Outputs {
    /// The output of a node.
    pub fn get(&self, node: &str) -> Option<&NodeOutput> {
        self.0.get(node)
    }

    /// True when the node has an output here.
    pub fn contains_key(&self, node: &str) -> bool {
        self.0.contains_key(node)
    }

    /// Nodes with an output.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no node has an output.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Node ids and their outputs, in the order they came.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &NodeOutput)> {
        self.into_iter()
    }

    /// Node ids, in the order they came.
    pub fn keys(&self) -> impl ExactSizeIterator<Item = &str> {
        self.0.keys().map(|k| &**k)
    }

    /// The outputs as a JSON object (`{node: output}`, the shape of
    /// `/history`'s `outputs`), built on each call.
    pub fn to_map(&self) -> Map<String, Value> {
        self.iter()
            .map(|(k, v)| (k.to_owned(), v.to_value()))
            .collect()
    }

    /// [`Outputs::to_map`] as a `Value`.
    pub fn to_value(&self) -> Value {
        Value::Object(self.to_map())
    }

    /// Sets a node's output, returning the one it replaced.
    pub(crate) fn insert(&mut self, node: Arc<str>, output: NodeOutput) -> Option<NodeOutput> {
        self.0.insert(node, output)
    }
}

impl PartialEq for Outputs {
    fn eq(&self, other: &Outputs) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

impl fmt::Debug for Outputs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Serialised as a map of node id to output.
impl Serialize for Outputs {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.iter())
    }
}

/// An entry as the map holds it, and as [`Outputs`] hands it out.
type Held<'a> = (&'a Arc<str>, &'a NodeOutput);
type Entry<'a> = (&'a str, &'a NodeOutput);

fn entry<'a>((node, output): Held<'a>) -> Entry<'a> {
    (node, output)
}

impl<'a> IntoIterator for &'a Outputs {
    type Item = Entry<'a>;
    type IntoIter =
        std::iter::Map<indexmap::map::Iter<'a, Arc<str>, NodeOutput>, fn(Held<'a>) -> Entry<'a>>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter().map(entry)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_output_keeps_the_text_and_gives_the_tree_it_parses_to() {
        let text = r#"{"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]}"#;
        let output = NodeOutput::from_json(text).unwrap();
        assert_eq!(output.json(), text);
        assert_eq!(
            output.to_value(),
            json!({"images": [{"filename": "a.png", "subfolder": "", "type": "output"}]})
        );
        assert_eq!(
            serde_json::to_string(&output).unwrap(),
            output.to_value().to_string()
        );
        assert!(NodeOutput::from_json(r#"{"images": ["#).is_err());
        assert!(NodeOutput::from_json("null").unwrap().is_null());
    }

    #[test]
    fn outputs_spaced_differently_are_equal_and_different_ones_are_not() {
        let a = NodeOutput::from_json(r#"{"text": ["x"], "n": 1}"#).unwrap();
        let b = NodeOutput::from_value(&json!({"text": ["x"], "n": 1}));
        let c = NodeOutput::from_value(&json!({"text": ["y"], "n": 1}));
        assert_ne!(a.json(), b.json());
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, json!({"n": 1, "text": ["x"]}));
    }

    #[test]
    fn outputs_keep_arrival_order_and_replace_in_place() {
        let mut outputs = Outputs::default();
        let out = |n: i64| NodeOutput::from_value(&json!({ "n": n }));
        assert!(outputs.insert(Arc::from("9"), out(1)).is_none());
        assert!(outputs.insert(Arc::from("3"), out(2)).is_none());
        assert_eq!(outputs.insert(Arc::from("9"), out(3)), Some(out(1)));
        assert_eq!(outputs.keys().collect::<Vec<_>>(), ["9", "3"]);
        assert_eq!(outputs.to_value(), json!({"9": {"n": 3}, "3": {"n": 2}}));
        assert_eq!(
            serde_json::to_value(&outputs).unwrap(),
            json!({"9": {"n": 3}, "3": {"n": 2}})
        );
        assert!(outputs.contains_key("3") && !outputs.contains_key("4"));
    }
}
