//! Refresh-token families and the password change that revokes them all.
//!
//! A refresh is two calls: one strongly consistent BatchGetItem (family + user) and one
//! transaction that spends the token only if the family is exactly as read and the user's
//! `session_epoch` has not moved. A password change is one UpdateItem on the user that bumps the
//! epoch: every family created under the old one fails that check from then on, without a query
//! over the user's families.

use super::items::{attr, from_item, key_item, n, s, tag, Entity, ABSENT, EXISTS};
use super::{failed, is_condition_failed, sdk_error, DynamoStore, TxFailure};
use crate::error::{Error, Result};
use crate::keys::{self, entity};
use crate::model::{Session, User};
use crate::store::{Rotated, Rotation};
use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, TransactWriteItem, Update};

pub(super) async fn create_session(db: &DynamoStore, session: &Session) -> Result<()> {
    let result = db
        .client
        .put_item()
        .table_name(&db.table)
        .set_item(Some(session.to_item()?))
        .condition_expression(ABSENT)
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Err(Error::internal("session id collision")),
        Err(e) => Err(sdk_error("PutItem", e)),
    }
}

pub(super) async fn get_session(db: &DynamoStore, family_id: &str) -> Result<Option<Session>> {
    db.get_as(keys::session(family_id)).await
}

pub(super) async fn session_and_user(
    db: &DynamoStore,
    family_id: &str,
    user_id: &str,
) -> Result<(Option<Session>, Option<User>)> {
    let (mut session, mut user) = (None, None);
    for item in db.batch_get(vec![keys::session(family_id), keys::user(user_id)]).await? {
        match tag(&item) {
            Some(entity::SESSION) => session = Some(from_item(item)?),
            Some(entity::USER) => user = Some(from_item(item)?),
            _ => {}
        }
    }
    Ok((session, user))
}

/// `#epoch` equals `:epoch`; epoch 0 also matches an item from before the attribute existed.
fn epoch_is(epoch: u64) -> &'static str {
    if epoch == 0 {
        "(attribute_not_exists(#epoch) OR #epoch = :epoch)"
    } else {
        "#epoch = :epoch"
    }
}

pub(super) async fn rotate_session(db: &DynamoStore, r: &Rotation<'_>) -> Result<Rotated> {
    let next = r.generation.checked_add(1).ok_or(Error::Unauthorized("refresh token is no longer valid"))?;
    let spend = Update::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::session(r.family_id))))
        .update_expression("SET #gen = :next, #hash = :new")
        .condition_expression(
            "#gen = :gen AND #hash = :hash AND #revoked = :false AND #expires > :now AND #epoch = :epoch",
        )
        .expression_attribute_names("#gen", attr::GENERATION)
        .expression_attribute_names("#hash", attr::TOKEN_HASH)
        .expression_attribute_names("#revoked", attr::REVOKED)
        .expression_attribute_names("#expires", attr::EXPIRES_AT)
        .expression_attribute_names("#epoch", attr::SESSION_EPOCH)
        .expression_attribute_values(":gen", n(r.generation))
        .expression_attribute_values(":next", n(next))
        .expression_attribute_values(":hash", s(r.token_hash))
        .expression_attribute_values(":new", s(r.new_hash))
        .expression_attribute_values(":false", AttributeValue::Bool(false))
        .expression_attribute_values(":now", s(crate::time::format(&r.now)))
        .expression_attribute_values(":epoch", n(r.session_epoch))
        .build()
        .map_err(Error::internal)?;
    let user_unchanged = ConditionCheck::builder()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::user(r.user_id))))
        .condition_expression(format!("{EXISTS} AND {}", epoch_is(r.session_epoch)))
        .expression_attribute_names("#epoch", attr::SESSION_EPOCH)
        .expression_attribute_values(":epoch", n(r.session_epoch))
        .build()
        .map_err(Error::internal)?;
    let items = vec![
        TransactWriteItem::builder().update(spend).build(),
        TransactWriteItem::builder().condition_check(user_unchanged).build(),
    ];
    match db.transact(items, &crate::model::new_id()).await {
        Ok(()) => Ok(Rotated::Done),
        Err(TxFailure::Conditions(reasons)) if failed(&reasons, 0).is_some() => Ok(Rotated::FamilyChanged),
        Err(TxFailure::Conditions(_)) => Ok(Rotated::PasswordChanged),
        Err(TxFailure::Failed(e)) => Err(e),
    }
}

pub(super) async fn revoke_session(db: &DynamoStore, family_id: &str) -> Result<()> {
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::session(family_id))))
        .update_expression("SET #revoked = :true")
        // Never creates a stray item for a family TTL already deleted.
        .condition_expression(EXISTS)
        .expression_attribute_names("#revoked", attr::REVOKED)
        .expression_attribute_values(":true", AttributeValue::Bool(true))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Ok(()),
        Err(e) => Err(sdk_error("UpdateItem", e)),
    }
}

pub(super) async fn change_password(
    db: &DynamoStore,
    user_id: &str,
    old_hash: &str,
    new_hash: &str,
    epoch: u64,
) -> Result<()> {
    let next = epoch.checked_add(1).ok_or_else(|| Error::internal("session epoch overflow"))?;
    let result = db
        .client
        .update_item()
        .table_name(&db.table)
        .set_key(Some(key_item(keys::user(user_id))))
        .update_expression("SET #pw = :new, #epoch = :next")
        .condition_expression(format!("#pw = :old AND {}", epoch_is(epoch)))
        .expression_attribute_names("#pw", attr::PASSWORD_HASH)
        .expression_attribute_names("#epoch", attr::SESSION_EPOCH)
        .expression_attribute_values(":old", s(old_hash))
        .expression_attribute_values(":new", s(new_hash))
        .expression_attribute_values(":epoch", n(epoch))
        .expression_attribute_values(":next", n(next))
        .send()
        .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_condition_failed(&e) => Err(Error::InvalidCredentials),
        Err(e) => Err(sdk_error("UpdateItem", e)),
    }
}
