//! Paper-reproduction experiments: the prospective-configuration results of Song et al.
//! (Nature Neuroscience 2024) and the Z-IL and linear-equilibrium checks, one module each.
//!
//! Every experiment is a pure function `run(&Settings) -> Result<Report>`: it trains and
//! measures, and returns the claim-vs-ours rows, the raw numbers (one CSV row per seed and
//! point) and the series to plot (mean ± standard deviation over seeds). Writing files and
//! printing is the caller's job (`prospect repro`).
//!
//! ```
//! use prospect::experiments::{self, Settings};
//! let report = experiments::run_with("interference", &Settings::default()).unwrap();
//! assert!(report.claims.iter().all(|c| c.verdict != experiments::Verdict::No));
//! ```

pub mod concept_drift;
pub mod continual;
pub mod covpc;
pub mod data_efficiency;
pub mod depth;
pub mod graph_mnist;
pub mod interference;
pub mod linear_equilibrium;
pub mod memory_gpcn;
pub mod online;
pub mod reverse_diff;
pub mod target_alignment;
pub mod target_prop;
pub mod uhn;
mod util;
pub mod weak_feedback;
pub mod zil_equivalence;

use crate::error::{Error, Result};
use std::path::PathBuf;

/// The experiments: name (as on the command line) and a line about each.
pub const EXPERIMENTS: &[(&str, &str)] = &[
    (
        "interference",
        "1-1-2 linear net: learning output B drags the already-correct output A less under PC",
    ),
    (
        "target-alignment",
        "cosine between the output's change and the target direction, linear nets of depth 1-25",
    ),
    ("depth", "deep narrow LeakyReLU MLPs on Fashion-MNIST (60 per class): test error vs depth"),
    ("online", "batch size 1 vs larger batches, 784-32-32-10 sigmoid MLP on Fashion-MNIST"),
    ("continual", "two alternating 5-class Fashion-MNIST tasks on a shared output: error on both"),
    ("concept-drift", "Fashion-MNIST with the label mapping permuted every 64 iterations"),
    ("data-efficiency", "Fashion-MNIST with 60 to 6000 examples per class: test error vs size"),
    (
        "zil-equivalence",
        "per-layer max |dW_zil - dW_bp| on random MLPs, and with each condition broken",
    ),
    ("linear-equilibrium", "inferred vs closed-form equilibrium of linear chains"),
    ("reverse-diff", "Z-IL on levelled DAGs (skip MLP, unrolled RNN) equals backprop exactly"),
    (
        "graph-mnist",
        "one PC graph on MNIST classifies, generates, completes and denoises (vs layered PCN)",
    ),
    (
        "memory-gpcn",
        "generative PCN memory: recall from noise and masks vs N, against modern Hopfield and a BP autoencoder",
    ),
    ("uhn-similarity", "Universal Hopfield Networks: capacity vs N per similarity (noise 0.5, max)"),
    ("uhn-separation", "Universal Hopfield Networks: capacity vs N per separation (bottom half masked)"),
    ("uhn-noise", "Universal Hopfield Networks: recall vs noise level per similarity (N = 100)"),
    ("uhn-mask", "Universal Hopfield Networks: recall vs masked fraction per similarity (N = 50)"),
    ("covpc-gaussian", "covariance-learning PC: 25-d Gaussian patterns, masked recall vs the conditional mean"),
    ("covpc-mnist", "covariance-learning PC: MNIST bottom half masked, retrieval MSE vs N"),
    (
        "weak-feedback",
        "PC nudge, EqProp, centred EqProp and CHL against the BP gradient as beta -> 0 (MNIST MLP)",
    ),
    (
        "target-prop",
        "precision ratio top/bottom: PC's equilibrium moves from backprop to target propagation",
    ),
];

/// Whose protocol an experiment follows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Protocol {
    /// This library's protocol (the default): the paper's setup with the authors' accidents
    /// left out (see each experiment's module doc).
    #[default]
    Ours,
    /// The authors' code detail for detail (`--protocol authors`), where it differs.
    Authors,
}

/// The experiments that have a separate `--protocol authors`.
pub const AUTHORS_PROTOCOL: [&str; 2] = ["continual", "concept-drift"];

