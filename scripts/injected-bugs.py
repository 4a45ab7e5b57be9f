#!/usr/bin/env python3
"""Injects, one at a time, the single-line bugs a review found the suite blind to, and checks
that the test named for each one now fails (issue 18; the table is in docs/mutants.md).

    python3 scripts/injected-bugs.py            # every bug
    python3 scripts/injected-bugs.py 3 7        # only these (1-based)

Works on a copy of the tree under $TMPDIR (the checkout is never modified), with the usual test
profile and a target folder of its own beside the copy (cargo names a workspace's artefacts
without its path, so sharing the checkout's target/ would overwrite its test binaries; copy
target/debug/{deps,build,.fingerprint} there first to skip building the dependencies).
Exit status 0 when every injected bug is caught; the log of each run is kept in bug-logs/
beside the copy.
"""

import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# (what, file, original text, buggy text, test target, test name filter)
BUGS = [
    ("shard reduction drops the second shard",
     "crates/prospect/src/net.rs",
     "Cpu.zip3(g, &first.grads[l][p], &second.grads[l][p], |_, a, b| a + b);",
     "Cpu.zip3(g, &first.grads[l][p], &second.grads[l][p], |_, a, _b| a);",
     "threads", "sharded_"),
    ("AdamW decay applied without the learning rate",
     "crates/prospect/src/tensor/cpu.rs",
     "*pp -= lr * (mh / (vh.sqrt() + eps) + wd * *pp);",
     "*pp -= lr * (mh / (vh.sqrt() + eps)) + wd * *pp;",
     "oracles", "adam_and_adamw"),
    ("Adam without bias corrections",
     "crates/prospect/src/optim.rs",
     "(T::of(1.0 - cfg.beta1.powi(t)), T::of(1.0 - cfg.beta2.powi(t))),",
     "(T::of(1.0), T::of(1.0)),",
     "oracles", "adam_and_adamw"),
    ("mean reduction divides by B squared",
     "crates/prospect/src/optim.rs",
     "Reduction::Mean => 1.0 / batch.max(1) as f64,",
     "Reduction::Mean => 1.0 / (batch * batch).max(1) as f64,",
     "oracles", "sgd_mean_and_sum"),
    ("momentum velocity sign flipped (nodes and weights share the kernel)",
     "crates/prospect/src/tensor/cpu.rs",
     "*vel = momentum * *vel + gs;",
     "*vel = gs - momentum * *vel;",
     "oracles", "momentum"),
    ("Gaussian precision ignored in energy and gradients",
     "crates/prospect/src/energy/gaussian.rs",
     "let p = T::of(self.precision);\n        let half_p = 0.5 * self.precision;",
     "let p = T::one();\n        let half_p = 0.5;",
     "oracles", "precision"),
    ("Laplace gradient sign flipped",
     "crates/prospect/src/energy/laplace.rs",
     "(-s, s, (p * e.abs()).f64())",
     "(s, -s, (p * e.abs()).f64())",
     "oracles", "hidden_energies"),
    ("iPC keeps the layer-1 prediction of the old weights",
     "crates/prospect/src/learn/ipc.rs",
     "net.predict_from(ws, 1); // every weight changed at the last step",
     "net.predict_from(ws, 2);",
     "oracles", "pc_and_ipc"),
    ("halving on energy rise switched off",
     "crates/prospect/src/infer.rs",
     "gamma *= 0.5;",
     "gamma *= 1.0;",
     "oracles", "halving"),
    ("early stop switched off",
     "crates/prospect/src/infer.rs",
     "if cfg.tol > 0.0 && (prev - e).abs() <= cfg.tol * prev.abs() {",
     "if cfg.tol < 0.0 && (prev - e).abs() <= cfg.tol * prev.abs() {",
     "oracles", "early_stop"),
    ("evaluation loss doubled (trainer)",
     "crates/prospect/src/train.rs",
     "loss: loss / n.max(1) as f64,",
     "loss: 2.0 * loss / n.max(1) as f64,",
     "oracles", "trainer_evaluation"),
    ("evaluation loss doubled (Net::evaluate)",
     "crates/prospect/src/net.rs",
     "Ok((per.iter().sum(), count_correct(&mu, y)))",
     "Ok((2.0 * per.iter().sum::<f64>(), count_correct(&mu, y)))",
     "oracles", "reported_losses"),
    ("an allocation in the multi-threaded shard path",
     "crates/prospect/src/learn/mod.rs",
     "let (a, b) = shards.split_at_mut(n / 2);",
     "std::hint::black_box(vec![0u8; 8]);\n            let (a, b) = shards.split_at_mut(n / 2);",
     "alloc", "steady_state"),
    ("BP's input VJP accumulates into a stale buffer",
     "crates/prospect/src/learn/bp.rs",
     "let accum = if ws.touched[s] { Accum::Add } else { Accum::Replace };",
     "let accum = Accum::Add;",
     "oracles", "bp_gradients"),
    # The graph engine (issue 11).
    ("a node's later in-edges overwrite the earlier ones instead of adding",
     "crates/prospect/src/infer.rs",
     "let accum = if k == 0 { Accum::Replace } else { Accum::Add };",
     "let accum = Accum::Replace;",
     "graph", "local_gradients_on_a_cyclic_graph"),
    ("a masked node's known entries move with inference",
     "crates/prospect/src/infer.rs",
     "if ws.roles[i] == Role::Masked {",
     "if false && ws.roles[i] == Role::Masked {",
     "graph", "queries_clamp_mask"),
    ("a self-edge's diagonal learns",
     "crates/prospect/src/layers/dense.rs",
     "gw.row_mut(i)[i] = T::zero();",
     "gw.row_mut(i)[i] += T::zero();",
     "graph", "local_gradients_on_a_cyclic_graph"),
    ("bp skips the activation of a node with several in-edges",
     "crates/prospect/src/learn/bp.rs",
     "Cpu.mul(&mut ws.ndelta[i], Accum::Replace, &ws.g[i], &ws.nda[i]);",
     "ws.ndelta[i].copy_from(&ws.g[i]);",
     "graph", "backprop_on_a_dag"),
    ("zil updates each level's edges one step late",
     "crates/prospect/src/learn/zil.rs",
     "if levels[edge.dst] == Some(t) {",
     "if levels[edge.dst] == Some(t + 1) {",
     "graph", "zil_on_a_levelled_dag"),
    ("UHN skips the sum-normalisation after the separation",
     "crates/prospect/src/memory/uhn.rs",
     'normalise(&mut s, "after")?;',
     "let _ = 0;",
     "memory", "uhn_weights_are"),
    ("implicit covariance recall drops the f'(x) W^T e term",
     "crates/prospect/src/memory/covpc.rs",
     "*dv = -*dv + fv * bv;",
     "*dv = -*dv + 0.0 * fv * bv;",
     "memory", "implicit_learning_and_recall"),
    ("generative PCN mask recall lets the known pixels move",
     "crates/prospect/src/memory/gpcn.rs",
     "self.recall_once(&mut ws, Given::Masked { data: &q, mask })?;",
     "self.recall_once(&mut ws, Given::Init(&q))?;",
     "memory", "stored_images_are_fixed_points"),
    ("bottom mask rounds the kept rows instead of truncating",
     "crates/prospect/src/memory/mod.rs",
     "let keep = (shape.height as f64 * (1.0 - fraction)).floor() as usize;",
     "let keep = (shape.height as f64 * (1.0 - fraction)).round() as usize;",
     "memory", "corruptions_hide"),
    ("eqprop forgets to subtract the free phase",
     "crates/prospect/src/learn/eqprop.rs",
     "*a = (*a - b) * s;",
     "*a *= s + b * T::zero();",
     "oracles", "eqprop"),
    ("centred eqprop divides by beta instead of 2 beta",
     "crates/prospect/src/learn/eqprop.rs",
     "let s = T::of(1.0 / (hi - lo));",
     "let s = T::of(1.0 / hi);",
     "oracles", "eqprop"),
    ("a weighted output's error is not scaled by beta",
     "crates/prospect/src/infer.rs",
     "ws.g[i].data_mut().iter_mut().for_each(|v| *v *= b);",
     "ws.g[i].data_mut().iter_mut().for_each(|v| *v *= T::one() + b * T::zero());",
     "oracles", "hidden_energies"),
    ("categorical dE/dx on logits drops the -KL centring",
     "crates/prospect/src/energy/categorical.rs",
     "pi * lp.exp() * ((lp - lq) - kl)",
     "pi * lp.exp() * (lp - lq)",
     "oracles", "kl_energies"),
    ("Bernoulli dE/dmu sign flipped",
     "crates/prospect/src/energy/bernoulli.rs",
     "*g = T::of(pi * (q - p));",
     "*g = T::of(pi * (p - q));",
     "oracles", "kl_energies"),
    ("closed-form equilibrium ignores the upper layer's precision in the diagonal",
     "crates/prospect/src/experiments/linear_equilibrium.rs",
     "a[(o + i) * n + o + j] += pu * s;",
     "a[(o + i) * n + o + j] += s;",
     "real_data", "target_prop"),
    ("chl runs its clamped phase at beta 0.5",
     "crates/prospect/src/learn/chl.rs",
     "beta: Some(1.0),",
     "beta: Some(0.5),",
     "oracles", "chl_equals"),
    ("PCTrainer timing counts only strict energy rises",
     "crates/prospect/src/infer.rs",
     "let rose = t > 0 && e >= prev;",
     "let rose = t > 0 && e > prev;",
     "oracles", "pctrainer_discount_timing"),
    ("PCTrainer timing never cuts after the step",
     "crates/prospect/src/infer.rs",
     "if cfg.halve_on_rise && after && rose {",
     "if cfg.halve_on_rise && after && rose && t > cfg.steps {",
     "oracles", "pctrainer_discount_timing"),
    ("DiagGaussian dE/dx without the unit's precision",
     "crates/prospect/src/energy/diag_gaussian.rs",
     "gx[j] = T::of(p) * (xr[j] - mr[j]);",
     "gx[j] = xr[j] - mr[j];",
     "oracles", "kl_energies"),
    ("continual authors' units read by task position instead of class",
     "crates/prospect/src/experiments/continual.rs",
     "*l = units[classes[*l as usize] as usize];",
     "*l = units[*l as usize];",
     "experiments", "continual_authors_units"),
    ("continual authors' score reads every epoch",
     "crates/prospect/src/experiments/continual.rs",
     "let m = |v: &Vec<f64>| mean(&v[..epochs.min(v.len())]);",
     "let m = |v: &Vec<f64>| mean(v);",
     "experiments", "continual_authors_score"),
    ("concept-drift pretraining on 0/1 targets",
     "crates/prospect/src/experiments/concept_drift.rs",
     "pre.target_min = -1.0;",
     "pre.target_min = 0.0;",
     "lib", "authors_pretraining"),
    ("learner ignores target_min",
     "crates/prospect/src/experiments/util.rs",
     "self.yb.fill(self.target_min);",
     "self.yb.fill(0.0);",
     "lib", "authors_pretraining"),
    ("concept-drift redraws one iteration late",
     "crates/prospect/src/experiments/concept_drift.rs",
     "if it % PERIOD == 0 {",
     "if it % PERIOD == 1 {",
     "lib", "authors_drift"),
    ("zero-product skipping holds a node still when one of its children's errors is live",
     "crates/prospect/src/infer.rs",
     ".all(|&e| ws.quiet[self.topo.edges[e].dst]);",
     ".any(|&e| ws.quiet[self.topo.edges[e].dst]);",
     "graph", "skipping_zero_products"),
    ("zero-product skipping skips the VJP of a live error",
     "crates/prospect/src/infer.rs",
     "if skip_quiet && ws.quiet[edge.dst] {",
     "if skip_quiet && !ws.quiet[edge.dst] {",
     "graph", "skipping_zero_products"),
    ("zero-product skipping leaves a node quiet after its prediction changed",
     "crates/prospect/src/infer.rs",
     "                self.predict_node(ws, i);\n                ws.quiet[i] = false;",
     "                self.predict_node(ws, i);",
     "graph", "skipping_zero_products"),
    ("zero-product skipping never marks a node quiet (nothing skipped)",
     "crates/prospect/src/infer.rs",
     "on && ws.roles[i] == Role::Free && zero_grad && ws.fwd_order.contains(&i);",
     "on && ws.roles[i] == Role::Free && zero_grad && !ws.fwd_order.contains(&i);",
     "oracles", "inference_skips_exactly"),
]


