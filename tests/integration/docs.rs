//! The documentation and the flags agree: every flag `--help` lists (of every
//! subcommand) is written somewhere in the README or `docs/*.md`, and every
//! `wolkvox-dispatch` flag the guide writes exists. Pages another change adds
//! (`docs/ledger.md`, `docs/networks.md`, `docs/spreadsheets.md`) are read when present.
//! The guide's command reference, where README.md sends readers for the flags, has each
//! command's every flag in that command's table and synopsis (the catalogue is the one
//! source of a flag's `--help` text; these pages say the same in their own words).

use crate::common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

const SUBCOMMANDS: [&str; 7] = [
    "send",
    "validate",
    "report",
    "reconcile",
    "init",
    "history",
    "ledger",
];

/// The English pages a flag may be documented in, those that exist.
fn pages() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut names = vec!["README.md".to_owned()];
    if let Ok(entries) = std::fs::read_dir(root.join("docs")) {
        let mut docs: Vec<String> = entries
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".md") && !n.ends_with(".es.md"))
            .map(|n| format!("docs/{n}"))
            .collect();
        docs.sort();
        names.extend(docs);
    }
    names
        .into_iter()
        .filter_map(|n| {
            std::fs::read_to_string(root.join(&n))
                .ok()
                .map(|text| (n, text))
        })
        .collect()
}

/// `--flag` words in `text` (long flags only).
fn flags_in(text: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(at) = text[i..].find("--") {
        let start = i + at;
        let before = start.checked_sub(1).map(|b| bytes[b]);
        let mut end = start + 2;
        while end < bytes.len() && (bytes[end].is_ascii_lowercase() || bytes[end] == b'-') {
            end += 1;
        }
        let word = &text[start..end];
        let starts_word =
            before.is_none_or(|b| !(b.is_ascii_alphanumeric() || b == b'-' || b == b'#'));
        if starts_word && word.len() > 3 && !word.ends_with('-') {
            out.insert(word.to_owned());
        }
        i = end.max(start + 2);
    }
    out
}

/// The long flags `wolkvox-dispatch SUBCOMMAND --help` lists.
fn help_flags(subcommand: &str) -> BTreeSet<String> {
    let mut c = cmd();
    c.args([subcommand, "--help"]);
    let out = run(c);
    out.expect_code(0);
    out.stdout
        .lines()
        // An option's line: not a wrapped description (indented further) nor a line of
        // the status table after it (not indented) that starts with a flag it quotes.
        .filter(|l| {
            let indent = l.len() - l.trim_start().len();
            l.trim_start().starts_with('-') && (2..8).contains(&indent)
        })
        .flat_map(|l| flags_in(l.split("  ").find(|p| !p.trim().is_empty()).unwrap_or("")))
        .filter(|f| f != "--help" && f != "--version")
        .collect()
}

#[test]
fn every_flag_in_help_is_documented() {
    let pages = pages();
    let documented: BTreeSet<String> = pages.iter().flat_map(|(_, t)| flags_in(t)).collect();
    for sub in SUBCOMMANDS {
        let flags = help_flags(sub);
        assert!(!flags.is_empty(), "{sub} --help lists no flag");
        for flag in flags {
            assert!(
                documented.contains(&flag),
                "`{sub} {flag}` is in --help but in none of {:?}",
                pages.iter().map(|(n, _)| n).collect::<Vec<_>>()
            );
        }
    }
}

#[test]
fn every_flag_the_guide_writes_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Ok(guide) = std::fs::read_to_string(root.join("docs/guide.md")) else {
        eprintln!("skipped: no docs/guide.md");
        return;
    };
    let known: BTreeSet<String> = SUBCOMMANDS.iter().flat_map(|s| help_flags(s)).collect();
    // Flags of other programs the guide shows: cargo, the fake endpoint, curl's peers.
    let others = [
        "--release",
        "--locked",
        "--path",
        "--example",
        "--test",
        "--bench",
        "--ignored",
        "--nocapture",
        "--latency-ms",
        "--write-list",
        "--rows",
        "--help",
        "--version",
    ];
    assert!(known.contains("--dry-run") && known.contains("--country"));
    for flag in flags_in(&guide) {
        assert!(
            known.contains(&flag) || others.contains(&flag.as_str()),
            "docs/guide.md writes {flag}, which no subcommand has"
        );
    }
}

/// The section of `page` under the heading `heading` (to the next `## `).
fn section(page: &str, heading: &str) -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join(page)).unwrap_or_default();
    let mut lines = text.lines().skip_while(|l| l.trim_end() != heading);
    let Some(first) = lines.next() else {
        panic!("{page} has no `{heading}` section");
    };
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.starts_with("## ")))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The flags of the first column of the table rows in `lines`.
fn table_flags<'a>(lines: impl Iterator<Item = &'a str>) -> BTreeSet<String> {
    lines
        .filter(|l| l.starts_with("| `-"))
        .flat_map(|l| flags_in(l.split(" | ").next().unwrap_or("")))
        .collect()
}

/// The guide's command reference, the table README.md sends readers to, has a table for
/// each command that lists every flag `--help` shows for it, and no flag it lacks; flags
/// every command takes (`--lang`) are in the table before the first command's. Its
/// synopsis names every flag too. The Spanish guide's reference names every flag.
#[test]
fn the_command_reference_has_every_flag_of_each_command() {
    let reference = section("docs/guide.md", "## Command reference");
    let start_of = |line: &str| {
        SUBCOMMANDS
            .iter()
            .find(|s| line.starts_with(&format!("`{s} ")) || line.starts_with(&format!("`{s}`")))
            .copied()
    };
    let global = table_flags(reference.lines().take_while(|l| start_of(l).is_none()));
    assert!(
        global.contains("--lang"),
        "no table of every command's flags"
    );
    for sub in SUBCOMMANDS {
        let mut in_chunk = false;
        let chunk: Vec<&str> = reference
            .lines()
            .filter(|l| {
                if let Some(s) = start_of(l) {
                    in_chunk = s == sub;
                }
                in_chunk
            })
            .collect();
        let table = table_flags(chunk.iter().copied());
        let help = help_flags(sub);
        let missing: Vec<_> = help
            .iter()
            .filter(|f| !table.contains(*f) && !global.contains(*f))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/guide.md#command-reference: the `{sub}` table lacks {missing:?}"
        );
        let stale: Vec<_> = table.iter().filter(|f| !help.contains(*f)).collect();
        assert!(
            stale.is_empty(),
            "docs/guide.md#command-reference: the `{sub}` table lists {stale:?}, which `{sub}` lacks"
        );
        let mut synopsis_lines = false;
        let synopsis: BTreeSet<String> = reference
            .lines()
            .filter(|l| {
                if l.starts_with("wolkvox-dispatch ") || l.starts_with("```") {
                    synopsis_lines = l.starts_with(&format!("wolkvox-dispatch {sub} "));
                }
                synopsis_lines
            })
            .flat_map(flags_in)
            .collect();
        let missing: Vec<_> = help
            .iter()
            .filter(|f| !synopsis.contains(*f) && !global.contains(*f))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/guide.md#command-reference: the synopsis of `{sub}` lacks {missing:?}"
        );
    }
    let spanish = flags_in(&section("docs/guide.es.md", "## Referencia de comandos"));
    for sub in SUBCOMMANDS {
        let missing: Vec<_> = help_flags(sub)
            .into_iter()
            .filter(|f| !spanish.contains(f))
            .collect();
        assert!(
            missing.is_empty(),
            "docs/guide.es.md#referencia-de-comandos lacks `{sub}` {missing:?}"
        );
    }
}
