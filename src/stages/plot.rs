//! The `plot` kind: declarative bar charts (grouped, stacked, stacked to 100 %; vertical or
//! horizontal) and heatmaps drawn from a long-format CSV table (one row per category, series
//! and value), written as SVG and/or PNG. Parameters and data rules: `docs/kinds.md#plot`.
//!
//! This module owns the parameters, their validation and the run; the submodules own the
//! CSV-to-grid step ([`data`]), the two chart families on plotters' chart API ([`bars`],
//! [`heatmap`]), what they share ([`frame`]: sizes, colours, value axis, and the one layout of
//! title, category labels and plot area) and text ([`text`]: the embedded DejaVu Sans measured
//! with ab_glyph, and the PNG backend that sets glyphs where the SVG does).
//!
//! Every declared `.svg` output gets an SVG and every `.png` one a PNG of the same chart, of
//! exactly `width` x `height` pixels. The same inputs give byte-identical files: no timestamps,
//! numbers through [`crate::stages::numfmt`] (as in tables and claims), the font embedded in
//! the PNG and named in the SVG (`font-family="DejaVu Sans, sans-serif"`), so a browser with
//! DejaVu Sans shows the SVG as the PNG (`scripts/svg-vs-png.sh` puts the two side by side).
//!
//! Looks: series in Okabe & Ito's colour-blind-safe palette, then Paul Tol's "muted" colours;
//! in a vertical stack the first series is on top, in a horizontal one on the left; heatmap
//! cells labelled in black or white, whichever contrasts more. Margins are measured from the
//! labels: left category labels in full (wrapped when a given `width` leaves too little room),
//! labels under the plot wrapped to their slot or turned vertical when a word does not fit; the
//! legend never over the bars. Without `width`/`height` the canvas is sized from the data (a
//! canvas over 10000 px is an error); a given size that cuts a label is an error naming the
//! size needed. Value-axis ticks are plotters' own, widened to end on a tick.

mod bars;
mod data;
mod frame;
mod heatmap;
mod text;

use std::path::Path;

use engine::kind::{InputPath, Kind, Problem, StageCtx, StageError};
use engine::spec::StageSpec;
use plotters::backend::{BitMapBackend, DrawingBackend, SVGBackend};
use plotters::drawing::IntoDrawingArea;
use serde::Deserialize;

use crate::stages::csvtab::Table;

use data::Columns;
/// How a figure prints a number (for the test that tables, claims and figures agree).
#[cfg(test)]
pub(crate) use frame::label as chart_label;

/// `with:` of a `plot` stage.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Params {
    data: InputPath,
    chart: Chart,
    orientation: Option<Orientation>,
    x: String,
    y: Option<String>,
    series: Option<String>,
    value: String,
    title: Option<String>,
    x_label: Option<String>,
    y_label: Option<String>,
    legend: Option<Legend>,
    legend_title: Option<String>,
    value_labels: Option<bool>,
    decimals: Option<u8>,
    colormap: Option<Colormap>,
    width: Option<u32>,
    height: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Chart {
    Grouped,
    Stacked,
    Stacked100,
    Heatmap,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Orientation {
    Vertical,
    Horizontal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Legend {
    Right,
    Bottom,
    None,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Colormap {
    Viridis,
    Cividis,
    ViridisR,
    CividisR,
}

/// Smallest and largest `width`/`height` accepted, and most `decimals`.
const MIN_SIDE: u32 = 100;
const MAX_SIDE: u32 = 10_000;
const MAX_DECIMALS: u8 = 6;

/// Whether an output is an SVG (`Some(true)`) or a PNG (`Some(false)`), by its extension.
fn is_svg(path: &str) -> Option<bool> {
    let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
    [("svg", true), ("png", false)]
        .into_iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, svg)| svg)
}

/// See the module docs.
pub struct PlotKind;

impl Kind for PlotKind {
    type Params = Params;
    fn name(&self) -> &'static str {
        "plot"
    }
    fn version(&self) -> u32 {
        2
    }
    fn about(&self) -> &'static str {
        "bar charts and heatmaps from a long-format CSV, as SVG and/or PNG"
    }
    fn validate_stage(&self, stage: &StageSpec) -> Vec<Problem> {
        let bad = stage.outputs.iter().filter(|o| is_svg(&o.path).is_none());
        bad.map(|o| Problem::new(Some(o.loc), unsupported(&o.path)))
            .collect()
    }
    fn validate(&self, p: &Params, stage: &StageSpec) -> Vec<Problem> {
        validate(p, stage)
    }
    fn run(&self, p: &Params, ctx: &StageCtx<'_>) -> Result<(), StageError> {
        let table = Table::read(&ctx.input(&p.data))?;
        let chart = render(p, &table, p.data.as_str())?;
        for o in &ctx.stage.outputs {
            if ctx.cancelled() {
                return Err("interrupted".into());
            }
            let out = ctx.output(&o.path)?;
            match is_svg(&o.path) {
                Some(true) => chart.write_svg(&out)?,
                Some(false) => chart.write_png(&out)?,
                None => return Err(unsupported(&o.path).into()),
            }
        }
        Ok(())
    }
}

