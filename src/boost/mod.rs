//! Gradient boosting over the binned page cache, under the train budget.
//!
//! What stays in memory is O(rows) small arrays — margin, gradient, hessian, node — plus a
//! pool of histograms; the features stay on disk in the page cache and are read one page at a
//! time, once per tree level. Trees grow depth-wise: one pass over the pages per level routes
//! every row (training and validation alike) to its child and builds the histogram of the
//! smaller child of each split; the larger child's is the parent's minus the smaller's.
//! Each page is split into one contiguous chunk per thread, each thread sums into its own
//! histograms, and the chunks are added in order: the same model for the same seed and thread
//! count, at any budget.

mod model;

pub(crate) use model::{read_json, versioned};
pub use model::{Importance, IterLog, Model};

use std::time::Instant;

use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::binning::cache::{PageCache, PAGE_ROWS};
use crate::binning::Cuts;
use crate::error::InputError;
use crate::hist::{page_features, GradPair, Histogram, PageFeatures};
use crate::memory::MemoryReservation;
use crate::tree::{best_split, Split, SplitParams, Tree};

/// The loss a model minimises.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Objective {
    /// Log loss of a sigmoid of the margin.
    #[default]
    #[serde(rename = "binary:logistic")]
    Logistic,
    /// Half squared error of the margin (for tests and regression targets).
    #[serde(rename = "reg:squarederror")]
    SquaredError,
}

impl Objective {
    /// Writes every row's gradient and hessian into the caller's buffers; rows with a zero
    /// `weight` get zeros (they take no part in the tree).
    pub fn gradients(
        &self,
        margin: &[f32],
        target: &[f32],
        weight: &[f32],
        grad: &mut [f32],
        hess: &mut [f32],
    ) {
        let chunk = PAGE_ROWS;
        (grad.par_chunks_mut(chunk), hess.par_chunks_mut(chunk))
            .into_par_iter()
            .enumerate()
            .for_each(|(c, (g, h))| {
                let off = c * chunk;
                for i in 0..g.len() {
                    let (m, y, w) = (margin[off + i], target[off + i], weight[off + i]);
                    let (gi, hi) = match self {
                        Objective::Logistic => {
                            let p = sigmoid(m);
                            (p - y, (p * (1.0 - p)).max(1e-16))
                        }
                        Objective::SquaredError => (m - y, 1.0),
                    };
                    g[i] = gi * w;
                    h[i] = hi * w;
                }
            });
    }

    /// The margin's meaning as a prediction.
    pub fn transform(&self, margin: f32) -> f32 {
        match self {
            Objective::Logistic => sigmoid(margin),
            Objective::SquaredError => margin,
        }
    }

    /// The constant margin that best fits a target with weighted mean `mean`.
    pub fn base_margin(&self, mean: f64) -> f32 {
        match self {
            Objective::Logistic => {
                let p = mean.clamp(1e-6, 1.0 - 1e-6);
                (p / (1.0 - p)).ln() as f32
            }
            Objective::SquaredError => mean as f32,
        }
    }
}

fn sigmoid(m: f32) -> f32 {
    1.0 / (1.0 + (-m).exp())
}

/// The validation metric early stopping watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EvalMetric {
    #[default]
    Logloss,
    Auc,
    Rmse,
}

impl EvalMetric {
    fn higher_is_better(self) -> bool {
        matches!(self, EvalMetric::Auc)
    }

    fn compute(self, p: &[f32], y: &[f32]) -> f64 {
        match self {
            EvalMetric::Logloss => crate::eval::logloss(p, y),
            EvalMetric::Auc => crate::eval::roc_auc(p, y),
            EvalMetric::Rmse => {
                let s: f64 = p.iter().zip(y).map(|(&a, &b)| ((a - b) as f64).powi(2)).sum();
                (s / p.len().max(1) as f64).sqrt()
            }
        }
    }
}

