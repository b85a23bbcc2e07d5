//! A chart as a flat list of pixel-space primitives (filled rectangles and text), the embedded
//! font that measures and draws its text, and the two renderers (SVG and PNG through plotters).
//!
//! Layout code builds a [`Scene`]; nothing in it depends on the output format, so the SVG and
//! the PNG show the same chart and tests can check the layout (e.g. that no two labels overlap)
//! without rendering.

use std::path::Path;
use std::sync::OnceLock;

use plotters::backend::{BitMapBackend, DrawingBackend, SVGBackend};

use super::ttf::Face;
use plotters::drawing::{DrawingArea, IntoDrawingArea};
use plotters::element::Rectangle;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use plotters::style::{
    Color, FontStyle, FontTransform, IntoFont, RGBColor, TextStyle, register_font,
};

/// DejaVu Sans (see `assets/fonts/LICENSE-DejaVu.txt`), embedded so that the PNG never depends
/// on the fonts of the machine that renders it.
static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// The font family every text primitive uses (also what the SVG names).
const FAMILY: &str = "sans-serif";

/// Glyph tables of the embedded fonts (regular, bold), for placing PNG glyphs.
fn faces() -> &'static (Option<Face>, Option<Face>) {
    static FACES: OnceLock<(Option<Face>, Option<Face>)> = OnceLock::new();
    FACES.get_or_init(|| (Face::parse(REGULAR), Face::parse(BOLD)))
}

/// Registers the embedded fonts with plotters, once per process.
pub fn ensure_fonts() -> Result<(), String> {
    static DONE: OnceLock<Result<(), String>> = OnceLock::new();
    DONE.get_or_init(|| {
        register_font(FAMILY, FontStyle::Normal, REGULAR)
            .map_err(|_| "the embedded DejaVu Sans font is invalid".to_string())?;
        register_font(FAMILY, FontStyle::Bold, BOLD)
            .map_err(|_| "the embedded DejaVu Sans Bold font is invalid".to_string())?;
        Ok(())
    })
    .clone()
}

fn font_style(bold: bool) -> FontStyle {
    if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    }
}

/// Advance width in pixels of `text` at `size` as the PNG renderer draws it (the SVG draws the
/// same text slightly narrower, so layouts made with this width fit both).
pub fn text_width(text: &str, size: f64, bold: bool) -> Result<f64, String> {
    ensure_fonts()?;
    let font = (FAMILY, size, font_style(bold)).into_font();
    font.box_size(text)
        .map(|(w, _)| f64::from(w))
        .map_err(|e| format!("cannot measure text {text:?}: {e}"))
}

/// Top of the glyphs relative to the baseline, as a fraction of the font size (DejaVu ascent).
pub const ASCENT: f64 = 0.8;
/// Bottom of the glyphs relative to the baseline, as a fraction of the font size.
pub const DESCENT: f64 = 0.2;

/// A colour as 8-bit sRGB.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

impl Rgb {
    pub const WHITE: Rgb = Rgb(255, 255, 255);
    pub const TEXT: Rgb = Rgb(0x22, 0x22, 0x22);
    pub const AXIS: Rgb = Rgb(0x44, 0x44, 0x44);
    pub const GRID: Rgb = Rgb(0xE0, 0xE0, 0xE0);

    /// Parses `#RRGGBB` (only used on the built-in tables).
    pub const fn hex(v: u32) -> Rgb {
        Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8)
    }

    /// WCAG relative luminance.
    pub fn luminance(self) -> f64 {
        fn lin(c: u8) -> f64 {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        }
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// Black or white, whichever contrasts more with `self` as a background.
    pub fn contrasting_text(self) -> Rgb {
        let l = self.luminance();
        let on_white = 1.05 / (l + 0.05);
        let on_black = (l + 0.05) / 0.05;
        if on_white >= on_black {
            Rgb::WHITE
        } else {
            Rgb(0, 0, 0)
        }
    }

    fn plotters(self) -> RGBColor {
        RGBColor(self.0, self.1, self.2)
    }
}

