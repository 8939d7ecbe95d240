/* lazybench C core: public interface.
 *
 * This header is read twice: by the C compiler and by cffi's cdef parser,
 * so it holds only plain declarations (no #include, no macros with values
 * cffi cannot parse).  Every variant implements the same life cycle:
 * create -> (run | get | force | reset)* -> release.
 *
 * fork(): an array belongs to the process that created it.  In a child
 * process, every call on an inherited array but lb_release (reset, force,
 * get, run, bench, view sessions, lb_view_read, the self-test, lb_check)
 * fails with LB_ESTATE and a message naming fork (lb_view_read, which
 * cannot return an error, ends the process with it); reading the lazy
 * memory of a flat variant through an address taken before the fork ends
 * the child with SIGSEGV (eager's memory is a private copy and still
 * reads its values).  So a child never changes its parent's arrays,
 * never reads their lazy memory as zeros, never waits for a handler
 * thread that only the parent has.  lb_release of an inherited array
 * frees the child's copies only.  Arrays the child creates work as
 * anywhere.
 */

typedef struct lb_array lb_array;

/* Generators: C functions of the element index. */
enum lb_generator {
    LB_GEN_HASH = 0,        /* cheap mixing function of i */
    LB_GEN_SPIN = 1,        /* `spin` rounds of mixing per element */
    LB_GEN_RECURRENCE = 2,  /* element i reads element i-1 of the same array */
    LB_GEN_COUNT = 3
};

/* Workloads: loops in C, so no Python runs inside a timed region. */
enum lb_workload_kind {
    LB_WL_SEQ = 0,          /* elements [0, m) in order */
    LB_WL_RANDOM = 1,       /* m seeded uniform random indices */
    LB_WL_STRIDED = 2,      /* first element of pages [0, m) */
    LB_WL_RANDOM_PAGES = 3, /* first element of m seeded uniform random
                               pages (with replacement) */
    LB_WL_COUNT = 4
};

enum lb_status {
    LB_OK = 0,
    LB_EINVAL = -1,         /* bad argument */
    LB_ENOMEM = -2,         /* mapping or allocation failed */
    LB_EUNAVAIL = -3,       /* variant not available on this system */
    LB_ELAZY = -4,          /* a lazy evaluation failed (nesting, cycle) */
    LB_ESTATE = -5,         /* handler displaced, use after release, or
                               an array inherited across fork() */
    LB_ESYS = -6            /* a system call failed */
};

typedef struct lb_params {
    int64_t n;              /* number of int64 elements */
    int generator;          /* enum lb_generator */
    int64_t spin;           /* rounds for LB_GEN_SPIN */
    uint64_t seed;          /* generator seed */
    int64_t fault_around;   /* pages one fault materialises (0 or 1: one;
                               LB_FAULT_AROUND_AUTO: adaptive, below) */
} lb_params;

/* Adaptive fault-around (lb_params.fault_around = LB_FAULT_AROUND_AUTO),
 * in the manner of the kernel's readahead window: each thread keeps, per
 * array it last faulted on, where its last run of pages ended and the
 * window that run was claimed with.  A fault on the page right after that
 * run continues a sequential stream: the window grows four-fold, up to
 * LB_FA_AUTO_MAX pages.  Any other fault (random access, a stream that
 * jumped) starts again at one page.  Runs stop early at a page another
 * fault materialised or at the array's end, as fixed fault-around does.
 * lb_fa_step is the rule alone, for tests on synthetic fault streams: the
 * window a fault on `page` claims, given the state, which it advances as
 * if the whole window were claimed (state zeroed: no fault yet). */
enum { LB_FAULT_AROUND_AUTO = -1, LB_FA_AUTO_GROWTH = 4,
       LB_FA_AUTO_MAX = 64 };
typedef struct lb_fa_state {
    int64_t next;           /* page after the last run, +1 (0: none) */
    int64_t window;         /* the last run's window (0: none) */
} lb_fa_state;
int64_t lb_fa_step(lb_fa_state *s, int64_t page);

typedef struct lb_workload {
    int kind;               /* enum lb_workload_kind */
    double fraction;        /* touched fraction, (0, 1] */
    uint64_t seed;          /* for LB_WL_RANDOM */
} lb_workload;

