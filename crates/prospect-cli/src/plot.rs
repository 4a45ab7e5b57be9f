//! `curves.png`: accuracy and loss/energy against epoch, drawn with plotters and an embedded
//! font (DejaVu Sans subset, see assets/DejaVuSans-LICENSE.txt), so no system font is needed.

use anyhow::{anyhow, Context, Result};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;
use prospect::train::EpochMetrics;
use std::path::Path;
use std::sync::Once;

/// The embedded font.
static FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");

const BLUE: RGBColor = RGBColor(31, 119, 180);
const ORANGE: RGBColor = RGBColor(255, 127, 14);
const GREEN: RGBColor = RGBColor(44, 160, 44);
const PURPLE: RGBColor = RGBColor(148, 103, 189);

/// Registers the embedded font as plotters' sans-serif family (once per process).
pub(crate) fn register_font() -> Result<()> {
    static ONCE: Once = Once::new();
    let mut result = Ok(());
    ONCE.call_once(|| {
        result = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .map_err(|_| anyhow!("the embedded font is not a valid TrueType font"));
    });
    result
}

/// Draws the learning curves of `history` into `path` (written atomically).
pub fn curves(path: &Path, history: &[EpochMetrics], title: &str) -> Result<()> {
    register_font()?;
    let tmp = path.with_file_name(".curves.tmp.png");
    {
        let root = BitMapBackend::new(&tmp, (1280, 540)).into_drawing_area();
        draw(&root, history, title).map_err(|e| anyhow!("{e}"))?;
        root.present().map_err(|e| anyhow!("{e}"))?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

type DrawResult = std::result::Result<(), Box<dyn std::error::Error>>;

/// The x range of a plot of `n` epochs (at least two ticks wide).
fn x_range(n: usize) -> std::ops::Range<i32> {
    if n < 2 {
        0..2
    } else {
        1..n as i32
    }
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    h: &[EpochMetrics],
    title: &str,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let title = match h.last() {
        Some(m) => format!(
            "{title} \u{2014} test accuracy {:.2}% after epoch {}",
            100.0 * m.test_accuracy,
            m.epoch
        ),
        None => title.to_string(),
    };
    let root = root.titled(&title, ("sans-serif", 26).into_font())?;
    let (left, right) = root.split_horizontally(640);
    accuracy_panel(&left, h)?;
    loss_panel(&right, h)?;
    Ok(())
}

fn accuracy_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    h: &[EpochMetrics],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let pct = |v: f64| 100.0 * v;
    let mut lo = 100.0f64;
    for m in h {
        lo = lo.min(pct(m.test_accuracy)).min(pct(m.train_accuracy));
        if let Some(v) = m.val_accuracy {
            lo = lo.min(pct(v));
        }
    }
    let lo = if h.is_empty() { 0.0 } else { ((lo - 5.0) / 10.0).floor().max(0.0) * 10.0 };
    let mut chart = ChartBuilder::on(area)
        .caption("Accuracy", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range(h.len()), lo..100.0)?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("accuracy (%)")
        .y_label_formatter(&|v| format!("{v:.0}"))
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()?;
    let test: Vec<(i32, f64)> = h.iter().map(|m| (m.epoch as i32, pct(m.test_accuracy))).collect();
    let train: Vec<(i32, f64)> =
        h.iter().map(|m| (m.epoch as i32, pct(m.train_accuracy))).collect();
    series(&mut chart, &test, BLUE, "test")?;
    series(&mut chart, &train, ORANGE, "train (during the epoch)")?;
    let val: Vec<(i32, f64)> =
        h.iter().filter_map(|m| m.val_accuracy.map(|v| (m.epoch as i32, pct(v)))).collect();
    if !val.is_empty() {
        series(&mut chart, &val, GREEN, "validation")?;
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)
}

fn loss_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, h: &[EpochMetrics]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let floor = 1e-8;
    let pos = |v: f64| if v.is_finite() { v.max(floor) } else { floor };
    let all: Vec<f64> = h
        .iter()
        .flat_map(|m| [m.train_loss, m.test_loss, m.train_energy].into_iter().chain(m.val_loss))
        .map(pos)
        .collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = all.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let (lo, hi) =
        if lo.is_finite() && hi.is_finite() { (lo / 1.5, hi * 1.5) } else { (0.01, 1.0) };
    let mut chart = ChartBuilder::on(area)
        .caption("Loss and energy (per example, log scale)", ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x_range(h.len()), (lo..hi).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc("per example")
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .light_line_style(RGBColor(235, 235, 235))
        .y_label_formatter(&|v| short(*v))
        .draw()?;
    let pts = |f: &dyn Fn(&EpochMetrics) -> f64| -> Vec<(i32, f64)> {
        h.iter().map(|m| (m.epoch as i32, pos(f(m)))).collect()
    };
    series(&mut chart, &pts(&|m| m.test_loss), BLUE, "test loss")?;
    series(&mut chart, &pts(&|m| m.train_loss), ORANGE, "train loss (before update)")?;
    series(&mut chart, &pts(&|m| m.train_energy), PURPLE, "train energy (at update)")?;
    let val: Vec<(i32, f64)> =
        h.iter().filter_map(|m| m.val_loss.map(|v| (m.epoch as i32, pos(v)))).collect();
    if !val.is_empty() {
        series(&mut chart, &val, GREEN, "validation loss")?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// A log-axis tick label: `0.6`, `0.02`, `3`, `1e-5`.
fn short(v: f64) -> String {
    if v.is_nan() || v <= 0.0 || v.is_infinite() {
        return format!("{v}");
    }
    if v < 1e-3 {
        return format!("{v:.0e}");
    }
    let decimals = (-v.log10().floor()).max(0.0) as usize;
    format!("{v:.decimals$}")
}

/// A line with point markers and a legend entry.
fn series<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordi32, Y>>,
    pts: &[(i32, f64)],
    color: RGBColor,
    label: &str,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    let style = ShapeStyle::from(color).stroke_width(3);
    chart
        .draw_series(LineSeries::new(pts.iter().copied(), style))?
        .label(label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 24, y)], style));
    chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, color.filled())))?;
    Ok(())
}

/// The legend box.
fn legend<'a, DB, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordi32, Y>>,
    pos: SeriesLabelPosition,
) -> DrawResult
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    Y: Ranged<ValueType = f64>,
{
    chart
        .configure_series_labels()
        .position(pos)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(180, 180, 180))
        .draw()?;
    Ok(())
}
