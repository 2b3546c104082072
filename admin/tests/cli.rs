//! The CLI as an operator runs it: without a table it says what to do, before any AWS call.

use std::process::Command;

#[test]
fn without_a_table_it_explains_instead_of_calling_aws() {
    for args in [&["promote", "dev@example.com", "admin"][..], &["create-table"], &["crm-redeliver"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_admin"))
            .args(args)
            .env_remove("TABLE_NAME")
            // Where an AWS call would go if one were made: nowhere that answers.
            .env("AWS_ENDPOINT_URL_DYNAMODB", "http://127.0.0.1:9")
            .env("AWS_REGION", "us-east-1")
            .output()
            .expect("the admin binary runs");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.starts_with("error: set TABLE_NAME or pass --table"), "{args:?}: {stderr}");
        assert!(stderr.contains("make run") && stderr.contains("BOOTSTRAP_ADMIN_EMAIL"), "{stderr}");
        assert_eq!(stderr.lines().count(), 2, "the reason and the usage, nothing from the SDK: {stderr}");
    }
}
