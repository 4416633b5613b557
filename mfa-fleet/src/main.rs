//! mfa-fleetd: follows the fleet's central store (see the crate doc).
fn main() {}
