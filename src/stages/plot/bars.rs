//! Bar charts (grouped, stacked, stacked to 100 %), vertical or horizontal, on plotters' chart
//! API: a `ChartBuilder` whose margins and label areas are measured from the labels, the value
//! axis from `configure_mesh`, bars as a series of rectangles, the legend from
//! `configure_series_labels` on an area of its own beside or below the plot.
//!
//! Categories run along a continuous `0..n` axis, category `c` on `c..c+1`: grouped bars need
//! fractions of a slot, and plotters' segmented coordinates map a single category to pixel 0.
//! In a vertical stack the first series is on top (so the legend, read top to bottom, matches
//! the stack); in a horizontal stack it is on the left.

use plotters::chart::{ChartBuilder, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::{PathElement, Rectangle, Text};
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontTransform, RGBColor};

use super::data::Grid;
use super::frame::{
    AXIS, AXIS_SIZE, Axis, Cats, GAP, GRID, LINE, MARGIN, TEXT, TICK_LEN, TICK_SIZE, TICKS, Title,
    VALUE_SIZE, WHITE, canvas_len, contrasting, em, err, fmt_num, label_decimals, plot_len,
    series_color,
};
use super::text::{max_width, style, width};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Grouped,
    Stacked,
    Stacked100,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LegendPos {
    Right,
    Bottom,
    None,
}

/// Everything a bar chart needs besides the data.
pub struct BarSpec<'a> {
    pub mode: Mode,
    pub horizontal: bool,
    pub title: Option<&'a str>,
    /// Title of the category axis (`x_label`).
    pub cat_label: Option<&'a str>,
    /// Title of the value axis (`y_label`).
    pub value_label: Option<&'a str>,
    pub legend: LegendPos,
    pub legend_title: Option<&'a str>,
    pub value_labels: bool,
    pub decimals: Option<u8>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

const SWATCH: i32 = 12;
const LEGEND_GAP: f64 = 20.0;
/// plotters' series labels are 1.25 font sizes apart.
const LEGEND_LINE: f64 = 1.25 * TICK_SIZE;
const MAX_BAR: f64 = 44.0;
const MAX_STACK: f64 = 72.0;
const GROUP_FILL: f64 = 0.8;
const STACK_FILL: f64 = 0.62;
const MAX_AUTO_PLOT: f64 = 900.0;

/// The series legend, its items in columns of `rows` (one column when it sits on the right).
struct Legend {
    title: Option<String>,
    names: Vec<String>,
    item_w: f64,
    rows: usize,
    bottom: bool,
}

impl Legend {
    fn title_h(&self) -> f64 {
        if self.title.is_some() {
            LEGEND_LINE
        } else {
            0.0
        }
    }
    fn cols(&self) -> usize {
        self.names.len().div_ceil(self.rows.max(1))
    }
    fn width(&self) -> Result<f64, String> {
        let items = self.cols() as f64 * self.item_w + (self.cols() as f64 - 1.0) * LEGEND_GAP;
        let title = match &self.title {
            Some(t) => width(t, TICK_SIZE, true)?,
            None => 0.0,
        };
        Ok(items.max(title))
    }
    fn height(&self) -> f64 {
        self.title_h() + self.rows as f64 * LEGEND_LINE
    }

