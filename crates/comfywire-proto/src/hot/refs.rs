//! Borrowed views of the hot messages (`progress_state`, `progress`,
//! `executing`, `executed` and type-4 preview metadata), read without
//! allocating: by the byte readers of `scan` when the frame is in the
//! server's own formatting, else by serde. Anything they cannot borrow
//! (escaped strings) is declined and takes the owned types of
//! `message.rs`.

use serde::Deserialize;
use serde_json::value::RawValue;

/// One node entry of `progress_state`.
#[derive(Debug, Deserialize)]
pub(crate) struct NodeRef<'a> {
    #[serde(deserialize_with = "crate::message::number")]
    pub(crate) value: f64,
    #[serde(deserialize_with = "crate::message::number")]
    pub(crate) max: f64,
    pub(crate) state: &'a str,
    #[serde(default, borrow)]
    pub(crate) display_node_id: Option<&'a str>,
}

/// `progress_state` data, node entries in the server's order.
#[derive(Debug)]
pub(crate) struct ProgressStateRef<'a> {
    pub(crate) prompt_id: &'a str,
    pub(crate) nodes: Vec<(&'a str, NodeRef<'a>)>,
}

impl<'de> Deserialize<'de> for ProgressStateRef<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Raw<'a> {
            prompt_id: &'a str,
            #[serde(borrow, deserialize_with = "nodes")]
            nodes: Vec<(&'a str, NodeRef<'a>)>,
        }
        let raw = Raw::deserialize(d)?;
        Ok(ProgressStateRef {
            prompt_id: raw.prompt_id,
            nodes: raw.nodes,
        })
    }
}

fn nodes<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Vec<(&'de str, NodeRef<'de>)>, D::Error> {
    struct Visit;
    impl<'de> serde::de::Visitor<'de> for Visit {
        type Value = Vec<(&'de str, NodeRef<'de>)>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a map of node id to node state")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(map.size_hint().unwrap_or(4));
            while let Some(entry) = map.next_entry::<&'de str, NodeRef<'de>>()? {
                out.push(entry);
            }
            Ok(out)
        }
    }
    d.deserialize_map(Visit)
}

/// `progress` data.
#[derive(Debug, Deserialize)]
pub(crate) struct ProgressRef<'a> {
    #[serde(deserialize_with = "crate::message::number")]
    pub(crate) value: f64,
    #[serde(deserialize_with = "crate::message::number")]
    pub(crate) max: f64,
    #[serde(default, borrow)]
    pub(crate) prompt_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) node: Option<&'a str>,
}

/// `executing` data (the owned form: [`crate::message::Executing`]).
#[derive(Debug, Deserialize)]
pub(crate) struct ExecutingRef<'a> {
    #[serde(default, borrow)]
    pub(crate) node: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) display_node: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) prompt_id: Option<&'a str>,
}

/// `executed` data (the owned form: [`crate::message::Executed`]).
#[derive(Debug, Deserialize)]
pub(crate) struct ExecutedRef<'a> {
    pub(crate) node: &'a str,
    #[serde(default, borrow)]
    pub(crate) display_node: Option<&'a str>,
    pub(crate) prompt_id: &'a str,
    #[serde(default, borrow)]
    pub(crate) output: Option<&'a RawValue>,
}

/// Type-4 preview metadata.
#[derive(Debug, Deserialize)]
pub(crate) struct PreviewMetaRef<'a> {
    pub(crate) node_id: &'a str,
    pub(crate) prompt_id: &'a str,
    #[serde(default, borrow)]
    pub(crate) display_node_id: Option<&'a str>,
    #[serde(default, borrow)]
    pub(crate) image_type: Option<&'a str>,
}
