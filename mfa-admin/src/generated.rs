//! What is generated from the CLI definition (`cli::Cli`), and the checks of every man page.
//!
//! - `docs/man/mfa-admin.8`, one page that documents every (nested) command: the top level by
//!   clap_mangen's section renderers, then a COMMANDS section with, per command, its
//!   synopsis, description and options (clap_mangen again, one command at a time).
//! - `etc/completions/{mfa-admin.bash,_mfa-admin,mfa-admin.fish}` by clap_complete.
//!
//! The tests render each artefact in memory and compare it with the committed file, so the
//! page and completions cannot drift from `cli.rs`; with `MFA_REGENERATE=1` they write the
//! files instead (`make generated`). The hand-written pages (pam_mfa.8, mfa-sender.8,
//! mfa.toml.5) are checked too (`pages`): every page renders without a warning with man(1), its `.TH`
//! and NAME agree with its file name, and each documents what the code accepts (the
//! module's arguments, the sender's options, every key of `mfa.toml`).
//!
//! A unit-test module: clap_mangen and clap_complete are dev-dependencies and never part of
//! the binary.

use std::path::{Path, PathBuf};
use std::process::Command as Process;

use clap::{Command, CommandFactory};
use clap_complete::Shell;
use clap_mangen::Man;

use crate::cli::Cli;

mod pages;

/// The top of the workspace.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("mfa-admin lives in the workspace")
        .to_path_buf()
}

fn regenerating() -> bool {
    std::env::var_os("MFA_REGENERATE").is_some_and(|v| v == "1")
}

/// Compares `content` with the committed file at `rel` (relative to the workspace), or
/// writes it (atomically: the render check may read it at the same time) when regenerating.
fn check_or_write(rel: &str, content: &[u8]) {
    let path = workspace().join(rel);
    if regenerating() {
        let name = path.file_name().expect("a file name").to_string_lossy();
        let tmp = path.with_file_name(format!(".{name}.regenerating"));
        std::fs::create_dir_all(path.parent().expect("a file in a directory")).unwrap();
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        eprintln!("wrote {}", path.display());
        return;
    }
    if let Some(message) = stale(rel, std::fs::read(&path).ok().as_deref(), content) {
        panic!("{message}");
    }
}

/// Why the committed file (None: missing) is not `content`, naming the file and the fix.
fn stale(rel: &str, committed: Option<&[u8]>, content: &[u8]) -> Option<String> {
    let Some(committed) = committed else {
        return Some(format!(
            "{rel} is missing: it is generated from mfa-admin/src/cli.rs; \
             run `make generated` and commit the result"
        ));
    };
    if committed == content {
        return None;
    }
    let old: Vec<&[u8]> = committed.split(|&b| b == b'\n').collect();
    let new: Vec<&[u8]> = content.split(|&b| b == b'\n').collect();
    let line = old
        .iter()
        .zip(&new)
        .position(|(a, b)| a != b)
        .unwrap_or(old.len().min(new.len()))
        + 1;
    Some(format!(
        "{rel} is stale: it differs from what mfa-admin/src/cli.rs generates (from line \
         {line}); run `make generated` and commit the result"
    ))
}

/// The stale-file check can fail, and says which file and what to run.
#[test]
fn stale_files_are_named_with_the_fix() {
    let page = man_page();
    assert_eq!(
        stale(
            "docs/man/mfa-admin.8",
            Some(page.as_bytes()),
            page.as_bytes()
        ),
        None
    );
    let edited = page
        .replacen("Manage", "Manages", 1)
        .replacen("\n.SS ", "\n.SS x", 1);
    let message = stale(
        "docs/man/mfa-admin.8",
        Some(edited.as_bytes()),
        page.as_bytes(),
    )
    .expect("an edited page is stale");
    assert!(
        message.starts_with("docs/man/mfa-admin.8 is stale")
            && message.contains("run `make generated`"),
        "{message}"
    );
    let truncated = &page.as_bytes()[..page.len() / 2];
    assert!(stale("p", Some(truncated), page.as_bytes()).is_some());
    assert!(stale("p", Some(page.as_bytes()), truncated).is_some());
    let missing = stale("etc/completions/_mfa-admin", None, b"x").unwrap();
    assert!(
        missing.contains("_mfa-admin is missing") && missing.contains("make generated"),
        "{missing}"
    );
    // Hostile bytes: not UTF-8, NULs, no newline at all.
    assert!(stale("p", Some(b"\xff\x00\xfe"), page.as_bytes()).is_some());
    assert!(stale("p", Some(b""), b"").is_none());
}

// ---------------------------------------------------------------------------------------
// mfa-admin(8)

