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

/* gregs index of a 64-bit general-purpose register, or -1. */
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

/* gregs index of any general-purpose register or part of one, with its
 * width in bytes; -1 for every other register (vector, x87, segment). */
static int gpr_part(x86_reg r, int *width)
{
#define W(R64, R32, R16, R8L, R8H)                                             \
    if (r == X86_REG_##R64) { *width = 8; return REG_##R64; }                 \
    if (r == X86_REG_##R32) { *width = 4; return REG_##R64; }                 \
    if (r == X86_REG_##R16) { *width = 2; return REG_##R64; }                 \
    if (r == X86_REG_##R8L || r == X86_REG_##R8H) {                            \
        *width = 1;                                                            \
        return REG_##R64;                                                      \
    }
    W(RAX, EAX, AX, AL, AH)
    W(RCX, ECX, CX, CL, CH)
    W(RDX, EDX, DX, DL, DH)
    W(RBX, EBX, BX, BL, BH)
    W(RSP, ESP, SP, SPL, SPL)
    W(RBP, EBP, BP, BPL, BPL)
    W(RSI, ESI, SI, SIL, SIL)
    W(RDI, EDI, DI, DIL, DIL)
    W(R8, R8D, R8W, R8B, R8B)
    W(R9, R9D, R9W, R9B, R9B)
    W(R10, R10D, R10W, R10B, R10B)
    W(R11, R11D, R11W, R11B, R11B)
    W(R12, R12D, R12W, R12B, R12B)
    W(R13, R13D, R13W, R13B, R13B)
    W(R14, R14D, R14W, R14B, R14B)
    W(R15, R15D, R15W, R15B, R15B)
#undef W
    return -1;
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

static cs_insn *decode_at(uintptr_t rip)
{
    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts || !ts->insn)
        return NULL;
    cs_insn *insn = ts->insn;
    const uint8_t *code = (const uint8_t *)rip;
    size_t size = 15;
    uint64_t address = rip;
    if (!cs_disasm_iter(ts->cs, &code, &size, &address, insn))
        return NULL;
    return insn;
}

int lb_decode_refuse(uintptr_t rip, const char *why)
{
    return refuse(decode_at(rip), rip, why);
}

/* Only forms listed in read_forms.c are redirected: an instruction is
 * trusted to read its memory operand and nothing else only when it is
 * listed; every other one (stores, read-modify-writes, instructions with
 * implicit memory operands, forms Capstone cannot classify) is refused
 * with its text. */
int lb_decode(uintptr_t rip, struct lb_insn_info *out)
{
    struct lb_tstate *ts = lb_tstate_peek();
    if (!ts || !ts->insn)
        return refuse(NULL, rip, "(no decoder on this thread; lazy handles "
                                 "must be read through the core)");
    cs_insn *insn = decode_at(rip);
    if (!insn)
        return refuse(NULL, rip, "an instruction Capstone cannot decode");
    const cs_x86 *x = &insn->detail->x86;
    if (is_string_insn(insn->id))
        return refuse(insn, rip, "a string instruction");
    int memk = -1;
    for (int k = 0; k < x->op_count; k++) {
        if (x->operands[k].type != X86_OP_MEM)
            continue;
        if (memk >= 0)
            return refuse(insn, rip, "two memory operands");
        memk = k;
    }
    const struct lb_read_form *f =
        memk < 0 ? NULL : lb_read_form_find(insn->id, x->op_count, memk);
    if (!f) {
        if (memk >= 0 && (x->operands[memk].access & CS_AC_WRITE))
            return refuse(insn, rip, "a store (lazy elements are read-only)");
        return refuse(insn, rip, "an instruction not known to only read its "
                                 "memory operand (only listed read forms "
                                 "are redirected; lazy elements are "
                                 "read-only)");
    }
    const cs_x86_op *mem = &x->operands[memk];
    if (x->prefix[0] == X86_PREFIX_LOCK)
        return refuse(insn, rip, "a locked instruction");
    if ((f->flags & LB_RF_IMM0) && x->operands[0].type != X86_OP_IMM)
        return refuse(insn, rip, "this form with a register operand");
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
    if (base >= 0 && base == index)
        return refuse(insn, rip, "one register as both base and index");
    if (mem->size == 0)
        return refuse(insn, rip, "an operand of unknown size");
    uint32_t data = 0, full = 0, part = 0;
    int last = x->op_count - 1;
    for (int k = 0; k < x->op_count; k++) {
        if (k == memk || x->operands[k].type != X86_OP_REG)
            continue;
        int width = 0;
        int g = gpr_part(x->operands[k].reg, &width);
        if (k == last && f->kind != LB_RF_READ) {
            if (g < 0)
                return refuse(insn, rip, "a form whose destination is not "
                                         "the general-purpose register the "
                                         "read table expects");
            if (f->kind == LB_RF_UPDATE)
                data |= 1u << g;
            if (f->kind == LB_RF_WRITE && width >= 4)
                full |= 1u << g;     /* 32-bit writes zero the upper half */
            else
                part |= 1u << g;
            continue;
        }
        if (g >= 0)
            data |= 1u << g;
    }
    out->base = (int8_t)base;
    out->index = (int8_t)index;
    out->scale = (uint8_t)(mem->mem.scale > 0 ? mem->mem.scale : 1);
    out->size = mem->size;
    out->len = insn->size;
    out->disp = mem->mem.disp;
    out->data_regs = data;
    out->full_writes = full;
    out->part_writes = part;
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

int lb_redirect_check(uintptr_t address)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (!ts)
        return LB_ENOMEM;
    ts->err[0] = 0;
    if (lb_decoder_ensure(ts)) {
        lb_set_error("cannot open the Capstone decoder", NULL);
        return LB_ENOMEM;
    }
    struct lb_insn_info info;
    return lb_decode(address, &info);
}

int lb_read_form_rows(void)
{
    return lb_read_form_count;
}

const char *lb_read_form_mnemonic(int k, int *nops, int *mem)
{
    struct lb_tstate *ts = lb_tstate_get();
    if (k < 0 || k >= lb_read_form_count || !ts || lb_decoder_ensure(ts))
        return NULL;
    *nops = lb_read_forms[k].nops;
    *mem = lb_read_forms[k].mem;
    return cs_insn_name(ts->cs, lb_read_forms[k].id);
}
