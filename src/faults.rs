//! Fault injection for the tests: named failpoints (the `fail` crate) at the places where a
//! call allocates or runs work that can fail: preprocessing, every forward stage the runner
//! polls (each backbone block, between the backbone and the head, between a nested model's
//! branches) and the outputs' copy to the host. Without the `failpoints` feature every point
//! compiles to nothing; with it, a test arms one (`fail::cfg("da3::forward", "5*off->return(oom)")`)
//! and the call fails there with the error the argument names, as a real failure would.
use crate::error::{Error, Result};

/// Whether this build has failpoints (then the forward always polls its stage check).
pub const ENABLED: bool = cfg!(feature = "failpoints");

/// Preprocessing, once the resized views are allocated.
pub const PREPROCESS: &str = "da3::preprocess";
/// Each stage check of a forward (before every backbone block, between the backbone and the
/// head, ...): `K*off->return` fails the (K+1)th.
pub const FORWARD: &str = "da3::forward";
/// Before each output is copied to the host.
pub const OUTPUTS: &str = "da3::outputs";

/// `Err` when the failpoint `point` is armed: `return(oom)` (or no argument) gives
/// `Error::OutOfMemory`, `return(torch)` `Error::Torch`.
#[allow(unused_variables)]
pub fn check(point: &'static str) -> Result<()> {
    fail::fail_point!(point, |arg| Err(injected(point, arg)));
    Ok(())
}

#[allow(dead_code)]
fn injected(point: &str, arg: Option<String>) -> Error {
    let message = format!("injected fault at {point}");
    match arg.as_deref() {
        Some("torch") => Error::Torch(message),
        _ => Error::OutOfMemory(message),
    }
}