/// Which point of a text line its `x` (or, for vertical text, its `y`) names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Anchor {
    Start,
    Middle,
    End,
}

/// One line of text.
///
/// Horizontal text: `x` is the anchor point along the line and `y` the baseline. Vertical text
/// reads bottom to top: `x` is the baseline (glyphs extend to the left of it) and `y` the anchor
/// point along the line (`Start` = the bottom end).
#[derive(Clone, Debug, PartialEq)]
pub struct Text {
    pub text: String,
    pub x: f64,
    pub y: f64,
    pub size: f64,
    pub bold: bool,
    pub anchor: Anchor,
    pub vertical: bool,
    pub color: Rgb,
    /// Measured advance width (filled in by [`Text::new`]).
    pub width: f64,
}

impl Text {
    /// A horizontal line of text, measured.
    pub fn new(text: &str, x: f64, y: f64, size: f64, anchor: Anchor) -> Result<Text, String> {
        Ok(Text {
            text: text.to_string(),
            x,
            y,
            size,
            bold: false,
            anchor,
            vertical: false,
            color: Rgb::TEXT,
            width: text_width(text, size, false)?,
        })
    }

    pub fn bold(mut self) -> Result<Text, String> {
        self.bold = true;
        self.width = text_width(&self.text, self.size, true)?;
        Ok(self)
    }

    pub fn vertical(mut self) -> Text {
        self.vertical = true;
        self
    }

    pub fn color(mut self, c: Rgb) -> Text {
        self.color = c;
        self
    }

    /// Bounding box `(x0, y0, x1, y1)` of the line's glyph area.
    pub fn bbox(&self) -> (f64, f64, f64, f64) {
        let along = match self.anchor {
            Anchor::Start => 0.0,
            Anchor::Middle => -self.width / 2.0,
            Anchor::End => -self.width,
        };
        if self.vertical {
            // Reading upward: "along" grows towards smaller y.
            let y1 = self.y - along;
            (
                self.x - ASCENT * self.size,
                y1 - self.width,
                self.x + DESCENT * self.size,
                y1,
            )
        } else {
            let x0 = self.x + along;
            (
                x0,
                self.y - ASCENT * self.size,
                x0 + self.width,
                self.y + DESCENT * self.size,
            )
        }
    }
}

/// A filled axis-aligned rectangle, in whole pixels (`x1`, `y1` exclusive).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x0: i32,
    pub y0: i32,
    pub x1: i32,
    pub y1: i32,
    pub color: Rgb,
}

