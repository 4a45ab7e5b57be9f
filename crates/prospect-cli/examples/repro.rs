//! `prospect repro` as a stand-alone example binary: `cargo run --release -p prospect-cli
//! --example repro -- NAME [--full] [--seeds N] [--out DIR]` (same options as the subcommand).

#[path = "../src/repro.rs"]
mod repro;

use clap::Parser;

/// Reproduce an experiment of the prospective-configuration paper.
#[derive(Debug, Parser)]
struct Cli {
    #[command(flatten)]
    args: repro::ReproArgs,
}

fn main() -> anyhow::Result<()> {
    repro::run(&Cli::parse().args)
}
