/* Floors: the bare costs the variants are compared with, measured in the
 * same run because absolute times drift between runs and machines. */
#include "lb_core.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <capstone/capstone.h>
#include <linux/userfaultfd.h>

/* One load at a known address, and the address just after it: the bare
 * round-trip handler resumes there without decoding anything. */
__asm__(".text\n"
        ".globl lb_probe_load\n"
        ".hidden lb_probe_load\n"
        ".type lb_probe_load, @function\n"
        "lb_probe_load:\n"
        ".globl lb_probe_insn\n"
        ".hidden lb_probe_insn\n"
        "lb_probe_insn:\n"
        "    movq (%rdi), %rax\n"
        "lb_probe_resume:\n"
        "    ret\n"
        ".size lb_probe_load, .-lb_probe_load\n");
extern int64_t lb_probe_load(const volatile int64_t *p);
extern char lb_probe_insn[], lb_probe_resume[];

#define CHUNK_PAGES 4096

static int64_t time_null_syscall(int64_t iters)
{
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < iters; k++)
        syscall(SYS_getppid);
    return lb_now_ns() - t0;
}

static int64_t floor_null_syscall(int64_t iters)
{
    return iters > 0 ? time_null_syscall(iters) : LB_EINVAL;
}

/* Time `op` on each of `iters` fresh pages, mapped with `prot` in chunks
 * (mapping and unmapping are not timed). */
static int64_t time_per_page(int64_t iters, int prot, void (*op)(char *))
{
    if (iters <= 0)
        return LB_EINVAL;
    int64_t total = 0;
    for (int64_t done = 0; done < iters;) {
        int64_t chunk = iters - done < CHUNK_PAGES ? iters - done : CHUNK_PAGES;
        size_t len = (size_t)chunk * lb_page_size;
        char *p = mmap(NULL, len, prot,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED)
            return LB_ENOMEM;
        madvise(p, len, MADV_NOHUGEPAGE);
        int64_t t0 = lb_now_ns();
        for (int64_t k = 0; k < chunk; k++)
            op(p + k * (int64_t)lb_page_size);
        total += lb_now_ns() - t0;
        munmap(p, len);
        done += chunk;
    }
    return total;
}

static void unprotect_page(char *page)
{
    mprotect(page, lb_page_size, PROT_READ);
}

static void touch_page(char *page)
{
    *(volatile char *)page = 1;
}

/* Opening one page of a PROT_NONE region, in ascending order: what the
 * sigsegv-mprotect handler does for a sequential scan. */
static int64_t floor_mprotect(int64_t iters)
{
    return time_per_page(iters, PROT_NONE, unprotect_page);
}

/* First write to a fresh anonymous page (4 KiB pages, no THP). */
static int64_t floor_first_touch(int64_t iters)
{
    return time_per_page(iters, PROT_READ | PROT_WRITE, touch_page);
}

/* Bare SIGSEGV round trip: fault, enter a handler that only moves the
 * instruction pointer past the known load, sigreturn.  Installed with the
 * same flags and on the same alternate stack as the variants' handler. */
static void bare_handler(int signo, siginfo_t *si, void *ucv)
{
    (void)signo;
    (void)si;
    ucontext_t *uc = ucv;
    if (uc->uc_mcontext.gregs[REG_RIP] == (greg_t)lb_probe_insn) {
        uc->uc_mcontext.gregs[REG_RIP] = (greg_t)lb_probe_resume;
        uc->uc_mcontext.gregs[REG_RAX] = 0;
        return;
    }
    /* Not the probe: restore the default action and let it re-fault. */
    signal(signo, SIG_DFL);
}

/* The single-step floor: the SIGSEGV handler points the load's address
 * register at a readable word and sets the trap flag; the SIGTRAP after
 * the load puts the register back.  What sigsegv-redirect's safe handler
 * costs at least: two signal round trips and no decode, no thunk. */
static const int64_t step_word;
static greg_t step_saved;

static void step_fault_handler(int signo, siginfo_t *si, void *ucv)
{
    (void)si;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    if (g[REG_RIP] == (greg_t)lb_probe_insn) {
        step_saved = g[REG_RDI];
        g[REG_RDI] = (greg_t)&step_word;
        g[REG_EFL] |= 0x100;
        return;
    }
    signal(signo, SIG_DFL);
}

static void step_trap_handler(int signo, siginfo_t *si, void *ucv)
{
    (void)si;
    ucontext_t *uc = ucv;
    greg_t *g = uc->uc_mcontext.gregs;
    if (g[REG_RIP] == (greg_t)lb_probe_resume) {
        g[REG_RDI] = step_saved;
        g[REG_EFL] &= ~(greg_t)0x100;
        return;
    }
    signal(signo, SIG_DFL);
}

/* The page the probe's load faulted on, or NULL when the fault is not
 * the probe's (the floors' handlers then restore the default action and
 * let it fault again, so it crashes honestly). */
