//! Who may do what, in one place. Identity comes from the verified token; privileges come from
//! the role the store holds now, so a promotion or a demotion applies to the caller's next
//! request instead of when their token expires. Read-only routes need no role and cost no read.

use crate::error::{Error, Result};
use crate::jwt::AuthUser;
use crate::model::{Booking, Event, Role, User};
use crate::store::Store;

/// The caller as the store knows them now: their current role. An account deleted since the
/// token was issued is no longer a credential.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub id: String,
    pub role: Role,
}

impl Principal {
    pub fn from_user(caller: &AuthUser, user: Option<User>) -> Result<Principal> {
        let u = account(caller, user)?;
        Ok(Principal { id: u.id, role: u.role })
    }

    /// One GetItem of the caller's account.
    pub async fn load<S: Store>(store: &S, caller: &AuthUser) -> Result<Principal> {
        Principal::from_user(caller, store.get_user(&caller.id).await?)
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Creating, changing or deleting events: facilitators and admins.
    pub fn may_manage_events(&self) -> Result<()> {
        match self.role {
            Role::Facilitator | Role::Admin => Ok(()),
            Role::Attendee => Err(Error::Forbidden("only facilitators and admins manage events")),
        }
    }

    /// Whose events this principal may change; the stores put it in their write conditions.
    pub fn event_actor(&self) -> Actor<'_> {
        if self.is_admin() {
            Actor::Admin
        } else {
            Actor::Owner(&self.id)
        }
    }

    /// The attendee list of an event (names and emails): an admin, or its owner while they are
    /// still a facilitator — a demoted owner loses it with their other organiser powers.
    pub fn may_see_attendees(&self, event: &Event) -> Result<()> {
        self.may_manage_events()?;
        if self.is_admin() || event.owner_id == self.id {
            Ok(())
        } else {
            Err(Error::Forbidden("only the event's owner or an admin sees its bookings"))
        }
    }
}

/// Whether `caller` may read who attends or waits for the event (the attendee list, the
/// waitlist): the event and the caller's account in one read ([`Store::event_and_user`]); 401 for
/// an account gone, 404 for no such event, then [`Principal::may_see_attendees`].
pub async fn check_attendee_access<S: Store>(store: &S, caller: &AuthUser, event_id: &str) -> Result<()> {
    let (event, user) = store.event_and_user(event_id, &caller.id).await?;
    Principal::from_user(caller, user)?.may_see_attendees(&event.ok_or(Error::NotFound("event"))?)
}

/// The caller's account as read from the store → 401 when it no longer exists: a token outlives
/// nothing it was issued for.
pub fn account(caller: &AuthUser, user: Option<User>) -> Result<User> {
    match user {
        Some(u) if u.id == caller.id => Ok(u),
        _ => Err(Error::Unauthorized("account no longer exists")),
    }
}

/// Bookings are visible to (and cancellable by) their booker, or an admin. Someone else's booking
/// is a 404, not a 403, so its existence is not revealed. Only a caller who is not the booker
/// costs a read of their account.
pub async fn visible_booking<S: Store>(store: &S, caller: &AuthUser, booking: Option<Booking>) -> Result<Booking> {
    match booking {
        Some(b) if b.user_id == caller.id => Ok(b),
        Some(b) => {
            may_see_others_booking(caller, store.get_user(&caller.id).await?)?;
            Ok(b)
        }
        None => Err(Error::NotFound("booking")),
    }
}

/// The rule of [`visible_booking`] for a booking that is not the caller's, given their account
/// as read (a route may read it with something else in one call): an admin may see it; anyone
/// else hears 404 `booking`.
pub fn may_see_others_booking(caller: &AuthUser, user: Option<User>) -> Result<()> {
    if Principal::from_user(caller, user)?.is_admin() {
        Ok(())
    } else {
        Err(Error::NotFound("booking"))
    }
}

/// Who is allowed to change an event: an admin, or only its owner. The stores put this rule into
/// their write conditions; [`Actor::check`] says why a condition failed.
#[derive(Clone, Copy, Debug)]
pub enum Actor<'a> {
    Admin,
    Owner(&'a str),
}

impl Actor<'_> {
    /// → `Forbidden` unless the actor may change this event.
    pub fn check(self, event: &Event) -> Result<()> {
        match self {
            Actor::Owner(id) if id != event.owner_id => {
                Err(Error::Forbidden("only the event's owner or an admin may change it"))
            }
            _ => Ok(()),
        }
    }
}
