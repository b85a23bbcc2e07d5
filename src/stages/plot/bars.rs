//! Bar charts (grouped, stacked, stacked to 100 %), vertical or horizontal: layout from the data
//! and the measured labels to a [`Scene`].
//!
//! Layout rules: the category axis gets one equal slot per category, in data order (left to
//! right, or top to bottom for horizontal bars). Margins are measured from the actual labels, so
//! long category names fit: on the left of horizontal bars (wrapped only when a fixed `width`
//! leaves too little room), and under vertical bars wrapped to the slot width, or rotated when a
//! single word does not fit. The legend sits right of the plot area or below the axis title,
//! never over the bars. In a vertical stack the first series is on top, so the legend (read top
//! to bottom) matches the stack; in a horizontal stack the first series is on the left.

use super::data::Grid;
use super::frame::{
    AXIS_SIZE, GAP, LEGEND_SIZE, LINE, MARGIN, MAX_AUTO_WIDTH, TICK_GAP, TICK_LEN, TICK_SIZE,
    Title, VALUE_SIZE, canvas_len, plot_len, title_need,
};
use super::scale::{Ticks, fmt_num, label_decimals, series_color};
use super::scene::{ASCENT, Anchor, DESCENT, Rect, Rgb, Scene, Text, max_width, text_width, wrap};

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

const SWATCH: f64 = 12.0;
const SWATCH_GAP: f64 = 6.0;
const LEGEND_GAP: f64 = 20.0;
const LEGEND_ITEM_GAP: f64 = 18.0;
const LEGEND_LINE: f64 = LEGEND_SIZE * 1.5;
/// Widest bar of a grouped chart, and of a stacked one.
const MAX_BAR: f64 = 44.0;
const MAX_STACK: f64 = 72.0;
/// Fraction of a category slot taken by its bars.
const GROUP_FILL: f64 = 0.8;
/// Widest automatic plot area of vertical bars, unless the bars need more.
const MAX_AUTO_PLOT: f64 = 900.0;
const STACK_FILL: f64 = 0.62;

/// Baseline that centres a line of glyphs of `size` on `cy`.
fn mid_baseline(cy: f64, size: f64) -> f64 {
    cy + (ASCENT - DESCENT) / 2.0 * size
}

struct Legend {
    title: Option<String>,
    items: Vec<(String, Rgb, f64)>,
}

impl Legend {
    fn new(spec: &BarSpec<'_>, grid: &Grid) -> Result<Option<Legend>, String> {
        if spec.legend == LegendPos::None {
            return Ok(None);
        }
        let mut items = Vec::new();
        for (i, name) in grid.rows.iter().enumerate() {
            items.push((
                name.clone(),
                series_color(i),
                text_width(name, LEGEND_SIZE, false)?,
            ));
        }
        let title = spec
            .legend_title
            .filter(|t| !t.trim().is_empty())
            .map(str::to_string);
        Ok(Some(Legend { title, items }))
    }

    fn title_h(&self) -> f64 {
        if self.title.is_some() {
            LEGEND_LINE
        } else {
            0.0
        }
    }

    /// Width of the legend column right of the plot, including the gap before it.
    fn right_width(&self) -> Result<f64, String> {
        let items = self
            .items
            .iter()
            .map(|(_, _, w)| SWATCH + SWATCH_GAP + w)
            .fold(0.0, f64::max);
        let title = match &self.title {
            Some(t) => text_width(t, LEGEND_SIZE, true)?,
            None => 0.0,
        };
        Ok(LEGEND_GAP + items.max(title))
    }

    fn right_height(&self) -> f64 {
        self.title_h() + self.items.len() as f64 * LEGEND_LINE
    }