static char *probe_page(const siginfo_t *si, const void *ucv)
{
    const ucontext_t *uc = ucv;
    if (uc->uc_mcontext.gregs[REG_RIP] != (greg_t)lb_probe_insn)
        return NULL;
    return (char *)((uintptr_t)si->si_addr & ~(uintptr_t)(lb_page_size - 1));
}

/* The SIGBUS+copy floor's handler state (floors run on one thread). */
static int copy_fd = -1;
static const char *copy_src;

/* Resolves the probe's fault on a userfaultfd missing page with one
 * UFFDIO_COPY of a ready page and lets the load re-execute: what
 * uffd-sigbus does, minus computing the page and any bookkeeping. */
static void copy_handler(int signo, siginfo_t *si, void *ucv)
{
    char *page = probe_page(si, ucv);
    if (page && lb_uffd_copy(copy_fd, page, copy_src, lb_page_size) == 0)
        return;
    signal(signo, SIG_DFL);
}

struct sig_ctx {
    int signo;
    void (*handler)(int, siginfo_t *, void *);
    void (*trap)(int, siginfo_t *, void *);   /* SIGTRAP's, or NULL */
    char *page;             /* the first page read */
    int64_t stride;         /* bytes between reads: 0 reads one page */
    int64_t iters;
    int64_t ns;
};

/* Time ctx->iters faulting reads, each caught by ctx->handler. */
static int body_signal(lb_array *a, void *p)
{
    (void)a;
    struct sig_ctx *ctx = p;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = ctx->handler;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK | SA_RESTART;
    sigemptyset(&sa.sa_mask);
    struct sigaction old_trap;
    if (sigaction(ctx->signo, &sa, &old))
        return LB_ESYS;
    sa.sa_sigaction = ctx->trap;
    if (ctx->trap && sigaction(SIGTRAP, &sa, &old_trap)) {
        sigaction(ctx->signo, &old, NULL);
        return LB_ESYS;
    }
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < ctx->iters; k++)
        lb_probe_load((const volatile int64_t *)(ctx->page + k * ctx->stride));
    ctx->ns = lb_now_ns() - t0;
    if (ctx->trap)
        sigaction(SIGTRAP, &old_trap, NULL);
    sigaction(ctx->signo, &old, NULL);
    return LB_OK;
}

typedef void (*sig_handler_fn)(int, siginfo_t *, void *);

/* `reads` faulting loads from `first`, `stride` bytes apart (0: the same
 * page each time), each caught by `handler` for `signo` (and, with
 * `trap`, followed by the single step's SIGTRAP), on the core's signal
 * stack: their nanoseconds, or a negative status. */
static int64_t time_faults(int signo, sig_handler_fn handler,
                           sig_handler_fn trap, char *first, int64_t stride,
                           int64_t reads)
{
    struct sig_ctx ctx = {.signo = signo, .handler = handler, .trap = trap,
                          .page = first, .stride = stride, .iters = reads};
    int rc = lb_guarded(NULL, body_signal, &ctx);
    return rc ? rc : ctx.ns;
}

/* `iters` faulting loads of one PROT_NONE page, each caught by `handler`
 * (and, with `trap`, followed by the single step's SIGTRAP). */
static int64_t sigsegv_floor(int64_t iters, sig_handler_fn handler,
                             sig_handler_fn trap)
{
    if (iters <= 0)
        return LB_EINVAL;
    char *page = mmap(NULL, lb_page_size, PROT_NONE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (page == MAP_FAILED)
        return LB_ENOMEM;
    int64_t ns = time_faults(SIGSEGV, handler, trap, page, 0, iters);
    munmap(page, lb_page_size);
    return ns;
}

static int64_t floor_sigsegv(int64_t iters)
{
    return sigsegv_floor(iters, bare_handler, NULL);
}

/* The fault, the load single-stepped against a readable word, and the
 * SIGTRAP that ends the step. */
static int64_t floor_sigsegv_step(int64_t iters)
{
    return sigsegv_floor(iters, step_fault_handler, step_trap_handler);
}

/* Capstone's decode of one load (cs_disasm_iter with detail, plus the
 * operand analysis the redirect handler does), outside any signal. */
static int64_t floor_decode(int64_t iters)
{
    if (iters <= 0)
        return LB_EINVAL;
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts || lb_decoder_ensure(ts))
        return LB_ENOMEM;
    struct lb_insn_info info;
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < iters; k++) {
        if (lb_decode((uintptr_t)lb_probe_insn, &info))
            return LB_ELAZY;
        __asm__ volatile("" : : "r"(&info) : "memory");
    }
    return lb_now_ns() - t0;
}

/* What a floor times on one chunk of fresh missing pages: returns its
 * nanoseconds, or a negative status. */
typedef int64_t (*uffd_chunk_fn)(int fd, char *region, int64_t pages,
                                 const char *src, int64_t arg);
static int64_t over_missing_mode(int64_t iters, int features, int prot,
                                 int mode, int64_t src_pages,
                                 uffd_chunk_fn fn, int64_t arg);

