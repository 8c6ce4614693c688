//! Byte mutations for fuzzing parsers with proptest: a valid file (a seed) changed by a few
//! random edits (bit flips, overwritten bytes, inserted and removed runs, truncation, copied
//! ranges, and 8-byte little- or big-endian integers with boundary values where length fields
//! live), so inputs stay close enough to the format to reach deep into the parser.
//!
//! Shared by `datasets/tests/fuzz_mutation.rs` and `layers/tests/fuzz_safetensors.rs` (included
//! there by path). The number of inputs comes from `LAMINA_FUZZ_CASES`.
#![allow(dead_code)]

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestRunner};

/// One edit of a byte string.
#[derive(Clone, Debug)]
pub enum Mutation {
    /// Flip one bit of the byte at the index.
    Flip(Index, u8),
    /// Overwrite the byte at the index.
    Set(Index, u8),
    /// Insert bytes before the index.
    Insert(Index, Vec<u8>),
    /// Remove up to `n` bytes from the index.
    Remove(Index, usize),
    /// Cut the input at the index.
    Truncate(Index),
    /// Copy up to `n` bytes from the first index over the second.
    Copy(Index, Index, usize),
    /// Write an integer (8 bytes little-endian, or 4 big-endian) at the index.
    Integer(Index, u64, bool),
}

fn interesting() -> impl Strategy<Value = u64> {
    prop_oneof![
        Just(0u64),
        Just(1),
        Just(u32::MAX as u64),
        Just(u64::MAX),
        Just(i64::MAX as u64),
        Just(1 << 31),
        Just(1 << 40),
        0u64..4096,
        any::<u64>(),
    ]
}

/// One random [`Mutation`].
pub fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        3 => (any::<Index>(), any::<u8>()).prop_map(|(i, v)| Mutation::Set(i, v)),
        1 => (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(i, v)| Mutation::Insert(i, v)),
        1 => (any::<Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Remove(i, n)),
        1 => any::<Index>().prop_map(Mutation::Truncate),
        1 => (any::<Index>(), any::<Index>(), 1usize..32).prop_map(|(a, b, n)| Mutation::Copy(a, b, n)),
        2 => (any::<Index>(), interesting(), any::<bool>()).prop_map(|(i, v, le)| Mutation::Integer(i, v, le)),
    ]
}

/// `seed` with `mutations` applied in order.
pub fn apply(seed: &[u8], mutations: &[Mutation]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for m in mutations {
        if b.is_empty() {
            if let Mutation::Insert(_, v) = m {
                b.extend_from_slice(v);
            }
            continue;
        }
        let len = b.len();
        match m {
            Mutation::Flip(i, bit) => b[i.index(len)] ^= 1 << bit,
            Mutation::Set(i, v) => b[i.index(len)] = *v,
            Mutation::Insert(i, v) => {
                let at = i.index(len + 1);
                b.splice(at..at, v.iter().copied());
            }
            Mutation::Remove(i, n) => {
                let at = i.index(len);
                b.drain(at..(at + n).min(len));
            }
            Mutation::Truncate(i) => b.truncate(i.index(len)),
            Mutation::Copy(from, to, n) => {
                let (f, t) = (from.index(len), to.index(len));
                let n = (*n).min(len - f).min(len - t);
                b.copy_within(f..f + n, t);
            }
            Mutation::Integer(i, v, le) => {
                let bytes: Vec<u8> = if *le { v.to_le_bytes().to_vec() } else { (*v as u32).to_be_bytes().to_vec() };
                let at = i.index(len);
                let n = bytes.len().min(len - at);
                b[at..at + n].copy_from_slice(&bytes[..n]);
            }
        }
    }
    b
}

/// The number of inputs of a fuzzing run: `LAMINA_FUZZ_CASES`, else `default`.
pub fn cases(default: u32) -> u32 {
    std::env::var("LAMINA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Runs `check` on `cases` inputs, each one of `seeds` (picked at random) with 1 to 8
/// mutations; a panic in `check` fails the run with the (shrunk) input. Returns how many inputs
/// ran.
pub fn fuzz(cases: u32, seeds: &[Vec<u8>], check: impl Fn(usize, &[u8])) -> u32 {
    let config = Config { cases, failure_persistence: None, max_shrink_iters: 4096, ..Config::default() };
    let mut runner = TestRunner::new(config);
    let count = std::cell::Cell::new(0u32);
    let strategy = (0..seeds.len(), proptest::collection::vec(mutation(), 1..8));
    let result = runner.run(&strategy, |(s, mutations)| {
        count.set(count.get() + 1);
        let bytes = apply(&seeds[s], &mutations);
        check(s, &bytes);
        Ok(())
    });
    if let Err(e) = result {
        panic!("fuzzing found a failure: {e}");
    }
    count.get()
}
