//! Bit-exact replicas of the two random generators the official pose code draws from, so
//! that our results are deterministic and can equal the official's:
//!
//! - [`TorchCpuGenerator`] is PyTorch's CPU generator (MT19937) and its `torch.randperm`, used
//!   by the ray-pose RANSAC (`utils/ray_utils.py`). The official draws from torch's global
//!   generator without seeding it, so its result depends on whatever ran before; we seed a
//!   private generator with a fixed seed at every call instead.
//! - [`NumpyGenerator`] is `np.random.default_rng(seed)` (PCG64 seeded through `SeedSequence`)
//!   with `Generator.choice(n, size, replace=False)`, used by the pose-alignment RANSAC
//!   (`utils/pose_align.py`), which the official seeds with 42.
//!
//! Sources: ATen's `mt19937.h` and `randperm_cpu`; numpy 1.26's `bit_generator.pyx`
//! (SeedSequence), `pcg64.h` and `_generator.pyx` (`choice`, `_shuffle_int`) with
//! `distributions.c` (`random_bounded_uint64`, Lemire's method).

/// PyTorch's CPU generator: MT19937 seeded like `torch.manual_seed(seed)`.
pub struct TorchCpuGenerator {
    state: [u32; 624],
    next: usize,
}

impl TorchCpuGenerator {
    const N: usize = 624;
    const M: usize = 397;

    /// `at::mt19937(seed)`: only the low 32 bits of the seed matter.
    pub fn new(seed: u64) -> Self {
        let mut state = [0u32; Self::N];
        state[0] = seed as u32;
        for j in 1..Self::N {
            state[j] = 1_812_433_253u32.wrapping_mul(state[j - 1] ^ (state[j - 1] >> 30)).wrapping_add(j as u32);
        }
        TorchCpuGenerator { state, next: Self::N }
    }

    fn twist(&mut self) {
        for i in 0..Self::N {
            let y = (self.state[i] & 0x8000_0000) | (self.state[(i + 1) % Self::N] & 0x7fff_ffff);
            let mag = if y & 1 == 1 { 0x9908_b0df } else { 0 };
            self.state[i] = self.state[(i + Self::M) % Self::N] ^ (y >> 1) ^ mag;
        }
        self.next = 0;
    }

    /// One 32-bit draw (`CPUGeneratorImpl::random()`).
    pub fn next_u32(&mut self) -> u32 {
        if self.next >= Self::N {
            self.twist();
        }
        let mut y = self.state[self.next];
        self.next += 1;
        y ^= y >> 11;
        y ^= (y << 7) & 0x9d2c_5680;
        y ^= (y << 15) & 0xefc6_0000;
        y ^ (y >> 18)
    }

    /// `torch.randperm(n)` on the CPU: a Fisher-Yates shuffle drawing `random() % (n - i)`.
    /// (ATen switches to 64-bit draws from n = 2^32 / 20 on, far beyond any ray map here.)
    pub fn randperm(&mut self, n: usize) -> Vec<i64> {
        debug_assert!((n as u64) < u64::from(u32::MAX) / 20, "randperm replica covers n < 2^32 / 20");
        let mut r: Vec<i64> = (0..n as i64).collect();
        for i in 0..n.saturating_sub(1) {
            let z = (self.next_u32() as u64 % (n - i) as u64) as usize;
            r.swap(i, z + i);
        }
        r
    }
}

/// numpy's `Generator(PCG64(SeedSequence(seed)))`, i.e. `np.random.default_rng(seed)`.
pub struct NumpyGenerator {
    state: u128,
    inc: u128,
    /// PCG64 hands out 32-bit draws in pairs from one 64-bit output (`pcg64_next32`).
    buffered: Option<u32>,
}

impl NumpyGenerator {
    const MULTIPLIER: u128 = (2_549_297_995_355_413_924u128 << 64) | 4_865_540_595_714_422_341u128;

    pub fn new(seed: u32) -> Self {
        let words = seed_sequence_state(&[seed], 8);
        let word64 = |i: usize| u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
        let initstate = (u128::from(word64(0)) << 64) | u128::from(word64(1));
        let initseq = (u128::from(word64(2)) << 64) | u128::from(word64(3));
        // pcg_setseq_128_srandom_r
        let mut g = NumpyGenerator { state: 0, inc: (initseq << 1) | 1, buffered: None };
        g.step();
        g.state = g.state.wrapping_add(initstate);
        g.step();
        g
    }

