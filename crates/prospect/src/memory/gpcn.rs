//! The generative PCN memory (Salvatori, Song et al., NeurIPS 2021) on the graph engine:
//! nodes `latent → h1 → … → image`, trained by PC with the image clamped.
//!
//! **Store**: per batch, the image node clamped to the patterns, the latent and hidden nodes
//! start at 0 (the PCX benchmark's version), `steps` node updates at `gamma`, then one AdamW
//! step on the weights (mean over the batch), for `epochs` passes.
//! **Recall**: the image node is *initialised* to a noisy query with every pixel free
//! (noise), or *masked*: known pixels held at the query after every step, unknown ones
//! inferred; `recall_steps` updates at `recall_gamma`, halved whenever the energy rises. The recalled image (clipped to
//! [0, 1], as the reference's metric does) can be fed back as the next query
//! (`recall_iterations`).

use super::{check_patterns, check_query, take_tensor, Memory, StoreStats};
use crate::error::{Error, Result};
use crate::graph::{EdgeSpec, NodeSpec, Prior};
use crate::infer::{Given, InferenceConfig, InferenceStats};
use crate::layers::{Activation, Convention};
use crate::net::{MlpSpec, Net, Workspace};
use crate::optim::{OptimConfig, OptimKind, WeightOptim};
use crate::tensor::Tensor;
use serde::{Deserialize, Serialize};

/// Settings of the generative PCN memory.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GpcnConfig {
    /// Width of the top latent node.
    pub latent: usize,
    /// Widths of the hidden nodes, top to bottom.
    pub hidden: Vec<usize>,
    /// Hidden activation.
    pub activation: Activation,
    /// `f_w`: `mu = f(W x + b)` (PCX; linear pixels), or `w_f`: `mu = W f(x) + b`.
    pub convention: Convention,
    /// A learned prior mean on the latent node (else no prior: the latent is free); with it
    /// the model is Tang et al.'s hierarchical PCN (a learned top `memory` vector).
    pub prior: bool,
    /// A recurrent self-edge on the latent node (zero diagonal): Tang et al.'s hybrid PCN.
    pub recurrent: bool,
    /// Training epochs.
    pub epochs: usize,
    /// Patterns per batch.
    pub batch: usize,
    /// Node updates per batch in training (`T_train`).
    pub steps: usize,
    /// Node learning rate in training.
    pub gamma: f64,
    /// AdamW learning rate of the weights.
    pub lr: f64,
    /// AdamW decoupled weight decay.
    pub weight_decay: f64,
    /// Node updates in recall (`T_recall`).
    pub recall_steps: usize,
    /// Node learning rate in recall.
    pub recall_gamma: f64,
    /// Recalls in a row, each recall's image the next query (1 = a single recall).
    pub recall_iterations: usize,
}

impl Default for GpcnConfig {
    /// A small memory that stores 100 MNIST digits in about 10 s on 2 cores.
    fn default() -> Self {
        Self {
            latent: 64,
            hidden: vec![256, 256],
            activation: Activation::Tanh,
            convention: Convention::Fw,
            prior: false,
            recurrent: false,
            epochs: 300,
            batch: 50,
            steps: 20,
            gamma: 0.1,
            lr: 1e-3,
            weight_decay: 1e-4,
            recall_steps: 1000,
            recall_gamma: 0.1,
            recall_iterations: 1,
        }
    }
}

