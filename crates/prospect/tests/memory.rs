//! Associative memories against independent oracles: brute-force nearest neighbours, the
//! classical Hopfield product written out, finite differences of the covariance models'
//! energies, the Gaussian conditional mean, and the generative PCN's fixed points.

use prospect::memory::covpc::{CovConfig, CovOptim, CovPc, Variant};
use prospect::memory::gpcn::{Gpcn, GpcnConfig};
use prospect::memory::uhn::{Separation, Similarity, Uhn, UhnConfig, SIMILARITIES};
use prospect::memory::{self, Corruption, ImageShape, Memory, MemoryConfig, Scores};
use prospect::{Error, Tensor};
use rand::{Rng, SeedableRng};

fn uniform(rows: usize, cols: usize, seed: u64) -> Tensor<f32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Tensor::from_fn(rows, cols, |_, _| rng.random::<f32>())
}

fn normal(rows: usize, cols: usize, seed: u64) -> Tensor<f64> {
    use rand_distr::Distribution;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let n = rand_distr::Normal::new(0.0, 1.0).unwrap();
    Tensor::from_fn(rows, cols, |_, _| n.sample(&mut rng))
}

/// Brute force: the index of the memory closest to `z` under `sim`, written from the
/// definitions (distances minimised, similarities maximised).
fn nearest(sim: Similarity, m: &Tensor<f32>, z: &[f32]) -> usize {
    let key = |x: &[f32]| -> f64 {
        let p = x.iter().zip(z).map(|(&a, &b)| (a as f64, b as f64));
        let (sx, sz): (f64, f64) =
            (x.iter().map(|&v| v as f64).sum(), z.iter().map(|&v| v as f64).sum());
        match sim {
            Similarity::Euclidean => -p.map(|(a, b)| (a - b).powi(2)).sum::<f64>(),
            Similarity::Manhattan => -p.map(|(a, b)| (a - b).abs()).sum::<f64>(),
            Similarity::Dot => p.map(|(a, b)| a * b).sum(),
            Similarity::NormalizedDot => p.map(|(a, b)| a / sx * b / sz).sum(),
            Similarity::Cosine => {
                let d: f64 = p.map(|(a, b)| a * b).sum();
                let na = x.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                let nb = z.iter().map(|&v| (v as f64).powi(2)).sum::<f64>().sqrt();
                d / na / nb
            }
            Similarity::Kl => {
                -p.map(|(a, b)| a / sx * ((a / sx + 1e-4).ln() - (b / sz + 1e-4).ln())).sum::<f64>()
            }
            Similarity::ReverseKl => {
                -p.map(|(a, b)| b / sz * ((b / sz + 1e-4).ln() - (a / sx + 1e-4).ln())).sum::<f64>()
            }
        }
    };
    (0..m.rows()).max_by(|&i, &j| key(m.row(i)).total_cmp(&key(m.row(j)))).unwrap()
}

#[test]
fn uhn_max_separation_is_the_nearest_memory_by_brute_force() {
    let m = uniform(30, 20, 1);
    let queries = uniform(25, 20, 2);
    let mask = Tensor::zeros(25, 20);
    for sim in SIMILARITIES {
        let mut uhn = Uhn::new(
            UhnConfig { similarity: sim, separation: Separation::Max, ..Default::default() },
            20,
        );
        uhn.store(&m).unwrap();
        let out = uhn.recall(&queries, &mask).unwrap();
        for r in 0..queries.rows() {
            let k = nearest(sim, &m, queries.row(r));
            assert_eq!(out.row(r), m.row(k), "{}: query {r} should recall memory {k}", sim.name());
        }
    }
}

#[test]
fn uhn_softmax_tends_to_max_as_beta_grows_and_to_the_mean_as_beta_vanishes() {
    let m = uniform(12, 16, 3);
    let q = uniform(6, 16, 4);
    let mask = Tensor::zeros(6, 16);
    let recall = |sep: Separation, param: f64| {
        let mut u = Uhn::new(
            UhnConfig {
                similarity: Similarity::Manhattan,
                separation: sep,
                param,
                ..Default::default()
            },
            16,
        );
        u.store(&m).unwrap();
        u.recall(&q, &mask).unwrap()
    };
    let max = recall(Separation::Max, 1.0);
    let mean = memory::mean_row(&m);
    let dist_max = |t: &Tensor<f32>| t.max_abs_diff(&max);
    let dist_mean = |t: &Tensor<f32>| {
        (0..t.rows())
            .flat_map(|r| t.row(r).iter().zip(&mean).map(|(a, b)| (a - b).abs() as f64))
            .fold(0.0, f64::max)
    };
    // Scores are sum-normalised (in (0, 1)) before the softmax: beta is in those units.
    let (hot, warm, cold) = (
        recall(Separation::Softmax, 1e5),
        recall(Separation::Softmax, 1e2),
        recall(Separation::Softmax, 1e-6),
    );
    assert!(dist_max(&hot) < 1e-5, "beta 1e5: {} from max", dist_max(&hot));
    assert!(dist_max(&warm) > dist_max(&hot), "the distance to max shrinks as beta grows");
    assert!(
        dist_mean(&cold) < 1e-5,
        "beta 1e-6: {} from the mean of the memories",
        dist_mean(&cold)
    );
    assert!(dist_mean(&warm) > 1e-3);
}

