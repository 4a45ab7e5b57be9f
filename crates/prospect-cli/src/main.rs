//! `prospect`: train, evaluate and inspect predictive coding networks from the command line.
//!
//! Each subcommand lives in its own module with an `Args` struct and a `run` function; a new
//! subcommand is one module plus one variant of [`Command`].

mod bench;
mod data;
mod eval;
mod inspect;
mod memory;
mod plot;
mod presets;
mod query;
mod report;
mod repro;
mod train;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Predictive coding networks: train, evaluate, resume and inspect runs.
#[derive(Debug, Parser)]
#[command(
    name = "prospect",
    version,
    after_help = "Start with `prospect train`: it trains the default preset (a PC MLP on the \
                  bundled digits, no download) in seconds and writes its run directory under runs/."
)]
struct Cli {
    /// Print only errors.
    #[arg(long, short, global = true)]
    quiet: bool,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Train a network (default: the digits-mlp preset), or resume a run.
    Train(train::Args),
    /// Accuracy and loss of a trained network on a split.
    Eval(eval::Args),
    /// List the shipped presets (or print one as TOML).
    Presets(presets::Args),
    /// Fetch, verify and list datasets.
    Data(data::Args),
    /// List the tensors of a checkpoint, or print one as JSON.
    Inspect(inspect::Args),
    /// Training throughput per rule, FLOPs and share of the GEMM peak.
    Bench(bench::Args),
    /// Reproduce a figure of the papers (`prospect repro --list`).
    Repro(repro::ReproArgs),
    /// Clamp, mask or initialise any nodes of a trained network and read others.
    Query(query::Args),
    /// Associative memories: store images, recall them from noisy or partial queries.
    Memory(memory::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let quiet = cli.quiet;
    let result = match cli.command {
        Command::Train(a) => train::run(a, quiet),
        Command::Eval(a) => eval::run(a, quiet),
        Command::Presets(a) => presets::run(a),
        Command::Data(a) => data::run(a, quiet),
        Command::Inspect(a) => inspect::run(a),
        Command::Bench(a) => bench::run(a, quiet),
        Command::Repro(a) => repro::run(&a),
        Command::Query(a) => query::run(a, quiet),
        Command::Memory(a) => memory::run(a, quiet),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            report::error(&e);
            ExitCode::FAILURE
        }
    }
}
