//! Checks shared by the fuzz targets: a parser may reject any input, but only with an error value
//! whose message tells the operator what was wrong.

use std::fmt::Display;

/// A rejection must say something: an empty message in a DLQ log line helps nobody.
pub fn assert_readable_rejection(error: &impl Display) {
    let message = error.to_string();
    assert!(
        !message.trim().is_empty(),
        "a rejection with an empty message"
    );
}

/// The fuzz input as text, the way Lambda hands JSON to a function: anything else never reaches
/// the parsers (the runtime rejects it first).
pub fn as_text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}