    /// Items flowed into rows no wider than `max`.
    fn rows(&self, max: f64) -> Vec<Vec<usize>> {
        let mut rows: Vec<Vec<usize>> = Vec::new();
        let mut cur: Vec<usize> = Vec::new();
        let mut w = 0.0;
        for (i, (_, _, tw)) in self.items.iter().enumerate() {
            let iw = SWATCH + SWATCH_GAP + tw;
            let add = if cur.is_empty() {
                iw
            } else {
                LEGEND_ITEM_GAP + iw
            };
            if !cur.is_empty() && w + add > max {
                rows.push(std::mem::take(&mut cur));
                w = iw;
            } else {
                w += add;
            }
            cur.push(i);
        }
        if !cur.is_empty() {
            rows.push(cur);
        }
        rows
    }

    fn bottom_height(&self, max: f64) -> f64 {
        self.title_h() + self.rows(max).len() as f64 * LEGEND_LINE
    }

    fn item(&self, scene: &mut Scene, i: usize, x: f64, top: f64) -> Result<(), String> {
        let (name, color, _) = &self.items[i];
        let cy = top + LEGEND_LINE / 2.0;
        scene.rect(Rect::from_edges(
            x,
            cy - SWATCH / 2.0,
            x + SWATCH,
            cy + SWATCH / 2.0,
            *color,
        ));
        scene.text(Text::new(
            name,
            x + SWATCH + SWATCH_GAP,
            mid_baseline(cy, LEGEND_SIZE),
            LEGEND_SIZE,
            Anchor::Start,
        )?);
        Ok(())
    }

    fn draw_right(&self, scene: &mut Scene, x: f64, top: f64) -> Result<(), String> {
        let mut y = top;
        if let Some(t) = &self.title {
            let b = mid_baseline(y + LEGEND_LINE / 2.0, LEGEND_SIZE);
            scene.text(Text::new(t, x, b, LEGEND_SIZE, Anchor::Start)?.bold()?);
            y += LEGEND_LINE;
        }
        for i in 0..self.items.len() {
            self.item(scene, i, x, y)?;
            y += LEGEND_LINE;
        }
        Ok(())
    }

    fn draw_bottom(&self, scene: &mut Scene, cx: f64, top: f64, max: f64) -> Result<(), String> {
        let mut y = top;
        if let Some(t) = &self.title {
            let b = mid_baseline(y + LEGEND_LINE / 2.0, LEGEND_SIZE);
            scene.text(Text::new(t, cx, b, LEGEND_SIZE, Anchor::Middle)?.bold()?);
            y += LEGEND_LINE;
        }
        for row in self.rows(max) {
            let widths: Vec<f64> = row
                .iter()
                .map(|&i| SWATCH + SWATCH_GAP + self.items[i].2)
                .collect();
            let total = widths.iter().sum::<f64>() + LEGEND_ITEM_GAP * (row.len() - 1) as f64;
            let mut x = cx - total / 2.0;
            for (&i, w) in row.iter().zip(&widths) {
                self.item(scene, i, x, y)?;
                x += w + LEGEND_ITEM_GAP;
            }
            y += LEGEND_LINE;
        }
        Ok(())
    }
}

/// How the category labels are set.
enum CatLabels {
    /// Each label as one or more horizontal lines.
    Lines(Vec<Vec<String>>),
    /// Vertical text, one line each (vertical bars whose labels do not fit their slot).
    Rotated,
}

/// The computed geometry of a chart.
struct Geo {
    width: u32,
    height: u32,
    title: Title,
    left: f64,
    top: f64,
    plot_w: f64,
    plot_h: f64,
    labels: CatLabels,
    /// Top of the category label block (vertical bars) or unused.
    legend_bottom_top: f64,
}

impl Geo {
    fn right(&self) -> f64 {
        self.left + self.plot_w
    }
    fn bottom(&self) -> f64 {
        self.top + self.plot_h
    }
}

