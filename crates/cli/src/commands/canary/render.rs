//! How a canary reads on a terminal: one line per stage with its duration, the cause and fix of
//! a failed stage in the `doctor` style, then what was cleaned up.

use super::RouteReport;
use crate::output::Style;

/// "0.4s", "12.0s", "2m05s".
pub fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else {
        crate::output::span(seconds.round() as i64)
    }
}

/// The lines of one route's canary (without colour codes when `style` has none).
pub fn route_lines(style: Style, report: &RouteReport) -> Vec<String> {
    let target = match &report.data_source_id {
        Some(ds) => format!("{} / {ds}", report.knowledge_base_id),
        None => report.knowledge_base_id.clone(),
    };
    let object = report.object.as_deref().unwrap_or(&report.route);
    let mut lines = vec![format!("canary {object} -> {target}")];
    for stage in &report.stages {
        let mark = if stage.passed {
            style.good("PASS")
        } else {
            style.bad("FAIL")
        };
        lines.push(format!(
            "{mark}  {:<16} {:>7}  {}",
            stage.stage.name(),
            duration(stage.seconds),
            stage.detail
        ));
    }
    for finding in &report.findings {
        lines.push(format!(
            "      {} {:<18} {}",
            style.dim("cause:"),
            finding.check,
            finding.detail
        ));
        if let Some(fix) = &finding.fix {
            lines.push(format!("      {}   {fix}", style.dim("fix:")));
        }
    }
    for line in &report.cleanup {
        lines.push(format!("      {} {line}", style.dim("cleanup:")));
    }
    lines.push(match report.failed_stage {
        None => format!(
            "{} in {}",
            style.good("passed"),
            duration(report.total_seconds)
        ),
        Some(stage) => format!(
            "{} at stage {} after {}",
            style.bad("failed"),
            stage.name(),
            duration(report.total_seconds)
        ),
    });
    lines
}

pub fn route(style: Style, report: &RouteReport) {
    for line in route_lines(style, report) {
        println!("{line}");
    }
    println!();
}

pub fn summary(style: Style, reports: &[RouteReport]) {
    let failed: Vec<String> = reports
        .iter()
        .filter_map(|r| {
            r.failed_stage
                .map(|s| format!("{} at {}", r.route, s.name()))
        })
        .collect();
    if failed.is_empty() {
        println!("{} route(s): every stage passed", reports.len());
    } else {
        println!(
            "{} route(s), {} failed: {}",
            reports.len(),
            style.bad(&failed.len().to_string()),
            failed.join("; ")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::super::Stage;
    use super::*;
    use crate::doctor::Finding;
    use kb_autosync_core::routing::Route;

    const PLAIN: Style = Style {
        color: false,
        interactive: false,
    };

    fn report() -> RouteReport {
        let route = Route {
            bucket: "b".into(),
            prefix: "docs/".into(),
            knowledge_base_id: "KB".into(),
            data_source_id: Some("DS".into()),
            ingestion_mode: None,
        };
        let mut report = RouteReport::new(&route);
        report.object = Some("s3://b/docs/.kb-autosync-canary/t.txt".into());
        report.pass(Stage::KnowledgeBase, "KB / DS: scope ok".into());
        report.pass(Stage::Uploaded, "PutObject".into());
        report
    }

    #[test]
    fn a_passing_canary_shows_every_stage_with_its_duration() {
        let lines = route_lines(PLAIN, &report().finish());
        assert_eq!(
            lines[0],
            "canary s3://b/docs/.kb-autosync-canary/t.txt -> KB / DS"
        );
        assert!(
            lines[1].starts_with("PASS  knowledge-base      0.0s  KB / DS"),
            "{}",
            lines[1]
        );
        assert!(lines[2].starts_with("PASS  uploaded"), "{}", lines[2]);
        assert!(lines.last().unwrap().starts_with("passed in "), "{lines:?}");
    }

    #[test]
    fn a_failed_stage_shows_cause_fix_and_cleanup() {
        let mut report = report();
        let finding = Finding::fail(
            "eventbridge-rule",
            "rule R is disabled",
            "aws events enable-rule --name R",
        );
        report.fail(Stage::Recorded, "no change".into(), vec![finding]);
        report.cleanup.push("deleted the canary object".into());
        let text = route_lines(PLAIN, &report.finish()).join("\n");
        for expected in [
            "FAIL  recorded",
            "cause: eventbridge-rule",
            "rule R is disabled",
            "fix:   aws events enable-rule --name R",
            "cleanup: deleted the canary object",
            "failed at stage recorded after",
        ] {
            assert!(text.contains(expected), "{expected:?} missing:\n{text}");
        }
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(0.04), "0.0s");
        assert_eq!(duration(12.35), "12.3s");
        assert_eq!(duration(125.0), "2m05s");
    }
}
