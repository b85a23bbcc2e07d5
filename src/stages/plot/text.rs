//! Text: the embedded DejaVu Sans, its metrics (through ab_glyph), word wrap, where a line of
//! text lands for a plotters text style, and [`Png`]: plotters' bitmap backend with text drawn
//! glyph by glyph, noting every label and filled rectangle.
//!
//! Why [`Png`] draws glyphs by hand: plotters' ab_glyph path (0.3.7) drops each glyph's left
//! side bearing and rounds every glyph to a whole pixel, so `i`, `n`, `o` land too far left and
//! letter spacing is uneven. [`Png`] places each glyph at its true subpixel position with
//! ab_glyph and puts the baseline where plotters' SVG backend asks the browser to (`dy` of
//! `0.76em`, `0.5ex`, `-0.5ex`; font size / 1.24), so the PNG and the SVG set text alike.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, point};
use plotters::backend::{BitMapBackend, DrawingBackend};
use plotters::style::text_anchor::{HPos, VPos};
use plotters::style::{FontStyle, FontTransform, IntoFont, RGBColor, TextStyle, register_font};
use plotters_backend::{
    BackendColor, BackendCoord, BackendStyle, BackendTextStyle, DrawingErrorKind,
};

use super::frame::em;

/// DejaVu Sans (see `assets/fonts/LICENSE-DejaVu.txt`), embedded so that the PNG never depends
/// on the fonts of the machine that renders it.
static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

/// The family every text uses. The SVG names it as it is, so a viewer with DejaVu Sans sets the
/// text exactly as the PNG, and one without it falls back to its sans-serif.
pub const FAMILY: &str = "DejaVu Sans, sans-serif";

/// Top of a line's box above its baseline, and bottom below it, in ems (DejaVu Sans: capitals
/// reach 0.73 em, descenders 0.24 em).
const ASCENT: f64 = 0.76;
const DESCENT: f64 = 0.24;
/// DejaVu Sans' x-height in ems (what the browser takes for `1ex`).
const EX: f64 = 1120.0 / 2048.0;

/// The two faces, registered with plotters for the SVG backend's measurements. The fonts are
/// compiled in, so a failure is a build defect (the tests parse them), not a user error.
fn face(bold: bool) -> &'static FontRef<'static> {
    static FACES: OnceLock<[FontRef<'static>; 2]> = OnceLock::new();
    let faces = FACES.get_or_init(|| {
        let bad = "the embedded DejaVu Sans font is invalid";
        register_font(FAMILY, FontStyle::Normal, REGULAR)
            .map_err(|_| bad)
            .expect(bad);
        register_font(FAMILY, FontStyle::Bold, BOLD)
            .map_err(|_| bad)
            .expect(bad);
        [REGULAR, BOLD].map(|b| FontRef::try_from_slice(b).expect(bad))
    });
    &faces[usize::from(bold)]
}

/// A text style of the embedded family.
pub fn style(size: f64, bold: bool, color: RGBColor) -> TextStyle<'static> {
    let s = if bold {
        FontStyle::Bold
    } else {
        FontStyle::Normal
    };
    (FAMILY, size, s).into_font().color(&color)
}

/// The glyphs of a line of `text` at plotters font size `size`, each with its pen position in
/// pixels from the line's start, and the line's advance width (kerning included).
fn set(text: &str, size: f64, bold: bool) -> (Vec<(GlyphId, f64)>, f64) {
    let f = face(bold);
    let k = em(size) / f64::from(f.units_per_em().unwrap_or(2048.0));
    let (mut pen, mut prev, mut glyphs) = (0.0, None, Vec::new());
    for c in text.chars() {
        let id = f.glyph_id(c);
        if let Some(p) = prev {
            pen += f64::from(f.kern_unscaled(p, id));
        }
        glyphs.push((id, pen * k));
        pen += f64::from(f.h_advance_unscaled(id));
        prev = Some(id);
    }
    (glyphs, pen * k)
}

/// Advance width in pixels of `text` at plotters font size `size`, kerning included.
pub fn width(text: &str, size: f64, bold: bool) -> f64 {
    set(text, size, bold).1
}

/// Widest of `texts`.
pub fn max_width<T: AsRef<str>>(texts: impl IntoIterator<Item = T>, size: f64, bold: bool) -> f64 {
    (texts.into_iter()).fold(0.0, |m: f64, t| m.max(width(t.as_ref(), size, bold)))
}

