//! How results look: tables, relative times, colour only on a terminal, a spinner on slow calls.

use std::io::IsTerminal;
use std::time::Duration;

use chrono::{DateTime, Utc};
use comfy_table::{presets, ContentArrangement, Table, TableComponent};
use indicatif::{ProgressBar, ProgressStyle};

/// Colour and spinner settings of one invocation.
#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
    pub interactive: bool,
}

impl Style {
    pub fn detect(no_color: bool) -> Self {
        let tty = std::io::stdout().is_terminal();
        Self {
            color: tty && !no_color && std::env::var_os("NO_COLOR").is_none(),
            interactive: std::io::stderr().is_terminal(),
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
    pub fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }
    pub fn bad(&self, text: &str) -> String {
        self.paint("31;1", text)
    }
    pub fn dim(&self, text: &str) -> String {
        self.paint("2", text)
    }
}

/// `--json` output: the rows as pretty JSON on stdout.
pub fn print_json<T: serde::Serialize>(rows: &T) {
    println!(
        "{}",
        serde_json::to_string_pretty(rows).expect("CLI rows are plain data and always serialise")
    );
}

pub fn table(headers: &[&str]) -> Table {
    let mut table = Table::new();
    table
        .load_preset(presets::UTF8_HORIZONTAL_ONLY)
        .remove_style(TableComponent::HorizontalLines)
        .remove_style(TableComponent::MiddleIntersections)
        .remove_style(TableComponent::LeftBorderIntersections)
        .remove_style(TableComponent::RightBorderIntersections)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers.to_vec());
    table
}

/// A spinner on stderr while a slow call runs; nothing when stderr is not a terminal.
pub struct Spinner(Option<ProgressBar>);

impl Spinner {
    pub fn start(style: Style, message: &str) -> Self {
        if !style.interactive {
            return Self(None);
        }
        let bar = ProgressBar::new_spinner();
        bar.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("static template"));
        bar.set_message(message.to_string());
        bar.enable_steady_tick(Duration::from_millis(100));
        Self(Some(bar))
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        if let Some(bar) = self.0.take() {
            bar.finish_and_clear();
        }
    }
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// "42s ago", "3m ago", "2h ago", "4d ago"; the input itself when it is not a timestamp.
pub fn relative(text: &str, now: DateTime<Utc>) -> String {
    match parse_time(text) {
        Some(t) => {
            let seconds = (now - t).num_seconds();
            if seconds < 0 {
                format!("in {}", span(-seconds))
            } else {
                format!("{} ago", span(seconds))
            }
        }
        None => text.to_string(),
    }
}

/// 0s, 59s, 1m05s, 2h03m, 3d04h.
pub fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

/// Seconds between two RFC 3339 times, if both parse.
pub fn seconds_between(start: &str, end: &str) -> Option<i64> {
    Some((parse_time(end)? - parse_time(start)?).num_seconds())
}

pub fn or_dash(value: Option<&str>) -> String {
    value.filter(|v| !v.is_empty()).unwrap_or("-").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_times_read_naturally() {
        let now = parse_time("2026-11-24T12:00:00Z").unwrap();
        assert_eq!(relative("2026-11-24T11:59:18Z", now), "42s ago");
        assert_eq!(relative("2026-11-24T11:56:55Z", now), "3m05s ago");
        assert_eq!(relative("2026-11-24T09:30:00+00:00", now), "2h30m ago");
        assert_eq!(relative("2026-11-20T08:00:00Z", now), "4d04h ago");
        assert_eq!(relative("2026-11-24T12:00:10Z", now), "in 10s");
        assert_eq!(relative("not a time", now), "not a time");
    }

    #[test]
    fn durations_between_timestamps() {
        assert_eq!(
            seconds_between("2026-11-24T12:00:00Z", "2026-11-24T12:05:30Z"),
            Some(330)
        );
        assert_eq!(seconds_between("x", "2026-11-24T12:05:30Z"), None);
        assert_eq!(span(330), "5m30s");
    }

    #[test]
    fn colour_only_when_asked() {
        let plain = Style {
            color: false,
            interactive: false,
        };
        assert_eq!(plain.bad("FAIL"), "FAIL");
        let tty = Style {
            color: true,
            interactive: false,
        };
        assert_eq!(tty.good("PASS"), "\x1b[32mPASS\x1b[0m");
    }
}
