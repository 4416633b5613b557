//! Drives the built pam_mfa.so through the system's libpam: `pam_start_confdir` loads a
//! service file from a temporary directory (no /etc/pam.d edits), and a scripted
//! conversation answers each prompt (reading the passcode from the spool like a user reading
//! their mail).
#![allow(unsafe_code)]

use std::ffi::{CStr, CString, c_char, c_int, c_void};
use std::path::{Path, PathBuf};

pub const PAM_SUCCESS: i32 = 0;
pub const PAM_SERVICE_ERR: i32 = 3;
pub const PAM_PERM_DENIED: i32 = 6;
pub const PAM_AUTH_ERR: i32 = 7;
const PAM_CONV_ERR: c_int = 19;
const PAM_RHOST: c_int = 4;
const PAM_TTY: c_int = 3;

#[repr(C)]
struct PamMessage {
    style: c_int,
    msg: *const c_char,
}

#[repr(C)]
struct PamResponse {
    resp: *mut c_char,
    retcode: c_int,
}

#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut PamResponse, *mut c_void) -> c_int,
    appdata: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start_confdir(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        confdir: *const c_char,
        pamh: *mut *mut c_void,
    ) -> c_int;
    fn pam_set_item(pamh: *mut c_void, item: c_int, value: *const c_void) -> c_int;
    fn pam_authenticate(pamh: *mut c_void, flags: c_int) -> c_int;
    fn pam_end(pamh: *mut c_void, status: c_int) -> c_int;
}

/// One message the module sent: its style (1 echo off, 2 echo on, 3 error, 4 info) and text.
#[derive(Debug, Clone)]
pub struct Shown {
    pub style: i32,
    pub text: String,
}

/// Answers a prompt; `None` fails the conversation (Ctrl-C).
pub type Answer<'a> = Box<dyn FnMut(&str) -> Option<Vec<u8>> + 'a>;

/// Answers a prompt knowing everything shown so far (info messages before the prompt).
pub type SeeingAnswer<'a> = Box<dyn FnMut(&[Shown], &str) -> Option<Vec<u8>> + 'a>;

struct Script<'a> {
    answer: SeeingAnswer<'a>,
    shown: Vec<Shown>,
    panic: Option<Box<dyn std::any::Any + Send>>,
}

extern "C" fn conversation(
    n: c_int,
    msgs: *mut *const PamMessage,
    resps: *mut *mut PamResponse,
    data: *mut c_void,
) -> c_int {
    // SAFETY: libpam passes `n` valid messages and our own Script as appdata.
    let script = unsafe { &mut *(data as *mut Script<'_>) };
    let n = usize::try_from(n).unwrap_or(0);
    let out = unsafe { libc::calloc(n, std::mem::size_of::<PamResponse>()) as *mut PamResponse };
    for i in 0..n {
        let m = unsafe { &**msgs.add(i) };
        let text = unsafe { CStr::from_ptr(m.msg) }
            .to_string_lossy()
            .into_owned();
        script.shown.push(Shown {
            style: m.style,
            text: text.clone(),
        });
        if m.style == 1 || m.style == 2 {
            // A panic must not unwind into libpam: note it, fail the conversation, and
            // re-raise it once pam_authenticate has returned.
            let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                (script.answer)(&script.shown, &text)
            }));
            let answered = match answered {
                Ok(a) => a,
                Err(e) => {
                    script.panic = Some(e);
                    None
                }
            };
            match answered {
                Some(bytes) => {
                    let mut v = bytes.clone();
                    v.retain(|b| *b != 0);
                    v.push(0);
                    let p = unsafe { libc::malloc(v.len()) as *mut u8 };
                    unsafe { std::ptr::copy_nonoverlapping(v.as_ptr(), p, v.len()) };
                    unsafe { (*out.add(i)).resp = p as *mut c_char };
                }
                None => {
                    for j in 0..i {
                        unsafe { libc::free((*out.add(j)).resp as *mut c_void) };
                    }
                    unsafe { libc::free(out as *mut c_void) };
                    return PAM_CONV_ERR;
                }
            }
        }
    }
    unsafe { *resps = out };
    0
}

/// What one authentication returned and showed.
#[derive(Debug)]
pub struct Result {
    pub code: i32,
    pub shown: Vec<Shown>,
}

