//! PAM service names and their families.
//!
//! Debian splits some programs over several PAM services: `su -` is `su-l`, `sudo -i` is
//! `sudo-i`, and administrators add their own (`sshd-publickey`). A rule names a family:
//! a service without a rule of its own (no method and no network rule) takes the rules of
//! the name before its last `-`, and so on, before `*`. So `service set su none` also
//! governs `su-l` until `su-l` gets a rule of its own.

/// The service itself, then each name before a `-` from the right: `a-b-c`, `a-b`, `a`.
/// Empty parts are skipped (`-x` and `x-` have no parent).
pub fn lineage(service: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(service);
    std::iter::from_fn(move || {
        let cur = next?;
        next = cur
            .rfind('-')
            .map(|i| &cur[..i])
            .filter(|p| !p.is_empty() && !p.ends_with('-'));
        Some(cur)
    })
}

/// The name whose rules govern `service`: the nearest member of its [`lineage`] for which
/// `has_rule` is true, else `service` itself (then only `*` applies to it).
pub fn governing(service: &str, has_rule: impl Fn(&str) -> bool) -> &str {
    if service == "*" {
        return service;
    }
    lineage(service).find(|s| has_rule(s)).unwrap_or(service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lineage_strips_from_the_right() {
        assert_eq!(lineage("su-l").collect::<Vec<_>>(), ["su-l", "su"]);
        assert_eq!(
            lineage("sshd-mfa-test").collect::<Vec<_>>(),
            ["sshd-mfa-test", "sshd-mfa", "sshd"]
        );
        assert_eq!(lineage("sudo").collect::<Vec<_>>(), ["sudo"]);
        assert_eq!(lineage("-x").collect::<Vec<_>>(), ["-x"]);
        assert_eq!(lineage("x-").collect::<Vec<_>>(), ["x-", "x"]);
        assert_eq!(lineage("a--b").collect::<Vec<_>>(), ["a--b"]);
    }

    #[test]
    fn nearest_rule_governs() {
        let rules = ["su", "sudo", "sudo-i-x"];
        let has = |s: &str| rules.contains(&s);
        assert_eq!(governing("su-l", has), "su");
        assert_eq!(governing("su", has), "su");
        assert_eq!(governing("sudo-i", has), "sudo");
        assert_eq!(governing("sudo-i-x", has), "sudo-i-x");
        assert_eq!(governing("sshd", has), "sshd");
        assert_eq!(governing("subscribe", has), "subscribe");
        assert_eq!(governing("*", |_| true), "*");
    }
}
