//! The report as a list of blocks, rendered once to Markdown and once to HTML, so the two
//! files can never disagree on a figure.

use std::fmt::Write as _;

/// One piece of the report.
#[derive(Debug, Clone)]
pub enum Block {
    /// A heading of level 1..=3.
    Heading(u8, String),
    /// A paragraph of plain text.
    Para(String),
    /// A bulleted list of plain-text items.
    List(Vec<String>),
    /// A command or other literal text, shown as is.
    Code(String),
    /// A table: header cells and rows of cells, plain text.
    Table {
        /// Header cells.
        head: Vec<String>,
        /// Rows of cells, each as long as `head`.
        rows: Vec<Vec<String>>,
    },
    /// A plot: the file it is written to, a caption, and the SVG itself.
    Plot {
        /// File name beside the report (`latency.svg`).
        file: String,
        /// The caption.
        title: String,
        /// The SVG document.
        svg: String,
    },
}

/// A table from string-like headers and rows; without rows, the words "not measured".
pub fn table(head: &[&str], rows: Vec<Vec<String>>) -> Block {
    if rows.is_empty() {
        return Block::Para("not measured".to_string());
    }
    Block::Table { head: head.iter().map(|h| h.to_string()).collect(), rows }
}

fn md_cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The blocks as GitHub-flavoured Markdown; plots become image links to their files.
pub fn markdown(blocks: &[Block]) -> String {
    let mut out = String::new();
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let _ = writeln!(out, "{} {text}\n", "#".repeat(usize::from((*level).clamp(1, 6))));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "{text}\n");
            }
            Block::List(items) => {
                for item in items {
                    let _ = writeln!(out, "- {item}");
                }
                out.push('\n');
            }
            Block::Code(text) => {
                let _ = writeln!(out, "```\n{text}\n```\n");
            }
            Block::Table { head, rows } => {
                let _ = writeln!(out, "| {} |", head.iter().map(|h| md_cell(h)).collect::<Vec<_>>().join(" | "));
                let _ = writeln!(out, "|{}", "---|".repeat(head.len().max(1)));
                for row in rows {
                    let _ = writeln!(out, "| {} |", row.iter().map(|c| md_cell(c)).collect::<Vec<_>>().join(" | "));
                }
                out.push('\n');
            }
            Block::Plot { file, title, .. } => {
                let _ = writeln!(out, "![{title}]({file})\n");
            }
        }
    }
    out
}

/// `s` with the five HTML-special characters escaped (the trace pages' escaping).
pub use archlab_traces::escape;

/// An SVG as it can sit inside HTML: without the XML namespace attribute, which HTML does
/// not need and which would be the page's only external-looking URL.
pub fn inline_svg(svg: &str) -> String {
    svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1)
}

const CSS: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;\
padding:0 1em;color:#222;line-height:1.4}\
table{border-collapse:collapse;margin:0.5em 0 1.5em;font-size:0.9em;display:block;max-width:100%;overflow-x:auto}\
th,td{border:1px solid #ccc;padding:0.25em 0.6em;text-align:right;vertical-align:top;overflow-wrap:anywhere}\
th{background:#f3f3f3}td:first-child{white-space:nowrap}td:first-child,th:first-child{text-align:left}\
tr:nth-child(even) td{background:#fafafa}\
pre{background:#f3f3f3;padding:0.6em;overflow-x:auto;white-space:pre-wrap}\
figure{margin:1em 0}figcaption{font-size:0.9em;color:#555}\
figure svg{max-width:100%;height:auto}h1,h2,h3{margin-top:1.4em}";

/// The blocks as one self-contained HTML page: CSS and SVG inline, nothing fetched.
pub fn html(title: &str, blocks: &[Block]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(title)
    );
    for block in blocks {
        match block {
            Block::Heading(level, text) => {
                let l = (*level).clamp(1, 6);
                let _ = writeln!(out, "<h{l}>{}</h{l}>", escape(text));
            }
            Block::Para(text) => {
                let _ = writeln!(out, "<p>{}</p>", escape(text));
            }
            Block::List(items) => {
                out.push_str("<ul>\n");
                for item in items {
                    let _ = writeln!(out, "<li>{}</li>", escape(item));
                }
                out.push_str("</ul>\n");
            }
            Block::Code(text) => {
                let _ = writeln!(out, "<pre><code>{}</code></pre>", escape(text));
            }
            Block::Table { head, rows } => {
                out.push_str("<table>\n<thead><tr>");
                for h in head {
                    let _ = write!(out, "<th>{}</th>", escape(h));
                }
                out.push_str("</tr></thead>\n<tbody>\n");
                for row in rows {
                    out.push_str("<tr>");
                    for c in row {
                        let _ = write!(out, "<td>{}</td>", escape(c));
                    }
                    out.push_str("</tr>\n");
                }
                out.push_str("</tbody>\n</table>\n");
            }
            Block::Plot { title, svg, .. } => {
                let _ = writeln!(
                    out,
                    "<figure>\n{}\n<figcaption>{}</figcaption>\n</figure>",
                    inline_svg(svg),
                    escape(title)
                );
            }
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}
