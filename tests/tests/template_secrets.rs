//! `template.yaml`'s secrets: no function's configuration holds a secret value (readable by
//! anyone allowed `lambda:GetFunctionConfiguration`), each function is given the ids of exactly
//! the secrets its `main` reads (shared::secrets) and may `GetSecretValue` on those and no other,
//! the payments function, which verifies no token, gets no JWT key at all, and the previous JWT
//! keys of a rotation reach every function that verifies tokens, only while one is under way.

use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

fn template_text() -> String {
    std::fs::read_to_string(tests::workspace_root().join("template.yaml")).expect("read template.yaml")
}

fn template() -> Value {
    serde_yaml::from_str(&template_text()).expect("template.yaml is YAML")
}

fn tag<'a>(v: &'a Value, name: &str) -> Option<&'a Value> {
    match v {
        Value::Tagged(t) if t.tag == name => Some(&t.value),
        _ => None,
    }
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => untag(&t.value),
        v => v,
    }
}

fn list(v: &Value) -> &[Value] {
    untag(v).as_sequence().map(Vec::as_slice).unwrap_or_else(|| panic!("not a list: {v:?}"))
}

/// `!If [cond, then, else]` → (cond, then, else).
fn if_parts(v: &Value) -> Option<(&str, &Value, &Value)> {
    let parts = list(tag(v, "If")?);
    Some((parts[0].as_str().expect("condition name"), &parts[1], &parts[2]))
}

fn is_no_value(v: &Value) -> bool {
    tag(v, "Ref").and_then(Value::as_str) == Some("AWS::NoValue")
}

/// The template parameters a value refers to (`!Ref P`, `${P}` in `!Sub`), pseudo-parameters aside.
fn params(v: &Value, out: &mut BTreeSet<String>) {
    if let Some(name) = tag(v, "Ref").and_then(Value::as_str) {
        if !name.starts_with("AWS::") {
            out.insert(name.to_string());
        }
        return;
    }
    if let Some(text) = tag(v, "Sub").and_then(Value::as_str) {
        for piece in text.split("${").skip(1) {
            let name = piece.split('}').next().unwrap_or_default();
            if !name.starts_with("AWS::") {
                out.insert(name.to_string());
            }
        }
        return;
    }
    match untag(v) {
        Value::Sequence(items) => items.iter().for_each(|i| params(i, out)),
        Value::Mapping(m) => m.values().for_each(|i| params(i, out)),
        _ => {}
    }
}

fn functions(t: &Value) -> BTreeMap<String, &Value> {
    untag(&t["Resources"])
        .as_mapping()
        .expect("Resources")
        .iter()
        .filter(|(_, r)| r["Type"].as_str() == Some("AWS::Serverless::Function"))
        .map(|(id, r)| (id.as_str().unwrap().to_string(), &r["Properties"]))
        .collect()
}

fn env_vars(f: &Value) -> BTreeMap<String, &Value> {
    f.get("Environment")
        .and_then(|e| e.get("Variables"))
        .and_then(Value::as_mapping)
        .map(|m| m.iter().map(|(k, v)| (k.as_str().unwrap().to_string(), v)).collect())
        .unwrap_or_default()
}

/// Every IAM statement of a function's policies, looking through `!If [cond, policy, NoValue]`
/// (a policy that exists only under a condition), with that condition.
fn statements(f: &Value) -> Vec<(Option<String>, &Value)> {
    let mut out = Vec::new();
    for policy in list(&f["Policies"]) {
        let (cond, doc) = match if_parts(policy) {
            Some((cond, then, other)) => {
                assert!(is_no_value(other), "a conditional policy is either present or absent");
                (Some(cond.to_string()), then)
            }
            None => (None, policy),
        };
        for st in list(&untag(doc)["Statement"]) {
            out.push((cond.clone(), st));
        }
    }
    out
}

fn actions(st: &Value) -> Vec<String> {
    match untag(&st["Action"]) {
        Value::String(a) => vec![a.clone()],
        other => list(other).iter().map(|a| a.as_str().unwrap().to_string()).collect(),
    }
}

