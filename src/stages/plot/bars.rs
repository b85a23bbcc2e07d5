//! Bar charts (grouped, stacked, stacked to 100 %), vertical or horizontal, on plotters' chart
//! API: a `ChartBuilder` whose margins and label areas are measured from the labels, the value
//! axis from `configure_mesh`, bars as a series of rectangles, the legend from
//! `configure_series_labels` on an area of its own beside or below the plot.
//!
//! Categories run along a continuous `0..n` axis, category `c` on `c..c+1`: grouped bars need
//! fractions of a slot, and plotters' segmented coordinates map a lone category to pixel 0.
//! In a vertical stack the first series is on top (so the legend, read top to bottom, matches
//! the stack); in a horizontal stack it is on the left.

use plotters::chart::{ChartBuilder, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::{PathElement, Rectangle};
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontTransform};

use super::data::Grid;
use super::frame::{
    AXIS, AXIS_SIZE, Axis, Cats, GAP, GRID, LINE, MARGIN, TEXT, TICK_LEN, TICK_SIZE, TICKS, Title,
    VALUE_SIZE, WHITE, builder, canvas_len, contrasting, em, err, fmt_num, label_decimals,
    plot_len, series_color, text,
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
const MAX_AUTO_PLOT: f64 = 900.0;

/// The series legend, in columns of `rows` items (one column when it sits on the right).
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
        let cols = self.cols() as f64;
        let title = self
            .title
            .as_deref()
            .map_or(Ok(0.0), |t| width(t, TICK_SIZE, true))?;
        Ok((cols * self.item_w + (cols - 1.0) * LEGEND_GAP).max(title))
    }
    fn height(&self) -> f64 {
        self.title_h() + self.rows as f64 * LEGEND_LINE
    }

    /// Draws the legend with its top-left corner at `(x, y)`: each column is a chart of its
    /// own whose empty series carry the names and swatches.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        x: f64,
        y: f64,
    ) -> Result<(), String> {
        if let Some(t) = &self.title {
            let (tx, h) = if self.bottom {
                (x + self.width()? / 2.0, HPos::Center)
            } else {
                (x, HPos::Left)
            };
            text(
                root,
                t,
                (tx, y),
                &style(TICK_SIZE, true, TEXT).pos(Pos::new(h, VPos::Top)),
            )?;
        }
        for col in 0..self.cols() {
            let x0 = x + col as f64 * (self.item_w + LEGEND_GAP);
            let at = (x0.round() as i32, (y + self.title_h()).round() as i32);
            let area = root
                .clone()
                .shrink(at, (self.item_w as u32 + 1, self.height() as u32));
            let mut chart = ChartBuilder::on(&area)
                .build_cartesian_2d(0..1, 0..1)
                .map_err(err)?;
            for (i, name) in self
                .names
                .iter()
                .enumerate()
                .skip(col * self.rows)
                .take(self.rows)
            {
                let c = series_color(i);
                chart
                    .draw_series(std::iter::empty::<Rectangle<(i32, i32)>>())
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(move |(x, y)| {
                        Rectangle::new(
                            [(x, y - SWATCH / 2), (x + SWATCH, y + SWATCH / 2)],
                            c.filled(),
                        )
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
    /// The plot area `[left, top, width, height]` and the label area under it.
    plot: [f64; 4],
    below: f64,
}

fn has(l: Option<&str>) -> Option<String> {
    l.filter(|l| !l.trim().is_empty()).map(str::to_string)
}

/// Lays out a bar chart.
pub fn layout(grid: &Grid, spec: &BarSpec<'_>) -> Result<Bars, String> {
    let mut vals = grid.cells.clone();
    for (c, row) in vals
        .iter()
        .enumerate()
        .filter(|_| spec.mode != Mode::Grouped)
    {
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
    let percent = spec.mode == Mode::Stacked100;
    for row in vals.iter_mut().filter(|_| percent) {
        let total: f64 = row.iter().sum();
        if total > 0.0 {
            row.iter_mut().for_each(|v| *v = *v / total * 100.0);
        }
    }
    let all = || vals.iter().flatten().copied();
    let (dmin, dmax) = match spec.mode {
        Mode::Grouped => (all().fold(0.0, f64::min), all().fold(0.0, f64::max)),
        Mode::Stacked => (0.0, vals.iter().map(|r| r.iter().sum()).fold(0.0, f64::max)),
        Mode::Stacked100 => (0.0, 100.0),
    };
    let decimals = match percent {
        true => usize::from(spec.decimals.unwrap_or(0)),
        false => label_decimals(spec.decimals, all()),
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
        plot: [0.0; 4],
        below: 0.0,
    };
    bars.geometry(grid, spec)?;
    // Grouped bars carry their value labels beyond the bar's end: widen the value range so
    // that the longest label fits on each side that has bars.
    if spec.value_labels && spec.mode == Mode::Grouped {
        let lw = bars.value_label_width()?;
        let len = bars.plot[if spec.horizontal { 2 } else { 3 }];
        let ext = if spec.horizontal || bars.rotated_values()? {
            lw
        } else {
            em(VALUE_SIZE)
        } + 6.0;
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
    Ok(bars)
}

impl Bars {
    fn label(&self, v: f64) -> String {
        let pct = if self.mode == Mode::Stacked100 {
            "%"
        } else {
            ""
        };
        fmt_num(v, self.value_labels.unwrap_or(0)) + pct
    }

    fn value_label_width(&self) -> Result<f64, String> {
        let labels: Vec<String> = self.vals.iter().flatten().map(|v| self.label(*v)).collect();
        max_width(labels.iter().map(String::as_str), VALUE_SIZE, false)
    }

    /// A category slot in pixels.
    fn slot(&self) -> f64 {
        self.plot[if self.horizontal { 3 } else { 2 }] / self.vals.len() as f64
    }

    /// Width of one grouped bar, or of a stack, as a fraction of a category slot.
    fn bar_frac(&self) -> f64 {
        let n_ser = self.vals.first().map_or(1, Vec::len).max(1) as f64;
        match self.mode {
            Mode::Grouped => 0.8f64.min(MAX_BAR * n_ser / self.slot()) / n_ser,
            _ => 0.62f64.min(MAX_STACK / self.slot()),
        }
    }

    /// Grouped value labels over vertical bars turn vertical when wider than a bar.
    fn rotated_values(&self) -> Result<bool, String> {
        Ok(!self.horizontal && self.value_label_width()? > self.bar_frac() * self.slot() + 1.0)
    }

    /// Measures margins, label areas and the canvas.
    fn geometry(&mut self, grid: &Grid, spec: &BarSpec<'_>) -> Result<(), String> {
        let n_cat = grid.cols.len() as f64;
        let n_ser = grid.rows.len().max(1) as f64;
        let tick_w = self.axis.label_width(self.mode == Mode::Stacked100)?;
        let desc = |d: &Option<String>| {
            if d.is_some() {
                em(AXIS_SIZE) * 1.1 + GAP
            } else {
                0.0
            }
        };
        let (cat_desc, value_desc) = (desc(&self.cat_desc), desc(&self.value_desc));
        let legend_w = match &self.legend {
            Some(l) if !l.bottom => LEGEND_GAP + l.width()?,
            _ => 0.0,
        };
        // Value tick labels sit 2 tick lengths from the axis (plotters' rule).
        let ticks = 2.0 * TICK_LEN;
        let (left, right, auto_w, min_w, mut auto_h, min_h);
        if self.horizontal {
            right = MARGIN + legend_w.max(tick_w / 2.0);
            self.cats = Cats::left(&grid.cols, None)?;
            let room = spec
                .width
                .map_or(0.0, |w| f64::from(w) - MARGIN - cat_desc - right - 160.0);
            if spec.width.is_some() && self.cats.depth()? > room && room >= 60.0 {
                self.cats = Cats::left(&grid.cols, Some(room))?;
            }
            left = MARGIN + cat_desc + self.cats.depth()?;
            (auto_w, min_w) = (520.0, 160.0);
            let lines = self.cats.most_lines() as f64 * em(TICK_SIZE) * LINE;
            let slot = if self.mode == Mode::Grouped {
                (n_ser * 14.0 + 8.0).max(24.0)
            } else {
                30.0
            };
            (auto_h, min_h) = (n_cat * slot.max(lines + 6.0), n_cat * lines);
            self.below = ticks + em(TICK_SIZE) + value_desc;
        } else {
            left = MARGIN + value_desc + tick_w + ticks;
            right = MARGIN + legend_w;
            let cat_w = max_width(grid.cols.iter().map(String::as_str), TICK_SIZE, false)?;
            let (slot, min_slot) = match self.mode {
                Mode::Grouped => (
                    (n_ser * 18.0 + 20.0).max(64.0),
                    (n_ser * 10.0 + 8.0).max(24.0),
                ),
                _ => (64.0, 24.0),
            };
            // Wide slots let labels sit horizontally, but not at any price: past
            // MAX_AUTO_PLOT the slots shrink (to a minimum per bar) and long labels turn.
            let slot = slot.max((cat_w + 12.0).min(140.0));
            auto_w = (n_cat * slot)
                .min((n_cat * min_slot).max(MAX_AUTO_PLOT))
                .max(360.0);
            min_w = (n_cat * 6.0).max(80.0);
            (auto_h, min_h) = (320.0, 80.0);
        }
        let mut plot_w = plot_len("width", spec.width, left + right, auto_w, min_w)?;
        let need_title = Title::need(spec.title)?;
        if spec.width.is_none() && need_title > left + plot_w + right {
            plot_w = need_title - left - right;
        }
        if !self.horizontal {
            self.cats = Cats::below(&grid.cols, plot_w / n_cat)?;
            self.below = self.cats.depth()? + cat_desc;
        }
        self.width = canvas_len(spec.width, left + plot_w + right);
        self.title = Title::new(spec.title, f64::from(self.width) - 2.0 * MARGIN)?;
        let top = MARGIN + self.title.height().max(em(TICK_SIZE) / 2.0);
        let mut bottom = MARGIN;
        match &mut self.legend {
            Some(l) if l.bottom => {
                let room = f64::from(self.width) - 2.0 * MARGIN + LEGEND_GAP;
                let per_row = (room / (l.item_w + LEGEND_GAP)).floor().max(1.0) as usize;
                l.rows = l.names.len().div_ceil(per_row);
                bottom += GAP + l.height();
            }
            Some(l) => auto_h = auto_h.max(l.height()),
            None => {}
        }
        let plot_h = plot_len(
            "height",
            spec.height,
            top + self.below + bottom,
            auto_h,
            min_h,
        )?;
        self.height = canvas_len(spec.height, top + plot_h + self.below + bottom);
        self.plot = [left, top, plot_w, plot_h];
        Ok(())
    }

    /// Position `f` (0..1) in category `c`'s slot on the category axis (which runs upwards for
    /// horizontal bars, so the first category is on top).
    fn cat(&self, c: usize, f: f64) -> f64 {
        if self.horizontal {
            (self.vals.len() - c) as f64 - f
        } else {
            c as f64 + f
        }
    }

    /// A point from a category position and a value, in chart coordinates.
    fn pt(&self, cat: f64, v: f64) -> (f64, f64) {
        if self.horizontal { (v, cat) } else { (cat, v) }
    }

    /// The segments `(series, from, to)` of a stack: the first series ends on top of a
    /// vertical stack and on the left of a horizontal one.
    fn stack(&self, row: &[f64]) -> Vec<(usize, f64, f64)> {
        let mut order: Vec<usize> = (0..row.len()).filter(|s| row[*s] > 0.0).collect();
        if !self.horizontal {
            order.reverse();
        }
        let mut acc = 0.0;
        order
            .into_iter()
            .map(|s| {
                (s, acc, {
                    acc += row[s];
                    acc
                })
            })
            .collect()
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        self.title.draw(root)?;
        let n = self.vals.len() as f64;
        let (lo, hi) = (self.axis.lo, self.axis.hi);
        let (xr, yr) = if self.horizontal {
            (lo..hi, 0.0..n)
        } else {
            (0.0..n, lo..hi)
        };
        let mut chart = builder(root, self.plot, self.below)
            .build_cartesian_2d(xr, yr)
            .map_err(err)?;
        let fmt = |v: &f64| self.axis.label(*v, self.mode == Mode::Stacked100);
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
        let (mut rects, mut seps) = (Vec::new(), Vec::new());
        for (c, row) in self.vals.iter().enumerate() {
            if self.mode == Mode::Grouped {
                let g0 = (1.0 - frac * row.len() as f64) / 2.0;
                let gap = if frac * self.slot() >= 6.0 {
                    1.0 / self.slot()
                } else {
                    0.0
                };
                for (s, &v) in row.iter().enumerate() {
                    let (a0, a1) = (g0 + s as f64 * frac, g0 + (s + 1) as f64 * frac - gap);
                    rects.push((
                        self.pt(self.cat(c, a0), 0.0),
                        self.pt(self.cat(c, a1), v),
                        s,
                    ));
                }
            } else {
                let (a0, a1) = (
                    self.cat(c, (1.0 - frac) / 2.0),
                    self.cat(c, (1.0 + frac) / 2.0),
                );
                let segs = self.stack(row);
                for (i, &(s, v0, v1)) in segs.iter().enumerate() {
                    rects.push((self.pt(a0, v0), self.pt(a1, v1), s));
                    if i + 1 < segs.len() {
                        seps.push(PathElement::new(
                            vec![self.pt(a0, v1), self.pt(a1, v1)],
                            WHITE,
                        ));
                    }
                }
            }
        }
        let rects = rects
            .into_iter()
            .map(|(p, q, s)| Rectangle::new([p, q], series_color(s).filled()));
        chart.draw_series(rects).map_err(err)?;
        chart.draw_series(seps).map_err(err)?;
        if lo < 0.0 {
            let zero = PathElement::new(vec![self.pt(0.0, 0.0), self.pt(n, 0.0)], AXIS);
            chart.draw_series([zero]).map_err(err)?;
        }

        let px = |p: (f64, f64)| {
            let (x, y) = chart.backend_coord(&p);
            (f64::from(x), f64::from(y))
        };
        let centres: Vec<f64> = (0..self.vals.len())
            .map(|c| px(self.pt(self.cat(c, 0.5), lo)))
            .map(|(x, y)| if self.horizontal { y } else { x })
            .collect();
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let axis = if self.horizontal { xs.start } else { ys.end };
        self.cats.draw(root, f64::from(axis), &centres)?;
        if self.value_labels.is_some() {
            self.draw_values(root, px, frac)?;
        }
        match &self.legend {
            Some(l) if l.bottom => {
                let y = f64::from(ys.end) + self.below + GAP;
                l.draw(root, (f64::from(self.width) - l.width()?) / 2.0, y)
            }
            Some(l) => l.draw(root, f64::from(xs.end) + LEGEND_GAP, f64::from(ys.start)),
            None => Ok(()),
        }
    }

    /// Value labels: grouped bars at the bar's end (turned with the bar when wider than it),
    /// stacked segments inside, when the label fits.
    fn draw_values<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        px: impl Fn((f64, f64)) -> (f64, f64),
        frac: f64,
    ) -> Result<(), String> {
        let base = style(VALUE_SIZE, false, TEXT);
        let rotated = self.rotated_values()?;
        for (c, row) in self.vals.iter().enumerate() {
            if self.mode == Mode::Grouped {
                let g0 = (1.0 - frac * row.len() as f64) / 2.0;
                for (s, &v) in row.iter().enumerate() {
                    let (x, y) = px(self.pt(self.cat(c, g0 + (s as f64 + 0.5) * frac), v));
                    let (d, end) = if v >= 0.0 {
                        (4.0, HPos::Left)
                    } else {
                        (-4.0, HPos::Right)
                    };
                    let (at, st) = if self.horizontal {
                        ((x + d, y), base.pos(Pos::new(end, VPos::Center)))
                    } else if rotated {
                        let st = base.pos(Pos::new(end, VPos::Center));
                        ((x, y - d), st.transform(FontTransform::Rotate270))
                    } else {
                        let v_pos = if v >= 0.0 { VPos::Bottom } else { VPos::Top };
                        ((x, y - d), base.pos(Pos::new(HPos::Center, v_pos)))
                    };
                    text(root, &self.label(v), at, &st)?;
                }
                continue;
            }
            for (s, v0, v1) in self.stack(row) {
                let label = self.label(v1 - v0);
                let (p, q) = (
                    px(self.pt(self.cat(c, 0.5), v0)),
                    px(self.pt(self.cat(c, 0.5), v1)),
                );
                let (len, w) = (
                    (q.0 - p.0).abs() + (q.1 - p.1).abs(),
                    width(&label, VALUE_SIZE, false)?,
                );
                let (along, across) = (em(VALUE_SIZE) + 2.0, w + 6.0);
                let (along, across) = if self.horizontal {
                    (across, along)
                } else {
                    (along, across)
                };
                if len >= along && frac * self.slot() >= across {
                    let fg = contrasting(series_color(s));
                    let st = base.pos(Pos::new(HPos::Center, VPos::Center));
                    text(
                        root,
                        &label,
                        ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0),
                        &st.color(&fg),
                    )?;
                }
            }
        }
        Ok(())
    }
}
