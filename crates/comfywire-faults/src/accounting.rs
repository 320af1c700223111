//! Every submission accounted for: one client's submissions and terminal
//! events compared with the server's own [`Ledger`].
//!
//! The rules, per client (by `client_id`):
//! * every prompt the server enqueued for it reaches exactly one terminal
//!   event (a prompt adopted under a server-chosen id is the same prompt);
//! * none ran twice on the server, none was enqueued twice;
//! * every submit that returned an error ("not submitted") is absent from
//!   the ledger: confirmed, not assumed;
//! * every submit that returned an id names a prompt the server enqueued;
//! * a submit that was cancelled (its future dropped, or its process
//!   killed) either never reached the queue, or ends like any other;
//! * a terminal outcome agrees with how the server says the run ended.

use std::collections::{HashMap, HashSet};

use comfywire_mock::{Ledger, LedgerEntry, ReplyFate, RunEnd};
use comfywire_proto::{Event, ExecutionRecord};

use crate::invariants::OutcomeKind;

/// How one `submit` call returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Returned {
    /// `Ok` with this prompt id.
    Accepted(String),
    /// An error: the client says the prompt was not submitted.
    Refused(String),
    /// The future was dropped, or its process killed, before it returned.
    Cancelled,
}

/// One submission: the prompt id the client asked for and how it returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The `prompt_id` passed to `submit_with`.
    pub requested: String,
    /// How the call returned.
    pub returned: Returned,
}

/// One terminal outcome a client delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Terminal {
    /// How it ended.
    pub kind: OutcomeKind,
    /// Whether the record counts the prompt as the client's own.
    pub ours: bool,
}

impl Terminal {
    /// The terminal of a record.
    pub fn of(record: &ExecutionRecord) -> Terminal {
        Terminal {
            kind: OutcomeKind::of(record),
            ours: record.ours,
        }
    }
}

/// Terminal outcomes a client delivered, by the prompt id it used.
pub type Terminals = HashMap<String, Vec<Terminal>>;

/// The terminal events of a stream, by prompt id.
pub fn terminals_of(events: &[Event]) -> Terminals {
    let mut terminals = Terminals::new();
    for event in events {
        if let Event::Finished(record) = event {
            terminals
                .entry(record.prompt_id.clone())
                .or_default()
                .push(Terminal::of(record));
        }
    }
    terminals
}

/// A prompt the server enqueued for one client: every ledger entry that
/// asked for the same id (more than one means it was enqueued twice).
#[derive(Debug, Clone)]
pub struct Enqueued {
    /// The id the request asked for, if any.
    pub requested: Option<String>,
    /// The entries, oldest first.
    pub entries: Vec<LedgerEntry>,
}

impl Enqueued {
    /// Every id it answers to: the one asked for and the server's.
    pub fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.requested.iter().cloned().collect();
        for id in self.entries.iter().filter_map(|e| e.prompt_id.clone()) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
        ids
    }

    /// Times the server started it, over every entry.
    pub fn runs(&self) -> u32 {
        self.entries.iter().map(|e| e.runs).sum()
    }

    /// How its last entry ended.
    pub fn end(&self) -> Option<RunEnd> {
        self.entries.last().and_then(|e| e.end)
    }

    /// True when the server enqueued it under an id of its own.
    pub fn adopted(&self) -> bool {
        self.entries.iter().any(LedgerEntry::adopted)
    }

    /// The server's side in a few words, for violation lines.
    pub fn describe(&self) -> String {
        let Some(last) = self.entries.last() else {
            return "no ledger entry".into();
        };
        let id = last.prompt_id.as_deref().unwrap_or("?");
        let reply = match last.reply {
            ReplyFate::Sent => "answer sent".to_owned(),
            ReplyFate::Delayed => format!("answer held {} ms", last.reply_delay_ms),
            ReplyFate::Cut => "answer cut".to_owned(),
        };
        let end = self.end().map_or("still queued or running", RunEnd::name);
        format!(
            "server: enqueued as {id} ({reply}), ran {}x, ended {end}",
            self.runs()
        )
    }
}

