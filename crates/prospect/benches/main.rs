//! Criterion benchmarks: one inference step, one training batch per rule, and the GEMM shapes
//! of the benchmark cases (named as in `prospect bench`).

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
    for case in cases() {
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
    for case in cases() {
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

criterion_group!(benches, inference_step, training_batch, gemm_shapes);
criterion_main!(benches);
