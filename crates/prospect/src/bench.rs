//! Throughput measurement: training samples/s per rule, analytic FLOPs, and the GEMM peak
//! measured on the same product shapes (the numbers behind `prospect bench`).

use crate::error::Result;
use crate::infer::{InferenceConfig, NodeOptim};
use crate::layers::{Activation, Convention, GemmShape};
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
    /// Measured only when `--case` names it (minutes per rule on two cores).
    pub heavy: bool,
}

/// A case with the network and inference settings of preset `preset`.
fn preset_case(name: &'static str, preset: &str, batch: usize, heavy: bool) -> BenchCase {
    let c = crate::config::preset(preset).expect("a built-in preset");
    BenchCase { name, spec: c.model, batch, inference: c.inference, heavy }
}

/// The standard cases: the PCX MNIST MLP, a wide MLP, the mnist-cnn preset's CNN and PCX's
/// VGG-5 on CIFAR-shaped inputs (heavy).
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
            heavy: false,
        },
        BenchCase {
            name: "wide-mlp",
            spec: MlpSpec::new(&[784, 1000, 1000, 10], Activation::Gelu, Convention::Fw),
            batch: 256,
            inference: pcx_inference,
            heavy: false,
        },
        preset_case("mnist-cnn", "mnist-cnn", 128, false),
        preset_case("vgg5", "cifar10-vgg5", 128, true),
    ]
}

/// The cases whose name contains `filter`; heavy ones only when `filter` is not empty.
pub fn selected(filter: &str) -> Vec<BenchCase> {
    cases()
        .into_iter()
        .filter(|c| c.name.contains(filter) && (!c.heavy || !filter.is_empty()))
        .collect()
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
    /// `gflops` over the FMA peak of the threads used, in percent: the share of the analytic
    /// bound (FMA peak / FLOPs per sample) reached.
    pub percent_of_bound: f64,
    /// Batches timed.
    pub batches: usize,
}

/// Random inputs in [0, 1) and one-hot targets for a batch of `batch` on `net`.
fn synthetic(net: &Net<f32>, batch: usize) -> (Tensor<f32>, Tensor<f32>) {
    let (d_in, d_out) = (net.d_in(), net.d_out());
    let mut s = 0x9e3779b97f4a7c15u64;
    let mut next = || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    let x = Tensor::from_fn(batch, d_in, |_, _| next());
    let y = Tensor::from_fn(batch, d_out, |r, c| (r % d_out == c) as u8 as f32);
    (x, y)
}

