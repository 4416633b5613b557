//! [`Secret`]: bytes that must not outlive their use in memory (a password, a code kept
//! between two PAM instances), zeroed when dropped.
#![allow(unsafe_code)]

/// Bytes zeroed when dropped (volatile writes, so the zeroing is not optimised away).
/// Clones are separate copies, each zeroed when it goes.
pub struct Secret(pub Vec<u8>);

impl Drop for Secret {
    fn drop(&mut self) {
        for b in self.0.iter_mut() {
            // SAFETY: a valid, aligned byte of our own vector; volatile so the zeroing stays.
            unsafe { std::ptr::write_volatile(b, 0) };
        }
    }
}

impl std::fmt::Debug for Secret {
    /// Never the bytes: only how many there are.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({} bytes)", self.0.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_no_bytes() {
        let s = Secret(b"hunter2".to_vec());
        assert_eq!(format!("{s:?}"), "Secret(7 bytes)");
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
