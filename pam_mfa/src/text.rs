//! Untrusted text from PAM items, made safe for what reads it.
//!
//! - [`lossless`]: PAM_RHOST and PAM_TTY are bytes the application (or the client, through
//!   sshd's reverse lookup or an FTP client) chose. They become text without losing anything:
//!   valid UTF-8 stays, `\` becomes `\\` and every byte that is not UTF-8 becomes `\xNN`, so
//!   two different hosts never become the same text (the key of a repeat-window grant).
//! - [`field`]: one `key=value` field of the syslog line. A value with a space, `=`, `"`,
//!   `\`, a control or an invisible formatting character, or an empty one, is quoted, with
//!   `\\`, `\"` and `\xNN` / `\u{N}` escapes inside: `user=x outcome=success` in a user name
//!   cannot become a field of its own, nor can a newline start a new line.

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

/// A character a reader of the log must see as an escape: controls (C0, DEL, C1) and the
/// invisible formatting characters that reorder or hide text (bidi overrides, zero widths).
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// `key=value`, the value bare when it is plain, else quoted with escapes inside.
pub fn field(key: &str, value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || hidden(c));
    if plain {
        return format!("{key}={value}");
    }
    format!("{key}=\"{}\"", quoted(value))
}

/// The inside of a quoted value: `\\`, `\"`, and hidden characters as `\xNN` (below 256) or
/// `\u{N}`.
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            c if hidden(c) => {
                let n = u32::from(c);
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{{{n:x}}}"));
                }
            }
            c => out.push(c),
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

    #[test]
    fn fields_cannot_be_forged() {
        assert_eq!(field("user", "alice"), "user=alice");
        assert_eq!(field("rhost", "192.0.2.1"), "rhost=192.0.2.1");
        assert_eq!(field("tty", ""), "tty=\"\"");
        let f = field("user", "x outcome=success");
        assert_eq!(f, "user=\"x outcome=success\"");
        let f = field("user", "x\" outcome=success \"");
        assert_eq!(f, "user=\"x\\\" outcome=success \\\"\"");
        let f = field("rhost", "h\n<13>Nov 30 sshd: fake\x1b[2J\u{202e}");
        assert_eq!(f, "rhost=\"h\\x0a<13>Nov 30 sshd: fake\\x1b[2J\\u{202e}\"");
        assert!(!f.chars().any(hidden));
        assert_eq!(field("k", "a=b"), "k=\"a=b\"");
        assert_eq!(field("k", "a\\b"), "k=\"a\\\\b\"");
        assert_eq!(field("k", "\u{85}"), "k=\"\\x85\"");
    }
}
