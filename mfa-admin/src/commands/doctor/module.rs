//! Finds the file a PAM line names and checks that libpam could load it: it exists, is a
//! regular file only root can change, and `dlopen(RTLD_NOW)` accepts it. The load runs in a
//! forked child (a module's constructor that crashes or hangs cannot take doctor with it),
//! which reports `dlerror()` through a pipe. A `required` module that does not load refuses
//! every login of the services that stack it.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io::Read;
use std::os::fd::FromRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::libc;

/// How long a module may take to load.
const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

/// Where libpam looks for a module named without a directory: the first of these that
/// exists (Debian's multiarch directory, else the others distributions use).
pub fn module_dirs() -> Vec<PathBuf> {
    let arch = std::env::consts::ARCH;
    [
        format!("/lib/{arch}-linux-gnu/security"),
        format!("/usr/lib/{arch}-linux-gnu/security"),
        "/lib/security".into(),
        "/usr/lib/security".into(),
        "/lib64/security".into(),
        "/usr/lib64/security".into(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

/// The file a module name resolves to: an absolute path as is, anything else under the
/// first of `dirs` that exists, as libpam looks in its one module directory only (a module
/// found in another directory would not load at login).
pub fn resolve(module: &str, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    if module.is_empty() {
        return Err("the line names no module".into());
    }
    if module.starts_with('/') {
        let p = PathBuf::from(module);
        return if p.exists() {
            Ok(p)
        } else {
            Err(format!("{module} does not exist"))
        };
    }
    let dir = dirs.iter().find(|d| d.is_dir()).or(dirs.first());
    dir.map(|d| d.join(module))
        .filter(|p| p.exists())
        .ok_or_else(|| {
            let d = dir.map_or_else(
                || "the module directory".into(),
                |d| d.display().to_string(),
            );
            format!("{module} is not in {d}, where libpam looks for it")
        })
}

/// Checks one module file: Ok(path) when it exists, is safe and loads; else what is wrong.
pub fn check(module: &str, dirs: &[PathBuf]) -> Result<PathBuf, String> {
    let path = resolve(module, dirs)?;
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    if meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} (owner uid {}, mode {:04o}) can be changed by someone other than root, who would \
             run code as root at every login: chown root: {p}; chmod go-w {p}",
            path.display(),
            meta.uid(),
            meta.mode() & 0o7777,
            p = path.display()
        ));
    }
    // The directories too, on the way as written and to the real file: one that someone
    // other than root can write lets them swap the module (a sticky one, like /tmp, does not).
    let real = std::fs::canonicalize(&path).unwrap_or_else(|_| path.clone());
    for dir in path.ancestors().skip(1).chain(real.ancestors().skip(1)) {
        let Ok(m) = std::fs::metadata(dir) else {
            continue;
        };
        if m.uid() != 0 || (m.mode() & 0o022 != 0 && m.mode() & 0o1000 == 0) {
            return Err(format!(
                "{} is in {} (owner uid {}, mode {:04o}), which someone other than root can \
                 write: they could put code of theirs there, run as root at every login; \
                 chown root: {d}; chmod go-w {d}, or install the module elsewhere",
                path.display(),
                dir.display(),
                m.uid(),
                m.mode() & 0o7777,
                d = dir.display()
            ));
        }
    }
    load(&path).map_err(|e| format!("{} does not load: {e}", path.display()))?;
    Ok(path)
}

