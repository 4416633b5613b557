//! Where one authentication reads and writes: the policy snapshot or the database, the
//! user's login state; what a passed or failed factor records.

use super::*;

/// Where one authentication reads and writes: reads come from the policy snapshot when it
/// is there (two file reads), else from the database; the database is opened only for a
/// write (a lockout, a used backup code, a self-enrollment) or when there is no snapshot.
pub(super) struct Cx<'a> {
    pub(super) config: &'a Config,
    pub(super) snap: Option<Snapshot>,
    pub(super) store: Option<Store>,
    /// The user's record from the snapshot, read once.
    pub(super) record: Option<crate::snapshot::UserRecord>,
    /// Passcode messages this login queued (first sends and resends).
    pub(super) sent: u32,
    /// Whether the user typed an answer to a code prompt (not only empty answers).
    pub(super) typed: bool,
    /// The factor this login tried, for the auth log of an outcome that is not a success
    /// (a success names its own).
    pub(super) tried: Tried,
}

impl<'a> Cx<'a> {
    /// A fresh authentication under `config`: the snapshot loaded if there is one, the
    /// database not yet opened, nothing sent or typed yet.
    pub(super) fn new(config: &'a Config) -> Self {
        Cx {
            config,
            snap: Snapshot::load(&config.paths.database),
            store: None,
            record: None,
            sent: 0,
            typed: false,
            tried: Tried::default(),
        }
    }

    pub(super) fn db(&self) -> &std::path::Path {
        &self.config.paths.database
    }

    /// The database, opened on first use, every wait bounded by [`crate::files::LOCK_WAIT`]
    /// ([`Store::open_bounded`]): a locked database or a hung `mfa-admin` holding the
    /// snapshot lock fails this login in bounded time instead of hanging it.
    pub(super) fn store(&mut self) -> Result<&mut Store> {
        if self.store.is_none() {
            self.store = Some(Store::open_bounded(&self.config.paths.database)?);
        }
        self.store
            .as_mut()
            .ok_or_else(|| Error::Database("the database is not open".into()))
    }

    pub(super) fn facts(&mut self, req: &Request, ip: Option<std::net::IpAddr>) -> Result<Facts> {
        match &self.snap {
            Some(snap) => {
                self.record = snap.user(&req.user);
                Ok(snap.facts_for(self.record.as_ref(), &req.service, &req.user, ip))
            }
            None => q::facts(self.store()?.conn(), &req.user, &req.service, ip),
        }
    }

    pub(super) fn contacts(&mut self, user: &str) -> Result<Vec<people::ContactRow>> {
        if self.snap.is_some() {
            return Ok(self
                .record
                .as_ref()
                .map(|r| r.contacts.clone())
                .unwrap_or_default());
        }
        people::contacts(self.store()?.conn(), user)
    }

    pub(super) fn totp(&mut self, user: &str) -> Result<Option<crate::totp::Key>> {
        if self.snap.is_some() {
            return Ok(self.record.as_ref().and_then(|r| r.key.clone()));
        }
        factors::totp_of(self.store()?.conn(), user)
    }

    pub(super) fn backup_count(&mut self, user: &str) -> Result<i64> {
        if self.snap.is_some() {
            let n = self.record.as_ref().map_or(0, |r| r.facts.backup_codes);
            return Ok(i64::try_from(n).unwrap_or(0));
        }
        factors::backup_count(self.store()?.conn(), user)
    }

    /// The user's Duo name when their record names one (else Duo knows them by login name).
    pub(super) fn duo_user(&mut self, user: &str) -> Result<Option<String>> {
        if self.snap.is_some() {
            return Ok(self.record.as_ref().and_then(|r| r.duo_user.clone()));
        }
        people::duo_user(self.store()?.conn(), user)
    }

    pub(super) fn passcode_key(&mut self) -> Result<Vec<u8>> {
        if let Some(k) = self.snap.as_ref().and_then(Snapshot::passcode_key) {
            return Ok(k);
        }
        q::passcode_key(self.store()?.conn())
    }

    pub(super) fn templates(&mut self) -> Result<Vec<rules::Template>> {
        if let Some(snap) = &self.snap {
            return Ok(snap.templates());
        }
        rules::templates(self.store()?.conn())
    }

    pub(super) fn carriers(&mut self) -> Result<Vec<people::Carrier>> {
        if let Some(snap) = &self.snap {
            return Ok(snap.carriers());
        }
        people::carriers(self.store()?.conn())
    }
}

/// The factor a login tried: its name (`duo-push`), its destination (a device as Duo names
/// it) and Duo's transaction id, for the auth log.
#[derive(Debug, Clone, Default)]
pub(super) struct Tried {
    pub(super) method: String,
    pub(super) destination: String,
    pub(super) txid: String,
}

/// Records the repeat-window grant of a passed second factor. A grant that cannot be written
/// only costs the user a challenge next time.
pub(super) fn grant(cx: &Cx<'_>, req: &Request) {
    let _ = grants::record(cx.db(), &req.user, &req.service, &req.rhost, crate::now());
}

/// A passed second factor: the failure count goes and the time of this success is kept
/// (one write of the user's file: [`state::record_success`], what `inactive_after` counts
/// from), a lockout that ran out leaves the database (a database write only then), and the
/// repeat window starts. Only a proven factor comes here, never a bypass.
pub(super) fn passed(cx: &mut Cx<'_>, req: &Request, facts: &Facts) -> Result<()> {
    state::record_success(cx.db(), &req.user, crate::now())?;
    if facts.locked_until != 0 {
        let user = req.user.clone();
        cx.store()?
            .policy_write(false, |tx| Ok((q::record_success(tx, &user)?, true)))?;
    }
    grant(cx, req);
    Ok(())
}

/// Puts a lockout a guess just set ([`state::guess`]) into the database (and so into the
/// policy snapshot). The state file already holds it: if this fails, the lockout is still
/// enforced from the file.
///
/// Then the lockout notices the settings ask for ([`crate::notice::at_lockout`]): this runs
/// once per lockout (a guess returns the lock once), so one notice per lockout. A notice
/// that cannot be queued changes nothing.
pub(super) fn lockout(cx: &mut Cx<'_>, req: &Request, now: i64, until: i64) -> Result<()> {
    let user = req.user.as_str();
    let count = state::failures(cx.db(), user).count;
    let written = cx.store().and_then(|s| {
        s.policy_write(false, |tx| {
            Ok((q::record_lockout(tx, user, count, now, until)?, true))
        })
    });
    let config = cx.config;
    let settings = cx.snap.as_ref().map(|s| s.settings().clone());
    // The database only when the lockout could be written to it: a store that is locked or
    // unreadable would make the notice wait its bound again (each open and read waits up to
    // files::LOCK_WAIT) on a login already refused. The administrator's notice needs none.
    let conn = match (&written, cx.store.as_ref()) {
        (Ok(()), Some(s)) => Some(s.conn()),
        _ => None,
    };
    let _ = crate::notice::at_lockout(
        &config.paths.database,
        &config.paths.spool,
        conn,
        settings.as_ref(),
        user,
        count,
        until,
        &req.service,
        &req.rhost,
        now,
    );
    written
}
