//! Requests written byte for byte on a plain TCP connection, and the table of path spellings
//! that must never reach a route.
//!
//! reqwest (like every URL-parsing client) would normalise `..`, `\` and `%2e` away before
//! sending, so the spellings an attacker sends have to be written by hand: [`send_raw`] puts
//! the request line on the wire exactly as given. [`SPELLINGS`] turns any canonical path into
//! its non-canonical variants (traversals towards an internal route, encoded separators,
//! dot segments, path parameters, overlong UTF-8); every one must be answered 400
//! `invalid_path` (docs/api.md, "Paths"). [`documented_routes`] reads the endpoints from
//! docs/api.md itself, so the table covers every public route, present and future.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::api::Resp;

/// The API description every route list here is read from.
const API_DOC: &str = include_str!("../../../docs/api.md");

/// Longest wait for one raw answer, so a hung deployment fails instead of hanging the run.
const RAW_TIMEOUT: Duration = Duration::from_secs(30);

/// `(method, path pattern, needs a bearer token)` of every endpoint heading in docs/api.md,
/// e.g. `("GET", "/api/users/{id}", true)`.
pub fn documented_routes() -> Vec<(&'static str, &'static str, bool)> {
    API_DOC
        .lines()
        .filter_map(|line| line.strip_prefix("### `"))
        .map(|rest| {
            let (endpoint, tail) = rest.split_once('`').expect("docs/api.md: an endpoint heading closes its backtick");
            let (method, path) = endpoint.split_once(' ').expect("docs/api.md: an endpoint heading is `METHOD path`");
            (method, path, tail.contains("(bearer)"))
        })
        .collect()
}

/// Send one HTTP/1.1 request whose request line is exactly `method target HTTP/1.1`, with
/// `Host`, `Connection: close`, the bearer `token` if any, and for `POST`/`PATCH` an empty
/// JSON object as body; read the whole answer.
pub async fn send_raw(base_url: &str, method: &str, target: &[u8], token: Option<&str>) -> Resp {
    let what = format!("{method} {} (raw)", target.escape_ascii());
    let host = base_url.trim_end_matches('/').strip_prefix("http://").expect("a plain http:// base URL");
    let mut request = Vec::new();
    request.extend_from_slice(method.as_bytes());
    request.push(b' ');
    request.extend_from_slice(target);
    request.extend_from_slice(format!(" HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n").as_bytes());
    if let Some(token) = token {
        request.extend_from_slice(format!("Authorization: Bearer {token}\r\n").as_bytes());
    }
    if matches!(method, "POST" | "PATCH") {
        request.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}");
    } else {
        request.extend_from_slice(b"\r\n");
    }
    let exchange = async {
        let mut stream = TcpStream::connect(host).await?;
        stream.write_all(&request).await?;
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).await?;
        std::io::Result::Ok(answer)
    };
    let answer = tokio::time::timeout(RAW_TIMEOUT, exchange)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {RAW_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    parse_answer(what, &answer)
}

/// An HTTP/1.1 answer read to the end of the connection, as a [`Resp`].
fn parse_answer(what: String, answer: &[u8]) -> Resp {
    let text = String::from_utf8_lossy(answer);
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap_or_else(|| panic!("{what}: no head in {text}"));
    let head = String::from_utf8_lossy(&answer[..split]);
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("{what}: no status line in {text}"));
    let header = |name: &str| {
        head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
        })
    };
    let mut body = answer[split + 4..].to_vec();
    if header("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body).unwrap_or_else(|| panic!("{what}: a malformed chunked body in {text}"));
    } else if let Some(length) = header("content-length").and_then(|l| l.parse::<usize>().ok()) {
        body.truncate(length);
    }
    Resp { what, status, content_type: header("content-type"), retry_after: header("retry-after"), body }
}

/// A chunked body's content.
fn dechunk(mut chunked: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = chunked.windows(2).position(|w| w == b"\r\n")?;
        let size_field = std::str::from_utf8(&chunked[..line_end]).ok()?;
        let size = usize::from_str_radix(size_field.split(';').next()?.trim(), 16).ok()?;
        chunked = &chunked[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(chunked.get(..size)?);
        chunked = chunked.get(size + 2..)?;
    }
}

/// One way to misspell a canonical path.
#[derive(Debug, Clone, Copy)]
pub struct Spelling {
    /// What the spelling is, for messages.
    pub name: &'static str,
    /// Builds it from a canonical concrete path (e.g. `/api/users/me`) and the id of another
    /// user whose internal profile route (`/internal/users/profiles/{id}`) a traversal aims at.
    pub spell: fn(path: &str, victim: &str) -> String,
}

/// `path` up to its last `/` (without it), and its last segment.
fn parent_and_last(path: &str) -> (&str, &str) {
    path.rsplit_once('/').unwrap_or(("", path))
}

/// A traversal from `path`'s parent: `parent` + `/` + `rest`.
fn from_parent(path: &str, rest: &str) -> String {
    format!("{}/{rest}", parent_and_last(path).0)
}

/// `path` with `separator` right after its first `/` and in place of every other one:
/// `/api/users/me` → `/%2Fapi%2Fusers%2Fme`, which a reader decoding it sees as `//api/users/me`.
fn separators(path: &str, separator: &str) -> String {
    format!("/{separator}{}", path[1..].replace('/', separator))
}

