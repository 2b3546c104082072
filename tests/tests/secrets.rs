//! Secrets read at init (shared::secrets) against Secrets Manager on moto, the way the deployed
//! functions read them: `NAME_ID` names the secret, `GetSecretValue` fetches it once, a plain
//! `NAME` wins over it, and a secret that cannot be read stops start-up with an error that names
//! the variable and the secret, never a value.
//!
//! Run by `make test` (moto exports `AWS_ENDPOINT_URL`, which the Secrets Manager client of
//! `shared::aws::lambda_secrets_client` honours like the SDK does).

use shared::config::Config;
use shared::secrets::{
    self, Secrets, CRM_WEBHOOK_SECRET, JWT_PREVIOUS_SECRETS, JWT_SECRET, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET,
};
use std::collections::HashMap;

const JWT_VALUE: &str = "jwt-key-from-secrets-manager-0123456789abcdef";

fn moto() {
    std::env::var("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|_| std::env::var("AWS_ENDPOINT_URL")).expect(
        "Secrets Manager tests need an endpoint: run them with `make test`, which starts moto and \
         exports AWS_ENDPOINT_URL",
    );
}

/// Creates a secret with a unique name on moto; returns its ARN and its name.
async fn create_secret(value: &str) -> (String, String) {
    moto();
    let client = shared::aws::lambda_secrets_client().expect("client from the moto environment");
    let name = format!("ahoum-test/{}", ulid::Ulid::new());
    let out = client.create_secret().name(&name).secret_string(value).send().await.expect("CreateSecret on moto");
    (out.arn().expect("CreateSecret returns the ARN").to_string(), name)
}

fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    move |name| map.get(name).cloned()
}

#[tokio::test]
async fn secrets_named_by_id_are_read_at_init_trimmed() {
    // Values as an operator pastes them: a trailing newline must not become part of the key.
    let (jwt_arn, _) = create_secret(&format!("{JWT_VALUE}\n")).await;
    let (key_arn, _) = create_secret("  sk_test_from_secrets_manager \n").await;
    let (_, hook_name) = create_secret("whsec_from_secrets_manager").await;
    let vars = lookup(&[
        ("JWT_SECRET_ID", &jwt_arn),
        ("STRIPE_SECRET_KEY_ID", &key_arn),
        // By name, as the template passes JwtSecretName/CrmWebhookSecretName.
        ("STRIPE_WEBHOOK_SECRET_ID", &hook_name),
    ]);
    let secrets = Secrets::load_with(&[JWT_SECRET, STRIPE_SECRET_KEY, STRIPE_WEBHOOK_SECRET], vars).await.unwrap();
    assert_eq!(secrets.get(JWT_SECRET), Some(JWT_VALUE));
    assert_eq!(secrets.get(STRIPE_SECRET_KEY), Some("sk_test_from_secrets_manager"));
    assert_eq!(secrets.get(STRIPE_WEBHOOK_SECRET), Some("whsec_from_secrets_manager"));

    // Through the configuration the functions build from them.
    let config = Config::from_lookup(|name| secrets.var(name))
        .unwrap()
        .with_jwt_secret(secrets.require(JWT_SECRET).unwrap())
        .unwrap();
    assert_eq!(config.jwt_secret.as_deref(), Some(JWT_VALUE.as_bytes()));
    assert!(config.payments_enabled, "the Stripe key from Secrets Manager turns payments on");
    assert_eq!(config.stripe_webhook_secret.as_deref(), Some("whsec_from_secrets_manager"));
    let stripe = payments::StripeConfig::from_lookup(|name| secrets.var(name)).unwrap().expect("a Stripe key");
    assert_eq!(stripe.secret_key, "sk_test_from_secrets_manager");
}

/// `JWT_PREVIOUS_SECRETS_ID` (the template's JwtPreviousSecretsArn) is read like the JWT key, in
/// the same concurrent fetch: a token signed with a previous key verifies in the App built from
/// it. Unset, it is simply absent (no call is made for it: nothing names a secret to fetch).
#[tokio::test]
async fn previous_jwt_keys_are_read_by_id_and_optional() {
    let old = "old-key-from-secrets-manager-0123456789abcdef";
    let older = "older-key-from-secrets-manager-0123456789abcdef";
    let (jwt_arn, _) = create_secret(JWT_VALUE).await;
    let (previous_arn, _) = create_secret(&format!("{old}, {older}\n")).await;
    let vars = lookup(&[("JWT_SECRET_ID", &jwt_arn), ("JWT_PREVIOUS_SECRETS_ID", &previous_arn)]);
    let secrets = Secrets::load_with(&[JWT_SECRET, JWT_PREVIOUS_SECRETS], vars).await.unwrap();
    let build = |secrets: &Secrets| {
        Config::from_lookup(|name| secrets.var(name))?
            .with_jwt_secret(secrets.require(JWT_SECRET)?)?
            .with_previous_jwt_secrets(secrets.get(JWT_PREVIOUS_SECRETS))
    };
    let config = build(&secrets).unwrap();
    assert_eq!(config.jwt_previous_secrets, [old.as_bytes(), older.as_bytes()]);
    let rotated = shared::App::new(tests::memory_store(), &config).unwrap();
    let signed_with_old =
        shared::App::new(tests::memory_store(), &tests::config().with_jwt_secret(old).unwrap()).unwrap();
    let token = tests::token_only(&signed_with_old, shared::model::Role::Attendee);
    assert!(rotated.tokens.verify(&token).is_ok(), "a token of a previous key");

    // Not configured: absent, and the configuration has no previous key.
    let vars = lookup(&[("JWT_SECRET_ID", &jwt_arn)]);
    let secrets = Secrets::load_with(&[JWT_SECRET, JWT_PREVIOUS_SECRETS], vars).await.unwrap();
    assert_eq!(secrets.get(JWT_PREVIOUS_SECRETS), None);
    assert!(build(&secrets).unwrap().jwt_previous_secrets.is_empty());
    assert!(shared::App::new(tests::memory_store(), &build(&secrets).unwrap()).unwrap().tokens.verify(&token).is_err());

    // A short previous key stops start-up without echoing it.
    let (short, _) = create_secret(&format!("{old},short-old-key")).await;
    let vars = lookup(&[("JWT_SECRET_ID", &jwt_arn), ("JWT_PREVIOUS_SECRETS_ID", &short)]);
    let secrets = Secrets::load_with(&[JWT_SECRET, JWT_PREVIOUS_SECRETS], vars).await.unwrap();
    let err = build(&secrets).expect_err("a short previous key").to_string();
    assert!(err.contains("JWT_PREVIOUS_SECRETS") && !err.contains("short-old-key"), "{err}");
}

