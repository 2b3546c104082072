//! Operator CLI against the DynamoDB table (TABLE_NAME or --table; AWS environment as usual).
//!
//!   admin create-table            create the table as template.yaml declares it
//!   admin promote EMAIL ROLE      set an existing account's role (admin|facilitator|attendee)
//!   admin seed [--owner USER_ID]  create the sample events (idempotent)
//!   admin bootstrap-admin         ensure BOOTSTRAP_ADMIN_EMAIL exists as admin: created with
//!                                 BOOTSTRAP_ADMIN_PASSWORD if missing; an existing account is
//!                                 promoted only if that password is its own')
//!   admin crm-redeliver [--since DURATION|RFC3339] [--min-age DURATION]
//!                                 the CRM sweeper's sweep, by hand: delivers every booking made
//!                                 since then (default 14d ago) and at least --min-age ago
//!                                 (default 5m) that has no final CRM delivery record yet; needs
//!                                 CRM_WEBHOOK_URL and CRM_WEBHOOK_SECRET like the function

use shared::model::Role;
use shared::password::PasswordHasher;
use shared::store::DynamoStore;
use shared::{seed, Error};

const USAGE: &str = "usage: admin [--table NAME] <create-table | promote EMAIL ROLE | seed [--owner USER_ID] | \
     bootstrap-admin | crm-redeliver [--since DURATION|RFC3339] [--min-age DURATION]>";

/// Without a table there is nothing this CLI can reach: `make run`'s embedded store lives inside
/// that process.
const NO_TABLE: &str = "set TABLE_NAME or pass --table: this CLI works on a DynamoDB table. \
     `make run` without TABLE_NAME keeps its data in its own memory, out of this CLI's reach; for an \
     admin there, start it with BOOTSTRAP_ADMIN_EMAIL=… BOOTSTRAP_ADMIN_PASSWORD=…";

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(args).await {
        Ok(msg) => println!("{msg}"),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}

fn take_flag(args: &mut Vec<String>, flag: &str) -> Result<Option<String>, String> {
    match args.iter().position(|a| a == flag) {
        Some(i) if i + 1 < args.len() => {
            let v = args.remove(i + 1);
            args.remove(i);
            Ok(Some(v))
        }
        Some(_) => Err(format!("{flag} needs a value\n{USAGE}")),
        None => Ok(None),
    }
}

async fn run(mut args: Vec<String>) -> Result<String, Box<dyn std::error::Error>> {
    let table = take_flag(&mut args, "--table")?
        .or_else(|| std::env::var("TABLE_NAME").ok().filter(|t| !t.is_empty()))
        .ok_or_else(|| format!("{NO_TABLE}\n{USAGE}"))?;
    let owner = take_flag(&mut args, "--owner")?;
    let since = take_flag(&mut args, "--since")?;
    let min_age = take_flag(&mut args, "--min-age")?;
    let store = DynamoStore::from_env(&table).await;
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["create-table"] => {
            shared::table::create_table(store.client(), &table).await?;
            Ok(format!("created table {table}"))
        }
        ["promote", email, role] => {
            let role = Role::parse(role).ok_or_else(|| format!("unknown role `{role}`\n{USAGE}"))?;
            let id = seed::promote(&store, email, role).await.map_err(|e| match e {
                Error::NotFound(_) => format!("no account with email {email}"),
                e => e.to_string(),
            })?;
            Ok(format!("{email} ({id}) is now {}", role.as_str()))
        }
        ["seed"] => {
            let owner = owner.unwrap_or_else(|| seed::SAMPLE_OWNER.to_string());
            let created = seed::seed_events(&store, &owner).await?;
            Ok(format!("seeded {created} sample events into {table}"))
        }
        ["bootstrap-admin"] => {
            let email = std::env::var("BOOTSTRAP_ADMIN_EMAIL").map_err(|_| "BOOTSTRAP_ADMIN_EMAIL is not set")?;
            let password =
                std::env::var("BOOTSTRAP_ADMIN_PASSWORD").map_err(|_| "BOOTSTRAP_ADMIN_PASSWORD is not set")?;
            let id = seed::bootstrap_admin(&store, &PasswordHasher::new(), &email, &password).await?;
            Ok(format!("{email} ({id}) is an admin"))
        }
        ["crm-redeliver"] => Ok(crm_redeliver(store, since, min_age).await?),
        _ => Err(USAGE.into()),
    }
}

/// Runs the sweeper's sweep once against the table, without a deadline, and prints its report.
async fn crm_redeliver(
    store: DynamoStore,
    since: Option<String>,
    min_age: Option<String>,
) -> Result<String, Box<dyn std::error::Error>> {
    let crm = crm_notifier::CrmConfig::from_env()?;
    if crm.webhook_url.is_none() {
        return Err("CRM_WEBHOOK_URL is not set: nothing could be delivered".into());
    }
    let mut config = crm_notifier::SweepConfig::from_env()?;
    if let Some(text) = min_age {
        config.min_age =
            crm_notifier::parse_duration(&text).ok_or_else(|| format!("bad --min-age `{text}`\n{USAGE}"))?;
    }
    let notifier = crm_notifier::Notifier::from_config(store, &crm)?;
    let now = notifier.clock().now();
    let since = since
        .map(|text| crm_notifier::parse_since(&text, now).ok_or_else(|| format!("bad --since `{text}`\n{USAGE}")))
        .transpose()?;
    let budget = notifier.budget_within(std::time::Duration::ZERO, None);
    let report = crm_notifier::sweep(&notifier, &config, since, budget).await?;
    Ok(serde_json::to_string_pretty(&report)?)
}