/// The static parts of the page: what the clap definition cannot say.
const PAGE_HEAD: &str = r#".SH DESCRIPTION
.B mfa\-admin
manages who must prove a second factor, where and how: the global settings, the method of
each PAM service, trusted networks, users, their contacts and authenticator keys,
per\-user overrides, carriers, message templates, the authentication log, the audit log
and the delivery queue, and it diagnoses an installation
.RB ( "mfa\-admin doctor" ).
.PP
Rules live in the database (\fIpaths.database\fR of
.BR mfa.toml (5))
and change only through
.BR mfa\-admin .
Each change rewrites the policy snapshot that
.BR pam_mfa (8)
reads, so it applies from the next login on, and is written to the audit log
.RB ( "mfa\-admin audit show" ).
Most commands need root: the database is readable by root only.
.PP
Values are checked before anything changes; a refused value is named in the message
together with the form it must have.
.B "mfa\-admin export"
and
.B "mfa\-admin import"
give configuration management one declarative TOML document of every rule.
.PP
Every command takes the global options below;
.B \-h
(or
.BR "mfa\-admin help " \fIcommand\fR)
prints the help of any command.
"#;

const PAGE_TAIL: &str = r#".SH EXIT STATUS
.TP
.B 0
Done.
.TP
.B 1
The system failed: an I/O or database error, or a file with unsafe ownership or mode.
.TP
.B 2
Bad input (an unknown command or option, a malformed value); the message names what was
wrong and the accepted form, and nothing was changed.
.SH ENVIRONMENT
.TP
.B MFA_CONFIG
The configuration file used when
.B \-\-config
is not given.
.SH FILES
.TP
.I /etc/mfa/mfa.toml
The configuration: where the database, spool and runtime directory are, and the sender's
transports; see
.BR mfa.toml (5).
.TP
.I /var/lib/mfa/mfa.db
The rules database (default \fIpaths.database\fR), with its snapshot and login state beside
it; root only.
.TP
.I /var/spool/mfa
The message spool that
.BR pam_mfa (8)
writes and
.BR mfa\-sender (8)
drains
.RB ( "mfa\-admin queue" ).
.TP
.I /run/mfa
The sender's heartbeat and status
.RB ( "mfa\-admin sender status" ).
.SH SEE ALSO
.BR pam_mfa (8),
.BR mfa\-sender (8),
.BR mfa.toml (5),
.BR pam.conf (5),
.BR pam\-auth\-update (8)
"#;

/// What the `roff` crate writes before every rendering (it defines the `Aq` string that its
/// apostrophes use); the page carries it once, at the top.
const ROFF_PREAMBLE: &str = ".ie \\n(.g .ds Aq \\(aq\n.el .ds Aq '\n";

/// Runs one of clap_mangen's section renderers and takes off the `roff` preamble.
fn render(man: &Man, renderer: fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>) -> String {
    let mut out = Vec::new();
    renderer(man, &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    match text.strip_prefix(ROFF_PREAMBLE) {
        Some(body) => body.to_string(),
        None => {
            assert!(
                !text.contains(".ds Aq"),
                "the roff preamble changed: {text:?}"
            );
            text
        }
    }
}

/// Renders one clap_mangen section of `cmd` and takes off its `.SH` heading line, which
/// must be `heading` (the COMMANDS section puts the parts under headings of its own).
fn section_body(
    cmd: &Command,
    heading: &str,
    renderer: fn(&Man, &mut dyn std::io::Write) -> std::io::Result<()>,
) -> String {
    let text = render(&Man::new(cmd.clone()), renderer);
    let want = format!(".SH {heading}\n");
    let body = text.strip_prefix(&want).unwrap_or_else(|| {
        panic!("clap_mangen rendered {heading} without its `{want}` heading: {text:?}")
    });
    body.to_string()
}

/// The command as the COMMANDS section shows it: the global options and the help flag are
/// documented once, at the top, so they are hidden here.
fn local(cmd: &Command) -> Command {
    let shared: Vec<String> = cmd
        .get_arguments()
        .filter(|a| a.is_global_set() || a.get_id() == "help")
        .map(|a| a.get_id().to_string())
        .collect();
    shared
        .into_iter()
        .fold(cmd.clone(), |c, id| c.mut_arg(id, |a| a.hide(true)))
}

/// One `.SS` per command, depth first, in the order of `cli.rs`.
fn commands(cmd: &Command, out: &mut String) {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        if sub.get_name() == "help" {
            continue;
        }
        let sub = local(sub);
        let name = sub.get_bin_name().expect("bin names are set by build()");
        out.push_str(&format!(".SS \"{}\"\n", roff_escape(name)));
        out.push_str(&section_body(
            &sub,
            "DESCRIPTION",
            Man::render_description_section,
        ));
        out.push_str(".PP\n");
        out.push_str(&section_body(
            &sub,
            "SYNOPSIS",
            Man::render_synopsis_section,
        ));
        if sub.get_arguments().any(|a| !a.is_hide_set()) {
            out.push_str(&section_body(&sub, "OPTIONS", Man::render_options_section));
        }
        if sub.has_subcommands() {
            let names: Vec<&str> = sub
                .get_subcommands()
                .map(Command::get_name)
                .filter(|n| *n != "help")
                .collect();
            out.push_str(".PP\nCommands: ");
            out.push_str(&roff_escape(&names.join(", ")));
            out.push_str(".\n");
            commands(&sub, out);
        }
    }
}

