//! `duo ping|check|preauth|enroll|enroll-status`, `test USER --duo` and doctor's Duo check:
//! requests to Duo's Auth API through mfa-sender's broker ([`mfa_core::duo`]), which alone
//! holds the secret key. Every failure says which part failed (the broker, Duo, the
//! credentials, the request) and what to check; every text that comes from Duo or the
//! broker is escaped before it reaches the terminal.

use std::time::{Duration, Instant};

use mfa_core::contact::Channel;
use mfa_core::duo::{self as broker, BrokerError, ErrorKind, Reply, Request};
use mfa_core::store::{people, rules};
use mfa_core::{Error, Result, invalid, spool, template, validate};
use serde::Serialize;

use super::Ctx;
use crate::cli::DuoCmd;
use crate::output::{json, table, visible};
use crate::when;

/// The longest text from Duo or the broker shown in a message (a hostile broker could send
/// 64 KiB).
const MAX_SHOWN: usize = 300;

/// The longest `enroll-status` argument taken (Duo's ids and codes are a few dozen bytes).
const MAX_ID: usize = 100;

pub fn run(ctx: &Ctx, cmd: DuoCmd) -> Result<()> {
    match cmd {
        DuoCmd::Ping => {
            let time = time_of(call(ctx, &Request::Ping, &mut |_| true)?)?;
            if ctx.json {
                return json(&serde_json::json!({ "ok": true, "time": time }));
            }
            println!(
                "Duo is reachable from mfa-sender (Duo's time: {}{})",
                when::show(time),
                skew(time)
            );
            Ok(())
        }
        DuoCmd::Check => {
            let time = time_of(call(ctx, &Request::Check, &mut |_| true)?)?;
            if ctx.json {
                return json(&serde_json::json!({ "ok": true, "time": time }));
            }
            println!(
                "Duo accepted the integration key, secret key and signature (Duo's time: {}{})",
                when::show(time),
                skew(time)
            );
            Ok(())
        }
        DuoCmd::Preauth { user } => preauth_cmd(ctx, &user),
        DuoCmd::Enroll { user, send } => enroll(ctx, &user, send.as_deref()),
        DuoCmd::EnrollStatus { user_id, code } => enroll_status(ctx, &user_id, &code),
    }
}

/// Duo's text as the terminal may show it: escaped, one line, bounded.
pub fn shown(text: &str) -> String {
    let v = visible(text);
    if v.chars().count() > MAX_SHOWN {
        let cut: String = v.chars().take(MAX_SHOWN).collect();
        format!("{cut}...")
    } else {
        v
    }
}

/// " (N s from this host's clock)" when the clocks differ by more than a few seconds: Duo
/// refuses signatures whose date is off by minutes.
fn skew(duo_time: i64) -> String {
    let d = duo_time - mfa_core::now();
    if d.abs() > 5 {
        format!("; this host's clock is {} s off", -d)
    } else {
        String::new()
    }
}

fn time_of(reply: Reply) -> Result<i64> {
    match reply {
        Reply::Time { time } => Ok(time),
        other => Err(unexpected(&other)),
    }
}

/// A reply of the wrong kind for the request.
fn unexpected(reply: &Reply) -> Error {
    let kind = match reply {
        Reply::Progress { .. } => "progress",
        Reply::Time { .. } => "time",
        Reply::Preauth(_) => "preauth",
        Reply::Auth(_) => "auth",
        Reply::Enrolled(_) => "enrolled",
        Reply::EnrollStatus { .. } => "enroll_status",
        Reply::Error { .. } => "error",
    };
    Error::Failed(format!(
        "the Duo broker answered with a {kind} reply that does not fit the request; is mfa-sender of the same version as mfa-admin? (restart it after an upgrade)"
    ))
}

/// How long a request may take: Duo's own timeout and some slack (every frame of the
/// broker is due within [`broker::IDLE`] besides).
fn deadline(ctx: &Ctx, push: bool) -> Instant {
    let secs = ctx
        .config
        .duo
        .as_ref()
        .and_then(|d| d.timeout_secs().ok())
        .unwrap_or(60);
    let slack = if push { 15 } else { 5 };
    Instant::now() + Duration::from_secs(u64::from(secs) + slack)
}

