use crate::policy::{template_statements, Statement};
use crate::yaml::template;
use shared::keys::{
    attendee, booking, delivery, email, event, idempotency, job, login_throttle, payment_task, session, user,
    wait_entry, GSI1, GSI2,
};
use std::collections::{BTreeMap, BTreeSet};

/// Stands for an id in a key built by `shared::keys`; the policy has `*` where it lands.
const ANY: &str = "{id}";

/// The `StringLike` pattern that admits exactly the keys `key` stands for.
fn pattern_of(key: &str) -> String {
    key.replace(ANY, "*")
}

/// What a function's policy must say: the statement, with its partition keys built by
/// `shared::keys` (so a change of key layout that the policy does not follow fails here).
struct Grant {
    sid: &'static str,
    actions: &'static [&'static str],
    resource: String,
    /// `None`: no partition-key condition: not a table resource (stream, queue), or a `Query` on a
    /// named index (AWS documents `dynamodb:LeadingKeys` only for the table's partition key).
    keys: Option<Vec<String>>,
}

impl Grant {
    fn statement(&self) -> Statement {
        let leading_keys = self.keys.as_ref().map(|keys| keys.iter().map(|k| pattern_of(k)).collect());
        Statement {
            sid: self.sid.to_string(),
            actions: self.actions.iter().map(|a| a.to_string()).collect(),
            resources: BTreeSet::from([self.resource.clone()]),
            requires_leading_keys: leading_keys.is_some(),
            leading_keys,
        }
    }
}

