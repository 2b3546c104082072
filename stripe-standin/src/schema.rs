//! Every form the service sends, checked against the request schema of the operation it calls,
//! as Stripe's API reference documents it (`stripe-standin/openapi/requests.json`; where it
//! comes from and how it is made: `stripe-standin/openapi/README.md`). Stripe's API takes
//! form-encoded bodies in bracket notation (`line_items[0][price_data][currency]`); each key is
//! walked down the schema: a name the schema does not have → 400 `parameter_unknown`
//! ("Received unknown parameter: …"), a value of the wrong type or outside its enum → 400
//! `parameter_invalid_*`, as <https://docs.stripe.com/error-codes> lists them.

use crate::rules::stripe_error;
use serde_json::Value;
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    CreateSession,
    RetrieveSession,
    ExpireSession,
    CreateRefund,
}

impl Operation {
    /// The `operationId` in Stripe's description.
    pub fn id(self) -> &'static str {
        match self {
            Operation::CreateSession => "PostCheckoutSessions",
            Operation::RetrieveSession => "GetCheckoutSessionsSession",
            Operation::ExpireSession => "PostCheckoutSessionsSessionExpire",
            Operation::CreateRefund => "PostRefunds",
        }
    }
}

pub const REQUESTS: &str = include_str!("../openapi/requests.json");

fn schemas() -> &'static Value {
    static PARSED: OnceLock<Value> = OnceLock::new();
    PARSED.get_or_init(|| serde_json::from_str(REQUESTS).expect("openapi/requests.json is JSON"))
}

/// The request schema of `op`.
pub fn request_schema(op: Operation) -> &'static Value {
    &schemas()["operations"][op.id()]["schema"]
}

/// `a[b][0][c]` → `["a", "b", "0", "c"]`; `None` when the brackets do not balance.
fn key_path(key: &str) -> Option<Vec<&str>> {
    let (head, mut rest) = match key.find('[') {
        Some(i) => (&key[..i], &key[i..]),
        None => (key, ""),
    };
    let mut path = vec![head];
    while !rest.is_empty() {
        let inner = rest.strip_prefix('[')?;
        let end = inner.find(']')?;
        path.push(&inner[..end]);
        rest = &inner[end + 1..];
    }
    Some(path)
}

/// Checks each field; the first fault is Stripe's answer.
pub fn check(op: Operation, form: &[(String, String)]) -> Result<(), (u16, Value)> {
    let root = request_schema(op);
    for (key, value) in form {
        let Some(path) = key_path(key) else {
            return Err(unknown(key));
        };
        check_field(root, &path, key, value)?;
    }
    Ok(())
}

fn unknown(key: &str) -> (u16, Value) {
    stripe_error(
        400,
        "invalid_request_error",
        Some("parameter_unknown"),
        Some(key),
        &format!("Received unknown parameter: {key}"),
    )
}

/// A parameter Stripe takes whose schema `requests.json` leaves out (the service never sends it):
/// anything below it is accepted, as the file cannot say what Stripe would refuse there.
fn elided(schema: &Value) -> bool {
    schema["x-extract"] == "elided"
}

fn check_field(schema: &Value, path: &[&str], key: &str, value: &str) -> Result<(), (u16, Value)> {
    if elided(schema) {
        return Ok(());
    }
    let Some((first, rest)) = path.split_first() else {
        return check_value(schema, key, value);
    };
    // `anyOf`: the first branch the key fits.
    if let Some(branches) = schema["anyOf"].as_array() {
        let mut last = Err(unknown(key));
        for branch in branches {
            last = check_field(branch, path, key, value);
            if last.is_ok() {
                return last;
            }
        }
        return last;
    }
    match schema["type"].as_str() {
        Some("object") => {
            let child = match schema["properties"].get(*first) {
                Some(child) => child,
                None => match &schema["additionalProperties"] {
                    Value::Object(_) => &schema["additionalProperties"],
                    _ => return Err(unknown(key)),
                },
            };
            check_field(child, rest, key, value)
        }
        Some("array") if first.parse::<u32>().is_ok() || first.is_empty() => {
            check_field(&schema["items"], rest, key, value)
        }
        _ => Err(unknown(key)),
    }
}

fn check_value(schema: &Value, key: &str, value: &str) -> Result<(), (u16, Value)> {
    if let Some(branches) = schema["anyOf"].as_array() {
        // An empty string unsets a field where a branch allows it; any branch that takes the
        // value will do.
        if branches.iter().any(|b| check_value(b, key, value).is_ok()) {
            return Ok(());
        }
    }
    let bad = |code: &str, what: &str| {
        Err(stripe_error(400, "invalid_request_error", Some(code), Some(key), &format!("Invalid {what}: {key}")))
    };
    match schema["type"].as_str() {
        Some("integer") if value.parse::<i64>().is_err() => bad("parameter_invalid_integer", "integer"),
        Some("boolean") if !matches!(value, "true" | "false") => bad("parameter_invalid_boolean", "boolean"),
        Some("string") => {
            if let Some(allowed) = schema["enum"].as_array() {
                if !allowed.iter().any(|a| a == value) {
                    return bad("parameter_invalid_string", "value for an enum");
                }
            }
            if schema["maxLength"].as_u64().is_some_and(|max| value.chars().count() as u64 > max) {
                return bad("parameter_invalid_string_size", "string length");
            }
            Ok(())
        }
        // A scalar sent where the schema wants an object or a list.
        Some("object" | "array") => Err(unknown(key)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn code(r: Result<(), (u16, Value)>) -> String {
        r.err().map(|(_, b)| b["error"]["code"].as_str().unwrap_or_default().to_string()).unwrap_or_default()
    }

    #[test]
    fn forms_are_walked_down_the_schema() {
        let ok = form(&[
            ("mode", "payment"),
            ("line_items[0][price_data][currency]", "eur"),
            ("line_items[0][price_data][unit_amount]", "2500"),
            ("line_items[0][price_data][product_data][name]", "Sound Bath"),
            ("line_items[0][quantity]", "1"),
            ("metadata[booking_id]", "01J"),
            ("expires_at", "1700000000"),
        ]);
        assert_eq!(check(Operation::CreateSession, &ok), Ok(()));
        for (pairs, want) in [
            (vec![("payment_intent_datum[foo]", "x")], "parameter_unknown"),
            (vec![("line_items[0][price_data][amount]", "1")], "parameter_unknown"),
            (vec![("line_items[x", "1")], "parameter_unknown"),
            (vec![("mode", "donation")], "parameter_invalid_string"),
            (vec![("expires_at", "soon")], "parameter_invalid_integer"),
            (vec![("line_items[0][quantity]", "1.5")], "parameter_invalid_integer"),
            (vec![("metadata", "x")], "parameter_unknown"),
            (vec![("client_reference_id", &"x".repeat(201))], "parameter_invalid_string_size"),
        ] {
            assert_eq!(code(check(Operation::CreateSession, &form(&pairs))), want, "{pairs:?}");
        }
        assert_eq!(code(check(Operation::CreateRefund, &form(&[("reason", "because")]))), "parameter_invalid_string");
        assert_eq!(code(check(Operation::ExpireSession, &form(&[("status", "expired")]))), "parameter_unknown");
    }
}
