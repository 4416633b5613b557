//! Checks of every man page in docs/man, generated or hand-written: each renders without a
//! warning with man(1), its `.TH` and NAME agree with its file name, and each hand-written
//! page documents what the code accepts (pam_mfa's module arguments, mfa-sender's options,
//! every table and key of `mfa.toml`, with mfa-core's defaults).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command as Process;

use super::{roff_escape, workspace};

fn pages() -> Vec<PathBuf> {
    let dir = workspace().join("docs/man");
    let mut pages: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| e.len() == 1 && e.as_bytes()[0].is_ascii_digit())
        })
        .collect();
    pages.sort();
    pages
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(workspace().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The pages the packages install: all present.
#[test]
fn every_page_is_there() {
    let names: BTreeSet<String> = pages()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "pam_mfa.8",
        "mfa-sender.8",
        "mfa-fleetd.8",
        "mfa.toml.5",
        "mfa-admin.8",
    ] {
        assert!(
            names.contains(want),
            "docs/man/{want} is missing: {names:?}"
        );
    }
}

/// `man --warnings` renders each page with no diagnostic at all, as the issue asks.
#[test]
fn man_pages_render_without_warnings() {
    if Process::new("man").arg("--version").output().is_err() {
        eprintln!(
            "SKIPPED man_pages_render_without_warnings: man(1) is missing \
             (apt-get install man-db groff-base)"
        );
        return;
    }
    for page in pages() {
        let (ok, stderr, rendered) = man_warnings(&page);
        assert!(
            ok && stderr.is_empty(),
            "{}: man --warnings failed or warned:\n{stderr}",
            page.display()
        );
        assert!(
            rendered > 500,
            "{}: rendered to almost nothing",
            page.display()
        );
    }
}

/// Runs the command on `page`: (exit status 0, stderr, bytes rendered).
fn man_warnings(page: &Path) -> (bool, String, usize) {
    let out = Process::new("man")
        .args(["--warnings", "-E", "UTF-8", "-l"])
        .arg(page)
        .env("LC_ALL", "C.UTF-8")
        .env("MANROFFSEQ", "")
        .env("MANWIDTH", "80")
        .env("MANPAGER", "cat")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.stdout.len(),
    )
}

/// The render check fails on what it is there to catch: an unknown macro, a bad escape,
/// an undefined string, a broken motion, and bytes that are not UTF-8. (man exits 0 on a
/// warning: stderr is what tells.)
#[test]
fn the_render_check_catches_broken_pages() {
    if Process::new("man").arg("--version").output().is_err() {
        eprintln!("SKIPPED the_render_check_catches_broken_pages: man(1) is missing");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let good = ".TH X 8\n.SH NAME\nx \\- y\n";
    for (i, bad) in [
        ".NOSUCHMACRO x\n",
        "an undefined string \\*[nosuchstring]\n",
        "a motion without its argument x\\h\n",
        "an unknown escape \\[nosuchglyph]\n",
    ]
    .into_iter()
    .enumerate()
    {
        let path = dir.path().join(format!("bad{i}.8"));
        std::fs::write(&path, format!("{good}.SH DESCRIPTION\n{bad}")).unwrap();
        let (ok, stderr, _) = man_warnings(&path);
        assert!(!ok || !stderr.is_empty(), "no warning for {bad:?}");
    }
    let path = dir.path().join("good.8");
    std::fs::write(&path, format!("{good}.SH DESCRIPTION\nfine\n")).unwrap();
    let (ok, stderr, _) = man_warnings(&path);
    assert!(ok && stderr.is_empty(), "a good page warned: {stderr}");
}

/// `.TH` names the page as its file does, in upper case, with the file's section; NAME
/// starts with the page's name and ` \- ` (what whatis and lexgrog read); the parts every
/// page has are there.
#[test]
fn titles_and_names_match_the_files() {
    for page in pages() {
        let file = page.file_name().unwrap().to_string_lossy().into_owned();
        let (name, section) = file.rsplit_once('.').unwrap();
        let text = std::fs::read_to_string(&page).unwrap();
        // man -E UTF-8 recodes other bytes silently: anything beyond ASCII is a roff escape.
        assert!(
            text.is_ascii(),
            "{file}: not ASCII; write \\(em, \\(bu, ... instead"
        );
        let th = text
            .lines()
            .find(|l| l.starts_with(".TH "))
            .unwrap_or_else(|| panic!("{file}: no .TH line"));
        let mut fields = th[4..].split_whitespace();
        let title = fields.next().unwrap().trim_matches('"').replace("\\-", "-");
        let sect = fields.next().unwrap_or_default().trim_matches('"');
        assert_eq!(title, name.to_uppercase(), "{file}: {th}");
        assert_eq!(sect, section, "{file}: {th}");
        let lines: Vec<&str> = text.lines().collect();
        let at = lines
            .iter()
            .position(|l| *l == ".SH NAME")
            .unwrap_or_else(|| panic!("{file}: no .SH NAME"));
        let want = format!("{} \\- ", roff_escape(name));
        assert!(
            lines[at + 1].starts_with(&want),
            "{file}: the NAME line must start with {want:?}: {:?}",
            lines[at + 1]
        );
        // lexgrog (man-db) reads NAME as mandb and whatis will.
        if let Ok(out) = Process::new("lexgrog").arg(&page).output() {
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && said.contains(&format!("\"{name} - ")),
                "{file}: lexgrog: {said}"
            );
        }
        for sh in [".SH SYNOPSIS", ".SH DESCRIPTION", ".SH SEE ALSO"] {
            assert!(lines.contains(&sh), "{file}: no {sh}");
        }
    }
}

