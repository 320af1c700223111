//! The server's own record of every `POST /prompt`: what it enqueued under
//! which id, for which client, how many times it started it and how it
//! ended. It is the mock's truth, kept apart from the ComfyUI state a
//! client can see (queue and history forget on a restart, the ledger does
//! not), so a test can compare a client's outcomes with what really
//! happened on the server.

use std::collections::VecDeque;

/// Entries kept by default; older ones are evicted and counted.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// What the client was told in answer to its `POST /prompt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyFate {
    /// The whole answer went out at once.
    Sent,
    /// The answer went out only after [`LedgerEntry::reply_delay_ms`]
    /// ([`crate::Fault::DelayPromptReply`]); a client that gave up before
    /// never read it.
    Delayed,
    /// The connection was closed without a complete answer
    /// ([`crate::Fault::CutPromptReply`]).
    Cut,
}

/// How an enqueued prompt left the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunEnd {
    /// Played to `execution_success`; its history says success.
    Succeeded,
    /// Played to `execution_error`.
    Failed,
    /// Stopped by `POST /interrupt`.
    Interrupted,
    /// Removed from the pending queue by `POST /queue` before it started.
    Deleted,
    /// Forgotten by a restart while pending or running (no history).
    Restarted,
}

impl RunEnd {
    /// A stable lower-case name (the JSON one).
    pub fn name(self) -> &'static str {
        match self {
            RunEnd::Succeeded => "succeeded",
            RunEnd::Failed => "failed",
            RunEnd::Interrupted => "interrupted",
            RunEnd::Deleted => "deleted",
            RunEnd::Restarted => "restarted",
        }
    }
}

/// One `POST /prompt` the server received (with a JSON body).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LedgerEntry {
    /// Order of arrival, from 0; never reused, not even by a restart.
    pub seq: u64,
    /// The `prompt_id` the request carried, if any.
    pub requested_prompt_id: Option<String>,
    /// The id the server enqueued it under: the requested one, or its own
    /// (no id asked for, or [`crate::Fault::IgnoreClientPromptId`]).
    /// `None` when it was not enqueued.
    pub prompt_id: Option<String>,
    /// The request's `client_id`.
    pub client_id: Option<String>,
    /// Whether it went into the queue (false for 400 answers).
    pub enqueued: bool,
    /// The queue number it got.
    pub number: Option<u64>,
    /// The HTTP status of the answer (the one it meant to send when the
    /// answer was cut).
    pub status: u16,
    /// Whether the answer went out whole, late or not at all.
    pub reply: ReplyFate,
    /// For [`ReplyFate::Delayed`]: how long the answer was held.
    pub reply_delay_ms: u64,
    /// How many times the worker started it (0 or 1: a second run of the
    /// same id comes from a second POST, with its own entry).
    pub runs: u32,
    /// How it left the server; `None` while pending or running.
    pub end: Option<RunEnd>,
    /// When it left the server, by the mock's wall clock: milliseconds
    /// since the Unix epoch, taken as its end is written (history first,
    /// for a prompt that ran). Tests measure a client's lateness by it.
    #[serde(default)]
    pub ended_at_ms: Option<u64>,
}

impl LedgerEntry {
    /// True when `id` is the id it was asked for or the one it got.
    pub fn answers_to(&self, id: &str) -> bool {
        self.prompt_id.as_deref() == Some(id) || self.requested_prompt_id.as_deref() == Some(id)
    }

    /// True when the server gave it an id other than the one asked for.
    pub fn adopted(&self) -> bool {
        self.enqueued
            && self.requested_prompt_id.is_some()
            && self.requested_prompt_id != self.prompt_id
    }
}

/// A snapshot of the ledger, oldest entry first.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Ledger {
    /// Most entries kept.
    pub capacity: usize,
    /// Entries dropped to stay within `capacity` (oldest first); a check
    /// over a ledger that evicted anything is incomplete.
    pub evicted: u64,
    /// The kept entries.
    pub entries: Vec<LedgerEntry>,
}

impl Ledger {
    /// Entries of requests that carried `client_id`.
    pub fn for_client<'a>(&'a self, client_id: &'a str) -> impl Iterator<Item = &'a LedgerEntry> {
        self.entries
            .iter()
            .filter(move |e| e.client_id.as_deref() == Some(client_id))
    }

    /// Entries asked for or enqueued under `id`.
    pub fn about<'a>(&'a self, id: &'a str) -> impl Iterator<Item = &'a LedgerEntry> {
        self.entries.iter().filter(move |e| e.answers_to(id))
    }

