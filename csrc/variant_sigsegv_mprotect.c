/* sigsegv-mprotect: the lazy region starts PROT_NONE; the first access to
 * a page raises SIGSEGV, the handler computes the page's elements and
 * opens the page read-only, and the faulting instruction re-executes.
 * Later accesses to that page cost nothing.
 *
 * The handler computes the page (and, with fault-around, the next lazy
 * pages) into this thread's page buffer, writes it into the still-closed
 * page with one pwrite, and only then opens it with mprotect: another
 * thread can never read a half-computed page.  The array's per-page state
 * word makes concurrent faults on one page compute it exactly once;
 * claiming, computing and publishing are the core's (lb_open_page), the
 * pwrite and the mprotect this variant's install step.
 *
 * Page source.  The region is private anonymous memory, and the pwrite
 * goes through /proc/self/mem at the page's address: the kernel writes a
 * PROT_NONE page of a private mapping for it as it does for a debugger
 * (FOLL_FORCE), allocating the page and mapping it PROT_NONE, so the
 * mprotect only changes that entry and the re-executed load does not
 * fault again.  Where the kernel refuses such writes (proc_mem.
 * force_override, no /proc; LAZYBENCH_MPROTECT_MEMFD simulates it) the
 * region is a shared mapping of a memfd instead, the pwrite allocates a
 * page-cache page, and the re-executed load takes a second, minor fault
 * to map it.  With fault-around above 1 the memfd is used too: it
 * writes a run with one pwrite and maps it with one fault, where
 * /proc/self/mem copies page by page (paired runs, 256 pages, medians of
 * 31: 14.2 against 13.5 us a page at fault-around 2, 11.4 against 10.0
 * at 4, 7.9 against 7.1 at 8, 8.1 against 6.9 at 16).  Measured in one
 * process (2 vCPUs; hash, 64 pages,
 * sequential scan, fault-around 1; a fresh array of each design every
 * repetition, the floors in between; medians of 61):
 *
 *                                 per page   / sum of parts
 *   /proc/self/mem (kept)         14.3 us    1.39
 *   memfd (before; the fallback)  15.8 us    1.55  (slower in 43 of 61)
 *   sum of parts                  10.2 us    (sigsegv 4.2, mprotect 1.5,
 *                                             first touch 3.5, compute 1.1)
 *   sigsegv-open + compute        14.4 us    1.41
 *   sigsegv-open-memfd + compute  15.0 us    1.47
 *
 * The variant costs its joint floor (the signal resolved by its install
 * step in a bare handler, plus the values): what it pays beyond the sum
 * of parts is the kernel's.  Timed apart (a C probe, layouts shuffled):
 * a page written through /proc/self/mem costs 5.1 us, 3.4 of them even
 * when the page exists (a bounce page allocated and freed per call, a
 * remote GUP under mmap_lock), against 3.4 us for a first touch;
 * mprotect over the present entry 2.3 against 1.4 us over none.  Through
 * a memfd the pwrite into a hole costs 3.6 us (2.0 into an existing
 * page: shmem accounting, page-cache insertion, memcg charge, LRU, the
 * file times), mprotect of a shared mapping 1.9 us, and the second fault
 * 2.7 us more.  mprotect itself costs 1.3-1.8 us or 3-7 us per page
 * depending only on where the region's two mappings fall in the
 * process's maple tree (a spanning store rebalances nodes on every call
 * when they straddle a leaf), for anonymous and memfd regions alike: one
 * reason figures move between runs.  Tried and dropped (bare-handler
 * probes, same run, the memfd design 14.2 us, /proc/self/mem 12.8 us):
 * MADV_POPULATE_READ after the mprotect (15.1 us: the populate costs 3.6
 * us, more than the fault it saves); mmap MAP_FIXED|MAP_POPULATE of the
 * page instead of the mprotect (19.2 us); an anonymous page filled and
 * moved in with mremap (23.1 us, mremap alone 11.3 us; a sequential scan
 * of 1000 pages did stay one mapping); computing into a writable second
 * view of the memfd prefaulted ahead with MADV_POPULATE_WRITE (9.8 us in
 * the handler, but 4.3 us a page to prefault, and pages allocated before
 * they are touched); fallocate ahead (11.5 us in the handler, 1.7 us a
 * page ahead).  Guard markers (MADV_GUARD_INSTALL over a PROT_READ memfd
 * view, MADV_GUARD_REMOVE to open: 1.0 us, no mapping split) cost 12.8
 * us like /proc/self/mem, with the second fault; not taken: page tables
 * for the whole region at create, and no mprotect left to measure.
 *
 * Mapping budget.  Every run of opened pages between closed ones splits
 * the region into more kernel mappings, and vm.max_map_count bounds the
 * whole process.  Each array counts the mappings its region is split into
 * (opening run [p, last] changes it by [page p-1 closed] + [page last+1
 * closed] - [p-1 open] - [last+1 open], a page outside the region being
 * neither), and the process keeps the total of its live arrays.
 *
 * Eviction.  An opening that would take the total past the budget first
 * closes the array's oldest opened runs again, so a large sparse array
 * keeps working: each array keeps a FIFO ring of the runs it opened
 * (allocated at create, as many entries as the process may have mappings
 * or the array pages; a full ring forgets its oldest entry), and the
 * opening takes runs from its head, looking at up to EVICT_SCAN entries,
 * until it fits.  A run is closed only when that lowers the count: the
 * open run around the entry (of at most EVICT_MAX_RUN pages; pages opened
 * side by side merged into it), all its pages ready, bounded by closed
 * pages or the region's ends, at least one of them closed.  Closing it,
 * under the lock: mprotect PROT_NONE, then its memory dropped (drop_pages),
 * then its state words back to lazy and its open bytes to 0, and the
 * counts lowered; the evicted_pages counter adds its pages.  A thread that
 * faults on such a page between the mprotect and the state change sees
 * it ready, returns and faults again until it is lazy, then computes it
 * again like any lazy page (a re-fault, counted as a fault): hash and spin
 * are functions of the index, and recurrence recomputes the chain through
 * nested faults (longer chains when the pages before were evicted too),
 * so the values read stay right.  Only when no run of this array can be
 * closed (the rest of the budget held by other arrays or the process,
 * runs merged into long ones, or runs still being published by other
 * threads) does the opening fail with a clear error before its mprotect,
 * never with ENOMEM half-way.
 *
 * lb_force on such an array opens the pages not ready in ascending order:
 * each opening extends the open run before it, so it needs at most one
 * more mapping, and evictions it causes close only isolated runs ahead of
 * it, which it then opens again.  Once it returns (with no other thread
 * reading the array meanwhile) every page is computed and open, the
 * region is one mapping, and reads fault no more.  The budget is
 * vm.max_map_count, less the mappings the process had besides these
 * regions when its first array was created, less a margin for what it
 * maps later (threads, other arrays, the allocator).  Which pages are
 * opened is kept apart from the state words (`open`, one byte a page),
 * written with the mprotect under a per-array lock, so the neighbours'
 * openness and the mappings agree while one run is opened and the count
 * is exact; the lock is taken only around the mprotect, never while a
 * page is computed (nested faults never meet it). */
