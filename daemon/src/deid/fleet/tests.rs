use std::os::unix::fs::PermissionsExt;

use time::macros::datetime;

use super::*;
use crate::deid::KeyStore;

const SEED: &str = "4f2b9d0c1e7a63558a0b2c3d4e5f60718293a4b5c6d7e8f90112233445566778";

fn seed_file(dir: &Path, hex: &str) -> PathBuf {
    let p = dir.join("fleet.seed");
    std::fs::write(&p, format!("{hex}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn seed_bytes(hex: &str) -> [u8; 32] {
    crate::hex::decode(hex).unwrap().try_into().unwrap()
}

/// An appliance: its own key directory, given the seed.
fn appliance(root: &Path, name: &str, keep: usize, hex: &str) -> (KeyStore, PathBuf) {
    let keys = root.join(name).join("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let seed = seed_file(&root.join(name), hex);
    (
        KeyStore::open_fleet(&keys, EpochPeriod::Daily, keep, &seed).unwrap(),
        keys,
    )
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn two_appliances_with_one_seed_agree_and_the_seed_is_erased() {
    let root = tempfile::tempdir().unwrap();
    let (mut a, _) = appliance(root.path(), "tokyo", 2, SEED);
    let (mut b, _) = appliance(root.path(), "osaka", 2, SEED);
    let addr: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    let day1 = datetime!(2026-12-05 10:00 UTC);
    let pa = a.at(day1).unwrap().pan.ip(addr);
    assert_eq!(pa, b.at(day1).unwrap().pan.ip(addr), "one pseudonym across the fleet");
    assert!(
        !root.path().join("tokyo/fleet.seed").exists(),
        "the seed is erased once imported"
    );
    assert!(!root.path().join("osaka/fleet.seed").exists());
    // The key is the chain's: what the seed gives for this epoch.
    let want = Link::first(&seed_bytes(SEED), EpochPeriod::Daily)
        .forward_to(epoch_index(EpochPeriod::Daily, day1))
        .epoch_key();
    assert_eq!(crate::deid::CryptoPan::new(&want).ip(addr), pa);
    // The next day: both move on, still together, to another mapping.
    let day2 = datetime!(2026-12-06 00:00 UTC);
    let qa = a.at(day2).unwrap().pan.ip(addr);
    assert_eq!(qa, b.at(day2).unwrap().pan.ip(addr));
    assert_ne!(qa, pa);
    // A restart continues from the stored link (the seed is gone).
    let keys = root.path().join("tokyo/keys");
    let mut again = KeyStore::open_fleet(&keys, EpochPeriod::Daily, 2, &root.path().join("tokyo/fleet.seed")).unwrap();
    assert_eq!(again.at(datetime!(2026-12-06 23:00 UTC)).unwrap().pan.ip(addr), qa);
    assert_eq!(again.at(datetime!(2026-12-07 01:00 UTC)).unwrap().pan.ip(addr), {
        b.at(datetime!(2026-12-07 01:00 UTC)).unwrap().pan.ip(addr)
    });
}

/// After the move to the next epoch with keep_epochs = 1, nothing the
/// appliance holds gives the erased epoch's key: its key file is gone,
/// the stored link is the next one, and no link or key derived forward
/// from it equals the erased key (nor does any file hold its bytes).
#[test]
fn an_erased_epoch_cannot_be_derived_from_what_is_left() {
    let root = tempfile::tempdir().unwrap();
    let (mut a, keys) = appliance(root.path(), "tokyo", 1, SEED);
    let day1 = datetime!(2026-12-05 10:00 UTC);
    a.at(day1).unwrap();
    let erased_key = std::fs::read(keys.join("2026-12-05.key")).unwrap();
    let n = epoch_index(EpochPeriod::Daily, day1);
    let erased_link = Link::first(&seed_bytes(SEED), EpochPeriod::Daily).forward_to(n);
    assert_eq!(&erased_key[..], &erased_link.epoch_key()[..]);
    a.at(datetime!(2026-12-06 10:00 UTC)).unwrap();
    assert_eq!(files(&keys), ["2026-12-06.key", CHAIN_FILE]);
    let stored = std::fs::read(keys.join(CHAIN_FILE)).unwrap();
    let link = Link::decode(&stored, Path::new("x")).unwrap();
    assert_eq!(link.index, n + 1);
    for f in files(&keys) {
        let bytes = std::fs::read(keys.join(&f)).unwrap();
        for secret in [&erased_key[..], &erased_link.key[..]] {
            assert!(!bytes.windows(32).any(|w| w == secret), "{f} holds an erased secret");
        }
    }
    let mut l = link;
    for _ in 0..1000 {
        assert_ne!(&l.epoch_key()[..], &erased_key[..]);
        assert_ne!(&l.key[..], &erased_link.key[..]);
        l = l.next();
    }
    // The clock going back to the erased epoch gets an error, not a key.
    let e = a.at(day1).unwrap_err().to_string();
    assert!(e.contains("cannot be derived any more"), "{e}");
}

#[test]
fn without_a_seed_each_appliance_has_its_own_keys() {
    let root = tempfile::tempdir().unwrap();
    let t = datetime!(2026-12-05 10:00 UTC);
    let addr: std::net::IpAddr = "203.0.113.7".parse().unwrap();
    let mut a = KeyStore::open(&root.path().join("a"), EpochPeriod::Daily, 2).unwrap();
    let mut b = KeyStore::open(&root.path().join("b"), EpochPeriod::Daily, 2).unwrap();
    assert_ne!(a.at(t).unwrap().pan.ip(addr), b.at(t).unwrap().pan.ip(addr));
    assert_eq!(files(&root.path().join("a")), ["2026-12-05.key"], "no chain");
}

/// A new seed file starts a new chain at once: the current epoch's key
/// is replaced, and re-seeded appliances agree again.
#[test]
fn re_seeding_replaces_the_current_key() {
    let root = tempfile::tempdir().unwrap();
    let (mut a, _) = appliance(root.path(), "tokyo", 2, SEED);
    let (mut b, _) = appliance(root.path(), "osaka", 2, SEED);
    let t = datetime!(2026-12-05 10:00 UTC);
    let addr: std::net::IpAddr = "198.51.100.9".parse().unwrap();
    let before = a.at(t).unwrap().pan.ip(addr);
    b.at(t).unwrap();
    let other = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    for name in ["tokyo", "osaka"] {
        seed_file(&root.path().join(name), other);
    }
    let reopen = |name: &str| {
        KeyStore::open_fleet(
            &root.path().join(name).join("keys"),
            EpochPeriod::Daily,
            2,
            &root.path().join(name).join("fleet.seed"),
        )
        .unwrap()
    };
    let (mut a, mut b) = (reopen("tokyo"), reopen("osaka"));
    let after = a.at(t).unwrap().pan.ip(addr);
    assert_ne!(after, before);
    assert_eq!(after, b.at(t).unwrap().pan.ip(addr));
}

#[test]
fn seed_mistakes_are_refused_with_clear_errors() {
    let root = tempfile::tempdir().unwrap();
    let keys = root.path().join("keys");
    let t = datetime!(2026-12-05 10:00 UTC);
    let missing = root.path().join("none.seed");
    let e = KeyStore::open_fleet(&keys, EpochPeriod::Daily, 2, &missing)
        .unwrap()
        .at(t)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("fleet keys need the fleet seed") && e.contains("none.seed"),
        "{e}"
    );
    let short = seed_file(root.path(), "abcd");
    let e = KeyStore::open_fleet(&keys, EpochPeriod::Daily, 2, &short)
        .unwrap()
        .at(t)
        .unwrap_err()
        .to_string();
    assert!(e.contains("must hold 64 hex digits"), "{e}");
    assert!(!e.contains("abcd"), "no seed material in errors: {e}");
    let open = seed_file(root.path(), SEED);
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = KeyStore::open_fleet(&keys, EpochPeriod::Daily, 2, &open)
        .unwrap()
        .at(t)
        .unwrap_err()
        .to_string();
    assert!(e.contains("can be read by other users"), "{e}");
    // A chain made for daily epochs does not serve hourly ones.
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o600)).unwrap();
    KeyStore::open_fleet(&keys, EpochPeriod::Daily, 2, &open)
        .unwrap()
        .at(t)
        .unwrap();
    let e = KeyStore::open_fleet(&keys, EpochPeriod::Hourly, 2, &open)
        .unwrap()
        .at(t)
        .unwrap_err()
        .to_string();
    assert!(e.contains("for daily epochs") && e.contains("re-seed"), "{e}");
    assert!(!format!("{:?}", Link::first(&seed_bytes(SEED), EpochPeriod::Daily)).contains("4f2b"));
}
