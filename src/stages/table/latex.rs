//! LaTeX escaping and the number filters of the `table` kind (`int`, `fixed`, `pct`, `num`,
//! `sum`), plus key-sorted replacements for tera's `keys`, `values` and `pairs`.
//!
//! Numbers go through [`crate::stages::numfmt`], the formatter claims and charts use too: rounded
//! *half away from zero on their shortest decimal form* (a CSV cell `0.25` with
//! `fixed(digits=1)` gives `0.3`, and `64.85` gives `64.9`), grouped with the LaTeX thousands
//! separator `{,}` ([`numfmt::LATEX_THOUSANDS`]) where asked.

use std::io::{self, Write};

use tera::{ArgFromValue, Error, Kwargs, Number, State, TeraResult, Value};

use crate::stages::numfmt::{self, LATEX_THOUSANDS, NumFormat};

/// The escape function tera applies to every printed value that is not marked safe.
///
/// `& % $ # _ { }` get a backslash; `\` -> `\textbackslash{}`, `~` -> `\textasciitilde{}`,
/// `^` -> `\textasciicircum{}`, `<` -> `\textless{}`, `>` -> `\textgreater{}`,
/// `|` -> `\textbar{}` (in the default OT1 encoding those three print as other glyphs);
/// a `-` followed by another `-` gets `{}` after it so `--flag` is not typeset as an en dash;
/// line breaks (`\r\n`, `\n`, `\r`) become one space, since a blank line inside a tabular is an
/// error; a `[` before any other character than spaces becomes `{[}`, since a cell that starts
/// a row follows `\\`, which would read `[1em]` as its optional space argument (the text
/// vanishes) and `[opt]` as a bad length ("Missing number"); any other control character
/// (which stops pdflatex: "not set up for use with LaTeX", "invalid character") prints as
/// its escape, `\x07`. Everything else, including non-ASCII text, passes through unchanged:
/// letters outside pdflatex's default fonts (Arabic, CJK, emoji) need a document set up for
/// them (`fontspec` with XeLaTeX or LuaLaTeX).
pub fn latex_escape(input: &str, out: &mut dyn Write) -> io::Result<()> {
    let mut buf = String::with_capacity(input.len() + 8);
    let mut chars = input.chars().peekable();
    // Only spaces (or line breaks, printed as spaces) so far.
    let mut leading = true;
    while let Some(c) = chars.next() {
        if leading && !matches!(c, ' ' | '\t' | '\n' | '\r') {
            leading = false;
            if c == '[' {
                buf.push_str("{[}");
                continue;
            }
        }
        match c {
            '&' | '%' | '$' | '#' | '_' | '{' | '}' => {
                buf.push('\\');
                buf.push(c);
            }
            '\\' => buf.push_str("\\textbackslash{}"),
            '~' => buf.push_str("\\textasciitilde{}"),
            '^' => buf.push_str("\\textasciicircum{}"),
            '<' => buf.push_str("\\textless{}"),
            '>' => buf.push_str("\\textgreater{}"),
            '|' => buf.push_str("\\textbar{}"),
            '-' if chars.peek() == Some(&'-') => buf.push_str("-{}"),
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                buf.push(' ');
            }
            '\n' => buf.push(' '),
            c if c.is_control() && c != '\t' => {
                buf.push_str(&format!("\\textbackslash{{}}x{:02X}", u32::from(c)));
            }
            _ => buf.push(c),
        }
    }
    out.write_all(buf.as_bytes())
}

/// [`latex_escape`] into a `String`.
#[cfg(test)]
pub fn escape_str(input: &str) -> String {
    let mut v = Vec::with_capacity(input.len());
    // Writing to a Vec cannot fail.
    let _ = latex_escape(input, &mut v);
    String::from_utf8_lossy(&v).into_owned()
}

/// A number read from a template value: a tera number or a string holding one.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Num {
    Int(i128),
    Float(f64),
}

impl Num {
    pub fn as_f64(self) -> f64 {
        match self {
            Num::Int(i) => i as f64,
            Num::Float(f) => f,
        }
    }

    /// Sum; integers stay integers (overflow is an error), anything else becomes a float.
    pub fn plus(self, other: Num) -> TeraResult<Num> {
        match (self, other) {
            (Num::Int(a), Num::Int(b)) => a
                .checked_add(b)
                .map(Num::Int)
                .ok_or_else(|| Error::message(format!("integer overflow adding {a} and {b}"))),
            (a, b) => Ok(Num::Float(a.as_f64() + b.as_f64())),
        }
    }

