//! Reads a PAM service file the way libpam does for the `auth` type: `@include FILE` (Debian),
//! `auth include FILE` and `auth substack FILE` expanded in place (bounded depth, no cycles),
//! `[value=action ...]` controls parsed into actions, `\` line continuations joined and
//! comments dropped. The result is the flat list of auth lines libpam would run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How deep includes may nest (libpam has no limit but loops forever on a cycle; Debian's
/// deepest chain is su-l -> su -> common-auth).
const MAX_DEPTH: usize = 8;

/// Most auth lines followed (Debian's longest stack has about ten): a hostile file that
/// includes another thousands of times is cut here instead of filling memory.
pub const MAX_LINES: usize = 200;

/// What libpam does after a module returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    Ignore,
    Ok,
    Done,
    Die,
    Bad,
    Reset,
    /// Skip the next N lines (as `ok` otherwise).
    Jump(usize),
}

/// A line's control: the action for each return value it names, and `default`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Control {
    /// As written: `required`, `[success=1 default=ignore]`.
    pub text: String,
    pub actions: BTreeMap<String, Action>,
    pub default: Action,
}

/// Return values that mean the user was authenticated.
const SUCCESS_KEYS: &[&str] = &["success", "new_authtok_reqd"];

impl Control {
    fn keyword(word: &str) -> Option<Control> {
        use Action::*;
        let (success, ignore, default) = match word {
            "required" => (Ok, Some(Ignore), Bad),
            "requisite" => (Ok, Some(Ignore), Die),
            "sufficient" => (Done, None, Ignore),
            "optional" => (Ok, None, Ignore),
            _ => return None,
        };
        let mut actions = BTreeMap::new();
        for k in SUCCESS_KEYS {
            actions.insert(k.to_string(), success);
        }
        if let Some(i) = ignore {
            actions.insert("ignore".into(), i);
        }
        Some(Control {
            text: word.into(),
            actions,
            default,
        })
    }

    /// `[success=1 default=ignore]` (the brackets included). Unknown actions count as `bad`
    /// (libpam logs them and treats the line as a failure); no `default` means `bad`.
    fn bracket(text: &str) -> Control {
        let inner = text.trim_start_matches('[').trim_end_matches(']');
        let mut actions = BTreeMap::new();
        let mut default = Action::Bad;
        for pair in inner.split_whitespace() {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let a = match v.to_ascii_lowercase().as_str() {
                "ignore" => Action::Ignore,
                "ok" => Action::Ok,
                "done" => Action::Done,
                "die" => Action::Die,
                "bad" => Action::Bad,
                "reset" => Action::Reset,
                n => match n.parse::<usize>() {
                    Ok(0) => Action::Ok,
                    Ok(n) => Action::Jump(n),
                    Err(_) => Action::Bad,
                },
            };
            if k.eq_ignore_ascii_case("default") {
                default = a;
            } else {
                actions.insert(k.to_ascii_lowercase(), a);
            }
        }
        Control {
            text: text.into(),
            actions,
            default,
        }
    }

    /// Actions possible when the module authenticated the user.
    pub fn on_success(&self) -> Vec<Action> {
        let mut v: Vec<Action> = SUCCESS_KEYS
            .iter()
            .map(|k| self.actions.get(*k).copied().unwrap_or(self.default))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    /// Action when the module returned PAM_IGNORE.
    pub fn on_ignore(&self) -> Action {
        self.actions.get("ignore").copied().unwrap_or(self.default)
    }

    /// Actions possible when the module refused (any other value).
    pub fn on_failure(&self) -> Vec<Action> {
        let mut v: Vec<Action> = self
            .actions
            .iter()
            .filter(|(k, _)| !SUCCESS_KEYS.contains(&k.as_str()) && k.as_str() != "ignore")
            .map(|(_, a)| *a)
            .collect();
        v.push(self.default);
        v.sort();
        v.dedup();
        v
    }

    /// True when a failure of this line makes the whole stack fail.
    pub fn failure_is_fatal(&self) -> bool {
        self.on_failure()
            .iter()
            .all(|a| matches!(a, Action::Bad | Action::Die))
    }
}

/// What an auth line runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A module, as written (a bare name or a path).
    Module(String),
    /// An include that could not be read: libpam fails the line.
    BrokenInclude(String),
}

