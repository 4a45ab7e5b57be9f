//! `prospect query`: clamp, mask or initialise any nodes of a trained network, run inference,
//! and write what chosen nodes hold (JSON, and a PNG grid for square images).

use anyhow::{anyhow, bail, Context, Result};
use prospect::checkpoint::{self, MODEL_FILE};
use prospect::config;
use prospect::experiments::Grid;
use prospect::train::{load_data, CONFIG_FILE};
use prospect::{Given, Net, Tensor, Workspace};
use std::path::{Path, PathBuf};

/// Arguments of `prospect query`.
#[derive(Debug, clap::Args)]
#[command(after_help = "SOURCE: test:I..J or train:I..J (rows of the run's data set: the \
                        features for the input node, one-hot labels for the output node), \
                        class:K or class:KxN (a one-hot row of class K, N times), or a CSV file \
                        (one example per line). Example: prospect query --run runs/g --clamp \
                        label=class:3x8 --read image")]
pub struct Args {
    /// Run directory (its config.toml and model.safetensors).
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// Clamp a node to data (repeatable).
    #[arg(long, value_name = "NODE=SOURCE")]
    clamp: Vec<String>,
    /// Initialise a node from data, then infer it (repeatable).
    #[arg(long, value_name = "NODE=SOURCE")]
    init: Vec<String>,
    /// Of a clamped node, only features LO..HI are known; the rest is inferred.
    #[arg(long, value_name = "NODE=LO..HI")]
    known: Vec<String>,
    /// A node to write after inference (repeatable).
    #[arg(long, value_name = "NODE", required = true)]
    read: Vec<String>,
    /// Inference steps (default: the run's `inference.steps`).
    #[arg(long, value_name = "T")]
    steps: Option<usize>,
    /// Output directory (default: the run directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

fn split_pair<'a>(s: &'a str, flag: &str) -> Result<(&'a str, &'a str)> {
    s.split_once('=').ok_or_else(|| anyhow!("--{flag} {s}: expected NODE=VALUE"))
}

fn range(s: &str, what: &str) -> Result<(usize, usize)> {
    let (a, b) =
        s.split_once("..").ok_or_else(|| anyhow!("{what}: expected LO..HI, found `{s}`"))?;
    let (a, b): (usize, usize) = (
        a.parse().with_context(|| format!("{what}: `{a}` is not a number"))?,
        b.parse().with_context(|| format!("{what}: `{b}` is not a number"))?,
    );
    if a >= b {
        bail!("{what}: empty range {a}..{b}");
    }
    Ok((a, b))
}

/// The data a SOURCE names for `node` (`rows`: the batch, if already known).
fn source(
    src: &str,
    node: usize,
    net: &Net<f32>,
    data: &prospect::train::Prepared,
    rows: Option<usize>,
) -> Result<Tensor<f32>> {
    let info = &net.topo.nodes[node];
    let d = info.size;
    if let Some(rest) = src.strip_prefix("class:") {
        let (k, n) = match rest.split_once('x') {
            Some((k, n)) => (k, n.parse::<usize>().with_context(|| format!("{src}: count"))?),
            None => (rest, rows.unwrap_or(1)),
        };
        let k: usize = k.parse().with_context(|| format!("{src}: class"))?;
        if k >= d {
            bail!("{src}: node `{}` has {d} features, so classes 0..{d}", info.name);
        }
        return Ok(Tensor::from_fn(n, d, |_, c| (c == k) as u8 as f32));
    }
    for (split, set) in [("test:", &data.test), ("train:", &data.train)] {
        if let Some(r) = src.strip_prefix(split) {
            let (lo, hi) = range(r, src)?;
            if hi > set.len() {
                bail!("{src}: the {}split has {} examples", split, set.len());
            }
            let n = hi - lo;
            return if node == net.input() {
                let f = set.features();
                Ok(Tensor::from_vec(n, f, set.x[lo * f..hi * f].to_vec()))
            } else if node == net.output() {
                let one_hot = prospect::data::one_hot(&set.labels[lo..hi], set.num_classes);
                Ok(Tensor::from_vec(n, set.num_classes, one_hot))
            } else {
                bail!(
                    "{src}: node `{}` is neither the input nor the output; give it a CSV file",
                    info.name
                )
            };
        }
    }
    let path = Path::new(src);
    let text = std::fs::read_to_string(path).with_context(|| {
        format!("{src}: not test:I..J, train:I..J, class:K, or a readable file")
    })?;
    let mut values = Vec::new();
    let mut n = 0;
    for (line_no, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let row: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<std::result::Result<_, _>>()
            .with_context(|| format!("{}:{}: not a row of numbers", path.display(), line_no + 1))?;
        if row.len() != d {
            bail!(
                "{}:{}: {} values, node `{}` has {d}",
                path.display(),
                line_no + 1,
                row.len(),
                info.name
            );
        }
        values.extend(row);
        n += 1;
    }
    Ok(Tensor::from_vec(n, d, values))
}