fn unsupported(path: &str) -> String {
    format!(
        "output {path:?} has an unsupported extension: the plot kind writes `.svg` and `.png` files"
    )
}

/// Cross-checks of parsed parameters against each other (`data` is checked by the engine).
fn validate(p: &Params, stage: &StageSpec) -> Vec<Problem> {
    let heat = p.chart == Chart::Heatmap;
    let lone = !heat && p.series.is_none();
    let bar_only = |key: &str| {
        format!(
            "`{key}` is for bar charts; a heatmap takes `x`, `y` and `value` (and labels every cell)"
        )
    };
    let no_legend = "there is no legend without `series` (one series, one colour)";
    let stacked = if p.chart == Chart::Stacked {
        "stacked"
    } else {
        "stacked100"
    };
    let rule = |on: bool, key: &'static str, msg: &str| (on, key, msg.to_string());
    let mut rules = vec![
        rule(
            heat && p.y.is_none(),
            "chart",
            "a heatmap needs `y`: the column whose values label the rows",
        ),
        rule(heat && p.series.is_some(), "series", &bar_only("series")),
        rule(
            heat && p.orientation.is_some(),
            "orientation",
            &bar_only("orientation"),
        ),
        rule(
            heat && p.value_labels.is_some(),
            "value_labels",
            &bar_only("value_labels"),
        ),
        rule(
            heat && p.legend == Some(Legend::Bottom),
            "legend",
            "a heatmap's colour bar goes `right` or `none` (not `bottom`)",
        ),
        rule(
            !heat && p.y.is_some(),
            "y",
            "`y` is for heatmaps only: a bar chart takes its numbers from `value` and its colours from `series`",
        ),
        rule(
            !heat && p.colormap.is_some(),
            "colormap",
            "`colormap` is for heatmaps only (bars use the Okabe-Ito palette)",
        ),
        rule(
            lone && matches!(p.legend, Some(Legend::Right | Legend::Bottom)),
            "legend",
            no_legend,
        ),
        rule(lone && p.legend_title.is_some(), "legend_title", no_legend),
        rule(
            lone && p.chart != Chart::Grouped,
            "chart",
            &format!("a `{stacked}` chart needs `series`: the column whose values are stacked"),
        ),
    ];
    let row = if heat {
        ("y", &p.y)
    } else {
        ("series", &p.series)
    };
    let columns: Vec<(&str, &str)> = [
        ("x", Some(&p.x)),
        ("value", Some(&p.value)),
        (row.0, row.1.as_ref()),
    ]
    .into_iter()
    .filter_map(|(key, col)| Some((key, col?.as_str())))
    .collect();
    for (i, &(key, col)) in columns.iter().enumerate() {
        rules.push(rule(
            col.trim().is_empty(),
            key,
            &format!("`{key}` must name a column (it is empty)"),
        ));
        if let Some((other, _)) = columns[..i].iter().find(|(_, c)| *c == col) {
            let msg =
                format!("`{key}` and `{other}` name the same column {col:?}; use distinct columns");
            rules.push(rule(true, key, &msg));
        }
    }
    let d = p.decimals.unwrap_or(0);
    let msg = format!("`decimals: {d}` is too many (0 to {MAX_DECIMALS})");
    rules.push(rule(d > MAX_DECIMALS, "decimals", &msg));
    for (key, n) in [("width", p.width), ("height", p.height)] {
        let n = n.unwrap_or(MIN_SIDE);
        let msg = format!("`{key}: {n}` is out of range ({MIN_SIDE} to {MAX_SIDE} pixels)");
        rules.push(rule(!(MIN_SIDE..=MAX_SIDE).contains(&n), key, &msg));
    }
    let located = |(_, key, msg): (bool, &str, String)| Problem::new(stage.with_loc(&[key]), msg);
    rules.into_iter().filter(|r| r.0).map(located).collect()
}

