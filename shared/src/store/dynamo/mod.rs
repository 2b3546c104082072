//! DynamoDB single-table adapter. Every write that must be unique or bounded is a condition
//! expression or a transaction, never a read followed by a write; failed conditions become the
//! typed errors of the contract. Reads on request paths are GetItem/BatchGetItem/Query only.

//!
//! This module is the plumbing (client, error mapping, batch reads, retries), `tx` the
//! transactions; `items` declares how each entity is stored; `users`, `sessions`, `events`,
//! `bookings`, `deliveries`, `payments` and `jobs` hold the operations per entity.

mod bookings;
mod buckets;
mod cancel;
mod deliveries;
mod events;
mod items;
mod jobs;
mod payments;
mod sessions;
mod tx;
mod users;
mod waitlist;

use super::{
    Actor, BookingContext, BookingMessages, BookingPage, Claim, Claimed, EventPage, EventQuery, PendingPage,
    PendingQuery, Position, Rotated, Rotation, Settled, Settlement, Store, TaskPage,
};
use crate::error::{Error, Result};
use crate::keys::Key;
use crate::model::{
    Booking, BookingStatus, CancelReason, Delivery, Event, EventPatch, IdempotencyRecord, Job, Role, Session, User,
};
use crate::time::Timestamp;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{KeysAndAttributes, Put, ReturnValuesOnConditionCheckFailure};
use aws_sdk_dynamodb::Client;
use buckets::day_bucket_page;
use items::{from_item, key_item, Entity, Item};
use serde::de::DeserializeOwned;
use std::time::Duration;
use tx::{failed, TxFailure};

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

    /// The store of a Lambda function: [`crate::aws::lambda_dynamodb_client`].
    pub fn for_lambda(table: impl Into<String>) -> Result<Self> {
        Ok(Self::new(crate::aws::lambda_dynamodb_client()?, table))
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }
}

/// Throttling, network trouble, an item write refused while a transaction holds the item
/// (`TransactionConflictException`) are the client's to retry (503); everything else is a bug or
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
                | "TransactionConflictException"
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

    /// A conditional Put of an entity for a transaction; the old item comes back when the
    /// condition fails.
    fn put(&self, entity: &impl Entity, condition: &str) -> Result<Put> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(entity.to_item()?))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(Error::internal)
    }
}

impl Store for DynamoStore {
    async fn join_waitlist(&self, entry: &crate::model::WaitEntry, now: Timestamp) -> Result<u32> {
        waitlist::join_waitlist(self, entry, now).await
    }

    async fn leave_waitlist(&self, event_id: &str, user_id: &str) -> Result<()> {
        waitlist::leave_waitlist(self, event_id, user_id).await
    }

    async fn waitlist(&self, event_id: &str, after: Option<&Position>, limit: usize) -> Result<super::WaitPage> {
        waitlist::waitlist(self, event_id, after, limit).await
    }

    async fn user_waitlist(&self, user_id: &str) -> Result<Vec<crate::model::Waiting>> {
        waitlist::user_waitlist(self, user_id).await
    }

    async fn promote_waitlist(&self, event_id: &str, now: Timestamp, limit: usize) -> Result<u32> {
        waitlist::promote_waitlist(self, event_id, now, limit).await
    }

    async fn clear_waitlist(&self, event_id: &str, limit: usize) -> Result<u32> {
        waitlist::clear_waitlist(self, event_id, limit).await
    }

    async fn create_user(&self, user: &User) -> Result<()> {
        users::create_user(self, user).await
    }

    async fn get_user(&self, id: &str) -> Result<Option<User>> {
        users::get_user(self, id).await
    }

    async fn event_and_user(&self, event_id: &str, user_id: &str) -> Result<(Option<Event>, Option<User>)> {
        users::event_and_user(self, event_id, user_id).await
    }

    async fn find_user_by_email(&self, email: &str) -> Result<Option<User>> {
        users::find_user_by_email(self, email).await
    }

    async fn set_user_role(&self, user_id: &str, role: Role) -> Result<()> {
        users::set_user_role(self, user_id, role).await
    }

    async fn count_login_attempt(&self, email: &str, now: Timestamp, window_secs: i64, max: u32) -> Result<()> {
        users::count_login_attempt(self, email, now, window_secs, max).await
    }

    async fn clear_login_attempts(&self, email: &str) -> Result<()> {
        users::clear_login_attempts(self, email).await
    }

    async fn create_session(&self, session: &Session) -> Result<()> {
        sessions::create_session(self, session).await
    }

    async fn get_session(&self, family_id: &str) -> Result<Option<Session>> {
        sessions::get_session(self, family_id).await
    }

    async fn session_and_user(&self, family_id: &str, user_id: &str) -> Result<(Option<Session>, Option<User>)> {
        sessions::session_and_user(self, family_id, user_id).await
    }

    async fn rotate_session(&self, r: &Rotation<'_>) -> Result<Rotated> {
        sessions::rotate_session(self, r).await
    }

    async fn revoke_session(&self, family_id: &str) -> Result<()> {
        sessions::revoke_session(self, family_id).await
    }

    async fn change_password(&self, user_id: &str, old_hash: &str, new_hash: &str, epoch: u64) -> Result<()> {
        sessions::change_password(self, user_id, old_hash, new_hash, epoch).await
    }

    async fn create_event(&self, event: &Event) -> Result<()> {
        events::create_event(self, event).await
    }

    async fn get_event(&self, id: &str) -> Result<Option<Event>> {
        events::get_event(self, id).await
    }

