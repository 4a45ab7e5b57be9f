//! The in-memory dataset and its operations.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;

use super::DataError;

/// Smallest standard deviation used when normalising; smaller ones (constant features) become 1.
pub const MIN_STD: f32 = 1e-6;

/// Minimum and maximum of a slice, `(0, 1)` if it is empty; NaNs are ignored.
pub fn min_max(values: &[f32]) -> (f32, f32) {
    let (lo, hi) = values
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    if lo.is_finite() && hi.is_finite() {
        (lo, hi)
    } else {
        (0.0, 1.0)
    }
}

/// Labelled examples held in memory as f32, row-major, one row of `features()` values per example.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// A name for messages and logs (e.g. `mnist-train`).
    pub name: String,
    /// The features, `len() * features()` values, row-major.
    pub x: Vec<f32>,
    /// One class label per example, each below `num_classes`.
    pub labels: Vec<u32>,
    /// Per-example shape (C, H, W); `[1, 1, F]` for tabular data.
    pub shape: [usize; 3],
    /// Number of classes.
    pub num_classes: usize,
    /// Nominal (min, max) of the feature values: (0, 255) for images, (0, 16) for digits,
    /// (0, 1) after `scale_unit`; used by `scale_unit`.
    pub range: (f32, f32),
}

/// How to pool statistics for mean/std normalisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NormMode {
    /// One mean and std over all values.
    Global,
    /// One mean and std per channel (C values).
    PerChannel,
    /// One mean and std per feature (C·H·W values).
    PerFeature,
}

/// Mean and standard deviation to normalise with; fit on a training set, apply to any split.
#[derive(Debug, Clone, PartialEq)]
pub struct Normalizer {
    /// Means: 1 (global), C (per channel) or C·H·W (per feature) values.
    pub mean: Vec<f32>,
    /// Standard deviations, same length as `mean`.
    pub std: Vec<f32>,
}

/// One mini-batch borrowed from a dataset.
#[derive(Debug, Clone, Copy)]
pub struct Batch<'a> {
    /// Features, `len() * features` values, row-major.
    pub x: &'a [f32],
    /// Labels, one per example.
    pub labels: &'a [u32],
    /// Features per example.
    pub features: usize,
    /// Number of classes of the dataset.
    pub num_classes: usize,
    /// Index of the first example of the batch in the dataset.
    pub offset: usize,
}

impl Batch<'_> {
    /// Number of examples in the batch.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if the batch holds no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// One-hot targets, `len() * num_classes` values.
    pub fn one_hot(&self) -> Vec<f32> {
        one_hot(self.labels, self.num_classes)
    }
}

/// One-hot encode labels; a label outside `0..num_classes` gives a row of zeros.
pub fn one_hot(labels: &[u32], num_classes: usize) -> Vec<f32> {
    let mut out = vec![0.0; labels.len() * num_classes];
    for (row, &l) in out.chunks_exact_mut(num_classes.max(1)).zip(labels) {
        if let Some(v) = row.get_mut(l as usize) {
            if (l as usize) < num_classes {
                *v = 1.0;
            }
        }
    }
    out
}

/// Iterator over the mini-batches of a dataset, in order.
#[derive(Debug, Clone)]
pub struct Batches<'a> {
    data: &'a Dataset,
    batch_size: usize,
    drop_last: bool,
    pos: usize,
}

impl<'a> Iterator for Batches<'a> {
    type Item = Batch<'a>;

