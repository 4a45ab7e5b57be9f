//! Criterion benchmarks: one inference step, one training batch per rule, the GEMM shapes
//! of the benchmark cases (named as in `prospect bench`; heavy cases left out), and a
//! convolution's product in the HWC layout against the NCHW ones.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use prospect::bench::cases;
use prospect::learn::{self, Batch};
use prospect::tensor::{Accum, Backend, Cpu, Par, Trans};
use prospect::{Net, OptimConfig, OptimKind, Tensor, WeightOptim, Workspace};

fn data(d_in: usize, d_out: usize, batch: usize) -> (Tensor<f32>, Tensor<f32>) {
    let x = Tensor::from_fn(batch, d_in, |r, c| ((r * 31 + c * 7) % 97) as f32 / 97.0);
    let y = Tensor::from_fn(batch, d_out, |r, c| (r % d_out == c) as u8 as f32);
    (x, y)
}

fn inference_step(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu/inference_step");
    for case in cases().into_iter().filter(|c| !c.heavy) {
        let net: Net<f32> = Net::mlp(&case.spec, 0).unwrap();
        let (x, y) = data(net.d_in(), net.d_out(), case.batch);
        let mut ws = Workspace::new(&net, case.batch);
        ws.load(&net, &x, &y).unwrap();
        net.forward(&mut ws, true);
        let upper = net.macs_per_example() - net.layers[0].macs_per_example();
        g.throughput(Throughput::Elements(4 * upper * case.batch as u64)); // FLOPs
        g.bench_function(BenchmarkId::from_parameter(case.name), |b| {
            b.iter(|| {
                net.predict_from(&mut ws, 2);
                net.energy_grads(&mut ws, case.inference.output, true);
                net.step_nodes(&mut ws, &case.inference, case.inference.output, 0.01);
            })
        });
    }
    g.finish();
}

fn training_batch(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu/train_batch");
    g.sample_size(20);
    for case in cases().into_iter().filter(|c| !c.heavy) {
        for rule in ["bp", "pc", "ipc", "zil"] {
            let mut net: Net<f32> = Net::mlp(&case.spec, 0).unwrap();
            let mut r = learn::build::<f32>(rule, &case.inference).unwrap();
            let cfg = OptimConfig { kind: OptimKind::Adamw, lr: 1e-4, ..OptimConfig::default() };
            let mut opt = WeightOptim::new(cfg, &net).unwrap();
            let (x, y) = data(net.d_in(), net.d_out(), case.batch);
            let mut ws = Workspace::new(&net, case.batch);
            g.throughput(Throughput::Elements(case.batch as u64)); // samples
            g.bench_function(BenchmarkId::new(rule, case.name), |b| {
                b.iter(|| {
                    let batch = Batch { x: &x, y: &y, index: 0 };
                    r.train_batch(&mut net, &mut opt, batch, &mut ws).unwrap();
                })
            });
        }
    }
    g.finish();
}

fn gemm_shapes(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu/gemm");
    // (name, m, k, n, transposes): the forward, VJP and weight-gradient products of the cases
    let shapes = [
        ("fwd 128x784x128", 128, 784, 128, Trans::N, Trans::T),
        ("fwd 128x128x128", 128, 128, 128, Trans::N, Trans::T),
        ("vjp 128x128x128", 128, 128, 128, Trans::N, Trans::N),
        ("dW 128x128x784", 128, 128, 784, Trans::T, Trans::N),
        ("fwd 256x1000x1000", 256, 1000, 1000, Trans::N, Trans::T),
        ("dW 1000x256x1000", 1000, 256, 1000, Trans::T, Trans::N),
        ("square 1024", 1024, 1024, 1024, Trans::N, Trans::N),
    ];
    for (name, m, k, n, ta, tb) in shapes {
        let a =
            if ta == Trans::N { Tensor::full(m, k, 0.5f32) } else { Tensor::full(k, m, 0.5f32) };
        let b =
            if tb == Trans::N { Tensor::full(k, n, 0.5f32) } else { Tensor::full(n, k, 0.5f32) };
        let mut dst = Tensor::zeros(m, n);
        g.throughput(Throughput::Elements(2 * (m * k * n) as u64)); // FLOPs
        g.bench_function(name, |bch| {
            bch.iter(|| Cpu.gemm(&mut dst, Accum::Replace, &a, ta, &b, tb, 1.0, Par::Auto))
        });
    }
    g.finish();
}

/// A convolution's forward product on a batch, three ways: HWC (prospect's layout: one GEMM
/// `patches[N·P, K] · Wᵀ` whose result is already the HWC output), NCHW per example (`N`
/// GEMMs `W[Co, K] · patches_n[K, P]`, as a per-sample conv does) and NCHW batched (one GEMM
/// `W · patches[K, N·P]`, then the `[Co, N, P] -> [N, Co, P]` transpose NCHW needs).
fn conv_layout(c: &mut Criterion) {
    let mut g = c.benchmark_group("cpu/conv_layout");
    g.sample_size(20);
    // (name, batch, output pixels, patch size K = 3·3·C_in, output channels)
    let shapes =
        [("mnist-cnn conv2", 64, 14 * 14, 9 * 16, 32), ("vgg5 conv2", 16, 16 * 16, 9 * 128, 256)];
    for (name, n, p, k, co) in shapes {
        let w = Tensor::full(co, k, 0.01f32);
        g.throughput(Throughput::Elements(2 * (n * p * k * co) as u64)); // FLOPs
        let col = Tensor::full(n * p, k, 0.5f32);
        let mut out = Tensor::zeros(n * p, co);
        g.bench_function(BenchmarkId::new("hwc one gemm", name), |b| {
            b.iter(|| {
                Cpu.gemm(&mut out, Accum::Replace, &col, Trans::N, &w, Trans::T, 1.0, Par::Auto)
            })
        });
        let cols: Vec<Tensor<f32>> = (0..n).map(|_| Tensor::full(k, p, 0.5f32)).collect();
        let mut outs: Vec<Tensor<f32>> = (0..n).map(|_| Tensor::zeros(co, p)).collect();
        g.bench_function(BenchmarkId::new("nchw per example", name), |b| {
            b.iter(|| {
                for (o, x) in outs.iter_mut().zip(&cols) {
                    Cpu.gemm(o, Accum::Replace, &w, Trans::N, x, Trans::N, 1.0, Par::Auto);
                }
            })
        });
        let colt = Tensor::full(k, n * p, 0.5f32);
        let mut wide = Tensor::zeros(co, n * p);
        let mut nchw = Tensor::zeros(n, co * p);
        g.bench_function(BenchmarkId::new("nchw batched + transpose", name), |b| {
            b.iter(|| {
                Cpu.gemm(&mut wide, Accum::Replace, &w, Trans::N, &colt, Trans::N, 1.0, Par::Auto);
                for ch in 0..co {
                    let row = wide.row(ch);
                    for e in 0..n {
                        nchw.row_mut(e)[ch * p..(ch + 1) * p]
                            .copy_from_slice(&row[e * p..(e + 1) * p]);
                    }
                }
            })
        });
    }
    g.finish();
}

criterion_group!(benches, inference_step, training_batch, gemm_shapes, conv_layout);
criterion_main!(benches);
