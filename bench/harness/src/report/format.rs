//! Number formatting shared by the tables and plots: one spelling of "not measured", and no
//! NaN or infinity ever reaches the output.

/// What a missing figure renders as.
pub const MISSING: &str = "—";

/// `x` when it is a finite number, else `None`.
pub fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// `num / den`, or `None` when either is not finite or `den` is not positive.
pub fn ratio(num: f64, den: f64) -> Option<f64> {
    if num.is_finite() && den.is_finite() && den > 0.0 { finite(num / den) } else { None }
}

/// A number with `decimals` places, or [`MISSING`] when it is not finite.
pub fn num(x: f64, decimals: usize) -> String {
    match finite(x) {
        Some(x) => format!("{x:.decimals$}"),
        None => MISSING.to_string(),
    }
}

/// An optional number, [`MISSING`] when absent.
pub fn opt_num(x: Option<f64>, decimals: usize) -> String {
    x.map_or_else(|| MISSING.to_string(), |x| num(x, decimals))
}

/// A ratio as `0.50×`, [`MISSING`] when absent.
pub fn times(x: Option<f64>) -> String {
    match x.and_then(finite) {
        Some(x) => format!("{x:.2}×"),
        None => MISSING.to_string(),
    }
}

/// Milliseconds with as many decimals as the magnitude deserves.
pub fn ms_f(ms: f64) -> String {
    match finite(ms) {
        None => MISSING.to_string(),
        Some(0.0) => "0".to_string(),
        Some(v) if v.abs() < 1.0 => format!("{v:.3}"),
        Some(v) if v.abs() < 10.0 => format!("{v:.2}"),
        Some(v) if v.abs() < 100.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.0}"),
    }
}

/// Microseconds as milliseconds (see [`ms_f`]).
pub fn ms(us: u64) -> String {
    ms_f(us as f64 / 1000.0)
}

/// A rate per second: no decimals from 100 up.
pub fn rate(x: f64) -> String {
    match finite(x) {
        None => MISSING.to_string(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) => format!("{v:.1}"),
    }
}

/// A share 0..=1 as a percentage.
pub fn pct(x: f64) -> String {
    match finite(x) {
        None => MISSING.to_string(),
        Some(0.0) => "0 %".to_string(),
        Some(v) if v < 0.001 => format!("{:.3} %", v * 100.0),
        Some(v) => format!("{:.2} %", v * 100.0),
    }
}

/// Bytes as MB (10^6), [`MISSING`] for zero (a size nobody measured).
pub fn mb(bytes: u64) -> String {
    if bytes == 0 { MISSING.to_string() } else { format!("{:.1} MB", bytes as f64 / 1e6) }
}

/// A duration in nanoseconds in the unit that fits (ns, µs, ms).
pub fn ns(x: f64) -> String {
    match finite(x) {
        None => MISSING.to_string(),
        Some(v) if v.abs() < 1_000.0 => format!("{v:.1} ns"),
        Some(v) if v.abs() < 1_000_000.0 => format!("{:.2} µs", v / 1e3),
        Some(v) => format!("{:.2} ms", v / 1e6),
    }
}

/// A met/missed mark.
pub fn tick(ok: bool) -> &'static str {
    if ok { "✓" } else { "✗" }
}