#[test]
fn classical_hopfield_is_the_sign_of_the_summed_outer_products_times_the_query() {
    let (n, d) = (5, 24);
    let m = uniform(n, d, 5);
    let q = uniform(7, d, 6);
    let mut h = Uhn::new(UhnConfig::classical(), d);
    h.store(&m).unwrap();
    let out = h.recall(&q, &Tensor::zeros(7, d)).unwrap();
    let sign = |v: f32| if v - 0.5 >= 0.0 { 1.0 } else { -1.0 };
    for r in 0..q.rows() {
        let z: Vec<f64> = q.row(r).iter().map(|&v| sign(v)).collect();
        for i in 0..d {
            // (Σ_k x_k x_kᵀ) z, row i, with bipolar x
            let mut s = 0.0;
            for k in 0..n {
                let xk: Vec<f64> = m.row(k).iter().map(|&v| sign(v)).collect();
                s += xk[i] * xk.iter().zip(&z).map(|(a, b)| a * b).sum::<f64>();
            }
            let want = if s >= 0.0 { 1.0 } else { -1.0 };
            assert_eq!(out.at(r, i), want, "query {r}, unit {i}: (Σ x xᵀ z)_i = {s}");
        }
    }
}

#[test]
fn uhn_hetero_association_returns_the_value_of_the_nearest_key() {
    let keys = uniform(8, 10, 7);
    let values = uniform(8, 3, 8);
    let mut u = Uhn::new(UhnConfig::default(), 10);
    u.store_hetero(&keys, &values).unwrap();
    let out = u.recall(&keys, &Tensor::zeros(8, 10)).unwrap();
    assert_eq!(out.shape(), [8, 3]);
    for r in 0..8 {
        assert_eq!(out.row(r), values.row(r));
    }
}

/// `½ Σ_rows ‖x − W f(x) − μ‖²` in f64, written out.
fn implicit_energy(w: &Tensor<f64>, mu: &[f64], x: &Tensor<f64>, f: impl Fn(f64) -> f64) -> f64 {
    let d = x.cols();
    let mut e = 0.0;
    for r in 0..x.rows() {
        for i in 0..d {
            let pred: f64 = (0..d).map(|j| w.at(i, j) * f(x.at(r, j))).sum::<f64>() + mu[i];
            e += 0.5 * (x.at(r, i) - pred).powi(2);
        }
    }
    e
}

