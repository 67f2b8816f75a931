//! A fleet's trails, as an inspector receives them: one directory per
//! appliance (its `trail.jsonl` and its public key `appliance.pub`) under
//! one directory. `furui audit verify`, the four checks and `furui
//! report` take either one appliance's directory or a fleet's.

use std::path::{Path, PathBuf};

/// One appliance's trail in a fleet directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The directory's name (the appliance ids the trail names are
    /// reported beside it).
    pub name: String,
    pub dir: PathBuf,
    pub pubkey: PathBuf,
}

/// None if `dir` is one appliance's (it holds a trail); else every
/// subdirectory holding a trail, by name. An error if there is neither,
/// or a member has no public key.
pub fn members(dir: &Path) -> Result<Option<Vec<Member>>, String> {
    if dir.join(super::TRAIL).exists() {
        return Ok(None);
    }
    let rd = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in rd.flatten() {
        let d = e.path();
        if !d.join(super::TRAIL).is_file() {
            continue;
        }
        let pubkey = d.join(super::PUBKEY);
        if !pubkey.is_file() {
            return Err(format!(
                "{}: a trail without its public key ({} is missing)",
                d.display(),
                super::PUBKEY
            ));
        }
        out.push(Member {
            name: e.file_name().to_string_lossy().into_owned(),
            dir: d,
            pubkey,
        });
    }
    if out.is_empty() {
        return Err(format!(
            "{}: neither a trail ({}) nor directories of trails (one per appliance, each with {})",
            dir.display(),
            super::TRAIL,
            super::PUBKEY
        ));
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Some(out))
}

/// The fleet's verdict from its members' (PASS only if every one passed).
pub fn verdict(passed: &[bool]) -> (bool, String) {
    let failed = passed.iter().filter(|p| !**p).count();
    let pass = failed == 0 && !passed.is_empty();
    let line = if pass {
        format!("fleet: PASS ({} appliances)", passed.len())
    } else {
        format!("fleet: FAIL ({failed} of {} appliances failed)", passed.len())
    };
    (pass, line)
}

/// The outcome of verifying or checking one trail or a fleet's: PASS or
/// FAIL, and the lines to print.
pub struct Outcome {
    pub pass: bool,
    pub lines: Vec<String>,
}

/// Runs `one` on a single trail (`dir` with `pubkey`, which is then
/// required) or on each member of a fleet directory (each with its own
/// key); a fleet passes when every member does.
fn over(dir: &Path, pubkey: Option<&Path>, one: impl Fn(&Path, &Path) -> Outcome) -> Outcome {
    match members(dir) {
        Err(e) => Outcome {
            pass: false,
            lines: vec![format!("FAIL: {e}")],
        },
        Ok(None) => match pubkey {
            Some(k) => one(dir, k),
            None => Outcome {
                pass: false,
                lines: vec![format!(
                    "FAIL: --pubkey is required for one appliance's trail ({} holds {}); a fleet directory uses each appliance's {}",
                    dir.display(),
                    super::TRAIL,
                    super::PUBKEY
                )],
            },
        },
        Ok(Some(list)) => {
            let mut lines = Vec::new();
            let mut passed = Vec::new();
            for m in &list {
                let o = one(&m.dir, &m.pubkey);
                let mut it = o.lines.into_iter();
                lines.push(format!("{}: {}", m.name, it.next().unwrap_or_default()));
                lines.extend(it.map(|l| format!("  {l}")));
                passed.push(o.pass);
            }
            let (pass, line) = verdict(&passed);
            lines.push(line);
            Outcome { pass, lines }
        }
    }
}

/// `furui audit verify`: the chain and every signature of one trail or
/// of each trail of a fleet.
pub fn verify(dir: &Path, pubkey: Option<&Path>, witness: Option<&str>) -> Outcome {
    over(dir, pubkey, |dir, pubkey| {
        let run = || -> Result<super::Verified, super::AuditError> {
            let key = super::read_pubkey(pubkey)?;
            super::verify(&dir.join(super::TRAIL), &key, witness)
        };
        match run() {
            Ok(v) => Outcome {
                pass: true,
                lines: vec![format!(
                    "PASS: {} entries, {} signed checkpoints, chain and signatures intact{}{}",
                    v.entries,
                    v.checkpoints,
                    if witness.is_some() {
                        ", witness checkpoint present"
                    } else {
                        ""
                    },
                    if v.appliances.is_empty() {
                        String::new()
                    } else {
                        format!("; entries of appliance {}", v.appliances.join(", "))
                    }
                )],
            },
            Err(e) => Outcome {
                pass: false,
                lines: vec![format!("FAIL: {e}")],
            },
        }
    })
}

/// `furui audit check WHAT`: one oversight check, recomputed from one
/// verified trail or from each of a fleet's.
pub fn check(
    what: &str,
    dir: &Path,
    pubkey: Option<&Path>,
    authority: Option<&ed25519_dalek::VerifyingKey>,
    grace: std::time::Duration,
) -> Outcome {
    over(dir, pubkey, |dir, pubkey| {
        let entries = match super::read_verified(dir, pubkey) {
            Ok((_, entries)) => entries,
            Err(e) => {
                return Outcome {
                    pass: false,
                    lines: vec![format!(
                        "FAIL: the trail does not verify, so nothing in it can be trusted: {e}"
                    )],
                }
            }
        };
        let v = match what {
            "erasure" => super::check::erasure(&entries),
            "capture" => super::check::capture(&entries, authority),
            "exports" => super::check::exports(&entries),
            _ => super::check::retention(&entries, grace),
        };
        let mut lines = vec![format!("{}: {what}", if v.pass { "PASS" } else { "FAIL" })];
        lines.extend(v.lines.into_iter().map(|l| format!("  {l}")));
        Outcome { pass: v.pass, lines }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fleet_directory_lists_its_members_and_refuses_a_trail_without_a_key() {
        let d = tempfile::tempdir().unwrap();
        assert!(members(d.path()).unwrap_err().contains("neither a trail"));
        for n in ["osaka-1", "tokyo-1"] {
            std::fs::create_dir_all(d.path().join(n)).unwrap();
            std::fs::write(d.path().join(n).join(crate::audit::TRAIL), "").unwrap();
            std::fs::write(d.path().join(n).join(crate::audit::PUBKEY), "").unwrap();
        }
        std::fs::create_dir_all(d.path().join("notes")).unwrap();
        let m = members(d.path()).unwrap().unwrap();
        let names: Vec<&str> = m.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["osaka-1", "tokyo-1"]);
        assert_eq!(
            members(&d.path().join("tokyo-1")).unwrap(),
            None,
            "one appliance's directory"
        );
        std::fs::remove_file(d.path().join("osaka-1").join(crate::audit::PUBKEY)).unwrap();
        assert!(members(d.path()).unwrap_err().contains("without its public key"));
        assert_eq!(verdict(&[true, true]), (true, "fleet: PASS (2 appliances)".into()));
        assert_eq!(
            verdict(&[true, false]),
            (false, "fleet: FAIL (1 of 2 appliances failed)".into())
        );
    }
}
