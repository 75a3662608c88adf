//! Reading a SpliceAI Keras `.h5` file: the layer graph from its `model_config` attribute,
//! the weights from its `model_weights` group, with a pure-Rust HDF5 reader.
//!
//! The graph is not assumed: it is walked from the input layer and must have the shape of
//! the SpliceAI-10k network, whose sizes and names are then taken from the file:
//!
//! ```text
//! input (one-hot, 4) → 1×1 conv "stem" ─┬─ 1×1 conv (skip tap) ─────────────┐
//!                                       ↓                                   │
//!   residual unit, n times: x → BN → ReLU → conv(k, d) → BN → ReLU → conv(k, d) → + x
//!                                       ├─ 1×1 conv (skip tap) after some units ┤
//!                                       ↓                                   ↓
//!                             Σ skip taps → crop (c, c) → 1×1 conv, softmax (3)
//! ```
//!
//! Every layer of the file must find its place in that picture, or the file is refused with
//! the layer that does not fit. Batch norms that follow a convolution are folded into it
//! (`w·s`, `b·s + β − μ·s` with `s = γ/√(σ² + ε)`); those on the residual stream, which the
//! stream itself bypasses, become a per-channel scale and shift applied before their ReLU.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use serde_json::Value;

use super::kernel::{ConvWeights, WIDTH};
use crate::error::InputError;

/// One residual unit: `x + conv2(relu(conv1'(relu(x·scale + shift))))`, where `conv1'` has
/// the second batch norm folded in.
#[derive(Debug, Clone)]
pub struct Unit {
    pub scale: Vec<f32>,
    pub shift: Vec<f32>,
    pub conv1: ConvWeights,
    pub conv2: ConvWeights,
    /// The Keras layers, in order: BN, ReLU, conv, BN, ReLU, conv, add.
    pub layers: [String; 7],
}

/// One SpliceAI-10k network, as read from its file.
#[derive(Debug, Clone)]
pub struct Network {
    /// The file's name.
    pub name: String,
    /// 1×1 convolution of the one-hot input: `[4][WIDTH]` plus bias.
    pub stem: ConvWeights,
    pub units: Vec<Unit>,
    /// Skip taps: 1×1 convolutions of the residual stream after `node` units (0: the stem),
    /// summed.
    pub taps: Vec<(usize, ConvWeights)>,
    /// The final 1×1 convolution to (neither, acceptor, donor), softmax after it.
    pub head: ConvWeights,
    /// Positions cropped at each end: the context each side of the scored positions.
    pub context: usize,
    /// Positions each output reads before and after itself (the convolutions' reaches
    /// summed): at most `context`.
    pub reach: (usize, usize),
    /// Layer names of the stem, the taps, the crop and the head, for [`Network::describe`].
    names: Names,
}

#[derive(Debug, Clone, Default)]
struct Names {
    stem: String,
    taps: Vec<String>,
    crop: String,
    head: String,
}

impl Network {
    /// Reads and checks the network in the Keras `.h5` file `path`.
    pub fn from_h5(path: &Path) -> Result<Self, InputError> {
        let bytes =
            std::fs::read(path).map_err(|e| InputError::new(format!("cannot read: {e}")).file(path))?;
        Self::from_h5_bytes(bytes, path)
    }

    /// [`Network::from_h5`] on the file's bytes; `path` names it in errors.
    pub fn from_h5_bytes(bytes: Vec<u8>, path: &Path) -> Result<Self, InputError> {
        let bad_h5 = |e: String| {
            InputError::new(format!("not a readable Keras HDF5 file: {e}"))
                .file(path)
                .hint("delete it and let spliceboost download it again, or pass an intact copy")
        };
        // The reader is trusted with intact files; a damaged one must not take the run down.
        let file = crate::error::catch_decoder_panic(move || hdf5_pure::File::from_bytes(bytes))
            .ok_or_else(|| bad_h5("the HDF5 reader failed on it".into()))?
            .map_err(|e| bad_h5(e.to_string()))?;
        let read = || -> Result<Self, InputError> {
            let root = file.root();
            let attrs = root.attrs().map_err(|e| bad_h5(e.to_string()))?;
            let config = attrs
                .get("model_config")
                .and_then(|v| v.as_str())
                .ok_or_else(|| bad_h5("no `model_config` attribute (not a whole Keras model)".into()))?;
            let config: Value = serde_json::from_str(config)
                .map_err(|e| bad_h5(format!("`model_config` is not JSON: {e}")))?;
            let weights = root
                .group("model_weights")
                .map_err(|e| bad_h5(format!("no `model_weights`: {e}")))?;
            let graph = Graph::parse(&config).map_err(|m| layout(path, m))?;
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            build(&graph, &Weights { group: weights, path }, name)
        };
        crate::error::catch_decoder_panic(read)
            .ok_or_else(|| bad_h5("the HDF5 reader failed on it".into()))?
    }