/// Lays out a bar chart.
pub fn layout(grid: &Grid, spec: &BarSpec<'_>) -> Result<Scene, String> {
    let n_cat = grid.cols.len();
    let n_ser = grid.rows.len().max(1);
    // Values as drawn.
    let mut vals = grid.cells.clone();
    if spec.mode != Mode::Grouped {
        for (c, row) in vals.iter().enumerate() {
            for (s, v) in row.iter().enumerate() {
                if *v < 0.0 {
                    return Err(format!(
                        "stacked charts need non-negative values, but {:?}{} is {}",
                        grid.cols[c],
                        grid.rows
                            .get(s)
                            .filter(|r| !r.is_empty())
                            .map(|r| format!(" / {r:?}"))
                            .unwrap_or_default(),
                        fmt_num(*v, 6).trim_end_matches('0').trim_end_matches('.')
                    ));
                }
            }
        }
    }
    if spec.mode == Mode::Stacked100 {
        for row in &mut vals {
            let total: f64 = row.iter().sum();
            if total > 0.0 {
                for v in row.iter_mut() {
                    *v = *v / total * 100.0;
                }
            }
        }
    }
    let (dmin, dmax) = match spec.mode {
        Mode::Grouped => {
            let all = vals.iter().flatten().copied();
            let min = all.clone().fold(0.0, f64::min);
            let max = all.fold(0.0, f64::max);
            (min, max)
        }
        Mode::Stacked => (
            0.0,
            vals.iter()
                .map(|r| r.iter().sum::<f64>())
                .fold(0.0, f64::max),
        ),
        Mode::Stacked100 => (0.0, 100.0),
    };
    let percent = spec.mode == Mode::Stacked100;
    let whole = vals.iter().flatten().all(|v| v.fract() == 0.0);
    let decimals = if percent {
        usize::from(spec.decimals.unwrap_or(0))
    } else {
        label_decimals(spec.decimals, vals.iter().flatten().copied())
    };
    let label_of = |v: f64| {
        if percent {
            format!("{}%", fmt_num(v, decimals))
        } else {
            fmt_num(v, decimals)
        }
    };

    let legend = Legend::new(spec, grid)?;
    let mut ticks = if percent {
        Ticks::fixed(0.0, 100.0, 20.0)
    } else {
        Ticks::nice(dmin, dmax, 5, whole)
    };
    let mut geo = geometry(grid, spec, legend.as_ref(), &ticks)?;

    // Grouped bars carry their value labels outside the bar: make room for them.
    let outside = spec.value_labels && spec.mode == Mode::Grouped;
    let bar_w = |geo: &Geo| {
        let slot = if spec.horizontal {
            geo.plot_h
        } else {
            geo.plot_w
        } / n_cat as f64;
        (slot * GROUP_FILL).min(MAX_BAR * n_ser as f64) / n_ser as f64
    };
    let lw = if outside {
        max_width(
            vals.iter()
                .flatten()
                .map(|v| label_of(*v))
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str),
            VALUE_SIZE,
            false,
        )?
    } else {
        0.0
    };
    let rotated_values = |geo: &Geo| outside && !spec.horizontal && lw > bar_w(geo) + 1.0;
    if outside {
        let len = if spec.horizontal {
            geo.plot_w
        } else {
            geo.plot_h
        };
        let ext = if spec.horizontal || rotated_values(&geo) {
            lw + 6.0
        } else {
            VALUE_SIZE + 6.0
        };
        if len > 3.0 * ext {
            // Widen the value range so that `ext` pixels are left beyond the longest bar on
            // each side that has bars (positive bars label above, negative ones below).
            let e = ext / len;
            let (up, down) = (
                f64::from(u8::from(dmax > 0.0)),
                f64::from(u8::from(dmin < 0.0)),
            );
            let range = (dmax - dmin) / (1.0 - (up + down) * e);
            let hi = dmax + up * e * range;
            let lo = dmin - down * e * range;
            ticks = Ticks::nice(lo, hi, 5, whole);
            geo = geometry(grid, spec, legend.as_ref(), &ticks)?;
        }
    }

    let mut scene = Scene {
        width: geo.width,
        height: geo.height,
        prims: Vec::new(),
    };
    let (pl, pt, pr, pb) = (geo.left, geo.top, geo.right(), geo.bottom());
    // Value -> pixel along the value axis; category slot -> pixel interval.
    let vpos = |v: f64| {
        if spec.horizontal {
            pl + geo.plot_w * ticks.frac(v)
        } else {
            pb - geo.plot_h * ticks.frac(v)
        }
    };
    let slot = if spec.horizontal {
        geo.plot_h
    } else {
        geo.plot_w
    } / n_cat as f64;
    let slot_start = |c: usize| {
        if spec.horizontal {
            pt + c as f64 * slot
        } else {
            pl + c as f64 * slot
        }
    };
    // A rectangle from a category-axis interval and a value-axis interval (both in pixels).
    let rect = |a0: f64, a1: f64, v0: f64, v1: f64, color: Rgb| {
        if spec.horizontal {
            Rect::from_edges(v0, a0, v1, a1, color)
        } else {
            Rect::from_edges(a0, v0, a1, v1, color)
        }
    };

    // Grid lines and value ticks.
    let tick_values = ticks.values();
    for &t in &tick_values {
        let p = vpos(t).round();
        let r = if spec.horizontal {
            Rect::from_edges(p, pt, p + 1.0, pb, Rgb::GRID)
        } else {
            Rect::from_edges(pl, p, pr, p + 1.0, Rgb::GRID)
        };
        scene.rect(r);
    }

    // Bars.
    for (c, row) in vals.iter().enumerate() {
        let s0 = slot_start(c);
        match spec.mode {
            Mode::Grouped => {
                let bw = bar_w(&geo);
                let gw = bw * n_ser as f64;
                let g0 = s0 + (slot - gw) / 2.0;
                let zero = vpos(0.0);
                for (s, &v) in row.iter().enumerate() {
                    let a0 = g0 + s as f64 * bw;
                    let a1 = a0 + bw - if bw >= 6.0 { 1.0 } else { 0.0 };
                    scene.rect(rect(a0, a1, zero, vpos(v), series_color(s)));
                }
            }
            Mode::Stacked | Mode::Stacked100 => {
                let bw = (slot * STACK_FILL).min(MAX_STACK);
                let a0 = s0 + (slot - bw) / 2.0;
                let a1 = a0 + bw;
                let mut acc = 0.0;
                let mut edges = Vec::new();
                for s in stack_order(grid.rows.len(), spec.horizontal) {
                    let v = row[s];
                    if v <= 0.0 {
                        continue;
                    }
                    let (p0, p1) = (vpos(acc), vpos(acc + v));
                    scene.rect(rect(a0, a1, p0, p1, series_color(s)));
                    acc += v;
                    edges.push(p1);
                }
                // 1 px white separators between segments.
                edges.pop();
                for e in edges {
                    let e = e.round();
                    let r = if spec.horizontal {
                        Rect::from_edges(e - 1.0, a0, e, a1, Rgb::WHITE)
                    } else {
                        Rect::from_edges(a0, e, a1, e + 1.0, Rgb::WHITE)
                    };
                    scene.rect(r);
                }
            }
        }
    }

    // Axes: the zero line across the categories, and the value axis line with tick marks.
    let zero = vpos(ticks.lo.max(0.0).min(ticks.hi)).round();
    if spec.horizontal {
        scene.rect(Rect::from_edges(zero, pt, zero + 1.0, pb, Rgb::AXIS));
        let base = pb.round();
        scene.rect(Rect::from_edges(pl, base, pr + 1.0, base + 1.0, Rgb::AXIS));
        for &t in &tick_values {
            let p = vpos(t).round();
            scene.rect(Rect::from_edges(
                p,
                base,
                p + 1.0,
                base + TICK_LEN,
                Rgb::AXIS,
            ));
        }
    } else {
        scene.rect(Rect::from_edges(pl, zero, pr, zero + 1.0, Rgb::AXIS));
        let axis = pl.round();
        scene.rect(Rect::from_edges(axis - 1.0, pt, axis, pb + 1.0, Rgb::AXIS));
        for &t in &tick_values {
            let p = vpos(t).round();
            scene.rect(Rect::from_edges(
                axis - 1.0 - TICK_LEN,
                p,
                axis - 1.0,
                p + 1.0,
                Rgb::AXIS,
            ));
        }
    }

    // Value tick labels.
    for &t in &tick_values {
        let mut s = fmt_num(t, ticks.decimals);
        if percent {
            s.push('%');
        }
        let tx = if spec.horizontal {
            Text::new(
                &s,
                vpos(t),
                pb + TICK_LEN + TICK_GAP + ASCENT * TICK_SIZE,
                TICK_SIZE,
                Anchor::Middle,
            )?
        } else {
            Text::new(
                &s,
                pl - 1.0 - TICK_LEN - TICK_GAP,
                mid_baseline(vpos(t), TICK_SIZE),
                TICK_SIZE,
                Anchor::End,
            )?
        };
        scene.text(tx);
    }

    // Category labels.
    let line_h = TICK_SIZE * LINE;
    for (c, name) in grid.cols.iter().enumerate() {
        let center = slot_start(c) + slot / 2.0;
        match &geo.labels {
            CatLabels::Rotated => {
                scene.text(
                    Text::new(
                        name,
                        center + (ASCENT - DESCENT) / 2.0 * TICK_SIZE,
                        pb + TICK_LEN + TICK_GAP,
                        TICK_SIZE,
                        Anchor::End,
                    )?
                    .vertical(),
                );
            }
            CatLabels::Lines(lines) => {
                let lines = &lines[c];
                if spec.horizontal {
                    let block = lines.len() as f64 * line_h;
                    let top = center - block / 2.0;
                    for (i, l) in lines.iter().enumerate() {
                        let b = mid_baseline(top + (i as f64 + 0.5) * line_h, TICK_SIZE);
                        scene.text(Text::new(
                            l,
                            pl - 1.0 - TICK_GAP - TICK_LEN,
                            b,
                            TICK_SIZE,
                            Anchor::End,
                        )?);
                    }
                } else {
                    for (i, l) in lines.iter().enumerate() {
                        let b = pb + TICK_LEN + TICK_GAP + ASCENT * TICK_SIZE + i as f64 * line_h;
                        scene.text(Text::new(l, center, b, TICK_SIZE, Anchor::Middle)?);
                    }
                }
            }
        }
    }

    // Value labels.
    if spec.value_labels {
        for (c, row) in vals.iter().enumerate() {
            let s0 = slot_start(c);
            match spec.mode {
                Mode::Grouped => {
                    let bw = bar_w(&geo);
                    let g0 = s0 + (slot - bw * n_ser as f64) / 2.0;
                    let rot = rotated_values(&geo);
                    for (s, &v) in row.iter().enumerate() {
                        let mid = g0 + (s as f64 + 0.5) * bw;
                        let label = label_of(v);
                        let p = vpos(v);
                        let t = if spec.horizontal {
                            let size = VALUE_SIZE.min(bw.max(8.0));
                            let (x, anchor) = if v >= 0.0 {
                                (p + 4.0, Anchor::Start)
                            } else {
                                (p - 4.0, Anchor::End)
                            };
                            Text::new(&label, x, mid_baseline(mid, size), size, anchor)?
                        } else if rot {
                            let (y, anchor) = if v >= 0.0 {
                                (p - 4.0, Anchor::Start)
                            } else {
                                (p + 4.0, Anchor::End)
                            };
                            Text::new(&label, mid_baseline(mid, VALUE_SIZE), y, VALUE_SIZE, anchor)?
                                .vertical()
                        } else {
                            let b = if v >= 0.0 {
                                p - 4.0 - DESCENT * VALUE_SIZE
                            } else {
                                p + 4.0 + ASCENT * VALUE_SIZE
                            };
                            Text::new(&label, mid, b, VALUE_SIZE, Anchor::Middle)?
                        };
                        scene.text(t);
                    }
                }
                Mode::Stacked | Mode::Stacked100 => {
                    let bw = (slot * STACK_FILL).min(MAX_STACK);
                    let mid = s0 + slot / 2.0;
                    let mut acc = 0.0;
                    for s in stack_order(grid.rows.len(), spec.horizontal) {
                        let v = row[s];
                        if v <= 0.0 {
                            continue;
                        }
                        let (p0, p1) = (vpos(acc), vpos(acc + v));
                        acc += v;
                        let label = label_of(v);
                        let w = text_width(&label, VALUE_SIZE, false)?;
                        let len = (p1 - p0).abs();
                        let fits = if spec.horizontal {
                            len >= w + 6.0 && bw >= VALUE_SIZE + 2.0
                        } else {
                            len >= VALUE_SIZE + 2.0 && bw >= w + 6.0
                        };
                        if !fits {
                            continue;
                        }
                        let color = series_color(s).contrasting_text();
                        let vm = (p0 + p1) / 2.0;
                        let t = if spec.horizontal {
                            Text::new(
                                &label,
                                vm,
                                mid_baseline(mid, VALUE_SIZE),
                                VALUE_SIZE,
                                Anchor::Middle,
                            )?
                        } else {
                            Text::new(
                                &label,
                                mid,
                                mid_baseline(vm, VALUE_SIZE),
                                VALUE_SIZE,
                                Anchor::Middle,
                            )?
                        };
                        scene.text(t.color(color));
                    }
                }
            }
        }
    }

    // Axis titles.
    let plot_mid_x = (pl + pr) / 2.0;
    let plot_mid_y = (pt + pb) / 2.0;
    let (below, beside) = if spec.horizontal {
        (spec.value_label, spec.cat_label)
    } else {
        (spec.cat_label, spec.value_label)
    };
    let below_top = if spec.horizontal {
        pb + TICK_LEN + TICK_GAP + line_h
    } else {
        pb + TICK_LEN + TICK_GAP + cat_block(&geo.labels, grid, line_h)?
    };
    if let Some(l) = below.filter(|l| !l.trim().is_empty()) {
        let b = below_top + GAP + ASCENT * AXIS_SIZE;
        scene.text(Text::new(l, plot_mid_x, b, AXIS_SIZE, Anchor::Middle)?);
    }
    if let Some(l) = beside.filter(|l| !l.trim().is_empty()) {
        scene.text(
            Text::new(
                l,
                MARGIN + ASCENT * AXIS_SIZE,
                plot_mid_y,
                AXIS_SIZE,
                Anchor::Middle,
            )?
            .vertical(),
        );
    }

    // Legend and title.
    if let Some(lg) = &legend {
        match spec.legend {
            LegendPos::Right => lg.draw_right(&mut scene, pr + LEGEND_GAP, pt)?,
            LegendPos::Bottom => {
                let max = f64::from(geo.width) - 2.0 * MARGIN;
                lg.draw_bottom(
                    &mut scene,
                    f64::from(geo.width) / 2.0,
                    geo.legend_bottom_top,
                    max,
                )?;
            }
            LegendPos::None => {}
        }
    }
    geo.title.draw(&mut scene)?;
    Ok(scene)
}

