use crate::yaml::{at, functions, raw_at, ref_name, resources_of_type, seq, str_at, tagged, template, untag};
use serde_yaml::Value;
use std::collections::{BTreeMap, BTreeSet};

#[test]
fn functions_build_their_own_binary_on_arm64() {
    let t = template();
    assert_eq!(str_at(&t, &["Globals", "Function", "Runtime"]), "provided.al2023");
    assert_eq!(seq(at(&t, &["Globals", "Function", "Architectures"])).len(), 1);
    assert_eq!(str_at(&seq(at(&t, &["Globals", "Function", "Architectures"]))[0], &[]), "arm64");
    let bins = BTreeMap::from([
        ("AuthFunction", "auth"),
        ("EventsFunction", "events"),
        ("BookingsFunction", "bookings"),
        ("PaymentsFunction", "payments"),
        ("CrmNotifierFunction", "crm-notifier"),
        ("CrmSweeperFunction", "crm-sweeper"),
    ]);
    for (id, f) in functions(&t) {
        assert_eq!(str_at(f, &["Metadata", "BuildMethod"]), "rust-cargolambda", "{id}");
        let bin = str_at(f, &["Metadata", "BuildProperties", "Binary"]);
        assert_eq!(Some(&bin), bins.get(id.as_str()), "{id}");
        assert_eq!(str_at(f, &["Properties", "CodeUri"]), ".", "{id}: built from the workspace root");
        let dir = tests::workspace_root().join("functions").join(bin);
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_else(|e| panic!("{id}: {e}"));
        assert!(manifest.contains(&format!("name = \"{bin}\"")), "{id}: functions/{bin} is package {bin}");
        assert!(dir.join("src/main.rs").exists(), "{id}: functions/{bin} has a binary");
    }
}

/// Every alarm notifies (the given topic, or the one the stack creates) on ALARM and OK; there is a
/// dead-letter queue depth alarm, a stream iterator-age alarm on the notifier, an `Errors` alarm for
/// every function, and a 5xx alarm on the HTTP API.
#[test]
fn alarms_cover_every_function_the_queue_the_stream_and_the_api_and_notify() {
    let t = template();
    let alarms = resources_of_type(&t, "AWS::CloudWatch::Alarm");
    let topic = |v: &Value, id: &str, what: &str| {
        let actions = seq(at(v, &["Properties", what]));
        assert_eq!(actions.len(), 1, "{id}: {what}");
        let choice = tagged(&actions[0], "If").unwrap_or_else(|| panic!("{id}: {what} is not !If"));
        let choice = seq(choice);
        assert_eq!(choice[0].as_str(), Some("CreateAlarmTopic"), "{id}");
        assert_eq!(ref_name(&choice[1]), Some("AlarmTopic"), "{id}");
        assert_eq!(ref_name(&choice[2]), Some("AlarmTopicArn"), "{id}");
    };
    let mut metrics = BTreeSet::new();
    for (id, a) in &alarms {
        topic(a, id, "AlarmActions");
        topic(a, id, "OKActions");
        let p = at(a, &["Properties"]);
        if id == "RefundFailedAlarm" {
            // A metric of the stack's own log filters (template_ops.rs checks them).
            metrics.insert(format!(
                "{}/{}",
                serde_yaml::to_string(at(p, &["Namespace"])).unwrap().trim(),
                str_at(p, &["MetricName"])
            ));
            continue;
        }
        let dims = seq(at(p, &["Dimensions"]));
        assert_eq!(dims.len(), 1, "{id}: one dimension");
        let value = raw_at(&dims[0], &["Value"]);
        let target = ref_name(value)
            .map(String::from)
            .or_else(|| tagged(value, "GetAtt").and_then(Value::as_str).map(String::from))
            .unwrap_or_else(|| panic!("{id}: dimension value is not a !Ref or !GetAtt"));
        metrics.insert(format!(
            "{}/{} {}={target}",
            str_at(p, &["Namespace"]),
            str_at(p, &["MetricName"]),
            str_at(&dims[0], &["Name"])
        ));
        assert!(at(p, &["Threshold"]).as_f64().is_some(), "{id}: threshold");
        assert_eq!(str_at(p, &["TreatMissingData"]), "notBreaching", "{id}");
    }
    let mut want: BTreeSet<String> =
        functions(&t).iter().map(|(id, _)| format!("AWS/Lambda/Errors FunctionName={id}")).collect();
    want.extend([
        "AWS/SQS/NumberOfMessagesSent QueueName=CrmDeadLetterQueue.QueueName".to_string(),
        "AWS/Lambda/IteratorAge FunctionName=CrmNotifierFunction".to_string(),
        "AWS/ApiGateway/5xx ApiId=HttpApi".to_string(),
        "${AWS::StackName}/payments/RefundFailed".to_string(),
    ]);
    assert_eq!(metrics, want);
    // The topic the stack creates only when none is given.
    let created = at(&t, &["Resources", "AlarmTopic"]);
    assert_eq!(str_at(created, &["Condition"]), "CreateAlarmTopic");
    assert_eq!(str_at(&t, &["Parameters", "AlarmTopicArn", "Default"]), "");
}