/// How an experiment is run.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// Use the paper's settings instead of the quick defaults.
    pub full: bool,
    /// Number of seeds (`None`: the experiment's default).
    pub seeds: Option<usize>,
    /// Print progress lines to stderr.
    pub progress: bool,
    /// Override of the learning-rate grid of the Fashion-MNIST experiments (`None`: theirs).
    pub lrs: Option<Vec<f64>>,
    /// Cell store: every finished (method, condition, lr, seed) cell of a learning-rate grid
    /// is saved under this directory and read back instead of recomputed (resumable runs).
    pub cells: Option<PathBuf>,
    /// The experiment being run (set by [`run_with`]; names the cell store's subdirectory).
    pub name: String,
    /// `(i, n)`: compute only the grid's cells `j` with `j % n == i`, store them and stop
    /// with [`Error::Incomplete`] (needs `cells`); `n = 0`: only count the cells.
    pub shard: Option<(usize, usize)>,
    /// Whose protocol to follow.
    pub protocol: Protocol,
    /// A network to start from instead of pretraining one (concept drift, authors' protocol):
    /// a safetensors file of the 784-32-32-10 network, e.g. the authors' checkpoint converted
    /// by `scripts/authors-checkpoint.py --safetensors`.
    pub pretrained: Option<PathBuf>,
}

impl Settings {
    /// The directory of this experiment's cells (`<cells>/<name>-<quick|full>`), if storing.
    pub fn cell_dir(&self, name: &str) -> Option<PathBuf> {
        let mode = if self.full { "full" } else { "quick" };
        let protocol = if self.protocol == Protocol::Authors { "-authors" } else { "" };
        // cells grown from a loaded network are kept apart, by the file's contents
        let pretrained = match &self.pretrained {
            Some(p) => format!("-pretrained-{:016x}", fnv1a(&std::fs::read(p).unwrap_or_default())),
            None => String::new(),
        };
        self.cells.as_ref().map(|d| d.join(format!("{name}-{mode}{protocol}{pretrained}")))
    }
}

/// The 64-bit FNV-1a hash of `bytes` (names the cell store of a loaded network).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

impl Settings {
    /// The number of seeds: the override if given, else `quick` (default) or `full` (`--full`).
    pub fn seeds(&self, quick: usize, full: usize) -> usize {
        self.seeds.unwrap_or(if self.full { full } else { quick }).max(1)
    }

    /// `quick` by default, `full` with `--full`.
    pub fn pick<V>(&self, quick: V, full: V) -> V {
        if self.full {
            full
        } else {
            quick
        }
    }

    /// The learning-rate grid: the override if given, else `quick` or `full` (`--full`).
    pub fn lrs(&self, quick: &[f64], full: &[f64]) -> Vec<f64> {
        self.lrs.clone().unwrap_or_else(|| self.pick(quick, full).to_vec())
    }

    /// Prints a progress line to stderr when asked to.
    pub fn log(&self, msg: impl AsRef<str>) {
        if self.progress {
            eprintln!("  {}", msg.as_ref());
        }
    }
}

/// Whether a qualitative claim holds at the settings run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The claim holds (for comparisons: by more than the seed spread).
    Yes,
    /// The claim does not hold (for comparisons: the opposite holds beyond the seed spread).
    No,
    /// A comparison within the seed spread: not reproduced, not contradicted.
    Tie,
    /// Informational row, no claim.
    Info,
}

impl From<Option<bool>> for Verdict {
    fn from(h: Option<bool>) -> Self {
        match h {
            Some(true) => Verdict::Yes,
            Some(false) => Verdict::No,
            None => Verdict::Info,
        }
    }
}

impl Verdict {
    /// `a` below `b` (per-seed values): [`Verdict::Yes`] if the mean difference exceeds the
    /// larger standard deviation over seeds, [`Verdict::No`] if it is that far the other
    /// way, else [`Verdict::Tie`].
    pub fn less(a: &[f64], b: &[f64]) -> Self {
        let (ma, sa) = util::mean_std(a);
        let (mb, sb) = util::mean_std(b);
        let spread = sa.max(sb);
        if mb - ma > spread {
            Verdict::Yes
        } else if ma - mb > spread {
            Verdict::No
        } else {
            Verdict::Tie
        }
    }

    /// The verdict as written in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Yes => "yes",
            Verdict::No => "NO",
            Verdict::Tie => "tie (within seed spread)",
            Verdict::Info => "-",
        }
    }
}

/// One line of the claim table: a quantity, what the paper reports, what we measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Claim {
    /// The quantity compared.
    pub what: String,
    /// The paper's result.
    pub paper: String,
    /// Our result.
    pub ours: String,
    /// Whether the qualitative claim holds at these settings.
    pub verdict: Verdict,
}

impl Claim {
    /// A claim row.
    pub fn new(
        what: impl Into<String>,
        paper: impl Into<String>,
        ours: impl Into<String>,
        verdict: impl Into<Verdict>,
    ) -> Self {
        Self { what: what.into(), paper: paper.into(), ours: ours.into(), verdict: verdict.into() }
    }

