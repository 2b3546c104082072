//! The HTML of the local checkout: tiny pages with no script and no external asset. Every piece
//! of text that is not a literal here goes through [`escape`] (an event's title is user input).

use serde_json::Value;

/// Text and attribute values made inert: the five characters HTML gives a meaning to.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Currencies Stripe counts in whole units (no minor unit), and those with three decimals.
/// <https://docs.stripe.com/currencies#zero-decimal>, <https://docs.stripe.com/currencies#three-decimal>
const ZERO_DECIMAL: &[&str] =
    &["bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf"];
const THREE_DECIMAL: &[&str] = &["bhd", "jod", "kwd", "omr", "tnd"];

/// `1500`, `eur` → `15.00 EUR`; `500`, `jpy` → `500 JPY`.
pub fn amount(minor: u64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    let decimals = if ZERO_DECIMAL.contains(&currency) {
        0
    } else if THREE_DECIMAL.contains(&currency) {
        3
    } else {
        2
    };
    if decimals == 0 {
        return format!("{minor} {code}");
    }
    let unit = 10u64.pow(decimals);
    format!("{}.{:0width$} {code}", minor / unit, minor % unit, width = decimals as usize)
}

/// The session's amount as the page shows it.
pub fn session_amount(session: &Value) -> String {
    amount(session["amount_total"].as_u64().unwrap_or(0), session["currency"].as_str().unwrap_or(""))
}

/// A whole page: `body` is already escaped HTML.
pub fn layout(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title}</title>\
         <style>body{{font:16px/1.5 system-ui,sans-serif;max-width:28rem;margin:3rem auto;padding:0 1rem;color:#222}}\
         .note{{background:#fff6d6;border:1px solid #e6d38a;padding:.5rem .75rem;font-size:.9rem}}\
         .amount{{font-size:2rem;font-weight:600;margin:.5rem 0 1.5rem}}\
         button,.button{{font:inherit;padding:.6rem 1.4rem;border-radius:6px;border:1px solid #888;\
         background:#fff;color:#222;text-decoration:none;cursor:pointer;display:inline-block}}\
         #pay{{background:#635bff;border-color:#635bff;color:#fff}}form{{display:inline}}\
         code{{font-size:.85rem}}</style></head><body>\n<p class=\"note\">Local checkout: a stand-in for \
         Stripe Checkout that applies Stripe's rules and moves no money.</p>\n{body}\n</body></html>\n",
        title = escape(title),
    )
}

/// The checkout page of an open session: product name, amount, Pay (a POST carrying the CSRF
/// token) and Cancel (back to `cancel_url`, as Stripe's page does).
pub fn checkout(session: &Value, product: &str, csrf: &str) -> String {
    let id = session["id"].as_str().unwrap_or_default();
    let price = session_amount(session);
    let cancel = match session["cancel_url"].as_str() {
        Some(url) => format!("<a id=\"cancel\" class=\"button\" role=\"button\" href=\"{}\">Cancel</a>", escape(url)),
        None => String::new(),
    };
    let body = format!(
        "<h1 id=\"title\">{product}</h1>\n<p id=\"amount\" class=\"amount\">{price}</p>\n\
         <form method=\"post\" action=\"/checkout/{id}/pay\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
         <button id=\"pay\" type=\"submit\">Pay {price}</button></form>\n{cancel}\n\
         <p><small>Session <code>{id}</code>, open until {expires} (then the seat is released).</small></p>",
        product = escape(product),
        price = escape(&price),
        id = escape(id),
        csrf = escape(csrf),
        expires = escape(&expires_at(session)),
    );
    layout(&format!("Pay {price}"), &body)
}

/// A session that no longer takes payment (paid, expired, or past its `expires_at`).
pub fn closed(session: &Value, product: &str) -> String {
    let status = match session["status"].as_str() {
        Some("complete") => "already paid",
        Some("expired") => "expired: nothing was charged",
        _ => "past its expiry: nothing can be charged",
    };
    let body =
        format!("<h1 id=\"title\">{}</h1>\n<p id=\"status\">This checkout session is {status}.</p>", escape(product));
    layout("Checkout closed", &body)
}

pub fn not_found() -> String {
    layout("Not found", "<h1>No such checkout session</h1>")
}

/// Where `success_url` leads when not changed: the session's booking, what the webhook got as
/// an answer, and how to see the booking.
pub fn success(session: Option<&Value>, webhook: Option<&str>) -> String {
    let body = match session {
        Some(s) if s["payment_status"] == "paid" => {
            let booking = s["metadata"]["booking_id"].as_str().unwrap_or("");
            format!(
                "<h1 id=\"result\">Payment received</h1>\n<p>{amount} paid for booking <code id=\"booking\">{booking}</code>.</p>\n\
                 <p>The signed <code>checkout.session.completed</code> webhook to <code>/payments/webhook</code>: \
                 <span id=\"webhook\">{webhook}</span>.</p>\n<p><code>GET /bookings/{booking}</code> shows its status.</p>",
                amount = escape(&session_amount(s)),
                booking = escape(booking),
                webhook = escape(webhook.unwrap_or("not sent by this page")),
            )
        }
        _ => "<h1 id=\"result\">No payment</h1>\n<p>This checkout session is not paid.</p>".to_string(),
    };
    layout("Payment received", &body)
}

/// Where `cancel_url` leads when not changed: what became of the seat.
pub fn cancelled() -> String {
    layout(
        "Payment cancelled",
        "<h1 id=\"result\">Payment cancelled</h1>\n<p>Nothing was charged. As on Stripe, the checkout \
         session stays open until its <code>expires_at</code>: the booking stays \
         <code>pending_payment</code> and its seat held until then, and the checkout_url still works. \
         <code>DELETE /bookings/{id}</code> cancels it and releases the seat at once.</p>",
    )
}

fn expires_at(session: &Value) -> String {
    session["expires_at"]
        .as_i64()
        .and_then(|t| chrono::DateTime::from_timestamp(t, 0))
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape(r#"<b>"Gong" & 'bowl'</b>"#), "&lt;b&gt;&quot;Gong&quot; &amp; &#39;bowl&#39;&lt;/b&gt;");
    }

    #[test]
    fn amounts_in_the_currency_s_units() {
        assert_eq!(amount(1500, "eur"), "15.00 EUR");
        assert_eq!(amount(5, "usd"), "0.05 USD");
        assert_eq!(amount(500, "jpy"), "500 JPY");
        assert_eq!(amount(1234, "kwd"), "1.234 KWD");
    }

    #[test]
    fn the_title_is_text_not_markup() {
        let session = serde_json::json!({"id": "cs_1", "amount_total": 1500, "currency": "eur",
            "cancel_url": "http://127.0.0.1:1/payments/cancel?a=1&b=2", "expires_at": 0});
        let html = checkout(&session, "<script>alert(1)</script>", "tok");
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("href=\"http://127.0.0.1:1/payments/cancel?a=1&amp;b=2\""));
    }
}
