//! The topology of a PC network: value nodes and the edges between them (science.md §5).
//!
//! A node `i` holds values `x_i: [batch, size]` and, when it has in-edges or a prior, a
//! prediction `mu_i` = the sum of its in-edges' maps (then the node's activation, if it has
//! one) with an energy `E_i(x_i, mu_i)`. An edge maps a source node (or nothing, for a learned
//! prior mean) to its target. Cycles and self-edges are allowed. The layered MLP is the chain
//! `0 -> 1 -> ... -> L`, edge `l - 1` from node `l - 1` to node `l`.

use crate::energy::EnergyKind;
use crate::error::{Error, Result};
use crate::layers::{Activation, Convention, Init};
use serde::{Deserialize, Serialize};

/// One value node of a built network.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// Name (`"0"`, `"1"`, ... in a chain).
    pub name: String,
    /// Features per example.
    pub size: usize,
    /// Index into the network's energies, if the node has a prediction.
    pub energy: Option<usize>,
    /// Activation applied to the sum of the in-edges (nodes whose edges are linear maps).
    pub act: Option<Activation>,
}

/// One edge of a built network.
#[derive(Clone, Debug, PartialEq)]
pub struct EdgeInfo {
    /// Name (checkpoint keys `edges.{name}.weight`; `"0"`, `"1"`, ... in a chain).
    pub name: String,
    /// Source node (`None`: a prior mean, no source).
    pub src: Option<usize>,
    /// Target node.
    pub dst: usize,
}

/// Nodes, edges, the two data nodes of training, and the derived orderings.
#[derive(Clone, Debug, PartialEq)]
pub struct Topology {
    /// The nodes.
    pub nodes: Vec<NodeInfo>,
    /// The edges, in the order of the network's layers.
    pub edges: Vec<EdgeInfo>,
    /// The node clamped to the batch inputs in training.
    pub input: usize,
    /// The node clamped to (or nudged toward) the batch targets, read as the prediction.
    pub output: usize,
    /// In-edges of each node.
    pub in_edges: Vec<Vec<usize>>,
    /// Out-edges of each node.
    pub out_edges: Vec<Vec<usize>>,
    /// Every node in topological order when the graph (priors aside) is acyclic, else empty.
    pub order: Vec<usize>,
    /// Each node's level (see [`Topology::levels`]), computed once.
    pub level: Vec<Option<usize>>,
}

impl Topology {
    /// A topology from nodes and edges; derives the edge lists and the order.
    ///
    /// # Errors
    /// [`Error::Config`] on an edge naming a missing node.
    pub fn new(
        nodes: Vec<NodeInfo>,
        edges: Vec<EdgeInfo>,
        input: usize,
        output: usize,
    ) -> Result<Self> {
        let n = nodes.len();
        let mut in_edges = vec![Vec::new(); n];
        let mut out_edges = vec![Vec::new(); n];
        for (e, edge) in edges.iter().enumerate() {
            if edge.dst >= n || edge.src.is_some_and(|s| s >= n) {
                return Err(Error::config(
                    "model.edges",
                    format!("edge `{}`: no such node", edge.name),
                ));
            }
            in_edges[edge.dst].push(e);
            if let Some(s) = edge.src {
                out_edges[s].push(e);
            }
        }
        let mut t = Self {
            nodes,
            edges,
            input,
            output,
            in_edges,
            out_edges,
            order: Vec::new(),
            level: Vec::new(),
        };
        t.order = t.topological_order().unwrap_or_default();
        t.level = t.levels();
        Ok(t)
    }

