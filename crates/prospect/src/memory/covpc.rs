//! Recurrent predictive coding with covariance learning (Tang, Salvatori, Millidge, Song,
//! Lukasiewicz, Bogacz, PLOS Comp. Biol. 2023): single-layer memories over a pattern
//! `x ∈ R^d` whose recall moves only the unknown coordinates.
//!
//! As the reference code (C16Mftang/covariance-learning-PCNs, `src/models.py`):
//! - **explicit**: learns `S` (from `I`) and `μ` (from 0); `e = S⁻¹(x − μ)`;
//!   `ΔS = ½(eᵀe / B − S⁻¹)` (batch mean; symmetrised, see below), `Δμ = Σ e` (batch sum);
//!   recall `Δx = −S⁻¹(x − μ)`;
//! - **implicit**: learns `W` (from 0, diagonal held at 0) and `μ`; `e = x − (W f(x) + μ)`;
//!   `ΔW = eᵀ f(x)` (batch sum, diagonal zeroed), `Δμ = Σ e`; recall `Δx = −e + f′(x) ⊙ Wᵀe`;
//! - **dendritic**: the implicit model's learning with recall `Δx = −e`.
//!
//! One departure: the explicit model's `ΔS` is symmetrised. For a symmetric `S` it is the
//! reference's update, but under that update the antisymmetric part of `S` that round-off
//! creates grows exponentially (by `+½ S⁻¹AS⁻¹`); over thousands of epochs it swamps `S`.
//!
//! `f` is linear, sigmoid, tanh or binary (`1[x > 0]`, `f′ = 0`). Parameters move up these
//! ascent directions by SGD or Adam (PyTorch's, on the negated direction). Recall starts
//! from the query (unknown coordinates as given, 0 for a mask) and takes
//! `x += recall_lr · Δx` on the unknown coordinates only.

use super::{check_patterns, check_query, take_tensor, Memory, StoreStats};
use crate::error::{Error, Result};
use crate::tensor::{self, Accum, Backend, Cpu, Par, Tensor, Trans};
use serde::{Deserialize, Serialize};

/// Which covariance-learning model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Learns `S` and `μ`.
    Explicit,
    /// Learns `W` and `μ`; recall follows the energy gradient.
    Implicit,
    /// Learns `W` and `μ`; recall `Δx = −e`.
    Dendritic,
}

impl Variant {
    /// The model name (as in `--model`).
    pub fn name(self) -> &'static str {
        match self {
            Variant::Explicit => "covpc-explicit",
            Variant::Implicit => "covpc-implicit",
            Variant::Dendritic => "covpc-dendritic",
        }
    }
}

/// The non-linearity `f` of the recurrent models.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CovAct {
    /// `f(x) = x`.
    #[default]
    Linear,
    /// `f(x) = 1 / (1 + e^{−x})`.
    Sigmoid,
    /// `f(x) = tanh x`.
    Tanh,
    /// `f(x) = 1[x > 0]`, `f′ = 0`.
    Binary,
}

impl CovAct {
    /// `(f(x), f′(x))`.
    pub fn f_df(self, x: f64) -> (f64, f64) {
        match self {
            CovAct::Linear => (x, 1.0),
            CovAct::Sigmoid => {
                let s = 1.0 / (1.0 + (-x).exp());
                (s, s * (1.0 - s))
            }
            CovAct::Tanh => {
                let t = x.tanh();
                (t, 1.0 - t * t)
            }
            CovAct::Binary => ((x > 0.0) as u8 as f64, 0.0),
        }
    }
}

/// The optimiser of the parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CovOptim {
    /// `p += lr Δp`.
    #[default]
    Sgd,
    /// Adam (β = 0.9, 0.999, ε = 1e-8) on `−Δp`.
    Adam,
}

/// Settings of the covariance-learning models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CovConfig {
    /// Non-linearity of the implicit and dendritic models.
    pub activation: CovAct,
    /// Parameter optimiser.
    pub optimizer: CovOptim,
    /// Learning rate.
    pub lr: f64,
    /// Passes over the patterns.
    pub epochs: usize,
    /// Patterns per update (0 = all of them).
    pub batch: usize,
    /// Recall steps.
    pub recall_steps: usize,
    /// Recall step size.
    pub recall_lr: f64,
}

