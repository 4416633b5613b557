//! Passcodes: generation from the OS CSPRNG, the keyed hash that is all the store keeps, and
//! the constant-time check of an answer.
//!
//! A passcode is a prefix letter (shown with the prompt so the user can match message and
//! session) and `code_length` digits. The store keeps HMAC-SHA256(key, challenge id ‖ code)
//! with a 256-bit key of the installation (the `meta` table, root only), so a copy of the
//! database does not reveal codes, and a hash is bound to its challenge.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::{Error, Result};

/// Letters a prefix is drawn from: no I or O, which read like 1 and 0.
const PREFIX_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZ";

/// Bytes in the installation's hash key.
pub const KEY_LEN: usize = 32;

type HmacSha256 = Hmac<Sha256>;

/// Random bytes from the OS CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf)
        .map_err(|e| Error::Database(format!("the OS random source failed: {e}")))?;
    Ok(buf)
}

/// A uniformly random number below `n` (rejection sampling, no modulo bias).
fn uniform(n: u32) -> Result<u32> {
    let zone = u32::MAX - (u32::MAX % n);
    loop {
        let v = u32::from_le_bytes(random_bytes::<4>()?);
        if v < zone {
            return Ok(v % n);
        }
    }
}

/// A fresh prefix letter and code of `digits` digits.
pub fn generate(digits: u32) -> Result<(char, String)> {
    let letters = u32::try_from(PREFIX_LETTERS.len()).unwrap_or(24);
    let i = usize::try_from(uniform(letters)?).unwrap_or(0);
    let prefix = char::from(PREFIX_LETTERS.get(i).copied().unwrap_or(b'A'));
    let mut code = String::with_capacity(digits as usize);
    for _ in 0..digits {
        let d = uniform(10)?;
        code.push(char::from_digit(d, 10).unwrap_or('0'));
    }
    Ok((prefix, code))
}

/// A random identifier: 16 bytes as 32 lower-case hex digits.
pub fn random_id() -> Result<String> {
    Ok(random_bytes::<16>()?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn mac(key: &[u8], challenge: &str, code: &str) -> Result<HmacSha256> {
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(key)
        .map_err(|_| Error::Database("passcode key has an invalid length".into()))?;
    m.update(challenge.as_bytes());
    m.update(b":");
    m.update(code.as_bytes());
    Ok(m)
}

/// The keyed hash stored for a challenge's code.
pub fn hash(key: &[u8], challenge: &str, code: &str) -> Result<Vec<u8>> {
    Ok(mac(key, challenge, code)?.finalize().into_bytes().to_vec())
}

/// True when `code` is the challenge's code; the comparison takes the same time whatever
/// the answer.
pub fn verify(key: &[u8], challenge: &str, code: &str, stored: &[u8]) -> bool {
    mac(key, challenge, code).is_ok_and(|m| m.verify_slice(stored).is_ok())
}

/// Extracts the digits a user typed for a code with this prefix: accepts `V-482913`,
/// `v482913`, `482913` and surrounding or inner spaces; anything else is `None`.
pub fn normalize_answer(answer: &[u8], prefix: char, digits: u32) -> Option<String> {
    if answer.len() > 64 {
        return None;
    }
    let text = std::str::from_utf8(answer).ok()?;
    let compact: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let rest = match compact.chars().next() {
        Some(c) if c.eq_ignore_ascii_case(&prefix) => {
            let r = &compact[c.len_utf8()..];
            r.strip_prefix('-').unwrap_or(r)
        }
        _ => compact.as_str(),
    };
    (rest.len() == digits as usize && rest.bytes().all(|b| b.is_ascii_digit()))
        .then(|| rest.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_have_the_asked_shape_and_vary() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let (p, c) = generate(6).unwrap();
            assert!(PREFIX_LETTERS.contains(&(p as u8)));
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            seen.insert(c);
        }
        assert!(seen.len() > 190, "codes repeat too often: {}", seen.len());
        assert_eq!(generate(8).unwrap().1.len(), 8);
    }

    #[test]
    fn digits_are_roughly_uniform() {
        let mut counts = [0u32; 10];
        for _ in 0..2000 {
            for b in generate(8).unwrap().1.bytes() {
                counts[(b - b'0') as usize] += 1;
            }
        }
        // 16,000 digits: each expected 1,600; a biased generator falls far outside this.
        assert!(
            counts.iter().all(|&n| (1350..1850).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn hash_binds_key_challenge_and_code() {
        let key = [7u8; KEY_LEN];
        let h = hash(&key, "c1", "123456").unwrap();
        assert!(verify(&key, "c1", "123456", &h));
        assert!(!verify(&key, "c1", "123457", &h));
        assert!(!verify(&key, "c2", "123456", &h));
        assert!(!verify(&[8u8; KEY_LEN], "c1", "123456", &h));
        assert!(!verify(&key, "c1", "123456", &h[..31]));
    }

    #[test]
    fn answers() {
        for ok in ["V-482913", "v482913", "482913", " 482 913 ", "V- 482913"] {
            assert_eq!(
                normalize_answer(ok.as_bytes(), 'V', 6).as_deref(),
                Some("482913"),
                "{ok}"
            );
        }
        for bad in ["W-482913", "48291", "4829134", "V--482913", "abcdef", ""] {
            assert_eq!(normalize_answer(bad.as_bytes(), 'V', 6), None, "{bad}");
        }
        assert_eq!(normalize_answer(&[0xff, 0xfe, b'1'], 'V', 6), None);
        assert_eq!(normalize_answer(&vec![b'1'; 10_000], 'V', 6), None);
    }
}