/// Sends `req` to the broker; a failure becomes an error naming the cause and the fix.
fn call(ctx: &Ctx, req: &Request, progress: &mut dyn FnMut(&str) -> bool) -> Result<Reply> {
    require_config(ctx)?;
    let push = matches!(req, Request::Auth { .. });
    broker::call(
        &ctx.config.paths.runtime,
        &ctx.config.sender.user,
        req,
        deadline(ctx, push),
        progress,
    )
    .map_err(|e| explain(ctx, &e))
}

/// `[duo]` must be in the configuration: without it the sender brokers nothing.
fn require_config(ctx: &Ctx) -> Result<()> {
    if ctx.config.duo.is_none() {
        return Err(Error::Failed(format!(
            "Duo is not configured: {} has no [duo] section; add one with host, ikey and skey_file (mfa.toml(5)), then restart mfa-sender",
            ctx.config_path.display()
        )));
    }
    Ok(())
}

/// The message for a failed broker call: what failed and what to check.
pub fn explain(ctx: &Ctx, e: &BrokerError) -> Error {
    let config = ctx.config_path.display();
    match e {
        BrokerError::Unavailable(m) => Error::Failed(format!(
            "the Duo broker (mfa-sender) cannot be reached: {}; is mfa-sender running? (systemctl start mfa-sender; `mfa-admin doctor` checks it)",
            shown(m)
        )),
        BrokerError::Stopped => Error::Failed("the request to the Duo broker was stopped".into()),
        BrokerError::Duo(kind, m) => {
            let m = shown(m);
            match kind {
                ErrorKind::Unavailable => Error::Failed(format!(
                    "Duo cannot be reached from mfa-sender: {m}; check [duo] host in {config}, DNS, the firewall or proxy to it, and ca_file if set (`mfa-admin duo ping`)"
                )),
                ErrorKind::Credentials => Error::Failed(format!(
                    "Duo refused the integration's credentials: {m}; check [duo] ikey, the secret key in skey_file and host in {config} (all three from the same Auth API application), and this host's clock, then restart mfa-sender"
                )),
                ErrorKind::Refused => Error::Invalid(format!("Duo refused the request: {m}")),
                ErrorKind::NotConfigured => Error::Failed(format!(
                    "mfa-sender has no usable [duo] configuration: {m}; check [duo] in {config} and that skey_file is readable by the sender's user, then restart mfa-sender"
                )),
                ErrorKind::Forbidden => Error::Failed(format!(
                    "the Duo broker refused this request: {m}; run mfa-admin as root, with the same version as mfa-sender"
                )),
                ErrorKind::Busy => Error::Failed(format!(
                    "the Duo broker is busy ({m}); try again in a moment"
                )),
            }
        }
    }
}

/// The Duo user name of `user`: the one their record names, else the login name (also for
/// a user mfa does not know). Also whether mfa knows the user.
fn duo_name(ctx: &Ctx, user: &str) -> Result<(String, bool)> {
    validate::user_name(user)?;
    let store = ctx.store()?;
    let known = people::require_user(store.conn(), user).is_ok();
    let name = people::duo_user(store.conn(), user)?.unwrap_or_else(|| user.to_string());
    validate::duo_user(&name).map_err(|e| {
        invalid!("{e}; give the user a Duo user name with `mfa-admin user set {user} --duo NAME`")
    })?;
    Ok((name, known))
}

fn preauth(ctx: &Ctx, duo_user: &str) -> Result<broker::Preauth> {
    let req = Request::Preauth {
        username: duo_user.to_string(),
        ipaddr: None,
        hostname: mfa_core::settings::host_name(),
    };
    match call(ctx, &req, &mut |_| true)? {
        Reply::Preauth(p) => Ok(p),
        other => Err(unexpected(&other)),
    }
}

#[derive(Serialize)]
struct DeviceView {
    device: String,
    display_name: String,
    #[serde(rename = "type")]
    kind: String,
    capabilities: Vec<String>,
}

#[derive(Serialize)]
struct PreauthView {
    user: String,
    duo_user: String,
    result: String,
    status_msg: String,
    enroll_portal_url: Option<String>,
    devices: Vec<DeviceView>,
}

