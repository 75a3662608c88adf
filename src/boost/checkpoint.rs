//! Checkpoints of a training in progress, so that a killed training resumes where it stopped.
//!
//! With `train.checkpoint_every = N` the trainer writes its trees, log and best iteration so
//! far every N trees, and once more when it ends, into the binned cache's directory (which
//! outlives a killed run, unlike the run's staging directory). A checkpoint is named by a
//! hash of everything that decides the trees — the cache, the parameters, the seed, each
//! row's role — so one training never takes another's. Resuming replays the saved trees over
//! the binned cache, adding each tree's leaf values to the margins in the order training
//! did, which gives the same margins bit for bit; every later round draws its rows, columns
//! and rounding from (seed, round) alone, so the resumed training ends with exactly the
//! model of an uninterrupted one.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::tree::Tree;
use super::{IterLog, Role, TrainParams};
use crate::binning::cache::PageCache;
use crate::binning::checksum::Xxh64;
use crate::binning::json_float;
use crate::error::InputError;

const FORMAT: &str = "spliceboost-checkpoint";
const VERSION: u32 = 1;

/// A training's state after some rounds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint {
    pub format: String,
    pub version: u32,
    pub key: String,
    #[serde(with = "json_float::one_f32")]
    pub base_margin: f32,
    pub best_iteration: Option<usize>,
    #[serde(with = "json_float::opt_f64")]
    pub best_score: Option<f64>,
    /// Early stopping ended the training: no round follows.
    pub stopped: bool,
    pub log: Vec<IterLog>,
    /// Every tree grown so far (early stopping's cut comes after).
    pub trees: Vec<Tree>,
}

/// Where the checkpoints of one training go.
pub struct Checkpoints {
    pub path: PathBuf,
    pub key: String,
    pub every: usize,
}

/// Removes a finished training's checkpoint: its job calls it once its outputs are written.
pub fn remove_checkpoint(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(crate::error::locate_io(
            e.into(),
            path,
            "cannot remove the finished training's checkpoint",
        )),
        _ => Ok(()),
    }
}

impl Checkpoints {
    /// The checkpoints of training `params` with `seed` on `cache` with these row roles, or
    /// `None` when `train.checkpoint_every` is 0.
    pub fn of(cache: &PageCache, params: &TrainParams, seed: u64, roles: &[Role]) -> Option<Self> {
        if params.checkpoint_every == 0 {
            return None;
        }
        let mut h = Xxh64::new(0);
        h.update(cache.manifest.fingerprint.as_bytes());
        // The parameters as a model records them (checkpointing and the cache's place do not
        // decide the trees).
        let mut p = params.clone();
        p.cache_dir = None;
        h.update(
            serde_json::to_string(&p)
                .expect("parameters serialize")
                .as_bytes(),
        );
        h.update(&seed.to_le_bytes());
        let codes: Vec<u8> = roles.iter().map(|&r| r as u8).collect();
        h.update(&codes);
        let key = format!("{:016x}", h.digest());
        Some(Self {
            path: cache.dir.join(format!("checkpoint-{key}.json")),
            key,
            every: params.checkpoint_every,
        })
    }

    /// The saved state of this training, if any. A file that cannot be read, or that is not
    /// this training's, is an error naming it: the user deletes it, or the cache.
    pub fn load(&self) -> anyhow::Result<Option<Checkpoint>> {
        let file = match std::fs::File::open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(crate::error::locate_io(
                    e.into(),
                    &self.path,
                    "cannot read the checkpoint",
                ))
            }
        };
        let bad = |why: String| {
            InputError::new(format!("unreadable training checkpoint: {why}"))
                .file(&self.path)
                .hint("delete the file; the training then starts from its first tree")
        };
        let c: Checkpoint =
            serde_json::from_reader(std::io::BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
        if c.format != FORMAT || c.version != VERSION || c.key != self.key {
            return Err(bad("another format, version or training".into()).into());
        }
        if c.log.len() != c.trees.len() {
            return Err(bad(format!("{} trees and {} log entries", c.trees.len(), c.log.len())).into());
        }
        Ok(Some(c))
    }

    /// Writes the state atomically: a kill leaves the previous checkpoint whole.
    pub fn save(
        &self,
        base_margin: f32,
        best: Option<(usize, f64)>,
        stopped: bool,
        log: &[IterLog],
        trees: &[Tree],
    ) -> anyhow::Result<()> {
        #[derive(Serialize)]
        struct Out<'a> {
            format: &'a str,
            version: u32,
            key: &'a str,
            #[serde(with = "json_float::one_f32")]
            base_margin: f32,
            best_iteration: Option<usize>,
            #[serde(with = "json_float::opt_f64")]
            best_score: Option<f64>,
            stopped: bool,
            log: &'a [IterLog],
            trees: &'a [Tree],
        }
        let out = Out {
            format: FORMAT,
            version: VERSION,
            key: &self.key,
            base_margin,
            best_iteration: best.map(|b| b.0),
            best_score: best.map(|b| b.1),
            stopped,
            log,
            trees,
        };
        crate::io::write_atomic(&self.path, |w| Ok(serde_json::to_writer(w, &out)?))
    }
}

/// Adds the leaf values of `trees`, in order, to every row's margin, routing the rows
/// through the binned cache in one pass: each row's margin takes the same additions in the
/// same order as in training. When `snapshot` names a tree, `at` receives every row's margin
/// just after that tree (early stopping's margins at the best round).
pub fn replay(
    cache: &PageCache,
    trees: &[Tree],
    margin: &mut [f32],
    snapshot: Option<usize>,
    at: &mut Vec<f32>,
) -> anyhow::Result<()> {
    let cuts = &cache.manifest.cuts;
    let missing: Vec<Option<u8>> = cuts
        .features
        .iter()
        .map(|fb| fb.has_missing.then(|| fb.missing_code()))
        .collect();
    if snapshot.is_some() {
        at.clear();
        at.resize(margin.len(), 0.0);
    }
    cache.for_each_page(None, |page| {
        let r0 = page.first_row as usize;
        for (r, m) in margin[r0..r0 + page.rows].iter_mut().enumerate() {
            for (t, tree) in trees.iter().enumerate() {
                let mut n = 0;
                while !tree.is_leaf(n) {
                    let f = tree.feature[n] as usize;
                    n = tree.route_bin(n, page.code(r, &cache.layout, f), missing[f]);
                }
                *m += tree.value[n];
                if snapshot == Some(t) {
                    at[r0 + r] = *m;
                }
            }
        }
        Ok(())
    })
}
