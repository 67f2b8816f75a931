//! Fuzz target: a configuration file, a rules file and a prefix file,
//! separated by NUL bytes. Each is accepted or refused with errors that
//! carry a line inside the file; nothing panics.
use std::path::Path;

fn lines_ok(errs: &crate::config::ConfigErrors, text: &str) {
    let n = text.lines().count() + 1;
    for e in &errs.0 {
        assert!(e.line <= n, "error line {} beyond the file's {} lines", e.line, n);
    }
    let _ = errs.to_string();
}

pub fn check(data: &[u8]) {
    let mut parts = data.split(|b| *b == 0);
    let text = |p: Option<&[u8]>| String::from_utf8_lossy(p.unwrap_or_default()).into_owned();
    let (config, rules, prefixes) = (text(parts.next()), text(parts.next()), text(parts.next()));
    if let Err(e) = crate::config::Config::parse(Path::new("/nonexistent/fuzz/furui.toml"), &config) {
        lines_ok(&e, &config);
    }
    if let Err(e) = crate::config::rules::compile(&[("fuzz-rules.toml".into(), rules.clone())], Vec::new()) {
        lines_ok(&e, &rules);
    }
    let mut out = Vec::new();
    let mut errors = Vec::new();
    crate::config::prefixes::load_file(Path::new("fuzz-prefixes"), &prefixes, &mut out, &mut errors);
    let lines = prefixes.lines().count();
    assert!(errors.iter().all(|e| e.line >= 1 && e.line <= lines));
}