    /// The verdict as written in tables.
    pub fn verdict(&self) -> &'static str {
        self.verdict.as_str()
    }
}

/// A table of raw numbers (written as CSV).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Table {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows, one cell per column.
    pub rows: Vec<Vec<String>>,
}

impl Table {
    /// An empty table with these columns.
    pub fn new(columns: &[&str]) -> Self {
        Self { columns: columns.iter().map(|c| c.to_string()).collect(), rows: Vec::new() }
    }

    /// Appends a row of displayable cells.
    pub fn push(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.columns.len());
        self.rows.push(cells);
    }

    /// The table as CSV text (cells containing commas or quotes are quoted).
    pub fn to_csv(&self) -> String {
        fn cell(s: &str) -> String {
            if s.contains([',', '"', '\n']) {
                format!("\"{}\"", s.replace('"', "\"\""))
            } else {
                s.to_string()
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&self.columns).chain(&self.rows) {
            let line: Vec<String> = row.iter().map(|c| cell(c)).collect();
            out.push_str(&line.join(","));
            out.push('\n');
        }
        out
    }
}

/// One curve: mean over seeds with a band (mean ± standard deviation).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Legend label ("BP", "PC", ...).
    pub label: String,
    /// X coordinates.
    pub x: Vec<f64>,
    /// Mean over seeds at each x.
    pub mean: Vec<f64>,
    /// Lower edge of the band at each x.
    pub lo: Vec<f64>,
    /// Upper edge of the band at each x.
    pub hi: Vec<f64>,
}

impl Series {
    /// A series from per-seed values at each x (`values[i]` = the seeds' values at `x[i]`).
    pub fn from_seeds(label: impl Into<String>, x: Vec<f64>, values: &[Vec<f64>]) -> Self {
        let mut s = Self { label: label.into(), x, ..Default::default() };
        for v in values {
            let (m, sd) = util::mean_std(v);
            s.mean.push(m);
            s.lo.push(m - sd);
            s.hi.push(m + sd);
        }
        s
    }
}

/// One plot panel; a report's panels are drawn side by side.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Panel {
    /// Panel title.
    pub title: String,
    /// X-axis label.
    pub x_label: String,
    /// Y-axis label.
    pub y_label: String,
    /// Logarithmic x axis.
    pub log_x: bool,
    /// Logarithmic y axis.
    pub log_y: bool,
    /// The curves (usually BP and PC).
    pub series: Vec<Series>,
}

/// What an experiment measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    /// Experiment name.
    pub name: String,
    /// One-line description.
    pub title: String,
    /// The settings actually used, in words.
    pub setup: String,
    /// Claim-vs-ours rows.
    pub claims: Vec<Claim>,
    /// Raw numbers, one row per seed and point.
    pub table: Table,
    /// Plot panels.
    pub panels: Vec<Panel>,
    /// Remarks (what was tried, caveats).
    pub notes: Vec<String>,
    /// Image grids (written as `NAME-{grid}.png`).
    pub grids: Vec<Grid>,
}

impl Report {
    /// The report as the Markdown section `prospect repro` writes (`NAME.md`): title, setup,
    /// claim table, notes and the wall time of the run (`mode`: "default" or "--full").
    pub fn markdown(&self, mode: &str, secs: f64) -> String {
        let mut s = format!(
            "### `{}` ({mode} settings)\n\n{}\n\nSetup: {}\n\n",
            self.name, self.title, self.setup
        );
        s.push_str("| quantity | paper | ours | holds |\n|---|---|---|---|\n");
        for c in &self.claims {
            s.push_str(&format!("| {} | {} | {} | {} |\n", c.what, c.paper, c.ours, c.verdict()));
        }
        s.push('\n');
        for n in &self.notes {
            s.push_str(&format!("- {n}\n"));
        }
        s.push_str(&format!("\nWall time: {secs:.1} s.\n"));
        s
    }
}

/// A grid of grey-scale images (values in [0, 1]), row by row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grid {
    /// Name (file suffix).
    pub name: String,
    /// Rows of images.
    pub rows: usize,
    /// Images per row.
    pub cols: usize,
    /// Height of one image.
    pub height: usize,
    /// Width of one image.
    pub width: usize,
    /// The images, row-major over the grid, each `height * width` values.
    pub cells: Vec<Vec<f32>>,
}

impl Grid {
    /// An empty grid of this layout.
    pub fn new(
        name: impl Into<String>,
        rows: usize,
        cols: usize,
        height: usize,
        width: usize,
    ) -> Self {
        Self { name: name.into(), rows, cols, height, width, cells: Vec::new() }
    }
}

