/* uffd-move: lazy pages are userfaultfd missing pages, as in uffd-sigbus
 * (UFFD_FEATURE_SIGBUS: a first touch raises SIGBUS in the faulting thread
 * itself), but the handler installs the computed page (with fault-around,
 * the run of lazy pages after it) with UFFDIO_MOVE instead of UFFDIO_COPY:
 * the page the generator wrote is remapped into the array, not copied into
 * a page the kernel allocates.  Linux 6.8 and later (UFFD_FEATURE_MOVE).
 *
 * Where the pages are computed.  A move takes the page away from its
 * source, so the source cannot be the core's scratch buffer (the other
 * page variants would take a first-touch fault on every page they compute
 * after it).  Each thread has its own source buffer (the `buffer` op), one
 * window of MOVE_POOL pages per nesting level, so a generator that reads
 * another lazy element (recurrence) faults, nests, and computes into the
 * next level's window.  The kernel requires the source to be private
 * anonymous memory with the destination's protection (both writable),
 * neither mlocked; the buffer is also MADV_NOHUGEPAGE (moving 4 KiB out of
 * a huge page splits it) and MADV_WIPEONFORK (a page shared with a child
 * after fork is no longer exclusive, and UFFDIO_MOVE refuses it: EBUSY).
 *
 * The source page's replacement.  A moved page leaves a hole; the next
 * computation into it takes the kernel's first-touch fault (allocation and
 * zeroing, plus a trap).  With MOVE_PREFAULT, the window's next
 * MOVE_PREFAULT pages are made present by one MADV_POPULATE_WRITE when a
 * run reaches past those present, and runs are taken from them in turn:
 * one system call per batch instead of one trap per page.  Measured on
 * a 2-vCPU x86-64 VM (Linux 6.18), computing a page into the source
 * and moving it, 4096 pages, median of 21: first touch 5.5 us a page,
 * batches of 4 5.2, of 16 4.6, of 64 4.7 (writing the page and
 * UFFDIO_COPY: 3.1).  Apart: UFFDIO_MOVE of a ready page 1.7 us, first
 * touch 2.8 to 3.2, MADV_POPULATE_WRITE 2.1 a page.  So batches of 16,
 * which keep the fewest pages present for the same gain.
 *
 * Stores.  UFFDIO_MOVE refuses a read-only destination, so the region is
 * writable, and a moved page would let stores through.  The region is
 * registered MISSING | WP and each installed run is write-protected
 * (UFFDIO_WRITEPROTECT) right after the move; with UFFD_FEATURE_SIGBUS a
 * store to a write-protected page raises SIGBUS as a missing page does.
 * The handler tells a store from a load by the page-fault error code
 * (REG_ERR bit 1, set for SIGBUS from userfaultfd as for SIGSEGV) and
 * refuses it, to a missing page as to an installed one, with an error
 * (inside a guarded call) or a crash (outside): never a silent write.
 * The price: one UFFDIO_WRITEPROTECT per installed run, measured alone
 * at 0.7 to 0.85 us for one page and 42 to 52 ns a page for 16 pages a
 * call (the uffdio-writeprotect floor: one page a call, after its move).
 * Between the move and the write-protection (about a microsecond) the
 * page is writable, and a store by another thread would go through:
 * UFFDIO_MOVE accepts no protected destination and does not carry a
 * write-protected source's uffd-wp bit over (Linux 6.18 makes the moved
 * PTE writable).  So the install step takes a digest of the computed
 * pages before the move and checks the installed ones against it after
 * the write-protection; a store in the window is found there, the pages
 * are dropped again (they are computed anew on the next read) and the
 * fault fails with a message naming the store.  The digest costs about
 * a tenth of a microsecond per page (in the uffdio-writeprotect and
 * sigbus-move floors).
 *
 * Threads: the core's state words let one thread claim a page; the others
 * wait for it.  UFFDIO_MOVE onto a page that is already there fails with
 * EEXIST rather than replacing it, so a page can never be installed twice
 * whatever the bookkeeping; such a failure is reported, not retried. */
#include "lb_core.h"

#include <errno.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <ucontext.h>

#ifndef UFFD_FEATURE_MOVE
#define UFFD_FEATURE_MOVE (1 << 16)
#endif
#ifndef _UFFDIO_MOVE
#define _UFFDIO_MOVE (0x05)
#endif
#ifndef UFFDIO_MOVE
struct uffdio_move {
    __u64 dst;
    __u64 src;
    __u64 len;
    __u64 mode;
    __s64 move;
};
#define UFFDIO_MOVE _IOWR(UFFDIO, _UFFDIO_MOVE, struct uffdio_move)
#endif
#ifndef UFFDIO_MOVE_MODE_DONTWAKE
#define UFFDIO_MOVE_MODE_DONTWAKE ((__u64)1 << 0)
#endif
#ifndef UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES
#define UFFDIO_MOVE_MODE_ALLOW_SRC_HOLES ((__u64)1 << 1)
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

/* Pages per nesting level of a thread's source buffer: at least the
 * largest fault-around run. */
