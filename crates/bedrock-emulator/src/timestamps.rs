//! Timestamp rendering. The SDK parses every bedrock-agent timestamp as an RFC 3339 date-time
//! string (`Format::DateTimeWithOffset`), not epoch seconds; milliseconds and a `Z` suffix keep them
//! readable and sortable as strings.

use chrono::{DateTime, SecondsFormat, Utc};

pub fn rfc3339_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn serialize_millis<S: serde::Serializer>(
    at: &DateTime<Utc>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&rfc3339_millis(*at))
}

pub fn serialize_optional_millis<S: serde::Serializer>(
    at: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => serializer.serialize_str(&rfc3339_millis(*at)),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn renders_milliseconds_and_z() {
        let at = Utc.with_ymd_and_hms(2024, 5, 1, 12, 30, 0).unwrap()
            + chrono::Duration::microseconds(123_456);
        assert_eq!(rfc3339_millis(at), "2024-05-01T12:30:00.123Z");
    }
}