fn scoped(sid: &'static str, actions: &'static [&'static str], resource: &str, keys: Vec<String>) -> Grant {
    Grant { sid, actions, resource: resource.to_string(), keys: Some(keys) }
}

fn unscoped(sid: &'static str, actions: &'static [&'static str], resource: &str) -> Grant {
    Grant { sid, actions, resource: resource.to_string(), keys: None }
}

/// A `dynamodb:Query` on a named index, scoped by the index's ARN alone: AWS documents
/// `dynamodb:LeadingKeys` only for the table's partition key.
fn index_query(sid: &'static str, index: &str) -> Grant {
    unscoped(sid, &["dynamodb:Query"], &format!("index/{index}"))
}

/// Every function that promotes, or shows the line, reads it the same way: a Query of the base
/// table on the event's waitlist partition.
fn query_waitlists() -> Grant {
    scoped("QueryWaitlists", &["dynamodb:Query"], "table", vec![wait_entry(ANY, &shared::time::now(), ANY).0])
}

/// Per function, every statement it may have. Derived from what the code does to the table:
/// `shared/src/store/dynamo.rs` and the handlers (`docs/data-model.md`, access patterns).
fn expected_grants() -> BTreeMap<&'static str, Vec<Grant>> {
    BTreeMap::from([
        ("AuthFunction", auth()),
        ("EventsFunction", events()),
        ("BookingsFunction", bookings()),
        ("PaymentsFunction", payments()),
        ("CrmNotifierFunction", crm_notifier()),
        ("CrmSweeperFunction", crm_sweeper()),
    ])
}

fn auth() -> Vec<Grant> {
    let id = ANY;
    vec![
        // login: e-mail guard → user; /auth/me, /auth/password: the user; logout: the family
        scoped("ReadAccounts", &["dynamodb:GetItem"], "table", vec![user(id).0, email(id).0, session(id).0]),
        // refresh: the family and its user in one BatchGetItem
        scoped("ReadSessionAndUser", &["dynamodb:BatchGetItem"], "table", vec![session(id).0, user(id).0]),
        // register: one transaction of two puts
        scoped("Register", &["dynamodb:PutItem"], "table", vec![user(id).0, email(id).0]),
        // login: a new family; refresh: its rotation; reuse, logout: its revocation
        scoped("Sessions", &["dynamodb:PutItem", "dynamodb:UpdateItem"], "table", vec![session(id).0]),
        // password change: hash + epoch; refresh: the epoch's ConditionCheck
        scoped("ChangePassword", &["dynamodb:UpdateItem", "dynamodb:ConditionCheckItem"], "table", vec![user(id).0]),
        scoped(
            "LoginThrottle",
            &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "table",
            vec![login_throttle(id).0],
        ),
    ]
}

fn events() -> Vec<Grant> {
    let id = ANY;
    vec![
        // the event; the caller's user item for their current role (read only); a join's
        // first read: event, the caller's guard and user in one BatchGetItem
        scoped(
            "ReadItems",
            &["dynamodb:GetItem", "dynamodb:BatchGetItem"],
            "table",
            vec![event(id).0, attendee(id, id).0, user(id).0],
        ),
        // events; a join or leave (entry, guard, waitlist_count); a promote job
        scoped(
            "WriteEvents",
            &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "table",
            vec![event(id).0, wait_entry(id, &shared::time::now(), id).0, attendee(id, id).0, job(id).0],
        ),
        // the owner's view of the line: a consistent Query of the base table
        query_waitlists(),
        // list (GSI1, the `EVENTS` partition) and filter by type (GSI2, `TYPE#<type>`)
        index_query("QueryAllEvents", GSI1),
        index_query("QueryEventsByType", GSI2),
    ]
}

fn bookings() -> Vec<Grant> {
    let id = ANY;
    vec![
        scoped(
            "ReadItems",
            &["dynamodb:GetItem", "dynamodb:BatchGetItem"],
            "table",
            vec![
                event(id).0,
                attendee(id, id).0,
                booking(id).0,
                delivery(id).0,
                payment_task(id).0,
                idempotency(id, id).0,
                user(id).0,
            ],
        ),
        // book: attendee guard, booking, idempotency record, and the CRM delivery record
        // (free) or the hold's payment task (paid); cancel of a paid booking: refund task
        scoped(
            "PutBookingItems",
            &["dynamodb:PutItem"],
            "table",
            vec![attendee(id, id).0, booking(id).0, delivery(id).0, payment_task(id).0, idempotency(id, id).0],
        ),
        // book / cancel / release: seat counter; cancel: booking status; the hold's
        // Checkout Session; a refund's outcome
        scoped("UpdateBookingItems", &["dynamodb:UpdateItem"], "table", vec![event(id).0, booking(id).0]),
        // cancel: attendee guard, a hold's task; a hold released because Stripe failed:
        // booking, guard, task, idempotency record; a refund recorded: its task
        scoped(
            "DeleteBookingItems",
            &["dynamodb:DeleteItem"],
            "table",
            vec![attendee(id, id).0, booking(id).0, payment_task(id).0, idempotency(id, id).0],
        ),
        // my bookings (GSI1, `USER#<id>#BOOKINGS`), an event's (GSI2, `EVENT#<id>#BOOKINGS`)
        index_query("QueryUserBookings", GSI1),
        index_query("QueryEventBookings", GSI2),
        // the head of the line when a cancel or a released hold promotes; each place in
        // line of GET /bookings/ (COUNT)
        query_waitlists(),
    ]
}

fn payments() -> Vec<Grant> {
    let id = ANY;
    vec![
        // the booking an event is about; the event when an expiry promotes
        scoped("ReadBookings", &["dynamodb:GetItem"], "table", vec![booking(id).0, event(id).0]),
        // a hold paid: its CRM delivery record; an expired offer's booking.expired; an
        // expiry's promotion: the guard, the booking, its delivery record or offer task
        scoped(
            "PutBookingItems",
            &["dynamodb:PutItem"],
            "table",
            vec![delivery(id).0, attendee(id, id).0, booking(id).0, payment_task(id).0],
        ),
        // a hold settled: the booking's status; expired: the event's seat counter; a
        // late payment's refund recorded
        scoped("UpdateSettledItems", &["dynamodb:UpdateItem"], "table", vec![booking(id).0, event(id).0]),
        // the hold's (or refund's) payment task; an expired hold's attendee guard
        scoped("DeleteSettledItems", &["dynamodb:DeleteItem"], "table", vec![payment_task(id).0, attendee(id, id).0]),
        // the head of the line when an expiry promotes
        query_waitlists(),
    ]
}

fn crm_notifier() -> Vec<Grant> {
    let id = ANY;
    vec![
        // the booking's collection: one Query (booking + messages), a claim and an
        // outcome per message, a refused claim's record re-read
        scoped(
            "DeliveryRecords",
            &["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"],
            "table",
            vec![delivery(id).0],
        ),
        // lifecycle batches: the job and its event
        scoped("LifecycleReads", &["dynamodb:GetItem"], "table", vec![job(id).0, event(id).0]),
        // a booking's cancel or reschedule (booking, seat counter, guard, a hold's task) and
        // the job's claim, progress and end; promotions (entry, guard, booking, delivery
        // record or offer task), a waitlist cleared; an offer opened (booking, its task,
        // its booking.offered record)
        scoped(
            "LifecycleWrites",
            &["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"],
            "table",
            vec![booking(id).0, event(id).0, attendee(id, id).0, payment_task(id).0, job(id).0],
        ),
        // an event's bookings (GSI2, `EVENT#<id>#BOOKINGS`)
        index_query("QueryEventBookings", GSI2),
        // the head of the line (promotion, clearing)
        query_waitlists(),
        unscoped(
            "ReadStream",
            &["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"],
            "Table.StreamArn",
        ),
        unscoped("OnFailureDestination", &["sqs:SendMessage"], "CrmDeadLetterQueue.Arn"),
    ]
}

fn crm_sweeper() -> Vec<Grant> {
    let id = ANY;
    vec![
        // a due-payments page's bookings; a booking with pending CRM messages and its
        // messages (one Query of its collection); a refused claim's record when not
        // returned; the booking a settlement re-reads
        scoped(
            "ReadBookings",
            &["dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query"],
            "table",
            vec![booking(id).0, delivery(id).0],
        ),
        // a delivery's outcome; the delivery record of a hold the sweep confirms; an
        // offer's records; a promotion's guard, booking, delivery record or offer task
        scoped("PutBookingItems", &["dynamodb:PutItem"], "table", vec![delivery(id).0, attendee(id, id).0]),
        // a delivery's claim; a hold settled (booking status, an expired hold's seat
        // counter); a refund recorded
        scoped("UpdateSweptItems", &["dynamodb:UpdateItem"], "table", vec![delivery(id).0, booking(id).0, event(id).0]),
        // a settled hold's or recorded refund's task; an expired hold's attendee guard
        scoped("DeleteSettledItems", &["dynamodb:DeleteItem"], "table", vec![payment_task(id).0, attendee(id, id).0]),
        // lifecycle jobs left by a stopped batch: the job and its event
        scoped("LifecycleReads", &["dynamodb:GetItem"], "table", vec![job(id).0, event(id).0]),
        index_query("QueryEventBookings", GSI2),
        // the pending deliveries (GSI1, `CRM#PENDING#<day>`), the due payment tasks
        // (GSI1, `PAY#DUE#<day>`) and the due lifecycle jobs (GSI1, `JOBS`)
        index_query("QueryDueWork", GSI1),
        // the head of the line (promotion, clearing)
        query_waitlists(),
    ]
}

#[test]
fn iam_statements_match_the_keys_each_function_owns() {
    let got = template_statements(&template());
    let want: BTreeMap<String, Vec<Statement>> = expected_grants()
        .into_iter()
        .map(|(id, grants)| (id.to_string(), grants.iter().map(Grant::statement).collect()))
        .collect();
    assert_eq!(got.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
    for (id, want) in &want {
        let mut got = got[id].clone();
        let mut want = want.clone();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{id}: IAM statements (Sid, actions, resource, LeadingKeys patterns)");
    }
}
