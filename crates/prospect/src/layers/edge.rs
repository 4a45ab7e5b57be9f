//! What an edge of a graph spec (`[[model.edges]]`) builds: its layer, checked against the
//! shapes of the two nodes it joins.

use super::{
    ActMap, Activation, Conv2d, ConvTranspose2d, Convention, Dense, Geometry, IdentityMap, Init,
    Layer, Pool2d, PoolKind, Sequential,
};
use crate::graph::EdgeSpec;
use crate::tensor::Scalar;
use rand::Rng;

/// Edge kinds accepted in `[[model.edges]]`.
pub const EDGE_KINDS: &str = "dense, conv, conv_transpose, max_pool, avg_pool, flatten, identity";

/// The layer an edge spec describes, once its shapes are known.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Plan {
    /// Fully connected over the flattened node values.
    Dense,
    /// `mu = x` (same size; `flatten` and `identity`).
    Identity,
    /// A convolution (`transpose`: its adjoint) then optional pooling.
    Conv {
        /// Patch geometry (of the forward convolution; for a transposed one, output → input).
        geo: Geometry,
        /// Channels of the edge's source.
        c_in: usize,
        /// Channels of the convolution's output.
        c_out: usize,
        /// Transposed convolution.
        transpose: bool,
        /// Pooling after the activation.
        pool: Option<Pool2d>,
    },
    /// Pooling alone.
    Pool(Pool2d),
}

fn fit(what: &str, out: [usize; 3], dst: [usize; 3], to: &str) -> std::result::Result<(), String> {
    if out == dst {
        Ok(())
    } else {
        Err(format!(
            "this {what} maps to [C, H, W] = {out:?} but node `{to}` is {dst:?} (set its `shape`)"
        ))
    }
}

/// Checks an edge between nodes of image shapes `src` and `dst` (`[C, H, W]`; a feature
/// vector of width `d` is `[d, 1, 1]`) and says what it builds.
///
/// # Errors
/// A message for the edge's config key: unknown kind, a setting the kind does not take, a
/// kernel that does not fit, or an output shape other than the target node's.
pub fn plan(e: &EdgeSpec, src: [usize; 3], dst: [usize; 3]) -> std::result::Result<Plan, String> {
    let conv_like = matches!(e.kind.as_str(), "conv" | "conv_transpose");
    let pool_like = matches!(e.kind.as_str(), "max_pool" | "avg_pool");
    let size = |s: [usize; 3]| s.iter().product::<usize>();
    let stray = [
        ("kernel", e.kernel.is_some(), conv_like || pool_like),
        ("stride", e.stride.is_some(), conv_like || pool_like),
        ("padding", e.padding.is_some(), conv_like),
        ("dilation", e.dilation.is_some(), conv_like),
        ("output_padding", e.output_padding.is_some(), e.kind == "conv_transpose"),
        ("pool", e.pool.is_some(), conv_like),
    ];
    if let Some((key, _, _)) = stray.iter().find(|(_, set, ok)| *set && !ok) {
        return Err(format!("`{key}` is not a setting of a `{}` edge", e.kind));
    }
    let pooled = |out: [usize; 3]| -> std::result::Result<(Option<Pool2d>, [usize; 3]), String> {
        match e.pool {
            None => Ok((None, out)),
            Some(p) => {
                let pool = Pool2d::new(p.kind, out, p.size, p.stride.unwrap_or(p.size))
                    .ok_or_else(|| format!("pool of size {} does not fit {out:?}", p.size))?;
                Ok((Some(pool), pool.out_shape()))
            }
        }
    };
    match e.kind.as_str() {
        "dense" => Ok(Plan::Dense),
        "identity" | "flatten" => {
            if size(src) == size(dst) {
                Ok(Plan::Identity)
            } else {
                Err(format!(
                    "a `{}` edge joins nodes of one size, found {} and {}",
                    e.kind,
                    size(src),
                    size(dst)
                ))
            }
        }
        "conv" | "conv_transpose" => {
            let k = e.kernel.ok_or_else(|| format!("a `{}` edge needs `kernel`", e.kind))?;
            let (s, p, d) =
                (e.stride.unwrap_or(1), e.padding.unwrap_or(0), e.dilation.unwrap_or(1));
            let transpose = e.kind == "conv_transpose";
            let (geo, conv_out) = if transpose {
                let extra = e.output_padding.unwrap_or(0);
                if extra >= s.max(d) {
                    return Err(format!(
                        "output_padding {extra} must be below the stride or dilation"
                    ));
                }
                let side = |n| super::transposed_size(n, k, s, p, d, extra);
                let (Some(ho), Some(wo)) = (side(src[1]), side(src[2])) else {
                    return Err(format!("kernel {k}, padding {p} leave no output for {src:?}"));
                };
                let geo = Geometry::new([dst[0], ho, wo], k, s, p, d)
                    .filter(|g| (g.ho, g.wo) == (src[1], src[2]))
                    .ok_or_else(|| {
                        format!("kernel {k}, stride {s}, padding {p} do not invert to {src:?}")
                    })?;
                (geo, [dst[0], ho, wo])
            } else {
                let geo = Geometry::new(src, k, s, p, d).ok_or_else(|| {
                    format!(
                        "kernel {k} (dilation {d}, padding {p}, stride {s}) does not fit {src:?}"
                    )
                })?;
                (geo, [dst[0], geo.ho, geo.wo])
            };
            let (pool, out) = pooled(conv_out)?;
            fit(&e.kind, out, dst, &e.to)?;
            Ok(Plan::Conv { geo, c_in: src[0], c_out: dst[0], transpose, pool })
        }
        "max_pool" | "avg_pool" => {
            let k = e.kernel.ok_or_else(|| format!("a `{}` edge needs `kernel`", e.kind))?;
            let kind = if e.kind == "max_pool" { PoolKind::Max } else { PoolKind::Avg };
            let pool = Pool2d::new(kind, src, k, e.stride.unwrap_or(k))
                .ok_or_else(|| format!("window {k} does not fit {src:?}"))?;
            fit(&e.kind, pool.out_shape(), dst, &e.to)?;
            Ok(Plan::Pool(pool))
        }
        other => Err(format!("unknown edge kind `{other}`; valid: {EDGE_KINDS}")),
    }
}