    /// Bytes of the weights held in memory.
    pub fn bytes(&self) -> u64 {
        let units: u64 = self
            .units
            .iter()
            .map(|u| u.conv1.bytes() + u.conv2.bytes() + 8 * WIDTH as u64)
            .sum();
        self.stem.bytes() + units + self.taps.iter().map(|(_, c)| c.bytes()).sum::<u64>() + self.head.bytes()
    }

    /// The architecture, as read from the file, in a few lines.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "{}: input one-hot (A, C, G, T) -> {} (1x1, 4->{})\n",
            self.name, self.names.stem, self.stem.cout
        );
        let mut i = 0;
        while i < self.units.len() {
            let (k, d) = (self.units[i].conv1.k, self.units[i].conv1.d);
            let mut j = i;
            while j < self.units.len() && (self.units[j].conv1.k, self.units[j].conv1.d) == (k, d) {
                j += 1;
            }
            s += &format!(
                "  units {}..{}: {} x residual unit (BN, ReLU, conv k={k} d={d}, BN, ReLU, conv k={k} d={d}, add), \
                 {} .. {}\n",
                i + 1,
                j,
                j - i,
                self.units[i].layers[0],
                self.units[j - 1].layers[6]
            );
            i = j;
        }
        let taps: Vec<String> = self
            .taps
            .iter()
            .zip(&self.names.taps)
            .map(|((node, _), n)| format!("{n} after unit {node}"))
            .collect();
        s += &format!("  skip taps (1x1 convs, summed): {}\n", taps.join(", "));
        s += &format!(
            "  {} ({}, {}) -> {} (1x1, {}->{}, softmax: neither, acceptor, donor)\n",
            self.names.crop, self.context, self.context, self.names.head, self.head.cin, self.head.cout
        );
        s += &format!(
            "  receptive field {} + 1 + {} nt; {} weights",
            self.reach.0,
            self.reach.1,
            self.bytes() / 4
        );
        s
    }
}

fn layout(path: &Path, m: String) -> InputError {
    InputError::new(format!("not the SpliceAI-10k network: {m}"))
        .file(path)
        .hint("spliceboost runs the Keras models of PyPI spliceai 1.3.1 and networks of the same layout")
}

/// A Keras layer of the functional graph.
#[derive(Debug)]
struct Layer {
    class: String,
    config: Value,
    inputs: Vec<String>,
}

#[derive(Debug)]
struct Graph {
    layers: HashMap<String, Layer>,
    order: Vec<String>,
    consumers: HashMap<String, Vec<String>>,
    output: String,
}

