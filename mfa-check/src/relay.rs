//! The conversation of an authentication decided here, relayed to the module over the
//! channel: each prompt or message is a frame, each answer the module's frame back. Bounded:
//! at most [`MAX_EXCHANGES`] frames, answers of at most [`helper::MAX_SECRET`] bytes, all
//! before the deadline of the channel's reader. A broken channel (closed, timed out,
//! garbage) fails the conversation, and every later call fails at once without I/O.

use std::io::{Read, Write};

use mfa_core::auth::{ConvError, Conversation};
use mfa_core::helper::{self, Frame, MAX_EXCHANGES, Message, ProtoError};

pub struct Relay<'a> {
    pub input: &'a mut dyn Read,
    pub output: &'a mut dyn Write,
    exchanges: usize,
    /// Why the channel broke, if it did (for the syslog line).
    pub broken: Option<String>,
}

impl<'a> Relay<'a> {
    pub fn new(input: &'a mut dyn Read, output: &'a mut dyn Write) -> Self {
        Relay {
            input,
            output,
            exchanges: 0,
            broken: None,
        }
    }

    /// Sends a frame; returns the module's reply.
    fn exchange(&mut self, frame: &Frame) -> Result<Frame, ConvError> {
        if self.broken.is_some() {
            return Err(ConvError);
        }
        self.exchanges += 1;
        if self.exchanges > MAX_EXCHANGES {
            self.broken = Some(format!("more than {MAX_EXCHANGES} conversation frames"));
            return Err(ConvError);
        }
        let sent = frame.encode().map_err(|e| e.to_string()).and_then(|b| {
            self.output
                .write_all(&b)
                .and_then(|()| self.output.flush())
                .map_err(|e| format!("write: {e}"))
        });
        if let Err(e) = sent {
            self.broken = Some(e);
            return Err(ConvError);
        }
        match helper::read_frame(self.input) {
            Ok(f) => Ok(f),
            Err(e) => {
                self.broken = Some(match e {
                    ProtoError::Closed => "the caller closed the channel".into(),
                    e => e.to_string(),
                });
                Err(ConvError)
            }
        }
    }

    fn message(&mut self, kind: Message, text: &str) -> Result<(), ConvError> {
        match self.exchange(&Frame::Message {
            kind,
            text: text.into(),
        })? {
            Frame::Shown => Ok(()),
            Frame::ConvFailed => Err(ConvError),
            other => self.unexpected(&other),
        }
    }

    fn unexpected<T>(&mut self, f: &Frame) -> Result<T, ConvError> {
        self.broken = Some(format!("unexpected frame from the caller: {}", f.kind()));
        Err(ConvError)
    }
}

impl Conversation for Relay<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Vec<u8>, ConvError> {
        match self.exchange(&Frame::Prompt {
            text: text.into(),
            echo,
        })? {
            Frame::Answer(mut a) => Ok(std::mem::take(&mut a.0)),
            Frame::ConvFailed => Err(ConvError),
            other => self.unexpected(&other),
        }
    }

    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        self.message(Message::Info, text)
    }

    fn show(&mut self, text: &str) -> Result<(), ConvError> {
        self.message(Message::Show, text)
    }

    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        self.message(Message::Error, text)
    }
}