/// Times `rule` training on `case` for at least `min_time` (after a warm-up); `fma_peak` is
/// the FMA peak in GFLOP/s of the threads used (for the share of the analytic bound).
///
/// # Errors
/// Config errors from building the network or rule.
pub fn measure(
    case: &BenchCase,
    rule: &str,
    min_time: Duration,
    fma_peak: f64,
) -> Result<BenchRow> {
    let mut net: Net<f32> = Net::mlp(&case.spec, 0)?;
    let mut rule_box = learn::build::<f32>(rule, &case.inference)?;
    let ocfg = OptimConfig {
        kind: OptimKind::Adamw,
        lr: 1e-4,
        weight_decay: 1e-4,
        ..OptimConfig::default()
    };
    let mut opt = WeightOptim::new(ocfg, &net)?;
    let (x, y) = synthetic(&net, case.batch);
    let mut ws = Workspace::new(&net, case.batch);
    let mut index = 0;
    let mut run = |n: usize, net: &mut Net<f32>| -> Result<()> {
        for _ in 0..n {
            rule_box.train_batch(net, &mut opt, Batch { x: &x, y: &y, index }, &mut ws)?;
            index += 1;
        }
        Ok(())
    };
    // As in training: the batch loop on a pool thread, the other threads kept awake.
    let (batches, secs) = crate::tensor::on_pool_hot(|| -> Result<(usize, f64)> {
        // Warm-up; a batch slower than half a second (VGG-5) is timed in twos.
        let first = Instant::now();
        run(1, &mut net)?;
        let slow = first.elapsed() > Duration::from_millis(500);
        let chunk = if slow { 2 } else { 5 };
        if !slow {
            run(2, &mut net)?;
        }
        let start = Instant::now();
        let mut batches = 0;
        while start.elapsed() < min_time || batches < chunk {
            run(chunk, &mut net)?;
            batches += chunk;
        }
        Ok((batches, start.elapsed().as_secs_f64()))
    })?;
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
        percent_of_bound: 100.0 * gflops / fma_peak,
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
    // Under the same threading as the rules' loop in `measure`.
    crate::tensor::on_pool_hot(|| {
        pass();
        let start = Instant::now();
        let mut reps = 0;
        while start.elapsed() < min_time || reps < 3 {
            pass();
            reps += 1;
        }
        flops * reps as f64 / start.elapsed().as_secs_f64() / 1e9
    })
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

impl GemmJob {
    /// `reps` products of `shape` on constant operands.
    fn new(shape: GemmShape, reps: u64) -> Self {
        let GemmShape { m, n, k, ta, tb } = shape;
        let (ar, ac) = if ta == Trans::N { (m, k) } else { (k, m) };
        let (br, bc) = if tb == Trans::N { (k, n) } else { (n, k) };
        Self {
            reps,
            dst: Tensor::zeros(m, n),
            a: Tensor::full(ar, ac, 0.5),
            ta,
            b: Tensor::full(br, bc, 0.01),
            tb,
        }
    }
}

/// The products of one training batch of `rows` examples on `net`, as its layers list them.
fn gemm_jobs(net: &Net<f32>, rows: usize, counts: &ProductCounts) -> Vec<GemmJob> {
    let mut jobs = Vec::new();
    for (l, layer) in net.layers.iter().enumerate() {
        let p = layer.products(rows);
        let forward = if l == 0 { counts.forward_first } else { counts.forward_upper };
        jobs.extend(p.forward.into_iter().map(|s| GemmJob::new(s, forward)));
        if l > 0 {
            jobs.extend(p.vjp_input.into_iter().map(|s| GemmJob::new(s, counts.vjp_upper)));
        }
        jobs.extend(p.param_grads.into_iter().map(|s| GemmJob::new(s, counts.param_grads)));
    }
    jobs.retain(|j| j.reps > 0);
    jobs
}

/// The widest SIMD instruction set of this CPU (detected at run time).
pub fn isa() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            "avx512f"
        } else if std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma")
        {
            "avx2+fma"
        } else {
            "sse2"
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        "portable"
    }
}

/// Independent FMA chains of the peak loop: more than FMA latency × FMA ports.
const CHAINS: usize = 12;

/// `iters` rounds of [`CHAINS`] independent 16-lane f32 FMAs; returns a value to keep.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn fma_loop_avx512(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm512_set1_ps(0.999_999);
    let c = _mm512_set1_ps(1e-7);
    let mut acc = [_mm512_set1_ps(0.5); CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm512_fmadd_ps(*a, m, c);
        }
    }
    let mut sum = _mm512_setzero_ps();
    for a in acc {
        sum = _mm512_add_ps(sum, a);
    }
    _mm512_reduce_add_ps(sum)
}

/// `iters` rounds of [`CHAINS`] independent 8-lane f32 FMAs; returns a value to keep.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn fma_loop_avx2(iters: u64) -> f32 {
    use std::arch::x86_64::*;
    let m = _mm256_set1_ps(0.999_999);
    let c = _mm256_set1_ps(1e-7);
    let mut acc = [_mm256_set1_ps(0.5); CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = _mm256_fmadd_ps(*a, m, c);
        }
    }
    let mut lanes = [0.0f32; 8];
    let mut sum = _mm256_setzero_ps();
    for a in acc {
        sum = _mm256_add_ps(sum, a);
    }
    // SAFETY: `lanes` holds 8 f32, the width of one unaligned store.
    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
    lanes.iter().sum()
}

