//! Layers: the forward prediction and its local vector-Jacobian products.
//!
//! This is the only module that knows layer maths. A layer maps the value nodes of the layer
//! below, `x_in: [batch, d_in]`, to a prediction `mu: [batch, d_out]`, and given
//! `g = dE/dmu` returns `dE/dx_in` (the input VJP) and `dE/dθ` (the parameter gradients).

mod activation;
mod conv;
mod conv_transpose;
mod dense;
pub mod edge;
mod identity;
mod init;
mod pool;
mod prior;
mod sequential;

pub use activation::{Activation, ACTIVATION_NAMES};
pub use conv::{Conv2d, Geometry};
pub use conv_transpose::{transposed_size, ConvTranspose2d};
pub use dense::{Convention, Dense};
pub use identity::{ActMap, IdentityMap};
pub use init::{Init, INIT_NAMES};
pub use pool::{Pool2d, PoolKind};
pub use prior::PriorMean;
pub use sequential::Sequential;

use crate::tensor::{Accum, PackedRhs, Scalar, Tensor, Trans};
use std::fmt::Debug;

/// Per-layer scratch buffers for one batch size; a layer uses the ones it needs.
#[derive(Clone, Debug, Default)]
pub struct LayerWs<T: Scalar> {
    /// Activation of the input, `f(x_in)`, where the layer needs it.
    pub a: Tensor<T>,
    /// A derivative cache: `f'(x_in)` or `f'(z)`.
    pub da: Tensor<T>,
    /// Pre-activation `z = W x_in + b`, where the layer needs it.
    pub z: Tensor<T>,
    /// `g ⊙ f'(z)`, the error behind the activation, where the layer needs it.
    pub delta: Tensor<T>,
    /// Temporary of the input's shape.
    pub tmp: Tensor<T>,
    /// Image patches of a convolution's input, `[pixels, kh·kw·C]`.
    pub col: Tensor<T>,
    /// Patches of an error (input VJP of a convolution, parameter VJP of a transposed one).
    pub gcol: Tensor<T>,
    /// Arg-max positions of a max-pooling.
    pub idx: Vec<u32>,
    /// Workspaces of the ops of a [`Sequential`] edge.
    pub sub: Vec<LayerWs<T>>,
    /// Intermediate values of a [`Sequential`] edge (outputs of all ops but the last).
    pub bufs: Vec<Tensor<T>>,
    /// Errors at those intermediate values.
    pub gbufs: Vec<Tensor<T>>,
    /// The weight of the forward product, packed for the products of one inference (empty
    /// outside it: see [`Layer::pack_weights`]).
    pub packed: PackedRhs,
    /// The weight of the input VJP's product, packed likewise.
    pub packed_back: PackedRhs,
}

impl<T: Scalar> LayerWs<T> {
    /// Forgets packed weights (here and in sub-workspaces): after this, products read the
    /// weights themselves.
    pub fn unpack(&mut self) {
        self.packed.clear();
        self.packed_back.clear();
        self.sub.iter_mut().for_each(LayerWs::unpack);
    }
}

/// One matrix product `dst[m, n] = op(a)[m, k] · op(b)[k, n]`, with `a` and `b` stored
/// transposed where `ta`/`tb` say so.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GemmShape {
    /// Rows of the result.
    pub m: usize,
    /// Columns of the result.
    pub n: usize,
    /// Inner dimension.
    pub k: usize,
    /// Whether `a` is stored `[k, m]`.
    pub ta: Trans,
    /// Whether `b` is stored `[n, k]`.
    pub tb: Trans,
}

impl GemmShape {
    /// A product of these sizes and transposes.
    pub fn new(m: usize, n: usize, k: usize, ta: Trans, tb: Trans) -> Self {
        Self { m, n, k, ta, tb }
    }

    /// Multiply-adds, `m·n·k`.
    pub fn macs(&self) -> u64 {
        (self.m * self.n * self.k) as u64
    }
}

/// The matrix products a layer runs on one batch, by pass (for benchmarks and FLOP counts).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LayerProducts {
    /// Products of [`Layer::forward`].
    pub forward: Vec<GemmShape>,
    /// Products of [`Layer::vjp_input`].
    pub vjp_input: Vec<GemmShape>,
    /// Products of [`Layer::param_grads`].
    pub param_grads: Vec<GemmShape>,
}

