use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use shared::error::{Error, Result};
use shared::http::{
    authenticate, json_list_response, json_response, method_not_allowed, parse_json, path, query, resource_id, respond,
    segments, served,
};
use shared::jwt::AuthUser;
use shared::model::{
    Booking, BookingStatus, BookingView, CancelReason, Delivery, IdempotencyRecord, MessageKind, MessageView, Payment,
    IDEMPOTENCY_TTL_SECS,
};
use shared::paging;
use shared::payments::{self, CheckoutRequest};
use shared::policy;
use shared::{time, App, Store};
use std::collections::HashMap;

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";

pub use crate::history::LIST_PARAMS;
/// The query parameters of `GET /events/{id}/bookings`.
pub const ATTENDEE_PARAMS: &[&str] = &["limit", "cursor"];

pub async fn router<S: Store>(app: &App<S>, req: Request) -> Response<Body> {
    let path = path(&req);
    let result = match (segments(&path).as_slice(), req.method()) {
        (["bookings"], &Method::POST) => served(&req, &[], || create(app, &req)).await,
        (["bookings"], &Method::GET) => served(&req, LIST_PARAMS, || crate::history::list(app, &req)).await,
        (["bookings"], _) => Err(method_not_allowed("GET, POST")),
        (["bookings", id], &Method::GET) => served(&req, &[], || get(app, &req, id)).await,
        (["bookings", id], &Method::DELETE) => served(&req, &[], || cancel(app, &req, id)).await,
        (["bookings", _], _) => Err(method_not_allowed("GET, DELETE")),
        (["bookings", id, "calendar.ics"], &Method::GET) => {
            served(&req, &[], || crate::calendar::calendar(app, &req, id)).await
        }
        (["bookings", _, "calendar.ics"], _) => Err(method_not_allowed("GET")),
        (["events", id, "bookings"], &Method::GET) => {
            served(&req, ATTENDEE_PARAMS, || event_bookings(app, &req, id)).await
        }
        (["events", _, "bookings"], _) => Err(method_not_allowed("GET")),
        _ => Err(Error::NotFound("route")),
    };
    respond(result)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BookingInput {
    /// Trimmed; 1-64 characters.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, max_length = 64, pattern = r"\S"))]
    event_id: Option<String>,
}

fn idempotency_key(req: &Request) -> Result<Option<String>> {
    let Some(raw) = req.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = raw.to_str().ok().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::validation("Idempotency-Key", "must be 1 to 255 visible ASCII characters"));
    }
    Ok(Some(key.to_string()))
}

fn created(body: &str, booking_id: &str) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = StatusCode::CREATED;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Ok(location) = HeaderValue::from_str(&format!("/bookings/{booking_id}")) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    resp
}

/// The first response again, for a retry with the same key and body; 409 for another body. A
/// paid booking is shown as it is now: its first answer was stored before its Checkout Session
/// existed, and it may have been paid or expired since.
async fn replay<S: Store>(app: &App<S>, record: &IdempotencyRecord, request_hash: &str) -> Result<Response<Body>> {
    if record.request_hash != request_hash {
        return Err(Error::IdempotencyKeyReused);
    }
    let first = serde_json::from_str::<Value>(&record.body).unwrap_or_default();
    let booking_id = first["id"].as_str().unwrap_or_default().to_string();
    let mut body = record.body.clone();
    if first["payment"].is_object() {
        if let Some(current) = app.store.get_booking(&booking_id).await? {
            body = serde_json::to_string(&current.view()).map_err(Error::internal)?;
        }
    }
    let mut resp = created(&body, &booking_id);
    *resp.status_mut() = StatusCode::from_u16(record.status).unwrap_or(StatusCode::CREATED);
    resp.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    Ok(resp)
}

/// `POST /bookings/`; [`create_once`] again when the event was rescheduled between its read and
/// its write (the booking must not keep the old time), at most three times.
async fn create<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    for _ in 0..2 {
        match create_once(app, req).await {
            Err(Error::StatusChanged) => continue,
            other => return other,
        }
    }
    create_once(app, req).await
}

