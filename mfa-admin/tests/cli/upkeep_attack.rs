//! Attack tests of issue 15's maintenance run (helper X's review): what an administrator
//! does to undo an inactivity disable must last (fixed: enabling sets `users.active_from`).

use super::Env;
use super::inactive::enabled;
use super::notices::setup;

/// Finding 4 (medium, availability). ann is disabled for inactivity; she calls the help
/// desk, the administrator runs `user enable ann` and tells her to log in. The maintenance
/// timer runs hourly: unless she proves a factor before it does, the next run disables her
/// again (nothing changed her activity: `max(last_success, created)` is as old as before),
/// and a notice tells her so. Re-enabling must give the user a fresh period (proposed:
/// `user enable` and `group enable` set `last_success`, or a column `enabled_at` counted in
/// the activity, to now).
#[test]
fn an_enabled_user_is_not_disabled_again_by_the_next_run() {
    let env = Env::new();
    setup(&env, &["ann"], &["inactive_after=30d"]);
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    conn.execute(
        "UPDATE users SET created = ?1 WHERE name = 'ann'",
        [mfa_core::now() - 400 * 86_400],
    )
    .unwrap();
    drop(conn);
    env.ok(&["maintain"]);
    assert!(!enabled(&env, "ann"), "inactive: disabled by the run");
    env.ok(&["user", "enable", "ann"]);
    assert!(enabled(&env, "ann"));
    env.ok(&["maintain"]);
    assert!(
        enabled(&env, "ann"),
        "the administrator enabled ann again; the next hourly run disabled her before she \
         could log in"
    );
}
