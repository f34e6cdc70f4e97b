//! Where a process's resident memory is: `/proc/<pid>/smaps` summed by kind of mapping, so a
//! change in RSS can be put on the allocator's arenas, the threads' stacks, the C heap or the
//! mapped files. The kinds are read from the mappings' shapes (Linux, glibc, mimalloc), not from
//! the allocator itself: good enough to say which of them moved.

/// Resident memory by kind of mapping, in MiB, and the process's threads.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Resident {
    /// Anonymous mappings of at least `ARENA_MIB`: the Rust allocator's (mimalloc's) reserved
    /// arenas, where every Rust allocation lives.
    pub arenas: f64,
    /// Anonymous mappings right after a guard page (`---p`, adjacent), and the main stack.
    pub stacks: f64,
    /// glibc's heap (`[heap]`): what C code allocates with `malloc`.
    pub c_heap: f64,
    /// Every other anonymous mapping (glibc's per-thread arenas, smaller `mmap`s).
    pub other_anonymous: f64,
    /// Mapped files: the binary and its libraries.
    pub files: f64,
    /// Pages the process gave back with `MADV_FREE` that the kernel has not taken yet: counted in
    /// RSS until it does (only under memory pressure).
    pub lazy_free: f64,
    /// Transparent huge pages among the resident anonymous memory.
    pub huge_pages: f64,
    pub threads: f64,
}

/// An anonymous mapping this large or larger is taken for an allocator arena (mimalloc reserves
/// 1 GiB at a time; glibc's per-thread arenas are at most 64 MiB).
const ARENA_MIB: f64 = 128.0;

/// `pid`'s resident memory by kind now; all zero when it cannot be read (the process ended).
pub(crate) fn resident(pid: u32) -> Resident {
    let mut totals = Resident::default();
    let Ok(smaps) = std::fs::read_to_string(format!("/proc/{pid}/smaps")) else {
        return totals;
    };
    // The previous mapping: its end address and whether it was an inaccessible guard.
    let mut previous: Option<(u64, bool)> = None;
    let mut current: Option<Mapping> = None;
    for line in smaps.lines() {
        if let Some(mapping) = Mapping::parse_header(line) {
            if let Some(done) = current.take() {
                done.add_to(&mut totals, previous);
                previous = Some((done.end, done.guard));
            }
            current = Some(mapping);
        } else if let Some(mapping) = current.as_mut() {
            mapping.read_field(line);
        }
    }
    if let Some(done) = current {
        done.add_to(&mut totals, previous);
    }
    totals.threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0.0);
    totals
}

/// One mapping of smaps: its header and the fields summed.
struct Mapping {
    start: u64,
    end: u64,
    guard: bool,
    path: String,
    rss_kib: f64,
    lazy_free_kib: f64,
    huge_kib: f64,
}

impl Mapping {
    /// `start-end perms offset dev inode [path]`, or None for a field line (`Name:   value kB`).
    fn parse_header(line: &str) -> Option<Self> {
        let mut parts = line.split_whitespace();
        let (start, end) = parts.next()?.split_once('-')?;
        let (start, end) = (
            u64::from_str_radix(start, 16).ok()?,
            u64::from_str_radix(end, 16).ok()?,
        );
        let perms = parts.next()?;
        let path = parts.nth(3).unwrap_or("").to_owned();
        Some(Self {
            start,
            end,
            guard: perms.starts_with("---") && end - start <= 1 << 20,
            path,
            rss_kib: 0.0,
            lazy_free_kib: 0.0,
            huge_kib: 0.0,
        })
    }

    fn read_field(&mut self, line: &str) {
        let Some((name, value)) = line.split_once(':') else {
            return;
        };
        let kib = || {
            value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0)
        };
        match name {
            "Rss" => self.rss_kib = kib(),
            "LazyFree" => self.lazy_free_kib = kib(),
            "AnonHugePages" => self.huge_kib = kib(),
            _ => {}
        }
    }

    fn add_to(&self, totals: &mut Resident, previous: Option<(u64, bool)>) {
        let rss = self.rss_kib / 1024.0;
        let size_mib = (self.end - self.start) as f64 / (1024.0 * 1024.0);
        let after_guard = previous == Some((self.start, true));
        let kind = match self.path.as_str() {
            "[heap]" => &mut totals.c_heap,
            "[stack]" => &mut totals.stacks,
            "" if size_mib >= ARENA_MIB => &mut totals.arenas,
            "" if after_guard => &mut totals.stacks,
            "" => &mut totals.other_anonymous,
            _ => &mut totals.files,
        };
        *kind += rss;
        totals.lazy_free += self.lazy_free_kib / 1024.0;
        totals.huge_pages += self.huge_kib / 1024.0;
    }
}
