//! DynamoDB's documented limits, enforced before a value reaches the table. Local emulators
//! (moto) accept what DynamoDB refuses, so without this a value could pass every test and then
//! fail in production with a `ValidationException` (a 500). A value over a limit is the client's
//! (400, naming the attribute); the domain's own bounds are far tighter, so reaching these means a
//! bound is missing upstream.

use crate::error::{Error, Result};
use aws_sdk_dynamodb::types::AttributeValue;
use std::collections::HashMap;

/// Largest item, attribute names and values included.
pub const MAX_ITEM_BYTES: usize = 400 * 1024;
/// Largest partition key value (table and index keys alike), UTF-8 bytes.
pub const MAX_PARTITION_KEY_BYTES: usize = 2048;
/// Largest sort key value, UTF-8 bytes.
pub const MAX_SORT_KEY_BYTES: usize = 1024;
/// Significant digits a number may carry.
pub const MAX_NUMBER_DIGITS: usize = 38;
/// Positive numbers lie in [1E-130, 1E126) (9.9999999999999999999999999999999999999E+125 being
/// the largest); negative ones mirror them; zero is allowed.
pub const MIN_NUMBER_EXPONENT: i64 = -130;
pub const MAX_NUMBER_EXPONENT: i64 = 125;

/// The key attributes of the table and its indexes: (partition keys, sort keys).
const PARTITION_KEYS: [&str; 3] = [crate::keys::PK, crate::keys::GSI1PK, crate::keys::GSI2PK];
const SORT_KEYS: [&str; 3] = [crate::keys::SK, crate::keys::GSI1SK, crate::keys::GSI2SK];

fn over(attribute: &str, message: String) -> Error {
    Error::validation(attribute, message)
}

/// Checks a DynamoDB number's text: at most 38 significant digits, magnitude within
/// [1E-130, 1E126) or zero.
pub fn check_number(attribute: &str, text: &str) -> Result<()> {
    let invalid = || over(attribute, format!("`{text}` is not a number DynamoDB can store"));
    let unsigned = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i64>().map_err(|_| invalid())?),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if mantissa.is_empty() || !int_part.bytes().chain(frac_part.bytes()).all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    let digits: String = format!("{int_part}{frac_part}");
    let Some(first) = digits.find(|c| c != '0') else {
        return Ok(()); // zero
    };
    let last = digits.rfind(|c| c != '0').unwrap_or(first);
    if last - first + 1 > MAX_NUMBER_DIGITS {
        return Err(over(attribute, format!("`{text}` has more than {MAX_NUMBER_DIGITS} significant digits")));
    }
    // Decimal exponent of the most significant digit: 123.4 → 2, 0.05 → -2.
    let magnitude = int_part.len() as i64 - 1 - first as i64 + exponent;
    if !(MIN_NUMBER_EXPONENT..=MAX_NUMBER_EXPONENT).contains(&magnitude) {
        return Err(over(attribute, format!("`{text}` is outside the range DynamoDB numbers can hold")));
    }
    Ok(())
}

/// DynamoDB's size of a number: about one byte per two significant digits, plus one.
fn number_size(text: &str) -> usize {
    let significant = text.bytes().filter(u8::is_ascii_digit).count().max(1);
    significant.div_ceil(2) + 1
}

/// Size of one value as DynamoDB counts it, checking every number inside it.
fn value_size(attribute: &str, value: &AttributeValue) -> Result<usize> {
    Ok(match value {
        AttributeValue::S(s) => s.len(),
        AttributeValue::N(n) => {
            check_number(attribute, n)?;
            number_size(n)
        }
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::Bool(_) | AttributeValue::Null(_) => 1,
        AttributeValue::Ss(v) => v.iter().map(String::len).sum(),
        AttributeValue::Bs(v) => v.iter().map(|b| b.as_ref().len()).sum(),
        AttributeValue::Ns(v) => {
            let mut size = 0;
            for n in v {
                check_number(attribute, n)?;
                size += number_size(n);
            }
            size
        }
        AttributeValue::L(v) => {
            let mut size = 3;
            for item in v {
                size += 1 + value_size(attribute, item)?;
            }
            size
        }
        AttributeValue::M(m) => {
            let mut size = 3;
            for (k, item) in m {
                size += 1 + k.len() + value_size(attribute, item)?;
            }
            size
        }
        _ => 0,
    })
}

/// A key attribute's value: a non-empty string within the key-size limit.
pub fn check_key_value(attribute: &str, value: &str) -> Result<()> {
    let max = if SORT_KEYS.contains(&attribute) { MAX_SORT_KEY_BYTES } else { MAX_PARTITION_KEY_BYTES };
    if value.is_empty() || value.len() > max {
        return Err(over(attribute, format!("key values must be 1 to {max} bytes")));
    }
    Ok(())
}

