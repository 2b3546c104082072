//! DynamoDB single-table adapter. Every write that must be unique or bounded is a condition
//! expression or a transaction, never a read followed by a write; failed conditions become the
//! typed errors of the contract. Reads on request paths are GetItem/BatchGetItem/Query only.

use super::{Actor, BookingContext, BookingPage, EventPage, EventQuery, Position, Store};
use crate::error::{Error, Result};
use crate::keys::{self, entity, Key};
use crate::model::{Booking, BookingStatus, Delivery, Event, EventPatch, IdempotencyRecord, LoginThrottle, Role, User};
use crate::time::{self, Timestamp};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, CancellationReason, Delete, KeysAndAttributes, Put, ReturnValue,
    ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use aws_sdk_dynamodb::Client;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

type Item = HashMap<String, AttributeValue>;

/// Attempts of one transaction when DynamoDB reports a `TransactionConflict` (another transaction
/// touching the same item, e.g. two bookings of one event at the same instant).
const TRANSACTION_ATTEMPTS: u32 = 6;

#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
}

impl DynamoStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoStore { client, table: table.into() }
    }

    /// Client from the standard AWS environment (`AWS_REGION`, credentials, `AWS_ENDPOINT_URL`),
    /// see [`crate::aws::sdk_config`].
    pub async fn from_env(table: impl Into<String>) -> Self {
        let config = crate::aws::sdk_config().await;
        Self::new(Client::new(&config), table)
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key_item((pk, sk): Key) -> Item {
    HashMap::from([(keys::PK.to_string(), s(pk)), (keys::SK.to_string(), s(sk))])
}

/// Serialises an entity and adds its keys. `null`s are dropped so that "no capacity" is an absent
/// attribute, which is what `attribute_not_exists(capacity)` in the conditions expects.
fn to_item<T: Serialize>(value: &T, key: Key, entity_name: &str) -> Result<Item> {
    let mut item: Item = serde_dynamo::to_item(value).map_err(Error::internal)?;
    item.retain(|_, v| !matches!(v, AttributeValue::Null(_)));
    item.extend(key_item(key));
    item.insert(keys::ENTITY.to_string(), s(entity_name));
    Ok(item)
}

/// Every item written goes through here: DynamoDB's limits are checked before DynamoDB sees it.
fn checked(item: Item) -> Result<Item> {
    crate::limits::check_item(&item)?;
    Ok(item)
}

fn from_item<T: DeserializeOwned>(item: Item) -> Result<T> {
    serde_dynamo::from_item(item).map_err(Error::internal)
}

fn event_item(event: &Event) -> Result<Item> {
    let mut item = to_item(event, keys::event(&event.id), entity::EVENT)?;
    let sort = keys::event_sort(&event.datetime, &event.id);
    item.insert(keys::GSI1PK.into(), s(keys::ALL_EVENTS));
    item.insert(keys::GSI1SK.into(), s(sort.clone()));
    item.insert(keys::GSI2PK.into(), s(keys::event_type(&event.event_type)));
    item.insert(keys::GSI2SK.into(), s(sort));
    Ok(item)
}

fn booking_item(b: &Booking) -> Result<Item> {
    let mut item = to_item(b, keys::booking(&b.id), entity::BOOKING)?;
    item.insert(keys::GSI1PK.into(), s(keys::user_bookings(&b.user_id)));
    item.insert(keys::GSI1SK.into(), s(keys::user_booking_sort(b.status.as_str(), &b.created_at, &b.id)));
    item.insert(keys::GSI2PK.into(), s(keys::event_bookings(&b.event_id)));
    item.insert(keys::GSI2SK.into(), s(keys::event_booking_sort(&b.created_at, &b.id)));
    Ok(item)
}

/// Throttling and network trouble are the client's to retry (503); everything else is a bug or
/// a misconfiguration (500). The detail is logged by the HTTP layer, never sent.
fn sdk_error<E, R>(op: &str, err: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => {
            Error::Unavailable(format!("{op}: {}", aws_smithy_types::error::display::DisplayErrorContext(&err)))
        }
        _ => {
            let code = err.code().unwrap_or_default();
            let detail = format!("{op}: {}", aws_smithy_types::error::display::DisplayErrorContext(&err));
            match code {
                "ProvisionedThroughputExceededException"
                | "ThrottlingException"
                | "RequestLimitExceeded"
                | "TransactionInProgressException"
                | "InternalServerError"
                | "ServiceUnavailable" => Error::Unavailable(detail),
                _ => Error::Internal(detail),
            }
        }
    }
}

