//! Associative memories: store patterns, recall them from corrupted or partial queries.
//!
//! Three families (science.md §6–8), one file each behind [`Memory`]:
//! - [`gpcn`]: the generative PCN memory of Salvatori, Song et al. (NeurIPS 2021), a graph of
//!   the engine (latent → hidden → image) trained by PC with the image clamped;
//! - [`uhn`]: Universal Hopfield Networks (Millidge et al., ICML 2022),
//!   `out = Pᵀ sep(sim(M, q))`, classical and modern Hopfield as named cases;
//! - [`covpc`]: recurrent PC with covariance learning (Tang et al., PLOS CB 2023), explicit,
//!   implicit and dendritic.
//!
//! Queries come from a [`Corruption`] of the stored patterns: a query tensor and a mask
//! (1 = known entry, kept; 0 = unknown, recalled). [`Scores`] measures a recall.
//!
//! ```
//! # fn main() -> prospect::Result<()> {
//! use prospect::memory::{self, Corruption, ImageShape, MemoryConfig};
//! use prospect::Tensor;
//! let patterns = Tensor::from_fn(5, 16, |r, c| ((r * 7 + c * 3) % 5) as f32 / 4.0);
//! let cfg = MemoryConfig { model: "uhn".into(), ..Default::default() };
//! let mut mem = memory::build(&cfg, 16)?;
//! mem.store(&patterns)?;
//! let shape = ImageShape { channels: 1, height: 4, width: 4 };
//! let (query, mask) = Corruption::parse("mask:bottom:0.5")?.apply(&patterns, shape, 0)?;
//! let recalled = mem.recall(&query, &mask)?;
//! let scores = memory::Scores::of(&recalled, &patterns, 1.0);
//! assert_eq!(scores.sse.len(), 5);
//! # Ok(())
//! # }
//! ```

pub mod covpc;
pub mod gpcn;
pub mod uhn;

use crate::checkpoint;
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use rand::{Rng, SeedableRng};
use rand_distr::Distribution;
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The memory models: name (as in `--model`) and a line about each.
pub const MODELS: &[(&str, &str)] = &[
    ("gpcn", "generative PCN: latent -> hidden -> image, trained by PC (Salvatori et al. 2021)"),
    ("uhn", "Universal Hopfield Network: out = P^T sep(sim(M, q)) (Millidge et al. 2022)"),
    ("covpc-explicit", "recurrent PC learning the covariance S and mean (Tang et al. 2023)"),
    ("covpc-implicit", "recurrent PC learning W (zero diagonal) and b, dx = -e + f'(x) W^T e"),
    ("covpc-dendritic", "as covpc-implicit, with dendritic inference dx = -e"),
];

/// Layout of a pattern seen as an image (for masks by region and for grids).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageShape {
    /// Channels (1 for grey).
    pub channels: usize,
    /// Rows.
    pub height: usize,
    /// Columns.
    pub width: usize,
}

impl ImageShape {
    /// Values per pattern.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the shape holds no value.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The flat vector of `d` values seen as one row (`1 x d`).
    pub fn flat(d: usize) -> Self {
        Self { channels: 1, height: 1, width: d }
    }

    /// A square grey image of `d` pixels when `d` is a square, else [`ImageShape::flat`].
    pub fn guess(d: usize) -> Self {
        let s = (d as f64).sqrt().round() as usize;
        if s * s == d {
            Self { channels: 1, height: s, width: s }
        } else {
            Self::flat(d)
        }
    }

    /// Row of entry `i` of a pattern (channel-major layout, `C x H x W`).
    fn row_of(&self, i: usize) -> usize {
        (i / self.width) % self.height
    }

    fn col_of(&self, i: usize) -> usize {
        i % self.width
    }
}

/// How a query is made from a stored pattern.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Corruption {
    /// `x + N(0, std²)`, every entry unknown (the query only starts recall).
    Noise {
        /// Standard deviation of the noise.
        std: f64,
    },
    /// As [`Corruption::Noise`], then `|.|` and clipped to `[0, 1]` (the UHN reference code).
    NoiseClip {
        /// Standard deviation of the noise.
        std: f64,
    },
    /// The bottom `fraction` of the rows unknown (set to 0), the rest known.
    Bottom {
        /// Fraction of rows, in (0, 1).
        fraction: f64,
    },
    /// Each entry unknown (set to 0) with probability `fraction`, seeded.
    Random {
        /// Probability, in (0, 1).
        fraction: f64,
    },
    /// A frame `width` pixels wide around the image unknown (set to 0): in-painting the border.
    Border {
        /// Width of the frame in pixels.
        width: usize,
    },
}

