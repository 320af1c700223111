//! [`Filter`]: which events a subscription receives, as a bitmask of
//! kinds and an optional prompt, and each kind's place in that mask.

use comfywire_proto::{Event, EventKind};

/// Which events a subscription receives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    kinds: Option<u32>,
    prompt_id: Option<String>,
}

impl Filter {
    /// Every event.
    pub fn all() -> Filter {
        Filter::default()
    }

    /// Only these kinds.
    pub fn kinds(kinds: &[EventKind]) -> Filter {
        Filter {
            kinds: Some(kinds.iter().fold(0, |mask, k| mask | bit(*k))),
            prompt_id: None,
        }
    }

    /// Only events of one prompt (plus connection changes, which concern
    /// every prompt).
    pub fn prompt(mut self, prompt_id: impl Into<String>) -> Filter {
        self.prompt_id = Some(prompt_id.into());
        self
    }

    /// Nothing at all (the start of a [`Filter::union`]).
    pub fn none() -> Filter {
        Filter {
            kinds: Some(0),
            prompt_id: None,
        }
    }

    /// What either filter lets through: the kinds of both, and one prompt
    /// only when both are limited to that same prompt.
    pub fn union(&self, other: &Filter) -> Filter {
        let kinds = match (self.kinds, other.kinds) {
            (Some(a), Some(b)) => Some(a | b),
            _ => None,
        };
        // A filter that lets nothing through does not widen the prompt.
        let prompt_id = match (self.kinds, other.kinds) {
            (Some(0), _) => other.prompt_id.clone(),
            (_, Some(0)) => self.prompt_id.clone(),
            _ if self.prompt_id == other.prompt_id => self.prompt_id.clone(),
            _ => None,
        };
        Filter { kinds, prompt_id }
    }

    /// True when `kind` may pass (whatever the prompt).
    pub fn wants_kind(&self, kind: EventKind) -> bool {
        self.kinds.is_none_or(|mask| mask & bit(kind) != 0)
    }

    /// True when this filter lets `event` through.
    pub fn wants(&self, event: &Event) -> bool {
        if let Some(mask) = self.kinds {
            if mask & bit(event.kind()) == 0 {
                return false;
            }
        }
        match &self.prompt_id {
            None => true,
            Some(p) => event.prompt_id() == Some(p) || event.kind() == EventKind::Connection,
        }
    }
}

fn bit(kind: EventKind) -> u32 {
    1u32 << slot(kind)
}

/// Kinds counted per subscription (one spare for kinds added later).
pub(super) const KINDS: usize = EventKind::ALL.len() + 1;

/// A kind's place in [`EventKind::ALL`].
pub(super) fn slot(kind: EventKind) -> usize {
    match kind {
        EventKind::Connection => 0,
        EventKind::Status => 1,
        EventKind::FeatureFlags => 2,
        EventKind::PromptQueued => 3,
        EventKind::ExecutionStarted => 4,
        EventKind::NodesCached => 5,
        EventKind::NodeStarted => 6,
        EventKind::Progress => 7,
        EventKind::Preview => 8,
        EventKind::ProgressText => 9,
        EventKind::Output => 10,
        EventKind::NodeFinished => 11,
        EventKind::Blocked => 12,
        EventKind::Finished => 13,
        EventKind::Message => 14,
        EventKind::BadFrame => 15,
        EventKind::HttpFailed => 16,
        _ => KINDS - 1,
    }
}
