//! Timestamps: RFC 3339 in, UTC with `Z` and whole seconds out. One fixed-width text form means
//! DynamoDB string comparisons (`datetime > :now`, sort keys) order exactly like the instants.

use chrono::{DateTime, Datelike, NaiveDateTime, SecondsFormat, Timelike, Utc};

pub type Timestamp = DateTime<Utc>;

pub fn now() -> Timestamp {
    truncate(Utc::now())
}

fn truncate(t: Timestamp) -> Timestamp {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

/// Accepts RFC 3339 with an offset, or the original README's naive form read as UTC.
///
/// The year must be written as exactly four digits and the instant must fall in years
/// 0000–9999 once in UTC: chrono alone also reads `+10000-…` and `-0001-…`, which format back as
/// non-RFC 3339 text that sorts before `"0"` in the DynamoDB sort keys and fails to parse again.
pub fn parse(input: &str) -> Option<Timestamp> {
    let s = input.trim();
    let b = s.as_bytes();
    if b.len() < 5 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    let parsed = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S"]
            .iter()
            .find_map(|fmt| NaiveDateTime::parse_from_str(s, fmt).ok())
            .map(|n| n.and_utc()),
    };
    // An offset can move a four-digit local year out of range (`0000-01-01T00:00:00+01:00`).
    parsed.map(truncate).filter(|t| (0..=9999).contains(&t.year()))
}

pub fn format(t: &Timestamp) -> String {
    match digits(t) {
        Some(buf) => String::from_utf8_lossy(&buf).into_owned(),
        None => t.to_rfc3339_opts(SecondsFormat::Secs, true),
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ` written digit by digit: chrono's formatter interprets its format
/// string on every call, which was a third of a 20-event list's time. `None` outside the
/// four-digit years [`parse`] admits (chrono then writes its own form).
fn digits(t: &Timestamp) -> Option<[u8; 20]> {
    // Each field accessor of a `DateTime<Utc>` converts to local (UTC) time again: once here.
    let t = t.naive_utc();
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let mut buf = *b"0000-00-00T00:00:00Z";
    let mut put = |at: usize, width: usize, mut value: u32| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    };
    put(0, 4, year);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    Some(buf)
}

/// A timestamp serialised as [`format`] writes it, straight into the output (no `String`): the
/// API views hold these so a page of events serialises without an allocation per time.
#[derive(Clone, Copy, Debug)]
pub struct Rfc3339<'a>(pub &'a Timestamp);

impl serde::Serialize for Rfc3339<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match digits(self.0) {
            // ASCII digits and separators only: always UTF-8.
            Some(buf) => s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?),
            None => s.serialize_str(&format(self.0)),
        }
    }
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

    #[test]
    fn digit_writer_matches_chrono_for_every_field() {
        for text in ["0000-01-01T00:00:00Z", "0999-02-28T09:05:07Z", "2026-12-01T23:59:59Z", "9999-12-31T23:59:59Z"] {
            let t = parse(text).unwrap();
            assert_eq!(format(&t), t.to_rfc3339_opts(SecondsFormat::Secs, true));
            assert_eq!(format(&t), text);
        }
        let mut t = parse("1970-01-01T00:00:00Z").unwrap();
        for _ in 0..2000 {
            t += chrono::Duration::seconds(86_400 * 17 + 3_671);
            assert_eq!(format(&t), t.to_rfc3339_opts(SecondsFormat::Secs, true));
        }
    }

    #[test]
    fn only_four_digit_years_that_stay_in_range() {
        for bad in [
            "+10000-01-01T00:00:00",
            "+10000-01-01T00:00:00Z",
            "-0001-01-01T00:00:00",
            "+2025-01-01T00:00:00Z",
            "12025-01-01T00:00:00Z",
            "0000-01-01T00:00:00+01:00",
            "9999-12-31T23:30:00-01:00",
        ] {
            assert!(parse(bad).is_none(), "{bad} accepted");
        }
        for good in ["0000-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "0001-06-01T12:00:00"] {
            let t = parse(good).unwrap_or_else(|| panic!("{good} refused"));
            let text = format(&t);
            assert_eq!(text.len(), 20, "{text}");
            assert_eq!(serde_json::to_value(Rfc3339(&t)).unwrap(), serde_json::json!(text));
            assert_eq!(parse(&text), Some(t));
        }
    }
}