/// The corruptions accepted by [`Corruption::parse`].
pub const CORRUPTIONS: &str =
    "noise:STD, noise-clip:STD, mask:bottom:FRACTION, random:FRACTION, border:PIXELS";

impl Corruption {
    /// Parses `noise:0.2`, `noise-clip:0.2`, `mask:bottom:0.5`, `random:0.3`, `border:4`.
    ///
    /// # Errors
    /// [`Error::Config`] (`corrupt`) naming the accepted forms, or the value out of range.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = |msg: String| Error::config("corrupt", format!("`{s}`: {msg}"));
        let num = |v: &str| -> Result<f64> {
            v.parse::<f64>().map_err(|_| bad(format!("`{v}` is not a number")))
        };
        let parts: Vec<&str> = s.split(':').collect();
        let c = match parts.as_slice() {
            ["noise", v] => Corruption::Noise { std: num(v)? },
            ["noise-clip", v] => Corruption::NoiseClip { std: num(v)? },
            ["mask", "bottom", v] | ["bottom", v] => Corruption::Bottom { fraction: num(v)? },
            ["random", v] | ["mask", "random", v] => Corruption::Random { fraction: num(v)? },
            ["border", v] => Corruption::Border {
                width: v.parse().map_err(|_| bad(format!("`{v}` is not a pixel count")))?,
            },
            _ => return Err(bad(format!("expected one of {CORRUPTIONS}"))),
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks the parameter's range.
    ///
    /// # Errors
    /// [`Error::Config`] (`corrupt`): std not > 0, a fraction outside (0, 1), a zero border.
    pub fn validate(&self) -> Result<()> {
        let err = |msg: String| Err(Error::config("corrupt", msg));
        match *self {
            Corruption::Noise { std } | Corruption::NoiseClip { std } => {
                if !(std.is_finite() && std > 0.0) {
                    return err(format!("noise std must be > 0, found {std}"));
                }
            }
            Corruption::Bottom { fraction } | Corruption::Random { fraction } => {
                if !(fraction > 0.0 && fraction < 1.0) {
                    return err(format!("mask fraction must be in (0, 1), found {fraction}"));
                }
            }
            Corruption::Border { width } => {
                if width == 0 {
                    return err("border width must be at least 1 pixel".into());
                }
            }
        }
        Ok(())
    }

    /// The corruption written as [`Corruption::parse`] reads it.
    pub fn label(&self) -> String {
        match *self {
            Corruption::Noise { std } => format!("noise:{std}"),
            Corruption::NoiseClip { std } => format!("noise-clip:{std}"),
            Corruption::Bottom { fraction } => format!("mask:bottom:{fraction}"),
            Corruption::Random { fraction } => format!("random:{fraction}"),
            Corruption::Border { width } => format!("border:{width}"),
        }
    }

    /// Whether every entry of the query is unknown (noise: recall moves every entry).
    pub fn is_noise(&self) -> bool {
        matches!(self, Corruption::Noise { .. } | Corruption::NoiseClip { .. })
    }

    /// Corrupts each row of `x` (patterns of `shape`): returns the query and the mask
    /// (1 = known entry, 0 = unknown). Seeded.
    ///
    /// # Errors
    /// [`Error::Shape`] if the rows are not `shape.len()` wide; [`Error::Config`] if the
    /// corruption leaves no entry unknown or none known (a border wider than the image).
    pub fn apply(
        &self,
        x: &Tensor<f32>,
        shape: ImageShape,
        seed: u64,
    ) -> Result<(Tensor<f32>, Tensor<f32>)> {
        self.validate()?;
        if x.cols() != shape.len() {
            return Err(Error::shape("corrupt", "pattern width", shape.len(), x.cols()));
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        let mut q = x.clone();
        let mut mask = Tensor::full(x.rows(), x.cols(), 1.0f32);
        match *self {
            Corruption::Noise { std } | Corruption::NoiseClip { std } => {
                let n = rand_distr::Normal::new(0.0, std).expect("std validated");
                let clip = matches!(self, Corruption::NoiseClip { .. });
                for v in q.data_mut() {
                    *v += n.sample(&mut rng) as f32;
                    if clip {
                        *v = v.abs().min(1.0);
                    }
                }
                mask.fill(0.0);
            }
            Corruption::Bottom { fraction } => {
                // Rows int(H (1 - fraction)).. are unknown, as the UHN reference masks them.
                let keep = (shape.height as f64 * (1.0 - fraction)).floor() as usize;
                if keep == 0 || keep == shape.height {
                    return Err(Error::config(
                        "corrupt",
                        format!(
                            "mask:bottom:{fraction} of {} rows leaves {keep} known rows: \
                             nothing or everything would be recalled",
                            shape.height
                        ),
                    ));
                }
                for c in 0..x.cols() {
                    if shape.row_of(c) >= keep {
                        for r in 0..x.rows() {
                            mask.row_mut(r)[c] = 0.0;
                        }
                    }
                }
            }
            Corruption::Random { fraction } => {
                // Per pixel location: every channel of a pixel is hidden together.
                let plane = shape.height * shape.width;
                for r in 0..x.rows() {
                    let row = mask.row_mut(r);
                    for p in 0..plane {
                        if rng.random::<f64>() < fraction {
                            for ch in 0..shape.channels {
                                row[ch * plane + p] = 0.0;
                            }
                        }
                    }
                }
            }
            Corruption::Border { width } => {
                if 2 * width >= shape.height.min(shape.width) {
                    return Err(Error::config(
                        "corrupt",
                        format!(
                            "border:{width} covers the whole {}x{} image",
                            shape.height, shape.width
                        ),
                    ));
                }
                for c in 0..x.cols() {
                    let (i, j) = (shape.row_of(c), shape.col_of(c));
                    let edge = i < width
                        || j < width
                        || i >= shape.height - width
                        || j >= shape.width - width;
                    if edge {
                        for r in 0..x.rows() {
                            mask.row_mut(r)[c] = 0.0;
                        }
                    }
                }
            }
        }
        if !self.is_noise() {
            for (v, m) in q.data_mut().iter_mut().zip(mask.data()) {
                *v *= m;
            }
        }
        Ok((q, mask))
    }
}

/// What a memory reports after storing.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StoreStats {
    /// Patterns stored.
    pub patterns: usize,
    /// Training epochs (0 for a single-shot memory).
    pub epochs: usize,
    /// The model's own loss at the end (energy per pattern, or 0 when nothing is learnt).
    pub final_loss: f64,
}

/// An associative memory.
pub trait Memory: Send + Sync {
    /// Model name (as in [`MODELS`]).
    fn kind(&self) -> &'static str;

