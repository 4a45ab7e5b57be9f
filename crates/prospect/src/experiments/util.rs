//! Helpers shared by the experiments: statistics, Fashion-MNIST as tensors, training loops.

use super::{Claim, Series, Settings, Table, Verdict};
use crate::data::{self, Dataset, Split};
use crate::error::{Error, Result};
use crate::infer::DiscountTiming;
use crate::layers::{Activation, Convention, Init};
use crate::learn::{self, Batch, Rule};
use crate::net::MlpSpec;
use crate::net::{Net, Workspace};
use crate::optim::Reduction;
use crate::optim::{OptimConfig, WeightOptim};
use crate::tensor::{Scalar, Tensor};
use crate::train::{evaluate_net, EvalBufs};
use crate::InferenceConfig;
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// Mean and (population) standard deviation; `(NaN, 0)` for an empty slice.
pub(crate) fn mean_std(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, 0.0);
    }
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n;
    (m, var.sqrt())
}

/// The observation row of a paired comparison: `PC - BP` of a score per seed (both rules of a
/// seed share its data and start), its mean ± std in points and in how many seeds PC is lower.
pub(crate) fn paired_claim(what: impl Into<String>, pc: &[f64], bp: &[f64]) -> Claim {
    let d: Vec<f64> = pc.iter().zip(bp).map(|(p, b)| p - b).collect();
    let (md, sd) = mean_std(&d);
    Claim::new(
        what,
        "-",
        format!(
            "{:+.1} ± {:.1} pts; PC lower in {} of {} seeds",
            100.0 * md,
            100.0 * sd,
            d.iter().filter(|&&x| x < 0.0).count(),
            d.len()
        ),
        None,
    )
}

/// `mean ± std` with `digits` decimals (just the mean for a single value).
pub(crate) fn pm(v: &[f64], digits: usize) -> String {
    let (m, s) = mean_std(v);
    if v.len() > 1 {
        format!("{m:.digits$} ± {s:.digits$}")
    } else {
        format!("{m:.digits$}")
    }
}

/// `mean ± std` of percentages (values in [0, 1]) with one decimal.
pub(crate) fn pct(v: &[f64]) -> String {
    let p: Vec<f64> = v.iter().map(|x| 100.0 * x).collect();
    format!("{}%", pm(&p, 1))
}

/// A `[rows, cols]` tensor of N(0, std²) draws from a seeded RNG.
pub(crate) fn randn<T: Scalar>(rows: usize, cols: usize, std: f64, seed: u64) -> Tensor<T> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let d = Normal::new(0.0, std).expect("finite std");
    Tensor::from_fn(rows, cols, |_, _| T::of(d.sample(&mut rng)))
}

/// Cosine similarity of two vectors (0 if either is zero).
pub(crate) fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na = a.iter().map(|x| x * x).sum::<f64>().sqrt();
    let nb = b.iter().map(|x| x * x).sum::<f64>().sqrt();
    if na == 0.0 || nb == 0.0 {
        0.0
    } else {
        dot / (na * nb)
    }
}

/// The two learning rules compared in the prospective-configuration experiments.
pub(crate) const METHODS: [&str; 2] = ["bp", "pc"];

/// Display name of a rule ("BP", "PC").
pub(crate) fn label(method: &str) -> String {
    method.to_uppercase()
}

/// Runs `f` over `jobs` on the rayon pool, keeping the order.
pub(crate) fn par_map<J: Sync, R: Send>(jobs: &[J], f: impl Fn(&J) -> R + Sync + Send) -> Vec<R> {
    use rayon::prelude::*;
    jobs.par_iter().map(f).collect()
}

/// Fashion-MNIST split `split` with pixels scaled to [0, 1].
///
/// # Errors
/// [`crate::Error::Data`] naming the fetch command when the files are missing.
pub(crate) fn fashion(split: Split) -> Result<Dataset> {
    let mut d = data::load("fashion-mnist", split, None)?;
    d.scale_unit();
    Ok(d)
}

