//! The shape the code keeps (issue "One runtime for every SenderOps controller"): no file in
//! `src/` over 600 lines and no function over 70, both counted without test modules (a
//! `#[cfg(test)] mod … { … }` block, or a `tests.rs` file). `sim/` and `tests/` are not counted.

use std::path::{Path, PathBuf};

use crate::support::controlplane::repo_root;

const MAX_FILE_LINES: usize = 600;
const MAX_FUNCTION_LINES: usize = 70;

fn rust_files(dir: &Path, into: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {dir:?}: {e}")) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs")
            && path.file_name().is_some_and(|n| n != "tests.rs")
        {
            into.push(path);
        }
    }
}

/// The braces a line opens minus those it closes, strings and comments left out well enough
/// for this code base (no braces in char literals it counts).
fn depth_change(line: &str) -> i64 {
    let code = line.split("//").next().unwrap_or("");
    let mut in_string = false;
    let mut escaped = false;
    let mut change = 0;
    for c in code.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            '{' if !in_string => change += 1,
            '}' if !in_string => change -= 1,
            _ => {}
        }
    }
    change
}

/// The lines of `text` without its `#[cfg(test)] mod … { … }` blocks.
fn without_test_modules(text: &str) -> Vec<&str> {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let opens_test_module = lines[i].trim() == "#[cfg(test)]"
            && lines
                .get(i + 1)
                .is_some_and(|next| next.trim_start().starts_with("mod ") && next.ends_with('{'));
        if !opens_test_module {
            kept.push(lines[i]);
            i += 1;
            continue;
        }
        let mut depth = 0;
        let mut j = i + 1;
        while j < lines.len() {
            depth += depth_change(lines[j]);
            if depth == 0 {
                break;
            }
            j += 1;
        }
        i = j + 1;
    }
    kept
}

fn is_fn_start(line: &str) -> bool {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(at) = words.iter().position(|w| *w == "fn") else {
        return false;
    };
    words[..at].iter().all(|w| {
        matches!(*w, "async" | "const" | "unsafe" | "pub" | "extern") || w.starts_with("pub(")
    }) && !line.trim_end().ends_with(';')
}

/// (lines, name) of every function in `lines`, from its `fn` line to its closing brace.
fn functions(lines: &[&str]) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if !is_fn_start(line) {
            continue;
        }
        let name = line
            .split("fn ")
            .nth(1)
            .and_then(|rest| rest.split(['(', '<']).next())
            .unwrap_or("?")
            .to_string();
        let (mut depth, mut opened) = (0, false);
        for (j, body) in lines.iter().enumerate().skip(i) {
            depth += depth_change(body);
            opened |= body.contains('{');
            if opened && depth <= 0 {
                found.push((j - i + 1, name));
                break;
            }
        }
    }
    found
}

#[test]
fn no_file_in_src_is_over_600_lines_and_no_function_over_70() {
    let root = repo_root();
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(files.len() > 20, "found the sources: {files:?}");
    let mut over = Vec::new();
    let mut longest = (0, String::new());
    for file in &files {
        let text = std::fs::read_to_string(file).expect("read a source file");
        let lines = without_test_modules(&text);
        let shown = file
            .strip_prefix(root)
            .unwrap_or(file)
            .display()
            .to_string();
        if lines.len() > MAX_FILE_LINES {
            over.push(format!("{shown}: {} lines", lines.len()));
        }
        for (length, name) in functions(&lines) {
            if length > MAX_FUNCTION_LINES {
                over.push(format!("{shown}: fn {name} is {length} lines"));
            }
            if length > longest.0 {
                longest = (length, format!("{shown}: fn {name}"));
            }
        }
    }
    eprintln!(
        "{} files; the longest function: {} ({} lines)",
        files.len(),
        longest.1,
        longest.0
    );
    assert!(over.is_empty(), "over the limits:\n{}", over.join("\n"));
}

