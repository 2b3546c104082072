use crate::yaml::{at, functions, raw_at, ref_name, seq, str_at, tagged, template, untag};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

/// The environment variables a function declares, with their raw (tagged) values.
fn env_vars(f: &Value) -> BTreeMap<String, &Value> {
    let Some(vars) = untag(f).get("Properties").and_then(|p| p.get("Environment")).and_then(|e| e.get("Variables"))
    else {
        return BTreeMap::new();
    };
    untag(vars).as_mapping().expect("Variables").iter().map(|(k, v)| (k.as_str().unwrap().to_string(), v)).collect()
}

/// `!If [PaymentsOn, <then>, !Ref AWS::NoValue]`: the `then` branch.
fn only_with_payments<'a>(id: &str, name: &str, v: &'a Value) -> &'a Value {
    let choice = seq(tagged(v, "If").unwrap_or_else(|| panic!("{id}.{name} is not an !If")));
    assert_eq!(choice[0].as_str(), Some("PaymentsOn"), "{id}.{name}");
    assert_eq!(ref_name(&choice[2]), Some("AWS::NoValue"), "{id}.{name}: declared at all only with payments on");
    &choice[1]
}

/// Payments are off unless both Stripe secrets are given (and the Rules refuse one alone); the
/// secrets reach only the functions that call Stripe or check its signatures, as the ARNs of the
/// Secrets Manager secrets they read at init (never a value in the template); the events function
/// gets the switch only.
#[test]
fn stripe_secrets_reach_only_the_functions_that_need_them() {
    let t = template();
    let text = std::fs::read_to_string(tests::workspace_root().join("template.yaml")).unwrap();
    // A value: a known prefix followed by key material (a description may name the prefix).
    for prefix in ["sk_live_", "sk_test_", "rk_live_", "rk_test_", "whsec_"] {
        for (at, _) in text.match_indices(prefix) {
            let material = text[at + prefix.len()..].chars().take_while(|c| c.is_ascii_alphanumeric()).count();
            assert!(material < 8, "a Stripe secret value ({prefix}...) in template.yaml");
        }
    }
    for p in ["StripeSecretKeyArn", "StripeWebhookSecretArn", "PaymentSuccessUrl", "PaymentCancelUrl"] {
        assert_eq!(str_at(&t, &["Parameters", p, "Default"]), "", "{p}: payments are off by default");
    }
    // PaymentsOn = both ARNs non-empty.
    let on = seq(tagged(raw_at(&t, &["Conditions", "PaymentsOn"]), "And").expect("PaymentsOn is an !And"));
    let mut given: Vec<&str> = on
        .iter()
        .map(|c| {
            let eq = seq(tagged(&seq(tagged(c, "Not").expect("!Not"))[0], "Equals").expect("!Equals"));
            assert_eq!(eq[1].as_str(), Some(""));
            ref_name(&eq[0]).expect("!Ref")
        })
        .collect();
    given.sort();
    assert_eq!(given, ["StripeSecretKeyArn", "StripeWebhookSecretArn"]);
    for rule in ["StripeSecretsTogether", "PaymentRedirects"] {
        assert!(!seq(at(&t, &["Rules", rule, "Assertions"])).is_empty(), "{rule}");
    }

    let key = "StripeSecretKeyArn".to_string();
    let webhook = "StripeWebhookSecretArn".to_string();
    // Creating a Checkout Session takes the key and both redirects.
    let checkout = || {
        BTreeMap::from([
            ("STRIPE_SECRET_KEY_ID", key.clone()),
            ("PAYMENT_SUCCESS_URL", "PaymentSuccessUrl".to_string()),
            ("PAYMENT_CANCEL_URL", "PaymentCancelUrl".to_string()),
        ])
    };
    // function -> variable -> the parameter it holds when payments are on
    let want: BTreeMap<&str, BTreeMap<&str, String>> = BTreeMap::from([
        ("AuthFunction", BTreeMap::new()),
        ("EventsFunction", BTreeMap::new()),
        ("BookingsFunction", checkout()),
        (
            "PaymentsFunction",
            BTreeMap::from([("STRIPE_WEBHOOK_SECRET_ID", webhook.clone()), ("STRIPE_SECRET_KEY_ID", key.clone())]),
        ),
        // the notifier opens waitlist offers from their task's stream record, and the sweeper
        // those Stripe could not open at once: both create Checkout Sessions
        ("CrmNotifierFunction", checkout()),
        ("CrmSweeperFunction", checkout()),
    ]);
    let fns = functions(&t);
    assert_eq!(fns.iter().map(|(id, _)| id.as_str()).collect::<BTreeSet<_>>(), want.keys().copied().collect());
    for (id, f) in &fns {
        let vars = env_vars(f);
        let got: BTreeMap<&str, String> = vars
            .iter()
            .filter(|(name, _)| name.starts_with("STRIPE_") || name.starts_with("PAYMENT_"))
            // The plain secret names, declared empty for `sam local` (tests/tests/template_secrets.rs).
            .filter(|(_, v)| tagged(v, "If").is_none_or(|c| seq(c)[0].as_str() != Some("HasDynamoEndpoint")))
            .map(|(name, v)| {
                let then = only_with_payments(id, name, v);
                let held = tagged(then, "Sub")
                    .and_then(Value::as_str)
                    .or_else(|| ref_name(then))
                    .unwrap_or_else(|| panic!("{id}.{name}: neither a !Sub nor a !Ref"));
                (name.as_str(), held.to_string())
            })
            .collect();
        assert_eq!(got, want[id.as_str()], "{id}: Stripe configuration");
        // The switch: only the events function needs it (the others know from the key).
        match vars.get("PAYMENTS_ENABLED") {
            Some(v) => {
                assert_eq!(id, "EventsFunction", "{id} declares PAYMENTS_ENABLED");
                let choice = seq(tagged(v, "If").expect("PAYMENTS_ENABLED is an !If"));
                assert_eq!(choice[0].as_str(), Some("PaymentsOn"));
                assert_eq!((choice[1].as_str(), choice[2].as_str()), (Some("true"), Some("false")));
            }
            None => assert_ne!(id, "EventsFunction", "EventsFunction needs PAYMENTS_ENABLED"),
        }
    }
}
