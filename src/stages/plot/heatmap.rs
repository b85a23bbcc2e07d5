//! Heatmaps on plotters' chart API: one cell per (row, column) pair, coloured on a sequential
//! colour-blind-safe scale and labelled with its value in black or white (whichever contrasts
//! more), and a colour bar on the right drawn as a chart of its own (its ticks from
//! `configure_mesh`). Rows and columns are laid out as the categories of bar charts.

use plotters::chart::{ChartBuilder, LabelAreaPosition};
use plotters::coord::Shift;
use plotters::drawing::DrawingArea;
use plotters::element::Rectangle;
use plotters::prelude::DrawingBackend;
use plotters::style::colors::colormaps::{ColorMap as _, DerivedColorMap, ViridisRGB};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{Color, RGBColor};

use super::data::Grid;
use super::frame::{
    AXIS, AXIS_SIZE, Axis, Below, Cats, Frame, MARGIN, TEXT, TICK_LEN, TICK_SIZE, contrasting,
    desc, em, err, has, hex, label, label_decimals, text,
};
use super::text::{max_width, style, width};
use super::{Colormap, Legend, Params};

/// Largest and smallest cell label, as plotters font sizes.
const CELL_SIZE: f64 = 15.0;
const MIN_CELL_SIZE: f64 = 9.0;
const BAR_W: u32 = 14;
const BAR_GAP: f64 = 20.0;
const BAR_MAX_H: f64 = 240.0;
const BAR_TICKS: usize = 5;

/// cividis, 10 evenly spaced samples (R's `cividis(10)`); plotters ships viridis but not cividis.
const CIVIDIS: [u32; 10] = [
    0x00204D, 0x00336F, 0x39486B, 0x575C6D, 0x707173, 0x8A8779, 0xA69D75, 0xC4B56C, 0xE4CF5B,
    0xFFEA46,
];

impl Colormap {
    /// Colour at `t` in 0..=1 (clamped).
    fn at(self, t: f64) -> RGBColor {
        let t = if matches!(self, Colormap::ViridisR | Colormap::CividisR) {
            1.0 - t
        } else {
            t
        };
        match self {
            Colormap::Viridis | Colormap::ViridisR => ViridisRGB.get_color_normalized(t, 0.0, 1.0),
            _ => DerivedColorMap::new(&CIVIDIS.map(hex)).get_color_normalized(t, 0.0, 1.0),
        }
    }
}

/// A laid-out heatmap.
pub struct Heat {
    pub frame: Frame,
    grid: Grid,
    labels: Vec<Vec<String>>,
    label_size: f64,
    colormap: Colormap,
    lo: f64,
    hi: f64,
    bar: Option<(Axis, Option<String>)>,
    col_desc: Option<String>,
    row_desc: Option<String>,
}

