//! Spooled views after a restart under another configuration: each is
//! sent only under the very grant it was projected for, to the same
//! collector, while that grant is in force; everything else is dropped
//! and counted by reason — never a panic, never another collector.

use std::sync::{Arc, Mutex, OnceLock};

use time::{Duration, OffsetDateTime};

use super::project::{project, tests as p, Value, View};
use super::*;
use crate::config::audit::Role;
use crate::config::purposes::Consent;
use crate::config::recipients::Grant;
use crate::deid::{AddressPolicy, CryptoPan, EpochKey};

type Sent = Arc<Mutex<Vec<(usize, View)>>>;

/// A collector that is down until `up` is set, then keeps what it gets.
struct Fake {
    up: Arc<Mutex<bool>>,
    got: Sent,
}

impl Sink for Fake {
    fn kind(&self) -> &'static str {
        "ipfix-tcp"
    }
    fn send(&mut self, grant: usize, view: &View) -> std::io::Result<()> {
        if !*self.up.lock().unwrap() {
            return Err(std::io::Error::other("collector down"));
        }
        self.got.lock().unwrap().push((grant, view.clone()));
        Ok(())
    }
    fn takes_rows(&self) -> bool {
        true
    }
}

/// One instant for the whole test (the consent window is part of a
/// grant's identity, so every call must build the same window).
fn now() -> OffsetDateTime {
    static NOW: OnceLock<OffsetDateTime> = OnceLock::new();
    *NOW.get_or_init(OffsetDateTime::now_utc)
}

fn fields_grant() -> Grant {
    p::grant(&["protocol", "packets_forward"], AddressPolicy::Pseudonymize)
}

fn consent_grant() -> Grant {
    let mut g = p::grant(&["protocol", "initiator"], AddressPolicy::Pseudonymize);
    g.consent = Some(Consent {
        id: "c-1".into(),
        not_before: now() - Duration::hours(1),
        not_after: now() + Duration::hours(1),
    });
    g
}

fn aggregate_grant() -> Grant {
    let mut g = p::grant(&[], AddressPolicy::Pseudonymize);
    g.aggregate = true;
    g
}

fn sink_to(port: u16) -> SinkKind {
    SinkKind::IpfixTcp {
        to: format!("127.0.0.1:{port}").parse().unwrap(),
    }
}

fn recipient(grants: Vec<Grant>, sink: SinkKind) -> Recipient {
    Recipient {
        name: "rcpt".into(),
        role: Role::Analyst,
        identity: [0; 32],
        grants,
        sinks: vec![sink],
        queue_capacity: 8,
        spool_max_bytes: 1 << 20,
        witness: false,
    }
}

fn ctx<'a>(r: &'a Recipient, m: &'a Metrics, audit: &'a AuditLog) -> Ctx<'a> {
    Ctx {
        r,
        ids: r.grants.iter().map(spool::grant_id).collect(),
        m,
        audit,
    }
}

fn outlet(dir: &std::path::Path, r: &Recipient, up: bool, got: &Sent) -> Outlet {
    let path = dir.join(&r.name).join(spool::file_name(&r.sinks[0]));
    Outlet {
        sink: Box::new(Fake {
            up: Arc::new(Mutex::new(up)),
            got: got.clone(),
        }),
        spool: spool::Spool::open(&path, r.spool_max_bytes).unwrap(),
    }
}

fn row() -> View {
    View {
        key_epoch: String::new(),
        fields: vec![
            ("period_start", Value::U64(1_800_000_000)),
            ("period_secs", Value::U64(60)),
            ("measure", Value::Str("inbound".into())),
            ("rule", Value::Str("scan".into())),
            ("dst_port", Value::U16(22)),
            ("flows", Value::U64(7)),
        ],
        ..Default::default()
    }
}

/// Spools, with the collector down, two views under the plain grant, two
/// under the consent grant and one aggregate row, under the first
/// configuration: grants [plain, consent, aggregate].
fn spool_five(dir: &std::path::Path, m: &Metrics, audit: &AuditLog) -> Vec<View> {
    let r = recipient(vec![fields_grant(), consent_grant(), aggregate_grant()], sink_to(4739));
    let c = ctx(&r, m, audit);
    let got = Sent::default();
    let mut o = outlet(dir, &r, false, &got);
    let key = EpochKey {
        epoch: "2026-12-03".into(),
        pan: CryptoPan::new(&[5; 32]),
    };
    let mut views = Vec::new();
    for (i, g) in r.grants.iter().enumerate().take(2) {
        for n in 0..2 {
            let mut rec = p::record();
            rec.packets_forward = 100 + n;
            let v = project(&rec, g, &key, &Default::default());
            o.deliver(&c, &[item(i, Some("inbound"), false, &v)]);
            views.push(v);
        }
    }
    o.deliver(&c, &[item(2, Some("inbound"), true, &row())]);
    views.push(row());
    assert!(got.lock().unwrap().is_empty());
    assert_eq!(m.export_spooled.with_label_values(&["rcpt", "ipfix-tcp"]).get(), 5);
    views
}