impl Graph {
    fn parse(config: &Value) -> Result<Self, String> {
        let cfg = &config["config"];
        let list = cfg["layers"]
            .as_array()
            .ok_or("`model_config` has no layer list")?;
        let mut layers = HashMap::new();
        let mut order = vec![];
        let mut consumers: HashMap<String, Vec<String>> = HashMap::new();
        for l in list {
            let name = l["name"]
                .as_str()
                .or(l["config"]["name"].as_str())
                .ok_or("a layer without a name")?;
            let class = l["class_name"]
                .as_str()
                .ok_or_else(|| format!("layer `{name}` has no class"))?;
            let nodes = l["inbound_nodes"].as_array().map(Vec::as_slice).unwrap_or(&[]);
            if nodes.len() > 1 {
                return Err(format!("layer `{name}` is called {} times", nodes.len()));
            }
            let mut inputs = vec![];
            for n in nodes
                .iter()
                .flat_map(|n| n.as_array().map(Vec::as_slice).unwrap_or(&[]))
            {
                let from = n[0]
                    .as_str()
                    .or(n["args"][0]["config"]["keras_history"][0].as_str())
                    .ok_or_else(|| format!("layer `{name}` has an input without a name"))?;
                inputs.push(from.to_string());
                consumers
                    .entry(from.to_string())
                    .or_default()
                    .push(name.to_string());
            }
            order.push(name.to_string());
            layers.insert(
                name.to_string(),
                Layer {
                    class: class.to_string(),
                    config: l["config"].clone(),
                    inputs,
                },
            );
        }
        let outputs = cfg["output_layers"].as_array().ok_or("no output layers")?;
        if outputs.len() != 1 {
            return Err(format!("{} outputs, SpliceAI has one", outputs.len()));
        }
        let output = outputs[0][0]
            .as_str()
            .ok_or("an output without a name")?
            .to_string();
        Ok(Self {
            layers,
            order,
            consumers,
            output,
        })
    }

    fn layer(&self, name: &str) -> Result<&Layer, String> {
        self.layers
            .get(name)
            .ok_or_else(|| format!("layer `{name}` is named but not defined"))
    }