/// Lays out a heatmap of `grid` (columns = `x` categories, rows = `y` categories).
pub fn layout(grid: &Grid, p: &Params) -> Result<Heat, String> {
    let (n_col, n_row) = (grid.cols.len() as f64, grid.rows.len() as f64);
    let values = || grid.cells.iter().flatten().copied();
    let decimals = label_decimals(p.decimals, values());
    let labels: Vec<Vec<String>> = (grid.cells.iter())
        .map(|col| col.iter().map(|v| label(*v, decimals, false)).collect())
        .collect();
    let val_w = max_width(labels.iter().flatten(), CELL_SIZE, false);
    let dmin = values().fold(f64::INFINITY, f64::min);
    let dmax = values().fold(f64::NEG_INFINITY, f64::max);
    let lo = dmin.min(0.0);
    let hi = if dmax > lo { dmax } else { lo + 1.0 };
    let colorbar = p.legend != Some(Legend::None);
    let scale_title = has(&p.legend_title).filter(|_| colorbar);
    let bar = colorbar.then(|| {
        // The colour bar shows the ticks inside the data range only.
        let mut a = Axis::new(lo, hi, BAR_TICKS);
        a.ticks.retain(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9);
        a
    });
    let (row_desc, col_desc) = (has(&p.y_label), has(&p.x_label));
    let title_w = scale_title
        .as_ref()
        .map_or(0.0, |t| width(t, TICK_SIZE, true));
    let ticks_w = |a: &Axis| f64::from(BAR_W) + 2.0 * TICK_LEN + a.label_width(false);
    let right = MARGIN
        + bar
            .as_ref()
            .map_or(0.0, |a| BAR_GAP + title_w.max(ticks_w(a)));
    let col_w = max_width(&grid.cols, TICK_SIZE, false);
    let auto_cell_w = (col_w + 12.0).max(val_w + 16.0).clamp(56.0, 150.0);
    let min_cell_w = (val_w * MIN_CELL_SIZE / CELL_SIZE + 4.0).max(16.0);
    let beside = MARGIN + desc(&row_desc);
    let rows = Cats::left(&grid.rows, p.width, beside + right + n_col * min_cell_w);
    let left = beside + rows.depth();
    // The colour bar beside the plot needs 1.15 em per tick, its title and half a label at each
    // end (a one-row heatmap had its ticks on top of each other).
    let bar_h = bar.as_ref().map_or(0.0, |a| {
        let title = f64::from(u8::from(scale_title.is_some())) * (em(TICK_SIZE) * 1.5 + 4.0);
        (a.ticks.len() as f64 - 1.0) * 1.15 * em(TICK_SIZE) + em(TICK_SIZE) + title
    });
    let auto = (
        n_col * auto_cell_w,
        (n_row * (300.0 / n_row).clamp(26.0, 40.0)).max(bar_h),
    );
    let min = (n_col * min_cell_w, n_row * em(MIN_CELL_SIZE) * 1.3);
    let below = Below::Cats(&grid.cols, desc(&col_desc));
    let frame = Frame::new(p, (left, right), Some(rows), auto, min, below, |_| 0.0)?;
    let (cell_w, cell_h) = (frame.plot[2] / n_col, frame.plot[3] / n_row);
    // The cell labels shrink (to MIN_CELL_SIZE) to fit the cells.
    let fit_w = CELL_SIZE * (cell_w - 6.0) / val_w.max(1e-9);
    let label_size = CELL_SIZE
        .min(cell_h * 0.62 * 1.24)
        .min(fit_w)
        .max(MIN_CELL_SIZE);
    let (colormap, bar, grid) = (
        p.colormap.unwrap_or(Colormap::Viridis),
        bar.map(|a| (a, scale_title)),
        grid.clone(),
    );
    Ok(Heat {
        frame,
        grid,
        labels,
        label_size,
        colormap,
        lo,
        hi,
        bar,
        col_desc,
        row_desc,
    })
}

impl Heat {
    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (n_col, n_row) = (self.grid.cols.len(), self.grid.rows.len());
        let mut builder = self.frame.chart(root)?;
        let chart = builder.build_cartesian_2d(0.0..n_col as f64, 0.0..n_row as f64);
        let mut chart = chart.map_err(err)?;
        let mut mesh = chart.configure_mesh();
        mesh.disable_mesh().disable_axes().x_labels(0).y_labels(0);
        mesh.axis_desc_style(style(AXIS_SIZE, false, TEXT));
        self.col_desc.as_ref().map(|d| mesh.x_desc(d));
        self.row_desc.as_ref().map(|d| mesh.y_desc(d));
        mesh.draw().map_err(err)?;

