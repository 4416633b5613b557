//! The PAM conversation as an `mfa_core::auth::Conversation`.

use mfa_core::auth::{ConvError, Conversation};
use pam::constants::{PAM_ERROR_MSG, PAM_PROMPT_ECHO_OFF, PAM_PROMPT_ECHO_ON, PAM_TEXT_INFO};
use pam::conv::Conv;
use pam::module::PamHandle;

/// Talks to the user through the application's conversation function. With PAM_SILENT
/// (`silent`) it sends prompts and what the user needs to answer them (menus, a key to
/// enrol) and no other messages, as Linux-PAM asks of modules.
pub struct PamConversation<'a> {
    pamh: &'a PamHandle,
    silent: bool,
}

impl<'a> PamConversation<'a> {
    pub fn new(pamh: &'a PamHandle, silent: bool) -> Self {
        PamConversation { pamh, silent }
    }

    fn send(
        &mut self,
        style: pam::constants::PamMessageStyle,
        text: &str,
    ) -> Result<Option<Vec<u8>>, ConvError> {
        let conv = match self.pamh.get_item::<Conv<'_>>() {
            Ok(Some(c)) => c,
            _ => return Err(ConvError),
        };
        // A NUL inside the text cannot cross the C API; our texts never contain one.
        let clean = text.replace('\0', "");
        match conv.send(style, &clean) {
            Ok(r) => Ok(r.map(|s| s.as_bytes().to_vec())),
            Err(_) => Err(ConvError),
        }
    }
}

impl Conversation for PamConversation<'_> {
    fn prompt(&mut self, text: &str, echo: bool) -> Result<Vec<u8>, ConvError> {
        let style = if echo {
            PAM_PROMPT_ECHO_ON
        } else {
            PAM_PROMPT_ECHO_OFF
        };
        // No answer at all (a NULL response) is an interrupted conversation.
        self.send(style, text)?.ok_or(ConvError)
    }

    fn info(&mut self, text: &str) -> Result<(), ConvError> {
        if self.silent {
            return Ok(());
        }
        self.send(PAM_TEXT_INFO, text).map(|_| ())
    }

    fn error(&mut self, text: &str) -> Result<(), ConvError> {
        if self.silent {
            return Ok(());
        }
        self.send(PAM_ERROR_MSG, text).map(|_| ())
    }

    fn show(&mut self, text: &str) -> Result<(), ConvError> {
        self.send(PAM_TEXT_INFO, text).map(|_| ())
    }
}