/* Runs `fn` over `iters` fresh userfaultfd missing pages (opened with
 * `features`, mapped with `prot`), CHUNK_PAGES at a time; mapping and
 * registering are not timed.  src: `src_pages` ready pages. */
static int64_t over_missing_pages(int64_t iters, int features, int prot,
                                  int64_t src_pages, uffd_chunk_fn fn,
                                  int64_t arg)
{
    return over_missing_mode(iters, features, prot,
                             UFFDIO_REGISTER_MODE_MISSING, src_pages, fn,
                             arg);
}

/* The same, registered with UFFDIO_REGISTER `mode`. */
static int64_t over_missing_mode(int64_t iters, int features, int prot,
                                 int mode, int64_t src_pages,
                                 uffd_chunk_fn fn, int64_t arg)
{
    if (iters <= 0)
        return LB_EINVAL;
    char why[200];
    int fd = lb_uffd_open(features, why, sizeof why);
    if (fd < 0) {
        lb_set_error(why, NULL);
        return LB_EUNAVAIL;
    }
    size_t src_len = (size_t)src_pages * lb_page_size;
    char *src = mmap(NULL, src_len, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (src == MAP_FAILED) {
        close(fd);
        return LB_ENOMEM;
    }
    memset(src, 7, src_len);
    int64_t total = 0;
    for (int64_t done = 0; done < iters && total >= 0;) {
        int64_t chunk = iters - done < CHUNK_PAGES ? iters - done : CHUNK_PAGES;
        size_t len = (size_t)chunk * lb_page_size;
        char *p = mmap(NULL, len, prot,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            total = LB_ENOMEM;
            break;
        }
        madvise(p, len, MADV_NOHUGEPAGE);
        if (lb_uffd_register_mode(fd, p, len, mode)) {
            munmap(p, len);
            total = LB_ESYS;
            break;
        }
        int64_t ns = fn(fd, p, chunk, src, arg);
        total = ns < 0 ? ns : total + ns;
        munmap(p, len);
        done += chunk;
    }
    munmap(src, src_len);
    close(fd);
    return total;
}

/* UFFDIO_COPY of `per_call` pages at a time (fewer for the last). */
static int64_t copy_chunk(int fd, char *region, int64_t pages,
                          const char *src, int64_t per_call)
{
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < pages; k += per_call) {
        int64_t n = pages - k < per_call ? pages - k : per_call;
        lb_uffd_copy(fd, region + k * (int64_t)lb_page_size, src,
                     (size_t)n * lb_page_size);
    }
    return lb_now_ns() - t0;
}

static int64_t time_uffdio_copy(int64_t iters, int64_t per_call)
{
    return over_missing_pages(iters, 0, PROT_READ | PROT_WRITE, per_call,
                              copy_chunk, per_call);
}

/* One faulting read per page, each resolved by copy_handler. */
static int64_t sigbus_copy_chunk(int fd, char *region, int64_t pages,
                                 const char *src, int64_t unused)
{
    (void)unused;
    copy_fd = fd;
    copy_src = src;
    int64_t ns = time_faults(SIGBUS, copy_handler, NULL, region,
                             (int64_t)lb_page_size, pages);
    copy_fd = -1;
    copy_src = NULL;
    return ns;
}

/* Reads of one missing page, each caught by bare_handler. */
static int64_t sigbus_bare_chunk(int fd, char *region, int64_t pages,
                                 const char *src, int64_t unused)
{
    (void)fd, (void)src, (void)unused;
    return time_faults(SIGBUS, bare_handler, NULL, region, 0, pages);
}

/* Bare SIGBUS round trip from a userfaultfd missing page registered with
 * UFFD_FEATURE_SIGBUS: the signal uffd-sigbus pays, with a handler that
 * only skips the load (the page stays missing, so every read faults). */
static int64_t floor_sigbus_uffd(int64_t iters)
{
    return over_missing_pages(iters, UFFD_FEATURE_SIGBUS, PROT_READ, 1,
                              sigbus_bare_chunk, 0);
}

/* SIGBUS from a userfaultfd missing page resolved in the handler by one
 * UFFDIO_COPY of a ready page, one fresh page per read. */
static int64_t floor_sigbus_copy(int64_t iters)
{
    return over_missing_pages(iters, UFFD_FEATURE_SIGBUS, PROT_READ, 1,
                              sigbus_copy_chunk, 0);
}

/* UFFDIO_COPY of one page into a registered missing page, no fault. */
static int64_t floor_uffdio_copy(int64_t iters)
{
    return time_uffdio_copy(iters, 1);
}

/* The same, 16 pages per UFFDIO_COPY (what fault-around 16 does); the
 * time is per page. */
static int64_t floor_uffdio_copy16(int64_t iters)
{
    return time_uffdio_copy(iters, 16);
}

/* ---- memfd pages (uffd-minor, and sigsegv-mprotect's pwrite) ---------- */

