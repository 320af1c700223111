//! [`Submitted`]: the prompt ids the pool submitted, so that a server's
//! own terminal event of one of them is not forwarded (the pool reports a
//! submission's end once, as `PoolEvent::Finished`) while the terminal
//! events of prompts others submitted still are (`comfywire watch` over
//! several servers shows them).

use std::collections::{HashSet, VecDeque};

use parking_lot::Mutex;

/// How many ids are remembered: far more than the outcomes kept, so an id
/// is forgotten only long after its submission ended.
const REMEMBERED: usize = 4 * crate::pool::KEPT_OUTCOMES;

/// A bounded set of prompt ids, the oldest forgotten first.
#[derive(Default)]
pub(crate) struct Submitted {
    ids: Mutex<(HashSet<String>, VecDeque<String>)>,
}

impl Submitted {
    /// Remembers `prompt_id`, before it is posted to any server.
    pub(crate) fn insert(&self, prompt_id: &str) {
        let mut guard = self.ids.lock();
        let (set, order) = &mut *guard;
        if !set.insert(prompt_id.to_owned()) {
            return;
        }
        order.push_back(prompt_id.to_owned());
        if order.len() > REMEMBERED {
            if let Some(oldest) = order.pop_front() {
                set.remove(&oldest);
            }
        }
    }

    /// Whether the pool submitted `prompt_id`.
    pub(crate) fn contains(&self, prompt_id: &str) -> bool {
        self.ids.lock().0.contains(prompt_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_id_is_forgotten_past_the_bound() {
        let submitted = Submitted::default();
        for i in 0..=REMEMBERED {
            submitted.insert(&i.to_string());
        }
        submitted.insert("5"); // already there: not counted twice
        assert!(!submitted.contains("0"));
        assert!(submitted.contains("1"));
        assert!(submitted.contains(&REMEMBERED.to_string()));
        assert_eq!(submitted.ids.lock().1.len(), REMEMBERED);
    }
}