    /// The chain `0 -> 1 -> ... -> L` of these widths, node `l` with energy `l - 1`.
    pub fn chain(sizes: &[usize]) -> Self {
        let nodes = sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| NodeInfo {
                name: i.to_string(),
                size,
                energy: i.checked_sub(1),
                act: None,
            })
            .collect();
        let edges = (1..sizes.len())
            .map(|l| EdgeInfo { name: (l - 1).to_string(), src: Some(l - 1), dst: l })
            .collect();
        Self::new(nodes, edges, 0, sizes.len() - 1).expect("a chain names existing nodes")
    }

    /// Whether this is the chain `0 -> 1 -> ... -> L` (input 0, output L).
    pub fn is_chain(&self) -> bool {
        let l = self.nodes.len().saturating_sub(1);
        self.input == 0
            && self.output == l
            && self.edges.len() == l
            && self.edges.iter().enumerate().all(|(e, ed)| ed.src == Some(e) && ed.dst == e + 1)
            && self.nodes.iter().all(|n| n.act.is_none())
    }

    /// Whether the graph has no cycle (prior edges have no source and never close one).
    pub fn is_dag(&self) -> bool {
        self.order.len() == self.nodes.len()
    }

    /// Index of the node called `name`.
    pub fn node(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// Each node's level: the length of the longest path from it to the output (`None` for
    /// nodes with no path to it). Only meaningful on a DAG.
    pub fn levels(&self) -> Vec<Option<usize>> {
        let mut level = vec![None; self.nodes.len()];
        level[self.output] = Some(0);
        for &i in self.order.iter().rev() {
            for &e in &self.out_edges[i] {
                if let Some(l) = level[self.edges[e].dst] {
                    level[i] = Some(level[i].map_or(l + 1, |m: usize| m.max(l + 1)));
                }
            }
        }
        level
    }

    /// Whether every edge on a path to the output joins adjacent levels (every path from a
    /// node to the output has the same length): the condition of Z-IL on a DAG.
    pub fn is_levelled(&self) -> bool {
        let level = &self.level;
        self.is_dag()
            && self.edges.iter().all(|e| match (e.src.and_then(|s| level[s]), level[e.dst]) {
                (Some(a), Some(b)) => a == b + 1,
                _ => true,
            })
    }

    /// Kahn's algorithm; `None` if there is a cycle.
    fn topological_order(&self) -> Option<Vec<usize>> {
        let n = self.nodes.len();
        let mut indeg: Vec<usize> = (0..n)
            .map(|i| self.in_edges[i].iter().filter(|&&e| self.edges[e].src.is_some()).count())
            .collect();
        let mut order: Vec<usize> = (0..n).filter(|&i| indeg[i] == 0).collect();
        let mut head = 0;
        while head < order.len() {
            let i = order[head];
            head += 1;
            for &e in &self.out_edges[i] {
                let d = self.edges[e].dst;
                indeg[d] -= 1;
                if indeg[d] == 0 {
                    order.push(d);
                }
            }
        }
        (order.len() == n).then_some(order)
    }

    /// Fills `order` with the nodes a forward pass can compute, in order, given which nodes
    /// are `known` (their values set from data): a node is computable once every source of
    /// its in-edges is known or computed. `state` is scratch (reused, so no allocation once
    /// sized): bit 1 = value available, bit 2 = placed in `order`.
    pub fn forward_order(&self, known: &[bool], order: &mut Vec<usize>, state: &mut Vec<u8>) {
        let n = self.nodes.len();
        order.clear();
        state.clear();
        state.extend(known.iter().map(|&k| k as u8));
        // Sweeps in node order: a chain needs one, any graph at most one per node.
        let mut progress = true;
        while progress {
            progress = false;
            for i in 0..n {
                if state[i] & 2 != 0 || self.in_edges[i].is_empty() {
                    continue;
                }
                let ready = self.in_edges[i]
                    .iter()
                    .all(|&e| self.edges[e].src.is_none_or(|s| s != i && state[s] & 1 != 0));
                if ready {
                    order.push(i);
                    state[i] |= 3;
                    progress = true;
                }
            }
        }
    }
}

/// How a node is treated by one inference call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Role {
    /// Inferred; initialised by the forward pass where possible.
    #[default]
    Free,
    /// Fixed to data.
    Clamped,
    /// Entries where the mask is 1 fixed to data, the rest inferred.
    Masked,
    /// Initialised from data, then inferred ("query by initialisation").
    Init,
}

