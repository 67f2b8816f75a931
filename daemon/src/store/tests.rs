use super::*;
use std::time::Duration;

fn cfg(dir: &Path, period: u64) -> Retention {
    Retention {
        dir: dir.join("store"),
        key_dir: dir.join("keys"),
        epoch: Duration::from_secs(10),
        inbound: Duration::from_secs(period),
        outbound: Duration::from_secs(period),
        transit: Duration::from_secs(period),
    }
}

fn record(packets: u64) -> Arc<MechanicalRecord> {
    let mut r = crate::benchkit::sample_record();
    r.packets_forward = packets;
    Arc::new(r)
}

#[test]
fn records_are_sealed_kept_until_expiry_then_shredded() {
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 30);
    let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_005).unwrap();
    let mut s = Store::open(&c).unwrap();
    let mut seen = Vec::new();
    let opened = s
        .put(&[record(1), record(2)], t0, |o| seen.push(o.epoch.clone()))
        .unwrap();
    assert_eq!(opened.len(), 1);
    assert_eq!(seen, [opened[0].epoch.clone()]);
    let epoch = opened[0].epoch.clone();
    // Epoch [1_800_000_000, +10 s), then 30 s of retention.
    assert_eq!(opened[0].expires.unix_timestamp(), 1_800_000_040);
    assert!(s.put(&[record(3)], t0, |_| panic!("no new epoch")).unwrap().is_empty());
    assert_eq!(s.len().unwrap(), 3);
    let plain = s.read_epoch(&epoch).unwrap();
    assert_eq!(plain.len(), 3);
    assert!(plain[2].contains("\"packets_forward\":3"), "{}", plain[2]);
    // Nothing readable in the database file itself.
    let raw = std::fs::read(c.dir.join(DB_FILE)).unwrap();
    assert!(!raw.windows(15).any(|w| w == b"packets_forward"));
    let backup = dir.path().join("backup.redb");
    std::fs::copy(c.dir.join(DB_FILE), &backup).unwrap();
    drop(s);

    // A restart finds the epoch and purges it when due, not before.
    let mut s = Store::open(&c).unwrap();
    assert!(s
        .purge_due(OffsetDateTime::from_unix_timestamp(1_800_000_039).unwrap())
        .unwrap()
        .is_empty());
    let p = s
        .purge_due(OffsetDateTime::from_unix_timestamp(1_800_000_040).unwrap())
        .unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!((p[0].epoch.as_str(), p[0].records), (epoch.as_str(), 3));
    assert_eq!(s.len().unwrap(), 0);
    assert!(!c.key_dir.join(format!("{epoch}.key")).exists(), "key destroyed");
    assert!(s.read_epoch(&epoch).unwrap().is_empty());
    drop(s);

    // The copy taken before the purge still holds the sealed records, but
    // nothing can open them any more.
    std::fs::copy(&backup, c.dir.join(DB_FILE)).unwrap();
    let mut s = Store::open(&c).unwrap();
    assert_eq!(s.len().unwrap(), 3);
    assert!(matches!(s.read_epoch(&epoch), Err(StoreError::Sealed { .. })));
}

#[test]
fn a_key_without_records_is_still_purged_on_schedule() {
    // A crash after the key file was made but before the commit.
    let dir = tempfile::tempdir().unwrap();
    let c = cfg(dir.path(), 30);
    std::fs::create_dir_all(&c.key_dir).unwrap();
    let s = Store::open(&c).unwrap();
    let t0 = OffsetDateTime::from_unix_timestamp(1_800_000_005).unwrap();
    let (epoch, expires) = s.epoch_of(Measure::Inbound, t0);
    let mut raw = crate::deid::key_file(&c.key_dir.join(format!("{epoch}.key"))).unwrap();
    raw.fill(0);
    drop(s);
    let mut s = Store::open(&c).unwrap();
    assert_eq!(s.epochs().unwrap(), vec![(epoch.clone(), expires, 0)]);
    let p = s.purge_due(expires).unwrap();
    assert_eq!(p.len(), 1);
    assert!(std::fs::read_dir(&c.key_dir).unwrap().next().is_none());
}
