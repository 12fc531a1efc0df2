//! Page layout for the PDF, kept apart from krilla: text, tiles, charts and tables flow down A4
//! pages and become a list of drawing operations per page. Knowing every page before drawing
//! any is what lets the footer say "page N of M".
//!
//! Rules a reader relies on: a heading never ends a page alone (it moves with what follows),
//! a table row never splits, a table continued on the next page repeats its header row, and a
//! cell too long for its column wraps (at spaces, else anywhere) instead of running off the page.

use super::fonts::Metrics;
use super::table::{Table, Tone};

pub(super) const PAGE_W: f32 = 595.28;
pub(super) const PAGE_H: f32 = 841.89;
pub(super) const MARGIN_X: f32 = 48.0;
const TOP: f32 = 50.0;
/// Content ends here; the footer sits below.
const BOTTOM: f32 = PAGE_H - 58.0;
pub(super) const CONTENT_W: f32 = PAGE_W - 2.0 * MARGIN_X;

const TABLE_SIZE: f32 = 7.8;
const CELL_PAD_X: f32 = 3.5;
const CELL_PAD_Y: f32 = 2.6;
const LINE: f32 = 1.28;
/// Cells up to this many characters are kept on one line when the table has room.
const SHORT: usize = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Rgb(pub u8, pub u8, pub u8);

pub(super) const INK: Rgb = Rgb(0x1f, 0x23, 0x28);
pub(super) const MUTED: Rgb = Rgb(0x57, 0x60, 0x6a);
const HEADER_BG: Rgb = Rgb(0xe6, 0xea, 0xef);
const ZEBRA_BG: Rgb = Rgb(0xf6, 0xf8, 0xfa);
const RULE: Rgb = Rgb(0xd0, 0xd7, 0xde);

/// Text and background of a toned cell; the same hues as the HTML's.
pub(super) fn tone_colors(tone: Tone) -> Option<(Rgb, Rgb)> {
    match tone {
        Tone::Plain => None,
        Tone::Good => Some((Rgb(0x11, 0x63, 0x29), Rgb(0xda, 0xfb, 0xe1))),
        Tone::Warn => Some((Rgb(0x7d, 0x4e, 0x00), Rgb(0xff, 0xf1, 0xb8))),
        Tone::Bad => Some((Rgb(0xa4, 0x0e, 0x26), Rgb(0xff, 0xe1, 0xdd))),
        Tone::Muted => Some((MUTED, Rgb(0xea, 0xee, 0xf2))),
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Op {
    /// One line of text; `y` is the baseline.
    Text {
        x: f32,
        y: f32,
        size: f32,
        bold: bool,
        color: Rgb,
        text: String,
    },
    Rect {
        x: f32,
        y: f32,
        w: f32,
        h: f32,
        color: Rgb,
    },
    /// A horizontal hairline.
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
        color: Rgb,
    },
    /// Chart number `index` scaled into the box.
    Chart {
        index: usize,
        x: f32,
        y: f32,
        w: f32,
        h: f32,
    },
}

/// A key figure in the headline row.
pub(super) struct Tile {
    pub value: String,
    pub label: String,
    pub tone: Tone,
}

pub(super) struct Flow<'m> {
    metrics: &'m Metrics,
    pages: Vec<Vec<Op>>,
    y: f32,
}

impl<'m> Flow<'m> {
    pub(super) fn new(metrics: &'m Metrics) -> Self {
        Self {
            metrics,
            pages: vec![Vec::new()],
            y: TOP,
        }
    }

    pub(super) fn finish(self) -> Vec<Vec<Op>> {
        self.pages
    }

    fn push(&mut self, op: Op) {
        if let Some(page) = self.pages.last_mut() {
            page.push(op);
        }
    }

    fn new_page(&mut self) {
        self.pages.push(Vec::new());
        self.y = TOP;
    }

    /// Starts a new page unless `height` still fits (or the page is still empty: something
    /// taller than a page has to start somewhere).
    fn ensure(&mut self, height: f32) {
        if self.y + height > BOTTOM && self.y > TOP {
            self.new_page();
        }
    }

    pub(super) fn space(&mut self, height: f32) {
        if self.y > TOP {
            self.y += height;
        }
    }

