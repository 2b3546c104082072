//! `/events/{id}/waitlist`: join the line of a full event, leave it, and (owner or admin) read it.
//!
//! The store's write decides every answer (its conditions are atomic); the read before it only
//! answers the common refusals without spending a write, in the order the store would.

use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::error::{Error, Result};
use shared::http::{authenticate, json_list_response, json_response, parse_json, path, query, resource_id};
use shared::model::WaitEntry;
use shared::paging;
use shared::policy;
use shared::{time, App, Store};

/// The query parameters of `GET /events/{id}/waitlist`.
pub const WAITLIST_PARAMS: &[&str] = &["limit", "cursor"];

/// The body of `POST /events/{id}/waitlist`: none, or an empty object (the event is in the path,
/// the caller in the token). Anything else is a client mistake worth a 400, not silence.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct JoinInput {}

/// `POST /events/{id}/waitlist` → 201 `{event_id, user_id, position, joined_at}`. One read (event,
/// the caller's guard and account: `booking_context`) and one transaction.
pub async fn join<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let event_id = resource_id(id, "event")?;
    if !req.body().as_ref().iter().all(u8::is_ascii_whitespace) {
        parse_json::<JoinInput>(req)?;
    }
    let now = time::now();
    let context = app.store.booking_context(&event_id, &caller.id, None).await?;
    // The entry carries the name and email the promoted booking (and the CRM) will need; the
    // token carries neither.
    let account = policy::account(&caller, context.user)?;
    // Early answers in the order `Store::join_waitlist` documents.
    let event = context.event.ok_or(Error::NotFound("event"))?;
    event.bookable_at(now)?;
    if !event.waitlist_open_at(now) {
        return Err(Error::SeatsAvailable);
    }
    if context.already_booked {
        return Err(Error::AlreadyBooked);
    }
    if context.waiting {
        return Err(Error::AlreadyWaiting);
    }
    let entry = WaitEntry {
        event_id,
        user_id: caller.id.clone(),
        user_name: account.name,
        user_email: account.email,
        joined_at: now,
    };
    let position = app.store.join_waitlist(&entry, now).await?;
    tracing::info!(event_id = %entry.event_id, user_id = %caller.id, position, "joined the waitlist");
    Ok(json_response(StatusCode::CREATED, &entry.joined_view(position)))
}

/// `DELETE /events/{id}/waitlist` → 200; 404 when the caller is not waiting (never joined, left,
/// or promoted meanwhile: the store's conditional write tells).
pub async fn leave<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let event_id = resource_id(id, "event")?;
    app.store.leave_waitlist(&event_id, &caller.id).await?;
    tracing::info!(event_id = %event_id, user_id = %caller.id, "left the waitlist");
    Ok(json_response(StatusCode::OK, &json!({ "msg": "Left the waitlist" })))
}

/// `GET /events/{id}/waitlist`: for the event's owner or an admin (as its attendee list), the
/// line in order with each entry's place, name and email, paged like every list.
pub async fn list<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let event_id = resource_id(id, "event")?;
    policy::check_attendee_access(&app.store, &caller, &event_id).await?;
    let params = query(req);
    let limit = paging::limit(&params)?;
    let scope = format!("event-waitlist|{event_id}");
    let after = app.cursors.after(&scope, &params)?;
    let page = app.store.waitlist(&event_id, after.as_ref(), limit).await?;
    let items: Vec<_> =
        page.items.iter().zip(page.first_position..).map(|(entry, position)| entry.view(position)).collect();
    let mut resp = json_list_response(StatusCode::OK, &items);
    if let Some(next) = page.next {
        paging::link_next(&mut resp, &path(req), &params, &app.cursors.encode_position(&scope, &next));
    }
    Ok(resp)
}
