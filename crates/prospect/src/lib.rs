//! prospect: predictive coding networks trained by prospective configuration, and the
//! learning rules around them (backprop, incremental PC, Z-IL).
//!
//! ```
//! # fn main() -> prospect::Result<()> {
//! use prospect::{learn, Activation, Convention, InferenceConfig, MlpSpec, Net, OptimConfig, Tensor, WeightOptim, Workspace};
//!
//! let spec = MlpSpec::new(&[4, 16, 3], Activation::Tanh, Convention::Wf); // mu = W f(x) + b
//! let mut net: Net = Net::mlp(&spec, 0)?;                                  // f32, seeded init
//! let mut opt = WeightOptim::new(OptimConfig::sgd(0.1), &net)?;
//! let mut rule = learn::build("pc", &InferenceConfig { steps: 20, gamma: 0.1, ..Default::default() })?;
//! let x = Tensor::from_fn(8, 4, |r, c| ((r + c) % 3) as f32);
//! let y = Tensor::from_fn(8, 3, |r, c| (r % 3 == c) as u8 as f32);       // one-hot targets
//! let mut ws = Workspace::new(&net, 8);                                   // buffers, sized once
//! let stats = rule.train_batch(&mut net, &mut opt, learn::Batch { x: &x, y: &y, index: 0 }, &mut ws)?;
//! let prediction = net.predict(&x)?;                                      // plain forward pass
//! # assert!(stats.loss > 0.0 && prediction.shape() == [8, 3]);
//! # Ok(())
//! # }
//! ```

pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod energy;
pub mod error;
pub mod experiments;
pub mod graph;
pub mod infer;
pub mod layers;
pub mod learn;
pub mod memory;
pub mod net;
pub mod optim;
pub mod tensor;
/// Skip or fail for tests that need a fetched data set or a Python module.
pub mod testing;
pub mod train;

pub use config::RunConfig;
pub use energy::{Energy, EnergyKind};
pub use error::{Error, Result};
pub use infer::{DiscountTiming, Given, InferenceConfig, InferenceStats, NodeOptim, OutputMode};
pub use layers::{Activation, Convention, Dense, Init, Layer};
pub use learn::{Batch, BatchStats, Rows, Rule};
pub use net::{MlpSpec, Net, Workspace};
pub use optim::{OptimConfig, OptimKind, Reduction, Schedule, ScheduleKind, WeightOptim};
pub use tensor::{Scalar, Tensor};
pub use train::{EpochMetrics, Run, StepTrainer, Trainer};
