use lambda_http::http::{header, HeaderValue, Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde_json::json;
use shared::error::{Error, Result};
use shared::http::{
    authenticate, json_list_response, json_response, method_not_allowed, parse_json, path, query, resource_id, respond,
    segments, served,
};
use shared::model::{fold_type, rating_text, EventInput};
use shared::paging;
use shared::policy::Principal;
use shared::store::EventQuery;
use shared::{time, App, Store};
use std::collections::HashMap;

use crate::waitlist;

/// The query parameters of `GET /events/`.
pub const LIST_PARAMS: &[&str] = &["from", "to", "limit", "cursor"];
/// The query parameters of `GET /events/filter`: its own and the list's.
pub const FILTER_PARAMS: &[&str] = &["type", "rating", "from", "to", "limit", "cursor"];

pub async fn router<S: Store>(app: &App<S>, req: Request) -> Response<Body> {
    let path = path(&req);
    let result = match (segments(&path).as_slice(), req.method()) {
        (["events"], &Method::GET) => served(&req, LIST_PARAMS, || list(app, &req, &path, false)).await,
        (["events"], &Method::POST) => served(&req, &[], || create(app, &req)).await,
        (["events"], _) => Err(method_not_allowed("GET, POST")),
        (["events", "filter"], &Method::GET) => served(&req, FILTER_PARAMS, || list(app, &req, &path, true)).await,
        (["events", "filter"], _) => Err(method_not_allowed("GET")),
        (["events", id, "cancel"], &Method::POST) => served(&req, &[], || cancel(app, &req, id)).await,
        (["events", _, "cancel"], _) => Err(method_not_allowed("POST")),
        (["events", id, "waitlist"], &Method::POST) => served(&req, &[], || waitlist::join(app, &req, id)).await,
        (["events", id, "waitlist"], &Method::DELETE) => served(&req, &[], || waitlist::leave(app, &req, id)).await,
        (["events", id, "waitlist"], &Method::GET) => {
            served(&req, waitlist::WAITLIST_PARAMS, || waitlist::list(app, &req, id)).await
        }
        (["events", _, "waitlist"], _) => Err(method_not_allowed("GET, POST, DELETE")),
        (["events", id], &Method::GET) => served(&req, &[], || get(app, id)).await,
        (["events", id], &Method::PUT | &Method::PATCH) => served(&req, &[], || update(app, &req, id)).await,
        (["events", id], &Method::DELETE) => served(&req, &[], || delete(app, &req, id)).await,
        (["events", _], _) => Err(method_not_allowed("GET, PUT, PATCH, DELETE")),
        _ => Err(Error::NotFound("route")),
    };
    respond(result)
}

fn param<'a>(params: &'a HashMap<String, String>, name: &str) -> Option<&'a str> {
    params.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
}

fn timestamp_param(params: &HashMap<String, String>, name: &str) -> Result<Option<time::Timestamp>> {
    param(params, name)
        .map(|v| time::parse(v).ok_or_else(|| Error::validation(name, "must be an RFC 3339 date-time")))
        .transpose()
}

/// `GET /events/` and `GET /events/filter`: one index query per page, never a scan.
async fn list<S: Store>(app: &App<S>, req: &Request, path: &str, filter: bool) -> Result<Response<Body>> {
    let params = query(req);
    let mut q = EventQuery {
        limit: paging::limit(&params)?,
        from: timestamp_param(&params, "from")?,
        to: timestamp_param(&params, "to")?,
        ..EventQuery::default()
    };
    if filter {
        if let Some(t) = param(&params, "type") {
            if t.chars().count() > 50 {
                return Err(Error::validation("type", "must be 1 to 50 characters"));
            }
            q.event_type = Some(fold_type(t));
        }
        // Given empty, it is not left out: `rating=` is a 400 like any other non-number.
        if let Some(r) = params.get("rating") {
            q.min_rating = Some(rating_text(r)?);
        }
    }
    // DynamoDB refuses `BETWEEN :lo AND :hi` with lo > hi; an empty range is the client's mistake.
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from > to {
            return Err(Error::validation("from", "must not be later than `to`"));
        }
    }
    // The cursor is only valid for the query that produced it.
    let scope = format!(
        "{}|type={}|rating={}|from={}|to={}",
        if filter { "filter" } else { "list" },
        q.event_type.as_deref().unwrap_or(""),
        q.min_rating.map(|r| r.to_string()).unwrap_or_default(),
        q.from.as_ref().map(time::format).unwrap_or_default(),
        q.to.as_ref().map(time::format).unwrap_or_default(),
    );
    q.after = app.cursors.after(&scope, &params)?;
    let page = app.store.list_events(&q).await?;
    let items: Vec<_> = page.items.iter().map(|e| e.view()).collect();
    let mut resp = json_list_response(StatusCode::OK, &items);
    if let Some(next) = page.next {
        paging::link_next(&mut resp, path, &params, &app.cursors.encode_position(&scope, &next));
    }
    Ok(resp)
}

