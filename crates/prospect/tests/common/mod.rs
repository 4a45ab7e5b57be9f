//! Shared helpers for the integration tests: seeded data and small reference computations.
#![allow(dead_code)]

use prospect::{Layer, MlpSpec, Net, Scalar, Tensor};
use rand::{Rng, SeedableRng};
use rand_distr::{Distribution, Normal};

/// A seeded RNG.
pub fn rng(seed: u64) -> rand::rngs::StdRng {
    rand::rngs::StdRng::seed_from_u64(seed)
}

/// A `[rows, cols]` tensor of N(0, std²) draws.
pub fn randn<T: Scalar>(rows: usize, cols: usize, std: f64, r: &mut impl Rng) -> Tensor<T> {
    let d = Normal::new(0.0, std).unwrap();
    Tensor::from_fn(rows, cols, |_, _| T::of(d.sample(r)))
}

/// One-hot rows for the given labels.
pub fn one_hot<T: Scalar>(labels: &[usize], classes: usize) -> Tensor<T> {
    Tensor::from_fn(labels.len(), classes, |r, c| if labels[r] == c { T::one() } else { T::zero() })
}

/// Randomises every bias of `net` (so tests exercise the bias paths).
pub fn randomize_biases<T: Scalar>(net: &mut Net<T>, r: &mut impl Rng) {
    for layer in &mut net.layers {
        layer.for_each_param_mut(&mut |name, p| {
            if name == "bias" {
                *p = randn(p.rows(), p.cols(), 0.3, r);
            }
        });
    }
}

/// All parameters of `net`, flattened in f64.
pub fn flat_params<T: Scalar>(net: &Net<T>) -> Vec<f64> {
    let mut v = Vec::new();
    for l in &net.layers {
        l.for_each_param(&mut |_, p| v.extend(p.data().iter().map(|x| x.f64())));
    }
    v
}

/// Parameters of layer `i`, flattened in f64.
pub fn layer_params<T: Scalar>(layer: &dyn Layer<T>) -> Vec<f64> {
    let mut v = Vec::new();
    layer.for_each_param(&mut |_, p| v.extend(p.data().iter().map(|x| x.f64())));
    v
}

/// Euclidean norm.
pub fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// `a - b` element-wise.
pub fn sub(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

/// Cosine similarity.
pub fn cosine(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>() / (norm(a) * norm(b))
}

/// Four Gaussian blobs at the XOR corners (±1, ±1), std 0.25, padded with `extra` noise
/// dimensions; class = whether the signs differ (not linearly separable).
pub fn xor_blobs<T: Scalar>(
    n: usize,
    extra: usize,
    seed: u64,
) -> (Tensor<T>, Tensor<T>, Vec<usize>) {
    let mut r = rng(seed);
    let noise = Normal::new(0.0, 0.25).unwrap();
    let mut labels = Vec::with_capacity(n);
    let mut x = Tensor::zeros(n, 2 + extra);
    for i in 0..n {
        let (a, b) = (r.random_bool(0.5), r.random_bool(0.5));
        let row = x.row_mut(i);
        row[0] = T::of(if a { 1.0 } else { -1.0 } + noise.sample(&mut r));
        row[1] = T::of(if b { 1.0 } else { -1.0 } + noise.sample(&mut r));
        for v in &mut row[2..] {
            *v = T::of(noise.sample(&mut r));
        }
        labels.push((a != b) as usize);
    }
    let y = one_hot(&labels, 2);
    (x, y, labels)
}

/// Solves `A z = b` for a small dense system by Gaussian elimination with partial pivoting.
pub fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
    let n = b.len();
    for c in 0..n {
        let p = (c..n).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        a.swap(c, p);
        b.swap(c, p);
        for r in c + 1..n {
            let f = a[r][c] / a[c][c];
            for k in c..n {
                a[r][k] -= f * a[c][k];
            }
            b[r] -= f * b[c];
        }
    }
    let mut z = vec![0.0; n];
    for r in (0..n).rev() {
        z[r] = (b[r] - (r + 1..n).map(|k| a[r][k] * z[k]).sum::<f64>()) / a[r][r];
    }
    z
}

/// Adds `delta` to element `i` of parameter `param` of layer `layer` (finite differences).
pub fn nudge_param<T: Scalar>(net: &mut Net<T>, layer: usize, param: usize, i: usize, delta: T) {
    let mut k = 0;
    net.layers[layer].for_each_param_mut(&mut |_, p| {
        if k == param {
            p.data_mut()[i] += delta;
        }
        k += 1;
    });
}

/// The network `spec` builds, in `T`, holding `src`'s parameters (so f32 and f64 runs start
/// from the same weights).
pub fn cast_net<T: Scalar>(src: &Net<f64>, spec: &MlpSpec, seed: u64) -> Net<T> {
    let mut net = Net::<T>::mlp(spec, seed).unwrap();
    net.copy_params_from(src);
    net
}