    /// Width of a pattern.
    fn dim(&self) -> usize;

    /// Stores `patterns` (one per row), replacing what was stored.
    ///
    /// # Errors
    /// [`Error::Shape`] if the rows are not [`Memory::dim`] wide; [`Error::NonFinite`] if
    /// learning diverges.
    fn store(&mut self, patterns: &Tensor<f32>) -> Result<StoreStats>;

    /// Recalls the pattern behind each row of `query`; entries where `mask` is 1 are known
    /// (held at the query), the others are recalled. A mask of zeros recalls every entry
    /// from the query as a starting point (noise).
    ///
    /// # Errors
    /// [`Error::Shape`] on mismatched shapes; [`Error::Config`] if nothing is stored;
    /// [`Error::NonFinite`] if recall diverges.
    fn recall(&self, query: &Tensor<f32>, mask: &Tensor<f32>) -> Result<Tensor<f32>>;

    /// The learnt state as named tensors (what [`save`] writes; f64, so that a model
    /// learning in f64 reloads exactly).
    fn tensors(&self) -> Vec<(String, Tensor<f64>)>;

    /// Restores the state written by [`Memory::tensors`].
    ///
    /// # Errors
    /// [`Error::Checkpoint`] on a missing or misshapen tensor.
    fn load_tensors(&mut self, tensors: &[(String, Tensor<f64>)]) -> Result<()>;
}

/// Checks a query and its mask against a memory of width `dim`.
pub(crate) fn check_query(dim: usize, query: &Tensor<f32>, mask: &Tensor<f32>) -> Result<()> {
    if query.cols() != dim {
        return Err(Error::shape("recall", "query width", dim, query.cols()));
    }
    if mask.shape() != query.shape() {
        return Err(Error::shape("recall", "mask", query.shape(), mask.shape()));
    }
    Ok(())
}

/// Checks patterns to store against a memory of width `dim`.
pub(crate) fn check_patterns(dim: usize, patterns: &Tensor<f32>) -> Result<()> {
    if patterns.cols() != dim {
        return Err(Error::shape("store", "pattern width", dim, patterns.cols()));
    }
    if patterns.rows() == 0 {
        return Err(Error::config("store", "no patterns to store"));
    }
    if !patterns.all_finite() {
        return Err(Error::config("store", "the patterns hold NaN or infinite values"));
    }
    Ok(())
}

/// The named tensor `name` of shape `shape`, for [`Memory::load_tensors`].
pub(crate) fn take_tensor<T: crate::tensor::Scalar>(
    tensors: &[(String, Tensor<T>)],
    name: &str,
    shape: Option<[usize; 2]>,
) -> Result<Tensor<T>> {
    let t = tensors.iter().find(|(n, _)| n == name).map(|(_, t)| t).ok_or_else(|| {
        Error::Checkpoint { path: "memory".into(), msg: format!("missing tensor `{name}`") }
    })?;
    if let Some(s) = shape {
        if t.shape() != s {
            return Err(Error::Checkpoint {
                path: "memory".into(),
                msg: format!("tensor `{name}` has shape {:?}, expected {s:?}", t.shape()),
            });
        }
    }
    Ok(t.clone())
}

/// Settings of a memory: the model and each family's own section.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MemoryConfig {
    /// Model name (see [`MODELS`]).
    pub model: String,
    /// Seed of the weights and of any noise.
    pub seed: u64,
    /// `[uhn]`.
    pub uhn: uhn::UhnConfig,
    /// `[gpcn]`.
    pub gpcn: gpcn::GpcnConfig,
    /// `[covpc]`.
    pub covpc: covpc::CovConfig,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            model: "gpcn".into(),
            seed: 0,
            uhn: Default::default(),
            gpcn: Default::default(),
            covpc: Default::default(),
        }
    }
}