/// The secrets each function's `main` passes to `Secrets::load` (functions/*/src/main.rs), as the
/// template parameter holding each one's id.
fn expected() -> BTreeMap<&'static str, BTreeMap<&'static str, &'static str>> {
    let jwt = ("JWT_SECRET", "JwtSecretName");
    let previous = ("JWT_PREVIOUS_SECRETS", "JwtPreviousSecretsArn");
    let key = ("STRIPE_SECRET_KEY", "StripeSecretKeyArn");
    let hook = ("STRIPE_WEBHOOK_SECRET", "StripeWebhookSecretArn");
    let crm = ("CRM_WEBHOOK_SECRET", "CrmWebhookSecretName");
    BTreeMap::from([
        ("AuthFunction", BTreeMap::from([jwt, previous])),
        ("EventsFunction", BTreeMap::from([jwt, previous])),
        ("BookingsFunction", BTreeMap::from([jwt, previous, key])),
        ("PaymentsFunction", BTreeMap::from([hook, key])),
        ("CrmNotifierFunction", BTreeMap::from([crm, key])),
        ("CrmSweeperFunction", BTreeMap::from([crm, key])),
    ])
}

const SECRET_NAMES: [&str; 5] =
    ["JWT_SECRET", "JWT_PREVIOUS_SECRETS", "STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET", "CRM_WEBHOOK_SECRET"];

/// The secret parameters that are optional (full ARNs, empty by default), with the condition
/// under which a function is told the id and may read the secret.
fn optional_condition(param: &str) -> Option<&'static str> {
    match param {
        "StripeSecretKeyArn" | "StripeWebhookSecretArn" => Some("PaymentsOn"),
        "JwtPreviousSecretsArn" => Some("HasPreviousJwtSecrets"),
        _ => None,
    }
}

#[test]
fn no_secret_value_in_any_function_configuration() {
    let text = template_text();
    assert!(!text.contains("{{resolve:secretsmanager"), "a dynamic reference puts the value in the environment");
    assert!(!text.contains("{{resolve:ssm-secure"), "same for SecureString parameters");
    let t = template();
    for (id, f) in functions(&t) {
        for (name, value) in env_vars(f) {
            let rendered = format!("{value:?}");
            assert!(!rendered.contains("resolve:"), "{id}.{name} = {rendered}");
            if SECRET_NAMES.contains(&name.as_str()) {
                // Declared for `sam local --env-vars` only: empty, and absent when deployed.
                let (cond, then, other) = if_parts(value).unwrap_or_else(|| panic!("{id}.{name} holds a value"));
                assert_eq!(cond, "HasDynamoEndpoint", "{id}.{name}: declared for sam local only");
                assert_eq!(then.as_str(), Some(""), "{id}.{name}: never a value");
                assert!(is_no_value(other), "{id}.{name}: not declared in a deployed stack");
            }
        }
    }
}

/// The `_ID` variables name exactly the secrets the function reads (from the template parameter
/// for it; the Stripe ones only with payments on), and each plain name is declared beside its id
/// so `sam local --env-vars` can set it.
#[test]
fn each_function_gets_the_ids_of_its_own_secrets_only() {
    let t = template();
    let fns = functions(&t);
    let want = expected();
    assert_eq!(fns.keys().map(String::as_str).collect::<BTreeSet<_>>(), want.keys().copied().collect());
    for (id, f) in &fns {
        let vars = env_vars(f);
        let ids: BTreeMap<&str, String> = vars
            .iter()
            .filter_map(|(name, v)| name.strip_suffix("_ID").map(|secret| (secret, v)))
            .filter(|(secret, _)| SECRET_NAMES.contains(secret))
            .map(|(secret, v)| {
                let (cond, held) = match if_parts(v) {
                    Some((cond, then, other)) => {
                        assert!(is_no_value(other), "{id}.{secret}_ID");
                        (Some(cond), then)
                    }
                    None => (None, *v),
                };
                let param = tag(held, "Ref").and_then(Value::as_str);
                let param = param.unwrap_or_else(|| panic!("{id}.{secret}_ID is not a !Ref"));
                assert_eq!(cond, optional_condition(param), "{id}.{secret}_ID: declared only when {param} is given");
                (secret, param.to_string())
            })
            .collect();
        let want_ids: BTreeMap<&str, String> = want[id.as_str()].iter().map(|(k, v)| (*k, v.to_string())).collect();
        assert_eq!(ids, want_ids, "{id}: secret ids");
        for secret in SECRET_NAMES {
            assert_eq!(
                vars.contains_key(secret),
                ids.contains_key(secret),
                "{id}: {secret} declared (for sam local) exactly when {secret}_ID is"
            );
        }
        for stripe in ["STRIPE_SECRET_KEY", "STRIPE_WEBHOOK_SECRET"] {
            if let Some(v) = vars.get(&format!("{stripe}_ID")) {
                assert!(if_parts(v).is_some(), "{id}.{stripe}_ID: only with payments on");
            }
        }
    }
}