impl Role {
    /// Whether inference moves (some of) the node's values.
    pub fn moves(self) -> bool {
        self != Role::Clamped
    }

    /// Whether the node's values are set from data before inference.
    pub fn known(self) -> bool {
        self != Role::Free
    }
}

/// How free nodes that no forward pass reaches are initialised.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum FreeInit {
    /// Zeros.
    #[default]
    Zeros,
    /// `N(0, std^2)` from a RNG seeded per call.
    Normal {
        /// Standard deviation.
        std: f64,
    },
}

/// A node as written in `[[model.nodes]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "NodeToml")]
pub struct NodeSpec {
    /// Unique name.
    pub name: String,
    /// Features per example (`C·H·W` for an image node).
    pub size: usize,
    /// Image shape `[C, H, W]` of the node's values, stored per example in HWC order (the
    /// layout convolution edges read and write); `None` for a feature vector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shape: Option<[usize; 3]>,
    /// Energy of the node's prediction error (default gaussian).
    pub energy: EnergyKind,
    /// Precision of the energy (default 1).
    pub precision: f64,
    /// Activation of the prediction: inside each in-edge (`w_f`: `W f(x_src)`) or of the sum
    /// (`f_w`: `f(sum W x_src + b)`); default identity.
    pub activation: Activation,
    /// Prediction of a node without in-edges: `none` (no energy), `zero`, or `learned`.
    pub prior: Prior,
}

/// A node as written in TOML: `size`, or `shape` (whose product is the size), or both.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NodeToml {
    name: String,
    #[serde(default)]
    size: Option<usize>,
    #[serde(default)]
    shape: Option<[usize; 3]>,
    #[serde(default)]
    energy: EnergyKind,
    #[serde(default = "one")]
    precision: f64,
    #[serde(default = "identity")]
    activation: Activation,
    #[serde(default)]
    prior: Prior,
}

impl TryFrom<NodeToml> for NodeSpec {
    type Error = String;

    fn try_from(n: NodeToml) -> std::result::Result<Self, String> {
        let size = match (n.size, n.shape) {
            (Some(s), Some(sh)) if s != sh.iter().product::<usize>() => {
                return Err(format!(
                    "node `{}`: size {s} differs from the product of shape {sh:?}",
                    n.name
                ))
            }
            (Some(s), _) => s,
            (None, Some(sh)) => sh.iter().product(),
            (None, None) => return Err(format!("node `{}`: give `size` or `shape`", n.name)),
        };
        Ok(Self {
            name: n.name,
            size,
            shape: n.shape,
            energy: n.energy,
            precision: n.precision,
            activation: n.activation,
            prior: n.prior,
        })
    }
}

impl NodeSpec {
    /// A Gaussian node of unit precision, no prior, with this name, width and activation.
    pub fn new(name: &str, size: usize, activation: Activation) -> Self {
        Self {
            name: name.into(),
            size,
            shape: None,
            energy: EnergyKind::Gaussian,
            precision: 1.0,
            activation,
            prior: Prior::None,
        }
    }

    /// An image node `[C, H, W]` (HWC per example) with this name and activation.
    pub fn image(name: &str, shape: [usize; 3], activation: Activation) -> Self {
        Self { shape: Some(shape), ..Self::new(name, shape.iter().product(), activation) }
    }

    /// The node's image shape; a feature vector of width `d` is `[d, 1, 1]`.
    pub fn chw(&self) -> [usize; 3] {
        self.shape.unwrap_or([self.size, 1, 1])
    }
}

impl EdgeSpec {
    /// A dense edge `from -> to` with the default name and bias.
    pub fn new(from: &str, to: &str) -> Self {
        Self {
            from: from.into(),
            to: to.into(),
            name: None,
            kind: dense(),
            bias: None,
            kernel: None,
            stride: None,
            padding: None,
            dilation: None,
            output_padding: None,
            pool: None,
        }
    }

    /// An edge of `kind` with a `kernel`, other settings default.
    pub fn with_kernel(from: &str, to: &str, kind: &str, kernel: usize) -> Self {
        Self { kind: kind.into(), kernel: Some(kernel), ..Self::new(from, to) }
    }
}