/// Prompts the server enqueued for `client_id`, grouped by the id asked
/// for, in ledger order.
pub fn enqueued_for(ledger: &Ledger, client_id: &str) -> Vec<Enqueued> {
    let mut groups: Vec<Enqueued> = Vec::new();
    for entry in ledger.for_client(client_id).filter(|e| e.enqueued) {
        let key = entry
            .requested_prompt_id
            .clone()
            .or_else(|| entry.prompt_id.clone());
        match groups
            .iter_mut()
            .find(|g| g.requested.is_some() && g.requested == key)
        {
            Some(group) => group.entries.push(entry.clone()),
            None => groups.push(Enqueued {
                requested: entry.requested_prompt_id.clone(),
                entries: vec![entry.clone()],
            }),
        }
    }
    groups
}

/// What the accounting found for one client.
#[derive(Debug, Clone, Default)]
pub struct Accounts {
    /// One line per broken rule.
    pub violations: Vec<String>,
    /// Submits that returned an error.
    pub not_submitted: u64,
    /// Of those, the ones the ledger confirms were never enqueued.
    pub not_submitted_confirmed: u64,
    /// Submits cancelled before they returned.
    pub cancelled: u64,
    /// Of those, the ones the server had enqueued.
    pub cancelled_enqueued: u64,
    /// Prompts the server enqueued under its own id.
    pub adopted: u64,
    /// Prompts that ran more than once on the server.
    pub server_duplicates: u64,
    /// Prompts with more than one terminal event.
    pub duplicates: u64,
    /// Prompts with no terminal event within the deadline.
    pub hangs: u64,
}

/// Accounts for one client's `attempts` against the server's `ledger`.
/// `terminals` holds what the client delivered; `hung` the ids whose wait
/// hit its deadline (reported as hangs rather than as missing ends);
/// `has_history` says whether the server holds a history entry now that
/// it will serve.
pub fn account(
    client_id: &str,
    attempts: &[Attempt],
    ledger: &Ledger,
    terminals: &Terminals,
    hung: &HashSet<String>,
    has_history: &dyn Fn(&str) -> bool,
) -> Accounts {
    let mut accounts = Accounts::default();
    let enqueued = enqueued_for(ledger, client_id);
    let complete = ledger.evicted == 0;
    let attempt_of = |group: &Enqueued| {
        attempts.iter().find(|a| {
            group.requested.as_deref() == Some(a.requested.as_str())
                || matches!(&a.returned, Returned::Accepted(id) if group.ids().contains(id))
        })
    };
    for group in &enqueued {
        let ids = group.ids();
        let name = ids.join(" / ");
        let facts = group.describe();
        let v = &mut accounts.violations;
        match attempt_of(group).map(|a| &a.returned) {
            None => {
                v.push(format!(
                    "the server enqueued {name} for this client, but no submit asked for it ({facts})"
                ));
                continue;
            }
            Some(Returned::Refused(error)) => {
                v.push(format!(
                    "not submitted, yet enqueued: submit of {name} returned `{error}` ({facts})"
                ));
                continue;
            }
            Some(Returned::Cancelled) => accounts.cancelled_enqueued += 1,
            Some(Returned::Accepted(id)) => {
                if group.entries.last().and_then(|e| e.prompt_id.as_ref()) != Some(id) {
                    v.push(format!(
                        "submit of {name} returned the id {id}, not the one the server runs ({facts})"
                    ));
                }
            }
        }
        if group.adopted() {
            accounts.adopted += 1;
        }
        if group.entries.len() > 1 {
            v.push(format!(
                "{name} was enqueued {} times ({facts})",
                group.entries.len()
            ));
        }
        if group.runs() > 1 {
            accounts.server_duplicates += 1;
            v.push(format!(
                "{name} ran {} times on the server ({facts})",
                group.runs()
            ));
        }
        let ends: Vec<(String, Terminal)> = ids
            .iter()
            .flat_map(|id| {
                terminals
                    .get(id)
                    .into_iter()
                    .flatten()
                    .map(move |k| (id.clone(), *k))
            })
            .collect();
        match ends.as_slice() {
            [] if ids.iter().any(|id| hung.contains(id)) => {
                accounts.hangs += 1;
                v.push(format!(
                    "hang: {name} not terminal within the deadline ({facts})"
                ));
            }
            [] => {
                accounts.hangs += 1;
                v.push(format!("no terminal event for {name} ({facts})"));
            }
            [(id, end)] => {
                if let Some(problem) = disagreement(end.kind, group.end(), has_history(id)) {
                    v.push(format!("{name} {problem} ({facts})"));
                }
                if !end.ours {
                    v.push(format!(
                        "{name} ended as {id}, but not as this client's own prompt (ours = false) ({facts})"
                    ));
                }
            }
            many => {
                accounts.duplicates += 1;
                v.push(format!(
                    "{} terminal events for {name} ({facts})",
                    many.len()
                ));
            }
        }
    }
    for attempt in attempts {
        let requested = attempt.requested.as_str();
        match &attempt.returned {
            Returned::Refused(_) => {
                accounts.not_submitted += 1;
                if !ledger.enqueued(requested) {
                    accounts.not_submitted_confirmed += 1;
                }
            }
            Returned::Cancelled => accounts.cancelled += 1,
            Returned::Accepted(id) => {
                let known = enqueued
                    .iter()
                    .any(|g| g.requested.as_deref() == Some(requested) || g.ids().contains(id));
                if !known && complete {
                    accounts.violations.push(format!(
                        "submit of {requested} returned {id}, but the server never enqueued it for this client"
                    ));
                }
            }
        }
    }
    accounts
}