/// Every spelling of the table; each one, for every route, must answer 400 `invalid_path`.
pub const SPELLINGS: &[Spelling] = &[
    Spelling {
        name: "the reported traversal, with backslashes",
        spell: |p, v| from_parent(p, &format!(r"..\..\internal\users\profiles\{v}")),
    },
    Spelling { name: "`../` traversal", spell: |p, v| from_parent(p, &format!("../../internal/users/profiles/{v}")) },
    Spelling {
        name: "`%2e%2e/` traversal",
        spell: |p, v| from_parent(p, &format!("%2e%2e/%2e%2e/internal/users/profiles/{v}")),
    },
    Spelling {
        name: "`%2E%2E/` traversal",
        spell: |p, v| from_parent(p, &format!("%2E%2E/%2E%2E/internal/users/profiles/{v}")),
    },
    Spelling {
        name: "`..%2f` traversal inside one segment",
        spell: |p, v| from_parent(p, &format!("..%2f..%2finternal%2fusers%2fprofiles%2f{v}")),
    },
    Spelling { name: "`%2F` as the separators", spell: |p, _| separators(p, "%2F") },
    Spelling {
        name: "`..%5c` traversal inside one segment",
        spell: |p, v| from_parent(p, &format!("..%5c..%5cinternal%5cusers%5cprofiles%5c{v}")),
    },
    Spelling { name: "`%5C` as the separators", spell: |p, _| separators(p, "%5C") },
    Spelling { name: r"`\` as the separators", spell: |p, _| separators(p, r"\") },
    Spelling {
        name: "`..;/` traversal (path parameters)",
        spell: |p, v| from_parent(p, &format!("..;/..;/internal/users/profiles/{v}")),
    },
    Spelling {
        name: "overlong UTF-8 `%c0%ae` traversal",
        spell: |p, v| from_parent(p, &format!("%c0%ae%c0%ae/%c0%ae%c0%ae/internal/users/profiles/{v}")),
    },
    Spelling {
        name: "mixed traversal",
        spell: |p, v| from_parent(p, &format!(r".%2e/%2E./internal\users/profiles%2f{v}")),
    },
    Spelling {
        name: "double-encoded traversal",
        spell: |p, v| from_parent(p, &format!("%252e%252e/%252e%252e/internal/users/profiles/{v}")),
    },
    Spelling {
        name: "`//` before the last segment",
        spell: |p, _| from_parent(p, &format!("/{}", parent_and_last(p).1)),
    },
    Spelling { name: "leading `//`", spell: |p, _| format!("/{p}") },
    Spelling {
        name: "`/./` before the last segment",
        spell: |p, _| from_parent(p, &format!("./{}", parent_and_last(p).1)),
    },
    Spelling { name: "trailing `/.`", spell: |p, _| format!("{p}/.") },
    Spelling { name: "trailing `/..`", spell: |p, _| format!("{p}/..") },
    Spelling { name: "trailing `/`", spell: |p, _| format!("{p}/") },
    Spelling { name: "`;jsessionid=x`", spell: |p, _| format!("{p};jsessionid=x") },
    Spelling {
        name: "the first letter percent-encoded",
        spell: |p, _| format!("/%{:02X}{}", p.as_bytes()[1], &p[2..]),
    },
    Spelling { name: "an encoded NUL", spell: |p, _| format!("{p}%00") },
    Spelling { name: "an encoded CR LF", spell: |p, _| format!("{p}%0d%0a") },
    Spelling { name: "an encoded non-ASCII character", spell: |p, _| format!("{p}%C3%A9") },
];

/// The request-target of every route pattern with `{id}` filled: `id` for `/api/users/{id}`
/// and `/api/payments/{id}` alike.
pub fn concrete(pattern: &str, id: &str) -> String {
    pattern.replace("{id}", id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reported_request_is_in_the_table() {
        let victim = "0191c1c4-8f0e-7a55-b3a4-4f1f0e9d2c11";
        let spelled = (SPELLINGS[0].spell)("/api/users/me", victim);
        assert_eq!(spelled, format!(r"/api/users/..\..\internal\users\profiles\{victim}"));
    }

    #[test]
    fn every_spelling_differs_from_the_path_for_every_route() {
        let routes = documented_routes();
        assert!(routes.len() >= 12, "docs/api.md endpoints: {routes:?}");
        for (_, pattern, _) in routes {
            let path = concrete(pattern, "0191c1c4-8f0e-7a55-b3a4-4f1f0e9d2c11");
            for s in SPELLINGS {
                let spelled = (s.spell)(&path, "v");
                assert_ne!(spelled, path, "{}: {path}", s.name);
                assert!(spelled.starts_with('/'), "{}: {spelled}", s.name);
            }
        }
    }

    #[test]
    fn answers_are_parsed_with_and_without_chunking() {
        let plain = b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}";
        let resp = parse_answer("x".into(), plain);
        assert_eq!(
            (resp.status, resp.content_type.as_deref(), resp.body.as_slice()),
            (400, Some("application/json"), &b"{}"[..])
        );
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_answer("x".into(), chunked).body, b"abcde");
    }
}