fn is_condition_failed<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    err.code() == Some("ConditionalCheckFailedException")
}

/// Why a transaction did not commit: per item, whether its condition failed (with the old item
/// when DynamoDB returned it), or any other error.
enum TxFailure {
    Conditions(Vec<Option<Option<Item>>>),
    Failed(Error),
}

/// A cancelled transaction as [`classify_tx`] sees it; conflicts are retried by
/// [`DynamoStore::transact`] and never reach the callers.
enum TxAttempt {
    Conflict,
    /// The outcome is unknown: the SDK gave up on timeouts or server errors (it may have
    /// committed), or the same token is still being applied. Asking again with the same token
    /// returns the outcome without running the transaction twice.
    Unknown(Error),
    Done(TxFailure),
}

fn classify_tx(err: SdkError<TransactWriteItemsError, aws_smithy_runtime_api::http::Response>) -> TxAttempt {
    if let SdkError::ServiceError(ctx) = &err {
        if let TransactWriteItemsError::TransactionCanceledException(e) = ctx.err() {
            let reasons: &[CancellationReason] = e.cancellation_reasons();
            if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
                return TxAttempt::Conflict;
            }
            if reasons.iter().any(|r| r.code() == Some("ConditionalCheckFailed")) {
                return TxAttempt::Done(TxFailure::Conditions(
                    reasons
                        .iter()
                        .map(|r| (r.code() == Some("ConditionalCheckFailed")).then(|| r.item().cloned()))
                        .collect(),
                ));
            }
            if reasons
                .iter()
                .any(|r| matches!(r.code(), Some("ThrottlingError") | Some("ProvisionedThroughputExceeded")))
            {
                return TxAttempt::Done(TxFailure::Failed(Error::Unavailable("transaction throttled".into())));
            }
        }
        match ctx.err().code() {
            Some("TransactionConflictException") => return TxAttempt::Conflict,
            Some("TransactionInProgressException") => {
                return TxAttempt::Unknown(Error::Unavailable("transaction in progress".into()))
            }
            Some("InternalServerError") | Some("ServiceUnavailable") => {
                return TxAttempt::Unknown(sdk_error("TransactWriteItems", err))
            }
            _ => {}
        }
    }
    if matches!(err, SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)) {
        return TxAttempt::Unknown(sdk_error("TransactWriteItems", err));
    }
    TxAttempt::Done(TxFailure::Failed(sdk_error("TransactWriteItems", err)))
}

/// DynamoDB accepts 1–36 characters: a ULID (26) and the attempt number fit.
fn client_request_token(operation: &str, attempt: u32) -> String {
    let mut token: String = operation.chars().take(30).collect();
    token.push('.');
    token.push_str(&attempt.to_string());
    token
}

fn failed(reasons: &[Option<Option<Item>>], index: usize) -> Option<&Option<Item>> {
    reasons.get(index).and_then(|r| r.as_ref())
}

fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let base = 10u64 << attempt.min(5);
    Duration::from_millis(rand::thread_rng().gen_range(base / 2..=base))
}

