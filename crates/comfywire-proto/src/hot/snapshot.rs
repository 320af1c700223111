//! Recognising a `progress_state` snapshot that repeats the last one.
//!
//! During a sampler run the server sends a full snapshot before every
//! `progress` step, and consecutive snapshots differ only in the running
//! node's `"value"` digits; the step itself arrives in the `progress` frame
//! right after. A snapshot whose nodes are in the same states as the last
//! one therefore carries nothing new, and most of a run's snapshots can be
//! skipped: first by a byte comparison with the last snapshot that lets only
//! the numbers after `"value": ` differ, else by comparing shapes (entries
//! and finished entries) after a scan.

use memchr::memmem::Finder;
use std::sync::OnceLock;

/// A shape: (node entries, finished entries).
pub(crate) type Shape = (usize, usize);

/// The last snapshot taken in (processed or skipped by shape).
#[derive(Debug, Default)]
pub(crate) struct SnapshotMemo {
    /// Its text; empty when there is none.
    text: String,
    /// Offsets in `text` just after each `"value": `, where numbers start.
    holes: Vec<usize>,
    /// Its prompt and shape.
    shape: Option<(String, Shape)>,
}

/// For a `progress_state` frame in the server's own formatting: its prompt
/// id and (entries, finished entries). Entries are only ever added and
/// states only go from running to finished, so an equal shape means no node
/// started or finished. `None` when the frame is anything else or not in
/// the expected form (then it is parsed in full).
pub(crate) fn progress_state_shape(text: &str) -> Option<(&str, Shape)> {
    let rest = text.strip_prefix("{\"type\": \"progress_state\", \"data\": {\"prompt_id\": \"")?;
    let end = rest.find('"')?;
    let prompt = rest.get(..end)?;
    if prompt.contains('\\') {
        return None;
    }
    static STATE: OnceLock<Finder<'static>> = OnceLock::new();
    let finder = STATE.get_or_init(|| Finder::new(b"\"state\": \""));
    let mut entries = 0;
    let mut finished = 0;
    let mut running = 0;
    for at in finder.find_iter(rest.as_bytes()) {
        entries += 1;
        match rest.as_bytes().get(at + 10) {
            Some(b'f') => finished += 1,
            Some(b'r') => running += 1,
            _ => {}
        }
    }
    (entries > 0 && running + finished == entries).then_some((prompt, (entries, finished)))
}

fn value_key() -> &'static Finder<'static> {
    static FINDER: OnceLock<Finder<'static>> = OnceLock::new();
    FINDER.get_or_init(|| Finder::new(b"\"value\": "))
}

fn is_number_byte(b: u8) -> bool {
    b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-')
}

/// Length of the run of number characters at the start of `bytes`.
fn number_len(bytes: &[u8]) -> usize {
    bytes.iter().take_while(|b| is_number_byte(**b)).count()
}

impl SnapshotMemo {
    /// True when `text` equals the remembered snapshot except for the
    /// numbers after `"value": `, which means no node changed state.
    pub(crate) fn repeats(&self, text: &str) -> bool {
        if self.text.is_empty() {
            return false;
        }
        let (prev, cur) = (self.text.as_bytes(), text.as_bytes());
        let (mut p, mut c) = (0usize, 0usize);
        for &hole in &self.holes {
            let Some(same) = prev.get(p..hole) else {
                return false;
            };
            if cur.get(c..c + same.len()) != Some(same) {
                return false;
            }
            c += same.len();
            p = hole + number_len(prev.get(hole..).unwrap_or_default());
            let digits = number_len(cur.get(c..).unwrap_or_default());
            if digits == 0 {
                return false;
            }
            c += digits;
        }
        prev.get(p..) == cur.get(c..)
    }

    /// True when `prompt`'s snapshot has the remembered shape.
    pub(crate) fn same_shape(&self, prompt: &str, shape: Shape) -> bool {
        self.shape
            .as_ref()
            .is_some_and(|(p, s)| p == prompt && *s == shape)
    }

