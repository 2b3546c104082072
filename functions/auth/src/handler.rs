use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::Deserialize;
use serde_json::json;
use shared::error::{Error, Result};
use shared::http::{authenticate, json_response, method_not_allowed, parse_json, path, respond, segments, served};
use shared::model::{new_id, normalize_email, validate_name, validate_password, Role, User};
use shared::{time, App, Store};

use crate::sessions;

/// Login attempts per email and window before answering 429; a successful login resets the count.
pub const MAX_LOGIN_ATTEMPTS: u32 = 10;
pub const LOGIN_WINDOW_SECS: i64 = 15 * 60;

static OPENAPI: &str = include_str!("../openapi.json");

pub async fn router<S: Store>(app: &App<S>, req: Request) -> Response<Body> {
    let path = path(&req);
    // No route here takes a query parameter (`/health` and `/openapi.json` included).
    const NONE: &[&str] = &[];
    let result = match (segments(&path).as_slice(), req.method()) {
        (["auth", "register"], &Method::POST) => served(&req, NONE, || register(app, &req)).await,
        (["auth", "register"], _) => Err(method_not_allowed("POST")),
        (["auth", "login"], &Method::POST) => served(&req, NONE, || login(app, &req)).await,
        (["auth", "login"], _) => Err(method_not_allowed("POST")),
        (["auth", "me"], &Method::GET) => served(&req, NONE, || me(app, &req)).await,
        (["auth", "me"], _) => Err(method_not_allowed("GET")),
        (["auth", "refresh"], &Method::POST) => served(&req, NONE, || sessions::refresh(app, &req)).await,
        (["auth", "refresh"], _) => Err(method_not_allowed("POST")),
        (["auth", "logout"], &Method::POST) => served(&req, NONE, || sessions::logout(app, &req)).await,
        (["auth", "logout"], _) => Err(method_not_allowed("POST")),
        (["auth", "password"], &Method::POST) => served(&req, NONE, || sessions::change_password(app, &req)).await,
        (["auth", "password"], _) => Err(method_not_allowed("POST")),
        (["health"], &Method::GET) => {
            served(&req, NONE, || async { Ok(json_response(StatusCode::OK, &json!({ "status": "ok" }))) }).await
        }
        (["health"], _) => Err(method_not_allowed("GET")),
        (["openapi.json"], &Method::GET) => served(&req, NONE, || async { openapi() }).await,
        (["openapi.json"], _) => Err(method_not_allowed("GET")),
        _ => Err(Error::NotFound("route")),
    };
    respond(result)
}

// Fields optional so that a missing one is a `validation_failed` naming it; the schema (feature
// `openapi`) states what the handler requires.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterInput {
    /// Trimmed; 1-100 characters after trimming.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 1, max_length = 100, pattern = r"\S"))]
    name: Option<String>,
    /// Trimmed and stored lower-case; unique case-insensitively.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, format = Email, max_length = 254))]
    email: Option<String>,
    /// 8-128 characters. Hashed with argon2id; never returned.
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, min_length = 8, max_length = 128))]
    password: Option<String>,
    /// `attendee` (default, also for null) or `facilitator`. `admin` cannot be self-assigned:
    /// 403 `forbidden`. Any other value: 400 `validation_failed`.
    #[cfg_attr(feature = "openapi", schema(inline, value_type = Option<shared::openapi::SelfAssignedRole>, default = "attendee"))]
    role: Option<String>,
}

async fn register<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let input: RegisterInput = parse_json(req)?;
    let name = validate_name(&shared::model::required(input.name, "name")?)?;
    let email = normalize_email(&shared::model::required(input.email, "email")?)?;
    let password = shared::model::required(input.password, "password")?;
    validate_password(&password)?;
    let role = match input.role.as_deref() {
        None | Some("attendee") => Role::Attendee,
        Some("facilitator") => Role::Facilitator,
        Some("admin") => return Err(Error::Forbidden("the admin role is granted by operators only")),
        Some(_) => return Err(Error::validation("role", "must be `attendee` or `facilitator`")),
    };
    let user = User {
        id: new_id(),
        name,
        email,
        role,
        password_hash: app.passwords.hash(password).await?,
        created_at: time::now(),
        session_epoch: 0,
    };
    app.store.create_user(&user).await?;
    tracing::info!(user_id = %user.id, role = role.as_str(), "registered");
    Ok(json_response(StatusCode::CREATED, &user.view()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginInput {
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true, format = Email, max_length = 254))]
    email: Option<String>,
    #[cfg_attr(feature = "openapi", schema(value_type = String, required = true))]
    password: Option<String>,
}

async fn login<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let input: LoginInput = parse_json(req)?;
    let email = normalize_email(&shared::model::required(input.email, "email")?)?;
    let password = shared::model::required(input.password, "password")?;
    // Counted before the (slow) password check, so a burst of parallel guesses is cut off at
    // MAX_LOGIN_ATTEMPTS checks however many are in flight.
    app.store.count_login_attempt(&email, time::now(), LOGIN_WINDOW_SECS, MAX_LOGIN_ATTEMPTS).await?;
    let verified = match app.store.find_user_by_email(&email).await? {
        Some(user) => app.passwords.verify(password, user.password_hash.clone()).await?.then_some(user),
        None => {
            // Same work as a real check, so timing does not tell which emails have accounts.
            app.passwords.dummy_verify(password).await;
            None
        }
    };
    let user = verified.ok_or(Error::InvalidCredentials)?;
    app.store.clear_login_attempts(&email).await?;
    let refresh = sessions::start(app, &user).await?;
    sessions::tokens_response(app, &user, &refresh)
}

async fn me<S: Store>(app: &App<S>, req: &Request) -> Result<Response<Body>> {
    let caller = authenticate(req, &app.tokens)?;
    // A token outliving its account is no longer a valid credential.
    let user = app.store.get_user(&caller.id).await?.ok_or(Error::Unauthorized("account no longer exists"))?;
    Ok(json_response(StatusCode::OK, &user.view()))
}

fn openapi() -> Result<Response<Body>> {
    let mut resp = Response::new(Body::Text(OPENAPI.to_string()));
    resp.headers_mut().insert(
        lambda_http::http::header::CONTENT_TYPE,
        lambda_http::http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}
