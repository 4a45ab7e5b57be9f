//! Universal Hopfield Networks (Millidge, Salvatori, Song et al., ICML 2022):
//! single-shot recall `out = Pᵀ sep(sim(M, q))`, memories `M` as rows, `P = M`
//! (auto-association) or another matrix (hetero-association).
//!
//! Similarities and separations are those of the reference code
//! (BerenMillidge/Theory_Associative_Memory, `functions.py`): distances become similarities
//! by their reciprocal, and the score vector is sum-normalised before the separation and
//! again after it (`normalise`, on by default; with it a scale `beta` on the similarity
//! cancels, so the only temperature is the softmax's `param`). Classical Hopfield (bipolar
//! patterns, raw dot product, identity, no normalisation, sign of the output) and the modern
//! continuous Hopfield network (dot product + softmax) are [`UhnConfig::classical`] and
//! [`UhnConfig::modern`].

use super::{check_patterns, check_query, take_tensor, Memory, StoreStats};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

/// `eps` of the KL similarities, as in the reference.
const KL_EPS: f64 = 1e-4;

/// How similar a memory row `x` is to the query `z`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Similarity {
    /// `1 / Σ (z − x)²` (the reciprocal of the squared distance).
    Euclidean,
    /// `1 / Σ |z − x|`.
    Manhattan,
    /// `x̂ · ẑ` of the sum-normalised vectors (`x / Σx`): the reference's "dot product".
    NormalizedDot,
    /// `x · z`.
    Dot,
    /// `x · z / (‖x‖ ‖z‖)` per memory (the reference divides by the norm of the whole
    /// memory matrix instead, a constant; it is not used in its figures).
    Cosine,
    /// `1 / KL(x̂ ‖ ẑ)` with `eps = 1e-4` inside the logarithms.
    Kl,
    /// `1 / KL(ẑ ‖ x̂)`.
    ReverseKl,
}

/// The similarities, as configured.
pub const SIMILARITIES: [Similarity; 7] = [
    Similarity::Euclidean,
    Similarity::Manhattan,
    Similarity::NormalizedDot,
    Similarity::Dot,
    Similarity::Cosine,
    Similarity::Kl,
    Similarity::ReverseKl,
];

impl Similarity {
    /// The name as in configs.
    pub fn name(self) -> &'static str {
        match self {
            Similarity::Euclidean => "euclidean",
            Similarity::Manhattan => "manhattan",
            Similarity::NormalizedDot => "normalized_dot",
            Similarity::Dot => "dot",
            Similarity::Cosine => "cosine",
            Similarity::Kl => "kl",
            Similarity::ReverseKl => "reverse_kl",
        }
    }

    /// Parses a name of [`Similarity::name`].
    ///
    /// # Errors
    /// [`Error::Config`] (`uhn.similarity`) listing the valid names.
    pub fn parse(s: &str) -> Result<Self> {
        SIMILARITIES.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let valid: Vec<_> = SIMILARITIES.iter().map(|k| k.name()).collect();
            Error::config(
                "uhn.similarity",
                format!("unknown similarity `{s}`; valid: {}", valid.join(", ")),
            )
        })
    }

    /// The similarity of memory `x` to query `z` (f64).
    pub fn score(self, x: &[f32], z: &[f32]) -> f64 {
        let pairs = x.iter().zip(z).map(|(&a, &b)| (a as f64, b as f64));
        match self {
            Similarity::Euclidean => 1.0 / pairs.map(|(a, b)| (b - a) * (b - a)).sum::<f64>(),
            Similarity::Manhattan => 1.0 / pairs.map(|(a, b)| (b - a).abs()).sum::<f64>(),
            Similarity::Dot => pairs.map(|(a, b)| a * b).sum(),
            Similarity::Cosine => {
                let (mut d, mut na, mut nb) = (0.0, 0.0, 0.0);
                for (a, b) in pairs {
                    d += a * b;
                    na += a * a;
                    nb += b * b;
                }
                d / (na.sqrt() * nb.sqrt())
            }
            Similarity::NormalizedDot | Similarity::Kl | Similarity::ReverseKl => {
                let sx: f64 = x.iter().map(|&v| v as f64).sum();
                let sz: f64 = z.iter().map(|&v| v as f64).sum();
                let hat = pairs.map(|(a, b)| (a / sx, b / sz));
                match self {
                    Similarity::NormalizedDot => hat.map(|(a, b)| a * b).sum(),
                    Similarity::Kl => {
                        let kl: f64 =
                            hat.map(|(a, b)| a * ((a + KL_EPS).ln() - (b + KL_EPS).ln())).sum();
                        1.0 / kl
                    }
                    _ => {
                        let kl: f64 =
                            hat.map(|(a, b)| b * ((b + KL_EPS).ln() - (a + KL_EPS).ln())).sum();
                        1.0 / kl
                    }
                }
            }
        }
    }
}