typedef struct lb_result {
    uint64_t checksum;
    int64_t accesses;       /* elements read */
    int64_t elapsed_ns;     /* CLOCK_MONOTONIC around the loop only */
} lb_result;

typedef struct lb_counters {
    uint64_t faults;                /* lazy faults handled */
    uint64_t pages_materialised;
    uint64_t elements_materialised;
    uint64_t generator_calls;
    uint64_t max_nesting;           /* deepest nested lazy fault seen */
    uint64_t decodes;               /* instructions decoded (redirect) */
    uint64_t decode_hits;           /* decode cache hits */
    uint64_t decode_misses;         /* decode cache misses */
    uint64_t evicted_pages;         /* pages closed again to stay within
                                       the mapping budget (mprotect) */
} lb_counters;

/* Variants. */
int lb_variant_count(void);
const char *lb_variant_name(int variant);
/* 1 if usable here; else 0 and a reason in `why`. */
int lb_variant_available(int variant, char *why, size_t len);

/* 1 if the variant runs with these parameters; else 0 and why. */
int lb_variant_supports(int variant, const lb_params *params, char *why,
                        size_t len);
/* 1 if the variant honours lb_params.fault_around. */
int lb_variant_has_fault_around(int variant);
/* Elements one fault materialises (a page, or one element). */
int64_t lb_variant_granule(int variant);
/* For the reports: 1 if the variant is a base for ratios (it computes
 * everything before the workload runs); the k-th floor its fault path is
 * made of (NULL past the last); the floor timing its signal and page
 * installation together (NULL: none). */
int lb_variant_base(int variant);
const char *lb_variant_part(int variant, int k);
const char *lb_variant_joint_floor(int variant);
/* For the profile: how its faults are taken.  The signal they arrive by
 * (0: none); 1 if faults drive it at all (a signal, or a handler thread
 * resolving userfaultfd events); 1 if every fault is followed by a
 * single-step trap (SIGTRAP). */
int lb_variant_signal(int variant);
int lb_variant_fault_driven(int variant);
int lb_variant_single_steps(int variant);

const char *lb_generator_name(int generator);
/* splitmix64's increment, which the hash generator and the random
 * workload use (LB_GOLDEN in lb_core.h): for the Python versions. */
extern const uint64_t lb_golden;
const char *lb_workload_name(int kind);

/* Life cycle.  All return LB_OK or a negative enum lb_status; the message
 * of the last failure in this thread is lb_last_error(). */
int lb_create(int variant, const lb_params *params, lb_array **out);
int lb_reset(lb_array *a);          /* back to unevaluated (fresh pages) */
int lb_force(lb_array *a);          /* materialise every element */
int lb_get(lb_array *a, int64_t i, int64_t *out);
/* Views: reading the array's memory from outside the core.  Flat variants
 * expose their memory (NULL for the others, read through lb_view_read,
 * which takes its faults on the core's signal stack).
 * Between lb_view_enter and lb_view_leave the calling thread takes the
 * array's faults as in a guarded call, but a lazy-evaluation error is
 * fatal: there is no call to return it from.  A session holds the array
 * (see lb_release) until it is left. */
const void *lb_view_address(const lb_array *a);
int lb_view_enter(lb_array *a);
void lb_view_leave(lb_array *a);
int64_t lb_view_read(lb_array *a, int64_t i);
int lb_run(lb_array *a, const lb_workload *w, lb_result *out);
/* The address user code reads element i through: sigsegv-redirect's
 * handle, eager-handles' list entry, a flat variant's element itself.
 * LB_EUNAVAIL for variants that give out none (swcheck, and
 * sigsegv-redirect-essay, whose handles only the suite's loops read).
 * A fault on a handle is taken only inside a guarded call (lb_call) or a
 * view session; anywhere else it is a fatal error with a message. */
int lb_handle(const lb_array *a, int64_t i, uintptr_t *out);
/* Why the variant's arrays give out no handles and no views, or NULL. */
const char *lb_variant_no_handles(int variant);
/* Guarded call of user code: out = fn(handle of element i, arg).  A read
 * the core cannot serve safely returns LB_ELAZY with the reason. */
typedef int64_t (*lb_user_fn)(const void *handle, void *arg);
int lb_call(lb_array *a, lb_user_fn fn, int64_t i, void *arg, int64_t *out);
/* The redirect handler's verdict on the instruction at `address`, decoded
 * as in a fault (LB_OK: a listed read-only form; LB_ELAZY with the
 * reason).  Not for signal context. */
