//! Counting what many schedules did, and the summary table of long runs.

use std::collections::BTreeMap;
use std::fmt;

use crate::accounting::Accounts;
use crate::invariants::OutcomeKind;

/// What one or many schedules produced.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Schedules run.
    pub schedules: u64,
    /// Prompts submitted (including refused submissions).
    pub prompts: u64,
    /// Terminal outcomes by kind.
    pub outcomes: BTreeMap<OutcomeKind, u64>,
    /// Lost outcomes that carried a non-empty reason.
    pub lost_with_reason: u64,
    /// Prompts with more than one terminal event.
    pub duplicates: u64,
    /// Prompts the server enqueued that reached no terminal event within
    /// the deadline.
    pub hangs: u64,
    /// Submits that returned an error, and of those the ones the server's
    /// ledger confirms it never enqueued.
    pub not_submitted: (u64, u64),
    /// Submits cancelled before they returned, and of those the ones the
    /// server had enqueued.
    pub cancelled: (u64, u64),
    /// Prompts the server enqueued under an id of its own.
    pub adopted: u64,
    /// Prompts the server ran more than once.
    pub server_duplicates: u64,
    /// Client processes killed and restarted.
    pub kills: u64,
    /// Faults injected, by name.
    pub faults: BTreeMap<String, u64>,
    /// What the mock's submission faults did (its counters), by name.
    pub effects: BTreeMap<String, u64>,
    /// Peak resident set size seen, KiB.
    pub peak_rss_kib: u64,
    /// Every violation, prefixed by its seed.
    pub violations: Vec<String>,
}

impl Tally {
    /// Adds another tally into this one.
    pub fn merge(&mut self, other: Tally) {
        self.schedules += other.schedules;
        self.prompts += other.prompts;
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
        for (k, v) in other.faults {
            *self.faults.entry(k).or_default() += v;
        }
        for (k, v) in other.effects {
            *self.effects.entry(k).or_default() += v;
        }
        self.lost_with_reason += other.lost_with_reason;
        self.duplicates += other.duplicates;
        self.hangs += other.hangs;
        self.not_submitted.0 += other.not_submitted.0;
        self.not_submitted.1 += other.not_submitted.1;
        self.cancelled.0 += other.cancelled.0;
        self.cancelled.1 += other.cancelled.1;
        self.adopted += other.adopted;
        self.server_duplicates += other.server_duplicates;
        self.kills += other.kills;
        self.peak_rss_kib = self.peak_rss_kib.max(other.peak_rss_kib);
        self.violations.extend(other.violations);
    }

    /// Adds one client's accounting (its violations are the caller's to
    /// prefix and add).
    pub fn account(&mut self, accounts: &Accounts) {
        self.duplicates += accounts.duplicates;
        self.hangs += accounts.hangs;
        self.not_submitted.0 += accounts.not_submitted;
        self.not_submitted.1 += accounts.not_submitted_confirmed;
        self.cancelled.0 += accounts.cancelled;
        self.cancelled.1 += accounts.cancelled_enqueued;
        self.adopted += accounts.adopted;
        self.server_duplicates += accounts.server_duplicates;
        for _ in 0..accounts.not_submitted {
            self.outcome(OutcomeKind::NotSubmitted);
        }
    }

    /// Counts one outcome.
    pub fn outcome(&mut self, kind: OutcomeKind) {
        *self.outcomes.entry(kind).or_default() += 1;
    }

    /// Counts one injected fault.
    pub fn fault(&mut self, name: &str) {
        *self.faults.entry(name.to_owned()).or_default() += 1;
    }

    /// Samples the resident set size into the peak.
    pub fn sample_rss(&mut self) {
        if let Some(kib) = crate::memory::rss_kib() {
            self.peak_rss_kib = self.peak_rss_kib.max(kib);
        }
    }

    /// Panics when there is any violation, with the first few and the way
    /// to replay them (callers print the whole list first).
    pub fn assert_clean(&self) {
        if !self.violations.is_empty() {
            let shown: Vec<&str> = self.violations.iter().take(5).map(String::as_str).collect();
            panic!(
                "{} violation(s) (all printed above as VIOLATION lines); replay one with \
                 COMFYWIRE_SEED=<seed>. First ones:\n{}",
                self.violations.len(),
                shown.join("\n")
            );
        }
    }
}

impl fmt::Display for Tally {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = |k: OutcomeKind| self.outcomes.get(&k).copied().unwrap_or(0);
        writeln!(f, "| metric | value |")?;
        writeln!(f, "|---|---|")?;
        writeln!(f, "| schedules | {} |", self.schedules)?;
        writeln!(f, "| prompts | {} |", self.prompts)?;
        writeln!(f, "| succeeded | {} |", n(OutcomeKind::Succeeded))?;
        writeln!(f, "| failed | {} |", n(OutcomeKind::Failed))?;
        writeln!(f, "| interrupted | {} |", n(OutcomeKind::Interrupted))?;
        writeln!(
            f,
            "| lost (all with a reason: {}) | {} |",
            self.lost_with_reason,
            n(OutcomeKind::Lost)
        )?;
        writeln!(
            f,
            "| not submitted (submit returned an error) / confirmed absent on the server | {} / {} |",
            self.not_submitted.0, self.not_submitted.1
        )?;
        writeln!(
            f,
            "| submits cancelled / enqueued anyway | {} / {} |",
            self.cancelled.0, self.cancelled.1
        )?;
        writeln!(f, "| adopted under a server-chosen id | {} |", self.adopted)?;
        writeln!(
            f,
            "| client processes killed and resumed | {} |",
            self.kills
        )?;
        writeln!(f, "| duplicate terminal events | {} |", self.duplicates)?;
        writeln!(
            f,
            "| ran twice on the server | {} |",
            self.server_duplicates
        )?;
        writeln!(
            f,
            "| hangs (no terminal event by the deadline) | {} |",
            self.hangs
        )?;
        writeln!(f, "| violations | {} |", self.violations.len())?;
        writeln!(f, "| peak RSS | {} MiB |", self.peak_rss_kib / 1024)?;
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "| faults injected | {} |", faults.join(", "))?;
        let effects: Vec<String> = self
            .effects
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(
            f,
            "| submission faults that took effect | {} |",
            effects.join(", ")
        )
    }
}