/// One read (the event, the caller's account and attendee guard and, when a key is sent, the
/// idempotency record) and one transaction whose conditions, not the read, decide.
async fn create_once<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let input: BookingInput = parse_json(req)?;
    let event_id = shared::model::required(input.event_id, "event_id")?.trim().to_string();
    if event_id.is_empty() || event_id.len() > 64 {
        return Err(Error::validation("event_id", "must be 1 to 64 characters"));
    }
    // Not a possible id: no such event (and no key DynamoDB would refuse).
    let event_id = resource_id(&event_id, "event")?;
    let key = idempotency_key(req)?;
    let request_hash = URL_SAFE_NO_PAD.encode(Sha256::digest(event_id.as_bytes()));
    let now = time::now();
    let context = app.store.booking_context(&event_id, &caller.id, key.as_deref()).await?;
    // Name and email for the booking (the CRM receives them) come from the account, read in the
    // same call: the token carries neither.
    let booker = policy::account(&caller, context.user)?;
    if let Some(record) = context.idempotency.filter(|r| r.is_live(now)) {
        return replay(app, &record, &request_hash).await;
    }
    // Early answers in the contract's order; the transaction re-checks all of them atomically.
    let event = context.event.ok_or(Error::NotFound("event"))?;
    if context.already_booked {
        return Err(Error::AlreadyBooked);
    }
    if context.waiting {
        return Err(Error::AlreadyWaiting);
    }
    event.bookable_at(now)?;
    event.has_free_seat()?;
    // A seat that frees while users wait is theirs (the store's condition says the same).
    if event.waitlist_count > 0 && event.promotes_at(now) {
        return Err(Error::EventFull);
    }
    // A priced event's booking holds the seat until its payment succeeds or the hold expires.
    let payment = match (&event.price, &app.payments) {
        (None, _) => None,
        (Some(price), Some(_)) => Some(Payment::hold(price, now)),
        (Some(_), None) => return Err(Error::PaymentProviderUnavailable("payments are not configured".into())),
    };
    let mut booking = Booking::new(&event, &caller.id, &booker.name, &booker.email, payment, now);
    let body = serde_json::to_string(&booking.view()).map_err(Error::internal)?;
    let record = key.as_ref().map(|k| IdempotencyRecord {
        user_id: caller.id.clone(),
        key: k.clone(),
        request_hash: request_hash.clone(),
        status: StatusCode::CREATED.as_u16(),
        body: body.clone(),
        created_at: now,
        ttl: now.timestamp() + IDEMPOTENCY_TTL_SECS,
    });
    match app.store.create_booking(&booking, record.as_ref(), now).await {
        Ok(()) => {}
        Err(Error::IdempotencyKeyReused) => {
            // A concurrent request with the same key won the race: answer as it did.
            let k = key.as_deref().unwrap_or_default();
            let first = app.store.get_idempotency(&caller.id, k).await?.ok_or(Error::IdempotencyKeyReused)?;
            return replay(app, &first, &request_hash).await;
        }
        Err(e) => return Err(e),
    }
    if booking.payment.is_some() {
        checkout(app, &mut booking, key.as_deref()).await?;
        tracing::info!(booking_id = %booking.id, event_id = %booking.event_id, user_id = %caller.id, "seat held");
        let body = serde_json::to_string(&booking.view()).map_err(Error::internal)?;
        return Ok(created(&body, &booking.id));
    }
    tracing::info!(booking_id = %booking.id, event_id = %booking.event_id, user_id = %caller.id, "booked");
    if let Some(hook) = &app.on_booking {
        hook(&booking);
    }
    Ok(created(&body, &booking.id))
}

