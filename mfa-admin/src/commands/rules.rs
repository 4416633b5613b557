//! `settings`, `service` and `template`: the global rules.

use std::collections::BTreeMap;

use mfa_core::settings::{SPECS, host_name, spec};
use mfa_core::store::rules as q;
use mfa_core::{Error, Result, invalid, template, validate};
use serde::Serialize;

use super::Ctx;
use crate::cli::{ServiceCmd, SettingsCmd, TemplateCmd};
use crate::output::{json, table};
use crate::pam_files as pam;

#[derive(Serialize)]
struct SettingView {
    key: &'static str,
    value: String,
    default: String,
    accepted: String,
    about: &'static str,
}

pub fn settings(ctx: &Ctx, cmd: SettingsCmd) -> Result<()> {
    match cmd {
        SettingsCmd::Show => {
            let store = ctx.store()?;
            let stored = q::stored_settings(store.conn())?;
            let views: Vec<SettingView> = SPECS
                .iter()
                .map(|s| {
                    let default = if s.default.is_empty() {
                        host_name()
                    } else {
                        s.default.to_string()
                    };
                    SettingView {
                        key: s.key,
                        value: stored
                            .get(s.key)
                            .cloned()
                            .unwrap_or_else(|| default.clone()),
                        default,
                        accepted: s.accepted(),
                        about: s.about,
                    }
                })
                .collect();
            if ctx.json {
                return json(&views);
            }
            let rows = views
                .iter()
                .map(|v| {
                    vec![
                        v.key.to_string(),
                        v.value.clone(),
                        v.default.clone(),
                        v.about.to_string(),
                    ]
                })
                .collect();
            table(&["KEY", "VALUE", "DEFAULT", "ABOUT"], rows, "");
            Ok(())
        }
        SettingsCmd::Set { pairs } => {
            let mut changes = BTreeMap::new();
            let mut errors = Vec::new();
            for pair in &pairs {
                let Some((k, v)) = pair.split_once('=') else {
                    errors.push(format!(
                        "invalid argument {pair:?}: expected KEY=VALUE such as enabled=on"
                    ));
                    continue;
                };
                let k = k.trim();
                match spec(k).and_then(|s| s.normalize(v)) {
                    Ok(v) => {
                        if changes.insert(k.to_string(), v).is_some() {
                            errors.push(format!("setting {k} is given twice"));
                        }
                    }
                    Err(e) => errors.push(e.to_string()),
                }
            }
            match errors.len() {
                0 => {}
                1 => return Err(Error::Invalid(format!("{}; nothing changed", errors[0]))),
                _ => {
                    return Err(Error::Invalid(format!(
                        "nothing changed:\n  {}",
                        errors.join("\n  ")
                    )));
                }
            }
            let detail = changes
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ");
            let mut store = ctx.store()?;
            let before = store.change(&ctx.actor(), "settings set", |tx| {
                let before = q::stored_settings(tx)?;
                for (k, v) in &changes {
                    q::set_setting(tx, k, v)?;
                }
                Ok((before, detail))
            })?;
            for (k, v) in &changes {
                let old = before
                    .get(k)
                    .cloned()
                    .unwrap_or_else(|| spec(k).map(|s| s.default.to_string()).unwrap_or_default());
                println!(
                    "{k} = {v} (was {})",
                    if old.is_empty() { "the default" } else { &old }
                );
            }
            Ok(())
        }
        SettingsCmd::Reset { keys } => {
            for k in &keys {
                spec(k)?;
            }
            let mut store = ctx.store()?;
            store.change(&ctx.actor(), "settings reset", |tx| {
                for k in &keys {
                    q::reset_setting(tx, k)?;
                }
                Ok(((), keys.join(" ")))
            })?;
            for k in &keys {
                println!("{k} reset to its default");
            }
            Ok(())
        }
    }
}

/// One line of `service list`: a rule, and the PAM services of this machine that have no
/// rule of their own and so follow it (`su` governs `su-l`; `*` every other service).
#[derive(Serialize)]
struct ServiceView {
    service: String,
    method: String,
    also_governs: Vec<String>,
}