#[test]
fn implicit_learning_and_recall_follow_the_negative_energy_gradient() {
    let d = 6;
    let x = normal(9, d, 11);
    let mut m = CovPc::new(
        Variant::Implicit,
        CovConfig { activation: prospect::memory::covpc::CovAct::Tanh, ..Default::default() },
        d,
        0,
    );
    m.matrix = normal(d, d, 12);
    for i in 0..d {
        m.matrix.row_mut(i)[i] = 0.0;
    }
    m.mu = normal(1, d, 13);
    let f = |v: f64| v.tanh();
    let (dw, dmu, loss) = m.directions(&x).unwrap();
    // the reported loss: the mean squared error over rows and units
    let want = 2.0 * implicit_energy(&m.matrix, m.mu.data(), &x, f) / (9 * d) as f64;
    assert!((loss - want).abs() < 1e-12 * want, "loss {loss} vs {want}");
    let h = 1e-6;
    for i in 0..d {
        for j in 0..d {
            let mut wp = m.matrix.clone();
            let mut wm = m.matrix.clone();
            wp.row_mut(i)[j] += h;
            wm.row_mut(i)[j] -= h;
            let fd = -(implicit_energy(&wp, m.mu.data(), &x, f)
                - implicit_energy(&wm, m.mu.data(), &x, f))
                / (2.0 * h);
            let want = if i == j { 0.0 } else { fd };
            assert!(
                (dw.at(i, j) - want).abs() < 1e-6 * (1.0 + fd.abs()),
                "dW[{i},{j}] {} vs {want}",
                dw.at(i, j)
            );
        }
        let mut up = m.mu.data().to_vec();
        let mut um = up.clone();
        up[i] += h;
        um[i] -= h;
        let fd = -(implicit_energy(&m.matrix, &up, &x, f) - implicit_energy(&m.matrix, &um, &x, f))
            / (2.0 * h);
        assert!((dmu.at(0, i) - fd).abs() < 1e-6 * (1.0 + fd.abs()), "dmu[{i}]");
    }
    // recall: implicit Δx = −∂E/∂x; dendritic Δx = −e
    let dx = m.recall_direction(&x, None);
    for r in 0..x.rows() {
        for i in 0..d {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp.row_mut(r)[i] += h;
            xm.row_mut(r)[i] -= h;
            let fd = -(implicit_energy(&m.matrix, m.mu.data(), &xp, f)
                - implicit_energy(&m.matrix, m.mu.data(), &xm, f))
                / (2.0 * h);
            assert!(
                (dx.at(r, i) - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "dx[{r},{i}] {} vs {fd}",
                dx.at(r, i)
            );
        }
    }
    m.variant = Variant::Dendritic;
    let dx = m.recall_direction(&x, None);
    for r in 0..x.rows() {
        for i in 0..d {
            let pred: f64 =
                (0..d).map(|j| m.matrix.at(i, j) * f(x.at(r, j))).sum::<f64>() + m.mu.at(0, i);
            assert!((dx.at(r, i) - (pred - x.at(r, i))).abs() < 1e-12);
        }
    }
}

/// `½ Σ_rows (x − μ)ᵀ S⁻¹ (x − μ) + ½ B ln|S|`, with the inverse and determinant by
/// Gauss-Jordan elimination written here.
fn explicit_energy(s: &Tensor<f64>, mu: &[f64], x: &Tensor<f64>) -> f64 {
    let d = s.rows();
    let mut a: Vec<Vec<f64>> = (0..d)
        .map(|i| {
            let mut row: Vec<f64> = s.row(i).to_vec();
            row.extend((0..d).map(|j| (i == j) as u8 as f64));
            row
        })
        .collect();
    let mut logdet = 0.0;
    for c in 0..d {
        let p = (c..d).max_by(|&i, &j| a[i][c].abs().total_cmp(&a[j][c].abs())).unwrap();
        a.swap(c, p);
        let piv = a[c][c];
        logdet += piv.abs().ln();
        a[c].iter_mut().for_each(|v| *v /= piv);
        for r in 0..d {
            if r != c {
                let k = a[r][c];
                let pc = a[c].clone();
                a[r].iter_mut().zip(&pc).for_each(|(v, p)| *v -= k * p);
            }
        }
    }
    let mut e = 0.5 * x.rows() as f64 * logdet;
    for r in 0..x.rows() {
        let v: Vec<f64> = (0..d).map(|i| x.at(r, i) - mu[i]).collect();
        for i in 0..d {
            for j in 0..d {
                e += 0.5 * v[i] * a[i][d + j] * v[j];
            }
        }
    }
    e
}

#[test]
fn explicit_directions_are_the_negative_gradient_of_the_gaussian_free_energy() {
    let d = 4;
    let x = normal(7, d, 21);
    let mut m = CovPc::new(Variant::Explicit, CovConfig::default(), d, 0);
    let g = normal(d, d, 22);
    // a symmetric positive definite S
    m.matrix = Tensor::from_fn(d, d, |i, j| {
        (0..d).map(|k| g.at(i, k) * g.at(j, k)).sum::<f64>() / d as f64 + (i == j) as u8 as f64
    });
    m.mu = normal(1, d, 23);
    let (ds, dmu, loss) = m.directions(&x).unwrap();
    let b = x.rows() as f64;
    // the reported loss: ½ (x − μ)ᵀ S⁻¹ (x − μ) per pattern (the energy without ln|S|)
    let at_mu = Tensor::from_fn(x.rows(), d, |_, i| m.mu.at(0, i));
    let want = (explicit_energy(&m.matrix, m.mu.data(), &x)
        - explicit_energy(&m.matrix, m.mu.data(), &at_mu))
        / b;
    assert!((loss - want).abs() < 1e-10 * want, "loss {loss} vs {want}");
    let h = 1e-6;
    for i in 0..d {
        for j in 0..d {
            let (mut sp, mut sm) = (m.matrix.clone(), m.matrix.clone());
            sp.row_mut(i)[j] += h;
            sm.row_mut(i)[j] -= h;
            // ΔS is the batch MEAN of −∂F/∂S.
            let fd = -(explicit_energy(&sp, m.mu.data(), &x)
                - explicit_energy(&sm, m.mu.data(), &x))
                / (2.0 * h)
                / b;
            assert!(
                (ds.at(i, j) - fd).abs() < 1e-6 * (1.0 + fd.abs()),
                "dS[{i},{j}] {} vs {fd}",
                ds.at(i, j)
            );
        }
        let (mut up, mut um) = (m.mu.data().to_vec(), m.mu.data().to_vec());
        up[i] += h;
        um[i] -= h;
        // Δμ is the batch SUM of −∂F/∂μ.
        let fd = -(explicit_energy(&m.matrix, &up, &x) - explicit_energy(&m.matrix, &um, &x))
            / (2.0 * h);
        assert!(
            (dmu.at(0, i) - fd).abs() < 1e-6 * (1.0 + fd.abs()),
            "dmu[{i}] {} vs {fd}",
            dmu.at(0, i)
        );
    }
}

/// Sample mean and ML covariance (1/N) of the rows.
fn moments(x: &Tensor<f64>) -> (Vec<f64>, Tensor<f64>) {
    let (n, d) = (x.rows() as f64, x.cols());
    let mean: Vec<f64> =
        (0..d).map(|c| (0..x.rows()).map(|r| x.at(r, c)).sum::<f64>() / n).collect();
    let cov = Tensor::from_fn(d, d, |i, j| {
        (0..x.rows()).map(|r| (x.at(r, i) - mean[i]) * (x.at(r, j) - mean[j])).sum::<f64>() / n
    });
    (mean, cov)
}

/// E[x_u | x_k] = μ_u + S_uk S_kk⁻¹ (x_k − μ_k) for one known prefix of length `k` (2 x 2 or
/// 3 x 3 systems solved by Cramer-free elimination).
fn conditional_mean(mean: &[f64], cov: &Tensor<f64>, x: &[f64], known: usize) -> Vec<f64> {
    let d = mean.len();
    // solve S_kk a = (x_k − μ_k)
    let mut a: Vec<Vec<f64>> = (0..known)
        .map(|i| {
            let mut row: Vec<f64> = (0..known).map(|j| cov.at(i, j)).collect();
            row.push(x[i] - mean[i]);
            row
        })
        .collect();
    for c in 0..known {
        let piv = a[c][c];
        a[c].iter_mut().for_each(|v| *v /= piv);
        for r in 0..known {
            if r != c {
                let k = a[r][c];
                let pc = a[c].clone();
                a[r].iter_mut().zip(&pc).for_each(|(v, p)| *v -= k * p);
            }
        }
    }
    let sol: Vec<f64> = a.iter().map(|r| r[known]).collect();
    (known..d).map(|u| mean[u] + (0..known).map(|j| cov.at(u, j) * sol[j]).sum::<f64>()).collect()
}

fn correlated(n: usize, d: usize, seed: u64) -> Tensor<f64> {
    let z = normal(n, d, seed);
    let g = normal(d, d, seed + 1);
    // x = 0.5 + (I + 0.3 G / sqrt(d)) z: correlated, well-conditioned, a non-zero mean
    Tensor::from_fn(n, d, |r, i| {
        0.5 + z.at(r, i)
            + 0.3 * (0..d).map(|k| g.at(i, k) * z.at(r, k)).sum::<f64>() / (d as f64).sqrt()
    })
}

#[test]
fn explicit_model_learns_the_sample_covariance_and_recalls_the_conditional_mean() {
    // Full-batch SGD as the reference: ΔS is a batch mean, Δμ a batch sum (step lr·N).
    let (n, d) = (50, 4);
    let x = correlated(n, d, 31);
    let cfg = CovConfig {
        lr: 0.01,
        epochs: 10_000,
        recall_steps: 2000,
        recall_lr: 0.1,
        ..Default::default()
    };
    let mut m = CovPc::new(Variant::Explicit, cfg, d, 0);
    m.store(&x.cast()).unwrap();
    let (mean, cov) = moments(&x.cast::<f32>().cast());
    let worst_s = m.matrix.max_abs_diff(&cov);
    let worst_mu = (0..d).map(|i| (m.mu.at(0, i) - mean[i]).abs()).fold(0.0, f64::max);
    assert!(
        worst_s < 1e-3,
        "S vs the sample covariance: {worst_s}\n{:?}\n{:?}",
        m.matrix.data(),
        cov.data()
    );
    assert!(worst_mu < 1e-3, "mu vs the sample mean: {worst_mu}");
    assert_recalls_the_conditional_mean(&m, &x, 2e-3);
}

/// Recall of the last `d - 2` coordinates of 6 stored patterns from their first 2 equals
/// the Gaussian conditional mean under the sample moments (to `tol`); the known ones stay.
fn assert_recalls_the_conditional_mean(m: &CovPc, x: &Tensor<f64>, tol: f64) {
    let d = x.cols();
    let (mean, cov) = moments(&x.cast::<f32>().cast());
    let q = Tensor::from_fn(6, d, |r, c| if c < 2 { x.at(r, c) as f32 } else { 0.0 });
    let mask = Tensor::from_fn(6, d, |_, c| (c < 2) as u8 as f32);
    let out = m.recall(&q, &mask).unwrap();
    for r in 0..6 {
        let want = conditional_mean(&mean, &cov, x.row(r), 2);
        for (u, w) in want.iter().enumerate() {
            let got = out.at(r, 2 + u) as f64;
            assert!((got - w).abs() < tol, "row {r} coord {}: {got} vs E[x|known] {w}", 2 + u);
        }
        assert_eq!(&out.row(r)[..2], &q.row(r)[..2], "known coordinates stay");
    }
}

#[test]
fn dendritic_model_at_its_learning_optimum_recalls_the_conditional_mean() {
    let (n, d) = (50, 4);
    let x = correlated(n, d, 41);
    let cfg = CovConfig {
        lr: 0.01,
        epochs: 5000,
        recall_steps: 2000,
        recall_lr: 0.1,
        ..Default::default()
    };
    let mut m = CovPc::new(Variant::Dendritic, cfg.clone(), d, 0);
    m.store(&x.cast()).unwrap();
    for i in 0..d {
        assert_eq!(m.matrix.at(i, i), 0.0, "diag W stays 0");
    }
    assert_recalls_the_conditional_mean(&m, &x, 5e-3);
    // the implicit model shares the learning: its W keeps a zero diagonal too
    let adam = CovConfig { optimizer: CovOptim::Adam, epochs: 50, ..cfg };
    let mut imp = CovPc::new(Variant::Implicit, adam, d, 0);
    imp.store(&x.cast()).unwrap();
    assert!((0..d).all(|i| imp.matrix.at(i, i) == 0.0));
    assert!(imp.matrix.sq_norm() > 0.0);
}

fn digits_like(n: usize, side: usize, seed: u64) -> Tensor<f32> {
    // smooth blobs in [0, 1]
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    Tensor::from_fn(n, side * side, |_, _| 0.0).clone_with(|t| {
        for r in 0..n {
            let (cy, cx) = (
                rng.random_range(1.0..side as f64 - 1.0),
                rng.random_range(1.0..side as f64 - 1.0),
            );
            for i in 0..side {
                for j in 0..side {
                    let d2 = (i as f64 - cy).powi(2) + (j as f64 - cx).powi(2);
                    t.row_mut(r)[i * side + j] = (-d2 / 6.0).exp() as f32;
                }
            }
        }
    })
}

trait CloneWith: Sized {
    fn clone_with(self, f: impl FnOnce(&mut Self)) -> Self;
}
impl CloneWith for Tensor<f32> {
    fn clone_with(mut self, f: impl FnOnce(&mut Self)) -> Self {
        f(&mut self);
        self
    }
}

fn small_gpcn() -> GpcnConfig {
    GpcnConfig {
        latent: 16,
        hidden: vec![32],
        epochs: 300,
        batch: 8,
        steps: 20,
        gamma: 0.1,
        lr: 5e-3,
        recall_steps: 300,
        ..Default::default()
    }
}

#[test]
fn stored_images_are_fixed_points_of_the_generative_pcn() {
    let side = 8;
    let x = digits_like(8, side, 51);
    let mut g = Gpcn::new(small_gpcn(), side * side, 1).unwrap();
    let before = g.energy(&x).unwrap();
    // the energy is per image: the query's total energy over the 8 images, divided by 8
    let mut ws = prospect::Workspace::new(&g.net, 8);
    let image = g.net.topo.node("image").unwrap();
    let cfg =
        prospect::InferenceConfig { steps: g.cfg.steps, gamma: g.cfg.gamma, ..Default::default() };
    let total =
        g.net.query(&mut ws, &[(image, prospect::Given::Data(&x))], &cfg).unwrap().final_energy;
    assert!(before > 0.0 && (before - total / 8.0).abs() < 1e-9 * total, "{before} vs {total} / 8");
    let stats = g.store(&x).unwrap();
    let after = g.energy(&x).unwrap();
    assert!(after < 0.02 * before, "energy per image: {before} before storing, {after} after");
    assert!(stats.final_loss.is_finite());
    // the stored images are fixed points: with the latents inferred, the prediction of the
    // image node is the image (zero error, so a free image node would not move)
    let fixed = Scores::of(&g.reconstruct(&x).unwrap(), &x, 1.0).mean_mse();
    assert!(fixed < 1e-4, "prediction vs stored image: MSE {fixed}");
    // recall from a clean stored image (every pixel free, latents from 0) stays close
    let out = g.recall(&x, &Tensor::zeros(8, side * side)).unwrap();
    let moved = Scores::of(&out, &x, 1.0).mean_mse();
    let spread =
        Scores::of(&Tensor::from_fn(8, side * side, |_, c| memory::mean_row(&x)[c]), &x, 1.0)
            .mean_mse();
    assert!(moved < 0.1 * spread, "a stored image moved by MSE {moved} (mean image: {spread})");
    // and half an image is completed better than by the mean image
    let shape = ImageShape { channels: 1, height: side, width: side };
    let (q, mask) = Corruption::Bottom { fraction: 0.5 }.apply(&x, shape, 0).unwrap();
    g.cfg.recall_steps = 3000; // completion needs long recalls (the reference: 1e3-1e5)
    let rec = Scores::of(&g.recall(&q, &mask).unwrap(), &x, 1.0).mean_mse();
    let base =
        Scores::of(&memory::mean_baseline(&memory::mean_row(&x), &q, &mask), &x, 1.0).mean_mse();
    assert!(rec < 0.5 * base, "completion MSE {rec} vs mean image {base}");
    let recalled = g.recall(&q, &mask).unwrap();
    for (i, (&m, (&r, &v))) in
        mask.data().iter().zip(recalled.data().iter().zip(q.data())).enumerate()
    {
        if m > 0.0 {
            assert_eq!(r, v, "known pixel {i} moved");
        }
    }
    // an unrelated image is not a fixed point: its energy stays high
    let other = digits_like(8, side, 52);
    let e_other = g.energy(&other).unwrap();
    assert!(e_other > 5.0 * after, "unseen images: energy {e_other} vs stored {after}");
}

#[test]
fn corruptions_hide_what_they_say() {
    let shape = ImageShape { channels: 1, height: 6, width: 5 };
    let x = Tensor::full(3, 30, 0.7f32);
    let (q, m) = Corruption::Bottom { fraction: 0.5 }.apply(&x, shape, 0).unwrap();
    for c in 0..30 {
        let known = c / 5 < 3;
        assert_eq!(m.at(0, c), known as u8 as f32, "entry {c}");
        assert_eq!(q.at(1, c), if known { 0.7 } else { 0.0 });
    }
    // rows int(H (1 - f)).. are hidden, as the reference: 28 rows at 0.3 keep 19 (not 20)
    let mnist = ImageShape { channels: 1, height: 28, width: 28 };
    let (_, m) =
        Corruption::Bottom { fraction: 0.3 }.apply(&Tensor::full(1, 784, 0.5), mnist, 0).unwrap();
    assert_eq!(m.data().iter().filter(|&&v| v > 0.0).count(), 19 * 28);
    let (_, m) = Corruption::Border { width: 1 }.apply(&x, shape, 0).unwrap();
    let known: usize = m.row(0).iter().map(|&v| v as usize).sum();
    assert_eq!(known, 4 * 3, "the 4x3 interior is known");
    let big = Tensor::full(200, 100, 0.5f32);
    let (_, m) =
        Corruption::Random { fraction: 0.3 }.apply(&big, ImageShape::flat(100), 9).unwrap();
    let hidden = m.data().iter().filter(|&&v| v == 0.0).count() as f64 / 20_000.0;
    assert!((hidden - 0.3).abs() < 0.02, "hidden fraction {hidden}");
    let (q, m) = Corruption::NoiseClip { std: 0.5 }.apply(&big, ImageShape::flat(100), 9).unwrap();
    assert!(m.data().iter().all(|&v| v == 0.0), "noise: every entry is recalled");
    assert!(q.data().iter().all(|&v| (0.0..=1.0).contains(&v)));
    let sd = (q.data().iter().map(|&v| (v as f64 - 0.5).powi(2)).sum::<f64>() / 20_000.0).sqrt();
    assert!(sd > 0.3 && sd < 0.5, "clipped noise of std 0.5 around 0.5: {sd}");
}

#[test]
fn bad_inputs_are_clear_errors() {
    for (s, key) in [
        ("mask:bottom:1.5", "corrupt"),
        ("random:0", "corrupt"),
        ("noise:-1", "corrupt"),
        ("blur:3", "corrupt"),
    ] {
        match Corruption::parse(s) {
            Err(Error::Config { key: k, msg }) => {
                assert_eq!(k, key, "{s}: {msg}");
            }
            other => panic!("{s}: {other:?}"),
        }
    }
    let e = MemoryConfig::from_toml("model = \"uhn\"\n[uhn]\nsimilarity = \"hamming\"\n", &[])
        .unwrap_err();
    assert!(e.to_string().contains("uhn.similarity") && e.to_string().contains("hamming"), "{e}");
    let e = MemoryConfig::from_toml("model = \"lstm\"\n", &[]).unwrap_err();
    assert!(e.to_string().contains("unknown memory model `lstm`"), "{e}");
    let e = MemoryConfig::from_toml("", &["gpcn.epoch=3".into()]).unwrap_err();
    assert!(e.to_string().contains("epoch"), "{e}");
    let e = memory::patterns_of(&[0.0; 40], 4, 6, 1, 0, "tiny").unwrap_err();
    assert!(e.to_string().contains("need 12 images, but tiny has 10"), "{e}");
    let mut u = Uhn::new(UhnConfig::default(), 4);
    assert!(matches!(u.store(&Tensor::zeros(2, 5)), Err(Error::Shape { .. })));
    assert!(u.recall(&Tensor::zeros(1, 4), &Tensor::zeros(1, 4)).is_err(), "nothing stored");
    u.store(&Tensor::full(2, 4, 0.5)).unwrap();
    assert!(matches!(
        u.recall(&Tensor::zeros(1, 4), &Tensor::zeros(2, 4)),
        Err(Error::Shape { .. })
    ));
}

#[test]
fn saved_memories_load_and_recall_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let x = digits_like(6, 6, 61);
    let shape = ImageShape::guess(36);
    let (q, mask) = Corruption::Bottom { fraction: 0.5 }.apply(&x, shape, 0).unwrap();
    for model in ["uhn", "covpc-explicit", "covpc-implicit", "covpc-dendritic", "gpcn"] {
        let mut config = MemoryConfig { model: model.into(), ..Default::default() };
        config.gpcn = GpcnConfig { epochs: 5, recall_steps: 20, ..small_gpcn() };
        config.covpc.epochs = 5;
        let mut mem = memory::build(&config, 36).unwrap();
        mem.store(&x).unwrap();
        let want = mem.recall(&q, &mask).unwrap();
        let stored = memory::Stored {
            config,
            memory: mem,
            patterns: x.clone(),
            mean: memory::mean_row(&x),
            shape,
        };
        let sub = dir.path().join(model);
        memory::save(&sub, &stored).unwrap();
        let back = memory::load(&sub).unwrap();
        assert_eq!(back.memory.kind(), model);
        assert_eq!(back.patterns, x);
        assert_eq!(back.memory.recall(&q, &mask).unwrap(), want, "{model}");
    }
    // a truncated file is a checkpoint error naming it
    let f = dir.path().join("uhn").join(memory::FILE);
    let bytes = std::fs::read(&f).unwrap();
    std::fs::write(&f, &bytes[..bytes.len() / 2]).unwrap();
    let e = memory::load(&dir.path().join("uhn")).unwrap_err();
    assert!(e.to_string().contains(memory::FILE), "{e}");
}

