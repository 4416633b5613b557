//! Tests of the helper protocol: every frame round-trips, and hostile bytes (truncated,
//! oversized, unknown, malformed, random) are errors, never panics or large allocations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;

fn ask(mode: Mode, secret: Option<&[u8]>) -> Ask {
    Ask {
        mode,
        fail_mode: FailMode::Safe,
        separator: b',',
        service: "postgresql".into(),
        user: "alice".into(),
        rhost: "127.0.0.1".into(),
        tty: "".into(),
        secret: secret.map(|s| Secret(s.to_vec())),
    }
}

fn every_frame() -> Vec<Frame> {
    vec![
        Frame::Ask(ask(Mode::Plain, None)),
        Frame::Ask(ask(Mode::Before, Some(b"hunter2,123456"))),
        Frame::Ask(ask(Mode::After, Some(b"123456"))),
        Frame::Ask(ask(Mode::After, None)),
        Frame::Prompt {
            text: "Passcode V- (sent to a***@example.com): ".into(),
            echo: false,
        },
        Frame::Prompt {
            text: "Choose: ".into(),
            echo: true,
        },
        Frame::Message {
            kind: Message::Info,
            text: "é info".into(),
        },
        Frame::Message {
            kind: Message::Show,
            text: "a key".into(),
        },
        Frame::Message {
            kind: Message::Error,
            text: "denied".into(),
        },
        Frame::Answer(Secret(b"123456".to_vec())),
        Frame::Answer(Secret(Vec::new())),
        Frame::Shown,
        Frame::ConvFailed,
        Frame::Outcome(Outcome::Success {
            method: "totp".into(),
            destination: "".into(),
        }),
        Frame::Outcome(Outcome::Ignore {
            reason: "trusted network".into(),
        }),
        Frame::Outcome(Outcome::Deny {
            reason: "wrong code".into(),
        }),
        Frame::Outcome(Outcome::Unavailable {
            reason: "store".into(),
            fail_mode: FailMode::Secure,
        }),
        Frame::Outcome(Outcome::Unavailable {
            reason: "store".into(),
            fail_mode: FailMode::Safe,
        }),
        Frame::Before(BeforeReply::Ignore),
        Frame::Before(BeforeReply::Split(7)),
        Frame::Before(BeforeReply::Success(Outcome::Success {
            method: "passcode".into(),
            destination: "a@example.com".into(),
        })),
        Frame::Refused("caller uid 1000 (bob) is not in [callers]".into()),
    ]
}

#[test]
fn every_frame_round_trips() {
    let mut stream = Vec::new();
    for f in every_frame() {
        let bytes = f.encode().unwrap();
        let (back, used) = decode(&bytes).unwrap();
        assert_eq!((back, used), (f.clone(), bytes.len()));
        stream.extend_from_slice(&bytes);
    }
    // The same frames read back from one stream, then the end of it.
    let mut r = std::io::Cursor::new(stream);
    for f in every_frame() {
        assert_eq!(read_frame(&mut r).unwrap(), f);
    }
    assert_eq!(read_frame(&mut r), Err(ProtoError::Closed));
}

#[test]
fn every_truncation_is_an_error() {
    for f in every_frame() {
        let bytes = f.encode().unwrap();
        for n in 0..bytes.len() {
            let e = decode(&bytes[..n]).unwrap_err();
            let want_closed = n == 0;
            assert_eq!(e == ProtoError::Closed, want_closed, "{f:?} at {n}: {e}");
            let mut r = std::io::Cursor::new(bytes[..n].to_vec());
            let e = read_frame(&mut r).unwrap_err();
            assert!(
                matches!(e, ProtoError::Closed | ProtoError::Truncated { .. }),
                "{f:?} at {n}: {e}"
            );
        }
    }
}

