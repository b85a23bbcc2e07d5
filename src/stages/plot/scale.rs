//! Value scales: "nice" axis ticks, fixed number formatting, the categorical palette for series
//! and the sequential colour maps for heatmaps. Everything here is pure arithmetic on fixed
//! tables, so the same data always gives the same ticks, labels and colours.

use super::scene::Rgb;

/// Okabe & Ito's colour-blind-safe palette, then Paul Tol's "muted" scheme for series 9-17;
/// beyond that the colours repeat.
const PALETTE: [u32; 17] = [
    0xE69F00, 0x56B4E9, 0x009E73, 0xF0E442, 0x0072B2, 0xD55E00, 0xCC79A7,
    0x000000, // Okabe-Ito
    0x332288, 0x88CCEE, 0x44AA99, 0x117733, 0x999933, 0xDDCC77, 0xCC6677, 0x882255,
    0xAA4499, // Tol muted
];

/// Colour of the `i`-th series.
pub fn series_color(i: usize) -> Rgb {
    Rgb::hex(PALETTE[i % PALETTE.len()])
}

/// viridis, 10 evenly spaced samples (as in R's `viridis(10)`).
const VIRIDIS: [u32; 10] = [
    0x440154, 0x482878, 0x3E4A89, 0x31688E, 0x26828E, 0x1F9E89, 0x35B779, 0x6DCD59, 0xB4DE2C,
    0xFDE725,
];
/// cividis, 10 evenly spaced samples (as in R's `cividis(10)`).
const CIVIDIS: [u32; 10] = [
    0x00204D, 0x00336F, 0x39486B, 0x575C6D, 0x707173, 0x8A8779, 0xA69D75, 0xC4B56C, 0xE4CF5B,
    0xFFEA46,
];

/// A sequential colour map.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ColorMap {
    stops: &'static [u32; 10],
    reversed: bool,
}

impl ColorMap {
    pub const VIRIDIS: ColorMap = ColorMap {
        stops: &VIRIDIS,
        reversed: false,
    };
    pub const CIVIDIS: ColorMap = ColorMap {
        stops: &CIVIDIS,
        reversed: false,
    };

    pub fn reversed(self) -> ColorMap {
        ColorMap {
            reversed: !self.reversed,
            ..self
        }
    }

