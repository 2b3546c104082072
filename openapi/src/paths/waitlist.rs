//! `events` function: an event's waitlist (`/events/{id}/waitlist`).

use crate::errors::*;
use crate::params::Page;
use crate::schemas::{WaitlistJoin, WaitlistLeft};
use shared::model::{JoinedView, WaitEntryView};
use shared::openapi::Id;

/// How a freed seat reaches the line: said once, on the join.
const PROMOTION: &str = "The caller joins the end of a full event's waitlist; `position` 1 is next in line. The line is ordered by `joined_at`, ties by user id. Whenever a seat frees (an attendee's or an admin's cancel, a hold that expires or fails at Stripe, a capacity increase), the first in line gets it in the same atomic write that frees it, and leaves the line: for a free event a `confirmed` booking (the CRM receives `booking.confirmed` with `\"via\": \"waitlist\"`); for a priced event a `pending_payment` offer held for 24 hours or until the event starts, whichever is sooner, with a Stripe Checkout Session (the CRM receives `booking.offered` with `checkout_url`, `expires_at`, `amount`, `currency`, so it can ask the attendee to pay); an offer that ends unpaid sends `booking.expired` and goes to the next in line. Nobody is promoted into a paid hold that would last under 31 minutes (the event starts too soon): that seat stays free for direct booking. The promoted booking shows in `GET /bookings/`; the waitlist entry, in `waiting` there until then. No body, or an empty object.";

#[utoipa::path(
    post, path = "/events/{id}/waitlist", operation_id = "joinWaitlist", tag = "waitlist", summary = "Join an event's waitlist",
    description = PROMOTION,
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Event id.")),
    request_body(content = WaitlistJoin, description = "Optional.", example = json!({})),
    responses(
        (status = 201, description = "On the waitlist.", body = JoinedView<'static>, example = crate::examples::waitlist_joined),
        (status = 400, description = "`invalid_json`: a body that is not JSON or not an object; `unknown_field` (with `field`): any property.", body = inline(BadBody)),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
        (status = 409, description = "The first that applies of: `event_cancelled`: the event is cancelled; `event_started`: it has started; `seats_available`: a seat is free (or capacity is unlimited): book it with `POST /bookings/` instead; `already_booked`: the caller holds a booking for it (confirmed or `pending_payment`); `already_waiting`: the caller is on its waitlist already.", body = inline(WaitlistConflict)),
    )
)]
pub fn join_waitlist() {}

#[utoipa::path(
    delete, path = "/events/{id}/waitlist", operation_id = "leaveWaitlist", tag = "waitlist", summary = "Leave an event's waitlist",
    description = "The caller's entry goes; everyone behind moves up one place.",
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Event id.")),
    responses(
        (status = 200, description = "Left.", body = WaitlistLeft, example = json!({"msg": "Left the waitlist"})),
        (status = 404, description = "The caller is not on this event's waitlist (never joined, left already, or promoted: the seat is theirs, see `GET /bookings/`), or no event with this id.", body = inline(NotFound)),
    )
)]
pub fn leave_waitlist() {}

#[utoipa::path(
    get, path = "/events/{id}/waitlist", operation_id = "listWaitlist", tag = "waitlist", summary = "An event's waitlist",
    description = "For the event's owner or an admin (as its attendee list): the line in order (`position` 1 is next), with each waiting user's name and email, paged with `limit` / `cursor` and a `Link` header like every list. Positions are as of the request: the line moves as users are promoted or leave.",
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Event id."), Page),
    responses(
        (status = 200, description = "The event's waitlist, in line order.", body = Vec<WaitEntryView<'static>>, headers(("Link" = String, description = "Present when more entries remain: `<{request path}?{other query parameters, sorted}&cursor=…>; rel=\"next\"`.")), example = crate::examples::waitlist),
        (status = 400, description = "Bad `limit` or `cursor`, or a query parameter this route does not define (`field` names it).", body = inline(BadParam)),
        (status = 403, description = "The caller neither owns the event nor is an admin.", body = inline(Forbidden)),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
    )
)]
pub fn list_waitlist() {}
