//! Keeping Secrets' values out of logs: what a step prints is masked before it is written or
//! shown, so no log file, API answer or terminal holds them.

use std::borrow::Cow;

/// What a masked value reads as.
pub const MASK: &str = "***";

/// `line` with every occurrence of each value (or of each line of a value that spans
/// several, since logs are kept line by line) replaced by [`MASK`].
pub fn mask_line<'a>(line: &'a str, masked: &[String]) -> Cow<'a, str> {
    let mut line = Cow::Borrowed(line);
    for value in masked {
        for part in value.lines().map(str::trim_end).filter(|p| !p.is_empty()) {
            if line.contains(part) {
                line = Cow::Owned(line.replace(part, MASK));
            }
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_occurrence_and_every_line_of_a_value_is_masked() {
        let masked = vec![
            "s3cr3t".to_owned(),
            "-----BEGIN KEY-----\nAAAA\n".to_owned(),
        ];
        assert_eq!(
            mask_line("pw=s3cr3t and again s3cr3t", &masked),
            "pw=*** and again ***"
        );
        assert_eq!(mask_line("AAAA", &masked), "***");
        assert_eq!(mask_line("nothing here", &masked), "nothing here");
        assert!(matches!(mask_line("plain", &masked), Cow::Borrowed(_)));
    }
}