/// One auth line of the flattened stack.
#[derive(Debug, Clone)]
pub struct Line {
    /// `file:line` where it is written.
    pub origin: String,
    /// The type was written `-auth`: a module that cannot be loaded is skipped silently.
    pub dash: bool,
    pub control: Control,
    pub target: Target,
    /// Index after the last line of the innermost substack holding this line (or the end of
    /// the stack): where `done` and `die` lead.
    pub end: usize,
    /// The substacks holding this line, outermost first, each named by the index of its
    /// first line: a jump counts a whole substack as one module, and a `reset` inside one
    /// goes back to the result at its start.
    pub subs: Vec<usize>,
    /// The module's arguments as written (none for an include).
    pub args: Vec<String>,
    /// For a line read from an included file: where the service's own file includes it
    /// (`vsftpd:3`, the outermost include); None for a line of the service's file.
    pub via: Option<String>,
}

impl Line {
    /// The module's file name without its directory (`pam_unix.so`), or "" for an include.
    pub fn base(&self) -> &str {
        match &self.target {
            Target::Module(m) => m.rsplit('/').next().unwrap_or(m),
            Target::BrokenInclude(_) => "",
        }
    }

    pub fn is_mfa(&self) -> bool {
        self.base() == "pam_mfa.so"
    }

    /// The value of the module argument `key=` (the last one written), if any.
    pub fn arg(&self, key: &str) -> Option<&str> {
        self.args
            .iter()
            .rev()
            .find_map(|a| a.strip_prefix(key).and_then(|r| r.strip_prefix('=')))
    }

    /// True for the module argument written alone (`use_first_pass`).
    pub fn flag(&self, word: &str) -> bool {
        self.args.iter().any(|a| a == word)
    }

    /// pam_mfa with `oneword=before`: it never decides (PAM_IGNORE lets the password module
    /// decide), so it counts as the second factor only when it succeeds.
    pub fn is_oneword_before(&self) -> bool {
        self.is_mfa() && self.arg("oneword") == Some("before")
    }
}

/// The flattened auth stack of a service file.
#[derive(Debug)]
pub struct Stack {
    pub lines: Vec<Line>,
    /// Files included, directly or not (names as written).
    pub includes: Vec<String>,
    /// Problems met while reading (cycles, depth).
    pub notes: Vec<String>,
}

pub fn read(pam_dir: &Path, service: &str) -> Result<Stack, String> {
    let mut s = Stack {
        lines: Vec::new(),
        includes: Vec::new(),
        notes: Vec::new(),
    };
    let path = pam_dir.join(service);
    let text = read_bounded(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut chain = vec![path.clone()];
    expand(pam_dir, service, &text, &mut chain, None, &mut s);
    let n = s.lines.len();
    for l in &mut s.lines {
        if l.end == usize::MAX {
            l.end = n;
        }
    }
    Ok(s)
}

/// The largest configuration file read (Debian's biggest pam.d file is a few KiB).
const MAX_FILE: u64 = 1 << 20;

/// Reads a regular file of at most [`MAX_FILE`] bytes. A FIFO, a device (`@include
/// /dev/zero`) or a directory is refused without blocking on it.
pub fn read_bounded(path: &Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK | nix::libc::O_NOCTTY)
        .open(path)?;
    let meta = f.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > MAX_FILE {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_FILE} bytes"
        )));
    }
    let mut out = Vec::new();
    f.take(MAX_FILE).read_to_end(&mut out)?;
    Ok(out)
}

fn resolve(pam_dir: &Path, name: &str) -> PathBuf {
    if name.starts_with('/') {
        PathBuf::from(name)
    } else {
        pam_dir.join(name)
    }
}

/// Logical lines: comments removed, `\`-continued lines joined, with their first line number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut start = 0;
    for (i, raw) in text.lines().enumerate() {
        if cur.is_empty() {
            start = i + 1;
        }
        let line = raw.split('#').next().unwrap_or("");
        if let Some(body) = line.strip_suffix('\\') {
            cur.push_str(body);
            cur.push(' ');
            continue;
        }
        cur.push_str(line);
        if !cur.trim().is_empty() {
            out.push((start, std::mem::take(&mut cur)));
        }
        cur.clear();
    }
    if !cur.trim().is_empty() {
        out.push((start, cur));
    }
    out
}

