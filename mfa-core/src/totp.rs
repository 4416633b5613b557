//! TOTP (RFC 6238) for authenticator apps, and single-use backup codes.
//!
//! Codes are computed by the totp-rs crate; this module adds what mfa needs around it: key
//! generation from the OS CSPRNG (160 bits), the `otpauth://` URI and QR code of an
//! enrolment, and the step a code matched (the store refuses that step and every earlier one
//! for the user afterwards: replay protection). Backup codes are 8 random digits, stored as
//! keyed hashes like passcodes.

use totp_rs::{Algorithm, Builder, Secret};

use crate::passcode::random_bytes;
use crate::{Error, Result, invalid};

/// Seconds per step.
pub const STEP: u64 = 30;
/// Bytes of a new key (160 bits, as RFC 4226 recommends).
pub const KEY_BYTES: usize = 20;

/// An authenticator key and its parameters.
#[derive(Clone, PartialEq, Eq)]
pub struct Key {
    pub secret: Vec<u8>,
    /// sha1, sha256 or sha512.
    pub algorithm: String,
    /// 6 or 8.
    pub digits: u32,
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Key")
            .field("algorithm", &self.algorithm)
            .field("digits", &self.digits)
            .finish_non_exhaustive()
    }
}

/// Checks an algorithm name.
pub fn algorithm(text: &str) -> Result<String> {
    match text.to_ascii_lowercase().as_str() {
        a @ ("sha1" | "sha256" | "sha512") => Ok(a.to_string()),
        _ => Err(invalid!(
            "unknown algorithm {text:?}: expected sha1, sha256 or sha512"
        )),
    }
}

/// Checks a digit count.
pub fn digits(text: &str) -> Result<u32> {
    match text.trim() {
        "6" => Ok(6),
        "8" => Ok(8),
        _ => Err(invalid!("invalid --digits {text:?}: expected 6 or 8")),
    }
}

impl Key {
    /// A fresh random key.
    pub fn generate(algorithm: &str, digits: u32) -> Result<Key> {
        Ok(Key {
            secret: random_bytes::<KEY_BYTES>()?.to_vec(),
            algorithm: self::algorithm(algorithm)?,
            digits,
        })
    }

    fn totp(&self, skew: u16) -> Result<totp_rs::Totp> {
        let alg = match self.algorithm.as_str() {
            "sha256" => Algorithm::SHA256,
            "sha512" => Algorithm::SHA512,
            _ => Algorithm::SHA1,
        };
        if self.digits != 6 && self.digits != 8 {
            return Err(Error::Database(format!(
                "stored TOTP key has {} digits",
                self.digits
            )));
        }
        Builder::new()
            .with_algorithm(alg)
            .with_digits(u8::try_from(self.digits).unwrap_or(6))
            .with_skew(skew)
            .with_step_duration(STEP)
            .with_secret(Secret::from(self.secret.clone()))
            .build()
            .map_err(|e| Error::Database(format!("stored TOTP key is unusable: {e}")))
    }

    /// The code of the step containing `time` (Unix seconds).
    pub fn code_at(&self, time: u64) -> Result<String> {
        Ok(self.totp(0)?.generate(time).to_string())
    }

    /// The step a code matches within ±`skew` steps of `time`, if any. Anything but exactly
    /// `digits` ASCII digits is refused without computing a code.
    pub fn matching_step(&self, answer: &str, time: u64, skew: u32) -> Option<u64> {
        let a = answer.trim();
        if a.len() != self.digits as usize || !a.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let totp = self.totp(u16::try_from(skew).unwrap_or(1)).ok()?;
        totp.check(a, time)
    }

    /// The key in base 32, as authenticator apps take it.
    pub fn base32(&self) -> String {
        Secret::from(self.secret.clone()).to_base32()
    }