/// FLOPs and a value to keep of `iters` rounds of the widest FMA loop this CPU has.
fn fma_rounds(iters: u64) -> (f64, f32) {
    let flops = |lanes: u64| (iters * CHAINS as u64 * lanes * 2) as f64;
    #[cfg(target_arch = "x86_64")]
    match isa() {
        // SAFETY: `isa` detected AVX-512F on this CPU at run time.
        "avx512f" => return (flops(16), unsafe { fma_loop_avx512(iters) }),
        // SAFETY: `isa` detected AVX2 and FMA on this CPU at run time.
        "avx2+fma" => return (flops(8), unsafe { fma_loop_avx2(iters) }),
        _ => {}
    }
    let mut acc = [0.5f32; CHAINS];
    for _ in 0..iters {
        for a in &mut acc {
            *a = a.mul_add(0.999_999, 1e-7);
        }
    }
    (flops(1), acc.iter().sum())
}

/// f32 FMA peak of `threads` cores in GFLOP/s: a register-only loop of independent fused
/// multiply-adds in the widest SIMD the CPU has, one loop per thread, at least `min_time`.
pub fn fma_peak(threads: usize, min_time: Duration) -> f64 {
    let threads = threads.max(1);
    let mut iters = 1u64 << 16;
    loop {
        let start = Instant::now();
        let flops: f64 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads).map(|_| s.spawn(move || fma_rounds(iters))).collect();
            hs.into_iter()
                .map(|h| {
                    let (f, v) = h.join().expect("FMA loop thread");
                    std::hint::black_box(v);
                    f
                })
                .sum()
        });
        let secs = start.elapsed().as_secs_f64();
        if secs >= min_time.as_secs_f64() || iters >= 1 << 40 {
            return flops / secs / 1e9;
        }
        iters *= 2;
    }
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
    /// The widest SIMD instruction set of the CPU.
    pub isa: String,
    /// f32 FMA peak of the threads used, GFLOP/s (measured in this run).
    pub fma_peak_gflops: f64,
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
    let threads = crate::tensor::threads();
    let fma =
        fma_peak(threads, min_time.min(Duration::from_secs(1)).max(Duration::from_millis(200)));
    let mut rows = Vec::new();
    for case in selected(filter) {
        for rule in rules {
            rows.push(measure(&case, rule, min_time, fma)?);
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
    Ok(BenchReport { threads, isa: isa().to_string(), fma_peak_gflops: fma, rows, ratios })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fma_peak_is_positive_and_the_isa_named() {
        let one = fma_peak(1, Duration::from_millis(20));
        assert!(one.is_finite() && one > 0.1, "{one}");
        assert!(["avx512f", "avx2+fma", "sse2", "portable"].contains(&isa()));
        // Each lane does CHAINS FMAs per round: the count, not the time, is checked here.
        let (flops, v) = fma_rounds(3);
        let lanes = match isa() {
            "avx512f" => 16.0,
            "avx2+fma" => 8.0,
            _ => 1.0,
        };
        assert_eq!(flops, 3.0 * CHAINS as f64 * lanes * 2.0);
        assert!(v.is_finite() && v > 0.0);
    }

    #[test]
    fn heavy_cases_run_only_when_named() {
        let names = |f: &str| selected(f).iter().map(|c| c.name).collect::<Vec<_>>();
        assert_eq!(names(""), ["mnist-mlp-pcx", "wide-mlp", "mnist-cnn"]);
        assert_eq!(names("vgg5"), ["vgg5"]);
        assert_eq!(names("cnn"), ["mnist-cnn"]);
    }

    #[test]
    fn gemm_jobs_follow_the_layers_products() {
        let c = selected("mnist-cnn").remove(0);
        let net: Net<f32> = Net::mlp(&c.spec, 0).unwrap();
        let counts =
            ProductCounts { forward_first: 1, forward_upper: 2, vjp_upper: 3, param_grads: 1 };
        let jobs = gemm_jobs(&net, 4, &counts);
        let macs = |j: &GemmJob| j.flops() / 2.0;
        let total: f64 = jobs.iter().map(macs).sum();
        let (all, first) = (net.macs_per_example() as f64, net.layers[0].macs_per_example() as f64);
        // forward 1x the first layer and 2x the rest, VJPs 3x the rest, gradients 1x all
        assert_eq!(total, 4.0 * (first + 2.0 * (all - first) + 3.0 * (all - first) + all));
        assert!(jobs.iter().all(|j| j.reps > 0));
    }
}
