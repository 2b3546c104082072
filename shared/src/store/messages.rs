//! Which CRM message records a booking can have, by its status and history: the keys the
//! attendee list reads for it ([`super::Store::get_messages`]) without a Query per booking.

use crate::model::{Booking, BookingStatus, MessageKind};

/// Reschedules of one booking whose messages the attendee list shows (the latest ones): bounds
/// the keys read per booking.
pub const MAX_RESCHEDULES_LISTED: u32 = 10;

/// The messages `b` can have, as (kind, seq), in send order: a waitlist offer's
/// `booking.offered` (a priced promotion: from the moment it holds the seat, though its record
/// exists only once its session opened), and its `booking.expired` if it ended unpaid; nothing
/// else while it never was confirmed (`pending_payment`, `expired`); its confirmation; a
/// reschedule per `sequence` it reached (the last [`MAX_RESCHEDULES_LISTED`]); its cancellation
/// once cancelled. A cancelled hold lists keys that do not exist (reads of missing keys find
/// nothing).
pub fn possible_messages(b: &Booking) -> Vec<(MessageKind, u32)> {
    let offer = b.via_waitlist && b.payment.is_some();
    let mut out = Vec::new();
    if offer {
        out.push((MessageKind::Offered, 0));
    }
    match b.status {
        BookingStatus::PendingPayment => return out,
        BookingStatus::Expired => {
            if offer {
                out.push((MessageKind::Expired, b.sequence));
            }
            return out;
        }
        BookingStatus::Confirmed | BookingStatus::Cancelled => {}
    }
    out.push((MessageKind::Confirmed, 0));
    let first = b.sequence.saturating_sub(MAX_RESCHEDULES_LISTED - 1).max(1);
    out.extend((first..=b.sequence).map(|seq| (MessageKind::Rescheduled, seq)));
    if b.status == BookingStatus::Cancelled {
        out.push((MessageKind::Cancelled, b.sequence));
    }
    out
}
