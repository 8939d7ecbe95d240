/* lazybench C core: what the variants, generators and workloads share.
 * Not part of the Python-visible interface (see lb_api.h). */
#ifndef LB_CORE_H
#define LB_CORE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stddef.h>
#include <stdint.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include "lb_api.h"

/* Deepest chain of nested lazy faults (a generator touching another lazy
 * element, which faults in turn).  Each level costs one kernel signal frame
 * (about 3.4 KB with AVX-512 state) plus the handler's own frames; the
 * per-thread alternate signal stack is sized for this many levels. */
#define LB_MAX_NEST 512
#define LB_NEST_STACK_BYTES (16 * 1024)
#define LB_ALTSTACK_SIZE ((size_t)LB_MAX_NEST * LB_NEST_STACK_BYTES)
/* Fault-around limit, and the per-thread buffer pages are computed into
 * before UFFDIO_COPY: one batch per nesting level, committed as used. */
#define LB_MAX_FAULT_AROUND 64
#define LB_SCRATCH_BYTES ((size_t)(LB_MAX_NEST + 1) * LB_MAX_FAULT_AROUND * 4096)


/* Most floors a variant's fault path is declared to be made of. */
#define LB_MAX_PARTS 4

/* How a workload reaches element i of a variant. */
enum lb_access {
    LB_ACCESS_FLAT = 0,     /* a->view[i]: plain loads, faults do the work */
    LB_ACCESS_HANDLES = 1,  /* *a->handles[i]: a list of element addresses */
    LB_ACCESS_SWCHECK = 2   /* lb_swcheck_read(a, i): a state check per read */
};

struct lb_variant_ops {
    const char *name;
    int access;                                      /* enum lb_access */
    int signo;                   /* signal its faults arrive by, or 0 */
    int reset_noop;              /* reset changes nothing (eager) */
    int needs_decoder;           /* its handler decodes instructions */
    int needs_step;              /* its handler single-steps (SIGTRAP) */
    int64_t granule;             /* elements per fault; 0: a page */
    int flags;                   /* variant options, e.g. LB_REDIRECT_* */
    int has_fault_around;        /* honours lb_params.fault_around */
    /* What the reports know of the variant (read through lb_variant_*):
     * a base for ratios (it computes every element before the workload
     * runs); the floors a page-granular variant's fault path is made of,
     * in order (the signal, the installation, the computation; NULL
     * ends the list); a floor that times its signal and installation
     * together (NULL: none).  Floor names as in floors.c's table. */
    int base;
    const char *parts[LB_MAX_PARTS + 1];
    const char *joint_floor;
    /* Refuse parameters the variant cannot run (NULL: accepts all). */
    int (*supports)(const lb_params *p, char *why, size_t len);
    /* Around every guarded call on this array (NULL: nothing). */
    void (*enter)(lb_array *a);
    void (*leave)(lb_array *a);
    int (*available)(char *why, size_t len);         /* NULL: always */
    int (*create)(lb_array *a);
    int (*reset)(lb_array *a);
    int (*force)(lb_array *a);
    void (*release)(lb_array *a);
    /* Page-granular variants: make pages [first, last], computed into
     * buf, readable in the array (lb_fill_pages calls it with the pages
     * claimed, and publishes them after).  Async-signal-safe.  LB_OK, or
     * a negative status with the message set by lb_set_error, never by
     * lb_fail: the core hands the pages back before it fails. */
    int (*install)(lb_array *a, int64_t first, int64_t last,
                   const char *buf);
    /* Page-granular variants: where lb_fill_pages computes `pages` pages
     * at this thread's nesting level `depth` before install (NULL: the
     * core's lb_scratch).  For a variant whose install takes the buffer's
     * pages away (uffd-move), so the core's scratch keeps its pages for
     * the others.  Async-signal-safe; NULL when there is none. */
    char *(*buffer)(lb_array *a, int depth, int64_t pages);
    /* The address user code reads element i through (NULL: the default
     * for its access path; see lb_handle). */
    const void *(*handle)(const lb_array *a, int64_t i);
    /* Why user code may not hold its element addresses (NULL: it may). */
    const char *no_handles;
    /* In the child of fork(), for every inherited array (NULL: nothing):
     * drop what the child shares with the parent, with system calls only
     * (see fork.c).  Release then frees the child's copies alone. */
    void (*forked)(lb_array *a);
};

