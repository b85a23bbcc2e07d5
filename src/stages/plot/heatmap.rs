//! Heatmaps: one cell per (row, column) pair, coloured on a sequential colour-blind-safe scale
//! and labelled with its value in black or white (whichever contrasts more), a colour bar on the
//! right. Cells are sized from the data (label widths, number of rows) unless `width`/`height`
//! fix the canvas.

use super::data::Grid;
use super::frame::{
    AXIS_SIZE, GAP, LEGEND_SIZE, LINE, MARGIN, MAX_AUTO_WIDTH, TICK_GAP, TICK_LEN, TICK_SIZE,
    Title, canvas_len, plot_len, title_need,
};
use super::scale::{ColorMap, Ticks, fmt_num, label_decimals};
use super::scene::{ASCENT, Anchor, DESCENT, Rect, Rgb, Scene, Text, max_width, text_width, wrap};

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

const CELL_SIZE: f64 = 14.0;
const MIN_CELL_SIZE: f64 = 8.0;
const BAR_W: f64 = 14.0;
const BAR_GAP: f64 = 20.0;
const BAR_MAX_H: f64 = 240.0;

fn mid_baseline(cy: f64, size: f64) -> f64 {
    cy + (ASCENT - DESCENT) / 2.0 * size
}

/// Lays out a heatmap of `grid` (columns = `x` categories, rows = `y` categories).
pub fn layout(grid: &Grid, spec: &HeatSpec<'_>) -> Result<Scene, String> {
    let n_col = grid.cols.len() as f64;
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
    let dmin = values().fold(f64::INFINITY, f64::min);
    let dmax = values().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) = {
        let lo = if dmin >= 0.0 { 0.0 } else { dmin };
        if dmax > lo {
            (lo, dmax)
        } else {
            (lo, lo + 1.0)
        }
    };
    let bar_ticks = Ticks::nice(lo, hi, 4, values().all(|v| v.fract() == 0.0));
    let bar_tick_values: Vec<f64> = bar_ticks
        .values()
        .into_iter()
        .filter(|t| *t >= lo - 1e-9 && *t <= hi + 1e-9)
        .collect();
    let bar_tick_labels: Vec<String> = bar_tick_values
        .iter()
        .map(|t| fmt_num(*t, bar_ticks.decimals))
        .collect();

    let has = |l: Option<&str>| l.is_some_and(|l| !l.trim().is_empty());
    let scale_title = spec
        .scale_title
        .filter(|t| !t.trim().is_empty() && spec.colorbar);
    let line_h = TICK_SIZE * LINE;

    // Horizontal extents.
    let row_w = max_width(grid.rows.iter().map(String::as_str), TICK_SIZE, false)?;
    let beside = if has(spec.row_label) {
        AXIS_SIZE + GAP
    } else {
        0.0
    };
    let left = MARGIN + beside + row_w + 2.0 * TICK_GAP;
    let right = MARGIN
        + if spec.colorbar {
            let ticks = BAR_GAP
                + BAR_W
                + TICK_LEN
                + TICK_GAP
                + max_width(bar_tick_labels.iter().map(String::as_str), TICK_SIZE, false)?;
            let title = match scale_title {
                Some(t) => BAR_GAP + text_width(t, LEGEND_SIZE, true)?,
                None => 0.0,
            };
            ticks.max(title)
        } else {
            0.0
        };
    let col_w = max_width(grid.cols.iter().map(String::as_str), TICK_SIZE, false)?;
    let auto_cell_w = (col_w + 12.0).max(val_w + 16.0).clamp(56.0, 150.0);
    let plot_w = plot_len(
        "width",
        spec.width,
        left + right,
        n_col * auto_cell_w,
        n_col * (val_w * MIN_CELL_SIZE / CELL_SIZE + 4.0).max(16.0),
    )?;
    let need_title = title_need(spec.title)?.min(MAX_AUTO_WIDTH);
    let content_w = left + plot_w + right;
    let (mut left, mut right) = (left, right);
    if spec.width.is_none() && need_title > content_w {
        // Centre the grid under a long title rather than stretching the cells.
        let extra = need_title - content_w;
        left += extra / 2.0;
        right += extra / 2.0;
    }
    finish(
        grid,
        spec,
        Frame {
            left,
            right,
            plot_w,
        },
        Shared {
            labels: &labels,
            val_w,
            lo,
            hi,
            bar_tick_values: &bar_tick_values,
            bar_tick_labels: &bar_tick_labels,
            scale_title,
            line_h,
        },
    )
}

