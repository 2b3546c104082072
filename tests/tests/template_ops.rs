//! The operational settings of `template.yaml` and `samconfig.toml` that decide whether a deploy
//! tells anyone anything: a real CRM endpoint, someone the alarms reach, a dead-letter alarm for
//! every message, a sweeper that is not run three times per tick, timeouts that add up under the
//! HTTP API's 30 s, and a release profile in which a panic fails one request only.

use serde_yaml::Value;
use shared::aws::dynamodb_limits;
use std::time::Duration;
use tests::apigw::untag;

fn read(file: &str) -> String {
    std::fs::read_to_string(tests::workspace_root().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"))
}

fn template() -> Value {
    serde_yaml::from_str(&read("template.yaml")).expect("template.yaml is YAML")
}

fn at<'a>(v: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .fold(untag(v), |cur, key| untag(cur.get(*key).unwrap_or_else(|| panic!("template has no {}", path.join(".")))))
}

/// Whether Python's `re` (the same syntax as the Java regex CloudFormation applies to
/// `AllowedPattern`, for what this pattern uses) matches each value in full.
fn pattern_matches(pattern: &str, values: &[&str]) -> Vec<bool> {
    let script = "import re,sys,json; p=re.compile(sys.argv[1]); print(json.dumps([bool(p.fullmatch(v)) for v in sys.argv[2:]]))";
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(pattern)
        .args(values)
        .output()
        .expect("python3 runs (it is part of the toolchain: scripts/, the venv)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("a JSON list")
}

/// GIVEN the deploy configuration WHEN deployed without a real CRM endpoint THEN CloudFormation
/// refuses it: the parameter has no default, its pattern refuses the documentation domains (the
/// old samconfig placeholder) and plain http beyond `sam local`'s loopback hosts, and
/// samconfig.toml sets no value (a plain `sam deploy` fails, `--guided` asks).
#[test]
fn a_deploy_without_a_real_crm_endpoint_fails() {
    let t = template();
    let p = at(&t, &["Parameters", "CrmWebhookUrl"]);
    assert!(p.get("Default").is_none(), "CrmWebhookUrl must have no default");
    let pattern = at(p, &["AllowedPattern"]).as_str().unwrap();
    let cases = [
        ("https://crm.example.com/webhooks/bookings", false),
        ("https://example.org", false),
        ("http://crm.acme.io/hooks", false),
        ("", false),
        ("https://hooks.acme.io/bookings?token=abc", true),
        ("https://crm.acme.io:8443/x", true),
        ("http://localhost/", true),
        ("http://host.docker.internal:8080/crm", true),
    ];
    let got = pattern_matches(pattern, &cases.map(|(v, _)| v));
    for ((value, want), got) in cases.iter().zip(got) {
        assert_eq!(got, *want, "CrmWebhookUrl={value:?}");
    }
    let samconfig = read("samconfig.toml");
    for line in samconfig.lines().map(str::trim).filter(|l| !l.starts_with('#')) {
        assert!(!line.contains("CrmWebhookUrl="), "samconfig.toml sets CrmWebhookUrl: {line}");
        assert!(!line.contains("example.com"), "samconfig.toml deploys a placeholder: {line}");
    }
}

/// Alarms that reach nobody are no alarms: a Rule refuses a deploy with neither `AlarmEmail` nor
/// `AlarmTopicArn`, and the created topic subscribes the address.
#[test]
fn alarms_reach_someone() {
    let t = template();
    let rule = serde_yaml::to_string(at(&t, &["Rules", "AlarmDestination", "Assertions"])).unwrap();
    assert!(rule.contains("AlarmTopicArn") && rule.contains("AlarmEmail"), "{rule}");
    assert!(rule.contains("!Or") && rule.contains("!Not"), "{rule}");
    let subscription = at(&t, &["Resources", "AlarmEmailSubscription", "Properties"]);
    assert_eq!(at(subscription, &["Protocol"]).as_str(), Some("email"));
    let docs = read("docs/deploy.md");
    assert!(docs.contains("AlarmDestination") && docs.contains("AlarmEmail"), "docs/deploy.md: the alarm e-mail");
}

/// Every queue in the template is a failure destination; each has an alarm that fires in every
/// period in which a message was sent to it (`NumberOfMessagesSent`, Sum ≥ 1), not one on the
/// queue's depth, which stays in ALARM after the first message and notifies nobody of the next.
#[test]
fn every_dead_letter_queue_alarms_on_each_message_sent() {
    let t = template();
    let resources = at(&t, &["Resources"]).as_mapping().unwrap();
    let of_type = |ty: &str| -> Vec<(String, &Value)> {
        resources
            .iter()
            .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some(ty))
            .map(|(id, r)| (id.as_str().unwrap().to_string(), r))
            .collect()
    };
    let queues = of_type("AWS::SQS::Queue");
    assert!(!queues.is_empty());
    for (queue, _) in &queues {
        let alarm = of_type("AWS::CloudWatch::Alarm").into_iter().find(|(_, a)| {
            let p = at(a, &["Properties"]);
            serde_yaml::to_string(&p["Dimensions"]).unwrap().contains(&format!("{queue}.QueueName"))
        });
        let (id, alarm) = alarm.unwrap_or_else(|| panic!("no alarm on {queue}"));
        let p = at(alarm, &["Properties"]);
        let field = |k: &str| at(p, &[k]).clone();
        assert_eq!(field("MetricName").as_str(), Some("NumberOfMessagesSent"), "{id}");
        assert_eq!(field("Statistic").as_str(), Some("Sum"), "{id}");
        assert_eq!(field("Threshold").as_f64(), Some(1.0), "{id}");
        assert_eq!(field("ComparisonOperator").as_str(), Some("GreaterThanOrEqualToThreshold"), "{id}");
        assert_eq!(field("EvaluationPeriods").as_u64(), Some(1), "{id}");
    }
}