/// A laid-out chart, drawn on any plotters backend.
enum Figure {
    Bars(bars::Bars),
    Heat(heatmap::Heat),
}

impl Figure {
    fn size(&self) -> (u32, u32) {
        let f = match self {
            Figure::Bars(b) => &b.frame,
            Figure::Heat(h) => &h.frame,
        };
        (f.width, f.height)
    }

    fn draw<DB: DrawingBackend>(&self, backend: DB) -> Result<(), String> {
        let root = backend.into_drawing_area();
        match self {
            Figure::Bars(b) => b.draw(&root)?,
            Figure::Heat(h) => h.draw(&root)?,
        }
        root.present().map_err(frame::err)
    }

    fn write_svg(&self, path: &Path) -> Result<(), String> {
        let mut buf = String::new();
        self.draw(SVGBackend::with_string(&mut buf, self.size()))?;
        std::fs::write(path, buf).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    fn write_png(&self, path: &Path) -> Result<(), String> {
        self.draw(&mut text::Png::new(BitMapBackend::new(path, self.size())))
    }

    /// The chart drawn in memory, with every line of text and filled rectangle it drew.
    fn record(&self) -> Result<(Vec<text::Label>, Vec<text::Rect>), String> {
        let (w, h) = self.size();
        let mut buf = vec![0u8; w as usize * h as usize * 3];
        let mut png = text::Png::new(BitMapBackend::with_buffer(&mut buf, (w, h)));
        self.draw(&mut png)?;
        Ok((png.labels, png.rects))
    }
}

/// Reads the grid from `table` and lays out the chart `p` describes.
fn render(p: &Params, table: &Table, file: &str) -> Result<Figure, String> {
    let heat = p.chart == Chart::Heatmap;
    let row = match heat {
        true => Some((p.y.as_deref().ok_or("a heatmap needs `y`")?, "y")),
        false => p.series.as_deref().map(|s| (s, "series")),
    };
    let (x, value) = (p.x.as_str(), p.value.as_str());
    let grid = data::grid(table, file, &Columns { x, row, value })?;
    let chart = match heat {
        true => Figure::Heat(heatmap::layout(&grid, p)?),
        false => Figure::Bars(bars::layout(&grid, p)?),
    };
    let (w, h) = chart.size();
    if w > MAX_SIDE || h > MAX_SIDE {
        return Err(format!(
            "the chart would be {w}x{h} px, more than {MAX_SIDE} px on a side: there are too many \
             categories for one chart (try `orientation: horizontal`, or aggregate further)"
        ));
    }
    // Every label must lie inside the canvas; with automatic sizes that holds by
    // construction, with a given `width`/`height` it may not.
    for t in chart.record()?.0 {
        let (x0, y0, x1, y1) = t.bbox;
        if x0 < -0.5 || y0 < -0.5 || x1 > f64::from(w) + 0.5 || y1 > f64::from(h) + 0.5 {
            let which = match (p.width, p.height) {
                (Some(_), Some(_)) => "`width` and `height`",
                (Some(_), None) => "`width`",
                (None, Some(_)) => "`height`",
                (None, None) => "the automatic size",
            };
            return Err(format!(
                "the label {:?} does not fit in the {w}x{h} canvas set by {which}; make it larger \
                 or omit it to size the chart from the data",
                t.text
            ));
        }
    }
    Ok(chart)
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::atomic::AtomicBool;

    use engine::kind::{DynKind, Registry, RunEnv};
    use engine::spec::Pipeline;

    use super::*;

    fn fixtures() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/plot")
    }

