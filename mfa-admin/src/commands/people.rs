//! `user`, `contact`, `override` and `carrier`: who proves a second factor and how they are
//! reached (a user's group: `user add/set --group`, `user list --group`, and in `user show`
//! where each effective setting comes from).

use mfa_core::contact::{Contact, MAX_CONTACTS};
use mfa_core::store::Tx;
use mfa_core::store::groups as groups_q;
use mfa_core::store::people::{self as q, OverrideChange};
use mfa_core::{Error, Result, invalid, validate};

use super::group::{factors_or_default, yes_no_default};
use super::rules::log_level_or_default;
use super::{Ctx, parse_number};
use crate::cli::{CarrierCmd, ContactCmd, OverrideCmd, UserCmd};
use crate::output::{json, table, yes_no};
use crate::when;

pub fn user(ctx: &Ctx, cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::List {
            group,
            inactive: Some(d),
        } => super::maintain::list_inactive(ctx, group.as_deref(), &d),
        UserCmd::List { group, .. } => {
            let store = ctx.store()?;
            let mut users = q::users(store.conn())?;
            if let Some(gname) = &group {
                let members = groups_q::member_names(store.conn(), gname)?;
                users.retain(|u| members.contains(&u.name));
            }
            // A lockout the module could not store in the database is in the user's state
            // file (mfa_core::state), as `user show` reads it.
            for u in &mut users {
                let f = mfa_core::state::failures(&ctx.config.paths.database, &u.name);
                u.locked_until = u.locked_until.max(f.locked_until);
            }
            if ctx.json {
                return json(&users);
            }
            let now = mfa_core::now();
            let rows = users
                .into_iter()
                .map(|u| {
                    let mut flags = Vec::new();
                    if !u.enabled {
                        flags.push("disabled");
                    }
                    if u.mandatory {
                        flags.push("mandatory");
                    }
                    if u.exempt {
                        flags.push("exempt");
                    }
                    let locked = if u.locked_until > now {
                        flags.push("locked");
                        when::show(u.locked_until)
                    } else {
                        "-".into()
                    };
                    vec![
                        u.name,
                        u.full_name,
                        u.group.unwrap_or_else(|| "-".into()),
                        u.contacts.to_string(),
                        u.duo_user.unwrap_or_else(|| "-".into()),
                        flags.join(","),
                        locked,
                        when::show(u.created),
                    ]
                })
                .collect();
            table(
                &[
                    "USER",
                    "FULL NAME",
                    "GROUP",
                    "CONTACTS",
                    "DUO",
                    "FLAGS",
                    "LOCKED UNTIL",
                    "ADDED",
                ],
                rows,
                "no users",
            );
            Ok(())
        }
        UserCmd::Add {
            name,
            full_name,
            duo,
            group,
        } => {
            let name = validate::user_name(&name)?;
            let full_name = validate::label("full name", &full_name, 100)?;
            let duo = duo.map(|d| duo_name(&name, &d)).transpose()?;
            let group = group.map(|g| validate::group_name(&g)).transpose()?;
            let mut store = ctx.store()?;
            store.change(&ctx.actor(), "user add", |tx| {
                q::add_user(tx, &name, &full_name, mfa_core::now())?;
                if let Some(d) = &duo {
                    q::set_duo_user(tx, &name, Some(d))?;
                }
                if let Some(g) = &group {
                    groups_q::set_user_group(tx, &name, Some(g))?;
                }
                let mut detail = name.clone();
                if let Some(d) = &duo {
                    detail.push_str(&format!(" (Duo user {d})"));
                }
                if let Some(g) = &group {
                    detail.push_str(&format!(" (group {g})"));
                }
                Ok(((), detail))
            })?;
            let mut said = format!("added user {name}");
            if let Some(d) = &duo {
                said.push_str(&format!(" (Duo user {d})"));
            }
            if let Some(g) = &group {
                said.push_str(&format!(" in group {g}"));
            }
            println!("{said}");
            if !matches!(nix::unistd::User::from_name(&name), Ok(Some(_))) {
                eprintln!(
                    "note: this system has no account named {name} (yet); mfa applies once it logs in"
                );
            }
            Ok(())
        }
        UserCmd::Set {
            name,
            duo,
            no_duo,
            group,
        } => {
            let name = validate::user_name(&name)?;
            // None: Duo left as it is; Some(None): no Duo.
            let duo = match (duo, no_duo) {
                (Some(d), false) => Some(Some(duo_name(&name, &d)?)),
                (None, true) => Some(None),
                (None, false) => None,
                _ => return Err(invalid!("say --duo [NAME] or --no-duo, not both")),
            };
            // None: group left as it is; Some(None): no own group.
            let group = match group.as_deref() {
                None => None,
                Some(g) if g.eq_ignore_ascii_case("none") => Some(None),
                Some(g) => Some(Some(validate::group_name(g)?)),
            };
            if duo.is_none() && group.is_none() {
                return Err(invalid!("say --duo [NAME], --no-duo or --group GROUP|none"));
            }
            let mut store = ctx.store()?;
            let said = store.change(&ctx.actor(), "user set", |tx| {
                let mut said = Vec::new();
                let mut detail = Vec::new();
                if let Some(duo) = &duo {
                    let changed = q::set_duo_user(tx, &name, duo.as_deref())?;
                    let what = match duo {
                        Some(d) => format!("user {name} has Duo user {d}"),
                        None => format!("user {name} is not known to have Duo"),
                    };
                    said.push(if changed {
                        what
                    } else {
                        format!("{what} (unchanged)")
                    });
                    detail.push(match duo {
                        Some(d) => format!("Duo user {d}"),
                        None => "no Duo".into(),
                    });
                }
                if let Some(group) = &group {
                    let changed = groups_q::set_user_group(tx, &name, group.as_deref())?;
                    let what = match group {
                        Some(g) => format!("user {name} is in group {g}"),
                        None => format!("user {name} has no own group"),
                    };
                    said.push(if changed {
                        what
                    } else {
                        format!("{what} (unchanged)")
                    });
                    detail.push(match group {
                        Some(g) => format!("group {g}"),
                        None => "no own group".into(),
                    });
                    if group.is_none() {
                        // Say what governs the user now.
                        let p = groups_q::provenance(tx, &name)?;
                        if let Some(g) = p.and_then(|p| p.group.value.map(|v| (v, p.group.from))) {
                            said.push(format!("user {name} now follows group {} ({})", g.0, g.1));
                        }
                    }
                }
                Ok((said, format!("{name}: {}", detail.join(", "))))
            })?;
            for line in said {
                println!("{line}");
            }
            if group.is_some() {
                super::group::warn_stranded(&store, None, Some(&name));
            }
            Ok(())
        }
        UserCmd::Show { name } => {
            validate::user_name(&name)?;
            let mut u = q::user(ctx.store()?.conn(), &name)?.ok_or_else(|| unknown(&name))?;
            // The running count is a file beside the database (mfa_core::state); the
            // database holds the lockouts.
            let f = mfa_core::state::failures(&ctx.config.paths.database, &name);
            u.failures = u.failures.max(i64::from(f.count));
            u.locked_until = u.locked_until.max(f.locked_until);
            if ctx.json {
                return json(&u);
            }
            println!("user:       {}", u.name);
            println!("full name:  {}", u.full_name);
            println!("enabled:    {}", yes_no(u.enabled));
            println!("added:      {}", when::show(u.created));
            let now = mfa_core::now();
            if u.locked_until > now {
                println!(
                    "locked out: until {} (`mfa-admin user unlock {}` ends it)",
                    when::show(u.locked_until),
                    u.name
                );
            } else {
                println!("failures:   {} in a row", u.failures);
            }
            match &u.overrides {
                Some(o) => println!("overrides:  {}", override_fields(o)),
                None => println!("overrides:  none"),
            }
            print_effective(&u.effective);
            match &u.totp {
                Some(t) => println!(
                    "authenticator: {} {} digits, since {}",
                    t.algorithm,
                    t.digits,
                    when::show(t.created)
                ),
                None => println!("authenticator: none"),
            }
            println!("backup codes: {} remaining", u.backup_codes);
            match &u.duo_user {
                Some(d) => println!("duo:        user {d}"),
                None => println!("duo:        not known to have Duo"),
            }
            println!(
                "contacts:   {}",
                if u.contacts.is_empty() { "none" } else { "" }
            );
            print_contacts(&u.contacts);
            Ok(())
        }
        UserCmd::Del { name } => {
            change_user(
                ctx,
                "user del",
                &name,
                |tx, n| q::delete_user(tx, n),
                "deleted user",
            )?;
            forget_state(ctx, &name)
        }
        UserCmd::Import(a) => super::user_import::run(ctx, a),
        UserCmd::Enable { name } => toggle(ctx, &name, true),
        UserCmd::Disable { name } => toggle(ctx, &name, false),
        UserCmd::Unlock { name } => {
            let mut store = ctx.store()?;
            let was = q::unlock_user(&mut store, &ctx.actor(), &name)?;
            if was {
                println!("unlocked user {name}");
            } else {
                println!("user {name} was not locked out; failure count cleared");
            }
            Ok(())
        }
    }
}