/* Faults drive the variant: a signal, or a handler thread installing
 * pages (userfaultfd events). */
static inline int lb_ops_fault_driven(const struct lb_variant_ops *ops)
{
    return ops->signo != 0 || ops->install != NULL;
}

struct lb_counters_atomic {
    uint64_t faults;
    uint64_t pages_materialised;
    uint64_t elements_materialised;
    uint64_t generator_calls;
    uint64_t max_nesting;
    uint64_t decodes;
    uint64_t decode_hits;
    uint64_t decode_misses;
    uint64_t evicted_pages;
};

struct lb_array {
    const struct lb_variant_ops *ops;
    lb_params p;
    int64_t n;
    size_t bytes;                  /* n * 8 rounded up to pages */
    int64_t npages;
    const int64_t *view;           /* LB_ACCESS_FLAT: what workloads read */
    /* One LB_PAGE_* state word per granule (a page, or an element for
     * element-granular variants): lazy, being filled, ready.  The core
     * allocates it zeroed (all lazy) before ops->create for variants with
     * an install step or a granule of one element (NULL for the others),
     * and hands ranges back to lazy when a fill is unwound. */
    uint8_t *state;
    int64_t *const *handles;       /* LB_ACCESS_HANDLES: the element list */
    void *priv;                    /* the variant's own state */
    struct lb_counters_atomic c;
    /* LB_REF_CREATOR until lb_release, plus one per call in flight
     * (guarded call, view session, view read); whoever drops it to 0
     * frees the array, so release never frees memory a call still uses. */
    uint64_t refs;
    uint32_t magic;                /* LB_MAGIC while alive */
    unsigned gen;                  /* lb_fork_gen when created */
    lb_array *fork_prev, *fork_next;   /* live arrays (fork.c) */
};
#define LB_MAGIC 0x6c617a79u
#define LB_REF_CREATOR ((uint64_t)1 << 62)

/* Take a reference for a call: LB_OK, or LB_ESTATE ("used after
 * release", the thread's message set) once the array was released. */
int lb_array_get(lb_array *a);
/* Drop it; the last reference out frees the array. */
void lb_array_put(lb_array *a);

/* One materialisation in progress on this thread: elements [lo, hi) are
 * being written to buf, those below `next` are already computed. */
struct lb_fill {
    lb_array *a;
    int64_t lo, hi, next;
    int64_t *buf;
    const char *sp;                /* stack position of the fill's frame */
};

/* Per-thread state, mmap'ed on first use (never malloc'ed in a handler). */
struct lb_tstate {
    sigjmp_buf env;
    int armed;                     /* env is valid: errors unwind to it */
    int in_view;                   /* inside lb_view_enter/leave */
    int in_read;                   /* inside lb_view_read */
    /* sigsegv-redirect: the instruction re-executing against a redirected
     * register under the trap flag; the trap puts the handle back. */
    struct lb_step {
        int active;
        int reg;                   /* gregs index moved */
        int restore;               /* 0: the instruction writes reg */
        int64_t saved;             /* reg's value before the move */
        uintptr_t next_rip;        /* where the single step must end */
    } step;
    lb_array *view_a;              /* the session's array (holds a ref) */
    /* Elements evaluated one at a time (swcheck, redirect) inside a
     * guarded call are counted here and added to batch_a's counters when
     * the call ends: two atomic adds per element would cost more than
     * evaluating a cheap element. */
    lb_array *batch_a;
    uint64_t batch_elements;
    int depth;                     /* fills in progress */
    struct lb_fill fills[LB_MAX_NEST + 1];
    char *altstack;
    stack_t saved_alt;
    char *scratch;                 /* LB_SCRATCH_BYTES for page fills */
    cpu_set_t saved_cpus;          /* affinity before a pinned call */
    int cpus_saved;
    /* Adaptive fault-around: the stream of this thread's faults on the
     * array it last faulted on (lb_claim_run). */
    const lb_array *fa_array;
    lb_fa_state fa;
    size_t cs;                     /* this thread's Capstone handle */
    void *insn;                    /* its preallocated cs_insn */
    char err[512];
};

