//! What bar charts and heatmaps share: sizes and colours, number formatting, the value axis'
//! range, the title, the check that a given `width`/`height` leaves room for the plot, and the
//! one category-axis layout (under vertical bars and heatmap columns, left of horizontal bars
//! and heatmap rows).

use plotters::chart::ChartBuilder;
use plotters::coord::Shift;
use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::drawing::{DrawingArea, DrawingAreaErrorKind};
use plotters::element::Text;
use plotters::prelude::DrawingBackend;
use plotters::style::colors::colormaps::{ColorMap as _, ViridisRGB};
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{FontTransform, RGBColor, TextStyle};

use super::text::{max_width, style, width, wrap};

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
/// Widest canvas made when `width` is not given (longer titles wrap).
pub const MAX_AUTO_WIDTH: f64 = 1800.0;

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

fn hex(v: u32) -> RGBColor {
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

/// cividis, 10 evenly spaced samples (R's `cividis(10)`); plotters ships viridis but not cividis.
const CIVIDIS: [u32; 10] = [
    0x00204D, 0x00336F, 0x39486B, 0x575C6D, 0x707173, 0x8A8779, 0xA69D75, 0xC4B56C, 0xE4CF5B,
    0xFFEA46,
];

/// A sequential colour map: plotters' viridis, or cividis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColorMap {
    cividis: bool,
    reversed: bool,
}

impl ColorMap {
    pub const VIRIDIS: ColorMap = ColorMap {
        cividis: false,
        reversed: false,
    };
    pub const CIVIDIS: ColorMap = ColorMap {
        cividis: true,
        reversed: false,
    };

    pub fn reversed(self) -> ColorMap {
        ColorMap {
            reversed: !self.reversed,
            ..self
        }
    }

    /// Colour at `t` in 0..=1 (clamped).
    pub fn at(self, t: f64) -> RGBColor {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let t = if self.reversed { 1.0 - t } else { t };
        if !self.cividis {
            return ViridisRGB.get_color_normalized(t, 0.0, 1.0);
        }
        let pos = t * 9.0;
        let i = (pos.floor() as usize).min(8);
        let (a, b, f) = (hex(CIVIDIS[i]), hex(CIVIDIS[i + 1]), pos - i as f64);
        let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
        RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// Every number a chart prints: exactly `decimals` decimals, never `-0`.
pub fn fmt_num(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
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

/// Most ticks on a value axis.
pub const TICKS: usize = 7;

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

    pub fn label(&self, v: f64, percent: bool) -> String {
        fmt_num(v, self.decimals) + if percent { "%" } else { "" }
    }

    pub fn label_width(&self, percent: bool) -> Result<f64, String> {
        let labels: Vec<String> = self.ticks.iter().map(|t| self.label(*t, percent)).collect();
        max_width(labels.iter().map(String::as_str), TICK_SIZE, false)
    }
}

/// The plot-area length along one side: what `given` leaves after `fixed` pixels of margins and
/// labels, or `auto` when nothing is given. Errors when less than `min` would remain.
pub fn plot_len(
    key: &str,
    given: Option<u32>,
    fixed: f64,
    auto: f64,
    min: f64,
) -> Result<f64, String> {
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

/// Final canvas length: the given one, or the content rounded up to a whole pixel.
pub fn canvas_len(given: Option<u32>, content: f64) -> u32 {
    given.unwrap_or_else(|| content.ceil().max(1.0) as u32)
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

/// A chart whose plot area is `[left, top, width, height]` on `root`, with `below` pixels of
/// label area under it: the axis titles go at the outer edges of the label areas.
pub fn builder<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    [left, top, w, h]: [f64; 4],
    below: f64,
) -> ChartBuilder<'a, 'b, DB> {
    let r = |v: f64| v.round() as u32;
    let (cw, ch) = root.dim_in_pixel();
    let mut b = ChartBuilder::on(root);
    b.margin_left(r(MARGIN))
        .margin_top(r(top))
        .margin_right(cw.saturating_sub(r(left + w)))
        .margin_bottom(ch.saturating_sub(r(top + h + below)))
        .y_label_area_size(r(left - MARGIN))
        .x_label_area_size(r(below));
    b
}

/// A drawing error as a message.
pub fn err<E: std::error::Error + Send + Sync>(e: DrawingAreaErrorKind<E>) -> String {
    format!("cannot draw the chart: {e}")
}

/// The title, wrapped to the canvas width.
pub struct Title(Vec<String>);

impl Title {
    pub fn new(title: Option<&str>, max: f64) -> Result<Title, String> {
        Ok(Title(match title {
            Some(t) if !t.trim().is_empty() => wrap(t, max, TITLE_SIZE, true)?,
            _ => Vec::new(),
        }))
    }

    /// Width of the unwrapped title plus margins (what an automatic canvas width must reach).
    pub fn need(title: Option<&str>) -> Result<f64, String> {
        match title {
            Some(t) if !t.trim().is_empty() => {
                Ok((width(t.trim(), TITLE_SIZE, true)? + 2.0 * MARGIN).min(MAX_AUTO_WIDTH))
            }
            _ => Ok(0.0),
        }
    }

    /// Height of the title block, including the gap below it.
    pub fn height(&self) -> f64 {
        match self.0.len() {
            0 => 0.0,
            n => (n as f64 - 1.0) * em(TITLE_SIZE) * LINE + em(TITLE_SIZE) + GAP,
        }
    }

    pub fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let cx = f64::from(root.dim_in_pixel().0 / 2);
        let s = style(TITLE_SIZE, true, TEXT).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, line) in self.0.iter().enumerate() {
            text(
                root,
                line,
                (cx, MARGIN + i as f64 * em(TITLE_SIZE) * LINE),
                &s,
            )?;
        }
        Ok(())
    }
}

/// A category axis' labels: under the axis (each wrapped to its slot, or all turned vertical
/// when a single word does not fit) or left of it (each in full, or wrapped to a given width).
pub struct Cats {
    lines: Vec<Vec<String>>,
    rotated: bool,
    left: bool,
}

/// Room between an axis and its labels.
pub const LABEL_GAP: f64 = 6.0;

impl Cats {
    pub fn below(names: &[String], slot: f64) -> Result<Cats, String> {
        let mut lines = Vec::with_capacity(names.len());
        let mut rotated = false;
        for n in names {
            let l = wrap(n, slot - 8.0, TICK_SIZE, false)?;
            rotated |= max_width(l.iter().map(String::as_str), TICK_SIZE, false)? > slot - 4.0;
            lines.push(l);
        }
        if rotated {
            lines = names.iter().map(|n| vec![n.clone()]).collect();
        }
        Ok(Cats {
            lines,
            rotated,
            left: false,
        })
    }