impl Result {
    pub fn prompts(&self) -> Vec<&str> {
        self.shown
            .iter()
            .filter(|s| s.style == 1 || s.style == 2)
            .map(|s| s.text.as_str())
            .collect()
    }
    pub fn said(&self, needle: &str) -> bool {
        self.shown.iter().any(|s| s.text.contains(needle))
    }
}

/// Runs pam_authenticate for `user` on `service` from the files in `confdir`.
pub fn authenticate(
    confdir: &Path,
    service: &str,
    user: &str,
    rhost: Option<&str>,
    mut answer: Answer<'_>,
) -> Result {
    authenticate_seeing(
        confdir,
        service,
        user,
        rhost,
        Box::new(move |_: &[Shown], p: &str| answer(p)),
    )
}

/// Like [`authenticate`], with an answer that sees what was shown before the prompt.
pub fn authenticate_seeing(
    confdir: &Path,
    service: &str,
    user: &str,
    rhost: Option<&str>,
    answer: SeeingAnswer<'_>,
) -> Result {
    authenticate_flags(confdir, service, user, rhost, answer, 0)
}

/// PAM_SILENT, for [`authenticate_flags`].
pub const PAM_SILENT: c_int = 0x8000;

/// Like [`authenticate_seeing`], with pam_authenticate's flags.
pub fn authenticate_flags(
    confdir: &Path,
    service: &str,
    user: &str,
    rhost: Option<&str>,
    answer: SeeingAnswer<'_>,
    flags: c_int,
) -> Result {
    authenticate_raw(
        confdir,
        service,
        user.as_bytes(),
        rhost.map(str::as_bytes),
        b"pts/7",
        answer,
        flags,
    )
}

/// The PAM items as raw bytes (PAM_USER, PAM_RHOST and PAM_TTY may hold anything an
/// application passes: the hostile-input tests), with pam_authenticate's flags.
pub fn authenticate_raw(
    confdir: &Path,
    service: &str,
    user: &[u8],
    rhost: Option<&[u8]>,
    tty: &[u8],
    answer: SeeingAnswer<'_>,
    flags: c_int,
) -> Result {
    let mut script = Script {
        answer,
        shown: Vec::new(),
        panic: None,
    };
    let conv = PamConv {
        conv: conversation,
        appdata: &mut script as *mut Script<'_> as *mut c_void,
    };
    let (svc, usr, dir) = (
        CString::new(service).unwrap(),
        CString::new(user).unwrap(),
        CString::new(confdir.to_str().unwrap()).unwrap(),
    );
    let mut pamh: *mut c_void = std::ptr::null_mut();
    let rc =
        unsafe { pam_start_confdir(svc.as_ptr(), usr.as_ptr(), &conv, dir.as_ptr(), &mut pamh) };
    assert_eq!(rc, PAM_SUCCESS, "pam_start_confdir failed");
    if let Some(h) = rhost {
        let h = CString::new(h).unwrap();
        unsafe { pam_set_item(pamh, PAM_RHOST, h.as_ptr() as *const c_void) };
    }
    let tty = CString::new(tty).unwrap();
    unsafe { pam_set_item(pamh, PAM_TTY, tty.as_ptr() as *const c_void) };
    let code = unsafe { pam_authenticate(pamh, flags) };
    unsafe { pam_end(pamh, code) };
    if let Some(p) = script.panic.take() {
        std::panic::resume_unwind(p);
    }
    Result {
        code,
        shown: script.shown,
    }
}

/// The module, built now: `cargo test` does not build a cdylib for integration tests
/// (rust-lang/cargo#8311), so without this a test could load a stale libpam_mfa.so.
pub fn module_path() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let exe = std::env::current_exe().unwrap();
            let profile_dir = exe.parent().unwrap().parent().unwrap();
            let profile = match profile_dir.file_name().unwrap().to_str().unwrap() {
                "debug" => "dev",
                other => other,
            };
            let status = std::process::Command::new(env!("CARGO"))
                .args([
                    "build",
                    "--offline",
                    "-q",
                    "-p",
                    "pam_mfa",
                    "--lib",
                    "--profile",
                    profile,
                    "--target-dir",
                ])
                .arg(profile_dir.parent().unwrap())
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .unwrap();
            assert!(status.success(), "cargo build -p pam_mfa failed");
            let p = profile_dir.join("libpam_mfa.so");
            assert!(p.exists(), "{} not built", p.display());
            p
        })
        .clone()
}