#include "lb_core.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#define MAP_MARGIN 4096
/* Ring entries one opening may look at to find runs to evict. */
#define EVICT_SCAN 1024
/* Longest open run (pages) eviction closes as one: longer ones cost a
 * single mapping for many pages, not worth closing. */
#define EVICT_MAX_RUN 128

struct run {
    int64_t first, last;
};

struct mprot {
    /* What pages are written through: /proc/self/mem (the anonymous
     * view's own memory, at offset base = the view's address) or the
     * memfd behind the shared view (base 0).  See the header. */
    int fd;
    int anon;               /* 1: anonymous view, fd is /proc/self/mem */
    off_t base;             /* fd offset of the view's first byte */
    char *view;             /* PROT_NONE until a page is materialised */
    uint8_t *open;          /* 1 per page mprotect'ed readable (the lock) */
    int64_t maps;           /* kernel mappings the region is split into */
    int lock;               /* held while a run is opened (see above) */
    /* The runs opened, oldest first (under the lock): a ring allocated
     * at create, so the handler allocates nothing.  Full, it forgets its
     * oldest entry for the new one. */
    struct run *ring;
    int64_t ring_cap, ring_head, ring_len;
};

static int64_t maps_total;          /* of all live arrays, process-wide */
static int64_t maps_budget;         /* the most maps_total may reach */
static int64_t maps_limit;          /* vm.max_map_count */
static unsigned budget_gen = ~0u;   /* fork generation it was measured in */