#[tokio::test]
async fn a_plain_variable_wins_over_its_id() {
    let (arn, _) = create_secret("crm-value-from-secrets-manager").await;
    let vars = lookup(&[("CRM_WEBHOOK_SECRET", " whsec_plain "), ("CRM_WEBHOOK_SECRET_ID", &arn)]);
    let secrets = Secrets::load_with(&[CRM_WEBHOOK_SECRET], vars).await.unwrap();
    assert_eq!(secrets.get(CRM_WEBHOOK_SECRET), Some("whsec_plain"));
    // A blank plain variable counts as unset: the id is used.
    let vars = lookup(&[("CRM_WEBHOOK_SECRET", "  "), ("CRM_WEBHOOK_SECRET_ID", &arn)]);
    let secrets = Secrets::load_with(&[CRM_WEBHOOK_SECRET], vars).await.unwrap();
    assert_eq!(secrets.get(CRM_WEBHOOK_SECRET), Some("crm-value-from-secrets-manager"));
}

#[tokio::test]
async fn a_missing_secret_fails_start_up_naming_variable_and_id() {
    moto();
    let (arn, _) = create_secret(JWT_VALUE).await;
    let missing = format!("ahoum-test/{}-never-created", ulid::Ulid::new());
    let vars = lookup(&[("JWT_SECRET_ID", &arn), ("STRIPE_SECRET_KEY_ID", &missing)]);
    let err =
        Secrets::load_with(&[JWT_SECRET, STRIPE_SECRET_KEY], vars).await.expect_err("a missing secret is an error");
    let text = err.to_string();
    assert!(text.contains(&format!("STRIPE_SECRET_KEY_ID={missing}")), "{text}");
    assert!(text.contains("ResourceNotFoundException"), "Secrets Manager's reason: {text}");
    assert!(matches!(err, shared::Error::Config(_)), "{err:?}");
    // The secret that was found is not echoed in the error either.
    assert!(!text.contains(JWT_VALUE), "{text}");
}

#[tokio::test]
async fn a_blank_secret_is_refused_and_a_short_jwt_key_too() {
    let (blank, _) = create_secret(" \n").await;
    let err = Secrets::load_with(&[STRIPE_WEBHOOK_SECRET], lookup(&[("STRIPE_WEBHOOK_SECRET_ID", &blank)]))
        .await
        .expect_err("a blank secret is an error");
    assert!(err.to_string().contains("blank"), "{err}");

    let (short, _) = create_secret("31-bytes-is-not-enough-for-jwt!").await;
    let secrets = Secrets::load_with(&[JWT_SECRET], lookup(&[("JWT_SECRET_ID", &short)])).await.unwrap();
    let err = Config::from_lookup(|name| secrets.var(name))
        .unwrap()
        .with_jwt_secret(secrets.require(JWT_SECRET).unwrap())
        .expect_err("a 31-byte key is refused");
    assert!(err.to_string().contains("at least 32 bytes") && !err.to_string().contains("31-bytes"), "{err}");
}

#[tokio::test]
async fn nothing_set_is_absent_and_a_required_secret_says_so() {
    let secrets = Secrets::load_with(&[JWT_SECRET, STRIPE_SECRET_KEY], lookup(&[])).await.unwrap();
    assert_eq!(secrets.get(STRIPE_SECRET_KEY), None);
    let err = secrets.require(JWT_SECRET).unwrap_err().to_string();
    assert!(err.contains("JWT_SECRET is not set (nor JWT_SECRET_ID)"), "{err}");
}

/// The payments function builds its App without a JWT key: it starts, and no token issued with
/// the service key verifies there (it has no route that needs one).
#[tokio::test]
async fn an_app_without_a_jwt_key_verifies_no_token() {
    let config = Config::from_lookup(|name| (name == "STRIPE_WEBHOOK_SECRET").then(|| "whsec_x".to_string())).unwrap();
    assert!(config.jwt_secret.is_none());
    let keyless = shared::App::new(tests::memory_store(), &config).expect("no key needed");
    let keyed = tests::app(tests::memory_store());
    let token = tests::token_only(&keyed, shared::model::Role::Attendee);
    assert!(keyed.tokens.verify(&token).is_ok());
    assert!(keyless.tokens.verify(&token).is_err(), "a token verified without the key");
    assert_eq!(secrets::ID_SUFFIX, "_ID");
}