fn identity() -> Activation {
    Activation::Identity
}

fn one() -> f64 {
    1.0
}

/// The prediction of a node without in-edges.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Prior {
    /// No prediction and no energy (a pure data node).
    #[default]
    None,
    /// A zero mean.
    Zero,
    /// A learned mean (checkpoint key `edges.prior.{node}.bias`).
    Learned,
}

/// An edge as written in `[[model.edges]]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EdgeSpec {
    /// Source node.
    pub from: String,
    /// Target node.
    pub to: String,
    /// Name (default `{from}->{to}`).
    #[serde(default)]
    pub name: Option<String>,
    /// Layer kind: `dense`, `conv`, `conv_transpose`, `max_pool`, `avg_pool`, `flatten`
    /// (a reshape between nodes of one size) or `identity`.
    #[serde(default = "dense")]
    pub kind: String,
    /// Whether the edge adds a bias (default: only the first in-edge of a node has one).
    #[serde(default)]
    pub bias: Option<bool>,
    /// Square kernel (conv, conv_transpose) or window (pools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel: Option<usize>,
    /// Stride (default 1; pools: the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
    /// Zero padding on each side (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub padding: Option<usize>,
    /// Dilation (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dilation: Option<usize>,
    /// Extra rows and columns at the bottom/right of a transposed convolution (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_padding: Option<usize>,
    /// Pooling after a convolution's activation: `{ kind = "max" | "avg", size, stride }`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolSpec>,
}

/// Pooling applied at the end of a convolution edge (PCX's conv → activation → pool block).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolSpec {
    /// `max` or `avg`.
    pub kind: crate::layers::PoolKind,
    /// Window.
    pub size: usize,
    /// Stride (default: the window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stride: Option<usize>,
}

fn dense() -> String {
    "dense".into()
}

/// Builder settings shared by every edge of a graph.
#[derive(Clone, Copy, Debug)]
pub struct EdgeDefaults {
    /// Prediction convention.
    pub convention: Convention,
    /// Whether in-edges have a bias by default.
    pub bias: bool,
    /// Weight initialiser.
    pub init: Init,
}

/// Checks a graph spec (`model.nodes`, `model.edges`, `model.input`, `model.output`).
///
/// # Errors
/// [`Error::Config`] naming the key: no nodes, a repeated or unknown name, a zero width, a
/// non-positive precision, an unknown edge kind.
pub fn validate_spec(spec: &crate::net::MlpSpec) -> Result<()> {
    if spec.nodes.is_empty() {
        return Err(Error::config("model.nodes", "edges given but no nodes"));
    }
    let names: Vec<&str> = spec.nodes.iter().map(|n| n.name.as_str()).collect();
    for (k, n) in spec.nodes.iter().enumerate() {
        let key = format!("model.nodes[{k}]");
        if names[..k].contains(&n.name.as_str()) {
            return Err(Error::config(key, format!("node name `{}` used twice", n.name)));
        }
        if n.size == 0 {
            return Err(Error::config(format!("{key}.size"), "must be > 0"));
        }
        if !(n.precision.is_finite() && n.precision > 0.0) {
            return Err(Error::config(
                format!("{key}.precision"),
                format!("must be positive, found {}", n.precision),
            ));
        }
    }
    let known = |key: String, name: &str| {
        if names.contains(&name) {
            Ok(())
        } else {
            Err(Error::config(key, format!("unknown node `{name}`; nodes: {}", names.join(", "))))
        }
    };
    let mut edge_names: Vec<String> = Vec::new();
    for (k, e) in spec.edges.iter().enumerate() {
        known(format!("model.edges[{k}].from"), &e.from)?;
        known(format!("model.edges[{k}].to"), &e.to)?;
        let shape = |n: &str| spec.nodes.iter().find(|x| x.name == n).map(NodeSpec::chw);
        let (src, dst) = (shape(&e.from).expect("known"), shape(&e.to).expect("known"));
        crate::layers::edge::plan(e, src, dst).map_err(|m| {
            Error::config(format!("model.edges[{k}]"), format!("`{}`: {m}", edge_name(e)))
        })?;
        let name = edge_name(e);
        if edge_names.contains(&name) {
            return Err(Error::config(
                format!("model.edges[{k}]"),
                format!("edge `{name}` given twice"),
            ));
        }
        edge_names.push(name);
    }
    if let Some(i) = &spec.input {
        known("model.input".into(), i)?;
    }
    if let Some(o) = &spec.output {
        known("model.output".into(), o)?;
    }
    let (inp, out) = io_names(spec);
    if inp == out {
        return Err(Error::config("model.output", "the input and output nodes must differ"));
    }
    let out_node = spec.nodes.iter().find(|n| n.name == out).expect("checked");
    let has_in = spec.edges.iter().any(|e| e.to == out);
    if !has_in && out_node.prior == Prior::None {
        return Err(Error::config(
            "model.output",
            format!("output node `{out}` has no in-edge and no prior: nothing predicts it"),
        ));
    }
    Ok(())
}