impl Default for CovConfig {
    /// The reference's 25-d Gaussian settings: SGD 5e-3, 200 full-batch epochs, 100 recall
    /// steps of 0.1.
    fn default() -> Self {
        Self {
            activation: CovAct::Linear,
            optimizer: CovOptim::Sgd,
            lr: 5e-3,
            epochs: 200,
            batch: 0,
            recall_steps: 100,
            recall_lr: 0.1,
        }
    }
}

impl CovConfig {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the `covpc.` key.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [("covpc.lr", self.lr), ("covpc.recall_lr", self.recall_lr)] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(key, format!("must be > 0, found {v}")));
            }
        }
        Ok(())
    }
}

/// `f(x)` and `f′(x)` of a batch.
type Activated = (Tensor<f64>, Tensor<f64>);

/// Adam moments of one parameter.
#[derive(Clone, Debug)]
struct Moments {
    m: Tensor<f64>,
    v: Tensor<f64>,
}

/// A covariance-learning recurrent PC memory.
#[derive(Clone, Debug)]
pub struct CovPc {
    /// Which model.
    pub variant: Variant,
    /// Settings.
    pub cfg: CovConfig,
    dim: usize,
    /// `S` (explicit) or `W` (implicit, dendritic), `d x d`.
    pub matrix: Tensor<f64>,
    /// `μ`, `1 x d`.
    pub mu: Tensor<f64>,
}

impl CovPc {
    /// A fresh model: `S = I` (explicit) or `W = 0`, and `μ = 0`. (`seed` is unused: the
    /// reference starts from these fixed values.)
    pub fn new(variant: Variant, cfg: CovConfig, dim: usize, _seed: u64) -> Self {
        let matrix = match variant {
            Variant::Explicit => Tensor::from_fn(dim, dim, |i, j| (i == j) as u8 as f64),
            _ => Tensor::zeros(dim, dim),
        };
        Self { variant, cfg, dim, matrix, mu: Tensor::zeros(1, dim) }
    }

    /// `S⁻¹` (explicit model).
    fn s_inv(&self) -> Result<Tensor<f64>> {
        tensor::inverse(&self.matrix).ok_or_else(|| Error::NonFinite {
            batch: 0,
            step: 0,
            layer: 0,
            what: "the learnt covariance S is singular or not finite".into(),
        })
    }

    /// `f(x)` and `f′(x)` of a batch.
    fn act(&self, x: &Tensor<f64>) -> (Tensor<f64>, Tensor<f64>) {
        let (mut f, mut df) = (x.clone(), x.clone());
        for ((v, fv), dv) in x.data().iter().zip(f.data_mut()).zip(df.data_mut()) {
            (*fv, *dv) = self.cfg.activation.f_df(*v);
        }
        (f, df)
    }

    /// The errors of a batch: `S⁻¹(x − μ)` (explicit, given `s_inv`) or `x − W f(x) − μ`,
    /// with `f(x)` and `f′(x)` (recurrent models).
    fn errors(
        &self,
        x: &Tensor<f64>,
        s_inv: Option<&Tensor<f64>>,
    ) -> (Tensor<f64>, Option<Activated>) {
        let mut centred = x.clone();
        for r in 0..x.rows() {
            for (v, m) in centred.row_mut(r).iter_mut().zip(self.mu.data()) {
                *v -= m;
            }
        }
        let mut e = Tensor::zeros(x.rows(), self.dim);
        match self.variant {
            Variant::Explicit => {
                let si = s_inv.expect("explicit errors need S^-1");
                Cpu.gemm(&mut e, Accum::Replace, &centred, Trans::N, si, Trans::T, 1.0, Par::Auto);
                (e, None)
            }
            _ => {
                let (f, df) = self.act(x);
                e.copy_from(&centred);
                Cpu.gemm(&mut e, Accum::Add, &f, Trans::N, &self.matrix, Trans::T, -1.0, Par::Auto);
                (e, Some((f, df)))
            }
        }
    }