    fn text(&mut self, x: f32, top: f32, size: f32, bold: bool, color: Rgb, text: String) {
        self.push(Op::Text {
            x,
            y: top + size * 0.93,
            size,
            bold,
            color,
            text,
        });
    }

    /// A heading kept on the page of at least `keep` points of what follows it.
    pub(super) fn heading(&mut self, text: &str, size: f32, keep: f32) {
        self.space(size * 0.9);
        let lines = wrap(self.metrics, text, size, true, CONTENT_W);
        let height = lines.len() as f32 * size * LINE;
        self.ensure(height + keep);
        for line in lines {
            self.text(MARGIN_X, self.y, size, true, INK, line);
            self.y += size * LINE;
        }
        self.y += size * 0.3;
    }

    pub(super) fn paragraph(&mut self, text: &str, size: f32, color: Rgb) {
        for line in wrap(self.metrics, text, size, false, CONTENT_W) {
            self.ensure(size * LINE);
            self.text(MARGIN_X, self.y, size, false, color, line);
            self.y += size * LINE;
        }
        self.y += size * 0.35;
    }

    /// "Label: value" lines with the labels in bold, values aligned.
    pub(super) fn facts(&mut self, facts: &[(&str, String)], size: f32) {
        let label_w = facts
            .iter()
            .map(|(label, _)| self.metrics.width(label, size, true))
            .fold(0.0, f32::max)
            + 8.0;
        for (label, value) in facts {
            let lines = wrap(self.metrics, value, size, false, CONTENT_W - label_w);
            self.ensure(lines.len() as f32 * size * LINE);
            self.text(MARGIN_X, self.y, size, true, MUTED, (*label).to_owned());
            for line in lines {
                self.text(MARGIN_X + label_w, self.y, size, false, INK, line);
                self.y += size * LINE;
            }
        }
        self.y += size * 0.35;
    }

    /// Key figures side by side in boxes, `per_row` boxes wide.
    pub(super) fn tiles(&mut self, tiles: &[Tile], per_row: usize) {
        if tiles.is_empty() {
            return;
        }
        let gap = 6.0;
        let n = per_row.max(tiles.len()) as f32;
        let w = (CONTENT_W - gap * (n - 1.0)) / n;
        let h = 44.0;
        self.ensure(h);
        for (i, tile) in tiles.iter().enumerate() {
            let x = MARGIN_X + i as f32 * (w + gap);
            let (fg, bg) = tone_colors(tile.tone).unwrap_or((INK, ZEBRA_BG));
            self.push(Op::Rect {
                x,
                y: self.y,
                w,
                h,
                color: bg,
            });
            let value = fit(self.metrics, &tile.value, 15.0, true, w - 10.0);
            self.text(x + 6.0, self.y + 6.0, 15.0, true, fg, value);
            let label = fit(self.metrics, &tile.label, 7.5, false, w - 10.0);
            self.text(x + 6.0, self.y + 28.0, 7.5, false, MUTED, label);
        }
        self.y += h + 8.0;
    }

    /// A chart `width_px` × `height_px` (its SVG size), scaled to the content width.
    pub(super) fn chart(&mut self, index: usize, width_px: f32, height_px: f32) {
        let w = CONTENT_W;
        let h = w * height_px / width_px;
        self.ensure(h);
        self.push(Op::Chart {
            index,
            x: MARGIN_X,
            y: self.y,
            w,
            h,
        });
        self.y += h + 6.0;
    }

