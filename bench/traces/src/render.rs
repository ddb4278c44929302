//! Waterfalls as self-contained SVG and HTML: no scripts, fonts or styles from elsewhere, so
//! a file opens anywhere and the local page works offline.
//!
//! Bars are coloured by service (the same service has the same colour in both builds' panels);
//! the time between processes is drawn in orange over each client span; error spans are
//! outlined in red and marked ✗. Hovering a bar shows its details.

use crate::waterfall::{Waterfall, millis};
use std::collections::HashMap;
use std::fmt::Write as _;

const ROW: f64 = 20.0;
const HEAD: f64 = 56.0;
const PALETTE: [&str; 10] =
    ["#4e79a7", "#59a14f", "#9c755f", "#b07aa1", "#76b7b2", "#edc948", "#bab0ac", "#499894", "#8cd17d", "#a0cbe8"];
const BETWEEN: &str = "#f28e2b";
const ERROR: &str = "#e15759";

/// Escape text for XML and HTML.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A colour per service across all panels, so a service looks the same in both builds' panels
/// and no two services share one (up to the palette's size); pink and red stay for errors.
fn colours<'a>(panels: &[(&str, &'a Waterfall)]) -> HashMap<&'a str, &'static str> {
    let services: std::collections::BTreeSet<&str> = panels.iter().flat_map(|(_, w)| w.services()).collect();
    services.into_iter().enumerate().map(|(i, service)| (service, PALETTE[i % PALETTE.len()])).collect()
}

/// A round tick step giving about five ticks over `span` nanoseconds.
fn tick_step(span: u64) -> u64 {
    let raw = (span / 5).max(1);
    let magnitude = 10_u64.pow(raw.ilog10());
    [1, 2, 5, 10].iter().map(|m| m * magnitude).find(|step| *step >= raw).unwrap_or(10 * magnitude)
}