#[test]
fn the_counting_sees_functions_and_leaves_test_modules_out() {
    let text = "fn a() {\n    let s = \"}\";\n}\n#[cfg(test)]\nmod tests {\n    fn b() {\n    }\n}\npub(crate) async fn c(\n    x: u8,\n) -> u8 {\n    x\n}\n";
    let lines = without_test_modules(text);
    assert_eq!(lines.len(), 8, "{lines:?}");
    assert_eq!(
        functions(&lines),
        [(3, "a".to_string()), (5, "c".to_string())]
    );
}

/// The least run of lines that counts as repeated between two controllers' folders.
const REPEATED_RUN: usize = 6;

/// The lines of a file as compared: trimmed, without blank and comment-only lines, and without
/// its test modules.
fn compared_lines(file: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(file).expect("read a source file");
    without_test_modules(&text)
        .into_iter()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with("//"))
        .map(str::to_string)
        .collect()
}

/// Runs of [`REPEATED_RUN`] lines that stand in both `a` and `b` (each a folder's files, as
/// compared), shown as `a`'s file and first line text. A run of closing braces and the like
/// says nothing: a run counts only if some line of it has a word in it.
fn repeated_runs(a: &[(String, Vec<String>)], b: &[(String, Vec<String>)]) -> Vec<String> {
    let mut in_b = std::collections::HashSet::new();
    for (_, lines) in b {
        for run in lines.windows(REPEATED_RUN) {
            in_b.insert(run.to_vec());
        }
    }
    let mut found = Vec::new();
    for (file, lines) in a {
        for run in lines.windows(REPEATED_RUN) {
            let says_something = run
                .iter()
                .any(|line| line.chars().filter(|c| c.is_alphanumeric()).count() > 3);
            if says_something && in_b.contains(run) {
                found.push(format!("{file}: {}", run[0]));
            }
        }
    }
    found
}

/// Issue "One runtime for every SenderOps controller": no block of six or more lines is
/// repeated between two controllers' folders; what two kinds both need goes to the runtime.
#[test]
fn no_run_of_six_lines_is_repeated_between_two_controllers_folders() {
    let root = repo_root().join("src/controllers");
    let mut folders = Vec::new();
    for entry in std::fs::read_dir(&root).unwrap_or_else(|e| panic!("read {root:?}: {e}")) {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            let mut files = Vec::new();
            rust_files(&path, &mut files);
            let compared: Vec<(String, Vec<String>)> = files
                .iter()
                .map(|f| (f.display().to_string(), compared_lines(f)))
                .collect();
            folders.push((path, compared));
        }
    }
    assert!(
        folders
            .iter()
            .any(|(path, _)| path.ends_with("whatsapp_sender")),
        "found the controllers' folders: {:?}",
        folders.iter().map(|(p, _)| p).collect::<Vec<_>>()
    );
    let mut repeated = Vec::new();
    for (i, (_, a)) in folders.iter().enumerate() {
        for (_, b) in &folders[i + 1..] {
            repeated.extend(repeated_runs(a, b));
        }
    }
    assert!(
        repeated.is_empty(),
        "repeated between controllers' folders:\n{}",
        repeated.join("\n")
    );
}

#[test]
fn a_repeated_run_is_found_and_braces_alone_are_not() {
    let lines = |text: &str| text.lines().map(str::to_string).collect::<Vec<_>>();
    let shared = "let a = one();\nlet b = two(a);\nif b {\nwork(b);\n}\nreturn b;\n";
    let a = vec![("a.rs".to_string(), lines(&format!("fn x() {{\n{shared}}}")))];
    let b = vec![("b.rs".to_string(), lines(&format!("fn y() {{\n{shared}}}")))];
    assert_eq!(
        repeated_runs(&a, &b),
        ["a.rs: let a = one();", "a.rs: let b = two(a);"],
        "the six shared lines, and them with the closing brace"
    );
    let braces = vec![("c.rs".to_string(), lines("}\n}\n)\n}\n};\n}\n"))];
    assert!(repeated_runs(&braces, &braces).is_empty());
}
