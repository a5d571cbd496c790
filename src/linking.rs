//! Linking rules (README "Providers"): a provider identity is keyed by (issuer, sub) and only by
//! that — email never links accounts. An unknown identity creates a user atomically (the
//! store guarantees one user under concurrent first sign-ins); a known one refreshes the
//! user's name, email and picture; a deactivated user cannot sign in.

use crate::error::{AppError, AppResult};
use crate::users::{Event, Profile, User, UserStore};

/// Finds or creates the local user for `profile` and records the login.
pub async fn sign_in<U: UserStore>(store: &U, profile: &Profile, now: i64) -> AppResult<User> {
    sign_in_recorded(store, profile, None, now, true)
        .await?
        .ok_or_else(deleted_meanwhile)
}

/// [`sign_in`], recording `event` (for the user) in the same round trip: the whole sign-in
/// is one D1 batch. `may_create = false` (an access policy that accepts no new accounts):
/// an unknown identity makes no user and comes back as `Ok(None)`, in the same single batch. Whatever checks the signed-in user afterwards (deactivation here, an
/// access policy) works on the row this returns, without another read.
pub async fn sign_in_recorded<U: UserStore>(
    store: &U,
    profile: &Profile,
    event: Option<&Event>,
    now: i64,
    may_create: bool,
) -> AppResult<Option<User>> {
    if profile.issuer.is_empty() || profile.sub.is_empty() {
        return Err(AppError::Provider {
            provider: profile.provider.clone(),
            reason: "empty issuer or sub".into(),
        });
    }
    let fresh = User::from_profile(profile, now);
    match store
        .sign_in(may_create.then_some(&fresh), profile, event, now)
        .await?
    {
        Some(user) if !user.active => {
            Err(AppError::Forbidden("This account is deactivated.".into()))
        }
        Some(user) => Ok(Some(user)),
        None if may_create => Err(deleted_meanwhile()),
        // A new identity where new ones may not become users: nothing was written.
        None => Ok(None),
    }
}

/// The user was deleted (by an admin) between two steps of this sign-in: a race the person
/// can resolve by signing in again (which then makes a new user), not a server fault.
fn deleted_meanwhile() -> AppError {
    AppError::Conflict("This account was deleted while signing in; please sign in again.".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{block_on, profile, MemoryUsers};

    #[test]
    fn first_login_creates_then_links_same_user() {
        let store = MemoryUsers::default();
        let a = block_on(sign_in(&store, &profile("iss", "s1", Some("a@x")), 10)).unwrap();
        let b = block_on(sign_in(&store, &profile("iss", "s1", Some("new@x")), 20)).unwrap();
        assert_eq!(a.id, b.id);
        assert_eq!(
            b.email.as_deref(),
            Some("new@x"),
            "later logins refresh the email"
        );
        assert_eq!(b.last_login_at, Some(20));
        assert_eq!(store.user_count(), 1);
    }

    #[test]
    fn same_email_different_sub_is_a_different_user() {
        let store = MemoryUsers::default();
        let a = block_on(sign_in(&store, &profile("iss", "s1", Some("same@x")), 10)).unwrap();
        let b = block_on(sign_in(&store, &profile("iss", "s2", Some("same@x")), 10)).unwrap();
        let c = block_on(sign_in(&store, &profile("other", "s1", Some("same@x")), 10)).unwrap();
        assert_ne!(a.id, b.id);
        assert_ne!(a.id, c.id, "same sub at another issuer is another identity");
    }

    #[test]
    fn deactivated_user_cannot_sign_in_and_is_not_updated() {
        let store = MemoryUsers::default();
        let a = block_on(sign_in(&store, &profile("iss", "s1", Some("a@x")), 10)).unwrap();
        store.set_active(&a.id, false);
        let r = block_on(sign_in(
            &store,
            &profile("iss", "s1", Some("changed@x")),
            20,
        ));
        assert!(matches!(r, Err(AppError::Forbidden(_))));
        let u = block_on(store.get_user(&a.id)).unwrap().unwrap();
        assert_eq!(u.email.as_deref(), Some("a@x"));
    }

    #[test]
    fn a_user_deleted_during_sign_in_is_a_conflict_not_a_server_error() {
        let store = MemoryUsers::default();
        let a = block_on(sign_in(&store, &profile("iss", "s1", None), 10)).unwrap();
        store.drop_user_row(&a.id);
        let r = block_on(sign_in(&store, &profile("iss", "s1", None), 20));
        assert!(matches!(r, Err(AppError::Conflict(_))), "{r:?}");
    }

    #[test]
    fn losing_a_creation_race_links_to_the_winner() {
        let store = MemoryUsers::default();
        let winner = block_on(sign_in(&store, &profile("iss", "s1", None), 10)).unwrap();
        // A second first sign-in whose fresh user was made before the winner committed.
        let loser = User::from_profile(&profile("iss", "s1", None), 11);
        let signed_in =
            block_on(store.sign_in(Some(&loser), &profile("iss", "s1", None), None, 11))
                .unwrap()
                .unwrap();
        assert_eq!(signed_in.id, winner.id);
        assert_eq!(store.user_count(), 1);
    }

    #[test]
    fn the_event_is_recorded_for_the_user_unless_deactivated() {
        let store = MemoryUsers::default();
        let event = Event {
            user_id: None,
            kind: "sign_in",
            at: 10,
            ip: "192.0.2.1".into(),
            user_agent: "ua".into(),
            detail: serde_json::json!({}),
        };
        let p = profile("iss", "s1", None);
        let a = block_on(sign_in_recorded(&store, &p, Some(&event), 10, true))
            .unwrap()
            .unwrap();
        assert_eq!(store.events.borrow().len(), 1);
        assert_eq!(store.events.borrow()[0].user_id.as_ref(), Some(&a.id));
        store.set_active(&a.id, false);
        assert!(block_on(sign_in_recorded(&store, &p, Some(&event), 20, true)).is_err());
        assert_eq!(
            store.events.borrow().len(),
            1,
            "a refused sign-in records nothing"
        );
    }
}
