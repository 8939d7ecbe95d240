/* Decoding the faulting instruction with Capstone, for sigsegv-redirect.
 *
 * Each thread owns one Capstone handle and one preallocated cs_insn,
 * opened at a guarded entry (cs_open allocates, so never in a handler).
 * One per thread is enough for nested faults too: a decode always
 * finishes before the thunk is forced, so a nested fault never interrupts
 * a decode of its own thread.  cs_disasm_iter makes no heap allocation. */
#include "lb_core.h"

#include <string.h>
#include <ucontext.h>

#include <capstone/capstone.h>

extern char lb_probe_insn[];

void lb_fmt_hex(char *buf, size_t size, uint64_t v)
{
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    int k = 0;
    do {
        tmp[k++] = digits[v & 15];
        v >>= 4;
    } while (v);
    size_t o = 0;
    if (o + 2 < size) {
        buf[o++] = '0';
        buf[o++] = 'x';
    }
    while (k && o + 1 < size)
        buf[o++] = tmp[--k];
    buf[o] = 0;
}

int lb_decoder_ensure(struct lb_tstate *ts)
{
    if (ts->insn)
        return LB_OK;
    csh h;
    if (cs_open(CS_ARCH_X86, CS_MODE_64, &h) != CS_ERR_OK)
        return LB_ENOMEM;
    cs_option(h, CS_OPT_SYNTAX, CS_OPT_SYNTAX_ATT);
    cs_option(h, CS_OPT_DETAIL, CS_OPT_ON);          /* before cs_malloc */
    cs_insn *insn = cs_malloc(h);
    if (!insn) {
        cs_close(&h);
        return LB_ENOMEM;
    }
    /* Decode once before any handler needs it: the first call sets up
     * Capstone's lazily built state outside signal context. */
    const uint8_t *code = (const uint8_t *)lb_probe_insn;
    size_t size = 16;
    uint64_t address = (uint64_t)(uintptr_t)lb_probe_insn;
    cs_disasm_iter(h, &code, &size, &address, insn);
    ts->cs = h;
    ts->insn = insn;
    return LB_OK;
}

void lb_decoder_close(struct lb_tstate *ts)
{
    if (!ts->insn)
        return;
    cs_free(ts->insn, 1);
    csh h = ts->cs;
    cs_close(&h);
    ts->insn = NULL;
}

static int greg_of(x86_reg r)
{
    switch (r) {
    case X86_REG_RAX: return REG_RAX;
    case X86_REG_RCX: return REG_RCX;
    case X86_REG_RDX: return REG_RDX;
    case X86_REG_RBX: return REG_RBX;
    case X86_REG_RSP: return REG_RSP;
    case X86_REG_RBP: return REG_RBP;
    case X86_REG_RSI: return REG_RSI;
    case X86_REG_RDI: return REG_RDI;
    case X86_REG_R8: return REG_R8;
    case X86_REG_R9: return REG_R9;
    case X86_REG_R10: return REG_R10;
    case X86_REG_R11: return REG_R11;
    case X86_REG_R12: return REG_R12;
    case X86_REG_R13: return REG_R13;
    case X86_REG_R14: return REG_R14;
    case X86_REG_R15: return REG_R15;
    default: return -1;
    }
}

static int is_string_insn(unsigned id)
{
    switch (id) {
    case X86_INS_LODSB: case X86_INS_LODSW: case X86_INS_LODSD:
    case X86_INS_LODSQ: case X86_INS_STOSB: case X86_INS_STOSW:
    case X86_INS_STOSD: case X86_INS_STOSQ: case X86_INS_SCASB:
    case X86_INS_SCASW: case X86_INS_SCASD: case X86_INS_SCASQ:
    case X86_INS_CMPSB: case X86_INS_CMPSW: case X86_INS_CMPSD:
    case X86_INS_CMPSQ: case X86_INS_MOVSB: case X86_INS_MOVSW:
    case X86_INS_MOVSQ:
        return 1;
    default:
        return 0;
    }
}