impl MemoryConfig {
    /// Checks the model name and the ranges of its section.
    ///
    /// # Errors
    /// [`Error::Config`] naming the key.
    pub fn validate(&self) -> Result<()> {
        match self.model.as_str() {
            "gpcn" => self.gpcn.validate(),
            "uhn" => self.uhn.validate(),
            "covpc-explicit" | "covpc-implicit" | "covpc-dendritic" => self.covpc.validate(),
            other => {
                let valid: Vec<_> = MODELS.iter().map(|m| m.0).collect();
                Err(Error::config(
                    "model",
                    format!("unknown memory model `{other}`; valid: {}", valid.join(", ")),
                ))
            }
        }
    }

    /// The config as TOML (what `memory store` writes).
    ///
    /// # Errors
    /// [`Error::Config`] if it cannot be written.
    pub fn to_toml(&self) -> Result<String> {
        toml::to_string(self).map_err(|e| Error::config("memory", e.to_string()))
    }

    /// Reads a config from TOML, then applies `key=value` overrides in order.
    ///
    /// # Errors
    /// [`Error::Config`] naming an unknown key or a bad value.
    pub fn from_toml(text: &str, overrides: &[String]) -> Result<Self> {
        // The defaults, then the file, then the overrides: every key keeps its type.
        let mut value = toml::Value::try_from(MemoryConfig::default())
            .map_err(|e| Error::config("memory", e.to_string()))?;
        let file =
            text.parse::<toml::Table>().map_err(|e| Error::config("memory", e.to_string()))?;
        crate::config::merge(&mut value, toml::Value::Table(file));
        for o in overrides {
            crate::config::apply_override(&mut value, o)?;
        }
        let de = value;
        let cfg: MemoryConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            Error::config(if path == "." { "memory".into() } else { path }, e.inner().to_string())
        })?;
        cfg.validate()?;
        Ok(cfg)
    }
}

