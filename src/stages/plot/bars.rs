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

    fn width(&self) -> f64 {
        let cols = self.names.len().div_ceil(self.rows.max(1)) as f64;
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
            let (tx, h) =
                [(x, HPos::Left), (x + self.width() / 2.0, HPos::Center)][usize::from(self.bottom)];
            let st = style(TICK_SIZE, true, TEXT).pos(Pos::new(h, VPos::Top));
            text(root, t, (tx, y), &st)?;
        }
        for (col, names) in self.names.chunks(self.rows.max(1)).enumerate() {
            let x0 = x + col as f64 * (self.item_w + LEGEND_GAP);
            let at = (x0.round() as i32, (y + self.title_h()).round() as i32);
            let size = (self.item_w as u32 + 1, self.height() as u32);
            let area = root.clone().shrink(at, size);
            let mut chart =
                (ChartBuilder::on(&area).build_cartesian_2d(0..1, 0..1)).map_err(err)?;
            for (i, name) in names.iter().enumerate() {
                let c = series_color(col * self.rows + i).filled();
                let swatch = move |(x, y)| {
                    Rectangle::new([(x, y - SWATCH / 2), (x + SWATCH, y + SWATCH / 2)], c)
                };
                let empty = std::iter::empty::<Rectangle<(i32, i32)>>();
                let series = chart.draw_series(empty).map_err(err)?;
                series.label(name.as_str()).legend(swatch);
            }
            (chart.configure_series_labels())
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
    /// Stacked to 100 %: values and ticks print as percentages.
    percent: bool,
    /// `vals[c][s]`: the value of series `s` in category `c`, as drawn.
    vals: Vec<Vec<f64>>,
    axis: Axis,
    cat_desc: Option<String>,
    value_desc: Option<String>,
    legend: Option<Legend>,
    /// Decimals of the value labels, when they are shown.
    value_labels: Option<usize>,
}

/// A bar, or a segment of a stack: category `c`, series `s`, the fractions `a` of the category's
/// slot it spans and the values `v` it runs between.
struct Seg {
    c: usize,
    s: usize,
    a: (f64, f64),
    v: (f64, f64),
}

