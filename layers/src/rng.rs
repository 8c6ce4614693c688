//! The per-thread seed generator behind parameter initialization and dropout masks.
//!
//! As `torch.manual_seed`: [`manual_seed`] fixes the sequence of seeds that layer constructors
//! and dropout layers draw with [`next_seed`]; [`state`] / [`set_state`] save and restore it so a
//! resumed training run draws the same masks. Each thread has its own generator, so parallel
//! tests do not disturb each other.

use std::cell::Cell;

thread_local! {
    static GENERATOR: Cell<RngState> = const { Cell::new(RngState { seed: 0, counter: 0 }) };
}

/// The position of the seed generator: a base seed and how many seeds were drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct RngState {
    /// The base seed given to [`manual_seed`].
    pub seed: u64,
    /// How many seeds have been drawn since.
    pub counter: u64,
}

/// Restarts this thread's seed sequence from `seed`.
pub fn manual_seed(seed: u64) {
    GENERATOR.with(|g| g.set(RngState { seed, counter: 0 }));
}

/// The next seed of this thread's sequence (a SplitMix64 hash of base seed and counter).
///
/// ```
/// layers::rng::manual_seed(3);
/// let a = layers::rng::next_seed();
/// layers::rng::manual_seed(3);
/// assert_eq!(layers::rng::next_seed(), a);
/// assert_ne!(layers::rng::next_seed(), a);
/// ```
pub fn next_seed() -> u64 {
    GENERATOR.with(|g| {
        let s = g.get();
        g.set(RngState { counter: s.counter + 1, ..s });
        splitmix64(s.seed ^ splitmix64(s.counter.wrapping_add(0x632B_E59B_D9B4_E019)))
    })
}

/// The current position of this thread's generator.
pub fn state() -> RngState {
    GENERATOR.with(|g| g.get())
}

/// Moves this thread's generator to a saved position.
pub fn set_state(state: RngState) {
    GENERATOR.with(|g| g.set(state));
}

/// Runs `f` with the generator seeded by `seed`, then puts the previous position back (how
/// models are built reproducibly from their own seed).
pub fn with_seed<T>(seed: u64, f: impl FnOnce() -> T) -> T {
    let saved = state();
    manual_seed(seed);
    let out = f();
    set_state(saved);
    out
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_seed_restores_the_outer_sequence() {
        manual_seed(11);
        let first = next_seed();
        manual_seed(11);
        let inner = with_seed(5, next_seed);
        assert_eq!(next_seed(), first, "the outer sequence continues where it was");
        assert_eq!(with_seed(5, next_seed), inner);
        assert_ne!(inner, first);
    }

    #[test]
    fn state_round_trips() {
        manual_seed(1);
        next_seed();
        let s = state();
        let a = next_seed();
        set_state(s);
        assert_eq!(next_seed(), a);
    }
}