    /// The ascent directions `(ΔS or ΔW, Δμ)` of one batch, and its loss (explicit:
    /// `½ (x − μ)ᵀ S⁻¹ (x − μ)` per pattern; recurrent: mean squared error).
    pub fn directions(&self, x: &Tensor<f64>) -> Result<(Tensor<f64>, Tensor<f64>, f64)> {
        let b = x.rows() as f64;
        let s_inv = match self.variant {
            Variant::Explicit => Some(self.s_inv()?),
            _ => None,
        };
        let (e, fx) = self.errors(x, s_inv.as_ref());
        let mut dmat = Tensor::zeros(self.dim, self.dim);
        let loss;
        match (&s_inv, &fx) {
            (Some(si), _) => {
                Cpu.gemm(&mut dmat, Accum::Replace, &e, Trans::T, &e, Trans::N, 0.5 / b, Par::Auto);
                Cpu.axpy(&mut dmat, -0.5, si);
                // The projection onto symmetric matrices: S stays symmetric. (The reference's
                // update is this for a symmetric S, but round-off asymmetry grows under it:
                // its antisymmetric part A moves by +½ S⁻¹AS⁻¹.)
                for i in 0..self.dim {
                    for j in 0..i {
                        let v = 0.5 * (dmat.at(i, j) + dmat.at(j, i));
                        dmat.row_mut(i)[j] = v;
                        dmat.row_mut(j)[i] = v;
                    }
                }
                // (x − μ)ᵀ S⁻¹ (x − μ) = (x − μ)ᵀ e
                let mut q = 0.0;
                for r in 0..x.rows() {
                    for ((xv, m), ev) in x.row(r).iter().zip(self.mu.data()).zip(e.row(r)) {
                        q += (xv - m) * ev;
                    }
                }
                loss = 0.5 * q / b;
            }
            (None, Some((f, _))) => {
                Cpu.gemm(&mut dmat, Accum::Replace, &e, Trans::T, f, Trans::N, 1.0, Par::Auto);
                for i in 0..self.dim {
                    dmat.row_mut(i)[i] = 0.0;
                }
                loss = e.sq_norm() / (b * self.dim as f64);
            }
            _ => unreachable!("errors return f(x) for the recurrent models"),
        }
        let mut dmu = Tensor::zeros(1, self.dim);
        Cpu.col_sums(&mut dmu, Accum::Replace, &e, 1.0);
        Ok((dmat, dmu, loss))
    }

    /// One recall step direction `Δx` of a batch.
    pub fn recall_direction(&self, x: &Tensor<f64>, s_inv: Option<&Tensor<f64>>) -> Tensor<f64> {
        let (e, fx) = self.errors(x, s_inv);
        match self.variant {
            Variant::Explicit | Variant::Dendritic => {
                let mut d = e;
                d.data_mut().iter_mut().for_each(|v| *v = -*v);
                d
            }
            Variant::Implicit => {
                let (_, df) = fx.expect("recurrent");
                let mut back = Tensor::zeros(x.rows(), self.dim);
                Cpu.gemm(
                    &mut back,
                    Accum::Replace,
                    &e,
                    Trans::N,
                    &self.matrix,
                    Trans::N,
                    1.0,
                    Par::Auto,
                );
                let mut d = e;
                for ((dv, bv), fv) in d.data_mut().iter_mut().zip(back.data()).zip(df.data()) {
                    *dv = -*dv + fv * bv;
                }
                d
            }
        }
    }
}

fn to_f64(x: &Tensor<f32>) -> Tensor<f64> {
    x.cast()
}