    pub fn to_value(self) -> Value {
        match self {
            Num::Int(i) => match i64::try_from(i) {
                Ok(v) => Value::from(v),
                Err(_) => Value::from(i),
            },
            Num::Float(f) => Value::from(f),
        }
    }
}

/// Short display of a value for error messages: strings quoted, others as printed.
pub fn show(v: &Value) -> String {
    match v.as_str() {
        Some(s) => format!("{s:?}"),
        None => format!("{v} (a {})", v.name()),
    }
}

/// Parses a string as a number: an optional sign, digits, an optional fraction and exponent
/// (`12`, `-3`, `64.9`, `1e3`). `inf`, `NaN`, empty strings and thousands separators are
/// rejected.
pub fn parse_num_str(s: &str) -> Option<Num> {
    let t = s.trim();
    if t.is_empty() {
        return None;
    }
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'))
        || !t.bytes().any(|b| b.is_ascii_digit())
    {
        return None;
    }
    if let Ok(i) = t.parse::<i128>() {
        return Some(Num::Int(i));
    }
    match t.parse::<f64>() {
        Ok(f) if f.is_finite() => Some(Num::Float(f)),
        _ => None,
    }
}

/// Reads a number from a template value (number or numeric string); `who` names the filter
/// in the error.
pub fn to_num(v: &Value, who: &str) -> TeraResult<Num> {
    if let Some(n) = v.as_number() {
        return match n {
            Number::Integer(i) => Ok(Num::Int(i)),
            Number::Float(f) if f.is_finite() => Ok(Num::Float(f)),
            _ => Err(Error::message(format!(
                "`{who}`: {} is not a finite number",
                show(v)
            ))),
        };
    }
    if let Some(s) = v.as_str() {
        return parse_num_str(s)
            .ok_or_else(|| Error::message(format!("`{who}`: {} is not a number", show(v))));
    }
    if v.name() == "undefined" {
        return Err(Error::message(format!(
            "`{who}`: its input is not defined: the column or variable before `| {who}` does not exist"
        )));
    }
    Err(Error::message(format!(
        "`{who}`: expected a number or a numeric string, got {}",
        show(v)
    )))
}

/// Rejects keyword arguments a filter does not know (so `digit=2` is an error, not ignored).
fn only_kwargs(who: &str, kw: &Kwargs, allowed: &[&str]) -> TeraResult<()> {
    let mut bad: Vec<String> = kw
        .iter()
        .map(|(k, _)| k.to_string())
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    bad.sort();
    if bad.is_empty() {
        Ok(())
    } else if allowed.is_empty() {
        Err(Error::message(format!(
            "`{who}` takes no arguments (got {})",
            bad.join(", ")
        )))
    } else {
        Err(Error::message(format!(
            "`{who}`: unknown argument(s) {} (expected: {})",
            bad.join(", "),
            allowed.join(", ")
        )))
    }
}

/// Keyword argument `name` of filter `who` as a `T`, with a type error said in the template
/// author's terms, `what` it must be (tera says "expected `i64` but got `string`").
pub fn kwarg<'k, T>(who: &str, kw: &'k Kwargs, name: &'k str, what: &str) -> TeraResult<Option<T>>
where
    T: ArgFromValue<'k, Output = T>,
{
    kw.get::<T>(name).map_err(|_| {
        let v = kw.get::<Value>(name).ok().flatten();
        let v = v.map_or_else(String::new, |v| format!(", not {}", show(&v)));
        Error::message(format!("`{who}`: `{name}` must be {what}{v}"))
    })
}

fn digits_kwarg(who: &str, kw: &Kwargs, default: usize) -> TeraResult<usize> {
    let d = kwarg::<i64>(who, kw, "digits", "a whole number")?;
    let d = d.unwrap_or(default as i64);
    if (0..=12).contains(&d) {
        Ok(d as usize)
    } else {
        Err(Error::message(format!(
            "`{who}`: digits={d} is out of range 0..=12"
        )))
    }
}

