//! What bar charts and heatmaps share: sizes, colours, how numbers print, the value axis, the
//! category labels ([`Cats`]) and the one layout of title, category labels and plot area
//! ([`Frame`]), sized from the labels or checked against a given `width`/`height`.

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind};
use plotters::element::Text;
use plotters::prelude::DrawingBackend;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontTransform, RGBColor, TextStyle};

use super::Params;
use super::text::{max_width, style, width, wrap};
use crate::stages::numfmt;

/// Font sizes in plotters' units (the em is size / 1.24: 15 gives a 12 px em).
pub const TITLE_SIZE: f64 = 21.0;
pub const AXIS_SIZE: f64 = 17.0;
pub const TICK_SIZE: f64 = 15.0;
pub const VALUE_SIZE: f64 = 13.0;
/// Line height in ems; then margins, gaps and tick marks in pixels.
pub const LINE: f64 = 1.3;
pub const MARGIN: f64 = 16.0;
pub const GAP: f64 = 10.0;
pub const TICK_LEN: f64 = 5.0;
/// Most ticks on a value axis; the widest canvas a title asks for (longer titles wrap).
pub const TICKS: usize = 7;
const MAX_TITLE_WIDTH: f64 = 1800.0;

pub const TEXT: RGBColor = RGBColor(0x22, 0x22, 0x22);
pub const AXIS: RGBColor = RGBColor(0x44, 0x44, 0x44);
pub const GRID: RGBColor = RGBColor(0xE0, 0xE0, 0xE0);
pub const WHITE: RGBColor = RGBColor(255, 255, 255);

/// Okabe & Ito's colour-blind-safe palette, then Paul Tol's "muted" scheme for series 9-17;
/// beyond that the colours repeat.
const PALETTE: [u32; 17] = [
    0xE69F00, 0x56B4E9, 0x009E73, 0xF0E442, 0x0072B2, 0xD55E00, 0xCC79A7, 0x000000, 0x332288,
    0x88CCEE, 0x44AA99, 0x117733, 0x999933, 0xDDCC77, 0xCC6677, 0x882255, 0xAA4499,
];

/// The em in pixels of a font size.
pub fn em(size: f64) -> f64 {
    size / 1.24
}

pub fn hex(v: u32) -> RGBColor {
    RGBColor((v >> 16) as u8, (v >> 8) as u8, v as u8)
}

pub fn series_color(i: usize) -> RGBColor {
    hex(PALETTE[i % PALETTE.len()])
}

/// Black or white, whichever contrasts more (WCAG) with `c` as a background.
pub fn contrasting(c: RGBColor) -> RGBColor {
    let lin = |c: u8| match f64::from(c) / 255.0 {
        c if c <= 0.04045 => c / 12.92,
        c => ((c + 0.055) / 1.055).powf(2.4),
    };
    let l = 0.2126 * lin(c.0) + 0.7152 * lin(c.1) + 0.0722 * lin(c.2);
    let white = 1.05 / (l + 0.05) >= (l + 0.05) / 0.05;
    [RGBColor(0, 0, 0), WHITE][usize::from(white)]
}

/// Every number a chart prints, through the formatter of tables and claims.
pub fn label(v: f64, decimals: usize, percent: bool) -> String {
    numfmt::fixed(v, decimals) + if percent { "%" } else { "" }
}

/// Decimals for value labels: as asked, else 0 when every value is whole and 1 otherwise.
pub fn label_decimals(asked: Option<u8>, values: impl IntoIterator<Item = f64>) -> usize {
    let whole = |v: f64| (v - v.round()).abs() < 1e-9;
    asked.map_or_else(|| usize::from(!values.into_iter().all(whole)), usize::from)
}

/// A value axis: plotters' ticks for `lo..hi`, the range widened to whole ticks.
pub struct Axis {
    pub lo: f64,
    pub hi: f64,
    pub ticks: Vec<f64>,
    /// Decimals that print every tick exactly.
    pub decimals: usize,
    /// The most ticks asked of plotters (which picks `ticks` from it).
    pub max_ticks: usize,
}

