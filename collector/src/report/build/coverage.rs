//! The data-coverage rows of a report: per node, its stored data-quality evaluations over the
//! window (`hcmon_data_quality_score`) reduced to the mean completeness (how much of its data
//! arrived), the mean and lowest overall score, and how often it was below threshold. Pure.

use super::super::model::CoverageRow;

/// The overall score's threshold in reports: the lowest of the dimensions' thresholds.
pub const QUALITY_THRESHOLD: f64 = 0.90;

/// One node's stored scores over the window: completeness and overall samples.
pub struct NodeScores {
    pub node: String,
    pub completeness: Vec<f64>,
    pub overall: Vec<f64>,
}

fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// The rows, worst coverage first; nodes without evaluations are left out.
pub fn rows(nodes: Vec<NodeScores>) -> Vec<CoverageRow> {
    let mut rows: Vec<CoverageRow> = nodes
        .into_iter()
        .filter(|n| !n.overall.is_empty())
        .map(|n| CoverageRow {
            evaluations: n.overall.len(),
            coverage: if n.completeness.is_empty() {
                1.0
            } else {
                mean(&n.completeness)
            },
            quality: mean(&n.overall),
            lowest: n.overall.iter().copied().fold(1.0, f64::min),
            below_threshold: n.overall.iter().filter(|&&s| s < QUALITY_THRESHOLD).count() as f64
                / n.overall.len() as f64,
            node: n.node,
        })
        .collect();
    rows.sort_by(|a, b| a.coverage.total_cmp(&b.coverage).then(a.node.cmp(&b.node)));
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_average_and_rank_by_coverage() {
        let rows = rows(vec![
            NodeScores {
                node: "good".into(),
                completeness: vec![1.0, 1.0],
                overall: vec![1.0, 0.98],
            },
            NodeScores {
                node: "nas".into(),
                completeness: vec![0.9, 0.5],
                overall: vec![0.95, 0.8],
            },
            NodeScores {
                node: "empty".into(),
                completeness: vec![],
                overall: vec![],
            },
        ]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].node, "nas");
        assert!((rows[0].coverage - 0.7).abs() < 1e-12);
        assert!((rows[0].lowest - 0.8).abs() < 1e-12);
        assert!((rows[0].below_threshold - 0.5).abs() < 1e-12);
        assert_eq!(rows[1].evaluations, 2);
    }
}
