//! Counters a test can read to see what the mock did.

/// What the mock has done since it started.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct MockStats {
    /// WebSocket upgrades that were accepted.
    pub connections_accepted: u64,
    /// WebSocket upgrades refused by [`crate::Fault::RefuseConnects`] (503)
    /// or [`crate::Fault::BlockWebSockets`].
    pub connects_refused: u64,
    /// `POST /prompt` calls that queued a prompt.
    pub prompts_submitted: u64,
    /// Prompts whose playback reached its end (success, error or interrupt).
    pub prompts_finished: u64,
    /// Frames handed to sockets, firehose frames included.
    pub frames_sent: u64,
    /// Sockets open right now.
    pub open_sockets: u64,
    /// Prompts stopped by `POST /interrupt`.
    pub interrupts: u64,
    /// `POST /prompt` answers cut by [`crate::Fault::CutPromptReply`].
    pub prompt_replies_cut: u64,
    /// `POST /prompt` answers held by [`crate::Fault::DelayPromptReply`].
    pub prompt_replies_delayed: u64,
    /// Prompts enqueued under the server's own id although the request
    /// asked for one ([`crate::Fault::IgnoreClientPromptId`]).
    pub prompt_ids_replaced: u64,
    /// Terminal frames sent corrupted ([`crate::Fault::CorruptTerminalFrame`]).
    pub terminal_frames_corrupted: u64,
    /// `/history/{id}` answered 500 by [`crate::Fault::HistoryUnreadable`].
    pub history_unreadable_answers: u64,
}
