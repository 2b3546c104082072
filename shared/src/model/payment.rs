//! Prices of paid events and the payment state a booking of one carries.

use crate::error::{Error, Result};
use crate::time::{serde_ts, Rfc3339, Timestamp};
use serde::{Deserialize, Serialize};

/// Smallest and largest amount of a price, in the currency's minor unit (cents for `usd`).
pub const MIN_AMOUNT: u64 = 1;
pub const MAX_AMOUNT: u64 = 100_000_000;

/// How long a pending booking holds its seat, from the booking: its Checkout Session's
/// `expires_at` is exactly this, so the seat is held as long as Stripe takes payment. Stripe wants
/// `expires_at` at least 30 minutes after it *creates* the session, on its own clock, which
/// happens after our write and a network hop, and its clock may run ahead of ours
/// (<https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at>):
/// one minute of margin covers both.
pub const HOLD_MINUTES: i64 = 31;

/// A waitlist offer lasts up to 24 hours: the longest `expires_at` Stripe accepts for a Checkout
/// Session (less [`OFFER_MARGIN_MINUTES`]).
pub const OFFER_HOURS: i64 = 24;
/// Stripe counts its 24 hours from the session's creation on its own clock, which may run behind
/// ours, and an offer is opened right after its promotion: an offer of exactly 24 hours would be
/// refused (`expires_at` too late) whenever Stripe's clock lags by more than that delay. A minute
/// less keeps it inside (<https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at>).
pub const OFFER_MARGIN_MINUTES: i64 = 1;
/// The shortest offer: a Checkout Session must expire at least 30 minutes after it is created
/// (Stripe), plus a minute for opening it after the promotion commits.
pub const OFFER_MIN_MINUTES: i64 = 31;

/// When an offer made at `now` for an event starting at `start` ends: 24 hours on (less
/// [`OFFER_MARGIN_MINUTES`]), or the start if sooner; `None` when under [`OFFER_MIN_MINUTES`]
/// remain.
pub fn offer_expiry(start: Timestamp, now: Timestamp) -> Option<Timestamp> {
    let longest = chrono::Duration::hours(OFFER_HOURS) - chrono::Duration::minutes(OFFER_MARGIN_MINUTES);
    let end = start.min(now + longest);
    (end - now >= chrono::Duration::minutes(OFFER_MIN_MINUTES)).then_some(end)
}

/// Stripe's minimum charge per currency, in minor units: a price below it could never be paid
/// (Stripe refuses the Checkout Session, `amount_too_small`). Currencies not listed are checked by
/// Stripe alone (it converts them to the account's settlement currency first).
/// Source: <https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts>.
pub const MINIMUM_CHARGE: &[(&str, u64)] = &[
    ("aed", 200),
    ("aud", 50),
    ("bgn", 100),
    ("brl", 50),
    ("cad", 50),
    ("chf", 50),
    ("czk", 1500),
    ("dkk", 250),
    ("eur", 50),
    ("gbp", 30),
    ("hkd", 400),
    ("huf", 17500),
    ("inr", 50),
    ("jpy", 50),
    ("mxn", 1000),
    ("myr", 200),
    ("nok", 300),
    ("nzd", 50),
    ("pln", 200),
    ("ron", 200),
    ("sek", 300),
    ("sgd", 50),
    ("thb", 1000),
    ("usd", 50),
];

/// Stripe's minimum charge for `currency`, where the table has it.
pub fn min_charge(currency: &str) -> Option<u64> {
    MINIMUM_CHARGE.iter().find(|(c, _)| *c == currency).map(|(_, min)| *min)
}

/// `payment.refund_status` from the cancel until Stripe has answered the refund request.
pub const REFUND_REQUESTED: &str = "requested";

/// Refund statuses Stripe reports as an outcome (`succeeded`, or the money not returned:
/// `failed`, `canceled`). A later `pending` or `requires_action` of the same refund (events
/// arrive out of order, a sweep reads a stale answer) never replaces one.
pub const FINAL_REFUND_STATUSES: [&str; 3] = ["succeeded", "failed", "canceled"];

pub fn is_final_refund_status(status: &str) -> bool {
    FINAL_REFUND_STATUSES.contains(&status)
}