int lb_redirect_check(uintptr_t address);
/* Rows of the read-only instruction table (read_forms.c): Capstone's
 * mnemonic of row k, and its operand count and memory operand index. */
int lb_read_form_rows(void);
const char *lb_read_form_mnemonic(int k, int *nops, int *mem);
/* `loops` times: reset when `reset` is non-zero (untimed), then the
 * workload (timed).  out gets the summed workload time and the last loop's
 * checksum.  Without reset every loop after the first is a warm pass. */
int lb_bench(lb_array *a, const lb_workload *w, int64_t loops, int reset,
             lb_result *out);
/* Safe while other threads are inside the array: calls in flight (and
 * view sessions) complete, the last one out frees it; calls that start
 * meanwhile fail with LB_ESTATE.  Once freed, the pointer is gone. */
void lb_release(lb_array *a);
/* LB_OK if `a` may be used here; LB_ESTATE if it was released or was
 * created by the parent of this process (inherited across fork()). */
int lb_check(const lb_array *a);
const char *lb_last_error(void);

void lb_counters_read(const lb_array *a, lb_counters *out);
void lb_counters_clear(lb_array *a);

int64_t lb_page_elements(void);      /* elements per page */
int lb_max_nesting(void);            /* documented nested-fault depth */
int64_t lb_max_elements(void);       /* largest n lb_create accepts */
int64_t lb_max_spin(void);           /* largest spin lb_create accepts */
/* sigsegv-mprotect's mapping budget: kernel mappings accounted to `a`'s
 * region (0 for other variants), to all its live arrays in the process,
 * the most that total may reach (0 before the first such array), and
 * vm.max_map_count. */
void lb_mappings(const lb_array *a, int64_t *array, int64_t *total,
                 int64_t *budget, int64_t *max_map_count);
/* Distinct pages and elements a workload reads (computed, not timed). */
int lb_workload_footprint(const lb_array *a, const lb_workload *w,
                          int64_t *pages, int64_t *accesses);
/* The element indices the workload reads on an array of n elements, in
 * its order, from the same loop the timed runs use: their number, written
 * to out when cap is at least that (out NULL: only the number); or a
 * negative enum lb_status. */
int64_t lb_workload_indices(const lb_workload *w, int64_t n, int64_t *out,
                            int64_t cap);

/* Several threads.  `threads` (1..64) new threads run the workload
 * together.  disjoint 0 ("same"): each runs the whole workload over the
 * whole array.  disjoint 1: the array's P pages are split into `threads`
 * contiguous slices, slice t = pages [t*P/T, (t+1)*P/T) (elements clipped
 * to n), and thread t runs the workload over its slice as over an array
 * of that many elements (index 0: the slice's first element; fraction,
 * kind and seed the same).  A slice of no page is LB_EINVAL.
 * `loops` times: reset (untimed, skipped where reset changes nothing),
 * then the threads, created beforehand and waiting, are released at once;
 * a loop's time runs from their release to the last one's end.  out: the
 * sum of the threads' checksums of the last loop, the reads of one loop
 * (all threads), the summed loop times.  A thread's failure is the
 * status, with its message.  Every variant runs so: each thread takes
 * its own faults (its own signal stack, decoder and single step), except
 * in the uffd-thread variants, whose one handler thread resolves every
 * thread's faults in turn; those that pin their caller (same, other) pin
 * every thread to the same CPU. */
int lb_bench_threads(lb_array *a, const lb_workload *w, int threads,
                     int disjoint, int64_t loops, lb_result *out);
/* Distinct pages and reads (all threads) of one such loop. */
int lb_threads_footprint(const lb_array *a, const lb_workload *w,
                         int threads, int disjoint, int64_t *pages,
                         int64_t *accesses);
/* The checksum lb_run (threads 1) or lb_bench_threads would return,
 * computed from the generator over the workload's index stream, without
 * an array: hash and spin only (recurrence is LB_EUNAVAIL). */
int lb_expected(const lb_params *p, const lb_workload *w, int threads,
                int disjoint, uint64_t *checksum);
/* Nanoseconds (CLOCK_MONOTONIC) lb_create takes to build one array
 * (eager computes every element there); the array is then released,
 * untimed.  The status of lb_create. */