pub fn service(ctx: &Ctx, cmd: ServiceCmd) -> Result<()> {
    match cmd {
        ServiceCmd::List => {
            let store = ctx.store()?;
            let rules = q::services(store.conn())?;
            let followers = pam::followers(&store, &pam::dir())?;
            let views: Vec<ServiceView> = rules
                .into_iter()
                .map(|s| ServiceView {
                    also_governs: followers.get(&s.service).cloned().unwrap_or_default(),
                    service: s.service,
                    method: s.method,
                })
                .collect();
            if ctx.json {
                return json(&views);
            }
            let rows = views
                .into_iter()
                .map(|v| {
                    let also = if v.service == validate::ANY_SERVICE {
                        "every other service".to_string()
                    } else if v.also_governs.is_empty() {
                        "-".to_string()
                    } else {
                        v.also_governs.join(", ")
                    };
                    vec![v.service, v.method, also]
                })
                .collect();
            table(
                &["SERVICE", "METHOD", "ALSO GOVERNS"],
                rows,
                "no service rules",
            );
            Ok(())
        }
        ServiceCmd::Set { name, method } => {
            let name = validate::service(&name)?;
            let method = validate::method(&method)?;
            let mut store = ctx.store()?;
            let (old, from) = store.change(&ctx.actor(), "service set", |tx| {
                let old = q::method_for(tx, &name)?;
                let from = q::governing(tx, &name)?;
                q::set_service(tx, &name, &method)?;
                Ok(((old, from), format!("{name}: {method}")))
            })?;
            let was = if from == name {
                old
            } else {
                format!("{old}, from {from}")
            };
            println!("service {name}: {method} (was {was})");
            if name != validate::ANY_SERVICE {
                let dir = pam::dir();
                match pam::followers(&store, &dir)?.get(&name) {
                    Some(also) if !also.is_empty() => {
                        println!(
                            "it also governs {}, which {} no rule of {} own",
                            also.join(", "),
                            if also.len() == 1 { "has" } else { "have" },
                            if also.len() == 1 { "its" } else { "their" },
                        )
                    }
                    _ => {}
                }
                pam::warn_unknown(&name, &dir);
            }
            Ok(())
        }
        ServiceCmd::Del { name } => {
            let name = validate::service(&name)?;
            let mut store = ctx.store()?;
            let (now, from) = store.change(&ctx.actor(), "service del", |tx| {
                q::delete_service(tx, &name)?;
                let now = (q::method_for(tx, &name)?, q::governing(tx, &name)?);
                Ok((now, name.clone()))
            })?;
            if from == name {
                println!("service {name}: rule removed; '*' applies ({now})");
            } else {
                println!("service {name}: rule removed; it follows {from} ({now})");
            }
            Ok(())
        }
    }
}

pub fn template(ctx: &Ctx, cmd: TemplateCmd) -> Result<()> {
    match cmd {
        TemplateCmd::Show { name } => {
            if let Some(n) = &name {
                template::default_text(n)?;
            }
            let all = q::templates(ctx.store()?.conn())?;
            let shown: Vec<_> = all
                .into_iter()
                .filter(|t| name.as_ref().is_none_or(|n| *n == t.name))
                .collect();
            if ctx.json {
                return json(&shown);
            }
            for t in shown {
                let mark = if t.default { " (default)" } else { "" };
                println!("{}{mark}:\n  {}\n", t.name, t.text.replace('\n', "\n  "));
            }
            Ok(())
        }
        TemplateCmd::Set { name, text } => {
            template::validate(&name, &text)?;
            let mut store = ctx.store()?;
            store.change(&ctx.actor(), "template set", |tx| {
                q::set_template(tx, &name, &text)?;
                Ok(((), format!("{name}: {text}")))
            })?;
            println!("template {name} set");
            Ok(())
        }
        TemplateCmd::Reset { name } => {
            let default = template::default_text(&name)?;
            let mut store = ctx.store()?;
            store.change(&ctx.actor(), "template reset", |tx| {
                q::set_template(tx, &name, default)?;
                Ok(((), name.clone()))
            })?;
            println!("template {name} reset to its default");
            Ok(())
        }
    }
}

/// Parses a log-level option that may also be `default` (None).
pub fn log_level_or_default(text: &str) -> Result<Option<String>> {
    match text {
        "default" => Ok(None),
        t => mfa_core::settings::LogLevel::parse(t)
            .map(|l| Some(l.as_str().to_string()))
            .map_err(|_| invalid!("invalid log level {t:?}: expected all|rejects|none|default")),
    }
}
