//! One edge made of several maps applied in turn (e.g. convolution → activation → pooling, the
//! block PCX puts between two value nodes).

use super::{Layer, LayerWs};
use crate::tensor::{Accum, Scalar, Tensor};

/// `mu = op_n(… op_1(x_in))`, with the intermediate values and errors kept in the workspace.
///
/// At most one op has parameters, so the edge's parameters keep their plain names
/// (`weight`, `bias`).
#[derive(Clone, Debug)]
pub struct Sequential<T: Scalar> {
    ops: Vec<Box<dyn Layer<T>>>,
}

impl<T: Scalar> Sequential<T> {
    /// Chains `ops`.
    ///
    /// # Panics
    /// If `ops` is empty, two consecutive widths differ, or more than one op has parameters.
    pub fn new(ops: Vec<Box<dyn Layer<T>>>) -> Self {
        assert!(!ops.is_empty(), "a sequential edge needs an op");
        for w in ops.windows(2) {
            assert_eq!(
                w[0].d_out(),
                w[1].d_in(),
                "{} -> {}: widths differ",
                w[0].kind(),
                w[1].kind()
            );
        }
        let with_params = ops
            .iter()
            .filter(|o| {
                let mut n = 0;
                o.for_each_param(&mut |_, _| n += 1);
                n > 0
            })
            .count();
        assert!(with_params <= 1, "a sequential edge holds at most one op with parameters");
        Self { ops }
    }

    /// The ops, first applied first.
    pub fn ops(&self) -> &[Box<dyn Layer<T>>] {
        &self.ops
    }
}

impl<T: Scalar> Layer<T> for Sequential<T> {
    fn kind(&self) -> &'static str {
        self.ops[0].kind()
    }

    fn d_in(&self) -> usize {
        self.ops[0].d_in()
    }

    fn d_out(&self) -> usize {
        self.ops[self.ops.len() - 1].d_out()
    }

    fn for_each_param(&self, f: &mut dyn FnMut(&'static str, &Tensor<T>)) {
        self.ops.iter().for_each(|o| o.for_each_param(f));
    }

    fn for_each_param_mut(&mut self, f: &mut dyn FnMut(&'static str, &mut Tensor<T>)) {
        self.ops.iter_mut().for_each(|o| o.for_each_param_mut(f));
    }

    fn alloc_ws(&self, batch: usize) -> LayerWs<T> {
        let inner = &self.ops[..self.ops.len() - 1];
        LayerWs {
            sub: self.ops.iter().map(|o| o.alloc_ws(batch)).collect(),
            bufs: inner.iter().map(|o| Tensor::zeros(batch, o.d_out())).collect(),
            gbufs: inner.iter().map(|o| Tensor::zeros(batch, o.d_out())).collect(),
            ..Default::default()
        }
    }

    fn forward(&self, x_in: &Tensor<T>, mu: &mut Tensor<T>, ws: &mut LayerWs<T>, accum: Accum) {
        let n = self.ops.len();
        for (k, op) in self.ops.iter().enumerate() {
            let (before, after) = ws.bufs.split_at_mut(k);
            let input = if k == 0 { x_in } else { &before[k - 1] };
            if k + 1 == n {
                op.forward(input, mu, &mut ws.sub[k], accum);
            } else {
                op.forward(input, &mut after[0], &mut ws.sub[k], Accum::Replace);
            }
        }
    }

    fn pack_weights(&self, ws: &mut LayerWs<T>) {
        for (op, sub) in self.ops.iter().zip(&mut ws.sub) {
            op.pack_weights(sub);
        }
    }

    fn backward_prep(&self, g: &Tensor<T>, ws: &mut LayerWs<T>) {
        for k in (0..self.ops.len()).rev() {
            let (before, after) = ws.gbufs.split_at_mut(k);
            let gk = if k + 1 == self.ops.len() { g } else { &after[0] };
            self.ops[k].backward_prep(gk, &mut ws.sub[k]);
            if k > 0 {
                self.ops[k].vjp_input(gk, &mut ws.sub[k], &mut before[k - 1], Accum::Replace);
            }
        }
    }

    fn vjp_input(&self, g: &Tensor<T>, ws: &mut LayerWs<T>, dx: &mut Tensor<T>, accum: Accum) {
        let g0 = if self.ops.len() == 1 { g } else { &ws.gbufs[0] };
        self.ops[0].vjp_input(g0, &mut ws.sub[0], dx, accum);
    }

    fn param_grads(
        &self,
        g: &Tensor<T>,
        x_in: &Tensor<T>,
        ws: &LayerWs<T>,
        grads: &mut [Tensor<T>],
        accum: Accum,
    ) {
        let n = self.ops.len();
        let mut rest = grads;
        for (k, op) in self.ops.iter().enumerate() {
            let mut count = 0;
            op.for_each_param(&mut |_, _| count += 1);
            if count == 0 {
                continue;
            }
            let (mine, others) = rest.split_at_mut(count);
            let gk = if k + 1 == n { g } else { &ws.gbufs[k] };
            let xk = if k == 0 { x_in } else { &ws.bufs[k - 1] };
            op.param_grads(gk, xk, &ws.sub[k], mine, accum);
            rest = others;
        }
    }

    fn products(&self, batch: usize) -> super::LayerProducts {
        let mut all = super::LayerProducts::default();
        for op in &self.ops {
            let p = op.products(batch);
            all.forward.extend(p.forward);
            all.vjp_input.extend(p.vjp_input);
            all.param_grads.extend(p.param_grads);
        }
        all
    }

    fn macs_per_example(&self) -> u64 {
        self.ops.iter().map(|o| o.macs_per_example()).sum()
    }

    fn clone_box(&self) -> Box<dyn Layer<T>> {
        Box::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{ActMap, Activation, Convention, Dense, Init};
    use crate::tensor::simd::{level, Level};

    #[test]
    fn packing_reaches_every_op_and_unpacking_forgets_it() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let conv = Convention::Fw;
        let dense = Dense::new(20, 30, Activation::Tanh, conv, true, Init::XavierNormal, &mut rng);
        let act = ActMap { d: 20, act: Activation::Tanh };
        let seq: Sequential<f32> = Sequential::new(vec![Box::new(act.clone()), Box::new(dense)]);
        let mut ws = seq.alloc_ws(5);
        seq.pack_weights(&mut ws);
        let kernel = level() == Level::Avx512;
        let packed = |ws: &LayerWs<f32>| -> Vec<(bool, bool)> {
            ws.sub.iter().map(|s| (s.packed.is_packed(), s.packed_back.is_packed())).collect()
        };
        assert_eq!(packed(&ws), vec![(false, false), (kernel, kernel)]);
        ws.unpack();
        assert_eq!(packed(&ws), vec![(false, false); 2]);
    }
}
