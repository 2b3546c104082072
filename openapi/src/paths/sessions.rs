//! `auth` function, sessions: refresh-token rotation, logout and the password change
//! (functions/auth/src/sessions.rs). The request bodies are the handler's own input structs.
#![allow(dead_code)] // schemas, never built

use crate::errors::*;
use crate::schemas::Token;
use auth::sessions::{PasswordInput, TokenInput};
use utoipa::ToSchema;

#[derive(ToSchema)]
pub struct LoggedOut {
    #[schema(inline)]
    pub msg: LoggedOutMsg,
}

#[derive(ToSchema)]
pub enum LoggedOutMsg {
    #[schema(rename = "Logged out")]
    LoggedOut,
}

#[derive(ToSchema)]
pub struct PasswordChanged {
    #[schema(inline)]
    pub msg: PasswordChangedMsg,
}

#[derive(ToSchema)]
pub enum PasswordChangedMsg {
    #[schema(rename = "Password changed")]
    PasswordChanged,
}

const BAD_TOKEN_BODY: &str = "`invalid_json`: body empty, not JSON, trailing characters or `refresh_token` not a string; `unknown_field` (with `field`): a property the body does not define; `validation_failed` (field `refresh_token`): missing.";

#[utoipa::path(
    post, path = "/auth/refresh", operation_id = "refresh", tag = "auth", summary = "New tokens for a refresh token",
    description = "Spends the refresh token and answers a new access token and a new refresh token of the same login (rotation). Presenting a spent refresh token again is 401 and revokes every refresh token descended from the same login (reuse detection: the thief and the victim both log in again). Unknown, malformed or expired (30 days after the login) tokens are 401 too.",
    request_body(content = TokenInput, example = json!({"refresh_token": "01JD9ZQ4M7W3X8Y2K5N6P1R0ST.01JDA0B3C4D5E6F7G8H9J0K1MN.3.UNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw"})),
    responses(
        (status = 200, description = "New tokens; the one presented is spent.", body = Token, example = crate::examples::token_with_refresh),
        (status = 400, description = BAD_TOKEN_BODY, body = inline(BadBody)),
        (status = 401, description = "The refresh token is unknown, malformed, expired, revoked or already spent (the last also revokes its whole family).", body = inline(Unauthorized)),
    )
)]
pub fn refresh() {}

#[utoipa::path(
    post, path = "/auth/logout", operation_id = "logout", tag = "auth", summary = "End a login",
    description = "Every refresh token of the login the token belongs to stops working. Idempotent: an already revoked token answers 200 too. Access tokens already issued stay valid until they expire (at most `expires_in`).",
    request_body(content = TokenInput, example = json!({"refresh_token": "01JD9ZQ4M7W3X8Y2K5N6P1R0ST.01JDA0B3C4D5E6F7G8H9J0K1MN.3.UNhY4JhezH9gQYqvDMWrWH9CwlcKiECVqejMrND2VFw"})),
    responses(
        (status = 200, description = "Logged out.", body = LoggedOut, example = json!({"msg": "Logged out"})),
        (status = 400, description = BAD_TOKEN_BODY, body = inline(BadBody)),
        (status = 401, description = "The refresh token is unknown or malformed.", body = inline(Unauthorized)),
    )
)]
pub fn logout() {}

#[utoipa::path(
    post, path = "/auth/password", operation_id = "changePassword", tag = "auth", summary = "Change the caller's password",
    description = "The new password works at once and the old one never again; every refresh token of the user is revoked in the same write (other sessions must log in again).",
    security(("bearerAuth" = [])),
    request_body(content = PasswordInput, example = json!({"current_password": "s3cret-pass", "new_password": "n3w-s3cret-pass"})),
    responses(
        (status = 200, description = "Password changed.", body = PasswordChanged, example = json!({"msg": "Password changed"})),
        (status = 400, description = "`invalid_json`: body empty, not JSON, trailing characters or a field of the wrong type; `unknown_field` (with `field`): a property the body does not define; `validation_failed` (with `field`): `current_password` missing, `new_password` missing or not 8-128 characters.", body = inline(BadBody)),
        (status = 401, description = "`invalid_credentials`: wrong current password (counted by the failed-login throttle); `unauthorized`: bearer token invalid (see the security scheme) or its account no longer exists.", body = inline(CredentialsOrToken)),
        (status = 429, description = "Too many failed password checks for this account's email; retry after `Retry-After` seconds.", body = inline(TooManyAttempts)),
    )
)]
pub fn change_password() {}
