//! CRM delivery that never silently drops a booking: backoff inside the stream invocation (with a
//! simulated clock), `Retry-After`, the sweeper over the pending index, the lease that keeps
//! concurrent senders to one POST, and the sweep's DynamoDB calls. Every store case runs against
//! the embedded store and DynamoDB on moto; the CRM is a wiremock server.

mod backoff;
mod concurrency;
mod dynamodb_calls;
mod fixtures;
mod sweeper;

// The cases live in the modules above; imported here so that one list runs them on both stores
// and each keeps its test name (`memory::…`, `dynamo::…`).
use backoff::{
    crm_down_for_three_minutes_is_delivered_once_by_the_stream_retries,
    crm_down_for_three_minutes_then_the_sweeper_delivers, retry_after_is_honoured,
};
use concurrency::stream_and_sweeper_racing_for_one_booking_post_once;
use sweeper::{
    booking_no_stream_consumer_saw_is_delivered_once_by_the_sweeper,
    lease_of_a_sender_that_died_expires_and_the_sweeper_takes_over,
    seat_holds_are_never_swept_and_a_paid_one_is_delivered_once_with_its_price, sweep_looks_back_as_far_as_asked,
    sweep_stops_when_the_crm_is_down_and_leaves_everything_pending,
};

tests::store_tests!(
    booking_no_stream_consumer_saw_is_delivered_once_by_the_sweeper,
    sweep_looks_back_as_far_as_asked,
    sweep_stops_when_the_crm_is_down_and_leaves_everything_pending,
    lease_of_a_sender_that_died_expires_and_the_sweeper_takes_over,
    crm_down_for_three_minutes_is_delivered_once_by_the_stream_retries,
    crm_down_for_three_minutes_then_the_sweeper_delivers,
    retry_after_is_honoured,
    stream_and_sweeper_racing_for_one_booking_post_once,
    seat_holds_are_never_swept_and_a_paid_one_is_delivered_once_with_its_price,
);