/// Training parameters: the `[train]` section. Names and defaults follow XGBoost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainParams {
    /// The one-vs-rest class: `neither`, `donor` or `acceptor`.
    #[serde(default = "d_class")]
    pub class: String,
    #[serde(default)]
    pub objective: Objective,
    #[serde(default = "d_trees")]
    pub n_estimators: usize,
    #[serde(default = "d_eta")]
    pub learning_rate: f64,
    #[serde(default = "d_depth")]
    pub max_depth: usize,
    #[serde(default = "d_one")]
    pub min_child_weight: f64,
    #[serde(default = "d_one")]
    pub lambda: f64,
    #[serde(default)]
    pub alpha: f64,
    #[serde(default)]
    pub gamma: f64,
    #[serde(default = "d_one")]
    pub subsample: f64,
    #[serde(default = "d_one")]
    pub colsample_bytree: f64,
    #[serde(default = "d_one")]
    pub scale_pos_weight: f64,
    #[serde(default = "d_bins")]
    pub max_bin: usize,
    /// The quantile sketch's parameter `k`: larger is more exact and takes more of the
    /// sketch budget (about 8·k bytes a feature per level).
    #[serde(default = "d_sketch")]
    pub sketch_size: usize,
    /// Stop after this many rounds without a better validation score (0: never).
    #[serde(default)]
    pub early_stopping_rounds: usize,
    #[serde(default)]
    pub eval_metric: EvalMetric,
    /// Share of genes held out for validation (0 for none).
    #[serde(default = "d_valid")]
    pub valid_fraction: f64,
    /// Where binned page caches live; default `<run.out_dir>/cache`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_dir: Option<std::path::PathBuf>,
}

fn d_class() -> String {
    "donor".into()
}
fn d_trees() -> usize {
    100
}
fn d_eta() -> f64 {
    0.3
}
fn d_depth() -> usize {
    6
}
fn d_one() -> f64 {
    1.0
}
fn d_bins() -> usize {
    256
}
fn d_sketch() -> usize {
    crate::binning::DEFAULT_SKETCH_SIZE
}
fn d_valid() -> f64 {
    0.2
}

impl Default for TrainParams {
    fn default() -> Self {
        toml::from_str("").expect("every field has a default")
    }
}

impl TrainParams {
    /// The class code of `class`.
    pub fn class_code(&self) -> Result<u8, String> {
        crate::io::CLASS_NAMES
            .iter()
            .position(|c| *c == self.class)
            .map(|c| c as u8)
            .ok_or_else(|| format!("`{}` is not a class; use neither, donor or acceptor", self.class))
    }

    /// Checks ranges; the error names the key.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, m: &str| Err((format!("train.{k}"), m.to_string()));
        if let Err(m) = self.class_code() {
            return Err(("train.class".into(), m));
        }
        if self.n_estimators == 0 {
            return bad("n_estimators", "must be at least 1");
        }
        if !(self.learning_rate > 0.0 && self.learning_rate <= 1.0) {
            return bad("learning_rate", "must be in (0, 1]");
        }
        if self.max_depth == 0 || self.max_depth > 16 {
            return bad("max_depth", "must be from 1 to 16");
        }
        if !(self.subsample > 0.0 && self.subsample <= 1.0) {
            return bad("subsample", "must be in (0, 1]");
        }
        if !(self.colsample_bytree > 0.0 && self.colsample_bytree <= 1.0) {
            return bad("colsample_bytree", "must be in (0, 1]");
        }
        if !(2..=256).contains(&self.max_bin) {
            return bad("max_bin", "must be from 2 to 256");
        }
        if !(64..=1 << 20).contains(&self.sketch_size) {
            return bad("sketch_size", "must be from 64 to 1048576");
        }
        if !(0.0..1.0).contains(&self.valid_fraction) {
            return bad("valid_fraction", "must be in [0, 1)");
        }
        for (k, v) in [
            ("lambda", self.lambda),
            ("alpha", self.alpha),
            ("gamma", self.gamma),
            ("min_child_weight", self.min_child_weight),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return bad(k, "must be a finite number ≥ 0");
            }
        }
        if !(self.scale_pos_weight > 0.0 && self.scale_pos_weight.is_finite()) {
            return bad("scale_pos_weight", "must be a finite number > 0");
        }
        Ok(())
    }

    fn split_params(&self) -> SplitParams {
        SplitParams {
            lambda: self.lambda,
            alpha: self.alpha,
            gamma: self.gamma,
            min_child_weight: self.min_child_weight,
        }
    }
}