/// `int(sep=true)`: a whole number, with `{,}` thousands separators unless `sep=false`.
pub fn int(v: &Value, kw: Kwargs, _: &State) -> TeraResult<Value> {
    only_kwargs("int", &kw, &["sep"])?;
    let sep = kwarg::<bool>("int", &kw, "sep", "true or false")?.unwrap_or(true);
    let i = match to_num(v, "int")? {
        Num::Int(i) => i,
        Num::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => f as i128,
        Num::Float(f) if f.fract() == 0.0 => {
            return Err(Error::message(format!(
                "`int`: {} is too large to print exactly as an integer",
                show(v)
            )));
        }
        Num::Float(_) => {
            return Err(Error::message(format!(
                "`int`: {} is not a whole number (use `fixed` or `pct`)",
                show(v)
            )));
        }
    };
    Ok(Value::safe_string(&numfmt::format_int(
        i,
        if sep { LATEX_THOUSANDS } else { "" },
    )))
}

/// `fixed(digits=2, sep=false)`: exactly `digits` decimals.
pub fn fixed(v: &Value, kw: Kwargs, _: &State) -> TeraResult<Value> {
    only_kwargs("fixed", &kw, &["digits", "sep"])?;
    let digits = digits_kwarg("fixed", &kw, 2)?;
    let sep = kwarg::<bool>("fixed", &kw, "sep", "true or false")?.unwrap_or(false);
    let x = to_num(v, "fixed")?.as_f64();
    Ok(Value::safe_string(
        &NumFormat::new(digits)
            .thousands_if(sep, LATEX_THOUSANDS)
            .format(x),
    ))
}

/// `pct(digits=1, of=none, sep=false)`: a percentage followed by `\%`. Without `of` the value
/// already is a percentage (`64.9` -> `64.9\%`); with `of` it is a part of that whole
/// (`603 | pct(of=929)` -> `64.9\%`).
pub fn pct(v: &Value, kw: Kwargs, _: &State) -> TeraResult<Value> {
    only_kwargs("pct", &kw, &["digits", "of", "sep"])?;
    let digits = digits_kwarg("pct", &kw, 1)?;
    let sep = kwarg::<bool>("pct", &kw, "sep", "true or false")?.unwrap_or(false);
    let x = to_num(v, "pct")?.as_f64();
    let p = match kw.get::<Value>("of")? {
        None => x,
        Some(of) => {
            let whole = to_num(&of, "pct(of=...)")?.as_f64();
            if whole == 0.0 {
                return Err(Error::message(format!(
                    "`pct`: cannot take {} as a percentage of 0",
                    show(v)
                )));
            }
            x * 100.0 / whole
        }
    };
    Ok(Value::safe_string(
        &NumFormat::new(digits)
            .thousands_if(sep, LATEX_THOUSANDS)
            .percent("\\%")
            .format(p),
    ))
}

/// `num`: a numeric string as a number (for arithmetic, comparisons and sorting).
pub fn num(v: &Value, kw: Kwargs, _: &State) -> TeraResult<Value> {
    only_kwargs("num", &kw, &[])?;
    Ok(to_num(v, "num")?.to_value())
}

/// `sum(attribute=none)`: the sum of a list of numbers/numeric strings, or of one column of a
/// list of rows. An empty list sums to 0.
pub fn sum(v: &[Value], kw: Kwargs, _: &State) -> TeraResult<Value> {
    only_kwargs("sum", &kw, &["attribute"])?;
    let attr = kwarg::<&str>("sum", &kw, "attribute", "a column name")?;
    let mut total = Num::Int(0);
    for (i, item) in v.iter().enumerate() {
        let x = match attr {
            None => item,
            Some(a) => item.get_from_path(a).ok_or_else(|| {
                Error::message(format!(
                    "`sum`: item {} has no attribute {a:?}{}",
                    i + 1,
                    item.as_map()
                        .map(|_| String::new())
                        .unwrap_or_else(|| format!(" (it is a {})", item.name()))
                ))
            })?,
        };
        total = total.plus(to_num(x, "sum")?)?;
    }
    Ok(total.to_value())
}

fn sorted_pairs(map: &tera::Map) -> Vec<(&tera::value::Key<'static>, &Value)> {
    let mut v: Vec<_> = map.iter().collect();
    v.sort_by(|a, b| a.0.cmp(b.0));
    v
}

/// `keys`, sorted (tera's own follows hash order, which changes between runs).
pub fn keys(m: &tera::Map, kw: Kwargs, _: &State) -> TeraResult<Vec<Value>> {
    only_kwargs("keys", &kw, &[])?;
    Ok(sorted_pairs(m)
        .into_iter()
        .map(|(k, _)| k.as_value())
        .collect())
}