    /// A table under its own title, or under the section heading just drawn (`titled` false).
    pub(super) fn table(&mut self, table: &Table, titled: bool) {
        if titled {
            self.heading(table.title, 12.0, 40.0);
        }
        if table.rows.is_empty() {
            self.paragraph(table.empty, 9.0, MUTED);
            return;
        }
        let (widths, size) = column_widths(self.metrics, table);
        let header: Vec<Vec<String>> = table
            .columns
            .iter()
            .zip(&widths)
            .map(|(c, w)| wrap(self.metrics, c.header, size, true, w - 2.0 * CELL_PAD_X))
            .collect();
        let header_h = row_height(&header, size);
        self.draw_header(table, &widths, &header, header_h, size);
        for (r, row) in table.rows.iter().enumerate() {
            let mut lines: Vec<Vec<String>> = row
                .iter()
                .zip(&widths)
                .map(|(cell, w)| {
                    let bold = !matches!(cell.tone, Tone::Plain | Tone::Muted);
                    wrap(self.metrics, &cell.text, size, bold, w - 2.0 * CELL_PAD_X)
                })
                .collect();
            // A row taller than a page cannot be kept whole: cut its cells to one page.
            let max_lines = ((BOTTOM - TOP - header_h - 2.0 * CELL_PAD_Y) / (size * LINE)) as usize;
            for cell in &mut lines {
                if cell.len() > max_lines {
                    cell.truncate(max_lines.max(1));
                    if let Some(last) = cell.last_mut() {
                        last.push('…');
                    }
                }
            }
            let h = row_height(&lines, size);
            if self.y + h > BOTTOM {
                self.new_page();
                self.draw_header(table, &widths, &header, header_h, size);
            }
            let mut x = MARGIN_X;
            if r % 2 == 1 {
                self.push(Op::Rect {
                    x,
                    y: self.y,
                    w: CONTENT_W,
                    h,
                    color: ZEBRA_BG,
                });
            }
            for ((cell, cell_lines), (w, column)) in
                row.iter().zip(lines).zip(widths.iter().zip(&table.columns))
            {
                let color = match tone_colors(cell.tone) {
                    Some((fg, bg)) => {
                        self.push(Op::Rect {
                            x,
                            y: self.y,
                            w: *w,
                            h,
                            color: bg,
                        });
                        fg
                    }
                    None => INK,
                };
                let bold = !matches!(cell.tone, Tone::Plain | Tone::Muted);
                self.cell_lines(x, *w, column.numeric, (bold, size), color, cell_lines);
                x += w;
            }
            self.y += h;
            self.push(Op::Rule {
                x1: MARGIN_X,
                x2: MARGIN_X + CONTENT_W,
                y: self.y,
                color: RULE,
            });
        }
        self.y += 6.0;
    }

    fn draw_header(
        &mut self,
        table: &Table,
        widths: &[f32],
        header: &[Vec<String>],
        h: f32,
        size: f32,
    ) {
        self.push(Op::Rect {
            x: MARGIN_X,
            y: self.y,
            w: CONTENT_W,
            h,
            color: HEADER_BG,
        });
        let mut x = MARGIN_X;
        for ((lines, w), column) in header.iter().zip(widths).zip(&table.columns) {
            self.cell_lines(x, *w, column.numeric, (true, size), INK, lines.clone());
            x += w;
        }
        self.y += h;
    }

    fn cell_lines(
        &mut self,
        x: f32,
        w: f32,
        right: bool,
        (bold, size): (bool, f32),
        color: Rgb,
        lines: Vec<String>,
    ) {
        let mut top = self.y + CELL_PAD_Y;
        for line in lines {
            let lx = if right {
                x + w - CELL_PAD_X - self.metrics.width(&line, size, bold)
            } else {
                x + CELL_PAD_X
            };
            self.text(lx, top, size, bold, color, line);
            top += size * LINE;
        }
    }
}

fn row_height(cells: &[Vec<String>], size: f32) -> f32 {
    let lines = cells.iter().map(Vec::len).max().unwrap_or(1).max(1);
    lines as f32 * size * LINE + 2.0 * CELL_PAD_Y
}