/// A length of 4 GiB is refused from the header alone: nothing is allocated for it.
#[test]
fn oversized_frames_are_refused_before_reading_them() {
    let mut bytes = vec![b'A'];
    bytes.extend_from_slice(&u32::MAX.to_be_bytes());
    let e = read_frame(&mut std::io::Cursor::new(bytes.clone())).unwrap_err();
    assert!(
        matches!(e, ProtoError::Oversized { what: "frame", .. }),
        "{e}"
    );
    assert!(e.to_string().contains("at most 16384"), "{e}");
    let e = decode(&bytes).unwrap_err();
    assert!(matches!(e, ProtoError::Oversized { .. }), "{e}");
    // An answer longer than any PAM answer, inside a frame of legal size.
    let mut a = vec![b'A'];
    a.extend_from_slice(&2000u32.to_be_bytes());
    a.extend_from_slice(&[b'1'; 2000]);
    let e = decode(&a).unwrap_err();
    assert!(
        matches!(e, ProtoError::Oversized { what: "answer", .. }),
        "{e}"
    );
    // Encoding refuses them too.
    let e = Frame::Answer(Secret(vec![b'1'; MAX_SECRET + 1]))
        .encode()
        .unwrap_err();
    assert!(matches!(e, ProtoError::Oversized { .. }), "{e}");
    let mut big = ask(Mode::Plain, None);
    big.user = "u".repeat(MAX_NAME + 1);
    assert!(Frame::Ask(big).encode().is_err());
    // A long text is cut, at a character boundary, and still decodes.
    let f = Frame::Refused("é".repeat(MAX_TEXT));
    let (back, _) = decode(&f.encode().unwrap()).unwrap();
    let Frame::Refused(r) = back else {
        panic!("{back:?}")
    };
    assert!(r.len() <= MAX_TEXT && r.len() > MAX_TEXT - 2, "{}", r.len());
}

fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    v.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    v.extend_from_slice(payload);
    v
}

#[test]
fn unknown_and_malformed_frames_name_what_was_wrong() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (frame(b'Z', b""), "unknown frame tag 0x5a"),
        (frame(0, b""), "unknown frame tag 0x00"),
        (frame(b'R', &[2, 0, 0, b',']), "protocol version 2"),
        (frame(b'R', &[1, 9, 0, b',']), "unknown mode 9"),
        (frame(b'R', &[1, 0, 7, b',']), "unknown fail mode 7"),
        (frame(b'R', &[1, 0, 0, b'-']), "separator 0x2d"),
        (
            frame(b'R', &[1, 0, 0, b',', 0, 5, b'a']),
            "service: 5 bytes announced",
        ),
        (
            frame(b'O', &[9, 0, 0, 0, 0, 0, 0]),
            "unknown outcome kind 9",
        ),
        (
            frame(b'O', &[2, 0, 0, 0, 1, b'x', 0, 0]),
            "method or destination",
        ),
        (
            frame(b'O', &[0, 0, 1, b'x', 0, 0, 0, 0]),
            "a reason on a success",
        ),
        (frame(b'O', &[1, 0, 0, 0, 0, 0, 0, 0xff]), "stray bytes"),
        (frame(b'B', &[3]), "unknown before kind 3"),
        (frame(b'B', &[1, 0, 0, 0x10, 0]), "beyond any field"),
        (frame(b'B', &[2, 2, 0, 0, 0, 0, 0, 0]), "not a success"),
        (frame(b'F', &[0, 2, 0xff, 0xfe]), "not UTF-8"),
        (frame(b'F', &[0, 2, b'a', 0]), "contains NUL"),
        (frame(b'K', b"x"), "stray bytes"),
        (frame(b'P', &[0xff, 0xff]), "oversized prompt"),
    ];
    for (bytes, want) in cases {
        let e = decode(&bytes).unwrap_err().to_string();
        assert!(e.contains(want), "{bytes:?}: {e:?} lacks {want:?}");
    }
    // An ask whose field does not fit its mode.
    let mut plain = frame(b'R', &[1, 0, 0, b',']);
    let body: Vec<u8> = [0u8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, b'x'].to_vec();
    plain.extend_from_slice(&body);
    plain[1..5].copy_from_slice(&((4 + body.len()) as u32).to_be_bytes());
    let e = decode(&plain).unwrap_err().to_string();
    assert!(e.contains("plain ask carries no field"), "{e}");
    assert!(Frame::Ask(ask(Mode::Before, None)).encode().is_err());
    let mut nul = ask(Mode::Plain, None);
    nul.rhost = "a\0b".into();
    assert!(Frame::Ask(nul).encode().is_err());
}

