//! The session's outbox of events: state changes go straight through after
//! their prompt's pending progress and previews; progress and previews pass
//! the throttles.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use web_time::Instant;

use crate::event::{Event, PreviewImage, ProgressUpdate};
use crate::throttle::{Offer, Taken, Throttle};

/// Counters of what the throttles held back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxStats {
    /// Progress updates replaced by a later one before going out.
    pub coalesced_progress: u64,
    /// Previews replaced by a later one before going out.
    pub coalesced_previews: u64,
}

/// What a held progress update needs besides its key.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Step {
    value: f64,
    max: f64,
    overall: f64,
    eta: Option<std::time::Duration>,
}

/// What a held preview needs besides its key. The image is a copy in a
/// buffer of its own (see [`PreviewImage::image`] for why), recycled when
/// a newer preview displaces it.
#[derive(Debug, Clone, PartialEq)]
struct Image {
    mime: std::borrow::Cow<'static, str>,
    image: Vec<u8>,
    attributed: bool,
}

fn progress_event(t: Taken<Step>) -> Event {
    Event::Progress(ProgressUpdate {
        prompt_id: t.prompt_id,
        node: t.node_id,
        display_node: t.label,
        value: t.value.value,
        max: t.value.max,
        overall: t.value.overall,
        eta: t.value.eta,
    })
}

fn preview_event(t: Taken<Image>) -> Event {
    let (prompt_id, node) = if t.value.attributed {
        (Some(t.prompt_id), Some(t.node_id))
    } else {
        (None, None)
    };
    Event::Preview(PreviewImage {
        prompt_id,
        node,
        mime: t.value.mime.into_owned(),
        image: bytes::Bytes::from(t.value.image),
    })
}

#[derive(Debug)]
pub(crate) struct Outbox {
    pub(crate) queue: VecDeque<Event>,
    progress: Throttle<Step>,
    previews: Throttle<Image>,
    /// The buffer of the last displaced preview, for the next one.
    spare_image: Vec<u8>,
    pub(crate) stats: OutboxStats,
}

impl Outbox {
    pub(crate) fn new(progress_interval: Duration, preview_interval: Duration) -> Self {
        Outbox {
            queue: VecDeque::new(),
            progress: Throttle::new(progress_interval),
            previews: Throttle::new(preview_interval),
            spare_image: Vec::new(),
            stats: OutboxStats::default(),
        }
    }

    /// An event that is not tied to a prompt.
    pub(crate) fn push(&mut self, event: Event) {
        self.queue.push_back(event);
    }

    /// A state change of a prompt: its held progress goes out first.
    pub(crate) fn state(&mut self, prompt_id: &str, event: Event, now: Instant) {
        self.flush_prompt(prompt_id, now);
        self.queue.push_back(event);
    }

    /// A state change of one node: only that node's held values go first,
    /// so other running nodes keep their rate limit.
    pub(crate) fn node_state(&mut self, prompt_id: &str, node: &str, event: Event, now: Instant) {
        for t in self.progress.take_node(prompt_id, node, now) {
            self.queue.push_back(progress_event(t));
        }
        for t in self.previews.take_node(prompt_id, node, now) {
            self.queue.push_back(preview_event(t));
        }
        self.queue.push_back(event);
    }

