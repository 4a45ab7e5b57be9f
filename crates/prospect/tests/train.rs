//! Configs (errors that name keys, presets, layering, `--set` overrides) and the training
//! loop (metrics, run directories, exact resume).

use prospect::checkpoint::{self, MODEL_FILE, OPTIMIZER_FILE, OPTIMIZER_PREV_FILE};
use prospect::config::{self, RunConfig, PRESETS};
use prospect::train::{
    read_metrics, EpochMetrics, EvalSet, Run, Trainer, CONFIG_FILE, METRICS_FILE,
};
use prospect::EnergyKind;
use prospect::{Error, NodeOptim, OptimKind, OutputMode};
use std::fs;
use std::path::Path;

/// The config error of resolving `sets` over the default preset: (key, message).
fn set_err(sets: &[&str]) -> (String, String) {
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    match config::resolve(None, None, &sets).unwrap_err() {
        Error::Config { key, msg } => (key, msg),
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn unknown_keys_are_named_with_the_valid_keys_of_their_table() {
    let (key, msg) = set_err(&["inference.stepz=3"]);
    assert_eq!(key, "inference.stepz");
    assert!(msg.contains("unknown key `stepz`"), "{msg}");
    assert!(msg.contains("valid keys of [inference]: steps, gamma, optimizer"), "{msg}");

    let (key, msg) = set_err(&["optimizer.schedule.warmupp=0.2"]);
    assert_eq!(key, "optimizer.schedule.warmupp");
    assert!(msg.contains("kind, every, factor, warmup, final_factor"), "{msg}");

    let (key, msg) = set_err(&["bogus=1"]);
    assert_eq!(key, "bogus");
    assert!(msg.contains("valid top-level keys: preset, algo, data, model"), "{msg}");
}

#[test]
fn wrong_types_and_names_are_errors_naming_the_key() {
    let (key, msg) = set_err(&["inference.steps=many"]);
    assert_eq!(key, "inference.steps");
    assert!(msg.contains("invalid type: string \"many\""), "{msg}");

    let (key, msg) = set_err(&["optimizer.kind=lion"]);
    assert_eq!(key, "optimizer.kind");
    assert!(msg.contains("unknown value `lion`; valid: sgd, momentum, adam, adamw"), "{msg}");

    let (key, msg) = set_err(&["model.activation=swish"]);
    assert_eq!(key, "model.activation");
    assert!(msg.contains("gelu"), "{msg}");

    let (key, msg) = set_err(&["algo=hebb"]);
    assert_eq!(key, "algo");
    assert!(msg.contains("valid: bp, pc, ipc, zil"), "{msg}");

    let (key, msg) = set_err(&["data.name=imagenet"]);
    assert_eq!(key, "data.name");
    assert!(msg.contains("digits, mnist, fashion-mnist"), "{msg}");

    let (key, _) = set_err(&["train.epochs.inner=1"]);
    assert_eq!(key, "train.epochs.inner");
    let (key, msg) = set_err(&["no-equals-sign"]);
    assert_eq!(key, "no-equals-sign");
    assert!(msg.contains("key=value"), "{msg}");
}

#[test]
fn out_of_range_values_are_errors_naming_the_key() {
    for (set, key) in [
        ("train.epochs=0", "train.epochs"),
        ("train.batch_size=0", "train.batch_size"),
        ("optimizer.lr=-0.1", "optimizer.lr"),
        ("optimizer.beta2=1.5", "optimizer.beta2"),
        ("inference.gamma=0", "inference.gamma"),
        ("inference.momentum=1", "inference.momentum"),
        ("data.validation=1.0", "data.validation"),
        ("model.sizes=[64]", "model.sizes"),
    ] {
        let (k, msg) = set_err(&[set]);
        assert_eq!(k, key, "{set}: {msg}");
    }
}

#[test]
fn unknown_presets_list_the_presets() {
    let e = config::preset("cifar-resnet").unwrap_err();
    let text = e.to_string();
    for (name, _) in PRESETS {
        assert!(text.contains(name), "{text}");
    }
    assert!(config::resolve(Some("nope"), None, &[]).is_err());
}

#[test]
fn presets_round_trip_through_toml_and_match_the_issue() {
    for (name, _) in PRESETS {
        let cfg = config::preset(name).unwrap();
        cfg.validate().unwrap();
        assert_eq!(&cfg.preset, name);
        let text = cfg.to_toml().unwrap();
        assert_eq!(RunConfig::from_toml_str(&text).unwrap(), cfg, "{name}");
    }
    let p = config::preset("mnist-mlp-pcx").unwrap();
    assert_eq!(p.model.sizes, [784, 128, 128, 128, 10]);
    assert_eq!((p.train.batch_size, p.train.epochs, p.inference.steps), (128, 25, 8));
    assert_eq!((p.inference.gamma, p.inference.momentum), (0.0105, 0.65));
    assert_eq!(p.inference.optimizer, NodeOptim::Momentum);
    assert_eq!(p.optimizer.kind, OptimKind::Adamw);
    assert_eq!((p.optimizer.lr, p.optimizer.weight_decay), (2.97e-4, 3.55e-4));
    assert_eq!((p.optimizer.schedule.warmup, p.optimizer.schedule.final_factor), (0.1, 0.1));
    let f = config::preset("fmnist-mlp-pcx").unwrap();
    assert_eq!((f.inference.steps, f.inference.gamma, f.inference.momentum), (5, 0.0261, 0.1));
    assert_eq!((f.optimizer.weight_decay, f.train.epochs), (1.84e-3, 6));
    let b = config::preset("mnist-mlp-bp").unwrap();
    assert_eq!(b.algo, "bp");
    assert_eq!(b.model, p.model);
    assert_eq!(b.optimizer, p.optimizer);
    // the KL-energy presets change the hidden energy and nothing else
    for (name, kind) in [
        ("mnist-mlp-categorical", EnergyKind::Categorical),
        ("mnist-mlp-bernoulli", EnergyKind::Bernoulli),
    ] {
        let c = config::preset(name).unwrap();
        assert_eq!(c.model.hidden_energy, kind);
        let back = prospect::MlpSpec { hidden_energy: p.model.hidden_energy, ..c.model.clone() };
        assert_eq!(back, p.model);
        assert_eq!(
            (c.algo.as_str(), &c.optimizer, &c.inference),
            ("pc", &p.optimizer, &p.inference)
        );
    }
}

#[test]
fn overrides_set_scalars_arrays_and_inline_tables() {
    let sets: Vec<String> = [
        "inference.steps=16",
        "optimizer.lr=1", // an integer where a float is expected
        "algo=bp",        // a bare string
        "model.sizes=[64, 32, 10]",
        "inference.output={ mode = \"nudge\", beta = 0.5 }",
        "train.batches_per_epoch=3",
        "data.dir=/somewhere/else",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let cfg = config::resolve(None, None, &sets).unwrap();
    assert_eq!(cfg.inference.steps, 16);
    assert_eq!(cfg.optimizer.lr, 1.0);
    assert_eq!(cfg.algo, "bp");
    assert_eq!(cfg.model.sizes, [64, 32, 10]);
    assert_eq!(cfg.inference.output, OutputMode::Nudge { beta: 0.5 });
    assert_eq!(cfg.train.batches_per_epoch, 3);
    assert_eq!(cfg.data.dir.as_deref(), Some(Path::new("/somewhere/else")));
    // Everything else is the default preset.
    let base = config::preset(config::DEFAULT_PRESET).unwrap();
    assert_eq!(cfg.train.seed, base.train.seed);
    assert_eq!(cfg.model.activation, base.model.activation);
}

#[test]
fn config_files_merge_over_their_preset_and_overrides_win() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exp.toml");
    fs::write(&file, "preset = \"mnist-mlp-pcx\"\n[inference]\nsteps = 12\n[train]\nepochs = 3\n")
        .unwrap();
    let cfg = config::resolve(None, Some(&file), &["train.epochs=4".into()]).unwrap();
    assert_eq!(cfg.preset, "mnist-mlp-pcx");
    assert_eq!((cfg.inference.steps, cfg.train.epochs), (12, 4));
    assert_eq!(cfg.inference.gamma, 0.0105, "untouched keys come from the preset");
    // --preset beats the file's preset key.
    let cfg = config::resolve(Some("digits-mlp"), Some(&file), &[]).unwrap();
    assert_eq!((cfg.preset.as_str(), cfg.model.sizes[0]), ("digits-mlp", 64));
    assert_eq!(cfg.inference.steps, 12);
    // Errors in files name the key too.
    fs::write(&file, "[train]\nepochz = 3\n").unwrap();
    match config::resolve(None, Some(&file), &[]).unwrap_err() {
        Error::Config { key, msg } => {
            assert_eq!(key, "train.epochz");
            assert!(msg.contains("valid keys of [train]"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
    fs::write(&file, "[train\n").unwrap();
    let e = config::resolve(None, Some(&file), &[]).unwrap_err().to_string();
    assert!(e.contains("exp.toml") && e.contains("not valid TOML"), "{e}");
}

/// The default preset cut down to `epochs` epochs of `batches` batches.
fn quick(epochs: usize, batches: usize) -> RunConfig {
    let mut cfg = config::preset("digits-mlp").unwrap();
    cfg.train.epochs = epochs;
    cfg.train.batches_per_epoch = batches;
    cfg.train.batch_size = 32;
    cfg
}

#[test]
fn an_epoch_reports_its_metrics_and_calls_back_per_batch() {
    let mut t = Trainer::new(quick(2, 6)).unwrap();
    let mut seen = Vec::new();
    let m = t.run_epoch(|p| seen.push((p.epoch, p.batch, p.batches, p.examples))).unwrap();
    assert_eq!(seen.len(), 6);
    assert_eq!(seen[5], (1, 6, 6, 192));
    assert_eq!((m.epoch, m.batches, m.examples, m.skipped_batches), (1, 6, 192, 0));
    assert_eq!(m.inference_steps, 20.0);
    assert!(m.train_loss > 0.0 && m.train_energy > 0.0 && m.test_loss > 0.0);
    assert!(m.test_accuracy > 0.1 && m.test_accuracy <= 1.0);
    assert!(m.seconds > 0.0 && m.samples_per_second > 0.0);
    assert!(m.val_accuracy.is_none());
    let test = t.evaluate(EvalSet::Test).unwrap();
    assert_eq!(test.examples, 360);
    assert_eq!(test.accuracy, m.test_accuracy);
    let json: serde_json::Value = serde_json::from_str(&m.to_json()).unwrap();
    for key in [
        "epoch",
        "train_loss",
        "train_energy",
        "test_accuracy",
        "test_loss",
        "seconds",
        "samples_per_second",
    ] {
        assert!(json.get(key).is_some(), "metrics line lacks {key}");
    }
    assert!(!t.is_done());
    t.run_epoch(|_| {}).unwrap();
    assert!(t.is_done());
}

#[test]
fn validation_is_held_out_of_the_training_split() {
    let mut cfg = quick(1, 2);
    cfg.data.validation = 0.25;
    let mut t = Trainer::new(cfg).unwrap();
    assert_eq!(t.train_len(), 1437 - 359);
    let m = t.run_epoch(|_| {}).unwrap();
    assert!(m.val_accuracy.is_some() && m.val_loss.is_some());
    assert_eq!(t.evaluate(EvalSet::Validation).unwrap().examples, 359);
    let mut plain = Trainer::new(quick(1, 1)).unwrap();
    assert!(plain.evaluate(EvalSet::Validation).is_err());
}

#[test]
fn a_network_that_does_not_fit_the_data_names_model_sizes() {
    let mut cfg = quick(1, 1);
    cfg.model.sizes = vec![784, 32, 10];
    match Trainer::new(cfg).unwrap_err() {
        Error::Config { key, msg } => {
            assert_eq!(key, "model.sizes");
            assert!(msg.contains("64 features"), "{msg}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn divergence_stops_or_skips_as_configured() {
    let mut cfg = quick(1, 4);
    cfg.optimizer.kind = OptimKind::Sgd;
    cfg.optimizer.lr = 1e30;
    let mut t = Trainer::new(cfg.clone()).unwrap();
    assert!(matches!(t.run_epoch(|_| {}), Err(Error::NonFinite { .. })));
    cfg.train.on_non_finite = config::OnNonFinite::Skip;
    let mut t = Trainer::new(cfg).unwrap();
    match t.run_epoch(|_| {}) {
        // The first update blows the weights up; every later batch is skipped.
        Ok(m) => assert!(m.skipped_batches >= 1, "{m:?}"),
        Err(Error::NonFinite { .. }) => {} // every batch of the epoch diverged
        Err(e) => panic!("{e}"),
    }
}

fn without_timing(ms: &[EpochMetrics]) -> Vec<EpochMetrics> {
    ms.iter().map(EpochMetrics::without_timing).collect()
}

fn train_through(dir: &Path, cfg: RunConfig, epochs: usize) -> Run {
    let mut run = Run::create(dir, cfg).unwrap();
    for _ in 0..epochs {
        run.step(|_| {}).unwrap();
    }
    run
}

#[test]
fn a_resumed_run_ends_bit_identical_to_an_uninterrupted_one() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = quick(3, 5);
    // A schedule and a stateful optimiser, so that their restored state matters.
    cfg.optimizer.kind = OptimKind::Adamw;
    cfg.optimizer.weight_decay = 1e-3;
    cfg.optimizer.schedule.kind = prospect::ScheduleKind::WarmupCosine;

    let straight = tmp.path().join("straight");
    let a = train_through(&straight, cfg.clone(), 3);
    assert!(a.is_done());

    let interrupted = tmp.path().join("interrupted");
    drop(train_through(&interrupted, cfg.clone(), 2));
    let mut b = Run::resume(&interrupted, |_| {}).unwrap();
    assert_eq!((b.trainer.epoch(), b.history.len()), (2, 2));
    b.step(|_| {}).unwrap();
    assert!(b.is_done());

    let model = |d: &Path| fs::read(d.join(MODEL_FILE)).unwrap();
    assert_eq!(model(&straight), model(&interrupted), "model.safetensors bytes differ");
    let state = |d: &Path| checkpoint::read_tensors(&d.join(OPTIMIZER_FILE)).unwrap();
    assert_eq!(state(&straight), state(&interrupted));
    let ma = read_metrics(&straight.join(METRICS_FILE)).unwrap();
    let mb = read_metrics(&interrupted.join(METRICS_FILE)).unwrap();
    assert_eq!(ma.len(), 3);
    assert_eq!(without_timing(&ma), without_timing(&mb));
    assert_eq!(without_timing(&a.history), without_timing(&b.history));
    assert_eq!(
        fs::read_to_string(straight.join(CONFIG_FILE)).unwrap(),
        fs::read_to_string(interrupted.join(CONFIG_FILE)).unwrap()
    );

    // A crash between the optimiser and the model renames of epoch 3 (model still at epoch
    // 2, optimiser at 3), after metrics.jsonl got a line the checkpoint does not cover.
    let torn = tmp.path().join("torn");
    let mut r = train_through(&torn, cfg.clone(), 2);
    let model_2 = fs::read(torn.join(MODEL_FILE)).unwrap();
    r.step(|_| {}).unwrap();
    fs::write(torn.join(MODEL_FILE), model_2).unwrap();
    assert!(torn.join(OPTIMIZER_PREV_FILE).is_file());
    let mut lines = fs::read_to_string(torn.join(METRICS_FILE)).unwrap();
    lines.push_str("{\"epoch\": 3, \"torn"); // and a torn last line
    fs::write(torn.join(METRICS_FILE), lines).unwrap();
    let mut c = Run::resume(&torn, |_| {}).unwrap();
    assert_eq!(c.trainer.epoch(), 2);
    assert_eq!(
        read_metrics(&torn.join(METRICS_FILE)).unwrap().len(),
        2,
        "truncated to the checkpoint"
    );
    c.step(|_| {}).unwrap();
    assert_eq!(model(&straight), model(&torn));
    let mc = read_metrics(&torn.join(METRICS_FILE)).unwrap();
    assert_eq!(without_timing(&ma), without_timing(&mc));
}

#[test]
fn resume_restores_a_missing_metrics_line_and_can_extend_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    drop(train_through(&dir, quick(2, 3), 2));
    let all = read_metrics(&dir.join(METRICS_FILE)).unwrap();
    // Killed after the checkpoint of epoch 2 but before its metrics line was appended.
    let first = fs::read_to_string(dir.join(METRICS_FILE)).unwrap();
    let first_line = first.lines().next().unwrap().to_string() + "\n";
    fs::write(dir.join(METRICS_FILE), first_line).unwrap();
    let mut run = Run::resume(&dir, |c| c.train.epochs = 3).unwrap();
    assert_eq!(run.history, all, "the line of epoch 2 comes back from the checkpoint");
    assert!(!run.is_done());
    run.step(|_| {}).unwrap();
    assert_eq!(read_metrics(&dir.join(METRICS_FILE)).unwrap().len(), 3);
    let cfg = config::load(&dir.join(CONFIG_FILE)).unwrap();
    assert_eq!(cfg.train.epochs, 3, "the extended config is written back");
}

#[test]
fn a_new_run_refuses_a_directory_holding_a_run_and_resume_needs_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    drop(train_through(&dir, quick(1, 1), 1));
    let e = Run::create(&dir, quick(1, 1)).unwrap_err().to_string();
    assert!(e.contains("--resume"), "{e}");
    let e = Run::resume(&tmp.path().join("nothing"), |_| {}).unwrap_err().to_string();
    assert!(e.contains("not a run directory"), "{e}");
    // A run killed before its first checkpoint resumes from scratch.
    let fresh = tmp.path().join("fresh");
    drop(Run::create(&fresh, quick(1, 2)).unwrap());
    let mut r = Run::resume(&fresh, |_| {}).unwrap();
    assert_eq!(r.trainer.epoch(), 0);
    r.step(|_| {}).unwrap();
    assert!(r.is_done());
}
