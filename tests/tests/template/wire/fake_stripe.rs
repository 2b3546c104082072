use std::collections::BTreeMap;

/// Stripe as the code sees it ([`shared::payments::PaymentProvider`]), in memory: enough to drive
/// every path of the bookings, payments and sweeper functions that touches the table. What goes
/// over the wire to Stripe is `tests/tests/payments.rs`'s business.
#[derive(Default)]
pub struct FakeStripe {
    sessions: std::sync::Mutex<BTreeMap<String, serde_json::Value>>,
    pub fail_creates: std::sync::atomic::AtomicUsize,
    pub fail_refunds: std::sync::atomic::AtomicUsize,
}

type StripeFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = shared::Result<T>> + Send + 'a>>;

impl FakeStripe {
    fn fail(counter: &std::sync::atomic::AtomicUsize) -> bool {
        use std::sync::atomic::Ordering;
        counter.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok()
    }

    fn session(&self, id: &str) -> shared::Result<shared::payments::CheckoutSession> {
        let json = self.sessions.lock().unwrap().get(id).cloned();
        let json = json.ok_or_else(|| shared::Error::PaymentProviderUnavailable(format!("no session {id}")))?;
        Ok(serde_json::from_value(json).expect("a Checkout Session"))
    }

    /// The booking's session as the payer leaves it: complete and paid.
    pub fn pay(&self, booking_id: &str) -> serde_json::Value {
        self.update(booking_id, |s| {
            s["status"] = "complete".into();
            s["payment_status"] = "paid".into();
            s["payment_intent"] = format!("pi_{booking_id}").into();
        })
    }

    /// The booking's session as Stripe ends it unpaid.
    pub fn expire(&self, booking_id: &str) -> serde_json::Value {
        self.update(booking_id, |s| s["status"] = "expired".into())
    }

    fn update(&self, booking_id: &str, change: impl FnOnce(&mut serde_json::Value)) -> serde_json::Value {
        let mut sessions = self.sessions.lock().unwrap();
        let s = sessions.get_mut(&format!("cs_{booking_id}")).expect("a session for the booking");
        change(s);
        s.clone()
    }
}

impl shared::payments::PaymentProvider for FakeStripe {
    fn create_checkout<'a>(
        &'a self,
        req: &'a shared::payments::CheckoutRequest<'a>,
    ) -> StripeFuture<'a, shared::payments::CheckoutSession> {
        Box::pin(async move {
            if Self::fail(&self.fail_creates) {
                return Err(shared::Error::PaymentProviderUnavailable("Stripe answered 500".into()));
            }
            let id = format!("cs_{}", req.booking_id);
            let session = serde_json::json!({
                "id": id, "object": "checkout.session", "url": format!("https://checkout.stripe.com/c/pay/{id}"),
                "status": "open", "payment_status": "unpaid", "payment_intent": null,
                "client_reference_id": req.booking_id, "metadata": {"booking_id": req.booking_id},
                "amount_total": req.amount, "currency": req.currency,
            });
            self.sessions.lock().unwrap().insert(id.clone(), session);
            self.session(&id)
        })
    }

    fn retrieve_checkout<'a>(&'a self, session_id: &'a str) -> StripeFuture<'a, shared::payments::CheckoutSession> {
        Box::pin(async move { self.session(session_id) })
    }

    fn expire_checkout<'a>(&'a self, session_id: &'a str) -> StripeFuture<'a, shared::payments::CheckoutSession> {
        Box::pin(async move {
            if let Some(s) = self.sessions.lock().unwrap().get_mut(session_id).filter(|s| s["status"] == "open") {
                s["status"] = "expired".into();
            }
            self.session(session_id)
        })
    }

    fn refund<'a>(
        &'a self,
        payment_intent: &'a str,
        booking_id: &'a str,
    ) -> StripeFuture<'a, shared::payments::Refund> {
        Box::pin(async move {
            if Self::fail(&self.fail_refunds) {
                return Err(shared::Error::PaymentProviderUnavailable("Stripe answered 500".into()));
            }
            assert_eq!(payment_intent, format!("pi_{booking_id}"), "refund of the booking's own payment");
            Ok(shared::payments::Refund { id: format!("re_{booking_id}"), status: "succeeded".into() })
        })
    }
}
