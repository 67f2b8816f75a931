//! The shape of the tree, checked: the top-level modules of the library
//! form no import circle (each depends only on modules below it), and
//! `unsafe` code lives only behind the fence ARCHITECTURE.md draws
//! (`capture/` and `sys.rs`; the libbpf skeleton `xdp/mod.rs` includes
//! from OUT_DIR is generated code).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(p: &Path) -> Vec<PathBuf> {
    if p.is_file() {
        return vec![p.to_path_buf()];
    }
    let mut out = Vec::new();
    for e in std::fs::read_dir(p).unwrap() {
        out.extend(rust_files(&e.unwrap().path()));
    }
    out.retain(|f| f.extension().is_some_and(|x| x == "rs"));
    out
}

/// Top-level module → the top-level modules it names as `crate::…`.
fn module_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mods: BTreeMap<String, PathBuf> = std::fs::read_dir(src())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| {
            let name = p.file_stem()?.to_str()?.to_string();
            (!["lib", "main", "bin"].contains(&name.as_str())).then_some((name, p))
        })
        .collect();
    let mut graph = BTreeMap::new();
    for (m, p) in &mods {
        let mut deps = BTreeSet::new();
        for f in rust_files(p) {
            let text = std::fs::read_to_string(&f).unwrap();
            for (i, _) in text.match_indices("crate::") {
                let name: String = text[i + 7..]
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if name != *m && mods.contains_key(&name) {
                    deps.insert(name);
                }
            }
        }
        graph.insert(m.clone(), deps);
    }
    graph
}

/// A path `from` → … → `to` in `graph`, if there is one.
fn path(graph: &BTreeMap<String, BTreeSet<String>>, from: &str, to: &str) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_string()]];
    while let Some(p) = stack.pop() {
        let last = p.last().unwrap().clone();
        if last == to && p.len() > 1 {
            return Some(p);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for d in &graph[&last] {
            let mut q = p.clone();
            q.push(d.clone());
            stack.push(q);
        }
    }
    None
}

#[test]
fn no_module_imports_one_that_imports_it_back() {
    let graph = module_graph();
    assert!(graph.len() > 15, "modules not found: {graph:?}");
    assert!(graph["pipeline"].contains("flow"), "the scan misses imports: {graph:?}");
    for m in graph.keys() {
        if let Some(circle) = path(&graph, m, m) {
            panic!("import circle: {}", circle.join(" → "));
        }
    }
}

#[test]
fn unsafe_code_lives_only_in_capture_and_sys() {
    let root = src();
    let allowed = |f: &Path| f.starts_with(root.join("capture")) || f == root.join("sys.rs");
    let (mut found, mut fenced) = (Vec::new(), 0);
    for f in rust_files(&root) {
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            let is_unsafe = ["unsafe {", "unsafe fn", "unsafe impl", "allow(unsafe_code)"]
                .iter()
                .any(|k| code.contains(k));
            if is_unsafe && !allowed(&f) {
                found.push(format!("{}:{}", f.strip_prefix(&root).unwrap().display(), n + 1));
            } else if is_unsafe {
                fenced += 1;
            }
        }
    }
    assert!(fenced > 10, "the scan finds no unsafe code even where it is: {fenced}");
    assert!(found.is_empty(), "unsafe outside capture/ and sys.rs: {found:?}");
}

/// README's tree lists the library's modules in `lib.rs`'s order (the
/// data-path order), so the front door and the code tell one story.
#[test]
fn the_readme_tree_lists_the_modules_in_lib_rs_order() {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let modules: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .collect();
    let readme = std::fs::read_to_string(src().join("../../README.md")).unwrap();
    let listed: Vec<String> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("daemon/src/"))
        .map(|l| {
            let name = l.split(['/', ' ', ',']).next().unwrap();
            name.trim_end_matches(".rs").to_string()
        })
        .filter(|m| modules.contains(m))
        .collect();
    assert_eq!(listed, modules, "README's tree (left) and lib.rs (right) disagree");
}
