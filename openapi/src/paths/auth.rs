//! `auth` function: accounts and tokens.

use crate::errors::*;
use crate::schemas::{Token, UserView};
use auth::handler::{LoginInput, RegisterInput};

#[utoipa::path(
    post, path = "/auth/register", operation_id = "register", tag = "auth", summary = "Create an account",
    request_body(content = RegisterInput, example = json!({"name": "Ann Lee", "email": "ann@example.com", "password": "s3cret-pass", "role": "attendee"})),
    responses(
        (status = 201, description = "Account created (the password hash is never returned).", body = UserView, example = crate::examples::user),
        (status = 400, description = "`invalid_json`: body empty, not JSON, trailing characters or a field of the wrong type; `unknown_field` (with `field`): a property the body does not define; `validation_failed` (with `field`): `name` missing/empty/over 100 characters, `email` missing or invalid, `password` missing or not 8-128 characters, `role` not attendee/facilitator.", body = inline(BadBody)),
        (status = 403, description = "`role: \"admin\"`: the admin role is granted by operators only.", body = inline(Forbidden)),
        (status = 409, description = "An account with this email (case-insensitive) already exists.", body = inline(EmailTaken)),
    )
)]
pub fn register() {}

#[utoipa::path(
    post, path = "/auth/login", operation_id = "login", tag = "auth", summary = "Get an access token",
    description = "Unknown email and wrong password give the same 401 in about the same time. After 10 failed logins for one email within a 15-minute window, further attempts get 429 until the window ends; a successful login clears the count. Besides the access token the answer carries a `refresh_token` (see `POST /auth/refresh`).",
    request_body(content = LoginInput, example = json!({"email": "ann@example.com", "password": "s3cret-pass"})),
    responses(
        (status = 200, description = "Logged in.", body = Token, example = crate::examples::token_with_refresh),
        (status = 400, description = "`invalid_json`: body empty, not JSON, trailing characters or a field of the wrong type; `unknown_field` (with `field`): a property the body does not define; `validation_failed` (with `field`): `email` missing or invalid, `password` missing.", body = inline(BadBody)),
        (status = 401, description = "Unknown email or wrong password.", body = inline(InvalidCredentials)),
        (status = 429, description = "Too many failed logins for this email; retry after `Retry-After` seconds.", body = inline(TooManyAttempts)),
    )
)]
pub fn login() {}

#[utoipa::path(
    get, path = "/auth/me", operation_id = "me", tag = "auth", summary = "The caller's profile",
    security(("bearerAuth" = [])),
    responses(
        (status = 200, description = "The caller's account.", body = UserView, example = crate::examples::user),
        (status = 401, description = "Token invalid (see the security scheme) or its account no longer exists.", body = inline(Unauthorized)),
    )
)]
pub fn me() {}
