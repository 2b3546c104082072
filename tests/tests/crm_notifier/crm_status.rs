//! `crm_status` as the event's owner sees it: a failure category and the last HTTP status, never
//! the client's error text; old records still load; the OpenAPI schema matches.

use super::fixtures::{crm_answering, notifier, notifier_with, CRM_PATH};
use serde_json::{json, Value};
use shared::model::{new_id, Booking, Delivery, DeliveryStatus, FailureKind, Role};
use shared::store::Store;
use std::time::Duration;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

/// Error text the HTTP client produces for failed sends (and the URL's token); none of it may
/// reach an API response. Case-sensitive: ids and emails in the response are random base32.
const CLIENT_ERROR_TEXT: &[&str] = &[
    "error sending request",
    "Connection refused",
    "connection refused",
    "tcp connect",
    "dns error",
    "timed out",
    "hyper",
    "s3cr3t",
    "CRM answered",
    "HTTP 503",
    "HTTP 422",
];

pub async fn event_owner_sees_failure_categories_not_error_text<S: Store + Clone>(store: S) {
    // GIVEN an event with four bookings made through the handlers
    let app = tests::app(store.clone());
    let (_, owner) = tests::user(&app, Role::Facilitator).await;
    let body = json!({"title": "Sound Bath", "type": "Meditation", "facilitator_id": "FAC042",
        "datetime": tests::in_days(30), "capacity": 10});
    let resp = tests::call(&app, tests::request("POST", "/events", Some(&owner), Some(body))).await;
    assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
    let event_id = tests::json(&resp)["id"].as_str().unwrap().to_string();
    let mut bookings = Vec::new();
    for _ in 0..4 {
        let (_, token) = tests::user(&app, Role::Attendee).await;
        let req = tests::request("POST", "/bookings/", Some(&token), Some(json!({"event_id": event_id})));
        let resp = tests::call(&app, req).await;
        assert_eq!(tests::status(&resp), 201, "{:?}", tests::json(&resp));
        let id = tests::json(&resp)["id"].as_str().unwrap().to_string();
        bookings.push(store.get_booking(&id).await.unwrap().unwrap());
    }

    // WHEN the CRM is unreachable for the first (nobody listens on its port), too slow for the
    // second, answers 503 to the third and 422 to the fourth
    let closed_port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let unreachable =
        notifier_with(store.clone(), &format!("http://127.0.0.1:{closed_port}{CRM_PATH}?token=s3cr3t"), 2000);
    assert!(unreachable.deliver(&bookings[0]).await.unwrap().is_retryable());
    let slow = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_millis(1500)))
        .mount(&slow)
        .await;
    let too_slow = notifier_with(store.clone(), &format!("{}{CRM_PATH}", slow.uri()), 200);
    assert!(too_slow.deliver(&bookings[1]).await.unwrap().is_retryable());
    assert!(notifier(store.clone(), &crm_answering(503).await).deliver(&bookings[2]).await.unwrap().is_retryable());
    assert!(!notifier(store.clone(), &crm_answering(422).await).deliver(&bookings[3]).await.unwrap().is_retryable());

    // THEN the owner's list shows a category and the last HTTP status for each, and no error text
    let resp =
        tests::call(&app, tests::request("GET", &format!("/events/{event_id}/bookings"), Some(&owner), None)).await;
    assert_eq!(tests::status(&resp), 200);
    let raw = String::from_utf8_lossy(resp.body().as_ref()).to_string();
    for text in CLIENT_ERROR_TEXT {
        assert!(!raw.contains(text), "{text:?} reached the response: {raw}");
    }
    let list = tests::json(&resp);
    let crm = |booking: &Booking| -> Value {
        let item = list.as_array().unwrap().iter().find(|b| b["id"] == booking.id.as_str()).expect("listed");
        item["crm_status"].clone()
    };
    let expected = [
        ("retrying", "connection", Value::Null),
        ("retrying", "timeout", Value::Null),
        ("retrying", "http_status", json!(503)),
        ("failed", "rejected", json!(422)),
    ];
    for (b, (status, failure, http_status)) in bookings.iter().zip(expected) {
        assert_eq!(
            crm(b),
            json!({"status": status, "attempts": 1, "last_http_status": http_status, "last_failure": failure,
                "delivered_at": null}),
            "{failure}"
        );
    }

    // AND a later success clears the category
    let crm_ok = crm_answering(200).await;
    notifier(store.clone(), &crm_ok).deliver(&bookings[0]).await.unwrap();
    let resp =
        tests::call(&app, tests::request("GET", &format!("/events/{event_id}/bookings"), Some(&owner), None)).await;
    let list = tests::json(&resp);
    let status =
        list.as_array().unwrap().iter().find(|b| b["id"] == bookings[0].id.as_str()).unwrap()["crm_status"].clone();
    assert_eq!(
        (&status["status"], &status["attempts"], &status["last_failure"]),
        (&json!("delivered"), &json!(2), &Value::Null)
    );
}

