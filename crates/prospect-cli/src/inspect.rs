//! `prospect inspect`: what a checkpoint holds (tensors, shapes, statistics, metadata), or
//! one tensor's values as JSON.

use anyhow::{bail, Result};
use prospect::checkpoint::{self, MODEL_FILE};
use std::path::PathBuf;

/// Arguments of `prospect inspect`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["run", "checkpoint"]))]
pub struct Args {
    /// Run directory (reads its model.safetensors).
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    /// A safetensors file (model.safetensors or optimizer.safetensors).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Print this tensor as JSON: {"name", "shape", "values"} (values row-major, as stored).
    #[arg(long, value_name = "NAME")]
    tensor: Option<String>,
    /// Also print the metadata (the stored config is long).
    #[arg(long)]
    metadata: bool,
}

/// Runs `prospect inspect`.
pub fn run(a: Args) -> Result<()> {
    let path = match (&a.run, &a.checkpoint) {
        (Some(dir), _) => dir.join(MODEL_FILE),
        (None, Some(f)) => f.clone(),
        (None, None) => bail!("give --run DIR or --checkpoint FILE"),
    };
    let tensors = checkpoint::read_tensors(&path)?;
    if let Some(name) = &a.tensor {
        let Some(t) = tensors.iter().find(|t| &t.name == name) else {
            let names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
            bail!("{} has no tensor `{name}`; it has: {}", path.display(), names.join(", "));
        };
        // f32 checkpoints: print each value as the shortest decimal that reads back as the
        // same f32, so a client can compare bit for bit.
        let meta = checkpoint::read_metadata(&path)?;
        let values: Vec<serde_json::Value> = if meta.get("dtype").map(String::as_str) == Some("f64")
        {
            t.values.iter().map(|&v| serde_json::json!(v)).collect()
        } else {
            t.values.iter().map(|&v| serde_json::json!(v as f32)).collect()
        };
        let obj = serde_json::json!({ "name": t.name, "shape": t.shape, "values": values });
        println!("{obj}");
        return Ok(());
    }
    let meta = checkpoint::read_metadata(&path)?;
    println!("{}", path.display());
    for key in ["format", "format_version", "dtype", "epoch", "preset", "algo", "sizes"] {
        if let Some(v) = meta.get(key) {
            println!("  {key}: {v}");
        }
    }
    let width = tensors.iter().map(|t| t.name.len()).max().unwrap_or(0);
    for t in &tensors {
        let n = t.values.len().max(1) as f64;
        let mean = t.values.iter().sum::<f64>() / n;
        let std = (t.values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n).sqrt();
        let (lo, hi) = t
            .values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        println!(
            "{:<width$}  {:<12} mean {mean:+.5}  std {std:.5}  min {lo:+.5}  max {hi:+.5}",
            t.name,
            format!("{:?}", t.shape),
        );
    }
    if a.metadata {
        for (k, v) in &meta {
            println!("--- {k}\n{v}");
        }
    }
    Ok(())
}