/// The hybrid model (a recurrent latent with a learned prior) and the hierarchical one (a
/// learned prior) store images too; the self-edge keeps a zero diagonal.
#[test]
fn hybrid_and_hierarchical_variants_store_images() {
    let side = 8;
    let x = digits_like(8, side, 71);
    for (prior, recurrent) in [(true, false), (true, true), (false, true)] {
        let cfg = GpcnConfig { prior, recurrent, ..small_gpcn() };
        let mut g = Gpcn::new(cfg, side * side, 2).unwrap();
        // (with a prior the total energy keeps the latents' prior term: the image's
        // reconstruction is what is measured). A unit-precision prior pulls the latents
        // together, so 8 images are reconstructed only partly (MSE 0.083 -> 0.024 here);
        // without it, nearly exactly.
        let before = Scores::of(&g.reconstruct(&x).unwrap(), &x, 1.0).mean_mse();
        g.store(&x).unwrap();
        let after = Scores::of(&g.reconstruct(&x).unwrap(), &x, 1.0).mean_mse();
        let factor = if prior { 0.5 } else { 0.02 };
        assert!(
            after < factor * before,
            "prior {prior} recurrent {recurrent}: MSE {before} -> {after}"
        );
        if recurrent {
            let e = g.net.topo.edges.iter().position(|e| e.src == Some(e.dst)).expect("self-edge");
            let mut diag = 0.0f64;
            g.net.layers[e].for_each_param(&mut |name, t| {
                if name == "weight" {
                    for i in 0..t.rows() {
                        diag = diag.max(t.at(i, i).abs() as f64);
                    }
                }
            });
            assert_eq!(diag, 0.0, "the latent's self-edge diagonal");
        }
    }
}