/// Appends the auth lines of one file; `via` is the service file's include that led here.
fn expand(
    pam_dir: &Path,
    name: &str,
    bytes: &[u8],
    chain: &mut Vec<PathBuf>,
    via: Option<&str>,
    s: &mut Stack,
) {
    let text = String::from_utf8_lossy(bytes);
    for (no, line) in logical_lines(&text) {
        let origin = format!("{name}:{no}");
        if s.lines.len() >= MAX_LINES {
            s.notes.push(format!(
                "{origin}: the auth stack is longer than {MAX_LINES} lines; the rest was not read"
            ));
            return;
        }
        let line = line.trim();
        if let Some(inc) = line.strip_prefix("@include") {
            let inc = inc.trim();
            if !inc.is_empty() {
                let control = Control::keyword("required").unwrap_or_else(|| Control::bracket(""));
                include(pam_dir, inc, &origin, false, false, control, chain, via, s);
            }
            continue;
        }
        let mut words = line.split_whitespace();
        let Some(kind) = words.next() else { continue };
        let dash = kind.starts_with('-');
        if !kind.trim_start_matches('-').eq_ignore_ascii_case("auth") {
            continue;
        }
        let rest = line[line.find(kind).map_or(0, |i| i + kind.len())..].trim_start();
        let (control_text, after) = if rest.starts_with('[') {
            match rest.find(']') {
                Some(i) => (&rest[..=i], &rest[i + 1..]),
                None => (rest, ""),
            }
        } else {
            rest.split_once(char::is_whitespace).unwrap_or((rest, ""))
        };
        let mut words = after.split_whitespace();
        let target = words.next().unwrap_or("");
        match control_text.to_ascii_lowercase().as_str() {
            kw @ ("include" | "substack") => {
                let control = Control::keyword("required").unwrap_or_else(|| Control::bracket(""));
                include(
                    pam_dir,
                    target,
                    &origin,
                    dash,
                    kw == "substack",
                    control,
                    chain,
                    via,
                    s,
                );
            }
            c => {
                let control = if control_text.starts_with('[') {
                    Control::bracket(control_text)
                } else {
                    Control::keyword(c).unwrap_or_else(|| Control::bracket(control_text))
                };
                s.lines.push(Line {
                    origin,
                    dash,
                    control,
                    target: Target::Module(target.to_string()),
                    end: usize::MAX,
                    subs: Vec::new(),
                    args: words.map(str::to_string).collect(),
                    via: via.map(str::to_string),
                });
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn include(
    pam_dir: &Path,
    name: &str,
    origin: &str,
    dash: bool,
    substack: bool,
    control: Control,
    chain: &mut Vec<PathBuf>,
    via: Option<&str>,
    s: &mut Stack,
) {
    let path = resolve(pam_dir, name);
    let broken = |why: String, s: &mut Stack| {
        s.notes.push(format!("{origin}: {why}"));
        s.lines.push(Line {
            origin: origin.to_string(),
            dash,
            control: control.clone(),
            target: Target::BrokenInclude(name.to_string()),
            end: usize::MAX,
            subs: Vec::new(),
            args: Vec::new(),
            via: via.map(str::to_string),
        });
    };
    if chain.contains(&path) {
        return broken(format!("{name} includes itself (a cycle)"), s);
    }
    if chain.len() > MAX_DEPTH {
        return broken(
            format!("includes nest deeper than {MAX_DEPTH} at {name}"),
            s,
        );
    }
    let bytes = match read_bounded(&path) {
        Ok(b) => b,
        Err(e) => return broken(format!("cannot read {}: {e}", path.display()), s),
    };
    if !s.includes.iter().any(|i| i == name) {
        s.includes.push(name.to_string());
    }
    let first = s.lines.len();
    chain.push(path);
    expand(pam_dir, name, &bytes, chain, Some(via.unwrap_or(origin)), s);
    chain.pop();
    if substack {
        let end = s.lines.len();
        for l in &mut s.lines[first..] {
            if l.end == usize::MAX {
                l.end = end;
            }
            // Inner substacks closed first: this one goes before theirs.
            l.subs.insert(0, first);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (n, t) in files {
            std::fs::write(d.path().join(n), t).unwrap();
        }
        d
    }

    #[test]
    fn includes_substacks_and_brackets() {
        let d = dir(&[
            (
                "common-auth",
                "auth [success=1 default=ignore] pam_unix.so nullok # c\nauth requisite pam_deny.so\nauth required pam_permit.so\n",
            ),
            (
                "su",
                "auth sufficient pam_rootok.so\n@include common-auth\naccount required pam_unix.so\n",
            ),
            ("su-l", "auth include su\nauth \\\n  required pam_mfa.so\n"),
            ("sub", "auth substack su\n-auth optional pam_x.so\n"),
            ("loop", "auth include loop\n"),
        ]);
        let s = read(d.path(), "su-l").unwrap();
        let mods: Vec<&str> = s.lines.iter().map(|l| l.base()).collect();
        assert_eq!(
            mods,
            [
                "pam_rootok.so",
                "pam_unix.so",
                "pam_deny.so",
                "pam_permit.so",
                "pam_mfa.so"
            ]
        );
        assert_eq!(s.includes, ["su", "common-auth"]);
        assert_eq!(
            s.lines[1].control.on_success(),
            [Action::Ignore, Action::Jump(1)],
            "new_authtok_reqd falls to default"
        );
        assert_eq!(s.lines[1].control.on_failure(), [Action::Ignore]);
        assert_eq!(s.lines[4].origin, "su-l:2");
        assert!(s.lines.iter().all(|l| l.end == 5));

        let s = read(d.path(), "sub").unwrap();
        assert_eq!(s.lines.len(), 5);
        assert!(s.lines[..4].iter().all(|l| l.end == 4), "substack end");
        assert!(s.lines[4].dash && s.lines[4].end == 5);

        let s = read(d.path(), "loop").unwrap();
        assert!(matches!(s.lines[0].target, Target::BrokenInclude(_)));
        assert!(s.notes[0].contains("cycle"), "{:?}", s.notes);
        assert!(
            read(d.path(), "missing")
                .unwrap_err()
                .contains("cannot read")
        );
    }

    #[test]
    fn arguments_and_the_include_that_brought_a_line() {
        let d = dir(&[
            (
                "common-auth",
                "auth requisite pam_unix.so nullok try_first_pass\n",
            ),
            ("mid", "@include common-auth\n"),
            (
                "ftp",
                "auth [success=done default=die] pam_mfa.so oneword=before separator=;\n\
                 auth include mid\nauth required pam_mfa.so oneword=after oneword=x\n",
            ),
        ]);
        let s = read(d.path(), "ftp").unwrap();
        assert_eq!(s.lines[0].args, ["oneword=before", "separator=;"]);
        assert!(s.lines[0].is_oneword_before() && s.lines[0].via.is_none());
        assert_eq!(s.lines[0].arg("separator"), Some(";"));
        // Through two includes: the service file's own include line.
        assert_eq!(s.lines[1].via.as_deref(), Some("ftp:2"));
        assert_eq!(s.lines[1].origin, "common-auth:1");
        assert!(s.lines[1].flag("try_first_pass") && !s.lines[1].flag("use_first_pass"));
        // The last one written counts, as in the module's parser.
        assert_eq!(s.lines[2].arg("oneword"), Some("x"));
        assert!(!s.lines[2].is_oneword_before());
    }

    #[test]
    fn hostile_bytes_do_not_break_the_reader() {
        let d = dir(&[(
            "x",
            "auth [success=99999999999999999999 default=\0] \u{fffd}\n[\n\\",
        )]);
        std::fs::write(
            d.path().join("y"),
            [0xff, 0xfe, b'\n', b'a', b'u', b't', b'h'],
        )
        .unwrap();
        let s = read(d.path(), "x").unwrap();
        assert_eq!(s.lines[0].control.on_success(), [Action::Bad]);
        assert!(read(d.path(), "y").unwrap().lines.len() <= 1);
        // Devices and FIFOs are not read (no endless read, no blocking open).
        std::fs::write(
            d.path().join("z"),
            "@include /dev/zero\nauth include /dev/stdin\n",
        )
        .unwrap();
        nix::unistd::mkfifo(
            &d.path().join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        std::fs::write(d.path().join("f"), "auth include fifo\n").unwrap();
        let s = read(d.path(), "z").unwrap();
        assert!(
            s.lines
                .iter()
                .all(|l| matches!(l.target, Target::BrokenInclude(_)))
        );
        assert_eq!(s.lines.len(), 2);
        let s = read(d.path(), "f").unwrap();
        assert!(s.notes[0].contains("not a regular file"), "{:?}", s.notes);
        // A file including another thousands of times is cut, not expanded.
        std::fs::write(
            d.path().join("many"),
            "auth required pam_unix.so\n".repeat(50),
        )
        .unwrap();
        std::fs::write(d.path().join("fan"), "@include many\n".repeat(60_000)).unwrap();
        let s = read(d.path(), "fan").unwrap();
        std::fs::write(d.path().join("huge"), vec![b'#'; 2 << 20]).unwrap();
        assert!(read(d.path(), "huge").unwrap_err().contains("larger than"));
        assert!(s.lines.len() <= MAX_LINES + 50, "{}", s.lines.len());
        assert!(
            s.notes.iter().any(|n| n.contains("longer than")),
            "{:?}",
            s.notes.len()
        );
    }
}
