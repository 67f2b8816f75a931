//! The TOML shape of a rules file (`config/rules/*.toml`).

use serde::Deserialize;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    /// Ruleset version, recorded with every selection it makes.
    pub version: Spanned<String>,
    #[serde(default)]
    pub rule: Vec<Spanned<RuleSection>>,
}

/// One payload signature: bytes, optionally anchored by offset/depth.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignatureSection {
    /// Either `text = "..."` or `hex = "de ad be ef"`.
    #[serde(default)]
    pub text: Option<Spanned<String>>,
    #[serde(default)]
    pub hex: Option<Spanned<String>>,
    /// The match must start at or after this payload offset.
    #[serde(default)]
    pub offset: u32,
    /// The match must end within this many bytes from `offset` (0 = any).
    #[serde(default)]
    pub depth: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlagsSection {
    /// Flags looked at, e.g. "SYN,ACK".
    pub mask: Spanned<String>,
    /// Their required values, e.g. "SYN" (SYN set, ACK clear).
    pub value: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: String,
    pub measures: Spanned<Vec<String>>,
    #[serde(default)]
    pub remote: Vec<Spanned<String>>,
    #[serde(default)]
    pub remote_files: Vec<Spanned<String>>,
    #[serde(default)]
    pub local: Vec<Spanned<String>>,
    #[serde(default)]
    pub local_files: Vec<Spanned<String>>,
    #[serde(default)]
    pub source: Vec<Spanned<String>>,
    #[serde(default)]
    pub source_files: Vec<Spanned<String>>,
    #[serde(default)]
    pub destination: Vec<Spanned<String>>,
    #[serde(default)]
    pub destination_files: Vec<Spanned<String>>,
    #[serde(default)]
    pub protocols: Vec<Spanned<String>>,
    #[serde(default)]
    pub src_ports: Vec<Spanned<String>>,
    #[serde(default)]
    pub dst_ports: Vec<Spanned<String>>,
    #[serde(default)]
    pub tcp_flags: Option<FlagsSection>,
    #[serde(default)]
    pub icmp_type: Option<u8>,
    #[serde(default)]
    pub icmp_code: Option<u8>,
    /// Inclusive range "MIN-MAX" (or a single value) of TTL / hop limit.
    #[serde(default)]
    pub ttl: Option<Spanned<String>>,
    /// Inclusive range of the IP packet length.
    #[serde(default)]
    pub size: Option<Spanned<String>>,
    #[serde(default)]
    pub ja4: Vec<Spanned<String>>,
    #[serde(default)]
    pub ja3: Vec<Spanned<String>>,
    /// JA3S of the responder's ServerHello.
    #[serde(default)]
    pub ja3s: Vec<Spanned<String>>,
    /// HASSH (the SSH client's KEXINIT) and hasshServer.
    #[serde(default)]
    pub hassh: Vec<Spanned<String>>,
    #[serde(default)]
    pub hassh_server: Vec<Spanned<String>>,
    /// Sealed payload signatures: the rule's condition holds when any of
    /// them matches. Only "rule matched" ever leaves the matcher.
    #[serde(default)]
    pub payload: Vec<SignatureSection>,
    /// Behavioural threshold over the packets that meet the other
    /// conditions: one source, more than N distinct targets in T seconds.
    #[serde(default)]
    pub scan: Option<ScanSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanSection {
    /// "destinations" or "ports" (distinct destination address+port pairs).
    pub distinct: Spanned<String>,
    pub more_than: Spanned<u32>,
    pub within_secs: Spanned<u64>,
}