/// Colour images from a user directory (a Tiny ImageNet tree written here): the patterns
/// keep their C×H×W layout and [0, 1] scale, and a bottom-half or random mask hides every
/// channel of a hidden pixel.
#[test]
fn colour_patterns_from_a_user_directory_are_masked_per_pixel() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("tiny-imagenet-200");
    for (id, shade) in [("n01", 30u8), ("n02", 220u8)] {
        let images = base.join("train").join(id).join("images");
        std::fs::create_dir_all(&images).unwrap();
        for k in 0..2 {
            let img = image::RgbImage::from_fn(64, 64, |x, _| image::Rgb([shade, x as u8, 255]));
            img.save(images.join(format!("{id}_{k}.png"))).unwrap();
        }
    }
    let (p, mean, shape) = memory::patterns_in("tiny-imagenet", Some(dir.path()), 3, 0, 0).unwrap();
    let (g, _, gshape) =
        memory::patterns_in("tiny-imagenet-grey", Some(dir.path()), 3, 0, 0).unwrap();
    assert_eq!(gshape, ImageShape { channels: 1, height: 64, width: 64 });
    for c in [0, 7, 4095] {
        let want = 0.299 * p.at(0, c) + 0.587 * p.at(0, 4096 + c) + 0.114 * p.at(0, 8192 + c);
        assert!((g.at(0, c) - want).abs() < 1e-6, "grey pixel {c}");
    }
    let e = memory::patterns_in("mnist-grey", Some(dir.path()), 3, 0, 0);
    assert!(e.is_err());
    assert_eq!(shape, ImageShape { channels: 3, height: 64, width: 64 });
    assert_eq!(p.shape(), [3, 3 * 64 * 64]);
    assert_eq!(mean.len(), 3 * 64 * 64);
    assert!(p.data().iter().all(|v| (0.0..=1.0).contains(v)));
    assert_eq!(p.at(0, 2 * 4096), 1.0, "blue plane = 255 -> 1");
    let plane = 64 * 64;
    for c in [Corruption::Bottom { fraction: 0.5 }, Corruption::Random { fraction: 0.4 }] {
        let (_, mask) = c.apply(&p, shape, 3).unwrap();
        for r in 0..3 {
            let m = mask.row(r);
            for i in 0..plane {
                assert!(m[i] == m[plane + i] && m[i] == m[2 * plane + i], "{c:?}: pixel {i}");
            }
        }
        let hidden = mask.data().iter().filter(|&&v| v == 0.0).count() as f64 / mask.len() as f64;
        assert!(
            (hidden - c.label().rsplit(':').next().unwrap().parse::<f64>().unwrap()).abs() < 0.05,
            "{c:?}: {hidden}"
        );
    }
}

