//! `prospect repro NAME`: runs one paper-reproduction experiment of
//! [`prospect::experiments`] and writes `NAME.csv` (raw numbers), `NAME.png` (the panels
//! side by side, mean ± standard deviation over seeds) and `NAME.md` (setup, claim table,
//! notes) into the output directory, printing the claim table.

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use prospect::experiments::{self, Panel, Report, Settings};
use std::path::{Path, PathBuf};
use std::sync::Once;
use std::time::Instant;

/// Reproduce an experiment of the prospective-configuration paper.
#[derive(Debug, Clone, clap::Args)]
#[command(
    after_help = "Fashion-MNIST experiments need `bash scripts/fetch-data.sh fashion-mnist` \
                        first. `prospect repro all` runs every experiment in turn."
)]
pub struct ReproArgs {
    /// Experiment name (see --list), or `all`.
    pub name: Option<String>,
    /// List the experiments, one line each.
    #[arg(long)]
    pub list: bool,
    /// Use the paper's settings (slow) instead of the quick defaults.
    #[arg(long)]
    pub full: bool,
    /// Number of seeds (default: the experiment's).
    #[arg(long)]
    pub seeds: Option<usize>,
    /// Output directory (default: repro/).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Override the learning-rate grid of the Fashion-MNIST experiments (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub lrs: Option<Vec<f64>>,
}

/// Runs the command.
///
/// # Errors
/// Unknown experiment names (with the valid ones), experiment errors (e.g. missing data,
/// naming the fetch command), and files that cannot be written.
pub fn run(args: &ReproArgs) -> Result<()> {
    if args.list {
        let w = experiments::EXPERIMENTS.iter().map(|e| e.0.len()).max().unwrap_or(0);
        for (name, about) in experiments::EXPERIMENTS {
            println!("{name:<w$}  {about}");
        }
        return Ok(());
    }
    let Some(name) = args.name.as_deref() else {
        let names: Vec<_> = experiments::EXPERIMENTS.iter().map(|e| e.0).collect();
        bail!(
            "name an experiment (or `all`): {}; `prospect repro --list` describes them",
            names.join(", ")
        );
    };
    let out = args.out.clone().unwrap_or_else(|| PathBuf::from("repro"));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let settings =
        Settings { full: args.full, seeds: args.seeds, progress: true, lrs: args.lrs.clone() };
    let names: Vec<&str> = if name == "all" {
        experiments::EXPERIMENTS.iter().map(|e| e.0).collect()
    } else {
        vec![name]
    };
    for name in names {
        one(name, &settings, &out)?;
    }
    Ok(())
}

/// Runs experiment `name`, writes its files into `out` and prints its table.
fn one(name: &str, settings: &Settings, out: &Path) -> Result<()> {
    let mode = if settings.full { "--full" } else { "default" };
    eprintln!("repro {name} ({mode} settings)...");
    let t0 = Instant::now();
    let report = experiments::run_with(name, settings)?;
    let secs = t0.elapsed().as_secs_f64();
    let csv = out.join(format!("{name}.csv"));
    let png = out.join(format!("{name}.png"));
    let md = out.join(format!("{name}.md"));
    write(&csv, &report.table.to_csv())?;
    write(&md, &markdown(&report, mode, secs))?;
    figure(&png, &report)?;
    println!("{}\n", report.title);
    println!("setup: {}\n", report.setup);
    println!("{}\n", report.claims_text());
    for n in &report.notes {
        println!("note: {n}");
    }
    println!(
        "wall time {secs:.1} s; wrote {}, {}, {}\n",
        csv.display(),
        png.display(),
        md.display()
    );
    Ok(())
}

/// Writes `text` to `path` through a temporary file.
fn write(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// The report as a Markdown section.
fn markdown(r: &Report, mode: &str, secs: f64) -> String {
    let mut s =
        format!("### `{}` ({mode} settings)\n\n{}\n\nSetup: {}\n\n", r.name, r.title, r.setup);
    s.push_str("| quantity | paper | ours | holds |\n|---|---|---|---|\n");
    for c in &r.claims {
        s.push_str(&format!("| {} | {} | {} | {} |\n", c.what, c.paper, c.ours, c.verdict()));
    }
    s.push('\n');
    for n in &r.notes {
        s.push_str(&format!("- {n}\n"));
    }
    s.push_str(&format!("\nWall time: {secs:.1} s.\n"));
    s
}

/// The embedded font (DejaVu Sans subset, see assets/DejaVuSans-LICENSE.txt).
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

/// Registers the embedded font as plotters' sans-serif family (once per process).
fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| anyhow!("the embedded font is not a valid TrueType font"));
    });
    result
}