/// The text of a section (`.SH TITLE` up to the next `.SH`).
fn section<'a>(page: &'a str, title: &str) -> &'a str {
    let head = format!(".SH {title}\n");
    let at = page
        .find(&head)
        .unwrap_or_else(|| panic!("no section {title}"));
    let rest = &page[at + head.len()..];
    &rest[..rest.find("\n.SH ").map_or(rest.len(), |i| i + 1)]
}

/// String literals in `source` that follow `marker` (`Some(("` gives the `key` of each
/// `Some(("key", ...))` match arm).
fn literals_after(source: &str, marker: &str) -> BTreeSet<String> {
    source
        .match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = &source[i + marker.len()..];
            rest.find('"').map(|end| rest[..end].to_string())
        })
        .collect()
}

/// The module arguments pam_mfa parses, read from its parser (pam_mfa/src/args.rs has no
/// list of them, only the match arms `Some(("key", value))` and `text == "flag"`): each is
/// in OPTIONS of pam_mfa(8), and so is each fixed value (`fail_mode=secure|safe`).
#[test]
fn pam_mfa_page_documents_every_module_argument() {
    let parser = include_str!("../../../pam_mfa/src/args.rs");
    let keys = literals_after(parser, "Some((\"");
    let flags = literals_after(parser, "text == \"");
    let values: BTreeSet<String> = literals_after(parser, "\", \"")
        .into_iter()
        .filter(|v| !v.is_empty())
        .collect();
    assert!(
        keys.contains("config") && keys.contains("fail_mode") && flags.contains("debug"),
        "the argument parser changed shape: keys {keys:?}, flags {flags:?}; \
         update literals_after's markers"
    );
    let page = read("docs/man/pam_mfa.8");
    let options = section(&page, "OPTIONS");
    for key in &keys {
        let shown = format!(".BI {}= ", roff_escape(key));
        assert!(
            options.contains(&shown),
            "pam_mfa.8 OPTIONS does not document {key}= (want a `{shown}...` line)"
        );
    }
    for flag in &flags {
        assert!(
            options.contains(&format!(".B {}\n", roff_escape(flag))),
            "pam_mfa.8 OPTIONS does not document {flag}"
        );
    }
    for value in &values {
        assert!(
            options.contains(&format!("\\fB{}\\fR", roff_escape(value))),
            "pam_mfa.8 OPTIONS does not document the value {value}"
        );
    }
}

/// Every option mfa-sender's command line accepts (the `"--name"` literals of its parser) is
/// in OPTIONS of mfa-sender(8).
#[test]
fn mfa_sender_page_documents_every_option() {
    let main = include_str!("../../../mfa-sender/src/main.rs");
    let options = literals_after(main, "\"--");
    assert!(
        options.contains("config") && options.contains("check"),
        "{options:?}"
    );
    let page = read("docs/man/mfa-sender.8");
    let documented = section(&page, "OPTIONS");
    for opt in options {
        let shown = format!("\\-\\-{}", roff_escape(&opt));
        assert!(
            documented
                .lines()
                .any(|l| l.starts_with(".B") && l.contains(&shown)),
            "mfa-sender.8 OPTIONS does not document --{opt}"
        );
    }
}