    /// Colour at `t` in 0..=1 (clamped), linearly interpolated between the stops.
    pub fn at(self, t: f64) -> Rgb {
        let t = if t.is_finite() {
            t.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let t = if self.reversed { 1.0 - t } else { t };
        let n = self.stops.len() - 1;
        let pos = t * n as f64;
        let i = (pos.floor() as usize).min(n - 1);
        let f = pos - i as f64;
        let (a, b) = (Rgb::hex(self.stops[i]), Rgb::hex(self.stops[i + 1]));
        let mix = |x: u8, y: u8| (f64::from(x) + (f64::from(y) - f64::from(x)) * f).round() as u8;
        Rgb(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
    }
}

/// Axis ticks: the axis runs from `lo` to `hi`, with a tick every `step`.
#[derive(Clone, Debug, PartialEq)]
pub struct Ticks {
    pub lo: f64,
    pub hi: f64,
    pub step: f64,
    /// Decimals needed to print every tick exactly.
    pub decimals: usize,
}

impl Ticks {
    /// "Nice" ticks (1, 2 or 5 times a power of ten) covering `min..=max` with about
    /// `target` intervals. The range always includes `min` and `max`; an empty range becomes
    /// `0..1`. With `whole`, the step is at least 1 (for counts).
    pub fn nice(min: f64, max: f64, target: usize, whole: bool) -> Ticks {
        let (mut min, mut max) = (min.min(max), min.max(max));
        if !(min.is_finite() && max.is_finite()) {
            (min, max) = (0.0, 1.0);
        }
        if max - min <= 0.0 {
            if max == 0.0 {
                max = 1.0;
            } else if max > 0.0 {
                min = min.min(0.0);
            } else {
                max = 0.0;
            }
        }
        // Among 1, 2 and 5 times a power of ten, the step whose interval count is closest to
        // `target` (the larger step on ties).
        let target = target.max(1) as f64;
        let raw = (max - min) / target;
        let mag = 10f64.powi(raw.log10().floor() as i32);
        let intervals = |step: f64| (max / step - 1e-9).ceil() - (min / step + 1e-9).floor();
        let mut step = if whole {
            (10.0 * mag).max(1.0)
        } else {
            10.0 * mag
        };
        for m in [5.0, 2.0, 1.0, 0.5] {
            let s = m * mag;
            if whole && s < 1.0 {
                break;
            }
            if (intervals(s) - target).abs() < (intervals(step) - target).abs() {
                step = s;
            }
        }
        let lo = (min / step + 1e-9).floor() * step;
        let hi = (max / step - 1e-9).ceil() * step;
        let decimals = decimals_for(step);
        Ticks {
            lo: clean(lo),
            hi: clean(hi),
            step,
            decimals,
        }
    }

    /// Ticks on a fixed range with a fixed step (e.g. 0..100 by 20 for percentages).
    pub fn fixed(lo: f64, hi: f64, step: f64) -> Ticks {
        Ticks {
            lo,
            hi,
            step,
            decimals: decimals_for(step),
        }
    }

    /// Tick values from `lo` to `hi`.
    pub fn values(&self) -> Vec<f64> {
        let n = ((self.hi - self.lo) / self.step).round() as i64;
        (0..=n.max(0))
            .map(|i| clean(self.lo + i as f64 * self.step))
            .collect()
    }

    /// Position of `v` in the range, 0 at `lo` and 1 at `hi`.
    pub fn frac(&self, v: f64) -> f64 {
        if self.hi > self.lo {
            (v - self.lo) / (self.hi - self.lo)
        } else {
            0.0
        }
    }
}

/// Decimals needed to print multiples of `step` exactly (for steps of the form m * 10^k).
fn decimals_for(step: f64) -> usize {
    let mut d = 0;
    let mut s = step;
    while d < 10 && (s - s.round()).abs() > 1e-9 * s.abs().max(1.0) {
        s *= 10.0;
        d += 1;
    }
    d
}

/// Removes floating-point noise (e.g. `0.30000000000000004`) and negative zero.
fn clean(v: f64) -> f64 {
    let r = (v * 1e9).round() / 1e9;
    if r == 0.0 { 0.0 } else { r }
}

/// Formats `v` with exactly `decimals` decimals, never as `-0`.
pub fn fmt_num(v: f64, decimals: usize) -> String {
    let s = format!("{:.*}", decimals, v);
    match s.strip_prefix('-') {
        Some(rest) if rest.chars().all(|c| c == '0' || c == '.') => rest.to_string(),
        _ => s,
    }
}

/// Decimals for value labels: as asked, else 0 when every value is whole and 1 otherwise.
pub fn label_decimals(asked: Option<u8>, values: impl IntoIterator<Item = f64>) -> usize {
    match asked {
        Some(d) => usize::from(d),
        None => {
            if values.into_iter().all(|v| (v - v.round()).abs() < 1e-9) {
                0
            } else {
                1
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_ticks() {
        let t = Ticks::nice(0.0, 93.0, 5, false);
        assert_eq!((t.lo, t.hi, t.step, t.decimals), (0.0, 100.0, 20.0, 0));
        assert_eq!(t.values(), vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]);
        let t = Ticks::nice(0.0, 0.7, 5, false);
        assert_eq!((t.lo, t.hi, t.step, t.decimals), (0.0, 0.8, 0.2, 1));
        assert_eq!(t.values(), vec![0.0, 0.2, 0.4, 0.6, 0.8]);
        let t = Ticks::nice(-12.0, 30.0, 5, false);
        assert_eq!((t.lo, t.hi, t.step), (-20.0, 30.0, 10.0));
        let t = Ticks::nice(0.0, 0.0, 5, false);
        assert_eq!((t.lo, t.hi), (0.0, 1.0));
        let t = Ticks::nice(0.0, 40.0, 5, false);
        assert_eq!((t.lo, t.hi, t.step), (0.0, 40.0, 10.0));
        let t = Ticks::nice(0.0, 9.0, 5, false);
        assert_eq!((t.lo, t.hi, t.step, t.decimals), (0.0, 10.0, 2.0, 0));
        let t = Ticks::nice(0.0, 12.0, 5, false);
        assert_eq!((t.lo, t.hi, t.step, t.decimals), (0.0, 12.0, 2.0, 0));
        let t = Ticks::nice(0.0, 273.0, 5, false);
        assert_eq!((t.lo, t.hi, t.step), (0.0, 300.0, 50.0));
        let t = Ticks::nice(0.0, 30.0, 4, false);
        assert_eq!((t.lo, t.hi, t.step), (0.0, 30.0, 10.0));
        let t = Ticks::nice(0.0, 3.0, 5, true);
        assert_eq!((t.lo, t.hi, t.step, t.decimals), (0.0, 3.0, 1.0, 0));
        let t = Ticks::nice(0.0, 0.0, 5, true);
        assert_eq!((t.lo, t.hi, t.step), (0.0, 1.0, 1.0));
    }

    #[test]
    fn number_format_is_fixed() {
        assert_eq!(fmt_num(-0.0, 0), "0");
        assert_eq!(fmt_num(-0.04, 1), "0.0");
        assert_eq!(fmt_num(12.345, 1), "12.3");
        assert_eq!(fmt_num(7.0, 0), "7");
        assert_eq!(label_decimals(None, [1.0, 2.0]), 0);
        assert_eq!(label_decimals(None, [1.5, 2.0]), 1);
        assert_eq!(label_decimals(Some(2), [1.0]), 2);
    }

    #[test]
    fn colour_maps_end_on_their_stops() {
        assert_eq!(ColorMap::VIRIDIS.at(0.0), Rgb::hex(0x440154));
        assert_eq!(ColorMap::VIRIDIS.at(1.0), Rgb::hex(0xFDE725));
        assert_eq!(ColorMap::VIRIDIS.reversed().at(0.0), Rgb::hex(0xFDE725));
        assert_eq!(ColorMap::CIVIDIS.at(2.0), Rgb::hex(0xFFEA46));
        assert_eq!(Rgb::hex(0x440154).contrasting_text(), Rgb::WHITE);
        assert_eq!(Rgb::hex(0xFDE725).contrasting_text(), Rgb(0, 0, 0));
    }
}