    /// True when a request asking for or getting `id` was enqueued.
    pub fn enqueued(&self, id: &str) -> bool {
        self.about(id).any(|e| e.enqueued)
    }

    /// Times the server started a prompt asked for or enqueued under `id`,
    /// over every request.
    pub fn runs(&self, id: &str) -> u32 {
        self.about(id).map(|e| e.runs).sum()
    }

    /// How the last request asking for or getting `id` that ended left the
    /// server; `None` while it is pending or running, or never enqueued.
    pub fn end(&self, id: &str) -> Option<RunEnd> {
        self.about(id).filter_map(|e| e.end).last()
    }
}

/// Milliseconds since the Unix epoch now (0 on a clock set before it).
fn wall_clock_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The live ledger inside the server state.
#[derive(Debug)]
pub(crate) struct Book {
    entries: VecDeque<LedgerEntry>,
    next_seq: u64,
    evicted: u64,
    capacity: usize,
}

impl Book {
    pub fn new() -> Book {
        Book {
            entries: VecDeque::new(),
            next_seq: 0,
            evicted: 0,
            capacity: DEFAULT_CAPACITY,
        }
    }

    /// Records a request; returns its `seq`.
    pub fn record(&mut self, mut entry: LedgerEntry) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        entry.seq = seq;
        self.entries.push_back(entry);
        self.trim();
        seq
    }

    /// Keeps at most `capacity` entries (at least one).
    pub fn set_capacity(&mut self, capacity: usize) {
        self.capacity = capacity.max(1);
        self.trim();
    }

    fn trim(&mut self) {
        while self.entries.len() > self.capacity {
            self.entries.pop_front();
            self.evicted += 1;
        }
    }

    /// The entry `seq`, unless evicted.
    pub fn get_mut(&mut self, seq: u64) -> Option<&mut LedgerEntry> {
        let first = self.entries.front()?.seq;
        let index = usize::try_from(seq.checked_sub(first)?).ok()?;
        self.entries.get_mut(index)
    }

    /// The worker started `seq`.
    pub fn started(&mut self, seq: u64) {
        if let Some(entry) = self.get_mut(seq) {
            entry.runs += 1;
        }
    }

    /// `seq` left the server; the first end counts.
    pub fn ended(&mut self, seq: u64, end: RunEnd) {
        if let Some(entry) = self.get_mut(seq) {
            if entry.end.is_none() {
                entry.end = Some(end);
                entry.ended_at_ms = Some(wall_clock_ms());
            }
        }
    }

    pub fn snapshot(&self) -> Ledger {
        Ledger {
            capacity: self.capacity,
            evicted: self.evicted,
            entries: self.entries.iter().cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str) -> LedgerEntry {
        LedgerEntry {
            seq: 0,
            requested_prompt_id: Some(id.to_owned()),
            prompt_id: Some(id.to_owned()),
            client_id: Some("c".into()),
            enqueued: true,
            number: Some(0),
            status: 200,
            reply: ReplyFate::Sent,
            reply_delay_ms: 0,
            runs: 0,
            end: None,
            ended_at_ms: None,
        }
    }

    #[test]
    fn the_book_is_bounded_and_counts_what_it_evicts() {
        let mut book = Book::new();
        book.set_capacity(3);
        for i in 0..5 {
            book.record(entry(&format!("p{i}")));
        }
        book.started(4);
        book.ended(4, RunEnd::Succeeded);
        book.ended(4, RunEnd::Restarted);
        book.started(0);
        let ledger = book.snapshot();
        assert_eq!(ledger.evicted, 2);
        let seqs: Vec<u64> = ledger.entries.iter().map(|e| e.seq).collect();
        assert_eq!(seqs, [2, 3, 4]);
        assert_eq!(ledger.runs("p4"), 1);
        assert_eq!(ledger.entries[2].end, Some(RunEnd::Succeeded));
        assert_eq!(ledger.runs("p0"), 0);
    }

    #[test]
    fn the_end_of_an_id_is_its_latest_request_that_ended() {
        let mut book = Book::new();
        let first = book.record(entry("again"));
        let second = book.record(entry("again"));
        assert_eq!(book.snapshot().end("again"), None);
        book.ended(first, RunEnd::Succeeded);
        assert_eq!(book.snapshot().end("again"), Some(RunEnd::Succeeded));
        book.ended(second, RunEnd::Deleted);
        assert_eq!(book.snapshot().end("again"), Some(RunEnd::Deleted));
        assert_eq!(book.snapshot().end("never"), None);
    }
}