extern size_t lb_page_size;
extern int64_t lb_epp;                             /* elements per page */

struct lb_tstate *lb_tstate_get(void);           /* allocates if needed */
/* Scratch for nesting level `depth` of this thread (mapped at the guarded
 * entry, or by the handler of a thread that never entered). */
char *lb_scratch(struct lb_tstate *ts, int depth);
struct lb_tstate *lb_tstate_peek(void);          /* never allocates */

/* Materialise elements [lo, hi) of `a` into buf (buf[0] is element lo),
 * in ascending order.  Safe inside a signal handler.  Returns LB_OK or
 * LB_ELAZY with the thread's message set; on failure the range's state
 * words are handed back (lazy). */
int lb_fill_range(lb_array *a, int64_t lo, int64_t hi, int64_t *buf);
/* Is element range [lo, hi) of `a` being filled by this thread? */
int lb_filling_here(const lb_array *a, int64_t lo, int64_t hi);

/* Read element j of `a` from inside a generator: from the fill in progress
 * when j is already computed there, else through the variant's access
 * path (which may fault and nest). */
int64_t lb_read(lb_array *a, int64_t j);

/* Generators (generators.c). */
int64_t lb_generate(lb_array *a, int64_t i);
/* The pure generators: element i as a function of the parameters alone
 * (the arrays' and lb_expected's one definition).  Defined below. */
static inline int64_t lb_gen_hash(const lb_params *p, int64_t i);
static inline int64_t lb_gen_spin(const lb_params *p, int64_t i);
int lb_generate_range(const lb_array *a, int64_t lo, int64_t hi,
                      int64_t *buf);
/* splitmix64's increment (2^64 over the golden ratio): the random
 * workload's stream steps by it, the hash generator scales the seed by
 * it.  Python reads it as lib.lb_golden (pythunks.GOLDEN). */
#define LB_GOLDEN 0x9e3779b97f4a7c15ULL
/* splitmix64's finaliser: cheap, and every output bit depends on every
 * input bit, so a wrong index shows up in the checksum.  Inline: it is the
 * inner loop of the hash generator and of the random workload. */
static inline uint64_t lb_mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline int64_t lb_gen_hash(const lb_params *p, int64_t i)
{
    return (int64_t)lb_mix64((uint64_t)i + p->seed * LB_GOLDEN);
}

static inline int64_t lb_gen_spin(const lb_params *p, int64_t i)
{
    uint64_t x = (uint64_t)i ^ p->seed;
    for (int64_t r = 0; r < p->spin; r++)
        x = lb_mix64(x + (uint64_t)r);
    return (int64_t)x;
}

/* LB_OK if lb_create would accept these parameters (n, generator, spin,
 * fault-around ranges), else LB_EINVAL with the message set (core.c). */
int lb_params_check(const lb_params *p);

/* Run body(a, ctx) on this thread's alternate signal stack with an unwind
 * point; a is NULL for work that needs no array (floors).  Every public
 * entry that may touch lazy memory goes through here. */
typedef int (*lb_body_fn)(lb_array *a, void *ctx);
int lb_guarded(lb_array *a, lb_body_fn body, void *ctx);

/* Fatal lazy-evaluation error: records the message and unwinds to the
 * guarded entry point when there is one.  Returns only when there is
 * none (the caller then treats the fault as not ours, so it crashes with
 * the usual report).  Async-signal-safe. */