/// Builds the memory `cfg.model` for patterns `dim` wide.
///
/// # Errors
/// [`Error::Config`] for an unknown model or settings out of range.
pub fn build(cfg: &MemoryConfig, dim: usize) -> Result<Box<dyn Memory>> {
    cfg.validate()?;
    if dim == 0 {
        return Err(Error::config("memory", "patterns of width 0"));
    }
    Ok(match cfg.model.as_str() {
        "gpcn" => Box::new(gpcn::Gpcn::new(cfg.gpcn.clone(), dim, cfg.seed)?),
        "uhn" => Box::new(uhn::Uhn::new(cfg.uhn.clone(), dim)),
        "covpc-explicit" => {
            Box::new(covpc::CovPc::new(covpc::Variant::Explicit, cfg.covpc.clone(), dim, cfg.seed))
        }
        "covpc-implicit" => {
            Box::new(covpc::CovPc::new(covpc::Variant::Implicit, cfg.covpc.clone(), dim, cfg.seed))
        }
        "covpc-dendritic" => {
            Box::new(covpc::CovPc::new(covpc::Variant::Dendritic, cfg.covpc.clone(), dim, cfg.seed))
        }
        _ => unreachable!("validated"),
    })
}

/// How well a recall matches the truth, per pattern.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scores {
    /// Summed squared error per pattern.
    pub sse: Vec<f64>,
    /// Mean squared error per entry, per pattern.
    pub mse: Vec<f64>,
    /// The success threshold on the summed squared error.
    pub threshold: f64,
}

impl Scores {
    /// Compares `recalled` with `truth` row by row.
    pub fn of(recalled: &Tensor<f32>, truth: &Tensor<f32>, threshold: f64) -> Self {
        let d = truth.cols().max(1) as f64;
        let sse: Vec<f64> = (0..truth.rows())
            .map(|r| {
                recalled
                    .row(r)
                    .iter()
                    .zip(truth.row(r))
                    .map(|(a, b)| ((a - b) as f64).powi(2))
                    .sum::<f64>()
            })
            .collect();
        let mse = sse.iter().map(|s| s / d).collect();
        Self { sse, mse, threshold }
    }

    /// [`Scores::of`] after clipping the recall to [0, 1] (the PCX benchmark's metric).
    pub fn of_clipped(recalled: &Tensor<f32>, truth: &Tensor<f32>, threshold: f64) -> Self {
        let mut r = recalled.clone();
        r.data_mut().iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        Self::of(&r, truth, threshold)
    }

    /// Fraction of patterns whose summed squared error is at most the threshold.
    pub fn success(&self) -> f64 {
        if self.sse.is_empty() {
            return 0.0;
        }
        self.sse.iter().filter(|&&s| s <= self.threshold).count() as f64 / self.sse.len() as f64
    }

    /// Mean of the per-pattern MSE.
    pub fn mean_mse(&self) -> f64 {
        if self.mse.is_empty() {
            return f64::NAN;
        }
        self.mse.iter().sum::<f64>() / self.mse.len() as f64
    }
}

/// The UHN reference's success threshold: summed squared error <= 60 for 784 pixels. On
/// MNIST the data set's mean image passes it for 74% of the training digits.
pub const REFERENCE_THRESHOLD: f64 = 60.0;

/// prospect's default success threshold, per 784 entries: summed squared error <= 10
/// (MSE 0.0128). The MNIST mean image passes it for none of the 60,000 training digits
/// (its smallest error is 27.8), nor for their bottom halves (14.1).
pub const STRICT_THRESHOLD: f64 = 10.0;

/// The success threshold on the summed squared error for patterns of `dim` entries: the UHN
/// reference's 60 for 784 pixels, scaled by `dim / 784` when `scale`.
pub fn threshold(base: f64, dim: usize, scale: bool) -> f64 {
    if scale {
        base * dim as f64 / 784.0
    } else {
        base
    }
}

/// The mean of the rows of `x` as one row.
pub fn mean_row(x: &Tensor<f32>) -> Vec<f32> {
    let n = x.rows().max(1) as f64;
    (0..x.cols())
        .map(|c| ((0..x.rows()).map(|r| x.at(r, c) as f64).sum::<f64>() / n) as f32)
        .collect()
}

/// The baseline a memory must beat: every query answered with `mean` (the data set's mean
/// image), known entries kept from the query.
pub fn mean_baseline(mean: &[f32], query: &Tensor<f32>, mask: &Tensor<f32>) -> Tensor<f32> {
    Tensor::from_fn(query.rows(), query.cols(), |r, c| {
        if mask.at(r, c) > 0.0 {
            query.at(r, c)
        } else {
            mean[c]
        }
    })
}

