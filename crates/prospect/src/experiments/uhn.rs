//! Universal Hopfield Network experiments (Millidge, Salvatori, Song et al., ICML 2022):
//! capacity and robustness of the single-shot memory `out = Mᵀ sep(sim(M, q))`
//! ([`crate::memory::uhn`]) on MNIST, per similarity and per separation.
//!
//! Protocol of the reference code (BerenMillidge/Theory_Associative_Memory, `plotting.py`,
//! `PC_retrieve_store_continuous`): MNIST training images, pixels in [0, 1], flattened to 784.
//! Each repetition uses its own disjoint set of images, as many as the largest N of the
//! sweep, and stores the first N of them for each N (nested prefixes). Every stored image is
//! queried once with its corruption; a recall succeeds when its summed squared error to the
//! image is at most the threshold (60 for 784 pixels). The score of a (method, N or level,
//! set) is the fraction of successes.
//!
//! The data set's mean image passes that threshold of 60 for about three quarters of MNIST
//! digits by itself (science.md §7), so every table and panel here also scores the
//! mean-image baseline ([`memory::mean_baseline`]: the mean image for the unknown pixels,
//! the known ones kept) and reports success at a second, strict threshold ([`STRICT`]) that
//! the mean image fails; the panels use the strict threshold as the headline.
//!
//! The scoring core, [`score_set`], takes the patterns and queries as tensors, so it runs on
//! any data.

use super::util::{mean_std, pct};
use super::{Claim, Grid, Panel, Report, Series, Settings, Table, Verdict};
use crate::error::{Error, Result};
use crate::memory::uhn::{Separation, Similarity, Uhn, UhnConfig};
use crate::memory::{self, Corruption, ImageShape, Memory};
use crate::tensor::Tensor;
use rayon::prelude::*;

/// The reference's success threshold on the summed squared error, for 784 pixels.
pub const THRESHOLD: f64 = memory::REFERENCE_THRESHOLD;

/// The strict threshold (for 784 pixels, scaled by `D / 784` like [`THRESHOLD`]): below the
/// summed squared error of the mean image for every one of the 60 000 MNIST training images,
/// on the whole image (minimum 27.8, median 49.4; 73.6% are at most 60) and on the bottom
/// half (minimum 14.1, median 25.8; 99.6% are at most 60). A recall by the max separation is
/// a stored image, so it scores 0 when it is the right one.
pub const STRICT: f64 = memory::STRICT_THRESHOLD;

/// Softmax inverse temperature of the reference (`sep_param = 1000`).
pub const SOFTMAX_BETA: f64 = 1000.0;

/// The data set of the experiments.
const DATASET: &str = "mnist";

/// Seed of the shuffle that the disjoint sets are cut from.
const SHUFFLE_SEED: u64 = 1;

/// Images shown in the recall grids.
const GRID_ROWS: usize = 6;

/// One network compared: a label and its settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Method {
    /// Legend label.
    pub label: String,
    /// The network's settings.
    pub cfg: UhnConfig,
}

impl Method {
    /// A network with the reference's sum normalisation before and after the separation.
    pub fn new(
        label: impl Into<String>,
        similarity: Similarity,
        separation: Separation,
        param: f64,
    ) -> Self {
        let cfg = UhnConfig { similarity, separation, param, ..Default::default() };
        Self { label: label.into(), cfg }
    }
}

/// Summed squared errors of one condition, one per query.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Outcome {
    /// Summed squared error of each query's recall; NaN where the network's scores were
    /// undefined (e.g. a sum-normalised similarity of an all-zero query), which fails any
    /// threshold as NaN does in the reference.
    pub sse: Vec<f64>,
}

impl Outcome {
    /// Fraction of queries whose summed squared error is at most `threshold`.
    pub fn success(&self, threshold: f64) -> f64 {
        if self.sse.is_empty() {
            return 0.0;
        }
        self.sse.iter().filter(|&&s| s <= threshold).count() as f64 / self.sse.len() as f64
    }

    /// Queries whose recall was undefined.
    pub fn undefined(&self) -> usize {
        self.sse.iter().filter(|s| s.is_nan()).count()
    }

    /// Mean summed squared error over the defined recalls (NaN if none).
    pub fn mean_sse(&self) -> f64 {
        let ok: Vec<f64> = self.sse.iter().copied().filter(|s| !s.is_nan()).collect();
        if ok.is_empty() {
            f64::NAN
        } else {
            ok.iter().sum::<f64>() / ok.len() as f64
        }
    }
}

/// What [`score_set`] measured on one set of patterns.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SetScores {
    /// `methods[m][i]`: method `m` with the first `ns[i]` patterns stored.
    pub methods: Vec<Vec<Outcome>>,
    /// `baseline[i]`: the mean image (unknown entries) for the first `ns[i]` queries.
    pub baseline: Vec<Outcome>,
}

fn prefix(x: &Tensor<f32>, n: usize) -> Tensor<f32> {
    Tensor::from_vec(n, x.cols(), x.data()[..n * x.cols()].to_vec())
}

fn sse(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(u, v)| ((u - v) as f64).powi(2)).sum()
}

