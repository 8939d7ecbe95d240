/* Generators: the thunks' bodies, C functions of the element index. */
#include "lb_core.h"

/* hash and spin are pure functions of (params, i): lb_gen_hash and
 * lb_gen_spin (lb_core.h), which lb_expected computes references with. */
static int64_t gen_hash(const lb_array *a, int64_t i)
{
    return lb_gen_hash(&a->p, i);
}

static int64_t gen_spin(const lb_array *a, int64_t i)
{
    return lb_gen_spin(&a->p, i);
}

/* Element i is a function of element i-1: touching element k first forces
 * the chain back to the nearest materialised element, through nested
 * faults in the fault-driven variants. */
static int64_t gen_recurrence(lb_array *a, int64_t i)
{
    if (i == 0)
        return (int64_t)lb_mix64(a->p.seed + 1);
    uint64_t prev = (uint64_t)lb_read(a, i - 1);
    return (int64_t)lb_mix64(prev + (uint64_t)i);
}

int64_t lb_generate(lb_array *a, int64_t i)
{
    switch (a->p.generator) {
    case LB_GEN_SPIN:
        return gen_spin(a, i);
    case LB_GEN_RECURRENCE:
        return gen_recurrence(a, i);
    case LB_GEN_HASH:
    default:
        return gen_hash(a, i);
    }
}

/* Generators that read no other element fill a range in one tight loop
 * (no per-element bookkeeping for lb_read).  Returns 0 when the generator
 * needs the per-element path. */
int lb_generate_range(const lb_array *a, int64_t lo, int64_t hi,
                      int64_t *buf)
{
    switch (a->p.generator) {
    case LB_GEN_HASH:
        for (int64_t i = lo; i < hi; i++)
            buf[i - lo] = gen_hash(a, i);
        return 1;
    case LB_GEN_SPIN:
        for (int64_t i = lo; i < hi; i++)
            buf[i - lo] = gen_spin(a, i);
        return 1;
    default:
        return 0;
    }
}
