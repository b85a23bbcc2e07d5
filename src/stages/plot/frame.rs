//! What bar charts and heatmaps share: sizes, colours, the value axis, the title, the category
//! labels ([`Cats`]) and the one layout of the frame around the plot ([`Frame`]): categories
//! left of the plot and under it, axis titles, margins, and a canvas sized from them or checked
//! against a given `width`/`height`.

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind};
use plotters::element::Text;
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontTransform, RGBColor, TextStyle};

use super::text::{max_width, style, width, wrap};
use super::{Chart, Params};
use crate::stages::numfmt;

/// Font sizes in plotters' units (the em is size / 1.24: 15 gives a 12 px em).
pub const TITLE_SIZE: f64 = 21.0;
pub const AXIS_SIZE: f64 = 17.0;
pub const TICK_SIZE: f64 = 15.0;
pub const VALUE_SIZE: f64 = 13.0;
/// Line height as a multiple of the em.
pub const LINE: f64 = 1.3;
pub const MARGIN: f64 = 16.0;
pub const GAP: f64 = 10.0;
pub const TICK_LEN: f64 = 5.0;
/// Room between an axis and its labels.
const LABEL_GAP: f64 = 6.0;
/// Widest canvas made when `width` is not given (longer titles wrap).
const MAX_AUTO_WIDTH: f64 = 1800.0;
/// Most ticks on a value axis.
pub const TICKS: usize = 7;

pub const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub const AXIS: RGBColor = RGBColor(0x44, 0x44, 0x44);
pub const GRID: RGBColor = RGBColor(0xE0, 0xE0, 0xE0);
pub const WHITE: RGBColor = RGBColor(255, 255, 255);

/// The em in pixels of a font size.
pub fn em(size: f64) -> f64 {
    size / 1.24
}

/// Okabe & Ito's colour-blind-safe palette, then Paul Tol's "muted" scheme for series 9-17;
/// beyond that the colours repeat.
const PALETTE: [u32; 17] = [
    0xE69F00, 0x56B4E9, 0x009E73, 0xF0E442, 0x0072B2, 0xD55E00, 0xCC79A7, 0x000000, 0x332288,
    0x88CCEE, 0x44AA99, 0x117733, 0x999933, 0xDDCC77, 0xCC6677, 0x882255, 0xAA4499,
];

pub fn hex(v: u32) -> RGBColor {
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

/// Colour of the `i`-th series.
pub fn series_color(i: usize) -> RGBColor {
    hex(PALETTE[i % PALETTE.len()])
}

/// Black or white, whichever contrasts more (WCAG) with `c` as a background.
pub fn contrasting(c: RGBColor) -> RGBColor {
    let lin = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.04045 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2);
    if 1.05 / (l + 0.05) >= (l + 0.05) / 0.05 {
        WHITE
    } else {
        RGBColor(0, 0, 0)
    }
}

/// Every number a chart prints, through the formatter of tables and claims.
pub fn label(v: f64, decimals: usize, percent: bool) -> String {
    numfmt::fixed(v, decimals) + if percent { "%" } else { "" }
}

/// Decimals for value labels: as asked, else 0 when every value is whole and 1 otherwise.
pub fn label_decimals(asked: Option<u8>, values: impl IntoIterator<Item = f64>) -> usize {
    match asked {
        Some(d) => usize::from(d),
        None => usize::from(!values.into_iter().all(|v| (v - v.round()).abs() < 1e-9)),
    }
}

/// A value axis: plotters' ticks for `lo..hi`, the range widened to whole ticks.
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    /// Decimals that print every tick exactly.
    pub decimals: usize,
}

