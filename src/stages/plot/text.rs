//! Text: the embedded DejaVu Sans measured with ab_glyph, word wrap, the box a line of text
//! covers, and [`Png`]: plotters' bitmap backend with glyphs set by ab_glyph, noting every
//! label and filled rectangle drawn (what the size check and the layout tests look at).
//!
//! Why [`Png`] sets glyphs itself: plotters' ab_glyph path (0.3.7) drops each glyph's side
//! bearing, rounds every glyph to a whole pixel and scales text about 6 % larger than its SVG
//! backend does. [`Png`] sets glyphs at their subpixel positions, the baseline where the SVG's
//! `dy` puts it (`0.76em`, `0.5ex`, `-0.5ex`; the em is size / 1.24), so PNG and SVG agree.

use std::sync::OnceLock;

use ab_glyph::{Font, FontRef, GlyphId, PxScale, point};
use plotters::backend::{BitMapBackend, DrawingBackend};
use plotters::style::{FontStyle, FontTransform, IntoFont, RGBColor, TextStyle, register_font};
use plotters_backend::{BackendColor, BackendCoord, BackendStyle, BackendTextStyle};

use super::frame::em;

/// DejaVu Sans (`assets/fonts/LICENSE-DejaVu.txt`), embedded: the PNG never depends on the
/// machine's fonts. The SVG names the family, so a viewer with DejaVu Sans shows it alike.
static FONTS: [&[u8]; 2] = [
    include_bytes!("../../../assets/fonts/DejaVuSans.ttf"),
    include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf"),
];
pub const FAMILY: &str = "DejaVu Sans, sans-serif";
/// A line's box above and below its baseline, and the x-height (a browser's `1ex`), in ems.
const ASCENT: f64 = 0.76;
const DESCENT: f64 = 0.24;
const EX: f64 = 1120.0 / 2048.0;

/// The regular or bold face, registered with plotters on first use (for the SVG backend). The
/// fonts are compiled in, so a failure is a build defect (the tests load them).
fn face(bold: bool) -> &'static FontRef<'static> {
    static FACES: OnceLock<Vec<FontRef<'static>>> = OnceLock::new();
    let bad = "the embedded DejaVu Sans font is invalid";
    &FACES.get_or_init(|| {
        let styles = [FontStyle::Normal, FontStyle::Bold];
        (styles.into_iter().zip(FONTS))
            .map(|(s, b)| {
                register_font(FAMILY, s, b).map_err(|_| bad).expect(bad);
                FontRef::try_from_slice(b).expect(bad)
            })
            .collect()
    })[usize::from(bold)]
}

/// A text style of the embedded family.
pub fn style(size: f64, bold: bool, color: RGBColor) -> TextStyle<'static> {
    let s = [FontStyle::Normal, FontStyle::Bold][usize::from(bold)];
    (FAMILY, size, s).into_font().color(&color)
}

/// The glyphs of a line at plotters font size `size`, each with its pen position in pixels,
/// and the line's advance width (kerning included).
fn set(text: &str, size: f64, bold: bool) -> (Vec<(GlyphId, f64)>, f64) {
    let f = face(bold);
    let k = em(size) / f64::from(f.units_per_em().unwrap_or(2048.0));
    let (mut pen, mut prev, mut glyphs) = (0.0, None, Vec::new());
    for id in text.chars().map(|c| f.glyph_id(c)) {
        pen += prev.map_or(0.0, |p| f64::from(f.kern_unscaled(p, id)));
        glyphs.push((id, pen * k));
        pen += f64::from(f.h_advance_unscaled(id));
        prev = Some(id);
    }
    (glyphs, pen * k)
}

/// Advance width in pixels of a line at plotters font size `size`.
pub fn width(text: &str, size: f64, bold: bool) -> f64 {
    set(text, size, bold).1
}

/// Widest of `texts`.
pub fn max_width<T: AsRef<str>>(texts: impl IntoIterator<Item = T>, size: f64, bold: bool) -> f64 {
    (texts.into_iter()).fold(0.0, |m: f64, t| m.max(width(t.as_ref(), size, bold)))
}

/// Greedy word wrap into lines at most `max` pixels wide (a wider word keeps a line of its own).
/// Hand-written: plotters' `MultiLineText` breaks inside words.
pub fn wrap(text: &str, max: f64, size: f64, bold: bool) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(l) if width(&format!("{l} {word}"), size, bold) <= max => {
                *l += &format!(" {word}")
            }
            _ => lines.push(word.to_string()),
        }
    }
    if lines.is_empty() {
        vec![String::new()]
    } else {
        lines
    }
}

fn bold<S: BackendTextStyle>(s: &S) -> bool {
    matches!(s.style(), FontStyle::Bold)
}

/// The pen start along the line and the baseline across it, relative to the anchor, in the
/// line's own frame (x along the text, y down); and the line's width.
fn origin<S: BackendTextStyle>(text: &str, s: &S) -> (f64, f64, f64) {
    let (w, e) = (width(text, s.size(), bold(s)), em(s.size()));
    let u = [0.0, -w, -w / 2.0][s.anchor().h_pos as usize];
    let v = [ASCENT * e, 0.5 * EX * e, -0.5 * EX * e][s.anchor().v_pos as usize];
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
    let ((u, v, w), e, t) = (origin(text, s), em(s.size()), s.transform());
    let ((ax, ay), (bx, by)) = (
        place(&t, pos, u, v - ASCENT * e),
        place(&t, pos, u + w, v + DESCENT * e),
    );
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

/// plotters' bitmap backend with text set as the module docs say, noting what it draws.
pub struct Png<'a>(pub BitMapBackend<'a>, pub Vec<Label>, pub Vec<Rect>);

