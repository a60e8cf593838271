//! The code's shape: the stages under `src/` (one folder or file each) depend on each
//! other without a cycle, so data flows one way (list → verdicts → plan → dispatcher →
//! outcomes → journal/results → report, wired per subcommand by `commands`).
//!
//! `cargo test --test integration layout:: -- --nocapture` prints the graph. It reads the sources as
//! text: every `crate::<stage>` path (and `use crate::{<stage>, ...}`) outside
//! `#[cfg(test)]` code is an edge; the crate root (`lib.rs`, which declares every
//! stage and holds `run`, `Exit` and `Error`) and `main.rs` are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The stage a source file belongs to: its folder under `src/`, or its file stem.
fn stage(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.trim_end_matches(".rs").to_owned()
}

/// Names `text` refers to as `crate::<name>`.
fn crate_paths(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = text;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(list) = rest.strip_prefix('{') {
            let end = list.find('}').unwrap_or(list.len());
            for item in list[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                out.insert(name);
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out
}

fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut stages: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let name = stage(&src, file);
        if name == "lib" || name == "main" {
            continue;
        }
        stages.entry(name).or_default();
    }
    for file in &files {
        let from = stage(&src, file);
        if !stages.contains_key(&from) {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read source");
        // Unit tests may reach anywhere; only the code itself counts.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        let targets: BTreeSet<String> = crate_paths(code)
            .into_iter()
            .filter(|t| *t != from && stages.contains_key(t))
            .collect();
        stages.get_mut(&from).expect("stage").extend(targets);
    }
    stages
}

#[test]
fn stages_depend_on_each_other_without_a_cycle() {
    let graph = graph();
    for (stage, deps) in &graph {
        println!(
            "{stage:>10} -> {}",
            deps.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
    // Kahn's algorithm: peel off stages with no dependency left; a cycle is what remains.
    let mut left = graph.clone();
    loop {
        let free: Vec<String> = left
            .iter()
            .filter(|(_, deps)| deps.iter().all(|d| !left.contains_key(d)))
            .map(|(s, _)| s.clone())
            .collect();
        if free.is_empty() {
            break;
        }
        for s in free {
            left.remove(&s);
        }
    }
    assert!(left.is_empty(), "stages in a cycle: {left:?}");
    // The leaves stay leaves (below them only `i18n`, the language of every line,
    // and `text`), and the first stages know nothing of the later ones.
    for (leaf, below) in [
        ("i18n", &[][..]),
        ("text", &["i18n"][..]),
        ("atomic", &["i18n"][..]),
        ("progress", &["i18n", "text"][..]),
    ] {
        assert!(
            graph[leaf].iter().all(|d| below.contains(&d.as_str())),
            "{leaf} depends on {:?}",
            graph[leaf]
        );
    }
    for (early, later) in [
        ("input", "validate"),
        ("validate", "journal"),
        ("validate", "send"),
        ("journal", "send"),
        ("journal", "report"),
        ("send", "report"),
        ("send", "config"),
        // The ledger is told what the journal recorded; it decides nothing itself (the
        // plan does) and knows nothing of sending or of settings.
        ("journal", "ledger"),
        ("validate", "ledger"),
        ("ledger", "plan"),
        ("ledger", "send"),
        ("ledger", "config"),
        ("ledger", "report"),
        ("ledger", "commands"),
        // A server ledger's watch stops a run through a callback the command gives it.
        ("ledger", "reconcile"),
        ("ledger", "input"),
    ] {
        assert!(
            !graph[early].contains(later),
            "{early} depends on the later stage {later}"
        );
    }
}

#[test]
fn the_scanner_finds_paths_and_lists() {
    let found = crate_paths("use crate::{journal, text::quote};\nlet x = crate::send::api::X;");
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["journal", "send", "text"]
    );
}