/// `values`, in key order.
pub fn values(m: &tera::Map, kw: Kwargs, _: &State) -> TeraResult<Vec<Value>> {
    only_kwargs("values", &kw, &[])?;
    Ok(sorted_pairs(m)
        .into_iter()
        .map(|(_, v)| v.clone())
        .collect())
}

/// `pairs`, in key order.
pub fn pairs(m: &tera::Map, kw: Kwargs, _: &State) -> TeraResult<Vec<Value>> {
    only_kwargs("pairs", &kw, &[])?;
    Ok(sorted_pairs(m)
        .into_iter()
        .map(|(k, v)| Value::from(vec![k.as_value(), v.clone()]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_special_character() {
        let cases = [
            ("&", r"\&"),
            ("%", r"\%"),
            ("$", r"\$"),
            ("#", r"\#"),
            ("_", r"\_"),
            ("{", r"\{"),
            ("}", r"\}"),
            ("~", r"\textasciitilde{}"),
            ("^", r"\textasciicircum{}"),
            ("\\", r"\textbackslash{}"),
            ("<", r"\textless{}"),
            (">", r"\textgreater{}"),
            ("|", r"\textbar{}"),
            ("--x", "-{}-x"),
            ("a-b", "a-b"),
            ("a\r\nb\nc\rd", "a b c d"),
            ("plain text, é — ok", "plain text, é — ok"),
            // Found by an adversarial helper: these stopped pdflatex.
            (
                "a\u{7}b\u{7f}c\u{85}\u{0}",
                r"a\textbackslash{}x07b\textbackslash{}x7Fc\textbackslash{}x85\textbackslash{}x00",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(escape_str(input), want, "escaping {input:?}");
        }
        assert_eq!(
            escape_str(r"memory & oom 100% $x #1 a_b {c} ~d ^e \f"),
            r"memory \& oom 100\% \$x \#1 a\_b \{c\} \textasciitilde{}d \textasciicircum{}e \textbackslash{}f"
        );
        // The backslash replacement's own braces are not escaped again.
        assert_eq!(escape_str(r"\{"), r"\textbackslash{}\{");
    }

    /// Undoes [`latex_escape`] (line breaks come back as spaces).
    fn unescape(s: &str) -> String {
        let mut out = String::new();
        let mut rest = s;
        if let Some(r) = rest.trim_start_matches([' ', '\t']).strip_prefix("{[}") {
            let spaces = rest.len() - rest.trim_start_matches([' ', '\t']).len();
            out.push_str(&rest[..spaces]);
            out.push('[');
            rest = r;
        }
        const MAP: [(&str, char); 13] = [
            ("\\textbackslash{}", '\\'),
            ("\\textasciitilde{}", '~'),
            ("\\textasciicircum{}", '^'),
            ("\\textless{}", '<'),
            ("\\textgreater{}", '>'),
            ("\\textbar{}", '|'),
            ("\\&", '&'),
            ("\\%", '%'),
            ("\\$", '$'),
            ("\\#", '#'),
            ("\\_", '_'),
            ("\\{", '{'),
            ("\\}", '}'),
        ];
        'outer: while let Some(c) = rest.chars().next() {
            for (from, to) in MAP {
                if let Some(r) = rest.strip_prefix(from) {
                    out.push(to);
                    rest = r;
                    continue 'outer;
                }
            }
            if let Some(r) = rest.strip_prefix("-{}") {
                out.push('-');
                rest = r;
                continue;
            }
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
        out
    }

    /// Characters LaTeX treats specially, which escaped text may only hold inside the escapes.
    const SPECIAL: &str = "&%$#_{}~^\\<>|\n\r";

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        // Mostly the characters that matter, some ASCII, some non-ASCII.
        prop::collection::vec(
            prop_oneof![
                4 => prop::sample::select(
                    "[]&%$#_{}~^\\<>|-\r\n \t".chars().collect::<Vec<_>>()
                ),
                4 => prop::char::range(' ', '~'),
                1 => any::<char>(),
            ],
            0..40,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(4096))]

        /// 4096 random strings: escaping is reversible (line breaks become spaces), leaves no
        /// special character outside an escape, never lets a value start with `[` (a row's
        /// first cell follows `\\`), and never produces `--`.
        #[test]
        fn escaping_is_reversible_and_leaves_nothing_special(s in text()) {
            let e = escape_str(&s);
            let flat = s.replace("\r\n", " ").replace(['\r', '\n'], " ");
            let shown = |c: char| match c.is_control() && c != '\t' {
                true => format!("\\x{:02X}", u32::from(c)),
                false => c.to_string(),
            };
            let flat: String = flat.chars().map(shown).collect();
            proptest::prop_assert_eq!(unescape(&e), flat);
            // `\\` skips spaces and tabs (line breaks are escaped to spaces) before a `[`.
            proptest::prop_assert!(
                !e.trim_start_matches([' ', '\t']).starts_with('['),
                "{:?} -> {:?}", s, e
            );
            proptest::prop_assert!(!e.contains("--"), "{:?} -> {:?}", s, e);
            // Strip the escapes; what remains holds no special character.
            let mut bare = e.clone();
            for esc in [
                "\\textbackslash{}", "\\textasciitilde{}", "\\textasciicircum{}",
                "\\textless{}", "\\textgreater{}", "\\textbar{}", "\\&", "\\%", "\\$",
                "\\#", "\\_", "\\{", "\\}", "-{}", "{[}",
            ] {
                bare = bare.replace(esc, "");
            }
            proptest::prop_assert!(
                !bare.chars().any(|c| SPECIAL.contains(c)),
                "{:?} -> {:?} leaves {:?}", s, e, bare
            );
        }
    }

    #[test]
    fn a_leading_bracket_is_braced() {
        assert_eq!(escape_str("[1em]"), "{[}1em]");
        assert_eq!(escape_str("  [opt] x"), "  {[}opt] x");
        assert_eq!(escape_str("\n[x]"), " {[}x]");
        assert_eq!(escape_str("a [b]"), "a [b]");
        assert_eq!(escape_str("[a] [b]"), "{[}a] [b]");
    }

    /// Cells starting with `[` right after `\\` compile and keep their text, with pdflatex
    /// (`make test` installs it; without it the test fails unless told to skip); random strings
    /// are compiled too.
    #[test]
    fn cells_starting_with_a_bracket_compile_and_keep_their_text() {
        if !crate::stages::table::pdflatex_or_skip(
            "cells_starting_with_a_bracket_compile_and_keep_their_text",
        ) {
            return;
        }
        use proptest::strategy::{Strategy, ValueTree};
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let mut cells: Vec<String> = ["[1em]", "[opt]", " [x] y", "[", "[]", "[-1pt]"]
            .map(String::from)
            .to_vec();
        let strat = text();
        for _ in 0..200 {
            let v = strat.new_tree(&mut runner).expect("value").current();
            // Keep what pdflatex can typeset without extra fonts.
            cells.push(
                v.chars()
                    .filter(|c| *c == ' ' || c.is_ascii_graphic())
                    .collect(),
            );
        }
        let mut body = String::from(
            "\\pdfcompresslevel=0\\documentclass{article}\\begin{document}\n\\begin{tabular}{ll}\nfirst & x \\\\\n",
        );
        for c in &cells {
            let e = escape_str(c);
            body.push_str(&format!("{e} & {e} \\\\\n"));
        }
        body.push_str("\\end{tabular}\n\\end{document}\n");
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("doc.tex"), &body).expect("write");
        let o = std::process::Command::new("pdflatex")
            .args([
                "-interaction=nonstopmode",
                "-halt-on-error",
                "-no-shell-escape",
                "doc.tex",
            ])
            .current_dir(dir.path())
            .output()
            .expect("run pdflatex");
        let log = std::fs::read_to_string(dir.path().join("doc.log")).unwrap_or_default();
        assert!(
            o.status.success(),
            "pdflatex failed:\n{}\n--- document:\n{body}",
            log.lines()
                .filter(|l| l.starts_with('!') || l.starts_with("l."))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let pdf = std::fs::read(dir.path().join("doc.pdf")).expect("pdf");
        let pdf = String::from_utf8_lossy(&pdf);
        for text in ["1em", "opt", "-1pt"] {
            assert!(pdf.contains(text), "{text:?} vanished from the PDF");
        }
    }

    #[test]
    fn parses_numbers_strictly() {
        assert_eq!(parse_num_str("12"), Some(Num::Int(12)));
        assert_eq!(parse_num_str(" -3 "), Some(Num::Int(-3)));
        assert_eq!(parse_num_str("64.9"), Some(Num::Float(64.9)));
        assert_eq!(parse_num_str("1e3"), Some(Num::Float(1000.0)));
        for bad in ["", "abc", "inf", "NaN", "1,053", "12%", "-", "e"] {
            assert_eq!(parse_num_str(bad), None, "{bad:?}");
        }
    }

    fn render(src: &str, ctx: &tera::Context) -> TeraResult<String> {
        let mut t = super::super::new_tera();
        t.add_raw_template("t.tex", src)?;
        t.render("t.tex", ctx)
    }

    #[test]
    fn number_filters_in_templates() {
        let mut ctx = tera::Context::new();
        ctx.insert("n", "1053");
        ctx.insert("f", "64.85");
        ctx.insert("w", "929.0");
        ctx.insert("part", &603);
        ctx.insert("bad", "n/a");
        let ok = |s: &str| render(s, &ctx).unwrap();
        assert_eq!(ok("{{ n | int }}"), "1{,}053");
        assert_eq!(ok("{{ n | int(sep=false) }}"), "1053");
        assert_eq!(ok("{{ w | int }}"), "929");
        assert_eq!(ok("{{ f | fixed }}"), "64.85");
        assert_eq!(ok("{{ f | fixed(digits=1) }}"), "64.9");
        assert_eq!(ok("{{ n | fixed(digits=0, sep=true) }}"), "1{,}053");
        assert_eq!(ok("{{ f | pct }}"), r"64.9\%");
        assert_eq!(ok("{{ f | pct(digits=2) }}"), r"64.85\%");
        assert_eq!(ok("{{ part | pct(of=929) }}"), r"64.9\%");
        assert_eq!(ok("{{ part | pct(of=w, digits=0) }}"), r"65\%");
        assert_eq!(ok("{{ (n | num) + 1 }}"), "1054");
        assert_eq!(ok("{% if n | num > 1000 %}big{% endif %}"), "big");
        assert_eq!(ok("{{ [1, \"2\", 3.5] | sum }}"), "6.5");
        assert_eq!(ok("{{ [] | sum }}"), "0");

        for (src, needle) in [
            ("{{ bad | int }}", r#"`int`: "n/a" is not a number"#),
            ("{{ bad | fixed }}", r#"`fixed`: "n/a" is not a number"#),
            ("{{ bad | pct }}", r#"`pct`: "n/a" is not a number"#),
            ("{{ f | int }}", r#"`int`: "64.85" is not a whole number"#),
            ("{{ f | fixed(digit=1) }}", "unknown argument(s) digit"),
            ("{{ f | pct(of=0) }}", "percentage of 0"),
            ("{{ f | fixed(digits=40) }}", "out of range"),
        ] {
            let e = render(src, &ctx).unwrap_err().to_string();
            assert!(e.contains(needle), "{src}: {e}");
            assert!(e.contains("t.tex:1:"), "{src}: no location in {e}");
        }
    }

    #[test]
    fn sum_over_rows_and_sorted_map_helpers() {
        let mut ctx = tera::Context::new();
        let rows: Vec<std::collections::BTreeMap<&str, &str>> = vec![
            [("n", "2"), ("k", "b")].into_iter().collect(),
            [("n", "40"), ("k", "a")].into_iter().collect(),
        ];
        ctx.insert("rows", &rows);
        ctx.insert(
            "m",
            &[("z", 1), ("a", 2), ("m", 3)]
                .into_iter()
                .collect::<std::collections::HashMap<_, _>>(),
        );
        assert_eq!(
            render("{{ rows | sum(attribute=\"n\") }}", &ctx).unwrap(),
            "42"
        );
        let e = render("{{ rows | sum(attribute=\"x\") }}", &ctx)
            .unwrap_err()
            .to_string();
        assert!(e.contains("item 1 has no attribute \"x\""), "{e}");
        assert_eq!(
            render("{{ m | keys | join(sep=\",\") }}", &ctx).unwrap(),
            "a,m,z"
        );
        assert_eq!(
            render("{{ m | values | join(sep=\",\") }}", &ctx).unwrap(),
            "2,3,1"
        );
        assert_eq!(
            render(
                "{% for p in m | pairs %}{{ p[0] }}={{ p[1] }};{% endfor %}",
                &ctx
            )
            .unwrap(),
            "a=2;m=3;z=1;"
        );
    }
}