fn edge_name(e: &EdgeSpec) -> String {
    e.name.clone().unwrap_or_else(|| format!("{}->{}", e.from, e.to))
}

fn io_names(spec: &crate::net::MlpSpec) -> (String, String) {
    let first = spec.nodes.first().map(|n| n.name.clone()).unwrap_or_default();
    let last = spec.nodes.last().map(|n| n.name.clone()).unwrap_or_default();
    (spec.input.clone().unwrap_or(first), spec.output.clone().unwrap_or(last))
}

/// The levelled graph (reverse differentiation, AAAI 2022): every edge `u -> v` that skips
/// levels gets identity nodes `u~l` in between (shared by the edges leaving `u`), so every path
/// to the output has the same length; the weighted edge keeps its name and reads from the
/// identity node next to `v`, and the identity nodes carry `u`'s activation, so forward pass
/// and gradients are unchanged. Already levelled graphs come back as they are.
///
/// # Errors
/// [`Error::Config`] if the graph has a cycle.
pub fn level(spec: &crate::net::MlpSpec) -> Result<crate::net::MlpSpec> {
    let topo = build::<f64>(&crate::net::MlpSpec { level: false, ..spec.clone() }, 0)?.topo;
    if !topo.is_dag() {
        return Err(Error::config("model.level", "only an acyclic graph can be levelled"));
    }
    let lv = topo.levels();
    let mut out = spec.clone();
    let (inp, outp) = io_names(spec);
    (out.input, out.output) = (Some(inp), Some(outp));
    out.level = false;
    out.edges.clear();
    let mut made: Vec<String> = Vec::new();
    for e in &spec.edges {
        let (u, v) = (topo.node(&e.from).expect("built"), topo.node(&e.to).expect("built"));
        let (Some(lu), Some(lv_)) = (lv[u], lv[v]) else {
            out.edges.push(e.clone());
            continue;
        };
        if lu == lv_ + 1 {
            out.edges.push(e.clone());
            continue;
        }
        let src = &spec.nodes[u];
        let mut prev = src.name.clone();
        for l in (lv_ + 1..lu).rev() {
            let name = format!("{}~{l}", src.name);
            if !made.contains(&name) {
                made.push(name.clone());
                out.nodes.push(NodeSpec {
                    name: name.clone(),
                    size: src.size,
                    shape: src.shape,
                    energy: EnergyKind::Gaussian,
                    precision: 1.0,
                    prior: Prior::None,
                    ..src.clone()
                });
                out.edges.push(EdgeSpec {
                    name: Some(format!("{prev}=>{name}")),
                    kind: "identity".into(),
                    bias: Some(false),
                    ..EdgeSpec::new(&prev, &name)
                });
            }
            prev = name;
        }
        out.edges.push(EdgeSpec { from: prev, name: Some(edge_name(e)), ..e.clone() });
    }
    Ok(out)
}

