//! [`OAuthStore`] in memory, on the test platform's user store (native tests only). Every
//! method is one D1 round trip in the Worker and counts as one here.

use super::client::Client;
use super::store::{ConsentedApp, OAuthStore, RefreshRow};
use crate::error::StoreError;
use crate::testing::MemoryUsers;
use crate::users::User;
use std::cell::RefCell;
use std::collections::BTreeMap;

/// The OpenID Provider's tables.
#[derive(Default)]
pub struct OAuthTables {
    pub clients: RefCell<BTreeMap<String, Client>>,
    /// (user, client) → (scope, created at).
    pub consents: RefCell<BTreeMap<(String, String), (String, i64)>>,
    pub refresh: RefCell<BTreeMap<String, RefreshRow>>,
}

impl OAuthStore for MemoryUsers {
    async fn create_client(&self, c: &Client) -> Result<(), StoreError> {
        self.d1("d1.create_client", || {
            self.oauth
                .clients
                .borrow_mut()
                .insert(c.id.clone(), c.clone());
            Ok(())
        })
    }
    async fn get_client(&self, id: &str) -> Result<Option<Client>, StoreError> {
        self.d1("d1.get_client", || {
            Ok(self.oauth.clients.borrow().get(id).cloned())
        })
    }
    async fn list_clients(&self) -> Result<Vec<Client>, StoreError> {
        self.d1("d1.list_clients", || {
            let mut v: Vec<Client> = self.oauth.clients.borrow().values().cloned().collect();
            v.sort_by_key(|c| c.created_at);
            Ok(v)
        })
    }
    async fn update_client(&self, c: &Client) -> Result<bool, StoreError> {
        self.d1("d1.update_client", || {
            let mut m = self.oauth.clients.borrow_mut();
            Ok(m.get_mut(&c.id).map(|old| *old = c.clone()).is_some())
        })
    }
    async fn delete_client(&self, id: &str) -> Result<bool, StoreError> {
        self.d1("d1.delete_client", || {
            self.oauth.consents.borrow_mut().retain(|(_, c), _| c != id);
            self.oauth
                .refresh
                .borrow_mut()
                .retain(|_, r| r.grant.client_id != id);
            Ok(self.oauth.clients.borrow_mut().remove(id).is_some())
        })
    }
    async fn client_and_user(
        &self,
        client_id: &str,
        user_id: &str,
    ) -> Result<(Option<Client>, Option<User>), StoreError> {
        self.d1("d1.client_and_user", || {
            Ok((
                self.oauth.clients.borrow().get(client_id).cloned(),
                self.users.borrow().get(user_id).cloned(),
            ))
        })
    }
    async fn redeem_code(
        &self,
        code_hash: &str,
        spent_until: i64,
        refresh: Option<&RefreshRow>,
    ) -> Result<bool, StoreError> {
        self.d1("d1.redeem_code", || {
            let key = format!("code:{code_hash}");
            let fresh = !self.spent.borrow().contains_key(&key);
            self.spent.borrow_mut().entry(key).or_insert(spent_until);
            if let Some(r) = refresh {
                self.oauth
                    .refresh
                    .borrow_mut()
                    .insert(r.hash.clone(), r.clone());
            }
            Ok(fresh)
        })
    }
    async fn revoke_family(&self, family: &str) -> Result<(), StoreError> {
        self.d1("d1.revoke_family", || {
            self.oauth
                .refresh
                .borrow_mut()
                .retain(|_, r| r.family != family);
            Ok(())
        })
    }
    async fn refresh_context(
        &self,
        hash: &str,
    ) -> Result<Option<(RefreshRow, Option<Client>, Option<User>)>, StoreError> {
        self.d1("d1.refresh_context", || {
            let Some(row) = self.oauth.refresh.borrow().get(hash).cloned() else {
                return Ok(None);
            };
            let client = self
                .oauth
                .clients
                .borrow()
                .get(&row.grant.client_id)
                .cloned();
            let user = self.users.borrow().get(row.grant.user_id.as_str()).cloned();
            Ok(Some((row, client, user)))
        })
    }
    async fn rotate_refresh(
        &self,
        old_hash: &str,
        new: &RefreshRow,
        now: i64,
    ) -> Result<bool, StoreError> {
        self.d1("d1.rotate_refresh", || {
            let mut m = self.oauth.refresh.borrow_mut();
            let won = match m.get_mut(old_hash) {
                Some(old) if old.used_at.is_none() => {
                    old.used_at = Some(now);
                    true
                }
                _ => false,
            };
            m.insert(new.hash.clone(), new.clone());
            Ok(won)
        })
    }
    async fn consent(&self, user_id: &str, client_id: &str) -> Result<Option<String>, StoreError> {
        self.d1("d1.consent", || {
            Ok(self
                .oauth
                .consents
                .borrow()
                .get(&(user_id.into(), client_id.into()))
                .map(|c| c.0.clone()))
        })
    }
    async fn save_consent(
        &self,
        user_id: &str,
        client_id: &str,
        scope: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        self.d1("d1.save_consent", || {
            self.oauth
                .consents
                .borrow_mut()
                .insert((user_id.into(), client_id.into()), (scope.into(), now));
            Ok(())
        })
    }
    async fn apps_of(&self, user_id: &str) -> Result<Vec<ConsentedApp>, StoreError> {
        self.d1("d1.apps_of", || {
            let clients = self.oauth.clients.borrow();
            Ok(self
                .oauth
                .consents
                .borrow()
                .iter()
                .filter(|((u, _), _)| u == user_id)
                .map(|((_, c), (scope, at))| ConsentedApp {
                    client_id: c.clone(),
                    name: clients.get(c).map(|x| x.name.clone()).unwrap_or_default(),
                    scope: scope.clone(),
                    created_at: *at,
                })
                .collect())
        })
    }
    async fn revoke_app(&self, user_id: &str, client_id: &str) -> Result<bool, StoreError> {
        self.d1("d1.revoke_app", || {
            let had = self
                .oauth
                .consents
                .borrow_mut()
                .remove(&(user_id.into(), client_id.into()))
                .is_some();
            let mut refresh = self.oauth.refresh.borrow_mut();
            let before = refresh.len();
            refresh.retain(|_, r| !(r.grant.user_id == user_id && r.grant.client_id == client_id));
            Ok(had || refresh.len() != before)
        })
    }
}