/// Iterated recall feeds each recall back as the next query: two iterations equal two
/// single recalls in a row, for noise (every pixel free) and for a mask (known pixels held).
#[test]
fn iterated_recall_is_recall_fed_back() {
    let side = 8;
    let x = digits_like(6, side, 81);
    let cfg = GpcnConfig { epochs: 30, recall_steps: 40, ..small_gpcn() };
    let mut once = Gpcn::new(cfg.clone(), side * side, 3).unwrap();
    once.store(&x).unwrap();
    let mut twice = Gpcn::new(GpcnConfig { recall_iterations: 2, ..cfg }, side * side, 3).unwrap();
    twice.store(&x).unwrap();
    let shape = ImageShape::guess(side * side);
    for c in [Corruption::Noise { std: 0.3 }, Corruption::Bottom { fraction: 0.5 }] {
        let (q, mask) = c.apply(&x, shape, 5).unwrap();
        let first = once.recall(&q, &mask).unwrap();
        let second = once.recall(&first, &mask).unwrap();
        assert_eq!(twice.recall(&q, &mask).unwrap(), second, "{c:?}");
        assert_ne!(first, second, "{c:?}: the second recall moves");
    }
}

/// Each non-linearity of the covariance models against its definition, and its derivative
/// against central differences (binary: a step, derivative 0 as the reference's).
#[test]
fn covariance_model_activations_match_their_definitions() {
    use prospect::memory::covpc::CovAct;
    for x in [-2.3f64, -0.4, 0.0, 0.7, 1.9] {
        let want = [
            (CovAct::Linear, x),
            (CovAct::Sigmoid, 1.0 / (1.0 + (-x).exp())),
            (CovAct::Tanh, x.tanh()),
            (CovAct::Binary, if x > 0.0 { 1.0 } else { 0.0 }),
        ];
        for (act, f) in want {
            let (got, df) = act.f_df(x);
            assert!((got - f).abs() < 1e-15, "{act:?}({x}) = {got}, want {f}");
            let h = 1e-6;
            let fd = if act == CovAct::Binary {
                0.0
            } else {
                (act.f_df(x + h).0 - act.f_df(x - h).0) / (2.0 * h)
            };
            assert!((df - fd).abs() < 1e-8, "{act:?}'({x}) = {df}, central difference {fd}");
        }
    }
}