    async fn get_events(&self, ids: &[String]) -> Result<Vec<Event>> {
        events::get_events(self, ids).await
    }

    async fn update_event(&self, id: &str, patch: &EventPatch, actor: Actor<'_>, now: Timestamp) -> Result<Event> {
        events::update_event(self, id, patch, actor, now).await
    }

    async fn delete_event(&self, id: &str, actor: Actor<'_>) -> Result<()> {
        events::delete_event(self, id, actor).await
    }

    async fn list_events(&self, q: &EventQuery) -> Result<EventPage> {
        events::list_events(self, q).await
    }

    async fn cancel_event(&self, id: &str, reason: Option<&str>, actor: Actor<'_>, now: Timestamp) -> Result<Event> {
        jobs::cancel_event(self, id, reason, actor, now).await
    }

    async fn get_job(&self, event_id: &str) -> Result<Option<Job>> {
        jobs::get_job(self, event_id).await
    }

    async fn claim_job(&self, event_id: &str, owner: &str, now: Timestamp, until: Timestamp) -> Result<Option<Job>> {
        jobs::claim_job(self, event_id, owner, now, until).await
    }

    async fn save_job(&self, job: &Job, owner: &str) -> Result<bool> {
        jobs::save_job(self, job, owner).await
    }

    async fn finish_job(&self, job: &Job, owner: &str) -> Result<bool> {
        jobs::finish_job(self, job, owner).await
    }

    async fn due_jobs(&self, now: Timestamp, limit: usize) -> Result<Vec<Job>> {
        jobs::due_jobs(self, now, limit).await
    }

    async fn booking_context(
        &self,
        event_id: &str,
        user_id: &str,
        idempotency_key: Option<&str>,
    ) -> Result<BookingContext> {
        bookings::booking_context(self, event_id, user_id, idempotency_key).await
    }

    async fn create_booking(&self, booking: &Booking, idem: Option<&IdempotencyRecord>, now: Timestamp) -> Result<()> {
        bookings::create_booking(self, booking, idem, now).await
    }

    async fn get_booking(&self, id: &str) -> Result<Option<Booking>> {
        bookings::get_booking(self, id).await
    }

    async fn cancel_booking(&self, booking: &Booking, reason: CancelReason, now: Timestamp) -> Result<Booking> {
        cancel::cancel_booking(self, booking, reason, now).await
    }

    async fn reschedule_booking(&self, booking: &Booking, event: &Event, now: Timestamp) -> Result<Booking> {
        bookings::reschedule_booking(self, booking, event, now).await
    }

    async fn list_user_bookings(&self, user_id: &str, status: BookingStatus, limit: usize) -> Result<Vec<Booking>> {
        bookings::list_user_bookings(self, user_id, status, limit).await
    }

    async fn list_event_bookings(&self, event_id: &str, after: Option<&Position>, limit: usize) -> Result<BookingPage> {
        bookings::list_event_bookings(self, event_id, after, limit).await
    }

    async fn get_idempotency(&self, user_id: &str, key: &str) -> Result<Option<IdempotencyRecord>> {
        bookings::get_idempotency(self, user_id, key).await
    }

    async fn get_delivery(&self, booking_id: &str) -> Result<Option<Delivery>> {
        deliveries::get_delivery(self, booking_id).await
    }

    async fn get_deliveries(&self, booking_ids: &[String]) -> Result<Vec<Delivery>> {
        deliveries::get_deliveries(self, booking_ids).await
    }

    async fn get_bookings(&self, ids: &[String]) -> Result<Vec<Booking>> {
        bookings::get_bookings(self, ids).await
    }

    async fn claim_message(&self, message: &Delivery, claim: &Claim<'_>) -> Result<Claimed> {
        deliveries::claim_message(self, message, claim).await
    }

    async fn booking_messages(&self, booking_id: &str) -> Result<BookingMessages> {
        deliveries::booking_messages(self, booking_id).await
    }

    async fn get_messages(&self, bookings: &[Booking]) -> Result<Vec<Delivery>> {
        deliveries::get_messages(self, bookings).await
    }

    async fn finish_delivery(&self, delivery: &Delivery, owner: &str) -> Result<bool> {
        deliveries::finish_delivery(self, delivery, owner).await
    }

    async fn pending_deliveries(&self, q: &PendingQuery) -> Result<PendingPage> {
        deliveries::pending_deliveries(self, q).await
    }

    async fn attach_checkout(&self, booking_id: &str, session_id: &str, url: &str) -> Result<bool> {
        payments::attach_checkout(self, booking_id, session_id, url).await
    }

    async fn release_hold(&self, booking: &Booking, idempotency_key: Option<&str>) -> Result<()> {
        payments::release_hold(self, booking, idempotency_key).await
    }

    async fn settle_payment(&self, booking_id: &str, settle: &Settlement) -> Result<Settled> {
        payments::settle_payment(self, booking_id, settle).await
    }

    async fn record_refund(&self, booking_id: &str, refund_id: &str, refund_status: &str) -> Result<()> {
        payments::record_refund(self, booking_id, refund_id, refund_status).await
    }

    async fn drop_payment_task(&self, booking_id: &str, kind: crate::model::PaymentTaskKind) -> Result<()> {
        payments::drop_payment_task(self, booking_id, kind).await
    }

    async fn due_payment_tasks(&self, q: &PendingQuery) -> Result<TaskPage> {
        payments::due_payment_tasks(self, q).await
    }
}
