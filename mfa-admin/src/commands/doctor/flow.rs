//! Walks every path through a flattened auth stack (each module may succeed, fail or ignore)
//! the way libpam's dispatcher does, and answers what doctor asks of a stack with pam_mfa:
//! can a login succeed without pam_mfa running, can pam_mfa run after the password already
//! failed (it would send passcodes to anyone who knows a user name), can it run before any
//! password module succeeded, and can the stack succeed at all.

use std::collections::HashSet;

use super::stack::{Action, Line, Target};

/// Modules that prove the first factor (a password, a directory login).
pub const PRIMARY: &[&str] = &[
    "pam_unix.so",
    "pam_sss.so",
    "pam_ldap.so",
    "pam_krb5.so",
    "pam_winbind.so",
    "pam_userdb.so",
];

/// What a path through the stack can show.
#[derive(Debug, Default)]
pub struct Findings {
    /// Some path succeeds.
    pub can_succeed: bool,
    /// A path succeeds without running pam_mfa: the line whose result skipped it (or, when
    /// nothing skipped it, the line that made the stack succeed).
    pub skipped_by: Option<usize>,
    /// pam_mfa runs after this line already failed the stack.
    pub mfa_after_failure_of: Option<usize>,
    /// pam_mfa runs on a path where no password module succeeded.
    pub mfa_without_primary: bool,
}

/// The result so far, as libpam's dispatcher keeps it (impression and status).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Impression {
    Undef,
    /// `ok` or `done` recorded a success.
    Success,
    /// `ok` or `done` recorded something else (a failure, or PAM_IGNORE): libpam's positive
    /// impression with a status that is not PAM_SUCCESS. Only a `reset` undoes it; `done`
    /// still ends the stack.
    NotSuccess,
    /// `bad` or `die` recorded a failure (libpam's negative impression).
    Failure,
}

impl Impression {
    /// The stack would fail if it ended here (short of a `reset`).
    fn failed(self) -> bool {
        matches!(self, Impression::NotSuccess | Impression::Failure)
    }
}

/// Substack levels followed (stack.rs nests at most 8 deep).
const LEVELS: usize = 12;

#[derive(Clone, Copy)]
struct State {
    pc: usize,
    impression: Impression,
    /// The result when each substack level (1 = the outermost) holding the line at `pc` was
    /// entered: where a `reset` there goes back.
    entry: [Impression; LEVELS],
    /// The line that set the failure.
    failed_by: Option<usize>,
    mfa_ran: bool,
    primary_ok: bool,
    /// root's pam_rootok ended the stack: root needs no factor at all.
    by_rootok: bool,
    skipper: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Success,
    Ignore,
    Failure,
}

/// What a line can return. `loads(i)` tells whether line i's module can be loaded.
fn outcomes(line: &Line, loads: bool) -> &'static [Outcome] {
    use Outcome::*;
    match &line.target {
        Target::BrokenInclude(_) => &[Failure],
        Target::Module(_) if !loads && line.dash => &[],
        // libpam runs a module it could not load as a forced failure.
        Target::Module(_) if !loads => &[Failure],
        Target::Module(_) => match line.base() {
            "pam_deny.so" => &[Failure],
            "pam_permit.so" => &[Success],
            _ => &[Success, Ignore, Failure],
        },
    }
}

/// Going from line `from` to line `next.pc`: libpam remembers the result so far for each
/// substack entered on the way (a `reset` in it goes back there).
fn enter(lines: &[Line], from: usize, next: &mut State) {
    let (Some(a), Some(b)) = (lines.get(from), lines.get(next.pc)) else {
        return;
    };
    let common = a
        .subs
        .iter()
        .zip(&b.subs)
        .take_while(|(x, y)| x == y)
        .count();
    for l in common + 1..=b.subs.len().min(LEVELS - 1) {
        next.entry[l] = next.impression;
    }
}

