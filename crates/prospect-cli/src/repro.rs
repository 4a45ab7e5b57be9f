//! `prospect repro NAME`: runs one paper-reproduction experiment of
//! [`prospect::experiments`] and writes `NAME.csv` (raw numbers), `NAME.png` (the panels
//! side by side, mean ± standard deviation over seeds) and `NAME.md` (setup, claim table,
//! notes) into the output directory, printing the claim table.

use anyhow::{anyhow, bail, Context, Result};
use plotters::coord::ranged1d::ValueFormatter;
use plotters::coord::Shift;
use plotters::prelude::*;
use prospect::experiments::{self, Panel, Protocol, Report, Settings};
use std::path::{Path, PathBuf};
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
    /// Cell store: save every finished (rule, condition, lr, seed) cell of a learning-rate grid
    /// here and skip it on a rerun (resumable `--full` runs).
    #[arg(long, value_name = "DIR")]
    pub cells: Option<PathBuf>,
    /// Compute only shard I of N of the grid's cells into --cells, then stop (a job array
    /// runs 0/N .. N-1/N; a run without --shard over the same --cells merges them).
    #[arg(long, value_name = "I/N", value_parser = parse_shard, requires = "cells")]
    pub shard: Option<(usize, usize)>,
    /// Whose protocol: `ours` (default) or `authors` (their code detail for detail; only
    /// experiments that differ have it, `continual` and `concept-drift`). Files are named NAME-authors.*.
    #[arg(long, value_enum, default_value = "ours")]
    pub protocol: ProtocolArg,
    /// Start concept drift's authors' protocol from this network instead of pretraining one: a
    /// safetensors file of the 784-32-32-10 net (`scripts/authors-checkpoint.py --safetensors`
    /// converts the authors' checkpoint). Its cells are stored apart.
    #[arg(long, value_name = "FILE")]
    pub pretrained: Option<PathBuf>,
}

/// `--protocol` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    /// This library's protocol.
    Ours,
    /// The authors' code.
    Authors,
}