impl Axis {
    pub fn new(lo: f64, hi: f64, max_ticks: usize) -> Axis {
        let (mut lo, mut hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
        let mut step = hi - lo;
        // Widen to whole steps (without float noise such as 0.7000000000000001) until plotters
        // picks the same step for the widened range, so that both ends are ticks.
        for _ in 0..4 {
            let kp = RangedCoordf64::from(lo..hi).key_points(max_ticks);
            step = match kp.as_slice() {
                [a, b, ..] => b - a,
                _ => hi - lo,
            };
            let clean = |v: f64| (v * 1e9).round() / 1e9;
            let (l, h) = (
                clean((lo / step + 1e-9).floor() * step),
                clean((hi / step - 1e-9).ceil() * step),
            );
            if (l, h) == (lo, hi) {
                break;
            }
            (lo, hi) = (l, h);
        }
        let mut decimals = 0;
        while decimals < 10 && (step * 10f64.powi(decimals as i32)).fract().abs() > 1e-6 {
            decimals += 1;
        }
        let ticks = RangedCoordf64::from(lo..hi).key_points(max_ticks);
        Axis {
            lo,
            hi,
            ticks,
            decimals,
        }
    }

    pub fn label_width(&self, percent: bool) -> f64 {
        let labels = self.ticks.iter().map(|t| label(*t, self.decimals, percent));
        max_width(labels, TICK_SIZE, false)
    }
}

/// Draws a line of text at a point given in fractional pixels.
pub fn text<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    s: &str,
    (x, y): (f64, f64),
    st: &TextStyle<'_>,
) -> Result<(), String> {
    let at = (x.round() as i32, y.round() as i32);
    root.draw(&Text::new(s, at, st.clone())).map_err(err)
}

/// A drawing error as a message.
pub fn err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    format!("cannot draw the chart: {e}")
}

/// A trimmed, non-blank label.
pub fn has(l: &Option<String>) -> Option<String> {
    l.as_deref()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
}

/// Height of an axis title, gap included, when there is one.
pub fn desc(d: &Option<String>) -> f64 {
    if d.is_some() {
        em(AXIS_SIZE) * 1.1 + GAP
    } else {
        0.0
    }
}

/// A category axis' labels: under the axis (each wrapped to its slot, or all turned vertical
/// when a single word does not fit) or left of it (each in full, or wrapped to a given width).
#[derive(Default)]
pub struct Cats {
    lines: Vec<Vec<String>>,
    rotated: bool,
    left: bool,
}

impl Cats {
    fn below(names: &[String], slot: f64) -> Cats {
        let mut lines = Vec::with_capacity(names.len());
        let mut rotated = false;
        for n in names {
            let l = wrap(n, slot - 8.0, TICK_SIZE, false);
            rotated |= max_width(&l, TICK_SIZE, false) > slot - 4.0;
            lines.push(l);
        }
        if rotated {
            lines = names.iter().map(|n| vec![n.clone()]).collect();
        }
        Cats {
            lines,
            rotated,
            left: false,
        }
    }

    /// Labels left of the axis, in full, or wrapped when a given canvas `width` leaves less
    /// than their width after `other` pixels (at least 60 px stay for the labels).
    pub fn left(names: &[String], width: Option<u32>, other: f64) -> Cats {
        let wrapped = |max: Option<f64>| Cats {
            lines: (names.iter())
                .map(|n| max.map_or(vec![n.clone()], |m| wrap(n, m, TICK_SIZE, false)))
                .collect(),
            rotated: false,
            left: true,
        };
        let room = width.map_or(0.0, |w| f64::from(w) - other);
        match wrapped(None) {
            c if width.is_some() && c.depth() > room && room >= 60.0 => wrapped(Some(room)),
            c => c,
        }
    }

    pub fn most_lines(&self) -> usize {
        self.lines.iter().map(Vec::len).max().unwrap_or(1)
    }

    /// Height of a label block of `n` lines.
    fn block(n: usize) -> f64 {
        (n as f64 - 1.0) * em(TICK_SIZE) * LINE + em(TICK_SIZE)
    }

    /// How far the labels reach from the axis, gap included.
    pub fn depth(&self) -> f64 {
        LABEL_GAP
            + match self.left || self.rotated {
                true => max_width(self.lines.iter().flatten(), TICK_SIZE, false),
                false => Cats::block(self.most_lines()),
            }
    }

