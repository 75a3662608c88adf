//! The network on random weights against a plain reading of the Keras graph: every layer
//! "same"-padded over the whole padded sequence, in f64, then cropped.

use rand::{Rng, SeedableRng};

use super::keras::{synthetic, Network};
use super::kernel::{ConvWeights, WIDTH};
use super::SpliceAi;

/// Keras's "same" convolution over all `inp.len() / cin` rows, zeros beyond both ends.
fn same_conv(inp: &[f64], cw: &ConvWeights) -> Vec<f64> {
    let n = inp.len() / cw.cin;
    let (left, _) = cw.reach();
    let mut out = vec![0.0; n * cw.cout];
    for p in 0..n {
        for o in 0..cw.cout {
            let mut s = cw.b[o] as f64;
            for t in 0..cw.k {
                let q = p as isize - left as isize + (t * cw.d) as isize;
                if q < 0 || q >= n as isize {
                    continue;
                }
                for c in 0..cw.cin {
                    s += inp[q as usize * cw.cin + c] * cw.w[(t * cw.cin + c) * cw.cout + o] as f64;
                }
            }
            out[p * cw.cout + o] = s;
        }
    }
    out
}

fn keras_reference(net: &Network, seq: &[u8]) -> Vec<[f64; 3]> {
    let n = seq.len();
    let mut onehot = vec![0.0; n * 4];
    for (i, b) in seq.iter().enumerate() {
        if let Some(c) = b"ACGT".iter().position(|x| *x == b.to_ascii_uppercase()) {
            onehot[i * 4 + c] = 1.0;
        }
    }
    let mut x = same_conv(&onehot, &net.stem);
    let mut skip = vec![0.0; n * WIDTH];
    let add_taps = |node: usize, x: &[f64], skip: &mut [f64]| {
        for (_, tap) in net.taps.iter().filter(|(at, _)| *at == node) {
            skip.iter_mut().zip(same_conv(x, tap)).for_each(|(s, v)| *s += v);
        }
    };
    add_taps(0, &x, &mut skip);
    for (u, unit) in net.units.iter().enumerate() {
        let a: Vec<f64> = x
            .iter()
            .enumerate()
            .map(|(i, v)| (v * unit.scale[i % WIDTH] as f64 + unit.shift[i % WIDTH] as f64).max(0.0))
            .collect();
        let t: Vec<f64> = same_conv(&a, &unit.conv1)
            .into_iter()
            .map(|v| v.max(0.0))
            .collect();
        x.iter_mut()
            .zip(same_conv(&t, &unit.conv2))
            .for_each(|(x, v)| *x += v);
        add_taps(u + 1, &x, &mut skip);
    }
    let c = net.context;
    let logits = same_conv(&skip[c * WIDTH..(n - c) * WIDTH], &net.head);
    logits
        .chunks_exact(3)
        .map(|z| {
            let m = z.iter().cloned().fold(f64::MIN, f64::max);
            let e = [(z[0] - m).exp(), (z[1] - m).exp(), (z[2] - m).exp()];
            let s = e[0] + e[1] + e[2];
            [e[0] / s, e[1] / s, e[2] / s]
        })
        .collect()
}

fn random_seq(n: usize, rng: &mut impl Rng) -> Vec<u8> {
    (0..n).map(|_| b"ACGTNacgtn"[rng.random_range(0..10)]).collect()
}

fn ensemble(nets: Vec<Network>) -> SpliceAi {
    let n = nets.len();
    SpliceAi::new(nets, (1..=n as u8).collect()).unwrap()
}

/// Units whose reaches are uneven (k = 4) and a crop wider than the reach.
const UNITS: [(usize, usize); 4] = [(3, 1), (4, 1), (5, 3), (3, 7)];
/// Context of the networks of most tests: their reach (30, 32) rounded up.
const CTX: usize = 32;

#[test]
fn valid_mode_chunks_equal_the_padded_keras_graph() {
    let net = synthetic::network(&UNITS, &[2, 4], 40, 1);
    assert_eq!(net.reach, (30, 32));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
    let outputs = 61;
    let seq = random_seq(outputs + 80, &mut rng);
    let want = keras_reference(&net, &seq);
    let model = ensemble(vec![net]);
    for chunk in [1, 6, 7, 61, 1000] {
        let mut got = vec![[0f32; 3]; outputs];
        model.predict_with(&mut model.workspace(chunk), &seq, &mut got);
        let err = got
            .iter()
            .zip(&want)
            .flat_map(|(g, w)| (0..3).map(move |k| (g[k] as f64 - w[k]).abs()))
            .fold(0.0, f64::max);
        assert!(err < 1e-5, "chunk {chunk}: max abs diff {err}");
    }
}

#[test]
fn chunk_length_does_not_change_a_bit() {
    let nets = vec![
        synthetic::network(&UNITS, &[1, 3], CTX, 3),
        synthetic::network(&UNITS, &[1, 3], CTX, 4),
    ];
    let model = ensemble(nets);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
    let outputs = 500;
    let seq = random_seq(outputs + 2 * CTX, &mut rng);
    let mut whole = vec![[0f32; 3]; outputs];
    model.predict(&seq, &mut whole);
    for chunk in [1, 5, 97, 499] {
        let mut got = vec![[0f32; 3]; outputs];
        model.predict_with(&mut model.workspace(chunk), &seq, &mut got);
        assert_eq!(got, whole, "chunk {chunk}");
    }
}