/// Stores `stored` in the network of `method` and recalls each row of `queries` alone
/// (in parallel): `None` for a query whose scores are undefined.
///
/// # Errors
/// [`Error::Config`] for invalid settings; [`Error::Shape`] on mismatched widths or masks.
pub fn recall(
    method: &Method,
    stored: &Tensor<f32>,
    queries: &Tensor<f32>,
    mask: &Tensor<f32>,
) -> Result<Vec<Option<Vec<f32>>>> {
    method.cfg.validate()?;
    let d = stored.cols();
    if queries.cols() != d {
        return Err(Error::shape("uhn recall", "query width", d, queries.cols()));
    }
    if mask.shape() != queries.shape() {
        return Err(Error::shape("uhn recall", "mask", queries.shape(), mask.shape()));
    }
    let mut uhn = Uhn::new(method.cfg.clone(), d);
    uhn.store(stored)?;
    Ok((0..queries.rows())
        .into_par_iter()
        .map(|r| {
            let q = Tensor::from_vec(1, d, queries.row(r).to_vec());
            let m = Tensor::from_vec(1, d, mask.row(r).to_vec());
            uhn.recall(&q, &m).ok().map(Tensor::into_vec)
        })
        .collect())
}

/// Scores every method and the mean-image baseline on one set: for each `n` of `ns` the
/// first `n` rows of `patterns` are stored and each is queried once with the same row of
/// `queries` (`mask`: 1 = known entry). The summed squared errors are against the pattern.
///
/// # Errors
/// [`Error::Config`] (`n`) if an `n` is 0 or larger than the set; [`Error::Shape`] if
/// `queries`, `mask` and `mean` do not match `patterns`.
pub fn score_set(
    patterns: &Tensor<f32>,
    mean: &[f32],
    queries: &Tensor<f32>,
    mask: &Tensor<f32>,
    ns: &[usize],
    methods: &[Method],
) -> Result<SetScores> {
    if queries.shape() != patterns.shape() {
        return Err(Error::shape("uhn score", "queries", patterns.shape(), queries.shape()));
    }
    if mask.shape() != patterns.shape() {
        return Err(Error::shape("uhn score", "mask", patterns.shape(), mask.shape()));
    }
    if mean.len() != patterns.cols() {
        return Err(Error::shape("uhn score", "mean pattern", patterns.cols(), mean.len()));
    }
    if let Some(&n) = ns.iter().find(|&&n| n == 0 || n > patterns.rows()) {
        return Err(Error::config(
            "n",
            format!("cannot store {n} of a set of {} patterns (need 1..={0})", patterns.rows()),
        ));
    }
    let mut out = SetScores {
        methods: vec![Vec::with_capacity(ns.len()); methods.len()],
        ..Default::default()
    };
    for &n in ns {
        let (stored, q, m) = (prefix(patterns, n), prefix(queries, n), prefix(mask, n));
        for (k, method) in methods.iter().enumerate() {
            let sse = recall(method, &stored, &q, &m)?
                .iter()
                .enumerate()
                .map(|(r, rec)| rec.as_ref().map_or(f64::NAN, |v| sse(v, stored.row(r))))
                .collect();
            out.methods[k].push(Outcome { sse });
        }
        let base = memory::mean_baseline(mean, &q, &m);
        let sse = (0..n).map(|r| sse(base.row(r), stored.row(r))).collect();
        out.baseline.push(Outcome { sse });
    }
    Ok(out)
}

/// The seed of the corruption `c` of set `set`.
fn query_seed(set: usize, c: usize) -> u64 {
    1 + 1000 * set as u64 + c as u64
}

/// A sweep: either over N with one corruption (capacity) or over corruptions at one N.
struct Sweep {
    methods: Vec<Method>,
    ns: Vec<usize>,
    corruptions: Vec<Corruption>,
    sets: usize,
}

/// One point of a sweep: N and the index of the corruption.
#[derive(Clone, Copy, Debug)]
struct Point {
    n: usize,
    c: usize,
}

/// Everything a sweep measured.
struct Measured {
    sweep: Sweep,
    points: Vec<Point>,
    /// `outcomes[point][method][set]`.
    outcomes: Vec<Vec<Vec<Outcome>>>,
    /// `baseline[point][set]`.
    baseline: Vec<Vec<Outcome>>,
    /// The reference's threshold and the strict one, scaled to the pattern width.
    thr: [f64; 2],
    /// Set 0, for the recall grids: patterns, mean, layout.
    first: (Tensor<f32>, Vec<f32>, ImageShape),
}

impl Sweep {
    fn points(&self) -> Vec<Point> {
        if self.corruptions.len() == 1 {
            self.ns.iter().map(|&n| Point { n, c: 0 }).collect()
        } else {
            (0..self.corruptions.len()).map(|c| Point { n: self.ns[0], c }).collect()
        }
    }

    fn run(self, s: &Settings) -> Result<Measured> {
        debug_assert!(self.corruptions.len() == 1 || self.ns.len() == 1);
        let max_n = self.ns.iter().copied().max().unwrap_or(0);
        let points = self.points();
        let np = points.len();
        let nm = self.methods.len();
        let mut outcomes = vec![vec![Vec::with_capacity(self.sets); nm]; np];
        let mut baseline = vec![Vec::with_capacity(self.sets); np];
        if self.sets > 1 {
            // Fail before any work if the last set does not fit in the data set.
            memory::patterns(DATASET, max_n, self.sets - 1, SHUFFLE_SEED)?;
        }
        let mut first = None;
        let mut dim = 0;
        for set in 0..self.sets {
            s.log(format!("set {}/{}: {max_n} {DATASET} images", set + 1, self.sets));
            let (p, mean, shape) = memory::patterns(DATASET, max_n, set, SHUFFLE_SEED)?;
            dim = p.cols();
            for (ci, c) in self.corruptions.iter().enumerate() {
                let (q, m) = c.apply(&p, shape, query_seed(set, ci))?;
                let sc = score_set(&p, &mean, &q, &m, &self.ns, &self.methods)?;
                for (i, pt) in points.iter().enumerate().filter(|(_, pt)| pt.c == ci) {
                    let j = self.ns.iter().position(|&n| n == pt.n).expect("n of the sweep");
                    for k in 0..nm {
                        outcomes[i][k].push(sc.methods[k][j].clone());
                    }
                    baseline[i].push(sc.baseline[j].clone());
                }
            }
            if first.is_none() {
                first = Some((p, mean, shape));
            }
        }
        let thr = [memory::threshold(THRESHOLD, dim, true), memory::threshold(STRICT, dim, true)];
        let first = first.ok_or_else(|| Error::config("seeds", "no set was run"))?;
        Ok(Measured { sweep: self, points, outcomes, baseline, thr, first })
    }
}

