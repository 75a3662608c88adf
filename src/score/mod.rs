//! The SpliceAI base model in Rust: the SpliceAI-10k network of PyPI `spliceai` 1.3.1, its
//! weights read from the original Keras `.h5` files, run on the CPU.
//!
//! - [`weights`]: where the five `.h5` files are cached, their SHA-256, the download.
//! - [`score_job`]: the score stage, every position of every selected gene through the
//!   network (or read from a file, [`import`]), shifted ([`shifts`]) and written in
//!   resumable gene batches ([`store`]) under the `memory.score` budget.
//! - [`SpliceAi`]: an average of some of the five networks over a sequence of any length:
//!   its outputs plus [`SpliceAi::context`] (5,000) nucleotides each side in, one
//!   `[neither, acceptor, donor]` row per output position out (Keras's channel order).
//!
//! The Keras original scores a sequence in blocks of 5,000 positions, each with its 10,000
//! nucleotides of context recomputed through every layer (and every layer computed over all
//! 15,000 positions, "same"-padded). Here a sequence is cut into chunks of up to
//! [`SpliceAi::chunk`] outputs whose inputs overlap by exactly the network's reach (5,000
//! each side, the sum of `(k-1)·d/2` over its 32 dilated convolutions), and each layer
//! computes only the positions later layers read. Outputs are the same as Keras's within
//! float rounding (tests/spliceai.rs checks 1e-4 against TensorFlow); a chunk of `c` outputs
//! costs `c` plus about 6,700 positions' work instead of `3c`.
//!
//! Memory: [`SpliceAi::working_bytes`] prices a chunk's buffers and
//! [`SpliceAi::chunk_for_budget`] picks the longest chunk a budget allows, so that the score
//! stage reserves before it allocates; [`SpliceAi::weight_bytes`] and
//! [`SpliceAi::load_bytes`] price the networks themselves.
//!
//! ```no_run
//! use spliceboost::score::{weights, SpliceAi};
//!
//! let dir = weights::default_dir();
//! weights::ensure(&dir, &[1, 2, 3, 4, 5])?; // downloads from PyPI on first use
//! let model = SpliceAi::load(&[1, 2, 3, 4, 5], &dir)?;
//! let flank = "N".repeat(model.context());
//! let seq = format!("{flank}ACGTAGGTAAGTCCCTTTTCAGGT{flank}");
//! let mut out = vec![[0f32; 3]; 24];
//! model.predict(seq.as_bytes(), &mut out);
//! # anyhow::Ok(())
//! ```

mod config;
pub mod import;
mod keras;
mod kernel;
mod net;
pub mod shifts;
mod stage;
pub mod store;
pub mod weights;

use std::path::{Path, PathBuf};

pub use config::{Flank, ScoreConfig};
pub use kernel::simd;
pub use stage::{reverse_complement, score_job, settings, ScoreJob, ScoreSummary};

use crate::error::InputError;
use crate::memory::{MemoryError, MemoryReservation};
use keras::Network;
use net::Buffers;

/// Outputs per chunk when nothing else is asked for: 28 MiB of buffers, about 12% of the
/// work spent on the context.
pub const DEFAULT_CHUNK: usize = 50_000;

/// The smallest chunk [`SpliceAi::chunk_for_budget`] proposes: below it the context costs
/// more than twice the outputs' own work.
pub const MIN_CHUNK: usize = 5_000;

/// An average of SpliceAI networks.
#[derive(Debug)]
pub struct SpliceAi {
    nets: Vec<Network>,
    models: Vec<u8>,
    chunk: usize,
}

/// A chunk's buffers, reused from call to call of [`SpliceAi::predict_with`].
#[derive(Debug)]
pub struct Workspace(Buffers);

impl Workspace {
    /// The longest chunk these buffers hold.
    pub fn chunk(&self) -> usize {
        self.0.chunk
    }
}

