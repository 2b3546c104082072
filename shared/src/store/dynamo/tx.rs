//! Transactions: one logical write sent until it commits or fails for a reason of its own,
//! with the failed conditions per item for the caller to explain.

use super::items::Item;
use super::{backoff, sdk_error, DynamoStore, TRANSACTION_ATTEMPTS};
use crate::error::Error;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, TransactWriteItem};

/// Why a transaction did not commit: per item, whether its condition failed (with the old item
/// when DynamoDB returned it), or any other error.
pub(super) enum TxFailure {
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

pub(super) fn failed(reasons: &[Option<Option<Item>>], index: usize) -> Option<&Option<Item>> {
    reasons.get(index).and_then(|r| r.as_ref())
}

impl DynamoStore {
    /// Runs a transaction until it commits or fails for a reason of its own.
    ///
    /// `operation` names this one logical write (a fresh id per request) and becomes the
    /// `ClientRequestToken`. The SDK already reuses one token across its own retries; ours also
    /// survives the SDK giving up: when its answers are lost (timeouts, 500s) the transaction may
    /// have committed, and sending it again under the same token makes DynamoDB answer with that
    /// outcome instead of running it twice, which would fail our own conditions
    /// (`already_booked`, `already_cancelled`) for a write that worked. A `TransactionConflict`
    /// wrote nothing, so its retry is a new attempt with a new token.
    pub(super) async fn transact(
        &self,
        items: Vec<TransactWriteItem>,
        operation: &str,
    ) -> std::result::Result<(), TxFailure> {
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
}
