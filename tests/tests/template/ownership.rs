use crate::least_privilege::{ITEM_ACTIONS, WRITE_ACTIONS};
use crate::policy::{denials, template_statements};
use crate::yaml::{functions, template};
use std::collections::{BTreeMap, BTreeSet};

/// Refresh-token families are the auth function's alone (issue 19): every other function's
/// policy denies each item action on a request naming any `SESSION#` partition, so no Allow,
/// today's or a broader one added later, reaches them; none of today's allows it anyway.
#[test]
fn refresh_token_families_are_denied_to_every_function_but_auth() {
    let t = template();
    let family = shared::keys::session("01JBQ2S3T4V5W6X7Y8Z9A0B1C1").0;
    let user = shared::keys::user("01JBQ2S3T4V5W6X7Y8Z9A0B1C2").0;
    let allows = template_statements(&t);
    for (id, f) in functions(&t) {
        let denied = denials(&id, f);
        if id == "AuthFunction" {
            assert!(denied.is_empty(), "the auth function owns the sessions");
            for action in ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"] {
                assert!(allows[&id].iter().any(|s| s.allows(action, "table", std::slice::from_ref(&family))));
            }
            continue;
        }
        assert_eq!(denied.len(), 1, "{id}: one DenySessions statement");
        let d = &denied[0];
        assert_eq!(d.patterns, BTreeSet::from([format!("{}*", shared::keys::SESSION_PREFIX)]), "{id}");
        assert_eq!(d.resources, BTreeSet::from(["table".to_string(), "index/*".to_string()]), "{id}");
        // A Scan names no partition key: ForAnyValue cannot match it (no Allow grants one).
        for action in ITEM_ACTIONS.iter().filter(|a| **a != "dynamodb:Scan") {
            assert!(d.denies(action, "table", std::slice::from_ref(&family)), "{id}: {action} on {family} not denied");
            assert!(d.denies(action, "table", &[user.clone(), family.clone()]), "{id}: {action} in a batch");
            assert!(
                !allows[&id].iter().any(|s| s.allows(action, "table", std::slice::from_ref(&family))),
                "{id} may {action} {family}"
            );
        }
        assert!(!d.denies("dynamodb:GetItem", "table", std::slice::from_ref(&user)), "{id}: denies more than sessions");
    }
}

/// Every partition of the table, by entity, as `shared::keys` builds it for real ids.
fn table_partitions() -> Vec<(&'static str, String)> {
    use shared::keys::*;
    let (u, e, b) = ("01JBQ2S3T4V5W6X7Y8Z9A0B1C1", "01JBQ2S3T4V5W6X7Y8Z9A0B1C2", "01JBQ2S3T4V5W6X7Y8Z9A0B1C3");
    vec![
        (entity::USER, user(u).0),
        (entity::EMAIL, email("asha@example.com").0),
        (entity::LOGIN_THROTTLE, login_throttle("asha@example.com").0),
        (entity::EVENT, event(e).0),
        (entity::ATTENDEE, attendee(e, u).0),
        (entity::WAITING, attendee(e, u).0),
        (entity::WAIT_ENTRY, wait_entry(e, &shared::time::now(), u).0),
        (entity::JOB, job(e).0),
        (entity::BOOKING, booking(b).0),
        (entity::DELIVERY, delivery(b).0),
        (entity::PAYMENT_TASK, payment_task(b).0),
        (entity::IDEMPOTENCY, idempotency(u, "retry-7f3a").0),
        (entity::SESSION, session(b).0),
    ]
}