/// Series drawing order along a stack: the first series ends on top of a vertical stack and on
/// the left of a horizontal one.
fn stack_order(n: usize, horizontal: bool) -> Vec<usize> {
    if horizontal {
        (0..n).collect()
    } else {
        (0..n).rev().collect()
    }
}

/// Height of the category label block under vertical bars.
fn cat_block(labels: &CatLabels, grid: &Grid, line_h: f64) -> Result<f64, String> {
    Ok(match labels {
        CatLabels::Lines(l) => l.iter().map(Vec::len).max().unwrap_or(1) as f64 * line_h,
        CatLabels::Rotated => max_width(grid.cols.iter().map(String::as_str), TICK_SIZE, false)?,
    })
}

/// Computes margins, plot area and canvas size for given value ticks.
fn geometry(
    grid: &Grid,
    spec: &BarSpec<'_>,
    legend: Option<&Legend>,
    ticks: &Ticks,
) -> Result<Geo, String> {
    let n_cat = grid.cols.len() as f64;
    let n_ser = grid.rows.len().max(1) as f64;
    let percent = spec.mode == Mode::Stacked100;
    let tick_labels: Vec<String> = ticks
        .values()
        .iter()
        .map(|t| {
            let s = fmt_num(*t, ticks.decimals);
            if percent { s + "%" } else { s }
        })
        .collect();
    let tick_w = max_width(tick_labels.iter().map(String::as_str), TICK_SIZE, false)?;
    let has = |l: Option<&str>| l.is_some_and(|l| !l.trim().is_empty());
    let axis_title_h = AXIS_SIZE * LINE;
    let legend_right = match (legend, spec.legend) {
        (Some(l), LegendPos::Right) => Some(l),
        _ => None,
    };
    let legend_bottom = match (legend, spec.legend) {
        (Some(l), LegendPos::Bottom) => Some(l),
        _ => None,
    };
    let legend_w = match legend_right {
        Some(l) => l.right_width()?,
        None => 0.0,
    };
    let need_title = title_need(spec.title)?.min(MAX_AUTO_WIDTH);
    let line_h = TICK_SIZE * LINE;

    if spec.horizontal {
        let beside = if has(spec.cat_label) {
            AXIS_SIZE + GAP
        } else {
            0.0
        };
        let last_tick = tick_labels
            .last()
            .map(|s| text_width(s, TICK_SIZE, false))
            .transpose()?
            .unwrap_or(0.0);
        let right = MARGIN + legend_w.max(last_tick / 2.0);
        let fixed_no_labels = MARGIN + beside + TICK_GAP + TICK_LEN + right;
        let mut lines: Vec<Vec<String>> = grid.cols.iter().map(|c| vec![c.clone()]).collect();
        let mut cat_w = max_width(grid.cols.iter().map(String::as_str), TICK_SIZE, false)?;
        const MIN_PLOT_W: f64 = 160.0;
        if let Some(w) = spec.width {
            let room = f64::from(w) - fixed_no_labels - MIN_PLOT_W;
            if cat_w > room && room >= 60.0 {
                lines = grid
                    .cols
                    .iter()
                    .map(|c| wrap(c, room, TICK_SIZE, false))
                    .collect::<Result<_, _>>()?;
                cat_w = max_width(lines.iter().flatten().map(String::as_str), TICK_SIZE, false)?;
            }
        }
        let max_lines = lines.iter().map(Vec::len).max().unwrap_or(1) as f64;
        let left = MARGIN + beside + cat_w + TICK_GAP + TICK_LEN;
        let mut plot_w = plot_len("width", spec.width, left + right, 520.0, MIN_PLOT_W)?;
        let content_w = left + plot_w + right;
        if spec.width.is_none() && need_title > content_w {
            plot_w += need_title - content_w;
        }
        let width = canvas_len(spec.width, left + plot_w + right);
        let title = Title::new(spec.title, f64::from(width) - 2.0 * MARGIN)?;
        let top = MARGIN + title.height().max(TICK_SIZE / 2.0);
        let below = if has(spec.value_label) {
            GAP + axis_title_h
        } else {
            0.0
        };
        let lb_max = f64::from(width) - 2.0 * MARGIN;
        let legend_b = match legend_bottom {
            Some(l) => GAP + l.bottom_height(lb_max),
            None => 0.0,
        };
        let bottom_no_legend = TICK_LEN + TICK_GAP + line_h + below;
        let bottom = MARGIN + bottom_no_legend + legend_b;
        let label_slot = max_lines * line_h + 6.0;
        let slot = match spec.mode {
            Mode::Grouped => (n_ser * 14.0 + 8.0).max(24.0),
            _ => 30.0,
        }
        .max(label_slot);
        let mut plot_h = plot_len(
            "height",
            spec.height,
            top + bottom,
            n_cat * slot,
            n_cat * max_lines * TICK_SIZE * 1.05,
        )?;
        if spec.height.is_none()
            && let Some(l) = legend_right
        {
            plot_h = plot_h.max(l.right_height());
        }
        let height = canvas_len(spec.height, top + plot_h + bottom);
        Ok(Geo {
            width,
            height,
            title,
            left,
            top,
            plot_w,
            plot_h,
            labels: CatLabels::Lines(lines),
            legend_bottom_top: top + plot_h + bottom_no_legend + GAP,
        })
    } else {
        let beside = if has(spec.value_label) {
            AXIS_SIZE + GAP
        } else {
            0.0
        };
        let left = MARGIN + beside + tick_w + TICK_GAP + TICK_LEN + 1.0;
        let right = MARGIN + legend_w;
        let cat_w = max_width(grid.cols.iter().map(String::as_str), TICK_SIZE, false)?;
        let slot = match spec.mode {
            Mode::Grouped => (n_ser * 18.0 + 20.0).max(64.0),
            _ => 64.0,
        }
        .max((cat_w + 12.0).min(140.0));
        // Wide slots let labels sit horizontally, but not at any price: past MAX_AUTO_PLOT the
        // slots shrink (to a minimum per bar) and long labels turn vertical instead.
        let min_slot = match spec.mode {
            Mode::Grouped => (n_ser * 10.0 + 8.0).max(24.0),
            _ => 24.0,
        };
        let auto = (n_cat * slot).min((n_cat * min_slot).max(MAX_AUTO_PLOT));
        let mut plot_w = plot_len(
            "width",
            spec.width,
            left + right,
            auto.max(360.0),
            (n_cat * 6.0).max(80.0),
        )?;
        let content_w = left + plot_w + right;
        if spec.width.is_none() && need_title > content_w {
            plot_w += need_title - content_w;
        }
        let width = canvas_len(spec.width, left + plot_w + right);
        let title = Title::new(spec.title, f64::from(width) - 2.0 * MARGIN)?;
        let slot = plot_w / n_cat;
        let mut lines = Vec::with_capacity(grid.cols.len());
        let mut fits = true;
        for c in &grid.cols {
            let l = wrap(c, slot - 8.0, TICK_SIZE, false)?;
            for line in &l {
                if text_width(line, TICK_SIZE, false)? > slot - 4.0 {
                    fits = false;
                }
            }
            lines.push(l);
        }
        let labels = if fits {
            CatLabels::Lines(lines)
        } else {
            CatLabels::Rotated
        };
        let block = cat_block(&labels, grid, line_h)?;
        let below = if has(spec.cat_label) {
            GAP + axis_title_h
        } else {
            0.0
        };
        let lb_max = f64::from(width) - 2.0 * MARGIN;
        let legend_b = match legend_bottom {
            Some(l) => GAP + l.bottom_height(lb_max),
            None => 0.0,
        };
        let bottom_no_legend = TICK_LEN + TICK_GAP + block + below;
        let bottom = MARGIN + bottom_no_legend + legend_b;
        let top = MARGIN + title.height().max(TICK_SIZE / 2.0);
        let mut plot_h = plot_len("height", spec.height, top + bottom, 320.0, 80.0)?;
        if spec.height.is_none()
            && let Some(l) = legend_right
        {
            plot_h = plot_h.max(l.right_height());
        }
        let height = canvas_len(spec.height, top + plot_h + bottom);
        Ok(Geo {
            width,
            height,
            title,
            left,
            top,
            plot_w,
            plot_h,
            labels,
            legend_bottom_top: top + plot_h + bottom_no_legend + GAP,
        })
    }
}