fn preauth_cmd(ctx: &Ctx, user: &str) -> Result<()> {
    let (duo_user, _) = duo_name(ctx, user)?;
    let p = preauth(ctx, &duo_user)?;
    if ctx.json {
        return json(&PreauthView {
            user: user.to_string(),
            duo_user,
            result: p.result,
            status_msg: p.status_msg,
            enroll_portal_url: p.enroll_portal_url,
            devices: p
                .devices
                .into_iter()
                .map(|d| DeviceView {
                    device: d.device,
                    display_name: d.display_name,
                    kind: d.kind,
                    capabilities: d.capabilities,
                })
                .collect(),
        });
    }
    println!("user:      {user} (Duo user {})", shown(&duo_user));
    let meaning = match p.result.as_str() {
        "auth" => "a second factor is required",
        "allow" => "Duo lets the user in without a second factor",
        "deny" => "Duo denies the user",
        "enroll" => "the user must enrol with Duo first",
        _ => "unknown to this version of mfa",
    };
    println!("result:    {} ({meaning})", shown(&p.result));
    println!("status:    {}", shown(&p.status_msg));
    if let Some(url) = &p.enroll_portal_url {
        println!("enrol at:  {}", shown(url));
    }
    if p.result == "auth" {
        let rows = p
            .devices
            .iter()
            .map(|d| {
                vec![
                    d.device.clone(),
                    d.display_name.clone(),
                    d.kind.clone(),
                    d.capabilities.join(","),
                ]
            })
            .collect();
        table(
            &["DEVICE", "NAME", "TYPE", "CAPABILITIES"],
            rows,
            "no devices",
        );
    }
    Ok(())
}

/// Where `--send` sends: `email` the first email contact, `sms` the first SMS one (an SMS
/// API or a carrier gateway), `N` contact number N.
fn pick_contact<'a>(
    user: &str,
    contacts: &'a [people::ContactRow],
    send: &str,
) -> Result<&'a people::ContactRow> {
    let kind = send.trim().to_ascii_lowercase();
    let found = match kind.as_str() {
        "email" => contacts.iter().find(|c| c.channel == "email"),
        "sms" => contacts
            .iter()
            .find(|c| c.channel == "sms" || c.channel == "sms-gateway"),
        n => {
            let seq = super::parse_number("--send", n, 4).map_err(|_| {
                invalid!(
                    "invalid --send {:?}: expected email, sms or a contact number from 1 to 4",
                    visible(send)
                )
            })?;
            contacts.iter().find(|c| c.seq == seq)
        }
    };
    let what = match kind.as_str() {
        "email" | "sms" => format!("{kind} contact"),
        n => format!("contact number {n}"),
    };
    found.ok_or_else(|| {
        Error::NotFound(format!(
            "user {user} has no {what} to send the link to; `mfa-admin contact list {user}` shows the contacts"
        ))
    })
}

#[derive(Serialize)]
struct EnrollView {
    user: String,
    duo_user: String,
    user_id: String,
    activation_code: String,
    activation_url: String,
    activation_barcode: String,
    expiration: i64,
    sent: Option<SentView>,
}

#[derive(Serialize)]
struct SentView {
    id: String,
    to: String,
}

fn enroll(ctx: &Ctx, user: &str, send: Option<&str>) -> Result<()> {
    let (duo_user, known) = duo_name(ctx, user)?;
    // What --send needs is checked before Duo creates anything.
    let target = match send {
        Some(s) => {
            if !known {
                return Err(Error::NotFound(format!(
                    "unknown user {user:?}: --send needs the user's contacts; add the user first (`mfa-admin user add {user}`)"
                )));
            }
            let contacts = people::contacts(ctx.store()?.conn(), user)?;
            let c = pick_contact(user, &contacts, s)?.clone();
            spool::check(&ctx.config.paths.spool)?;
            Some(c)
        }
        None => None,
    };
    let req = Request::Enroll {
        username: Some(duo_user.clone()),
    };
    let e = match call(ctx, &req, &mut |_| true)? {
        Reply::Enrolled(e) => e,
        other => return Err(unexpected(&other)),
    };
    let url_ok = e.activation_url.starts_with("https://")
        && e.activation_url.len() <= 2048
        && e.activation_url.bytes().all(|b| b.is_ascii_graphic());
    let sent = match target {
        Some(c) if url_ok => Some(send_link(ctx, user, &c, &e.activation_url)?),
        Some(_) => {
            return Err(Error::Failed(format!(
                "Duo's activation link {} is not an https:// link of printable characters: not sent",
                shown(&e.activation_url)
            )));
        }
        None => None,
    };
    if ctx.json {
        return json(&EnrollView {
            user: user.to_string(),
            duo_user,
            user_id: e.user_id,
            activation_code: e.activation_code,
            activation_url: e.activation_url,
            activation_barcode: e.activation_barcode,
            expiration: e.expiration,
            sent,
        });
    }
    println!(
        "Duo user:        {} ({})",
        shown(&e.username),
        shown(&e.user_id)
    );
    println!("activation link: {}", shown(&e.activation_url));
    println!("activation code: {}", shown(&e.activation_code));
    println!("QR code image:   {}", shown(&e.activation_barcode));
    println!("expires:         {}", when::show(e.expiration));
    if let Some(s) = &sent {
        println!("link queued to {} (message {})", visible(&s.to), s.id);
    }
    println!(
        "check it with `mfa-admin duo enroll-status {} {}`; once activated, `mfa-admin user set {user} --duo{}` lets method any offer Duo",
        shown(&e.user_id),
        shown(&e.activation_code),
        if duo_user == user {
            String::new()
        } else {
            format!(" {}", shown(&duo_user))
        }
    );
    Ok(())
}

