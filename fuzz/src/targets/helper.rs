//! The protocol between pam_mfa and its setuid helper mfa-check (`mfa_core::helper`): the
//! helper reads frames a hostile unprivileged caller writes, as root. Oracles: whatever
//! `decode` accepts encodes back to the same bytes, `read_frame` on a stream agrees with
//! `decode`, and a before reply applied to a field never yields parts that are not the
//! field's.

use std::path::Path;

use mfa_core::auth::{Before, Outcome};
use mfa_core::helper::{self, Ask, BeforeReply, Frame, Message, Mode, Secret};
use mfa_core::settings::FailMode;

use super::{Harness, fail, tokens};
use crate::engine::Rng;

struct HelperTarget;

pub fn helper(_dir: &Path) -> Result<Box<dyn Harness>, String> {
    Ok(Box::new(HelperTarget))
}

fn ask(mode: Mode, secret: Option<&[u8]>) -> Frame {
    Frame::Ask(Ask {
        mode,
        fail_mode: FailMode::Secure,
        separator: b',',
        service: "postgresql".into(),
        user: "alice".into(),
        rhost: "192.0.2.1".into(),
        tty: "pts/1".into(),
        secret: secret.map(|s| Secret(s.to_vec())),
    })
}

impl Harness for HelperTarget {
    fn seeds(&self) -> Vec<Vec<u8>> {
        let frames = [
            ask(Mode::Plain, None),
            ask(Mode::Before, Some(b"pw,123456")),
            ask(Mode::After, Some(b"V-123456")),
            Frame::Prompt {
                text: "Passcode V- (sent to a***@e***.com): ".into(),
                echo: false,
            },
            Frame::Message {
                kind: Message::Error,
                text: "Second factor: access denied.".into(),
            },
            Frame::Answer(Secret(b"123456".to_vec())),
            Frame::Shown,
            Frame::ConvFailed,
            Frame::Outcome(Outcome::Success {
                method: "totp".into(),
                destination: String::new(),
            }),
            Frame::Outcome(Outcome::Unavailable {
                reason: "store".into(),
                fail_mode: FailMode::Safe,
            }),
            Frame::Before(BeforeReply::Split(2)),
            Frame::Refused("not in [callers]".into()),
        ];
        let mut seeds: Vec<Vec<u8>> = frames.iter().filter_map(|f| f.encode().ok()).collect();
        // A whole conversation in one stream.
        seeds.push(seeds.concat());
        seeds
    }

    fn dictionary(&self) -> Vec<Vec<u8>> {
        let mut d = tokens(&["R", "A", "K", "X", "P", "p", "I", "S", "E", "O", "B", "F"]);
        d.extend([
            vec![0, 0, 0, 0],
            vec![0xff, 0xff, 0xff, 0xff],
            vec![0, 0, 0x40, 0],
            vec![0, 0, 0x40, 1],
            vec![1],
            vec![0xff, 0xff],
        ]);
        d
    }

    fn fixup(&self, rng: &mut Rng, input: &mut Vec<u8>) {
        // Half the time, make the first frame's length right.
        if rng.chance(2)
            && input.len() >= helper::HEADER
            && let Ok(n) = u32::try_from(input.len() - helper::HEADER)
        {
            input[1..5].copy_from_slice(&n.to_be_bytes());
        }
    }

    fn run(&mut self, input: &[u8]) -> Result<bool, String> {
        let decoded = helper::decode(input);
        let streamed = helper::read_frame(&mut std::io::Cursor::new(input));
        match (&decoded, &streamed) {
            (Ok((a, _)), Ok(b)) if a != b => {
                return fail(format!("decode and read_frame differ: {a:?} / {b:?}"));
            }
            (Ok(_), Err(e)) => return fail(format!("decode accepted, read_frame refused: {e}")),
            (Err(e), Ok(_)) => return fail(format!("read_frame accepted, decode refused: {e}")),
            _ => {}
        }
        let Ok((frame, used)) = decoded else {
            return Ok(false);
        };
        let again = frame
            .encode()
            .map_err(|e| format!("an accepted frame does not encode: {e}"))?;
        if again != input[..used] {
            return fail("encode of an accepted frame differs from its bytes");
        }
        if let Frame::Before(reply) = &frame {
            let field = input;
            if let Some(Before::Split { password, code }) = reply.apply(field, b',') {
                let mut joined = password.clone();
                joined.push(b',');
                joined.extend_from_slice(&code);
                if joined != field || password.is_empty() || code.is_empty() {
                    return fail("a split that is not the field's");
                }
            }
        }
        Ok(true)
    }
}