/* What a floor times on one chunk of a fresh memfd of `pages` pages, its
 * read-only MAP_SHARED mapping registered with `uffd` for missing and
 * minor faults (or not registered, uffd -1): returns its nanoseconds, or
 * a negative status.  src: one ready page. */
typedef int64_t (*memfd_chunk_fn)(int uffd, int memfd, char *view,
                                  int64_t pages, const char *src);

static int minor_floor_available(char *why, size_t len)
{
    return lb_uffd_has_feature(UFFD_FEATURE_MINOR_SHMEM, "MINOR_SHMEM",
                               "Linux 5.14", why, len);
}

/* Runs `fn` over `iters` pages of fresh memfds, CHUNK_PAGES at a time,
 * set up as uffd-minor sets up its array (with `features`; 0: no
 * userfaultfd, the mapping unregistered); `filled`: every page written
 * into the page cache first.  Creating, mapping, registering, filling
 * and closing are not timed. */
static int64_t over_memfd(int64_t iters, int features, int filled,
                          memfd_chunk_fn fn)
{
    if (iters <= 0)
        return LB_EINVAL;
    char why[200];
    int uffd = -1;
    if (features) {
        uffd = lb_uffd_open(features, why, sizeof why);
        if (uffd < 0) {
            lb_set_error(why, NULL);
            return LB_EUNAVAIL;
        }
    }
    char *src = mmap(NULL, lb_page_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (src == MAP_FAILED) {
        if (uffd >= 0)
            close(uffd);
        return LB_ENOMEM;
    }
    memset(src, 7, lb_page_size);
    int64_t total = 0;
    for (int64_t done = 0; done < iters && total >= 0;) {
        int64_t chunk = iters - done < CHUNK_PAGES ? iters - done : CHUNK_PAGES;
        size_t len = (size_t)chunk * lb_page_size;
        int memfd = memfd_create("lazybench-floor", MFD_CLOEXEC);
        if (memfd < 0 || ftruncate(memfd, (off_t)len)) {
            if (memfd >= 0)
                close(memfd);
            total = LB_ESYS;
            break;
        }
        char *view = mmap(NULL, len, PROT_READ, MAP_SHARED, memfd, 0);
        if (view == MAP_FAILED) {
            close(memfd);
            total = LB_ENOMEM;
            break;
        }
        madvise(view, len, MADV_NOHUGEPAGE);
        struct uffdio_register reg = {
            .range = {.start = (uint64_t)(uintptr_t)view, .len = len},
            .mode = UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_MINOR,
        };
        int64_t ns = LB_ESYS;
        if (uffd >= 0 && ioctl(uffd, UFFDIO_REGISTER, &reg)) {
            lb_set_error("registering a memfd mapping for missing and "
                         "minor faults failed", NULL);
        } else {
            ns = 0;
            for (int64_t k = 0; filled && k < chunk && ns == 0; k++)
                if (pwrite(memfd, src, lb_page_size,
                           (off_t)(k * (int64_t)lb_page_size)) !=
                    (ssize_t)lb_page_size)
                    ns = LB_ESYS;
            if (ns == 0)
                ns = fn(uffd, memfd, view, chunk, src);
        }
        total = ns < 0 ? ns : total + ns;
        munmap(view, len);
        close(memfd);
        done += chunk;
    }
    munmap(src, lb_page_size);
    if (uffd >= 0)
        close(uffd);
    return total;
}

static int continue_page(int uffd, char *page)
{
    struct uffdio_continue c = {
        .range = {.start = (uint64_t)(uintptr_t)page, .len = lb_page_size},
        .mode = 0,
    };
    return ioctl(uffd, UFFDIO_CONTINUE, &c);
}

/* One pwrite of a ready page into each hole, in ascending order. */
static int64_t pwrite_chunk(int uffd, int memfd, char *view, int64_t pages,
                            const char *src)
{
    (void)uffd, (void)view;
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < pages; k++)
        if (pwrite(memfd, src, lb_page_size,
                   (off_t)(k * (int64_t)lb_page_size)) !=
            (ssize_t)lb_page_size)
            return LB_ESYS;
    return lb_now_ns() - t0;
}

/* One UFFDIO_CONTINUE of each page, its values in the page cache. */
static int64_t continue_chunk(int uffd, int memfd, char *view, int64_t pages,
                              const char *src)
{
    (void)memfd, (void)src;
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < pages; k++)
        if (continue_page(uffd, view + k * (int64_t)lb_page_size))
            return LB_ESYS;
    return lb_now_ns() - t0;
}

/* The SIGBUS+continue floor's handler state (floors run on one thread). */
static int cont_uffd = -1, cont_memfd = -1;
static char *cont_view;
static const char *cont_src;

/* Resolves the probe's fault on a memfd hole as uffd-minor's install
 * step does, one page: pwrite of a ready page into the hole, then
 * UFFDIO_CONTINUE of it; the load re-executes.  Minus computing the page
 * and any bookkeeping. */
