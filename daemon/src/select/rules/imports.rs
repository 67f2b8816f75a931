//! What the imported formats (Suricata, STIX, MISP, Zeek intel) did in
//! one load of the rules: counts by format and outcome, and every refused
//! rule with its file and line. `config::rules` fills it in; `furui
//! check-rules`, the log and the audit trail read it.

use std::collections::BTreeMap;

#[derive(Debug, Clone, Default)]
pub struct ImportSummary {
    /// "format outcome[ detail]" → count, e.g. "suricata refused pcre".
    pub counts: BTreeMap<String, u64>,
    /// Every refused rule, "file:line:0: what refused: `keyword` why"
    /// (config errors too unless refused rules are skipped).
    pub refusals: Vec<String>,
}

impl ImportSummary {
    pub fn count(&mut self, key: impl Into<String>) {
        *self.counts.entry(key.into()).or_default() += 1;
    }

    /// Items (rules, attributes, indicators) loaded from foreign formats.
    pub fn loaded(&self) -> u64 {
        self.counts
            .iter()
            .filter(|(k, _)| k.ends_with(" loaded"))
            .map(|(_, n)| n)
            .sum()
    }
}

impl std::fmt::Display for ImportSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (k, n) in &self.counts {
            writeln!(f, "  {k}: {n}")?;
        }
        Ok(())
    }
}
