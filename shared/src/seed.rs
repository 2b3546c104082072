//! Sample data and operator tasks shared by the admin CLI and the local server, so `make run`
//! and `admin seed` produce the same data through the same code.

use crate::error::{Error, Result};
use crate::model::{normalize_email, validate_password, Event, Role, User};
use crate::password::PasswordHasher;
use crate::store::Store;
use crate::time::{self, Timestamp};
use chrono::{Duration, Timelike};

/// Owner of the sample events when no admin exists yet.
pub const SAMPLE_OWNER: &str = "sample-facilitator";

/// (id suffix, title, type, days from now, hour UTC, minutes, rating, capacity, facilitator)
type Sample = (&'static str, &'static str, &'static str, i64, u32, u32, Option<f64>, Option<u32>, &'static str);

const SAMPLES: &[Sample] = &[
    ("01", "Sunrise Hatha Yoga", "Yoga", 1, 6, 60, Some(4.8), Some(20), "FAC001"),
    ("02", "Vinyasa Flow", "Yoga", 3, 17, 75, Some(4.5), Some(15), "FAC001"),
    ("03", "Yin Yoga for Sleep", "Yoga", 6, 20, 60, Some(4.9), Some(12), "FAC002"),
    ("04", "Guided Body Scan", "Meditation", 2, 7, 30, Some(4.7), None, "FAC003"),
    ("05", "Loving-Kindness Circle", "Meditation", 5, 18, 45, Some(4.2), Some(30), "FAC003"),
    ("06", "Silent Sitting", "Meditation", 9, 6, 90, None, Some(25), "FAC004"),
    ("07", "Wim Hof Basics", "Breathwork", 4, 8, 60, Some(4.6), Some(10), "FAC005"),
    ("08", "Pranayama Deep Dive", "Breathwork", 8, 16, 90, Some(3.9), Some(16), "FAC002"),
    ("09", "Weekend Mountain Retreat", "Retreat", 21, 9, 2880, Some(5.0), Some(8), "FAC006"),
    ("10", "City Day Retreat", "Retreat", 14, 9, 480, Some(4.4), Some(40), "FAC006"),
    ("11", "Full Moon Meditation", "Meditation", -3, 19, 60, Some(4.8), Some(50), "FAC003"),
    ("12", "Morning Yoga (last week)", "Yoga", -7, 6, 60, Some(4.1), Some(20), "FAC001"),
];

/// The dozen sample events, dated relative to `now` so upcoming ones stay upcoming.
pub fn sample_events(owner_id: &str, now: Timestamp) -> Vec<Event> {
    SAMPLES
        .iter()
        .map(|&(n, title, kind, days, hour, minutes, rating, capacity, fac)| {
            let day = now + Duration::days(days);
            let at = day.with_hour(hour).and_then(|d| d.with_minute(0)).and_then(|d| d.with_second(0)).unwrap_or(day);
            Event {
                id: format!("01SAMPLE0000000000000000{n}"),
                title: title.into(),
                description: format!("{title}: a sample {kind} session seeded by `admin seed`."),
                datetime: at,
                duration_minutes: minutes,
                facilitator_id: fac.into(),
                event_type: kind.into(),
                rating,
                capacity,
                seats_booked: 0,
                price: None,
                owner_id: owner_id.into(),
                created_at: now,
                updated_at: now,
                status: crate::model::EventStatus::Scheduled,
                cancelled_at: None,
                cancel_reason: None,
                revision: 0,
                waitlist_count: 0,
            }
        })
        .collect()
}

/// Creates the sample events that do not exist yet; returns how many were created.
pub async fn seed_events<S: Store>(store: &S, owner_id: &str) -> Result<usize> {
    let mut created = 0;
    for event in sample_events(owner_id, time::now()) {
        if store.get_event(&event.id).await?.is_none() {
            store.create_event(&event).await?;
            created += 1;
        }
    }
    Ok(created)
}

/// `admin promote EMAIL ROLE`: an operator sets the role of an existing account → `NotFound`.
pub async fn promote<S: Store>(store: &S, email: &str, role: Role) -> Result<String> {
    let email = normalize_email(email)?;
    let user = store.find_user_by_email(&email).await?.ok_or(Error::NotFound("user"))?;
    if user.role != role {
        store.set_user_role(&user.id, role).await?;
    }
    Ok(user.id)
}

/// `BOOTSTRAP_ADMIN_EMAIL` + `BOOTSTRAP_ADMIN_PASSWORD`: ensures that account exists as an admin
/// and returns its id. An account already registered with that email is promoted only when the
/// password verifies against its hash; otherwise whoever registered the email first would become
/// admin at the next start. Then nothing is promoted and the caller must stop.
pub async fn bootstrap_admin<S: Store>(
    store: &S,
    hasher: &PasswordHasher,
    email: &str,
    password: &str,
) -> Result<String> {
    let email = normalize_email(email)?;
    validate_password(password)?;
    let existing = match store.find_user_by_email(&email).await? {
        Some(user) => user,
        None => {
            let user = User {
                id: crate::model::new_id(),
                name: "Administrator".into(),
                email: email.clone(),
                role: Role::Admin,
                password_hash: hasher.hash(password.to_string()).await?,
                created_at: time::now(),
                session_epoch: 0,
            };
            match store.create_user(&user).await {
                Ok(()) => return Ok(user.id),
                // Registered in the meantime: it gets the same password check as any existing account.
                Err(Error::EmailTaken) => store.find_user_by_email(&email).await?.ok_or(Error::NotFound("user"))?,
                Err(e) => return Err(e),
            }
        }
    };
    if !hasher.verify(password.to_string(), existing.password_hash.clone()).await? {
        return Err(Error::Config(format!(
            "BOOTSTRAP_ADMIN_EMAIL {email} is already registered and BOOTSTRAP_ADMIN_PASSWORD does not match \
             its password: refusing to promote it. Use the account's own password, or promote it with \
             `admin promote {email} admin` after checking who owns it."
        )));
    }
    if existing.role != Role::Admin {
        store.set_user_role(&existing.id, Role::Admin).await?;
    }
    Ok(existing.id)
}