/// Where `memory store` writes a memory and its patterns.
pub const FILE: &str = "memory.safetensors";
/// The config written beside it.
pub const CONFIG_FILE: &str = "memory.toml";

/// What a saved memory holds besides the model: the stored patterns, their layout and the
/// data set's mean pattern (for the baseline).
#[derive(Debug)]
pub struct Stored {
    /// The config the memory was built from.
    pub config: MemoryConfig,
    /// The model.
    pub memory: Box<dyn Memory>,
    /// The stored patterns (the truth of recall).
    pub patterns: Tensor<f32>,
    /// The mean pattern of the data set they were drawn from.
    pub mean: Vec<f32>,
    /// Layout of a pattern.
    pub shape: ImageShape,
}

impl std::fmt::Debug for dyn Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} memory of width {}", self.kind(), self.dim())
    }
}

/// Saves a memory, its config and its patterns under `dir` (atomically, file by file).
///
/// # Errors
/// [`Error::Io`] naming the file.
pub fn save(dir: &Path, stored: &Stored) -> Result<()> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Io { path: dir.display().to_string(), source: e })?;
    let mut raw: Vec<(String, Vec<usize>, safetensors::Dtype, Vec<u8>)> = stored
        .memory
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
            (format!("model.{n}"), vec![t.rows(), t.cols()], safetensors::Dtype::F64, bytes)
        })
        .collect();
    let mean = Tensor::from_vec(1, stored.mean.len(), stored.mean.clone());
    for (n, t) in [("patterns", &stored.patterns), ("mean", &mean)] {
        let bytes = t.data().iter().flat_map(|v| v.to_le_bytes()).collect();
        raw.push((n.into(), vec![t.rows(), t.cols()], safetensors::Dtype::F32, bytes));
    }
    let mut meta = checkpoint::Metadata::new();
    meta.insert("model".into(), stored.memory.kind().into());
    meta.insert("dim".into(), stored.memory.dim().to_string());
    meta.insert(
        "shape".into(),
        serde_json::to_string(&stored.shape).map_err(|e| Error::config("memory", e.to_string()))?,
    );
    let bytes = checkpoint::encode(&raw, &meta)?;
    checkpoint::write_atomic(&dir.join(FILE), &bytes)?;
    checkpoint::write_atomic(&dir.join(CONFIG_FILE), stored.config.to_toml()?.as_bytes())
}

/// Loads what [`save`] wrote under `dir`.
///
/// # Errors
/// [`Error::Io`] if a file is missing; [`Error::Checkpoint`] if a tensor is missing,
/// misshapen or not finite; [`Error::Config`] if the config is invalid.
pub fn load(dir: &Path) -> Result<Stored> {
    let cfg_path = dir.join(CONFIG_FILE);
    let text = std::fs::read_to_string(&cfg_path)
        .map_err(|e| Error::Io { path: cfg_path.display().to_string(), source: e })?;
    let config = MemoryConfig::from_toml(&text, &[])?;
    let path = dir.join(FILE);
    let meta = checkpoint::read_metadata(&path)?;
    let ckpt = |msg: String| Error::Checkpoint { path: path.display().to_string(), msg };
    let dim: usize = meta
        .get("dim")
        .and_then(|d| d.parse().ok())
        .ok_or_else(|| ckpt("metadata `dim` missing or not a number".into()))?;
    let shape: ImageShape = meta
        .get("shape")
        .and_then(|s| serde_json::from_str(s).ok())
        .ok_or_else(|| ckpt("metadata `shape` missing or invalid".into()))?;
    if meta.get("model").map(String::as_str) != Some(config.model.as_str()) {
        return Err(ckpt(format!(
            "holds a `{}` memory but {} says `{}`",
            meta.get("model").map(String::as_str).unwrap_or("?"),
            CONFIG_FILE,
            config.model
        )));
    }
    let mut tensors = Vec::new();
    for t in checkpoint::read_tensors(&path)? {
        if t.shape.len() != 2 {
            return Err(ckpt(format!("tensor `{}` is not 2-D", t.name)));
        }
        if t.values.iter().any(|v| !v.is_finite()) {
            return Err(ckpt(format!("tensor `{}` holds NaN or infinite values", t.name)));
        }
        tensors.push((t.name, Tensor::from_vec(t.shape[0], t.shape[1], t.values)));
    }
    let named = |n: &str| {
        take_tensor(&tensors, n, None).map(|t| t.cast::<f32>()).map_err(|e| ckpt(e.to_string()))
    };
    let patterns = named("patterns")?;
    let mean = named("mean")?.into_vec();
    if patterns.cols() != dim || mean.len() != dim || shape.len() != dim {
        return Err(ckpt(format!("patterns, mean and shape disagree with dim {dim}")));
    }
    let model_tensors: Vec<(String, Tensor<f64>)> = tensors
        .iter()
        .filter_map(|(n, t)| n.strip_prefix("model.").map(|m| (m.to_string(), t.clone())))
        .collect();
    let mut memory = build(&config, dim)?;
    memory.load_tensors(&model_tensors).map_err(|e| ckpt(e.to_string()))?;
    Ok(Stored { config, memory, patterns, mean, shape })
}

