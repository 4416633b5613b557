//! The versioned migrations of the store. Migration N brings `PRAGMA user_version` from N-1
//! to N; each runs in one transaction. Never edit a released migration: add the next one.

/// The migrations, in order.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

const V9: &str = r#"
-- A fleet host keeps its changes a while after the fleet applied them back (applied: when,
-- Unix seconds; NULL while pending): a failover to a standby that had not received one
-- loses it centrally, and the host ships it again (mfa_core::store::fleet).
ALTER TABLE fleet_outbox ADD COLUMN applied INTEGER;
"#;

const V8: &str = r#"
-- A fleet host's own changes until it has applied them back in the central order (issue
-- 16, mfa_core::store::fleet): each write transaction of a fleet replica adds its rows here
-- in the same transaction (body: the rows after; undo: the same rows before); mfa-fleetd
-- ships them once (shipped = 1). Empty on a single machine.
CREATE TABLE fleet_outbox (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    created INTEGER NOT NULL,
    body    BLOB NOT NULL,
    undo    BLOB NOT NULL,
    shipped INTEGER NOT NULL DEFAULT 0 CHECK (shipped IN (0, 1))
);
"#;

const V1: &str = r#"
-- Secrets and identifiers of this installation (the passcode hash key lives here; the file
-- is 0600 root).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

-- Global settings by key; an absent key has its default (mfa_core::settings::SPECS).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Second-factor method per PAM service; '*' covers services without a row of their own.
CREATE TABLE services (
    name   TEXT PRIMARY KEY,
    method TEXT NOT NULL CHECK (method IN ('none', 'passcode', 'totp', 'duo', 'any'))
);
INSERT INTO services (name, method) VALUES ('*', 'any');

-- Trusted-network rules. Addresses are 16-byte big-endian keys (IPv4 in the low 32 bits),
-- so blob comparison is numeric; span = last - first, the narrowest rule wins.
CREATE TABLE networks (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    service   TEXT NOT NULL,
    family    INTEGER NOT NULL CHECK (family IN (4, 6)),
    first     BLOB NOT NULL,
    last      BLOB NOT NULL,
    span      BLOB NOT NULL,
    require   INTEGER NOT NULL CHECK (require IN (0, 1)),
    log_level TEXT CHECK (log_level IN ('all', 'rejects', 'none')),
    note      TEXT NOT NULL DEFAULT '',
    created   INTEGER NOT NULL,
    UNIQUE (service, family, first, last)
);
CREATE INDEX networks_lookup ON networks (family, first, last);

-- Email-to-SMS carrier gateways.
CREATE TABLE carriers (
    name   TEXT PRIMARY KEY COLLATE NOCASE,
    suffix TEXT NOT NULL
);
INSERT INTO carriers (name, suffix) VALUES
    ('Verizon', 'vtext.com'),
    ('AT&T', 'txt.att.net'),
    ('T-Mobile', 'tmomail.net'),
    ('Sprint', 'messaging.sprintpcs.com'),
    ('Sprint (Nextel)', 'messaging.nextel.com'),
    ('Cellular One', 'mobile.celloneusa.com'),
    ('Boost Mobile', 'myboostmobile.com'),
    ('Cricket', 'sms.mycricket.com'),
    ('US Cellular', 'email.uscc.net'),
    ('Alltel', 'message.alltel.com');

CREATE TABLE users (
    name      TEXT PRIMARY KEY,
    full_name TEXT NOT NULL DEFAULT '',
    enabled   INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    created   INTEGER NOT NULL
);

-- Up to four contacts per user, numbered 1..4 (a number stays with its contact).
CREATE TABLE contacts (
    user    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    seq     INTEGER NOT NULL CHECK (seq BETWEEN 1 AND 4),
    channel TEXT NOT NULL CHECK (channel IN ('email', 'sms-gateway', 'sms')),
    address TEXT NOT NULL,
    carrier TEXT REFERENCES carriers (name) ON UPDATE CASCADE ON DELETE RESTRICT,
    label   TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    PRIMARY KEY (user, seq),
    CHECK ((channel = 'sms-gateway') = (carrier IS NOT NULL))
);
CREATE INDEX contacts_carrier ON contacts (carrier);