        let px = |p: (f64, f64)| {
            let (x, y) = chart.backend_coord(&p);
            (f64::from(x), f64::from(y))
        };
        let [_, _, pw, ph] = self.frame.plot;
        let gap = u32::from(pw / n_col as f64 >= 8.0 && ph / n_row as f64 >= 8.0);
        let span = self.hi - self.lo;
        let (mut cells, mut texts) = (Vec::new(), Vec::new());
        for (c, col) in self.grid.cells.iter().enumerate() {
            for (r, v) in col.iter().enumerate() {
                let (x, y) = (c as f64, (n_row - r) as f64);
                let color = self.colormap.at((v - self.lo) / span);
                let mut cell = Rectangle::new([(x, y - 1.0), (x + 1.0, y)], color.filled());
                cell.set_margin(0, gap, 0, gap);
                cells.push(cell);
                let (x, y) = px((x + 0.5, y - 0.5));
                let at = (x - f64::from(gap) / 2.0, y - f64::from(gap) / 2.0);
                texts.push((self.labels[c][r].as_str(), at, contrasting(color)));
            }
        }
        let (xs, ys) = chart.plotting_area().get_pixel_range();
        let cols: Vec<f64> = (0..n_col).map(|c| px((c as f64 + 0.5, 0.0)).0).collect();
        let row = |r: usize| px((0.0, (n_row - r) as f64 - 0.5)).1;
        let rows: Vec<f64> = (0..n_row).map(row).collect();
        chart.draw_series(cells).map_err(err)?;
        let base = style(self.label_size, false, TEXT).pos(Pos::new(HPos::Center, VPos::Center));
        for (t, at, color) in texts {
            text(root, t, at, &base.color(&color))?;
        }
        let area = (xs.clone(), ys.clone());
        self.frame.draw_cats(root, area, &rows, &cols)?;

        let Some((axis, title)) = &self.bar else {
            return Ok(());
        };
        let (x, mut y) = (f64::from(xs.end) + BAR_GAP, f64::from(ys.start));
        if let Some(t) = title {
            text(root, t, (x, y), &style(TICK_SIZE, true, TEXT))?;
            y += em(TICK_SIZE) * 1.5 + 4.0;
        }
        // Leave half a tick label of room at both ends of the bar.
        let y = (y + em(TICK_SIZE) / 2.0).round();
        let h = f64::from(ys.end) - y - em(TICK_SIZE) / 2.0;
        let h = h.clamp(40.0, BAR_MAX_H).round();
        let (x, width) = (x.round() as u32, self.frame.width);
        let area = (root.clone()).shrink((x as i32, y as i32), (width - x, h as u32 + 1));
        let mut bar = (ChartBuilder::on(&area))
            .set_label_area_size(LabelAreaPosition::Right, width - x - BAR_W)
            .build_cartesian_2d(0.0..1.0, self.lo..self.hi)
            .map_err(err)?;
        let v = |f: f64| self.lo + f * span;
        let strip = |i: usize| {
            let (i, color) = (i as f64, self.colormap.at((i as f64 + 0.5) / h));
            Rectangle::new([(0.0, v(i / h)), (1.0, v((i + 1.0) / h))], color.filled())
        };
        bar.draw_series((0..h as usize).map(strip)).map_err(err)?;
        let fmt = |v: &f64| label(*v, axis.decimals, false);
        (bar.configure_mesh().disable_mesh().disable_x_axis())
            .y_labels(BAR_TICKS)
            .y_label_formatter(&fmt)
            .axis_style(AXIS)
            .set_all_tick_mark_size(TICK_LEN as u32)
            .label_style(style(TICK_SIZE, false, TEXT))
            .draw()
            .map_err(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_maps_end_on_their_stops() {
        assert_eq!(Colormap::Viridis.at(0.0), RGBColor(68, 1, 84));
        assert_eq!(Colormap::Viridis.at(1.0), RGBColor(254, 232, 37));
        assert_eq!(Colormap::ViridisR.at(0.0), RGBColor(254, 232, 37));
        assert_eq!(Colormap::Cividis.at(2.0), hex(0xFFEA46));
        assert_eq!(Colormap::CividisR.at(0.0), hex(0xFFEA46));
    }
}