/// Queues the enrollment link to contact `c` (recorded in the audit log, as `test` is).
fn send_link(ctx: &Ctx, user: &str, c: &people::ContactRow, url: &str) -> Result<SentView> {
    let mut store = ctx.store()?;
    let host = mfa_core::settings::host_name();
    let spool_dir = ctx.config.paths.spool.clone();
    store.change(&ctx.actor(), "duo enroll --send", |tx| {
        let templates = rules::templates(tx)?;
        let msg = template::enrollment_message(
            &templates,
            user,
            &host,
            url,
            Channel::parse(&c.channel)?,
            &c.to,
            &c.masked,
            mfa_core::now(),
        )?;
        spool::enqueue(&spool_dir, &msg)?;
        let detail = format!("{user} #{}: {} ({})", c.seq, c.masked, msg.id);
        Ok((
            SentView {
                id: msg.id,
                to: c.masked.clone(),
            },
            detail,
        ))
    })
}

/// Checks an id or code typed for `enroll-status`.
fn token(what: &str, text: &str) -> Result<String> {
    if text.is_empty() || text.len() > MAX_ID || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(invalid!(
            "invalid {what} {:?}: expected what `mfa-admin duo enroll` printed (1 to {MAX_ID} printable characters)",
            visible(text)
        ));
    }
    Ok(text.to_string())
}

fn enroll_status(ctx: &Ctx, user_id: &str, code: &str) -> Result<()> {
    let req = Request::EnrollStatus {
        user_id: token("user id", user_id)?,
        activation_code: token("activation code", code)?,
    };
    let status = match call(ctx, &req, &mut |_| true)? {
        Reply::EnrollStatus { status } => status,
        other => return Err(unexpected(&other)),
    };
    if ctx.json {
        json(&serde_json::json!({ "status": status }))?;
    } else {
        let meaning = match status.as_str() {
            "success" => "the user activated Duo Mobile",
            "waiting" => "not activated yet",
            "invalid" => "the code is unknown or expired",
            _ => "unknown to this version of mfa",
        };
        println!("{} ({meaning})", shown(&status));
    }
    if status == "invalid" {
        return Err(Error::Failed(
            "the activation code is invalid or expired; `mfa-admin duo enroll` makes a new one"
                .into(),
        ));
    }
    Ok(())
}

#[derive(Serialize)]
struct TestView {
    user: String,
    duo_user: String,
    device: String,
    result: String,
    status: String,
    status_msg: String,
    txid: String,
}