fn dropped(m: &Metrics, reason: &str) -> u64 {
    m.export_dropped.with_label_values(&["rcpt", reason]).get()
}

/// Reordered grants: every view is sent, each under its grant's new
/// number, and the aggregate row comes back whole (it used to be `{}`).
#[test]
fn spooled_views_follow_their_grant_to_its_new_number() {
    let dir = tempfile::tempdir().unwrap();
    let (m, audit) = (Metrics::new(), AuditLog::disabled(&Metrics::new()));
    let views = spool_five(dir.path(), &m, &audit);
    let r = recipient(vec![aggregate_grant(), consent_grant(), fields_grant()], sink_to(4739));
    let c = ctx(&r, &m, &audit);
    let got = Sent::default();
    outlet(dir.path(), &r, true, &got).drain_at(&c, now());
    let got = got.lock().unwrap().clone();
    let want = vec![
        (2, views[0].clone()),
        (2, views[1].clone()),
        (1, views[2].clone()),
        (1, views[3].clone()),
        (0, views[4].clone()),
    ];
    assert_eq!(got, want);
}

/// Restart with fewer grants: views of the withdrawn grants are dropped
/// and counted; the rest go under the remaining grant's number.
#[test]
fn views_of_a_withdrawn_grant_are_dropped_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (m, audit) = (Metrics::new(), AuditLog::disabled(&Metrics::new()));
    let views = spool_five(dir.path(), &m, &audit);
    let r = recipient(vec![fields_grant()], sink_to(4739));
    let c = ctx(&r, &m, &audit);
    let got = Sent::default();
    let mut o = outlet(dir.path(), &r, true, &got);
    o.drain_at(&c, now());
    assert_eq!(*got.lock().unwrap(), [(0, views[0].clone()), (0, views[1].clone())]);
    assert_eq!(dropped(&m, "grant_withdrawn"), 3);
    assert!(o.spool.is_empty());
}

/// A grant whose fields changed is another grant (another template): its
/// old views are dropped, not encoded against the new template.
#[test]
fn a_changed_grant_does_not_carry_old_views() {
    let dir = tempfile::tempdir().unwrap();
    let (m, audit) = (Metrics::new(), AuditLog::disabled(&Metrics::new()));
    let views = spool_five(dir.path(), &m, &audit);
    let changed = p::grant(
        &["protocol", "packets_forward", "bytes_forward"],
        AddressPolicy::Pseudonymize,
    );
    let r = recipient(vec![changed, consent_grant(), aggregate_grant()], sink_to(4739));
    let c = ctx(&r, &m, &audit);
    let got = Sent::default();
    outlet(dir.path(), &r, true, &got).drain_at(&c, now());
    let got = got.lock().unwrap().clone();
    assert_eq!(
        got,
        [(1, views[2].clone()), (1, views[3].clone()), (2, views[4].clone())]
    );
    assert_eq!(dropped(&m, "grant_withdrawn"), 2);
}

/// Same configuration, but the consent window has closed by the time
/// the collector is back: those views are dropped as `consent_expired`.
#[test]
fn views_under_an_expired_consent_are_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let (m, audit) = (Metrics::new(), AuditLog::disabled(&Metrics::new()));
    let views = spool_five(dir.path(), &m, &audit);
    // The very same grant as spooled (same window), judged two hours on.
    let r = recipient(vec![fields_grant(), consent_grant(), aggregate_grant()], sink_to(4739));
    let c = ctx(&r, &m, &audit);
    let got = Sent::default();
    outlet(dir.path(), &r, true, &got).drain_at(&c, now() + Duration::hours(2));
    let sent: Vec<usize> = got.lock().unwrap().iter().map(|(g, _)| *g).collect();
    assert_eq!(sent, [0, 0, 2]);
    assert_eq!(got.lock().unwrap()[2].1, views[4]);
    assert_eq!(dropped(&m, "consent_expired"), 2);
}

