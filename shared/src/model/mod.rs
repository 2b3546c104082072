//! Domain types, their API views and the validation of client input. Nothing here knows about
//! DynamoDB or HTTP; the stores persist these types with serde and the handlers render `view()`s.

mod booking;
mod delivery;
mod event;
mod event_input;
mod job;
mod payment;
mod session;
mod throttle;
mod user;
mod waitlist;

pub use booking::{Booking, BookingStatus, BookingView, CancelReason, IdempotencyRecord, IDEMPOTENCY_TTL_SECS};
pub use delivery::{Delivery, DeliveryStatus, FailureKind, MessageKind, MessageView};
pub use event::{
    booking_cutoff, cancel_cutoff, fold_type, rating, rating_text, Event, EventSnapshot, EventSnapshotView,
    EventStatus, EventView, RATING_RULE,
};
pub use event_input::{present, required, EventInput, EventPatch};
pub use job::{Job, JobKind, JOB_LEASE_SECS, RESCHEDULE_SETTLE_SECS};
pub use payment::{
    is_final_refund_status, min_charge, offer_expiry, Payment, PaymentTask, PaymentTaskKind, PaymentView, Price,
    FINAL_REFUND_STATUSES, HOLD_MINUTES, MINIMUM_CHARGE, OFFER_HOURS, OFFER_MIN_MINUTES, REFUND_REQUESTED,
};
pub use session::{Presented, RefreshToken, Session, REFRESH_TTL_DAYS};
pub use throttle::LoginThrottle;
pub use user::{normalize_email, validate_name, validate_password, Role, User};
pub use waitlist::{JoinedView, WaitEntry, WaitEntryView, Waiting, WaitingView};

pub fn new_id() -> String {
    ulid::Ulid::new().to_string()
}