impl Measured {
    fn method(&self, label: &str) -> usize {
        self.sweep.methods.iter().position(|m| m.label == label).expect("method of the sweep")
    }

    /// Per-set success of `label` at point `i` (threshold `t`: 0 = reference, 1 = strict).
    fn success(&self, label: &str, i: usize, t: usize) -> Vec<f64> {
        let k = self.method(label);
        self.outcomes[i][k].iter().map(|o| o.success(self.thr[t])).collect()
    }

    /// Per-set success of `label` averaged over the points (area under the curve).
    fn auc(&self, label: &str, t: usize) -> Vec<f64> {
        let k = self.method(label);
        (0..self.sweep.sets)
            .map(|set| {
                let v: f64 =
                    self.outcomes.iter().map(|o| o[k][set].success(self.thr[t])).sum::<f64>();
                v / self.points.len() as f64
            })
            .collect()
    }

    /// Per-set success of the mean image at point `i`.
    fn base(&self, i: usize, t: usize) -> Vec<f64> {
        self.baseline[i].iter().map(|o| o.success(self.thr[t])).collect()
    }

    fn corruption(&self, i: usize) -> Corruption {
        self.sweep.corruptions[self.points[i].c]
    }

    /// The raw numbers: one row per point, method and set, the mean image included.
    fn table(&self) -> Table {
        let mut t = Table::new(&[
            "method",
            "similarity",
            "separation",
            "param",
            "n",
            "corruption",
            "set",
            "queries",
            "success_thr60",
            "success_strict",
            "strict_threshold",
            "mean_sse",
            "undefined",
        ]);
        let f = |v: f64| format!("{v:.4}");
        for (i, pt) in self.points.iter().enumerate() {
            let c = self.corruption(i).label();
            let rows = self.sweep.methods.iter().enumerate().map(|(k, m)| {
                let cfg = &m.cfg;
                let (sim, sep) = (cfg.similarity.name().to_string(), cfg.separation.name());
                (m.label.clone(), sim, sep.to_string(), cfg.param.to_string(), &self.outcomes[i][k])
            });
            let base = std::iter::once((
                "mean image".to_string(),
                "-".to_string(),
                "-".to_string(),
                "-".to_string(),
                &self.baseline[i],
            ));
            for (label, sim, sep, param, per_set) in rows.chain(base) {
                for (set, o) in per_set.iter().enumerate() {
                    t.push(vec![
                        label.clone(),
                        sim.clone(),
                        sep.clone(),
                        param.clone(),
                        pt.n.to_string(),
                        c.clone(),
                        set.to_string(),
                        o.sse.len().to_string(),
                        f(o.success(self.thr[0])),
                        f(o.success(self.thr[1])),
                        self.thr[1].to_string(),
                        f(o.mean_sse()),
                        o.undefined().to_string(),
                    ]);
                }
            }
        }
        t
    }

    /// A panel of success vs the sweep's x, one series per method in `labels` plus the mean
    /// image, at threshold `t`.
    fn panel(&self, title: &str, labels: &[&str], t: usize, x: &[f64], x_label: &str) -> Panel {
        let mut series: Vec<Series> = labels
            .iter()
            .map(|&l| {
                let v: Vec<Vec<f64>> =
                    (0..self.points.len()).map(|i| self.success(l, i, t)).collect();
                Series::from_seeds(l, x.to_vec(), &v)
            })
            .collect();
        let v: Vec<Vec<f64>> = (0..self.points.len()).map(|i| self.base(i, t)).collect();
        series.push(Series::from_seeds("mean image", x.to_vec(), &v));
        let which = if t == 0 { "reference threshold" } else { "strict threshold" };
        Panel {
            title: format!("{title} ({which} {})", self.thr[t]),
            x_label: x_label.into(),
            y_label: "fraction correctly recalled".into(),
            log_x: self.sweep.corruptions.len() == 1,
            log_y: false,
            series,
        }
    }

    /// Query | recall of each method in `labels` | mean image | truth, for the first
    /// images of set 0 at point `i`.
    fn grid(&self, name: &str, i: usize, labels: &[&str]) -> Result<Grid> {
        let (p, mean, shape) = &self.first;
        let pt = self.points[i];
        let (q, m) = self.corruption(i).apply(p, *shape, query_seed(0, pt.c))?;
        let rows = GRID_ROWS.min(pt.n);
        let stored = prefix(p, pt.n);
        let (q, m) = (prefix(&q, rows), prefix(&m, rows));
        let mut recalls = Vec::new();
        for l in labels {
            recalls.push(recall(&self.sweep.methods[self.method(l)], &stored, &q, &m)?);
        }
        let base = memory::mean_baseline(mean, &q, &m);
        let clip = |v: &[f32]| v.iter().map(|x| x.clamp(0.0, 1.0)).collect::<Vec<f32>>();
        let mut g = Grid::new(name, rows, labels.len() + 3, shape.height, shape.width);
        for r in 0..rows {
            g.cells.push(clip(q.row(r)));
            for rec in &recalls {
                g.cells.push(rec[r].as_deref().map_or_else(|| vec![0.0; p.cols()], clip));
            }
            g.cells.push(clip(base.row(r)));
            g.cells.push(clip(p.row(r)));
        }
        Ok(g)
    }

