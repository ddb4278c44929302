//! docs/api.md's error-code table and the code's error-code constants are the same set.
//!
//! Every code an answer can carry is a constant in the crate that answers it; this test
//! fails when a constant is added without its row in the table, or a row outlives its code.

use std::collections::BTreeSet;

const API_DOC: &str = include_str!("../../../docs/api.md");

/// Every code the public API can answer, from the crates that answer them.
fn declared() -> Vec<&'static str> {
    [archlab_kernel::codes::ALL, archlab_auth::codes::ALL, archlab_users::codes::ALL, archlab_payments::codes::ALL]
        .concat()
}

/// The codes in the table under `## Error codes`: the second cell of each row.
fn documented() -> Vec<String> {
    let section = API_DOC.split("\n## Error codes\n").nth(1).expect("docs/api.md has an `## Error codes` section");
    let section = section.split("\n## ").next().unwrap_or(section);
    section
        .lines()
        .filter_map(|line| line.strip_prefix('|'))
        .filter_map(|row| row.split('|').nth(1))
        .filter_map(|cell| cell.trim().strip_prefix('`')?.strip_suffix('`').map(str::to_owned))
        .collect()
}

#[test]
fn every_code_is_declared_once() {
    let codes = declared();
    let unique: BTreeSet<_> = codes.iter().collect();
    assert_eq!(unique.len(), codes.len(), "a code is declared in two places: {codes:?}");
}

#[test]
fn every_code_is_documented_and_every_documented_code_exists() {
    let declared: BTreeSet<String> = declared().into_iter().map(str::to_owned).collect();
    let documented: BTreeSet<String> = documented().into_iter().collect();
    assert!(!documented.is_empty(), "no codes found in the table of docs/api.md");

    let undocumented: Vec<_> = declared.difference(&documented).collect();
    assert!(undocumented.is_empty(), "codes missing from docs/api.md: {undocumented:?}");
    let stale: Vec<_> = documented.difference(&declared).collect();
    assert!(stale.is_empty(), "docs/api.md lists codes no crate declares: {stale:?}");
}