/// Why a terminal outcome contradicts the server's end, if it does.
fn disagreement(kind: OutcomeKind, end: Option<RunEnd>, has_history: bool) -> Option<String> {
    let agrees = match (kind, end) {
        // The server died mid-run: the client may have seen any ending
        // frame before the restart, or none.
        (_, Some(RunEnd::Restarted)) => true,
        (OutcomeKind::Succeeded, Some(RunEnd::Succeeded))
        | (OutcomeKind::Failed, Some(RunEnd::Failed))
        | (OutcomeKind::Interrupted, Some(RunEnd::Interrupted)) => true,
        // Lost is right when the server no longer holds what it knew.
        (OutcomeKind::Lost, Some(_)) => !has_history,
        _ => false,
    };
    if agrees {
        return None;
    }
    let server = end.map_or("is still queued or running", RunEnd::name);
    let history = if has_history { "" } else { " (no history)" };
    Some(format!(
        "ended {} but the server says {server}{history}",
        kind.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(requested: &str, id: Option<&str>, runs: u32, end: Option<RunEnd>) -> LedgerEntry {
        LedgerEntry {
            seq: 0,
            requested_prompt_id: Some(requested.into()),
            prompt_id: id.map(str::to_owned),
            client_id: Some("c".into()),
            enqueued: id.is_some(),
            number: None,
            status: if id.is_some() { 200 } else { 400 },
            reply: ReplyFate::Sent,
            reply_delay_ms: 0,
            runs,
            end,
            ended_at_ms: None,
        }
    }

    fn ledger(entries: Vec<LedgerEntry>) -> Ledger {
        Ledger {
            capacity: 100,
            evicted: 0,
            entries,
        }
    }

    fn attempt(requested: &str, returned: Returned) -> Attempt {
        Attempt {
            requested: requested.into(),
            returned,
        }
    }

    fn ended(pairs: &[(&str, OutcomeKind)]) -> Terminals {
        let mut t = Terminals::new();
        for (id, kind) in pairs {
            t.entry((*id).to_owned()).or_default().push(Terminal {
                kind: *kind,
                ours: true,
            });
        }
        t
    }

    fn run(attempts: &[Attempt], ledger: &Ledger, terminals: &Terminals) -> Accounts {
        account("c", attempts, ledger, terminals, &HashSet::new(), &|_| true)
    }

    #[test]
    fn a_clean_run_and_a_confirmed_refusal_pass() {
        let l = ledger(vec![
            entry("a", Some("a"), 1, Some(RunEnd::Succeeded)),
            entry("b", None, 0, None),
        ]);
        let attempts = [
            attempt("a", Returned::Accepted("a".into())),
            attempt("b", Returned::Refused("HTTP 400".into())),
        ];
        let acc = run(&attempts, &l, &ended(&[("a", OutcomeKind::Succeeded)]));
        assert!(acc.violations.is_empty(), "{:?}", acc.violations);
        assert_eq!((acc.not_submitted, acc.not_submitted_confirmed), (1, 1));
    }

    #[test]
    fn an_error_for_an_enqueued_prompt_is_caught() {
        let l = ledger(vec![entry("a", Some("a"), 1, Some(RunEnd::Succeeded))]);
        let attempts = [attempt("a", Returned::Refused("reading body".into()))];
        let acc = run(&attempts, &l, &Terminals::new());
        assert_eq!(acc.not_submitted_confirmed, 0);
        assert_eq!(acc.violations.len(), 1, "{:?}", acc.violations);
        assert!(acc.violations[0].starts_with("not submitted, yet enqueued"));
    }

    #[test]
    fn an_adopted_id_is_the_same_prompt_and_two_ends_are_a_duplicate() {
        let l = ledger(vec![entry(
            "mine",
            Some("theirs"),
            1,
            Some(RunEnd::Succeeded),
        )]);
        let attempts = [attempt("mine", Returned::Accepted("theirs".into()))];
        let acc = run(&attempts, &l, &ended(&[("theirs", OutcomeKind::Succeeded)]));
        assert!(acc.violations.is_empty(), "{:?}", acc.violations);
        assert_eq!(acc.adopted, 1);
        let mut observed = ended(&[("theirs", OutcomeKind::Succeeded)]);
        observed.values_mut().flatten().for_each(|t| t.ours = false);
        let acc = run(&attempts, &l, &observed);
        assert_eq!(acc.violations.len(), 1, "{:?}", acc.violations);
        let twice = ended(&[
            ("theirs", OutcomeKind::Succeeded),
            ("mine", OutcomeKind::Lost),
        ]);
        let acc = run(&attempts, &l, &twice);
        assert_eq!(acc.duplicates, 1);
    }

    #[test]
    fn a_cancelled_submit_the_server_ran_must_end_and_a_rerun_is_caught() {
        let l = ledger(vec![
            entry("a", Some("a"), 1, Some(RunEnd::Succeeded)),
            entry("a", Some("a"), 1, Some(RunEnd::Succeeded)),
            entry("b", Some("b"), 1, Some(RunEnd::Failed)),
        ]);
        let attempts = [
            attempt("a", Returned::Accepted("a".into())),
            attempt("b", Returned::Cancelled),
        ];
        let acc = run(&attempts, &l, &ended(&[("a", OutcomeKind::Succeeded)]));
        assert_eq!(acc.server_duplicates, 1);
        assert_eq!(acc.cancelled_enqueued, 1);
        let lines = acc.violations.join("\n");
        assert!(lines.contains("a was enqueued 2 times"), "{lines}");
        assert!(lines.contains("a ran 2 times"), "{lines}");
        assert!(lines.contains("no terminal event for b"), "{lines}");
    }

    #[test]
    fn outcomes_must_agree_with_the_servers_end() {
        let l = ledger(vec![entry("a", Some("a"), 1, Some(RunEnd::Succeeded))]);
        let attempts = [attempt("a", Returned::Accepted("a".into()))];
        let lost = ended(&[("a", OutcomeKind::Lost)]);
        let acc = run(&attempts, &l, &lost);
        assert_eq!(acc.violations.len(), 1, "{:?}", acc.violations);
        let acc = account("c", &attempts, &l, &lost, &HashSet::new(), &|_| false);
        assert!(
            acc.violations.is_empty(),
            "lost after history is gone is fine"
        );
        let failed = ended(&[("a", OutcomeKind::Failed)]);
        assert_eq!(run(&attempts, &l, &failed).violations.len(), 1);
    }
}