impl Rect {
    /// A rectangle from fractional edges, each rounded to the nearest pixel so that shapes
    /// sharing an edge stay adjacent.
    pub fn from_edges(x0: f64, y0: f64, x1: f64, y1: f64, color: Rgb) -> Rect {
        let (x0, x1) = (x0.min(x1), x0.max(x1));
        let (y0, y1) = (y0.min(y1), y0.max(y1));
        Rect {
            x0: x0.round() as i32,
            y0: y0.round() as i32,
            x1: x1.round() as i32,
            y1: y1.round() as i32,
            color,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Prim {
    Rect(Rect),
    Text(Text),
}

/// A chart ready to render: its size in pixels and its primitives in drawing order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scene {
    pub width: u32,
    pub height: u32,
    pub prims: Vec<Prim>,
}

impl Scene {
    pub fn rect(&mut self, r: Rect) {
        if r.x1 > r.x0 && r.y1 > r.y0 {
            self.prims.push(Prim::Rect(r));
        }
    }

    pub fn text(&mut self, t: Text) {
        if !t.text.is_empty() {
            self.prims.push(Prim::Text(t));
        }
    }

    pub fn texts(&self) -> impl Iterator<Item = &Text> {
        self.prims.iter().filter_map(|p| match p {
            Prim::Text(t) => Some(t),
            Prim::Rect(_) => None,
        })
    }

    /// Writes the scene as an SVG document.
    pub fn write_svg(&self, path: &Path) -> Result<(), String> {
        let mut buf = String::new();
        {
            let area =
                SVGBackend::with_string(&mut buf, (self.width, self.height)).into_drawing_area();
            self.draw(&area, SVG_TOP, false)?;
            area.present()
                .map_err(|e| format!("cannot render the SVG: {e}"))?;
        }
        std::fs::write(path, buf).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// Writes the scene as a PNG image of exactly `width` x `height` pixels.
    ///
    /// The scene is drawn at [`SUPERSAMPLE`] times the size and box-filtered down: the
    /// rasteriser places each glyph on a whole pixel, which at 1x makes letter spacing uneven.
    pub fn write_png(&self, path: &Path) -> Result<(), String> {
        let (w, h) = (self.width, self.height);
        let k = SUPERSAMPLE;
        let mut big = vec![0u8; (w * k) as usize * (h * k) as usize * 3];
        {
            let area = BitMapBackend::with_buffer(&mut big, (w * k, h * k)).into_drawing_area();
            self.scaled(f64::from(k)).draw(&area, PNG_TOP, true)?;
            area.present()
                .map_err(|e| format!("cannot render the PNG: {e}"))?;
        }
        let small = downsample(&big, w as usize, h as usize, k as usize);
        let mut backend = BitMapBackend::new(path, (w, h));
        backend
            .blit_bitmap((0, 0), (w, h), &small)
            .map_err(|e| format!("cannot render the PNG: {e}"))?;
        backend
            .present()
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    /// The scene with every coordinate and font size multiplied by `k`.
    fn scaled(&self, k: f64) -> Scene {
        let ki = k as i32;
        let prims = self
            .prims
            .iter()
            .map(|p| match p {
                Prim::Rect(r) => Prim::Rect(Rect {
                    x0: r.x0 * ki,
                    y0: r.y0 * ki,
                    x1: r.x1 * ki,
                    y1: r.y1 * ki,
                    color: r.color,
                }),
                Prim::Text(t) => Prim::Text(Text {
                    x: t.x * k,
                    y: t.y * k,
                    size: t.size * k,
                    width: t.width * k,
                    ..t.clone()
                }),
            })
            .collect();
        Scene {
            width: self.width * ki as u32,
            height: self.height * ki as u32,
            prims,
        }
    }

    /// Draws every primitive; `top` is where each backend puts the baseline below a text's
    /// anchor point with `VPos::Top`, as a fraction of the font size. With `per_glyph`, text is
    /// drawn one glyph at a time at its true outline position (see [`super::ttf`]).
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, plotters::coord::Shift>,
        top: f64,
        per_glyph: bool,
    ) -> Result<(), String> {
        ensure_fonts()?;
        let err = |e: plotters::drawing::DrawingAreaErrorKind<DB::ErrorType>| {
            format!("cannot draw the chart: {e}")
        };
        area.fill(&Rgb::WHITE.plotters()).map_err(err)?;
        for p in &self.prims {
            match p {
                Prim::Rect(r) => {
                    let rect =
                        Rectangle::new([(r.x0, r.y0), (r.x1, r.y1)], r.color.plotters().filled());
                    area.draw(&rect).map_err(err)?;
                }
                Prim::Text(t) => {
                    let color = t.color.plotters();
                    let face = if t.bold { &faces().1 } else { &faces().0 };
                    let glyphs = if per_glyph { face.as_ref() } else { None };
                    let hpos = match (glyphs.is_some(), t.anchor) {
                        (true, _) | (false, Anchor::Start) => HPos::Left,
                        (false, Anchor::Middle) => HPos::Center,
                        (false, Anchor::End) => HPos::Right,
                    };
                    let mut style: TextStyle = (FAMILY, t.size, font_style(t.bold))
                        .into_font()
                        .color(&color)
                        .pos(Pos::new(hpos, VPos::Top));
                    if t.vertical {
                        style = style.transform(FontTransform::Rotate270);
                    }
                    // Position across the line (from the baseline) and along it.
                    let across = if t.vertical {
                        (t.x - top * t.size).round() as i32
                    } else {
                        (t.y - top * t.size).round() as i32
                    };
                    let along = if t.vertical { t.y } else { t.x };
                    let at = |a: f64| {
                        if t.vertical {
                            (across, (along - a).round() as i32)
                        } else {
                            (across, (along + a).round() as i32)
                        }
                    };
                    let pos = |(c, a): (i32, i32)| if t.vertical { (c, a) } else { (a, c) };
                    let Some(face) = glyphs else {
                        area.draw_text(&t.text, &style, pos(at(0.0))).map_err(err)?;
                        continue;
                    };
                    let width = text_width(&t.text, t.size, t.bold)?;
                    let start = match t.anchor {
                        Anchor::Start => 0.0,
                        Anchor::Middle => -width / 2.0,
                        Anchor::End => -width,
                    };
                    let scale = t.size / face.height;
                    for (i, c) in t.text.char_indices() {
                        let Some(x_min) = face.x_min(c) else { continue };
                        // Pen position of `c`: the line up to and including `c` (so the
                        // kerning with the previous glyph counts) minus `c`'s own advance.
                        let end = i + c.len_utf8();
                        let pen = start + text_width(&t.text[..end], t.size, t.bold)?
                            - text_width(&t.text[i..end], t.size, t.bold)?;
                        let bearing = (f64::from(x_min) * scale).floor() as i32;
                        let (cross, a) = at(pen);
                        let a = if t.vertical { a - bearing } else { a + bearing };
                        let glyph = &t.text[i..end];
                        area.draw_text(glyph, &style, pos((cross, a)))
                            .map_err(err)?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// Linear supersampling factor of the PNG renderer.
const SUPERSAMPLE: u32 = 2;

/// Box filter: each `k` x `k` block of the RGB image `big` (`w * k` x `h * k`) becomes one
/// pixel, rounded to nearest.
fn downsample(big: &[u8], w: usize, h: usize, k: usize) -> Vec<u8> {
    let bw = w * k;
    let n = (k * k) as u32;
    let mut out = vec![0u8; w * h * 3];
    for y in 0..h {
        for x in 0..w {
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..k {
                    let row = (y * k + dy) * bw;
                    for dx in 0..k {
                        sum += u32::from(big[(row + x * k + dx) * 3 + c]);
                    }
                }
                out[(y * w + x) * 3 + c] = ((sum + n / 2) / n) as u8;
            }
        }
    }
    out
}

/// The SVG backend writes `dy="0.76em"` with `font-size = size / 1.24`.
const SVG_TOP: f64 = 0.76 / 1.24;
/// The ab_glyph rasteriser puts the baseline half a font size below the anchor.
const PNG_TOP: f64 = 0.5;

/// Greedy word wrap of `text` into lines no wider than `max` pixels (a single word wider than
/// `max` stays on its own line).
pub fn wrap(text: &str, max: f64, size: f64, bold: bool) -> Result<Vec<String>, String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if cur.is_empty() {
            cur = word.to_string();
            continue;
        }
        let candidate = format!("{cur} {word}");
        if text_width(&candidate, size, bold)? <= max {
            cur = candidate;
        } else {
            lines.push(std::mem::take(&mut cur));
            cur = word.to_string();
        }
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    Ok(lines)
}

/// Widest of `texts` at `size`.
pub fn max_width<'a>(
    texts: impl IntoIterator<Item = &'a str>,
    size: f64,
    bold: bool,
) -> Result<f64, String> {
    let mut w: f64 = 0.0;
    for t in texts {
        w = w.max(text_width(t, size, bold)?);
    }
    Ok(w)
}
