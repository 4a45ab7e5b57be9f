//! Linear equilibrium: for a linear chain with input and output clamped the energy is
//! quadratic in the hidden nodes, so its minimum has a closed form (Millidge, Song et al.,
//! ICLR 2023; for one hidden layer `x_1* = (I + W_2ᵀW_2)⁻¹(W_1 x_0 + b_1 + W_2ᵀ(x_2 − b_2))`).
//! Inference must converge to it.

use super::util::{par_map, randn};
use super::{Claim, Panel, Report, Series, Settings, Table};
use crate::error::{Error, Result};
use crate::infer::InferenceConfig;
use crate::layers::{Activation, Convention};
use crate::net::{MlpSpec, Net, Workspace};
use crate::tensor::Tensor;

/// Node learning rate of the inference.
pub const GAMMA: f64 = 0.1;

/// A random linear chain of `depth` layers (`width` wide, input 6, output 4) with random
/// biases, and a batch of 4 inputs and targets.
fn chain(depth: usize, width: usize, seed: u64) -> Result<(Net<f64>, Tensor<f64>, Tensor<f64>)> {
    let mut sizes = vec![width; depth + 1];
    sizes[0] = 6;
    sizes[depth] = 4;
    let spec = MlpSpec::new(&sizes, Activation::Identity, Convention::Wf);
    let mut net = Net::<f64>::mlp(&spec, seed)?;
    for (i, layer) in net.layers.iter_mut().enumerate() {
        layer.for_each_param_mut(&mut |name, p| {
            if name == "bias" {
                *p = randn(p.rows(), p.cols(), 0.5, seed * 1000 + i as u64);
            }
        });
    }
    let x = randn(4, 6, 1.0, seed * 1000 + 500);
    let y = randn(4, 4, 1.0, seed * 1000 + 501);
    Ok((net, x, y))
}

/// Weight `[d_out, d_in]` and bias `[d_out]` of a layer, row-major.
pub(crate) fn weight_bias(net: &Net<f64>, l: usize) -> (Vec<f64>, Vec<f64>) {
    let (mut w, mut b) = (vec![], vec![0.0; net.layers[l].d_out()]);
    net.layers[l].for_each_param(&mut |name, p| match name {
        "weight" => w = p.data().to_vec(),
        _ => b = p.data().to_vec(),
    });
    (w, b)
}

/// The closed-form equilibrium of the hidden nodes of a linear chain (`mu_l = W_l x_{l-1} + b_l`)
/// with `x_0 = x` and `x_L = y` clamped: for each example, the solution of the block-tridiagonal
/// system `(I + W_{l+1}ᵀW_{l+1}) x_l − W_l x_{l−1} − W_{l+1}ᵀ x_{l+1} = b_l − W_{l+1}ᵀ b_{l+1}`.
/// Returns the hidden nodes `x_1 .. x_{L-1}` as `[batch, d_l]` tensors.
///
/// # Errors
/// [`Error::Config`] if the system is singular (it never is: `I + WᵀW` is positive definite).
pub fn closed_form(net: &Net<f64>, x: &Tensor<f64>, y: &Tensor<f64>) -> Result<Vec<Tensor<f64>>> {
    closed_form_weighted(net, x, y, &vec![1.0; net.depth()])
}