    fn step(&mut self) {
        self.state = self.state.wrapping_mul(Self::MULTIPLIER).wrapping_add(self.inc);
    }

    /// XSL-RR output of the advanced state.
    pub fn next_u64(&mut self) -> u64 {
        self.step();
        let high = (self.state >> 64) as u64;
        let low = self.state as u64;
        (high ^ low).rotate_right((high >> 58) as u32)
    }

    pub fn next_u32(&mut self) -> u32 {
        if let Some(v) = self.buffered.take() {
            return v;
        }
        let next = self.next_u64();
        self.buffered = Some((next >> 32) as u32);
        next as u32
    }

    /// `random_bounded_uint64(0, max)`: uniform in [0, max], by Lemire's method on 32-bit
    /// draws (the only branch reachable for the populations used here).
    fn bounded(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        assert!(max < u64::from(u32::MAX), "bounded draws replicate the 32-bit branch only");
        let excl = max + 1;
        let mut m = u64::from(self.next_u32()) * excl;
        let mut leftover = m & 0xffff_ffff;
        if leftover < excl {
            let threshold = (u64::from(u32::MAX) - max) % excl;
            while leftover < threshold {
                m = u64::from(self.next_u32()) * excl;
                leftover = m & 0xffff_ffff;
            }
        }
        m >> 32
    }

    /// `_shuffle_int(n, first, data)`: shuffles positions n-1 down to `first`.
    fn shuffle_tail(&mut self, data: &mut [u64], first: usize) {
        for i in (first..data.len()).rev() {
            let j = self.bounded(i as u64) as usize;
            data.swap(i, j);
        }
    }

    /// `Generator.choice(population, size, replace=False)` (with its default shuffle):
    /// `size` distinct indices in [0, population).
    pub fn choice_without_replacement(&mut self, population: usize, size: usize) -> Vec<usize> {
        assert!(size <= population, "cannot take more samples than the population without replacement");
        let (pop, size_u) = (population as u64, size as u64);
        if pop > 10_000 && size_u > pop / 50 {
            // Tail shuffle of the whole range.
            let mut idx: Vec<u64> = (0..pop).collect();
            self.shuffle_tail(&mut idx, (population - size).max(1));
            return idx[population - size..].iter().map(|&v| v as usize).collect();
        }
        // Floyd's algorithm with numpy's open-addressing set, then a shuffle.
        let mask = gen_mask((1.2 * size as f64) as u64);
        const EMPTY: u64 = u64::MAX;
        let mut set = vec![EMPTY; (mask + 1) as usize];
        let mut idx = vec![0u64; size];
        for j in pop - size_u..pop {
            let val = self.bounded(j);
            let mut loc = val & mask;
            while set[loc as usize] != EMPTY && set[loc as usize] != val {
                loc = (loc + 1) & mask;
            }
            // j >= pop - size_u: add before subtracting (j - pop underflows; debug builds panic).
            let out = (j + size_u - pop) as usize;
            if set[loc as usize] == EMPTY {
                set[loc as usize] = val;
                idx[out] = val;
            } else {
                loc = j & mask;
                while set[loc as usize] != EMPTY {
                    loc = (loc + 1) & mask;
                }
                set[loc as usize] = j;
                idx[out] = j;
            }
        }
        self.shuffle_tail(&mut idx, 1);
        idx.into_iter().map(|v| v as usize).collect()
    }
}

/// `_gen_mask`: the smallest all-ones bit mask >= `max`.
fn gen_mask(max: u64) -> u64 {
    let mut mask = max;
    for shift in [1, 2, 4, 8, 16, 32] {
        mask |= mask >> shift;
    }
    mask
}