int lb_build_ns(int variant, const lb_params *p, int64_t *ns);

/* Floors, measured in the same run as the variants (floors.c): the
 * bare costs a variant's fault path is made of.  Floor k's name and
 * description; 1 if it runs here, else 0 and the reason in `why`; and
 * the total nanoseconds of `iters` operations of it (negative: an
 * enum lb_status, the message in lb_last_error). */
int lb_floor_count(void);
const char *lb_floor_name(int floor);
const char *lb_floor_what(int floor);
int lb_floor_available(int floor, char *why, size_t len);
int64_t lb_floor_run(int floor, int64_t iters);

/* uffd-move's store check, driven by hand: a store to a page between its
 * UFFDIO_MOVE and its write-protection must be found and the page
 * dropped.  LB_OK when it is; LB_EUNAVAIL without UFFD_FEATURE_MOVE;
 * else the failure with its message. */
int lb_move_window_check(void);

const char *lb_capstone_version(void);

/* Facts about the build and the machine, for run.json.  The compiler that
 * built the core (its version string); how the last userfaultfd that
 * opened was obtained: "userfaultfd(UFFD_USER_MODE_ONLY)" (the system
 * call) or "/dev/userfaultfd" (NULL: none opened yet in this process);
 * the TSC rate in Hz, measured against CLOCK_MONOTONIC over about 20 ms
 * (0 where there is no TSC to read). */
const char *lb_compiler(void);
const char *lb_uffd_how(void);
double lb_tsc_hz(void);
/* Where a sigsegv-mprotect array created now with this fault-around
 * writes its pages: "/proc/self/mem" (an anonymous region; one page
 * fault per fault) or "memfd" (a shared memfd mapping; a second fault
 * maps the pages). */
const char *lb_mprotect_source(int64_t fault_around);

/* Profiling (profile.c): where one fault's time goes.  A profiled run
 * reads the workload's elements through a loop of its own that stamps the
 * time-stamp counter just before and just after every access; while it
 * runs, the fault path stamps handler entry, its inner marks and handler
 * exit (uffd-thread: the handler thread's receipt of the event and the
 * return of UFFDIO_COPY).  The stamps are taken only while a profiled run
 * is in progress (a runtime switch: one load and branch per stamp point
 * when off), and only for the profiled thread's own faults.  Each fault
 * whose stamps are all there adds its phases, in TSC ticks, to the
 * profile's histograms; the handlers themselves only store stamps. */
enum lb_phase {
    LB_PH_DELIVERY = 0,    /* access to handler entry (or event receipt) */
    LB_PH_RESOLVE_A = 1,   /* entry to mark 1: lookup and decode (redirect),
                              lookup and computing the page (page variants) */
    LB_PH_RESOLVE_B = 2,   /* mark 1 to mark 2: forcing the thunk (redirect),
                              installing the page (pwrite and mprotect,
                              UFFDIO_COPY) */
    LB_PH_RESOLVE_C = 3,   /* mark 2 to handler exit: the register rewrite
                              (redirect), publishing the page (none for
                              uffd-thread, whose resume starts at mark 2) */
    LB_PH_RESUME = 4,      /* handler exit to the access completing; for
                              sigsegv-redirect to the single step's trap */
    LB_PH_STEP = 5,        /* sigsegv-redirect: the trap's handler */
    LB_PH_STEP_RESUME = 6, /* sigsegv-redirect: trap exit to completion */
    LB_PH_TOTAL = 7,       /* access to completion, the sum of the above */
    LB_PH_COUNT = 8
};

/* A log-bucket histogram of non-negative integers: exact below 64, then
 * 32 buckets per power of two (a bucket spans at most 1/32 of its
 * values).  Adding allocates nothing. */
typedef struct lb_hist lb_hist;
lb_hist *lb_hist_new(void);                 /* NULL: out of memory */
void lb_hist_free(lb_hist *h);
void lb_hist_add(lb_hist *h, uint64_t v);
uint64_t lb_hist_count(const lb_hist *h);
uint64_t lb_hist_min(const lb_hist *h);     /* 0 when empty */
uint64_t lb_hist_max(const lb_hist *h);     /* 0 when empty */
double lb_hist_sum(const lb_hist *h);
/* The q-quantile, 0 < q <= 1, by nearest rank: the upper edge of the
 * bucket holding the ceil(q * count)-th smallest value, clipped to
 * [min, max] (so exact below 64, for one value, and at q = 1).  0 when
 * empty. */