/// Parses `I/N` with `I < N`.
fn parse_shard(s: &str) -> std::result::Result<(usize, usize), String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("expected I/N, e.g. 0/4, got `{s}`"))?;
    let (i, n): (usize, usize) = (
        i.trim().parse().map_err(|_| format!("shard index `{i}` is not a number"))?,
        n.trim().parse().map_err(|_| format!("shard count `{n}` is not a number"))?,
    );
    if n == 0 || i >= n {
        return Err(format!("expected 0 <= I < N, got {i}/{n}"));
    }
    Ok((i, n))
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
    let settings = Settings {
        full: args.full,
        seeds: args.seeds,
        progress: true,
        lrs: args.lrs.clone(),
        cells: args.cells.clone(),
        shard: args.shard,
        protocol: match args.protocol {
            ProtocolArg::Ours => Protocol::Ours,
            ProtocolArg::Authors => Protocol::Authors,
        },
        pretrained: args.pretrained.clone(),
        ..Default::default()
    };
    let names: Vec<&str> = if name == "all" && settings.protocol == Protocol::Authors {
        experiments::AUTHORS_PROTOCOL.to_vec()
    } else if name == "all" {
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
    let report = match experiments::run_with(name, settings) {
        Ok(r) => r,
        Err(e @ prospect::Error::Incomplete { .. }) => {
            // A shard's normal end: its cells are stored; nothing to write yet.
            println!("{e}; wall time {:.1} s", t0.elapsed().as_secs_f64());
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let secs = t0.elapsed().as_secs_f64();
    let name = if settings.protocol == Protocol::Authors {
        format!("{name}-authors")
    } else {
        name.into()
    };
    let csv = out.join(format!("{name}.csv"));
    let png = out.join(format!("{name}.png"));
    let md = out.join(format!("{name}.md"));
    write(&csv, &report.table.to_csv())?;
    write(&md, &report.markdown(mode, secs))?;
    figure(&png, &report)?;
    let mut written = vec![csv.display().to_string(), png.display().to_string()];
    for g in &report.grids {
        let path = out.join(format!("{name}-{}.png", g.name));
        grid(&path, g)?;
        written.push(path.display().to_string());
    }
    written.push(md.display().to_string());
    println!("{}\n", report.title);
    println!("setup: {}\n", report.setup);
    println!("{}\n", report.claims_text());
    for n in &report.notes {
        println!("note: {n}");
    }
    println!("wall time {secs:.1} s; wrote {}\n", written.join(", "));
    Ok(())
}

/// Writes an image grid as a PNG: each image scaled 2x, a 2-pixel grey frame between them.
pub(crate) fn grid(path: &Path, g: &experiments::Grid) -> Result<()> {
    const SCALE: usize = 2;
    const GAP: usize = 2;
    let (cw, ch) = (g.width * SCALE + GAP, g.height * SCALE + GAP);
    let (w, h) = (g.cols * cw + GAP, g.rows * ch + GAP);
    let tmp = path.with_extension("tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (w as u32, h as u32)).into_drawing_area();
        root.fill(&RGBColor(128, 128, 128)).map_err(|e| anyhow!("{e}"))?;
        for (k, img) in g.cells.iter().enumerate() {
            let (r, c) = (k / g.cols.max(1), k % g.cols.max(1));
            for (i, v) in img.iter().enumerate() {
                let grey = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                let colour = RGBColor(grey, grey, grey);
                let (x0, y0) =
                    (GAP + c * cw + (i % g.width) * SCALE, GAP + r * ch + (i / g.width) * SCALE);
                for dy in 0..SCALE {
                    for dx in 0..SCALE {
                        root.draw_pixel(((x0 + dx) as i32, (y0 + dy) as i32), &colour)
                            .map_err(|e| anyhow!("{e}"))?;
                    }
                }
            }
        }
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
}

/// Writes `text` to `path` through a temporary file.
fn write(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))
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
    crate::plot::register_font()?;
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

/// One panel: each series as a line with markers over a translucent band, on linear or
/// logarithmic axes.
fn panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, p: &Panel) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let ok_x = |v: &f64| v.is_finite() && (!p.log_x || *v > 0.0);
    let ok_y = |v: &f64| v.is_finite() && (!p.log_y || *v > 0.0);
    let xs: Vec<f64> = p.series.iter().flat_map(|s| s.x.iter().copied()).filter(ok_x).collect();
    let ys: Vec<f64> = p
        .series
        .iter()
        .flat_map(|s| s.lo.iter().chain(&s.hi).chain(&s.mean).copied())
        .filter(ok_y)
        .collect();
    let (x0, x1) = span(&xs, p.log_x, 0.0);
    let (y0, y1) = span(&ys, p.log_y, 0.05);
    let mut b = ChartBuilder::on(area);
    b.caption(ascii(&p.title), ("sans-serif", 18))
        .margin(12)
        .margin_right(28)
        .x_label_area_size(40)
        .y_label_area_size(64);
    // integer x values (updates, layers, depths): one tick per integer when there are few
    let integer_x = !p.log_x && xs.iter().all(|x| x.fract() == 0.0);
    let x_ticks = if integer_x && x1 - x0 <= 12.0 { (x1 - x0) as usize + 1 } else { 10 };
    match (p.log_x, p.log_y) {
        (false, false) => draw(b.build_cartesian_2d(x0..x1, y0..y1)?, p, x_ticks),
        (true, false) => draw(b.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?, p, x_ticks),
        (false, true) => draw(b.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?, p, x_ticks),
        (true, true) => {
            draw(b.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?, p, x_ticks)
        }
    }
}

/// The range of `v` (finite, and positive on a log axis), padded by `pad` of its span
/// (multiplicatively on a log axis); a unit range around a single value.
fn span(v: &[f64], log: bool, pad: f64) -> (f64, f64) {
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    match (lo.is_finite() && hi.is_finite(), log) {
        (false, true) => (0.1, 1.0),
        (false, false) => (0.0, 1.0),
        (true, true) if hi > lo => {
            let f = (hi / lo).powf(pad);
            (lo / f, hi * f)
        }
        (true, true) => (lo / 2.0, hi * 2.0),
        (true, false) if hi > lo => (lo - pad * (hi - lo), hi + pad * (hi - lo)),
        (true, false) => (lo - 0.5, hi + 0.5),
    }
}

