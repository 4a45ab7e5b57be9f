//! `prospect bench`: training throughput per rule, FLOPs, and the share of the GEMM peak.

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `prospect bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Only cases whose name contains this (cases: mnist-mlp-pcx, wide-mlp, mnist-cnn; vgg5
    /// only when named).
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
    if prospect::bench::selected(&args.case).is_empty() {
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
            "{} threads, widest ISA {}, f32 FMA peak {:.1} GFLOP/s (analytic bound = FMA peak / FLOPs per sample)\n",
            report.threads, report.isa, report.fma_peak_gflops
        );
        println!(
            "{:<14} {:<4} {:>12} {:>13} {:>9} {:>11} {:>8} {:>9}",
            "case",
            "rule",
            "samples/s",
            "MFLOP/sample",
            "GFLOP/s",
            "GEMM peak",
            "% peak",
            "% bound"
        );
        for r in &report.rows {
            println!(
                "{:<14} {:<4} {:>12.0} {:>13.3} {:>9.1} {:>11.1} {:>7.1}% {:>8.1}%",
                r.case,
                r.rule,
                r.samples_per_second,
                r.flops_per_sample as f64 / 1e6,
                r.gflops,
                r.gemm_peak_gflops,
                r.percent_of_peak,
                r.percent_of_bound
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