/// Opens the Checkout Session of a seat hold just written and records it on the booking. When
/// Stripe fails, the hold is undone in one transaction (seat, guard, idempotency record) and the
/// client hears 502: nothing stays held, and the same request may simply be sent again.
async fn checkout<S: Store>(app: &App<S>, booking: &mut Booking, idempotency_key: Option<&str>) -> Result<()> {
    let provider = app.payments.as_deref().ok_or_else(|| Error::internal("hold without a payment provider"))?;
    let request = CheckoutRequest::for_booking(booking).ok_or_else(|| Error::internal("hold without a payment"))?;
    let session = match provider.create_checkout(&request).await {
        Ok(session) if session.url.is_some() => session,
        failure => {
            let cause = match failure {
                Err(e) => e,
                Ok(_) => Error::PaymentProviderUnavailable("Checkout Session without a url".into()),
            };
            tracing::warn!(booking_id = %booking.id, error = ?cause, "Checkout Session not created; releasing the hold");
            if let Err(e) = app.store.release_hold(booking, idempotency_key).await {
                // The hold task still expires it at `expires_at` (payment sweep).
                tracing::error!(booking_id = %booking.id, error = %e, "hold not released; the sweep will expire it");
            }
            return Err(cause);
        }
    };
    let url = session.url.clone().unwrap_or_default();
    app.store.attach_checkout(&booking.id, &session.id, &url).await?;
    if let Some(payment) = booking.payment.as_mut() {
        payment.checkout_session_id = Some(session.id);
        payment.checkout_url = Some(url);
    }
    Ok(())
}

/// One row of an event's attendee list: the booking, who made it, and its CRM delivery state.
#[derive(Serialize)]
struct AttendeeBooking<'a> {
    #[serde(flatten)]
    booking: BookingView<'a>,
    attendee: Attendee<'a>,
    /// The `booking.confirmed` message, in the v2 shape.
    crm_status: Option<&'a Value>,
    /// Every message, in send order.
    crm_messages: Vec<MessageView<'a>>,
}

#[derive(Serialize)]
struct Attendee<'a> {
    name: &'a str,
    email: &'a str,
}

/// A booking as its event's owner sees it: never the attendee's `checkout_url` (the page that
/// takes the attendee's payment is theirs alone).
fn attendee_view(booking: &Booking) -> BookingView<'_> {
    let mut view = booking.view();
    if let Some(payment) = view.payment.as_mut() {
        payment.checkout_url = None;
    }
    view
}

async fn visible_booking<S: Store>(app: &App<S>, caller: &AuthUser, id: &str) -> Result<Booking> {
    let id = resource_id(id, "booking")?;
    policy::visible_booking(&app.store, caller, app.store.get_booking(&id).await?).await
}

async fn get<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let booking = visible_booking(app, &caller, id).await?;
    Ok(json_response(StatusCode::OK, &booking.view()))
}

async fn cancel<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let mut booking = visible_booking(app, &caller, id).await?;
    let now = time::now();
    // A hold may be paid (or expire) between the read and the write; the write's condition on the
    // status notices, and the cancel is retried from the status it now has.
    let reason = if caller.id == booking.user_id { CancelReason::Attendee } else { CancelReason::Admin };
    let mut cancelled = None;
    for _ in 0..3 {
        match app.store.cancel_booking(&booking, reason, now).await {
            Err(Error::StatusChanged) => {
                booking = app.store.get_booking(&booking.id).await?.ok_or(Error::NotFound("booking"))?;
            }
            other => {
                cancelled = Some(other?);
                break;
            }
        }
    }
    let mut cancelled = cancelled.ok_or(Error::StatusChanged)?;
    tracing::info!(booking_id = %id, by = %caller.id, "booking cancelled");
    if let Some(hook) = &app.on_booking {
        hook(&cancelled);
    }
    if let (Some(payment), Some(provider)) = (&booking.payment, app.payments.as_deref()) {
        match booking.status {
            // Nobody may pay for it any more. Stripe answers with the session as it ends: paid just
            // before the cancel, it is refunded at once. Best effort: when Stripe does not answer,
            // the session still ends at `expires_at`, and a payment that lands anyway is refunded
            // by its `checkout.session.completed` webhook.
            BookingStatus::PendingPayment => {
                if let Some(session) = &payment.checkout_session_id {
                    match provider.expire_checkout(session).await {
                        Ok(ended) if ended.is_paid() => refund_paid_hold(app, provider, &mut cancelled, ended).await,
                        Ok(_) => {}
                        Err(e) => tracing::warn!(booking_id = %id, error = ?e, "Checkout Session not expired"),
                    }
                }
            }
            // The refund is owed already (its task is in the due-payments index); ask now, and
            // leave it to the payment sweep if Stripe does not answer.
            _ => match payments::refund_booking(&app.store, provider, &cancelled).await {
                Ok(refund) => show_refund(&mut cancelled, refund),
                Err(e) => tracing::warn!(booking_id = %id, error = ?e, "refund not requested yet; the sweep retries"),
            },
        }
    }
    Ok(json_response(StatusCode::OK, &cancelled.view()))
}