impl Axis {
    pub fn new(lo: f64, hi: f64, max_ticks: usize) -> Axis {
        let (mut lo, mut hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
        let ticks = |lo: f64, hi: f64| RangedCoordf64::from(lo..hi).key_points(max_ticks);
        let mut step = hi - lo;
        // Widen to whole steps (without float noise such as 0.7000000000000001) until plotters
        // picks the same step for the widened range, so that both ends are ticks.
        for _ in 0..4 {
            step = match ticks(lo, hi)[..] {
                [a, b, ..] => b - a,
                _ => hi - lo,
            };
            let clean = |v: f64| (v * 1e9).round() / 1e9;
            let down = clean((lo / step + 1e-9).floor() * step);
            let widened = (down, clean((hi / step - 1e-9).ceil() * step));
            if widened == (lo, hi) {
                break;
            }
            (lo, hi) = widened;
        }
        // The fewest decimals that print the step as a whole number of units (of at least one,
        // so that a step of 1e-7 does not print as 0).
        let whole = |x: f64| x.round() >= 1.0 && (x - x.round()).abs() <= 1e-6 * x;
        let decimals = (0..10).find(|d| whole(step * 10f64.powi(*d)));
        let (ticks, decimals) = (ticks(lo, hi), decimals.unwrap_or(10) as usize);
        Axis {
            lo,
            hi,
            ticks,
            decimals,
            max_ticks,
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
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
}

/// Height of an axis title, gap included, when there is one.
pub fn desc(d: &Option<String>) -> f64 {
    f64::from(u8::from(d.is_some())) * (em(AXIS_SIZE) * 1.1 + GAP)
}

/// Height of a block of `n` lines of text.
pub fn block(n: usize, size: f64) -> f64 {
    (n as f64 - 1.0) * em(size) * LINE + em(size)
}

/// Room between an axis and its category labels.
const LABEL_GAP: f64 = 6.0;

/// A category axis' labels: under the axis (each wrapped to its slot, or all turned vertical
/// when a single word does not fit) or left of it (in full, or wrapped to a given width).
pub struct Cats {
    lines: Vec<Vec<String>>,
    rotated: bool,
    left: bool,
}

impl Cats {
    fn new(names: &[String], max: Option<f64>, left: bool) -> Cats {
        let wrap =
            |n: &String| max.map_or_else(|| vec![n.clone()], |m| wrap(n, m, TICK_SIZE, false));
        Cats {
            lines: names.iter().map(wrap).collect(),
            rotated: false,
            left,
        }
    }

    fn below(names: &[String], slot: f64) -> Cats {
        let c = Cats::new(names, Some(slot - 8.0), false);
        match max_width(c.lines.iter().flatten(), TICK_SIZE, false) > slot - 4.0 {
            true => Cats {
                rotated: true,
                ..Cats::new(names, None, false)
            },
            false => c,
        }
    }

    /// Labels left of the axis, wrapped when a given canvas `width` leaves less than their
    /// width after `other` pixels (at least 60 px stay for the labels).
    pub fn left(names: &[String], width: Option<u32>, other: f64) -> Cats {
        let room = width.map_or(f64::INFINITY, |w| f64::from(w) - other);
        match Cats::new(names, None, true) {
            c if c.depth() > room && room >= 60.0 => Cats::new(names, Some(room), true),
            c => c,
        }
    }

    pub fn most_lines(&self) -> usize {
        self.lines.iter().map(Vec::len).max().unwrap_or(1)
    }

    /// How far the labels reach from the axis, gap included.
    pub fn depth(&self) -> f64 {
        LABEL_GAP
            + match self.left || self.rotated {
                true => max_width(self.lines.iter().flatten(), TICK_SIZE, false),
                false => block(self.most_lines(), TICK_SIZE),
            }
    }

    /// Draws label `i` centred on `centres[i]` (pixels along the axis), the axis at `axis`.
    fn draw<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, Shift>,
        axis: f64,
        centres: &[f64],
    ) -> Result<(), String> {
        let (line_h, base) = (em(TICK_SIZE) * LINE, style(TICK_SIZE, false, TEXT));
        for (lines, &c) in self.lines.iter().zip(centres) {
            let top = c - block(lines.len(), TICK_SIZE) / 2.0;
            for (i, l) in lines.iter().enumerate() {
                let (h, v, down) = (HPos::Center, VPos::Top, i as f64 * line_h);
                let (at, s) = match (self.left, self.rotated) {
                    (true, _) => (
                        (axis - LABEL_GAP, top + down),
                        base.pos(Pos::new(HPos::Right, v)),
                    ),
                    (_, true) => (
                        (c, axis + LABEL_GAP),
                        base.pos(Pos::new(HPos::Right, VPos::Center))
                            .transform(FontTransform::Rotate270),
                    ),
                    _ => ((c, axis + LABEL_GAP + down), base.pos(Pos::new(h, v))),
                };
                text(root, l, at, &s)?;
            }
        }
        Ok(())
    }
}

/// The plot area, the label areas and the title on a canvas: the one layout of both charts.
#[derive(Default)]
pub struct Frame {
    pub width: u32,
    pub height: u32,
    title: Vec<String>,
    /// The plot area `[left, top, width, height]` and the height of the label area under it.
    pub plot: [f64; 4],
    pub below: f64,
    cats_left: Option<Cats>,
    cats_below: Option<Cats>,
}

/// What lies under the plot: category labels (one per slot) and the height of their axis
/// title, or a label area of a fixed height.
pub enum Below<'a> {
    Cats(&'a [String], f64),
    Fixed(f64),
}

impl Frame {
    /// Lays out a plot with `left`/`right` pixels beside it, of size `auto` (at least `min`)
    /// unless `p` gives the canvas size; a title wider than that widens both margins alike.
    /// `legend_below` gives the room a legend under the labels takes for a canvas width.
    pub fn new(
        p: &Params,
        (mut left, mut right): (f64, f64),
        cats_left: Option<Cats>,
        auto: (f64, f64),
        min: (f64, f64),
        below: Below<'_>,
        legend_below: impl FnOnce(u32) -> f64,
    ) -> Result<Frame, String> {
        let (given_w, given_h) = (p.width, p.height);
        let plot_w = plot_len("width", given_w, left + right, auto.0, min.0)?;
        let title = has(&p.title);
        let need = title
            .as_ref()
            .map_or(0.0, |t| width(t, TITLE_SIZE, true) + 2.0 * MARGIN);
        let extra = need.min(MAX_TITLE_WIDTH) - (left + plot_w + right);
        if given_w.is_none() && extra > 0.0 {
            (left, right) = (left + extra / 2.0, right + extra / 2.0);
        }
        let (below, cats_below) = match below {
            Below::Cats(names, desc) => {
                let cats = Cats::below(names, plot_w / names.len() as f64);
                (cats.depth() + desc, Some(cats))
            }
            Below::Fixed(h) => (h, None),
        };
        let width = given_w.unwrap_or((left + plot_w + right).ceil() as u32);
        let room = f64::from(width) - 2.0 * MARGIN;
        let title = title.map_or(vec![], |t| wrap(&t, room, TITLE_SIZE, true));
        let title_h = match title.len() {
            0 => em(TICK_SIZE) / 2.0,
            n => block(n, TITLE_SIZE) + GAP,
        };
        let top = MARGIN + title_h;
        let fixed = top + below + MARGIN + legend_below(width);
        let plot_h = plot_len("height", given_h, fixed, auto.1, min.1)?;
        let height = given_h.unwrap_or((fixed + plot_h).ceil() as u32);
        let plot = [left, top, plot_w, plot_h];
        Ok(Frame {
            width,
            height,
            title,
            plot,
            below,
            cats_left,
            cats_below,
        })
    }

    /// Fills the canvas, draws the title and returns a chart builder on the plot area.
    pub fn chart<'a, 'b, DB: DrawingBackend>(
        &self,
        root: &'a DrawingArea<DB, Shift>,
    ) -> Result<ChartBuilder<'a, 'b, DB>, String> {
        root.fill(&WHITE).map_err(err)?;
        let s = style(TITLE_SIZE, true, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, line) in self.title.iter().enumerate() {
            let y = MARGIN + i as f64 * em(TITLE_SIZE) * LINE;
            text(root, line, (f64::from(self.width / 2), y), &s)?;
        }
        let r = |v: f64| v.round() as u32;
        let [left, top, w, h] = self.plot;
        let mut b = ChartBuilder::on(root);
        b.margin_left(r(MARGIN))
            .margin_top(r(top))
            .margin_right(self.width.saturating_sub(r(left + w)))
            .margin_bottom(self.height.saturating_sub(r(top + h + self.below)))
            .y_label_area_size(r(left - MARGIN))
            .x_label_area_size(r(self.below));
        Ok(b)
    }

    /// Draws the category labels centred on `left[i]` (pixels down) left of the plot area
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
        let cats = self.cats_left.as_ref();
        cats.map_or(Ok(()), |c| c.draw(root, f64::from(xs.start), left))
    }
}

/// The plot-area length along one side: what `given` leaves after `fixed` pixels of margins and
/// labels, or `auto` when nothing is given. Errors when less than `min` would remain.
fn plot_len(key: &str, given: Option<u32>, fixed: f64, auto: f64, min: f64) -> Result<f64, String> {
    match given.map(f64::from) {
        None => Ok(auto.max(min)),
        Some(g) if g - fixed >= min => Ok(g - fixed),
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
