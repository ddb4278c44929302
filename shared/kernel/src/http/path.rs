//! Canonical request paths: the edge refuses every path that some reader of it could
//! normalise into another.
//!
//! A path is read by more than one parser on its way in. The router matches it byte for
//! byte; the `url` crate, which builds every outgoing request, turns `\` into `/` and
//! resolves `..`; other software decodes `%2f`, drops `;params` or accepts overlong UTF-8.
//! When two readers disagree, a path the gateway matched as `/api/users/{id}` can arrive
//! at `/internal/users/profiles/{id}`. No path of this API needs any of those spellings,
//! so the edge (both builds, every service) answers them all with 400 `invalid_path`
//! before any route runs, and the readers are left nothing to disagree about.
//!
//! Canonical here means: it starts with `/`; every segment is non-empty and is not `.` or
//! `..`; every byte is a literal RFC 3986 path character other than `;` (letters, digits,
//! `-._~!$&'()*+,=:@`); and a percent-encoding is upper-case and stands for a printable
//! ASCII character that has to be encoded: never an unreserved character (it would decode
//! to the same path), `/`, `\`, `%`, a control character or a byte above 0x7F.

use crate::{Error, ErrorKind, Result, codes};

/// Ok when `path` (without its query) is canonical; otherwise 400 `invalid_path`, saying
/// why without repeating the path.
pub fn require_canonical_path(path: &str) -> Result<()> {
    why_not_canonical(path.as_bytes()).map_or(Ok(()), |reason| {
        Err(Error::new(ErrorKind::BadRequest, codes::INVALID_PATH, format!("the path is not canonical: {reason}")))
    })
}

/// The reason `path` is not canonical, if it is not.
fn why_not_canonical(path: &[u8]) -> Option<&'static str> {
    let Some(rest) = path.strip_prefix(b"/") else {
        return Some("it must start with `/`");
    };
    if rest.is_empty() {
        return None;
    }
    rest.split(|&b| b == b'/').find_map(segment_problem)
}

fn segment_problem(segment: &[u8]) -> Option<&'static str> {
    match segment {
        b"" => return Some("it has an empty segment (`//` or a trailing `/`)"),
        b"." | b".." => return Some("it has a `.` or `..` segment"),
        _ => {}
    }
    let mut i = 0;
    while i < segment.len() {
        let b = segment[i];
        if b == b'%' {
            let Some(encoded) = segment.get(i + 1..i + 3) else {
                return Some("it has a malformed percent-encoding");
            };
            if let Some(problem) = encoding_problem(encoded) {
                return Some(problem);
            }
            i += 3;
            continue;
        }
        if let Some(problem) = byte_problem(b) {
            return Some(problem);
        }
        i += 1;
    }
    None
}

/// What is wrong with a literal byte of a segment.
fn byte_problem(b: u8) -> Option<&'static str> {
    match b {
        b'\\' => Some("it has a backslash"),
        b';' => Some("it has a `;` path parameter"),
        0..0x20 | 0x7f => Some("it has a control character"),
        0x80.. => Some("it has a non-ASCII byte"),
        _ if is_unreserved(b) || b"!$&'()*+,=:@".contains(&b) => None,
        _ => Some("it has a character that must be percent-encoded"),
    }
}

/// What is wrong with the two characters after a `%`.
fn encoding_problem(hex: &[u8]) -> Option<&'static str> {
    let (Some(high), Some(low)) = (hex_value(hex[0]), hex_value(hex[1])) else {
        return Some("it has a malformed percent-encoding");
    };
    match (high << 4) | low {
        b'/' | b'\\' => Some("it has an encoded `/` or `\\`"),
        b'.' => Some("it has an encoded `.`"),
        b'%' => Some("it has an encoded `%` (double encoding)"),
        0..0x20 | 0x7f => Some("it has an encoded control character"),
        0x80.. => Some("it has an encoded non-ASCII byte"),
        b if is_unreserved(b) => Some("it has an encoded letter, digit or `-_~`"),
        _ if hex.iter().any(u8::is_ascii_lowercase) => Some("it has a lower-case percent-encoding"),
        _ => None,
    }
}

fn hex_value(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_api_s_own_paths_are_canonical() {
        for path in [
            "/",
            "/health",
            "/api/users/me",
            "/api/users/0191c1c4-8f0e-7a55-b3a4-4f1f0e9d2c11",
            "/api/payments/x/y",
            "/a.b/c~d/e_f/-/...",
            "/a:b@c!$&'()*+,=",
            "/with%20space/%7Bbraced%7D/%3B",
        ] {
            assert_eq!(why_not_canonical(path.as_bytes()), None, "{path}");
        }
    }

    #[test]
    fn every_spelling_that_could_be_normalised_is_refused() {
        for (path, reason) in [
            ("", "start with"),
            ("*", "start with"),
            ("api/users", "start with"),
            ("//api", "empty segment"),
            ("/api//users", "empty segment"),
            ("/api/users/", "empty segment"),
            ("/api/./users", "`.` or `..`"),
            ("/api/users/.", "`.` or `..`"),
            ("/api/users/../internal", "`.` or `..`"),
            ("/..", "`.` or `..`"),
            ("/api/users/..\\..\\internal", "backslash"),
            ("/api/users/..;/internal", "`;`"),
            ("/api/users/me;jsessionid=x", "`;`"),
            ("/api/%2e%2e/x", "encoded `.`"),
            ("/api/%2E%2E/x", "encoded `.`"),
            ("/api/.%2e/x", "encoded `.`"),
            ("/api%2fusers", "encoded `/`"),
            ("/api%2Fusers", "encoded `/`"),
            ("/api%5cusers", "encoded `/`"),
            ("/api%5Cusers", "encoded `/`"),
            ("/api/%252e%252e", "double encoding"),
            ("/api/%c0%ae%c0%ae", "non-ASCII"),
            ("/api/%C3%A9", "non-ASCII"),
            ("/api/me%00", "encoded control"),
            ("/api/me%0a", "encoded control"),
            ("/api/me%7F", "encoded control"),
            ("/api/me\t", "control character"),
            ("/api/caf\u{e9}", "non-ASCII byte"),
            ("/%61pi/users", "encoded letter"),
            ("/api/%7e", "encoded letter"),
            ("/api/%7b", "lower-case"),
            ("/api/%", "malformed"),
            ("/api/%2", "malformed"),
            ("/api/%zz", "malformed"),
            ("/api/{id}", "must be percent-encoded"),
            ("/api/a b", "must be percent-encoded"),
            ("/api/a|b", "must be percent-encoded"),
        ] {
            let got = why_not_canonical(path.as_bytes());
            assert!(got.is_some_and(|r| r.contains(reason)), "{path:?}: expected {reason:?}, got {got:?}");
        }
    }

    #[test]
    fn the_refusal_is_a_400_invalid_path_that_does_not_echo_the_path() {
        let e = require_canonical_path("/api/users/..\\secret-looking-input").expect_err("refused");
        assert_eq!((e.kind, e.code.as_ref()), (ErrorKind::BadRequest, codes::INVALID_PATH));
        assert!(!e.message.contains("secret-looking-input"), "{}", e.message);
        assert!(require_canonical_path("/api/users/me").is_ok());
    }
}
