//! `prospect train`: resolve a config, train epoch by epoch with progress, checkpoint, plot.

use crate::plot;
use crate::report::{EpochProgress, Mode};
use anyhow::{Context, Result};
use prospect::config::{self, RunConfig};
use prospect::train::Run;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// File name of the learning curves in a run directory.
pub const CURVES_FILE: &str = "curves.png";

/// Arguments of `prospect train`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Preset to start from (see `prospect presets`; default: digits-mlp).
    #[arg(long, value_name = "NAME")]
    preset: Option<String>,
    /// TOML config file, merged over its `preset` (or --preset, or the default).
    #[arg(long, value_name = "FILE.toml")]
    config: Option<PathBuf>,
    /// Learning rule: bp, pc, ipc, zil, eqprop or chl.
    #[arg(long, value_name = "RULE")]
    algo: Option<String>,
    /// Number of epochs (with --resume: extend the run to this many).
    #[arg(long, value_name = "N")]
    epochs: Option<usize>,
    /// Stop each epoch after N batches (quick runs).
    #[arg(long, value_name = "N")]
    batches_per_epoch: Option<usize>,
    /// Seed of initialisation and shuffling.
    #[arg(long, value_name = "N")]
    seed: Option<u64>,
    /// Compute threads (0 = all cores).
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Run directory (default: runs/<preset>-<algo>-<UTC time>).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Override any config key, e.g. --set inference.steps=16 (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Continue the run in DIR from its last checkpoint.
    #[arg(
        long,
        value_name = "DIR",
        conflicts_with_all = ["preset", "config", "algo", "batches_per_epoch", "seed", "out", "set"]
    )]
    resume: Option<PathBuf>,
    /// Do not write curves.png.
    #[arg(long)]
    no_plot: bool,
}

/// Runs `prospect train`.
pub fn run(a: Args, quiet: bool) -> Result<()> {
    let mode = Mode::detect(quiet);
    let say = |s: String| {
        if mode != Mode::Quiet {
            println!("{s}");
        }
    };
    let mut run = match &a.resume {
        Some(dir) => {
            let (epochs, threads) = (a.epochs, a.threads);
            let run = Run::resume(dir, |c| {
                if let Some(e) = epochs {
                    c.train.epochs = e;
                }
                if let Some(t) = threads {
                    c.train.threads = t;
                }
            })
            .map_err(explain)
            .with_context(|| format!("cannot resume the run in {}", dir.display()))?;
            say(format!(
                "resuming {} after epoch {}/{}",
                dir.display(),
                run.trainer.epoch(),
                run.trainer.config().train.epochs
            ));
            run
        }
        None => {
            let cfg = resolve(&a)?;
            let dir = a.out.clone().unwrap_or_else(|| default_dir(&cfg));
            Run::create(&dir, cfg).map_err(explain)?
        }
    };
    let t = &run.trainer;
    let cfg = t.config().clone();
    let epochs = cfg.train.epochs;
    say(format!(
        "training {} ({}) on {}: {} train / {} test examples, batch {}, {} batches per epoch, {} -> {}",
        cfg.preset,
        cfg.algo,
        cfg.data.name,
        t.train_len(),
        t.test_len(),
        cfg.train.batch_size,
        t.batches_per_epoch(),
        plural(epochs, "epoch"),
        run.dir.display()
    ));
    let started = Instant::now();
    let curves = run.dir.join(CURVES_FILE);
    let title = format!("{} ({}) on {}", cfg.preset, cfg.algo, cfg.data.name);
    while !run.is_done() {
        let mut progress = EpochProgress::start(
            mode,
            run.trainer.epoch() + 1,
            epochs,
            run.trainer.batches_per_epoch(),
        );
        match run.step(|p| progress.batch(p)) {
            Ok(m) => progress.finish(&m, epochs),
            Err(e) => {
                progress.abandon();
                let dir = run.dir.display();
                return Err(explain(e)).with_context(|| {
                    format!(
                        "training stopped in epoch {} of {dir} (the checkpoint of epoch {} is intact)",
                        run.trainer.epoch() + 1,
                        run.trainer.epoch()
                    )
                });
            }
        }
        if !a.no_plot {
            if let Err(e) = plot::curves(&curves, &run.history, &title) {
                eprintln!("warning: could not draw {}: {e:#}", curves.display());
            }
        }
    }
    if !a.no_plot && !curves.is_file() && !run.history.is_empty() {
        if let Err(e) = plot::curves(&curves, &run.history, &title) {
            eprintln!("warning: could not draw {}: {e:#}", curves.display());
        }
    }
    match run.history.last() {
        Some(m) if mode != Mode::Quiet => {
            println!(
                "done: test accuracy {:.2}% after {} ({:.1} s); {} holds config.toml, metrics.jsonl, model.safetensors{}",
                100.0 * m.test_accuracy,
                plural(m.epoch, "epoch"),
                started.elapsed().as_secs_f64(),
                run.dir.display(),
                if a.no_plot { "" } else { ", curves.png" }
            );
        }
        _ => {}
    }
    Ok(())
}

/// `1 epoch`, `2 epochs`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The config from --preset/--config/--set and the shortcut flags (applied last).
fn resolve(a: &Args) -> Result<RunConfig> {
    let mut sets = a.set.clone();
    if let Some(v) = &a.algo {
        sets.push(format!("algo={v}"));
    }
    if let Some(v) = a.epochs {
        sets.push(format!("train.epochs={v}"));
    }
    if let Some(v) = a.batches_per_epoch {
        sets.push(format!("train.batches_per_epoch={v}"));
    }
    if let Some(v) = a.seed {
        sets.push(format!("train.seed={v}"));
    }
    if let Some(v) = a.threads {
        sets.push(format!("train.threads={v}"));
    }
    config::resolve(a.preset.as_deref(), a.config.as_deref(), &sets).map_err(|e| match e {
        prospect::Error::Io { .. } => {
            anyhow::Error::new(e).context("cannot read the config file given with --config")
        }
        e => anyhow::Error::new(e),
    })
}

/// Wraps a library error, adding a first line that says what is missing for absent data.
pub fn explain(e: prospect::Error) -> anyhow::Error {
    if let prospect::Error::Data(prospect::data::DataError::Missing { dataset, .. }) = &e {
        let msg = format!("the {dataset} dataset is not on this machine");
        return anyhow::Error::new(e).context(msg);
    }
    anyhow::Error::new(e)
}

/// `runs/<preset>-<algo>-<YYYYmmdd-HHMMSS>` (UTC), with a numeric suffix if taken.
fn default_dir(cfg: &RunConfig) -> PathBuf {
    let stamp = utc_stamp(SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()));
    let base = Path::new("runs").join(format!("{}-{}-{stamp}", cfg.preset, cfg.algo));
    if !base.exists() {
        return base;
    }
    (2..)
        .map(|i| PathBuf::from(format!("{}-{i}", base.display())))
        .find(|p| !p.exists())
        .unwrap_or(base)
}

/// `YYYYmmdd-HHMMSS` of a Unix time in UTC.
fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}{m:02}{d:02}-{:02}{:02}{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    #[test]
    fn utc_stamp_is_civil_time() {
        assert_eq!(super::utc_stamp(0), "19700101-000000");
        assert_eq!(super::utc_stamp(951_782_400), "20000229-000000");
        assert_eq!(super::utc_stamp(1_700_000_000), "20231114-221320");
    }
}
