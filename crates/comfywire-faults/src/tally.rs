//! Counting what many schedules did, and the summary table of long runs.

use std::collections::BTreeMap;
use std::fmt;

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
    /// Duplicate terminal events seen.
    pub duplicates: u64,
    /// Waits that hit their total deadline.
    pub hangs: u64,
    /// Faults injected, by name.
    pub faults: BTreeMap<String, u64>,
    /// Peak resident set size seen, KiB.
    pub peak_rss_kib: u64,
    /// Every violation, prefixed by its seed.
    pub violations: Vec<String>,
    /// Failures explained by a known, reported library bug (kept apart so
    /// the slice stays green while it is open; each has an ignored test).
    pub known: Vec<String>,
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
        self.lost_with_reason += other.lost_with_reason;
        self.duplicates += other.duplicates;
        self.hangs += other.hangs;
        self.peak_rss_kib = self.peak_rss_kib.max(other.peak_rss_kib);
        self.violations.extend(other.violations);
        self.known.extend(other.known);
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

    /// Panics with every violation and the seeds to replay them.
    pub fn assert_clean(&self) {
        if !self.violations.is_empty() {
            let shown: Vec<&String> = self.violations.iter().take(20).collect();
            panic!(
                "{} violation(s); replay one with COMFYWIRE_SEED=<seed>:\n{}",
                self.violations.len(),
                shown
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join("\n")
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
            "| not submitted (POST /prompt refused or cut) | {} |",
            n(OutcomeKind::NotSubmitted)
        )?;
        writeln!(f, "| duplicate terminal events | {} |", self.duplicates)?;
        writeln!(f, "| hangs (total deadline hit) | {} |", self.hangs)?;
        writeln!(f, "| violations | {} |", self.violations.len())?;
        writeln!(
            f,
            "| known-bug cases (deaf socket while queued) | {} |",
            self.known.len()
        )?;
        writeln!(f, "| peak RSS | {} MiB |", self.peak_rss_kib / 1024)?;
        let faults: Vec<String> = self
            .faults
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "| faults injected | {} |", faults.join(", "))
    }
}
