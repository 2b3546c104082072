//! Sessions: the refresh token a login starts, its rotation with reuse detection, logout and the
//! password change that ends every session of the user (RFC 9700 §4.14, refresh-token rotation).

use crate::handler::{LOGIN_WINDOW_SECS, MAX_LOGIN_ATTEMPTS};
use lambda_http::http::StatusCode;
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::error::{Error, Result};
use shared::http::{authenticate, json_response, parse_json};
use shared::model::{required, validate_password, Presented, RefreshToken, Session, User};
use shared::store::{Rotated, Rotation};
use shared::{time, App, Store};

/// One message for every refused refresh token: unknown, malformed, forged, spent, revoked,
/// expired or of another user look alike to the client.
const INVALID_TOKEN: Error = Error::Unauthorized("refresh token is invalid, expired or revoked");

/// The body of a successful login or refresh: a new access token and a new refresh token.
pub fn tokens_response<S: Store>(app: &App<S>, user: &User, refresh: &RefreshToken) -> Result<Response<Body>> {
    let access = app.tokens.issue(user)?;
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": app.tokens.ttl_secs(),
            "refresh_token": refresh.expose(),
        }),
    ))
}

/// A new family for a user who just proved their password.
pub async fn start<S: Store>(app: &App<S>, user: &User) -> Result<RefreshToken> {
    let (session, token) = Session::start(&user.id, user.session_epoch, time::now());
    app.store.create_session(&session).await?;
    Ok(token)
}

/// Body of `POST /auth/refresh` and `POST /auth/logout`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInput {
    /// The `refresh_token` of the last `POST /auth/login` or `POST /auth/refresh`.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true))]
    refresh_token: Option<String>,
}

/// The presented token, parsed: a body without it is a 400, a token that is not one this service
/// could have issued a 401 before any read.
fn presented(req: &Request) -> Result<RefreshToken> {
    let input: TokenInput = parse_json(req)?;
    let text = required(input.refresh_token, "refresh_token")?;
    RefreshToken::parse(&text).ok_or(INVALID_TOKEN)
}

pub async fn refresh<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let token = presented(req)?;
    let now = time::now();
    let (session, user) = app.store.session_and_user(&token.family_id, &token.user_id).await?;
    let (Some(session), Some(user)) = (session, user) else {
        return Err(INVALID_TOKEN);
    };
    if !session.is_live(now, user.session_epoch) {
        return Err(INVALID_TOKEN);
    }
    match session.judge(&token) {
        Presented::Current => {}
        Presented::Spent => {
            // Reuse: whoever holds the live token (the thief or the victim) loses it too.
            app.store.revoke_session(&session.family_id).await?;
            tracing::warn!(user_id = %user.id, family_id = %session.family_id, "spent refresh token reused; family revoked");
            return Err(INVALID_TOKEN);
        }
        Presented::Invalid => return Err(INVALID_TOKEN),
    }
    let next = RefreshToken::issue(&user.id, &session.family_id, session.generation.saturating_add(1));
    let rotation = Rotation {
        family_id: &session.family_id,
        user_id: &user.id,
        generation: session.generation,
        token_hash: &session.token_hash,
        new_hash: &next.hash(),
        session_epoch: session.session_epoch,
        now,
    };
    match app.store.rotate_session(&rotation).await? {
        Rotated::Done => tokens_response(app, &user, &next),
        Rotated::FamilyChanged => {
            // A concurrent refresh spent this very token first: two holders of one token is
            // reuse as well.
            app.store.revoke_session(&session.family_id).await?;
            tracing::warn!(user_id = %user.id, family_id = %session.family_id, "refresh token spent concurrently; family revoked");
            Err(INVALID_TOKEN)
        }
        Rotated::PasswordChanged => Err(INVALID_TOKEN),
    }
}

pub async fn logout<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let token = presented(req)?;
    let session = app.store.get_session(&token.family_id).await?.ok_or(INVALID_TOKEN)?;
    if session.expires_at <= time::now() || session.judge(&token) == Presented::Invalid {
        return Err(INVALID_TOKEN);
    }
    // The live token or a spent one of this family: either way the holder ends it.
    if !session.revoked {
        app.store.revoke_session(&session.family_id).await?;
    }
    Ok(json_response(StatusCode::OK, &json!({ "msg": "Logged out" })))
}

/// Body of `POST /auth/password`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PasswordInput {
    /// Checked like a login, and counted by the same failed-login throttle.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true))]
    current_password: Option<String>,
    /// 8-128 characters, as at registration.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 8, max_length = 128))]
    new_password: Option<String>,
}

pub async fn change_password<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    let input: PasswordInput = parse_json(req)?;
    let current = required(input.current_password, "current_password")?;
    let new = required(input.new_password, "new_password")?;
    // The new password is checked first: a typo in it costs no attempt of the throttle.
    validate_password(&new).map_err(|e| match e {
        Error::Validation { message, .. } => Error::validation("new_password", message),
        other => other,
    })?;
    let user = app.store.get_user(&caller.id).await?.ok_or(Error::Unauthorized("account no longer exists"))?;
    // Counted like a login (same email, same window): a stolen access token cannot be used to
    // guess the password faster than the login form allows.
    app.store.count_login_attempt(&user.email, time::now(), LOGIN_WINDOW_SECS, MAX_LOGIN_ATTEMPTS).await?;
    if !app.passwords.verify(current, user.password_hash.clone()).await? {
        return Err(Error::InvalidCredentials);
    }
    let new_hash = app.passwords.hash(new).await?;
    // Conditional on the hash just verified: of two concurrent changes one wins, the other hears
    // 401 invalid_credentials (the password it proved is no longer current).
    app.store.change_password(&user.id, &user.password_hash, &new_hash, user.session_epoch).await?;
    app.store.clear_login_attempts(&user.email).await?;
    tracing::info!(user_id = %user.id, "password changed; every session revoked");
    Ok(json_response(StatusCode::OK, &json!({ "msg": "Password changed" })))
}