    fn consumers(&self, name: &str) -> &[String] {
        self.consumers.get(name).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The one layer reading `name`, which must be of `class`.
    fn next(&self, name: &str, class: &str) -> Result<&str, String> {
        match self.consumers(name) {
            [one] if self.layer(one)?.class == class => Ok(one),
            [one] => Err(format!(
                "after `{name}` comes `{one}` ({}) where a {class} was expected",
                self.layer(one)?.class
            )),
            many => Err(format!(
                "`{name}` feeds {} layers ({}) where one {class} was expected",
                many.len(),
                many.join(", ")
            )),
        }
    }
}

/// A Keras integer that may be written `n` or `[n]`.
fn int(v: &Value) -> Option<usize> {
    v.as_u64().or_else(|| v.get(0)?.as_u64()).map(|x| x as usize)
}

/// A Conv1D's (k, dilation, filters), checked for what this reader supports.
fn conv_shape(g: &Graph, name: &str, activation: &str) -> Result<(usize, usize, usize), String> {
    let l = g.layer(name)?;
    if l.class != "Conv1D" {
        return Err(format!("`{name}` is a {} where a Conv1D was expected", l.class));
    }
    let c = &l.config;
    let k = int(&c["kernel_size"]).ok_or_else(|| format!("`{name}` has no kernel_size"))?;
    let d = int(&c["dilation_rate"]).unwrap_or(1);
    let f = int(&c["filters"]).ok_or_else(|| format!("`{name}` has no filters"))?;
    let strides = int(&c["strides"]).unwrap_or(1);
    let padding = c["padding"].as_str().unwrap_or("valid");
    let act = c["activation"].as_str().unwrap_or("linear");
    if strides != 1 {
        return Err(format!("`{name}` has stride {strides}"));
    }
    if k > 1 && padding != "same" {
        return Err(format!(
            "`{name}` has padding `{padding}`, SpliceAI's convolutions pad `same`"
        ));
    }
    if c["data_format"].as_str().is_some_and(|f| f != "channels_last") {
        return Err(format!("`{name}` is not channels_last"));
    }
    if act != activation {
        return Err(format!(
            "`{name}` has activation `{act}` where `{activation}` was expected"
        ));
    }
    if k == 0 || d == 0 {
        return Err(format!("`{name}` has kernel {k}, dilation {d}"));
    }
    Ok((k, d, f))
}

fn check_relu(g: &Graph, name: &str) -> Result<(), String> {
    let act = g.layer(name)?.config["activation"].as_str().unwrap_or("");
    if act != "relu" {
        return Err(format!("`{name}` is `{act}` where a ReLU was expected"));
    }
    Ok(())
}

/// The walk's result: which layer does what, before any weight is read.
struct Plan {
    stem: String,
    units: Vec<[String; 7]>,
    taps: Vec<(usize, String)>,
    crop: String,
    head: String,
    context: usize,
}

fn walk(g: &Graph) -> Result<Plan, String> {
    let inputs: Vec<&String> = g
        .order
        .iter()
        .filter(|n| g.layers[*n].class == "InputLayer")
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(format!("{} input layers, SpliceAI has one", inputs.len()));
    };
    let shape = &g.layers[*input].config["batch_input_shape"];
    if shape
        .as_array()
        .and_then(|s| s.last())
        .and_then(Value::as_u64)
        .is_some_and(|c| c != 4)
    {
        return Err(format!(
            "input `{input}` is not one-hot of 4 bases: shape {shape}"
        ));
    }
    let mut seen: HashSet<String> = HashSet::from([input.to_string()]);
    let stem = g.next(input, "Conv1D")?.to_string();
    if conv_shape(g, &stem, "linear")?.0 != 1 {
        return Err(format!("the first convolution `{stem}` is not 1x1"));
    }
    seen.insert(stem.clone());
    let mut units = vec![];
    let mut taps = vec![];
    let mut stream = stem.clone();
    loop {
        let mut start = None;
        let mut adds = vec![];
        for c in g.consumers(&stream) {
            let l = g.layer(c)?;
            match l.class.as_str() {
                "BatchNormalization" if start.is_none() => start = Some(c.clone()),
                "Conv1D" if conv_shape(g, c, "linear")?.0 == 1 => {
                    taps.push((units.len(), c.clone()));
                    seen.insert(c.clone());
                }
                "Add" => adds.push(c.clone()),
                other => {
                    return Err(format!(
                        "`{stream}` feeds `{c}` ({other}), which has no place in SpliceAI"
                    ))
                }
            }
        }
        let Some(bn1) = start else {
            if let Some(a) = adds.first() {
                return Err(format!(
                    "`{a}` adds the stream `{stream}` without a residual unit"
                ));
            }
            break;
        };
        let relu1 = g.next(&bn1, "Activation")?.to_string();
        check_relu(g, &relu1)?;
        let conv1 = g.next(&relu1, "Conv1D")?.to_string();
        let bn2 = g.next(&conv1, "BatchNormalization")?.to_string();
        let relu2 = g.next(&bn2, "Activation")?.to_string();
        check_relu(g, &relu2)?;
        let conv2 = g.next(&relu2, "Conv1D")?.to_string();
        let add = g.next(&conv2, "Add")?.to_string();
        let mut ins = g.layer(&add)?.inputs.clone();
        ins.sort();
        let mut want = vec![conv2.clone(), stream.clone()];
        want.sort();
        if ins != want || !adds.contains(&add) {
            return Err(format!(
                "`{add}` adds {ins:?}, where a residual add of `{conv2}` and `{stream}` was expected"
            ));
        }
        if adds.len() > 1 {
            return Err(format!("`{stream}` feeds more than one add: {}", adds.join(", ")));
        }
        for (conv, f) in [
            (&conv1, conv_shape(g, &conv1, "linear")?),
            (&conv2, conv_shape(g, &conv2, "linear")?),
        ] {
            if f.2 != WIDTH {
                return Err(format!(
                    "`{conv}` has {} filters; SpliceAI-10k is {WIDTH} wide",
                    f.2
                ));
            }
        }
        let layers = [bn1, relu1, conv1, bn2, relu2, conv2, add];
        seen.extend(layers.iter().cloned());
        stream = layers[6].clone();
        units.push(layers);
    }
    // The head: softmax 1x1 conv of a crop of the sum of the skip taps.
    let head = g.output.clone();
    let (k, _, f) = conv_shape(g, &head, "softmax")?;
    if k != 1 || f != 3 {
        return Err(format!(
            "the output `{head}` is not a 1x1 convolution to 3 classes"
        ));
    }
    let [crop] = g.layer(&head)?.inputs.as_slice() else {
        return Err(format!("`{head}` does not read one layer"));
    };
    let cl = g.layer(crop)?;
    if cl.class != "Cropping1D" {
        return Err(format!(
            "`{head}` reads `{crop}` ({}) where a Cropping1D was expected",
            cl.class
        ));
    }
    let cropping = &cl.config["cropping"];
    let (a, b) = match cropping.as_array().map(Vec::as_slice) {
        Some([a, b]) => (a.as_u64(), b.as_u64()),
        _ => (cropping.as_u64(), cropping.as_u64()),
    };
    let (Some(a), Some(b)) = (a, b) else {
        return Err(format!("`{crop}` has cropping {cropping}"));
    };
    if a != b {
        return Err(format!(
            "`{crop}` crops {a} and {b}: SpliceAI's context is the same on both sides"
        ));
    }
    let [sum] = cl.inputs.as_slice() else {
        return Err(format!("`{crop}` does not read one layer"));
    };
    // The summed skip taps: a tree of adds whose leaves are the taps, each once.
    let tap_names: HashSet<&String> = taps.iter().map(|(_, n)| n).collect();
    let mut used = HashSet::new();
    let mut todo = vec![sum.clone()];
    while let Some(n) = todo.pop() {
        if tap_names.contains(&n) {
            if !used.insert(n.clone()) {
                return Err(format!("skip tap `{n}` is summed twice"));
            }
            continue;
        }
        let l = g.layer(&n)?;
        if l.class != "Add" || seen.contains(&n) {
            return Err(format!(
                "`{n}` ({}) is summed into the output, where only skip taps were expected",
                l.class
            ));
        }
        seen.insert(n.clone());
        todo.extend(l.inputs.iter().cloned());
    }
    if let Some((_, t)) = taps.iter().find(|(_, t)| !used.contains(t)) {
        return Err(format!("skip tap `{t}` is not summed into the output"));
    }
    seen.insert(crop.clone());
    seen.insert(head.clone());
    if let Some(extra) = g.order.iter().find(|n| !seen.contains(*n)) {
        return Err(format!(
            "layer `{extra}` ({}) has no place in SpliceAI",
            g.layers[extra].class
        ));
    }
    Ok(Plan {
        stem,
        units,
        taps,
        crop: crop.clone(),
        head,
        context: a as usize,
    })
}

