//! Throughput measurement: training samples/s per rule, analytic FLOPs, and the GEMM peak
//! measured on the same product shapes (the numbers behind `prospect bench`).

use crate::error::Result;
use crate::infer::{InferenceConfig, NodeOptim};
use crate::layers::{Activation, Convention};
use crate::learn::{self, Batch, ProductCounts};
use crate::net::{MlpSpec, Net, Workspace};
use crate::optim::{OptimConfig, OptimKind};
use crate::tensor::{Accum, Backend, Cpu, Par, Tensor, Trans};
use crate::WeightOptim;
use serde::Serialize;
use std::time::{Duration, Instant};

/// A named network and batch shape to measure.
#[derive(Clone, Debug)]
pub struct BenchCase {
    /// Name, as printed.
    pub name: &'static str,
    /// The network.
    pub spec: MlpSpec,
    /// Batch size.
    pub batch: usize,
    /// Inference settings of the PC rules.
    pub inference: InferenceConfig,
}

/// The standard cases: the PCX MNIST MLP and a wide MLP.
pub fn cases() -> Vec<BenchCase> {
    let pcx_inference = InferenceConfig {
        steps: 8,
        gamma: 0.0105,
        optimizer: NodeOptim::Momentum,
        momentum: 0.65,
        ..Default::default()
    };
    vec![
        BenchCase {
            name: "mnist-mlp-pcx",
            spec: MlpSpec::new(&[784, 128, 128, 128, 10], Activation::Gelu, Convention::Fw),
            batch: 128,
            inference: pcx_inference.clone(),
        },
        BenchCase {
            name: "wide-mlp",
            spec: MlpSpec::new(&[784, 1000, 1000, 10], Activation::Gelu, Convention::Fw),
            batch: 256,
            inference: pcx_inference,
        },
    ]
}

/// One measured (case, rule) pair.
#[derive(Clone, Debug, Serialize)]
pub struct BenchRow {
    /// Case name.
    pub case: String,
    /// Rule name.
    pub rule: String,
    /// Batch size.
    pub batch: usize,
    /// Training samples per second.
    pub samples_per_second: f64,
    /// Analytic FLOPs per training sample (matrix products only).
    pub flops_per_sample: u64,
    /// Achieved GFLOP/s (`flops_per_sample * samples_per_second`).
    pub gflops: f64,
    /// GFLOP/s of the same products run back to back, measured in this run.
    pub gemm_peak_gflops: f64,
    /// `gflops / gemm_peak_gflops` in percent.
    pub percent_of_peak: f64,
    /// Batches timed.
    pub batches: usize,
}

/// Random inputs in [0, 1) and one-hot targets for `case`.
fn synthetic(case: &BenchCase) -> (Tensor<f32>, Tensor<f32>) {
    let d_in = case.spec.sizes[0];
    let d_out = *case.spec.sizes.last().expect("sizes");
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let x = Tensor::from_fn(case.batch, d_in, |_, _| next());
    let y = Tensor::from_fn(case.batch, d_out, |r, c| (r % d_out == c) as u8 as f32);
    (x, y)
}

/// Times `rule` training on `case` for at least `min_time` (after a warm-up).
///
/// # Errors
/// Config errors from building the network or rule.
pub fn measure(case: &BenchCase, rule: &str, min_time: Duration) -> Result<BenchRow> {
    let mut net: Net<f32> = Net::mlp(&case.spec, 0)?;
    let mut rule_box = learn::build::<f32>(rule, &case.inference)?;
    let ocfg = OptimConfig {
        kind: OptimKind::Adamw,
        lr: 1e-4,
        weight_decay: 1e-4,
        ..OptimConfig::default()
    };
    let mut opt = WeightOptim::new(ocfg, &net)?;
    let (x, y) = synthetic(case);
    let mut ws = Workspace::new(&net, case.batch);
    let mut index = 0;
    let mut run = |n: usize, net: &mut Net<f32>| -> Result<()> {
        for _ in 0..n {
            rule_box.train_batch(net, &mut opt, Batch { x: &x, y: &y, index }, &mut ws)?;
            index += 1;
        }
        Ok(())
    };
    run(3, &mut net)?;
    let start = Instant::now();
    let mut batches = 0;
    while start.elapsed() < min_time || batches < 5 {
        run(5, &mut net)?;
        batches += 5;
    }
    let secs = start.elapsed().as_secs_f64();
    let rule_obj = learn::build::<f32>(rule, &case.inference)?;
    let counts = rule_obj.product_counts(&net);
    let flops = rule_obj.flops_per_example(&net);
    let sps = (batches * case.batch) as f64 / secs;
    let gflops = flops as f64 * sps / 1e9;
    let shards = if matches!(rule, "pc" | "bp") { learn::shard_count(case.batch) } else { 1 };
    let peak = gemm_peak(&net, case.batch, shards, &counts, min_time / 2);
    Ok(BenchRow {
        case: case.name.to_string(),
        rule: rule.to_string(),
        batch: case.batch,
        samples_per_second: sps,
        flops_per_sample: flops,
        gflops,
        gemm_peak_gflops: peak,
        percent_of_peak: 100.0 * gflops / peak,
        batches,
    })
}

