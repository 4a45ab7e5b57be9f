//! Concept drift: a label permutation that changes every K iterations.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

/// A seeded label permutation that changes every `period` iterations.
///
/// Iterations `0..period` use the identity; each later block of `period` iterations
/// (an "epoch" of drift) composes the previous permutation with a random non-identity
/// permutation, so the mapping always changes at a block boundary (given at least two
/// classes) and never inside a block. The sequence depends only on `seed`. A period
/// of 0 disables drift (always the identity).
#[derive(Debug, Clone)]
pub struct LabelDrift {
    num_classes: usize,
    period: usize,
    seed: u64,
    block: usize,
    perm: Vec<u32>,
}

/// SplitMix64 finaliser: a well-mixed seed for block `b`.
fn mix(seed: u64, b: u64) -> u64 {
    let mut z = seed ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl LabelDrift {
    /// A drift over `num_classes` labels changing every `period` iterations.
    pub fn new(num_classes: usize, period: usize, seed: u64) -> LabelDrift {
        LabelDrift { num_classes, period, seed, block: 0, perm: (0..num_classes as u32).collect() }
    }

    /// Iterations between changes.
    pub fn period(&self) -> usize {
        self.period
    }

    /// Number of labels permuted.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Index of the block (number of changes so far) at `iteration`.
    pub fn block_at(&self, iteration: usize) -> usize {
        iteration.checked_div(self.period).unwrap_or(0)
    }

    /// The random non-identity step applied when entering block `b`.
    fn step(&self, b: usize) -> Vec<u32> {
        let mut q: Vec<u32> = (0..self.num_classes as u32).collect();
        q.shuffle(&mut StdRng::seed_from_u64(mix(self.seed, b as u64)));
        if q.len() >= 2 && q.iter().enumerate().all(|(i, &v)| i as u32 == v) {
            q.swap(0, 1);
        }
        q
    }

    /// The permutation in force at `iteration`: label `l` becomes `perm[l]`.
    pub fn permutation_at(&mut self, iteration: usize) -> &[u32] {
        let target = self.block_at(iteration);
        if target < self.block {
            self.block = 0;
            self.perm = (0..self.num_classes as u32).collect();
        }
        while self.block < target {
            let b = self.block + 1;
            let q = self.step(b);
            for p in &mut self.perm {
                *p = q.get(*p as usize).copied().unwrap_or(*p);
            }
            self.block = b;
        }
        &self.perm
    }

    /// The drifted label of `label` at `iteration`; labels outside `0..num_classes` pass through.
    pub fn label_at(&mut self, iteration: usize, label: u32) -> u32 {
        self.permutation_at(iteration).get(label as usize).copied().unwrap_or(label)
    }

    /// Write the drifted `labels` at `iteration` into `out` (cleared first).
    pub fn labels_at(&mut self, iteration: usize, labels: &[u32], out: &mut Vec<u32>) {
        let perm = self.permutation_at(iteration);
        out.clear();
        out.extend(labels.iter().map(|&l| perm.get(l as usize).copied().unwrap_or(l)));
    }
}