/// What sharpens the similarity scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Separation {
    /// The scores as they are.
    Identity,
    /// `softmax(param · s)`.
    Softmax,
    /// `s^param` (the reference's square 2, cube 3, sqrt 0.5, quartic 4, tenth 10).
    Polynomial,
    /// `ln s`.
    Log,
    /// One-hot at the largest score: recall = the nearest memory.
    Max,
}

/// The separations, as configured.
pub const SEPARATIONS: [Separation; 5] = [
    Separation::Identity,
    Separation::Softmax,
    Separation::Polynomial,
    Separation::Log,
    Separation::Max,
];

impl Separation {
    /// The name as in configs.
    pub fn name(self) -> &'static str {
        match self {
            Separation::Identity => "identity",
            Separation::Softmax => "softmax",
            Separation::Polynomial => "polynomial",
            Separation::Log => "log",
            Separation::Max => "max",
        }
    }

    /// Parses a name of [`Separation::name`].
    ///
    /// # Errors
    /// [`Error::Config`] (`uhn.separation`) listing the valid names.
    pub fn parse(s: &str) -> Result<Self> {
        SEPARATIONS.into_iter().find(|k| k.name() == s).ok_or_else(|| {
            let valid: Vec<_> = SEPARATIONS.iter().map(|k| k.name()).collect();
            Error::config(
                "uhn.separation",
                format!("unknown separation `{s}`; valid: {}", valid.join(", ")),
            )
        })
    }

    /// Applies the separation to `s` in place.
    pub fn apply(self, s: &mut [f64], param: f64) {
        match self {
            Separation::Identity => {}
            Separation::Softmax => {
                let m = s.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(param * b));
                s.iter_mut().for_each(|v| *v = (param * *v - m).exp());
                let z: f64 = s.iter().sum();
                s.iter_mut().for_each(|v| *v /= z);
            }
            Separation::Polynomial => s.iter_mut().for_each(|v| *v = v.powf(param)),
            Separation::Log => s.iter_mut().for_each(|v| *v = v.ln()),
            Separation::Max => {
                let best = argmax(s);
                s.iter_mut().enumerate().for_each(|(i, v)| *v = (i == best) as u8 as f64);
            }
        }
    }
}

/// Index of the largest value (the first of ties; NaN never wins).
fn argmax(s: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in s.iter().enumerate() {
        if v > s[best] || s[best].is_nan() {
            best = i;
        }
    }
    best
}

/// Settings of a Universal Hopfield Network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UhnConfig {
    /// Similarity function.
    pub similarity: Similarity,
    /// Separation function.
    pub separation: Separation,
    /// Softmax inverse temperature, or the polynomial's power.
    pub param: f64,
    /// Sum-normalise the scores before and after the separation (the reference does).
    pub normalise: bool,
    /// Classical Hopfield: patterns and queries mapped to ±1 (`sign(x − 0.5)`), the output
    /// to its sign.
    pub bipolar: bool,
}

impl Default for UhnConfig {
    fn default() -> Self {
        Self {
            similarity: Similarity::Manhattan,
            separation: Separation::Max,
            param: 1000.0,
            normalise: true,
            bipolar: false,
        }
    }
}

impl UhnConfig {
    /// The classical Hopfield network: bipolar, `out = sign(Mᵀ M z) = sign((Σ x xᵀ) z)`.
    pub fn classical() -> Self {
        Self {
            similarity: Similarity::Dot,
            separation: Separation::Identity,
            param: 1.0,
            normalise: false,
            bipolar: true,
        }
    }

