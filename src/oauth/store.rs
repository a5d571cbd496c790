//! Storage of the OpenID Provider: see [`crate::oauth_store`] (a leaf module, so that the
//! platform can name it).

pub use crate::oauth_store::{ConsentedApp, OAuthStore, RefreshRow};
