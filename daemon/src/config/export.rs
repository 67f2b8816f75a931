//! `[deid]`, `[[purposes]]`, `[[consents]]` and `[[recipients]]`: who may
//! receive which records, with which fields, for which purpose, and how
//! addresses are de-identified for them (Arts. 23, 24, 26). Validated like
//! the rest of the config: every error with its line.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;
use time::OffsetDateTime;
use toml::Spanned;

use super::errors::Collector;
use crate::classify::Measure;
use crate::deid::{AddressPolicy, EpochPeriod};
use crate::flow::MechanicalRecord;

// ---- TOML shape ----

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeidSection {
    #[serde(default = "default_key_dir")]
    pub key_dir: Spanned<String>,
    #[serde(default = "default_epoch")]
    pub epoch: EpochPeriod,
    /// Key files kept, the current epoch's included; older ones are deleted.
    #[serde(default = "default_keep")]
    pub keep_epochs: Spanned<u32>,
}

impl Default for DeidSection {
    fn default() -> Self {
        DeidSection {
            key_dir: default_key_dir(),
            epoch: default_epoch(),
            keep_epochs: default_keep(),
        }
    }
}

fn default_key_dir() -> Spanned<String> {
    Spanned::new(0..0, "/var/lib/furui/keys".to_string())
}
fn default_epoch() -> EpochPeriod {
    EpochPeriod::Daily
}
fn default_keep() -> Spanned<u32> {
    Spanned::new(0..0, 2)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportSection {
    /// Where views for unreachable collectors wait (one file per sink).
    #[serde(default = "default_spool_dir")]
    pub spool_dir: Spanned<String>,
}

impl Default for ExportSection {
    fn default() -> Self {
        ExportSection {
            spool_dir: default_spool_dir(),
        }
    }
}

fn default_spool_dir() -> Spanned<String> {
    Spanned::new(0..0, "/var/lib/furui/spool".to_string())
}

/// The audit trail (`[audit]`): where it lives and how often a signed
/// counter checkpoint is written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    pub dir: Spanned<String>,
    #[serde(default = "default_checkpoint")]
    pub checkpoint_secs: Spanned<u32>,
}

fn default_checkpoint() -> Spanned<u32> {
    Spanned::new(0..0, 60)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audit {
    pub dir: PathBuf,
    pub checkpoint_secs: u32,
}

pub fn validate_audit(a: Option<AuditSection>, base: &std::path::Path, c: &mut Collector<'_>) -> Option<Audit> {
    let a = a?;
    if *a.checkpoint_secs.get_ref() == 0 {
        c.at(a.checkpoint_secs.span(), "checkpoint_secs must be at least 1");
    }
    Some(Audit {
        dir: super::prefixes::resolve(base, a.dir.get_ref()),
        checkpoint_secs: (*a.checkpoint_secs.get_ref()).max(1),
    })
}

/// Art. 29 aggregates: the counting period and the smallest count a
/// published cell may have.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AggregatesSection {
    #[serde(default = "default_period")]
    pub period_secs: Spanned<u32>,
    #[serde(default = "default_min_count")]
    pub min_count: Spanned<u32>,
}

impl Default for AggregatesSection {
    fn default() -> Self {
        AggregatesSection {
            period_secs: default_period(),
            min_count: default_min_count(),
        }
    }
}

fn default_period() -> Spanned<u32> {
    Spanned::new(0..0, 3600)
}
fn default_min_count() -> Spanned<u32> {
    Spanned::new(0..0, 10)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aggregates {
    pub period_secs: u32,
    pub min_count: u32,
}

/// The mTLS HTTPS API: where recipients with an `api` sink read their
/// records. Mutual TLS is required; there is no plain-HTTP listener.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiSection {
    pub listen: Spanned<String>,
    /// PEM server certificate chain and private key.
    pub cert: Spanned<String>,
    pub key: Spanned<String>,
    /// PEM CA certificate(s) that sign client certificates.
    pub client_ca: Spanned<String>,
    /// Views kept per recipient for reading (the oldest go first).
    #[serde(default = "default_api_buffer")]
    pub buffer: Spanned<u32>,
}

