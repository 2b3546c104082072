use crate::yaml::{at, seq, str_at, template};
use serde_yaml::Value;
use std::collections::BTreeMap;

/// Lambda event filtering as AWS documents it for the patterns used here
/// (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html): every field of
/// the pattern must be in the record (AND), a list of values matches a record value equal to any
/// of them (OR); objects nest. `[{"exists": false}]` matches a leaf the record does not have,
/// also when a level above it is missing
/// (https://docs.aws.amazon.com/lambda/latest/dg/with-ddb-filtering.html#filtering-ddb-exists).
/// Any other form (operators such as `prefix`, `exists: true`, numbers) is refused rather than
/// half-modelled.
fn filter_matches(pattern: &serde_json::Value, record: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match pattern {
        J::Object(fields) => fields.iter().all(|(k, p)| match record.get(k) {
            Some(r) => filter_matches(p, r),
            None => matches_absent(p),
        }),
        // Present, so it exists.
        J::Array(_) if is_not_exists(pattern) => false,
        J::Array(values) => {
            assert!(values.iter().all(J::is_string), "only exact string matches are modelled: {pattern}");
            values.contains(record)
        }
        other => panic!("a filter pattern leaf must be a list of values, got {other}"),
    }
}

fn is_not_exists(p: &serde_json::Value) -> bool {
    *p == serde_json::json!([{"exists": false}])
}

/// A pattern a missing field satisfies: `exists: false` at every leaf below it.
fn matches_absent(p: &serde_json::Value) -> bool {
    match p {
        serde_json::Value::Object(fields) => fields.values().all(matches_absent),
        other => is_not_exists(other),
    }
}

/// The mapping's filter patterns; a record that matches any of them invokes the function (the
/// same page: "If an event satisfies any one of the filters, Lambda sends the event").
fn stream_filters(t: &Value) -> Vec<serde_json::Value> {
    let m = at(t, &["Resources", "CrmStreamMapping", "Properties"]);
    let filters = seq(at(m, &["FilterCriteria", "Filters"]));
    filters.iter().map(|f| serde_json::from_str(str_at(f, &["Pattern"])).expect("filter is JSON")).collect()
}

fn passes(filters: &[serde_json::Value], record: &serde_json::Value) -> bool {
    filters.iter().any(|p| filter_matches(p, record))
}

#[test]
fn filter_model_follows_the_documented_semantics() {
    use serde_json::json;
    let p = json!({"a": ["x", "y"], "b": {"c": ["z"]}});
    assert!(filter_matches(&p, &json!({"a": "y", "b": {"c": "z", "d": 1}, "e": 2})));
    assert!(!filter_matches(&p, &json!({"a": "w", "b": {"c": "z"}})), "OR within a list only");
    assert!(!filter_matches(&p, &json!({"a": "x"})), "every field must be present");
    assert!(!filter_matches(&p, &json!({"a": "x", "b": {"c": "Z"}})), "case-sensitive");
    let absent = json!({"a": ["x"], "l": {"S": [{"exists": false}]}});
    assert!(filter_matches(&absent, &json!({"a": "x"})), "a missing attribute does not exist");
    assert!(!filter_matches(&absent, &json!({"a": "x", "l": {"S": "owner"}})));
}