    /// A step of one node; the event is built only when it goes out, from
    /// the record's shared ids.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn progress(
        &mut self,
        prompt_id: &Arc<str>,
        node: &Arc<str>,
        display_node: Option<&Arc<str>>,
        value: f64,
        max: f64,
        overall: f64,
        eta: Option<std::time::Duration>,
        now: Instant,
    ) {
        let urgent = max > 0.0 && value >= max;
        let step = Step {
            value,
            max,
            overall,
            eta,
        };
        match self
            .progress
            .offer_shared(prompt_id, node, display_node, step, urgent, now)
        {
            Offer::Now(step) => self.queue.push_back(progress_event(Taken {
                prompt_id: prompt_id.clone(),
                node_id: node.clone(),
                label: display_node.cloned(),
                value: step,
            })),
            Offer::Held { replaced } => {
                self.stats.coalesced_progress += u64::from(replaced.is_some());
            }
        }
    }

    /// A preview; unattributed ones (no prompt known) share one key. The
    /// event is built only when it goes out; the image is copied out of
    /// the frame into a recycled buffer.
    pub(crate) fn preview(
        &mut self,
        prompt_id: Option<&Arc<str>>,
        node: Option<&Arc<str>>,
        mime: std::borrow::Cow<'static, str>,
        image: &[u8],
        now: Instant,
    ) {
        let mut buffer = std::mem::take(&mut self.spare_image);
        buffer.clear();
        buffer.extend_from_slice(image);
        let held = Image {
            mime,
            image: buffer,
            attributed: prompt_id.is_some(),
        };
        let offer = match (prompt_id, node) {
            (Some(prompt), Some(node)) => self
                .previews
                .offer_shared(prompt, node, None, held, false, now),
            (prompt, node) => self.previews.offer(
                prompt.map_or("", |p| &**p),
                node.map_or("", |n| &**n),
                None,
                held,
                false,
                now,
            ),
        };
        match offer {
            Offer::Now(image) => self.queue.push_back(Event::Preview(PreviewImage {
                prompt_id: prompt_id.cloned(),
                node: node.cloned(),
                mime: image.mime.into_owned(),
                image: bytes::Bytes::from(image.image),
            })),
            Offer::Held { replaced } => {
                if let Some(old) = replaced {
                    self.stats.coalesced_previews += 1;
                    self.spare_image = old.image;
                }
            }
        }
    }

    pub(crate) fn flush_prompt(&mut self, prompt_id: &str, now: Instant) {
        for t in self.progress.take_prompt(prompt_id, now) {
            self.queue.push_back(progress_event(t));
        }
        for t in self.previews.take_prompt(prompt_id, now) {
            self.queue.push_back(preview_event(t));
        }
    }

    pub(crate) fn forget_prompt(&mut self, prompt_id: &str) {
        self.progress.forget_prompt(prompt_id);
        self.previews.forget_prompt(prompt_id);
    }

    pub(crate) fn forget_node(&mut self, prompt_id: &str, node: &str) {
        self.progress.forget_node(prompt_id, node);
        self.previews.forget_node(prompt_id, node);
    }

    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        match (self.progress.next_deadline(), self.previews.next_deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(crate) fn flush_due(&mut self, now: Instant) {
        for t in self.progress.take_due(now) {
            self.queue.push_back(progress_event(t));
        }
        for t in self.previews.take_due(now) {
            self.queue.push_back(preview_event(t));
        }
    }

    pub(crate) fn held(&self) -> usize {
        self.progress.len() + self.previews.len()
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)] // a test needs some instant
mod tests {
    use super::*;

    fn images(outbox: &mut Outbox) -> Vec<Vec<u8>> {
        outbox
            .queue
            .drain(..)
            .filter_map(|e| match e {
                Event::Preview(p) => Some(p.image.to_vec()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn recycled_preview_buffers_never_mix_images() {
        let t0 = Instant::now();
        let mut e = Outbox::new(Duration::from_millis(16), Duration::from_millis(50));
        let jpeg = || std::borrow::Cow::Borrowed("image/jpeg");
        let (p, n): (Arc<str>, Arc<str>) = (Arc::from("p"), Arc::from("1"));
        e.preview(Some(&p), Some(&n), jpeg(), b"first", t0);
        assert_eq!(images(&mut e), vec![b"first".to_vec()]);
        // Held, then displaced twice: each displaced buffer is reused for
        // the next image, which must never show through.
        for (i, image) in [&b"second-long-image"[..], b"third", b"4th"]
            .into_iter()
            .enumerate()
        {
            e.preview(
                Some(&p),
                Some(&n),
                jpeg(),
                image,
                t0 + Duration::from_millis(i as u64 + 1),
            );
        }
        assert!(images(&mut e).is_empty());
        assert_eq!(e.stats.coalesced_previews, 2);
        e.flush_due(t0 + Duration::from_millis(50));
        assert_eq!(images(&mut e), vec![b"4th".to_vec()]);
        e.preview(
            Some(&p),
            Some(&n),
            jpeg(),
            b"fifth",
            t0 + Duration::from_millis(60),
        );
        e.flush_prompt("p", t0 + Duration::from_millis(61));
        assert_eq!(images(&mut e), vec![b"fifth".to_vec()]);
    }
}
