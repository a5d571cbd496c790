//! Linking rules (README "Providers"): a provider identity is keyed by (issuer, sub) and only by
//! that — email never links accounts. An unknown identity creates a user atomically (the
//! store guarantees one user under concurrent first sign-ins); a known one refreshes the
//! user's name, email and picture; a deactivated user cannot sign in.

use crate::error::{AppError, AppResult};
use crate::policy::Arrival;
use crate::users::{Profile, User, UserStore};

/// Finds or creates the local user for `profile` and records the login (open sign-up).
pub async fn sign_in<U: UserStore>(store: &U, profile: &Profile, now: i64) -> AppResult<User> {
    sign_in_with(store, profile, now, |_| Ok(())).await
}

/// [`sign_in`] behind the access policy: `admit` is asked, once the identity is known to
/// be new or returning and before anything is written, whether this sign-in may go on; a
/// refusal (why, in plain words) writes nothing — for a new identity no user and no
/// identity.
pub async fn sign_in_with<U: UserStore>(
    store: &U,
    profile: &Profile,
    now: i64,
    admit: impl Fn(Arrival) -> Result<(), String>,
) -> AppResult<User> {
    if profile.issuer.is_empty() || profile.sub.is_empty() {
        return Err(AppError::Provider {
            provider: profile.provider.clone(),
            reason: "empty issuer or sub".into(),
        });
    }
    let owner = store.identity_owner(&profile.issuer, &profile.sub).await?;
    let arrival = match owner {
        Some(_) => Arrival::Returning,
        None => Arrival::New,
    };
    admit(arrival).map_err(AppError::AccessDenied)?;
    let user_id = match owner {
        Some(id) => id,
        None => {
            store
                .create_linked(&User::from_profile(profile, now), profile, now)
                .await?
        }
    };
    let user = store
        .get_user(&user_id)
        .await?
        .ok_or_else(deleted_meanwhile)?;
    if !user.active {
        return Err(AppError::Forbidden("This account is deactivated.".into()));
    }
    store.refresh_login(&user_id, profile, now).await?;
    store
        .get_user(&user_id)
        .await?
        .ok_or_else(deleted_meanwhile)
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
        // A second first-login that looked before the winner committed.
        let owner = block_on(store.create_linked(
            &User::from_profile(&profile("iss", "s1", None), 11),
            &profile("iss", "s1", None),
            11,
        ))
        .unwrap();
        assert_eq!(owner, winner.id);
        assert_eq!(store.user_count(), 1);
    }
}