/// The schedule invokes the sweeper asynchronously; Lambda's two default retries of a failed run
/// would make three overlapping sweeps of one tick. The next tick is the retry.
#[test]
fn the_sweeper_is_not_retried_by_lambda() {
    let t = template();
    let config = at(&t, &["Resources", "CrmSweeperFunction", "Properties", "EventInvokeConfig"]);
    assert_eq!(at(config, &["MaximumRetryAttempts"]).as_u64(), Some(0));
    let age = at(config, &["MaximumEventAgeInSeconds"]).as_u64().unwrap();
    assert!((60..=600).contains(&age), "an event older than one period is replaced by the next tick: {age}");
}

/// Worst cases when every dependency stalls (docs/deploy.md, Timeouts): each HTTP function's
/// `Timeout` covers its slowest path and stays under API Gateway's 30 s integration timeout, so
/// the client gets the function's own 503/502 rather than API Gateway's bare 5xx.
#[test]
fn timeouts_add_up_under_the_http_apis_30_seconds() {
    let t = template();
    let timeout = |id: &str| {
        let f = at(&t, &["Resources", id, "Properties"]);
        let secs = f.get("Timeout").map(untag).or_else(|| Some(at(&t, &["Globals", "Function", "Timeout"])));
        Duration::from_secs(secs.and_then(Value::as_u64).unwrap())
    };
    let op = dynamodb_limits::OPERATION;
    // DynamoStore::transact asks again up to 6 times when the outcome is unknown (a timeout), with
    // at most 10/20/40/80/160/320 ms between (shared/src/store/dynamo/mod.rs).
    let transaction = op * 6 + Duration::from_millis(630);
    let stripe = payments::stripe::DEFAULT_TIMEOUT;
    let argon2 = Duration::from_secs(1);
    let worst = [
        ("AuthFunction", transaction + argon2),               // register
        ("AuthFunction", op * 5 + argon2),                    // login: 5 calls
        ("EventsFunction", op * 2),                           // create/update/delete: role + write
        ("BookingsFunction", op + transaction + stripe + op), // paid booking
        ("PaymentsFunction", op + transaction + stripe + op), // settle + late refund
    ];
    for (id, need) in worst {
        let have = timeout(id);
        assert!(need <= have, "{id}: worst case {need:?} > Timeout {have:?}");
        assert!(have < Duration::from_secs(30), "{id}: Timeout {have:?} not under API Gateway's 30 s");
    }
    assert!(stripe <= Duration::from_secs(10) && payments::stripe::DEFAULT_CONNECT_TIMEOUT < stripe);
}

/// A panic in a handler fails that invocation (lambda_runtime's `CatchPanicService` catches it
/// with `catch_unwind`); with `panic = "abort"` the process would die with it.
#[test]
fn release_builds_unwind_panics() {
    let cargo = read("Cargo.toml");
    let release = cargo.split("[profile.release]").nth(1).expect("[profile.release]");
    let release = release.split("\n[").next().unwrap();
    let panic = release.lines().find(|l| l.trim_start().starts_with("panic")).expect("panic = in [profile.release]");
    assert_eq!(panic.split('=').nth(1).map(|v| v.trim().trim_matches('"')), Some("unwind"), "{panic}");
}

/// A refund Stripe reports `failed` or `canceled` pages the operators: each function that records
/// refund outcomes has a metric filter matching the exact log field the code writes, and one
/// alarm watches their metric.
#[test]
fn failed_refunds_raise_the_alarm() {
    let t = template();
    let pattern = format!("{{ $.fields.alarm = \"{}\" }}", shared::payments::REFUND_FAILED_ALARM);
    for (filter, group) in [
        ("BookingsRefundFailedMetric", "BookingsLogGroup"),
        ("PaymentsRefundFailedMetric", "PaymentsLogGroup"),
        ("CrmSweeperRefundFailedMetric", "CrmSweeperLogGroup"),
    ] {
        let f = at(&t, &["Resources", filter]);
        assert_eq!(at(f, &["Type"]).as_str(), Some("AWS::Logs::MetricFilter"), "{filter}");
        let p = at(f, &["Properties"]);
        assert_eq!(at(p, &["FilterPattern"]).as_str(), Some(pattern.as_str()), "{filter}");
        assert!(serde_yaml::to_string(at(p, &["LogGroupName"])).unwrap().contains(group), "{filter}");
        let m = serde_yaml::to_string(at(p, &["MetricTransformations"])).unwrap();
        assert!(m.contains("RefundFailed") && m.contains("/payments"), "{filter}: {m}");
    }
    let alarm = at(&t, &["Resources", "RefundFailedAlarm", "Properties"]);
    assert_eq!(at(alarm, &["MetricName"]).as_str(), Some("RefundFailed"));
    assert_eq!(at(alarm, &["Threshold"]).as_f64(), Some(0.0));
    assert_eq!(at(alarm, &["ComparisonOperator"]).as_str(), Some("GreaterThanThreshold"));
}