static void continue_handler(int signo, siginfo_t *si, void *ucv)
{
    char *page = probe_page(si, ucv);
    if (page &&
        pwrite(cont_memfd, cont_src, lb_page_size,
               (off_t)(page - cont_view)) == (ssize_t)lb_page_size &&
        continue_page(cont_uffd, page) == 0)
        return;
    signal(signo, SIG_DFL);
}

/* One faulting read per hole, each resolved by continue_handler. */
static int64_t sigbus_continue_chunk(int uffd, int memfd, char *view,
                                     int64_t pages, const char *src)
{
    cont_uffd = uffd;
    cont_memfd = memfd;
    cont_view = view;
    cont_src = src;
    int64_t ns = time_faults(SIGBUS, continue_handler, NULL, view,
                             (int64_t)lb_page_size, pages);
    cont_uffd = cont_memfd = -1;
    cont_view = NULL;
    cont_src = NULL;
    return ns;
}

/* Reads of one hole, each caught by bare_handler (the hole stays). */
static int64_t sigbus_memfd_bare_chunk(int uffd, int memfd, char *view,
                                       int64_t pages, const char *src)
{
    (void)uffd, (void)memfd, (void)src;
    return time_faults(SIGBUS, bare_handler, NULL, view, 0, pages);
}

#define MINOR_FEATURES (UFFD_FEATURE_SIGBUS | UFFD_FEATURE_MINOR_SHMEM)

/* pwrite of one ready page into a hole of a memfd, the page-cache
 * allocation included, no fault: what uffd-minor and sigsegv-mprotect
 * pay to put a computed page into their memfd.  A pwrite goes through no
 * mapping: the memfd's mapping is left unregistered, so the floor runs
 * without userfaultfd too (registered for missing and minor faults, it
 * timed the same within the machine's noise: 4.2 to 4.6 against 4.1 to
 * 4.3 us per page in one run). */
static int64_t floor_pwrite_page(int64_t iters)
{
    return over_memfd(iters, 0, 0, pwrite_chunk);
}

/* UFFDIO_CONTINUE of one page already in the page cache into the
 * registered mapping, no fault. */
static int64_t floor_uffdio_continue(int64_t iters)
{
    return over_memfd(iters, MINOR_FEATURES, 1, continue_chunk);
}

/* SIGBUS from a hole of a registered memfd mapping resolved in the
 * handler by pwrite and UFFDIO_CONTINUE, one fresh hole per read. */
static int64_t floor_sigbus_continue(int64_t iters)
{
    return over_memfd(iters, MINOR_FEATURES, 0, sigbus_continue_chunk);
}

/* Bare SIGBUS round trip from a hole of a registered memfd mapping: the
 * signal uffd-minor pays, with a handler that only skips the load. */
static int64_t floor_sigbus_memfd(int64_t iters)
{
    return over_memfd(iters, MINOR_FEATURES, 0, sigbus_memfd_bare_chunk);
}

/* ---- uffd-move's floors ------------------------------------------------
 *
 * Each page is got as uffd-move gets it (lb_move_source at nesting level
 * 0, then a write to it, which faults the page in when the variant's
 * source buffer left a hole there: what the variant's computation pays on
 * its first store), so the floors and the variant share its source-page
 * policy whichever it is built with. */
#define MOVE_FEATURES (UFFD_FEATURE_SIGBUS | (1 << 16))   /* ..._MOVE */
#define MOVE_MODE (UFFDIO_REGISTER_MODE_MISSING | UFFDIO_REGISTER_MODE_WP)

static char *move_source_page(void)
{
    char *src = lb_move_source(0, 1);
    if (src)
        *(volatile int64_t *)src = 1;
    return src;
}

/* Per page: a source page, and UFFDIO_MOVE of it into place. */
static int64_t move_chunk(int fd, char *region, int64_t pages,
                          const char *unused_src, int64_t unused)
{
    (void)unused_src, (void)unused;
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < pages; k++) {
        char *src = move_source_page();
        if (!src || lb_move_place(fd, region + k * (int64_t)lb_page_size,
                                  src, lb_page_size, 0))
            return LB_ESYS;
    }
    return lb_now_ns() - t0;
}

/* Per page, untimed: a source page, its digest, and its move into place;
 * timed: its UFFDIO_WRITEPROTECT and the check of the installed page
 * against the digest (the rest of uffd-move's install step). */
static int64_t protect_chunk(int fd, char *region, int64_t pages,
                             const char *unused_src, int64_t unused)
{
    (void)unused_src, (void)unused;
    static uint64_t want[CHUNK_PAGES];          /* floors run on one thread */
    for (int64_t k = 0; k < pages; k++) {
        char *src = move_source_page();
        if (!src)
            return LB_ESYS;
        want[k] = lb_move_digest(src, lb_page_size);
        if (lb_move_place(fd, region + k * (int64_t)lb_page_size, src,
                          lb_page_size, 0))
            return LB_ESYS;
    }
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < pages; k++)
        if (lb_move_protect(fd, region + k * (int64_t)lb_page_size,
                            lb_page_size, want[k]))
            return LB_ESYS;
    return lb_now_ns() - t0;
}

