//! The randomness of the engines (guids, versions, request tokens, jitter), from one place so a
//! deterministic simulation can replay a run exactly.
//!
//! Each thread draws from its own generator, seeded from the operating system unless
//! [`seed_this_thread`] says otherwise. A simulation on a current-thread runtime seeds its one
//! thread, and every task it runs then draws the same numbers in the same order on each replay.

use std::cell::RefCell;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

thread_local! {
    static RNG: RefCell<StdRng> = RefCell::new(StdRng::from_os_rng());
}

/// Runs `f` with this thread's generator.
pub fn with_rng<T>(f: impl FnOnce(&mut StdRng) -> T) -> T {
    RNG.with(|rng| f(&mut rng.borrow_mut()))
}

/// Makes this thread's draws a function of `seed` from now on. For simulations and tests: guids
/// drawn this way are predictable, so production code never calls it.
#[doc(hidden)]
pub fn seed_this_thread(seed: u64) {
    RNG.with(|rng| *rng.borrow_mut() = StdRng::seed_from_u64(seed));
}

/// A uniformly random value of `T`.
pub fn random<T>() -> T
where
    rand::distr::StandardUniform: rand::distr::Distribution<T>,
{
    with_rng(|rng| rng.random())
}