/// `secretsmanager:GetSecretValue` on the function's own secrets and nothing else: one statement,
/// that action only, resources built from exactly the parameters of its `_ID` variables, a name
/// turned into the ARN pattern Secrets Manager's random suffix needs, no wildcard beyond it, no
/// other Secrets Manager or KMS action (the secrets use the AWS managed key: docs/deploy.md).
#[test]
fn each_function_may_read_its_own_secrets_only() {
    let t = template();
    for (id, f) in functions(&t) {
        let want: BTreeSet<String> = expected()[id.as_str()].values().map(|p| p.to_string()).collect();
        let mut got = BTreeSet::new();
        let mut granting = 0;
        for (cond, st) in statements(f) {
            let acts = actions(st);
            assert!(
                acts.iter().all(|a| !a.starts_with("kms:")
                    && (!a.starts_with("secretsmanager:") || a == "secretsmanager:GetSecretValue")),
                "{id}: {acts:?}"
            );
            if !acts.iter().any(|a| a.starts_with("secretsmanager:")) {
                continue;
            }
            granting += 1;
            assert_eq!(acts, ["secretsmanager:GetSecretValue"], "{id}: the secrets statement grants one action");
            assert_eq!(untag(&st["Effect"]).as_str(), Some("Allow"));
            assert!(st.get("Condition").is_none() && st.get("NotResource").is_none(), "{id}");
            for resource in list(&st["Resource"]) {
                let mut ps = BTreeSet::new();
                params(resource, &mut ps);
                assert_eq!(ps.len(), 1, "{id}: one secret per resource entry: {resource:?}");
                let param = ps.into_iter().next().unwrap();
                check_resource(&id, &param, resource, cond.as_deref());
                got.insert(param);
            }
        }
        assert_eq!(granting, 1, "{id}: one secrets statement");
        assert_eq!(got, want, "{id}: GetSecretValue on exactly the secrets it reads");
    }
}

/// An optional ARN parameter (Stripe's, the previous JWT keys') is used as given and only under
/// its condition; a name parameter becomes `arn:…:secret:<name>-??????` unless it is an ARN already.
fn check_resource(id: &str, param: &str, resource: &Value, policy_condition: Option<&str>) {
    if let Some(want) = optional_condition(param) {
        let inner = match if_parts(resource) {
            Some((cond, then, other)) => {
                assert_eq!(cond, want, "{id}: {param}");
                assert!(is_no_value(other), "{id}: {param}");
                then
            }
            None => {
                assert_eq!(policy_condition, Some(want), "{id}: {param} granted without {want}");
                resource
            }
        };
        assert_eq!(tag(inner, "Ref").and_then(Value::as_str), Some(param), "{id}");
        return;
    }
    let (cond, arn, name) = if_parts(resource).unwrap_or_else(|| panic!("{id}: {param} is not an !If on ARN-ness"));
    assert!(cond.ends_with("IsArn"), "{id}: {cond}");
    assert_eq!(tag(arn, "Ref").and_then(Value::as_str), Some(param), "{id}");
    let pattern = tag(name, "Sub").and_then(Value::as_str).expect("a !Sub ARN pattern");
    assert_eq!(
        pattern,
        format!(
            "arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:${{{param}}}-??????"
        ),
        "{id}: the secret's name plus Secrets Manager's six random characters, nothing wider"
    );
}

#[test]
fn the_payments_function_gets_no_jwt_secret() {
    let t = template();
    let f = functions(&t)["PaymentsFunction"];
    for (name, value) in env_vars(f) {
        assert!(!name.starts_with("JWT_"), "PaymentsFunction declares {name}");
        let mut ps = BTreeSet::new();
        params(value, &mut ps);
        assert!(!ps.contains("JwtSecretName"), "PaymentsFunction.{name} refers to the JWT secret");
        assert!(!ps.contains("JwtPreviousSecretsArn"), "PaymentsFunction.{name} refers to the previous JWT keys");
    }
    let mut ps = BTreeSet::new();
    params(&f["Policies"], &mut ps);
    assert!(!ps.contains("JwtSecretName"), "PaymentsFunction may read the JWT secret");
    assert!(!ps.contains("JwtPreviousSecretsArn"), "PaymentsFunction may read the previous JWT keys");
    // And with payments off it may read no secret at all: its one secrets policy is conditional.
    assert!(statements(f)
        .iter()
        .filter(|(_, st)| actions(st).iter().any(|a| a.starts_with("secretsmanager:")))
        .all(|(cond, _)| cond.as_deref() == Some("PaymentsOn")));
}