static int move_fd = -1;

/* Resolves the probe's fault as uffd-move's install step does: a source
 * page, UFFDIO_MOVE, UFFDIO_WRITEPROTECT; no computing, no bookkeeping. */
static void move_handler(int signo, siginfo_t *si, void *ucv)
{
    char *page = probe_page(si, ucv);
    char *src = page ? move_source_page() : NULL;
    if (src && lb_move_place(move_fd, page, src, lb_page_size, 1) == 0)
        return;
    signal(signo, SIG_DFL);
}

static int64_t sigbus_move_chunk(int fd, char *region, int64_t pages,
                                 const char *src, int64_t unused)
{
    (void)src, (void)unused;
    move_fd = fd;
    int64_t ns = time_faults(SIGBUS, move_handler, NULL, region,
                             (int64_t)lb_page_size, pages);
    move_fd = -1;
    return ns;
}

static int64_t floor_uffdio_move(int64_t iters)
{
    return over_missing_mode(iters, MOVE_FEATURES, PROT_READ | PROT_WRITE,
                             MOVE_MODE, 1, move_chunk, 0);
}

static int64_t floor_uffdio_writeprotect(int64_t iters)
{
    return over_missing_mode(iters, MOVE_FEATURES, PROT_READ | PROT_WRITE,
                             MOVE_MODE, 1, protect_chunk, 0);
}

/* uffd-move's check of the window between its move and its
 * write-protection (lb_move_protect), driven by hand: a page moved into
 * place, a store to it before the write-protection (another thread's, in
 * the variant), then the write-protection.  0 when the store was found
 * and the page dropped again (missing: reading it faults anew), else a
 * negative status. */
static int64_t window_store_chunk(int fd, char *region, int64_t pages,
                                  const char *unused_src, int64_t unused)
{
    (void)pages, (void)unused_src, (void)unused;
    char *src = move_source_page();
    if (!src)
        return LB_ESYS;
    memset(src, 0x5a, lb_page_size);
    uint64_t want = lb_move_digest(src, lb_page_size);
    if (lb_move_place(fd, region, src, lb_page_size, 0))
        return LB_ESYS;
    ((volatile char *)region)[100] = 1;         /* the store in the window */
    if (lb_move_protect(fd, region, lb_page_size, want) != LB_MOVE_STORED) {
        lb_set_error("uffd-move: a store between the move and the "
                     "write-protection was not found", NULL);
        return LB_ELAZY;
    }
    unsigned char resident = 1;
    if (mincore(region, lb_page_size, &resident) || (resident & 1)) {
        lb_set_error("uffd-move: the page stored to was not dropped", NULL);
        return LB_ELAZY;
    }
    return 0;
}

int lb_move_window_check(void)
{
    char why[200] = "";
    if (!lb_move_available(why, sizeof why)) {
        lb_set_error("uffd-move unavailable: ", why);
        return LB_EUNAVAIL;
    }
    int64_t rc = over_missing_mode(1, MOVE_FEATURES, PROT_READ | PROT_WRITE,
                                   MOVE_MODE, 1, window_store_chunk, 0);
    return rc < 0 ? (int)rc : LB_OK;
}

static int64_t floor_sigbus_move(int64_t iters)
{
    return over_missing_mode(iters, MOVE_FEATURES, PROT_READ | PROT_WRITE,
                             MOVE_MODE, 1, sigbus_move_chunk, 0);
}

/* Computing one page of the hash generator into a buffer: the work every
 * variant does per materialised page, without any fault. */