#[test]
fn anything_but_acgt_is_n_in_either_case() {
    let model = ensemble(vec![synthetic::network(&UNITS, &[4], CTX, 6)]);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let seq = random_seq(100, &mut rng);
    let upper: Vec<u8> = seq.to_ascii_uppercase();
    let iupac: Vec<u8> = seq
        .iter()
        .map(|&b| if b == b'N' || b == b'n' { b'R' } else { b })
        .collect();
    let run = |s: &[u8]| {
        let mut out = vec![[0f32; 3]; 100 - 2 * CTX];
        model.predict(s, &mut out);
        out
    };
    assert_eq!(run(&seq), run(&upper));
    assert_eq!(run(&seq), run(&iupac));
}

#[test]
fn an_empty_sequence_gives_no_rows_and_budgets_give_chunks() {
    let model = ensemble(vec![synthetic::network(&UNITS, &[4], CTX, 8)]);
    model.predict(&[b'N'; 2 * CTX], &mut []);
    let ws = model.working_bytes(6000);
    assert_eq!(ws, 4 * 32 * (3 * (6000 + 30 + 32) + 6000));
    assert_eq!(model.chunk_for_budget(ws, usize::MAX), Some(6000));
    assert_eq!(model.chunk_for_budget(ws - 1, usize::MAX), Some(5999));
    let least = model.working_bytes(super::MIN_CHUNK);
    assert_eq!(
        model.chunk_for_budget(least - 1, usize::MAX),
        None,
        "below MIN_CHUNK"
    );
    assert_eq!(model.chunk_for_budget(least, 10), Some(10));
}

#[test]
fn the_keras_graph_is_read_not_assumed() {
    let units = [(11, 1), (11, 1), (11, 4), (21, 10), (41, 25)];
    let cfg = synthetic::keras_config(&units, &[2, 5], 1000);
    let (found, taps, context) = synthetic::walk_config(&cfg).unwrap();
    assert_eq!(found.len(), 5);
    assert_eq!(
        found[0],
        [
            "batch_normalization_1",
            "activation_1",
            "conv1d_3",
            "batch_normalization_2",
            "activation_2",
            "conv1d_4",
            "add_1"
        ]
    );
    assert_eq!(taps.iter().map(|(n, _)| *n).collect::<Vec<_>>(), [0, 2, 5]);
    assert_eq!(context, 1000);

    let broken = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut c = cfg.clone();
        f(&mut c);
        synthetic::walk_config(&c).unwrap_err()
    };
    let err = broken(&|c| layer_mut(c, "activation_3")["config"]["activation"] = "tanh".into());
    assert!(err.contains("`activation_3` is `tanh`"), "{err}");
    let err = broken(&|c| layer_mut(c, "conv1d_3")["config"]["padding"] = "valid".into());
    assert!(err.contains("`conv1d_3` has padding `valid`"), "{err}");
    let err = broken(&|c| {
        let dense = serde_json::json!({"class_name": "Dense", "name": "dense_1", "config": {},
            "inbound_nodes": [[["add_2", 0, 0, {}]]]});
        c["config"]["layers"].as_array_mut().unwrap().push(dense);
    });
    assert!(err.contains("dense_1"), "{err}");
    let err =
        broken(&|c| layer_mut(c, "cropping1d_1")["config"]["cropping"] = serde_json::json!([1000, 999]));
    assert!(err.contains("crops 1000 and 999"), "{err}");
}

fn layer_mut<'a>(c: &'a mut serde_json::Value, name: &str) -> &'a mut serde_json::Value {
    let layers = c["config"]["layers"].as_array_mut().unwrap();
    layers.iter_mut().find(|l| l["name"] == name).unwrap()
}

#[test]
fn the_workspace_is_reserved_before_it_is_allocated() {
    use crate::memory::{MemoryConsumer, MemoryPool};
    use std::sync::Arc;
    let model = ensemble(vec![synthetic::network(&UNITS, &[4], CTX, 9)]);
    let pool = Arc::new(MemoryPool::new(1 << 30));
    let mut res = MemoryConsumer::new("score")
        .with_budget(model.working_bytes(8_000) + 100, "memory.score")
        .register(&pool);
    let ws = model.reserve_workspace(&mut res, usize::MAX).unwrap();
    assert_eq!(ws.chunk(), 8_000);
    assert_eq!(res.size(), model.working_bytes(8_000));
    drop(ws);
    res.free();
    assert_eq!(model.reserve_workspace(&mut res, 300).unwrap().chunk(), 300);

    let mut small = MemoryConsumer::new("score")
        .with_budget(1 << 20, "memory.score")
        .register(&pool);
    let err = model
        .reserve_workspace(&mut small, usize::MAX)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("needs at least") && err.contains("memory.score") && err.contains("chunks of 5000"),
        "{err}"
    );
    assert_eq!(small.size(), 0);
}