/// `dlopen(path, RTLD_NOW)` then `dlclose` in a child process; the `dlerror()` text when it
/// fails.
pub fn load(path: &Path) -> Result<(), String> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| "the path contains a NUL byte".to_string())?;
    let mut fds = [0; 2];
    // SAFETY: fds has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("pipe: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: doctor runs on one thread, so the child may call dlopen (it takes locks that
    // no other thread can hold at the fork). The child only loads, reports and _exits.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = std::io::Error::last_os_error();
        // SAFETY: our own descriptors, closed once.
        unsafe {
            libc::close(fds[0]);
            libc::close(fds[1]);
        }
        return Err(format!("fork: {e}"));
    }
    if pid == 0 {
        // SAFETY: in the child; c is a valid C string; dlerror's text is valid until the
        // next dl call; _exit never returns and runs no Rust destructors or atexit handlers.
        unsafe {
            libc::close(fds[0]);
            let h = libc::dlopen(c.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL);
            if h.is_null() {
                let e = libc::dlerror();
                if !e.is_null() {
                    libc::write(fds[1], e.cast(), libc::strlen(e));
                }
                libc::_exit(1);
            }
            libc::dlclose(h);
            libc::_exit(0);
        }
    }
    // SAFETY: the write end is ours to close; the read end is owned by the File from here.
    unsafe { libc::close(fds[1]) };
    let mut pipe = unsafe { std::fs::File::from_raw_fd(fds[0]) };
    let deadline = Instant::now() + LOAD_TIMEOUT;
    let mut text = Vec::new();
    let mut timed_out = false;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fds[0],
            events: libc::POLLIN,
            revents: 0,
        };
        let ms = i32::try_from(left.as_millis()).unwrap_or(i32::MAX);
        // SAFETY: one valid pollfd.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r == 0 || left.is_zero() {
            timed_out = true;
            break;
        }
        if r < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        let mut buf = [0u8; 1024];
        match pipe.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) if text.len() < 4096 => text.extend_from_slice(&buf[..n]),
            Ok(_) => {}
        }
    }
    if timed_out {
        // SAFETY: pid is our child, not yet reaped.
        unsafe { libc::kill(pid, libc::SIGKILL) };
    }
    let mut status = 0;
    // SAFETY: pid is our child; status is a valid out pointer.
    while unsafe { libc::waitpid(pid, &mut status, 0) } < 0 {
        if std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitpid: {}", std::io::Error::last_os_error()));
        }
    }
    if timed_out {
        return Err(format!(
            "loading it did not finish in {} s",
            LOAD_TIMEOUT.as_secs()
        ));
    }
    let text = String::from_utf8_lossy(&text).trim().to_string();
    if libc::WIFSIGNALED(status) {
        return Err(format!(
            "loading it killed the process (signal {})",
            libc::WTERMSIG(status)
        ));
    }
    match libc::WEXITSTATUS(status) {
        0 => Ok(()),
        _ if !text.is_empty() => Err(text),
        code => Err(format!("dlopen failed (exit {code})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_a_library_and_reports_garbage() {
        let libc_so = [
            "/lib/x86_64-linux-gnu/libc.so.6",
            "/lib64/libc.so.6",
            "/usr/lib/libc.so.6",
        ]
        .iter()
        .map(Path::new)
        .find(|p| p.exists());
        if let Some(p) = libc_so {
            assert_eq!(load(p), Ok(()));
        }
        let d = tempfile::tempdir().unwrap();
        let bad = d.path().join("pam_bad.so");
        std::fs::write(&bad, b"\x7fELF garbage garbage garbage").unwrap();
        let e = load(&bad).unwrap_err();
        assert!(e.contains("pam_bad.so"), "dlerror names the file: {e}");
        let e = load(&d.path().join("none.so")).unwrap_err();
        assert!(e.contains("No such file"), "{e}");
        assert!(
            resolve("pam_nonexistent_x.so", &[d.path().into()])
                .unwrap_err()
                .contains("is not in")
        );
        assert!(
            resolve("/nonexistent/pam_x.so", &[])
                .unwrap_err()
                .contains("does not exist")
        );
    }

    /// A root-owned module in a directory someone else can write (or reached through
    /// one) can be replaced by them: code of theirs would run as root at every login.
    #[test]
    fn a_module_in_a_directory_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root (root-owned files)");
            return;
        }
        let libc_so = Path::new("/lib/x86_64-linux-gnu/libc.so.6");
        if !libc_so.exists() {
            return;
        }
        let d = tempfile::tempdir().unwrap();
        std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let open = d.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let module = open.join("pam_mfa.so");
        std::fs::copy(libc_so, &module).unwrap();
        std::fs::set_permissions(&module, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = check(module.to_str().unwrap(), &[]).unwrap_err();
        assert!(e.contains("open") && e.contains("chmod go-w"), "{e}");
        // Reached through a link in that directory: refused too.
        let closed = d.path().join("closed");
        std::fs::create_dir(&closed).unwrap();
        std::fs::rename(&module, closed.join("pam_mfa.so")).unwrap();
        std::os::unix::fs::symlink(closed.join("pam_mfa.so"), &module).unwrap();
        assert!(check(module.to_str().unwrap(), &[]).is_err());
        // Safe directories: it loads.
        let ok = check(closed.join("pam_mfa.so").to_str().unwrap(), &[]);
        assert_eq!(ok, Ok(closed.join("pam_mfa.so")));
    }

    /// libpam looks for a bare module name in ONE directory (Debian's libpam: only
    /// /lib/x86_64-linux-gnu/security/). A pam_mfa.so installed elsewhere (/lib/security)
    /// does not load at login: doctor must not find it there and say OK.
    #[test]
    fn a_bare_name_is_looked_up_where_libpam_looks_only() {
        let d = tempfile::tempdir().unwrap();
        let (pam_dir, other) = (d.path().join("multiarch"), d.path().join("security"));
        std::fs::create_dir(&pam_dir).unwrap();
        std::fs::create_dir(&other).unwrap();
        std::fs::write(other.join("pam_mfa.so"), b"").unwrap();
        let dirs = [d.path().join("absent"), pam_dir.clone(), other.clone()];
        let e = resolve("pam_mfa.so", &dirs).unwrap_err();
        assert!(
            e.contains("is not in") && e.contains("multiarch") && !e.contains("absent"),
            "{e}"
        );
        std::fs::write(pam_dir.join("pam_mfa.so"), b"").unwrap();
        assert_eq!(resolve("pam_mfa.so", &dirs), Ok(pam_dir.join("pam_mfa.so")));
    }
}
