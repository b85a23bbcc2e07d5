//! The one number formatter of every output: LaTeX tables (`table` filters `int`, `fixed`,
//! `pct`), claims (`claims.csv`, `values.tex`, the PASS/MISMATCH comparison) and chart labels.
//! A value therefore prints the same in a table, a `\macro` and a figure.
//!
//! One rounding rule: **half away from zero on the shortest decimal form** of the value. The
//! shortest form is the decimal string that reads back as the same `f64` (Rust's `Display`),
//! so a CSV cell `0.125` rounds to `0.13` and `2.675` to `2.68`: what a reader of the CSV
//! expects and what LaTeX tables printed before this module. `format!("{:.2}")` would round the
//! binary value instead (`0.12`, `2.67`). [`Rounding::Truncate`] (toward zero) exists for
//! numbers a paper truncated rather than rounded. `-0.0`, and negatives that round to zero,
//! print without a sign. The result depends only on the value, never on platform or locale.
//!
//! One thousands grouping: a separator every three digits of the integer part, from the right
//! ([`group_thousands`]); the separator is the caller's (`,` in text, `{,}` in LaTeX tables).
//!
//! ```text
//! NumFormat::new(1).format(64.85)                          -> "64.9"
//! NumFormat::new(0).thousands(",").format(1053.0)          -> "1,053"
//! NumFormat::new(1).percent("\\%").format(64.908)          -> "64.9\%"
//! NumFormat::new(1).rounding(Rounding::Truncate).format(41.26) -> "41.2"
//! ```

/// LaTeX thousands separator: `1{,}053`. The braces keep math mode from adding space after
/// the comma; in text mode it prints `1,053`.
pub const LATEX_THOUSANDS: &str = "{,}";

/// How digits past the last shown decimal are dropped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum Rounding {
    /// Half away from zero on the shortest decimal form: `0.125` -> `0.13`, `-0.25` -> `-0.3`.
    #[default]
    HalfAwayFromZero,
    /// Toward zero: `41.26` -> `41.2`, `-1.99` -> `-1.9`.
    Truncate,
}

/// How to print one number: decimals, rounding, thousands separator, percent suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumFormat {
    pub decimals: usize,
    pub rounding: Rounding,
    /// Inserted every three digits of the integer part; `None` for no grouping.
    pub thousands: Option<&'static str>,
    /// Appended after the digits (`%`, or `\%` in LaTeX); `None` for a plain number.
    pub percent: Option<&'static str>,
}

impl NumFormat {
    /// `decimals` decimals, half away from zero, no grouping, no suffix.
    pub const fn new(decimals: usize) -> NumFormat {
        NumFormat {
            decimals,
            rounding: Rounding::HalfAwayFromZero,
            thousands: None,
            percent: None,
        }
    }

    pub const fn rounding(self, rounding: Rounding) -> NumFormat {
        NumFormat { rounding, ..self }
    }

    pub const fn thousands(self, sep: &'static str) -> NumFormat {
        NumFormat {
            thousands: Some(sep),
            ..self
        }
    }

    /// Groups thousands with `sep` when `on`, else not at all.
    pub const fn thousands_if(self, on: bool, sep: &'static str) -> NumFormat {
        NumFormat {
            thousands: if on { Some(sep) } else { None },
            ..self
        }
    }

    pub const fn percent(self, suffix: &'static str) -> NumFormat {
        NumFormat {
            percent: Some(suffix),
            ..self
        }
    }

    /// Formats a finite `x` (a non-finite one prints as Rust prints it: `NaN`, `inf`).
    pub fn format(&self, x: f64) -> String {
        let mut s = if x.is_finite() {
            let (negative, int, frac) = round_decimal(x, self.decimals, self.rounding);
            let mut s = String::with_capacity(int.len() * 2 + frac.len() + 4);
            if negative {
                s.push('-');
            }
            s.push_str(&group_thousands(&int, self.thousands.unwrap_or("")));
            if !frac.is_empty() {
                s.push('.');
                s.push_str(&frac);
            }
            s
        } else {
            x.to_string()
        };
        if let Some(p) = self.percent {
            s.push_str(p);
        }
        s
    }
}

/// `x` with exactly `decimals` decimals, half away from zero, no grouping: the plain form used
/// for chart labels and CSV cells.
pub fn fixed(x: f64, decimals: usize) -> String {
    NumFormat::new(decimals).format(x)
}

/// An integer, grouped with `sep` (`""` for none).
pub fn format_int(i: i128, sep: &str) -> String {
    let digits = i.unsigned_abs().to_string();
    let sign = if i < 0 { "-" } else { "" };
    format!("{sign}{}", group_thousands(&digits, sep))
}

/// Inserts `sep` every three digits from the right of a string of ASCII digits (`""` or a
/// string of three digits or fewer comes back unchanged).
pub fn group_thousands(int_digits: &str, sep: &str) -> String {
    if sep.is_empty() || int_digits.len() <= 3 {
        return int_digits.to_string();
    }
    let n = int_digits.len();
    let mut out = String::with_capacity(n + (n / 3) * sep.len());
    for (i, c) in int_digits.chars().enumerate() {
        if i > 0 && (n - i).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(c);
    }
    out
}