/// Runs `prospect query`.
pub fn run(a: Args, quiet: bool) -> Result<()> {
    let cfg = config::load(&a.run.join(CONFIG_FILE))
        .with_context(|| format!("{} is not a readable run directory", a.run.display()))?;
    let mut net: Net<f32> = Net::mlp(&cfg.model, cfg.train.seed)?;
    checkpoint::load_model(&a.run.join(MODEL_FILE), &mut net)?;
    let node = |name: &str| {
        net.topo.node(name).ok_or_else(|| {
            let names: Vec<_> = net.topo.nodes.iter().map(|n| n.name.as_str()).collect();
            anyhow!("unknown node `{name}`; nodes: {}", names.join(", "))
        })
    };
    let needs_data =
        a.clamp.iter().chain(&a.init).any(|s| s.contains("=test:") || s.contains("=train:"));
    let data = if needs_data {
        load_data(&cfg)?
    } else {
        let empty = prospect::data::Dataset {
            name: String::new(),
            x: vec![],
            labels: vec![],
            shape: [1, 1, 0],
            num_classes: 0,
            range: (0.0, 1.0),
        };
        prospect::train::Prepared { train: empty.clone(), val: None, test: empty }
    };
    // Sources with explicit rows first, so `class:K` takes their batch size.
    let mut given: Vec<(usize, bool, Tensor<f32>)> = Vec::new();
    let mut specs: Vec<(&str, bool)> = a.clamp.iter().map(|s| (s.as_str(), true)).collect();
    specs.extend(a.init.iter().map(|s| (s.as_str(), false)));
    specs.sort_by_key(|(s, _)| s.contains("=class:") && !s.contains('x'));
    let mut rows = None;
    for (spec, clamp) in specs {
        let (name, src) = split_pair(spec, if clamp { "clamp" } else { "init" })?;
        let i = node(name)?;
        let t = source(src, i, &net, &data, rows)?;
        if rows.is_some_and(|r| r != t.rows()) {
            bail!("{spec}: {} rows, the other sources have {}", t.rows(), rows.unwrap_or(0));
        }
        rows = Some(t.rows());
        given.push((i, clamp, t));
    }
    let mut masks: Vec<(usize, Tensor<f32>)> = Vec::new();
    for k in &a.known {
        let (name, r) = split_pair(k, "known")?;
        let i = node(name)?;
        let (lo, hi) = range(r, k)?;
        let Some((_, _, t)) = given.iter().find(|(j, c, _)| *j == i && *c) else {
            bail!("--known {k}: clamp node `{name}` with --clamp first");
        };
        if hi > t.cols() {
            bail!("--known {k}: node `{name}` has {} features", t.cols());
        }
        masks.push((
            i,
            Tensor::from_fn(t.rows(), t.cols(), |_, c| (lo <= c && c < hi) as u8 as f32),
        ));
    }
    let list: Vec<(usize, Given<'_, f32>)> = given
        .iter()
        .map(|(i, clamp, t)| {
            let g = match (clamp, masks.iter().find(|(j, _)| j == i)) {
                (true, Some((_, m))) => Given::Masked { data: t, mask: m },
                (true, None) => Given::Data(t),
                (false, _) => Given::Init(t),
            };
            (*i, g)
        })
        .collect();
    let mut inference = cfg.inference.clone();
    if let Some(t) = a.steps {
        inference.steps = t;
    }
    let mut ws = Workspace::new(&net, rows.unwrap_or(1));
    let stats = net.query(&mut ws, &list, &inference)?;
    let out = a.out.unwrap_or_else(|| a.run.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    for name in &a.read {
        let i = node(name)?;
        let x = &ws.x[i];
        let values: Vec<Vec<f32>> = (0..x.rows()).map(|r| x.row(r).to_vec()).collect();
        let argmax: Vec<usize> = (0..x.rows()).map(|r| prospect::net::argmax(x.row(r))).collect();
        let obj = serde_json::json!({
            "node": name, "shape": [x.rows(), x.cols()], "argmax": argmax, "values": values,
            "energy_start": stats.initial_energy, "energy_end": stats.final_energy,
            "steps": stats.steps,
        });
        let json = out.join(format!("query-{name}.json"));
        std::fs::write(&json, obj.to_string())
            .with_context(|| format!("cannot write {}", json.display()))?;
        let side = (x.cols() as f64).sqrt().round() as usize;
        let mut wrote = json.display().to_string();
        if side * side == x.cols() && side >= 4 {
            let cols = x.rows().clamp(1, 10);
            let mut g = Grid::new(name.clone(), x.rows().div_ceil(cols), cols, side, side);
            // Scale to [0, 1] by the node's own range, so any data scaling shows.
            let (lo, hi) =
                x.data().iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            let span = (hi - lo).max(1e-12);
            g.cells = values.iter().map(|v| v.iter().map(|&p| (p - lo) / span).collect()).collect();
            let png = out.join(format!("query-{name}.png"));
            crate::repro::grid(&png, &g)?;
            wrote = format!("{wrote}, {}", png.display());
        }
        if !quiet {
            println!(
                "{name}: {} x {} (arg-max {:?}); wrote {wrote}",
                x.rows(),
                x.cols(),
                &argmax[..argmax.len().min(10)]
            );
        }
    }
    Ok(())
}