    /// Claim: `better` above `worse` on per-set values `v`.
    fn compare(
        &self,
        what: String,
        paper: &str,
        better: &str,
        worse: &str,
        v: impl Fn(&str) -> Vec<f64>,
    ) -> Claim {
        let (b, w) = (v(better), v(worse));
        Claim::new(
            what,
            paper,
            format!("{better} {} vs {worse} {}", pct(&b), pct(&w)),
            Verdict::less(&w, &b),
        )
    }

    /// Info row: the mean image's success at both thresholds over every point and query.
    fn baseline_claim(&self, paper: &str) -> Claim {
        let all: Vec<f64> = self.baseline.iter().flatten().flat_map(|o| o.sse.clone()).collect();
        let frac = |t: f64| all.iter().filter(|&&s| s <= t).count() as f64 / all.len() as f64;
        let mut sorted = all.clone();
        sorted.sort_by(f64::total_cmp);
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN);
        let min = sorted.first().copied().unwrap_or(f64::NAN);
        Claim::new(
            "mean-image baseline (the data set's mean image for every unknown pixel), all \
             points and queries",
            paper,
            format!(
                "passes {} for {:.1}% and the strict {} for {:.1}% of {} queries; its summed \
                 squared error: median {median:.1}, min {min:.1}",
                self.thr[0],
                100.0 * frac(self.thr[0]),
                self.thr[1],
                100.0 * frac(self.thr[1]),
                all.len()
            ),
            None,
        )
    }

    /// Every method's success at point `i`, strict and reference thresholds, one Info row.
    fn all_at(&self, what: String, i: usize) -> Claim {
        let cells: Vec<String> = self
            .sweep
            .methods
            .iter()
            .map(|m| {
                let (a, b) = (self.success(&m.label, i, 1), self.success(&m.label, i, 0));
                format!("{} {:.0}% ({:.0}%)", m.label, 100.0 * mean(&a), 100.0 * mean(&b))
            })
            .collect();
        let (a, b) = (self.base(i, 1), self.base(i, 0));
        Claim::new(
            what,
            "-",
            format!(
                "{}; mean image {:.0}% ({:.0}%)",
                cells.join(", "),
                100.0 * mean(&a),
                100.0 * mean(&b)
            ),
            None,
        )
    }

    /// The number of undefined recalls, per method, if any.
    fn undefined_note(&self) -> Option<String> {
        let cells: Vec<String> = self
            .sweep
            .methods
            .iter()
            .enumerate()
            .filter_map(|(k, m)| {
                let (mut bad, mut total) = (0, 0);
                for o in self.outcomes.iter().flat_map(|p| &p[k]) {
                    bad += o.undefined();
                    total += o.sse.len();
                }
                (bad > 0).then(|| format!("{} {bad} of {total}", m.label))
            })
            .collect();
        (!cells.is_empty()).then(|| {
            format!(
                "Undefined recalls (the scores could not be sum-normalised, e.g. an all-zero \
                 query under a sum-normalised similarity; counted as failures, as the \
                 reference's NaN fails its threshold): {}.",
                cells.join(", ")
            )
        })
    }

    /// The points (x values) where the mean image beats every method at the reference
    /// threshold, if any.
    fn baseline_wins_note(&self, x: &[f64]) -> Option<String> {
        let wins: Vec<String> = (0..self.points.len())
            .filter(|&i| {
                let b = mean(&self.base(i, 0));
                self.sweep.methods.iter().all(|m| mean(&self.success(&m.label, i, 0)) < b)
            })
            .map(|i| x[i].to_string())
            .collect();
        (!wins.is_empty()).then(|| {
            format!(
                "At the reference threshold {} the mean image scores above every method at {}: \
                 there the threshold does not tell memory from guessing.",
                self.thr[0],
                wins.join(", ")
            )
        })
    }

    /// The setup line common to the four experiments.
    fn setup(&self, what: &str) -> String {
        format!(
            "{what}; MNIST training images (pixels in [0, 1], 784 values), {} disjoint \
             set(s) of a seeded shuffle (seed {SHUFFLE_SEED}), each as large as the largest N, \
             nested prefixes for smaller N; every stored image queried once, the same \
             queries for every method; sum normalisation before and after the separation; \
             success = summed squared error <= {} (the reference) or <= {} (strict: the mean \
             image fails it; the panels' headline); mean ± std over the sets",
            self.sweep.sets, self.thr[0], self.thr[1]
        )
    }
}

fn mean(v: &[f64]) -> f64 {
    mean_std(v).0
}

/// The similarities compared (the reference's, without its Jensen-Shannon; then the raw dot
/// product and cosine), each with the max separation.
fn similarity_methods() -> Vec<Method> {
    [
        ("euclidean", Similarity::Euclidean),
        ("manhattan", Similarity::Manhattan),
        ("dot product", Similarity::NormalizedDot),
        ("KL", Similarity::Kl),
        ("reverse KL", Similarity::ReverseKl),
        ("raw dot", Similarity::Dot),
        ("cosine", Similarity::Cosine),
    ]
    .into_iter()
    .map(|(l, sim)| Method::new(l, sim, Separation::Max, SOFTMAX_BETA))
    .collect()
}