/// A sink pointed elsewhere is another sink: the old spool is discarded
/// and counted, and nothing reaches the new collector; a removed
/// recipient's spools likewise.
#[test]
fn a_removed_sink_or_recipient_never_gets_its_spool_sent_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    let (m, audit) = (Metrics::new(), AuditLog::disabled(&Metrics::new()));
    spool_five(dir.path(), &m, &audit);
    let r = recipient(vec![fields_grant(), consent_grant(), aggregate_grant()], sink_to(4740));
    discard_orphan_spools(dir.path(), std::slice::from_ref(&r), &m, &audit);
    assert_eq!(dropped(&m, "sink_removed"), 5);
    let c = ctx(&r, &m, &audit);
    let got = Sent::default();
    let mut o = outlet(dir.path(), &r, true, &got);
    o.drain_at(&c, now());
    assert!(got.lock().unwrap().is_empty() && o.spool.is_empty());

    // The recipient itself is gone.
    let dir = tempfile::tempdir().unwrap();
    let m = Metrics::new();
    spool_five(dir.path(), &m, &audit);
    discard_orphan_spools(dir.path(), &[], &m, &audit);
    assert_eq!(dropped(&m, "recipient_removed"), 5);
    let left: Vec<_> = std::fs::read_dir(dir.path().join("rcpt")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A view the sink can never carry is dropped and counted, and does not
/// block the spool behind it.
#[test]
fn an_unencodable_view_is_dropped_not_retried_forever() {
    struct Picky(Sent);
    impl Sink for Picky {
        fn kind(&self) -> &'static str {
            "ipfix-tcp"
        }
        fn send(&mut self, grant: usize, view: &View) -> std::io::Result<()> {
            if view.get("packets_forward") == Some(&Value::U64(100)) {
                return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "no template"));
            }
            self.0.lock().unwrap().push((grant, view.clone()));
            Ok(())
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let (m, audit) = (Metrics::new(), AuditLog::disabled(&Metrics::new()));
    spool_five(dir.path(), &m, &audit);
    let r = recipient(vec![fields_grant(), consent_grant(), aggregate_grant()], sink_to(4739));
    let c = ctx(&r, &m, &audit);
    let got = Sent::default();
    let mut o = outlet(dir.path(), &r, true, &got);
    o.sink = Box::new(Picky(got.clone()));
    o.drain_at(&c, now());
    assert_eq!(got.lock().unwrap().len(), 4);
    assert_eq!(dropped(&m, "unencodable"), 1);
    assert!(o.spool.is_empty());
}

fn item<'a>(grant: usize, measure: Option<&'a str>, row: bool, view: &'a View) -> Item<'a> {
    Item {
        grant,
        measure,
        row,
        view,
    }
}

/// A collector that answers its batches as scripted (a lost
/// acknowledgement in the middle), then takes everything and reports the
/// resends it already had as duplicates, as NATS does by message id. It
/// notes the size of every batch it is offered.
struct Scripted {
    /// Per batch: per view, whether its acknowledgement arrives; an empty
    /// script refuses the whole batch (the bus is down: nothing stored).
    scripts: std::collections::VecDeque<Vec<bool>>,
    stored: Arc<Mutex<Vec<u64>>>,
    batches: Arc<Mutex<Vec<usize>>>,
    duplicates: u64,
}

impl Sink for Scripted {
    fn kind(&self) -> &'static str {
        "nats"
    }
    fn send(&mut self, _grant: usize, view: &View) -> std::io::Result<()> {
        let mut s = self.stored.lock().unwrap();
        if s.contains(&view.seq) {
            self.duplicates += 1;
        } else {
            s.push(view.seq);
        }
        Ok(())
    }
    fn send_batch(&mut self, views: &[(usize, &View)]) -> Vec<std::io::Result<()>> {
        self.batches.lock().unwrap().push(views.len());
        let Some(script) = self.scripts.pop_front() else {
            return views.iter().map(|(g, v)| self.send(*g, v)).collect();
        };
        if script.is_empty() {
            let down = || std::io::Error::new(std::io::ErrorKind::NotConnected, "no server");
            return views.iter().map(|_| Err(down())).collect();
        }
        views
            .iter()
            .enumerate()
            .map(|(k, (g, v))| {
                // Stored either way; only the acknowledgement is lost.
                self.send(*g, v)?;
                if script.get(k).copied().unwrap_or(true) {
                    Ok(())
                } else {
                    Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "no acknowledgement"))
                }
            })
            .collect()
    }
    fn duplicates(&mut self) -> u64 {
        std::mem::take(&mut self.duplicates)
    }
}

/// What a test collector noted, shared with the test.
type Noted<T> = Arc<Mutex<Vec<T>>>;