    pub fn left(names: &[String], max: Option<f64>) -> Result<Cats, String> {
        let lines = names
            .iter()
            .map(|n| match max {
                Some(m) => wrap(n, m, TICK_SIZE, false),
                None => Ok(vec![n.clone()]),
            })
            .collect::<Result<_, _>>()?;
        Ok(Cats {
            lines,
            rotated: false,
            left: true,
        })
    }

    fn widest(&self) -> Result<f64, String> {
        max_width(
            self.lines.iter().flatten().map(String::as_str),
            TICK_SIZE,
            false,
        )
    }

    pub fn most_lines(&self) -> usize {
        self.lines.iter().map(Vec::len).max().unwrap_or(1)
    }

    /// Height of a label block of `n` lines.
    fn block(n: usize) -> f64 {
        (n as f64 - 1.0) * em(TICK_SIZE) * LINE + em(TICK_SIZE)
    }

    /// How far the labels reach from the axis, gap included.
    pub fn depth(&self) -> Result<f64, String> {
        Ok(LABEL_GAP
            + if self.left || self.rotated {
                self.widest()?
            } else {
                Cats::block(self.most_lines())
            })
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
        assert_eq!(a.label(0.30000000000000004, true), "0.3%");
        let a = Axis::new(-12.0, 30.0, TICKS);
        assert_eq!((a.lo, a.hi), (-20.0, 30.0));
        // Widening to -30..40 makes plotters step by 20: the axis widens again, to ticks.
        let a = Axis::new(-26.0, 37.0, TICKS);
        assert_eq!((a.lo, a.hi), (-40.0, 40.0));
        assert_eq!(a.ticks, [-40.0, -20.0, 0.0, 20.0, 40.0]);
        let a = Axis::new(0.0, 0.0, TICKS);
        assert_eq!((a.lo, a.hi), (0.0, 1.0));
        assert_eq!(fmt_num(-0.0, 0), "0");
        assert_eq!(fmt_num(-0.04, 1), "0.0");
        assert_eq!(fmt_num(12.345, 1), "12.3");
        assert_eq!(label_decimals(None, [1.0, 2.0]), 0);
        assert_eq!(label_decimals(None, [1.5, 2.0]), 1);
        assert_eq!(label_decimals(Some(2), [1.0]), 2);
    }

    #[test]
    fn colour_maps_end_on_their_stops() {
        assert_eq!(ColorMap::VIRIDIS.at(0.0), RGBColor(68, 1, 84));
        assert_eq!(ColorMap::VIRIDIS.at(1.0), RGBColor(254, 232, 37));
        assert_eq!(ColorMap::VIRIDIS.reversed().at(0.0), RGBColor(254, 232, 37));
        assert_eq!(ColorMap::CIVIDIS.at(2.0), hex(0xFFEA46));
        assert_eq!(contrasting(RGBColor(68, 1, 84)), WHITE);
        assert_eq!(contrasting(RGBColor(254, 232, 37)), RGBColor(0, 0, 0));
    }
}
