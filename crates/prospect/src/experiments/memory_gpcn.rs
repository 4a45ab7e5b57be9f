//! The generative PCN memory (Salvatori, Song et al., NeurIPS 2021) on MNIST: recall of N
//! stored digits from noise (std 0.2, every pixel free) and from the top half (bottom half
//! inferred), against a modern Hopfield network and a BP autoencoder of the same hidden
//! sizes, with the data set's mean image as the baseline every method must beat.

use super::util::{mean_std, par_map};
use super::{Claim, Grid, Panel, Report, Series, Settings, Table, Verdict};
use crate::error::Result;
use crate::infer::InferenceConfig;
use crate::layers::Convention;
use crate::learn::{self, Batch};
use crate::memory::gpcn::{epoch_batches, Gpcn, GpcnConfig};
use crate::memory::uhn::{Uhn, UhnConfig};
use crate::memory::{self, Corruption, ImageShape, Memory, Scores};
use crate::net::{MlpSpec, Net, Workspace};
use crate::optim::WeightOptim;
use crate::tensor::Tensor;

/// The methods compared.
pub const METHODS: [&str; 4] = ["gpcn", "hopfield", "autoencoder", "mean image"];
/// The two queries.
pub const QUERIES: [&str; 2] = ["noise:0.2", "mask:bottom:0.5"];

/// A BP autoencoder `D → h … → latent → … h → D` (tanh, linear pixels), trained on the
/// stored images; recall = its output, iterated with the known pixels put back.
struct Autoencoder {
    net: Net<f32>,
    iterations: usize,
}

impl Autoencoder {
    fn train(cfg: &GpcnConfig, x: &Tensor<f32>, seed: u64) -> Result<Self> {
        let mut sizes = vec![x.cols()];
        sizes.extend(cfg.hidden.iter().rev());
        sizes.push(cfg.latent);
        sizes.extend(&cfg.hidden);
        sizes.push(x.cols());
        let spec = MlpSpec::new(&sizes, cfg.activation, Convention::Fw);
        let mut net: Net<f32> = Net::mlp(&spec, seed)?;
        let mut opt = WeightOptim::new(cfg.optimizer(), &net)?;
        let mut rule = learn::build::<f32>("bp", &InferenceConfig::default())?;
        let n = x.rows();
        let batch = cfg.batch.min(n);
        let mut ws = Workspace::new(&net, batch);
        let mut index = 0;
        for epoch in 0..cfg.epochs {
            for xb in epoch_batches(x, batch, seed, epoch) {
                rule.train_batch(&mut net, &mut opt, Batch { x: &xb, y: &xb, index }, &mut ws)?;
                index += 1;
            }
        }
        Ok(Self { net, iterations: 10 })
    }

    fn recall(&self, query: &Tensor<f32>, mask: &Tensor<f32>) -> Result<Tensor<f32>> {
        let noise = mask.data().iter().all(|&m| m <= 0.0);
        let mut q = query.clone();
        for _ in 0..if noise { 1 } else { self.iterations } {
            let mut out = self.net.predict(&q)?;
            for ((o, m), v) in out.data_mut().iter_mut().zip(mask.data()).zip(query.data()) {
                *o = if *m > 0.0 { *v } else { o.clamp(0.0, 1.0) };
            }
            q = out;
        }
        Ok(q)
    }
}

/// Per method and query: per-image summed squared errors (clipped recall) for one N.
type Errors = Vec<Vec<Vec<f64>>>;

/// Stores `x` in each method and recalls it under each query.
fn measure(
    cfg: &GpcnConfig,
    x: &Tensor<f32>,
    mean: &[f32],
    seed: u64,
) -> Result<(Errors, Vec<Grid>)> {
    let shape = ImageShape::guess(x.cols());
    let mut gpcn = Gpcn::new(cfg.clone(), x.cols(), seed)?;
    gpcn.store(x)?;
    let mut hopfield = Uhn::new(UhnConfig::modern(HOPFIELD_BETA), x.cols());
    hopfield.store(x)?;
    let ae = Autoencoder::train(cfg, x, seed)?;
    let mut errors = vec![vec![Vec::new(); QUERIES.len()]; METHODS.len()];
    let mut grids = Vec::new();
    for (qi, spec) in QUERIES.iter().enumerate() {
        let (q, mask) = Corruption::parse(spec)?.apply(x, shape, seed)?;
        let outs = [
            gpcn.recall(&q, &mask)?,
            hopfield.recall(&q, &mask)?,
            ae.recall(&q, &mask)?,
            memory::mean_baseline(mean, &q, &mask),
        ];
        for (m, out) in outs.iter().enumerate() {
            errors[m][qi] = Scores::of_clipped(out, x, 1.0).sse;
        }
        let show = x.rows().min(8);
        let name = format!("recall-{}", if qi == 0 { "noise" } else { "mask" });
        let mut g = Grid::new(name, show, 2 + METHODS.len(), shape.height, shape.width);
        for r in 0..show {
            g.cells.push(q.row(r).iter().map(|v| v.clamp(0.0, 1.0)).collect());
            for out in &outs {
                g.cells.push(out.row(r).iter().map(|v| v.clamp(0.0, 1.0)).collect());
            }
            g.cells.push(x.row(r).to_vec());
        }
        grids.push(g);
    }
    Ok((errors, grids))
}

