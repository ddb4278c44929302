//! Children's output, one prefixed line at a time: `extsim   | listening on ...`.
//!
//! Both of a child's streams go to the harness's stdout, as `docker compose up` does, so one
//! terminal (or one pipe) shows the whole topology in order.

use std::io::{IsTerminal, Write};
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};

/// ANSI foreground colours, cycled through by process index.
const COLORS: &[&str] = &["36", "33", "32", "35", "34", "91", "96"];

/// Whether prefixes get colour: only on a terminal, and never under `NO_COLOR`.
pub fn use_color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// The prefix of the `index`th process's lines: its name padded to `width`, then `| `.
pub fn prefix(name: &str, index: usize, width: usize, color: bool) -> String {
    if color {
        let code = COLORS[index % COLORS.len()];
        format!("\x1b[{code}m{name:<width$} |\x1b[0m ")
    } else {
        format!("{name:<width$} | ")
    }
}

/// Copy `reader` to stdout line by line, each line behind `prefix`, until end of file.
///
/// Lines are written whole under the stdout lock, so children never interleave mid-line;
/// bytes that are not UTF-8 are shown lossily rather than dropped.
pub async fn forward(reader: impl AsyncRead + Unpin, prefix: String) {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        match reader.read_until(b'\n', &mut line).await {
            Ok(0) => return,
            Ok(_) => {
                let text = String::from_utf8_lossy(&line);
                let text = text.trim_end_matches(['\n', '\r']);
                let mut out = std::io::stdout().lock();
                // A closed stdout (e.g. `| head`) must not take the supervisor down with it.
                let _ = writeln!(out, "{prefix}{text}").and_then(|()| out.flush());
            }
            Err(error) => {
                tracing::warn!(%error, prefix = prefix.trim_end(), "cannot read child output");
                return;
            }
        }
    }
}

/// One line of the harness's own among the children's, `archlab | <text>`: what happened to
/// a child (started, exited, restarted, with its pid). Like [`forward`], it ignores a closed
/// stdout rather than panic.
pub fn announce(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "archlab | {text}").and_then(|()| out.flush());
}