void lb_fail(const char *msg, const char *detail);
void lb_set_error(const char *msg, const char *detail);
void lb_unwind_fills(struct lb_tstate *ts);

/* State words (a->state), one per page or per element. */
enum { LB_PAGE_LAZY = 0, LB_PAGE_FILLING = 1, LB_PAGE_READY = 2 };
/* Claim `page` and, with fault-around k, up to k-1 lazy pages after it
 * (adaptive fault-around: k from this thread's stream, lb_fa_step).
 * Returns the last page claimed, or -1 (with *seen, the page's state) when
 * `page` was not lazy. */
int64_t lb_claim_run(lb_array *a, int64_t page, uint8_t *seen);
void lb_set_states(lb_array *a, int64_t first, int64_t last, uint8_t to);
/* `page` is being filled by another thread (or this one: a cycle, which
 * fails): wait until it is not.  LB_OK, or LB_ELAZY. */
int lb_wait_page(lb_array *a, int64_t page);
/* The materialisation of a page-granular variant, in one place.  Pages
 * [page, last], claimed by this thread (lb_claim_run): compute them into
 * this thread's buffer for its nesting level, count them, install them
 * (ops->install), publish them (ready); on any failure hand them back
 * (lazy) and fail.  Async-signal-safe.  LB_OK, or an error when there is
 * no unwind point. */
int lb_fill_pages(lb_array *a, int64_t page, int64_t last);
/* A fault on `page`: claim and fill its run, or, when another thread is
 * filling it, wait for that; nothing when it is ready. */
int lb_open_page(lb_array *a, int64_t page);
/* Open every page not ready yet, in order (a page-granular force). */
int lb_force_pages(lb_array *a);
/* Evaluate element i into data[i] exactly once across threads
 * (a->state[i] is its word); waits while another thread evaluates it.
 * LB_OK, or an error when there is no unwind point. */
int lb_force_element(lb_array *a, int64_t *data, int64_t i);

int64_t lb_now_ns(void);                         /* CLOCK_MONOTONIC */

/* fork (fork.c): bumped in every child process.  An array of an older
 * generation was inherited: the child may only release it. */
extern unsigned lb_fork_gen;
static inline int lb_inherited(const lb_array *a)
{
    return a->gen != __atomic_load_n(&lb_fork_gen, __ATOMIC_RELAXED);
}
void lb_fork_track(lb_array *a);         /* at create, once it is whole */
void lb_fork_untrack(lb_array *a);       /* at release, first */
/* In a `forked` step: a PROT_NONE reservation over [start, start+len). */
void lb_fork_reserve(void *start, size_t len);
int lb_fork_refuse(const lb_array *a);   /* sets the error, LB_ESTATE */

/* Profiling (profile.c).  The stamps of the one profiled access in
 * flight.  `on` is the runtime switch: every stamp point costs one load
 * and a not-taken branch while it is 0. */
enum {
    LB_ST_ACCESS = 0,       /* just before the access (profiled loop) */
    LB_ST_ENTRY = 1,        /* handler entry / the handler thread's receipt */
    LB_ST_MARK1 = 2,        /* redirect: decoded; pages: computed */
    LB_ST_MARK2 = 3,        /* redirect: forced; pages: installed */
    LB_ST_EXIT = 4,         /* handler exit (signal variants) */
    LB_ST_STEP_ENTRY = 5,   /* redirect: the single step's trap */
    LB_ST_STEP_EXIT = 6,
    LB_ST_RESUME = 7,       /* just after the access */
    LB_ST_COUNT = 8
};
struct lb_prof_state {
    int on;                         /* the switch */
    const void *thread;             /* the profiled thread's identity */
    const void *owner;              /* the thread now stamping its fault */
    uintptr_t armed;                /* the access in flight, 0: none */
    int level;                      /* the owner's handler nesting */
    int done;                       /* uffd-thread: the fault resolved */
    uint64_t st[LB_ST_COUNT];
    uint64_t signals, traps, syscalls;
};
extern struct lb_prof_state lb_prof;