/// How a planned edge is built: its activation (already resolved for the convention),
/// convention, bias and initialiser.
#[derive(Clone, Copy, Debug)]
pub struct EdgeBuild {
    /// Activation the edge applies (the source's in `w_f`, the target's in `f_w`).
    pub act: Activation,
    /// Prediction convention.
    pub conv: Convention,
    /// Whether the edge adds a bias.
    pub bias: bool,
    /// Weight initialiser.
    pub init: Init,
    /// Widths of source and target.
    pub d: (usize, usize),
}

impl Plan {
    /// The layer of this plan, weights drawn from `rng`.
    pub fn build<T: Scalar, R: Rng + ?Sized>(self, b: EdgeBuild, rng: &mut R) -> Box<dyn Layer<T>> {
        let with_pool = |main: Box<dyn Layer<T>>, pool: Option<Pool2d>| -> Box<dyn Layer<T>> {
            match pool {
                None => main,
                Some(p) => Box::new(Sequential::new(vec![main, Box::new(p)])),
            }
        };
        match self {
            Plan::Dense => {
                Box::new(Dense::<T>::new(b.d.0, b.d.1, b.act, b.conv, b.bias, b.init, rng))
            }
            Plan::Identity => Box::new(IdentityMap { d: b.d.0 }),
            Plan::Conv { geo, c_out, transpose: false, pool, .. } => {
                let c = Conv2d::<T>::new(geo, c_out, b.act, b.conv, b.bias, b.init, rng);
                with_pool(Box::new(c), pool)
            }
            Plan::Conv { geo, c_in, transpose: true, pool, .. } => {
                let c = ConvTranspose2d::<T>::new(geo, c_in, b.act, b.conv, b.bias, b.init, rng);
                with_pool(Box::new(c), pool)
            }
            Plan::Pool(p) if b.act == Activation::Identity => Box::new(p),
            Plan::Pool(p) => {
                let ops: Vec<Box<dyn Layer<T>>> = match b.conv {
                    Convention::Wf => vec![Box::new(ActMap { d: b.d.0, act: b.act }), Box::new(p)],
                    Convention::Fw => vec![Box::new(p), Box::new(ActMap { d: b.d.1, act: b.act })],
                };
                Box::new(Sequential::new(ops))
            }
        }
    }
}