/// Checks a whole item before a write: its keys, its numbers and its total size.
pub fn check_item(item: &HashMap<String, AttributeValue>) -> Result<()> {
    let mut size = 0;
    for (name, value) in item {
        if PARTITION_KEYS.contains(&name.as_str()) || SORT_KEYS.contains(&name.as_str()) {
            if let AttributeValue::S(s) = value {
                check_key_value(name, s)?;
            }
        }
        size += name.len() + value_size(name, value)?;
    }
    if size > MAX_ITEM_BYTES {
        return Err(over("body", format!("the item would be {size} bytes; DynamoDB stores at most {MAX_ITEM_BYTES}")));
    }
    Ok(())
}

/// Checks values bound into an expression (`:name` → value) the same way, attributes named by
/// their placeholder.
pub fn check_values(values: &HashMap<String, AttributeValue>) -> Result<()> {
    for (placeholder, value) in values {
        let name = placeholder.trim_start_matches(':');
        if PARTITION_KEYS.contains(&name) || SORT_KEYS.contains(&name) {
            if let AttributeValue::S(s) = value {
                check_key_value(name, s)?;
            }
        }
        value_size(name, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    #[test]
    fn numbers_carry_at_most_38_significant_digits() {
        let digits38 = "1".repeat(38);
        assert!(check_number("n", &digits38).is_ok());
        assert!(check_number("n", &format!("{digits38}1")).is_err());
        // Leading and trailing zeros are not significant.
        assert!(check_number("n", &format!("0.000{digits38}000")).is_ok());
        assert!(check_number("n", "100000000000000000000000000000000000000000000").is_ok());
    }

    #[test]
    fn positive_numbers_lie_between_1e_minus_130_and_1e126() {
        for ok in ["1E-130", "1e-130", "9.9999999999999999999999999999999999999E+125", "0", "-0", "0.0", "4.57"] {
            assert!(check_number("n", ok).is_ok(), "{ok} refused");
        }
        for bad in ["1E-131", "0.9E-130", "1E126", "10E125", "1e-200"] {
            assert!(check_number("n", bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn negative_numbers_mirror_the_positive_range() {
        assert!(check_number("n", "-1E-130").is_ok());
        assert!(check_number("n", "-9.9999999999999999999999999999999999999E+125").is_ok());
        assert!(check_number("n", "-1E-131").is_err());
        assert!(check_number("n", "-1E126").is_err());
    }

    #[test]
    fn text_that_is_not_a_number_is_refused() {
        for bad in ["", "-", "1.2.3", "NaN", "inf", "1e", "0x10", " 1"] {
            assert!(check_number("n", bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn partition_keys_hold_at_most_2048_bytes_and_sort_keys_1024() {
        for pk in ["PK", "GSI1PK", "GSI2PK"] {
            assert!(check_key_value(pk, &"x".repeat(2048)).is_ok());
            assert!(check_key_value(pk, &"x".repeat(2049)).is_err(), "{pk}");
        }
        for sk in ["SK", "GSI1SK", "GSI2SK"] {
            assert!(check_key_value(sk, &"x".repeat(1024)).is_ok());
            assert!(check_key_value(sk, &"x".repeat(1025)).is_err(), "{sk}");
        }
        // Bytes, not characters: 512 × "é" is 1024 bytes, 513 is over.
        assert!(check_key_value("SK", &"é".repeat(512)).is_ok());
        assert!(check_key_value("SK", &"é".repeat(513)).is_err());
        assert!(check_key_value("PK", "").is_err(), "key values cannot be empty");
    }

    #[test]
    fn items_hold_at_most_400_kib_names_included() {
        let base = |body: usize| {
            HashMap::from([
                ("PK".to_string(), s("A")),
                ("SK".to_string(), s("B")),
                ("body".to_string(), s(&"x".repeat(body))),
            ])
        };
        // "PK" + "A", "SK" + "B" and the name "body": 10 bytes besides the value.
        assert!(check_item(&base(MAX_ITEM_BYTES - 10)).is_ok());
        let err = check_item(&base(MAX_ITEM_BYTES - 9)).unwrap_err();
        assert_eq!(err.code(), "validation_failed");
        // Numbers inside maps and lists are checked too.
        let nested = HashMap::from([(
            "m".to_string(),
            AttributeValue::M(HashMap::from([("r".to_string(), AttributeValue::N("1e-200".into()))])),
        )]);
        assert!(check_item(&nested).is_err());
        let keyed = HashMap::from([("GSI1SK".to_string(), s(&"k".repeat(1025)))]);
        assert!(check_item(&keyed).is_err());
    }
}