/// Random bytes and mutations of real frames: decode answers (Ok or Err) without panicking,
/// and whatever it accepts encodes back to the same bytes.
#[test]
fn hostile_bytes_never_panic() {
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let seeds: Vec<Vec<u8>> = every_frame().iter().map(|f| f.encode().unwrap()).collect();
    for i in 0..20_000 {
        let mut b = if i % 4 == 0 {
            (0..(next() % 64))
                .map(|_| next() as u8)
                .collect::<Vec<u8>>()
        } else {
            seeds[(next() as usize) % seeds.len()].clone()
        };
        for _ in 0..(next() % 4) {
            if b.is_empty() {
                break;
            }
            let at = (next() as usize) % b.len();
            match next() % 3 {
                0 => b[at] ^= 1 << (next() % 8),
                1 => {
                    b.remove(at);
                }
                _ => b.insert(at, next() as u8),
            }
        }
        if let Ok((f, used)) = decode(&b) {
            assert_eq!(f.encode().unwrap(), b[..used].to_vec(), "{b:?}");
        }
        let _ = read_frame(&mut std::io::Cursor::new(b));
    }
}

#[test]
fn secrets_stay_out_of_debug() {
    let f = Frame::Ask(ask(Mode::Before, Some(b"hunter2,123456")));
    let d = format!("{f:?}");
    assert!(!d.contains("hunter2") && !d.contains("123456"), "{d}");
    assert!(d.contains("<14 bytes>"), "{d}");
    let d = format!("{:?}", Frame::Answer(Secret(b"654321".to_vec())));
    assert!(!d.contains("654321"), "{d}");
}

#[test]
fn before_replies_carry_an_index_never_the_password() {
    let field = b"pass,word,123456";
    let found = Before::Split {
        password: b"pass,word".to_vec(),
        code: b"123456".to_vec(),
    };
    let r = BeforeReply::of(field, b',', found).unwrap();
    assert_eq!(r, BeforeReply::Split(9));
    let bytes = Frame::Before(r.clone()).encode().unwrap();
    assert!(!bytes.windows(4).any(|w| w == b"pass"), "{bytes:?}");
    match r.apply(field, b',').unwrap() {
        Before::Split { password, code } => {
            assert_eq!(
                (password.as_slice(), code.as_slice()),
                (&b"pass,word"[..], &b"123456"[..])
            )
        }
        other => panic!("{other:?}"),
    }
    // A split that is not at a separator, or leaves a part empty, is not trusted.
    for i in [0, 3, 15, 16, 500] {
        assert_eq!(BeforeReply::Split(i).apply(field, b','), None, "{i}");
    }
    assert_eq!(BeforeReply::Split(4).apply(field, b';'), None);
    // And `of` refuses a split that does not match the field.
    let wrong = Before::Split {
        password: b"other".to_vec(),
        code: b"123456".to_vec(),
    };
    assert_eq!(BeforeReply::of(field, b',', wrong), None);
}

/// A peer that never answers: the timed read gives up at the deadline.
#[test]
fn timed_reads_stop_at_the_deadline() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let start = Instant::now();
    let mut r = Timed {
        fd: a,
        deadline: start + Duration::from_millis(200),
    };
    let e = read_frame(&mut r).unwrap_err();
    assert_eq!(e, ProtoError::TimedOut);
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(190) && took < Duration::from_secs(5),
        "{took:?}"
    );
    // A closed peer is Closed, at once.
    let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    drop(b);
    let mut r = Timed {
        fd: a,
        deadline: Instant::now() + Duration::from_secs(30),
    };
    assert_eq!(read_frame(&mut r), Err(ProtoError::Closed));
}