/// Inverse temperature of the modern Hopfield network (raw dot products of [0, 1] images).
pub const HOPFIELD_BETA: f64 = 1.0;

/// Runs the experiment.
///
/// # Errors
/// [`crate::Error::Data`] naming the fetch command if MNIST is missing.
pub fn run(s: &Settings) -> Result<Report> {
    let ns: Vec<usize> = s.pick(vec![25, 100, 250], vec![50, 100, 250, 500, 1000]);
    let seeds = s.seeds(1, 3);
    let cfg = if s.full {
        GpcnConfig {
            latent: 256,
            hidden: vec![1024, 1024],
            epochs: 500,
            recall_steps: 5000,
            ..Default::default()
        }
    } else {
        GpcnConfig::default()
    };
    let max_n = *ns.iter().max().expect("a grid");
    let jobs: Vec<(usize, u64)> =
        ns.iter().flat_map(|&n| (0..seeds as u64).map(move |k| (n, k))).collect();
    let mut sets = Vec::new();
    for k in 0..seeds {
        sets.push(memory::patterns("mnist", max_n, k, 0)?);
    }
    s.log(format!("storing N = {ns:?} MNIST digits, {seeds} disjoint set(s), 3 memories each"));
    let results = par_map(&jobs, |&(n, k)| {
        let (all, mean, _) = &sets[k as usize];
        let x = Tensor::from_vec(n, all.cols(), all.data()[..n * all.cols()].to_vec());
        measure(&cfg, &x, mean, k + 1)
    });
    let d = 784;
    let (strict, reference) = (
        memory::threshold(memory::STRICT_THRESHOLD, d, true),
        memory::threshold(memory::REFERENCE_THRESHOLD, d, true),
    );
    let mut table =
        Table::new(&["n", "set", "method", "query", "mse", "success_strict", "success_reference"]);
    // success[method][query][n index] = per-set fractions at the strict threshold
    let mut success = vec![vec![vec![Vec::new(); ns.len()]; QUERIES.len()]; METHODS.len()];
    let mut mses = success.clone();
    let mut grids = Vec::new();
    for (&(n, k), r) in jobs.iter().zip(results) {
        let (errors, g) = r?;
        let ni = ns.iter().position(|&v| v == n).expect("in the grid");
        for (m, method) in METHODS.iter().enumerate() {
            for (qi, query) in QUERIES.iter().enumerate() {
                let sse = &errors[m][qi];
                let frac =
                    |t: f64| sse.iter().filter(|&&e| e <= t).count() as f64 / sse.len() as f64;
                let mse = sse.iter().sum::<f64>() / (sse.len() * d) as f64;
                table.push(vec![
                    n.to_string(),
                    k.to_string(),
                    method.to_string(),
                    query.to_string(),
                    format!("{mse:.5}"),
                    format!("{:.3}", frac(strict)),
                    format!("{:.3}", frac(reference)),
                ]);
                success[m][qi][ni].push(frac(strict));
                mses[m][qi][ni].push(mse);
            }
        }
        if n == max_n && k == 0 {
            grids = g;
        }
    }
    let last = ns.len() - 1;
    // the recall claim at N = 100 (in both grids), the comparisons at the largest N
    let mid = ns.iter().position(|&n| n == 100).expect("100 in both grids");
    let at = |m: usize, q: usize, i: usize| mean_std(&success[m][q][i]).0;
    let pct = |v: f64| format!("{:.0}%", 100.0 * v);
    let mut claims = Vec::new();
    for (qi, query) in QUERIES.iter().enumerate() {
        let who = |i: usize| -> String {
            METHODS
                .iter()
                .enumerate()
                .map(|(m, name)| format!("{name} {}", pct(at(m, qi, i))))
                .collect::<Vec<_>>()
                .join(", ")
        };
        claims.push(Claim::new(
            format!("{query}: recalled (SSE <= {strict:.0}) of N = 100"),
            "the generative PCN recalls the stored images",
            who(mid),
            Some(at(0, qi, mid) > at(3, qi, mid) + 0.5),
        ));
        for (i, n) in ns.iter().enumerate().filter(|&(i, _)| i != mid) {
            claims.push(Claim::new(
                format!("{query}: recalled (SSE <= {strict:.0}) of N = {n}"),
                "-",
                who(i),
                None,
            ));
        }
        for i in [mid, last] {
            let (n, m) = (ns[i], &mses);
            for (other, name) in [(1, "modern Hopfield"), (2, "BP autoencoder")] {
                let (g, o) = (mean_std(&m[0][qi][i]).0, mean_std(&m[other][qi][i]).0);
                claims.push(Claim {
                    what: format!("{query}: MSE, gpcn vs {name} (N = {n})"),
                    paper: "the PCN recalls better".into(),
                    ours: format!("{g:.4} vs {o:.4}"),
                    verdict: if seeds > 1 {
                        Verdict::less(&m[0][qi][i], &m[other][qi][i])
                    } else {
                        Verdict::from(Some(g < o))
                    },
                });
            }
        }
    }
    claims.push(Claim::new(
        format!("mean image at the reference's threshold (SSE <= {reference:.0})"),
        "-",
        format!(
            "noise {}, mask {} of the stored digits pass it: the reason for the stricter {strict:.0}",
            pct(table_frac(&table, "mean image", QUERIES[0], max_n, 6)),
            pct(table_frac(&table, "mean image", QUERIES[1], max_n, 6)),
        ),
        None,
    ));
    let panels = QUERIES
        .iter()
        .enumerate()
        .map(|(qi, query)| Panel {
            title: format!("{query}: recalled fraction (SSE <= {strict:.0})"),
            x_label: "stored images N".into(),
            y_label: "fraction recalled".into(),
            log_x: true,
            series: METHODS
                .iter()
                .enumerate()
                .map(|(m, name)| {
                    Series::from_seeds(
                        *name,
                        ns.iter().map(|&n| n as f64).collect(),
                        &success[m][qi],
                    )
                })
                .collect(),
            ..Default::default()
        })
        .collect();
    Ok(Report {
        name: "memory-gpcn".into(),
        title: "Generative PCN memory vs modern Hopfield and a BP autoencoder (MNIST)".into(),
        setup: format!(
            "N = {ns:?} MNIST training digits (pixels in [0, 1]), {seeds} disjoint set(s). gpcn: \
             latent {} -> {:?} (tanh) -> 784 (linear), mu = f(Wx + b); store: image clamped, \
             latents from 0, T = {} at node rate {}, AdamW {} (decay {}), batch {}, {} epochs; \
             recall: T = {} at {}, noise = every pixel free from x + N(0, 0.2^2), mask = top \
             half held, bottom half from 0. Modern Hopfield: out = M^T softmax({HOPFIELD_BETA} \
             M q). Autoencoder: 784 -> {:?} -> {} -> mirrored -> 784 by BP, same optimiser, \
             batch and epochs; mask recall iterated 10 times with the known pixels put back. \
             Success: summed squared error (recall clipped to [0, 1]) <= {strict:.0} (the MNIST \
             mean image never passes it); the reference's 60 in the CSV.",
            cfg.latent,
            cfg.hidden,
            cfg.steps,
            cfg.gamma,
            cfg.lr,
            cfg.weight_decay,
            cfg.batch,
            cfg.epochs,
            cfg.recall_steps,
            cfg.recall_gamma,
            cfg.hidden.iter().rev().collect::<Vec<_>>(),
            cfg.latent,
        ),
        claims,
        table,
        panels,
        notes: vec![
            "Grids (N = the largest, first 8 images): query | gpcn | hopfield | autoencoder | \
             mean image | truth."
                .into(),
            "The default model (latent 64, two hidden layers of 256, 300 epochs) reaches its \
             capacity between N = 100 and N = 250: its energy per image at the end of storing \
             is 0.196 at N = 250 against 0.076 at N = 100 (prospect memory store, same \
             settings), and recall from half an image collapses, while the modern Hopfield \
             network, which keeps the images verbatim, degrades slowly. --full uses wider \
             layers (latent 256, two of 1024) and 500 epochs."
                .into(),
            "The paper's exact tables could not be checked here (science.md): the claims are \
             its qualitative ones. The PCX benchmark's version of the task (Tiny ImageNet, \
             widths [512, d, d, 12288]) is what --full's sizes follow, on MNIST."
                .into(),
        ],
        grids,
    })
}

