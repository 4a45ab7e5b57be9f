//! Terminal output: error reports, the per-epoch progress bar or plain progress lines.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use prospect::data::DataError;
use prospect::train::{BatchProgress, EpochMetrics};
use std::io::IsTerminal;
use std::time::{Duration, Instant};

/// Prints an error as one line, its causes below it, and a fix where one is known.
pub fn error(e: &anyhow::Error) {
    eprintln!("error: {e}");
    let mut shown = e.to_string();
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        // thiserror messages often embed their source; do not print it twice.
        if !shown.contains(&text) {
            eprintln!("  cause: {text}");
        }
        shown = text;
    }
    if let Some(fix) = fix(e) {
        eprintln!("  fix: {fix}");
    }
}

/// A command that fixes the error, if it is a known user mistake.
fn fix(e: &anyhow::Error) -> Option<String> {
    for cause in e.chain() {
        let data = cause.downcast_ref::<DataError>().or_else(|| match cause.downcast_ref() {
            Some(prospect::Error::Data(d)) => Some(d),
            _ => None,
        });
        if let Some(DataError::Missing { dataset, .. }) = data {
            if dataset == "tiny-imagenet" {
                return None; // the message says where to download it and where to put it
            }
            let name = if dataset == "cifar100-coarse" { "cifar100" } else { dataset.as_str() };
            return Some(format!("prospect data fetch {name}"));
        }
    }
    None
}

/// How training progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Nothing but errors.
    Quiet,
    /// A progress bar per epoch (stdout is a terminal).
    Bar,
    /// Plain lines (stdout is a file or pipe, e.g. CI logs).
    Plain,
}

impl Mode {
    /// The mode for this process: quiet if asked, a bar on a terminal, plain lines otherwise.
    pub fn detect(quiet: bool) -> Self {
        if quiet {
            Mode::Quiet
        } else if std::io::stdout().is_terminal() {
            Mode::Bar
        } else {
            Mode::Plain
        }
    }
}

/// Plain-mode progress lines are printed at most this often within an epoch.
const PLAIN_EVERY: Duration = Duration::from_secs(15);

/// Shows the progress of one epoch.
pub struct EpochProgress {
    mode: Mode,
    bar: Option<ProgressBar>,
    last_line: Instant,
}

impl EpochProgress {
    /// Starts showing epoch `epoch` of `epochs` with `batches` batches.
    pub fn start(mode: Mode, epoch: usize, epochs: usize, batches: usize) -> Self {
        let bar = (mode == Mode::Bar).then(|| {
            let bar = ProgressBar::with_draw_target(
                Some(batches as u64),
                ProgressDrawTarget::stdout_with_hz(10),
            );
            let style = ProgressStyle::with_template(
                "{prefix:>13} [{bar:30.cyan/blue}] {pos:>5}/{len:<5} {msg} {elapsed:>4}<{eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.set_prefix(format!("epoch {epoch}/{epochs}"));
            bar
        });
        Self { mode, bar, last_line: Instant::now() }
    }

    /// Updates the display after a batch.
    pub fn batch(&mut self, p: &BatchProgress) {
        match self.mode {
            Mode::Bar => {
                if let Some(bar) = &self.bar {
                    bar.set_position(p.batch as u64);
                    bar.set_message(format!(
                        "loss {:.4} energy {:.4} {:>7.0} samples/s",
                        p.loss, p.energy, p.samples_per_second
                    ));
                }
            }
            Mode::Plain if self.last_line.elapsed() >= PLAIN_EVERY && p.batch < p.batches => {
                self.last_line = Instant::now();
                println!(
                    "  epoch {} batch {}/{}: loss {:.4} energy {:.4} {:.0} samples/s",
                    p.epoch, p.batch, p.batches, p.loss, p.energy, p.samples_per_second
                );
            }
            _ => {}
        }
    }

    /// Clears the bar and prints the epoch's summary line.
    pub fn finish(self, m: &EpochMetrics, epochs: usize) {
        if let Some(bar) = self.bar {
            bar.finish_and_clear();
        }
        if self.mode != Mode::Quiet {
            println!("{}", summary(m, epochs));
        }
    }

    /// Clears the bar after an error.
    pub fn abandon(self) {
        if let Some(bar) = self.bar {
            bar.abandon();
        }
    }
}

/// The one-line summary of an epoch.
pub fn summary(m: &EpochMetrics, epochs: usize) -> String {
    let width = epochs.to_string().len();
    let mut s = format!(
        "epoch {:>w$}/{epochs}  loss {:.4}  energy {:.4}  train acc {:5.1}%  test acc {:5.1}%  test loss {:.4}",
        m.epoch,
        m.train_loss,
        m.train_energy,
        100.0 * m.train_accuracy,
        100.0 * m.test_accuracy,
        m.test_loss,
        w = width
    );
    if let Some(v) = m.val_accuracy {
        s.push_str(&format!("  val acc {:5.1}%", 100.0 * v));
    }
    let secs =
        if m.seconds < 10.0 { format!("{:.2}", m.seconds) } else { format!("{:.1}", m.seconds) };
    s.push_str(&format!("  {:.0} samples/s  {secs} s", m.samples_per_second));
    if m.skipped_batches > 0 {
        s.push_str(&format!("  ({} batches skipped: non-finite energy)", m.skipped_batches));
    }
    s
}