/// `user show`'s effective settings, each with where it comes from.
fn print_effective(p: &groups_q::Provenance) {
    let group = match (&p.group.value, p.group.from) {
        (None, _) => "none".to_string(),
        (Some(g), "user") => format!("{g} (the user's own)"),
        (Some(g), "unix") => format!(
            "{g} (through Unix group {})",
            crate::output::visible(p.group.unix_group.as_deref().unwrap_or("?"))
        ),
        (Some(g), _) => format!("{g} (the default group, setting default_group)"),
    };
    println!("group:      {group}");
    if !p.group.also_in.is_empty() {
        println!(
            "            also in the Unix groups of {}, which do not govern the user (own group, else the first by name)",
            p.group.also_in.join(", ")
        );
    }
    println!("effective:");
    let line = |what: &str, value: String, src: &groups_q::Source| {
        println!("  {what:<12} {value:<18} from {}", src.text());
    };
    line("mandatory", yes_no(p.mandatory.value), &p.mandatory.source);
    line("exempt", yes_no(p.exempt.value), &p.exempt.source);
    line(
        "self-enroll",
        yes_no(p.self_enroll.value),
        &p.self_enroll.source,
    );
    line("log", p.log.value.clone(), &p.log.source);
    line("factors", p.factors.value.clone(), &p.factors.source);
}