/// The issue this guards against: the events function could rewrite a user's role, the notifier
/// could put anything anywhere. Each function may write only the entities it owns (and whatever
/// shares their partition: LeadingKeys cannot tell sort keys apart).
#[test]
fn no_function_can_write_a_partition_it_does_not_own() {
    use shared::keys::entity::*;
    let owned: BTreeMap<&str, &[&str]> = BTreeMap::from([
        ("AuthFunction", &[USER, EMAIL, LOGIN_THROTTLE, SESSION][..]),
        // an event's attendee guards and waitlist entries live in its partition
        ("EventsFunction", &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB][..]),
        // a booking's delivery record and payment task live in its partition; an event's job in
        // the event's (these functions write the seat counter, so LeadingKeys cannot keep them
        // from the job item: its writers are the events function and the lifecycle batches);
        // each of them promotes from the event's waitlist (entry deleted, guard turned)
        (
            "BookingsFunction",
            &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB, BOOKING, DELIVERY, PAYMENT_TASK, IDEMPOTENCY][..],
        ),
        ("PaymentsFunction", &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB, BOOKING, DELIVERY, PAYMENT_TASK][..]),
        // lifecycle batches: the event (seat counter), its guards, its waitlist and its job
        ("CrmNotifierFunction", &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB, BOOKING, DELIVERY, PAYMENT_TASK][..]),
        ("CrmSweeperFunction", &[EVENT, ATTENDEE, WAITING, WAIT_ENTRY, JOB, BOOKING, DELIVERY, PAYMENT_TASK][..]),
    ]);
    let all = template_statements(&template());
    for (id, statements) in &all {
        for write in WRITE_ACTIONS {
            for (entity, pk) in table_partitions() {
                let allowed = statements.iter().any(|s| s.allows(write, "table", std::slice::from_ref(&pk)));
                assert!(
                    !allowed || owned[id.as_str()].contains(&entity),
                    "{id} may {write} {pk} ({entity}), which it does not own"
                );
            }
        }
        // Requests without a partition key match no statement (the ForAllValues pitfall): on the
        // table, no item action; on an index, nothing but `Query` (a Scan stays refused), which is
        // scoped by the index ARN alone.
        for action in ITEM_ACTIONS {
            assert!(
                !statements.iter().any(|s| s.allows(action, "table", &[])),
                "{id}: {action} on the table without a partition key is allowed"
            );
            if *action == "dynamodb:Query" {
                continue;
            }
            for ix in shared::table::TABLE.indexes {
                let resource = format!("index/{}", ix.name);
                assert!(
                    !statements.iter().any(|s| s.allows(action, &resource, &[])),
                    "{id}: {action} on {resource} without a partition key is allowed"
                );
            }
        }
    }
    // The specific complaints of the issue.
    let user = shared::keys::user("01JBQ2S3T4V5W6X7Y8Z9A0B1C1").0;
    for action in ["dynamodb:PutItem", "dynamodb:UpdateItem"] {
        assert!(!all["EventsFunction"].iter().any(|s| s.allows(action, "table", std::slice::from_ref(&user))));
    }
    // The notifier updates an event's seat counter and its job (lifecycle batches). Since
    // waitlists it also puts in the event's partition (a promotion turns the user's guard into
    // an attendee guard with a conditional Put); LeadingKeys cannot tell that item from the
    // event's own, so PutItem there is no longer refused by IAM: the conditions of the
    // transaction are what keep the event item intact.
    let event = shared::keys::event("01JBQ2S3T4V5W6X7Y8Z9A0B1C2").0;
    // The webhook (no JWT, reachable by anyone who can sign as Stripe) touches no account, login or
    // idempotency record.
    for pk in [
        shared::keys::user("01JBQ2S3T4V5W6X7Y8Z9A0B1C1").0,
        shared::keys::email("asha@example.com").0,
        shared::keys::idempotency("01JBQ2S3T4V5W6X7Y8Z9A0B1C1", "k").0,
    ] {
        for action in ITEM_ACTIONS {
            assert!(
                !all["PaymentsFunction"].iter().any(|s| s.allows(action, "table", std::slice::from_ref(&pk))),
                "PaymentsFunction may {action} {pk}"
            );
        }
    }
    // …while what each owns stays writable.
    assert!(all["EventsFunction"].iter().any(|s| s.allows(
        "dynamodb:UpdateItem",
        "table",
        std::slice::from_ref(&event)
    )));
}