/// An event's price: an amount in minor units and a lower-case ISO 4217 code.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(example = json!({"amount": 1500, "currency": "eur"})))]
/// A price in the currency's minor unit (cents for `usd`, whole yen for `jpy`).
pub struct Price {
    /// Minor units, 1-100000000, and at least Stripe's minimum charge for the currency
    /// (https://docs.stripe.com/currencies#minimum-and-maximum-charge-amounts): 50 for usd, eur,
    /// inr, aud, cad, chf, nzd, sgd, brl, jpy; 30 for gbp; 100 bgn; 200 aed, myr, pln, ron; 250
    /// dkk; 300 nok, sek; 400 hkd; 1000 mxn, thb; 1500 czk; 17500 huf. Below it → 400
    /// `validation_failed`, field `price`.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000000))]
    pub amount: u64,
    /// ISO 4217 code in lower case, as Stripe writes it (`usd`, `eur`, `inr`).
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z]{3}$", min_length = 3, max_length = 3))]
    pub currency: String,
}

impl Price {
    /// The client's `price` object, checked as the contract states it.
    pub fn validate(raw: &serde_json::Value) -> Result<Price> {
        let bad = |m: &str| Error::validation("price", m);
        let obj = raw.as_object().ok_or_else(|| bad("must be {\"amount\", \"currency\"} or null"))?;
        if let Some(extra) = obj.keys().find(|k| !matches!(k.as_str(), "amount" | "currency")) {
            return Err(bad(&format!("unknown field `{extra}` (price has `amount` and `currency`)")));
        }
        let amount = obj
            .get("amount")
            .and_then(serde_json::Value::as_u64)
            .filter(|a| (MIN_AMOUNT..=MAX_AMOUNT).contains(a))
            .ok_or_else(|| bad("`amount` must be an integer number of minor units from 1 to 100000000"))?;
        let currency = obj
            .get("currency")
            .and_then(serde_json::Value::as_str)
            .filter(|c| c.len() == 3 && c.bytes().all(|b| b.is_ascii_lowercase()))
            .ok_or_else(|| bad("`currency` must be a lower-case ISO 4217 code such as \"usd\" or \"eur\""))?;
        if let Some(min) = min_charge(currency).filter(|min| amount < *min) {
            return Err(bad(&format!(
                "`amount` is below Stripe's minimum charge for {currency}: at least {min} minor units"
            )));
        }
        Ok(Price { amount, currency: currency.to_string() })
    }
}

/// The payment of a booking of a priced event, from its seat hold to its refund.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    /// The event's price when the booking was made.
    pub amount: u64,
    pub currency: String,
    /// End of the seat hold and of the Checkout Session.
    #[serde(with = "serde_ts")]
    pub expires_at: Timestamp,
    #[serde(default)]
    pub checkout_session_id: Option<String>,
    #[serde(default)]
    pub checkout_url: Option<String>,
    /// Set when the payment succeeds; what a refund refers to.
    #[serde(default)]
    pub payment_intent: Option<String>,
    /// The Stripe event (or `sweep`) that moved the booking out of `pending_payment`.
    #[serde(default)]
    pub settled_by: Option<String>,
    /// `requested` from the cancel until Stripe answers, then Stripe's refund status
    /// (`pending`, `succeeded`, `failed`, `requires_action`, `canceled`).
    #[serde(default)]
    pub refund_status: Option<String>,
    #[serde(default)]
    pub refund_id: Option<String>,
}

impl Payment {
    pub fn hold(price: &Price, now: Timestamp) -> Payment {
        Payment {
            amount: price.amount,
            currency: price.currency.clone(),
            expires_at: now + chrono::Duration::minutes(HOLD_MINUTES),
            checkout_session_id: None,
            checkout_url: None,
            payment_intent: None,
            settled_by: None,
            refund_status: None,
            refund_id: None,
        }
    }

    /// A waitlist offer's payment: held [`OFFER_HOURS`] (Stripe's longest Checkout Session) or
    /// until the event starts, whichever is sooner → `None` when that leaves under
    /// [`OFFER_MIN_MINUTES`] (no session could be opened: nobody is promoted).
    pub fn offer(price: &Price, start: Timestamp, now: Timestamp) -> Option<Payment> {
        let expires_at = offer_expiry(start, now)?;
        Some(Payment { expires_at, ..Payment::hold(price, now) })
    }

    /// Whether `session` is the Checkout Session this service created for this payment, for the
    /// same amount and currency.
    pub fn is_paid_by(&self, session: &crate::store::SessionRef) -> bool {
        self.checkout_session_id.as_deref() == Some(session.id.as_str())
            && session.amount_total == Some(self.amount)
            && session.currency.as_deref() == Some(self.currency.as_str())
    }