/// The labels drawn on the similarity panels (the paper's).
const PAPER_SIMS: [&str; 5] = ["euclidean", "manhattan", "dot product", "KL", "reverse KL"];

const SIM_NOTES: [&str; 3] = [
    "\"dot product\" is the reference's normalized_dot_product (each vector divided by its \
     sum), as labelled in its figures; \"raw dot\" (x . z) and \"cosine\" (per-memory norms) \
     are extra rows, in the table and the claims but not on the panels.",
    "The reference's Jensen-Shannon similarity is left out: it is 2ab/(a+b) of the reciprocal \
     KLs, which grows with the divergence, so under max it picks the least similar memory.",
    "Each set's corruption is drawn once for its largest N and shared by the nested prefixes \
     and by every method (a paired comparison); the reference draws fresh noise for each N \
     and method.",
];

fn strict_note(thr: [f64; 2]) -> String {
    format!(
        "Thresholds: the reference counts a recall correct when its summed squared error is at \
         most {}, which the data set's mean image alone passes for about 74% of MNIST digits \
         (whole image) and for over 99% with the top half given; the headline here is the \
         strict threshold {}, below the mean image's error for every MNIST training image \
         (min 27.8 whole, 14.1 bottom half). A max-separation recall is a stored image: 0 when \
         right, and a wrong digit can still pass 60 when it looks alike (two 1s). Both are in \
         the CSV (success_thr60, success_strict).",
        thr[0], thr[1]
    )
}

/// Capacity vs N per similarity: Gaussian noise of std 0.5 (`|x + n|` clipped to [0, 1]),
/// max separation.
///
/// # Errors
/// [`Error::Data`] naming the fetch command if MNIST is missing; [`Error::Config`] if the
/// sets need more images than MNIST holds (too many seeds).
pub fn run_similarity(s: &Settings) -> Result<Report> {
    let ns = s.pick(
        vec![2, 10, 50, 100, 200, 500],
        vec![2, 5, 10, 20, 50, 100, 200, 300, 500, 700, 1000],
    );
    let sweep = Sweep {
        methods: similarity_methods(),
        ns: ns.clone(),
        corruptions: vec![Corruption::NoiseClip { std: 0.5 }],
        sets: s.seeds(3, 5),
    };
    let m = sweep.run(s)?;
    let last = m.points.len() - 1;
    let n_max = m.points[last].n;
    let paper = "Euclidean and Manhattan give more capacity than dot product";
    let mut claims = Vec::new();
    for (t, name) in [(1, "strict"), (0, "reference")] {
        for better in ["euclidean", "manhattan"] {
            claims.push(m.compare(
                format!(
                    "success at N = {n_max}, {name} threshold {}: {better} vs dot product",
                    m.thr[t]
                ),
                paper,
                better,
                "dot product",
                |l| m.success(l, last, t),
            ));
        }
    }
    for better in ["euclidean", "manhattan"] {
        claims.push(m.compare(
            format!("mean success over N, strict threshold: {better} vs dot product"),
            paper,
            better,
            "dot product",
            |l| m.auc(l, 1),
        ));
    }
    let (small, large) = (m.success("manhattan", 0, 1), m.success("manhattan", last, 1));
    claims.push(Claim::new(
        format!("manhattan: success at N = {} vs N = {n_max}, strict threshold", ns[0]),
        "capacity is finite: success falls as N grows",
        format!("{} vs {}", pct(&small), pct(&large)),
        Verdict::less(&large, &small),
    ));
    claims.push(
        m.all_at(format!("every similarity at N = {n_max}: success strict (reference 60)"), last),
    );
    claims.push(m.baseline_claim(
        "not in the paper; science.md: the mean image passes 60 for ~74% of MNIST digits",
    ));
    let x: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let mut notes = vec![strict_note(m.thr)];
    notes.extend(SIM_NOTES.iter().map(|n| n.to_string()));
    notes.push(
        "Grid (set 0, largest N): query | manhattan | dot product | mean image | truth.".into(),
    );
    notes.extend(m.baseline_wins_note(&x));
    notes.extend(m.undefined_note());
    Ok(Report {
        name: "uhn-similarity".into(),
        title: "Universal Hopfield Networks: capacity vs N per similarity (MNIST, noise 0.5)"
            .into(),
        setup: m.setup(&format!(
            "similarities euclidean (1/sum sq), manhattan (1/sum abs), dot product \
             (normalized), KL, reverse KL, raw dot, cosine; max separation; query = |x + \
             N(0, 0.5^2)| clipped to [0, 1]; N in {ns:?}"
        )),
        table: m.table(),
        panels: vec![
            m.panel("similarity", &PAPER_SIMS, 1, &x, "images stored (N)"),
            m.panel("similarity", &PAPER_SIMS, 0, &x, "images stored (N)"),
        ],
        grids: vec![m.grid("recalls", last, &["manhattan", "dot product"])?],
        claims,
        notes,
    })
}