/// [`closed_form`] with a precision `pi_l` per layer (`E = sum_l pi_l/2 ||x_l - mu_l||^2`): the
/// system `(pi_l I + pi_{l+1} W_{l+1}ᵀW_{l+1}) x_l − pi_l W_l x_{l−1} − pi_{l+1} W_{l+1}ᵀ x_{l+1}
/// = pi_l b_l − pi_{l+1} W_{l+1}ᵀ b_{l+1}`.
///
/// # Errors
/// As [`closed_form`]; [`Error::Config`] if `pis` does not hold one value per layer.
pub fn closed_form_weighted(
    net: &Net<f64>,
    x: &Tensor<f64>,
    y: &Tensor<f64>,
    pis: &[f64],
) -> Result<Vec<Tensor<f64>>> {
    if pis.len() != net.depth() {
        return Err(Error::config(
            "precisions",
            format!("expected {} values, found {}", net.depth(), pis.len()),
        ));
    }
    let sizes = net.sizes();
    let l_max = net.depth();
    let offs: Vec<usize> = (1..l_max)
        .scan(0, |o, l| {
            let here = *o;
            *o += sizes[l];
            Some(here)
        })
        .collect();
    let n: usize = sizes[1..l_max].iter().sum();
    let params: Vec<_> = (0..l_max).map(|l| weight_bias(net, l)).collect();
    let mut out: Vec<Tensor<f64>> = (1..l_max).map(|l| Tensor::zeros(x.rows(), sizes[l])).collect();
    for r in 0..x.rows() {
        let mut a = vec![0.0; n * n];
        let mut rhs = vec![0.0; n];
        for l in 1..l_max {
            let (d_in, d, d_up) = (sizes[l - 1], sizes[l], sizes[l + 1]);
            let (w, b) = (&params[l - 1].0, &params[l - 1].1);
            let (wu, bu) = (&params[l].0, &params[l].1);
            let o = offs[l - 1];
            let (p, pu) = (pis[l - 1], pis[l]);
            for i in 0..d {
                // pi_l I + pi_{l+1} Wuᵀ Wu
                a[(o + i) * n + o + i] += p;
                for j in 0..d {
                    let s: f64 = (0..d_up).map(|k| wu[k * d + i] * wu[k * d + j]).sum();
                    a[(o + i) * n + o + j] += pu * s;
                }
                rhs[o + i] += p * b[i] - pu * (0..d_up).map(|k| wu[k * d + i] * bu[k]).sum::<f64>();
                // − pi_l W_l x_{l−1}
                if l == 1 {
                    rhs[o + i] += p * (0..d_in).map(|j| w[i * d_in + j] * x.at(r, j)).sum::<f64>();
                } else {
                    let ob = offs[l - 2];
                    for j in 0..d_in {
                        a[(o + i) * n + ob + j] -= p * w[i * d_in + j];
                    }
                }
                // − pi_{l+1} W_{l+1}ᵀ x_{l+1}
                if l + 1 == l_max {
                    rhs[o + i] += pu * (0..d_up).map(|k| wu[k * d + i] * y.at(r, k)).sum::<f64>();
                } else {
                    let oa = offs[l];
                    for k in 0..d_up {
                        a[(o + i) * n + oa + k] -= pu * wu[k * d + i];
                    }
                }
            }
        }
        let sol = solve(&mut a, &mut rhs, n)?;
        for l in 1..l_max {
            out[l - 1].row_mut(r).copy_from_slice(&sol[offs[l - 1]..offs[l - 1] + sizes[l]]);
        }
    }
    Ok(out)
}

/// Solves `a z = b` (`a` is `n × n`, row-major) by Gaussian elimination with partial pivoting.
pub(crate) fn solve(a: &mut [f64], b: &mut [f64], n: usize) -> Result<Vec<f64>> {
    for c in 0..n {
        let p =
            (c..n).max_by(|&i, &j| a[i * n + c].abs().total_cmp(&a[j * n + c].abs())).unwrap_or(c);
        if a[p * n + c].abs() < 1e-300 {
            return Err(Error::config("linear-equilibrium", "singular system"));
        }
        if p != c {
            for k in 0..n {
                a.swap(p * n + k, c * n + k);
            }
            b.swap(p, c);
        }
        for i in c + 1..n {
            let f = a[i * n + c] / a[c * n + c];
            if f != 0.0 {
                for k in c..n {
                    a[i * n + k] -= f * a[c * n + k];
                }
                b[i] -= f * b[c];
            }
        }
    }
    let mut z = vec![0.0; n];
    for i in (0..n).rev() {
        let s: f64 = (i + 1..n).map(|k| a[i * n + k] * z[k]).sum();
        z[i] = (b[i] - s) / a[i * n + i];
    }
    Ok(z)
}

