//! The operators' alarm for a refund Stripe will not complete is one ERROR line whose JSON (as
//! Lambda writes it with `AWS_LAMBDA_LOG_FORMAT=JSON`: tracing-subscriber's JSON formatter) has
//! `fields.alarm = "refund_failed"`: what the CloudWatch metric filter
//! `{ $.fields.alarm = "refund_failed" }` matches. Logged when a refund is answered `failed` and
//! when `refund.failed` arrives; never for a refund that succeeds.

mod payments_harness;

use payments_harness::*;
use serde_json::Value;
use std::io::Write;
use std::sync::{Arc, Mutex};
use tests::stripe_stub::RefundOutcome;
use tests::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn alarms(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().unwrap().clone()).unwrap();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|l| l["fields"]["alarm"] == "refund_failed")
            .collect()
    }
}

// One thread: the subscriber set for this test sees every event its futures emit.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_refund_logs_the_alarm_line_the_metric_filter_matches() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt().json().with_writer(move || writer.clone()).finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let p = Paid::new(memory_store()).await;
    let ev = p.event(Some(5)).await;
    let cancel_paid = |p: &Paid<_>| {
        let app = p.app.clone();
        move |booking: Value, token: String| async move {
            call(&app, request("DELETE", &format!("/bookings/{}", id(&booking)), Some(&token), None)).await
        }
    };
    // A refund that goes well: no alarm.
    let (booking, token, session) = p.hold(&ev).await;
    let paid = p.stub.pay(&session);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");
    cancel_paid(&p)(booking.clone(), token).await;
    let refund_id = p.booking(&id(&booking)).await.payment.unwrap().refund_id.unwrap();
    let ok = p.stub.settle_refund(&refund_id, "succeeded");
    assert_eq!(p.effect(&stripe_event(&evt(), "refund.updated", &ok)).await, "refund_updated");
    assert!(captured.alarms().is_empty(), "{:?}", captured.alarms());

    // Answered `failed` at once: one alarm line.
    p.stub.refund_outcome(RefundOutcome::Failed);
    let (failed_now, token, session) = p.hold(&ev).await;
    let paid = p.stub.pay(&session);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");
    let resp = cancel_paid(&p)(failed_now.clone(), token).await;
    assert_eq!(json(&resp)["payment"]["refund_status"], "failed");
    let alarms = captured.alarms();
    assert_eq!(alarms.len(), 1, "{alarms:?}");
    assert_eq!(alarms[0]["level"], "ERROR");
    assert_eq!(alarms[0]["fields"]["booking_id"], id(&failed_now).as_str());
    assert_eq!(alarms[0]["fields"]["refund_status"], "failed");

    // `pending`, then `refund.failed`: the second alarm line.
    p.stub.refund_outcome(RefundOutcome::Pending);
    let (failed_later, token, session) = p.hold(&ev).await;
    let paid = p.stub.pay(&session);
    assert_eq!(p.effect(&stripe_event(&evt(), "checkout.session.completed", &paid)).await, "confirmed");
    cancel_paid(&p)(failed_later.clone(), token).await;
    let refund_id = p.booking(&id(&failed_later)).await.payment.unwrap().refund_id.unwrap();
    let failed = p.stub.settle_refund(&refund_id, "failed");
    assert_eq!(p.effect(&stripe_event(&evt(), "refund.failed", &failed)).await, "refund_updated");
    let alarms = captured.alarms();
    assert_eq!(alarms.len(), 2, "{alarms:?}");
    assert_eq!(alarms[1]["fields"]["booking_id"], id(&failed_later).as_str());
}