/// GFLOP/s of the matrix products of one training batch (`counts` of each kind), run back to
/// back with the same shapes, transposes and threading as the engine (one row shard per
/// thread when `shards > 1`, each running sequential products).
pub fn gemm_peak(
    net: &Net<f32>,
    batch: usize,
    shards: usize,
    counts: &ProductCounts,
    min_time: Duration,
) -> f64 {
    let shards = shards.max(1);
    let mut per_shard: Vec<Vec<GemmJob>> = (0..shards)
        .map(|i| gemm_jobs(net, (i + 1) * batch / shards - i * batch / shards, counts))
        .collect();
    let flops: f64 = per_shard.iter().flatten().map(GemmJob::flops).sum();
    let mut pass = || {
        if shards == 1 {
            per_shard[0].iter_mut().for_each(|j| j.run());
        } else {
            use rayon::prelude::*;
            per_shard.par_iter_mut().for_each(|jobs| {
                crate::tensor::sequential(|| jobs.iter_mut().for_each(|j| j.run()))
            });
        }
    };
    pass();
    let start = Instant::now();
    let mut reps = 0;
    while start.elapsed() < min_time || reps < 3 {
        pass();
        reps += 1;
    }
    flops * reps as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// One product shape repeated `reps` times.
struct GemmJob {
    reps: u64,
    dst: Tensor<f32>,
    a: Tensor<f32>,
    ta: Trans,
    b: Tensor<f32>,
    tb: Trans,
}

impl GemmJob {
    fn flops(&self) -> f64 {
        let k = if self.ta == Trans::N { self.a.cols() } else { self.a.rows() };
        2.0 * self.reps as f64 * (self.dst.len() * k) as f64
    }

    fn run(&mut self) {
        for _ in 0..self.reps {
            Cpu.gemm(
                &mut self.dst,
                Accum::Replace,
                &self.a,
                self.ta,
                &self.b,
                self.tb,
                1.0,
                Par::Auto,
            );
        }
    }
}

/// The products of one training batch of `rows` examples on a dense `net`.
fn gemm_jobs(net: &Net<f32>, rows: usize, counts: &ProductCounts) -> Vec<GemmJob> {
    let sizes = net.sizes();
    let mut jobs = Vec::new();
    for l in 0..net.depth() {
        let (di, d) = (sizes[l], sizes[l + 1]);
        let x = Tensor::<f32>::full(rows, di, 0.5);
        let w = Tensor::<f32>::full(d, di, 0.01);
        let g = Tensor::<f32>::full(rows, d, 0.1);
        let reps = if l == 0 { counts.forward_first } else { counts.forward_upper };
        jobs.push(GemmJob {
            reps,
            dst: Tensor::zeros(rows, d),
            a: x.clone(),
            ta: Trans::N,
            b: w.clone(),
            tb: Trans::T,
        });
        if l > 0 {
            jobs.push(GemmJob {
                reps: counts.vjp_upper,
                dst: Tensor::zeros(rows, di),
                a: g.clone(),
                ta: Trans::N,
                b: w,
                tb: Trans::N,
            });
        }
        jobs.push(GemmJob {
            reps: counts.param_grads,
            dst: Tensor::zeros(d, di),
            a: g,
            ta: Trans::T,
            b: x,
            tb: Trans::N,
        });
    }
    jobs
}

/// PC-time / BP-time on one case, next to the ratio of their FLOP counts.
#[derive(Clone, Debug, Serialize)]
pub struct RuleRatio {
    /// Case name.
    pub case: String,
    /// Rule compared with BP.
    pub rule: String,
    /// Time per sample of `rule` divided by BP's.
    pub time_ratio: f64,
    /// FLOPs per sample of `rule` divided by BP's.
    pub flop_ratio: f64,
    /// Whether `time_ratio <= 1.3 * flop_ratio` (the target).
    pub within_flops_plus_30_percent: bool,
}

/// Everything `prospect bench` reports.
#[derive(Clone, Debug, Serialize)]
pub struct BenchReport {
    /// Threads used.
    pub threads: usize,
    /// One row per (case, rule).
    pub rows: Vec<BenchRow>,
    /// PC-family time ratios against BP.
    pub ratios: Vec<RuleRatio>,
}

/// Measures `rules` on every case whose name contains `filter`, `min_time` per measurement.
///
/// # Errors
/// Config errors from building networks or rules.
pub fn run(filter: &str, rules: &[&str], min_time: Duration) -> Result<BenchReport> {
    let mut rows = Vec::new();
    for case in cases().into_iter().filter(|c| c.name.contains(filter)) {
        for rule in rules {
            rows.push(measure(&case, rule, min_time)?);
        }
    }
    let mut ratios = Vec::new();
    for bp in rows.iter().filter(|r| r.rule == "bp") {
        for r in rows.iter().filter(|r| r.case == bp.case && r.rule != "bp") {
            let time_ratio = bp.samples_per_second / r.samples_per_second;
            let flop_ratio = r.flops_per_sample as f64 / bp.flops_per_sample as f64;
            ratios.push(RuleRatio {
                case: r.case.clone(),
                rule: r.rule.clone(),
                time_ratio,
                flop_ratio,
                within_flops_plus_30_percent: time_ratio <= 1.3 * flop_ratio,
            });
        }
    }
    Ok(BenchReport { threads: crate::tensor::threads(), rows, ratios })
}