/// An outlet to a `Scripted` collector answering `scripts`, spooling in
/// `dir`; what it stored and the batch sizes it was offered.
fn scripted(dir: &std::path::Path, scripts: Vec<Vec<bool>>) -> (Outlet, Noted<u64>, Noted<usize>) {
    let stored = Arc::new(Mutex::new(Vec::new()));
    let batches = Arc::new(Mutex::new(Vec::new()));
    let o = Outlet {
        sink: Box::new(Scripted {
            scripts: scripts.into(),
            stored: stored.clone(),
            batches: batches.clone(),
            duplicates: 0,
        }),
        spool: spool::Spool::open(&dir.join("rcpt").join("nats.spool"), 64 << 20).unwrap(),
    };
    (o, stored, batches)
}

/// `n` views of one record, each named with its own sequence number.
fn named_views(n: usize) -> Vec<View> {
    let mut namer = Namer::new("tokyo-1");
    (0..n)
        .map(|_| {
            let mut v = project(&p::record(), &fields_grant(), &key(), &Default::default());
            namer.name(&mut v);
            v
        })
        .collect()
}

/// A batch whose second view lost its acknowledgement: the first counts
/// as sent, the second and third are spooled (in order) and resent; the
/// collector keeps each view once and the resends it had are counted.
#[test]
fn a_lost_acknowledgement_spools_from_there_and_resends_are_counted_as_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let (m, audit) = (Metrics::new(), AuditLog::disabled(&Metrics::new()));
    let r = recipient(vec![fields_grant()], sink_to(4739));
    let c = ctx(&r, &m, &audit);
    let (mut o, stored, batches) = scripted(dir.path(), vec![vec![true, false, true]]);
    let views = named_views(3);
    let items: Vec<Item<'_>> = views.iter().map(|v| item(0, Some("inbound"), false, v)).collect();
    o.deliver(&c, &items);
    let sent = || m.export_records.with_label_values(&["rcpt", "nats"]).get();
    assert_eq!(sent(), 1);
    assert_eq!(m.export_spooled.with_label_values(&["rcpt", "nats"]).get(), 2);
    o.drain_at(&c, now());
    assert_eq!(sent(), 3);
    assert_eq!(m.export_duplicates.with_label_values(&["rcpt", "nats"]).get(), 2);
    let want: Vec<u64> = views.iter().map(|v| v.seq).collect();
    assert_eq!(*stored.lock().unwrap(), want, "each view stored once, in order");
    assert_eq!(
        *batches.lock().unwrap(),
        [3, 2],
        "the two spooled views resent as one batch"
    );
    assert!(o.spool.is_empty());
}

/// A spool drains in batches (pipelined on NATS), in order; a lost
/// acknowledgement in a drain batch leaves that view and the rest spooled
/// for the next drain, which sends them and nothing twice into the store.
#[test]
fn a_spool_drains_in_batches_and_a_failure_in_one_keeps_the_rest_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let (m, audit) = (Metrics::new(), AuditLog::disabled(&Metrics::new()));
    let r = recipient(vec![fields_grant()], sink_to(4739));
    let c = ctx(&r, &m, &audit);
    let n = DRAIN_BATCH + 300;
    // The first delivery finds the bus down: everything is spooled.
    let mut drain_script = vec![true; DRAIN_BATCH];
    drain_script[500] = false;
    let (mut o, stored, batches) = scripted(dir.path(), vec![vec![], drain_script]);
    let views = named_views(n);
    let items: Vec<Item<'_>> = views.iter().map(|v| item(0, Some("inbound"), false, v)).collect();
    o.deliver(&c, &items);
    assert_eq!(m.export_spooled.with_label_values(&["rcpt", "nats"]).get(), n as u64);
    let sent = || m.export_records.with_label_values(&["rcpt", "nats"]).get();
    // The first drain: one batch of DRAIN_BATCH, stopped at its 501st.
    o.drain_at(&c, now());
    assert_eq!(sent(), 500);
    assert!(!o.spool.is_empty());
    // The next: the rest, from the 501st, in batches.
    o.drain_at(&c, now());
    assert_eq!(sent(), n as u64);
    assert!(o.spool.is_empty());
    assert_eq!(
        *batches.lock().unwrap(),
        [n, DRAIN_BATCH, n - 500],
        "the delivery, then drain batches"
    );
    let want: Vec<u64> = views.iter().map(|v| v.seq).collect();
    assert_eq!(*stored.lock().unwrap(), want, "each view stored once, in order");
    // The failed drain batch stored its views from the 501st on (only
    // their acknowledgements were lost): resent, they are duplicates.
    assert_eq!(
        m.export_duplicates.with_label_values(&["rcpt", "nats"]).get(),
        (DRAIN_BATCH - 500) as u64
    );
}

fn key() -> EpochKey {
    EpochKey {
        epoch: "2026-12-05".into(),
        pan: CryptoPan::new(&[7; 32]),
    }
}
