//! The local API: one process serving every route through the same `router` functions the
//! Lambdas run, so there is no second implementation of any route. With `PAYMENTS=local`,
//! [`checkout`] adds a local stand-in for Stripe Checkout; [`sweeps`] runs the deployed
//! sweeper's work on an interval; [`serve`] puts it all together for `make run`.

pub mod checkout;
pub mod jobs;
pub mod promotions;
pub mod server;
pub mod sweeps;

pub use server::serve;

use axum::body::Bytes;
use axum::response::IntoResponse;
use lambda_http::{Body, Request, Response};
use promotions::FollowUp;
use shared::error::Error;
use shared::http::{error_response, segments, MAX_BODY_BYTES};
use shared::{App, Store};
use std::sync::Arc;
use std::time::Instant;

/// Sends a request to the function that owns its path, as API Gateway's routes do when deployed.
pub async fn dispatch<S: Store>(app: &App<S>, req: Request) -> Response<Body> {
    let path = req.uri().path().to_string();
    match segments(&path).as_slice() {
        ["auth", ..] | ["health"] | ["openapi.json"] => auth::router(app, req).await,
        ["events", _, "bookings"] | ["bookings", ..] => bookings::router(app, req).await,
        ["events", ..] => events::router(app, req).await,
        ["payments", ..] => payments::router(app, req).await,
        _ => error_response(&Error::NotFound("route")),
    }
}

/// The axum app: every path goes to [`dispatch`], with a log line per request.
pub fn router<S: Store + Clone>(app: Arc<App<S>>) -> axum::Router {
    router_with(app, None)
}

/// [`router`], and after each route that may have promoted from a waitlist, `followup` in the
/// background ([`promotions`]).
pub fn router_with<S: Store + Clone>(app: Arc<App<S>>, followup: Option<Arc<FollowUp<S>>>) -> axum::Router {
    axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (app, followup) = (app.clone(), followup.clone());
        async move { handle(&app, followup.as_ref(), req).await }
    })
}

async fn handle<S: Store + Clone>(
    app: &App<S>,
    followup: Option<&Arc<FollowUp<S>>>,
    req: axum::extract::Request,
) -> axum::response::Response {
    let started = Instant::now();
    let since = shared::time::now();
    let (parts, body) = req.into_parts();
    let (method, uri) = (parts.method.clone(), parts.uri.clone());
    let resp = match axum::body::to_bytes(body, MAX_BODY_BYTES + 1).await {
        Ok(bytes) if bytes.len() <= MAX_BODY_BYTES => {
            let body = match String::from_utf8(bytes.to_vec()) {
                Ok(s) if s.is_empty() => Body::Empty,
                Ok(s) => Body::Text(s),
                Err(e) => Body::Binary(e.into_bytes()),
            };
            dispatch(app, Request::from_parts(parts, body)).await
        }
        _ => error_response(&Error::PayloadTooLarge),
    };
    if let Some(trigger) = followup.and_then(|_| promotions::trigger(&method, uri.path(), resp.status())) {
        followup.into_iter().for_each(|f| f.spawn(since, trigger.clone()));
    }
    tracing::info!(
        method = %method,
        path = %uri.path(),
        status = resp.status().as_u16(),
        ms = %format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    let (parts, body) = resp.into_parts();
    let bytes = match body {
        Body::Empty => Bytes::new(),
        Body::Text(s) => Bytes::from(s),
        Body::Binary(b) => Bytes::from(b),
        _ => Bytes::new(),
    };
    (parts.status, parts.headers, bytes).into_response()
}

/// Re-exported so tests can serve [`router`] without depending on axum themselves.
pub use axum;