    fn registry() -> Registry {
        Registry::new().with(PlotKind)
    }

    /// The fixture pipeline, rooted at the fixture folder.
    fn fixture_pipeline() -> Pipeline {
        let root = fixtures();
        let text = std::fs::read_to_string(root.join("pipeline.yaml")).expect("fixture pipeline");
        engine::spec::parse(&text, "pipeline.yaml", &root, &registry())
            .unwrap_or_else(|d| panic!("fixture pipeline is invalid:\n{d:?}"))
    }

    /// Validation messages of `yaml` (a whole pipeline) in a project holding `files`.
    fn errors(yaml: &str, files: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("tempdir");
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        match engine::spec::parse(yaml, "pipeline.yaml", dir.path(), &registry()) {
            Ok(_) => Vec::new(),
            Err(d) => d.0.iter().map(ToString::to_string).collect(),
        }
    }

    fn run_stage(stage: &StageSpec, root: &Path, out: &Path) -> Result<(), StageError> {
        let env = RunEnv::default();
        let cancel = AtomicBool::new(false);
        let ctx = StageCtx {
            stage,
            root,
            out_root: out,
            env: &env,
            key_digest: "0123456789abcdef",
            cancel: &cancel,
        };
        DynKind::run(&PlotKind, &ctx)
    }

