//! Output: aligned tables for people, stable JSON for programs (docs/json.md).
//!
//! Both escape what a terminal would act on or hide. Cells of a table hold text from
//! outside (PAM_USER, PAM_RHOST, PAM_TTY, a server's reply kept in the spool): every control
//! character (C0, DEL, C1) and every invisible formatting character (bidi overrides, zero
//! widths) is shown as a visible escape, `\x1b` or `\u{202e}`, so that no value can draw a
//! fake row, move the cursor or recolour root's terminal. JSON strings are escaped by serde
//! for C0 controls, `"` and `\`; DEL, C1 and the formatting characters, which serde writes
//! as they are, become `\u00XX`-style escapes too (the same value to a JSON reader).

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// A character a reader must see as an escape rather than receive raw.
pub fn hidden(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// Text as one line a terminal prints as it is: hidden characters as `\xNN` (below 256) or
/// `\u{N}`; everything else unchanged.
pub fn visible(text: &str) -> String {
    if !text.chars().any(hidden) {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if hidden(c) {
            let n = u32::from(c);
            if n < 0x100 {
                out.push_str(&format!("\\x{n:02x}"));
            } else {
                out.push_str(&format!("\\u{{{n:x}}}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// A hidden character serde_json writes raw: not C0 (serde escapes those inside strings, and
/// the newlines and spaces between values are C0).
fn raw_in_json(c: char) -> bool {
    u32::from(c) >= 0x7f && hidden(c)
}

/// JSON text with the hidden characters serde leaves raw written as `\uXXXX` escapes. They
/// can only occur inside strings, where the escape means the same character.
fn json_escaped(text: String) -> String {
    if !text.chars().any(raw_in_json) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if raw_in_json(c) {
            // Every hidden character is in the Basic Multilingual Plane: one \uXXXX.
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> mfa_core::Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| mfa_core::Error::Invalid(format!("cannot write JSON: {e}")))?;
    println!("{}", json_escaped(text));
    Ok(())
}

/// Prints rows under a header as columns separated by two spaces; `empty` when there are none.
/// Every cell goes through [`visible`].
pub fn table(header: &[&str], rows: Vec<Vec<String>>, empty: &str) {
    if rows.is_empty() {
        println!("{empty}");
        return;
    }
    let mut t = Table::new();
    t.load_style(presets::NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.to_vec());
    for r in rows {
        t.add_row(r.iter().map(|cell| visible(cell)).collect::<Vec<_>>());
    }
    for col in t.column_iter_mut() {
        col.set_padding((0, 2));
    }
    for line in t.lines() {
        println!("{}", line.trim_end());
    }
}

/// yes / no.
pub fn yes_no(b: bool) -> String {
    if b { "yes".into() } else { "no".into() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_visible() {
        assert_eq!(visible("alice"), "alice");
        assert_eq!(visible("café  ok"), "café  ok");
        assert_eq!(
            visible("x\x1b[2J\r\nfake row\t\x7f\u{9b}31m\u{202e}"),
            "x\\x1b[2J\\x0d\\x0afake row\\x09\\x7f\\x9b31m\\u{202e}"
        );
        assert!(!visible("\0\x07\u{200b}\u{feff}").chars().any(hidden));
    }

    #[test]
    fn json_stays_valid_and_equal() {
        let v = serde_json::json!({"user": "a\x1b[31m\u{7f}\u{85}\u{202e}b\"\\"});
        let text = json_escaped(serde_json::to_string_pretty(&v).unwrap());
        assert!(text.chars().all(|c| !hidden(c) || c == '\n'), "{text:?}");
        assert!(!text.contains('\x1b') && !text.contains('\u{85}') && !text.contains('\u{202e}'));
        assert!(text.contains("\\u001b") && text.contains("\\u0085") && text.contains("\\u202e"));
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
    }
}