static void spin_lock(int *l)
{
    while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE))
        sched_yield();
}

static void spin_unlock(int *l)
{
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

/* +1 if `page` is closed, -1 if open, 0 outside the region.  Under the
 * array's lock. */
static int64_t neighbour(const lb_array *a, const struct mprot *m,
                         int64_t page)
{
    if (page < 0 || page >= a->npages)
        return 0;
    return m->open[page] ? -1 : 1;
}

static void append(char *buf, size_t size, size_t *k, const char *s)
{
    *k += lb_strlcpy(buf + *k, s, size - *k);
}

static void append_num(char *buf, size_t size, size_t *k, int64_t v)
{
    char num[24];
    lb_fmt_i64(num, sizeof num, v);
    append(buf, size, k, num);
}

/* Take `delta` more mappings from the budget; 0 when that would pass it.
 * Concurrent callers may refuse each other near the budget (each sees
 * the other's share), never let the total pass it.  Async-signal-safe. */
static int reserve(int64_t delta)
{
    int64_t budget = __atomic_load_n(&maps_budget, __ATOMIC_RELAXED);
    int64_t now = __atomic_add_fetch(&maps_total, delta, __ATOMIC_SEQ_CST);
    if (now <= budget)
        return 1;
    __atomic_sub_fetch(&maps_total, delta, __ATOMIC_SEQ_CST);
    return 0;
}

static void budget_error(int64_t page)
{
    int64_t budget = __atomic_load_n(&maps_budget, __ATOMIC_RELAXED);
    char msg[256];
    size_t k = 0;
    append(msg, sizeof msg, &k, "sigsegv-mprotect: opening page ");
    append_num(msg, sizeof msg, &k, page);
    append(msg, sizeof msg, &k, " would take the process past ");
    append_num(msg, sizeof msg, &k, budget);
    append(msg, sizeof msg, &k, " memory mappings (vm.max_map_count is ");
    append_num(msg, sizeof msg, &k, __atomic_load_n(&maps_limit,
                                                    __ATOMIC_RELAXED));
    append(msg, sizeof msg, &k, ") and no opened run of this array can "
                                "be closed to make room; reset or release "
                                "sigsegv-mprotect arrays, or touch fewer "
                                "scattered pages");
    lb_set_error(msg, NULL);
}

/* Ring of opened runs, all under the array's lock. */
static void ring_push(struct mprot *m, int64_t first, int64_t last)
{
    if (!m->ring_cap)
        return;
    if (m->ring_len == m->ring_cap) {
        m->ring_head = (m->ring_head + 1) % m->ring_cap;
        m->ring_len--;
    }
    struct run *r = &m->ring[(m->ring_head + m->ring_len) % m->ring_cap];
    r->first = first;
    r->last = last;
    m->ring_len++;
}

static struct run ring_pop(struct mprot *m)
{
    struct run r = m->ring[m->ring_head];
    m->ring_head = (m->ring_head + 1) % m->ring_cap;
    m->ring_len--;
    return r;
}

/* Is page p open and published (its state word ready)? */
static int open_ready(const lb_array *a, const struct mprot *m, int64_t p)
{
    return m->open[p] &&
           __atomic_load_n(&a->state[p], __ATOMIC_ACQUIRE) == LB_PAGE_READY;
}

/* Give back the memory of pages [first, first + len) once they are
 * PROT_NONE again: the anonymous view's pages are dropped (the next
 * FOLL_FORCE write allocates a fresh zeroed page), the memfd's holes
 * punched.  Should it fail, the next fill overwrites the old values with
 * the same ones.  Async-signal-safe. */
static int drop_pages(const struct mprot *m, int64_t first, size_t len)
{
    if (m->anon)
        return madvise(m->view + first * lb_page_size, len, MADV_DONTNEED);
    return fallocate(m->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                     (off_t)(first * (int64_t)lb_page_size), (off_t)len);
}

/* Close the oldest opened run whose closing lowers the mapping count:
 * the open run around a ring entry (runs opened side by side merge into
 * one), every page of it ready, with a closed page or the region's end
 * on both sides and a closed page on one at least.  Entries no longer
 * open (closed with an earlier run) or inside a longer open run are
 * forgotten; a run still being published (opened, its state words not
 * ready yet) goes back to the end of the ring.  At most *budget entries
 * are looked at.  Closing: PROT_NONE first, then its memory dropped,
 * then the state words back to lazy, so a thread that faults on it in
 * between sees it ready, returns, and faults again until it is lazy,
 * then computes it again.  1 if a run was closed.  Under the lock;
 * async-signal-safe. */
static int evict_one(lb_array *a, struct mprot *m, int64_t *budget)
{
    while (m->ring_len > 0 && *budget > 0) {
        --*budget;
        struct run r = ring_pop(m);
        if (!m->open[r.first])
            continue;                           /* closed already */
        int64_t first = r.first, last = r.first;
        int busy = 0, longer = 0;
        while (first > 0 && m->open[first - 1] && !longer) {
            first--;
            longer = last - first + 1 > EVICT_MAX_RUN;
        }
        while (last + 1 < a->npages && m->open[last + 1] && !longer) {
            last++;
            longer = last - first + 1 > EVICT_MAX_RUN;
        }
        if (longer)
            continue;
        for (int64_t p = first; p <= last && !busy; p++)
            busy = !open_ready(a, m, p);
        if (busy) {
            ring_push(m, r.first, r.last);      /* being published */
            continue;
        }
        int64_t fewer = neighbour(a, m, first - 1) +
                        neighbour(a, m, last + 1);
        if (fewer <= 0)
            continue;       /* the whole region: closing saves nothing */
        size_t len = (size_t)(last - first + 1) * lb_page_size;
        lb_prof_syscalls(2);            /* mprotect, madvise/fallocate */
        if (mprotect(m->view + first * lb_page_size, len, PROT_NONE)) {
            ring_push(m, r.first, r.last);
            return 0;
        }
        drop_pages(m, first, len);              /* its memory goes back */
        memset(m->open + first, 0, (size_t)(last - first + 1));
        lb_set_states(a, first, last, LB_PAGE_LAZY);
        __atomic_store_n(&m->maps, m->maps - fewer, __ATOMIC_RELAXED);
        __atomic_sub_fetch(&maps_total, fewer, __ATOMIC_SEQ_CST);
        lb_count(&a->c.evicted_pages, (uint64_t)(last - first + 1));
        return 1;
    }
    return 0;
}

/* Install step (lb_fill_pages): pages [page, last], computed into buf,
 * go into the still-closed pages with one pwrite (through /proc/self/mem
 * or into the memfd), then are opened read-only within the mapping
 * budget.  Signal-safe. */
static int mprot_install(lb_array *a, int64_t page, int64_t last,
                         const char *buf)
{
    struct mprot *m = a->priv;
    size_t len = (size_t)(last - page + 1) * lb_page_size;
    off_t off = m->base + (off_t)(page * (int64_t)lb_page_size);
    lb_prof_syscalls(2);                        /* pwrite, mprotect */
    if (pwrite(m->fd, buf, len, off) != (ssize_t)len) {
        lb_set_error(m->anon ? "sigsegv-mprotect: writing the page through "
                               "/proc/self/mem failed"
                             : "sigsegv-mprotect: writing the page into its "
                               "memfd failed",
                     errno == ENOSPC || errno == ENOMEM ? " (no memory)"
                                                        : NULL);
        return LB_ESYS;
    }
    spin_lock(&m->lock);
    int64_t scan = EVICT_SCAN;
    int64_t delta;
    for (;;) {
        /* again after every eviction: it may have closed a neighbour */
        delta = neighbour(a, m, page - 1) + neighbour(a, m, last + 1);
        if (delta <= 0 || reserve(delta))
            break;
        if (!evict_one(a, m, &scan)) {
            spin_unlock(&m->lock);
            budget_error(page);
            return LB_ELAZY;
        }
    }
    if (mprotect(m->view + page * lb_page_size, len, PROT_READ)) {
        int err = errno;
        if (delta > 0)
            __atomic_sub_fetch(&maps_total, delta, __ATOMIC_SEQ_CST);
        spin_unlock(&m->lock);
        lb_set_error("sigsegv-mprotect: mprotect failed",
                     err == ENOMEM ? " with ENOMEM (vm.max_map_count "
                                     "reached by the process's other "
                                     "mappings?)" : NULL);
        return LB_ESYS;
    }
    memset(m->open + page, 1, (size_t)(last - page + 1));
    ring_push(m, page, last);
    __atomic_store_n(&m->maps, m->maps + delta, __ATOMIC_RELAXED);
    if (delta < 0)
        __atomic_add_fetch(&maps_total, delta, __ATOMIC_SEQ_CST);
    spin_unlock(&m->lock);
    return LB_OK;
}

static int mprot_fault(lb_array *a, void *addr, void *ucv)
{
    struct mprot *m = a->priv;
    int64_t page = (int64_t)(((char *)addr - m->view) / lb_page_size);
    lb_count(&a->c.faults, 1);
    /* A store would fault again on the opened, read-only page for ever. */
    const ucontext_t *uc = ucv;
    if (uc->uc_mcontext.gregs[REG_ERR] & 2) {
        lb_fail("sigsegv-mprotect: a store to a lazy element (lazy "
                "elements are read-only)", NULL);
        return LB_FAULT_NOT_OURS;
    }
    return lb_open_page(a, page) == LB_OK ? LB_FAULT_HANDLED
                                          : LB_FAULT_NOT_OURS;
}

static long max_map_count(void)
{
    long v = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &v) != 1)
            v = 65530;
        fclose(f);
    }
    return v;
}