/// Column widths filling the content width, and the font size that makes them fit.
///
/// Preferences, in order: every cell on one line; short cells (times, figures, names up to
/// [`SHORT`] characters) whole and prose wrapped at spaces; the same at a slightly smaller font
/// (down to 82 %); words whole; and last, everything smaller. Spare width goes to the columns
/// whose text is longer than their minimum, in proportion.
fn column_widths(metrics: &Metrics, table: &Table) -> (Vec<f32>, f32) {
    let pad = 2.0 * CELL_PAD_X;
    let n = table.columns.len();
    let mut natural = vec![pad; n];
    let mut whole = vec![pad; n];
    let mut words = vec![pad; n];
    let mut measure = |i: usize, text: &str, bold: bool, keep: bool| {
        let full = metrics.width(text, TABLE_SIZE, bold) + pad;
        let word = text
            .split(' ')
            .map(|w| metrics.width(w, TABLE_SIZE, bold))
            .fold(0.0, f32::max)
            + pad;
        natural[i] = natural[i].max(full);
        words[i] = words[i].max(word.min(CONTENT_W * 0.3));
        let short = keep && text.chars().count() <= SHORT;
        whole[i] = whole[i].max(if short { full } else { word }.min(CONTENT_W * 0.3));
    };
    for (i, column) in table.columns.iter().enumerate() {
        measure(i, column.header, true, false);
    }
    for row in &table.rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            measure(
                i,
                &cell.text,
                !matches!(cell.tone, Tone::Plain | Tone::Muted),
                true,
            );
        }
    }
    let sum = |v: &[f32]| v.iter().sum::<f32>();
    // Text widths scale with the font size; the padding does not.
    let shrunk = |v: &[f32], f: f32| v.iter().map(|w| (w - pad) * f + pad).collect::<Vec<_>>();
    let fit = |v: &[f32]| (CONTENT_W - pad * n as f32) / (sum(v) - pad * n as f32).max(1.0);
    if sum(&natural) <= CONTENT_W {
        return (spread(&natural, &natural), TABLE_SIZE);
    }
    if sum(&whole) <= CONTENT_W {
        return (spread(&whole, &natural), TABLE_SIZE);
    }
    let f = fit(&whole);
    if f >= 0.82 {
        return (
            spread(&shrunk(&whole, f), &shrunk(&whole, f)),
            TABLE_SIZE * f,
        );
    }
    if sum(&words) <= CONTENT_W {
        return (spread(&words, &natural), TABLE_SIZE);
    }
    let f = fit(&words);
    (
        spread(&shrunk(&words, f), &shrunk(&words, f)),
        TABLE_SIZE * f,
    )
}

/// Widths from `low` towards `high` adding up to the content width (`low` must fit).
fn spread(low: &[f32], high: &[f32]) -> Vec<f32> {
    let total: f32 = low.iter().sum();
    let slack: f32 = low.iter().zip(high).map(|(l, h)| (h - l).max(0.0)).sum();
    let spare = (CONTENT_W - total).max(0.0);
    if slack <= f32::EPSILON {
        // Nothing wants more room: widen every column alike.
        let scale = CONTENT_W / total.max(1.0);
        return low.iter().map(|w| w * scale).collect();
    }
    let share = (spare / slack).min(1.0);
    let widths: Vec<f32> = low
        .iter()
        .zip(high)
        .map(|(l, h)| l + (h - l).max(0.0) * share)
        .collect();
    // Room left after every column has all it wants is shared alike.
    let used: f32 = widths.iter().sum();
    let scale = CONTENT_W / used.max(1.0);
    widths.iter().map(|w| w * scale).collect()
}

/// `text` broken into lines no wider than `width`: at spaces where possible, else after a
/// separator inside a word (`:` `.` `-` `/` `,` `=`, as in SLO names and selectors), else anywhere.
pub(super) fn wrap(
    metrics: &Metrics,
    text: &str,
    size: f32,
    bold: bool,
    width: f32,
) -> Vec<String> {
    // The tolerance absorbs rounding in widths computed to fit a text exactly.
    let fits = |s: &str| metrics.width(s, size, bold) <= width + 0.01;
    let mut lines = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split(' ').filter(|w| !w.is_empty()) {
            let candidate = if line.is_empty() {
                word.to_owned()
            } else {
                format!("{line} {word}")
            };
            if fits(&candidate) {
                line = candidate;
                continue;
            }
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let mut rest = word;
            while !fits(rest) {
                let chars: Vec<(usize, char)> = rest.char_indices().collect();
                // The longest prefix that fits (at least one character).
                let mut end = chars.len();
                while end > 1 && !fits(&rest[..chars.get(end).map_or(rest.len(), |c| c.0)]) {
                    end -= 1;
                }
                let hard = chars.get(end).map_or(rest.len(), |c| c.0);
                let soft = rest[..hard]
                    .char_indices()
                    .rev()
                    .filter(|(_, c)| matches!(c, ':' | '.' | '-' | '/' | ',' | '='))
                    .map(|(i, c)| i + c.len_utf8())
                    .find(|i| *i <= hard);
                let cut = soft.filter(|i| *i * 2 >= hard).unwrap_or(hard);
                lines.push(rest[..cut].to_owned());
                rest = &rest[cut..];
            }
            line = rest.to_owned();
        }
        lines.push(line);
    }
    if lines.is_empty() {
        lines.push(String::new());
    }
    lines
}