static inline uint64_t lb_stamp(void)
{
#if defined(__x86_64__)
    uint32_t lo, hi;
    /* lfence before: earlier instructions have completed; after: later
     * ones (the access) do not start before the counter is read */
    __asm__ volatile("lfence\n\trdtsc\n\tlfence"
                     : "=a"(lo), "=d"(hi) : : "memory");
    return ((uint64_t)hi << 32) | lo;
#else
    return (uint64_t)lb_now_ns();
#endif
}

static inline int lb_prof_active(void)
{
    return __builtin_expect(__atomic_load_n(&lb_prof.on, __ATOMIC_RELAXED),
                            0);
}

/* Fault path hooks, all async-signal-safe; each does nothing unless the
 * switch is on and the caller is the thread whose fault is stamped. */
/* A signal handler of the core entered at stamp t (0: switch off) and
 * left; returns 1 if this entry belongs to the profiled thread. */
int lb_prof_enter(uint64_t t);
void lb_prof_leave(int handled);
/* The single step's trap handler ran from t to now. */
void lb_prof_step(uint64_t t);
/* An inner mark of the outermost handler level. */
void lb_prof_mark_slow(int slot);
static inline void lb_prof_mark(int slot)
{
    if (lb_prof_active())
        lb_prof_mark_slow(slot);
}
void lb_prof_syscalls_slow(int n);
static inline void lb_prof_syscalls(int n)
{
    if (lb_prof_active())
        lb_prof_syscalls_slow(n);
}
/* uffd-thread: the handler thread read the event for addr at stamp t;
 * returns 1 when it is the profiled access's (then call
 * lb_prof_resolved once the fault is resolved). */
int lb_prof_receive(uint64_t t, uintptr_t addr);
void lb_prof_resolved(void);
/* The profiled loops' reads (workloads.c): before and after one access
 * to addr. */
void lb_prof_arm(uintptr_t addr);
void lb_prof_access(uint64_t t0, uint64_t t1);
struct lb_prof_ref {
    const int64_t *view;
    int64_t *const *handles;
};
int lb_prof_loop(lb_array *a, const lb_workload *w, uint64_t *sum);

/* Signal dispatch shared by the fault-driven variants (sigdispatch.c). */
typedef int (*lb_fault_fn)(lb_array *a, void *addr, void *ucontext);
enum { LB_FAULT_HANDLED = 0, LB_FAULT_NOT_OURS = 1 };
int lb_sig_register(int signo, lb_array *a, void *start, size_t len,
                    lb_fault_fn fn);
void lb_sig_unregister(int signo, lb_array *a);
int lb_sig_check(int signo);       /* LB_OK if our handler is installed */

/* Small async-signal-safe helpers. */
size_t lb_strlcpy(char *dst, const char *src, size_t size);
void lb_write_stderr(const char *s);

static inline void lb_count(uint64_t *c, uint64_t by)
{
    __atomic_fetch_add(c, by, __ATOMIC_RELAXED);
}

static inline void lb_count_max(uint64_t *c, uint64_t v)
{
    uint64_t cur = __atomic_load_n(c, __ATOMIC_RELAXED);
    while (v > cur && !__atomic_compare_exchange_n(c, &cur, v, 0,
                                                  __ATOMIC_RELAXED,
                                                  __ATOMIC_RELAXED))
        ;
}

/* Instruction decoding for the redirect variant (decoder.c). */
struct lb_insn_info {
    int8_t base;            /* gregs index of the base register, or -1 */
    int8_t index;           /* gregs index of the index register, or -1 */
    uint8_t scale;
    uint8_t size;           /* bytes the memory operand reads */
    uint8_t len;            /* instruction length */
    int64_t disp;
    /* gregs bitmasks, from the read-form table (read_forms.c): registers
     * the instruction reads as data (not as address), registers it
     * overwrites whole (64- or 32-bit destination), and registers it
     * overwrites in part (8- or 16-bit destination). */
    uint32_t data_regs;
    uint32_t full_writes;
    uint32_t part_writes;
};