/// Delivery items written before `last_failure` existed carry a free-text `last_error`: they still
/// load (the text is dropped), so old bookings keep their `crm_status`.
#[test]
fn delivery_records_with_the_old_last_error_still_load() {
    let old = json!({
        "PK": "BOOKING#01KBK3ZQ7M4XR2D9T6VW8YHN5A", "SK": "DELIVERY", "entity": "delivery",
        "booking_id": "01KBK3ZQ7M4XR2D9T6VW8YHN5A", "status": "retrying", "attempts": 2,
        "last_http_status": null,
        "last_error": "connection failed: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)",
        "updated_at": "2026-01-05T09:30:00Z",
    });
    let item: serde_dynamo::Item = serde_dynamo::to_item(&old).unwrap();
    for d in [serde_dynamo::from_item::<_, Delivery>(item).unwrap(), serde_json::from_value::<Delivery>(old).unwrap()] {
        assert_eq!((d.status, d.attempts, d.last_failure), (DeliveryStatus::Retrying, 2, None));
        assert_eq!(
            d.view(),
            json!({"status": "retrying", "attempts": 2, "last_http_status": null, "last_failure": null,
                "delivered_at": null})
        );
    }
}

/// The OpenAPI `DeliveryStatus` schema documents exactly the keys `crm_status` has, and exactly
/// the categories `last_failure` can take.
#[test]
fn openapi_crm_status_schema_matches_the_view() {
    let doc: Value = serde_json::from_str(
        &std::fs::read_to_string(tests::workspace_root().join("functions/auth/openapi.json")).unwrap(),
    )
    .unwrap();
    let schema = &doc["components"]["schemas"]["DeliveryStatus"];
    let d = Delivery {
        booking_id: new_id(),
        kind: Default::default(),
        seq: 0,
        event_datetime: None,
        previous_event_datetime: None,
        status: DeliveryStatus::Retrying,
        attempts: 1,
        last_http_status: None,
        last_failure: Some(FailureKind::Timeout),
        delivered_at: None,
        updated_at: shared::time::now(),
        booked_at: None,
        lease_until: None,
        lease_owner: None,
    };
    let mut view_keys: Vec<String> = d.view().as_object().unwrap().keys().cloned().collect();
    let mut required: Vec<String> =
        schema["required"].as_array().unwrap().iter().map(|k| k.as_str().unwrap().to_string()).collect();
    view_keys.sort();
    required.sort();
    assert_eq!(view_keys, required);
    let kinds = [FailureKind::Timeout, FailureKind::Connection, FailureKind::HttpStatus, FailureKind::Rejected];
    let mut documented: Vec<Value> = kinds.iter().map(|k| serde_json::to_value(k).unwrap()).collect();
    documented.push(Value::Null);
    assert_eq!(schema["properties"]["last_failure"]["enum"], Value::Array(documented));
}