/// The `model_weights` group of one file.
struct Weights<'a> {
    group: hdf5_pure::Group,
    path: &'a Path,
}

impl Weights<'_> {
    /// The arrays of `layer`, keyed by their short name (`kernel`, `bias`, `gamma`, ...).
    #[allow(clippy::type_complexity)]
    fn arrays(&self, layer: &str) -> Result<HashMap<String, (Vec<u64>, Vec<f32>)>, InputError> {
        let bad = |m: String| {
            InputError::new(format!("layer `{layer}`: {m}"))
                .file(self.path)
                .hint("the file's weights do not match its model_config; use an intact copy")
        };
        let g = self
            .group
            .group(layer)
            .map_err(|e| bad(format!("no weights: {e}")))?;
        let attrs = g.attrs().map_err(|e| bad(e.to_string()))?;
        let names = attrs
            .get("weight_names")
            .and_then(|v| v.as_strings())
            .unwrap_or(&[]);
        let mut out = HashMap::new();
        for full in names {
            let ds = g.dataset(full).map_err(|e| bad(format!("`{full}`: {e}")))?;
            let shape = ds.shape().map_err(|e| bad(format!("`{full}`: {e}")))?;
            let data = ds.read_f32().map_err(|e| bad(format!("`{full}`: {e}")))?;
            if data.len() as u64 != shape.iter().product::<u64>() {
                return Err(bad(format!(
                    "`{full}` holds {} values for shape {shape:?}",
                    data.len()
                )));
            }
            if let Some(v) = data.iter().find(|v| !v.is_finite()) {
                return Err(bad(format!("`{full}` holds {v}")));
            }
            let short = full
                .rsplit('/')
                .next()
                .unwrap_or(full)
                .split(':')
                .next()
                .unwrap_or(full);
            out.insert(short.to_string(), (shape, data));
        }
        Ok(out)
    }

    fn conv(&self, g: &Graph, layer: &str, cin: usize) -> Result<ConvWeights, InputError> {
        let act = g
            .layer(layer)
            .ok()
            .and_then(|l| l.config["activation"].as_str())
            .unwrap_or("linear");
        let (k, d, f) = conv_shape(g, layer, act).map_err(|m| layout(self.path, m))?;
        let mut a = self.arrays(layer)?;
        let bad = |m: String| InputError::new(format!("layer `{layer}`: {m}")).file(self.path);
        let (shape, w) = a.remove("kernel").ok_or_else(|| bad("no kernel".into()))?;
        if shape != [k as u64, cin as u64, f as u64] {
            return Err(bad(format!(
                "kernel of shape {shape:?}, expected [{k}, {cin}, {f}]"
            )));
        }
        let b = match a.remove("bias") {
            Some((s, b)) if s == [f as u64] => b,
            Some((s, _)) => return Err(bad(format!("bias of shape {s:?}, expected [{f}]"))),
            None => vec![0.0; f],
        };
        Ok(ConvWeights {
            k,
            d,
            cin,
            cout: f,
            w,
            b,
        })
    }

    /// A batch norm as a per-channel `(scale, shift)`.
    fn batch_norm(&self, g: &Graph, layer: &str) -> Result<(Vec<f32>, Vec<f32>), InputError> {
        let cfg = &g.layer(layer).map_err(|m| layout(self.path, m))?.config;
        let axis = cfg["axis"]
            .as_i64()
            .or_else(|| cfg["axis"].get(0)?.as_i64())
            .unwrap_or(-1);
        if axis != -1 && axis != 2 {
            return Err(layout(
                self.path,
                format!("`{layer}` normalises axis {axis}, not the channels"),
            ));
        }
        let eps = cfg["epsilon"].as_f64().unwrap_or(1e-3);
        let mut a = self.arrays(layer)?;
        let bad = |m: String| InputError::new(format!("layer `{layer}`: {m}")).file(self.path);
        let mut get = |k: &str, default: f32| -> Result<Vec<f32>, InputError> {
            match a.remove(k) {
                Some((s, v)) if s == [WIDTH as u64] => Ok(v),
                Some((s, _)) => Err(bad(format!("{k} of shape {s:?}, expected [{WIDTH}]"))),
                None if default.is_nan() => Err(bad(format!("no {k}"))),
                None => Ok(vec![default; WIDTH]),
            }
        };
        let gamma = get("gamma", 1.0)?;
        let beta = get("beta", 0.0)?;
        let mean = get("moving_mean", f32::NAN)?;
        let var = get("moving_variance", f32::NAN)?;
        let mut scale = vec![0f32; WIDTH];
        let mut shift = vec![0f32; WIDTH];
        for c in 0..WIDTH {
            let s = gamma[c] as f64 / (var[c] as f64 + eps).sqrt();
            scale[c] = s as f32;
            shift[c] = (beta[c] as f64 - mean[c] as f64 * s) as f32;
        }
        Ok((scale, shift))
    }
}

