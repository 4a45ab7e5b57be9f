//! Seeded image augmentation of a training batch: random crop after zero padding and
//! horizontal flip (the usual CIFAR recipe), on images stored HWC per row.

use serde::{Deserialize, Serialize};

/// `[data.augment]`: which augmentations a training batch gets (none by default).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Augment {
    /// Zero-pad each side by this many pixels, then crop back at a random offset (0 = off).
    pub crop: usize,
    /// Mirror each image left-right with probability 1/2.
    pub flip: bool,
}

impl Augment {
    /// True when some augmentation is on.
    pub fn is_on(&self) -> bool {
        self.crop > 0 || self.flip
    }

    /// Augments every row of `x` (one `[H, W, C]` image each, HWC) in place, drawing offsets
    /// and flips from a generator seeded with `seed`; `scratch` holds one image.
    ///
    /// # Panics
    /// If a row is not `H·W·C` values or `scratch` is shorter.
    pub fn apply(&self, x: &mut [f32], [h, w, c]: [usize; 3], seed: u64, scratch: &mut [f32]) {
        if !self.is_on() {
            return;
        }
        let size = h * w * c;
        assert!(size > 0 && x.len().is_multiple_of(size), "augment: rows of {size} values");
        let img = &mut scratch[..size];
        let mut state = seed ^ 0x5851_f42d_4c95_7f2d;
        let mut next = || {
            // splitmix64: cheap, seeded, and the same on every platform.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let p = self.crop;
        for row in x.chunks_exact_mut(size) {
            let (dy, dx) = if p > 0 {
                ((next() % (2 * p as u64 + 1)) as usize, (next() % (2 * p as u64 + 1)) as usize)
            } else {
                (p, p)
            };
            let flip = self.flip && next() & 1 == 1;
            img.copy_from_slice(row);
            for y in 0..h {
                let sy = (y + dy).checked_sub(p).filter(|&v| v < h);
                for xx in 0..w {
                    let src_x = if flip { w - 1 - xx } else { xx };
                    let sx = (src_x + dx).checked_sub(p).filter(|&v| v < w);
                    let dst = &mut row[(y * w + xx) * c..][..c];
                    match (sy, sx) {
                        (Some(sy), Some(sx)) => dst.copy_from_slice(&img[(sy * w + sx) * c..][..c]),
                        _ => dst.fill(0.0),
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(h: usize, w: usize, c: usize) -> Vec<f32> {
        (0..h * w * c).map(|i| i as f32 + 1.0).collect()
    }

    #[test]
    fn off_leaves_the_batch_alone_and_flip_alone_mirrors_or_keeps() {
        let (h, w, c) = (3, 4, 2);
        let orig = image(h, w, c);
        let mut x = orig.clone();
        let mut s = vec![0.0; h * w * c];
        Augment::default().apply(&mut x, [h, w, c], 1, &mut s);
        assert_eq!(x, orig);
        let mut mirrored = 0;
        for seed in 0..20 {
            let mut x = orig.clone();
            Augment { crop: 0, flip: true }.apply(&mut x, [h, w, c], seed, &mut s);
            let m: Vec<f32> = (0..h)
                .flat_map(|y| (0..w).rev().flat_map(move |xx| (0..c).map(move |ch| (y, xx, ch))))
                .map(|(y, xx, ch)| orig[(y * w + xx) * c + ch])
                .collect();
            assert!(x == orig || x == m, "seed {seed}: neither kept nor mirrored");
            mirrored += usize::from(x == m);
        }
        assert!((5..=15).contains(&mirrored), "{mirrored} of 20 flipped");
    }

    #[test]
    fn crops_are_shifts_with_zero_fill_and_the_seed_fixes_them() {
        let (h, w, c) = (5, 6, 3);
        let orig = image(h, w, c);
        let mut s = vec![0.0; h * w * c];
        let aug = Augment { crop: 2, flip: false };
        let mut seen = std::collections::BTreeSet::new();
        for seed in 0..40 {
            let mut x = orig.clone();
            aug.apply(&mut x, [h, w, c], seed, &mut s);
            let mut again = orig.clone();
            aug.apply(&mut again, [h, w, c], seed, &mut s);
            assert_eq!(x, again, "same seed, same crop");
            // Find the shift: the value at (y, x, ch) is orig at (y + sy, x + sx, ch) or 0.
            let shift =
                (-2i64..=2).flat_map(|sy| (-2i64..=2).map(move |sx| (sy, sx))).find(|&(sy, sx)| {
                    (0..h).all(|y| {
                        (0..w).all(|xx| {
                            (0..c).all(|ch| {
                                let (yy, xs) = (y as i64 + sy, xx as i64 + sx);
                                let want =
                                    if (0..h as i64).contains(&yy) && (0..w as i64).contains(&xs) {
                                        orig[((yy as usize) * w + xs as usize) * c + ch]
                                    } else {
                                        0.0
                                    };
                                x[(y * w + xx) * c + ch] == want
                            })
                        })
                    })
                });
            seen.insert(shift.expect("a crop is a shift with zero fill"));
        }
        assert!(seen.len() > 10, "only {} distinct shifts in 40 draws", seen.len());
    }
}