impl GpcnConfig {
    /// Checks ranges.
    ///
    /// # Errors
    /// [`Error::Config`] naming the `gpcn.` key.
    pub fn validate(&self) -> Result<()> {
        for (key, v) in [
            ("gpcn.gamma", self.gamma),
            ("gpcn.lr", self.lr),
            ("gpcn.recall_gamma", self.recall_gamma),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(Error::config(key, format!("must be > 0, found {v}")));
            }
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(Error::config(
                "gpcn.weight_decay",
                format!("must be >= 0, found {}", self.weight_decay),
            ));
        }
        for (key, v) in [
            ("gpcn.latent", self.latent),
            ("gpcn.batch", self.batch),
            ("gpcn.recall_iterations", self.recall_iterations),
        ] {
            if v == 0 {
                return Err(Error::config(key, "must be at least 1"));
            }
        }
        if self.hidden.contains(&0) {
            return Err(Error::config("gpcn.hidden", "widths must be at least 1"));
        }
        Ok(())
    }

    /// The weight optimiser: AdamW at `lr` with decoupled decay `weight_decay`.
    pub fn optimizer(&self) -> OptimConfig {
        OptimConfig {
            kind: OptimKind::Adamw,
            lr: self.lr,
            weight_decay: self.weight_decay,
            ..Default::default()
        }
    }

    /// The graph: `latent → h1 → … → image` (`dim` pixels).
    pub fn spec(&self, dim: usize) -> MlpSpec {
        let mut names = vec!["latent".to_string()];
        names.extend((1..=self.hidden.len()).map(|i| format!("h{i}")));
        names.push("image".into());
        let mut widths = vec![self.latent];
        widths.extend(&self.hidden);
        widths.push(dim);
        let mut nodes = Vec::new();
        for (i, (n, &w)) in names.iter().zip(&widths).enumerate() {
            // f_w: hidden predictions through f, linear pixels; w_f: W f(x) into every node.
            let act = match self.convention {
                Convention::Fw if i + 1 < names.len() && i > 0 => self.activation,
                Convention::Fw => Activation::Identity,
                Convention::Wf => self.activation,
            };
            let mut node = NodeSpec::new(n, w, act);
            if i == 0 && self.prior {
                node.prior = Prior::Learned;
            }
            nodes.push(node);
        }
        let mut edges: Vec<EdgeSpec> =
            names.windows(2).map(|p| EdgeSpec::new(&p[0], &p[1])).collect();
        if self.recurrent {
            edges.push(EdgeSpec::new("latent", "latent"));
        }
        MlpSpec {
            sizes: vec![],
            convention: self.convention,
            nodes,
            edges,
            input: Some("latent".into()),
            output: Some("image".into()),
            ..Default::default()
        }
    }
}

/// The batches of one training epoch: the rows of `x` in a shuffle seeded by `seed` and the
/// epoch, `batch` at a time (the last one shorter).
pub fn epoch_batches(x: &Tensor<f32>, batch: usize, seed: u64, epoch: usize) -> Vec<Tensor<f32>> {
    let n = x.rows();
    let order = crate::data::permutation(n, seed.wrapping_mul(7919) ^ epoch as u64);
    order
        .chunks(batch.max(1))
        .map(|rows| Tensor::from_fn(rows.len(), x.cols(), |r, c| x.at(rows[r], c)))
        .collect()
}

/// The generative PCN memory.
#[derive(Debug)]
pub struct Gpcn {
    /// Settings.
    pub cfg: GpcnConfig,
    /// The network (`latent → … → image`).
    pub net: Net<f32>,
    dim: usize,
    seed: u64,
}

impl Gpcn {
    /// A fresh network for patterns of `dim` pixels, weights from `seed`.
    ///
    /// # Errors
    /// [`Error::Config`] for settings out of range.
    pub fn new(cfg: GpcnConfig, dim: usize, seed: u64) -> Result<Self> {
        cfg.validate()?;
        let net = Net::mlp(&cfg.spec(dim), seed)?;
        Ok(Self { cfg, net, dim, seed })
    }

    fn image(&self) -> usize {
        self.net.topo.node("image").expect("built with an image node")
    }

    /// The total energy per pattern of `patterns` after training-style inference (image
    /// clamped, latents from 0): near 0 once they are stored.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if inference diverges.
    pub fn energy(&self, patterns: &Tensor<f32>) -> Result<f64> {
        let (_, s) = self.clamped(patterns)?;
        Ok(s.final_energy / patterns.rows() as f64)
    }

    /// The image prediction `mu` after training-style inference on `patterns` (image
    /// clamped): equal to the patterns at a fixed point of the stored memory.
    ///
    /// # Errors
    /// [`Error::NonFinite`] if inference diverges.
    pub fn reconstruct(&self, patterns: &Tensor<f32>) -> Result<Tensor<f32>> {
        let (mut ws, _) = self.clamped(patterns)?;
        Ok(std::mem::take(&mut ws.mu[self.image()]))
    }

    /// Training-style inference on `patterns` in a fresh workspace.
    fn clamped(&self, patterns: &Tensor<f32>) -> Result<(Workspace<f32>, InferenceStats)> {
        let mut ws = Workspace::new(&self.net, patterns.rows());
        let s =
            self.net.query(&mut ws, &[(self.image(), Given::Data(patterns))], &self.train_cfg())?;
        Ok((ws, s))
    }

