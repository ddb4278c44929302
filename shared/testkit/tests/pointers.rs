//! A pointer in a comment or a doc is a promise: every file path named in a Rust comment, in
//! README.md or in docs/*.md must exist.
//!
//! A path is a word with a `/` that ends in a source extension (`monolith/src/app.rs`,
//! `shared/auth/migrations/1001_auth.sql`). It may use `*` for one path segment
//! (`microservices/*/src/lib.rs`: at least one must match) and `{a,b}` for alternatives (each
//! must exist). It is looked up from the repository root, then from the folder and the
//! crate of the file that names it.

use std::path::{Path, PathBuf};

const EXTENSIONS: &[&str] = &["rs", "md", "sql", "proto", "toml", "sh", "yml", "yaml", "json"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("the repository root")
}

/// Every file under `dir` that git would see (skipping build output and hidden folders).
fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable dir").flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        if path.is_dir() {
            files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The path-like words of `text`.
fn paths_in(text: &str) -> Vec<String> {
    // `:` belongs to words so that URLs (`http://host:port/x.json`) stay whole and are skipped,
    // and `$` so that shell paths (`$dir/x.json`) do too. Paths under `target/` are what the
    // commands the docs describe write (reports, criterion output), not files of the repo.
    let word = |c: char| c.is_ascii_alphanumeric() || "_./*{},-:$".contains(c);
    text.split(|c: char| !word(c))
        .map(|w| w.trim_start_matches(['.', ',', '-', ':']).trim_end_matches(['.', ',', ':']))
        .filter(|w| w.contains('/') && !w.starts_with('/') && !w.contains(':'))
        .filter(|w| !w.contains('$') && !w.starts_with("target/"))
        .filter(|w| w.rsplit_once('.').is_some_and(|(_, ext)| EXTENSIONS.contains(&ext)))
        .map(str::to_owned)
        .collect()
}

/// `a/{b,c}.rs` → `a/b.rs`, `a/c.rs`.
fn expand(path: &str) -> Vec<String> {
    match (path.find('{'), path.find('}')) {
        (Some(open), Some(close)) if open < close => path[open + 1..close]
            .split(',')
            .flat_map(|alt| expand(&format!("{}{alt}{}", &path[..open], &path[close + 1..])))
            .collect(),
        _ => vec![path.to_owned()],
    }
}

/// Whether `pattern` names an existing file under `base`; a `*` in a segment matches any
/// run of characters within that segment (`*/src/lib.rs`, `proto/*.proto`).
fn exists(base: &Path, pattern: &str) -> bool {
    let mut candidates = vec![base.to_path_buf()];
    for segment in pattern.split('/') {
        candidates = candidates
            .into_iter()
            .flat_map(|dir| match segment.split_once('*') {
                Some((prefix, suffix)) => std::fs::read_dir(&dir)
                    .map(|d| {
                        d.flatten()
                            .filter(|e| {
                                let name = e.file_name().to_string_lossy().into_owned();
                                name.len() >= prefix.len() + suffix.len()
                                    && name.starts_with(prefix)
                                    && name.ends_with(suffix)
                            })
                            .map(|e| e.path())
                            .collect()
                    })
                    .unwrap_or_default(),
                None => vec![dir.join(segment)],
            })
            .filter(|p| p.exists())
            .collect();
    }
    candidates.iter().any(|p| p.is_file())
}

/// The folders a relative path in `file` may be relative to: its own folder and its crate.
fn local_bases(file: &Path) -> Vec<PathBuf> {
    let dir = file.parent().expect("a file has a folder");
    let krate = dir.ancestors().find(|d| d.join("Cargo.toml").is_file()).unwrap_or(dir);
    vec![dir.to_path_buf(), krate.to_path_buf()]
}

/// What a file says in prose: a Rust file's comments, a Markdown file whole.
fn prose(file: &Path, text: &str) -> Option<String> {
    match file.extension().and_then(|e| e.to_str()) {
        Some("rs") => {
            Some(text.lines().filter_map(|l| l.trim_start().strip_prefix("//")).collect::<Vec<_>>().join("\n"))
        }
        Some("md") => Some(text.to_owned()),
        _ => None,
    }
}

#[test]
fn every_path_named_in_comments_and_docs_exists() {
    let root = repo_root();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut checked = 0;
    let mut broken = Vec::new();
    for file in &all {
        let rel = file.strip_prefix(&root).expect("under the root");
        let is_doc = rel.starts_with("docs") || rel == Path::new("README.md");
        // Markdown outside docs/ is not the lab's documentation; this file's examples are
        // examples, not pointers.
        let this_file = rel == Path::new(file!()) || rel.ends_with("testkit/tests/pointers.rs");
        if (file.extension().is_some_and(|e| e == "md") && !is_doc) || this_file {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(file) else { continue };
        let Some(prose) = prose(file, &text) else { continue };
        for named in paths_in(&prose) {
            for path in expand(&named) {
                checked += 1;
                if !exists(&root, &path) && !local_bases(file).iter().any(|base| exists(base, &path)) {
                    broken.push(format!("{}: {path}", rel.display()));
                }
            }
        }
    }
    assert!(checked > 20, "only {checked} paths found: is the scan still reading the tree?");
    assert!(broken.is_empty(), "paths that lead nowhere:\n{}", broken.join("\n"));
}

#[test]
fn the_scanner_finds_paths_and_expands_patterns() {
    assert_eq!(
        paths_in("see `monolith/src/app.rs`, and http://127.0.0.1:8080/api/x.json or /etc/x.rs."),
        ["monolith/src/app.rs"]
    );
    assert_eq!(expand("remote/src/{broker,relay}.rs"), ["remote/src/broker.rs", "remote/src/relay.rs"]);
    let root = repo_root();
    assert!(exists(&root, "microservices/*/src/lib.rs"));
    assert!(exists(&root, "docs/*.md"));
    assert!(!exists(&root, "microservices/*/src/nowhere.rs"));
    assert!(!exists(&root, "microservices/remote"), "a folder is not a file");
}