def main() -> int:
    chosen = [int(a) for a in sys.argv[1:]] or list(range(1, len(BUGS) + 1))
    work = os.path.join(tempfile.gettempdir(), "prospect-injected-bugs")
    if os.path.exists(work):
        shutil.rmtree(os.path.join(work, "src-copy"), ignore_errors=True)
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "src-copy")
    def skip(folder, names):
        top = os.path.abspath(folder) == ROOT
        return [n for n in names if n in ("target", ".git") or n.startswith("mutants.out")
                or (top and n in ("data", "runs"))]

    shutil.copytree(ROOT, src, ignore=skip)
    os.symlink(os.path.join(ROOT, "data"), os.path.join(src, "data"))
    logs = os.path.join(work, "bug-logs")
    os.makedirs(logs, exist_ok=True)
    # PROSPECT_BUGS_TARGET: a target folder to build in instead (e.g. the checkout's own, whose
    # dependencies are built; its test binaries are then rebuilt by the next `cargo test`).
    target = os.environ.get("PROSPECT_BUGS_TARGET") or os.path.join(work, "target")
    env = dict(os.environ, CARGO_TARGET_DIR=target)
    missed = []
    for i in chosen:
        what, path, old, new, target, name = BUGS[i - 1]
        full = os.path.join(src, path)
        orig = open(full).read()
        if orig.count(old) != 1:
            print(f"{i:2} ERROR: the original text is not found once in {path}: {old!r}")
            return 2
        open(full, "w").write(orig.replace(old, new))
        try:
            which = ["--lib"] if target == "lib" else ["--test", target]
            cmd = ["cargo", "test", "-p", "prospect", *which, "--", name]
            r = subprocess.run(cmd, cwd=src, env=env, capture_output=True, text=True)
        finally:
            open(full, "w").write(orig)
        out = r.stdout + r.stderr
        open(os.path.join(logs, f"bug-{i:02}.log"), "w").write(out)
        if "error[E" in out or "could not compile" in out:
            print(f"{i:2} ERROR: the injected bug does not compile ({what})")
            return 2
        failed = [l.split()[1] for l in out.splitlines() if l.startswith("test ") and l.endswith("FAILED")]
        ran = [l for l in out.splitlines() if l.startswith("test ") and (l.endswith(" ok") or l.endswith("FAILED"))]
        if r.returncode != 0 and failed:
            print(f"{i:2} caught  {what}: {target}::{', '.join(failed)}")
        else:
            print(f"{i:2} MISSED  {what} ({len(ran)} tests of {target} matching '{name}' passed)")
            missed.append(i)
    print(f"{len(chosen) - len(missed)} caught, {len(missed)} missed")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