/// The first `n` images of MNIST split `split` after a seeded shuffle, pixels in [0, 1].
///
/// # Errors
/// [`crate::Error::Data`] naming the fetch command when the files are missing.
pub(crate) fn mnist(split: Split, n: usize, seed: u64) -> Result<Dataset> {
    let mut d = data::load("mnist", split, None)?;
    d.scale_unit();
    d.shuffle(seed);
    Ok(d.take(n.min(d.len())))
}

/// Inputs and one-hot targets of a dataset as f32 tensors.
pub(crate) fn tensors(d: &Dataset) -> (Tensor<f32>, Tensor<f32>) {
    let f = d.features();
    (
        Tensor::from_vec(d.len(), f, d.x.clone()),
        Tensor::from_vec(d.len(), d.num_classes, d.one_hot()),
    )
}

/// Classification error of `net` on `(x, y)`, evaluated in chunks of 2000 rows.
pub(crate) fn error_rate(net: &Net<f32>, x: &Tensor<f32>, y: &Tensor<f32>) -> Result<f64> {
    error_rate_with(net, x, y, &mut EvalBufs::default())
}

/// [`error_rate`] in the buffers `bufs`, kept between calls (a learner's test error after
/// every epoch or iteration allocates nothing after the first).
fn error_rate_with(
    net: &Net<f32>,
    x: &Tensor<f32>,
    y: &Tensor<f32>,
    bufs: &mut EvalBufs,
) -> Result<f64> {
    net.check_batch(x, Some(y))?;
    // a forward pass (these nets answer by one); the inference settings are then unused
    let m = evaluate_net(net, x, y, EVAL_CHUNK, bufs, &InferenceConfig::default())?;
    Ok(1.0 - m.correct as f64 / x.rows().max(1) as f64)
}

/// Rows per chunk of a test-set evaluation.
const EVAL_CHUNK: usize = 2000;

/// A learner: network, rule, optimiser and buffers, trained on mini-batches of a dataset.
pub(crate) struct Learner {
    /// The network.
    pub net: Net<f32>,
    rule: Box<dyn Rule<f32>>,
    opt: WeightOptim<f32>,
    ws: Workspace<f32>,
    eval: EvalBufs,
    xb: Tensor<f32>,
    yb: Tensor<f32>,
    /// Batches trained so far.
    pub batches: usize,
    /// Whether training diverged (a non-finite energy); later steps are skipped.
    pub diverged: bool,
    /// Value of the non-target entries of the one-hot targets (0; the authors' concept-drift
    /// runs use -1).
    pub target_min: f32,
}

impl Learner {
    /// A learner for `net` with rule `method` (`bp` or `pc`), inference `inference`, optimiser `opt`.
    pub fn new(
        net: Net<f32>,
        method: &str,
        inference: &InferenceConfig,
        opt: OptimConfig,
    ) -> Result<Self> {
        let rule = learn::build::<f32>(method, inference)?;
        let opt = WeightOptim::new(opt, &net)?;
        let ws = Workspace::new(&net, 1);
        Ok(Self {
            net,
            rule,
            opt,
            ws,
            eval: EvalBufs::default(),
            xb: Tensor::zeros(0, 0),
            yb: Tensor::zeros(0, 0),
            batches: 0,
            diverged: false,
            target_min: 0.0,
        })
    }

    /// Trains on the examples `idx` of `d` (one batch), with labels mapped through `relabel`.
    /// A non-finite energy marks the learner diverged instead of failing (a learning rate of
    /// the grid that is too large); other errors are returned.
    pub fn step(&mut self, d: &Dataset, idx: &[usize], relabel: Option<&[u32]>) -> Result<()> {
        if self.diverged {
            return Ok(());
        }
        let (f, c) = (d.features(), self.net.d_out());
        self.xb.resize(idx.len(), f);
        self.yb.resize(idx.len(), c);
        self.yb.fill(self.target_min);
        for (r, &i) in idx.iter().enumerate() {
            self.xb.row_mut(r).copy_from_slice(d.example(i));
            let l = d.labels[i];
            let l = relabel.map_or(l, |m| m[l as usize]) as usize;
            self.yb.row_mut(r)[l] = 1.0;
        }
        self.ws.ensure(&self.net, idx.len());
        let batch = Batch { x: &self.xb, y: &self.yb, index: self.batches };
        match self.rule.train_batch(&mut self.net, &mut self.opt, batch, &mut self.ws) {
            Ok(_) => {}
            Err(Error::NonFinite { .. }) => self.diverged = true,
            Err(e) => return Err(e),
        }
        self.batches += 1;
        Ok(())
    }