/* Lines of /proc/self/maps: the process's mappings, or -1. */
static int64_t count_maps(void)
{
    int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    char buf[16384];
    int64_t lines = 0;
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0)
        for (ssize_t i = 0; i < got; i++)
            lines += buf[i] == '\n';
    close(fd);
    return got < 0 ? -1 : lines;
}

/* Once per process (and again in a forked child): reading
 * /proc/self/maps costs milliseconds in a large process, too much for
 * every array (the suite creates one per measurement).  No lock: threads
 * measuring at once store about the same numbers, and a lock held by
 * another thread at fork() would stay taken in the child. */
static void measure_budget(void)
{
    unsigned gen = __atomic_load_n(&lb_fork_gen, __ATOMIC_RELAXED);
    if (__atomic_load_n(&budget_gen, __ATOMIC_ACQUIRE) == gen)
        return;
    int64_t limit = max_map_count();
    int64_t lines = count_maps();
    int64_t others = lines - __atomic_load_n(&maps_total, __ATOMIC_SEQ_CST);
    if (lines < 0 || others < 0)
        others = 0;
    __atomic_store_n(&maps_limit, limit, __ATOMIC_RELAXED);
    __atomic_store_n(&maps_budget, limit - others - MAP_MARGIN,
                     __ATOMIC_RELAXED);
    __atomic_store_n(&budget_gen, gen, __ATOMIC_RELEASE);
}

