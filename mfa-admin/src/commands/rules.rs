//! `settings`, `service` and `template`: the global rules.

use std::collections::BTreeMap;

use mfa_core::settings::{SPECS, host_name, spec};
use mfa_core::store::rules as q;
use mfa_core::{Error, Result, invalid, template, validate};
use serde::Serialize;

use super::Ctx;
use crate::cli::{ServiceCmd, SettingsCmd, TemplateCmd};
use crate::output::{json, table};

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

pub fn service(ctx: &Ctx, cmd: ServiceCmd) -> Result<()> {
    match cmd {
        ServiceCmd::List => {
            let rows = q::services(ctx.store()?.conn())?;
            if ctx.json {
                return json(&rows);
            }
            let rows = rows
                .into_iter()
                .map(|s| vec![s.service, s.method])
                .collect();
            table(&["SERVICE", "METHOD"], rows, "no service rules");
            Ok(())
        }
        ServiceCmd::Set { name, method } => {
            let name = validate::service(&name)?;
            let method = validate::method(&method)?;
            let mut store = ctx.store()?;
            let old = store.change(&ctx.actor(), "service set", |tx| {
                let old = q::method_for(tx, &name)?;
                q::set_service(tx, &name, &method)?;
                Ok((old, format!("{name}: {method}")))
            })?;
            println!("service {name}: {method} (was {old})");
            Ok(())
        }
        ServiceCmd::Del { name } => {
            let name = validate::service(&name)?;
            let mut store = ctx.store()?;
            let now = store.change(&ctx.actor(), "service del", |tx| {
                q::delete_service(tx, &name)?;
                Ok((q::method_for(tx, &name)?, name.clone()))
            })?;
            println!("service {name}: rule removed; '*' applies ({now})");
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