impl SpliceAi {
    /// Loads models `models` (each among 1..=5) of SpliceAI 1.3.1 from `dir`, checking each
    /// file's SHA-256 first. [`weights::ensure`] downloads missing files.
    pub fn load(models: &[u8], dir: &Path) -> Result<Self, InputError> {
        if models.is_empty() {
            return Err(InputError::new("no SpliceAI model chosen").hint("choose models among 1..5"));
        }
        let mut nets = vec![];
        for &m in models {
            let (name, sha) = weights::model_file(m)?;
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| {
                InputError::new(format!("cannot read: {e}"))
                    .file(&path)
                    .hint("spliceboost downloads the SpliceAI weights on first use; check the data directory")
            })?;
            weights::verify(&bytes, &path, sha)?;
            nets.push(Network::from_h5_bytes(bytes, &path)?);
        }
        Self::new(nets, models.to_vec())
    }

    /// Loads Keras files of the SpliceAI-10k layout without checking them against the
    /// 1.3.1 checksums (retrained or converted networks).
    pub fn load_files(paths: &[PathBuf]) -> Result<Self, InputError> {
        let nets = paths
            .iter()
            .map(|p| Network::from_h5(p))
            .collect::<Result<Vec<_>, _>>()?;
        if nets.is_empty() {
            return Err(InputError::new("no SpliceAI model file given"));
        }
        let ids = (1..=nets.len()).map(|i| i as u8).collect();
        Self::new(nets, ids)
    }

    fn new(nets: Vec<Network>, models: Vec<u8>) -> Result<Self, InputError> {
        let (first, rest) = nets.split_first().expect("at least one network");
        if let Some(n) = rest
            .iter()
            .find(|n| n.context != first.context || n.reach != first.reach)
        {
            return Err(InputError::new(format!(
                "{} has context {} and reach {:?}, {} has {} and {:?}: they cannot be averaged",
                n.name, n.context, n.reach, first.name, first.context, first.reach
            )));
        }
        Ok(Self {
            nets,
            models,
            chunk: DEFAULT_CHUNK,
        })
    }

    /// The models averaged (1..=5 for SpliceAI's own).
    pub fn models(&self) -> &[u8] {
        &self.models
    }

    /// Nucleotides of context each side of the scored positions (5,000).
    pub fn context(&self) -> usize {
        self.nets[0].context
    }

    /// Positions each output reads on each side (5,000 and 5,000): chunks overlap by their sum.
    pub fn reach(&self) -> (usize, usize) {
        self.nets[0].reach
    }

    /// Outputs per chunk of [`SpliceAi::predict`].
    pub fn chunk(&self) -> usize {
        self.chunk
    }

    /// Sets the outputs per chunk of [`SpliceAi::predict`] (at least 1).
    pub fn with_chunk(mut self, chunk: usize) -> Self {
        self.chunk = chunk.max(1);
        self
    }

    /// The architecture of the first network, as read from its file.
    pub fn describe(&self) -> String {
        self.nets[0].describe()
    }

    /// Bytes the networks' weights hold.
    pub fn weight_bytes(&self) -> u64 {
        self.nets.iter().map(Network::bytes).sum()
    }

    /// Bytes [`SpliceAi::load`] needs for `models` networks: each file read whole and parsed
    /// one after another, and the weights kept (measured: 6.7 MiB for one, 17.4 MiB for
    /// five; priced with headroom, tests/spliceai.rs checks it).
    pub fn load_bytes(models: usize) -> u64 {
        const FILE: u64 = 3_131_720;
        const WEIGHTS: u64 = 2_795_148;
        3 * FILE + models as u64 * WEIGHTS + (1 << 20)
    }

    /// Bytes of the buffers for chunks of `chunk` outputs: three activations of
    /// `chunk + 10,000` rows of 32 floats and the skip sum of `chunk` rows (28.1 MiB for the
    /// default 50,000).
    pub fn working_bytes(&self, chunk: usize) -> u64 {
        Buffers::bytes(chunk, self.reach())
    }

    /// The longest chunk whose buffers fit in `bytes` (at most `max`), or `None` when not
    /// even [`MIN_CHUNK`] (or `max`, if smaller) fits.
    pub fn chunk_for_budget(&self, bytes: u64, max: usize) -> Option<usize> {
        let fixed = self.working_bytes(0);
        let per = self.working_bytes(1) - fixed;
        let fit = (bytes.checked_sub(fixed)? / per).min(max as u64) as usize;
        (fit >= MIN_CHUNK.min(max).max(1)).then_some(fit)
    }

    /// Buffers for chunks of up to `chunk` outputs ([`SpliceAi::working_bytes`] of them).
    pub fn workspace(&self, chunk: usize) -> Workspace {
        Workspace(Buffers::new(chunk.max(1), self.reach()))
    }

    /// Reserves in `res` the buffers for the longest chunk (at most `max_chunk`) that it can
    /// still hold, then allocates them: how the score stage gets its workspace. A budget that
    /// cannot hold chunks of [`MIN_CHUNK`] is refused before anything is allocated.
    pub fn reserve_workspace(
        &self,
        res: &mut MemoryReservation,
        max_chunk: usize,
    ) -> Result<Workspace, MemoryError> {
        let least = MIN_CHUNK.min(max_chunk).max(1);
        let chunk = match self.chunk_for_budget(res.available(), max_chunk) {
            Some(chunk) => chunk,
            None => {
                let what = format!("SpliceAI's buffers for chunks of {least} positions");
                res.require(res.size() + self.working_bytes(least), what)?;
                least
            }
        };
        res.try_grow(self.working_bytes(chunk))?;
        Ok(self.workspace(chunk))
    }

    /// Scores `seq`: `out.len()` positions with [`SpliceAi::context`] nucleotides of context on
    /// each side (`seq.len() == out.len() + 2 * context`). A, C, G, T in either case are bases;
    /// anything else is N (all zero, as SpliceAI encodes N). Each row of `out` becomes the
    /// models' average `[neither, acceptor, donor]`. Allocates buffers for chunks of
    /// `min(chunk, out.len())` outputs.
    ///
    /// Panics if the lengths do not agree.
    pub fn predict(&self, seq: &[u8], out: &mut [[f32; 3]]) {
        if out.is_empty() {
            assert_eq!(
                seq.len(),
                2 * self.context(),
                "SpliceAI scores a sequence's middle"
            );
            return;
        }
        let mut ws = self.workspace(self.chunk.min(out.len()));
        self.predict_with(&mut ws, seq, out);
    }

    /// [`SpliceAi::predict`] in `ws`'s buffers, in chunks of up to `ws.chunk()` outputs.
    pub fn predict_with(&self, ws: &mut Workspace, seq: &[u8], out: &mut [[f32; 3]]) {
        let ctx = self.context();
        assert_eq!(
            seq.len(),
            out.len() + 2 * ctx,
            "SpliceAI scores a sequence's middle: {} outputs read {} nucleotides",
            out.len(),
            out.len() + 2 * ctx
        );
        let (rl, rr) = self.reach();
        let weight = 1.0 / self.nets.len() as f32;
        let buf = &mut ws.0;
        assert_eq!(buf.reach, (rl, rr), "a workspace of another network");
        for (i, out) in out.chunks_mut(buf.chunk).enumerate() {
            let start = i * buf.chunk + ctx;
            let input = &seq[start - rl..start + out.len() + rr];
            out.fill([0.0; 3]);
            for net in &self.nets {
                net::forward(net, input, buf, out, weight);
            }
        }
    }
}

#[cfg(test)]
mod tests;