    /// The `otpauth://` URI for `issuer` and `account`.
    pub fn uri(&self, issuer: &str, account: &str) -> String {
        let label = format!("{}:{}", encode(issuer), encode(account));
        format!(
            "otpauth://totp/{label}?secret={}&issuer={}&algorithm={}&digits={}&period={STEP}",
            self.base32(),
            encode(issuer),
            self.algorithm.to_ascii_uppercase(),
            self.digits
        )
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The QR code of a text drawn with Unicode half blocks (two modules per character row),
/// with a quiet zone, dark modules as spaces on a light background so it scans on dark and
/// light terminals alike.
pub fn qr_text(data: &str) -> Result<String> {
    let code =
        qrcode::QrCode::new(data.as_bytes()).map_err(|e| invalid!("cannot draw a QR code: {e}"))?;
    let width = code.width();
    let colors = code.to_colors();
    let quiet = 2usize;
    let dark = |x: isize, y: isize| -> bool {
        if x < 0 || y < 0 || x as usize >= width || y as usize >= width {
            return false;
        }
        colors[y as usize * width + x as usize] == qrcode::Color::Dark
    };
    let mut out = String::new();
    let size = (width + 2 * quiet) as isize;
    let q = quiet as isize;
    let mut y = -q;
    while y < size - q {
        for x in -q..size - q {
            // Light modules are drawn (full block), dark ones left blank.
            out.push(match (!dark(x, y), !dark(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    Ok(out)
}

/// The QR code of a text as a PNG image (8 pixels a module, 4-module quiet zone).
pub fn qr_png(data: &str) -> Result<Vec<u8>> {
    let code =
        qrcode::QrCode::new(data.as_bytes()).map_err(|e| invalid!("cannot draw a QR code: {e}"))?;
    let width = code.width();
    let colors = code.to_colors();
    let (scale, quiet) = (8usize, 4usize);
    let side = (width + 2 * quiet) * scale;
    let mut pixels = vec![255u8; side * side];
    for y in 0..width {
        for x in 0..width {
            if colors[y * width + x] == qrcode::Color::Dark {
                for dy in 0..scale {
                    let row = (y + quiet) * scale + dy;
                    let start = row * side + (x + quiet) * scale;
                    pixels[start..start + scale].fill(0);
                }
            }
        }
    }
    let mut out = Vec::new();
    {
        let side32 = u32::try_from(side).map_err(|_| invalid!("QR code too large"))?;
        let mut enc = png::Encoder::new(&mut out, side32, side32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc
            .write_header()
            .map_err(|e| invalid!("cannot write PNG: {e}"))?;
        w.write_image_data(&pixels)
            .map_err(|e| invalid!("cannot write PNG: {e}"))?;
    }
    Ok(out)
}

/// Digits in a backup code.
pub const BACKUP_DIGITS: u32 = 8;

/// `n` fresh backup codes.
pub fn backup_codes(n: usize) -> Result<Vec<String>> {
    (0..n)
        .map(|_| crate::passcode::generate(BACKUP_DIGITS).map(|(_, c)| c))
        .collect()
}

/// The keyed hash stored for a user's backup code.
pub fn backup_hash(key: &[u8], user: &str, code: &str) -> Result<Vec<u8>> {
    crate::passcode::hash(key, &format!("backup:{user}"), code)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B: the seeds are the ASCII "12345678901234567890" repeated to the
    /// hash's block size.
    #[test]
    fn rfc6238_vectors() {
        let seed = |n: usize| {
            b"1234567890"
                .iter()
                .cycle()
                .take(n)
                .copied()
                .collect::<Vec<u8>>()
        };
        let keys = [
            Key {
                secret: seed(20),
                algorithm: "sha1".into(),
                digits: 8,
            },
            Key {
                secret: seed(32),
                algorithm: "sha256".into(),
                digits: 8,
            },
            Key {
                secret: seed(64),
                algorithm: "sha512".into(),
                digits: 8,
            },
        ];
        let table: [(u64, [&str; 3]); 6] = [
            (59, ["94287082", "46119246", "90693936"]),
            (1111111109, ["07081804", "68084774", "25091201"]),
            (1111111111, ["14050471", "67062674", "99943326"]),
            (1234567890, ["89005924", "91819424", "93441116"]),
            (2000000000, ["69279037", "90698825", "38618901"]),
            (20000000000, ["65353130", "77737706", "47863826"]),
        ];
        for (time, codes) in table {
            for (k, want) in keys.iter().zip(codes) {
                assert_eq!(k.code_at(time).unwrap(), want, "{} at {time}", k.algorithm);
                assert_eq!(k.matching_step(want, time, 0), Some(time / STEP));
            }
        }
    }

    #[test]
    fn skew_and_shape() {
        let k = Key::generate("sha1", 6).unwrap();
        assert_eq!(k.secret.len(), 20);
        let t = 1_800_000_000u64;
        let now = k.code_at(t).unwrap();
        let prev = k.code_at(t - STEP).unwrap();
        let next = k.code_at(t + STEP).unwrap();
        let far = k.code_at(t - 2 * STEP).unwrap();
        assert_eq!(k.matching_step(&now, t, 1), Some(t / STEP));
        assert_eq!(k.matching_step(&prev, t, 1), Some(t / STEP - 1));
        assert_eq!(k.matching_step(&next, t, 1), Some(t / STEP + 1));
        if far != now && far != prev && far != next {
            assert_eq!(k.matching_step(&far, t, 1), None);
        }
        assert_eq!(
            k.matching_step(&prev, t, 0),
            if prev == now { Some(t / STEP) } else { None }
        );
        for bad in ["", "12345", "1234567", "abcdef", &"9".repeat(100_000)] {
            assert_eq!(k.matching_step(bad, t, 1), None);
        }
    }

    #[test]
    fn uri_and_qr() {
        let k = Key {
            secret: b"12345678901234567890".to_vec(),
            algorithm: "sha1".into(),
            digits: 6,
        };
        assert_eq!(k.base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let uri = k.uri("Example Corp", "ann@web1");
        assert_eq!(
            uri,
            "otpauth://totp/Example%20Corp:ann%40web1?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Example%20Corp&algorithm=SHA1&digits=6&period=30"
        );
        let qr = qr_text(&uri).unwrap();
        assert!(qr.lines().count() > 15 && qr.contains('█'));
        let png = qr_png(&uri).unwrap();
        assert_eq!(&png[1..4], b"PNG");
    }

    #[test]
    fn backups() {
        let codes = backup_codes(10).unwrap();
        assert_eq!(codes.len(), 10);
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        let key = [1u8; 32];
        assert_ne!(
            backup_hash(&key, "a", &codes[0]).unwrap(),
            backup_hash(&key, "b", &codes[0]).unwrap()
        );
    }
}
