//! py3langid's classifier (naive Bayes over byte n-grams found by a byte automaton), the
//! arithmetic of `pipeline.normalize.language._classify_chunk` for one text at a time: the walk
//! is a load per byte here, where Python pays an interpreter step (or a numpy gather) per byte.
use half::f16;
use half::slice::HalfFloatSliceExt;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

fn words<T, const N: usize>(raw: &[u8], from: fn([u8; N]) -> T) -> Vec<T> {
    raw.chunks_exact(N).map(|c| from(c.try_into().unwrap())).collect()
}

/// The model's arrays, copied once from py3langid's (little-endian bytes from numpy).
#[pyclass(frozen, module = "newspipe_native")]
pub struct LangModel {
    nextmove: Vec<u32>,
    rowbase: Vec<u32>,
    output: Vec<i32>,
    // features x classes, row-major, in the model's own float16: half the memory a text's rows
    // are read from (the table is larger than the caches, so a feature's row is a cache miss)
    ptc: Vec<f16>,
    pc: Vec<f32>,
    classes: usize,
    aliases: Vec<(usize, usize)>,
}

#[pymethods]
impl LangModel {
    #[new]
    fn new(
        nextmove: &[u8],
        rowbase: &[u8],
        output: &[u8],
        ptc: &[u8],
        pc: &[u8],
        aliases: Vec<(usize, usize)>,
    ) -> PyResult<Self> {
        let pc = words(pc, f32::from_le_bytes);
        let classes = pc.len();
        let ptc: Vec<f16> = words(ptc, |b: [u8; 2]| f16::from_bits(u16::from_le_bytes(b)));
        if classes == 0 || ptc.len() % classes != 0 {
            return Err(pyo3::exceptions::PyValueError::new_err("ptc is not features x classes"));
        }
        let model = LangModel {
            nextmove: words(nextmove, u32::from_le_bytes),
            rowbase: words(rowbase, u32::from_le_bytes),
            output: words(output, i32::from_le_bytes),
            ptc,
            pc,
            classes,
            aliases,
        };
        let features = model.ptc.len() / classes;
        let sound = model.output.len() == model.rowbase.len()
            && model.nextmove.iter().all(|&s| (s as usize) < model.rowbase.len())
            && model.rowbase.iter().all(|&r| r as usize + 256 <= model.nextmove.len())
            && model.output.iter().all(|&f| f < features as i32)
            && model.aliases.iter().all(|&(i, j)| i < classes && j < classes);
        if !sound {
            return Err(pyo3::exceptions::PyValueError::new_err("inconsistent language model"));
        }
        Ok(model)
    }

    /// (class index, normalized probability) of each UTF-8 text, as py3langid's `classify`
    /// with `norm_probs=True`.
    fn classify_many(&self, texts: Vec<Bound<'_, PyBytes>>) -> Vec<(usize, f32)> {
        let texts: Vec<&[u8]> = texts.iter().map(|t| t.as_bytes()).collect();
        let mut feats = vec![Vec::new(); texts.len()];
        self.walk_many(&texts, &mut feats);
        let mut work = Work::default();
        let mut scores = vec![0f32; self.classes];
        texts
            .iter()
            .zip(feats.iter_mut())
            .map(|(t, f)| self.score(t.len(), f, &mut work, &mut scores))
            .collect()
    }
}

/// Texts walked side by side: a step of the automaton is a load from a table of tens of MB
/// that depends on the step before, so one text waits out a cache miss per byte; the steps of
/// independent texts overlap their misses.
const LANES: usize = 8;

/// Scratch space reused across the texts of a call.
#[derive(Default)]
struct Work {
    counted: Vec<(usize, f32)>, // (feature, log1p(count)), by feature
    row: Vec<f32>,
}

/// Rows asked for ahead of their use: a row is a cache miss, and the misses overlap this way.
const AHEAD: usize = 4;