    fn train_cfg(&self) -> InferenceConfig {
        InferenceConfig { steps: self.cfg.steps, gamma: self.cfg.gamma, ..Default::default() }
    }

    /// Recall with the image node given as `how` (`Init` or `Masked`), into `ws`.
    fn recall_once(&self, ws: &mut Workspace<f32>, given: Given<'_, f32>) -> Result<()> {
        // Long recalls on a crowded memory can outgrow a fixed step (the energy rose to inf
        // after 733 of 1000 steps with 500 MNIST digits stored): halve the rate on a rise.
        let cfg = InferenceConfig {
            steps: self.cfg.recall_steps,
            gamma: self.cfg.recall_gamma,
            halve_on_rise: true,
            ..Default::default()
        };
        self.net.query(ws, &[(self.image(), given)], &cfg)?;
        Ok(())
    }
}

impl Memory for Gpcn {
    fn kind(&self) -> &'static str {
        "gpcn"
    }

    fn dim(&self) -> usize {
        self.dim
    }

    fn store(&mut self, patterns: &Tensor<f32>) -> Result<StoreStats> {
        check_patterns(self.dim, patterns)?;
        // A fresh network each store: the memory holds exactly these patterns.
        self.net = Net::mlp(&self.cfg.spec(self.dim), self.seed)?;
        let mut opt = WeightOptim::new(self.cfg.optimizer(), &self.net)?;
        let n = patterns.rows();
        let batch = self.cfg.batch.min(n);
        let mut ws = Workspace::new(&self.net, batch);
        let image = self.image();
        let cfg = self.train_cfg();
        let mut loss = 0.0;
        let mut index = 0;
        for epoch in 0..self.cfg.epochs {
            let mut energy = 0.0;
            for xb in epoch_batches(patterns, batch, self.seed, epoch) {
                let s = self.net.query(&mut ws, &[(image, Given::Data(&xb))], &cfg).map_err(
                    |e| match e {
                        Error::NonFinite { step, layer, what, .. } => {
                            Error::NonFinite { batch: index, step, layer, what }
                        }
                        e => e,
                    },
                )?;
                self.net.param_grads(&mut ws);
                opt.step(&mut self.net, &ws.grads, xb.rows());
                opt.end_batch();
                energy += s.final_energy;
                index += 1;
            }
            loss = energy / n as f64;
        }
        Ok(StoreStats { patterns: n, epochs: self.cfg.epochs, final_loss: loss })
    }

    fn recall(&self, query: &Tensor<f32>, mask: &Tensor<f32>) -> Result<Tensor<f32>> {
        check_query(self.dim, query, mask)?;
        let image = self.image();
        let mut ws = Workspace::new(&self.net, query.rows());
        let noise = mask.data().iter().all(|&m| m <= 0.0);
        let mut q = query.clone();
        for _ in 0..self.cfg.recall_iterations {
            if noise {
                self.recall_once(&mut ws, Given::Init(&q))?;
            } else {
                self.recall_once(&mut ws, Given::Masked { data: &q, mask })?;
            }
            q.copy_from(&ws.x[image]);
            q.data_mut().iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        }
        Ok(q)
    }

    fn tensors(&self) -> Vec<(String, Tensor<f64>)> {
        let mut out = Vec::new();
        for (layer, edge) in self.net.layers.iter().zip(&self.net.topo.edges) {
            layer.for_each_param(&mut |name, t| {
                out.push((format!("{}.{name}", edge.name), t.cast()))
            });
        }
        out
    }

    fn load_tensors(&mut self, tensors: &[(String, Tensor<f64>)]) -> Result<()> {
        let mut err = None;
        for (layer, edge) in self.net.layers.iter_mut().zip(&self.net.topo.edges) {
            layer.for_each_param_mut(&mut |name, t| match take_tensor(
                tensors,
                &format!("{}.{name}", edge.name),
                Some(t.shape()),
            ) {
                Ok(v) => t.copy_from(&v.cast()),
                Err(e) => err = err.take().or(Some(e)),
            });
        }
        err.map_or(Ok(()), Err)
    }
}
