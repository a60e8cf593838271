//! The code's shape: the stages under `src/` (one folder or file each) depend on each
//! other without a cycle, so data flows one way (list → verdicts → plan → dispatcher →
//! outcomes → journal/results → report, wired per subcommand by `commands`).
//!
//! `cargo test --test integration layout:: -- --nocapture` prints the graph. It reads the sources as
//! text: every `crate::<stage>` path (and `use crate::{<stage>, ...}`) outside unit-test
//! modules is an edge; the crate root (`lib.rs`, which declares every stage and holds
//! `run`, `Exit` and `Error`) and `main.rs` are left out. A unit-test module is a `mod`
//! under `#[cfg(test)]` (a `mod tests;` or a `mod tests { ... }` block); a `#[cfg(test)]`
//! on any other item (a helper for tests) does not hide the code after it. The file of a
//! unit-test module (`validate/tests.rs`, declared `#[cfg(test)] mod tests;` in
//! `validate/mod.rs`) and every file below it are left out too: they carry no marker
//! themselves, only their parent says they are tests.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
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

/// `text` without its unit-test modules: each `#[cfg(test)]` followed (after blanks,
/// comments and other attributes) by `mod name;` or `mod name { ... }` is cut out, up to
/// the `;` or the matching `}`. A `#[cfg(test)]` on any other item stays, with the code
/// after it (a test helper is scanned: it is rare, and it must not hide the rest).
fn without_test_modules(text: &str) -> String {
    const MARK: &str = "#[cfg(test)]";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(MARK) {
        let after = &rest[at + MARK.len()..];
        match test_module(after) {
            Some((len, _)) => {
                out.push_str(&rest[..at]);
                rest = &after[len..];
            }
            None => {
                out.push_str(&rest[..at + MARK.len()]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// If `text` (what follows a `#[cfg(test)]`) starts with a module, possibly after blanks,
/// comments and attributes: how many bytes the module takes, to its `;` or closing `}`,
/// and its name.
fn test_module(text: &str) -> Option<(usize, &str)> {
    let mut at = skip_trivia(text, 0);
    while text[at..].starts_with("#[") {
        at = skip_trivia(text, matching(text, at + 1)? + 1);
    }
    for prefix in ["pub(crate) ", "pub(super) ", "pub "] {
        if text[at..].starts_with(prefix) {
            at = skip_trivia(text, at + prefix.len());
        }
    }
    let name_at = at + "mod".len();
    if !text[at..].starts_with("mod") || !text[name_at..].starts_with(char::is_whitespace) {
        return None;
    }
    let body = text[name_at..].find([';', '{'])? + name_at;
    let name = text[name_at..body].trim();
    if text.as_bytes()[body] == b';' {
        return Some((body + 1, name));
    }
    matching(text, body).map(|close| (close + 1, name))
}

/// The unit-test modules `text` declares, by name: each `#[cfg(test)]` followed by a
/// `mod name;` or a `mod name { ... }`.
fn test_module_names(text: &str) -> Vec<String> {
    const MARK: &str = "#[cfg(test)]";
    text.match_indices(MARK)
        .filter_map(|(at, _)| test_module(&text[at + MARK.len()..]))
        .map(|(_, name)| name.to_owned())
        .collect()
}

/// A source file's module path, as a path under `src/` without `.rs`: `validate/mod.rs`
/// is `validate`, `send/window.rs` is `send/window`, `lib.rs` is the root (empty).
fn module_path(src: &Path, file: &Path) -> PathBuf {
    let rel = file
        .strip_prefix(src)
        .expect("under src")
        .with_extension("");
    match rel.file_name().and_then(|n| n.to_str()) {
        Some("mod" | "lib" | "main") => rel.parent().map(Path::to_path_buf).unwrap_or_default(),
        _ => rel,
    }
}

/// The module paths (as [`module_path`] gives them) of the unit-test modules the files
/// declare: `#[cfg(test)] mod tests;` in `send/window.rs` is `send/window/tests`. A file
/// whose module path is one of these, or below one (a `mod helper;` inside a
/// `#[cfg(test)] mod tests { ... }`), is test code.
fn test_module_paths(src: &Path, files: &[(PathBuf, String)]) -> BTreeSet<PathBuf> {
    files
        .iter()
        .flat_map(|(file, text)| {
            let parent = module_path(src, file);
            test_module_names(text)
                .into_iter()
                .map(move |name| parent.join(name))
        })
        .collect()
}

/// Whether `file` is a unit-test module's file, or a file below one.
fn is_test_file(src: &Path, file: &Path, test_modules: &BTreeSet<PathBuf>) -> bool {
    let path = module_path(src, file);
    test_modules.iter().any(|t| path.starts_with(t))
}

/// The index just past blanks and comments from `at`.
fn skip_trivia(text: &str, mut at: usize) -> usize {
    loop {
        let rest = &text[at..];
        let trimmed = rest.trim_start();
        at += rest.len() - trimmed.len();
        if trimmed.starts_with("//") {
            at += trimmed.find('\n').unwrap_or(trimmed.len());
        } else if trimmed.starts_with("/*") {
            at += trimmed.find("*/").map_or(trimmed.len(), |end| end + 2);
        } else {
            return at;
        }
    }
}

/// The index of the bracket closing the one at `open` (`{`, `[` or `(`), skipping
/// strings, raw strings, character literals and comments.
fn matching(text: &str, open: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = open;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i += text[i..].find('\n').unwrap_or(text.len() - i);
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                i += text[i..].find("*/").map_or(text.len() - i, |end| end + 1);
            }
            b'r' if !is_ident(bytes, i) && matches!(bytes.get(i + 1), Some(b'"' | b'#')) => {
                let hashes = bytes[i + 1..].iter().take_while(|&&b| b == b'#').count();
                let start = i + 1 + hashes;
                if bytes.get(start) == Some(&b'"') {
                    let close = format!("\"{}", "#".repeat(hashes));
                    i = text[start + 1..].find(&close)? + start + close.len();
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            // A character literal ('x', '\n', '\u{..}'), not a lifetime ('a).
            b'\'' => {
                if bytes.get(i + 1) == Some(&b'\\') {
                    i += text[i + 2..].find('\'')? + 2;
                } else if bytes.get(i + 2) == Some(&b'\'') {
                    i += 2;
                } else if let Some(c) = text[i + 1..].chars().next()
                    && text[i + 1 + c.len_utf8()..].starts_with('\'')
                {
                    i += c.len_utf8() + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether the byte before `i` continues an identifier (`for` in `for"..."` is not a
/// raw string's `r`).
fn is_ident(bytes: &[u8], i: usize) -> bool {
    i > 0 && (bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_')
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
    let files: Vec<(PathBuf, String)> = files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).expect("read source");
            (file, text)
        })
        .collect();
    let test_modules = test_module_paths(&src, &files);
    for (file, text) in &files {
        let from = stage(&src, file);
        // Unit tests may reach anywhere; only the code itself counts.
        if !stages.contains_key(&from) || is_test_file(&src, file, &test_modules) {
            continue;
        }
        let code = without_test_modules(text);
        let targets: BTreeSet<String> = crate_paths(&code)
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
        ("outcome", &["i18n", "text"][..]),
        ("wolkvox", &["i18n", "text"][..]),
    ] {
        assert!(
            graph.contains_key(leaf),
            "no stage {leaf}: the leaf moved? (update this table)"
        );
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
        // Reading results needs no sender: the vocabulary they share (statuses and
        // outcomes, what Wolkvox's answers mean) is in the leaves `outcome` and `wolkvox`.
        ("report", "send"),
        ("reconcile", "send"),
        // The flags know the statuses, not the journal that records them.
        ("cli", "journal"),
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

#[test]
fn the_scanner_reads_past_a_test_helper_and_skips_only_test_modules() {
    // As in `validate/mod.rs`: a `#[cfg(test)]` on one item near the top, then a call
    // hundreds of lines below it (a cycle planted there used to pass unseen).
    let planted = "use crate::input;\n\
        #[cfg(test)]\n\
        pub(crate) fn sample() -> Job { Job::default() }\n\
        \n\
        fn later() {\n    let s = \"}\";\n    let c = '{';\n    \
        crate::send::api::excerpt(s);\n}\n\
        #[cfg(test)]\n\
        #[allow(dead_code)]\n\
        // a comment between\n\
        mod tests {\n    use crate::report;\n    fn f() { let _ = \"{\"; let _ = r#\"}\"#; }\n}\n\
        fn after_tests() { crate::plan::x(); }\n\
        #[cfg(test)]\n\
        mod more_tests;\n";
    let code = without_test_modules(planted);
    assert_eq!(
        crate_paths(&code).into_iter().collect::<Vec<_>>(),
        ["input", "plan", "send"],
        "{code}"
    );
    // Before: everything after the first `#[cfg(test)]` was left out.
    let old = planted.split("#[cfg(test)]").next().unwrap_or_default();
    assert_eq!(crate_paths(old).into_iter().collect::<Vec<_>>(), ["input"]);
}

#[test]
fn the_scanner_skips_the_files_of_unit_test_modules() {
    // `validate/tests.rs` has no marker of its own: `validate/mod.rs` declares it under
    // `#[cfg(test)]`. It was read as production code (its `crate::send` was an edge).
    let src = Path::new("/x/src");
    let files: Vec<(PathBuf, String)> = [
        ("validate/mod.rs", "mod phone;\n#[cfg(test)]\nmod tests;\n"),
        (
            "send/window.rs",
            "#[cfg(test)]\n#[allow(clippy::all)]\nmod tests;\n",
        ),
        ("plan.rs", "#[cfg(test)]\nmod tests {\n    mod cases;\n}\n"),
        ("lib.rs", "pub mod plan;\n#[cfg(test)]\nmod root_tests;\n"),
        ("config/mod.rs", "#[cfg(test)]\nfn helper() {}\nmod file;\n"),
    ]
    .into_iter()
    .map(|(rel, text)| (src.join(rel), text.to_owned()))
    .collect();
    let tests = test_module_paths(src, &files);
    let skipped = |rel: &str| is_test_file(src, &src.join(rel), &tests);
    for test_file in [
        "validate/tests.rs",
        "validate/tests/mod.rs",
        "validate/tests/more.rs",
        "send/window/tests.rs",
        "plan/tests/cases.rs",
        "root_tests.rs",
    ] {
        assert!(skipped(test_file), "{test_file} is test code: {tests:?}");
    }
    for code in [
        "validate/mod.rs",
        "validate/phone.rs",
        "validate/tests_of_phones.rs",
        "send/window.rs",
        "send/window/gate.rs",
        "plan.rs",
        "config/file.rs",
        "config/helper.rs",
    ] {
        assert!(!skipped(code), "{code} is code: {tests:?}");
    }
}