struct Frame {
    left: f64,
    right: f64,
    plot_w: f64,
}

struct Shared<'a> {
    labels: &'a [Vec<String>],
    val_w: f64,
    lo: f64,
    hi: f64,
    bar_tick_values: &'a [f64],
    bar_tick_labels: &'a [String],
    scale_title: Option<&'a str>,
    line_h: f64,
}

fn finish(grid: &Grid, spec: &HeatSpec<'_>, f: Frame, s: Shared<'_>) -> Result<Scene, String> {
    let n_col = grid.cols.len() as f64;
    let n_row = grid.rows.len() as f64;
    let has = |l: Option<&str>| l.is_some_and(|l| !l.trim().is_empty());
    let width = canvas_len(spec.width, f.left + f.plot_w + f.right);
    let title = Title::new(spec.title, f64::from(width) - 2.0 * MARGIN)?;
    let cell_w = f.plot_w / n_col;

    // Column labels: wrapped to the cell width, or vertical when a word does not fit.
    let mut col_lines = Vec::with_capacity(grid.cols.len());
    let mut fits = true;
    for c in &grid.cols {
        let l = wrap(c, cell_w - 6.0, TICK_SIZE, false)?;
        for line in &l {
            if text_width(line, TICK_SIZE, false)? > cell_w - 2.0 {
                fits = false;
            }
        }
        col_lines.push(l);
    }
    let col_block = if fits {
        col_lines.iter().map(Vec::len).max().unwrap_or(1) as f64 * s.line_h
    } else {
        max_width(grid.cols.iter().map(String::as_str), TICK_SIZE, false)?
    };
    let below = if has(spec.col_label) {
        GAP + AXIS_SIZE * LINE
    } else {
        0.0
    };
    let top = MARGIN + title.height();
    let bottom = MARGIN + 2.0 * TICK_GAP + col_block + below;
    let auto_cell_h = (300.0 / n_row).clamp(26.0, 40.0);
    let plot_h = plot_len(
        "height",
        spec.height,
        top + bottom,
        n_row * auto_cell_h,
        n_row * MIN_CELL_SIZE * 1.3,
    )?;
    let height = canvas_len(spec.height, top + plot_h + bottom);
    let cell_h = plot_h / n_row;
    let mut scene = Scene {
        width,
        height,
        prims: Vec::new(),
    };
    let (pl, pt) = (f.left, top);
    let (pr, pb) = (pl + f.plot_w, pt + plot_h);

    // Cells and their labels.
    let size = CELL_SIZE
        .min(cell_h * 0.62)
        .min(if s.val_w > 0.0 {
            CELL_SIZE * (cell_w - 6.0) / s.val_w
        } else {
            CELL_SIZE
        })
        .max(MIN_CELL_SIZE);
    let gap = if cell_w >= 8.0 && cell_h >= 8.0 {
        1.0
    } else {
        0.0
    };
    for (c, col) in grid.cells.iter().enumerate() {
        for (r, v) in col.iter().enumerate() {
            let x0 = pl + c as f64 * cell_w;
            let y0 = pt + r as f64 * cell_h;
            let color = spec.colormap.at((v - s.lo) / (s.hi - s.lo));
            scene.rect(Rect::from_edges(
                x0,
                y0,
                x0 + cell_w - gap,
                y0 + cell_h - gap,
                color,
            ));
            let t = Text::new(
                &s.labels[c][r],
                x0 + (cell_w - gap) / 2.0,
                mid_baseline(y0 + (cell_h - gap) / 2.0, size),
                size,
                Anchor::Middle,
            )?;
            scene.text(t.color(color.contrasting_text()));
        }
    }

    // Row labels, right-aligned left of the grid.
    for (r, name) in grid.rows.iter().enumerate() {
        let cy = pt + (r as f64 + 0.5) * cell_h - gap / 2.0;
        scene.text(Text::new(
            name,
            pl - 2.0 * TICK_GAP,
            mid_baseline(cy, TICK_SIZE),
            TICK_SIZE,
            Anchor::End,
        )?);
    }
    // Column labels under the grid.
    for (c, lines) in col_lines.iter().enumerate() {
        let cx = pl + (c as f64 + 0.5) * cell_w - gap / 2.0;
        if fits {
            for (i, l) in lines.iter().enumerate() {
                let b = pb + 2.0 * TICK_GAP + ASCENT * TICK_SIZE + i as f64 * s.line_h;
                scene.text(Text::new(l, cx, b, TICK_SIZE, Anchor::Middle)?);
            }
        } else {
            scene.text(
                Text::new(
                    &grid.cols[c],
                    cx + (ASCENT - DESCENT) / 2.0 * TICK_SIZE,
                    pb + 2.0 * TICK_GAP,
                    TICK_SIZE,
                    Anchor::End,
                )?
                .vertical(),
            );
        }
    }

    // Axis titles.
    if let Some(l) = spec.col_label.filter(|l| !l.trim().is_empty()) {
        let b = pb + 2.0 * TICK_GAP + col_block + GAP + ASCENT * AXIS_SIZE;
        scene.text(Text::new(l, (pl + pr) / 2.0, b, AXIS_SIZE, Anchor::Middle)?);
    }
    if let Some(l) = spec.row_label.filter(|l| !l.trim().is_empty()) {
        scene.text(
            Text::new(
                l,
                MARGIN + ASCENT * AXIS_SIZE,
                (pt + pb) / 2.0,
                AXIS_SIZE,
                Anchor::Middle,
            )?
            .vertical(),
        );
    }

    // Colour bar.
    if spec.colorbar {
        let bx = pr + BAR_GAP;
        let mut by = pt;
        if let Some(t) = s.scale_title {
            let b = mid_baseline(by + LEGEND_SIZE * 0.75, LEGEND_SIZE);
            scene.text(Text::new(t, bx, b, LEGEND_SIZE, Anchor::Start)?.bold()?);
            by += LEGEND_SIZE * 1.5 + 4.0;
        }
        // Leave half a tick label of room at both ends of the bar.
        let by = by + TICK_SIZE / 2.0;
        let bar_h = (pb - by - TICK_SIZE / 2.0).clamp(40.0, BAR_MAX_H).round();
        let by = by.round();
        let steps = bar_h as usize;
        for i in 0..steps {
            let t = 1.0 - (i as f64 + 0.5) / bar_h;
            let y = by + i as f64;
            scene.rect(Rect::from_edges(
                bx,
                y,
                bx + BAR_W,
                y + 1.0,
                spec.colormap.at(t),
            ));
        }
        for (v, label) in s.bar_tick_values.iter().zip(s.bar_tick_labels) {
            let y = (by + bar_h * (1.0 - (v - s.lo) / (s.hi - s.lo)))
                .round()
                .min(by + bar_h - 1.0);
            scene.rect(Rect::from_edges(
                bx + BAR_W,
                y,
                bx + BAR_W + TICK_LEN,
                y + 1.0,
                Rgb::AXIS,
            ));
            scene.text(Text::new(
                label,
                bx + BAR_W + TICK_LEN + TICK_GAP,
                mid_baseline(y + 0.5, TICK_SIZE),
                TICK_SIZE,
                Anchor::Start,
            )?);
        }
    }

    title.draw(&mut scene)?;
    Ok(scene)
}
