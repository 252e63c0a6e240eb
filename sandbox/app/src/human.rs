//! Times, durations and text fitted for tables read by people.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

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

/// Cut `text` to `width` characters, marking the cut with an ellipsis.
pub fn fit(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let kept: String = text.chars().take(width.saturating_sub(1)).collect();
    format!("{kept}…")
}

/// Cut `text` to `width` characters from the left, keeping its end (a task path's last
/// segments name the task).
pub fn fit_left(text: &str, width: usize) -> String {
    let count = text.chars().count();
    if count <= width {
        return text.to_owned();
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
}