impl LayerProducts {
    /// The three products of a linear map `[batch·pixels, d_in] -> [batch·pixels, d_out]` whose
    /// weight is stored `[d_out, d_in]` (dense layers, convolutions on their patches).
    pub fn linear(rows: usize, d_in: usize, d_out: usize) -> Self {
        Self {
            forward: vec![GemmShape::new(rows, d_out, d_in, Trans::N, Trans::T)],
            vjp_input: vec![GemmShape::new(rows, d_in, d_out, Trans::N, Trans::N)],
            param_grads: vec![GemmShape::new(d_out, d_in, rows, Trans::T, Trans::N)],
        }
    }
}

/// A layer of a predictive coding network (and of its feed-forward twin).
pub trait Layer<T: Scalar>: Send + Sync + Debug {
    /// Short kind name, as in configs ("dense").
    fn kind(&self) -> &'static str;
    /// Input width.
    fn d_in(&self) -> usize;
    /// Output width.
    fn d_out(&self) -> usize;
    /// Visits each parameter tensor with its name ("weight", "bias").
    fn for_each_param(&self, f: &mut dyn FnMut(&'static str, &Tensor<T>));
    /// Visits each parameter tensor mutably, in the order of [`Layer::for_each_param`].
    fn for_each_param_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor<T>));
    /// Scratch buffers for a batch of `batch`.
    fn alloc_ws(&self, batch: usize) -> LayerWs<T>;
    /// `mu (=|+=) layer(x_in)`, caching in `ws` what the backward functions need.
    ///
    /// `Accum::Add` sums the in-edges of a node; a layer whose activation sits after its
    /// linear map (`f(W x + b)`) supports it only with the identity activation.
    fn forward(&self, x_in: &Tensor<T>, mu: &mut Tensor<T>, ws: &mut LayerWs<T>, accum: Accum);
    /// Packs the weights of the forward and input-VJP products into `ws` for the many products
    /// of one inference; the caller keeps the weights unchanged until [`LayerWs::unpack`].
    /// No-op by default.
    fn pack_weights(&self, _ws: &mut LayerWs<T>) {}
    /// Prepares the backward pass for `g = dE/dmu`; call before the two functions below.
    fn backward_prep(&self, g: &Tensor<T>, ws: &mut LayerWs<T>);
    /// `dx (=|+=) dE/dx_in` for `g = dE/dmu`.
    fn vjp_input(&self, g: &Tensor<T>, ws: &mut LayerWs<T>, dx: &mut Tensor<T>, accum: Accum);
    /// `grads[i] (=|+=) dE/dθ_i` summed over the batch, in `for_each_param` order.
    fn param_grads(
        &self,
        g: &Tensor<T>,
        x_in: &Tensor<T>,
        ws: &LayerWs<T>,
        grads: &mut [Tensor<T>],
        accum: Accum,
    );
    /// Multiply-adds of one forward pass per example.
    fn macs_per_example(&self) -> u64;
    /// The matrix products of each pass on a batch of `batch` (none for maps without one).
    fn products(&self, _batch: usize) -> LayerProducts {
        LayerProducts::default()
    }
    /// A boxed copy.
    fn clone_box(&self) -> Box<dyn Layer<T>>;
}

impl<T: Scalar> Clone for Box<dyn Layer<T>> {
    fn clone(&self) -> Self {
        self.clone_box()
    }
}

/// Zero tensors shaped like a layer's parameters, in `for_each_param` order.
pub fn zeros_like_params<T: Scalar>(layer: &dyn Layer<T>) -> Vec<Tensor<T>> {
    let mut v = Vec::new();
    layer.for_each_param(&mut |_, p| v.push(Tensor::zeros(p.rows(), p.cols())));
    v
}

/// Visits a weight and an optional bias as `weight`, `bias`.
pub(crate) fn visit_weight_bias<T: Scalar>(
    w: &Tensor<T>,
    b: Option<&Tensor<T>>,
    f: &mut dyn FnMut(&'static str, &Tensor<T>),
) {
    f("weight", w);
    if let Some(b) = b {
        f("bias", b);
    }
}

/// Visits a weight and an optional bias mutably, as [`visit_weight_bias`].
pub(crate) fn visit_weight_bias_mut<T: Scalar>(
    w: &mut Tensor<T>,
    b: Option<&mut Tensor<T>>,
    f: &mut dyn FnMut(&'static str, &mut Tensor<T>),
) {
    f("weight", w);
    if let Some(b) = b {
        f("bias", b);
    }
}
