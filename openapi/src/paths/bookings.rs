//! `bookings` function: book, list and cancel seats, a booking's calendar file; an event's
//! attendee list.

use crate::errors::*;
use crate::params::{History, IdempotencyKey, Page};
use crate::schemas::{BookingHistory, EventBooking};
use bookings::handler::BookingInput;
use shared::model::BookingView;
use shared::openapi::Id;

#[utoipa::path(
    get, path = "/events/{id}/bookings", operation_id = "listEventBookings", tag = "bookings", summary = "An event's bookings",
    description = "For the event's owner or an admin: its bookings (confirmed and cancelled), oldest first (ties by id), paged with `limit` / `cursor` and a `Link` header like every list, with the attendee's name and email and the CRM webhook delivery state.",
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Event id."), Page),
    responses(
        (status = 200, description = "The event's bookings.", body = Vec<EventBooking>, headers(("Link" = String, description = "Present when more bookings remain: `<{request path}?{other query parameters, sorted}&cursor=…>; rel=\"next\"`.")), example = crate::examples::event_bookings),
        (status = 400, description = "Bad `limit` or `cursor`, or a query parameter this route does not define (`field` names it).", body = inline(BadParam)),
        (status = 403, description = "The caller neither owns the event nor is an admin.", body = inline(Forbidden)),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
    )
)]
pub fn list_event_bookings() {}

#[utoipa::path(
    get, path = "/bookings/", operation_id = "listBookings", tag = "bookings", summary = "The caller's booking history",
    description = "The caller's bookings with the given status (at most the 100 most recently made), split by whether the event has started, and (default `status` only) the waitlists the caller is on, with their places in line. Each carries the event's current details. `confirmed` (the default) lists the bookings that hold a seat: confirmed ones and `pending_payment` holds (a waitlist offer among them, until paid or expired).",
    security(("bearerAuth" = [])),
    params(History),
    responses(
        (status = 200, description = "Upcoming and past bookings.", body = BookingHistory, example = crate::examples::history),
        (status = 400, description = "Bad `status`, or a query parameter this route does not define (`field` names it).", body = inline(BadParam)),
    )
)]
pub fn list_bookings() {}

#[utoipa::path(
    post, path = "/bookings/", operation_id = "createBooking", tag = "bookings", summary = "Book a seat",
    description = "One atomic write: the event exists, has not started, has a free seat, and the caller holds no booking for it that holds a seat. Seats taken never exceed capacity. A free event's booking is `confirmed` at once and the facilitator's CRM is notified asynchronously (the request never waits for it). A priced event's booking is `pending_payment`: the seat is held (it counts against capacity and against the caller's one booking per event) until `payment.expires_at`, 31 minutes later (exactly the Checkout Session's `expires_at`), and `payment.checkout_url` is the Stripe Checkout page to pay on. It becomes `confirmed` when Stripe reports the payment (the CRM is notified then), or `expired` with its seat released when the hold ends unpaid. If Stripe cannot be reached or refuses, the hold is undone and the answer is 502 `payment_provider_unavailable`: nothing stays held.",
    security(("bearerAuth" = [])),
    params(IdempotencyKey),
    request_body(content = BookingInput, example = json!({"event_id": "01J8Z4A1B2C3D4E5F6G7H8J9K0"})),
    responses(
        (status = 201, description = "Booked: `confirmed` (free event) or `pending_payment` (priced event). With `Idempotent-Replayed: true`, a replay (see `Idempotency-Key`).", body = BookingView<'static>, headers(
                ("Location" = String, description = "Path of the created resource."),
                ("Idempotent-Replayed" = String, description = "`true` when this is the stored first response for the `Idempotency-Key`, not a new booking."),
            ),
            examples(
                ("free" = (summary = "Free event: confirmed", value = json!(crate::examples::booking()))),
                ("paid" = (summary = "Priced event: seat held, pay at checkout_url", value = json!(crate::examples::paid_booking()))),
            )),
        (status = 400, description = "`invalid_json`: body empty, not JSON, trailing characters or a field of the wrong type; `unknown_field` (with `field`): a property the body does not define; `validation_failed` (with `field`): `event_id` missing or not 1-64 characters, or a bad `Idempotency-Key` header.", body = inline(BadBody)),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
        (status = 409, description = "The first that applies of: `idempotency_key_reused`: the key was used with a different `event_id`; `already_booked`: the caller already holds a booking for it (confirmed or `pending_payment`); `already_waiting`: the caller is on its waitlist (leave it first, or wait: a freed seat goes to the first in line); `event_cancelled`: the event is cancelled; `event_started`: the event has started; `event_full`: no seat left, or a seat is free but users wait for it (it is theirs: join the waitlist).", body = inline(BookingConflict)),
        (status = 502, description = "Priced event only: Stripe could not be reached or refused to create the Checkout Session. The seat hold was undone; nothing was booked. Retry later (the same `Idempotency-Key` may be reused).", body = inline(PaymentProviderUnavailable)),
    )
)]
pub fn create_booking() {}