    /// Test error on `(x, y)`; chance level (`1 - 1/classes`) once diverged.
    pub fn test_error(&mut self, x: &Tensor<f32>, y: &Tensor<f32>) -> Result<f64> {
        if self.diverged {
            return Ok(1.0 - 1.0 / y.cols().max(1) as f64);
        }
        let e = error_rate_with(&self.net, x, y, &mut self.eval)?;
        Ok(if e.is_finite() { e } else { 1.0 - 1.0 / y.cols().max(1) as f64 })
    }

    /// One epoch over `d` in a seeded random order, in batches of `batch` (last one may be short).
    pub fn epoch(&mut self, d: &Dataset, batch: usize, seed: u64) -> Result<()> {
        let order = data::permutation(d.len(), seed);
        for idx in order.chunks(batch.max(1)) {
            self.step(d, idx, None)?;
        }
        Ok(())
    }
}

/// Test error on `test` after each of `epochs` epochs of `l` on `train` (batch 64, the order of
/// epoch `e` seeded by `seed + e`).
pub(crate) fn train_curve(
    l: &mut Learner,
    train: &Dataset,
    test: &(Tensor<f32>, Tensor<f32>),
    epochs: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let mut errs = Vec::with_capacity(epochs);
    for e in 0..epochs {
        l.epoch(train, 64, seed + e as u64)?;
        errs.push(l.test_error(&test.0, &test.1)?);
    }
    Ok(errs)
}

/// Training curves of runs `(method, seed)` regrouped for method `m`: the final values (one per
/// seed) and, per epoch, the seeds' values.
pub(crate) fn method_curves(
    runs: &[(usize, usize)],
    curves: &[Vec<f64>],
    m: usize,
) -> (Vec<f64>, Vec<Vec<f64>>) {
    let mine: Vec<&Vec<f64>> =
        runs.iter().zip(curves).filter(|((mm, _), _)| *mm == m).map(|(_, c)| c).collect();
    let epochs = mine.first().map_or(0, |c| c.len());
    let last = mine.iter().map(|c| *c.last().unwrap_or(&1.0)).collect();
    let per_epoch = (0..epochs).map(|e| mine.iter().map(|c| c[e]).collect()).collect();
    (last, per_epoch)
}

/// The network recipe of the paper's Fashion-MNIST experiments: `mu_l = W_l f(x_{l-1})`
/// (no activation on the input), no bias, Xavier init, squared-error output.
pub(crate) fn paper_net(
    sizes: &[usize],
    act: Activation,
    init: Init,
    seed: u64,
) -> Result<Net<f32>> {
    let mut spec = MlpSpec::new(sizes, act, Convention::Wf);
    spec.bias = false;
    spec.init = init;
    Net::mlp(&spec, seed)
}

/// The paper's trainer: SGD on the summed loss (`0.5 Σ (y - t)²` over the batch) at `lr`;
/// for PC, `steps` inference steps at node rate `gamma`, halved whenever the energy rises.
pub(crate) fn paper_learner(
    net: Net<f32>,
    method: &str,
    steps: usize,
    gamma: f64,
    lr: f64,
) -> Result<Learner> {
    let inference = InferenceConfig { steps, gamma, halve_on_rise: true, ..Default::default() };
    authors_learner(net, method, &inference, lr)
}

