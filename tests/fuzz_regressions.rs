//! Every input kept under `fuzz/regressions/<target>/` (each once crashed
//! its fuzz target, see README *Fuzzing*) goes through that target's
//! checks again: a crash that comes back fails `make test`, not only
//! `make fuzz`.

use std::path::Path;

#[test]
fn every_kept_fuzz_input_passes_its_target_again() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions");
    let mut replayed = 0;
    for target in std::fs::read_dir(&dir).expect("fuzz/regressions") {
        let target = target.unwrap().path();
        let name = target.file_name().unwrap().to_string_lossy().into_owned();
        let check = furui::fuzzing::check(&name).unwrap_or_else(|| panic!("no fuzz target `{name}`"));
        for input in std::fs::read_dir(&target).unwrap() {
            let input = input.unwrap().path();
            check(&std::fs::read(&input).unwrap());
            replayed += 1;
        }
    }
    assert!(replayed >= 1, "no regression input found under {}", dir.display());
}
