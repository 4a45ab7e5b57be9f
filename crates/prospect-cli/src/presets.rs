//! `prospect presets`: the shipped presets, one line each, or one as TOML.

use anyhow::Result;
use prospect::config::{self, DEFAULT_PRESET, PRESETS};

/// Arguments of `prospect presets`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print this preset's full config as TOML (a starting point for --config files).
    #[arg(long, value_name = "NAME")]
    show: Option<String>,
}

/// Runs `prospect presets`.
pub fn run(a: Args) -> Result<()> {
    if let Some(name) = &a.show {
        print!("{}", config::preset(name)?.to_toml()?);
        return Ok(());
    }
    let width = PRESETS.iter().map(|p| p.0.len()).max().unwrap_or(0);
    for (name, about) in PRESETS {
        let mark = if *name == DEFAULT_PRESET { " (default)" } else { "" };
        println!("{name:<width$}  {about}{mark}");
    }
    Ok(())
}