/// The authors' `PCTrainer` inference: `t_evals` energy evaluations (their `T`: the weights
/// step after `T - 1` node updates), node rate `gamma` cut by `discount` after every step
/// whose energy did not fall (their `x_lr_discount`).
pub fn pctrainer_inference(t_evals: usize, gamma: f64, discount: f64) -> InferenceConfig {
    InferenceConfig {
        steps: t_evals.saturating_sub(1),
        gamma,
        halve_on_rise: true,
        discount,
        discount_timing: DiscountTiming::AfterStep,
        ..Default::default()
    }
}

/// The authors' trainer: SGD on the summed loss at `lr`; for PC, [`pctrainer_inference`].
pub(crate) fn authors_learner(
    net: Net<f32>,
    method: &str,
    inference: &InferenceConfig,
    lr: f64,
) -> Result<Learner> {
    let opt = OptimConfig { reduction: Reduction::Sum, ..OptimConfig::sgd(lr) };
    Learner::new(net, method, inference, opt)
}

/// One (method, condition) cell of a learning-rate grid: results per learning rate and seed,
/// and which learning rate the selection score picked.
pub(crate) struct Cell<R> {
    /// The grid.
    pub lrs: Vec<f64>,
    /// Results, `[lr][seed]`.
    pub runs: Vec<Vec<R>>,
    /// Index of the selected learning rate (lowest mean score over seeds).
    pub best: usize,
}

impl<R> Cell<R> {
    /// The selected learning rate.
    pub fn lr(&self) -> f64 {
        self.lrs[self.best]
    }

    /// The runs (one per seed) at the selected learning rate.
    pub fn best_runs(&self) -> &[R] {
        &self.runs[self.best]
    }
}

/// Every learning curve of a grid of `[method][cond]` cells as CSV rows: method, condition
/// (`cond_column`, value `cond(c)`), lr, seed, whether the lr was selected, step (1-based,
/// `step_column`) and test error.
pub(crate) fn curve_table(
    cells: &[Vec<Cell<Vec<f64>>>],
    cond_column: &str,
    cond: impl Fn(usize) -> String,
    step_column: &str,
) -> Table {
    let mut table =
        Table::new(&["method", cond_column, "lr", "seed", "selected", step_column, "test_error"]);
    for (m, row) in cells.iter().enumerate() {
        for (c, cell) in row.iter().enumerate() {
            for (i, runs) in cell.runs.iter().enumerate() {
                for (k, curve) in runs.iter().enumerate() {
                    for (e, err) in curve.iter().enumerate() {
                        table.push(vec![
                            METHODS[m].into(),
                            cond(c),
                            cell.lrs[i].to_string(),
                            k.to_string(),
                            (i == cell.best).to_string(),
                            (e + 1).to_string(),
                            format!("{err:.4}"),
                        ]);
                    }
                }
            }
        }
    }
    table
}

/// One series per method over the conditions at `xs`: `score` of each selected run.
pub(crate) fn per_condition<R>(
    cells: &[Vec<Cell<R>>],
    xs: &[f64],
    score: impl Fn(&Cell<R>) -> Vec<f64>,
) -> Vec<Series> {
    (0..METHODS.len())
        .map(|m| {
            let v: Vec<Vec<f64>> = cells[m].iter().map(&score).collect();
            Series::from_seeds(label(METHODS[m]), xs.to_vec(), &v)
        })
        .collect()
}

/// One series per method over the steps of condition `c`'s selected learning curves (one
/// value per step at `xs`, spread over seeds).
pub(crate) fn best_curves(cells: &[Vec<Cell<Vec<f64>>>], c: usize, xs: &[f64]) -> Vec<Series> {
    (0..METHODS.len())
        .map(|m| {
            let runs = cells[m][c].best_runs();
            let vals: Vec<Vec<f64>> =
                (0..xs.len()).map(|e| runs.iter().map(|r| r[e]).collect()).collect();
            Series::from_seeds(label(METHODS[m]), xs.to_vec(), &vals)
        })
        .collect()
}