/// Builds the network a graph spec describes, weights from a RNG seeded with `seed`.
///
/// In `w_f` an edge reads its source through the source node's activation (`W f(x_src)`);
/// in `f_w` a node with one in-edge has it apply the node's activation (`f(W x + b)`), and
/// a node with several sums their linear maps and then applies its own activation.
///
/// # Errors
/// [`Error::Config`] if the spec is invalid.
pub fn build<T: crate::tensor::Scalar>(
    spec: &crate::net::MlpSpec,
    seed: u64,
) -> Result<crate::net::Net<T>> {
    use crate::layers::edge::{EdgeBuild, Plan};
    use crate::layers::{Dense, IdentityMap, Layer, PriorMean};
    use rand::SeedableRng;
    validate_spec(spec)?;
    if spec.level {
        return build(&level(spec)?, seed);
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let idx = |name: &str| spec.nodes.iter().position(|n| n.name == name).expect("validated");
    let n = spec.nodes.len();
    let mut in_deg = vec![0usize; n];
    for e in &spec.edges {
        in_deg[idx(&e.to)] += 1;
    }
    for (i, node) in spec.nodes.iter().enumerate() {
        if node.prior == Prior::Learned {
            in_deg[i] += 1;
        }
    }
    let fw = spec.convention == Convention::Fw;
    let mut nodes = Vec::with_capacity(n);
    let mut energies = Vec::new();
    let out_name = io_names(spec).1;
    for (i, s) in spec.nodes.iter().enumerate() {
        let predicted = in_deg[i] > 0 || s.prior != Prior::None;
        let energy = predicted.then(|| {
            energies.push(s.energy.build_node::<T>(s.precision, s.name == out_name));
            energies.len() - 1
        });
        let act = (fw && in_deg[i] > 1).then_some(s.activation);
        nodes.push(NodeInfo { name: s.name.clone(), size: s.size, energy, act });
    }
    let mut edges = Vec::new();
    let mut layers: Vec<Box<dyn Layer<T>>> = Vec::new();
    let mut first_in = vec![true; n];
    for (i, s) in spec.nodes.iter().enumerate() {
        if s.prior == Prior::Learned {
            edges.push(EdgeInfo { name: format!("prior.{}", s.name), src: None, dst: i });
            layers.push(Box::new(PriorMean::<T>::new(s.size)));
            first_in[i] = false;
        }
    }
    for e in &spec.edges {
        let (src, dst) = (idx(&e.from), idx(&e.to));
        if e.kind == "identity" {
            edges.push(EdgeInfo { name: edge_name(e), src: Some(src), dst });
            layers.push(Box::new(IdentityMap { d: spec.nodes[src].size }));
            first_in[dst] = false;
            continue;
        }
        let act = match spec.convention {
            Convention::Wf => spec.nodes[src].activation,
            Convention::Fw if nodes[dst].act.is_some() => Activation::Identity,
            Convention::Fw => spec.nodes[dst].activation,
        };
        let plan = crate::layers::edge::plan(e, spec.nodes[src].chw(), spec.nodes[dst].chw())
            .map_err(|m| Error::config("model.edges", m))?;
        let has_params = matches!(plan, Plan::Dense | Plan::Conv { .. });
        let bias = has_params && e.bias.unwrap_or(spec.bias && first_in[dst]);
        if has_params {
            first_in[dst] = false;
        }
        let d = (spec.nodes[src].size, spec.nodes[dst].size);
        let how = EdgeBuild { act, conv: spec.convention, bias, init: spec.init, d };
        let layer: Box<dyn Layer<T>> = match plan {
            Plan::Dense if src == dst => Box::new(
                Dense::<T>::new(d.0, d.1, act, spec.convention, bias, spec.init, &mut rng)
                    .with_zero_diag(),
            ),
            plan => plan.build(how, &mut rng),
        };
        edges.push(EdgeInfo { name: edge_name(e), src: Some(src), dst });
        layers.push(layer);
    }
    let (inp, out) = io_names(spec);
    let topo = Topology::new(nodes, edges, idx(&inp), idx(&out))?;
    crate::net::Net::from_graph(topo, layers, energies)
}
