//! The checked-in document is the generator's output: `GET /openapi.json` serves the file
//! (`include_str!`), so a type or route changed without regenerating it would serve a stale
//! contract.

#[test]
fn checked_in_document_is_the_generated_one() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../functions/auth/openapi.json");
    let checked_in = std::fs::read_to_string(path).expect("functions/auth/openapi.json is readable");
    let generated = openapi::render();
    if checked_in != generated {
        let line = checked_in
            .lines()
            .zip(generated.lines())
            .position(|(a, b)| a != b)
            .map_or_else(|| checked_in.lines().count().min(generated.lines().count()) + 1, |i| i + 1);
        panic!("functions/auth/openapi.json is stale (first difference at line {line}): run `make openapi`");
    }
}

#[test]
fn document_is_valid_json_with_every_error_code() {
    let doc = openapi::document();
    let codes = &doc["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"];
    let codes: Vec<&str> = codes.as_array().expect("a code enum").iter().filter_map(|c| c.as_str()).collect();
    assert_eq!(codes, openapi::errors::codes());
    assert!(codes.contains(&"too_many_attempts") && codes.contains(&"unavailable"));
}