/// Folds `(scale, shift)` applied after `conv` into it.
fn fold(mut conv: ConvWeights, (scale, shift): (Vec<f32>, Vec<f32>)) -> ConvWeights {
    for tap in conv.w.chunks_exact_mut(conv.cout) {
        tap.iter_mut().zip(&scale).for_each(|(w, s)| *w *= s);
    }
    for ((b, s), sh) in conv.b.iter_mut().zip(&scale).zip(&shift) {
        *b = *b * s + sh;
    }
    conv
}

fn build(g: &Graph, w: &Weights, name: String) -> Result<Network, InputError> {
    let plan = walk(g).map_err(|m| layout(w.path, m))?;
    let stem = w.conv(g, &plan.stem, 4)?;
    if stem.cout != WIDTH {
        return Err(layout(
            w.path,
            format!("`{}` has {} filters, not {WIDTH}", plan.stem, stem.cout),
        ));
    }
    let mut units = vec![];
    let mut reach = (0, 0);
    for layers in plan.units {
        let (scale, shift) = w.batch_norm(g, &layers[0])?;
        let conv1 = fold(w.conv(g, &layers[2], WIDTH)?, w.batch_norm(g, &layers[3])?);
        let conv2 = w.conv(g, &layers[5], WIDTH)?;
        for c in [&conv1, &conv2] {
            let (l, r) = c.reach();
            reach = (reach.0 + l, reach.1 + r);
        }
        units.push(Unit {
            scale,
            shift,
            conv1,
            conv2,
            layers,
        });
    }
    let mut taps = vec![];
    for (node, layer) in &plan.taps {
        let c = w.conv(g, layer, WIDTH)?;
        if c.cout != WIDTH {
            return Err(layout(
                w.path,
                format!("skip tap `{layer}` has {} filters, not {WIDTH}", c.cout),
            ));
        }
        taps.push((*node, c));
    }
    let head = w.conv(g, &plan.head, WIDTH)?;
    if reach.0 > plan.context || reach.1 > plan.context {
        return Err(layout(
            w.path,
            format!(
                "its convolutions reach {} and {} positions but `{}` crops only {}",
                reach.0, reach.1, plan.crop, plan.context
            ),
        ));
    }
    Ok(Network {
        name,
        stem,
        units,
        names: Names {
            stem: plan.stem,
            taps: plan.taps.iter().map(|(_, n)| n.clone()).collect(),
            crop: plan.crop,
            head: plan.head,
        },
        taps,
        head,
        context: plan.context,
        reach,
    })
}