/// One panel (a waterfall) drawn at `x`, `width` wide, with `scale` nanoseconds across its bars.
fn panel(
    out: &mut String,
    label: &str,
    waterfall: &Waterfall,
    (x, width): (f64, f64),
    scale: u64,
    colours: &HashMap<&str, &str>,
) {
    let label_width = (width * 0.42).min(460.0);
    let bars_x = x + label_width;
    let bars_width = width - label_width - 70.0;
    let scale = scale.max(waterfall.duration_nanos()).max(1);
    let px = |nanos: u64| nanos as f64 / scale as f64 * bars_width;
    let root = waterfall.root().map(|r| r.name.as_str()).unwrap_or("?");
    let _ = write!(
        out,
        r#"<text x="{x}" y="16" class="title">{}</text><text x="{x}" y="32" class="sub">{} · {} spans · {} services · {} · between processes {}{}</text>"#,
        escape(label),
        escape(root),
        waterfall.rows.len(),
        waterfall.services().len(),
        millis(waterfall.duration_nanos()),
        millis(waterfall.between_processes_nanos()),
        if waterfall.has_error() { " · ERROR" } else { "" }
    );
    let bottom = HEAD + ROW * waterfall.rows.len() as f64;
    let step = tick_step(scale);
    let mut tick = 0;
    while tick <= scale {
        let tx = bars_x + px(tick);
        let _ = write!(
            out,
            r#"<line x1="{tx:.1}" y1="{}" x2="{tx:.1}" y2="{bottom}" class="grid"/><text x="{tx:.1}" y="{}" class="tick">{}</text>"#,
            HEAD - 4.0,
            HEAD - 8.0,
            millis(tick)
        );
        tick += step;
    }
    let gaps: HashMap<&str, &[(u64, u64)]> =
        waterfall.hops.iter().map(|h| (h.client_span_id.as_str(), h.intervals.as_slice())).collect();
    for (i, row) in waterfall.rows.iter().enumerate() {
        let span = &row.span;
        let y = HEAD + ROW * i as f64;
        if i % 2 == 0 {
            let _ = write!(out, r#"<rect x="{x}" y="{y}" width="{width}" height="{ROW}" class="stripe"/>"#);
        }
        let indent = x + 4.0 + 12.0 * row.depth as f64;
        let mark = if span.status_error {
            "✗ "
        } else if row.orphan {
            "? "
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<text x="{indent}" y="{:.1}" class="name{}">{}{}<tspan class="svc"> {}</tspan></text>"#,
            y + 14.0,
            if span.status_error { " err" } else { "" },
            mark,
            escape(&span.name),
            escape(&span.service_name)
        );
        let bx = bars_x + px(row.offset_nanos);
        let bw = px(span.duration_nanos()).max(1.0);
        let stroke = if span.status_error { format!(r#" stroke="{ERROR}" stroke-width="2""#) } else { String::new() };
        let mut tooltip = format!(
            "{} ({}, {})\nstart +{}  duration {}",
            span.name,
            span.service_name,
            span.kind,
            millis(row.offset_nanos),
            millis(span.duration_nanos())
        );
        if span.status_error {
            let _ = write!(tooltip, "\nERROR: {}", span.status_message);
        }
        for (key, value) in &span.attributes {
            let _ = write!(tooltip, "\n{key} = {value}");
        }
        let _ = write!(
            out,
            r#"<rect x="{bx:.1}" y="{:.1}" width="{bw:.1}" height="{:.1}" rx="2" fill="{}"{stroke}><title>{}</title></rect>"#,
            y + 3.0,
            ROW - 6.0,
            colours.get(span.service_name.as_str()).copied().unwrap_or(PALETTE[0]),
            escape(&tooltip)
        );
        for (from, to) in gaps.get(span.span_id.as_str()).copied().unwrap_or_default() {
            let gx = bars_x + px(from.saturating_sub(waterfall.start_unix_nanos));
            let gw = px(to.saturating_sub(*from)).max(1.0);
            let _ = write!(
                out,
                r#"<rect x="{gx:.1}" y="{:.1}" width="{gw:.1}" height="{:.1}" fill="{BETWEEN}"><title>between processes {}</title></rect>"#,
                y + 7.0,
                ROW - 14.0,
                millis(to.saturating_sub(*from))
            );
        }
        let _ = write!(
            out,
            r#"<text x="{:.1}" y="{:.1}" class="dur">{}</text>"#,
            bx + bw + 4.0,
            y + 14.0,
            millis(span.duration_nanos())
        );
    }
}

/// The SVG of one or more waterfalls side by side, all on one time axis.
pub fn svg(panels: &[(&str, &Waterfall)]) -> String {
    let panel_width = if panels.len() > 1 { 760.0 } else { 1360.0 };
    let width = panel_width * panels.len() as f64;
    let rows = panels.iter().map(|(_, w)| w.rows.len()).max().unwrap_or(0);
    let height = HEAD + ROW * rows as f64 + 30.0;
    let scale = panels.iter().map(|(_, w)| w.duration_nanos()).max().unwrap_or(1);
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">"#
    );
    out.push_str(concat!(
        "<style>.title{font-weight:bold;font-size:14px}.sub{fill:#555}.tick{fill:#777;font-size:10px}",
        ".grid{stroke:#ddd}.stripe{fill:#f6f6f6}.svc{fill:#888;font-size:10px}.err{fill:#c00}",
        ".dur{fill:#333;font-size:10px}.legend{font-size:11px;fill:#333}</style>"
    ));
    out.push_str(r##"<rect width="100%" height="100%" fill="#fff"/>"##);
    let colours = colours(panels);
    for (i, (label, waterfall)) in panels.iter().enumerate() {
        panel(&mut out, label, waterfall, (8.0 + panel_width * i as f64, panel_width - 16.0), scale, &colours);
    }
    let legend_y = height - 10.0;
    let _ = write!(
        out,
        r##"<rect x="8" y="{}" width="14" height="8" fill="{BETWEEN}"/><text x="26" y="{legend_y}" class="legend">between processes (client span minus its server span: network, (de)serialization, queueing)</text><rect x="620" y="{}" width="14" height="8" fill="#fff" stroke="{ERROR}" stroke-width="2"/><text x="640" y="{legend_y}" class="legend">error status</text>""##,
        legend_y - 8.0,
        legend_y - 8.0
    );
    out.push_str("</svg>");
    out
}

/// A self-contained HTML page around [`svg`], with a table of every span below.
pub fn html(title: &str, panels: &[(&str, &Waterfall)], back: Option<&str>) -> String {
    let mut out = format!(
        r#"<!doctype html><html><head><meta charset="utf-8"><title>{}</title><style>body{{font-family:sans-serif;margin:16px;color:#222}}table{{border-collapse:collapse;font-size:12px;margin-top:16px}}td,th{{border-bottom:1px solid #eee;padding:2px 8px;text-align:left;vertical-align:top}}td.num{{text-align:right}}.err{{color:#c00;font-weight:bold}}a{{color:#2a5db0}}</style></head><body>"#,
        escape(title)
    );
    if let Some(back) = back {
        let _ = write!(out, r#"<p><a href="{}">← all traces</a></p>"#, escape(back));
    }
    let _ = write!(out, "<h1>{}</h1>", escape(title));
    out.push_str(&svg(panels));
    for (label, waterfall) in panels {
        let _ = write!(
            out,
            "<h2>{} <small>{}</small></h2><table><tr><th>span</th><th>service</th><th>kind</th><th>start</th><th>duration</th><th>status</th><th>attributes</th></tr>",
            escape(label),
            escape(&waterfall.trace_id)
        );
        for row in &waterfall.rows {
            let span = &row.span;
            let attributes: Vec<String> =
                span.attributes.iter().map(|(k, v)| format!("{}={}", escape(k), escape(v))).collect();
            let _ = write!(
                out,
                r#"<tr><td style="padding-left:{}px">{}</td><td>{}</td><td>{}</td><td class="num">+{}</td><td class="num">{}</td><td{}>{}</td><td>{}</td></tr>"#,
                8 + 14 * row.depth,
                escape(&span.name),
                escape(&span.service_name),
                escape(&span.kind),
                millis(row.offset_nanos),
                millis(span.duration_nanos()),
                if span.status_error { r#" class="err""# } else { "" },
                if span.status_error { format!("✗ {}", escape(&span.status_message)) } else { "ok".to_owned() },
                attributes.join("<br>")
            );
        }
        out.push_str("</table>");
    }
    out.push_str("</body></html>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::waterfall::tests::micro_trace;

    #[test]
    fn the_page_is_self_contained_escaped_and_marks_errors_and_between_time() {
        let mut spans = micro_trace();
        spans[2].status_error = true;
        spans[2].name = "<script>alert(1)</script>".to_owned();
        let waterfall = Waterfall::build(&spans).expect("a waterfall");
        let page = html("trace", &[("micro", &waterfall)], Some("/"));
        assert!(!page.contains("<script>"), "span names are escaped");
        assert!(page.contains("&lt;script&gt;"));
        for external in ["src=", "http://", "https://", "@import", "url("] {
            // The SVG namespace is the one URL allowed: it is an identifier, never fetched.
            let count = page.matches(external).count();
            let allowed = if external == "http://" { 1 } else { 0 };
            assert_eq!(count, allowed, "no external resource ({external})");
        }
        assert!(page.contains(&format!(r#"stroke="{ERROR}""#)), "the error span is outlined");
        assert_eq!(page.matches(&format!(r#"fill="{BETWEEN}"><title>"#)).count(), 4, "two hops, two gaps each");
        assert_eq!(page.matches("<tr>").count(), 1 + spans.len());
    }

    #[test]
    fn each_service_has_its_own_colour_shared_across_panels() {
        let micro = Waterfall::build(&micro_trace()).expect("a waterfall");
        let mut spans = micro_trace();
        spans.iter_mut().for_each(|s| s.service_name = "monolith".to_owned());
        let mono = Waterfall::build(&spans).expect("a waterfall");
        let map = colours(&[("m", &mono), ("u", &micro)]);
        assert_eq!(map.len(), 4);
        let distinct: std::collections::HashSet<&str> = map.values().copied().collect();
        assert_eq!(distinct.len(), 4, "{map:?}");
    }

    #[test]
    fn ticks_are_round() {
        assert_eq!(tick_step(100), 20);
        assert_eq!(tick_step(12_300_000), 5_000_000);
        assert_eq!(tick_step(3), 1);
    }
}