/// Ends the repeat windows of a user who is deleted or disabled.
fn revoke_grants(ctx: &Ctx, name: &str) -> Result<()> {
    mfa_core::grants::revoke(&ctx.config.paths.database, Some(name))?;
    Ok(())
}

/// Forgets the login state of a deleted user: grants, challenges, TOTP step, failure count.
fn forget_state(ctx: &Ctx, name: &str) -> Result<()> {
    let db = &ctx.config.paths.database;
    revoke_grants(ctx, name)?;
    mfa_core::state::drop_challenges_of(db, Some(name))?;
    mfa_core::state::forget_user(db, name)
}

/// The Duo user name `--duo [NAME]` gives: NAME, or the login name when it was left out.
fn duo_name(user: &str, given: &str) -> Result<String> {
    if given.is_empty() {
        validate::duo_user(user)
    } else {
        validate::duo_user(given)
    }
}

fn unknown(name: &str) -> Error {
    Error::NotFound(format!(
        "unknown user {name:?}: `mfa-admin user list` shows the users"
    ))
}

fn change_user(
    ctx: &Ctx,
    action: &str,
    name: &str,
    f: impl FnOnce(&Tx<'_>, &str) -> Result<()>,
    done: &str,
) -> Result<()> {
    let mut store = ctx.store()?;
    store.change(&ctx.actor(), action, |tx| {
        f(tx, name)?;
        Ok(((), name.to_string()))
    })?;
    println!("{done} {name}");
    Ok(())
}

fn toggle(ctx: &Ctx, name: &str, enabled: bool) -> Result<()> {
    let action = if enabled {
        "user enable"
    } else {
        "user disable"
    };
    let mut store = ctx.store()?;
    let changed = store.change(&ctx.actor(), action, |tx| {
        Ok((q::set_enabled(tx, name, enabled)?, name.to_string()))
    })?;
    if !enabled {
        revoke_grants(ctx, name)?;
    }
    let state = if enabled { "enabled" } else { "disabled" };
    if changed {
        println!("user {name} {state}");
    } else {
        println!("user {name} was already {state}");
    }
    Ok(())
}

fn print_contacts(contacts: &[q::ContactRow]) {
    let rows = contacts
        .iter()
        .map(|c| {
            vec![
                c.seq.to_string(),
                c.channel.clone(),
                c.to.clone(),
                c.carrier.clone().unwrap_or_default(),
                c.masked.clone(),
                c.label.clone(),
            ]
        })
        .collect();
    table(
        &["SEQ", "CHANNEL", "SENT TO", "CARRIER", "SHOWN AS", "LABEL"],
        rows,
        "no contacts",
    );
}

pub fn contact(ctx: &Ctx, cmd: ContactCmd) -> Result<()> {
    match cmd {
        ContactCmd::Add(a) => {
            let contact = match (&a.email, &a.phone, &a.carrier, &a.sms) {
                (Some(e), None, None, None) => Contact::email(e)?,
                (None, Some(p), Some(c), None) => Contact::phone(p, c)?,
                (None, None, None, Some(s)) => Contact::sms(s)?,
                _ => {
                    return Err(invalid!(
                        "give exactly one of --email ADDR, --phone NUMBER --carrier NAME, or --sms +E164"
                    ));
                }
            };
            let label = validate::label("label", &a.label, 32)?;
            let mut store = ctx.store()?;
            let user = a.user.clone();
            let row = store.change(&ctx.actor(), "contact add", |tx| {
                let seq = q::add_contact(tx, &user, &contact, &label, None, mfa_core::now())?;
                let row = q::contacts(tx, &user)?.into_iter().find(|c| c.seq == seq);
                let row =
                    row.ok_or_else(|| Error::Database("contact vanished after insert".into()))?;
                let detail = format!("{user} #{seq}: {} {}", row.channel, row.masked);
                Ok((row, detail))
            })?;
            if ctx.json {
                return json(&row);
            }
            println!(
                "added contact {} for {}: {} ({})",
                row.seq, a.user, row.to, row.channel
            );
            Ok(())
        }
        ContactCmd::List { user } => {
            let store = ctx.store()?;
            q::require_user(store.conn(), &user)?;
            let list = q::contacts(store.conn(), &user)?;
            if ctx.json {
                return json(&list);
            }
            print_contacts(&list);
            Ok(())
        }
        ContactCmd::Del { user, seq } => {
            let seq = parse_number("contact number", &seq, MAX_CONTACTS as i64)?;
            let mut store = ctx.store()?;
            let gone = store.change(&ctx.actor(), "contact del", |tx| {
                let gone = q::delete_contact(tx, &user, seq)?;
                let row = &gone.row;
                let mut detail = format!("{user} #{seq}: {} {}", row.channel, row.masked);
                if gone.cleared_double_logon {
                    detail.push_str(
                        "; double-logon contact override cleared (now the first contact)",
                    );
                }
                Ok((gone, detail))
            })?;
            println!("deleted contact {seq} of {user}: {}", gone.row.to);
            if gone.cleared_double_logon {
                println!(
                    "it was {user}'s double-logon contact: that override is cleared, double logons \
                     now send to {user}'s first contact (choose another with `mfa-admin override \
                     set {user} --double-logon-contact N`)"
                );
            }
            Ok(())
        }
    }
}

pub fn overrides(ctx: &Ctx, cmd: OverrideCmd) -> Result<()> {
    match cmd {
        OverrideCmd::Set(s) => {
            let yn = |what: &str, v: &Option<String>| {
                v.as_deref().map(|t| yes_no_default(what, t)).transpose()
            };
            let mandatory = yn("--mandatory", &s.mandatory)?;
            let exempt = yn("--exempt", &s.exempt)?;
            let factors = s.factors.as_deref().map(factors_or_default).transpose()?;
            let self_enroll = match s.self_enroll.as_deref() {
                None => None,
                Some("yes") => Some(Some(true)),
                Some("no") => Some(Some(false)),
                Some("default") => Some(None),
                Some(other) => {
                    return Err(invalid!(
                        "invalid --self-enroll {other:?}: expected yes|no|default"
                    ));
                }
            };
            let log = s.log.as_deref().map(log_level_or_default).transpose()?;
            let double_logon_contact = match s.double_logon_contact.as_deref().map(str::trim) {
                None => None,
                Some("default") => Some(None),
                Some(n) => Some(Some(
                    parse_number("--double-logon-contact", n, MAX_CONTACTS as i64).map_err(
                        |_| {
                            invalid!(
                                "invalid --double-logon-contact {n:?}: expected a contact number \
                                 from 1 to {MAX_CONTACTS} (`mfa-admin contact list {}` shows them) \
                                 or default (the first contact)",
                                s.user
                            )
                        },
                    )?,
                )),
            };
            let change = OverrideChange {
                mandatory,
                exempt,
                self_enroll,
                log,
                double_logon_contact,
                factors,
            };
            let mut store = ctx.store()?;
            let o = store.change(&ctx.actor(), "override set", |tx| {
                let o = q::set_override(tx, &s.user, &change)?;
                let detail = override_line(&o);
                Ok((o, detail))
            })?;
            super::group::warn_stranded(&store, None, Some(&s.user));
            if ctx.json {
                return json(&o);
            }
            println!("{}", override_line(&o));
            Ok(())
        }
        OverrideCmd::List => {
            let list = q::overrides(ctx.store()?.conn())?;
            if ctx.json {
                return json(&list);
            }
            let rows = list
                .into_iter()
                .map(|o| {
                    vec![
                        o.user,
                        o.mandatory.map_or("default".into(), yes_no),
                        o.exempt.map_or("default".into(), yes_no),
                        o.self_enroll.map_or("default".into(), yes_no),
                        o.log.unwrap_or_else(|| "default".into()),
                        o.factors.map_or("default".into(), |f| f.to_string()),
                        double_logon(o.double_logon_contact),
                    ]
                })
                .collect();
            table(
                &[
                    "USER",
                    "MANDATORY",
                    "EXEMPT",
                    "SELF-ENROLL",
                    "LOG",
                    "FACTORS",
                    "DOUBLE-LOGON CONTACT",
                ],
                rows,
                "no overrides",
            );
            Ok(())
        }
        OverrideCmd::Del { user } => change_user(
            ctx,
            "override del",
            &user,
            |tx, n| q::delete_override(tx, n),
            "removed the overrides of",
        ),
    }
}

fn override_line(o: &q::Override) -> String {
    format!("{}: {}", o.user, override_fields(o))
}

/// A user's overrides without the name, as `user show` and `override_line` write them.
fn override_fields(o: &q::Override) -> String {
    format!(
        "mandatory {}, exempt {}, self-enroll {}, log {}, factors {}, double-logon contact {}",
        o.mandatory.map_or("default".into(), yes_no),
        o.exempt.map_or("default".into(), yes_no),
        o.self_enroll.map_or("default".into(), yes_no),
        o.log.as_deref().unwrap_or("default"),
        o.factors.map_or("default".into(), |f| f.to_string()),
        double_logon(o.double_logon_contact)
    )
}

/// The double-logon contact as tables and the audit log show it: its number, or
/// `default` (the first contact).
fn double_logon(n: Option<i64>) -> String {
    n.map_or("default".into(), |n| n.to_string())
}

pub fn carrier(ctx: &Ctx, cmd: CarrierCmd) -> Result<()> {
    match cmd {
        CarrierCmd::List => {
            let list = q::carriers(ctx.store()?.conn())?;
            if ctx.json {
                return json(&list);
            }
            let rows = list
                .into_iter()
                .map(|c| vec![c.name, c.suffix, c.contacts.to_string()])
                .collect();
            table(&["CARRIER", "GATEWAY", "CONTACTS"], rows, "no carriers");
            Ok(())
        }
        CarrierCmd::Add { name, suffix } => {
            let name = validate::label("carrier name", &name, 40)?;
            if name.is_empty() {
                return Err(invalid!("a carrier needs a name, such as Verizon"));
            }
            let suffix = validate::domain("carrier gateway", &suffix)?;
            let mut store = ctx.store()?;
            store.change(&ctx.actor(), "carrier add", |tx| {
                q::add_carrier(tx, &name, &suffix)?;
                Ok(((), format!("{name}: {suffix}")))
            })?;
            println!("added carrier {name}: NUMBER@{suffix}");
            Ok(())
        }
        CarrierCmd::Del { name } => {
            let mut store = ctx.store()?;
            let name = store.change(&ctx.actor(), "carrier del", |tx| {
                let n = q::delete_carrier(tx, &name)?;
                Ok((n.clone(), n))
            })?;
            println!("deleted carrier {name}");
            Ok(())
        }
    }
}
