//! What every chart shares: font sizes, margins and spacing, the title block, and the check
//! that a given `width`/`height` leaves room for the plot area.

use super::scene::{ASCENT, Anchor, Scene, Text, wrap};

pub const MARGIN: f64 = 16.0;
pub const TITLE_SIZE: f64 = 20.0;
pub const AXIS_SIZE: f64 = 16.0;
pub const TICK_SIZE: f64 = 14.0;
pub const LEGEND_SIZE: f64 = 14.0;
pub const VALUE_SIZE: f64 = 12.0;
/// Line height as a multiple of the font size.
pub const LINE: f64 = 1.25;
pub const TICK_LEN: f64 = 5.0;
pub const TICK_GAP: f64 = 4.0;
pub const GAP: f64 = 10.0;
/// Widest canvas made when `width` is not given (longer titles wrap).
pub const MAX_AUTO_WIDTH: f64 = 1800.0;

/// The title, wrapped to the canvas width.
pub struct Title {
    pub lines: Vec<String>,
}

impl Title {
    /// Wraps `title` into lines of at most `max` pixels.
    pub fn new(title: Option<&str>, max: f64) -> Result<Title, String> {
        let lines = match title {
            Some(t) if !t.trim().is_empty() => wrap(t, max, TITLE_SIZE, true)?,
            _ => Vec::new(),
        };
        Ok(Title { lines })
    }

    /// Height of the title block, including the gap below it.
    pub fn height(&self) -> f64 {
        if self.lines.is_empty() {
            0.0
        } else {
            self.lines.len() as f64 * TITLE_SIZE * LINE + GAP
        }
    }

    /// Draws the title centred on the canvas, starting at the top margin.
    pub fn draw(&self, scene: &mut Scene) -> Result<(), String> {
        let cx = f64::from(scene.width) / 2.0;
        for (i, line) in self.lines.iter().enumerate() {
            let baseline = MARGIN + ASCENT * TITLE_SIZE + i as f64 * TITLE_SIZE * LINE;
            scene.text(Text::new(line, cx, baseline, TITLE_SIZE, Anchor::Middle)?.bold()?);
        }
        Ok(())
    }
}

/// Width of the unwrapped title plus margins (what an automatic canvas width must reach).
pub fn title_need(title: Option<&str>) -> Result<f64, String> {
    match title {
        Some(t) if !t.trim().is_empty() => {
            Ok(super::scene::text_width(t.trim(), TITLE_SIZE, true)? + 2.0 * MARGIN)
        }
        _ => Ok(0.0),
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
        Some(g) => {
            let left = f64::from(g) - fixed;
            if left < min {
                Err(format!(
                    "`{key}: {g}` is too small for this chart: labels, legend and margins take \
                     {fixed:.0} px and the plot area needs at least {min:.0} px; use \
                     `{key}: {}` or more, or omit `{key}` to size the chart from the data",
                    (fixed + min).ceil()
                ))
            } else {
                Ok(left)
            }
        }
    }
}

/// Final canvas length: the given one, or the content rounded up to a whole pixel.
pub fn canvas_len(given: Option<u32>, content: f64) -> u32 {
    given.unwrap_or_else(|| content.ceil().max(1.0) as u32)
}