/// A row's part in training.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Train,
    Valid,
    /// Neither (rows of genes left out).
    Skip,
}

/// A stable per-(seed, tree, row) draw in `[0, 1)` for row subsampling.
fn draw(seed: u64, tree: usize, row: usize) -> f64 {
    let mut z = seed
        ^ (tree as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (row as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Heap bytes the trainer needs: per-row state, and the histogram pool for nodes of
/// `slots` histogram slots (the last of the cuts' slot offsets).
pub fn train_bytes(rows: u64, slots: usize, max_depth: usize, threads: usize) -> (u64, u64) {
    let state = rows * crate::plan::STATE_BYTES_PER_ROW;
    let hists = Histogram::bytes(slots) * crate::plan::hist_nodes(max_depth as u64, threads as u64);
    (state, hists)
}

/// Bytes of the largest page of a cache: what streaming holds resident at a time.
pub fn page_budget(m: &crate::binning::cache::CacheManifest) -> u64 {
    (0..m.pages.len()).map(|i| m.page_len(i)).max().unwrap_or(0)
}

/// What one level pass does at a node.
#[derive(Clone, Copy)]
struct Route {
    feature: usize,
    /// The split feature's missing-value code, when it has missing values.
    missing: Option<u8>,
}

/// A trained model and the margins it gives every cached row.
pub struct Fit {
    pub model: Model,
    /// The margin of every row (whatever its role) from the trees the model keeps: with early
    /// stopping, those up to the best iteration. Rows left out of training ([`Role::Skip`])
    /// are routed through every tree too, so these are their out-of-sample predictions.
    pub margin: Vec<f32>,
}

/// Trains one model on the cached rows. `roles` says which rows train and which validate;
/// `on_iter` sees each iteration's log (for progress display).
pub fn train(
    cache: &PageCache,
    labels: &[u8],
    roles: &[Role],
    params: &TrainParams,
    seed: u64,
    res: &mut MemoryReservation,
    on_iter: impl FnMut(&IterLog),
) -> anyhow::Result<Model> {
    Ok(fit(cache, labels, roles, params, seed, res, on_iter)?.model)
}

/// [`train`], also returning every row's margin at the kept iteration.
pub fn fit(
    cache: &PageCache,
    labels: &[u8],
    roles: &[Role],
    params: &TrainParams,
    seed: u64,
    res: &mut MemoryReservation,
    mut on_iter: impl FnMut(&IterLog),
) -> anyhow::Result<Fit> {
    let cuts: &Cuts = &cache.manifest.cuts;
    let n = labels.len();
    let nf = cuts.features.len();
    let threads = rayon::current_num_threads();
    let pf = page_features(&cache.layout, cuts);
    let slots = *pf.offsets.last().expect("offsets end with the total");
    let (state_bytes, hist_bytes) = train_bytes(n as u64, slots, params.max_depth, threads);
    let page_bytes = cache
        .manifest
        .bins_bytes()
        .div_ceil(cache.manifest.pages.len().max(1) as u64);
    let need = state_bytes + hist_bytes + page_bytes;
    res.require(
        need,
        format!(
            "per-row state for {n} rows, histograms for {nf} features at depth {}, one page",
            params.max_depth
        ),
    )?;
    res.try_grow(state_bytes + hist_bytes)?;
    // The whole cache stays mapped when it fits beside the state; otherwise each page is
    // handed back after use and only one is resident at a time.
    let resident = res.try_grow(cache.manifest.bins_bytes()).is_ok();
    if !resident {
        res.try_grow(page_bytes)?;
    }
    cache.set_resident(resident);

    let class = params.class_code().map_err(InputError::new)?;
    let target: Vec<f32> = labels.iter().map(|&l| f32::from(u8::from(l == class))).collect();
    let positives = target
        .iter()
        .zip(roles)
        .filter(|(&t, &r)| t > 0.5 && r == Role::Train)
        .count();
    let train_rows = roles.iter().filter(|&&r| r == Role::Train).count();
    if positives == 0 || positives == train_rows {
        return Err(InputError::new(format!(
            "class `{}` has {} of {train_rows} training rows: a one-vs-rest model needs both positive and negative rows",
            params.class, positives
        ))
        .hint("check the label column, or train another class")
        .into());
    }
    let pos_w = params.scale_pos_weight as f32;
    let weight_of = |i: usize| -> f32 {
        match roles[i] {
            Role::Train if target[i] > 0.5 => pos_w,
            Role::Train => 1.0,
            _ => 0.0,
        }
    };
    let (mut sw, mut swy) = (0.0f64, 0.0f64);
    for (i, &t) in target.iter().enumerate() {
        let w = weight_of(i) as f64;
        sw += w;
        swy += w * t as f64;
    }
    let base = params.objective.base_margin(swy / sw);

    let mut margin = vec![base; n];
    let mut grad = vec![0f32; n];
    let mut hess = vec![0f32; n];
    let mut weight = vec![0f32; n];
    let mut node = vec![0u32; n];
    // The margins at the best iteration so far, copied when it improves: early stopping
    // keeps those trees, and the caller gets what they predict.
    let mut best_margin: Vec<f32> = vec![];
    let sp = params.split_params();
    // Validation predictions and targets, gathered each round into buffers made once.
    let n_valid = roles.iter().filter(|&&r| r == Role::Valid).count();
    let mut valid_p: Vec<f32> = Vec::with_capacity(n_valid);
    let mut valid_y: Vec<f32> = Vec::with_capacity(n_valid);

    let mut trees: Vec<Tree> = Vec::with_capacity(params.n_estimators);
    let mut log: Vec<IterLog> = vec![];
    let mut best: Option<(usize, f64)> = None;
    let t0 = Instant::now();
    for t in 0..params.n_estimators {
        // Row subsample: a row trains this tree when its draw falls under the rate.
        weight.par_iter_mut().enumerate().for_each(|(i, w)| {
            *w = if params.subsample < 1.0 && draw(seed, t, i) >= params.subsample {
                0.0
            } else {
                weight_of(i)
            };
        });
        params
            .objective
            .gradients(&margin, &target, &weight, &mut grad, &mut hess);
        let features = column_sample(nf, params.colsample_bytree, seed, t);
        let tree = grow(cache, &pf, &features, &grad, &hess, &mut node, params, &sp)?;
        margin
            .par_iter_mut()
            .zip(node.par_iter())
            .for_each(|(m, &nd)| *m += tree.value[nd as usize]);
        trees.push(tree);

        let train_loss = training_loss(params.objective, &margin, &target, roles);
        let valid_score = (n_valid > 0).then(|| {
            valid_p.clear();
            valid_y.clear();
            for i in (0..n).filter(|&i| roles[i] == Role::Valid) {
                valid_p.push(params.objective.transform(margin[i]));
                valid_y.push(target[i]);
            }
            params.eval_metric.compute(&valid_p, &valid_y)
        });
        let entry = IterLog {
            iteration: t,
            train_loss,
            valid_score,
            seconds: t0.elapsed().as_secs_f64(),
        };
        on_iter(&entry);
        log.push(entry);
        if let Some(v) = valid_score {
            let better = match best {
                None => true,
                Some((_, b)) => {
                    if params.eval_metric.higher_is_better() {
                        v > b
                    } else {
                        v < b
                    }
                }
            };
            if better && v.is_finite() {
                best = Some((t, v));
                if params.early_stopping_rounds > 0 {
                    best_margin.clear();
                    best_margin.extend_from_slice(&margin);
                }
            }
            if params.early_stopping_rounds > 0
                && best.is_some_and(|(bi, _)| t - bi >= params.early_stopping_rounds)
            {
                break;
            }
        }
    }
    if params.early_stopping_rounds > 0 {
        if let Some((bi, _)) = best {
            trees.truncate(bi + 1);
            margin = best_margin;
        }
    }
    let model = Model::new(
        params,
        base,
        cuts.features.iter().map(|f| f.name.clone()).collect(),
        trees,
        best,
        log,
    );
    Ok(Fit { model, margin })
}

/// Mean training loss (log loss, or RMSE for squared error) over the training rows, summed
/// in fixed page-sized chunks so that the figure never depends on the thread count.
fn training_loss(objective: Objective, margin: &[f32], target: &[f32], roles: &[Role]) -> f64 {
    let parts: Vec<(f64, u64)> = margin
        .par_chunks(PAGE_ROWS)
        .enumerate()
        .map(|(c, m)| {
            let off = c * PAGE_ROWS;
            let (mut s, mut k) = (0.0f64, 0u64);
            for (i, &mi) in m.iter().enumerate() {
                if roles[off + i] != Role::Train {
                    continue;
                }
                let p = objective.transform(mi);
                let y = target[off + i];
                s += match objective {
                    Objective::Logistic => crate::eval::logloss_term(p, y),
                    Objective::SquaredError => ((p - y) as f64).powi(2),
                };
                k += 1;
            }
            (s, k)
        })
        .collect();
    let (s, k) = parts.iter().fold((0.0, 0), |a, b| (a.0 + b.0, a.1 + b.1));
    let mean = s / k.max(1) as f64;
    match objective {
        Objective::Logistic => mean,
        Objective::SquaredError => mean.sqrt(),
    }
}

/// The features a tree may split on: all, or a seeded sample of `rate` of them.
fn column_sample(nf: usize, rate: f64, seed: u64, tree: usize) -> Vec<usize> {
    if rate >= 1.0 {
        return (0..nf).collect();
    }
    let k = ((rate * nf as f64).round() as usize).clamp(1, nf);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xC0C0 ^ (tree as u64) << 20);
    let mut v = sample(&mut rng, nf, k).into_vec();
    v.sort_unstable();
    v
}

/// Sums of gradient pairs over rows with a non-zero hessian, chunked by page so the order
/// of additions never changes.
fn total(grad: &[f32], hess: &[f32]) -> GradPair {
    let parts: Vec<GradPair> = grad
        .par_chunks(PAGE_ROWS)
        .zip(hess.par_chunks(PAGE_ROWS))
        .map(|(g, h)| {
            let mut s = [0.0f64; 2];
            for (&a, &b) in g.iter().zip(h) {
                s[0] += a as f64;
                s[1] += b as f64;
            }
            s
        })
        .collect();
    parts.iter().fold([0.0, 0.0], |a, b| [a[0] + b[0], a[1] + b[1]])
}

#[allow(clippy::too_many_arguments)]
fn grow(
    cache: &PageCache,
    pf: &PageFeatures,
    features: &[usize],
    grad: &[f32],
    hess: &[f32],
    node: &mut [u32],
    params: &TrainParams,
    sp: &SplitParams,
) -> anyhow::Result<Tree> {
    let cuts = &cache.manifest.cuts;
    let eta = params.learning_rate;
    node.fill(0);
    let root_total = total(grad, hess);
    let mut tree = Tree::root(
        (sp.weight(root_total[0], root_total[1]) * eta) as f32,
        root_total[1] as f32,
    );
    // The root's histogram: one pass, nothing to route.
    let mut built = level_pass(cache, pf, grad, hess, node, &tree, &[None], &[0], 1)?;
    let mut root_hist = built.pop().expect("one histogram");
    root_hist.fill_sparse_zeros(cuts, pf, root_total);
    // Nodes of the current level with their histograms and sums.
    let mut level: Vec<(usize, Histogram, GradPair)> = vec![(0, root_hist, root_total)];
    for depth in 0..params.max_depth {
        let splits: Vec<Option<Split>> = level
            .par_iter()
            .map(|(_, h, tot)| best_split(h, *tot, cuts, &pf.offsets, features, sp))
            .collect();
        if splits.iter().all(Option::is_none) {
            break;
        }
        let mut routes: Vec<Option<Route>> = vec![None; tree.len() + 2 * splits.len()];
        let mut children = vec![];
        for ((id, _, _), s) in level.iter().zip(&splits) {
            let Some(s) = s else { continue };
            let fb = &cuts.features[s.feature];
            let weights = (
                (sp.weight(s.left[0], s.left[1]) * eta) as f32,
                (sp.weight(s.right[0], s.right[1]) * eta) as f32,
            );
            let (l, r) = tree.split(*id, s, fb.threshold(s.bin), weights);
            routes[*id] = Some(Route {
                feature: s.feature,
                missing: fb.has_missing.then(|| fb.missing_code()),
            });
            children.push((*id, l, r, *s));
        }
        routes.truncate(tree.len());
        if depth + 1 == params.max_depth {
            // The children are leaves: route rows to them, build nothing.
            level_pass(cache, pf, grad, hess, node, &tree, &routes, &[], 0)?;
            break;
        }
        // Build the smaller child of each split (by hessian), subtract for the other.
        let mut slot = vec![-1i32; tree.len()];
        let mut small = vec![];
        for (k, &(_, l, r, s)) in children.iter().enumerate() {
            let (c, tot) = if s.left[1] <= s.right[1] {
                (l, s.left)
            } else {
                (r, s.right)
            };
            slot[c] = k as i32;
            small.push((c, tot));
        }
        let slots: Vec<i32> = slot;
        let mut hists = level_pass(
            cache,
            pf,
            grad,
            hess,
            node,
            &tree,
            &routes,
            &slots,
            children.len(),
        )?;
        let mut parents: std::collections::HashMap<usize, Histogram> =
            level.into_iter().map(|(id, h, _)| (id, h)).collect();
        let mut next = Vec::with_capacity(2 * children.len());
        for (k, (pid, l, r, s)) in children.into_iter().enumerate() {
            let mut built = std::mem::replace(&mut hists[k], Histogram { bins: vec![] });
            built.fill_sparse_zeros(cuts, pf, small[k].1);
            let parent = parents.remove(&pid).expect("parent histogram kept");
            let mut other = built.clone();
            other.subtract_from(&parent);
            let (lh, rh) = if small[k].0 == l {
                (built, other)
            } else {
                (other, built)
            };
            next.push((l, lh, s.left));
            next.push((r, rh, s.right));
        }
        level = next;
    }
    Ok(tree)
}

/// One pass over every page: moves each row whose node has a route to its child, then adds
/// the row to the histogram of its node's build slot (when it has one).
#[allow(clippy::too_many_arguments)]
fn level_pass(
    cache: &PageCache,
    pf: &PageFeatures,
    grad: &[f32],
    hess: &[f32],
    node: &mut [u32],
    tree: &Tree,
    routes: &[Option<Route>],
    slots: &[i32],
    n_build: usize,
) -> anyhow::Result<Vec<Histogram>> {
    let hist_slots = *pf.offsets.last().expect("offsets end with the total");
    let threads = rayon::current_num_threads();
    let mut per_thread: Vec<Vec<Histogram>> = (0..threads)
        .map(|_| (0..n_build).map(|_| Histogram::zeros(hist_slots)).collect())
        .collect();
    let layout = &cache.layout;
    for p in 0..cache.manifest.pages.len() {
        let page = cache.page(p)?;
        let r0 = page.first_row as usize;
        let rows = page.rows;
        let chunk = rows.div_ceil(threads);
        node[r0..r0 + rows]
            .par_chunks_mut(chunk)
            .zip(per_thread.par_iter_mut())
            .enumerate()
            .for_each(|(t, (nodes, hs))| {
                for (i, nd) in nodes.iter_mut().enumerate() {
                    let r = t * chunk + i;
                    let mut cur = *nd as usize;
                    if let Some(rt) = routes.get(cur).copied().flatten() {
                        let code = page.code(r, layout, rt.feature);
                        cur = tree.route_bin(cur, code, rt.missing);
                        *nd = cur as u32;
                    }
                    let h = hess[r0 + r];
                    if h != 0.0 {
                        if let Some(&s) = slots.get(cur) {
                            if s >= 0 {
                                hs[s as usize].add_row(&page, layout, pf, r, grad[r0 + r] as f64, h as f64);
                            }
                        }
                    }
                }
            });
        if !cache.is_resident() {
            cache.release(p);
        }
    }
    // Add the threads' histograms in thread order.
    let mut out = per_thread.remove(0);
    for hs in per_thread {
        for (a, b) in out.iter_mut().zip(&hs) {
            a.add(b);
        }
    }
    Ok(out)
}
