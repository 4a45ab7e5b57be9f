//! Independent oracles for the numerical core, in one test binary so that a mutant build
//! (`scripts/mutants.sh`) compiles the engine's generic code once instead of once per file.
//!
//! - `numerics`: finite differences of every local gradient, closed-form equilibria, the
//!   weak-feedback limit;
//! - `engine`: optimisers, node optimisers, halving and early stop by hand, precisions,
//!   backprop against finite differences, PC/iPC against a plain-loop reference, Z-IL = BP
//!   over several batches, the reported losses, the settings' range checks;
//! - `zil`: Z-IL = BP in f64 and f32, and the gap when a condition is broken.

#[path = "../common/mod.rs"]
mod common;
mod engine;
mod eqprop;
mod numerics;
mod zil;