uint64_t lb_hist_quantile(const lb_hist *h, double q);
int lb_hist_bucket_count(void);
/* Bucket k: its values [lo, hi] and how many were added. */
uint64_t lb_hist_bucket(const lb_hist *h, int k, uint64_t *lo, uint64_t *hi);

typedef struct lb_profile lb_profile;
typedef struct lb_profile_counts {
    uint64_t accesses;      /* accesses the profiled loops made */
    uint64_t faults;        /* of which faulted with every stamp taken */
    uint64_t incomplete;    /* faulted, but a stamp is missing (the page
                               was being filled by another fault, ...) */
    uint64_t early;         /* uffd-thread: the faulting thread resumed
                               before UFFDIO_COPY returned to the handler
                               thread (it preempted it); the install then
                               ends, and resume starts, at the resumption */
    uint64_t skewed;        /* a stamp earlier than the one before it */
    uint64_t signals;       /* signals the core's handler took on the
                               profiled thread (SIGSEGV, SIGBUS, SIGTRAP) */
    uint64_t traps;         /* of which SIGTRAP (single steps) */
    uint64_t syscalls;      /* system calls the fault path made (pwrite,
                               mprotect, ioctl; the handler thread's poll
                               and read), rt_sigreturn not included */
    int64_t elapsed_ns;     /* CLOCK_MONOTONIC around the profiled loops */
} lb_profile_counts;
lb_profile *lb_profile_new(void);
void lb_profile_free(lb_profile *p);
/* `loops` times: reset (untimed), then the workload through the profiled
 * loop.  LB_EINVAL for variants no fault drives (eager, swcheck);
 * LB_ESTATE while another profiled run is in progress in the process. */
int lb_profile_run(lb_array *a, const lb_workload *w, int64_t loops,
                   lb_profile *p, lb_result *out);
const lb_hist *lb_profile_hist(const lb_profile *p, int phase);
void lb_profile_counts_read(const lb_profile *p, lb_profile_counts *out);
/* 1 while a profiled run is in progress (the fault path stamps). */
int lb_profiling(void);

/* perf_event_open software counters of this process, its threads
 * included (perf_events.c).  `event`: PERF_COUNT_SW_* (context-switches
 * 3, page-faults 2, major-faults 6, cpu-migrations 4); counting user mode
 * only when `user_only`, else kernel and user mode.  The fd, or -1 with
 * the reason in `why` (starting "not permitted" when refused). */
int lb_perf_open(int event, int user_only, char *why, size_t len);
int64_t lb_perf_read(int fd);               /* -1: the read failed */
void lb_perf_close(int fd);

/* Instruction-form self-test: element i read by one inline-asm load of
 * form `form` with register `reg` (0..15: rax rcx rdx rbx rsp rbp rsi rdi
 * r8..r15) holding the element's address (a handle for sigsegv-redirect).
 * LB_EINVAL when that form cannot use that register. */
enum lb_form {
    LB_FORM_BASE = 0,        /* mov (%R), %rax */
    LB_FORM_DISP = 1,        /* mov 0x40(%R), %rax */
    LB_FORM_BASE_INDEX = 2,  /* mov 0x10(%R,%idx,8), %rax */
    LB_FORM_INDEX = 3,       /* mov (,%R,1), %rax: the address in the index */
    LB_FORM_ALU = 4,         /* add (%R), %acc */
    LB_FORM_CMP = 5,         /* cmp (%R), %x: 1 if equal to the expected */
    LB_FORM_MOVZX = 6,       /* movzbl (%R): low byte */
    LB_FORM_MOVSX = 7,       /* movslq (%R): low 32 bits sign-extended */
    LB_FORM_SSE = 8,         /* movsd (%R), %xmm */
    LB_FORM_AVX = 9,         /* vmovdqu (%R), %ymm: reads elements i..i+3,
                                returns element i */
    LB_FORM_STORE = 10,      /* mov %rax, (%R): must be refused */
    LB_FORM_COUNT = 11
};
int lb_selftest_form(lb_array *a, int form, int reg, int64_t i,
                     int64_t expected, int64_t *out);