/// The mean over sets of column `col` for one method, query and N.
fn table_frac(t: &Table, method: &str, query: &str, n: usize, col: usize) -> f64 {
    let v: Vec<f64> = t
        .rows
        .iter()
        .filter(|r| r[2] == method && r[3] == query && r[0] == n.to_string())
        .filter_map(|r| r[col].parse().ok())
        .collect();
    mean_std(&v).0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The comparison runs end to end on synthetic images (no MNIST): every method returns
    /// finite errors and the mean image is scored.
    #[test]
    fn measure_scores_every_method_and_query() {
        let x = Tensor::from_fn(6, 64, |r, c| (((r * 13 + c * 7) % 11) as f32 / 10.0).powi(2));
        let cfg = GpcnConfig {
            latent: 8,
            hidden: vec![16],
            epochs: 5,
            recall_steps: 10,
            ..Default::default()
        };
        let mean = memory::mean_row(&x);
        let (errors, grids) = measure(&cfg, &x, &mean, 1).unwrap();
        assert_eq!(errors.len(), METHODS.len());
        for m in &errors {
            assert_eq!(m.len(), QUERIES.len());
            assert!(m.iter().all(|q| q.len() == 6 && q.iter().all(|e| e.is_finite())));
        }
        assert_eq!(grids.len(), 2);
        assert_eq!(grids[0].cells.len(), 6 * (2 + METHODS.len()));
    }
}
