//! Links the unwinder statically so that loading pam_mfa.so does not also load libgcc_s.
//!
//! PAM loads and unloads the module at every login; pulling in libgcc_s.so.1 each time
//! costs more than everything else the module does on its fast path (bench/pam_bench.sh,
//! "load-only" rows). rustc always asks the linker for `-lgcc_s`, so this script puts a
//! linker script named `libgcc_s.so` first on the library search path that resolves the
//! request to the static unwinder `libgcc_eh.a` instead (the `-static-libgcc` of C builds).

use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("linux-gnu") {
        return;
    }
    let Some(out) = std::env::var_os("OUT_DIR").map(PathBuf::from) else {
        return;
    };
    let dir = out.join("static-unwind");
    if std::fs::create_dir_all(&dir).is_ok()
        && std::fs::write(dir.join("libgcc_s.so"), "INPUT(-lgcc_eh)\n").is_ok()
    {
        println!("cargo:rustc-link-search=native={}", dir.display());
    }
}
