//! Heatmaps on plotters' chart API: one cell per (row, column) pair, coloured on a sequential
//! colour-blind-safe scale and labelled with its value in black or white (whichever contrasts
//! more), and a colour bar on the right drawn as a chart of its own (its ticks from
//! `configure_mesh`). Row and column labels use the category-axis layout of bar charts. Cells
//! are sized from the data (label widths, number of rows) unless `width`/`height` fix the canvas.

use plotters::chart::{ChartBuilder, LabelAreaPosition};
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::Rectangle;
use plotters::prelude::DrawingBackend;
use plotters::style::Color;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::data::Grid;
use super::frame::{
    AXIS, AXIS_SIZE, Axis, Cats, ColorMap, GAP, MARGIN, TEXT, TICK_LEN, TICK_SIZE, Title, WHITE,
    builder, canvas_len, contrasting, em, err, fmt_num, label_decimals, plot_len, text,
};
use super::text::{max_width, style, width};

pub struct HeatSpec<'a> {
    pub title: Option<&'a str>,
    /// Title under the column labels (`x_label`).
    pub col_label: Option<&'a str>,
    /// Title left of the row labels (`y_label`).
    pub row_label: Option<&'a str>,
    /// Title above the colour bar (`legend_title`).
    pub scale_title: Option<&'a str>,
    pub colorbar: bool,
    pub colormap: ColorMap,
    pub decimals: Option<u8>,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// Largest and smallest cell label, as plotters font sizes.
const CELL_SIZE: f64 = 15.0;
const MIN_CELL_SIZE: f64 = 9.0;
const BAR_W: u32 = 14;
const BAR_GAP: f64 = 20.0;
const BAR_MAX_H: f64 = 240.0;
const BAR_TICKS: usize = 5;

/// A laid-out heatmap.
pub struct Heat {
    pub width: u32,
    pub height: u32,
    grid: Grid,
    labels: Vec<Vec<String>>,
    label_size: f64,
    colormap: ColorMap,
    lo: f64,
    hi: f64,
    bar: Option<(Axis, Option<String>)>,
    title: Title,
    cols: Cats,
    rows: Cats,
    col_desc: Option<String>,
    row_desc: Option<String>,
    /// Plot area: left, top, width, height, in pixels.
    plot: [f64; 4],
}

fn has(l: Option<&str>) -> Option<String> {
    l.filter(|l| !l.trim().is_empty()).map(str::to_string)
}

/// Lays out a heatmap of `grid` (columns = `x` categories, rows = `y` categories).
pub fn layout(grid: &Grid, spec: &HeatSpec<'_>) -> Result<Heat, String> {
    let (n_col, n_row) = (grid.cols.len() as f64, grid.rows.len() as f64);
    let values = || grid.cells.iter().flatten().copied();
    let decimals = label_decimals(spec.decimals, values());
    let labels: Vec<Vec<String>> = grid
        .cells
        .iter()
        .map(|col| col.iter().map(|v| fmt_num(*v, decimals)).collect())
        .collect();
    let val_w = max_width(
        labels.iter().flatten().map(String::as_str),
        CELL_SIZE,
        false,
    )?;
    let (dmin, dmax) = (
        values().fold(f64::INFINITY, f64::min),
        values().fold(f64::NEG_INFINITY, f64::max),
    );
    let lo = dmin.min(0.0);
    let hi = if dmax > lo { dmax } else { lo + 1.0 };
    let scale_title = has(spec.scale_title).filter(|_| spec.colorbar);
    let bar = spec.colorbar.then(|| {
        // The colour bar shows the ticks inside the data range only.
        let mut a = Axis::new(lo, hi, BAR_TICKS);
        a.ticks.retain(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9);
        a
    });

    let desc = em(AXIS_SIZE) * 1.1 + GAP;
    let row_desc = has(spec.row_label);
    let col_desc = has(spec.col_label);
    let rows = Cats::left(&grid.rows, None)?;
    let mut left = MARGIN + if row_desc.is_some() { desc } else { 0.0 } + rows.depth()?;
    let mut right = MARGIN;
    if let Some(a) = &bar {
        let ticks = BAR_GAP + f64::from(BAR_W) + 2.0 * TICK_LEN + a.label_width(false)?;
        let title = match &scale_title {
            Some(t) => BAR_GAP + width(t, TICK_SIZE, true)?,
            None => 0.0,
        };
        right += ticks.max(title);
    }
    let col_w = max_width(grid.cols.iter().map(String::as_str), TICK_SIZE, false)?;
    let auto_cell_w = (col_w + 12.0).max(val_w + 16.0).clamp(56.0, 150.0);
    let min_cell_w = (val_w * MIN_CELL_SIZE / CELL_SIZE + 4.0).max(16.0);
    let plot_w = plot_len(
        "width",
        spec.width,
        left + right,
        n_col * auto_cell_w,
        n_col * min_cell_w,
    )?;
    let need = Title::need(spec.title)?;
    if spec.width.is_none() && need > left + plot_w + right {
        // Centre the grid under a long title rather than stretching the cells.
        let extra = need - (left + plot_w + right);
        left += extra / 2.0;
        right += extra / 2.0;
    }
    let width = canvas_len(spec.width, left + plot_w + right);
    let title = Title::new(spec.title, f64::from(width) - 2.0 * MARGIN)?;
    let cols = Cats::below(&grid.cols, plot_w / n_col)?;
    let top = MARGIN + title.height().max(em(TICK_SIZE) / 2.0);
    let bottom = MARGIN + cols.depth()? + if col_desc.is_some() { desc } else { 0.0 };
    let plot_h = plot_len(
        "height",
        spec.height,
        top + bottom,
        n_row * (300.0 / n_row).clamp(26.0, 40.0),
        n_row * em(MIN_CELL_SIZE) * 1.3,
    )?;
    let height = canvas_len(spec.height, top + plot_h + bottom);
    let (cell_w, cell_h) = (plot_w / n_col, plot_h / n_row);
    let label_size = CELL_SIZE
        .min(cell_h * 0.62 * 1.24)
        .min(if val_w > 0.0 {
            CELL_SIZE * (cell_w - 6.0) / val_w
        } else {
            CELL_SIZE
        })
        .max(MIN_CELL_SIZE);
    Ok(Heat {
        width,
        height,
        grid: grid.clone(),
        labels,
        label_size,
        colormap: spec.colormap,
        lo,
        hi,
        bar: bar.map(|a| (a, scale_title)),
        title,
        cols,
        rows,
        col_desc,
        row_desc,
        plot: [left, top, plot_w, plot_h],
    })
}