    /// Forgets the last snapshot (one without a shape was taken in since).
    pub(crate) fn forget(&mut self) {
        *self = SnapshotMemo::default();
    }

    /// Remembers `text` as the last snapshot taken in. Texts with escapes
    /// are not kept for byte comparison (an escaped quote could make
    /// `"value": ` appear inside a string).
    pub(crate) fn remember(&mut self, text: &str, prompt: &str, shape: Shape) {
        match &mut self.shape {
            Some((p, s)) if p == prompt => *s = shape,
            slot => *slot = Some((prompt.to_owned(), shape)),
        }
        self.text.clear();
        self.holes.clear();
        if memchr::memchr(b'\\', text.as_bytes()).is_some() {
            return;
        }
        self.text.push_str(text);
        let key = value_key().needle().len();
        self.holes
            .extend(value_key().find_iter(text.as_bytes()).map(|at| at + key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(prompt: &str, nodes: &[(&str, &str, &str)]) -> String {
        let entries: Vec<String> = nodes
            .iter()
            .map(|(id, value, state)| {
                format!(
                    "\"{id}\": {{\"value\": {value}, \"max\": 200, \"state\": \"{state}\", \"node_id\": \"{id}\", \"prompt_id\": \"{prompt}\", \"display_node_id\": \"{id}\", \"parent_node_id\": null, \"real_node_id\": \"{id}\"}}"
                )
            })
            .collect();
        format!(
            "{{\"type\": \"progress_state\", \"data\": {{\"prompt_id\": \"{prompt}\", \"nodes\": {{{}}}}}}}",
            entries.join(", ")
        )
    }

    fn memo_of(text: &str, prompt: &str) -> SnapshotMemo {
        let mut memo = SnapshotMemo::default();
        memo.remember(text, prompt, (0, 0));
        memo
    }

    #[test]
    fn only_value_numbers_may_differ() {
        let first = snapshot("p", &[("1", "1.0", "finished"), ("2", "9", "running")]);
        let memo = memo_of(&first, "p");
        for same in [
            snapshot("p", &[("1", "1.0", "finished"), ("2", "10", "running")]),
            snapshot("p", &[("1", "1.0", "finished"), ("2", "199", "running")]),
            snapshot("p", &[("1", "1.0", "finished"), ("2", "9.5", "running")]),
            first.clone(),
        ] {
            assert!(memo.repeats(&same), "{same}");
        }
        for changed in [
            snapshot("p", &[("1", "1.0", "finished"), ("2", "9", "finished")]),
            snapshot("q", &[("1", "1.0", "finished"), ("2", "9", "running")]),
            snapshot(
                "p",
                &[
                    ("1", "1.0", "finished"),
                    ("2", "9", "running"),
                    ("3", "0", "running"),
                ],
            ),
            snapshot("p", &[("1", "1.0", "finished"), ("2", "null", "running")]),
            snapshot("p", &[("1", "1.0", "finished")]),
            first[..first.len() - 1].to_owned(),
            format!("{first} "),
            String::new(),
        ] {
            assert!(!memo.repeats(&changed), "{changed}");
        }
    }

    #[test]
    fn nothing_remembered_or_escaped_text_never_repeats() {
        let text = snapshot("p", &[("2", "9", "running")]);
        assert!(!SnapshotMemo::default().repeats(&text));
        let escaped = snapshot("p\\\"x", &[("2", "9", "running")]);
        let memo = memo_of(&escaped, "p");
        assert!(!memo.repeats(&escaped));
    }

    #[test]
    fn shapes_are_per_prompt() {
        let mut memo = SnapshotMemo::default();
        memo.remember("x", "p", (2, 1));
        assert!(memo.same_shape("p", (2, 1)));
        assert!(!memo.same_shape("p", (2, 2)));
        assert!(!memo.same_shape("q", (2, 1)));
    }
}