/// Max |x_t − x*| over the hidden nodes after each inference step `t = 0..=steps`
/// (`t = 0` is the forward initialisation) for a random chain of `depth` layers.
///
/// # Errors
/// Engine errors (none expected).
pub fn convergence(depth: usize, width: usize, seed: u64, steps: usize) -> Result<Vec<f64>> {
    let (net, x, y) = chain(depth, width, seed)?;
    let star = closed_form(&net, &x, &y)?;
    let mut ws = Workspace::new(&net, x.rows());
    ws.load(&net, &x, &y)?;
    let cfg = InferenceConfig { steps, gamma: GAMMA, ..Default::default() };
    let gap = |ws: &Workspace<f64>| {
        star.iter().enumerate().map(|(i, s)| ws.x[i + 1].max_abs_diff(s)).fold(0.0, f64::max)
    };
    // The same inference training runs; t = 0 is the forward initialisation.
    let mut out = vec![0.0; steps + 1];
    net.infer_observed(&mut ws, &cfg, 0, |t, ws| out[t] = gap(ws))?;
    Ok(out)
}

/// Runs the experiment.
///
/// # Errors
/// Engine errors (none expected).
pub fn run(s: &Settings) -> Result<Report> {
    let depths: Vec<usize> = s.pick(vec![2, 3, 4, 6, 8], vec![2, 3, 4, 6, 8, 12]);
    let width = s.pick(8, 16);
    let seeds = s.seeds(3, 10);
    let steps = s.pick(20000, 100000);
    let jobs: Vec<(usize, u64)> =
        depths.iter().flat_map(|&d| (0..seeds as u64).map(move |k| (d, k))).collect();
    let results = par_map(&jobs, |&(d, k)| convergence(d, width, k, steps));
    let grid: Vec<usize> = (0..=steps).step_by((steps / 200).max(1)).collect();
    let mut table = Table::new(&["depth", "seed", "step", "max_abs_error"]);
    let mut curves = vec![vec![]; depths.len()];
    for (&(d, k), r) in jobs.iter().zip(results) {
        let c = r?;
        for &t in &grid {
            table.push(vec![d.to_string(), k.to_string(), t.to_string(), format!("{:e}", c[t])]);
        }
        curves[depths.iter().position(|&x| x == d).unwrap_or(0)].push(c);
    }
    let mut series = Vec::new();
    let mut finals = Vec::new();
    for (di, d) in depths.iter().enumerate() {
        let vals: Vec<Vec<f64>> =
            grid.iter().map(|&t| curves[di].iter().map(|c| c[t].max(1e-17)).collect()).collect();
        let mut sr = Series::from_seeds(
            format!("depth {d}"),
            grid.iter().map(|&t| t as f64).collect(),
            &vals,
        );
        sr.lo = vals.iter().map(|v| v.iter().copied().fold(f64::INFINITY, f64::min)).collect();
        sr.hi = vals.iter().map(|v| v.iter().copied().fold(0.0, f64::max)).collect();
        series.push(sr);
        let worst = curves[di].iter().map(|c| c[steps]).fold(0.0, f64::max);
        finals.push((*d, worst));
    }
    let worst = finals.iter().map(|f| f.1).fold(0.0, f64::max);
    let per: Vec<String> = finals.iter().map(|(d, e)| format!("L={d}: {e:.0e}")).collect();
    let claims = vec![Claim::new(
        "inferred = closed-form equilibrium (max |x_T − x*|, worst seed)",
        "equal",
        format!("{worst:.1e} after {steps} steps ({})", per.join(", ")),
        Some(worst < 1e-8),
    )];
    Ok(Report {
        grids: Vec::new(),
        name: "linear-equilibrium".into(),
        title: "Inference converges to the closed-form equilibrium of linear chains".into(),
        setup: format!(
            "linear chains 6-{width}-…-{width}-4 of depths {depths:?}, random biases, batch of 4, \
             input and output clamped, gamma = {GAMMA}, {steps} steps, {seeds} seeds"
        ),
        claims,
        table,
        panels: vec![Panel {
            title: "Distance to the closed-form equilibrium".into(),
            x_label: "inference step".into(),
            y_label: "max |x_t - x*|".into(),
            log_y: true,
            series,
            ..Default::default()
        }],
        notes: vec!["Band = range over seeds.".into()],
    })
}
