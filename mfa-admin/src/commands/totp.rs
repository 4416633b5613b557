//! `totp` and `backup-codes`: authenticator keys and single-use recovery codes. Secrets are
//! shown once, to the administrator's terminal; the audit log records what was done, never
//! a secret.

use std::path::Path;

use mfa_core::store::{auth, factors, people, rules};
use mfa_core::totp::{self, Key};
use mfa_core::{Error, Result};
use serde::Serialize;

use super::{Ctx, parse_number};
use crate::cli::TotpCmd;
use crate::output::json;

#[derive(Serialize)]
struct Enrolled {
    user: String,
    issuer: String,
    account: String,
    /// The key in base 32.
    key: String,
    uri: String,
    algorithm: String,
    digits: u32,
    /// The PNG written, if any.
    png: Option<String>,
}

pub fn run(ctx: &Ctx, cmd: TotpCmd) -> Result<()> {
    match cmd {
        TotpCmd::Enroll {
            user,
            digits,
            algorithm,
            png,
        } => {
            let key = Key::generate(&totp::algorithm(&algorithm)?, totp::digits(&digits)?)?;
            enroll(ctx, &user, key, png.as_deref(), false)
        }
        TotpCmd::Reset { user, png } => {
            let old = factors::totp_of(ctx.store()?.conn(), &user)?;
            let old = old.ok_or_else(|| {
                Error::NotFound(format!("user {user:?} has no authenticator key; enrol one with `mfa-admin totp enroll {user}`"))
            })?;
            let key = Key::generate(&old.algorithm, old.digits)?;
            enroll(ctx, &user, key, png.as_deref(), true)
        }
        TotpCmd::Remove { user } => {
            let mut store = ctx.store()?;
            store.change(&ctx.actor(), "totp remove", |tx| {
                people::require_user(tx, &user)?;
                if !factors::remove_totp(tx, &user)? {
                    return Err(Error::NotFound(format!(
                        "user {user:?} has no authenticator key"
                    )));
                }
                Ok(((), user.clone()))
            })?;
            mfa_core::state::clear_totp(&ctx.config.paths.database, &user)?;
            println!("removed the authenticator key of {user}");
            Ok(())
        }
    }
}

fn enroll(ctx: &Ctx, user: &str, key: Key, png: Option<&Path>, reset: bool) -> Result<()> {
    let mut store = ctx.store()?;
    let issuer = rules::settings(store.conn())?.totp_issuer();
    let uri = key.uri(&issuer, user);
    // Draw before storing: a failure here must not leave a key nobody has seen.
    let qr = totp::qr_text(&uri)?;
    let png_bytes = png.map(|_| totp::qr_png(&uri)).transpose()?;
    let action = if reset { "totp reset" } else { "totp enroll" };
    store.change(&ctx.actor(), action, |tx| {
        people::require_user(tx, user)?;
        if !reset && factors::totp_of(tx, user)?.is_some() {
            return Err(Error::Conflict(format!(
                "user {user:?} already has an authenticator key; replace it with `mfa-admin totp reset {user}`"
            )));
        }
        factors::set_totp(tx, user, &key, mfa_core::now())?;
        if let (Some(path), Some(bytes)) = (png, &png_bytes) {
            write_private(path, bytes)?;
        }
        Ok(((), format!("{user}: {} {} digits", key.algorithm, key.digits)))
    })?;
    // The new key's replay window starts afresh.
    mfa_core::state::clear_totp(&ctx.config.paths.database, user)?;
    let out = Enrolled {
        user: user.to_string(),
        issuer: issuer.clone(),
        account: user.to_string(),
        key: key.base32(),
        uri: uri.clone(),
        algorithm: key.algorithm.clone(),
        digits: key.digits,
        png: png.map(|p| p.display().to_string()),
    };
    if ctx.json {
        return json(&out);
    }
    println!("{qr}");
    println!("issuer:    {issuer}");
    println!("account:   {user}");
    println!("key:       {}", out.key);
    println!(
        "algorithm: {} ({} digits, 30 s steps)",
        key.algorithm.to_ascii_uppercase(),
        key.digits
    );
    println!("uri:       {uri}");
    if let Some(p) = png {
        println!("png:       {}", p.display());
    }
    if reset {
        println!("\nThe old key no longer works.");
    }
    Ok(())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))
}

pub fn backup_codes(ctx: &Ctx, user: &str, count: &str) -> Result<()> {
    let n = usize::try_from(parse_number("--count", count, 100)?).unwrap_or(10);
    let codes = totp::backup_codes(n)?;
    let mut store = ctx.store()?;
    store.change(&ctx.actor(), "backup-codes", |tx| {
        people::require_user(tx, user)?;
        let key = auth::passcode_key(tx)?;
        let hashes = codes
            .iter()
            .map(|c| totp::backup_hash(&key, user, c))
            .collect::<Result<Vec<_>>>()?;
        factors::set_backup_codes(tx, user, &hashes, mfa_core::now())?;
        Ok(((), format!("{user}: {n} new codes (old ones revoked)")))
    })?;
    if ctx.json {
        return json(&serde_json::json!({ "user": user, "codes": codes }));
    }
    println!(
        "Backup codes for {user} (each works once; shown only now; the old ones are revoked):\n"
    );
    for pair in codes.chunks(2) {
        println!(
            "    {}",
            pair.iter()
                .map(|c| format!("{}-{}", &c[..4], &c[4..]))
                .collect::<Vec<_>>()
                .join("    ")
        );
    }
    Ok(())
}
