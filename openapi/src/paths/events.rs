//! `events` function: browse, filter and manage events.

use crate::errors::*;
use crate::params::{Filter, Page, Window};
use crate::schemas::{Deleted, EventCancel, EventCreate};
use shared::model::{EventInput, EventView};
use shared::openapi::Id;

#[utoipa::path(
    get, path = "/events/", operation_id = "listEvents", tag = "events", summary = "List events",
    description = "All events ascending by `datetime` (ties by id), paged with `limit`/`cursor` and the `Link` header. Public.",
    params(Page, Window),
    responses(
        (status = 200, description = "A page of events.", body = Vec<EventView<'static>>, headers(("Link" = String, description = "Present when more items remain: `<{request path}?{other query parameters, sorted}&cursor=…>; rel=\"next\"`. Following the links visits every item once, in order. With `rating` a page may hold fewer than `limit` items (even none) and still have a next link; stop when there is no `Link` header.")), example = crate::examples::events),
        (status = 400, description = "Bad `limit`, `cursor`, `from` or `to`, or a query parameter this route does not define (`field` names it).", body = inline(BadParam)),
    )
)]
pub fn list_events() {}

#[utoipa::path(
    post, path = "/events/", operation_id = "createEvent", tag = "events", summary = "Create an event",
    description = "Role facilitator or admin. The caller becomes `owner_id`.",
    security(("bearerAuth" = [])),
    request_body(content = EventCreate, example = crate::examples::event_input),
    responses(
        (status = 201, description = "Event created.", body = EventView<'static>, headers(("Location" = String, description = "Path of the created resource.")), example = crate::examples::event),
        (status = 400, description = "`invalid_json`: body empty, not JSON, trailing characters or a field of the wrong type; `unknown_field` (with `field`): a property the body does not define; `validation_failed` (with `field`): a required field (`title`, `datetime`, `type`) missing, a bound broken, a non-nullable field null, or a read-only field (`id`, `seats_booked`, `seats_left`, `owner_id`, `created_at`, `updated_at`) sent; `validation_failed` (field `price`): a bad price, or any price while this deployment has no Stripe configuration.", body = inline(BadBody)),
        (status = 403, description = "The caller is an attendee.", body = inline(Forbidden)),
    )
)]
pub fn create_event() {}

#[utoipa::path(
    get, path = "/events/filter", operation_id = "filterEvents", tag = "events", summary = "Events by type and minimum rating",
    description = "Same ordering and paging as `GET /events/`; served by an index query. Either filter may be left out (an empty value counts as absent). Events without a rating never match `rating`. Public.",
    params(Filter, Page, Window),
    responses(
        (status = 200, description = "A page of matching events.", body = Vec<EventView<'static>>, headers(("Link" = String, description = "Present when more items remain: `<{request path}?{other query parameters, sorted}&cursor=…>; rel=\"next\"`. Following the links visits every item once, in order. With `rating` a page may hold fewer than `limit` items (even none) and still have a next link; stop when there is no `Link` header.")), example = crate::examples::events),
        (status = 400, description = "Bad `type`, `rating`, `limit`, `cursor`, `from` or `to`, or a query parameter this route does not define (`field` names it).", body = inline(BadParam)),
    )
)]
pub fn filter_events() {}

#[utoipa::path(
    get, path = "/events/{id}", operation_id = "getEvent", tag = "events", summary = "One event",
    params(("id" = Id, Path, description = "Event id.")),
    responses(
        (status = 200, description = "The event.", body = EventView<'static>, example = crate::examples::event),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
    )
)]
pub fn get_event() {}

const UPDATE: &str = "Facilitator or admin; facilitators only their own events. Only the fields sent change; `updated_at` is set. PUT and PATCH behave identically. A capacity increase while users wait hands the new seats to the first in line within seconds (a background job); meanwhile nobody else can book them. A change of `datetime` or `duration_minutes` reschedules: the event's bookings that hold a seat are brought to the new time in the background (their `event` shows it within seconds), and each confirmed booking's CRM receives `booking.rescheduled` when its time or length actually changed.";
const UPDATE_400: &str = "`invalid_json`: body empty, not JSON, trailing characters or a field of the wrong type; `unknown_field` (with `field`): a property the body does not define; `validation_failed` (with `field`): empty object (field `body`), a bound broken, a non-nullable field null, or a read-only field sent; `validation_failed` (field `price`): a bad price, or any price while this deployment has no Stripe configuration.";

