//! Timestamps: RFC 3339 in, UTC with `Z` and whole seconds out. One fixed-width text form means
//! DynamoDB string comparisons (`datetime > :now`, sort keys) order exactly like the instants.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    truncate(Utc::now())
}

fn truncate(t: Timestamp) -> Timestamp {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Accepts RFC 3339 with an offset, or the original README's naive form read as UTC.
pub fn parse(input: &str) -> Option<Timestamp> {
    let s = input.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(truncate(t.with_timezone(&Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(s, fmt) {
            return Some(truncate(n.and_utc()));
        }
    }
    None
}

pub fn format(t: &Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// serde adapter so every stored and returned timestamp uses [`format`].
pub mod serde_ts {
    use super::*;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Timestamp, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp `{s}`")))
    }

    pub mod option {
        use super::*;

        pub fn serialize<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
            match t {
                Some(t) => s.serialize_str(&format(t)),
                None => s.serialize_none(),
            }
        }

        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Timestamp>, D::Error> {
            match Option::<String>::deserialize(d)? {
                None => Ok(None),
                Some(s) => {
                    parse(&s).map(Some).ok_or_else(|| serde::de::Error::custom(format!("invalid timestamp `{s}`")))
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn naive_input_is_utc_and_output_has_z() {
        let t = parse("2025-08-01T10:00:00").unwrap();
        assert_eq!(format(&t), "2025-08-01T10:00:00Z");
        let t = parse("2025-08-01T12:00:00.250+02:00").unwrap();
        assert_eq!(format(&t), "2025-08-01T10:00:00Z");
        assert!(parse("yesterday").is_none());
        assert!(parse("2025-13-01T00:00:00").is_none());
    }
}