#[utoipa::path(
    get, path = "/bookings/{id}", operation_id = "getBooking", tag = "bookings", summary = "One booking",
    description = "The caller's own booking (an admin: any booking).",
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Booking id.")),
    responses(
        (status = 200, description = "The booking.", body = BookingView<'static>, example = crate::examples::booking),
        (status = 404, description = "No such booking, or it belongs to another user (its existence is not revealed).", body = inline(NotFound)),
    )
)]
pub fn get_booking() {}

#[utoipa::path(
    delete, path = "/bookings/{id}", operation_id = "cancelBooking", tag = "bookings", summary = "Cancel a booking",
    description = "The booker or an admin, before the event starts. Frees the seat exactly once. A `pending_payment` booking is cancelled and its Checkout Session expired at Stripe, so it can no longer be paid (a payment that lands anyway is refunded). A paid `confirmed` booking is cancelled and a full refund is requested from Stripe (once per booking, whatever the retries): `payment.refund_status` is Stripe's answer, or `requested` while Stripe has not answered (the payment sweep asks again until it does). An `expired` booking answers 409 `already_cancelled`.",
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Booking id.")),
    responses(
        (status = 200, description = "The booking, now `cancelled`.", body = BookingView<'static>,
            examples(
                ("free" = (summary = "Free booking", value = json!(crate::examples::cancelled_booking()))),
                ("paid" = (summary = "Paid booking: refund requested", value = json!(crate::examples::cancelled_paid_booking()))),
            )),
        (status = 404, description = "No such booking, or it belongs to another user.", body = inline(NotFound)),
        (status = 409, description = "`already_cancelled`: cancelled before, or `expired` (the hold ended unpaid); `event_started`: the event has started.", body = inline(CancelConflict)),
    )
)]
pub fn cancel_booking() {}

#[utoipa::path(
    get, path = "/bookings/{id}/calendar.ics", operation_id = "getBookingCalendar", tag = "bookings", summary = "A booking as a calendar file",
    description = "The booker's (an admin: any) booking as an RFC 5545 iCalendar file for calendar apps: a VCALENDAR (`PRODID`, `VERSION:2.0`, `METHOD:PUBLISH`) holding one VEVENT. `UID` is `{booking id}@ahoum` for every version of the file, so an app replaces its copy; `SEQUENCE` is the booking's, raised by each reschedule and by the cancellation; `DTSTART`/`DTEND` are UTC (`YYYYMMDDTHHMMSSZ`), the event's start and start plus its duration as the booking shows them; `SUMMARY` and `DESCRIPTION` are the event's title and description (the title the booking remembers once the event is deleted; no `DESCRIPTION` when there is none); `STATUS` is `CONFIRMED`, `TENTATIVE` while the payment is pending, or `CANCELLED` (cancelled, or a hold that ended unpaid). Lines end with CRLF and are folded at 75 octets (never inside a UTF-8 character); text is escaped as RFC 5545 section 3.3.11 says. The one success body of this API that is not JSON; its errors are JSON like every other.",
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Booking id.")),
    responses(
        (status = 200, description = "The calendar file (`Content-Type: text/calendar; charset=utf-8`).", content_type = "text/calendar", body = String, example = crate::examples::calendar),
        (status = 404, description = "No such booking, or it belongs to another user (its existence is not revealed).", body = inline(NotFound)),
    )
)]
pub fn get_booking_calendar() {}