/// `sam local invoke --env-vars` overrides only variables the template declares, so the endpoint
/// override must be declared for every function; deployed with the default parameter it is absent.
#[test]
fn every_function_can_be_pointed_at_a_local_dynamodb() {
    let t = template();
    assert_eq!(str_at(&t, &["Parameters", "DynamoEndpoint", "Default"]), "");
    let var = raw_at(&t, &["Globals", "Function", "Environment", "Variables", "AWS_ENDPOINT_URL_DYNAMODB"]);
    let choice = seq(tagged(var, "If").expect("AWS_ENDPOINT_URL_DYNAMODB is an !If"));
    assert_eq!(choice[0].as_str(), Some("HasDynamoEndpoint"));
    assert_eq!(ref_name(&choice[1]), Some("DynamoEndpoint"));
    assert_eq!(ref_name(&choice[2]), Some("AWS::NoValue"));
    for (id, f) in functions(&t) {
        let own = untag(f).get("Properties").and_then(|p| p.get("Environment"));
        let own = own.and_then(|e| e.get("Variables")).and_then(|v| v.get("AWS_ENDPOINT_URL_DYNAMODB"));
        assert!(own.is_none(), "{id} overrides the global AWS_ENDPOINT_URL_DYNAMODB");
    }
}

/// CORS and X-Ray are opt-in: off with the default parameters.
#[test]
fn cors_and_tracing_are_off_by_default() {
    let t = template();
    assert_eq!(str_at(&t, &["Parameters", "CorsAllowOrigins", "Default"]), "");
    let cors = raw_at(&t, &["Resources", "HttpApi", "Properties", "CorsConfiguration"]);
    let choice = seq(tagged(cors, "If").expect("CorsConfiguration is an !If"));
    assert_eq!(choice[0].as_str(), Some("HasCors"));
    assert_eq!(ref_name(&choice[2]), Some("AWS::NoValue"));
    assert_eq!(str_at(&t, &["Parameters", "TracingMode", "Default"]), "Disabled");
    assert_eq!(ref_name(raw_at(&t, &["Globals", "Function", "Tracing"])), Some("TracingMode"));
}

/// The webhook function: the workspace's `payments` binary, 128 MB (the global default), an
/// `Errors` alarm (checked with the others), its own log group, and more time than the global
/// 10 s for the one Stripe call it may make; the bookings function likewise; both under the HTTP
/// API's 30 s integration timeout.
#[test]
fn payments_function_is_deployed_like_the_others() {
    let t = template();
    let f = at(&t, &["Resources", "PaymentsFunction", "Properties"]);
    assert!(f.get("MemorySize").is_none(), "128 MB like the others (Globals)");
    assert_eq!(at(&t, &["Globals", "Function", "MemorySize"]).as_u64(), Some(128));
    assert_eq!(str_at(f, &["LoggingConfig", "LogFormat"]), "JSON");
    assert_eq!(ref_name(raw_at(f, &["LoggingConfig", "LogGroup"])), Some("PaymentsLogGroup"));
    for id in ["PaymentsFunction", "BookingsFunction"] {
        let timeout = at(&t, &["Resources", id, "Properties", "Timeout"]).as_u64().expect("Timeout");
        assert!((15..30).contains(&timeout), "{id}: {timeout}");
    }
    let output = str_at(&t, &["Outputs", "PaymentsWebhookUrl", "Value"]);
    assert!(output.ends_with("/payments/webhook") && output.starts_with("https://${HttpApi}."), "{output}");
}

/// The sweeper runs every 10 minutes from an EventBridge schedule, for longer than a request but
/// less than the schedule's period. The same run sweeps the payment holds (31 minutes long) whose
/// webhook never came: such a seat is freed at most one period after its hold ends
/// (docs/deploy.md, Payments).
#[test]
fn crm_sweeper_runs_every_ten_minutes() {
    let t = template();
    let f = at(&t, &["Resources", "CrmSweeperFunction", "Properties"]);
    let events = at(f, &["Events"]).as_mapping().expect("Events");
    assert_eq!(events.len(), 1);
    let (_, event) = events.iter().next().unwrap();
    assert_eq!(str_at(event, &["Type"]), "Schedule");
    assert_eq!(str_at(event, &["Properties", "Schedule"]), "rate(10 minutes)");
    let timeout = at(f, &["Timeout"]).as_u64().expect("Timeout");
    assert!((60..600).contains(&timeout), "{timeout}");
    let vars = at(f, &["Environment", "Variables"]);
    for name in [
        "CRM_WEBHOOK_URL",
        "CRM_WEBHOOK_SECRET_ID",
        "CRM_SWEEP_MIN_AGE_SECONDS",
        "CRM_SWEEP_LOOKBACK_DAYS",
        "STRIPE_SECRET_KEY_ID",
    ] {
        assert!(vars.get(name).is_some(), "{name}");
    }
}