/// `SeedSequence(entropy).generate_state(n_words, uint32)` with the default pool of 4 words.
fn seed_sequence_state(entropy: &[u32], n_words: usize) -> Vec<u32> {
    const POOL: usize = 4;
    const INIT_A: u32 = 0x43b0_d7e5;
    const MULT_A: u32 = 0x931e_8875;
    const INIT_B: u32 = 0x8b51_f9dd;
    const MULT_B: u32 = 0x58f3_8ded;
    const MIX_MULT_L: u32 = 0xca01_f9dd;
    const MIX_MULT_R: u32 = 0x4973_f715;
    const XSHIFT: u32 = 16;
    let mut hash_const = INIT_A;
    let mut hashmix = |value: u32| {
        let mut v = value ^ hash_const;
        hash_const = hash_const.wrapping_mul(MULT_A);
        v = v.wrapping_mul(hash_const);
        v ^ (v >> XSHIFT)
    };
    let mix = |x: u32, y: u32| {
        let r = MIX_MULT_L.wrapping_mul(x).wrapping_sub(MIX_MULT_R.wrapping_mul(y));
        r ^ (r >> XSHIFT)
    };
    let mut pool = [0u32; POOL];
    for (i, p) in pool.iter_mut().enumerate() {
        *p = hashmix(entropy.get(i).copied().unwrap_or(0));
    }
    for src in 0..POOL {
        for dst in 0..POOL {
            if src != dst {
                pool[dst] = mix(pool[dst], hashmix(pool[src]));
            }
        }
    }
    for &word in entropy.iter().skip(POOL) {
        for p in pool.iter_mut() {
            *p = mix(*p, hashmix(word));
        }
    }
    let mut hash_const = INIT_B;
    (0..n_words)
        .map(|i| {
            let mut v = pool[i % POOL] ^ hash_const;
            hash_const = hash_const.wrapping_mul(MULT_B);
            v = v.wrapping_mul(hash_const);
            v ^ (v >> XSHIFT)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg_attr(miri, ignore = "libtorch (FFI)")]
    fn randperm_equals_torch() {
        // libtorch is linked in: compare with its own CPU randperm under the same seed.
        for seed in [0u64, 42, 67_280_421_310_721] {
            tch::manual_seed(seed as i64);
            let mut ours = TorchCpuGenerator::new(seed);
            for n in [1usize, 2, 9, 300, 14_977] {
                let theirs = Vec::<i64>::try_from(&tch::Tensor::randperm(n as i64, (tch::Kind::Int64, tch::Device::Cpu)))
                    .unwrap();
                assert_eq!(ours.randperm(n), theirs, "seed {seed}, n {n}");
            }
        }
    }

    /// The same generator without libtorch (so miri runs it too): torch 2.11's CPU output of
    /// `torch.manual_seed(seed); [torch.randperm(n).tolist() for n in (1, 2, 9, 20)]`.
    #[test]
    fn randperm_matches_recorded_torch_output() {
        let recorded: [(u64, [&[usize]; 4]); 2] = [
            (0, [&[0], &[0, 1], &[0, 6, 4, 2, 8, 3, 7, 5, 1], &[3, 14, 4, 16, 11, 18, 10, 12, 8, 19, 13, 9, 2, 17, 0, 7, 6, 5, 15, 1]]),
            (42, [&[0], &[0, 1], &[5, 0, 7, 3, 4, 1, 8, 2, 6], &[13, 3, 6, 16, 14, 11, 8, 15, 7, 2, 1, 9, 10, 0, 19, 4, 17, 5, 12, 18]]),
        ];
        for (seed, perms) in recorded {
            let mut ours = TorchCpuGenerator::new(seed);
            for want in perms {
                let got: Vec<usize> = ours.randperm(want.len()).into_iter().map(|v| v as usize).collect();
                assert_eq!(got, want, "seed {seed}, n {}", want.len());
            }
        }
    }

    #[test]
    fn choice_draws_distinct_indices_in_range() {
        let mut g = NumpyGenerator::new(42);
        // The last case takes numpy's tail-shuffle branch (population > 10000, size > 2%);
        // under miri with a smaller sample.
        let tail_shuffle = if cfg!(miri) { (10_050, 300) } else { (20_000, 10_000) };
        for (pop, size) in [(10, 5), (13, 7), (3, 3), tail_shuffle] {
            let mut s = g.choice_without_replacement(pop, size);
            assert_eq!(s.len(), size);
            assert!(s.iter().all(|&v| v < pop));
            s.sort_unstable();
            s.dedup();
            assert_eq!(s.len(), size);
        }
    }
}