    /// Draws the legend with its top-left corner at `(x, y)`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x: f64,
        y: f64,
    ) -> Result<(), String> {
        let w = self.width()?;
        if let Some(t) = &self.title {
            let (tx, h) = if self.bottom {
                (x + w / 2.0, HPos::Center)
            } else {
                (x, HPos::Left)
            };
            let s = style(TICK_SIZE, true, TEXT).pos(Pos::new(h, VPos::Top));
            let at = (tx.round() as i32, y.round() as i32);
            root.draw(&Text::new(t.as_str(), at, s)).map_err(err)?;
        }
        let top = y + self.title_h();
        for col in 0..self.cols() {
            let x0 = x + col as f64 * (self.item_w + LEGEND_GAP);
            let area = root.clone().shrink(
                (x0.round() as i32, top.round() as i32),
                (self.item_w.ceil() as u32 + 1, self.height().ceil() as u32),
            );
            let mut chart = ChartBuilder::on(&area)
                .build_cartesian_2d(0..1, 0..1)
                .map_err(err)?;
            let first = col * self.rows;
            for (i, name) in self.names.iter().enumerate().skip(first).take(self.rows) {
                let c = series_color(i);
                chart
                    .draw_series(std::iter::empty::<Rectangle<(i32, i32)>>())
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        let h = SWATCH / 2;
                        Rectangle::new([(x, y - h), (x + SWATCH, y + h)], c.filled())
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::Coordinate(0, 0))
                .margin(0)
                .legend_area_size(SWATCH + 6)
                .border_style(WHITE)
                .background_style(WHITE)
                .label_font(style(TICK_SIZE, false, TEXT))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}

/// A laid-out bar chart.
pub struct Bars {
    pub width: u32,
    pub height: u32,
    mode: Mode,
    horizontal: bool,
    title: Title,
    cats: Cats,
    /// `vals[c][s]`: the value of series `s` in category `c`, as drawn.
    vals: Vec<Vec<f64>>,
    axis: Axis,
    cat_desc: Option<String>,
    value_desc: Option<String>,
    legend: Option<Legend>,
    /// Decimals of the value labels, when they are shown.
    value_labels: Option<usize>,
    /// Margins and label areas around the plot: left, top, right, bottom, and the label areas
    /// left of and under the plot.
    frame: [u32; 6],
}

fn has(l: Option<&str>) -> Option<String> {
    l.filter(|l| !l.trim().is_empty()).map(str::to_string)
}

/// Lays out a bar chart.
pub fn layout(grid: &Grid, spec: &BarSpec<'_>) -> Result<Bars, String> {
    let n_cat = grid.cols.len() as f64;
    let n_ser = grid.rows.len().max(1) as f64;
    let mut vals = grid.cells.clone();
    if spec.mode != Mode::Grouped {
        for (c, row) in vals.iter().enumerate() {
            if let Some((s, v)) = row.iter().enumerate().find(|(_, v)| **v < 0.0) {
                let series = grid.rows.get(s).filter(|r| !r.is_empty());
                return Err(format!(
                    "stacked charts need non-negative values, but {:?}{} is {}",
                    grid.cols[c],
                    series.map(|r| format!(" / {r:?}")).unwrap_or_default(),
                    fmt_num(*v, 6).trim_end_matches('0').trim_end_matches('.')
                ));
            }
        }
    }
    let percent = spec.mode == Mode::Stacked100;
    if percent {
        for row in &mut vals {
            let total: f64 = row.iter().sum();
            if total > 0.0 {
                row.iter_mut().for_each(|v| *v = *v / total * 100.0);
            }
        }
    }
    let all = || vals.iter().flatten().copied();
    let (dmin, dmax) = match spec.mode {
        Mode::Grouped => (all().fold(0.0, f64::min), all().fold(0.0, f64::max)),
        Mode::Stacked => (0.0, vals.iter().map(|r| r.iter().sum()).fold(0.0, f64::max)),
        Mode::Stacked100 => (0.0, 100.0),
    };
    let decimals = if percent {
        usize::from(spec.decimals.unwrap_or(0))
    } else {
        label_decimals(spec.decimals, all())
    };
    let legend = match spec.legend {
        LegendPos::None => None,
        pos => Some(Legend {
            title: has(spec.legend_title),
            item_w: max_width(grid.rows.iter().map(String::as_str), TICK_SIZE, false)?
                + f64::from(SWATCH + 6),
            names: grid.rows.clone(),
            rows: grid.rows.len(),
            bottom: pos == LegendPos::Bottom,
        }),
    };
    let mut bars = Bars {
        width: 0,
        height: 0,
        mode: spec.mode,
        horizontal: spec.horizontal,
        title: Title::new(None, 0.0)?,
        cats: Cats::left(&[], None)?,
        vals,
        axis: Axis::new(dmin, dmax, TICKS),
        cat_desc: has(spec.cat_label),
        value_desc: has(spec.value_label),
        legend,
        value_labels: spec.value_labels.then_some(decimals),
        frame: [0; 6],
    };
    let (plot_w, plot_h) = bars.geometry(grid, spec)?;
    // Grouped bars carry their value labels beyond the bar's end: widen the value range so
    // that the longest label fits on each side that has bars.
    if spec.value_labels && spec.mode == Mode::Grouped {
        let labels: Vec<String> = bars.vals.iter().flatten().map(|v| bars.label(*v)).collect();
        let lw = max_width(labels.iter().map(String::as_str), VALUE_SIZE, false)?;
        let len = if spec.horizontal { plot_w } else { plot_h };
        let ext = if spec.horizontal || bars.rotated_values(plot_w, lw) {
            lw + 6.0
        } else {
            em(VALUE_SIZE) + 6.0
        };
        if len > 3.0 * ext {
            let e = ext / len;
            let (up, down) = (
                f64::from(u8::from(dmax > 0.0)),
                f64::from(u8::from(dmin < 0.0)),
            );
            let range = (dmax - dmin) / (1.0 - (up + down) * e);
            bars.axis = Axis::new(dmin - down * e * range, dmax + up * e * range, TICKS);
            bars.geometry(grid, spec)?;
        }
    }
    let _ = n_cat * n_ser;
    Ok(bars)
}

impl Bars {
    fn label(&self, v: f64) -> String {
        let d = self.value_labels.unwrap_or(0);
        fmt_num(v, d)
            + if self.mode == Mode::Stacked100 {
                "%"
            } else {
                ""
            }
    }

    /// Grouped value labels turn vertical when they are wider than a bar.
    fn rotated_values(&self, plot_w: f64, label_w: f64) -> bool {
        !self.horizontal && label_w > self.bar_frac() * plot_w / self.vals.len() as f64 + 1.0
    }

    /// Width of one grouped bar, or of a stack, as a fraction of a category slot.
    fn bar_frac_for(&self, slot: f64) -> f64 {
        let n_ser = self.vals.first().map_or(1, Vec::len).max(1) as f64;
        match self.mode {
            Mode::Grouped => (GROUP_FILL).min(MAX_BAR * n_ser / slot) / n_ser,
            _ => STACK_FILL.min(MAX_STACK / slot),
        }
    }

    fn bar_frac(&self) -> f64 {
        let [l, _, r, _, y_area, _] = self.frame;
        let plot = if self.horizontal {
            f64::from(self.height) - f64::from(self.frame[1] + self.frame[3] + self.frame[5])
        } else {
            f64::from(self.width) - f64::from(l + r + y_area)
        };
        self.bar_frac_for(plot / self.vals.len() as f64)
    }

    /// Computes margins, label areas and the canvas size; returns the plot area's size.
    fn geometry(&mut self, grid: &Grid, spec: &BarSpec<'_>) -> Result<(f64, f64), String> {
        let n_cat = grid.cols.len() as f64;
        let n_ser = grid.rows.len().max(1) as f64;
        let percent = self.mode == Mode::Stacked100;
        let tick_w = self.axis.label_width(percent)?;
        let desc = em(AXIS_SIZE) * 1.1 + GAP;
        let line_h = em(TICK_SIZE) * LINE;
        let cat_desc = if self.cat_desc.is_some() { desc } else { 0.0 };
        let value_desc = if self.value_desc.is_some() { desc } else { 0.0 };
        let legend_w = match &self.legend {
            Some(l) if !l.bottom => LEGEND_GAP + l.width()?,
            _ => 0.0,
        };
        let need_title = Title::need(spec.title)?;
        // Value tick labels sit 2 tick lengths from the axis (plotters' rule).
        let tick_room = 2.0 * TICK_LEN;
        let (left_area, plot_w, right);
        let bottom_area;
        let mut plot_h_auto;
        let plot_h_min;
        if self.horizontal {
            right = MARGIN + legend_w.max(tick_w / 2.0);
            let fixed = MARGIN + cat_desc + right;
            let mut cats = Cats::left(&grid.cols, None)?;
            if let Some(w) = spec.width {
                let room = f64::from(w) - fixed - 160.0;
                if cats.depth()? > room && room >= 60.0 {
                    cats = Cats::left(&grid.cols, Some(room))?;
                }
            }
            left_area = cat_desc + cats.depth()?;
            let mut pw = plot_len(
                "width",
                spec.width,
                MARGIN + left_area + right,
                520.0,
                160.0,
            )?;
            let content = MARGIN + left_area + pw + right;
            if spec.width.is_none() && need_title > content {
                pw += need_title - content;
            }
            plot_w = pw;
            bottom_area = tick_room + em(TICK_SIZE) + value_desc;
            let lines = cats.most_lines() as f64;
            let slot = match self.mode {
                Mode::Grouped => (n_ser * 14.0 + 8.0).max(24.0),
                _ => 30.0,
            }
            .max(lines * line_h + 6.0);
            plot_h_auto = n_cat * slot;
            plot_h_min = n_cat * lines * line_h;
            self.cats = cats;
        } else {
            left_area = value_desc + tick_w + tick_room;
            right = MARGIN + legend_w;
            let cat_w = max_width(grid.cols.iter().map(String::as_str), TICK_SIZE, false)?;
            let (slot, min_slot) = match self.mode {
                Mode::Grouped => (
                    (n_ser * 18.0 + 20.0).max(64.0),
                    (n_ser * 10.0 + 8.0).max(24.0),
                ),
                _ => (64.0, 24.0),
            };
            let slot = slot.max((cat_w + 12.0).min(140.0));
            // Wide slots let labels sit horizontally, but not at any price: past
            // MAX_AUTO_PLOT the slots shrink (to a minimum per bar) and long labels turn.
            let auto = (n_cat * slot).min((n_cat * min_slot).max(MAX_AUTO_PLOT));
            let fixed = MARGIN + left_area + right;
            let mut pw = plot_len(
                "width",
                spec.width,
                fixed,
                auto.max(360.0),
                (n_cat * 6.0).max(80.0),
            )?;
            if spec.width.is_none() && need_title > fixed + pw {
                pw += need_title - fixed - pw;
            }
            plot_w = pw;
            self.cats = Cats::below(&grid.cols, plot_w / n_cat)?;
            bottom_area = self.cats.depth()? + cat_desc;
            plot_h_auto = 320.0;
            plot_h_min = 80.0;
        }
        let width = canvas_len(spec.width, MARGIN + left_area + plot_w + right);
        self.title = Title::new(spec.title, f64::from(width) - 2.0 * MARGIN)?;
        let top = MARGIN + self.title.height().max(em(TICK_SIZE) / 2.0);
        let legend_b = match &mut self.legend {
            Some(l) if l.bottom => {
                let per_row = ((f64::from(width) - 2.0 * MARGIN + LEGEND_GAP)
                    / (l.item_w + LEGEND_GAP))
                    .floor()
                    .max(1.0) as usize;
                l.rows = l.names.len().div_ceil(per_row);
                GAP + l.height()
            }
            Some(l) => {
                plot_h_auto = plot_h_auto.max(l.height());
                0.0
            }
            None => 0.0,
        };
        let bottom = MARGIN + legend_b;
        let plot_h = plot_len(
            "height",
            spec.height,
            top + bottom_area + bottom,
            plot_h_auto,
            plot_h_min,
        )?;
        self.width = width;
        self.height = canvas_len(spec.height, top + plot_h + bottom_area + bottom);
        let r = |v: f64| v.round() as u32;
        self.frame = [
            r(MARGIN),
            r(top),
            width.saturating_sub(r(MARGIN + left_area + plot_w)),
            r(bottom),
            r(left_area),
            r(bottom_area),
        ];
        Ok((plot_w, plot_h))
    }

    /// Category `c`'s slot `c..c+1` from the start of the category axis (the top, for
    /// horizontal bars, where the axis runs upwards).
    fn cat(&self, c: usize, f: f64) -> f64 {
        if self.horizontal {
            self.vals.len() as f64 - c as f64 - f
        } else {
            c as f64 + f
        }
    }

    /// A point from a category position and a value, as chart coordinates.
    fn pt(&self, cat: f64, v: f64) -> (f64, f64) {
        if self.horizontal { (v, cat) } else { (cat, v) }
    }

    /// Series order along a stack: the first series ends on top of a vertical stack and on the
    /// left of a horizontal one.
    fn stack(&self, row: &[f64]) -> Vec<(usize, f64, f64)> {
        let order: Vec<usize> = if self.horizontal {
            (0..row.len()).collect()
        } else {
            (0..row.len()).rev().collect()
        };
        let mut acc = 0.0;
        let mut out = Vec::new();
        for s in order {
            if row[s] > 0.0 {
                out.push((s, acc, acc + row[s]));
                acc += row[s];
            }
        }
        out
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        self.title.draw(root)?;
        let [l, t, r, b, y_area, x_area] = self.frame;
        let n = self.vals.len() as f64;
        let (lo, hi) = (self.axis.lo, self.axis.hi);
        let mut builder = ChartBuilder::on(root);
        builder
            .margin_left(l)
            .margin_top(t)
            .margin_right(r)
            .margin_bottom(b)
            .y_label_area_size(y_area)
            .x_label_area_size(x_area);
        let (xr, yr) = if self.horizontal {
            (lo..hi, 0.0..n)
        } else {
            (0.0..n, lo..hi)
        };
        let mut chart = builder.build_cartesian_2d(xr, yr).map_err(err)?;
        let percent = self.mode == Mode::Stacked100;
        let fmt = |v: &f64| self.axis.label(*v, percent);
        let mut mesh = chart.configure_mesh();
        mesh.bold_line_style(GRID)
            .max_light_lines(0)
            .axis_style(AXIS)
            .set_all_tick_mark_size(TICK_LEN as u32)
            .label_style(style(TICK_SIZE, false, TEXT))
            .axis_desc_style(style(AXIS_SIZE, false, TEXT));
        let (x_desc, y_desc) = if self.horizontal {
            mesh.disable_y_mesh()
                .y_labels(0)
                .x_labels(TICKS)
                .x_label_formatter(&fmt);
            (&self.value_desc, &self.cat_desc)
        } else {
            mesh.disable_x_mesh()
                .x_labels(0)
                .y_labels(TICKS)
                .y_label_formatter(&fmt);
            (&self.cat_desc, &self.value_desc)
        };
        if let Some(d) = x_desc {
            mesh.x_desc(d.as_str());
        }
        if let Some(d) = y_desc {
            mesh.y_desc(d.as_str());
        }
        mesh.draw().map_err(err)?;

        // Bars, and 1 px white separators between stacked segments.
        let frac = self.bar_frac();
        let (px_w, px_h) = chart.plotting_area().dim_in_pixel();
        let slot_px = f64::from(if self.horizontal { px_h } else { px_w }) / n;
        let mut rects = Vec::new();
        let mut seps = Vec::new();
        for (c, row) in self.vals.iter().enumerate() {
            if self.mode == Mode::Grouped {
                let g0 = (1.0 - frac * row.len() as f64) / 2.0;
                let gap = if frac * slot_px >= 6.0 {
                    1.0 / slot_px
                } else {
                    0.0
                };
                for (s, &v) in row.iter().enumerate() {
                    let (a0, a1) = (g0 + s as f64 * frac, g0 + (s + 1) as f64 * frac - gap);
                    let (a0, a1) = (self.cat(c, a0), self.cat(c, a1));
                    rects.push((self.pt(a0, 0.0), self.pt(a1, v), series_color(s)));
                }
            } else {
                let (a0, a1) = (
                    self.cat(c, (1.0 - frac) / 2.0),
                    self.cat(c, (1.0 + frac) / 2.0),
                );
                let segs = self.stack(row);
                for (i, &(s, v0, v1)) in segs.iter().enumerate() {
                    rects.push((self.pt(a0, v0), self.pt(a1, v1), series_color(s)));
                    if i + 1 < segs.len() {
                        seps.push((self.pt(a0, v1), self.pt(a1, v1)));
                    }
                }
            }
        }
        chart
            .draw_series(
                rects
                    .into_iter()
                    .map(|(p, q, c)| Rectangle::new([p, q], c.filled())),
            )
            .map_err(err)?;
        chart
            .draw_series(
                seps.into_iter()
                    .map(|(p, q)| PathElement::new(vec![p, q], WHITE)),
            )
            .map_err(err)?;
        if lo < 0.0 {
            let zero = vec![self.pt(0.0, 0.0), self.pt(n, 0.0)];
            chart
                .draw_series([PathElement::new(zero, AXIS)])
                .map_err(err)?;
        }

        // Category labels.
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let centres: Vec<f64> = (0..self.vals.len())
            .map(|c| {
                let (x, y) = chart.backend_coord(&self.pt(self.cat(c, 0.5), lo));
                f64::from(if self.horizontal { y } else { x })
            })
            .collect();
        let axis = if self.horizontal { xs.start } else { ys.end };
        self.cats.draw(root, f64::from(axis), &centres)?;

        if self.value_labels.is_some() {
            self.draw_values(root, &chart, frac)?;
        }
        if let Some(lg) = &self.legend {
            if lg.bottom {
                let x = (f64::from(self.width) - lg.width()?) / 2.0;
                let y = f64::from(self.height) - f64::from(b) + GAP;
                lg.draw(root, x, y)?;
            } else {
                lg.draw(root, f64::from(xs.end) + LEGEND_GAP, f64::from(ys.start))?;
            }
        }
        Ok(())
    }

    fn draw_values<DB: DrawingBackend, CT: plotters::coord::CoordTranslate<From = (f64, f64)>>(
        &self,
        root: &DrawingArea<DB, Shift>,
        chart: &plotters::chart::ChartContext<'_, DB, CT>,
        frac: f64,
    ) -> Result<(), String> {
        let px = |p: (f64, f64)| {
            let (x, y) = chart.plotting_area().map_coordinate(&p);
            (f64::from(x), f64::from(y))
        };
        let base = style(VALUE_SIZE, false, TEXT);
        let (px_w, _) = chart.plotting_area().dim_in_pixel();
        let labels: Vec<String> = self.vals.iter().flatten().map(|v| self.label(*v)).collect();
        let lw = max_width(labels.iter().map(String::as_str), VALUE_SIZE, false)?;
        let rotated = self.rotated_values(f64::from(px_w), lw);
        for (c, row) in self.vals.iter().enumerate() {
            let items: Vec<(usize, f64, f64)> = if self.mode == Mode::Grouped {
                let g0 = (1.0 - frac * row.len() as f64) / 2.0;
                (0..row.len())
                    .map(|s| (s, g0 + (s as f64 + 0.5) * frac, row[s]))
                    .collect()
            } else {
                self.stack(row)
                    .into_iter()
                    .map(|(s, v0, v1)| (s, v0, v1))
                    .collect()
            };
            for (s, a, b) in items {
                let fg = contrasting(series_color(s));
                let (label, at, st) = if self.mode == Mode::Grouped {
                    let v = b;
                    let (x, y) = px(self.pt(self.cat(c, a), v));
                    let sign = if v >= 0.0 { 1.0 } else { -1.0 };
                    let (at, pos, turn) = match (self.horizontal, rotated) {
                        (true, _) => ((x + 4.0 * sign, y), (start_end(sign), VPos::Center), false),
                        (false, true) => {
                            ((x, y - 4.0 * sign), (start_end(sign), VPos::Center), true)
                        }
                        (false, false) => {
                            let vp = if v >= 0.0 { VPos::Bottom } else { VPos::Top };
                            ((x, y - 4.0 * sign), (HPos::Center, vp), false)
                        }
                    };
                    let mut st = base.pos(Pos::new(pos.0, pos.1));
                    if turn {
                        st = st.transform(FontTransform::Rotate270);
                    }
                    (self.label(v), at, st)
                } else {
                    let (v0, v1) = (a, b);
                    let label = self.label(v1 - v0);
                    let (p0, p1) = (
                        px(self.pt(self.cat(c, 0.5), v0)),
                        px(self.pt(self.cat(c, 0.5), v1)),
                    );
                    let len = if self.horizontal {
                        (p1.0 - p0.0).abs()
                    } else {
                        (p1.1 - p0.1).abs()
                    };
                    let thick = frac * f64::from(px_w) / self.vals.len() as f64;
                    let w = width(&label, VALUE_SIZE, false)?;
                    let thick = if self.horizontal {
                        let (_, h) = chart.plotting_area().dim_in_pixel();
                        frac * f64::from(h) / self.vals.len() as f64
                    } else {
                        thick
                    };
                    let fits = if self.horizontal {
                        len >= w + 6.0 && thick >= em(VALUE_SIZE) + 2.0
                    } else {
                        len >= em(VALUE_SIZE) + 2.0 && thick >= w + 6.0
                    };
                    if !fits {
                        continue;
                    }
                    let at = ((p0.0 + p1.0) / 2.0, (p0.1 + p1.1) / 2.0);
                    let st = base.pos(Pos::new(HPos::Center, VPos::Center));
                    (label, at, st.color(&fg))
                };
                let at = (at.0.round() as i32, at.1.round() as i32);
                root.draw(&Text::new(label, at, st)).map_err(err)?;
            }
        }
        Ok(())
    }
}

fn start_end(sign: f64) -> HPos {
    if sign > 0.0 { HPos::Left } else { HPos::Right }
}

#[allow(dead_code)]
fn _unused(_: RGBColor) {}
