//! Bar charts (grouped, stacked, stacked to 100 %), vertical or horizontal, on plotters' chart
//! API: the value axis from `configure_mesh`, bars as a series of rectangles, the legend from
//! `configure_series_labels` on an area of its own beside or below the plot.
//!
//! Categories run along a continuous `0..n` axis, category `c` on `c..c+1`: grouped bars need
//! fractions of a slot, and plotters' segmented coordinates map a lone category to pixel 0.

use plotters::chart::{ChartBuilder, SeriesLabelPosition};
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::{PathElement, Rectangle};
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, FontTransform};

use super::data::Grid;
use super::frame::{
    AXIS, AXIS_SIZE, Axis, Below, Cats, Frame, GAP, GRID, LINE, MARGIN, TEXT, TICK_LEN, TICK_SIZE,
    TICKS, VALUE_SIZE, WHITE, contrasting, desc, em, err, has, label, label_decimals, series_color,
    text,
};
use super::text::{max_width, style, width};
use super::{Chart, Legend as Place, Orientation, Params};

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
        f64::from(u8::from(self.title.is_some())) * LEGEND_LINE
    }
    fn cols(&self) -> usize {
        self.names.len().div_ceil(self.rows.max(1))
    }
    fn width(&self) -> f64 {
        let cols = self.cols() as f64;
        let title = (self.title.as_deref()).map_or(0.0, |t| width(t, TICK_SIZE, true));
        (cols * self.item_w + (cols - 1.0) * LEGEND_GAP).max(title)
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
            let (tx, h) = match self.bottom {
                true => (x + self.width() / 2.0, HPos::Center),
                false => (x, HPos::Left),
            };
            let st = style(TICK_SIZE, true, TEXT).pos(Pos::new(h, VPos::Top));
            text(root, t, (tx, y), &st)?;
        }
        for col in 0..self.cols() {
            let x0 = x + col as f64 * (self.item_w + LEGEND_GAP);
            let at = (x0.round() as i32, (y + self.title_h()).round() as i32);
            let size = (self.item_w as u32 + 1, self.height() as u32);
            let area = root.clone().shrink(at, size);
            let mut chart =
                (ChartBuilder::on(&area).build_cartesian_2d(0..1, 0..1)).map_err(err)?;
            let items = self.names.iter().enumerate().skip(col * self.rows);
            for (i, name) in items.take(self.rows) {
                let c = series_color(i).filled();
                let swatch = move |(x, y)| {
                    Rectangle::new([(x, y - SWATCH / 2), (x + SWATCH, y + SWATCH / 2)], c)
                };
                (chart.draw_series(std::iter::empty::<Rectangle<(i32, i32)>>()))
                    .map_err(err)?
                    .label(name.as_str())
                    .legend(swatch);
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
    pub frame: Frame,
    chart: Chart,
    horizontal: bool,
    /// `vals[c][s]`: the value of series `s` in category `c`, as drawn.
    vals: Vec<Vec<f64>>,
    axis: Axis,
    cat_desc: Option<String>,
    value_desc: Option<String>,
    legend: Option<Legend>,
    /// Decimals of the value labels, when they are shown.
    value_labels: Option<usize>,
}

/// Lays out a bar chart.
pub fn layout(grid: &Grid, p: &Params) -> Result<Bars, String> {
    let mut vals = grid.cells.clone();
    for (c, row) in vals
        .iter()
        .enumerate()
        .filter(|_| p.chart != Chart::Grouped)
    {
        if let Some((s, v)) = row.iter().enumerate().find(|(_, v)| **v < 0.0) {
            let series = grid.rows.get(s).filter(|r| !r.is_empty());
            let series = series.map(|r| format!(" / {r:?}")).unwrap_or_default();
            return Err(format!(
                "stacked charts need non-negative values, but {:?}{series} is {v}",
                grid.cols[c],
            ));
        }
    }
    let percent = p.chart == Chart::Stacked100;
    for row in vals.iter_mut().filter(|_| percent) {
        let total: f64 = row.iter().sum();
        if total > 0.0 {
            row.iter_mut().for_each(|v| *v = *v / total * 100.0);
        }
    }
    let all = || vals.iter().flatten().copied();
    let (dmin, dmax) = match p.chart {
        Chart::Stacked => (0.0, vals.iter().map(|r| r.iter().sum()).fold(0.0, f64::max)),
        Chart::Stacked100 => (0.0, 100.0),
        _ => (all().fold(0.0, f64::min), all().fold(0.0, f64::max)),
    };
    let decimals = match percent {
        true => usize::from(p.decimals.unwrap_or(0)),
        false => label_decimals(p.decimals, all()),
    };
    let legend = match p.legend {
        _ if p.series.is_none() => None,
        Some(Place::None) => None,
        pos => Some(Legend {
            title: has(&p.legend_title),
            item_w: max_width(&grid.rows, TICK_SIZE, false) + f64::from(SWATCH + 6),
            names: grid.rows.clone(),
            rows: grid.rows.len(),
            bottom: pos == Some(Place::Bottom),
        }),
    };
    let value_labels = p.value_labels.unwrap_or(false);
    let mut bars = Bars {
        frame: Frame::default(),
        chart: p.chart,
        horizontal: p.orientation == Some(Orientation::Horizontal),
        vals,
        axis: Axis::new(dmin, dmax, TICKS),
        cat_desc: has(&p.x_label),
        value_desc: has(&p.y_label),
        legend,
        value_labels: value_labels.then_some(decimals),
    };
    bars.geometry(grid, p)?;
    // Grouped bars carry their value labels beyond the bar's end: widen the value range so
    // that the longest label fits on each side that has bars.
    if value_labels && p.chart == Chart::Grouped {
        let lw = bars.value_label_width();
        let len = bars.frame.plot[if bars.horizontal { 2 } else { 3 }];
        let ext = match bars.horizontal || bars.rotated_values() {
            true => lw,
            false => em(VALUE_SIZE),
        } + 6.0;
        if len > 3.0 * ext {
            let e = ext / len;
            let up = f64::from(u8::from(dmax > 0.0));
            let down = f64::from(u8::from(dmin < 0.0));
            let range = (dmax - dmin) / (1.0 - (up + down) * e);
            bars.axis = Axis::new(dmin - down * e * range, dmax + up * e * range, TICKS);
            bars.geometry(grid, p)?;
        }
    }
    Ok(bars)
}

impl Bars {
    fn label(&self, v: f64) -> String {
        label(
            v,
            self.value_labels.unwrap_or(0),
            self.chart == Chart::Stacked100,
        )
    }

    fn value_label_width(&self) -> f64 {
        max_width(
            self.vals.iter().flatten().map(|v| self.label(*v)),
            VALUE_SIZE,
            false,
        )
    }

    /// A category slot in pixels.
    fn slot(&self) -> f64 {
        self.frame.plot[if self.horizontal { 3 } else { 2 }] / self.vals.len() as f64
    }

    /// Width of one grouped bar, or of a stack, as a fraction of a category slot.
    fn bar_frac(&self) -> f64 {
        let n_ser = self.vals.first().map_or(1, Vec::len).max(1) as f64;
        match self.chart {
            Chart::Grouped => 0.8f64.min(MAX_BAR * n_ser / self.slot()) / n_ser,
            _ => 0.62f64.min(MAX_STACK / self.slot()),
        }
    }

    /// Grouped value labels over vertical bars turn vertical when wider than a bar.
    fn rotated_values(&self) -> bool {
        !self.horizontal && self.value_label_width() > self.bar_frac() * self.slot() + 1.0
    }

    /// Measures margins, label areas and the canvas.
    fn geometry(&mut self, grid: &Grid, p: &Params) -> Result<(), String> {
        let n_cat = grid.cols.len() as f64;
        let n_ser = grid.rows.len().max(1) as f64;
        let grouped = self.chart == Chart::Grouped;
        let tick_w = self.axis.label_width(self.chart == Chart::Stacked100);
        let (cat_desc, value_desc) = (desc(&self.cat_desc), desc(&self.value_desc));
        let (legend_w, legend_h) = match &self.legend {
            Some(l) if !l.bottom => (LEGEND_GAP + l.width(), l.height()),
            _ => (0.0, 0.0),
        };
        // Value tick labels sit 2 tick lengths from the axis (plotters' rule).
        let ticks = 2.0 * TICK_LEN;
        let legend = &mut self.legend;
        let bottom = |w: u32| match legend {
            Some(l) if l.bottom => {
                let room = f64::from(w) - 2.0 * MARGIN + LEGEND_GAP;
                let per_row = (room / (l.item_w + LEGEND_GAP)).floor().max(1.0) as usize;
                l.rows = l.names.len().div_ceil(per_row);
                GAP + l.height()
            }
            _ => 0.0,
        };
        self.frame = if self.horizontal {
            let right = MARGIN + legend_w.max(tick_w / 2.0);
            let cats = Cats::left(&grid.cols, p.width, MARGIN + cat_desc + right + 160.0);
            let left = MARGIN + cat_desc + cats.depth();
            let lines = cats.most_lines() as f64 * em(TICK_SIZE) * LINE;
            let slot = if grouped {
                (n_ser * 14.0 + 8.0).max(24.0)
            } else {
                30.0
            };
            let (auto_h, min_h) = (n_cat * slot.max(lines + 6.0), n_cat * lines);
            let below = Below::Fixed(ticks + em(TICK_SIZE) + value_desc);
            let (auto, min) = ((520.0, auto_h.max(legend_h)), (160.0, min_h));
            Frame::new(p, (left, right), Some(cats), auto, min, below, bottom)?
        } else {
            let left = MARGIN + value_desc + tick_w + ticks;
            let cat_w = max_width(&grid.cols, TICK_SIZE, false);
            let (slot, min_slot) = match grouped {
                true => (
                    (n_ser * 18.0 + 20.0).max(64.0),
                    (n_ser * 10.0 + 8.0).max(24.0),
                ),
                false => (64.0, 24.0),
            };
            // Wide slots let labels sit horizontally, but not at any price: past
            // MAX_AUTO_PLOT the slots shrink (to a minimum per bar) and long labels turn.
            let slot = slot.max((cat_w + 12.0).min(140.0));
            let auto_w = (n_cat * slot)
                .min((n_cat * min_slot).max(MAX_AUTO_PLOT))
                .max(360.0);
            let (auto, min) = (
                (auto_w, 320f64.max(legend_h)),
                ((n_cat * 6.0).max(80.0), 80.0),
            );
            let (sides, below) = ((left, MARGIN + legend_w), Below::Cats(&grid.cols, cat_desc));
            Frame::new(p, sides, None, auto, min, below, bottom)?
        };
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
    /// vertical stack (so the legend, read top to bottom, matches it) and on the left of a
    /// horizontal one.
    fn stack(&self, row: &[f64]) -> Vec<(usize, f64, f64)> {
        let mut order: Vec<usize> = (0..row.len()).filter(|s| row[*s] > 0.0).collect();
        if !self.horizontal {
            order.reverse();
        }
        let mut acc = 0.0;
        let mut seg = |s: usize| {
            let from = acc;
            acc += row[s];
            (s, from, acc)
        };
        order.into_iter().map(&mut seg).collect()
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let n = self.vals.len() as f64;
        let (lo, hi) = (self.axis.lo, self.axis.hi);
        let (xr, yr) = if self.horizontal {
            (lo..hi, 0.0..n)
        } else {
            (0.0..n, lo..hi)
        };
        let mut chart = (self.frame.chart(root)?.build_cartesian_2d(xr, yr)).map_err(err)?;
        let fmt = |v: &f64| label(*v, self.axis.decimals, self.chart == Chart::Stacked100);
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
            if self.chart == Chart::Grouped {
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
                continue;
            }
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
        let rects =
            (rects.into_iter()).map(|(p, q, s)| Rectangle::new([p, q], series_color(s).filled()));
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
        self.frame
            .draw_cats(root, (xs.clone(), ys.clone()), &centres, &centres)?;
        if self.value_labels.is_some() {
            self.draw_values(root, px, frac)?;
        }
        match &self.legend {
            Some(l) if l.bottom => {
                let y = f64::from(ys.end) + self.frame.below + GAP;
                l.draw(root, (f64::from(self.frame.width) - l.width()) / 2.0, y)
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
        let rotated = self.rotated_values();
        for (c, row) in self.vals.iter().enumerate() {
            if self.chart == Chart::Grouped {
                let g0 = (1.0 - frac * row.len() as f64) / 2.0;
                for (s, &v) in row.iter().enumerate() {
                    let (x, y) = px(self.pt(self.cat(c, g0 + (s as f64 + 0.5) * frac), v));
                    let (d, end, v_pos) = match v >= 0.0 {
                        true => (4.0, HPos::Left, VPos::Bottom),
                        false => (-4.0, HPos::Right, VPos::Top),
                    };
                    let (at, st) = if self.horizontal {
                        ((x + d, y), base.pos(Pos::new(end, VPos::Center)))
                    } else if rotated {
                        let st = base.pos(Pos::new(end, VPos::Center));
                        ((x, y - d), st.transform(FontTransform::Rotate270))
                    } else {
                        ((x, y - d), base.pos(Pos::new(HPos::Center, v_pos)))
                    };
                    text(root, &self.label(v), at, &st)?;
                }
                continue;
            }
            for (s, v0, v1) in self.stack(row) {
                let label = self.label(v1 - v0);
                let p = px(self.pt(self.cat(c, 0.5), v0));
                let q = px(self.pt(self.cat(c, 0.5), v1));
                let len = (q.0 - p.0).abs() + (q.1 - p.1).abs();
                let (along, across) =
                    (em(VALUE_SIZE) + 2.0, width(&label, VALUE_SIZE, false) + 6.0);
                let (along, across) = match self.horizontal {
                    true => (across, along),
                    false => (along, across),
                };
                if len >= along && frac * self.slot() >= across {
                    let st = base.pos(Pos::new(HPos::Center, VPos::Center));
                    let fg = contrasting(series_color(s));
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
