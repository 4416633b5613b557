//! mfa-fleet: the client side of a fleet's central PostgreSQL store.
//!
//! In a fleet (`[store] backend = "postgres"`) every host keeps its own SQLite database,
//! policy snapshot and state files, and logins read only those: nothing here runs at a
//! login. What travels through PostgreSQL:
//! - **rules**, as SQLite changesets of the replicated tables (`mfa_core::store::fleet`):
//!   each host's changes are queued in its local outbox in the transaction that makes them,
//!   shipped once (`changes`), numbered centrally (the fleet generation) and applied by
//!   every host in that order, then its own pending changes again on top;
//! - **logs**: each host's auth-log and audit rows, once each by (host, id) (`logs`);
//! - **hosts**: each host's generation, last contact, queues and last error (`hosts`).
//!
//! `mfa-fleetd` (root, sandboxed) follows the store: `LISTEN mfa_changes` plus a periodic
//! check, reconnecting with backoff; `mfa-admin` uses the same functions to make a change
//! visible at once and for `fleet status`, `log show --host` and `migrate --to postgres`.

pub mod changes;
pub mod connect;
pub mod follower;
pub mod hosts;
pub mod login_state;
pub mod logs;
pub mod schema;