/// `test USER --duo`: preauth, then a push to the first push-capable device; 0 only when
/// it was approved.
pub fn test(ctx: &Ctx, user: &str) -> Result<()> {
    let (duo_user, _) = duo_name(ctx, user)?;
    let p = preauth(ctx, &duo_user)?;
    match p.result.as_str() {
        "auth" => {}
        "allow" => {
            return Err(Error::Failed(format!(
                "no push sent: Duo lets {user} in without a second factor (preauth allow: {})",
                shown(&p.status_msg)
            )));
        }
        "enroll" => {
            return Err(Error::Failed(format!(
                "no push sent: {user} must enrol with Duo first ({}){}; `mfa-admin duo enroll {user}` makes an activation link",
                shown(&p.status_msg),
                p.enroll_portal_url
                    .as_deref()
                    .map(|u| format!(", at {}", shown(u)))
                    .unwrap_or_default()
            )));
        }
        "deny" => {
            return Err(Error::Failed(format!(
                "no push sent: Duo denies {user} ({})",
                shown(&p.status_msg)
            )));
        }
        other => {
            return Err(Error::Failed(format!(
                "no push sent: Duo's preauth said {:?} ({})",
                shown(other),
                shown(&p.status_msg)
            )));
        }
    }
    let Some(device) = p
        .devices
        .iter()
        .find(|d| d.capabilities.iter().any(|c| c == "push"))
    else {
        return Err(Error::Failed(format!(
            "no push sent: none of {user}'s {} Duo device(s) can take a push; `mfa-admin duo preauth {user}` lists them",
            p.devices.len()
        )));
    };
    let name = if device.display_name.is_empty() {
        shown(&device.device)
    } else {
        shown(&device.display_name)
    };
    if !ctx.json {
        eprintln!("pushing to {name} for {user}...");
    }
    let req = Request::Auth {
        username: duo_user.clone(),
        factor: broker::Factor::Push,
        device: Some(device.device.clone()),
        passcode: None,
        ipaddr: None,
        hostname: mfa_core::settings::host_name(),
        pushinfo: vec![("command".into(), "mfa-admin test".into())],
    };
    let json_out = ctx.json;
    let r = match call(ctx, &req, &mut |text| {
        if !json_out {
            eprintln!("Duo: {}", shown(text));
        }
        true
    })? {
        Reply::Auth(r) => r,
        other => return Err(unexpected(&other)),
    };
    let allowed = r.result == "allow";
    if json_out {
        json(&TestView {
            user: user.to_string(),
            duo_user,
            device: device.display_name.clone(),
            result: r.result.clone(),
            status: r.status.clone(),
            status_msg: r.status_msg.clone(),
            txid: r.txid.clone(),
        })?;
    } else if allowed {
        println!(
            "allowed: {} approved the push on {name} (Duo transaction {})",
            user,
            shown(&r.txid)
        );
    }
    if allowed {
        return Ok(());
    }
    let why = match r.status.as_str() {
        "timeout" => "no answer before the timeout",
        "fraud" => "the user reported the push as fraud",
        "deny" => "the user denied the push",
        _ => "denied",
    };
    Err(Error::Failed(format!(
        "{why}: Duo said {} ({}){}",
        shown(&r.status),
        shown(&r.status_msg),
        if r.txid.is_empty() {
            String::new()
        } else {
            format!(", transaction {}", shown(&r.txid))
        }
    )))
}

/// doctor's check: `[duo]` configured → Duo's signed check through the broker. `None`: no
/// `[duo]`, nothing to say. Else (status, detail).
pub fn doctor(ctx: &Ctx) -> Option<(&'static str, String)> {
    ctx.config.duo.as_ref()?;
    if let Some(Err(e)) = ctx.config.duo.as_ref().map(|d| d.timeout_secs()) {
        return Some(("fail", e));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    Some(
        match broker::call(
            &ctx.config.paths.runtime,
            &ctx.config.sender.user,
            &Request::Check,
            deadline,
            &mut |_| true,
        ) {
            Ok(Reply::Time { time }) => (
                "ok",
                format!(
                    "mfa-sender's broker answers and Duo accepted the credentials{}",
                    skew(time)
                ),
            ),
            Ok(other) => ("fail", unexpected(&other).to_string()),
            Err(BrokerError::Unavailable(m)) => (
                "fail",
                format!(
                    "the Duo broker is not running or not answering ({}): method duo follows fail_mode; start mfa-sender",
                    shown(&m)
                ),
            ),
            Err(e @ BrokerError::Duo(ErrorKind::Credentials, _)) => {
                ("fail", format!("credentials refused: {}", explain(ctx, &e)))
            }
            Err(e @ BrokerError::Duo(ErrorKind::Unavailable, _)) => {
                ("fail", format!("Duo unreachable: {}", explain(ctx, &e)))
            }
            Err(e) => ("fail", explain(ctx, &e).to_string()),
        },
    )
}