    /// PNG signature check and the IHDR width and height.
    fn png_size(bytes: &[u8]) -> (u32, u32) {
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&bytes[12..16], b"IHDR", "first chunk is IHDR");
        let be = |b: &[u8]| u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
        (be(&bytes[16..20]), be(&bytes[20..24]))
    }

    fn figure_of(stage: &StageSpec) -> Figure {
        let p = PlotKind::params_of(stage).expect("valid params");
        let rel = p.data.as_str();
        let table = Table::read(&fixtures().join(rel)).expect("fixture CSV");
        render(p, &table, rel).unwrap_or_else(|e| panic!("{}: {e}", stage.name))
    }

    /// The example of the `plot` section of `docs/kinds.md` is a valid stage.
    #[test]
    fn check_accepts_the_documented_example() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/kinds.md");
        let docs = std::fs::read_to_string(docs).expect("docs/kinds.md");
        let plot = &docs[docs.find("\n## plot\n").expect("a plot section")..];
        let example = plot
            .split("```yaml\n")
            .nth(1)
            .and_then(|b| b.split("```").next());
        let stage: String = (example.expect("an example").lines())
            .map(|l| format!("  {l}\n"))
            .collect();
        let csv = std::fs::read_to_string(fixtures().join("symptoms_by_engine.csv")).expect("csv");
        let files = [("results/symptoms_by_engine.csv", csv.as_str())];
        let yaml = format!("version: 1\nstages:\n{stage}");
        assert_eq!(errors(&yaml, &files), Vec::<String>::new());
    }

    #[test]
    fn check_reports_every_problem_with_its_location() {
        let yaml = r#"version: 1
stages:
  a:
    kind: plot
    inputs: [d.csv]
    outputs: [a.svg, a.pdf]
    with:
      data: other.csv
      chart: bars
      x: e
      value: n
      colour: red
  b:
    kind: plot
    inputs: [./d.csv]
    outputs: [b.png]
    with:
      data: d.csv
      chart: grouped
      x: e
      y: n
      value: n
      width: 20
      decimals: 9
  c:
    kind: plot
    inputs: [d.csv]
    outputs: [c.png]
    with:
      data: d.csv
      chart: heatmap
      x: e
      series: s
      value: n
      legend: bottom
  d:
    kind: plot
    inputs: [d.csv]
    outputs: [d.svg]
    with:
      data: d.csv
      chart: stacked
      orientation: diagonal
      x: e
      series: e
      value: n
"#;
        let got = errors(yaml, &[("d.csv", "e,s,n\na,b,1\n")]);
        let want = [
            r#"pipeline.yaml:6:22: error: in `with` of stage "a" (kind plot): output "a.pdf" has an unsupported extension: the plot kind writes `.svg` and `.png` files"#,
            r#"pipeline.yaml:8:13: error: in `with` of stage "a" (kind plot): `data: "other.csv"` is not one of the stage's inputs (d.csv); list it under `inputs` so that it is fingerprinted"#,
            r#"pipeline.yaml:9:14: error: in `with` of stage "a" (kind plot): unknown variant `bars`, expected one of `grouped`, `stacked`, `stacked100`, `heatmap`"#,
            r#"pipeline.yaml:12:7: error: in `with` of stage "a" (kind plot): unknown key "colour" (expected one of: data, chart, orientation, x, y, series, value, title, x_label, y_label, legend, legend_title, value_labels, decimals, colormap, width, height)"#,
            r#"pipeline.yaml:21:10: error: in `with` of stage "b" (kind plot): `y` is for heatmaps only: a bar chart takes its numbers from `value` and its colours from `series`"#,
            r#"pipeline.yaml:23:14: error: in `with` of stage "b" (kind plot): `width: 20` is out of range (100 to 10000 pixels)"#,
            r#"pipeline.yaml:24:17: error: in `with` of stage "b" (kind plot): `decimals: 9` is too many (0 to 6)"#,
            r#"pipeline.yaml:31:14: error: in `with` of stage "c" (kind plot): a heatmap needs `y`: the column whose values label the rows"#,
            r#"pipeline.yaml:33:15: error: in `with` of stage "c" (kind plot): `series` is for bar charts; a heatmap takes `x`, `y` and `value` (and labels every cell)"#,
            r#"pipeline.yaml:35:15: error: in `with` of stage "c" (kind plot): a heatmap's colour bar goes `right` or `none` (not `bottom`)"#,
            r#"pipeline.yaml:43:20: error: in `with` of stage "d" (kind plot): unknown variant `diagonal`, expected `vertical` or `horizontal`"#,
        ];
        assert_eq!(got, want, "got:\n{}", got.join("\n"));

        // Once the variants are fixed, the cross-checks of stage "d" show up too.
        let yaml = yaml
            .replace("orientation: diagonal", "orientation: vertical")
            .replace("chart: bars", "chart: grouped")
            .replace("      colour: red\n", "");
        let got = errors(&yaml, &[("d.csv", "e,s,n\na,b,1\n")]);
        for want in [
            r#"pipeline.yaml:8:13: error: in `with` of stage "a" (kind plot): `data: "other.csv"` is not one of the stage's inputs (d.csv); list it under `inputs` so that it is fingerprinted"#,
            r#"pipeline.yaml:44:15: error: in `with` of stage "d" (kind plot): `series` and `x` name the same column "e"; use distinct columns"#,
        ] {
            assert!(
                got.iter().any(|g| g == want),
                "missing {want}\ngot:\n{}",
                got.join("\n")
            );
        }
    }

    #[test]
    fn run_writes_every_declared_output() {
        let pipeline = fixture_pipeline();
        let stage = pipeline.stage("grouped").expect("stage");
        let out = tempfile::tempdir().expect("tempdir");
        run_stage(stage, &fixtures(), out.path()).expect("run");

        let svg = std::fs::read_to_string(out.path().join("figures/grouped.svg")).expect("svg");
        assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
        // plotters writes each text element's content on a line of its own.
        for text in [
            "Symptoms by engine",
            "Engine",
            "Bugs",
            "Symptom",
            "llama.cpp",
            "TensorRT-LLM",
            "Abnormal Performance",
        ] {
            assert!(
                svg.contains(&format!(">\n{text}\n</text>")),
                "SVG lacks {text}"
            );
        }
        // Named so that a browser with DejaVu Sans draws it as the PNG does.
        assert!(svg.contains(r#"font-family="DejaVu Sans, sans-serif""#));
        assert!(!svg.contains(r#"font-family="sans-serif""#));
        let png = std::fs::read(out.path().join("figures/grouped.png")).expect("png");
        assert_eq!(png_size(&png), figure_of(stage).size());

        // A given size is the size of the PNG.
        let stage = pipeline.stage("grouped_labels").expect("stage");
        run_stage(stage, &fixtures(), out.path()).expect("run");
        let png = std::fs::read(out.path().join("figures/grouped_labels.png")).expect("png");
        assert_eq!(png_size(&png), (900, 520));
        let svg =
            std::fs::read_to_string(out.path().join("figures/grouped_labels.svg")).expect("svg");
        assert!(
            svg.starts_with(r#"<svg width="900" height="520""#),
            "{}",
            &svg[..80]
        );
    }

    #[test]
    fn rendering_twice_gives_identical_bytes() {
        let pipeline = fixture_pipeline();
        let (a, b) = (
            tempfile::tempdir().expect("tempdir"),
            tempfile::tempdir().expect("tempdir"),
        );
        for stage in &pipeline.stages {
            run_stage(stage, &fixtures(), a.path()).expect("first run");
            run_stage(stage, &fixtures(), b.path()).expect("second run");
            for o in &stage.outputs {
                let x = std::fs::read(a.path().join(&o.path)).expect("first output");
                let y = std::fs::read(b.path().join(&o.path)).expect("second output");
                assert!(!x.is_empty(), "{} is empty", o.path);
                assert!(x == y, "{} differs between two runs", o.path);
            }
        }
    }

    /// A one-stage pipeline drawing `d.csv` (holding `csv`) with `with`, in a temporary folder.
    fn one(with: &str, csv: &str) -> (tempfile::TempDir, Pipeline) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("d.csv"), csv).expect("write");
        let yaml = format!(
            "version: 1\nstages:\n  s:\n    kind: plot\n    inputs: [d.csv]\n    outputs: [s.svg, s.png]\n    with: {{ data: d.csv, {with} }}\n"
        );
        let p = engine::spec::parse(&yaml, "pipeline.yaml", dir.path(), &registry());
        (dir, p.expect("valid"))
    }

    /// Runs [`one`]; a panic is an error too.
    fn run_one(with: &str, csv: &str) -> Result<(), String> {
        let (dir, p) = one(with, csv);
        let run = || run_stage(&p.stages[0], dir.path(), dir.path()).map_err(|e| e.to_string());
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(run))
            .unwrap_or_else(|_| Err(format!("{with}: panicked")))
    }

    /// Lays out [`one`].
    fn figure(with: &str, csv: &str) -> Result<Figure, String> {
        let (_dir, p) = one(with, csv);
        let table = Table::parse(csv.as_bytes()).expect("csv");
        render(
            PlotKind::params_of(&p.stages[0]).expect("params"),
            &table,
            "d.csv",
        )
    }

    #[test]
    fn run_errors_name_columns_and_rows() {
        let csv = "engine,symptom,n\nvLLM,Crash,3\nvLLM,Hang,three\n";
        let with = |x: &str| format!("chart: stacked, x: {x}, series: symptom, value: n");
        assert_eq!(
            run_one(&with("engin"), csv).unwrap_err(),
            "d.csv: no column \"engin\" (columns: engine, symptom, n); `x` names it"
        );
        assert_eq!(
            run_one(&with("engine"), csv).unwrap_err(),
            "d.csv: row 3, column \"n\": \"three\" is not a number"
        );
    }

    /// A value of about 1e300 panicked with "capacity overflow" in grouped, stacked and
    /// heatmap charts; any absurd or non-finite value is now an error naming file, row and
    /// column, for every chart type, and the largest accepted magnitude still draws.
    #[test]
    fn absurd_values_are_a_clear_error_not_a_capacity_overflow_panic() {
        let large = " (at most 1e15 in absolute value; check the data or scale the column, e.g. to \
                     thousands)";
        for (value, why) in [
            ("1e300", "is too large to draw"),
            ("-1e300", "is too large to draw"),
            ("1e16", "is too large to draw"),
            ("1e400", "is not a finite number"),
            ("NaN", "is not a finite number"),
            ("inf", "is not a finite number"),
            ("1e15", ""),
        ] {
            let csv = format!("engine,symptom,n\nvLLM,Crash,3\nvLLM,Hang,{value}\n");
            for chart in ["grouped", "stacked", "stacked100", "heatmap"] {
                let row = if chart == "heatmap" { "y" } else { "series" };
                let with = format!("chart: {chart}, x: engine, {row}: symptom, value: n");
                let got = run_one(&with, &csv);
                let want = match why {
                    "" => Ok(()),
                    _ => Err(format!("d.csv: row 3, column \"n\": \"{value}\" {why}")
                        + if why.contains("large") { large } else { "" }),
                };
                assert_eq!(got, want, "{chart} with {value}");
            }
        }
    }

    #[test]
    fn stacked100_shows_percentages_of_each_category() {
        let with = "chart: stacked100, x: e, series: s, value: n, value_labels: true";
        let fig = figure(with, "e,s,n\na,x,1\na,y,3\nb,x,2\n").expect("render");
        let (labels, _) = fig.record().expect("draw");
        let texts: Vec<&str> = labels.iter().map(|t| t.text.as_str()).collect();
        for want in ["0%", "100%", "25%", "75%"] {
            assert!(texts.contains(&want), "{want} missing from {texts:?}");
        }
        // b has only x: one full bar labelled 100 %, the missing (b, y) pair is 0 and unlabelled.
        let full = texts.iter().filter(|t| **t == "100%").count();
        assert_eq!(full, 2, "{texts:?}");
    }

    /// The layout rules the pictures rely on: every label inside the canvas, no two labels
    /// overlapping, and no label (other than value labels) on a bar or cell.
    #[test]
    fn fixture_layouts_have_no_cut_or_overlapping_labels() {
        let pipeline = fixture_pipeline();
        for stage in &pipeline.stages {
            let figure = figure_of(stage);
            let (w, h) = figure.size();
            let (w, h) = (f64::from(w), f64::from(h));
            let (texts, rects) = figure.record().expect("draw");
            for t in &texts {
                let (x0, y0, x1, y1) = t.bbox;
                assert!(
                    x0 >= 0.0 && y0 >= 0.0 && x1 <= w && y1 <= h,
                    "{}: {:?} is cut ({x0},{y0})-({x1},{y1}) in {w}x{h}",
                    stage.name,
                    t.text
                );
            }
            let overlap = |a: (f64, f64, f64, f64), b: (f64, f64, f64, f64)| {
                a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3
            };
            for (i, a) in texts.iter().enumerate() {
                for b in &texts[i + 1..] {
                    assert!(
                        !overlap(a.bbox, b.bbox),
                        "{}: {:?} overlaps {:?}",
                        stage.name,
                        a.text,
                        b.text
                    );
                }
            }
            // Labels in the text colour (all but those inside bars and cells) stay off the
            // coloured shapes: bars, cells, swatches, the colour bar.
            let plain = [frame::WHITE, frame::GRID, frame::AXIS].map(|c| (c.0, c.1, c.2));
            let text = (frame::TEXT.0, frame::TEXT.1, frame::TEXT.2);
            for t in texts.iter().filter(|t| t.rgb == text) {
                for (r, c) in rects.iter().filter(|(_, c)| !plain.contains(c)) {
                    let r = (
                        f64::from(r.0),
                        f64::from(r.1),
                        f64::from(r.2 + 1),
                        f64::from(r.3 + 1),
                    );
                    assert!(
                        !overlap(t.bbox, r),
                        "{}: label {:?} {:?} covers a shape {r:?} of colour {c:?}",
                        stage.name,
                        t.text,
                        t.bbox
                    );
                }
            }
        }
    }

    #[test]
    fn a_given_size_that_is_too_small_is_a_clear_error() {
        let csv = std::fs::read_to_string(fixtures().join("root_causes.csv")).expect("csv");
        let with = "chart: grouped, orientation: horizontal, x: root_cause, value: n, height: 200";
        let Err(e) = figure(with, &csv) else {
            panic!("a height of 200 px was accepted")
        };
        assert!(
            e.starts_with("`height: 200` is too small for this chart"),
            "{e}"
        );
        assert!(e.contains("use `height: "), "{e}");
    }

    /// Renders every fixture chart into `$PLOT_LOOK_DIR` (default `/tmp/plot-look`) to look at:
    /// `cargo test -p artifact plot::tests::look -- --ignored`.
    #[test]
    #[ignore = "writes pictures for a human to look at"]
    fn look() {
        let dir = std::env::var_os("PLOT_LOOK_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/tmp/plot-look"));
        let pipeline = fixture_pipeline();
        for stage in &pipeline.stages {
            run_stage(stage, &fixtures(), &dir).expect("run");
        }
    }
}
