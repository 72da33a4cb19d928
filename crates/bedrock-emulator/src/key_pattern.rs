//! Matching S3 keys against fault-injection patterns.
//!
//! A pattern with `*` or `?` is a glob over the whole key (`*` also crosses `/`, so `*.pdf` matches
//! `a/b/c.pdf`); any other pattern matches as a substring. Tests write patterns by hand, so the
//! rule has to be obvious rather than complete.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyPattern(String);

impl KeyPattern {
    pub fn new(pattern: impl Into<String>) -> Self {
        Self(pattern.into())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_glob(&self) -> bool {
        self.0.contains(['*', '?'])
    }

    pub fn matches(&self, key: &str) -> bool {
        if self.is_glob() {
            glob_matches(&self.0, key)
        } else {
            key.contains(self.0.as_str())
        }
    }
}

/// Iterative wildcard match with single-star backtracking: linear in practice, no recursion depth
/// to blow up on adversarial patterns.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let pattern: Vec<char> = pattern.chars().collect();
    let text: Vec<char> = text.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    // Position of the last `*` seen and the text position it is currently assumed to cover up to.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some('*') => {
                backtrack = Some((p, t));
                p += 1;
            }
            Some('?') => {
                p += 1;
                t += 1;
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((star, covered)) => {
                    p = star + 1;
                    t = covered + 1;
                    backtrack = Some((star, covered + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_pattern_is_a_substring() {
        let pattern = KeyPattern::new("broken");
        assert!(pattern.matches("docs/broken-file.txt"));
        assert!(!pattern.matches("docs/fine.txt"));
    }

    #[test]
    fn glob_matches_whole_key_and_star_crosses_slashes() {
        let pattern = KeyPattern::new("*.pdf");
        assert!(pattern.matches("a/b/c.pdf"));
        assert!(!pattern.matches("a/b/c.pdf.txt"));
        assert!(KeyPattern::new("docs/?.txt").matches("docs/a.txt"));
        assert!(!KeyPattern::new("docs/?.txt").matches("docs/ab.txt"));
        assert!(KeyPattern::new("docs/*/bad-*").matches("docs/x/y/bad-1.md"));
        assert!(KeyPattern::new("**").matches(""));
        assert!(!KeyPattern::new("a*b").matches("acbc"));
    }
}
