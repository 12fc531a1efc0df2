//! The one typeface of every rendered report: DejaVu Sans (regular and bold), compiled into the
//! binary so a PDF renders the same on a host without fonts. Three users: krilla draws the PDF's
//! own text with it, usvg resolves the charts' `sans-serif` text to it, and the PDF layout
//! measures advance widths with it to wrap table cells.

use std::sync::Arc;

use usvg::fontdb;

use super::RenderError;

const REGULAR: &[u8] = include_bytes!("../fonts/DejaVuSans.ttf");
const BOLD: &[u8] = include_bytes!("../fonts/DejaVuSans-Bold.ttf");
/// The family name inside both files, which SVG `font-family` lookups resolve to.
const FAMILY: &str = "DejaVu Sans";

/// Advance widths of the embedded faces, in points for a given size.
pub(super) struct Metrics {
    regular: Face,
    bold: Face,
}

/// One face and its advances for the first [`TABLED`] code points (Latin, where nearly all
/// report text lies), looked up once: wrapping measures the same characters many times.
struct Face {
    face: ttf_parser::Face<'static>,
    tabled: Vec<u16>,
    units_per_em: f32,
}

const TABLED: u32 = 0x250;

impl Face {
    fn parse(data: &'static [u8]) -> Result<Self, RenderError> {
        let face =
            ttf_parser::Face::parse(data, 0).map_err(|e| RenderError::Font(e.to_string()))?;
        let tabled = (0..TABLED)
            .map(|c| char::from_u32(c).map_or(0, |c| advance(&face, c)))
            .collect();
        Ok(Self {
            units_per_em: f32::from(face.units_per_em()),
            face,
            tabled,
        })
    }

    fn units(&self, c: char) -> u16 {
        match self.tabled.get(c as usize) {
            Some(units) => *units,
            None => advance(&self.face, c),
        }
    }
}

fn advance(face: &ttf_parser::Face, c: char) -> u16 {
    // A character the font lacks is drawn as .notdef (glyph 0); measure that.
    let glyph = face.glyph_index(c).unwrap_or(ttf_parser::GlyphId(0));
    face.glyph_hor_advance(glyph).unwrap_or(0)
}

impl Metrics {
    pub(super) fn new() -> Result<Self, RenderError> {
        Ok(Self {
            regular: Face::parse(REGULAR)?,
            bold: Face::parse(BOLD)?,
        })
    }

    /// Width of `text` set in one line at `size` points. Kerning is ignored: the layout only
    /// needs to know where a line must wrap, and DejaVu's kerning moves a line by well under
    /// the cell padding.
    pub(super) fn width(&self, text: &str, size: f32, bold: bool) -> f32 {
        let face = if bold { &self.bold } else { &self.regular };
        let units: u32 = text.chars().map(|c| u32::from(face.units(c))).sum();
        units as f32 * size / face.units_per_em
    }
}

/// The faces as krilla fonts.
pub(super) fn krilla_fonts() -> Result<(krilla::text::Font, krilla::text::Font), RenderError> {
    let load = |data: &'static [u8]| {
        krilla::text::Font::new(data.into(), 0)
            .ok_or_else(|| RenderError::Font("the embedded DejaVu Sans did not load".to_owned()))
    };
    Ok((load(REGULAR)?, load(BOLD)?))
}

/// usvg options whose font database holds only the embedded faces, with every generic family
/// and the default family pointing at them: the charts say `sans-serif`, and without this usvg
/// would find no font and drop their text silently.
pub(super) fn svg_options() -> usvg::Options<'static> {
    let mut db = fontdb::Database::new();
    db.load_font_source(fontdb::Source::Binary(Arc::new(REGULAR)));
    db.load_font_source(fontdb::Source::Binary(Arc::new(BOLD)));
    db.set_sans_serif_family(FAMILY);
    db.set_serif_family(FAMILY);
    db.set_monospace_family(FAMILY);
    usvg::Options {
        font_family: FAMILY.to_owned(),
        fontdb: Arc::new(db),
        ..usvg::Options::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn render_fonts_measure_and_load() {
        let metrics = Metrics::new().unwrap();
        // DejaVu Sans: 'M' advances 1767 of 2048 units; at 10 pt that is 8.628 pt.
        let m = metrics.width("M", 10.0, false);
        assert!((m - 8.628).abs() < 0.01, "{m}");
        assert_eq!(metrics.width("", 10.0, false), 0.0);
        // Beyond the table (Cyrillic), the same advance as looked up directly.
        let direct = advance(&metrics.regular.face, 'Ж') as f32 * 10.0 / 2048.0;
        assert_eq!(metrics.width("Ж", 10.0, false), direct);
        assert!(metrics.width("Budget", 10.0, true) > metrics.width("Budget", 10.0, false));
        assert!(krilla_fonts().is_ok());
        let options = svg_options();
        assert_eq!(options.fontdb.len(), 2);
    }
}
