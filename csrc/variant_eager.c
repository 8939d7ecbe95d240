/* eager: every element computed when the array is built (and on reset);
 * the workload then reads plain memory.  The floor the lazy variants are
 * compared with. */
#include "lb_core.h"

#include <sys/mman.h>

static int eager_fill(lb_array *a)
{
    int rc = lb_fill_range(a, 0, a->n, (int64_t *)a->priv);
    if (rc == LB_OK) {
        lb_count(&a->c.elements_materialised, (uint64_t)a->n);
        lb_count(&a->c.pages_materialised, (uint64_t)a->npages);
    }
    return rc;
}

static int body_fill(lb_array *a, void *ctx)
{
    (void)ctx;
    return eager_fill(a);
}

static int eager_create(lb_array *a)
{
    void *p = mmap(NULL, a->bytes, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        lb_set_error("eager: cannot map the array", NULL);
        return LB_ENOMEM;
    }
    a->priv = p;
    a->view = p;
    int rc = lb_guarded(a, body_fill, NULL);
    if (rc)
        munmap(p, a->bytes);
    return rc;
}

/* Eager has nothing lazy to undo: its values stay, so a benchmark loop
 * that resets between runs does not recompute the whole array. */
static int eager_reset(lb_array *a)
{
    (void)a;
    return LB_OK;
}

static int eager_force(lb_array *a)
{
    (void)a;
    return LB_OK;
}

static void eager_release(lb_array *a)
{
    munmap(a->priv, a->bytes);
}

/* eager-handles: the same values reached through a list of element
 * addresses, the access path of sigsegv-redirect: the eager floor for
 * workloads that read through handles. */
static int eager_handles_create(lb_array *a)
{
    int64_t **list = mmap(NULL, a->bytes, PROT_READ | PROT_WRITE,
                          MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (list == MAP_FAILED) {
        lb_set_error("eager-handles: cannot map the list", NULL);
        return LB_ENOMEM;
    }
    int rc = eager_create(a);
    if (rc) {
        munmap(list, a->bytes);
        return rc;
    }
    for (int64_t i = 0; i < a->n; i++)
        list[i] = (int64_t *)a->priv + i;
    a->handles = list;
    return LB_OK;
}

static void eager_handles_release(lb_array *a)
{
    munmap((void *)a->handles, a->bytes);
    eager_release(a);
}

const struct lb_variant_ops lb_variant_eager = {
    .name = "eager",
    .access = LB_ACCESS_FLAT,
    .signo = 0,
    .reset_noop = 1,
    .base = 1,
    .create = eager_create,
    .reset = eager_reset,
    .force = eager_force,
    .release = eager_release,
};

const struct lb_variant_ops lb_variant_eager_handles = {
    .name = "eager-handles",
    .access = LB_ACCESS_HANDLES,
    .signo = 0,
    .reset_noop = 1,
    .base = 1,
    .create = eager_handles_create,
    .reset = eager_reset,
    .force = eager_force,
    .release = eager_handles_release,
};