static int64_t floor_page_compute(int64_t iters)
{
    if (iters <= 0)
        return LB_EINVAL;
    lb_array page;
    memset(&page, 0, sizeof page);
    page.ops = &lb_variant_eager;
    page.p.generator = LB_GEN_HASH;
    page.p.seed = 1;
    page.n = lb_epp;
    int64_t *buf = mmap(NULL, lb_page_size, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (buf == MAP_FAILED)
        return LB_ENOMEM;
    int64_t t0 = lb_now_ns();
    for (int64_t k = 0; k < iters; k++) {
        lb_fill_range(&page, 0, lb_epp, buf);
        __asm__ volatile("" : : "r"(buf) : "memory");
    }
    int64_t total = lb_now_ns() - t0;
    munmap(buf, lb_page_size);
    return total;
}

/* ---- sigsegv-mprotect's install step --------------------------------- */

/* The handler state of the sigsegv-open floors (floors run on one
 * thread): where a faulting page is written (fd offset = the page's
 * address + open_base), and the ready page written. */
static int open_fd = -1;
static off_t open_base;
static const char *open_src;

/* Resolves the probe's fault as sigsegv-mprotect's install step does,
 * minus computing the page and the bookkeeping: one pwrite of a ready
 * page into the closed page, mprotect PROT_READ; the load re-executes. */
static void open_handler(int signo, siginfo_t *si, void *ucv)
{
    char *page = probe_page(si, ucv);
    if (page &&
        pwrite(open_fd, open_src, lb_page_size,
               (off_t)(uintptr_t)page + open_base) == (ssize_t)lb_page_size &&
        !mprotect(page, lb_page_size, PROT_READ))
        return;
    signal(signo, SIG_DFL);
}

static int mem_write_available(char *why, size_t len)
{
    if (lb_mem_write_works())
        return 1;
    lb_strlcpy(why, "this kernel refuses writes to PROT_NONE pages through "
                    "/proc/self/mem", len);
    return 0;
}

/* One faulting read per fresh lazy page, mapped as sigsegv-mprotect maps
 * its view (`memfd`: a shared mapping of a memfd, else anonymous private
 * memory written through /proc/self/mem), CHUNK_PAGES at a time; mapping
 * and unmapping are not timed. */
static int64_t time_open(int64_t iters, int memfd)
{
    if (iters <= 0)
        return LB_EINVAL;
    char *src = mmap(NULL, lb_page_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (src == MAP_FAILED)
        return LB_ENOMEM;
    memset(src, 7, lb_page_size);
    int64_t total = 0;
    for (int64_t done = 0; done < iters && total >= 0;) {
        int64_t chunk = iters - done < CHUNK_PAGES ? iters - done : CHUNK_PAGES;
        size_t len = (size_t)chunk * lb_page_size;
        int fd = memfd ? memfd_create("lazybench-floor", MFD_CLOEXEC)
                       : open("/proc/self/mem", O_RDWR | O_CLOEXEC);
        if (fd < 0 || (memfd && ftruncate(fd, (off_t)len))) {
            if (fd >= 0)
                close(fd);
            total = LB_ESYS;
            break;
        }
        char *p = memfd ? mmap(NULL, len, PROT_NONE, MAP_SHARED, fd, 0)
                        : mmap(NULL, len, PROT_NONE, MAP_PRIVATE |
                               MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) {
            close(fd);
            total = LB_ENOMEM;
            break;
        }
        if (!memfd)
            madvise(p, len, MADV_NOHUGEPAGE);
        madvise(p, len, MADV_DONTFORK);         /* as the variant's view */
        open_fd = fd;
        open_base = memfd ? -(off_t)(uintptr_t)p : 0;
        open_src = src;
        int64_t ns = time_faults(SIGSEGV, open_handler, NULL, p,
                                 (int64_t)lb_page_size, chunk);
        total = ns < 0 ? ns : total + ns;
        open_fd = -1;
        munmap(p, len);
        close(fd);
        done += chunk;
    }
    munmap(src, lb_page_size);
    return total;
}

/* sigsegv-mprotect's fault resolved by its install step (its joint
 * floor): the anonymous view written through /proc/self/mem. */
static int64_t floor_sigsegv_open(int64_t iters)
{
    return time_open(iters, 0);
}

/* The same with the memfd view (the variant's design until it moved to
 * /proc/self/mem, and its fallback): the pwrite allocates a page-cache
 * page, and the re-executed load takes a second, minor fault to map it. */
static int64_t floor_sigsegv_open_memfd(int64_t iters)
{
    return time_open(iters, 1);
}

static int mem_fd = -1;
static const char *mem_src;

static void mem_write_page(char *page)
{
    pwrite(mem_fd, mem_src, lb_page_size, (off_t)(uintptr_t)page);
}

/* One ready page written through /proc/self/mem into a fresh PROT_NONE
 * anonymous page (its allocation included), no fault. */
static int64_t floor_mem_write(int64_t iters)
{
    char *src = mmap(NULL, lb_page_size, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (src == MAP_FAILED)
        return LB_ENOMEM;
    memset(src, 7, lb_page_size);
    mem_fd = open("/proc/self/mem", O_RDWR | O_CLOEXEC);
    mem_src = src;
    int64_t ns = mem_fd < 0 ? LB_ESYS
                            : time_per_page(iters, PROT_NONE, mem_write_page);
    if (mem_fd >= 0)
        close(mem_fd);
    mem_fd = -1;
    munmap(src, lb_page_size);
    return ns;
}

/* ---- the floor table ---------------------------------------------------
 *
 * One row per floor, in the order they are measured and reported: its
 * name and description (both go into run.json as they are), the function
 * that times `iters` operations and returns the total nanoseconds (or a
 * negative LB_E* status), and what it needs from the system (NULL: runs
 * anywhere; else the check, which gives the reason when it refuses).
 * Adding a floor: write its function above and add its row here. */
struct lb_floor {
    const char *name;
    const char *what;
    int64_t (*run)(int64_t iters);
    int (*available)(char *why, size_t len);
};

static const struct lb_floor floors[] = {
    {"null-syscall", "a getppid() system call", floor_null_syscall, NULL},
    {"mprotect", "mprotect() opening one page of a PROT_NONE region",
     floor_mprotect, NULL},
    {"sigsegv-roundtrip",
     "SIGSEGV on a PROT_NONE page, handler skips the load", floor_sigsegv,
     NULL},
    {"sigsegv-step",
     "SIGSEGV whose handler points the load at a readable word under the "
     "trap flag, then the SIGTRAP that puts the register back (the least "
     "a safe redirect costs)",
     floor_sigsegv_step, NULL},
    {"sigbus-uffd-roundtrip",
     "SIGBUS from a userfaultfd missing page, handler skips the load",
     floor_sigbus_uffd, lb_uffd_available},
    {"sigbus-copy",
     "SIGBUS from a userfaultfd missing page resolved by one UFFDIO_COPY of "
     "a ready page in the handler",
     floor_sigbus_copy, lb_uffd_available},
    {"sigbus-memfd-roundtrip",
     "SIGBUS from a hole of a memfd mapping registered with userfaultfd for "
     "missing and minor faults, handler skips the load",
     floor_sigbus_memfd, minor_floor_available},
    {"sigbus-continue",
     "SIGBUS from a hole of a registered memfd mapping resolved in the "
     "handler by a pwrite of a ready page and one UFFDIO_CONTINUE",
     floor_sigbus_continue, minor_floor_available},
    {"sigbus-move",
     "SIGBUS from a userfaultfd missing page resolved in the handler as "
     "uffd-move installs a page: a page of its source buffer (got as the "
     "variant gets it, timed), UFFDIO_MOVE of it, UFFDIO_WRITEPROTECT",
     floor_sigbus_move, lb_move_available},
    {"first-touch", "first write to a fresh anonymous 4 KiB page",
     floor_first_touch, NULL},
    {"decode", "Capstone decode of one load and its operand analysis",
     floor_decode, NULL},
    {"uffdio-copy", "UFFDIO_COPY of one page into a missing page, no fault",
     floor_uffdio_copy, lb_uffd_available},
    {"uffdio-copy-16", "UFFDIO_COPY of 16 pages at once, per page, no fault",
     floor_uffdio_copy16, lb_uffd_available},
    {"pwrite-page",
     "pwrite of one ready page into a hole of a memfd (page-cache "
     "allocation included), no fault",
     floor_pwrite_page, NULL},
    {"uffdio-continue",
     "UFFDIO_CONTINUE of one page already in the page cache into a "
     "registered memfd mapping, no fault",
     floor_uffdio_continue, minor_floor_available},
    {"uffdio-move",
     "a page of uffd-move's source buffer (got as the variant gets it, "
     "timed) and UFFDIO_MOVE of it into a missing page, no fault",
     floor_uffdio_move, lb_move_available},
    {"uffdio-writeprotect",
     "UFFDIO_WRITEPROTECT of one installed page and the check that no "
     "store reached it (a digest of the page before and after), no fault",
     floor_uffdio_writeprotect, lb_move_available},
    {"page-compute", "computing one page of the hash generator, no fault",
     floor_page_compute, NULL},
    {"sigsegv-open",
     "SIGSEGV on a PROT_NONE page of anonymous memory resolved in the "
     "handler as sigsegv-mprotect opens a page: a ready page written "
     "through /proc/self/mem, mprotect PROT_READ, the load re-executed",
     floor_sigsegv_open, mem_write_available},
    {"sigsegv-open-memfd",
     "SIGSEGV on a PROT_NONE page of a memfd mapping resolved in the "
     "handler by a pwrite of a ready page into the memfd and mprotect "
     "PROT_READ; the re-executed load takes a second, minor fault",
     floor_sigsegv_open_memfd, NULL},
    {"mem-write-page",
     "pwrite of one ready page through /proc/self/mem into a fresh "
     "PROT_NONE anonymous page (its allocation included), no fault",
     floor_mem_write, mem_write_available},
};
#define NFLOORS ((int)(sizeof floors / sizeof floors[0]))

int lb_floor_count(void)
{
    return NFLOORS;
}

const char *lb_floor_name(int floor)
{
    return (floor >= 0 && floor < NFLOORS) ? floors[floor].name : NULL;
}

const char *lb_floor_what(int floor)
{
    return (floor >= 0 && floor < NFLOORS) ? floors[floor].what : NULL;
}

int lb_floor_available(int floor, char *why, size_t len)
{
    if (floor < 0 || floor >= NFLOORS) {
        lb_strlcpy(why, "unknown floor", len);
        return 0;
    }
    return !floors[floor].available || floors[floor].available(why, len);
}

int64_t lb_floor_run(int floor, int64_t iters)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return LB_ENOMEM;
    ts->err[0] = 0;
    if (floor < 0 || floor >= NFLOORS) {
        lb_set_error("unknown floor", NULL);
        return LB_EINVAL;
    }
    char why[256] = "";
    if (!lb_floor_available(floor, why, sizeof why)) {
        lb_set_error("floor unavailable: ", why);
        return LB_EUNAVAIL;
    }
    return floors[floor].run(iters);
}

const char *lb_capstone_version(void)
{
    static char text[32];
    int major = 0, minor = 0;
    cs_version(&major, &minor);
    snprintf(text, sizeof text, "%d.%d", major, minor);
    return text;
}