    pub fn view(&self) -> PaymentView<'_> {
        PaymentView {
            checkout_url: self.checkout_url.as_deref(),
            expires_at: Rfc3339(&self.expires_at),
            amount: self.amount,
            currency: &self.currency,
            refund_status: self.refund_status.as_deref(),
            settled_by: self.settled_by.as_deref(),
        }
    }
}

/// The booking's `payment` object in the API.
#[derive(Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema), schema(as = Payment))]
/// The payment of a booking of a priced event.
pub struct PaymentView<'a> {
    /// Stripe Checkout page where the attendee pays; open until `expires_at`. Null only if the
    /// session could not be recorded, and always null in the event owner's attendee list.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = "uri"))]
    pub checkout_url: Option<&'a str>,
    /// End of the seat hold and of the Checkout Session: 31 minutes after booking (RFC 3339 UTC).
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub expires_at: Rfc3339<'a>,
    /// The event's price when the booking was made, in minor units.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000000))]
    pub amount: u64,
    #[cfg_attr(feature = "openapi", schema(pattern = "^[a-z]{3}$"))]
    pub currency: &'a str,
    /// Null until a paid booking is cancelled; then `requested` until Stripe answers the refund
    /// request, then Stripe's refund status (`pending`, `succeeded`, `failed`,
    /// `requires_action`, `canceled`).
    pub refund_status: Option<&'a str>,
    /// What moved the booking out of `pending_payment`: the Stripe event id (`evt_…`) or
    /// `sweep`; null while pending or when cancelled before settling.
    pub settled_by: Option<&'a str>,
}

/// Work the payment sweep owes a booking, in the due-payments index until done: a seat hold to
/// settle once it has expired (a lost webhook), or a refund Stripe has not acknowledged yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentTask {
    pub booking_id: String,
    pub kind: PaymentTaskKind,
    #[serde(with = "serde_ts")]
    pub due_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentTaskKind {
    Hold,
    Refund,
    /// A waitlist offer (a priced event's seat handed to the first in line) whose Checkout Session
    /// is still to be opened, due at once: opening it (after the promotion committed) turns this
    /// task into the offer's `Hold` (due at `expires_at`) and writes its `booking.offered`
    /// message. Retried by the payment sweep while Stripe is down; the seat stays held.
    Offer,
    /// A hold cancelled with its event: its Checkout Session must be expired at Stripe (and
    /// refunded, if it was paid meanwhile). Written by the cancel; the payment sweep calls
    /// Stripe, so the fan-out never does.
    ExpireCheckout,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn prices_are_checked_as_the_contract_says() {
        assert_eq!(Price::validate(&json!({"amount": 1500, "currency": "eur"})).unwrap().amount, 1500);
        assert_eq!(Price::validate(&json!({"amount": 100_000_000, "currency": "usd"})).unwrap().amount, MAX_AMOUNT);
        // Stripe's minimum charge: 50 cents, 30 pence, 50 yen; unlisted currencies from 1.
        assert_eq!(Price::validate(&json!({"amount": 50, "currency": "usd"})).unwrap().amount, 50);
        assert_eq!(Price::validate(&json!({"amount": 30, "currency": "gbp"})).unwrap().amount, 30);
        assert_eq!(Price::validate(&json!({"amount": 1, "currency": "xof"})).unwrap().amount, 1);
        for bad in [
            json!({"amount": 0, "currency": "usd"}),
            json!({"amount": 49, "currency": "usd"}),
            json!({"amount": 49, "currency": "eur"}),
            json!({"amount": 29, "currency": "gbp"}),
            json!({"amount": 999, "currency": "mxn"}),
            json!({"amount": 17_499, "currency": "huf"}),
            json!({"amount": 100_000_001, "currency": "usd"}),
            json!({"amount": 10.5, "currency": "usd"}),
            json!({"amount": -5, "currency": "usd"}),
            json!({"amount": "100", "currency": "usd"}),
            json!({"amount": 100, "currency": "USD"}),
            json!({"amount": 100, "currency": "us"}),
            json!({"amount": 100}),
            json!({"amount": 100, "currency": "usd", "tax": 1}),
            json!(100),
        ] {
            let e = Price::validate(&bad).unwrap_err();
            assert_eq!(e.code(), "validation_failed", "{bad}");
        }
    }
}