impl Memory for CovPc {
    fn kind(&self) -> &'static str {
        self.variant.name()
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn store(&mut self, patterns: &Tensor<f32>) -> Result<StoreStats> {
        check_patterns(self.dim, patterns)?;
        let x = to_f64(patterns);
        let n = x.rows();
        let batch = if self.cfg.batch == 0 { n } else { self.cfg.batch.min(n) };
        // A fresh model each store: the memory holds exactly these patterns.
        let fresh = Self::new(self.variant, self.cfg.clone(), self.dim, 0);
        (self.matrix, self.mu) = (fresh.matrix, fresh.mu);
        let mut moments: Option<[Moments; 2]> = None;
        let mut t = 0u64;
        let mut loss = 0.0;
        for epoch in 0..self.cfg.epochs {
            let mut epoch_loss = 0.0;
            for lo in (0..n).step_by(batch) {
                let hi = (lo + batch).min(n);
                let xb = Tensor::from_vec(
                    hi - lo,
                    self.dim,
                    x.data()[lo * self.dim..hi * self.dim].to_vec(),
                );
                let (dmat, dmu, l) = self.directions(&xb)?;
                epoch_loss += l * (hi - lo) as f64;
                let lr = self.cfg.lr;
                match self.cfg.optimizer {
                    CovOptim::Sgd => {
                        Cpu.axpy(&mut self.matrix, lr, &dmat);
                        Cpu.axpy(&mut self.mu, lr, &dmu);
                    }
                    CovOptim::Adam => {
                        t += 1;
                        let mom = moments.get_or_insert_with(|| {
                            let z =
                                |r, c| Moments { m: Tensor::zeros(r, c), v: Tensor::zeros(r, c) };
                            [z(self.dim, self.dim), z(1, self.dim)]
                        });
                        let bc = (1.0 - 0.9f64.powi(t as i32), 1.0 - 0.999f64.powi(t as i32));
                        let [m0, m1] = mom;
                        for (p, g, m) in [(&mut self.matrix, &dmat, m0), (&mut self.mu, &dmu, m1)] {
                            Cpu.adam_step(
                                p,
                                &mut m.m,
                                &mut m.v,
                                g,
                                -1.0,
                                lr,
                                (0.9, 0.999),
                                1e-8,
                                0.0,
                                bc,
                            );
                        }
                    }
                }
                if !(self.matrix.all_finite() && self.mu.all_finite()) {
                    return Err(Error::NonFinite {
                        batch: lo / batch,
                        step: epoch,
                        layer: 0,
                        what: format!(
                            "{} parameters after an update (lower covpc.lr)",
                            self.kind()
                        ),
                    });
                }
            }
            loss = epoch_loss / n as f64;
        }
        Ok(StoreStats { patterns: n, epochs: self.cfg.epochs, final_loss: loss })
    }

    fn recall(&self, query: &Tensor<f32>, mask: &Tensor<f32>) -> Result<Tensor<f32>> {
        check_query(self.dim, query, mask)?;
        let mut x = to_f64(query);
        let free: Vec<f64> = mask.data().iter().map(|&m| (m <= 0.0) as u8 as f64).collect();
        let s_inv = match self.variant {
            Variant::Explicit => Some(self.s_inv()?),
            _ => None,
        };
        for step in 0..self.cfg.recall_steps {
            let d = self.recall_direction(&x, s_inv.as_ref());
            for ((xv, dv), fv) in x.data_mut().iter_mut().zip(d.data()).zip(&free) {
                *xv += self.cfg.recall_lr * dv * fv;
            }
            if step % 100 == 99 && !x.all_finite() {
                return Err(Error::NonFinite {
                    batch: 0,
                    step,
                    layer: 0,
                    what: format!("{} recall diverged (lower covpc.recall_lr)", self.kind()),
                });
            }
        }
        if !x.all_finite() {
            return Err(Error::NonFinite {
                batch: 0,
                step: self.cfg.recall_steps,
                layer: 0,
                what: format!("{} recall diverged (lower covpc.recall_lr)", self.kind()),
            });
        }
        Ok(x.cast())
    }

    fn tensors(&self) -> Vec<(String, Tensor<f64>)> {
        let name = if self.variant == Variant::Explicit { "S" } else { "W" };
        vec![(name.into(), self.matrix.clone()), ("mu".into(), self.mu.clone())]
    }

    fn load_tensors(&mut self, tensors: &[(String, Tensor<f64>)]) -> Result<()> {
        let name = if self.variant == Variant::Explicit { "S" } else { "W" };
        self.matrix = take_tensor(tensors, name, Some([self.dim, self.dim]))?;
        self.mu = take_tensor(tensors, "mu", Some([1, self.dim]))?;
        Ok(())
    }
}