/// One claim per condition comparing BP (method 0) and PC (method 1) by `score`: at the
/// first condition the paper's claim is PC < BP; at the last, that the BP - PC gap is smaller
/// than at the first (`last_claim`); in between the numbers only. `what(c)` names the row.
pub(crate) fn gap_claims<R>(
    cells: &[Vec<Cell<R>>],
    score: impl Fn(&Cell<R>) -> Vec<f64>,
    what: impl Fn(usize) -> String,
    last_claim: &str,
) -> Vec<Claim> {
    let gap = |c: usize| mean(&score(&cells[0][c])) - mean(&score(&cells[1][c]));
    let last = cells[0].len() - 1;
    (0..cells[0].len())
        .map(|c| {
            let (bp, pc) = (score(&cells[0][c]), score(&cells[1][c]));
            let (paper, holds) = if c == 0 {
                ("PC < BP", Verdict::less(&pc, &bp))
            } else if c == last {
                (last_claim, Some(gap(c) < gap(0)).into())
            } else {
                ("-", Verdict::Info)
            };
            Claim::new(
                what(c),
                paper,
                format!("BP {} / PC {} (gap {:+.1} pts)", pct(&bp), pct(&pc), 100.0 * gap(c)),
                holds,
            )
        })
        .collect()
}

/// The learning rates selected for method `m`, one per condition, joined by `/`.
pub(crate) fn selected_lrs<R>(cells: &[Vec<Cell<R>>], m: usize) -> String {
    cells[m].iter().map(|c| format!("{}", c.lr())).collect::<Vec<_>>().join("/")
}

