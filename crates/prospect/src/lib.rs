//! prospect: predictive coding networks trained by prospective configuration, and the
//! learning rules around them (backprop, incremental PC, Z-IL).
//!
//! ```
//! use prospect::{learn, Activation, Convention, InferenceConfig, MlpSpec, Net, OptimConfig, Tensor, WeightOptim, Workspace};
//! let spec = MlpSpec::new(&[4, 16, 3], Activation::Tanh, Convention::Wf);
//! let mut net: Net = Net::mlp(&spec, 0).unwrap();
//! let mut opt = WeightOptim::new(OptimConfig::sgd(0.1), &net).unwrap();
//! let mut rule = learn::build("pc", &InferenceConfig::default()).unwrap();
//! let x = Tensor::from_fn(8, 4, |r, c| ((r + c) % 3) as f32);
//! let y = Tensor::from_fn(8, 3, |r, c| (r % 3 == c) as u8 as f32);
//! let mut ws = Workspace::new(&net, 8);
//! let stats = rule.train_batch(&mut net, &mut opt, learn::Batch { x: &x, y: &y, index: 0 }, &mut ws).unwrap();
//! assert!(stats.loss > 0.0);
//! assert_eq!(net.predict(&x).unwrap().shape(), [8, 3]);
//! ```

pub mod data;
pub mod energy;
pub mod error;
pub mod infer;
pub mod layers;
pub mod learn;
pub mod net;
pub mod optim;
pub mod tensor;

pub use energy::{Energy, EnergyKind};
pub use error::{Error, Result};
pub use infer::{InferenceConfig, InferenceStats, NodeOptim, OutputMode};
pub use layers::{Activation, Convention, Dense, Init, Layer};
pub use learn::{Batch, BatchStats, Rule};
pub use net::{MlpSpec, Net, Workspace};
pub use optim::{OptimConfig, OptimKind, Reduction, Schedule, ScheduleKind, WeightOptim};
pub use tensor::{Scalar, Tensor};