/// The notifier is invoked for booking items whose new image is `confirmed` (a free booking's
/// INSERT, a paid booking's confirming MODIFY) and for the INSERT of every CRM message record but
/// the confirmation's (which the booking's image already sends), and for nothing else: not a seat
/// hold, its expiry, a cancellation's booking MODIFY, a refund, a claim, a removal or another
/// entity; and for a lifecycle job's image without a lease owner (the cancel's or reschedule's
/// write, and each batch's saved cursor), never for a claim or the job's deletion; and for a
/// waitlist offer's `Offer` payment task INSERT (its session is opened), never for a hold's task
/// or the MODIFY that turns the offer's task into its hold. Checked field by field against the
/// names and values the code writes, and by running the patterns over every stream fixture in
/// `events/` (`tests/tests/crm_notifier/payload.rs` and `crm_messages/` check what the handler
/// sends for them).
#[test]
fn stream_mapping_selects_confirmed_bookings_new_messages_and_unleased_jobs_only() {
    use serde_json::json;
    use shared::model::MessageKind;
    let t = template();
    let filters = stream_filters(&t);
    assert_eq!(filters.len(), 4, "{filters:?}");
    // Lambda's default quota: five filters per event source mapping
    // (https://docs.aws.amazon.com/lambda/latest/dg/invocation-eventfiltering.html).
    assert!(filters.len() <= 5);
    let (booking, message) = (&filters[0], &filters[1]);
    assert_eq!(booking["eventName"], json!(["INSERT", "MODIFY"]));
    let image = &booking["dynamodb"]["NewImage"];
    assert_eq!(image[shared::keys::ENTITY]["S"], json!([shared::keys::entity::BOOKING]));
    assert_eq!(image["status"]["S"], json!([shared::model::BookingStatus::Confirmed.as_str()]));
    assert_eq!(booking.as_object().map(|o| o.len()), Some(2), "{booking}");
    assert_eq!(image.as_object().map(|o| o.len()), Some(2), "{booking}");
    // The attribute is the booking's `status` as stored (serde name), with that value.
    let stored = serde_json::to_value(shared::model::BookingStatus::Confirmed).unwrap();
    assert_eq!(image["status"]["S"][0], stored);
    // New message records, by their `kind` as serde stores it: every kind but the confirmation.
    assert_eq!(message["eventName"], json!(["INSERT"]));
    let image = &message["dynamodb"]["NewImage"];
    assert_eq!(image[shared::keys::ENTITY]["S"], json!([shared::keys::entity::DELIVERY]));
    let others: Vec<serde_json::Value> =
        [MessageKind::Rescheduled, MessageKind::Offered, MessageKind::Expired, MessageKind::Cancelled]
            .iter()
            .map(|k| serde_json::to_value(k).unwrap())
            .collect();
    assert_eq!(image["kind"]["S"], json!(others));
    assert_eq!(image.as_object().map(|o| o.len()), Some(2), "{message}");

    let dir = tests::workspace_root().join("events");
    let mut seen = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(stem) = name.strip_prefix("stream-").and_then(|n| n.strip_suffix(".json")) else { continue };
        let event: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(dir.join(&name)).unwrap()).unwrap();
        let records = event["Records"].as_array().expect("Records");
        assert_eq!(records.len(), 1, "{name}");
        seen.insert(stem.to_string(), passes(&filters, &records[0]));
    }
    let want = BTreeMap::from([
        ("booking-insert".to_string(), true),
        ("booking-paid-confirmed".to_string(), true),
        ("booking-paid-pending".to_string(), false),
        ("booking-modify".to_string(), false),
        ("booking-remove".to_string(), false),
        ("delivery-cancelled-insert".to_string(), true),
        ("delivery-confirmed-insert".to_string(), false),
        ("other-entity".to_string(), false),
        // a refresh-token rotation, and the family's TTL deletion (a REMOVE by the service)
        ("session-rotate".to_string(), false),
        ("session-ttl-remove".to_string(), false),
        // a lifecycle job as the cancel writes it, and as a batch saves it: the next batch; a
        // claim (lease owner set) and the job's deletion are not
        ("job-insert".to_string(), true),
        ("job-saved".to_string(), true),
        ("job-claimed".to_string(), false),
        ("job-remove".to_string(), false),
        // waitlist offers: the booking.offered and booking.expired records; the offer's task as
        // the promotion writes it (its session is opened), not a direct booking's hold task nor
        // the MODIFY turning the offer's task into its hold
        ("delivery-offered-insert".to_string(), true),
        ("delivery-expired-insert".to_string(), true),
        ("payment-task-offer-insert".to_string(), true),
        ("payment-task-hold-insert".to_string(), false),
        ("payment-task-hold-modify".to_string(), false),
    ]);
    // Offer tasks, by the entity tag and the `kind` the store writes (serde names).
    let offers = &filters[2];
    assert_eq!(offers["eventName"], json!(["INSERT"]));
    let offer_image = &offers["dynamodb"]["NewImage"];
    assert_eq!(offer_image[shared::keys::ENTITY]["S"], json!([shared::keys::entity::PAYMENT_TASK]));
    let task = shared::model::PaymentTask {
        booking_id: "B".into(),
        kind: shared::model::PaymentTaskKind::Offer,
        due_at: shared::time::now(),
    };
    assert_eq!(offer_image["kind"]["S"], json!([serde_json::to_value(&task).unwrap()["kind"]]));
    assert_eq!(offer_image.as_object().map(|o| o.len()), Some(2), "{offers}");
    let jobs = &filters[3];
    let job_image = &jobs["dynamodb"]["NewImage"];
    assert_eq!(job_image[shared::keys::ENTITY]["S"], json!([shared::keys::entity::JOB]));
    // The attribute the store writes for the lease, as serde names the field.
    let mut claimed = shared::model::Job::new("E", shared::model::JobKind::Cancel, 0, shared::time::now());
    claimed.lease_owner = Some("w".into());
    assert!(serde_json::to_value(&claimed).unwrap().get("lease_owner").is_some());
    assert!(job_image["lease_owner"]["S"] == json!([{"exists": false}]), "{jobs}");
    assert_eq!(seen, want, "which stream fixtures the mapping lets through");

    let m = at(&t, &["Resources", "CrmStreamMapping", "Properties"]);
    assert_eq!(str_at(m, &["StartingPosition"]), "LATEST");
    assert_eq!(at(m, &["BisectBatchOnFunctionError"]).as_bool(), Some(true));
    assert_eq!(seq(at(m, &["FunctionResponseTypes"]))[0].as_str(), Some("ReportBatchItemFailures"));
    assert!(at(m, &["DestinationConfig", "OnFailure", "Destination"]).is_string());
    assert_eq!(
        at(&t, &["Resources", "CrmDeadLetterQueue", "Properties", "MessageRetentionPeriod"]).as_u64(),
        Some(14 * 24 * 3600)
    );
}