#[cfg(test)]
pub(crate) mod synthetic {
    //! Networks of the SpliceAI layout with random weights, and their Keras graphs, for tests
    //! that need no weight file.

    use super::*;
    use rand::{Rng, SeedableRng};

    fn conv(k: usize, d: usize, cin: usize, cout: usize, rng: &mut impl Rng) -> ConvWeights {
        let scale = 1.0 / ((k * cin) as f32).sqrt();
        ConvWeights {
            k,
            d,
            cin,
            cout,
            w: (0..k * cin * cout)
                .map(|_| rng.random_range(-scale..scale))
                .collect(),
            b: (0..cout).map(|_| rng.random_range(-0.1..0.1)).collect(),
        }
    }

    /// Units of `(k, d)`, skip taps after the stem and after the units in `taps`, `context`
    /// cropped.
    pub fn network(units: &[(usize, usize)], taps: &[usize], context: usize, seed: u64) -> Network {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut reach = (0, 0);
        let units: Vec<Unit> = units
            .iter()
            .map(|&(k, d)| {
                let (conv1, conv2) = (
                    conv(k, d, WIDTH, WIDTH, &mut rng),
                    conv(k, d, WIDTH, WIDTH, &mut rng),
                );
                for c in [&conv1, &conv2] {
                    reach = (reach.0 + c.reach().0, reach.1 + c.reach().1);
                }
                Unit {
                    scale: (0..WIDTH).map(|_| rng.random_range(0.5..1.5)).collect(),
                    shift: (0..WIDTH).map(|_| rng.random_range(-0.2..0.2)).collect(),
                    conv1,
                    conv2,
                    layers: Default::default(),
                }
            })
            .collect();
        assert!(reach.0 <= context && reach.1 <= context);
        Network {
            name: "synthetic".into(),
            stem: conv(1, 1, 4, WIDTH, &mut rng),
            units,
            taps: std::iter::once(0)
                .chain(taps.iter().copied())
                .map(|n| (n, conv(1, 1, WIDTH, WIDTH, &mut rng)))
                .collect(),
            head: conv(1, 1, WIDTH, 3, &mut rng),
            context,
            reach,
            names: Names::default(),
        }
    }