/// Runs `run(method, cond, lr, seed)` for both [`METHODS`], every condition `0..conds`, every
/// learning rate of `lrs(method, cond)` and every seed, in parallel, and selects per
/// (method, condition) the learning rate with the lowest mean `score` over seeds (the paper's
/// protocol). Returns cells indexed `[method][cond]`.
pub(crate) fn grid<R: Send + serde::Serialize + serde::de::DeserializeOwned>(
    s: &Settings,
    conds: usize,
    seeds: usize,
    lrs: &(dyn Fn(usize, usize) -> Vec<f64> + Sync),
    describe: &(dyn Fn(usize) -> String + Sync),
    run: &(dyn Fn(usize, usize, f64, u64) -> Result<R> + Sync),
    score: &(dyn Fn(&R) -> f64 + Sync),
) -> Result<Vec<Vec<Cell<R>>>> {
    // interleave methods and conditions so the two cores share the expensive PC runs
    let mut jobs = Vec::new();
    for k in 0..seeds as u64 {
        for c in 0..conds {
            for m in 0..METHODS.len() {
                for (i, &lr) in lrs(m, c).iter().enumerate() {
                    jobs.push((m, c, i, lr, k));
                }
            }
        }
    }
    let total = jobs.len();
    let store = CellStore::open(s)?;
    let cell_file = |m: usize, c: usize, lr: f64, k: u64| {
        let cond: String = describe(c)
            .chars()
            .map(|ch| if ch.is_ascii_alphanumeric() || ch == '.' { ch } else { '_' })
            .collect();
        format!("{}-{cond}-lr{lr:e}-seed{k}.toml", METHODS[m])
    };
    if let (Some(store), Some((i, n))) = (&store, s.shard) {
        // A shard computes its cells (those not stored yet) and stops: the merge is a run
        // without a shard over the same store.
        let mine: Vec<_> = jobs
            .iter()
            .enumerate()
            .filter(|&(j, &(m, c, _, lr, k))| {
                n > 0 && j % n == i && !store.has(&cell_file(m, c, lr, k))
            })
            .map(|(_, job)| *job)
            .collect();
        let ran = par_map(&mine, |&(m, c, _, lr, k)| -> Result<()> {
            let r = run(m, c, lr, k)?;
            s.log(format!(
                "{} {} lr {lr} seed {k}: score {:.4}",
                METHODS[m],
                describe(c),
                score(&r)
            ));
            store.put(&cell_file(m, c, lr, k), &r)
        });
        ran.into_iter().collect::<Result<Vec<()>>>()?;
        let missing: Vec<usize> = (0..total)
            .filter(|&j| {
                let (m, c, _, lr, k) = jobs[j];
                !store.has(&cell_file(m, c, lr, k))
            })
            .collect();
        return Err(crate::Error::Incomplete {
            experiment: s.name.clone(),
            ran: mine.len(),
            stored: total - missing.len(),
            total,
            store: store.dir.display().to_string(),
            missing,
        });
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let out = par_map(&jobs, |&(m, c, _, lr, k)| {
        let t0 = std::time::Instant::now();
        let file = cell_file(m, c, lr, k);
        if let Some(r) = store.as_ref().and_then(|st| st.get::<R>(&file).transpose()) {
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return r;
        }
        let r = run(m, c, lr, k);
        if let (Some(st), Ok(r)) = (&store, &r) {
            st.put(&file, r)?;
        }
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if let Ok(r) = &r {
            s.log(format!(
                "[{n}/{total}] {} {} lr {lr} seed {k}: score {:.4} ({:.1} s)",
                METHODS[m],
                describe(c),
                score(r),
                t0.elapsed().as_secs_f64()
            ));
        }
        r
    });
    let mut cells: Vec<Vec<Cell<R>>> = (0..METHODS.len())
        .map(|m| {
            (0..conds)
                .map(|c| {
                    let lrs = lrs(m, c);
                    let runs = lrs.iter().map(|_| Vec::new()).collect();
                    Cell { lrs, runs, best: 0 }
                })
                .collect()
        })
        .collect();
    for (&(m, c, i, _, _), r) in jobs.iter().zip(out) {
        cells[m][c].runs[i].push(r?);
    }
    for cell in cells.iter_mut().flatten() {
        let means: Vec<f64> = cell
            .runs
            .iter()
            .map(|rs| rs.iter().map(score).sum::<f64>() / rs.len().max(1) as f64)
            .collect();
        cell.best = (0..means.len()).min_by(|&a, &b| means[a].total_cmp(&means[b])).unwrap_or(0);
    }
    Ok(cells)
}

/// Mean of a slice (NaN if empty).
pub(crate) fn mean(v: &[f64]) -> f64 {
    mean_std(v).0
}

/// Test error after each epoch of `epochs` epochs of `learner` on `train` (batch `batch`).
pub(crate) fn curve(
    l: &mut Learner,
    train: &Dataset,
    test: &(Tensor<f32>, Tensor<f32>),
    batch: usize,
    epochs: usize,
    seed: u64,
) -> Result<Vec<f64>> {
    let mut out = Vec::with_capacity(epochs);
    for e in 0..epochs {
        l.epoch(train, batch, seed.wrapping_mul(1_000_003).wrapping_add(e as u64))?;
        out.push(l.test_error(&test.0, &test.1)?);
    }
    Ok(out)
}

/// The finished cells of one experiment's grid, one small TOML file each (`r = ...`; TOML
/// keeps NaN and infinities, and floats round-trip exactly), written atomically.
pub(crate) struct CellStore {
    /// `<cells>/<experiment>-<quick|full>`.
    pub dir: std::path::PathBuf,
}

/// The on-disk form of one cell.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCell<R> {
    /// The library version that computed it.
    version: String,
    /// The cell's result.
    r: R,
}

impl CellStore {
    /// The store of `s`'s experiment, created if absent (`None` when not storing).
    fn open(s: &Settings) -> Result<Option<Self>> {
        let Some(dir) = s.cell_dir(&s.name) else { return Ok(None) };
        std::fs::create_dir_all(&dir)
            .map_err(|e| crate::Error::Io { path: dir.display().to_string(), source: e })?;
        Ok(Some(Self { dir }))
    }

    fn has(&self, file: &str) -> bool {
        self.dir.join(file).is_file()
    }