void lb_mappings(const lb_array *a, int64_t *array, int64_t *total,
                 int64_t *budget, int64_t *limit)
{
    *array = 0;
    if (a && a->magic == LB_MAGIC && a->ops == &lb_variant_sigsegv_mprotect &&
        a->priv)
        *array = __atomic_load_n(&((struct mprot *)a->priv)->maps,
                                 __ATOMIC_RELAXED);
    *total = __atomic_load_n(&maps_total, __ATOMIC_SEQ_CST);
    *budget = __atomic_load_n(&maps_budget, __ATOMIC_RELAXED);
    *limit = __atomic_load_n(&maps_limit, __ATOMIC_RELAXED);
}

static void mprot_unmap(lb_array *a, struct mprot *m)
{
    if (m->view && m->view != MAP_FAILED)
        munmap(m->view, a->bytes);
    if (m->fd >= 0)
        close(m->fd);
    free(m->open);
    free(m->ring);
    free(m);
}

/* Can this process write a PROT_NONE page of its own through
 * /proc/self/mem (the kernel's FOLL_FORCE, as debuggers do)?  No where
 * /proc is missing or the kernel refuses forced writes
 * (proc_mem.force_override=never or ptrace, CONFIG_PROC_MEM_NO_FORCE).
 * Tried once per process: a page written, opened and read back. */