    /// A Keras 2 `model_config` of the SpliceAI layout, named as SpliceAI's files name it.
    pub fn keras_config(units: &[(usize, usize)], taps: &[usize], context: usize) -> Value {
        let mut layers = vec![];
        let mut n = (0, 0, 0, 0, 0);
        let name = |kind: &str, n: &mut usize| {
            *n += 1;
            format!("{kind}_{n}")
        };
        let layer = |class: &str, name: &str, config: Value, inputs: &[&str]| {
            let nodes: Vec<Value> = inputs.iter().map(|i| serde_json::json!([i, 0, 0, {}])).collect();
            let mut config = config;
            config["name"] = name.into();
            serde_json::json!({
                "class_name": class, "name": name, "config": config,
                "inbound_nodes": if inputs.is_empty() { serde_json::json!([]) } else { serde_json::json!([nodes]) },
            })
        };
        let conv = |f: usize, k: usize, d: usize, act: &str| {
            serde_json::json!({
                "filters": f, "kernel_size": [k], "dilation_rate": [d], "strides": [1],
                "padding": if k == 1 { "valid" } else { "same" }, "activation": act, "use_bias": true,
            })
        };
        let bn = serde_json::json!({"axis": -1, "epsilon": 0.001, "center": true, "scale": true});
        let relu = serde_json::json!({"activation": "relu"});
        layers.push(layer(
            "InputLayer",
            "input_1",
            serde_json::json!({"batch_input_shape": [null, null, 4]}),
            &[],
        ));
        let stem = name("conv1d", &mut n.0);
        layers.push(layer("Conv1D", &stem, conv(WIDTH, 1, 1, "linear"), &["input_1"]));
        let mut stream = stem.clone();
        let mut tap_names = vec![];
        let tap = |at: &str, layers: &mut Vec<Value>, n: &mut (usize, usize, usize, usize, usize)| {
            let t = name("conv1d", &mut n.0);
            layers.push(layer("Conv1D", &t, conv(WIDTH, 1, 1, "linear"), &[at]));
            t
        };
        tap_names.push(tap(&stream, &mut layers, &mut n));
        for (u, &(k, d)) in units.iter().enumerate() {
            let b1 = name("batch_normalization", &mut n.1);
            layers.push(layer("BatchNormalization", &b1, bn.clone(), &[&stream]));
            let a1 = name("activation", &mut n.2);
            layers.push(layer("Activation", &a1, relu.clone(), &[&b1]));
            let c1 = name("conv1d", &mut n.0);
            layers.push(layer("Conv1D", &c1, conv(WIDTH, k, d, "linear"), &[&a1]));
            let b2 = name("batch_normalization", &mut n.1);
            layers.push(layer("BatchNormalization", &b2, bn.clone(), &[&c1]));
            let a2 = name("activation", &mut n.2);
            layers.push(layer("Activation", &a2, relu.clone(), &[&b2]));
            let c2 = name("conv1d", &mut n.0);
            layers.push(layer("Conv1D", &c2, conv(WIDTH, k, d, "linear"), &[&a2]));
            let add = name("add", &mut n.3);
            layers.push(layer("Add", &add, serde_json::json!({}), &[&c2, &stream]));
            stream = add;
            if taps.contains(&(u + 1)) {
                tap_names.push(tap(&stream, &mut layers, &mut n));
            }
        }
        let mut sum = tap_names[0].clone();
        for t in &tap_names[1..] {
            let add = name("add", &mut n.3);
            layers.push(layer("Add", &add, serde_json::json!({}), &[&sum, t]));
            sum = add;
        }
        layers.push(layer(
            "Cropping1D",
            "cropping1d_1",
            serde_json::json!({"cropping": [context, context]}),
            &[&sum],
        ));
        let head = name("conv1d", &mut n.0);
        layers.push(layer(
            "Conv1D",
            &head,
            conv(3, 1, 1, "softmax"),
            &["cropping1d_1"],
        ));
        serde_json::json!({
            "class_name": "Model",
            "config": {"layers": layers, "input_layers": [["input_1", 0, 0]], "output_layers": [[head, 0, 0]]},
        })
    }

    /// What [`walk`] makes of `config`: the units' layer names and the taps, or the error.
    #[allow(clippy::type_complexity)]
    pub fn walk_config(config: &Value) -> Result<(Vec<[String; 7]>, Vec<(usize, String)>, usize), String> {
        let g = Graph::parse(config)?;
        walk(&g).map(|p| (p.units, p.taps, p.context))
    }
}