/// Capacity vs N per separation: Manhattan similarity, bottom half masked (set to 0).
///
/// # Errors
/// As [`run_similarity`].
pub fn run_separation(s: &Settings) -> Result<Report> {
    let ns = s.pick(
        vec![5, 10, 50, 100, 200, 500],
        vec![5, 7, 10, 20, 50, 100, 200, 300, 500, 700, 1000],
    );
    let man = Similarity::Manhattan;
    let poly = |l: &str, p: f64| Method::new(l, man, Separation::Polynomial, p);
    let methods = vec![
        Method::new("log", man, Separation::Log, SOFTMAX_BETA),
        Method::new("identity", man, Separation::Identity, SOFTMAX_BETA),
        poly("sqrt", 0.5),
        Method::new("softmax", man, Separation::Softmax, SOFTMAX_BETA),
        poly("square", 2.0),
        poly("cube", 3.0),
        poly("quartic", 4.0),
        poly("10th power", 10.0),
        Method::new("max", man, Separation::Max, SOFTMAX_BETA),
    ];
    let sweep = Sweep {
        methods,
        ns: ns.clone(),
        corruptions: vec![Corruption::Bottom { fraction: 0.5 }],
        sets: s.seeds(3, 5),
    };
    let m = sweep.run(s)?;
    let last = m.points.len() - 1;
    let n_max = m.points[last].n;
    let paper = "sharper separation gives more capacity than identity";
    let mut claims = Vec::new();
    for better in ["max", "softmax", "10th power"] {
        claims.push(m.compare(
            format!("mean success over N, strict threshold {}: {better} vs identity", m.thr[1]),
            paper,
            better,
            "identity",
            |l| m.auc(l, 1),
        ));
    }
    claims.push(m.compare(
        format!("mean success over N, reference threshold {}: max vs identity", m.thr[0]),
        paper,
        "max",
        "identity",
        |l| m.auc(l, 0),
    ));
    let powers = ["sqrt", "identity", "square", "cube", "quartic", "10th power"];
    let auc: Vec<f64> = powers.iter().map(|l| mean(&m.auc(l, 1))).collect();
    let rising = auc.windows(2).all(|w| w[1] >= w[0]) && auc[auc.len() - 1] > auc[0];
    claims.push(Claim::new(
        "mean success over N, strict: powers 0.5, 1, 2, 3, 4, 10",
        "higher powers separate more: more capacity",
        powers
            .iter()
            .zip(&auc)
            .map(|(l, a)| format!("{l} {:.1}%", 100.0 * a))
            .collect::<Vec<_>>()
            .join(", "),
        Some(rising),
    ));
    claims.push(
        m.all_at(format!("every separation at N = {n_max}: success strict (reference 60)"), last),
    );
    claims.push(m.baseline_claim(
        "not in the paper; with the top half given, the mean image passes 60 for >99% of MNIST \
         digits",
    ));
    let x: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let a = ["log", "identity", "sqrt", "softmax", "max"];
    let b = ["square", "cube", "quartic", "10th power", "max"];
    let xl = "images stored (N)";
    let mut notes = vec![
        strict_note(m.thr),
        "The reference's log separation takes ln of sum-normalised scores (< 1, so negative); \
         the sum normalisation after it then gives larger weights to smaller similarities."
            .into(),
        format!(
            "softmax is softmax({SOFTMAX_BETA} s) of the sum-normalised Manhattan scores s \
             (about 1/N each), so it sharpens less as N grows."
        ),
        "The recall is single shot over every pixel, as the reference (the known top half is \
         not kept); the mean-image baseline keeps it."
            .into(),
        "Grid (set 0, largest N): query | max | softmax | identity | mean image | truth.".into(),
    ];
    notes.extend(m.baseline_wins_note(&x));
    notes.extend(m.undefined_note());
    Ok(Report {
        name: "uhn-separation".into(),
        title: "Universal Hopfield Networks: capacity vs N per separation (MNIST, bottom half \
                masked)"
            .into(),
        setup: m.setup(&format!(
            "Manhattan similarity; separations log, identity, sqrt, softmax (beta \
             {SOFTMAX_BETA}), square, cube, quartic, 10th power, max; query = the image with \
             its bottom half (rows 14-27) set to 0; N in {ns:?}"
        )),
        table: m.table(),
        panels: vec![
            m.panel("separation", &a, 1, &x, xl),
            m.panel("polynomial separation", &b, 1, &x, xl),
            m.panel("separation", &a, 0, &x, xl),
            m.panel("polynomial separation", &b, 0, &x, xl),
        ],
        grids: vec![m.grid("recalls", last, &["max", "softmax", "identity"])?],
        claims,
        notes,
    })
}

/// Robustness claims shared by the noise and mask sweeps.
fn robustness_claims(m: &Measured, level: &str, levels: &[f64]) -> Vec<Claim> {
    let last = m.points.len() - 1;
    let mut claims = Vec::new();
    for l in ["euclidean", "manhattan", "dot product"] {
        let (lo, hi) = (m.success(l, 0, 1), m.success(l, last, 1));
        claims.push(Claim::new(
            format!("{l}: success at {level} {} vs {} (strict)", levels[0], levels[last]),
            format!("success falls as the {level} grows"),
            format!("{} vs {}", pct(&lo), pct(&hi)),
            Verdict::less(&hi, &lo),
        ));
    }
    let paper = "Euclidean and Manhattan are more robust than dot product";
    for (t, name) in [(1, "strict"), (0, "reference")] {
        for better in ["euclidean", "manhattan"] {
            claims.push(m.compare(
                format!(
                    "mean success over the {} levels, {name} threshold {}: {better} vs dot \
                     product",
                    levels.len(),
                    m.thr[t]
                ),
                paper,
                better,
                "dot product",
                |l| m.auc(l, t),
            ));
        }
    }
    for better in ["euclidean", "manhattan"] {
        let mut by: [Vec<String>; 3] = Default::default();
        for (i, lv) in levels.iter().enumerate() {
            let v = Verdict::less(&m.success("dot product", i, 1), &m.success(better, i, 1));
            let k = match v {
                Verdict::Yes => 0,
                Verdict::No => 1,
                _ => 2,
            };
            by[k].push(lv.to_string());
        }
        let parts: Vec<String> = ["above", "below", "tied with"]
            .iter()
            .zip(&by)
            .filter(|(_, v)| !v.is_empty())
            .map(|(w, v)| format!("{w} dot product at {}", v.join(", ")))
            .collect();
        claims.push(Claim::new(
            format!("{better} vs dot product level by level (strict, beyond the set spread)"),
            paper,
            parts.join("; "),
            None,
        ));
    }
    claims
}