    /// The stored result, `None` if the cell is not stored.
    fn get<R: serde::de::DeserializeOwned>(&self, file: &str) -> Result<Option<R>> {
        let path = self.dir.join(file);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(crate::Error::Io { path: path.display().to_string(), source: e }),
        };
        let cell: StoredCell<R> = toml::from_str(&text).map_err(|e| crate::Error::Checkpoint {
            path: path.display().to_string(),
            msg: format!("not a stored grid cell ({e}); delete it to recompute the cell"),
        })?;
        let ours = env!("CARGO_PKG_VERSION");
        if cell.version != ours {
            return Err(crate::Error::Checkpoint {
                path: path.display().to_string(),
                msg: format!(
                    "computed by prospect {}, this is {ours}: use a new cell store",
                    cell.version
                ),
            });
        }
        Ok(Some(cell.r))
    }

    /// Saves a finished cell (temp file + rename).
    fn put<R: serde::Serialize>(&self, file: &str, r: &R) -> Result<()> {
        let cell = StoredCell { version: env!("CARGO_PKG_VERSION").to_string(), r };
        let text = toml::to_string(&cell).map_err(|e| crate::Error::Checkpoint {
            path: self.dir.join(file).display().to_string(),
            msg: format!("cannot encode the cell: {e}"),
        })?;
        crate::checkpoint::write_atomic(&self.dir.join(file), text.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A cheap deterministic "training run" per cell (with a NaN, as a diverged curve has),
    /// counting how often it is called.
    fn fake_grid(s: &Settings, calls: &AtomicUsize) -> Result<Vec<Vec<Cell<Vec<f64>>>>> {
        grid(
            s,
            3,
            2,
            &|m, c| if m == 0 { vec![0.1, 0.01] } else { vec![0.5, 0.05, 0.005 * (c + 1) as f64] },
            &|c| format!("cond {c}"),
            &|m, c, lr, k| {
                calls.fetch_add(1, Ordering::Relaxed);
                let v = (lr.ln() + 1.3).powi(2) + 0.1 * (m + c) as f64 + 0.01 * k as f64 / 3.0;
                Ok(vec![v, v / 7.0, f64::NAN])
            },
            &|r: &Vec<f64>| r[0] + r[1],
        )
    }

    fn summary(cells: &[Vec<Cell<Vec<f64>>>]) -> Vec<(usize, Vec<Vec<Vec<u64>>>)> {
        // Bit patterns: the merge must give exactly the single run's numbers (NaN included).
        cells
            .iter()
            .flatten()
            .map(|c| {
                let bits = c
                    .runs
                    .iter()
                    .map(|rs| rs.iter().map(|r| r.iter().map(|v| v.to_bits()).collect()).collect())
                    .collect();
                (c.best, bits)
            })
            .collect()
    }

    #[test]
    fn shards_then_merge_equal_one_run_and_a_rerun_computes_nothing() {
        let calls = AtomicUsize::new(0);
        let plain = Settings { name: "fake".into(), ..Default::default() };
        let want = summary(&fake_grid(&plain, &calls).unwrap());
        let total = calls.swap(0, Ordering::Relaxed);
        assert_eq!(total, 2 * 3 * (2 + 3));

        let dir = tempfile::tempdir().unwrap();
        let store = Settings { cells: Some(dir.path().to_path_buf()), ..plain.clone() };
        let mut stored_after = Vec::new();
        for i in 0..3 {
            let shard = Settings { shard: Some((i, 3)), ..store.clone() };
            match fake_grid(&shard, &calls) {
                Err(crate::Error::Incomplete { ran, stored, total: t, .. }) => {
                    assert_eq!(t, total);
                    assert_eq!(ran, calls.swap(0, Ordering::Relaxed));
                    stored_after.push(stored);
                }
                other => panic!("shard {i}/3: expected Incomplete, got {:?}", other.map(|_| ())),
            }
        }
        assert_eq!(stored_after, vec![10, 20, 30], "each shard stores its third");
        // Rerunning a shard finds its cells stored.
        let again = Settings { shard: Some((1, 3)), ..store.clone() };
        assert!(matches!(fake_grid(&again, &calls), Err(crate::Error::Incomplete { ran: 0, .. })));
        let merged = fake_grid(&store, &calls).unwrap();
        assert_eq!(calls.load(Ordering::Relaxed), 0, "the merge recomputed cells");
        assert_eq!(summary(&merged), want);

        // Resumable: with one cell removed, a plain run recomputes exactly that cell.
        let sub = dir.path().join("fake-quick");
        let victim = std::fs::read_dir(&sub).unwrap().next().unwrap().unwrap().path();
        std::fs::remove_file(&victim).unwrap();
        assert_eq!(summary(&fake_grid(&store, &calls).unwrap()), want);
        assert_eq!(calls.load(Ordering::Relaxed), 1);
        assert!(victim.is_file(), "the recomputed cell is stored again");

        // A cell of another prospect version is refused, naming both versions.
        let text = std::fs::read_to_string(&victim).unwrap();
        let ours = env!("CARGO_PKG_VERSION");
        std::fs::write(&victim, text.replace(&format!("\"{ours}\""), "\"0.0.0-old\"")).unwrap();
        let err = fake_grid(&store, &calls).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains("0.0.0-old") && err.contains(ours), "{err}");

        // A damaged cell is an error naming its file, not a silent recompute.
        std::fs::write(&victim, "r = [1.0, ").unwrap();
        let err = fake_grid(&store, &calls).map(|_| ()).unwrap_err().to_string();
        assert!(err.contains(&victim.display().to_string()) && err.contains("delete it"), "{err}");
    }

    #[test]
    fn counting_the_cells_computes_none() {
        let calls = AtomicUsize::new(0);
        let dir = tempfile::tempdir().unwrap();
        let s = Settings {
            name: "fake".into(),
            cells: Some(dir.path().to_path_buf()),
            shard: Some((0, 0)),
            ..Default::default()
        };
        match fake_grid(&s, &calls) {
            Err(crate::Error::Incomplete { ran: 0, stored: 0, total: 30, missing, .. }) => {
                assert_eq!(missing, (0..30).collect::<Vec<_>>());
            }
            other => panic!("expected a count of 30, got {:?}", other.map(|_| ())),
        }
        assert_eq!(calls.load(Ordering::Relaxed), 0);
    }

    /// The learner's test error reuses its buffers across calls (a chunk of 2000 rows and a
    /// shorter last one) and still counts exactly what a fresh forward pass does, also after
    /// the weights changed between calls (no stale prediction survives).
    #[test]
    fn reused_evaluation_buffers_count_as_a_fresh_forward_pass() {
        let (n, classes) = (2300, 10);
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let x = Tensor::from_vec(n, 20, (0..n * 20).map(|_| normal.sample(&mut rng)).collect());
        let labels: Vec<u32> = (0..n as u32).map(|i| (i * 7 + i / 3) % classes).collect();
        let y = Tensor::from_vec(n, classes as usize, data::one_hot(&labels, classes as usize));
        let net = paper_net(&[20, 16, 10], Activation::Tanh, Init::XavierNormal, 3).unwrap();
        let mut l = Learner::new(net, "bp", &Default::default(), OptimConfig::sgd(0.05)).unwrap();
        let fresh = |net: &Net<f32>| 1.0 - net.evaluate(&x, &y).unwrap().1 as f64 / n as f64;
        let d = Dataset::new("toy", x.data().to_vec(), labels.clone(), [1, 1, 20], 10).unwrap();
        let mut seen = Vec::new();
        for round in 0..3 {
            let e = l.test_error(&x, &y).unwrap();
            assert_eq!(e, fresh(&l.net), "round {round}");
            seen.push(e);
            l.epoch(&d, 100, round).unwrap();
        }
        assert!(seen.windows(2).any(|w| w[0] != w[1]), "training changed nothing: {seen:?}");
        assert_eq!(error_rate(&l.net, &x, &y).unwrap(), fresh(&l.net));
    }
}