#define MOVE_POOL 64
#if MOVE_POOL < LB_MAX_FAULT_AROUND
#error "a window must hold the largest fault-around run"
#endif
/* Source pages prefaulted at once: when the run to compute goes past the
 * pages of its window made present so far, one MADV_POPULATE_WRITE makes
 * the next MOVE_PREFAULT pages (or the run, if longer) present.  0: none,
 * the computation's first write faults each hole in. */
#ifndef MOVE_PREFAULT
#define MOVE_PREFAULT 16
#endif
#if MOVE_PREFAULT > MOVE_POOL
#error "a prefaulted batch must fit in a window"
#endif

struct move_buf {
    char *base;                     /* (LB_MAX_NEST + 1) windows */
    unsigned gen;                   /* lb_fork_gen it was filled in */
    /* Per window: pages computed into since it was last started over;
     * the pages before `ready` are present (prefaulted), those from
     * `used` on not moved yet. */
    int used[LB_MAX_NEST + 1];
    int ready[LB_MAX_NEST + 1];
};

static pthread_key_t buf_key;
static pthread_once_t buf_once = PTHREAD_ONCE_INIT;
static __thread struct move_buf *tbuf
    __attribute__((tls_model("initial-exec")));

static void buf_free(void *p)
{
    struct move_buf *b = p;
    munmap(b->base, (size_t)(LB_MAX_NEST + 1) * MOVE_POOL * lb_page_size);
    munmap(b, sizeof *b);
    tbuf = NULL;
}

static void buf_key_init(void)
{
    pthread_key_create(&buf_key, buf_free);
}

/* This thread's source buffer: mmap and pthread_setspecific only, so a
 * handler may map it for a thread that faults before any guarded call
 * (as lb_tstate_get does).  NULL when out of memory. */
static struct move_buf *move_buf_get(void)
{
    if (tbuf)
        return tbuf;
    pthread_once(&buf_once, buf_key_init);
    struct move_buf *b = mmap(NULL, sizeof *b, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b == MAP_FAILED)
        return NULL;
    size_t len = (size_t)(LB_MAX_NEST + 1) * MOVE_POOL * lb_page_size;
    b->base = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (b->base == MAP_FAILED) {
        munmap(b, sizeof *b);
        return NULL;
    }
    madvise(b->base, len, MADV_NOHUGEPAGE);
    madvise(b->base, len, MADV_WIPEONFORK);
    b->gen = __atomic_load_n(&lb_fork_gen, __ATOMIC_RELAXED);
    tbuf = b;
    pthread_setspecific(buf_key, b);
    return b;
}

/* Where the next `pages` pages of nesting level `depth` are computed:
 * writable source pages for UFFDIO_MOVE, present already (MOVE_PREFAULT)
 * or holes the computation's writes fault in.  Async-signal-safe. */
char *lb_move_source(int depth, int64_t pages)
{
    struct move_buf *b = move_buf_get();
    if (!b)
        return NULL;
    char *window = b->base + (size_t)depth * MOVE_POOL * lb_page_size;
#if MOVE_PREFAULT
    /* A child of fork() got the buffer wiped (MADV_WIPEONFORK): what the
     * counts say is there is not. */
    unsigned gen = __atomic_load_n(&lb_fork_gen, __ATOMIC_RELAXED);
    if (b->gen != gen) {
        memset(b->used, 0, sizeof b->used);
        memset(b->ready, 0, sizeof b->ready);
        b->gen = gen;
    }
    int used = b->used[depth];
    if (used + pages > MOVE_POOL) {
        /* Start over: pages left present at the end stay so, and
         * populating skips them. */
        used = 0;
        b->ready[depth] = 0;
    }
    if (used + pages > b->ready[depth]) {
        int64_t n = pages > MOVE_PREFAULT ? pages : MOVE_PREFAULT;
        if (used + n > MOVE_POOL)
            n = MOVE_POOL - used;
        lb_prof_syscalls(1);
        if (madvise(window + (size_t)used * lb_page_size,
                    (size_t)n * lb_page_size, MADV_POPULATE_WRITE))
            return NULL;
        b->ready[depth] = used + (int)n;
    }
    b->used[depth] = used + (int)pages;
    return window + (size_t)used * lb_page_size;
#else
    (void)pages;
    return window;
#endif
}

/* A digest of `len` bytes of pages: two sums of its words, one of them
 * weighted by an odd multiplier after mixing in the word's position, so a
 * changed word always changes it and several stores cancel out only by
 * a one-in-2^64 chance.  Vectorisable: about a tenth of a microsecond a
 * page.  Async-signal-safe. */
uint64_t lb_move_digest(const char *p, size_t len)
{
    const uint64_t *w = (const uint64_t *)p;
    uint64_t s1 = 0, s2 = 0;
    for (size_t i = 0; i < len / 8; i++) {
        s1 += w[i];
        s2 += (w[i] ^ i) * 0x9e3779b97f4a7c15ULL;
    }
    return s1 ^ (s2 << 1 | s2 >> 63);
}

