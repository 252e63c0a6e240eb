//! Times, durations and text fitted for tables read by people.

use std::borrow::Cow;

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Text from a pipeline file or a request (a name, an error about it) as a terminal may show
/// it: control characters (escape sequences, bells, carriage returns, line breaks) appear as
/// escapes like `\u{1b}` and never reach the terminal as such.
pub fn shown(text: &str) -> Cow<'_, str> {
    escaped(text, |_| false)
}

/// A message kfbox composed around such text: its own line breaks and tabs stay.
pub fn shown_lines(text: &str) -> Cow<'_, str> {
    escaped(text, |c| c == '\n' || c == '\t')
}

fn escaped(text: &str, keep: impl Fn(char) -> bool) -> Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() && !keep(c);
    if !text.chars().any(unsafe_char) {
        return Cow::Borrowed(text);
    }
    Cow::Owned(
        text.chars()
            .map(|c| {
                if unsafe_char(c) {
                    c.escape_default().to_string()
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// RFC 3339 with milliseconds, for JSON.
pub fn rfc3339(ms: i64) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// "12s ago", "5m ago", "3h ago", "2d ago", then the date.
pub fn ago(ms: i64, now: DateTime<Utc>) -> String {
    let seconds = (now.timestamp_millis() - ms).max(0) / 1000;
    match seconds {
        0..=59 => format!("{seconds}s ago"),
        60..=3599 => format!("{}m ago", seconds / 60),
        3600..=86_399 => format!("{}h ago", seconds / 3600),
        86_400..=604_799 => format!("{}d ago", seconds / 86_400),
        _ => Utc
            .timestamp_millis_opt(ms)
            .single()
            .map_or_else(String::new, |t| t.format("%Y-%m-%d").to_string()),
    }
}

/// "0.4s", "12.0s", "3m04s", "2h05m".
pub fn duration(ms: i64) -> String {
    let ms = ms.max(0);
    let seconds = ms / 1000;
    match seconds {
        0..=59 => format!("{:.1}s", ms as f64 / 1000.0),
        60..=3599 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        _ => format!("{}h{:02}m", seconds / 3600, (seconds % 3600) / 60),
    }
}

/// "0 B", "812 B", "4.0 KiB", "1.5 GiB".
pub fn bytes(count: u64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = count as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < units.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{count} B")
    } else {
        format!("{value:.1} {}", units[unit])
    }
}

/// Cut `text` to `width` characters, marking the cut with an ellipsis (and escaped as
/// [`shown`]: table cells hold names).
pub fn fit(text: &str, width: usize) -> String {
    let text = shown(text);
    if text.chars().count() <= width {
        return text.into_owned();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Cut `text` to `width` characters from the left, keeping its end (a task path's last
/// segments name the task).
pub fn fit_left(text: &str, width: usize) -> String {
    let text = shown(text);
    let count = text.chars().count();
    if count <= width {
        return text.into_owned();
    }
    let kept: String = text.chars().skip(count + 1 - width).collect();
    format!("…{kept}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_naturally() {
        let now = Utc.timestamp_millis_opt(1_000_000_000_000).unwrap();
        let ms = now.timestamp_millis();
        assert_eq!(ago(ms - 5_000, now), "5s ago");
        assert_eq!(ago(ms - 300_000, now), "5m ago");
        assert_eq!(ago(ms - 7_200_000, now), "2h ago");
        assert_eq!(ago(ms - 30 * 86_400_000, now), "2001-08-10");
        assert_eq!(duration(1_250), "1.2s");
        assert_eq!(duration(184_000), "3m04s");
        assert_eq!(duration(7_500_000), "2h05m");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
        assert_eq!(fit_left("outer/inner/train", 8), "…r/train");
        assert_eq!(fit_left("train", 8), "train");
    }

    #[test]
    fn control_characters_are_shown_not_sent() {
        let hostile = "run\u{1b}]0;owned\u{7}\u{9b}2J\nx";
        assert_eq!(shown(hostile), "run\\u{1b}]0;owned\\u{7}\\u{9b}2J\\nx");
        assert_eq!(shown_lines("a\nb\u{1b}"), "a\nb\\u{1b}");
        assert!(matches!(shown("plain é"), Cow::Borrowed(_)));
        assert!(!fit(hostile, 10).contains('\u{1b}'));
    }
}
