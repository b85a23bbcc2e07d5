//! Just enough of a TrueType reader to know where each glyph's outline starts (`xMin` of its
//! `glyf` header), which plotters' glyph rasteriser drops: it draws every outline from its
//! bounding box's left edge at the pen position, so letters with a wide left side bearing
//! (`i`, `n`, `o`, ...) land too far left. [`super::scene`] places each glyph itself with this.
//!
//! Only the embedded DejaVu fonts are read; any malformed table makes [`Face::parse`] return
//! `None`, and text is then drawn by plotters as a whole line.

/// The tables of one font needed to map a character to its outline's left edge.
pub struct Face {
    data: &'static [u8],
    /// Offset of the `cmap` format 4 subtable (Unicode BMP).
    cmap4: usize,
    loca: usize,
    glyf: usize,
    long_loca: bool,
    num_glyphs: u16,
    /// `hhea` ascender minus descender, in font units: ab_glyph scales a font of size `s` so
    /// that this height is `s` pixels.
    pub height: f64,
}

fn u16_at(d: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*d.get(off)?, *d.get(off + 1)?]))
}

fn i16_at(d: &[u8], off: usize) -> Option<i16> {
    u16_at(d, off).map(|v| v as i16)
}

fn u32_at(d: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_be_bytes([
        *d.get(off)?,
        *d.get(off + 1)?,
        *d.get(off + 2)?,
        *d.get(off + 3)?,
    ]))
}

impl Face {
    pub fn parse(data: &'static [u8]) -> Option<Face> {
        let n = usize::from(u16_at(data, 4)?);
        let table = |tag: &[u8; 4]| -> Option<usize> {
            (0..n)
                .find_map(|i| {
                    let rec = 12 + 16 * i;
                    (data.get(rec..rec + 4)? == tag).then(|| u32_at(data, rec + 8))?
                })
                .map(|o| o as usize)
        };
        let head = table(b"head")?;
        let hhea = table(b"hhea")?;
        let maxp = table(b"maxp")?;
        let cmap = table(b"cmap")?;
        let height = f64::from(i16_at(data, hhea + 4)?) - f64::from(i16_at(data, hhea + 6)?);
        let records = usize::from(u16_at(data, cmap + 2)?);
        let cmap4 = (0..records).find_map(|i| {
            let rec = cmap + 4 + 8 * i;
            let (platform, encoding) = (u16_at(data, rec)?, u16_at(data, rec + 2)?);
            let sub = cmap + u32_at(data, rec + 4)? as usize;
            let unicode = (platform == 3 && encoding == 1) || platform == 0;
            (unicode && u16_at(data, sub)? == 4).then_some(sub)
        })?;
        Some(Face {
            data,
            cmap4,
            loca: table(b"loca")?,
            glyf: table(b"glyf")?,
            long_loca: i16_at(data, head + 50)? == 1,
            num_glyphs: u16_at(data, maxp + 4)?,
            height: if height > 0.0 { height } else { return None },
        })
    }

    /// Glyph index of `c` (0, the missing glyph, when the font lacks it).
    fn glyph(&self, c: char) -> Option<u16> {
        let c = u16::try_from(u32::from(c)).ok()?;
        let d = self.data;
        let sub = self.cmap4;
        let seg_x2 = usize::from(u16_at(d, sub + 6)?);
        let ends = sub + 14;
        let starts = ends + seg_x2 + 2;
        let deltas = starts + seg_x2;
        let ranges = deltas + seg_x2;
        for i in (0..seg_x2).step_by(2) {
            if u16_at(d, ends + i)? < c {
                continue;
            }
            let start = u16_at(d, starts + i)?;
            if start > c {
                return Some(0);
            }
            let delta = u16_at(d, deltas + i)?;
            let range = usize::from(u16_at(d, ranges + i)?);
            if range == 0 {
                return Some(c.wrapping_add(delta));
            }
            let at = ranges + i + range + 2 * usize::from(c - start);
            let g = u16_at(d, at)?;
            return Some(if g == 0 { 0 } else { g.wrapping_add(delta) });
        }
        Some(0)
    }

    /// Left edge of `c`'s outline relative to its pen position, in font units; `None` when the
    /// glyph has no outline (a space) or the tables are inconsistent.
    pub fn x_min(&self, c: char) -> Option<i16> {
        let g = self.glyph(c)?;
        if g >= self.num_glyphs {
            return None;
        }
        let g = usize::from(g);
        let d = self.data;
        let (start, end) = if self.long_loca {
            (
                u32_at(d, self.loca + 4 * g)? as usize,
                u32_at(d, self.loca + 4 * g + 4)? as usize,
            )
        } else {
            (
                2 * usize::from(u16_at(d, self.loca + 2 * g)?),
                2 * usize::from(u16_at(d, self.loca + 2 * g + 2)?),
            )
        };
        if end <= start {
            return None;
        }
        i16_at(d, self.glyf + start + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");

    #[test]
    fn reads_the_embedded_font() {
        let f = Face::parse(REGULAR).expect("DejaVu Sans parses");
        assert_eq!(f.height, 2384.0);
        assert_eq!(f.x_min(' '), None);
        // `H` and `i` start well right of the pen, `T` barely.
        let h = f.x_min('H').expect("H");
        let i = f.x_min('i').expect("i");
        let t = f.x_min('T').expect("T");
        assert!(h > 150 && i > 150 && t < 20, "H {h}, i {i}, T {t}");
        assert!(f.x_min('é').is_some());
    }
}
