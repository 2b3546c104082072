//! Accounts, their unique emails, and login-attempt windows.

use super::items::{attr, from_item, key_item, n, s, tag, EmailGuard, Entity, LoginWindow, ABSENT, EXISTS};
use super::{failed, is_condition_failed, sdk_error, DynamoStore, TxFailure};
use crate::error::{Error, Result};
use crate::keys::{self, entity};
use crate::model::{Event, LoginThrottle, Role, User};
use crate::time::Timestamp;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem};

pub(super) async fn create_user(db: &DynamoStore, user: &User) -> Result<()> {
    let guard = EmailGuard { email: &user.email, user_id: &user.id };
    let items = vec![
        TransactWriteItem::builder().put(db.put(user, ABSENT)?).build(),
        TransactWriteItem::builder().put(db.put(&guard, ABSENT)?).build(),
    ];
    match db.transact(items, &user.id).await {
        Ok(()) => Ok(()),
        Err(TxFailure::Conditions(reasons)) if failed(&reasons, 1).is_some() => Err(Error::EmailTaken),
        Err(TxFailure::Conditions(_)) => Err(Error::internal("user id collision")),
        Err(TxFailure::Failed(e)) => Err(e),
    }
}

pub(super) async fn get_user(db: &DynamoStore, id: &str) -> Result<Option<User>> {
    db.get_as(keys::user(id)).await
}

pub(super) async fn event_and_user(
    db: &DynamoStore,
    event_id: &str,
    user_id: &str,
) -> Result<(Option<Event>, Option<User>)> {
    let (mut event, mut user) = (None, None);
    for item in db.batch_get(vec![keys::event(event_id), keys::user(user_id)]).await? {
        match tag(&item) {
            Some(entity::EVENT) => event = Some(from_item(item)?),
            Some(entity::USER) => user = Some(from_item(item)?),
            _ => {}
        }
    }
    Ok((event, user))
}

pub(super) async fn find_user_by_email(db: &DynamoStore, email: &str) -> Result<Option<User>> {
    let Some(guard) = db.get(keys::email(email)).await? else {
        return Ok(None);
    };
    match guard.get(attr::USER_ID) {
        Some(AttributeValue::S(id)) => get_user(db, id).await,
        _ => Err(Error::internal(format!("email guard for {email} has no user_id"))),
    }
}

pub(super) async fn set_user_role(db: &DynamoStore, user_id: &str, role: Role) -> Result<()> {
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::user(user_id))))
        .update_expression("SET #role = :role")
        .condition_expression(EXISTS)
        .expression_attribute_names("#role", attr::ROLE)
        .expression_attribute_values(":role", s(role.as_str()))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Err(Error::NotFound("user")),
        Err(e) => Err(sdk_error("UpdateItem", e)),
    }
}

pub(super) async fn count_login_attempt(
    db: &DynamoStore,
    email: &str,
    now: Timestamp,
    window_secs: i64,
    max: u32,
) -> Result<()> {
    let now = now.timestamp();
    let cutoff = now - window_secs;
    // No read: count in the open window while room is left, or open a new window when the
    // stored one has expired. A racing writer makes one of them fail; look again.
    for _ in 0..4 {
        let counted = db
            .client
            .update_item()
            .table_name(&db.table)
            .set_key(Some(key_item(keys::login_throttle(email))))
            .update_expression("ADD #attempts :one")
            .condition_expression("#start > :cutoff AND #attempts < :max")
            .expression_attribute_names("#attempts", attr::ATTEMPTS)
            .expression_attribute_names("#start", attr::WINDOW_START)
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
        let fresh = LoginWindow { email, attempts: 1, window_start: now, ttl: now + window_secs };
        let opened = db
            .client
            .put_item()
            .table_name(&db.table)
            .set_item(Some(fresh.to_item()?))
            .condition_expression(format!("{ABSENT} OR #start <= :cutoff"))
            .expression_attribute_names("#start", attr::WINDOW_START)
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

pub(super) async fn clear_login_attempts(db: &DynamoStore, email: &str) -> Result<()> {
    db.client
        .delete_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::login_throttle(email))))
        .send()
        .await
        .map_err(|e| sdk_error("DeleteItem", e))?;
    Ok(())
}