/// Lays out a bar chart.
pub fn layout(grid: &Grid, p: &Params) -> Result<Bars, String> {
    let mut vals = grid.cells.clone();
    let stacked = p.chart != Chart::Grouped;
    for (c, row) in vals.iter().enumerate().filter(|_| stacked) {
        if let Some((s, v)) = row.iter().enumerate().find(|(_, v)| **v < 0.0) {
            let series = grid.rows.get(s).filter(|r| !r.is_empty());
            let series = series.map(|r| format!(" / {r:?}")).unwrap_or_default();
            let cat = &grid.cols[c];
            return Err(format!(
                "stacked charts need non-negative values, but {cat:?}{series} is {v}"
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
    let legend = (p.series.is_some() && p.legend != Some(Place::None)).then(|| Legend {
        title: has(&p.legend_title),
        item_w: max_width(&grid.rows, TICK_SIZE, false) + f64::from(SWATCH + 6),
        names: grid.rows.clone(),
        rows: grid.rows.len(),
        bottom: p.legend == Some(Place::Bottom),
    });
    let value_labels = p.value_labels.unwrap_or(false);
    let mut bars = Bars {
        frame: Frame::default(),
        chart: p.chart,
        percent,
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
        let len = bars.frame.plot[if bars.horizontal { 2 } else { 3 }];
        let across = bars.horizontal || bars.rotated_values();
        let ext = 6.0 + [em(VALUE_SIZE), bars.value_label_width()][usize::from(across)];
        if len > 3.0 * ext {
            let e = ext / len;
            let up = f64::from(u8::from(dmax > 0.0));
            let down = f64::from(u8::from(dmin < 0.0));
            let range = (dmax - dmin) / (1.0 - (up + down) * e);
            bars.axis = Axis::new(dmin - down * e * range, dmax + up * e * range, TICKS);
            bars.geometry(grid, p)?;
        }
    }
    // The tick labels of horizontal bars stand side by side: fewer ticks while they would not
    // fit (14-digit values overlapped at 7 ticks).
    let crowded = |b: &Bars| match b.axis.ticks[..] {
        [t0, t1, ..] => {
            let apart = b.frame.plot[2] * (t1 - t0) / (b.axis.hi - b.axis.lo);
            apart < b.axis.label_width(percent) + 4.0
        }
        _ => false,
    };
    while bars.horizontal && bars.axis.max_ticks > 2 && crowded(&bars) {
        bars.axis = Axis::new(bars.axis.lo, bars.axis.hi, bars.axis.max_ticks - 1);
        bars.geometry(grid, p)?;
    }
    Ok(bars)
}

impl Bars {
    fn label(&self, v: f64) -> String {
        label(v, self.value_labels.unwrap_or(0), self.percent)
    }

    fn value_label_width(&self) -> f64 {
        let labels = self.vals.iter().flatten().map(|v| self.label(*v));
        max_width(labels, VALUE_SIZE, false)
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

    /// Grouped value labels over vertical bars turn vertical unless a pixel stays between the
    /// labels of neighbouring bars (a 1 px overlap was allowed, and two-digit labels touched).
    fn rotated_values(&self) -> bool {
        !self.horizontal && self.value_label_width() > self.bar_frac() * self.slot() - 1.0
    }

    /// Measures margins, label areas and the canvas.
    fn geometry(&mut self, grid: &Grid, p: &Params) -> Result<(), String> {
        let (n_cat, n_ser) = (grid.cols.len() as f64, grid.rows.len().max(1) as f64);
        let grouped = self.chart == Chart::Grouped;
        let tick_w = self.axis.label_width(self.percent);
        let (cat_desc, value_desc) = (desc(&self.cat_desc), desc(&self.value_desc));
        let (legend_w, legend_h) = match &self.legend {
            Some(l) if !l.bottom => (LEGEND_GAP + l.width(), l.height()),
            _ => (0.0, 0.0),
        };
        let legend = &mut self.legend;
        let below = |w: u32| match legend {
            Some(l) if l.bottom => {
                let room = f64::from(w) - 2.0 * MARGIN + LEGEND_GAP;
                let per_row = (room / (l.item_w + LEGEND_GAP)).floor().max(1.0) as usize;
                l.rows = l.names.len().div_ceil(per_row);
                GAP + l.height()
            }
            _ => 0.0,
        };
        // Value tick labels sit 2 tick lengths from the axis (plotters' rule).
        let ticks = 2.0 * TICK_LEN;
        self.frame = if self.horizontal {
            let right = MARGIN + legend_w.max(tick_w / 2.0);
            let cats = Cats::left(&grid.cols, p.width, MARGIN + cat_desc + right + 160.0);
            // The first tick label is centred on the plot's left edge.
            let left = (MARGIN + cat_desc + cats.depth()).max(MARGIN + tick_w / 2.0);
            let lines = cats.most_lines() as f64 * em(TICK_SIZE) * LINE;
            let slot = [30.0, (n_ser * 14.0 + 8.0).max(24.0)][usize::from(grouped)];
            let auto = (520.0, (n_cat * slot.max(lines + 6.0)).max(legend_h));
            let min = (160.0, n_cat * lines);
            let fixed = Below::Fixed(ticks + em(TICK_SIZE) + value_desc);
            Frame::new(p, (left, right), Some(cats), auto, min, fixed, below)?
        } else {
            let left = MARGIN + value_desc + tick_w + ticks;
            // A bar with a value label over it is at least as wide as a turned label is thick.
            let per_bar = [10.0, 14.0][usize::from(self.value_labels.is_some())];
            let (slot, min_slot) = match grouped {
                true => (
                    (n_ser * 18.0 + 20.0).max(64.0),
                    (n_ser * per_bar + 8.0).max(24.0),
                ),
                false => (64.0, 24.0),
            };
            // Wide slots let labels sit horizontally, but not at any price: past
            // MAX_AUTO_PLOT the slots shrink (to a minimum per bar) and long labels turn.
            let slot = slot.max((max_width(&grid.cols, TICK_SIZE, false) + 12.0).min(140.0));
            let auto_w = (n_cat * slot).min((n_cat * min_slot).max(MAX_AUTO_PLOT));
            let auto = (auto_w.max(360.0), 320f64.max(legend_h));
            let min = ((n_cat * 6.0).max(80.0), 80.0);
            let cats = Below::Cats(&grid.cols, cat_desc);
            Frame::new(p, (left, MARGIN + legend_w), None, auto, min, cats, below)?
        };
        Ok(())
    }

    /// A point in chart coordinates: fraction `f` of category `c`'s slot (the category axis
    /// runs upwards for horizontal bars, so the first category is on top) and value `v`.
    fn pt(&self, c: usize, f: f64, v: f64) -> (f64, f64) {
        match self.horizontal {
            true => (v, (self.vals.len() - c) as f64 - f),
            false => (c as f64 + f, v),
        }
    }

    /// Every bar and stack segment. The first series ends on top of a vertical stack (so the
    /// legend, read top to bottom, matches it) and on the left of a horizontal one.
    fn segments(&self) -> Vec<Seg> {
        let (frac, slot) = (self.bar_frac(), self.slot());
        let mut segs = Vec::new();
        for (c, row) in self.vals.iter().enumerate() {
            if self.chart == Chart::Grouped {
                let g0 = (1.0 - frac * row.len() as f64) / 2.0;
                let gap = f64::from(u8::from(frac * slot >= 6.0)) / slot;
                for (s, &v) in row.iter().enumerate() {
                    let (a, v) = (
                        (g0 + s as f64 * frac, g0 + (s + 1) as f64 * frac - gap),
                        (0.0, v),
                    );
                    segs.push(Seg { c, s, a, v });
                }
                continue;
            }
            let mut order: Vec<usize> = (0..row.len()).filter(|s| row[*s] > 0.0).collect();
            if !self.horizontal {
                order.reverse();
            }
            let (a, mut acc) = (((1.0 - frac) / 2.0, (1.0 + frac) / 2.0), 0.0);
            for s in order {
                let v = (acc, acc + row[s]);
                segs.push(Seg { c, s, a, v });
                acc = v.1;
            }
        }
        segs
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (n, lo, hi) = (self.vals.len() as f64, self.axis.lo, self.axis.hi);
        let (cats, values) = (0.0..n, lo..hi);
        let mut chart = match self.horizontal {
            true => self.frame.chart(root)?.build_cartesian_2d(values, cats),
            false => self.frame.chart(root)?.build_cartesian_2d(cats, values),
        }
        .map_err(err)?;
        let fmt = |v: &f64| label(*v, self.axis.decimals, self.percent);
        let mut mesh = chart.configure_mesh();
        mesh.bold_line_style(GRID)
            .max_light_lines(0)
            .axis_style(AXIS);
        mesh.set_all_tick_mark_size(TICK_LEN as u32);
        mesh.label_style(style(TICK_SIZE, false, TEXT));
        mesh.axis_desc_style(style(AXIS_SIZE, false, TEXT));
        // The value axis: ticks and grid lines; the category axis: its line only.
        let (mut x_desc, mut y_desc) = (&self.cat_desc, &self.value_desc);
        if self.horizontal {
            mesh.disable_y_mesh()
                .y_labels(0)
                .x_labels(self.axis.max_ticks);
            mesh.x_label_formatter(&fmt);
            (x_desc, y_desc) = (y_desc, x_desc);
        } else {
            mesh.disable_x_mesh().x_labels(0).y_labels(TICKS);
            mesh.y_label_formatter(&fmt);
        }
        x_desc.as_ref().map(|d| mesh.x_desc(d));
        y_desc.as_ref().map(|d| mesh.y_desc(d));
        mesh.draw().map_err(err)?;

        // Bars, and 1 px white separators between stacked segments.
        let segs = self.segments();
        let ends = |g: &Seg, v: f64| [self.pt(g.c, g.a.0, v), self.pt(g.c, g.a.1, v)];
        let corners = |g: &Seg| [ends(g, g.v.0)[0], ends(g, g.v.1)[1]];
        let rect = |g: &Seg| Rectangle::new(corners(g), series_color(g.s).filled());
        chart.draw_series(segs.iter().map(rect)).map_err(err)?;
        let seps = segs.iter().filter(|g| g.v.0 > 0.0);
        let seps = seps.map(|g| PathElement::new(ends(g, g.v.0), WHITE));
        chart.draw_series(seps).map_err(err)?;
        if lo < 0.0 {
            let zero = [self.pt(0, 0.0, 0.0), self.pt(self.vals.len(), 0.0, 0.0)];
            chart
                .draw_series([PathElement::new(zero, AXIS)])
                .map_err(err)?;
        }

        let px = |p: (f64, f64)| {
            let (x, y) = chart.backend_coord(&p);
            (f64::from(x), f64::from(y))
        };
        let centres: Vec<f64> = (0..self.vals.len())
            .map(|c| px(self.pt(c, 0.5, lo)))
            .map(|(x, y)| if self.horizontal { y } else { x })
            .collect();
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let area = (xs.clone(), ys.clone());
        self.frame.draw_cats(root, area, &centres, &centres)?;
        if self.value_labels.is_some() {
            self.draw_values(root, &segs, px)?;
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
        segs: &[Seg],
        px: impl Fn((f64, f64)) -> (f64, f64),
    ) -> Result<(), String> {
        let (base, rotated) = (style(VALUE_SIZE, false, TEXT), self.rotated_values());
        for g in segs {
            let v = g.v.1 - g.v.0;
            let mid = |v: f64| px(self.pt(g.c, (g.a.0 + g.a.1) / 2.0, v));
            let (p, q) = (mid(g.v.0), mid(g.v.1));
            if self.chart == Chart::Grouped {
                let (d, end, v_pos) = match v >= 0.0 {
                    true => (4.0, HPos::Left, VPos::Bottom),
                    false => (-4.0, HPos::Right, VPos::Top),
                };
                let (beside, up) = ((q.0 + d, q.1), (q.0, q.1 - d));
                let turned = base.pos(Pos::new(end, VPos::Center));
                let (at, st) = match (self.horizontal, rotated) {
                    (true, _) => (beside, turned),
                    (_, true) => (up, turned.transform(FontTransform::Rotate270)),
                    _ => (up, base.pos(Pos::new(HPos::Center, v_pos))),
                };
                text(root, &self.label(v), at, &st)?;
                continue;
            }
            let label = self.label(v);
            // The room the label needs along the bar and across it.
            let (mut along, mut across) =
                (em(VALUE_SIZE) + 2.0, width(&label, VALUE_SIZE, false) + 6.0);
            if self.horizontal {
                (along, across) = (across, along);
            }
            let len = (q.0 - p.0).abs() + (q.1 - p.1).abs();
            if len >= along && (g.a.1 - g.a.0) * self.slot() >= across {
                let fg = contrasting(series_color(g.s));
                let st = base.pos(Pos::new(HPos::Center, VPos::Center)).color(&fg);
                text(root, &label, ((p.0 + q.0) / 2.0, (p.1 + q.1) / 2.0), &st)?;
            }
        }
        Ok(())
    }
}