int lb_mem_write_works(void)
{
    static int known;                   /* 0 unknown, 1 works, -1 not */
    int k = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (k)
        return k > 0;
    int works = 0;
    int fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    char *p = mmap(NULL, lb_page_size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (fd >= 0 && p != MAP_FAILED) {
        static const char word[8] = "lazybnch";
        works = pwrite(fd, word, sizeof word, (off_t)(uintptr_t)p) ==
                    (ssize_t)sizeof word &&
                !mprotect(p, lb_page_size, PROT_READ) &&
                !memcmp(p, word, sizeof word);
    }
    if (p != MAP_FAILED)
        munmap(p, lb_page_size);
    if (fd >= 0)
        close(fd);
    __atomic_store_n(&known, works ? 1 : -1, __ATOMIC_RELAXED);
    return works;
}

/* The anonymous view written through /proc/self/mem at fault-around 1,
 * else the memfd: /proc/self/mem copies page by page (a GUP and a bounce
 * page each), the memfd takes a run in one pwrite and maps it with one
 * fault, and was faster from fault-around 4 on (see the header); the
 * adaptive fault-around (LB_FAULT_AROUND_AUTO) grows sequential runs to
 * 64 pages, so it takes the memfd too.  LAZYBENCH_MPROTECT_MEMFD set:
 * the memfd always, as on a kernel that refuses forced writes. */
static int use_mem_write(int64_t fault_around)
{
    return fault_around >= 0 && fault_around <= 1 &&
           !getenv("LAZYBENCH_MPROTECT_MEMFD") && lb_mem_write_works();
}

const char *lb_mprotect_source(int64_t fault_around)
{
    return use_mem_write(fault_around) ? "/proc/self/mem" : "memfd";
}

static int map_view(lb_array *a, struct mprot *m)
{
    if (use_mem_write(a->p.fault_around)) {
        m->fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
        m->view = mmap(NULL, a->bytes, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        static const char zero;
        /* 4 KiB pages: a huge page would be allocated whole by the first
         * forced write and split by the first mprotect.  Then one forced
         * write (its page dropped again) gives the region its own
         * anon_vma before MADV_DONTFORK makes its flags those of the
         * other arrays' regions: adjacent anonymous regions with equal
         * flags and no anon_vma of their own would merge into one kernel
         * mapping, and the per-array mapping counts (and /proc/self/maps
         * within each region) would be off. */
        if (m->fd >= 0 && m->view != MAP_FAILED &&
            !madvise(m->view, a->bytes, MADV_NOHUGEPAGE) &&
            pwrite(m->fd, &zero, 1, (off_t)(uintptr_t)m->view) == 1 &&
            !madvise(m->view, lb_page_size, MADV_DONTNEED)) {
            m->anon = 1;
            m->base = (off_t)(uintptr_t)m->view;
            return LB_OK;
        }
        if (m->view != MAP_FAILED)
            munmap(m->view, a->bytes);
        if (m->fd >= 0)
            close(m->fd);
        m->fd = -1;
    }
    m->view = NULL;
    m->fd = memfd_create("lazybench-mprotect", MFD_CLOEXEC);
    if (m->fd < 0 || ftruncate(m->fd, (off_t)a->bytes)) {
        lb_set_error("sigsegv-mprotect: cannot create the backing memfd: ",
                     strerror(errno));
        return LB_ESYS;
    }
    m->view = mmap(NULL, a->bytes, PROT_NONE, MAP_SHARED, m->fd, 0);
    if (m->view == MAP_FAILED) {
        lb_set_error("sigsegv-mprotect: cannot map the array", NULL);
        return LB_ENOMEM;
    }
    return LB_OK;
}

static int mprot_create(lb_array *a)
{
    measure_budget();
    struct mprot *m = calloc(1, sizeof *m);
    if (!m)
        return LB_ENOMEM;
    m->fd = -1;
    m->open = calloc((size_t)a->npages, 1);
    /* As many runs as the process may hold mappings (or pages). */
    int64_t limit = __atomic_load_n(&maps_limit, __ATOMIC_RELAXED);
    m->ring_cap = a->npages < limit ? a->npages : limit;
    m->ring = calloc((size_t)m->ring_cap, sizeof *m->ring);
    if (!m->open || !m->ring) {
        mprot_unmap(a, m);
        return LB_ENOMEM;
    }
    int rc = map_view(a, m);
    if (rc) {
        mprot_unmap(a, m);
        return rc;
    }
    /* A forked child gets a PROT_NONE reservation instead (see fork.c). */
    madvise(m->view, a->bytes, MADV_DONTFORK);
    a->priv = m;
    a->view = (const int64_t *)m->view;
    rc = lb_sig_register(SIGSEGV, a, m->view, a->bytes, mprot_fault);
    if (rc) {
        mprot_unmap(a, m);
        a->priv = NULL;
        return rc;
    }
    m->maps = 1;
    __atomic_add_fetch(&maps_total, 1, __ATOMIC_SEQ_CST);
    return LB_OK;
}

/* Back to one PROT_NONE mapping (the kernel merges the pieces). */
static int mprot_reset(lb_array *a)
{
    struct mprot *m = a->priv;
    spin_lock(&m->lock);
    if (mprotect(m->view, a->bytes, PROT_NONE)) {
        spin_unlock(&m->lock);
        lb_set_error("sigsegv-mprotect: reset failed: ", strerror(errno));
        return LB_ESYS;
    }
    memset(a->state, LB_PAGE_LAZY, (size_t)a->npages);
    memset(m->open, 0, (size_t)a->npages);
    m->ring_head = m->ring_len = 0;
    __atomic_add_fetch(&maps_total, 1 - m->maps, __ATOMIC_SEQ_CST);
    __atomic_store_n(&m->maps, 1, __ATOMIC_RELAXED);
    spin_unlock(&m->lock);
    if (drop_pages(m, 0, a->bytes)) {
        lb_set_error("sigsegv-mprotect: reset failed: ", strerror(errno));
        return LB_ESYS;
    }
    return LB_OK;
}

static void mprot_release(lb_array *a)
{
    struct mprot *m = a->priv;
    lb_sig_unregister(SIGSEGV, a);
    __atomic_sub_fetch(&maps_total, m->maps, __ATOMIC_SEQ_CST);
    mprot_unmap(a, m);
}

/* In the child of fork(): the descriptor is the parent's data (a hole
 * punched in the memfd would drop the parent's pages; /proc/self/mem,
 * opened by the parent, writes into the parent's memory), so close it;
 * the region was not copied (MADV_DONTFORK): reserve its addresses, one
 * mapping. */
static void mprot_forked(lb_array *a)
{
    struct mprot *m = a->priv;
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    lb_fork_reserve(m->view, a->bytes);
    __atomic_add_fetch(&maps_total, 1 - m->maps, __ATOMIC_SEQ_CST);
    m->maps = 1;
    m->lock = 0;            /* a parent's thread may have held it */
}

const struct lb_variant_ops lb_variant_sigsegv_mprotect = {
    .name = "sigsegv-mprotect",
    .access = LB_ACCESS_FLAT,
    .signo = SIGSEGV,
    .create = mprot_create,
    .reset = mprot_reset,
    .force = lb_force_pages,
    .release = mprot_release,
    .install = mprot_install,
    .forked = mprot_forked,
    .has_fault_around = 1,
    /* a fault: the signal, the mprotect that opens the page, the page's
     * memory, its values; and the signal resolved by the install step
     * (write into the closed page, mprotect), timed together */
    .parts = {"sigsegv-roundtrip", "mprotect", "first-touch", "page-compute"},
    .joint_floor = "sigsegv-open",
};