/// Colours: BP blue, PC orange, then others.
const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Width and height of one panel, in pixels.
const PANEL: (u32, u32) = (560, 420);

/// Draws the report's panels side by side into `path`.
fn figure(path: &Path, r: &Report) -> Result<()> {
    register_font()?;
    let n = r.panels.len().max(1) as u32;
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (PANEL.0 * n, PANEL.1 + 40)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
        let title = ascii(&r.title);
        // shrink long titles to fit the figure (about 0.55 em per character)
        let size = (f64::from(PANEL.0 * n) / (0.55 * title.len().max(1) as f64)).min(22.0);
        let root = root.titled(&title, ("sans-serif", size)).map_err(|e| anyhow!("{e}"))?;
        let areas = root.split_evenly((1, n as usize));
        for (area, p) in areas.iter().zip(&r.panels) {
            panel(area, p).map_err(|e| anyhow!("{}: {e}", p.title))?;
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Replaces characters the embedded font subset may lack.
fn ascii(s: &str) -> String {
    s.replace('±', "+/-").replace('≥', ">=").replace('≈', "~").replace('→', "->").replace('−', "-")
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// One panel: each series as a line with markers over a translucent band. Log axes are
/// drawn as log10 of the values with `1e{k}` labels.
fn panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let tx = |v: f64| if p.log_x { v.max(1e-300).log10() } else { v };
    let ty = |v: f64| if p.log_y { v.max(1e-300).log10() } else { v };
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for s in &p.series {
        xs.extend(s.x.iter().map(|&v| tx(v)));
        ys.extend(s.lo.iter().chain(&s.hi).chain(&s.mean).map(|&v| ty(v)));
    }
    let finite = |v: &Vec<f64>| -> (f64, f64) {
        let lo = v.iter().copied().filter(|x| x.is_finite()).fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().filter(|x| x.is_finite()).fold(f64::NEG_INFINITY, f64::max);
        if lo.is_finite() && hi > lo {
            (lo, hi)
        } else if lo.is_finite() {
            (lo - 0.5, lo + 0.5)
        } else {
            (0.0, 1.0)
        }
    };
    let (x0, x1) = finite(&xs);
    let (y0, y1) = finite(&ys);
    let pad = 0.05 * (y1 - y0);
    let (y0, y1) = (y0 - pad, y1 + pad);
    let mut chart = ChartBuilder::on(area)
        .caption(ascii(&p.title), ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    let fx = |v: &f64| if p.log_x { power(*v) } else { trim(*v) };
    let fy = |v: &f64| if p.log_y { power(*v) } else { trim(*v) };
    chart
        .configure_mesh()
        .x_desc(ascii(&p.x_label))
        .y_desc(ascii(&p.y_label))
        .x_label_formatter(&fx)
        .y_label_formatter(&fy)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    for (i, s) in p.series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let band: Vec<(f64, f64)> =
            s.x.iter()
                .zip(&s.hi)
                .map(|(&x, &y)| (tx(x), ty(y)))
                .chain(s.x.iter().zip(&s.lo).rev().map(|(&x, &y)| (tx(x), ty(y))))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
        if band.len() > 2 {
            chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.18).filled())))?;
        }
        let pts: Vec<(f64, f64)> =
            s.x.iter()
                .zip(&s.mean)
                .map(|(&x, &y)| (tx(x), ty(y)))
                .filter(|(x, y)| x.is_finite() && y.is_finite())
                .collect();
        let style = ShapeStyle::from(c).stroke_width(2);
        chart
            .draw_series(LineSeries::new(pts.clone(), style))?
            .label(ascii(&s.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        if pts.len() <= 60 {
            chart.draw_series(pts.iter().map(|&q| Circle::new(q, 3, c.filled())))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    Ok(())
}

/// The tick label of position `v` on a log10 axis: `10^v`, plainly between 0.01 and 10^5,
/// else in scientific notation.
fn power(v: f64) -> String {
    let x = 10f64.powf(v);
    if (0.01..1e5).contains(&x) {
        let digits = (2 - x.log10().floor() as i32).max(0) as usize;
        trim_str(&format!("{x:.digits$}"))
    } else {
        format!("{x:.0e}")
    }
}

/// A tick label without trailing zeros.
fn trim(v: f64) -> String {
    trim_str(&format!("{v:.3}"))
}

/// `s` (a fixed-point number) without trailing zeros or point.
fn trim_str(s: &str) -> String {
    let s = if s.contains('.') { s.trim_end_matches('0').trim_end_matches('.') } else { s };
    if s == "-0" {
        "0".into()
    } else {
        s.into()
    }
}