/// Greedy word wrap into lines no wider than `max` pixels (a word wider than `max` keeps a line
/// of its own). Hand-written: plotters' `MultiLineText` breaks inside words.
pub fn wrap(text: &str, max: f64, size: f64, bold: bool) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if width(&format!("{l} {word}"), size, bold) <= max => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// Pen start along the line and baseline across it, relative to the anchor point, in the
/// line's own frame (x along the text, y down), plus the text width.
fn origin<S: BackendTextStyle>(text: &str, s: &S) -> (f64, f64, f64) {
    let w = width(text, s.size(), matches!(s.style(), FontStyle::Bold));
    let e = em(s.size());
    let u = match s.anchor().h_pos {
        HPos::Left => 0.0,
        HPos::Center => -w / 2.0,
        HPos::Right => -w,
    };
    let v = match s.anchor().v_pos {
        VPos::Top => ASCENT * e,
        VPos::Center => 0.5 * EX * e,
        VPos::Bottom => -0.5 * EX * e,
    };
    (u, v, w)
}

/// A point of a line's own frame on the canvas (SVG's `rotate(a, x, y)` about the anchor).
fn place(t: &FontTransform, (x, y): BackendCoord, u: f64, v: f64) -> (f64, f64) {
    let (x, y) = (f64::from(x), f64::from(y));
    match t {
        FontTransform::Rotate90 => (x - v, y + u),
        FontTransform::Rotate180 => (x - u, y - v),
        FontTransform::Rotate270 => (x + v, y - u),
        FontTransform::None => (x + u, y + v),
    }
}

/// The box `(x0, y0, x1, y1)` a line of text covers on the canvas.
pub fn bbox<S: BackendTextStyle>(text: &str, s: &S, pos: BackendCoord) -> (f64, f64, f64, f64) {
    let (u, v, w) = origin(text, s);
    let e = em(s.size());
    let t = s.transform();
    let (ax, ay) = place(&t, pos, u, v - ASCENT * e);
    let (bx, by) = place(&t, pos, u + w, v + DESCENT * e);
    (ax.min(bx), ay.min(by), ax.max(bx), ay.max(by))
}

/// A line of text as drawn: its content, box and colour.
#[derive(Clone, Debug, PartialEq)]
pub struct Label {
    pub text: String,
    pub bbox: (f64, f64, f64, f64),
    pub rgb: (u8, u8, u8),
}

/// A filled rectangle as drawn: inclusive pixel corners `(x0, y0, x1, y1)` and colour.
pub type Rect = ((i32, i32, i32, i32), (u8, u8, u8));

/// plotters' bitmap backend with text drawn glyph by glyph (see the module docs), noting every
/// line of text and filled rectangle: what the size check and the layout tests look at.
pub struct Png<'a> {
    pub bitmap: BitMapBackend<'a>,
    pub labels: Vec<Label>,
    pub rects: Vec<Rect>,
}