/* Move `len` bytes of computed pages from src to their place dst in a
 * region registered with `fd`, then, with `protect`, write-protect them
 * there and check nothing was stored to them meanwhile (lb_move_protect).
 * 0, LB_MOVE_STORED, or -errno.  Async-signal-safe. */
int lb_move_place(int fd, char *dst, const char *src, size_t len,
                  int protect)
{
    uint64_t want = protect ? lb_move_digest(src, len) : 0;
    size_t done = 0;
    while (done < len) {
        struct uffdio_move mv = {
            .dst = (uint64_t)(uintptr_t)(dst + done),
            .src = (uint64_t)(uintptr_t)(src + done),
            .len = len - done,
            .mode = 0,
        };
        int rc = ioctl(fd, UFFDIO_MOVE, &mv);
        if (mv.move > 0)
            done += (size_t)mv.move;
        if (rc && errno != EAGAIN)
            return -errno;
    }
    return protect ? lb_move_protect(fd, dst, len, want) : 0;
}

/* UFFDIO_WRITEPROTECT of installed pages, then their digest against
 * `want`, the computed pages': between the move and the write-protection
 * the pages are writable, and a store by another thread in that window
 * would go through.  Found, the pages are dropped again (missing: the
 * next read computes them anew) and LB_MOVE_STORED is returned, so the
 * store is reported and never read back.  0, LB_MOVE_STORED, or -errno. */
int lb_move_protect(int fd, char *dst, size_t len, uint64_t want)
{
    struct uffdio_writeprotect wp = {
        .range = {.start = (uint64_t)(uintptr_t)dst, .len = len},
        .mode = UFFDIO_WRITEPROTECT_MODE_WP,
    };
    if (ioctl(fd, UFFDIO_WRITEPROTECT, &wp))
        return -errno;
    if (lb_move_digest(dst, len) != want) {
        madvise(dst, len, MADV_DONTNEED);
        return LB_MOVE_STORED;
    }
    return 0;
}

static char *move_buffer(lb_array *a, int depth, int64_t pages)
{
    (void)a;
    return lb_move_source(depth, pages);
}

static int move_install(lb_array *a, int64_t first, int64_t last,
                        const char *buf)
{
    struct lb_uffd *u = a->priv;
    lb_prof_syscalls(2);                        /* the two ioctls */
    int rc = lb_move_place(u->fd, u->region + first * lb_page_size, buf,
                           (size_t)(last - first + 1) * lb_page_size, 1);
    if (rc == LB_MOVE_STORED) {
        lb_set_error("uffd-move: a store to a lazy element while its page "
                     "was being installed (lazy elements are read-only); "
                     "the page is dropped and will be computed again", NULL);
        return LB_ELAZY;
    }
    if (rc) {
        char num[24];
        lb_fmt_i64(num, sizeof num, -rc);
        lb_set_error("uffd-move: UFFDIO_MOVE or UFFDIO_WRITEPROTECT failed, "
                     "errno ", num);
        return LB_ESYS;
    }
    return LB_OK;
}

static int move_fault(lb_array *a, void *addr, void *ucv)
{
    struct lb_uffd *u = a->priv;
    const ucontext_t *uc = ucv;
    /* Bit 1 of the page-fault error code: the access was a write. */
    if (uc->uc_mcontext.gregs[REG_ERR] & 2) {
        lb_fail("uffd-move: a store to a lazy element (lazy elements are "
                "read-only)", NULL);
        return LB_FAULT_NOT_OURS;           /* no guarded call: crash */
    }
    lb_count(&a->c.faults, 1);
    int64_t page = (int64_t)(((char *)addr - u->region) / lb_page_size);
    return lb_open_page(a, page) == LB_OK ? LB_FAULT_HANDLED
                                          : LB_FAULT_NOT_OURS;
}

int lb_move_available(char *why, size_t len)
{
    return lb_uffd_has_feature(UFFD_FEATURE_MOVE, "MOVE", "Linux 6.8", why,
                               len);
}

static int move_create(lb_array *a)
{
    return lb_uffd_create_sigbus(
        a, UFFD_FEATURE_MOVE, PROT_READ | PROT_WRITE,
        UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP, move_fault);
}

const struct lb_variant_ops lb_variant_uffd_move = {
    .name = "uffd-move",
    .access = LB_ACCESS_FLAT,
    .signo = SIGBUS,
    .has_fault_around = 1,
    .available = lb_move_available,
    .create = move_create,
    /* MADV_DONTNEED drops the pages and their uffd-wp bits with them
     * (anonymous memory keeps no write-protect marker) */
    .reset = lb_uffd_reset,
    .force = lb_force_pages,
    .release = lb_uffd_release_sigbus,
    .install = move_install,
    .buffer = move_buffer,
    .forked = lb_uffd_forked,
    /* a fault: the signal, getting a source page and moving it into
     * place, write-protecting it, its values; and the signal resolved by
     * the same source page, move and write-protection, timed together */
    .parts = {"sigbus-uffd-roundtrip", "uffdio-move", "uffdio-writeprotect",
              "page-compute"},
    .joint_floor = "sigbus-move",
};
