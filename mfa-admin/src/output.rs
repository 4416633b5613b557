//! Output: aligned tables for people, stable JSON for programs (docs/json.md).

use comfy_table::{ContentArrangement, Table, presets};
use serde::Serialize;

/// Prints a value as pretty JSON.
pub fn json<T: Serialize + ?Sized>(value: &T) -> mfa_core::Result<()> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| mfa_core::Error::Invalid(format!("cannot write JSON: {e}")))?;
    println!("{text}");
    Ok(())
}

/// Prints rows under a header as columns separated by two spaces; `empty` when there are none.
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
        t.add_row(r);
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