/// `text` cut with an ellipsis to fit one line of `width`.
fn fit(metrics: &Metrics, text: &str, size: f32, bold: bool, width: f32) -> String {
    if metrics.width(text, size, bold) <= width {
        return text.to_owned();
    }
    let mut cut: String = text.to_owned();
    while !cut.is_empty() && metrics.width(&format!("{cut}…"), size, bold) > width {
        cut.pop();
    }
    format!("{cut}…")
}

#[cfg(test)]
mod tests {
    use super::super::table::{Cell, col, num};
    use super::*;

    fn texts(page: &[Op]) -> Vec<&str> {
        page.iter()
            .filter_map(|op| match op {
                Op::Text { text, .. } => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn render_layout_wraps_at_spaces_then_inside_words() {
        let m = Metrics::new().unwrap();
        let width = m.width("alpha beta", 10.0, false) + 0.1;
        assert_eq!(
            wrap(&m, "alpha beta gamma", 10.0, false, width),
            ["alpha beta", "gamma"]
        );
        let narrow = m.width("abcd", 10.0, false) + 0.1;
        assert_eq!(
            wrap(&m, "abcdefghij", 10.0, false, narrow),
            ["abcd", "efgh", "ij"]
        );
        assert_eq!(wrap(&m, "", 10.0, false, 100.0), [""]);
        // A long name breaks after a separator rather than mid-word.
        let w = m.width("probe:api-gateway.internal.", 10.0, false) + 0.1;
        assert_eq!(
            wrap(
                &m,
                "probe:api-gateway.internal.example:latency",
                10.0,
                false,
                w
            ),
            ["probe:api-gateway.internal.", "example:latency"]
        );
    }

    #[test]
    fn render_layout_table_breaks_pages_and_repeats_header() {
        let m = Metrics::new().unwrap();
        let table = Table {
            id: "t",
            title: "Numbers",
            columns: vec![col("Name", "name"), num("Value", "value")],
            rows: (0..200)
                .map(|i| vec![Cell::text(format!("row {i}")), Cell::text(i.to_string())])
                .collect(),
            empty: "none",
        };
        let mut flow = Flow::new(&m);
        flow.table(&table, true);
        let pages = flow.finish();
        assert!(pages.len() >= 3, "{}", pages.len());
        for page in &pages {
            let t = texts(page);
            assert!(t.contains(&"Name") && t.contains(&"Value"), "{t:?}");
        }
        // Every row once, in order, none lost at a page break.
        let rows: Vec<&str> = pages
            .iter()
            .flat_map(|p| texts(p))
            .filter(|t| t.starts_with("row "))
            .collect();
        assert_eq!(rows.len(), 200);
        assert_eq!(rows[199], "row 199");
        // Nothing below the content area.
        for op in pages.iter().flatten() {
            if let Op::Text { y, .. } = op {
                assert!(*y <= BOTTOM, "{y}");
            }
        }
    }

    #[test]
    fn render_layout_long_cells_stay_inside_the_page() {
        let m = Metrics::new().unwrap();
        let long = "a-very-long-selector{node=\"storage-01.example.com\",job=\"probe\"} ".repeat(6);
        let table = Table {
            id: "t",
            title: "Wide",
            columns: vec![col("A", "a"), col("B", "b"), num("C", "c")],
            rows: vec![vec![
                Cell::text(long.clone()),
                Cell::text(long),
                Cell::text("1"),
            ]],
            empty: "none",
        };
        let (widths, size) = column_widths(&m, &table);
        assert!((widths.iter().sum::<f32>() - CONTENT_W).abs() < 0.5);
        assert!(size <= TABLE_SIZE);
        let mut flow = Flow::new(&m);
        flow.table(&table, true);
        for op in flow.finish().iter().flatten() {
            if let Op::Text { x, text, size, .. } = op {
                assert!(
                    x + m.width(text, *size, false) <= PAGE_W - MARGIN_X + 0.5,
                    "{text}"
                );
            }
        }
    }
}