impl Report {
    /// The claim table as aligned plain text.
    pub fn claims_text(&self) -> String {
        let head = ["quantity", "paper", "ours", "holds"];
        let rows: Vec<[&str; 4]> = self
            .claims
            .iter()
            .map(|c| [c.what.as_str(), c.paper.as_str(), c.ours.as_str(), c.verdict()])
            .collect();
        let mut w = head.map(|h| h.chars().count());
        for r in &rows {
            for (wi, c) in w.iter_mut().zip(r) {
                *wi = (*wi).max(c.chars().count());
            }
        }
        let line = |r: [&str; 4]| {
            let cells: Vec<String> =
                r.iter().zip(&w).map(|(c, wi)| format!("{c:<wi$}", wi = *wi)).collect();
            cells.join("  ").trim_end().to_string()
        };
        let mut out = line(head);
        out.push('\n');
        out.push_str(&line(w.map(|wi| "-".repeat(wi)).each_ref().map(|s| s.as_str())));
        for r in rows {
            out.push('\n');
            out.push_str(&line(r));
        }
        out
    }
}

/// Runs experiment `name` with the default or (`full`) the paper's settings.
///
/// # Errors
/// [`Error::Config`] for an unknown name (listing the valid ones); the experiment's own
/// errors (e.g. [`Error::Data`] naming the fetch command when Fashion-MNIST is missing).
pub fn run(name: &str, full: bool, seeds: Option<usize>) -> Result<Report> {
    run_with(name, &Settings { full, seeds, ..Default::default() })
}

/// Runs experiment `name` with `settings`.
///
/// # Errors
/// As [`run`].
pub fn run_with(name: &str, settings: &Settings) -> Result<Report> {
    if settings.shard.is_some() && settings.cells.is_none() {
        return Err(Error::config("shard", "a sharded run needs a cell store (--cells DIR)"));
    }
    if let Some((i, n)) = settings.shard {
        if n > 0 && i >= n {
            return Err(Error::config("shard", format!("shard {i}/{n}: expected i < n")));
        }
    }
    if settings.protocol == Protocol::Authors && !AUTHORS_PROTOCOL.contains(&name) {
        return Err(Error::config(
            "protocol",
            format!(
                "`{name}` has no separate authors' protocol; experiments with one: {}",
                AUTHORS_PROTOCOL.join(", ")
            ),
        ));
    }
    if settings.pretrained.is_some()
        && (name != "concept-drift" || settings.protocol != Protocol::Authors)
    {
        return Err(Error::config(
            "pretrained",
            format!(
                "a pretrained network is loaded only by `concept-drift` with the authors' \
                 protocol, not by `{name}`{}",
                if settings.protocol == Protocol::Authors { "" } else { " (--protocol ours)" }
            ),
        ));
    }
    let settings = &Settings { name: name.to_string(), ..settings.clone() };
    match name {
        "interference" => interference::run(settings),
        "target-alignment" => target_alignment::run(settings),
        "depth" => depth::run(settings),
        "online" => online::run(settings),
        "continual" => continual::run(settings),
        "concept-drift" => concept_drift::run(settings),
        "data-efficiency" => data_efficiency::run(settings),
        "zil-equivalence" => zil_equivalence::run(settings),
        "linear-equilibrium" => linear_equilibrium::run(settings),
        "reverse-diff" => reverse_diff::run(settings),
        "graph-mnist" => graph_mnist::run(settings),
        "memory-gpcn" => memory_gpcn::run(settings),
        "uhn-similarity" => uhn::run_similarity(settings),
        "uhn-separation" => uhn::run_separation(settings),
        "uhn-noise" => uhn::run_noise(settings),
        "uhn-mask" => uhn::run_mask(settings),
        "covpc-gaussian" => covpc::run_gaussian(settings),
        "covpc-mnist" => covpc::run_mnist(settings),
        "weak-feedback" => weak_feedback::run(settings),
        "target-prop" => target_prop::run(settings),
        _ => {
            let valid: Vec<_> = EXPERIMENTS.iter().map(|e| e.0).collect();
            Err(Error::config(
                "experiment",
                format!("unknown experiment `{name}`; valid: {}", valid.join(", ")),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Catches: a hash that is not FNV-1a (64-bit) — the store of a `--pretrained` run is
    /// named by it, so another version must find the same directory.
    #[test]
    fn the_store_hash_is_fnv1a_64() {
        // the reference test vectors of FNV-1a, 64 bits
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"foobar"), 0x8594_4171_f739_67e8);
    }
}