/// A hold cancelled while its payment landed: the money goes back now (the webhook that follows
/// finds the refund asked for and does nothing more).
async fn refund_paid_hold<S: Store>(
    app: &App<S>,
    provider: &dyn payments::PaymentProvider,
    cancelled: &mut Booking,
    session: payments::CheckoutSession,
) {
    match payments::refund_paid_hold(&app.store, provider, cancelled, session).await {
        Ok(refund) => show_refund(cancelled, refund),
        // Its `checkout.session.completed` webhook finds it cancelled, unrefunded, and refunds it.
        Err(e) => {
            tracing::warn!(booking_id = %cancelled.id, error = ?e, "refund not requested yet; the webhook retries")
        }
    }
}

/// The answer shows the refund Stripe acknowledged, as the store has just recorded it.
fn show_refund(cancelled: &mut Booking, refund: payments::Refund) {
    if let Some(p) = cancelled.payment.as_mut() {
        p.refund_id = Some(refund.id);
        p.refund_status = Some(refund.status);
    }
}

/// `GET /events/{id}/bookings`: for the event's owner or an admin, oldest first and paged like
/// every list, with attendee contact and the CRM delivery state of each booking.
async fn event_bookings<S: Store>(app: &App<S>, req: &Request, event_id: &str) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let event_id = &resource_id(event_id, "event")?;
    policy::check_attendee_access(&app.store, &caller, event_id).await?;
    let params = query(req);
    let limit = paging::limit(&params)?;
    let scope = format!("event-bookings|{event_id}");
    let after = app.cursors.after(&scope, &params)?;
    let page = app.store.list_event_bookings(event_id, after.as_ref(), limit).await?;
    let bookings = page.items;
    // One read for every message each booking can have (its status and sequence say which).
    let records = app.store.get_messages(&bookings).await?;
    let mut messages: HashMap<&str, Vec<&Delivery>> = HashMap::new();
    for d in &records {
        messages.entry(d.booking_id.as_str()).or_default().push(d);
    }
    let confirmed: HashMap<&str, Value> = records
        .iter()
        .filter(|d| d.kind == MessageKind::Confirmed)
        .map(|d| (d.booking_id.as_str(), d.view()))
        .collect();
    let items: Vec<AttendeeBooking> = bookings
        .iter()
        .map(|b| AttendeeBooking {
            booking: attendee_view(b),
            attendee: Attendee { name: &b.user_name, email: &b.user_email },
            crm_status: confirmed.get(b.id.as_str()),
            crm_messages: messages.get(b.id.as_str()).map_or_else(Vec::new, |m| {
                let mut m = m.clone();
                m.sort_by_key(|d| d.send_order());
                m.into_iter().map(Delivery::message_view).collect()
            }),
        })
        .collect();
    let mut resp = json_list_response(StatusCode::OK, &items);
    if let Some(next) = page.next {
        paging::link_next(&mut resp, &path(req), &params, &app.cursors.encode_position(&scope, &next));
    }
    Ok(resp)
}