impl DynamoStore {
    async fn get(&self, key: Key) -> Result<Option<Item>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key_item(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error("GetItem", e))?;
        Ok(out.item)
    }

    async fn get_as<T: DeserializeOwned>(&self, key: Key) -> Result<Option<T>> {
        self.get(key).await?.map(from_item).transpose()
    }

    /// BatchGetItem in chunks of 100 keys, re-asking for unprocessed keys a bounded number of times.
    async fn batch_get(&self, keys: Vec<Key>) -> Result<Vec<Item>> {
        let mut out = Vec::with_capacity(keys.len());
        let mut unique = keys;
        unique.sort();
        unique.dedup();
        for chunk in unique.chunks(100) {
            let mut pending = Some(
                KeysAndAttributes::builder()
                    .set_keys(Some(chunk.iter().cloned().map(key_item).collect()))
                    .consistent_read(true)
                    .build()
                    .map_err(Error::internal)?,
            );
            let mut attempt = 0;
            while let Some(request) = pending.take() {
                let resp = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, request)
                    .send()
                    .await
                    .map_err(|e| sdk_error("BatchGetItem", e))?;
                if let Some(mut responses) = resp.responses {
                    out.extend(responses.remove(&self.table).unwrap_or_default());
                }
                if let Some(mut unprocessed) = resp.unprocessed_keys {
                    if let Some(rest) = unprocessed.remove(&self.table).filter(|k| !k.keys().is_empty()) {
                        attempt += 1;
                        if attempt >= TRANSACTION_ATTEMPTS {
                            return Err(Error::Unavailable("BatchGetItem kept returning unprocessed keys".into()));
                        }
                        tokio::time::sleep(backoff(attempt)).await;
                        pending = Some(rest);
                    }
                }
            }
        }
        Ok(out)
    }

    /// Runs a transaction until it commits or fails for a reason of its own.
    ///
    /// `operation` names this one logical write (a fresh id per request) and becomes the
    /// `ClientRequestToken`. The SDK already reuses one token across its own retries; ours also
    /// survives the SDK giving up: when its answers are lost (timeouts, 500s) the transaction may
    /// have committed, and sending it again under the same token makes DynamoDB answer with that
    /// outcome instead of running it twice, which would fail our own conditions
    /// (`already_booked`, `already_cancelled`) for a write that worked. A `TransactionConflict`
    /// wrote nothing, so its retry is a new attempt with a new token.
    async fn transact(&self, items: Vec<TransactWriteItem>, operation: &str) -> std::result::Result<(), TxFailure> {
        let (mut attempt, mut tries) = (0, 0);
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .client_request_token(client_request_token(operation, attempt))
                .send()
                .await;
            let Err(e) = result else { return Ok(()) };
            tries += 1;
            let last_try = tries >= TRANSACTION_ATTEMPTS;
            match classify_tx(e) {
                TxAttempt::Done(failure) => return Err(failure),
                TxAttempt::Conflict if last_try => {
                    return Err(TxFailure::Failed(Error::Unavailable("transaction kept conflicting".into())))
                }
                TxAttempt::Unknown(e) if last_try => return Err(TxFailure::Failed(e)),
                TxAttempt::Conflict => attempt += 1,
                TxAttempt::Unknown(e) => tracing::warn!(error = %e, tries, "transaction outcome unknown; asking again"),
            }
            tokio::time::sleep(backoff(tries)).await;
        }
    }

    /// The event as it is now, from the item DynamoDB returned with the failed condition or, when
    /// it returned none, from a fresh read: only failure paths pay for this read.
    async fn event_after_failure(&self, returned: Option<Item>, id: &str) -> Result<Option<Event>> {
        match returned.filter(|item| !item.is_empty()) {
            Some(item) => Ok(Some(from_item(item)?)),
            None => self.get_as(keys::event(id)).await,
        }
    }

    /// Why a conditional write of an event failed: it is gone (404), the actor may not change it
    /// (403), or else the write's own rule (`otherwise`) was broken.
    async fn explain_event_write(&self, returned: Option<Item>, id: &str, actor: Actor<'_>, otherwise: Error) -> Error {
        match self.event_after_failure(returned, id).await {
            Ok(None) => Error::NotFound("event"),
            Ok(Some(event)) => actor.check(&event).err().unwrap_or(otherwise),
            Err(e) => e,
        }
    }

    fn put(&self, item: Item, condition: &str) -> Result<Put> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(checked(item)?))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(Error::internal)
    }
}

fn actor_condition(actor: Actor<'_>, names: &mut HashMap<String, String>, values: &mut Item) -> String {
    match actor {
        Actor::Admin => String::new(),
        Actor::Owner(id) => {
            names.insert("#owner".into(), "owner_id".into());
            values.insert(":owner".into(), s(id));
            " AND #owner = :owner".into()
        }
    }
}

impl Store for DynamoStore {
    async fn create_user(&self, user: &User) -> Result<()> {
        let user_item = to_item(user, keys::user(&user.id), entity::USER)?;
        let mut guard = key_item(keys::email(&user.email));
        guard.insert(keys::ENTITY.into(), s(entity::EMAIL));
        guard.insert("user_id".into(), s(&user.id));
        let items = vec![
            TransactWriteItem::builder().put(self.put(user_item, "attribute_not_exists(PK)")?).build(),
            TransactWriteItem::builder().put(self.put(guard, "attribute_not_exists(PK)")?).build(),
        ];
        match self.transact(items, &user.id).await {
            Ok(()) => Ok(()),
            Err(TxFailure::Conditions(reasons)) if failed(&reasons, 1).is_some() => Err(Error::EmailTaken),
            Err(TxFailure::Conditions(_)) => Err(Error::internal("user id collision")),
            Err(TxFailure::Failed(e)) => Err(e),
        }
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        self.get_as(keys::user(id)).await
    }