fn roff_escape(text: &str) -> String {
    text.replace('\\', "\\\\").replace('-', "\\-")
}

/// `<command>` rather than clap_mangen's `<subcommands>` in every synopsis.
fn named_placeholders(cmd: Command) -> Command {
    let names: Vec<String> = cmd
        .get_subcommands()
        .map(|s| s.get_name().to_string())
        .collect();
    let cmd = names
        .into_iter()
        .fold(cmd, |c, n| c.mut_subcommand(n, named_placeholders));
    if cmd.has_subcommands() {
        cmd.subcommand_value_name("command")
    } else {
        cmd
    }
}

/// The whole of mfa-admin(8).
pub(crate) fn man_page() -> String {
    let mut root = named_placeholders(Cli::command());
    // NAME says "mfa-admin \- <about>": the crate's description starts with the name itself.
    let about = root.get_about().map(|a| a.to_string()).unwrap_or_default();
    let about = about
        .strip_prefix("mfa-admin: ")
        .unwrap_or(&about)
        .trim_end_matches('.')
        .to_string();
    root = root.about(about);
    root.build();
    let man = Man::new(root.clone())
        .title("MFA-ADMIN")
        .section("8")
        .source(format!("mfa {}", env!("CARGO_PKG_VERSION")))
        .manual("System Administration");
    let mut page = String::from(ROFF_PREAMBLE);
    for renderer in [
        Man::render_title,
        Man::render_name_section,
        Man::render_synopsis_section,
    ] {
        page.push_str(&render(&man, renderer));
    }
    page.push_str(PAGE_HEAD);
    page.push_str(&render(&man, Man::render_options_section));
    page.push_str(".SH COMMANDS\n");
    commands(&root, &mut page);
    page.push_str(PAGE_TAIL);
    page
}

fn completion(shell: Shell) -> Vec<u8> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "mfa-admin", &mut out);
    if shell == Shell::Bash {
        // clap_complete 4.6's bash script names the per-command cases of a hyphenated binary
        // `mfa__subcmd__admin__...` but steps into them as `mfa__admin__...`: no subcommand
        // completed anything. One name for both (bash_completes_nested_commands checks it).
        let text = String::from_utf8(out).unwrap();
        return text
            .replace("mfa__subcmd__admin", "mfa__admin")
            .into_bytes();
    }
    out
}