/// Draws the mesh, the series and the legend of panel `p` into `chart`.
fn draw<'a, DB, X, Y>(
    mut chart: ChartContext<'a, DB, Cartesian2d<X, Y>>,
    p: &Panel,
    x_ticks: usize,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let fmt = |v: &f64| number(*v);
    chart
        .configure_mesh()
        .x_labels(x_ticks)
        .x_desc(ascii(&p.x_label))
        .y_desc(ascii(&p.y_label))
        .x_label_formatter(&fmt)
        .y_label_formatter(&fmt)
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 15))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()?;
    let ok = |x: f64, y: f64| {
        x.is_finite() && y.is_finite() && (!p.log_x || x > 0.0) && (!p.log_y || y > 0.0)
    };
    for (i, s) in p.series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let band: Vec<(f64, f64)> =
            s.x.iter()
                .zip(&s.hi)
                .map(|(&x, &y)| (x, y))
                .chain(s.x.iter().zip(&s.lo).rev().map(|(&x, &y)| (x, y)))
                .filter(|&(x, y)| ok(x, y))
                .collect();
        if band.len() > 2 {
            chart.draw_series(std::iter::once(Polygon::new(band, c.mix(0.18).filled())))?;
        }
        let pts: Vec<(f64, f64)> =
            s.x.iter().zip(&s.mean).map(|(&x, &y)| (x, y)).filter(|&(x, y)| ok(x, y)).collect();
        let style = ShapeStyle::from(c).stroke_width(2);
        chart
            .draw_series(LineSeries::new(pts.clone(), style))?
            .label(ascii(&s.label))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
        if pts.len() <= 60 {
            chart.draw_series(pts.iter().map(|&q| Circle::new(q, 3, c.filled())))?;
        }
    }
    // legend in the corner with the fewest plotted points (in pixels, so log axes count right)
    let area = chart.plotting_area().get_pixel_range();
    let (w, h) = ((area.0.end - area.0.start) as f64, (area.1.end - area.1.start) as f64);
    let pixels: Vec<(f64, f64)> = p
        .series
        .iter()
        .flat_map(|s| {
            s.x.iter()
                .zip(s.mean.iter().zip(s.lo.iter().zip(&s.hi)))
                .flat_map(|(&x, (&m, (&lo, &hi)))| [(x, m), (x, lo), (x, hi)])
        })
        .filter(|&(x, y)| ok(x, y))
        .map(|q| {
            let (px, py) = chart.backend_coord(&q);
            ((px - area.0.start) as f64 / w, 1.0 - (py - area.1.start) as f64 / h)
        })
        .collect();
    let count = |right: bool, upper: bool| {
        pixels
            .iter()
            .filter(|(fx, fy)| {
                (if right { *fx >= 0.6 } else { *fx <= 0.4 })
                    && (if upper { *fy >= 0.6 } else { *fy <= 0.4 })
            })
            .count()
    };
    let corners = [
        (SeriesLabelPosition::UpperRight, count(true, true)),
        (SeriesLabelPosition::LowerRight, count(true, false)),
        (SeriesLabelPosition::UpperLeft, count(false, true)),
        (SeriesLabelPosition::LowerLeft, count(false, false)),
    ];
    let pos =
        corners.iter().min_by_key(|c| c.1).map_or(SeriesLabelPosition::UpperRight, |c| c.0.clone());
    chart
        .configure_series_labels()
        .position(pos)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    Ok(())
}

/// A tick label: plain with at most 3 significant digits between 0.01 and 10^5, else
/// scientific.
fn number(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 || (0.01..1e5).contains(&a) {
        let digits = if v == 0.0 { 0 } else { (2 - a.log10().floor() as i32).clamp(0, 3) as usize };
        trim_str(&format!("{v:.digits$}"))
    } else {
        format!("{v:.0e}")
    }
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