impl<'a> Png<'a> {
    pub fn new(bitmap: BitMapBackend<'a>) -> Png<'a> {
        Png {
            bitmap,
            labels: Vec::new(),
            rects: Vec::new(),
        }
    }
}

type Res<T> = Result<T, DrawingErrorKind<<BitMapBackend<'static> as DrawingBackend>::ErrorType>>;

impl DrawingBackend for &mut Png<'_> {
    type ErrorType = <BitMapBackend<'static> as DrawingBackend>::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.bitmap.get_size()
    }
    fn ensure_prepared(&mut self) -> Res<()> {
        self.bitmap.ensure_prepared()
    }
    fn present(&mut self) -> Res<()> {
        self.bitmap.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Res<()> {
        self.bitmap.draw_pixel(p, c)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Res<()> {
        if fill && s.color().alpha > 0.0 {
            self.rects.push(((a.0, a.1, b.0, b.1), s.color().rgb));
        }
        self.bitmap.draw_rect(a, b, s, fill)
    }
    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, s: &S) -> Res<(u32, u32)> {
        let w = width(text, s.size(), matches!(s.style(), FontStyle::Bold));
        Ok((w.round() as u32, em(s.size()).round() as u32))
    }
    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, s: &S, pos: BackendCoord) -> Res<()> {
        let color = s.color();
        if text.is_empty() || color.alpha == 0.0 {
            return Ok(());
        }
        self.labels.push(Label {
            text: text.to_string(),
            bbox: bbox(text, s, pos),
            rgb: color.rgb,
        });
        let bold = matches!(s.style(), FontStyle::Bold);
        let (f, (u, v, _)) = (face(bold), origin(text, s));
        let k = em(s.size()) / f64::from(f.units_per_em().unwrap_or(2048.0));
        let scale = PxScale::from((k * f64::from(f.height_unscaled())) as f32);
        for (id, x) in set(text, s.size(), bold).0 {
            let glyph = id.with_scale_and_position(scale, point((u + x) as f32, v as f32));
            let Some(outline) = f.outline_glyph(glyph) else {
                continue;
            };
            let b = outline.px_bounds();
            let mut pixels = Vec::new();
            outline.draw(|gx, gy, cov| {
                // The centre of the glyph's pixel, turned with the line.
                let lu = f64::from(b.min.x) + f64::from(gx) + 0.5;
                let lv = f64::from(b.min.y) + f64::from(gy) + 0.5;
                let (x, y) = place(&s.transform(), pos, lu, lv);
                pixels.push(((x.floor() as i32, y.floor() as i32), cov.min(1.0)));
            });
            for (p, cov) in pixels.into_iter().filter(|(_, c)| *c > 0.0) {
                let alpha = color.alpha * f64::from(cov);
                self.bitmap.draw_pixel(p, BackendColor { alpha, ..color })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widths_kern_and_wrap_by_words() {
        let one = width("AV", 15.0, false);
        let apart = width("A", 15.0, false) + width("V", 15.0, false);
        assert!(one < apart, "kerning: {one} vs {apart}");
        assert!(width("Bold", 15.0, true) > width("Bold", 15.0, false));
        let lines = wrap("Incorrect Job Context Management", 120.0, 15.0, false);
        assert_eq!(lines, ["Incorrect Job", "Context", "Management"]);
        for l in &lines {
            assert!(width(l, 15.0, false) <= 120.0 || !l.contains(' '));
        }
        assert_eq!(wrap("", 10.0, 15.0, false), [""]);
    }

    /// plotters' own ab_glyph path inks every glyph from the pen position; the PNG backend
    /// keeps each glyph's left side bearing, as a browser does.
    #[test]
    fn png_glyphs_keep_their_side_bearing() {
        let f = face(false);
        let k = em(24.8) / f64::from(f.units_per_em().expect("units per em"));
        for c in ['n', 'o', 'l'] {
            let bearing = k * f64::from(f.h_side_bearing_unscaled(f.glyph_id(c)));
            assert!(bearing >= 1.0, "{c}: {bearing}");
            let mut buf = vec![255u8; 60 * 40 * 3];
            let mut png = Png::new(BitMapBackend::with_buffer(&mut buf, (60, 40)));
            let st = style(24.8, false, RGBColor(0, 0, 0));
            (&mut png)
                .draw_text(&c.to_string(), &st, (10, 5))
                .expect("draw");
            drop(png);
            let inked = (0..60 * 40)
                .filter(|i| buf[i * 3] < 128)
                .map(|i| i % 60)
                .min();
            let first = inked.expect("ink") as f64;
            assert!(
                (first - (10.0 + bearing)).abs() <= 1.0,
                "{c}: ink starts at x={first}, the outline at {}",
                10.0 + bearing
            );
        }
    }

    #[test]
    fn boxes_follow_anchor_and_rotation() {
        let s = style(12.4, false, RGBColor(0, 0, 0));
        let w = width("Engine", 12.4, false);
        let top = s.pos(plotters::style::text_anchor::Pos::new(
            HPos::Center,
            VPos::Top,
        ));
        let (x0, y0, x1, y1) = bbox("Engine", &top, (100, 50));
        assert!((x0 - (100.0 - w / 2.0)).abs() < 1e-9 && (x1 - x0 - w).abs() < 1e-9);
        assert!(
            (y0 - 50.0).abs() < 1e-9 && (y1 - 60.0).abs() < 1e-9,
            "{y0} {y1}"
        );
        let up = top.transform(FontTransform::Rotate270);
        let (x0, y0, x1, y1) = bbox("Engine", &up, (100, 50));
        assert!((x0 - 100.0).abs() < 1e-9 && (x1 - 110.0).abs() < 1e-9);
        assert!((y1 - y0 - w).abs() < 1e-9 && (y0 + y1 - 100.0).abs() < 1e-9);
    }
}