/// Completes `words` (the last one being completed) with the committed bash script, as
/// bash's programmable completion calls it.
fn bash_complete(words: &[&str]) -> Vec<String> {
    let script = workspace().join("etc/completions/mfa-admin.bash");
    let quoted: Vec<String> = words.iter().map(|w| format!("'{w}'")).collect();
    let line = format!(
        "source '{}'; COMP_WORDS=({}); COMP_CWORD={}; _mfa__admin mfa-admin '{}' '{}'; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display(),
        quoted.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Process::new("bash")
        .args(["--norc", "-c", &line])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(String::from)
        .collect()
}

/// The committed bash completions complete commands, nested commands and their options.
#[test]
fn bash_completes_nested_commands() {
    if regenerating() {
        return;
    }
    let top = bash_complete(&["mfa-admin", "ne"]);
    assert_eq!(top, ["net"]);
    let net = bash_complete(&["mfa-admin", "net", ""]);
    for want in ["add", "check", "del", "list"] {
        assert!(net.iter().any(|w| w == want), "net: {net:?}");
    }
    let add = bash_complete(&["mfa-admin", "net", "add", "--"]);
    for want in ["--cidr", "--range", "--require", "--service", "--config"] {
        assert!(add.iter().any(|w| w == want), "net add: {add:?}");
    }
    let show = bash_complete(&["mfa-admin", "log", "show", "--out"]);
    assert_eq!(show, ["--outcome"]);
    // An unknown word is not a command: no option of one is offered.
    let unknown = bash_complete(&["mfa-admin", "no-such-command", "--"]);
    assert!(!unknown.iter().any(|w| w == "--cidr"), "{unknown:?}");
}

/// The completions, with the file each shell loads (Debian installs them as
/// /usr/share/bash-completion/completions/mfa-admin,
/// /usr/share/zsh/vendor-completions/_mfa-admin and
/// /usr/share/fish/vendor_completions.d/mfa-admin.fish).
const COMPLETIONS: [(Shell, &str); 3] = [
    (Shell::Bash, "etc/completions/mfa-admin.bash"),
    (Shell::Zsh, "etc/completions/_mfa-admin"),
    (Shell::Fish, "etc/completions/mfa-admin.fish"),
];

#[test]
fn man_page_is_current() {
    check_or_write("docs/man/mfa-admin.8", man_page().as_bytes());
}

#[test]
fn completions_are_current() {
    for (shell, rel) in COMPLETIONS {
        check_or_write(rel, &completion(shell));
    }
}

/// Every command and every option of the definition is on the page, under its full name:
/// the page is not only the top-level list.
#[test]
fn man_page_documents_every_command_and_option() {
    fn walk(cmd: &Command, page: &str, seen: &mut usize) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = sub.get_bin_name().unwrap();
            let heading = format!(".SS \"{}\"\n", roff_escape(name));
            let at = page
                .find(&heading)
                .unwrap_or_else(|| panic!("no section for `{name}`"));
            let end = page[at + heading.len()..]
                .find(".SS ")
                .map_or(page.len(), |i| at + heading.len() + i);
            let section = &page[at..end];
            for arg in sub.get_arguments() {
                if arg.is_global_set() || arg.get_id() == "help" {
                    continue;
                }
                let shown = match arg.get_long() {
                    Some(long) => format!("\\fB\\-\\-{}", roff_escape(long)),
                    None => roff_escape(
                        &arg.get_value_names()
                            .map_or_else(|| arg.get_id().as_str().to_uppercase(), |v| v.join(" ")),
                    ),
                };
                assert!(
                    section.contains(&shown),
                    "`{name}`: argument {} is not in its section:\n{section}",
                    arg.get_id()
                );
            }
            *seen += 1;
            walk(sub, page, seen);
        }
    }
    let page = man_page();
    let mut root = Cli::command();
    root.build();
    let mut seen = 0;
    walk(&root, &page, &mut seen);
    // Top-level commands alone are more than 20: nested ones must be there as well.
    assert!(seen > 50, "only {seen} commands documented");
    for global in ["\\-\\-config", "\\-\\-json"] {
        assert!(page.contains(global), "global option {global} missing");
    }
}

/// Whether `shell` can be run; a test that needs it says so and skips when not.
fn have(shell: &str, test: &str) -> bool {
    let ok = Process::new(shell).arg("--version").output().is_ok();
    if !ok {
        eprintln!("SKIPPED {test}: {shell} is missing (apt-get install {shell})");
    }
    ok
}

/// The committed fish completions complete nested commands and their options.
#[test]
fn fish_completes_nested_commands() {
    if regenerating() || !have("fish", "fish_completes_nested_commands") {
        return;
    }
    let script = workspace().join("etc/completions/mfa-admin.fish");
    let complete = |line: &str| -> Vec<String> {
        let out = Process::new("fish")
            .args(["--no-config", "-c"])
            .arg(format!(
                "source '{}'; complete -C '{line}'",
                script.display()
            ))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| l.split('\t').next().unwrap_or_default().to_string())
            .collect()
    };
    let net = complete("mfa-admin net ");
    for want in ["add", "check", "del", "list"] {
        assert!(net.iter().any(|w| w == want), "net: {net:?}");
    }
    let add = complete("mfa-admin net add --");
    for want in ["--cidr", "--range", "--require", "--service", "--config"] {
        assert!(add.iter().any(|w| w == want), "net add: {add:?}");
    }
    assert!(!net.iter().any(|w| w == "--cidr"), "{net:?}");
}

/// The committed zsh completions parse, and register `_mfa-admin` for `mfa-admin` when
/// loaded after compinit (as a file on $fpath is).
#[test]
fn zsh_completion_loads() {
    if regenerating() || !have("zsh", "zsh_completion_loads") {
        return;
    }
    let script = workspace().join("etc/completions/_mfa-admin");
    let out = Process::new("zsh").arg("-n").arg(&script).output().unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "zsh -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Process::new("zsh")
        .args(["-f", "-c"])
        .arg(format!(
            "autoload -U compinit && compinit -u -D && source '{}' && print -r -- ${{_comps[mfa-admin]}} && whence -w _mfa-admin_commands",
            script.display()
        ))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.starts_with("_mfa-admin\n") && stdout.contains("function"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
