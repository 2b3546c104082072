//! Filtered pages are full (contract v2): a page holds `limit` events whenever that many remain,
//! and stops short, with a `Link`, only after evaluating 1,000 index entries. Both stores.

use serde_json::{json, Value};
use shared::model::EventInput;
use shared::Store;
use tests::*;

/// `total` Yoga events an hour apart from tomorrow; those whose index is in `rated` get 5.0,
/// the others 1.0. Written straight to the store: these tests are about reading.
async fn seed<S: Store>(store: &S, total: usize, rated: &[usize]) -> Vec<String> {
    let start = shared::time::now() + chrono::Duration::days(1);
    let mut ids = Vec::new();
    for i in 0..total {
        let at = start + chrono::Duration::hours(i as i64);
        let rating = if rated.contains(&i) { 5.0 } else { 1.0 };
        let input: EventInput = serde_json::from_value(json!({
            "title": format!("Session {i}"), "type": "Yoga", "rating": rating,
            "datetime": shared::time::format(&at),
        }))
        .unwrap();
        let event = input.into_event("owner", shared::time::now()).unwrap();
        store.create_event(&event).await.unwrap();
        ids.push(event.id);
    }
    ids
}

/// Follows `Link`s from `first`, returning each page's ids.
async fn pages<S: Store>(app: &shared::App<S>, first: &str) -> Vec<Vec<String>> {
    let (mut uri, mut out) = (Some(first.to_string()), Vec::new());
    while let Some(u) = uri.take() {
        let resp = call(app, request("GET", &u, None, None)).await;
        assert_eq!(status(&resp), 200, "{u}: {:?}", json(&resp));
        let ids = json(&resp).as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap().to_string()).collect();
        out.push(ids);
        uri = resp
            .headers()
            .get("link")
            .map(|l| l.to_str().unwrap().trim_start_matches('<').split('>').next().unwrap().to_string());
        assert!(out.len() < 20, "too many pages");
    }
    out
}

async fn filtered_pages_are_full<S: Store + Clone>(store: S) {
    let app = app(store.clone());
    let rated: Vec<usize> = (0..120).step_by(10).collect(); // 12 of 120
    let ids = seed(&store, 120, &rated).await;
    let want: Vec<String> = rated.iter().map(|&i| ids[i].clone()).collect();
    let got = pages(&app, "/events/filter?type=yoga&rating=4.5&limit=5").await;
    let sizes: Vec<usize> = got.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![5, 5, 2], "pages of a sparse filter must be full");
    assert_eq!(got.concat(), want);
    // The unfiltered list pages the same way.
    let all = pages(&app, "/events/?limit=50").await;
    assert_eq!(all.iter().map(Vec::len).collect::<Vec<_>>(), vec![50, 50, 20]);
    assert_eq!(all.concat(), ids);
}

async fn a_page_stops_short_only_after_1000_entries<S: Store + Clone>(store: S) {
    let app = app(store.clone());
    let ids = seed(&store, 1_010, &[1_005, 1_008]).await;
    let got = pages(&app, "/events/filter?type=yoga&rating=4.5&limit=10").await;
    // 1,000 non-matching entries evaluated: an empty page with a Link; then the two matches.
    assert_eq!(got, vec![Vec::<String>::new(), vec![ids[1_005].clone(), ids[1_008].clone()]]);
}

store_tests!(filtered_pages_are_full, a_page_stops_short_only_after_1000_entries);

/// What a sparse filter costs on DynamoDB: at most four queries per page (100 + 200 + 400 + 300
/// entries), one for an unfiltered page.
#[tokio::test]
async fn dynamodb_queries_per_filtered_page() {
    let (store, log) = dynamo_counted().await;
    let app = app(store.clone());
    let ids = seed(&store, 1_010, &[1_005]).await;
    log.take();
    let resp = call(&app, request("GET", "/events/filter?type=yoga&rating=4.5&limit=10", None, None)).await;
    assert_eq!((status(&resp), json(&resp)), (200, Value::Array(vec![])));
    let calls = log.take();
    println!("filtered page, 1,000 entries evaluated: {} calls ({})", calls.len(), calls.join(", "));
    assert_eq!(calls, vec!["Query"; 4]);
    let link = resp.headers()["link"].to_str().unwrap().to_string();
    let next = link.trim_start_matches('<').split('>').next().unwrap().to_string();
    let resp = call(&app, request("GET", &next, None, None)).await;
    assert_eq!(json(&resp)[0]["id"], ids[1_005].as_str());
    assert_eq!(log.take(), vec!["Query"], "the last 10 entries take one query");
    call(&app, request("GET", "/events/?limit=50", None, None)).await;
    assert_eq!(log.take(), vec!["Query"], "an unfiltered page is one query");
}
