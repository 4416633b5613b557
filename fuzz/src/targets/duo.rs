//! The Duo broker's frames (`mfa_core::duo`): the broker reads a request from each root peer,
//! the module and mfa-admin read the broker's replies. Oracles: reading never panics or
//! allocates past `MAX_FRAME`; whatever is accepted encodes to a frame that reads back equal
//! (a request or a reply that means two things to the two sides cannot exist).

use std::path::Path;

use mfa_core::duo::{self, AuthResult, Device, Factor, Preauth, Reply, Request};

use super::{Harness, fail, tokens};
use crate::engine::Rng;

struct DuoTarget;

pub fn duo(_dir: &Path) -> Result<Box<dyn Harness>, String> {
    Ok(Box::new(DuoTarget))
}

fn frame<T: serde::Serialize>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = duo::write_frame(&mut out, v);
    out
}

/// Reads one `T` from `input`; if accepted, it must encode and read back equal.
fn round_trip<T>(input: &[u8]) -> Result<bool, String>
where
    T: serde::Serialize + for<'de> serde::Deserialize<'de> + PartialEq + std::fmt::Debug,
{
    let Ok(v) = duo::read_frame::<T>(&mut std::io::Cursor::new(input)) else {
        return Ok(false);
    };
    let again = frame(&v);
    if again.len() > duo::MAX_FRAME + 4 {
        return fail("an accepted frame encodes past MAX_FRAME");
    }
    match duo::read_frame::<T>(&mut again.as_slice()) {
        Ok(back) if back == v => Ok(true),
        Ok(back) => fail(format!("read back differs: {v:?} / {back:?}")),
        Err(e) => fail(format!("an accepted frame does not read back: {e}")),
    }
}

impl Harness for DuoTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        vec![
            frame(&Request::Ping),
            frame(&Request::Preauth {
                username: "ann".into(),
                ipaddr: Some("192.0.2.1".into()),
                hostname: "web1".into(),
            }),
            frame(&Request::Auth {
                username: "ann".into(),
                factor: Factor::Passcode,
                device: None,
                passcode: Some("123456".into()),
                ipaddr: None,
                hostname: "web1".into(),
                pushinfo: vec![("Service".into(), "sshd".into())],
            }),
            frame(&Reply::Progress {
                text: "Pushed".into(),
            }),
            frame(&Reply::Preauth(Preauth {
                result: "auth".into(),
                status_msg: "Account is active".into(),
                enroll_portal_url: None,
                devices: vec![Device {
                    device: "DPFZRS9FB0D46QFTM891".into(),
                    display_name: "iOS (XXX-XXX-1234)".into(),
                    kind: "phone".into(),
                    capabilities: vec!["push".into()],
                }],
            })),
            frame(&Reply::Auth(AuthResult {
                result: "allow".into(),
                status: "allow".into(),
                status_msg: "Success".into(),
                txid: "45f7c92b".into(),
            })),
            frame(&Reply::Error {
                kind: duo::ErrorKind::Credentials,
                message: "Invalid signature".into(),
            }),
        ]
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        let mut d = tokens(&[
            "\"op\"",
            "\"reply\"",
            "\"preauth\"",
            "\"auth\"",
            "\"ping\"",
            "\"progress\"",
            "\"error\"",
            "\"factor\"",
            "\"push\"",
            "\"passcode\"",
            "\"devices\"",
            "\"result\"",
            "\"allow\"",
            "null",
            "{}",
            "[]",
            "\\u0000",
            "\\ud800",
        ]);
        d.extend([
            vec![0, 0, 0, 0],
            vec![0xff, 0xff, 0xff, 0xff],
            vec![0, 1, 0, 1],
        ]);
        d
    }

    fn fixup(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        // Half the time, make the length right.
        if rng.chance(2)
            && input.len() >= 4
            && let Ok(n) = u32::try_from(input.len() - 4)
        {
            input[..4].copy_from_slice(&n.to_be_bytes());
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let a = round_trip::<Request>(input)?;
        let b = round_trip::<Reply>(input)?;
        Ok(a || b)
    }
}
