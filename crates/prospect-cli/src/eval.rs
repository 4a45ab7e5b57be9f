//! `prospect eval`: accuracy and loss of a checkpoint on a split.

use crate::train::explain;
use anyhow::{bail, Context, Result};
use prospect::checkpoint::{self, MODEL_FILE};
use prospect::config::{self, RunConfig};
use prospect::train::{EvalSet, Trainer, CONFIG_FILE};
use std::path::PathBuf;

/// Which split to evaluate on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum SplitArg {
    /// The test split.
    Test,
    /// The training split (after any validation hold-out).
    Train,
    /// The validation hold-out (`data.validation > 0`).
    Val,
}

/// Arguments of `prospect eval`.
#[derive(Debug, clap::Args)]
#[command(group = clap::ArgGroup::new("source").required(true).args(["run", "checkpoint"]))]
pub struct Args {
    /// Run directory (uses its config.toml and model.safetensors).
    #[arg(long, value_name = "DIR")]
    run: Option<PathBuf>,
    /// A model.safetensors file (its config comes from the file's metadata).
    #[arg(long, value_name = "FILE")]
    checkpoint: Option<PathBuf>,
    /// Evaluate on this dataset instead of the configured one (same input and output sizes).
    #[arg(long, value_name = "NAME")]
    data: Option<String>,
    /// Directory holding the dataset's files.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Split to evaluate.
    #[arg(long, value_enum, default_value = "test")]
    split: SplitArg,
    /// Compute threads (0 = all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    json: bool,
}

/// Runs `prospect eval`.
pub fn run(a: Args, quiet: bool) -> Result<()> {
    let (mut cfg, model) = match (&a.run, &a.checkpoint) {
        (Some(dir), _) => {
            let cfg = config::load(&dir.join(CONFIG_FILE))
                .with_context(|| format!("{} is not a readable run directory", dir.display()))?;
            (cfg, dir.join(MODEL_FILE))
        }
        (None, Some(file)) => {
            let meta = checkpoint::read_metadata(file)?;
            let Some(text) = meta.get("config") else {
                bail!(
                    "{} has no `config` metadata; evaluate it with --run DIR on its run directory",
                    file.display()
                );
            };
            let cfg = RunConfig::from_toml_str(text)
                .with_context(|| format!("the config stored in {} is invalid", file.display()))?;
            (cfg, file.clone())
        }
        (None, None) => bail!("give --run DIR or --checkpoint FILE"),
    };
    if let Some(name) = &a.data {
        cfg.data.name = name.clone();
    }
    if let Some(dir) = &a.data_dir {
        cfg.data.dir = Some(dir.clone());
    }
    if let Some(t) = a.threads {
        cfg.train.threads = t;
    }
    let mut trainer = Trainer::new(cfg).map_err(explain)?;
    let meta = checkpoint::load_model(&model, &mut trainer.net)?;
    let set = match a.split {
        SplitArg::Test => EvalSet::Test,
        SplitArg::Train => EvalSet::Train,
        SplitArg::Val => EvalSet::Validation,
    };
    let m = trainer.evaluate(set)?;
    let epoch = meta.get("epoch").cloned().unwrap_or_else(|| "?".into());
    let data = &trainer.config().data.name;
    let split = format!("{:?}", a.split).to_lowercase();
    if a.json {
        let obj = serde_json::json!({
            "checkpoint": model.display().to_string(),
            "epoch": epoch.parse::<u64>().ok(),
            "data": data,
            "split": split,
            "examples": m.examples,
            "correct": m.correct,
            "accuracy": m.accuracy,
            "loss": m.loss,
        });
        println!("{obj}");
    } else if !quiet {
        println!(
            "{data} {split}: accuracy {:.2}% ({}/{}), mean loss {:.4}  [{} after epoch {epoch}]",
            100.0 * m.accuracy,
            m.correct,
            m.examples,
            m.loss,
            model.display()
        );
    }
    Ok(())
}
