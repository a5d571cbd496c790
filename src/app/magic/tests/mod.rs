//! Tests of `POST /auth/magic-link`, one file per magic-link kind.

mod email;
mod stytch;