-- Per-user overrides; NULL self_enroll / log_level means "the global setting".
CREATE TABLE overrides (
    user        TEXT PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    mandatory   INTEGER NOT NULL DEFAULT 0 CHECK (mandatory IN (0, 1)),
    exempt      INTEGER NOT NULL DEFAULT 0 CHECK (exempt IN (0, 1)),
    self_enroll INTEGER CHECK (self_enroll IN (0, 1)),
    log_level   TEXT CHECK (log_level IN ('all', 'rejects', 'none')),
    CHECK (NOT (mandatory = 1 AND exempt = 1))
);

-- Templates the administrator changed; the others use their defaults.
CREATE TABLE templates (
    name TEXT PRIMARY KEY CHECK (name IN ('passcode-subject', 'passcode-body', 'test-body')),
    body TEXT NOT NULL
);

-- One row per authentication outcome. No code and no full contact ever goes here.
CREATE TABLE auth_log (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    ts          INTEGER NOT NULL,
    user        TEXT NOT NULL,
    service     TEXT NOT NULL,
    address     TEXT NOT NULL DEFAULT '',
    addr_key    BLOB,
    tty         TEXT NOT NULL DEFAULT '',
    outcome     TEXT NOT NULL,
    method      TEXT NOT NULL DEFAULT '',
    destination TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_log_ts ON auth_log (ts);
CREATE INDEX auth_log_user ON auth_log (user, ts);
CREATE INDEX auth_log_addr ON auth_log (addr_key, ts);

-- Every change made through mfa-admin: who, what, when.
CREATE TABLE audit_log (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    ts     INTEGER NOT NULL,
    actor  TEXT NOT NULL,
    action TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_ts ON audit_log (ts);

-- Outstanding passcode challenges (only a keyed hash of the code is kept).
CREATE TABLE challenges (
    id            TEXT PRIMARY KEY,
    user          TEXT NOT NULL,
    service       TEXT NOT NULL,
    address       TEXT NOT NULL DEFAULT '',
    purpose       TEXT NOT NULL CHECK (purpose IN ('login', 'enroll', 'ftp')),
    prefix        TEXT NOT NULL,
    code_hash     BLOB NOT NULL,
    destination   TEXT NOT NULL DEFAULT '',
    created       INTEGER NOT NULL,
    expires       INTEGER NOT NULL,
    attempts_left INTEGER NOT NULL,
    resends       INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX challenges_user ON challenges (user, service, address);
CREATE INDEX challenges_expires ON challenges (expires);

-- Repeat-window grants: user passed 2FA on service from address at `granted`.
CREATE TABLE grants (
    user    TEXT NOT NULL,
    service TEXT NOT NULL,
    address TEXT NOT NULL,
    granted INTEGER NOT NULL,
    PRIMARY KEY (user, service, address)
) WITHOUT ROWID;

-- Consecutive failures and lockouts per user.
CREATE TABLE lockouts (
    user         TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL DEFAULT 0,
    last_failure INTEGER NOT NULL DEFAULT 0,
    locked_until INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"#;

const V2: &str = r#"
-- Authenticator-app keys (the database is 0600 root). last_step is the newest TOTP step
-- accepted: that step and every earlier one are refused afterwards (replay protection,
-- enforced by a conditional UPDATE under the write lock).
CREATE TABLE totp (
    user      TEXT PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    secret    BLOB NOT NULL,
    algorithm TEXT NOT NULL CHECK (algorithm IN ('sha1', 'sha256', 'sha512')),
    digits    INTEGER NOT NULL CHECK (digits IN (6, 8)),
    created   INTEGER NOT NULL,
    last_step INTEGER NOT NULL DEFAULT -1
);

-- Single-use recovery codes, as keyed hashes; a code is used by deleting its row.
CREATE TABLE backup_codes (
    user    TEXT NOT NULL REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    hash    BLOB NOT NULL,
    created INTEGER NOT NULL,
    PRIMARY KEY (user, hash)
) WITHOUT ROWID;
"#;

const V3: &str = r#"
-- Auth-log rows now arrive through the module's inbox file (see mfa_core::authlog); each
-- carries a unique event id so that a line moved twice is stored once.
ALTER TABLE auth_log ADD COLUMN event TEXT;
CREATE UNIQUE INDEX auth_log_event ON auth_log (event);

-- Repeat-window grants, challenges and failure counts moved to small files (see
-- mfa_core::grants and mfa_core::state): a passcode login only reads the database.
DROP TABLE grants;
DROP TABLE challenges;
-- The newest accepted TOTP step is a file too (a compare-and-set under a flock).
ALTER TABLE totp DROP COLUMN last_step;
"#;

const V4: &str = r#"
-- The contact a double logon (one-password services, mfa_core::auth::oneword) sends its
-- passcode to, by its number (1..4, as `contact list` shows it); NULL: the first contact.
ALTER TABLE overrides ADD COLUMN double_logon_contact INTEGER
    CHECK (double_logon_contact BETWEEN 1 AND 4);

-- A deleted contact takes the choice with it: never a number that a later contact could
-- take over. (`contact del` clears it itself and says so; this covers every other way.)
CREATE TRIGGER contacts_double_logon_gone AFTER DELETE ON contacts
BEGIN
    UPDATE overrides SET double_logon_contact = NULL
     WHERE user = OLD.user AND double_logon_contact = OLD.seq;
END;
"#;

const V5: &str = r#"
-- `log show --service` and `--outcome` read the newest rows along an index of their own
-- (the rowid ends every index, so each also serves ORDER BY ts DESC, id DESC); `--user`,
-- `--address` and time ranges already had theirs (auth_log_user, auth_log_addr, auth_log_ts).
CREATE INDEX auth_log_service ON auth_log (service, ts);
CREATE INDEX auth_log_outcome ON auth_log (outcome, ts);
"#;

const V6: &str = r#"
-- Duo (method `duo`, brokered by mfa-sender). A user's Duo user name: NULL, the user is not
-- known to have Duo (method `duo` still asks Duo under the login name; `any` does not list
-- it); set, the user has Duo under that name.
ALTER TABLE users ADD COLUMN duo_user TEXT;

-- The Duo transaction id of an auth-log row ('' when none); the factor is the row's method
-- (duo-push, ...), the device Duo's masked display name its destination.
ALTER TABLE auth_log ADD COLUMN txid TEXT NOT NULL DEFAULT '';

-- The Duo enrollment notice's templates (their defaults live in mfa_core::template, as the
-- others'; the table holds the changed ones): the name check is widened.
CREATE TABLE templates_v6 (
    name TEXT PRIMARY KEY CHECK (name IN ('passcode-subject', 'passcode-body', 'test-body',
                                          'duo-enroll-subject', 'duo-enroll-body')),
    body TEXT NOT NULL
);
INSERT INTO templates_v6 (name, body) SELECT name, body FROM templates;
DROP TABLE templates;
ALTER TABLE templates_v6 RENAME TO templates;
"#;

const V7: &str = r#"
-- Groups (issue 15). A group carries the overrides a user can have; NULL means "not set
-- here" (the user's own setting beats the group's, the group's beats the global setting).
-- `factors` is a bit set of the factors its users may use (1 passcode, 2 totp, 4 backup
-- codes, 8 duo; mfa_core::policy::Factors); NULL: every factor. `unix_group` makes the
-- members of that Unix group members of this one (resolved by mfa-admin into
-- unix_members, never by a login: see mfa_core::store::groups).
CREATE TABLE groups (
    name        TEXT PRIMARY KEY,
    description TEXT NOT NULL DEFAULT '',
    mandatory   INTEGER CHECK (mandatory IN (0, 1)),
    exempt      INTEGER CHECK (exempt IN (0, 1)),
    self_enroll INTEGER CHECK (self_enroll IN (0, 1)),
    log_level   TEXT CHECK (log_level IN ('all', 'rejects', 'none')),
    factors     INTEGER CHECK (factors BETWEEN 1 AND 15),
    unix_group  TEXT UNIQUE,
    created     INTEGER NOT NULL,
    CHECK (NOT (mandatory = 1 AND exempt = 1))
);

-- A user's own group (NULL: the Unix group a group follows, else the default_group setting).
ALTER TABLE users ADD COLUMN group_name TEXT
    REFERENCES groups (name) ON UPDATE CASCADE ON DELETE RESTRICT;
CREATE INDEX users_group ON users (group_name);
-- The last proven second factor (Unix time; NULL: none since the record was made), folded
-- in from the login-state files by the maintenance run (inactive_after). Before this version
-- no success was recorded: the auth log's newest success stands in for it.
ALTER TABLE users ADD COLUMN last_success INTEGER;
UPDATE users SET last_success = (SELECT max(ts) FROM auth_log a
                                  WHERE a.user = users.name AND a.outcome = 'success');
-- Since when the user counts as active whatever their successes (NULL: since `created`):
-- the upgrade to this version (earlier versions kept no successes, so no user is inactive
-- before inactive_after has run its course from here), and each re-enabling (`user enable`,
-- `group enable`), so that the next maintenance run does not disable them again.
ALTER TABLE users ADD COLUMN active_from INTEGER;
UPDATE users SET active_from = unixepoch();

-- Members of the Unix groups that groups follow, as mfa-admin last resolved them.
CREATE TABLE unix_members (
    user TEXT NOT NULL,
    grp  TEXT NOT NULL REFERENCES groups (name) ON DELETE CASCADE ON UPDATE CASCADE,
    PRIMARY KEY (user, grp)
);
CREATE INDEX unix_members_grp ON unix_members (grp);

-- A user's overrides become three-valued like a group's (NULL: not set here, follow the
-- group), and gain the factors the user may use. Before groups, "not mandatory" and "not
-- set" meant the same, so 0 becomes NULL.
DROP TRIGGER contacts_double_logon_gone;
CREATE TABLE overrides_v7 (
    user        TEXT PRIMARY KEY REFERENCES users (name) ON DELETE CASCADE ON UPDATE CASCADE,
    mandatory   INTEGER CHECK (mandatory IN (0, 1)),
    exempt      INTEGER CHECK (exempt IN (0, 1)),
    self_enroll INTEGER CHECK (self_enroll IN (0, 1)),
    log_level   TEXT CHECK (log_level IN ('all', 'rejects', 'none')),
    double_logon_contact INTEGER CHECK (double_logon_contact BETWEEN 1 AND 4),
    factors     INTEGER CHECK (factors BETWEEN 1 AND 15),
    CHECK (NOT (mandatory = 1 AND exempt = 1))
);
INSERT INTO overrides_v7 (user, mandatory, exempt, self_enroll, log_level, double_logon_contact)
    SELECT user, nullif(mandatory, 0), nullif(exempt, 0), self_enroll, log_level,
           double_logon_contact FROM overrides;
DROP TABLE overrides;
ALTER TABLE overrides_v7 RENAME TO overrides;
CREATE TRIGGER contacts_double_logon_gone AFTER DELETE ON contacts
BEGIN
    UPDATE overrides SET double_logon_contact = NULL
     WHERE user = OLD.user AND double_logon_contact = OLD.seq;
END;

-- What governs each user: their group (own, else the first followed Unix group by name,
-- else the default group) and each override resolved user > group > unset (the global
-- setting then applies in mfa_core::policy). A level that makes a user mandatory makes them
-- not exempt and the other way round, so a user's "mandatory" beats a group's "exempt".
-- The one definition the snapshot, the module's database fallback and `user show` share.
CREATE VIEW user_policy AS
SELECT u.name AS user,
       g.name AS grp,
       CASE WHEN u.group_name IS NOT NULL THEN 'user'
            WHEN g.name IS NULL THEN NULL
            WHEN EXISTS (SELECT 1 FROM unix_members m WHERE m.user = u.name AND m.grp = g.name)
                 THEN 'unix'
            ELSE 'default' END AS grp_from,
       coalesce(o.mandatory, CASE WHEN o.exempt = 1 THEN 0 END,
                g.mandatory, CASE WHEN g.exempt = 1 THEN 0 END, 0) AS mandatory,
       coalesce(o.exempt, CASE WHEN o.mandatory = 1 THEN 0 END,
                g.exempt, CASE WHEN g.mandatory = 1 THEN 0 END, 0) AS exempt,
       coalesce(o.self_enroll, g.self_enroll) AS self_enroll,
       coalesce(o.log_level, g.log_level) AS log_level,
       coalesce(o.factors, g.factors, 15) AS factors
  FROM users u
  LEFT JOIN overrides o ON o.user = u.name
  LEFT JOIN (SELECT value FROM settings WHERE key = 'default_group') ds
  LEFT JOIN groups g ON g.name = coalesce(
        u.group_name,
        (SELECT m.grp FROM unix_members m WHERE m.user = u.name ORDER BY m.grp LIMIT 1),
        ds.value);
"#;

#[cfg(test)]
mod tests {
    use super::MIGRATIONS;
    use crate::store::Store;
    use crate::store::logs::{AuthFilter, auth_log};

    /// A version-4 database with log rows opens as version 5 with the new indexes, and every
    /// row is still there and found through them.
    #[test]
    fn v5_from_v4_with_rows() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            for m in &MIGRATIONS[..4] {
                c.execute_batch(m).unwrap();
            }
            c.execute_batch(
                "PRAGMA user_version = 4;
                 INSERT INTO auth_log (ts, user, service, outcome, event) VALUES
                   (100, 'ann', 'sshd', 'success', 'e1'),
                   (200, 'bob', 'ftp', 'deny', 'e2'),
                   (300, 'ann', 'ftp', 'success', NULL);",
            )
            .unwrap();
        }
        std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let store = Store::open(&db).unwrap();
        let c = store.conn();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::MIGRATIONS.len() as i64);
        let n: i64 = c
            .query_row(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'index'
                  AND name IN ('auth_log_service', 'auth_log_outcome')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 2);
        let ftp = auth_log(
            c,
            &AuthFilter {
                service: Some("ftp".into()),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            ftp.iter().map(|e| e.time).collect::<Vec<_>>(),
            [200, 300],
            "oldest first"
        );
        let ok = auth_log(
            c,
            &AuthFilter {
                outcome: Some("success".into()),
                limit: Some(1),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(ok.len(), 1);
        assert_eq!(
            (ok[0].time, ok[0].user.as_str()),
            (300, "ann"),
            "the newest"
        );
        assert!(
            c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
                .unwrap()
                == "ok"
        );
    }

    /// A version-5 database with users, a changed template and log rows opens as version 6:
    /// every row kept, no user has a Duo name, old rows have no txid, the new templates can
    /// be stored and an unknown one still cannot.
    #[test]
    fn v6_from_v5_keeps_rows_and_templates() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("mfa.db");
        {
            let c = rusqlite::Connection::open(&db).unwrap();
            for m in &MIGRATIONS[..5] {
                c.execute_batch(m).unwrap();
            }
            c.execute_batch(
                "PRAGMA user_version = 5;
                 INSERT INTO users (name, created) VALUES ('ann', 1), ('bob', 2);
                 INSERT INTO templates (name, body) VALUES ('test-body', 'hello {user}');
                 INSERT INTO auth_log (ts, user, service, outcome, event) VALUES
                   (100, 'ann', 'sshd', 'success', 'e1');",
            )
            .unwrap();
        }
        std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let store = Store::open(&db).unwrap();
        let c = store.conn();
        let v: i64 = c
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(v, super::MIGRATIONS.len() as i64);
        let duo: Vec<Option<String>> = c
            .prepare("SELECT duo_user FROM users ORDER BY name")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(duo, [None, None]);
        let rows = auth_log(c, &AuthFilter::default()).unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].txid, "");
        let body: String = c
            .query_row(
                "SELECT body FROM templates WHERE name = 'test-body'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(body, "hello {user}");
        c.execute(
            "INSERT INTO templates (name, body) VALUES ('duo-enroll-body', '{url}')",
            [],
        )
        .unwrap();
        assert!(
            c.execute(
                "INSERT INTO templates (name, body) VALUES ('other', 'x')",
                []
            )
            .is_err()
        );
        assert_eq!(
            c.query_row("PRAGMA integrity_check", [], |r| r.get::<_, String>(0))
                .unwrap(),
            "ok"
        );
    }

    /// Finding 1 (high, availability). The last proven second factor is recorded only since
    /// version 7 (the 'l' line of the state file, folded into `users.last_success`); a store
    /// upgraded from version 6 has `last_success` NULL for everyone. A user whose record is
    /// older than `inactive_after` and who proved a factor yesterday (the version-6 module
    /// logged it: auth_log outcome `success`) counts as inactive since their record's creation,
    /// and the first maintenance run after `settings set inactive_after=90d` disables every
    /// long-standing user: the whole organisation is locked out at once.
    #[test]
    fn an_upgraded_store_does_not_make_yesterdays_users_inactive() {
        let d = tempfile::tempdir().unwrap();
        let db = d.path().join("mfa.db");
        let t = crate::now();
        const DAY: i64 = 86_400;
        {
            // A version-6 store as the earlier build left it: ann enrolled 200 days ago and
            // proved a factor yesterday.
            let c = rusqlite::Connection::open(&db).unwrap();
            for m in &MIGRATIONS[..6] {
                c.execute_batch(m).unwrap();
            }
            c.execute_batch("PRAGMA user_version = 6").unwrap();
            c.execute(
                "INSERT INTO users (name, created) VALUES ('ann', ?1)",
                [t - 200 * DAY],
            )
            .unwrap();
            c.execute(
                "INSERT INTO auth_log (ts, user, service, outcome, method)
                 VALUES (?1, 'ann', 'sshd', 'success', 'totp')",
                [t - DAY],
            )
            .unwrap();
        }
        std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
        let (mut s, created) = Store::create(&db).unwrap();
        assert!(!created, "the version-6 file is opened and migrated");
        s.change("t", "settings set", |tx| {
            crate::store::rules::set_setting(tx, "inactive_after", "90d")?;
            Ok(((), String::new()))
        })
        .unwrap();
        // What the maintenance run's `inactive` task does: fold, then list the due users.
        let folded = s
            .write(|tx| crate::store::activity::fold_last_success(tx, &db))
            .unwrap();
        let due: Vec<String> = s
            .read(|tx| crate::store::activity::inactive_since(tx, t - 90 * DAY))
            .unwrap()
            .into_iter()
            .filter(|u| u.enabled && !u.exempt)
            .map(|u| u.name)
            .collect();
        assert!(
            due.is_empty(),
            "ann proved a factor yesterday (auth log) but would be disabled as inactive since \
             her record's creation (folded {folded}): {due:?}"
        );
    }
}
