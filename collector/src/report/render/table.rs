//! A report table as every format sees it: the same columns and rows feed the HTML `<table>`,
//! the PDF's wrapped grid and the CSV lines, so the formats cannot disagree on a figure.

/// How a cell reads at a glance; the text always says it too (colour is never the only cue).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Tone {
    Plain,
    Good,
    Warn,
    Bad,
    Muted,
}

impl Tone {
    /// CSS class of the tone in the HTML.
    pub(super) fn class(self) -> &'static str {
        match self {
            Tone::Plain => "",
            Tone::Good => "good",
            Tone::Warn => "warn",
            Tone::Bad => "bad",
            Tone::Muted => "muted",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Cell {
    /// What a reader sees: "99.53 %", "2 h 05 min".
    pub text: String,
    /// What the CSV carries: the unrounded figure in base units ("0.99531", "7500000").
    pub raw: String,
    pub tone: Tone,
}

impl Cell {
    /// A cell whose text is also its machine-readable value.
    pub(super) fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            raw: text.clone(),
            text,
            tone: Tone::Plain,
        }
    }

    /// A formatted figure and the raw value behind it.
    pub(super) fn figure(text: impl Into<String>, raw: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            raw: raw.into(),
            tone: Tone::Plain,
        }
    }

    pub(super) fn toned(mut self, tone: Tone) -> Self {
        self.tone = tone;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Column {
    /// Header for readers, with the unit: "Compliance".
    pub header: &'static str,
    /// Header in the CSV: snake_case with the unit of `Cell::raw`: "compliance_ratio".
    pub csv: &'static str,
    /// Right-aligned (figures) rather than left-aligned (names, prose).
    pub numeric: bool,
}

pub(super) const fn col(header: &'static str, csv: &'static str) -> Column {
    Column {
        header,
        csv,
        numeric: false,
    }
}

pub(super) const fn num(header: &'static str, csv: &'static str) -> Column {
    Column {
        header,
        csv,
        numeric: true,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Table {
    /// Names the table in the CSV's first column: "compliance".
    pub id: &'static str,
    /// Section heading above it.
    pub title: &'static str,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<Cell>>,
    /// Said instead of an empty table ("No incidents in this period.").
    pub empty: &'static str,
}