    /// Draws label `i` centred on `centres[i]` (pixels along the axis), the axis at `axis`.
    pub fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        axis: f64,
        centres: &[f64],
    ) -> Result<(), String> {
        let line_h = em(TICK_SIZE) * LINE;
        let base = style(TICK_SIZE, false, TEXT);
        for (lines, &c) in self.lines.iter().zip(centres) {
            let top = c - Cats::block(lines.len()) / 2.0;
            for (i, l) in lines.iter().enumerate() {
                let (x, y, s) = if self.left {
                    let s = base.pos(Pos::new(HPos::Right, VPos::Top));
                    (axis - LABEL_GAP, top + i as f64 * line_h, s)
                } else if self.rotated {
                    let s = base.pos(Pos::new(HPos::Right, VPos::Center));
                    (c, axis + LABEL_GAP, s.transform(FontTransform::Rotate270))
                } else {
                    let s = base.pos(Pos::new(HPos::Center, VPos::Top));
                    (c, axis + LABEL_GAP + i as f64 * line_h, s)
                };
                text(root, l, (x, y), &s)?;
            }
        }
        Ok(())
    }
}

/// What lies under the plot: category labels (one per slot) and the axis title's height, or
/// a label area of a fixed height.
pub enum Below<'a> {
    Cats(&'a [String], f64),
    Fixed(f64),
}

/// The plot area, the label areas and the title on a canvas: the one layout of both charts.
#[derive(Default)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    title: Vec<String>,
    /// The plot area `[left, top, width, height]` and the label area under it.
    pub plot: [f64; 4],
    pub below: f64,
    cats_left: Option<Cats>,
    cats_below: Option<Cats>,
}

impl Frame {
    /// Lays out a plot with `left`/`right` pixels beside it, of automatic width and height
    /// `auto` (at least `min`), unless `p` gives the canvas size. A long title widens the plot
    /// of a bar chart, and the margins of a heatmap (its grid centred, the cells unstretched).
    /// `bottom` gives the room under the label area for a canvas width (a legend below).
    pub fn new(
        p: &Params,
        (mut left, mut right): (f64, f64),
        cats_left: Option<Cats>,
        auto: (f64, f64),
        min: (f64, f64),
        below: Below<'_>,
        bottom: impl FnOnce(u32) -> f64,
    ) -> Result<Frame, String> {
        let title = p.title.as_deref().filter(|t| !t.trim().is_empty());
        let size = (p.width, p.height);
        let mut plot_w = plot_len("width", size.0, left + right, auto.0, min.0)?;
        let need = match title {
            Some(t) => (width(t.trim(), TITLE_SIZE, true) + 2.0 * MARGIN).min(MAX_AUTO_WIDTH),
            None => 0.0,
        };
        if size.0.is_none() && need > left + plot_w + right {
            if p.chart == Chart::Heatmap {
                let extra = need - (left + plot_w + right);
                left += extra / 2.0;
                right += extra / 2.0;
            } else {
                plot_w = need - left - right;
            }
        }
        let (below, cats_below) = match below {
            Below::Cats(names, desc) => {
                let cats = Cats::below(names, plot_w / names.len() as f64);
                (cats.depth() + desc, Some(cats))
            }
            Below::Fixed(h) => (h, None),
        };
        let width = size
            .0
            .unwrap_or_else(|| (left + plot_w + right).ceil().max(1.0) as u32);
        let max = f64::from(width) - 2.0 * MARGIN;
        let title = title.map_or(Vec::new(), |t| wrap(t, max, TITLE_SIZE, true));
        let title_h = match title.len() {
            0 => 0.0,
            n => (n as f64 - 1.0) * em(TITLE_SIZE) * LINE + em(TITLE_SIZE) + GAP,
        };
        let top = MARGIN + title_h.max(em(TICK_SIZE) / 2.0);
        let bottom = MARGIN + bottom(width);
        let plot_h = plot_len("height", size.1, top + below + bottom, auto.1, min.1)?;
        let content = top + plot_h + below + bottom;
        Ok(Frame {
            width,
            height: size.1.unwrap_or_else(|| content.ceil().max(1.0) as u32),
            title,
            plot: [left, top, plot_w, plot_h],
            below,
            cats_left,
            cats_below,
        })
    }