/* The allowlist of read-only instruction forms (read_forms.c). */
enum { LB_RF_READ = 0, LB_RF_WRITE = 1, LB_RF_UPDATE = 2 };
enum { LB_RF_IMM0 = 1 };
struct lb_read_form {
    uint16_t id;            /* Capstone's X86_INS_* */
    uint8_t nops;           /* operands Capstone lists */
    uint8_t mem;            /* index of the memory operand (AT&T order) */
    uint8_t kind;           /* LB_RF_READ, _WRITE or _UPDATE */
    uint8_t flags;          /* LB_RF_IMM0 */
};
extern const struct lb_read_form lb_read_forms[];
extern const int lb_read_form_count;
const struct lb_read_form *lb_read_form_find(unsigned id, int nops, int mem);
/* Refuse the instruction at rip: sets the thread's message
 * "sigsegv-redirect cannot redirect <why>: <instruction> at <address>"
 * and returns LB_ELAZY.  Signal-safe. */
int lb_decode_refuse(uintptr_t rip, const char *why);
/* Open this thread's decoder (not async-signal-safe: at a guarded entry). */
int lb_decoder_ensure(struct lb_tstate *ts);
void lb_decoder_close(struct lb_tstate *ts);
/* Decode the instruction at rip.  LB_OK, or LB_ELAZY with a message that
 * names the instruction when it cannot be redirected.  Signal-safe. */
int lb_decode(uintptr_t rip, struct lb_insn_info *out);

/* Decode cache keyed by instruction address, lock-free (decoder.c). */
#define LB_DCACHE_SLOTS 1024
struct lb_dcache_entry {
    uintptr_t key;
    int ready;
    struct lb_insn_info info;
};
struct lb_dcache {
    struct lb_dcache_entry e[LB_DCACHE_SLOTS];
};
int lb_dcache_get(struct lb_dcache *c, uintptr_t rip,
                  struct lb_insn_info *out);
void lb_dcache_put(struct lb_dcache *c, uintptr_t rip,
                   const struct lb_insn_info *info);

void lb_fmt_hex(char *buf, size_t size, uint64_t v);
/* Decimal, without stdio: for messages built in handlers (core.c). */
void lb_fmt_i64(char *buf, size_t size, int64_t v);

enum {
    LB_REDIRECT_DECODE_CACHE = 1,
    LB_REDIRECT_HEAL = 2,
    LB_REDIRECT_ESSAY = 4        /* no single step: register left moved */
};
/* SIGTRAP after the single-stepped instruction (variant_sigsegv_redirect.c):
 * LB_FAULT_HANDLED, or LB_FAULT_NOT_OURS. */
int lb_redirect_step(void *ucontext);

/* A handle read by the core itself (lb_read): lives with the workload
 * loops, the only code allowed to read sigsegv-redirect-essay's handles
 * (workloads.c). */
int64_t lb_handle_load(const int64_t *h);
int lb_in_handle_code(uintptr_t rip);

/* swcheck (variant_swcheck.c): a state word per element (a->state),
 * checked on every read, as lazy runtimes do without hardware help; the
 * values are at a->priv. */
int64_t lb_swcheck_force(lb_array *a, int64_t i);

/* What a reader keeps in registers: the state and value arrays, and the
 * array for the slow path.  Passed by value, so a loop of reads does not
 * reload them after the (rarely taken) call that forces an element. */
struct lb_thunk_ref {
    lb_array *a;
    const uint8_t *state;
    const int64_t *data;
};

static inline struct lb_thunk_ref lb_swcheck_ref(lb_array *a)
{
    struct lb_thunk_ref r = {a, a->state, a->priv};
    return r;
}