/// Explores every path. `loads[i]` is false for a line whose module is missing or broken.
pub fn analyse(lines: &[Line], loads: &[bool]) -> Findings {
    let mut f = Findings::default();
    let mut seen = HashSet::new();
    let mut todo = vec![State {
        pc: 0,
        impression: Impression::Undef,
        entry: [Impression::Undef; LEVELS],
        failed_by: None,
        mfa_ran: false,
        primary_ok: false,
        by_rootok: false,
        skipper: None,
    }];
    let n = lines.len();
    while let Some(st) = todo.pop() {
        // The culprits (failed_by, skipper) only name a line: leaving them out of what makes
        // a state new keeps the walk linear in the stack's length.
        if !seen.insert((
            st.pc,
            st.impression,
            st.entry,
            st.mfa_ran,
            st.primary_ok,
            st.by_rootok,
            st.skipper.is_some(),
        )) {
            continue;
        }
        if st.pc >= n {
            if st.impression == Impression::Success {
                f.can_succeed = true;
                if !st.mfa_ran && !st.by_rootok && f.skipped_by.is_none() {
                    f.skipped_by = st.skipper.or(Some(n.saturating_sub(1)));
                }
            }
            continue;
        }
        let line = &lines[st.pc];
        let level = line.subs.len().min(LEVELS - 1);
        let outs = outcomes(line, loads.get(st.pc).copied().unwrap_or(true));
        if outs.is_empty() {
            let mut next = State {
                pc: st.pc + 1,
                ..st
            };
            enter(lines, st.pc, &mut next);
            todo.push(next);
            continue;
        }
        if line.is_mfa() {
            if st.impression.failed() && f.mfa_after_failure_of.is_none() {
                f.mfa_after_failure_of = st.failed_by;
            }
            if !st.primary_ok && !st.impression.failed() {
                f.mfa_without_primary = true;
            }
        }
        for &out in outs {
            let actions = match out {
                Outcome::Success => line.control.on_success(),
                Outcome::Ignore => vec![line.control.on_ignore()],
                Outcome::Failure => line.control.on_failure(),
            };
            for a in actions {
                let mut next = st;
                // oneword=before's PAM_IGNORE decides nothing (the password module and
                // oneword=after do); its success is a double logon's verified passcode.
                if line.is_mfa()
                    && (out == Outcome::Success
                        || (out == Outcome::Ignore && !line.is_oneword_before()))
                {
                    next.mfa_ran = true;
                }
                // `ok`/`done`: recorded only over nothing or a success (a PAM_IGNORE too).
                let set = |next: &mut State| {
                    if matches!(next.impression, Impression::Undef | Impression::Success) {
                        next.impression = if out == Outcome::Success {
                            Impression::Success
                        } else {
                            next.failed_by = Some(st.pc);
                            Impression::NotSuccess
                        };
                    }
                };
                let fail = |next: &mut State| {
                    if !next.impression.failed() {
                        next.failed_by = Some(st.pc);
                    }
                    next.impression = Impression::Failure;
                };
                if out == Outcome::Success && PRIMARY.contains(&line.base()) {
                    next.primary_ok = true;
                }
                let target = match a {
                    Action::Ignore => st.pc + 1,
                    Action::Ok => {
                        set(&mut next);
                        st.pc + 1
                    }
                    // `done` ends the (sub)stack only over a recorded result of `ok`/`done`;
                    // after a `bad` libpam goes on.
                    Action::Done => {
                        set(&mut next);
                        if next.impression == Impression::Failure {
                            st.pc + 1
                        } else {
                            line.end
                        }
                    }
                    Action::Die => {
                        fail(&mut next);
                        line.end
                    }
                    Action::Bad => {
                        fail(&mut next);
                        st.pc + 1
                    }
                    Action::Reset => {
                        next.impression = st.entry[level];
                        if !next.impression.failed() {
                            next.failed_by = None;
                        }
                        st.pc + 1
                    }
                    // libpam's authenticate pass records no result for a jump; a jump past
                    // the end of its (sub)stack is "bad jump in stack": a failure.
                    // A substack is one module to the jump.
                    Action::Jump(k) => {
                        let (mut to, mut left) = (st.pc + 1, k);
                        while left > 0 && to < line.end {
                            match lines[to].subs.get(line.subs.len()) {
                                Some(&sub) => {
                                    while to < line.end
                                        && lines[to].subs.get(line.subs.len()) == Some(&sub)
                                    {
                                        to += 1;
                                    }
                                }
                                None => to += 1,
                            }
                            left -= 1;
                        }
                        if left > 0 {
                            fail(&mut next);
                            line.end
                        } else {
                            to
                        }
                    }
                };
                // A jump or `done` over a pam_mfa line that has not run skips it.
                if !next.mfa_ran
                    && next.skipper.is_none()
                    && lines[(st.pc + 1).min(n)..target.max(st.pc + 1)]
                        .iter()
                        .any(Line::is_mfa)
                {
                    next.skipper = Some(st.pc);
                }
                // pam_mfa refused but the line lets the stack go on as if it had not.
                if line.is_mfa()
                    && out == Outcome::Failure
                    && matches!(a, Action::Ignore | Action::Reset | Action::Jump(_))
                    && next.skipper.is_none()
                {
                    next.skipper = Some(st.pc);
                }
                if a == Action::Done && out == Outcome::Success && line.base() == "pam_rootok.so" {
                    next.by_rootok = true;
                }
                next.pc = target;
                enter(lines, st.pc, &mut next);
                todo.push(next);
            }
        }
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(text: &str) -> Vec<Line> {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(
            d.path().join("common-auth"),
            "auth [success=1 default=ignore] pam_unix.so nullok\nauth requisite pam_deny.so\nauth required pam_permit.so\n",
        )
        .unwrap();
        std::fs::write(d.path().join("s"), text).unwrap();
        super::super::stack::read(d.path(), "s").unwrap().lines
    }

    fn run(text: &str) -> Findings {
        let l = stack(text);
        analyse(&l, &vec![true; l.len()])
    }

    #[test]
    fn debian_stack_with_mfa_after_common_auth_is_clean() {
        let f =
            run("auth sufficient pam_rootok.so\n@include common-auth\nauth required pam_mfa.so\n");
        assert!(f.can_succeed);
        assert_eq!(f.skipped_by, None, "rootok is root only");
        assert_eq!(
            f.mfa_after_failure_of, None,
            "pam_deny stops a wrong password"
        );
        assert!(!f.mfa_without_primary);
    }

    #[test]
    fn a_long_hostile_stack_is_walked_quickly() {
        let mut text = String::new();
        for i in 0..super::super::stack::MAX_LINES {
            text.push_str(&format!(
                "auth [success={} new_authtok_reqd=reset default=bad ignore=done] pam_x{i}.so\n",
                i % 3 + 1
            ));
            if i % 7 == 0 {
                text.push_str("auth optional pam_mfa.so\n");
            }
        }
        let start = std::time::Instant::now();
        let f = run(&text);
        assert!(f.can_succeed);
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
    }

    /// libpam's authenticate pass records nothing for a line whose action is a jump (that
    /// is why Debian's common-auth ends with `required pam_permit.so`), and a jump past the
    /// end of the stack fails it ("bad jump in stack"). So a refusal of pam_mfa that jumps
    /// (`default=1`) leaves the password's success standing: checked against libpam with
    /// `pam_deny.so` in pam_mfa's place, such a stack authenticates.
    #[test]
    fn a_jump_records_no_result() {
        let f = run(
            "auth requisite pam_unix.so\nauth [success=ok default=1] pam_mfa.so\nauth required pam_permit.so\n",
        );
        assert_eq!(f.skipped_by, Some(1), "pam_mfa's refusal jumps: {f:?}");
        // Landing exactly at the end: the password's success stands.
        let f = run(
            "auth requisite pam_unix.so\nauth [success=ok default=1] pam_mfa.so\nauth optional pam_x.so\n",
        );
        assert_eq!(f.skipped_by, Some(1), "{f:?}");
        // Jumping past the end is a failure, not a success.
        let f = run("auth requisite pam_unix.so\nauth [success=ok default=2] pam_mfa.so\n");
        assert_eq!(f.skipped_by, None, "{f:?}");
        assert!(f.can_succeed, "pam_mfa's success still passes");
        let f = run("auth [success=3 default=die] pam_unix.so\nauth required pam_mfa.so\n");
        assert!(
            !f.can_succeed,
            "every path jumps past the end or fails: {f:?}"
        );
        // Debian's common-auth still succeeds (pam_permit primes the result) and is clean.
        let f = run("@include common-auth\nauth required pam_mfa.so\n");
        assert!(f.can_succeed);
        assert_eq!(f.skipped_by, None);
        // A jump alone never makes a stack succeed.
        let f = run("auth [success=1 default=die] pam_unix.so\nauth required pam_deny.so\n");
        assert!(!f.can_succeed, "{f:?}");
    }

    /// `done` ends the stack only over a result recorded by `ok`/`done` (libpam: "positive
    /// impression"); after a `bad` libpam goes on, and a later `reset` forgets it. And
    /// `ok` for PAM_IGNORE records a non-success result. Both checked against libpam with
    /// pam_deny in pam_mfa's place.
    #[test]
    fn done_after_a_failure_goes_on() {
        let f = run(
            "auth requisite pam_unix.so\nauth [success=ok default=done] pam_mfa.so\nauth [default=reset] pam_deny.so\nauth required pam_permit.so\n",
        );
        assert_eq!(
            f.skipped_by, None,
            "pam_mfa's refusal is recorded over the password's success and `done` ends: {f:?}"
        );
        let f = run(
            "auth requisite pam_unix.so\nauth required pam_mfa.so\nauth [success=done default=ignore] pam_permit.so\nauth [default=reset] pam_deny.so\nauth required pam_permit.so\n",
        );
        assert!(f.skipped_by.is_some(), "{f:?}");
        // `ignore=ok`: PAM_IGNORE becomes the result, and a later success cannot replace it
        // (libpam, pam_debug.so auth=ignore: "The return value should be ignored").
        let f =
            run("auth [success=die ignore=ok default=die] pam_x.so\nauth required pam_permit.so\n");
        assert!(!f.can_succeed, "{f:?}");
        let f = run(
            "auth [success=die ignore=ignore default=die] pam_x.so\nauth required pam_permit.so\n",
        );
        assert!(f.can_succeed, "{f:?}");
    }

    /// The stack `s` read from a directory holding `files` too.
    fn run_with(files: &[(&str, &str)], text: &str) -> Findings {
        let d = tempfile::tempdir().unwrap();
        for (name, body) in files {
            std::fs::write(d.path().join(name), body).unwrap();
        }
        std::fs::write(d.path().join("s"), text).unwrap();
        let l = super::super::stack::read(d.path(), "s").unwrap().lines;
        analyse(&l, &vec![true; l.len()])
    }

    /// A substack is one module to a jump around it, and a `reset` inside it goes back to
    /// the result at its start, not to nothing (libpam, pam_deny in pam_mfa's place).
    #[test]
    fn substacks_are_one_module_to_a_jump_and_reset_to_their_start() {
        let two = (
            "two",
            "auth [success=ok default=bad] pam_permit.so\nauth required pam_permit.so\n",
        );
        // Jumping over the substack (one module) and pam_deny lands at the end: the
        // password's success stands.
        let f = run_with(
            &[two],
            "auth requisite pam_unix.so\nauth [success=ok default=2] pam_mfa.so\nauth substack two\nauth required pam_deny.so\n",
        );
        assert_eq!(f.skipped_by, Some(1), "{f:?}");
        // Jumping over the substack only lands on pam_deny.
        let f = run_with(
            &[two],
            "auth requisite pam_unix.so\nauth [success=ok default=1] pam_mfa.so\nauth substack two\nauth required pam_deny.so\n",
        );
        assert_eq!(f.skipped_by, None, "{f:?}");
        // Two substacks side by side are two modules.
        let f = run_with(
            &[two],
            "auth requisite pam_unix.so\nauth [success=ok default=2] pam_mfa.so\nauth substack two\nauth substack two\n",
        );
        assert_eq!(f.skipped_by, Some(1), "{f:?}");
        // A reset inside a substack restores the password's success from before it.
        let f = run_with(
            &[(
                "rs",
                "auth required pam_mfa.so\nauth [default=reset] pam_deny.so\n",
            )],
            "auth requisite pam_unix.so\nauth substack rs\n",
        );
        assert!(f.skipped_by.is_some(), "{f:?}");
        // The start of each substack counts, also of one right after another.
        let f = run_with(
            &[
                ("a", "auth requisite pam_unix.so\n"),
                (
                    "b",
                    "auth required pam_mfa.so\nauth [default=reset] pam_deny.so\n",
                ),
            ],
            "auth substack a\nauth substack b\n",
        );
        assert!(f.skipped_by.is_some(), "{f:?}");
        // ... and a failure from before it.
        let f = run_with(
            &[(
                "rs",
                "auth [default=reset] pam_deny.so\nauth required pam_permit.so\n",
            )],
            "auth requisite pam_unix.so\nauth required pam_mfa.so\nauth substack rs\n",
        );
        assert_eq!(f.skipped_by, None, "{f:?}");
    }

    #[test]
    fn skips_and_failures_are_found() {
        // The password alone ends the stack.
        let f = run("auth sufficient pam_unix.so\nauth required pam_mfa.so\n");
        assert_eq!(f.skipped_by, Some(0));
        // A jump over pam_mfa.
        let f = run(
            "auth [success=1 default=die] pam_unix.so\nauth required pam_mfa.so\nauth required pam_permit.so\n",
        );
        assert_eq!(f.skipped_by, Some(0));
        // `required` password: a wrong one still reaches pam_mfa.
        let f = run("auth required pam_unix.so\nauth required pam_mfa.so\n");
        assert_eq!(f.mfa_after_failure_of, Some(0));
        assert_eq!(f.skipped_by, None);
        // pam_mfa first.
        let f = run("auth required pam_mfa.so\n@include common-auth\n");
        assert!(f.mfa_without_primary);
        // A module that cannot load under `required`: nothing succeeds.
        let l = stack("@include common-auth\nauth required pam_mfa.so\n");
        let f = analyse(&l, &[true, true, true, false]);
        assert!(!f.can_succeed);
        // ... and with `-auth` it is skipped silently.
        let l = stack("@include common-auth\n-auth required pam_mfa.so\n");
        let f = analyse(&l, &[true, true, true, false]);
        assert!(f.can_succeed && f.skipped_by.is_some());
    }
}
