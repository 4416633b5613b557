//! Untrusted text from PAM items, made safe for what reads it.
//!
//! - [`lossless`]: PAM_RHOST and PAM_TTY are bytes the application (or the client, through
//!   sshd's reverse lookup or an FTP client) chose. They become text without losing anything:
//!   valid UTF-8 stays, `\` becomes `\\` and every byte that is not UTF-8 becomes `\xNN`, so
//!   two different hosts never become the same text (the key of a repeat-window grant).
//!
//! The fields of the syslog line are quoted by `mfa_core::logline` (mfa-check's lines use the
//! same function).

/// Bytes as text, losslessly (see the module's doc).
pub fn lossless(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            if c == '\\' {
                out.push_str("\\\\");
            } else {
                out.push(c);
            }
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lossless_keeps_different_bytes_different() {
        assert_eq!(lossless(b"host.example.com"), "host.example.com");
        assert_eq!(lossless("café".as_bytes()), "café");
        assert_eq!(lossless(b"a\xffb"), "a\\xffb");
        // The Latin-1 and the UTF-8 spelling of a name, and the text "\xe9", are three
        // different hosts (lossy conversion made the first two U+FFFD both).
        let forms = [
            lossless(b"h\xe9"),
            lossless(b"h\xe8"),
            lossless("h\u{fffd}".as_bytes()),
            lossless(b"h\\xe9"),
        ];
        for (i, a) in forms.iter().enumerate() {
            for b in &forms[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(forms[3], "h\\\\xe9");
    }
}
