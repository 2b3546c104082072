//! `limit` / `cursor` parsing and the `Link: <…>; rel="next"` header.

use crate::error::{Error, Result};
use lambda_http::http::{header, HeaderValue};
use lambda_http::{Body, Response};
use std::collections::HashMap;

pub const DEFAULT_LIMIT: usize = 50;
pub const MAX_LIMIT: usize = 100;

pub fn limit(params: &HashMap<String, String>) -> Result<usize> {
    match params.get("limit").map(|s| s.trim()) {
        None | Some("") => Ok(DEFAULT_LIMIT),
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| Error::validation("limit", format!("must be an integer from 1 to {MAX_LIMIT}"))),
    }
}

/// Adds `Link: <path?…&cursor=…>; rel="next"`, keeping the request's other parameters.
pub fn link_next(resp: &mut Response<Body>, path: &str, params: &HashMap<String, String>, cursor: &str) {
    let mut keys: Vec<&String> = params.keys().filter(|k| k.as_str() != "cursor").collect();
    keys.sort();
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for k in keys {
        query.append_pair(k, &params[k]);
    }
    query.append_pair("cursor", cursor);
    let value = format!("<{path}?{}>; rel=\"next\"", query.finish());
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::LINK, v);
    }
}