/// `n` patterns of data set `name` (pixels in [0, 1]) for disjoint set `set`: images
/// `set*n .. (set+1)*n` of a seeded shuffle of the training split, with its mean image.
/// `NAME-grey` (e.g. `cifar10-grey`) turns a colour set grey.
///
/// # Errors
/// [`Error::Data`] if the data set is missing (naming the fetch command);
/// [`Error::Config`] (`n`) if it holds fewer than `(set + 1) * n` images.
pub fn patterns(
    name: &str,
    n: usize,
    set: usize,
    seed: u64,
) -> Result<(Tensor<f32>, Vec<f32>, ImageShape)> {
    patterns_in(name, None, n, set, seed)
}

/// As [`patterns`], with the data set's files looked for in `dir` (see
/// [`crate::data::load`]).
///
/// # Errors
/// As [`patterns`].
pub fn patterns_in(
    name: &str,
    dir: Option<&Path>,
    n: usize,
    set: usize,
    seed: u64,
) -> Result<(Tensor<f32>, Vec<f32>, ImageShape)> {
    // `NAME-grey`: the colour data set in grey (ITU-R 601 luma, as torchvision's Grayscale).
    let (base, grey) = match name.strip_suffix("-grey") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let mut d = crate::data::load(base, crate::data::Split::Train, dir)?;
    d.scale_unit();
    if grey {
        let [c, h, w] = d.shape;
        if c != 3 {
            return Err(Error::config(
                "data",
                format!("`{name}`: only a 3-channel data set can be made grey; {base} has {c}"),
            ));
        }
        let plane = h * w;
        d.x =
            d.x.chunks_exact(3 * plane)
                .flat_map(|img| {
                    (0..plane).map(move |p| {
                        0.299 * img[p] + 0.587 * img[plane + p] + 0.114 * img[2 * plane + p]
                    })
                })
                .collect();
        d.shape = [1, h, w];
    }
    let dim = d.features();
    let [channels, height, width] = d.shape;
    let shape = if channels * height * width == dim && height > 1 {
        ImageShape { channels, height, width }
    } else {
        ImageShape::guess(dim)
    };
    patterns_of(&d.x, dim, n, set, seed, name).map(|(p, m)| (p, m, shape))
}

/// As [`patterns`], from rows of `dim` values.
///
/// # Errors
/// [`Error::Config`] (`n`) if `n` is 0 or the data holds fewer than `(set + 1) * n` rows.
pub fn patterns_of(
    x: &[f32],
    dim: usize,
    n: usize,
    set: usize,
    seed: u64,
    name: &str,
) -> Result<(Tensor<f32>, Vec<f32>)> {
    let total = x.len() / dim.max(1);
    if n == 0 || (set + 1) * n > total {
        return Err(Error::config(
            "n",
            format!(
                "{n} patterns for set {set} need {} images, but {name} has {total}",
                (set + 1) * n
            ),
        ));
    }
    let order = crate::data::permutation(total, seed);
    let pick = &order[set * n..(set + 1) * n];
    let p = Tensor::from_fn(n, dim, |r, c| x[pick[r] * dim + c]);
    let all = Tensor::from_vec(total, dim, x.to_vec());
    Ok((p, mean_row(&all)))
}