#[inline(always)]
fn prefetch(row: &[f16]) {
    #[cfg(target_arch = "x86_64")]
    unsafe {
        // SAFETY: a prefetch is only a hint; it never faults, whatever the address.
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let at = row.as_ptr() as *const i8;
        let mut off = 0;
        while off < std::mem::size_of_val(row) {
            _mm_prefetch(at.wrapping_add(off), _MM_HINT_T0);
            off += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = row;
}

/// `scores[k] += row[k] * weight` for each class, the row converted from float16. With the
/// CPU's F16C and FMA (checked once, at run time: the build targets any x86-64) eight classes
/// a step in registers; else through `scratch`. The fused multiply-add rounds once where the
/// other path rounds twice: scores agree to float32 rounding either way.
fn add_row(scores: &mut [f32], row: &[f16], weight: f32, scratch: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    {
        static FAST: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let fast = *FAST.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx")
                && std::arch::is_x86_feature_detected!("f16c")
                && std::arch::is_x86_feature_detected!("fma")
        });
        if fast {
            // SAFETY: the CPU has the features `add_row_f16c` is compiled for.
            unsafe { add_row_f16c(scores, row, weight) };
            return;
        }
    }
    row.convert_to_f32_slice(scratch);
    for (s, p) in scores.iter_mut().zip(scratch.iter()) {
        *s += p * weight;
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx,f16c,fma")]
unsafe fn add_row_f16c(scores: &mut [f32], row: &[f16], weight: f32) {
    use std::arch::x86_64::*;
    let n = scores.len().min(row.len());
    let w = _mm256_set1_ps(weight);
    let mut i = 0;
    while i + 8 <= n {
        // SAFETY: i + 8 <= n, within both slices; unaligned loads and stores.
        unsafe {
            let halves = _mm_loadu_si128(row.as_ptr().add(i) as *const __m128i);
            let at = scores.as_mut_ptr().add(i);
            _mm256_storeu_ps(at, _mm256_fmadd_ps(_mm256_cvtph_ps(halves), w, _mm256_loadu_ps(at)));
        }
        i += 8;
    }
    for k in i..n {
        scores[k] = row[k].to_f32().mul_add(weight, scores[k]);
    }
}

impl LangModel {
    /// The byte automaton over each text, `LANES` texts at a time (of similar lengths, so that
    /// few lanes idle): the features each text's walk outputs, in text order.
    fn walk_many(&self, texts: &[&[u8]], feats: &mut [Vec<i32>]) {
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let start = self.rowbase[0] as usize;
        for group in order.chunks(LANES) {
            let mut base = [start; LANES];
            let longest = group.iter().map(|&i| texts[i].len()).max().unwrap_or(0);
            for at in 0..longest {
                for (lane, &i) in group.iter().enumerate() {
                    if let Some(&byte) = texts[i].get(at) {
                        let state = self.nextmove[base[lane] + byte as usize] as usize;
                        base[lane] = self.rowbase[state] as usize;
                        let f = self.output[state];
                        if f >= 0 {
                            feats[i].push(f);
                        }
                    }
                }
            }
        }
    }

    /// py3langid's naive Bayes over one text's features (`text_len` bytes long).
    fn score(
        &self,
        text_len: usize,
        feats: &mut [i32],
        work: &mut Work,
        scores: &mut [f32],
    ) -> (usize, f32) {
        let c = self.classes;
        scores.fill(0.0); // no feature: uniform, as py3langid under normalized probabilities
        if !feats.is_empty() {
            feats.sort_unstable();
            let counted = &mut work.counted;
            counted.clear();
            let mut at = 0;
            while at < feats.len() {
                let f = feats[at];
                let mut end = at + 1;
                while end < feats.len() && feats[end] == f {
                    end += 1;
                }
                counted.push((f as usize, ((end - at) as f32).ln_1p()));
                at = end;
            }
            let rows = |f: usize| &self.ptc[f * c..(f + 1) * c];
            for &(f, _) in counted.iter().take(AHEAD) {
                prefetch(rows(f));
            }
            work.row.resize(c, 0.0);
            for (k, &(f, weight)) in counted.iter().enumerate() {
                if let Some(&(next, _)) = counted.get(k + AHEAD) {
                    prefetch(rows(next));
                }
                add_row(scores, rows(f), weight, &mut work.row);
            }
            for (s, p) in scores.iter_mut().zip(&self.pc) {
                *s += p;
            }
        }
        let scale = 1.0f32 / (text_len.max(1) as f32).sqrt();
        let mut top = f32::NEG_INFINITY;
        for s in scores.iter_mut() {
            *s *= scale;
            top = top.max(*s);
        }
        let mut sum = 0f32;
        for s in scores.iter_mut() {
            *s = (*s - top).exp();
            sum += *s;
        }
        for s in scores.iter_mut() {
            *s /= sum;
        }
        for &(i, j) in &self.aliases {
            scores[i] += scores[j];
            scores[j] = 0.0;
        }
        let mut best = 0;
        for (k, &s) in scores.iter().enumerate() {
            if s > scores[best] {
                best = k;
            }
        }
        (best, scores[best])
    }
}