#[utoipa::path(
    put, path = "/events/{id}", operation_id = "putEvent", tag = "events", summary = "Update an event (partial) - same as PATCH",
    description = UPDATE,
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Event id.")),
    request_body(content = EventInput, example = json!({"capacity": 20, "rating": null})),
    responses(
        (status = 200, description = "The updated event.", body = EventView<'static>, example = crate::examples::event),
        (status = 400, description = UPDATE_400, body = inline(BadBody)),
        (status = 403, description = "The caller is an attendee, or a facilitator who does not own the event.", body = inline(Forbidden)),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
        (status = 409, description = "`capacity_below_booked`: `capacity` below the seats already booked; `event_cancelled`: the event is cancelled (it is never changed again); `event_started`: a new `datetime` at or before now while bookings hold seats.", body = inline(EventUpdateConflict)),
    )
)]
pub fn put_event() {}

#[utoipa::path(
    patch, path = "/events/{id}", operation_id = "patchEvent", tag = "events", summary = "Update an event (partial) - same as PUT",
    description = UPDATE,
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Event id.")),
    request_body(content = EventInput, example = json!({"capacity": 20, "rating": null})),
    responses(
        (status = 200, description = "The updated event.", body = EventView<'static>, example = crate::examples::event),
        (status = 400, description = UPDATE_400, body = inline(BadBody)),
        (status = 403, description = "The caller is an attendee, or a facilitator who does not own the event.", body = inline(Forbidden)),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
        (status = 409, description = "`capacity_below_booked`: `capacity` below the seats already booked; `event_cancelled`: the event is cancelled (it is never changed again); `event_started`: a new `datetime` at or before now while bookings hold seats.", body = inline(EventUpdateConflict)),
    )
)]
pub fn patch_event() {}

#[utoipa::path(
    delete, path = "/events/{id}", operation_id = "deleteEvent", tag = "events", summary = "Delete an event",
    description = "Facilitator or admin; facilitators only their own events. Refused while any booking is confirmed.",
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Event id.")),
    responses(
        (status = 200, description = "Deleted.", body = Deleted, example = json!({"msg": "Event deleted successfully"})),
        (status = 403, description = "The caller is an attendee, or a facilitator who does not own the event.", body = inline(Forbidden)),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
        (status = 409, description = "The event still has bookings that hold a seat, or users on its waitlist.", body = inline(EventHasBookings)),
    )
)]
pub fn delete_event() {}

#[utoipa::path(
    post, path = "/events/{id}/cancel", operation_id = "cancelEvent", tag = "events", summary = "Cancel an event",
    description = "Facilitator or admin; facilitators only their own events. The event becomes `cancelled` at once and leaves `GET /events/` and `/events/filter` (`GET /events/{id}` still shows it). Its bookings that hold a seat (`confirmed`, `pending_payment`) are then cancelled in the background, in batches, each exactly once, with `cancel_reason: event_cancelled`; paid ones are refunded in full as an attendee's cancel would be, and open holds' Checkout Sessions are expired. `bookings_to_cancel` counts them down to 0. Its waitlist is emptied the same way (`waitlist_count` counts down to 0; nobody is promoted). A cancelled event is never booked or changed again (409 `event_cancelled`); it can be deleted once `bookings_to_cancel` is 0.",
    security(("bearerAuth" = [])),
    params(("id" = Id, Path, description = "Event id.")),
    request_body(content = EventCancel, description = "Optional.", example = json!({"reason": "The teacher is ill."})),
    responses(
        (status = 200, description = "The cancelled event.", body = EventView<'static>, example = crate::examples::event),
        (status = 400, description = "`invalid_json`: not JSON, not an object, or `reason` not a string; `unknown_field` (with `field`): a property other than `reason`; `validation_failed` (field `reason`): over 500 characters.", body = inline(BadBody)),
        (status = 403, description = "The caller is an attendee, or a facilitator who does not own the event.", body = inline(Forbidden)),
        (status = 404, description = "No event with this id.", body = inline(NotFound)),
        (status = 409, description = "`event_cancelled`: cancelled already; `event_started`: the event has started.", body = inline(EventCancelConflict)),
    )
)]
pub fn cancel_event() {}