    fn next(&mut self) -> Option<Batch<'a>> {
        let n = self.data.len();
        if self.batch_size == 0 || self.pos >= n {
            return None;
        }
        let end = (self.pos + self.batch_size).min(n);
        if self.drop_last && end - self.pos < self.batch_size {
            self.pos = n;
            return None;
        }
        let f = self.data.features();
        let start = self.pos;
        self.pos = end;
        Some(Batch {
            x: self.data.x.get(start * f..end * f).unwrap_or(&[]),
            labels: self.data.labels.get(start..end).unwrap_or(&[]),
            features: f,
            num_classes: self.data.num_classes,
            offset: start,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.data.len().saturating_sub(self.pos);
        let k = match self.batch_size {
            0 => 0,
            b if self.drop_last => left / b,
            b => left.div_ceil(b),
        };
        (k, Some(k))
    }
}

impl ExactSizeIterator for Batches<'_> {}

/// A seeded permutation of `0..n`.
pub fn permutation(n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    idx.shuffle(&mut StdRng::seed_from_u64(seed));
    idx
}

impl Dataset {
    /// Build a dataset, checking that `x`, `labels`, `shape` and `num_classes` agree.
    pub fn new(
        name: impl Into<String>,
        x: Vec<f32>,
        labels: Vec<u32>,
        shape: [usize; 3],
        num_classes: usize,
    ) -> Result<Dataset, DataError> {
        let name = name.into();
        let features = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
        let want = features.and_then(|f| f.checked_mul(labels.len()));
        if want != Some(x.len()) {
            return Err(DataError::Invalid {
                context: format!("dataset {name}"),
                expected: format!(
                    "{} labels × {}×{}×{} features = {} values",
                    labels.len(),
                    shape[0],
                    shape[1],
                    shape[2],
                    want.map_or_else(|| "too many".into(), |w| w.to_string())
                ),
                found: format!("{} values", x.len()),
            });
        }
        if let Some((i, &l)) = labels.iter().enumerate().find(|(_, &l)| l as usize >= num_classes) {
            return Err(DataError::Invalid {
                context: format!("dataset {name}, example {i}"),
                expected: format!("a label below {num_classes}"),
                found: l.to_string(),
            });
        }
        let range = min_max(&x);
        Ok(Dataset { name, x, labels, shape, num_classes, range })
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True if there is no example.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Reorders every image from CHW (as loaded) to HWC (as convolution edges read them);
    /// single-channel data is unchanged. The `shape` field keeps `(C, H, W)`.
    pub fn to_hwc(&mut self) {
        let [c, h, w] = self.shape;
        if c <= 1 {
            return;
        }
        let size = c * h * w;
        let mut tmp = vec![0.0; size];
        for row in self.x.chunks_exact_mut(size) {
            tmp.copy_from_slice(row);
            for ch in 0..c {
                for p in 0..h * w {
                    row[p * c + ch] = tmp[ch * h * w + p];
                }
            }
        }
    }

    /// Features per example (C·H·W).
    pub fn features(&self) -> usize {
        self.shape[0] * self.shape[1] * self.shape[2]
    }

    /// The features of example `i`; panics if `i >= len()` (see [`Dataset::get`]).
    pub fn example(&self, i: usize) -> &[f32] {
        let f = self.features();
        &self.x[i * f..(i + 1) * f]
    }

    /// The features of example `i`, or `None` if out of range.
    pub fn get(&self, i: usize) -> Option<&[f32]> {
        let f = self.features();
        self.x.get(i.checked_mul(f)?..i.checked_add(1)?.checked_mul(f)?)
    }

    /// Number of examples of each class (`num_classes` entries).
    pub fn class_counts(&self) -> Vec<usize> {
        let mut counts = vec![0; self.num_classes];
        for &l in &self.labels {
            if let Some(c) = counts.get_mut(l as usize) {
                *c += 1;
            }
        }
        counts
    }

    /// Map values from `[lo, hi]` to `[0, 1]` (`x' = (x - lo) / (hi - lo)`); e.g. `scale(0.0, 255.0)`.
    pub fn scale(&mut self, lo: f32, hi: f32) {
        let span = hi - lo;
        let span = if span != 0.0 && span.is_finite() { span } else { 1.0 };
        for v in &mut self.x {
            *v = (*v - lo) / span;
        }
        self.range = ((self.range.0 - lo) / span, (self.range.1 - lo) / span);
    }

    /// Map the nominal range (`self.range`, e.g. 0..255) to `[0, 1]`.
    pub fn scale_unit(&mut self) {
        let (lo, hi) = self.range;
        self.scale(lo, hi);
        self.range = (0.0, 1.0);
    }

    /// Compute mean and std (population) of this dataset, pooled as `mode` says.
    pub fn fit_normalizer(&self, mode: NormMode) -> Normalizer {
        let f = self.features().max(1);
        let c = self.shape[0].max(1);
        let hw = f / c;
        let groups = match mode {
            NormMode::Global => 1,
            NormMode::PerChannel => c,
            NormMode::PerFeature => f,
        };
        let mut sum = vec![0f64; groups];
        let mut sq = vec![0f64; groups];
        let mut count = vec![0usize; groups];
        for row in self.x.chunks_exact(f) {
            for (j, &v) in row.iter().enumerate() {
                let g = match mode {
                    NormMode::Global => 0,
                    NormMode::PerChannel => (j / hw.max(1)).min(groups - 1),
                    NormMode::PerFeature => j,
                };
                sum[g] += v as f64;
                sq[g] += (v as f64) * (v as f64);
                count[g] += 1;
            }
        }
        let mut mean = Vec::with_capacity(groups);
        let mut std = Vec::with_capacity(groups);
        for g in 0..groups {
            let n = count[g].max(1) as f64;
            let m = sum[g] / n;
            let var = (sq[g] / n - m * m).max(0.0);
            mean.push(m as f32);
            std.push(var.sqrt() as f32);
        }
        Normalizer { mean, std }
    }

    /// Apply `x' = (x - mean) / std` with statistics of length 1, C or C·H·W;
    /// a std below [`MIN_STD`] is treated as 1.
    pub fn normalize(&mut self, norm: &Normalizer) -> Result<(), DataError> {
        let f = self.features();
        let c = self.shape[0].max(1);
        let k = norm.mean.len();
        if k != norm.std.len() || !(k == 1 || k == c || k == f) || f == 0 {
            return Err(DataError::Invalid {
                context: format!("normalising {}", self.name),
                expected: format!(
                    "mean and std of equal length 1, {c} (channels) or {f} (features)"
                ),
                found: format!("{} means and {} stds", k, norm.std.len()),
            });
        }
        let hw = (f / c).max(1);
        let inv: Vec<f32> = norm
            .std
            .iter()
            .map(|&s| if s.abs() < MIN_STD || !s.is_finite() { 1.0 } else { 1.0 / s })
            .collect();
        for row in self.x.chunks_exact_mut(f) {
            for (j, v) in row.iter_mut().enumerate() {
                let g = if k == 1 {
                    0
                } else if k == f {
                    j
                } else {
                    (j / hw).min(k - 1)
                };
                *v = (*v - norm.mean[g]) * inv[g];
            }
        }
        self.range = min_max(&self.x);
        Ok(())
    }

    /// One-hot targets, `len() * num_classes` values.
    pub fn one_hot(&self) -> Vec<f32> {
        one_hot(&self.labels, self.num_classes)
    }

    /// Shuffle the examples in place with a seeded permutation.
    pub fn shuffle(&mut self, seed: u64) {
        let perm = permutation(self.len(), seed);
        *self = self.subset(&perm);
    }

    /// A new dataset with the examples at `idx`, in that order; indices out of range are skipped.
    pub fn subset(&self, idx: &[usize]) -> Dataset {
        let f = self.features();
        let mut x = Vec::with_capacity(idx.len() * f);
        let mut labels = Vec::with_capacity(idx.len());
        for &i in idx {
            if let (Some(row), Some(&l)) = (self.get(i), self.labels.get(i)) {
                x.extend_from_slice(row);
                labels.push(l);
            }
        }
        Dataset {
            name: self.name.clone(),
            x,
            labels,
            shape: self.shape,
            num_classes: self.num_classes,
            range: self.range,
        }
    }

    /// The first `n` examples (all of them if there are fewer).
    pub fn take(&self, n: usize) -> Dataset {
        let idx: Vec<usize> = (0..n.min(self.len())).collect();
        self.subset(&idx)
    }

    /// `n` examples of every class, drawn with a seed, in dataset order; an error if a class has fewer.
    pub fn per_class(&self, n: usize, seed: u64) -> Result<Dataset, DataError> {
        let mut by_class: Vec<Vec<usize>> = vec![Vec::new(); self.num_classes];
        for (i, &l) in self.labels.iter().enumerate() {
            if let Some(v) = by_class.get_mut(l as usize) {
                v.push(i);
            }
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut keep = Vec::with_capacity(n * self.num_classes);
        for (class, mut idx) in by_class.into_iter().enumerate() {
            if idx.len() < n {
                return Err(DataError::NotEnough {
                    dataset: self.name.clone(),
                    class: class as u32,
                    needed: n,
                    found: idx.len(),
                });
            }
            idx.shuffle(&mut rng);
            keep.extend_from_slice(&idx[..n]);
        }
        keep.sort_unstable();
        Ok(self.subset(&keep))
    }

    /// Split into (train, validation), with `round(fraction * len())` random examples
    /// (seeded) in validation; both keep dataset order. `fraction` is clamped to [0, 1].
    pub fn split_validation(&self, fraction: f32, seed: u64) -> (Dataset, Dataset) {
        let n = self.len();
        let frac = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        let k = ((n as f64) * frac as f64).round() as usize;
        let perm = permutation(n, seed);
        let (val, train) = perm.split_at(k.min(n));
        let (mut val, mut train) = (val.to_vec(), train.to_vec());
        val.sort_unstable();
        train.sort_unstable();
        let mut t = self.subset(&train);
        let mut v = self.subset(&val);
        t.name = format!("{}-train", self.name);
        v.name = format!("{}-val", self.name);
        (t, v)
    }

    /// Keep the examples of `classes` and relabel them `0..classes.len()` in that order
    /// (e.g. `[5, 6, 7, 8, 9]` maps 5→0 … 9→4); `num_classes` becomes `classes.len()`.
    pub fn keep_classes(&self, classes: &[u32]) -> Dataset {
        let mut map = vec![None; self.num_classes];
        for (new, &old) in classes.iter().enumerate() {
            if let Some(slot) = map.get_mut(old as usize) {
                if slot.is_none() {
                    *slot = Some(new as u32);
                }
            }
        }
        let idx: Vec<usize> = (0..self.len())
            .filter(|&i| {
                self.labels.get(i).and_then(|&l| map.get(l as usize)).is_some_and(|m| m.is_some())
            })
            .collect();
        let mut out = self.subset(&idx);
        for l in &mut out.labels {
            *l = map.get(*l as usize).copied().flatten().unwrap_or(0);
        }
        out.num_classes = classes.len();
        out
    }

    /// Split into continual-learning tasks of `classes_per_task` consecutive classes each,
    /// every task relabelled to `0..classes_per_task` (shared output head).
    pub fn split_tasks(&self, classes_per_task: usize) -> Vec<Dataset> {
        if classes_per_task == 0 {
            return Vec::new();
        }
        let all: Vec<u32> = (0..self.num_classes as u32).collect();
        all.chunks(classes_per_task)
            .enumerate()
            .map(|(t, classes)| {
                let mut d = self.keep_classes(classes);
                d.name = format!("{}-task{t}", self.name);
                d
            })
            .collect()
    }

    /// Mini-batches of `batch_size` examples in dataset order; with `drop_last` a final
    /// short batch is skipped. A batch size of 0 yields nothing. Shuffle between epochs
    /// with [`Dataset::shuffle`] (e.g. seed + epoch).
    pub fn batches(&self, batch_size: usize, drop_last: bool) -> Batches<'_> {
        Batches { data: self, batch_size, drop_last, pos: 0 }
    }
}