    /// Fills the canvas, draws the title and returns a chart on the plot area.
    pub fn chart<'a, 'b, DB: DrawingBackend>(
        &self,
        root: &'a DrawingArea<DB, Shift>,
    ) -> Result<ChartBuilder<'a, 'b, DB>, String> {
        root.fill(&WHITE).map_err(err)?;
        let cx = f64::from(root.dim_in_pixel().0 / 2);
        let s = style(TITLE_SIZE, true, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, line) in self.title.iter().enumerate() {
            let y = MARGIN + i as f64 * em(TITLE_SIZE) * LINE;
            text(root, line, (cx, y), &s)?;
        }
        let r = |v: f64| v.round() as u32;
        let [left, top, w, h] = self.plot;
        let (cw, ch) = root.dim_in_pixel();
        let mut b = ChartBuilder::on(root);
        b.margin_left(r(MARGIN))
            .margin_top(r(top))
            .margin_right(cw.saturating_sub(r(left + w)))
            .margin_bottom(ch.saturating_sub(r(top + h + self.below)))
            .y_label_area_size(r(left - MARGIN))
            .x_label_area_size(r(self.below));
        Ok(b)
    }

    /// Draws the category labels, centred on `left[i]` (pixels down) left of the plot area
    /// `(xs, ys)` and on `below[i]` (pixels across) under it.
    pub fn draw_cats<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        (xs, ys): (std::ops::Range<i32>, std::ops::Range<i32>),
        left: &[f64],
        below: &[f64],
    ) -> Result<(), String> {
        if let Some(c) = &self.cats_below {
            c.draw(root, f64::from(ys.end), below)?;
        }
        match &self.cats_left {
            Some(c) => c.draw(root, f64::from(xs.start), left),
            None => Ok(()),
        }
    }
}

/// The plot-area length along one side: what `given` leaves after `fixed` pixels of margins and
/// labels, or `auto` when nothing is given. Errors when less than `min` would remain.
fn plot_len(key: &str, given: Option<u32>, fixed: f64, auto: f64, min: f64) -> Result<f64, String> {
    match given {
        None => Ok(auto.max(min)),
        Some(g) if f64::from(g) - fixed >= min => Ok(f64::from(g) - fixed),
        Some(g) => Err(format!(
            "`{key}: {g}` is too small for this chart: labels, legend and margins take {fixed:.0} \
             px and the plot area needs at least {min:.0} px; use `{key}: {}` or more, or omit \
             `{key}` to size the chart from the data",
            (fixed + min).ceil()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_ticks_and_numbers_print_fixed() {
        let a = Axis::new(0.0, 93.0, TICKS);
        assert_eq!((a.lo, a.hi, a.decimals), (0.0, 100.0, 0));
        assert_eq!(a.ticks, [0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let a = Axis::new(0.0, 0.7, TICKS);
        assert_eq!((a.hi, a.decimals), (0.7, 1));
        assert_eq!(label(0.30000000000000004, a.decimals, true), "0.3%");
        let a = Axis::new(-12.0, 30.0, TICKS);
        assert_eq!((a.lo, a.hi), (-20.0, 30.0));
        // Widening to -30..40 makes plotters step by 20: the axis widens again, to ticks.
        let a = Axis::new(-26.0, 37.0, TICKS);
        assert_eq!((a.lo, a.hi), (-40.0, 40.0));
        assert_eq!(a.ticks, [-40.0, -20.0, 0.0, 20.0, 40.0]);
        let a = Axis::new(0.0, 0.0, TICKS);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        assert_eq!(label(-0.0, 0, false), "0");
        assert_eq!(label(-0.04, 1, false), "0.0");
        assert_eq!(label(12.345, 1, false), "12.3");
        assert_eq!(label_decimals(None, [1.0, 2.0]), 0);
        assert_eq!(label_decimals(None, [1.5, 2.0]), 1);
        assert_eq!(label_decimals(Some(2), [1.0]), 2);
    }

    #[test]
    fn contrast_picks_the_more_legible_of_black_and_white() {
        assert_eq!(contrasting(RGBColor(68, 1, 84)), WHITE);
        assert_eq!(contrasting(RGBColor(254, 232, 37)), RGBColor(0, 0, 0));
    }
}
