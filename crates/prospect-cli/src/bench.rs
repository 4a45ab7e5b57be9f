//! `prospect bench`: training throughput per rule, FLOPs, and the share of the GEMM peak.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `prospect bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only cases whose name contains this (cases: mnist-mlp-pcx, wide-mlp).
    #[arg(long, default_value = "")]
    case: String,
    /// Rules to measure, comma-separated.
    #[arg(long, default_value = "bp,pc,ipc,zil", value_delimiter = ',')]
    rules: Vec<String>,
    /// Seconds of timing per (case, rule) measurement.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Threads (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Where to write the JSON report.
    #[arg(long, default_value = "bench.json")]
    json: PathBuf,
}

/// Runs the benchmark, prints the table and writes the JSON report.
pub fn run(args: Args, quiet: bool) -> Result<()> {
    if let Some(t) = args.threads {
        prospect::tensor::set_threads(t);
    }
    let cases = prospect::bench::cases();
    if !cases.iter().any(|c| c.name.contains(&args.case)) {
        let names: Vec<&str> = cases.iter().map(|c| c.name).collect();
        anyhow::bail!(
            "--case `{}` matches no benchmark case (cases: {})",
            args.case,
            names.join(", ")
        );
    }
    for r in &args.rules {
        prospect::learn::build::<f32>(r, &Default::default())?;
    }
    let rules: Vec<&str> = args.rules.iter().map(String::as_str).collect();
    let report = prospect::bench::run(&args.case, &rules, Duration::from_secs_f64(args.seconds))?;
    if !quiet {
        println!(
            "{:<14} {:<4} {:>12} {:>13} {:>9} {:>11} {:>8}",
            "case", "rule", "samples/s", "MFLOP/sample", "GFLOP/s", "GEMM peak", "% peak"
        );
        for r in &report.rows {
            println!(
                "{:<14} {:<4} {:>12.0} {:>13.3} {:>9.1} {:>11.1} {:>7.1}%",
                r.case,
                r.rule,
                r.samples_per_second,
                r.flops_per_sample as f64 / 1e6,
                r.gflops,
                r.gemm_peak_gflops,
                r.percent_of_peak
            );
        }
        println!();
        println!(
            "{:<14} {:<4} {:>14} {:>14}  within FLOP ratio + 30%",
            "case", "rule", "time / BP", "FLOPs / BP"
        );
        for q in &report.ratios {
            println!(
                "{:<14} {:<4} {:>14.2} {:>14.2}  {}",
                q.case,
                q.rule,
                q.time_ratio,
                q.flop_ratio,
                if q.within_flops_plus_30_percent { "yes" } else { "no" }
            );
        }
        println!("\n{} threads; JSON written to {}", report.threads, args.json.display());
    }
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(&args.json, json).with_context(|| format!("writing {}", args.json.display()))?;
    Ok(())
}