    /// The modern continuous Hopfield network: `out = Mᵀ softmax(beta M z)`.
    pub fn modern(beta: f64) -> Self {
        Self {
            similarity: Similarity::Dot,
            separation: Separation::Softmax,
            param: beta,
            normalise: false,
            bipolar: false,
        }
    }

    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::Config`] (`uhn.param`) if the parameter is not finite, or not > 0 for a
    /// softmax or polynomial.
    pub fn validate(&self) -> Result<()> {
        let needs_positive =
            matches!(self.separation, Separation::Softmax | Separation::Polynomial);
        if !self.param.is_finite() || (needs_positive && self.param <= 0.0) {
            return Err(Error::config(
                "uhn.param",
                format!("must be finite (and > 0 for softmax, polynomial), found {}", self.param),
            ));
        }
        Ok(())
    }
}

/// A Universal Hopfield Network.
#[derive(Clone, Debug)]
pub struct Uhn {
    /// Settings.
    pub cfg: UhnConfig,
    dim: usize,
    /// Stored memories `M`, one per row.
    memories: Tensor<f32>,
    /// The projection `P` (rows = outputs of each memory); `None` = `M` (auto-association).
    projection: Option<Tensor<f32>>,
}

fn bipolar(x: &Tensor<f32>) -> Tensor<f32> {
    let mut b = x.clone();
    b.data_mut().iter_mut().for_each(|v| *v = if *v - 0.5 >= 0.0 { 1.0 } else { -1.0 });
    b
}

impl Uhn {
    /// An empty network for patterns `dim` wide.
    pub fn new(cfg: UhnConfig, dim: usize) -> Self {
        Self { cfg, dim, memories: Tensor::zeros(0, dim), projection: None }
    }

    /// Stores key → value pairs (hetero-association): recall compares the query with the
    /// keys and returns a mix of the values.
    ///
    /// # Errors
    /// [`Error::Shape`] if the keys are not `dim` wide or the counts differ.
    pub fn store_hetero(&mut self, keys: &Tensor<f32>, values: &Tensor<f32>) -> Result<()> {
        check_patterns(self.dim, keys)?;
        if values.rows() != keys.rows() {
            return Err(Error::shape("store", "values (one per key)", keys.rows(), values.rows()));
        }
        self.memories = if self.cfg.bipolar { bipolar(keys) } else { keys.clone() };
        self.projection = Some(values.clone());
        Ok(())
    }

    /// The weights `sep(sim(M, z))` (normalised as configured) of one query.
    ///
    /// # Errors
    /// [`Error::Config`] if the scores cannot be normalised (they sum to 0 or are not finite).
    pub fn weights(&self, z: &[f32]) -> Result<Vec<f64>> {
        let m = &self.memories;
        let mut s: Vec<f64> =
            (0..m.rows()).map(|i| self.cfg.similarity.score(m.row(i), z)).collect();
        // An exact match has an infinite reciprocal distance: the limit is one-hot on it.
        if s.iter().any(|v| v.is_infinite() && *v > 0.0) {
            s.iter_mut().for_each(|v| *v = (v.is_infinite() && *v > 0.0) as u8 as f64);
        }
        let normalise = |s: &mut [f64], when: &str| -> Result<()> {
            let total: f64 = s.iter().sum();
            if total == 0.0 || !total.is_finite() {
                return Err(Error::config(
                    "uhn",
                    format!(
                        "the scores {when} the separation sum to {total}: cannot normalise \
                         ({} similarity, {} separation)",
                        self.cfg.similarity.name(),
                        self.cfg.separation.name()
                    ),
                ));
            }
            s.iter_mut().for_each(|v| *v /= total);
            Ok(())
        };
        if self.cfg.normalise {
            normalise(&mut s, "before")?;
        }
        self.cfg.separation.apply(&mut s, self.cfg.param);
        if self.cfg.normalise {
            normalise(&mut s, "after")?;
        }
        Ok(s)
    }
}

impl Memory for Uhn {
    fn kind(&self) -> &'static str {
        "uhn"
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn store(&mut self, patterns: &Tensor<f32>) -> Result<StoreStats> {
        check_patterns(self.dim, patterns)?;
        self.memories = if self.cfg.bipolar { bipolar(patterns) } else { patterns.clone() };
        self.projection = None;
        Ok(StoreStats { patterns: patterns.rows(), epochs: 0, final_loss: 0.0 })
    }

    /// Single shot for every entry, as the reference (the mask is not used).
    fn recall(&self, query: &Tensor<f32>, mask: &Tensor<f32>) -> Result<Tensor<f32>> {
        check_query(self.dim, query, mask)?;
        if self.memories.rows() == 0 {
            return Err(Error::config("recall", "nothing stored"));
        }
        let q = if self.cfg.bipolar { bipolar(query) } else { query.clone() };
        let p = self.projection.as_ref().unwrap_or(&self.memories);
        let rows: Vec<Result<Vec<f32>>> = (0..q.rows())
            .into_par_iter()
            .map(|r| {
                let w = self.weights(q.row(r))?;
                let mut out = vec![0.0f64; p.cols()];
                for (i, &wi) in w.iter().enumerate() {
                    if wi != 0.0 {
                        for (o, &v) in out.iter_mut().zip(p.row(i)) {
                            *o += wi * v as f64;
                        }
                    }
                }
                Ok(out
                    .into_iter()
                    .map(|v| {
                        if self.cfg.bipolar {
                            if v >= 0.0 {
                                1.0
                            } else {
                                -1.0
                            }
                        } else {
                            v as f32
                        }
                    })
                    .collect())
            })
            .collect();
        let mut out = Tensor::zeros(q.rows(), p.cols());
        for (r, row) in rows.into_iter().enumerate() {
            out.row_mut(r).copy_from_slice(&row?);
        }
        Ok(out)
    }

    fn tensors(&self) -> Vec<(String, Tensor<f64>)> {
        let mut t = vec![("memories".to_string(), self.memories.cast())];
        if let Some(p) = &self.projection {
            t.push(("projection".into(), p.cast()));
        }
        t
    }

    fn load_tensors(&mut self, tensors: &[(String, Tensor<f64>)]) -> Result<()> {
        let m = take_tensor(tensors, "memories", None)?.cast::<f32>();
        if m.cols() != self.dim {
            return Err(Error::Checkpoint {
                path: "memory".into(),
                msg: format!("memories are {} wide, expected {}", m.cols(), self.dim),
            });
        }
        self.projection = take_tensor(tensors, "projection", None).ok().map(|p| p.cast());
        self.memories = m;
        Ok(())
    }
}
