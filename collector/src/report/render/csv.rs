//! CSV: every table of the report, one after another in one file. Each line starts with the
//! name of its table (`table` column), and each table starts with its own header line, so a
//! spreadsheet filter or `grep ^compliance,` picks one table out. Figures are raw (shares in
//! [0, 1], durations in ms, instants in RFC 3339), so programs need not parse "99.53 %".

use crate::report::model::Report;

use super::RenderError;
use super::format;
use super::table::Table;
use super::tables::{self, Audience};

/// The tables in the CSV, in order: all of them, whatever sections the report shows.
fn all(report: &Report) -> Vec<Table> {
    let zone = format::zone(&report.timezone);
    let who = Audience::Programs;
    vec![
        tables::summary(report, &zone),
        tables::compliance(report, who),
        tables::breaches(report, &zone, who),
        tables::daily(report),
        tables::response(report, who),
        tables::incidents(report, &zone),
        tables::by_node(report),
        tables::by_hour(report, who),
        tables::by_weekday(report, who),
        tables::trends(report),
        tables::coverage(report),
        tables::patterns(report, &zone),
        tables::forecast(report, who),
        tables::forecast_points(report),
        tables::recommendations(report),
    ]
}

pub(super) fn render(report: &Report) -> Result<Vec<u8>, RenderError> {
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let err = |e: csv::Error| RenderError::Csv(e.to_string());
    for table in all(report) {
        let header = std::iter::once("table").chain(table.columns.iter().map(|c| c.csv));
        writer.write_record(header).map_err(err)?;
        for row in &table.rows {
            let cells = std::iter::once(table.id).chain(row.iter().map(|c| c.raw.as_str()));
            writer.write_record(cells).map_err(err)?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| RenderError::Csv(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::super::test_support;
    use super::*;

    #[test]
    fn render_csv_has_every_table_with_raw_figures() {
        let report = test_support::report();
        let bytes = render(&report).unwrap();
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(bytes.as_slice());
        let records: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        let ids: std::collections::BTreeSet<&str> = records.iter().map(|r| &r[0]).collect();
        for id in [
            "summary",
            "compliance",
            "breaches",
            "compliance_daily",
            "response",
            "incidents",
            "incidents_by_node",
            "incidents_by_hour",
            "incidents_by_weekday",
            "trends",
            "patterns",
            "forecast",
            "forecast_points",
            "recommendations",
        ] {
            assert!(ids.contains(id), "{id} missing");
        }
        // Header lines say `table` first; data lines name their table.
        let header = records.iter().find(|r| r.get(1) == Some("slo")).unwrap();
        assert_eq!(&header[0], "table");
        let web = records
            .iter()
            .find(|r| &r[0] == "compliance" && &r[1] == "probe:web-frontend:availability")
            .unwrap();
        let compliance_at = header.iter().position(|h| h == "compliance_ratio").unwrap();
        assert_eq!(&web[compliance_at], "0.9632");
        let incidents = records.iter().filter(|r| &r[0] == "incidents").count();
        assert_eq!(incidents, 40);
        let hours = records
            .iter()
            .filter(|r| &r[0] == "incidents_by_hour")
            .count();
        assert_eq!(hours, 24);
        // Every data line of a table has as many fields as its header.
        let mut width = 0;
        for r in &records {
            if &r[0] == "table" {
                width = r.len();
            } else {
                assert_eq!(r.len(), width, "{r:?}");
            }
        }
    }
}