fn default_api_buffer() -> Spanned<u32> {
    Spanned::new(0..0, 100_000)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    pub listen: SocketAddr,
    pub cert: PathBuf,
    pub key: PathBuf,
    pub client_ca: PathBuf,
    pub buffer: usize,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PurposeSection {
    pub id: Spanned<String>,
    #[serde(default)]
    pub description: String,
    /// The law's own purpose (preventing damage from attacks): grants for
    /// it need no consent record.
    #[serde(default)]
    pub damage_prevention: bool,
}

/// A written consent for use outside damage prevention (Art. 23): the
/// policy requires the scope of the data, who uses it, and the specific
/// purpose, and it is valid only within its window.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentSection {
    pub id: Spanned<String>,
    pub scope: Spanned<String>,
    pub users: Spanned<String>,
    pub purpose: Spanned<String>,
    pub not_before: Spanned<toml::Value>,
    pub not_after: Spanned<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GrantSection {
    pub measures: Spanned<Vec<String>>,
    /// Record fields (a record grant); absent for an aggregate grant.
    #[serde(default)]
    pub fields: Option<Spanned<Vec<String>>>,
    /// An Art. 29 aggregate grant: counts per rule, destination port,
    /// measure and period, never records.
    #[serde(default)]
    pub aggregate: bool,
    pub purpose: Spanned<String>,
    #[serde(default)]
    pub consent: Option<Spanned<String>>,
    /// `pseudonymize` (default) or `truncate` (to truncate_v4/truncate_v6).
    #[serde(default)]
    pub addresses: Option<Spanned<String>>,
    #[serde(default)]
    pub truncate_v4: Option<Spanned<u8>>,
    #[serde(default)]
    pub truncate_v6: Option<Spanned<u8>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SinkSection {
    /// `ipfix-udp` or `ipfix-tcp` (TLS, NATS and the API come with the rest
    /// of the export work).
    pub kind: Spanned<String>,
    /// Collector or server address (not used by `api`).
    #[serde(default)]
    pub address: Option<Spanned<String>>,
    #[serde(default = "default_template_refresh")]
    pub template_refresh_secs: Spanned<u32>,
    /// NATS: the subject (default `furui.records.<recipient>`) and the
    /// JetStream stream (default `FURUI`, created if missing).
    #[serde(default)]
    pub subject: Option<Spanned<String>>,
    #[serde(default)]
    pub stream: Option<Spanned<String>>,
    /// `ipfix-tls`: the CA that signs the collector's certificate, the name
    /// to verify (default: the address's IP), and furui's certificate.
    #[serde(default)]
    pub server_ca: Option<Spanned<String>>,
    #[serde(default)]
    pub server_name: Option<Spanned<String>>,
    #[serde(default)]
    pub client_cert: Option<Spanned<String>>,
    #[serde(default)]
    pub client_key: Option<Spanned<String>>,
}

fn default_template_refresh() -> Spanned<u32> {
    Spanned::new(0..0, 60)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientSection {
    pub name: Spanned<String>,
    pub role: Spanned<String>,
    /// `sha256:` + 64 hex digits: the SHA-256 of the recipient's TLS client
    /// certificate's SubjectPublicKeyInfo.
    pub identity: Spanned<String>,
    #[serde(default)]
    pub grants: Vec<GrantSection>,
    #[serde(default)]
    pub sinks: Vec<SinkSection>,
    #[serde(default = "default_queue")]
    pub queue_capacity: Spanned<u32>,
    /// Bound of each sink's on-disk spool; beyond it views are dropped
    /// and counted.
    #[serde(default = "default_spool_max")]
    pub spool_max_bytes: Spanned<u64>,
    /// Push every signed audit checkpoint to this recipient's sinks that
    /// can carry it (NATS: `<subject>.witness`), so it holds a witness.
    #[serde(default)]
    pub witness: bool,
}

fn default_spool_max() -> Spanned<u64> {
    Spanned::new(0..0, 64 << 20)
}

fn default_queue() -> Spanned<u32> {
    Spanned::new(0..0, 65_536)
}

// ---- validated ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Analyst,
    Oversight,
    Operator,
}

impl Role {
    /// The name used in the config, the audit trail and the API's entries.
    pub fn name(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Oversight => "oversight",
            Role::Operator => "operator",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Consent {
    pub id: String,
    pub not_before: OffsetDateTime,
    pub not_after: OffsetDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// An Art. 29 aggregate grant (counts only; `fields` is empty).
    pub aggregate: bool,
    pub measures: BTreeSet<Measure>,
    /// Granted record fields, in `MechanicalRecord::FIELDS` order.
    pub fields: Vec<&'static str>,
    pub purpose: String,
    pub consent: Option<Consent>,
    pub addresses: AddressPolicy,
}

impl Grant {
    /// The grant covers a record of `measure` at `now` (a consent-based
    /// grant only inside the consent's window).
    pub fn covers(&self, measure: Measure, now: OffsetDateTime) -> bool {
        self.measures.contains(&measure)
            && self
                .consent
                .as_ref()
                .is_none_or(|c| c.not_before <= now && now < c.not_after)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkKind {
    IpfixUdp {
        to: SocketAddr,
        template_refresh_secs: u32,
    },
    IpfixTcp {
        to: SocketAddr,
    },
    IpfixTls {
        to: SocketAddr,
        server_ca: PathBuf,
        server_name: String,
        client_cert: PathBuf,
        client_key: PathBuf,
    },
    Nats {
        address: String,
        stream: String,
        subject: String,
    },
    /// Views kept for the HTTPS API (`[api]`).
    Api,
}

impl SinkKind {
    pub fn name(&self) -> &'static str {
        match self {
            SinkKind::IpfixUdp { .. } => "ipfix-udp",
            SinkKind::IpfixTcp { .. } => "ipfix-tcp",
            SinkKind::IpfixTls { .. } => "ipfix-tls",
            SinkKind::Nats { .. } => "nats",
            SinkKind::Api => "api",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    /// Metrics label and log name: `[a-z0-9-]`, at most 32 characters.
    pub name: String,
    pub role: Role,
    pub identity: [u8; 32],
    pub grants: Vec<Grant>,
    pub sinks: Vec<SinkKind>,
    pub queue_capacity: usize,
    pub spool_max_bytes: u64,
    pub witness: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deid {
    pub key_dir: PathBuf,
    pub epoch: EpochPeriod,
    pub keep_epochs: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Export {
    pub aggregates: Aggregates,
    pub api: Option<Api>,
    pub spool_dir: PathBuf,
    pub deid: Deid,
    pub recipients: Vec<Recipient>,
}

fn hex32(s: &str) -> Option<[u8; 32]> {
    let h = s.strip_prefix("sha256:")?;
    if h.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

#[allow(clippy::too_many_arguments)]
pub fn validate(
    aggregates: AggregatesSection,
    api: Option<ApiSection>,
    export: ExportSection,
    deid: DeidSection,
    purposes: Vec<PurposeSection>,
    consents: Vec<ConsentSection>,
    recipients: Vec<RecipientSection>,
    base: &std::path::Path,
    c: &mut Collector<'_>,
) -> Option<Export> {
    let before = c.errors.len();
    if *deid.keep_epochs.get_ref() == 0 {
        c.at(
            deid.keep_epochs.span(),
            "keep_epochs must be at least 1 (the current epoch)",
        );
    }
    let deid = Deid {
        key_dir: super::prefixes::resolve(base, deid.key_dir.get_ref()),
        epoch: deid.epoch,
        keep_epochs: *deid.keep_epochs.get_ref() as usize,
    };

    let mut purpose_map: HashMap<String, bool> = HashMap::new();
    for p in &purposes {
        if purpose_map
            .insert(p.id.get_ref().clone(), p.damage_prevention)
            .is_some()
        {
            c.at(p.id.span(), format!("purpose `{}` is defined twice", p.id.get_ref()));
        }
    }

    let mut consent_map: HashMap<String, Consent> = HashMap::new();
    for k in consents {
        for (v, what) in [
            (&k.scope, "scope (the data covered)"),
            (&k.users, "users (who uses the data)"),
            (&k.purpose, "purpose (the specific purpose)"),
        ] {
            if v.get_ref().trim().is_empty() {
                c.at(v.span(), format!("consent `{}` must state its {what}", k.id.get_ref()));
            }
        }
        let nb = super::parse_time(&k.not_before, "not_before", c);
        let na = super::parse_time(&k.not_after, "not_after", c);
        if let (Some(nb), Some(na)) = (nb, na) {
            if nb >= na {
                c.at(k.not_after.span(), "consent not_after must be later than not_before");
            }
            let consent = Consent {
                id: k.id.get_ref().clone(),
                not_before: nb,
                not_after: na,
            };
            if consent_map.insert(k.id.get_ref().clone(), consent).is_some() {
                c.at(k.id.span(), format!("consent `{}` is defined twice", k.id.get_ref()));
            }
        }
    }

    let mut out = Vec::new();
    let mut names = BTreeSet::new();
    for r in recipients {
        let name = r.name.get_ref().clone();
        if name.is_empty()
            || name.len() > 32
            || !name
                .chars()
                .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        {
            c.at(
                r.name.span(),
                format!("recipient name `{name}` must be 1-32 of a-z, 0-9 and '-'"),
            );
        }
        if !names.insert(name.clone()) {
            c.at(r.name.span(), format!("recipient `{name}` is defined twice"));
        }
        let role = match r.role.get_ref().as_str() {
            "analyst" => Some(Role::Analyst),
            "oversight" => Some(Role::Oversight),
            "operator" => Some(Role::Operator),
            other => {
                c.at(
                    r.role.span(),
                    format!("role `{other}` must be analyst, oversight or operator"),
                );
                None
            }
        };
        let identity = hex32(r.identity.get_ref());
        if identity.is_none() {
            c.at(
                r.identity.span(),
                "identity must be `sha256:` and 64 hex digits: the SHA-256 of the client certificate's public key (see README)",
            );
        }
        let mut grants = Vec::new();
        for g in &r.grants {
            let mut measures = BTreeSet::new();
            for m in g.measures.get_ref() {
                match Measure::from_name(m) {
                    Some(m) => {
                        measures.insert(m);
                    }
                    None => c.at(
                        g.measures.span(),
                        format!("unknown measure `{m}`; expected transit, inbound or outbound"),
                    ),
                }
            }
            if g.measures.get_ref().is_empty() {
                c.at(g.measures.span(), "a grant needs at least one measure");
            }
            let mut fields = Vec::new();
            match (&g.fields, g.aggregate) {
                (Some(f), true) if !f.get_ref().is_empty() => c.at(
                    f.span(),
                    "an aggregate grant exports counts, never record fields: remove `fields`",
                ),
                (_, true) => {}
                (None, false) => c.at(
                    g.measures.span(),
                    "a record grant needs `fields` (or `aggregate = true`)",
                ),
                (Some(list), false) => {
                    for f in list.get_ref() {
                        match MechanicalRecord::FIELDS.iter().find(|x| **x == f.as_str()) {
                            Some(x) => fields.push(*x),
                            None => c.at(
                                list.span(),
                                format!("`{f}` is not an exportable record field; see the record fields in README"),
                            ),
                        }
                    }
                    if list.get_ref().is_empty() {
                        c.at(list.span(), "a grant needs at least one field");
                    }
                }
            }
            fields.sort_by_key(|f| MechanicalRecord::FIELDS.iter().position(|x| x == f));
            fields.dedup();
            let purpose = g.purpose.get_ref().clone();
            let consent = match (purpose_map.get(&purpose), &g.consent) {
                (None, _) => {
                    c.at(
                        g.purpose.span(),
                        format!("purpose `{purpose}` is not defined in [[purposes]]"),
                    );
                    None
                }
                (Some(true), _) => None,
                (Some(false), None) => {
                    c.at(
                        g.purpose.span(),
                        format!(
                            "purpose `{purpose}` is not damage prevention: the grant must name a `consent` (Art. 23)"
                        ),
                    );
                    None
                }
                (Some(false), Some(id)) => match consent_map.get(id.get_ref()) {
                    Some(k) => Some(k.clone()),
                    None => {
                        c.at(
                            id.span(),
                            format!("consent `{}` is not defined in [[consents]]", id.get_ref()),
                        );
                        None
                    }
                },
            };
            let addresses = match g.addresses.as_ref().map(|a| a.get_ref().as_str()) {
                None | Some("pseudonymize") => AddressPolicy::Pseudonymize,
                Some("truncate") => {
                    let v4 = g.truncate_v4.as_ref().map_or(24, |v| *v.get_ref());
                    let v6 = g.truncate_v6.as_ref().map_or(48, |v| *v.get_ref());
                    if v4 > 32 || v6 > 128 {
                        c.at(
                            g.addresses.as_ref().expect("some").span(),
                            "truncate_v4 must be at most 32 and truncate_v6 at most 128",
                        );
                    }
                    AddressPolicy::Truncate { v4, v6 }
                }
                Some(other) => {
                    c.at(
                        g.addresses.as_ref().expect("some").span(),
                        format!("addresses `{other}` must be pseudonymize or truncate"),
                    );
                    AddressPolicy::Pseudonymize
                }
            };
            grants.push(Grant {
                measures,
                fields,
                purpose,
                consent,
                addresses,
                aggregate: g.aggregate,
            });
        }
        if r.grants.is_empty() {
            c.at(
                r.name.span(),
                format!("recipient `{name}` has no [[recipients.grants]]: it could receive nothing"),
            );
        }
        let mut sinks = Vec::new();
        for s in &r.sinks {
            let address = match (&s.address, s.kind.get_ref().as_str()) {
                (_, "api") => Spanned::new(0..0, String::new()),
                (Some(a), _) => a.clone(),
                (None, _) => {
                    c.at(
                        s.kind.span(),
                        format!("a `{}` sink needs an `address`", s.kind.get_ref()),
                    );
                    continue;
                }
            };
            if s.kind.get_ref() == "api" {
                if api.is_none() {
                    c.at(
                        s.kind.span(),
                        "an `api` sink needs the [api] section (listen, cert, key, client_ca)",
                    );
                }
                sinks.push(SinkKind::Api);
                continue;
            }
            if s.kind.get_ref() == "nats" {
                let subject = s
                    .subject
                    .as_ref()
                    .map_or(format!("furui.records.{name}"), |x| x.get_ref().clone());
                let stream = s.stream.as_ref().map_or("FURUI".to_string(), |x| x.get_ref().clone());
                let ok_token =
                    |t: &str| !t.is_empty() && !t.contains(|ch: char| ch.is_whitespace() || ch == '*' || ch == '>');
                if !subject.contains('.') || !subject.split('.').all(ok_token) {
                    let span = s.subject.as_ref().map_or(s.kind.span(), |x| x.span());
                    c.at(span, format!("NATS subject `{subject}` must be dot-separated tokens without wildcards, e.g. furui.records.soc-a"));
                }
                if !ok_token(&stream) || stream.contains('.') {
                    let span = s.stream.as_ref().map_or(s.kind.span(), |x| x.span());
                    c.at(
                        span,
                        format!("JetStream stream name `{stream}` must be one token without '.', '*', '>' or spaces"),
                    );
                }
                sinks.push(SinkKind::Nats {
                    address: address.get_ref().clone(),
                    stream,
                    subject,
                });
                continue;
            }
            let to = address.get_ref().parse::<SocketAddr>();
            if to.is_err() {
                c.at(
                    address.span(),
                    format!("`{}` is not an address:port", address.get_ref()),
                );
            }
            match (s.kind.get_ref().as_str(), to) {
                ("ipfix-udp", Ok(to)) => sinks.push(SinkKind::IpfixUdp {
                    to,
                    template_refresh_secs: (*s.template_refresh_secs.get_ref()).max(1),
                }),
                ("ipfix-tcp", Ok(to)) => sinks.push(SinkKind::IpfixTcp { to }),
                ("ipfix-tls", Ok(to)) => {
                    let mut file = |v: &Option<Spanned<String>>, what: &str| -> PathBuf {
                        match v {
                            Some(v) => {
                                let p = super::prefixes::resolve(base, v.get_ref());
                                if !p.is_file() {
                                    c.at(v.span(), format!("{what} `{}` is not a readable file", p.display()));
                                }
                                p
                            }
                            None => {
                                c.at(s.kind.span(), format!("an `ipfix-tls` sink needs `{what}`"));
                                PathBuf::new()
                            }
                        }
                    };
                    let (server_ca, client_cert, client_key) = (
                        file(&s.server_ca, "server_ca"),
                        file(&s.client_cert, "client_cert"),
                        file(&s.client_key, "client_key"),
                    );
                    let server_name = s
                        .server_name
                        .as_ref()
                        .map_or(to.ip().to_string(), |n| n.get_ref().clone());
                    sinks.push(SinkKind::IpfixTls {
                        to,
                        server_ca,
                        server_name,
                        client_cert,
                        client_key,
                    });
                }
                ("ipfix-udp" | "ipfix-tcp" | "ipfix-tls", Err(_)) => {}
                (other, _) => c.at(
                    s.kind.span(),
                    format!(
                        "sink kind `{other}` is not supported; expected ipfix-udp, ipfix-tcp, ipfix-tls, nats or api"
                    ),
                ),
            }
        }
        if grants.iter().any(|g| g.aggregate)
            && !sinks.iter().any(|s| matches!(s, SinkKind::Api | SinkKind::Nats { .. }))
        {
            c.at(
                r.name.span(),
                format!("recipient `{name}` has an aggregate grant: aggregates go out over `nats` or `api` sinks, and it has neither"),
            );
        }
        let queue_capacity = *r.queue_capacity.get_ref() as usize;
        if queue_capacity == 0 {
            c.at(r.queue_capacity.span(), "queue_capacity must be at least 1");
        }
        if let (Some(role), Some(identity)) = (role, identity) {
            out.push(Recipient {
                name,
                role,
                identity,
                grants,
                sinks,
                queue_capacity,
                spool_max_bytes: *r.spool_max_bytes.get_ref(),
                witness: r.witness,
            });
        }
    }
    let api = api.and_then(|a| {
        let listen = match a.listen.get_ref().parse::<SocketAddr>() {
            Ok(l) => Some(l),
            Err(_) => {
                c.at(
                    a.listen.span(),
                    format!("[api] listen `{}` is not ADDR:PORT", a.listen.get_ref()),
                );
                None
            }
        };
        let mut file = |v: &Spanned<String>, what: &str| {
            let p = super::prefixes::resolve(base, v.get_ref());
            if !p.is_file() {
                c.at(
                    v.span(),
                    format!("[api] {what} `{}` is not a readable file", p.display()),
                );
            }
            p
        };
        let (cert, key, client_ca) = (
            file(&a.cert, "cert"),
            file(&a.key, "key"),
            file(&a.client_ca, "client_ca"),
        );
        Some(Api {
            listen: listen?,
            cert,
            key,
            client_ca,
            buffer: (*a.buffer.get_ref() as usize).max(1),
        })
    });
    if *aggregates.period_secs.get_ref() < 1 {
        c.at(aggregates.period_secs.span(), "period_secs must be at least 1");
    }
    let aggregates = Aggregates {
        period_secs: (*aggregates.period_secs.get_ref()).max(1),
        min_count: *aggregates.min_count.get_ref(),
    };
    (c.errors.len() == before).then_some(Export {
        aggregates,
        api,
        spool_dir: super::prefixes::resolve(base, export.spool_dir.get_ref()),
        deid,
        recipients: out,
    })
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    const BASE: &str = "[capture]\ninterface = \"x\"\n[records]\npath = \"r\"\n";

    const GOOD: &str = r#"
[deid]
key_dir = "keys"
epoch = "hourly"

[[purposes]]
id = "damage-prevention"
damage_prevention = true

[[purposes]]
id = "research"

[[consents]]
id = "c-1"
scope = "flow records of inbound scans, pseudonymized"
users = "university lab X"
purpose = "scanner population study"
not_before = "2026-01-01T00:00:00Z"
not_after = "2027-01-01T00:00:00Z"

[[recipients]]
name = "soc-a"
role = "analyst"
identity = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
[[recipients.grants]]
measures = ["inbound", "transit"]
fields = ["responder", "initiator", "protocol", "rules"]
purpose = "damage-prevention"
addresses = "truncate"
truncate_v4 = 16
[[recipients.grants]]
measures = ["inbound"]
fields = ["initiator"]
purpose = "research"
consent = "c-1"
[[recipients.sinks]]
kind = "ipfix-udp"
address = "127.0.0.1:4739"
"#;

    #[test]
    fn recipients_grants_and_consents_load() {
        let cfg = Config::parse(Path::new("/etc/furui/furui.toml"), &format!("{BASE}{GOOD}")).unwrap();
        let e = &cfg.export;
        assert_eq!(e.deid.key_dir, Path::new("/etc/furui/keys"));
        assert_eq!(e.deid.epoch, crate::deid::EpochPeriod::Hourly);
        let r = &e.recipients[0];
        assert_eq!(r.name, "soc-a");
        assert_eq!(r.identity[0], 0x01);
        // Fields come out in record order, whatever the order written.
        assert_eq!(r.grants[0].fields, ["protocol", "initiator", "responder", "rules"]);
        assert_eq!(
            r.grants[0].addresses,
            crate::deid::AddressPolicy::Truncate { v4: 16, v6: 48 }
        );
        assert_eq!(r.grants[1].consent.as_ref().unwrap().id, "c-1");
        let inside = time::macros::datetime!(2026-06-01 00:00 UTC);
        let after = time::macros::datetime!(2027-06-01 00:00 UTC);
        assert!(r.grants[1].covers(crate::classify::Measure::Inbound, inside));
        assert!(
            !r.grants[1].covers(crate::classify::Measure::Inbound, after),
            "consent expired"
        );
        assert!(!r.grants[1].covers(crate::classify::Measure::Transit, inside));
        assert!(
            r.grants[0].covers(crate::classify::Measure::Transit, after),
            "damage prevention needs no consent"
        );
    }

    #[test]
    fn every_export_mistake_is_reported_with_its_line() {
        let bad = r#"
[[purposes]]
id = "research"

[[consents]]
id = "c-1"
scope = ""
users = "lab"
purpose = "study"
not_before = "2026-01-01T00:00:00Z"
not_after = "2025-01-01T00:00:00Z"

[[recipients]]
name = "SOC A"
role = "boss"
identity = "sha256:abc"
[[recipients.grants]]
measures = ["sideways"]
fields = ["initiator", "payload"]
purpose = "research"
[[recipients.grants]]
measures = ["inbound"]
fields = ["initiator"]
purpose = "marketing"
[[recipients.sinks]]
kind = "carrier-pigeon"
address = "x"
"#;
        let errs = Config::parse(Path::new("f.toml"), &format!("{BASE}{bad}")).unwrap_err();
        let text = errs.to_string();
        let lines: Vec<usize> = errs.0.iter().map(|e| e.line).collect();
        // BASE is 4 lines, so file line = 4 + line in `bad`.
        for (l, what) in [
            (11, "consent must state its scope"),
            (15, "not_after earlier than not_before"),
            (18, "bad recipient name"),
            (19, "unknown role"),
            (20, "identity not sha256:hex"),
            (22, "unknown measure"),
            (23, "not an exportable field"),
            (24, "research is not damage prevention: consent required"),
            (28, "purpose not defined"),
            (30, "unknown sink kind"),
        ] {
            assert!(lines.contains(&l), "no error at line {l} ({what}):\n{text}");
        }
        assert!(text.contains("`payload` is not an exportable record field"), "{text}");
        let agg = r#"
[[purposes]]
id = "stats"
damage_prevention = true

[[recipients]]
name = "agg"
role = "analyst"
identity = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
[[recipients.grants]]
measures = ["inbound"]
aggregate = true
fields = ["initiator"]
purpose = "stats"
[[recipients.sinks]]
kind = "ipfix-udp"
address = "127.0.0.1:4739"
"#;
        let agg_text = Config::parse(Path::new("f.toml"), &format!("{BASE}{agg}"))
            .unwrap_err()
            .to_string();
        assert!(
            agg_text.contains("f.toml:17:"),
            "fields in an aggregate grant, with its line: {agg_text}"
        );
        assert!(
            agg_text.contains("aggregates go out over `nats` or `api` sinks"),
            "{agg_text}"
        );
        assert!(text.contains("must name a `consent` (Art. 23)"), "{text}");
    }
}
