//! The README's account of `make bench` (its Performance section) against the bench's code
//! (benches/fleet/): the operator flags it names are the flags the bench passes, and the ones
//! it says every operator runs with are `OPERATOR_FLAGS`, values included. A figure read off an
//! operator run with flags the README does not name would be read as the operator's defaults.

use std::collections::BTreeSet;

use regex::Regex;

use crate::support::controlplane::repo_root;

const BENCH_DIR: &str = "benches/fleet";
const BENCH_MAIN: &str = "benches/fleet/main.rs";

/// The README's `## Performance` section, its fenced code blocks left out (a fence's three
/// backticks would pair with the prose's).
fn performance_section() -> String {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("read README.md");
    let start = readme
        .find("\n## Performance\n")
        .expect("README.md has a Performance section");
    let rest = &readme[start + 1..];
    let section = rest[3..].find("\n## ").map_or(rest, |end| &rest[..end + 3]);
    let mut prose = String::new();
    let mut fenced = false;
    for line in section.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            prose.push_str(line);
            prose.push('\n');
        }
    }
    prose
}

/// The code spans of `text` that start with `--`: flags, with their values if given
/// (`--poll-interval 100ms`, `--batched-refresh=false`).
fn flag_spans(text: &str) -> Vec<String> {
    Regex::new(r"`(--[^`]+)`")
        .unwrap()
        .captures_iter(text)
        .map(|c| c[1].to_string())
        .collect()
}

/// `--batched-refresh=false` and `--poll-interval 100ms` are flag `--batched-refresh` and
/// `--poll-interval`.
fn flag_name(flag: &str) -> String {
    flag.split(['=', ' '])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The code of a bench source file: its comment lines (docs that name flags in passing) left
/// out.
fn code(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every flag the bench passes to `senderops run`: the string literals of its code that start
/// with `--`, by flag name.
fn flags_the_bench_passes() -> BTreeSet<String> {
    let literal = Regex::new(r#""(--[a-z][a-z-]*)(=[^"]*)?""#).unwrap();
    let mut flags = BTreeSet::new();
    let dir = repo_root().join(BENCH_DIR);
    for entry in std::fs::read_dir(&dir).expect("read benches/fleet") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            flags.extend(
                literal
                    .captures_iter(&code(&path))
                    .map(|c| c[1].to_string()),
            );
        }
    }
    flags
}

/// `OPERATOR_FLAGS` of benches/fleet/main.rs, each flag with its value (`--poll-interval
/// 100ms`) as the README writes it.
fn operator_flags() -> BTreeSet<String> {
    let main = code(&repo_root().join(BENCH_MAIN));
    let list = Regex::new(r"const OPERATOR_FLAGS: &\[&str\] =\s*&\[([^\]]*)\];")
        .unwrap()
        .captures(&main)
        .unwrap_or_else(|| panic!("{BENCH_MAIN} defines OPERATOR_FLAGS as a list of literals"))[1]
        .to_string();
    let words: Vec<String> = Regex::new(r#""([^"]*)""#)
        .unwrap()
        .captures_iter(&list)
        .map(|c| c[1].to_string())
        .collect();
    let mut flags = BTreeSet::new();
    let mut i = 0;
    while i < words.len() {
        assert!(words[i].starts_with("--"), "OPERATOR_FLAGS: {words:?}");
        match words.get(i + 1) {
            Some(value) if !value.starts_with("--") && !words[i].contains('=') => {
                flags.insert(format!("{} {value}", words[i]));
                i += 2;
            }
            _ => {
                flags.insert(words[i].clone());
                i += 1;
            }
        }
    }
    assert!(!flags.is_empty(), "OPERATOR_FLAGS is empty");
    flags
}

#[test]
fn the_readme_names_every_flag_the_bench_passes_and_no_other() {
    let section = performance_section();
    let named: BTreeSet<String> = flag_spans(&section).iter().map(|f| flag_name(f)).collect();
    let passed = flags_the_bench_passes();
    assert!(
        passed.contains("--poll-interval") && passed.contains("--metrics-addr"),
        "the scan of {BENCH_DIR} finds the flags it passes: {passed:?}"
    );
    assert_eq!(
        named, passed,
        "flags the README's Performance section names (left) and flags {BENCH_DIR} passes \
         (right)"
    );
}

#[test]
fn the_flags_the_readme_gives_every_bench_operator_are_operator_flags() {
    let section = performance_section();
    let paragraph = section
        .split("\n\n")
        .find(|p| p.contains("(`OPERATOR_FLAGS`)"))
        .expect("the Performance section has a paragraph on (`OPERATOR_FLAGS`)");
    // The flags given with a value; the others there (where Twilio and /metrics are) the bench
    // sets per process, and the other test holds them to the code.
    let with_values: BTreeSet<String> = flag_spans(paragraph)
        .into_iter()
        .filter(|f| f.contains([' ', '=']))
        .collect();
    assert_eq!(
        with_values,
        operator_flags(),
        "the flags with values of the README's paragraph on OPERATOR_FLAGS (left) and \
         OPERATOR_FLAGS of {BENCH_MAIN} (right):\n{paragraph}"
    );
}

#[test]
fn the_flag_readers_see_flags_and_nothing_else() {
    assert_eq!(
        flag_spans("runs `a --b` with `--c 1` and `--d=x`, ```--e``` and `-f`"),
        ["--c 1", "--d=x", "--e"],
        "spans that start with --"
    );
    assert_eq!(flag_name("--d=x"), "--d");
    assert_eq!(flag_name("--c 1"), "--c");
}