/* "cannot redirect <why>: <mnemonic> <operands> at <address>" */
static int refuse(const cs_insn *insn, uintptr_t rip, const char *why)
{
    char msg[256];
    size_t k = lb_strlcpy(msg, "sigsegv-redirect cannot redirect ",
                          sizeof msg);
    k += lb_strlcpy(msg + k, why, sizeof msg - k);
    k += lb_strlcpy(msg + k, ": ", sizeof msg - k);
    if (insn) {
        k += lb_strlcpy(msg + k, insn->mnemonic, sizeof msg - k);
        k += lb_strlcpy(msg + k, " ", sizeof msg - k);
        k += lb_strlcpy(msg + k, insn->op_str, sizeof msg - k);
    } else {
        k += lb_strlcpy(msg + k, "(undecodable)", sizeof msg - k);
    }
    k += lb_strlcpy(msg + k, " at ", sizeof msg - k);
    char hex[24];
    lb_fmt_hex(hex, sizeof hex, rip);
    lb_strlcpy(msg + k, hex, sizeof msg - k);
    lb_set_error(msg, NULL);
    return LB_ELAZY;
}

int lb_decode(uintptr_t rip, struct lb_insn_info *out)
{
    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts || !ts->insn)
        return refuse(NULL, rip, "(no decoder on this thread; lazy handles "
                                 "must be read through the core)");
    cs_insn *insn = ts->insn;
    const uint8_t *code = (const uint8_t *)rip;
    size_t size = 15;
    uint64_t address = rip;
    if (!cs_disasm_iter(ts->cs, &code, &size, &address, insn))
        return refuse(NULL, rip, "an instruction Capstone cannot decode");
    const cs_x86 *x = &insn->detail->x86;
    if (is_string_insn(insn->id))
        return refuse(insn, rip, "a string instruction");
    const cs_x86_op *mem = NULL;
    for (int k = 0; k < x->op_count; k++) {
        if (x->operands[k].type != X86_OP_MEM)
            continue;
        if (mem)
            return refuse(insn, rip, "two memory operands");
        mem = &x->operands[k];
    }
    if (!mem)
        return refuse(insn, rip, "an instruction without a memory operand");
    if (mem->access & CS_AC_WRITE)
        return refuse(insn, rip, "a store (lazy elements are read-only)");
    if (mem->mem.base == X86_REG_RIP)
        return refuse(insn, rip, "a RIP-relative operand");
    if (mem->mem.segment != X86_REG_INVALID)
        return refuse(insn, rip, "a segment-prefixed operand");
    int base = mem->mem.base == X86_REG_INVALID ? -1 : greg_of(mem->mem.base);
    int index = mem->mem.index == X86_REG_INVALID ? -1
                                                  : greg_of(mem->mem.index);
    if ((mem->mem.base != X86_REG_INVALID && base < 0) ||
        (mem->mem.index != X86_REG_INVALID && index < 0))
        return refuse(insn, rip, "an address in a register other than the "
                                 "16 64-bit general-purpose registers");
    out->base = (int8_t)base;
    out->index = (int8_t)index;
    out->scale = (uint8_t)(mem->mem.scale > 0 ? mem->mem.scale : 1);
    out->size = mem->size ? mem->size : 1;
    out->disp = mem->mem.disp;
    return LB_OK;
}

static size_t slot_of(uintptr_t rip)
{
    return (size_t)(lb_mix64(rip) & (LB_DCACHE_SLOTS - 1));
}

#define PROBES 8

int lb_dcache_get(struct lb_dcache *c, uintptr_t rip,
                  struct lb_insn_info *out)
{
    size_t s = slot_of(rip);
    for (int k = 0; k < PROBES; k++) {
        struct lb_dcache_entry *e = &c->e[(s + k) & (LB_DCACHE_SLOTS - 1)];
        uintptr_t key = __atomic_load_n(&e->key, __ATOMIC_ACQUIRE);
        if (key == 0)
            return 0;
        if (key == rip) {
            if (!__atomic_load_n(&e->ready, __ATOMIC_ACQUIRE))
                return 0;
            *out = e->info;
            return 1;
        }
    }
    return 0;
}

void lb_dcache_put(struct lb_dcache *c, uintptr_t rip,
                   const struct lb_insn_info *info)
{
    size_t s = slot_of(rip);
    for (int k = 0; k < PROBES; k++) {
        struct lb_dcache_entry *e = &c->e[(s + k) & (LB_DCACHE_SLOTS - 1)];
        uintptr_t expect = 0;
        if (__atomic_compare_exchange_n(&e->key, &expect, rip, 0,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
            e->info = *info;
            __atomic_store_n(&e->ready, 1, __ATOMIC_RELEASE);
            return;
        }
        if (expect == rip)
            return;                  /* another thread is inserting it */
    }
}