async fn get<S: Store>(app: &App<S>, id: &str) -> Result<Response<Body>> {
    let id = &resource_id(id, "event")?;
    let event = app.store.get_event(id).await?.ok_or(Error::NotFound("event"))?;
    Ok(json_response(StatusCode::OK, &event.view()))
}

async fn create<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let caller = Principal::load(&app.store, &authenticate(req, &app.tokens)?).await?;
    caller.may_manage_events()?;
    let input: EventInput = parse_json(req)?;
    let event = input.into_event(&caller.id, time::now())?;
    payments_allow(app, event.price.is_some())?;
    app.store.create_event(&event).await?;
    tracing::info!(event_id = %event.id, owner = %caller.id, "event created");
    let mut resp = json_response(StatusCode::CREATED, &event.view());
    if let Ok(location) = HeaderValue::from_str(&format!("/events/{}", event.id)) {
        resp.headers_mut().insert(header::LOCATION, location);
    }
    Ok(resp)
}

async fn update<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = Principal::load(&app.store, &authenticate(req, &app.tokens)?).await?;
    caller.may_manage_events()?;
    let id = &resource_id(id, "event")?;
    let input: EventInput = parse_json(req)?;
    let patch = input.into_patch()?;
    if patch.is_empty() {
        return Err(Error::validation("body", "nothing to update: send at least one field"));
    }
    payments_allow(app, matches!(patch.price, Some(Some(_))))?;
    let event = app.store.update_event(id, &patch, caller.event_actor(), time::now()).await?;
    if patch.reschedules() {
        tracing::info!(event_id = %id, revision = event.revision, bookings = event.seats_booked, "event rescheduled");
        if let Some(hook) = &app.on_job {
            hook(id);
        }
    }
    Ok(json_response(StatusCode::OK, &event.view()))
}

/// A priced event needs a deployment that can take payments; otherwise nobody could book it.
fn payments_allow<S>(app: &App<S>, priced: bool) -> Result<()> {
    if priced && !app.payments_enabled {
        return Err(Error::validation(
            "price",
            "priced events need payments configured (STRIPE_SECRET_KEY is not set)",
        ));
    }
    Ok(())
}

/// The body of `POST /events/{id}/cancel`: optional (no body is `{}`).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CancelInput {
    #[serde(default)]
    reason: Option<String>,
}

/// The most a cancel reason may hold, in characters: attendees read it.
pub const MAX_CANCEL_REASON_CHARS: usize = 500;

/// `POST /events/{id}/cancel`: the event is cancelled and leaves the lists in one write that
/// also records its job; the bookings are cancelled after the answer, in bounded batches
/// (`bookings_to_cancel` counts them down).
async fn cancel<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = Principal::load(&app.store, &authenticate(req, &app.tokens)?).await?;
    caller.may_manage_events()?;
    let id = &resource_id(id, "event")?;
    let empty = req.body().as_ref().iter().all(u8::is_ascii_whitespace);
    let input: CancelInput = if empty { CancelInput::default() } else { parse_json(req)? };
    let reason = input.reason.as_deref().map(str::trim).filter(|r| !r.is_empty());
    if reason.is_some_and(|r| r.chars().count() > MAX_CANCEL_REASON_CHARS) {
        return Err(Error::validation("reason", "must be at most 500 characters"));
    }
    let event = app.store.cancel_event(id, reason, caller.event_actor(), time::now()).await?;
    tracing::info!(event_id = %id, by = %caller.id, bookings = event.seats_booked, "event cancelled");
    if let Some(hook) = &app.on_job {
        hook(id);
    }
    Ok(json_response(StatusCode::OK, &event.view()))
}

async fn delete<S: Store>(app: &App<S>, req: &Request, id: &str) -> Result<Response<Body>> {
    let caller = Principal::load(&app.store, &authenticate(req, &app.tokens)?).await?;
    caller.may_manage_events()?;
    let id = &resource_id(id, "event")?;
    app.store.delete_event(id, caller.event_actor()).await?;
    tracing::info!(event_id = %id, by = %caller.id, "event deleted");
    Ok(json_response(StatusCode::OK, &json!({ "msg": "Event deleted successfully" })))
}