/// `store` by mini-batches (5 patterns in batches of 2: a short last batch) for two epochs,
/// SGD and Adam, against the same updates written out here: the implicit model's ascent
/// direction `(eᵀ f(x) with a zero diagonal, Σ e)` and PyTorch's Adam on its negation; the
/// reported loss is the last epoch's mean squared error.
#[test]
fn mini_batch_sgd_and_adam_follow_the_updates_written_out() {
    let (n, d) = (5, 3);
    let x = normal(n, d, 91);
    let f = |v: f64| v.tanh();
    for optimizer in [CovOptim::Sgd, CovOptim::Adam] {
        let cfg = CovConfig {
            activation: prospect::memory::covpc::CovAct::Tanh,
            optimizer,
            lr: 0.05,
            epochs: 2,
            batch: 2,
            ..Default::default()
        };
        let mut m = CovPc::new(Variant::Implicit, cfg, d, 0);
        let stats = m.store(&x.cast()).unwrap();
        let xs: Tensor<f64> = x.cast::<f32>().cast();
        // by hand
        let mut w = vec![vec![0.0f64; d]; d];
        let mut mu = vec![0.0f64; d];
        let (mut mw, mut vw) = (vec![vec![0.0; d]; d], vec![vec![0.0; d]; d]);
        let (mut mm, mut vm) = (vec![0.0; d], vec![0.0; d]);
        let mut t = 0;
        let mut last_loss = 0.0;
        for _ in 0..2 {
            last_loss = 0.0;
            for lo in (0..n).step_by(2) {
                let rows: Vec<usize> = (lo..(lo + 2).min(n)).collect();
                let mut gw = vec![vec![0.0; d]; d];
                let mut gmu = vec![0.0; d];
                for &r in &rows {
                    let fx: Vec<f64> = (0..d).map(|j| f(xs.at(r, j))).collect();
                    for i in 0..d {
                        let pred: f64 = (0..d).map(|j| w[i][j] * fx[j]).sum::<f64>() + mu[i];
                        let e = xs.at(r, i) - pred;
                        last_loss += e * e / d as f64;
                        gmu[i] += e;
                        for j in 0..d {
                            if i != j {
                                gw[i][j] += e * fx[j];
                            }
                        }
                    }
                }
                t += 1;
                let adam = |p: &mut f64, m: &mut f64, v: &mut f64, g: f64| {
                    let g = -g; // Adam descends the negated ascent direction
                    *m = 0.9 * *m + 0.1 * g;
                    *v = 0.999 * *v + 0.001 * g * g;
                    let mh = *m / (1.0 - 0.9f64.powi(t));
                    let vh = *v / (1.0 - 0.999f64.powi(t));
                    *p -= 0.05 * mh / (vh.sqrt() + 1e-8);
                };
                for i in 0..d {
                    match optimizer {
                        CovOptim::Sgd => {
                            mu[i] += 0.05 * gmu[i];
                            for j in 0..d {
                                w[i][j] += 0.05 * gw[i][j];
                            }
                        }
                        CovOptim::Adam => {
                            adam(&mut mu[i], &mut mm[i], &mut vm[i], gmu[i]);
                            for j in 0..d {
                                adam(&mut w[i][j], &mut mw[i][j], &mut vw[i][j], gw[i][j]);
                            }
                        }
                    }
                }
            }
        }
        for i in 0..d {
            assert!((m.mu.at(0, i) - mu[i]).abs() < 1e-9, "{optimizer:?} mu[{i}]");
            for j in 0..d {
                assert!((m.matrix.at(i, j) - w[i][j]).abs() < 1e-9, "{optimizer:?} W[{i},{j}]");
            }
        }
        let want = last_loss / n as f64;
        assert!(
            (stats.final_loss - want).abs() < 1e-9,
            "{optimizer:?} loss {} vs {want}",
            stats.final_loss
        );
    }
}