impl Heat {
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        root.fill(&WHITE).map_err(err)?;
        self.title.draw(root)?;
        let [_, top, pw, ph] = self.plot;
        let (n_col, n_row) = (self.grid.cols.len(), self.grid.rows.len());
        let below = f64::from(self.height) - top - ph - MARGIN;
        let mut chart = builder(root, self.plot, below)
            .build_cartesian_2d(0.0..n_col as f64, 0.0..n_row as f64)
            .map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh()
            .disable_axes()
            .x_labels(0)
            .y_labels(0)
            .axis_desc_style(style(AXIS_SIZE, false, TEXT));
        if let Some(d) = &self.col_desc {
            mesh.x_desc(d.as_str());
        }
        if let Some(d) = &self.row_desc {
            mesh.y_desc(d.as_str());
        }
        mesh.draw().map_err(err)?;

        let px = |p: (f64, f64)| {
            let (x, y) = chart.backend_coord(&p);
            (f64::from(x), f64::from(y))
        };
        let (cw, ch) = (pw / n_col as f64, ph / n_row as f64);
        let gap = u32::from(cw >= 8.0 && ch >= 8.0);
        let span = self.hi - self.lo;
        let mut cells = Vec::new();
        let mut texts = Vec::new();
        for (c, col) in self.grid.cells.iter().enumerate() {
            for (rr, v) in col.iter().enumerate() {
                let y = (n_row - rr) as f64;
                let color = self.colormap.at((v - self.lo) / span);
                let mut cell =
                    Rectangle::new([(c as f64, y - 1.0), (c as f64 + 1.0, y)], color.filled());
                cell.set_margin(0, gap, 0, gap);
                cells.push(cell);
                let (x, y) = px((c as f64 + 0.5, y - 0.5));
                let at = (x - f64::from(gap) / 2.0, y - f64::from(gap) / 2.0);
                texts.push((self.labels[c][rr].as_str(), at, contrasting(color)));
            }
        }
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let cols: Vec<f64> = (0..n_col).map(|c| px((c as f64 + 0.5, 0.0)).0).collect();
        let rows: Vec<f64> = (0..n_row)
            .map(|r| px((0.0, (n_row - r) as f64 - 0.5)).1)
            .collect();
        chart.draw_series(cells).map_err(err)?;
        let base = style(self.label_size, false, TEXT).pos(Pos::new(HPos::Center, VPos::Center));
        for (t, at, color) in texts {
            text(root, t, at, &base.color(&color))?;
        }
        self.cols.draw(root, f64::from(ys.end), &cols)?;
        self.rows.draw(root, f64::from(xs.start), &rows)?;

        let r = |v: f64| v.round() as u32;
        if let Some((axis, title)) = &self.bar {
            let x = f64::from(xs.end) + BAR_GAP;
            let mut y = f64::from(ys.start);
            if let Some(t) = title {
                let s = style(TICK_SIZE, true, TEXT).pos(Pos::new(HPos::Left, VPos::Top));
                text(root, t, (x, y), &s)?;
                y += em(TICK_SIZE) * 1.5 + 4.0;
            }
            // Leave half a tick label of room at both ends of the bar.
            let y = (y + em(TICK_SIZE) / 2.0).round();
            let h = (f64::from(ys.end) - y - em(TICK_SIZE) / 2.0)
                .clamp(40.0, BAR_MAX_H)
                .round();
            let area = root
                .clone()
                .shrink((r(x) as i32, y as i32), (self.width - r(x), h as u32 + 1));
            let mut bar = ChartBuilder::on(&area)
                .set_label_area_size(LabelAreaPosition::Right, self.width - r(x) - BAR_W)
                .build_cartesian_2d(0.0..1.0, self.lo..self.hi)
                .map_err(err)?;
            let steps = h as usize;
            bar.draw_series((0..steps).map(|i| {
                let (a, b) = (i as f64 / h, (i + 1) as f64 / h);
                let c = self.colormap.at((a + b) / 2.0);
                let v = |f: f64| self.lo + f * span;
                Rectangle::new([(0.0, v(a)), (1.0, v(b))], c.filled())
            }))
            .map_err(err)?;
            let fmt = |v: &f64| fmt_num(*v, axis.decimals);
            bar.configure_mesh()
                .disable_mesh()
                .disable_x_axis()
                .y_labels(BAR_TICKS)
                .y_label_formatter(&fmt)
                .axis_style(AXIS)
                .set_all_tick_mark_size(TICK_LEN as u32)
                .label_style(style(TICK_SIZE, false, TEXT))
                .draw()
                .map_err(err)?;
        }
        Ok(())
    }
}