/// Success vs noise std at N = 100, per similarity (max separation).
///
/// # Errors
/// As [`run_similarity`].
pub fn run_noise(s: &Settings) -> Result<Report> {
    let sigmas = [0.05, 0.1, 0.2, 0.3, 0.5, 0.8, 1.0, 1.5];
    let n = 100;
    let sweep = Sweep {
        methods: similarity_methods(),
        ns: vec![n],
        corruptions: sigmas.iter().map(|&std| Corruption::NoiseClip { std }).collect(),
        sets: s.seeds(3, 5),
    };
    let m = sweep.run(s)?;
    let mut claims = robustness_claims(&m, "noise std", &sigmas);
    let i = sigmas.iter().position(|&v| v == 0.5).expect("0.5 in the sweep");
    claims.push(m.all_at("every similarity at std 0.5: success strict (reference 60)".into(), i));
    claims.push(m.baseline_claim(
        "not in the paper; science.md: the mean image passes 60 for ~74% of MNIST digits",
    ));
    let mut notes = vec![strict_note(m.thr)];
    notes.extend(SIM_NOTES.iter().map(|n| n.to_string()));
    notes.push(
        "For noise every pixel is unknown, so the mean-image baseline is the mean image itself, \
         the same at every level."
            .into(),
    );
    notes.push(
        "Why the distances fall at std >= 0.8 (our reading): after |.| and clipping, a \
         background pixel of the query averages 0.39 at std 0.5 but 0.56 at 0.8 and 0.63 at 1, \
         nearer 1 than 0, so a distance prefers the memory with the most ink; the \
         sum-normalised dot product averages the query over each memory's ink and still \
         prefers the memory whose ink lies where the query is brightest."
            .into(),
    );
    notes.push(
        "Grid (set 0, std 0.5): query | manhattan | dot product | mean image | truth.".into(),
    );
    notes.extend(m.baseline_wins_note(&sigmas));
    notes.extend(m.undefined_note());
    let x = sigmas.to_vec();
    let xl = "noise std (sigma)";
    Ok(Report {
        name: "uhn-noise".into(),
        title: format!(
            "Universal Hopfield Networks: recall vs noise std per similarity (MNIST, N = {n})"
        ),
        setup: m.setup(&format!(
            "N = {n}; similarities as uhn-similarity, max separation; query = |x + N(0, \
             sigma^2)| clipped to [0, 1], sigma in {sigmas:?}"
        )),
        table: m.table(),
        panels: vec![
            m.panel("noise", &PAPER_SIMS, 1, &x, xl),
            m.panel("noise", &PAPER_SIMS, 0, &x, xl),
        ],
        grids: vec![m.grid("recalls", i, &["manhattan", "dot product"])?],
        claims,
        notes,
    })
}