    async fn event_and_user(&self, event_id: &str, user_id: &str) -> Result<(Option<Event>, Option<User>)> {
        let (mut event, mut user) = (None, None);
        for item in self.batch_get(vec![keys::event(event_id), keys::user(user_id)]).await? {
            match item.get(keys::ENTITY) {
                Some(AttributeValue::S(e)) if e == entity::EVENT => event = Some(from_item(item)?),
                Some(AttributeValue::S(e)) if e == entity::USER => user = Some(from_item(item)?),
                _ => {}
            }
        }
        Ok((event, user))
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        let Some(guard) = self.get(keys::email(email)).await? else {
            return Ok(None);
        };
        match guard.get("user_id") {
            Some(AttributeValue::S(id)) => self.get_user(id).await,
            _ => Err(Error::internal(format!("email guard for {email} has no user_id"))),
        }
    }

    async fn set_user_role(&self, user_id: &str, role: Role) -> Result<()> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::user(user_id))))
            .update_expression("SET #role = :role")
            .condition_expression("attribute_exists(PK)")
            .expression_attribute_names("#role", "role")
            .expression_attribute_values(":role", s(role.as_str()))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(Error::NotFound("user")),
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn count_login_attempt(&self, email: &str, now: Timestamp, window_secs: i64, max: u32) -> Result<()> {
        let now = now.timestamp();
        let cutoff = now - window_secs;
        // No read: count in the open window while room is left, or open a new window when the
        // stored one has expired. A racing writer makes one of them fail; look again.
        for _ in 0..4 {
            let counted = self
                .client
                .update_item()
                .table_name(&self.table)
                .set_key(Some(key_item(keys::login_throttle(email))))
                .update_expression("ADD attempts :one")
                .condition_expression("window_start > :cutoff AND attempts < :max")
                .expression_attribute_values(":one", n(1))
                .expression_attribute_values(":cutoff", n(cutoff))
                .expression_attribute_values(":max", n(max))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let current: Option<LoginThrottle> = match counted {
                Ok(_) => return Ok(()),
                Err(e) if is_condition_failed(&e) => match e.into_service_error() {
                    UpdateItemError::ConditionalCheckFailedException(c) => c.item.map(from_item).transpose()?,
                    _ => None,
                },
                Err(e) => return Err(sdk_error("UpdateItem", e)),
            };
            match current {
                Some(t) if t.window_start > cutoff && t.attempts >= max => return Err(t.refusal(now, window_secs)),
                // Room left in a live window: a racing request just opened it; count in it.
                Some(t) if t.window_start > cutoff => continue,
                _ => {}
            }
            let fresh = LoginThrottle { attempts: 1, window_start: now };
            let mut item = to_item(&fresh, keys::login_throttle(email), entity::LOGIN_THROTTLE)?;
            item.insert(keys::TTL.into(), n(now + window_secs));
            let opened = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(checked(item)?))
                .condition_expression("attribute_not_exists(PK) OR window_start <= :cutoff")
                .expression_attribute_values(":cutoff", n(cutoff))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .send()
                .await;
            let current: Option<LoginThrottle> = match opened {
                Ok(_) => return Ok(()),
                Err(e) if is_condition_failed(&e) => match e.into_service_error() {
                    PutItemError::ConditionalCheckFailedException(c) => c.item.map(from_item).transpose()?,
                    _ => None,
                },
                Err(e) => return Err(sdk_error("PutItem", e)),
            };
            // Another request opened the window first: full already, or count in it next round.
            if let Some(t) = current.filter(|t| t.attempts >= max) {
                return Err(t.refusal(now, window_secs));
            }
        }
        Err(Error::Unavailable("login throttle contended".into()))
    }

    async fn clear_login_attempts(&self, email: &str) -> Result<()> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::login_throttle(email))))
            .send()
            .await
            .map_err(|e| sdk_error("DeleteItem", e))?;
        Ok(())
    }

    async fn create_event(&self, event: &Event) -> Result<()> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(checked(event_item(event)?)?))
            .condition_expression("attribute_not_exists(PK)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => Err(Error::internal(format!("event {} already exists", event.id))),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }

    async fn get_event(&self, id: &str) -> Result<Option<Event>> {
        self.get_as(keys::event(id)).await
    }

    async fn get_events(&self, ids: &[String]) -> Result<Vec<Event>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let items = self.batch_get(ids.iter().map(|id| keys::event(id)).collect()).await?;
        items.into_iter().map(from_item).collect()
    }

    async fn update_event(&self, id: &str, patch: &EventPatch, actor: Actor<'_>, now: Timestamp) -> Result<Event> {
        let mut names: HashMap<String, String> = HashMap::new();
        let mut values: Item = HashMap::new();
        let mut set: Vec<String> = Vec::new();
        let mut remove: Vec<String> = Vec::new();
        let mut assign = |attr: &str, value: Option<AttributeValue>, names: &mut HashMap<String, String>| {
            let placeholder = format!("#{attr}");
            names.insert(placeholder.clone(), attr.to_string());
            match value {
                Some(v) => {
                    values.insert(format!(":{attr}"), v);
                    set.push(format!("{placeholder} = :{attr}"));
                }
                None => remove.push(placeholder),
            }
        };
        if let Some(v) = &patch.title {
            assign("title", Some(s(v)), &mut names);
        }
        if let Some(v) = &patch.description {
            assign("description", Some(s(v)), &mut names);
        }
        if let Some(v) = &patch.duration_minutes {
            assign("duration_minutes", Some(n(v)), &mut names);
        }
        if let Some(v) = &patch.facilitator_id {
            assign("facilitator_id", Some(s(v)), &mut names);
        }
        if let Some(v) = &patch.event_type {
            assign("type", Some(s(v)), &mut names);
            assign(keys::GSI2PK, Some(s(keys::event_type(v))), &mut names);
        }
        if let Some(v) = &patch.rating {
            assign("rating", v.map(n), &mut names);
        }
        if let Some(v) = &patch.capacity {
            assign("capacity", v.map(n), &mut names);
        }
        if let Some(v) = &patch.datetime {
            let sort = keys::event_sort(v, id);
            assign("datetime", Some(s(time::format(v))), &mut names);
            assign(keys::GSI1SK, Some(s(sort.clone())), &mut names);
            assign(keys::GSI2SK, Some(s(sort)), &mut names);
        }
        assign("updated_at", Some(s(time::format(&now))), &mut names);
        let mut expression = format!("SET {}", set.join(", "));
        if !remove.is_empty() {
            expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
        }
        let mut condition = "attribute_exists(PK)".to_string();
        condition.push_str(&actor_condition(actor, &mut names, &mut values));
        if let Some(Some(cap)) = patch.capacity {
            names.insert("#seats".into(), "seats_booked".into());
            values.insert(":newcap".into(), n(cap));
            condition.push_str(" AND (attribute_not_exists(#seats) OR #seats <= :newcap)");
        }
        crate::limits::check_values(&values)?;
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::event(id))))
            .update_expression(expression)
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(out) => from_item(out.attributes.unwrap_or_default()),
            Err(e) if is_condition_failed(&e) => {
                let old = e.as_service_error().and_then(|se| match se {
                    UpdateItemError::ConditionalCheckFailedException(c) => {
                        c.item().cloned()
                    }
                    _ => None,
                });
                Err(self.explain_event_write(old, id, actor, Error::CapacityBelowBooked).await)
            }
            Err(e) => Err(sdk_error("UpdateItem", e)),
        }
    }

    async fn delete_event(&self, id: &str, actor: Actor<'_>) -> Result<()> {
        let mut names = HashMap::from([("#seats".to_string(), "seats_booked".to_string())]);
        let mut values: Item = HashMap::from([(":zero".to_string(), n(0))]);
        let condition = format!(
            "attribute_exists(PK){} AND (attribute_not_exists(#seats) OR #seats = :zero)",
            actor_condition(actor, &mut names, &mut values)
        );
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::event(id))))
            .condition_expression(condition)
            .set_expression_attribute_names(Some(names))
            .set_expression_attribute_values(Some(values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failed(&e) => {
                let old = e.as_service_error().and_then(|se| match se {
                    aws_sdk_dynamodb::operation::delete_item::DeleteItemError::ConditionalCheckFailedException(c) => {
                        c.item().cloned()
                    }
                    _ => None,
                });
                Err(self.explain_event_write(old, id, actor, Error::EventHasBookings).await)
            }
            Err(e) => Err(sdk_error("DeleteItem", e)),
        }
    }

    async fn list_events(&self, q: &EventQuery) -> Result<EventPage> {
        let (index, pk_attr, sk_attr, partition) = match &q.event_type {
            Some(t) => (keys::GSI2, keys::GSI2PK, keys::GSI2SK, keys::event_type(t)),
            None => (keys::GSI1, keys::GSI1PK, keys::GSI1SK, keys::ALL_EVENTS.to_string()),
        };
        // Every sort key starts with a year's digits ("0"…) and ends before "~".
        let lo = q.from.map(|t| time::format(&t)).unwrap_or_else(|| "0".into());
        let hi = q.to.map(|t| format!("{}#~", time::format(&t))).unwrap_or_else(|| "~".into());
        let mut request = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(index)
            .key_condition_expression("#pk = :pk AND #sk BETWEEN :lo AND :hi")
            .expression_attribute_names("#pk", pk_attr)
            .expression_attribute_names("#sk", sk_attr)
            .expression_attribute_values(":pk", s(&partition))
            .expression_attribute_values(":lo", s(lo))
            .expression_attribute_values(":hi", s(hi))
            .scan_index_forward(true)
            .limit(i32::try_from(q.limit + 1).unwrap_or(i32::MAX));
        if let Some(min) = q.min_rating {
            crate::limits::check_number("rating", &min.to_string())?;
            request = request
                .filter_expression("#rating >= :min")
                .expression_attribute_names("#rating", "rating")
                .expression_attribute_values(":min", n(min));
        }
        if let Some(after) = &q.after {
            let mut start = key_item(keys::event(&after.id));
            start.insert(pk_attr.into(), s(&partition));
            start.insert(sk_attr.into(), s(keys::event_sort(&after.at, &after.id)));
            request = request.set_exclusive_start_key(Some(start));
        }
        let out = request.send().await.map_err(|e| sdk_error("Query", e))?;
        let items: Vec<Event> = out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_>>()?;
        if items.len() > q.limit {
            let mut items = items;
            items.truncate(q.limit);
            let next = items.last().map(Position::of_event);
            return Ok(EventPage { items, next });
        }
        let next = out.last_evaluated_key.and_then(|k| match k.get(sk_attr) {
            Some(AttributeValue::S(v)) => keys::position_from_sort(v),
            _ => None,
        });
        Ok(EventPage { items, next })
    }

    async fn booking_context(
        &self,
        event_id: &str,
        user_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<BookingContext> {
        let mut wanted = vec![keys::event(event_id), keys::attendee(event_id, user_id)];
        wanted.extend(idempotency_key.map(|k| keys::idempotency(user_id, k)));
        let mut context = BookingContext::default();
        for item in self.batch_get(wanted).await? {
            match item.get(keys::ENTITY) {
                Some(AttributeValue::S(e)) if e == entity::EVENT => context.event = Some(from_item(item)?),
                Some(AttributeValue::S(e)) if e == entity::ATTENDEE => context.already_booked = true,
                Some(AttributeValue::S(e)) if e == entity::IDEMPOTENCY => context.idempotency = Some(from_item(item)?),
                _ => {}
            }
        }
        Ok(context)
    }

    async fn create_booking(&self, booking: &Booking, idem: Option<&IdempotencyRecord>, now: Timestamp) -> Result<()> {
        let seat = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::event(&booking.event_id))))
            .update_expression("ADD #seats :one")
            .condition_expression(
                "attribute_exists(PK) AND #dt > :now AND (attribute_not_exists(#cap) OR #seats < #cap)",
            )
            .expression_attribute_names("#seats", "seats_booked")
            .expression_attribute_names("#cap", "capacity")
            .expression_attribute_names("#dt", "datetime")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":now", s(time::format(&now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(Error::internal)?;
        let mut guard = key_item(keys::attendee(&booking.event_id, &booking.user_id));
        guard.insert(keys::ENTITY.into(), s(entity::ATTENDEE));
        guard.insert("booking_id".into(), s(&booking.id));
        let mut items = vec![
            TransactWriteItem::builder().update(seat).build(),
            TransactWriteItem::builder().put(self.put(guard, "attribute_not_exists(PK)")?).build(),
            TransactWriteItem::builder().put(self.put(booking_item(booking)?, "attribute_not_exists(PK)")?).build(),
        ];
        if let Some(rec) = idem {
            let item = to_item(rec, keys::idempotency(&rec.user_id, &rec.key), entity::IDEMPOTENCY)?;
            // An expired record can outlive its TTL for a while; it no longer counts.
            let put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(checked(item)?))
                .condition_expression("attribute_not_exists(PK) OR #ttl <= :epoch")
                .expression_attribute_names("#ttl", keys::TTL)
                .expression_attribute_values(":epoch", n(now.timestamp()))
                .build()
                .map_err(Error::internal)?;
            items.push(TransactWriteItem::builder().put(put).build());
        }
        let reasons = match self.transact(items, &booking.id).await {
            Ok(()) => return Ok(()),
            Err(TxFailure::Conditions(reasons)) => reasons,
            Err(TxFailure::Failed(e)) => return Err(e),
        };
        // DynamoDB reports every failed condition of the transaction; answer with the first in the
        // contract's order, as the embedded store does.
        if failed(&reasons, 3).is_some() {
            return Err(Error::IdempotencyKeyReused);
        }
        let seat = match failed(&reasons, 0) {
            Some(returned) => Some(
                self.event_after_failure(returned.clone(), &booking.event_id)
                    .await?
                    .ok_or(Error::NotFound("event"))?,
            ),
            None => None,
        };
        if failed(&reasons, 1).is_some() {
            return Err(Error::AlreadyBooked);
        }
        match seat {
            Some(event) if event.datetime <= now => Err(Error::EventStarted),
            Some(_) => Err(Error::EventFull),
            None => Err(Error::internal("booking id collision")),
        }
    }

    async fn get_booking(&self, id: &str) -> Result<Option<Booking>> {
        self.get_as(keys::booking(id)).await
    }

    async fn cancel_booking(&self, booking: &Booking, now: Timestamp) -> Result<Booking> {
        let mut cancelled = booking.clone();
        cancelled.status = BookingStatus::Cancelled;
        cancelled.cancelled_at = Some(now);
        let status = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::booking(&booking.id))))
            .update_expression("SET #st = :cancelled, cancelled_at = :now, #gsk = :gsk")
            .condition_expression("#st = :confirmed")
            .expression_attribute_names("#st", "status")
            .expression_attribute_names("#gsk", keys::GSI1SK)
            .expression_attribute_values(":cancelled", s(BookingStatus::Cancelled.as_str()))
            .expression_attribute_values(":confirmed", s(BookingStatus::Confirmed.as_str()))
            .expression_attribute_values(":now", s(time::format(&now)))
            .expression_attribute_values(
                ":gsk",
                s(keys::user_booking_sort(BookingStatus::Cancelled.as_str(), &booking.created_at, &booking.id)),
            )
            .build()
            .map_err(Error::internal)?;
        let guard = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::attendee(&booking.event_id, &booking.user_id))))
            .build()
            .map_err(Error::internal)?;
        let seat = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_item(keys::event(&booking.event_id))))
            .update_expression("ADD #seats :minus")
            .condition_expression("attribute_exists(PK) AND #dt > :now AND #seats > :zero")
            .expression_attribute_names("#seats", "seats_booked")
            .expression_attribute_names("#dt", "datetime")
            .expression_attribute_values(":minus", n(-1))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":now", s(time::format(&now)))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(Error::internal)?;
        let items = vec![
            TransactWriteItem::builder().update(status).build(),
            TransactWriteItem::builder().delete(guard).build(),
            TransactWriteItem::builder().update(seat).build(),
        ];
        // A token per cancel request, not per booking: a second request to cancel must hear
        // `already_cancelled`, not the first request's success replayed.
        let reasons = match self.transact(items, &crate::model::new_id()).await {
            Ok(()) => return Ok(cancelled),
            Err(TxFailure::Conditions(reasons)) => reasons,
            Err(TxFailure::Failed(e)) => return Err(e),
        };
        if failed(&reasons, 0).is_some() {
            return Err(Error::AlreadyCancelled);
        }
        if let Some(returned) = failed(&reasons, 2) {
            let event =
                self.event_after_failure(returned.clone(), &booking.event_id).await?.ok_or(Error::NotFound("event"))?;
            if event.datetime <= now {
                return Err(Error::EventStarted);
            }
        }
        Err(Error::internal("confirmed booking on an event with no seats booked"))
    }

    async fn list_user_bookings(&self, user_id: &str, status: BookingStatus, limit: usize) -> Result<Vec<Booking>> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI1)
            .key_condition_expression("#pk = :pk AND begins_with(#sk, :prefix)")
            .expression_attribute_names("#pk", keys::GSI1PK)
            .expression_attribute_names("#sk", keys::GSI1SK)
            .expression_attribute_values(":pk", s(keys::user_bookings(user_id)))
            .expression_attribute_values(":prefix", s(format!("{}#", status.as_str())))
            .scan_index_forward(false)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        out.items.unwrap_or_default().into_iter().map(from_item).collect()
    }

    async fn list_event_bookings(&self, event_id: &str, after: Option<&Position>, limit: usize) -> Result<BookingPage> {
        let partition = keys::event_bookings(event_id);
        let start = after.map(|p| {
            let mut key = key_item(keys::booking(&p.id));
            key.insert(keys::GSI2PK.into(), s(&partition));
            key.insert(keys::GSI2SK.into(), s(keys::event_booking_sort(&p.at, &p.id)));
            key
        });
        // One more than asked tells whether another page exists without an empty last page.
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(keys::GSI2)
            .key_condition_expression("#pk = :pk")
            .expression_attribute_names("#pk", keys::GSI2PK)
            .expression_attribute_values(":pk", s(partition))
            .scan_index_forward(true)
            .limit(i32::try_from(limit + 1).unwrap_or(i32::MAX))
            .set_exclusive_start_key(start)
            .send()
            .await
            .map_err(|e| sdk_error("Query", e))?;
        let mut items: Vec<Booking> =
            out.items.unwrap_or_default().into_iter().map(from_item).collect::<Result<_>>()?;
        let more = items.len() > limit;
        items.truncate(limit);
        let next = if more { items.last().map(Position::of_booking) } else { None };
        Ok(BookingPage { items, next })
    }

    async fn get_idempotency(&self, user_id: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        self.get_as(keys::idempotency(user_id, key)).await
    }

    async fn get_delivery(&self, booking_id: &str) -> Result<Option<Delivery>> {
        self.get_as(keys::delivery(booking_id)).await
    }

    async fn get_deliveries(&self, booking_ids: &[String]) -> Result<Vec<Delivery>> {
        if booking_ids.is_empty() {
            return Ok(Vec::new());
        }
        let items = self.batch_get(booking_ids.iter().map(|id| keys::delivery(id)).collect()).await?;
        items.into_iter().map(from_item).collect()
    }

    async fn put_delivery(&self, delivery: &Delivery) -> Result<bool> {
        let item = to_item(delivery, keys::delivery(&delivery.booking_id), entity::DELIVERY)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(checked(item)?))
            .condition_expression("attribute_not_exists(PK) OR #st <> :delivered")
            .expression_attribute_names("#st", "status")
            .expression_attribute_values(":delivered", s("delivered"))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if is_condition_failed(&e) => Ok(false),
            Err(e) => Err(sdk_error("PutItem", e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeliveryStatus;

    #[test]
    fn delivered_status_matches_the_put_delivery_condition() {
        assert_eq!(serde_json::to_value(DeliveryStatus::Delivered).unwrap(), serde_json::json!("delivered"));
    }

    #[test]
    fn items_drop_nulls_and_carry_keys() {
        let now = time::now();
        let ev = Event {
            id: "E1".into(),
            title: "t".into(),
            description: String::new(),
            datetime: now,
            duration_minutes: 60,
            facilitator_id: "F".into(),
            event_type: "Yoga".into(),
            rating: None,
            capacity: None,
            seats_booked: 0,
            owner_id: "U".into(),
            created_at: now,
            updated_at: now,
        };
        let item = event_item(&ev).unwrap();
        assert!(!item.contains_key("capacity") && !item.contains_key("rating"));
        assert_eq!(item.get("GSI2PK"), Some(&s("TYPE#yoga")));
        assert_eq!(from_item::<Event>(item).unwrap(), ev);
    }
}
