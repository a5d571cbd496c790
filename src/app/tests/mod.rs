//! Scenario tests of request handling through [`crate::app::handle`] on the test platform:
//! the account gate, whole flows, and every storage, fetch and signature operation failed in
//! turn (docs/architecture.md, "Tests").

mod account_gate;
mod faults;
mod flows;