/// Rounds finite `x` to `decimals` decimals on its shortest decimal form. Returns the sign
/// (false when every shown digit is zero), the integer digits (at least `0`) and exactly
/// `decimals` fraction digits.
fn round_decimal(x: f64, decimals: usize, rounding: Rounding) -> (bool, String, String) {
    // Rust's `Display` for f64 is the shortest string that reads back as the same value, and
    // never uses an exponent (`1e15` -> `1000000000000000`, `1e-7` -> `0.0000001`).
    let s = x.abs().to_string();
    let (int_part, frac_part) = s.split_once('.').unwrap_or((s.as_str(), ""));
    let mut ds: Vec<u8> = int_part.bytes().map(|b| b - b'0').collect();
    let frac: Vec<u8> = frac_part.bytes().map(|b| b - b'0').collect();
    ds.extend((0..decimals).map(|i| frac.get(i).copied().unwrap_or(0)));
    let round_up = match rounding {
        Rounding::HalfAwayFromZero => frac.get(decimals).is_some_and(|&d| d >= 5),
        Rounding::Truncate => false,
    };
    if round_up {
        let mut i = ds.len();
        loop {
            if i == 0 {
                ds.insert(0, 1);
                break;
            }
            i -= 1;
            if ds[i] == 9 {
                ds[i] = 0;
            } else {
                ds[i] += 1;
                break;
            }
        }
    }
    let negative = x.is_sign_negative() && ds.iter().any(|&d| d != 0);
    let text: String = ds.iter().map(|d| char::from(b'0' + d)).collect();
    let (ip, fp) = text.split_at(text.len() - decimals);
    let ip = ip.trim_start_matches('0');
    let ip = if ip.is_empty() { "0" } else { ip };
    (negative, ip.to_string(), fp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_half_away_from_zero_on_the_shortest_decimal_form() {
        // Ties in decimal that are not ties in binary: `{:.2}` gives 0.12 and 2.67.
        assert_eq!(format!("{:.2}", 0.125), "0.12");
        assert_eq!(fixed(0.125, 2), "0.13");
        assert_eq!(format!("{:.2}", 2.675), "2.67");
        assert_eq!(fixed(2.675, 2), "2.68");
        assert_eq!(fixed(0.25, 1), "0.3");
        assert_eq!(fixed(64.85, 1), "64.9");
        assert_eq!(fixed(9.96, 1), "10.0");
        assert_eq!(fixed(99.5, 0), "100");
        assert_eq!(fixed(999.95, 1), "1000.0");
        assert_eq!(fixed(3.0, 2), "3.00");
        assert_eq!(fixed(0.0001, 2), "0.00");
        assert_eq!(fixed(64.90850376749193, 1), "64.9");
        assert_eq!(fixed(0.5, 0), "1");
        assert_eq!(fixed(0.4999999999999999, 0), "0");
    }

    #[test]
    fn negatives_and_negative_zero() {
        assert_eq!(fixed(-0.25, 1), "-0.3");
        assert_eq!(fixed(-2.675, 2), "-2.68");
        assert_eq!(fixed(-0.5, 0), "-1");
        assert_eq!(fixed(-0.04, 1), "0.0");
        assert_eq!(fixed(-0.0, 0), "0");
        assert_eq!(fixed(-0.0, 2), "0.00");
        assert_eq!(fixed(-1053.0, 0), "-1053");
        assert_eq!(
            NumFormat::new(0).thousands(",").format(-1_234_567.0),
            "-1,234,567"
        );
        let t = NumFormat::new(1).rounding(Rounding::Truncate);
        assert_eq!(t.format(-1.99), "-1.9");
        assert_eq!(t.format(-0.09), "0.0");
    }

    #[test]
    fn large_and_small_magnitudes_print_without_exponent() {
        assert_eq!(fixed(1e15, 0), "1000000000000000");
        assert_eq!(fixed(1e15, 2), "1000000000000000.00");
        assert_eq!(
            NumFormat::new(0).thousands(",").format(1e15),
            "1,000,000,000,000,000"
        );
        assert_eq!(fixed(1e15 + 0.5, 0), "1000000000000001");
        assert_eq!(fixed(1e-7, 7), "0.0000001");
        assert_eq!(fixed(1e-7, 6), "0.000000");
        assert_eq!(fixed(5e-7, 6), "0.000001");
        assert_eq!(fixed(1e21, 0), "1000000000000000000000");
    }

    #[test]
    fn truncation_drops_digits_toward_zero() {
        let t = NumFormat::new(1).rounding(Rounding::Truncate);
        assert_eq!(t.format(41.26), "41.2");
        assert_eq!(t.format(41.29999), "41.2");
        assert_eq!(t.format(41.0), "41.0");
        assert_eq!(
            NumFormat::new(0).rounding(Rounding::Truncate).format(9.99),
            "9"
        );
        // 0.1 + 0.2 is 0.30000000000000004: the shortest form keeps the digits that matter.
        assert_eq!(t.format(0.1 + 0.2), "0.3");
    }

    #[test]
    fn groups_thousands_once_for_every_separator() {
        for (digits, plain, latex) in [
            ("", "", ""),
            ("0", "0", "0"),
            ("929", "929", "929"),
            ("1053", "1,053", "1{,}053"),
            ("123456", "123,456", "123{,}456"),
            ("1234567", "1,234,567", "1{,}234{,}567"),
        ] {
            assert_eq!(group_thousands(digits, ","), plain);
            assert_eq!(group_thousands(digits, LATEX_THOUSANDS), latex);
            assert_eq!(group_thousands(digits, ""), digits);
        }
        assert_eq!(format_int(-1053, LATEX_THOUSANDS), "-1{,}053");
        assert_eq!(format_int(1053, ""), "1053");
        assert_eq!(format_int(i128::MIN, ""), i128::MIN.to_string());
    }

    #[test]
    fn percent_suffix_and_grouping_combine() {
        let f = NumFormat::new(1).percent("%");
        assert_eq!(f.format(64.908), "64.9%");
        assert_eq!(NumFormat::new(0).percent("\\%").format(64.5), "65\\%");
        assert_eq!(
            NumFormat::new(2)
                .thousands_if(true, LATEX_THOUSANDS)
                .percent("\\%")
                .format(1234.5),
            "1{,}234.50\\%"
        );
        assert_eq!(
            NumFormat::new(1).thousands_if(false, ",").format(1234.5),
            "1234.5"
        );
        assert_eq!(f.format(f64::NAN), "NaN%");
    }

    /// The same value prints the same in a LaTeX table (`fixed`, `pct` filters), a claim
    /// (`claims.csv`, `values.tex`) and a figure (the plot kind's value labels, ticks and
    /// heatmap cells), apart from each output's separator and percent sign.
    #[test]
    fn tables_claims_and_chart_labels_agree() {
        use crate::stages::claims::{Printed, format_like};
        use crate::stages::plot::chart_label;
        let mut tera = crate::stages::table::new_tera();
        tera.add_raw_template(
            "f",
            "{{ x | fixed(digits=d) }}|{{ x | fixed(digits=d, sep=true) }}|{{ x | pct(digits=d) }}",
        )
        .expect("template");
        for x in [
            0.125,
            2.675,
            64.85,
            64.908,
            -0.25,
            -2.675,
            -0.0,
            -0.04,
            0.5,
            9.96,
            999.95,
            929.0,
            1053.0,
            12345.678,
            1e15,
            0.1 + 0.2,
            33.333333,
        ] {
            for d in 0..4 {
                let mut ctx = tera::Context::new();
                ctx.insert("x", &x);
                ctx.insert("d", &d);
                let out = tera.render("f", &ctx).expect("render");
                let table: Vec<&str> = out.split('|').collect();
                let like = |percent, thousands| Printed {
                    value: 0.0,
                    decimals: d,
                    percent,
                    thousands,
                };
                let label = fixed(x, d);
                assert_eq!(table[0], label, "table vs chart label, {x} to {d}");
                // What a figure prints: value labels, ticks and heatmap cells.
                let (chart, chart_pct) = (chart_label(x, d, false), chart_label(x, d, true));
                assert_eq!(chart, label, "figure vs table, {x} to {d}");
                assert_eq!(
                    chart_pct,
                    format_like(x, &like(true, false), false),
                    "figure vs claim percent, {x} to {d}"
                );
                assert_eq!(
                    format_like(x, &like(false, false), false),
                    label,
                    "claim vs label, {x}"
                );
                assert_eq!(
                    table[1].replace(LATEX_THOUSANDS, ","),
                    format_like(x, &like(false, true), false),
                    "grouped, {x} to {d}"
                );
                assert_eq!(
                    table[2],
                    format_like(x, &like(true, false), true),
                    "percent, {x}"
                );
            }
        }
    }

    proptest::proptest! {
        /// Against exact decimal arithmetic on the shortest form: the rounded value differs
        /// from the shortest form by at most half a unit of the last shown digit, and never by
        /// more than one unit when truncating; the sign is kept unless the result is zero.
        #[test]
        fn matches_decimal_arithmetic(m in -10_000_000i64..10_000_000, scale in 0u32..6, d in 0usize..5) {
            let x = m as f64 / 10f64.powi(scale as i32);
            let r = fixed(x, d);
            let back: f64 = r.parse().unwrap();
            let unit = 10f64.powi(-(d as i32));
            proptest::prop_assert!((back - x).abs() <= unit / 2.0 + 1e-9, "{x} -> {r}");
            let t = NumFormat::new(d).rounding(Rounding::Truncate).format(x);
            let tb: f64 = t.parse().unwrap();
            proptest::prop_assert!(tb.abs() <= x.abs() + 1e-9 && (x - tb).abs() < unit + 1e-9, "{x} -> {t}");
            proptest::prop_assert_eq!(r.split_once('.').map_or(0, |(_, f)| f.len()), d);
            proptest::prop_assert!(!r.starts_with("-0") || r.bytes().any(|b| (b'1'..=b'9').contains(&b)), "{x} -> {r}");
        }
    }
}
