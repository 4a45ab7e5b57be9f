//! `prospect memory store|recall`: store images in an associative memory, then recall them
//! from corrupted queries (metrics JSON and a PNG grid: query | recall | truth).

use anyhow::{Context, Result};
use prospect::experiments::Grid;
use prospect::memory::{self, Corruption, MemoryConfig, Scores, Stored};
use std::path::PathBuf;

/// Arguments of `prospect memory`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Store or recall.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Store N images of a data set in a memory; writes DIR/memory.{safetensors,toml}.
    Store(StoreArgs),
    /// Recall the stored images from corrupted queries; writes metrics JSON and a PNG grid.
    Recall(RecallArgs),
}

/// Arguments of `prospect memory store`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Models: gpcn, uhn, covpc-explicit, covpc-implicit, covpc-dendritic. \
                        Settings are keys of the model's section, e.g. --set gpcn.epochs=300 \
                        --set uhn.similarity=euclidean --set covpc.recall_steps=2000. \
                        Example: prospect memory store --model uhn --data mnist --n 100 --out runs/uhn")]
pub struct StoreArgs {
    /// Memory model (default: the config file's, else gpcn).
    #[arg(long)]
    model: Option<String>,
    /// Data set to draw the images from (its training split; pixels in [0, 1]): mnist,
    /// fashion-mnist, digits, or from a directory you provide, cifar10, cifar100,
    /// tiny-imagenet.
    #[arg(long, default_value = "mnist")]
    data: String,
    /// Where the data set's files are (default: the data root; CIFAR and Tiny ImageNet also
    /// read $PROSPECT_CIFAR10, $PROSPECT_CIFAR100, $PROSPECT_TINY_IMAGENET).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Number of images to store.
    #[arg(long, default_value_t = 100)]
    n: usize,
    /// Which disjoint set of N images (images K*N..(K+1)*N of a seeded shuffle).
    #[arg(long, value_name = "K", default_value_t = 0)]
    subset: usize,
    /// Seed of the shuffle and of the model.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// A TOML file of memory settings (`model`, `[gpcn]`, `[uhn]`, `[covpc]`).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Override a setting (repeatable), e.g. gpcn.epochs=300.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Output directory (default runs/memory-MODEL-nN).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Arguments of `prospect memory recall`.
#[derive(Debug, clap::Args)]
#[command(after_help = "CORRUPTION: noise:STD (x + N(0, STD^2), every pixel recalled), \
                        noise-clip:STD (the UHN reference's |x + noise| clipped to [0, 1]), \
                        mask:bottom:FRACTION, random:FRACTION, border:PIXELS. Success: summed \
                        squared error <= the threshold (per 784 pixels, scaled to the image \
                        size); the data set's mean image is scored beside the memory.")]
pub struct RecallArgs {
    /// Run directory written by `prospect memory store`.
    #[arg(long, value_name = "DIR")]
    run: PathBuf,
    /// How queries are made from the stored images.
    #[arg(long, value_name = "CORRUPTION", default_value = "mask:bottom:0.5")]
    corrupt: String,
    /// Success threshold on the summed squared error per 784 pixels (default: one the mean
    /// image fails on MNIST; the UHN reference's 60 is reported too).
    #[arg(long, default_value_t = memory::STRICT_THRESHOLD)]
    threshold: f64,
    /// Seed of the corruption.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output directory (default: the run directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

/// Runs `prospect memory`.
pub fn run(a: Args, quiet: bool) -> Result<()> {
    match a.command {
        Command::Store(s) => store(s, quiet),
        Command::Recall(r) => recall(r, quiet),
    }
}

fn store(a: StoreArgs, quiet: bool) -> Result<()> {
    let text = match &a.config {
        Some(p) => {
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?
        }
        None => String::new(),
    };
    let mut overrides = vec![format!("seed={}", a.seed)];
    if let Some(m) = &a.model {
        overrides.push(format!("model={m}"));
    }
    overrides.extend(a.overrides.iter().cloned());
    let config = MemoryConfig::from_toml(&text, &overrides)?;
    let (patterns, mean, shape) =
        memory::patterns_in(&a.data, a.data_dir.as_deref(), a.n, a.subset, a.seed)?;
    let mut mem = memory::build(&config, patterns.cols())?;
    let t0 = std::time::Instant::now();
    let stats = mem.store(&patterns)?;
    let out =
        a.out.unwrap_or_else(|| PathBuf::from(format!("runs/memory-{}-n{}", config.model, a.n)));
    let stored = Stored { config, memory: mem, patterns, mean, shape };
    memory::save(&out, &stored)?;
    if !quiet {
        println!(
            "stored {} {} images in a {} memory ({} epochs, final loss {:.4e}, {:.1} s); wrote {}",
            stats.patterns,
            a.data,
            stored.memory.kind(),
            stats.epochs,
            stats.final_loss,
            t0.elapsed().as_secs_f64(),
            out.join(memory::FILE).display()
        );
    }
    Ok(())
}

fn recall(a: RecallArgs, quiet: bool) -> Result<()> {
    let stored = memory::load(&a.run)
        .with_context(|| format!("{} is not a memory run directory", a.run.display()))?;
    let corruption = Corruption::parse(&a.corrupt)?;
    if !(a.threshold.is_finite() && a.threshold > 0.0) {
        anyhow::bail!("--threshold must be > 0, found {}", a.threshold);
    }
    let truth = &stored.patterns;
    let (query, mask) = corruption.apply(truth, stored.shape, a.seed)?;
    let t0 = std::time::Instant::now();
    let recalled = stored.memory.recall(&query, &mask)?;
    let seconds = t0.elapsed().as_secs_f64();
    let baseline = memory::mean_baseline(&stored.mean, &query, &mask);
    let d = truth.cols();
    let strict = memory::threshold(a.threshold, d, true);
    let reference = memory::threshold(memory::REFERENCE_THRESHOLD, d, true);
    let score = |t: &prospect::Tensor<f32>| {
        let s = Scores::of_clipped(t, truth, strict);
        let r = Scores::of_clipped(t, truth, reference);
        serde_json::json!({
            "mse": s.mean_mse(),
            "success": s.success(),
            "success_reference": r.success(),
            "sse": s.sse,
        })
    };
    let obj = serde_json::json!({
        "model": stored.memory.kind(),
        "patterns": truth.rows(),
        "corruption": corruption.label(),
        "threshold": strict,
        "reference_threshold": reference,
        "query": score(&query),
        "memory": score(&recalled),
        "mean_image": score(&baseline),
        "seconds": seconds,
    });
    let out = a.out.unwrap_or_else(|| a.run.clone());
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let stem = format!("recall-{}", corruption.label().replace(':', "-"));
    let json = out.join(format!("{stem}.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&obj)?)
        .with_context(|| format!("cannot write {}", json.display()))?;
    let (h, w) = (stored.shape.height, stored.shape.width);
    let show = truth.rows().min(8);
    let plane = h * w;
    let mut g = Grid::new(stem.clone(), show, 3, h, w);
    for r in 0..show {
        for t in [&query, &recalled, truth] {
            // grey: the mean over the channels, clipped to [0, 1]
            let row = t.row(r);
            g.cells.push(
                (0..plane)
                    .map(|p| {
                        let c = stored.shape.channels;
                        ((0..c).map(|k| row[k * plane + p]).sum::<f32>() / c as f32).clamp(0.0, 1.0)
                    })
                    .collect(),
            );
        }
    }
    let png = out.join(format!("{stem}.png"));
    crate::repro::grid(&png, &g)?;
    if !quiet {
        let s = Scores::of_clipped(&recalled, truth, strict);
        let b = Scores::of_clipped(&baseline, truth, strict);
        println!(
            "{} recall of {} images ({}): MSE {:.5} (mean image {:.5}), success {:.1}% at SSE <= {:.1} \
             (mean image {:.1}%), {:.1}% at the reference's {:.1}; {:.1} s\nwrote {}, {}",
            stored.memory.kind(),
            truth.rows(),
            corruption.label(),
            s.mean_mse(),
            b.mean_mse(),
            100.0 * s.success(),
            strict,
            100.0 * b.success(),
            100.0 * Scores::of_clipped(&recalled, truth, reference).success(),
            reference,
            seconds,
            json.display(),
            png.display()
        );
    }
    Ok(())
}