/// Every table and key of `mfa.toml` (a configuration with every optional part present,
/// serialized by mfa-core itself) is documented in mfa.toml(5) under its own table, and no
/// key is documented that mfa-core would refuse.
#[test]
fn mfa_toml_page_documents_every_key() {
    use mfa_core::config::{Config, Duo, DuoSignature, Sms, SmsProvider, Smtp, SmtpTls};
    use mfa_core::store_config::{Backend, StoreConfig};
    // Struct literals: a key added to mfa-core stops this from compiling until it is here.
    let full = Config {
        smtp: Some(Smtp {
            host: "h".into(),
            port: 25,
            tls: SmtpTls::Starttls,
            ca_file: Some("/c".into()),
            username: Some("u".into()),
            password_file: Some("/p".into()),
            from: "f@x".into(),
            timeout: "10s".into(),
        }),
        sms: Some(Sms {
            provider: SmsProvider::Twilio,
            account_sid: Some("a".into()),
            auth_token_file: Some("/t".into()),
            from: Some("+1".into()),
            messaging_service_sid: Some("m".into()),
            customer_id: Some("c".into()),
            api_key_file: Some("/k".into()),
            base_url: Some("http://b".into()),
            timeout: "10s".into(),
        }),
        duo: Some(Duo {
            host: "api-x.duosecurity.com".into(),
            ikey: "DI".into(),
            skey_file: "/s".into(),
            timeout: "60s".into(),
            ca_file: Some("/c".into()),
            signature: DuoSignature::Sha512,
            autopush: false,
        }),
        store: StoreConfig {
            backend: Backend::Postgres,
            url: Some("postgresql://mfa@db/mfa".into()),
            password_file: Some("/p".into()),
            ca_file: Some("/c".into()),
            host: Some("h".into()),
            poll: "5s".into(),
        },
        ..Config::default()
    };
    let value = toml::Value::try_from(&full).unwrap();
    let tables = value.as_table().unwrap();
    let page = read("docs/man/mfa.toml.5");
    let mut documented_tables = BTreeSet::new();
    for (table, keys) in tables {
        let heading = format!(".SS \"[{table}]\"\n");
        let at = page
            .find(&heading)
            .unwrap_or_else(|| panic!("mfa.toml.5 has no `{heading}` subsection"));
        let rest = &page[at + heading.len()..];
        let body = &rest[..rest.find("\n.S").map_or(rest.len(), |i| i + 1)];
        let keys = keys.as_table().unwrap();
        let want: BTreeSet<String> = keys.keys().cloned().collect();
        // A key is the `.B key` tag of a `.TP` paragraph.
        let lines: Vec<&str> = body.lines().collect();
        let found: BTreeSet<String> = lines
            .windows(2)
            .filter(|w| w[0] == ".TP")
            .filter_map(|w| w[1].strip_prefix(".B "))
            .map(|k| k.replace("\\-", "-").replace("\\(ul", "_"))
            .collect();
        assert_eq!(
            found, want,
            "mfa.toml.5 [{table}]: documented keys (left) differ from mfa-core's (right)"
        );
        documented_tables.insert(table.clone());
    }
    // And every documented table is one mfa-core reads.
    for line in page.lines() {
        if let Some(t) = line.strip_prefix(".SS \"[") {
            let t = t.trim_end_matches("]\"");
            assert!(documented_tables.contains(t), "mfa.toml.5 documents [{t}]");
        }
    }
    // The defaults the page states are mfa-core's.
    let d = Config::default();
    for (what, default) in [
        ("database", d.paths.database.display().to_string()),
        ("spool", d.paths.spool.display().to_string()),
        ("runtime", d.paths.runtime.display().to_string()),
        ("user", d.sender.user.clone()),
        ("workers", d.sender.workers.to_string()),
        ("destination_limit", d.sender.destination_limit.to_string()),
        ("destination_window", d.sender.destination_window.clone()),
        ("hourly_limit", d.sender.hourly_limit.to_string()),
    ] {
        let key = format!(".TP\n.B {what}\n");
        let at = page.find(&key).unwrap_or_else(|| panic!("no key {what}"));
        let next = page[at + key.len()..]
            .find(".TP")
            .unwrap_or(page.len() - at - key.len());
        let body = &page[at..at + key.len() + next];
        assert!(
            body.contains(&format!("Default: \\fB{}\\fR", roff_escape(&default)))
                || body.contains(&format!("Default: \\fB\"{}\"\\fR", roff_escape(&default))),
            "mfa.toml.5: the default of {what} is {default:?}, which its entry does not say"
        );
    }
}