/// A store replaces what was stored (twice = once); a learning rate that blows the
/// parameters up and a recall step that blows the state up are errors naming the key to
/// lower, the recall's at its first check (step 99).
#[test]
fn covariance_models_restart_on_store_and_report_divergence() {
    let x = normal(6, 4, 101).cast::<f32>();
    let mut m = CovPc::new(Variant::Implicit, CovConfig { epochs: 20, ..Default::default() }, 4, 0);
    m.store(&x).unwrap();
    let once = (m.matrix.clone(), m.mu.clone());
    m.store(&x).unwrap();
    assert_eq!((m.matrix.clone(), m.mu.clone()), once, "a second store starts afresh");
    let mut hot = CovPc::new(Variant::Implicit, CovConfig { lr: 1e6, ..Default::default() }, 4, 0);
    match hot.store(&x) {
        Err(Error::NonFinite { what, .. }) => assert!(what.contains("covpc.lr"), "{what}"),
        other => panic!("{other:?}"),
    }
    let unstable = CovConfig { recall_lr: 1e5, recall_steps: 1000, ..Default::default() };
    let mut m = CovPc::new(Variant::Dendritic, unstable, 4, 0);
    m.matrix = Tensor::from_fn(4, 4, |i, j| if i == j { 0.0 } else { 1.0 });
    let mask = Tensor::from_fn(6, 4, |_, c| (c < 1) as u8 as f32);
    match m.recall(&x, &mask) {
        Err(Error::NonFinite { step, what, .. }) => {
            assert_eq!(step, 99, "{what}");
            assert!(what.contains("covpc.recall_lr"), "{what}");
        }
        other => panic!("{other:?}"),
    }
}

/// The generative PCN's graph: `latent → h1 → h2 → image`; under `f_w` the hidden nodes
/// carry the activation and the pixels are linear, under `w_f` every node applies it to its
/// inputs; the convention is the config's; `prior` and `recurrent` add the learned mean and
/// the latent's self-edge.
#[test]
fn generative_pcn_graph_follows_its_settings() {
    use prospect::graph::Prior;
    use prospect::{Activation, Convention};
    for conv in [Convention::Fw, Convention::Wf] {
        for (prior, recurrent) in [(false, false), (true, true)] {
            let cfg = GpcnConfig { convention: conv, prior, recurrent, ..Default::default() };
            let spec = cfg.spec(784);
            assert_eq!(spec.convention, conv);
            let names: Vec<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
            assert_eq!(names, ["latent", "h1", "h2", "image"]);
            let acts: Vec<Activation> = spec.nodes.iter().map(|n| n.activation).collect();
            let t = Activation::Tanh;
            let id = Activation::Identity;
            match conv {
                Convention::Fw => assert_eq!(acts, [id, t, t, id]),
                Convention::Wf => assert_eq!(acts, [t, t, t, t]),
            }
            assert_eq!(spec.nodes[0].prior == Prior::Learned, prior);
            assert!(spec.nodes[1..].iter().all(|n| n.prior == Prior::None));
            let edges: Vec<(&str, &str)> =
                spec.edges.iter().map(|e| (e.from.as_str(), e.to.as_str())).collect();
            let mut want = vec![("latent", "h1"), ("h1", "h2"), ("h2", "image")];
            if recurrent {
                want.push(("latent", "latent"));
            }
            assert_eq!(edges, want);
            assert_eq!(spec.nodes.iter().map(|n| n.size).collect::<Vec<_>>(), [64, 256, 256, 784]);
        }
    }
}

/// The weights of one query, written out: similarities (reciprocal distances, or
/// sum-normalised dot products), sum-normalised, separated, sum-normalised again.
#[test]
fn uhn_weights_are_the_normalised_separated_scores_written_out() {
    let m = uniform(5, 7, 111);
    let z = uniform(1, 7, 112);
    let cases = [
        (Similarity::Manhattan, Separation::Polynomial, 2.0),
        (Similarity::Euclidean, Separation::Identity, 1.0),
        (Similarity::NormalizedDot, Separation::Log, 1.0),
        (Similarity::Manhattan, Separation::Softmax, 3.0),
    ];
    for (sim, sep, param) in cases {
        let mut u = Uhn::new(
            UhnConfig { similarity: sim, separation: sep, param, ..Default::default() },
            7,
        );
        u.store(&m).unwrap();
        let got = u.weights(z.row(0)).unwrap();
        let raw: Vec<f64> = (0..5)
            .map(|i| {
                let p = m.row(i).iter().zip(z.row(0)).map(|(&a, &b)| (a as f64, b as f64));
                match sim {
                    Similarity::Manhattan => 1.0 / p.map(|(a, b)| (a - b).abs()).sum::<f64>(),
                    Similarity::Euclidean => 1.0 / p.map(|(a, b)| (a - b) * (a - b)).sum::<f64>(),
                    _ => {
                        let sx: f64 = m.row(i).iter().map(|&v| v as f64).sum();
                        let sz: f64 = z.row(0).iter().map(|&v| v as f64).sum();
                        p.map(|(a, b)| a / sx * b / sz).sum::<f64>()
                    }
                }
            })
            .collect();
        let total: f64 = raw.iter().sum();
        let sep: Vec<f64> = raw
            .iter()
            .map(|v| v / total)
            .map(|v| match sep {
                Separation::Polynomial => v.powf(param),
                Separation::Log => v.ln(),
                Separation::Softmax => (param * v).exp(),
                _ => v,
            })
            .collect();
        let total: f64 = sep.iter().sum();
        for (i, (g, w)) in got.iter().zip(sep.iter().map(|v| v / total)).enumerate() {
            assert!((g - w).abs() < 1e-12, "{sim:?} {sep:?}: weight {i} {g} vs {w}");
        }
    }
}