/// Success vs masked fraction (bottom rows set to 0) at N = 50, per similarity (max
/// separation).
///
/// # Errors
/// As [`run_similarity`].
pub fn run_mask(s: &Settings) -> Result<Report> {
    let fractions: Vec<f64> = (1..=9).map(|k| k as f64 / 10.0).collect();
    let n = 50;
    let sweep = Sweep {
        methods: similarity_methods(),
        ns: vec![n],
        corruptions: fractions.iter().map(|&fraction| Corruption::Bottom { fraction }).collect(),
        sets: s.seeds(3, 5),
    };
    let m = sweep.run(s)?;
    let mut claims = robustness_claims(&m, "masked fraction", &fractions);
    let i = fractions.iter().position(|&v| v == 0.5).expect("0.5 in the sweep");
    claims.push(
        m.all_at("every similarity at fraction 0.5: success strict (reference 60)".into(), i),
    );
    claims.push(m.baseline_claim(
        "not in the paper; the mean image fills only the masked rows, so it passes more often \
         the smaller the fraction",
    ));
    let passing: Vec<String> = (0..m.points.len())
        .filter(|&i| mean(&m.base(i, 1)) > 0.01)
        .map(|i| format!("{} ({:.0}%)", fractions[i], 100.0 * mean(&m.base(i, 1))))
        .collect();
    let mut notes = vec![strict_note(m.thr)];
    if !passing.is_empty() {
        notes.push(format!(
            "The mean image passes even the strict threshold at masked fractions {}: the \
             bottom rows of MNIST images are nearly blank, so small fractions hide little and \
             do not separate memory from guessing.",
            passing.join(", ")
        ));
    }
    notes.extend(SIM_NOTES.iter().map(|n| n.to_string()));
    notes.push(
        "Masked rows: int(28 (1 - fraction)) rows are kept, as the reference; at 0.9 only rows \
         0-1 are kept, which are blank in MNIST, so the query is all zeros."
            .into(),
    );
    notes.push(
        "Euclidean and Manhattan compare the zeroed rows as data, so they prefer memories with \
         little ink there; dot product, cosine and reverse KL give the query's zero entries no \
         weight and compare the known rows only (our reading of why they hold up to larger \
         fractions)."
            .into(),
    );
    notes.push(
        "Grid (set 0, fraction 0.5): query | manhattan | dot product | mean image | truth.".into(),
    );
    notes.extend(m.baseline_wins_note(&fractions));
    notes.extend(m.undefined_note());
    let xl = "masked fraction (bottom rows)";
    Ok(Report {
        name: "uhn-mask".into(),
        title: format!(
            "Universal Hopfield Networks: recall vs masked fraction per similarity (MNIST, N = {n})"
        ),
        setup: m.setup(&format!(
            "N = {n}; similarities as uhn-similarity, max separation; query = the image with \
             its bottom fraction of rows set to 0, fraction in 0.1..0.9 step 0.1"
        )),
        table: m.table(),
        panels: vec![
            m.panel("mask", &PAPER_SIMS, 1, &fractions, xl),
            m.panel("mask", &PAPER_SIMS, 0, &fractions, xl),
        ],
        grids: vec![m.grid("recalls", i, &["manhattan", "dot product"])?],
        claims,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// `n` random binary 8x8 patterns, each with about a third of its pixels on.
    fn binary(n: usize, seed: u64) -> Tensor<f32> {
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        Tensor::from_fn(n, 64, |_, _| (rng.random::<f64>() < 0.35) as u8 as f32)
    }

    const SHAPE: ImageShape = ImageShape { channels: 1, height: 8, width: 8 };

    #[test]
    fn max_separation_recalls_every_pattern_at_tiny_noise_and_scores_the_mean_image() {
        // With max, the recall is one stored pattern: at tiny noise the nearest is the right
        // one, so the error is exactly 0 (a wrong factor in the normalisation, or the
        // separation applied to the wrong axis, would blend patterns and leave an error).
        let p = binary(12, 3);
        let mean = memory::mean_row(&p);
        let (q, mask) = Corruption::NoiseClip { std: 0.01 }.apply(&p, SHAPE, 5).unwrap();
        let methods = vec![
            Method::new("euclidean", Similarity::Euclidean, Separation::Max, SOFTMAX_BETA),
            Method::new("manhattan", Similarity::Manhattan, Separation::Max, SOFTMAX_BETA),
            Method::new("identity", Similarity::Manhattan, Separation::Identity, 1.0),
        ];
        let ns = [2, 5, 12];
        let sc = score_set(&p, &mean, &q, &mask, &ns, &methods).unwrap();
        assert_eq!(sc.methods.len(), 3);
        for (k, per_n) in sc.methods.iter().enumerate().take(2) {
            for (o, &n) in per_n.iter().zip(&ns) {
                assert_eq!(o.sse.len(), n);
                assert!(o.sse.iter().all(|&e| e == 0.0), "method {k}, N = {n}: {:?}", o.sse);
                assert_eq!(o.success(1e-9), 1.0);
            }
        }
        // identity blends every pattern: not exact once several are stored
        assert!(sc.methods[2][2].sse.iter().all(|&e| e > 1e-3));
        // the baseline answers with the mean row (noise: every entry unknown)
        for (b, &n) in sc.baseline.iter().zip(&ns) {
            assert_eq!(b.sse.len(), n);
            for r in 0..n {
                let want: f64 =
                    p.row(r).iter().zip(&mean).map(|(a, m)| ((a - m) as f64).powi(2)).sum();
                assert!((b.sse[r] - want).abs() < 1e-9);
            }
        }
    }

    #[test]
    fn mask_baseline_keeps_known_entries_and_undefined_scores_fail() {
        // Patterns blank in their top half: the bottom-half mask leaves all-zero queries, for
        // which the sum-normalised dot product is 0/0. The query must count as a failure,
        // not abort the sweep; Manhattan is defined (and recalls the sparsest pattern).
        let mut p = binary(6, 9);
        for r in 0..6 {
            p.row_mut(r)[..32].fill(0.0);
        }
        let mean = vec![0.25f32; 64];
        let (q, mask) = Corruption::Bottom { fraction: 0.5 }.apply(&p, SHAPE, 0).unwrap();
        let methods = vec![
            Method::new("dot product", Similarity::NormalizedDot, Separation::Max, 1.0),
            Method::new("manhattan", Similarity::Manhattan, Separation::Max, 1.0),
        ];
        let sc = score_set(&p, &mean, &q, &mask, &[6], &methods).unwrap();
        assert_eq!(sc.methods[0][0].undefined(), 6);
        assert_eq!(sc.methods[0][0].success(f64::INFINITY), 0.0);
        assert_eq!(sc.methods[1][0].undefined(), 0);
        // baseline: the top half is known (kept, 0 = truth), the bottom half is the mean
        for r in 0..6 {
            let want: f64 = p.row(r)[32..].iter().map(|&a| ((a - 0.25) as f64).powi(2)).sum();
            assert!((sc.baseline[0].sse[r] - want).abs() < 1e-9);
        }
    }

    #[test]
    fn too_many_patterns_is_a_clear_error() {
        let p = binary(4, 1);
        let mean = memory::mean_row(&p);
        let mask = Tensor::zeros(4, 64);
        let m = [Method::new("m", Similarity::Manhattan, Separation::Max, 1.0)];
        let err = score_set(&p, &mean, &p, &mask, &[2, 5], &m).unwrap_err().to_string();
        assert!(err.contains("cannot store 5"), "{err}");
    }
}
