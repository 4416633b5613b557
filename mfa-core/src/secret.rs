//! [`Secret`]: bytes that must not outlive their use in memory (a password, a code kept
//! between two PAM instances, an answer relayed to mfa-check), zeroed when dropped
//! (`zeroize`: writes the compiler may not optimise away), never shown by `Debug`.

use zeroize::Zeroize;

/// Bytes zeroed when dropped. Clones are separate copies, each zeroed when it goes; `Debug`
/// shows only how many bytes there are.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(pub Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "<{} bytes>", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_bytes() {
        let s = Secret(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "<7 bytes>");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
