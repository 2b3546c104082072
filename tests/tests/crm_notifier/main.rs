//! The CRM webhook (docs/api.md, "CRM webhook"): payload, Standard Webhooks signature, failure
//! classification, stream batch semantics and the local retry hook. The CRM is a wiremock server;
//! every case runs against the embedded store and DynamoDB on moto.

mod batches;
mod classification;
mod crm_status;
mod fixtures;
mod local_hook;
mod payload;

// The cases live in the modules above; imported here so that one list runs them on both stores
// and each keeps its test name (`memory::…`, `dynamo::…`).
use batches::{
    mixed_batch_stops_at_the_first_retryable_failure, permanent_failure_does_not_stop_the_batch,
    same_batch_twice_posts_once_per_booking, unparseable_booking_is_skipped_not_retried,
};
use classification::{
    connection_refused_is_retryable, gone_and_bad_request_are_permanent,
    server_error_then_success_is_retried_by_the_next_batch, timeout_is_retryable,
};
use crm_status::event_owner_sees_failure_categories_not_error_text;
use local_hook::local_hook_retries_in_the_background;
use payload::{
    cancelled_insert_and_missing_url_send_nothing, paid_booking_is_posted_once_when_its_payment_confirms_it,
    payload_and_signed_headers, stream_fixtures_post_only_for_confirmed_bookings,
};

tests::store_tests!(
    payload_and_signed_headers,
    server_error_then_success_is_retried_by_the_next_batch,
    timeout_is_retryable,
    connection_refused_is_retryable,
    gone_and_bad_request_are_permanent,
    permanent_failure_does_not_stop_the_batch,
    mixed_batch_stops_at_the_first_retryable_failure,
    same_batch_twice_posts_once_per_booking,
    stream_fixtures_post_only_for_confirmed_bookings,
    paid_booking_is_posted_once_when_its_payment_confirms_it,
    unparseable_booking_is_skipped_not_retried,
    cancelled_insert_and_missing_url_send_nothing,
    local_hook_retries_in_the_background,
    event_owner_sees_failure_categories_not_error_text,
);