impl<'a> Png<'a> {
    pub fn new(bitmap: BitMapBackend<'a>) -> Png<'a> {
        Png(bitmap, Vec::new(), Vec::new())
    }
}

type Error = <BitMapBackend<'static> as DrawingBackend>::ErrorType;
type Res<T> = Result<T, plotters_backend::DrawingErrorKind<Error>>;

impl DrawingBackend for &mut Png<'_> {
    type ErrorType = Error;
    fn get_size(&self) -> (u32, u32) {
        self.0.get_size()
    }
    fn ensure_prepared(&mut self) -> Res<()> {
        self.0.ensure_prepared()
    }
    fn present(&mut self) -> Res<()> {
        self.0.present()
    }
    fn draw_pixel(&mut self, p: BackendCoord, c: BackendColor) -> Res<()> {
        self.0.draw_pixel(p, c)
    }
    fn draw_rect<S: BackendStyle>(
        &mut self,
        a: BackendCoord,
        b: BackendCoord,
        s: &S,
        fill: bool,
    ) -> Res<()> {
        if fill && s.color().alpha > 0.0 {
            self.2.push(((a.0, a.1, b.0, b.1), s.color().rgb));
        }
        self.0.draw_rect(a, b, s, fill)
    }
    fn estimate_text_size<S: BackendTextStyle>(&self, text: &str, s: &S) -> Res<(u32, u32)> {
        let w = width(text, s.size(), bold(s));
        Ok((w.round() as u32, em(s.size()).round() as u32))
    }
    fn draw_text<S: BackendTextStyle>(&mut self, text: &str, s: &S, pos: BackendCoord) -> Res<()> {
        let color = s.color();
        if text.is_empty() || color.alpha == 0.0 {
            return Ok(());
        }
        let (text, bbox, rgb) = (text.to_string(), bbox(text, s, pos), color.rgb);
        let (f, (u, v, _), t) = (face(bold(s)), origin(&text, s), s.transform());
        let k = em(s.size()) / f64::from(f.units_per_em().unwrap_or(2048.0));
        let scale = PxScale::from((k * f64::from(f.height_unscaled())) as f32);
        for (id, x) in set(&text, s.size(), bold(s)).0 {
            let glyph = id.with_scale_and_position(scale, point((u + x) as f32, v as f32));
            let Some(outline) = f.outline_glyph(glyph) else {
                continue;
            };
            let (b, mut pixels) = (outline.px_bounds(), Vec::new());
            outline.draw(|gx, gy, cov| {
                // The centre of the glyph's pixel, turned with the line.
                let centre = |m: f32, g: u32| f64::from(m) + f64::from(g) + 0.5;
                let at = place(&t, pos, centre(b.min.x, gx), centre(b.min.y, gy));
                pixels.push((at, f64::from(cov.min(1.0))));
            });
            for ((x, y), cov) in pixels.into_iter().filter(|(_, c)| *c > 0.0) {
                let c = BackendColor {
                    alpha: color.alpha * cov,
                    ..color
                };
                self.0.draw_pixel((x.floor() as i32, y.floor() as i32), c)?;
            }
        }
        self.1.push(Label { text, bbox, rgb });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    use super::*;

    #[test]
    fn widths_kern_and_wrap_by_words() {
        let one = width("AV", 15.0, false);
        let apart = width("A", 15.0, false) + width("V", 15.0, false);
        assert!(one < apart, "kerning: {one} vs {apart}");
        assert!(width("Bold", 15.0, true) > width("Bold", 15.0, false));
        let lines = wrap("Incorrect Job Context Management", 120.0, 15.0, false);
        assert_eq!(lines, ["Incorrect Job", "Context", "Management"]);
        assert!(lines.iter().all(|l| width(l, 15.0, false) <= 120.0));
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
            let first = (0..60 * 40)
                .filter(|i| buf[i * 3] < 128)
                .map(|i| i % 60)
                .min();
            let first = first.expect("ink") as f64;
            assert!(
                (first - (10.0 + bearing)).abs() <= 1.0,
                "{c}: ink starts at x={first}"
            );
        }
    }

    #[test]
    fn boxes_follow_anchor_and_rotation() {
        let s = style(12.4, false, RGBColor(0, 0, 0));
        let w = width("Engine", 12.4, false);
        let top = s.pos(Pos::new(HPos::Center, VPos::Top));
        let near = |a: f64, b: f64| (a - b).abs() < 1e-9;
        let (x0, y0, x1, y1) = bbox("Engine", &top, (100, 50));
        assert!(near(x0, 100.0 - w / 2.0) && near(x1 - x0, w), "{x0} {x1}");
        assert!(near(y0, 50.0) && near(y1, 60.0), "{y0} {y1}");
        let up = top.transform(FontTransform::Rotate270);
        let (x0, y0, x1, y1) = bbox("Engine", &up, (100, 50));
        assert!(near(x0, 100.0) && near(x1, 110.0), "{x0} {x1}");
        assert!(near(y1 - y0, w) && near(y0 + y1, 100.0), "{y0} {y1}");
    }
}
