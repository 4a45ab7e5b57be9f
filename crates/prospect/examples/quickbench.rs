//! Prints training throughput of each rule on the benchmark cases (see `prospect bench`).
//! Usage: quickbench [SECONDS] [CASE] [RULE]
use std::time::Duration;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let case_f = args.get(2).cloned().unwrap_or_default();
    let rule_f = args.get(3).cloned().unwrap_or_default();
    for case in prospect::bench::cases() {
        if !case.name.contains(&case_f) {
            continue;
        }
        for rule in ["bp", "pc", "ipc", "zil"] {
            if !rule_f.is_empty() && rule != rule_f {
                continue;
            }
            let r = prospect::bench::measure(&case, rule, Duration::from_secs_f64(secs)).unwrap();
            println!(
                "{:14} {:4} {:>10.0} samples/s {:>8.3} MFLOP/sample {:>7.1} GFLOP/s  peak {:>6.1}  {:>5.1}%",
                r.case,
                r.rule,
                r.samples_per_second,
                r.flops_per_sample as f64 / 1e6,
                r.gflops,
                r.gemm_peak_gflops,
                r.percent_of_peak
            );
        }
    }
}