/// The secret parameters: ids only (names or full ARNs), never a value; the ARN-ness conditions
/// the IAM resources use split on the ARN's first field.
#[test]
fn secret_parameters_take_ids_not_values() {
    let t = template();
    for p in [
        "JwtSecretName",
        "JwtPreviousSecretsArn",
        "CrmWebhookSecretName",
        "StripeSecretKeyArn",
        "StripeWebhookSecretArn",
    ] {
        let param = &t["Parameters"][p];
        let pattern = param["AllowedPattern"].as_str().unwrap_or_else(|| panic!("{p} has no AllowedPattern"));
        assert!(pattern.contains("secretsmanager"), "{p}: {pattern}");
        assert!(!pattern.contains("SecretString"), "{p}: a dynamic-reference suffix is no secret id: {pattern}");
        assert!(param.get("NoEcho").is_none(), "{p}: an id needs no NoEcho; a value does not belong here");
    }
    for (cond, param) in [("JwtSecretIsArn", "JwtSecretName"), ("CrmSecretIsArn", "CrmWebhookSecretName")] {
        let rendered = format!("{:?}", t["Conditions"][cond]);
        assert!(rendered.contains(param) && rendered.contains("\"arn\""), "{cond}: {rendered}");
    }
}

/// Key rotation: the previous JWT keys' secret is optional (empty by default, so a stack that is
/// not rotating has neither the variable nor the permission), and when given, every function that
/// verifies tokens (those with `JWT_SECRET_ID`) gets it, since a token signed before the rotation
/// may reach any of them.
#[test]
fn previous_jwt_keys_reach_every_verifier_only_during_a_rotation() {
    let t = template();
    let param = &t["Parameters"]["JwtPreviousSecretsArn"];
    assert_eq!(param["Default"].as_str(), Some(""), "no rotation unless asked for");
    let pattern = param["AllowedPattern"].as_str().unwrap();
    assert!(pattern.starts_with("^$|^arn:aws"), "empty or a full ARN: {pattern}");
    let cond = format!("{:?}", t["Conditions"]["HasPreviousJwtSecrets"]);
    assert!(cond.contains("Not") && cond.contains("Equals") && cond.contains("JwtPreviousSecretsArn"), "{cond}");
    let mut verifiers = BTreeSet::new();
    for (id, f) in functions(&t) {
        let vars = env_vars(f);
        if !vars.contains_key("JWT_SECRET_ID") {
            assert!(!vars.contains_key("JWT_PREVIOUS_SECRETS_ID"), "{id}");
            continue;
        }
        verifiers.insert(id.clone());
        let (cond, then, other) = if_parts(vars["JWT_PREVIOUS_SECRETS_ID"]).expect("conditional");
        assert_eq!(cond, "HasPreviousJwtSecrets", "{id}");
        assert_eq!(tag(then, "Ref").and_then(Value::as_str), Some("JwtPreviousSecretsArn"), "{id}");
        assert!(is_no_value(other), "{id}: no variable when not rotating");
        let grants: Vec<&Value> = statements(f)
            .into_iter()
            .filter(|(_, st)| actions(st).iter().any(|a| a == "secretsmanager:GetSecretValue"))
            .flat_map(|(_, st)| list(&st["Resource"]))
            .filter(|r| format!("{r:?}").contains("JwtPreviousSecretsArn"))
            .collect();
        assert_eq!(grants.len(), 1, "{id}: {grants:?}");
        let (cond, _, other) = if_parts(grants[0]).expect("a conditional grant");
        assert_eq!(cond, "HasPreviousJwtSecrets", "{id}");
        assert!(is_no_value(other), "{id}: no permission when not rotating");
    }
    let want: BTreeSet<String> = ["AuthFunction", "EventsFunction", "BookingsFunction"].map(String::from).into();
    assert_eq!(verifiers, want);
}
