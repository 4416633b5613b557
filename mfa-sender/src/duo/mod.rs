//! Duo: the sender as the broker of method `duo`. `api` is the Auth API v2 client (with
//! Duo's request signatures); `broker` serves root processes (the PAM module, `mfa-admin`)
//! on the local socket of `mfa_core::duo`, so that the module never opens a network
//! connection and never holds Duo's secret key.

pub mod api;
pub mod broker;
pub mod sign;

pub use broker::Broker;

/// The `--check` line of `[duo]`: `check` (signed) against Duo, in the format doctor parses.
pub fn check(cfg: &mfa_core::config::Duo) -> Result<String, String> {
    let client = api::Client::new(cfg)?;
    let deadline = std::time::Instant::now() + client.timeout();
    match client.check(deadline) {
        Ok(time) => {
            let skew = mfa_core::now() - time;
            let mut m = format!(
                "{} answered check: integration key, secret key and signature accepted",
                client.host()
            );
            if skew.abs() > 60 {
                m.push_str(&format!(
                    "; this clock is {skew} s off Duo's (Duo refuses requests more than 300 s off: run NTP)"
                ));
            }
            Ok(m)
        }
        Err(e) => Err(e.message),
    }
}
