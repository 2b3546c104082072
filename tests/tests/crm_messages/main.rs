//! Typed CRM messages (docs/api.md, "CRM webhook"): order per booking, exact payloads, nothing
//! for a booking the CRM never heard of, one POST per message through replays and outages, a
//! stable `webhook-id` per message, the pending index, `crm_messages`, DynamoDB calls. The CRM is a
//! real HTTP stand-in checking every signature (`tests::crm`); both stores (DynamoDB on moto).

mod dynamodb;
mod fixtures;
mod ordering;
mod payloads;

// The cases live in the modules above; imported here so that one list runs them on both stores
// and each keeps its test name (`memory::…`, `dynamo::…`).
use ordering::{
    both_messages_of_a_booking_sit_in_the_pending_index_and_the_sweep_sends_them_in_order,
    crm_down_then_up_each_message_once_in_order_with_stable_ids,
    local_hook_sends_the_cancellation_after_the_attendee_cancels,
};
use payloads::{
    cancellation_goes_out_after_the_confirmation_once_and_the_owner_sees_both, cancelled_hold_sends_nothing,
    paid_booking_cancellation_carries_price_and_refund_status,
};

tests::store_tests!(
    local_hook_sends_the_cancellation_after_the_attendee_cancels,
    cancellation_goes_out_after_the_confirmation_once_and_the_owner_sees_both,
    paid_booking_cancellation_carries_price_and_refund_status,
    cancelled_hold_sends_nothing,
    crm_down_then_up_each_message_once_in_order_with_stable_ids,
    both_messages_of_a_booking_sit_in_the_pending_index_and_the_sweep_sends_them_in_order,
);