static inline int64_t lb_swcheck_get(struct lb_thunk_ref r, int64_t i)
{
    if (__builtin_expect(__atomic_load_n(&r.state[i], __ATOMIC_ACQUIRE) ==
                             LB_PAGE_READY, 1))
        return r.data[i];
    return lb_swcheck_force(r.a, i);
}

static inline int64_t lb_swcheck_read(lb_array *a, int64_t i)
{
    return lb_swcheck_get(lb_swcheck_ref(a), i);
}

/* Every variant's ops structure, from the list (variants.h). */
#define LB_VARIANT(id) extern const struct lb_variant_ops lb_variant_##id;
#include "variants.h"
#undef LB_VARIANT

/* sigsegv-mprotect: can this process write its own PROT_NONE pages
 * through /proc/self/mem?  (Probed once; not async-signal-safe.) */
int lb_mem_write_works(void);

/* userfaultfd helpers (uffd.c). */
int lb_uffd_open(int features, char *why, size_t len);  /* fd or -1 */
int lb_uffd_available(char *why, size_t len);
int lb_uffd_has_feature(uint64_t feature, const char *name,
                        const char *since, char *why, size_t len);
int lb_uffd_register(int fd, void *start, size_t len);
int lb_uffd_register_mode(int fd, void *start, size_t len, int mode);
int lb_uffd_copy(int fd, void *dst, const void *src, size_t len);
int lb_uffd_wake(int fd, void *start, size_t len);

/* A lazy array on userfaultfd missing pages (a->priv of the uffd
 * variants). */
struct lb_uffd {
    int fd;
    char *region;
    int stopfd;                    /* uffd-thread: eventfd to stop it */
    pthread_t thread;
    int has_thread;
    pthread_mutex_t lock;          /* uffd-thread: held while resolving */
    int handler_cpu, caller_cpu;   /* -1: unpinned */
};
int lb_uffd_create(lb_array *a, int features, struct lb_uffd **out);
/* The same with the region's protection and UFFDIO_REGISTER modes. */
int lb_uffd_create_mode(lb_array *a, int features, int prot, int mode,
                        struct lb_uffd **out);
/* A region in SIGBUS mode (UFFD_FEATURE_SIGBUS added to `features`),
 * created as lb_uffd_create_mode does, whose faults the core's SIGBUS
 * handler dispatches to `fault` (uffd-sigbus, uffd-move); and its
 * release.  LB_OK or the status, nothing left behind on failure. */
int lb_uffd_create_sigbus(lb_array *a, int features, int prot, int mode,
                          lb_fault_fn fault);
void lb_uffd_release_sigbus(lb_array *a);
void lb_uffd_destroy(lb_array *a, struct lb_uffd *u);
int lb_uffd_reset(lb_array *a);
int lb_uffd_install(lb_array *a, int64_t first, int64_t last,
                    const char *buf);
void lb_uffd_forked(lb_array *a);

/* uffd-move's steps, shared with its floors (variant_uffd_move.c): 1 if
 * this kernel's userfaultfd offers UFFD_FEATURE_MOVE; where this thread
 * computes `pages` pages at nesting level `depth` (its source buffer);
 * UFFDIO_MOVE of computed pages into place and, with `protect`,
 * UFFDIO_WRITEPROTECT of them; that alone (0 or -errno).  All but the
 * first are async-signal-safe. */
int lb_move_available(char *why, size_t len);
char *lb_move_source(int depth, int64_t pages);
int lb_move_place(int fd, char *dst, const char *src, size_t len,
                  int protect);
/* UFFDIO_WRITEPROTECT of installed pages, then their digest checked
 * against `want` (lb_move_digest of the computed pages): LB_MOVE_STORED
 * (the pages dropped again) when a store reached them before. */
enum { LB_MOVE_STORED = 1 };
uint64_t lb_move_digest(const char *p, size_t len);
int lb_move_protect(int fd, char *dst, size_t len, uint64_t want);

#endif
